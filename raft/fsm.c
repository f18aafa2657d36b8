/*
 * fsm.c - the replicated state machine: a struct raft_fsm (version 3) over
 * an ic_store.
 *
 * Happy path (apply): per entry, skip when the entry's index is not above
 * the stored applied index; decode; look the sequence up in the client's
 * deduplication window (fsm_client.c); run the operations; mark the
 * sequence applied with its result; store the index. The operations of a
 * command run first straight in the entry's (or batch's) transaction; if
 * any command fails, that transaction is aborted and the whole batch run
 * again with each command in a nested transaction of its own (the only
 * way to undo a failed command's writes and keep the others'). The
 * outcome is the same either way; the nested way costs LMDB a child
 * transaction per command (its dirty-page lists and page copies), which a
 * batch of publishes that all succeed no longer pays.
 * In the node's (deferred) mode raft's apply callback only copies the entry
 * to the held list, and the node flushes it once per turn of its loop: the
 * entries of the turn go through one LMDB write transaction (a batch; one
 * commit and one set of page writes instead of one per entry), and only
 * once it committed are the results handed to waiting submitters and the
 * presence changes to the observer, in index order. Without it (raft's
 * fixture in the unit tests) each entry has its own transaction.
 *
 * Failure modes: a business failure (bad Turtle, an empty key) aborts the
 * command's nested transaction only (in the second run) and becomes the
 * result. An undecodable entry is
 * a result too (IC_ECORRUPT: every replica decodes it the same way). An
 * entry of an unknown version or type, or a store error (I/O), fails the
 * entry's transaction: nothing of it is committed, and it is held and
 * tried again (below) rather than let replicas diverge; after a restart
 * it is applied again from the Raft log.
 *
 * A full store (the disk: ENOSPC, or LMDB's map; an EIO on a disk with no
 * room left, which is how LMDB reports a write cut short) fails the
 * apply's transaction too, so nothing of the entry (or of its batch) is in
 * the store and no result is handed to any submitter. raft 0.22 cannot take a
 * failed apply (a follower frees the entry twice and aborts; a leader would try
 * it again only when its commit index next moves), so the entry, whatever
 * the store's error, is held instead: a copy,
 * in index order with every later entry, until the node's retry timer
 * (node.c, ic_raft__fsm_retry) finds room and applies them in order. raft
 * takes them as applied; the store's applied index says where the store
 * really is, and no snapshot is taken while entries are held (it would not
 * match its index). One error line when holding starts, one info line when
 * the last held entry is applied. Held entries are lost with the process,
 * not with the data: they are in the Raft log, and a restarted node
 * applies them again from it (the store skips what it already has).
 *
 * Snapshots: `snapshot` opens one LMDB read transaction (an exact view at
 * the last applied index, taken on the loop thread), `snapshot_async`
 * serialises it (LMDB_NOTLS lets a read transaction move to another
 * thread, should raft run it on one), `snapshot_finalize` frees the buffer
 * and ends the transaction. `restore` checks the snapshot and loads it in
 * one write transaction, unless the store already holds a later state
 * (raft restores its last snapshot at every start: our store is usually
 * ahead of it, and the entries after it are skipped by index).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

#include "raft_int.h"

#define MOD "raft"
#define WAIT_BUCKETS 1024
/* A command failed in a run without nested transactions: run the batch
 * again with them (not an IC_E* code: those are negative and small). */
#define RUN_NESTED (-100000)

/* An entry raft handed over that the store does not have yet: waiting for
 * its batch's transaction, or for room. The outcome fields are filled by
 * the batch and used once its transaction committed. */
struct outcome {
    bool has_cmd; /* decoded: CLIENT, SEQ and RES are its result */
    uint64_t client, seq;
    struct ic_raft_result res;
};

struct held {
    uint64_t index;
    size_t len;
    struct held *next;
    struct outcome one;    /* a command's */
    struct outcome *group; /* a group's (raft_int.h), one per command */
    size_t n_group, cap_group;
    struct ic_raft__changes ch;
    unsigned char buf[];
};

struct ic_raft_fsm {
    struct raft_fsm rf;
    struct held *held, **held_tail; /* not in the store yet, index order */
    size_t held_bytes, held_n;
    bool stuck;    /* the store refused the first one: retry's to apply */
    int held_rc;   /* why the first one waits */
    bool held_cap; /* the cap was hit (logged once) */
    ic_raft__hold_fn hold_cb;
    void *hold_data;
    bool deferring; /* apply in batches (ic_raft__fsm_defer) */
    ic_raft__hold_fn pending_cb;
    void *pending_data;
    struct ic_store *st;
    struct raft *raft;
    struct ic_txn *snap_txn; /* between snapshot and finalize */
    struct ic_raft__wait *waits[WAIT_BUCKETS]; /* by (client, seq) */
    ic_raft_observer_fn observer;
    void *observer_data;
    uint64_t delivered; /* entries applied and committed, ever */
    uint64_t entry_avg; /* bytes per entry raft applied, a moving average */
};

