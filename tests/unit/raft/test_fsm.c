/*
 * test_fsm.c - the state machine under the raft library's in-memory
 * fixture (fx.h): replication, partitions, catch-up by snapshot,
 * idempotent re-apply, the deduplication window and business failures;
 * every check ends with the stores' digests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fx.h"
#include "store_int.h"

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
 * the first result, another client's same sequence is its own, and a
 * failed command's retry gets the recorded failure. */
static void test_dedup(void **state)
{
    struct fx *x = *state;
    struct ic_raft_op op1 = kv_put("dup", "first");
    struct ic_raft_op op2 = kv_put("dup", "second");
    struct ic_raft_op bad = replace(G_CLOUD, "this is not turtle");
    struct ic_raft_cmd c1 = {7, 10, false, 1, &op1};
    struct ic_raft_cmd c2 = {7, 10, false, 1, &op2};
    struct ic_raft_cmd c4 = {8, 10, false, 1, &op2}; /* another client */
    struct ic_raft_cmd c5 = {7, 11, false, 1, &bad};
    struct sub *s[5];

    s[0] = submit_cmd(x, 0, &c1);
    wait_ok(x, s[0], 0);
    s[1] = submit_cmd(x, 0, &c2); /* retry, other payload: ignored */
    wait_ok(x, s[1], 0);
    wait_all_applied(x, s[1]->req.index);
    for (unsigned i = 0; i < 3; i++)
        assert_get(x, i, "dup", "first");

    s[2] = submit_cmd(x, 0, &c4);
    wait_ok(x, s[2], 0);
    s[3] = submit_cmd(x, 0, &c5);
    wait_ok(x, s[3], IC_ESYNTAX);
    s[4] = submit_cmd(x, 0, &c5);
    wait_ok(x, s[4], IC_ESYNTAX);
    assert_string_equal(s[3]->w.res.msg, s[4]->w.res.msg);
    wait_all_applied(x, s[4]->req.index);
    for (unsigned i = 0; i < 3; i++)
        assert_get(x, i, "dup", "second");
    assert_all_same(x);
    for (int i = 0; i < 5; i++)
        ic_free(s[i]);
}

/* Submits (CLIENT, SEQ) with OP on the leader and waits for RESULT_CODE;
 * returns the raft index of the entry and copies the result. */
static raft_index submit_seq(struct fx *x,
                             uint64_t seq,
                             struct ic_raft_op op,
                             int result_code,
                             struct ic_raft_result *res)
{
    struct ic_raft_cmd c = {7, seq, false, 1, &op};
    struct sub *s = submit_cmd(x, 0, &c);
    raft_index index;

    wait_ok(x, s, result_code);
    if (res != NULL)
        *res = s->w.res;
    index = s->req.index;
    ic_free(s);
    return index;
}

/* Pipelined sequences of one client reach the leader out of order: each is
 * applied once, whatever the order, within the window of 1024. */
static void test_dedup_window(void **state)
{
    struct fx *x = *state;
    struct ic_raft_op bad = replace(G_CLOUD, "this is not turtle");
    struct ic_raft_result r1, r2;
    raft_index last;

    submit_seq(x, 5, kv_put("five", "5"), 0, NULL);
    submit_seq(x, 3, kv_put("three", "3"), 0, NULL);     /* below 5: applied */
    submit_seq(x, 3, kv_put("three", "again"), 0, NULL); /* not again */
    submit_seq(x, 5, kv_put("five", "again"), 0, NULL);
    /* a failure in the window: its retry gets the same code and message */
    submit_seq(x, 4, bad, IC_ESYNTAX, &r1);
    submit_seq(x, 4, kv_put("four", "4"), IC_ESYNTAX, &r2);
    assert_string_equal(r1.msg, r2.msg);
    assert_true(r1.msg[0] != '\0');
    last = submit_seq(x, 2, kv_put("two", "2"), 0, NULL);
    wait_all_applied(x, last);
    for (unsigned i = 0; i < 3; i++) {
        assert_get(x, i, "five", "5");
        assert_get(x, i, "three", "3");
        assert_get(x, i, "two", "2");
        assert_get(x, i, "four", NULL);
    }

    /* the window slides up to 1035: 11 and below are too old to tell,
     * 12 (never applied) is inside it and applied now */
    submit_seq(x, 1035, kv_put("top", "1035"), 0, NULL);
    submit_seq(x, 5, kv_put("five", "late"), IC_ESTALE, &r1);
    assert_non_null(strstr(r1.msg, "too old"));
    submit_seq(x, 11, kv_put("eleven", "11"), IC_ESTALE, NULL);
    submit_seq(x, 12, kv_put("twelve", "12"), 0, NULL);
    submit_seq(x, 12, kv_put("twelve", "again"), 0, NULL);
    last = submit_seq(x, 1034, kv_put("below", "1034"), 0, NULL);
    wait_all_applied(x, last);
    for (unsigned i = 0; i < 3; i++) {
        assert_get(x, i, "five", "5");
        assert_get(x, i, "eleven", NULL);
        assert_get(x, i, "twelve", "12");
        assert_get(x, i, "below", "1034");
    }
    assert_all_same(x);
}

