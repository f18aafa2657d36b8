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

static void assert_op_equal(const struct ic_raft_op *a,
                            const struct ic_raft_op *b)
{
    assert_int_equal(a->type, b->type);
    switch (a->type) {
    case IC_RAFT_OP_GRAPH_CLEAR:
        assert_string_equal(a->rdf.graph, b->rdf.graph);
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
    case IC_RAFT_OP_KV_PUT:
        assert_int_equal(a->kv.val.len, b->kv.val.len);
        assert_memory_equal(a->kv.val.data, b->kv.val.data, a->kv.val.len);
        /* fall through */
    case IC_RAFT_OP_KV_DEL:
        assert_int_equal(a->kv.db, b->kv.db);
        assert_int_equal(a->kv.key.len, b->kv.key.len);
        assert_memory_equal(a->kv.key.data, b->kv.key.data, a->kv.key.len);
        break;
    }
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
    assert_int_equal(patched(&ops[3], false, 1, 0x30), IC_EFORMAT);
    assert_int_equal(patched(&ops[3], false, 1, 0x31), IC_EFORMAT);
    assert_int_equal(patched(&ops[3], false, 1, 0xff), IC_EFORMAT);
    assert_int_equal(patched(&ops[3], true, 20, 0x31), IC_EFORMAT);
    /* a batch in a batch, an empty batch */
    assert_int_equal(patched(&ops[3], true, 20, 0x20), IC_ECORRUPT);
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

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_encode_checks),
        cmocka_unit_test(test_decode_truncated_trailing),
        cmocka_unit_test(test_decode_refusals),
        cmocka_unit_test(test_decode_garbage),
    };
    return tu_main(argc, argv, "raft_cmd", tests, IC_ARRAY_LEN(tests));
}
