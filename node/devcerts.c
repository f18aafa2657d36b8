/*
 * devcerts.c - the development CA and certificates `icroot dev` makes, with
 * the OpenSSL 3 API.
 *
 * Happy path: make_ca writes a self-signed CA; make_node and make_client
 * load it and issue a leaf each (make_leaf). Files are written through a
 * temporary file and rename, private keys with mode 0600, the key before
 * the certificate, so a crash leaves either the old pair or a mismatched
 * pair, which the next run replaces.
 *
 * Re-running keeps what is still good: a pair that matches, has the key
 * type asked for, verifies against the CA (for leaves, with the purposes it
 * is for), names what it must name and lasts RENEW_DAYS more. Anything
 * else is written anew, so a new CA re-issues every leaf.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "node_int.h"

#define MOD "devcerts"
#define ORG "Intercloud Root (dev)"
#define CA_DAYS 3650
#define LEAF_DAYS 730
#define RENEW_DAYS 30
#define XMPP_ADDR_OID "1.3.6.1.5.5.7.8.5" /* id-on-xmppAddr, RFC 6120 */
#define CN_MAX 64                         /* ub-common-name */

/* What a leaf certificate is for and names. */
struct leaf {
    const char *dir, *ca_dir, *name; /* DIR/NAME.pem, DIR/NAME.key */
    const char *ou, *cn;
    const char *dns[2];
    size_t n_dns;
    const char *xmpp[2]; /* id-on-xmppAddr otherNames */
    size_t n_xmpp;
    bool server; /* serverAuth and clientAuth, else clientAuth alone */
    enum ic_devcerts_key key;
};

