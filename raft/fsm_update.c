/*
 * fsm_update.c - KV_UPDATE entries (see ic_raft.h): the registered update
 * computes a key's new value from its current one at apply time.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>

#include "raft_int.h"

static ic_raft_kv_update_fn updates[256];

void ic_raft_register_kv_update(uint8_t id, ic_raft_kv_update_fn fn)
{
    if (id != 0)
        updates[id] = fn;
}

int ic_raft__kv_update_run(struct ic_txn *t,
                           const struct ic_raft_kvop *op,
                           char *msg)
{
    ic_raft_kv_update_fn fn = updates[op->update];
    struct ic_kv old, out = {NULL, 0};
    int rc;

    if (fn == NULL) {
        /* every node must know it: refuse the same way everywhere */
        snprintf(msg, 256, "unknown update %u", (unsigned)op->update);
        return IC_EUNKNOWN;
    }
    rc = ic_store_kv_get(t, op->db, op->key, &old);
    if (rc != 0 && rc != IC_ENOTFOUND) {
        snprintf(msg, 256, "%s", ic_strerror(rc));
        return rc;
    }
    rc = fn(rc == 0 ? &old : NULL, op->val, &out);
    if (rc != 0) {
        snprintf(msg, 256, "update %u: %s", (unsigned)op->update,
                 ic_strerror(rc));
        return rc;
    }
    if (out.data == NULL) {
        rc = ic_store_kv_del(t, op->db, op->key);
        if (rc == IC_ENOTFOUND)
            rc = 0;
    } else {
        rc = ic_store_kv_put(t, op->db, op->key, out);
        ic_free((void *)out.data);
    }
    if (rc != 0)
        snprintf(msg, 256, "%s", ic_strerror(rc));
    return rc;
}
