/*
 * test_delegation.c - delegation records (node/delegation.c) and the
 * recursive resolution (node/delegation_resolve.c) driven through its seam:
 * a fake network that records the forwarded requests and answers them
 * when the test says, and a clock the test moves.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delegation.h"
#include "test_util.h"

#define NS_RES "http://www.csp/resOntology"
#define NS_CMD "http://jabber.org/protocol/commands"
#define NS_IO "urn:xmpp:tmp:io-data"
#define EXCH "service.exch.example"
#define FP "sha256:" /* 64 hex digits follow */
#define HEX64 "0123456789abcdef0123456789abcdef0123456789ABCDEF0123456789abcdef"

/* ---- records ------------------------------------------------------------ */

static struct ic_xml *parse(const char *text)
{
    struct ic_xml *x = ic_xml_parse(text, strlen(text), NS_RES);

    assert_non_null(x);
    return x;
}

static void test_from_xml_full(void **state)
{
    struct ic_xml *x =
        parse("<delegation xmlns='" NS_RES "'><attribute> tierCountries\n"
              "</attribute><value> JP </value><exchange> Service.Exch.Example "
              "</exchange><ttl>300</ttl><fingerprint>" FP HEX64
              "</fingerprint></delegation>");
    struct ic_xml *back;
    struct ic_deleg d;
    char err[256] = "", *s;

    (void)state;
    assert_int_equal(ic_node__deleg_from_xml(x, true, &d, err, sizeof err), 0);
    assert_string_equal(d.attribute, "tierCountries");
    assert_string_equal(d.value, "JP");
    assert_string_equal(d.exchange, EXCH); /* nameprep: lower case */
    assert_int_equal(d.ttl, 300);
    assert_string_equal(d.fingerprint, "sha256:0123456789abcdef0123456789abcd"
                                       "ef0123456789abcdef0123456789abcdef");
    back = ic_node__deleg_to_xml(&d);
    s = ic_xml_to_string(back, NS_RES);
    assert_string_equal(s, "<delegation><attribute>tierCountries</attribute>"
                           "<value>JP</value><exchange>" EXCH "</exchange>"
                           "<ttl>300</ttl><fingerprint>sha256:0123456789abcd"
                           "ef0123456789abcdef0123456789abcdef0123456789abcd"
                           "ef</fingerprint></delegation>");
    ic_free(s);
    ic_xml_free(back);
    ic_node__deleg_clear(&d);
    ic_xml_free(x);

    /* no fingerprint; attribute and value alone for a removal */
    x = parse("<delegation xmlns='" NS_RES "'><attribute>region</attribute>"
              "<value>eu-west</value><exchange>ex@example.org</exchange>"
              "<ttl>604800</ttl></delegation>");
    assert_int_equal(ic_node__deleg_from_xml(x, true, &d, err, sizeof err), 0);
    assert_null(d.fingerprint);
    assert_int_equal(d.ttl, 604800);
    assert_string_equal(d.exchange, "ex@example.org");
    ic_node__deleg_clear(&d);
    assert_int_equal(ic_node__deleg_from_xml(x, false, &d, err, sizeof err), 0);
    assert_null(d.exchange);
    assert_string_equal(d.value, "eu-west");
    ic_node__deleg_clear(&d);
    ic_xml_free(x);
}

/* A <delegation> with attribute A, value V, exchange E, ttl T,
 * fingerprint F (each omitted when NULL). */
static struct ic_xml *deleg_xml(
    const char *a, const char *v, const char *e, const char *t, const char *f)
{
    const char *names[] = {"attribute", "value", "exchange", "ttl",
                           "fingerprint"};
    const char *vals[] = {a, v, e, t, f};
    struct ic_xml *x = ic_xml_new("delegation", NS_RES);

    for (size_t i = 0; i < 5; i++)
        if (vals[i] != NULL)
            ic_xml_add_text(ic_xml_add(x, names[i], NULL), vals[i],
                            strlen(vals[i]));
    return x;
}

static void refused(struct ic_xml *x, const char *needle)
{
    struct ic_deleg d;
    char err[256] = "";
    int rc = ic_node__deleg_from_xml(x, true, &d, err, sizeof err);

    if (rc != IC_EVALUE)
        fail_msg("accepted (rc %d), want refused with '%s'", rc, needle);
    if (strstr(err, needle) == NULL)
        fail_msg("error '%s' lacks '%s'", err, needle);
    assert_null(d.attribute);
    assert_null(d.exchange);
    assert_null(d.fingerprint);
    ic_xml_free(x);
}

