/*
 * service.c - the catalog service at service.<domain>: XEP-0050 commands
 * carrying XEP-0244 IO Data, as docs/protocol.md documents.
 *
 *   constraint_catalog_resources  the seed paper's query
 *   publish_resources             a cloud puts or replaces its description
 *   withdraw_resources            and removes it
 *   describe_cloud                one cloud's description as Turtle
 *   add_account, delete_account, change_password, load_catalog  (admin;
 *                                 a user may change their own password)
 *   node_status, list_accounts, dump_catalog  (admin, service_admin.c)
 *   add_delegation, remove_delegation, list_delegations  (admin,
 *                                 delegation.c)
 *
 * A constraint query that falls in a delegated scope answers referrals
 * beside its local matches, or, recursive='true', asks the exchanges
 * (delegation_resolve.c).
 *
 * A bad payload is answered with a bad-request stanza error whose text
 * names the fault; nothing is written then.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delegation.h"
#include "service.h"

/* Where a publish is tried before it goes through Raft (publish_dry_run). */
#define DRY_RUN_GRAPH "urn:icroot:graph:dry-run"

/* The first element named NAME in namespace NS inside the command's
 * <iodata type='input'><in>, or NULL. */
const struct ic_xml *
ic_node__svc_input(struct ic_adhoc_req *r, const char *name, const char *ns)
{
    const struct ic_xml *cmd = ic_adhoc_command_elem(r);
    const struct ic_xml *io = ic_xml_child(cmd, "iodata", NS_IODATA);
    const struct ic_xml *in = io ? ic_xml_child(io, "in", NS_IODATA) : NULL;

    return in ? ic_xml_child(in, name, ns) : NULL;
}

struct ic_xml *ic_node__svc_output(struct ic_xml *content)
{
    struct ic_xml *io = ic_xml_new("iodata", NS_IODATA);
    struct ic_xml *out = ic_xml_add(io, "out", NULL);

    ic_xml_set_attr(io, "type", "output");
    if (content != NULL)
        ic_xml_append(out, content);
    return io;
}

static void bad(struct ic_adhoc_req *r, const char *text)
{
    ic_adhoc_fail(r, "modify", "bad-request", text);
}

/* A write in flight through the cluster for request R. */
struct pending {
    struct ic_adhoc_req *r;
    const char *note; /* the info note of success */
};

static void on_written(void *data, int rc, const struct ic_raft_result *res)
{
    struct pending *p = data;

    if (rc != 0 || res->code == IC_ESTALE)
        ic_adhoc_fail(p->r, "wait", "internal-server-error",
                      "outcome unknown: the cluster did not confirm the "
                      "write in time; retry it");
    else if (res->code != 0)
        bad(p->r, res->msg);
    else
        ic_adhoc_done(p->r, NULL, "info", p->note);
    ic_free(p);
}

/* Writes CMD through the cluster (Raft) and answers R once it is applied
 * here: NOTE on success, bad-request with the state machine's message for
 * a business failure. */
static void write_cmd(struct ic_node_service *svc,
                      struct ic_adhoc_req *r,
                      const struct ic_raft_cmd *cmd,
                      const char *note)
{
    struct pending *p = ic_malloc(sizeof *p);
    int rc;

    p->r = r;
    p->note = note;
    rc = ic_node_cluster_write(svc->cluster, cmd, 0, on_written, p);
    if (rc != 0) {
        ic_free(p);
        ic_adhoc_fail(r, "wait", "internal-server-error", ic_strerror(rc));
    }
}

static void write_op(struct ic_node_service *svc,
                     struct ic_adhoc_req *r,
                     const struct ic_raft_op *op,
                     const char *note)
{
    struct ic_raft_cmd cmd = {0};

    cmd.n_ops = 1;
    cmd.ops = (struct ic_raft_op *)op;
    write_cmd(svc, r, &cmd, note);
}

void ic_node__svc_write_op(struct ic_node_service *svc,
                           struct ic_adhoc_req *r,
                           const struct ic_raft_op *op,
                           const char *note)
{
    write_op(svc, r, op, note);
}

