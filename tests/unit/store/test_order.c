/*
 * test_order.c - the order-preserving ids of numeric and dateTime literals
 * (term.c) and the matcher's exact comparisons in the edge buckets of a
 * range (match.c).
 *
 * The property: for literals a, b of ordered types with values va < vb,
 * (id(a) >> IC_ORD_SEQ_BITS) <= (id(b) >> IC_ORD_SEQ_BITS); equal values
 * share a bucket; values far enough apart get distinct buckets.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ic_node.h"
#include "store_int.h"
#include "test_util.h"

/* One literal with its value as the test knows it. */
struct item {
    char lex[460];
    const char *dt;
    long double v;
    uint64_t id;
};

struct items {
    struct item *a;
    size_t n, cap;
};

static struct item *
push(struct items *it, const char *lex, const char *dt, long double v)
{
    struct item *x;

    if (it->n == it->cap) {
        it->cap = it->cap ? it->cap * 2 : 256;
        it->a = ic_realloc(it->a, it->cap * sizeof *it->a);
    }
    x = &it->a[it->n++];
    assert_true(strlen(lex) < sizeof x->lex);
    snprintf(x->lex, sizeof x->lex, "%s", lex);
    x->dt = dt;
    x->v = v;
    x->id = 0;
    return x;
}

/* A number whose value strtold reads exactly as the test means it. */
static void num(struct items *it, const char *lex, const char *dt)
{
    push(it, lex, dt, strtold(lex, NULL));
}

static uint64_t lit_id(struct ic_txn *txn, const char *lex, const char *dt)
{
    struct ic_term t = ic_term_literal(lex, dt);
    uint64_t id = 0;

    assert_int_equal(ic_store_term_id(txn, &t, true, &id), 0);
    return id;
}

static uint64_t bucket(uint64_t id)
{
    return id >> IC_ORD_SEQ_BITS;
}

/* Whether A and B are far enough apart (relative to the 48-bit key of a
 * double, which keeps 36 bits of mantissa) to need different buckets. */
static bool far_apart(long double a, long double b)
{
    long double m = fmaxl(fabsl(a), fabsl(b));

    if (isinf(a) || isinf(b))
        return !(isinf(a) && isinf(b)) && fminl(fabsl(a), fabsl(b)) < 1e300L;
    if (m > 1e300L || m < 1e-300L)
        return false;
    return b - a > m * 1e-9L;
}

static void check_order(struct items *it, uint64_t tag)
{
    size_t strict = 0;

    for (size_t i = 0; i < it->n; i++) {
        struct item *a = &it->a[i];
        if (IC_ID_TAG(a->id) != tag)
            fail_msg("\"%s\"^^%s: tag %llx, expected %llx", a->lex, a->dt,
                     (unsigned long long)IC_ID_TAG(a->id),
                     (unsigned long long)tag);
    }
    for (size_t i = 0; i < it->n; i++)
        for (size_t j = 0; j < it->n; j++) {
            struct item *a = &it->a[i], *b = &it->a[j];
            if (a->v < b->v && bucket(a->id) > bucket(b->id))
                fail_msg("\"%s\" < \"%s\" but bucket %llx > %llx", a->lex,
                         b->lex, (unsigned long long)bucket(a->id),
                         (unsigned long long)bucket(b->id));
            if (a->v == b->v && bucket(a->id) != bucket(b->id))
                fail_msg("\"%s\" == \"%s\" but buckets %llx, %llx", a->lex,
                         b->lex, (unsigned long long)bucket(a->id),
                         (unsigned long long)bucket(b->id));
            if (a->v < b->v && far_apart(a->v, b->v)) {
                if (bucket(a->id) >= bucket(b->id))
                    fail_msg("\"%s\" << \"%s\" but same bucket %llx", a->lex,
                             b->lex, (unsigned long long)bucket(a->id));
                strict++;
            }
            if (i != j && strcmp(a->lex, b->lex) == 0 &&
                strcmp(a->dt, b->dt) == 0)
                assert_int_equal(a->id, b->id);
            else if (i != j)
                assert_true(a->id != b->id);
        }
    assert_true(strict > it->n);
}

