/*
 * ic_store.h - the Intercloud Root's store: one LMDB environment per node
 * holding the RDF catalog (dictionary-encoded quads) and the named key/value
 * databases that other modules keep their state in.
 *
 * Layout (format version 2, see docs/architecture.md):
 *   meta       magic, format version, id counters, applied Raft index
 *   hash2id    64-bit hash of a term's encoding -> term ids (dups)
 *   id2term    term id -> term encoding
 *   spo        s -> p|o            (triple level, 8-byte big-endian ids)
 *   pos        p -> o|s            (triple level)
 *   osp        o -> s|p|g          (quad level: the record of every quad)
 *   gspo       g -> s|p|o          (quad level: what a graph holds, read at
 *                                   once to replace or clear it)
 *   kv.*       named key/value databases (accounts, rosters, presence,
 *              delegations, cluster) for later modules; kv.presence holds
 *              the presence registry and node leases (layout below)
 *   clients    client id (8 bytes, big-endian) -> the replicated state
 *              machine's record of that client's recent commands (raft/
 *              owns its format: a deduplication window)
 *
 * Term ids carry a tag in their top 4 bits. Numeric literals (xsd:integer,
 * xsd:decimal, xsd:double, xsd:float and the integer subtypes) and
 * xsd:dateTime get ids whose order follows their value, so a comparison is
 * a range scan of `pos`; booleans are inlined.
 *
 * Memory: any pointer the store hands out (term text, key/value data) lives
 * until the next write in the same transaction or the transaction's end,
 * whichever comes first, as in LMDB.
 *
 * Errors: functions return 0 or a negative IC_E* code (ic_common.h).
 *
 * Threads: a store handle and its transactions belong to one thread (the
 * node's event loop); other processes may open the same directory.
 */
#ifndef IC_STORE_H
#define IC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ic_common.h"

/* 2: gspo (g -> s|p|o) replaced gs (g -> s); a store of format 1 is
 * upgraded when a node opens it for writing. */
#define IC_STORE_FORMAT 2

struct ic_store;
struct ic_txn;

struct ic_store_opts {
    uint64_t map_size; /* bytes; 0 means the default (64 GiB) */
    bool no_sync;      /* MDB_NOSYNC: for nodes whose Raft log is durable */
    bool read_only;
    bool create; /* create the directory and store when missing */
};

/* Opens (or creates) the store in directory DIR. Refuses, with IC_ENOTOURS,
 * a directory holding other files than ours and a database without our
 * magic, and with IC_EFORMAT one of a newer format. On failure, *why (if not
 * NULL) gets a one-line reason. */
int ic_store_open(const char *dir,
                  const struct ic_store_opts *opts,
                  struct ic_store **out,
                  char *why,
                  size_t why_len);
/* Flushes every committed transaction to disk (fsync), whatever the
 * store was opened with. */
int ic_store_sync(struct ic_store *st);
/* Closes the store; no transaction may be open. ic_store_close(NULL) is a
 * no-op. */
void ic_store_close(struct ic_store *st);
/* The directory ST was opened in (for messages); it lives as long as ST. */
const char *ic_store_dir(const struct ic_store *st);

/* Transactions. A write transaction is one LMDB write transaction: all or
 * nothing. After any error inside a write transaction, abort it. */
int ic_store_txn_begin(struct ic_store *st, bool write, struct ic_txn **out);
int ic_store_txn_commit(struct ic_txn *txn);
void ic_store_txn_abort(struct ic_txn *txn);

/* Begins a transaction nested in write transaction PARENT (an LMDB child
 * transaction): committing it merges its writes into PARENT, aborting it
 * drops them and leaves PARENT as it was. While the child is open PARENT
 * must not be used; the child must be committed or aborted before PARENT
 * is. Pointers read in PARENT stay valid only until the child's first
 * write. IC_EREADONLY when PARENT is a read transaction. */
int ic_store_txn_begin_nested(struct ic_txn *parent, struct ic_txn **out);

/* Terms */

enum ic_term_kind {
    IC_TERM_IRI = 1,
    IC_TERM_BLANK,
    IC_TERM_LITERAL,
};

