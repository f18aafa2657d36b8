/*
 * quad.c - the quad indexes: adding and removing quads (one at a time or
 * sorted in bulk so that inserts append), and clearing a graph.
 *
 *   spo  s -> p|o     pos  p -> o|s    (one entry per distinct triple)
 *   osp  o -> s|p|g   gspo g -> s|p|o  (one entry per quad each)
 *
 * A triple stays in spo/pos while any graph holds it: removing a quad asks
 * osp whether another graph still has (s, p, o). gspo is what a graph
 * holds, read in one range to replace or clear the graph.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

static void put_ids(unsigned char *p, const uint64_t *ids, int n);
static void put_ids(unsigned char *p, const uint64_t *ids, int n)
{
    for (int i = 0; i < n; i++)
        ic_store__be64(p + 8 * i, ids[i]);
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

/* Whether any graph still holds triple (s, p, o): R holds o|s|p. */
static int triple_held(struct ic_txn *t, const unsigned char *r, bool *held)
{
    MDB_cursor *cur;
    unsigned char vb[24];
    MDB_val k = {8, (void *)r}, v = {24, vb};
    int rc;

    memcpy(vb, r + 8, 16);
    memset(vb + 16, 0, 8);
    rc = mdb_cursor_open(t->txn, t->st->dbi[DBI_OSP], &cur);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE);
    *held = rc == 0 && memcmp(v.mv_data, r + 8, 16) == 0;
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : ic_store__mdb_err(rc);
}

/* Removes quad (s,p,o,g) from osp and gspo and, when no other graph holds
 * the triple, from spo and pos. */
