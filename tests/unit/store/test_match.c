/*
 * test_match.c - the constraint matcher on the sample catalog
 * (ontology/constraints.ttl, intercloud.ttl, sample-catalog.ttl loaded as
 * `icrootctl load` does), and against a brute-force oracle on a generated
 * catalog large enough to take the matcher's probing path.
 *
 * Expected sets come from sample-catalog.ttl:
 *
 *   cloud  avail    rf  countries   repl   access        price  updated
 *   1      99.99    5   JP US       AMQP   NFS S3        0.021  01-12 08:00
 *   2      99.999   6   JP SG       AMQP   NFS iSCSI     0.025  01-15 09:30
 *   3      99.9995  3   JP DE       AMQP   NFS           0.030  01-10 12:00
 *   4      99.9999  5   US CA       AMQP   NFS S3        0.019  01-14 17:45
 *   5      99.9999  7   JP KR AU    AMQP   NFS S3        2.80   01-16 03:15
 *   6      99.999   5   JP          MQTT   NFS           0.028  01-11 06:00
 *   7      99.9999  6   JP HK       AMQP   S3 iSCSI      0.018  01-13 22:10
 *   8      99.9     2   FR          Kafka  SMB           0.015  2025-12-20
 *
 *   jurisdiction: 1 JP,US  2 JP  3 EU,JP  4 US  5 JP,KR,AU  6 JP  7 JP,HK
 *   8 EU; currency: 3 and 8 EUR, 5 JPY, the rest USD.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ic_node.h"
#include "test_util.h"

#define ALL "cloud1,cloud2,cloud3,cloud4,cloud5,cloud6,cloud7,cloud8"

static void
one(struct tu_fx *f, const char *attr, const char *value, const char *expected)
{
    struct ic_constraint c = {attr, value};
    char err[256] = "";
    int rc;
    char *got = tu_match(f->st, &c, 1, &rc, err);

    if (rc != 0)
        fail_msg("%s=%s: error %d %s", attr, value, rc, err);
    if (strcmp(got, expected) != 0)
        fail_msg("%s=%s: got \"%s\", expected \"%s\"", attr, value, got,
                 expected);
    ic_free(got);
}

/* Expects error RC with a message holding NEEDLE1 and NEEDLE2. */
static void fails(struct tu_fx *f,
                  const struct ic_constraint *c,
                  size_t n,
                  int rc_want,
                  const char *needle1,
                  const char *needle2)
{
    char err[256] = "";
    int rc;
    char *got = tu_match(f->st, c, n, &rc, err);

    if (rc != rc_want)
        fail_msg("expected error %d, got %d (%s) \"%s\"", rc_want, rc, err,
                 got ? got : "");
    assert_null(got);
    if (strstr(err, needle1) == NULL || strstr(err, needle2) == NULL)
        fail_msg("error \"%s\" should name '%s' and '%s'", err, needle1,
                 needle2);
}

static void test_seed_query(void **state)
{
    struct tu_fx *f = *state;
    struct ic_constraint c[5];

    tu_assert_match(f->st, tu_seed_query, 5, "cloud2,cloud5");
    /* the correct spelling, and white space around values */
    memcpy(c, tu_seed_query, sizeof c);
    c[0].attribute = "availabilityQuantity";
    tu_assert_match(f->st, c, 5, "cloud2,cloud5");
    c[0].attribute = "\t availabilityQuantity\r\n";
    c[0].value = " 99.999\n";
    c[1].value = "\n  5  ";
    c[2].value = " JAPAN ";
    c[3].value = "\tAMQP";
    c[4].value = "NFS\n        ";
    tu_assert_match(f->st, c, 5, "cloud2,cloud5");
    /* order does not matter */
    for (int r = 1; r < 5; r++) {
        struct ic_constraint rot[5];
        for (int i = 0; i < 5; i++)
            rot[i] = tu_seed_query[(i + r) % 5];
        tu_assert_match(f->st, rot, 5, "cloud2,cloud5");
    }
    /* a constraint twice */
    {
        struct ic_constraint twice[6];
        memcpy(twice, tu_seed_query, sizeof c);
        twice[5] = tu_seed_query[2];
        tu_assert_match(f->st, twice, 6, "cloud2,cloud5");
    }
}

static const char *const single[5] = {
    "cloud2,cloud3,cloud4,cloud5,cloud6,cloud7", /* availability */
    "cloud1,cloud2,cloud4,cloud5,cloud6,cloud7", /* replicationFactor */
    "cloud1,cloud2,cloud3,cloud5,cloud6,cloud7", /* tierCountries */
    "cloud1,cloud2,cloud3,cloud4,cloud5,cloud7", /* replication method */
    "cloud1,cloud2,cloud3,cloud4,cloud5,cloud6", /* storage access */
};

