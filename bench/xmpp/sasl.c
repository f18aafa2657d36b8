/*
 * sasl.c - the client side of SASL PLAIN (RFC 4616) and SCRAM-SHA-1 /
 * SCRAM-SHA-256 without channel binding (RFC 5802, RFC 7677; gs2 header
 * "n,,").
 *
 * Happy path (SCRAM): bench_sasl_first() makes client-first with a fresh
 * nonce and keeps client-first-message-bare in c->sasl_state;
 * bench_sasl_response() checks the server nonce extends ours, takes the
 * SaltedPassword from the account's cache (or computes it with the
 * server's salt and iteration count, and caches it, as real clients do),
 * answers with the proof and keeps the expected ServerSignature;
 * bench_sasl_verify() compares it with the server's v=.
 * Failure modes: a malformed challenge or a wrong nonce (NULL: the caller
 * counts an authentication failure), a wrong server signature (false).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "bench.h"

struct bench_salted {
    struct bench_salted *next;
    enum bench_mech mech;
    unsigned iter;
    char *salt; /* base64, as the server sent it */
    unsigned char sp[64];
};

const char *bench_mech_name(enum bench_mech m)
{
    switch (m) {
    case MECH_PLAIN:
        return "PLAIN";
    case MECH_SCRAM_SHA1:
        return "SCRAM-SHA-1";
    case MECH_SCRAM_SHA256:
        return "SCRAM-SHA-256";
    }
    return "?";
}

static const EVP_MD *md_of(enum bench_mech m)
{
    return m == MECH_SCRAM_SHA256 ? EVP_sha256() : EVP_sha1();
}

static char *b64(const unsigned char *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);

    if (out == NULL)
        abort();
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

/* Decodes base64 TEXT into a new NUL-terminated buffer; NULL if bad. */
static unsigned char *unb64(const char *text, size_t *len)
{
    size_t n = strlen(text);
    unsigned char *out;
    int r;

    if (n % 4 != 0)
        return NULL;
    out = malloc(n / 4 * 3 + 1);
    if (out == NULL)
        abort();
    r = EVP_DecodeBlock(out, (const unsigned char *)text, (int)n);
    if (r < 0) {
        free(out);
        return NULL;
    }
    if (n >= 1 && text[n - 1] == '=')
        r--;
    if (n >= 2 && text[n - 2] == '=')
        r--;
    out[r] = '\0';
    *len = (size_t)r;
    return out;
}

void bench_account_clear_cache(struct bench_account *a)
{
    struct bench_salted *s = a->salted, *next;

    for (; s != NULL; s = next) {
        next = s->next;
        free(s->salt);
        free(s);
    }
    a->salted = NULL;
}

/* The SaltedPassword, from the account's cache or computed (and kept). */
static void salted_password(struct bench_account *a,
                            enum bench_mech m,
                            const char *salt_b64,
                            unsigned iter,
                            bool cache,
                            unsigned char *sp)
{
    const EVP_MD *md = md_of(m);
    int mdlen = EVP_MD_get_size(md);
    struct bench_salted *s;
    unsigned char *salt;
    size_t salt_len = 0;

    if (cache) {
        uv_mutex_lock(&a->lock);
        for (s = a->salted; s != NULL; s = s->next)
            if (s->mech == m && s->iter == iter &&
                strcmp(s->salt, salt_b64) == 0) {
                memcpy(sp, s->sp, (size_t)mdlen);
                uv_mutex_unlock(&a->lock);
                return;
            }
        uv_mutex_unlock(&a->lock);
    }
    salt = unb64(salt_b64, &salt_len);
    if (salt == NULL)
        salt_len = 0;
    PKCS5_PBKDF2_HMAC(a->password, (int)strlen(a->password),
                      salt ? salt : (const unsigned char *)"", (int)salt_len,
                      (int)iter, md, mdlen, sp);
    free(salt);
    if (!cache)
        return;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        abort();
    s->mech = m;
    s->iter = iter;
    s->salt = strdup(salt_b64);
    memcpy(s->sp, sp, (size_t)mdlen);
    uv_mutex_lock(&a->lock);
    s->next = a->salted;
    a->salted = s;
    uv_mutex_unlock(&a->lock);
}

/* The local part as a SCRAM saslname: ',' and '=' escaped. */
static void saslname(const char *in, char *out, size_t cap)
{
    size_t n = 0;

    for (; *in && n + 4 < cap; in++) {
        if (*in == ',')
            n += (size_t)snprintf(out + n, cap - n, "=2C");
        else if (*in == '=')
            n += (size_t)snprintf(out + n, cap - n, "=3D");
        else
            out[n++] = *in;
    }
    out[n] = '\0';
}

