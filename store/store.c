/*
 * store.c - the LMDB environment: open with the checks that keep us from
 * writing into somebody else's data, transactions, meta values, statistics
 * and the named key/value databases.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "store_int.h"

#define MAGIC "icroot-store"
#define DEFAULT_MAP_SIZE (64ULL << 30)

static const char *const dbi_names[DBI__COUNT] = {
    "meta",       "hash2id",     "id2term",        "spo",
    "pos",        "osp",         "gspo",           "kv.accounts",
    "kv.rosters", "kv.presence", "kv.delegations", "kv.cluster",
    "clients",
};

const char *ic_store__dbi_name(int i)
{
    return dbi_names[i];
}

static unsigned dbi_flags(int i)
{
    switch (i) {
    case DBI_HASH2ID:
    case DBI_SPO:
    case DBI_POS:
    case DBI_OSP:
    case DBI_GSPO:
        return MDB_DUPSORT | MDB_DUPFIXED;
    default:
        return 0;
    }
}

int ic_store__mdb_err(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_NOTFOUND:
        return IC_ENOTFOUND;
    case MDB_KEYEXIST:
        return IC_EEXIST;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case MDB_PAGE_FULL:
        return IC_EFULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
        return IC_ECORRUPT;
    case MDB_INVALID:
        return IC_ENOTOURS;
    case MDB_VERSION_MISMATCH:
        return IC_EFORMAT;
    case MDB_READERS_FULL:
        return IC_EBUSY;
    case ENOMEM:
        return IC_ENOMEM;
    case ENOSPC:
        return IC_ENOSPC;
    case EACCES:
        return IC_EREADONLY;
    default:
        return IC_EIO;
    }
}

static void why_set(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void why_set(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
}

/* A store directory holds nothing but LMDB's two files. */
static int check_dir(const char *dir, bool create, char *why, size_t why_len)
{
    struct stat sb;
    DIR *d;
    struct dirent *e;
    int rv = 0;

    if (stat(dir, &sb) != 0) {
        if (errno != ENOENT || !create) {
            why_set(why, why_len, "%s: %s", dir, strerror(errno));
            return errno == ENOENT ? IC_ENOTFOUND : IC_EIO;
        }
        if (mkdir(dir, 0750) != 0) {
            why_set(why, why_len, "%s: %s", dir, strerror(errno));
            return errno == ENOSPC ? IC_ENOSPC : IC_EIO;
        }
        return 0;
    }
    if (!S_ISDIR(sb.st_mode)) {
        why_set(why, why_len, "%s: %s", dir, "not a directory");
        return IC_ENOTOURS;
    }
    d = opendir(dir);
    if (d == NULL) {
        why_set(why, why_len, "%s: %s", dir, strerror(errno));
        return IC_EIO;
    }
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
            strcmp(n, "data.mdb") == 0 || strcmp(n, "lock.mdb") == 0)
            continue;
        why_set(why, why_len,
                "%s is not an icroot store directory (it holds '%s')", dir, n);
        rv = IC_ENOTOURS;
        break;
    }
    closedir(d);
    return rv;
}

static int meta_get(MDB_txn *txn, MDB_dbi dbi, const char *key, MDB_val *v)
{
    MDB_val k = {strlen(key), (void *)key};
    return mdb_get(txn, dbi, &k, v);
}

static int meta_put(
    MDB_txn *txn, MDB_dbi dbi, const char *key, const void *data, size_t len)
{
    MDB_val k = {strlen(key), (void *)key};
    MDB_val v = {len, (void *)data};
    return mdb_put(txn, dbi, &k, &v, 0);
}

/* Format 1 to 2: gspo (g -> s|p|o), filled from osp (o -> s|p|g), takes
 * the place of gs (g -> s), which is dropped. In the opening transaction:
 * all or nothing. */
