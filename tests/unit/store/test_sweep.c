/*
 * test_sweep.c - the dictionary sweep (store/sweep.c): terms no quad uses
 * go, in slices from a replicated cursor; terms in use stay; a term swept
 * in a transaction can be used again in it; two stores given the same
 * writes and sweeps stay byte-identical (equal digests).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "store_int.h"
#include "test_util.h"

#define G1 "urn:g1"
#define G2 "urn:g2"
#define S "urn:cloud"
#define P "urn:price"

static struct ic_term lit(const char *lex)
{
    return ic_term_literal(lex, IC_XSD "string");
}

static struct ic_term num(const char *lex)
{
    return ic_term_literal(lex, IC_XSD "integer");
}

/* Adds (or removes) (S, P, O, G) in TXN. */
static void quad(struct ic_txn *t, struct ic_term o, const char *g, bool add)
{
    struct ic_term s = ic_term_iri(S), p = ic_term_iri(P), gt = ic_term_iri(g);
    const struct ic_term *q[4] = {&s, &p, &o, &gt};

    assert_int_equal(add ? ic_store_quad_add(t, q) : ic_store_quad_remove(t, q),
                     0);
}

static void
write_quad(struct ic_store *st, struct ic_term o, const char *g, bool add)
{
    struct ic_txn *t;

    assert_int_equal(ic_store_txn_begin(st, true, &t), 0);
    quad(t, o, g, add);
    assert_int_equal(ic_store_txn_commit(t), 0);
}

static bool known(struct ic_store *st, struct ic_term term)
{
    struct ic_txn *t;
    uint64_t id;
    int rc;

    assert_int_equal(ic_store_txn_begin(st, false, &t), 0);
    rc = ic_store_term_id(t, &term, false, &id);
    ic_store_txn_abort(t);
    assert_true(rc == 0 || rc == IC_ENOTFOUND);
    return rc == 0;
}

static uint64_t count(struct ic_store *st, int dbi)
{
    struct ic_txn *t;
    MDB_stat ms;

    assert_int_equal(ic_store_txn_begin(st, false, &t), 0);
    assert_int_equal(mdb_stat(t->txn, st->dbi[dbi], &ms), 0);
    ic_store_txn_abort(t);
    return ms.ms_entries;
}

/* Sweeps in slices of MAX until a slice wraps; the terms removed. */
static uint64_t sweep_cycle(struct ic_store *st, uint32_t max)
{
    struct ic_store_sweep s = {0};
    uint64_t removed = 0;
    int slices = 0;

    do {
        struct ic_txn *t;
        assert_int_equal(ic_store_txn_begin(st, true, &t), 0);
        assert_int_equal(ic_store_terms_sweep(t, max, &s), 0);
        assert_true(s.examined <= max);
        assert_int_equal(ic_store_txn_commit(t), 0);
        removed += s.removed;
        assert_true(++slices < 1000);
    } while (!s.wrapped);
    return removed;
}

/* Values replaced in a graph leave the dictionary at the next sweep;
 * the subject, predicate, graph and the current value stay. */
static void test_unused_terms_go(void **state)
{
    struct tu_fx *f = *state;
    char v[16];
    uint64_t terms, hashes;

    write_quad(f->st, lit("v0"), G1, true);
    write_quad(f->st, num("7"), G2, true);
    terms = count(f->st, DBI_ID2TERM);
    hashes = count(f->st, DBI_HASH2ID);
    assert_int_equal(terms, 6);     /* S, P, G1, v0, G2, 7 */
    for (int i = 1; i <= 20; i++) { /* a value that changes */
        snprintf(v, sizeof v, "v%d", i);
        write_quad(f->st, lit(v), G1, true);
        snprintf(v, sizeof v, "v%d", i - 1);
        write_quad(f->st, lit(v), G1, false);
    }
    write_quad(f->st, num("7"), G2, false); /* G2 empty: G2 and 7 unused */
    assert_int_equal(count(f->st, DBI_ID2TERM), terms + 20);
    assert_int_equal(sweep_cycle(f->st, 3), 22); /* v0..v19, G2, 7 */
    assert_int_equal(count(f->st, DBI_ID2TERM), 4);
    assert_int_equal(count(f->st, DBI_HASH2ID), hashes - 2);
    assert_true(known(f->st, lit("v20")));
    assert_true(known(f->st, ic_term_iri(S)));
    assert_true(known(f->st, ic_term_iri(G1)));
    assert_false(known(f->st, lit("v3")));
    assert_false(known(f->st, num("7")));
    assert_false(known(f->st, ic_term_iri(G2)));
    assert_int_equal(sweep_cycle(f->st, 1000), 0); /* nothing left */
    /* what went can come back, under a new id */
    write_quad(f->st, lit("v3"), G2, true);
    write_quad(f->st, num("7"), G2, true);
    assert_true(known(f->st, lit("v3")));
    assert_true(known(f->st, num("7")));
    assert_int_equal(sweep_cycle(f->st, 1000), 0);
    assert_int_equal(count(f->st, DBI_ID2TERM), 7);
}

/* A term swept inside a transaction (nested, as the state machine runs
 * each entry) is found again when the same transaction uses it after:
 * nothing remembered its old id. */
