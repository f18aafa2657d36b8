/*
 * etcd-bench - the peer side of the cluster benchmark
 * (docs/benchmarks-cluster.md): N connections to etcd's client port,
 * spread round robin over the members, each putting back to back, one
 * request in flight, the value of --value-file (the same bytes as
 * icroot-cluster-bench's publish description) under its own key
 * PREFIX<i>, as a cloud replaces its own description.
 *
 * Two ways to put (--proto):
 *
 *   grpc  etcd's own API, what its clients and its benchmark tool use:
 *         `etcdserverpb.KV/Put` over HTTP/2 without TLS (h2c, prior
 *         knowledge; nghttp2 frames it), one stream at a time per
 *         connection. An answer counts when it is :status 200, its
 *         trailers say grpc-status 0 and its PutResponse carries a
 *         header with a revision. With --tls-ca FILE the connections
 *         are TLS (ALPN h2, etcd's certificate checked against FILE for
 *         the endpoint's IP address), as etcd runs in production.
 *   json  the v3 JSON gateway (grpc-gateway; `/v3/kv/put` in etcd 3.4,
 *         which also serves `/v3beta/`) over HTTP/1.1 keep-alive: HTTP
 *         200 and a JSON "header" with a "revision". The gateway
 *         translates to a gRPC call inside etcd, so this costs etcd more
 *         per put than grpc.
 *
 * Anything else is an error (its first answer is reported). A connection
 * that drops is counted and opened again.
 *
 * One process, one libuv loop, libuv TCP: each connection's request is
 * built once. Measuring is cbench.h's.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <uv.h>

#include "cbench.h"

#define MAX_EPS 16
#define MAX_ANSWER (1u << 20)

struct opts {
    const char *endpoints, *value_file, *key_prefix, *path, *label;
    const char *case_name, *pids;
    const char *tls_ca; /* grpc over TLS, the server checked against it */
    unsigned clients;
    double duration, warmup, grace;
    bool verbose, grpc;
};

#define GRPC_PUT_PATH "/etcdserverpb.KV/Put"

struct ebench;

struct conn {
    struct ebench *b;
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    unsigned idx; /* 1-based */
    int ep;
    char *req; /* json: the whole request; grpc: the gRPC message */
    size_t req_len;
    nghttp2_session *h2; /* grpc */
    SSL *ssl;            /* --tls-ca: over memory BIOs */
    BIO *rbio, *wbio;
    size_t req_off; /* grpc: bytes of req given to nghttp2 */
    int32_t stream; /* grpc: the put in flight */
    int h2_status, grpc_status;
    char ans[256]; /* grpc: the answer's message (its start) */
    size_t ans_len;
    char grpc_message[128];
    char *in; /* answer bytes so far */
    size_t in_len, in_cap;
    bool open, up, busy;
    bool ever_up;  /* counted in up or failed for the start */
    bool was_up;   /* connected since the last (re)open: reopen if lost */
    bool answered; /* grpc: an answer came in the bytes being read */
    uint64_t sent;
};

struct ebench {
    struct opts o;
    uv_loop_t loop;
    uv_timer_t tick;
    struct cb_run run;
    struct conn *c;
    int neps;
    char host[MAX_EPS][64];
    char authority[MAX_EPS][112]; /* grpc: HOST:PORT */
    nghttp2_session_callbacks *h2cb;
    SSL_CTX *tls;
    int port[MAX_EPS];
    char *value;
    size_t value_len;
    unsigned up, failed, in_flight, open;
    bool started, closing;
    uint64_t t_conn0, t_stop;
    char first_body[200];
};

/* ---- request ------------------------------------------------------------- */

static char *base64(const char *s, size_t n, size_t *out_len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)s;
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;

    if (out == NULL)
        abort();
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        *o++ = tab[(v >> 18) & 63];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = '\0';
    *out_len = (size_t)(o - out);
    return out;
}