/* A store of its own, applied to directly (no raft). */
struct solo {
    char dir[64];
    struct ic_store *st;
    struct ic_raft_fsm *fsm;
    uint64_t index;
};

/* A state machine over a store whose map is MAP bytes. */
static void solo_open_map(struct solo *s, uint64_t map)
{
    char path[128];

    tu_tmpdir(s->dir, sizeof s->dir);
    tu_join(path, sizeof path, s->dir, "store");
    s->st = tu_store_open(path, map);
    assert_int_equal(ic_raft_fsm_new(s->st, &s->fsm), 0);
    s->index = 0;
}

static void solo_open(struct solo *s)
{
    solo_open_map(s, 64ULL << 20);
}

/* A Turtle text of 12,000 statements (~560 KB): more than a 1 MiB map
 * takes with its indexes. Free it with ic_free. */
static char *big_text(void)
{
    char *big = ic_malloc(2 << 20), *p = big;

    for (int i = 0; i < 12000; i++)
        p += sprintf(p, "<" G_CLOUD "#r%d> <http://e.org/p> \"%d\" .\n", i, i);
    return big;
}

static void solo_close(struct solo *s)
{
    ic_raft_fsm_free(s->fsm);
    ic_store_close(s->st);
    tu_rmrf(s->dir);
}

/* The deduplication window against a plain model (every sequence ever
 * applied): 20,000 sequences, most just above the top, some far above it
 * (slides of every length, past the whole window too), some below it (in
 * the window or too old). Each verdict is the model's, and a duplicate
 * keeps its result. */
static void test_window_model(void **state)
{
    enum { N = 20000, MAXSEQ = 40 * 1024 };
    static bool applied[MAXSEQ + 2048];
    struct solo s;
    struct ic_txn *t;
    struct ic_raft__window *w;
    uint64_t high = 0, rnd = 12345;

    (void)state;
    memset(applied, 0, sizeof applied);
    solo_open(&s);
    assert_int_equal(ic_store_txn_begin(s.st, false, &t), 0);
    assert_int_equal(ic_raft__window_load(t, 99, &w), 0);
    for (int i = 0; i < N; i++) {
        struct ic_raft_result res = {0, ""};
        enum ic_raft__verdict v, want;
        uint64_t seq, r;
        rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
        r = rnd >> 33;
        if (r % 10 < 6)
            seq = high + 1 + r % 3;
        else if (r % 10 < 7)
            seq = high + 1 + (r / 10) % 1100;
        else
            seq = high > 1 ? 1 + (high - 1 - (r / 10) % 1200 % high) : 1;
        if (seq > MAXSEQ)
            break;
        if (seq > high)
            want = IC_RAFT__APPLY;
        else if (high >= IC_RAFT__WINDOW && seq <= high - IC_RAFT__WINDOW)
            want = IC_RAFT__STALE;
        else
            want = applied[seq] ? IC_RAFT__DUPLICATE : IC_RAFT__APPLY;
        v = ic_raft__window_check(w, seq, &res);
        if (v != want)
            fail_msg("step %d: seq %llu (top %llu): verdict %d, model %d", i,
                     (unsigned long long)seq, (unsigned long long)high, v,
                     want);
        if (v == IC_RAFT__APPLY) {
            struct ic_raft_result done = {seq % 7 == 0 ? IC_EVALUE : 0, ""};
            if (done.code != 0)
                snprintf(done.msg, sizeof done.msg, "failed %llu",
                         (unsigned long long)seq);
            ic_raft__window_mark(w, seq, &done);
            applied[seq] = true;
            if (seq > high)
                high = seq;
        } else if (v == IC_RAFT__DUPLICATE) {
            assert_int_equal(res.code, seq % 7 == 0 ? IC_EVALUE : 0);
        }
    }
    assert_true(high > 4 * IC_RAFT__WINDOW);
    ic_raft__window_free(w);
    ic_store_txn_abort(t);
    solo_close(&s);
}

