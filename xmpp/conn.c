/*
 * conn.c - one TCP connection on the event loop: reading (through TLS when
 * it is on) into the XML stream parser, writing with back-pressure, the
 * handshake/idle/keepalive timer, and the one way out (conn_fail/close).
 *
 * Happy path: accept -> read -> [TLS] -> parser callbacks (c2s.c) -> send.
 * Failure modes: a read error or EOF closes at once; bad XML ends the
 * stream with the parser's condition; a TLS error closes without a stream
 * error (the channel is unusable); once closing, every callback returns at
 * once. The struct is freed in the last handle's close callback.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "xmpp_int.h"

/* the largest decrypted-input buffer the server keeps between reads */
#define PLAIN_KEEP (64u * 1024u)

uint64_t ic_xmpp__now_ms(const struct ic_xmpp_server *srv)
{
    return uv_now(srv->loop);
}

static void on_stream_open(void *data, struct ic_xml *header)
{
    ic_xmpp__c2s_on_open(data, header);
}

static void on_stream_stanza(void *data, struct ic_xml *st)
{
    struct ic_xmpp__conn *c = data;

    c->srv->stats.stanzas_in++;
    ic_xmpp__c2s_on_stanza(c, st);
}

static void on_stream_close(void *data)
{
    ic_xmpp__conn_close(data);
}

static void
on_stream_error(void *data, enum ic_stream_error cond, const char *text)
{
    ic_xmpp__conn_fail(data, cond, text);
}

static const struct ic_xml_stream_cbs stream_cbs = {
    on_stream_open, on_stream_stanza, on_stream_close, on_stream_error};

static void on_handle_closed(uv_handle_t *h)
{
    struct ic_xmpp__conn *c = h->data;
    struct ic_xmpp_server *srv = c->srv;

    if (--c->handles_open > 0)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    srv->nconns--;
    ic_xml_stream_free(c->stream);
    ic_tls_free(c->tls);
    ic_sasl_free(c->sasl);
    ic_free(c->id);
    ic_free(c->user);
    ic_buf_free(&c->out);
    ic_free(c);
    if (srv->shutting_down && srv->nconns == 0 && srv->listeners_open == 0 &&
        srv->shutdown_cb != NULL)
        srv->shutdown_cb(srv->shutdown_data);
}

/* Closes both handles; the struct goes in the last close callback. */
static void teardown(struct ic_xmpp__conn *c)
{
    if (c->state == C2S_CLOSED)
        return;
    c->closing = true;
    c->state = C2S_CLOSED;
    if (c->session != NULL) {
        ic_xmpp__session_end(c->session);
        c->session = NULL;
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct ic_xmpp__conn *c = req->data;

    (void)status;
    ic_free(req);
    teardown(c);
}

/* After the last bytes are queued: half-close once they are written. */
static void finish(struct ic_xmpp__conn *c)
{
    uv_shutdown_t *req = ic_calloc(1, sizeof *req);

    req->data = c;
    ic_xmpp__conn_flush(c);
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        ic_free(req);
        teardown(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status)
{
    struct ic_xmpp__write *w = (struct ic_xmpp__write *)req;
    struct ic_xmpp__conn *c = w->conn;

    c->queued -= w->buf.len;
    ic_free(w->buf.base);
    ic_free(w);
    if (status != 0 && !c->closing) {
        teardown(c);
        return;
    }
    /* Back-pressure released: read again. */
    if (!c->reading && !c->closing &&
        c->queued < c->srv->cfg.write_queue_max / 2) {
        c->reading = true;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
}

/* Queues what the socket did not take at once, with a copy. */
static void write_queue(struct ic_xmpp__conn *c, const char *data, size_t len)
{
    struct ic_xmpp__write *w = ic_malloc(sizeof *w);

    w->conn = c;
    w->buf.base = ic_malloc(len);
    w->buf.len = len;
    memcpy(w->buf.base, data, len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, on_write) != 0) {
        ic_free(w->buf.base);
        ic_free(w);
        teardown(c);
        return;
    }
    c->queued += len;
    if (c->reading && c->queued > c->srv->cfg.write_queue_max) {
        c->reading = false;
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
}

/* Writes at once when nothing is queued (no request, no copy, and no
 * epoll_ctl, which libuv makes after every uv_write that completes in the
 * call); what the socket does not take is queued. */
static void write_raw(struct ic_xmpp__conn *c, const char *data, size_t len)
{
    if (len == 0 || c->state == C2S_CLOSED)
        return;
    c->srv->stats.stanzas_out++;
    if (c->queued == 0) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n == (int)len)
            return;
        if (n < 0 && n != UV_EAGAIN) {
            teardown(c);
            return;
        }
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        }
    }
    write_queue(c, data, len);
}

