/*
 * test_fsm.c - the state machine under the raft library's in-memory
 * fixture: three (or four) servers, each with its own LMDB store in a
 * temporary directory. Replication, partitions, catch-up by snapshot,
 * idempotent re-apply, deduplication and business failures; every check
 * ends with the stores' digests.
 *
 * The fixture's time is simulated and its elections are deterministic
 * (fixed randomized timeouts), so every run takes the same path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>
#include <raft/fixture.h>

#include "raft_int.h"
#include "test_util.h"

#define MAX_SERVERS 4
#define G_CLOUD "xmpp:cloud1@example.org"

struct fx {
    char dir[64];
    struct raft_fixture f;
    struct ic_store *st[MAX_SERVERS];
    struct ic_raft_fsm *fsm[MAX_SERVERS];
    unsigned n;
    uint64_t client;
    uint64_t seq;
};

/* A submitted command: raft's request and our wait for its result. */
struct sub {
    struct raft_apply req;
    struct ic_raft__wait w;
    struct ic_raft_fsm *fsm;
    bool fired;
    int status;
};

static void add_server(struct fx *x, unsigned threshold)
{
    unsigned i = x->n;
    char name[16], path[128];
    struct raft *r;

    assert_true(i < MAX_SERVERS);
    snprintf(name, sizeof name, "s%u", i);
    tu_join(path, sizeof path, x->dir, name);
    x->st[i] = tu_store_open(path, 64ULL << 20);
    assert_int_equal(ic_raft_fsm_new(x->st[i], &x->fsm[i]), 0);
    assert_int_equal(raft_fixture_grow(&x->f, ic_raft_fsm_get(x->fsm[i])), 0);
    r = raft_fixture_get(&x->f, i);
    ic_raft_fsm_bind(x->fsm[i], r);
    r->tracer = ic_raft_tracer();
    raft_seed(r, 0x5eed0000u + i * 7919u); /* distinct, fixed */
    raft_set_pre_vote(r, true);
    if (threshold > 0) {
        raft_set_snapshot_threshold(r, threshold);
        raft_set_snapshot_trailing(r, 2);
    }
    x->n++;
}

static int setup_with(void **state, unsigned threshold)
{
    struct fx *x = ic_calloc(1, sizeof *x);
    struct raft_configuration conf;

    tu_tmpdir(x->dir, sizeof x->dir);
    assert_int_equal(raft_fixture_initialize(&x->f), 0);
    for (int i = 0; i < 3; i++)
        add_server(x, threshold);
    assert_int_equal(raft_fixture_configuration(&x->f, 3, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&x->f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&x->f), 0);
    raft_fixture_elect(&x->f, 0);
    x->client = 0x1c0ffee5eedULL; /* fixed: runs are repeatable */
    *state = x;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, 0);
}

static int setup_snapshots(void **state)
{
    return setup_with(state, 4);
}

static int teardown(void **state)
{
    struct fx *x = *state;

    raft_fixture_close(&x->f);
    for (unsigned i = 0; i < x->n; i++) {
        ic_raft_fsm_free(x->fsm[i]);
        ic_store_close(x->st[i]);
    }
    tu_rmrf(x->dir);
    ic_free(x);
    return 0;
}

/* Commands */

static struct ic_raft_op kv_put(const char *key, const char *val)
{
    struct ic_raft_op op;

    memset(&op, 0, sizeof op);
    op.type = IC_RAFT_OP_KV_PUT;
    op.kv.db = IC_KV_ACCOUNTS;
    op.kv.key.data = key;
    op.kv.key.len = strlen(key);
    op.kv.val.data = val;
    op.kv.val.len = strlen(val);
    return op;
}

static struct ic_raft_op replace(const char *graph, const char *ttl)
{
    struct ic_raft_op op;

    memset(&op, 0, sizeof op);
    op.type = IC_RAFT_OP_GRAPH_REPLACE;
    op.rdf.syntax = IC_RDF_TURTLE;
    op.rdf.graph = graph;
    op.rdf.text = ttl;
    op.rdf.text_len = strlen(ttl);
    return op;
}

static void on_applied(struct raft_apply *req, int status, void *result)
{
    struct sub *s = req->data;

    assert_null(result);
    s->fired = true;
    s->status = status;
    ic_raft__fsm_wait_del(s->fsm, &s->w);
}

/* Submits CMD on server I, which must accept it (be the leader). */
static struct sub *submit_cmd(struct fx *x, unsigned i, struct ic_raft_cmd *c)
{
    struct sub *s = ic_calloc(1, sizeof *s);
    struct raft_buffer buf;

