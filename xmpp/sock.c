/*
 * sock.c - one TCP connection carrying one XML stream, in the clear or
 * over TLS (see sock.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sock.h"

#define READ_SIZE 65536

struct sock_write {
    uv_write_t req;
    char *buf;
};

static void down(struct ic_xmpp__sock *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void down(struct ic_xmpp__sock *s, int err, const char *fmt, ...)
{
    char why[512];
    va_list ap;

    if (s->down || s->closing)
        return;
    s->down = true;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    s->ops->on_down(s->owner, err, why);
}

/* ---- output ------------------------------------------------------------ */

static void on_write(uv_write_t *req, int status)
{
    struct sock_write *w = (struct sock_write *)req;

    (void)status; /* a failed write shows as a read error too */
    ic_free(w->buf);
    ic_free(w);
}

static void write_raw(struct ic_xmpp__sock *s, const char *data, size_t len)
{
    struct sock_write *w;
    uv_buf_t b;

    if (len == 0 || !s->connected || uv_is_closing((uv_handle_t *)&s->tcp))
        return;
    w = ic_malloc(sizeof *w);
    w->buf = ic_malloc(len);
    memcpy(w->buf, data, len);
    b = uv_buf_init(w->buf, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, on_write) != 0) {
        ic_free(w->buf);
        ic_free(w);
    }
}

static void flush_tls(struct ic_xmpp__sock *s)
{
    struct ic_buf out = {0};

    ic_tls_take_output(s->tls, &out);
    write_raw(s, out.data, out.len);
    ic_buf_free(&out);
}

void ic_xmpp__sock_send(struct ic_xmpp__sock *s, const char *data, size_t len)
{
    if (s->tls == NULL)
        write_raw(s, data, len);
    else if (ic_tls_write(s->tls, data, len) == 0)
        flush_tls(s);
}

void ic_xmpp__sock_send_str(struct ic_xmpp__sock *s, const char *str)
{
    ic_xmpp__sock_send(s, str, strlen(str));
}

int ic_xmpp__sock_start_tls(struct ic_xmpp__sock *s,
                            struct ic_tls_ctx *ctx,
                            const char *host)
{
    int rc = host != NULL ? ic_tls_new_client(ctx, host, &s->tls)
                          : ic_tls_new(ctx, &s->tls);

    if (rc == 0 && host != NULL)
        flush_tls(s); /* the ClientHello */
    return rc;
}

/* ---- input ------------------------------------------------------------- */

/* Plaintext into the parser. After a stop, the rest goes to the restarted
 * stream, unless TLS has just begun (then it is dropped). */
static void input(struct ic_xmpp__sock *s, const char *data, size_t len)
{
    while (len > 0 && !s->down && !s->closing) {
        size_t used = len;
        bool had_tls = s->tls != NULL;
        if (ic_xml_stream_feed(s->stream, data, len, &used) != 0)
            return;
        if (used >= len || (!had_tls && s->tls != NULL))
            return;
        data += used;
        len -= used;
    }
}

static void tls_input(struct ic_xmpp__sock *s, const char *data, size_t len)
{
    struct ic_buf plain = {0};
    bool was_done = ic_tls_handshake_done(s->tls);
    char why[256];
    int rc;

    ic_tls_feed(s->tls, data, len);
    rc = ic_tls_read(s->tls, &plain, why, sizeof why);
    flush_tls(s);
    if (rc == IC_EIO) {
        const char *v = ic_tls_verify_error(s->tls);
        down(s, IC_EIO, "%s%s%s", why, v[0] ? ": certificate: " : "", v);
    } else if (rc == IC_EEND) {
        down(s, IC_EEND, "TLS closed by the peer");
    } else {
        if (!was_done && ic_tls_handshake_done(s->tls))
            s->ops->on_tls_ready(s->owner);
        input(s, plain.data, plain.len);
    }
    ic_buf_free(&plain);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    buf->base = ic_malloc(READ_SIZE);
    buf->len = READ_SIZE;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct ic_xmpp__sock *s = st->data;

    if (s->down || s->closing)
        ;
    else if (nread == UV_EOF)
        down(s, IC_EEND, "connection closed by the peer");
    else if (nread < 0)
        down(s, IC_EIO, "read: %s", uv_strerror((int)nread));
    else if (nread > 0 && s->tls != NULL)
        tls_input(s, buf->base, (size_t)nread);
    else if (nread > 0)
        input(s, buf->base, (size_t)nread);
    ic_free(buf->base);
}

static void start_reading(struct ic_xmpp__sock *s)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char addr[48] = "?";

    s->connected = true;
    uv_tcp_nodelay(&s->tcp, 1);
    if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, addr, sizeof addr);
        else
            uv_ip4_name((struct sockaddr_in *)&ss, addr, sizeof addr);
    }
    snprintf(s->peer, sizeof s->peer, "%s", addr);
    if (uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read) != 0)
        down(s, IC_EIO, "cannot read from the connection");
}