int ic_raft__err(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case RAFT_NOMEM:
        return IC_ENOMEM;
    case RAFT_NOTLEADER:
        return IC_ENOTLEADER;
    case RAFT_LEADERSHIPLOST:
    case RAFT_SHUTDOWN:
    case RAFT_CANCELED:
        return IC_EINDOUBT;
    case RAFT_BADID:
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
    case RAFT_BADROLE:
    case RAFT_INVALID:
    case RAFT_NAMETOOLONG:
        return IC_EINVAL;
    case RAFT_CANTBOOTSTRAP:
        return IC_EEXIST;
    case RAFT_CANTCHANGE:
    case RAFT_BUSY:
        return IC_EBUSY;
    case RAFT_NOTFOUND:
        return IC_ENOTFOUND;
    case RAFT_CORRUPT:
    case RAFT_MALFORMED:
        return IC_ECORRUPT;
    case RAFT_TOOBIG:
    case RAFT_TOOMANY:
        return IC_ELIMIT;
    case RAFT_NOSPACE:
        return IC_ENOSPC;
    case RAFT_NOCONNECTION:
        return IC_ECONNECT;
    default:
        return IC_EIO;
    }
}

/* Waiters */

static struct ic_raft__wait **
bucket(struct ic_raft_fsm *fsm, uint64_t client, uint64_t seq)
{
    uint64_t h = (client ^ seq) * 0x9e3779b97f4a7c15ULL;

    return &fsm->waits[h >> 54]; /* the top 10 bits: WAIT_BUCKETS */
}

void ic_raft__fsm_wait_add(struct ic_raft_fsm *fsm, struct ic_raft__wait *w)
{
    struct ic_raft__wait **head = bucket(fsm, w->client, w->seq);

    w->done = false;
    w->prev = NULL;
    w->next = *head;
    if (*head != NULL)
        (*head)->prev = w;
    *head = w;
}

void ic_raft__fsm_wait_del(struct ic_raft_fsm *fsm, struct ic_raft__wait *w)
{
    struct ic_raft__wait **head = bucket(fsm, w->client, w->seq);

    if (w->prev != NULL)
        w->prev->next = w->next;
    else if (*head == w)
        *head = w->next;
    else
        return; /* not listed */
    if (w->next != NULL)
        w->next->prev = w->prev;
    w->next = w->prev = NULL;
}

static void notify(struct ic_raft_fsm *fsm,
                   const struct ic_raft_cmd *cmd,
                   const struct ic_raft_result *res)
{
    for (struct ic_raft__wait *w = *bucket(fsm, cmd->client, cmd->seq);
         w != NULL; w = w->next) {
        if (w->client == cmd->client && w->seq == cmd->seq && !w->done) {
            w->res = *res;
            w->done = true;
            if (w->fired != NULL)
                w->fired(w);
        }
    }
}

/* Operations */

/* Whether RC is the command's fault (the same on every replica) rather
 * than this store's. */
static bool business(int rc)
{
    switch (rc) {
    case IC_EINVAL:
    case IC_ENOTFOUND:
    case IC_EEXIST:
    case IC_ESYNTAX:
    case IC_EUNKNOWN:
    case IC_EVALUE:
    case IC_ELIMIT:
    case IC_ELEASE:
        return true;
    default:
        return false;
    }
}

static int run_load(struct ic_txn *t,
                    const struct ic_raft_rdf *r,
                    char *msg,
                    uint64_t *quads)
{
    struct ic_load_opts o = {0};
    struct ic_load_result res;
    int rc;

    memset(&res, 0, sizeof res);
    o.syntax = r->syntax;
    o.graph = r->graph;
    o.base_uri = r->base;
    o.graphs = r->graphs;
    o.replace = r->replace;
    o.name = "text";
    rc = ic_store_load_buffer(t, r->text, r->text_len, &o, &res);
    if (quads != NULL)
        *quads = res.quads;
    if (rc != 0)
        snprintf(msg, 256, "%.255s",
                 res.error[0] != '\0' ? res.error : ic_strerror(rc));
    return rc;
}