struct ic_term {
    enum ic_term_kind kind;
    const char *value; /* IRI, blank label or lexical form */
    size_t len;
    const char *datatype; /* literal datatype IRI or NULL (xsd:string) */
    const char *lang;     /* literal language tag or NULL */
};

#define IC_XSD "http://www.w3.org/2001/XMLSchema#"
#define IC_RDF "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
#define IC_RDFS "http://www.w3.org/2000/01/rdf-schema#"

/* Convenience initialisers for struct ic_term. */
struct ic_term ic_term_iri(const char *iri);
struct ic_term ic_term_literal(const char *lex, const char *datatype);

/* Looks a term up, or adds it to the dictionary when CREATE (write
 * transactions only). IC_ENOTFOUND when absent and not CREATE. */
int ic_store_term_id(struct ic_txn *txn,
                     const struct ic_term *term,
                     bool create,
                     uint64_t *id);
/* Decodes term ID. The strings point into the transaction's memory, or into
 * BUF (which must hold 64 bytes) for inlined values. */
int ic_store_term_get(struct ic_txn *txn,
                      uint64_t id,
                      struct ic_term *out,
                      char *buf);

/* Quads: s, p, o, g. The graph is always named (an IRI). */

int ic_store_quad_add(struct ic_txn *txn, const struct ic_term *q[4]);
int ic_store_quad_remove(struct ic_txn *txn, const struct ic_term *q[4]);
int ic_store_quad_add_ids(struct ic_txn *txn, const uint64_t q[4]);
int ic_store_quad_remove_ids(struct ic_txn *txn, const uint64_t q[4]);
/* Removes every quad of graph G (no error when G is unknown or empty). */
int ic_store_graph_clear(struct ic_txn *txn, const char *graph_iri);

/* Pattern iteration: a 0 in PATTERN is a wildcard. Quads come out with their
 * graph; the best index is chosen from the bound positions. */
struct ic_store_iter;
int ic_store_iter_new(struct ic_txn *txn,
                      const uint64_t pattern[4],
                      struct ic_store_iter **out);
/* 0 and the next quad, IC_EEND when done, or an error. */
int ic_store_iter_next(struct ic_store_iter *it, uint64_t quad[4]);
void ic_store_iter_free(struct ic_store_iter *it);

struct ic_store_stats {
    unsigned format;
    uint64_t quads;
    uint64_t triples;
    uint64_t terms;
    uint64_t graphs;
    uint64_t map_size;
    uint64_t used_bytes; /* pages in use times page size */
    uint64_t applied_index;
};
int ic_store_stats(struct ic_txn *txn, struct ic_store_stats *out);

/* The dictionary sweep (sweep.c): examines up to MAX terms from where the
 * previous sweep stopped (a cursor in the replicated content) and removes
 * those no quad uses; deterministic, so run it as a replicated command.
 * OUT (may be NULL) says how many were examined and removed, and whether
 * the slice reached the end of the dictionary (the next starts again at
 * its first term). */
struct ic_store_sweep {
    uint64_t examined;
    uint64_t removed;
    bool wrapped;
};
int ic_store_terms_sweep(struct ic_txn *txn,
                         uint32_t max,
                         struct ic_store_sweep *out);
/* Where the next sweep starts: 0 at the dictionary's first term (none
 * ran yet, or the last one reached the end). */
int ic_store_sweep_cursor(struct ic_txn *txn, uint64_t *next);
/* Quads removed by the write transactions committed since ST opened (a
 * snapshot restore counts as one): while it stands still, no term has
 * fallen out of use since. */
uint64_t ic_store_quads_removed(const struct ic_store *st);

/* The Raft index last applied to this store (0 for none). */
int ic_store_applied_get(struct ic_txn *txn, uint64_t *index);
int ic_store_applied_set(struct ic_txn *txn, uint64_t index);

/* RDF input and output through serd. */

enum ic_rdf_syntax {
    IC_RDF_TURTLE = 1,
    IC_RDF_NTRIPLES,
    IC_RDF_NQUADS,
    IC_RDF_TRIG,
};

/* Guesses the syntax from a file name's extension; 0 when unknown. */
enum ic_rdf_syntax ic_rdf_syntax_from_name(const char *name);

