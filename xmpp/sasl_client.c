/*
 * sasl_client.c - the client side of SASL for outgoing streams (icrootctl,
 * cluster links, S2S): SCRAM-SHA-1 and SCRAM-SHA-256 with or without
 * channel binding (RFC 5802, RFC 7677, RFC 9266), PLAIN (RFC 4616) and
 * EXTERNAL (RFC 4422 appendix A).
 *
 * SCRAM, as the client sees it:
 *   client-first  gs2-header "n=" user ",r=" cnonce
 *   server-first  "r=" cnonce snonce ",s=" salt ",i=" iterations
 *   client-final  "c=" base64(gs2-header cb-data) ",r=" nonce ",p=" proof
 *   server-final  "v=" base64(ServerSignature)
 * The server's signature is checked before the exchange counts as a
 * success, so a server that only pretends to know the password is caught.
 * A server asking for fewer than 4096 iterations is refused (a downgrade
 * that would make the proof cheap to attack).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "sasl.h"

enum kind { K_PLAIN, K_EXTERNAL, K_SCRAM };
enum step { S_START, S_FINAL, S_VERIFY, S_DONE };

struct ic_sasl_client {
    enum kind kind;
    enum ic_scram_hash hash;
    enum step step;
    char *user, *password, *authzid;
    char *gs2;         /* GS2 header: "n,,", "y,," or "p=TYPE,," */
    unsigned char *cb; /* channel-binding data for -PLUS */
    size_t cb_len;
    char cnonce[33];
    char *client_first_bare;
    unsigned char server_sig[IC_SCRAM_MAX_HASH];
};

static char *dup_or_null(const char *s)
{
    return s != NULL ? ic_strdup(s) : NULL;
}

static void wipe_str(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        ic_free(s);
    }
}

/* The SCRAM username: '=' and ',' escaped as =3D and =2C (RFC 5802 5.1). */
static void append_saslname(struct ic_buf *b, const char *user)
{
    for (const char *p = user; *p; p++) {
        if (*p == '=')
            ic_buf_puts(b, "=3D");
        else if (*p == ',')
            ic_buf_puts(b, "=2C");
        else
            ic_buf_append(b, p, 1);
    }
}

static int scram_kind(const char *mech, enum ic_scram_hash *h, bool *plus)
{
    static const struct {
        const char *name;
        enum ic_scram_hash h;
        bool plus;
    } m[] = {
        {"SCRAM-SHA-1", IC_SCRAM_SHA1, false},
        {"SCRAM-SHA-1-PLUS", IC_SCRAM_SHA1, true},
        {"SCRAM-SHA-256", IC_SCRAM_SHA256, false},
        {"SCRAM-SHA-256-PLUS", IC_SCRAM_SHA256, true},
    };

    for (size_t i = 0; i < IC_ARRAY_LEN(m); i++)
        if (strcmp(mech, m[i].name) == 0) {
            *h = m[i].h;
            *plus = m[i].plus;
            return 0;
        }
    return IC_EINVAL;
}

int ic_sasl_client_new(const struct ic_sasl_client_opts *o,
                       struct ic_sasl_client **out)
{
    struct ic_sasl_client *c;
    enum ic_scram_hash h = IC_SCRAM_SHA256;
    bool plus = false;
    enum kind k;

    if (o == NULL || o->mechanism == NULL)
        return IC_EINVAL;
    if (strcmp(o->mechanism, "PLAIN") == 0)
        k = K_PLAIN;
    else if (strcmp(o->mechanism, "EXTERNAL") == 0)
        k = K_EXTERNAL;
    else if (scram_kind(o->mechanism, &h, &plus) == 0)
        k = K_SCRAM;
    else
        return IC_EINVAL;
    if (k != K_EXTERNAL && (o->user == NULL || o->password == NULL))
        return IC_EINVAL;
    if (plus &&
        (o->cb_type == NULL || o->cb_data == NULL || o->cb_data_len == 0))
        return IC_EINVAL;
    c = ic_calloc(1, sizeof *c);
    c->kind = k;
    c->hash = h;
    c->user = dup_or_null(o->user);
    c->password = dup_or_null(o->password);
    c->authzid = dup_or_null(o->authzid);
    if (plus) {
        size_t n = strlen(o->cb_type) + 5;
        c->gs2 = ic_malloc(n);
        snprintf(c->gs2, n, "p=%s,,", o->cb_type);
        c->cb = ic_malloc(o->cb_data_len);
        memcpy(c->cb, o->cb_data, o->cb_data_len);
        c->cb_len = o->cb_data_len;
    } else {
        c->gs2 = ic_strdup(o->cb_supported ? "y,," : "n,,");
    }
    *out = c;
    return 0;
}

