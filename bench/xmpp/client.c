/*
 * client.c - one client connection of the load generator: TCP, the stream
 * header, STARTTLS (or direct TLS, XEP-0368), the TLS handshake over memory
 * BIOs (the loop owns the socket), SASL, resource binding, then the
 * scenario's traffic (scenario.c) until </stream:stream>.
 *
 * Happy path: connect -> header -> <starttls/> -> <proceed/> -> handshake
 * (verified against --ca for --domain) -> header -> <auth/> -> challenges
 * -> <success/> (server signature checked) -> header -> bind -> ready.
 * Every move is a row of `moves` and is asserted.
 * Failure modes: connect errors, TLS verification, a missing feature or
 * mechanism, <failure/>, a stream error, malformed XML, an early close:
 * each goes through conn_fail(), which counts it, keeps the first message
 * and closes. Callbacks return at once on a closing connection; the
 * struct is freed only in the close callback.
 *
 * Output is queued per connection (plaintext in c->out) and flushed once
 * per loop iteration by the worker's check handle: one SSL_write, one
 * write(2) per connection and iteration, however many stanzas.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "bench.h"

#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"

static const char *const state_names[ST__COUNT] = {
    "connecting", "features-tls",  "proceed", "tls-handshake", "features-auth",
    "sasl",       "features-bind", "bind",    "ready",         "ending",
};

static const struct {
    enum bench_state from, to;
} moves[] = {
    {ST_CONNECTING, ST_FEATURES_TLS},     /* header sent */
    {ST_CONNECTING, ST_TLS_HANDSHAKE},    /* direct TLS */
    {ST_FEATURES_TLS, ST_PROCEED},        /* <starttls/> sent */
    {ST_PROCEED, ST_TLS_HANDSHAKE},       /* <proceed/> */
    {ST_TLS_HANDSHAKE, ST_FEATURES_AUTH}, /* handshake done, header sent */
    {ST_FEATURES_AUTH, ST_SASL},          /* <auth/> sent */
    {ST_SASL, ST_FEATURES_BIND},          /* <success/>, header sent */
    {ST_FEATURES_BIND, ST_BIND},          /* bind iq sent */
    {ST_BIND, ST_READY},                  /* bound */
    {ST_READY, ST_ENDING},                /* </stream:stream> sent */
};

static void move(struct bench_conn *c, enum bench_state to)
{
    bool ok = false;

    for (size_t i = 0; i < BENCH_ARRAY_LEN(moves) && !ok; i++)
        ok = moves[i].from == c->state && moves[i].to == to;
    assert(ok && "client: move not in the transition table");
    c->state = to;
}

