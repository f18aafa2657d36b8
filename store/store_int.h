/* store_int.h - shared inside store/ only. */
#ifndef IC_STORE_INT_H
#define IC_STORE_INT_H

#include <string.h>

#include <lmdb.h>

#include "ic_store.h"

/* Term id tags, top 4 bits. Dictionary ids must have the highest tag in
 * use: they grow monotonically, so id2term appends stay at the end. */
#define IC_TAG_SHIFT 60
#define IC_TAG_BOOL 0x2ULL
#define IC_TAG_NUM 0x5ULL
#define IC_TAG_TIME 0x6ULL
#define IC_TAG_DICT 0x8ULL
#define IC_ID_TAG(id) ((id) >> IC_TAG_SHIFT)
#define IC_ID_MAKE(tag, payload) (((tag) << IC_TAG_SHIFT) | (payload))
/* Ordered ids: 48 bits of order-preserving value key, 12 bits sequence. */
#define IC_ORD_SEQ_BITS 12
#define IC_ORD_SEQ_MASK ((1ULL << IC_ORD_SEQ_BITS) - 1)

enum ic_store__dbi {
    DBI_META = 0,
    DBI_HASH2ID,
    DBI_ID2TERM,
    DBI_SPO,
    DBI_POS,
    DBI_OSP,
    DBI_GSPO,
    DBI_KV0, /* IC_KV__COUNT databases from here */
    /* then the state machine's per-client records */
    DBI_CLIENTS = DBI_KV0 + IC_KV__COUNT,
    DBI__COUNT,
};

/* The matcher's cache of the attribute map (match.c): entries as read at
 * LMDB snapshot TXNID; any commit after it makes it stale. */
struct ic_store__attr_cache;
/* The matcher's cache of attribute look-ups (match.c), valid while
 * ic_store.attr_gen is what it was filled at. */
struct ic_store__amap;
/* What (attribute, value) pairs mapped to (pairs.c), valid while
 * ic_store.attr_gen is what it was filled at. */
struct ic_store__pairs;

/* Terms of a write transaction, kept so repeated look-ups are cheap and the
 * hash2id inserts can be done sorted at commit; and the store's terms
 * committed (ic_store.terms). */
struct ic_store__tcache_entry {
    uint64_t hash;
    uint64_t id;
    uint32_t len;
    uint32_t created; /* 1 when added in this transaction */
    char *enc;
};

struct ic_store__tcache {
    struct ic_store__tcache_entry *slots;
    size_t cap; /* power of two */
    size_t n;
    size_t n_created;
};

struct ic_store {
    MDB_env *env;
    MDB_dbi dbi[DBI__COUNT];
    bool read_only;
    uint64_t map_size;
    struct ic_store__attr_cache *attrs;
    /* Moves when a committed write transaction touched a quad whose
     * predicate is one of the attribute map's (ic_store__amap_touch), and
     * at a snapshot restore: attribute look-ups made before are stale. */
    uint64_t attr_gen;
    /* Moves when a committed write transaction touched a quad whose
     * predicate is rdf:type or a label property of the attribute map (or
     * any quad while those are not all known), and at a snapshot restore:
     * what a label names (a class-valued pair) may have changed. */
    uint64_t label_gen;
    struct ic_store__amap *amap;
    struct ic_store__pairs *pairs;
    /* Terms of committed write transactions (encoding -> id), looked at
     * after a write transaction's own: a term's id never changes once
     * committed, until a snapshot restore (which empties this and moves
     * TERMS_EPOCH to its transaction, so that a read transaction older
     * than the restore does not use it either). Used on the thread that
     * writes only (the loop's; a snapshot's thread does not look terms
     * up). A read transaction may find the id of a term committed after
     * it began: no quad of its view has that id. */
    struct ic_store__tcache terms;
    uint64_t terms_epoch;
    uint32_t absent; /* bit i: database i missing (older store, read-only) */
    uint64_t quads_removed;        /* by committed write transactions */
    struct ic_store__memos *memos; /* memo.c; loop thread only */
};

/* match.c */
void ic_store__attr_cache_free(struct ic_store__attr_cache *c);
void ic_store__amap_free(struct ic_store__amap *c);
/* Notes that T writes a quad with predicate P (every quad write calls
 * it): T marks the attribute map changed when P is one of its predicates,
 * or any quad while those are not all in the dictionary yet; and what
 * labels name changed when P is rdf:type or a label property. */
