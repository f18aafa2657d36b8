/*
 * test_cmd.c - the command encoding: round trips, the exact layout, checks
 * on encode, and strict decoding of truncated, trailing, unknown and random
 * input.
 */
#include <stdlib.h>
#include <string.h>

#include "ic_raft.h"
#include "test_util.h"

static const char ttl[] = "<http://x/s> <http://x/p> \"o\" .\n";

/* One of each operation. */
static void sample_ops(struct ic_raft_op ops[5])
{
    memset(ops, 0, 5 * sizeof *ops);
    ops[0].type = IC_RAFT_OP_GRAPH_REPLACE;
    ops[0].rdf.syntax = IC_RDF_NTRIPLES;
    ops[0].rdf.graph = "xmpp:cloud1@example.org";
    ops[0].rdf.base = "http://x/";
    ops[0].rdf.text = ttl;
    ops[0].rdf.text_len = strlen(ttl);
    ops[1].type = IC_RAFT_OP_GRAPH_CLEAR;
    ops[1].rdf.graph = "xmpp:cloud2@example.org";
    ops[2].type = IC_RAFT_OP_RDF_LOAD;
    ops[2].rdf.syntax = IC_RDF_TRIG;
    ops[2].rdf.graphs = IC_LOAD_BY_SUBJECT;
    ops[2].rdf.replace = true;
    ops[2].rdf.graph = "http://g/default";
    ops[2].rdf.text = "";
    ops[3].type = IC_RAFT_OP_KV_PUT;
    ops[3].kv.db = IC_KV_ROSTERS;
    ops[3].kv.key.data = "alice";
    ops[3].kv.key.len = 5;
    ops[3].kv.val.data = "\0\1\2";
    ops[3].kv.val.len = 3;
    ops[4].type = IC_RAFT_OP_KV_DEL;
    ops[4].kv.db = IC_KV_CLUSTER;
    ops[4].kv.key.data = "node/3";
    ops[4].kv.key.len = 6;
}

/* A presence batch of three items, and a lease. */
static struct ic_raft_presence_item sample_items[3];

static void sample_presence(struct ic_raft_op *pb, struct ic_raft_op *lease)
{
    static const char stanza[] = "<presence><show>away</show></presence>";

    memset(sample_items, 0, sizeof sample_items);
    sample_items[0].jid = "alice@example.org/phone";
    sample_items[0].available = true;
    sample_items[0].payload.data = stanza;
    sample_items[0].payload.len = strlen(stanza);
    sample_items[1].jid = "bob@example.org/desk/2";
    sample_items[2].jid = "carol@example.org/x";
    sample_items[2].available = true; /* empty payload */
    memset(pb, 0, sizeof *pb);
    pb->type = IC_RAFT_OP_PRESENCE_BATCH;
    pb->presence.node = 3;
    pb->presence.incarnation = 0x1122334455667788ULL;
    pb->presence.n_items = 3;
    pb->presence.items = sample_items;
    memset(lease, 0, sizeof *lease);
    lease->type = IC_RAFT_OP_NODE_LEASE;
    lease->lease.node = 65535;
    lease->lease.incarnation = 9;
    lease->lease.action = IC_RAFT_LEASE_REVOKE;
}

static unsigned char *encode(const struct ic_raft_cmd *c, size_t *len)
{
    unsigned char *buf;

    assert_int_equal(ic_raft_cmd_size(c, len), 0);
    buf = ic_malloc(*len);
    assert_int_equal(ic_raft_cmd_encode(c, buf, *len), 0);
    return buf;
}

static void assert_str_eq_or_null(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_true(a == b);
    else
        assert_string_equal(a, b);
}

static void assert_presence_equal(const struct ic_raft_presence *a,
                                  const struct ic_raft_presence *b)
{
    assert_int_equal(a->node, b->node);
    assert_int_equal(a->incarnation, b->incarnation);
    assert_int_equal(a->n_items, b->n_items);
    for (size_t i = 0; i < a->n_items; i++) {
        const struct ic_raft_presence_item *x = &a->items[i], *y = &b->items[i];
        assert_string_equal(x->jid, y->jid);
        assert_int_equal(x->available, y->available);
        if (!x->available) {
            assert_null(y->payload.data);
            assert_int_equal(y->payload.len, 0);
            continue;
        }
        assert_int_equal(x->payload.len, y->payload.len);
        assert_memory_equal(x->payload.data, y->payload.data, x->payload.len);
    }
}