static int fail(char *why, size_t len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes the reason (with OpenSSL's last error, if any) and returns RC. */
static int fail(char *why, size_t len, int rc, const char *fmt, ...)
{
    char msg[512], ssl[256] = "";
    unsigned long e = ERR_peek_last_error();
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (e != 0)
        ERR_error_string_n(e, ssl, sizeof ssl);
    ERR_clear_error();
    if (why != NULL && len > 0)
        snprintf(why, len, "%s%s%s", msg, e ? ": " : "", ssl);
    IC_LOG(IC_LOG_DEBUG, MOD, "%s%s%s", msg, e ? ": " : "", ssl);
    return rc;
}

static char *join(const char *dir, const char *name, const char *ext)
{
    size_t n = strlen(dir) + strlen(name) + strlen(ext) + 2;
    char *p = ic_malloc(n);

    snprintf(p, n, "%s/%s%s", dir, name, ext);
    return p;
}

int ic_devcerts_key_parse(const char *name, enum ic_devcerts_key *out)
{
    if (strcmp(name, "rsa2048") == 0 || strcmp(name, "rsa") == 0)
        *out = IC_DEVCERTS_RSA2048;
    else if (strcmp(name, "p256") == 0 || strcmp(name, "ec") == 0)
        *out = IC_DEVCERTS_EC_P256;
    else
        return IC_EINVAL;
    return 0;
}

/* Keys */

static bool key_ok(enum ic_devcerts_key key)
{
    return key == IC_DEVCERTS_RSA2048 || key == IC_DEVCERTS_EC_P256;
}

static EVP_PKEY *new_key(enum ic_devcerts_key key)
{
    if (key == IC_DEVCERTS_EC_P256)
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
}

static bool key_is(EVP_PKEY *k, enum ic_devcerts_key key)
{
    char group[64];

    if (key == IC_DEVCERTS_RSA2048)
        return EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) == 2048;
    return EVP_PKEY_is_a(k, "EC") &&
           EVP_PKEY_get_group_name(k, group, sizeof group, NULL) == 1 &&
           strcmp(group, "prime256v1") == 0;
}

/* Files */

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x;

    if (f == NULL)
        return NULL;
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k;

    if (f == NULL)
        return NULL;
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

/* Writes X (or K) to PATH with MODE, through PATH.tmp and rename. */
static int write_pem(const char *path, mode_t mode, X509 *x, EVP_PKEY *k)
{
    size_t n = strlen(path) + 5;
    char *tmp = ic_malloc(n);
    FILE *f = NULL;
    int fd, err;
    bool ok;

    snprintf(tmp, n, "%s.tmp", path);
    errno = 0;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ok = fd >= 0 && fchmod(fd, mode) == 0 && (f = fdopen(fd, "w")) != NULL;
    if (ok)
        ok = x != NULL
                 ? PEM_write_X509(f, x) == 1
                 : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
    ok = ok && fflush(f) == 0 && fsync(fd) == 0;
    if (f != NULL)
        ok = fclose(f) == 0 && ok;
    else if (fd >= 0)
        close(fd);
    ok = ok && rename(tmp, path) == 0;
    err = ok || errno != 0 ? errno : EIO;
    if (!ok && fd >= 0)
        unlink(tmp);
    ic_free(tmp);
    errno = err;
    return ok ? 0 : IC_EIO;
}

static int write_pair(const char *cert_path,
                      const char *key_path,
                      X509 *x,
                      EVP_PKEY *k,
                      char *why,
                      size_t why_len)
{
    if (write_pem(key_path, 0600, NULL, k) != 0)
        return fail(why, why_len, IC_EIO, "%s: %s", key_path, strerror(errno));
    if (write_pem(cert_path, 0644, x, NULL) != 0)
        return fail(why, why_len, IC_EIO, "%s: %s", cert_path, strerror(errno));
    IC_LOG(IC_LOG_INFO, MOD, "wrote %s and %s", cert_path, key_path);
    return 0;
}

static int ensure_dir(const char *dir, char *why, size_t why_len)
{
    struct stat st;

    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        return fail(why, why_len, IC_EIO, "%s: %s", dir, strerror(errno));
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return fail(why, why_len, IC_EIO, "%s: not a directory", dir);
    return 0;
}

/* Certificates */

static bool set_serial(X509 *x)
{
    BIGNUM *bn = BN_new();
    bool ok = bn != NULL;

    while (ok &&
           (ok = BN_rand(bn, 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1) &&
           BN_is_zero(bn))
        ;
    ok = ok && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

static bool add_name(X509_NAME *n, const char *field, const char *v)
{
    return X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8,
                                      (const unsigned char *)v, -1, -1, 0) == 1;
}

/* A certificate for KEY, valid from an hour ago for DAYS, subject
 * O=ORG[, OU=OU][, CN=CN] (CN left out when longer than allowed). */
static X509 *new_cert(EVP_PKEY *key, const char *ou, const char *cn, int days)
{
    X509 *x = X509_new();
    X509_NAME *n;
    bool ok;

    ok = x != NULL && X509_set_version(x, X509_VERSION_3) == 1 &&
         set_serial(x) &&
         X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
         X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) != NULL &&
         X509_set_pubkey(x, key) == 1;
    n = ok ? X509_get_subject_name(x) : NULL;
    ok = ok && add_name(n, "O", ORG) && (ou == NULL || add_name(n, "OU", ou));
    if (ok && strlen(cn) <= CN_MAX)
        ok = add_name(n, "CN", cn);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Adds extension NID given as in openssl.cnf (x509v3_config). */
static bool add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    bool ok;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

static bool push_dns(GENERAL_NAMES *gens, const char *name)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();

    if (g == NULL || s == NULL || ASN1_STRING_set(s, name, -1) != 1) {
        GENERAL_NAME_free(g);
        ASN1_IA5STRING_free(s);
        return false;
    }
    GENERAL_NAME_set0_value(g, GEN_DNS, s);
    if (sk_GENERAL_NAME_push(gens, g) == 0) {
        GENERAL_NAME_free(g);
        return false;
    }
    return true;
}

/* An otherName id-on-xmppAddr holding NAME as a UTF8String. */
static bool push_xmpp(GENERAL_NAMES *gens, const char *name)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_OBJECT *oid = OBJ_txt2obj(XMPP_ADDR_OID, 1);
    ASN1_TYPE *t = ASN1_TYPE_new();
    ASN1_UTF8STRING *s = ASN1_UTF8STRING_new();

    if (g == NULL || oid == NULL || t == NULL || s == NULL ||
        ASN1_STRING_set(s, name, -1) != 1) {
        GENERAL_NAME_free(g);
        ASN1_OBJECT_free(oid);
        ASN1_TYPE_free(t);
        ASN1_UTF8STRING_free(s);
        return false;
    }
    ASN1_TYPE_set(t, V_ASN1_UTF8STRING, s);
    if (GENERAL_NAME_set0_othername(g, oid, t) != 1) {
        ASN1_OBJECT_free(oid);
        ASN1_TYPE_free(t);
        GENERAL_NAME_free(g);
        return false;
    }
    if (sk_GENERAL_NAME_push(gens, g) == 0) {
        GENERAL_NAME_free(g);
        return false;
    }
    return true;
}

