/*
 * test_sasl.c - the server side of SASL: the exact messages of the RFC
 * 5802 and RFC 7677 examples; a SCRAM client written here on OpenSSL for
 * wrong passwords, unknown users (fake credentials, a full exchange),
 * channel binding (tls-exporter, tls-server-end-point, mismatches, the
 * "y" downgrade), malformed messages; PLAIN with authzids; EXTERNAL; the
 * mechanism list. (Base64 is tested in test_scram.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ic_xmpp.h"
#include "sasl.h"

/* ---------------------------------------------------------------------
 * A fake account store: "user" has the RFC examples' credentials
 * (password "pencil"), "ix" has SHA-256 ones for "IX", "broken" fails.
 */

struct store {
    char last_user[64];
    int lookups;
    char last_authzid[64];
    bool authzid_null;
};

static void derive(enum ic_scram_hash h,
                   const char *password,
                   const char *salt64,
                   struct ic_scram_creds *out)
{
    unsigned char *salt;
    size_t len;

    assert_int_equal(ic_base64_decode(salt64, strlen(salt64), &salt, &len), 0);
    assert_int_equal(ic_scram_creds_derive(h, password, salt, len, 4096, out),
                     0);
    ic_free(salt);
}

static int lookup(void *data,
                  const char *user,
                  enum ic_scram_hash h,
                  struct ic_scram_creds *out)
{
    struct store *st = data;

    snprintf(st->last_user, sizeof st->last_user, "%s", user);
    st->lookups++;
    if (!strcmp(user, "broken"))
        return IC_EIO;
    if (!strcmp(user, "ix") && h == IC_SCRAM_SHA256) {
        derive(h, "IX", "W22ZaJ0SNY7soEsUEjb6gQ==", out);
        return 0;
    }
    if (strcmp(user, "user") != 0)
        return IC_ENOTFOUND;
    if (h == IC_SCRAM_SHA1)
        derive(h, "pencil", "QSXCR+Q6sek8bf92", out);
    else
        derive(h, "pencil", "W22ZaJ0SNY7soEsUEjb6gQ==", out);
    return 0;
}

static int external(void *data, const char *authzid, char **user_out)
{
    struct store *st = data;

    st->authzid_null = authzid == NULL;
    snprintf(st->last_authzid, sizeof st->last_authzid, "%s",
             authzid ? authzid : "");
    if (authzid == NULL || !strcmp(authzid, "user@example.com")) {
        *user_out = ic_strdup("user");
        return 0;
    }
    if (!strcmp(authzid, "bad@example.com"))
        return IC_EVALUE;
    if (!strcmp(authzid, "busy"))
        return IC_EBUSY;
    return IC_ENOTFOUND;
}

static const unsigned char secret[] = "a server secret of the cluster";
static const unsigned char exporter[32] = {
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
    0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
    0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20};
static const unsigned char end_point[32] = {
    0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69, 0x5a,
    0x4b, 0x3c, 0x2d, 0x1e, 0x0f, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
    0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};

struct fx {
    struct store st;
    struct ic_sasl_ops ops;
    struct ic_sasl_cb cb; /* TLS with both channel-binding types */
    struct ic_sasl_cb no_tls;
};

static int setup(void **state)
{
    struct fx *f = ic_calloc(1, sizeof *f);

    f->ops.data = &f->st;
    f->ops.domain = "example.com";
    f->ops.secret = secret;
    f->ops.secret_len = sizeof secret - 1;
    f->ops.lookup = lookup;
    f->ops.external = external;
    f->cb.tls = true;
    f->cb.tls_exporter = exporter;
    f->cb.tls_exporter_len = sizeof exporter;
    f->cb.tls_server_end_point = end_point;
    f->cb.tls_server_end_point_len = sizeof end_point;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    ic_sasl__set_test_nonce(NULL);
    ic_free(*state);
    return 0;
}

static struct ic_sasl *start(struct fx *f, const char *mech, bool plus_adv)
{
    struct ic_sasl *s = NULL;

    assert_int_equal(ic_sasl_new(mech, &f->ops, &f->cb, plus_adv, &s), 0);
    assert_string_equal(ic_sasl_mechanism(s), mech);
    return s;
}

/* One step with LEN bytes of IN; checks the result. The output (a
 * NUL-terminated copy, or NULL) is returned for the caller to free. */
static char *
step_n(struct ic_sasl *s, const char *in, size_t len, enum ic_sasl_result want)
{
    unsigned char *out = (unsigned char *)"garbage";
    size_t out_len = 99;
    enum ic_sasl_result res;
    char *copy = NULL;

    assert_int_equal(
        ic_sasl_step(s, (const unsigned char *)in, len, &out, &out_len, &res),
        0);
    if (res != want)
        fail_msg("result %d, wanted %d (condition %s)", (int)res, (int)want,
                 res == IC_SASL_FAILURE
                     ? ic_sasl_condition_name(ic_sasl_condition(s))
                     : "-");
    if (out != NULL) {
        copy = ic_strndup((const char *)out, out_len);
        ic_free(out);
    } else {
        assert_int_equal(out_len, 0);
    }
    return copy;
}

