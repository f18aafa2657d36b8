/*
 * node.c - a raft server on the caller's libuv loop: raft's libuv disk I/O
 * in <data_dir>/raft/, its TCP transport, our state machine (fsm.c).
 *
 * Happy path: new -> (bootstrap when the directory is new) -> start; the
 * leader accepts submissions, barriers and membership changes; close hands
 * leadership over, closes raft, then our timer, then frees.
 *
 * Failure modes: a request this node cannot serve (not the leader, raft
 * refusing it) completes with an IC_E* code; a request raft fails after it
 * accepted it (leadership lost, shutdown) completes with IC_EINDOUBT. Every
 * completion goes through one queue drained by a zero timer, so callbacks
 * never run inside the call that made the request.
 *
 * A full store (fsm.c holds the entries it cannot apply) starts the retry
 * timer: every 100 ms, doubling to 5 s, the held entries are applied again
 * until they all are; a leader in that state hands leadership to another
 * voter, since the writes it takes cannot be answered until its store has
 * room. (raft's own disk writes retry on ENOSPC by themselves.)
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <raft/uv.h>
#include <uv.h>

#include "raft_int.h"
#include "transport.h"

#define MOD "raft"
#define QUEUE_BYTES_MAX ((size_t)4 << 20)
/* Un-acknowledged entries per follower (raft's default). A leader's turn
 * goes as one entry (a group), so 32 entries are a lot of writes. With
 * 4096, a leader cut off from the others pipelined entries to them without
 * bound, and after the partition healed raft 0.22 crashed in a send
 * callback (integration_faults' partition test, 3 runs of 3; never with
 * 32). */
#define INFLIGHT_MAX 32

enum op_kind { OP_SUBMIT, OP_AWAIT, OP_BARRIER, OP_CHANGE, OP_TRANSFER };

/* One request to raft and its completion. */
struct op {
    enum op_kind kind;
    struct ic_raft_node *node;
    union {
        struct raft_apply apply;
        struct raft_barrier barrier;
        struct raft_change change;
        struct raft_transfer transfer;
    } req;
    struct ic_raft__wait w;       /* OP_SUBMIT, OP_AWAIT */
    struct op *aw_next, *aw_prev; /* OP_AWAIT, until it fired */
    struct raft_buffer buf;       /* OP_SUBMIT, while queued */
    uint64_t target;              /* OP_TRANSFER */
    ic_raft_submit_cb submit_cb;
    ic_raft_done_cb done_cb;
    void *data;
    int rc;
    uint64_t leader_id;
    char leader_address[IC_RAFT_ADDRESS_MAX];
    struct op *next;
};

struct ic_raft_node {
    uv_loop_t *loop;
    struct raft raft;
    struct raft_io io;
    struct ic_raft__tcp transport;
    struct ic_raft_fsm *fsm;
    uv_timer_t defer; /* drains DONE */
    uv_timer_t guard; /* bounds the leadership transfer before closing */
    uv_timer_t retry; /* applies held entries again (store full) */
    uv_check_t flush; /* applies this turn's entries in one transaction */
    ic_raft_applied_fn applied_cb;
    void *applied_data;
    uint64_t announced; /* the applied index applied_cb last heard */
    struct op *queue, **queue_tail; /* submissions of this turn */
    unsigned queue_n;
    size_t queue_bytes;
    bool in_check;
    uint64_t retry_ms;
    int handles; /* ours still open */
    unsigned election_ms;
    uint64_t log_memory;     /* bytes of entries to keep in memory */
    unsigned max_th, max_tr; /* the configured snapshot counts */
    unsigned cur_th, cur_tr; /* raft's now */
    struct op *done, **done_tail;
    struct op *awaits;  /* OP_AWAIT not fired yet */
    uint64_t delivered; /* the state machine's count at the last flush */
    bool pushing;       /* a barrier pushing the commit index out */
    bool push_again;    /* entries applied since it went out */
    uint64_t client;
    uint64_t seq;
    bool closing;
    bool raft_closing;
    bool raft_closed;
    struct raft_transfer transfer; /* the one before closing */
    struct raft_transfer yield;    /* the one of a leader with a full store */
    bool yielding;
    void (*close_cb)(void *data);
    void *close_data;
};

/* Completions */

static void op_free(struct op *op)
{
    ic_free(op);
}

static void call(struct op *op)
{
    const char *addr = op->leader_id ? op->leader_address : NULL;

    if (op->kind == OP_SUBMIT || op->kind == OP_AWAIT) {
        /* applied by raft, but the store has not (it is full: the entry is
         * held): no result to give */
        if (op->rc == 0 && !op->w.done)
            op->rc = IC_EINDOUBT;
        if (op->node->fsm != NULL)
            ic_raft__fsm_wait_del(op->node->fsm, &op->w);
        if (op->submit_cb != NULL)
            op->submit_cb(op->data, op->rc, op->rc == 0 ? &op->w.res : NULL,
                          op->leader_id, addr);
    } else if (op->done_cb != NULL) {
        op->done_cb(op->data, op->rc, op->leader_id, addr);
    }
}

