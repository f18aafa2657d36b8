/*
 * remote.c - sessions bound on other nodes of the cluster, as the
 * application reports them from the replicated presence registry, and the
 * stanzas that cross nodes (RFC 6121 delivery rules applied cluster-wide).
 *
 * Presence broadcasts do not cross nodes as stanzas: every node learns a
 * remote session's presence from the registry and delivers it to its own
 * sessions (ic_xmpp_server_remote_presence). Messages, iqs, directed and
 * subscription presence are routed to the node holding the recipient
 * (ops->route_remote), which delivers them (ic_xmpp_server_deliver_routed).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "xmpp_int.h"

struct ic_xmpp__remote *ic_xmpp__remote_find(struct ic_xmpp_server *srv,
                                             const char *full)
{
    return ic_map_get(&srv->remotes, full);
}

struct ic_xmpp__remote *ic_xmpp__remote_first(struct ic_xmpp_server *srv,
                                              const char *bare)
{
    return ic_map_get(&srv->remote_users, bare);
}

bool ic_xmpp__remote_send(struct ic_xmpp_server *srv,
                          const struct ic_xmpp__remote *r,
                          const struct ic_xml *st)
{
    return srv->ops.route_remote != NULL &&
           srv->ops.route_remote(srv->ops.data, r->node, st, r->full);
}

bool ic_xmpp__deliver_to(struct ic_xmpp_server *srv,
                         const char *full,
                         const struct ic_xml *st)
{
    struct ic_xmpp__session *s = ic_map_get(&srv->sessions, full);
    struct ic_xmpp__remote *r;

    if (s != NULL) {
        ic_xmpp__deliver(s, st);
        return true;
    }
    r = ic_xmpp__remote_find(srv, full);
    return r != NULL && ic_xmpp__remote_send(srv, r, st);
}

void ic_xmpp__route_to_user_nodes(struct ic_xmpp_server *srv,
                                  const char *bare,
                                  const struct ic_xml *st)
{
    unsigned sent[64];
    size_t n = 0;

    if (srv->ops.route_remote == NULL)
        return;
    for (struct ic_xmpp__remote *r = ic_xmpp__remote_first(srv, bare);
         r != NULL; r = r->next_of_user) {
        bool done = false;
        for (size_t i = 0; i < n && !done; i++)
            done = sent[i] == r->node;
        if (done)
            continue;
        if (n < IC_ARRAY_LEN(sent))
            sent[n++] = r->node;
        srv->ops.route_remote(srv->ops.data, r->node, st, NULL);
    }
}

static int priority_of(const struct ic_xml *p)
{
    struct ic_xml *x = ic_xml_child(p, "priority", IC_NS_CLIENT);
    char *t;
    long v;

    if (x == NULL)
        return 0;
    t = ic_xml_text(x);
    v = strtol(t, NULL, 10);
    ic_free(t);
    return v < -128 ? -128 : v > 127 ? 127 : (int)v;
}

static void remote_unlink(struct ic_xmpp_server *srv, struct ic_xmpp__remote *r)
{
    struct ic_xmpp__remote *first = ic_map_get(&srv->remote_users, r->bare);

    if (first == r) {
        if (r->next_of_user != NULL)
            ic_map_put(&srv->remote_users, r->bare, r->next_of_user);
        else
            ic_map_del(&srv->remote_users, r->bare);
        return;
    }
    for (struct ic_xmpp__remote *p = first; p != NULL; p = p->next_of_user)
        if (p->next_of_user == r) {
            p->next_of_user = r->next_of_user;
            return;
        }
}

static void remote_free(void *value)
{
    struct ic_xmpp__remote *r = value;

    ic_xml_free(r->presence);
    ic_free(r->full);
    ic_free(r->bare);
    ic_free(r);
}

/* Records (PRESENCE non-NULL) or forgets FULL on NODE. */
static void remote_set(struct ic_xmpp_server *srv,
                       const char *full,
                       const char *bare,
                       unsigned node,
                       const struct ic_xml *presence)
{
    struct ic_xmpp__remote *r = ic_xmpp__remote_find(srv, full);

    if (presence == NULL) {
        if (r != NULL) {
            ic_map_del(&srv->remotes, full);
            remote_unlink(srv, r);
            remote_free(r);
        }
        return;
    }
    if (r == NULL) {
        r = ic_calloc(1, sizeof *r);
        r->full = ic_strdup(full);
        r->bare = ic_strdup(bare);
        r->next_of_user = ic_map_get(&srv->remote_users, bare);
        ic_map_put(&srv->remote_users, bare, r);
        ic_map_put(&srv->remotes, full, r);
    }
    r->node = node;
    ic_xml_free(r->presence);
    r->presence = ic_xml_copy(presence);
    ic_xml_set_attr(r->presence, "to", NULL);
    r->priority = priority_of(presence);
}