    assert_int_equal(ic_raft_cmd_size(c, &buf.len), 0);
    buf.base = raft_malloc(buf.len);
    assert_non_null(buf.base);
    assert_int_equal(ic_raft_cmd_encode(c, buf.base, buf.len), 0);
    s->fsm = x->fsm[i];
    s->w.client = c->client;
    s->w.seq = c->seq;
    ic_raft__fsm_wait_add(s->fsm, &s->w);
    s->req.data = s;
    assert_int_equal(
        raft_apply(raft_fixture_get(&x->f, i), &s->req, &buf, 1, on_applied),
        0);
    return s;
}

/* One op with the next sequence of the test's client. */
static struct sub *submit(struct fx *x, unsigned i, struct ic_raft_op op)
{
    struct ic_raft_cmd c = {x->client, ++x->seq, false, 1, &op};
    return submit_cmd(x, i, &c);
}

static bool fired(struct raft_fixture *f, void *arg)
{
    (void)f;
    return ((struct sub *)arg)->fired;
}

/* Waits for S's callback: it must succeed with RESULT_CODE. */
static void wait_ok(struct fx *x, struct sub *s, int result_code)
{
    assert_true(raft_fixture_step_until(&x->f, fired, s, 5000));
    assert_int_equal(s->status, 0);
    assert_true(s->w.done);
    assert_int_equal(s->w.res.code, result_code);
}

static void wait_all_applied(struct fx *x, raft_index index)
{
    assert_true(raft_fixture_step_until_applied(&x->f, x->n, index, 10000));
}

static void digest(struct ic_store *st, unsigned char out[32])
{
    struct ic_txn *t;

    assert_int_equal(ic_store_txn_begin(st, false, &t), 0);
    assert_int_equal(ic_store_digest(t, out), 0);
    ic_store_txn_abort(t);
}

static void assert_same(struct fx *x, unsigned a, unsigned b)
{
    unsigned char da[32], db[32];

    digest(x->st[a], da);
    digest(x->st[b], db);
    assert_memory_equal(da, db, 32);
}

static void assert_all_same(struct fx *x)
{
    for (unsigned i = 1; i < x->n; i++)
        assert_same(x, 0, i);
}

/* The value of accounts KEY on server I, or NULL. */
static char *get(struct fx *x, unsigned i, const char *key)
{
    struct ic_kv k = {key, strlen(key)}, v;
    struct ic_txn *t;
    char *out = NULL;

    assert_int_equal(ic_store_txn_begin(x->st[i], false, &t), 0);
    if (ic_store_kv_get(t, IC_KV_ACCOUNTS, k, &v) == 0)
        out = ic_strndup(v.data, v.len);
    ic_store_txn_abort(t);
    return out;
}

static void
assert_get(struct fx *x, unsigned i, const char *key, const char *want)
{
    char *got = get(x, i, key);

    if (want == NULL) {
        assert_null(got);
    } else {
        assert_non_null(got);
        assert_string_equal(got, want);
    }
    ic_free(got);
}

static uint64_t applied_of(struct ic_store *st)
{
    struct ic_store_stats s;

    tu_stats(st, &s);
    return s.applied_index;
}

/* Tests */

static const char ttl_a[] = "@prefix ic: <http://www.csp/resOntology#> .\n"
                            "<" G_CLOUD "#me> ic:replicationFactor 5 ;\n"
                            "    ic:tier \"gold\" .\n";
static const char ttl_b[] = "@prefix ic: <http://www.csp/resOntology#> .\n"
                            "<" G_CLOUD "#me> ic:replicationFactor 7 .\n";

