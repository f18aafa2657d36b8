/*
 * bulk.c - sorted bulk insertion into the DUPSORT indexes.
 *
 * Entries are given as id quadruples and an order (which positions form the
 * 8-byte key and the value). They are sorted with a natural merge sort
 * (input grouped by subject is nearly in spo order already, so that sort is
 * close to one linear pass) and inserted in order, appending while they lie
 * beyond the database's last entry. When a load brings at least as many
 * entries as the database holds, the database is rebuilt: old and new
 * entries merged, the database emptied and refilled by appends only, which
 * leaves its pages full instead of half full after mid-page splits.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

static inline int
qcmp(const uint64_t *a, const uint64_t *b, const struct ic_store__order *o)
{
    for (int i = 0; i < o->n; i++) {
        uint64_t x = a[o->pos[i]], y = b[o->pos[i]];
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

static void merge(uint64_t (*src)[4],
                  uint64_t (*dst)[4],
                  size_t lo,
                  size_t mid,
                  size_t hi,
                  const struct ic_store__order *o)
{
    size_t i = lo, j = mid, k = lo;

    while (i < mid && j < hi) {
        if (qcmp(src[j], src[i], o) < 0)
            memcpy(dst[k++], src[j++], sizeof *dst);
        else
            memcpy(dst[k++], src[i++], sizeof *dst);
    }
    memcpy(dst[k], src[i], (mid - i) * sizeof *dst);
    k += mid - i;
    memcpy(dst[k], src[j], (hi - j) * sizeof *dst);
}

/* Sorts *Q in order O using *TMP (both N long); on return *Q holds the
 * sorted entries (the two buffers may have been swapped). */
static void sort_quads(uint64_t (**q)[4],
                       uint64_t (**tmp)[4],
                       size_t n,
                       const struct ic_store__order *o)
{
    size_t *runs = ic_malloc((n + 2) * sizeof *runs), nr = 0;
    uint64_t(*a)[4] = *q, (*b)[4] = *tmp, (*t)[4];

    runs[nr++] = 0;
    for (size_t i = 1; i < n; i++)
        if (qcmp(a[i - 1], a[i], o) > 0)
            runs[nr++] = i;
    runs[nr] = n;
    while (nr > 1) {
        size_t w = 0, r;
        for (r = 0; r + 1 < nr; r += 2) {
            merge(a, b, runs[r], runs[r + 1], runs[r + 2], o);
            runs[w++] = runs[r];
        }
        if (r < nr) {
            memcpy(b[runs[r]], a[runs[r]], (runs[nr] - runs[r]) * sizeof *a);
            runs[w++] = runs[r];
        }
        runs[w] = n;
        nr = w;
        t = a;
        a = b;
        b = t;
    }
    ic_free(runs);
    *q = a;
    *tmp = b;
}

/* Puts the M values (VLEN bytes each, sorted, distinct) of key KB. When
 * they all lie beyond the database's last entry (LAST_KEY, LAST_VAL) they
 * go in with one MDB_MULTIPLE append; otherwise one at a time. */
static int put_group(MDB_cursor *cur,
                     unsigned char *kb,
                     unsigned char *vals,
                     size_t m,
                     size_t vlen,
                     const unsigned char *last,
                     bool have_last)
{
    MDB_val k = {8, kb}, v[2];
    int cmpk = have_last ? memcmp(kb, last, 8) : 1;
    int rc;

    if (cmpk > 0 || (cmpk == 0 && memcmp(vals, last + 8, vlen) > 0)) {
        size_t off = 0;
        if (cmpk > 0) { /* a new last key: its first value appends */
            v[0].mv_size = vlen;
            v[0].mv_data = vals;
            rc = mdb_cursor_put(cur, &k, v, MDB_APPEND);
            if (rc != 0 || m == 1)
                return rc;
            off = 1;
        }
        v[0].mv_size = vlen;
        v[0].mv_data = vals + off * vlen;
        v[1].mv_size = m - off;
        v[1].mv_data = NULL;
        return mdb_cursor_put(cur, &k, v, MDB_MULTIPLE | MDB_APPENDDUP);
    }
    for (size_t i = 0; i < m; i++) {
        v[0].mv_size = vlen;
        v[0].mv_data = vals + i * vlen;
        rc = mdb_cursor_put(cur, &k, v, MDB_NODUPDATA);
        if (rc != 0 && rc != MDB_KEYEXIST)
            return rc;
    }
    return 0;
}