static void assert_op_equal(const struct ic_raft_op *a,
                            const struct ic_raft_op *b)
{
    assert_int_equal(a->type, b->type);
    switch (a->type) {
    case IC_RAFT_OP_GRAPH_CLEAR:
        assert_string_equal(a->rdf.graph, b->rdf.graph);
        break;
    case IC_RAFT_OP_GRAPH_TERMS:
        assert_string_equal(a->rdf.graph, b->rdf.graph);
        assert_int_equal(a->rdf.text_len, b->rdf.text_len);
        assert_memory_equal(a->rdf.text, b->rdf.text, a->rdf.text_len);
        break;
    case IC_RAFT_OP_GRAPH_REPLACE:
    case IC_RAFT_OP_RDF_LOAD:
        assert_int_equal(a->rdf.syntax, b->rdf.syntax);
        assert_string_equal(a->rdf.graph, b->rdf.graph);
        assert_str_eq_or_null(a->rdf.base, b->rdf.base);
        assert_int_equal(a->rdf.text_len, b->rdf.text_len);
        assert_memory_equal(a->rdf.text, b->rdf.text, a->rdf.text_len);
        if (a->type == IC_RAFT_OP_RDF_LOAD) {
            assert_int_equal(a->rdf.graphs, b->rdf.graphs);
            assert_int_equal(a->rdf.replace, b->rdf.replace);
        }
        break;
    case IC_RAFT_OP_KV_UPDATE:
        assert_int_equal(a->kv.update, b->kv.update);
        /* fall through */
    case IC_RAFT_OP_KV_PUT:
        assert_int_equal(a->kv.val.len, b->kv.val.len);
        assert_memory_equal(a->kv.val.data, b->kv.val.data, a->kv.val.len);
        /* fall through */
    case IC_RAFT_OP_KV_DEL:
        assert_int_equal(a->kv.db, b->kv.db);
        assert_int_equal(a->kv.key.len, b->kv.key.len);
        assert_memory_equal(a->kv.key.data, b->kv.key.data, a->kv.key.len);
        break;
    case IC_RAFT_OP_PRESENCE_BATCH:
        assert_presence_equal(&a->presence, &b->presence);
        break;
    case IC_RAFT_OP_NODE_LEASE:
        assert_int_equal(a->lease.node, b->lease.node);
        assert_int_equal(a->lease.incarnation, b->lease.incarnation);
        assert_int_equal(a->lease.action, b->lease.action);
        break;
    case IC_RAFT_OP_TERMS_SWEEP:
        assert_int_equal(a->sweep_max, b->sweep_max);
        break;
    }
}

/* TERMS_SWEEP: the slice size travels as 4 bytes; 0 and more than
 * IC_RAFT_SWEEP_MAX are refused both ways, and so is a sweep in a batch. */
static void test_terms_sweep(void **state)
{
    struct ic_raft_op op = {0}, two[2];
    struct ic_raft_cmd c = {0}, *d;
    unsigned char *buf;
    size_t len;

    (void)state;
    op.type = IC_RAFT_OP_TERMS_SWEEP;
    op.sweep_max = 1024;
    c.client = 5;
    c.seq = 6;
    c.n_ops = 1;
    c.ops = &op;
    buf = encode(&c, &len);
    assert_int_equal(len, 24); /* 18 bytes + 4, padded */
    assert_int_equal(buf[1], IC_RAFT_OP_TERMS_SWEEP);
    assert_int_equal(ic_raft_cmd_decode(buf, len, &d), 0);
    assert_op_equal(&op, &d->ops[0]);
    ic_raft_cmd_free(d);
    memset(buf + 18, 0, 4); /* a slice of 0 */
    assert_int_equal(ic_raft_cmd_decode(buf, len, &d), IC_ECORRUPT);
    buf[18] = 0xff; /* more than IC_RAFT_SWEEP_MAX */
    assert_int_equal(ic_raft_cmd_decode(buf, len, &d), IC_ECORRUPT);
    ic_free(buf);
    op.sweep_max = 0;
    assert_int_not_equal(ic_raft_cmd_size(&c, &len), 0);
    op.sweep_max = IC_RAFT_SWEEP_MAX + 1;
    assert_int_not_equal(ic_raft_cmd_size(&c, &len), 0);
    op.sweep_max = 1;
    two[0] = op;
    two[1] = op;
    c.batch = true;
    c.n_ops = 2;
    c.ops = two;
    assert_int_not_equal(ic_raft_cmd_size(&c, &len), 0);
}

/* KV_UPDATE: the update id travels (right after the key); id 0 is
 * refused both ways. */
