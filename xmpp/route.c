/*
 * route.c - where a stanza goes (RFC 6120 section 10, RFC 6121 section 8):
 * the server itself, the user's own account, another local user's bare or
 * full JID (on this node or another), a component, or another domain over
 * S2S. A stanza from a bound session gets the session's full JID as
 * 'from'; stanzas of components and of other servers come with theirs.
 * Errors are answered with the right stanza error; an error is never
 * answered with an error.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "xmpp_int.h"

#define NS_PING "urn:xmpp:ping"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_VERSION "jabber:iq:version"
#define NS_ROSTER "jabber:iq:roster"

static bool is_type(const struct ic_xml *st, const char *type)
{
    const char *t = ic_xml_attr(st, "type");
    return t != NULL && strcmp(t, type) == 0;
}

/* A reply to ST: its id, addressed back to its sender. */
static struct ic_xml *
reply_to(const struct ic_xml *st, const char *name, const char *type)
{
    struct ic_xml *r = ic_xml_new(name, IC_NS_CLIENT);

    if (ic_xml_attr(st, "id") != NULL)
        ic_xml_set_attr(r, "id", ic_xml_attr(st, "id"));
    if (ic_xml_attr(st, "from") != NULL)
        ic_xml_set_attr(r, "to", ic_xml_attr(st, "from"));
    if (ic_xml_attr(st, "to") != NULL)
        ic_xml_set_attr(r, "from", ic_xml_attr(st, "to"));
    ic_xml_set_attr(r, "type", type);
    return r;
}

struct ic_xml *ic_xmpp__error_reply(const struct ic_xml *st,
                                    const char *type,
                                    const char *condition,
                                    const char *text)
{
    struct ic_xml *r = reply_to(st, st->name, "error");
    struct ic_xml *e = ic_xml_add(r, "error", NULL);

    ic_xml_set_attr(e, "type", type);
    ic_xml_add(e, condition, IC_NS_STANZA_ERRORS);
    if (text != NULL) {
        struct ic_xml *t = ic_xml_add(e, "text", IC_NS_STANZA_ERRORS);
        ic_xml_add_text(t, text, strlen(text));
    }
    return r;
}

struct ic_xml *ic_xmpp__iq_result(const struct ic_xml *st,
                                  struct ic_xml *payload)
{
    struct ic_xml *r = reply_to(st, "iq", "result");

    if (payload != NULL)
        ic_xml_append(r, payload);
    return r;
}

void ic_xmpp__deliver(struct ic_xmpp__session *s, const struct ic_xml *st)
{
    ic_xmpp__conn_send_xml(s->conn, st);
}

/* Gives reply R (taken) to the sender of a stanza: session FROM directly,
 * or, FROM NULL, wherever R's 'to' is. */
static void reply(struct ic_xmpp_server *srv,
                  struct ic_xmpp__session *from,
                  struct ic_xml *r)
{
    if (from != NULL) {
        ic_xmpp__deliver(from, r);
        ic_xml_free(r);
    } else {
        ic_xmpp__send(srv, r);
    }
}

/* Answers the sender (if it is an error-answerable stanza). */
static void bounce(struct ic_xmpp_server *srv,
                   struct ic_xmpp__session *from,
                   const struct ic_xml *st,
                   const char *type,
                   const char *cond,
                   const char *text)
{
    if (is_type(st, "error") || is_type(st, "result"))
        return;
    if (from == NULL && ic_xml_attr(st, "from") == NULL)
        return; /* nobody to answer */
    reply(srv, from, ic_xmpp__error_reply(st, type, cond, text));
}

void ic_xmpp__bounce(struct ic_xmpp_server *srv,
                     const struct ic_xml *st,
                     const char *type,
                     const char *cond,
                     const char *text)
{
    bounce(srv, NULL, st, type, cond, text);
}

static struct ic_xml *disco_info_server(struct ic_xmpp_server *srv)
{
    static const char *const features[] = {
        NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING,
        NS_VERSION,    IC_NS_SESSION,  "urn:xmpp:sasl-cb:0",
    };
    struct ic_xml *q = ic_xml_new("query", NS_DISCO_INFO);
    struct ic_xml *id = ic_xml_add(q, "identity", NULL);

