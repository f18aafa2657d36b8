/*
 * cbench.h - what the two generators of the cluster benchmark share
 * (docs/benchmarks-cluster.md):
 *
 *   icroot-cluster-bench  publish_resources / constraint_catalog_resources
 *                         over XMPP (ic_xmpp's client) against the nodes
 *                         of an `icroot dev` cluster
 *   etcd-bench            PUT through etcd's v3 JSON gateway over HTTP/1.1
 *
 * Both measure the same way (stats.c): a warm-up, then a window of
 * --duration seconds in which every answer that arrives is counted and its
 * latency (send to answer) goes into a log-linear histogram; the
 * generator's own CPU, the servers' CPU (/proc/PID/stat of every --pids)
 * and the machine's busy time (/proc/stat) are read at both ends of the
 * window. Each prints one JSON line with the same keys (cb_report_print).
 */
#ifndef CBENCH_H
#define CBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Latency histogram: values below 64 ns exact, then 32 buckets per power
 * of two (about 3 % wide), up to 2^40 ns (18 minutes). */
#define CB_HIST_BUCKETS (64 + 35 * 32)
#define CB_MAX_SECONDS 3600 /* per-second counts kept */
#define CB_MAX_PIDS 16

struct cb_hist {
    uint64_t b[CB_HIST_BUCKETS];
    uint64_t n;
    uint64_t max;
};

void cb_hist_add(struct cb_hist *h, uint64_t ns);
uint64_t cb_hist_quantile(const struct cb_hist *h, double q);

uint64_t cb_now_ns(void);
double cb_cpu_self(void);    /* this process's CPU seconds */
double cb_proc_cpu(int pid); /* another's, -1 if unknown */
double cb_host_busy(void);   /* the machine's busy CPU seconds, or -1 */
/* Resident set size (VmRSS) and its peak (VmHWM) of PID in KiB; -1 when
 * unreadable. */
int cb_proc_mem(int pid, long *rss_kb, long *hwm_kb);

/* Parses "1,2,3" into PIDS (at most CB_MAX_PIDS); returns the count or -1. */
int cb_parse_pids(const char *s, int *pids);

/* The measuring window and what was seen in it. */
struct cb_run {
    /* set by the caller */
    const char *case_name; /* "publish-64" */
    const char *mode;      /* "publish", "query", "put" */
    const char *server;    /* "icroot", "etcd" */
    const char *target;    /* where the clients went ("all", "node 2") */
    unsigned clients;
    size_t payload_bytes; /* the description / value */
    size_t request_bytes; /* one request as sent (before TLS) */
    int pids[CB_MAX_PIDS];
    int npids;
    double warmup_s, duration_s;

    /* the clock: 0 before the start */
    uint64_t t_start, t_measure, t_end;
    bool measuring, stopping;

    /* counted while measuring */
    struct cb_hist lat;
    uint64_t ops, errors;
    uint64_t per_s[CB_MAX_SECONDS];
    /* counted over the whole run */
    uint64_t conn_errors, login_failures, all_ops, all_errors;
    unsigned clients_up, in_flight_at_end;
    double login_s; /* time to bring every client up */
    char first_error[256];

    /* the clocks at both ends of the window */
    double cpu0, cpu1, srv0, srv1, host0, host1;
    /* the servers' memory when the window closed: resident sets summed,
     * the largest peak of one (KiB; -1 unknown) */
    long srv_rss_kb, srv_hwm_kb;
};

/* Starts the warm-up now; the window opens WARMUP_S later. */
void cb_run_start(struct cb_run *r);
/* Moves the run along (call often, e.g. from a 20 ms timer): opens the
 * window after the warm-up, closes it after the duration (then `stopping`
 * is true and no new request should be sent). */
void cb_run_tick(struct cb_run *r);
/* One answer that arrived now for a request sent at SENT (ns). OK false:
 * an error answer (counted, not timed). */
void cb_run_done(struct cb_run *r, uint64_t sent, bool ok);
/* Notes an error's text once (the first one wins). */
void cb_run_error(struct cb_run *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prints the JSON line; EXTRA (may be NULL) is appended inside the object
 * as is (",\"key\":value..."). */
void cb_report_print(const struct cb_run *r, const char *extra);

/* Writes S as a JSON string to stdout. */
void cb_json_str(const char *s);

#endif /* CBENCH_H */
