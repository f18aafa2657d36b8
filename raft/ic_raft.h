/*
 * ic_raft.h - the Intercloud Root's replication: commands encoded for the
 * Raft log, the state machine applying them to the store (ic_store.h), and
 * a Raft node on the caller's libuv loop. The whole public API of raft/.
 *
 * Commands. A command is one or more operations on the replicated state
 * (catalog graphs, key/value records) with the submitting client's id and
 * sequence number. It is encoded in a versioned binary form (see
 * raft/README.md for the layout) and applied by every replica in one LMDB
 * write transaction together with the applied Raft index:
 *
 *   - an entry whose index is not above the store's applied index is
 *     skipped (replay after a crash or restart changes nothing);
 *   - the state machine keeps per client a window of its last 1024
 *     sequences (the highest applied one, H, and below it): which were
 *     applied, and the result of those that failed. A sequence above H is
 *     applied and the window slides; one inside the window is applied if
 *     it was not yet, else not applied again and gets the recorded result;
 *     one at or below H - 1024 gets IC_ESTALE (too old to tell). So a
 *     client may have many commands in flight, in any order;
 *   - a business failure (bad Turtle, an empty key, ...) is the command's
 *     RESULT (code and message), never a failed apply: the command's
 *     operations are undone (an LMDB nested transaction) and only the
 *     applied index and the client record change. A batch is all or
 *     nothing.
 *
 * Errors: functions return 0 or a negative IC_E* code (ic_common.h).
 * Memory: ic_malloc/ic_free unless said otherwise; buffers handed to the
 * raft library are raft_malloc'd.
 * Threads: everything runs on one thread (the node's event loop).
 */
#ifndef IC_RAFT_H
#define IC_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ic_common.h"
#include "ic_store.h"

/* Commands */

#define IC_RAFT_CMD_VERSION 1
/* Largest encoded command, and most operations in one batch. */
#define IC_RAFT_CMD_MAX (64u << 20)
#define IC_RAFT_BATCH_MAX 1024
/* Longest graph or base IRI, and longest key/value key (the store's). */
#define IC_RAFT_IRI_MAX 4096
#define IC_RAFT_KEY_MAX 511

/* Most items in one presence batch, and the longest full JID (the store's
 * limit: JIDs are LMDB keys). */
#define IC_RAFT_PRESENCE_MAX 4096
#define IC_RAFT_JID_MAX IC_STORE_JID_MAX

/* Type codes of the encoding (one byte). A command is one operation, or a
 * batch of several; PRESENCE_BATCH, NODE_LEASE and TERMS_SWEEP are never
 * inside a batch (0x20). A code this build does not know is IC_EFORMAT. */
enum ic_raft_op_type {
    IC_RAFT_OP_GRAPH_REPLACE = 0x01, /* the graph becomes the text's triples */
    IC_RAFT_OP_GRAPH_CLEAR = 0x02,   /* every quad of the graph removed */
    IC_RAFT_OP_RDF_LOAD = 0x03,      /* ic_store_load_buffer of the text */
    IC_RAFT_OP_GRAPH_TERMS = 0x04,   /* the graph becomes the triples of
                                        ic_store_terms (text): a publish */
    IC_RAFT_OP_KV_PUT = 0x10,
    IC_RAFT_OP_KV_DEL = 0x11,         /* deleting a missing key succeeds */
    IC_RAFT_OP_KV_UPDATE = 0x12,      /* a registered update of one value */
    IC_RAFT_OP_PRESENCE_BATCH = 0x30, /* one node's presence changes */
    IC_RAFT_OP_NODE_LEASE = 0x31,     /* a node's incarnation starts or ends */
    IC_RAFT_OP_TERMS_SWEEP = 0x50,    /* ic_store_terms_sweep of a slice */
};
/* Most terms one TERMS_SWEEP examines. */
#define IC_RAFT_SWEEP_MAX 65536
#define IC_RAFT_TYPE_BATCH 0x20
/* 0x40 is taken too: a node's group of commands (raft_int.h). */

/* An RDF operation (GRAPH_REPLACE, GRAPH_CLEAR, RDF_LOAD, GRAPH_TERMS:
 * this one with the graph and the text only). */
