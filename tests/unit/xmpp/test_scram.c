/*
 * test_scram.c - SCRAM credentials: the keys of the RFC 5802 and RFC 7677
 * test vectors (computed independently with Python's hashlib), random
 * salts, the iteration floor, password checks, SASLprep of passwords
 * (RFC 4013 section 3 examples), and the strict base64 SCRAM and SASL
 * data travel in (RFC 4648 section 10 vectors).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ic_xmpp.h"
#include "sasl.h"

static void assert_hex(const unsigned char *p, size_t n, const char *hex)
{
    char buf[2 * IC_SCRAM_MAX_HASH + 1];

    assert_true(n <= IC_SCRAM_MAX_HASH);
    for (size_t i = 0; i < n; i++)
        snprintf(buf + 2 * i, 3, "%02x", p[i]);
    buf[2 * n] = '\0';
    assert_string_equal(buf, hex);
}

static void derive_b64(enum ic_scram_hash h,
                       const char *password,
                       const char *salt64,
                       struct ic_scram_creds *c)
{
    unsigned char *salt;
    size_t salt_len;

    assert_int_equal(ic_base64_decode(salt64, strlen(salt64), &salt, &salt_len),
                     0);
    assert_int_equal(
        ic_scram_creds_derive(h, password, salt, salt_len, 4096, c), 0);
    assert_int_equal(c->salt_len, salt_len);
    assert_memory_equal(c->salt, salt, salt_len);
    assert_int_equal(c->iterations, 4096);
    ic_free(salt);
}

static void hash_len(void **state)
{
    (void)state;
    assert_int_equal(ic_scram_hash_len(IC_SCRAM_SHA1), 20);
    assert_int_equal(ic_scram_hash_len(IC_SCRAM_SHA256), 32);
}

/* RFC 5802 section 5: user "user", password "pencil". */
static void rfc5802_keys(void **state)
{
    struct ic_scram_creds c;

    (void)state;
    derive_b64(IC_SCRAM_SHA1, "pencil", "QSXCR+Q6sek8bf92", &c);
    assert_hex(c.stored_key, 20, "e9d94660c39d65c38fbad91c358f14da0eef2bd6");
    assert_hex(c.server_key, 20, "0fe09258b3ac852ba502cc62ba903eaacdbf7d31");
}

/* RFC 7677 section 3. */
static void rfc7677_keys(void **state)
{
    struct ic_scram_creds c;

    (void)state;
    derive_b64(IC_SCRAM_SHA256, "pencil", "W22ZaJ0SNY7soEsUEjb6gQ==", &c);
    assert_hex(c.stored_key, 32,
               "586e5df283e6dceb5c3e791d8b8528ec191e664045ce971792e2e6b5bb13e2"
               "a6");
    assert_hex(c.server_key, 32,
               "c1f3cbc1c13a9d35a14c0990eed97629ea225863e566a4314ab99f3f00e5d9"
               "d5");
}

static void make_random_salt(void **state)
{
    struct ic_scram_creds a, b;

    (void)state;
    assert_int_equal(ic_scram_creds_make(IC_SCRAM_SHA256, "secret", 4096, &a),
                     0);
    assert_int_equal(ic_scram_creds_make(IC_SCRAM_SHA256, "secret", 4096, &b),
                     0);
    assert_int_equal(a.salt_len, 16);
    assert_int_equal(b.salt_len, 16);
    assert_int_equal(a.iterations, 4096);
    assert_memory_not_equal(a.salt, b.salt, 16);
    assert_memory_not_equal(a.stored_key, b.stored_key, 32);
    assert_true(ic_scram_check_password(IC_SCRAM_SHA256, &a, "secret"));
    assert_true(ic_scram_check_password(IC_SCRAM_SHA256, &b, "secret"));
    assert_false(ic_scram_check_password(IC_SCRAM_SHA256, &a, "Secret"));
    assert_false(ic_scram_check_password(IC_SCRAM_SHA256, &a, "secret "));
    assert_false(ic_scram_check_password(IC_SCRAM_SHA256, &a, ""));
}

static void make_sha1(void **state)
{
    struct ic_scram_creds c;

    (void)state;
    assert_int_equal(ic_scram_creds_make(IC_SCRAM_SHA1, "pencil", 5000, &c), 0);
    assert_int_equal(c.iterations, 5000);
    assert_true(ic_scram_check_password(IC_SCRAM_SHA1, &c, "pencil"));
    assert_false(ic_scram_check_password(IC_SCRAM_SHA1, &c, "pencil2"));
}

