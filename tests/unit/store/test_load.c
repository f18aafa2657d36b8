/*
 * test_load.c - RDF import and export: Turtle, TriG, N-Quads; syntax
 * errors leave the store as it was; graph replacement and merging; blank
 * node scoping; dump round trips; a full map; a load killed mid-way.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ic_node.h"
#include "store_int.h"
#include "test_util.h"

#define PFX                                         \
    "@prefix ic: <http://www.csp/resOntology#> .\n" \
    "@prefix ex: <http://ex/> .\n"                  \
    "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"

#define CX "xmpp:cloudx@intercloudexchg.test"
#define ICNS "http://www.csp/resOntology#"

static void write_text(
    struct tu_fx *f, const char *name, const char *text, char *path, size_t len)
{
    tu_join(path, len, f->dir, name);
    tu_write_file(path, text, strlen(text));
}

static void check_seed(struct ic_store *st)
{
    tu_assert_match(st, tu_seed_query, 5, "cloud2,cloud5");
}

/* Loads TEXT with explicit options in one transaction. */
static int load_opts(struct ic_store *st,
                     const char *text,
                     const struct ic_load_opts *o,
                     struct ic_load_result *res)
{
    struct ic_txn *txn;
    int rc;

    assert_int_equal(ic_store_txn_begin(st, true, &txn), 0);
    rc = ic_store_load_buffer(txn, text, strlen(text), o, res);
    if (rc != 0) {
        ic_store_txn_abort(txn);
        return rc;
    }
    return ic_store_txn_commit(txn);
}

static void test_load_ontology(void **state)
{
    struct tu_fx *f = *state;
    struct ic_store_stats st;
    struct ic_load_result res;
    uint64_t total = 0;
    const char *files[] = {TU_ONTOLOGY "/constraints.ttl",
                           TU_ONTOLOGY "/intercloud.ttl",
                           TU_ONTOLOGY "/sample-catalog.ttl"};
    const uint64_t graphs[] = {1, 1, 8};

    for (size_t i = 0; i < IC_ARRAY_LEN(files); i++) {
        memset(&res, 0, sizeof res);
        assert_int_equal(ic_node_load(f->st, files[i], NULL, false, &res), 0);
        assert_int_equal(res.graphs, graphs[i]);
        assert_true(res.quads > 100);
        total += res.quads;
    }
    tu_stats(f->st, &st);
    assert_int_equal(st.quads, total);
    assert_int_equal(st.triples, total);
    assert_int_equal(st.graphs, 10);
    check_seed(f->st);
    {
        /* the file's graph is named after it; the clouds' are their own */
        char *d = tu_dump(f->st, "urn:icroot:graph:constraints", IC_RDF_NQUADS);
        assert_non_null(strstr(d, "\"availabilityQuanity\""));
        assert_null(strstr(d, "xmpp:"));
        ic_free(d);
        d = tu_dump(f->st, TU_CLOUD2, IC_RDF_NQUADS);
        assert_non_null(strstr(d, "<" TU_CLOUD2 "#storage-pool>"));
        assert_null(strstr(d, "cloud3"));
        ic_free(d);
        d = tu_dump(f->st, "urn:icroot:graph:sample-catalog", IC_RDF_NQUADS);
        assert_string_equal(d, "");
        ic_free(d);
    }

    /* loading the same file again replaces its graphs: nothing changes */
    {
        struct ic_store_stats again;
        char *before = tu_dump(f->st, NULL, IC_RDF_NQUADS), *after;
        assert_int_equal(ic_node_load(f->st, files[2], NULL, false, &res), 0);
        tu_stats(f->st, &again);
        assert_int_equal(again.quads, st.quads);
        assert_int_equal(again.triples, st.triples);
        assert_int_equal(again.terms, st.terms);
        assert_int_equal(again.graphs, st.graphs);
        after = tu_dump(f->st, NULL, IC_RDF_NQUADS);
        assert_string_equal(after, before);
        ic_free(before);
        ic_free(after);
    }

    /* a missing file */
    memset(&res, 0, sizeof res);
    assert_int_equal(
        ic_node_load(f->st, "/nonexistent/x.ttl", NULL, false, &res),
        IC_ENOTFOUND);
    assert_non_null(strstr(res.error, "/nonexistent/x.ttl"));
}

