/*
 * roster.c - rosters (RFC 6121 section 2): get, set, remove, and pushes to
 * the user's sessions. Items live in the application's store behind
 * ic_xmpp_ops; an item that only records an unanswered inbound
 * subscription request stays out of roster results.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "xmpp_int.h"

#define NS_ROSTER "jabber:iq:roster"

static const char *const sub_names[] = {"none", "to", "from", "both"};

void ic_roster_item_free(struct ic_roster_item *it)
{
    if (it == NULL)
        return;
    ic_free(it->jid);
    ic_free(it->name);
    for (size_t i = 0; i < it->ngroups; i++)
        ic_free(it->groups[i]);
    ic_free(it->groups);
    memset(it, 0, sizeof *it);
}

void ic_roster_free(struct ic_roster *r)
{
    for (size_t i = 0; i < r->n; i++)
        ic_roster_item_free(&r->items[i]);
    ic_free(r->items);
    memset(r, 0, sizeof *r);
}

bool ic_xmpp__roster_hidden(const struct ic_roster_item *it)
{
    return it->sub == IC_SUB_NONE && !it->ask && it->pending_in &&
           it->name == NULL && it->ngroups == 0;
}

/* A copy of USER's item for CONTACT; false when there is none. */
bool ic_xmpp__roster_find(struct ic_xmpp_server *srv,
                          const char *user,
                          const char *contact,
                          struct ic_roster_item *out)
{
    struct ic_roster r = {0};
    bool found = false;

    memset(out, 0, sizeof *out);
    if (srv->ops.roster_get == NULL ||
        srv->ops.roster_get(srv->ops.data, user, &r) != 0)
        return false;
    for (size_t i = 0; i < r.n && !found; i++)
        if (strcmp(r.items[i].jid, contact) == 0) {
            *out = r.items[i];
            memset(&r.items[i], 0, sizeof r.items[i]);
            found = true;
        }
    ic_roster_free(&r);
    if (!found)
        out->jid = ic_strdup(contact);
    return found;
}

static struct ic_xml *item_xml(const struct ic_roster_item *it, bool removed)
{
    struct ic_xml *x = ic_xml_new("item", NS_ROSTER);

    ic_xml_set_attr(x, "jid", it->jid);
    ic_xml_set_attr(x, "subscription",
                    removed ? "remove" : sub_names[it->sub & 3]);
    if (it->ask && !removed)
        ic_xml_set_attr(x, "ask", "subscribe");
    if (it->name != NULL)
        ic_xml_set_attr(x, "name", it->name);
    for (size_t i = 0; i < it->ngroups; i++) {
        struct ic_xml *g = ic_xml_add(x, "group", NULL);
        ic_xml_add_text(g, it->groups[i], strlen(it->groups[i]));
    }
    return x;
}

/* Roster push (RFC 6121 2.1.6) to every session of USER. */
void ic_xmpp__roster_push(struct ic_xmpp_server *srv,
                          const char *user,
                          const struct ic_roster_item *it,
                          bool removed)
{
    struct ic_xmpp__session *first = ic_map_get(&srv->users, user);
    char id[32];

    if (!removed && ic_xmpp__roster_hidden(it))
        return;
    for (struct ic_xmpp__session *s = first; s != NULL; s = s->next_of_user) {
        struct ic_xml *iq = ic_xml_new("iq", IC_NS_CLIENT);
        struct ic_xml *q = ic_xml_add(iq, "query", NS_ROSTER);
        snprintf(id, sizeof id, "push%llu",
                 (unsigned long long)++srv->id_counter);
        ic_xml_set_attr(iq, "type", "set");
        ic_xml_set_attr(iq, "id", id);
        ic_xml_set_attr(iq, "to", s->full);
        ic_xml_append(q, item_xml(it, removed));
        ic_xmpp__deliver(s, iq);
        ic_xml_free(iq);
    }
    /* and the user's sessions on other nodes: every other node pushes it
     * to its own sessions of USER (ic_xmpp__roster_push_routed) */
    if (srv->ops.route_remote != NULL) {
        struct ic_xml *iq = ic_xml_new("iq", IC_NS_CLIENT);
        struct ic_xml *q = ic_xml_add(iq, "query", NS_ROSTER);
        ic_xml_set_attr(iq, "type", "set");
        ic_xml_set_attr(iq, "to", user);
        ic_xml_append(q, item_xml(it, removed));
        srv->ops.route_remote(srv->ops.data, 0, iq, NULL);
        ic_xml_free(iq);
    }
}

