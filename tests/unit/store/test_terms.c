/* The binary triple form (store/terms.c): a graph replaced from it holds
 * what the same triples parsed from N-Triples hold; what a graph holds
 * comes back out of it; a document cut or damaged anywhere is refused
 * with a message and leaves the store as it was. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "test_util.h"

#define G_NT "urn:g:nt"
#define G_BIN "urn:g:bin"

/* The same statements as terms and as N-Triples: every kind of term, and
 * strings N-Triples must escape. */
static void sample(struct ic_store_terms *w, const char **nt)
{
    struct ic_term s = ic_term_iri("xmpp:cloud1@example.org"),
                   frag = ic_term_iri("xmpp:cloud1@example.org#disk"),
                   p1 = ic_term_iri("urn:p:name"), p2 = ic_term_iri("urn:p:n"),
                   p3 = ic_term_iri("urn:p:label"), p4 = ic_term_iri("urn:p:b"),
                   b = {IC_TERM_BLANK, "x1", 2, NULL, NULL},
                   plain = ic_term_literal("eu \"central\"\n\ttab \\ é", NULL),
                   typed = ic_term_literal("5", IC_XSD "integer"),
                   lang = {IC_TERM_LITERAL, "Wolke", 5, NULL, "de"};

    assert_int_equal(ic_store_terms_put(w, &s, &p1, &plain), 0);
    assert_int_equal(ic_store_terms_put(w, &s, &p2, &typed), 0);
    assert_int_equal(ic_store_terms_put(w, &frag, &p3, &lang), 0);
    assert_int_equal(ic_store_terms_put(w, &s, &p4, &b), 0);
    assert_int_equal(ic_store_terms_put(w, &b, &p3, &plain), 0);
    assert_int_equal(ic_store_terms_end(w), 0);
    *nt = "<xmpp:cloud1@example.org> <urn:p:name> "
          "\"eu \\\"central\\\"\\n\\ttab \\\\ é\" .\n"
          "<xmpp:cloud1@example.org> <urn:p:n> "
          "\"5\"^^<http://www.w3.org/2001/XMLSchema#integer> .\n"
          "<xmpp:cloud1@example.org#disk> <urn:p:label> \"Wolke\"@de .\n"
          "<xmpp:cloud1@example.org> <urn:p:b> _:x1 .\n"
          "_:x1 <urn:p:label> \"eu \\\"central\\\"\\n\\ttab \\\\ é\" .\n";
}

/* Graph G's dump, its graph name dropped (N-Triples), lines sorted, blank
 * labels cut to "_:" (each replace scopes them its own way). */
static char *graph_text(struct ic_store *st, const char *g)
{
    char *d = tu_dump(st, g, IC_RDF_NTRIPLES), *sorted;

    for (char *p = strstr(d, "_:"); p != NULL; p = strstr(p + 2, "_:")) {
        size_t n = strcspn(p + 2, " \n");
        memmove(p + 2, p + 2 + n, strlen(p + 2 + n) + 1);
    }
    sorted = tu_sorted_lines(d);
    free(d);
    return sorted;
}

static int replace(struct ic_store *st,
                   const char *g,
                   const void *doc,
                   size_t len,
                   struct ic_load_result *res)
{
    struct ic_txn *t;
    int rc;

    assert_int_equal(ic_store_txn_begin(st, true, &t), 0);
    rc = ic_store_terms_replace(t, g, doc, len, res);
    if (rc == 0)
        assert_int_equal(ic_store_txn_commit(t), 0);
    else
        ic_store_txn_abort(t);
    return rc;
}

