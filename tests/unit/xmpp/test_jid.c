/*
 * test_jid.c - JIDs (RFC 7622): splitting at the first '/' and the first
 * '@' before it, preparation of each part (case folding of localpart and
 * domainpart, not of the resourcepart; Nameprep of non-ASCII domains),
 * empty and oversized parts, IP literals, and the string forms.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ic_xmpp.h"

/* Parses IN and checks each part (NULL: absent) and the string form. */
static void ok(const char *in,
               const char *local,
               const char *domain,
               const char *resource,
               const char *full)
{
    struct ic_jid j;
    char *s;

    if (ic_jid_parse(in, &j) != 0)
        fail_msg("\"%s\" did not parse", in);
    if (local == NULL)
        assert_null(j.local);
    else
        assert_string_equal(j.local, local);
    assert_string_equal(j.domain, domain);
    if (resource == NULL)
        assert_null(j.resource);
    else
        assert_string_equal(j.resource, resource);
    s = ic_jid_to_string(&j);
    assert_string_equal(s, full);
    ic_free(s);
    ic_jid_free(&j);
    assert_null(j.domain);
}

static void bad(const char *in)
{
    struct ic_jid j = {NULL, (char *)"untouched", NULL};

    if (ic_jid_parse(in, &j) != IC_EVALUE)
        fail_msg("\"%s\" parsed", in);
    assert_string_equal(j.domain, "untouched");
}