void bench_error(struct bench_worker *w, const char *fmt, ...)
{
    va_list ap;

    if (w->st.first_error[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(w->st.first_error, sizeof w->st.first_error, fmt, ap);
        va_end(ap);
    }
    if (w->run->o->verbose) {
        va_start(ap, fmt);
        fprintf(stderr, "icroot-bench: ");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
}

/* The one way out on an error: count it, keep the reason, close. */
static void conn_fail(struct bench_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void conn_fail(struct bench_conn *c, const char *fmt, ...)
{
    struct bench_worker *w = c->w;
    char msg[128];
    va_list ap;

    if (c->closing)
        return;
    c->failed = true;
    if (!w->stopping) {
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        w->st.conn_errors++;
        atomic_fetch_add(&w->run->failures, 1);
        bench_error(w, "conn %u (%s): %s", c->idx, state_names[c->state], msg);
    }
    bench_conn_close(c);
}

/* ---- output ---- */

struct wreq {
    uv_write_t req;
    struct bench_conn *c;
    size_t len;
    char data[];
};

static void on_write(uv_write_t *req, int status)
{
    struct wreq *r = (struct wreq *)req;
    struct bench_conn *c = r->c;

    c->wq -= r->len;
    free(r);
    if (status < 0 && !c->closing)
        conn_fail(c, "write: %s", uv_strerror(status));
}

static void raw_write(struct bench_conn *c, const char *data, size_t len)
{
    uv_buf_t b;
    struct wreq *r;
    int n = 0;

    if (c->wq == 0) {
        b = uv_buf_init((char *)data, (unsigned)len);
        n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n < 0 && n != UV_EAGAIN) {
            conn_fail(c, "write: %s", uv_strerror(n));
            return;
        }
        if (n < 0)
            n = 0;
        if ((size_t)n == len)
            return;
    }
    r = malloc(sizeof *r + len - (size_t)n);
    if (r == NULL)
        abort();
    r->c = c;
    r->len = len - (size_t)n;
    memcpy(r->data, data + n, r->len);
    b = uv_buf_init(r->data, (unsigned)r->len);
    c->wq += r->len;
    n = uv_write(&r->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (n < 0) {
        c->wq -= r->len;
        free(r);
        conn_fail(c, "write: %s", uv_strerror(n));
    }
}

static void mark_dirty(struct bench_conn *c)
{
    if (c->closing)
        return;
    c->dirty = true;
    if (c->in_list)
        return;
    c->in_list = true;
    c->next_dirty = c->w->dirty;
    c->w->dirty = c;
}

void bench_conn_send(struct bench_conn *c, const char *data, size_t len)
{
    if (c->closing)
        return;
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 256;
        while (cap < c->out_len + len)
            cap *= 2;
        c->out = realloc(c->out, cap);
        if (c->out == NULL)
            abort();
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    mark_dirty(c);
}

void bench_conn_sendf(struct bench_conn *c, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) {
        conn_fail(c, "stanza too long for bench_conn_sendf");
        return;
    }
    bench_conn_send(c, buf, (size_t)n);
}

/* The TLS records in the write BIO, to the socket. */
static void drain_wbio(struct bench_conn *c)
{
    char *buf = c->w->wbuf;
    int n;

    while (!c->closing && (n = BIO_read(c->wbio, buf, sizeof c->w->wbuf)) > 0)
        raw_write(c, buf, (size_t)n);
}

void bench_conn_flush(struct bench_conn *c)
{
    if (!c->dirty)
        return;
    c->dirty = false;
    if (c->closing)
        return;
    if (c->out_len > 0) {
        if (c->tls_up) {
            if (SSL_write(c->ssl, c->out, (int)c->out_len) <= 0) {
                conn_fail(c, "SSL_write failed");
                return;
            }
        } else {
            raw_write(c, c->out, c->out_len);
        }
        c->out_len = 0;
        if (c->out_cap > 4096) { /* keep idle connections small */
            free(c->out);
            c->out = NULL;
            c->out_cap = 0;
        }
    }
    if (c->ssl != NULL)
        drain_wbio(c);
}

/* ---- the stream ---- */

static void send_header(struct bench_conn *c)
{
    bench_conn_sendf(c,
                     "<?xml version='1.0'?><stream:stream to='%s' "
                     "xmlns='jabber:client' "
                     "xmlns:stream='http://etherx.jabber.org/streams' "
                     "version='1.0'>",
                     c->domain);
}

static const char *local_name(const char *name)
{
    const char *p = strrchr(name, ':');

    return p ? p + 1 : name;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);

    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void dispatch(struct bench_conn *c, struct bench_stanza *s);

static void on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    struct bench_conn *c = ud;
    const char *ln = local_name(name);
    unsigned depth = c->depth++;
    struct bench_stanza *s = c->stz;

    if (c->closing)
        return;
    if (depth == 0) {
        if (strcmp(ln, "stream") != 0)
            conn_fail(c, "expected a stream header, got <%s>", name);
        return;
    }
    if (depth == 1) {
        if (s == NULL)
            s = c->stz = malloc(sizeof *s);
        if (s == NULL)
            abort();
        memset(s, 0, offsetof(struct bench_stanza, text));
        s->text[0] = '\0';
        copy_str(s->name, sizeof s->name, ln);
        for (size_t i = 0; atts[i] != NULL; i += 2) {
            if (strcmp(atts[i], "type") == 0)
                copy_str(s->type, sizeof s->type, atts[i + 1]);
            else if (strcmp(atts[i], "id") == 0)
                copy_str(s->id, sizeof s->id, atts[i + 1]);
            else if (strcmp(atts[i], "from") == 0)
                copy_str(s->from, sizeof s->from, atts[i + 1]);
        }
        return;
    }
    if (s == NULL)
        return;
    if (depth == 2) {
        if (s->child[0] == '\0')
            copy_str(s->child, sizeof s->child, ln);
        if (strcmp(ln, "starttls") == 0)
            s->starttls = true;
        else if (strcmp(ln, "bind") == 0)
            s->bind = true;
    }
    if (strcmp(ln, "mechanism") == 0) {
        c->in_mech = true;
        c->mech_len = 0;
    } else if (strcmp(ln, "cloudName") == 0) {
        s->cloudnames++;
    } else if (strcmp(ln, "referral") == 0) {
        s->referrals++;
    } else if (strcmp(ln, "partial") == 0) {
        s->partial = true;
    }
}

static void on_end(void *ud, const XML_Char *name)
{
    struct bench_conn *c = ud;
    unsigned depth = --c->depth;
    struct bench_stanza *s = c->stz;

    if (c->closing)
        return;
    if (depth == 0) { /* the server's </stream:stream> */
        c->stream_closed = true;
        if (c->state == ST_ENDING)
            bench_conn_close(c);
        else
            conn_fail(c, "the server closed the stream");
        return;
    }
    if (c->in_mech && s != NULL) {
        c->mech_text[c->mech_len] = '\0';
        if (strcmp(c->mech_text, "PLAIN") == 0)
            s->mech_plain = true;
        else if (strcmp(c->mech_text, "SCRAM-SHA-1") == 0)
            s->mech_sha1 = true;
        else if (strcmp(c->mech_text, "SCRAM-SHA-256") == 0)
            s->mech_sha256 = true;
        c->in_mech = false;
    }
    if (depth == 1 && s != NULL) {
        s->text[s->text_len] = '\0';
        dispatch(c, s);
        if (c->stz != NULL &&
            (c->state != ST_READY || c->w->run->o->scenario == SC_IDLE)) {
            free(c->stz); /* idle connections keep nothing */
            c->stz = NULL;
        }
    }
    (void)name;
}

static void on_chars(void *ud, const XML_Char *text, int len)
{
    struct bench_conn *c = ud;
    struct bench_stanza *s = c->stz;
    size_t n = (size_t)len;

    if (c->closing || c->depth < 2 || s == NULL)
        return;
    if (c->in_mech) {
        if (c->mech_len + n >= sizeof c->mech_text)
            n = sizeof c->mech_text - 1 - c->mech_len;
        memcpy(c->mech_text + c->mech_len, text, n);
        c->mech_len += n;
        return;
    }
    if (s->text_len + n >= sizeof s->text)
        n = sizeof s->text - 1 - s->text_len;
    memcpy(s->text + s->text_len, text, n);
    s->text_len += n;
}

static void parser_init(struct bench_conn *c)
{
    if (c->xp == NULL) {
        c->xp = XML_ParserCreate("UTF-8");
        if (c->xp == NULL)
            abort();
    } else {
        XML_ParserReset(c->xp, "UTF-8");
    }
    XML_SetUserData(c->xp, c);
    XML_SetElementHandler(c->xp, on_start, on_end);
    XML_SetCharacterDataHandler(c->xp, on_chars);
    c->depth = 0;
    c->in_mech = false;
}

/* Stream restart (after <proceed/> or <success/>): the parser stops now
 * and starts afresh once XML_Parse has returned. */
static void restart(struct bench_conn *c)
{
    c->restart = true;
    XML_StopParser(c->xp, XML_FALSE);
}

static void feed(struct bench_conn *c, const char *data, size_t len)
{
    if (XML_Parse(c->xp, data, (int)len, 0) == XML_STATUS_ERROR &&
        !c->restart && !c->closing)
        conn_fail(c, "XML: %s", XML_ErrorString(XML_GetErrorCode(c->xp)));
    if (c->restart && !c->closing) {
        c->restart = false;
        parser_init(c);
    }
}

/* ---- TLS ---- */

static void tls_fail(struct bench_conn *c, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[120];
    long v = SSL_get_verify_result(c->ssl);

    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    if (v != X509_V_OK)
        conn_fail(c, "%s: certificate: %s", what,
                  X509_verify_cert_error_string(v));
    else
        conn_fail(c, "%s: %s", what, e ? buf : "failed");
}

/* "TLSv1.3 TLS_AES_256_GCM_SHA384 X25519 EC-256": the version, cipher,
 * key exchange group and the server certificate's key. */
static void tls_info(struct bench_conn *c)
{
    int group = (int)SSL_get_negotiated_group(c->ssl);
    const char *gn = group != NID_undef ? OBJ_nid2sn(group) : NULL;
    X509 *x = SSL_get0_peer_certificate(c->ssl);
    EVP_PKEY *k = x != NULL ? X509_get0_pubkey(x) : NULL;
    const char *kn = k != NULL ? EVP_PKEY_get0_type_name(k) : NULL;

    snprintf(c->w->tls_info, sizeof c->w->tls_info, "%s %s %s %s-%d",
             SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl),
             gn ? gn : "?", kn ? kn : "?", k ? EVP_PKEY_get_bits(k) : 0);
}

