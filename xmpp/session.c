/*
 * session.c - bound resources (RFC 6120 section 7): binding with a
 * server-generated or requested resource, conflicts (the newer session
 * wins; the older stream ends with <conflict/>), also across the nodes of
 * a cluster (each bind is announced to the other nodes, which end an older
 * session of the same full JID), and the end of a session.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "xmpp_int.h"

static char *random_resource(void)
{
    unsigned char r[8];
    char buf[24];

    RAND_bytes(r, sizeof r);
    snprintf(buf, sizeof buf, "ic-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7]);
    return ic_strdup(buf);
}

static void unlink_user(struct ic_xmpp_server *srv, struct ic_xmpp__session *s)
{
    struct ic_xmpp__session *first = ic_map_get(&srv->users, s->bare);

    if (first == s) {
        if (s->next_of_user != NULL)
            ic_map_put(&srv->users, s->bare, s->next_of_user);
        else
            ic_map_del(&srv->users, s->bare);
        return;
    }
    for (struct ic_xmpp__session *p = first; p != NULL; p = p->next_of_user)
        if (p->next_of_user == s) {
            p->next_of_user = s->next_of_user;
            return;
        }
}

void ic_xmpp__session_end(struct ic_xmpp__session *s)
{
    struct ic_xmpp_server *srv = s->conn->srv;

    if (s->available || s->directed != NULL)
        ic_xmpp__presence_unavailable(s);
    ic_map_del(&srv->sessions, s->full);
    unlink_user(srv, s);
    srv->stats.sessions--;
    s->conn->session = NULL;
    ic_xml_free(s->presence);
    ic_free(s->full);
    ic_free(s->bare);
    ic_free(s->resource);
    ic_free(s);
}

/* Tells the other nodes (if any) that S is bound here, and when. */
static void announce(struct ic_xmpp_server *srv, struct ic_xmpp__session *s)
{
    struct timespec ts;
    struct ic_xml *x;
    char n[24];

    clock_gettime(CLOCK_REALTIME, &ts);
    s->bound_at = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    RAND_bytes((unsigned char *)&s->nonce, sizeof s->nonce);
    if (srv->ops.route_remote == NULL)
        return;
    x = ic_xml_new("bound", IC_NS_BOUND);
    ic_xml_set_attr(x, "jid", s->full);
    snprintf(n, sizeof n, "%" PRIu64, s->bound_at);
    ic_xml_set_attr(x, "at", n);
    snprintf(n, sizeof n, "%" PRIu64, s->nonce);
    ic_xml_set_attr(x, "nonce", n);
    srv->ops.route_remote(srv->ops.data, 0, x, NULL);
    ic_xml_free(x);
}

int ic_xmpp__session_bind(struct ic_xmpp__conn *c,
                          const char *resource,
                          struct ic_xmpp__session **out)
{
    struct ic_xmpp_server *srv = c->srv;
    struct ic_xmpp__session *s, *old;
    char *res;
    size_t n;

    res = resource != NULL && resource[0] != '\0'
              ? ic_jid_resourceprep(resource)
              : random_resource();
    if (res == NULL)
        return IC_EVALUE;
    s = ic_calloc(1, sizeof *s);
    s->conn = c;
    s->resource = res;
    n = strlen(c->user) + strlen(srv->domain) + 2;
    s->bare = ic_malloc(n);
    snprintf(s->bare, n, "%s@%s", c->user, srv->domain);
    n += strlen(res) + 1;
    s->full = ic_malloc(n);
    snprintf(s->full, n, "%s/%s", s->bare, res);
    old = ic_map_get(&srv->sessions, s->full);
    if (old != NULL) { /* RFC 6120 7.7.2.2: override the older session */
        struct ic_xmpp__conn *oc = old->conn;
        ic_xmpp__session_end(old);
        ic_xmpp__conn_fail(oc, IC_SE_CONFLICT, "replaced by a new session");
    }
    ic_map_put(&srv->sessions, s->full, s);
    s->next_of_user = ic_map_get(&srv->users, s->bare);
    ic_map_put(&srv->users, s->bare, s);
    srv->stats.sessions++;
    c->session = s;
    *out = s;
    announce(srv, s);
    return 0;
}

void ic_xmpp__session_claimed(struct ic_xmpp_server *srv,
                              const char *full,
                              uint64_t bound_at,
                              uint64_t nonce)
{
    struct ic_xmpp__session *s = ic_map_get(&srv->sessions, full);
    struct ic_xmpp__conn *c;

    if (s == NULL || s->bound_at > bound_at ||
        (s->bound_at == bound_at && s->nonce >= nonce))
        return; /* ours is the newer one: the other node ends its own */
    c = s->conn;
    IC_LOG(IC_LOG_INFO, "c2s", "%s: bound again on another node", full);
    ic_xmpp__session_end(s);
    ic_xmpp__conn_fail(c, IC_SE_CONFLICT, "replaced by a new session");
}