/* The (attribute, value) pairs of a parsed <constraints> element, with the
 * limits of ic_constraints_parse(). The texts are the tree's own where an
 * element holds one text node (the usual case), else copies kept in OWNED
 * (freed by the caller); no allocation per query otherwise. */
struct cons_in {
    struct ic_constraint c[IC_CONSTRAINTS_MAX];
    size_t n;
    char *owned[2 * IC_CONSTRAINTS_MAX];
    size_t nowned;
    char error[256];
};

static const char *text_of(const struct ic_xml *x, struct cons_in *in)
{
    const struct ic_xml *only = NULL;
    size_t texts = 0;

    for (const struct ic_xml *c = x->children; c != NULL; c = c->next)
        if (c->name == NULL) {
            only = c;
            texts++;
        }
    if (texts == 0)
        return "";
    if (texts == 1 && only->text != NULL &&
        strlen(only->text) == only->text_len)
        return only->text;
    return in->owned[in->nowned++] = ic_xml_text(x);
}

static void cons_in_free(struct cons_in *in)
{
    for (size_t i = 0; i < in->nowned; i++)
        ic_free(in->owned[i]);
    in->nowned = 0;
}

static int constraints_of(const struct ic_xml *cs, struct cons_in *in)
{
    in->n = in->nowned = 0;
    for (const struct ic_xml *x = ic_xml_child(cs, "constraint", NS_RES);
         x != NULL; x = ic_xml_next(x, "constraint", NS_RES)) {
        const struct ic_xml *a = ic_xml_child(x, "attribute", NS_RES);
        const struct ic_xml *v = ic_xml_child(x, "value", NS_RES);
        struct ic_constraint *c = &in->c[in->n];
        if (in->n == IC_CONSTRAINTS_MAX) {
            snprintf(in->error, sizeof in->error, "more than %d constraints",
                     IC_CONSTRAINTS_MAX);
            return IC_ELIMIT;
        }
        if (a == NULL || v == NULL) {
            snprintf(in->error, sizeof in->error, "constraint %zu has no <%s>",
                     in->n + 1, a == NULL ? "attribute" : "value");
            return IC_EVALUE;
        }
        c->attribute = text_of(a, in);
        c->value = text_of(v, in);
        in->n++;
        if (strlen(c->attribute) > IC_CONSTRAINT_TEXT_MAX ||
            strlen(c->value) > IC_CONSTRAINT_TEXT_MAX) {
            snprintf(in->error, sizeof in->error, "text longer than %d bytes",
                     IC_CONSTRAINT_TEXT_MAX);
            return IC_ELIMIT;
        }
    }
    return 0;
}

/* recursive='true' and hops='N' on <constraints> (delegation.h); false
 * with an error sent for a bad hops. */
static bool recursion_of(struct ic_adhoc_req *r,
                         const struct ic_xml *c,
                         bool *recursive,
                         unsigned *hops)
{
    const char *rec = ic_xml_attr(c, "recursive");
    const char *h = ic_xml_attr(c, "hops");
    unsigned long v = IC_DELEG_HOPS_DEFAULT;
    char *end = NULL;

    *recursive = rec && (strcmp(rec, "true") == 0 || strcmp(rec, "1") == 0);
    if (h != NULL) {
        v = strtoul(h, &end, 10);
        if (h[0] < '0' || h[0] > '9' || *end != '\0' || strlen(h) > 9) {
            bad(r, "hops is a number of hops (0 or more)");
            return false;
        }
    }
    *hops = (unsigned)(v > IC_DELEG_HOPS_MAX ? IC_DELEG_HOPS_MAX : v);
    return true;
}

static void on_resolved(void *arg, struct ic_xml *io)
{
    ic_adhoc_done(arg, io, NULL, NULL);
}