static void handshake(struct bench_conn *c)
{
    int r = SSL_do_handshake(c->ssl);

    mark_dirty(c);
    if (r == 1) {
        if (c->w->tls_info[0] == '\0')
            tls_info(c);
        c->tls_up = true;
        parser_init(c);
        send_header(c);
        move(c, ST_FEATURES_AUTH);
    } else if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ) {
        tls_fail(c, "TLS handshake");
    }
}

static void start_tls(struct bench_conn *c)
{
    const struct bench_opts *o = c->w->run->o;

    c->ssl =
        SSL_new(bench_on_b(o, c->idx) ? c->w->run->to_tls : c->w->run->tls);
    if (c->ssl == NULL)
        abort();
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_tlsext_host_name(c->ssl, c->domain);
    SSL_set1_host(c->ssl, c->domain);
    SSL_set_connect_state(c->ssl);
    move(c, ST_TLS_HANDSHAKE);
    handshake(c);
}

static void tls_read(struct bench_conn *c)
{
    char *buf = c->w->pbuf;
    int n, e;

    while (!c->closing) {
        n = SSL_read(c->ssl, buf, sizeof c->w->pbuf);
        if (n > 0) {
            feed(c, buf, (size_t)n);
            continue;
        }
        e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ)
            return;
        if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify */
            if (c->state == ST_ENDING || c->stream_closed)
                bench_conn_close(c);
            else
                conn_fail(c, "TLS closed by the server");
            return;
        }
        tls_fail(c, "TLS read");
        return;
    }
}