static bool add_san(X509 *x, const struct leaf *l)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    bool ok = gens != NULL;

    for (size_t i = 0; ok && i < l->n_dns; i++)
        ok = push_dns(gens, l->dns[i]);
    for (size_t i = 0; ok && i < l->n_xmpp; i++)
        ok = push_xmpp(gens, l->xmpp[i]);
    ok = ok && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
                                 X509V3_ADD_APPEND) == 1;
    GENERAL_NAMES_free(gens);
    return ok;
}

/* Checking what is on disk */

static bool lasts(X509 *x, int days)
{
    time_t t = time(NULL) + (time_t)days * 86400;

    return X509_cmp_time(X509_get0_notAfter(x), &t) > 0;
}

static bool verifies(X509 *leaf, X509 *ca, int purpose)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    bool ok = store != NULL && ctx != NULL &&
              X509_STORE_add_cert(store, ca) == 1 &&
              X509_STORE_CTX_init(ctx, store, leaf, NULL) == 1 &&
              X509_STORE_CTX_set_purpose(ctx, purpose) == 1 &&
              X509_verify_cert(ctx) == 1;

    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

static bool has_xmpp_addr(X509 *x, const char *name)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    ASN1_OBJECT *oid = OBJ_txt2obj(XMPP_ADDR_OID, 1);
    bool found = false;

    for (int i = 0; gens && oid && i < sk_GENERAL_NAME_num(gens); i++) {
        ASN1_OBJECT *o;
        ASN1_TYPE *v;
        if (GENERAL_NAME_get0_otherName(sk_GENERAL_NAME_value(gens, i), &o,
                                        &v) != 1 ||
            OBJ_cmp(o, oid) != 0 || v->type != V_ASN1_UTF8STRING)
            continue;
        found = found ||
                (ASN1_STRING_length(v->value.utf8string) == (int)strlen(name) &&
                 memcmp(ASN1_STRING_get0_data(v->value.utf8string), name,
                        strlen(name)) == 0);
    }
    ASN1_OBJECT_free(oid);
    GENERAL_NAMES_free(gens);
    return found;
}

static bool names_ok(X509 *x, const struct leaf *l)
{
    for (size_t i = 0; i < l->n_dns; i++) {
        if (X509_check_host(x, l->dns[i], 0, X509_CHECK_FLAG_NO_WILDCARDS,
                            NULL) != 1)
            return false;
    }
    for (size_t i = 0; i < l->n_xmpp; i++) {
        if (!has_xmpp_addr(x, l->xmpp[i]))
            return false;
    }
    return true;
}