/* Applies command (CLIENT, SEQ, OP) at the next index; returns the apply's
 * code, with the command's result in *RES. */
static int solo_apply(struct solo *s,
                      const struct ic_raft_cmd *c,
                      struct ic_raft_result *res)
{
    struct ic_raft__wait w = {.client = c->client, .seq = c->seq};
    unsigned char *buf;
    size_t len;
    int rc;

    assert_int_equal(ic_raft_cmd_size(c, &len), 0);
    buf = ic_malloc(len);
    assert_int_equal(ic_raft_cmd_encode(c, buf, len), 0);
    ic_raft__fsm_wait_add(s->fsm, &w);
    rc = ic_raft__fsm_apply_at(s->fsm, ++s->index, buf, len);
    ic_raft__fsm_wait_del(s->fsm, &w);
    ic_free(buf);
    if (rc == 0) {
        assert_true(w.done);
        *res = w.res;
    }
    return rc;
}

static void put_client(struct ic_store *st, uint64_t client, struct ic_kv v)
{
    struct ic_txn *t;

    assert_int_equal(ic_store_txn_begin(st, true, &t), 0);
    assert_int_equal(ic_store_client_put(t, client, v), 0);
    assert_int_equal(ic_store_txn_commit(t), 0);
}

/* A client record of the first layout (the last sequence and its result)
 * is still read: that sequence is a duplicate, those below it are too old
 * to tell. The record is rewritten in the window layout. A record that
 * parses in neither fails the apply. */
