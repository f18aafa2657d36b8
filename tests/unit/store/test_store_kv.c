/*
 * test_store_kv.c - the store's key/value databases, the presence registry
 * and node leases, and the applied Raft index.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "test_util.h"

static void test_kv(void **state)
{
    struct tu_fx *f = *state;
    struct ic_txn *txn;
    struct ic_kv key = {"alice", 5}, val;
    char buf[64], big[512];

    memset(big, 'k', sizeof big);
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    for (int db = 0; db < IC_KV__COUNT; db++) {
        struct ic_kv v;
        snprintf(buf, sizeof buf, "value of db %d", db);
        v.data = buf;
        v.len = strlen(buf);
        assert_int_equal(ic_store_kv_get(txn, (enum ic_kv_db)db, key, &val),
                         IC_ENOTFOUND);
        assert_int_equal(ic_store_kv_put(txn, (enum ic_kv_db)db, key, v), 0);
        assert_int_equal(ic_store_kv_get(txn, (enum ic_kv_db)db, key, &val), 0);
        assert_int_equal(val.len, v.len);
        assert_memory_equal(val.data, buf, v.len);
    }
    /* limits and bad arguments */
    {
        struct ic_kv empty = {"", 0}, k511 = {big, 511}, k512 = {big, 512};
        struct ic_kv v = {"v", 1};
        assert_int_equal(ic_store_kv_put(txn, IC_KV_ACCOUNTS, empty, v),
                         IC_EINVAL);
        assert_int_equal(ic_store_kv_put(txn, IC_KV_ACCOUNTS, k512, v),
                         IC_EINVAL);
        assert_int_equal(ic_store_kv_put(txn, IC_KV_ACCOUNTS, k511, v), 0);
        assert_int_equal(ic_store_kv_put(txn, IC_KV__COUNT, key, v), IC_EINVAL);
        assert_int_equal(ic_store_kv_get(txn, IC_KV__COUNT, key, &val),
                         IC_EINVAL);
        assert_int_equal(ic_store_kv_del(txn, IC_KV__COUNT, key), IC_EINVAL);
        assert_int_equal(ic_store_kv_del(txn, IC_KV_ACCOUNTS, k511), 0);
    }
    assert_int_equal(ic_store_txn_commit(txn), 0);

    /* persisted, separate per database */
    ic_store_close(f->st);
    f->st = tu_store_open(f->store, 64ULL << 20);
    assert_int_equal(ic_store_txn_begin(f->st, false, &txn), 0);
    for (int db = 0; db < IC_KV__COUNT; db++) {
        snprintf(buf, sizeof buf, "value of db %d", db);
        assert_int_equal(ic_store_kv_get(txn, (enum ic_kv_db)db, key, &val), 0);
        assert_int_equal(val.len, strlen(buf));
        assert_memory_equal(val.data, buf, val.len);
    }
    assert_int_equal(ic_store_kv_put(txn, IC_KV_ROSTERS, key, key),
                     IC_EREADONLY);
    assert_int_equal(ic_store_kv_del(txn, IC_KV_ROSTERS, key), IC_EREADONLY);
    ic_store_txn_abort(txn);

    /* overwrite one, delete another: the rest stay */
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    {
        struct ic_kv v = {"\0binary\xff", 8};
        assert_int_equal(ic_store_kv_put(txn, IC_KV_PRESENCE, key, v), 0);
        assert_int_equal(ic_store_kv_get(txn, IC_KV_PRESENCE, key, &val), 0);
        assert_int_equal(val.len, 8);
        assert_memory_equal(val.data, "\0binary\xff", 8);
    }
    assert_int_equal(ic_store_kv_del(txn, IC_KV_CLUSTER, key), 0);
    assert_int_equal(ic_store_kv_get(txn, IC_KV_CLUSTER, key, &val),
                     IC_ENOTFOUND);
    assert_int_equal(ic_store_kv_del(txn, IC_KV_CLUSTER, key), IC_ENOTFOUND);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    assert_int_equal(ic_store_txn_begin(f->st, false, &txn), 0);
    assert_int_equal(ic_store_kv_get(txn, IC_KV_CLUSTER, key, &val),
                     IC_ENOTFOUND);
    assert_int_equal(ic_store_kv_get(txn, IC_KV_DELEGATIONS, key, &val), 0);
    assert_int_equal(val.len, strlen("value of db 3"));
    assert_int_equal(ic_store_kv_get(txn, IC_KV_PRESENCE, key, &val), 0);
    assert_int_equal(val.len, 8);
    ic_store_txn_abort(txn);
    {
        /* key/value data is not part of the catalog */
        struct ic_store_stats st;
        tu_stats(f->st, &st);
        assert_int_equal(st.quads, 0);
        assert_int_equal(st.terms, 0);
    }
}

