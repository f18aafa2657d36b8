/*
 * ctl.c - icrootctl, the operator's tool: the command line, and the
 * offline verbs that work on a stopped node's data directory. The online
 * verbs, which reach a running node over XMPP as an admin, are in
 * ctl_verbs.c and ctl_remote.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "ctl.h"

#define GRAPH_PREFIX "urn:icroot:graph:"

/* A node data directory is new (missing or empty) or holds our store/. */
static int
check_data_dir(const char *dir, bool create, char *why, size_t why_len)
{
    struct stat sb;
    struct dirent *e;
    bool has_store = false, other = false;
    char first[256] = "";
    DIR *d;

    if (stat(dir, &sb) != 0) {
        if (errno == ENOENT && create) {
            if (mkdir(dir, 0750) == 0)
                return 0;
        }
        snprintf(why, why_len, "%s: %s", dir, strerror(errno));
        return errno == ENOENT ? IC_ENOTFOUND : IC_EIO;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(why, why_len, "%s: not a directory", dir);
        return IC_ENOTOURS;
    }
    d = opendir(dir);
    if (d == NULL) {
        snprintf(why, why_len, "%s: %s", dir, strerror(errno));
        return IC_EIO;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (strcmp(e->d_name, "store") == 0) {
            has_store = true;
        } else if (!other) {
            other = true;
            snprintf(first, sizeof first, "%s", e->d_name);
        }
    }
    closedir(d);
    if (other && !has_store) {
        snprintf(why, why_len,
                 "%s is not an icroot data directory (it holds '%s' and no "
                 "store/)",
                 dir, first);
        return IC_ENOTOURS;
    }
    if (!has_store && !create) {
        snprintf(why, why_len, "%s: no store here (load something first)", dir);
        return IC_ENOTFOUND;
    }
    return 0;
}

static int store_open(const char *dir,
                      bool create,
                      bool read_only,
                      bool no_sync,
                      struct ic_store **out,
                      char *why,
                      size_t why_len)
{
    struct ic_store_opts o = {0};
    char path[4096];
    int rc = check_data_dir(dir, create, why, why_len);

    if (rc != 0)
        return rc;
    snprintf(path, sizeof path, "%s/store", dir);
    o.create = create;
    o.read_only = read_only;
    o.no_sync = no_sync;
    if (getenv("ICROOT_MAP_SIZE") != NULL)
        o.map_size = strtoull(getenv("ICROOT_MAP_SIZE"), NULL, 10);
    return ic_store_open(path, &o, out, why, why_len);
}

int ic_node_store_open(const char *dir,
                       bool create,
                       bool read_only,
                       struct ic_store **out,
                       char *why,
                       size_t why_len)
{
    return store_open(dir, create, read_only, false, out, why, why_len);
}

int ic_node_store_open_replica(const char *dir,
                               struct ic_store **out,
                               char *why,
                               size_t why_len)
{
    return store_open(dir, true, false, true, out, why, why_len);
}

int ic_node_load(struct ic_store *st,
                 const char *file,
                 const char *graph,
                 bool merge,
                 struct ic_load_result *res)
{
    struct ic_load_opts o = {0};
    struct ic_txn *txn;
    char gbuf[1024];
    const char *base = strrchr(file, '/');
    size_t bl;
    int rc;

    base = base ? base + 1 : file;
    bl = strcspn(base, ".");
    snprintf(gbuf, sizeof gbuf, GRAPH_PREFIX "%.*s", (int)bl, base);
    o.graph = graph ? graph : gbuf;
    o.graphs = graph ? IC_LOAD_ONE_GRAPH : IC_LOAD_BY_SUBJECT;
    o.replace = !merge;
    rc = ic_store_txn_begin(st, true, &txn);
    if (rc != 0) {
        snprintf(res->error, sizeof res->error, "%s", ic_strerror(rc));
        return rc;
    }
    rc = ic_store_load_file(txn, file, &o, res);
    if (rc != 0) {
        ic_store_txn_abort(txn);
        return rc;
    }
    rc = ic_store_txn_commit(txn);
    if (rc != 0)
        snprintf(res->error, sizeof res->error, "%s: commit: %s", file,
                 ic_strerror(rc));
    return rc;
}

