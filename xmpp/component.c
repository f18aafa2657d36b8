/*
 * component.c - JIDs the server answers for itself: XEP-0030 disco#info and
 * disco#items, and XEP-0050 ad-hoc commands (execute, next, complete,
 * cancel, sessionid, notes) whose handlers reply now or later; and the
 * components' own iq requests to any JID, whose answers (or timeouts)
 * come back to a callback.
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

/* Sends REPLY (taken) to the sender of REQ, wherever it is. */
static void answer(struct ic_xmpp_server *srv,
                   const struct ic_xml *req,
                   struct ic_xml *reply)
{
    (void)req;
    ic_xmpp__send(srv, reply);
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

static void run_command(struct ic_xmpp_server *srv,
                        struct ic_xmpp__component *comp,
                        struct ic_xmpp__session *from,
                        struct ic_xml *st,
                        struct ic_xml *cmd_el)
{
    const char *node = ic_xml_attr(cmd_el, "node");
    const char *action = ic_xml_attr(cmd_el, "action");
    const struct ic_adhoc_command *cmd = command(comp, node);
    bool admin = from != NULL && from->conn->admin;
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
    r->from_local = from != NULL ? ic_strdup(from->conn->user) : NULL;
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

/* ---- the components' own requests ---------------------------------- */

struct iq_pending {
    char *from;        /* the component */
    uint64_t deadline; /* ms */
    ic_xmpp_iq_cb cb;
    void *arg;
};

static void iq_pending_free(struct iq_pending *p)
{
    ic_free(p->from);
    ic_free(p);
}

static void iq_arm(struct ic_xmpp_server *srv);

static void on_iq_timer(uv_timer_t *t)
{
    struct ic_xmpp_server *srv = t->data;
    uint64_t now = ic_xmpp__now_ms(srv);
    struct ic_map_entry *e;
    size_t i = 0;

    /* one expired request per pass: a callback may change the map */
    while ((e = ic_map_next(&srv->iq_pending, &i)) != NULL) {
        struct iq_pending *p = e->value;
        if (p->deadline > now)
            continue;
        ic_map_del(&srv->iq_pending, e->key);
        p->cb(p->arg, NULL);
        iq_pending_free(p);
        i = 0;
    }
    iq_arm(srv);
}

/* The timer runs to the nearest deadline while requests are pending. */
static void iq_arm(struct ic_xmpp_server *srv)
{
    uint64_t now = ic_xmpp__now_ms(srv), next = UINT64_MAX;
    struct ic_map_entry *e;
    size_t i = 0;

    if (srv->shutting_down)
        return;
    while ((e = ic_map_next(&srv->iq_pending, &i)) != NULL) {
        struct iq_pending *p = e->value;
        if (p->deadline < next)
            next = p->deadline;
    }
    if (next == UINT64_MAX)
        uv_timer_stop(&srv->iq_timer);
    else
        uv_timer_start(&srv->iq_timer, on_iq_timer, next > now ? next - now : 0,
                       0);
}

int ic_xmpp_component_iq(struct ic_xmpp_server *srv,
                         const char *from_jid,
                         struct ic_xml *iq,
                         unsigned timeout_ms,
                         ic_xmpp_iq_cb cb,
                         void *arg)
{
    struct ic_xmpp__component *comp = ic_xmpp__component_find(srv, from_jid);
    const char *type = ic_xml_attr(iq, "type");
    struct iq_pending *p;
    char id[48];

    if (comp == NULL || iq == NULL || iq->name == NULL ||
        strcmp(iq->name, "iq") != 0 || type == NULL ||
        (strcmp(type, "get") != 0 && strcmp(type, "set") != 0) ||
        ic_xml_attr(iq, "to") == NULL || srv->shutting_down) {
        ic_xml_free(iq);
        return IC_EVALUE;
    }
    snprintf(id, sizeof id, "icq-%llu", (unsigned long long)++srv->id_counter);
    p = ic_calloc(1, sizeof *p);
    p->from = ic_strdup(comp->c.jid);
    p->deadline = ic_xmpp__now_ms(srv) + timeout_ms;
    p->cb = cb;
    p->arg = arg;
    ic_map_put(&srv->iq_pending, id, p);
    iq_arm(srv);
    ic_xml_set_attr(iq, "id", id);
    ic_xml_set_attr(iq, "from", comp->c.jid);
    ic_xmpp__send(srv, iq);
    return 0;
}

/* A result or error iq to component COMP: the answer to one of its
 * requests (from anyone else, or late, it is dropped). */
static void iq_answered(struct ic_xmpp_server *srv,
                        struct ic_xmpp__component *comp,
                        const struct ic_xml *st)
{
    const char *id = ic_xml_attr(st, "id");
    struct iq_pending *p = id ? ic_map_get(&srv->iq_pending, id) : NULL;

    if (p == NULL || strcasecmp(p->from, comp->c.jid) != 0)
        return;
    ic_map_del(&srv->iq_pending, id);
    p->cb(p->arg, st);
    iq_pending_free(p);
    iq_arm(srv);
}

void ic_xmpp__component_iq_cancel_all(struct ic_xmpp_server *srv)
{
    struct ic_map_entry *e;
    size_t i = 0;

    while ((e = ic_map_next(&srv->iq_pending, &i)) != NULL) {
        struct iq_pending *p = e->value;
        ic_map_del(&srv->iq_pending, e->key);
        p->cb(p->arg, NULL);
        iq_pending_free(p);
        i = 0;
    }
}

void ic_xmpp__component_handle(struct ic_xmpp_server *srv,
                               struct ic_xmpp__component *comp,
                               struct ic_xmpp__session *from,
                               struct ic_xml *st)
{
    const char *type = ic_xml_attr(st, "type");
    struct ic_xml *q = ic_xml_child(st, NULL, NULL);
    bool get = type && strcmp(type, "get") == 0;
    bool set = type && strcmp(type, "set") == 0;
    bool admin = from != NULL && from->conn->admin;

    if (strcmp(st->name, "iq") == 0 && !get && !set) {
        iq_answered(srv, comp, st);
        ic_xml_free(st);
        return;
    }
    if (strcmp(st->name, "iq") != 0) {
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
        run_command(srv, comp, from, st, q);
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
