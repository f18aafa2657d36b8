/*
 * report.c - `icroot-bench --compare FILE`: reads the JSON lines of a
 * benchmark run (one per case and server, as xmpp-bench.sh collects them)
 * and prints a Markdown table of both servers' figures, the ratios and the
 * issue's targets:
 *
 *   login*, ping, message   rate ratio icroot / Prosody, target >= 10x
 *   query                   icroot's query rate / icroot's ping rate,
 *                           target >= 0.5
 *   idle                    RSS per connection, target <= 12 KiB, and the
 *                           connections held
 *
 * Beside the rates it shows each server's CPU per operation (the ratio
 * that does not depend on how much of the machine the generator took) and
 * the generator's CPU share, so a reader can tell when the generator, not
 * the server, was the limit.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "bench.h"

#define MAX_ROWS 64

struct row {
    char case_name[32];
    json_t *ours, *theirs; /* icroot's and the other server's lines */
};

static double num(const json_t *o, const char *key)
{
    const json_t *v = o ? json_object_get(o, key) : NULL;

    return v ? json_number_value(v) : -1;
}

static const char *str(const json_t *o, const char *key)
{
    const json_t *v = o ? json_object_get(o, key) : NULL;

    return v && json_is_string(v) ? json_string_value(v) : "";
}

static void fmt_rate(char *buf, size_t n, double v)
{
    if (v < 0)
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%.0f/s", v);
}

static void fmt_us(char *buf, size_t n, double v)
{
    if (v < 0)
        snprintf(buf, n, "-");
    else if (v >= 1000)
        snprintf(buf, n, "%.2f ms", v / 1000);
    else
        snprintf(buf, n, "%.1f us", v);
}

/* "generator / server / other processes" CPU, in % of one core. */
/* RSS per connection: (after - before) / N, and the slope between half
 * and all of the connections (without the fixed costs of the ramp). */
static void fmt_kib(char *buf, size_t n, const json_t *o)
{
    double k = num(o, "rss_per_conn_kib");
    double m = num(o, "rss_per_conn_marginal_kib");

    if (o == NULL || k < 0)
        snprintf(buf, n, "-");
    else if (json_object_get(o, "rss_per_conn_marginal_kib") != NULL)
        snprintf(buf, n, "%.1f KiB (marginal %.1f)", k, m);
    else
        snprintf(buf, n, "%.1f KiB", k);
}

static void fmt_held(char *buf, size_t n, const json_t *o)
{
    if (o == NULL)
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%.0f of %.0f", num(o, "conns_held"), num(o, "conns"));
}

static void fmt_share(char *buf, size_t n, const json_t *o)
{
    if (o == NULL)
        snprintf(buf, n, "-");
    else if (json_object_get(o, "other_cpu_cores") != NULL)
        snprintf(buf, n, "%.0f / %.0f / %.0f", 100 * num(o, "gen_cpu_share"),
                 100 * num(o, "server_cpu_share"),
                 num(o, "other_cpu_cores") > 0 /* tick rounding: ~0 */
                     ? 100 * num(o, "other_cpu_cores")
                     : 0.0);
    else
        snprintf(buf, n, "%.0f / %.0f / ?", 100 * num(o, "gen_cpu_share"),
                 100 * num(o, "server_cpu_share"));
}

static void fmt_errors(char *buf, size_t n, const json_t *a, const json_t *b)
{
    double ea = a ? num(a, "errors") + num(a, "conn_errors") : 0;
    double eb = b ? num(b, "errors") + num(b, "conn_errors") : 0;

    snprintf(buf, n, "%.0f / %.0f", ea, eb);
}

static struct row *find(struct row *rows, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(rows[i].case_name, name) == 0)
            return &rows[i];
    if (*n == MAX_ROWS)
        return NULL;
    memset(&rows[*n], 0, sizeof rows[*n]);
    snprintf(rows[*n].case_name, sizeof rows[*n].case_name, "%s", name);
    return &rows[(*n)++];
}

static const json_t *ping_of(const struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].case_name, "ping") == 0)
            return rows[i].ours;
    return NULL;
}

static void print_rate_row(const struct row *r)
{
    char a[32], b[32], ca[32], cb[32], sh[40], shb[40], er[40], ratio[32];
    char cr[32], desc[64];
    const json_t *any = r->ours ? r->ours : r->theirs;
    double ra = num(r->ours, "rate"), rb = num(r->theirs, "rate");
    double cpa = num(r->ours, "server_cpu_us_per_op");
    double cpb = num(r->theirs, "server_cpu_us_per_op");

    if (strcmp(str(any, "scenario"), "login") == 0)
        snprintf(desc, sizeof desc, "%s, %.0f at once", str(any, "mech"),
                 num(any, "conns"));
    else
        snprintf(desc, sizeof desc, "%.0f conns, window %.0f",
                 num(any, "conns"), num(any, "window"));
    fmt_rate(a, sizeof a, ra);
    fmt_rate(b, sizeof b, rb);
    fmt_us(ca, sizeof ca, cpa);
    fmt_us(cb, sizeof cb, cpb);
    fmt_share(sh, sizeof sh, r->ours);
    fmt_share(shb, sizeof shb, r->theirs);
    fmt_errors(er, sizeof er, r->ours, r->theirs);
    snprintf(ratio, sizeof ratio, ra > 0 && rb > 0 ? "**%.1fx**" : "-",
             rb > 0 ? ra / rb : 0.0);
    snprintf(cr, sizeof cr, cpa > 0 && cpb > 0 ? "%.1fx" : "-",
             cpa > 0 ? cpb / cpa : 0.0);
    printf("| %s (%s) | %s | %s | %s | >= 10x | %s | %s | %s | %s | %s | "
           "%s |\n",
           r->case_name, desc, a, b, ratio, ca, cb, cr, sh, shb, er);
}

