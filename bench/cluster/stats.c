/*
 * stats.c - the measuring side of both generators: the latency histogram,
 * the clocks, other processes' CPU from /proc, the run's window and the
 * JSON line.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cbench.h"

static unsigned bucket_of(uint64_t v)
{
    unsigned msb, e;

    if (v < 64)
        return (unsigned)v;
    msb = 63u - (unsigned)__builtin_clzll(v);
    e = msb - 5; /* v >> e is in 32..63 */
    return 64 + (e - 1) * 32 + (unsigned)((v >> e) - 32);
}

static uint64_t value_of(unsigned b)
{
    unsigned e, m;

    if (b < 64)
        return b;
    e = (b - 64) / 32 + 1;
    m = (b - 64) % 32 + 32;
    return ((uint64_t)m << e) + ((uint64_t)1 << e) / 2;
}

void cb_hist_add(struct cb_hist *h, uint64_t ns)
{
    unsigned b = bucket_of(ns);

    h->b[b < CB_HIST_BUCKETS ? b : CB_HIST_BUCKETS - 1]++;
    h->n++;
    if (ns > h->max)
        h->max = ns;
}

uint64_t cb_hist_quantile(const struct cb_hist *h, double q)
{
    uint64_t want, seen = 0;

    if (h->n == 0)
        return 0;
    want = (uint64_t)((double)h->n * q);
    if (want >= h->n)
        want = h->n - 1;
    for (unsigned i = 0; i < CB_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > want)
            return value_of(i) < h->max ? value_of(i) : h->max;
    }
    return h->max;
}

