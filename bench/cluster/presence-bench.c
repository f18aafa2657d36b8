/*
 * presence-bench.c - icroot-presence-bench: presence changes propagated
 * between the nodes of an icroot cluster (docs/benchmarks-cluster.md).
 *
 * N pairs: publisher PREFIXi (i = 1..N) logs in to node --pub-node,
 * watcher PREFIX(N+i) to node --watch-node; each watcher subscribes to its
 * publisher (the publisher approves), so the watcher sees the publisher's
 * presence, which crosses nodes through Raft (batched presence entries,
 * delivered by the watcher's node). Then every publisher changes its
 * status --rate times a second, the status carrying the send time; each
 * watcher measures how long each change took to reach it. The report: the
 * changes sent and received per second in the window, and the latency
 * histogram (p50/p99/p999) of the changes received.
 *
 *   icroot-presence-bench --cluster cluster.json --pairs 100 --rate 10 \
 *       --password-file F [--pub-node 1] [--watch-node 2] [--duration 10]
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cbench.h"
#include "ic_xmpp.h"
#include "icluster.h"

struct pb;

struct peer {
    struct pb *b;
    struct ic_xmpp_client *c;
    unsigned idx;                   /* account PREFIXidx */
    unsigned pair;                  /* 0-based */
    bool watcher, up, closed, sees; /* sees: the watcher has seen it */
    char *jid;                      /* bound full JID */
};

struct pb {
    struct cluster cl;
    const char *prefix, *password, *pids;
    unsigned pairs, rate, up, failed, seen;
    int pub_node, watch_node;
    double duration, warmup;
    uv_loop_t loop;
    uv_timer_t tick, send;
    struct peer *p; /* 2 * pairs: publishers, then watchers */
    struct cb_run run;
    bool started, closing;
    uint64_t t0, sent_window, next_pub, grace_until;
    double send_credit;
};

/* Sends XML text (one stanza) on K's stream. */
static void send_xml(struct peer *k, const char *text)
{
    struct ic_xml *x = ic_xml_parse(text, strlen(text), IC_NS_CLIENT);

    if (x != NULL && k->c != NULL)
        ic_xmpp_client_send(k->c, x);
    ic_xml_free(x);
}

/* <presence type=TYPE to=TO/> */
static void send_presence(struct peer *k, const char *type, const char *to)
{
    struct ic_xml *x = ic_xml_new("presence", IC_NS_CLIENT);

    ic_xml_set_attr(x, "type", type);
    ic_xml_set_attr(x, "to", to);
    if (k->c != NULL)
        ic_xmpp_client_send(k->c, x);
    ic_xml_free(x);
}

static struct peer *publisher_of(struct peer *w)
{
    return &w->b->p[w->pair];
}

/* A publisher approves every subscription request; a watcher times the
 * status of its publisher's presence. */
static void on_stanza(void *data, struct ic_xml *st)
{
    struct peer *k = data;
    struct pb *b = k->b;
    const char *type = ic_xml_attr(st, "type");
    const char *from = ic_xml_attr(st, "from");

    if (st->name == NULL || strcmp(st->name, "presence") != 0 || from == NULL)
        goto out;
    if (!k->watcher && type != NULL && strcmp(type, "subscribe") == 0) {
        send_presence(k, "subscribed", from);
    } else if (k->watcher && type == NULL && publisher_of(k)->jid != NULL &&
               strcmp(from, publisher_of(k)->jid) == 0) {
        struct ic_xml *s = ic_xml_child(st, "status", IC_NS_CLIENT);
        char *t = s ? ic_xml_text(s) : NULL;
        if (!k->sees) {
            k->sees = true;
            b->seen++;
        }
        if (t != NULL && t[0] == 't' && b->started)
            cb_run_done(&b->run, strtoull(t + 1, NULL, 10), true);
        ic_free(t);
    }
out:
    ic_xml_free(st);
}

static void subscribe_all(struct pb *b)
{
    for (unsigned i = 0; i < b->pairs; i++) {
        struct peer *w = &b->p[b->pairs + i];
        char to[256];
        snprintf(to, sizeof to, "%s%u@%s", b->prefix, i + 1, b->cl.domain);
        send_presence(w, "subscribe", to);
    }
}