static void test_dedup_old_record(void **state)
{
    static const unsigned char v1[] = {
        0,    0,    0,    0,    0,   0, 0, 50, /* seq 50 */
        0xff, 0xff, 0xff, 0xf6,                /* IC_ESYNTAX (-10) */
        0,    3,    'o',  'l',  'd',           /* message */
    };
    struct ic_raft_op op = kv_put("k", "v");
    struct ic_raft_cmd c = {9, 50, false, 1, &op};
    struct ic_raft_result res;
    struct ic_txn *t;
    struct ic_kv v;
    struct solo s;

    (void)state;
    solo_open(&s);
    put_client(s.st, 9, (struct ic_kv){v1, sizeof v1});
    assert_int_equal(solo_apply(&s, &c, &res), 0);
    assert_int_equal(res.code, IC_ESYNTAX);
    assert_string_equal(res.msg, "old");
    c.seq = 49;
    assert_int_equal(solo_apply(&s, &c, &res), 0);
    assert_int_equal(res.code, IC_ESTALE);
    c.seq = 51;
    assert_int_equal(solo_apply(&s, &c, &res), 0);
    assert_int_equal(res.code, 0);
    c.seq = 49; /* still too old after the rewrite */
    assert_int_equal(solo_apply(&s, &c, &res), 0);
    assert_int_equal(res.code, IC_ESTALE);
    c.seq = 50;
    assert_int_equal(solo_apply(&s, &c, &res), 0);
    assert_int_equal(res.code, IC_ESYNTAX);
    assert_string_equal(res.msg, "old");
    assert_int_equal(ic_store_txn_begin(s.st, false, &t), 0);
    assert_int_equal(ic_store_client_get(t, 9, &v), 0);
    assert_true(v.len >= 2);
    assert_int_equal(((const unsigned char *)v.data)[0], 0xC1);
    assert_int_equal(((const unsigned char *)v.data)[1], 2);
    ic_store_txn_abort(t);

    put_client(s.st, 9, (struct ic_kv){"xx", 2});
    assert_int_equal(solo_apply(&s, &c, &res), IC_ECORRUPT);
    solo_close(&s);
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

/* Applies command C at INDEX through the apply callback's path (holding
 * when the store fails); W is registered for its result. */
static int held_apply(struct solo *s,
                      uint64_t index,
                      const struct ic_raft_cmd *c,
                      struct ic_raft__wait *w)
{
    unsigned char *buf;
    size_t len;
    int rc;

    assert_int_equal(ic_raft_cmd_size(c, &len), 0);
    buf = ic_malloc(len);
    assert_int_equal(ic_raft_cmd_encode(c, buf, len), 0);
    *w = (struct ic_raft__wait){.client = c->client, .seq = c->seq};
    ic_raft__fsm_wait_add(s->fsm, w);
    rc = ic_raft__fsm_apply(s->fsm, index, buf, len);
    ic_free(buf);
    return rc;
}

static void on_held(void *data)
{
    (*(int *)data)++;
}

/* A store that fills (LMDB's map here; a full disk takes the same path)
 * applies nothing of the entry, answers no submitter and holds the entry
 * and those after it, in order; the snapshot waits; once there is room the
 * retry applies them all. */
static void test_full_store_held(void **state)
{
    struct solo s;
    struct ic_raft__wait w1, w2;
    struct ic_raft_fsm *fsm;
    struct raft_buffer *bufs = NULL;
    unsigned n_bufs = 0;
    char *big = big_text();
    int held = 0;

    (void)state;
    solo_open_map(&s, 1 << 20);
    fsm = s.fsm;
    ic_raft__fsm_on_hold(fsm, on_held, &held);
    {
        struct ic_raft_op op1 = replace(G_CLOUD, big), op2 = kv_put("k", "v");
        struct ic_raft_cmd c1 = {7, 1, false, 1, &op1};
        struct ic_raft_cmd c2 = {7, 2, false, 1, &op2};
        assert_int_equal(held_apply(&s, 1, &c1, &w1), 0);
        assert_int_equal(held, 1);
        assert_true(ic_raft__fsm_holding(fsm));
        assert_false(w1.done);
        assert_int_equal(applied_of(s.st), 0);
        /* a later entry that would fit waits behind it */
        assert_int_equal(held_apply(&s, 2, &c2, &w2), 0);
        assert_int_equal(held, 1);
        assert_false(w2.done);
        assert_int_equal(applied_of(s.st), 0);
        assert_true(ic_raft__fsm_retry(fsm));
        assert_int_equal(applied_of(s.st), 0);
        assert_int_equal(ic_raft_fsm_get(fsm)->snapshot(ic_raft_fsm_get(fsm),
                                                        &bufs, &n_bufs),
                         RAFT_BUSY);
        /* room again */
        assert_int_equal(mdb_env_set_mapsize(s.st->env, 64 << 20), 0);
        assert_false(ic_raft__fsm_retry(fsm));
        assert_false(ic_raft__fsm_holding(fsm));
        assert_true(w1.done && w1.res.code == 0);
        assert_true(w2.done && w2.res.code == 0);
        assert_int_equal(applied_of(s.st), 2);
        ic_raft__fsm_wait_del(fsm, &w1);
        ic_raft__fsm_wait_del(fsm, &w2);
    }
    {
        char *dump = tu_dump(s.st, G_CLOUD, IC_RDF_NQUADS);
        assert_non_null(strstr(dump, "\"11999\""));
        ic_free(dump);
    }
    ic_free(big);
    solo_close(&s);
}

/* Encodes C and hands it to the deferred apply at INDEX, W registered. */
static void deferred(struct solo *s,
                     uint64_t index,
                     const struct ic_raft_cmd *c,
                     struct ic_raft__wait *w)
{
    unsigned char *buf;
    size_t len;

    assert_int_equal(ic_raft_cmd_size(c, &len), 0);
    buf = ic_malloc(len);
    assert_int_equal(ic_raft_cmd_encode(c, buf, len), 0);
    *w = (struct ic_raft__wait){.client = c->client, .seq = c->seq};
    ic_raft__fsm_wait_add(s->fsm, w);
    assert_int_equal(ic_raft__fsm_defer(s->fsm, index, buf, len), 0);
    ic_free(buf); /* the fsm keeps its own copy */
}

/* Deferred apply (the node's mode): entries wait, unseen and unanswered,
 * until the flush applies them together; their results come after it in
 * index order (a business failure among them included). A batch the store
 * cannot take is held whole, entries before the failing one too, until
 * the retry finds room. */
static void test_deferred_batch(void **state)
{
    struct solo s;
    struct ic_raft__wait w[4];
    char *big = big_text();
    int pending = 0, held = 0;

    (void)state;
    solo_open_map(&s, 1 << 20);
    ic_raft__fsm_on_pending(s.fsm, on_held, &pending);
    ic_raft__fsm_on_hold(s.fsm, on_held, &held);
    {
        struct ic_raft_op o1 = kv_put("a", "1"),
                          o2 = replace(G_CLOUD, "this is not turtle"),
                          o3 = kv_put("b", "2");
        struct ic_raft_cmd c1 = {7, 1, false, 1, &o1};
        struct ic_raft_cmd c2 = {8, 1, false, 1, &o2};
        struct ic_raft_cmd c3 = {7, 2, false, 1, &o3};
        deferred(&s, 1, &c1, &w[0]);
        deferred(&s, 2, &c2, &w[1]);
        deferred(&s, 3, &c3, &w[2]);
        assert_int_equal(pending, 1); /* when the first one waits */
        assert_int_equal(ic_raft__fsm_held_first(s.fsm), 1);
        assert_int_equal(applied_of(s.st), 0);
        assert_false(w[0].done || w[1].done || w[2].done);
        ic_raft__fsm_flush(s.fsm);
        assert_int_equal(applied_of(s.st), 3);
        assert_int_equal(ic_raft__fsm_held_first(s.fsm), 0);
        assert_true(w[0].done && w[0].res.code == 0);
        assert_true(w[1].done && w[1].res.code != 0); /* the bad Turtle */
        assert_true(w[2].done && w[2].res.code == 0);
        for (int i = 0; i < 3; i++)
            ic_raft__fsm_wait_del(s.fsm, &w[i]);
    }
    {
        struct ic_raft_op o1 = kv_put("c", "3"), o2 = replace(G_CLOUD, big),
                          o3 = kv_put("d", "4");
        struct ic_raft_cmd c1 = {7, 3, false, 1, &o1};
        struct ic_raft_cmd c2 = {7, 4, false, 1, &o2};
        struct ic_raft_cmd c3 = {7, 5, false, 1, &o3};
        deferred(&s, 4, &c1, &w[0]);
        deferred(&s, 5, &c2, &w[1]);
        assert_int_equal(pending, 2);
        ic_raft__fsm_flush(s.fsm);
        assert_int_equal(held, 1);
        assert_int_equal(applied_of(s.st), 3); /* not even entry 4 */
        assert_int_equal(ic_raft__fsm_held_first(s.fsm), 4);
        assert_false(w[0].done || w[1].done);
        /* later entries wait behind them; flushing does nothing now */
        deferred(&s, 6, &c3, &w[2]);
        assert_int_equal(pending, 2);
        ic_raft__fsm_flush(s.fsm);
        assert_int_equal(applied_of(s.st), 3);
        assert_true(ic_raft__fsm_retry(s.fsm));
        assert_int_equal(mdb_env_set_mapsize(s.st->env, 64 << 20), 0);
        assert_false(ic_raft__fsm_retry(s.fsm));
        assert_int_equal(applied_of(s.st), 6);
        for (int i = 0; i < 3; i++) {
            assert_true(w[i].done && w[i].res.code == 0);
            ic_raft__fsm_wait_del(s.fsm, &w[i]);
        }
        /* deferring again afterwards */
        struct ic_raft_op o4 = kv_put("e", "5");
        struct ic_raft_cmd c4 = {7, 6, false, 1, &o4};
        deferred(&s, 7, &c4, &w[3]);
        assert_int_equal(pending, 3);
        ic_raft__fsm_flush(s.fsm);
        assert_true(w[3].done);
        assert_int_equal(applied_of(s.st), 7);
        ic_raft__fsm_wait_del(s.fsm, &w[3]);
    }
    ic_free(big);
    solo_close(&s);
}

/* Value KEY in the accounts database of ST is WANT. */
static void
assert_get_solo(struct ic_store *st, const char *key, const char *want)
{
    struct ic_kv k = {key, strlen(key)}, v;
    struct ic_txn *t;

    assert_int_equal(ic_store_txn_begin(st, false, &t), 0);
    assert_int_equal(ic_store_kv_get(t, IC_KV_ACCOUNTS, k, &v), 0);
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.data, want, v.len);
    ic_store_txn_abort(t);
}

