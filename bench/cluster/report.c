/*
 * report.c - `icroot-cluster-bench --compare results.jsonl`: the markdown
 * tables of docs/benchmarks-cluster.md from the JSON lines of both
 * generators. Cases are paired by name ("publish-64": server icroot and
 * server etcd, and server etcd-tls when the bench also ran etcd over TLS:
 * a row of its own, against the same icroot runs; "query-leader" and
 * "query-follower"); when a case ran
 * several times the run with the median rate stands for it and every rate
 * is listed.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define MAX_CASES 32
#define MAX_RUNS 16

int cb_compare(const char *file);

struct runs {
    json_t *r[MAX_RUNS];
    size_t n;
};

struct kase {
    char name[64];
    struct runs icroot, peer, peer_tls;
};

static double num(const json_t *o, const char *k)
{
    const json_t *v = o ? json_object_get(o, k) : NULL;

    return v != NULL ? json_number_value(v) : -1;
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = o ? json_string_value(json_object_get(o, k)) : NULL;

    return s != NULL ? s : "";
}

static int by_rate(const void *a, const void *b)
{
    double x = num(*(json_t *const *)a, "rate");
    double y = num(*(json_t *const *)b, "rate");

    return (x > y) - (x < y);
}

/* The run with the median rate (the lower one of an even count). */
static const json_t *median(struct runs *r)
{
    if (r->n == 0)
        return NULL;
    qsort(r->r, r->n, sizeof r->r[0], by_rate);
    return r->r[(r->n - 1) / 2];
}

static void fmt_lat(char *b, size_t n, const json_t *o)
{
    if (o == NULL)
        snprintf(b, n, "-");
    else
        snprintf(b, n, "%.2f / %.2f / %.2f", num(o, "p50_us") / 1e3,
                 num(o, "p99_us") / 1e3, num(o, "p999_us") / 1e3);
}

static void fmt_rate(char *b, size_t n, const json_t *o)
{
    if (o == NULL)
        snprintf(b, n, "-");
    else
        snprintf(b, n, "%.0f/s", num(o, "rate"));
}

static void fmt_all(char *b, size_t n, const struct runs *r)
{
    size_t len = 0;

    b[0] = '\0';
    for (size_t i = 0; i < r->n && len + 12 < n; i++)
        len += (size_t)snprintf(b + len, n - len, "%s%.0f", i ? ", " : "",
                                num(r->r[i], "rate"));
    if (r->n == 0)
        snprintf(b, n, "-");
}

static void fmt_err(char *b, size_t n, const json_t *o)
{
    if (o == NULL) {
        snprintf(b, n, "-");
        return;
    }
    snprintf(b, n, "%.0f", num(o, "errors"));
    if (num(o, "conn_errors") > 0 || num(o, "login_failures") > 0 ||
        num(o, "in_flight_at_end") > 0)
        snprintf(b + strlen(b), n - strlen(b),
                 " (+%.0f conn, %.0f login, %.0f "
                 "unanswered)",
                 num(o, "conn_errors"), num(o, "login_failures"),
                 num(o, "in_flight_at_end"));
}

static void fmt_cpu(char *b, size_t n, const json_t *o)
{
    if (o == NULL)
        snprintf(b, n, "-");
    else
        snprintf(b, n, "%.0f %% (%.0f us/op)", num(o, "gen_cpu_share") * 100,
                 num(o, "gen_cpu_us_per_op"));
}

static void fmt_srv(char *b, size_t n, const json_t *o)
{
    if (o == NULL || num(o, "server_cpu_cores") < 0)
        snprintf(b, n, "-");
    else
        snprintf(b, n, "%.2f (%.0f us/op)", num(o, "server_cpu_cores"),
                 num(o, "server_cpu_us_per_op"));
}

static void fmt_mem(char *b, size_t n, const json_t *o)
{
    if (o == NULL || num(o, "server_rss_mib") <= 0)
        snprintf(b, n, "-");
    else
        snprintf(b, n, "%.0f (%.0f)", num(o, "server_rss_mib"),
                 num(o, "server_hwm_mib_max"));
}

/* One row: icroot's runs of case K against PEER's (etcd, or etcd over TLS
 * when TLS is set). */
static void publish_row(struct kase *k, struct runs *peer, bool tls)
{
    const json_t *a = median(&k->icroot), *b = median(peer);
    char ra[32], rb[32], ratio[32], la[64], lb[64], ea[96], eb[96];
    char ca[48], cb[48], sa[48], sb[48], xa[128], xb[128], ma[48], mb[48];
    double n = num(a ? a : b, "clients");
    const char *where = strchr(k->name + 8, '-');

    fmt_rate(ra, sizeof ra, a);
    fmt_rate(rb, sizeof rb, b);
    snprintf(ratio, sizeof ratio, "-");
    if (a != NULL && b != NULL && num(b, "rate") > 0)
        snprintf(ratio, sizeof ratio, "**%.2fx**",
                 num(a, "rate") / num(b, "rate"));
    fmt_lat(la, sizeof la, a);
    fmt_lat(lb, sizeof lb, b);
    fmt_err(ea, sizeof ea, a);
    fmt_err(eb, sizeof eb, b);
    fmt_cpu(ca, sizeof ca, a);
    fmt_cpu(cb, sizeof cb, b);
    fmt_srv(sa, sizeof sa, a);
    fmt_srv(sb, sizeof sb, b);
    fmt_mem(ma, sizeof ma, a);
    fmt_mem(mb, sizeof mb, b);
    fmt_all(xa, sizeof xa, &k->icroot);
    fmt_all(xb, sizeof xb, peer);
    printf("| %.0f%s%s%s | %s | %s | %s | %s%s | %s | %s | %s / %s | %s / %s | "
           "%s / %s | %s / %s | %s / %s |\n",
           n, where ? ", all on the " : "", where ? where + 1 : "",
           tls ? ", etcd with TLS" : "", ra, rb, ratio,
           where || tls ? "" : ">= ",
           where || tls ? "-"
           : n <= 1     ? "1x"
                        : "2x",
           la, lb, ea, eb, ca, cb, sa, sb, ma, mb, xa, xb);
}