static size_t put_varint(unsigned char *p, uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

/* The gRPC message of a put: a 5-byte prefix (not compressed, length
 * big-endian), then the PutRequest: key = field 1, value = field 2, both
 * length-delimited (etcd's rpc.proto). */
static void
build_grpc_message(struct ebench *b, struct conn *k, const char *key)
{
    size_t kl = strlen(key), n = 5;
    unsigned char *m = malloc(5 + 2 * 10 + kl + b->value_len);
    uint32_t len;

    if (m == NULL)
        abort();
    m[n++] = 0x0a;
    n += put_varint(m + n, kl);
    memcpy(m + n, key, kl);
    n += kl;
    m[n++] = 0x12;
    n += put_varint(m + n, b->value_len);
    memcpy(m + n, b->value, b->value_len);
    n += b->value_len;
    len = (uint32_t)(n - 5);
    m[0] = 0;
    m[1] = (unsigned char)(len >> 24);
    m[2] = (unsigned char)(len >> 16);
    m[3] = (unsigned char)(len >> 8);
    m[4] = (unsigned char)len;
    k->req = (char *)m;
    k->req_len = n;
}

static void build_request(struct ebench *b, struct conn *k)
{
    char key[256], head[512];
    size_t kl, vl, body_len, hl;
    char *k64, *v64;

    snprintf(key, sizeof key, "%s%u", b->o.key_prefix, k->idx);
    if (b->o.grpc) {
        build_grpc_message(b, k, key);
        return;
    }
    k64 = base64(key, strlen(key), &kl);
    v64 = base64(b->value, b->value_len, &vl);
    body_len = kl + vl + sizeof "{\"key\":\"\",\"value\":\"\"}" - 1;
    hl = (size_t)snprintf(head, sizeof head,
                          "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          b->o.path, b->host[k->ep], b->port[k->ep], body_len);
    k->req_len = hl + body_len;
    k->req = malloc(k->req_len + 1);
    if (k->req == NULL)
        abort();
    snprintf(k->req, k->req_len + 1, "%s{\"key\":\"%s\",\"value\":\"%s\"}",
             head, k64, v64);
    free(k64);
    free(v64);
}

/* ---- answer -------------------------------------------------------------- */

static const char *find(const char *s, size_t n, const char *what)
{
    size_t wl = strlen(what);

    for (size_t i = 0; i + wl <= n; i++)
        if (memcmp(s + i, what, wl) == 0)
            return s + i;
    return NULL;
}

/* Decodes a chunked body in place at BODY (N bytes available): the body's
 * length in *OUT, the bytes consumed in *USED; 0 when complete, 1 when
 * more bytes are needed, -1 when malformed. */
static int dechunk(char *body, size_t n, size_t *out, size_t *used)
{
    size_t r = 0, w = 0;

    for (;;) {
        const char *eol = find(body + r, n - r, "\r\n");
        unsigned long sz;
        char *end;
        if (eol == NULL)
            return 1;
        sz = strtoul(body + r, &end, 16);
        if (end == body + r)
            return -1;
        r = (size_t)(eol - body) + 2;
        if (sz == 0) {
            if (n - r < 2)
                return 1;
            if (memcmp(body + r, "\r\n", 2) != 0)
                return -1; /* trailers: etcd sends none */
            *out = w;
            *used = r + 2;
            return 0;
        }
        if (n - r < sz + 2)
            return 1;
        memmove(body + w, body + r, sz);
        w += sz;
        r += sz + 2;
    }
}

struct answer {
    int status;
    const char *body;
    size_t body_len, used;
};

/* 0: A is complete; 1: more bytes needed; -1: malformed. */
static int parse_answer(char *s, size_t n, struct answer *a)
{
    const char *end = find(s, n, "\r\n\r\n"), *line;
    size_t hl, clen = 0;
    bool have_len = false, chunked = false;
    int rc;

    if (end == NULL)
        return n > 16384 ? -1 : 1;
    hl = (size_t)(end - s) + 4;
    if (sscanf(s, "HTTP/1.%*d %d", &a->status) != 1)
        return -1;
    for (line = find(s, hl, "\r\n") + 2; line < end;
         line = find(line, (size_t)(end + 2 - line), "\r\n") + 2) {
        if (strncasecmp(line, "content-length:", 15) == 0) {
            clen = strtoul(line + 15, NULL, 10);
            have_len = true;
        } else if (strncasecmp(line, "transfer-encoding:", 18) == 0) {
            chunked = find(line, (size_t)(end - line), "chunked") != NULL;
        }
    }
    a->body = s + hl;
    if (chunked) {
        size_t used = 0;
        rc = dechunk(s + hl, n - hl, &a->body_len, &used);
        a->used = hl + used;
        return rc;
    }
    if (!have_len)
        return -1; /* a close-delimited body: not keep-alive */
    if (n - hl < clen)
        return clen > MAX_ANSWER ? -1 : 1;
    a->body_len = clen;
    a->used = hl + clen;
    return 0;
}

/* ---- connections --------------------------------------------------------- */

static void conn_open(struct conn *k);
static void send_next(struct conn *k);
static void maybe_begin(struct ebench *b);

static void on_closed(uv_handle_t *h)
{
    struct conn *k = h->data;
    struct ebench *b = k->b;

    k->open = false;
    b->open--;
    nghttp2_session_del(k->h2); /* NULL for json */
    k->h2 = NULL;
    SSL_free(k->ssl); /* and its BIOs */
    k->ssl = NULL;
    if (b->closing || b->run.stopping || !k->was_up)
        return;
    conn_open(k); /* dropped during the run: open it again, once */
}

static void conn_fail(struct conn *k, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void conn_fail(struct conn *k, const char *fmt, ...)
{
    struct ebench *b = k->b;
    char why[256];
    va_list ap;

    if (!k->open || uv_is_closing((uv_handle_t *)&k->tcp))
        return;
    if (k->busy) {
        k->busy = false;
        b->in_flight--;
    }
    if (!k->ever_up) {
        b->failed++;
        b->run.login_failures++;
        k->ever_up = true; /* counted once; reconnects are not waited for */
    } else if (!b->closing) {
        b->run.conn_errors++;
    }
    if (k->up)
        b->up--;
    k->up = false;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    cb_run_error(&b->run, "%s", why);
    uv_close((uv_handle_t *)&k->tcp, on_closed);
    maybe_begin(b);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct conn *k = h->data;

    (void)hint;
    if (k->in_cap - k->in_len < 16384) {
        k->in_cap = k->in_cap ? k->in_cap * 2 : 32768;
        k->in = realloc(k->in, k->in_cap);
        if (k->in == NULL)
            abort();
    }
    *buf = uv_buf_init(k->in + k->in_len, (unsigned)(k->in_cap - k->in_len));
}

/* One answer in: OK or not, WHAT (N bytes) is what the first answer and
 * the first error report. */
static void finish(struct conn *k, bool ok, const char *what, size_t n)
{
    struct ebench *b = k->b;

    if (b->first_body[0] == '\0' || (!ok && b->run.first_error[0] == '\0')) {
        if (n > sizeof b->first_body - 1)
            n = sizeof b->first_body - 1;
        memcpy(b->first_body, what, n);
        b->first_body[n] = '\0';
        if (b->o.verbose)
            fprintf(stderr, "etcd-bench: %s\n", b->first_body);
    }
    if (!ok)
        cb_run_error(&b->run, "%s", b->first_body);
    k->busy = false;
    b->in_flight--;
    cb_run_done(&b->run, k->sent, ok);
}

static void answered(struct conn *k, const struct answer *a)
{
    char what[300];
    bool ok = a->status == 200 &&
              find(a->body, a->body_len, "\"header\"") != NULL &&
              find(a->body, a->body_len, "\"revision\"") != NULL;
    int n = snprintf(what, sizeof what, "HTTP %d %.*s", a->status,
                     (int)(a->body_len < 200 ? a->body_len : 200), a->body);

    finish(k, ok, what, (size_t)n < sizeof what ? (size_t)n : sizeof what - 1);
}

/* ---- gRPC over HTTP/2 ---------------------------------------------------- */

struct h2_out {
    uv_write_t w; /* first: freed through it */
    char data[];
};

static void on_h2_written(uv_write_t *w, int status)
{
    struct conn *k = w->data;

    free(w);
    if (status < 0)
        conn_fail(k, "write: %s", uv_strerror(status));
}

/* Writes LEN bytes of O to the socket (O is freed once written); -1 when
 * the connection failed. */
static int out_write(struct conn *k, struct h2_out *o, size_t len)
{
    uv_buf_t buf = uv_buf_init(o->data, (unsigned)len);

    o->w.data = k;
    if (uv_write(&o->w, (uv_stream_t *)&k->tcp, &buf, 1, on_h2_written) != 0) {
        free(o);
        conn_fail(k, "%s", "cannot write");
        return -1;
    }
    return 0;
}

/* Writes the TLS records OpenSSL produced (handshake, data) to the
 * socket; -1 when the connection failed. */
static int tls_out(struct conn *k)
{
    size_t n = BIO_ctrl_pending(k->wbio);
    struct h2_out *o;

    if (n == 0)
        return 0;
    o = malloc(sizeof *o + n);
    if (o == NULL)
        abort();
    if (BIO_read(k->wbio, o->data, (int)n) != (int)n)
        abort();
    return out_write(k, o, n);
}

/* Writes what nghttp2 has to send, in one write; -1 when the connection
 * failed. Never from inside nghttp2's callbacks. */
static int h2_flush(struct conn *k)
{
    struct h2_out *o = NULL;
    size_t len = 0, cap = 0;
    const uint8_t *data;
    ssize_t n;

    while ((n = nghttp2_session_mem_send(k->h2, &data)) > 0) {
        if (len + (size_t)n > cap) {
            cap = 2 * (len + (size_t)n) < 4096 ? 4096 : 2 * (len + (size_t)n);
            o = realloc(o, sizeof *o + cap);
            if (o == NULL)
                abort();
        }
        memcpy(o->data + len, data, (size_t)n);
        len += (size_t)n;
    }
    if (n < 0) {
        free(o);
        conn_fail(k, "HTTP/2: %s", nghttp2_strerror((int)n));
        return -1;
    }
    if (len == 0)
        return 0;
    if (k->ssl != NULL) { /* memory BIO: the whole record is written */
        int w = SSL_write(k->ssl, o->data, (int)len);
        free(o);
        if (w != (int)len) {
            conn_fail(k, "%s", "TLS write");
            return -1;
        }
        return tls_out(k);
    }
    return out_write(k, o, len);
}

static ssize_t h2_read_req(nghttp2_session *s,
                           int32_t stream,
                           uint8_t *buf,
                           size_t length,
                           uint32_t *flags,
                           nghttp2_data_source *src,
                           void *user)
{
    struct conn *k = user;
    size_t n = k->req_len - k->req_off;

    (void)s;
    (void)stream;
    (void)src;
    if (n > length)
        n = length;
    memcpy(buf, k->req + k->req_off, n);
    k->req_off += n;
    if (k->req_off == k->req_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

#define NV(n, v)                                                         \
    {                                                                    \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),        \
            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE \
    }

static int h2_send_put(struct conn *k)
{
    struct ebench *b = k->b;
    const nghttp2_nv hdrs[] = {
        NV(":method", "POST"),
        NV(":scheme", b->tls != NULL ? "https" : "http"),
        NV(":path", GRPC_PUT_PATH),
        NV(":authority", b->authority[k->ep]),
        NV("content-type", "application/grpc"),
        NV("te", "trailers"),
    };
    nghttp2_data_provider dp = {.read_callback = h2_read_req};

    k->req_off = 0;
    k->h2_status = 0;
    k->grpc_status = -1;
    k->ans_len = 0;
    k->grpc_message[0] = '\0';
    k->stream = nghttp2_submit_request(k->h2, NULL, hdrs,
                                       sizeof hdrs / sizeof hdrs[0], &dp, k);
    if (k->stream < 0) {
        conn_fail(k, "HTTP/2 request: %s", nghttp2_strerror(k->stream));
        return -1;
    }
    return h2_flush(k);
}

static int
get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
        unsigned char c = *(*p)++;
        *v |= (uint64_t)(c & 0x7f) << shift;
        if ((c & 0x80) == 0)
            return 0;
    }
    return -1;
}

/* The next field of a protobuf message in [*P, END): its number in
 * *FIELD; a varint's value in *V, or a length-delimited field's bytes at
 * *SUB (*V long). 1 for a field, 0 at the end, -1 when malformed or of
 * another wire type. */
static int pb_next(const unsigned char **p,
                   const unsigned char *end,
                   uint64_t *field,
                   uint64_t *v,
                   const unsigned char **sub)
{
    uint64_t tag;

    *sub = NULL;
    if (*p == end)
        return 0;
    if (get_varint(p, end, &tag) != 0 || get_varint(p, end, v) != 0)
        return -1;
    *field = tag >> 3;
    if ((tag & 7) == 0)
        return 1;
    if ((tag & 7) != 2 || *v > (uint64_t)(end - *p))
        return -1;
    *sub = *p;
    *p += *v;
    return 1;
}

/* The revision of the PutResponse in the gRPC message P (N bytes):
 * PutResponse.header (1) -> ResponseHeader.revision (3); -1 if none. */
static int64_t put_revision(const unsigned char *p, size_t n)
{
    const unsigned char *end, *hdr = NULL, *sub;
    uint64_t field, v, hlen = 0;
    uint32_t len;
    int rc;

    if (n < 5 || p[0] != 0)
        return -1;
    len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 |
          p[4];
    if (len > n - 5)
        return -1;
    p += 5;
    end = p + len;
    while ((rc = pb_next(&p, end, &field, &v, &sub)) == 1)
        if (field == 1 && sub != NULL) {
            hdr = sub;
            hlen = v;
        }
    if (rc < 0 || hdr == NULL)
        return -1;
    end = hdr + hlen;
    while ((rc = pb_next(&hdr, end, &field, &v, &sub)) == 1)
        if (field == 3 && sub == NULL)
            return v > 0 && v <= INT64_MAX ? (int64_t)v : -1;
    return -1;
}

static void grpc_answered(struct conn *k, uint32_t error_code)
{
    char what[300];
    int64_t rev = put_revision((const unsigned char *)k->ans, k->ans_len);
    bool ok = error_code == 0 && k->h2_status == 200 && k->grpc_status == 0 &&
              rev > 0;
    int n;

    if (ok)
        n = snprintf(what, sizeof what, "grpc-status 0, revision %lld",
                     (long long)rev);
    else
        n = snprintf(what, sizeof what,
                     ":status %d, grpc-status %d %s, stream error %u, "
                     "%zu bytes of message",
                     k->h2_status, k->grpc_status, k->grpc_message, error_code,
                     k->ans_len);
    finish(k, ok, what, (size_t)n < sizeof what ? (size_t)n : sizeof what - 1);
}

static int h2_on_header(nghttp2_session *s,
                        const nghttp2_frame *f,
                        const uint8_t *name,
                        size_t namelen,
                        const uint8_t *value,
                        size_t valuelen,
                        uint8_t flags,
                        void *user)
{
    struct conn *k = user;
    char v[16];

    (void)s;
    (void)flags;
    if (f->hd.stream_id != k->stream)
        return 0;
    if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        size_t n = valuelen < sizeof k->grpc_message - 1
                       ? valuelen
                       : sizeof k->grpc_message - 1;
        memcpy(k->grpc_message, value, n);
        k->grpc_message[n] = '\0';
        return 0;
    }
    if (valuelen >= sizeof v)
        return 0;
    memcpy(v, value, valuelen);
    v[valuelen] = '\0';
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        k->h2_status = atoi(v);
    else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
        k->grpc_status = atoi(v);
    return 0;
}

static int h2_on_data(nghttp2_session *s,
                      uint8_t flags,
                      int32_t stream,
                      const uint8_t *data,
                      size_t len,
                      void *user)
{
    struct conn *k = user;
    size_t room = sizeof k->ans - k->ans_len;

    (void)s;
    (void)flags;
    if (stream != k->stream)
        return 0;
    memcpy(k->ans + k->ans_len, data, len < room ? len : room);
    k->ans_len += len < room ? len : room;
    return 0;
}

static int
h2_on_close(nghttp2_session *s, int32_t stream, uint32_t error_code, void *user)
{
    struct conn *k = user;

    (void)s;
    if (stream != k->stream || !k->busy)
        return 0;
    k->stream = 0;
    k->answered = true; /* the next put is sent after nghttp2 returns */
    grpc_answered(k, error_code);
    return 0;
}

static int h2_start(struct conn *k)
{
    if (nghttp2_session_client_new(&k->h2, k->b->h2cb, k) != 0)
        abort();
    if (nghttp2_submit_settings(k->h2, NGHTTP2_FLAG_NONE, NULL, 0) != 0) {
        conn_fail(k, "%s", "HTTP/2 settings");
        return -1;
    }
    return h2_flush(k);
}

static void h2_read(struct conn *k, const char *data, size_t n)
{
    ssize_t rc = nghttp2_session_mem_recv(k->h2, (const uint8_t *)data, n);

    if (rc < 0) {
        conn_fail(k, "HTTP/2: %s", nghttp2_strerror((int)rc));
        return;
    }
    if (k->answered) {
        k->answered = false;
        send_next(k);
    }
    if (k->open && !uv_is_closing((uv_handle_t *)&k->tcp) && h2_flush(k) == 0 &&
        !nghttp2_session_want_read(k->h2) && !nghttp2_session_want_write(k->h2))
        conn_fail(k, "%s", "HTTP/2 session ended by etcd (GOAWAY)");
}

static void conn_ready(struct conn *k);

static void tls_fail(struct conn *k, const char *what)
{
    char e[160];

    ERR_error_string_n(ERR_get_error(), e, sizeof e);
    conn_fail(k, "TLS %s: %s", what, e);
}

/* N bytes arrived at k->in: the handshake goes on, or the records are
 * decrypted and handed to nghttp2. */
static void tls_read(struct conn *k, size_t n)
{
    char plain[16384];
    int r;

    if (BIO_write(k->rbio, k->in, (int)n) != (int)n)
        abort();
    if (!SSL_is_init_finished(k->ssl)) {
        const unsigned char *alpn = NULL;
        unsigned alen = 0;
        r = SSL_do_handshake(k->ssl);
        if (tls_out(k) != 0)
            return;
        if (r != 1) {
            if (SSL_get_error(k->ssl, r) != SSL_ERROR_WANT_READ)
                tls_fail(k, "handshake");
            return;
        }
        SSL_get0_alpn_selected(k->ssl, &alpn, &alen);
        if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
            conn_fail(k, "%s", "TLS: the server did not choose h2 (ALPN)");
            return;
        }
        conn_ready(k);
    }
    while (k->open && !uv_is_closing((uv_handle_t *)&k->tcp) &&
           (r = SSL_read(k->ssl, plain, sizeof plain)) > 0)
        h2_read(k, plain, (size_t)r);
    if (!k->open || uv_is_closing((uv_handle_t *)&k->tcp))
        return;
    if (SSL_get_error(k->ssl, r) != SSL_ERROR_WANT_READ) {
        tls_fail(k, "read");
        return;
    }
    tls_out(k); /* alerts, key updates */
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *k = s->data;
    struct answer a = {0};
    int rc;

    (void)buf;
    if (nread < 0) {
        conn_fail(k, "connection lost: %s", uv_strerror((int)nread));
        return;
    }
    if (k->ssl != NULL) {
        tls_read(k, (size_t)nread);
        return;
    }
    if (k->h2 != NULL) {
        h2_read(k, k->in, (size_t)nread); /* in_len stays 0 */
        return;
    }
    k->in_len += (size_t)nread;
    while (k->in_len > 0) {
        rc = parse_answer(k->in, k->in_len, &a);
        if (rc == 1)
            return;
        if (rc < 0 || !k->busy) {
            conn_fail(k, "%s",
                      rc < 0 ? "malformed HTTP answer"
                             : "an answer nobody asked for");
            return;
        }
        answered(k, &a);
        memmove(k->in, k->in + a.used, k->in_len - a.used);
        k->in_len -= a.used;
        send_next(k);
    }
}