/* A batch runs first without nested transactions: when a command fails
 * there after writing (its first operation did), the batch runs again
 * the nested way, so that command's writes are undone and the others'
 * kept, exactly as if each command had its own transaction. */
static void test_batch_failure_undone(void **state)
{
    struct solo s;
    struct ic_raft__wait w[3];
    struct ic_raft_op o1 = kv_put("x", "1"), o2[2], o3 = kv_put("y", "3");
    struct ic_raft_cmd c1 = {7, 1, false, 1, &o1};
    struct ic_raft_cmd c2 = {8, 1, true, 2, o2};
    struct ic_raft_cmd c3 = {7, 2, false, 1, &o3};

    (void)state;
    o2[0] = kv_put("x", "2");
    o2[1] = replace(G_CLOUD, "this is not turtle");
    solo_open(&s);
    deferred(&s, 1, &c1, &w[0]);
    deferred(&s, 2, &c2, &w[1]);
    deferred(&s, 3, &c3, &w[2]);
    ic_raft__fsm_flush(s.fsm);
    assert_int_equal(applied_of(s.st), 3);
    assert_true(w[0].done && w[0].res.code == 0);
    assert_true(w[1].done && w[1].res.code == IC_ESYNTAX);
    assert_non_null(strstr(w[1].res.msg, "op 2:"));
    assert_true(w[2].done && w[2].res.code == 0);
    assert_get_solo(s.st, "x", "1");
    assert_get_solo(s.st, "y", "3");
    for (int i = 0; i < 3; i++)
        ic_raft__fsm_wait_del(s.fsm, &w[i]);
    solo_close(&s);
}

