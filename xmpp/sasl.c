/*
 * sasl.c - the server side of SASL: PLAIN (RFC 4616), EXTERNAL (RFC 4422
 * appendix A), SCRAM-SHA-1/-256 and their -PLUS variants (RFC 5802, RFC
 * 7677, channel bindings of RFC 9266 and RFC 5929).
 *
 * Happy path of SCRAM:
 *   client-first  "n,,n=user,r=CNONCE"
 *   server-first  "r=CNONCE SNONCE,s=SALT,i=ITERATIONS"   (challenge)
 *   client-final  "c=biws,r=CNONCE SNONCE,p=PROOF"
 *   server-final  "v=SIGNATURE"                            (success)
 *
 * Failure modes: a message that breaks the grammar of RFC 5802 section 7
 * is malformed-request (a reserved "m=" too); bad base64 inside it is
 * incorrect-encoding; a wrong nonce, channel binding or proof, and an
 * unknown user, are not-authorized. An unknown user gets fake credentials
 * (salt and keys derived from the server's secret and the name, so they
 * are the same at every attempt) and runs the whole exchange, including
 * the proof check, so that only the end result differs; PLAIN runs PBKDF2
 * against fake credentials just the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "sasl.h"

/* Longest SCRAM message accepted (they are around 100 bytes). */
#define MSG_MAX 4096
#define NONCE_BYTES 24
#define FAKE_SALT_LEN 16
#define TEST_NONCE_MAX 64
/* What internal checks return when there is no condition to fail with. */
#define OK (-1)

enum kind { PLAIN, EXTERNAL, SCRAM };

struct mech {
    const char *name;
    enum kind kind;
    enum ic_scram_hash hash;
    bool plus;
};

/* Strongest first: the order of ic_sasl_mechanisms(). */
static const struct mech mechs[] = {
    {"SCRAM-SHA-256-PLUS", SCRAM, IC_SCRAM_SHA256, true},
    {"SCRAM-SHA-1-PLUS", SCRAM, IC_SCRAM_SHA1, true},
    {"SCRAM-SHA-256", SCRAM, IC_SCRAM_SHA256, false},
    {"SCRAM-SHA-1", SCRAM, IC_SCRAM_SHA1, false},
    {"EXTERNAL", EXTERNAL, IC_SCRAM_SHA256, false},
    {"PLAIN", PLAIN, IC_SCRAM_SHA256, false},
};

enum state {
    START,       /* nothing received */
    INITIAL,     /* empty challenge sent, waiting for the initial data */
    SCRAM_FINAL, /* server-first sent, waiting for client-final */
    DONE,
};

struct ic_sasl {
    const struct mech *mech;
    struct ic_sasl_ops ops;
    bool tls;
    bool plus_advertised;
    unsigned char *exporter; /* channel-binding data (copies) */
    size_t exporter_len;
    unsigned char *end_point;
    size_t end_point_len;
    enum state state;
    bool succeeded;
    enum ic_sasl_condition cond; /* after a failure */
    char *user;                  /* prepared localpart */
    bool unknown;                /* USER has no account: fake credentials */
    struct ic_scram_creds creds;
    /* SCRAM between the two client messages */
    char *gs2_header;             /* "p=tls-exporter,," */
    const unsigned char *cb_data; /* EXPORTER or END_POINT, or NULL */
    size_t cb_data_len;
    char *client_first_bare; /* "n=user,r=CNONCE" */
    char *server_first;      /* "r=CNONCE SNONCE,s=..,i=.." */
    char *nonce;             /* "CNONCE SNONCE" */
};

static char test_nonce[TEST_NONCE_MAX + 1];

void ic_sasl__set_test_nonce(const char *nonce)
{
    if (nonce == NULL)
        test_nonce[0] = '\0';
    else
        snprintf(test_nonce, sizeof test_nonce, "%s", nonce);
}