void ic_xmpp_server_remote_presence(struct ic_xmpp_server *srv,
                                    const char *full_jid,
                                    unsigned node,
                                    const struct ic_xml *presence)
{
    struct ic_jid j;
    struct ic_xml *p;
    char *bare;

    if (ic_map_get(&srv->sessions, full_jid) != NULL ||
        ic_jid_parse(full_jid, &j) != 0)
        return; /* our own sessions are ours to report */
    bare = ic_jid_bare(&j);
    IC_LOG(IC_LOG_DEBUG, "remote", "%s on node %u: %s", full_jid, node,
           presence ? "available" : "unavailable");
    if (presence == NULL) /* its node tells whom it routed presence to */
        ic_xmpp__heard_forget(srv, full_jid);
    if (presence == NULL && ic_xmpp__remote_find(srv, full_jid) == NULL) {
        ic_free(bare);
        ic_jid_free(&j);
        return; /* never seen available: nothing to withdraw */
    }
    remote_set(srv, full_jid, bare, node, presence);
    if (presence != NULL) {
        p = ic_xml_copy(presence);
        ic_xml_set_attr(p, "type", NULL);
    } else {
        p = ic_xml_new("presence", IC_NS_CLIENT);
        ic_xml_set_attr(p, "type", "unavailable");
    }
    ic_xml_set_attr(p, "from", full_jid);
    ic_xml_set_attr(p, "to", NULL);
    ic_xmpp__presence_fan_out(srv, bare, p);
    ic_xml_free(p);
    ic_free(bare);
    ic_jid_free(&j);
}

void ic_xmpp_server_remote_reset(struct ic_xmpp_server *srv)
{
    ic_xmpp__remote_free_all(srv);
}

void ic_xmpp__remote_free_all(struct ic_xmpp_server *srv)
{
    ic_map_free_values(&srv->remotes, remote_free);
    ic_map_free(&srv->remote_users);
}

/* ---- stanzas routed here ----------------------------------------------- */

static bool is_type(const struct ic_xml *st, const char *type)
{
    const char *t = ic_xml_attr(st, "type");
    return t != NULL && strcmp(t, type) == 0;
}

/* An error back to ST's sender, wherever it is bound. */
static void bounce_routed(struct ic_xmpp_server *srv, const struct ic_xml *st)
{
    const char *from = ic_xml_attr(st, "from");
    struct ic_xml *r;

    if (from == NULL || is_type(st, "error") || is_type(st, "result") ||
        strcmp(st->name, "presence") == 0)
        return;
    r = ic_xmpp__error_reply(st, "cancel", "service-unavailable", NULL);
    ic_xmpp__deliver_to(srv, from, r);
    ic_xml_free(r);
}

/* Our available resources of BARE with the highest non-negative priority
 * get ST; false when there is none. */
static bool to_best_local(struct ic_xmpp_server *srv,
                          const char *bare,
                          const struct ic_xml *st)
{
    struct ic_xmpp__session *first = ic_map_get(&srv->users, bare);
    int best = -1;
    bool sent = false;

    for (struct ic_xmpp__session *s = first; s != NULL; s = s->next_of_user)
        if (s->available && s->priority > best)
            best = s->priority;
    for (struct ic_xmpp__session *s = first; s != NULL; s = s->next_of_user)
        if (s->available && s->priority == best && best >= 0) {
            ic_xmpp__deliver(s, st);
            sent = true;
        }
    return sent;
}

