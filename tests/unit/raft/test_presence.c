/*
 * test_presence.c - presence batches and node leases in the replicated
 * state, under the raft library's in-memory fixture (fx.h): batches
 * applied on every replica, stale incarnations refused, START and REVOKE
 * dropping a node's entries in one entry, the observer's view of each
 * change, and catch-up through a snapshot. Every check ends with the
 * stores' digests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fx.h"

/* What each server's observer saw: "+jid n1 i1 <payload>;" for an
 * available change, "-jid n1 i1;" for an unavailable one, "R;" for a
 * reset. */
struct seen {
    char log[8192];
};

static struct seen seen[MAX_SERVERS];

static void on_presence(void *data, const struct ic_raft_presence_event *ev)
{
    struct seen *s = data;
    size_t at = strlen(s->log);

    assert_true(ev->index > 0);
    if (ev->reset) {
        assert_int_equal(ev->n_changes, 0);
        snprintf(s->log + at, sizeof s->log - at, "R;");
        return;
    }
    assert_true(ev->n_changes > 0);
    for (size_t i = 0; i < ev->n_changes; i++) {
        const struct ic_raft_presence_change *c = &ev->changes[i];
        at = strlen(s->log);
        if (c->lease_end) {
            assert_string_equal(c->jid, "");
            assert_false(c->available);
            snprintf(s->log + at, sizeof s->log - at, "!n%u i%llu;",
                     (unsigned)c->node, (unsigned long long)c->incarnation);
        } else if (c->available)
            snprintf(s->log + at, sizeof s->log - at, "+%s n%u i%llu %.*s;",
                     c->jid, (unsigned)c->node,
                     (unsigned long long)c->incarnation, (int)c->payload_len,
                     (const char *)c->payload);
        else
            snprintf(s->log + at, sizeof s->log - at, "-%s n%u i%llu;", c->jid,
                     (unsigned)c->node, (unsigned long long)c->incarnation);
        assert_true(c->available || c->payload == NULL);
    }
}

static void observe(struct fx *x, unsigned i)
{
    seen[i].log[0] = '\0';
    ic_raft_fsm_set_observer(x->fsm[i], on_presence, &seen[i]);
}

static int psetup_with(void **state, int (*base)(void **))
{
    struct fx *x;
    int rc = base(state);

    x = *state;
    for (unsigned i = 0; i < x->n; i++)
        observe(x, i);
    return rc;
}

static int psetup(void **state)
{
    return psetup_with(state, setup);
}

static int psetup_snapshots(void **state)
{
    return psetup_with(state, setup_snapshots);
}

/* Every server's observer saw exactly WANT. */
static void assert_seen(struct fx *x, const char *want)
{
    for (unsigned i = 0; i < x->n; i++)
        assert_string_equal(seen[i].log, want);
}

static void seen_clear(struct fx *x)
{
    for (unsigned i = 0; i < x->n; i++)
        seen[i].log[0] = '\0';
}

/* Commands */

/* A server killed by the test (MAX_SERVERS: none): waits leave it out. */
static unsigned down = MAX_SERVERS;

static void settle(struct fx *x, raft_index index)
{
    if (down == MAX_SERVERS) {
        wait_all_applied(x, index);
        return;
    }
    for (unsigned i = 0; i < x->n; i++)
        if (i != down)
            assert_true(
                raft_fixture_step_until_applied(&x->f, i, index, 10000));
}

static struct ic_raft_presence_item avail(const char *jid, const char *pl)
{
    struct ic_raft_presence_item it = {jid, true, {pl, strlen(pl)}};
    return it;
}

static struct ic_raft_presence_item gone(const char *jid)
{
    struct ic_raft_presence_item it = {jid, false, {NULL, 0}};
    return it;
}

/* Submits a batch of node NODE, incarnation INC on the leader (server 0),
 * waits for RESULT_CODE and for every server to apply it. */
static void batch(struct fx *x,
                  uint16_t node,
                  uint64_t inc,
                  int result_code,
                  size_t n,
                  struct ic_raft_presence_item *items)
{
    struct ic_raft_op op;
    struct sub *s;

    memset(&op, 0, sizeof op);
    op.type = IC_RAFT_OP_PRESENCE_BATCH;
    op.presence = (struct ic_raft_presence){node, inc, n, items};
    s = submit(x, 0, op);
    wait_ok(x, s, result_code);
    if (result_code != 0)
        assert_non_null(strstr(s->w.res.msg, "stale incarnation"));
    settle(x, s->req.index);
    ic_free(s);
}

static void lease(struct fx *x,
                  uint16_t node,
                  uint64_t inc,
                  enum ic_raft_lease_action action,
                  int result_code)
{
    struct ic_raft_op op;
    struct sub *s;

    memset(&op, 0, sizeof op);
    op.type = IC_RAFT_OP_NODE_LEASE;
    op.lease = (struct ic_raft_lease){node, inc, action};
    s = submit(x, 0, op);
    wait_ok(x, s, result_code);
    settle(x, s->req.index);
    ic_free(s);
}

