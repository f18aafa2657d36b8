/* The graph memo (store/memo.c): a replace takes the ids of the terms the
 * graph's last table had from it; a store that keeps memos ends exactly
 * where one that looks every term up does; and every way an id can come
 * to name another term (the sweep frees it, a transaction that created it
 * is aborted, a snapshot replaces the dictionary) forgets the memos. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "test_util.h"

#define G "urn:g:one"
#define H "urn:g:two"

/* Triples (s, p, o) of literal objects (datatype DT, NULL for plain). */
struct lit {
    const char *s, *p, *o, *dt;
};

static void doc(struct ic_store_terms *w, const struct lit *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct ic_term s = ic_term_iri(l[i].s), p = ic_term_iri(l[i].p),
                       o = ic_term_literal(l[i].o, l[i].dt);
        assert_int_equal(ic_store_terms_put(w, &s, &p, &o), 0);
    }
    assert_int_equal(ic_store_terms_end(w), 0);
}

/* Replaces graph GRAPH with the N triples of L in write transaction T. */
static void
put(struct ic_txn *t, const char *graph, const struct lit *l, size_t n)
{
    struct ic_store_terms w = {0};
    struct ic_load_result res;

    doc(&w, l, n);
    assert_int_equal(ic_store_terms_replace(t, graph, w.buf, w.len, &res), 0);
    ic_store_terms_free(&w);
}

static void
publish(struct ic_store *st, const char *graph, const struct lit *l, size_t n)
{
    struct ic_txn *t;

    assert_int_equal(ic_store_txn_begin(st, true, &t), 0);
    put(t, graph, l, n);
    assert_int_equal(ic_store_txn_commit(t), 0);
}

static uint64_t id_of(struct ic_store *st, const char *lex, const char *dt)
{
    struct ic_term o = ic_term_literal(lex, dt);
    struct ic_txn *t;
    uint64_t id = 0;

    assert_int_equal(ic_store_txn_begin(st, false, &t), 0);
    assert_int_equal(ic_store_term_id(t, &o, false, &id), 0);
    ic_store_txn_abort(t);
    return id;
}

static const struct ic_store__memo *memo_of(struct ic_store *st,
                                            const char *graph)
{
    return ic_store__memo_find(st, graph, strlen(graph),
                               ic_store__hash(graph, strlen(graph)));
}

static void assert_has(struct ic_store *st, const char *graph, const char *line)
{
    char *d = tu_dump(st, graph, IC_RDF_NTRIPLES);

    if (strstr(d, line) == NULL)
        fail_msg("%s holds\n%swithout\n%s", graph, d, line);
    free(d);
}

/* The replace takes its ids from the memo: one made to lie (two ids
 * swapped) is what the graph then says; forgotten, the truth again. */
static void test_ids_come_from_the_memo(void **state)
{
    struct tu_fx *f = *state;
    const struct lit l[] = {{"urn:s", "urn:p:a", "alpha", NULL},
                            {"urn:s", "urn:p:b", "beta", NULL}};
    const struct ic_store__memo *m;
    struct ic_store__tterm *a = NULL, *b = NULL;
    uint64_t tmp;

    publish(f->st, G, l, 2);
    m = memo_of(f->st, G);
    assert_non_null(m);
    for (uint32_t i = 0; i < m->tb.n; i++) {
        const char *v = m->tb.arena + m->tb.t[i].off;
        if (strcmp(v, "alpha") == 0)
            a = &m->tb.t[i];
        if (strcmp(v, "beta") == 0)
            b = &m->tb.t[i];
    }
    if (a == NULL || b == NULL)
        fail_msg("the memo lacks a term");
    assert_true(a->id == id_of(f->st, "alpha", NULL));
    assert_true(b->id == id_of(f->st, "beta", NULL));

    tmp = a->id;
    a->id = b->id;
    b->id = tmp;
    publish(f->st, G, l, 2);
    assert_has(f->st, G, "<urn:s> <urn:p:a> \"beta\" .");

    ic_store__memo_clear(f->st);
    assert_null(memo_of(f->st, G));
    publish(f->st, G, l, 2);
    assert_has(f->st, G, "<urn:s> <urn:p:a> \"alpha\" .");
    assert_has(f->st, G, "<urn:s> <urn:p:b> \"beta\" .");
}