static void assign_ids(struct tu_fx *f, struct items *it)
{
    struct ic_txn *txn;
    uint64_t id;

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    for (size_t i = 0; i < it->n; i++)
        it->a[i].id = lit_id(txn, it->a[i].lex, it->a[i].dt);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    /* the same ids come back from a read transaction */
    assert_int_equal(ic_store_txn_begin(f->st, false, &txn), 0);
    for (size_t i = 0; i < it->n; i++) {
        struct ic_term t = ic_term_literal(it->a[i].lex, it->a[i].dt);
        assert_int_equal(ic_store_term_id(txn, &t, false, &id), 0);
        assert_int_equal(id, it->a[i].id);
    }
    ic_store_txn_abort(txn);
}

static void test_order_numbers(void **state)
{
    struct tu_fx *f = *state;
    struct items it = {0};
    uint64_t seed = 20260101;
    char buf[460];
    static const char *const int_types[] = {
        IC_XSD "integer",
        IC_XSD "long",
        IC_XSD "int",
        IC_XSD "short",
    };

    /* zeros and signs */
    num(&it, "0", IC_XSD "integer");
    num(&it, "-0", IC_XSD "integer");
    num(&it, "+0", IC_XSD "int");
    num(&it, "0.0", IC_XSD "decimal");
    num(&it, "-0.0", IC_XSD "decimal");
    num(&it, "0E0", IC_XSD "double");
    num(&it, "-0E0", IC_XSD "double");
    num(&it, "-0", IC_XSD "float");
    /* the same value as integer, decimal, double, float, subtypes */
    num(&it, "5", IC_XSD "integer");
    num(&it, "005", IC_XSD "integer");
    num(&it, "+5", IC_XSD "integer");
    num(&it, "5.0", IC_XSD "decimal");
    num(&it, "5.", IC_XSD "decimal");
    num(&it, "5E0", IC_XSD "double");
    num(&it, "0.5e1", IC_XSD "double");
    num(&it, "5", IC_XSD "float");
    num(&it, "5", IC_XSD "int");
    num(&it, "5", IC_XSD "unsignedByte");
    num(&it, "5", IC_XSD "positiveInteger");
    num(&it, "-5", IC_XSD "negativeInteger");
    num(&it, "-5.000", IC_XSD "decimal");
    num(&it, ".5", IC_XSD "decimal");
    num(&it, "-.5", IC_XSD "decimal");
    /* close together: the 15th digit and beyond */
    num(&it, "99.999", IC_XSD "decimal");
    num(&it, "99.99900000000001", IC_XSD "decimal");
    num(&it, "99.99899999999999", IC_XSD "decimal");
    num(&it, "99.9990000000000000001", IC_XSD "decimal");
    num(&it, "99.999", IC_XSD "double");
    num(&it, "3.14159265358979", IC_XSD "decimal");
    num(&it, "3.14159265358980", IC_XSD "decimal");
    num(&it, "1.000000000000001", IC_XSD "decimal");
    num(&it, "1.000000000000002", IC_XSD "decimal");
    num(&it, "9007199254740992", IC_XSD "integer");
    num(&it, "9007199254740993", IC_XSD "integer");
    num(&it, "9223372036854775807", IC_XSD "long");
    num(&it, "-9223372036854775808", IC_XSD "long");
    num(&it, "18446744073709551615", IC_XSD "unsignedLong");
    num(&it, "123456789012345678901234567890", IC_XSD "integer");
    num(&it, "-123456789012345678901234567890", IC_XSD "integer");
    /* tiny and huge */
    num(&it, "0.000000000000000000000000001", IC_XSD "decimal");
    num(&it, "-0.000000000000000000000000001", IC_XSD "decimal");
    num(&it, "4.9E-324", IC_XSD "double");
    num(&it, "-4.9E-324", IC_XSD "double");
    num(&it, "2.2250738585072014E-308", IC_XSD "double");
    num(&it, "1E-320", IC_XSD "double");
    num(&it, "1.7976931348623157E308", IC_XSD "double");
    num(&it, "-1.7976931348623157E308", IC_XSD "double");
    num(&it, "3.4028235E38", IC_XSD "float");
    num(&it, "1E308", IC_XSD "double");
    num(&it, "1E309", IC_XSD "double"); /* beyond a double */
    num(&it, "-1E309", IC_XSD "double");
    memset(buf, '0', 401);
    buf[0] = '1';
    buf[401] = '\0';
    num(&it, buf, IC_XSD "integer"); /* 1E400 */
    buf[0] = '-';
    buf[1] = '1';
    num(&it, buf, IC_XSD "integer"); /* -1E399 */
    num(&it, "INF", IC_XSD "double");
    num(&it, "+INF", IC_XSD "double");
    num(&it, "-INF", IC_XSD "double");
    num(&it, "INF", IC_XSD "float");
    num(&it, "-INF", IC_XSD "float");
    /* random values of every magnitude, in several types */
    for (int i = 0; i < 250; i++) {
        uint64_t r = tu_rand(&seed);
        int e = (int)(r % 41) - 20;
        double m = (double)(tu_rand(&seed) >> 11) / 9007199254740992.0;
        double v = ldexp(m, e * 3) * ((r >> 32) & 1 ? -1 : 1);
        snprintf(buf, sizeof buf, "%.17g", v);
        if (strchr(buf, 'e') == NULL && strchr(buf, 'n') == NULL)
            num(&it, buf, IC_XSD "decimal");
        snprintf(buf, sizeof buf, "%.17E", v);
        num(&it, buf, IC_XSD "double");
        snprintf(buf, sizeof buf, "%.6E", v);
        num(&it, buf, IC_XSD "double");
        if (fabs(v * 1000) < 9e18) {
            snprintf(buf, sizeof buf, "%lld", (long long)(v * 1000));
            num(&it, buf, int_types[i % 4]);
        }
    }
    /* exact duplicates of lexical form and type must share the id */
    num(&it, "99.999", IC_XSD "decimal");
    num(&it, "5", IC_XSD "integer");

    assign_ids(f, &it);
    check_order(&it, IC_TAG_NUM);
    ic_free(it.a);
}

