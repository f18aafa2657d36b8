/*
 * gen-catalog: synthetic Intercloud catalog generator for the benchmarks.
 *
 *     gen-catalog N [SEED] > catalog.nt
 *
 * Writes the 32 country individuals, then N clouds, as N-Triples on
 * standard output. The output depends only on N and SEED (default 1): the
 * generator uses its own splitmix64 PRNG and draws the fields of each cloud
 * in a fixed order, so cloud i is the same for every N > i.
 *
 * Distributions are skewed so that the seed paper's constraint query
 * (availability >= 99.999, replicationFactor >= 5, a country labelled
 * JAPAN, replication method AMQP, access protocol NFS) matches roughly
 * 0.03 % of the clouds:
 *
 *     availability >= 99.999   15 %
 *     replicationFactor >= 5   30 %
 *     JP among the countries   ~8.5 %
 *     method AMQP              25 %
 *     NFS among the protocols  ~35 %
 *
 * Build (libc only):
 *
 *     cc -std=c11 -O2 -o gen-catalog gen-catalog.c
 *
 * Everything is plain ASCII, so no literal needs escaping. The output goes
 * through one large buffer handed to fwrite; the hot path never calls
 * printf.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IC "http://www.csp/resOntology#"
#define ICC "http://www.csp/resOntology/country/"
#define XSD "http://www.w3.org/2001/XMLSchema#"

#define P_TYPE "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
#define P_LABEL "<http://www.w3.org/2000/01/rdf-schema#label>"
#define P_IC(name) "<" IC name ">"

#define END_DECIMAL "\"^^<" XSD "decimal> .\n"
#define END_INTEGER "\"^^<" XSD "integer> .\n"
#define END_DATETIME "\"^^<" XSD "dateTime> .\n"
#define END_STRING "\" .\n"

#define OUT_SIZE (4u << 20)
#define OUT_SLACK 4096u /* far more than one line */

#define MAX_COUNTRIES 3
#define MAX_ACCESS 2

struct choice {
    const char *s;
    unsigned w;
};

struct country {
    const char *code;
    const char *label;
    unsigned w;
};

static const struct country countries[] = {
    {"JP", "JAPAN", 50},
    {"US", "UNITED STATES", 120},
    {"DE", "GERMANY", 80},
    {"FR", "FRANCE", 25},
    {"GB", "UNITED KINGDOM", 65},
    {"IE", "IRELAND", 25},
    {"NL", "NETHERLANDS", 25},
    {"SE", "SWEDEN", 25},
    {"FI", "FINLAND", 25},
    {"NO", "NORWAY", 25},
    {"DK", "DENMARK", 25},
    {"CH", "SWITZERLAND", 25},
    {"AT", "AUSTRIA", 25},
    {"IT", "ITALY", 25},
    {"ES", "SPAIN", 25},
    {"PT", "PORTUGAL", 25},
    {"PL", "POLAND", 25},
    {"CZ", "CZECHIA", 25},
    {"CA", "CANADA", 25},
    {"BR", "BRAZIL", 25},
    {"MX", "MEXICO", 25},
    {"AU", "AUSTRALIA", 25},
    {"NZ", "NEW ZEALAND", 25},
    {"SG", "SINGAPORE", 25},
    {"KR", "SOUTH KOREA", 25},
    {"IN", "INDIA", 25},
    {"CN", "CHINA", 25},
    {"HK", "HONG KONG", 25},
    {"TW", "TAIWAN", 25},
    {"ZA", "SOUTH AFRICA", 25},
    {"AE", "UNITED ARAB EMIRATES", 25},
    {"IL", "ISRAEL", 25},
};

#define N_COUNTRIES (sizeof(countries) / sizeof(countries[0]))

static const struct choice availabilities[] = {
    {"99.0", 10},  {"99.5", 15},   {"99.9", 25},   {"99.95", 20},
    {"99.99", 15}, {"99.999", 10}, {"99.9999", 5},
};