/* GRAPH_TERMS: the graph becomes the document's triples. */
static int run_terms(struct ic_txn *t, const struct ic_raft_rdf *rdf, char *msg)
{
    struct ic_load_result res;
    int rc =
        ic_store_terms_replace(t, rdf->graph, rdf->text, rdf->text_len, &res);

    if (rc != 0)
        snprintf(msg, 256, "%.255s", res.error);
    return rc;
}

/* One operation inside T; MSG (256 bytes) says what failed; presence
 * changes go to CH. */
static int run_op(struct ic_txn *t,
                  const struct ic_raft_op *op,
                  char *msg,
                  struct ic_raft__changes *ch)
{
    struct ic_raft_rdf rdf;
    uint64_t quads = 0;
    int rc;

    switch (op->type) {
    case IC_RAFT_OP_GRAPH_REPLACE:
        /* only what differs is written (the loader's replace); an empty
         * text empties the graph */
        rdf = op->rdf;
        rdf.graphs = IC_LOAD_ONE_GRAPH;
        rdf.replace = true;
        rc = run_load(t, &rdf, msg, &quads);
        if (rc == 0 && quads == 0)
            rc = ic_store_graph_clear(t, op->rdf.graph);
        return rc;
    case IC_RAFT_OP_GRAPH_CLEAR:
        rc = ic_store_graph_clear(t, op->rdf.graph);
        break;
    case IC_RAFT_OP_GRAPH_TERMS:
        return run_terms(t, &op->rdf, msg);
    case IC_RAFT_OP_RDF_LOAD:
        return run_load(t, &op->rdf, msg, NULL);
    case IC_RAFT_OP_KV_PUT:
        rc = ic_store_kv_put(t, op->kv.db, op->kv.key, op->kv.val);
        break;
    case IC_RAFT_OP_KV_DEL:
        rc = ic_store_kv_del(t, op->kv.db, op->kv.key);
        if (rc == IC_ENOTFOUND)
            rc = 0;
        break;
    case IC_RAFT_OP_KV_UPDATE:
        return ic_raft__kv_update_run(t, &op->kv, msg);
    case IC_RAFT_OP_TERMS_SWEEP:
        rc = ic_store_terms_sweep(t, op->sweep_max, NULL);
        break;
    case IC_RAFT_OP_PRESENCE_BATCH:
    case IC_RAFT_OP_NODE_LEASE:
        rc = ic_raft__presence_run(t, op, ch, msg);
        if (rc == IC_ELEASE)
            return rc;
        break;
    default:
        rc = IC_EINVAL;
        break;
    }
    if (rc != 0)
        snprintf(msg, 256, "%s", ic_strerror(rc));
    return rc;
}

/* Runs CMD's operations in a transaction nested in T: all or nothing. A
 * business failure goes to RES and returns 0; the presence changes go to
 * CH, which is cleared when they are undone. FLAT: straight in T, and any
 * failure returns RUN_NESTED (T cannot undo one command's writes). */
static int run_cmd(struct ic_txn *t,
                   const struct ic_raft_cmd *cmd,
                   bool flat,
                   struct ic_raft_result *res,
                   struct ic_raft__changes *ch)
{
    struct ic_txn *child;
    char msg[256] = "";
    size_t i;
    int rc;

    if (flat) { /* straight in T; any failure: the nested way instead */
        for (i = 0, rc = 0; i < cmd->n_ops && rc == 0; i++)
            rc = run_op(t, &cmd->ops[i], msg, ch);
        return rc == 0 ? 0 : RUN_NESTED;
    }
    rc = ic_store_txn_begin_nested(t, &child);
    if (rc != 0)
        return rc;
    for (i = 0, rc = 0; i < cmd->n_ops && rc == 0; i++)
        rc = run_op(child, &cmd->ops[i], msg, ch);
    if (rc == 0)
        return ic_store_txn_commit(child); /* the caller clears CH if not 0 */
    ic_store_txn_abort(child);
    ic_raft__changes_clear(ch);
    if (!business(rc))
        return rc;
    res->code = rc;
    if (cmd->batch)
        snprintf(res->msg, sizeof res->msg, "op %zu: %.230s", i, msg);
    else
        memcpy(res->msg, msg, sizeof res->msg);
    return 0;
}

/* The deduplication window (fsm_client.c), then the command. */
static int apply_cmd(struct ic_txn *t,
                     const struct ic_raft_cmd *cmd,
                     bool flat,
                     struct ic_raft_result *res,
                     struct ic_raft__changes *ch)
{
    struct ic_raft__window *w;
    int rc = ic_raft__window_load(t, cmd->client, &w);