/* Reading the registry */

/* JID's entry on server I as "n1 i1 payload", or NULL. */
static char *entry(struct fx *x, unsigned i, const char *jid)
{
    struct ic_store_presence p;
    struct ic_txn *t;
    char buf[512], *out = NULL;
    int rc;

    assert_int_equal(ic_store_txn_begin(x->st[i], false, &t), 0);
    rc = ic_store_presence_get(t, (struct ic_kv){jid, strlen(jid)}, &p);
    assert_true(rc == 0 || rc == IC_ENOTFOUND);
    if (rc == 0) {
        assert_int_equal(p.jid.len, strlen(jid));
        snprintf(buf, sizeof buf, "n%u i%llu %.*s", (unsigned)p.node,
                 (unsigned long long)p.incarnation, (int)p.payload.len,
                 (const char *)p.payload.data);
        out = ic_strdup(buf);
    }
    ic_store_txn_abort(t);
    return out;
}

static void assert_entry(struct fx *x, const char *jid, const char *want)
{
    for (unsigned i = 0; i < x->n; i++) {
        char *got = entry(x, i, jid);
        if (want == NULL) {
            assert_null(got);
        } else {
            assert_non_null(got);
            assert_string_equal(got, want);
        }
        ic_free(got);
    }
}

static int list_one(void *data, const struct ic_store_presence *p)
{
    char *out = data;
    size_t at = strlen(out);

    snprintf(out + at, 1024 - at, "%.*s;", (int)p->jid.len,
             (const char *)p->jid.data);
    return 0;
}

/* The JIDs of bare JID BARE (or, BARE NULL, of node NODE) on every server:
 * all must be WANT ("jid;jid;"). */
static void
assert_list(struct fx *x, const char *bare, uint16_t node, const char *want)
{
    char out[1024];
    struct ic_txn *t;

    for (unsigned i = 0; i < x->n; i++) {
        out[0] = '\0';
        assert_int_equal(ic_store_txn_begin(x->st[i], false, &t), 0);
        if (bare != NULL)
            assert_int_equal(
                ic_store_presence_each_bare(
                    t, (struct ic_kv){bare, strlen(bare)}, list_one, out),
                0);
        else
            assert_int_equal(
                ic_store_presence_each_node(t, node, list_one, out), 0);
        ic_store_txn_abort(t);
        assert_string_equal(out, want);
    }
}

/* Node NODE's lease on every server: INC and REVOKED (INC 0: none). */
static void
assert_lease(struct fx *x, uint16_t node, uint64_t inc, bool revoked)
{
    struct ic_store_lease l;
    struct ic_txn *t;

    for (unsigned i = 0; i < x->n; i++) {
        assert_int_equal(ic_store_txn_begin(x->st[i], false, &t), 0);
        if (inc == 0) {
            assert_int_equal(ic_store_lease_get(t, node, &l), IC_ENOTFOUND);
        } else {
            assert_int_equal(ic_store_lease_get(t, node, &l), 0);
            assert_int_equal(l.incarnation, inc);
            assert_int_equal(l.revoked, revoked);
        }
        ic_store_txn_abort(t);
    }
}

/* Tests */

/* Batches of two nodes applied on every replica, in order; an unavailable
 * item removes only its own node's entry. */
static void test_batches(void **state)
{
    struct fx *x = *state;
    struct ic_raft_presence_item b1[3] = {avail("a@x/1", "<p1/>"),
                                          avail("b@x/1", "<b/>"),
                                          avail("ab@x/1", "<ab/>")};
    struct ic_raft_presence_item b2[2] = {avail("a@x/2", "<p2/>"),
                                          gone("b@x/1")};
    struct ic_raft_presence_item b3[2] = {gone("b@x/1"),
                                          avail("a@x/1", "<p1b/>")};

    lease(x, 1, 1, IC_RAFT_LEASE_START, 0);
    lease(x, 2, 7, IC_RAFT_LEASE_START, 0);
    assert_seen(x, ""); /* no entry dropped: nothing to tell */
    batch(x, 1, 1, 0, 3, b1);
    batch(x, 2, 7, 0, 2, b2); /* b@x/1 is node 1's: left alone */
    assert_entry(x, "b@x/1", "n1 i1 <b/>");
    batch(x, 1, 1, 0, 2, b3);
    assert_seen(x, "+a@x/1 n1 i1 <p1/>;+b@x/1 n1 i1 <b/>;"
                   "+ab@x/1 n1 i1 <ab/>;+a@x/2 n2 i7 <p2/>;"
                   "-b@x/1 n1 i1;+a@x/1 n1 i1 <p1b/>;");
    assert_entry(x, "a@x/1", "n1 i1 <p1b/>");
    assert_entry(x, "a@x/2", "n2 i7 <p2/>");
    assert_entry(x, "b@x/1", NULL);
    assert_list(x, "a@x", 0, "a@x/1;a@x/2;");
    assert_list(x, "ab@x", 0, "ab@x/1;");
    assert_list(x, "b@x", 0, "");
    assert_list(x, NULL, 1, "a@x/1;ab@x/1;");
    assert_list(x, NULL, 2, "a@x/2;");
    assert_lease(x, 1, 1, false);
    assert_lease(x, 3, 0, false);
    assert_all_same(x);
}