static int upgrade_1(struct ic_store *st, MDB_txn *txn)
{
    MDB_cursor *cur;
    MDB_dbi gs;
    MDB_val k, v;
    unsigned char r[32];
    int rc = mdb_cursor_open(txn, st->dbi[DBI_OSP], &cur);

    for (rc = rc ? rc : mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        MDB_val gk = {8, r}, gv = {24, r + 8};
        if (k.mv_size != 8 || v.mv_size != 24) {
            rc = MDB_CORRUPTED;
            break;
        }
        memcpy(r, (unsigned char *)v.mv_data + 16, 8); /* g */
        memcpy(r + 8, v.mv_data, 16);                  /* s|p */
        memcpy(r + 24, k.mv_data, 8);                  /* o */
        rc = mdb_put(txn, st->dbi[DBI_GSPO], &gk, &gv, MDB_NODUPDATA);
        if (rc == MDB_KEYEXIST)
            rc = 0;
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return rc;
    rc = mdb_dbi_open(txn, "gs", MDB_DUPSORT | MDB_DUPFIXED, &gs);
    if (rc == 0)
        return mdb_drop(txn, gs, 1);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Checks (or, for a new store, writes) the magic and format version. */
static int check_meta(struct ic_store *st,
                      MDB_txn *txn,
                      bool fresh,
                      const char *dir,
                      char *why,
                      size_t why_len)
{
    MDB_val v;
    unsigned char buf[8];
    uint64_t format;
    int rc;

    rc = meta_get(txn, st->dbi[DBI_META], "magic", &v);
    if (rc == MDB_NOTFOUND && fresh && !st->read_only) {
        ic_store__be64(buf, IC_STORE_FORMAT);
        rc = meta_put(txn, st->dbi[DBI_META], "magic", MAGIC, strlen(MAGIC));
        if (rc == 0)
            rc = meta_put(txn, st->dbi[DBI_META], "format", buf, 8);
        if (rc != 0) {
            why_set(why, why_len, "%s: %s", dir, mdb_strerror(rc));
            return ic_store__mdb_err(rc);
        }
        return 0;
    }
    if (rc != 0 || v.mv_size != strlen(MAGIC) ||
        memcmp(v.mv_data, MAGIC, v.mv_size) != 0) {
        why_set(why, why_len, "%s%s", dir,
                " is not an icroot store (no icroot magic in its database)");
        return IC_ENOTOURS;
    }
    rc = meta_get(txn, st->dbi[DBI_META], "format", &v);
    if (rc != 0 || v.mv_size != 8) {
        why_set(why, why_len, "%s%s", dir, ": store has no format version");
        return IC_ECORRUPT;
    }
    format = ic_store__get_be64(v.mv_data);
    if (format > IC_STORE_FORMAT) {
        why_set(why, why_len,
                "%s: store format %llu is newer than this build's (%d); "
                "upgrade icroot",
                dir, (unsigned long long)format, IC_STORE_FORMAT);
        return IC_EFORMAT;
    }
    if (format < 1 || (format < IC_STORE_FORMAT && st->read_only)) {
        why_set(why, why_len,
                "%s: store format %llu; this build reads %d (a node "
                "upgrades its store when it starts)",
                dir, (unsigned long long)format, IC_STORE_FORMAT);
        return IC_EFORMAT;
    }
    if (format < IC_STORE_FORMAT) {
        rc = upgrade_1(st, txn);
        ic_store__be64(buf, IC_STORE_FORMAT);
        if (rc == 0)
            rc = meta_put(txn, st->dbi[DBI_META], "format", buf, 8);
        if (rc != 0) {
            why_set(why, why_len, "%s: upgrading the store: %s", dir,
                    mdb_strerror(rc));
            return ic_store__mdb_err(rc);
        }
        IC_LOG(IC_LOG_INFO, "store", "%s: store upgraded to format %d", dir,
               IC_STORE_FORMAT);
    }
    return 0;
}

/* Opens every named database. A main database that holds anything but our
 * databases is somebody else's. */
static int
open_dbis(struct ic_store *st, const char *dir, char *why, size_t why_len)
{
    MDB_txn *txn;
    MDB_dbi main;
    MDB_stat ms;
    bool fresh;
    unsigned wflags = st->read_only ? 0 : MDB_CREATE;
    int rc;

    rc = mdb_txn_begin(st->env, NULL, st->read_only ? MDB_RDONLY : 0, &txn);
    if (rc != 0)
        goto err;
    rc = mdb_dbi_open(txn, NULL, 0, &main);
    if (rc != 0)
        goto err_txn;
    rc = mdb_stat(txn, main, &ms);
    if (rc != 0)
        goto err_txn;
    fresh = ms.ms_entries == 0;
    if (!fresh) {
        MDB_val k = {4, (void *)"meta"}, v;
        if (mdb_get(txn, main, &k, &v) != 0) {
            mdb_txn_abort(txn);
            why_set(why, why_len, "%s%s", dir,
                    " is an LMDB database of another program");
            return IC_ENOTOURS;
        }
    } else if (st->read_only) {
        mdb_txn_abort(txn);
        why_set(why, why_len, "%s%s", dir, ": empty store");
        return IC_ENOTFOUND;
    }
    for (int i = 0; i < DBI__COUNT; i++) {
        rc =
            mdb_dbi_open(txn, dbi_names[i], dbi_flags(i) | wflags, &st->dbi[i]);
        if (rc == MDB_NOTFOUND && i >= DBI_KV0 && st->read_only) {
            st->absent |= 1u << i; /* an older store without this database */
            continue;
        }
        if (rc == MDB_NOTFOUND && st->read_only) {
            mdb_txn_abort(txn);
            why_set(why, why_len,
                    "%s is not an icroot store (no '%s' "
                    "database)",
                    dir, dbi_names[i]);
            return IC_ENOTOURS;
        }
        if (rc == MDB_INCOMPATIBLE) {
            mdb_txn_abort(txn);
            why_set(why, why_len, "%s: database '%s' has other flags", dir,
                    dbi_names[i]);
            return IC_ENOTOURS;
        }
        if (rc != 0)
            goto err_txn;
    }
    rc = check_meta(st, txn, fresh, dir, why, why_len);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0)
        goto err;
    return 0;

err_txn:
    mdb_txn_abort(txn);
err:
    why_set(why, why_len, "%s: %s", dir, mdb_strerror(rc));
    return ic_store__mdb_err(rc);
}

int ic_store_open(const char *dir,
                  const struct ic_store_opts *opts,
                  struct ic_store **out,
                  char *why,
                  size_t why_len)
{
    struct ic_store_opts dflt = {0};
    struct ic_store *st;
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
    int rc;

    if (opts == NULL)
        opts = &dflt;
    rc = check_dir(dir, opts->create && !opts->read_only, why, why_len);
    if (rc != 0)
        return rc;
    st = ic_calloc(1, sizeof *st);
    st->read_only = opts->read_only;
    st->map_size = opts->map_size ? opts->map_size : DEFAULT_MAP_SIZE;
    rc = mdb_env_create(&st->env);
    if (rc != 0)
        goto err_mdb;
    mdb_env_set_maxdbs(st->env, 32);
    rc = mdb_env_set_mapsize(st->env, (size_t)st->map_size);
    if (rc != 0)
        goto err_env;
    if (opts->no_sync)
        flags |= MDB_NOSYNC;
    if (opts->read_only)
        flags |= MDB_RDONLY;
    rc = mdb_env_open(st->env, dir, flags, 0640);
    if (rc != 0)
        goto err_env;
    rc = open_dbis(st, dir, why, why_len);
    if (rc != 0) {
        mdb_env_close(st->env);
        ic_free(st);
        return rc;
    }
    *out = st;
    return 0;

err_env:
    mdb_env_close(st->env);
err_mdb:
    ic_free(st);
    if (rc == MDB_INVALID)
        why_set(why, why_len, "%s%s", dir,
                ": data.mdb is not an LMDB database");
    else
        why_set(why, why_len, "%s: %s", dir, mdb_strerror(rc));
    return ic_store__mdb_err(rc);
}

const char *ic_store_dir(const struct ic_store *st)
{
    const char *dir = NULL;

    if (mdb_env_get_path(st->env, &dir) != 0 || dir == NULL)
        return "(store)";
    return dir;
}

uint64_t ic_store_quads_removed(const struct ic_store *st)
{
    return st->quads_removed;
}

int ic_store_sync(struct ic_store *st)
{
    return ic_store__mdb_err(mdb_env_sync(st->env, 1));
}

void ic_store_close(struct ic_store *st)
{
    if (st == NULL)
        return;
    ic_store__attr_cache_free(st->attrs);
    ic_store__amap_free(st->amap);
    ic_store__pairs_free(st->pairs);
    ic_store__tcache_free(&st->terms);
    ic_store__memos_free(st);
    mdb_env_close(st->env);
    ic_free(st);
}

int ic_store_txn_begin(struct ic_store *st, bool write, struct ic_txn **out)
{
    struct ic_txn *t;
    int rc;

    if (write && st->read_only)
        return IC_EREADONLY;
    t = ic_calloc(1, sizeof *t);
    t->st = st;
    t->write = write;
    t->attr_gen = st->attr_gen;
    t->label_gen = st->label_gen;
    rc = mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
    if (rc != 0) {
        ic_free(t);
        return ic_store__mdb_err(rc);
    }
    if (write) {
        rc = ic_store__meta_get_u64(t, "next_id", &t->next_id);
        if (rc == IC_ENOTFOUND) {
            t->next_id = 1;
        } else if (rc != 0) {
            mdb_txn_abort(t->txn);
            ic_free(t);
            return rc;
        }
    }
    *out = t;
    return 0;
}

int ic_store_txn_begin_nested(struct ic_txn *parent, struct ic_txn **out)
{
    struct ic_txn *t;
    int rc;

    if (!parent->write)
        return IC_EREADONLY;
    /* The child looks terms up in LMDB: give it the parent's new ones. */
    rc = ic_store__tcache_flush(parent);
    if (rc != 0)
        return rc;
    t = ic_calloc(1, sizeof *t);
    t->st = parent->st;
    t->parent = parent;
    t->write = true;
    t->next_id = parent->next_id;
    /* what the parent resolved about the attribute map and the labels
     * (match.c ic_store__amap_touch) holds for the child */
    t->amap_dirty = parent->amap_dirty;
    t->amap_state = parent->amap_state;
    memcpy(t->amap_ids, parent->amap_ids, sizeof t->amap_ids);
    t->label_dirty = parent->label_dirty;
    if (parent->label_state != 0) {
        t->label_state = parent->label_state;
        t->n_label_ids = parent->n_label_ids;
        t->label_ids = ic_malloc((t->n_label_ids + 1) * sizeof *t->label_ids);
        if (t->n_label_ids > 0)
            memcpy(t->label_ids, parent->label_ids,
                   t->n_label_ids * sizeof *t->label_ids);
    }
    rc = mdb_txn_begin(parent->st->env, parent->txn, 0, &t->txn);
    if (rc != 0) {
        ic_free(t->label_ids);
        ic_free(t);
        return ic_store__mdb_err(rc);
    }
    *out = t;
    return 0;
}

int ic_store_txn_commit(struct ic_txn *t)
{
    int rc = 0;

    if (t->write) {
        rc = ic_store__tcache_flush(t);
        if (rc == 0 && t->dirty_counter)
            rc = ic_store__meta_put_u64(t, "next_id", t->next_id);
        if (rc != 0) {
            ic_store_txn_abort(t);
            return rc;
        }
    }
    rc = ic_store__mdb_err(mdb_txn_commit(t->txn));
    if (rc != 0 && t->memo_put) /* ids it created may be in a memo */
        ic_store__memo_clear(t->st);
    if (rc == 0 && t->parent != NULL) {
        t->parent->memo_put |= t->memo_put;
        t->parent->next_id = t->next_id;
        t->parent->dirty_counter |= t->dirty_counter;
        t->parent->quads_removed += t->quads_removed;
        t->parent->amap_dirty |= t->amap_dirty;
        t->parent->label_dirty |= t->label_dirty;
        if (t->parent->amap_state == 0) { /* resolved once per batch */
            t->parent->amap_state = t->amap_state;
            memcpy(t->parent->amap_ids, t->amap_ids, sizeof t->amap_ids);
        }
        if (t->parent->label_state == 0 && t->label_state != 0) {
            t->parent->label_state = t->label_state;
            t->parent->label_ids = t->label_ids;
            t->parent->n_label_ids = t->n_label_ids;
            t->label_ids = NULL;
        }
    } else if (rc == 0) {
        t->st->quads_removed += t->quads_removed;
        t->st->attr_gen += t->amap_dirty;
        t->st->label_gen += t->label_dirty;
    }
    if (rc == 0 && t->write)
        ic_store__tcache_commit(t);
    ic_store__tcache_free(&t->cache);
    ic_free(t->scratch);
    ic_free(t->label_ids);
    ic_free(t);
    return rc;
}

void ic_store_txn_abort(struct ic_txn *t)
{
    if (t == NULL)
        return;
    if (t->memo_put) /* ids it created may be in a memo */
        ic_store__memo_clear(t->st);
    mdb_txn_abort(t->txn);
    ic_store__tcache_free(&t->cache);
    ic_free(t->scratch);
    ic_free(t->label_ids);
    ic_free(t);
}

int ic_store__meta_get_u64(struct ic_txn *t, const char *key, uint64_t *v)
{
    MDB_val val;
    int rc = meta_get(t->txn, t->st->dbi[DBI_META], key, &val);

    if (rc != 0)
        return ic_store__mdb_err(rc);
    if (val.mv_size != 8)
        return IC_ECORRUPT;
    *v = ic_store__get_be64(val.mv_data);
    return 0;
}

int ic_store__meta_put_u64(struct ic_txn *t, const char *key, uint64_t v)
{
    unsigned char buf[8];

    if (!t->write)
        return IC_EREADONLY;
    ic_store__be64(buf, v);
    return ic_store__mdb_err(
        meta_put(t->txn, t->st->dbi[DBI_META], key, buf, 8));
}

int ic_store_applied_get(struct ic_txn *t, uint64_t *index)
{
    int rc = ic_store__meta_get_u64(t, "applied", index);

    if (rc == IC_ENOTFOUND) {
        *index = 0;
        return 0;
    }
    return rc;
}

int ic_store_applied_set(struct ic_txn *t, uint64_t index)
{
    return ic_store__meta_put_u64(t, "applied", index);
}

static uint64_t entries(struct ic_txn *t, int i)
{
    MDB_stat ms;

    if (mdb_stat(t->txn, t->st->dbi[i], &ms) != 0)
        return 0;
    return ms.ms_entries;
}

/* Pages in use: the file's pages less those on the free list (mdb_stat
 * leaves out the sub-databases of DUPSORT databases, so it cannot tell). */
static int used_pages(struct ic_txn *t, uint64_t *used)
{
    MDB_envinfo info;
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t free_pages = 0;
    int rc;

    mdb_env_info(t->st->env, &info);
    if (t->write) { /* LMDB keeps the free list to itself then */
        *used = (uint64_t)info.me_last_pgno + 1;
        return 0;
    }
    rc = mdb_cursor_open(t->txn, 0, &cur); /* the free list */
    if (rc != 0)
        return ic_store__mdb_err(rc);
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        size_t n;
        if (v.mv_size < sizeof n)
            continue;
        memcpy(&n, v.mv_data, sizeof n);
        free_pages += n;
    }
    mdb_cursor_close(cur);
    *used = (uint64_t)info.me_last_pgno + 1 - free_pages;
    return rc == MDB_NOTFOUND ? 0 : ic_store__mdb_err(rc);
}