static void test_applied_index(void **state)
{
    struct tu_fx *f = *state;
    struct ic_txn *txn;
    struct ic_store_stats st;
    uint64_t idx = 99;

    assert_int_equal(ic_store_txn_begin(f->st, false, &txn), 0);
    assert_int_equal(ic_store_applied_get(txn, &idx), 0);
    assert_int_equal(idx, 0);
    assert_int_equal(ic_store_applied_set(txn, 5), IC_EREADONLY);
    ic_store_txn_abort(txn);

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_applied_set(txn, 42), 0);
    assert_int_equal(ic_store_applied_get(txn, &idx), 0);
    assert_int_equal(idx, 42);
    assert_int_equal(ic_store_txn_commit(txn), 0);

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_applied_set(txn, UINT64_MAX - 1), 0);
    ic_store_txn_abort(txn);

    ic_store_close(f->st);
    f->st = tu_store_open(f->store, 64ULL << 20);
    assert_int_equal(ic_store_txn_begin(f->st, false, &txn), 0);
    assert_int_equal(ic_store_applied_get(txn, &idx), 0);
    assert_int_equal(idx, 42);
    ic_store_txn_abort(txn);
    tu_stats(f->st, &st);
    assert_int_equal(st.applied_index, 42);
}

/* The presence registry: entries per full JID with a per-node index kept
 * in step, iteration by bare JID and by node, drops by incarnation. */
static struct ic_store_presence
pres(const char *jid, uint16_t node, uint64_t inc, const char *payload)
{
    struct ic_store_presence p;

    p.jid.data = jid;
    p.jid.len = strlen(jid);
    p.node = node;
    p.incarnation = inc;
    p.payload.data = payload;
    p.payload.len = strlen(payload);
    return p;
}

static int pres_list(void *data, const struct ic_store_presence *p)
{
    char *out = data;
    size_t at = strlen(out);

    snprintf(out + at, 512 - at, "%.*s=%u/%llu/%.*s;", (int)p->jid.len,
             (const char *)p->jid.data, (unsigned)p->node,
             (unsigned long long)p->incarnation, (int)p->payload.len,
             (const char *)p->payload.data);
    return 0;
}

static int pres_stop(void *data, const struct ic_store_presence *p)
{
    (void)p;
    ++*(int *)data;
    return 42;
}

static void pres_assert(struct ic_txn *txn,
                        const char *bare,
                        uint16_t node,
                        const char *want)
{
    char out[512] = "";
    int rc;

    if (bare != NULL)
        rc = ic_store_presence_each_bare(
            txn, (struct ic_kv){bare, strlen(bare)}, pres_list, out);
    else
        rc = ic_store_presence_each_node(txn, node, pres_list, out);
    assert_int_equal(rc, 0);
    assert_string_equal(out, want);
}