static void test_load_buffer(void **state)
{
    struct tu_fx *f = *state;
    struct ic_load_opts o = {0};
    struct ic_load_result res;
    char *d;
    static const char ttl[] = "@prefix ex: <http://ex/> .\n"
                              "<a> ex:p \"x\"@en, 7, true, 2.5, 1e3 .\n"
                              "<a#f> ex:q <../b> .\n";

    o.syntax = IC_RDF_TURTLE;
    o.graph = "urn:g";
    o.base_uri = "http://base/dir/";
    o.name = "mybuf";
    assert_int_equal(load_opts(f->st, ttl, &o, &res), 0);
    assert_int_equal(res.quads, 6);
    assert_int_equal(res.graphs, 1);
    d = tu_dump(f->st, NULL, IC_RDF_NQUADS);
    {
        char *sorted = tu_sorted_lines(d);
        assert_string_equal(
            sorted,
            "<http://base/dir/a#f> <http://ex/q> <http://base/b> <urn:g> .\n"
            "<http://base/dir/a> <http://ex/p> \"1e3\"^^"
            "<http://www.w3.org/2001/XMLSchema#double> <urn:g> .\n"
            "<http://base/dir/a> <http://ex/p> \"2.5\"^^"
            "<http://www.w3.org/2001/XMLSchema#decimal> <urn:g> .\n"
            "<http://base/dir/a> <http://ex/p> \"7\"^^"
            "<http://www.w3.org/2001/XMLSchema#integer> <urn:g> .\n"
            "<http://base/dir/a> <http://ex/p> \"true\"^^"
            "<http://www.w3.org/2001/XMLSchema#boolean> <urn:g> .\n"
            "<http://base/dir/a> <http://ex/p> \"x\"@en <urn:g> .\n");
        ic_free(sorted);
    }
    ic_free(d);

    /* no graph: refused */
    o.graph = NULL;
    assert_int_equal(load_opts(f->st, ttl, &o, &res), IC_EINVAL);
    /* a NUL byte inside the buffer */
    {
        struct ic_txn *txn;
        o.graph = "urn:g";
        assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
        assert_int_equal(
            ic_store_load_buffer(txn, "<a> <b> <c> .\0x", 15, &o, &res),
            IC_ESYNTAX);
        ic_store_txn_abort(txn);
    }
    /* a read transaction */
    {
        struct ic_txn *txn;
        assert_int_equal(ic_store_txn_begin(f->st, false, &txn), 0);
        assert_int_equal(ic_store_load_buffer(txn, ttl, strlen(ttl), &o, &res),
                         IC_EREADONLY);
        ic_store_txn_abort(txn);
    }
}

/* ic_store_load_file itself: relative IRIs resolve against the file's own
 * URI unless a base is given; the syntax comes from the extension. */
static void test_load_file(void **state)
{
    struct tu_fx *f = *state;
    struct ic_load_opts o = {0};
    struct ic_load_result res;
    struct ic_txn *txn;
    char path[256], want[600], *d;

    write_text(f, "rel.ttl", "<a> <http://ex/p> <sub/b> .\n", path,
               sizeof path);
    o.graph = "urn:g";
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_load_file(txn, path, &o, &res), 0);
    assert_int_equal(res.quads, 1);
    assert_int_equal(res.graphs, 1);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    d = tu_dump(f->st, NULL, IC_RDF_NQUADS);
    snprintf(want, sizeof want,
             "<file://%s/a> <http://ex/p> <file://%s/sub/b> <urn:g> .\n",
             f->dir, f->dir);
    assert_string_equal(d, want);
    ic_free(d);

    o.base_uri = "http://base/";
    o.replace = true;
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_load_file(txn, path, &o, &res), 0);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    d = tu_dump(f->st, NULL, IC_RDF_NQUADS);
    assert_string_equal(d, "<http://base/a> <http://ex/p> "
                           "<http://base/sub/b> <urn:g> .\n");
    ic_free(d);

    /* N-Triples by extension; a missing file */
    write_text(f, "x.nt", "<http://ex/s> <http://ex/p> \"o\" .\n", path,
               sizeof path);
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_load_file(txn, path, &o, &res), 0);
    assert_int_equal(res.quads, 1);
    memset(&res, 0, sizeof res);
    assert_int_equal(ic_store_load_file(txn, "/nonexistent/y.ttl", &o, &res),
                     IC_ENOTFOUND);
    assert_non_null(strstr(res.error, "/nonexistent/y.ttl"));
    ic_store_txn_abort(txn);
    {
        struct ic_store_stats st;
        tu_stats(f->st, &st);
        assert_int_equal(st.quads, 1);
    }
}

