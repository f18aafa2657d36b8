/*
 * sweep.c - the leader keeps the term dictionary clean: it submits
 * TERMS_SWEEP commands (ic_store_terms_sweep, store/sweep.c), a slice of
 * SLICE terms every TICK_MS, one at a time, so every replica removes the
 * terms no quad uses any more in the same entries.
 *
 * A pass starts when this node becomes leader (what an earlier leader
 * left unfinished, terms a failed write created) and, at most every
 * PASS_EVERY_MS, when quads were removed since the last pass started (a
 * republished description that changed a value); it ends when it went
 * over the whole dictionary (a pass that starts where another stopped
 * goes on past the end until the slice that reaches the end again). An
 * idle catalog therefore writes no sweep entries. A slice costs each node
 * about four B-tree look-ups per term examined, in the apply of one
 * entry: SLICE keeps that under a millisecond (docs/benchmarks.md).
 *
 * Rolling upgrades: a node of a build that does not know TERMS_SWEEP would
 * stop at the first one, so slices go only while every other member's
 * cluster link is up and announced IC_NODE_LEVEL_SWEEP (cluster.h).
 *
 * Failure modes: a slice that fails or whose outcome is unknown is simply
 * sent again at the next tick (the cursor is in the replicated state, so
 * a slice applied twice examines the next terms: harmless); losing
 * leadership stops the pass, the next leader starts its own.
 */
#define _POSIX_C_SOURCE 200809L
#include <uv.h>

#include "sweep.h"

#define TICK_MS 200
#define SLICE 1024
#define PASS_EVERY_MS 10000 /* at most one pass begins per */
#define WRITE_DEADLINE_MS 10000

struct ic_node_sweep {
    struct ic_node_cluster *cluster;
    struct ic_store *st;
    uv_timer_t timer;
    bool in_pass;  /* a pass is under way */
    bool inflight; /* a slice is submitted, not answered */
    bool closing, timer_closed;
    unsigned wraps_left; /* ends of the dictionary the pass still crosses */
    uint64_t pass_mark;  /* ic_store_quads_removed when the pass started */
    uint64_t done_mark;  /* ... when the last finished pass started */
    bool done_any;       /* a pass finished while leading */
    uint64_t pass_at;    /* uv_now() when the last pass began */
    bool waiting;        /* for every member to know TERMS_SWEEP */
    uv_loop_t *loop;
};

static void maybe_free(struct ic_node_sweep *sw)
{
    if (sw->closing && sw->timer_closed && !sw->inflight)
        ic_free(sw);
}

/* Where the next slice starts (0: at the first term); 1 when unknown. */
static uint64_t cursor_now(struct ic_store *st)
{
    struct ic_txn *t;
    uint64_t next = 1;

    if (ic_store_txn_begin(st, false, &t) == 0) {
        if (ic_store_sweep_cursor(t, &next) != 0)
            next = 1;
        ic_store_txn_abort(t);
    }
    return next;
}

static void on_slice(void *data, int rc, const struct ic_raft_result *res)
{
    struct ic_node_sweep *sw = data;

    sw->inflight = false;
    if (sw->closing) {
        maybe_free(sw);
        return;
    }
    if (rc != 0 || res->code != 0) {
        IC_LOG(IC_LOG_DEBUG, "sweep", "slice: %s",
               rc != 0 ? ic_strerror(rc) : res->msg);
        return; /* again at the next tick */
    }
    if (cursor_now(sw->st) == 0 && sw->wraps_left > 0 &&
        --sw->wraps_left == 0) { /* the pass went round */
        sw->in_pass = false;
        sw->done_mark = sw->pass_mark;
        sw->done_any = true;
    }
}

static void submit(struct ic_node_sweep *sw)
{
    struct ic_raft_op op = {0};
    struct ic_raft_cmd cmd = {0};

    op.type = IC_RAFT_OP_TERMS_SWEEP;
    op.sweep_max = SLICE;
    cmd.n_ops = 1;
    cmd.ops = &op;
    sw->inflight = ic_node_cluster_write(sw->cluster, &cmd, WRITE_DEADLINE_MS,
                                         on_slice, sw) == 0;
}

static void on_tick(uv_timer_t *h)
{
    struct ic_node_sweep *sw = h->data;
    struct ic_raft_status s;
    uint64_t removed;

    if (sw->closing || sw->inflight)
        return;
    ic_node_cluster_status(sw->cluster, &s);
    if (s.state != IC_RAFT_LEADER) {
        sw->in_pass = sw->done_any = false;
        return;
    }
    removed = ic_store_quads_removed(sw->st);
    if (!sw->in_pass &&
        (!sw->done_any || (removed != sw->done_mark &&
                           uv_now(sw->loop) - sw->pass_at >= PASS_EVERY_MS))) {
        sw->in_pass = true;
        sw->pass_at = uv_now(sw->loop);
        sw->pass_mark = removed;
        /* a pass covers the whole dictionary: from the middle (where an
         * earlier pass or leader stopped), round twice past the end */
        sw->wraps_left = cursor_now(sw->st) == 0 ? 1 : 2;
    }
    if (!sw->in_pass)
        return;
    /* a node of an older build would stop at the entry: wait for every
     * member to announce that it knows TERMS_SWEEP */
    if (!ic_node_cluster_members_at(sw->cluster, IC_NODE_LEVEL_SWEEP)) {
        if (!sw->waiting)
            IC_LOG(IC_LOG_INFO, "sweep",
                   "waiting: a member is unreachable or does not know "
                   "TERMS_SWEEP (an older build)");
        sw->waiting = true;
        return;
    }
    sw->waiting = false;
    submit(sw);
}

void ic_node_sweep_start(struct uv_loop_s *loop,
                         struct ic_node_cluster *cluster,
                         struct ic_store *st,
                         struct ic_node_sweep **out)
{
    struct ic_node_sweep *sw = ic_calloc(1, sizeof *sw);

    sw->cluster = cluster;
    sw->st = st;
    sw->loop = loop;
    uv_timer_init(loop, &sw->timer);
    sw->timer.data = sw;
    uv_timer_start(&sw->timer, on_tick, TICK_MS, TICK_MS);
    *out = sw;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct ic_node_sweep *sw = h->data;

    sw->timer_closed = true;
    maybe_free(sw);
}

void ic_node_sweep_close(struct ic_node_sweep *sw)
{
    if (sw == NULL)
        return;
    sw->closing = true;
    uv_close((uv_handle_t *)&sw->timer, on_timer_closed);
}
