/*
 * accounts.c - accounts and rosters in the store. An account is a JSON
 * record in kv.accounts under its local part: SCRAM credentials for SHA-1
 * and SHA-256 (salt, iterations, StoredKey, ServerKey in hex) and the
 * admin flag; never a password. A roster is one JSON record per user in
 * kv.rosters. Each write is one store transaction.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "app.h"
#include "delegation.h"
#include "presence.h"

static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static bool unhex(const char *s, unsigned char *out, size_t max, size_t *n)
{
    size_t l = strlen(s);

    if (l % 2 != 0 || l / 2 > max)
        return false;
    for (size_t i = 0; i < l / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return false;
        out[i] = (unsigned char)v;
    }
    *n = l / 2;
    return true;
}

static json_t *creds_json(enum ic_scram_hash h, const struct ic_scram_creds *c)
{
    char salt[65], stored[65], server[65];
    size_t hl = ic_scram_hash_len(h);

    hex(c->salt, c->salt_len, salt);
    hex(c->stored_key, hl, stored);
    hex(c->server_key, hl, server);
    return json_pack("{s:s, s:I, s:s, s:s}", "salt", salt, "i",
                     (json_int_t)c->iterations, "stored", stored, "server",
                     server);
}

static int
put_json(struct ic_store *st, enum ic_kv_db db, const char *key, json_t *v)
{
    char *txt = json_dumps(v, JSON_COMPACT);
    struct ic_txn *t;
    struct ic_kv k = {key, strlen(key)}, val = {txt, strlen(txt)};
    int rc = ic_store_txn_begin(st, true, &t);

    if (rc == 0) {
        rc = ic_store_kv_put(t, db, k, val);
        rc = rc == 0 ? ic_store_txn_commit(t) : (ic_store_txn_abort(t), rc);
    }
    free(txt);
    return rc;
}

static int
get_json(struct ic_store *st, enum ic_kv_db db, const char *key, json_t **out)
{
    struct ic_txn *t;
    struct ic_kv k = {key, strlen(key)}, v;
    int rc = ic_store_txn_begin(st, false, &t);

    if (rc != 0)
        return rc;
    rc = ic_store_kv_get(t, db, k, &v);
    if (rc == 0) {
        *out = json_loadb(v.data, v.len, 0, NULL);
        if (*out == NULL)
            rc = IC_ECORRUPT;
    }
    ic_store_txn_abort(t);
    return rc;
}

int ic_node_account_record(const char *password,
                           uint32_t iterations,
                           bool admin,
                           char **out)
{
    struct ic_scram_creds c1, c256;
    json_t *rec;
    int rc;

    rc = ic_scram_creds_make(IC_SCRAM_SHA1, password, iterations, &c1);
    if (rc == 0)
        rc = ic_scram_creds_make(IC_SCRAM_SHA256, password, iterations, &c256);
    if (rc != 0)
        return rc;
    rec = json_pack("{s:i, s:b, s:o, s:o}", "v", 1, "admin", admin, "sha1",
                    creds_json(IC_SCRAM_SHA1, &c1), "sha256",
                    creds_json(IC_SCRAM_SHA256, &c256));
    *out = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    return *out != NULL ? 0 : IC_ENOMEM;
}

int ic_node_account_set(struct ic_store *st,
                        const char *local,
                        const char *password,
                        uint32_t iterations,
                        bool admin)
{
    struct ic_kv k = {local, strlen(local)}, v;
    struct ic_txn *t;
    char *rec;
    int rc = ic_node_account_record(password, iterations, admin, &rec);

    if (rc != 0)
        return rc;
    v = (struct ic_kv){rec, strlen(rec)};
    rc = ic_store_txn_begin(st, true, &t);
    if (rc == 0) {
        rc = ic_store_kv_put(t, IC_KV_ACCOUNTS, k, v);
        rc = rc == 0 ? ic_store_txn_commit(t) : (ic_store_txn_abort(t), rc);
    }
    free(rec);
    return rc;
}

int ic_node_account_del(struct ic_store *st, const char *local)
{
    struct ic_txn *t;
    struct ic_kv k = {local, strlen(local)};
    int rc = ic_store_txn_begin(st, true, &t);

    if (rc != 0)
        return rc;
    rc = ic_store_kv_del(t, IC_KV_ACCOUNTS, k);
    if (rc == 0)
        rc = ic_store_kv_del(t, IC_KV_ROSTERS, k);
    if (rc == IC_ENOTFOUND)
        rc = 0;
    return rc == 0 ? ic_store_txn_commit(t) : (ic_store_txn_abort(t), rc);
}

int ic_node_account_creds(struct ic_store *st,
                          const char *local,
                          enum ic_scram_hash h,
                          struct ic_scram_creds *out,
                          bool *admin)
{
    json_t *rec = NULL, *c;
    const char *salt, *stored, *server;
    json_int_t iter;
    size_t n1, n2, n3;
    int rc = get_json(st, IC_KV_ACCOUNTS, local, &rec);

    if (rc != 0)
        return rc;
    c = json_object_get(rec, h == IC_SCRAM_SHA1 ? "sha1" : "sha256");
    memset(out, 0, sizeof *out);
    if (c == NULL ||
        json_unpack(c, "{s:s, s:I, s:s, s:s}", "salt", &salt, "i", &iter,
                    "stored", &stored, "server", &server) != 0 ||
        !unhex(salt, out->salt, sizeof out->salt, &n1) ||
        !unhex(stored, out->stored_key, sizeof out->stored_key, &n2) ||
        !unhex(server, out->server_key, sizeof out->server_key, &n3) ||
        n2 != ic_scram_hash_len(h) || n3 != n2 || iter < 1) {
        json_decref(rec);
        return IC_ECORRUPT;
    }
    out->salt_len = n1;
    out->iterations = (uint32_t)iter;
    if (admin != NULL)
        *admin = json_is_true(json_object_get(rec, "admin"));
    json_decref(rec);
    return 0;
}

int ic_node_account_list(struct ic_store *st,
                         int (*cb)(void *data, const char *local, bool admin),
                         void *data)
{
    struct ic_kv after = {NULL, 0}, k, v;
    struct ic_txn *t;
    int rc = ic_store_txn_begin(st, false, &t);

    while (rc == 0 &&
           (rc = ic_store_kv_next(t, IC_KV_ACCOUNTS, after, &k, &v)) == 0) {
        json_t *rec = json_loadb(v.data, v.len, 0, NULL);
        char local[IC_JID_PART_MAX + 1];
        bool admin = json_is_true(json_object_get(rec, "admin"));
        json_decref(rec);
        if (k.len > IC_JID_PART_MAX)
            return ic_store_txn_abort(t), IC_ECORRUPT;
        memcpy(local, k.data, k.len);
        local[k.len] = '\0';
        rc = cb(data, local, admin);
        after = k;
    }
    ic_store_txn_abort(t);
    return rc == IC_EEND ? 0 : rc;
}

/* The engine's ops */