    if (rc != 0)
        return rc;
    if (ic_raft__window_check(w, cmd->seq, res) == IC_RAFT__APPLY) {
        rc = run_cmd(t, cmd, flat, res, ch);
        if (rc == 0) {
            ic_raft__window_mark(w, cmd->seq, res);
            rc = ic_raft__window_store(t, cmd->client, w);
        }
    }
    ic_raft__window_free(w);
    return rc;
}

/* Hands the changes in CH (or, with RESET, a reset) to the observer, then
 * forgets them. */
static void observe(struct ic_raft_fsm *fsm,
                    uint64_t index,
                    bool reset,
                    struct ic_raft__changes *ch)
{
    struct ic_raft_presence_event ev = {index, reset, ch->n, ch->v};

    if (fsm->observer != NULL && (reset || ev.n_changes > 0))
        fsm->observer(fsm->observer_data, &ev);
    ic_raft__changes_clear(ch);
}

/* Whether RC says the store is full: the disk or LMDB's map. */
static bool no_room(int rc)
{
    return rc == IC_ENOSPC || rc == IC_EFULL;
}

/* RC, or IC_ENOSPC for an I/O error on a disk with (almost) no room left:
 * LMDB reports a write cut short by a full disk as EIO. */
static int full_or(struct ic_store *st, int rc)
{
    struct statvfs sv;

    if (rc == IC_EIO && statvfs(ic_store_dir(st), &sv) == 0 &&
        (unsigned long long)sv.f_bavail * sv.f_frsize < (1ULL << 20))
        return IC_ENOSPC;
    return rc;
}

/* Runs the command of LEN bytes at BUF (entry INDEX) inside T: its
 * outcome to O, its presence changes to CH. An IC_E* code when the store
 * failed (T must then be aborted). */
static int apply_one(struct ic_txn *t,
                     uint64_t index,
                     const void *buf,
                     size_t len,
                     bool grouped,
                     bool flat,
                     struct outcome *o,
                     struct ic_raft__changes *ch)
{
    struct ic_raft_cmd *cmd = NULL;
    int rc;

    o->has_cmd = false;
    o->res.code = 0;
    o->res.msg[0] = '\0';
    rc = ic_raft_cmd_decode(buf, len, &cmd);
    if (rc == IC_EFORMAT) {
        IC_LOG(IC_LOG_ERROR, MOD,
               "entry %llu: command of a version or type this build does "
               "not know: upgrade this node",
               (unsigned long long)index);
        return rc;
    }
    if (rc != 0) {
        o->res.code = IC_ECORRUPT;
        snprintf(o->res.msg, sizeof o->res.msg, "malformed command");
        return 0;
    }
    o->has_cmd = true;
    o->client = cmd->client;
    o->seq = cmd->seq;
    /* never grouped by a node (their changes are the entry's) */
    for (size_t i = 0; grouped && i < cmd->n_ops; i++) {
        if (cmd->ops[i].type == IC_RAFT_OP_PRESENCE_BATCH ||
            cmd->ops[i].type == IC_RAFT_OP_NODE_LEASE) {
            o->res.code = IC_ECORRUPT;
            snprintf(o->res.msg, sizeof o->res.msg,
                     "presence in a group of commands");
            ic_raft_cmd_free(cmd);
            return 0;
        }
    }
    rc = apply_cmd(t, cmd, flat, &o->res, ch);
    ic_raft_cmd_free(cmd);
    return rc;
}

struct group_run {
    struct ic_txn *t;
    uint64_t index;
    bool flat;
    struct held *h;
};

static int group_one(void *data, const void *cmd, size_t len)
{
    struct group_run *g = data;
    struct held *h = g->h;

    if (h->n_group == h->cap_group) {
        h->cap_group = h->cap_group ? 2 * h->cap_group : 16;
        h->group = ic_realloc(h->group, h->cap_group * sizeof *h->group);
    }
    return apply_one(g->t, g->index, cmd, len, true, g->flat,
                     &h->group[h->n_group++], &h->ch);
}

/* Runs the entry at INDEX (LEN bytes at BUF: a command or a group) inside
 * T, whose store has applied up to APPLIED: its outcomes go to H (kept
 * until T commits). An IC_E* code when the store failed (T must then be
 * aborted). FLAT: commands straight in T; RUN_NESTED when one failed (T
 * must then be aborted and the entry run again without FLAT). */