static void on_written(uv_write_t *w, int status)
{
    struct conn *k = w->data;

    if (status < 0)
        conn_fail(k, "write: %s", uv_strerror(status));
}

static void send_next(struct conn *k)
{
    struct ebench *b = k->b;
    uv_buf_t buf = uv_buf_init(k->req, (unsigned)k->req_len);

    if (b->run.stopping || b->closing || !k->up || k->busy)
        return;
    if (k->h2 != NULL) {
        k->sent = cb_now_ns();
        k->busy = true;
        b->in_flight++;
        h2_send_put(k); /* a failure is conn_fail's */
        return;
    }
    k->sent = cb_now_ns();
    k->wreq.data = k;
    if (uv_write(&k->wreq, (uv_stream_t *)&k->tcp, &buf, 1, on_written) != 0) {
        conn_fail(k, "%s", "cannot write");
        return;
    }
    k->busy = true;
    b->in_flight++;
}

static void on_connected(uv_connect_t *req, int status)
{
    struct conn *k = req->data;
    struct ebench *b = k->b;

    if (status < 0) {
        conn_fail(k, "connect: %s", uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&k->tcp, 1);
    if (uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read) != 0) {
        conn_fail(k, "%s", "cannot read");
        return;
    }
    if (b->tls != NULL) { /* ready once the handshake is over */
        k->ssl = SSL_new(b->tls);
        k->rbio = BIO_new(BIO_s_mem());
        k->wbio = BIO_new(BIO_s_mem());
        if (k->ssl == NULL || k->rbio == NULL || k->wbio == NULL)
            abort();
        SSL_set_bio(k->ssl, k->rbio, k->wbio);
        SSL_set_connect_state(k->ssl);
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(k->ssl),
                                          b->host[k->ep]) != 1) {
            conn_fail(k, "%s", "TLS: the endpoint is not an IP address");
            return;
        }
        int r = SSL_do_handshake(k->ssl);
        if (r != 1 && SSL_get_error(k->ssl, r) != SSL_ERROR_WANT_READ) {
            tls_fail(k, "handshake");
            return;
        }
        tls_out(k);
        return;
    }
    conn_ready(k);
}

