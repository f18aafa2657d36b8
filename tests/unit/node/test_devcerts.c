/*
 * test_devcerts.c - the development CA, node and client certificates
 * (node/devcerts.c), checked with OpenSSL's own verifier and the openssl
 * command line.
 */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "node_int.h"
#include "test_util.h"

#define DOMAIN "intercloudexchg.test"
#define SERVICE "service." DOMAIN
#define JID "cloud1@" DOMAIN

struct fixture {
    char dir[64];
};

static int setup(void **state)
{
    struct fixture *f = ic_calloc(1, sizeof *f);

    tu_tmpdir(f->dir, sizeof f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    tu_rmrf(f->dir);
    ic_free(f);
    return 0;
}

static X509 *load_cert(const char *dir, const char *name)
{
    char path[256];
    FILE *fp;
    X509 *x;

    tu_join(path, sizeof path, dir, name);
    fp = fopen(path, "r");
    assert_non_null(fp);
    x = PEM_read_X509(fp, NULL, NULL, NULL);
    assert_non_null(x);
    /* the file holds the certificate alone, no chain */
    assert_null(PEM_read_X509(fp, NULL, NULL, NULL));
    ERR_clear_error();
    fclose(fp);
    return x;
}

static EVP_PKEY *load_key(const char *dir, const char *name)
{
    char path[256];
    FILE *fp;
    EVP_PKEY *k;

    tu_join(path, sizeof path, dir, name);
    fp = fopen(path, "r");
    assert_non_null(fp);
    k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    assert_non_null(k);
    fclose(fp);
    return k;
}

static void assert_mode(const char *dir, const char *name, unsigned mode)
{
    char path[256];
    struct stat st;

    tu_join(path, sizeof path, dir, name);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, mode);
}

/* X509_verify_cert of LEAF against CA alone, for PURPOSE. */
static int verify(X509 *leaf, X509 *ca, int purpose)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc;

    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
    rc = X509_verify_cert(ctx);
    if (rc != 1)
        rc = -X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return rc;
}

/* The subjectAltName as "DNS:x" and "xmppAddr:x" lines, in order; other
 * kinds of names fail the test. */
static void san_text(X509 *x, char *out, size_t len)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    ASN1_OBJECT *xmpp = OBJ_txt2obj("1.3.6.1.5.5.7.8.5", 1);
    size_t n = 0;

    assert_non_null(gens);
    out[0] = '\0';
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        ASN1_OBJECT *oid;
        ASN1_TYPE *v;
        const ASN1_STRING *s;
        const char *kind = "DNS";
        if (g->type == GEN_DNS) {
            s = g->d.dNSName;
        } else {
            assert_int_equal(GENERAL_NAME_get0_otherName(g, &oid, &v), 1);
            assert_int_equal(OBJ_cmp(oid, xmpp), 0);
            assert_int_equal(v->type, V_ASN1_UTF8STRING);
            s = v->value.utf8string;
            kind = "xmppAddr";
        }
        n += (size_t)snprintf(out + n, len - n, "%s:%.*s\n", kind,
                              ASN1_STRING_length(s),
                              (const char *)ASN1_STRING_get0_data(s));
        assert_true(n < len);
    }
    ASN1_OBJECT_free(xmpp);
    GENERAL_NAMES_free(gens);
}

static void check_key(EVP_PKEY *k, enum ic_devcerts_key type)
{
    char group[64];

    if (type == IC_DEVCERTS_RSA2048) {
        assert_true(EVP_PKEY_is_a(k, "RSA"));
        assert_int_equal(EVP_PKEY_get_bits(k), 2048);
    } else {
        assert_true(EVP_PKEY_is_a(k, "EC"));
        assert_int_equal(EVP_PKEY_get_group_name(k, group, sizeof group, NULL),
                         1);
        assert_string_equal(group, "prime256v1");
    }
}

/* Days from now to X's notAfter. */
static int days_left(X509 *x)
{
    int days = 0, secs = 0;

    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)),
                     1);
    return days;
}

static void check_serial(X509 *x)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);

    assert_non_null(bn);
    assert_false(BN_is_negative(bn));
    assert_true(BN_num_bits(bn) <= 128 && BN_num_bits(bn) > 64);
    BN_free(bn);
}