/* Dropping constraint i lets in the one cloud that misses only it. */
static const char *const dropped[5] = {
    "cloud1,cloud2,cloud5", "cloud2,cloud3,cloud5", "cloud2,cloud4,cloud5",
    "cloud2,cloud5,cloud6", "cloud2,cloud5,cloud7",
};

static void test_single_constraints(void **state)
{
    struct tu_fx *f = *state;

    for (int i = 0; i < 5; i++)
        tu_assert_match(f->st, &tu_seed_query[i], 1, single[i]);
}

static void test_drop_one(void **state)
{
    struct tu_fx *f = *state;

    for (int i = 0; i < 5; i++) {
        struct ic_constraint c[4];
        int n = 0;
        for (int j = 0; j < 5; j++)
            if (j != i)
                c[n++] = tu_seed_query[j];
        tu_assert_match(f->st, c, 4, dropped[i]);
    }
}

static void test_one_of(void **state)
{
    struct tu_fx *f = *state;

    one(f, "tierCountries", "US, JAPAN",
        "cloud1,cloud2,cloud3,cloud4,cloud5,cloud6,cloud7");
    one(f, "tierCountries", "US,CA", "cloud1,cloud4");
    one(f, "tierCountries", "CANADA", "cloud4");
    one(f, "tierCountries", "FRANCE, Australia", "cloud5,cloud8");
    one(f, "tierCountries", "JP, JAPAN,Japan",
        "cloud1,cloud2,cloud3,cloud5,"
        "cloud6,cloud7");
    one(f, "tierCountries", "GB", ""); /* a country nobody serves from */
    one(f, "jurisdiction", "EU,APAC", "cloud3,cloud8");
    one(f, "jurisdiction", " KR , HK ", "cloud5,cloud7");
    one(f, "jurisdiction", "APAC", "");
    {
        struct ic_constraint c[2] = {{"tierCountries", "US, JAPAN"},
                                     {"jurisdiction", "EU,APAC"}};
        tu_assert_match(f->st, c, 2, "cloud3");
    }
}

static void test_at_most(void **state)
{
    struct tu_fx *f = *state;

    one(f, "maxPrice", "0.025", "cloud1,cloud2,cloud4,cloud7,cloud8");
    one(f, "maxPrice", "0.03",
        "cloud1,cloud2,cloud3,cloud4,cloud6,cloud7,"
        "cloud8");
    one(f, "maxPrice", "0.0299", "cloud1,cloud2,cloud4,cloud6,cloud7,cloud8");
    one(f, "maxPrice", "0.015", "cloud8");
    one(f, "maxPrice", "0.001", "");
    one(f, "maxPrice", "100", ALL);
    {
        struct ic_constraint c[2] = {{"maxPrice", "0.025"},
                                     {"currency", "USD"}};
        tu_assert_match(f->st, c, 2, "cloud1,cloud2,cloud4,cloud7");
    }
    one(f, "cores", "4096", "cloud2,cloud4,cloud5,cloud7");
    one(f, "memory", "65536", "cloud5");
    one(f, "storageSize", "2048000", "cloud4,cloud5,cloud7");
}

static void test_date_time(void **state)
{
    struct tu_fx *f = *state;

    one(f, "updatedSince", "2026-01-14T17:45:00Z", "cloud2,cloud4,cloud5");
    one(f, "updatedSince", "2026-01-15T18:30:00+09:00", "cloud2,cloud5");
    one(f, "updatedSince", "2026-01-15T04:30:00-05:00", "cloud2,cloud5");
    one(f, "updatedSince", "2026-01-15T09:30:00.001Z", "cloud5");
    one(f, "updatedSince", "2026-01-15T09:30:00", "cloud2,cloud5");
    one(f, "updatedSince", "2025-01-01T00:00:00Z", ALL);
    one(f, "updatedSince", "2026-01-01T00:00:00Z",
        "cloud1,cloud2,cloud3,cloud4,cloud5,cloud6,cloud7");
    one(f, "updatedSince", "2027-01-01T00:00:00Z", "");
}

/* Regression: a range constraint scanned first that matches nothing once
 * made match.c sort an empty vector with qsort(NULL, 0, ...), undefined
 * behaviour that -fsanitize=undefined stops on. */
static void regress_empty_range_result(void **state)
{
    struct tu_fx *f = *state;

    one(f, "maxPrice", "0.0149", "");
    one(f, "maxPrice", "-1", "");
    one(f, "updatedSince", "2027-01-01T00:00:00Z", "");
    one(f, "replicationFactor", "99", "");
    one(f, "availabilityQuantity", "99.99990000001", "");
    {
        struct ic_constraint c[2] = {{"maxPrice", "0.0149"},
                                     {"currency", "EUR"}};
        tu_assert_match(f->st, c, 2, "");
    }
}