static void usage(FILE *f)
{
    fputs(
        "usage: icrootctl --data-dir DIR COMMAND [ARGS]          (offline)\n"
        "       icrootctl [--cluster FILE [--node N]] COMMAND [ARGS] (online)\n"
        "       icrootctl --server HOST:PORT --domain D --ca FILE COMMAND ...\n"
        "\n"
        "Offline commands on a stopped node's data directory:\n"
        "  load FILE [--graph IRI] [--merge]\n"
        "        load Turtle, TriG, N-Triples or N-Quads (by extension) in\n"
        "        one transaction. Clouds' statements (xmpp: subjects) go to\n"
        "        each cloud's own graph, the rest to urn:icroot:graph:NAME;\n"
        "        --graph puts everything into IRI. The graphs written are\n"
        "        replaced unless --merge. A syntax error changes nothing.\n"
        "  dump [--graph IRI] [--format ttl|nt|nq|trig]\n"
        "        write the catalog (default: TriG) to standard output\n"
        "  query ATTRIBUTE=VALUE ... | query --xml FILE\n"
        "        run a constraint query (the seed paper's\n"
        "        constraint_catalog_resources); FILE ('-' for standard\n"
        "        input) holds a <constraints> payload. Prints the matching\n"
        "        clouds, one per line.\n"
        "  stats [--json]\n"
        "        quads, triples, terms, graphs, bytes used\n"
        "\n"
        "Online commands, run on a running node over XMPP as an admin:\n"
        "  status                      the node's sessions, stanzas, catalog\n"
        "  accounts                    list the accounts\n"
        "  account-add USER [--admin] [--password-file F]\n"
        "                              add (or reset) an account; without F\n"
        "                              a random password is made and printed\n"
        "  account-del USER            delete an account\n"
        "  passwd USER [--password-file F]   change a password\n"
        "  load FILE [--graph IRI]     load Turtle (one stanza: up to the\n"
        "                              node's max_stanza; larger files\n"
        "                              offline)\n"
        "  dump [--graph IRI] [--format trig|nq] [--linearizable]\n"
        "  query [--linearizable] [--recursive] ATTRIBUTE=VALUE ...\n"
        "  query [--linearizable] [--recursive] --xml FILE\n"
        "                              --linearizable: after a Raft barrier;\n"
        "                              --recursive: the node asks the\n"
        "                              exchanges of delegated scopes;\n"
        "                              referrals go to standard error\n"
        "  members                     the Raft members, leader, indexes\n"
        "  member-add ID HOST:RAFTPORT add a node (started with join = true)\n"
        "                              as a spare, then a voter once caught "
        "up\n"
        "  member-remove ID            remove a node from the cluster\n"
        "  transfer [ID]               hand leadership to node ID (or any)\n"
        "                              (membership verbs go to the leader: "
        "with\n"
        "                              --cluster they follow its redirect)\n"
        "  delegation-add ATTRIBUTE VALUE EXCHANGE_JID TTL\n"
        "                 [--fingerprint sha256:HEX]\n"
        "                              delegate the scope ATTRIBUTE=VALUE\n"
        "                              to an exchange; TTL in seconds\n"
        "                              (1..604800); replaces the scope's\n"
        "                              delegation if there is one\n"
        "  delegation-del ATTRIBUTE VALUE    remove a delegation\n"
        "  delegations                 list them: ATTRIBUTE=VALUE EXCHANGE "
        "TTL\n"
        "                              [FINGERPRINT]\n"
        "\n"
        "Options:\n"
        "  -d, --data-dir DIR     node data directory (offline; the store is\n"
        "                         DIR/store; or ICROOT_DATA_DIR)\n"
        "  -c, --cluster FILE     cluster.json (as icroot dev writes it; or\n"
        "                         ICROOT_CLUSTER): domain, CA, node address\n"
        "                         and the admin's password\n"
        "  -n, --node N           which node of cluster.json (default 1)\n"
        "  -s, --server HOST:PORT a node's C2S address (STARTTLS)\n"
        "      --domain D         the cluster's XMPP domain\n"
        "      --ca FILE          CA of the node's certificate (default: the\n"
        "                         system trust store)\n"
        "  -u, --user NAME        account to log in as (default admin)\n"
        "      --password-file F  its password (or ICROOT_PASSWORD)\n"
        "      --cert F --key F   log in with a client certificate (EXTERNAL)\n"
        "      --timeout SECONDS  to connect and log in (default 10)\n"
        "  -h, --help             this text\n",
        f);
}