/* "NAME:LINE:COL: message" with the exact LINE. */
static void check_error_at(const char *error, const char *name, int line)
{
    char want[600];
    const char *p;
    int n = snprintf(want, sizeof want, "%s:%d:", name, line);

    if (strncmp(error, want, (size_t)n) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", error, want);
    p = error + n;
    if (*p < '0' || *p > '9')
        fail_msg("no column in \"%s\"", error);
    while (*p >= '0' && *p <= '9')
        p++;
    if (p[0] != ':' || p[1] != ' ' || p[2] == '\0')
        fail_msg("no message after the column in \"%s\"", error);
}

static void test_syntax_error(void **state)
{
    struct tu_fx *f = *state;
    struct ic_store_stats before, after;
    struct ic_load_result res;
    char path[256], *d0, *d1, *text;
    size_t cap = 200000, len;
    static const struct {
        const char *body;
        int line;
    } cases[] = {
        {PFX "ex:a ex:p 1 .\nex:b ex:p @@@ .\n", 5},
        {PFX "\n\nex:a ex:p \"unterminated\nex:b ex:p 2 .\n", 6},
        {PFX "ex:a ex:p 1 .\nex:b ex:p 2\nex:c ex:p 3 .\n", 6},
        {"<http://ex/a> <http://ex/b> .\n", 1},
    };

    tu_load_ontology(f->st);
    tu_stats(f->st, &before);
    d0 = tu_dump(f->st, NULL, IC_RDF_NQUADS);

    /* 1000 good statements, then an error on line 1005 */
    text = ic_malloc(cap);
    len = (size_t)snprintf(text, cap, "%s", PFX);
    for (int i = 0; i < 1000; i++)
        len += (size_t)snprintf(text + len, cap - len,
                                "<xmpp:c%d@t> ic:region \"r%d\" .\n", i, i);
    len += (size_t)snprintf(text + len, cap - len, "\nex:x ex:p ex:y ;; ?\n");
    write_text(f, "big-error.ttl", text, path, sizeof path);
    memset(&res, 0, sizeof res);
    assert_int_equal(ic_node_load(f->st, path, NULL, false, &res), IC_ESYNTAX);
    check_error_at(res.error, path, 1005);
    ic_free(text);

    for (size_t i = 0; i < IC_ARRAY_LEN(cases); i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%zu.ttl", i);
        write_text(f, name, cases[i].body, path, sizeof path);
        memset(&res, 0, sizeof res);
        assert_int_equal(ic_node_load(f->st, path, NULL, false, &res),
                         IC_ESYNTAX);
        check_error_at(res.error, path, cases[i].line);
        /* the same through a buffer, named */
        memset(&res, 0, sizeof res);
        assert_int_equal(tu_load_text(f->st, cases[i].body, "urn:g",
                                      IC_LOAD_BY_SUBJECT, true, &res),
                         IC_ESYNTAX);
        check_error_at(res.error, "text", cases[i].line);
    }

    tu_stats(f->st, &after);
    tu_assert_stats_equal(&before, &after);
    d1 = tu_dump(f->st, NULL, IC_RDF_NQUADS);
    assert_string_equal(d1, d0);
    check_seed(f->st);
    ic_free(d0);
    ic_free(d1);
}

/* Regression: an undefined prefix whose name also appears earlier in a
 * comment was reported at the comment's line (rdfio.c locates the token by
 * text; comments are now skipped). */
static void regress_undefined_prefix_in_comment(void **state)
{
    struct tu_fx *f = *state;
    struct ic_load_result res;
    char path[256];

    write_text(f, "prefix.ttl",
               PFX "# nope:b is not defined below\nex:a ex:p 1 .\n"
                   "nope:b ex:p 2 .\n",
               path, sizeof path);
    memset(&res, 0, sizeof res);
    assert_int_equal(ic_node_load(f->st, path, NULL, false, &res), IC_ESYNTAX);
    check_error_at(res.error, path, 6);
}

/* Regression: a relative IRI in a buffer loaded without a base was reported
 * without line and column. */
static void regress_relative_iri_position(void **state)
{
    struct tu_fx *f = *state;
    struct ic_load_result res;

    memset(&res, 0, sizeof res);
    assert_int_equal(tu_load_text(f->st, PFX "ex:a ex:p 1 .\n<rel> ex:p 2 .\n",
                                  "urn:g", IC_LOAD_ONE_GRAPH, false, &res),
                     IC_ESYNTAX);
    check_error_at(res.error, "text", 5);
}

static void test_undefined_prefix(void **state)
{
    struct tu_fx *f = *state;
    struct ic_load_result res;
    struct ic_store_stats st;
    char path[256];

    /* serd takes any prefix; the loader finds the line of the first use */
    write_text(f, "prefix.ttl",
               PFX "ex:a ex:p 1 .\nex:b ex:p ex:c ;\n  ex:q nope:b .\n", path,
               sizeof path);
    memset(&res, 0, sizeof res);
    assert_int_equal(ic_node_load(f->st, path, NULL, false, &res), IC_ESYNTAX);
    check_error_at(res.error, path, 6);
    assert_non_null(strstr(res.error, "nope:b"));
    memset(&res, 0, sizeof res);
    assert_int_equal(tu_load_text(f->st, PFX "\n\nex:a ex:p nope:x, 2 .\n",
                                  "urn:g", IC_LOAD_ONE_GRAPH, false, &res),
                     IC_ESYNTAX);
    check_error_at(res.error, "text", 6);
    assert_non_null(strstr(res.error, "nope:x"));
    /* in a datatype */
    memset(&res, 0, sizeof res);
    assert_int_equal(tu_load_text(f->st, PFX "ex:a ex:p \"1\"^^nope:int .\n",
                                  "urn:g", IC_LOAD_ONE_GRAPH, false, &res),
                     IC_ESYNTAX);
    check_error_at(res.error, "text", 4);
    tu_stats(f->st, &st);
    assert_int_equal(st.quads, 0);
}

#define V1                                           \
    PFX "<" CX "> a ic:Cloud ; ic:region \"r1\" ;\n" \
        "  ic:offers <" CX "#s> .\n"                 \
        "<" CX "#s> rdfs:label \"old offering\" .\n"
#define V2 PFX "<" CX "> a ic:Cloud ; ic:region \"r2\" .\n"

#define NQ_TYPE_G(g)                                                    \
    "<" CX "> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <" ICNS \
    "Cloud> <" g "> .\n"
#define NQ_R1_G(g) "<" CX "> <" ICNS "region> \"r1\" <" g "> .\n"
#define NQ_R2_G(g) "<" CX "> <" ICNS "region> \"r2\" <" g "> .\n"
#define NQ_OFFERS_G(g) "<" CX "> <" ICNS "offers> <" CX "#s> <" g "> .\n"
#define NQ_LABEL_G(g)                                                \
    "<" CX "#s> <http://www.w3.org/2000/01/rdf-schema#label> \"old " \
    "offering\" <" g "> .\n"
#define NQ_TYPE NQ_TYPE_G(CX)
#define NQ_R1 NQ_R1_G(CX)
#define NQ_R2 NQ_R2_G(CX)
#define NQ_OFFERS NQ_OFFERS_G(CX)
#define NQ_LABEL NQ_LABEL_G(CX)

static char *graph_sorted(struct ic_store *st, const char *g)
{
    char *d = tu_dump(st, g, IC_RDF_NQUADS), *s = tu_sorted_lines(d);

    ic_free(d);
    return s;
}

static void test_graph_replace(void **state)
{
    struct tu_fx *f = *state;
    struct ic_load_result res;
    char p1[256], p2[256], *g;
    struct ic_store_stats st;

    write_text(f, "cloudx-v1.ttl", V1, p1, sizeof p1);
    write_text(f, "cloudx-v2.ttl", V2, p2, sizeof p2);
    tu_load_ontology(f->st);

    assert_int_equal(ic_node_load(f->st, p1, NULL, false, &res), 0);
    assert_int_equal(res.quads, 4);
    assert_int_equal(res.graphs, 1);
    g = graph_sorted(f->st, CX);
    assert_string_equal(g, NQ_LABEL NQ_OFFERS NQ_R1 NQ_TYPE);
    ic_free(g);

    /* v2 replaces v1 entirely, the fragment's statement included */
    assert_int_equal(ic_node_load(f->st, p2, NULL, false, &res), 0);
    g = graph_sorted(f->st, CX);
    assert_string_equal(g, NQ_R2 NQ_TYPE);
    ic_free(g);
    {
        struct ic_constraint c = {"region", "r1"};
        tu_assert_match(f->st, &c, 1, "");
        c.value = "r2";
        tu_assert_match(f->st, &c, 1, "cloudx");
    }
    check_seed(f->st);

    /* --merge keeps both */
    assert_int_equal(ic_node_load(f->st, p1, NULL, true, &res), 0);
    g = graph_sorted(f->st, CX);
    assert_string_equal(g, NQ_LABEL NQ_OFFERS NQ_R1 NQ_R2 NQ_TYPE);
    ic_free(g);
    {
        struct ic_constraint c = {"region", "r1"};
        tu_assert_match(f->st, &c, 1, "cloudx");
    }
    /* the same through the store API: replace=false and =true */
    assert_int_equal(
        tu_load_text(f->st, V2, "urn:unused", IC_LOAD_BY_SUBJECT, false, &res),
        0);
    g = graph_sorted(f->st, CX);
    assert_string_equal(g, NQ_LABEL NQ_OFFERS NQ_R1 NQ_R2 NQ_TYPE);
    ic_free(g);
    assert_int_equal(
        tu_load_text(f->st, V2, "urn:unused", IC_LOAD_BY_SUBJECT, true, &res),
        0);
    g = graph_sorted(f->st, CX);
    assert_string_equal(g, NQ_R2 NQ_TYPE);
    ic_free(g);
    tu_stats(f->st, &st);
    assert_int_equal(st.graphs, 11);

    /* with an explicit graph, everything goes there */
    assert_int_equal(ic_node_load(f->st, p1, "urn:explicit", false, &res), 0);
    assert_int_equal(res.graphs, 1);
    g = graph_sorted(f->st, "urn:explicit");
    assert_string_equal(g,
                        NQ_LABEL_G("urn:explicit") NQ_OFFERS_G("urn:explicit")
                            NQ_R1_G("urn:explicit") NQ_TYPE_G("urn:explicit"));
    ic_free(g);
    g = graph_sorted(f->st, CX);
    assert_string_equal(g, NQ_R2 NQ_TYPE);
    ic_free(g);
}

static size_t
subjects_of(struct ic_store *st, const char *pred, uint64_t *out, size_t max)
{
    struct ic_txn *txn;
    struct ic_term p = ic_term_iri(pred);
    struct ic_store_iter *it;
    uint64_t pat[4] = {0, 0, 0, 0}, q[4];
    size_t n = 0;
    int rc;

    assert_int_equal(ic_store_txn_begin(st, false, &txn), 0);
    assert_int_equal(ic_store_term_id(txn, &p, false, &pat[1]), 0);
    assert_int_equal(ic_store_iter_new(txn, pat, &it), 0);
    while ((rc = ic_store_iter_next(it, q)) == 0) {
        struct ic_term t;
        char buf[64];
        assert_true(n < max);
        assert_int_equal(ic_store_term_get(txn, q[0], &t, buf), 0);
        assert_int_equal(t.kind, IC_TERM_BLANK);
        out[n++] = q[0];
    }
    assert_int_equal(rc, IC_EEND);
    ic_store_iter_free(it);
    ic_store_txn_abort(txn);
    return n;
}

static void test_blank_nodes(void **state)
{
    struct tu_fx *f = *state;
    struct ic_load_result res;
    uint64_t s[8];
    size_t n;

    /* within one load, a label is one node; [] are distinct */
    assert_int_equal(tu_load_text(f->st,
                                  PFX "_:b ex:p ex:o1 .\n_:b ex:p ex:o2 .\n"
                                      "[] ex:q ex:o1 .\n[] ex:q ex:o2 .\n",
                                  "urn:g", IC_LOAD_ONE_GRAPH, false, &res),
                     0);
    n = subjects_of(f->st, "http://ex/p", s, 8);
    assert_int_equal(n, 2);
    assert_int_equal(s[0], s[1]);
    n = subjects_of(f->st, "http://ex/q", s, 8);
    assert_int_equal(n, 2);
    assert_true(s[0] != s[1]);

    /* a second load with the same label: a new node */
    assert_int_equal(tu_load_text(f->st, PFX "_:b ex:p ex:o3 .\n", "urn:g",
                                  IC_LOAD_ONE_GRAPH, false, &res),
                     0);
    n = subjects_of(f->st, "http://ex/p", s, 8);
    assert_int_equal(n, 3);
    {
        struct ic_store_stats st;
        tu_stats(f->st, &st);
        assert_int_equal(st.quads, 5);
    }
    /* two loads inside one transaction */
    {
        struct ic_load_opts o = {0};
        struct ic_txn *txn;
        const char *t = PFX "_:z ex:r ex:o .\n";
        o.syntax = IC_RDF_TURTLE;
        o.graph = "urn:g2";
        assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
        assert_int_equal(ic_store_load_buffer(txn, t, strlen(t), &o, &res), 0);
        assert_int_equal(ic_store_load_buffer(txn, t, strlen(t), &o, &res), 0);
        assert_int_equal(ic_store_txn_commit(txn), 0);
        n = subjects_of(f->st, "http://ex/r", s, 8);
        assert_int_equal(n, 2);
        assert_true(s[0] != s[1]);
    }
    /* nor with labels a dump wrote: load a dump back into the store */
    {
        char *d = tu_dump(f->st, "urn:g", IC_RDF_NQUADS);
        struct ic_load_opts o = {0};
        o.syntax = IC_RDF_NQUADS;
        o.graph = "urn:unused";
        assert_int_equal(load_opts(f->st, d, &o, &res), 0);
        n = subjects_of(f->st, "http://ex/p", s, 8);
        assert_int_equal(n, 6);
        ic_free(d);
    }
}

#define TRIG                                            \
    "@prefix ex: <http://ex/> .\n"                      \
    "ex:a ex:p ex:b .\n"                                \
    "ex:g1 { ex:s1 ex:p ex:o1 . ex:s2 ex:p \"two\" }\n" \
    "ex:g2 { ex:s1 ex:p ex:o1 }\n"                      \
    "{ <xmpp:c@t> ex:p ex:o3 }\n"
#define NQUADS                                                       \
    "<http://ex/a> <http://ex/p> <http://ex/b> .\n"                  \
    "<http://ex/s1> <http://ex/p> <http://ex/o1> <http://ex/g1> .\n" \
    "<http://ex/s2> <http://ex/p> \"two\" <http://ex/g1> .\n"        \
    "<http://ex/s1> <http://ex/p> <http://ex/o1> <http://ex/g2> .\n" \
    "<xmpp:c@t> <http://ex/p> <http://ex/o3> .\n"

static void check_named(struct tu_fx *f, const char *dflt, const char *cgraph)
{
    char *g, a_line[256], c_line[256], want[512];

    g = graph_sorted(f->st, "http://ex/g1");
    assert_string_equal(
        g, "<http://ex/s1> <http://ex/p> <http://ex/o1> <http://ex/g1> .\n"
           "<http://ex/s2> <http://ex/p> \"two\" <http://ex/g1> .\n");
    ic_free(g);
    g = graph_sorted(f->st, "http://ex/g2");
    assert_string_equal(
        g, "<http://ex/s1> <http://ex/p> <http://ex/o1> <http://ex/g2> .\n");
    ic_free(g);
    snprintf(a_line, sizeof a_line,
             "<http://ex/a> <http://ex/p> <http://ex/b> <%s> .\n", dflt);
    snprintf(c_line, sizeof c_line,
             "<xmpp:c@t> <http://ex/p> <http://ex/o3> <%s> .\n", cgraph);
    g = graph_sorted(f->st, cgraph);
    snprintf(want, sizeof want, "%s%s", strcmp(cgraph, dflt) == 0 ? a_line : "",
             c_line);
    assert_string_equal(g, want);
    ic_free(g);
    if (strcmp(cgraph, dflt) != 0) {
        g = graph_sorted(f->st, dflt);
        assert_string_equal(g, a_line);
        ic_free(g);
    }
}

static void test_named_graphs(void **state)
{
    struct tu_fx *f = *state;
    struct ic_load_opts o = {0};
    struct ic_load_result res;
    struct ic_store_stats st;
    char path[256];

    o.graph = "urn:d";
    for (int mode = 0; mode < 2; mode++) {
        const char *cg = mode ? "xmpp:c@t" : "urn:d";
        o.graphs = mode ? IC_LOAD_BY_SUBJECT : IC_LOAD_ONE_GRAPH;
        o.replace = true;
        /* TriG from a buffer */
        o.syntax = IC_RDF_TRIG;
        assert_int_equal(load_opts(f->st, TRIG, &o, &res), 0);
        assert_int_equal(res.quads, 5);
        check_named(f, "urn:d", cg);
        tu_stats(f->st, &st);
        assert_int_equal(st.quads, 5);
        assert_int_equal(st.triples, 4);
        assert_int_equal(st.graphs, mode ? 4 : 3);
        /* N-Quads: the same quads, so nothing changes */
        o.syntax = IC_RDF_NQUADS;
        assert_int_equal(load_opts(f->st, NQUADS, &o, &res), 0);
        assert_int_equal(res.quads, 5);
        check_named(f, "urn:d", cg);
        tu_stats(f->st, &st);
        assert_int_equal(st.quads, 5);
        /* start over */
        ic_store_close(f->st);
        tu_rmrf(f->store);
        f->st = tu_store_open(f->store, 256ULL << 20);
    }
    /* files: the syntax from the extension */
    write_text(f, "named.trig", TRIG, path, sizeof path);
    assert_int_equal(ic_node_load(f->st, path, NULL, false, &res), 0);
    check_named(f, "urn:icroot:graph:named", "xmpp:c@t");
    write_text(f, "named.nq", NQUADS, path, sizeof path);
    assert_int_equal(ic_node_load(f->st, path, "urn:d", false, &res), 0);
    check_named(f, "urn:d", "urn:d");
    assert_int_equal(ic_rdf_syntax_from_name("x.nt"), IC_RDF_NTRIPLES);
    assert_int_equal(ic_rdf_syntax_from_name("x.ttl"), IC_RDF_TURTLE);
    assert_int_equal(ic_rdf_syntax_from_name("x.trig"), IC_RDF_TRIG);
    assert_int_equal(ic_rdf_syntax_from_name("x.nq"), IC_RDF_NQUADS);
    assert_int_equal(ic_rdf_syntax_from_name("x.txt"), 0);
    assert_int_equal(ic_rdf_syntax_from_name("ttl"), 0);
}

/* Replaces every blank node label with "_:B" and returns the number of
 * distinct labels. */
static size_t mask_blanks(char *text)
{
    char *r = text, *w = text;
    char **labels = NULL;
    size_t n = 0, cap = 0;

    while (*r != '\0') {
        if (r[0] == '_' && r[1] == ':' &&
            (r == text || r[-1] == ' ' || r[-1] == '\n')) {
            char *e = r + 2;
            bool seen = false;
            while (*e != ' ' && *e != '\0' && *e != '\n')
                e++;
            for (size_t i = 0; i < n; i++)
                if (strlen(labels[i]) == (size_t)(e - r) &&
                    memcmp(labels[i], r, (size_t)(e - r)) == 0)
                    seen = true;
            if (!seen) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 64;
                    labels = ic_realloc(labels, cap * sizeof *labels);
                }
                labels[n++] = ic_strndup(r, (size_t)(e - r));
            }
            memcpy(w, "_:B", 3);
            w += 3;
            r = e;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    for (size_t i = 0; i < n; i++)
        ic_free(labels[i]);
    ic_free(labels);
    return n;
}

static void
round_trip(struct tu_fx *f, bool with_blanks, enum ic_rdf_syntax via)
{
    static const char *const ext[] = {"", ".ttl", ".nt", ".nq", ".trig"};
    char b_dir[128], path[256], *d1, *d2, *s1, *s2;
    struct ic_store *b;
    struct ic_store_stats sa, sb;
    struct ic_load_result res;
    size_t nb1, nb2;

    /* intercloud.ttl is the file with blank nodes */
    tu_load(f->st, TU_ONTOLOGY "/constraints.ttl");
    if (with_blanks)
        tu_load(f->st, TU_ONTOLOGY "/intercloud.ttl");
    tu_load(f->st, TU_ONTOLOGY "/sample-catalog.ttl");
    d1 = tu_dump(f->st, NULL, via);
    snprintf(path, sizeof path, "%s/dump%s", f->dir, ext[via]);
    tu_write_file(path, d1, strlen(d1));
    ic_free(d1);
    d1 = tu_dump(f->st, NULL, IC_RDF_NQUADS);

    tu_join(b_dir, sizeof b_dir, f->dir, "b");
    b = tu_store_open(b_dir, 256ULL << 20);
    memset(&res, 0, sizeof res);
    if (ic_node_load(b, path, NULL, false, &res) != 0)
        fail_msg("loading the dump: %s", res.error);
    d2 = tu_dump(b, NULL, IC_RDF_NQUADS);
    tu_stats(f->st, &sa);
    tu_stats(b, &sb);
    assert_int_equal(sb.quads, sa.quads);
    assert_int_equal(sb.triples, sa.triples);
    assert_int_equal(sb.graphs, sa.graphs);
    if (with_blanks)
        check_seed(b);

    nb1 = mask_blanks(d1);
    nb2 = mask_blanks(d2);
    assert_int_equal(nb1, nb2);
    assert_true(with_blanks ? nb1 > 10 : nb1 == 0);
    if (!with_blanks)
        assert_int_equal(sb.terms, sa.terms);
    s1 = tu_sorted_lines(d1);
    s2 = tu_sorted_lines(d2);
    assert_string_equal(s2, s1);
    ic_free(s1);
    ic_free(s2);
    ic_free(d1);
    ic_free(d2);
    ic_store_close(b);
}

static void test_round_trip_nquads(void **state)
{
    round_trip(*state, true, IC_RDF_NQUADS);
}

static void test_round_trip_nquads_no_blanks(void **state)
{
    round_trip(*state, false, IC_RDF_NQUADS);
}

static void test_round_trip_trig(void **state)
{
    round_trip(*state, true, IC_RDF_TRIG);
}

/* Bulk loads against a model: random N-Quads batches, merged or replacing
 * their graphs, small ones and ones larger than the store (which the
 * loader may rebuild indexes for); the dump must equal the model. */

#define MODEL_MAX 6000

struct model {
    char (*line)[128];
    size_t n;
};

static bool model_has(const struct model *m, const char *l)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->line[i], l) == 0)
            return true;
    return false;
}