void ic_sasl_client_free(struct ic_sasl_client *c)
{
    if (c == NULL)
        return;
    ic_free(c->user);
    wipe_str(c->password);
    ic_free(c->authzid);
    ic_free(c->gs2);
    ic_free(c->cb);
    ic_free(c->client_first_bare);
    OPENSSL_cleanse(c, sizeof *c);
    ic_free(c);
}

static void take(struct ic_buf *b, unsigned char **out, size_t *out_len)
{
    if (b->data == NULL)
        ic_buf_append(b, "", 0);
    *out_len = b->len;
    *out = (unsigned char *)b->data;
}

int ic_sasl_client_start(struct ic_sasl_client *c,
                         unsigned char **out,
                         size_t *out_len)
{
    struct ic_buf b = {0};
    unsigned char rnd[16];

    if (c->step != S_START)
        return IC_EINVAL;
    switch (c->kind) {
    case K_PLAIN: /* authzid NUL authcid NUL password */
        ic_buf_append(&b, "", 1);
        ic_buf_puts(&b, c->user);
        ic_buf_append(&b, "", 1);
        ic_buf_puts(&b, c->password);
        c->step = S_DONE;
        break;
    case K_EXTERNAL:
        if (c->authzid != NULL)
            ic_buf_puts(&b, c->authzid);
        c->step = S_DONE;
        break;
    case K_SCRAM:
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            return IC_EIO;
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(c->cnonce + 2 * i, 3, "%02x", rnd[i]);
        ic_buf_puts(&b, "n=");
        append_saslname(&b, c->user);
        ic_buf_puts(&b, ",r=");
        ic_buf_puts(&b, c->cnonce);
        c->client_first_bare = ic_strdup(b.data);
        ic_buf_reset(&b);
        ic_buf_puts(&b, c->gs2);
        ic_buf_puts(&b, c->client_first_bare);
        c->step = S_FINAL;
        break;
    }
    take(&b, out, out_len);
    return 0;
}

/* The value of attribute KEY ("r", "s", "i") in a comma-separated SCRAM
 * message, as a new string; NULL when missing. */
static char *scram_attr(const char *msg, char key)
{
    const char *p = msg;

    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n >= 2 && p[0] == key && p[1] == '=') {
            char *v = ic_malloc(n - 1);
            memcpy(v, p + 2, n - 2);
            v[n - 2] = '\0';
            return v;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    return NULL;
}

/* Checks the server-first message; the nonce, salt and iteration count
 * come out. */
static int parse_server_first(struct ic_sasl_client *c,
                              const char *msg,
                              char **nonce,
                              unsigned char **salt,
                              size_t *salt_len,
                              uint32_t *iterations)
{
    char *r = scram_attr(msg, 'r'), *s = scram_attr(msg, 's');
    char *i = scram_attr(msg, 'i'), *end = NULL;
    unsigned long it = i ? strtoul(i, &end, 10) : 0;
    int rc = IC_EVALUE;

    if (msg[0] == 'm' || r == NULL || s == NULL || i == NULL || end == i ||
        *end != '\0')
        goto out;
    /* The server's nonce extends ours (RFC 5802 5.1). */
    if (strncmp(r, c->cnonce, strlen(c->cnonce)) != 0 ||
        strlen(r) == strlen(c->cnonce))
        goto out;
    if (it < IC_SCRAM_MIN_ITERATIONS || it > 10000000UL)
        goto out;
    if (ic_base64_decode(s, strlen(s), salt, salt_len) != 0 || *salt_len == 0) {
        goto out;
    }
    *nonce = r;
    r = NULL;
    *iterations = (uint32_t)it;
    rc = 0;
out:
    ic_free(r);
    ic_free(s);
    ic_free(i);
    return rc;
}

/* "c=" base64(gs2-header + channel-binding data) */
static char *channel_binding_attr(const struct ic_sasl_client *c)
{
    size_t gl = strlen(c->gs2);
    unsigned char *raw = ic_malloc(gl + c->cb_len + 1);
    char *b64;

    memcpy(raw, c->gs2, gl);
    if (c->cb_len > 0)
        memcpy(raw + gl, c->cb, c->cb_len);
    b64 = ic_base64_encode(raw, gl + c->cb_len);
    ic_free(raw);
    return b64;
}