static int cmd_load(struct ic_store *st, int argc, char **argv)
{
    const char *graph = NULL, *file = NULL;
    bool merge = false;
    struct ic_load_result res = {0};
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--graph") == 0 && i + 1 < argc)
            graph = argv[++i];
        else if (strcmp(argv[i], "--merge") == 0)
            merge = true;
        else if (file == NULL && argv[i][0] != '-')
            file = argv[i];
        else {
            fprintf(stderr, "icrootctl load: unexpected '%s'\n", argv[i]);
            return 2;
        }
    }
    if (file == NULL) {
        fprintf(stderr, "icrootctl load: no file given\n");
        return 2;
    }
    rc = ic_node_load(st, file, graph, merge, &res);
    if (rc != 0) {
        fprintf(stderr, "icrootctl: %s\n", res.error);
        fprintf(stderr, "icrootctl: nothing was loaded\n");
        return 1;
    }
    printf("loaded %llu statements into %llu graph(s) from %s\n",
           (unsigned long long)res.quads, (unsigned long long)res.graphs, file);
    return 0;
}

static int cmd_dump(struct ic_store *st, int argc, char **argv)
{
    const char *graph = NULL, *fmt = "trig";
    enum ic_rdf_syntax syn;
    struct ic_txn *txn;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--graph") == 0 && i + 1 < argc)
            graph = argv[++i];
        else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
            fmt = argv[++i];
        else {
            fprintf(stderr, "icrootctl dump: unexpected '%s'\n", argv[i]);
            return 2;
        }
    }
    syn = strcmp(fmt, "ttl") == 0    ? IC_RDF_TURTLE
          : strcmp(fmt, "nt") == 0   ? IC_RDF_NTRIPLES
          : strcmp(fmt, "nq") == 0   ? IC_RDF_NQUADS
          : strcmp(fmt, "trig") == 0 ? IC_RDF_TRIG
                                     : 0;
    if (syn == 0) {
        fprintf(stderr, "icrootctl dump: unknown format '%s'\n", fmt);
        return 2;
    }
    rc = ic_store_txn_begin(st, false, &txn);
    if (rc == 0) {
        rc = ic_store_dump(txn, graph, syn, stdout);
        ic_store_txn_abort(txn);
    }
    if (rc != 0) {
        fprintf(stderr, "icrootctl dump: %s\n", ic_strerror(rc));
        return 1;
    }
    return 0;
}

char *ctl_read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    size_t cap = 65536, n = 0, r;
    char *buf;

    if (f == NULL)
        return NULL;
    buf = ic_malloc(cap + 1);
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            if (cap >= (64u << 20)) {
                ic_free(buf);
                if (f != stdin)
                    fclose(f);
                errno = EFBIG;
                return NULL;
            }
            cap *= 2;
            buf = ic_realloc(buf, cap + 1);
        }
    }
    if (f != stdin)
        fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int
run_query(struct ic_store *st, const struct ic_constraint *c, size_t n)
{
    struct ic_match_result res;
    struct ic_txn *txn;
    int rc = ic_store_txn_begin(st, false, &txn);

    if (rc != 0) {
        fprintf(stderr, "icrootctl query: %s\n", ic_strerror(rc));
        return 1;
    }
    rc = ic_store_match(txn, c, n, &res);
    if (rc == 0)
        for (size_t i = 0; i < res.n; i++)
            printf("%s\n", res.names[i]);
    else
        fprintf(stderr, "icrootctl query: %s\n", res.error);
    ic_match_result_free(&res);
    ic_store_txn_abort(txn);
    return rc == 0 ? 0 : 1;
}