struct ic_raft_rdf {
    enum ic_rdf_syntax syntax;  /* REPLACE: Turtle or N-Triples; LOAD: any */
    enum ic_load_graphs graphs; /* LOAD only */
    bool replace;               /* LOAD only: ic_load_opts.replace */
    const char *graph;          /* the (default) graph IRI, required */
    const char *base;           /* base IRI, or NULL */
    const char *text;           /* REPLACE, LOAD: the document */
    size_t text_len;
};

/* A key/value operation (KV_PUT, KV_DEL, KV_UPDATE) on accounts, rosters,
 * delegations or cluster: presence is written by presence batches only. */
struct ic_raft_kvop {
    enum ic_kv_db db;
    struct ic_kv key; /* 1 to IC_RAFT_KEY_MAX bytes */
    struct ic_kv val; /* KV_PUT: the value; KV_UPDATE: the update's
                         argument */
    uint8_t update;   /* KV_UPDATE: the registered update (1..255) */
};

/* A KV_UPDATE computes a key's new value from its current one when the
 * entry is applied, so concurrent updates of one value from several nodes
 * compose in log order instead of overwriting each other (a roster item
 * changed by two nodes at once). OLD is NULL when the key is missing. On
 * success *OUT is the new value (ic_malloc'd; the state machine frees it)
 * or NULL to delete the key. An error is the entry's business failure
 * (nothing changes). The function must be deterministic: every node runs
 * it on the same inputs. */
typedef int (*ic_raft_kv_update_fn)(const struct ic_kv *old,
                                    struct ic_kv arg,
                                    struct ic_kv *out);
/* Registers update ID (1..255) for this process, before any entry is
 * applied; the same on every node of a cluster. */
void ic_raft_register_kv_update(uint8_t id, ic_raft_kv_update_fn fn);

/* One presence change of a PRESENCE_BATCH. */
struct ic_raft_presence_item {
    const char *jid;      /* full JID "local@domain/resource": 1 to
                             IC_RAFT_JID_MAX bytes, none below 0x20, a '/' that
                             is neither first nor last */
    bool available;       /* false: unavailable (the entry is removed) */
    struct ic_kv payload; /* available only: the serialized <presence/> */
};

/* PRESENCE_BATCH: node NODE's presence changes, applied in order, only
 * while INCARNATION is the node's current, unrevoked lease incarnation
 * (else the result is IC_ELEASE, "stale incarnation", and nothing
 * changes). An available item sets the JID's entry (taking it over from
 * another node if need be); an unavailable one removes the entry when this
 * node holds it. */
struct ic_raft_presence {
    uint16_t node;        /* > 0 */
    uint64_t incarnation; /* > 0 */
    size_t n_items;       /* 1 to IC_RAFT_PRESENCE_MAX */
    struct ic_raft_presence_item *items;
};

enum ic_raft_lease_action {
    /* INCARNATION becomes the node's current one; every presence entry of
     * the node with an older incarnation is dropped. A START of an older
     * incarnation than the current, or of a revoked one, is IC_ELEASE and
     * changes nothing; a START of the current one changes nothing. */
    IC_RAFT_LEASE_START = 1,
    /* Every presence entry of the node and INCARNATION is dropped and the
     * incarnation is marked revoked (its batches are refused from then on).
     * A revoke of an incarnation that is not current (older, newer, already
     * revoked) changes nothing and succeeds. The leader decides when a
     * silent node's lease expired: time is not in the state machine. */
    IC_RAFT_LEASE_REVOKE = 2,
};

/* NODE_LEASE. */
struct ic_raft_lease {
    uint16_t node;        /* > 0 */
    uint64_t incarnation; /* > 0 */
    enum ic_raft_lease_action action;
};

/* An operation: TYPE says which member holds it. */
struct ic_raft_op {
    enum ic_raft_op_type type;
    struct ic_raft_rdf rdf;
    struct ic_raft_kvop kv;
    struct ic_raft_presence presence; /* PRESENCE_BATCH */
    struct ic_raft_lease lease;       /* NODE_LEASE */
    uint32_t sweep_max; /* TERMS_SWEEP: terms examined, 1..IC_RAFT_SWEEP_MAX */
};

struct ic_raft_cmd {
    uint64_t client; /* random per submitting process start; not 0 */
    uint64_t seq;    /* per client, increasing; not 0 */
    bool batch;      /* encode as a batch (type 0x20), even of one op; not
                        with a PRESENCE_BATCH or NODE_LEASE */
    size_t n_ops;    /* 1 unless batch; at most IC_RAFT_BATCH_MAX */
    struct ic_raft_op *ops;
};