static int apply_in(struct ic_txn *t,
                    uint64_t applied,
                    uint64_t index,
                    const void *buf,
                    size_t len,
                    bool flat,
                    struct held *h)
{
    struct group_run g = {t, index, flat, h};
    int rc;

    h->one.has_cmd = false;
    h->n_group = 0;
    if (index <= applied) /* replayed after a restart */
        return 0;
    if (!ic_raft__is_group(buf, len))
        return apply_one(t, index, buf, len, false, flat, &h->one, &h->ch);
    rc = ic_raft__group_walk(buf, len, group_one, &g);
    if (rc == IC_ECORRUPT && h->n_group == 0) {
        /* no command of it ran: nobody to answer */
        IC_LOG(IC_LOG_ERROR, MOD, "entry %llu: malformed group, skipped",
               (unsigned long long)index);
        return 0;
    }
    return rc;
}

static void notify_one(struct ic_raft_fsm *fsm, const struct outcome *o)
{
    if (o->has_cmd) {
        struct ic_raft_cmd key = {0};
        key.client = o->client;
        key.seq = o->seq;
        notify(fsm, &key, &o->res);
    }
}

/* After the transaction that applied H committed: its submitters'
 * results, then its presence changes. */
static void deliver(struct ic_raft_fsm *fsm, struct held *h)
{
    fsm->delivered++;
    notify_one(fsm, &h->one);
    for (size_t i = 0; i < h->n_group; i++)
        notify_one(fsm, &h->group[i]);
    observe(fsm, h->index, false, &h->ch);
}

static int apply_at(struct ic_raft_fsm *fsm,
                    uint64_t index,
                    const void *buf,
                    size_t len,
                    bool flat)
{
    struct held h = {0};
    struct ic_txn *t = NULL;
    uint64_t applied;
    int rc;

    h.index = index;
    rc = ic_store_txn_begin(fsm->st, true, &t);
    if (rc == 0)
        rc = ic_store_applied_get(t, &applied);
    if (rc == 0 && index <= applied) {
        ic_store_txn_abort(t);
        return 0;
    }
    if (rc == 0)
        rc = apply_in(t, applied, index, buf, len, flat, &h);
    if (rc == 0)
        rc = ic_store_applied_set(t, index);
    if (rc == 0) {
        rc = ic_store_txn_commit(t);
        t = NULL;
    }
    if (rc == 0) {
        deliver(fsm, &h);
    } else {
        /* reported once by the caller, which holds the entry */
        if (rc != RUN_NESTED)
            IC_LOG(IC_LOG_DEBUG, MOD, "entry %llu: apply failed: %s",
                   (unsigned long long)index, ic_strerror(rc));
        ic_store_txn_abort(t);
    }
    ic_raft__changes_free(&h.ch);
    ic_free(h.group);
    return rc;
}

int ic_raft__fsm_apply_at(struct ic_raft_fsm *fsm,
                          uint64_t index,
                          const void *buf,
                          size_t len)
{
    int rc = apply_at(fsm, index, buf, len, true);

    return rc == RUN_NESTED ? apply_at(fsm, index, buf, len, false) : rc;
}

/* Entries the store does not have yet (waiting for their batch, or for
 * room) */

static void held_pop(struct ic_raft_fsm *fsm)
{
    struct held *h = fsm->held;

    fsm->held = h->next;
    if (fsm->held == NULL)
        fsm->held_tail = &fsm->held;
    fsm->held_bytes -= h->len;
    fsm->held_n--;
    ic_raft__changes_free(&h->ch);
    ic_free(h->group);
    ic_free(h);
}

/* Copies the entry at INDEX to the end of the held list. */
static int
hold(struct ic_raft_fsm *fsm, uint64_t index, const void *buf, size_t len)
{
    struct held *h;

    if (fsm->held_bytes + len > IC_RAFT__HOLD_MAX) {
        if (!fsm->held_cap)
            IC_LOG(IC_LOG_ERROR, MOD,
                   "store full: %zu bytes of entries held, entry %llu waits "
                   "in the Raft log",
                   fsm->held_bytes, (unsigned long long)index);
        fsm->held_cap = true;
        return IC_ENOSPC; /* raft offers it again when its commit moves */
    }
    h = ic_calloc(1, sizeof *h + len);
    h->index = index;
    h->len = len;
    memcpy(h->buf, buf, len);
    *fsm->held_tail = h;
    fsm->held_tail = &h->next;
    fsm->held_bytes += len;
    fsm->held_n++;
    return 0;
}

/* The store refused entry INDEX with RC: from now on every entry waits in
 * the held list for ic_raft__fsm_retry. */
