/*
 * service.h - the catalog service's parts (private to node/): its state,
 * shared by the user commands (service.c) and the admin commands
 * (service_admin.c).
 */
#ifndef IC_NODE_SERVICE_H
#define IC_NODE_SERVICE_H

#include <stdint.h>

#include <uv.h>

#include "app.h"
#include "cluster.h"

#define NS_IODATA "urn:xmpp:tmp:io-data"
#define NS_RES IC_RESONTOLOGY_NS

struct ic_deleg_resolver;

struct ic_node_service {
    struct ic_store *st;
    struct ic_xmpp_server *srv;
    struct ic_node_cluster *cluster; /* writes go through it */
    uint64_t started_ms; /* uv_hrtime() in ms when the service started */
    char *domain;
    char *jid;
    struct ic_deleg_resolver *deleg; /* recursive queries (delegation.h) */
};

/* The first element named NAME in namespace NS inside the command's
 * <iodata type='input'><in>, or NULL. */
const struct ic_xml *
ic_node__svc_input(struct ic_adhoc_req *r, const char *name, const char *ns);
/* <iodata type='output'><out>CONTENT</out></iodata> (CONTENT taken; may
 * be NULL). */
struct ic_xml *ic_node__svc_output(struct ic_xml *content);

/* Writes OP through the cluster (Raft) and answers R once it is applied
 * here: NOTE on success, bad-request with the state machine's message for
 * a business failure. */
void ic_node__svc_write_op(struct ic_node_service *svc,
                           struct ic_adhoc_req *r,
                           const struct ic_raft_op *op,
                           const char *note);

/* Runs THEN(SVC, R) now (MODE NULL or "local"), or once a no-op through
 * Raft is applied here (MODE "linearizable"); another MODE is a
 * bad-request. */
void ic_node__svc_read(struct ic_node_service *svc,
                       struct ic_adhoc_req *r,
                       const char *mode,
                       void (*then)(void *svc, struct ic_adhoc_req *r));

/* The admin commands of service_admin.c (XEP-0050 handlers). */
void ic_node__svc_status(void *data, struct ic_adhoc_req *r);
void ic_node__svc_list_accounts(void *data, struct ic_adhoc_req *r);
void ic_node__svc_dump_catalog(void *data, struct ic_adhoc_req *r);
void ic_node__svc_add_node(void *data, struct ic_adhoc_req *r);
void ic_node__svc_remove_node(void *data, struct ic_adhoc_req *r);
void ic_node__svc_transfer(void *data, struct ic_adhoc_req *r);

/* The delegation commands of delegation.c (admin). */
void ic_node__svc_add_delegation(void *data, struct ic_adhoc_req *r);
void ic_node__svc_remove_delegation(void *data, struct ic_adhoc_req *r);
void ic_node__svc_list_delegations(void *data, struct ic_adhoc_req *r);

#endif /* IC_NODE_SERVICE_H */
