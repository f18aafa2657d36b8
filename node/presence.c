/*
 * presence.c - presence through Raft (DESIGN.md decision 6): this node's
 * sessions' presence changes are batched into one PRESENCE_BATCH entry
 * every few milliseconds under this node's lease incarnation; every node
 * applies every batch and delivers other nodes' changes to its own
 * sessions (the observer below feeds the XMPP engine); the leader revokes
 * the lease of a node it has not reached for LEASE_TTL_MS, which drops all
 * of that node's presence in one entry.
 *
 * Happy path: start -> NODE_LEASE START(incarnation) -> batches. A batch
 * refused with IC_ELEASE (our lease was revoked while we were cut off)
 * makes us start a new incarnation and send every current presence again.
 * A batch whose outcome is unknown is sent again (the registry's entries
 * are set, not added: sending twice is harmless).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <uv.h>

#include "presence.h"

#define BATCH_MS 5
#define LEASE_TTL_MS 5000
#define TICK_MS 1000
#define WRITE_DEADLINE_MS 10000

struct ic_node_presence {
    uv_loop_t *loop;
    struct ic_store *st;
    struct ic_node_cluster *cluster;
    struct ic_xmpp_server *srv;
    unsigned self;
    uint64_t incarnation;
    bool lease_ok;      /* our START is applied */
    bool lease_pending; /* a START is in flight */
    bool batch_pending; /* a batch is in flight */
    json_t *current;    /* full JID -> payload: our sessions' presence */
    json_t *pending;    /* full JID -> payload or null: not sent yet */
    uv_timer_t batch, tick;
    int handles;
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
};

static void flush(struct ic_node_presence *np);

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- our lease ---------------------------------------------------------- */

static void start_lease(struct ic_node_presence *np);

static void on_lease(void *data, int rc, const struct ic_raft_result *res)
{
    struct ic_node_presence *np = data;

    np->lease_pending = false;
    if (np->closing)
        return;
    if (rc == 0 && res->code == 0) {
        np->lease_ok = true;
        IC_LOG(IC_LOG_INFO, "presence", "node %u: incarnation %llu", np->self,
               (unsigned long long)np->incarnation);
        flush(np);
    } else {
        IC_LOG(IC_LOG_WARN, "presence", "lease start: %s",
               rc ? ic_strerror(rc) : res->msg);
        start_lease(np); /* a newer incarnation, again */
    }
}

/* A new incarnation, newer than any we had (the clock, or the stored one
 * plus one), then every current presence of ours again. */
static void start_lease(struct ic_node_presence *np)
{
    struct ic_raft_op op = {0};
    struct ic_raft_cmd cmd = {0};
    struct ic_store_lease l = {0};
    struct ic_txn *t;
    const char *k;
    json_t *v;

    if (np->cluster == NULL || np->lease_pending || np->closing)
        return;
    if (ic_store_txn_begin(np->st, false, &t) == 0) {
        ic_store_lease_get(t, (uint16_t)np->self, &l);
        ic_store_txn_abort(t);
    }
    np->incarnation = now_ns();
    if (np->incarnation <= l.incarnation)
        np->incarnation = l.incarnation + 1;
    if (np->incarnation == 0)
        np->incarnation = 1;
    ic_node_cluster_set_incarnation(np->cluster, np->incarnation);
    np->lease_ok = false;
    np->lease_pending = true;
    json_object_foreach(np->current, k, v) json_object_set(np->pending, k, v);
    op.type = IC_RAFT_OP_NODE_LEASE;
    op.lease.node = (uint16_t)np->self;
    op.lease.incarnation = np->incarnation;
    op.lease.action = IC_RAFT_LEASE_START;
    cmd.n_ops = 1;
    cmd.ops = &op;
    if (ic_node_cluster_write(np->cluster, &cmd, WRITE_DEADLINE_MS, on_lease,
                              np) != 0)
        np->lease_pending = false;
}

/* ---- batches ------------------------------------------------------------- */

static void on_batch(void *data, int rc, const struct ic_raft_result *res)
{
    struct ic_node_presence *np = data;

    np->batch_pending = false;
    if (np->closing)
        return;
    if (rc == 0 && res->code == IC_ELEASE) {
        IC_LOG(IC_LOG_WARN, "presence", "our lease was revoked: a new one");
        start_lease(np);
        return;
    }
    if (rc != 0 || res->code != 0) {
        const char *k;
        json_t *v;
        IC_LOG(IC_LOG_WARN, "presence", "batch: %s; sending again",
               rc ? ic_strerror(rc) : res->msg);
        /* what is still current goes again (newer changes win) */
        json_object_foreach(np->current, k,
                            v) if (json_object_get(np->pending, k) == NULL)
            json_object_set(np->pending, k, v);
    }
    flush(np);
}