static void test_presence_registry(void **state)
{
    struct tu_fx *f = *state;
    struct ic_store_presence p = pres("a@x/1", 1, 5, "<p/>"), got;
    struct ic_txn *txn;
    char big[IC_STORE_JID_MAX + 2], out[512] = "";
    size_t n = 0;
    int calls = 0;

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_presence_get(txn, p.jid, &got), IC_ENOTFOUND);
    assert_int_equal(ic_store_presence_put(txn, &p), 0);
    p = pres("a@x/2", 2, 1, "");
    assert_int_equal(ic_store_presence_put(txn, &p), 0);
    p = pres("a@xy/1", 1, 5, "<xy/>"); /* not a@x's */
    assert_int_equal(ic_store_presence_put(txn, &p), 0);
    p = pres("b@x/1", 1, 4, "<old/>");
    assert_int_equal(ic_store_presence_put(txn, &p), 0);
    pres_assert(txn, "a@x", 0, "a@x/1=1/5/<p/>;a@x/2=2/1/;");
    pres_assert(txn, NULL, 1,
                "a@x/1=1/5/<p/>;a@xy/1=1/5/<xy/>;"
                "b@x/1=1/4/<old/>;");
    pres_assert(txn, NULL, 2, "a@x/2=2/1/;");
    pres_assert(txn, NULL, 3, "");
    /* another node takes a JID over: the index follows */
    p = pres("a@x/2", 1, 5, "<moved/>");
    assert_int_equal(ic_store_presence_put(txn, &p), 0);
    pres_assert(txn, NULL, 2, "");
    assert_int_equal(ic_store_presence_get(txn, p.jid, &got), 0);
    assert_int_equal(got.node, 1);
    assert_int_equal(got.payload.len, 8);
    /* an iteration stops at the callback's word */
    assert_int_equal(ic_store_presence_each_node(txn, 1, pres_stop, &calls),
                     42);
    assert_int_equal(calls, 1);
    /* drop by incarnation: only b@x/1 (4) is in [0, 4] */
    assert_int_equal(ic_store_presence_drop(txn, 1, 0, 4, pres_list, out, &n),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(out, "b@x/1=1/4/<old/>;");
    pres_assert(txn, NULL, 1,
                "a@x/1=1/5/<p/>;a@x/2=1/5/<moved/>;"
                "a@xy/1=1/5/<xy/>;");
    assert_int_equal(ic_store_presence_del(txn, (struct ic_kv){"a@xy/1", 6}),
                     0);
    assert_int_equal(ic_store_presence_del(txn, (struct ic_kv){"a@xy/1", 6}),
                     IC_ENOTFOUND);
    assert_int_equal(ic_store_presence_drop(txn, 1, 5, 5, NULL, NULL, &n), 0);
    assert_int_equal(n, 2);
    pres_assert(txn, NULL, 1, "");
    pres_assert(txn, "a@x", 0, "");
    /* JIDs: not empty, no control bytes, not too long */
    p = pres("", 1, 1, "");
    assert_int_equal(ic_store_presence_put(txn, &p), IC_EINVAL);
    p = pres("\x01x/y", 1, 1, "");
    assert_int_equal(ic_store_presence_put(txn, &p), IC_EINVAL);
    memset(big, 'j', sizeof big);
    big[IC_STORE_JID_MAX + 1] = '\0';
    p = pres(big, 7, 1, "");
    assert_int_equal(ic_store_presence_put(txn, &p), IC_EINVAL);
    p.jid.len = IC_STORE_JID_MAX;
    assert_int_equal(ic_store_presence_put(txn, &p), 0);
    assert_int_equal(ic_store_presence_get(txn, p.jid, &got), 0);
    assert_int_equal(ic_store_txn_commit(txn), 0);

    /* persisted; read-only refuses writes */
    assert_int_equal(ic_store_txn_begin(f->st, false, &txn), 0);
    pres_assert(txn, NULL, 1, "");
    assert_int_equal(ic_store_presence_get(txn, p.jid, &got), 0);
    assert_int_equal(ic_store_presence_put(txn, &p), IC_EREADONLY);
    assert_int_equal(ic_store_presence_del(txn, p.jid), IC_EREADONLY);
    ic_store_txn_abort(txn);
}

/* Lease records, and records that do not parse. */
static void test_presence_leases(void **state)
{
    struct tu_fx *f = *state;
    struct ic_store_lease l = {7, false}, got;
    struct ic_store_presence p;
    struct ic_txn *txn;

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_lease_get(txn, 3, &got), IC_ENOTFOUND);
    assert_int_equal(ic_store_lease_put(txn, 3, &l), 0);
    l.incarnation = UINT64_MAX;
    l.revoked = true;
    assert_int_equal(ic_store_lease_put(txn, 65535, &l), 0);
    assert_int_equal(ic_store_lease_get(txn, 3, &got), 0);
    assert_int_equal(got.incarnation, 7);
    assert_false(got.revoked);
    assert_int_equal(ic_store_lease_get(txn, 65535, &got), 0);
    assert_int_equal(got.incarnation, UINT64_MAX);
    assert_true(got.revoked);
    /* leases are not entries: a node's iteration does not see them */
    pres_assert(txn, NULL, 3, "");
    /* damaged records */
    assert_int_equal(ic_store_kv_put(txn, IC_KV_PRESENCE,
                                     (struct ic_kv){"\x01\x00\x03", 3},
                                     (struct ic_kv){"\x01zz", 3}),
                     0);
    assert_int_equal(ic_store_lease_get(txn, 3, &got), IC_ECORRUPT);
    assert_int_equal(ic_store_kv_put(txn, IC_KV_PRESENCE,
                                     (struct ic_kv){"c@x/1", 5},
                                     (struct ic_kv){"\x02", 1}),
                     0);
    assert_int_equal(ic_store_presence_get(txn, (struct ic_kv){"c@x/1", 5}, &p),
                     IC_ECORRUPT);
    /* an index record without its entry */
    assert_int_equal(ic_store_kv_put(txn, IC_KV_PRESENCE,
                                     (struct ic_kv){"\x00\x00\x09z/1", 6},
                                     (struct ic_kv){"\0\0\0\0\0\0\0\1", 8}),
                     0);
    assert_int_equal(ic_store_presence_each_node(txn, 9, pres_list, NULL),
                     IC_ECORRUPT);
    assert_int_equal(ic_store_presence_drop(txn, 9, 0, 9, NULL, NULL, NULL),
                     IC_ECORRUPT);
    ic_store_txn_abort(txn);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kv, tu_fx_setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_presence_registry, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_presence_leases, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_applied_index, tu_fx_setup,
                                        tu_fx_teardown),
    };

    return tu_main(argc, argv, "store_kv", tests, IC_ARRAY_LEN(tests));
}