static void refuse_weak(void **state)
{
    struct ic_scram_creds c;

    (void)state;
    memset(&c, 0xAA, sizeof c);
    assert_int_equal(ic_scram_creds_make(IC_SCRAM_SHA256, "pw", 4095, &c),
                     IC_EINVAL);
    assert_int_equal(ic_scram_creds_make(IC_SCRAM_SHA256, "pw", 0, &c),
                     IC_EINVAL);
    assert_int_equal(ic_scram_creds_make(IC_SCRAM_SHA256, "", 4096, &c),
                     IC_EINVAL);
    assert_int_equal(ic_scram_creds_make((enum ic_scram_hash)7, "pw", 4096, &c),
                     IC_EINVAL);
    /* nothing written on failure */
    assert_int_equal(c.salt[0], 0xAA);
    assert_int_equal(c.iterations, 0xAAAAAAAAu);
}

static void check_rejects_bad_creds(void **state)
{
    struct ic_scram_creds c;

    (void)state;
    derive_b64(IC_SCRAM_SHA1, "pencil", "QSXCR+Q6sek8bf92", &c);
    assert_true(ic_scram_check_password(IC_SCRAM_SHA1, &c, "pencil"));
    /* the same keys checked as SHA-256 do not match */
    assert_false(ic_scram_check_password(IC_SCRAM_SHA256, &c, "pencil"));
    c.iterations = 0;
    assert_false(ic_scram_check_password(IC_SCRAM_SHA1, &c, "pencil"));
    c.iterations = 4096;
    c.salt_len = 0;
    assert_false(ic_scram_check_password(IC_SCRAM_SHA1, &c, "pencil"));
    c.salt_len = 33;
    assert_false(ic_scram_check_password(IC_SCRAM_SHA1, &c, "pencil"));
}

static void same_keys(const char *a, const char *b, bool equal)
{
    static const unsigned char salt[] = "0123456789abcdef";
    struct ic_scram_creds ca, cb;

    assert_int_equal(
        ic_scram_creds_derive(IC_SCRAM_SHA256, a, salt, 16, 4096, &ca), 0);
    assert_int_equal(
        ic_scram_creds_derive(IC_SCRAM_SHA256, b, salt, 16, 4096, &cb), 0);
    if (equal)
        assert_memory_equal(ca.stored_key, cb.stored_key, 32);
    else
        assert_memory_not_equal(ca.stored_key, cb.stored_key, 32);
}

static void derive_fails(const char *password)
{
    static const unsigned char salt[] = "0123456789abcdef";
    struct ic_scram_creds c;

    assert_int_equal(
        ic_scram_creds_derive(IC_SCRAM_SHA256, password, salt, 16, 4096, &c),
        IC_EINVAL);
}

/* RFC 4013 section 3, and the checks built on them. */
static void saslprep(void **state)
{
    struct ic_scram_creds c;
    static const unsigned char salt[] = "0123456789abcdef";

    (void)state;
    same_keys("I\xC2\xADX", "IX", true);   /* SOFT HYPHEN mapped to nothing */
    same_keys("user", "user", true);       /* no transformation */
    same_keys("USER", "user", false);      /* case preserved */
    same_keys("\xC2\xAA", "a", true);      /* U+00AA: NFKC */
    same_keys("\xE2\x85\xA8", "IX", true); /* U+2168: NFKC */
    same_keys("a\xC2\xA0"
              "b",
              "a b", true); /* NO-BREAK SPACE to space */
    derive_fails("\x07");   /* prohibited */
    derive_fails("\xD8\xA7"
                 "1");        /* bidi check */
    derive_fails("\xC2\xAD"); /* empty after mapping */
    derive_fails("\xFF\xFE"); /* not UTF-8 */
    derive_fails("");

    assert_int_equal(
        ic_scram_creds_derive(IC_SCRAM_SHA256, "IX", salt, 16, 4096, &c), 0);
    assert_true(ic_scram_check_password(IC_SCRAM_SHA256, &c, "I\xC2\xADX"));
    assert_true(ic_scram_check_password(IC_SCRAM_SHA256, &c, "\xE2\x85\xA8"));
    assert_false(ic_scram_check_password(IC_SCRAM_SHA256, &c, "ix"));
}