static void test_from_xml_malformed(void **state)
{
    static const char *const bad_ttls[] = {
        "0", "604801", "abc", "-5", "1.5", "", "+3", "99999999", "3s"};
    static const char *const bad_fps[] = {
        "sha1:" HEX64, "sha256:abc",     FP HEX64 "0", "SHA256:" HEX64, FP, "",
        HEX64,         "sha256 :" HEX64,
    };
    static const char *const bad_jids[] = {"a@@b", "@x", "a@",
                                           "x/",   "",   "a b@c"};
    char fp_bad[80];
    struct ic_deleg d;
    char err[256];

    (void)state;
    refused(NULL, "no <delegation");
    refused(deleg_xml(NULL, "JP", EXCH, "60", NULL), "<attribute>");
    refused(deleg_xml(" ", "JP", EXCH, "60", NULL), "<attribute>");
    refused(deleg_xml("tierCountries", NULL, EXCH, "60", NULL), "<value>");
    refused(deleg_xml("tierCountries", "  ", EXCH, "60", NULL), "<value>");
    refused(deleg_xml("tierCountries", "JP", NULL, "60", NULL), "<exchange>");
    refused(deleg_xml("tierCountries", "JP", EXCH, NULL, NULL), "<ttl>");
    for (size_t i = 0; i < IC_ARRAY_LEN(bad_ttls); i++)
        refused(deleg_xml("tierCountries", "JP", EXCH, bad_ttls[i], NULL),
                "ttl");
    for (size_t i = 0; i < IC_ARRAY_LEN(bad_fps); i++)
        refused(deleg_xml("tierCountries", "JP", EXCH, "60", bad_fps[i]),
                "fingerprint");
    snprintf(fp_bad, sizeof fp_bad, "%s%.63sz", FP, HEX64);
    refused(deleg_xml("tierCountries", "JP", EXCH, "60", fp_bad),
            "fingerprint");
    for (size_t i = 0; i < IC_ARRAY_LEN(bad_jids); i++)
        refused(deleg_xml("tierCountries", "JP", bad_jids[i], "60", NULL),
                "JID");
    /* a removal needs the attribute and value only, but those */
    {
        struct ic_xml *x = deleg_xml("tierCountries", NULL, NULL, NULL, NULL);
        assert_int_equal(ic_node__deleg_from_xml(x, false, &d, err, sizeof err),
                         IC_EVALUE);
        ic_xml_free(x);
    }
}

static void test_encode_decode(void **state)
{
    char attr[] = "availabilityQuanity", val[] = "99.9", ex[] = EXCH;
    char fp[] = FP HEX64;
    struct ic_deleg d = {attr, val, ex, 42, NULL}, e;
    char *enc;
    size_t len;
    static const char corrupt[][24] = {"", "1", "2\0a\0b\0c\0001\0",
                                       "1\0a\0b\0c\0x\0", "1\0a\0b\0c\0000\0"};
    static const size_t corrupt_len[] = {0, 1, 11, 11, 11};

    (void)state;
    enc = ic_node__deleg_encode(&d, &len);
    assert_int_equal(ic_node__deleg_decode((struct ic_kv){enc, len}, &e), 0);
    assert_string_equal(e.attribute, d.attribute);
    assert_string_equal(e.value, "99.9");
    assert_string_equal(e.exchange, EXCH);
    assert_int_equal(e.ttl, 42);
    assert_null(e.fingerprint);
    ic_node__deleg_clear(&e);
    ic_free(enc);

    d.fingerprint = fp;
    enc = ic_node__deleg_encode(&d, &len);
    assert_int_equal(ic_node__deleg_decode((struct ic_kv){enc, len}, &e), 0);
    assert_string_equal(e.fingerprint, FP HEX64);
    ic_node__deleg_clear(&e);
    ic_free(enc);

    for (size_t i = 0; i < IC_ARRAY_LEN(corrupt); i++) {
        assert_int_equal(ic_node__deleg_decode(
                             (struct ic_kv){corrupt[i], corrupt_len[i]}, &e),
                         IC_ECORRUPT);
        assert_null(e.attribute);
    }
}

/* ---- keys and the delegations a query concerns (a store) --------------- */

static void
key_of(struct ic_txn *t, const char *a, const char *v, char *k, size_t *n)
{
    assert_int_equal(ic_node__deleg_key(t, a, v, k, n), 0);
}