/* C encoded into a raft_malloc'd buffer. */
static struct raft_buffer encoded(const struct ic_raft_cmd *c)
{
    struct raft_buffer b;

    assert_int_equal(ic_raft_cmd_size(c, &b.len), 0);
    b.base = raft_malloc(b.len);
    assert_int_equal(ic_raft_cmd_encode(c, b.base, b.len), 0);
    return b;
}

static int count_cmd(void *data, const void *cmd, size_t len)
{
    (void)cmd;
    (void)len;
    (*(int *)data)++;
    return 0;
}

/* Groups (raft_int.h): each command of one entry applied as if alone, in
 * order: its own result (a business failure among them changes nothing
 * for the others), its own deduplication; a presence command in a group is
 * refused; a group whose layout is wrong runs none of its commands. */
static void test_group(void **state)
{
    struct solo s;
    struct ic_raft_op o1 = kv_put("g1", "1"),
                      o2 = replace(G_CLOUD, "this is not turtle"),
                      o3 = kv_put("g3", "3");
    struct ic_raft_cmd c[4] = {{7, 1, false, 1, &o1},
                               {8, 1, false, 1, &o2},
                               {7, 2, false, 1, &o3},
                               {7, 1, false, 1, &o1}}; /* a duplicate */
    struct raft_buffer b[4];
    struct ic_raft__wait w[4];
    unsigned char *g;
    size_t len;
    int n = 0;

    (void)state;
    solo_open(&s);
    for (int i = 0; i < 4; i++) {
        b[i] = encoded(&c[i]);
        w[i] = (struct ic_raft__wait){.client = c[i].client, .seq = c[i].seq};
    }
    len = ic_raft__group_size(b, 3);
    g = ic_malloc(len);
    ic_raft__group_encode(b, 3, g);
    assert_int_equal(len % 8, 0);
    assert_true(ic_raft__is_group(g, len));
    assert_false(ic_raft__is_group(b[0].base, b[0].len));
    assert_int_equal(ic_raft__group_walk(g, len, count_cmd, &n), 0);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++)
        ic_raft__fsm_wait_add(s.fsm, &w[i]);
    assert_int_equal(ic_raft__fsm_apply_at(s.fsm, 1, g, len), 0);
    assert_true(w[0].done && w[0].res.code == 0);
    assert_true(w[1].done && w[1].res.code == IC_ESYNTAX);
    assert_true(w[2].done && w[2].res.code == 0);
    assert_int_equal(applied_of(s.st), 1);
    for (int i = 0; i < 3; i++)
        ic_raft__fsm_wait_del(s.fsm, &w[i]);
    ic_free(g);

    /* the first command again, alone: a duplicate, its result recorded */
    ic_raft__fsm_wait_add(s.fsm, &w[3]);
    assert_int_equal(ic_raft__fsm_apply_at(s.fsm, 2, b[3].base, b[3].len), 0);
    assert_true(w[3].done && w[3].res.code == 0);
    ic_raft__fsm_wait_del(s.fsm, &w[3]);

    /* bad layouts: none runs, the entry is skipped */
    {
        struct raft_buffer two[2] = {b[2], b[2]};
        size_t gl = ic_raft__group_size(two, 2);
        unsigned char *bad = ic_malloc(gl);
        ic_raft__group_encode(two, 2, bad);
        bad[3] = 1; /* a count of 1 */
        n = 0;
        assert_int_equal(ic_raft__group_walk(bad, gl, count_cmd, &n),
                         IC_ECORRUPT);
        assert_int_equal(n, 0);
        bad[3] = 2;
        bad[8 + 3] = (unsigned char)(bad[8 + 3] + 8); /* past the end */
        assert_int_equal(ic_raft__group_walk(bad, gl, count_cmd, &n),
                         IC_ECORRUPT);
        assert_int_equal(ic_raft__fsm_apply_at(s.fsm, 3, bad, gl), 0);
        assert_int_equal(applied_of(s.st), 3);
        assert_int_equal(ic_raft__group_walk(bad, gl - 8, count_cmd, &n),
                         IC_ECORRUPT);
        assert_int_equal(n, 0);
        ic_free(bad);
    }
    /* a presence command inside: refused, the others applied */
    {
        struct ic_raft_op po = {0};
        struct ic_raft__wait pw, kw;
        struct ic_raft_op ko = kv_put("g4", "4");
        struct ic_raft_cmd pc = {9, 1, false, 1, &po},
                           kc = {7, 3, false, 1, &ko};
        struct raft_buffer pb[2];
        unsigned char *pg;
        size_t pl;
        po.type = IC_RAFT_OP_NODE_LEASE;
        po.lease.node = 1;
        po.lease.incarnation = 1;
        po.lease.action = IC_RAFT_LEASE_START;
        pb[0] = encoded(&pc);
        pb[1] = encoded(&kc);
        pl = ic_raft__group_size(pb, 2);
        pg = ic_malloc(pl);
        ic_raft__group_encode(pb, 2, pg);
        pw = (struct ic_raft__wait){.client = 9, .seq = 1};
        kw = (struct ic_raft__wait){.client = 7, .seq = 3};
        ic_raft__fsm_wait_add(s.fsm, &pw);
        ic_raft__fsm_wait_add(s.fsm, &kw);
        assert_int_equal(ic_raft__fsm_apply_at(s.fsm, 4, pg, pl), 0);
        assert_true(pw.done && pw.res.code == IC_ECORRUPT);
        assert_true(kw.done && kw.res.code == 0);
        ic_raft__fsm_wait_del(s.fsm, &pw);
        ic_raft__fsm_wait_del(s.fsm, &kw);
        raft_free(pb[0].base);
        raft_free(pb[1].base);
        ic_free(pg);
    }
    assert_get_solo(s.st, "g1", "1");
    assert_get_solo(s.st, "g3", "3");
    assert_get_solo(s.st, "g4", "4");
    for (int i = 0; i < 4; i++)
        raft_free(b[i].base);
    solo_close(&s);
}