const char *ic_sasl_condition_name(enum ic_sasl_condition c)
{
    static const char *const names[] = {
#define IC__SASL_NAME(name, e) name,
        IC_SASL_CONDITIONS(IC__SASL_NAME)
#undef IC__SASL_NAME
    };

    if ((unsigned)c >= IC_ARRAY_LEN(names))
        return NULL;
    return names[c];
}

/* ---------------------------------------------------------------------
 * Starting and ending
 */

static bool available(const struct mech *m,
                      const struct ic_sasl_ops *ops,
                      const struct ic_sasl_cb *cb)
{
    bool tls = cb != NULL && cb->tls;

    switch (m->kind) {
    case PLAIN:
        return ops->lookup != NULL && tls;
    case EXTERNAL:
        return ops->external != NULL && tls;
    case SCRAM:
        if (ops->lookup == NULL)
            return false;
        if (!m->plus)
            return true;
        return cb != NULL &&
               ((cb->tls_exporter && cb->tls_exporter_len) ||
                (cb->tls_server_end_point && cb->tls_server_end_point_len));
    }
    return false;
}

size_t ic_sasl_mechanisms(const struct ic_sasl_ops *ops,
                          const struct ic_sasl_cb *cb,
                          const char **names,
                          size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < IC_ARRAY_LEN(mechs) && n < max; i++) {
        if (available(&mechs[i], ops, cb))
            names[n++] = mechs[i].name;
    }
    return n;
}

static unsigned char *
copy_bytes(const unsigned char *p, size_t len, size_t *out_len)
{
    unsigned char *c;

    if (p == NULL || len == 0) {
        *out_len = 0;
        return NULL;
    }
    c = ic_malloc(len);
    memcpy(c, p, len);
    *out_len = len;
    return c;
}

int ic_sasl_new(const char *mechanism,
                const struct ic_sasl_ops *ops,
                const struct ic_sasl_cb *cb,
                bool plus_advertised,
                struct ic_sasl **out)
{
    const struct mech *m = NULL;
    struct ic_sasl *s;

    if (mechanism == NULL || ops == NULL || out == NULL)
        return IC_EINVAL;
    for (size_t i = 0; i < IC_ARRAY_LEN(mechs); i++) {
        if (!strcmp(mechs[i].name, mechanism))
            m = &mechs[i];
    }
    /* PLAIN and EXTERNAL without TLS start, to fail with
     * encryption-required. */
    if (m == NULL || (m->kind == SCRAM && !available(m, ops, cb)) ||
        (m->kind == PLAIN && ops->lookup == NULL) ||
        (m->kind == EXTERNAL && ops->external == NULL))
        return IC_EINVAL;
    s = ic_calloc(1, sizeof *s);
    s->mech = m;
    s->ops = *ops;
    s->plus_advertised = plus_advertised;
    if (cb != NULL) {
        s->tls = cb->tls;
        s->exporter = copy_bytes(cb->tls_exporter, cb->tls_exporter_len,
                                 &s->exporter_len);
        s->end_point =
            copy_bytes(cb->tls_server_end_point, cb->tls_server_end_point_len,
                       &s->end_point_len);
    }
    s->state = START;
    s->cond = IC_SASL__COUNT;
    *out = s;
    return 0;
}

void ic_sasl_free(struct ic_sasl *s)
{
    if (s == NULL)
        return;
    ic_free(s->exporter);
    ic_free(s->end_point);
    ic_free(s->user);
    ic_free(s->gs2_header);
    ic_free(s->client_first_bare);
    ic_free(s->server_first);
    ic_free(s->nonce);
    OPENSSL_cleanse(s, sizeof *s);
    ic_free(s);
}

enum ic_sasl_condition ic_sasl_condition(const struct ic_sasl *s)
{
    return s->cond;
}

const char *ic_sasl_user(const struct ic_sasl *s)
{
    return s->succeeded ? s->user : NULL;
}

const char *ic_sasl_mechanism(const struct ic_sasl *s)
{
    return s->mech->name;
}

