/*
 * presence.c - the presence registry and node leases in kv.presence
 * (layout in ic_store.h): one entry per full JID, a per-node index so a
 * node's entries are found and dropped without a scan, one lease record per
 * node.
 *
 * Happy path: put writes the entry and its index record (removing the old
 * index record when another node held the JID); del removes both; drop
 * collects the node's index records first, then removes each entry and
 * index record (no cursor walks keys it deletes).
 *
 * Failure modes: a JID out of range is IC_EINVAL; a record that does not
 * parse, or an index record without its entry, is IC_ECORRUPT; LMDB errors
 * are translated. Inside a write transaction the caller aborts on error.
 */
#include <string.h>

#include "store_int.h"

#define KEY_INDEX 0x00
#define KEY_LEASE 0x01
#define LAYOUT 1
#define ENTRY_HEAD (1 + 2 + 8)
#define LEASE_LEN (1 + 8 + 1)
#define INDEX_HEAD 3

static MDB_dbi dbi(struct ic_txn *t)
{
    return t->st->dbi[DBI_KV0 + IC_KV_PRESENCE];
}

static bool jid_ok(const void *data, size_t len)
{
    const unsigned char *p = data;

    if (len == 0 || len > IC_STORE_JID_MAX || p == NULL)
        return false;
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x20)
            return false;
    return true;
}

static void put_be16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

/* The index key of (NODE, JID) into K (room for INDEX_HEAD + the JID). */
static MDB_val index_key(unsigned char *k, uint16_t node, struct ic_kv jid)
{
    MDB_val v = {INDEX_HEAD + jid.len, k};

    k[0] = KEY_INDEX;
    put_be16(k + 1, node);
    memcpy(k + INDEX_HEAD, jid.data, jid.len);
    return v;
}

static int
parse_entry(const MDB_val *k, const MDB_val *v, struct ic_store_presence *out)
{
    const unsigned char *p = v->mv_data;

    if (v->mv_size < ENTRY_HEAD || p[0] != LAYOUT)
        return IC_ECORRUPT;
    out->jid.data = k->mv_data;
    out->jid.len = k->mv_size;
    out->node = (uint16_t)(p[1] << 8 | p[2]);
    out->incarnation = ic_store__get_be64(p + 3);
    out->payload.data = p + ENTRY_HEAD;
    out->payload.len = v->mv_size - ENTRY_HEAD;
    return 0;
}

/* JID's entry; IC_ENOTFOUND when none. */
static int
entry_get(struct ic_txn *t, struct ic_kv jid, struct ic_store_presence *out)
{
    MDB_val k = {jid.len, (void *)jid.data}, v;
    int rc = mdb_get(t->txn, dbi(t), &k, &v);

    if (rc != 0)
        return ic_store__mdb_err(rc);
    return parse_entry(&k, &v, out);
}

int ic_store_presence_get(struct ic_txn *t,
                          struct ic_kv jid,
                          struct ic_store_presence *out)
{
    if (!jid_ok(jid.data, jid.len))
        return IC_EINVAL;
    return entry_get(t, jid, out);
}

/* Removes JID's entry, held by NODE, and its index record. */
static int entry_del(struct ic_txn *t, struct ic_kv jid, uint16_t node)
{
    unsigned char kb[INDEX_HEAD + IC_STORE_JID_MAX];
    MDB_val k = {jid.len, (void *)jid.data}, ik = index_key(kb, node, jid);
    int rc = mdb_del(t->txn, dbi(t), &k, NULL);

    if (rc == 0)
        rc = mdb_del(t->txn, dbi(t), &ik, NULL);
    return rc == MDB_NOTFOUND ? IC_ECORRUPT : ic_store__mdb_err(rc);
}

