/*
 * tls.c - TLS with OpenSSL 3 over memory BIOs. The connection reads
 * ciphertext from its socket and feeds it here; plaintext comes out of
 * ic_tls_read; what ic_tls_write encrypts waits in the write BIO until the
 * connection takes it and queues it on the socket.
 *
 * The BIO is our own, one per session, in both directions: ciphertext fed
 * in waits in IN until OpenSSL reads it, ciphertext written waits in OUT
 * until ic_tls_take_output() hands it over (the buffer itself when the
 * caller's is empty: no copy). A busy session keeps both buffers from
 * record to record; ic_tls_trim() frees them, so a quiet session keeps no
 * BIO memory (BIO_s_mem keeps the largest size it ever had: the
 * handshake's, a few KiB per connection).
 *
 * Security settings: TLS 1.2 at least, no compression, no renegotiation,
 * buffers released while idle (SSL_MODE_RELEASE_BUFFERS) so an idle
 * connection holds little memory. Client certificates are requested only
 * when asked for (SASL EXTERNAL) and never required by the handshake: the
 * verification result is checked when EXTERNAL is used.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls.h"

struct ic_tls_ctx {
    SSL_CTX *ctx;
    char *alpn;
};

/* the largest BIO buffer a session keeps between records */
#define BUF_KEEP 16384

struct ic_tls {
    SSL *ssl;
    struct ic_buf in;  /* ciphertext fed, not yet read by OpenSSL */
    size_t in_off;     /* how much of IN OpenSSL has read */
    struct ic_buf out; /* ciphertext to send */
};

/* ---- the BIO: IN and OUT of the struct ic_tls in its data ---- */

static int bio_write(BIO *b, const char *data, size_t len, size_t *done)
{
    struct ic_tls *t = BIO_get_data(b);

    BIO_clear_retry_flags(b);
    ic_buf_append(&t->out, data, len);
    *done = len;
    return 1;
}

static int bio_read(BIO *b, char *data, size_t len, size_t *done)
{
    struct ic_tls *t = BIO_get_data(b);
    size_t left = t->in.len - t->in_off;

    BIO_clear_retry_flags(b);
    if (left == 0) {
        BIO_set_retry_read(b); /* empty means "want more" */
        return 0;
    }
    if (len > left)
        len = left;
    memcpy(data, t->in.data + t->in_off, len);
    t->in_off += len;
    if (t->in_off == t->in.len) { /* kept for the next read, unless big */
        if (t->in.cap > BUF_KEEP)
            ic_buf_free(&t->in);
        else
            ic_buf_reset(&t->in);
        t->in_off = 0;
    }
    *done = len;
    return 1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct ic_tls *t = BIO_get_data(b);

    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_PENDING:
        return (long)(t->in.len - t->in_off);
    case BIO_CTRL_WPENDING:
        return (long)t->out.len;
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *bio_method;

static void bio_method_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "icroot TLS buffers");

    if (m == NULL || BIO_meth_set_write_ex(m, bio_write) != 1 ||
        BIO_meth_set_read_ex(m, bio_read) != 1 ||
        BIO_meth_set_ctrl(m, bio_ctrl) != 1 ||
        BIO_meth_set_create(m, bio_create) != 1) {
        BIO_meth_free(m);
        return;
    }
    bio_method = m;
}