static void test_key_normalised(void **state)
{
    struct tu_fx *fx = *state;
    char k1[IC_DELEG_KEY_MAX + 1], k2[IC_DELEG_KEY_MAX + 1], big[600];
    size_t n1, n2;
    struct ic_txn *t;

    assert_int_equal(ic_store_txn_begin(fx->st, false, &t), 0);
    key_of(t, "availabilityQuanity ", " 99.9\n", k1, &n1);
    key_of(t, "availabilityQuantity", "99.9", k2, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(k1, k2, n1);
    assert_string_equal(k1, "http://www.csp/resOntology/constraints#"
                            "availabilityQuantity");
    assert_string_equal(k1 + strlen(k1) + 1, "99.9");
    key_of(t, "availabilityQuantity", "99.99", k2, &n2);
    assert_false(n1 == n2 && memcmp(k1, k2, n1) == 0);
    assert_int_equal(ic_node__deleg_key(t, "nosuch", "1", k1, &n1),
                     IC_EUNKNOWN);
    assert_int_equal(ic_node__deleg_key(t, "tierCountriesX", "JP", k1, &n1),
                     IC_EUNKNOWN);
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(ic_node__deleg_key(t, "region", big, k1, &n1), IC_ELIMIT);
    ic_store_txn_abort(t);
}

static void put_record(struct ic_store *st,
                       const char *a,
                       const char *v,
                       const char *ex,
                       uint32_t ttl)
{
    struct ic_deleg d = {(char *)a, (char *)v, (char *)ex, ttl, NULL};
    char key[IC_DELEG_KEY_MAX + 1], *val;
    size_t kn, vn;
    struct ic_txn *t;

    assert_int_equal(ic_store_txn_begin(st, true, &t), 0);
    key_of(t, a, v, key, &kn);
    val = ic_node__deleg_encode(&d, &vn);
    assert_int_equal(ic_store_kv_put(t, IC_KV_DELEGATIONS,
                                     (struct ic_kv){key, kn},
                                     (struct ic_kv){val, vn}),
                     0);
    assert_int_equal(ic_store_txn_commit(t), 0);
    ic_free(val);
}

/* The exchanges concerned by the pairs in C, as "ex/ttl,..." and the
 * canonical set into *CANON. */
static char *concerned(struct ic_store *st,
                       const struct ic_constraint *c,
                       size_t n,
                       char **canon)
{
    struct ic_deleg_refs refs;
    char buf[1024] = "";
    struct ic_txn *t;

    assert_int_equal(ic_store_txn_begin(st, false, &t), 0);
    assert_int_equal(ic_node__deleg_concerned(t, c, n, &refs, canon), 0);
    ic_store_txn_abort(t);
    for (size_t i = 0; i < refs.n; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s/%u",
                 i ? "," : "", refs.v[i].exchange, (unsigned)refs.v[i].ttl);
    ic_node__deleg_refs_free(&refs);
    return ic_strdup(buf);
}

static void test_concerned(void **state)
{
    struct tu_fx *fx = *state;
    const struct ic_constraint q1[] = {{"replicationFactor", "3"},
                                       {" tierCountries", "JP "}};
    const struct ic_constraint q2[] = {{"tierCountries", "JP"},
                                       {"replicationFactor", " 3"}};
    const struct ic_constraint q3[] = {{"tierCountries", "JAPAN"},
                                       {"region", "eu-west"},
                                       {"availabilityQuanity", "99.9"}};
    const struct ic_constraint q4[] = {{"region", "eu-west"},
                                       {"availabilityQuantity", "99.9"}};
    char *s, *c1, *c2;

    (void)state;
    /* no delegation at all: nothing, no canonical set */
    s = concerned(fx->st, q1, 2, &c1);
    assert_string_equal(s, "");
    assert_null(c1);
    ic_free(s);

    put_record(fx->st, "tierCountries", "JP", EXCH, 60);
    put_record(fx->st, "region", "eu-west", "service.eu.example", 30);
    put_record(fx->st, "availabilityQuanity", "99.9", "service.eu.example", 10);
    s = concerned(fx->st, q1, 2, &c1);
    assert_string_equal(s, EXCH "/60");
    ic_free(s);
    s = concerned(fx->st, q2, 2, &c2);
    assert_string_equal(s, EXCH "/60");
    assert_non_null(c1);
    assert_string_equal(c1, c2); /* order and blanks do not matter */
    ic_free(s);
    ic_free(c2);
    /* another value of a delegated attribute is outside the scope; two
     * delegations to one exchange give one referral, the smaller TTL */
    s = concerned(fx->st, q3, 3, &c2);
    assert_string_equal(s, "service.eu.example/10");
    assert_string_not_equal(c1, c2);
    ic_free(s);
    ic_free(c1);
    s = concerned(fx->st, q4, 2, &c1);
    assert_string_equal(s, "service.eu.example/10");
    assert_string_not_equal(c1, c2);
    ic_free(s);
    ic_free(c1);
    ic_free(c2);
}

static int find(struct ic_store *st, const char *a, const char *v)
{
    char ca[64], cv[64], key[IC_DELEG_KEY_MAX + 1];
    struct ic_deleg d = {ca, cv, NULL, 0, NULL};
    struct ic_txn *t;
    size_t n = 0;
    int rc;

    snprintf(ca, sizeof ca, "%s", a);
    snprintf(cv, sizeof cv, "%s", v);
    assert_int_equal(ic_store_txn_begin(st, false, &t), 0);
    rc = ic_node__deleg_find(t, &d, key, &n);
    if (rc == 0) {
        struct ic_kv val;
        assert_int_equal(
            ic_store_kv_get(t, IC_KV_DELEGATIONS, (struct ic_kv){key, n}, &val),
            0);
    }
    ic_store_txn_abort(t);
    return rc;
}

static void test_find(void **state)
{
    struct tu_fx *fx = *state;
    struct ic_txn *t;
    char g[] = "urn:icroot:graph:constraints";

    assert_int_equal(find(fx->st, "tierCountries", "JP"), IC_ENOTFOUND);
    put_record(fx->st, "availabilityQuanity", "99.9", EXCH, 60);
    assert_int_equal(find(fx->st, "availabilityQuantity", "99.9"), 0);
    assert_int_equal(find(fx->st, "availabilityQuanity", "99.9"), 0);
    assert_int_equal(find(fx->st, "availabilityQuanity", "99.99"),
                     IC_ENOTFOUND);
    assert_int_equal(find(fx->st, "nosuch", "99.9"), IC_ENOTFOUND);
    /* the attribute map gone: found by the stored text, alias and all */
    assert_int_equal(ic_store_txn_begin(fx->st, true, &t), 0);
    assert_int_equal(ic_store_graph_clear(t, g), 0);
    assert_int_equal(ic_store_txn_commit(t), 0);
    assert_int_equal(find(fx->st, "availabilityQuanity", "99.9"), 0);
    assert_int_equal(find(fx->st, "availabilityQuantity", "99.9"),
                     IC_ENOTFOUND);
}

/* ---- the resolver through a fake network --------------------------------- */

#define MAX_SENT 32

struct fake {
    struct ic_xml *sent[MAX_SENT];
    ic_xmpp_iq_cb cb[MAX_SENT];
    void *arg[MAX_SENT];
    bool answered[MAX_SENT];
    size_t n;
    int fail; /* the next sends return this */
    unsigned timeout_ms;
    uint64_t now;
};

static int fake_send(void *ctx,
                     struct ic_xml *iq,
                     unsigned timeout_ms,
                     ic_xmpp_iq_cb cb,
                     void *arg)
{
    struct fake *f = ctx;

    if (f->fail != 0) {
        ic_xml_free(iq);
        return f->fail;
    }
    assert_true(f->n < MAX_SENT);
    f->sent[f->n] = iq;
    f->cb[f->n] = cb;
    f->arg[f->n] = arg;
    f->timeout_ms = timeout_ms;
    f->n++;
    return 0;
}

static uint64_t fake_now(void *ctx)
{
    return ((struct fake *)ctx)->now;
}

/* Answers request I with TEXT (an iq), or NULL: the timeout. */
static void fake_answer(struct fake *f, size_t i, const char *text)
{
    struct ic_xml *x =
        text ? ic_xml_parse(text, strlen(text), IC_NS_CLIENT) : NULL;

    assert_true(i < f->n);
    assert_false(f->answered[i]);
    assert_true(text == NULL || x != NULL);
    f->answered[i] = true;
    f->cb[i](f->arg[i], x);
    ic_xml_free(x);
}

static void fake_free(struct fake *f)
{
    for (size_t i = 0; i < f->n; i++) {
        assert_true(f->answered[i]); /* every callback ran */
        ic_xml_free(f->sent[i]);
    }
}

/* A completed answer whose <out> holds OUT. */
#define RESULT(out)                                                         \
    "<iq type='result' xmlns='jabber:client'><command xmlns='" NS_CMD       \
    "' node='constraint_catalog_resources' status='completed'><iodata "     \
    "xmlns='" NS_IO "' type='output'><out>" out "</out></iodata></command>" \
    "</iq>"
#define CLOUDS(names) \
    "<matchingClouds xmlns='" NS_RES "'>" names "</matchingClouds>"
#define CN(n) "<cloudName>" n "</cloudName>"

/* What an output says: names "a,b", referrals "ex/ttl,...", partial. */
struct seen {
    bool done;
    char names[512];
    char refs[512];
    bool partial;
    size_t nout; /* children of <out> */
};

static void cat(char *buf, size_t len, const char *s)
{
    snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? "," : "",
             s);
}