static void test_country_code(void **state)
{
    struct tu_fx *f = *state;
    struct ic_constraint c[5];

    one(f, "tierCountries", "JP", single[2]);
    one(f, "tierCountries", "Japan", single[2]);
    one(f, "country", "JP", single[2]);
    one(f, "country", "JAPAN", single[2]);
    one(f, "country", "US", "cloud1,cloud4");
    memcpy(c, tu_seed_query, sizeof c);
    c[2].value = "JP";
    tu_assert_match(f->st, c, 5, "cloud2,cloud5");
    c[2].attribute = "country";
    tu_assert_match(f->st, c, 5, "cloud2,cloud5");
}

static void test_unknown_attribute(void **state)
{
    struct tu_fx *f = *state;
    struct ic_constraint c[6];

    {
        struct ic_constraint u = {"noSuchAttribute", "1"};
        fails(f, &u, 1, IC_EUNKNOWN, "noSuchAttribute", "noSuchAttribute");
    }
    {
        /* names are case-sensitive */
        struct ic_constraint u = {"replicationfactor", "5"};
        fails(f, &u, 1, IC_EUNKNOWN, "replicationfactor", "replicationfactor");
    }
    {
        /* a name of the map's vocabulary that is no attribute name */
        struct ic_constraint u = {"availability", "99"};
        fails(f, &u, 1, IC_EUNKNOWN, "availability", "availability");
    }
    /* after good constraints */
    memcpy(c, tu_seed_query, 5 * sizeof *c);
    c[5].attribute = "  colour\n";
    c[5].value = "blue";
    fails(f, c, 6, IC_EUNKNOWN, "colour", "colour");
}

static void test_bad_values(void **state)
{
    static const struct {
        const char *attr, *value;
    } bad[] = {
        {"replicationFactor", "abc"},
        {"replicationFactor", "5.5"},
        {"replicationFactor", "5e0"},
        {"availabilityQuantity", "99.999%"},
        {"availabilityQuantity", "high"},
        {"maxPrice", "$1"},
        {"updatedSince", "2026-13-01T00:00:00Z"},
        {"updatedSince", "2026-01-15"},
        {"updatedSince", "yesterday"},
        {"tierCountries", "ATLANTIS"},
        {"tierCountries", "JAPAN, ATLANTIS"},
        {"tierCountries", "japan"},
        {"country", "ATLANTIS"},
    };
    struct tu_fx *f = *state;

    for (size_t i = 0; i < IC_ARRAY_LEN(bad); i++) {
        struct ic_constraint c[2] = {{bad[i].attr, bad[i].value},
                                     {"replicationFactor", "1"}};
        const char *v = strrchr(bad[i].value, ' ');
        v = v ? v + 1 : bad[i].value;
        fails(f, c, 1, IC_EVALUE, bad[i].attr, v);
        fails(f, c, 2, IC_EVALUE, bad[i].attr, v);
    }
}

static void test_value_nobody_has(void **state)
{
    struct tu_fx *f = *state;
    struct ic_constraint c[5];

    one(f, "StorageReplicationMethod", "Carrier pigeon", "");
    one(f, "InterCloudStorageAccess", "nfs", ""); /* case-sensitive */
    one(f, "region", "mars-north", "");
    one(f, "currency", "XXX", "");
    memcpy(c, tu_seed_query, sizeof c);
    c[4].value = "WebDAV";
    tu_assert_match(f->st, c, 5, "");
}

static void test_no_constraints(void **state)
{
    struct tu_fx *f = *state;

    tu_assert_match(f->st, NULL, 0, ALL);
}

static void test_sorted_by_name(void **state)
{
    struct tu_fx *f = *state;
    struct ic_load_result res;
    static const char ttl[] =
        "@prefix ic: <http://www.csp/resOntology#> .\n"
        "<xmpp:zeta@intercloudexchg.test> a ic:Cloud ; ic:region \"z\" .\n"
        "<xmpp:alpha@intercloudexchg.test/res> a ic:Cloud ; "
        "ic:region \"z\" .\n"
        "<xmpp:Mid@other.test> a ic:Cloud ; ic:region \"z\" .\n"
        "<xmpp:cloud10@intercloudexchg.test> a ic:Cloud ; ic:region \"z\" .\n"
        "<http://ex/notxmpp> a ic:Cloud ; ic:jid \"beta@x.test\" ;\n"
        "    ic:region \"z\" .\n";

    assert_int_equal(
        tu_load_text(f->st, ttl, "urn:more", IC_LOAD_BY_SUBJECT, true, &res),
        0);
    tu_assert_match(f->st, NULL, 0,
                    "Mid,alpha,beta,cloud1,cloud10,cloud2,cloud3,cloud4,"
                    "cloud5,cloud6,cloud7,cloud8,zeta");
    one(f, "region", "z", "Mid,alpha,beta,cloud10,zeta");
    /* ic:Cloud is required: a subject with the property but no type */
    assert_int_equal(tu_load_text(f->st,
                                  "@prefix ic: <http://www.csp/resOntology#>"
                                  " .\n<xmpp:untyped@t> ic:region \"z\" .\n",
                                  "urn:more2", IC_LOAD_BY_SUBJECT, true, &res),
                     0);
    one(f, "region", "z", "Mid,alpha,beta,cloud10,zeta");
}