/* ---------------------------------------------------------------------
 * Results
 */

struct step_out {
    unsigned char **out;
    size_t *out_len;
    enum ic_sasl_result *res;
};

static void
fail(struct ic_sasl *s, const struct step_out *o, enum ic_sasl_condition cond)
{
    s->state = DONE;
    s->cond = cond;
    *o->out = NULL;
    *o->out_len = 0;
    *o->res = IC_SASL_FAILURE;
}

/* DATA (a NUL-terminated string the exchange owned, or NULL) goes out. */
static void reply(const struct step_out *o, enum ic_sasl_result res, char *data)
{
    *o->out = (unsigned char *)data;
    *o->out_len = data ? strlen(data) : 0;
    *o->res = res;
}

static void succeed(struct ic_sasl *s, const struct step_out *o, char *data)
{
    s->state = DONE;
    s->succeeded = true;
    reply(o, IC_SASL_SUCCESS, data);
}

/* ---------------------------------------------------------------------
 * Accounts
 */

static const unsigned char *server_secret(const struct ic_sasl *s, size_t *len)
{
    static unsigned char random_key[32];
    static bool have_random_key;

    if (s->ops.secret != NULL && s->ops.secret_len > 0) {
        *len = s->ops.secret_len;
        return s->ops.secret;
    }
    if (!have_random_key) {
        if (RAND_bytes(random_key, sizeof random_key) != 1)
            return NULL;
        have_random_key = true;
    }
    *len = sizeof random_key;
    return random_key;
}

/* HMAC-SHA-256(secret, LABEL NUL HASH-ID NUL USER), truncated to LEN. */
static void fake_bytes(const unsigned char *key,
                       size_t key_len,
                       const char *label,
                       enum ic_scram_hash h,
                       const char *user,
                       unsigned char *out,
                       size_t len)
{
    struct ic_buf msg = {NULL, 0, 0};
    unsigned char mac[IC_SCRAM_MAX_HASH];

    ic_buf_append(&msg, label, strlen(label) + 1);
    ic_buf_append(&msg, h == IC_SCRAM_SHA1 ? "1" : "256",
                  h == IC_SCRAM_SHA1 ? 2 : 4);
    ic_buf_puts(&msg, user);
    ic_scram__hmac(IC_SCRAM_SHA256, key, key_len, msg.data, msg.len, mac);
    memcpy(out, mac, len);
    ic_buf_free(&msg);
}

/* Fills s->creds for s->user: the account's, or fake ones (s->unknown).
 * Returns OK or a condition to fail with. */
static int load_creds(struct ic_sasl *s, enum ic_scram_hash h)
{
    size_t hlen = ic_scram_hash_len(h), key_len = 0;
    const unsigned char *key;
    struct ic_scram_creds c;
    int rc;

    memset(&c, 0, sizeof c);
    rc = s->ops.lookup(s->ops.data, s->user, h, &c);
    if (rc == 0 && c.salt_len > 0 && c.salt_len <= sizeof c.salt &&
        c.iterations > 0) {
        s->creds = c;
        OPENSSL_cleanse(&c, sizeof c);
        return OK;
    }
    OPENSSL_cleanse(&c, sizeof c);
    if (rc != 0 && rc != IC_ENOTFOUND)
        return (int)IC_SASL_TEMPORARY_AUTH_FAILURE;
    key = server_secret(s, &key_len);
    if (key == NULL)
        return (int)IC_SASL_TEMPORARY_AUTH_FAILURE;
    s->unknown = true;
    s->creds.salt_len = FAKE_SALT_LEN;
    s->creds.iterations =
        s->ops.iterations ? s->ops.iterations : IC_SCRAM_MIN_ITERATIONS;
    fake_bytes(key, key_len, "salt", h, s->user, s->creds.salt, FAKE_SALT_LEN);
    fake_bytes(key, key_len, "stored", h, s->user, s->creds.stored_key, hlen);
    fake_bytes(key, key_len, "server", h, s->user, s->creds.server_key, hlen);
    return OK;
}