static void ssl_why(char *why, size_t len, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";

    if (e != 0)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    if (why != NULL && len > 0)
        snprintf(why, len, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

static int accept_any(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    return 1; /* the result is read with SSL_get_verify_result() */
}

static int on_alpn(SSL *ssl,
                   const unsigned char **out,
                   unsigned char *outlen,
                   const unsigned char *in,
                   unsigned int inlen,
                   void *arg)
{
    struct ic_tls_ctx *c = arg;
    unsigned char proto[64];
    size_t n = strlen(c->alpn);
    unsigned char *sel;

    (void)ssl;
    proto[0] = (unsigned char)n;
    memcpy(proto + 1, c->alpn, n);
    /* RFC 7301 3.2: offered protocols, none of them ours: refuse. */
    if (SSL_select_next_proto(&sel, outlen, proto, (unsigned)n + 1, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    /* SEL points into PROTO; give OpenSSL the client's copy instead. */
    for (unsigned i = 0; i < inlen; i += 1u + in[i])
        if (in[i] == n && memcmp(in + i + 1, c->alpn, n) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

int ic_tls_ctx_new_server(const struct ic_tls_ctx_opts *o,
                          struct ic_tls_ctx **out,
                          char *why,
                          size_t why_len)
{
    struct ic_tls_ctx *c = ic_calloc(1, sizeof *c);

    c->ctx = SSL_CTX_new(TLS_server_method());
    if (c->ctx == NULL) {
        ssl_why(why, why_len, "SSL_CTX_new");
        goto err;
    }
    SSL_CTX_set_min_proto_version(c->ctx, o->tls13_only ? TLS1_3_VERSION
                                                        : TLS1_2_VERSION);
    SSL_CTX_set_options(c->ctx, SSL_OP_NO_COMPRESSION |
                                    SSL_OP_NO_RENEGOTIATION |
                                    SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* No SSL_MODE_RELEASE_BUFFERS: a busy session keeps its record buffers
     * (two 17 KiB allocations per record otherwise); the connection gives
     * them back when it goes quiet (ic_tls_trim). */
    SSL_CTX_set_mode(c->ctx, SSL_MODE_NO_AUTO_CHAIN);
    /* No TLS 1.3 session tickets: XMPP clients reconnect rarely and the
     * two tickets OpenSSL sends by default cost every handshake. */
    SSL_CTX_set_num_tickets(c->ctx, 0);
    if (SSL_CTX_use_certificate_chain_file(c->ctx, o->cert) != 1) {
        ssl_why(why, why_len, o->cert);
        goto err;
    }
    if (SSL_CTX_use_PrivateKey_file(c->ctx, o->key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(c->ctx) != 1) {
        ssl_why(why, why_len, o->key);
        goto err;
    }
    if (o->ca != NULL &&
        SSL_CTX_load_verify_locations(c->ctx, o->ca, NULL) != 1) {
        ssl_why(why, why_len, o->ca);
        goto err;
    }
    if (o->system_ca && SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
        ssl_why(why, why_len, "system trust store");
        goto err;
    }
    if (o->request_client_cert)
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, accept_any);
    if (o->alpn != NULL) {
        c->alpn = ic_strdup(o->alpn);
        SSL_CTX_set_alpn_select_cb(c->ctx, on_alpn, c);
    }
    *out = c;
    return 0;
err:
    ic_tls_ctx_free(c);
    return IC_EINVAL;
}

int ic_tls_ctx_new_client(const struct ic_tls_ctx_opts *o,
                          struct ic_tls_ctx **out,
                          char *why,
                          size_t why_len)
{
    struct ic_tls_ctx *c = ic_calloc(1, sizeof *c);

    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL) {
        ssl_why(why, why_len, "SSL_CTX_new");
        goto err;
    }
    SSL_CTX_set_min_proto_version(c->ctx, o->tls13_only ? TLS1_3_VERSION
                                                        : TLS1_2_VERSION);
    SSL_CTX_set_options(c->ctx,
                        SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(c->ctx, SSL_MODE_RELEASE_BUFFERS);
    if (o->ca != NULL &&
        SSL_CTX_load_verify_locations(c->ctx, o->ca, NULL) != 1) {
        ssl_why(why, why_len, o->ca);
        goto err;
    }
    if ((o->ca == NULL || o->system_ca) &&
        SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
        ssl_why(why, why_len, "system trust store");
        goto err;
    }
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER,
                       o->verify_late ? accept_any : NULL);
    if (o->cert != NULL &&
        SSL_CTX_use_certificate_chain_file(c->ctx, o->cert) != 1) {
        ssl_why(why, why_len, o->cert);
        goto err;
    }
    if (o->key != NULL &&
        (SSL_CTX_use_PrivateKey_file(c->ctx, o->key, SSL_FILETYPE_PEM) != 1 ||
         SSL_CTX_check_private_key(c->ctx) != 1)) {
        ssl_why(why, why_len, o->key);
        goto err;
    }
    if (o->alpn != NULL) {
        unsigned char proto[64];
        size_t n = strlen(o->alpn);
        if (n == 0 || n >= sizeof proto) {
            snprintf(why, why_len, "bad ALPN protocol name");
            goto err;
        }
        proto[0] = (unsigned char)n;
        memcpy(proto + 1, o->alpn, n);
        if (SSL_CTX_set_alpn_protos(c->ctx, proto, (unsigned)n + 1) != 0) {
            ssl_why(why, why_len, "ALPN");
            goto err;
        }
    }
    *out = c;
    return 0;
err:
    ic_tls_ctx_free(c);
    return IC_EINVAL;
}

void ic_tls_ctx_free(struct ic_tls_ctx *c)
{
    if (c == NULL)
        return;
    SSL_CTX_free(c->ctx);
    ic_free(c->alpn);
    ic_free(c);
}

static int tls_new(struct ic_tls_ctx *ctx, struct ic_tls **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct ic_tls *t = ic_calloc(1, sizeof *t);
    BIO *bio;

    pthread_once(&once, bio_method_make);
    t->ssl = SSL_new(ctx->ctx);
    bio = bio_method != NULL ? BIO_new(bio_method) : NULL;
    if (t->ssl == NULL || bio == NULL) {
        BIO_free(bio);
        SSL_free(t->ssl);
        ic_free(t);
        ERR_clear_error();
        return IC_ENOMEM;
    }
    BIO_set_data(bio, t);
    SSL_set_bio(t->ssl, bio, bio); /* one reference for both directions */
    *out = t;
    return 0;
}

int ic_tls_new(struct ic_tls_ctx *ctx, struct ic_tls **out)
{
    int rc = tls_new(ctx, out);

    if (rc == 0)
        SSL_set_accept_state((*out)->ssl);
    return rc;
}

int ic_tls_new_client(struct ic_tls_ctx *ctx,
                      const char *host,
                      struct ic_tls **out)
{
    struct ic_tls *t;
    int rc = tls_new(ctx, &t);

    if (rc != 0)
        return rc;
    if (SSL_set_tlsext_host_name(t->ssl, host) != 1 ||
        SSL_set1_host(t->ssl, host) != 1) {
        ERR_clear_error();
        ic_tls_free(t);
        return IC_EINVAL;
    }
    SSL_set_connect_state(t->ssl);
    /* The ClientHello goes out with the first ic_tls_take_output(). */
    SSL_do_handshake(t->ssl);
    ERR_clear_error();
    *out = t;
    return 0;
}

const char *ic_tls_verify_error(const struct ic_tls *t)
{
    long v = SSL_get_verify_result(t->ssl);

    return v == X509_V_OK ? "" : X509_verify_cert_error_string(v);
}

void ic_tls_free(struct ic_tls *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl); /* frees the BIO */
    ic_buf_free(&t->in);
    ic_buf_free(&t->out);
    ic_free(t);
}

void ic_tls_feed(struct ic_tls *t, const char *buf, size_t len)
{
    if (len > 0)
        ic_buf_append(&t->in, buf, len);
}

int ic_tls_read(struct ic_tls *t, struct ic_buf *out, char *why, size_t why_len)
{
    char chunk[16384];

    for (;;) {
        size_t got = 0;
        int rc = SSL_read_ex(t->ssl, chunk, sizeof chunk, &got);
        if (rc == 1) {
            ic_buf_append(out, chunk, got);
            continue;
        }
        switch (SSL_get_error(t->ssl, rc)) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
            return 0;
        case SSL_ERROR_ZERO_RETURN:
            return IC_EEND;
        default:
            ssl_why(why, why_len, "TLS");
            return IC_EIO;
        }
    }
}

int ic_tls_write(struct ic_tls *t, const char *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        size_t w = 0;
        if (SSL_write_ex(t->ssl, buf + done, len - done, &w) != 1) {
            ERR_clear_error();
            return IC_EIO;
        }
        done += w;
    }
    return 0;
}

void ic_tls_take_output(struct ic_tls *t, struct ic_buf *out)
{
    struct ic_buf empty;

    if (t->out.len == 0)
        return;
    if (out->len > 0) {
        ic_buf_append(out, t->out.data, t->out.len);
        ic_buf_reset(&t->out);
        return;
    }
    /* Swap: OUT gets the ciphertext without a copy, and the session keeps
     * the caller's empty buffer (if any) for the next record. */
    empty = *out;
    *out = t->out;
    t->out = empty;
    if (t->out.cap > BUF_KEEP)
        ic_buf_free(&t->out);
}

bool ic_tls_trim(struct ic_tls *t)
{
    bool freed = false;

    if ((SSL_get_mode(t->ssl) & SSL_MODE_RELEASE_BUFFERS) == 0)
        freed = SSL_free_buffers(t->ssl) == 1; /* refused with data inside */
    if (t->in.len == t->in_off) {
        ic_buf_free(&t->in);
        t->in_off = 0;
    }
    if (t->out.len == 0)
        ic_buf_free(&t->out);
    return freed;
}

bool ic_tls_handshake_done(const struct ic_tls *t)
{
    return SSL_is_init_finished(t->ssl) == 1;
}

void ic_tls_shutdown(struct ic_tls *t)
{
    if (SSL_is_init_finished(t->ssl))
        SSL_shutdown(t->ssl);
    ERR_clear_error();
}

int ic_tls_exporter(struct ic_tls *t, unsigned char out[32])
{
    static const char label[] = "EXPORTER-Channel-Binding";

    /* RFC 9266: TLS 1.3, or TLS 1.2 with the extended master secret. */
    if (SSL_version(t->ssl) < TLS1_3_VERSION &&
        SSL_get_extms_support(t->ssl) != 1)
        return IC_ENOTFOUND;
    if (SSL_export_keying_material(t->ssl, out, 32, label, sizeof label - 1,
                                   NULL, 0, 0) != 1) {
        ERR_clear_error();
        return IC_ENOTFOUND;
    }
    return 0;
}

int ic_tls_server_end_point(struct ic_tls *t, unsigned char *out, size_t *len)
{
    /* The server's certificate: ours on a server, the peer's on a client. */
    X509 *cert = SSL_is_server(t->ssl) ? SSL_get_certificate(t->ssl)
                                       : SSL_get0_peer_certificate(t->ssl);
    const EVP_MD *md;
    unsigned int n = 0;
    int mdnid = NID_undef;

    if (cert == NULL ||
        !X509_get_signature_info(cert, &mdnid, NULL, NULL, NULL))
        return IC_ENOTFOUND;
    /* RFC 5929 4.1: MD5 and SHA-1 are replaced by SHA-256. */
    if (mdnid == NID_md5 || mdnid == NID_sha1 || mdnid == NID_undef)
        mdnid = NID_sha256;
    md = EVP_get_digestbynid(mdnid);
    if (md == NULL || X509_digest(cert, md, out, &n) != 1) {
        ERR_clear_error();
        return IC_ENOTFOUND;
    }
    *len = n;
    return 0;
}

const char *ic_tls_version(const struct ic_tls *t)
{
    return SSL_get_version(t->ssl);
}

char *ic_tls_peer_xmpp_addrs(struct ic_tls *t)
{
    X509 *cert = SSL_get0_peer_certificate(t->ssl);
    GENERAL_NAMES *names;
    struct ic_buf b = {0};

    if (cert == NULL || SSL_get_verify_result(t->ssl) != X509_V_OK)
        return NULL;
    names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        const ASN1_TYPE *v;
        if (gn->type != GEN_OTHERNAME ||
            OBJ_obj2nid(gn->d.otherName->type_id) != NID_XmppAddr)
            continue;
        v = gn->d.otherName->value;
        if (v->type != V_ASN1_UTF8STRING)
            continue;
        ic_buf_append(&b,
                      (const char *)ASN1_STRING_get0_data(v->value.utf8string),
                      (size_t)ASN1_STRING_length(v->value.utf8string));
        ic_buf_append(&b, "", 1);
    }
    GENERAL_NAMES_free(names);
    if (b.len == 0)
        return NULL;
    ic_buf_append(&b, "", 1);
    return b.data;
}

bool ic_tls_peer_names(struct ic_tls *t, const char *domain)
{
    X509 *cert = SSL_get0_peer_certificate(t->ssl);
    char *addrs;
    bool ok = false;

    if (cert == NULL || SSL_get_verify_result(t->ssl) != X509_V_OK)
        return false;
    if (X509_check_host(cert, domain, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                        NULL) == 1)
        return true;
    addrs = ic_tls_peer_xmpp_addrs(t);
    for (const char *a = addrs; a != NULL && *a != '\0' && !ok;
         a += strlen(a) + 1)
        ok = strcasecmp(a, domain) == 0;
    ic_free(addrs);
    return ok;
}

char *ic_tls_peer_fingerprint(struct ic_tls *t)
{
    X509 *cert = SSL_get0_peer_certificate(t->ssl);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    char *out;

    if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &n) != 1)
        return NULL;
    out = ic_malloc(7 + 2 * n + 1);
    memcpy(out, "sha256:", 7);
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    return out;
}

unsigned ic_tls_peer_node_id(struct ic_tls *t)
{
    X509 *cert = SSL_get0_peer_certificate(t->ssl);
    X509_NAME *subject;
    const ASN1_STRING *v;
    char buf[32];
    unsigned id = 0;
    int i, n;

    if (cert == NULL || SSL_get_verify_result(t->ssl) != X509_V_OK)
        return 0;
    subject = X509_get_subject_name(cert);
    i = X509_NAME_get_index_by_NID(subject, NID_organizationalUnitName, -1);
    if (i < 0)
        return 0;
    v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
    n = ASN1_STRING_length(v);
    if (n <= 5 || n >= (int)sizeof buf)
        return 0;
    memcpy(buf, ASN1_STRING_get0_data(v), (size_t)n);
    buf[n] = '\0';
    /* exactly "node " and 1-5 digits */
    if (strncmp(buf, "node ", 5) != 0 ||
        strspn(buf + 5, "0123456789") != (size_t)n - 5 || n - 5 > 5)
        return 0;
    id = (unsigned)strtoul(buf + 5, NULL, 10);
    return id <= 65535 ? id : 0;
}