uint64_t cb_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double cb_cpu_self(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* /proc/PID/stat: fields 14 and 15 (utime, stime) after the ')'. */
double cb_proc_cpu(int pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;
    size_t n;

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (p == NULL || sscanf(p + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                            "%lu %lu",
                            &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

int cb_proc_mem(int pid, long *rss_kb, long *hwm_kb)
{
    char path[64], line[256];
    FILE *f;
    int got = 0;

    snprintf(path, sizeof path, "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "VmRSS: %ld kB", rss_kb) == 1)
            got |= 1;
        else if (sscanf(line, "VmHWM: %ld kB", hwm_kb) == 1)
            got |= 2;
    }
    fclose(f);
    return got == 3 ? 0 : -1;
}

/* The servers' resident sets summed and the largest peak, into R. */
static void servers_mem(struct cb_run *r)
{
    r->srv_rss_kb = r->srv_hwm_kb = r->npids > 0 ? 0 : -1;
    for (int i = 0; i < r->npids; i++) {
        long rss, hwm;
        if (cb_proc_mem(r->pids[i], &rss, &hwm) != 0) {
            r->srv_rss_kb = r->srv_hwm_kb = -1;
            return;
        }
        r->srv_rss_kb += rss;
        if (hwm > r->srv_hwm_kb)
            r->srv_hwm_kb = hwm;
    }
}

double cb_host_busy(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    int n;

    if (f == NULL)
        return -1;
    n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
               &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n != 8)
        return -1;
    /* user nice system (idle) (iowait) irq softirq steal */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) /
           (double)sysconf(_SC_CLK_TCK);
}

int cb_parse_pids(const char *s, int *pids)
{
    int n = 0;

    while (*s != '\0') {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v <= 0 || n == CB_MAX_PIDS)
            return -1;
        pids[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0')
            return -1;
    }
    return n;
}

/* The servers' CPU seconds together; -1 when one is unreadable. */
static double servers_cpu(const struct cb_run *r)
{
    double sum = 0;

    if (r->npids == 0)
        return -1;
    for (int i = 0; i < r->npids; i++) {
        double c = cb_proc_cpu(r->pids[i]);
        if (c < 0)
            return -1;
        sum += c;
    }
    return sum;
}

void cb_run_start(struct cb_run *r)
{
    r->t_start = cb_now_ns();
    r->t_measure = r->t_start + (uint64_t)(r->warmup_s * 1e9);
    r->t_end = r->t_measure + (uint64_t)(r->duration_s * 1e9);
}

void cb_run_tick(struct cb_run *r)
{
    uint64_t now = cb_now_ns();

    if (r->t_start == 0 || r->stopping)
        return;
    if (!r->measuring && now >= r->t_measure) {
        r->measuring = true;
        r->t_measure = now;
        r->t_end = now + (uint64_t)(r->duration_s * 1e9);
        r->cpu0 = cb_cpu_self();
        r->srv0 = servers_cpu(r);
        r->host0 = cb_host_busy();
    } else if (r->measuring && now >= r->t_end) {
        r->measuring = false;
        r->stopping = true;
        r->t_end = now;
        r->cpu1 = cb_cpu_self();
        r->srv1 = servers_cpu(r);
        r->host1 = cb_host_busy();
        servers_mem(r);
    }
}

void cb_run_done(struct cb_run *r, uint64_t sent, bool ok)
{
    uint64_t now = cb_now_ns();

    r->all_ops += ok;
    r->all_errors += !ok;
    if (!r->measuring || now < r->t_measure)
        return;
    if (!ok) {
        r->errors++;
        return;
    }
    r->ops++;
    cb_hist_add(&r->lat, now - sent);
    if ((now - r->t_measure) / 1000000000u < CB_MAX_SECONDS)
        r->per_s[(now - r->t_measure) / 1000000000u]++;
}

void cb_run_error(struct cb_run *r, const char *fmt, ...)
{
    va_list ap;

    if (r->first_error[0] != '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(r->first_error, sizeof r->first_error, fmt, ap);
    va_end(ap);
}

void cb_json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void print_per_s(const struct cb_run *r, double win)
{
    unsigned n = (unsigned)win, lo_i = 0;
    uint64_t lo = UINT64_MAX, hi = 0;

    if (n > CB_MAX_SECONDS)
        n = CB_MAX_SECONDS;
    printf(",\"per_s\":[");
    for (unsigned i = 0; i < n; i++) {
        printf("%s%llu", i ? "," : "", (unsigned long long)r->per_s[i]);
        if (r->per_s[i] < lo) {
            lo = r->per_s[i];
            lo_i = i;
        }
        if (r->per_s[i] > hi)
            hi = r->per_s[i];
    }
    printf("]");
    if (n > 0)
        printf(",\"min_1s\":%llu,\"min_1s_at\":%u,\"max_1s\":%llu",
               (unsigned long long)lo, lo_i, (unsigned long long)hi);
}

static void print_cpu(const struct cb_run *r, double win, double ops)
{
    double cpu = r->cpu1 - r->cpu0, srv = r->srv1 - r->srv0;
    double host = r->host1 - r->host0;

    printf(",\"gen_cpu_s\":%.3f,\"gen_cpu_share\":%.3f", cpu,
           win > 0 ? cpu / win : 0.0);
    if (ops > 0)
        printf(",\"gen_cpu_us_per_op\":%.2f", cpu / ops * 1e6);
    if (r->srv0 >= 0 && r->srv1 >= 0) {
        printf(",\"server_cpu_s\":%.2f,\"server_cpu_cores\":%.3f", srv,
               win > 0 ? srv / win : 0.0);
        if (ops > 0)
            printf(",\"server_cpu_us_per_op\":%.2f", srv / ops * 1e6);
    } else {
        srv = 0;
    }
    if (r->host0 >= 0 && r->host1 >= 0 && win > 0)
        printf(",\"host_busy_cores\":%.2f,\"other_cpu_cores\":%.2f", host / win,
               (host - cpu - srv) / win);
    if (r->srv_rss_kb > 0)
        printf(",\"server_rss_mib\":%.1f,\"server_hwm_mib_max\":%.1f",
               (double)r->srv_rss_kb / 1024, (double)r->srv_hwm_kb / 1024);
}

void cb_report_print(const struct cb_run *r, const char *extra)
{
    double win = (double)(r->t_end - r->t_measure) / 1e9;
    double ops = (double)r->ops;

    if (r->t_end <= r->t_measure || r->cpu1 == 0)
        win = 0;
    printf("{\"case\":");
    cb_json_str(r->case_name);
    printf(",\"mode\":");
    cb_json_str(r->mode);
    printf(",\"server\":");
    cb_json_str(r->server);
    printf(",\"target\":");
    cb_json_str(r->target);
    printf(",\"clients\":%u,\"window\":1,\"clients_up\":%u,\"login_s\":%.2f",
           r->clients, r->clients_up, r->login_s);
    printf(",\"payload_bytes\":%zu,\"request_bytes\":%zu", r->payload_bytes,
           r->request_bytes);
    printf(",\"warmup_s\":%.1f,\"duration_s\":%.3f,\"ops\":%llu,"
           "\"rate\":%.1f",
           r->warmup_s, win, (unsigned long long)r->ops,
           win > 0 ? ops / win : 0.0);
    printf(",\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
           "\"p999_us\":%.1f,\"max_us\":%.1f",
           (double)cb_hist_quantile(&r->lat, 0.5) / 1e3,
           (double)cb_hist_quantile(&r->lat, 0.9) / 1e3,
           (double)cb_hist_quantile(&r->lat, 0.99) / 1e3,
           (double)cb_hist_quantile(&r->lat, 0.999) / 1e3,
           (double)r->lat.max / 1e3);
    printf(",\"errors\":%llu,\"conn_errors\":%llu,\"login_failures\":%llu,"
           "\"in_flight_at_end\":%u,\"all_ops\":%llu,\"all_errors\":%llu",
           (unsigned long long)r->errors, (unsigned long long)r->conn_errors,
           (unsigned long long)r->login_failures, r->in_flight_at_end,
           (unsigned long long)r->all_ops, (unsigned long long)r->all_errors);
    print_cpu(r, win, ops);
    print_per_s(r, win);
    if (extra != NULL)
        fputs(extra, stdout);
    if (r->first_error[0] != '\0') {
        printf(",\"first_error\":");
        cb_json_str(r->first_error);
    }
    printf("}\n");
    fflush(stdout);
}
