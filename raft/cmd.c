/*
 * cmd.c - the binary encoding of commands for the Raft log (layout in
 * raft/README.md). Integers are big-endian; every length is checked
 * against what is left before it is used.
 *
 * Wire codes are fixed here, not taken from the enums' values, so that
 * reordering an enum cannot change the meaning of a stored log entry.
 */
#include <string.h>

#include "raft_int.h"

/* Wire codes */

static int syntax_to_wire(enum ic_rdf_syntax s)
{
    switch (s) {
    case IC_RDF_TURTLE:
        return 1;
    case IC_RDF_NTRIPLES:
        return 2;
    case IC_RDF_NQUADS:
        return 3;
    case IC_RDF_TRIG:
        return 4;
    default:
        return -1;
    }
}

static int syntax_from_wire(unsigned w, enum ic_rdf_syntax *s)
{
    static const enum ic_rdf_syntax map[] = {IC_RDF_TURTLE, IC_RDF_NTRIPLES,
                                             IC_RDF_NQUADS, IC_RDF_TRIG};

    if (w < 1 || w > IC_ARRAY_LEN(map))
        return IC_ECORRUPT;
    *s = map[w - 1];
    return 0;
}

/* Presence (wire code 3) is written by presence batches only. */
static int db_to_wire(enum ic_kv_db db)
{
    switch (db) {
    case IC_KV_ACCOUNTS:
        return 1;
    case IC_KV_ROSTERS:
        return 2;
    case IC_KV_DELEGATIONS:
        return 4;
    case IC_KV_CLUSTER:
        return 5;
    default:
        return -1;
    }
}

static int db_from_wire(unsigned w, enum ic_kv_db *db)
{
    switch (w) {
    case 1:
        *db = IC_KV_ACCOUNTS;
        return 0;
    case 2:
        *db = IC_KV_ROSTERS;
        return 0;
    case 4:
        *db = IC_KV_DELEGATIONS;
        return 0;
    case 5:
        *db = IC_KV_CLUSTER;
        return 0;
    default:
        return IC_ECORRUPT;
    }
}

static bool op_known(unsigned type)
{
    switch (type) {
    case IC_RAFT_OP_GRAPH_REPLACE:
    case IC_RAFT_OP_GRAPH_CLEAR:
    case IC_RAFT_OP_RDF_LOAD:
    case IC_RAFT_OP_GRAPH_TERMS:
    case IC_RAFT_OP_KV_PUT:
    case IC_RAFT_OP_KV_DEL:
    case IC_RAFT_OP_KV_UPDATE:
    case IC_RAFT_OP_PRESENCE_BATCH:
    case IC_RAFT_OP_NODE_LEASE:
    case IC_RAFT_OP_TERMS_SWEEP:
        return true;
    default:
        return false;
    }
}

/* Whether TYPE is a command of its own, never inside a batch. */
static bool op_alone(unsigned type)
{
    return type == IC_RAFT_OP_PRESENCE_BATCH || type == IC_RAFT_OP_NODE_LEASE ||
           type == IC_RAFT_OP_TERMS_SWEEP;
}

/* Checking */

static bool iri_ok(const char *iri, bool required)
{
    size_t n;

    if (iri == NULL)
        return !required;
    n = strlen(iri);
    return (n > 0 || !required) && n <= IC_RAFT_IRI_MAX;
}

static bool bytes_ok(const void *p, size_t len, size_t max)
{
    return len <= max && (p != NULL || len == 0);
}

static bool rdf_ok(const struct ic_raft_op *op)
{
    const struct ic_raft_rdf *r = &op->rdf;

    if (!iri_ok(r->graph, true))
        return false;
    if (op->type == IC_RAFT_OP_GRAPH_CLEAR)
        return true;
    if (op->type == IC_RAFT_OP_GRAPH_TERMS)
        return bytes_ok(r->text, r->text_len, UINT32_MAX);
    if (!iri_ok(r->base, false) || !bytes_ok(r->text, r->text_len, UINT32_MAX))
        return false;
    if (op->type == IC_RAFT_OP_GRAPH_REPLACE)
        return r->syntax == IC_RDF_TURTLE || r->syntax == IC_RDF_NTRIPLES;
    return syntax_to_wire(r->syntax) > 0 &&
           (r->graphs == IC_LOAD_ONE_GRAPH || r->graphs == IC_LOAD_BY_SUBJECT);
}