static void test_same_as_ntriples(void **state)
{
    struct tu_fx *f = *state;
    struct ic_store_terms w = {0}, back = {0};
    struct ic_load_opts o = {0};
    struct ic_load_result res;
    struct ic_txn *t;
    const char *nt;
    char *a, *b;

    sample(&w, &nt);
    o.syntax = IC_RDF_NTRIPLES;
    o.graph = G_NT;
    o.replace = true;
    assert_int_equal(ic_store_txn_begin(f->st, true, &t), 0);
    assert_int_equal(ic_store_load_buffer(t, nt, strlen(nt), &o, &res), 0);
    assert_int_equal(ic_store_txn_commit(t), 0);
    assert_int_equal(replace(f->st, G_BIN, w.buf, w.len, &res), 0);
    assert_int_equal(res.quads, 5);
    a = graph_text(f->st, G_NT);
    b = graph_text(f->st, G_BIN);
    assert_string_equal(a, b);
    free(b);

    /* out of the graph and in again: the same graph, nothing rewritten */
    assert_int_equal(ic_store_txn_begin(f->st, false, &t), 0);
    assert_int_equal(ic_store_graph_terms(t, G_BIN, &back), 0);
    ic_store_txn_abort(t);
    assert_int_equal(ic_store_terms_end(&back), 0);
    assert_int_equal(replace(f->st, G_BIN, back.buf, back.len, &res), 0);
    b = graph_text(f->st, G_BIN);
    assert_string_equal(a, b);
    free(a);
    free(b);

    /* an unknown graph has no triples; an empty document empties one */
    ic_store_terms_free(&back);
    assert_int_equal(ic_store_txn_begin(f->st, false, &t), 0);
    assert_int_equal(ic_store_graph_terms(t, "urn:g:none", &back), 0);
    ic_store_txn_abort(t);
    assert_int_equal(ic_store_terms_end(&back), 0);
    assert_int_equal(back.len, 0);
    assert_int_equal(replace(f->st, G_BIN, NULL, 0, &res), 0);
    b = tu_dump(f->st, G_BIN, IC_RDF_NTRIPLES);
    assert_string_equal(b, "");
    free(b);
    ic_store_terms_free(&w);
}

/* A replace touches only what differs: one value changed is one quad
 * removed and one added. */
static void test_replace_changes_only_the_difference(void **state)
{
    struct tu_fx *f = *state;
    struct ic_store_terms w = {0};
    struct ic_term s = ic_term_iri("urn:s"), p = ic_term_iri("urn:p");
    struct ic_store_stats before, after;
    struct ic_load_result res;
    char v[16];

    for (int i = 0; i < 20; i++) {
        snprintf(v, sizeof v, "v%d", i);
        struct ic_term o = ic_term_literal(v, NULL);
        assert_int_equal(ic_store_terms_put(&w, &s, &p, &o), 0);
    }
    assert_int_equal(ic_store_terms_end(&w), 0);
    assert_int_equal(replace(f->st, G_BIN, w.buf, w.len, &res), 0);
    tu_stats(f->st, &before);
    for (int i = 0; i < 20; i++) {
        snprintf(v, sizeof v, "v%d", i == 7 ? 99 : i);
        struct ic_term o = ic_term_literal(v, NULL);
        assert_int_equal(ic_store_terms_put(&w, &s, &p, &o), 0);
    }
    assert_int_equal(ic_store_terms_end(&w), 0);
    assert_int_equal(replace(f->st, G_BIN, w.buf, w.len, &res), 0);
    tu_stats(f->st, &after);
    assert_int_equal(after.quads, before.quads);
    char *d = tu_dump(f->st, G_BIN, IC_RDF_NTRIPLES);
    assert_non_null(strstr(d, "\"v99\""));
    assert_null(strstr(d, "\"v7\""));
    free(d);
    ic_store_terms_free(&w);
}

/* What the writer refuses: nothing is appended. */
/* The layout as terms.c documents it, written by hand: seven terms (a
 * typed literal naming its datatype by index, a language-tagged literal,
 * a blank node, front coding of "urn:q" on "urn:p"), two triples. */
static void test_documented_layout(void **state)
{
    static const unsigned char doc[] =
        "\1\7"
        "\4\0\1"
        "5\3"
        "\5\0\5Wolke\2de"
        "\2\0\2b1"
        "\1\0\50http://www.w3.org/2001/XMLSchema#integer"
        "\1\0\5urn:p"
        "\1\4\1q"
        "\1\0\27xmpp:cloud1@example.org"
        "\2"
        "\6\4\0"
        "\2\5\1";
    struct tu_fx *f = *state;
    struct ic_load_result res;
    char *d;

    assert_int_equal(replace(f->st, G_BIN, doc, sizeof doc - 1, &res), 0);
    assert_int_equal(res.quads, 2);
    d = graph_text(f->st, G_BIN);
    assert_string_equal(d,
                        "<xmpp:cloud1@example.org> <urn:p> "
                        "\"5\"^^<http://www.w3.org/2001/XMLSchema#integer> .\n"
                        "_: <urn:q> \"Wolke\"@de .\n");
    free(d);
}