int ic_store_presence_put(struct ic_txn *t, const struct ic_store_presence *p)
{
    unsigned char kb[INDEX_HEAD + IC_STORE_JID_MAX], inc[8];
    struct ic_store_presence old;
    MDB_val k = {p->jid.len, (void *)p->jid.data}, v, ik, iv = {8, inc};
    int rc;

    if (!jid_ok(p->jid.data, p->jid.len) ||
        (p->payload.data == NULL && p->payload.len > 0))
        return IC_EINVAL;
    if (!t->write)
        return IC_EREADONLY;
    rc = entry_get(t, p->jid, &old);
    if (rc == 0 && old.node != p->node)
        rc = entry_del(t, p->jid, old.node);
    if (rc != 0 && rc != IC_ENOTFOUND)
        return rc;
    v.mv_size = ENTRY_HEAD + p->payload.len;
    rc = mdb_put(t->txn, dbi(t), &k, &v, MDB_RESERVE);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    ((unsigned char *)v.mv_data)[0] = LAYOUT;
    put_be16((unsigned char *)v.mv_data + 1, p->node);
    ic_store__be64((unsigned char *)v.mv_data + 3, p->incarnation);
    if (p->payload.len > 0)
        memcpy((unsigned char *)v.mv_data + ENTRY_HEAD, p->payload.data,
               p->payload.len);
    ik = index_key(kb, p->node, p->jid);
    ic_store__be64(inc, p->incarnation);
    return ic_store__mdb_err(mdb_put(t->txn, dbi(t), &ik, &iv, 0));
}

int ic_store_presence_del(struct ic_txn *t, struct ic_kv jid)
{
    struct ic_store_presence old;
    int rc;

    if (!jid_ok(jid.data, jid.len))
        return IC_EINVAL;
    if (!t->write)
        return IC_EREADONLY;
    rc = entry_get(t, jid, &old);
    if (rc != 0)
        return rc;
    return entry_del(t, jid, old.node);
}

static bool has_prefix(const MDB_val *k, const unsigned char *pre, size_t n)
{
    return k->mv_size > n && memcmp(k->mv_data, pre, n) == 0;
}

int ic_store_presence_each_bare(struct ic_txn *t,
                                struct ic_kv bare,
                                ic_store_presence_fn fn,
                                void *data)
{
    unsigned char pre[IC_STORE_JID_MAX];
    struct ic_store_presence p;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, mrc;

    if (!jid_ok(bare.data, bare.len) || bare.len >= IC_STORE_JID_MAX)
        return IC_EINVAL;
    memcpy(pre, bare.data, bare.len);
    pre[bare.len] = '/';
    k.mv_size = bare.len + 1;
    k.mv_data = pre;
    mrc = mdb_cursor_open(t->txn, dbi(t), &cur);
    if (mrc != 0)
        return ic_store__mdb_err(mrc);
    rc = 0;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         mrc == 0 && rc == 0 && has_prefix(&k, pre, bare.len + 1);
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        rc = parse_entry(&k, &v, &p);
        if (rc == 0)
            rc = fn(data, &p);
    }
    mdb_cursor_close(cur);
    if (rc != 0)
        return rc;
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : ic_store__mdb_err(mrc);
}

/* The entry an index record (key IK) stands for, checked against it. */
static int indexed_entry(struct ic_txn *t,
                         const MDB_val *ik,
                         uint16_t node,
                         struct ic_store_presence *p)
{
    struct ic_kv jid = {(const unsigned char *)ik->mv_data + INDEX_HEAD,
                        ik->mv_size - INDEX_HEAD};
    int rc = entry_get(t, jid, p);

    if (rc == IC_ENOTFOUND || (rc == 0 && p->node != node))
        return IC_ECORRUPT;
    return rc;
}

int ic_store_presence_each_node(struct ic_txn *t,
                                uint16_t node,
                                ic_store_presence_fn fn,
                                void *data)
{
    unsigned char pre[INDEX_HEAD] = {KEY_INDEX, 0, 0};
    struct ic_store_presence p;
    MDB_cursor *cur;
    MDB_val k = {INDEX_HEAD, pre}, v;
    int rc = 0, mrc;

    put_be16(pre + 1, node);
    mrc = mdb_cursor_open(t->txn, dbi(t), &cur);
    if (mrc != 0)
        return ic_store__mdb_err(mrc);
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         mrc == 0 && rc == 0 && has_prefix(&k, pre, INDEX_HEAD);
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        rc = indexed_entry(t, &k, node, &p);
        if (rc == 0)
            rc = fn(data, &p);
    }
    mdb_cursor_close(cur);
    if (rc != 0)
        return rc;
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : ic_store__mdb_err(mrc);
}