/* A full JID: 1 to IC_RAFT_JID_MAX bytes, none a control character (the
 * store keeps its own records under keys starting with 0x00 and 0x01), a
 * '/' that is neither first nor last. */
static bool jid_ok(const unsigned char *p, size_t n)
{
    const unsigned char *slash;

    if (n == 0 || n > IC_RAFT_JID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20)
            return false;
    slash = memchr(p, '/', n);
    return slash != NULL && slash != p && slash != p + n - 1;
}

static bool presence_ok(const struct ic_raft_presence *b)
{
    if (b->node == 0 || b->incarnation == 0 || b->items == NULL ||
        b->n_items == 0 || b->n_items > IC_RAFT_PRESENCE_MAX)
        return false;
    for (size_t i = 0; i < b->n_items; i++) {
        const struct ic_raft_presence_item *it = &b->items[i];
        if (it->jid == NULL ||
            !jid_ok((const unsigned char *)it->jid, strlen(it->jid)))
            return false;
        if (it->available &&
            !bytes_ok(it->payload.data, it->payload.len, UINT32_MAX))
            return false;
    }
    return true;
}

static bool lease_ok(const struct ic_raft_lease *l)
{
    return l->node != 0 && l->incarnation != 0 &&
           (l->action == IC_RAFT_LEASE_START ||
            l->action == IC_RAFT_LEASE_REVOKE);
}

static bool op_ok(const struct ic_raft_op *op)
{
    const struct ic_raft_kvop *kv = &op->kv;

    switch (op->type) {
    case IC_RAFT_OP_PRESENCE_BATCH:
        return presence_ok(&op->presence);
    case IC_RAFT_OP_NODE_LEASE:
        return lease_ok(&op->lease);
    case IC_RAFT_OP_TERMS_SWEEP:
        return op->sweep_max >= 1 && op->sweep_max <= IC_RAFT_SWEEP_MAX;
    case IC_RAFT_OP_GRAPH_REPLACE:
    case IC_RAFT_OP_GRAPH_CLEAR:
    case IC_RAFT_OP_RDF_LOAD:
    case IC_RAFT_OP_GRAPH_TERMS:
        return rdf_ok(op);
    case IC_RAFT_OP_KV_PUT:
    case IC_RAFT_OP_KV_DEL:
    case IC_RAFT_OP_KV_UPDATE:
        if (op->type != IC_RAFT_OP_KV_DEL &&
            !bytes_ok(kv->val.data, kv->val.len, UINT32_MAX))
            return false;
        if (op->type == IC_RAFT_OP_KV_UPDATE && kv->update == 0)
            return false;
        return db_to_wire(kv->db) > 0 && kv->key.len > 0 &&
               bytes_ok(kv->key.data, kv->key.len, IC_RAFT_KEY_MAX);
    default:
        return false;
    }
}

static bool cmd_ok(const struct ic_raft_cmd *cmd)
{
    if (cmd->client == 0 || cmd->seq == 0 || cmd->ops == NULL ||
        cmd->n_ops == 0 || cmd->n_ops > IC_RAFT_BATCH_MAX ||
        (!cmd->batch && cmd->n_ops != 1))
        return false;
    for (size_t i = 0; i < cmd->n_ops; i++)
        if (!op_ok(&cmd->ops[i]) ||
            (cmd->batch && op_alone((unsigned)cmd->ops[i].type)))
            return false;
    return true;
}

/* Writing: with p == NULL only counts. */

struct wr {
    unsigned char *p;
    size_t len;
};

static void w_bytes(struct wr *w, const void *data, size_t n)
{
    if (w->p != NULL && n > 0)
        memcpy(w->p + w->len, data, n);
    w->len += n;
}