static void stick(struct ic_raft_fsm *fsm, uint64_t index, int rc)
{
    rc = full_or(fsm->st, rc);
    if (no_room(rc))
        IC_LOG(IC_LOG_ERROR, MOD,
               "store full: %s: %s: entry %llu and those after it wait "
               "(not applied, not acknowledged); retrying",
               ic_store_dir(fsm->st), ic_strerror(rc),
               (unsigned long long)index);
    else
        IC_LOG(IC_LOG_ERROR, MOD,
               "store error: %s: %s: entry %llu and those after it wait "
               "(not applied, not acknowledged); retrying",
               ic_store_dir(fsm->st), ic_strerror(rc),
               (unsigned long long)index);
    fsm->stuck = true;
    fsm->held_rc = rc;
    fsm->held_cap = false;
    if (fsm->hold_cb != NULL)
        fsm->hold_cb(fsm->hold_data);
}

/* Applies the first IC_RAFT__BATCH_MAX held entries (at most) in one write
 * transaction; once it committed, hands each its results in order and
 * drops them. Nothing is dropped when the store fails (its IC_E* code) or
 * a command failed in a FLAT run (RUN_NESTED). */
static int run_batch(struct ic_raft_fsm *fsm, bool flat)
{
    struct ic_txn *t = NULL;
    struct held *h, *end;
    uint64_t applied, last = 0;
    unsigned n = 0;
    int rc;

    rc = ic_store_txn_begin(fsm->st, true, &t);
    if (rc == 0)
        rc = ic_store_applied_get(t, &applied);
    for (h = fsm->held; rc == 0 && h != NULL && n < IC_RAFT__BATCH_MAX;
         h = h->next, n++) {
        rc = apply_in(t, applied, h->index, h->buf, h->len, flat, h);
        last = h->index;
    }
    end = h;
    if (rc == 0 && last > applied)
        rc = ic_store_applied_set(t, last);
    if (rc == 0) {
        rc = ic_store_txn_commit(t);
        t = NULL;
    }
    if (rc != 0) {
        if (rc != RUN_NESTED)
            IC_LOG(IC_LOG_DEBUG, MOD, "entries %llu..%llu: apply failed: %s",
                   (unsigned long long)fsm->held->index,
                   (unsigned long long)last, ic_strerror(rc));
        ic_store_txn_abort(t);
        for (h = fsm->held; h != end; h = h->next)
            ic_raft__changes_clear(&h->ch);
        return rc;
    }
    while (fsm->held != end) {
        deliver(fsm, fsm->held);
        held_pop(fsm);
    }
    return 0;
}

static int apply_batch(struct ic_raft_fsm *fsm)
{
    int rc = run_batch(fsm, true);

    return rc == RUN_NESTED ? run_batch(fsm, false) : rc;
}

/* Applies every held entry, a batch at a time; on a store error the entry
 * that failed and those after it stay held. */
static int apply_held(struct ic_raft_fsm *fsm)
{
    int rc = 0;

    while (rc == 0 && fsm->held != NULL)
        rc = apply_batch(fsm);
    return rc;
}

int ic_raft__fsm_apply(struct ic_raft_fsm *fsm,
                       uint64_t index,
                       const void *buf,
                       size_t len)
{
    int rc;

    if (fsm->held != NULL)
        return hold(fsm, index, buf, len);
    rc = ic_raft__fsm_apply_at(fsm, index, buf, len);
    if (rc == 0)
        return 0;
    /* raft 0.22 cannot take a failed apply (a follower frees the entry
     * twice): hold it whatever the error */
    stick(fsm, index, rc);
    return hold(fsm, index, buf, len);
}

int ic_raft__fsm_defer(struct ic_raft_fsm *fsm,
                       uint64_t index,
                       const void *buf,
                       size_t len)
{
    bool first = fsm->held == NULL;
    int rc = hold(fsm, index, buf, len);

    if (rc != 0 || fsm->stuck)
        return rc;
    if (fsm->held_n >= IC_RAFT__BATCH_MAX)
        ic_raft__fsm_flush(fsm);
    else if (first && fsm->pending_cb != NULL)
        fsm->pending_cb(fsm->pending_data);
    return 0;
}

void ic_raft__fsm_flush(struct ic_raft_fsm *fsm)
{
    int rc;

    if (fsm->stuck || fsm->held == NULL)
        return;
    rc = apply_held(fsm);
    if (rc != 0)
        stick(fsm, fsm->held->index, rc);
}

