/*
 * link.c - cluster links between the nodes of one cluster (see ic_xmpp.h):
 * mutual TLS under the cluster CA, a stream in the urn:icroot:link:0
 * namespace, messages of any namespace inside it.
 *
 * Happy path, outgoing (to peer N): connect -> TLS (we check the server's
 * certificate names the domain and "node N") -> our header (from=self,
 * to=N) -> N's header -> up: queued messages flushed, then the messages of
 * each loop turn written together before the loop next waits (one TLS
 * record, one write for all a turn's answers); a <ping/> every second, answered
 * <pong/> on the same connection, proves the peer alive.
 *
 * Happy path, accepted: TLS (the client's certificate must chain to the
 * cluster CA and name "node M") -> M's header, from=M, M a member, to=self
 * -> our header -> messages delivered to ops->on_message(M, ...).
 *
 * Failure modes: a refused connection, a TLS or certificate failure, a bad
 * header, three ping periods without input, or a stream error end that
 * connection; an outgoing link is then retried after a back-off that
 * doubles from backoff_min_ms to backoff_max_ms (with jitter) and resets
 * once a link is up. Messages written on a link that fails may be lost:
 * whoever needs an answer keeps a timeout. Messages for a peer that is
 * down wait in a bounded queue.
 *
 * Every link state change is one row of `moves`.
 */
#define _POSIX_C_SOURCE 200809L
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "sock.h"
#include "xmpp_int.h"

#define PING_MS 1000
#define DEAD_PINGS 3
#define ALPN "icroot-link"

enum lk_state {
    LK_CONNECTING = 0, /* outgoing: TCP connecting */
    LK_TLS,            /* TLS handshake */
    LK_HEADER,         /* waiting for the peer's stream header */
    LK_UP,             /* messages flow */
    LK_CLOSING,
    LK__COUNT
};

static const char *const state_names[LK__COUNT] = {"connecting", "tls",
                                                   "header", "up", "closing"};

static const struct ic_xmpp__move moves[] = {
    {LK_CONNECTING, LK_TLS, "TCP up (outgoing)"},
    {LK_TLS, LK_HEADER, "TLS up, certificate checked"},
    {LK_HEADER, LK_UP, "header checked"},
    {LK_CONNECTING, LK_CLOSING, "failure"},
    {LK_TLS, LK_CLOSING, "failure"},
    {LK_HEADER, LK_CLOSING, "failure"},
    {LK_UP, LK_CLOSING, "failure or shutdown"},
};

struct peer;

struct link {
    struct ic_xmpp_links *l;
    struct ic_xmpp__sock sock;
    struct peer *peer; /* outgoing: whose link; NULL when accepted */
    unsigned remote;   /* the authenticated node id */
    enum lk_state state;
    uint64_t last_input; /* ms */
    struct link *next;   /* every link of L */
};

struct peer {
    struct ic_xmpp_links *l;
    unsigned id;
    char *host;
    int port;
    struct link *out; /* our link to it, or NULL (backing off) */
    uv_timer_t timer; /* back-off while down, pings while up */
    unsigned backoff_ms;
    bool up;
    bool removed;
    unsigned level;      /* from its last stream header */
    struct ic_buf queue; /* serialized messages waiting for the link */
    struct ic_buf turn;  /* this loop turn's messages, link up */
    struct peer *next;
};

struct ic_xmpp_links {
    uv_loop_t *loop;
    struct ic_xmpp_links_config cfg; /* strings owned */
    struct ic_xmpp_links_ops ops;
    uv_tcp_t listener;
    bool listening;
    struct ic_tls_ctx *server_ctx, *client_ctx;
    struct peer *peers;
    struct link *links;
    uv_prepare_t flush; /* writes the turn's messages before the loop waits */
    bool flush_on;
    int pending; /* handles not yet closed during shutdown */
    bool shutting_down;
    void (*shutdown_cb)(void *data);
    void *shutdown_data;
};

static void peer_connect(struct peer *p);
static void maybe_shut(struct ic_xmpp_links *l);