static void w_uint(struct wr *w, uint64_t v, int bytes)
{
    unsigned char b[8];

    for (int i = 0; i < bytes; i++)
        b[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    w_bytes(w, b, (size_t)bytes);
}

static void w_str16(struct wr *w, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    w_uint(w, n, 2);
    w_bytes(w, s, n);
}

static void w_presence(struct wr *w, const struct ic_raft_presence *b)
{
    w_uint(w, b->node, 2);
    w_uint(w, b->incarnation, 8);
    w_uint(w, b->n_items, 2);
    for (size_t i = 0; i < b->n_items; i++) {
        const struct ic_raft_presence_item *it = &b->items[i];
        w_str16(w, it->jid);
        w_uint(w, it->available ? 1 : 0, 1);
        if (it->available) {
            w_uint(w, it->payload.len, 4);
            w_bytes(w, it->payload.data, it->payload.len);
        }
    }
}

static void w_op(struct wr *w, const struct ic_raft_op *op)
{
    const struct ic_raft_rdf *r = &op->rdf;

    switch (op->type) {
    case IC_RAFT_OP_PRESENCE_BATCH:
        w_presence(w, &op->presence);
        return;
    case IC_RAFT_OP_NODE_LEASE:
        w_uint(w, op->lease.node, 2);
        w_uint(w, op->lease.incarnation, 8);
        w_uint(w, (uint64_t)op->lease.action, 1);
        return;
    case IC_RAFT_OP_TERMS_SWEEP:
        w_uint(w, op->sweep_max, 4);
        return;
    case IC_RAFT_OP_GRAPH_CLEAR:
        w_str16(w, r->graph);
        return;
    case IC_RAFT_OP_GRAPH_TERMS:
        w_str16(w, r->graph);
        w_uint(w, r->text_len, 4);
        w_bytes(w, r->text, r->text_len);
        return;
    case IC_RAFT_OP_GRAPH_REPLACE:
    case IC_RAFT_OP_RDF_LOAD:
        w_uint(w, (uint64_t)syntax_to_wire(r->syntax), 1);
        if (op->type == IC_RAFT_OP_RDF_LOAD) {
            w_uint(w, r->graphs == IC_LOAD_BY_SUBJECT, 1);
            w_uint(w, r->replace ? 1 : 0, 1);
        }
        w_str16(w, r->graph);
        w_str16(w, r->base);
        w_uint(w, r->text_len, 4);
        w_bytes(w, r->text, r->text_len);
        return;
    case IC_RAFT_OP_KV_PUT:
    case IC_RAFT_OP_KV_DEL:
    case IC_RAFT_OP_KV_UPDATE:
        w_uint(w, (uint64_t)db_to_wire(op->kv.db), 1);
        w_uint(w, op->kv.key.len, 2);
        w_bytes(w, op->kv.key.data, op->kv.key.len);
        if (op->type == IC_RAFT_OP_KV_UPDATE)
            w_uint(w, op->kv.update, 1);
        if (op->type != IC_RAFT_OP_KV_DEL) {
            w_uint(w, op->kv.val.len, 4);
            w_bytes(w, op->kv.val.data, op->kv.val.len);
        }
        return;
    }
}

static void w_cmd(struct wr *w, const struct ic_raft_cmd *cmd)
{
    w_uint(w, IC_RAFT_CMD_VERSION, 1);
    w_uint(w, cmd->batch ? IC_RAFT_TYPE_BATCH : (uint64_t)cmd->ops[0].type, 1);
    w_uint(w, cmd->client, 8);
    w_uint(w, cmd->seq, 8);
    if (!cmd->batch) {
        w_op(w, &cmd->ops[0]);
        return;
    }
    w_uint(w, cmd->n_ops, 2);
    for (size_t i = 0; i < cmd->n_ops; i++) {
        w_uint(w, (uint64_t)cmd->ops[i].type, 1);
        w_op(w, &cmd->ops[i]);
    }
}

/* raft's disk I/O takes entries whose length is a multiple of 8: the
 * encoding ends with 0 to 7 zero bytes to get there. */
static size_t padded(size_t len)
{
    return (len + 7) & ~(size_t)7;
}

int ic_raft_cmd_size(const struct ic_raft_cmd *cmd, size_t *len)
{
    struct wr w = {NULL, 0};

    if (!cmd_ok(cmd))
        return IC_EINVAL;
    w_cmd(&w, cmd);
    if (padded(w.len) > IC_RAFT_CMD_MAX)
        return IC_ELIMIT;
    *len = padded(w.len);
    return 0;
}

int ic_raft_cmd_encode(const struct ic_raft_cmd *cmd, void *buf, size_t len)
{
    struct wr w = {NULL, 0};
    size_t need;
    int rc = ic_raft_cmd_size(cmd, &need);

    if (rc != 0)
        return rc;
    if (need != len)
        return IC_EINVAL;
    w.p = buf;
    w_cmd(&w, cmd);
    memset(w.p + w.len, 0, len - w.len);
    return 0;
}

/* Reading. A first pass with no output counts ops, presence items and
 * string bytes; the second fills the command. */

struct rd {
    const unsigned char *p;
    size_t left;
    char *arena; /* NULL in the counting pass */
    size_t used; /* arena bytes (IRIs and JIDs with their NULs) */
    struct ic_raft_presence_item *items; /* NULL in the counting pass */
    size_t n_items;                      /* items read so far */
};

static const unsigned char *take(struct rd *r, size_t n)
{
    const unsigned char *p = r->p;

    if (n > r->left)
        return NULL;
    r->p += n;
    r->left -= n;
    return p;
}

static int r_uint(struct rd *r, int bytes, uint64_t *v)
{
    const unsigned char *p = take(r, (size_t)bytes);

    if (p == NULL)
        return IC_ECORRUPT;
    *v = 0;
    for (int i = 0; i < bytes; i++)
        *v = (*v << 8) | p[i];
    return 0;
}

/* A 16-bit-length IRI: no NUL inside, at most IC_RAFT_IRI_MAX; "" is NULL
 * unless REQUIRED (then refused). */
static int r_iri(struct rd *r, bool required, const char **out)
{
    const unsigned char *p;
    uint64_t n;

    if (r_uint(r, 2, &n) != 0 || n > IC_RAFT_IRI_MAX || (n == 0 && required) ||
        (p = take(r, (size_t)n)) == NULL || memchr(p, '\0', (size_t)n) != NULL)
        return IC_ECORRUPT;
    if (r->arena != NULL) {
        char *s = r->arena + r->used;
        memcpy(s, p, (size_t)n);
        s[n] = '\0';
        *out = n > 0 ? s : NULL;
    }
    r->used += (size_t)n + 1;
    return 0;
}

static int r_blob(struct rd *r, int lenbytes, struct ic_kv *out)
{
    uint64_t n;
    const unsigned char *p;

    if (r_uint(r, lenbytes, &n) != 0 || (p = take(r, (size_t)n)) == NULL)
        return IC_ECORRUPT;
    out->data = p;
    out->len = (size_t)n;
    return 0;
}

static int r_rdf(struct rd *r, unsigned type, struct ic_raft_rdf *o)
{
    uint64_t syn = 0, mode = 0, flags = 0;
    struct ic_kv text;
    int rc = 0;

    if (type == IC_RAFT_OP_GRAPH_CLEAR)
        return r_iri(r, true, &o->graph);
    if (type == IC_RAFT_OP_GRAPH_TERMS) {
        rc = r_iri(r, true, &o->graph);
        if (rc == 0)
            rc = r_blob(r, 4, &text);
        if (rc == 0) {
            o->text = text.data;
            o->text_len = text.len;
        }
        return rc;
    }
    rc = r_uint(r, 1, &syn);
    if (rc == 0 && type == IC_RAFT_OP_RDF_LOAD) {
        rc = r_uint(r, 1, &mode);
        if (rc == 0)
            rc = r_uint(r, 1, &flags);
        if (rc == 0 && (mode > 1 || flags > 1))
            rc = IC_ECORRUPT;
    }
    if (rc == 0)
        rc = syntax_from_wire((unsigned)syn, &o->syntax);
    if (rc == 0 && type == IC_RAFT_OP_GRAPH_REPLACE && syn > 2)
        rc = IC_ECORRUPT;
    if (rc == 0)
        rc = r_iri(r, true, &o->graph);
    if (rc == 0)
        rc = r_iri(r, false, &o->base);
    if (rc == 0)
        rc = r_blob(r, 4, &text);
    if (rc != 0)
        return rc;
    o->graphs = mode ? IC_LOAD_BY_SUBJECT : IC_LOAD_ONE_GRAPH;
    o->replace = flags & 1;
    o->text = text.data;
    o->text_len = text.len;
    return 0;
}

static int r_kv(struct rd *r, unsigned type, struct ic_raft_kvop *o)
{
    uint64_t db;
    int rc;

    rc = r_uint(r, 1, &db);
    if (rc == 0)
        rc = db_from_wire((unsigned)db, &o->db);
    if (rc == 0)
        rc = r_blob(r, 2, &o->key);
    if (rc == 0 && (o->key.len == 0 || o->key.len > IC_RAFT_KEY_MAX))
        rc = IC_ECORRUPT;
    if (rc == 0 && type == IC_RAFT_OP_KV_UPDATE) {
        uint64_t id = 0;
        rc = r_uint(r, 1, &id);
        o->update = (uint8_t)id;
        if (rc == 0 && id == 0)
            rc = IC_ECORRUPT;
    }
    if (rc == 0 && type != IC_RAFT_OP_KV_DEL)
        rc = r_blob(r, 4, &o->val);
    return rc;
}

/* A presence item's JID, checked (jid_ok) and copied like an IRI. */
static int r_jid(struct rd *r, const char **out)
{
    const unsigned char *p;
    uint64_t n;

    if (r_uint(r, 2, &n) != 0 || (p = take(r, (size_t)n)) == NULL ||
        !jid_ok(p, (size_t)n))
        return IC_ECORRUPT;
    if (r->arena != NULL) {
        char *s = r->arena + r->used;
        memcpy(s, p, (size_t)n);
        s[n] = '\0';
        *out = s;
    }
    r->used += (size_t)n + 1;
    return 0;
}

static int r_item(struct rd *r, struct ic_raft_presence_item *it)
{
    uint64_t avail;
    int rc = r_jid(r, &it->jid);

    if (rc == 0 && (r_uint(r, 1, &avail) != 0 || avail > 1))
        rc = IC_ECORRUPT;
    if (rc == 0 && avail == 1) {
        it->available = true;
        rc = r_blob(r, 4, &it->payload);
    }
    return rc;
}

static int r_presence(struct rd *r, struct ic_raft_presence *o)
{
    struct ic_raft_presence_item scratch, *it;
    uint64_t node, inc, n;
    int rc;

    if (r_uint(r, 2, &node) != 0 || r_uint(r, 8, &inc) != 0 ||
        r_uint(r, 2, &n) != 0 || node == 0 || inc == 0 || n == 0 ||
        n > IC_RAFT_PRESENCE_MAX)
        return IC_ECORRUPT;
    o->node = (uint16_t)node;
    o->incarnation = inc;
    o->n_items = (size_t)n;
    o->items = r->items != NULL ? r->items + r->n_items : NULL;
    for (uint64_t i = 0; i < n; i++) {
        it = r->items != NULL ? &r->items[r->n_items] : &scratch;
        memset(it, 0, sizeof *it);
        rc = r_item(r, it);
        if (rc != 0)
            return rc;
        r->n_items++;
    }
    return 0;
}

static int r_lease(struct rd *r, struct ic_raft_lease *o)
{
    uint64_t node, inc, action;

    if (r_uint(r, 2, &node) != 0 || r_uint(r, 8, &inc) != 0 ||
        r_uint(r, 1, &action) != 0 || node == 0 || inc == 0 ||
        (action != IC_RAFT_LEASE_START && action != IC_RAFT_LEASE_REVOKE))
        return IC_ECORRUPT;
    o->node = (uint16_t)node;
    o->incarnation = inc;
    o->action = (enum ic_raft_lease_action)action;
    return 0;
}

static int r_sweep(struct rd *r, uint32_t *max)
{
    uint64_t n;

    if (r_uint(r, 4, &n) != 0 || n == 0 || n > IC_RAFT_SWEEP_MAX)
        return IC_ECORRUPT;
    *max = (uint32_t)n;
    return 0;
}

/* One operation's body into OP (scratch in the counting pass). */
static int r_op(struct rd *r, unsigned type, struct ic_raft_op *op)
{
    memset(op, 0, sizeof *op);
    op->type = (enum ic_raft_op_type)type;
    switch (type) {
    case IC_RAFT_OP_KV_PUT:
    case IC_RAFT_OP_KV_DEL:
    case IC_RAFT_OP_KV_UPDATE:
        return r_kv(r, type, &op->kv);
    case IC_RAFT_OP_PRESENCE_BATCH:
        return r_presence(r, &op->presence);
    case IC_RAFT_OP_NODE_LEASE:
        return r_lease(r, &op->lease);
    case IC_RAFT_OP_TERMS_SWEEP:
        return r_sweep(r, &op->sweep_max);
    default:
        return r_rdf(r, type, &op->rdf);
    }
}

/* Parses the whole command; OPS (room for every op) is NULL in the counting
 * pass, where *N_OPS gets the count. */
static int r_cmd(struct rd *r, struct ic_raft_cmd *cmd, struct ic_raft_op *ops)
{
    uint64_t version, type, n = 1, sub;
    struct ic_raft_op scratch;
    int rc;

    if (r_uint(r, 1, &version) != 0)
        return IC_ECORRUPT;
    if (version != IC_RAFT_CMD_VERSION)
        return IC_EFORMAT;
    if (r_uint(r, 1, &type) != 0)
        return IC_ECORRUPT;
    if (type != IC_RAFT_TYPE_BATCH && !op_known((unsigned)type))
        return IC_EFORMAT;
    if (r_uint(r, 8, &cmd->client) != 0 || r_uint(r, 8, &cmd->seq) != 0 ||
        cmd->client == 0 || cmd->seq == 0)
        return IC_ECORRUPT;
    cmd->batch = type == IC_RAFT_TYPE_BATCH;
    if (cmd->batch &&
        (r_uint(r, 2, &n) != 0 || n == 0 || n > IC_RAFT_BATCH_MAX))
        return IC_ECORRUPT;
    for (uint64_t i = 0; i < n; i++) {
        sub = type;
        if (cmd->batch && r_uint(r, 1, &sub) != 0)
            return IC_ECORRUPT;
        if (sub == IC_RAFT_TYPE_BATCH ||
            (cmd->batch && op_alone((unsigned)sub)))
            return IC_ECORRUPT; /* batches do not nest */
        if (!op_known((unsigned)sub))
            return IC_EFORMAT;
        rc = r_op(r, (unsigned)sub, ops != NULL ? &ops[i] : &scratch);
        if (rc != 0)
            return rc;
    }
    /* the padding: fewer than 8 bytes, all zero */
    if (r->left >= 8)
        return IC_ECORRUPT;
    for (size_t i = 0; i < r->left; i++)
        if (r->p[i] != 0)
            return IC_ECORRUPT;
    cmd->n_ops = (size_t)n;
    return 0;
}

static size_t align(size_t at, size_t a)
{
    return (at + a - 1) & ~(a - 1);
}

int ic_raft_cmd_decode(const void *buf, size_t len, struct ic_raft_cmd **out)
{
    struct rd r = {buf, len, NULL, 0, NULL, 0};
    struct ic_raft_cmd probe, *cmd;
    size_t ops_at, items_at, arena_at;
    int rc;

    if (len > IC_RAFT_CMD_MAX || len % 8 != 0)
        return len > 0 && ((const unsigned char *)buf)[0] != IC_RAFT_CMD_VERSION
                   ? IC_EFORMAT
                   : IC_ECORRUPT;
    rc = r_cmd(&r, &probe, NULL);
    if (rc != 0)
        return rc;
    ops_at = align(sizeof *cmd, _Alignof(struct ic_raft_op));
    items_at = align(ops_at + probe.n_ops * sizeof(struct ic_raft_op),
                     _Alignof(struct ic_raft_presence_item));
    arena_at = items_at + r.n_items * sizeof(struct ic_raft_presence_item);
    cmd = ic_calloc(1, arena_at + r.used);
    cmd->ops = (struct ic_raft_op *)(void *)((char *)cmd + ops_at);
    r.p = buf;
    r.left = len;
    r.arena = (char *)cmd + arena_at;
    r.used = 0;
    r.items = (struct ic_raft_presence_item *)(void *)((char *)cmd + items_at);
    r.n_items = 0;
    rc = r_cmd(&r, cmd, cmd->ops);
    if (rc != 0) { /* cannot happen: the same bytes passed once */
        ic_free(cmd);
        return rc;
    }
    *out = cmd;
    return 0;
}

void ic_raft_cmd_free(struct ic_raft_cmd *cmd)
{
    ic_free(cmd);
}

/* Groups: several whole commands in one entry (raft_int.h). */

size_t ic_raft__group_size(const struct raft_buffer *cmds, size_t n)
{
    size_t len = 8;

    for (size_t i = 0; i < n; i++)
        len += 8 + cmds[i].len;
    return len;
}

void ic_raft__group_encode(const struct raft_buffer *cmds,
                           size_t n,
                           unsigned char *out)
{
    unsigned char *p = out;

    memset(p, 0, 8);
    p[0] = 1;
    p[1] = IC_RAFT__TYPE_GROUP;
    p[2] = (unsigned char)(n >> 8);
    p[3] = (unsigned char)n;
    p += 8;
    for (size_t i = 0; i < n; i++) {
        uint32_t len = (uint32_t)cmds[i].len;
        p[0] = (unsigned char)(len >> 24);
        p[1] = (unsigned char)(len >> 16);
        p[2] = (unsigned char)(len >> 8);
        p[3] = (unsigned char)len;
        memset(p + 4, 0, 4);
        memcpy(p + 8, cmds[i].base, cmds[i].len);
        p += 8 + cmds[i].len;
    }
}

bool ic_raft__is_group(const void *buf, size_t len)
{
    const unsigned char *p = buf;

    return len >= 2 && p[0] == 1 && p[1] == IC_RAFT__TYPE_GROUP;
}

int ic_raft__group_walk(const void *buf,
                        size_t len,
                        ic_raft__group_fn fn,
                        void *data)
{
    const unsigned char *p = buf;
    size_t n, left;
    int rc = 0;

    if (len < 8 || !ic_raft__is_group(buf, len) || p[4] || p[5] || p[6] || p[7])
        return IC_ECORRUPT;
    n = (size_t)p[2] << 8 | p[3];
    if (n < 2 || n > IC_RAFT__GROUP_MAX)
        return IC_ECORRUPT;
    /* the whole layout first: a bad group is refused before any of it
     * runs */
    p += 8;
    left = len - 8;
    for (size_t i = 0; i < n; i++) {
        size_t l;
        if (left < 8 || p[4] || p[5] || p[6] || p[7])
            return IC_ECORRUPT;
        l = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        if (l < 2 || l % 8 != 0 || l > left - 8 || ic_raft__is_group(p + 8, l))
            return IC_ECORRUPT;
        p += 8 + l;
        left -= 8 + l;
    }
    if (left != 0)
        return IC_ECORRUPT;
    p = (const unsigned char *)buf + 8;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t l =
            (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        rc = fn(data, p + 8, l);
        p += 8 + l;
    }
    return rc;
}
