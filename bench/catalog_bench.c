/*
 * icroot-catalog-bench - the store side of the catalog benchmark: loads an
 * RDF file into a fresh store in one transaction (each cloud in its own
 * graph, as publishes leave them) and runs the seed paper's constraint
 * query, one read transaction per query as a node serves it; then one
 * pass of the dictionary sweep over it, timed per slice. Prints one JSON
 * line; bench/catalog-bench.sh runs it beside oxigraph.
 *
 *   icroot-catalog-bench --dir DIR --attrmap constraints.ttl
 *                        --load FILE [--queries N]
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "ic_node.h"

static const struct ic_constraint seed[] = {
    {"availabilityQuanity", "99.999"},  {"replicationFactor", "5"},
    {"tierCountries", "JAPAN"},         {"StorageReplicationMethod", "AMQP"},
    {"InterCloudStorageAccess", "NFS"},
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int load(struct ic_store *st,
                const char *file,
                const char *graph,
                enum ic_load_graphs mode,
                uint64_t *quads)
{
    struct ic_load_opts o = {0};
    struct ic_load_result res;
    struct ic_txn *txn;
    int rc;

    o.graph = graph;
    o.graphs = mode;
    o.replace = true;
    rc = ic_store_txn_begin(st, true, &txn);
    if (rc != 0)
        return rc;
    rc = ic_store_load_file(txn, file, &o, &res);
    if (rc != 0) {
        fprintf(stderr, "load: %s\n", res.error);
        ic_store_txn_abort(txn);
        return rc;
    }
    *quads = res.quads;
    return ic_store_txn_commit(txn);
}

/* One whole pass of the dictionary sweep as the leader runs it (slices of
 * SWEEP_SLICE terms, one write transaction each): every term is in use
 * here, so this is the cost of looking, which every slice pays. */
#define SWEEP_SLICE 1024
struct sweep_pass {
    unsigned slices;
    double total_s, max_s;
};

static int sweep_pass(struct ic_store *st, struct sweep_pass *out)
{
    struct ic_store_sweep r = {0};
    struct ic_txn *txn;

    memset(out, 0, sizeof *out);
    do {
        double t0 = now(), d;
        if (ic_store_txn_begin(st, true, &txn) != 0 ||
            ic_store_terms_sweep(txn, SWEEP_SLICE, &r) != 0 ||
            ic_store_txn_commit(txn) != 0) {
            fprintf(stderr, "sweep failed\n");
            return 1;
        }
        d = now() - t0;
        out->slices++;
        out->total_s += d;
        if (d > out->max_s)
            out->max_s = d;
    } while (!r.wrapped);
    if (r.removed != 0)
        fprintf(stderr, "sweep: %llu terms unused after a load?\n",
                (unsigned long long)r.removed);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"attrmap", required_argument, NULL, 'a'},
        {"load", required_argument, NULL, 'l'},
        {"queries", required_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *attrmap = NULL, *file = NULL;
    long nq = 1000;
    struct ic_store *st;
    struct ic_store_stats stats;
    struct sweep_pass sw;
    struct ic_match_result res = {0};
    struct ic_txn *txn;
    struct rusage ru;
    struct stat sb;
    char why[512], path[4096];
    double t0, c0, load_s, load_cpu, *lat, total = 0;
    uint64_t quads = 0, dummy;
    size_t matches = 0;
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == 'd')
            dir = optarg;
        else if (opt == 'a')
            attrmap = optarg;
        else if (opt == 'l')
            file = optarg;
        else if (opt == 'q')
            nq = atol(optarg);
        else
            return 2;
    }
    if (dir == NULL || attrmap == NULL || file == NULL || nq < 1) {
        fprintf(stderr, "usage: icroot-catalog-bench --dir DIR --attrmap "
                        "constraints.ttl --load FILE [--queries N]\n");
        return 2;
    }
    rc = ic_node_store_open(dir, true, false, &st, why, sizeof why);
    if (rc != 0) {
        fprintf(stderr, "%s\n", why);
        return 1;
    }
    if (load(st, attrmap, "urn:icroot:graph:constraints", IC_LOAD_ONE_GRAPH,
             &dummy) != 0)
        return 1;
    t0 = now();
    c0 = cpu_now();
    if (load(st, file, "urn:icroot:graph:bench", IC_LOAD_BY_SUBJECT, &quads) !=
        0)
        return 1;
    load_s = now() - t0;
    load_cpu = cpu_now() - c0;

    lat = ic_calloc((size_t)nq, sizeof *lat);
    for (long i = -1; i < nq; i++) { /* one warm-up run */
        double q0 = now();
        if (ic_store_txn_begin(st, false, &txn) != 0)
            return 1;
        ic_match_result_free(&res);
        rc = ic_store_match(txn, seed, IC_ARRAY_LEN(seed), &res);
        ic_store_txn_abort(txn);
        if (rc != 0) {
            fprintf(stderr, "query: %s\n", res.error);
            return 1;
        }
        if (i >= 0) {
            lat[i] = now() - q0;
            total += lat[i];
        }
    }
    matches = res.n;
    ic_match_result_free(&res);
    qsort(lat, (size_t)nq, sizeof *lat, cmp_double);

    if (ic_store_txn_begin(st, false, &txn) != 0 ||
        ic_store_stats(txn, &stats) != 0)
        return 1;
    ic_store_txn_abort(txn);
    if (sweep_pass(st, &sw) != 0)
        return 1;
    snprintf(path, sizeof path, "%s/store/data.mdb", dir);
    if (stat(path, &sb) != 0)
        sb.st_size = 0;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"engine\":\"icroot\",\"triples\":%llu,\"load_s\":%.3f,"
           "\"load_cpu_s\":%.3f,\"load_triples_per_s\":%.0f,"
           "\"queries\":%ld,\"matches\":%zu,\"query_p50_ms\":%.4f,"
           "\"query_p99_ms\":%.4f,\"queries_per_s\":%.1f,"
           "\"bytes_per_triple\":%.1f,\"file_bytes_per_triple\":%.1f,"
           "\"max_rss_mb\":%.1f,\"sweep_terms\":%llu,\"sweep_slices\":%u,"
           "\"sweep_slice_ms\":%.3f,\"sweep_slice_max_ms\":%.3f}\n",
           (unsigned long long)quads, load_s, load_cpu, (double)quads / load_s,
           nq, matches, lat[(size_t)nq / 2] * 1e3,
           lat[(size_t)((double)nq * 0.99)] * 1e3, (double)nq / total,
           (double)stats.used_bytes / (double)stats.quads,
           (double)sb.st_size / (double)stats.quads,
           (double)ru.ru_maxrss / 1024.0, (unsigned long long)stats.terms,
           sw.slices, sw.total_s * 1e3 / sw.slices, sw.max_s * 1e3);
    ic_free(lat);
    ic_store_close(st);
    return 0;
}