static char *step(struct ic_sasl *s, const char *in, enum ic_sasl_result want)
{
    return step_n(s, in, in ? strlen(in) : 0, want);
}

#define S(str) str, strlen(str)

/* A step that must fail with COND (no output). */
static void step_fails(struct ic_sasl *s,
                       const char *in,
                       size_t len,
                       enum ic_sasl_condition cond)
{
    char *out = step_n(s, in, len, IC_SASL_FAILURE);

    assert_null(out);
    assert_string_equal(ic_sasl_condition_name(ic_sasl_condition(s)),
                        ic_sasl_condition_name(cond));
    assert_null(ic_sasl_user(s));
}

static void step_expect(struct ic_sasl *s,
                        const char *in,
                        enum ic_sasl_result want,
                        const char *out_want)
{
    char *out = step(s, in, want);

    if (out_want == NULL)
        assert_null(out);
    else
        assert_string_equal(out, out_want);
    ic_free(out);
}

/* ---------------------------------------------------------------------
 * A SCRAM client
 */

struct client {
    enum ic_scram_hash h;
    const char *gs2;             /* "n,," */
    const unsigned char *cbdata; /* appended to the gs2 header in c= */
    size_t cbdata_len;
    const char *user;     /* as sent in n= */
    const char *password; /* ASCII */
    const char *cnonce;
    const char *nonce;      /* sent in client-final instead of the right one */
    const char *c_gs2;      /* sent in c= instead of GS2 */
    const char *ext;        /* extensions of both messages ("x=1") */
    char server_first[256]; /* what the server sent */
};

static void client_keys(const struct client *c,
                        const unsigned char *salt,
                        size_t salt_len,
                        int iterations,
                        unsigned char *client_key,
                        unsigned char *server_key)
{
    const EVP_MD *md = c->h == IC_SCRAM_SHA1 ? EVP_sha1() : EVP_sha256();
    int hlen = EVP_MD_get_size(md);
    unsigned char salted[64];
    unsigned int n;

    assert_int_equal(PKCS5_PBKDF2_HMAC(c->password, (int)strlen(c->password),
                                       salt, (int)salt_len, iterations, md,
                                       hlen, salted),
                     1);
    assert_non_null(HMAC(md, salted, hlen, (const unsigned char *)"Client Key",
                         10, client_key, &n));
    assert_non_null(HMAC(md, salted, hlen, (const unsigned char *)"Server Key",
                         10, server_key, &n));
}

/* client-final for SERVER_FIRST; *SIG gets the expected ServerSignature
 * (base64). */
static char *client_final(struct client *c, const char *bare, char *sig64)
{
    const EVP_MD *md = c->h == IC_SCRAM_SHA1 ? EVP_sha1() : EVP_sha256();
    size_t hlen = (size_t)EVP_MD_get_size(md), salt_len, cb_len;
    unsigned char ck[64], sk[64], stored[64], csig[64], ssig[64];
    unsigned char *salt, cb[128];
    char nonce[128], salt64[64], auth[1024], *cb64, *proof64, *out;
    unsigned int n, iter;

    assert_int_equal(sscanf(c->server_first, "r=%127[^,],s=%63[^,],i=%u", nonce,
                            salt64, &iter),
                     3);
    assert_int_equal(ic_base64_decode(salt64, strlen(salt64), &salt, &salt_len),
                     0);
    if (c->nonce != NULL)
        snprintf(nonce, sizeof nonce, "%s", c->nonce);
    client_keys(c, salt, salt_len, (int)iter, ck, sk);
    ic_free(salt);
    cb_len = strlen(c->c_gs2 ? c->c_gs2 : c->gs2);
    memcpy(cb, c->c_gs2 ? c->c_gs2 : c->gs2, cb_len);
    if (c->cbdata_len > 0)
        memcpy(cb + cb_len, c->cbdata, c->cbdata_len);
    cb64 = ic_base64_encode(cb, cb_len + c->cbdata_len);
    snprintf(auth, sizeof auth, "%s,%s,c=%s,r=%s%s%s", bare, c->server_first,
             cb64, nonce, c->ext ? "," : "", c->ext ? c->ext : "");
    assert_non_null(EVP_Digest(ck, hlen, stored, &n, md, NULL));
    assert_non_null(HMAC(md, stored, (int)hlen, (unsigned char *)auth,
                         strlen(auth), csig, &n));
    for (size_t i = 0; i < hlen; i++)
        ck[i] ^= csig[i];
    proof64 = ic_base64_encode(ck, hlen);
    assert_non_null(
        HMAC(md, sk, (int)hlen, (unsigned char *)auth, strlen(auth), ssig, &n));
    out = ic_base64_encode(ssig, hlen);
    snprintf(sig64, 128, "v=%s", out);
    ic_free(out);
    out = ic_malloc(1024);
    snprintf(out, 1024, "c=%s,r=%s%s%s,p=%s", cb64, nonce, c->ext ? "," : "",
             c->ext ? c->ext : "", proof64);
    ic_free(cb64);
    ic_free(proof64);
    return out;
}

