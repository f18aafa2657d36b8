/*
 * icroot - the Intercloud Root node.
 *
 *   icroot run --config FILE     one node in the foreground (run.c)
 *   icroot dev [options]         the embedded default (dev.c, INTERFACE.md)
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "dev.h"

#ifndef IC_ONTOLOGY_DIR
#define IC_ONTOLOGY_DIR "ontology"
#endif

static void usage(FILE *f)
{
    fputs(
        "usage: icroot run --config FILE\n"
        "       icroot dev [--nodes N] [--dir DIR] [--base-port P]\n"
        "                  [--domain D] [--role root|exchange] "
        "[--no-sample]\n"
        "                  [--ontology DIR] [--s2s-peer DOMAIN=HOST:PORT]...\n"
        "                  [--s2s-dns HOST:PORT]\n",
        f);
}

static int run_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        if (opt == 'c') {
            config = optarg;
        } else if (opt == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (config == NULL) {
        fprintf(stderr, "icroot run: --config FILE is required\n");
        return 2;
    }
    return ic_node_run(config);
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
        {"s2s-peer", required_argument, NULL, 'P'},
        {"s2s-dns", required_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ic_dev_opts o = {.nodes = 3,
                            .dir = "icroot-dev",
                            .base_port = 15222,
                            .domain = "intercloudexchg.test",
                            .role = "root",
                            .ontology = IC_ONTOLOGY_DIR};
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
        case 'P':
            if (o.n_s2s_peers == (int)IC_ARRAY_LEN(o.s2s_peers) ||
                strchr(optarg, '=') == NULL || strrchr(optarg, ':') == NULL) {
                fprintf(stderr, "icroot dev: --s2s-peer DOMAIN=HOST:PORT "
                                "(at most 16)\n");
                return 2;
            }
            o.s2s_peers[o.n_s2s_peers++] = optarg;
            break;
        case 'N':
            o.s2s_dns = optarg;
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
        fprintf(stderr, "icroot dev: bad --nodes (1..9), --base-port or "
                        "--role\n");
        return 2;
    }
    return ic_node_dev(&o);
}

/* The first line of PATH (a password file), or NULL. */
static char *first_line(const char *path)
{
    char buf[1024];
    FILE *f = fopen(path, "r");
    char *line = NULL;

    if (f == NULL)
        return NULL;
    if (fgets(buf, sizeof buf, f) != NULL) {
        buf[strcspn(buf, "\r\n")] = '\0';
        line = ic_strdup(buf);
    }
    fclose(f);
    return line;
}

/* `icroot seed`: the seed a new cluster's nodes name in [cluster] seed
 * (node/dev.h), for operators and the Ansible role. */
static int seed_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"out", required_argument, NULL, 'O'},
        {"domain", required_argument, NULL, 'D'},
        {"ontology", required_argument, NULL, 'o'},
        {"no-sample", no_argument, NULL, 'S'},
        {"account", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ic_seed_account acc[IC_SEED_ACCOUNTS_MAX];
    char *owned[IC_SEED_ACCOUNTS_MAX * 2];
    struct ic_seed_opts o = {.domain = "intercloudexchg.test",
                             .ontology = IC_ONTOLOGY_DIR,
                             .accounts = acc};
    size_t n_owned = 0;
    int opt, rc = 2;

    if (getenv("ICROOT_ONTOLOGY") != NULL)
        o.ontology = getenv("ICROOT_ONTOLOGY");
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        char *eq, *adm, *name, *pw;
        switch (opt) {
        case 'O':
            o.out = optarg;
            break;
        case 'D':
            o.domain = optarg;
            break;
        case 'o':
            o.ontology = optarg;
            break;
        case 'S':
            o.no_sample = true;
            break;
        case 'a':
            eq = strchr(optarg, '=');
            adm = strrchr(optarg, ':');
            if (eq == NULL || o.n_accounts == IC_SEED_ACCOUNTS_MAX) {
                fprintf(stderr,
                        "icroot seed: --account NAME=PASSWORD_FILE"
                        "[:admin] (at most %d)\n",
                        IC_SEED_ACCOUNTS_MAX);
                goto out;
            }
            if (adm != NULL && (adm < eq || strcmp(adm, ":admin") != 0))
                adm = NULL;
            {
                char *raw = ic_strndup(optarg, (size_t)(eq - optarg));
                name = ic_jid_nodeprep(raw);
                ic_free(raw);
            }
            {
                char *file = adm ? ic_strndup(eq + 1, (size_t)(adm - eq - 1))
                                 : ic_strdup(eq + 1);
                pw = first_line(file);
                if (pw == NULL || pw[0] == '\0' || name == NULL) {
                    fprintf(stderr, "icroot seed: %s: %s\n", optarg,
                            name == NULL ? "not a valid account name"
                                         : "cannot read a password from it");
                    ic_free(file);
                    ic_free(pw);
                    ic_free(name);
                    goto out;
                }
                ic_free(file);
            }
            owned[n_owned++] = name;
            owned[n_owned++] = pw;
            acc[o.n_accounts++] =
                (struct ic_seed_account){name, pw, adm != NULL};
            break;
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        default:
            usage(stderr);
            goto out;
        }
    }
    if (o.out == NULL) {
        fprintf(stderr, "icroot seed: --out FILE is required\n");
        goto out;
    }
    rc = ic_node_make_seed(&o) == 0 ? 0 : 1;
out:
    for (size_t i = 0; i < n_owned; i++)
        ic_free(owned[i]);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "run") == 0)
        return run_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "dev") == 0)
        return dev_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "seed") == 0)
        return seed_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