static void query_rows(struct kase *cases, size_t n)
{
    const json_t *lead = NULL;

    for (size_t i = 0; i < n; i++)
        if (strcmp(cases[i].name, "query-leader") == 0)
            lead = median(&cases[i].icroot);
    printf("\n| seed query on | clients | queries/s | vs leader | target | "
           "p50 / p99 / p99.9 ms | errors | generator CPU | servers' CPU "
           "(cores) | runs |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < n; i++) {
        const json_t *o;
        char r[32], l[64], e[96], c[48], s[48], x[128], ratio[32];
        if (strncmp(cases[i].name, "query-", 6) != 0)
            continue;
        o = median(&cases[i].icroot);
        fmt_rate(r, sizeof r, o);
        fmt_lat(l, sizeof l, o);
        fmt_err(e, sizeof e, o);
        fmt_cpu(c, sizeof c, o);
        fmt_srv(s, sizeof s, o);
        fmt_all(x, sizeof x, &cases[i].icroot);
        snprintf(ratio, sizeof ratio, "-");
        if (lead != NULL && o != NULL && num(lead, "rate") > 0)
            snprintf(ratio, sizeof ratio, "**%.2f**",
                     num(o, "rate") / num(lead, "rate"));
        printf("| %s (%s) | %.0f | %s | %s | >= 0.90 | %s | %s | %s | %s | "
               "%s |\n",
               cases[i].name + 6, str(o, "target"), num(o, "clients"), r, ratio,
               l, e, c, s, x);
    }
}

static struct kase *find_case(struct kase *cases, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(cases[i].name, name) == 0)
            return &cases[i];
    if (*n == MAX_CASES)
        return NULL;
    memset(&cases[*n], 0, sizeof cases[*n]);
    snprintf(cases[*n].name, sizeof cases[*n].name, "%s", name);
    return &cases[(*n)++];
}

static int load(const char *file, struct kase *cases, size_t *n)
{
    char line[16384];
    FILE *f = fopen(file, "r");

    if (f == NULL) {
        perror(file);
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        struct kase *k;
        struct runs *r;
        if (o == NULL)
            continue;
        k = find_case(cases, n, str(o, "case"));
        r = k == NULL                                   ? NULL
            : strcmp(str(o, "server"), "icroot") == 0   ? &k->icroot
            : strcmp(str(o, "server"), "etcd-tls") == 0 ? &k->peer_tls
                                                        : &k->peer;
        if (r == NULL || r->n == MAX_RUNS) {
            json_decref(o);
            continue;
        }
        r->r[r->n++] = o;
    }
    fclose(f);
    return 0;
}

int cb_compare(const char *file)
{
    static struct kase cases[MAX_CASES];
    size_t n = 0;
    const json_t *any = NULL;

    if (load(file, cases, &n) != 0)
        return 1;
    printf("| clients | icroot publishes/s | etcd puts/s | icroot/etcd | "
           "target | icroot p50 / p99 / p99.9 ms | etcd p50 / p99 / p99.9 ms "
           "| errors icroot / etcd | generator CPU icroot / etcd run | "
           "servers' CPU (cores) icroot / etcd | servers' memory MiB: RSS "
           "of all (one's peak) icroot / etcd | runs icroot / etcd |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | "
           "--- | --- |\n");
    for (size_t i = 0; i < n; i++) {
        if (strncmp(cases[i].name, "publish-", 8) != 0)
            continue;
        if (cases[i].peer.n > 0 || cases[i].peer_tls.n == 0)
            publish_row(&cases[i], &cases[i].peer, false);
        if (cases[i].peer_tls.n > 0)
            publish_row(&cases[i], &cases[i].peer_tls, true);
        if (any == NULL)
            any = median(&cases[i].icroot);
    }
    query_rows(cases, n);
    if (any != NULL)
        printf("\nPayload: %.0f bytes (the <resources> description; etcd's "
               "value is the same bytes); one publish request %.0f bytes "
               "before TLS.\n",
               num(any, "payload_bytes"), num(any, "request_bytes"));
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < cases[i].icroot.n; j++)
            json_decref(cases[i].icroot.r[j]);
        for (size_t j = 0; j < cases[i].peer.n; j++)
            json_decref(cases[i].peer.r[j]);
        for (size_t j = 0; j < cases[i].peer_tls.n; j++)
            json_decref(cases[i].peer_tls.r[j]);
    }
    return 0;
}