static void on_done(void *arg, struct ic_xml *io)
{
    struct seen *s = arg;
    const struct ic_xml *out = ic_xml_child(io, "out", NS_IO);
    const struct ic_xml *mc = ic_xml_child(out, "matchingClouds", NS_RES);

    assert_false(s->done);
    memset(s, 0, sizeof *s);
    s->done = true;
    assert_string_equal(ic_xml_attr(io, "type"), "output");
    assert_non_null(mc);
    for (const struct ic_xml *x = ic_xml_child(mc, "cloudName", NULL); x;
         x = ic_xml_next(x, "cloudName", NULL)) {
        char *t = ic_xml_text(x);
        cat(s->names, sizeof s->names, t);
        ic_free(t);
    }
    for (const struct ic_xml *x = ic_xml_child(out, "referral", NS_RES); x;
         x = ic_xml_next(x, "referral", NS_RES)) {
        char *e = ic_xml_text(ic_xml_child(x, "exchange", NS_RES));
        char *t = ic_xml_text(ic_xml_child(x, "ttl", NS_RES)), buf[300];
        snprintf(buf, sizeof buf, "%s/%s", e, t);
        cat(s->refs, sizeof s->refs, buf);
        ic_free(e);
        ic_free(t);
    }
    s->partial = ic_xml_child(out, "partial", NS_RES) != NULL;
    for (const struct ic_xml *x = out->children; x; x = x->next)
        s->nout += x->name != NULL;
    ic_xml_free(io);
}

