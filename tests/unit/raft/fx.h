/*
 * fx.h - the raft library's in-memory fixture for the state machine's
 * tests: three (or four) servers, each with its own LMDB store in a
 * temporary directory, commands submitted on a server, waits bounded in
 * fixture time, and the stores' digests compared.
 *
 * The fixture's time is simulated and its elections are deterministic
 * (fixed randomized timeouts), so every run takes the same path. Every
 * helper asserts (cmocka); strings returned are ic_malloc'd.
 */
#ifndef IC_TEST_RAFT_FX_H
#define IC_TEST_RAFT_FX_H

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

/* Adds a server (snapshot THRESHOLD, trailing 2, when not 0). */
void add_server(struct fx *x, unsigned threshold);
/* cmocka setup: three voters bootstrapped, server 0 elected. */
int setup(void **state);
/* The same with snapshots every 4 entries. */
int setup_snapshots(void **state);
int teardown(void **state);

/* A KV_PUT on accounts, a GRAPH_REPLACE of Turtle TTL. */
struct ic_raft_op kv_put(const char *key, const char *val);
struct ic_raft_op replace(const char *graph, const char *ttl);
/* Submits C on server I, which must accept it (be the leader); free the
 * result with ic_free once it fired. */
struct sub *submit_cmd(struct fx *x, unsigned i, struct ic_raft_cmd *c);
/* One op with the next sequence of the test's client. */
struct sub *submit(struct fx *x, unsigned i, struct ic_raft_op op);
/* raft_fixture_step_until's condition: the callback of sub ARG ran. */
bool fired(struct raft_fixture *f, void *arg);
/* Waits for S's callback: it must succeed with RESULT_CODE. */
void wait_ok(struct fx *x, struct sub *s, int result_code);
/* Waits until every server applied INDEX. */
void wait_all_applied(struct fx *x, raft_index index);

void digest(struct ic_store *st, unsigned char out[32]);
void assert_same(struct fx *x, unsigned a, unsigned b);
void assert_all_same(struct fx *x);
/* The value of accounts KEY on server I, or NULL. */
char *get(struct fx *x, unsigned i, const char *key);
void assert_get(struct fx *x, unsigned i, const char *key, const char *want);
uint64_t applied_of(struct ic_store *st);

#endif /* IC_TEST_RAFT_FX_H */