static bool leading(struct ic_raft_node *n);

static void push_commit(struct ic_raft_node *n);

static void on_pushed(void *data, int rc, uint64_t lid, const char *laddr)
{
    struct ic_raft_node *n = data;

    (void)rc;
    (void)lid;
    (void)laddr;
    n->pushing = false;
    if (n->push_again) {
        n->push_again = false;
        push_commit(n);
    }
}

/* Followers apply a committed entry when the leader next tells them the
 * commit index: with its next append or heartbeat. Once a leader's store
 * has applied entries (they committed), the commit index goes out at
 * once, so the followers (and a follower waiting for a write it forwarded)
 * apply them within a round trip instead of up to a heartbeat later:
 *   - submissions queued for this turn carry it (their appends go out at
 *     the end of the turn);
 *   - else a barrier appends, one at a time: when one is in flight already
 *     (sent before these entries committed, so not carrying their commit),
 *     another follows as soon as it completes.
 * Without the second barrier a follower's forwarded write (a node's
 * presence batch, one in flight at a time) waited for the heartbeat: a
 * presence p99 of 50 ms instead of 8 whenever the publishers' node was a
 * follower. Called at the end of the turn that applied them. */
static void push_commit(struct ic_raft_node *n)
{
    if (n->closing || !leading(n) || n->queue != NULL)
        return;
    if (n->pushing) {
        n->push_again = true;
        return;
    }
    if (ic_raft_node_barrier(n, on_pushed, n) == 0)
        n->pushing = true;
}

static uint64_t store_applied(struct ic_raft_node *n)
{
    uint64_t held = n->fsm != NULL ? ic_raft__fsm_held_first(n->fsm) : 0;

    return held != 0 ? held - 1 : raft_last_applied(&n->raft);
}

/* Applies the entries of this turn (raft/fsm.c, deferred apply) and tells
 * the applied callback how far the store got. */
static void flush(struct ic_raft_node *n)
{
    uint64_t applied;

    if (n->fsm == NULL)
        return;
    ic_raft__fsm_flush(n->fsm);
    if (ic_raft__fsm_delivered(n->fsm) != n->delivered) {
        n->delivered = ic_raft__fsm_delivered(n->fsm);
        push_commit(n);
    }
    applied = store_applied(n);
    if (applied > n->announced) {
        n->announced = applied;
        if (n->applied_cb != NULL)
            n->applied_cb(n->applied_data, applied);
    }
}

static void submit_queue(struct ic_raft_node *n);

/* The end of a turn of the loop: this turn's entries into the store, then
 * this turn's submissions to raft (with those the first made). */
void ic_raft__log_bounds(uint64_t budget,
                         uint64_t avg,
                         unsigned max_th,
                         unsigned max_tr,
                         unsigned *th,
                         unsigned *tr)
{
    uint64_t a = budget / 3 / (avg ? avg : 1),
             b = 2 * (budget / 3) / (avg ? avg : 1);

    *th = max_th;
    *tr = max_tr;
    if (budget == 0)
        return;
    if (a < *th)
        *th = a < 64 ? 64 : (unsigned)a;
    if (b < *tr)
        *tr = b < 128 ? 128 : (unsigned)b;
}

/* raft 0.22 counts entries: with groups an entry holds up to 512 writes,
 * and the 4096 + 8192 entries it keeps in memory were 370 MB per node after
 * a minute of 12,000 publishes/s. The counts follow the entries' size
 * instead (changed when they move by an eighth). */
static void tune_log(struct ic_raft_node *n)
{
    unsigned th, tr;

    ic_raft__log_bounds(n->log_memory, ic_raft__fsm_entry_avg(n->fsm),
                        n->max_th, n->max_tr, &th, &tr);
    if (th > n->cur_th + n->cur_th / 8 || th < n->cur_th - n->cur_th / 8) {
        raft_set_snapshot_threshold(&n->raft, th);
        n->cur_th = th;
    }
    if (tr > n->cur_tr + n->cur_tr / 8 || tr < n->cur_tr - n->cur_tr / 8) {
        raft_set_snapshot_trailing(&n->raft, tr);
        n->cur_tr = tr;
    }
}

static void drain(struct ic_raft_node *n);

static void on_flush(uv_check_t *h)
{
    struct ic_raft_node *n = h->data;

    uv_check_stop(h);
    n->in_check = true;
    /* the turn's entries into the store and the completions waiting
     * (submissions raft applied, awaits that fired: their callbacks run
     * here, not a turn later from the zero timer, so an answer they write
     * goes out with the XMPP server's end-of-turn flush, which runs after
     * this handle); then the submissions of the turn, those the
     * completions made included */
    drain(n);
    submit_queue(n);
    tune_log(n);
    n->in_check = false;
}