/* ---- connecting and accepting ------------------------------------------ */

static void on_tcp_closed(uv_handle_t *h);

static void on_connect(uv_connect_t *req, int status)
{
    struct ic_xmpp__sock *s = req->data;

    if (s->closing || s->down)
        return;
    if (status != 0) {
        down(s, IC_ECONNECT, "connect to %s:%d: %s", s->host, s->port,
             uv_strerror(status));
        return;
    }
    start_reading(s);
    if (!s->down)
        s->ops->on_connected(s->owner);
}

static void connect_to(struct ic_xmpp__sock *s, const struct sockaddr *sa)
{
    int rc;

    s->connect.data = s;
    rc = uv_tcp_connect(&s->connect, &s->tcp, sa, on_connect);
    if (rc != 0)
        down(s, IC_ECONNECT, "connect to %s:%d: %s", s->host, s->port,
             uv_strerror(rc));
}

static void maybe_closed(struct ic_xmpp__sock *s)
{
    if (s->resolving || !uv_is_closing((uv_handle_t *)&s->tcp) ||
        s->tcp.data != NULL)
        return;
    ic_xml_stream_free(s->stream);
    s->stream = NULL;
    ic_tls_free(s->tls);
    s->tls = NULL;
    ic_free(s->host);
    s->host = NULL;
    s->ops->on_closed(s->owner);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    struct ic_xmpp__sock *s = req->data;

    s->resolving = false;
    if (s->closing)
        maybe_closed(s);
    else if (status != 0 || ai == NULL)
        down(s, IC_ECONNECT, "%s: %s", s->host,
             status ? uv_strerror(status) : "no address");
    else
        connect_to(s, ai->ai_addr);
    uv_freeaddrinfo(ai);
}

void ic_xmpp__sock_connect(struct ic_xmpp__sock *s,
                           uv_loop_t *loop,
                           const char *host,
                           int port,
                           struct ic_xml_stream *stream,
                           const struct ic_xmpp__sock_ops *ops,
                           void *owner)
{
    struct sockaddr_storage ss;
    struct addrinfo hints = {0};
    char pbuf[16];
    int rc;

    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->stream = stream;
    s->ops = ops;
    s->owner = owner;
    s->host = ic_strdup(host);
    s->port = port;
    uv_tcp_init(loop, &s->tcp);
    s->tcp.data = s;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
        connect_to(s, (const struct sockaddr *)&ss);
        return;
    }
    snprintf(pbuf, sizeof pbuf, "%d", port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    s->resolve.data = s;
    rc = uv_getaddrinfo(loop, &s->resolve, on_resolved, host, pbuf, &hints);
    if (rc == 0)
        s->resolving = true;
    else
        down(s, IC_ECONNECT, "%s: %s", host, uv_strerror(rc));
}

int ic_xmpp__sock_accept(struct ic_xmpp__sock *s,
                         uv_stream_t *listener,
                         struct ic_xml_stream *stream,
                         const struct ic_xmpp__sock_ops *ops,
                         void *owner)
{
    memset(s, 0, sizeof *s);
    s->loop = listener->loop;
    s->ops = ops;
    s->owner = owner;
    s->stream = stream;
    uv_tcp_init(s->loop, &s->tcp);
    s->tcp.data = s;
    if (uv_accept(listener, (uv_stream_t *)&s->tcp) != 0) {
        s->closing = true;
        uv_close((uv_handle_t *)&s->tcp, on_tcp_closed);
        return IC_EIO;
    }
    start_reading(s);
    return 0;
}

/* ---- closing ------------------------------------------------------------- */

static void on_tcp_closed(uv_handle_t *h)
{
    struct ic_xmpp__sock *s = h->data;

    s->tcp.data = NULL;
    maybe_closed(s);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct ic_xmpp__sock *s = req->data;

    (void)status;
    ic_free(req);
    uv_close((uv_handle_t *)&s->tcp, on_tcp_closed);
}

void ic_xmpp__sock_close(struct ic_xmpp__sock *s)
{
    uv_shutdown_t *req;

    if (s->closing)
        return;
    s->closing = true;
    if (s->resolving)
        uv_cancel((uv_req_t *)&s->resolve);
    if (s->tls != NULL && s->connected && !s->down &&
        ic_tls_handshake_done(s->tls)) {
        ic_tls_shutdown(s->tls);
        flush_tls(s);
    }
    if (s->connected && !s->down) {
        req = ic_malloc(sizeof *req);
        req->data = s;
        if (uv_shutdown(req, (uv_stream_t *)&s->tcp, on_shutdown) == 0)
            return;
        ic_free(req);
    }
    uv_close((uv_handle_t *)&s->tcp, on_tcp_closed);
}