/* The answer of a query that matched RES locally and concerns REFS. */
static void answer_query(struct ic_node_service *svc,
                         struct ic_adhoc_req *r,
                         const struct cons_in *in,
                         const struct ic_match_result *res,
                         const struct ic_deleg_refs *refs,
                         const char *canon,
                         bool recursive,
                         unsigned hops)
{
    struct ic_deleg_query q = {0};
    struct ic_xml *mc;

    if (refs->n == 0) { /* the seed paper's answer, exactly */
        mc = ic_xml_new("matchingClouds", NS_RES);
        for (size_t i = 0; i < res->n; i++)
            ic_xml_add_text(ic_xml_add(mc, "cloudName", NULL), res->names[i],
                            strlen(res->names[i]));
        ic_adhoc_done(r, ic_node__svc_output(mc), NULL, NULL);
        return;
    }
    q.c = in->c;
    q.n = in->n;
    q.canon = canon;
    q.local = res->names;
    q.nlocal = res->n;
    q.refs = refs;
    q.recursive = recursive;
    q.hops = hops;
    ic_node__deleg_resolve(svc->deleg, &q, on_resolved, r);
}

static void query(void *data, struct ic_adhoc_req *r)
{
    struct ic_node_service *svc = data;
    const struct ic_xml *c = ic_node__svc_input(r, "constraints", NS_RES);
    struct ic_deleg_refs refs = {0};
    struct ic_match_result res = {0};
    struct cons_in in;
    char *canon = NULL;
    bool recursive;
    unsigned hops;
    struct ic_txn *t;
    int rc;

    if (c == NULL) {
        bad(r, "no <constraints xmlns='" NS_RES "'> input");
        return;
    }
    if (!recursion_of(r, c, &recursive, &hops))
        return;
    /* the stream parser has checked the XML already: walk the tree */
    rc = constraints_of(c, &in);
    if (rc != 0) {
        bad(r, in.error);
        cons_in_free(&in);
        return;
    }
    rc = ic_store_txn_begin(svc->st, false, &t);
    if (rc == 0) {
        rc = ic_store_match(t, in.c, in.n, &res);
        if (rc == 0)
            rc = ic_node__deleg_concerned(t, in.c, in.n, &refs, &canon);
        ic_store_txn_abort(t);
    }
    if (rc == IC_EUNKNOWN || rc == IC_EVALUE)
        bad(r, res.error);
    else if (rc != 0)
        ic_adhoc_fail(r, "wait", "internal-server-error", ic_strerror(rc));
    else
        answer_query(svc, r, &in, &res, &refs, canon, recursive, hops);
    cons_in_free(&in);
    ic_node__deleg_refs_free(&refs);
    ic_free(canon);
    ic_match_result_free(&res);
}

/* The cloud a request acts on: the requester's own, or for an admin the
 * one named by a cloud='NAME' attribute. NULL (and an error sent) when a
 * non-admin names another cloud. */
static char *target_named(struct ic_adhoc_req *r, const char *named)
{
    const char *self = ic_adhoc_from_local(r);

    if (named == NULL || named[0] == '\0' || strcmp(named, self) == 0)
        return ic_strdup(self);
    if (!ic_adhoc_is_admin(r)) {
        ic_adhoc_fail(r, "auth", "forbidden",
                      "a cloud may only write its own description");
        return NULL;
    }
    return ic_strdup(named);
}

static char *target_cloud(struct ic_adhoc_req *r, const struct ic_xml *in)
{
    return target_named(r, in ? ic_xml_attr(in, "cloud") : NULL);
}

static char *cloud_iri(struct ic_node_service *svc, const char *cloud)
{
    size_t n = strlen(cloud) + strlen(svc->domain) + 7;
    char *iri = ic_malloc(n);

    snprintf(iri, n, "xmpp:%s@%s", cloud, svc->domain);
    return iri;
}

static int add_iri_quad(
    struct ic_txn *t, uint64_t s, const char *p, uint64_t o, uint64_t g)
{
    struct ic_term pt = ic_term_iri(p);
    uint64_t q[4] = {s, 0, o, g};
    int rc = ic_store_term_id(t, &pt, true, &q[1]);

    return rc != 0 ? rc : ic_store_quad_add_ids(t, q);
}

/* The statements every published description has: the cloud's type and
 * its JID, into graph G. */
static int add_identity(
    struct ic_txn *t, const char *iri, const char *jid, uint64_t g, uint64_t *s)
{
    struct ic_term st = ic_term_iri(iri),
                   cl = ic_term_iri("http://www.csp/resOntology#Cloud");
    struct ic_term jl = ic_term_literal(jid, NULL);
    uint64_t c, j;
    int rc = ic_store_term_id(t, &st, true, s);