static const struct ic_constraint jp_query[] = {{"tierCountries", "JP"},
                                                {"replicationFactor", "3"}};
static char cloud2[] = "cloud2", cloud5[] = "cloud5";
static char *const local2[] = {cloud2, cloud5};

struct rfx {
    struct fake f;
    struct ic_deleg_resolver *rs;
    struct ic_deleg_refs refs;
};

static int rfx_setup(void **state)
{
    struct rfx *x = ic_calloc(1, sizeof *x);
    struct ic_deleg_seam seam = {fake_send, fake_now, &x->f, 0};

    x->f.now = 1000000;
    x->rs = ic_node__deleg_resolver_new(&seam, "intercloudexchg.test");
    ic_node__deleg_refs_add(&x->refs, EXCH, 2);
    *state = x;
    return 0;
}

static int rfx_teardown(void **state)
{
    struct rfx *x = *state;

    fake_free(&x->f);
    ic_node__deleg_resolver_free(x->rs);
    ic_node__deleg_refs_free(&x->refs);
    ic_free(x);
    return 0;
}

static void
resolve(struct rfx *x, bool recursive, unsigned hops, struct seen *s)
{
    struct ic_deleg_query q = {jp_query, 2,        "canon-jp", local2,
                               2,        &x->refs, recursive,  hops};

    memset(s, 0, sizeof *s);
    ic_node__deleg_resolve(x->rs, &q, on_done, s);
}

static void test_referral(void **state)
{
    struct rfx *x = *state;
    struct seen s;

    ic_node__deleg_refs_add(&x->refs, "service.other.example", 7);
    resolve(x, false, IC_DELEG_HOPS_DEFAULT, &s);
    assert_true(s.done); /* at once */
    assert_int_equal(x->f.n, 0);
    assert_string_equal(s.names, "cloud2,cloud5");
    assert_string_equal(s.refs, EXCH "/2,service.other.example/7");
    assert_false(s.partial);
    assert_int_equal(s.nout, 3);
}

static void test_recursive_merge(void **state)
{
    struct rfx *x = *state;
    const struct ic_xml *cs, *cmd, *c;
    struct seen s;
    char *t;

    resolve(x, true, IC_DELEG_HOPS_DEFAULT, &s);
    assert_false(s.done); /* waits for the exchange */
    assert_int_equal(x->f.n, 1);
    assert_int_equal(x->f.timeout_ms, IC_DELEG_TIMEOUT_MS);
    /* the same command, recursive, one hop less */
    assert_string_equal(ic_xml_attr(x->f.sent[0], "to"), EXCH);
    assert_string_equal(ic_xml_attr(x->f.sent[0], "type"), "set");
    cmd = ic_xml_child(x->f.sent[0], "command", NS_CMD);
    assert_string_equal(ic_xml_attr(cmd, "node"),
                        "constraint_catalog_resources");
    assert_string_equal(ic_xml_attr(cmd, "action"), "execute");
    cs = ic_xml_child(
        ic_xml_child(ic_xml_child(cmd, "iodata", NS_IO), "in", NS_IO),
        "constraints", NS_RES);
    assert_non_null(cs);
    assert_string_equal(ic_xml_attr(cs, "recursive"), "true");
    assert_string_equal(ic_xml_attr(cs, "hops"), "7");
    c = ic_xml_child(cs, "constraint", NS_RES);
    t = ic_xml_text(ic_xml_child(c, "attribute", NS_RES));
    assert_string_equal(t, "tierCountries");
    ic_free(t);
    c = ic_xml_next(c, "constraint", NS_RES);
    t = ic_xml_text(ic_xml_child(c, "value", NS_RES));
    assert_string_equal(t, "3");
    ic_free(t);
    assert_null(ic_xml_next(c, "constraint", NS_RES));

    /* names: local part -> name@exch.example; x@y kept; duplicates once;
     * our own clouds come back by a loop: dropped */
    fake_answer(&x->f, 0,
                RESULT(CLOUDS(CN("cloud4") CN("cloud1") CN("cloud4")
                                  CN(" z@sub.example\n") CN(" ")
                                      CN("cloud2@intercloudexchg.test"))));
    assert_true(s.done);
    assert_string_equal(s.names, "cloud1@exch.example,cloud2,"
                                 "cloud4@exch.example,cloud5,z@sub.example");
    assert_string_equal(s.refs, "");
    assert_false(s.partial);
    assert_int_equal(s.nout, 1);
    assert_int_equal(ic_node__deleg_cache_size(x->rs), 1);
}