static void move(struct link *k, enum lk_state to)
{
    bool ok =
        ic_xmpp__move_ok(moves, IC_ARRAY_LEN(moves), (int)k->state, (int)to);

    (void)ok; /* without assertions (NDEBUG) */
    assert(ok && "link: move not in the transition table");
    IC_LOG(IC_LOG_DEBUG, "link", "node %u %s: %s -> %s", k->remote,
           k->peer ? "out" : "in", state_names[k->state], state_names[to]);
    k->state = to;
}

static void send_header(struct link *k)
{
    char h[320], lv[24] = "";

    if (k->l->cfg.level > 0)
        snprintf(lv, sizeof lv, " level='%u'", k->l->cfg.level);
    snprintf(h, sizeof h,
             "<?xml version='1.0'?><stream:stream xmlns='" IC_NS_LINK
             "' xmlns:stream='" IC_NS_STREAMS
             "' from='%u' to='%u' version='1.0'%s>",
             k->l->cfg.self, k->remote, lv);
    ic_xmpp__sock_send_str(&k->sock, h);
}

/* ---- ends ---------------------------------------------------------------- */

static void schedule_reconnect(struct peer *p);

/* This turn's messages for P onto its link, in one write. */
static void write_turn(struct peer *p)
{
    if (p->turn.len == 0)
        return;
    if (p->up && p->out != NULL)
        ic_xmpp__sock_send(&p->out->sock, p->turn.data, p->turn.len);
    if (p->turn.cap > 65536)
        ic_buf_free(&p->turn); /* keep a small buffer, not a burst's */
    else
        ic_buf_reset(&p->turn);
}

/* Ends link K; with COND, a stream error first (when a stream is open). */
static void link_fail(struct link *k, const char *cond, const char *why)
{
    struct peer *p = k->peer;
    bool was_up = k->state == LK_UP;

    if (k->state == LK_CLOSING)
        return;
    if (p != NULL && p->out == k)
        write_turn(p); /* what was sent before the end goes first */
    IC_LOG(was_up ? IC_LOG_WARN : IC_LOG_INFO, "link", "node %u (%s): %s%s%s",
           k->remote, k->peer ? "out" : "in", cond ? cond : "",
           cond ? ": " : "", why);
    if (cond != NULL && k->state >= LK_HEADER) {
        char e[256];
        snprintf(e, sizeof e,
                 "<stream:error><%s xmlns='" IC_NS_STREAM_ERRORS
                 "'/></stream:error>",
                 cond);
        ic_xmpp__sock_send_str(&k->sock, e);
    }
    if (k->state >= LK_HEADER)
        ic_xmpp__sock_send_str(&k->sock, "</stream:stream>");
    move(k, LK_CLOSING);
    ic_xmpp__sock_close(&k->sock);
    if (p != NULL && p->out == k) {
        p->out = NULL;
        p->up = false;
        if (was_up && k->l->ops.on_peer != NULL && !k->l->shutting_down)
            k->l->ops.on_peer(k->l->ops.data, p->id, false);
        schedule_reconnect(p);
    }
}

static void unlink_link(struct link *k)
{
    struct link **pp = &k->l->links;

    while (*pp != NULL && *pp != k)
        pp = &(*pp)->next;
    if (*pp == k)
        *pp = k->next;
}

static void on_sock_closed(void *owner)
{
    struct link *k = owner;
    struct ic_xmpp_links *l = k->l;

    unlink_link(k);
    ic_free(k);
    if (l->shutting_down) {
        l->pending--;
        maybe_shut(l);
    }
}

static void on_down(void *owner, int err, const char *why)
{
    (void)err;
    link_fail(owner, NULL, why);
}

/* ---- the stream ------------------------------------------------------------
 */

static unsigned attr_num(const struct ic_xml *x, const char *name)
{
    const char *v = ic_xml_attr(x, name);
    char *end;
    unsigned long id;

    if (v == NULL || v[0] < '1' || v[0] > '9')
        return 0;
    id = strtoul(v, &end, 10);
    return *end == '\0' && id <= 65535 ? (unsigned)id : 0;
}

static void flush_queue(struct peer *p)
{
    if (p->queue.len > 0)
        ic_xmpp__sock_send(&p->out->sock, p->queue.data, p->queue.len);
    ic_buf_free(&p->queue);
}