static void test_kv_update(void **state)
{
    struct ic_raft_op op = {0};
    struct ic_raft_cmd c = {0}, *d;
    unsigned char *buf;
    size_t len, at;

    (void)state;
    op.type = IC_RAFT_OP_KV_UPDATE;
    op.kv.db = IC_KV_ROSTERS;
    op.kv.key = (struct ic_kv){"alice", 5};
    op.kv.val = (struct ic_kv){"{\"e\":1}", 7};
    op.kv.update = 7;
    c.client = 3;
    c.seq = 4;
    c.n_ops = 1;
    c.ops = &op;
    buf = encode(&c, &len);
    assert_int_equal(ic_raft_cmd_decode(buf, len, &d), 0);
    assert_int_equal(d->n_ops, 1);
    assert_op_equal(&op, &d->ops[0]);
    ic_raft_cmd_free(d);
    for (at = 0; at + 5 < len && memcmp(buf + at, "alice", 5) != 0; at++)
        ;
    assert_true(at + 5 < len);
    at += 5;
    assert_int_equal(buf[at], 7);
    buf[at] = 0;
    assert_int_equal(ic_raft_cmd_decode(buf, len, &d), IC_ECORRUPT);
    ic_free(buf);
    op.kv.update = 0;
    assert_int_not_equal(ic_raft_cmd_size(&c, &len), 0);
}

/* GRAPH_TERMS: the graph and the binary text (NULs and all) travel, alone
 * and in a batch; cut anywhere, it does not decode. */
static void test_graph_terms(void **state)
{
    static const char doc[] = "\1\0\0\0\5urn:s\0\1\0\0\0\5urn:p\0"
                              "\3\0\0\0\1o\0";
    struct ic_raft_op op[2] = {{0}};
    struct ic_raft_cmd c = {0}, *d;
    unsigned char *buf;
    size_t len;

    (void)state;
    op[0].type = IC_RAFT_OP_GRAPH_TERMS;
    op[0].rdf.graph = "xmpp:cloud1@example.org";
    op[0].rdf.text = doc;
    op[0].rdf.text_len = sizeof doc - 1;
    op[1] = op[0];
    op[1].rdf.text = NULL;
    op[1].rdf.text_len = 0; /* empties the graph */
    c.client = 9;
    c.seq = 1;
    c.n_ops = 1;
    c.ops = op;
    buf = encode(&c, &len);
    assert_int_equal(ic_raft_cmd_decode(buf, len, &d), 0);
    assert_op_equal(&op[0], &d->ops[0]);
    ic_raft_cmd_free(d);
    for (size_t cut = 0; cut < len - 8; cut++)
        assert_int_not_equal(ic_raft_cmd_decode(buf, cut, &d), 0);
    ic_free(buf);
    c.batch = true;
    c.n_ops = 2;
    buf = encode(&c, &len);
    assert_int_equal(ic_raft_cmd_decode(buf, len, &d), 0);
    assert_int_equal(d->n_ops, 2);
    assert_op_equal(&op[0], &d->ops[0]);
    assert_int_equal(d->ops[1].rdf.text_len, 0);
    ic_raft_cmd_free(d);
    ic_free(buf);
    op[0].rdf.graph = ""; /* a graph is required */
    assert_int_not_equal(ic_raft_cmd_size(&c, &len), 0);
}

static void test_round_trip(void **state)
{
    struct ic_raft_op ops[5];
    struct ic_raft_cmd c = {0}, *d;
    unsigned char *buf;
    size_t len;

    (void)state;
    sample_ops(ops);
    /* each operation alone */
    for (int i = 0; i < 5; i++) {
        c.client = 0x0102030405060708ULL;
        c.seq = (uint64_t)i + 1;
        c.ops = &ops[i];
        c.n_ops = 1;
        buf = encode(&c, &len);
        assert_int_equal(buf[0], IC_RAFT_CMD_VERSION);
        assert_int_equal(buf[1], ops[i].type);
        assert_int_equal(ic_raft_cmd_decode(buf, len, &d), 0);
        assert_int_equal(d->client, c.client);
        assert_int_equal(d->seq, c.seq);
        assert_false(d->batch);
        assert_int_equal(d->n_ops, 1);
        assert_op_equal(&ops[i], &d->ops[0]);
        ic_raft_cmd_free(d);
        ic_free(buf);
    }
    /* all of them in one batch */
    c.batch = true;
    c.ops = ops;
    c.n_ops = 5;
    c.seq = UINT64_MAX;
    buf = encode(&c, &len);
    assert_int_equal(buf[1], IC_RAFT_TYPE_BATCH);
    assert_int_equal(ic_raft_cmd_decode(buf, len, &d), 0);
    assert_true(d->batch);
    assert_int_equal(d->seq, UINT64_MAX);
    assert_int_equal(d->n_ops, 5);
    for (int i = 0; i < 5; i++)
        assert_op_equal(&ops[i], &d->ops[i]);
    ic_raft_cmd_free(d);
    ic_free(buf);
    ic_raft_cmd_free(NULL);
}