static void start_check(struct ic_raft_node *n);

/* From inside raft's apply: only the handle. */
static void on_pending(void *data)
{
    start_check(data);
}

static void drain(struct ic_raft_node *n)
{
    flush(n); /* the results handed below are in the store */
    while (n->done != NULL) {
        struct op *op = n->done;
        n->done = op->next;
        if (n->done == NULL)
            n->done_tail = &n->done;
        call(op);
        op_free(op);
    }
}

static void on_defer(uv_timer_t *t)
{
    drain(t->data);
}

/* The leader as raft knows it, unless it is this node. */
static void leader_of(struct ic_raft_node *n, uint64_t *id, char *addr)
{
    raft_id lid = 0;
    const char *la = NULL;

    raft_leader(&n->raft, &lid, &la);
    if (lid == n->raft.id || la == NULL)
        lid = 0;
    *id = lid;
    addr[0] = '\0';
    if (lid != 0)
        snprintf(addr, IC_RAFT_ADDRESS_MAX, "%s", la);
}

static void complete(struct op *op, int rc)
{
    struct ic_raft_node *n = op->node;

    op->rc = rc;
    if (rc == IC_ENOTLEADER && !n->raft_closed)
        leader_of(n, &op->leader_id, op->leader_address);
    op->next = NULL;
    *n->done_tail = op;
    n->done_tail = &op->next;
    if (!n->raft_closed)
        uv_timer_start(&n->defer, on_defer, 0, 0);
}

static struct op *op_new(struct ic_raft_node *n, enum op_kind kind)
{
    struct op *op = ic_calloc(1, sizeof *op);

    op->kind = kind;
    op->node = n;
    return op;
}

static bool leading(struct ic_raft_node *n)
{
    return raft_state(&n->raft) == RAFT_LEADER;
}

/* Submissions */

static void on_applied(struct raft_apply *req, int status, void *result)
{
    struct op *op = req->data;

    (void)result; /* always NULL: results come through the wait, which
                   * call() reads after the store's batch is in */
    complete(op, status == 0 ? 0 : ic_raft__err(status));
}

/* A group of submissions in one raft entry (raft_int.h). */
struct group {
    struct raft_apply req;
    struct op **ops;
    unsigned n;
};

static void on_group_applied(struct raft_apply *req, int status, void *result)
{
    struct group *g = req->data;

    (void)result;
    for (unsigned i = 0; i < g->n; i++)
        complete(g->ops[i], status == 0 ? 0 : ic_raft__err(status));
    ic_free(g->ops);
    ic_free(g);
}

/* Hands OPS (N of them, queued, buffers encoded) to raft: one entry, a
 * group of them when N > 1. */
static void submit_ops(struct ic_raft_node *n, struct op **ops, unsigned cnt)
{
    struct raft_buffer buf, *bufs;
    struct group *g = NULL;
    int rc;

    if (cnt == 1) {
        buf = ops[0]->buf;
        ops[0]->req.apply.data = ops[0];
        rc = raft_apply(&n->raft, &ops[0]->req.apply, &buf, 1, on_applied);
    } else {
        bufs = ic_malloc(cnt * sizeof *bufs);
        for (unsigned i = 0; i < cnt; i++)
            bufs[i] = ops[i]->buf;
        buf.len = ic_raft__group_size(bufs, cnt);
        buf.base = raft_malloc(buf.len);
        if (buf.base != NULL)
            ic_raft__group_encode(bufs, cnt, buf.base);
        ic_free(bufs);
        for (unsigned i = 0; i < cnt; i++)
            raft_free(ops[i]->buf.base);
        if (buf.base == NULL) {
            for (unsigned i = 0; i < cnt; i++)
                complete(ops[i], IC_ENOMEM);
            return;
        }
        g = ic_malloc(sizeof *g);
        g->ops = ic_malloc(cnt * sizeof *g->ops);
        memcpy(g->ops, ops, cnt * sizeof *ops);
        g->n = cnt;
        g->req.data = g;
        rc = raft_apply(&n->raft, &g->req, &buf, 1, on_group_applied);
    }
    for (unsigned i = 0; i < cnt; i++)
        ops[i]->buf.base = NULL;
    if (rc != 0) {
        /* raft 0.22 refuses a leader that is handing leadership over
         * (RAFT_NOTLEADER) before it takes the buffer: ours to free. On
         * its later failure paths it frees the buffer itself: leave it
         * then (a rare leak is better than a double free). */
        if (rc == RAFT_NOTLEADER)
            raft_free(buf.base);
        IC_LOG(IC_LOG_WARN, MOD, "submit: %s", raft_errmsg(&n->raft));
        for (unsigned i = 0; i < cnt; i++)
            complete(ops[i], ic_raft__err(rc));
        if (g != NULL) {
            ic_free(g->ops);
            ic_free(g);
        }
    }
}