/* Seconds since the epoch to an xsd:dateTime in zone OFF minutes. */
static void fmt_time(char *buf, size_t len, long long t, int off, int ms)
{
    time_t local = (time_t)(t + off * 60);
    struct tm tm;
    char zone[16];

    assert_non_null(gmtime_r(&local, &tm));
    if (off == 0 && ms % 2 == 0)
        snprintf(zone, sizeof zone, "Z");
    else
        snprintf(zone, sizeof zone, "%c%02d:%02d", off < 0 ? '-' : '+',
                 abs(off) / 60, abs(off) % 60);
    if (ms >= 0)
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%s",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, ms, zone);
    else
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%s", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 zone);
}

static void test_order_datetimes(void **state)
{
    struct tu_fx *f = *state;
    struct items it = {0};
    uint64_t seed = 77;
    char buf[64];
    const char *dt = IC_XSD "dateTime";
    const long double t0 = 1767225600.0L; /* 2026-01-01T00:00:00Z */

    /* time zones order by instant */
    push(&it, "2026-01-01T10:00:00+02:00", dt, t0 + 8 * 3600);
    push(&it, "2026-01-01T09:00:00Z", dt, t0 + 9 * 3600);
    push(&it, "2026-01-01T00:00:00Z", dt, t0);
    push(&it, "2026-01-01T00:00:00", dt, t0);
    push(&it, "2025-12-31T19:00:00-05:00", dt, t0);
    push(&it, "2026-01-01T09:00:00+09:00", dt, t0);
    push(&it, "2026-01-01T05:30:00+05:30", dt, t0);
    push(&it, "2026-01-01T00:00:00.5Z", dt, t0 + 0.5L);
    push(&it, "2026-01-01T00:00:00.001Z", dt, t0 + 0.001L);
    push(&it, "2026-01-01T00:00:00.000Z", dt, t0);
    push(&it, "2026-01-01T00:00:01Z", dt, t0 + 1);
    push(&it, "2025-12-31T23:59:59Z", dt, t0 - 1);
    push(&it, "2026-01-01T00:00:00Z", IC_XSD "dateTimeStamp", t0);
    push(&it, "2024-02-29T12:00:00Z", dt, 1709208000.0L);
    push(&it, "1970-01-01T00:00:00Z", dt, 0);
    push(&it, "1969-12-31T23:59:59Z", dt, -1);
    push(&it, "1970-01-01T00:00:00+14:00", dt, -14 * 3600);
    push(&it, "0001-01-01T00:00:00Z", dt, -62135596800.0L);
    push(&it, "9999-12-31T23:59:59Z", dt, 253402300799.0L);
    push(&it, "2026-01-01T24:00:00Z", dt, t0 + 86400);
    push(&it, "2026-01-02T00:00:00Z", dt, t0 + 86400);
    /* random instants in random zones, some with milliseconds */
    for (int i = 0; i < 300; i++) {
        long long t = (long long)(tu_rand(&seed) % 6311390400ULL) -
                      2208988800LL; /* 1900 .. 2100 */
        int off = ((int)(tu_rand(&seed) % 113) - 56) * 15;
        int ms = (int)(tu_rand(&seed) % 2000) - 1000;
        if (i % 3 == 0)
            off = 0;
        fmt_time(buf, sizeof buf, t, off, ms < 0 ? -1 : ms);
        push(&it, buf, dt, (long double)t + (ms < 0 ? 0 : ms) / 1000.0L);
    }
    assign_ids(f, &it);
    check_order(&it, IC_TAG_TIME);
    ic_free(it.a);
}

