/*
 * presence.c - presence (RFC 6121 sections 3 and 4) among the users of
 * this server: broadcast to subscribers and the user's own resources,
 * answers to the probes an initial presence implies, directed presence,
 * the four subscription states with pending requests in and out, and
 * unavailable presence when a session ends.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xmpp_int.h"

/* A recipient of directed available presence (RFC 6121 4.6.3). */
struct ic_xmpp__directed {
    char *jid; /* as addressed: full or bare */
    struct ic_xmpp__directed *next;
};

static const char *type_of(const struct ic_xml *st)
{
    const char *t = ic_xml_attr(st, "type");
    return t ? t : "";
}

static int priority_of(const struct ic_xml *st)
{
    struct ic_xml *p = ic_xml_child(st, "priority", IC_NS_CLIENT);
    char *t;
    long v;

    if (p == NULL)
        return 0;
    t = ic_xml_text(p);
    v = strtol(t, NULL, 10);
    ic_free(t);
    return v < -128 ? -128 : v > 127 ? 127 : (int)v;
}

/* Sends ST to every available session of user BARE. */
static void
to_user(struct ic_xmpp_server *srv, const char *bare, const struct ic_xml *st)
{
    for (struct ic_xmpp__session *s = ic_map_get(&srv->users, bare); s != NULL;
         s = s->next_of_user)
        if (s->available)
            ic_xmpp__deliver(s, st);
}

/* ST to every available session of BARE on every node of the cluster:
 * ours directly, and through every other node (not only those the
 * registry names: BARE may have come online there a moment ago, before
 * its presence reached us). For presence stanzas that are not broadcasts
 * (subscriptions, directed and shared presence): rare enough to go to
 * every node. */
static void to_user_all(struct ic_xmpp_server *srv,
                        const char *bare,
                        const struct ic_xml *st)
{
    to_user(srv, bare, st);
    if (srv->ops.route_remote != NULL)
        srv->ops.route_remote(srv->ops.data, 0, st, NULL);
}

/* Whether BARE (a bare JID or a domain) is of this server's domain. */
static bool ours(const struct ic_xmpp_server *srv, const char *bare)
{
    const char *at = strchr(bare, '@');

    return strcasecmp(at ? at + 1 : bare, srv->domain) == 0;
}

/* ST for contact BARE: over S2S when BARE is of another domain (ST's 'to'
 * must be set), else to BARE's sessions here (ALL: and on every node). */
static void to_contact(struct ic_xmpp_server *srv,
                       const char *bare,
                       const struct ic_xml *st,
                       bool all)
{
    if (!ours(srv, bare))
        ic_xmpp__send(srv, ic_xml_copy(st));
    else if (all)
        to_user_all(srv, bare, st);
    else
        to_user(srv, bare, st);
}

void ic_xmpp__presence_to_local(struct ic_xmpp_server *srv,
                                const char *bare,
                                const struct ic_xml *st)
{
    to_user(srv, bare, st);
}

void ic_xmpp__presence_changed(struct ic_xmpp__session *s,
                               const struct ic_xml *presence)
{
    struct ic_xmpp_server *srv = s->conn->srv;

    if (srv->ops.presence_changed != NULL)
        srv->ops.presence_changed(srv->ops.data, s->full, presence);
}

/* Presence P of a session of BARE on another node, as every node delivers
 * a registry change to its own sessions: to the local sessions of BARE's
 * subscribers (BARE's roster, items 'from' and 'both') and of BARE itself. */
void ic_xmpp__presence_fan_out(struct ic_xmpp_server *srv,
                               const char *bare,
                               struct ic_xml *p)
{
    struct ic_roster r = {0};

