/*
 * service_admin.c - the catalog service's admin commands for the
 * operator's tool (docs/protocol.md):
 *
 *   node_status    the node's figures: sessions, stanzas, catalog size
 *   list_accounts  every account and whether it is an admin
 *   dump_catalog   the catalog (or one graph) as TriG or N-Quads text
 *
 * All three are admin-only (the framework refuses others) and read-only.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service.h"

/* Appends <NAME>VALUE</NAME> to PARENT. */
static void add_text(struct ic_xml *parent, const char *name, const char *v)
{
    struct ic_xml *x = ic_xml_add(parent, name, NULL);

    ic_xml_add_text(x, v, strlen(v));
}

static void add_u64(struct ic_xml *parent, const char *name, uint64_t v)
{
    char buf[32];

    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    add_text(parent, name, buf);
}

/* The node's Raft figures: <raft> with its id, state, leader, term,
 * commit and applied indexes, and one <member> per server. */
static void add_raft(struct ic_xml *parent, struct ic_node_cluster *c)
{
    static const char *const states[] = {"unavailable", "follower", "candidate",
                                         "leader"};
    static const char *const roles[] = {"standby", "voter", "spare"};
    struct ic_xml *x = ic_xml_add(parent, "raft", NULL);
    struct ic_raft_status s;

    ic_node_cluster_status(c, &s);
    add_u64(x, "id", s.id);
    add_text(x, "state", states[s.state & 3]);
    add_u64(x, "leader", s.leader_id);
    add_u64(x, "term", s.term);
    add_u64(x, "commitIndex", s.commit_index);
    add_u64(x, "lastApplied", s.last_applied);
    for (size_t i = 0; i < s.n_servers; i++) {
        struct ic_xml *m = ic_xml_add(x, "member", NULL);
        char id[24];
        snprintf(id, sizeof id, "%llu", (unsigned long long)s.servers[i].id);
        ic_xml_set_attr(m, "id", id);
        ic_xml_set_attr(m, "address", s.servers[i].address);
        ic_xml_set_attr(m, "role", roles[s.servers[i].role % 3]);
    }
}

void ic_node__svc_status(void *data, struct ic_adhoc_req *r)
{
    struct ic_node_service *svc = data;
    struct ic_xml *x = ic_xml_new("status", NS_RES);
    struct ic_xmpp_stats xs;
    struct ic_store_stats ss;
    unsigned char digest[32];
    char hex[65];
    struct ic_txn *t;
    int rc = ic_store_txn_begin(svc->st, false, &t);

    if (rc == 0) {
        rc = ic_store_stats(t, &ss);
        if (rc == 0)
            rc = ic_store_digest(t, digest);
        ic_store_txn_abort(t);
    }
    if (rc != 0) {
        ic_xml_free(x);
        ic_adhoc_fail(r, "wait", "internal-server-error", ic_strerror(rc));
        return;
    }
    ic_xmpp_server_stats(svc->srv, &xs);
    add_text(x, "domain", svc->domain);
    add_u64(x, "uptimeSeconds",
            (uv_hrtime() / 1000000 - svc->started_ms) / 1000);
    add_u64(x, "connections", xs.connections);
    add_u64(x, "sessions", xs.sessions);
    add_u64(x, "stanzasIn", xs.stanzas_in);
    add_u64(x, "stanzasOut", xs.stanzas_out);
    add_u64(x, "quads", ss.quads);
    add_u64(x, "graphs", ss.graphs);
    add_u64(x, "terms", ss.terms);
    add_u64(x, "usedBytes", ss.used_bytes);
    add_u64(x, "mapSize", ss.map_size);
    add_u64(x, "appliedIndex", ss.applied_index);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    add_text(x, "digest", hex); /* equal on replicas at the same index */
    add_raft(x, svc->cluster);
    ic_adhoc_done(r, ic_node__svc_output(x), NULL, NULL);
}

static int add_account(void *data, const char *local, bool admin)
{
    struct ic_xml *acc = ic_xml_add(data, "account", NULL);

    add_text(acc, "user", local);
    add_text(acc, "admin", admin ? "true" : "false");
    return 0;
}

void ic_node__svc_list_accounts(void *data, struct ic_adhoc_req *r)
{
    struct ic_node_service *svc = data;
    struct ic_xml *x = ic_xml_new("accounts", NS_RES);
    int rc = ic_node_account_list(svc->st, add_account, x);

    if (rc != 0) {
        ic_xml_free(x);
        ic_adhoc_fail(r, "wait", "internal-server-error", ic_strerror(rc));
        return;
    }
    ic_adhoc_done(r, ic_node__svc_output(x), NULL, NULL);
}

static void dump_now(void *data, struct ic_adhoc_req *r);

/* Input: optional <dump xmlns=NS_RES graph='IRI' format='trig|nq'
 * consistency='local|linearizable'/>. */
void ic_node__svc_dump_catalog(void *data, struct ic_adhoc_req *r)
{
    const struct ic_xml *in = ic_node__svc_input(r, "dump", NS_RES);

    ic_node__svc_read(data, r, in ? ic_xml_attr(in, "consistency") : NULL,
                      dump_now);
}