/* Whether the pair on disk is what L asks for, issued by CA. */
static bool leaf_usable(const struct leaf *l,
                        X509 *ca,
                        const char *cert_path,
                        const char *key_path)
{
    X509 *x = read_cert(cert_path);
    EVP_PKEY *k = read_key(key_path);
    bool ok = x != NULL && k != NULL && X509_check_private_key(x, k) == 1 &&
              key_is(k, l->key) && lasts(x, RENEW_DAYS) &&
              verifies(x, ca, X509_PURPOSE_SSL_CLIENT) &&
              (!l->server || verifies(x, ca, X509_PURPOSE_SSL_SERVER)) &&
              names_ok(x, l);

    X509_free(x);
    EVP_PKEY_free(k);
    ERR_clear_error();
    return ok;
}

/* The CA in DIR, if the pair matches, is a CA and signed itself. */
static bool ca_load(const char *dir, X509 **cert, EVP_PKEY **key)
{
    char *cp = join(dir, "ca", ".pem"), *kp = join(dir, "ca", ".key");
    X509 *x = read_cert(cp);
    EVP_PKEY *k = read_key(kp);
    bool ok = x != NULL && k != NULL && X509_check_private_key(x, k) == 1 &&
              X509_check_ca(x) >= 1 && X509_verify(x, k) == 1;

    ic_free(cp);
    ic_free(kp);
    ERR_clear_error();
    if (!ok) {
        X509_free(x);
        EVP_PKEY_free(k);
        return false;
    }
    *cert = x;
    *key = k;
    return true;
}

/* Making the CA */

