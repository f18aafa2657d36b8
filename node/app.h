/*
 * app.h - the pieces of the running node (private to node/): accounts and
 * rosters kept in the store, the catalog service's commands, and the node
 * process itself.
 */
#ifndef IC_NODE_APP_H
#define IC_NODE_APP_H

#include <stdbool.h>

#include "ic_node.h"
#include "ic_xmpp.h"

/* Accounts (accounts.c): SCRAM-SHA-1 and SCRAM-SHA-256 credentials with
 * ITERATIONS (>= 4096), never the password, in kv.accounts. */
int ic_node_account_set(struct ic_store *st,
                        const char *local,
                        const char *password,
                        uint32_t iterations,
                        bool admin);
int ic_node_account_del(struct ic_store *st, const char *local);
/* The kv.accounts record for PASSWORD (fresh salts): JSON text into *OUT
 * (malloc'd: free() it). */
int ic_node_account_record(const char *password,
                           uint32_t iterations,
                           bool admin,
                           char **out);
/* 0, IC_ENOTFOUND. */
int ic_node_account_creds(struct ic_store *st,
                          const char *local,
                          enum ic_scram_hash h,
                          struct ic_scram_creds *out,
                          bool *admin);

/* Calls CB for every account in name order with its local part and admin
 * flag; stops at the first non-zero return of CB, which it returns. */
int ic_node_account_list(struct ic_store *st,
                         int (*cb)(void *data, const char *local, bool admin),
                         void *data);

/* A JSON record of kv DB under KEY: read (IC_ENOTFOUND when missing,
 * IC_ECORRUPT when it does not parse) and written in one transaction. */
struct json_t;
int ic_node__get_json(struct ic_store *st,
                      enum ic_kv_db db,
                      const char *key,
                      struct json_t **out);
int ic_node__put_json(struct ic_store *st,
                      enum ic_kv_db db,
                      const char *key,
                      struct json_t *v);
/* The local part of a bare JID into BUF (LEN bytes, truncated). */
const char *ic_node__local_of(const char *bare, char *buf, size_t len);

/* Rosters (rosters.c): roster_get and roster_event of the engine's ops;
 * registers the state machine's roster update. */
struct ic_xmpp_ops;
void ic_node__roster_ops(struct ic_xmpp_ops *ops);
/* The change EV of the item for CONTACT as the KV_UPDATE's argument (JSON
 * text; ic_free it), and the update itself (OLD: the record, or NULL). */
char *ic_node__roster_change(const char *contact,
                             enum ic_roster_event ev,
                             const struct ic_roster_item *fields);
int ic_node__roster_update(const struct ic_kv *old,
                           struct ic_kv arg,
                           struct ic_kv *out);

/* What the engine's ops reach: the store, and in a cluster the Raft
 * writes (rosters), the presence batcher and the links (routing). */
struct json_t;
struct ic_node_cluster;
struct ic_node_presence;
struct ic_node_ctx {
    struct ic_store *st;
    struct ic_node_cluster *cluster; /* NULL: rosters to the store */
    struct ic_node_presence *presence;
    struct json_t *rosters; /* local part -> roster being written */
    char **admins;          /* [accounts] admins: local parts */
    size_t n_admins;
};

/* The engine's ops table backed by CTX (accounts, rosters, presence,
 * routing between nodes). */
void ic_node_xmpp_ops(struct ic_node_ctx *ctx, struct ic_xmpp_ops *ops);

/* The catalog service (service.c) at service.DOMAIN; its writes go
 * through CLUSTER. */
struct ic_node_service;
struct ic_node_cluster;
int ic_node_service_start(struct ic_xmpp_server *srv,
                          struct ic_store *st,
                          struct ic_node_cluster *cluster,
                          const char *domain,
                          struct ic_node_service **out);
void ic_node_service_free(struct ic_node_service *svc);

/* icroot run --config FILE (run.c): the exit code. */
int ic_node_run(const char *config_path);

#endif /* IC_NODE_APP_H */