static void test_cache_ttl(void **state)
{
    struct rfx *x = *state;
    struct seen s;

    resolve(x, true, 3, &s);
    fake_answer(&x->f, 0, RESULT(CLOUDS(CN("cloud4"))));
    assert_string_equal(s.names, "cloud2,cloud4@exch.example,cloud5");

    /* within the TTL (2 s): from the cache, at once */
    x->f.now += 1999;
    resolve(x, true, 3, &s);
    assert_true(s.done);
    assert_int_equal(x->f.n, 1);
    assert_string_equal(s.names, "cloud2,cloud4@exch.example,cloud5");
    assert_string_equal(s.refs, "");

    /* another constraint set is another entry */
    {
        struct ic_deleg_query q = {jp_query, 1,        "canon-other", local2,
                                   2,        &x->refs, true,          3};
        memset(&s, 0, sizeof s);
        ic_node__deleg_resolve(x->rs, &q, on_done, &s);
        assert_int_equal(x->f.n, 2);
        fake_answer(&x->f, 1, RESULT(CLOUDS(CN("cloud8"))));
        assert_string_equal(s.names, "cloud2,cloud5,cloud8@exch.example");
    }

    /* expired: asked again, and the new answer replaces the old one */
    x->f.now += 1;
    resolve(x, true, 3, &s);
    assert_false(s.done);
    assert_int_equal(x->f.n, 3);
    fake_answer(&x->f, 2, RESULT(CLOUDS(CN("cloud6"))));
    assert_string_equal(s.names, "cloud2,cloud5,cloud6@exch.example");
    x->f.now += 1000;
    resolve(x, true, 3, &s);
    assert_int_equal(x->f.n, 3);
    assert_string_equal(s.names, "cloud2,cloud5,cloud6@exch.example");
    assert_int_equal(ic_node__deleg_cache_size(x->rs), 2);
}

/* Three queries that miss on one key at once: one request, three answers;
 * with other hops left it is another request; the cache holds 1024
 * answers, the oldest going first. */
static void test_concurrent_misses_share(void **state)
{
    struct rfx *x = *state;
    struct seen s1, s2, s3, s4;

    resolve(x, true, 3, &s1);
    resolve(x, true, 3, &s2);
    resolve(x, true, 3, &s3);
    assert_int_equal(x->f.n, 1);
    resolve(x, true, 5, &s4); /* other hops: its own request */
    assert_int_equal(x->f.n, 2);
    fake_answer(&x->f, 0, RESULT(CLOUDS(CN("cloud4"))));
    assert_true(s1.done && s2.done && s3.done);
    assert_false(s4.done);
    assert_string_equal(s3.names, "cloud2,cloud4@exch.example,cloud5");
    assert_string_equal(s1.names, s3.names);
    fake_answer(&x->f, 1, NULL); /* its timeout: partial, nothing cached */
    assert_true(s4.done && s4.partial);
    assert_int_equal(ic_node__deleg_cache_size(x->rs), 1);

    /* 1100 other constraint sets: the cache keeps the last 1024 */
    for (unsigned i = 0; i < 1100; i++) {
        char canon[32];
        struct ic_deleg_query q = {jp_query, 1,        canon, local2,
                                   2,        &x->refs, true,  3};
        struct seen s;
        snprintf(canon, sizeof canon, "set-%u", i);
        x->f.now++;
        memset(&s, 0, sizeof s);
        ic_node__deleg_resolve(x->rs, &q, on_done, &s);
        assert_int_equal(x->f.n, 3);
        fake_answer(&x->f, 2, RESULT(CLOUDS(CN("cloud9"))));
        x->f.n--; /* reuse the slot */
        ic_xml_free(x->f.sent[2]);
        x->f.answered[2] = false;
        assert_true(s.done);
    }
    assert_int_equal(ic_node__deleg_cache_size(x->rs), IC_DELEG_CACHE_MAX);
    resolve(x, true, 3, &s1); /* the first key is long gone */
    assert_int_equal(x->f.n, 3);
    fake_answer(&x->f, 2, RESULT(CLOUDS(CN("cloud4"))));
    assert_true(s1.done);
}

static void test_negative_cached(void **state)
{
    struct rfx *x = *state;
    struct seen s;

    resolve(x, true, 3, &s);
    fake_answer(&x->f, 0, RESULT(CLOUDS("")));
    assert_string_equal(s.names, "cloud2,cloud5");
    assert_string_equal(s.refs, "");
    assert_false(s.partial);
    x->f.now += 1500;
    resolve(x, true, 3, &s);
    assert_true(s.done);
    assert_int_equal(x->f.n, 1); /* the empty answer was kept */
    assert_string_equal(s.refs, "");
    assert_false(s.partial);
    x->f.now += 500;
    resolve(x, true, 3, &s);
    assert_int_equal(x->f.n, 2);
    fake_answer(&x->f, 1, RESULT(CLOUDS(CN("cloud3"))));
    assert_string_equal(s.names, "cloud2,cloud3@exch.example,cloud5");
}