/* The graph IRI of an N-Quads line: its last <...>. */
static const char *line_graph(const char *l, size_t *len)
{
    const char *e = strrchr(l, '>'), *b = e;

    while (b > l && *b != '<')
        b--;
    *len = (size_t)(e - b) + 1;
    return b;
}

static void test_bulk_model(void **state)
{
    struct tu_fx *f = *state;
    static char lines[MODEL_MAX][128];
    struct model m = {lines, 0};
    uint64_t seed = 31337;
    size_t cap = 1 << 20;
    char *batch = ic_malloc(cap);
    static const size_t sizes[] = {5,   40,   400, 30, 1500, 3,
                                   800, 2500, 60,  1,  700,  3000};

    for (size_t round = 0; round < IC_ARRAY_LEN(sizes); round++) {
        struct ic_load_opts o = {0};
        struct ic_load_result res;
        bool replace = tu_rand(&seed) % 2 == 0;
        bool gseen[8] = {false};
        static char add[3000][128];
        size_t na = 0, len = 0;
        char *d, *ds, *ms;

        for (size_t i = 0; i < sizes[round]; i++) {
            unsigned s = (unsigned)(tu_rand(&seed) % 60);
            unsigned p = (unsigned)(tu_rand(&seed) % 5);
            unsigned ob = (unsigned)(tu_rand(&seed) % 90);
            unsigned g = (unsigned)(tu_rand(&seed) % 8);
            char *l = add[na++];
            if (ob % 3 == 0)
                snprintf(l, 128,
                         "<http://ex/s%u> <http://ex/p%u> \"v%u\" "
                         "<http://ex/g%u> .",
                         s, p, ob, g);
            else
                snprintf(l, 128,
                         "<http://ex/s%u> <http://ex/p%u> <http://ex/s%u> "
                         "<http://ex/g%u> .",
                         s, p, ob, g);
            gseen[g] = true;
            len += (size_t)snprintf(batch + len, cap - len, "%s\n", l);
        }
        /* the model: drop replaced graphs, add the batch */
        if (replace) {
            size_t w = 0;
            for (size_t i = 0; i < m.n; i++) {
                size_t gl;
                const char *g = line_graph(m.line[i], &gl);
                unsigned gi = (unsigned)atoi(g + strlen("<http://ex/g"));
                if (!gseen[gi])
                    memcpy(m.line[w++], m.line[i], sizeof *m.line);
            }
            m.n = w;
        }
        for (size_t i = 0; i < na; i++)
            if (!model_has(&m, add[i])) {
                assert_true(m.n < MODEL_MAX);
                snprintf(m.line[m.n++], 128, "%s", add[i]);
            }
        o.syntax = IC_RDF_NQUADS;
        o.graph = "urn:unused";
        o.replace = replace;
        assert_int_equal(load_opts(f->st, batch, &o, &res), 0);
        assert_int_equal(res.quads, sizes[round]);

        /* compare */
        len = 0;
        for (size_t i = 0; i < m.n; i++)
            len += (size_t)snprintf(batch + len, cap - len, "%s\n", m.line[i]);
        ms = tu_sorted_lines(batch);
        d = tu_dump(f->st, NULL, IC_RDF_NQUADS);
        ds = tu_sorted_lines(d);
        if (strcmp(ds, ms) != 0)
            fail_msg("round %zu (%s, %zu quads): the dump differs from the "
                     "model (%zu quads)",
                     round, replace ? "replace" : "merge", sizes[round], m.n);
        {
            struct ic_store_stats st;
            tu_stats(f->st, &st);
            assert_int_equal(st.quads, m.n);
        }
        ic_free(d);
        ic_free(ds);
        ic_free(ms);
    }
    ic_free(batch);
}