static int occurrences(const struct ic_store_terms *w, const char *needle)
{
    size_t n = strlen(needle);
    int count = 0;

    for (size_t i = 0; i + n <= w->len; i++)
        count += memcmp(w->buf + i, needle, n) == 0;
    return count;
}

/* The form is compact: a cloud's description (one subject, predicates of
 * one namespace, a datatype used often) takes under half of its N-Triples,
 * and a term used many times is one table entry. */
static void test_compact(void **state)
{
    static const char *const names[] = {"availabilityQuantity",
                                        "replicationFactor",
                                        "tierCountries",
                                        "region",
                                        "jurisdiction",
                                        "StorageReplicationMethod",
                                        "StorageReplicationProtocol",
                                        "InterCloudStorageAccess",
                                        "maxPrice",
                                        "currency",
                                        "cores",
                                        "memory",
                                        "storageSize"};
    struct ic_store_terms w = {0};
    struct ic_term s = ic_term_iri("xmpp:bench17@intercloud.example");
    size_t nt = 0;
    char iri[128], val[16];

    (void)state;
    for (size_t i = 0; i < IC_ARRAY_LEN(names); i++) {
        snprintf(iri, sizeof iri, "http://www.csp/resOntology#%s", names[i]);
        snprintf(val, sizeof val, "%zu", 1000 + i);
        struct ic_term p = ic_term_iri(iri),
                       o = ic_term_literal(val, IC_XSD "integer");
        assert_int_equal(ic_store_terms_put(&w, &s, &p, &o), 0);
        nt += 2 + s.len + 3 + strlen(iri) + 3 + strlen(val) + 4 +
              strlen(IC_XSD "integer") + 4;
    }
    assert_int_equal(ic_store_terms_end(&w), 0);
    assert_true(w.len * 2 < nt);
    assert_int_equal(occurrences(&w, s.value), 1);
    assert_int_equal(occurrences(&w, "integer"), 1);
    ic_store_terms_free(&w);
}

static void test_put_refusals(void **state)
{
    struct ic_store_terms w = {0};
    struct ic_term iri = ic_term_iri("urn:x"), lit = ic_term_literal("x", NULL),
                   blank = {IC_TERM_BLANK, "b", 1, NULL, NULL},
                   nul = {IC_TERM_LITERAL, "a\0b", 3, NULL, NULL},
                   empty_lang = {IC_TERM_LITERAL, "a", 1, NULL, ""};

    (void)state;
    assert_int_equal(ic_store_terms_put(&w, &lit, &iri, &iri), IC_EINVAL);
    assert_int_equal(ic_store_terms_put(&w, &iri, &blank, &iri), IC_EINVAL);
    assert_int_equal(ic_store_terms_put(&w, &iri, &iri, &nul), IC_EINVAL);
    assert_int_equal(ic_store_terms_put(&w, &iri, &iri, &empty_lang),
                     IC_EINVAL);
    assert_int_equal(ic_store_terms_end(&w), 0);
    assert_int_equal(w.len, 0); /* no triple */
    assert_int_equal(ic_store_terms_put(&w, &blank, &iri, &lit), 0);
    assert_int_equal(ic_store_terms_end(&w), 0);
    assert_int_not_equal(w.len, 0);
    ic_store_terms_free(&w);
}

/* Every prefix of a document is refused (it says how many terms and
 * triples follow), and every single byte changed is refused or decodes to
 * other valid triples; a refusal says where and the store is as it
 * was. */