    (void)srv;
    ic_xml_set_attr(id, "category", "server");
    ic_xml_set_attr(id, "type", "im");
    ic_xml_set_attr(id, "name", "Intercloud Root");
    for (size_t i = 0; i < IC_ARRAY_LEN(features); i++)
        ic_xml_set_attr(ic_xml_add(q, "feature", NULL), "var", features[i]);
    return q;
}

static struct ic_xml *disco_items_server(struct ic_xmpp_server *srv)
{
    struct ic_xml *q = ic_xml_new("query", NS_DISCO_ITEMS);

    for (struct ic_xmpp__component *c = srv->components; c; c = c->next) {
        struct ic_xml *it = ic_xml_add(q, "item", NULL);
        ic_xml_set_attr(it, "jid", c->c.jid);
        ic_xml_set_attr(it, "name", c->c.identity_name);
    }
    return q;
}

/* An iq to the server itself, or to the sender's own account (S, the
 * sender's session, is NULL for another server's user or a component). */
static void server_iq(struct ic_xmpp_server *srv,
                      struct ic_xmpp__session *s,
                      struct ic_xml *st,
                      bool account)
{
    struct ic_xml *q = ic_xml_child(st, NULL, NULL), *payload = NULL;
    bool get = is_type(st, "get"), set = is_type(st, "set");

    if (!get && !set) /* results and errors to us: nothing to do */
        return;
    if (q == NULL || q->ns == NULL) {
        bounce(srv, s, st, "modify", "bad-request", NULL);
        return;
    }
    if (strcmp(q->ns, NS_ROSTER) == 0 && account && s != NULL) {
        ic_xmpp__roster_iq(s, st);
        return;
    }
    if (strcmp(q->ns, NS_PING) == 0 && get) {
        /* an empty result */
    } else if (strcmp(q->ns, IC_NS_SESSION) == 0 && set) {
        /* the legacy session iq: nothing to establish */
    } else if (strcmp(q->ns, NS_DISCO_INFO) == 0 && get) {
        payload = account ? ic_xml_new("query", NS_DISCO_INFO)
                          : disco_info_server(srv);
        if (account)
            ic_xml_set_attr(ic_xml_add(payload, "identity", NULL), "category",
                            "account");
    } else if (strcmp(q->ns, NS_DISCO_ITEMS) == 0 && get) {
        payload = account ? ic_xml_new("query", NS_DISCO_ITEMS)
                          : disco_items_server(srv);
    } else if (strcmp(q->ns, NS_VERSION) == 0 && get && !account) {
        payload = ic_xml_new("query", NS_VERSION);
        ic_xml_add_text(ic_xml_add(payload, "name", NULL), "icroot", 6);
        ic_xml_add_text(ic_xml_add(payload, "version", NULL), "0.1", 3);
    } else {
        bounce(srv, s, st, "cancel", "service-unavailable", NULL);
        return;
    }
    reply(srv, s, ic_xmpp__iq_result(st, payload));
}

/* RFC 6121 8.5.2: a message to a bare JID goes to the available resources
 * of the highest non-negative priority. */
static void message_to_bare(struct ic_xmpp_server *srv,
                            struct ic_xmpp__session *from,
                            const char *bare,
                            struct ic_xml *st)
{
    struct ic_xmpp__session *first = ic_map_get(&srv->users, bare);
    struct ic_xmpp__remote *rfirst = ic_xmpp__remote_first(srv, bare);
    int best = -1;
    bool sent = false;

    for (struct ic_xmpp__session *s = first; s != NULL; s = s->next_of_user)
        if (s->available && s->priority > best)
            best = s->priority;
    for (struct ic_xmpp__remote *r = rfirst; r != NULL; r = r->next_of_user)
        if (r->priority > best)
            best = r->priority;
    for (struct ic_xmpp__session *s = first; s != NULL; s = s->next_of_user)
        if (s->available && s->priority == best && best >= 0) {
            ic_xmpp__deliver(s, st);
            sent = true;
        }
    /* resources on other nodes of the cluster, through their nodes */
    for (struct ic_xmpp__remote *r = rfirst; r != NULL; r = r->next_of_user)
        if (r->priority == best && best >= 0 &&
            ic_xmpp__remote_send(srv, r, st))
            sent = true;
    if (!sent && !is_type(st, "groupchat") && !is_type(st, "headline"))
        bounce(srv, from, st, "cancel", "service-unavailable", NULL);
}

