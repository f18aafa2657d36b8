/*
 * session.c - bound resources (RFC 6120 section 7): binding with a
 * server-generated or requested resource, conflicts (the newer session
 * wins; the older stream ends with <conflict/>), and the end of a session.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

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
    return 0;
}
