/*
 * test_snapshot.c - the store's snapshot stream, its restore, the digest,
 * nested transactions and client records.
 */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "store_int.h"
#include "test_util.h"

#define G1 "http://example.org/g1"
#define G2 "http://example.org/g2"

static const char ttl1[] = "@prefix ex: <http://example.org/> .\n"
                           "ex:a ex:p 1, 2, 3 ; ex:q \"x\"@en .\n"
                           "ex:b ex:p 2.5 ; ex:q [ ex:r ex:a ] .\n";
static const char ttl2[] = "@prefix ex: <http://example.org/> .\n"
                           "ex:c ex:p \"2024-01-01T00:00:00Z\"^^"
                           "<http://www.w3.org/2001/XMLSchema#dateTime> .\n";

struct fx {
    char dir[64];
    char path[2][128];
    struct ic_store *st[2];
};

static int setup(void **state)
{
    struct fx *f = ic_calloc(1, sizeof *f);

    tu_tmpdir(f->dir, sizeof f->dir);
    for (int i = 0; i < 2; i++) {
        tu_join(f->path[i], sizeof f->path[i], f->dir, i ? "b" : "a");
        f->st[i] = tu_store_open(f->path[i], 64ULL << 20);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    for (int i = 0; i < 2; i++)
        ic_store_close(f->st[i]);
    tu_rmrf(f->dir);
    ic_free(f);
    return 0;
}

struct buf {
    unsigned char *p;
    size_t len, cap;
    int fail_after; /* calls before the writer fails; < 0: never */
};

static int to_buf(void *data, const void *p, size_t len)
{
    struct buf *b = data;

    if (b->fail_after == 0)
        return IC_EIO;
    if (b->fail_after > 0)
        b->fail_after--;
    tu_append(&b->p, &b->len, &b->cap, p, len);
    return 0;
}

static struct buf snap(struct ic_store *st)
{
    struct buf b = {NULL, 0, 0, -1};
    struct ic_txn *t;

    assert_int_equal(ic_store_txn_begin(st, false, &t), 0);
    assert_int_equal(ic_store_snapshot_write(t, to_buf, &b), 0);
    ic_store_txn_abort(t);
    return b;
}

static void digest(struct ic_store *st, unsigned char out[32])
{
    struct ic_txn *t;

    assert_int_equal(ic_store_txn_begin(st, false, &t), 0);
    assert_int_equal(ic_store_digest(t, out), 0);
    ic_store_txn_abort(t);
}

static int restore(struct ic_store *st, const struct buf *b, char *why)
{
    struct ic_txn *t;
    int rc;

    assert_int_equal(ic_store_txn_begin(st, true, &t), 0);
    rc = ic_store_snapshot_restore(t, b->p, b->len, why, 256);
    if (rc != 0) {
        ic_store_txn_abort(t);
        return rc;
    }
    return ic_store_txn_commit(t);
}

static void
put_kv(struct ic_store *st, enum ic_kv_db db, const char *k, const char *v)
{
    struct ic_txn *t;
    struct ic_kv key = {k, strlen(k)}, val = {v, strlen(v)};

    assert_int_equal(ic_store_txn_begin(st, true, &t), 0);
    assert_int_equal(ic_store_kv_put(t, db, key, val), 0);
    assert_int_equal(ic_store_txn_commit(t), 0);
}

static void set_applied(struct ic_store *st, uint64_t index)
{
    struct ic_txn *t;

    assert_int_equal(ic_store_txn_begin(st, true, &t), 0);
    assert_int_equal(ic_store_applied_set(t, index), 0);
    assert_int_equal(ic_store_txn_commit(t), 0);
}

/* Store A with some of everything. */
static void fill(struct ic_store *st)
{
    struct ic_load_result res;
    struct ic_txn *t;
    struct ic_kv rec = {"record", 6};

    assert_int_equal(tu_load_text(st, ttl1, G1, IC_LOAD_ONE_GRAPH, false, &res),
                     0);
    assert_int_equal(tu_load_text(st, ttl2, G2, IC_LOAD_ONE_GRAPH, false, &res),
                     0);
    put_kv(st, IC_KV_ACCOUNTS, "alice", "{\"k\":1}");
    put_kv(st, IC_KV_CLUSTER, "node/1", "127.0.0.1:5222");
    assert_int_equal(ic_store_txn_begin(st, true, &t), 0);
    assert_int_equal(ic_store_client_put(t, 42, rec), 0);
    assert_int_equal(ic_store_txn_commit(t), 0);
    set_applied(st, 17);
}

static void test_round_trip(void **state)
{
    struct fx *f = *state;
    unsigned char da[32], db[32], de[32];
    struct ic_store_stats sa, sb;
    struct buf b, b2;
    char why[256] = "", *dump_a, *dump_b;
    uint64_t applied = 0;

    digest(f->st[1], de);
    fill(f->st[0]);
    digest(f->st[0], da);
    assert_memory_not_equal(da, de, 32);
    b = snap(f->st[0]);
    assert_int_equal(ic_store_snapshot_check(b.p, b.len, &applied, why, 256),
                     0);
    assert_int_equal(applied, 17);
    assert_int_equal(restore(f->st[1], &b, why), 0);
    digest(f->st[1], db);
    assert_memory_equal(da, db, 32);

    /* the same content: same stats, dumps, and a byte-identical stream */
    tu_stats(f->st[0], &sa);
    tu_stats(f->st[1], &sb);
    assert_int_equal(sa.quads, sb.quads);
    assert_int_equal(sa.terms, sb.terms);
    assert_int_equal(sa.graphs, sb.graphs);
    assert_int_equal(sb.applied_index, 17);
    dump_a = tu_dump(f->st[0], NULL, IC_RDF_NQUADS);
    dump_b = tu_dump(f->st[1], NULL, IC_RDF_NQUADS);
    assert_string_equal(dump_a, dump_b);
    b2 = snap(f->st[1]);
    assert_int_equal(b.len, b2.len);
    assert_memory_equal(b.p, b2.p, b.len);

    /* the restored store goes on like the original: new terms get the same
     * ids on both */
    {
        struct ic_load_result res;
        const char more[] = "<http://example.org/d> <http://example.org/p> "
                            "\"new\" .\n";
        for (int i = 0; i < 2; i++)
            assert_int_equal(tu_load_text(f->st[i], more, G1, IC_LOAD_ONE_GRAPH,
                                          false, &res),
                             0);
        digest(f->st[0], da);
        digest(f->st[1], db);
        assert_memory_equal(da, db, 32);
    }
    ic_free(dump_a);
    ic_free(dump_b);
    ic_free(b.p);
    ic_free(b2.p);
}

static void test_restore_replaces(void **state)
{
    struct fx *f = *state;
    struct ic_load_result res;
    struct ic_txn *t;
    struct ic_kv key = {"bob", 3}, val;
    unsigned char da[32], db[32];
    struct buf b;
    char why[256], *dump;

    fill(f->st[0]);
    /* B holds other things: all of it must go */
    assert_int_equal(tu_load_text(f->st[1],
                                  "<http://x/s> <http://x/p> <http://x/o> .",
                                  G2, IC_LOAD_ONE_GRAPH, false, &res),
                     0);
    put_kv(f->st[1], IC_KV_ACCOUNTS, "bob", "{}");
    put_kv(f->st[1], IC_KV_ROSTERS, "bob", "[]");
    set_applied(f->st[1], 99);
    b = snap(f->st[0]);
    assert_int_equal(restore(f->st[1], &b, why), 0);
    digest(f->st[0], da);
    digest(f->st[1], db);
    assert_memory_equal(da, db, 32);
    assert_int_equal(ic_store_txn_begin(f->st[1], false, &t), 0);
    assert_int_equal(ic_store_kv_get(t, IC_KV_ACCOUNTS, key, &val),
                     IC_ENOTFOUND);
    assert_int_equal(ic_store_kv_get(t, IC_KV_ROSTERS, key, &val),
                     IC_ENOTFOUND);
    assert_int_equal(ic_store_client_get(t, 42, &val), 0);
    assert_int_equal(val.len, 6);
    ic_store_txn_abort(t);
    dump = tu_dump(f->st[1], G2, IC_RDF_NQUADS);
    assert_null(strstr(dump, "http://x/s"));
    ic_free(dump);

    /* restoring an empty store's snapshot empties the store */
    ic_free(b.p);
    ic_store_close(f->st[1]);
    tu_rmrf(f->path[1]);
    f->st[1] = tu_store_open(f->path[1], 64ULL << 20);
    b = snap(f->st[1]);
    digest(f->st[1], db);
    assert_int_equal(restore(f->st[0], &b, why), 0);
    digest(f->st[0], da);
    assert_memory_equal(da, db, 32);
    ic_free(b.p);

    /* the store still opens and is ours after restores */
    ic_store_close(f->st[0]);
    f->st[0] = tu_store_open(f->path[0], 64ULL << 20);
}

/* Every damaged stream is refused and the target keeps its content. */
static void test_corrupt_refused(void **state)
{
    struct fx *f = *state;
    unsigned char before[32], after[32];
    uint64_t seed = 0x5eed;
    struct buf b, bad;
    char why[256];

    fill(f->st[0]);
    put_kv(f->st[1], IC_KV_ACCOUNTS, "carol", "{}");
    digest(f->st[1], before);
    b = snap(f->st[0]);
    bad.p = ic_malloc(b.len + 8);
    bad.fail_after = -1;

    /* every truncation */
    for (size_t n = 0; n < b.len; n++) {
        memcpy(bad.p, b.p, n);
        bad.len = n;
        why[0] = '\0';
        assert_int_equal(restore(f->st[1], &bad, why), IC_ECORRUPT);
        assert_true(why[0] != '\0');
    }
    /* trailing garbage */
    memcpy(bad.p, b.p, b.len);
    memcpy(bad.p + b.len, "garbage!", 8);
    bad.len = b.len + 8;
    assert_int_equal(restore(f->st[1], &bad, why), IC_ECORRUPT);
    /* single flipped bits anywhere */
    for (int i = 0; i < 500; i++) {
        size_t at = (size_t)(tu_rand(&seed) % b.len);
        memcpy(bad.p, b.p, b.len);
        bad.len = b.len;
        bad.p[at] ^= (unsigned char)(1u << (tu_rand(&seed) % 8));
        assert_true(restore(f->st[1], &bad, why) < 0);
    }
    /* a bad magic, an unknown version: named */
    memcpy(bad.p, b.p, b.len);
    bad.p[0] = 'X';
    assert_int_equal(restore(f->st[1], &bad, why), IC_ECORRUPT);
    assert_non_null(strstr(why, "magic"));
    memcpy(bad.p, b.p, b.len);
    bad.p[11] = 9; /* version 9 */
    assert_int_equal(restore(f->st[1], &bad, why), IC_EFORMAT);
    assert_non_null(strstr(why, "version 9"));

    digest(f->st[1], after);
    assert_memory_equal(before, after, 32);
    ic_free(bad.p);
    ic_free(b.p);
}

/* A stream with a valid checksum but records out of LMDB order (as a bug
 * elsewhere could write) fails in the load: the caller aborts. */
static void test_unsorted_refused(void **state)
{
    struct fx *f = *state;
    unsigned char before[32], after[32];
    struct buf b;
    char why[256];

    put_kv(f->st[0], IC_KV_ACCOUNTS, "a1", "x");
    put_kv(f->st[0], IC_KV_ACCOUNTS, "a2", "y");
    digest(f->st[1], before);
    b = snap(f->st[0]);
    {
        unsigned char *p = memmem(b.p, b.len, "a1", 2);
        unsigned char *q = memmem(b.p, b.len, "a2", 2);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        assert_non_null(p);
        assert_non_null(q);
        p[1] = '2';
        q[1] = '1';
        /* re-seal */
        assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
        assert_int_equal(EVP_DigestUpdate(md, b.p, b.len - 32), 1);
        assert_int_equal(EVP_DigestFinal_ex(md, b.p + b.len - 32, NULL), 1);
        EVP_MD_CTX_free(md);
    }
    assert_int_equal(ic_store_snapshot_check(b.p, b.len, NULL, why, 256), 0);
    assert_int_equal(restore(f->st[1], &b, why), IC_ECORRUPT);
    digest(f->st[1], after);
    assert_memory_equal(before, after, 32);
    ic_free(b.p);
}

static void test_writer_error(void **state)
{
    struct fx *f = *state;
    struct buf b = {NULL, 0, 0, 3};
    struct ic_txn *t;

    fill(f->st[0]);
    assert_int_equal(ic_store_txn_begin(f->st[0], false, &t), 0);
    assert_int_equal(ic_store_snapshot_write(t, to_buf, &b), IC_EIO);
    ic_store_txn_abort(t);
    ic_free(b.p);
}

/* Nested transactions: a failed child leaves the parent as it was; a
 * committed one merges, terms and id counter included. */
static void test_nested(void **state)
{
    struct fx *f = *state;
    struct ic_load_opts o = {0};
    struct ic_load_result res;
    struct ic_txn *t, *c;
    unsigned char d0[32], d1[32];
    char *dump;

    o.syntax = IC_RDF_TURTLE;
    o.graph = G1;
    o.graphs = IC_LOAD_ONE_GRAPH;
    o.name = "text";
    /* the same writes in one plain transaction on B, for comparison */
    assert_int_equal(
        tu_load_text(f->st[1], ttl1, G1, IC_LOAD_ONE_GRAPH, false, &res), 0);
    assert_int_equal(
        tu_load_text(f->st[1], ttl2, G1, IC_LOAD_ONE_GRAPH, false, &res), 0);

    assert_int_equal(ic_store_txn_begin(f->st[0], true, &t), 0);
    assert_int_equal(ic_store_load_buffer(t, ttl1, strlen(ttl1), &o, &res), 0);
    /* a child that fails half-way */
    assert_int_equal(ic_store_txn_begin_nested(t, &c), 0);
    assert_int_equal(ic_store_load_buffer(c, ttl2, strlen(ttl2), &o, &res), 0);
    assert_int_equal(ic_store_load_buffer(c, "<a> <b> .", 9, &o, &res),
                     IC_ESYNTAX);
    ic_store_txn_abort(c);
    /* a child that commits */
    assert_int_equal(ic_store_txn_begin_nested(t, &c), 0);
    assert_int_equal(ic_store_load_buffer(c, ttl2, strlen(ttl2), &o, &res), 0);
    assert_int_equal(ic_store_txn_commit(c), 0);
    assert_int_equal(ic_store_txn_commit(t), 0);

    digest(f->st[0], d0);
    digest(f->st[1], d1);
    assert_memory_equal(d0, d1, 32);
    dump = tu_dump(f->st[0], G1, IC_RDF_NQUADS);
    assert_non_null(strstr(dump, "2024-01-01"));
    ic_free(dump);

    /* a read transaction cannot have children */
    assert_int_equal(ic_store_txn_begin(f->st[0], false, &t), 0);
    assert_int_equal(ic_store_txn_begin_nested(t, &c), IC_EREADONLY);
    ic_store_txn_abort(t);
}

static void test_clients(void **state)
{
    struct fx *f = *state;
    struct ic_txn *t;
    struct ic_kv v1 = {"one", 3}, v2 = {"two!", 4}, got;

    assert_int_equal(ic_store_txn_begin(f->st[0], true, &t), 0);
    assert_int_equal(ic_store_client_get(t, 7, &got), IC_ENOTFOUND);
    assert_int_equal(ic_store_client_put(t, 7, v1), 0);
    assert_int_equal(ic_store_client_put(t, UINT64_MAX, v2), 0);
    assert_int_equal(ic_store_client_get(t, 7, &got), 0);
    assert_int_equal(got.len, 3);
    assert_memory_equal(got.data, "one", 3);
    assert_int_equal(ic_store_txn_commit(t), 0);
    assert_int_equal(ic_store_txn_begin(f->st[0], false, &t), 0);
    assert_int_equal(ic_store_client_get(t, UINT64_MAX, &got), 0);
    assert_int_equal(got.len, 4);
    assert_int_equal(ic_store_client_put(t, 7, v2), IC_EREADONLY);
    ic_store_txn_abort(t);
}

/* The presence registry (entries, node index, leases) goes through a
 * snapshot like any other content. */
static int list_jids(void *data, const struct ic_store_presence *p)
{
    char *out = data;
    size_t at = strlen(out);

    snprintf(out + at, 256 - at, "%.*s@%llu;", (int)p->jid.len,
             (const char *)p->jid.data, (unsigned long long)p->incarnation);
    return 0;
}

static void test_presence(void **state)
{
    struct fx *f = *state;
    struct ic_store_presence p = {{"a@x/1", 5}, 2, 9, {"<p/>", 4}};
    struct ic_store_lease l = {9, false}, got;
    unsigned char da[32], db[32];
    char why[256] = "", out[256] = "";
    struct ic_txn *t;
    struct buf b;

    fill(f->st[0]);
    assert_int_equal(ic_store_txn_begin(f->st[0], true, &t), 0);
    assert_int_equal(ic_store_presence_put(t, &p), 0);
    p.jid = (struct ic_kv){"b@x/1", 5};
    assert_int_equal(ic_store_presence_put(t, &p), 0);
    assert_int_equal(ic_store_lease_put(t, 2, &l), 0);
    assert_int_equal(ic_store_txn_commit(t), 0);
    b = snap(f->st[0]);
    assert_int_equal(restore(f->st[1], &b, why), 0);
    digest(f->st[0], da);
    digest(f->st[1], db);
    assert_memory_equal(da, db, 32);
    assert_int_equal(ic_store_txn_begin(f->st[1], false, &t), 0);
    assert_int_equal(ic_store_presence_each_node(t, 2, list_jids, out), 0);
    assert_string_equal(out, "a@x/1@9;b@x/1@9;");
    assert_int_equal(ic_store_lease_get(t, 2, &got), 0);
    assert_int_equal(got.incarnation, 9);
    ic_store_txn_abort(t);
    ic_free(b.p);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsorted_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_presence, setup, teardown),
    };
    return tu_main(argc, argv, "snapshot", tests, IC_ARRAY_LEN(tests));
}
