/*
 * run.c - `icroot run --config FILE`: one node in the foreground. Reads
 * the configuration (every bad line is reported and the node refuses to
 * start), opens the store, starts the node's Raft server and cluster
 * links, the XMPP server and the catalog service on one libuv loop. On
 * SIGTERM or SIGINT: the cluster closes first (a leader hands leadership
 * over; writes in flight are answered), then every stream ends with
 * </stream:stream>, the store closes and the process exits 0.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <jansson.h>
#include <uv.h>

#include "app.h"
#include "cluster.h"
#include "presence.h"
#include "sweep.h"
#include "node_int.h"

struct node {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    struct ic_node_config cfg;
    struct ic_store *st;
    struct ic_node_cluster *cluster;
    struct ic_node_presence *presence;
    struct ic_node_sweep *sweep;
    struct ic_node_ctx ctx; /* what the engine's ops reach */
    struct ic_xmpp_server *srv;
    struct ic_node_service *svc;
    struct ic_xmpp_s2s_route *s2s_routes; /* what the server's config names */
    bool stopping;
};

static void on_server_down(void *data)
{
    struct node *n = data;

    uv_close((uv_handle_t *)&n->sigterm, NULL);
    uv_close((uv_handle_t *)&n->sigint, NULL);
}

static void on_cluster_down(void *data)
{
    struct node *n = data;

    n->cluster = NULL;
    n->ctx.cluster = NULL;
    if (n->srv != NULL)
        ic_xmpp_server_shutdown(n->srv, on_server_down, n);
    else
        on_server_down(n);
}

static void on_presence_down(void *data)
{
    struct node *n = data;

    n->presence = NULL;
    n->ctx.presence = NULL;
    if (n->cluster != NULL)
        ic_node_cluster_close(n->cluster, on_cluster_down, n);
    else
        on_cluster_down(n);
}

/* The sweep and presence batching first, then the cluster (its pending
 * writes answer their clients), then the streams. */
static void stop(struct node *n)
{
    n->stopping = true;
    ic_node_sweep_close(n->sweep); /* before the cluster: it writes there */
    n->sweep = NULL;
    if (n->presence != NULL)
        ic_node_presence_close(n->presence, on_presence_down, n);
    else
        on_presence_down(n);
}

/* A stanza node FROM (lease INCARNATION) routed to one of our sessions. */
static void on_routed(void *data,
                      struct ic_xml *st,
                      const char *target,
                      unsigned from,
                      uint64_t incarnation)
{
    struct node *n = data;

    if (n->srv != NULL)
        ic_xmpp_server_deliver_routed(n->srv, st, target, from, incarnation);
    else
        ic_xml_free(st);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct node *n = s->data;

    if (n->stopping)
        return;
    IC_LOG(IC_LOG_INFO, "node", "signal %d: stopping", signum);
    stop(n);
}

/* One descriptor per connection: take all the system allows (the soft
 * limit is often 1024 while the hard one is far higher). */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        IC_LOG(IC_LOG_INFO, "node", "up to %llu open files",
               (unsigned long long)rl.rlim_cur);
}

static void xmpp_config(struct node *n, struct ic_xmpp_config *x)
{
    const struct ic_node_config *c = &n->cfg;

    ic_xmpp_config_defaults(x);
    x->domain = c->node.domain;
    x->c2s_address = c->c2s.address;
    x->c2s_port = c->c2s.port;
    x->c2s_tls_port = c->c2s.tls_port;
    x->cert = c->tls.cert;
    x->key = c->tls.key;
    x->ca = c->tls.ca;
    x->tls13_only = c->tls.min_version == IC_TLS_1_3;
    x->max_stanza = c->c2s.max_stanza;
    x->max_stanza_preauth = c->c2s.max_stanza_preauth;
    x->handshake_timeout = c->c2s.handshake_timeout;
    x->idle_timeout = c->c2s.idle_timeout ? c->c2s.idle_timeout : 86400 * 365;
    x->keepalive = c->c2s.keepalive ? c->c2s.keepalive : 86400 * 365;
    x->login_throttle = c->c2s.login_throttle ? c->c2s.login_throttle : 1000000;
    x->s2s_address = c->s2s.address;
    x->s2s_port = c->s2s.port;
    x->s2s_tls_port = c->s2s.tls_port;
    x->s2s_dialback = c->s2s.dialback;
    x->s2s_secret = c->s2s.secret;
    x->s2s_dns = c->s2s.dns;
    x->s2s_idle_timeout = c->s2s.idle_timeout;
    x->n_s2s_routes = c->s2s.n_routes;
    if (c->s2s.n_routes > 0) {
        struct ic_xmpp_s2s_route *r = ic_calloc(c->s2s.n_routes, sizeof *r);
        for (size_t i = 0; i < c->s2s.n_routes; i++)
            r[i] = (struct ic_xmpp_s2s_route){c->s2s.routes[i].domain,
                                              c->s2s.routes[i].host,
                                              c->s2s.routes[i].port};
        x->s2s_routes = n->s2s_routes = r;
    }
}