static int cmd_query(struct ic_store *st, int argc, char **argv)
{
    struct ic_constraint *c;
    struct ic_constraints_doc doc;
    size_t n = 0, len;
    char *xml;
    int rc;

    if (argc == 2 && strcmp(argv[0], "--xml") == 0) {
        xml = ctl_read_all(argv[1], &len);
        if (xml == NULL) {
            fprintf(stderr, "icrootctl query: %s: %s\n", argv[1],
                    strerror(errno));
            return 1;
        }
        rc = ic_constraints_parse(xml, len, &doc);
        ic_free(xml);
        if (rc != 0) {
            fprintf(stderr, "icrootctl query: %s: %s\n", argv[1], doc.error);
            return 1;
        }
        rc = run_query(st, doc.c, doc.n);
        ic_constraints_doc_free(&doc);
        return rc;
    }
    c = ic_calloc((size_t)argc + 1, sizeof *c);
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL) {
            fprintf(stderr, "icrootctl query: '%s' is not ATTRIBUTE=VALUE\n",
                    argv[i]);
            ic_free(c);
            return 2;
        }
        *eq = '\0';
        c[n].attribute = argv[i];
        c[n].value = eq + 1;
        n++;
    }
    rc = run_query(st, c, n);
    ic_free(c);
    return rc;
}

static int cmd_stats(struct ic_store *st, int argc, char **argv)
{
    struct ic_store_stats s;
    struct ic_txn *txn;
    bool json = argc == 1 && strcmp(argv[0], "--json") == 0;
    int rc = ic_store_txn_begin(st, false, &txn);

    if (rc == 0) {
        rc = ic_store_stats(txn, &s);
        ic_store_txn_abort(txn);
    }
    if (rc != 0) {
        fprintf(stderr, "icrootctl stats: %s\n", ic_strerror(rc));
        return 1;
    }
    if (json) {
        json_t *o = json_pack(
            "{s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "format", s.format,
            "quads", (json_int_t)s.quads, "triples", (json_int_t)s.triples,
            "terms", (json_int_t)s.terms, "graphs", (json_int_t)s.graphs,
            "used_bytes", (json_int_t)s.used_bytes, "map_size",
            (json_int_t)s.map_size, "applied_index",
            (json_int_t)s.applied_index);
        char *txt = json_dumps(o, JSON_COMPACT);
        printf("%s\n", txt);
        free(txt);
        json_decref(o);
        return 0;
    }
    printf("format        %u\nquads         %llu\ntriples       %llu\n"
           "terms         %llu\ngraphs        %llu\nused bytes    %llu\n"
           "bytes/quad    %.1f\napplied index %llu\n",
           s.format, (unsigned long long)s.quads, (unsigned long long)s.triples,
           (unsigned long long)s.terms, (unsigned long long)s.graphs,
           (unsigned long long)s.used_bytes,
           s.quads ? (double)s.used_bytes / (double)s.quads : 0.0,
           (unsigned long long)s.applied_index);
    return 0;
}

static int offline(const char *dir, int argc, char **argv)
{
    const char *cmd = argv[0];
    bool write = strcmp(cmd, "load") == 0;
    struct ic_store *st;
    char why[512];
    int rc;

    if (!write && strcmp(cmd, "dump") != 0 && strcmp(cmd, "query") != 0 &&
        strcmp(cmd, "stats") != 0) {
        fprintf(stderr,
                "icrootctl: '%s' is not an offline command (see --help)\n",
                cmd);
        return 2;
    }
    rc = ic_node_store_open(dir, write, false, &st, why, sizeof why);
    if (rc != 0) {
        fprintf(stderr, "icrootctl: %s\n", why);
        return 1;
    }
    argc--;
    argv++;
    if (write)
        rc = cmd_load(st, argc, argv);
    else if (strcmp(cmd, "dump") == 0)
        rc = cmd_dump(st, argc, argv);
    else if (strcmp(cmd, "query") == 0)
        rc = cmd_query(st, argc, argv);
    else
        rc = cmd_stats(st, argc, argv);
    ic_store_close(st);
    return rc;
}

/* The connection of the online verbs: explicit options first, the rest
 * from cluster.json. */
static int online(
    struct ctl_remote *r, const char *cluster, int node, int argc, char **argv)
{
    char why[512];
    int rc;