/* A roster push another node routed here (to the bare JID, no 'from'):
 * to each of our sessions of that user, with its own id. */
bool ic_xmpp__roster_push_routed(struct ic_xmpp_server *srv,
                                 const char *user,
                                 const struct ic_xml *st)
{
    const struct ic_xml *q = ic_xml_child(st, "query", NS_ROSTER);
    char id[32];

    if (q == NULL || ic_xml_attr(st, "from") != NULL ||
        strchr(user, '/') != NULL)
        return false;
    for (struct ic_xmpp__session *s = ic_map_get(&srv->users, user); s != NULL;
         s = s->next_of_user) {
        struct ic_xml *iq = ic_xml_copy(st);
        snprintf(id, sizeof id, "push%llu",
                 (unsigned long long)++srv->id_counter);
        ic_xml_set_attr(iq, "id", id);
        ic_xml_set_attr(iq, "to", s->full);
        ic_xmpp__deliver(s, iq);
        ic_xml_free(iq);
    }
    return true;
}

/* Stores ITEM for USER and pushes it. */
void ic_roster_apply(struct ic_roster_item *it,
                     enum ic_roster_event ev,
                     const struct ic_roster_item *fields)
{
    unsigned sub = (unsigned)it->sub;

    switch (ev) {
    case IC_ROSTER_SET:
        ic_free(it->name);
        it->name = fields && fields->name ? ic_strdup(fields->name) : NULL;
        for (size_t i = 0; i < it->ngroups; i++)
            ic_free(it->groups[i]);
        ic_free(it->groups);
        it->groups = NULL;
        it->ngroups = 0;
        if (fields != NULL && fields->ngroups > 0) {
            it->groups = ic_calloc(fields->ngroups, sizeof *it->groups);
            for (size_t i = 0; i < fields->ngroups; i++)
                it->groups[i] = ic_strdup(fields->groups[i]);
            it->ngroups = fields->ngroups;
        }
        break;
    case IC_ROSTER_REMOVE:
        break;
    case IC_ROSTER_OUT_SUBSCRIBE:
        if (!(sub & IC_SUB_TO))
            it->ask = true;
        break;
    case IC_ROSTER_IN_SUBSCRIBE:
        if (!(sub & IC_SUB_FROM))
            it->pending_in = true;
        break;
    case IC_ROSTER_OUT_SUBSCRIBED:
        sub |= IC_SUB_FROM;
        it->pending_in = false;
        break;
    case IC_ROSTER_IN_SUBSCRIBED:
        sub |= IC_SUB_TO;
        it->ask = false;
        break;
    case IC_ROSTER_OUT_UNSUBSCRIBE:
        sub &= ~(unsigned)IC_SUB_TO;
        it->ask = false;
        break;
    case IC_ROSTER_IN_UNSUBSCRIBE:
        sub &= ~(unsigned)IC_SUB_FROM;
        it->pending_in = false;
        break;
    case IC_ROSTER_OUT_UNSUBSCRIBED:
        sub &= ~(unsigned)IC_SUB_FROM;
        it->pending_in = false;
        break;
    case IC_ROSTER_IN_UNSUBSCRIBED:
        sub &= ~(unsigned)IC_SUB_TO;
        it->ask = false;
        break;
    }
    it->sub = (enum ic_sub)(sub & 3);
}

int ic_xmpp__roster_change(struct ic_xmpp_server *srv,
                           const char *user,
                           struct ic_roster_item *it,
                           enum ic_roster_event ev,
                           const struct ic_roster_item *fields)
{
    int rc;

    ic_roster_apply(it, ev, fields);
    if (srv->ops.roster_event != NULL)
        rc = srv->ops.roster_event(srv->ops.data, user, it->jid, ev, fields);
    else if (ev == IC_ROSTER_REMOVE)
        rc = srv->ops.roster_del
                 ? srv->ops.roster_del(srv->ops.data, user, it->jid)
                 : IC_EINVAL;
    else
        rc = srv->ops.roster_put ? srv->ops.roster_put(srv->ops.data, user, it)
                                 : IC_EINVAL;
    if (rc == 0)
        ic_xmpp__roster_push(srv, user, it, ev == IC_ROSTER_REMOVE);
    return rc;
}

