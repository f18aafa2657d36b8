/*
 * component.c - JIDs the server answers for itself: XEP-0030 disco#info and
 * disco#items, and XEP-0050 ad-hoc commands (execute, next, complete,
 * cancel, sessionid, notes) whose handlers reply now or later.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "xmpp_int.h"

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_COMMANDS "http://jabber.org/protocol/commands"
#define NS_IODATA "urn:xmpp:tmp:io-data"

struct ic_adhoc_req {
    struct ic_xmpp_server *srv;
    struct ic_xml *iq; /* the request (to, from, id) */
    const struct ic_xml *command;
    const struct ic_adhoc_command *cmd;
    char *from_local; /* NULL for another domain's user */
    bool admin;
    char *sessionid;
};

int ic_xmpp_component_add(struct ic_xmpp_server *srv,
                          const struct ic_xmpp_component *c)
{
    struct ic_xmpp__component *x = ic_calloc(1, sizeof *x);

    x->c = *c;
    x->next = srv->components;
    srv->components = x;
    return 0;
}

struct ic_xmpp__component *ic_xmpp__component_find(struct ic_xmpp_server *srv,
                                                   const char *jid)
{
    for (struct ic_xmpp__component *c = srv->components; c; c = c->next)
        if (strcasecmp(c->c.jid, jid) == 0)
            return c;
    return NULL;
}

/* Sends X to the full JID TO, if that session still exists. */
static void
send_to(struct ic_xmpp_server *srv, const char *to, const struct ic_xml *x)
{
    struct ic_xmpp__session *s = to ? ic_map_get(&srv->sessions, to) : NULL;

    if (s != NULL)
        ic_xmpp__deliver(s, x);
}

static void answer(struct ic_xmpp_server *srv,
                   const struct ic_xml *req,
                   struct ic_xml *reply)
{
    send_to(srv, ic_xml_attr(req, "from"), reply);
    ic_xml_free(reply);
}

static bool visible(const struct ic_adhoc_command *cmd, bool admin)
{
    return !cmd->admin_only || admin;
}

static struct ic_xml *disco_info(struct ic_xmpp__component *comp,
                                 const char *node)
{
    struct ic_xml *q = ic_xml_new("query", NS_DISCO_INFO);
    struct ic_xml *id = ic_xml_add(q, "identity", NULL);

    if (node != NULL) { /* a command node: XEP-0050 2.3 */
        ic_xml_set_attr(q, "node", node);
        ic_xml_set_attr(id, "category", "automation");
        ic_xml_set_attr(id, "type", "command-node");
        ic_xml_set_attr(ic_xml_add(q, "feature", NULL), "var", NS_COMMANDS);
        ic_xml_set_attr(ic_xml_add(q, "feature", NULL), "var", NS_IODATA);
        return q;
    }
    ic_xml_set_attr(id, "category", comp->c.identity_category);
    ic_xml_set_attr(id, "type", comp->c.identity_type);
    ic_xml_set_attr(id, "name", comp->c.identity_name);
    ic_xml_set_attr(ic_xml_add(q, "feature", NULL), "var", NS_DISCO_INFO);
    ic_xml_set_attr(ic_xml_add(q, "feature", NULL), "var", NS_DISCO_ITEMS);
    ic_xml_set_attr(ic_xml_add(q, "feature", NULL), "var", NS_COMMANDS);
    ic_xml_set_attr(ic_xml_add(q, "feature", NULL), "var", NS_IODATA);
    return q;
}

static struct ic_xml *
disco_items(struct ic_xmpp__component *comp, const char *node, bool admin)
{
    struct ic_xml *q = ic_xml_new("query", NS_DISCO_ITEMS);

    if (node == NULL || strcmp(node, NS_COMMANDS) != 0)
        return q;
    ic_xml_set_attr(q, "node", node);
    for (size_t i = 0; i < comp->c.ncommands; i++) {
        const struct ic_adhoc_command *cmd = &comp->c.commands[i];
        struct ic_xml *it;
        if (!visible(cmd, admin))
            continue;
        it = ic_xml_add(q, "item", NULL);
        ic_xml_set_attr(it, "jid", comp->c.jid);
        ic_xml_set_attr(it, "node", cmd->node);
        ic_xml_set_attr(it, "name", cmd->name);
    }
    return q;
}

static const struct ic_adhoc_command *command(struct ic_xmpp__component *comp,
                                              const char *node)
{
    for (size_t i = 0; node != NULL && i < comp->c.ncommands; i++)
        if (strcmp(comp->c.commands[i].node, node) == 0)
            return &comp->c.commands[i];
    return NULL;
}

static void req_free(struct ic_adhoc_req *r)
{
    ic_xml_free(r->iq);
    ic_free(r->from_local);
    ic_free(r->sessionid);
    ic_free(r);
}

static void run_command(struct ic_xmpp__component *comp,
                        struct ic_xmpp__session *from,
                        struct ic_xml *st,
                        struct ic_xml *cmd_el)
{
    struct ic_xmpp_server *srv = from->conn->srv;
    const char *node = ic_xml_attr(cmd_el, "node");
    const char *action = ic_xml_attr(cmd_el, "action");
    const struct ic_adhoc_command *cmd = command(comp, node);
    bool admin = from->conn->admin;
    struct ic_adhoc_req *r;
    char sid[48];