/* The layout, byte by byte, as raft/README.md documents it. */
static void test_layout(void **state)
{
    static const unsigned char want[] = {
        1, 0x10,                                 /* version, KV_PUT */
        0, 0,    0,   0,   0,   0,   0x01, 0x02, /* client */
        0, 0,    0,   0,   0,   0,   0,    0x07, /* seq */
        1,                                       /* accounts */
        0, 3,    'b', 'o', 'b',                  /* key */
        0, 0,    0,   2,   '{', '}',             /* value */
        0, 0,                                    /* padding */
    };
    static const unsigned char want_clear[] = {
        1,    0x20, 0, 0,   0,   0,   0, 0, 0,
        9,    0,    0, 0,   0,   0,   0, 0, 1, /* header */
        0,    1,                               /* count */
        0x02, 0,    3, 'g', ':', 'x',          /* clear */
        0,    0,    0, 0,   0,   0,            /* padding */
    };
    struct ic_raft_op op = {0};
    struct ic_raft_cmd c = {0x0102, 7, false, 1, &op};
    unsigned char *buf;
    size_t len;

    (void)state;
    op.type = IC_RAFT_OP_KV_PUT;
    op.kv.db = IC_KV_ACCOUNTS;
    op.kv.key.data = "bob";
    op.kv.key.len = 3;
    op.kv.val.data = "{}";
    op.kv.val.len = 2;
    buf = encode(&c, &len);
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, len);
    ic_free(buf);

    memset(&op, 0, sizeof op);
    op.type = IC_RAFT_OP_GRAPH_CLEAR;
    op.rdf.graph = "g:x";
    c.client = 9;
    c.seq = 1;
    c.batch = true;
    buf = encode(&c, &len);
    assert_int_equal(len, sizeof want_clear);
    assert_memory_equal(buf, want_clear, len);
    ic_free(buf);
}

static int size_of(struct ic_raft_cmd *c)
{
    size_t len;
    return ic_raft_cmd_size(c, &len);
}

static void test_encode_checks(void **state)
{
    struct ic_raft_op ops[5], o;
    struct ic_raft_cmd c = {1, 1, false, 1, &o};
    char *big = ic_malloc(IC_RAFT_IRI_MAX + 2);
    unsigned char buf[512];
    size_t len;

    (void)state;
    sample_ops(ops);
    memset(big, 'a', IC_RAFT_IRI_MAX + 1);
    big[IC_RAFT_IRI_MAX + 1] = '\0';

    o = ops[3];
    assert_int_equal(size_of(&c), 0);
    c.client = 0;
    assert_int_equal(size_of(&c), IC_EINVAL);
    c.client = 1;
    c.seq = 0;
    assert_int_equal(size_of(&c), IC_EINVAL);
    c.seq = 1;
    c.n_ops = 2; /* several ops need a batch */
    c.ops = ops;
    assert_int_equal(size_of(&c), IC_EINVAL);
    c.batch = true;
    assert_int_equal(size_of(&c), 0);
    c.n_ops = 0;
    assert_int_equal(size_of(&c), IC_EINVAL);
    c.n_ops = IC_RAFT_BATCH_MAX + 1;
    assert_int_equal(size_of(&c), IC_EINVAL);
    c.batch = false;
    c.n_ops = 1;
    c.ops = &o;

    o.kv.db = IC_KV_PRESENCE; /* presence goes by presence batches */
    assert_int_equal(size_of(&c), IC_EINVAL);
    o.kv.db = IC_KV__COUNT;
    assert_int_equal(size_of(&c), IC_EINVAL);
    o = ops[3];
    o.kv.key.len = 0;
    assert_int_equal(size_of(&c), IC_EINVAL);
    o.kv.key.data = big;
    o.kv.key.len = IC_RAFT_KEY_MAX + 1;
    assert_int_equal(size_of(&c), IC_EINVAL);
    o.kv.key.len = IC_RAFT_KEY_MAX;
    assert_int_equal(size_of(&c), 0);
    o.type = (enum ic_raft_op_type)0x30;
    assert_int_equal(size_of(&c), IC_EINVAL);

    o = ops[0];
    o.rdf.syntax = IC_RDF_TRIG; /* a replace holds one graph's triples */
    assert_int_equal(size_of(&c), IC_EINVAL);
    o = ops[0];
    o.rdf.graph = NULL;
    assert_int_equal(size_of(&c), IC_EINVAL);
    o.rdf.graph = "";
    assert_int_equal(size_of(&c), IC_EINVAL);
    o.rdf.graph = big;
    assert_int_equal(size_of(&c), IC_EINVAL);
    o = ops[0];
    o.rdf.base = big;
    assert_int_equal(size_of(&c), IC_EINVAL);
    o = ops[0];
    o.rdf.text = NULL;
    assert_int_equal(size_of(&c), IC_EINVAL);
    o = ops[2];
    o.rdf.graphs = (enum ic_load_graphs)7;
    assert_int_equal(size_of(&c), IC_EINVAL);

    /* encode wants exactly the size */
    o = ops[3];
    assert_int_equal(ic_raft_cmd_size(&c, &len), 0);
    assert_int_equal(ic_raft_cmd_encode(&c, buf, len + 1), IC_EINVAL);
    assert_int_equal(ic_raft_cmd_encode(&c, buf, len - 1), IC_EINVAL);
    assert_int_equal(ic_raft_cmd_encode(&c, buf, len), 0);
    ic_free(big);
}