static void on_open(void *data, struct ic_xml *header)
{
    struct link *k = data;
    struct ic_xmpp_links *l = k->l;
    const char *ns = ic_xml_stream_content_ns(k->sock.stream);
    unsigned from = attr_num(header, "from"), to = attr_num(header, "to");
    unsigned level = attr_num(header, "level"); /* 0 when absent */

    ic_xml_free(header);
    if (k->state != LK_HEADER) {
        link_fail(k, "not-authorized", "header before TLS");
        return;
    }
    if (ns == NULL || strcmp(ns, IC_NS_LINK) != 0) {
        link_fail(k, "invalid-namespace", "not a cluster link");
        return;
    }
    if (from != k->remote || to != l->cfg.self) {
        link_fail(k, "improper-addressing", "header names other nodes");
        return;
    }
    if (k->peer == NULL) { /* accepted: answer with ours */
        if (!l->ops.is_member(l->ops.data, from) || from == l->cfg.self) {
            link_fail(k, "not-authorized", "not a member");
            return;
        }
        send_header(k);
    }
    move(k, LK_UP);
    k->last_input = uv_now(l->loop);
    if (k->peer != NULL) {
        struct peer *p = k->peer;
        IC_LOG(IC_LOG_INFO, "link", "link to node %u up (level %u)", p->id,
               level);
        p->level = level;
        p->up = true;
        p->backoff_ms = 0;
        flush_queue(p);
        schedule_reconnect(p); /* while up: the ping timer */
        if (l->ops.on_peer != NULL)
            l->ops.on_peer(l->ops.data, p->id, true);
    }
}

static void on_stanza(void *data, struct ic_xml *st)
{
    struct link *k = data;
    struct ic_xmpp_links *l = k->l;

    k->last_input = uv_now(l->loop);
    if (k->state != LK_UP) {
        link_fail(k, "not-authorized", "message before the header");
    } else if (st->ns != NULL && strcmp(st->ns, IC_NS_STREAMS) == 0) {
        link_fail(k, NULL, "stream error from the peer");
    } else if (st->ns != NULL && strcmp(st->ns, IC_NS_LINK) == 0 &&
               strcmp(st->name, "ping") == 0) {
        ic_xmpp__sock_send_str(&k->sock, "<pong/>");
    } else if (st->ns != NULL && strcmp(st->ns, IC_NS_LINK) == 0 &&
               strcmp(st->name, "pong") == 0) {
        /* liveness only */
    } else {
        l->ops.on_message(l->ops.data, k->remote, st);
        return;
    }
    ic_xml_free(st);
}

static void on_stream_close(void *data)
{
    link_fail(data, NULL, "the peer closed the stream");
}

static void
on_stream_error(void *data, enum ic_stream_error cond, const char *text)
{
    link_fail(data, ic_stream_error_name(cond), text ? text : "bad XML");
}

static void on_tls_ready(void *owner)
{
    struct link *k = owner;
    unsigned id = ic_tls_peer_node_id(k->sock.tls);

    if (k->peer != NULL && id != k->peer->id) {
        link_fail(k, NULL, "the peer's certificate names another node");
        return;
    }
    if (k->peer == NULL && id == 0) {
        link_fail(k, "not-authorized", "no node certificate of the cluster");
        return;
    }
    k->remote = id;
    move(k, LK_HEADER);
    if (k->peer != NULL)
        send_header(k);
}

static void on_connected(void *owner)
{
    struct link *k = owner;

    move(k, LK_TLS);
    uv_tcp_keepalive(&k->sock.tcp, 1, 5);
    if (ic_xmpp__sock_start_tls(&k->sock, k->l->client_ctx, k->l->cfg.domain) !=
        0)
        link_fail(k, NULL, "cannot start TLS");
}

static struct ic_xml_stream *new_stream(struct link *k)
{
    static const struct ic_xml_stream_cbs cbs = {
        on_open, on_stanza, on_stream_close, on_stream_error};
    struct ic_xml_limits lim = {k->l->cfg.max_stanza, 64, 1u << 20, 64};

    return ic_xml_stream_new(&cbs, k, &lim);
}