bool ic_raft__fsm_retry(struct ic_raft_fsm *fsm)
{
    uint64_t first = fsm->held != NULL ? fsm->held->index : 0, last = 0;
    int rc;

    for (const struct held *h = fsm->held; h != NULL; h = h->next)
        last = h->index;
    rc = apply_held(fsm);
    if (rc != 0) {
        rc = full_or(fsm->st, rc);
        if (rc != fsm->held_rc && !no_room(rc))
            IC_LOG(IC_LOG_ERROR, MOD, "entry %llu: still held: %s",
                   (unsigned long long)fsm->held->index, ic_strerror(rc));
        fsm->held_rc = rc;
        return true;
    }
    if (fsm->stuck)
        IC_LOG(IC_LOG_INFO, MOD,
               "store has room again: %s: held entries %llu..%llu applied",
               ic_store_dir(fsm->st), (unsigned long long)first,
               (unsigned long long)last);
    fsm->stuck = false;
    fsm->held_cap = false;
    return false;
}

bool ic_raft__fsm_holding(const struct ic_raft_fsm *fsm)
{
    return fsm->held != NULL;
}

uint64_t ic_raft__fsm_held_first(const struct ic_raft_fsm *fsm)
{
    return fsm->held != NULL ? fsm->held->index : 0;
}

void ic_raft__fsm_on_hold(struct ic_raft_fsm *fsm,
                          ic_raft__hold_fn cb,
                          void *data)
{
    fsm->hold_cb = cb;
    fsm->hold_data = data;
}

void ic_raft__fsm_on_pending(struct ic_raft_fsm *fsm,
                             ic_raft__hold_fn cb,
                             void *data)
{
    fsm->deferring = cb != NULL;
    fsm->pending_cb = cb;
    fsm->pending_data = data;
}

/* raft_fsm callbacks */

static int
on_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
    struct ic_raft_fsm *fsm = rf->data;
    /* raft advances last_applied after each entry it applies */
    uint64_t index = raft_last_applied(fsm->raft) + 1;
    int rc;

    *result = NULL;
    /* over about the last 32 entries */
    fsm->entry_avg = fsm->entry_avg == 0
                         ? buf->len
                         : fsm->entry_avg - fsm->entry_avg / 32 + buf->len / 32;
    rc = fsm->deferring ? ic_raft__fsm_defer(fsm, index, buf->base, buf->len)
                        : ic_raft__fsm_apply(fsm, index, buf->base, buf->len);
    return rc == 0 ? 0 : RAFT_IOERR;
}

struct growbuf {
    unsigned char *p;
    size_t len, cap;
};

static int grow_write(void *data, const void *p, size_t len)
{
    struct growbuf *b = data;

    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 64 * 1024;
        unsigned char *np;
        while (cap < b->len + len)
            cap *= 2;
        np = raft_realloc(b->p, cap);
        if (np == NULL)
            return IC_ENOMEM;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, len);
    b->len += len;
    return 0;
}

static void snap_end(struct ic_raft_fsm *fsm)
{
    ic_store_txn_abort(fsm->snap_txn);
    fsm->snap_txn = NULL;
}

static int
on_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct ic_raft_fsm *fsm = rf->data;
    int rc;

    if (fsm->snap_txn != NULL)
        return RAFT_BUSY;
    ic_raft__fsm_flush(fsm);
    if (fsm->held != NULL)
        return RAFT_BUSY; /* held entries: the store is behind raft */
    rc = ic_store_txn_begin(fsm->st, false, &fsm->snap_txn);
    if (rc != 0) {
        IC_LOG(IC_LOG_ERROR, MOD, "snapshot: %s", ic_strerror(rc));
        fsm->snap_txn = NULL;
        return RAFT_IOERR;
    }
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

static int on_snapshot_async(struct raft_fsm *rf,
                             struct raft_buffer *bufs[],
                             unsigned *n_bufs)
{
    struct ic_raft_fsm *fsm = rf->data;
    struct growbuf b = {NULL, 0, 0};
    struct raft_buffer *out;
    int rc;

    if (fsm->snap_txn == NULL)
        return RAFT_INVALID;
    rc = ic_store_snapshot_write(fsm->snap_txn, grow_write, &b);
    out = rc == 0 ? raft_malloc(sizeof *out) : NULL;
    snap_end(fsm);
    if (out == NULL) {
        IC_LOG(IC_LOG_ERROR, MOD, "snapshot: %s",
               ic_strerror(rc ? rc : IC_ENOMEM));
        raft_free(b.p);
        return rc == IC_ENOMEM || rc == 0 ? RAFT_NOMEM : RAFT_IOERR;
    }
    out->base = b.p;
    out->len = b.len;
    *bufs = out;
    *n_bufs = 1;
    IC_LOG(IC_LOG_DEBUG, MOD, "snapshot of %zu bytes", b.len);
    return 0;
}