static const char *local_of(const char *bare, char *buf, size_t len)
{
    const char *at = strchr(bare, '@');
    size_t n = at ? (size_t)(at - bare) : strlen(bare);

    if (n >= len)
        n = len - 1;
    memcpy(buf, bare, n);
    buf[n] = '\0';
    return buf;
}

static int get_creds(void *data,
                     const char *local,
                     enum ic_scram_hash h,
                     struct ic_scram_creds *out)
{
    struct ic_node_ctx *ctx = data;
    int rc = ic_node_account_creds(ctx->st, local, h, out, NULL);

    return rc == IC_ECORRUPT ? IC_ENOTFOUND : rc;
}

static bool is_admin(void *data, const char *local)
{
    struct ic_node_ctx *ctx = data;
    struct ic_scram_creds c;
    bool admin = false;

    return ic_node_account_creds(ctx->st, local, IC_SCRAM_SHA256, &c, &admin) ==
               0 &&
           admin;
}

static const char *const subs[] = {"none", "to", "from", "both"};

static int roster_get(void *data, const char *user, struct ic_roster *out)
{
    struct ic_node_ctx *ctx = data;
    char local[1100];
    json_t *rec = NULL, *it;
    size_t i;
    int rc;

    local_of(user, local, sizeof local);
    /* a roster being written through the cluster reads as written */
    rec = ctx->rosters ? json_object_get(ctx->rosters, local) : NULL;
    if (rec != NULL) {
        json_incref(rec);
        rc = 0;
    } else {
        rc = get_json(ctx->st, IC_KV_ROSTERS, local, &rec);
    }

    memset(out, 0, sizeof *out);
    if (rc == IC_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    out->items = ic_calloc(json_array_size(rec) + 1, sizeof *out->items);
    json_array_foreach(rec, i, it)
    {
        struct ic_roster_item *r = &out->items[out->n];
        const char *jid = json_string_value(json_object_get(it, "jid"));
        const char *name = json_string_value(json_object_get(it, "name"));
        const char *sub = json_string_value(json_object_get(it, "sub"));
        json_t *groups = json_object_get(it, "groups"), *g;
        size_t j;
        if (jid == NULL)
            continue;
        r->jid = ic_strdup(jid);
        r->name = name ? ic_strdup(name) : NULL;
        for (unsigned s = 0; sub != NULL && s < 4; s++)
            if (strcmp(sub, subs[s]) == 0)
                r->sub = (enum ic_sub)s;
        r->ask = json_is_true(json_object_get(it, "ask"));
        r->pending_in = json_is_true(json_object_get(it, "pending"));
        r->groups = ic_calloc(json_array_size(groups) + 1, sizeof *r->groups);
        json_array_foreach(groups, j, g) if (json_is_string(g))
            r->groups[r->ngroups++] = ic_strdup(json_string_value(g));
        out->n++;
    }
    json_decref(rec);
    return 0;
}

static json_t *item_json(const struct ic_roster_item *it)
{
    json_t *groups = json_array();

    for (size_t i = 0; i < it->ngroups; i++)
        json_array_append_new(groups, json_string(it->groups[i]));
    return json_pack("{s:s, s:s?, s:s, s:b, s:b, s:o}", "jid", it->jid, "name",
                     it->name, "sub", subs[it->sub & 3], "ask", it->ask,
                     "pending", it->pending_in, "groups", groups);
}

/* Rewrites USER's roster with ITEM replaced (or removed when DEL). */
/* A roster write through the cluster is done: the overlay entry goes
 * unless a newer write replaced it. */
struct roster_write {
    struct ic_node_ctx *ctx;
    char *local;
    json_t *arr;
};

static void
on_roster_written(void *data, int rc, const struct ic_raft_result *res)
{
    struct roster_write *w = data;

    if (rc != 0 || res->code != 0)
        IC_LOG(IC_LOG_WARN, "roster", "%s: roster write: %s", w->local,
               rc ? ic_strerror(rc) : res->msg);
    if (json_object_get(w->ctx->rosters, w->local) == w->arr)
        json_object_del(w->ctx->rosters, w->local);
    json_decref(w->arr);
    ic_free(w->local);
    ic_free(w);
}

/* Through Raft: the overlay answers reads until the write is applied. */
static int
roster_replicate(struct ic_node_ctx *ctx, const char *local, json_t *arr)
{
    char *txt = json_dumps(arr, JSON_COMPACT);
    struct roster_write *w = ic_malloc(sizeof *w);
    struct ic_raft_op op = {0};
    struct ic_raft_cmd cmd = {0};
    int rc;

    op.type = IC_RAFT_OP_KV_PUT;
    op.kv.db = IC_KV_ROSTERS;
    op.kv.key = (struct ic_kv){local, strlen(local)};
    op.kv.val = (struct ic_kv){txt, strlen(txt)};
    cmd.n_ops = 1;
    cmd.ops = &op;
    w->ctx = ctx;
    w->local = ic_strdup(local);
    w->arr = arr;
    json_incref(arr);
    json_object_set(ctx->rosters, local, arr);
    rc = ic_node_cluster_write(ctx->cluster, &cmd, 0, on_roster_written, w);
    if (rc != 0) {
        json_object_del(ctx->rosters, local);
        json_decref(arr);
        ic_free(w->local);
        ic_free(w);
    }
    free(txt);
    return rc;
}

/* Rewrites USER's roster with ITEM replaced (or removed when DEL). */
static int roster_write(struct ic_node_ctx *ctx,
                        const char *user,
                        const struct ic_roster_item *item,
                        const char *del)
{
    char local[1100];
    struct ic_roster r;
    json_t *arr = json_array();
    const char *contact = item ? item->jid : del;
    int rc = roster_get(ctx, user, &r);

    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    for (size_t i = 0; i < r.n; i++)
        if (strcmp(r.items[i].jid, contact) != 0)
            json_array_append_new(arr, item_json(&r.items[i]));
    if (item != NULL)
        json_array_append_new(arr, item_json(item));
    ic_roster_free(&r);
    local_of(user, local, sizeof local);
    rc = ctx->cluster != NULL ? roster_replicate(ctx, local, arr)
                              : put_json(ctx->st, IC_KV_ROSTERS, local, arr);
    json_decref(arr);
    return rc;
}

static int
roster_put(void *data, const char *user, const struct ic_roster_item *item)
{
    return roster_write(data, user, item, NULL);
}

static int roster_del(void *data, const char *user, const char *contact)
{
    return roster_write(data, user, NULL, contact);
}

static bool route_remote(void *data,
                         unsigned node,
                         const struct ic_xml *st,
                         const char *target)
{
    struct ic_node_ctx *ctx = data;
    struct ic_raft_status s;
    bool sent = false;

    if (ctx->cluster == NULL)
        return false;
    if (node != 0)
        return ic_node_cluster_route(ctx->cluster, node, st, target);
    ic_node_cluster_status(ctx->cluster, &s); /* 0: every other member */
    for (size_t i = 0; i < s.n_servers; i++)
        if (s.servers[i].id != s.id &&
            ic_node_cluster_route(ctx->cluster, (unsigned)s.servers[i].id, st,
                                  target))
            sent = true;
    return sent;
}

static void
presence_changed(void *data, const char *full, const struct ic_xml *presence)
{
    struct ic_node_ctx *ctx = data;

    if (ctx->presence != NULL)
        ic_node_presence_changed(ctx->presence, full, presence);
}

static bool s2s_pin(void *data, const char *domain, char out[72])
{
    struct ic_node_ctx *ctx = data;

    return ic_node__deleg_pin(ctx->st, domain, out);
}

void ic_node_xmpp_ops(struct ic_node_ctx *ctx, struct ic_xmpp_ops *ops)
{
    memset(ops, 0, sizeof *ops);
    ops->data = ctx;
    ops->route_remote = route_remote;
    ops->presence_changed = presence_changed;
    ops->get_creds = get_creds;
    ops->is_admin = is_admin;
    ops->roster_get = roster_get;
    ops->roster_put = roster_put;
    ops->roster_del = roster_del;
    ops->s2s_pin = s2s_pin;
}