static void digest(struct ic_store *st, unsigned char out[32])
{
    struct ic_txn *t;

    assert_int_equal(ic_store_txn_begin(st, false, &t), 0);
    assert_int_equal(ic_store_digest(t, out), 0);
    ic_store_txn_abort(t);
}

/* Republishes of a few graphs (values changing, triples coming and
 * going, terms shared between graphs, typed and tagged literals, blank
 * nodes), with memos and with every memo forgotten before each: the same
 * content and the same ids (equal digests). */
static void test_same_as_without_memos(void **state)
{
    struct tu_fx *f = *state;
    char dir[64], path[128];
    struct ic_store *cold;
    unsigned char d1[32], d2[32];
    uint64_t seed = 42;

    tu_tmpdir(dir, sizeof dir);
    tu_join(path, sizeof path, dir, "cold");
    cold = tu_store_open(path, 0);
    for (int round = 0; round < 300; round++) {
        struct ic_store_terms w = {0};
        struct ic_load_result res;
        char graph[32], price[32], extra[32];
        unsigned g = (unsigned)(tu_rand(&seed) % 5);
        struct ic_term s = ic_term_iri("urn:cloud"),
                       b = {IC_TERM_BLANK, "n1", 2, NULL, NULL},
                       pp = ic_term_iri("urn:p:price"),
                       pr = ic_term_iri("urn:p:region"),
                       pn = ic_term_iri("urn:p:name"),
                       pb = ic_term_iri("urn:p:node"),
                       px = ic_term_iri("urn:p:extra"),
                       region = ic_term_literal("eu-central", NULL),
                       name = {IC_TERM_LITERAL, "Wolke", 5, NULL,
                               tu_rand(&seed) % 2 ? "de" : "fr"},
                       priced, ext;

        snprintf(graph, sizeof graph, "urn:g:%u", g);
        snprintf(price, sizeof price, "%u.%u", (unsigned)(tu_rand(&seed) % 20),
                 (unsigned)(tu_rand(&seed) % 100));
        snprintf(extra, sizeof extra, "x%u", (unsigned)(tu_rand(&seed) % 7));
        priced = ic_term_literal(price, IC_XSD "decimal");
        ext = ic_term_literal(extra, NULL);
        assert_int_equal(ic_store_terms_put(&w, &s, &pp, &priced), 0);
        assert_int_equal(ic_store_terms_put(&w, &s, &pr, &region), 0);
        assert_int_equal(ic_store_terms_put(&w, &s, &pn, &name), 0);
        assert_int_equal(ic_store_terms_put(&w, &s, &pb, &b), 0);
        assert_int_equal(ic_store_terms_put(&w, &b, &pp, &priced), 0);
        if (tu_rand(&seed) % 3 != 0)
            assert_int_equal(ic_store_terms_put(&w, &s, &px, &ext), 0);
        /* the same lexical form under one datatype or another */
        struct ic_term pc = ic_term_iri("urn:p:count"),
                       count = ic_term_literal("7", tu_rand(&seed) % 2
                                                        ? IC_XSD "integer"
                                                        : IC_XSD "decimal");
        assert_int_equal(ic_store_terms_put(&w, &s, &pc, &count), 0);
        assert_int_equal(ic_store_terms_end(&w), 0);
        for (int k = 0; k < 2; k++) {
            struct ic_store *st = k == 0 ? f->st : cold;
            struct ic_txn *t;
            if (st == cold)
                ic_store__memo_clear(st);
            assert_int_equal(ic_store_txn_begin(st, true, &t), 0);
            assert_int_equal(
                ic_store_terms_replace(t, graph, w.buf, w.len, &res), 0);
            assert_int_equal(ic_store_txn_commit(t), 0);
        }
        ic_store_terms_free(&w);
    }
    assert_non_null(memo_of(f->st, "urn:g:0"));
    digest(f->st, d1);
    digest(cold, d2);
    assert_memory_equal(d1, d2, 32);
    ic_store_close(cold);
    tu_rmrf(dir);
}