static int decode_rc(const unsigned char *buf, size_t len)
{
    struct ic_raft_cmd *d = NULL;
    int rc = ic_raft_cmd_decode(buf, len, &d);

    if (rc == 0)
        ic_raft_cmd_free(d);
    else
        assert_null(d);
    return rc;
}

static void test_decode_truncated_trailing(void **state)
{
    struct ic_raft_op ops[5];
    struct ic_raft_cmd c = {77, 5, true, 5, NULL};
    unsigned char *buf, *copy;
    size_t len;

    (void)state;
    sample_ops(ops);
    c.ops = ops;
    buf = encode(&c, &len);
    copy = ic_malloc(len + 1);
    /* every prefix, in a buffer of its own size (ASan sees overreads) */
    for (size_t n = 0; n < len; n++) {
        unsigned char *p = ic_malloc(n ? n : 1);
        memcpy(p, buf, n);
        assert_int_equal(decode_rc(p, n), IC_ECORRUPT);
        ic_free(p);
    }
    memcpy(copy, buf, len);
    copy[len] = 0;
    assert_int_equal(decode_rc(copy, len + 1), IC_ECORRUPT);
    assert_int_equal(decode_rc(copy, len), 0);
    /* the padding to a multiple of 8 is zeros, and fewer than 8 */
    assert_int_equal(len % 8, 0);
    assert_int_equal(copy[len - 1], 0);
    copy[len - 1] = 1;
    assert_int_equal(decode_rc(copy, len), IC_ECORRUPT);
    ic_free(copy);
    copy = ic_calloc(1, len + 8);
    memcpy(copy, buf, len);
    assert_int_equal(decode_rc(copy, len + 8), IC_ECORRUPT);
    ic_free(copy);
    ic_free(buf);
}

/* Patches byte AT of a fresh encoding of a one-op command and decodes. */
static int
patched(const struct ic_raft_op *op, bool batch, size_t at, unsigned char v)
{
    struct ic_raft_cmd c = {1, 1, batch, 1, (struct ic_raft_op *)op};
    unsigned char *buf;
    size_t len;
    int rc;

    buf = encode(&c, &len);
    assert_true(at < len);
    buf[at] = v;
    rc = decode_rc(buf, len);
    ic_free(buf);
    return rc;
}

static void test_decode_refusals(void **state)
{
    struct ic_raft_op ops[5];

    (void)state;
    sample_ops(ops);
    /* versions and type codes this build does not know */
    assert_int_equal(patched(&ops[3], false, 0, 2), IC_EFORMAT);
    assert_int_equal(patched(&ops[3], false, 0, 0), IC_EFORMAT);
    assert_int_equal(patched(&ops[3], false, 1, 0x32), IC_EFORMAT);
    assert_int_equal(patched(&ops[3], false, 1, 0x21), IC_EFORMAT);
    assert_int_equal(patched(&ops[3], false, 1, 0xff), IC_EFORMAT);
    assert_int_equal(patched(&ops[3], true, 20, 0x32), IC_EFORMAT);
    /* a batch in a batch, presence or a lease in a batch, an empty batch */
    assert_int_equal(patched(&ops[3], true, 20, 0x20), IC_ECORRUPT);
    assert_int_equal(patched(&ops[3], true, 20, 0x30), IC_ECORRUPT);
    assert_int_equal(patched(&ops[3], true, 20, 0x31), IC_ECORRUPT);
    assert_int_equal(patched(&ops[3], true, 19, 0), IC_ECORRUPT);
    /* client or sequence 0 */
    assert_int_equal(patched(&ops[3], false, 9, 0), IC_ECORRUPT);
    assert_int_equal(patched(&ops[3], false, 17, 0), IC_ECORRUPT);
    /* kv: presence (3) and unknown databases; empty key */
    assert_int_equal(patched(&ops[3], false, 18, 3), IC_ECORRUPT);
    assert_int_equal(patched(&ops[3], false, 18, 9), IC_ECORRUPT);
    assert_int_equal(patched(&ops[3], false, 18, 4), 0);
    /* rdf: unknown syntax, TriG in a replace, NUL in an IRI, an empty
     * graph, load mode and flags out of range */
    assert_int_equal(patched(&ops[0], false, 18, 0), IC_ECORRUPT);
    assert_int_equal(patched(&ops[0], false, 18, 5), IC_ECORRUPT);
    assert_int_equal(patched(&ops[0], false, 18, 4), IC_ECORRUPT);
    assert_int_equal(patched(&ops[0], false, 18, 1), 0);
    assert_int_equal(patched(&ops[0], false, 22, 0), IC_ECORRUPT);
    assert_int_equal(patched(&ops[1], false, 20, 'x'), 0);
    assert_int_equal(patched(&ops[1], false, 20, 0), IC_ECORRUPT);
    assert_int_equal(patched(&ops[2], false, 19, 2), IC_ECORRUPT);
    assert_int_equal(patched(&ops[2], false, 20, 2), IC_ECORRUPT);
    /* lengths pointing past the end */
    assert_int_equal(patched(&ops[3], false, 19, 0xff), IC_ECORRUPT);
    assert_int_equal(patched(&ops[1], false, 18, 0xff), IC_ECORRUPT);
}