/* The submissions queued this turn go to raft: groups of at most
 * IC_RAFT__GROUP_MAX commands and about 4 MiB. */
static void submit_queue(struct ic_raft_node *n)
{
    struct op *batch[IC_RAFT__GROUP_MAX];

    while (n->queue != NULL) {
        unsigned cnt = 0;
        size_t bytes = 0;
        while (n->queue != NULL && cnt < IC_RAFT__GROUP_MAX &&
               (cnt == 0 || bytes + n->queue->buf.len <= QUEUE_BYTES_MAX)) {
            struct op *op = n->queue;
            n->queue = op->next;
            op->next = NULL;
            bytes += op->buf.len;
            batch[cnt++] = op;
        }
        if (n->queue == NULL)
            n->queue_tail = &n->queue;
        n->queue_n -= cnt;
        n->queue_bytes -= bytes;
        if (leading(n) && !n->closing) {
            submit_ops(n, batch, cnt);
            continue;
        }
        for (unsigned i = 0; i < cnt; i++) {
            raft_free(batch[i]->buf.base);
            batch[i]->buf.base = NULL;
            complete(batch[i], n->closing ? IC_EBUSY : IC_ENOTLEADER);
        }
    }
}

static void start_check(struct ic_raft_node *n)
{
    if (!n->in_check && n->flush.loop != NULL &&
        !uv_is_closing((uv_handle_t *)&n->flush))
        uv_check_start(&n->flush, on_flush);
}

int ic_raft_node_submit(struct ic_raft_node *n,
                        const struct ic_raft_cmd *cmd,
                        ic_raft_submit_cb cb,
                        void *data)
{
    struct raft_buffer buf;
    struct op *op;
    int rc;

    if (n->closing)
        return IC_EBUSY;
    rc = ic_raft_cmd_size(cmd, &buf.len);
    if (rc != 0)
        return rc;
    op = op_new(n, OP_SUBMIT);
    op->submit_cb = cb;
    op->data = data;
    if (!leading(n)) {
        complete(op, IC_ENOTLEADER);
        return 0;
    }
    buf.base = raft_malloc(buf.len);
    if (buf.base == NULL) {
        op_free(op);
        return IC_ENOMEM;
    }
    ic_raft_cmd_encode(cmd, buf.base, buf.len);
    op->w.client = cmd->client;
    op->w.seq = cmd->seq;
    ic_raft__fsm_wait_add(n->fsm, &op->w);
    op->buf = buf;
    /* presence commands go alone: their changes are their entry's */
    if (cmd->n_ops == 1 && (cmd->ops[0].type == IC_RAFT_OP_PRESENCE_BATCH ||
                            cmd->ops[0].type == IC_RAFT_OP_NODE_LEASE)) {
        submit_ops(n, &op, 1);
        return 0;
    }
    /* the others wait for the end of the turn (the check handle), and go
     * together */
    op->next = NULL;
    *n->queue_tail = op;
    n->queue_tail = &op->next;
    n->queue_n++;
    n->queue_bytes += buf.len;
    if (n->queue_n >= IC_RAFT__GROUP_MAX || n->queue_bytes >= QUEUE_BYTES_MAX)
        submit_queue(n);
    else
        start_check(n);
    return 0;
}

/* Awaits (another node submits the command) */

static void await_unlist(struct op *op)
{
    struct ic_raft_node *n = op->node;

    if (op->aw_prev != NULL)
        op->aw_prev->aw_next = op->aw_next;
    else
        n->awaits = op->aw_next;
    if (op->aw_next != NULL)
        op->aw_next->aw_prev = op->aw_prev;
    op->aw_next = op->aw_prev = NULL;
}

/* From the state machine's notify (maybe inside raft's apply): queue. */
static void await_fired(struct ic_raft__wait *w)
{
    struct op *op = w->owner;

    await_unlist(op);
    complete(op, 0);
}

int ic_raft_node_await(struct ic_raft_node *n,
                       uint64_t client,
                       uint64_t seq,
                       ic_raft_submit_cb cb,
                       void *data,
                       struct ic_raft_await **out)
{
    struct op *op;

    if (n->closing || n->fsm == NULL)
        return IC_EBUSY;
    op = op_new(n, OP_AWAIT);
    op->submit_cb = cb;
    op->data = data;
    op->w.client = client;
    op->w.seq = seq;
    op->w.fired = await_fired;
    op->w.owner = op;
    ic_raft__fsm_wait_add(n->fsm, &op->w);
    op->aw_next = n->awaits;
    if (n->awaits != NULL)
        n->awaits->aw_prev = op;
    n->awaits = op;
    *out = (struct ic_raft_await *)op;
    return 0;
}