static void sweep_all(struct ic_store *st)
{
    struct ic_store_sweep sw = {0};
    struct ic_txn *t;

    assert_int_equal(ic_store_txn_begin(st, true, &t), 0);
    assert_int_equal(ic_store_terms_sweep(t, 1u << 20, &sw), 0);
    assert_int_equal(ic_store_txn_commit(t), 0);
    assert_true(sw.removed > 0);
}

/* "5.0" (decimal) and "5" (integer) share an ordered bucket: once the
 * sweep removed "5.0", "5" takes its id. G's memo must not give that id
 * to "5.0" again. */
static void test_forgotten_when_the_sweep_frees_an_id(void **state)
{
    struct tu_fx *f = *state;
    const struct lit five0 = {"urn:s", "urn:p", "5.0", IC_XSD "decimal"},
                     five = {"urn:s", "urn:p", "5", IC_XSD "integer"};
    struct ic_txn *t;
    uint64_t old;

    publish(f->st, G, &five0, 1);
    old = id_of(f->st, "5.0", IC_XSD "decimal");
    assert_non_null(memo_of(f->st, G));
    assert_int_equal(ic_store_txn_begin(f->st, true, &t), 0);
    assert_int_equal(ic_store_graph_clear(t, G), 0);
    assert_int_equal(ic_store_txn_commit(t), 0);
    sweep_all(f->st);
    publish(f->st, H, &five, 1);
    assert_true(id_of(f->st, "5", IC_XSD "integer") == old); /* reused */

    publish(f->st, G, &five0, 1);
    assert_has(f->st, G,
               "<urn:s> <urn:p> "
               "\"5.0\"^^<http://www.w3.org/2001/XMLSchema#decimal> .");
}

/* A term created by an aborted transaction: its id goes to the next term
 * created; G's memo must not give it to the aborted one's term again. */
static void test_forgotten_when_a_transaction_aborts(void **state)
{
    struct tu_fx *f = *state;
    const struct lit a = {"urn:s", "urn:p", "first", NULL},
                     b = {"urn:s", "urn:p", "second", NULL},
                     c = {"urn:s", "urn:p", "other", NULL};
    struct ic_txn *t, *child;

    publish(f->st, G, &a, 1);
    assert_int_equal(ic_store_txn_begin(f->st, true, &t), 0);
    put(t, G, &b, 1);
    ic_store_txn_abort(t);
    publish(f->st, H, &c, 1); /* takes the id "second" had */
    publish(f->st, G, &b, 1);
    assert_has(f->st, G, "<urn:s> <urn:p> \"second\" .");

    /* the same through a nested transaction committed into an aborted
     * parent */
    assert_int_equal(ic_store_txn_begin(f->st, true, &t), 0);
    assert_int_equal(ic_store_txn_begin_nested(t, &child), 0);
    const struct lit d = {"urn:s", "urn:p", "third", NULL},
                     e = {"urn:s", "urn:p", "fourth", NULL};
    put(child, G, &d, 1);
    assert_int_equal(ic_store_txn_commit(child), 0);
    ic_store_txn_abort(t);
    publish(f->st, H, &e, 1);
    publish(f->st, G, &d, 1);
    assert_has(f->st, G, "<urn:s> <urn:p> \"third\" .");
}

/* A snapshot brings another dictionary: the memos made before it go. */
static void test_forgotten_when_a_snapshot_is_restored(void **state)
{
    struct tu_fx *f = *state;
    const struct lit x = {"urn:s", "urn:p", "x-value", NULL},
                     y = {"urn:s", "urn:p", "y-value", NULL};
    char dir[64], path[128], why[256];
    struct ic_store *other;
    unsigned char *snap;
    size_t len;
    struct ic_txn *t;

    publish(f->st, G, &x, 1);
    tu_tmpdir(dir, sizeof dir);
    tu_join(path, sizeof path, dir, "other");
    other = tu_store_open(path, 0);
    publish(other, H, &y, 1); /* here "y-value" has the id "x-value" had */
    publish(other, G, &y, 1);
    snap = tu_snapshot(other, &len);
    ic_store_close(other);
    tu_rmrf(dir);

    assert_int_equal(ic_store_txn_begin(f->st, true, &t), 0);
    assert_int_equal(ic_store_snapshot_restore(t, snap, len, why, 256), 0);
    assert_int_equal(ic_store_txn_commit(t), 0);
    ic_free(snap);
    publish(f->st, G, &x, 1);
    assert_has(f->st, G, "<urn:s> <urn:p> \"x-value\" .");
}

