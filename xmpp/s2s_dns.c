/*
 * s2s_dns.c - where another domain's S2S service is (RFC 6120 3.2): DNS SRV
 * records _xmpp-server._tcp.DOMAIN, asked with c-ares on a libuv worker
 * thread so the loop never waits; the records in priority order, heavier
 * weights first within one priority (a fixed order rather than RFC 2782's
 * weighted draw, so every node of the cluster tries the same target first);
 * DOMAIN:5269 when the domain has no such record; nothing when its record
 * says "." (no service).
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/nameser.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include <ares.h>

#include "s2s.h"

#define DNS_TIMEOUT_MS 3000
#define DNS_TRIES 2
#define DEFAULT_PORT 5269

struct lookup {
    uv_work_t work;
    char *server; /* "ADDR:PORT" or NULL */
    char *domain;
    ic_xmpp__s2s_dns_cb cb;
    void *arg;
    int rc;
    struct s2s_target *t;
    size_t n;
    char why[128];
};

static int library_rc;
static void library_init(void)
{
    library_rc = ares_library_init(ARES_LIB_INIT_ALL);
}

static int by_priority(const void *a, const void *b)
{
    const struct ares_srv_reply *x = *(const struct ares_srv_reply *const *)a;
    const struct ares_srv_reply *y = *(const struct ares_srv_reply *const *)b;

    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return x->weight > y->weight ? -1 : x->weight < y->weight ? 1 : 0;
}

static void
on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct lookup *l = arg;
    struct ares_srv_reply *srv = NULL, **v;
    size_t n = 0;

    (void)timeouts;
    if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
        l->rc = IC_EEND; /* no record: the domain itself */
        return;
    }
    if (status != ARES_SUCCESS) {
        l->rc = IC_EIO;
        strncpy(l->why, ares_strerror(status), sizeof l->why - 1);
        return;
    }
    if (ares_parse_srv_reply(abuf, alen, &srv) != ARES_SUCCESS) {
        l->rc = IC_EIO;
        strncpy(l->why, "bad SRV answer", sizeof l->why - 1);
        return;
    }
    for (struct ares_srv_reply *r = srv; r != NULL; r = r->next)
        n++;
    v = ic_calloc(n ? n : 1, sizeof *v);
    n = 0;
    for (struct ares_srv_reply *r = srv; r != NULL; r = r->next)
        v[n++] = r;
    qsort(v, n, sizeof *v, by_priority);
    l->t = ic_calloc(n ? n : 1, sizeof *l->t);
    for (size_t i = 0; i < n; i++) {
        /* "." alone: the service is decidedly not available */
        if (strcmp(v[i]->host, ".") == 0 || v[i]->host[0] == '\0')
            continue;
        l->t[l->n].host = ic_strdup(v[i]->host);
        l->t[l->n].port = v[i]->port;
        l->n++;
    }
    l->rc = l->n > 0 ? 0 : IC_ENOTFOUND;
    ic_free(v);
    ares_free_data(srv);
}

/* On the worker thread: one query, waited for with select(). */
static void run(uv_work_t *w)
{
    struct lookup *l = w->data;
    struct ares_options o = {0};
    ares_channel ch;
    char name[300];

    l->rc = IC_EIO;
    o.timeout = DNS_TIMEOUT_MS;
    o.tries = DNS_TRIES;
    if (ares_init_options(&ch, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) !=
        ARES_SUCCESS) {
        strncpy(l->why, "c-ares cannot start", sizeof l->why - 1);
        return;
    }
    if (l->server != NULL &&
        ares_set_servers_ports_csv(ch, l->server) != ARES_SUCCESS) {
        strncpy(l->why, "bad DNS server", sizeof l->why - 1);
        ares_destroy(ch);
        return;
    }
    snprintf(name, sizeof name, "_xmpp-server._tcp.%s", l->domain);
    ares_query(ch, name, ns_c_in, ns_t_srv, on_answer, l);
    for (;;) {
        fd_set r, wr;
        struct timeval tv, *tvp;
        int nfds;

        FD_ZERO(&r);
        FD_ZERO(&wr);
        nfds = ares_fds(ch, &r, &wr);
        if (nfds == 0)
            break;
        tvp = ares_timeout(ch, NULL, &tv);
        select(nfds, &r, &wr, NULL, tvp);
        ares_process(ch, &r, &wr);
    }
    ares_destroy(ch);
}

/* Back on the loop. */
static void done(uv_work_t *w, int status)
{
    struct lookup *l = w->data;

    (void)status;
    if (l->rc == IC_EEND || (l->rc == IC_EIO && l->n == 0)) {
        /* no SRV record (or no answer): the domain itself, port 5269 */
        if (l->rc == IC_EIO)
            IC_LOG(IC_LOG_INFO, "s2s", "SRV lookup for %s: %s; trying %s:%d",
                   l->domain, l->why, l->domain, DEFAULT_PORT);
        ic_free(l->t);
        l->t = ic_calloc(1, sizeof *l->t);
        l->t[0].host = ic_strdup(l->domain);
        l->t[0].port = DEFAULT_PORT;
        l->n = 1;
        l->rc = 0;
    }
    if (l->rc != 0) {
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
