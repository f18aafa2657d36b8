/*
 * snapshot.c - the store's replicated content as one portable byte stream
 * (format in ic_store.h), its restore in one write transaction, and a
 * digest of it so replicas can be compared.
 *
 * Happy path: write walks every database with a cursor inside the caller's
 * transaction and emits header, sections and a SHA-256 trailer; restore
 * checks the whole stream first (nothing is touched until it passes), then
 * empties each database and loads its records in order.
 *
 * Failure modes: a callback error stops the write and is returned; a bad
 * stream is refused by the check with IC_ECORRUPT/IC_EFORMAT and a reason;
 * an LMDB error during the load is returned and the caller aborts.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "store_int.h"

#define SNAP_MAGIC "ICSNAP\r\n"
#define MAGIC_LEN 8
#define HEADER_LEN (MAGIC_LEN + 4 + 4 + 8 + 4)
#define TRAILER_LEN 32
#define END_OF_DB 0xffffffffu

/* Meta values that belong to the local store, not to the replicated
 * content. */
static bool meta_local(const void *key, size_t len)
{
    return (len == 5 && memcmp(key, "magic", 5) == 0) ||
           (len == 6 && memcmp(key, "format", 6) == 0);
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

/* Output: the hash of everything emitted, and the caller's sink (NULL for
 * the digest, which only hashes). */
struct out {
    EVP_MD_CTX *md;
    ic_store_write_fn fn;
    void *data;
};

static int emit(struct out *o, const void *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (EVP_DigestUpdate(o->md, buf, len) != 1)
        return IC_ENOMEM;
    return o->fn != NULL ? o->fn(o->data, buf, len) : 0;
}

static int emit_blob(struct out *o, const void *buf, size_t len)
{
    unsigned char b[4];
    int rc;

    put_be32(b, (uint32_t)len);
    rc = emit(o, b, 4);
    return rc != 0 ? rc : emit(o, buf, len);
}

static int emit_db(struct out *o, struct ic_txn *t, int i)
{
    const char *name = ic_store__dbi_name(i);
    unsigned char nl = (unsigned char)strlen(name), end[4];
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, mrc;

    rc = emit(o, &nl, 1);
    if (rc == 0)
        rc = emit(o, name, nl);
    if (rc != 0)
        return rc;
    if (!(t->st->absent & (1u << i))) {
        mrc = mdb_cursor_open(t->txn, t->st->dbi[i], &cur);
        if (mrc != 0)
            return ic_store__mdb_err(mrc);
        while ((mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
            if (i == DBI_META && meta_local(k.mv_data, k.mv_size))
                continue;
            rc = emit_blob(o, k.mv_data, k.mv_size);
            if (rc == 0)
                rc = emit_blob(o, v.mv_data, v.mv_size);
            if (rc != 0)
                break;
        }
        mdb_cursor_close(cur);
        if (rc != 0)
            return rc;
        if (mrc != MDB_NOTFOUND)
            return ic_store__mdb_err(mrc);
    }
    put_be32(end, END_OF_DB);
    return emit(o, end, 4);
}

static int emit_sections(struct out *o, struct ic_txn *t)
{
    int rc = 0;

    for (int i = 0; i < DBI__COUNT && rc == 0; i++)
        rc = emit_db(o, t, i);
    return rc;
}

int ic_store_snapshot_write(struct ic_txn *t, ic_store_write_fn fn, void *data)
{
    struct out o = {EVP_MD_CTX_new(), fn, data};
    unsigned char h[HEADER_LEN], sum[TRAILER_LEN];
    uint64_t applied;
    int rc;

    if (o.md == NULL || EVP_DigestInit_ex(o.md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(o.md);
        return IC_ENOMEM;
    }
    rc = ic_store_applied_get(t, &applied);
    if (rc == 0) {
        memcpy(h, SNAP_MAGIC, MAGIC_LEN);
        put_be32(h + 8, IC_STORE_SNAPSHOT_VERSION);
        put_be32(h + 12, IC_STORE_FORMAT);
        ic_store__be64(h + 16, applied);
        put_be32(h + 24, DBI__COUNT);
        rc = emit(&o, h, sizeof h);
    }
    if (rc == 0)
        rc = emit_sections(&o, t);
    if (rc == 0 && EVP_DigestFinal_ex(o.md, sum, NULL) != 1)
        rc = IC_ENOMEM;
    if (rc == 0)
        rc = fn(data, sum, sizeof sum);
    EVP_MD_CTX_free(o.md);
    return rc;
}

int ic_store_digest(struct ic_txn *t, unsigned char out[32])
{
    struct out o = {EVP_MD_CTX_new(), NULL, NULL};
    unsigned char sum[32];
    int rc;

    if (o.md == NULL || EVP_DigestInit_ex(o.md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(o.md);
        return IC_ENOMEM;
    }
    rc = emit_sections(&o, t);
    if (rc == 0 && EVP_DigestFinal_ex(o.md, sum, NULL) != 1)
        rc = IC_ENOMEM;
    EVP_MD_CTX_free(o.md);
    if (rc == 0)
        memcpy(out, sum, sizeof sum);
    return rc;
}

/* Reading a stream */

struct rd {
    const unsigned char *p;
    size_t left;
    char *why;
    size_t why_len;
};

static int bad(struct rd *r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(struct rd *r, int rc, const char *fmt, ...)
{
    va_list ap;

    if (r->why != NULL && r->why_len > 0) {
        va_start(ap, fmt);
        vsnprintf(r->why, r->why_len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static const unsigned char *take(struct rd *r, size_t n)
{
    const unsigned char *p = r->p;

    if (n > r->left)
        return NULL;
    r->p += n;
    r->left -= n;
    return p;
}

/* The next blob (length u32 then bytes); *end when it is the end mark. */
static int next_blob(struct rd *r, MDB_val *v, bool *end)
{
    const unsigned char *p = take(r, 4);
    uint32_t n;

    if (p == NULL)
        return bad(r, IC_ECORRUPT, "snapshot truncated");
    n = get_be32(p);
    *end = n == END_OF_DB;
    if (*end)
        return 0;
    v->mv_size = n;
    v->mv_data = (void *)take(r, n);
    if (v->mv_data == NULL)
        return bad(r, IC_ECORRUPT, "snapshot truncated (record of %u bytes)",
                   (unsigned)n);
    return 0;
}

/* Checks section I's name; leaves R at its first record. */
static int section_start(struct rd *r, int i)
{
    const char *name = ic_store__dbi_name(i);
    const unsigned char *p = take(r, 1);
    const unsigned char *n;

    if (p == NULL)
        return bad(r, IC_ECORRUPT, "snapshot truncated before '%s'", name);
    n = take(r, *p);
    if (n == NULL)
        return bad(r, IC_ECORRUPT, "snapshot truncated in a database name");
    if (*p != strlen(name) || memcmp(n, name, *p) != 0)
        return bad(r, IC_ECORRUPT, "snapshot section %d is not '%s'", i, name);
    return 0;
}

/* Records come sorted: append, but in meta, which keeps its local values
 * (a sorted stream that is not LMDB's order fails with IC_EEXIST). */
static unsigned put_flags(struct ic_txn *t, int i)
{
    unsigned f = 0;

    if (i == DBI_META)
        return 0;
    if (mdb_dbi_flags(t->txn, t->st->dbi[i], &f) != 0)
        return 0;
    return (f & MDB_DUPSORT) ? MDB_APPENDDUP : MDB_APPEND;
}

/* Walks section I; with T, loads its records into T. */
static int section_walk(struct rd *r, int i, struct ic_txn *t)
{
    MDB_val k, v;
    bool end;
    int rc;

    rc = section_start(r, i);
    for (;;) {
        if (rc == 0)
            rc = next_blob(r, &k, &end);
        if (rc != 0 || end)
            return rc;
        rc = next_blob(r, &v, &end);
        if (rc == 0 && end)
            rc = bad(r, IC_ECORRUPT, "snapshot record without a value");
        if (rc == 0 && k.mv_size == 0)
            rc = bad(r, IC_ECORRUPT, "snapshot record with an empty key");
        if (rc == 0 && i == DBI_META && meta_local(k.mv_data, k.mv_size))
            rc = bad(r, IC_ECORRUPT, "snapshot holds a local meta value");
        if (rc == 0 && t != NULL) {
            rc = ic_store__mdb_err(
                mdb_put(t->txn, t->st->dbi[i], &k, &v, put_flags(t, i)));
            if (rc != 0)
                rc = bad(r, rc == IC_EEXIST ? IC_ECORRUPT : rc,
                         "snapshot load of '%s': %s", ic_store__dbi_name(i),
                         ic_strerror(rc));
        }
    }
}

static int check_header(struct rd *r, uint64_t *applied)
{
    const unsigned char *h = take(r, HEADER_LEN);
    uint32_t version, format, n;

    if (h == NULL || memcmp(h, SNAP_MAGIC, MAGIC_LEN) != 0)
        return bad(r, IC_ECORRUPT, "not an icroot snapshot (no magic)");
    version = get_be32(h + 8);
    format = get_be32(h + 12);
    n = get_be32(h + 24);
    if (version != IC_STORE_SNAPSHOT_VERSION)
        return bad(r, IC_EFORMAT, "snapshot version %u, this build reads %d",
                   (unsigned)version, IC_STORE_SNAPSHOT_VERSION);
    if (format != IC_STORE_FORMAT)
        return bad(r, IC_EFORMAT, "snapshot of store format %u, ours is %d",
                   (unsigned)format, IC_STORE_FORMAT);
    if (n != DBI__COUNT)
        return bad(r, IC_ECORRUPT, "snapshot holds %u databases, not %d",
                   (unsigned)n, DBI__COUNT);
    *applied = ic_store__get_be64(h + 16);
    return 0;
}

static int check_sum(struct rd *r, const void *buf, size_t len)
{
    unsigned char sum[32];
    unsigned int n = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok;

    ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(md, buf, len - TRAILER_LEN) == 1 &&
         EVP_DigestFinal_ex(md, sum, &n) == 1 && n == sizeof sum;
    EVP_MD_CTX_free(md);
    if (!ok)
        return IC_ENOMEM;
    if (memcmp(sum, (const unsigned char *)buf + len - TRAILER_LEN, 32) != 0)
        return bad(r, IC_ECORRUPT, "snapshot checksum mismatch");
    return 0;
}

int ic_store_snapshot_check(
    const void *buf, size_t len, uint64_t *applied, char *why, size_t why_len)
{
    struct rd r = {buf, len, why, why_len};
    uint64_t a = 0;
    int rc;

    if (len < HEADER_LEN + TRAILER_LEN)
        return bad(&r, IC_ECORRUPT, "snapshot truncated (%zu bytes)", len);
    rc = check_header(&r, &a);
    if (rc == 0)
        rc = check_sum(&r, buf, len);
    r.left -= TRAILER_LEN;
    for (int i = 0; i < DBI__COUNT && rc == 0; i++)
        rc = section_walk(&r, i, NULL);
    if (rc == 0 && r.left != 0)
        rc = bad(&r, IC_ECORRUPT, "snapshot has %zu stray bytes", r.left);
    if (rc == 0 && applied != NULL)
        *applied = a;
    return rc;
}

/* Empties database I (meta keeps its local values). */
static int empty_db(struct ic_txn *t, int i)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    if (i != DBI_META)
        return ic_store__mdb_err(mdb_drop(t->txn, t->st->dbi[i], 0));
    rc = mdb_cursor_open(t->txn, t->st->dbi[i], &cur);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        if (meta_local(k.mv_data, k.mv_size))
            continue;
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : ic_store__mdb_err(rc);
}

int ic_store_snapshot_restore(
    struct ic_txn *t, const void *buf, size_t len, char *why, size_t why_len)
{
    struct rd r = {buf, len - TRAILER_LEN, why, why_len};
    uint64_t applied;
    int rc;

    if (!t->write)
        return IC_EREADONLY;
    rc = ic_store_snapshot_check(buf, len, &applied, why, why_len);
    if (rc != 0)
        return rc;
    r.p += HEADER_LEN;
    r.left -= HEADER_LEN;
    /* Terms cached by the transaction, and the store's, are about to go
     * (the ids of the snapshot's terms differ). */
    ic_store__tcache_free(&t->cache);
    ic_store__tcache_free(&t->st->terms);
    ic_store__memo_clear(t->st);
    t->st->terms_epoch = mdb_txn_id(t->txn);
    t->amap_dirty = true; /* the attribute map may be another */
    t->label_dirty = true;
    t->quads_removed++; /* terms may have fallen out of use */
    for (int i = 0; i < DBI__COUNT && rc == 0; i++) {
        rc = empty_db(t, i);
        if (rc == 0)
            rc = section_walk(&r, i, t);
    }
    if (rc == 0) {
        rc = ic_store__meta_get_u64(t, "next_id", &t->next_id);
        if (rc == IC_ENOTFOUND) {
            t->next_id = 1;
            rc = 0;
        }
        t->dirty_counter = false;
    }
    return rc;
}
