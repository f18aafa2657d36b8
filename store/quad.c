/*
 * quad.c - the four quad indexes: adding and removing quads (one at a time
 * or sorted in bulk so inserts append), clearing a graph, and pattern
 * iteration.
 *
 *   spo  s -> p|o     pos  p -> o|s       (one entry per distinct triple)
 *   osp  o -> s|p|g   gspo g -> s|p|o     (one entry per quad)
 *
 * A triple stays in spo/pos while any graph holds it: removing a quad asks
 * osp whether another graph still has (s, p, o).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

static void
put_ids(unsigned char *p, uint64_t a, uint64_t b, uint64_t c, uint64_t d, int n)
{
    uint64_t v[4] = {a, b, c, d};
    for (int i = 0; i < n; i++)
        ic_store__be64(p + 8 * i, v[i]);
}

static int
put_one(struct ic_txn *t, int dbi, const unsigned char *rec, size_t vlen)
{
    MDB_val k = {8, (void *)rec}, v = {vlen, (void *)(rec + 8)};
    int rc = mdb_put(t->txn, t->st->dbi[dbi], &k, &v, MDB_NODUPDATA);

    return rc == MDB_KEYEXIST ? 0 : ic_store__mdb_err(rc);
}

static int
del_one(struct ic_txn *t, int dbi, const unsigned char *rec, size_t vlen)
{
    MDB_val k = {8, (void *)rec}, v = {vlen, (void *)(rec + 8)};
    int rc = mdb_del(t->txn, t->st->dbi[dbi], &k, &v);

    return rc == MDB_NOTFOUND ? 0 : ic_store__mdb_err(rc);
}

/* Whether any graph still holds triple (s, p, o). */
static int triple_held(struct ic_txn *t,
                       const unsigned char *o,
                       const unsigned char *sp,
                       bool *held)
{
    MDB_cursor *cur;
    unsigned char vb[24];
    MDB_val k = {8, (void *)o}, v = {24, vb};
    int rc;

    memcpy(vb, sp, 16);
    memset(vb + 16, 0, 8);
    rc = mdb_cursor_open(t->txn, t->st->dbi[DBI_OSP], &cur);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE);
    *held = rc == 0 && memcmp(v.mv_data, sp, 16) == 0;
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : ic_store__mdb_err(rc);
}

/* Removes quad (s,p,o,g) from osp and, when no other graph holds the
 * triple, from spo and pos. gspo is the caller's business. */
static int
unindex(struct ic_txn *t, uint64_t s, uint64_t p, uint64_t o, uint64_t g)
{
    unsigned char r[32];
    bool held;
    int rc;

    put_ids(r, o, s, p, g, 4);
    rc = del_one(t, DBI_OSP, r, 24);
    if (rc == 0)
        rc = triple_held(t, r, r + 8, &held);
    if (rc != 0 || held)
        return rc;
    put_ids(r, s, p, o, 0, 3);
    rc = del_one(t, DBI_SPO, r, 16);
    if (rc != 0)
        return rc;
    put_ids(r, p, o, s, 0, 3);
    return del_one(t, DBI_POS, r, 16);
}

int ic_store_quad_add_ids(struct ic_txn *t, const uint64_t q[4])
{
    unsigned char r[32];
    int rc;

    if (!t->write)
        return IC_EREADONLY;
    put_ids(r, q[3], q[0], q[1], q[2], 4);
    rc = put_one(t, DBI_GSPO, r, 24);
    if (rc != 0)
        return rc;
    put_ids(r, q[2], q[0], q[1], q[3], 4);
    rc = put_one(t, DBI_OSP, r, 24);
    if (rc != 0)
        return rc;
    put_ids(r, q[0], q[1], q[2], 0, 3);
    rc = put_one(t, DBI_SPO, r, 16);
    if (rc != 0)
        return rc;
    put_ids(r, q[1], q[2], q[0], 0, 3);
    return put_one(t, DBI_POS, r, 16);
}