void ic_store__amap_touch(struct ic_txn *t, uint64_t p);

/* A terms document's table as decoded (terms.c): values (NUL-terminated)
 * in one arena, by offset. */
struct ic_store__tterm {
    uint64_t id; /* 0 until looked up */
    uint32_t off, len;
    uint32_t xoff; /* a literal with a language tag: the tag */
    uint32_t dt;   /* a literal with a datatype: the datatype's index */
    uint8_t kind;
};

struct ic_store__table {
    struct ic_store__tterm *t;
    uint32_t n;
    char *arena; /* below 4 GiB (read_table) */
    size_t alen, acap, amax;
};

/* memo.c: per graph, the table its last replace (ic_store_terms_replace)
 * wrote, the ids its terms had then and the graph's own id. A cloud
 * republishes its description with most values unchanged: the next
 * replace of the graph takes those terms' ids from here instead of
 * looking each up. Dictionary ids stay what they name until a term is
 * removed (the sweep), a snapshot is restored, or a write transaction
 * that created them is aborted: each of these forgets every memo. */
struct ic_store__memo {
    char *graph; /* NULL: a free slot */
    size_t graph_len;
    uint64_t hash;
    uint64_t gid;
    struct ic_store__table tb;
};
struct ic_store__memos;
/* The memo of graph GRAPH (LEN bytes, hash H), or NULL. */
const struct ic_store__memo *ic_store__memo_find(struct ic_store *st,
                                                 const char *graph,
                                                 size_t len,
                                                 uint64_t h);
/* Keeps TB (its arrays taken: TB is emptied) as GRAPH's memo, written by
 * write transaction T. */
void ic_store__memo_put(struct ic_txn *t,
                        const char *graph,
                        size_t len,
                        uint64_t h,
                        uint64_t gid,
                        struct ic_store__table *tb);
/* Forgets every memo. */
void ic_store__memo_clear(struct ic_store *st);
/* Bytes of the tables the memos hold (at most 16 MiB). */
size_t ic_store__memo_bytes(const struct ic_store *st);
void ic_store__memos_free(struct ic_store *st);

/* pairs.c: the statements of one ic_store_attr_statements call, as they
 * are made; OFF once one cannot be kept (an object neither a literal nor
 * an individual named by a label). */
struct ic_store__pairs_rec {
    struct pair_stmt *s;
    size_t n, cap;
    bool off;
    bool labels; /* an object came from a label: valid while label_gen */
};
void ic_store__pairs_free(struct ic_store__pairs *c);
/* When T may use the table and it holds (ATTRIBUTE, VALUE): FN called
 * with each statement kept (*RC: the first failure, or 0), true. */
bool ic_store__pairs_replay(struct ic_txn *t,
                            const char *attribute,
                            const char *value,
                            ic_store_statement_fn fn,
                            void *data,
                            int *rc);
void ic_store__pairs_note(struct ic_store__pairs_rec *r,
                          const struct ic_term *p,
                          const struct ic_term *o);
/* Keeps R's statements for (ATTRIBUTE, VALUE) when T may fill the table
 * (R is then empty). */
void ic_store__pairs_keep(struct ic_txn *t,
                          const char *attribute,
                          const char *value,
                          struct ic_store__pairs_rec *r);
void ic_store__pairs_rec_free(struct ic_store__pairs_rec *r);

struct ic_txn {
    struct ic_store *st;
    MDB_txn *txn;
    struct ic_txn *parent; /* of a nested transaction, else NULL */
    bool write;
    bool dirty_counter;
    bool amap_dirty; /* a write touched the attribute map */
    uint8_t
        amap_state; /* 0 predicates unresolved, 1 resolved, 2 not all known */
    uint64_t amap_ids[6]; /* the attribute map's predicates */
    uint64_t attr_gen;    /* a read transaction's ic_store.attr_gen at begin */
    bool label_dirty;     /* a write touched what labels name */
    uint8_t label_state;  /* 0 unresolved, 1 resolved, 2 not all known */
    uint64_t *label_ids;  /* rdf:type, then the label properties */
    size_t n_label_ids;
    uint64_t label_gen;     /* ic_store.label_gen at begin */
    uint64_t next_id;       /* next dictionary counter value */
    uint64_t quads_removed; /* by this transaction (and its children) */
    bool memo_put;          /* it (or a child) kept a memo (memo.c) */
    struct ic_store__tcache cache;
    char *scratch; /* term encodings are built here */
    size_t scratch_cap;
};