    if (rc == 0)
        rc = ic_store_term_id(t, &cl, true, &c);
    if (rc == 0)
        rc = ic_store_term_id(t, &jl, true, &j);
    if (rc == 0)
        rc = add_iri_quad(t, *s, IC_RDF "type", c, g);
    if (rc == 0)
        rc = add_iri_quad(t, *s, "http://www.csp/resOntology#jid", j, g);
    return rc;
}

/* Statements about one subject, as triples for ic_store_terms_replace. */
struct pairs_out {
    struct ic_store_terms *w;
    struct ic_term s;
};

static int
put_statement(void *data, const struct ic_term *p, const struct ic_term *o)
{
    struct pairs_out *out = data;

    return ic_store_terms_put(out->w, &out->s, p, o);
}

/* <resource><attribute>A</attribute><value>V</value></resource>...: the
 * cloud's description as triples (its identity, then each pair as the
 * attribute map states it) in OUT, checked in a read transaction: nothing
 * is written before the cluster applies it. */
static int publish_pairs(struct ic_node_service *svc,
                         const struct ic_xml *res,
                         const char *iri,
                         const char *jid,
                         struct ic_store_terms *triples,
                         char *err,
                         size_t err_len)
{
    struct ic_term type = ic_term_iri(IC_RDF "type"),
                   cl = ic_term_iri("http://www.csp/resOntology#Cloud"),
                   jp = ic_term_iri("http://www.csp/resOntology#jid"),
                   jl = ic_term_literal(jid, NULL);
    struct pairs_out out = {triples, ic_term_iri(iri)};
    struct ic_txn *t = NULL;
    int rc;

    rc = ic_store_txn_begin(svc->st, false, &t);
    if (rc == 0)
        rc = put_statement(&out, &type, &cl);
    if (rc == 0)
        rc = put_statement(&out, &jp, &jl);
    for (const struct ic_xml *x = ic_xml_child(res, "resource", NS_RES);
         x != NULL && rc == 0; x = ic_xml_next(x, "resource", NS_RES)) {
        const struct ic_xml *a = ic_xml_child(x, "attribute", NS_RES);
        const struct ic_xml *v = ic_xml_child(x, "value", NS_RES);
        const char *at, *vt;
        char *own_a, *own_v;
        if (a == NULL || v == NULL) {
            snprintf(err, err_len,
                     "a <resource> needs <attribute> and "
                     "<value>");
            rc = IC_EVALUE;
            break;
        }
        at = ic_xml_text_ref(a, &own_a);
        vt = ic_xml_text_ref(v, &own_v);
        rc = ic_store_attr_statements(t, at, vt, put_statement, &out, err,
                                      err_len);
        ic_free(own_a);
        ic_free(own_v);
    }
    if (t != NULL)
        ic_store_txn_abort(t);
    return rc;
}

/* Every subject of graph G must be the cloud IRI, one of its fragments or
 * a blank node: a cloud describes itself only. */
static int own_statements_only(
    struct ic_txn *t, uint64_t g, const char *iri, char *err, size_t err_len)
{
    uint64_t pat[4] = {0, 0, 0, g}, q[4];
    struct ic_store_iter *it;
    size_t n = strlen(iri);
    int rc = ic_store_iter_new(t, pat, &it);

    while (rc == 0 && (rc = ic_store_iter_next(it, q)) == 0) {
        struct ic_term term;
        char buf[64];
        rc = ic_store_term_get(t, q[0], &term, buf);
        if (rc == 0 && term.kind == IC_TERM_IRI &&
            !(term.len >= n && strncmp(term.value, iri, n) == 0 &&
              (term.len == n || term.value[n] == '#'))) {
            snprintf(err, err_len, "a statement about %s, not %s", term.value,
                     iri);
            rc = IC_EVALUE;
        }
    }
    ic_store_iter_free(it);
    return rc == IC_EEND ? 0 : rc;
}