/* The client-final message for the server-first MSG. */
static int
scram_final(struct ic_sasl_client *c, const char *msg, struct ic_buf *out)
{
    unsigned char salted[IC_SCRAM_MAX_HASH], ckey[IC_SCRAM_MAX_HASH];
    unsigned char stored[IC_SCRAM_MAX_HASH], sig[IC_SCRAM_MAX_HASH];
    unsigned char skey[IC_SCRAM_MAX_HASH], *salt = NULL;
    size_t hl = ic_scram_hash_len(c->hash), salt_len = 0;
    struct ic_buf auth = {0};
    uint32_t iterations = 0;
    char *nonce = NULL, *cbind, *proof_b64;
    int rc;

    rc = parse_server_first(c, msg, &nonce, &salt, &salt_len, &iterations);
    if (rc != 0)
        return rc;
    rc = ic_scram__salted_password(c->hash, c->password, salt, salt_len,
                                   iterations, salted);
    ic_free(salt);
    if (rc != 0) {
        ic_free(nonce);
        return rc;
    }
    cbind = channel_binding_attr(c);
    ic_buf_puts(out, "c=");
    ic_buf_puts(out, cbind);
    ic_buf_puts(out, ",r=");
    ic_buf_puts(out, nonce);
    ic_free(cbind);
    ic_free(nonce);
    /* AuthMessage = client-first-bare "," server-first "," final-no-proof */
    ic_buf_puts(&auth, c->client_first_bare);
    ic_buf_puts(&auth, ",");
    ic_buf_puts(&auth, msg);
    ic_buf_puts(&auth, ",");
    ic_buf_append(&auth, out->data, out->len);

    ic_scram__hmac(c->hash, salted, hl, "Client Key", 10, ckey);
    ic_scram__hash(c->hash, ckey, hl, stored);
    ic_scram__hmac(c->hash, stored, hl, auth.data, auth.len, sig);
    for (size_t i = 0; i < hl; i++)
        ckey[i] ^= sig[i]; /* ClientProof */
    ic_scram__hmac(c->hash, salted, hl, "Server Key", 10, skey);
    ic_scram__hmac(c->hash, skey, hl, auth.data, auth.len, c->server_sig);
    proof_b64 = ic_base64_encode(ckey, hl);
    ic_buf_puts(out, ",p=");
    ic_buf_puts(out, proof_b64);
    ic_free(proof_b64);
    ic_buf_free(&auth);
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(ckey, sizeof ckey);
    OPENSSL_cleanse(skey, sizeof skey);
    return 0;
}

int ic_sasl_client_step(struct ic_sasl_client *c,
                        const unsigned char *in,
                        size_t in_len,
                        unsigned char **out,
                        size_t *out_len)
{
    struct ic_buf b = {0};
    char *msg;
    int rc;

    if (c->kind != K_SCRAM || c->step != S_FINAL)
        return IC_EINVAL;
    if (memchr(in, '\0', in_len) != NULL)
        return IC_EVALUE;
    msg = ic_malloc(in_len + 1);
    memcpy(msg, in, in_len);
    msg[in_len] = '\0';
    rc = scram_final(c, msg, &b);
    ic_free(msg);
    if (rc != 0) {
        ic_buf_free(&b);
        return rc;
    }
    c->step = S_VERIFY;
    take(&b, out, out_len);
    return 0;
}

int ic_sasl_client_finish(struct ic_sasl_client *c,
                          const unsigned char *in,
                          size_t in_len)
{
    size_t hl = ic_scram_hash_len(c->hash), vlen = 0;
    unsigned char *v = NULL;
    char *msg, *vb64;
    int rc = IC_EAUTH;

    if (c->kind != K_SCRAM)
        return c->step == S_DONE ? 0 : IC_EAUTH;
    if (c->step != S_VERIFY || in == NULL || memchr(in, '\0', in_len))
        return IC_EAUTH;
    msg = ic_malloc(in_len + 1);
    memcpy(msg, in, in_len);
    msg[in_len] = '\0';
    vb64 = scram_attr(msg, 'v');
    if (vb64 != NULL && ic_base64_decode(vb64, strlen(vb64), &v, &vlen) == 0 &&
        vlen == hl && CRYPTO_memcmp(v, c->server_sig, hl) == 0)
        rc = 0;
    ic_free(v);
    ic_free(vb64);
    ic_free(msg);
    c->step = S_DONE;
    return rc;
}