/* AUTHZID is empty or USER's own bare JID (both sides prepared). */
static bool authzid_ok(const struct ic_sasl *s, const char *authzid)
{
    struct ic_jid j;
    char *domain;
    bool ok;

    if (authzid == NULL || authzid[0] == '\0')
        return true;
    domain = ic_jid_nameprep(s->ops.domain);
    if (domain == NULL || ic_jid_parse(authzid, &j) != 0) {
        ic_free(domain);
        return false;
    }
    ok = j.local != NULL && j.resource == NULL && !strcmp(j.local, s->user) &&
         !strcmp(j.domain, domain);
    ic_jid_free(&j);
    ic_free(domain);
    return ok;
}

/* ---------------------------------------------------------------------
 * PLAIN: [authzid] NUL authcid NUL passwd
 */

/* Splits the LEN bytes of MSG (NUL-terminated at LEN) at its two NULs;
 * false unless there are exactly two and the last two fields are not
 * empty. */
static bool plain_split(const char *msg,
                        size_t len,
                        const char **authcid,
                        const char **passwd)
{
    const char *end = msg + len, *a, *p;

    a = memchr(msg, '\0', len);
    if (a == NULL)
        return false;
    a++;
    p = memchr(a, '\0', (size_t)(end - a));
    if (p == NULL)
        return false;
    p++;
    if (memchr(p, '\0', (size_t)(end - p)) != NULL || a[0] == '\0' ||
        p[0] == '\0')
        return false;
    *authcid = a;
    *passwd = p;
    return true;
}

static void plain_step(struct ic_sasl *s,
                       const unsigned char *in,
                       size_t len,
                       const struct step_out *o)
{
    char *msg = ic_strndup((const char *)in, len);
    const char *authcid, *passwd;
    int cond;

    if (!plain_split(msg, len, &authcid, &passwd)) {
        cond = IC_SASL_MALFORMED_REQUEST;
    } else if ((s->user = ic_jid_nodeprep(authcid)) == NULL) {
        cond = IC_SASL_NOT_AUTHORIZED;
    } else if (!authzid_ok(s, msg)) {
        cond = IC_SASL_INVALID_AUTHZID;
    } else {
        cond = load_creds(s, IC_SCRAM_SHA256);
        if (cond == OK &&
            (!ic_scram_check_password(IC_SCRAM_SHA256, &s->creds, passwd) ||
             s->unknown))
            cond = IC_SASL_NOT_AUTHORIZED;
    }
    OPENSSL_cleanse(msg, len);
    ic_free(msg);
    if (cond == OK)
        succeed(s, o, NULL);
    else
        fail(s, o, (enum ic_sasl_condition)cond);
}

/* ---------------------------------------------------------------------
 * EXTERNAL: [authzid]
 */

static void external_step(struct ic_sasl *s,
                          const unsigned char *in,
                          size_t len,
                          const struct step_out *o)
{
    char *authzid = ic_strndup((const char *)in, len);
    char *user = NULL;
    int rc;

    if (strlen(authzid) != len) {
        ic_free(authzid);
        fail(s, o, IC_SASL_MALFORMED_REQUEST);
        return;
    }
    rc = s->ops.external(s->ops.data, len ? authzid : NULL, &user);
    ic_free(authzid);
    if (rc == 0 && user != NULL) {
        s->user = user;
        succeed(s, o, NULL);
        return;
    }
    if (rc != 0)
        ic_free(user); /* in case the callback wrote it anyway */
    if (rc == IC_EVALUE)
        fail(s, o, IC_SASL_INVALID_AUTHZID);
    else if (rc == IC_EBUSY || rc == IC_EIO)
        fail(s, o, IC_SASL_TEMPORARY_AUTH_FAILURE);
    else
        fail(s, o, IC_SASL_NOT_AUTHORIZED);
}

