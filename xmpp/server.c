/*
 * server.c - the server object: configuration, TLS contexts, listeners on
 * the STARTTLS and direct-TLS ports, and a clean shutdown that ends every
 * stream with </stream:stream> before closing.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "xmpp_int.h"

void ic_xmpp_config_defaults(struct ic_xmpp_config *c)
{
    memset(c, 0, sizeof *c);
    c->domain = "intercloudexchg.test";
    c->c2s_address = "127.0.0.1";
    c->c2s_port = 15222;
    c->c2s_tls_port = 15223;
    c->max_stanza = 256 * 1024;
    c->max_stanza_preauth = 16 * 1024;
    c->handshake_timeout = 30;
    c->idle_timeout = 600;
    c->keepalive = 60;
    c->login_throttle = 10;
    c->write_queue_max = 1024 * 1024;
    c->s2s_address = "127.0.0.1";
    c->s2s_port = 0;
    c->s2s_idle_timeout = 300;
}

/* The end of every loop turn: each connection that got output writes it
 * at once, one write (and one TLS record) however many stanzas. */
static void on_flush(uv_check_t *h)
{
    struct ic_xmpp_server *srv = h->data;

    while (srv->dirty != NULL) {
        struct ic_xmpp__conn *c = srv->dirty;
        srv->dirty = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        ic_xmpp__conn_flush(c);
    }
}

#define SWEEP_MS 1000

/* Once a second: a connection quiet for a second gives up its TLS and
 * output buffers. (Its parser went back to the thread's spares when its
 * last stanza ended: stream.c; one inside a stanza cannot go.) */
static void on_sweep(uv_timer_t *t)
{
    struct ic_xmpp_server *srv = t->data;
    uint64_t now = ic_xmpp__now_ms(srv);

    for (struct ic_xmpp__conn *c = srv->conns; c != NULL; c = c->next) {
        if (c->closing || now - c->last_activity < SWEEP_MS)
            continue;
        if (c->out.len == 0 && !c->dirty)
            ic_buf_free(&c->out); /* kept while busy, not while quiet */
        if (c->tls != NULL)
            ic_tls_trim(c->tls);
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct ic_xmpp_server *srv = listener->data;

    if (status < 0 || srv->shutting_down)
        return;
    ic_xmpp__conn_accept(srv, listener,
                         listener == (uv_stream_t *)&srv->listen_tls);
}

static int listen_on(struct ic_xmpp_server *srv,
                     uv_tcp_t *t,
                     int port,
                     char *why,
                     size_t why_len)
{
    struct sockaddr_storage ss;
    int rc;

    if (uv_ip4_addr(srv->cfg.c2s_address, port, (struct sockaddr_in *)&ss) !=
            0 &&
        uv_ip6_addr(srv->cfg.c2s_address, port, (struct sockaddr_in6 *)&ss) !=
            0) {
        snprintf(why, why_len, "bad address '%s'", srv->cfg.c2s_address);
        return IC_EINVAL;
    }
    uv_tcp_init(srv->loop, t);
    t->data = srv;
    srv->listeners_open++;
    rc = uv_tcp_bind(t, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)t, 511, on_connection);
    if (rc != 0) {
        snprintf(why, why_len, "listen on %s:%d: %s", srv->cfg.c2s_address,
                 port, uv_strerror(rc));
        return IC_EIO;
    }
    return 0;
}

static int tls_contexts(struct ic_xmpp_server *srv, char *why, size_t why_len)
{
    struct ic_tls_ctx_opts o = {0};
    int rc;

    o.cert = srv->cfg.cert;
    o.key = srv->cfg.key;
    o.ca = srv->cfg.ca;
    o.tls13_only = srv->cfg.tls13_only;
    o.request_client_cert = srv->cfg.ca != NULL; /* for SASL EXTERNAL */
    rc = ic_tls_ctx_new_server(&o, &srv->tls_starttls, why, why_len);
    if (rc != 0)
        return rc;
    o.alpn = "xmpp-client"; /* XEP-0368 */
    return ic_tls_ctx_new_server(&o, &srv->tls_direct, why, why_len);
}