static void test_timeout_partial(void **state)
{
    struct rfx *x = *state;
    struct seen s;

    ic_node__deleg_refs_add(&x->refs, "service.other.example", 60);
    resolve(x, true, 3, &s);
    assert_int_equal(x->f.n, 2);
    fake_answer(&x->f, 1, RESULT(CLOUDS(CN("cloud7"))));
    assert_false(s.done);
    fake_answer(&x->f, 0, NULL); /* the timeout */
    assert_true(s.done);
    assert_string_equal(s.names, "cloud2,cloud5,cloud7@other.example");
    assert_string_equal(s.refs, EXCH "/2");
    assert_true(s.partial);
    /* the failure is not cached: asked again; the other one is */
    resolve(x, true, 3, &s);
    assert_int_equal(x->f.n, 3);
    assert_string_equal(ic_xml_attr(x->f.sent[2], "to"), EXCH);
    fake_answer(&x->f, 2, RESULT(CLOUDS(CN("cloud4"))));
    assert_string_equal(
        s.names, "cloud2,cloud4@exch.example,cloud5,cloud7@other.example");
    assert_string_equal(s.refs, "");
    assert_false(s.partial);
}

static void test_error_answers(void **state)
{
    struct rfx *x = *state;
    struct seen s;

    /* a stanza error (remote-server-not-found until S2S exists) */
    resolve(x, true, 3, &s);
    fake_answer(&x->f, 0,
                "<iq type='error' xmlns='jabber:client'><error type='cancel'>"
                "<remote-server-not-found xmlns='urn:ietf:params:xml:ns:"
                "xmpp-stanzas'/></error></iq>");
    assert_string_equal(s.names, "cloud2,cloud5");
    assert_string_equal(s.refs, EXCH "/2");
    assert_true(s.partial);
    /* a result without <matchingClouds> */
    resolve(x, true, 3, &s);
    fake_answer(&x->f, 1, RESULT(""));
    assert_string_equal(s.refs, EXCH "/2");
    assert_true(s.partial);
    /* the send itself fails: at once */
    x->f.fail = IC_EVALUE;
    resolve(x, true, 3, &s);
    assert_true(s.done);
    assert_string_equal(s.refs, EXCH "/2");
    assert_true(s.partial);
    assert_int_equal(ic_node__deleg_cache_size(x->rs), 0);
}

static void test_exchange_partial(void **state)
{
    struct rfx *x = *state;
    struct seen s;

    resolve(x, true, 3, &s);
    fake_answer(
        &x->f, 0,
        RESULT(CLOUDS(
            CN("cloud4")) "<referral xmlns='" NS_RES
                          "'><exchange>service.far.example</exchange><ttl>9"
                          "</ttl></referral><partial xmlns='" NS_RES "'/>"));
    assert_string_equal(s.names, "cloud2,cloud4@exch.example,cloud5");
    assert_string_equal(s.refs, "service.far.example/9");
    assert_true(s.partial);
    assert_int_equal(ic_node__deleg_cache_size(x->rs), 0);
}

static void test_hop_limit(void **state)
{
    struct rfx *x = *state;
    struct seen s;

    resolve(x, true, 0, &s); /* spent: not forwarded */
    assert_true(s.done);
    assert_int_equal(x->f.n, 0);
    assert_string_equal(s.names, "cloud2,cloud5");
    assert_string_equal(s.refs, EXCH "/2");
    assert_true(s.partial);
    resolve(x, true, 1, &s); /* the last hop */
    assert_int_equal(x->f.n, 1);
    assert_string_equal(
        ic_xml_attr(
            ic_xml_child(
                ic_xml_child(
                    ic_xml_child(ic_xml_child(x->f.sent[0], "command", NS_CMD),
                                 "iodata", NS_IO),
                    "in", NS_IO),
                "constraints", NS_RES),
            "hops"),
        "0");
    fake_answer(&x->f, 0, RESULT(CLOUDS("")));
    assert_false(s.partial);
}

/* Two nodes, each delegating the scope to the other: the network delivers
 * a request at once to the other node's resolver, whose answer goes back
 * as the iq result. The loop ends when the hops are spent. */
struct peer {
    struct ic_deleg_resolver *rs;
    struct peer *other;
    const char *self_jid;
    char *local[1];
    size_t sends;
};

struct reply {
    ic_xmpp_iq_cb cb;
    void *arg;
};

static void on_peer_done(void *arg, struct ic_xml *io)
{
    struct reply *r = arg;
    struct ic_xml *iq = ic_xml_new("iq", IC_NS_CLIENT);
    struct ic_xml *cmd = ic_xml_add(iq, "command", NS_CMD);

    ic_xml_set_attr(iq, "type", "result");
    ic_xml_append(cmd, io);
    r->cb(r->arg, iq);
    ic_xml_free(iq);
}