    if (srv->ops.roster_get != NULL)
        srv->ops.roster_get(srv->ops.data, bare, &r);
    /* contacts of other domains heard it from the node it changed on */
    for (size_t i = 0; i < r.n; i++)
        if ((r.items[i].sub == IC_SUB_FROM || r.items[i].sub == IC_SUB_BOTH) &&
            ours(srv, r.items[i].jid)) {
            ic_xml_set_attr(p, "to", r.items[i].jid);
            to_user(srv, r.items[i].jid, p);
        }
    ic_roster_free(&r);
    ic_xml_set_attr(p, "to", NULL);
    to_user(srv, bare, p);
}

static bool account_exists(struct ic_xmpp_server *srv, const char *bare)
{
    struct ic_scram_creds c;
    const char *at = strchr(bare, '@');
    char *local;
    bool ok;

    if (at == NULL || strcasecmp(at + 1, srv->domain) != 0)
        return false;
    local = ic_strndup(bare, (size_t)(at - bare));
    ok = srv->ops.get_creds(srv->ops.data, local, IC_SCRAM_SHA256, &c) == 0;
    ic_free(local);
    return ok;
}

/* Sends the current presence of every available session of FROM_BARE to
 * the available sessions of TO_BARE (or only to session ONLY). */
static void share_presence(struct ic_xmpp_server *srv,
                           const char *from_bare,
                           const char *to_bare,
                           struct ic_xmpp__session *only)
{
    for (struct ic_xmpp__session *f = ic_map_get(&srv->users, from_bare);
         f != NULL; f = f->next_of_user) {
        if (!f->available || f->presence == NULL)
            continue;
        ic_xml_set_attr(f->presence, "to", only ? only->full : to_bare);
        if (only != NULL)
            ic_xmpp__deliver(only, f->presence);
        else
            to_contact(srv, to_bare, f->presence, true);
        ic_xml_set_attr(f->presence, "to", NULL);
    }
    /* and FROM_BARE's sessions on other nodes, from the registry */
    for (struct ic_xmpp__remote *r = ic_xmpp__remote_first(srv, from_bare);
         r != NULL; r = r->next_of_user) {
        struct ic_xml *p = ic_xml_copy(r->presence);
        ic_xml_set_attr(p, "from", r->full);
        ic_xml_set_attr(p, "to", only ? only->full : to_bare);
        if (only != NULL)
            ic_xmpp__deliver(only, p);
        else
            to_contact(srv, to_bare, p, true);
        ic_xml_free(p);
    }
}

/* Unavailable presence of every session of FROM_BARE to TO_BARE. */
static void withdraw_presence(struct ic_xmpp_server *srv,
                              const char *from_bare,
                              const char *to_bare)
{
    for (struct ic_xmpp__session *f = ic_map_get(&srv->users, from_bare);
         f != NULL; f = f->next_of_user) {
        struct ic_xml *p = ic_xml_new("presence", IC_NS_CLIENT);
        ic_xml_set_attr(p, "from", f->full);
        ic_xml_set_attr(p, "to", to_bare);
        ic_xml_set_attr(p, "type", "unavailable");
        to_contact(srv, to_bare, p, true);
        ic_xml_free(p);
    }
    for (struct ic_xmpp__remote *r = ic_xmpp__remote_first(srv, from_bare);
         r != NULL; r = r->next_of_user) {
        struct ic_xml *p = ic_xml_new("presence", IC_NS_CLIENT);
        ic_xml_set_attr(p, "from", r->full);
        ic_xml_set_attr(p, "to", to_bare);
        ic_xml_set_attr(p, "type", "unavailable");
        to_contact(srv, to_bare, p, true);
        ic_xml_free(p);
    }
}

/* Whether USER's roster gives CONTACT (bare) a subscription to USER's
 * presence: then broadcasts reach it anyway. */
static bool
is_subscriber(struct ic_xmpp_server *srv, const char *user, const char *contact)
{
    struct ic_roster_item it;
    bool from;

    ic_xmpp__roster_find(srv, user, contact, &it);
    from = it.sub == IC_SUB_FROM || it.sub == IC_SUB_BOTH;
    ic_roster_item_free(&it);
    return from;
}