static const struct ic_xmpp__sock_ops sock_ops = {on_connected, on_tls_ready,
                                                  on_down, on_sock_closed};

static struct link *new_link(struct ic_xmpp_links *l, struct peer *p)
{
    struct link *k = ic_calloc(1, sizeof *k);

    k->l = l;
    k->peer = p;
    k->remote = p != NULL ? p->id : 0;
    k->next = l->links;
    l->links = k;
    return k;
}

/* ---- outgoing links, back-off and pings -----------------------------------
 */

static void on_peer_timer(uv_timer_t *t)
{
    struct peer *p = t->data;
    struct link *k = p->out;

    if (p->l->shutting_down || p->removed)
        return;
    if (k == NULL) {
        peer_connect(p);
        return;
    }
    if (k->state != LK_UP)
        return;
    if (uv_now(p->l->loop) - k->last_input > (uint64_t)DEAD_PINGS * PING_MS) {
        link_fail(k, "connection-timeout", "no answer to pings");
        return;
    }
    ic_xmpp__sock_send_str(&k->sock, "<ping/>");
}

/* Down: the next attempt after the back-off. Up: the ping timer. */
static void schedule_reconnect(struct peer *p)
{
    const struct ic_xmpp_links_config *c = &p->l->cfg;
    unsigned r = 0;

    if (p->l->shutting_down || p->removed)
        return;
    if (p->up) {
        uv_timer_start(&p->timer, on_peer_timer, PING_MS, PING_MS);
        return;
    }
    p->backoff_ms = p->backoff_ms == 0 ? c->backoff_min_ms : p->backoff_ms * 2;
    if (p->backoff_ms > c->backoff_max_ms)
        p->backoff_ms = c->backoff_max_ms;
    RAND_bytes((unsigned char *)&r, sizeof r);
    /* jitter: 75% .. 100% of the delay, so peers do not move in step */
    uv_timer_start(&p->timer, on_peer_timer,
                   p->backoff_ms - (r % (p->backoff_ms / 4 + 1)), 0);
}

static void peer_connect(struct peer *p)
{
    struct link *k = new_link(p->l, p);

    p->out = k;
    k->state = LK_CONNECTING;
    ic_xmpp__sock_connect(&k->sock, p->l->loop, p->host, p->port, new_stream(k),
                          &sock_ops, k);
}

/* ---- accepted links --------------------------------------------------------
 */

static void on_accept(uv_stream_t *listener, int status)
{
    struct ic_xmpp_links *l = listener->data;
    struct link *k;

    if (status != 0 || l->shutting_down)
        return;
    k = new_link(l, NULL);
    k->state = LK_TLS;
    if (ic_xmpp__sock_accept(&k->sock, listener, new_stream(k), &sock_ops, k) !=
        0)
        return; /* closing: on_sock_closed frees it */
    if (ic_xmpp__sock_start_tls(&k->sock, l->server_ctx, NULL) != 0)
        link_fail(k, NULL, "cannot start TLS");
}

/* ---- the API
 * ------------------------------------------------------------------ */

static int make_ctxs(struct ic_xmpp_links *l, char *why, size_t why_len)
{
    struct ic_tls_ctx_opts o = {0};
    int rc;

    o.cert = l->cfg.cert;
    o.key = l->cfg.key;
    o.ca = l->cfg.ca;
    o.tls13_only = true;
    o.request_client_cert = true;
    o.alpn = ALPN;
    rc = ic_tls_ctx_new_server(&o, &l->server_ctx, why, why_len);
    if (rc == 0)
        rc = ic_tls_ctx_new_client(&o, &l->client_ctx, why, why_len);
    return rc;
}

static int listen_on(struct ic_xmpp_links *l, char *why, size_t why_len)
{
    struct sockaddr_storage ss;
    int rc;

    if (uv_ip4_addr(l->cfg.address, l->cfg.port, (struct sockaddr_in *)&ss) !=
            0 &&
        uv_ip6_addr(l->cfg.address, l->cfg.port, (struct sockaddr_in6 *)&ss) !=
            0) {
        snprintf(why, why_len,
                 "cluster link address '%s' is not an IP "
                 "address",
                 l->cfg.address);
        return IC_EINVAL;
    }
    uv_tcp_init(l->loop, &l->listener);
    l->listener.data = l;
    l->listening = true;
    rc = uv_tcp_bind(&l->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->listener, 64, on_accept);
    if (rc != 0) {
        snprintf(why, why_len, "cluster link port %s:%d: %s", l->cfg.address,
                 l->cfg.port, uv_strerror(rc));
        return IC_EIO;
    }
    return 0;
}