static int unindex(struct ic_txn *t, const uint64_t q[4])
{
    const uint64_t ospg[4] = {q[2], q[0], q[1], q[3]};
    const uint64_t gspo[4] = {q[3], q[0], q[1], q[2]};
    const uint64_t spo[3] = {q[0], q[1], q[2]};
    const uint64_t pos[3] = {q[1], q[2], q[0]};
    unsigned char r[32];
    MDB_val k = {8, r}, v = {24, r + 8};
    bool held;
    int rc;

    ic_store__amap_touch(t, q[1]);
    put_ids(r, ospg, 4);
    rc = mdb_del(t->txn, t->st->dbi[DBI_OSP], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0; /* no such quad */
    if (rc != 0)
        return ic_store__mdb_err(rc);
    t->quads_removed++;
    rc = triple_held(t, r, &held);
    if (rc == 0) {
        put_ids(r, gspo, 4);
        rc = del_one(t, DBI_GSPO, r, 24);
    }
    if (rc != 0 || held)
        return rc;
    put_ids(r, spo, 3);
    rc = del_one(t, DBI_SPO, r, 16);
    if (rc != 0)
        return rc;
    put_ids(r, pos, 3);
    return del_one(t, DBI_POS, r, 16);
}

int ic_store_quad_add_ids(struct ic_txn *t, const uint64_t q[4])
{
    const uint64_t ospg[4] = {q[2], q[0], q[1], q[3]};
    const uint64_t gspo[4] = {q[3], q[0], q[1], q[2]};
    const uint64_t spo[3] = {q[0], q[1], q[2]};
    const uint64_t pos[3] = {q[1], q[2], q[0]};
    unsigned char r[32];
    MDB_val k = {8, r}, v = {24, r + 8};
    int rc;

    if (!t->write)
        return IC_EREADONLY;
    ic_store__amap_touch(t, q[1]);
    put_ids(r, ospg, 4);
    rc = mdb_put(t->txn, t->st->dbi[DBI_OSP], &k, &v, MDB_NODUPDATA);
    if (rc == MDB_KEYEXIST)
        return 0; /* the quad is there */
    if (rc != 0)
        return ic_store__mdb_err(rc);
    put_ids(r, gspo, 4);
    rc = put_one(t, DBI_GSPO, r, 24);
    if (rc != 0)
        return rc;
    put_ids(r, spo, 3);
    rc = put_one(t, DBI_SPO, r, 16);
    if (rc != 0)
        return rc;
    put_ids(r, pos, 3);
    return put_one(t, DBI_POS, r, 16);
}

int ic_store_quad_remove_ids(struct ic_txn *t, const uint64_t q[4])
{
    if (!t->write)
        return IC_EREADONLY;
    return unindex(t, q);
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

int ic_store__dup_ids(struct ic_txn *t,
                      int dbi,
                      uint64_t key,
                      size_t width,
                      struct ic_store__ids *out)
{
    MDB_cursor *cur;
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    int rc;

    ic_store__be64(kb, key);
    rc = mdb_cursor_open(t->txn, t->st->dbi[dbi], &cur);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        if (out->n + width > out->cap) {
            out->cap = out->cap ? out->cap * 2 : 64;
            out->v = ic_realloc(out->v, out->cap * sizeof *out->v);
        }
        for (size_t j = 0; j < width; j++)
            out->v[out->n++] =
                ic_store__get_be64((unsigned char *)v.mv_data + 8 * j);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : ic_store__mdb_err(rc);
}

/* The (s, p, o) of every quad of graph G, three ids each, into OUT. */
static int
graph_triples(struct ic_txn *t, uint64_t g, struct ic_store__ids *out)
{
    return ic_store__dup_ids(t, DBI_GSPO, g, 3, out);
}

int ic_store__graph_clear_id(struct ic_txn *t, uint64_t g)
{
    struct ic_store__ids held = {0};
    unsigned char kb[8];
    MDB_val k = {8, kb};
    int rc = graph_triples(t, g, &held);

    for (size_t i = 0; i + 2 < held.n && rc == 0; i += 3) {
        const uint64_t q[4] = {held.v[i], held.v[i + 1], held.v[i + 2], g};
        rc = unindex(t, q);
    }
    ic_free(held.v);
    if (rc != 0)
        return rc;
    ic_store__be64(kb, g); /* emptied by unindex; nothing left to find */
    rc = mdb_del(t->txn, t->st->dbi[DBI_GSPO], &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : ic_store__mdb_err(rc);
}

static int cmp_spo(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;

    for (int i = 0; i < 3; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

/* Q in (s, p, o) order: the few triples of a description by insertion
 * (no call per comparison, nearly sorted input costs nearly nothing),
 * larger graphs by qsort. */
static void sort_spo(uint64_t (*q)[4], size_t n)
{
    if (n > 48) {
        qsort(q, n, sizeof *q, cmp_spo);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        uint64_t x[4];
        size_t j = i;
        memcpy(x, q[i], sizeof x);
        for (; j > 0 && cmp_spo(q[j - 1], x) > 0; j--)
            memcpy(q[j], q[j - 1], sizeof x);
        memcpy(q[j], x, sizeof x);
    }
}

int ic_store__graph_replace_id(
    struct ic_txn *t, uint64_t g, uint64_t (*q)[4], size_t n, size_t *n_add)
{
    struct ic_store__ids old = {0};
    size_t i = 0, j = 0, keep = 0;
    int rc = graph_triples(t, g, &old); /* what G holds now */

    /* both sides in (s, p, o) order (OLD is: gspo's duplicates are
     * big-endian ids compared bytewise); Q's duplicates dropped */
    sort_spo(q, n);
    while (rc == 0 && (i < old.n || j < n)) {
        int c = i >= old.n ? 1 : j >= n ? -1 : cmp_spo(old.v + i, q[j]);
        if (c < 0) { /* held, no longer wanted */
            const uint64_t x[4] = {old.v[i], old.v[i + 1], old.v[i + 2], g};
            rc = ic_store_quad_remove_ids(t, x);
            i += 3;
            continue;
        }
        if (c > 0 && (keep == 0 || cmp_spo(q[keep - 1], q[j]) != 0))
            memmove(q[keep++], q[j], sizeof *q); /* wanted, not held */
        if (c == 0)
            i += 3;
        j++;
    }
    ic_free(old.v);
    *n_add = keep;
    return rc;
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