/* store.c */
/* The LMDB name of database I (enum ic_store__dbi). */
const char *ic_store__dbi_name(int i);
int ic_store__mdb_err(int rc);
int ic_store__meta_get_u64(struct ic_txn *txn, const char *key, uint64_t *v);
int ic_store__meta_put_u64(struct ic_txn *txn, const char *key, uint64_t v);

/* term.c */
uint64_t ic_store__hash(const void *data, size_t len);
static inline void ic_store__be64(unsigned char *p, uint64_t v)
{
    v = __builtin_bswap64(v);
    memcpy(p, &v, 8);
}
static inline uint64_t ic_store__get_be64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}
/* Encodes TERM into *ENC (a buffer of *CAP bytes, grown as needed); writes
 * the id tag it wants and, for ordered tags, the 48-bit value key. BOOL
 * terms are not encoded: *len is 0 and *inline_id gets the id. */
int ic_store__term_encode(const struct ic_term *term,
                          char **enc,
                          size_t *cap,
                          size_t *len,
                          uint64_t *tag,
                          uint64_t *okey,
                          uint64_t *inline_id);
int ic_store__term_decode(const void *enc, size_t len, struct ic_term *out);
/* Looks up or creates the id of an encoded term. */
int ic_store__term_id_enc(struct ic_txn *txn,
                          char *enc,
                          size_t len,
                          uint64_t tag,
                          uint64_t okey,
                          bool create,
                          bool take_enc,
                          uint64_t *id);
/* Inserts the pending hash2id entries (sorted); called before commit. */
int ic_store__tcache_flush(struct ic_txn *txn);
void ic_store__tcache_free(struct ic_store__tcache *c);
/* Whether C holds the encoded term. */
bool ic_store__tcache_has(struct ic_store__tcache *c,
                          const char *enc,
                          size_t len);
/* Drops the entry of the encoded term (hash H), if C holds it. */
void ic_store__tcache_remove(struct ic_store__tcache *c,
                             uint64_t h,
                             const char *enc,
                             size_t len);
/* After TXN committed: its terms go to its parent's cache (nested) or to
 * the store's (top level). */
void ic_store__tcache_commit(struct ic_txn *txn);
/* Numeric value of a literal of an ordered type, for exact comparisons at
 * the edges of a range scan. */
int ic_store__ordered_value(const char *lex,
                            const char *datatype,
                            uint64_t *tag,
                            long double *value);
uint64_t ic_store__okey(long double v);
/* Whether DT is one of the numeric datatypes (integer family, decimal,
 * double, float). */
bool ic_store__is_numeric_type(const char *dt);

/* A growable array of ids. */
struct ic_store__ids {
    uint64_t *v;
    size_t n, cap;
};

/* Which positions of an (s, p, o, g) quadruple form an index entry: the
 * 8-byte key first, then the value's ids. */
struct ic_store__order {
    int pos[4];
    int n;
};

/* quad.c */
/* Appends the WIDTH ids of each value of KEY in DBI to OUT. */
int ic_store__dup_ids(struct ic_txn *txn,
                      int dbi,
                      uint64_t key,
                      size_t width,
                      struct ic_store__ids *out);
int ic_store__graph_clear_id(struct ic_txn *txn, uint64_t g);
/* Makes graph G hold exactly the N quads of Q (all in G), touching only
 * what differs: the quads G holds and Q lacks are removed here; Q is left
 * with the *N_ADD quads G lacks (sorted, without duplicates), for the
 * caller to add. Q is reordered. */
int ic_store__graph_replace_id(
    struct ic_txn *txn, uint64_t g, uint64_t (*q)[4], size_t n, size_t *n_add);

/* bulk.c */
/* Inserts N entries, given as quadruples read in order O, into DBI. Q is
 * permuted. */
int ic_store__put_bulk(struct ic_txn *txn,
                       int dbi,
                       uint64_t (*q)[4],
                       size_t n,
                       const struct ic_store__order *o);
/* Adds N quads to every index. Q is permuted. */
int ic_store__quads_add_bulk(struct ic_txn *txn, uint64_t (*q)[4], size_t n);

#endif /* IC_STORE_INT_H */