static void dump_now(void *data, struct ic_adhoc_req *r)
{
    struct ic_node_service *svc = data;
    const struct ic_xml *in = ic_node__svc_input(r, "dump", NS_RES);
    const char *graph = in ? ic_xml_attr(in, "graph") : NULL;
    const char *fmt = in ? ic_xml_attr(in, "format") : NULL;
    enum ic_rdf_syntax syn = IC_RDF_TRIG;
    struct ic_xml *x;
    struct ic_txn *t;
    char *text = NULL;
    size_t len = 0;
    FILE *f;
    int rc;

    if (fmt != NULL && strcmp(fmt, "nq") == 0)
        syn = IC_RDF_NQUADS;
    else if (fmt != NULL && strcmp(fmt, "trig") != 0) {
        ic_adhoc_fail(r, "modify", "bad-request", "format is trig or nq");
        return;
    }
    f = open_memstream(&text, &len);
    if (f == NULL) {
        ic_adhoc_fail(r, "wait", "resource-constraint", "out of memory");
        return;
    }
    rc = ic_store_txn_begin(svc->st, false, &t);
    if (rc == 0) {
        rc = ic_store_dump(t, graph, syn, f);
        ic_store_txn_abort(t);
    }
    fclose(f);
    if (rc != 0) {
        free(text);
        ic_adhoc_fail(r, "wait", "internal-server-error", ic_strerror(rc));
        return;
    }
    x = ic_xml_new(syn == IC_RDF_TRIG ? "trig" : "nquads", NS_RES);
    ic_xml_add_text(x, text, len);
    free(text);
    ic_adhoc_done(r, ic_node__svc_output(x), NULL, NULL);
}

/* ---- membership (add_node, remove_node, transfer_leadership) ------------ */

static void on_member(void *data, int rc, uint64_t leader)
{
    struct ic_adhoc_req *r = data;
    char text[96];

    if (rc == 0) {
        ic_adhoc_done(r, NULL, "info", "done");
    } else if (rc == IC_ENOTLEADER) {
        /* RFC 6120 8.3.3.14: the request belongs elsewhere */
        snprintf(text, sizeof text, "not the leader; node %llu leads",
                 (unsigned long long)leader);
        ic_adhoc_fail(r, "modify", "redirect", text);
    } else {
        ic_adhoc_fail(r, "wait", "internal-server-error", ic_strerror(rc));
    }
}

/* <node xmlns=NS_RES><id>N</id><address>IP:PORT</address></node> */
static int node_input(struct ic_adhoc_req *r,
                      uint64_t *id,
                      char **address,
                      bool id_required)
{
    const struct ic_xml *n = ic_node__svc_input(r, "node", NS_RES);
    const struct ic_xml *i = n ? ic_xml_child(n, "id", NS_RES) : NULL;
    const struct ic_xml *a = n ? ic_xml_child(n, "address", NS_RES) : NULL;
    char *t = i ? ic_xml_text(i) : NULL, *end = NULL;
    unsigned long long v = t ? strtoull(t, &end, 10) : 0;
    bool ok =
        t ? *t != '\0' && *end == '\0' && v >= 1 && v <= 255 : !id_required;

    ic_free(t);
    if (!ok) {
        ic_adhoc_fail(r, "modify", "bad-request",
                      "give <node><id>1..255</id></node>");
        return IC_EVALUE;
    }
    *id = v;
    if (address != NULL)
        *address = a ? ic_xml_text(a) : NULL;
    return 0;
}

static void member_rc(struct ic_adhoc_req *r, int rc)
{
    if (rc == IC_ENOTLEADER)
        on_member(r, rc, 0);
    else if (rc != 0)
        ic_adhoc_fail(r, "cancel", "not-allowed", ic_strerror(rc));
}

void ic_node__svc_add_node(void *data, struct ic_adhoc_req *r)
{
    struct ic_node_service *svc = data;
    char *addr = NULL;
    uint64_t id;

    if (node_input(r, &id, &addr, true) != 0)
        return;
    if (addr == NULL || strchr(addr, ':') == NULL) {
        ic_free(addr);
        ic_adhoc_fail(r, "modify", "bad-request",
                      "give the new node's Raft <address>IP:PORT</address>");
        return;
    }
    member_rc(r,
              ic_node_cluster_member_add(svc->cluster, id, addr, on_member, r));
    ic_free(addr);
}

void ic_node__svc_remove_node(void *data, struct ic_adhoc_req *r)
{
    struct ic_node_service *svc = data;
    uint64_t id;

    if (node_input(r, &id, NULL, true) == 0)
        member_rc(
            r, ic_node_cluster_member_remove(svc->cluster, id, on_member, r));
}

void ic_node__svc_transfer(void *data, struct ic_adhoc_req *r)
{
    struct ic_node_service *svc = data;
    uint64_t id;

    if (node_input(r, &id, NULL, false) == 0)
        member_rc(r, ic_node_cluster_transfer(svc->cluster, id, on_member, r));
}