/* Connected (and through TLS when asked): start putting. */
static void conn_ready(struct conn *k)
{
    struct ebench *b = k->b;

    if (b->o.grpc && h2_start(k) != 0)
        return;
    k->up = true;
    k->was_up = true;
    if (!k->ever_up) {
        k->ever_up = true;
        b->up++;
        maybe_begin(b);
    } else {
        b->up++;
        send_next(k);
    }
}

static void conn_open(struct conn *k)
{
    struct ebench *b = k->b;
    struct sockaddr_in sa;

    k->in_len = 0;
    k->was_up = false;
    uv_tcp_init(&b->loop, &k->tcp);
    k->tcp.data = k;
    k->creq.data = k;
    k->open = true;
    b->open++;
    if (uv_ip4_addr(b->host[k->ep], b->port[k->ep], &sa) != 0 ||
        uv_tcp_connect(&k->creq, &k->tcp, (const struct sockaddr *)&sa,
                       on_connected) != 0)
        conn_fail(k, "connect to %s failed", b->host[k->ep]);
}

/* ---- the run ------------------------------------------------------------- */

static void maybe_begin(struct ebench *b)
{
    if (b->started || b->up + b->failed < b->o.clients)
        return;
    b->started = true;
    b->run.clients_up = b->up;
    b->run.login_s = (double)(cb_now_ns() - b->t_conn0) / 1e9;
    fprintf(stderr, "%s: %u of %u connections up in %.2f s, running\n",
            b->run.case_name, b->up, b->o.clients, b->run.login_s);
    cb_run_start(&b->run);
    for (unsigned i = 0; i < b->o.clients; i++)
        send_next(&b->c[i]);
}