#define CLOUD2_NO_NFS                                                          \
    "@prefix ic: <http://www.csp/resOntology#> .\n"                            \
    "@prefix icc: <http://www.csp/resOntology/country/> .\n"                   \
    "<" TU_CLOUD2 "> a ic:Cloud, ic:PublicCloud ;\n"                           \
    "    ic:availability 99.999 ; ic:replicationFactor 6 ;\n"                  \
    "    ic:country icc:JP, icc:SG ; ic:storageReplicationMethod \"AMQP\" ;\n" \
    "    ic:storageAccessProtocol \"iSCSI\" .\n"

static void test_publish_changed_cloud2(void **state)
{
    struct tu_fx *f = *state;
    struct ic_load_result res;
    char *d;

    assert_int_equal(tu_load_text(f->st, CLOUD2_NO_NFS, TU_CLOUD2,
                                  IC_LOAD_ONE_GRAPH, true, &res),
                     0);
    tu_assert_match(f->st, tu_seed_query, 5, "cloud5");
    one(f, "InterCloudStorageAccess", "NFS",
        "cloud1,cloud3,cloud4,cloud5,cloud6");
    one(f, "InterCloudStorageAccess", "iSCSI", "cloud2,cloud7");
    /* the old description is gone, offerings included */
    d = tu_dump(f->st, TU_CLOUD2, IC_RDF_NQUADS);
    assert_null(strstr(d, "storage-pool"));
    assert_null(strstr(d, "jp-west"));
    ic_free(d);
    one(f, "region", "jp-west", "");
    /* publishing the original again brings cloud2 back */
    tu_load(f->st, TU_ONTOLOGY "/sample-catalog.ttl");
    tu_assert_match(f->st, tu_seed_query, 5, "cloud2,cloud5");
    /* withdrawing it (an empty graph) removes it */
    {
        struct ic_txn *txn;
        assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
        assert_int_equal(ic_store_graph_clear(txn, TU_CLOUD2), 0);
        assert_int_equal(ic_store_txn_commit(txn), 0);
    }
    tu_assert_match(f->st, tu_seed_query, 5, "cloud5");
    tu_assert_match(f->st, NULL, 0,
                    "cloud1,cloud3,cloud4,cloud5,cloud6,cloud7,cloud8");
}

/* A generated catalog checked against brute force. */

#define NGEN 1200

static const char *const g_avail[] = {
    "99.9",
    "99.99",
    "99.999",
    "99.9990",
    "99.99900000000001",
    "99.99899999999999",
    "99.9999",
    "100",
    "98",
};
static const char *const g_country[][2] = {
    {"JP", "JAPAN"},  {"US", "UNITED STATES"}, {"DE", "GERMANY"},
    {"FR", "FRANCE"}, {"SG", "SINGAPORE"},
};
static const char *const g_method[] = {"AMQP", "MQTT", "Kafka"};
static const char *const g_access[] = {"NFS", "S3", "iSCSI", "SMB"};

struct gen_cloud {
    int avail, rf, method, day;
    unsigned countries, access; /* bit sets */
    int price_milli;
};

static void gen_catalog(struct tu_fx *f, struct gen_cloud *c, uint64_t *seed)
{
    size_t cap = (size_t)NGEN * 600, len = 0;
    char *ttl = ic_malloc(cap);
    struct ic_load_result res;

    len += (size_t)snprintf(ttl, cap,
                            "@prefix ic: <http://www.csp/resOntology#> .\n"
                            "@prefix icc: "
                            "<http://www.csp/resOntology/country/> .\n"
                            "@prefix xsd: "
                            "<http://www.w3.org/2001/XMLSchema#> .\n");
    for (int i = 0; i < NGEN; i++) {
        struct gen_cloud *g = &c[i];
        g->avail = (int)(tu_rand(seed) % IC_ARRAY_LEN(g_avail));
        g->rf = (int)(tu_rand(seed) % 9);
        g->method = (int)(tu_rand(seed) % 3);
        g->day = 1 + (int)(tu_rand(seed) % 28);
        g->countries = (unsigned)(tu_rand(seed) % 31) + 1;
        g->access = (unsigned)(tu_rand(seed) % 16);
        g->price_milli = (int)(tu_rand(seed) % 60);
        len += (size_t)snprintf(
            ttl + len, cap - len,
            "<xmpp:g%04d@gen.test> a ic:Cloud ;\n"
            "  ic:availability %s ; ic:replicationFactor %d ;\n"
            "  ic:storageReplicationMethod \"%s\" ;\n"
            "  ic:price 0.%03d ;\n"
            "  ic:updated \"2026-02-%02dT12:00:00+01:00\"^^xsd:dateTime",
            i, g_avail[g->avail], g->rf, g_method[g->method], g->price_milli,
            g->day);
        for (int k = 0; k < 5; k++)
            if (g->countries & (1u << k))
                len += (size_t)snprintf(ttl + len, cap - len,
                                        " ;\n  ic:country icc:%s",
                                        g_country[k][0]);
        for (int k = 0; k < 4; k++)
            if (g->access & (1u << k))
                len += (size_t)snprintf(ttl + len, cap - len,
                                        " ;\n  ic:storageAccessProtocol "
                                        "\"%s\"",
                                        g_access[k]);
        len += (size_t)snprintf(ttl + len, cap - len, " .\n");
        assert_true(len < cap);
    }
    assert_int_equal(
        tu_load_text(f->st, ttl, "urn:gen", IC_LOAD_BY_SUBJECT, true, &res), 0);
    ic_free(ttl);
}

