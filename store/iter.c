/*
 * iter.c - pattern iteration over quads. The index is chosen from the bound
 * positions:
 *
 *   g bound, or nothing   gspo directly
 *   s bound               spo, then the graphs of each triple from osp
 *   o bound               osp directly
 *   p bound               pos, then the graphs from osp
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

enum iter_index { IT_GSPO, IT_SPO, IT_OSP, IT_POS };

struct ic_store_iter {
    struct ic_txn *txn;
    uint64_t pat[4];
    enum iter_index index;
    MDB_cursor *cur; /* the primary index */
    MDB_cursor *osp; /* IT_SPO, IT_POS: finding graphs */
    bool started;
    bool inner; /* inside the inner loop (the graphs of a triple) */
    bool inner_started;
    uint64_t cur_q[4];
};

int ic_store_iter_new(struct ic_txn *t,
                      const uint64_t pattern[4],
                      struct ic_store_iter **out)
{
    static const int dbis[4] = {DBI_GSPO, DBI_SPO, DBI_OSP, DBI_POS};
    struct ic_store_iter *it = ic_calloc(1, sizeof *it);
    int rc;

    it->txn = t;
    memcpy(it->pat, pattern, sizeof it->pat);
    if (pattern[3])
        it->index = IT_GSPO;
    else if (pattern[0])
        it->index = IT_SPO;
    else if (pattern[2])
        it->index = IT_OSP;
    else if (pattern[1])
        it->index = IT_POS;
    else
        it->index = IT_GSPO;
    rc = mdb_cursor_open(t->txn, t->st->dbi[dbis[it->index]], &it->cur);
    if (rc == 0 && (it->index == IT_SPO || it->index == IT_POS))
        rc = mdb_cursor_open(t->txn, t->st->dbi[DBI_OSP], &it->osp);
    if (rc != 0) {
        ic_store_iter_free(it);
        return ic_store__mdb_err(rc);
    }
    *out = it;
    return 0;
}

void ic_store_iter_free(struct ic_store_iter *it)
{
    if (it == NULL)
        return;
    if (it->cur != NULL)
        mdb_cursor_close(it->cur);
    if (it->osp != NULL)
        mdb_cursor_close(it->osp);
    ic_free(it);
}

static bool matches(const uint64_t *pat, const uint64_t *q, int n)
{
    for (int i = 0; i < n; i++)
        if (pat[i] && pat[i] != q[i])
            return false;
    return true;
}

/* Moves CUR to the first (or next) entry: within KEY's duplicates when KEY
 * is non-zero, else over the whole database. */
static int
step(MDB_cursor *cur, bool first, uint64_t key, MDB_val *k, MDB_val *v)
{
    unsigned char b[8];

    if (!first)
        return mdb_cursor_get(cur, k, v, key ? MDB_NEXT_DUP : MDB_NEXT);
    if (key == 0)
        return mdb_cursor_get(cur, k, v, MDB_FIRST);
    ic_store__be64(b, key);
    k->mv_size = 8;
    k->mv_data = b;
    return mdb_cursor_get(cur, k, v, MDB_SET_KEY);
}

/* IT_SPO, IT_POS: the next graph of the current triple, from osp. */
static int next_graph(struct ic_store_iter *it, uint64_t quad[4])
{
    unsigned char kb[8], vb[24];
    MDB_val k = {8, kb}, v = {24, vb};
    int rc;

    if (!it->inner_started) {
        const uint64_t sp[3] = {it->cur_q[0], it->cur_q[1], 0};
        ic_store__be64(kb, it->cur_q[2]);
        for (int i = 0; i < 3; i++)
            ic_store__be64(vb + 8 * i, sp[i]);
        rc = mdb_cursor_get(it->osp, &k, &v, MDB_GET_BOTH_RANGE);
        it->inner_started = true;
    } else {
        rc = mdb_cursor_get(it->osp, &k, &v, MDB_NEXT_DUP);
    }
    if (rc == 0) {
        const unsigned char *d = v.mv_data;
        if (ic_store__get_be64(d) == it->cur_q[0] &&
            ic_store__get_be64(d + 8) == it->cur_q[1]) {
            memcpy(quad, it->cur_q, 3 * sizeof *quad);
            quad[3] = ic_store__get_be64(d + 16);
            return 0;
        }
    } else if (rc != MDB_NOTFOUND) {
        return ic_store__mdb_err(rc);
    }
    it->inner = false;
    return IC_EEND;
}

/* The next entry of the primary index, decoded into a quad. */
static int primary_next(struct ic_store_iter *it, uint64_t q[4])
{
    static const int keypos[4] = {3, 0, 2, 1};
    static const int valpos[4][3] = {
        {0, 1, 2}, {1, 2, -1}, {0, 1, 3}, {2, 0, -1}};
    int kp = keypos[it->index];
    MDB_val k, v;
    int rc;

    rc = step(it->cur, !it->started, it->pat[kp], &k, &v);
    it->started = true;
    if (rc == MDB_NOTFOUND)
        return IC_EEND;
    if (rc != 0)
        return ic_store__mdb_err(rc);
    memset(q, 0, 4 * sizeof *q);
    q[kp] = ic_store__get_be64(k.mv_data);
    for (int j = 0; j < 3 && valpos[it->index][j] >= 0; j++)
        q[valpos[it->index][j]] =
            ic_store__get_be64((unsigned char *)v.mv_data + 8 * j);
    return 0;
}

int ic_store_iter_next(struct ic_store_iter *it, uint64_t quad[4])
{
    uint64_t q[4];
    int rc;

    for (;;) {
        if (it->inner) {
            rc = next_graph(it, quad);
            if (rc != IC_EEND)
                return rc;
        }
        rc = primary_next(it, q);
        if (rc != 0)
            return rc;
        if (it->index == IT_OSP || it->index == IT_GSPO) {
            if (matches(it->pat, q, 4)) {
                memcpy(quad, q, sizeof q);
                return 0;
            }
            continue;
        }
        if (!matches(it->pat, q, 3))
            continue;
        memcpy(it->cur_q, q, sizeof q);
        it->inner = true;
        it->inner_started = false;
    }
}