static void on_ready(void *data, const char *jid)
{
    struct peer *k = data;
    struct pb *b = k->b;

    k->up = true;
    k->jid = ic_strdup(jid);
    send_xml(k, "<presence/>");
    if (++b->up + b->failed == 2 * b->pairs) {
        fprintf(stderr, "presence: %u of %u clients up; subscribing\n", b->up,
                2 * b->pairs);
        subscribe_all(b);
    }
}

static void on_closed(void *data, int err, const char *why)
{
    struct peer *k = data;
    struct pb *b = k->b;

    k->closed = true;
    k->c = NULL;
    if (!k->up) {
        b->failed++;
        b->run.login_failures++;
    } else if (!b->closing) {
        b->run.conn_errors++;
    }
    if (!b->closing)
        cb_run_error(&b->run, "%s%u: %s (%s)", b->prefix, k->idx, why,
                     ic_strerror(err));
}

static void login_all(struct pb *b)
{
    static const struct ic_xmpp_client_cbs cbs = {on_ready, on_stanza,
                                                  on_closed};

    for (unsigned i = 0; i < 2 * b->pairs; i++) {
        struct peer *k = &b->p[i];
        int node = k->watcher ? b->watch_node : b->pub_node;
        struct ic_xmpp_client_opts xo = {0};
        char user[128];

        snprintf(user, sizeof user, "%s%u", b->prefix, k->idx);
        xo.host = b->cl.host[node];
        xo.port = b->cl.port[node];
        xo.domain = b->cl.domain;
        xo.ca = b->cl.ca;
        xo.user = user;
        xo.password = b->password;
        xo.resource = k->watcher ? "watch" : "pub";
        xo.timeout_ms = 30000;
        if (ic_xmpp_client_new(&b->loop, &xo, &cbs, k, &k->c) != 0) {
            k->closed = true;
            b->failed++;
        }
    }
}

/* Every 2 ms: as many status changes as the rate asks for, round robin
 * over the publishers, each carrying its send time. */
static void on_send(uv_timer_t *t)
{
    struct pb *b = t->data;
    char st[128];

    if (!b->started || b->run.stopping || b->closing)
        return;
    b->send_credit += (double)(b->pairs * b->rate) * 0.002;
    while (b->send_credit >= 1.0) {
        struct peer *k = &b->p[b->next_pub++ % b->pairs];
        b->send_credit -= 1.0;
        if (!k->up || k->closed)
            continue;
        snprintf(st, sizeof st,
                 "<presence><status>t%" PRIu64 "</status></presence>",
                 cb_now_ns());
        send_xml(k, st);
        if (b->run.measuring)
            b->sent_window++;
    }
}

static void close_all(struct pb *b)
{
    b->closing = true;
    for (unsigned i = 0; i < 2 * b->pairs; i++)
        if (b->p[i].c != NULL && !b->p[i].closed)
            ic_xmpp_client_close(b->p[i].c);
    uv_close((uv_handle_t *)&b->tick, NULL);
    uv_close((uv_handle_t *)&b->send, NULL);
}

static void report(struct pb *b)
{
    char extra[256];
    double win = b->run.duration_s;

    snprintf(extra, sizeof extra,
             ",\"pairs\":%u,\"rate_per_publisher\":%u,\"sent\":%" PRIu64
             ",\"sent_per_s\":%.1f,\"received\":%" PRIu64
             ",\"pub_node\":%d,\"watch_node\":%d",
             b->pairs, b->rate, b->sent_window,
             win > 0 ? (double)b->sent_window / win : 0.0, b->run.ops,
             b->pub_node + 1, b->watch_node + 1);
    cb_report_print(&b->run, extra);
}

static void on_tick(uv_timer_t *t)
{
    struct pb *b = t->data;
    uint64_t now = cb_now_ns();

    if (b->closing)
        return;
    if (!b->started) {
        if (b->seen == b->pairs ||
            (b->up + b->failed == 2 * b->pairs && now - b->t0 > 60000000000u)) {
            fprintf(stderr,
                    "presence: %u of %u watchers see their "
                    "publisher; running\n",
                    b->seen, b->pairs);
            b->started = true;
            b->run.clients_up = b->up;
            b->run.login_s = (double)(now - b->t0) / 1e9;
            cb_run_start(&b->run);
        } else if (now - b->t0 > 120000000000u) {
            fprintf(stderr, "presence: setup timed out (%u up, %u seen)\n",
                    b->up, b->seen);
            close_all(b);
        }
        return;
    }
    cb_run_tick(&b->run);
    if (b->run.stopping && b->grace_until == 0)
        b->grace_until = now + 2000000000u; /* late changes still arrive */
    if (b->grace_until != 0 && now >= b->grace_until) {
        report(b);
        close_all(b);
    }
}