static void to_local_user(struct ic_xmpp_server *srv,
                          struct ic_xmpp__session *from,
                          struct ic_jid *to,
                          struct ic_xml *st)
{
    char *bare = ic_jid_bare(to);
    bool own = from != NULL && strcmp(bare, from->bare) == 0;

    if (to->resource != NULL) {
        char *full = ic_jid_to_string(to);
        bool sent = ic_xmpp__deliver_to(srv, full, st); /* here or remote */
        ic_free(full);
        if (sent)
            ;
        else if (strcmp(st->name, "message") == 0)
            message_to_bare(srv, from, bare, st);
        else if (strcmp(st->name, "iq") == 0)
            bounce(srv, from, st, "cancel", "service-unavailable", NULL);
    } else if (strcmp(st->name, "message") == 0) {
        message_to_bare(srv, from, bare, st);
    } else if (strcmp(st->name, "iq") == 0) {
        if (own)
            server_iq(srv, from, st, true);
        else
            bounce(srv, from, st, "cancel", "service-unavailable", NULL);
    }
    ic_free(bare);
}

/* ST (taken, 'to' set) from session FROM, or, FROM NULL, from a
 * component, the server, another node or another server: to a component,
 * another domain, the server, or a local user. */
static void route_to(struct ic_xmpp_server *srv,
                     struct ic_xmpp__session *from,
                     struct ic_xml *st)
{
    struct ic_jid to;
    struct ic_xmpp__component *comp;

    if (ic_jid_parse(ic_xml_attr(st, "to"), &to) != 0) {
        bounce(srv, from, st, "modify", "jid-malformed", NULL);
        ic_xml_free(st);
        return;
    }
    comp = to.local == NULL && to.resource == NULL
               ? ic_xmpp__component_find(srv, to.domain)
               : NULL;
    if (comp != NULL) {
        ic_xmpp__component_handle(srv, comp, from, st);
        st = NULL;
    } else if (strcasecmp(to.domain, srv->domain) != 0) {
        ic_xmpp__s2s_send(srv, st);
        st = NULL;
    } else if (from == NULL && strcmp(st->name, "presence") == 0) {
        ic_xmpp__presence_in(srv, st);
    } else if (to.local == NULL) {
        if (strcmp(st->name, "iq") == 0)
            server_iq(srv, from, st, false);
    } else {
        to_local_user(srv, from, &to, st);
    }
    ic_jid_free(&to);
    ic_xml_free(st);
}

void ic_xmpp__send(struct ic_xmpp_server *srv, struct ic_xml *st)
{
    if (st->name == NULL || ic_xml_attr(st, "to") == NULL ||
        (strcmp(st->name, "message") != 0 && strcmp(st->name, "iq") != 0 &&
         strcmp(st->name, "presence") != 0)) {
        ic_xml_free(st);
        return;
    }
    route_to(srv, NULL, st);
}

void ic_xmpp__route(struct ic_xmpp_server *srv,
                    struct ic_xmpp__session *from,
                    struct ic_xml *st)
{
    if (strcmp(st->name, "message") != 0 && strcmp(st->name, "iq") != 0 &&
        strcmp(st->name, "presence") != 0) {
        ic_xmpp__conn_fail(from->conn, IC_SE_UNSUPPORTED_STANZA_TYPE, st->name);
        ic_xml_free(st);
        return;
    }
    ic_xml_set_attr(st, "from", from->full);
    if (strcmp(st->name, "presence") == 0) {
        ic_xmpp__presence_handle(srv, from, st);
    } else if (ic_xml_attr(st, "to") == NULL) {
        if (strcmp(st->name, "iq") == 0)
            server_iq(srv, from, st, true);
        else
            message_to_bare(srv, from, from->bare, st);
    } else {
        route_to(srv, from, st);
        return;
    }
    ic_xml_free(st);
}
