/* raft_int.h - shared inside raft/ only (and read by its unit tests). */
#ifndef IC_RAFT_INT_H
#define IC_RAFT_INT_H

#include <raft.h>

#include "ic_raft.h"

/* A submitter waiting for the result of command (CLIENT, SEQ): the state
 * machine fills RES and sets DONE when it applies the command, or finds it
 * a duplicate, after the apply's transaction committed, then calls FIRED
 * when set (it may run inside raft's apply: it must only queue work, and
 * must not remove W from the state machine's lists). The waiter owns the
 * struct and removes it before freeing it. */
struct ic_raft__wait {
    uint64_t client;
    uint64_t seq;
    bool done;
    struct ic_raft_result res;
    void (*fired)(struct ic_raft__wait *w);
    void *owner; /* for FIRED */
    struct ic_raft__wait *next, *prev;
};

void ic_raft__fsm_wait_add(struct ic_raft_fsm *fsm, struct ic_raft__wait *w);
/* How many entries FSM has applied in committed transactions, ever (a
 * count that moves when the store took an entry). */
uint64_t ic_raft__fsm_delivered(const struct ic_raft_fsm *fsm);
/* Removes W if it is listed (no-op otherwise). */
void ic_raft__fsm_wait_del(struct ic_raft_fsm *fsm, struct ic_raft__wait *w);

/* Applies the entry at Raft INDEX holding LEN bytes at BUF: what the
 * apply callback does with the index raft is applying. 0 when applied,
 * skipped or a business failure; an IC_E* code when the store failed (the
 * entry must then be applied again). */
int ic_raft__fsm_apply_at(struct ic_raft_fsm *fsm,
                          uint64_t index,
                          const void *buf,
                          size_t len);

/* What raft's apply callback does: applies the entry at INDEX, or, when
 * the store fails (full: IC_ENOSPC, IC_EFULL; or any other error, since
 * raft 0.22 cannot take a failed apply), holds a copy of it, and of every
 * entry after it, for ic_raft__fsm_retry, and returns 0 (raft goes on; the
 * store's applied index stays where the store is). The first entry held
 * calls the hold callback. Beyond IC_RAFT__HOLD_MAX bytes held the entry is
 * refused with IC_ENOSPC (raft offers it again later). */
#define IC_RAFT__HOLD_MAX ((size_t)256 << 20)

int ic_raft__fsm_apply(struct ic_raft_fsm *fsm,
                       uint64_t index,
                       const void *buf,
                       size_t len);
/* Applies the held entries in order while the store takes them; true when
 * some are still held. */
bool ic_raft__fsm_retry(struct ic_raft_fsm *fsm);
/* Whether entries are held. */
bool ic_raft__fsm_holding(const struct ic_raft_fsm *fsm);
/* The index of the first entry held, 0 when none is: the store has
 * applied up to the one before it, whatever raft says. */
uint64_t ic_raft__fsm_held_first(const struct ic_raft_fsm *fsm);

/* Deferred apply, the node's mode: raft's apply callback only copies the
 * entry to the held list (ic_raft__fsm_defer) and ic_raft__fsm_flush
 * applies all of those waiting in one write transaction (a batch of at
 * most IC_RAFT__BATCH_MAX), then hands the submitters their results and
 * the observer the presence changes, in index order: nothing is announced
 * before the transaction that holds it committed. The node flushes once
 * per turn of its loop, before it completes raft requests, before a
 * snapshot and a restore, and when the fsm is freed. A store error while
 * flushing holds the entries as ic_raft__fsm_apply does (the hold callback,
 * then ic_raft__fsm_retry). */
#define IC_RAFT__BATCH_MAX 512

int ic_raft__fsm_defer(struct ic_raft_fsm *fsm,
                       uint64_t index,
                       const void *buf,
                       size_t len);
/* Applies the entries waiting for their batch (no-op when none, or when
 * the store refused them: the retry timer's). */
void ic_raft__fsm_flush(struct ic_raft_fsm *fsm);

/* A group: the commands a leader submitted in one turn of its loop, as one
 * raft entry (raft 0.22 takes one buffer per raft_apply, and sends every
 * follower a message per call):
 *
 *   group := 1:u8 | 0x40:u8 | count:u16 (2..IC_RAFT__GROUP_MAX) | 0:u32 |
 *            count x (length:u32 | 0:u32 | command)
 *
 * each command a whole encoded command (its length a multiple of 8), never
 * a group, applied as if it were an entry of its own (its deduplication,
 * its nested transaction, its result), in order. A build that does not
 * know the type stops at it (IC_EFORMAT), as for any new type. */
#define IC_RAFT__TYPE_GROUP 0x40
#define IC_RAFT__GROUP_MAX 512

size_t ic_raft__group_size(const struct raft_buffer *cmds, size_t n);
/* Writes the group of CMDS (N >= 2) to OUT, ic_raft__group_size bytes. */
void ic_raft__group_encode(const struct raft_buffer *cmds,
                           size_t n,
                           unsigned char *out);