static int parse(int argc, char **argv, struct pb *b, const char **cluster)
{
    static const struct option lo[] = {
        {"cluster", required_argument, NULL, 'c'},
        {"pairs", required_argument, NULL, 'n'},
        {"rate", required_argument, NULL, 'r'},
        {"prefix", required_argument, NULL, 'p'},
        {"password", required_argument, NULL, 'w'},
        {"pub-node", required_argument, NULL, 'a'},
        {"watch-node", required_argument, NULL, 'b'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'u'},
        {"pids", required_argument, NULL, 'i'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (opt) {
        case 'c':
            *cluster = optarg;
            break;
        case 'n':
            b->pairs = (unsigned)atoi(optarg);
            break;
        case 'r':
            b->rate = (unsigned)atoi(optarg);
            break;
        case 'p':
            b->prefix = optarg;
            break;
        case 'w':
            b->password = optarg;
            break;
        case 'a':
            b->pub_node = atoi(optarg) - 1;
            break;
        case 'b':
            b->watch_node = atoi(optarg) - 1;
            break;
        case 'd':
            b->duration = atof(optarg);
            break;
        case 'u':
            b->warmup = atof(optarg);
            break;
        case 'i':
            b->pids = optarg;
            break;
        default:
            return -1;
        }
    }
    return *cluster != NULL && b->password != NULL && b->pairs > 0 &&
                   b->rate > 0
               ? 0
               : -1;
}

int main(int argc, char **argv)
{
    struct pb b = {.prefix = "bench",
                   .pairs = 100,
                   .rate = 10,
                   .pub_node = 0,
                   .watch_node = 1,
                   .duration = 10,
                   .warmup = 2};
    const char *cluster = NULL;
    char case_name[64];

    if (parse(argc, argv, &b, &cluster) != 0) {
        fprintf(stderr,
                "usage: icroot-presence-bench --cluster FILE --password PW "
                "[--pairs N] [--rate R] [--prefix P] [--pub-node I] "
                "[--watch-node J] [--duration S] [--warmup S] [--pids P,..]\n");
        return 2;
    }
    if (cb_cluster_load(cluster, &b.cl) != 0 || b.pub_node < 0 ||
        b.watch_node < 0 || b.pub_node >= b.cl.nnodes ||
        b.watch_node >= b.cl.nnodes)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    snprintf(case_name, sizeof case_name, "presence-%u", b.pairs * b.rate);
    b.run.case_name = case_name;
    b.run.mode = "presence";
    b.run.server = "icroot";
    b.run.target = "publishers on one node, watchers on another";
    b.run.clients = 2 * b.pairs;
    b.run.warmup_s = b.warmup;
    b.run.duration_s = b.duration;
    if (b.pids != NULL)
        b.run.npids = cb_parse_pids(b.pids, b.run.pids);
    else /* the nodes' pids from cluster.json */
        for (int i = 0; i < b.cl.nnodes && i < CB_MAX_PIDS; i++)
            if (b.cl.pid[i] > 0)
                b.run.pids[b.run.npids++] = b.cl.pid[i];
    b.p = calloc(2 * b.pairs, sizeof *b.p);
    for (unsigned i = 0; i < 2 * b.pairs; i++) {
        b.p[i].b = &b;
        b.p[i].idx = i + 1;
        b.p[i].pair = i % b.pairs;
        b.p[i].watcher = i >= b.pairs;
    }
    uv_loop_init(&b.loop);
    uv_timer_init(&b.loop, &b.tick);
    uv_timer_init(&b.loop, &b.send);
    b.tick.data = b.send.data = &b;
    b.t0 = cb_now_ns();
    login_all(&b);
    uv_timer_start(&b.tick, on_tick, 20, 20);
    uv_timer_start(&b.send, on_send, 2, 2);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    uv_loop_close(&b.loop);
    for (unsigned i = 0; i < 2 * b.pairs; i++)
        ic_free(b.p[i].jid);
    free(b.p);
    cb_cluster_free(&b.cl);
    return b.started ? 0 : 1;
}