/* TERMS_SWEEP through the log: the values ttl_b replaced (5, "gold")
 * leave the dictionary of every replica in the same entry; the replicas
 * stay identical; a sweep entry is no group. */
static void test_sweep_replicated(void **state)
{
    struct fx *x = *state;
    struct ic_raft_op op = {0};
    struct ic_store_stats st0, st1;
    struct ic_raft_cmd c = {x->client, 1000, false, 1, &op};
    struct raft_buffer b;
    struct sub *s[3];

    op.type = IC_RAFT_OP_TERMS_SWEEP;
    op.sweep_max = 1024;
    b = encoded(&c);
    assert_false(ic_raft__is_group(b.base, b.len));
    raft_free(b.base);
    s[0] = submit(x, 0, replace(G_CLOUD, ttl_a));
    s[1] = submit(x, 0, replace(G_CLOUD, ttl_b));
    wait_ok(x, s[1], 0);
    wait_all_applied(x, s[1]->req.index);
    tu_stats(x->st[0], &st0);
    s[2] = submit(x, 0, op);
    wait_ok(x, s[2], 0);
    wait_all_applied(x, s[2]->req.index);
    assert_all_same(x);
    for (unsigned i = 0; i < 3; i++) {
        char *dump = tu_dump(x->st[i], G_CLOUD, IC_RDF_NQUADS);
        tu_stats(x->st[i], &st1);
        assert_int_equal(st1.terms, st0.terms - 3); /* 5, "gold", ic:tier */
        assert_non_null(strstr(dump, "\"7\"^^"));
        ic_free(dump);
    }
    for (int i = 0; i < 3; i++)
        ic_free(s[i]);
}