bool ic_raft__is_group(const void *buf, size_t len);
/* Checks the group's whole layout (IC_ECORRUPT), then calls FN for each
 * command in order; what FN returns other than 0 stops it. */
typedef int (*ic_raft__group_fn)(void *data, const void *cmd, size_t len);
int ic_raft__group_walk(const void *buf,
                        size_t len,
                        ic_raft__group_fn fn,
                        void *data);

/* Called (from inside raft's apply: it must not re-enter raft) when an
 * entry is held and none was before. */
typedef void (*ic_raft__hold_fn)(void *data);
void ic_raft__fsm_on_hold(struct ic_raft_fsm *fsm,
                          ic_raft__hold_fn cb,
                          void *data);
/* Switches to deferred apply: CB is called (from inside raft's apply) when
 * an entry starts waiting for its batch and none was; NULL switches back. */
void ic_raft__fsm_on_pending(struct ic_raft_fsm *fsm,
                             ic_raft__hold_fn cb,
                             void *data);

/* The deduplication window of one client (fsm_client.c): its highest
 * applied sequence, which of the IC_RAFT__WINDOW sequences up to it were
 * applied, and the result of each of those that failed. */
#define IC_RAFT__WINDOW 1024

struct ic_raft__window;

enum ic_raft__verdict {
    IC_RAFT__APPLY,     /* never applied: apply it, then mark it */
    IC_RAFT__DUPLICATE, /* applied already: *res is its recorded result */
    IC_RAFT__STALE,     /* below the window: *res is IC_ESTALE */
};

/* Reads CLIENT's record in T (layout 1 or 2) into a new window (an empty
 * one for a client without a record); free it with ic_raft__window_free.
 * IC_ECORRUPT for a record that does not parse. */
int ic_raft__window_load(struct ic_txn *t,
                         uint64_t client,
                         struct ic_raft__window **out);
/* Frees W; NULL is a no-op. */
void ic_raft__window_free(struct ic_raft__window *w);
/* What to do with sequence SEQ; RES is written for DUPLICATE and STALE. */
enum ic_raft__verdict ic_raft__window_check(const struct ic_raft__window *w,
                                            uint64_t seq,
                                            struct ic_raft_result *res);
/* Marks SEQ (checked IC_RAFT__APPLY) applied with result RES: the window
 * slides when SEQ is above it; a failure's result is kept. */
void ic_raft__window_mark(struct ic_raft__window *w,
                          uint64_t seq,
                          const struct ic_raft_result *res);
/* Writes W as CLIENT's record (layout 2) in T. */
int ic_raft__window_store(struct ic_txn *t,
                          uint64_t client,
                          const struct ic_raft__window *w);

/* The presence changes of the entry being applied (fsm_presence.c), for
 * the observer. The JIDs are owned copies; payloads point into the entry. */
struct ic_raft__changes {
    struct ic_raft_presence_change *v;
    size_t n, cap;
};

/* Forgets the changes listed (freeing their JIDs), keeping the room. */
void ic_raft__changes_clear(struct ic_raft__changes *c);
/* Frees everything C holds; C is empty and reusable after. */
void ic_raft__changes_free(struct ic_raft__changes *c);
/* Runs OP, a PRESENCE_BATCH or NODE_LEASE, inside write transaction T,
 * appending the changes it makes to CH. A stale incarnation is the
 * business failure IC_ELEASE with a message in MSG (256 bytes); on any
 * error the caller aborts T and clears CH. */
int ic_raft__presence_run(struct ic_txn *t,
                          const struct ic_raft_op *op,
                          struct ic_raft__changes *ch,
                          char *msg);

/* The bytes of an entry raft applied, averaged over about the last 32. */
uint64_t ic_raft__fsm_entry_avg(const struct ic_raft_fsm *fsm);

/* The snapshot threshold and trailing entries (*TH, *TR) that keep about
 * BUDGET bytes of entries of AVG bytes in memory (a third between two
 * snapshots, two thirds kept after one), within the configured counts
 * MAX_TH and MAX_TR and at least 64 and 128. BUDGET 0: the counts. */
void ic_raft__log_bounds(uint64_t budget,
                         uint64_t avg,
                         unsigned max_th,
                         unsigned max_tr,
                         unsigned *th,
                         unsigned *tr);

/* The raft instance of node N (for tests that tune its timers). */
struct raft *ic_raft__node_raft(struct ic_raft_node *n);

/* The IC_E* code of a raft library error. */
int ic_raft__err(int raft_rc);

/* fsm_update.c: a KV_UPDATE inside T (MSG, 256 bytes, says what failed). */
int ic_raft__kv_update_run(struct ic_txn *t,
                           const struct ic_raft_kvop *op,
                           char *msg);

#endif /* IC_RAFT_INT_H */