enum ic_load_graphs {
    /* every triple into opts.graph (named graphs of TriG/N-Quads kept) */
    IC_LOAD_ONE_GRAPH = 0,
    /* a triple whose subject is an xmpp: IRI goes into the graph named by
     * that IRI without its fragment (the cloud's own graph); any other
     * into opts.graph */
    IC_LOAD_BY_SUBJECT,
};

struct ic_load_opts {
    enum ic_rdf_syntax syntax;
    const char *graph;    /* default graph IRI (required) */
    const char *base_uri; /* for relative IRIs; NULL: the file's URI */
    enum ic_load_graphs graphs;
    bool replace;     /* clear every graph the input writes to, first */
    const char *name; /* input name used in error messages */
};

struct ic_load_result {
    uint64_t quads;  /* quads read */
    uint64_t graphs; /* distinct graphs written */
    char error[512]; /* "name:line:col: message" on failure */
};

/* Loads RDF into the store inside TXN (a write transaction). On any error,
 * including a syntax error anywhere in the input, nothing is written as far
 * as the caller aborts TXN, which it must. */
int ic_store_load_file(struct ic_txn *txn,
                       const char *path,
                       const struct ic_load_opts *opts,
                       struct ic_load_result *res);
int ic_store_load_buffer(struct ic_txn *txn,
                         const char *data,
                         size_t len,
                         const struct ic_load_opts *opts,
                         struct ic_load_result *res);

/* Triples as a table of their terms (terms.c): what a node checked and
 * mapped once, written by every replica without a parser. Start from a
 * zeroed struct, put the triples, then ic_store_terms_end encodes them
 * into BUF (LEN bytes; none for no triples); free with
 * ic_store_terms_free. */
struct ic_store__terms_build;
struct ic_store_terms {
    unsigned char *buf;
    size_t len, cap;
    struct ic_store__terms_build *b; /* while putting */
};

/* Adds (S, P, O); IC_EINVAL (nothing added) for a literal subject, a
 * predicate that is not an IRI, or a string holding a NUL. */
int ic_store_terms_put(struct ic_store_terms *w,
                       const struct ic_term *s,
                       const struct ic_term *p,
                       const struct ic_term *o);
int ic_store_terms_end(struct ic_store_terms *w);
void ic_store_terms_free(struct ic_store_terms *w);
/* Puts every triple of graph GRAPH_IRI (none when it is unknown) into OUT,
 * blank nodes labelled by id as ic_store_dump labels them; the caller
 * ends OUT. */
int ic_store_graph_terms(struct ic_txn *txn,
                         const char *graph_iri,
                         struct ic_store_terms *out);
/* Makes graph GRAPH_IRI hold exactly the triples of DOC (LEN bytes, as
 * ic_store_terms_end writes them), touching only what differs; an empty
 * DOC empties it. IC_ESYNTAX (RES->error says where) when DOC does not
 * decode; the caller aborts TXN on any error. */
int ic_store_terms_replace(struct ic_txn *txn,
                           const char *graph_iri,
                           const void *doc,
                           size_t len,
                           struct ic_load_result *res);

/* Writes graph GRAPH_IRI (or every graph when NULL) as N-Quads, TriG,
 * N-Triples or Turtle (the last two drop graph names) to OUT. */
int ic_store_dump(struct ic_txn *txn,
                  const char *graph_iri,
                  enum ic_rdf_syntax syntax,
                  FILE *out);

/* The constraint matcher (match.c): the semantics of each attribute come
 * from the catalog itself (ontology/constraints.ttl loaded into it). */

struct ic_constraint {
    const char *attribute;
    const char *value;
};

struct ic_match_result {
    char **names; /* the matching clouds' names, sorted */
    size_t n;
    char error[256]; /* names the attribute or value at fault */
};

/* Runs a conjunction of constraints. IC_EUNKNOWN for an unknown attribute,
 * IC_EVALUE for a value that does not parse, with res->error set. */
int ic_store_match(struct ic_txn *txn,
                   const struct ic_constraint *c,
                   size_t n,
                   struct ic_match_result *res);
void ic_match_result_free(struct ic_match_result *res);

/* Room for the object ids a published pair stands for. */
struct ic_store_ids_out {
    uint64_t *ids;
    size_t n;
    size_t max;
};

