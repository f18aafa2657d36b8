/*
 * s2s_dns.c - where another domain's S2S service is (RFC 6120 3.2, XEP-0368),
 * looked up on a libuv worker thread so the loop never waits:
 *
 *   1. SRV _xmpps-server._tcp.DOMAIN (direct TLS) and _xmpp-server._tcp.DOMAIN
 *      (STARTTLS) with c-ares; the records of both in priority order, direct
 *      TLS first within one priority, then heavier weights first (a fixed
 *      order rather than RFC 2782's weighted draw, so every node of the
 *      cluster tries the same target first); a lone "." means no service;
 *   2. no record at all: DOMAIN itself on port 5269, STARTTLS;
 *   3. every target's addresses (IPv4 and IPv6), each one a target of its
 *      own so a dead address falls through to the next: with c-ares and
 *      the configured server when there is one ([s2s] dns: a private DNS
 *      answers for the targets too), else with getaddrinfo (the system's
 *      resolver, /etc/hosts included).
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include <ares.h>

#include "s2s.h"

#define DNS_TIMEOUT_MS 3000
#define DNS_TRIES 2
#define DEFAULT_PORT 5269
#define TARGETS_MAX 32

struct lookup {
    uv_work_t work;
    char *server; /* "ADDR:PORT" or NULL */
    char *domain;
    ic_xmpp__s2s_dns_cb cb;
    void *arg;
    int rc;
    struct s2s_target *t;
    size_t n;
    char why[256];
};

/* One SRV record, either kind. */
struct srv {
    char *host;
    int port;
    unsigned priority, weight;
    bool direct_tls;
};

struct srv_answers {
    struct srv v[TARGETS_MAX];
    size_t n;
    int answered; /* queries that came back */
    bool refused; /* a "." record: no service */
    bool failed;  /* a query failed (not "no such record") */
    char why[128];
};

struct srv_query {
    struct srv_answers *a;
    bool direct_tls;
};

static int library_rc;
static void library_init(void)
{
    library_rc = ares_library_init(ARES_LIB_INIT_ALL);
}

static void wait_for(ares_channel ch)
{
    for (;;) {
        fd_set r, w;
        struct timeval tv, *tvp;
        int nfds;

        FD_ZERO(&r);
        FD_ZERO(&w);
        nfds = ares_fds(ch, &r, &w);
        if (nfds == 0)
            break;
        tvp = ares_timeout(ch, NULL, &tv);
        select(nfds, &r, &w, NULL, tvp);
        ares_process(ch, &r, &w);
    }
}

/* ---- SRV ---------------------------------------------------------------- */

static void
on_srv(void *arg, int status, int timeouts, unsigned char *ab, int alen)
{
    struct srv_query *q = arg;
    struct srv_answers *a = q->a;
    struct ares_srv_reply *reply = NULL;

    (void)timeouts;
    a->answered++;
    if (status == ARES_ENOTFOUND || status == ARES_ENODATA)
        return;
    if (status != ARES_SUCCESS ||
        ares_parse_srv_reply(ab, alen, &reply) != ARES_SUCCESS) {
        a->failed = true;
        snprintf(a->why, sizeof a->why, "SRV: %s",
                 status != ARES_SUCCESS ? ares_strerror(status) : "bad answer");
        return;
    }
    for (struct ares_srv_reply *r = reply; r != NULL; r = r->next) {
        if (strcmp(r->host, ".") == 0 || r->host[0] == '\0') {
            a->refused = true;
            continue;
        }
        if (a->n == TARGETS_MAX)
            break;
        a->v[a->n++] = (struct srv){ic_strdup(r->host), r->port, r->priority,
                                    r->weight, q->direct_tls};
    }
    ares_free_data(reply);
}

static int by_preference(const void *x, const void *y)
{
    const struct srv *a = x, *b = y;

    if (a->priority != b->priority)
        return a->priority < b->priority ? -1 : 1;
    if (a->direct_tls != b->direct_tls)
        return a->direct_tls ? -1 : 1;
    return a->weight > b->weight ? -1 : a->weight < b->weight ? 1 : 0;
}

/* ---- addresses ---------------------------------------------------------- */

struct addrs {
    char v[TARGETS_MAX][INET6_ADDRSTRLEN];
    size_t n;
};

static void add_addr(struct addrs *out, const struct sockaddr *sa)
{
    struct sockaddr_storage ss; /* aligned for either family */
    bool v6 = sa->sa_family == AF_INET6;
    const void *p;

    memcpy(&ss, sa,
           v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    p = v6 ? (const void *)&((const struct sockaddr_in6 *)&ss)->sin6_addr
           : (const void *)&((const struct sockaddr_in *)&ss)->sin_addr;
    if (out->n < TARGETS_MAX &&
        inet_ntop(sa->sa_family, p, out->v[out->n], INET6_ADDRSTRLEN))
        out->n++;
}

static void
on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    struct addrs *out = arg;

    (void)timeouts;
    if (status == ARES_SUCCESS && res != NULL)
        for (struct ares_addrinfo_node *n = res->nodes; n != NULL;
             n = n->ai_next)
            add_addr(out, n->ai_addr);
    if (res != NULL)
        ares_freeaddrinfo(res);
}

/* HOST's addresses: an IP literal as is, else c-ares (CH, with the
 * configured server) or, CH NULL, the system's getaddrinfo. */