static void flush(struct ic_node_presence *np)
{
    size_t n = json_object_size(np->pending), i = 0;
    struct ic_raft_presence_item *items;
    struct ic_raft_op op = {0};
    struct ic_raft_cmd cmd = {0};
    const char *k;
    json_t *v, *sent;

    if (n == 0 || np->cluster == NULL || np->closing || np->batch_pending)
        return;
    if (!np->lease_ok) {
        start_lease(np);
        return;
    }
    if (n > IC_RAFT_PRESENCE_MAX)
        n = IC_RAFT_PRESENCE_MAX;
    items = ic_calloc(n, sizeof *items);
    sent = json_object();
    json_object_foreach(np->pending, k, v)
    {
        if (i == n)
            break;
        items[i].jid = k;
        items[i].available = json_is_string(v);
        if (items[i].available)
            items[i].payload =
                (struct ic_kv){json_string_value(v), json_string_length(v)};
        json_object_set(sent, k, v);
        i++;
    }
    op.type = IC_RAFT_OP_PRESENCE_BATCH;
    op.presence.node = (uint16_t)np->self;
    op.presence.incarnation = np->incarnation;
    op.presence.n_items = n;
    op.presence.items = items;
    cmd.n_ops = 1;
    cmd.ops = &op;
    if (ic_node_cluster_write(np->cluster, &cmd, WRITE_DEADLINE_MS, on_batch,
                              np) == 0) {
        np->batch_pending = true;
        json_object_foreach(sent, k, v) json_object_del(np->pending, k);
    }
    json_decref(sent);
    ic_free(items);
}

static void on_batch_timer(uv_timer_t *t)
{
    flush(t->data);
}

void ic_node_presence_changed(void *data,
                              const char *full_jid,
                              const struct ic_xml *presence)
{
    struct ic_node_presence *np = data;
    json_t *v;

    if (np->closing || strlen(full_jid) > IC_RAFT_JID_MAX)
        return;
    if (presence != NULL) {
        char *text = ic_xml_to_string(presence, IC_NS_CLIENT);
        v = json_string(text);
        ic_free(text);
        json_object_set(np->current, full_jid, v);
    } else {
        v = json_null();
        json_object_del(np->current, full_jid);
    }
    json_object_set_new(np->pending, full_jid, v);
    if (!uv_is_active((uv_handle_t *)&np->batch))
        uv_timer_start(&np->batch, on_batch_timer, BATCH_MS, 0);
}

/* ---- other nodes' presence --------------------------------------------------
 */

static void deliver(struct ic_node_presence *np,
                    const char *jid,
                    unsigned node,
                    const void *payload,
                    size_t len)
{
    struct ic_xml *p = NULL;

    if (payload != NULL) {
        p = ic_xml_parse(payload, len, IC_NS_CLIENT);
        if (p == NULL || p->name == NULL || strcmp(p->name, "presence") != 0) {
            IC_LOG(IC_LOG_WARN, "presence", "%s: bad presence in registry",
                   jid);
            ic_xml_free(p);
            return;
        }
    }
    ic_xmpp_server_remote_presence(np->srv, jid, node, p);
    ic_xml_free(p);
}

static int load_one(void *data, const struct ic_store_presence *e)
{
    struct ic_node_presence *np = data;
    char jid[IC_RAFT_JID_MAX + 1];

    if (e->jid.len > IC_RAFT_JID_MAX)
        return 0;
    memcpy(jid, e->jid.data, e->jid.len);
    jid[e->jid.len] = '\0';
    deliver(np, jid, e->node, e->payload.data, e->payload.len);
    return 0;
}

/* Every other node's sessions, from the registry. */
static void load_registry(struct ic_node_presence *np)
{
    struct ic_txn *t;

    if (np->srv == NULL || ic_store_txn_begin(np->st, false, &t) != 0)
        return;
    ic_xmpp_server_remote_reset(np->srv);
    for (unsigned node = 1; node <= 255; node++)
        if (node != np->self)
            ic_store_presence_each_node(t, (uint16_t)node, load_one, np);
    ic_store_txn_abort(t);
}