/* Runs the exchange; returns the last result (checking the server's
 * signature on success). */
static enum ic_sasl_result run_client(struct ic_sasl *s, struct client *c)
{
    char bare[256], first[300], sig[128], *final;
    unsigned char *o;
    size_t o_len;
    enum ic_sasl_result res;

    snprintf(bare, sizeof bare, "n=%s,r=%s%s%s", c->user,
             c->cnonce ? c->cnonce : "clientNONCE+/=!~", c->ext ? "," : "",
             c->ext ? c->ext : "");
    snprintf(first, sizeof first, "%s%s", c->gs2, bare);
    assert_int_equal(ic_sasl_step(s, (unsigned char *)first, strlen(first), &o,
                                  &o_len, &res),
                     0);
    if (res != IC_SASL_CHALLENGE)
        return res;
    assert_true(o_len < sizeof c->server_first);
    memcpy(c->server_first, o, o_len);
    c->server_first[o_len] = '\0';
    ic_free(o);
    final = client_final(c, bare, sig);
    assert_int_equal(ic_sasl_step(s, (unsigned char *) final, strlen(final), &o,
                                  &o_len, &res),
                     0);
    ic_free(final);
    if (res == IC_SASL_SUCCESS) {
        assert_int_equal(o_len, strlen(sig));
        assert_memory_equal(o, sig, o_len);
        assert_string_equal(ic_sasl_user(s), "user");
    } else {
        assert_null(o);
        assert_null(ic_sasl_user(s));
    }
    ic_free(o);
    return res;
}

static struct client
client(enum ic_scram_hash h, const char *gs2, const char *password)
{
    struct client c;

    memset(&c, 0, sizeof c);
    c.h = h;
    c.gs2 = gs2;
    c.user = "user";
    c.password = password;
    return c;
}

/* ---------------------------------------------------------------------
 * The RFC examples, byte for byte
 */