/* Remembers (AVAILABLE) or forgets directed presence to JID. */
static void directed_note(struct ic_xmpp__session *s,
                          const char *jid,
                          const char *bare,
                          bool available)
{
    struct ic_xmpp__directed **pp = &s->directed, *d;

    for (; *pp != NULL; pp = &(*pp)->next)
        if (strcmp((*pp)->jid, jid) == 0)
            break;
    if (!available && *pp != NULL) {
        d = *pp;
        *pp = d->next;
        ic_free(d->jid);
        ic_free(d);
    } else if (available && *pp == NULL &&
               !is_subscriber(s->conn->srv, s->bare, bare)) {
        d = ic_calloc(1, sizeof *d);
        d->jid = ic_strdup(jid);
        d->next = s->directed;
        s->directed = d;
    }
}

/* Delivers presence P to JID (full: that session; bare: the user's
 * available sessions). */
static void
to_jid(struct ic_xmpp_server *srv, const char *jid, struct ic_xml *p)
{
    ic_xml_set_attr(p, "to", jid);
    if (!ours(srv, jid))
        ic_xmpp__send(srv, ic_xml_copy(p));
    else if (strchr(jid, '/') != NULL)
        ic_xmpp__deliver_to(srv, jid, p);
    else
        to_user_all(srv, jid, p);
    ic_xml_set_attr(p, "to", NULL);
}

/* Unavailable presence P to every directed-presence recipient of S; the
 * list is emptied. */
static void directed_flush(struct ic_xmpp__session *s, struct ic_xml *p)
{
    struct ic_xmpp__directed *d = s->directed, *next;

    s->directed = NULL;
    for (; d != NULL; d = next) {
        next = d->next;
        to_jid(s->conn->srv, d->jid, p);
        ic_free(d->jid);
        ic_free(d);
    }
}

/* Presence broadcast (RFC 6121 4.2.2, 4.4.2, 4.5.2). */
static void broadcast(struct ic_xmpp_server *srv,
                      struct ic_xmpp__session *s,
                      const struct ic_xml *st)
{
    bool available = strcmp(type_of(st), "unavailable") != 0;
    bool initial = available && !s->available;
    struct ic_roster r = {0};

    if (srv->ops.roster_get != NULL)
        srv->ops.roster_get(srv->ops.data, s->bare, &r);
    ic_xml_free(s->presence);
    s->presence = available ? ic_xml_copy(st) : NULL;
    s->priority = available ? priority_of(st) : 0;
    s->available = available;
    ic_xmpp__presence_changed(s, s->presence);
    for (size_t i = 0; i < r.n; i++) {
        struct ic_roster_item *it = &r.items[i];
        if (it->sub == IC_SUB_FROM || it->sub == IC_SUB_BOTH) {
            struct ic_xml *p = ic_xml_copy(st);
            ic_xml_set_attr(p, "to", it->jid);
            to_contact(srv, it->jid, p, false);
            ic_xml_free(p);
        }
        /* Initial presence probes the contacts we are subscribed to: ours
         * are answered from their sessions directly, the others' servers
         * get a probe (RFC 6121 4.3). */
        if (initial && (it->sub == IC_SUB_TO || it->sub == IC_SUB_BOTH)) {
            if (ours(srv, it->jid)) {
                share_presence(srv, it->jid, s->bare, s);
            } else {
                struct ic_xml *p = ic_xml_new("presence", IC_NS_CLIENT);
                ic_xml_set_attr(p, "from", s->bare);
                ic_xml_set_attr(p, "to", it->jid);
                ic_xml_set_attr(p, "type", "probe");
                ic_xmpp__send(srv, p);
            }
        }
        if (initial && it->pending_in) {
            struct ic_xml *p = ic_xml_new("presence", IC_NS_CLIENT);
            ic_xml_set_attr(p, "from", it->jid);
            ic_xml_set_attr(p, "to", s->bare);
            ic_xml_set_attr(p, "type", "subscribe");
            ic_xmpp__deliver(s, p);
            ic_xml_free(p);
        }
    }
    ic_roster_free(&r);
    /* and to all of the user's own available resources; a resource that
     * just came online learns about its siblings */
    for (struct ic_xmpp__session *o = ic_map_get(&srv->users, s->bare);
         o != NULL; o = o->next_of_user) {
        if (o->available || o == s)
            ic_xmpp__deliver(o, st);
        if (initial && o != s && o->available && o->presence != NULL)
            ic_xmpp__deliver(s, o->presence);
    }
    for (struct ic_xmpp__remote *o = ic_xmpp__remote_first(srv, s->bare);
         initial && o != NULL; o = o->next_of_user) {
        struct ic_xml *p = ic_xml_copy(o->presence);
        ic_xml_set_attr(p, "from", o->full);
        ic_xmpp__deliver(s, p);
        ic_xml_free(p);
    }
    if (!available) {
        struct ic_xml *p = ic_xml_copy(st);
        directed_flush(s, p);
        ic_xml_free(p);
    }
}

