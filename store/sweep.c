/*
 * sweep.c - removing dictionary terms that no quad uses any more.
 *
 * A republished description replaces only the quads that differ, so the
 * values it no longer holds (an old price, an old timestamp) stay in the
 * dictionary unless something takes them out: left alone, a catalog whose
 * clouds change values grows without bound. The sweep walks the
 * dictionary a slice at a time from a cursor kept in the meta database,
 * so it is part of the replicated content: the state machine runs it as
 * a Raft command and every replica removes the same terms (the digests
 * stay equal). A term is in use while any of spo (subject), pos
 * (predicate), osp (object) or gspo (graph) has it as a key.
 *
 * Removing a term removes it from what remembers ids of terms: the
 * transaction's own term cache and its parents', the store's committed
 * terms (and read transactions older than this one stop using those),
 * what the transaction resolved the attribute map's and labels'
 * predicates to. An ordered id freed at the end of its bucket may be
 * given again to another literal later; nothing holds it by then.
 */
#include <string.h>

#include "store_int.h"

/* Whether any quad has ID in any position. */
static int in_use(struct ic_txn *t, uint64_t id, bool *used)
{
    static const int dbis[] = {DBI_SPO, DBI_POS, DBI_OSP, DBI_GSPO};
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;

    ic_store__be64(kb, id);
    for (size_t i = 0; i < IC_ARRAY_LEN(dbis); i++) {
        int rc = mdb_get(t->txn, t->st->dbi[dbis[i]], &k, &v);
        if (rc == 0) {
            *used = true;
            return 0;
        }
        if (rc != MDB_NOTFOUND)
            return ic_store__mdb_err(rc);
    }
    *used = false;
    return 0;
}

/* Removes the term at CUR (id2term) and its hash2id entry, and forgets
 * its id wherever the term caches hold it. */
static int
remove_term(struct ic_txn *t, MDB_cursor *cur, MDB_val *k, MDB_val *v)
{
    uint64_t h = ic_store__hash(v->mv_data, v->mv_size);
    unsigned char hb[8];
    MDB_val hk = {8, hb}, hv = {8, k->mv_data};
    int rc;

    ic_store__memo_clear(t->st); /* the id may be given again */
    ic_store__tcache_remove(&t->st->terms, h, v->mv_data, v->mv_size);
    for (struct ic_txn *a = t; a != NULL; a = a->parent)
        ic_store__tcache_remove(&a->cache, h, v->mv_data, v->mv_size);
    ic_store__be64(hb, h);
    rc = mdb_del(t->txn, t->st->dbi[DBI_HASH2ID], &hk, &hv);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return ic_store__mdb_err(rc);
    return ic_store__mdb_err(mdb_cursor_del(cur, 0));
}

/* After terms went: read transactions older than T stop using the
 * store's term cache (an ordered id may be given again), and T and its
 * parents look the attribute map's and the labels' predicates up again
 * (one of them may have gone, to come back under another id). The
 * store's caches above the dictionary keep what they hold: the pairs
 * keep strings, and the attribute look-ups only ids of terms the
 * attribute map's own quads use (a change of those moves attr_gen). */
static void forget_ids(struct ic_txn *t)
{
    t->st->terms_epoch = mdb_txn_id(t->txn);
    for (struct ic_txn *a = t; a != NULL; a = a->parent) {
        a->amap_state = 0;
        a->label_state = 0;
        ic_free(a->label_ids);
        a->label_ids = NULL;
        a->n_label_ids = 0;
    }
}

int ic_store_sweep_cursor(struct ic_txn *t, uint64_t *next)
{
    int rc = ic_store__meta_get_u64(t, "sweep_next", next);

    if (rc == IC_ENOTFOUND) {
        *next = 0;
        rc = 0;
    }
    return rc;
}

int ic_store_terms_sweep(struct ic_txn *t,
                         uint32_t max,
                         struct ic_store_sweep *out)
{
    struct ic_store_sweep s = {0};
    unsigned char kb[8];
    MDB_cursor *cur;
    MDB_val k = {8, kb}, v;
    uint64_t next = 0, id = 0;
    int rc;

    if (!t->write)
        return IC_EREADONLY;
    /* this transaction's new terms go to hash2id first, so that removing
     * one removes all of it */
    for (struct ic_txn *a = t; a != NULL; a = a->parent) {
        rc = ic_store__tcache_flush(a);
        if (rc != 0)
            return rc;
    }
    rc = ic_store_sweep_cursor(t, &next);
    if (rc != 0)
        return rc;
    rc = mdb_cursor_open(t->txn, t->st->dbi[DBI_ID2TERM], &cur);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    ic_store__be64(kb, next);
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && s.examined < max) {
        bool used = false;
        if (k.mv_size != 8) {
            rc = MDB_CORRUPTED;
            break;
        }
        id = ic_store__get_be64(k.mv_data);
        s.examined++;
        rc = in_use(t, id, &used);
        if (rc != 0)
            break;
        if (!used) {
            rc = remove_term(t, cur, &k, &v);
            if (rc != 0)
                break;
            s.removed++;
        }
        /* after a delete, LMDB's NEXT gives the term that followed */
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND) {
        s.wrapped = true;
        next = 0;
        rc = 0;
    } else if (rc == 0) {
        next = id + 1;
    }
    rc = ic_store__mdb_err(rc);
    if (rc == 0)
        rc = ic_store__meta_put_u64(t, "sweep_next", next);
    if (rc == 0 && s.removed > 0)
        forget_ids(t);
    if (rc == 0 && out != NULL)
        *out = s;
    return rc;
}