static void reply(struct ic_xmpp__session *s,
                  const struct ic_xml *st,
                  struct ic_xml *payload)
{
    struct ic_xml *r = ic_xmpp__iq_result(st, payload);
    ic_xmpp__deliver(s, r);
    ic_xml_free(r);
}

static void fail(struct ic_xmpp__session *s,
                 const struct ic_xml *st,
                 const char *type,
                 const char *cond)
{
    struct ic_xml *r = ic_xmpp__error_reply(st, type, cond, NULL);
    ic_xmpp__deliver(s, r);
    ic_xml_free(r);
}

static void roster_get(struct ic_xmpp__session *s, const struct ic_xml *st)
{
    struct ic_xmpp_server *srv = s->conn->srv;
    struct ic_roster r = {0};
    struct ic_xml *q;

    if (srv->ops.roster_get == NULL ||
        srv->ops.roster_get(srv->ops.data, s->bare, &r) != 0) {
        fail(s, st, "wait", "internal-server-error");
        return;
    }
    q = ic_xml_new("query", NS_ROSTER);
    for (size_t i = 0; i < r.n; i++)
        if (!ic_xmpp__roster_hidden(&r.items[i]))
            ic_xml_append(q, item_xml(&r.items[i], false));
    ic_roster_free(&r);
    reply(s, st, q);
}

/* Name and groups from a set request into IT. */
static void take_item_fields(const struct ic_xml *x, struct ic_roster_item *it)
{
    const char *name = ic_xml_attr(x, "name");

    ic_free(it->name);
    it->name = name && name[0] ? ic_strdup(name) : NULL;
    for (size_t i = 0; i < it->ngroups; i++)
        ic_free(it->groups[i]);
    it->ngroups = 0;
    for (struct ic_xml *g = ic_xml_child(x, "group", NS_ROSTER); g != NULL;
         g = ic_xml_next(g, "group", NS_ROSTER)) {
        it->groups =
            ic_realloc(it->groups, (it->ngroups + 1) * sizeof *it->groups);
        it->groups[it->ngroups++] = ic_xml_text(g);
    }
}

static void roster_set(struct ic_xmpp__session *s, const struct ic_xml *st)
{
    struct ic_xmpp_server *srv = s->conn->srv;
    struct ic_xml *q = ic_xml_child(st, "query", NS_ROSTER);
    struct ic_xml *x = q ? ic_xml_child(q, "item", NS_ROSTER) : NULL;
    const char *sub;
    struct ic_roster_item it;
    struct ic_jid j;
    char *bare;
    int rc;

    if (x == NULL || ic_xml_next(x, "item", NS_ROSTER) != NULL ||
        ic_xml_attr(x, "jid") == NULL) {
        fail(s, st, "modify", "bad-request");
        return;
    }
    if (ic_jid_parse(ic_xml_attr(x, "jid"), &j) != 0) {
        fail(s, st, "modify", "jid-malformed");
        return;
    }
    bare = ic_jid_bare(&j);
    ic_jid_free(&j);
    sub = ic_xml_attr(x, "subscription");
    ic_xmpp__roster_find(srv, s->bare, bare, &it);
    if (sub != NULL && strcmp(sub, "remove") == 0) {
        ic_xmpp__presence_cancel_all(s, &it);
        ic_xmpp__roster_change(srv, s->bare, &it, IC_ROSTER_REMOVE, NULL);
    } else {
        struct ic_roster_item fields = {0};
        take_item_fields(x, &fields);
        rc = ic_xmpp__roster_change(srv, s->bare, &it, IC_ROSTER_SET, &fields);
        ic_roster_item_free(&fields);
        if (rc != 0) {
            fail(s, st, "wait", "internal-server-error");
            goto out;
        }
    }
    reply(s, st, NULL);
out:
    ic_roster_item_free(&it);
    ic_free(bare);
}

void ic_xmpp__roster_iq(struct ic_xmpp__session *s, struct ic_xml *st)
{
    const char *type = ic_xml_attr(st, "type");

    if (type != NULL && strcmp(type, "get") == 0)
        roster_get(s, st);
    else if (type != NULL && strcmp(type, "set") == 0)
        roster_set(s, st);
}