struct gen_query {
    struct ic_constraint c[7];
    char buf[7][64];
    size_t n;
    /* the test's reading, -1 when absent */
    int avail, rf, method, access, day, price;
    unsigned countries;
};

static void gen_query(struct gen_query *q, uint64_t *seed)
{
    memset(q, 0, sizeof *q);
    q->avail = q->rf = q->method = q->access = q->day = q->price = -1;
    for (int k = 0; k < 7; k++) {
        char *b = q->buf[q->n];
        if (tu_rand(seed) % 2 == 0)
            continue;
        switch (k) {
        case 0:
            q->avail = (int)(tu_rand(seed) % IC_ARRAY_LEN(g_avail));
            snprintf(b, 64, "%s", g_avail[q->avail]);
            q->c[q->n].attribute = "availabilityQuanity";
            break;
        case 1:
            q->rf = (int)(tu_rand(seed) % 10);
            snprintf(b, 64, "%d", q->rf);
            q->c[q->n].attribute = "replicationFactor";
            break;
        case 2: {
            size_t l = 0;
            q->countries = (unsigned)(tu_rand(seed) % 31) + 1;
            b[0] = '\0';
            for (int j = 0; j < 5; j++)
                if (q->countries & (1u << j))
                    l += (size_t)snprintf(b + l, 64 - l, "%s%s", l ? ", " : "",
                                          g_country[j][tu_rand(seed) % 2]);
            q->c[q->n].attribute = "tierCountries";
            break;
        }
        case 3:
            q->method = (int)(tu_rand(seed) % 3);
            snprintf(b, 64, "%s", g_method[q->method]);
            q->c[q->n].attribute = "StorageReplicationMethod";
            break;
        case 4:
            q->access = (int)(tu_rand(seed) % 4);
            snprintf(b, 64, "%s", g_access[q->access]);
            q->c[q->n].attribute = "InterCloudStorageAccess";
            break;
        case 5:
            q->day = 1 + (int)(tu_rand(seed) % 28);
            /* the catalog's 12:00+01:00 is 11:00Z */
            snprintf(b, 64, "2026-02-%02dT11:00:00Z", q->day);
            q->c[q->n].attribute = "updatedSince";
            break;
        default:
            q->price = (int)(tu_rand(seed) % 61);
            snprintf(b, 64, "0.%03d", q->price);
            q->c[q->n].attribute = "maxPrice";
            break;
        }
        q->c[q->n].value = b;
        q->n++;
    }
}

static bool gen_matches(const struct gen_cloud *g, const struct gen_query *q)
{
    if (q->avail >= 0 &&
        strtold(g_avail[g->avail], NULL) < strtold(g_avail[q->avail], NULL))
        return false;
    if (q->rf >= 0 && g->rf < q->rf)
        return false;
    if (q->countries && (g->countries & q->countries) == 0)
        return false;
    if (q->method >= 0 && g->method != q->method)
        return false;
    if (q->access >= 0 && !(g->access & (1u << q->access)))
        return false;
    if (q->day >= 0 && g->day < q->day)
        return false;
    if (q->price >= 0 && g->price_milli > q->price)
        return false;
    return true;
}