/* Through the server's output buffer, which trades places with the
 * session's (ic_tls_take_output): no copy, no allocation. */
static void flush_tls(struct ic_xmpp__conn *c)
{
    struct ic_xmpp_server *srv = c->srv;
    struct ic_buf out = srv->wout;

    srv->wout = (struct ic_buf){0};
    ic_buf_reset(&out);
    ic_tls_take_output(c->tls, &out);
    write_raw(c, out.data, out.len);
    if (out.cap > PLAIN_KEEP)
        ic_buf_free(&out);
    ic_buf_reset(&out);
    if (srv->wout.data == NULL)
        srv->wout = out;
    else
        ic_buf_free(&out);
}

void ic_xmpp__conn_flush(struct ic_xmpp__conn *c)
{
    if (c->out.len == 0)
        return;
    if (c->state == C2S_CLOSED) {
        ic_buf_reset(&c->out);
        return;
    }
    if (c->tls != NULL) {
        if (!ic_tls_handshake_done(c->tls))
            return; /* application data waits for the handshake */
        if (ic_tls_write(c->tls, c->out.data, c->out.len) != 0) {
            ic_buf_reset(&c->out);
            teardown(c);
            return;
        }
        flush_tls(c);
    } else {
        write_raw(c, c->out.data, c->out.len);
    }
    /* keep a small buffer for the next turn, not a big one */
    if (c->out.cap > 16384)
        ic_buf_free(&c->out);
    else
        ic_buf_reset(&c->out);
}

void ic_xmpp__conn_send(struct ic_xmpp__conn *c, const char *data, size_t len)
{
    struct ic_xmpp_server *srv = c->srv;

    if (c->state == C2S_CLOSED)
        return;
    ic_buf_append(&c->out, data, len);
    if (!c->dirty) {
        c->dirty = true;
        c->dirty_next = srv->dirty;
        srv->dirty = c;
    }
}

/* Serialized straight into the connection's output. */
void ic_xmpp__conn_send_xml(struct ic_xmpp__conn *c, const struct ic_xml *x)
{
    size_t start = c->out.len;

    if (c->state == C2S_CLOSED)
        return;
    ic_xml_write(&c->out, x, IC_NS_CLIENT);
    if (ic_log_get_level() >= IC_LOG_DEBUG)
        IC_LOG(IC_LOG_DEBUG, "xmpp", "%s out: %s", c->peer,
               c->out.data + start);
    ic_xmpp__conn_send(c, "", 0); /* marks it for the flush */
}

static void send_close_tag(struct ic_xmpp__conn *c)
{
    static const char tag[] = "</stream:stream>";

    ic_xmpp__conn_send(c, tag, sizeof tag - 1);
    ic_xmpp__conn_flush(c); /* everything before close_notify */
    if (c->tls != NULL && ic_tls_handshake_done(c->tls)) {
        ic_tls_shutdown(c->tls);
        flush_tls(c);
    }
}

/* Whether we have sent a stream header that needs closing. */
static bool header_sent(const struct ic_xmpp__conn *c)
{
    return c->id != NULL;
}