/* ---------------------------------------------------------------------
 * SCRAM: parsing (RFC 5802 section 7)
 */

/* One "x=value" attribute of a SCRAM message: *P advances past it and its
 * comma. Returns the attribute's letter, 0 at the end of the message, or
 * -1 for a syntax error (no letter, no '=', an empty value, a trailing
 * comma). */
static int next_attr(const char **p, const char **val, size_t *val_len)
{
    const char *s = *p, *end;
    char name = s[0];

    if (name == '\0')
        return 0;
    if (!((name >= 'a' && name <= 'z') || (name >= 'A' && name <= 'Z')) ||
        s[1] != '=')
        return -1;
    end = strchr(s + 2, ',');
    if (end == NULL)
        end = s + strlen(s);
    if (end == s + 2 || (end[0] == ',' && end[1] == '\0'))
        return -1;
    *val = s + 2;
    *val_len = (size_t)(end - *val);
    *p = end[0] == ',' ? end + 1 : end;
    return name;
}

/* Decodes a saslname ("=2C" is ',', "=3D" is '='); NULL when another '='
 * appears. */
static char *saslname(const char *v, size_t len)
{
    char *out = ic_malloc(len + 1), *w = out;

    for (size_t i = 0; i < len; i++) {
        if (v[i] != '=') {
            *w++ = v[i];
        } else if (len - i >= 3 && !strncmp(v + i, "=2C", 3)) {
            *w++ = ',';
            i += 2;
        } else if (len - i >= 3 && !strncmp(v + i, "=3D", 3)) {
            *w++ = '=';
            i += 2;
        } else {
            ic_free(out);
            return NULL;
        }
    }
    *w = '\0';
    return out;
}

/* printable = %x21-2B / %x2D-7E (what a nonce is made of). */
static bool printable(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (v[i] < 0x21 || v[i] > 0x7e || v[i] == ',')
            return false;
    }
    return len > 0;
}

/* A copy of the message, or NULL when it is too long or holds a NUL. */
static char *message(const unsigned char *in, size_t len)
{
    if (len == 0 || len > MSG_MAX || memchr(in, '\0', len) != NULL)
        return NULL;
    return ic_strndup((const char *)in, len);
}

/* What client-first holds; pointers into the message. */
struct client_first {
    char flag; /* 'n', 'y' or 'p' */
    const char *cb_name;
    size_t cb_name_len;
    char *authzid; /* decoded, or NULL */
    const char *bare;
    char *user; /* decoded, not yet prepared */
    const char *cnonce;
    size_t cnonce_len;
};

static bool cb_name_ok(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '-'))
            return false;
    }
    return len > 0;
}

/* gs2-header = gs2-cbind-flag "," [ "a=" saslname ] "," */
static int parse_gs2(const char *msg, struct client_first *cf)
{
    const char *p = msg, *comma;

    if (p[0] == 'n' || p[0] == 'y') {
        cf->flag = *p++;
    } else if (p[0] == 'p' && p[1] == '=') {
        cf->flag = 'p';
        cf->cb_name = p + 2;
        p = strchr(cf->cb_name, ',');
        if (p == NULL)
            return IC_SASL_MALFORMED_REQUEST;
        cf->cb_name_len = (size_t)(p - cf->cb_name);
        if (!cb_name_ok(cf->cb_name, cf->cb_name_len))
            return IC_SASL_MALFORMED_REQUEST;
    } else {
        return IC_SASL_MALFORMED_REQUEST;
    }
    if (*p++ != ',')
        return IC_SASL_MALFORMED_REQUEST;
    if (p[0] == 'a' && p[1] == '=') {
        comma = strchr(p, ',');
        if (comma == NULL || comma == p + 2)
            return IC_SASL_MALFORMED_REQUEST;
        cf->authzid = saslname(p + 2, (size_t)(comma - p - 2));
        if (cf->authzid == NULL)
            return IC_SASL_MALFORMED_REQUEST;
        p = comma;
    }
    if (*p++ != ',')
        return IC_SASL_MALFORMED_REQUEST;
    cf->bare = p;
    return OK;
}