static int put_sorted(struct ic_txn *t,
                      int dbi,
                      uint64_t (*q)[4],
                      size_t n,
                      const struct ic_store__order *o)
{
    size_t vlen = (size_t)o->n * 8 - 8, cap = 0;
    unsigned char last[32], kb[8], *vals = NULL;
    bool have_last;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, cmp;

    rc = mdb_cursor_open(t->txn, t->st->dbi[dbi], &cur);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    have_last = mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0;
    if (have_last) {
        memcpy(last, k.mv_data, 8);
        memcpy(last + 8, v.mv_data, vlen);
    }
    for (size_t i = 0, j; i < n && rc == 0; i = j) {
        uint64_t key = q[i][o->pos[0]];
        size_t m = 0;
        for (j = i; j < n && q[j][o->pos[0]] == key; j++) {
            if (j > i && qcmp(q[j], q[j - 1], o) == 0)
                continue;
            if ((m + 1) * vlen > cap) {
                cap = cap ? cap * 2 : 4096;
                vals = ic_realloc(vals, cap);
            }
            for (int x = 1; x < o->n; x++)
                ic_store__be64(vals + m * vlen + 8 * (size_t)(x - 1),
                               q[j][o->pos[x]]);
            m++;
        }
        ic_store__be64(kb, key);
        rc = put_group(cur, kb, vals, m, vlen, last, have_last);
        cmp = have_last ? memcmp(kb, last, 8) : 1;
        if (rc == 0 && (cmp > 0 || (cmp == 0 && memcmp(vals + (m - 1) * vlen,
                                                       last + 8, vlen) > 0))) {
            memcpy(last, kb, 8);
            memcpy(last + 8, vals + (m - 1) * vlen, vlen);
            have_last = true;
        }
    }
    ic_free(vals);
    mdb_cursor_close(cur);
    return ic_store__mdb_err(rc);
}

/* Reads every entry of DBI into the first M slots of Q. */
static int read_all(struct ic_txn *t,
                    int dbi,
                    uint64_t (*q)[4],
                    size_t m,
                    const struct ic_store__order *o)
{
    size_t vlen = (size_t)o->n * 8 - 8, i = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    rc = mdb_cursor_open(t->txn, t->st->dbi[dbi], &cur);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && i < m;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), i++) {
        if (k.mv_size != 8 || v.mv_size != vlen) {
            rc = MDB_CORRUPTED;
            break;
        }
        memset(q[i], 0, sizeof q[i]);
        q[i][o->pos[0]] = ic_store__get_be64(k.mv_data);
        for (int j = 1; j < o->n; j++)
            q[i][o->pos[j]] =
                ic_store__get_be64((unsigned char *)v.mv_data + 8 * (j - 1));
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND || (rc == 0 && i == m))
        rc = i == m ? 0 : MDB_CORRUPTED;
    return ic_store__mdb_err(rc);
}

int ic_store__put_bulk(struct ic_txn *t,
                       int dbi,
                       uint64_t (*q)[4],
                       size_t n,
                       const struct ic_store__order *o)
{
    uint64_t(*all)[4] = q, (*tmp)[4];
    MDB_stat ms;
    size_t m = 0;
    int rc;

    if (n == 0)
        return 0;
    rc = mdb_stat(t->txn, t->st->dbi[dbi], &ms);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    if (ms.ms_entries > 0 && n >= ms.ms_entries) {
        m = ms.ms_entries;
        all = ic_malloc((m + n) * sizeof *all);
        rc = read_all(t, dbi, all, m, o);
        memcpy(all + m, q, n * sizeof *q);
        if (rc == 0)
            rc = ic_store__mdb_err(mdb_drop(t->txn, t->st->dbi[dbi], 0));
    }
    tmp = ic_malloc((m + n) * sizeof *tmp);
    if (rc == 0) {
        uint64_t(*base)[4] = all;
        sort_quads(&all, &tmp, m + n, o);
        rc = put_sorted(t, dbi, all, m + n, o);
        if (all != base) { /* the sorted copy is in the scratch buffer */
            uint64_t(*x)[4] = all;
            all = tmp;
            tmp = x;
        }
    }
    ic_free(tmp);
    if (all != q)
        ic_free(all);
    return rc;
}

#define SMALL_ADD 4

int ic_store__quads_add_bulk(struct ic_txn *t, uint64_t (*q)[4], size_t n)
{
    static const struct ic_store__order orders[4] = {
        {{2, 0, 1, 3}, 4},  /* osp */
        {{3, 0, 1, 2}, 4},  /* gspo */
        {{0, 1, 2, -1}, 3}, /* spo */
        {{1, 2, 0, -1}, 3}, /* pos */
    };
    static const int dbis[4] = {DBI_OSP, DBI_GSPO, DBI_SPO, DBI_POS};
    int rc = 0;

    if (!t->write)
        return IC_EREADONLY;
    /* a few (a republished description's changed values): one put per
     * index each, without the sort, the scratch arrays and the cursors */
    if (n <= SMALL_ADD) {
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = ic_store_quad_add_ids(t, q[i]);
        return rc;
    }
    for (size_t i = 0; i < n && !(t->amap_dirty && t->label_dirty); i++)
        ic_store__amap_touch(t, q[i][1]);
    for (int x = 0; x < 4 && rc == 0; x++)
        rc = ic_store__put_bulk(t, dbis[x], q, n, &orders[x]);
    return rc;
}