static void derive_args(void **state)
{
    static const unsigned char salt[33] = {0};
    struct ic_scram_creds c;

    (void)state;
    assert_int_equal(
        ic_scram_creds_derive(IC_SCRAM_SHA256, "pw", salt, 0, 4096, &c),
        IC_EINVAL);
    assert_int_equal(
        ic_scram_creds_derive(IC_SCRAM_SHA256, "pw", salt, 33, 4096, &c),
        IC_EINVAL);
    assert_int_equal(
        ic_scram_creds_derive(IC_SCRAM_SHA256, "pw", salt, 32, 0, &c),
        IC_EINVAL);
    assert_int_equal(
        ic_scram_creds_derive(IC_SCRAM_SHA256, NULL, salt, 16, 4096, &c),
        IC_EINVAL);
    assert_int_equal(
        ic_scram_creds_derive(IC_SCRAM_SHA256, "pw", salt, 32, 4096, &c), 0);
    assert_int_equal(c.salt_len, 32);
}

static void b64_ok(const char *data, const char *enc)
{
    char *e = ic_base64_encode((const unsigned char *)data, strlen(data));
    unsigned char *d;
    size_t len;

    assert_string_equal(e, enc);
    ic_free(e);
    assert_int_equal(ic_base64_decode(enc, strlen(enc), &d, &len), 0);
    assert_int_equal(len, strlen(data));
    assert_memory_equal(d, data, len);
    assert_int_equal(d[len], 0);
    ic_free(d);
}

static void b64_bad(const char *enc, size_t len)
{
    unsigned char *d = (unsigned char *)"untouched";
    size_t n = 99;

    if (ic_base64_decode(enc, len, &d, &n) != IC_EVALUE)
        fail_msg("\"%s\" decoded", enc);
    assert_int_equal(n, 99);
}

static void base64(void **state)
{
    unsigned char *d;
    size_t len;
    char *e;
    static const unsigned char bin[] = {0x00, 0xff, 0xfe, 0x3e, 0x3f};

    (void)state;
    /* RFC 4648 section 10 */
    b64_ok("f", "Zg==");
    b64_ok("fo", "Zm8=");
    b64_ok("foo", "Zm9v");
    b64_ok("foob", "Zm9vYg==");
    b64_ok("fooba", "Zm9vYmE=");
    b64_ok("foobar", "Zm9vYmFy");
    e = ic_base64_encode(bin, sizeof bin);
    assert_string_equal(e, "AP/+Pj8=");
    ic_free(e);
    /* empty data is "=" on the wire; "" decodes as well */
    e = ic_base64_encode(NULL, 0);
    assert_string_equal(e, "=");
    ic_free(e);
    assert_int_equal(ic_base64_decode("=", 1, &d, &len), 0);
    assert_int_equal(len, 0);
    ic_free(d);
    assert_int_equal(ic_base64_decode("", 0, &d, &len), 0);
    assert_int_equal(len, 0);
    ic_free(d);

    b64_bad("Zg=", 3);
    b64_bad("Zg", 2);
    b64_bad("Z===", 4);
    b64_bad("====", 4);
    b64_bad("==", 2);
    b64_bad("Zh==", 4); /* bits under the padding */
    b64_bad("Zm9=", 4);
    b64_bad(" Zg==", 5);
    b64_bad("Zg== ", 5);
    b64_bad("Zg==\n", 5);
    b64_bad("Zm9v\nYmFy", 9);
    b64_bad("Zm9v YmFy", 9);
    b64_bad("Zm9v!mFy", 8);
    b64_bad("Zm=v", 4);
    b64_bad("Zg==Zg==", 8);
    b64_bad("Zm9vYmFy=", 9);
    b64_bad("Zm9-YmFy", 8); /* base64url */
    b64_bad("Zm9_YmFy", 8);
    b64_bad("Zm9v\0mFy", 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hash_len),
        cmocka_unit_test(rfc5802_keys),
        cmocka_unit_test(rfc7677_keys),
        cmocka_unit_test(make_random_salt),
        cmocka_unit_test(make_sha1),
        cmocka_unit_test(refuse_weak),
        cmocka_unit_test(check_rejects_bad_creds),
        cmocka_unit_test(saslprep),
        cmocka_unit_test(derive_args),
        cmocka_unit_test(base64),
    };

    return cmocka_run_group_tests_name("scram", tests, NULL, NULL);
}