void ic_raft_node_await_cancel(struct ic_raft_node *n, struct ic_raft_await *a)
{
    struct op *op = (struct op *)a;

    if (op->w.done || n->raft_closed) {
        op->submit_cb = NULL; /* queued: call() only drops it */
        return;
    }
    await_unlist(op);
    ic_raft__fsm_wait_del(n->fsm, &op->w);
    op_free(op);
}

static void on_barrier(struct raft_barrier *req, int status)
{
    complete(req->data, ic_raft__err(status));
}

/* An operation only the leader can run, ready to go; or NULL when this
 * node does not lead (then it is completed with IC_ENOTLEADER already). */
static struct op *leader_op(struct ic_raft_node *n,
                            enum op_kind kind,
                            ic_raft_done_cb cb,
                            void *data)
{
    struct op *op = op_new(n, kind);

    op->done_cb = cb;
    op->data = data;
    if (!leading(n)) {
        complete(op, IC_ENOTLEADER);
        return NULL;
    }
    return op;
}

int ic_raft_node_barrier(struct ic_raft_node *n, ic_raft_done_cb cb, void *data)
{
    struct op *op;
    int rc;

    if (n->closing)
        return IC_EBUSY;
    op = leader_op(n, OP_BARRIER, cb, data);
    if (op == NULL)
        return 0;
    op->req.barrier.data = op;
    rc = raft_barrier(&n->raft, &op->req.barrier, on_barrier);
    if (rc != 0)
        complete(op, ic_raft__err(rc));
    return 0;
}

/* Membership */

static void on_change(struct raft_change *req, int status)
{
    complete(req->data, ic_raft__err(status));
}

static struct op *change_op(struct ic_raft_node *n, ic_raft_done_cb cb, void *d)
{
    struct op *op = leader_op(n, OP_CHANGE, cb, d);

    if (op != NULL)
        op->req.change.data = op;
    return op;
}

int ic_raft_node_add(struct ic_raft_node *n,
                     uint64_t id,
                     const char *address,
                     ic_raft_done_cb cb,
                     void *data)
{
    struct op *op;
    int rc;

    if (n->closing)
        return IC_EBUSY;
    if (id == 0 || address == NULL)
        return IC_EINVAL;
    op = change_op(n, cb, data);
    if (op == NULL)
        return 0;
    rc = raft_add(&n->raft, &op->req.change, id, address, on_change);
    if (rc != 0)
        complete(op, ic_raft__err(rc));
    return 0;
}

static int raft_role_of(enum ic_raft_role role)
{
    switch (role) {
    case IC_RAFT_VOTER:
        return RAFT_VOTER;
    case IC_RAFT_STANDBY:
        return RAFT_STANDBY;
    case IC_RAFT_SPARE:
        return RAFT_SPARE;
    default:
        return -1;
    }
}

static enum ic_raft_role role_from_raft(int role)
{
    switch (role) {
    case RAFT_VOTER:
        return IC_RAFT_VOTER;
    case RAFT_STANDBY:
        return IC_RAFT_STANDBY;
    default:
        return IC_RAFT_SPARE;
    }
}

int ic_raft_node_assign(struct ic_raft_node *n,
                        uint64_t id,
                        enum ic_raft_role role,
                        ic_raft_done_cb cb,
                        void *data)
{
    struct op *op;
    int rc;

    if (n->closing)
        return IC_EBUSY;
    if (raft_role_of(role) < 0)
        return IC_EINVAL;
    op = change_op(n, cb, data);
    if (op == NULL)
        return 0;
    rc = raft_assign(&n->raft, &op->req.change, id, raft_role_of(role),
                     on_change);
    if (rc != 0)
        complete(op, ic_raft__err(rc));
    return 0;
}

int ic_raft_node_remove(struct ic_raft_node *n,
                        uint64_t id,
                        ic_raft_done_cb cb,
                        void *data)
{
    struct op *op;
    int rc;

    if (n->closing)
        return IC_EBUSY;
    op = change_op(n, cb, data);
    if (op == NULL)
        return 0;
    rc = raft_remove(&n->raft, &op->req.change, id, on_change);
    if (rc != 0)
        complete(op, ic_raft__err(rc));
    return 0;
}

/* raft says nothing of the outcome: look at who leads now. */
static void on_transferred(struct raft_transfer *req)
{
    struct op *op = req->data;
    raft_id lid = 0;
    const char *la = NULL;

    raft_leader(&op->node->raft, &lid, &la);
    if (lid != 0 && lid != op->node->raft.id &&
        (op->target == 0 || lid == op->target))
        complete(op, 0);
    else
        complete(op, IC_ETIMEDOUT);
}