/* Random bytes and random damage to valid encodings: never a crash, only
 * the documented codes, and whatever decodes encodes back to the same
 * bytes (the encoding is canonical). */
static void check_any(const unsigned char *p, size_t len)
{
    struct ic_raft_cmd *d = NULL;
    int rc = ic_raft_cmd_decode(p, len, &d);

    assert_true(rc == 0 || rc == IC_ECORRUPT || rc == IC_EFORMAT);
    if (rc == 0) {
        size_t n;
        unsigned char *again = encode(d, &n);
        assert_int_equal(n, len);
        assert_memory_equal(again, p, len);
        ic_free(again);
        ic_raft_cmd_free(d);
    }
}

static void test_decode_garbage(void **state)
{
    uint64_t seed = 0xC0FFEE;
    struct ic_raft_op ops[5];
    struct ic_raft_cmd c = {3, 3, true, 5, NULL};
    unsigned char *valid, *p;
    size_t len;

    (void)state;
    sample_ops(ops);
    c.ops = ops;
    valid = encode(&c, &len);
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(tu_rand(&seed) % 96);
        p = ic_malloc(n + 1);
        for (size_t j = 0; j < n; j++)
            p[j] = (unsigned char)tu_rand(&seed);
        if (n > 0 && i % 2 == 0)
            p[0] = 1; /* get past the version byte */
        check_any(p, n);
        ic_free(p);
    }
    for (int i = 0; i < 3000; i++) {
        p = ic_malloc(len);
        memcpy(p, valid, len);
        for (int k = 0; k < 1 + i % 3; k++)
            p[tu_rand(&seed) % len] = (unsigned char)tu_rand(&seed);
        check_any(p, len);
        ic_free(p);
    }
    ic_free(valid);
}

/* Presence batches and leases: round trips, alone only. */
static void test_presence_round_trip(void **state)
{
    struct ic_raft_op ops[2];
    struct ic_raft_cmd c = {5, 6, false, 1, NULL}, *d;
    unsigned char *buf;
    size_t len;

    (void)state;
    sample_presence(&ops[0], &ops[1]);
    for (int i = 0; i < 2; i++) {
        c.ops = &ops[i];
        buf = encode(&c, &len);
        assert_int_equal(buf[1], ops[i].type);
        assert_int_equal(ic_raft_cmd_decode(buf, len, &d), 0);
        assert_int_equal(d->n_ops, 1);
        assert_false(d->batch);
        assert_op_equal(&ops[i], &d->ops[0]);
        ic_raft_cmd_free(d);
        ic_free(buf);
    }
    ops[1].lease.action = IC_RAFT_LEASE_START;
    buf = encode(&c, &len);
    assert_int_equal(ic_raft_cmd_decode(buf, len, &d), 0);
    assert_int_equal(d->ops[0].lease.action, IC_RAFT_LEASE_START);
    ic_raft_cmd_free(d);
    ic_free(buf);
}