static void close_all(struct ebench *b)
{
    b->closing = true;
    for (unsigned i = 0; i < b->o.clients; i++)
        if (b->c[i].open && !uv_is_closing((uv_handle_t *)&b->c[i].tcp))
            uv_close((uv_handle_t *)&b->c[i].tcp, on_closed);
    uv_close((uv_handle_t *)&b->tick, NULL);
}

static void on_tick(uv_timer_t *t)
{
    struct ebench *b = t->data;
    uint64_t now;

    if (b->closing)
        return;
    cb_run_tick(&b->run);
    if (!b->run.stopping)
        return;
    now = cb_now_ns();
    if (b->t_stop == 0)
        b->t_stop = now;
    if (b->in_flight == 0 || now - b->t_stop > (uint64_t)(b->o.grace * 1e9)) {
        b->run.in_flight_at_end = b->in_flight;
        close_all(b);
    }
}

/* ---- options ------------------------------------------------------------- */

static int parse_endpoints(struct ebench *b)
{
    const char *s = b->o.endpoints;

    while (s != NULL && *s != '\0' && b->neps < MAX_EPS) {
        const char *comma = strchr(s, ','), *colon;
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        char one[96];

        if (n >= sizeof one)
            return -1;
        memcpy(one, s, n);
        one[n] = '\0';
        if (strncmp(one, "http://", 7) == 0)
            memmove(one, one + 7, strlen(one + 7) + 1);
        colon = strrchr(one, ':');
        if (colon == NULL || (size_t)(colon - one) >= sizeof b->host[0])
            return -1;
        memcpy(b->host[b->neps], one, (size_t)(colon - one));
        b->host[b->neps][colon - one] = '\0';
        b->port[b->neps] = atoi(colon + 1);
        if (b->port[b->neps] <= 0)
            return -1;
        one[colon - one] = '\0'; /* the host */
        snprintf(b->authority[b->neps], sizeof b->authority[0], "%s:%d", one,
                 b->port[b->neps]);
        b->neps++;
        s = comma ? comma + 1 : NULL;
    }
    return b->neps > 0 ? 0 : -1;
}