/* Index i is replication factor i + 1; factors >= 5 weigh 30 in 100. */
static const unsigned replication_weights[] = {20, 20, 18, 12, 10, 7, 6, 4, 3};

static const struct choice n_countries_weights[] = {
    {"1", 45},
    {"2", 35},
    {"3", 20},
};

static const struct choice methods[] = {
    {"AMQP", 25}, {"MQTT", 20}, {"Kafka", 25}, {"rsync", 15}, {"DRBD", 15},
};

static const struct choice protocols[] = {
    {"UDT", 30},
    {"TCP", 45},
    {"QUIC", 25},
};

static const struct choice n_access_weights[] = {
    {"1", 70},
    {"2", 30},
};

static const struct choice access_protocols[] = {
    {"NFS", 27}, {"S3", 33}, {"iSCSI", 15}, {"SMB", 13}, {"CephFS", 12},
};

static const struct choice currencies[] = {
    {"USD", 40},
    {"EUR", 30},
    {"JPY", 15},
    {"GBP", 15},
};

/* Ten region families of four zones each: 40 regions. */
static const struct {
    const char *prefix;
    const char *jurisdiction;
} regions[] = {
    {"eu-west-", "EU"},        {"eu-central-", "EU"}, {"eu-north-", "EU"},
    {"us-east-", "US"},        {"us-west-", "US"},    {"ap-northeast-", "APAC"},
    {"ap-southeast-", "APAC"}, {"ap-south-", "APAC"}, {"sa-east-", "LATAM"},
    {"me-south-", "MEA"},
};

#define N_REGIONS (sizeof(regions) / sizeof(regions[0]))
#define ZONES_PER_REGION 4u

static const unsigned month_days[12] = {31, 28, 31, 30, 31, 30,
                                        31, 31, 30, 31, 30, 31};

/* ---- PRNG ---------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n < 2^32, by multiply-shift (no modulo bias worth
 * mentioning at these sizes). */
static unsigned rng_below(unsigned n)
{
    return (unsigned)(((rng_next() >> 32) * n) >> 32);
}

static size_t pick_weighted(const unsigned *w, size_t n, unsigned total)
{
    unsigned r = rng_below(total);
    size_t i;

    for (i = 0; i + 1 < n; i++) {
        if (r < w[i])
            return i;
        r -= w[i];
    }
    return n - 1;
}

static size_t pick_choice(const struct choice *c, size_t n)
{
    unsigned total = 0;
    unsigned r;
    size_t i;

    for (i = 0; i < n; i++)
        total += c[i].w;
    r = rng_below(total);
    for (i = 0; i + 1 < n; i++) {
        if (r < c[i].w)
            return i;
        r -= c[i].w;
    }
    return n - 1;
}

#define PICK(table) pick_choice(table, sizeof(table) / sizeof(table[0]))

static size_t pick_country(void)
{
    static unsigned w[N_COUNTRIES];
    static unsigned total;
    size_t i;

    if (total == 0) {
        for (i = 0; i < N_COUNTRIES; i++) {
            w[i] = countries[i].w;
            total += w[i];
        }
    }
    return pick_weighted(w, N_COUNTRIES, total);
}

/* ---- output -------------------------------------------------------- */

static char out_buf[OUT_SIZE];
static size_t out_len;
static uint64_t n_triples;

static void out_flush(void)
{
    if (out_len > 0 && fwrite(out_buf, 1, out_len, stdout) != out_len) {
        fprintf(stderr, "gen-catalog: write: %s\n", strerror(errno));
        exit(1);
    }
    out_len = 0;
}

static void put_mem(const char *s, size_t n)
{
    memcpy(out_buf + out_len, s, n);
    out_len += n;
}

static void put_str(const char *s)
{
    put_mem(s, strlen(s));
}

/* String constants: length known at compile time. */
#define PUT(lit) put_mem(lit, sizeof(lit) - 1)