/* ---- the states ---- */

static void choose_mech(struct bench_conn *c, const struct bench_stanza *s)
{
    enum bench_mech m = c->w->run->o->mech;
    bool offered = m == MECH_PLAIN        ? s->mech_plain
                   : m == MECH_SCRAM_SHA1 ? s->mech_sha1
                                          : s->mech_sha256;
    char *first;

    if (strcmp(s->name, "features") != 0)
        return;
    if (!offered) {
        conn_fail(c, "%s not offered", bench_mech_name(m));
        return;
    }
    first = bench_sasl_first(c, m);
    if (first == NULL) {
        conn_fail(c, "cannot make the SASL message");
        return;
    }
    bench_conn_sendf(c, "<auth xmlns='" NS_SASL "' mechanism='%s'>%s</auth>",
                     bench_mech_name(m), first);
    free(first);
    move(c, ST_SASL);
}

static void sasl_step(struct bench_conn *c, const struct bench_stanza *s)
{
    const struct bench_opts *o = c->w->run->o;
    char *r;

    if (strcmp(s->name, "challenge") == 0 && o->mech != MECH_PLAIN) {
        r = bench_sasl_response(c, o->mech, s->text, !o->no_cache);
        if (r == NULL) {
            c->w->st.auth_failures++;
            conn_fail(c, "bad SCRAM challenge");
            return;
        }
        bench_conn_sendf(c, "<response xmlns='" NS_SASL "'>%s</response>", r);
        free(r);
    } else if (strcmp(s->name, "success") == 0) {
        if (o->mech != MECH_PLAIN && !bench_sasl_verify(c, s->text)) {
            c->w->st.auth_failures++;
            conn_fail(c, "wrong SCRAM server signature");
            return;
        }
        free(c->sasl_state);
        c->sasl_state = NULL;
        restart(c);
        send_header(c);
        move(c, ST_FEATURES_BIND);
    } else {
        c->w->st.auth_failures++;
        conn_fail(c, "SASL <%s> %s as %s", s->name, s->child, c->acct->local);
    }
}