/* Invalid lexical forms stay in the dictionary's tag. */
static void check_dict(struct tu_fx *f, const char *const (*bad)[2], size_t n)
{
    struct ic_txn *txn;

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    for (size_t i = 0; i < n; i++) {
        uint64_t id = lit_id(txn, bad[i][0], bad[i][1]);
        if (IC_ID_TAG(id) != IC_TAG_DICT)
            fail_msg("\"%s\"^^<%s> got tag %llx, not the dictionary's",
                     bad[i][0], bad[i][1], (unsigned long long)IC_ID_TAG(id));
    }
    assert_int_equal(ic_store_txn_commit(txn), 0);
}

static void test_order_invalid_forms(void **state)
{
    static const char *const bad[][2] = {
        {"abc", IC_XSD "integer"},
        {"1.5", IC_XSD "integer"},
        {"1e5", IC_XSD "integer"},
        {"", IC_XSD "integer"},
        {"-", IC_XSD "integer"},
        {"+-5", IC_XSD "integer"},
        {"0x1A", IC_XSD "integer"},
        {"5 apples", IC_XSD "integer"},
        {"1.2.3", IC_XSD "decimal"},
        {"1e5", IC_XSD "decimal"},
        {"INF", IC_XSD "decimal"},
        {".", IC_XSD "decimal"},
        {"NaN", IC_XSD "double"},
        {"-NaN", IC_XSD "double"},
        {"1e", IC_XSD "double"},
        {"e5", IC_XSD "double"},
        {"Infinity", IC_XSD "double"},
        {"inf", IC_XSD "float"},
        {"5", IC_XSD "string"},
        {"5", "http://ex/notXsd#integer"},
        {"2026-13-01T00:00:00Z", IC_XSD "dateTime"},
        {"2026-00-10T00:00:00Z", IC_XSD "dateTime"},
        {"2026-01-32T00:00:00Z", IC_XSD "dateTime"},
        {"2026-01-01", IC_XSD "dateTime"},
        {"2026-01-01T25:00:00Z", IC_XSD "dateTime"},
        {"2026-01-01T10:60:00Z", IC_XSD "dateTime"},
        {"2026-01-01T10:00Z", IC_XSD "dateTime"},
        {"2026-01-01T10:00:00+2:00", IC_XSD "dateTime"},
        {"2026-01-01T10:00:00 Z", IC_XSD "dateTime"},
        {"2026-01-01T10:00:00.Z", IC_XSD "dateTime"},
        {"20260101T100000Z", IC_XSD "dateTime"},
        {"26-01-01T10:00:00Z", IC_XSD "dateTime"},
        {"yesterday", IC_XSD "dateTime"},
    };

    check_dict(*state, bad, IC_ARRAY_LEN(bad));
}

/* Regression: dates that do not exist and hours past 24:00:00 once got
 * ordered ids. */