static int peer_send(void *ctx,
                     struct ic_xml *iq,
                     unsigned timeout_ms,
                     ic_xmpp_iq_cb cb,
                     void *arg)
{
    struct peer *p = ctx, *o = p->other;
    const struct ic_xml *cs = ic_xml_child(
        ic_xml_child(
            ic_xml_child(ic_xml_child(iq, "command", NS_CMD), "iodata", NS_IO),
            "in", NS_IO),
        "constraints", NS_RES);
    struct ic_deleg_refs refs = {0};
    struct reply r = {cb, arg};
    struct ic_deleg_query q = {jp_query, 2,     "canon", o->local,
                               1,        &refs, false,   0};

    (void)timeout_ms;
    p->sends++;
    assert_string_equal(ic_xml_attr(iq, "to"), o->self_jid);
    q.recursive = strcmp(ic_xml_attr(cs, "recursive"), "true") == 0;
    q.hops = (unsigned)atoi(ic_xml_attr(cs, "hops"));
    ic_node__deleg_refs_add(&refs, p->self_jid, 60);
    ic_node__deleg_resolve(o->rs, &q, on_peer_done, &r);
    ic_node__deleg_refs_free(&refs);
    ic_xml_free(iq);
    return 0;
}

static uint64_t peer_now(void *ctx)
{
    (void)ctx;
    return 5000;
}

static void test_loop_ends_by_hops(void **state)
{
    char name_a[] = "cloudA", name_b[] = "cloudB";
    struct peer a = {0}, b = {0};
    struct ic_deleg_seam sa = {peer_send, peer_now, &a, 0};
    struct ic_deleg_seam sb = {peer_send, peer_now, &b, 0};
    struct ic_deleg_refs refs = {0};
    struct ic_deleg_query q = {jp_query, 2,     "canon", a.local,
                               1,        &refs, true,    IC_DELEG_HOPS_DEFAULT};
    struct seen s = {0};

    (void)state;
    a.rs = ic_node__deleg_resolver_new(&sa, "a.example");
    b.rs = ic_node__deleg_resolver_new(&sb, "b.example");
    a.other = &b;
    b.other = &a;
    a.self_jid = "service.a.example";
    b.self_jid = "service.b.example";
    a.local[0] = name_a;
    b.local[0] = name_b;
    q.local = a.local;
    ic_node__deleg_refs_add(&refs, b.self_jid, 60); /* a delegates to b */
    ic_node__deleg_resolve(a.rs, &q, on_done, &s);
    assert_true(s.done);
    /* hops 7, 6, ..., 0 travel; the node that gets 0 stops */
    assert_int_equal(a.sends + b.sends, IC_DELEG_HOPS_DEFAULT);
    assert_string_equal(s.names, "cloudA,cloudB@b.example");
    assert_true(s.partial);
    assert_string_equal(s.refs, "service.b.example/60");
    /* partial answers are not cached: nothing kept on either side */
    assert_int_equal(ic_node__deleg_cache_size(a.rs), 0);
    assert_int_equal(ic_node__deleg_cache_size(b.rs), 0);
    ic_node__deleg_refs_free(&refs);
    ic_node__deleg_resolver_free(a.rs);
    ic_node__deleg_resolver_free(b.rs);
}

static void test_domain_of(void **state)
{
    const char *cases[][2] = {
        {"service.exch.example", "exch.example"},
        {"exch.example", "exch.example"},
        {"svc@service.exch.example/r", "exch.example"},
        {"service.", "service."},
        {"services.example", "services.example"},
    };

    (void)state;
    for (size_t i = 0; i < IC_ARRAY_LEN(cases); i++) {
        char *d = ic_node__deleg_domain_of(cases[i][0]);
        assert_string_equal(d, cases[i][1]);
        ic_free(d);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_xml_full),
        cmocka_unit_test(test_from_xml_malformed),
        cmocka_unit_test(test_encode_decode),
        cmocka_unit_test_setup_teardown(test_key_normalised,
                                        tu_fx_setup_ontology, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_concerned, tu_fx_setup_ontology,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_find, tu_fx_setup_ontology,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_referral, rfx_setup, rfx_teardown),
        cmocka_unit_test_setup_teardown(test_recursive_merge, rfx_setup,
                                        rfx_teardown),
        cmocka_unit_test_setup_teardown(test_cache_ttl, rfx_setup,
                                        rfx_teardown),
        cmocka_unit_test_setup_teardown(test_negative_cached, rfx_setup,
                                        rfx_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_partial, rfx_setup,
                                        rfx_teardown),
        cmocka_unit_test_setup_teardown(test_error_answers, rfx_setup,
                                        rfx_teardown),
        cmocka_unit_test_setup_teardown(test_exchange_partial, rfx_setup,
                                        rfx_teardown),
        cmocka_unit_test_setup_teardown(test_hop_limit, rfx_setup,
                                        rfx_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_misses_share, rfx_setup,
                                        rfx_teardown),
        cmocka_unit_test(test_loop_ends_by_hops),
        cmocka_unit_test(test_domain_of),
    };

    return tu_main(argc, argv, "delegation", tests, IC_ARRAY_LEN(tests));
}