/* A Turtle file of about BYTES bytes of distinct statements. */
static void write_big(const char *path, size_t bytes)
{
    FILE *o = fopen(path, "w");
    size_t n = 0;

    assert_non_null(o);
    fputs(PFX, o);
    for (int i = 0; n < bytes; i++) {
        int w = fprintf(o,
                        "<http://ex/big/%d> ic:region \"region number %d of "
                        "a rather large generated catalog\" ; ic:cores %d "
                        ".\n",
                        i, i, i);
        assert_true(w > 0);
        n += (size_t)w;
    }
    assert_int_equal(fclose(o), 0);
}

static void
check_full(struct ic_store **stp, const char *store, const char *big, bool node)
{
    struct ic_store_stats before, after;
    struct ic_load_result res;
    char *d0, *d1;
    int rc;

    tu_stats(*stp, &before);
    d0 = tu_dump(*stp, NULL, IC_RDF_NQUADS);
    memset(&res, 0, sizeof res);
    rc = ic_node_load(*stp, big, NULL, false, &res);
    if (rc != IC_EFULL)
        fail_msg("big load: %d (%s), expected IC_EFULL", rc, res.error);
    assert_true(res.error[0] != '\0');
    tu_stats(*stp, &after);
    tu_assert_stats_equal(&before, &after);

    /* closed and opened again: the same */
    ic_store_close(*stp);
    *stp = NULL;
    if (node) {
        char why[512];
        assert_int_equal(
            ic_node_store_open(store, false, false, stp, why, sizeof why), 0);
    } else {
        *stp = tu_store_open(store, 1 << 20);
    }
    tu_stats(*stp, &after);
    tu_assert_stats_equal(&before, &after);
    d1 = tu_dump(*stp, NULL, IC_RDF_NQUADS);
    assert_string_equal(d1, d0);
    check_seed(*stp);
    /* and still takes a small write */
    assert_int_equal(tu_load_text(*stp, PFX "ex:a ex:p 1 .\n", "urn:small",
                                  IC_LOAD_ONE_GRAPH, true, &res),
                     0);
    tu_stats(*stp, &after);
    assert_int_equal(after.quads, before.quads + 1);
    ic_free(d0);
    ic_free(d1);
}