static void regress_order_impossible_dates(void **state)
{
    static const char *const bad[][2] = {
        {"2026-02-30T00:00:00Z", IC_XSD "dateTime"},
        {"2026-04-31T00:00:00Z", IC_XSD "dateTime"},
        {"2025-02-29T00:00:00Z", IC_XSD "dateTime"},
        {"2026-01-01T24:30:00Z", IC_XSD "dateTime"},
    };

    check_dict(*state, bad, IC_ARRAY_LEN(bad));
}

/* A bucket holds 4096 distinct literals; one more is refused cleanly. */
static void test_order_bucket_full(void **state)
{
    struct tu_fx *f = *state;
    struct ic_txn *txn;
    char lex[32];
    uint64_t first = 0, id;

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    for (int k = 0; k < 4096; k++) {
        snprintf(lex, sizeof lex, "1.%015d", k);
        id = lit_id(txn, lex, IC_XSD "decimal");
        if (k == 0)
            first = id;
        assert_int_equal(bucket(id), bucket(first));
        assert_int_equal(id, first + (uint64_t)k);
    }
    assert_int_equal(ic_store_txn_commit(txn), 0);
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    {
        struct ic_term t =
            ic_term_literal("1.000000000004096", IC_XSD "decimal");
        assert_int_equal(ic_store_term_id(txn, &t, true, &id), IC_ELIMIT);
    }
    ic_store_txn_abort(txn);
    /* the neighbours are unaffected */
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    id = lit_id(txn, "1.000000000000000", IC_XSD "decimal");
    assert_int_equal(id, first);
    id = lit_id(txn, "2", IC_XSD "decimal");
    assert_true(bucket(id) > bucket(first));
    id = lit_id(txn, "0.99999999999", IC_XSD "decimal");
    assert_true(bucket(id) < bucket(first));
    assert_int_equal(ic_store_txn_commit(txn), 0);
}

/* The matcher at the range edges: values in the same bucket as the query
 * value are compared exactly, both when the range is scanned and when
 * candidates are probed one by one. */

#define EDGE_TTL                                                             \
    "@prefix ic: <http://www.csp/resOntology#> .\n"                          \
    "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n"                   \
    "<xmpp:above@t> a ic:Cloud ; ic:region \"edge\" ;\n"                     \
    "  ic:availability 99.99900000000001 ; ic:price 0.02500000000000001 ;\n" \
    "  ic:replicationFactor 5.000000000000001 ;\n"                           \
    "  ic:updated \"2026-01-15T09:30:00.001Z\"^^xsd:dateTime .\n"            \
    "<xmpp:equal@t> a ic:Cloud ; ic:region \"edge\" ;\n"                     \
    "  ic:availability 99.999 ; ic:price 0.025 ; ic:replicationFactor 5 ;\n" \
    "  ic:updated \"2026-01-15T18:30:00+09:00\"^^xsd:dateTime .\n"           \
    "<xmpp:below@t> a ic:Cloud ; ic:region \"edge\" ;\n"                     \
    "  ic:availability 99.99899999999999 ; ic:price 0.02499999999999999 ;\n" \
    "  ic:replicationFactor 4.999999999999999 ;\n"                           \
    "  ic:updated \"2026-01-15T09:29:59.999Z\"^^xsd:dateTime .\n"            \
    "<xmpp:double@t> a ic:Cloud ; ic:region \"edge\" ;\n"                    \
    "  ic:availability \"99.999\"^^xsd:double ; ic:price 2.5E-2 ;\n"         \
    "  ic:replicationFactor \"5\"^^xsd:int ;\n"                              \
    "  ic:updated \"2026-01-15T09:30:00\"^^xsd:dateTime .\n"