static void test_presence_layout(void **state)
{
    static const unsigned char want_pb[] = {
        1, 0x30, 0,   0,   0,   0,   0,   0, 0, 1, /* client 1 */
        0, 0,    0,   0,   0,   0,   0,   2,       /* seq 2 */
        0, 7,                                      /* node 7 */
        0, 0,    0,   0,   0,   0,   0,   3,       /* incarnation */
        0, 2,                                      /* 2 items */
        0, 5,    'a', '@', 'b', '/', 'r',          /* jid */
        1, 0,    0,   0,   2,   '<', '>',          /* available */
        0, 3,    'c', '/', 'd', 0,                 /* unavailable */
        0, 0,    0,   0,   0,   0,                 /* padding */
    };
    static const unsigned char want_lease[] = {
        1, 0x31, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, /* head */
        0, 7,    0, 0, 0, 0, 0, 0, 0, 3, /* node, incarnation */
        1,                               /* START */
        0, 0,    0,                      /* padding */
    };
    struct ic_raft_presence_item items[2] = {{"a@b/r", true, {"<>", 2}},
                                             {"c/d", false, {NULL, 0}}};
    struct ic_raft_op op;
    struct ic_raft_cmd c = {1, 2, false, 1, &op};
    unsigned char *buf;
    size_t len;

    (void)state;
    memset(&op, 0, sizeof op);
    op.type = IC_RAFT_OP_PRESENCE_BATCH;
    op.presence = (struct ic_raft_presence){7, 3, 2, items};
    buf = encode(&c, &len);
    assert_int_equal(len, sizeof want_pb);
    assert_memory_equal(buf, want_pb, len);
    ic_free(buf);
    memset(&op, 0, sizeof op);
    op.type = IC_RAFT_OP_NODE_LEASE;
    op.lease = (struct ic_raft_lease){7, 3, IC_RAFT_LEASE_START};
    buf = encode(&c, &len);
    assert_int_equal(len, sizeof want_lease);
    assert_memory_equal(buf, want_lease, len);
    ic_free(buf);
}

static void test_presence_encode_checks(void **state)
{
    struct ic_raft_op ops[2], o, two[5];
    struct ic_raft_presence_item it[1];
    struct ic_raft_cmd c = {1, 1, false, 1, &o};
    char *big = ic_malloc(IC_RAFT_JID_MAX + 2);
    static const char *bad_jids[] = {"",   "alice@example.org", "/r",
                                     "a/", "a\x01b/r",          "a/r\n"};

    (void)state;
    memset(big, 'a', IC_RAFT_JID_MAX + 1);
    big[1] = '/';
    big[IC_RAFT_JID_MAX + 1] = '\0';
    sample_presence(&ops[0], &ops[1]);
    o = ops[0];
    assert_int_equal(size_of(&c), 0);
    o.presence.node = 0;
    assert_int_equal(size_of(&c), IC_EINVAL);
    o = ops[0];
    o.presence.incarnation = 0;
    assert_int_equal(size_of(&c), IC_EINVAL);
    o = ops[0];
    o.presence.n_items = 0;
    assert_int_equal(size_of(&c), IC_EINVAL);
    o.presence.n_items = IC_RAFT_PRESENCE_MAX + 1;
    assert_int_equal(size_of(&c), IC_EINVAL);
    o = ops[0];
    o.presence.items = it;
    o.presence.n_items = 1;
    it[0] = sample_items[0];
    for (size_t i = 0; i < IC_ARRAY_LEN(bad_jids); i++) {
        it[0].jid = bad_jids[i];
        assert_int_equal(size_of(&c), IC_EINVAL);
    }
    it[0].jid = NULL;
    assert_int_equal(size_of(&c), IC_EINVAL);
    it[0].jid = big; /* one byte too long */
    assert_int_equal(size_of(&c), IC_EINVAL);
    big[IC_RAFT_JID_MAX] = '\0';
    assert_int_equal(size_of(&c), 0);
    it[0].payload.data = NULL; /* a length without bytes */
    assert_int_equal(size_of(&c), IC_EINVAL);

    o = ops[1];
    assert_int_equal(size_of(&c), 0);
    o.lease.action = (enum ic_raft_lease_action)3;
    assert_int_equal(size_of(&c), IC_EINVAL);
    o = ops[1];
    o.lease.node = 0;
    assert_int_equal(size_of(&c), IC_EINVAL);
    o = ops[1];
    o.lease.incarnation = 0;
    assert_int_equal(size_of(&c), IC_EINVAL);
    /* never in a batch */
    sample_ops(two);
    two[1] = ops[1];
    c.batch = true;
    c.n_ops = 2;
    c.ops = two;
    assert_int_equal(size_of(&c), IC_EINVAL);
    c.n_ops = 1;
    c.ops = &ops[0];
    assert_int_equal(size_of(&c), IC_EINVAL);
    ic_free(big);
}

/* Hostile presence and lease encodings: truncated anywhere, lengths past
 * the end, counts and codes out of range, bad JIDs. */