/* Publishing (the attribute map read the other way): the property and
 * object terms that (ATTRIBUTE, VALUE) stands for, created as needed in a
 * write transaction: a typed literal checked against the attribute's
 * datatype, a plain literal, or the instances of the value class labelled
 * VALUE; a oneOf attribute takes a comma-separated list. IC_EUNKNOWN or
 * IC_EVALUE with ERR naming the fault. */
int ic_store_attr_terms(struct ic_txn *txn,
                        const char *attribute,
                        const char *value,
                        uint64_t *property,
                        struct ic_store_ids_out *out,
                        char *err,
                        size_t err_len);

/* The same, read only (any transaction): FN gets the property and each
 * object term (valid during the call), nothing is created; what FN returns
 * other than 0 stops it and is returned. */
typedef int (*ic_store_statement_fn)(void *data,
                                     const struct ic_term *property,
                                     const struct ic_term *object);
int ic_store_attr_statements(struct ic_txn *txn,
                             const char *attribute,
                             const char *value,
                             ic_store_statement_fn fn,
                             void *data,
                             char *err,
                             size_t err_len);

/* Named key/value databases for other modules' state. */

enum ic_kv_db {
    IC_KV_ACCOUNTS = 0,
    IC_KV_ROSTERS,
    IC_KV_PRESENCE,
    IC_KV_DELEGATIONS,
    IC_KV_CLUSTER,
    IC_KV__COUNT,
};

struct ic_kv {
    const void *data;
    size_t len;
};

int ic_store_kv_get(struct ic_txn *txn,
                    enum ic_kv_db db,
                    struct ic_kv key,
                    struct ic_kv *val);
int ic_store_kv_put(struct ic_txn *txn,
                    enum ic_kv_db db,
                    struct ic_kv key,
                    struct ic_kv val);
int ic_store_kv_del(struct ic_txn *txn, enum ic_kv_db db, struct ic_kv key);
/* Iteration in key order: the first record whose key is greater than
 * AFTER (AFTER.data NULL: the first record) into *KEY and *VAL (valid
 * until the end of the transaction); IC_EEND after the last. */
int ic_store_kv_next(struct ic_txn *txn,
                     enum ic_kv_db db,
                     struct ic_kv after,
                     struct ic_kv *key,
                     struct ic_kv *val);

/* The presence registry, in kv.presence (whose records the functions
 * below own: use them, not the generic key/value calls, on it). Each full
 * JID has at most one entry: the node whose session holds it, that node's
 * lease incarnation when the entry was written, and an opaque payload (the
 * serialized <presence/>). A per-node index lets every entry of one node
 * be found, or dropped, without a scan; each node also has a lease record
 * (its current incarnation, revoked or not). raft/ writes them all in
 * replicated transactions; readers use the get and iteration calls.
 *
 * Layout (integers big-endian):
 *   JID                      -> 1 | node u16 | incarnation u64 | payload
 *   0x00 | node u16 | JID    -> incarnation u64          (the node index)
 *   0x01 | node u16          -> 1 | incarnation u64 | flags u8 (bit 0:
 *                               revoked)                  (the lease)
 * (the first byte 1 of a value is its layout version). A JID is 1 to
 * IC_STORE_JID_MAX bytes, none below 0x20, so it never collides with the
 * index or lease keys; IC_EINVAL otherwise. Pointers read live as the
 * memory of ic_store_kv_get. */

#define IC_STORE_JID_MAX 508 /* LMDB's key limit (511) less the index's 3 */

struct ic_store_presence {
    struct ic_kv jid; /* full JID, not NUL-terminated */
    uint16_t node;
    uint64_t incarnation;
    struct ic_kv payload;
};

struct ic_store_lease {
    uint64_t incarnation;
    bool revoked;
};

/* The entry of full JID JID into *OUT; IC_ENOTFOUND when none. */
int ic_store_presence_get(struct ic_txn *txn,
                          struct ic_kv jid,
                          struct ic_store_presence *out);
/* Writes entry P (JID's entry is replaced, whichever node held it) and its
 * index record. */
int ic_store_presence_put(struct ic_txn *txn,
                          const struct ic_store_presence *p);
/* Removes JID's entry and its index record; IC_ENOTFOUND when none. */
int ic_store_presence_del(struct ic_txn *txn, struct ic_kv jid);