    if (r->user == NULL)
        r->user = ic_strdup("admin");
    if (r->password == NULL && getenv("ICROOT_PASSWORD") != NULL)
        r->password = ic_strdup(getenv("ICROOT_PASSWORD"));
    if (cluster != NULL)
        r->cluster = ic_strdup(cluster);
    if (cluster != NULL &&
        ctl_remote_from_cluster(r, cluster, node, why, sizeof why) != 0) {
        fprintf(stderr, "icrootctl: %s\n", why);
        return 1;
    }
    if (r->host == NULL || r->domain == NULL) {
        fprintf(stderr, "icrootctl: where is the node? Give --data-dir DIR "
                        "(offline), --cluster FILE, or --server HOST:PORT "
                        "with --domain\n");
        return 2;
    }
    if (r->password == NULL && r->cert == NULL) {
        fprintf(stderr,
                "icrootctl: no password for %s (--password-file, "
                "ICROOT_PASSWORD, or cluster.json)\n",
                r->user);
        return 2;
    }
    rc = ctl_online(r, argc, argv);
    if (rc == -1) {
        fprintf(stderr,
                "icrootctl: '%s' is not an online command (see --help)\n",
                argv[0]);
        return 2;
    }
    return rc;
}

static int parse_server(struct ctl_remote *r, const char *arg)
{
    const char *colon = strrchr(arg, ':');
    char *end;
    long port;

    if (colon == NULL || colon == arg)
        return IC_EINVAL;
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        return IC_EINVAL;
    ic_free(r->host);
    r->host = ic_malloc((size_t)(colon - arg) + 1);
    memcpy(r->host, arg, (size_t)(colon - arg));
    r->host[colon - arg] = '\0';
    r->port = (int)port;
    return 0;
}

static int read_password(struct ctl_remote *r, const char *file)
{
    size_t len;
    char *pw = ctl_read_all(file, &len);

    if (pw == NULL) {
        fprintf(stderr, "icrootctl: %s: %s\n", file, strerror(errno));
        return 1;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    ic_free(r->password);
    r->password = pw;
    return 0;
}

enum {
    OPT_DOMAIN = 256,
    OPT_CA,
    OPT_PASSWORD_FILE,
    OPT_CERT,
    OPT_KEY,
    OPT_TIMEOUT
};

static void set_str(char **dst, const char *v)
{
    ic_free(*dst);
    *dst = ic_strdup(v);
}

int ic_ctl_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"cluster", required_argument, NULL, 'c'},
        {"node", required_argument, NULL, 'n'},
        {"server", required_argument, NULL, 's'},
        {"user", required_argument, NULL, 'u'},
        {"domain", required_argument, NULL, OPT_DOMAIN},
        {"ca", required_argument, NULL, OPT_CA},
        {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
        {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = getenv("ICROOT_DATA_DIR");
    const char *cluster = getenv("ICROOT_CLUSTER");
    struct ctl_remote r = {0};
    bool remote_opts = false;
    int opt, rc = 0, node = 1;

    while (rc == 0 && (opt = getopt_long(argc, argv, "+d:c:n:s:u:h", longopts,
                                         NULL)) != -1) {
        remote_opts = remote_opts || (opt != 'd' && opt != 'h');
        switch (opt) {
        case 'd':
            dir = optarg;
            break;
        case 'c':
            cluster = optarg;
            break;
        case 'n':
            node = atoi(optarg);
            break;
        case 's':
            if (parse_server(&r, optarg) != 0) {
                fprintf(stderr, "icrootctl: --server HOST:PORT\n");
                rc = 2;
            }
            break;
        case 'u':
            set_str(&r.user, optarg);
            break;
        case OPT_DOMAIN:
            set_str(&r.domain, optarg);
            break;
        case OPT_CA:
            set_str(&r.ca, optarg);
            break;
        case OPT_PASSWORD_FILE:
            rc = read_password(&r, optarg);
            break;
        case OPT_CERT:
            set_str(&r.cert, optarg);
            break;
        case OPT_KEY:
            set_str(&r.key, optarg);
            break;
        case OPT_TIMEOUT:
            r.timeout_ms = (unsigned)atoi(optarg) * 1000u;
            break;
        case 'h':
            usage(stdout);
            ctl_remote_free(&r);
            return 0;
        default:
            usage(stderr);
            rc = 2;
        }
    }
    if (rc == 0 && optind >= argc) {
        usage(stderr);
        rc = 2;
    }
    if (rc == 0 && strcmp(argv[optind], "help") == 0)
        usage(stdout);
    else if (rc == 0 && dir != NULL && !remote_opts)
        rc = offline(dir, argc - optind, argv + optind);
    else if (rc == 0)
        rc = online(&r, cluster, node, argc - optind, argv + optind);
    ctl_remote_free(&r);
    return rc;
}
