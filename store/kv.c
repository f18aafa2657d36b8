/*
 * kv.c - iteration over the key/value databases (accounts, rosters,
 * presence, delegations, cluster metadata), for listings.
 */
#include <string.h>

#include "store_int.h"

int ic_store_kv_next(struct ic_txn *t,
                     enum ic_kv_db db,
                     struct ic_kv after,
                     struct ic_kv *key,
                     struct ic_kv *val)
{
    MDB_val k = {after.len, (void *)after.data}, v;
    MDB_cursor *cur;
    int rc;

    if ((unsigned)db >= IC_KV__COUNT)
        return IC_EINVAL;
    rc = mdb_cursor_open(t->txn, t->st->dbi[DBI_KV0 + db], &cur);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    if (after.data == NULL) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == 0 && k.mv_size == after.len &&
            memcmp(k.mv_data, after.data, after.len) == 0)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        return IC_EEND;
    if (rc != 0)
        return ic_store__mdb_err(rc);
    key->data = k.mv_data;
    key->len = k.mv_size;
    val->data = v.mv_data;
    val->len = v.mv_size;
    return 0;
}
