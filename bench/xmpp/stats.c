/*
 * stats.c - the measuring side: a log-linear latency histogram (values
 * below 64 ns exact, then 32 buckets per power of two, about 3 % wide),
 * the clocks, and another process's CPU time and RSS from /proc.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

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

void bench_hist_add(struct bench_hist *h, uint64_t ns)
{
    unsigned b = bucket_of(ns);

    h->b[b < HIST_BUCKETS ? b : HIST_BUCKETS - 1]++;
    h->n++;
}

void bench_hist_merge(struct bench_hist *into, const struct bench_hist *h)
{
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        into->b[i] += h->b[i];
    into->n += h->n;
}

uint64_t bench_hist_quantile(const struct bench_hist *h, double q)
{
    uint64_t want, seen = 0;

    if (h->n == 0)
        return 0;
    want = (uint64_t)((double)h->n * q);
    if (want >= h->n)
        want = h->n - 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > want)
            return value_of(i);
    }
    return value_of(HIST_BUCKETS - 1);
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bench_cpu_self(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* /proc/PID/stat: fields 14 and 15 (utime, stime) after the ')'. */
double bench_proc_cpu(int pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, stt = 0;
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
                            &ut, &stt) != 2)
        return -1;
    return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
}

long bench_proc_rss_kib(int pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

/* CPU seconds the whole machine spent busy so far (/proc/stat), -1 if
 * unknown: the share of other processes during a run shows whether the
 * figures are clean. */
double bench_host_busy(void)
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