/* The snapshot counts under a memory budget: the configured counts while
 * entries are small, a third / two thirds of the budget in entries when
 * they are large, never under 64 / 128, and the counts alone without a
 * budget. */
static void test_log_bounds(void **state)
{
    unsigned th, tr;

    (void)state;
    ic_raft__log_bounds(96u << 20, 600, 4096, 8192, &th, &tr);
    assert_int_equal(th, 4096); /* 4096 x 600 B is well under 32 MiB */
    assert_int_equal(tr, 8192);
    ic_raft__log_bounds(96u << 20, 36000, 4096, 8192, &th, &tr);
    assert_int_equal(th, (32u << 20) / 36000);
    assert_int_equal(tr, (64u << 20) / 36000);
    assert_true((uint64_t)(th + tr) * 36000 <= 96u << 20);
    ic_raft__log_bounds(1u << 20, 300000, 4096, 8192, &th, &tr);
    assert_int_equal(th, 64);
    assert_int_equal(tr, 128);
    ic_raft__log_bounds(0, 300000, 4096, 8192, &th, &tr);
    assert_int_equal(th, 4096);
    assert_int_equal(tr, 8192);
    ic_raft__log_bounds(96u << 20, 0, 4096, 8192, &th, &tr);
    assert_int_equal(th, 4096);
    assert_int_equal(tr, 8192);
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
        cmocka_unit_test_setup_teardown(test_dedup_window, setup, teardown),
        cmocka_unit_test(test_dedup_old_record),
        cmocka_unit_test_setup_teardown(test_business_failure, setup, teardown),
        cmocka_unit_test(test_full_store_held),
        cmocka_unit_test(test_deferred_batch),
        cmocka_unit_test(test_batch_failure_undone),
        cmocka_unit_test(test_window_model),
        cmocka_unit_test(test_group),
        cmocka_unit_test_setup_teardown(test_sweep_replicated, setup, teardown),
        cmocka_unit_test(test_log_bounds),
    };
    return tu_main(argc, argv, "raft_fsm", tests, IC_ARRAY_LEN(tests));
}
