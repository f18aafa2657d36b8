/*
 * accounts.c - accounts in the store, and the engine's ops table. An
 * account is a JSON record in kv.accounts under its local part: SCRAM
 * credentials for SHA-1 and SHA-256 (salt, iterations, StoredKey,
 * ServerKey in hex) and the admin flag; never a password. Each write is one
 * store transaction. Rosters are in rosters.c.
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

int ic_node__put_json(struct ic_store *st,
                      enum ic_kv_db db,
                      const char *key,
                      json_t *v)
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

int ic_node__get_json(struct ic_store *st,
                      enum ic_kv_db db,
                      const char *key,
                      json_t **out)
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
    int rc = ic_node__get_json(st, IC_KV_ACCOUNTS, local, &rec);

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

const char *ic_node__local_of(const char *bare, char *buf, size_t len)
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

    /* an account whose record says so, or one [accounts] admins names */
    if (ic_node_account_creds(ctx->st, local, IC_SCRAM_SHA256, &c, &admin) != 0)
        return false;
    for (size_t i = 0; i < ctx->n_admins && !admin; i++)
        admin = strcmp(ctx->admins[i], local) == 0;
    return admin;
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
    ic_node__roster_ops(ops);
    ops->s2s_pin = s2s_pin;
}