    if (cmd == NULL || !visible(cmd, admin)) {
        answer(srv, st,
               ic_xmpp__error_reply(st, "cancel", "item-not-found",
                                    "no such command"));
        ic_xml_free(st);
        return;
    }
    if (action != NULL && strcmp(action, "execute") != 0 &&
        strcmp(action, "next") != 0 && strcmp(action, "complete") != 0 &&
        strcmp(action, "cancel") != 0) {
        answer(srv, st,
               ic_xmpp__error_reply(st, "modify", "bad-request",
                                    "unknown action"));
        ic_xml_free(st);
        return;
    }
    r = ic_calloc(1, sizeof *r);
    r->srv = srv;
    r->iq = st;
    r->command = cmd_el;
    r->cmd = cmd;
    r->from_local = ic_strdup(from->conn->user);
    r->admin = admin;
    if (ic_xml_attr(cmd_el, "sessionid") != NULL) {
        r->sessionid = ic_strdup(ic_xml_attr(cmd_el, "sessionid"));
    } else {
        snprintf(sid, sizeof sid, "ic-%llu",
                 (unsigned long long)++srv->id_counter);
        r->sessionid = ic_strdup(sid);
    }
    if (action != NULL && strcmp(action, "cancel") == 0) {
        struct ic_xml *c = ic_xml_new("command", NS_COMMANDS);
        ic_xml_set_attr(c, "node", cmd->node);
        ic_xml_set_attr(c, "sessionid", r->sessionid);
        ic_xml_set_attr(c, "status", "canceled");
        answer(srv, st, ic_xmpp__iq_result(st, c));
        req_free(r);
        return;
    }
    cmd->handler(comp->c.data, r);
}

void ic_xmpp__component_handle(struct ic_xmpp__component *comp,
                               struct ic_xmpp__session *from,
                               struct ic_xml *st)
{
    struct ic_xmpp_server *srv = from->conn->srv;
    const char *type = ic_xml_attr(st, "type");
    struct ic_xml *q = ic_xml_child(st, NULL, NULL);
    bool get = type && strcmp(type, "get") == 0;
    bool set = type && strcmp(type, "set") == 0;
    bool admin = from->conn->admin;

    if (strcmp(st->name, "iq") != 0 || (!get && !set)) {
        if (strcmp(st->name, "message") == 0 &&
            (type == NULL || strcmp(type, "error")))
            answer(srv, st,
                   ic_xmpp__error_reply(st, "cancel", "service-unavailable",
                                        NULL));
        ic_xml_free(st);
        return;
    }
    if (get && q != NULL && q->ns && strcmp(q->ns, NS_DISCO_INFO) == 0) {
        answer(
            srv, st,
            ic_xmpp__iq_result(st, disco_info(comp, ic_xml_attr(q, "node"))));
    } else if (get && q && q->ns && strcmp(q->ns, NS_DISCO_ITEMS) == 0) {
        answer(srv, st,
               ic_xmpp__iq_result(
                   st, disco_items(comp, ic_xml_attr(q, "node"), admin)));
    } else if (get && q && q->ns && strcmp(q->ns, "urn:xmpp:ping") == 0) {
        answer(srv, st, ic_xmpp__iq_result(st, NULL));
    } else if (set && q != NULL && q->ns != NULL &&
               strcmp(q->ns, NS_COMMANDS) == 0 &&
               strcmp(q->name, "command") == 0) {
        run_command(comp, from, st, q);
        return; /* the request owns ST now */
    } else {
        answer(srv, st,
               ic_xmpp__error_reply(st, "cancel", "service-unavailable", NULL));
    }
    ic_xml_free(st);
}

/* Requests */

const char *ic_adhoc_from(const struct ic_adhoc_req *r)
{
    return ic_xml_attr(r->iq, "from");
}

const char *ic_adhoc_from_local(const struct ic_adhoc_req *r)
{
    return r->from_local;
}

bool ic_adhoc_is_admin(const struct ic_adhoc_req *r)
{
    return r->admin;
}

const char *ic_adhoc_node(const struct ic_adhoc_req *r)
{
    return r->cmd->node;
}

const char *ic_adhoc_action(const struct ic_adhoc_req *r)
{
    const char *a = ic_xml_attr(r->command, "action");
    return a ? a : "execute";
}

const struct ic_xml *ic_adhoc_command_elem(const struct ic_adhoc_req *r)
{
    return r->command;
}

void ic_adhoc_done(struct ic_adhoc_req *r,
                   struct ic_xml *payload,
                   const char *note_type,
                   const char *note)
{
    struct ic_xml *c = ic_xml_new("command", NS_COMMANDS);

    ic_xml_set_attr(c, "sessionid", r->sessionid);
    ic_xml_set_attr(c, "node", r->cmd->node);
    ic_xml_set_attr(c, "status", "completed");
    if (payload != NULL)
        ic_xml_append(c, payload);
    if (note != NULL) {
        struct ic_xml *n = ic_xml_add(c, "note", NULL);
        ic_xml_set_attr(n, "type", note_type ? note_type : "info");
        ic_xml_add_text(n, note, strlen(note));
    }
    answer(r->srv, r->iq, ic_xmpp__iq_result(r->iq, c));
    req_free(r);
}

void ic_adhoc_fail(struct ic_adhoc_req *r,
                   const char *type,
                   const char *condition,
                   const char *text)
{
    answer(r->srv, r->iq, ic_xmpp__error_reply(r->iq, type, condition, text));
    req_free(r);
}