static int read_value(struct ebench *b)
{
    FILE *f = fopen(b->o.value_file, "rb");
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        perror(b->o.value_file);
        if (f != NULL)
            fclose(f);
        return -1;
    }
    b->value = malloc((size_t)n + 1);
    if (b->value == NULL)
        abort();
    b->value_len = fread(b->value, 1, (size_t)n, f);
    fclose(f);
    return 0;
}

static void usage(FILE *f)
{
    fputs("usage: etcd-bench --endpoints HOST:PORT,... --value-file FILE\n"
          "         [--clients N] [--duration S] [--warmup S]\n"
          "\n"
          "  --endpoints LIST   the members' client URLs, round robin\n"
          "  --value-file FILE  the value put (icroot-cluster-bench\n"
          "                     --print-payload writes the same bytes)\n"
          "  --clients N        connections, one request in flight each (64)\n"
          "  --proto P          grpc (etcd's KV/Put over HTTP/2, default)\n"
          "                     or json (the HTTP/1.1 JSON gateway)\n"
          "  --key-prefix P     keys P1..PN (/icroot-bench/bench)\n"
          "  --path P           json: the gateway's path (/v3/kv/put)\n"
          "  --duration S       measured seconds (10)\n"
          "  --warmup S         seconds before the window opens (2)\n"
          "  --grace S          wait for answers after the window (10)\n"
          "  --label L          server name in the output (etcd)\n"
          "  --case C           case name (put-N)\n"
          "  --pids LIST        server processes to measure\n"
          "  --tls-ca FILE      grpc over TLS, etcd's certificate checked\n"
          "                     against FILE\n"
          "  --verbose          print the first answer\n",
          f);
}