int ic_store_stats(struct ic_txn *t, struct ic_store_stats *out)
{
    struct ic_store_stats s = {0};
    MDB_cursor *cur;
    MDB_val k, v;
    MDB_stat ms;
    uint64_t pages = 0;
    int rc;

    s.format = IC_STORE_FORMAT;
    s.map_size = t->st->map_size;
    s.quads = entries(t, DBI_OSP);
    s.triples = entries(t, DBI_SPO);
    s.terms = entries(t, DBI_ID2TERM);
    mdb_env_stat(t->st->env, &ms);
    rc = used_pages(t, &pages);
    if (rc != 0)
        return rc;
    s.used_bytes = pages * ms.ms_psize;
    rc = mdb_cursor_open(t->txn, t->st->dbi[DBI_GSPO], &cur);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP))
        s.graphs++;
    mdb_cursor_close(cur);
    rc = ic_store_applied_get(t, &s.applied_index);
    if (rc != 0)
        return rc;
    *out = s;
    return 0;
}

/* Key/value databases */

int ic_store_kv_get(struct ic_txn *t,
                    enum ic_kv_db db,
                    struct ic_kv key,
                    struct ic_kv *val)
{
    MDB_val k = {key.len, (void *)key.data}, v;
    int rc;

    if ((unsigned)db >= IC_KV__COUNT)
        return IC_EINVAL;
    rc = mdb_get(t->txn, t->st->dbi[DBI_KV0 + db], &k, &v);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    val->data = v.mv_data;
    val->len = v.mv_size;
    return 0;
}