static void rfc5802_example(void **state)
{
    struct fx *f = *state;
    struct ic_sasl *s;

    ic_sasl__set_test_nonce("3rfcNHYJY1ZVvWVs7j");
    s = start(f, "SCRAM-SHA-1", false);
    step_expect(s, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", IC_SASL_CHALLENGE,
                "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
                "s=QSXCR+Q6sek8bf92,i=4096");
    assert_null(ic_sasl_user(s));
    step_expect(s,
                "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
                "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                IC_SASL_SUCCESS, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    assert_string_equal(ic_sasl_user(s), "user");
    assert_string_equal(f->st.last_user, "user");
    ic_sasl_free(s);
}

static void rfc7677_example(void **state)
{
    struct fx *f = *state;
    struct ic_sasl *s;

    ic_sasl__set_test_nonce("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
    s = start(f, "SCRAM-SHA-256", false);
    step_expect(s, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", IC_SASL_CHALLENGE,
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    step_expect(s,
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                IC_SASL_SUCCESS,
                "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    assert_string_equal(ic_sasl_user(s), "user");
    ic_sasl_free(s);
}

/* The RFC 7677 exchange with one bit of the proof flipped. */
static void rfc7677_bad_proof(void **state)
{
    struct fx *f = *state;
    struct ic_sasl *s;
    char *out;

    ic_sasl__set_test_nonce("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
    s = start(f, "SCRAM-SHA-256", false);
    out = step(s, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", IC_SASL_CHALLENGE);
    ic_free(out);
    step_fails(s,
               S("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                 "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU="),
               IC_SASL_NOT_AUTHORIZED);
    ic_sasl_free(s);
}

/* ---------------------------------------------------------------------
 * SCRAM with the client above
 */

#define SUCCEEDS (-1)

/* Runs C against a new exchange of MECH: it succeeds (COND SUCCEEDS) or
 * fails with COND. */
static void exchange(struct fx *f,
                     const char *mech,
                     bool plus_advertised,
                     struct client *c,
                     int cond)
{
    struct ic_sasl *s = start(f, mech, plus_advertised);
    enum ic_sasl_result res = run_client(s, c);

    if (cond == SUCCEEDS) {
        assert_int_equal(res, IC_SASL_SUCCESS);
    } else {
        assert_int_equal(res, IC_SASL_FAILURE);
        assert_string_equal(ic_sasl_condition_name(ic_sasl_condition(s)),
                            ic_sasl_condition_name(cond));
    }
    ic_sasl_free(s);
}

/* A first message that fails at once with COND. */
static void first_fails(struct fx *f,
                        const char *mech,
                        bool plus_advertised,
                        const char *in,
                        size_t len,
                        enum ic_sasl_condition cond)
{
    struct ic_sasl *s = start(f, mech, plus_advertised);

    step_fails(s, in, len, cond);
    ic_sasl_free(s);
}

static void scram_clients(void **state)
{
    struct fx *f = *state;
    struct client c = client(IC_SCRAM_SHA256, "n,,", "pencil");
    const char *snonce;

    exchange(f, "SCRAM-SHA-256", false, &c, SUCCEEDS);
    /* r=CNONCE + 32 base64 characters (24 random bytes) */
    snonce = c.server_first + 2 + strlen("clientNONCE+/=!~");
    assert_memory_equal(c.server_first, "r=clientNONCE+/=!~", 18);
    assert_int_equal(strchr(snonce, ',') - snonce, 32);
    c.h = IC_SCRAM_SHA1;
    exchange(f, "SCRAM-SHA-1", false, &c, SUCCEEDS);
    /* the wrong password */
    c.password = "pencil2";
    exchange(f, "SCRAM-SHA-1", false, &c, IC_SASL_NOT_AUTHORIZED);
    c.h = IC_SCRAM_SHA256;
    exchange(f, "SCRAM-SHA-256", false, &c, IC_SASL_NOT_AUTHORIZED);
}

/* The username is nodeprep'd before the lookup; "=2C" and "=3D" decode. */
static void scram_username(void **state)
{
    struct fx *f = *state;
    struct client c = client(IC_SCRAM_SHA256, "n,,", "pencil");

    c.user = "USER";
    exchange(f, "SCRAM-SHA-256", false, &c, SUCCEEDS);
    assert_string_equal(f->st.last_user, "user");
    c.user = "us=2Cer=3Dx";
    exchange(f, "SCRAM-SHA-256", false, &c, IC_SASL_NOT_AUTHORIZED);
    assert_string_equal(f->st.last_user, "us,er=x");
    /* a name that cannot be a localpart fails at once */
    f->st.lookups = 0;
    first_fails(f, "SCRAM-SHA-256", false, S("n,,n=us@er,r=abc"),
                IC_SASL_NOT_AUTHORIZED);
    assert_int_equal(f->st.lookups, 0);
    first_fails(f, "SCRAM-SHA-256", false, S("n,,n=broken,r=abc"),
                IC_SASL_TEMPORARY_AUTH_FAILURE);
}

static void server_first_of(struct fx *f, const char *user, char *sf)
{
    struct ic_sasl *s = start(f, "SCRAM-SHA-256", false);
    char in[128], *out;

    snprintf(in, sizeof in, "n,,n=%s,r=abc", user);
    out = step(s, in, IC_SASL_CHALLENGE);
    strcpy(sf, out);
    ic_free(out);
    ic_sasl_free(s);
}

/* An unknown user gets a challenge shaped like a real one, with the same
 * salt at every attempt, and fails only at the end. */
static void scram_unknown_user(void **state)
{
    struct fx *f = *state;
    struct client c = client(IC_SCRAM_SHA256, "n,,", "pencil");
    char real[256], a[256], b[256], other[256];

    c.user = "nobody";
    exchange(f, "SCRAM-SHA-256", false, &c, IC_SASL_NOT_AUTHORIZED);

    ic_sasl__set_test_nonce("fixedservernonce");
    server_first_of(f, "user", real);
    server_first_of(f, "nobody", a);
    server_first_of(f, "nobody", b);
    server_first_of(f, "somebody", other);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), strlen(real));
    assert_memory_equal(a, "r=abcfixedservernonce,s=", 24);
    assert_string_equal(a + strlen(a) - 7, ",i=4096");
    assert_string_not_equal(a, other);
    assert_string_not_equal(a, real);

    /* another secret, other fake salts; the fake iteration count
     * follows the configured one */
    f->ops.secret = (const unsigned char *)"another secret";
    f->ops.secret_len = 14;
    f->ops.iterations = 10000;
    server_first_of(f, "nobody", b);
    assert_string_not_equal(a, b);
    assert_string_equal(b + strlen(b) - 8, ",i=10000");
    /* no secret: a per-process random one, still stable */
    f->ops.secret = NULL;
    server_first_of(f, "nobody", a);
    server_first_of(f, "nobody", other);
    assert_string_equal(a, other);
}

static void scram_authzid(void **state)
{
    struct fx *f = *state;
    struct client c =
        client(IC_SCRAM_SHA256, "n,a=user@example.com,", "pencil");

    exchange(f, "SCRAM-SHA-256", false, &c, SUCCEEDS);
    c.gs2 = "n,a=other@example.com,";
    exchange(f, "SCRAM-SHA-256", false, &c, IC_SASL_INVALID_AUTHZID);
    c.gs2 = "n,a=user@example.com/res,";
    exchange(f, "SCRAM-SHA-256", false, &c, IC_SASL_INVALID_AUTHZID);
}

/* A final message signed correctly over a wrong nonce. */
static void wrong_nonce(void **state)
{
    struct fx *f = *state;
    struct client c = client(IC_SCRAM_SHA256, "n,,", "pencil");

    ic_sasl__set_test_nonce("SNONCE");
    c.cnonce = "abc";
    c.nonce = "abcSNONCX";
    exchange(f, "SCRAM-SHA-256", false, &c, IC_SASL_NOT_AUTHORIZED);
    c.nonce = "abcSNONCE";
    exchange(f, "SCRAM-SHA-256", false, &c, SUCCEEDS);
}

/* ---------------------------------------------------------------------
 * Channel binding
 */

static void plus_both_types(void **state)
{
    struct fx *f = *state;
    struct client c = client(IC_SCRAM_SHA256, "p=tls-exporter,,", "pencil");

    c.cbdata = exporter;
    c.cbdata_len = sizeof exporter;
    exchange(f, "SCRAM-SHA-256-PLUS", true, &c, SUCCEEDS);
    c.h = IC_SCRAM_SHA1;
    exchange(f, "SCRAM-SHA-1-PLUS", true, &c, SUCCEEDS);
    c.gs2 = "p=tls-server-end-point,,";
    c.cbdata = end_point;
    c.cbdata_len = sizeof end_point;
    exchange(f, "SCRAM-SHA-1-PLUS", true, &c, SUCCEEDS);
    c.h = IC_SCRAM_SHA256;
    exchange(f, "SCRAM-SHA-256-PLUS", false, &c, SUCCEEDS);
}

static void plus_mismatch(void **state)
{
    struct fx *f = *state;
    struct client c = client(IC_SCRAM_SHA256, "p=tls-exporter,,", "pencil");
    unsigned char other[32];

    /* the other type's data */
    c.cbdata = end_point;
    c.cbdata_len = sizeof end_point;
    exchange(f, "SCRAM-SHA-256-PLUS", true, &c, IC_SASL_NOT_AUTHORIZED);
    /* one bit off (a man in the middle sees another TLS session) */
    memcpy(other, exporter, sizeof other);
    other[31] ^= 1;
    c.cbdata = other;
    exchange(f, "SCRAM-SHA-256-PLUS", true, &c, IC_SASL_NOT_AUTHORIZED);
    /* no data at all */
    c.cbdata_len = 0;
    exchange(f, "SCRAM-SHA-256-PLUS", true, &c, IC_SASL_NOT_AUTHORIZED);
    /* c= with another gs2 header than client-first's */
    c = client(IC_SCRAM_SHA256, "n,,", "pencil");
    c.c_gs2 = "y,,";
    exchange(f, "SCRAM-SHA-256", false, &c, IC_SASL_NOT_AUTHORIZED);
    c.c_gs2 = "n,,";
    exchange(f, "SCRAM-SHA-256", false, &c, SUCCEEDS);
}

static void plus_flags(void **state)
{
    struct fx *f = *state;
    const char *p256 = "SCRAM-SHA-256-PLUS";

    /* "y" when we offered -PLUS: a downgrade */
    first_fails(f, "SCRAM-SHA-256", true, S("y,,n=user,r=abc"),
                IC_SASL_NOT_AUTHORIZED);
    /* "p=" for a mechanism without -PLUS */
    first_fails(f, "SCRAM-SHA-256", true, S("p=tls-exporter,,n=user,r=abc"),
                IC_SASL_MALFORMED_REQUEST);
    /* -PLUS without "p=" */
    first_fails(f, p256, true, S("n,,n=user,r=abc"), IC_SASL_MALFORMED_REQUEST);
    first_fails(f, p256, true, S("y,,n=user,r=abc"), IC_SASL_MALFORMED_REQUEST);
    /* a type we do not know, and a name that is no type name */
    first_fails(f, p256, true, S("p=tls-unique,,n=user,r=abc"),
                IC_SASL_NOT_AUTHORIZED);
    first_fails(f, p256, true, S("p=tls_exporter,,n=user,r=abc"),
                IC_SASL_MALFORMED_REQUEST);
}

/* "y" is fine when we did not offer -PLUS; c= is then base64("y,,"). */
static void plus_y_not_advertised(void **state)
{
    struct fx *f = *state;
    struct client c = client(IC_SCRAM_SHA256, "y,,", "pencil");

    exchange(f, "SCRAM-SHA-256", false, &c, SUCCEEDS);
}

/* A type the connection could not compute is not available. */
static void plus_missing_type(void **state)
{
    struct fx *f = *state;
    struct client c = client(IC_SCRAM_SHA256, "p=tls-exporter,,", "pencil");
    struct ic_sasl *s;

    f->cb.tls_exporter = NULL;
    f->cb.tls_exporter_len = 0;
    c.cbdata = exporter;
    c.cbdata_len = sizeof exporter;
    exchange(f, "SCRAM-SHA-256-PLUS", true, &c, IC_SASL_NOT_AUTHORIZED);
    f->cb.tls_server_end_point = NULL;
    assert_int_equal(
        ic_sasl_new("SCRAM-SHA-256-PLUS", &f->ops, &f->cb, true, &s),
        IC_EINVAL);
    assert_int_equal(ic_sasl_new("SCRAM-SHA-1-PLUS", &f->ops, NULL, true, &s),
                     IC_EINVAL);
}

/* ---------------------------------------------------------------------
 * Malformed SCRAM
 */

static void malformed_first(void **state)
{
    struct fx *f = *state;
    static const char *const cases[] = {
        "n,,n=user",             /* no r= */
        "n,,r=abc,n=user",       /* wrong order */
        "n,,m=ext,n=user,r=abc", /* reserved m= */
        "n,,n=user,r=abc,",      /* trailing comma */
        "n,,n=user,r=a,bc",      /* not an attribute */
        "n,,n=user,r=",          /* empty nonce */
        "n,,n=,r=abc",           /* empty user */
        "n,,n=us=2Xer,r=abc",    /* bad escape */
        "n,,n=user=,r=abc",      /* bad escape */
        "n,,n=user,r=ab c",      /* not printable */
        "n,n=user,r=abc",        /* no authzid field */
        ",,n=user,r=abc",        /* no flag */
        "x,,n=user,r=abc",       /* bad flag */
        "n,a=,n=user,r=abc",     /* empty authzid */
        "n,b=x,n=user,r=abc",    /* not an authzid */
        "p=,,n=user,r=abc",      /* empty cb name */
        "n,,",                   /* no bare message */
        "",                      /* nothing */
        "n,,n=user,r=abc,1=x",   /* not an attribute name */
    };

    for (size_t i = 0; i < IC_ARRAY_LEN(cases); i++)
        first_fails(f, "SCRAM-SHA-256", false, S(cases[i]),
                    IC_SASL_MALFORMED_REQUEST);
    first_fails(f, "SCRAM-SHA-256", false, "n,,n=user,r=a\0c", 15,
                IC_SASL_MALFORMED_REQUEST);
}

/* Extensions are ignored (RFC 5802 5.1) but signed. */
static void extensions(void **state)
{
    struct fx *f = *state;
    struct client c = client(IC_SCRAM_SHA256, "n,,", "pencil");

    c.ext = "x=ext,y=z";
    exchange(f, "SCRAM-SHA-256", false, &c, SUCCEEDS);
}

/* Runs client-first with a fixed nonce, then FINAL. */
static void
final_fails(struct fx *f, const char *final, enum ic_sasl_condition cond)
{
    struct ic_sasl *s = start(f, "SCRAM-SHA-256", false);
    char *out;

    ic_sasl__set_test_nonce("SNONCE");
    out = step(s, "n,,n=user,r=abc", IC_SASL_CHALLENGE);
    ic_free(out);
    step_fails(s, final, strlen(final), cond);
    ic_sasl_free(s);
}

#define PROOF "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="

static void malformed_final(void **state)
{
    struct fx *f = *state;

    final_fails(f, "c=biws,p=" PROOF, IC_SASL_MALFORMED_REQUEST);
    final_fails(f, "r=abcSNONCE,c=biws,p=" PROOF, IC_SASL_MALFORMED_REQUEST);
    final_fails(f, "c=biws,r=abcSNONCE", IC_SASL_MALFORMED_REQUEST);
    final_fails(f, "c=biws,r=abcSNONCE,p=" PROOF ",x=y",
                IC_SASL_MALFORMED_REQUEST);
    final_fails(f, "c=biws,r=abcSNONCE,p=" PROOF ",",
                IC_SASL_MALFORMED_REQUEST);
    final_fails(f, "c=biws,r=abcSNONCE,p=", IC_SASL_MALFORMED_REQUEST);
    final_fails(f, "c=b!ws,r=abcSNONCE,p=" PROOF, IC_SASL_INCORRECT_ENCODING);
    final_fails(f, "c=biw,r=abcSNONCE,p=" PROOF, IC_SASL_INCORRECT_ENCODING);
    final_fails(f, "c=biws,r=abcSNONCE,p=" PROOF "=",
                IC_SASL_INCORRECT_ENCODING);
    /* a proof of the wrong size */
    final_fails(f, "c=biws,r=abcSNONCE,p=biws", IC_SASL_MALFORMED_REQUEST);
    /* a wrong nonce, a wrong channel binding */
    final_fails(f, "c=biws,r=abcSNONCX,p=" PROOF, IC_SASL_NOT_AUTHORIZED);
    final_fails(f, "c=biws,r=abc,p=" PROOF, IC_SASL_NOT_AUTHORIZED);
    final_fails(f, "c=eSws,r=abcSNONCE,p=" PROOF, IC_SASL_NOT_AUTHORIZED);
    final_fails(f, "", IC_SASL_MALFORMED_REQUEST);
}

static void no_initial_response(void **state)
{
    struct fx *f = *state;
    struct ic_sasl *s = start(f, "SCRAM-SHA-1", false);
    unsigned char *out;
    size_t len;
    enum ic_sasl_result res;

    assert_int_equal(ic_sasl_step(s, NULL, 0, &out, &len, &res), 0);
    assert_int_equal(res, IC_SASL_CHALLENGE);
    assert_non_null(out);
    assert_int_equal(len, 0);
    ic_free(out);
    ic_sasl__set_test_nonce("3rfcNHYJY1ZVvWVs7j");
    step_expect(s, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", IC_SASL_CHALLENGE,
                "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
                "s=QSXCR+Q6sek8bf92,i=4096");
    step_expect(s,
                "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
                "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                IC_SASL_SUCCESS, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    /* the exchange is over */
    assert_int_equal(
        ic_sasl_step(s, (const unsigned char *)"x", 1, &out, &len, &res),
        IC_EINVAL);
    ic_sasl_free(s);
}

/* ---------------------------------------------------------------------
 * PLAIN
 */

/* One exchange of MECH from IN: success as USER, or failure with COND. */
static void one_step(struct fx *f,
                     const char *mech,
                     const char *in,
                     size_t len,
                     const char *user,
                     enum ic_sasl_condition cond)
{
    struct ic_sasl *s = start(f, mech, false);

    if (user != NULL) {
        char *out = step_n(s, in, len, IC_SASL_SUCCESS);
        assert_null(out);
        assert_string_equal(ic_sasl_user(s), user);
    } else {
        step_fails(s, in, len, cond);
    }
    ic_sasl_free(s);
}

#define plain_case(f, ...) one_step(f, "PLAIN", __VA_ARGS__)
#define external_case(f, ...) one_step(f, "EXTERNAL", __VA_ARGS__)

#define P(s) s, sizeof(s) - 1

static void plain(void **state)
{
    struct fx *f = *state;
    const enum ic_sasl_condition na = IC_SASL_NOT_AUTHORIZED;
    const enum ic_sasl_condition mr = IC_SASL_MALFORMED_REQUEST;
    const enum ic_sasl_condition ia = IC_SASL_INVALID_AUTHZID;

    plain_case(f, P("\0user\0pencil"), "user", 0);
    plain_case(f, P("\0USER\0pencil"), "user", 0);
    plain_case(f, P("user@example.com\0user\0pencil"), "user", 0);
    plain_case(f, P("User@Example.COM\0user\0pencil"), "user", 0);
    plain_case(f, P("\0ix\0I\xC2\xADX"), "ix", 0); /* SASLprep */
    plain_case(f, P("\0user\0Pencil"), NULL, na);
    plain_case(f, P("\0user\0pencil "), NULL, na);
    plain_case(f, P("\0nobody\0pencil"), NULL, na);
    plain_case(f, P("\0us@er\0pencil"), NULL, na);
    plain_case(f, P("\0broken\0pencil"), NULL, IC_SASL_TEMPORARY_AUTH_FAILURE);
    plain_case(f, P("other@example.com\0user\0pencil"), NULL, ia);
    plain_case(f, P("user@example.net\0user\0pencil"), NULL, ia);
    plain_case(f, P("user@example.com/r\0user\0pencil"), NULL, ia);
    plain_case(f, P("example.com\0user\0pencil"), NULL, ia);
    plain_case(f, P("user\0pencil"), NULL, mr);
    plain_case(f, P("\0user\0pencil\0"), NULL, mr);
    plain_case(f, P("\0\0pencil"), NULL, mr);
    plain_case(f, P("\0user\0"), NULL, mr);
    plain_case(f, P(""), NULL, mr);
    /* the stream's domain is compared prepared */
    f->ops.domain = "Example.COM.";
    plain_case(f, P("user@example.com\0user\0pencil"), "user", 0);
    f->ops.domain = NULL;
    plain_case(f, P("user@example.com\0user\0pencil"), NULL, ia);
    plain_case(f, P("\0user\0pencil"), "user", 0);
}

static void plain_needs_tls(void **state)
{
    struct fx *f = *state;
    struct ic_sasl *s = NULL;

    assert_int_equal(ic_sasl_new("PLAIN", &f->ops, &f->no_tls, false, &s), 0);
    step_fails(s, P("\0user\0pencil"), IC_SASL_ENCRYPTION_REQUIRED);
    ic_sasl_free(s);
    assert_int_equal(ic_sasl_new("PLAIN", &f->ops, NULL, false, &s), 0);
    step_fails(s, NULL, 0, IC_SASL_ENCRYPTION_REQUIRED);
    ic_sasl_free(s);
}

static void plain_no_initial_response(void **state)
{
    struct fx *f = *state;
    struct ic_sasl *s = start(f, "PLAIN", false);
    char *out = step(s, NULL, IC_SASL_CHALLENGE);

    assert_string_equal(out, "");
    ic_free(out);
    out = step_n(s, P("\0user\0pencil"), IC_SASL_SUCCESS);
    assert_null(out);
    assert_string_equal(ic_sasl_user(s), "user");
    ic_sasl_free(s);
}

/* ---------------------------------------------------------------------
 * EXTERNAL
 */

static void external_mech(void **state)
{
    struct fx *f = *state;
    struct ic_sasl *s;
    char *out;

    external_case(f, P(""), "user", 0);
    assert_true(f->st.authzid_null);
    external_case(f, P("user@example.com"), "user", 0);
    assert_false(f->st.authzid_null);
    assert_string_equal(f->st.last_authzid, "user@example.com");
    external_case(f, P("bad@example.com"), NULL, IC_SASL_INVALID_AUTHZID);
    external_case(f, P("busy"), NULL, IC_SASL_TEMPORARY_AUTH_FAILURE);
    external_case(f, P("other@example.com"), NULL, IC_SASL_NOT_AUTHORIZED);
    external_case(f, P("user@example.com\0x"), NULL, IC_SASL_MALFORMED_REQUEST);

    /* no initial response: an empty challenge, then "=" */
    s = start(f, "EXTERNAL", false);
    out = step(s, NULL, IC_SASL_CHALLENGE);
    assert_string_equal(out, "");
    ic_free(out);
    out = step_n(s, "", 0, IC_SASL_SUCCESS);
    assert_null(out);
    assert_string_equal(ic_sasl_user(s), "user");
    ic_sasl_free(s);

    /* without TLS, or without the callback */
    assert_int_equal(ic_sasl_new("EXTERNAL", &f->ops, &f->no_tls, false, &s),
                     0);
    step_fails(s, P(""), IC_SASL_ENCRYPTION_REQUIRED);
    ic_sasl_free(s);
    f->ops.external = NULL;
    assert_int_equal(ic_sasl_new("EXTERNAL", &f->ops, &f->cb, false, &s),
                     IC_EINVAL);
}

/* ---------------------------------------------------------------------
 * Mechanisms, conditions, base64
 */

static void mechanisms(void **state)
{
    struct fx *f = *state;
    const char *names[IC_SASL_MAX_MECHANISMS];
    struct ic_sasl *s = NULL;
    size_t n;

    n = ic_sasl_mechanisms(&f->ops, &f->cb, names, IC_ARRAY_LEN(names));
    assert_int_equal(n, 6);
    assert_string_equal(names[0], "SCRAM-SHA-256-PLUS");
    assert_string_equal(names[1], "SCRAM-SHA-1-PLUS");
    assert_string_equal(names[2], "SCRAM-SHA-256");
    assert_string_equal(names[3], "SCRAM-SHA-1");
    assert_string_equal(names[4], "EXTERNAL");
    assert_string_equal(names[5], "PLAIN");
    n = ic_sasl_mechanisms(&f->ops, &f->cb, names, 2);
    assert_int_equal(n, 2);
    n = ic_sasl_mechanisms(&f->ops, &f->no_tls, names, IC_ARRAY_LEN(names));
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "SCRAM-SHA-256");
    assert_string_equal(names[1], "SCRAM-SHA-1");
    f->cb.tls_exporter = NULL;
    f->ops.external = NULL;
    n = ic_sasl_mechanisms(&f->ops, &f->cb, names, IC_ARRAY_LEN(names));
    assert_int_equal(n, 5);
    assert_string_equal(names[4], "PLAIN");

    assert_int_equal(ic_sasl_new("DIGEST-MD5", &f->ops, &f->cb, false, &s),
                     IC_EINVAL);
    assert_int_equal(ic_sasl_new("plain", &f->ops, &f->cb, false, &s),
                     IC_EINVAL);
    assert_int_equal(ic_sasl_new("", &f->ops, &f->cb, false, &s), IC_EINVAL);
    assert_null(s);
    f->ops.lookup = NULL;
    assert_int_equal(ic_sasl_new("SCRAM-SHA-1", &f->ops, &f->cb, false, &s),
                     IC_EINVAL);
    assert_int_equal(ic_sasl_mechanisms(&f->ops, &f->cb, names, 6), 0);
    ic_sasl_free(NULL);
}

static void condition_names(void **state)
{
    static const char *const want[] = {
        "aborted",
        "account-disabled",
        "credentials-expired",
        "encryption-required",
        "incorrect-encoding",
        "invalid-authzid",
        "invalid-mechanism",
        "malformed-request",
        "mechanism-too-weak",
        "not-authorized",
        "temporary-auth-failure",
    };

    (void)state;
    assert_int_equal(IC_ARRAY_LEN(want), IC_SASL__COUNT);
    for (size_t i = 0; i < IC_ARRAY_LEN(want); i++)
        assert_string_equal(ic_sasl_condition_name((enum ic_sasl_condition)i),
                            want[i]);
    assert_string_equal(ic_sasl_condition_name(IC_SASL_NOT_AUTHORIZED),
                        "not-authorized");
    assert_null(ic_sasl_condition_name(IC_SASL__COUNT));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(rfc5802_example),       T(rfc7677_example),
        T(rfc7677_bad_proof),     T(scram_clients),
        T(scram_username),        T(scram_unknown_user),
        T(scram_authzid),         T(plus_both_types),
        T(plus_mismatch),         T(plus_flags),
        T(plus_y_not_advertised), T(plus_missing_type),
        T(malformed_first),       T(extensions),
        T(malformed_final),       T(wrong_nonce),
        T(no_initial_response),   T(plain),
        T(plain_needs_tls),       T(plain_no_initial_response),
        T(external_mech),         T(mechanisms),
        T(condition_names),
    };
#undef T

    return cmocka_run_group_tests_name("sasl", tests, NULL, NULL);
}