/* client-first-message-bare = [reserved-mext ","] username "," nonce
 *                             ["," extensions]
 * A reserved "m=" fails; other extensions are ignored (section 5.1). */
static int parse_bare(struct client_first *cf)
{
    const char *p = cf->bare, *v;
    size_t n;
    int a;

    if (next_attr(&p, &v, &n) != 'n')
        return IC_SASL_MALFORMED_REQUEST;
    cf->user = saslname(v, n);
    if (cf->user == NULL)
        return IC_SASL_MALFORMED_REQUEST;
    if (next_attr(&p, &v, &n) != 'r' || !printable(v, n))
        return IC_SASL_MALFORMED_REQUEST;
    cf->cnonce = v;
    cf->cnonce_len = n;
    while ((a = next_attr(&p, &v, &n)) > 0)
        ;
    return a == 0 ? OK : IC_SASL_MALFORMED_REQUEST;
}

/* The channel-binding flag against the mechanism and what we offered. */
static int check_cb_flag(struct ic_sasl *s, const struct client_first *cf)
{
    if (cf->flag != 'p') {
        if (s->mech->plus)
            return IC_SASL_MALFORMED_REQUEST;
        /* "y": the client could bind but thinks we cannot; we said we
         * could, so someone removed the -PLUS mechanisms on the way. */
        if (cf->flag == 'y' && s->plus_advertised)
            return IC_SASL_NOT_AUTHORIZED;
        return OK;
    }
    if (!s->mech->plus)
        return IC_SASL_MALFORMED_REQUEST;
    if (cf->cb_name_len == 12 && !strncmp(cf->cb_name, "tls-exporter", 12) &&
        s->exporter != NULL) {
        s->cb_data = s->exporter;
        s->cb_data_len = s->exporter_len;
    } else if (cf->cb_name_len == 20 &&
               !strncmp(cf->cb_name, "tls-server-end-point", 20) &&
               s->end_point != NULL) {
        s->cb_data = s->end_point;
        s->cb_data_len = s->end_point_len;
    } else {
        return IC_SASL_NOT_AUTHORIZED; /* a type we do not have */
    }
    return OK;
}

/* The server part of the nonce: NONCE_BYTES random bytes in base64. */
static char *server_nonce(void)
{
    unsigned char r[NONCE_BYTES];

    if (test_nonce[0] != '\0')
        return ic_strdup(test_nonce);
    if (RAND_bytes(r, sizeof r) != 1)
        return NULL;
    return ic_base64_encode(r, sizeof r);
}

static int make_server_first(struct ic_sasl *s,
                             const char *msg,
                             const struct client_first *cf,
                             char **out)
{
    char *snonce = server_nonce(), *salt, iter[16];
    struct ic_buf b = {NULL, 0, 0};

    if (snonce == NULL)
        return IC_SASL_TEMPORARY_AUTH_FAILURE;
    ic_buf_append(&b, cf->cnonce, cf->cnonce_len);
    ic_buf_puts(&b, snonce);
    s->nonce = b.data;
    ic_free(snonce);

    salt = ic_base64_encode(s->creds.salt, s->creds.salt_len);
    snprintf(iter, sizeof iter, "%u", (unsigned)s->creds.iterations);
    b = (struct ic_buf){NULL, 0, 0};
    ic_buf_puts(&b, "r=");
    ic_buf_puts(&b, s->nonce);
    ic_buf_puts(&b, ",s=");
    ic_buf_puts(&b, salt);
    ic_buf_puts(&b, ",i=");
    ic_buf_puts(&b, iter);
    ic_free(salt);
    s->server_first = b.data;
    s->gs2_header = ic_strndup(msg, (size_t)(cf->bare - msg));
    s->client_first_bare = ic_strdup(cf->bare);
    *out = ic_strdup(s->server_first);
    return OK;
}