static void test_replicate(void **state)
{
    struct fx *x = *state;
    struct sub *s[24];
    char key[24][16], val[24][16];
    int n = 0;

    for (int i = 0; i < 20; i++) {
        snprintf(key[i], sizeof key[i], "user%d", i % 7);
        snprintf(val[i], sizeof val[i], "v%d", i);
        s[n++] = submit(x, 0, kv_put(key[i], val[i]));
    }
    s[n++] = submit(x, 0, replace(G_CLOUD, ttl_a));
    s[n++] = submit(x, 0, replace(G_CLOUD, ttl_b));
    {
        struct ic_raft_op ops[3];
        struct ic_raft_cmd c = {x->client, ++x->seq, true, 3, ops};
        ops[0] = kv_put("batch1", "x");
        ops[1] = kv_put("batch2", "y");
        ops[2] = replace("xmpp:cloud2@example.org", ttl_a);
        s[n++] = submit_cmd(x, 0, &c);
    }
    {
        struct ic_raft_op op = replace("xmpp:cloud2@example.org", "");
        op.type = IC_RAFT_OP_GRAPH_CLEAR;
        s[n++] = submit(x, 0, op);
    }
    for (int i = 0; i < n; i++)
        wait_ok(x, s[i], 0);
    wait_all_applied(x, s[n - 1]->req.index);
    assert_all_same(x);
    for (unsigned i = 0; i < 3; i++) {
        char *dump = tu_dump(x->st[i], G_CLOUD, IC_RDF_NQUADS);
        assert_non_null(strstr(dump, "\"7\"^^"));
        assert_null(strstr(dump, "gold"));
        ic_free(dump);
        dump = tu_dump(x->st[i], "xmpp:cloud2@example.org", IC_RDF_NQUADS);
        assert_string_equal(dump, "");
        ic_free(dump);
        assert_get(x, i, "user6", "v13");
        assert_get(x, i, "batch2", "y");
        assert_int_equal(applied_of(x->st[i]), s[n - 1]->req.index);
    }
    for (int i = 0; i < n; i++)
        ic_free(s[i]);
}

/* The index of a leader other than OLD, or f->n. (The fixture's own
 * leader_index wants every server connected, which a partition is not.) */
static unsigned other_leader(struct raft_fixture *f, unsigned old)
{
    for (unsigned j = 0; j < f->n; j++)
        if (j != old && raft_state(raft_fixture_get(f, j)) == RAFT_LEADER)
            return j;
    return f->n;
}

static bool new_leader(struct raft_fixture *f, void *arg)
{
    unsigned old = *(unsigned *)arg;

    return other_leader(f, old) < f->n &&
           raft_state(raft_fixture_get(f, old)) != RAFT_LEADER;
}

static void isolate(struct fx *x, unsigned i, bool on)
{
    for (unsigned j = 0; j < x->n; j++) {
        if (j == i)
            continue;
        if (on) {
            raft_fixture_disconnect(&x->f, i, j);
            raft_fixture_disconnect(&x->f, j, i);
        } else {
            raft_fixture_reconnect(&x->f, i, j);
            raft_fixture_reconnect(&x->f, j, i);
        }
    }
}

/* The leader alone on its side: what it accepts never commits; the
 * majority elects another leader and commits; after healing, the old
 * leader's store ends equal to theirs. */
static void test_partition(void **state)
{
    struct fx *x = *state;
    unsigned old = 0, nl;
    struct sub *a, *b, *c;
    unsigned char d0[32], d1[32];

    a = submit(x, 0, kv_put("k", "before"));
    wait_ok(x, a, 0);
    wait_all_applied(x, a->req.index);

    isolate(x, 0, true);
    b = submit(x, 0, kv_put("k", "minority"));
    assert_true(raft_fixture_step_until(&x->f, new_leader, &old, 10000));
    nl = other_leader(&x->f, old);
    assert_true(nl == 1 || nl == 2);
    /* the minority leader's write: outcome unknown, never applied */
    assert_true(raft_fixture_step_until(&x->f, fired, b, 5000));
    assert_int_equal(b->status, RAFT_LEADERSHIPLOST);
    assert_int_equal(ic_raft__err(b->status), IC_EINDOUBT);
    assert_false(b->w.done);

    c = submit(x, nl, kv_put("k", "majority"));
    wait_ok(x, c, 0);
    assert_true(
        raft_fixture_step_until_applied(&x->f, 3 - nl, c->req.index, 5000));
    assert_same(x, 1, 2);
    digest(x->st[0], d0);
    digest(x->st[1], d1);
    assert_memory_not_equal(d0, d1, 32);
    for (unsigned i = 0; i < 3; i++)
        assert_get(x, i, "k", i == 0 ? "before" : "majority");

    isolate(x, 0, false);
    wait_all_applied(x, c->req.index);
    assert_all_same(x);
    assert_get(x, 0, "k", "majority");
    ic_free(a);
    ic_free(b);
    ic_free(c);
}

/* Deposed by the fixture (its append results dropped), the leader steps
 * down; a new one is elected and the cluster goes on. */