void ic_xmpp__presence_unavailable(struct ic_xmpp__session *s)
{
    struct ic_xml *p = ic_xml_new("presence", IC_NS_CLIENT);

    ic_xml_set_attr(p, "from", s->full);
    ic_xml_set_attr(p, "type", "unavailable");
    /* The session is going: no echo to itself. */
    s->available = false;
    ic_xmpp__presence_changed(s, NULL);
    {
        struct ic_xmpp_server *srv = s->conn->srv;
        struct ic_roster r = {0};
        if (srv->ops.roster_get != NULL)
            srv->ops.roster_get(srv->ops.data, s->bare, &r);
        for (size_t i = 0; i < r.n; i++)
            if (r.items[i].sub == IC_SUB_FROM ||
                r.items[i].sub == IC_SUB_BOTH) {
                ic_xml_set_attr(p, "to", r.items[i].jid);
                to_contact(srv, r.items[i].jid, p, false);
            }
        ic_roster_free(&r);
        ic_xml_set_attr(p, "to", NULL);
        for (struct ic_xmpp__session *o = ic_map_get(&srv->users, s->bare);
             o != NULL; o = o->next_of_user)
            if (o != s && o->available)
                ic_xmpp__deliver(o, p);
    }
    directed_flush(s, p);
    ic_xml_free(p);
}

/* The subscription-related presence P (type TYPE) from user U to
 * contact C, both bare JIDs, as an ic_xml stamped with U's bare JID. */
static void deliver_sub(struct ic_xmpp_server *srv,
                        const char *u,
                        const char *c,
                        const char *type)
{
    struct ic_xml *p = ic_xml_new("presence", IC_NS_CLIENT);

    ic_xml_set_attr(p, "from", u);
    ic_xml_set_attr(p, "to", c);
    ic_xml_set_attr(p, "type", type);
    to_contact(srv, c, p, true);
    ic_xml_free(p);
}

/* RFC 6121 3.1-3.3: U asks to see C's presence. */
static void subscribe(struct ic_xmpp_server *srv, const char *u, const char *c)
{
    struct ic_roster_item ui, ci;

    ic_xmpp__roster_find(srv, u, c, &ui);
    if (!(ui.sub & IC_SUB_TO))
        ic_xmpp__roster_change(srv, u, &ui, IC_ROSTER_OUT_SUBSCRIBE, NULL);
    ic_xmpp__roster_find(srv, c, u, &ci);
    if (!ours(srv, c)) { /* C's server decides */
        deliver_sub(srv, u, c, "subscribe");
    } else if (ci.sub & IC_SUB_FROM) { /* already approved: answer for C */
        deliver_sub(srv, c, u, "subscribed");
    } else if (account_exists(srv, c)) {
        ic_xmpp__roster_change(srv, c, &ci, IC_ROSTER_IN_SUBSCRIBE, NULL);
        deliver_sub(srv, u, c, "subscribe");
    }
    ic_roster_item_free(&ui);
    ic_roster_item_free(&ci);
}