static void put_u64(uint64_t v)
{
    char tmp[24];
    size_t n = sizeof(tmp);

    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put_mem(tmp + n, sizeof(tmp) - n);
}

/* Zero-padded to `width` digits. */
static void put_padded(unsigned v, unsigned width)
{
    char tmp[8];
    unsigned i;

    for (i = width; i > 0; i--) {
        tmp[i - 1] = (char)('0' + v % 10);
        v /= 10;
    }
    put_mem(tmp, width);
}

/* Start a line: subject, space, predicate, space. Flushes first if the
 * buffer could not hold a whole line. */
static void
line_begin(const char *subj, size_t subj_len, const char *pred, size_t pred_len)
{
    if (out_len > OUT_SIZE - OUT_SLACK)
        out_flush();
    put_mem(subj, subj_len);
    put_mem(" ", 1);
    put_mem(pred, pred_len);
    put_mem(" ", 1);
    n_triples++;
}

#define LINE(subj, subj_len, pred) \
    line_begin(subj, subj_len, pred, sizeof(pred) - 1)

/* ---- catalog ------------------------------------------------------- */

static void write_countries(void)
{
    char subj[128];
    size_t i;
    size_t n;

    for (i = 0; i < N_COUNTRIES; i++) {
        n = (size_t)snprintf(subj, sizeof(subj), "<" ICC "%s>",
                             countries[i].code);
        LINE(subj, n, P_TYPE);
        PUT(P_IC("Country") " .\n");
        LINE(subj, n, P_IC("alpha2"));
        PUT("\"");
        put_str(countries[i].code);
        PUT(END_STRING);
        LINE(subj, n, P_LABEL);
        PUT("\"");
        put_str(countries[i].label);
        PUT(END_STRING);
    }
}

/* Integer in [lo, lo << (steps - 1)], roughly log-uniform: an octave
 * [lo << e, lo << (e + 1)) is drawn first, then a value inside it; the
 * last octave is only its lower bound, which is the maximum. */
static uint64_t log_uniform(unsigned lo, unsigned steps)
{
    unsigned e = rng_below(steps);
    uint64_t v = (uint64_t)lo << e;

    if (e + 1 < steps)
        v += rng_below((unsigned)v);
    return v;
}

static int contains(const size_t *a, size_t n, size_t v)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (a[i] == v)
            return 1;
    return 0;
}

static void write_countries_of(const char *subj, size_t n)
{
    size_t picked[MAX_COUNTRIES];
    size_t k = PICK(n_countries_weights) + 1;
    size_t i;

    for (i = 0; i < k; i++) {
        do
            picked[i] = pick_country();
        while (contains(picked, i, picked[i]));
        LINE(subj, n, P_IC("country"));
        PUT("<" ICC);
        put_str(countries[picked[i]].code);
        PUT("> .\n");
    }
}

static void write_access_of(const char *subj, size_t n)
{
    size_t picked[MAX_ACCESS];
    size_t k = PICK(n_access_weights) + 1;
    size_t i;

    for (i = 0; i < k; i++) {
        do
            picked[i] = PICK(access_protocols);
        while (contains(picked, i, picked[i]));
        LINE(subj, n, P_IC("storageAccessProtocol"));
        PUT("\"");
        put_str(access_protocols[picked[i]].s);
        PUT(END_STRING);
    }
}

static void write_updated(const char *subj, size_t n)
{
    unsigned day = rng_below(365);
    unsigned month = 0;

    while (day >= month_days[month])
        day -= month_days[month++];
    LINE(subj, n, P_IC("updated"));
    PUT("\"2026-");
    put_padded(month + 1, 2);
    PUT("-");
    put_padded(day + 1, 2);
    PUT("T");
    put_padded(rng_below(24), 2);
    PUT(":");
    put_padded(rng_below(60), 2);
    PUT(":");
    put_padded(rng_below(60), 2);
    PUT("Z" END_DATETIME);
}