int ic_store_kv_put(struct ic_txn *t,
                    enum ic_kv_db db,
                    struct ic_kv key,
                    struct ic_kv val)
{
    MDB_val k = {key.len, (void *)key.data}, v = {val.len, (void *)val.data};

    if ((unsigned)db >= IC_KV__COUNT || key.len == 0 || key.len > 511)
        return IC_EINVAL;
    if (!t->write)
        return IC_EREADONLY;
    return ic_store__mdb_err(
        mdb_put(t->txn, t->st->dbi[DBI_KV0 + db], &k, &v, 0));
}

int ic_store_kv_del(struct ic_txn *t, enum ic_kv_db db, struct ic_kv key)
{
    MDB_val k = {key.len, (void *)key.data};

    if ((unsigned)db >= IC_KV__COUNT)
        return IC_EINVAL;
    if (!t->write)
        return IC_EREADONLY;
    return ic_store__mdb_err(
        mdb_del(t->txn, t->st->dbi[DBI_KV0 + db], &k, NULL));
}

/* Client records */

int ic_store_client_get(struct ic_txn *t, uint64_t client, struct ic_kv *val)
{
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    int rc;

    if (t->st->absent & (1u << DBI_CLIENTS))
        return IC_ENOTFOUND;
    ic_store__be64(kb, client);
    rc = mdb_get(t->txn, t->st->dbi[DBI_CLIENTS], &k, &v);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    val->data = v.mv_data;
    val->len = v.mv_size;
    return 0;
}

int ic_store_client_put(struct ic_txn *t, uint64_t client, struct ic_kv val)
{
    unsigned char kb[8];
    MDB_val k = {8, kb}, v = {val.len, (void *)val.data};

    if (!t->write)
        return IC_EREADONLY;
    ic_store__be64(kb, client);
    return ic_store__mdb_err(
        mdb_put(t->txn, t->st->dbi[DBI_CLIENTS], &k, &v, 0));
}