static void test_swept_then_used_in_one_transaction(void **state)
{
    struct tu_fx *f = *state;
    struct ic_store_sweep s;
    struct ic_txn *top, *child;
    uint64_t q[4];
    struct ic_term got;
    char buf[64];

    write_quad(f->st, lit("keep"), G1, true);
    assert_int_equal(ic_store_txn_begin(f->st, true, &top), 0);
    quad(top, lit("old"), G1, true); /* created in this transaction */
    quad(top, num("5"), G1, true);
    quad(top, lit("old"), G1, false);
    quad(top, num("5"), G1, false);
    assert_int_equal(ic_store_txn_begin_nested(top, &child), 0);
    assert_int_equal(ic_store_terms_sweep(child, 1000, &s), 0);
    assert_int_equal(s.removed, 2);
    assert_true(s.wrapped);
    assert_int_equal(ic_store_txn_commit(child), 0);
    assert_int_equal(ic_store_txn_begin_nested(top, &child), 0);
    quad(child, lit("old"), G1, true); /* again, after the sweep */
    quad(child, num("5"), G1, true);
    assert_int_equal(ic_store_txn_commit(child), 0);
    assert_int_equal(ic_store_txn_commit(top), 0);
    /* every quad's object resolves, to the right term */
    assert_int_equal(ic_store_txn_begin(f->st, false, &top), 0);
    struct ic_store_iter *it;
    const uint64_t any[4] = {0};
    int n = 0, rc;
    assert_int_equal(ic_store_iter_new(top, any, &it), 0);
    while ((rc = ic_store_iter_next(it, q)) == 0) {
        uint64_t id = 0;
        assert_int_equal(ic_store_term_get(top, q[2], &got, buf), 0);
        assert_true(strcmp(got.value, "keep") == 0 ||
                    strcmp(got.value, "old") == 0 ||
                    strcmp(got.value, "5") == 0);
        /* and the term looks up to that id (no stale id remembered) */
        assert_int_equal(ic_store_term_id(top, &got, false, &id), 0);
        assert_int_equal(id, q[2]);
        n++;
    }
    assert_int_equal(rc, IC_EEND);
    ic_store_iter_free(it);
    ic_store_txn_abort(top);
    assert_int_equal(n, 3);
    assert_true(known(f->st, lit("old")));
    assert_true(known(f->st, num("5")));
    assert_int_equal(count(f->st, DBI_ID2TERM), 6);
    assert_int_equal(count(f->st, DBI_HASH2ID), 6);
}

/* The store's term cache loses exactly the swept terms: removing entries
 * from its open-addressing table leaves every other one findable. */
static void test_cache_follows_sweep(void **state)
{
    struct tu_fx *f = *state;
    struct ic_txn *t;
    char v[16], *enc = NULL;
    size_t cap = 0, len;
    uint64_t tag, okey, inl;

    for (int pass = 0; pass < 2; pass++) { /* add all, then remove odds */
        assert_int_equal(ic_store_txn_begin(f->st, true, &t), 0);
        for (int i = pass; i < 600; i += 1 + pass) {
            snprintf(v, sizeof v, "c%d", i);
            quad(t, lit(v), G1, pass == 0);
        }
        assert_int_equal(ic_store_txn_commit(t), 0);
    }
    assert_int_equal(sweep_cycle(f->st, 1000), 300);
    for (int i = 0; i < 600; i++) {
        struct ic_term term;
        snprintf(v, sizeof v, "c%d", i);
        term = lit(v);
        assert_int_equal(
            ic_store__term_encode(&term, &enc, &cap, &len, &tag, &okey, &inl),
            0);
        assert_int_equal(ic_store__tcache_has(&f->st->terms, enc, len),
                         i % 2 == 0);
        assert_int_equal(known(f->st, term), i % 2 == 0);
    }
    ic_free(enc);
}

static void digest(struct ic_store *st, unsigned char out[32])
{
    struct ic_txn *t;

    assert_int_equal(ic_store_txn_begin(st, false, &t), 0);
    assert_int_equal(ic_store_digest(t, out), 0);
    ic_store_txn_abort(t);
}

/* The same writes and sweeps on two stores leave them byte-identical,
 * whatever slice sizes came between, once both cycles end. */
static void test_replicas_stay_identical(void **state)
{
    struct tu_fx *f = *state;
    char dir2[192], v[16];
    struct ic_store *b;
    unsigned char da[32], db[32];

    tu_join(dir2, sizeof dir2, f->dir, "store2");
    b = tu_store_open(dir2, 64ULL << 20);
    for (int i = 0; i < 40; i++) {
        snprintf(v, sizeof v, "%d", i);
        write_quad(f->st, num(v), G1, true);
        write_quad(b, num(v), G1, true);
        if (i % 3 == 0) {
            write_quad(f->st, num(v), G1, false);
            write_quad(b, num(v), G1, false);
        }
        if (i % 10 == 9) {
            struct ic_txn *t;
            assert_int_equal(ic_store_txn_begin(f->st, true, &t), 0);
            assert_int_equal(ic_store_terms_sweep(t, 4, NULL), 0);
            assert_int_equal(ic_store_txn_commit(t), 0);
            assert_int_equal(ic_store_txn_begin(b, true, &t), 0);
            assert_int_equal(ic_store_terms_sweep(t, 4, NULL), 0);
            assert_int_equal(ic_store_txn_commit(t), 0);
        }
    }
    digest(f->st, da);
    digest(b, db);
    assert_memory_equal(da, db, 32);
    ic_store_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unused_terms_go, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_swept_then_used_in_one_transaction,
                                        tu_fx_setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_cache_follows_sweep, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_replicas_stay_identical,
                                        tu_fx_setup, tu_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