static X509 *issue_ca(EVP_PKEY *k, const char *name)
{
    X509 *x = new_cert(k, NULL, name, CA_DAYS);
    bool ok = x != NULL &&
              X509_set_issuer_name(x, X509_get_subject_name(x)) == 1 &&
              add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") &&
              add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") &&
              add_ext(x, x, NID_subject_key_identifier, "hash") &&
              X509_sign(x, k, EVP_sha256()) > 0;

    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

int ic_devcerts_make_ca(const char *dir,
                        const char *name,
                        enum ic_devcerts_key key,
                        char *why,
                        size_t why_len)
{
    char *cp, *kp;
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    int rc;

    if (dir == NULL || name == NULL || name[0] == '\0' || !key_ok(key))
        return fail(why, why_len, IC_EINVAL, "bad CA directory, name or key");
    if ((rc = ensure_dir(dir, why, why_len)) != 0)
        return rc;
    cp = join(dir, "ca", ".pem");
    kp = join(dir, "ca", ".key");
    if (ca_load(dir, &x, &k) && key_is(k, key) && lasts(x, RENEW_DAYS)) {
        IC_LOG(IC_LOG_INFO, MOD, "keeping %s", cp);
    } else {
        EVP_PKEY_free(k);
        X509_free(x);
        x = (k = new_key(key)) != NULL ? issue_ca(k, name) : NULL;
        rc = x == NULL ? fail(why, why_len, IC_EIO, "cannot make the CA")
                       : write_pair(cp, kp, x, k, why, why_len);
    }
    X509_free(x);
    EVP_PKEY_free(k);
    ic_free(cp);
    ic_free(kp);
    return rc;
}

/* Making leaves */

static X509 *
issue_leaf(const struct leaf *l, EVP_PKEY *k, X509 *ca, EVP_PKEY *ca_key)
{
    X509 *x = new_cert(k, l->ou, l->cn, LEAF_DAYS);
    const char *ku = l->server && l->key == IC_DEVCERTS_RSA2048
                         ? "critical,digitalSignature,keyEncipherment"
                         : "critical,digitalSignature";
    bool ok = x != NULL &&
              X509_set_issuer_name(x, X509_get_subject_name(ca)) == 1 &&
              add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") &&
              add_ext(x, ca, NID_key_usage, ku) &&
              add_ext(x, ca, NID_ext_key_usage,
                      l->server ? "serverAuth,clientAuth" : "clientAuth") &&
              add_ext(x, ca, NID_subject_key_identifier, "hash") &&
              add_ext(x, ca, NID_authority_key_identifier, "keyid:always") &&
              add_san(x, l) && X509_sign(x, ca_key, EVP_sha256()) > 0;

    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int make_leaf(const struct leaf *l, char *why, size_t why_len)
{
    char *cp, *kp;
    X509 *ca, *x = NULL;
    EVP_PKEY *ca_key, *k = NULL;
    int rc;

    if (!ca_load(l->ca_dir, &ca, &ca_key))
        return fail(why, why_len, IC_ECORRUPT,
                    "%s/ca.pem, ca.key: no usable CA there", l->ca_dir);
    cp = join(l->dir, l->name, ".pem");
    kp = join(l->dir, l->name, ".key");
    rc = ensure_dir(l->dir, why, why_len);
    if (rc == 0 && leaf_usable(l, ca, cp, kp)) {
        IC_LOG(IC_LOG_INFO, MOD, "keeping %s", cp);
    } else if (rc == 0) {
        k = new_key(l->key);
        x = k != NULL ? issue_leaf(l, k, ca, ca_key) : NULL;
        rc = x == NULL ? fail(why, why_len, IC_EIO, "cannot make %s", cp)
                       : write_pair(cp, kp, x, k, why, why_len);
    }
    X509_free(x);
    EVP_PKEY_free(k);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    ic_free(cp);
    ic_free(kp);
    return rc;
}

int ic_devcerts_make_node(const char *dir,
                          const char *ca_dir,
                          const char *domain,
                          int node_id,
                          enum ic_devcerts_key key,
                          char *why,
                          size_t why_len)
{
    char name[16], ou[16], service[300];
    struct leaf l = {.dir = dir,
                     .ca_dir = ca_dir,
                     .name = name,
                     .ou = ou,
                     .cn = domain,
                     .n_dns = 2,
                     .n_xmpp = 2,
                     .server = true,
                     .key = key};

    if (dir == NULL || ca_dir == NULL || domain == NULL ||
        !ic_node__dns_name_ok(domain) || strlen(domain) > 245 || node_id < 1 ||
        node_id > 255 || !key_ok(key))
        return fail(why, why_len, IC_EINVAL,
                    "bad directory, domain, node id or key");
    snprintf(name, sizeof name, "node%d", node_id);
    snprintf(ou, sizeof ou, "node %d", node_id);
    snprintf(service, sizeof service, "service.%s", domain);
    l.dns[0] = l.xmpp[0] = domain;
    l.dns[1] = l.xmpp[1] = service;
    return make_leaf(&l, why, why_len);
}

/* A bare JID "local@domain" with a sound domain and no resource. */
static bool bare_jid_ok(const char *jid)
{
    const char *at = strchr(jid, '@');

    if (at == NULL || at == jid || at - jid > 1023 || strchr(jid, '/'))
        return false;
    for (const char *p = jid; p < at; p++) {
        if ((unsigned char)*p <= ' ' || strchr("\"&':<>", *p) != NULL)
            return false;
    }
    return ic_node__dns_name_ok(at + 1);
}

int ic_devcerts_make_client(const char *dir,
                            const char *ca_dir,
                            const char *jid,
                            const char *name,
                            enum ic_devcerts_key key,
                            char *why,
                            size_t why_len)
{
    struct leaf l = {.dir = dir,
                     .ca_dir = ca_dir,
                     .name = name,
                     .cn = jid,
                     .xmpp = {jid},
                     .n_xmpp = 1,
                     .server = false,
                     .key = key};

    if (dir == NULL || ca_dir == NULL || jid == NULL || name == NULL ||
        !bare_jid_ok(jid) || name[0] == '\0' || name[0] == '.' ||
        strchr(name, '/') != NULL || !key_ok(key))
        return fail(why, why_len, IC_EINVAL,
                    "bad directory, JID, file name or key");
    return make_leaf(&l, why, why_len);
}