static int on_snapshot_finalize(struct raft_fsm *rf,
                                struct raft_buffer *bufs[],
                                unsigned *n_bufs)
{
    struct ic_raft_fsm *fsm = rf->data;

    for (unsigned i = 0; i < *n_bufs; i++)
        raft_free((*bufs)[i].base);
    raft_free(*bufs);
    *bufs = NULL;
    *n_bufs = 0;
    snap_end(fsm);
    return 0;
}

/* Loads BUF unless the store is already at or past its state. */
static int restore(struct ic_raft_fsm *fsm, const struct raft_buffer *buf)
{
    char why[256] = "";
    uint64_t snap, ours;
    struct ic_raft__changes none = {0};
    struct ic_txn *t;
    int rc;

    ic_raft__fsm_flush(fsm);
    rc = ic_store_snapshot_check(buf->base, buf->len, &snap, why, sizeof why);
    if (rc != 0) {
        IC_LOG(IC_LOG_ERROR, MOD, "snapshot refused: %s", why);
        return rc;
    }
    rc = ic_store_txn_begin(fsm->st, true, &t);
    if (rc == 0)
        rc = ic_store_applied_get(t, &ours);
    if (rc == 0 && ours >= snap) {
        IC_LOG(IC_LOG_DEBUG, MOD,
               "snapshot at %llu: store already at %llu, kept",
               (unsigned long long)snap, (unsigned long long)ours);
        ic_store_txn_abort(t);
        return 0;
    }
    if (rc == 0)
        rc = ic_store_snapshot_restore(t, buf->base, buf->len, why, sizeof why);
    if (rc == 0) {
        rc = ic_store_txn_commit(t);
        t = NULL;
    }
    ic_store_txn_abort(t);
    if (rc != 0)
        IC_LOG(IC_LOG_ERROR, MOD, "snapshot restore: %s",
               why[0] ? why : ic_strerror(rc));
    else
        IC_LOG(IC_LOG_INFO, MOD, "restored snapshot at applied index %llu",
               (unsigned long long)snap);
    if (rc == 0)
        observe(fsm, snap, true, &none);
    while (rc == 0 && fsm->held != NULL && fsm->held->index <= snap)
        held_pop(fsm); /* the snapshot holds them */
    return rc;
}

/* raft hands the buffer over on success. */
static int on_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    int rc = restore(rf->data, buf);

    if (rc != 0)
        return rc == IC_ECORRUPT || rc == IC_EFORMAT ? RAFT_CORRUPT
                                                     : RAFT_IOERR;
    raft_free(buf->base);
    buf->base = NULL;
    return 0;
}

int ic_raft_fsm_new(struct ic_store *st, struct ic_raft_fsm **out)
{
    struct ic_raft_fsm *fsm = ic_calloc(1, sizeof *fsm);

    fsm->st = st;
    fsm->held_tail = &fsm->held;
    fsm->rf.version = 3;
    fsm->rf.data = fsm;
    fsm->rf.apply = on_apply;
    fsm->rf.snapshot = on_snapshot;
    fsm->rf.snapshot_async = on_snapshot_async;
    fsm->rf.snapshot_finalize = on_snapshot_finalize;
    fsm->rf.restore = on_restore;
    *out = fsm;
    return 0;
}

void ic_raft_fsm_free(struct ic_raft_fsm *fsm)
{
    if (fsm == NULL)
        return;
    snap_end(fsm);
    ic_raft__fsm_flush(fsm); /* what is left is in the Raft log */
    while (fsm->held != NULL)
        held_pop(fsm);
    ic_free(fsm);
}

struct raft_fsm *ic_raft_fsm_get(struct ic_raft_fsm *fsm)
{
    return &fsm->rf;
}

void ic_raft_fsm_bind(struct ic_raft_fsm *fsm, struct raft *r)
{
    fsm->raft = r;
}

uint64_t ic_raft__fsm_entry_avg(const struct ic_raft_fsm *fsm)
{
    return fsm->entry_avg;
}

uint64_t ic_raft__fsm_delivered(const struct ic_raft_fsm *fsm)
{
    return fsm->delivered;
}

void ic_raft_fsm_set_observer(struct ic_raft_fsm *fsm,
                              ic_raft_observer_fn cb,
                              void *data)
{
    fsm->observer = cb;
    fsm->observer_data = data;
}