static const struct option long_opts[] = {
    {"endpoints", required_argument, NULL, 'e'},
    {"value-file", required_argument, NULL, 'v'},
    {"clients", required_argument, NULL, 'n'},
    {"key-prefix", required_argument, NULL, 'k'},
    {"path", required_argument, NULL, 'p'},
    {"proto", required_argument, NULL, 'r'},
    {"duration", required_argument, NULL, 'd'},
    {"warmup", required_argument, NULL, 'w'},
    {"grace", required_argument, NULL, 'g'},
    {"label", required_argument, NULL, 'l'},
    {"case", required_argument, NULL, 'c'},
    {"pids", required_argument, NULL, 'P'},
    {"tls-ca", required_argument, NULL, 'T'},
    {"verbose", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse(int argc, char **argv, struct opts *o)
{
    int ch;

    while ((ch = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        switch (ch) {
        case 'e':
            o->endpoints = optarg;
            break;
        case 'v':
            o->value_file = optarg;
            break;
        case 'n':
            o->clients = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'k':
            o->key_prefix = optarg;
            break;
        case 'p':
            o->path = optarg;
            break;
        case 'r':
            if (strcmp(optarg, "grpc") != 0 && strcmp(optarg, "json") != 0) {
                fprintf(stderr, "--proto: grpc or json\n");
                return 2;
            }
            o->grpc = strcmp(optarg, "grpc") == 0;
            break;
        case 'd':
            o->duration = atof(optarg);
            break;
        case 'w':
            o->warmup = atof(optarg);
            break;
        case 'g':
            o->grace = atof(optarg);
            break;
        case 'l':
            o->label = optarg;
            break;
        case 'c':
            o->case_name = optarg;
            break;
        case 'P':
            o->pids = optarg;
            break;
        case 'T':
            o->tls_ca = optarg;
            break;
        case 'V':
            o->verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (o->endpoints == NULL || o->value_file == NULL || o->clients == 0) {
        usage(stderr);
        return 2;
    }
    return -1;
}

static int setup(struct ebench *b, char *case_buf, size_t len, char *target)
{
    struct cb_run *r = &b->run;

    if (parse_endpoints(b) != 0) {
        fprintf(stderr, "--endpoints: HOST:PORT,...\n");
        return -1;
    }
    if (read_value(b) != 0)
        return -1;
    snprintf(case_buf, len, "put-%u", b->o.clients);
    snprintf(target, 32, "all %d members", b->neps);
    r->case_name = b->o.case_name ? b->o.case_name : case_buf;
    r->mode = "put";
    r->server = b->o.label;
    r->target = target;
    r->clients = b->o.clients;
    r->warmup_s = b->o.warmup;
    r->duration_s = b->o.duration;
    r->payload_bytes = b->value_len;
    if (b->o.pids != NULL &&
        (r->npids = cb_parse_pids(b->o.pids, r->pids)) < 0) {
        fprintf(stderr, "--pids: a list of process ids\n");
        return -1;
    }
    if (b->o.tls_ca != NULL && !b->o.grpc) {
        fprintf(stderr, "--tls-ca: with --proto grpc only\n");
        return -1;
    }
    if (b->o.tls_ca != NULL) {
        static const unsigned char alpn[] = "\x02h2";
        b->tls = SSL_CTX_new(TLS_client_method());
        if (b->tls == NULL ||
            SSL_CTX_load_verify_locations(b->tls, b->o.tls_ca, NULL) != 1 ||
            SSL_CTX_set_alpn_protos(b->tls, alpn, sizeof alpn - 1) != 0) {
            fprintf(stderr, "--tls-ca %s: cannot use it\n", b->o.tls_ca);
            return -1;
        }
        SSL_CTX_set_verify(b->tls, SSL_VERIFY_PEER, NULL);
    }
    if (b->o.grpc) {
        if (nghttp2_session_callbacks_new(&b->h2cb) != 0)
            abort();
        nghttp2_session_callbacks_set_on_header_callback(b->h2cb, h2_on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(b->h2cb,
                                                                  h2_on_data);
        nghttp2_session_callbacks_set_on_stream_close_callback(b->h2cb,
                                                               h2_on_close);
    }
    b->c = calloc(b->o.clients, sizeof *b->c);
    if (b->c == NULL)
        abort();
    for (unsigned i = 0; i < b->o.clients; i++) {
        b->c[i].b = b;
        b->c[i].idx = i + 1;
        b->c[i].ep = (int)(i % (unsigned)b->neps);
        build_request(b, &b->c[i]);
    }
    r->request_bytes = b->c[0].req_len; /* grpc: the message, no framing */
    return 0;
}

/* Appends S to BUF as the rest of a JSON string, and its closing quote. */
static void escape_into(char *buf, size_t len, const char *s)
{
    size_t n = strlen(buf);

    for (; *s != '\0' && n + 4 < len; s++) {
        if (*s == '"' || *s == '\\')
            buf[n++] = '\\';
        buf[n++] = (unsigned char)*s < 0x20 ? ' ' : *s;
    }
    buf[n++] = '"';
    buf[n] = '\0';
}

int main(int argc, char **argv)
{
    static struct ebench b; /* large: the histogram and per-second counts */
    char case_buf[64], target[32], extra[300];
    int rc;

    b.o = (struct opts){.key_prefix = "/icroot-bench/bench",
                        .path = "/v3/kv/put",
                        .grpc = true,
                        .label = "etcd",
                        .clients = 64,
                        .duration = 10,
                        .warmup = 2,
                        .grace = 10};
    rc = parse(argc, argv, &b.o);
    if (rc >= 0)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    if (setup(&b, case_buf, sizeof case_buf, target) != 0)
        return 2;
    uv_loop_init(&b.loop);
    uv_timer_init(&b.loop, &b.tick);
    b.tick.data = &b;
    uv_timer_start(&b.tick, on_tick, 20, 20);
    b.t_conn0 = cb_now_ns();
    for (unsigned i = 0; i < b.o.clients; i++)
        conn_open(&b.c[i]);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    uv_loop_close(&b.loop);
    snprintf(extra, sizeof extra,
             ",\"proto\":\"%s\",\"path\":\"%s\",\"members\":%d,"
             "\"first_answer\":\"",
             b.o.grpc ? "grpc" : "json", b.o.grpc ? GRPC_PUT_PATH : b.o.path,
             b.neps);
    escape_into(extra, sizeof extra, b.first_body);
    cb_report_print(&b.run, extra);
    for (unsigned i = 0; i < b.o.clients; i++) {
        free(b.c[i].req);
        free(b.c[i].in);
    }
    free(b.c);
    free(b.value);
    nghttp2_session_callbacks_del(b.h2cb);
    return b.run.cpu1 > 0 ? 0 : 1;
}