static void load_edge_catalog(struct tu_fx *f, int fillers)
{
    struct ic_load_result res;
    size_t cap = 4096 + (size_t)fillers * 200, len;
    char *ttl = ic_malloc(cap);
    int rc;

    tu_load(f->st, TU_ONTOLOGY "/constraints.ttl");
    len = (size_t)snprintf(ttl, cap, "%s", EDGE_TTL);
    for (int i = 0; i < fillers; i++)
        len += (size_t)snprintf(
            ttl + len, cap - len,
            "<xmpp:filler%d@t> a ic:Cloud ; ic:region \"filler\" ; "
            "ic:availability %d.%03d ; ic:price %d.5 ; "
            "ic:replicationFactor %d ; "
            "ic:updated \"2025-%02d-%02dT00:00:00Z\"^^xsd:dateTime .\n",
            i, 50 + i % 40, i % 1000, 1 + i % 7, i % 4, 1 + i % 12, 1 + i % 28);
    assert_true(len < cap);
    rc = tu_load_text(f->st, ttl, "urn:edge", IC_LOAD_BY_SUBJECT, true, &res);
    if (rc != 0)
        fail_msg("load: %s", res.error);
    ic_free(ttl);
}

static void check_edges(struct tu_fx *f, bool with_region)
{
    static const struct {
        const char *attr, *value, *expect;
    } q[] = {
        {"availabilityQuantity", "99.999", "above,double,equal"},
        {"availabilityQuantity", "99.99900000000001", "above"},
        {"availabilityQuantity", "99.99899999999999",
         "above,below,double,equal"},
        {"availabilityQuantity", "99.999000000000001", "above"},
        {"maxPrice", "0.025", "below,double,equal"},
        {"maxPrice", "0.02499999999999999", "below"},
        {"maxPrice", "0.025000000000000001", "below,double,equal"},
        {"replicationFactor", "5", "above,double,equal"},
        {"replicationFactor", "6", ""},
        {"updatedSince", "2026-01-15T09:30:00Z", "above,double,equal"},
        {"updatedSince", "2026-01-15T18:30:00.0005+09:00", "above"},
        {"updatedSince", "2026-01-15T09:29:59.9995Z", "above,double,equal"},
        {"updatedSince", "2026-01-15T09:29:59.998Z",
         "above,below,double,equal"},
    };

    for (size_t i = 0; i < IC_ARRAY_LEN(q); i++) {
        struct ic_constraint c[2] = {{q[i].attr, q[i].value},
                                     {"region", "edge"}};
        char err[256] = "";
        int rc;
        char *got = tu_match(f->st, c, with_region ? 2 : 1, &rc, err);
        if (rc != 0)
            fail_msg("%s=%s: %d %s", q[i].attr, q[i].value, rc, err);
        if (strcmp(got, q[i].expect) != 0)
            fail_msg("%s=%s%s: got \"%s\", expected \"%s\"", q[i].attr,
                     q[i].value, with_region ? " (probe)" : "", got,
                     q[i].expect);
        ic_free(got);
    }
}

static void test_match_edges_scan(void **state)
{
    struct tu_fx *f = *state;
    struct ic_txn *txn;
    uint64_t a, b, c;

    load_edge_catalog(f, 0);
    /* the three availabilities do share one bucket */
    assert_int_equal(ic_store_txn_begin(f->st, false, &txn), 0);
    {
        struct ic_term t[3] = {
            ic_term_literal("99.99900000000001", IC_XSD "decimal"),
            ic_term_literal("99.999", IC_XSD "decimal"),
            ic_term_literal("99.99899999999999", IC_XSD "decimal"),
        };
        assert_int_equal(ic_store_term_id(txn, &t[0], false, &a), 0);
        assert_int_equal(ic_store_term_id(txn, &t[1], false, &b), 0);
        assert_int_equal(ic_store_term_id(txn, &t[2], false, &c), 0);
    }
    ic_store_txn_abort(txn);
    assert_int_equal(bucket(a), bucket(b));
    assert_int_equal(bucket(b), bucket(c));
    check_edges(f, false);
}

static void test_match_edges_probe(void **state)
{
    struct tu_fx *f = *state;

    /* many clouds with values: the few "edge" clouds are probed */
    load_edge_catalog(f, 600);
    check_edges(f, true);
    check_edges(f, false);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_numbers, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_order_datetimes, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_order_invalid_forms, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(regress_order_impossible_dates,
                                        tu_fx_setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_order_bucket_full, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_match_edges_scan, tu_fx_setup,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_match_edges_probe, tu_fx_setup,
                                        tu_fx_teardown),
    };

    return tu_main(argc, argv, "order", tests, IC_ARRAY_LEN(tests));
}