void ic_xmpp__conn_fail(struct ic_xmpp__conn *c,
                        enum ic_stream_error cond,
                        const char *text)
{
    struct ic_buf b = {0};

    if (c->closing)
        return;
    c->closing = true;
    IC_LOG(IC_LOG_INFO, "xmpp", "%s: stream error %s: %s", c->peer,
           ic_stream_error_name(cond), text ? text : "");
    if (!header_sent(c))
        ic_buf_puts(&b, "<?xml version='1.0'?><stream:stream "
                        "xmlns='jabber:client' xmlns:stream='" IC_NS_STREAMS
                        "' version='1.0'>");
    ic_buf_puts(&b, "<stream:error><");
    ic_buf_puts(&b, ic_stream_error_name(cond));
    ic_buf_puts(&b, " xmlns='" IC_NS_STREAM_ERRORS "'/>");
    if (text != NULL) {
        ic_buf_puts(&b, "<text xmlns='" IC_NS_STREAM_ERRORS "'>");
        ic_buf_append_escaped(&b, text, strlen(text));
        ic_buf_puts(&b, "</text>");
    }
    ic_buf_puts(&b, "</stream:error>");
    ic_xmpp__conn_send(c, b.data, b.len);
    ic_buf_free(&b);
    send_close_tag(c);
    if (c->state == C2S_CLOSED) /* a failed write tore it down already */
        return;
    c->state = C2S_CLOSING;
    finish(c);
}

void ic_xmpp__conn_close(struct ic_xmpp__conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (header_sent(c))
        send_close_tag(c);
    if (c->state == C2S_CLOSED) /* a failed write tore it down already */
        return;
    c->state = C2S_CLOSING;
    finish(c);
}

int ic_xmpp__conn_start_tls(struct ic_xmpp__conn *c)
{
    struct ic_tls_ctx *ctx =
        c->direct_tls ? c->srv->tls_direct : c->srv->tls_starttls;

    ic_xmpp__conn_flush(c); /* <proceed/> goes out in the clear */
    return ic_tls_new(ctx, &c->tls);
}

/* Plaintext from the peer into the parser. A stop inside a callback means
 * the stream restarts (after SASL) or TLS begins (after STARTTLS): the
 * remaining bytes go to the new stream, or are dropped before TLS (they
 * were sent before the client saw <proceed/>: an injection attempt). */
static void input(struct ic_xmpp__conn *c, const char *data, size_t len)
{
    while (len > 0 && !c->closing) {
        size_t used = len;
        if (ic_xml_stream_feed(c->stream, data, len, &used) != 0)
            return;
        if (used >= len || c->closing)
            return;
        if (c->state == C2S_TLS_HANDSHAKE)
            return;
        data += used;
        len -= used;
    }
}

static void tls_input(struct ic_xmpp__conn *c, const char *data, size_t len)
{
    struct ic_buf plain = {0};
    char why[256];
    int rc;

    ic_tls_feed(c->tls, data, len);
    plain = c->srv->plain; /* the server's, reused: no allocation */
    c->srv->plain = (struct ic_buf){0};
    rc = ic_tls_read(c->tls, &plain, why, sizeof why);
    flush_tls(c);
    if (rc == IC_EIO) {
        IC_LOG(IC_LOG_INFO, "xmpp", "%s: %s", c->peer, why);
        teardown(c);
    } else if (rc == IC_EEND) {
        teardown(c);
    } else {
        if (c->state == C2S_TLS_HANDSHAKE && ic_tls_handshake_done(c->tls))
            ic_xmpp__c2s_on_tls_ready(c);
        input(c, plain.data, plain.len);
    }
    /* given back for the next read, unless a big stanza grew it */
    ic_buf_reset(&plain);
    if (plain.cap > PLAIN_KEEP || c->srv->plain.data != NULL)
        ic_buf_free(&plain);
    else
        c->srv->plain = plain;
}

/* Every read goes into the server's one buffer: it is consumed before
 * on_read returns, and libuv never has two reads running. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct ic_xmpp__conn *c = h->data;

    (void)suggested;
    buf->base = c->srv->rbuf;
    buf->len = sizeof c->srv->rbuf;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct ic_xmpp__conn *c = s->data;

    if (c->closing)
        return;
    if (nread < 0) {
        teardown(c);
        return;
    }
    if (nread > 0) {
        c->last_activity = ic_xmpp__now_ms(c->srv);
        if (c->tls != NULL)
            tls_input(c, buf->base, (size_t)nread);
        else
            input(c, buf->base, (size_t)nread);
    }
}

/* A quiet session gets an XEP-0199 ping: its answer (result or error)
 * counts as activity; a peer that never answers reaches the idle timeout.
 * A session not bound yet gets whitespace. */