static int publish_turtle(struct ic_txn *t,
                          const struct ic_xml *ttl,
                          const char *iri,
                          uint64_t g,
                          char *err,
                          size_t err_len)
{
    struct ic_load_opts o = {0};
    struct ic_load_result res;
    char *text = ic_xml_text(ttl);
    int rc;

    o.syntax = IC_RDF_TURTLE;
    o.graph = DRY_RUN_GRAPH;
    o.graphs = IC_LOAD_ONE_GRAPH;
    o.base_uri = iri;
    o.name = "turtle";
    rc = ic_store_load_buffer(t, text, strlen(text), &o, &res);
    ic_free(text);
    if (rc != 0) {
        snprintf(err, err_len, "%s", res.error);
        return rc;
    }
    return own_statements_only(t, g, iri, err, err_len);
}

/* The graph IRI as N-Triples, read in T. */
/* A linearizable read: a no-op command through Raft first; once it is
 * applied here, this node has applied everything committed before the
 * request arrived, so the local read that follows is linearizable. */
struct barrier {
    struct ic_adhoc_req *r;
    struct ic_node_service *svc;
    void (*then)(void *svc, struct ic_adhoc_req *r);
};

static void
on_read_barrier(void *data, int rc, const struct ic_raft_result *res)
{
    struct barrier *b = data;
    struct barrier copy = *b;

    (void)res;
    ic_free(b);
    if (rc != 0)
        ic_adhoc_fail(copy.r, "wait", "internal-server-error",
                      "no linearizable read: no leader reachable, or this "
                      "node could not catch up in time");
    else
        copy.then(copy.svc, copy.r);
}

void ic_node__svc_read(struct ic_node_service *svc,
                       struct ic_adhoc_req *r,
                       const char *mode,
                       void (*then)(void *svc, struct ic_adhoc_req *r))
{
    struct ic_raft_op op = {0};
    struct ic_raft_cmd cmd = {0};
    struct barrier *b;

    if (mode == NULL || strcmp(mode, "local") == 0) {
        then(svc, r);
        return;
    }
    if (strcmp(mode, "linearizable") != 0) {
        bad(r, "consistency is 'local' or 'linearizable'");
        return;
    }
    op.type = IC_RAFT_OP_KV_DEL; /* of a key that never exists: a no-op */
    op.kv.db = IC_KV_CLUSTER;
    op.kv.key = (struct ic_kv){"read-barrier", 12};
    cmd.n_ops = 1;
    cmd.ops = &op;
    b = ic_malloc(sizeof *b);
    *b = (struct barrier){r, svc, then};
    if (ic_node_cluster_write(svc->cluster, &cmd, 0, on_read_barrier, b) != 0) {
        ic_free(b);
        ic_adhoc_fail(r, "wait", "internal-server-error", "cluster closing");
    }
}

/* constraint_catalog_resources: a local read, or with
 * consistency='linearizable' on <constraints>, one after a barrier. */
static void query_entry(void *data, struct ic_adhoc_req *r)
{
    const struct ic_xml *c = ic_node__svc_input(r, "constraints", NS_RES);

    ic_node__svc_read(data, r, c ? ic_xml_attr(c, "consistency") : NULL, query);
}

/* The cloud's new description as triples, which the cluster then writes
 * as the graph's new content, once checked: pairs against the attribute
 * map (publish_pairs); Turtle in a write transaction that is then aborted
 * (its syntax, and statements about the cloud itself only). */
static int publish_dry_run(struct ic_node_service *svc,
                           const struct ic_xml *pairs,
                           const struct ic_xml *ttl,
                           const char *cloud,
                           struct ic_store_terms *triples,
                           char *err,
                           size_t err_len)
{
    char *iri = cloud_iri(svc, cloud), jid[1100];
    struct ic_term scratch = ic_term_iri(DRY_RUN_GRAPH);
    struct ic_txn *t = NULL;
    uint64_t s, g;
    int rc;

    snprintf(jid, sizeof jid, "%s@%s", cloud, svc->domain);
    if (pairs != NULL) {
        rc = publish_pairs(svc, pairs, iri, jid, triples, err, err_len);
        ic_free(iri);
        return rc;
    }
    /* into a graph no transaction ever commits: always empty, nothing to
     * clear first; the transaction is aborted */
    rc = ic_store_txn_begin(svc->st, true, &t);
    if (rc == 0)
        rc = ic_store_term_id(t, &scratch, true, &g);
    if (rc == 0)
        rc = add_identity(t, iri, jid, g, &s);
    if (rc == 0)
        rc = publish_turtle(t, ttl, iri, g, err, err_len);
    if (rc == 0)
        rc = ic_store_graph_terms(t, DRY_RUN_GRAPH, triples);
    if (t != NULL)
        ic_store_txn_abort(t);
    ic_free(iri);
    return rc;
}