/* The encoded size of CMD into *LEN (a multiple of 8, as raft's disk I/O
 * wants: the encoding ends with up to 7 zero bytes), after checking every
 * field: IC_EINVAL
 * for a field out of range, IC_ELIMIT when larger than IC_RAFT_CMD_MAX. */
int ic_raft_cmd_size(const struct ic_raft_cmd *cmd, size_t *len);
/* Encodes CMD into BUF, which holds exactly LEN = ic_raft_cmd_size bytes.
 * IC_EINVAL when CMD is invalid or LEN is not its size. */
int ic_raft_cmd_encode(const struct ic_raft_cmd *cmd, void *buf, size_t len);
/* Decodes LEN bytes at BUF with strict bounds checks: IC_EFORMAT for an
 * unknown version or type code, IC_ECORRUPT for anything truncated,
 * trailing or out of range. On success *OUT is a new command to free with
 * ic_raft_cmd_free: its IRIs, JIDs and presence items are copies in it, but
 * its texts, keys, values and presence payloads point into BUF, which must
 * outlive it. */
int ic_raft_cmd_decode(const void *buf, size_t len, struct ic_raft_cmd **out);
/* Frees a decoded command; NULL is a no-op. */
void ic_raft_cmd_free(struct ic_raft_cmd *cmd);

/* The state machine */

struct raft;
struct raft_fsm;
struct ic_raft_fsm;

/* A command's result: 0, or the IC_E* code of its business failure with a
 * message ("op 2: text:1:5: bad syntax"); IC_ESTALE for a sequence below
 * the client's deduplication window (too old to tell whether it was
 * applied), IC_ECORRUPT for an undecodable entry. */
struct ic_raft_result {
    int code;
    char msg[256];
};

/* A state machine applying to store ST, which it does not own and which
 * must outlive it. */
int ic_raft_fsm_new(struct ic_store *st, struct ic_raft_fsm **out);
/* Frees FSM (NULL is a no-op); its raft instance must be closed. */
void ic_raft_fsm_free(struct ic_raft_fsm *fsm);
/* The struct raft_fsm (version 3: apply, snapshot, snapshot_async,
 * snapshot_finalize, restore) to give raft_init or raft_fixture_grow; it
 * belongs to FSM. */
struct raft_fsm *ic_raft_fsm_get(struct ic_raft_fsm *fsm);
/* Tells FSM the raft instance it serves (it reads the index of the entry
 * being applied from it). Call before raft_start. */
void ic_raft_fsm_bind(struct ic_raft_fsm *fsm, struct raft *r);

/* Observing presence. After each applied entry that changed the presence
 * registry (a PRESENCE_BATCH, a NODE_LEASE dropping entries or ending a
 * live lease), once its
 * transaction committed, the observer gets the entry's changes in the
 * order they were made; a dropped entry is a change to unavailable. After
 * a snapshot was restored it gets an event with RESET set and no changes:
 * the whole registry may differ, read it again from the store. Entries
 * skipped (replayed, duplicates) and failed batches call nothing. */

struct ic_raft_presence_change {
    const char *jid; /* full JID, NUL-terminated ("" for a lease's end) */
    uint16_t node;
    uint64_t incarnation;
    bool available;
    /* NODE's lease INCARNATION, live until this entry, ended here (revoked,
     * or a newer incarnation started): every session it had is gone,
     * including any the registry never held (presence a node shared
     * directly but whose batch was never committed, directed presence).
     * JID is "" and AVAILABLE false; it follows the registry entries the
     * same operation dropped. */
    bool lease_end;
    const void *payload; /* available only: the <presence/>; else NULL */
    size_t payload_len;
};

struct ic_raft_presence_event {
    uint64_t index; /* the entry's Raft index (RESET: the snapshot's) */
    bool reset;
    size_t n_changes;
    const struct ic_raft_presence_change *changes;
};

/* Called on the loop thread, from inside raft's apply (or restore). It may
 * read the store (the changes are committed) but must not re-enter raft:
 * no ic_raft_node_* call, no raft_* call on the server, no write to the
 * store; queue any work for later. EV and everything it points to live
 * until the callback returns. */
typedef void (*ic_raft_observer_fn)(void *data,
                                    const struct ic_raft_presence_event *ev);

/* Sets (CB NULL: clears) FSM's observer; call before raft starts applying
 * to see every change. */