static void keepalive(struct ic_xmpp__conn *c)
{
    struct ic_buf b = {0};
    char id[32];

    if (c->session == NULL) {
        ic_xmpp__conn_send(c, " ", 1);
        return;
    }
    snprintf(id, sizeof id, "ping%llu",
             (unsigned long long)++c->srv->id_counter);
    ic_buf_puts(&b, "<iq type='get' id='");
    ic_buf_puts(&b, id);
    ic_buf_puts(&b, "' from='");
    ic_buf_append_escaped(&b, c->srv->domain, strlen(c->srv->domain));
    ic_buf_puts(&b, "' to='");
    ic_buf_append_escaped(&b, c->session->full, strlen(c->session->full));
    ic_buf_puts(&b, "'><ping xmlns='urn:xmpp:ping'/></iq>");
    ic_xmpp__conn_send(c, b.data, b.len);
    ic_buf_free(&b);
}

static void on_timer(uv_timer_t *t)
{
    struct ic_xmpp__conn *c = t->data;
    const struct ic_xmpp_config *cfg = &c->srv->cfg;
    uint64_t idle = ic_xmpp__now_ms(c->srv) - c->last_activity;

    if (c->closing)
        return;
    if (c->state != C2S_SESSION) {
        ic_xmpp__conn_fail(c, IC_SE_CONNECTION_TIMEOUT,
                           "no authentication in time");
        return;
    }
    if (idle >= (uint64_t)cfg->idle_timeout * 1000) {
        ic_xmpp__conn_fail(c, IC_SE_CONNECTION_TIMEOUT, "idle");
        return;
    }
    if (idle >= (uint64_t)cfg->keepalive * 1000)
        keepalive(c);
    ic_xmpp__conn_arm_timer(c);
}

void ic_xmpp__conn_arm_timer(struct ic_xmpp__conn *c)
{
    const struct ic_xmpp_config *cfg = &c->srv->cfg;
    uint64_t ms = c->state == C2S_SESSION
                      ? (uint64_t)cfg->keepalive * 1000
                      : (uint64_t)cfg->handshake_timeout * 1000;

    uv_timer_start(&c->timer, on_timer, ms ? ms : 1000, 0);
}

static void free_unaccepted(uv_handle_t *h)
{
    ic_free(h->data);
}

void ic_xmpp__conn_accept(struct ic_xmpp_server *srv,
                          uv_stream_t *listener,
                          bool direct_tls)
{
    struct ic_xmpp__conn *c = ic_calloc(1, sizeof *c);
    struct ic_xml_limits lim = {srv->cfg.max_stanza_preauth, 32, 1024, 64};
    struct sockaddr_storage ss;
    int len = sizeof ss;

    c->srv = srv;
    c->direct_tls = direct_tls;
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    c->handles_open = 1;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, free_unaccepted);
        return;
    }
    uv_timer_init(srv->loop, &c->timer);
    c->timer.data = c;
    c->handles_open = 2;
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer, sizeof c->peer);
        else
            uv_ip4_name((struct sockaddr_in *)&ss, c->peer, sizeof c->peer);
    }
    /* parks between stanzas: a busy server's parsing runs in the thread's
     * few spare parsers, warm in cache (stream.c) */
    c->stream = ic_xml_stream_new(&stream_cbs, c, &lim);
    c->last_activity = ic_xmpp__now_ms(srv);
    c->state = C2S_CONNECTED;
    if (direct_tls) {
        if (ic_xmpp__conn_start_tls(c) != 0) {
            teardown(c);
            return;
        }
        c->state = C2S_TLS_HANDSHAKE;
    }
    ic_xmpp__conn_arm_timer(c);
    c->reading = true;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}