static void publish(void *data, struct ic_adhoc_req *r)
{
    struct ic_node_service *svc = data;
    const struct ic_xml *pairs = ic_node__svc_input(r, "resources", NS_RES);
    const struct ic_xml *ttl = ic_node__svc_input(r, "turtle", NS_RES);
    char err[512] = "", *cloud;
    struct ic_store_terms triples = {0};
    struct ic_raft_op op = {0};
    int rc;

    if ((pairs == NULL) == (ttl == NULL)) {
        bad(r, "give either <resources> or <turtle> in the "
               "http://www.csp/resOntology namespace");
        return;
    }
    cloud = target_cloud(r, pairs ? pairs : ttl);
    if (cloud == NULL)
        return;
    rc = publish_dry_run(svc, pairs, ttl, cloud, &triples, err, sizeof err);
    if (rc == 0)
        rc = ic_store_terms_end(&triples);
    if (rc == IC_EUNKNOWN || rc == IC_EVALUE || rc == IC_ESYNTAX) {
        bad(r, err);
    } else if (rc != 0) {
        ic_adhoc_fail(r, "wait", "internal-server-error",
                      err[0] ? err : ic_strerror(rc));
    } else {
        op.type = IC_RAFT_OP_GRAPH_TERMS;
        op.rdf.graph = cloud_iri(svc, cloud);
        op.rdf.text = (const char *)triples.buf;
        op.rdf.text_len = triples.len;
        write_op(svc, r, &op, "published");
        ic_free((char *)op.rdf.graph);
    }
    ic_store_terms_free(&triples);
    ic_free(cloud);
}

static void withdraw(void *data, struct ic_adhoc_req *r)
{
    struct ic_node_service *svc = data;
    const struct ic_xml *c = ic_node__svc_input(r, "cloud", NS_RES);
    char *named = c ? ic_xml_text(c) : NULL;
    char *cloud = target_named(r, named), *iri;
    struct ic_raft_op op = {0};

    ic_free(named);
    if (cloud == NULL)
        return;
    op.type = IC_RAFT_OP_GRAPH_CLEAR;
    op.rdf.graph = iri = cloud_iri(svc, cloud);
    write_op(svc, r, &op, "withdrawn");
    ic_free(iri);
    ic_free(cloud);
}

static void describe(void *data, struct ic_adhoc_req *r)
{
    struct ic_node_service *svc = data;
    const struct ic_xml *c = ic_node__svc_input(r, "cloud", NS_RES);
    char *name = c ? ic_xml_text(c) : ic_strdup(ic_adhoc_from_local(r));
    char *iri = cloud_iri(svc, name), *text = NULL;
    size_t len = 0;
    struct ic_xml *ttl;
    struct ic_txn *t;
    FILE *f = open_memstream(&text, &len);
    int rc = f ? ic_store_txn_begin(svc->st, false, &t) : IC_ENOMEM;

    if (rc == 0) {
        rc = ic_store_dump(t, iri, IC_RDF_TURTLE, f);
        ic_store_txn_abort(t);
    }
    if (f != NULL)
        fclose(f);
    if (rc != 0) {
        ic_adhoc_fail(r, "wait", "internal-server-error", ic_strerror(rc));
    } else {
        ttl = ic_xml_new("turtle", NS_RES);
        ic_xml_set_attr(ttl, "cloud", name);
        ic_xml_add_text(ttl, text ? text : "", len);
        ic_adhoc_done(r, ic_node__svc_output(ttl), NULL, NULL);
    }
    free(text);
    ic_free(iri);
    ic_free(name);
}

/* <account><user>U</user><password>P</password><admin>true</admin> */
static char *field(const struct ic_xml *acc, const char *name)
{
    const struct ic_xml *x = acc ? ic_xml_child(acc, name, NS_RES) : NULL;
    char *t = x ? ic_xml_text(x) : NULL;

    if (t != NULL && t[0] == '\0') {
        ic_free(t);
        t = NULL;
    }
    return t;
}