int ic_xmpp_server_new(struct uv_loop_s *loop,
                       const struct ic_xmpp_config *cfg,
                       const struct ic_xmpp_ops *ops,
                       struct ic_xmpp_server **out,
                       char *why,
                       size_t why_len)
{
    struct ic_xmpp_server *srv = ic_calloc(1, sizeof *srv);
    int rc;

    srv->loop = loop;
    srv->cfg = *cfg;
    srv->ops = *ops;
    srv->domain = ic_jid_nameprep(cfg->domain);
    if (srv->domain == NULL) {
        snprintf(why, why_len, "bad domain '%s'", cfg->domain);
        ic_free(srv);
        return IC_EINVAL;
    }
    RAND_bytes(srv->secret, sizeof srv->secret);
    uv_check_init(loop, &srv->flush);
    srv->flush.data = srv;
    uv_check_start(&srv->flush, on_flush);
    uv_timer_init(loop, &srv->sweep);
    srv->sweep.data = srv;
    uv_timer_start(&srv->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    uv_timer_init(loop, &srv->iq_timer);
    srv->iq_timer.data = srv;
    /* the three handles close with the listeners */
    srv->listeners_open += 3;
    rc = tls_contexts(srv, why, why_len);
    if (rc == 0)
        rc = listen_on(srv, &srv->listen_starttls, cfg->c2s_port, why, why_len);
    if (rc == 0 && cfg->c2s_tls_port > 0) {
        srv->have_tls_listener = true;
        rc = listen_on(srv, &srv->listen_tls, cfg->c2s_tls_port, why, why_len);
    }
    if (rc == 0)
        rc = ic_xmpp__s2s_start(srv, why, why_len);
    *out = srv; /* even on failure: shut down and free it */
    return rc;
}

void ic_xmpp__server_release(struct ic_xmpp_server *srv)
{
    srv->listeners_open--;
    if (srv->listeners_open == 0 && srv->nconns == 0 &&
        srv->shutdown_cb != NULL)
        srv->shutdown_cb(srv->shutdown_data);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct ic_xmpp_server *srv = h->data;

    srv->listeners_open--;
    if (srv->listeners_open == 0 && srv->nconns == 0 &&
        srv->shutdown_cb != NULL)
        srv->shutdown_cb(srv->shutdown_data);
}

void ic_xmpp_server_shutdown(struct ic_xmpp_server *srv,
                             void (*cb)(void *data),
                             void *data)
{
    struct ic_xmpp__conn *c, *next;

    srv->shutting_down = true;
    srv->shutdown_cb = cb;
    srv->shutdown_data = data;
    ic_xmpp__component_iq_cancel_all(srv);
    ic_xmpp__s2s_shutdown(srv);
    for (c = srv->conns; c != NULL; c = next) {
        next = c->next;
        if (c->state == C2S_SESSION)
            ic_xmpp__conn_fail(c, IC_SE_SYSTEM_SHUTDOWN, "server stopping");
        else
            ic_xmpp__conn_close(c);
    }
    if (srv->listen_starttls.data != NULL &&
        !uv_is_closing((uv_handle_t *)&srv->listen_starttls))
        uv_close((uv_handle_t *)&srv->listen_starttls, on_listener_closed);
    if (srv->listen_tls.data != NULL &&
        !uv_is_closing((uv_handle_t *)&srv->listen_tls))
        uv_close((uv_handle_t *)&srv->listen_tls, on_listener_closed);
    on_flush(&srv->flush);
    if (!uv_is_closing((uv_handle_t *)&srv->flush))
        uv_close((uv_handle_t *)&srv->flush, on_listener_closed);
    if (!uv_is_closing((uv_handle_t *)&srv->sweep))
        uv_close((uv_handle_t *)&srv->sweep, on_listener_closed);
    if (!uv_is_closing((uv_handle_t *)&srv->iq_timer))
        uv_close((uv_handle_t *)&srv->iq_timer, on_listener_closed);
    if (srv->listeners_open == 0 && srv->nconns == 0 && cb != NULL)
        cb(data);
}

void ic_xmpp_server_free(struct ic_xmpp_server *srv)
{
    if (srv == NULL)
        return;
    ic_map_free_values(&srv->throttle, ic_free);
    ic_map_free(&srv->iq_pending);
    ic_xmpp__s2s_free(srv);
    ic_map_free(&srv->sessions);
    ic_map_free(&srv->users);
    ic_xmpp__remote_free_all(srv);
    ic_xmpp__heard_free_all(srv);
    while (srv->components != NULL) {
        struct ic_xmpp__component *c = srv->components;
        srv->components = c->next;
        ic_free(c);
    }
    ic_tls_ctx_free(srv->tls_starttls);
    ic_tls_ctx_free(srv->tls_direct);
    ic_free(srv->domain);
    ic_buf_free(&srv->plain);
    ic_buf_free(&srv->wout);
    ic_free(srv);
}

void ic_xmpp_server_stats(const struct ic_xmpp_server *srv,
                          struct ic_xmpp_stats *out)
{
    *out = srv->stats;
    out->connections = srv->nconns;
}