static void addresses(ares_channel ch, const char *host, struct addrs *out)
{
    unsigned char buf[16];

    out->n = 0;
    if (inet_pton(AF_INET, host, buf) == 1 ||
        inet_pton(AF_INET6, host, buf) == 1) {
        snprintf(out->v[0], INET6_ADDRSTRLEN, "%s", host);
        out->n = 1;
    } else if (ch != NULL) {
        struct ares_addrinfo_hints h = {0};
        h.ai_family = AF_UNSPEC;
        ares_getaddrinfo(ch, host, NULL, &h, on_addrinfo, out);
        wait_for(ch);
    } else {
        struct addrinfo h = {0}, *res = NULL;
        h.ai_family = AF_UNSPEC;
        h.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(host, NULL, &h, &res) == 0)
            for (struct addrinfo *a = res; a != NULL; a = a->ai_next)
                add_addr(out, a->ai_addr);
        if (res != NULL)
            freeaddrinfo(res);
    }
}

/* ---- the lookup, on the worker thread ----------------------------------- */

static void add_targets(struct lookup *l,
                        ares_channel ch,
                        const char *host,
                        int port,
                        bool direct_tls)
{
    struct addrs a;

    addresses(ch, host, &a);
    for (size_t i = 0; i < a.n && l->n < TARGETS_MAX; i++) {
        bool dup = false;
        for (size_t j = 0; j < l->n && !dup; j++)
            dup = strcmp(l->t[j].host, a.v[i]) == 0 && l->t[j].port == port &&
                  l->t[j].direct_tls == direct_tls;
        if (!dup)
            l->t[l->n++] =
                (struct s2s_target){ic_strdup(a.v[i]), port, direct_tls};
    }
}

static void run(uv_work_t *w)
{
    struct lookup *l = w->data;
    struct ares_options o = {0};
    struct srv_answers a = {0};
    struct srv_query q_tls = {&a, true}, q_plain = {&a, false};
    ares_channel ch;
    char name[300];

    l->rc = IC_EIO;
    o.timeout = DNS_TIMEOUT_MS;
    o.tries = DNS_TRIES;
    if (ares_init_options(&ch, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) !=
        ARES_SUCCESS) {
        snprintf(l->why, sizeof l->why, "c-ares cannot start");
        return;
    }
    if (l->server != NULL &&
        ares_set_servers_ports_csv(ch, l->server) != ARES_SUCCESS) {
        snprintf(l->why, sizeof l->why, "bad DNS server %s", l->server);
        ares_destroy(ch);
        return;
    }
    snprintf(name, sizeof name, "_xmpps-server._tcp.%s", l->domain);
    ares_query(ch, name, ns_c_in, ns_t_srv, on_srv, &q_tls);
    snprintf(name, sizeof name, "_xmpp-server._tcp.%s", l->domain);
    ares_query(ch, name, ns_c_in, ns_t_srv, on_srv, &q_plain);
    wait_for(ch);
    l->t = ic_calloc(TARGETS_MAX, sizeof *l->t);
    if (a.n > 0) {
        qsort(a.v, a.n, sizeof *a.v, by_preference);
        for (size_t i = 0; i < a.n; i++)
            add_targets(l, l->server ? ch : NULL, a.v[i].host, a.v[i].port,
                        a.v[i].direct_tls);
    } else if (!a.refused) {
        /* no record (or no answer): the domain itself, port 5269 */
        if (a.failed)
            snprintf(l->why, sizeof l->why, "%s; ", a.why);
        add_targets(l, l->server ? ch : NULL, l->domain, DEFAULT_PORT, false);
    }
    for (size_t i = 0; i < a.n; i++)
        ic_free(a.v[i].host);
    if (l->n > 0)
        l->rc = 0;
    else if (a.refused)
        l->rc = IC_ENOTFOUND; /* "." */
    else
        snprintf(l->why + strlen(l->why), sizeof l->why - strlen(l->why),
                 "no address for %s", l->domain);
    ares_destroy(ch);
}

/* Back on the loop. */
static void done(uv_work_t *w, int status)
{
    struct lookup *l = w->data;

    (void)status;
    if (l->rc != 0) {
        IC_LOG(IC_LOG_INFO, "s2s", "%s: %s", l->domain,
               l->why[0] ? l->why : "no S2S service (SRV target '.')");
        ic_free(l->t);
        l->t = NULL;
        l->n = 0;
    }
    l->cb(l->arg, l->rc, l->t, l->n);
    ic_free(l->server);
    ic_free(l->domain);
    ic_free(l);
}

int ic_xmpp__s2s_resolve(uv_loop_t *loop,
                         const char *dns_server,
                         const char *domain,
                         ic_xmpp__s2s_dns_cb cb,
                         void *arg)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct lookup *l;

    pthread_once(&once, library_init);
    if (library_rc != ARES_SUCCESS)
        return IC_EIO;
    l = ic_calloc(1, sizeof *l);
    l->work.data = l;
    l->server = dns_server ? ic_strdup(dns_server) : NULL;
    l->domain = ic_strdup(domain);
    l->cb = cb;
    l->arg = arg;
    if (uv_queue_work(loop, &l->work, run, done) != 0) {
        ic_free(l->server);
        ic_free(l->domain);
        ic_free(l);
        return IC_EIO;
    }
    return 0;
}