/* The account record for PASSWORD, written through the cluster. */
static void write_account_put(struct ic_node_service *svc,
                              struct ic_adhoc_req *r,
                              const char *local,
                              const char *password,
                              bool admin)
{
    struct ic_raft_op op = {0};
    char *rec;
    int rc = ic_node_account_record(password, 4096, admin, &rec);

    if (rc != 0) {
        bad(r, rc == IC_EINVAL ? "the password is empty, too long or not "
                                 "valid UTF-8 (SASLprep)"
                               : ic_strerror(rc));
        return;
    }
    op.type = IC_RAFT_OP_KV_PUT;
    op.kv.db = IC_KV_ACCOUNTS;
    op.kv.key = (struct ic_kv){local, strlen(local)};
    op.kv.val = (struct ic_kv){rec, strlen(rec)};
    write_op(svc, r, &op, "done");
    free(rec);
}

/* The account and its roster go in one command. */
static void write_account_del(struct ic_node_service *svc,
                              struct ic_adhoc_req *r,
                              const char *local)
{
    struct ic_raft_op ops[2] = {{0}, {0}};
    struct ic_raft_cmd cmd = {0};

    for (int i = 0; i < 2; i++) {
        ops[i].type = IC_RAFT_OP_KV_DEL;
        ops[i].kv.db = i == 0 ? IC_KV_ACCOUNTS : IC_KV_ROSTERS;
        ops[i].kv.key = (struct ic_kv){local, strlen(local)};
    }
    cmd.batch = true;
    cmd.n_ops = 2;
    cmd.ops = ops;
    write_cmd(svc, r, &cmd, "done");
}

static void
account_cmd(struct ic_node_service *svc, struct ic_adhoc_req *r, int op)
{
    const struct ic_xml *acc = ic_node__svc_input(r, "account", NS_RES);
    char *user = field(acc, "user"), *pw = field(acc, "password");
    char *admin = field(acc, "admin"), *local = NULL;
    int rc = 0;

    if (user == NULL && op == 2)
        user = ic_strdup(ic_adhoc_from_local(r));
    local = user ? ic_jid_nodeprep(user) : NULL;
    if (local == NULL || (op != 1 && pw == NULL)) {
        bad(r, "give <account> with a valid <user> and a <password>");
    } else if (op == 2 && !ic_adhoc_is_admin(r) &&
               strcmp(local, ic_adhoc_from_local(r)) != 0) {
        ic_adhoc_fail(r, "auth", "forbidden", "only your own password");
    } else {
        bool was_admin = false;
        struct ic_scram_creds c;
        if (op != 0)
            rc = ic_node_account_creds(svc->st, local, IC_SCRAM_SHA256, &c,
                                       &was_admin);
        if (rc == IC_ENOTFOUND) {
            ic_adhoc_fail(r, "cancel", "item-not-found", "no such account");
            goto out;
        }
        if (op == 1)
            write_account_del(svc, r, local);
        else
            write_account_put(svc, r, local, pw,
                              op == 0 ? admin && strcmp(admin, "true") == 0
                                      : was_admin);
    }
out:
    if (pw != NULL)
        memset(pw, 0, strlen(pw));
    ic_free(user);
    ic_free(pw);
    ic_free(admin);
    ic_free(local);
}

static void add_account(void *data, struct ic_adhoc_req *r)
{
    account_cmd(data, r, 0);
}

static void delete_account(void *data, struct ic_adhoc_req *r)
{
    account_cmd(data, r, 1);
}

static void change_password(void *data, struct ic_adhoc_req *r)
{
    account_cmd(data, r, 2);
}