int ic_store_quad_remove_ids(struct ic_txn *t, const uint64_t q[4])
{
    unsigned char r[32];
    MDB_val k = {8, r}, v = {24, r + 8};
    int rc;

    if (!t->write)
        return IC_EREADONLY;
    put_ids(r, q[3], q[0], q[1], q[2], 4);
    rc = mdb_del(t->txn, t->st->dbi[DBI_GSPO], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return ic_store__mdb_err(rc);
    return unindex(t, q[0], q[1], q[2], q[3]);
}

static int quad_ids(struct ic_txn *t,
                    const struct ic_term *q[4],
                    bool create,
                    uint64_t ids[4])
{
    for (int i = 0; i < 4; i++) {
        int rc = ic_store_term_id(t, q[i], create, &ids[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int ic_store_quad_add(struct ic_txn *t, const struct ic_term *q[4])
{
    uint64_t ids[4];
    int rc = quad_ids(t, q, true, ids);

    return rc != 0 ? rc : ic_store_quad_add_ids(t, ids);
}

int ic_store_quad_remove(struct ic_txn *t, const struct ic_term *q[4])
{
    uint64_t ids[4];
    int rc = quad_ids(t, q, false, ids);

    if (rc == IC_ENOTFOUND)
        return 0;
    return rc != 0 ? rc : ic_store_quad_remove_ids(t, ids);
}

int ic_store__graph_clear_id(struct ic_txn *t, uint64_t g)
{
    MDB_cursor *cur;
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    int rc;

    ic_store__be64(kb, g);
    rc = mdb_cursor_open(t->txn, t->st->dbi[DBI_GSPO], &cur);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        const unsigned char *d = v.mv_data;
        int r = unindex(t, ic_store__get_be64(d), ic_store__get_be64(d + 8),
                        ic_store__get_be64(d + 16), g);
        if (r != 0) {
            mdb_cursor_close(cur);
            return r;
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return ic_store__mdb_err(rc);
    rc = mdb_del(t->txn, t->st->dbi[DBI_GSPO], &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : ic_store__mdb_err(rc);
}

int ic_store_graph_clear(struct ic_txn *t, const char *graph_iri)
{
    struct ic_term g = ic_term_iri(graph_iri);
    uint64_t id;
    int rc;

    if (!t->write)
        return IC_EREADONLY;
    rc = ic_store_term_id(t, &g, false, &id);
    if (rc == IC_ENOTFOUND)
        return 0;
    return rc != 0 ? rc : ic_store__graph_clear_id(t, id);
}

/* Bulk insertion
 *
 * The quads are sorted in each index's order with a natural merge sort
 * (input grouped by subject is already nearly in spo and gspo order, so
 * those sorts are close to one linear pass), then inserted in that order,
 * appending while they lie beyond the database's last entry. */

struct qorder {
    int pos[4]; /* the key's position, then the value's; -1 ends */
    int n;      /* 3 for triple-level indexes, 4 for quad-level */
};

static inline int
qcmp(const uint64_t *a, const uint64_t *b, const struct qorder *o)
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
                  const struct qorder *o)
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

/* Sorts Q in order O; returns Q or TMP, whichever holds the result. */
static uint64_t (*sort_quads(
    uint64_t (*q)[4], uint64_t (*tmp)[4], size_t n, const struct qorder *o))[4]
{
    size_t *runs = ic_malloc((n + 2) * sizeof *runs), nr = 0;

    runs[nr++] = 0;
    for (size_t i = 1; i < n; i++)
        if (qcmp(q[i - 1], q[i], o) > 0)
            runs[nr++] = i;
    runs[nr] = n;
    while (nr > 1) {
        size_t w = 0, r;
        for (r = 0; r + 1 < nr; r += 2) {
            merge(q, tmp, runs[r], runs[r + 1], runs[r + 2], o);
            runs[w++] = runs[r];
        }
        if (r < nr) {
            memcpy(tmp[runs[r]], q[runs[r]], (runs[nr] - runs[r]) * sizeof *q);
            runs[w++] = runs[r];
        }
        runs[w] = n;
        nr = w;
        {
            uint64_t(*t)[4] = q;
            q = tmp;
            tmp = t;
        }
    }
    ic_free(runs);
    return q;
}

/* Inserts quads sorted in order O into index DBI. */
static int put_sorted(struct ic_txn *t,
                      int dbi,
                      uint64_t (*q)[4],
                      size_t n,
                      const struct qorder *o)
{
    size_t rl = (size_t)o->n * 8, vlen = rl - 8;
    unsigned char last[32], r[32];
    bool have_last;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    rc = mdb_cursor_open(t->txn, t->st->dbi[dbi], &cur);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    have_last = mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0;
    if (have_last) {
        memcpy(last, k.mv_data, 8);
        memcpy(last + 8, v.mv_data, vlen);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned flags = MDB_NODUPDATA;
        if (i > 0 && qcmp(q[i], q[i - 1], o) == 0)
            continue;
        for (int j = 0; j < o->n; j++)
            ic_store__be64(r + 8 * j, q[i][o->pos[j]]);
        if (!have_last || memcmp(r, last, 8) > 0)
            flags = MDB_APPEND;
        else if (memcmp(r, last, 8) == 0 && memcmp(r, last, rl) > 0)
            flags = MDB_APPENDDUP;
        k.mv_size = 8;
        k.mv_data = r;
        v.mv_size = vlen;
        v.mv_data = r + 8;
        rc = mdb_cursor_put(cur, &k, &v, flags);
        if (rc == MDB_KEYEXIST) {
            rc = 0;
            continue;
        }
        if (rc != 0)
            break;
        if (flags != MDB_NODUPDATA) {
            memcpy(last, r, rl);
            have_last = true;
        }
    }
    mdb_cursor_close(cur);
    return ic_store__mdb_err(rc);
}

int ic_store__quads_add_bulk(struct ic_txn *t, uint64_t (*q)[4], size_t n)
{
    static const struct qorder orders[4] = {
        {{3, 0, 1, 2}, 4},  /* gspo */
        {{0, 1, 2, -1}, 3}, /* spo */
        {{2, 0, 1, 3}, 4},  /* osp */
        {{1, 2, 0, -1}, 3}, /* pos */
    };
    static const int dbis[4] = {DBI_GSPO, DBI_SPO, DBI_OSP, DBI_POS};
    uint64_t(*orig)[4] = q, (*tmp)[4];
    int rc = 0;

    if (!t->write)
        return IC_EREADONLY;
    if (n == 0)
        return 0;
    tmp = ic_malloc(n * sizeof *tmp);
    for (int x = 0; x < 4 && rc == 0; x++) {
        uint64_t(*sorted)[4] = sort_quads(q, tmp, n, &orders[x]);
        if (sorted != q) {
            tmp = q;
            q = sorted;
        }
        rc = put_sorted(t, dbis[x], q, n, &orders[x]);
    }
    /* The caller frees its own array; free the other one. */
    ic_free(q == orig ? tmp : q);
    return rc;
}

/* Iteration */

enum iter_index { IT_GSPO, IT_SPO, IT_OSP, IT_POS };

struct ic_store_iter {
    struct ic_txn *txn;
    uint64_t pat[4];
    enum iter_index index;
    MDB_cursor *cur;
    MDB_cursor *osp; /* graphs of a triple from spo/pos */
    bool started;
    bool expanding;
    uint64_t cur_spo[3];
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

/* Next graph of the current triple, from osp. */
static int next_graph(struct ic_store_iter *it, uint64_t quad[4])
{
    unsigned char kb[8], vb[24];
    MDB_val k = {8, kb}, v = {24, vb};
    int rc;

    if (!it->expanding) {
        ic_store__be64(kb, it->cur_spo[2]);
        put_ids(vb, it->cur_spo[0], it->cur_spo[1], 0, 0, 3);
        rc = mdb_cursor_get(it->osp, &k, &v, MDB_GET_BOTH_RANGE);
        it->expanding = true;
    } else {
        rc = mdb_cursor_get(it->osp, &k, &v, MDB_NEXT_DUP);
    }
    if (rc == 0) {
        const unsigned char *d = v.mv_data;
        if (ic_store__get_be64(d) == it->cur_spo[0] &&
            ic_store__get_be64(d + 8) == it->cur_spo[1]) {
            quad[0] = it->cur_spo[0];
            quad[1] = it->cur_spo[1];
            quad[2] = it->cur_spo[2];
            quad[3] = ic_store__get_be64(d + 16);
            return 0;
        }
    } else if (rc != MDB_NOTFOUND) {
        return ic_store__mdb_err(rc);
    }
    it->expanding = false;
    return IC_EEND;
}

static bool matches(const uint64_t *pat, const uint64_t *q)
{
    for (int i = 0; i < 4; i++)
        if (pat[i] && pat[i] != q[i])
            return false;
    return true;
}

static int primary_next(struct ic_store_iter *it, uint64_t q[4])
{
    static const int keypos[4] = {3, 0, 2, 1};
    static const int valpos[4][3] = {
        {0, 1, 2}, {1, 2, -1}, {0, 1, 3}, {2, 0, -1}};
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    int kp = keypos[it->index];
    int rc;

    if (!it->started) {
        it->started = true;
        if (it->pat[kp]) {
            ic_store__be64(kb, it->pat[kp]);
            rc = mdb_cursor_get(it->cur, &k, &v, MDB_SET_KEY);
        } else {
            rc = mdb_cursor_get(it->cur, &k, &v, MDB_FIRST);
        }
    } else {
        rc = mdb_cursor_get(it->cur, &k, &v,
                            it->pat[kp] ? MDB_NEXT_DUP : MDB_NEXT);
    }
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
        if (it->expanding) {
            rc = next_graph(it, quad);
            if (rc != IC_EEND)
                return rc;
        }
        rc = primary_next(it, q);
        if (rc != 0)
            return rc;
        if (it->index == IT_SPO || it->index == IT_POS) {
            uint64_t pat3[4] = {it->pat[0], it->pat[1], it->pat[2], 0};
            if (!matches(pat3, q))
                continue;
            memcpy(it->cur_spo, q, 3 * sizeof *q);
            rc = next_graph(it, quad);
            if (rc != IC_EEND)
                return rc;
            continue;
        }
        if (matches(it->pat, q)) {
            memcpy(quad, q, sizeof q);
            return 0;
        }
    }
}