static void scram_first(struct ic_sasl *s,
                        const unsigned char *in,
                        size_t len,
                        const struct step_out *o)
{
    struct client_first cf;
    char *msg = message(in, len), *out = NULL;
    int cond = IC_SASL_MALFORMED_REQUEST;

    memset(&cf, 0, sizeof cf);
    if (msg != NULL)
        cond = parse_gs2(msg, &cf);
    if (cond == OK)
        cond = parse_bare(&cf);
    if (cond == OK)
        cond = check_cb_flag(s, &cf);
    if (cond == OK && (s->user = ic_jid_nodeprep(cf.user)) == NULL)
        cond = IC_SASL_NOT_AUTHORIZED;
    if (cond == OK && !authzid_ok(s, cf.authzid))
        cond = IC_SASL_INVALID_AUTHZID;
    if (cond == OK)
        cond = load_creds(s, s->mech->hash);
    if (cond == OK)
        cond = make_server_first(s, msg, &cf, &out);
    ic_free(cf.authzid);
    ic_free(cf.user);
    ic_free(msg);
    if (cond != OK) {
        fail(s, o, (enum ic_sasl_condition)cond);
        return;
    }
    s->state = SCRAM_FINAL;
    reply(o, IC_SASL_CHALLENGE, out);
}

/* What client-final holds. */
struct client_final {
    unsigned char *cbind; /* decoded c= */
    size_t cbind_len;
    const char *nonce;
    size_t nonce_len;
    size_t without_proof_len; /* client-final-message-without-proof */
    unsigned char *proof;     /* decoded p= */
    size_t proof_len;
};

/* client-final-message = "c=" base64 "," "r=" nonce ["," extensions]
 *                        "," "p=" base64 */
static int parse_final(const char *msg, struct client_final *f)
{
    const char *p = msg, *start, *v;
    size_t n;
    int a;

    if (next_attr(&p, &v, &n) != 'c')
        return IC_SASL_MALFORMED_REQUEST;
    if (ic_base64_decode(v, n, &f->cbind, &f->cbind_len) != 0)
        return IC_SASL_INCORRECT_ENCODING;
    if (next_attr(&p, &v, &n) != 'r')
        return IC_SASL_MALFORMED_REQUEST;
    f->nonce = v;
    f->nonce_len = n;
    do {
        start = p;
        a = next_attr(&p, &v, &n);
    } while (a > 0 && a != 'p');
    if (a != 'p' || *p != '\0')
        return IC_SASL_MALFORMED_REQUEST;
    f->without_proof_len = (size_t)(start - 1 - msg);
    if (ic_base64_decode(v, n, &f->proof, &f->proof_len) != 0)
        return IC_SASL_INCORRECT_ENCODING;
    return OK;
}

/* The channel binding sent must be the gs2-header and our data. */
static bool cbind_ok(const struct ic_sasl *s, const struct client_final *f)
{
    size_t hlen = strlen(s->gs2_header);

    return f->cbind_len == hlen + s->cb_data_len &&
           CRYPTO_memcmp(f->cbind, s->gs2_header, hlen) == 0 &&
           (s->cb_data_len == 0 ||
            CRYPTO_memcmp(f->cbind + hlen, s->cb_data, s->cb_data_len) == 0);
}

/* Checks ClientProof (section 3) over AUTH; on success *SIG gets
 * ServerSignature. Runs the same for fake credentials. */