/* U approves C's request: C now sees U's presence. */
static void subscribed(struct ic_xmpp_server *srv, const char *u, const char *c)
{
    struct ic_roster_item ui, ci;

    ic_xmpp__roster_find(srv, u, c, &ui);
    ic_xmpp__roster_change(srv, u, &ui, IC_ROSTER_OUT_SUBSCRIBED, NULL);
    ic_xmpp__roster_find(srv, c, u, &ci);
    if (!ours(srv, c)) {
        deliver_sub(srv, u, c, "subscribed");
        share_presence(srv, u, c, NULL);
    } else if (account_exists(srv, c)) {
        ic_xmpp__roster_change(srv, c, &ci, IC_ROSTER_IN_SUBSCRIBED, NULL);
        deliver_sub(srv, u, c, "subscribed");
        share_presence(srv, u, c, NULL);
    }
    ic_roster_item_free(&ui);
    ic_roster_item_free(&ci);
}

/* U stops seeing C's presence (unsubscribe) or stops C seeing U's
 * (unsubscribed). */
static void cancel(struct ic_xmpp_server *srv,
                   const char *u,
                   const char *c,
                   bool unsubscribe)
{
    struct ic_roster_item ui, ci;

    ic_xmpp__roster_find(srv, u, c, &ui);
    ic_xmpp__roster_change(srv, u, &ui,
                           unsubscribe ? IC_ROSTER_OUT_UNSUBSCRIBE
                                       : IC_ROSTER_OUT_UNSUBSCRIBED,
                           NULL);
    ic_xmpp__roster_find(srv, c, u, &ci);
    if (!ours(srv, c)) {
        deliver_sub(srv, u, c, unsubscribe ? "unsubscribe" : "unsubscribed");
        if (!unsubscribe)
            withdraw_presence(srv, u, c);
    } else if (account_exists(srv, c)) {
        ic_xmpp__roster_change(srv, c, &ci,
                               unsubscribe ? IC_ROSTER_IN_UNSUBSCRIBE
                                           : IC_ROSTER_IN_UNSUBSCRIBED,
                               NULL);
        deliver_sub(srv, u, c, unsubscribe ? "unsubscribe" : "unsubscribed");
        if (unsubscribe)
            withdraw_presence(srv, c, u);
        else
            withdraw_presence(srv, u, c);
    }
    ic_roster_item_free(&ui);
    ic_roster_item_free(&ci);
}

void ic_xmpp__presence_cancel_all(struct ic_xmpp__session *s,
                                  const struct ic_roster_item *it)
{
    struct ic_xmpp_server *srv = s->conn->srv;

    if (it->sub & IC_SUB_TO || it->ask)
        cancel(srv, s->bare, it->jid, true);
    if (it->sub & IC_SUB_FROM || it->pending_in)
        cancel(srv, s->bare, it->jid, false);
}

void ic_xmpp__presence_handle(struct ic_xmpp_server *srv,
                              struct ic_xmpp__session *from,
                              struct ic_xml *st)
{
    const char *type = type_of(st), *to_s = ic_xml_attr(st, "to");
    struct ic_jid to;
    char *bare;

    if (to_s == NULL) {
        if (type[0] == '\0' || strcmp(type, "unavailable") == 0)
            broadcast(srv, from, st);
        return;
    }
    if (ic_jid_parse(to_s, &to) != 0)
        return;
    bare = ic_jid_bare(&to);
    if (to.local == NULL) {
        /* to a server or a component: nothing to do */
    } else if (strcmp(type, "subscribe") == 0) {
        subscribe(srv, from->bare, bare);
    } else if (strcmp(type, "subscribed") == 0) {
        subscribed(srv, from->bare, bare);
    } else if (strcmp(type, "unsubscribe") == 0) {
        cancel(srv, from->bare, bare, true);
    } else if (strcmp(type, "unsubscribed") == 0) {
        cancel(srv, from->bare, bare, false);
    } else if (type[0] == '\0' || strcmp(type, "unavailable") == 0) {
        /* directed presence */
        char *norm = ic_jid_to_string(&to);
        directed_note(from, norm, bare, type[0] == '\0');
        ic_free(norm);
        if (!ours(srv, bare)) {
            ic_xmpp__send(srv, ic_xml_copy(st));
        } else if (to.resource != NULL) {
            char *full = ic_jid_to_string(&to);
            ic_xmpp__deliver_to(srv, full, st);
            ic_free(full);
        } else {
            to_user_all(srv, bare, st);
        }
    }
    ic_free(bare);
    ic_jid_free(&to);
}