static void test_presence_decode_hostile(void **state)
{
    struct ic_raft_op ops[2];
    struct ic_raft_cmd c = {1, 1, false, 1, NULL};
    unsigned char *buf;
    size_t len;

    (void)state;
    sample_presence(&ops[0], &ops[1]);
    for (int i = 0; i < 2; i++) {
        c.ops = &ops[i];
        buf = encode(&c, &len);
        for (size_t n = 0; n < len; n++) {
            unsigned char *p = ic_malloc(n ? n : 1);
            memcpy(p, buf, n);
            assert_int_equal(decode_rc(p, n), IC_ECORRUPT);
            ic_free(p);
        }
        ic_free(buf);
    }
    /* presence: 18-19 node, 20-27 incarnation, 28-29 count, 30-31 the
     * first JID's length, 32.. its bytes */
    ops[0].presence.incarnation = 1;
    assert_int_equal(patched(&ops[0], false, 19, 0), IC_ECORRUPT); /* node */
    assert_int_equal(patched(&ops[0], false, 18, 1), 0);
    assert_int_equal(patched(&ops[0], false, 27, 0), IC_ECORRUPT); /* inc */
    assert_int_equal(patched(&ops[0], false, 29, 0), IC_ECORRUPT); /* 0 */
    assert_int_equal(patched(&ops[0], false, 29, 4), IC_ECORRUPT); /* > */
    assert_int_equal(patched(&ops[0], false, 29, 2), IC_ECORRUPT); /* < */
    assert_int_equal(patched(&ops[0], false, 28, 0xff), IC_ECORRUPT);
    assert_int_equal(patched(&ops[0], false, 30, 0xff), IC_ECORRUPT);
    assert_int_equal(patched(&ops[0], false, 31, 0), IC_ECORRUPT);
    assert_int_equal(patched(&ops[0], false, 32, 0x01), IC_ECORRUPT);
    assert_int_equal(patched(&ops[0], false, 32, '/'), IC_ECORRUPT);
    assert_int_equal(patched(&ops[0], false, 49, 'x'), IC_ECORRUPT);
    assert_int_equal(patched(&ops[0], false, 32, 'A'), 0);
    /* after "alice@example.org/phone" (23 bytes): availability, payload
     * length */
    assert_int_equal(patched(&ops[0], false, 55, 2), IC_ECORRUPT);
    assert_int_equal(patched(&ops[0], false, 56, 0xff), IC_ECORRUPT);
    assert_int_equal(patched(&ops[0], false, 59, 0xff), IC_ECORRUPT);
    /* lease: node, incarnation, action */
    assert_int_equal(patched(&ops[1], false, 18, 0), 0);
    ops[1].lease.node = 1;
    assert_int_equal(patched(&ops[1], false, 19, 0), IC_ECORRUPT);
    assert_int_equal(patched(&ops[1], false, 27, 0), IC_ECORRUPT);
    assert_int_equal(patched(&ops[1], false, 28, 0), IC_ECORRUPT);
    assert_int_equal(patched(&ops[1], false, 28, 3), IC_ECORRUPT);
    assert_int_equal(patched(&ops[1], false, 28, 1), 0);
}

static void test_presence_garbage(void **state)
{
    uint64_t seed = 0xBADC0DE;
    struct ic_raft_op ops[2];
    struct ic_raft_cmd c = {3, 3, false, 1, NULL};
    unsigned char *valid, *p;
    size_t len;

    (void)state;
    sample_presence(&ops[0], &ops[1]);
    for (int k = 0; k < 2; k++) {
        c.ops = &ops[k];
        valid = encode(&c, &len);
        for (int i = 0; i < 3000; i++) {
            p = ic_malloc(len);
            memcpy(p, valid, len);
            for (int j = 0; j < 1 + i % 3; j++)
                p[tu_rand(&seed) % len] = (unsigned char)tu_rand(&seed);
            check_any(p, len);
            ic_free(p);
        }
        ic_free(valid);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_kv_update),
        cmocka_unit_test(test_terms_sweep),
        cmocka_unit_test(test_graph_terms),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_encode_checks),
        cmocka_unit_test(test_decode_truncated_trailing),
        cmocka_unit_test(test_decode_refusals),
        cmocka_unit_test(test_decode_garbage),
        cmocka_unit_test(test_presence_round_trip),
        cmocka_unit_test(test_presence_layout),
        cmocka_unit_test(test_presence_encode_checks),
        cmocka_unit_test(test_presence_decode_hostile),
        cmocka_unit_test(test_presence_garbage),
    };
    return tu_main(argc, argv, "raft_cmd", tests, IC_ARRAY_LEN(tests));
}