/* A batch of an incarnation that is not the node's current one, or of a
 * node that never started, is refused and changes nothing but the applied
 * index and the client's window; so is a START older than the current. */
static void test_stale_incarnation(void **state)
{
    struct fx *x = *state;
    struct ic_raft_presence_item it[1] = {avail("a@x/1", "<p/>")};
    unsigned char before[32], after[32];
    struct ic_txn *t;

    lease(x, 1, 2, IC_RAFT_LEASE_START, 0);
    digest(x->st[1], before);
    batch(x, 1, 1, IC_ELEASE, 1, it);
    batch(x, 1, 3, IC_ELEASE, 1, it);
    batch(x, 5, 1, IC_ELEASE, 1, it);
    lease(x, 1, 1, IC_RAFT_LEASE_START, IC_ELEASE);
    assert_seen(x, "");
    assert_entry(x, "a@x/1", NULL);
    assert_lease(x, 1, 2, false);
    assert_lease(x, 5, 0, false);
    assert_all_same(x);
    /* only the applied index and the clients' records moved */
    digest(x->st[1], after);
    assert_memory_not_equal(before, after, 32);
    assert_int_equal(ic_store_txn_begin(x->st[1], false, &t), 0);
    assert_int_equal(ic_store_kv_next(t, IC_KV_PRESENCE, (struct ic_kv){0},
                                      &(struct ic_kv){0}, &(struct ic_kv){0}),
                     0); /* the lease record is there */
    ic_store_txn_abort(t);
    batch(x, 1, 2, 0, 1, it);
    assert_entry(x, "a@x/1", "n1 i2 <p/>");
}

/* A node restarting takes a new incarnation: START drops every entry of
 * its older one, in the same entry, and leaves other nodes alone. */
static void test_start_drops_old(void **state)
{
    struct fx *x = *state;
    struct ic_raft_presence_item b1[3] = {
        avail("a@x/1", "<a/>"), avail("b@x/1", "<b/>"), avail("c@x/1", "<c/>")};
    struct ic_raft_presence_item b2[1] = {avail("d@x/2", "<d/>")};
    struct ic_raft_presence_item b3[1] = {avail("a@x/1", "<a2/>")};

    lease(x, 1, 1, IC_RAFT_LEASE_START, 0);
    lease(x, 2, 1, IC_RAFT_LEASE_START, 0);
    batch(x, 1, 1, 0, 3, b1);
    batch(x, 2, 1, 0, 1, b2);
    seen_clear(x);
    lease(x, 1, 1, IC_RAFT_LEASE_START, 0); /* again: nothing */
    assert_seen(x, "");
    lease(x, 1, 5, IC_RAFT_LEASE_START, 0);
    /* the dropped entries, then the end of the lease they were under */
    assert_seen(x, "-a@x/1 n1 i1;-b@x/1 n1 i1;-c@x/1 n1 i1;!n1 i1;");
    assert_list(x, NULL, 1, "");
    assert_list(x, NULL, 2, "d@x/2;");
    assert_lease(x, 1, 5, false);
    batch(x, 1, 1, IC_ELEASE, 1, b3);
    batch(x, 1, 5, 0, 1, b3);
    assert_entry(x, "a@x/1", "n1 i5 <a2/>");
    assert_entry(x, "d@x/2", "n2 i1 <d/>");
    assert_all_same(x);
}

/* The leader revokes a silent node: one entry drops all its presence and
 * marks the incarnation revoked; its later batches are refused, a second
 * revoke changes nothing, only a newer incarnation starts again. */