static void test_map_full(void **state)
{
    struct tu_fx *f = *state;
    char big[256], store[256];

    tu_join(big, sizeof big, f->dir, "big.ttl");
    write_big(big, 3u << 20);
    ic_store_close(f->st);
    f->st = NULL;
    tu_join(store, sizeof store, f->dir, "small");
    f->st = tu_store_open(store, 1 << 20);
    tu_load_ontology(f->st);
    check_full(&f->st, store, big, false);
}

static void test_map_full_env(void **state)
{
    struct tu_fx *f = *state;
    char big[256], node[256], why[512];

    tu_join(big, sizeof big, f->dir, "big.ttl");
    write_big(big, 3u << 20);
    ic_store_close(f->st);
    f->st = NULL;
    tu_join(node, sizeof node, f->dir, "node");
    assert_int_equal(setenv("ICROOT_MAP_SIZE", "1048576", 1), 0);
    assert_int_equal(
        ic_node_store_open(node, true, false, &f->st, why, sizeof why), 0);
    {
        struct ic_store_stats st;
        tu_stats(f->st, &st);
        assert_int_equal(st.map_size, 1 << 20);
    }
    tu_load_ontology(f->st);
    check_full(&f->st, node, big, true);
    unsetenv("ICROOT_MAP_SIZE");
}