static void test_generated_catalog(void **state)
{
    struct tu_fx *f = *state;
    static struct gen_cloud clouds[NGEN];
    static char want[NGEN * 8 + 64];
    uint64_t seed = 0xC0FFEE;
    int nonempty = 0;

    gen_catalog(f, clouds, &seed);
    for (int t = 0; t < 150; t++) {
        struct gen_query q;
        size_t len = 0;
        char err[256] = "";
        char *got;
        int rc;

        gen_query(&q, &seed);
        if (q.n == 0)
            continue;
        for (int i = 0; i < NGEN; i++)
            if (gen_matches(&clouds[i], &q))
                len += (size_t)snprintf(want + len, sizeof want - len,
                                        "%sg%04d", len ? "," : "", i);
        want[len] = '\0';
        got = tu_match(f->st, q.c, q.n, &rc, err);
        if (rc != 0)
            fail_msg("query %d: error %d %s", t, rc, err);
        {
            /* the sample clouds (cloudN) match some queries too: keep
             * only the generated ones (gNNNN) */
            char *w = got, *r = got;
            while (*r != '\0') {
                char *e = strchr(r, ',');
                size_t l = e ? (size_t)(e - r) : strlen(r);
                if (r[0] == 'g') {
                    if (w != got)
                        *w++ = ',';
                    memmove(w, r, l);
                    w += l;
                }
                r += l + (e ? 1 : 0);
            }
            *w = '\0';
        }
        if (strcmp(got, want) != 0) {
            char qs[512];
            size_t ql = 0;
            for (size_t i = 0; i < q.n; i++)
                ql += (size_t)snprintf(qs + ql, sizeof qs - ql, "%s=%s; ",
                                       q.c[i].attribute, q.c[i].value);
            fail_msg("query %d (%s)\n got  %.300s\n want %.300s", t, qs, got,
                     want);
        }
        nonempty++;
        ic_free(got);
    }
    assert_true(nonempty > 20);
}

/* What ic_store_attr_statements wrote, as triples about <urn:s>. */
struct capture_out {
    struct ic_store_terms w;
    struct ic_term s;
    unsigned n;
};

static int capture(void *data, const struct ic_term *p, const struct ic_term *o)
{
    struct capture_out *c = data;

    c->n++;
    return ic_store_terms_put(&c->w, &c->s, p, o);
}

/* The publish side read only (what a node checks before a <resources>
 * publish goes through Raft): for every pair, the statements are exactly
 * those ic_store_attr_terms creates in a write transaction, nothing is
 * written, and a bad pair fails the same way. */
static void test_attr_statements(void **state)
{
    static const struct {
        const char *attr, *value;
        int rc;
    } pairs[] = {
        {"replicationFactor", " 5 ", 0},
        {"availabilityQuantity", "99.999", 0},
        {"tierCountries", "JAPAN, US", 0},
        {"InterCloudStorageAccess", "NFS", 0},
        {"maxPrice", "0.021", 0},
        {"region", "eu-central \"x\"\n", 0},
        {"noSuchAttribute", "1", IC_EUNKNOWN},
        {"replicationFactor", "5.5", IC_EVALUE},
        {"tierCountries", "JAPAN, ATLANTIS", IC_EVALUE},
    };
    static const char urn_s[] = "\1\0\5urn:s"; /* an IRI, 5 bytes, alone */
    struct tu_fx *f = *state;
    struct ic_store_stats before, after;

    tu_stats(f->st, &before);
    for (size_t i = 0; i < IC_ARRAY_LEN(pairs); i++) {
        struct capture_out c = {{0}, ic_term_iri("urn:s"), 0};
        struct ic_store_terms rw = {0};
        char err1[256] = "", err2[256] = "";
        struct ic_txn *t;
        uint64_t ids[16], p;
        struct ic_store_ids_out out = {ids, 0, IC_ARRAY_LEN(ids)};
        int rc1, rc2;

        assert_int_equal(ic_store_txn_begin(f->st, false, &t), 0);
        rc1 = ic_store_attr_statements(t, pairs[i].attr, pairs[i].value,
                                       capture, &c, err1, sizeof err1);
        ic_store_txn_abort(t);

        assert_int_equal(ic_store_txn_begin(f->st, true, &t), 0);
        rc2 = ic_store_attr_terms(t, pairs[i].attr, pairs[i].value, &p, &out,
                                  err2, sizeof err2);
        if (rc2 == 0) {
            struct ic_term s = ic_term_iri("urn:s"), pt, ot;
            char pb[64], ob[64];
            assert_int_equal(ic_store_term_get(t, p, &pt, pb), 0);
            for (size_t k = 0; k < out.n; k++) {
                assert_int_equal(ic_store_term_get(t, ids[k], &ot, ob), 0);
                assert_int_equal(ic_store_terms_put(&rw, &s, &pt, &ot), 0);
            }
        }
        ic_store_txn_abort(t);

        assert_int_equal(rc1, pairs[i].rc);
        assert_int_equal(rc2, pairs[i].rc);
        assert_int_equal(ic_store_terms_end(&c.w), 0);
        assert_int_equal(ic_store_terms_end(&rw), 0);
        if (rc1 == 0) {
            assert_true(c.n >= 1);
            assert_int_equal(c.w.len, rw.len);
            assert_memory_equal(c.w.buf, rw.buf, rw.len);
            bool found = false;
            for (size_t k = 0; k + sizeof urn_s - 1 <= c.w.len; k++)
                found |= memcmp(c.w.buf + k, urn_s, sizeof urn_s - 1) == 0;
            assert_true(found);
        } else {
            assert_string_equal(err1, err2);
        }
        ic_store_terms_free(&c.w);
        ic_store_terms_free(&rw);
    }
    tu_stats(f->st, &after);
    tu_assert_stats_equal(&before, &after);
}