/* Memory BIOs keep the largest buffer they held (the handshake's): an
 * idle connection swaps them for empty ones. */
static void shrink_bios(struct bench_conn *c)
{
    if (BIO_ctrl_pending(c->rbio) != 0 || BIO_ctrl_pending(c->wbio) != 0)
        return;
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (c->rbio == NULL || c->wbio == NULL)
        abort();
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set0_rbio(c->ssl, c->rbio);
    SSL_set0_wbio(c->ssl, c->wbio);
}

static void bound(struct bench_conn *c, struct bench_stanza *s)
{
    struct bench_worker *w = c->w;
    char **slot = &w->run->jids[c->idx];
    size_t n = s->text_len;

    if (strcmp(s->type, "result") != 0) {
        conn_fail(c, "bind: %s %s", s->type, s->child);
        return;
    }
    while (n > 0 && (s->text[n - 1] == ' ' || s->text[n - 1] == '\n'))
        n--;
    free(*slot);
    *slot = strndup(s->text, n);
    move(c, ST_READY);
    if (w->run->o->scenario == SC_IDLE)
        shrink_bios(c);
    c->counted_up = true;
    w->in_login--;
    w->up++;
    atomic_fetch_add(&w->run->connected, 1);
    if (w->run->o->presence)
        SEND_LIT(c, "<presence/>");
    bench_on_ready(c);
}

static void dispatch(struct bench_conn *c, struct bench_stanza *s)
{
    const struct bench_opts *o = c->w->run->o;

    if (strcmp(s->name, "error") == 0) {
        conn_fail(c, "stream error <%s/>", s->child);
        return;
    }
    switch (c->state) {
    case ST_FEATURES_TLS:
        if (strcmp(s->name, "features") != 0)
            break;
        if (!s->starttls) {
            conn_fail(c, "no STARTTLS offered");
            break;
        }
        SEND_LIT(c, "<starttls xmlns='" NS_TLS "'/>");
        move(c, ST_PROCEED);
        break;
    case ST_PROCEED:
        if (strcmp(s->name, "proceed") != 0) {
            conn_fail(c, "STARTTLS answered <%s/>", s->name);
            break;
        }
        restart(c);
        start_tls(c);
        break;
    case ST_FEATURES_AUTH:
        choose_mech(c, s);
        break;
    case ST_SASL:
        sasl_step(c, s);
        break;
    case ST_FEATURES_BIND:
        if (strcmp(s->name, "features") != 0)
            break;
        if (!s->bind) {
            conn_fail(c, "no resource binding offered");
            break;
        }
        if (o->resource != NULL)
            bench_conn_sendf(c,
                             "<iq type='set' id='bind'><bind xmlns='" NS_BIND
                             "'><resource>%s%u</resource></bind></iq>",
                             o->resource, c->idx);
        else
            SEND_LIT(c, "<iq type='set' id='bind'><bind xmlns='" NS_BIND
                        "'/></iq>");
        move(c, ST_BIND);
        break;
    case ST_BIND:
        if (strcmp(s->name, "iq") == 0 && strcmp(s->id, "bind") == 0)
            bound(c, s);
        break;
    case ST_READY:
        bench_on_stanza(c, s);
        break;
    default:
        break;
    }
}