static void test_depose(void **state)
{
    struct fx *x = *state;
    struct sub *a;
    unsigned l;

    raft_fixture_depose(&x->f);
    assert_true(raft_fixture_step_until_has_leader(&x->f, 10000));
    l = raft_fixture_leader_index(&x->f);
    a = submit(x, l, kv_put("after", "depose"));
    wait_ok(x, a, 0);
    wait_all_applied(x, a->req.index);
    assert_all_same(x);
    ic_free(a);
}

/* Server 2 misses many entries while the others compact their logs
 * (threshold 4, trailing 2): it comes back through InstallSnapshot. A new
 * fourth server joins the same way. */
static void test_snapshot_catch_up(void **state)
{
    struct fx *x = *state;
    struct sub *s[30];
    char key[30][16];
    struct raft_change change;
    struct raft *leader = raft_fixture_get(&x->f, 0), *r3;

    raft_fixture_kill(&x->f, 2);
    for (int i = 0; i < 30; i++) {
        snprintf(key[i], sizeof key[i], "key%d", i);
        s[i] = submit(x, 0, kv_put(key[i], key[i]));
        wait_ok(x, s[i], 0);
    }
    assert_true(
        raft_fixture_step_until_applied(&x->f, 1, s[29]->req.index, 5000));
    assert_int_equal(applied_of(x->st[2]), 0);
    raft_fixture_revive(&x->f, 2);
    wait_all_applied(x, s[29]->req.index);
    assert_true(raft_fixture_n_recv(&x->f, 2, RAFT_INSTALL_SNAPSHOT) >= 1);
    assert_all_same(x);
    assert_get(x, 2, "key0", "key0");

    /* a new server: added as spare, then made a voter */
    add_server(x, 4);
    r3 = raft_fixture_get(&x->f, 3);
    assert_int_equal(raft_start(r3), 0);
    memset(&change, 0, sizeof change);
    assert_int_equal(raft_add(leader, &change, r3->id, r3->address, NULL), 0);
    raft_fixture_step_until_elapsed(&x->f, 1000);
    assert_int_equal(raft_assign(leader, &change, r3->id, RAFT_VOTER, NULL), 0);
    raft_fixture_step_until_elapsed(&x->f, 3000);
    {
        struct sub *t = submit(x, 0, kv_put("late", "yes"));
        wait_ok(x, t, 0);
        wait_all_applied(x, t->req.index);
        ic_free(t);
    }
    assert_true(raft_fixture_n_recv(&x->f, 3, RAFT_INSTALL_SNAPSHOT) >= 1);
    assert_all_same(x);
    assert_get(x, 3, "key29", "key29");
    assert_get(x, 3, "late", "yes");
    for (int i = 0; i < 30; i++)
        ic_free(s[i]);
}

/* Applying again an entry at or below the applied index changes nothing,
 * whatever it holds. */
static void test_reapply_skipped(void **state)
{
    struct fx *x = *state;
    struct ic_raft_op op = kv_put("k", "v1");
    struct ic_raft_cmd c = {99, 1, false, 1, &op};
    unsigned char before[32], after[32], buf[64];
    struct sub *s;
    size_t len;
    uint64_t idx;

    s = submit(x, 0, kv_put("k", "v0"));
    wait_ok(x, s, 0);
    wait_all_applied(x, s->req.index);
    idx = applied_of(x->st[1]);
    assert_int_equal(idx, s->req.index);
    digest(x->st[1], before);
    op = kv_put("k", "changed");
    assert_int_equal(ic_raft_cmd_size(&c, &len), 0);
    assert_int_equal(ic_raft_cmd_encode(&c, buf, len), 0);
    for (uint64_t i = 1; i <= idx; i++)
        assert_int_equal(ic_raft__fsm_apply_at(x->fsm[1], i, buf, len), 0);
    /* even garbage, even an unknown version: skipped by index */
    assert_int_equal(ic_raft__fsm_apply_at(x->fsm[1], idx, "\x07zz", 3), 0);
    digest(x->st[1], after);
    assert_memory_equal(before, after, 32);
    assert_get(x, 1, "k", "v0");
    /* the next index would apply it */
    assert_int_equal(ic_raft__fsm_apply_at(x->fsm[1], idx + 1, buf, len), 0);
    assert_get(x, 1, "k", "changed");
    /* an unknown version past the index fails the apply, changing
     * nothing */
    digest(x->st[1], before);
    assert_int_equal(ic_raft__fsm_apply_at(x->fsm[1], idx + 2, "\x07zz", 3),
                     IC_EFORMAT);
    digest(x->st[1], after);
    assert_memory_equal(before, after, 32);
    ic_free(s);
}

/* A command retried with the same (client, seq) is applied once and gets
 * the first result; an older sequence gets IC_ESTALE. */