void ic_node_presence_observe(void *data,
                              const struct ic_raft_presence_event *ev)
{
    struct ic_node_presence *np = data;

    if (np->srv == NULL || np->closing)
        return; /* the server loads the registry when it starts */
    if (ev->reset) {
        load_registry(np);
        return;
    }
    /* An ended lease first: its routed presence is withdrawn before the
     * dropped registry entries go (which forget what was routed from
     * them, as a session that ends on its own does). */
    for (size_t i = 0; i < ev->n_changes; i++) {
        const struct ic_raft_presence_change *c = &ev->changes[i];
        if (c->lease_end && c->node != np->self)
            ic_xmpp_server_remote_node_gone(np->srv, c->node, c->incarnation);
    }
    for (size_t i = 0; i < ev->n_changes; i++) {
        const struct ic_raft_presence_change *c = &ev->changes[i];
        if (c->node == np->self || c->lease_end)
            continue; /* our sessions deliver their own presence */
        deliver(np, c->jid, c->node, c->available ? c->payload : NULL,
                c->payload_len);
    }
}

/* ---- the leader revokes silent nodes' leases --------------------------------
 */

static void revoke(struct ic_node_presence *np, unsigned node, uint64_t inc)
{
    struct ic_raft_op op = {0};
    struct ic_raft_cmd cmd = {0};

    IC_LOG(IC_LOG_WARN, "presence",
           "node %u unreachable for %u ms: revoking its presence", node,
           LEASE_TTL_MS);
    op.type = IC_RAFT_OP_NODE_LEASE;
    op.lease.node = (uint16_t)node;
    op.lease.incarnation = inc;
    op.lease.action = IC_RAFT_LEASE_REVOKE;
    cmd.n_ops = 1;
    cmd.ops = &op;
    ic_node_cluster_write(np->cluster, &cmd, WRITE_DEADLINE_MS, NULL, NULL);
}

static void on_tick(uv_timer_t *t)
{
    struct ic_node_presence *np = t->data;
    struct ic_raft_status s;
    struct ic_txn *txn;

    if (np->cluster == NULL || np->closing)
        return;
    ic_node_cluster_status(np->cluster, &s);
    if (s.state != IC_RAFT_LEADER ||
        ic_store_txn_begin(np->st, false, &txn) != 0)
        return;
    for (unsigned node = 1; node <= 255; node++) {
        struct ic_store_lease l;
        if (node == np->self ||
            ic_store_lease_get(txn, (uint16_t)node, &l) != 0 || l.revoked)
            continue;
        if (ic_node_cluster_unreachable_ms(np->cluster, node) > LEASE_TTL_MS)
            revoke(np, node, l.incarnation);
    }
    ic_store_txn_abort(txn);
}

/* ---- life -------------------------------------------------------------------
 */

int ic_node_presence_new(struct uv_loop_s *loop,
                         struct ic_store *st,
                         unsigned self,
                         struct ic_node_presence **out)
{
    struct ic_node_presence *np = ic_calloc(1, sizeof *np);

    np->loop = loop;
    np->st = st;
    np->self = self;
    np->current = json_object();
    np->pending = json_object();
    uv_timer_init(loop, &np->batch);
    uv_timer_init(loop, &np->tick);
    np->batch.data = np->tick.data = np;
    np->handles = 2;
    *out = np;
    return 0;
}

void ic_node_presence_start(struct ic_node_presence *np,
                            struct ic_node_cluster *cluster,
                            struct ic_xmpp_server *srv)
{
    np->cluster = cluster;
    np->srv = srv;
    load_registry(np);
    start_lease(np);
    uv_timer_start(&np->tick, on_tick, TICK_MS, TICK_MS);
}

static void on_closed(uv_handle_t *h)
{
    struct ic_node_presence *np = h->data;

    if (--np->handles > 0)
        return;
    json_decref(np->current);
    json_decref(np->pending);
    if (np->close_cb != NULL)
        np->close_cb(np->close_data);
    ic_free(np);
}

void ic_node_presence_close(struct ic_node_presence *np,
                            void (*cb)(void *data),
                            void *data)
{
    np->closing = true;
    np->srv = NULL;
    np->close_cb = cb;
    np->close_data = data;
    uv_close((uv_handle_t *)&np->batch, on_closed);
    uv_close((uv_handle_t *)&np->tick, on_closed);
}