/* Called for each entry by the iterations below: 0 goes on, anything else
 * stops the iteration and is returned by it. P lives until the callback
 * returns; the callback must not write to the store. */
typedef int (*ic_store_presence_fn)(void *data,
                                    const struct ic_store_presence *p);

/* Every entry of bare JID BARE ("user@domain": the full JIDs that start
 * with "user@domain/"), in key order. */
int ic_store_presence_each_bare(struct ic_txn *txn,
                                struct ic_kv bare,
                                ic_store_presence_fn fn,
                                void *data);
/* Every entry held by node NODE, in JID order. */
int ic_store_presence_each_node(struct ic_txn *txn,
                                uint16_t node,
                                ic_store_presence_fn fn,
                                void *data);
/* Removes every entry of node NODE whose incarnation is in [LO, HI],
 * calling FN (if not NULL) with each just before it goes (FN's return is
 * ignored; it must not write to the store). *N (if not NULL) gets the
 * number removed. */
int ic_store_presence_drop(struct ic_txn *txn,
                           uint16_t node,
                           uint64_t lo,
                           uint64_t hi,
                           ic_store_presence_fn fn,
                           void *data,
                           size_t *n);

/* Node NODE's lease record; IC_ENOTFOUND when the node never started. */
int ic_store_lease_get(struct ic_txn *txn,
                       uint16_t node,
                       struct ic_store_lease *out);
int ic_store_lease_put(struct ic_txn *txn,
                       uint16_t node,
                       const struct ic_store_lease *lease);

/* Client records: one opaque value per 64-bit client id, kept for the
 * replicated state machine (raft/ owns the value's format). The value read
 * lives as the memory of ic_store_kv_get. IC_ENOTFOUND when absent. */
int ic_store_client_get(struct ic_txn *txn, uint64_t client, struct ic_kv *val);
int ic_store_client_put(struct ic_txn *txn, uint64_t client, struct ic_kv val);

/* Snapshots: the whole replicated content of the store (every database
 * above, the meta values but the magic and the format version) as one
 * portable byte stream:
 *
 *   header   "ICSNAP\r\n" (8 bytes), version u32 (1), store format u32,
 *            applied Raft index u64, number of databases u32
 *   section  per database, in the order of the layout above: name length
 *            u8, name, then records (key length u32, key, value length
 *            u32, value) in LMDB order (duplicates in order), ended by a
 *            key length of 0xffffffff
 *   trailer  SHA-256 of every byte before it (32 bytes)
 *
 * Integers are big-endian. The stream is the same on every machine for the
 * same content. */

#define IC_STORE_SNAPSHOT_VERSION 1

/* Receives the stream in pieces; returns 0 or an IC_E* code that stops the
 * write (and is returned by it). */
typedef int (*ic_store_write_fn)(void *data, const void *buf, size_t len);

/* Writes the snapshot of the store as seen by TXN (a read transaction is
 * the usual choice: one exact view, while writers go on) to FN. */
int ic_store_snapshot_write(struct ic_txn *txn,
                            ic_store_write_fn fn,
                            void *data);

/* Checks snapshot BUF (LEN bytes) completely: magic, versions, every
 * length, the section names and the checksum. 0 with *applied (if not
 * NULL) set to the snapshot's applied Raft index; IC_EFORMAT for another
 * version, IC_ECORRUPT for anything else, with a one-line reason in WHY
 * (if not NULL). Reads nothing but BUF. */
int ic_store_snapshot_check(
    const void *buf, size_t len, uint64_t *applied, char *why, size_t why_len);

/* Replaces the whole replicated content of the store with snapshot BUF
 * inside write transaction TXN (a fresh one, or one whose earlier writes
 * are to be replaced too). The snapshot is checked first
 * (ic_store_snapshot_check): a bad one is refused, with TXN untouched. On
 * any other error the caller must abort TXN. */
int ic_store_snapshot_restore(
    struct ic_txn *txn, const void *buf, size_t len, char *why, size_t why_len);

/* SHA-256 of the snapshot sections of the store as seen by TXN: equal
 * digests mean equal replicated content (applied index included), so
 * replicas can be compared. */
int ic_store_digest(struct ic_txn *txn, unsigned char out[32]);

#endif /* IC_STORE_H */