int ic_raft_node_transfer(struct ic_raft_node *n,
                          uint64_t id,
                          ic_raft_done_cb cb,
                          void *data)
{
    struct op *op;
    int rc;

    if (n->closing)
        return IC_EBUSY;
    op = leader_op(n, OP_TRANSFER, cb, data);
    if (op == NULL)
        return 0;
    op->target = id;
    op->req.transfer.data = op;
    rc = raft_transfer(&n->raft, &op->req.transfer, id, on_transferred);
    if (rc != 0)
        complete(op, ic_raft__err(rc));
    return 0;
}

/* A full store */

#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 5000

static bool other_voter(struct ic_raft_node *n);

static void on_yielded(struct raft_transfer *req)
{
    struct ic_raft_node *n = req->data;

    n->yielding = false;
}

static void on_retry(uv_timer_t *t)
{
    struct ic_raft_node *n = t->data;

    if (n->closing)
        return;
    if (!ic_raft__fsm_retry(n->fsm)) {
        flush(n); /* announces what the retry applied */
        return;
    }
    if (leading(n) && other_voter(n) && !n->yielding) {
        n->yield.data = n;
        if (raft_transfer(&n->raft, &n->yield, 0, on_yielded) == 0) {
            n->yielding = true;
            IC_LOG(IC_LOG_WARN, MOD,
                   "node %llu: store full: handing leadership over",
                   (unsigned long long)n->raft.id);
        }
    }
    n->retry_ms =
        n->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : n->retry_ms * 2;
    uv_timer_start(&n->retry, on_retry, n->retry_ms, 0);
}

/* From inside raft's apply: only the timer. */
static void on_hold(void *data)
{
    struct ic_raft_node *n = data;

    if (n->closing || n->retry.loop == NULL)
        return;
    n->retry_ms = RETRY_FIRST_MS;
    uv_timer_start(&n->retry, on_retry, n->retry_ms, 0);
}

/* Status */

static enum ic_raft_state state_of(unsigned s)
{
    switch (s) {
    case RAFT_FOLLOWER:
        return IC_RAFT_FOLLOWER;
    case RAFT_CANDIDATE:
        return IC_RAFT_CANDIDATE;
    case RAFT_LEADER:
        return IC_RAFT_LEADER;
    default:
        return IC_RAFT_UNAVAILABLE;
    }
}

struct raft *ic_raft__node_raft(struct ic_raft_node *n)
{
    return &n->raft;
}

void ic_raft_node_status(struct ic_raft_node *n, struct ic_raft_status *out)
{
    struct raft *r = &n->raft;
    const struct raft_configuration *c = &r->configuration;
    raft_id lid = 0;
    const char *la = NULL;

    memset(out, 0, sizeof *out);
    out->id = r->id;
    out->state = state_of((unsigned)raft_state(r));
    raft_leader(r, &lid, &la);
    out->leader_id = lid;
    if (lid != 0 && la != NULL)
        snprintf(out->leader_address, sizeof out->leader_address, "%s", la);
    out->term = raft_current_term(r);
    out->commit_index = raft_commit_index(r);
    out->last_applied = store_applied(n);
    for (unsigned i = 0; i < c->n && i < IC_RAFT_STATUS_SERVERS; i++) {
        out->servers[i].id = c->servers[i].id;
        snprintf(out->servers[i].address, sizeof out->servers[i].address, "%s",
                 c->servers[i].address);
        out->servers[i].role = role_from_raft(c->servers[i].role);
        out->n_servers++;
    }
}

uint64_t ic_raft_node_applied(struct ic_raft_node *n)
{
    return store_applied(n);
}

bool ic_raft_node_leading(struct ic_raft_node *n, uint64_t *leader_id)
{
    raft_id lid = 0;
    const char *la = NULL;

    raft_leader(&n->raft, &lid, &la);
    *leader_id = lid;
    return leading(n);
}

uint64_t ic_raft_node_client(struct ic_raft_node *n)
{
    return n->client;
}

uint64_t ic_raft_node_next_seq(struct ic_raft_node *n)
{
    return ++n->seq;
}

/* Closing: transfer (leader), raft_close, the raft_uv parts, our timer,
 * then the node. */

static void on_handle_closed(uv_handle_t *h)
{
    struct ic_raft_node *n = h->data;
    void (*cb)(void *) = n->close_cb;
    void *data = n->close_data;

    if (--n->handles > 0)
        return;
    ic_free(n);
    if (cb != NULL)
        cb(data);
}