static void test_damaged_documents(void **state)
{
    struct tu_fx *f = *state;
    struct ic_store_terms w = {0};
    struct ic_store_stats before, after;
    struct ic_load_result res;
    unsigned char *copy;
    const char *nt;

    sample(&w, &nt);
    tu_stats(f->st, &before);
    for (size_t cut = 1; cut < w.len; cut++) {
        int rc = replace(f->st, "urn:g:cut", w.buf, cut, &res);
        assert_int_equal(rc, IC_ESYNTAX);
        assert_non_null(strstr(res.error, "malformed at byte"));
    }
    tu_stats(f->st, &after);
    assert_int_equal(after.quads, before.quads);

    copy = ic_malloc(w.len);
    for (size_t i = 0; i < w.len; i++) {
        static const unsigned char vals[] = {0x00, 0x06, 0xff, 'a'};
        for (size_t k = 0; k < sizeof vals; k++) {
            int rc;
            memcpy(copy, w.buf, w.len);
            if (copy[i] == vals[k])
                continue;
            copy[i] = vals[k];
            rc = replace(f->st, "urn:g:bad", copy, w.len, &res);
            assert_true(rc == 0 || rc == IC_ESYNTAX);
            if (rc != 0)
                assert_non_null(strstr(res.error, "malformed"));
        }
    }
    ic_free(copy);
    ic_store_terms_free(&w);
}

/* The term hash keys the dictionary on disk (hash2id): its values may
 * never change within a format version, whatever the host or the code's
 * shape. These are the values of the first implementation (a byte loop). */
static void test_hash_is_stable(void **state)
{
    static const char *in[] = {"",
                               "a",
                               "abcdefg",
                               "abcdefgh",
                               "abcdefghi",
                               "http://www.csp/resOntology#maxPrice",
                               "0.01234\x01xyz",
                               "\xff\xfe\x80\x7f"
                               "0123456789abcdef"};
    static const uint64_t want[] = {
        0x9ca066f1a4ab2eeaULL, 0x3e6a772212b527ddULL, 0x03420dd068e98c3bULL,
        0xec025f0842db83d9ULL, 0xab5118e39574f62fULL, 0xd8185e04dce1498fULL,
        0xf6479e49c17c4449ULL, 0xa95c875b3af3f9e5ULL};
    char buf[64];

    (void)state;
    for (size_t i = 0; i < IC_ARRAY_LEN(in); i++) {
        size_t n = strlen(in[i]);
        assert_true(ic_store__hash(in[i], n) == want[i]);
        /* not only from an aligned address */
        memcpy(buf + 1, in[i], n);
        assert_true(ic_store__hash(buf + 1, n) == want[i]);
    }
}

/* A numeric literal's value, which orders it in the dictionary, is what
 * strtold says, to the sign of zero, whether or not it takes the integer
 * shortcut. */
static void test_numeric_value_as_strtold(void **state)
{
    static const char *in[] = {"0",
                               "-0",
                               "+0",
                               "7",
                               "007",
                               "-5",
                               "+42",
                               "4096",
                               "1024000",
                               "123456789012345678",
                               "-999999999999999999",
                               "1234567890123456789",
                               "99.99",
                               "0.01234",
                               "-0.0",
                               "5.",
                               ".5"};
    const char *xsd_decimal = "http://www.w3.org/2001/XMLSchema#decimal";

    (void)state;
    for (size_t i = 0; i < IC_ARRAY_LEN(in); i++) {
        uint64_t tag;
        long double v, want = strtold(in[i], NULL);
        assert_int_equal(ic_store__ordered_value(in[i], xsd_decimal, &tag, &v),
                         0);
        if (v != want || signbit(v) != signbit(want))
            fail_msg("%s: %Lg, strtold %Lg", in[i], v, want);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_as_ntriples, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_replace_changes_only_the_difference, tu_fx_setup,
            tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_documented_layout, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test(test_put_refusals),
        cmocka_unit_test(test_hash_is_stable),
        cmocka_unit_test(test_numeric_value_as_strtold),
        cmocka_unit_test(test_compact),
        cmocka_unit_test_setup_teardown(test_damaged_documents, tu_fx_setup,
                                        tu_fx_teardown),
    };
    return tu_main(argc, argv, "terms", tests, IC_ARRAY_LEN(tests));
}
