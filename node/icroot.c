/*
 * icroot - the Intercloud Root node.
 *
 *   icroot run --config FILE     one node (arrives with the XMPP node)
 *   icroot dev [options]         the embedded default (INTERFACE.md)
 *
 * Until the XMPP node lands, `dev` prepares the first node's data
 * directory, loads ontology/<name>.ttl into its catalog and answers the seed
 * paper's constraint query from the command line.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ic_node.h"

#ifndef IC_ONTOLOGY_DIR
#define IC_ONTOLOGY_DIR "ontology"
#endif

struct dev_opts {
    int nodes;
    const char *dir;
    int base_port;
    const char *domain;
    const char *role;
    const char *ontology;
    bool no_sample;
};

static void usage(FILE *f)
{
    fputs("usage: icroot run --config FILE\n"
          "       icroot dev [--nodes N] [--dir DIR] [--base-port P]\n"
          "                  [--domain D] [--role root|exchange] "
          "[--no-sample]\n"
          "                  [--ontology DIR]\n",
          f);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads every ontology/<name>.ttl, sorted, each in its own transaction. */
static int load_ontology(struct ic_store *st, const struct dev_opts *o)
{
    DIR *d = opendir(o->ontology);
    struct dirent *e;
    char *names[64];
    size_t n = 0;
    int rc = 0;

    if (d == NULL) {
        fprintf(stderr, "icroot dev: %s: %s\n", o->ontology, strerror(errno));
        return 1;
    }
    while ((e = readdir(d)) != NULL && n < IC_ARRAY_LEN(names)) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".ttl") != 0)
            continue;
        if (o->no_sample && strncmp(e->d_name, "sample", 6) == 0)
            continue;
        names[n++] = ic_strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct ic_load_result res = {0};
        snprintf(path, sizeof path, "%s/%s", o->ontology, names[i]);
        if (rc == 0 && ic_node_load(st, path, NULL, false, &res) != 0) {
            fprintf(stderr, "icroot dev: %s\n", res.error);
            rc = 1;
        } else if (rc == 0) {
            printf("loaded %s (%llu statements)\n", path,
                   (unsigned long long)res.quads);
        }
        ic_free(names[i]);
    }
    return rc;
}

static const struct ic_constraint seed_query[] = {
    {"availabilityQuanity ", "99.999"},
    {"replicationFactor", "5"},
    {"tierCountries", "JAPAN"},
    {"StorageReplicationMethod\n         ", "AMQP"},
    {"InterCloudStorageAccess\n         ", "NFS"},
};

static int dev(const struct dev_opts *o)
{
    char node_dir[4096], why[512];
    struct ic_store *st;
    struct ic_txn *txn;
    struct ic_match_result res;
    int rc;

    if (mkdir(o->dir, 0750) != 0 && errno != EEXIST) {
        fprintf(stderr, "icroot dev: %s: %s\n", o->dir, strerror(errno));
        return 1;
    }
    snprintf(node_dir, sizeof node_dir, "%s/node1", o->dir);
    rc = ic_node_store_open(node_dir, true, false, &st, why, sizeof why);
    if (rc != 0) {
        fprintf(stderr, "icroot dev: %s\n", why);
        return 1;
    }
    if (load_ontology(st, o) != 0) {
        ic_store_close(st);
        return 1;
    }
    rc = ic_store_txn_begin(st, false, &txn);
    if (rc == 0) {
        rc = ic_store_match(txn, seed_query, IC_ARRAY_LEN(seed_query), &res);
        ic_store_txn_abort(txn);
    }
    if (rc == 0) {
        printf("seed query (availability>=99.999, replicationFactor>=5, "
               "JAPAN, AMQP, NFS) on %s:\n",
               node_dir);
        for (size_t i = 0; i < res.n; i++)
            printf("  %s\n", res.names[i]);
    } else {
        fprintf(stderr, "icroot dev: seed query: %s\n", res.error);
    }
    ic_match_result_free(&res);
    ic_store_close(st);
    printf("domain %s, %d node(s) requested, base port %d: the XMPP "
           "service is not built yet; this run prepared %s and exits.\n",
           o->domain, o->nodes, o->base_port, o->dir);
    return rc == 0 ? 0 : 1;
}

static int dev_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"nodes", required_argument, NULL, 'n'},
        {"dir", required_argument, NULL, 'd'},
        {"base-port", required_argument, NULL, 'p'},
        {"domain", required_argument, NULL, 'D'},
        {"role", required_argument, NULL, 'r'},
        {"no-sample", no_argument, NULL, 'S'},
        {"ontology", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct dev_opts o = {3,      "icroot-dev",    15222, "intercloudexchg.test",
                         "root", IC_ONTOLOGY_DIR, false};
    int opt;

    if (getenv("ICROOT_ONTOLOGY") != NULL)
        o.ontology = getenv("ICROOT_ONTOLOGY");
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            o.nodes = atoi(optarg);
            break;
        case 'd':
            o.dir = optarg;
            break;
        case 'p':
            o.base_port = atoi(optarg);
            break;
        case 'D':
            o.domain = optarg;
            break;
        case 'r':
            o.role = optarg;
            break;
        case 'S':
            o.no_sample = true;
            break;
        case 'o':
            o.ontology = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (o.nodes < 1 || o.nodes > 9 || o.base_port < 1024 ||
        o.base_port > 65535 - 100 ||
        (strcmp(o.role, "root") != 0 && strcmp(o.role, "exchange") != 0)) {
        fprintf(stderr, "icroot dev: bad --nodes, --base-port or --role\n");
        return 2;
    }
    return dev(&o);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "dev") == 0)
        return dev_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "run") == 0) {
        fprintf(stderr, "icroot run: the XMPP node is not built yet\n");
        return 1;
    }
    usage(stderr);
    return 2;
}