static void check_ca(const char *dir, enum ic_devcerts_key type)
{
    X509 *ca = load_cert(dir, "ca.pem");
    EVP_PKEY *k = load_key(dir, "ca.key");
    int crit = -1;
    BASIC_CONSTRAINTS *bc =
        X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL);

    assert_non_null(bc);
    assert_true(bc->ca);
    assert_int_equal(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    assert_int_equal(X509_check_ca(ca), 1);
    assert_int_equal(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_non_null(X509_get0_subject_key_id(ca));
    assert_int_equal(X509_check_private_key(ca, k), 1);
    assert_int_equal(X509_verify(ca, k), 1);
    check_key(k, type);
    check_serial(ca);
    assert_true(days_left(ca) >= 3649 && days_left(ca) <= 3650);
    assert_mode(dir, "ca.key", 0600);
    assert_mode(dir, "ca.pem", 0644);
    X509_free(ca);
    EVP_PKEY_free(k);
}

static void check_node(const char *dir, enum ic_devcerts_key type)
{
    X509 *ca = load_cert(dir, "ca.pem"), *x = load_cert(dir, "node1.pem");
    EVP_PKEY *k = load_key(dir, "node1.key");
    char san[512];
    uint32_t ku = KU_DIGITAL_SIGNATURE |
                  (type == IC_DEVCERTS_RSA2048 ? KU_KEY_ENCIPHERMENT : 0);

    assert_int_equal(verify(x, ca, X509_PURPOSE_SSL_SERVER), 1);
    assert_int_equal(verify(x, ca, X509_PURPOSE_SSL_CLIENT), 1);
    assert_int_equal(X509_check_host(x, DOMAIN, 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, SERVICE, 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "other." DOMAIN, 0, 0, NULL), 0);
    san_text(x, san, sizeof san);
    assert_string_equal(san, "DNS:" DOMAIN "\nDNS:" SERVICE "\nxmppAddr:" DOMAIN
                             "\nxmppAddr:" SERVICE "\n");
    assert_int_equal(X509_get_extended_key_usage(x),
                     XKU_SSL_SERVER | XKU_SSL_CLIENT);
    assert_int_equal(X509_get_key_usage(x), ku);
    assert_int_equal(X509_check_ca(x), 0);
    assert_int_equal(X509_check_private_key(x, k), 1);
    check_key(k, type);
    check_serial(x);
    assert_true(days_left(x) >= 729 && days_left(x) <= 730);
    assert_mode(dir, "node1.key", 0600);
    X509_free(ca);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void check_client(const char *dir, enum ic_devcerts_key type)
{
    X509 *ca = load_cert(dir, "ca.pem"), *x = load_cert(dir, "cloud1.pem");
    EVP_PKEY *k = load_key(dir, "cloud1.key");
    char san[512];

    assert_int_equal(verify(x, ca, X509_PURPOSE_SSL_CLIENT), 1);
    assert_int_equal(verify(x, ca, X509_PURPOSE_SSL_SERVER),
                     -X509_V_ERR_INVALID_PURPOSE);
    san_text(x, san, sizeof san);
    assert_string_equal(san, "xmppAddr:" JID "\n");
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_check_private_key(x, k), 1);
    check_key(k, type);
    assert_mode(dir, "cloud1.key", 0600);
    X509_free(ca);
    X509_free(x);
    EVP_PKEY_free(k);
}

/* The openssl command, from the fixture's directory. */
static int openssl(const char *dir, const char *args)
{
    char cmd[512];

    snprintf(cmd, sizeof cmd, "cd '%s' && openssl %s >/dev/null 2>&1", dir,
             args);
    return system(cmd);
}

static void make_all(const char *dir, enum ic_devcerts_key type)
{
    char why[256] = "";

    if (ic_devcerts_make_ca(dir, "icroot dev CA", type, why, sizeof why) ||
        ic_devcerts_make_node(dir, dir, DOMAIN, 1, type, why, sizeof why) ||
        ic_devcerts_make_node(dir, dir, DOMAIN, 2, type, why, sizeof why) ||
        ic_devcerts_make_client(dir, dir, JID, "cloud1", type, why, sizeof why))
        fail_msg("%s", why);
}

static void check_all(const char *dir, enum ic_devcerts_key type)
{
    make_all(dir, type);
    check_ca(dir, type);
    check_node(dir, type);
    check_client(dir, type);
    assert_int_equal(openssl(dir, "verify -CAfile ca.pem node1.pem"), 0);
    assert_int_equal(
        openssl(dir, "verify -CAfile ca.pem -purpose sslserver node2.pem"), 0);
    assert_int_equal(
        openssl(dir, "verify -CAfile ca.pem -purpose sslclient cloud1.pem"), 0);
    assert_int_not_equal(
        openssl(dir, "verify -CAfile ca.pem -purpose sslserver cloud1.pem"), 0);
}

static void t_rsa(void **state)
{
    struct fixture *f = *state;

    check_all(f->dir, IC_DEVCERTS_RSA2048);
}

static void t_ec(void **state)
{
    struct fixture *f = *state;

    check_all(f->dir, IC_DEVCERTS_EC_P256);
}

static char *slurp(const char *dir, const char *name)
{
    char path[256];

    tu_join(path, sizeof path, dir, name);
    return tu_read_file(path, NULL);
}

/* Whether NAME still holds OLD (which is freed). */
static bool same(const char *dir, const char *name, char *old)
{
    char *now = slurp(dir, name);
    bool eq = strcmp(now, old) == 0;

    ic_free(now);
    ic_free(old);
    return eq;
}

/* A second run keeps good files and replaces what is not. */
static void t_rerun(void **state)
{
    struct fixture *f = *state;
    char *ca, *n1, *n2, *cl, path[256];

    make_all(f->dir, IC_DEVCERTS_EC_P256);
    ca = slurp(f->dir, "ca.pem");
    n1 = slurp(f->dir, "node1.pem");
    n2 = slurp(f->dir, "node2.key");
    cl = slurp(f->dir, "cloud1.pem");
    make_all(f->dir, IC_DEVCERTS_EC_P256);
    assert_true(same(f->dir, "ca.pem", ca));
    assert_true(same(f->dir, "node1.pem", n1));
    assert_true(same(f->dir, "node2.key", n2));
    assert_true(same(f->dir, "cloud1.pem", cl));

    /* node 1's key replaced by another: a new pair for node 1 only */
    tu_join(path, sizeof path, f->dir, "node2.key");
    n2 = tu_read_file(path, NULL);
    tu_join(path, sizeof path, f->dir, "node1.key");
    tu_write_file(path, n2, strlen(n2));
    ic_free(n2);
    n1 = slurp(f->dir, "node1.pem");
    n2 = slurp(f->dir, "node2.pem");
    make_all(f->dir, IC_DEVCERTS_EC_P256);
    assert_false(same(f->dir, "node1.pem", n1));
    assert_true(same(f->dir, "node2.pem", n2));
    check_node(f->dir, IC_DEVCERTS_EC_P256);

    /* another key type: a new CA, and every leaf issued again by it */
    ca = slurp(f->dir, "ca.pem");
    n2 = slurp(f->dir, "node2.pem");
    make_all(f->dir, IC_DEVCERTS_RSA2048);
    assert_false(same(f->dir, "ca.pem", ca));
    assert_false(same(f->dir, "node2.pem", n2));
    check_ca(f->dir, IC_DEVCERTS_RSA2048);
    check_node(f->dir, IC_DEVCERTS_RSA2048);
    check_client(f->dir, IC_DEVCERTS_RSA2048);
}

/* Node certificates for another domain replace the old ones. */
static void t_new_domain(void **state)
{
    struct fixture *f = *state;
    X509 *x;

    make_all(f->dir, IC_DEVCERTS_EC_P256);
    assert_int_equal(ic_devcerts_make_node(f->dir, f->dir, "exch.example", 1,
                                           IC_DEVCERTS_EC_P256, NULL, 0),
                     0);
    x = load_cert(f->dir, "node1.pem");
    assert_int_equal(X509_check_host(x, "service.exch.example", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, DOMAIN, 0, 0, NULL), 0);
    X509_free(x);
}

static void t_bad_arguments(void **state)
{
    struct fixture *f = *state;
    enum ic_devcerts_key k = IC_DEVCERTS_RSA2048, bad = 7;
    char why[256] = "";

    assert_int_equal(
        ic_devcerts_make_node(f->dir, f->dir, DOMAIN, 1, k, why, sizeof why),
        IC_ECORRUPT);
    assert_non_null(strstr(why, "no usable CA"));
    assert_int_equal(ic_devcerts_make_ca(f->dir, "", k, NULL, 0), IC_EINVAL);
    assert_int_equal(ic_devcerts_make_ca(f->dir, "x", bad, NULL, 0), IC_EINVAL);
    assert_int_equal(
        ic_devcerts_make_node(f->dir, f->dir, "bad domain", 1, k, NULL, 0),
        IC_EINVAL);
    assert_int_equal(
        ic_devcerts_make_node(f->dir, f->dir, DOMAIN, 0, k, NULL, 0),
        IC_EINVAL);
    assert_int_equal(
        ic_devcerts_make_client(f->dir, f->dir, "nodomain", "c", k, NULL, 0),
        IC_EINVAL);
    assert_int_equal(
        ic_devcerts_make_client(f->dir, f->dir, JID "/res", "c", k, NULL, 0),
        IC_EINVAL);
    assert_int_equal(
        ic_devcerts_make_client(f->dir, f->dir, JID, "../c", k, NULL, 0),
        IC_EINVAL);
    assert_int_equal(ic_devcerts_key_parse("ec", &k), 0);
    assert_int_equal(k, IC_DEVCERTS_EC_P256);
    assert_int_equal(ic_devcerts_key_parse("rsa2048", &k), 0);
    assert_int_equal(k, IC_DEVCERTS_RSA2048);
    assert_int_equal(ic_devcerts_key_parse("dsa", &k), IC_EINVAL);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(t_rsa, setup, teardown),
        cmocka_unit_test_setup_teardown(t_ec, setup, teardown),
        cmocka_unit_test_setup_teardown(t_rerun, setup, teardown),
        cmocka_unit_test_setup_teardown(t_new_domain, setup, teardown),
        cmocka_unit_test_setup_teardown(t_bad_arguments, setup, teardown),
    };

    (void)argc, (void)argv;
    ic_log_set_level(IC_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