static void test_revoke(void **state)
{
    struct fx *x = *state;
    struct ic_raft_presence_item b1[3] = {
        avail("a@x/1", "<a/>"), avail("b@x/1", "<b/>"), avail("c@x/9", "<c/>")};
    struct ic_raft_presence_item b2[1] = {avail("d@x/2", "<d/>")};
    unsigned char d1[32], d2[32];

    lease(x, 1, 3, IC_RAFT_LEASE_START, 0);
    lease(x, 2, 1, IC_RAFT_LEASE_START, 0);
    batch(x, 1, 3, 0, 3, b1);
    batch(x, 2, 1, 0, 1, b2);
    seen_clear(x);
    lease(x, 1, 2, IC_RAFT_LEASE_REVOKE, 0); /* not current: nothing */
    lease(x, 1, 4, IC_RAFT_LEASE_REVOKE, 0);
    assert_seen(x, "");
    assert_lease(x, 1, 3, false);
    lease(x, 1, 3, IC_RAFT_LEASE_REVOKE, 0);
    assert_seen(x, "-a@x/1 n1 i3;-b@x/1 n1 i3;-c@x/9 n1 i3;!n1 i3;");
    assert_lease(x, 1, 3, true);
    assert_list(x, NULL, 1, "");
    assert_entry(x, "a@x/1", NULL);
    assert_entry(x, "d@x/2", "n2 i1 <d/>");
    seen_clear(x);
    digest(x->st[0], d1);
    batch(x, 1, 3, IC_ELEASE, 3, b1);
    lease(x, 1, 3, IC_RAFT_LEASE_REVOKE, 0);
    lease(x, 1, 3, IC_RAFT_LEASE_START, IC_ELEASE);
    assert_seen(x, "");
    assert_list(x, NULL, 1, "");
    digest(x->st[0], d2);
    assert_memory_not_equal(d1, d2, 32); /* the applied index moved */
    lease(x, 1, 4, IC_RAFT_LEASE_START, 0);
    assert_seen(x, ""); /* the lease it follows had ended already */
    batch(x, 1, 4, 0, 1, b1);
    assert_entry(x, "a@x/1", "n1 i4 <a/>");
    assert_all_same(x);
}

/* Server 2 misses the presence traffic while the others compact their
 * logs: it catches up through a snapshot (its observer is told to re-read)
 * with the same entries and leases; so does a new fourth server. */
static void test_snapshot(void **state)
{
    struct fx *x = *state;
    char jid[16][16], pl[16][16];
    struct ic_raft_presence_item it[16];
    struct raft *leader = raft_fixture_get(&x->f, 0), *r3;
    struct raft_change change;

    raft_fixture_kill(&x->f, 2);
    down = 2;
    lease(x, 1, 1, IC_RAFT_LEASE_START, 0);
    lease(x, 2, 1, IC_RAFT_LEASE_START, 0);
    for (int i = 0; i < 16; i++) {
        snprintf(jid[i], sizeof jid[i], "u%d@x/r", i);
        snprintf(pl[i], sizeof pl[i], "<p%d/>", i);
        it[i] = avail(jid[i], pl[i]);
        batch(x, (uint16_t)(1 + i % 2), 1, 0, 1, &it[i]);
    }
    lease(x, 2, 1, IC_RAFT_LEASE_REVOKE, 0);
    raft_fixture_revive(&x->f, 2);
    down = MAX_SERVERS;
    wait_all_applied(x, raft_last_applied(leader));
    assert_true(raft_fixture_n_recv(&x->f, 2, RAFT_INSTALL_SNAPSHOT) >= 1);
    assert_non_null(strstr(seen[2].log, "R;"));
    assert_all_same(x);
    assert_entry(x, "u0@x/r", "n1 i1 <p0/>");
    assert_entry(x, "u1@x/r", NULL);
    assert_list(x, NULL, 1,
                "u0@x/r;u10@x/r;u12@x/r;u14@x/r;u2@x/r;u4@x/r;"
                "u6@x/r;u8@x/r;");
    assert_lease(x, 2, 1, true);

    add_server(x, 4);
    observe(x, 3);
    r3 = raft_fixture_get(&x->f, 3);
    assert_int_equal(raft_start(r3), 0);
    memset(&change, 0, sizeof change);
    assert_int_equal(raft_add(leader, &change, r3->id, r3->address, NULL), 0);
    raft_fixture_step_until_elapsed(&x->f, 1000);
    assert_int_equal(raft_assign(leader, &change, r3->id, RAFT_VOTER, NULL), 0);
    raft_fixture_step_until_elapsed(&x->f, 3000);
    batch(x, 1, 1, 0, 1, &it[3]); /* node 1 takes u3@x/r */
    assert_true(raft_fixture_n_recv(&x->f, 3, RAFT_INSTALL_SNAPSHOT) >= 1);
    assert_non_null(strstr(seen[3].log, "R;"));
    assert_all_same(x);
    assert_entry(x, "u3@x/r", "n1 i1 <p3/>");
    assert_list(x, "u14@x", 0, "u14@x/r;");
    assert_lease(x, 1, 1, false);
    assert_lease(x, 2, 1, true);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batches, psetup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_incarnation, psetup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_start_drops_old, psetup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke, psetup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot, psetup_snapshots,
                                        teardown),
    };
    return tu_main(argc, argv, "raft_presence", tests, IC_ARRAY_LEN(tests));
}