/* The property ic_store_attr_statements maps replicationFactor to, in T. */
static int
first_property(void *data, const struct ic_term *p, const struct ic_term *o)
{
    char *out = data;

    (void)o;
    if (out[0] == '\0')
        snprintf(out, 128, "%.*s", (int)p->len, p->value);
    return 0;
}

static void property_in(struct ic_txn *t, char out[128])
{
    char err[256];

    out[0] = '\0';
    assert_int_equal(ic_store_attr_statements(t, "replicationFactor", "5",
                                              first_property, out, err,
                                              sizeof err),
                     0);
}

static void property_now(struct ic_store *st, char out[128])
{
    struct ic_txn *t;

    assert_int_equal(ic_store_txn_begin(st, false, &t), 0);
    property_in(t, out);
    ic_store_txn_abort(t);
}

/* Moves replicationFactor's icq:property from FROM to TO in one write
 * transaction, committed or not. */
static void move_property(struct ic_store *st,
                          const char *from,
                          const char *to,
                          bool commit)
{
    struct ic_term
        s = ic_term_iri(
            "http://www.csp/resOntology/constraints#replicationFactor"),
        p = ic_term_iri("http://www.csp/resOntology/constraints#property"),
        o = ic_term_iri(from), n = ic_term_iri(to);
    uint64_t pat[4] = {0}, q[4], nid;
    struct ic_store_iter *it;
    struct ic_txn *t;

    assert_int_equal(ic_store_txn_begin(st, true, &t), 0);
    assert_int_equal(ic_store_term_id(t, &s, false, &pat[0]), 0);
    assert_int_equal(ic_store_term_id(t, &p, false, &pat[1]), 0);
    assert_int_equal(ic_store_term_id(t, &o, false, &pat[2]), 0);
    assert_int_equal(ic_store_iter_new(t, pat, &it), 0);
    assert_int_equal(ic_store_iter_next(it, q), 0);
    ic_store_iter_free(it);
    assert_int_equal(ic_store_quad_remove_ids(t, q), 0);
    assert_int_equal(ic_store_term_id(t, &n, true, &nid), 0);
    q[2] = nid;
    assert_int_equal(ic_store_quad_add_ids(t, q), 0);
    if (commit)
        assert_int_equal(ic_store_txn_commit(t), 0);
    else
        ic_store_txn_abort(t);
}

/* Attribute look-ups are kept between transactions (every publish maps
 * its pairs through them) and follow the attribute map: a committed change
 * to it is seen at once, an aborted one never, and a read transaction
 * that began before a change still sees the map of its own snapshot. */
static void test_attr_cache_follows_the_map(void **state)
{
    static const char rf[] = "http://www.csp/resOntology#replicationFactor",
                      other[] = "http://www.csp/resOntology#otherFactor";
    struct tu_fx *f = *state;
    struct ic_txn *old;
    char got[128];

    property_now(f->st, got);
    assert_string_equal(got, rf);
    property_now(f->st, got); /* from the cache */
    assert_string_equal(got, rf);

    move_property(f->st, rf, other, false);
    property_now(f->st, got);
    assert_string_equal(got, rf);

    assert_int_equal(ic_store_txn_begin(f->st, false, &old), 0);
    move_property(f->st, rf, other, true);
    property_now(f->st, got);
    assert_string_equal(got, other);
    property_in(old, got); /* its snapshot: the map before the change */
    assert_string_equal(got, rf);
    ic_store_txn_abort(old);
    property_now(f->st, got);
    assert_string_equal(got, other);

    move_property(f->st, other, rf, true);
    property_now(f->st, got);
    assert_string_equal(got, rf);
}

/* The object tierCountries=ATLANTIS maps to, in a new read transaction:
 * its IRI in OUT, or the call's failure. */
static int
country_object(void *data, const struct ic_term *p, const struct ic_term *o)
{
    char *out = data;

    (void)p;
    snprintf(out, 128, "%.*s", (int)o->len, o->value);
    return 0;
}

static int atlantis_now(struct ic_store *st, char out[128])
{
    struct ic_txn *t;
    char err[256];
    int rc;

    out[0] = '\0';
    assert_int_equal(ic_store_txn_begin(st, false, &t), 0);
    rc = ic_store_attr_statements(t, "tierCountries", "ATLANTIS",
                                  country_object, out, err, sizeof err);
    ic_store_txn_abort(t);
    return rc;
}

/* The statements (ATTRIBUTE, VALUE) maps to, in a new read transaction,
 * into C (ended). */
static void pair_statements(struct ic_store *st,
                            const char *attribute,
                            const char *value,
                            struct capture_out *c)
{
    struct ic_txn *t;
    char err[256];

    assert_int_equal(ic_store_txn_begin(st, false, &t), 0);
    assert_int_equal(ic_store_attr_statements(t, attribute, value, capture, c,
                                              err, sizeof err),
                     0);
    ic_store_txn_abort(t);
    assert_int_equal(ic_store_terms_end(&c->w), 0);
}