static void print_query_row(const struct row *r, const json_t *ping)
{
    char a[32], b[32], ca[32], sh[40], er[40], ratio[32];
    double ra = num(r->ours, "rate"), rp = num(ping, "rate");

    fmt_rate(a, sizeof a, ra);
    fmt_rate(b, sizeof b, rp);
    fmt_us(ca, sizeof ca, num(r->ours, "server_cpu_us_per_op"));
    fmt_share(sh, sizeof sh, r->ours);
    fmt_errors(er, sizeof er, r->ours, NULL);
    snprintf(ratio, sizeof ratio, ra > 0 && rp > 0 ? "**%.2f**" : "-",
             rp > 0 ? ra / rp : 0.0);
    printf("| %s (vs icroot's ping rate) | %s | (ping) %s | %s | >= 0.5 | "
           "%s | - | - | %s | - | %s |\n",
           r->case_name, a, b, ratio, ca, sh, er);
}

static void print_idle_row(const struct row *r)
{
    char a[48], b[48], ratio[32], er[40], la[48], lb[48], ha[48], hb[48];
    double ka = num(r->ours, "rss_per_conn_kib");
    double kb = num(r->theirs, "rss_per_conn_kib");

    fmt_kib(a, sizeof a, r->ours);
    fmt_kib(b, sizeof b, r->theirs);
    snprintf(ratio, sizeof ratio, ka > 0 && kb > 0 ? "**%.1fx less**" : "-",
             ka > 0 ? kb / ka : 0.0);
    fmt_rate(la, sizeof la, r->ours ? num(r->ours, "ramp_logins_per_s") : -1);
    fmt_rate(lb, sizeof lb,
             r->theirs ? num(r->theirs, "ramp_logins_per_s") : -1);
    fmt_held(ha, sizeof ha, r->ours);
    fmt_held(hb, sizeof hb, r->theirs);
    fmt_errors(er, sizeof er, r->ours, r->theirs);
    printf("| %s: RSS per idle TLS connection | %s | %s | %s | <= 12 KiB | "
           "- | - | - | - | - | %s |\n",
           r->case_name, a, b, ratio, er);
    printf("| %s: connections held | %s | %s | - | all | - | - | - | "
           "ramp-up: %s logins | %s logins | - |\n",
           r->case_name, ha, hb, la, lb);
}

static int load(const char *file, struct row *rows, size_t *n)
{
    char line[8192];
    FILE *f = fopen(file, "r");

    if (f == NULL) {
        perror(file);
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        const char *cname, *server;
        struct row *r;

        if (o == NULL)
            continue;
        cname = str(o, "case");
        if (cname[0] == '\0')
            cname = str(o, "scenario");
        server = str(o, "server");
        r = find(rows, n, cname);
        if (r == NULL) {
            json_decref(o);
            continue;
        }
        if (strcmp(server, "icroot") == 0) {
            json_decref(r->ours);
            r->ours = o;
        } else {
            json_decref(r->theirs);
            r->theirs = o;
        }
    }
    fclose(f);
    return 0;
}

int bench_compare(const char *file)
{
    struct row rows[MAX_ROWS];
    size_t n = 0;

    if (load(file, rows, &n) != 0)
        return 1;
    printf("| case | icroot | Prosody | ratio | target | icroot server "
           "CPU/op | Prosody server CPU/op | CPU/op ratio | CPU %% gen / "
           "server / other, icroot run | the same, Prosody run | errors "
           "icroot / Prosody |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | "
           "--- |\n");
    for (size_t i = 0; i < n; i++) {
        const char *scn =
            str(rows[i].ours ? rows[i].ours : rows[i].theirs, "scenario");
        if (strcmp(scn, "query") == 0)
            print_query_row(&rows[i], ping_of(rows, n));
        else if (strcmp(scn, "idle") == 0)
            print_idle_row(&rows[i]);
        else
            print_rate_row(&rows[i]);
    }
    for (size_t i = 0; i < n; i++)
        if (rows[i].ours != NULL && rows[i].theirs != NULL) {
            printf("\nTLS: icroot %s, Prosody %s.\n", str(rows[i].ours, "tls"),
                   str(rows[i].theirs, "tls"));
            break;
        }
    for (size_t i = 0; i < n; i++) {
        json_decref(rows[i].ours);
        json_decref(rows[i].theirs);
    }
    return 0;
}