/* Inbound subscription stanza TYPE from contact C (another server's user)
 * to our user U (RFC 6121 3.1.3, 3.2.3, 3.3.3, 3.4.3): U's roster changes,
 * then U's resources see the stanza. */
static void sub_in(struct ic_xmpp_server *srv,
                   const char *u,
                   const char *c,
                   const char *type,
                   const struct ic_xml *st)
{
    struct ic_roster_item ui;
    bool deliver = true;

    ic_xmpp__roster_find(srv, u, c, &ui);
    if (strcmp(type, "subscribe") == 0) {
        if (ui.sub & IC_SUB_FROM) { /* approved before: answer for U */
            deliver_sub(srv, u, c, "subscribed");
            deliver = false;
        } else {
            ic_xmpp__roster_change(srv, u, &ui, IC_ROSTER_IN_SUBSCRIBE, NULL);
        }
    } else if (strcmp(type, "subscribed") == 0) {
        if (ui.ask || !(ui.sub & IC_SUB_TO))
            ic_xmpp__roster_change(srv, u, &ui, IC_ROSTER_IN_SUBSCRIBED, NULL);
        else
            deliver = false;
    } else if (strcmp(type, "unsubscribe") == 0) {
        ic_xmpp__roster_change(srv, u, &ui, IC_ROSTER_IN_UNSUBSCRIBE, NULL);
        withdraw_presence(srv, u, c);
    } else { /* unsubscribed */
        ic_xmpp__roster_change(srv, u, &ui, IC_ROSTER_IN_UNSUBSCRIBED, NULL);
    }
    ic_roster_item_free(&ui);
    if (deliver) {
        struct ic_xml *p = ic_xml_copy(st);
        ic_xml_set_attr(p, "from", c); /* bare, as RFC 6121 asks */
        ic_xml_set_attr(p, "to", u);
        to_user_all(srv, u, p);
        ic_xml_free(p);
    }
}

void ic_xmpp__presence_in(struct ic_xmpp_server *srv, const struct ic_xml *st)
{
    const char *type = type_of(st);
    struct ic_jid to, from;
    char *u, *c;

    if (ic_jid_parse(ic_xml_attr(st, "to"), &to) != 0)
        return;
    if (ic_jid_parse(ic_xml_attr(st, "from"), &from) != 0) {
        ic_jid_free(&to);
        return;
    }
    u = ic_jid_bare(&to);
    c = ic_jid_bare(&from);
    if (to.local == NULL || from.local == NULL) {
        /* to or from a server or a component: nothing to do */
    } else if (strcmp(type, "subscribe") == 0 ||
               strcmp(type, "subscribed") == 0 ||
               strcmp(type, "unsubscribe") == 0 ||
               strcmp(type, "unsubscribed") == 0) {
        if (account_exists(srv, u))
            sub_in(srv, u, c, type, st);
    } else if (strcmp(type, "probe") == 0) {
        /* RFC 6121 4.3.2: only a subscriber learns U's presence */
        if (is_subscriber(srv, u, c))
            share_presence(srv, u, c, NULL);
    } else if (to.resource != NULL) {
        char *full = ic_jid_to_string(&to);
        ic_xmpp__deliver_to(srv, full, st);
        ic_free(full);
    } else {
        to_user_all(srv, u, st);
    }
    ic_free(u);
    ic_free(c);
    ic_jid_free(&to);
    ic_jid_free(&from);
}