char *bench_sasl_first(struct bench_conn *c, enum bench_mech m)
{
    const struct bench_account *a = c->acct;
    unsigned char rnd[18];
    char buf[512], name[256], *nonce, *r;
    size_t lu, lp;

    if (m == MECH_PLAIN) {
        lu = strlen(a->local);
        lp = strlen(a->password);
        if (lu + lp + 2 > sizeof buf)
            return NULL;
        buf[0] = '\0';
        memcpy(buf + 1, a->local, lu);
        buf[1 + lu] = '\0';
        memcpy(buf + 2 + lu, a->password, lp);
        return b64((unsigned char *)buf, lu + lp + 2);
    }
    RAND_bytes(rnd, sizeof rnd);
    nonce = b64(rnd, sizeof rnd);
    saslname(a->local, name, sizeof name);
    snprintf(buf, sizeof buf, "n,,n=%s,r=%s", name, nonce);
    free(nonce);
    free(c->sasl_state);
    c->sasl_state = strdup(buf + 3); /* client-first-message-bare */
    r = b64((unsigned char *)buf, strlen(buf));
    return r;
}

/* The value of attribute KEY ("r=", "s=", "i=") in a SCRAM message. */
static const char *scram_attr(const char *msg, char key, size_t *len)
{
    const char *p = msg;

    while (p != NULL && *p) {
        if (p[0] == key && p[1] == '=') {
            const char *end = strchr(p, ',');
            *len = end ? (size_t)(end - p - 2) : strlen(p + 2);
            return p + 2;
        }
        p = strchr(p, ',');
        if (p != NULL)
            p++;
    }
    return NULL;
}

static void hmac(const EVP_MD *md,
                 const unsigned char *key,
                 size_t klen,
                 const void *data,
                 size_t len,
                 unsigned char *out)
{
    unsigned int ol = 0;

    HMAC(md, key, (int)klen, data, len, out, &ol);
}

char *bench_sasl_response(struct bench_conn *c,
                          enum bench_mech m,
                          const char *challenge_b64,
                          bool cache)
{
    const EVP_MD *md = md_of(m);
    size_t mdlen = (size_t)EVP_MD_get_size(md), len = 0, rl = 0, sl = 0, il = 0;
    unsigned char *sf = unb64(challenge_b64, &len);
    unsigned char sp[64], ck[64], sk[64], stored[64], sig[64], proof[64];
    const char *r, *s, *i, *cnonce;
    char salt[256], iters[16], *auth = NULL, *p64, *out = NULL, *final = NULL;
    size_t cnl, auth_len, final_len;

    if (sf == NULL || c->sasl_state == NULL)
        goto done;
    r = scram_attr((char *)sf, 'r', &rl);
    s = scram_attr((char *)sf, 's', &sl);
    i = scram_attr((char *)sf, 'i', &il);
    cnonce = strstr(c->sasl_state, ",r=");
    if (r == NULL || s == NULL || i == NULL || cnonce == NULL ||
        sl >= sizeof salt || il >= sizeof iters || il == 0)
        goto done;
    cnonce += 3;
    cnl = strlen(cnonce);
    if (rl <= cnl || strncmp(r, cnonce, cnl) != 0)
        goto done;
    memcpy(salt, s, sl);
    salt[sl] = '\0';
    memcpy(iters, i, il);
    iters[il] = '\0';
    if (atoi(iters) <= 0)
        goto done;
    salted_password(c->acct, m, salt, (unsigned)atoi(iters), cache, sp);
    final_len = 9 + rl + 1;
    final = malloc(final_len);
    if (final == NULL)
        abort();
    snprintf(final, final_len, "c=biws,r=%.*s", (int)rl, r);
    auth_len = strlen(c->sasl_state) + len + strlen(final) + 3;
    auth = malloc(auth_len);
    if (auth == NULL)
        abort();
    snprintf(auth, auth_len, "%s,%s,%s", c->sasl_state, (char *)sf, final);
    hmac(md, sp, mdlen, "Client Key", 10, ck);
    EVP_Digest(ck, mdlen, stored, NULL, md, NULL);
    hmac(md, stored, mdlen, auth, strlen(auth), sig);
    for (size_t k = 0; k < mdlen; k++)
        proof[k] = ck[k] ^ sig[k];
    hmac(md, sp, mdlen, "Server Key", 10, sk);
    hmac(md, sk, mdlen, auth, strlen(auth), c->server_key_sig);
    c->sasl_sig_len = (unsigned)mdlen;
    p64 = b64(proof, mdlen);
    {
        size_t n = strlen(final) + strlen(p64) + 4;
        char *msg = malloc(n);
        if (msg == NULL)
            abort();
        snprintf(msg, n, "%s,p=%s", final, p64);
        out = b64((unsigned char *)msg, strlen(msg));
        free(msg);
    }
    free(p64);
done:
    free(sf);
    free(auth);
    free(final);
    return out;
}

bool bench_sasl_verify(struct bench_conn *c, const char *success_b64)
{
    size_t len = 0, vl = 0;
    unsigned char *msg = unb64(success_b64, &len);
    const char *v;
    char *want;
    bool ok = false;

    if (msg == NULL || c->sasl_sig_len == 0)
        goto done;
    v = scram_attr((char *)msg, 'v', &vl);
    if (v == NULL)
        goto done;
    want = b64(c->server_key_sig, c->sasl_sig_len);
    ok = strlen(want) == vl && memcmp(want, v, vl) == 0;
    free(want);
done:
    free(msg);
    return ok;
}