void ic_xmpp_server_deliver_routed(struct ic_xmpp_server *srv,
                                   struct ic_xml *st,
                                   const char *target,
                                   unsigned from,
                                   uint64_t incarnation)
{
    const char *to = ic_xml_attr(st, "to");
    struct ic_xmpp__session *s;
    struct ic_jid j;
    char *bare = NULL;
    bool ok = false;

    if (st->name != NULL && st->ns != NULL &&
        strcmp(st->ns, IC_NS_BOUND) == 0 && strcmp(st->name, "bound") == 0) {
        const char *jid = ic_xml_attr(st, "jid");
        const char *at = ic_xml_attr(st, "at");
        const char *nonce = ic_xml_attr(st, "nonce");
        if (jid != NULL && at != NULL && nonce != NULL)
            ic_xmpp__session_claimed(srv, jid, strtoull(at, NULL, 10),
                                     strtoull(nonce, NULL, 10));
        ic_xml_free(st);
        return;
    }
    if (st->name == NULL ||
        (strcmp(st->name, "message") != 0 && strcmp(st->name, "iq") != 0 &&
         strcmp(st->name, "presence") != 0)) {
        ic_xml_free(st);
        return;
    }
    if (target != NULL && (s = ic_map_get(&srv->sessions, target)) != NULL) {
        ic_xmpp__deliver(s, st);
        if (strcmp(st->name, "presence") == 0)
            ic_xmpp__heard_note(srv, st, target, from, incarnation);
        ok = true;
    } else if (to != NULL && ic_jid_parse(to, &j) == 0) {
        bare = ic_jid_bare(&j);
        if (strcmp(st->name, "presence") == 0) {
            ic_xmpp__presence_to_local(srv, bare, st);
            if (ic_map_get(&srv->users, bare) != NULL)
                ic_xmpp__heard_note(srv, st, bare, from, incarnation);
            ok = true;
        } else if (strcmp(st->name, "message") == 0) {
            ok = to_best_local(srv, bare, st);
        } else if (j.resource == NULL && is_type(st, "set")) {
            ok = ic_xmpp__roster_push_routed(srv, bare, st);
        }
        ic_jid_free(&j);
    }
    if (!ok)
        bounce_routed(srv, st);
    ic_free(bare);
    ic_xml_free(st);
}

/* ---- one element from text --------------------------------------------- */

struct parse_one {
    struct ic_xml *el;
    int count;
    bool error;
};

static void po_open(void *data, struct ic_xml *header)
{
    (void)data;
    ic_xml_free(header);
}

static void po_stanza(void *data, struct ic_xml *st)
{
    struct parse_one *p = data;

    if (p->count++ == 0)
        p->el = st;
    else
        ic_xml_free(st);
}

static void po_close(void *data)
{
    (void)data;
}

static void po_error(void *data, enum ic_stream_error cond, const char *text)
{
    struct parse_one *p = data;

    (void)cond;
    (void)text;
    p->error = true;
}

struct ic_xml *ic_xml_parse(const char *text, size_t len, const char *ns)
{
    static const struct ic_xml_stream_cbs cbs = {po_open, po_stanza, po_close,
                                                 po_error};
    struct ic_xml_limits lim = {len + 4096, 64, 1u << 16, 64};
    struct parse_one p = {0};
    struct ic_xml_stream *s = ic_xml_stream_new(&cbs, &p, &lim);
    struct ic_buf head = {0};
    size_t used;

    ic_buf_puts(&head, "<stream:stream xmlns='");
    ic_buf_append_escaped(&head, ns, strlen(ns));
    ic_buf_puts(&head, "' xmlns:stream='" IC_NS_STREAMS "'>");
    if (ic_xml_stream_feed(s, head.data, head.len, &used) != 0 ||
        ic_xml_stream_feed(s, text, len, &used) != 0)
        p.error = true;
    ic_buf_free(&head);
    ic_xml_stream_free(s);
    if (p.error || p.count != 1) {
        ic_xml_free(p.el);
        return NULL;
    }
    return p.el;
}