/* A string of N copies of C. */
static char *rep(char c, size_t n)
{
    char *s = ic_malloc(n + 1);

    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void basic(void **state)
{
    (void)state;
    ok("example.com", NULL, "example.com", NULL, "example.com");
    ok("juliet@example.com", "juliet", "example.com", NULL,
       "juliet@example.com");
    ok("juliet@example.com/foo", "juliet", "example.com", "foo",
       "juliet@example.com/foo");
    ok("example.com/foo", NULL, "example.com", "foo", "example.com/foo");
    ok("localhost", NULL, "localhost", NULL, "localhost");
}

/* RFC 7622 3.1: the resource is everything after the first '/', and may
 * hold '@' and '/'. */
static void splitting(void **state)
{
    (void)state;
    ok("juliet@example.com/foo bar", "juliet", "example.com", "foo bar",
       "juliet@example.com/foo bar");
    ok("juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar",
       "juliet@example.com/foo@bar");
    ok("juliet@example.com/foo/bar", "juliet", "example.com", "foo/bar",
       "juliet@example.com/foo/bar");
    ok("example.com/juliet@example.net", NULL, "example.com",
       "juliet@example.net", "example.com/juliet@example.net");
    ok("example.com/a@b/c", NULL, "example.com", "a@b/c", "example.com/a@b/c");
    /* the first '@' splits: "b@c" is no domain name */
    bad("a@b@c");
    bad("a@b@c/d");
}

static void splitting_resource_at(void **state)
{
    (void)state;
    ok("a/b@c", NULL, "a", "b@c", "a/b@c");
}

static void case_folding(void **state)
{
    struct ic_jid j;
    char *bare;

    (void)state;
    ok("Juliet@Example.COM/Balcony", "juliet", "example.com", "Balcony",
       "juliet@example.com/Balcony");
    assert_int_equal(ic_jid_parse("ROMEO@Montague.LIT/Orchard", &j), 0);
    bare = ic_jid_bare(&j);
    assert_string_equal(bare, "romeo@montague.lit");
    ic_free(bare);
    ic_jid_free(&j);
}

static void empty_parts(void **state)
{
    (void)state;
    bad("");
    bad("@example.com");
    bad("juliet@");
    bad("juliet@/foo");
    bad("juliet@example.com/");
    bad("example.com/");
    bad("/foo");
    bad("@");
    bad("@/");
    bad(".");
    bad("juliet@.");
}

static void length_limits(void **state)
{
    char *l1023 = rep('a', 1023), *l1024 = rep('a', 1024), *in;
    size_t n = 2 * 1024 + 64;

    (void)state;
    in = ic_malloc(n);
    snprintf(in, n, "%s@example.com/%s", l1023, l1023);
    {
        struct ic_jid j;
        assert_int_equal(ic_jid_parse(in, &j), 0);
        assert_int_equal(strlen(j.local), 1023);
        assert_int_equal(strlen(j.resource), 1023);
        ic_jid_free(&j);
    }
    snprintf(in, n, "%s@example.com", l1024);
    bad(in);
    snprintf(in, n, "example.com/%s", l1024);
    bad(in);
    /* 1024 bytes of soft hyphens prepare to "x": the limit is on the
     * prepared part */
    ic_free(l1024);
    l1024 = ic_malloc(1026);
    for (size_t i = 0; i < 1024; i += 2)
        memcpy(l1024 + i, "\xC2\xAD", 2);
    memcpy(l1024 + 1024, "x", 2);
    snprintf(in, n, "%s@example.com", l1024);
    ok(in, "x", "example.com", NULL, "x@example.com");
    /* 600 U+00DF (1200 bytes) fold to 1200 bytes of "ss": too long */
    for (size_t i = 0; i < 1024; i += 2)
        memcpy(l1024 + i, "\xC3\x9F", 2);
    l1024[1024] = '\0';
    snprintf(in, n, "%s@example.com", l1024);
    bad(in);
    /* 1000 bytes of U+00DF fold to 1000 bytes of "ss": fine */
    l1024[1000] = '\0';
    snprintf(in, n, "%s@example.com", l1024);
    {
        struct ic_jid j;
        assert_int_equal(ic_jid_parse(in, &j), 0);
        assert_int_equal(strlen(j.local), 1000);
        assert_int_equal(j.local[999], 's');
        ic_jid_free(&j);
    }
    ic_free(l1024);
    ic_free(l1023);
    ic_free(in);
}

/* A domain of N bytes: labels of 60 letters joined by dots. */
static char *domain_of(size_t n)
{
    char *s = rep('a', n);

    for (size_t i = 60; i < n; i += 61)
        s[i] = '.';
    if (s[n - 1] == '.') {
        s[n - 2] = '.';
        s[n - 1] = 'a';
    }
    return s;
}

static void long_domain(void **state)
{
    char *d1023 = domain_of(1023), *d1024 = domain_of(1024);
    char label64[80];

    (void)state;
    ok(d1023, NULL, d1023, NULL, d1023);
    bad(d1024);
    /* a label of 64 characters is no DNS label */
    memset(label64, 'a', 64);
    strcpy(label64 + 64, ".example");
    bad(label64);
    strcpy(label64 + 63, ".example");
    ok(label64, NULL, label64, NULL, label64);
    ic_free(d1023);
    ic_free(d1024);
}

static void local_prohibited(void **state)
{
    (void)state;
    bad("jul\"iet@example.com");
    bad("jul&iet@example.com");
    bad("jul'iet@example.com");
    bad("jul:iet@example.com");
    bad("jul<iet@example.com");
    bad("jul>iet@example.com");
    bad("jul iet@example.com");
    bad("juliet\x07@example.com");
    /* not UTF-8: a stray byte, a truncated sequence, an overlong '/' */
    bad("\xFF@example.com");
    bad("juliet@example.com/\xC3");
    bad("\xC0\xAF@example.com");
    bad("juliet@example.com/\xED\xA0\x80"); /* a surrogate */
    ok("ju.liet@example.com", "ju.liet", "example.com", NULL,
       "ju.liet@example.com");
    /* the localpart folds U+00DF to "ss", NFKC maps U+2168 */
    ok("stra\xC3\x9F"
       "e@example.com",
       "strasse", "example.com", NULL, "strasse@example.com");
    ok("\xE2\x85\xA8@example.com", "ix", "example.com", NULL, "ix@example.com");
}

static void resource_keeps_case(void **state)
{
    (void)state;
    ok("juliet@example.com/Stra\xC3\x9F"
       "e",
       "juliet", "example.com",
       "Stra\xC3\x9F"
       "e",
       "juliet@example.com/Stra\xC3\x9F"
       "e");
    ok("juliet@example.com/\xE2\x85\xA8", "juliet", "example.com", "IX",
       "juliet@example.com/IX");
    bad("juliet@example.com/a\x07");
}

static void domains(void **state)
{
    (void)state;
    /* one trailing dot is dropped, and only one */
    ok("juliet@example.com.", "juliet", "example.com", NULL,
       "juliet@example.com");
    ok("example.com./r", NULL, "example.com", "r", "example.com/r");
    bad("juliet@example.com..");
    bad("juliet@example..com");
    bad("juliet@.example.com");
    /* Nameprep of a non-ASCII domain: case folding and NFKC */
    ok("juliet@\xC3\x9C"
       "BER.example",
       "juliet",
       "\xC3\xBC"
       "ber.example",
       NULL,
       "juliet@\xC3\xBC"
       "ber.example");
    ok("\xE2\x85\xA8.example", NULL, "ix.example", NULL, "ix.example");
    /* U+3002 IDEOGRAPHIC FULL STOP separates labels */
    ok("example\xE3\x80\x82"
       "com",
       NULL, "example.com", NULL, "example.com");
    /* not a host name */
    bad("exa mple.com");
    bad("exa_mple.com");
    bad("-example.com");
    bad("example.com:5222");
    bad("juliet@exa<mple.com");
    bad("\xFF\xFE.example");
}

static void ip_literals(void **state)
{
    (void)state;
    ok("juliet@[::1]/r", "juliet", "[::1]", "r", "juliet@[::1]/r");
    ok("[2001:DB8::A]", NULL, "[2001:db8::a]", NULL, "[2001:db8::a]");
    ok("juliet@192.0.2.1", "juliet", "192.0.2.1", NULL, "juliet@192.0.2.1");
    bad("juliet@[::1");
    bad("juliet@[]");
    bad("juliet@[example.com]");
    bad("juliet@[192.0.2.1]");
    bad("juliet@[::1]x");
    bad("juliet@[::1%eth0]");
}

static void prep_functions(void **state)
{
    char *s;

    (void)state;
    s = ic_jid_nodeprep("Juliet");
    assert_string_equal(s, "juliet");
    ic_free(s);
    s = ic_jid_nameprep("Example.COM.");
    assert_string_equal(s, "example.com");
    ic_free(s);
    s = ic_jid_resourceprep("Balcony");
    assert_string_equal(s, "Balcony");
    ic_free(s);
    assert_null(ic_jid_nodeprep("a@b"));
    assert_null(ic_jid_nodeprep(""));
    assert_null(ic_jid_nameprep(""));
    assert_null(ic_jid_resourceprep(""));
    assert_null(ic_jid_nodeprep(NULL));
}

static void string_forms(void **state)
{
    struct ic_jid j = {NULL, (char *)"example.com", NULL};
    char *s;

    (void)state;
    s = ic_jid_bare(&j);
    assert_string_equal(s, "example.com");
    ic_free(s);
    j.local = (char *)"juliet";
    j.resource = (char *)"r";
    s = ic_jid_bare(&j);
    assert_string_equal(s, "juliet@example.com");
    ic_free(s);
    s = ic_jid_to_string(&j);
    assert_string_equal(s, "juliet@example.com/r");
    ic_free(s);
    ic_jid_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(basic),
        cmocka_unit_test(splitting),
        cmocka_unit_test(splitting_resource_at),
        cmocka_unit_test(case_folding),
        cmocka_unit_test(empty_parts),
        cmocka_unit_test(length_limits),
        cmocka_unit_test(long_domain),
        cmocka_unit_test(local_prohibited),
        cmocka_unit_test(resource_keeps_case),
        cmocka_unit_test(domains),
        cmocka_unit_test(ip_literals),
        cmocka_unit_test(prep_functions),
        cmocka_unit_test(string_forms),
    };

    return cmocka_run_group_tests_name("jid", tests, NULL, NULL);
}