static void test_dedup(void **state)
{
    struct fx *x = *state;
    struct ic_raft_op op1 = kv_put("dup", "first");
    struct ic_raft_op op2 = kv_put("dup", "second");
    struct ic_raft_op bad = replace(G_CLOUD, "this is not turtle");
    struct ic_raft_cmd c1 = {7, 10, false, 1, &op1};
    struct ic_raft_cmd c2 = {7, 10, false, 1, &op2};
    struct ic_raft_cmd c3 = {7, 9, false, 1, &op2};
    struct ic_raft_cmd c4 = {8, 10, false, 1, &op2}; /* another client */
    struct ic_raft_cmd c5 = {7, 11, false, 1, &bad};
    struct sub *s[6];

    s[0] = submit_cmd(x, 0, &c1);
    s[1] = submit_cmd(x, 0, &c2); /* retry, other payload: ignored */
    s[2] = submit_cmd(x, 0, &c3);
    wait_ok(x, s[0], 0);
    wait_ok(x, s[1], 0);
    wait_ok(x, s[2], IC_ESTALE);
    assert_non_null(strstr(s[2]->w.res.msg, "below"));
    wait_all_applied(x, s[2]->req.index);
    for (unsigned i = 0; i < 3; i++)
        assert_get(x, i, "dup", "first");

    s[3] = submit_cmd(x, 0, &c4);
    wait_ok(x, s[3], 0);
    /* a failed command's retry gets the recorded failure */
    s[4] = submit_cmd(x, 0, &c5);
    wait_ok(x, s[4], IC_ESYNTAX);
    s[5] = submit_cmd(x, 0, &c5);
    wait_ok(x, s[5], IC_ESYNTAX);
    assert_string_equal(s[4]->w.res.msg, s[5]->w.res.msg);
    wait_all_applied(x, s[5]->req.index);
    for (unsigned i = 0; i < 3; i++)
        assert_get(x, i, "dup", "second");
    assert_all_same(x);
    for (int i = 0; i < 6; i++)
        ic_free(s[i]);
}

/* Bad Turtle is a business failure: a result with a message, the catalog
 * unchanged on every replica; a batch fails as a whole. */
static void test_business_failure(void **state)
{
    struct fx *x = *state;
    struct ic_store_stats st0[3], st1[3];
    char *dump0[3];
    struct sub *s, *b;

    s = submit(x, 0, replace(G_CLOUD, ttl_a));
    wait_ok(x, s, 0);
    wait_all_applied(x, s->req.index);
    ic_free(s);
    for (unsigned i = 0; i < 3; i++) {
        tu_stats(x->st[i], &st0[i]);
        dump0[i] = tu_dump(x->st[i], NULL, IC_RDF_NQUADS);
    }

    s = submit(x, 0,
               replace(G_CLOUD, "@prefix ic: <http://www.csp/resOntology#> .\n"
                                "<" G_CLOUD "#me> ic:tier \"x\" ;\n"
                                "  ic:broken ."));
    wait_ok(x, s, IC_ESYNTAX);
    assert_non_null(strstr(s->w.res.msg, "text:"));
    {
        struct ic_raft_op ops[2];
        struct ic_raft_cmd c = {x->client, ++x->seq, true, 2, ops};
        ops[0] = kv_put("batched", "no");
        ops[1] = replace(G_CLOUD, "<a> <b> <c> <d> <e> .");
        b = submit_cmd(x, 0, &c);
    }
    wait_ok(x, b, IC_ESYNTAX);
    assert_non_null(strstr(b->w.res.msg, "op 2:"));
    wait_all_applied(x, b->req.index);
    for (unsigned i = 0; i < 3; i++) {
        char *dump = tu_dump(x->st[i], NULL, IC_RDF_NQUADS);
        tu_stats(x->st[i], &st1[i]);
        assert_string_equal(dump, dump0[i]);
        assert_int_equal(st1[i].quads, st0[i].quads);
        assert_int_equal(st1[i].terms, st0[i].terms);
        assert_int_equal(st1[i].applied_index, b->req.index);
        assert_get(x, i, "batched", NULL);
        ic_free(dump);
        ic_free(dump0[i]);
    }
    assert_all_same(x);
    ic_free(s);
    ic_free(b);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depose, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_catch_up, setup_snapshots,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reapply_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_business_failure, setup, teardown),
    };
    return tu_main(argc, argv, "raft_fsm", tests, IC_ARRAY_LEN(tests));
}