void ic_raft_fsm_set_observer(struct ic_raft_fsm *fsm,
                              ic_raft_observer_fn cb,
                              void *data);

/* The node: a raft server on the caller's libuv loop, with the libuv disk
 * I/O in <data_dir>/raft/ and TCP between nodes, applying to a store.
 *
 * Lifecycle: ic_raft_node_new opens (or creates) the directory, bootstraps
 * the initial configuration when the directory is new (and only then),
 * restarts from its state otherwise, and starts the server (pre-vote on).
 * ic_raft_node_close transfers leadership first when this node leads, then
 * closes; its callback says when every handle is closed and the node
 * freed. Every callback runs on the loop thread. As with the XMPP engine,
 * the process must ignore SIGPIPE (a peer may close its socket while raft
 * writes to it). */

struct uv_loop_s;
struct ic_raft_node;

enum ic_raft_role {
    IC_RAFT_STANDBY = 0, /* replicates, does not vote */
    IC_RAFT_VOTER = 1,
    IC_RAFT_SPARE = 2, /* neither (a new member starts as one) */
};

enum ic_raft_state {
    IC_RAFT_UNAVAILABLE = 0,
    IC_RAFT_FOLLOWER,
    IC_RAFT_CANDIDATE,
    IC_RAFT_LEADER,
};

struct ic_raft_server {
    uint64_t id;         /* > 0 */
    const char *address; /* "IPv4:port" */
    enum ic_raft_role role;
};

typedef void (*ic_raft_applied_fn)(void *data, uint64_t applied);

struct ic_raft_node_opts {
    uint64_t id;            /* this server's id, > 0 */
    const char *address;    /* this server's raft address, "IPv4:port" */
    const char *data_dir;   /* raft's files go to <data_dir>/raft/ */
    struct ic_store *store; /* applied to; not owned, must outlive the node */
    /* The first configuration, bootstrapped only when <data_dir>/raft/ is
     * new; none (n_initial 0) for a server that will be added later. */
    const struct ic_raft_server *initial;
    size_t n_initial;
    unsigned election_timeout_ms; /* 0: 1000 */
    unsigned heartbeat_ms;        /* 0: 100 */
    unsigned snapshot_threshold;  /* entries between snapshots; 0: 1024 */
    unsigned snapshot_trailing;   /* entries kept after one; 0: 128 */
    /* About how many bytes of entries to keep in memory: the two counts
     * above shrink when entries are large (ic_raft__log_bounds); 0: the
     * counts alone. */
    uint64_t log_memory;
    uint64_t client_id; /* for ic_raft_node_client; 0: random */
    /* The presence observer (see ic_raft_fsm_set_observer), set before the
     * node starts; NULL for none. */
    ic_raft_observer_fn observer;
    void *observer_data;
    /* Told, on the loop, each time the store has applied further (its
     * applied index), after the results up to it were handed; NULL for
     * none. */
    ic_raft_applied_fn applied;
    void *applied_data;
};

/* Creates the node on LOOP and starts it. On failure nothing is left
 * behind (no handle open on LOOP) and WHY (if not NULL) gets a reason. */
int ic_raft_node_new(struct uv_loop_s *loop,
                     const struct ic_raft_node_opts *opts,
                     struct ic_raft_node **out,
                     char *why,
                     size_t why_len);

/* How far this node's store has applied (ic_raft_status.last_applied,
 * without the rest of the status). */
uint64_t ic_raft_node_applied(struct ic_raft_node *node);
/* Whether this node leads; *LEADER_ID is the leader raft knows (0: none,
 * else possibly this node). */
bool ic_raft_node_leading(struct ic_raft_node *node, uint64_t *leader_id);

/* This process's client id (random per start unless given) and its next
 * sequence number, for the commands it submits. */
uint64_t ic_raft_node_client(struct ic_raft_node *node);
uint64_t ic_raft_node_next_seq(struct ic_raft_node *node);

/* Completion of a submission. RC is 0 when the command was applied (RES is
 * then its result, which may be a business failure), IC_ENOTLEADER when
 * this node does not lead (LEADER_ID and LEADER_ADDRESS name the leader
 * when known: 0 and NULL otherwise; forward the command there), or
 * IC_EINDOUBT when it may or may not have been applied (leadership lost,
 * node closing): retry it with the same client id and sequence. The
 * pointers live until the callback returns. */