/* A load killed by SIGKILL half way: the child reads the Turtle from a
 * FIFO the parent keeps feeding, so it is still inside its write
 * transaction when it dies, whatever the machine's speed. */
static void test_killed_mid_load(void **state)
{
    struct tu_fx *f = *state;
    struct ic_store_stats before, after;
    char fifo[256], *d0, *d1, buf[8192];
    int sync[2], fd, status;
    size_t written = 0;
    struct timespec t0, t;
    pid_t pid;
    long elapsed_ms = 0;

    tu_load_ontology(f->st);
    tu_stats(f->st, &before);
    d0 = tu_dump(f->st, NULL, IC_RDF_NQUADS);
    ic_store_close(f->st);
    f->st = NULL;

    tu_join(fifo, sizeof fifo, f->dir, "stream.ttl");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(pipe(sync), 0);
    signal(SIGPIPE, SIG_IGN);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct ic_store_opts o = {0};
        struct ic_store *st;
        struct ic_load_result res;
        char why[256];
        close(sync[0]);
        o.map_size = 256ULL << 20;
        if (ic_store_open(f->store, &o, &st, why, sizeof why) != 0)
            _exit(2);
        if (write(sync[1], "o", 1) != 1)
            _exit(2);
        ic_node_load(st, fifo, NULL, false, &res);
        _exit(3); /* never reached: the FIFO is never closed */
    }
    close(sync[1]);
    assert_int_equal(read(sync[0], buf, 1), 1);
    close(sync[0]);
    /* the child opens the FIFO for reading when its load starts */
    for (int tries = 0;; tries++) {
        fd = open(fifo, O_WRONLY | O_NONBLOCK);
        if (fd >= 0)
            break;
        assert_int_equal(errno, ENXIO);
        if (waitpid(pid, &status, WNOHANG) == pid)
            fail_msg("the loader exited early (status %d)", status);
        if (tries > 20000)
            fail_msg("the loader never opened the FIFO");
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    assert_int_equal(fcntl(fd, F_SETFL, 0), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    {
        int len = snprintf(buf, sizeof buf, "%s", PFX);
        assert_int_equal(write(fd, buf, (size_t)len), len);
    }
    /* at least 80 ms and 256 KiB (the pipe holds 64 KiB, so the child has
     * taken in the rest), at most 20 s */
    for (int i = 0;
         (elapsed_ms < 80 || written < (256u << 10)) && elapsed_ms < 20000;
         i++) {
        size_t len = 0;
        for (int j = 0; j < 50; j++)
            len += (size_t)snprintf(buf + len, sizeof buf - len,
                                    "<xmpp:k%d@t> ic:region \"r%d\" .\n",
                                    i * 50 + j, i);
        ssize_t w = write(fd, buf, len);
        if (w < 0)
            fail_msg("writing to the loader: %s", strerror(errno));
        written += (size_t)w;
        clock_gettime(CLOCK_MONOTONIC, &t);
        elapsed_ms =
            (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
    }
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    close(fd);
    signal(SIGPIPE, SIG_DFL);
    assert_true(written >= (256u << 10));

    f->st = tu_store_open(f->store, 256ULL << 20);
    tu_stats(f->st, &after);
    tu_assert_stats_equal(&before, &after);
    d1 = tu_dump(f->st, NULL, IC_RDF_NQUADS);
    assert_string_equal(d1, d0);
    check_seed(f->st);
    /* the dead writer's lock is released: a write goes through */
    tu_load(f->st, TU_ONTOLOGY "/sample-catalog.ttl");
    {
        struct ic_load_result res;
        assert_int_equal(tu_load_text(f->st,
                                      PFX "<xmpp:k1@t> ic:region "
                                          "\"after\" .\n",
                                      "urn:x", IC_LOAD_BY_SUBJECT, true, &res),
                         0);
    }
    tu_stats(f->st, &after);
    assert_int_equal(after.quads, before.quads + 1);
    check_seed(f->st);
    ic_free(d0);
    ic_free(d1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_ontology, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_load_buffer, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_load_file, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_syntax_error, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_undefined_prefix, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(regress_undefined_prefix_in_comment,
                                        tu_fx_setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(regress_relative_iri_position,
                                        tu_fx_setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_graph_replace, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_blank_nodes, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_named_graphs, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_bulk_model, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_nquads, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_nquads_no_blanks,
                                        tu_fx_setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_trig, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_map_full, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_map_full_env, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_killed_mid_load, tu_fx_setup,
                                        tu_fx_teardown),
    };

    return tu_main(argc, argv, "load", tests, IC_ARRAY_LEN(tests));
}