/* More graphs than the memos hold: they start again empty, and what a
 * graph then holds is still right. */
static void test_bounded(void **state)
{
    struct tu_fx *f = *state;
    struct ic_txn *t;
    char g[32];

    assert_int_equal(ic_store_txn_begin(f->st, true, &t), 0);
    for (int i = 0; i < 4100; i++) {
        const struct lit l = {"urn:s", "urn:p", "v", NULL};
        snprintf(g, sizeof g, "urn:g:%d", i);
        put(t, g, &l, 1);
    }
    assert_int_equal(ic_store_txn_commit(t), 0);
    assert_null(memo_of(f->st, "urn:g:0")); /* before the start again */
    assert_non_null(memo_of(f->st, "urn:g:4099"));
    const struct lit w = {"urn:s", "urn:p", "w", NULL};
    publish(f->st, "urn:g:0", &w, 1);
    assert_has(f->st, "urn:g:0", "<urn:s> <urn:p> \"w\" .");
    assert_has(f->st, "urn:g:4099", "<urn:s> <urn:p> \"v\" .");
}

/* 600 graphs republished with larger tables (~33 KB each): the memos'
 * bytes stay within their bound (16 MiB) as they are replaced in place. */
static void test_bounded_bytes(void **state)
{
    struct tu_fx *f = *state;
    static char big[1024];
    struct ic_txn *t;
    char g[32];

    memset(big, 'x', sizeof big - 1);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(ic_store_txn_begin(f->st, true, &t), 0);
        for (int i = 0; i < 600; i++) {
            struct ic_store_terms w = {0};
            struct ic_load_result res;
            struct ic_term s = ic_term_iri("urn:s");
            snprintf(g, sizeof g, "urn:g:%d", i);
            for (int k = 0; k < (round == 0 ? 1 : 30); k++) {
                char p[32];
                snprintf(p, sizeof p, "urn:p:%d", k);
                char num[16]; /* 1 KiB values, distinct */
                snprintf(num, sizeof num, "%07d", k);
                memcpy(big, num, 7);
                struct ic_term pt = ic_term_iri(p),
                               o = ic_term_literal(big, NULL);
                assert_int_equal(ic_store_terms_put(&w, &s, &pt, &o), 0);
            }
            assert_int_equal(ic_store_terms_end(&w), 0);
            assert_int_equal(ic_store_terms_replace(t, g, w.buf, w.len, &res),
                             0);
            ic_store_terms_free(&w);
            assert_true(ic_store__memo_bytes(f->st) <= ((size_t)16 << 20));
        }
        assert_int_equal(ic_store_txn_commit(t), 0);
    }
    assert_true(ic_store__memo_bytes(f->st) > 0);
    assert_null(memo_of(f->st, "urn:g:0")); /* started again since */
    assert_has(f->st, "urn:g:7", "<urn:s> <urn:p:29> \"0000029x");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ids_come_from_the_memo,
                                        tu_fx_setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_same_as_without_memos, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_forgotten_when_the_sweep_frees_an_id, tu_fx_setup,
            tu_fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_forgotten_when_a_transaction_aborts, tu_fx_setup,
            tu_fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_forgotten_when_a_snapshot_is_restored, tu_fx_setup,
            tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_bounded, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_bounded_bytes, tu_fx_setup,
                                        tu_fx_teardown),
    };
    return tu_main(argc, argv, "memo", tests, IC_ARRAY_LEN(tests));
}