/* ---- the socket ---- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct bench_conn *c = h->data;

    (void)hint;
    *buf = uv_buf_init(c->w->rbuf, sizeof c->w->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct bench_conn *c = s->data;

    if (c->closing || nread == 0)
        return;
    if (nread < 0) {
        if (c->state == ST_ENDING || c->stream_closed)
            bench_conn_close(c);
        else
            conn_fail(c, "read: %s", uv_strerror((int)nread));
        return;
    }
    if (c->ssl == NULL) {
        feed(c, buf->base, (size_t)nread);
        return;
    }
    BIO_write(c->rbio, buf->base, (int)nread);
    if (!c->tls_up) {
        handshake(c);
        if (c->closing || !c->tls_up)
            return;
    }
    tls_read(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct bench_conn *c = req->data;
    int r;

    if (c->closing)
        return;
    if (status < 0) {
        conn_fail(c, "connect: %s", uv_strerror(status));
        return;
    }
    r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r < 0) {
        conn_fail(c, "read: %s", uv_strerror(r));
        return;
    }
    parser_init(c);
    if (c->w->run->o->direct_tls) {
        start_tls(c);
    } else {
        send_header(c);
        move(c, ST_FEATURES_TLS);
    }
}

static void on_close(uv_handle_t *h)
{
    struct bench_conn *c = h->data;
    struct bench_worker *w = c->w;

    if (c->counted_up) {
        w->up--;
        atomic_fetch_sub(&w->run->connected, 1);
    } else {
        w->in_login--;
    }
    w->open--;
    if (w->conns[c->idx - w->first] == c)
        w->conns[c->idx - w->first] = NULL;
    bench_on_closed(c, c->failed);
    SSL_free(c->ssl); /* frees the BIOs too */
    if (c->xp != NULL)
        XML_ParserFree(c->xp);
    free(c->stz);
    free(c->out);
    free(c->sasl_state);
    free(c->sent_at);
    free(c);
}

void bench_conn_close(struct bench_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

void bench_conn_end(struct bench_conn *c)
{
    if (c->closing)
        return;
    if (c->state != ST_READY) {
        bench_conn_close(c);
        return;
    }
    SEND_LIT(c, "</stream:stream>");
    move(c, ST_ENDING);
}

/* The socket, bound to a source address of 127/8 when asked: one address
 * has only ~28,000 ephemeral ports towards one server port. */
static int open_socket(struct bench_conn *c, const struct sockaddr_in *dst)
{
    const struct bench_opts *o = c->w->run->o;
    struct sockaddr_in src;
    int fd, one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (o->sources > 1 && (ntohl(dst->sin_addr.s_addr) >> 24) == 127) {
        memset(&src, 0, sizeof src);
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(0x7f000001u + c->idx % o->sources);
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
            int e = -errno;
            close(fd);
            return e;
        }
    }
    return fd;
}

void bench_conn_start(struct bench_worker *w, unsigned idx)
{
    const struct bench_opts *o = w->run->o;
    struct bench_conn *c = calloc(1, sizeof *c);
    struct sockaddr_in dst;
    bool b = bench_on_b(o, idx);
    int fd, r;

    if (c == NULL)
        abort();
    c->w = w;
    c->idx = idx;
    if (o->cross) /* pair k: accounts k on both servers */
        c->acct = b ? &w->run->to_accounts[(idx / 2) % w->run->n_to_accounts]
                    : &w->run->accounts[(idx / 2) % w->run->n_accounts];
    else
        c->acct = &w->run->accounts[idx % w->run->n_accounts];
    c->domain = b ? o->to_domain : o->domain;
    c->t_start = bench_now_ns();
    c->tcp.data = c;
    c->creq.data = c;
    c->state = ST_CONNECTING;
    w->conns[idx - w->first] = c;
    w->in_login++;
    w->open++;
    uv_ip4_addr(b ? o->to_host : o->host, b ? o->to_port : o->port, &dst);
    r = uv_tcp_init(&w->loop, &c->tcp);
    if (r < 0)
        abort();
    fd = open_socket(c, &dst);
    if (fd < 0) {
        conn_fail(c, "socket: %s", uv_strerror(fd));
        return;
    }
    r = uv_tcp_open(&c->tcp, fd);
    if (r < 0) {
        close(fd);
        conn_fail(c, "socket: %s", uv_strerror(r));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    r = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&dst, on_connect);
    if (r < 0)
        conn_fail(c, "connect: %s", uv_strerror(r));
}