/* <turtle graph='IRI'>...</turtle>: replaces graph IRI (admin). */
static void load_catalog(void *data, struct ic_adhoc_req *r)
{
    struct ic_node_service *svc = data;
    const struct ic_xml *ttl = ic_node__svc_input(r, "turtle", NS_RES);
    const char *graph = ttl ? ic_xml_attr(ttl, "graph") : NULL;
    struct ic_raft_op op = {0};
    char *text;

    if (ttl == NULL || graph == NULL) {
        bad(r, "give <turtle graph='IRI'> with the Turtle text");
        return;
    }
    text = ic_xml_text(ttl);
    op.type = IC_RAFT_OP_RDF_LOAD;
    op.rdf.syntax = IC_RDF_TURTLE;
    op.rdf.graphs = IC_LOAD_BY_SUBJECT;
    op.rdf.replace = true;
    op.rdf.graph = graph;
    op.rdf.base = graph;
    op.rdf.text = text;
    op.rdf.text_len = strlen(text);
    write_op(svc, r, &op, "loaded");
    ic_free(text);
}

static const struct ic_adhoc_command commands[] = {
    {"constraint_catalog_resources", "Find clouds matching constraints", false,
     query_entry},
    {"publish_resources", "Publish this cloud's resources", false, publish},
    {"withdraw_resources", "Withdraw this cloud's resources", false, withdraw},
    {"describe_cloud", "Describe a cloud", false, describe},
    {"change_password", "Change a password", false, change_password},
    {"add_account", "Add an account", true, add_account},
    {"delete_account", "Delete an account", true, delete_account},
    {"load_catalog", "Load Turtle into the catalog", true, load_catalog},
    {"dump_catalog", "Dump the catalog", true, ic_node__svc_dump_catalog},
    {"list_accounts", "List the accounts", true, ic_node__svc_list_accounts},
    {"node_status", "Show the node's status", true, ic_node__svc_status},
    {"add_node", "Add a node to the cluster", true, ic_node__svc_add_node},
    {"remove_node", "Remove a node from the cluster", true,
     ic_node__svc_remove_node},
    {"transfer_leadership", "Hand Raft leadership to a node", true,
     ic_node__svc_transfer},
    {"add_delegation", "Delegate a scope to an exchange", true,
     ic_node__svc_add_delegation},
    {"remove_delegation", "Remove a delegation", true,
     ic_node__svc_remove_delegation},
    {"list_delegations", "List the delegations", true,
     ic_node__svc_list_delegations},
};

/* The network side of recursive queries: iq requests from the service's
 * own JID (to another domain over S2S). */
static int send_iq(void *ctx,
                   struct ic_xml *iq,
                   unsigned timeout_ms,
                   ic_xmpp_iq_cb cb,
                   void *arg)
{
    struct ic_node_service *svc = ctx;

    return ic_xmpp_component_iq(svc->srv, svc->jid, iq, timeout_ms, cb, arg);
}

static uint64_t clock_ms(void *ctx)
{
    (void)ctx;
    return uv_hrtime() / 1000000;
}

int ic_node_service_start(struct ic_xmpp_server *srv,
                          struct ic_store *st,
                          struct ic_node_cluster *cluster,
                          const char *domain,
                          struct ic_node_service **out)
{
    struct ic_node_service *svc = ic_calloc(1, sizeof *svc);
    struct ic_xmpp_component comp = {0};
    struct ic_deleg_seam seam = {send_iq, clock_ms, NULL, 0};
    size_t n = strlen(domain) + 9;
    int rc;

    svc->st = st;
    svc->srv = srv;
    svc->cluster = cluster;
    svc->started_ms = uv_hrtime() / 1000000;
    svc->domain = ic_strdup(domain);
    svc->jid = ic_malloc(n);
    snprintf(svc->jid, n, "service.%s", domain);
    seam.ctx = svc;
    svc->deleg = ic_node__deleg_resolver_new(&seam, domain);
    comp.jid = svc->jid;
    comp.identity_category = "directory";
    comp.identity_type = "cloud";
    comp.identity_name = "Intercloud Root catalog";
    comp.commands = commands;
    comp.ncommands = IC_ARRAY_LEN(commands);
    comp.data = svc;
    rc = ic_xmpp_component_add(srv, &comp);
    if (rc != 0) {
        ic_node_service_free(svc);
        return rc;
    }
    *out = svc;
    return 0;
}

void ic_node_service_free(struct ic_node_service *svc)
{
    if (svc == NULL)
        return;
    ic_node__deleg_resolver_free(svc->deleg);
    ic_free(svc->domain);
    ic_free(svc->jid);
    ic_free(svc);
}