/* The JIDs of node NODE's index records whose incarnation is in [LO, HI],
 * copied, one after another, each preceded by its length (u16). */
struct jids {
    unsigned char *p;
    size_t len, cap, n;
};

static void jids_add(struct jids *j, const void *jid, size_t len)
{
    if (j->len + 2 + len > j->cap) {
        j->cap = j->cap ? 2 * j->cap : 4096;
        while (j->cap < j->len + 2 + len)
            j->cap *= 2;
        j->p = ic_realloc(j->p, j->cap);
    }
    put_be16(j->p + j->len, (uint16_t)len);
    memcpy(j->p + j->len + 2, jid, len);
    j->len += 2 + len;
    j->n++;
}

static int collect(
    struct ic_txn *t, uint16_t node, uint64_t lo, uint64_t hi, struct jids *out)
{
    unsigned char pre[INDEX_HEAD] = {KEY_INDEX, 0, 0};
    MDB_cursor *cur;
    MDB_val k = {INDEX_HEAD, pre}, v;
    uint64_t inc;
    int mrc;

    put_be16(pre + 1, node);
    mrc = mdb_cursor_open(t->txn, dbi(t), &cur);
    if (mrc != 0)
        return ic_store__mdb_err(mrc);
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         mrc == 0 && has_prefix(&k, pre, INDEX_HEAD);
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size != 8) {
            mrc = MDB_CORRUPTED;
            break;
        }
        inc = ic_store__get_be64(v.mv_data);
        if (inc >= lo && inc <= hi)
            jids_add(out, (unsigned char *)k.mv_data + INDEX_HEAD,
                     k.mv_size - INDEX_HEAD);
    }
    mdb_cursor_close(cur);
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : ic_store__mdb_err(mrc);
}

int ic_store_presence_drop(struct ic_txn *t,
                           uint16_t node,
                           uint64_t lo,
                           uint64_t hi,
                           ic_store_presence_fn fn,
                           void *data,
                           size_t *n)
{
    struct jids j = {NULL, 0, 0, 0};
    struct ic_store_presence p;
    struct ic_kv jid;
    size_t at = 0;
    int rc;

    if (!t->write)
        return IC_EREADONLY;
    rc = collect(t, node, lo, hi, &j);
    while (rc == 0 && at < j.len) {
        jid.len = (size_t)(j.p[at] << 8 | j.p[at + 1]);
        jid.data = j.p + at + 2;
        at += 2 + jid.len;
        rc = entry_get(t, jid, &p);
        if (rc == IC_ENOTFOUND || (rc == 0 && p.node != node))
            rc = IC_ECORRUPT;
        if (rc == 0 && fn != NULL)
            fn(data, &p);
        if (rc == 0)
            rc = entry_del(t, jid, node);
    }
    if (rc == 0 && n != NULL)
        *n = j.n;
    ic_free(j.p);
    return rc;
}

int ic_store_lease_get(struct ic_txn *t,
                       uint16_t node,
                       struct ic_store_lease *out)
{
    unsigned char kb[3] = {KEY_LEASE, 0, 0};
    MDB_val k = {sizeof kb, kb}, v;
    const unsigned char *p;
    int rc;

    put_be16(kb + 1, node);
    rc = mdb_get(t->txn, dbi(t), &k, &v);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    p = v.mv_data;
    if (v.mv_size != LEASE_LEN || p[0] != LAYOUT || p[9] > 1)
        return IC_ECORRUPT;
    out->incarnation = ic_store__get_be64(p + 1);
    out->revoked = p[9] & 1;
    return 0;
}

int ic_store_lease_put(struct ic_txn *t,
                       uint16_t node,
                       const struct ic_store_lease *lease)
{
    unsigned char kb[3] = {KEY_LEASE, 0, 0}, vb[LEASE_LEN];
    MDB_val k = {sizeof kb, kb}, v = {sizeof vb, vb};

    if (!t->write)
        return IC_EREADONLY;
    put_be16(kb + 1, node);
    vb[0] = LAYOUT;
    ic_store__be64(vb + 1, lease->incarnation);
    vb[9] = lease->revoked ? 1 : 0;
    return ic_store__mdb_err(mdb_put(t->txn, dbi(t), &k, &v, 0));
}