static void copy_cfg(struct ic_xmpp_links_config *d,
                     const struct ic_xmpp_links_config *s)
{
    *d = *s;
    d->address = s->address ? ic_strdup(s->address) : NULL;
    d->domain = ic_strdup(s->domain);
    d->cert = ic_strdup(s->cert);
    d->key = ic_strdup(s->key);
    d->ca = ic_strdup(s->ca);
    if (d->backoff_min_ms == 0)
        d->backoff_min_ms = 100;
    if (d->backoff_max_ms < d->backoff_min_ms)
        d->backoff_max_ms = d->backoff_min_ms > 5000 ? d->backoff_min_ms : 5000;
    if (d->queue_max == 0)
        d->queue_max = 16u << 20;
    if (d->max_stanza == 0)
        d->max_stanza = 64u << 20;
}

int ic_xmpp_links_new(struct uv_loop_s *loop,
                      const struct ic_xmpp_links_config *cfg,
                      const struct ic_xmpp_links_ops *ops,
                      struct ic_xmpp_links **out,
                      char *why,
                      size_t why_len)
{
    struct ic_xmpp_links *l;
    int rc;

    if (cfg->self == 0 || cfg->self > 65535 || cfg->domain == NULL ||
        cfg->cert == NULL || cfg->key == NULL || cfg->ca == NULL ||
        (cfg->port != 0 && cfg->address == NULL) || ops->is_member == NULL ||
        ops->on_message == NULL) {
        snprintf(why, why_len, "cluster links: incomplete configuration");
        return IC_EINVAL;
    }
    l = ic_calloc(1, sizeof *l);
    l->loop = loop;
    copy_cfg(&l->cfg, cfg);
    l->ops = *ops;
    uv_prepare_init(loop, &l->flush);
    l->flush.data = l;
    rc = make_ctxs(l, why, why_len);
    if (rc == 0 && cfg->port != 0)
        rc = listen_on(l, why, why_len);
    if (rc != 0) {
        l->shutting_down = true;
        uv_close((uv_handle_t *)&l->flush, NULL);
        if (l->listening) /* closed before anything else can happen */
            uv_close((uv_handle_t *)&l->listener, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        ic_xmpp_links_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

static struct peer *find_peer(const struct ic_xmpp_links *l, unsigned id)
{
    struct peer *p = l->peers;

    while (p != NULL && (p->id != id || p->removed))
        p = p->next;
    return p;
}

static void on_peer_timer_closed(uv_handle_t *h)
{
    struct peer *p = h->data;
    struct ic_xmpp_links *l = p->l;
    struct peer **pp = &l->peers;

    while (*pp != NULL && *pp != p)
        pp = &(*pp)->next;
    if (*pp == p)
        *pp = p->next;
    ic_buf_free(&p->queue);
    ic_buf_free(&p->turn);
    ic_free(p->host);
    ic_free(p);
    if (l->shutting_down) {
        l->pending--;
        maybe_shut(l);
    }
}

static void remove_peer(struct peer *p)
{
    p->removed = true;
    if (p->out != NULL)
        link_fail(p->out, "system-shutdown", "peer removed");
    uv_close((uv_handle_t *)&p->timer, on_peer_timer_closed);
}

int ic_xmpp_links_set_peer(struct ic_xmpp_links *l,
                           unsigned id,
                           const char *host,
                           int port)
{
    struct peer *p = find_peer(l, id);

    if (id == 0 || id == l->cfg.self || l->shutting_down ||
        (host != NULL && (port <= 0 || port > 65535)))
        return IC_EINVAL;
    if (p != NULL && host != NULL && p->port == port &&
        strcmp(p->host, host) == 0)
        return 0;
    if (p != NULL)
        remove_peer(p);
    if (host == NULL)
        return p != NULL ? 0 : IC_ENOTFOUND;
    p = ic_calloc(1, sizeof *p);
    p->l = l;
    p->id = id;
    p->host = ic_strdup(host);
    p->port = port;
    uv_timer_init(l->loop, &p->timer);
    p->timer.data = p;
    p->next = l->peers;
    l->peers = p;
    peer_connect(p);
    return 0;
}

/* Before the loop next waits for I/O: every peer's messages of the turn
 * (from reads, timers or check handles alike), one write each. */
static void on_flush(uv_prepare_t *h)
{
    struct ic_xmpp_links *l = h->data;

    uv_prepare_stop(h);
    l->flush_on = false;
    for (struct peer *p = l->peers; p != NULL; p = p->next)
        write_turn(p);
}

int ic_xmpp_links_send(struct ic_xmpp_links *l,
                       unsigned id,
                       const struct ic_xml *msg)
{
    struct peer *p = find_peer(l, id);
    struct ic_buf b = {0};
    int rc = 0;

    if (p == NULL)
        return IC_ENOTFOUND;
    ic_xml_write(&b, msg, IC_NS_LINK);
    if (p->up && p->out != NULL) {
        ic_buf_append(&p->turn, b.data, b.len);
        if (!l->flush_on && uv_prepare_start(&l->flush, on_flush) == 0)
            l->flush_on = true;
        else if (!l->flush_on)
            write_turn(p);
    } else if (p->queue.len + b.len > l->cfg.queue_max)
        rc = IC_ELIMIT;
    else
        ic_buf_append(&p->queue, b.data, b.len);
    ic_buf_free(&b);
    return rc;
}

bool ic_xmpp_links_up(const struct ic_xmpp_links *l, unsigned id)
{
    const struct peer *p = find_peer(l, id);

    return p != NULL && p->up;
}

int ic_xmpp_links_peer_level(const struct ic_xmpp_links *l, unsigned id)
{
    const struct peer *p = find_peer(l, id);

    return p != NULL && p->up ? (int)p->level : -1;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct ic_xmpp_links *l = h->data;

    l->pending--;
    maybe_shut(l);
}

static void maybe_shut(struct ic_xmpp_links *l)
{
    if (l->pending == 0 && l->shutdown_cb != NULL) {
        void (*cb)(void *) = l->shutdown_cb;
        l->shutdown_cb = NULL;
        cb(l->shutdown_data);
    }
}

void ic_xmpp_links_shutdown(struct ic_xmpp_links *l,
                            void (*cb)(void *data),
                            void *data)
{
    struct peer *p, *pn;
    struct link *k, *kn;

    l->shutting_down = true;
    l->shutdown_cb = cb;
    l->shutdown_data = data;
    l->pending = 1; /* ourselves, until the loop below is done */
    if (l->listening) {
        l->pending++;
        uv_close((uv_handle_t *)&l->listener, on_handle_closed);
    }
    on_flush(&l->flush); /* the turn's messages before the stream ends */
    l->pending++;
    uv_close((uv_handle_t *)&l->flush, on_handle_closed);
    for (p = l->peers; p != NULL; p = pn) {
        pn = p->next;
        l->pending++;
        p->removed = true;
        uv_close((uv_handle_t *)&p->timer, on_peer_timer_closed);
    }
    /* every link still listed closes (or is closing) and then counts
     * down in on_sock_closed */
    for (k = l->links; k != NULL; k = kn) {
        kn = k->next;
        l->pending++;
        if (k->state != LK_CLOSING)
            link_fail(k, "system-shutdown", "shutting down");
    }
    l->pending--;
    maybe_shut(l);
}

void ic_xmpp_links_free(struct ic_xmpp_links *l)
{
    if (l == NULL)
        return;
    ic_tls_ctx_free(l->server_ctx);
    ic_tls_ctx_free(l->client_ctx);
    ic_free((char *)l->cfg.address);
    ic_free((char *)l->cfg.domain);
    ic_free((char *)l->cfg.cert);
    ic_free((char *)l->cfg.key);
    ic_free((char *)l->cfg.ca);
    ic_free(l);
}