static void write_cloud(uint64_t i)
{
    char subj[64];
    size_t n;
    size_t region;
    unsigned price;

    n = (size_t)snprintf(subj, sizeof(subj), "<xmpp:c%llu@bench.example>",
                         (unsigned long long)i);

    LINE(subj, n, P_TYPE);
    PUT(P_IC("Cloud") " .\n");
    LINE(subj, n, P_IC("jid"));
    PUT("\"c");
    put_u64(i);
    PUT("@bench.example" END_STRING);
    LINE(subj, n, P_LABEL);
    PUT("\"Cloud ");
    put_u64(i);
    PUT(END_STRING);

    LINE(subj, n, P_IC("availability"));
    PUT("\"");
    put_str(availabilities[PICK(availabilities)].s);
    PUT(END_DECIMAL);
    LINE(subj, n, P_IC("replicationFactor"));
    PUT("\"");
    put_u64(pick_weighted(replication_weights, 9, 100) + 1);
    PUT(END_INTEGER);

    write_countries_of(subj, n);

    region = rng_below(N_REGIONS * ZONES_PER_REGION);
    LINE(subj, n, P_IC("region"));
    PUT("\"");
    put_str(regions[region / ZONES_PER_REGION].prefix);
    put_u64(region % ZONES_PER_REGION + 1);
    PUT(END_STRING);
    LINE(subj, n, P_IC("jurisdiction"));
    PUT("\"");
    put_str(regions[region / ZONES_PER_REGION].jurisdiction);
    PUT(END_STRING);

    LINE(subj, n, P_IC("storageReplicationMethod"));
    PUT("\"");
    put_str(methods[PICK(methods)].s);
    PUT(END_STRING);
    LINE(subj, n, P_IC("storageReplicationProtocol"));
    PUT("\"");
    put_str(protocols[PICK(protocols)].s);
    PUT(END_STRING);
    write_access_of(subj, n);

    price = 50 + rng_below(1951); /* 0.0050 .. 0.2000 */
    LINE(subj, n, P_IC("price"));
    PUT("\"");
    put_u64(price / 10000);
    PUT(".");
    put_padded(price % 10000, 4);
    PUT(END_DECIMAL);
    LINE(subj, n, P_IC("currency"));
    PUT("\"");
    put_str(currencies[PICK(currencies)].s);
    PUT(END_STRING);
    LINE(subj, n, P_IC("priceUnit"));
    PUT("\"GB-month" END_STRING);

    LINE(subj, n, P_IC("cores"));
    PUT("\"");
    put_u64(log_uniform(8, 10)); /* 8 .. 4096 */
    PUT(END_INTEGER);
    LINE(subj, n, P_IC("memory"));
    PUT("\"");
    put_u64(log_uniform(16, 13)); /* 16 .. 65536 */
    PUT(END_INTEGER);
    LINE(subj, n, P_IC("storageSize"));
    PUT("\"");
    put_u64(log_uniform(1024, 14)); /* GB: 1024 .. 8388608 */
    PUT(END_INTEGER);
    LINE(subj, n, P_IC("ttl"));
    PUT("\"3600" END_INTEGER);
    write_updated(subj, n);
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = (uint64_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t n_clouds;
    uint64_t seed = 1;
    uint64_t i;

    if (argc < 2 || argc > 3 || parse_u64(argv[1], &n_clouds) != 0 ||
        (argc == 3 && parse_u64(argv[2], &seed) != 0)) {
        fprintf(stderr, "usage: gen-catalog N [SEED] > catalog.nt\n");
        return 2;
    }
    rng_state = seed;

    write_countries();
    for (i = 0; i < n_clouds; i++)
        write_cloud(i);
    out_flush();
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "gen-catalog: write: %s\n", strerror(errno));
        return 1;
    }
    fprintf(stderr, "gen-catalog: %llu clouds, %llu triples\n",
            (unsigned long long)n_clouds, (unsigned long long)n_triples);
    return 0;
}
