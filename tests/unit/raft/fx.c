/*
 * fx.c - the raft library's in-memory fixture with our state machine, for
 * the state machine's tests (fx.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fx.h"

void add_server(struct fx *x, unsigned threshold)
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

int setup(void **state)
{
    return setup_with(state, 0);
}

int setup_snapshots(void **state)
{
    return setup_with(state, 4);
}

int teardown(void **state)
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

struct ic_raft_op kv_put(const char *key, const char *val)
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

struct ic_raft_op replace(const char *graph, const char *ttl)
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
struct sub *submit_cmd(struct fx *x, unsigned i, struct ic_raft_cmd *c)
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
struct sub *submit(struct fx *x, unsigned i, struct ic_raft_op op)
{
    struct ic_raft_cmd c = {x->client, ++x->seq, false, 1, &op};
    return submit_cmd(x, i, &c);
}

bool fired(struct raft_fixture *f, void *arg)
{
    (void)f;
    return ((struct sub *)arg)->fired;
}

/* Waits for S's callback: it must succeed with RESULT_CODE. */
void wait_ok(struct fx *x, struct sub *s, int result_code)
{
    assert_true(raft_fixture_step_until(&x->f, fired, s, 5000));
    assert_int_equal(s->status, 0);
    assert_true(s->w.done);
    assert_int_equal(s->w.res.code, result_code);
}

void wait_all_applied(struct fx *x, raft_index index)
{
    assert_true(raft_fixture_step_until_applied(&x->f, x->n, index, 10000));
}

void digest(struct ic_store *st, unsigned char out[32])
{
    struct ic_txn *t;

    assert_int_equal(ic_store_txn_begin(st, false, &t), 0);
    assert_int_equal(ic_store_digest(t, out), 0);
    ic_store_txn_abort(t);
}

void assert_same(struct fx *x, unsigned a, unsigned b)
{
    unsigned char da[32], db[32];

    digest(x->st[a], da);
    digest(x->st[b], db);
    assert_memory_equal(da, db, 32);
}

void assert_all_same(struct fx *x)
{
    for (unsigned i = 1; i < x->n; i++)
        assert_same(x, 0, i);
}

/* The value of accounts KEY on server I, or NULL. */
char *get(struct fx *x, unsigned i, const char *key)
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

void assert_get(struct fx *x, unsigned i, const char *key, const char *want)
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

uint64_t applied_of(struct ic_store *st)
{
    struct ic_store_stats s;

    tu_stats(st, &s);
    return s.applied_index;
}