static bool proof_ok(const struct ic_sasl *s,
                     const struct client_final *f,
                     const struct ic_buf *auth,
                     unsigned char *sig)
{
    enum ic_scram_hash h = s->mech->hash;
    size_t hlen = ic_scram_hash_len(h);
    unsigned char client_sig[IC_SCRAM_MAX_HASH], key[IC_SCRAM_MAX_HASH];
    unsigned char stored[IC_SCRAM_MAX_HASH];
    bool ok;

    ic_scram__hmac(h, s->creds.stored_key, hlen, auth->data, auth->len,
                   client_sig);
    for (size_t i = 0; i < hlen; i++)
        key[i] = f->proof[i] ^ client_sig[i];
    ic_scram__hash(h, key, hlen, stored);
    ok = CRYPTO_memcmp(stored, s->creds.stored_key, hlen) == 0;
    ic_scram__hmac(h, s->creds.server_key, hlen, auth->data, auth->len, sig);
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(client_sig, sizeof client_sig);
    OPENSSL_cleanse(stored, sizeof stored);
    return ok;
}

static int verify(struct ic_sasl *s,
                  const char *msg,
                  const struct client_final *f,
                  char **out)
{
    size_t hlen = ic_scram_hash_len(s->mech->hash);
    unsigned char sig[IC_SCRAM_MAX_HASH];
    struct ic_buf auth = {NULL, 0, 0};
    bool ok;
    char *v;

    if (f->proof_len != hlen)
        return IC_SASL_MALFORMED_REQUEST;
    ic_buf_puts(&auth, s->client_first_bare);
    ic_buf_puts(&auth, ",");
    ic_buf_puts(&auth, s->server_first);
    ic_buf_puts(&auth, ",");
    ic_buf_append(&auth, msg, f->without_proof_len);
    ok = proof_ok(s, f, &auth, sig);
    ok = cbind_ok(s, f) && ok;
    ok = f->nonce_len == strlen(s->nonce) &&
         !memcmp(f->nonce, s->nonce, f->nonce_len) && ok;
    ic_buf_free(&auth);
    if (!ok || s->unknown)
        return IC_SASL_NOT_AUTHORIZED;
    v = ic_base64_encode(sig, hlen);
    *out = ic_malloc(strlen(v) + 3);
    memcpy(*out, "v=", 2);
    memcpy(*out + 2, v, strlen(v) + 1);
    ic_free(v);
    return OK;
}

static void scram_final(struct ic_sasl *s,
                        const unsigned char *in,
                        size_t len,
                        const struct step_out *o)
{
    struct client_final f;
    char *msg = message(in, len), *out = NULL;
    int cond = IC_SASL_MALFORMED_REQUEST;

    memset(&f, 0, sizeof f);
    if (msg != NULL)
        cond = parse_final(msg, &f);
    if (cond == OK)
        cond = verify(s, msg, &f, &out);
    ic_free(f.cbind);
    ic_free(f.proof);
    ic_free(msg);
    OPENSSL_cleanse(&s->creds, sizeof s->creds);
    if (cond == OK)
        succeed(s, o, out);
    else
        fail(s, o, (enum ic_sasl_condition)cond);
}

/* ---------------------------------------------------------------------
 * Steps
 */

int ic_sasl_step(struct ic_sasl *s,
                 const unsigned char *in,
                 size_t in_len,
                 unsigned char **out,
                 size_t *out_len,
                 enum ic_sasl_result *res)
{
    const struct step_out o = {out, out_len, res};
    enum kind kind;

    if (s == NULL || out == NULL || out_len == NULL || res == NULL ||
        s->state == DONE)
        return IC_EINVAL;
    kind = s->mech->kind;
    if (kind != SCRAM && !s->tls) {
        fail(s, &o, IC_SASL_ENCRYPTION_REQUIRED);
        return 0;
    }
    if (in == NULL && s->state == START) {
        s->state = INITIAL;
        reply(&o, IC_SASL_CHALLENGE, ic_strdup(""));
        return 0;
    }
    if (in == NULL)
        in = (const unsigned char *)"";
    if (s->state == SCRAM_FINAL)
        scram_final(s, in, in_len, &o);
    else if (kind == SCRAM)
        scram_first(s, in, in_len, &o);
    else if (kind == PLAIN)
        plain_step(s, in, in_len, &o);
    else
        external_step(s, in, in_len, &o);
    return 0;
}