typedef void (*ic_raft_submit_cb)(void *data,
                                  int rc,
                                  const struct ic_raft_result *res,
                                  uint64_t leader_id,
                                  const char *leader_address);

/* Submits CMD (copied: the caller may free it on return). The callback
 * runs later, never from inside this call. An error returned (IC_EINVAL
 * for a command that does not encode, IC_EBUSY when closing) means no
 * callback. */
int ic_raft_node_submit(struct ic_raft_node *node,
                        const struct ic_raft_cmd *cmd,
                        ic_raft_submit_cb cb,
                        void *data);

/* Waiting for another node's submission of command (CLIENT, SEQ): a write
 * this node forwarded to the leader. CB runs (as a submission's, with
 * LEADER_ID 0) once this node's store has applied the command, or found it
 * a duplicate and taken its recorded result: RC 0 and RES, the same result
 * the leader's submitter gets, and the command is in the store for a read
 * that follows. It runs once, for the first entry that carries the command,
 * whichever attempt submitted it; never when the command reached this store
 * inside a snapshot (the caller's own timeout covers that). RC IC_EBUSY
 * when the node closes first. *OUT is the handle to cancel it with (the
 * callback then never runs); the handle is gone once the callback ran. */
struct ic_raft_await;
int ic_raft_node_await(struct ic_raft_node *node,
                       uint64_t client,
                       uint64_t seq,
                       ic_raft_submit_cb cb,
                       void *data,
                       struct ic_raft_await **out);
void ic_raft_node_await_cancel(struct ic_raft_node *node,
                               struct ic_raft_await *a);

/* Completion of a barrier or a membership change: RC 0, IC_ENOTLEADER
 * (with the leader when known), IC_EINDOUBT, or another IC_E* code. */
typedef void (*ic_raft_done_cb)(void *data,
                                int rc,
                                uint64_t leader_id,
                                const char *leader_address);

/* A barrier: once it completes, every entry committed before it is applied
 * to this node's store, so a local read is linearizable. */
int ic_raft_node_barrier(struct ic_raft_node *node,
                         ic_raft_done_cb cb,
                         void *data);

/* Membership (leader only; one change at a time). A new server is added as
 * a spare, then assigned a role (a voter is caught up first). Transfer with
 * ID 0 picks a voter. Same callback rules as ic_raft_node_submit. */
int ic_raft_node_add(struct ic_raft_node *node,
                     uint64_t id,
                     const char *address,
                     ic_raft_done_cb cb,
                     void *data);
int ic_raft_node_assign(struct ic_raft_node *node,
                        uint64_t id,
                        enum ic_raft_role role,
                        ic_raft_done_cb cb,
                        void *data);
int ic_raft_node_remove(struct ic_raft_node *node,
                        uint64_t id,
                        ic_raft_done_cb cb,
                        void *data);
int ic_raft_node_transfer(struct ic_raft_node *node,
                          uint64_t id,
                          ic_raft_done_cb cb,
                          void *data);

#define IC_RAFT_STATUS_SERVERS 16
#define IC_RAFT_ADDRESS_MAX 64

struct ic_raft_status {
    uint64_t id;
    enum ic_raft_state state;
    uint64_t leader_id; /* 0 when unknown */
    char leader_address[IC_RAFT_ADDRESS_MAX];
    uint64_t term;
    uint64_t commit_index;
    uint64_t last_applied;
    size_t n_servers; /* the current configuration (first 16 servers) */
    struct {
        uint64_t id;
        char address[IC_RAFT_ADDRESS_MAX];
        enum ic_raft_role role;
    } servers[IC_RAFT_STATUS_SERVERS];
};

void ic_raft_node_status(struct ic_raft_node *node, struct ic_raft_status *out);

/* Closes NODE: a leader first hands leadership to another voter (bounded by
 * the election timeout), then raft closes, pending submissions complete
 * with IC_EINDOUBT, and once every handle is closed NODE is freed and CB
 * (if not NULL) runs. The store is not closed. Call once. */
void ic_raft_node_close(struct ic_raft_node *node,
                        void (*cb)(void *data),
                        void *data);

/* Tracing */

struct raft_tracer;

/* A tracer (set it as struct raft's tracer, and with raft_uv_set_tracer)
 * that sends the raft library's diagnostics to the IC_LOG sink, module
 * "raft": errors and warnings as such, the rest at debug and trace. It is
 * static: never freed. */
struct raft_tracer *ic_raft_tracer(void);

#endif /* IC_RAFT_H */