static void on_raft_closed(struct raft *r)
{
    struct ic_raft_node *n = r->data;

    n->raft_closed = true;
    raft_uv_close(&n->io);
    raft_uv_tcp_close(&n->transport.t);
    while (n->awaits != NULL) {
        struct op *op = n->awaits;
        await_unlist(op);
        ic_raft__fsm_wait_del(n->fsm, &op->w);
        complete(op, IC_EBUSY);
    }
    ic_raft_fsm_free(n->fsm);
    n->fsm = NULL;
    drain(n); /* what raft failed while closing */
    uv_close((uv_handle_t *)&n->defer, on_handle_closed);
    uv_close((uv_handle_t *)&n->guard, on_handle_closed);
    uv_close((uv_handle_t *)&n->retry, on_handle_closed);
    uv_close((uv_handle_t *)&n->flush, on_handle_closed);
}

static void close_raft(struct ic_raft_node *n)
{
    if (n->raft_closing) /* the transfer ended after the guard fired */
        return;
    n->raft_closing = true;
    uv_timer_stop(&n->guard);
    IC_LOG(IC_LOG_INFO, MOD, "node %llu closing",
           (unsigned long long)n->raft.id);
    raft_close(&n->raft, on_raft_closed);
}

static void on_handed_over(struct raft_transfer *req)
{
    struct ic_raft_node *n = req->data;
    raft_id lid = 0;
    const char *la = NULL;

    raft_leader(&n->raft, &lid, &la);
    IC_LOG(IC_LOG_INFO, MOD, "node %llu: leadership %s %llu",
           (unsigned long long)n->raft.id,
           lid != 0 && lid != n->raft.id ? "handed to" : "not handed, leader",
           (unsigned long long)lid);
    close_raft(n);
}

/* raft 0.22 may never call back a transfer whose leader stepped down with
 * no successor in sight: do not wait for it forever. */
static void on_guard(uv_timer_t *t)
{
    struct ic_raft_node *n = t->data;

    IC_LOG(IC_LOG_WARN, MOD, "node %llu: leadership transfer timed out",
           (unsigned long long)n->raft.id);
    close_raft(n);
}

static bool other_voter(struct ic_raft_node *n)
{
    const struct raft_configuration *c = &n->raft.configuration;

    for (unsigned i = 0; i < c->n; i++)
        if (c->servers[i].id != n->raft.id && c->servers[i].role == RAFT_VOTER)
            return true;
    return false;
}

void ic_raft_node_close(struct ic_raft_node *n,
                        void (*cb)(void *data),
                        void *data)
{
    n->closing = true;
    n->close_cb = cb;
    n->close_data = data;
    uv_timer_stop(&n->retry);
    submit_queue(n); /* never given to raft: IC_EBUSY */
    if (leading(n) && other_voter(n) && !n->yielding) {
        n->transfer.data = n;
        if (raft_transfer(&n->raft, &n->transfer, 0, on_handed_over) == 0) {
            uv_timer_start(&n->guard, on_guard, 2 * (uint64_t)n->election_ms,
                           0);
            return;
        }
    }
    close_raft(n);
}

/* Opening */