/* What a pair maps to is remembered across transactions while the
 * attribute map stands (pairs.c); a pair that names an individual by its
 * label follows the catalog's labels and types too, whose changes do not
 * move the attribute map. Pairs give the same statements from the table as
 * computed. */
static void test_pairs_follow_the_catalog(void **state)
{
    static const char ic[] = "@prefix ic: <http://www.csp/resOntology#> . "
                             "@prefix rdfs: "
                             "<http://www.w3.org/2000/01/rdf-schema#> . ";
    struct tu_fx *f = *state;
    struct ic_load_result res;
    char got[128], text[512];

    assert_int_equal(atlantis_now(f->st, got), IC_EVALUE);
    snprintf(text, sizeof text,
             "%s<urn:x:atlantis> a ic:Country ; rdfs:label \"ATLANTIS\" .", ic);
    assert_int_equal(
        tu_load_text(f->st, text, "urn:x:g", IC_LOAD_ONE_GRAPH, true, &res), 0);
    assert_int_equal(atlantis_now(f->st, got), 0);
    assert_string_equal(got, "urn:x:atlantis");
    assert_int_equal(atlantis_now(f->st, got), 0);
    assert_string_equal(got, "urn:x:atlantis");
    /* the label moves to another individual: same map, other answer */
    snprintf(text, sizeof text,
             "%s<urn:x:atlantis2> a ic:Country ; rdfs:label \"ATLANTIS\" .",
             ic);
    assert_int_equal(
        tu_load_text(f->st, text, "urn:x:g", IC_LOAD_ONE_GRAPH, true, &res), 0);
    assert_int_equal(atlantis_now(f->st, got), 0);
    assert_string_equal(got, "urn:x:atlantis2");
    assert_int_equal(atlantis_now(f->st, got), 0); /* kept */
    assert_string_equal(got, "urn:x:atlantis2");
    /* an unrelated write keeps it; the individual's type gone: no more */
    assert_int_equal(tu_load_text(f->st, "<urn:x:a> <urn:x:b> \"c\" .",
                                  "urn:x:other", IC_LOAD_ONE_GRAPH, true, &res),
                     0);
    assert_int_equal(atlantis_now(f->st, got), 0);
    assert_string_equal(got, "urn:x:atlantis2");
    snprintf(text, sizeof text, "%s<urn:x:atlantis2> rdfs:label \"ATLANTIS\" .",
             ic);
    assert_int_equal(
        tu_load_text(f->st, text, "urn:x:g", IC_LOAD_ONE_GRAPH, true, &res), 0);
    assert_int_equal(atlantis_now(f->st, got), IC_EVALUE);

    /* literal pairs: the second look-up (from the table) gives the same
     * statements as the first */
    static const char *const pairs[][2] = {
        {"maxPrice", "0.021"},
        {"replicationFactor", " 5 "},
        {"region", "eu-central \"x\"\n"},
    };
    for (size_t k = 0; k < IC_ARRAY_LEN(pairs); k++) {
        struct capture_out c1 = {{0}, ic_term_iri("urn:s"), 0},
                           c2 = {{0}, ic_term_iri("urn:s"), 0};
        pair_statements(f->st, pairs[k][0], pairs[k][1], &c1);
        pair_statements(f->st, pairs[k][0], pairs[k][1], &c2);
        assert_true(c1.n >= 1 && c1.n == c2.n);
        assert_int_equal(c1.w.len, c2.w.len);
        assert_memory_equal(c1.w.buf, c2.w.buf, c1.w.len);
        ic_store_terms_free(&c1.w);
        ic_store_terms_free(&c2.w);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seed_query, tu_fx_setup_ontology,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_single_constraints,
                                        tu_fx_setup_ontology, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_drop_one, tu_fx_setup_ontology,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_one_of, tu_fx_setup_ontology,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_at_most, tu_fx_setup_ontology,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_date_time, tu_fx_setup_ontology,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(regress_empty_range_result,
                                        tu_fx_setup_ontology, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_country_code, tu_fx_setup_ontology,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_attribute,
                                        tu_fx_setup_ontology, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_values, tu_fx_setup_ontology,
                                        tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_value_nobody_has,
                                        tu_fx_setup_ontology, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_no_constraints,
                                        tu_fx_setup_ontology, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_sorted_by_name,
                                        tu_fx_setup_ontology, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_publish_changed_cloud2,
                                        tu_fx_setup_ontology, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_attr_statements,
                                        tu_fx_setup_ontology, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_generated_catalog,
                                        tu_fx_setup_ontology, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_attr_cache_follows_the_map,
                                        tu_fx_setup_ontology, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_pairs_follow_the_catalog,
                                        tu_fx_setup_ontology, tu_fx_teardown),
    };

    return tu_main(argc, argv, "match", tests, IC_ARRAY_LEN(tests));
}