static int start(struct node *n)
{
    struct ic_xmpp_config xc;
    struct ic_xmpp_ops ops;
    char why[512];
    int rc;

    rc = ic_node_replica_open(n->cfg.node.data_dir, &n->st, why, sizeof why);
    if (rc != 0) {
        fprintf(stderr, "icroot: %s\n", why);
        return rc;
    }
    ic_node_presence_new(&n->loop, n->st, n->cfg.node.id, &n->presence);
    rc = ic_node_cluster_start(&n->loop, &n->cfg, n->st,
                               ic_node_presence_observe, n->presence,
                               &n->cluster, why, sizeof why);
    if (rc != 0) {
        fprintf(stderr, "icroot: cluster: %s\n", why);
        return rc;
    }
    n->ctx.st = n->st;
    n->ctx.admins = n->cfg.accounts.admins;
    n->ctx.n_admins = n->cfg.accounts.n_admins;
    n->ctx.cluster = n->cluster;
    n->ctx.presence = n->presence;
    n->ctx.rosters = json_object();
    xmpp_config(n, &xc);
    ic_node_xmpp_ops(&n->ctx, &ops);
    rc = ic_xmpp_server_new(&n->loop, &xc, &ops, &n->srv, why, sizeof why);
    if (rc != 0) {
        fprintf(stderr, "icroot: %s\n", why);
        return rc;
    }
    ic_node_cluster_set_router(n->cluster, on_routed, n);
    ic_node_presence_start(n->presence, n->cluster, n->srv);
    ic_node_sweep_start(&n->loop, n->cluster, n->st, &n->sweep);
    rc = ic_node_service_start(n->srv, n->st, n->cluster, n->cfg.node.domain,
                               &n->svc);
    if (rc != 0)
        fprintf(stderr, "icroot: catalog service: %s\n", ic_strerror(rc));
    return rc;
}

int ic_node_run(const char *config_path)
{
    struct node n;
    char *errors = NULL;
    int rc;

    memset(&n, 0, sizeof n);
    rc = ic_node_config_load(config_path, &n.cfg, &errors);
    if (rc != 0) {
        fprintf(stderr, "%s", errors ? errors : "icroot: bad config\n");
        fprintf(stderr, "icroot: %s: refusing to start\n", config_path);
        ic_free(errors);
        return 2;
    }
    ic_log_set_level(n.cfg.node.log_level);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    uv_loop_init(&n.loop);
    uv_signal_init(&n.loop, &n.sigterm);
    uv_signal_init(&n.loop, &n.sigint);
    n.sigterm.data = n.sigint.data = &n;
    uv_signal_start(&n.sigterm, on_signal, SIGTERM);
    uv_signal_start(&n.sigint, on_signal, SIGINT);
    rc = start(&n);
    if (rc != 0) {
        stop(&n);
    } else {
        IC_LOG(IC_LOG_INFO, "node", "node %u serving %s on %s:%u",
               n.cfg.node.id, n.cfg.node.domain, n.cfg.c2s.address,
               (unsigned)n.cfg.c2s.port);
    }
    uv_run(&n.loop, UV_RUN_DEFAULT);
    ic_xmpp_server_free(n.srv);
    ic_node_service_free(n.svc);
    ic_free(n.s2s_routes);
    json_decref(n.ctx.rosters);
    ic_node_replica_close(n.cfg.node.data_dir, n.st);
    uv_loop_close(&n.loop);
    ic_node_config_free(&n.cfg);
    return rc == 0 ? 0 : 1;
}