static int why_set(char *why, size_t len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int why_set(char *why, size_t len, int rc, const char *fmt, ...)
{
    va_list ap;

    if (why != NULL && len > 0) {
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Makes DIR (and its parent) as needed; *fresh when it holds nothing. */
static int raft_dir(const char *data_dir, char *dir, size_t len, bool *fresh)
{
    DIR *d;
    struct dirent *e;
    int n = snprintf(dir, len, "%s/raft", data_dir);

    if (n < 0 || (size_t)n >= len)
        return IC_EINVAL;
    if (mkdir(data_dir, 0750) != 0 && errno != EEXIST)
        return IC_EIO;
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        return IC_EIO;
    d = opendir(dir);
    if (d == NULL)
        return IC_EIO;
    *fresh = true;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            *fresh = false;
    closedir(d);
    return 0;
}

static int bootstrap(struct ic_raft_node *n, const struct ic_raft_node_opts *o)
{
    struct raft_configuration conf;
    int rc = 0;

    raft_configuration_init(&conf);
    for (size_t i = 0; i < o->n_initial && rc == 0; i++) {
        const struct ic_raft_server *s = &o->initial[i];
        int role = raft_role_of(s->role);
        rc = role < 0 || s->address == NULL
                 ? RAFT_BADROLE
                 : raft_configuration_add(&conf, s->id, s->address, role);
    }
    if (rc == 0)
        rc = raft_bootstrap(&n->raft, &conf);
    raft_configuration_close(&conf);
    return rc;
}

static void configure(struct ic_raft_node *n, const struct ic_raft_node_opts *o)
{
    struct raft *r = &n->raft;

    r->data = n;
    /* raft formats every diagnostic (one per message sent) before its
     * tracer can drop it: below debug, no tracer (raft's errors reach the
     * log through the calls that fail) */
    r->tracer = ic_log_get_level() >= IC_LOG_DEBUG ? ic_raft_tracer() : NULL;
    raft_uv_set_tracer(&n->io, r->tracer);
    n->election_ms = o->election_timeout_ms ? o->election_timeout_ms : 1000;
    raft_set_election_timeout(r, n->election_ms);
    raft_set_heartbeat_timeout(r, o->heartbeat_ms ? o->heartbeat_ms : 100);
    n->max_th = n->cur_th =
        o->snapshot_threshold ? o->snapshot_threshold : 1024;
    n->max_tr = n->cur_tr = o->snapshot_trailing ? o->snapshot_trailing : 128;
    n->log_memory = o->log_memory;
    raft_set_snapshot_threshold(r, n->cur_th);
    raft_set_snapshot_trailing(r, n->cur_tr);
    raft_set_pre_vote(r, true);
    raft_set_max_inflight_entries(r, INFLIGHT_MAX);
    ic_raft_fsm_bind(n->fsm, r);
}

/* raft_init onwards; on failure everything before it is undone here. */
static int start(struct ic_raft_node *n,
                 const struct ic_raft_node_opts *o,
                 bool fresh,
                 char *why,
                 size_t why_len)
{
    int rc;

    rc =
        raft_init(&n->raft, &n->io, ic_raft_fsm_get(n->fsm), o->id, o->address);
    if (rc != 0) {
        why_set(why, why_len, 0, "raft init: %s", raft_strerror(rc));
        raft_uv_close(&n->io);
        raft_uv_tcp_close(&n->transport.t);
        return ic_raft__err(rc);
    }
    configure(n, o);
    uv_timer_init(n->loop, &n->defer);
    uv_timer_init(n->loop, &n->guard);
    uv_timer_init(n->loop, &n->retry);
    n->defer.data = n;
    n->guard.data = n;
    uv_check_init(n->loop, &n->flush);
    n->retry.data = n;
    n->flush.data = n;
    n->handles = 4;
    ic_raft__fsm_on_hold(n->fsm, on_hold, n);
    ic_raft__fsm_on_pending(n->fsm, on_pending, n);
    rc = fresh && o->n_initial > 0 ? bootstrap(n, o) : 0;
    if (rc != 0)
        why_set(why, why_len, 0, "bootstrap: %s", raft_errmsg(&n->raft));
    if (rc == 0) {
        rc = raft_start(&n->raft);
        if (rc != 0)
            why_set(why, why_len, 0, "start: %s", raft_errmsg(&n->raft));
    }
    return ic_raft__err(rc);
}

int ic_raft_node_new(uv_loop_t *loop,
                     const struct ic_raft_node_opts *o,
                     struct ic_raft_node **out,
                     char *why,
                     size_t why_len)
{
    struct ic_raft_node *n;
    char dir[4096];
    bool fresh = false;
    int rc;

    if (o->id == 0 || o->address == NULL || o->data_dir == NULL ||
        o->store == NULL)
        return why_set(why, why_len, IC_EINVAL,
                       "missing id, address, data "
                       "directory or store");
    rc = raft_dir(o->data_dir, dir, sizeof dir, &fresh);
    if (rc != 0)
        return why_set(why, why_len, rc, "%s/raft: %s", o->data_dir,
                       strerror(errno));
    n = ic_calloc(1, sizeof *n);
    n->loop = loop;
    n->done_tail = &n->done;
    n->queue_tail = &n->queue;
    n->client = o->client_id;
    while (n->client == 0)
        if (uv_random(NULL, NULL, &n->client, sizeof n->client, 0, NULL) != 0)
            n->client = (uint64_t)uv_hrtime() ^ (uint64_t)(uintptr_t)n;
    ic_raft_fsm_new(o->store, &n->fsm);
    ic_raft_fsm_set_observer(n->fsm, o->observer, o->observer_data);
    n->applied_cb = o->applied;
    n->applied_data = o->applied_data;
    rc = ic_raft__tcp_init(&n->transport, loop);
    if (rc == 0) {
        rc = raft_uv_init(&n->io, loop, dir, &n->transport.t);
        if (rc != 0)
            raft_uv_tcp_close(&n->transport.t);
    }
    if (rc != 0) {
        why_set(why, why_len, 0, "raft io in %s: %s", dir, raft_strerror(rc));
        ic_raft_fsm_free(n->fsm);
        ic_free(n);
        return ic_raft__err(rc);
    }
    rc = start(n, o, fresh, why, why_len);
    if (rc != 0) {
        if (n->defer.loop != NULL) { /* raft_init passed: close through it */
            n->closing = true;
            close_raft(n);
        } else {
            ic_raft_fsm_free(n->fsm);
            ic_free(n);
        }
        return rc;
    }
    IC_LOG(IC_LOG_INFO, MOD, "node %llu at %s started (%s)",
           (unsigned long long)o->id, o->address,
           fresh && o->n_initial > 0 ? "bootstrapped" : "from its state");
    *out = n;
    return 0;
}
