/*
 * dev.c - `icroot dev`: the embedded default (INTERFACE.md). Creates DIR
 * with a CA and node certificates, one config per node, the demo accounts
 * (random passwords, kept in DIR/accounts.json so a re-run restarts the
 * same cluster), and the seed (DIR/seed.cmd: one Raft command with the
 * catalog, ontology/<name>.ttl, and the accounts, made once); starts N node
 * processes that form one Raft cluster and apply the seed once, writes
 * DIR/cluster.json once every node accepts C2S and has applied the seed,
 * and stays in the foreground until SIGINT/SIGTERM, which stops every
 * node. A node that dies is not restarted.
 */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "app.h"
#include "dev.h"
#include "node_int.h"

#define MAX_NODES 9
#define SAMPLE_DOMAIN "intercloudexchg.test"

static const char *const demo_accounts[] = {"cloud1", "cloud2", "cloud3",
                                            "cloud4", "cloud5", "admin"};

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = ic_malloc(n);

    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static char *random_password(void)
{
    static const char alphabet[] =
        "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    unsigned char r[20];
    char *p = ic_malloc(sizeof r + 1);

    RAND_bytes(r, sizeof r);
    for (size_t i = 0; i < sizeof r; i++)
        p[i] = alphabet[r[i] % (sizeof alphabet - 1)];
    p[sizeof r] = '\0';
    return p;
}

/* DIR/accounts.json: {"cloud1": "password", ...}, made once. */
static json_t *accounts(const char *dir)
{
    char *path = path_join(dir, "accounts.json");
    json_t *a = json_load_file(path, 0, NULL);
    int fd;

    if (a == NULL) {
        a = json_object();
        for (size_t i = 0; i < IC_ARRAY_LEN(demo_accounts); i++) {
            char *pw = random_password();
            json_object_set_new(a, demo_accounts[i], json_string(pw));
            ic_free(pw);
        }
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            json_dumpfd(a, fd, JSON_INDENT(2));
            close(fd);
        }
    }
    ic_free(path);
    return a;
}

/* DIR/s2s-secret: the dialback secret every node shares, made once. */
static char *s2s_secret(const char *dir)
{
    char *path = path_join(dir, "s2s-secret"), buf[64] = "";
    FILE *f = fopen(path, "r");
    char *secret = NULL;
    int fd;

    if (f != NULL) {
        if (fgets(buf, sizeof buf, f) != NULL)
            buf[strcspn(buf, "\r\n")] = '\0';
        fclose(f);
        if (strlen(buf) >= 16)
            secret = ic_strdup(buf);
    }
    if (secret == NULL) {
        char *a = random_password(), *b = random_password();
        secret = ic_malloc(strlen(a) + strlen(b) + 1);
        strcpy(secret, a);
        strcat(secret, b);
        ic_free(a);
        ic_free(b);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            if (write(fd, secret, strlen(secret)) < 0)
                IC_LOG(IC_LOG_WARN, "dev", "%s: %s", path, strerror(errno));
            close(fd);
        }
    }
    ic_free(path);
    return secret;
}

/* --s2s-peer DOMAIN=HOST:PORT items into C's [s2s] peers (the node checks
 * them when it reads its config). */
static void s2s_routes(const struct ic_dev_opts *o, struct ic_node_config *c)
{
    c->s2s.routes =
        ic_calloc((size_t)o->n_s2s_peers + 1, sizeof *c->s2s.routes);
    for (int i = 0; i < o->n_s2s_peers; i++) {
        const char *v = o->s2s_peers[i], *eq = strchr(v, '=');
        const char *colon = strrchr(v, ':');
        struct ic_node_s2s_route *r = &c->s2s.routes[c->s2s.n_routes];
        if (eq == NULL || colon == NULL || colon < eq)
            continue;
        r->domain = ic_strndup(v, (size_t)(eq - v));
        r->host = ic_strndup(eq + 1, (size_t)(colon - eq - 1));
        r->port = (uint16_t)atoi(colon + 1);
        c->s2s.n_routes++;
    }
}

static int write_config(const struct ic_dev_opts *o,
                        const char *dir,
                        int i,
                        char **conf_path,
                        char **data_dir)
{
    struct ic_node_config c;
    char name[64];
    int port = o->base_port + 10 * i, rc;

    ic_node_config_init(&c);
    c.node.id = (unsigned)i + 1;
    snprintf(name, sizeof name, "node%d", i + 1);
    *data_dir = path_join(dir, name);
    c.node.data_dir = ic_strdup(*data_dir);
    ic_free(c.node.domain);
    c.node.domain = ic_strdup(o->domain);
    c.node.role = strcmp(o->role, "exchange") == 0 ? IC_NODE_ROLE_EXCHANGE
                                                   : IC_NODE_ROLE_ROOT;
    c.c2s.port = (uint16_t)port;
    c.c2s.tls_port = (uint16_t)(port + 1);
    c.s2s.port = (uint16_t)(port + 2);
    c.s2s.tls_port = (uint16_t)(port + 5);
    c.s2s.dialback = true;
    c.s2s.secret = s2s_secret(dir);
    s2s_routes(o, &c);
    c.s2s.dns = o->s2s_dns ? ic_strdup(o->s2s_dns) : NULL;
    c.cluster.raft_port = (uint16_t)(port + 3);
    c.cluster.link_port = (uint16_t)(port + 4);
    snprintf(name, sizeof name, "node%d.pem", i + 1);
    c.tls.cert = path_join(dir, name);
    snprintf(name, sizeof name, "node%d.key", i + 1);
    c.tls.key = path_join(dir, name);
    c.tls.ca = path_join(dir, "ca.pem");
    c.cluster.peers = ic_calloc((size_t)o->nodes, sizeof *c.cluster.peers);
    for (int j = 0; j < o->nodes; j++)
        c.cluster.peers[j] =
            (struct ic_node_peer){(unsigned)j + 1, ic_strdup("127.0.0.1"),
                                  (uint16_t)(o->base_port + 10 * j + 3)};
    c.cluster.n_peers = (size_t)o->nodes;
    c.cluster.seed = path_join(dir, "seed.cmd");
    c.accounts.admins = ic_calloc(1, sizeof *c.accounts.admins);
    c.accounts.admins[0] = ic_strdup("admin");
    c.accounts.n_admins = 1;
    snprintf(name, sizeof name, "node%d.conf", i + 1);
    *conf_path = path_join(dir, name);
    rc = ic_node_config_write(*conf_path, &c);
    ic_node_config_free(&c);
    return rc;
}

static pid_t spawn(const char *self, const char *conf, const char *log)
{
    pid_t pid = fork();

    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0640);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execl(self, self, "run", "--config", conf, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static bool port_open(int port)
{
    struct sockaddr_in a = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok;

    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until node I accepts C2S, or fails when its process is gone. */
static bool wait_ready(pid_t pid, int port)
{
    for (int tries = 0; tries < 300 && !stop_requested; tries++) {
        int status;
        if (port_open(port))
            return true;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return false;
        sleep_ms(50);
    }
    return false;
}

static int write_cluster_json(const struct ic_dev_opts *o,
                              const char *dir,
                              const pid_t *pids,
                              char **confs,
                              char **datas,
                              json_t *acc)
{
    json_t *root = json_object(), *nodes = json_array(), *accs = json_array();
    char abs[PATH_MAX], *ca = path_join(dir, "ca.pem"), *svc, *path;
    const char *name;
    json_t *pw;
    size_t n = strlen(o->domain) + 9;
    int rc;

    svc = ic_malloc(n);
    snprintf(svc, n, "service.%s", o->domain);
    for (int i = 0; i < o->nodes; i++) {
        int port = o->base_port + 10 * i;
        json_array_append_new(
            nodes,
            json_pack("{s:i, s:i, s:s, s:i, s:i, s:i, s:i, s:s, s:s}", "id",
                      i + 1, "pid", (int)pids[i], "host", "127.0.0.1",
                      "c2s_port", port, "c2s_tls_port", port + 1, "s2s_port",
                      port + 2, "raft_port", port + 3, "config", confs[i],
                      "data_dir", datas[i]));
    }
    json_object_foreach(acc, name, pw)
    {
        char jid[1100];
        snprintf(jid, sizeof jid, "%s@%s", name, o->domain);
        json_array_append_new(
            accs, strcmp(name, "admin") == 0
                      ? json_pack("{s:s, s:O, s:b}", "jid", jid, "password", pw,
                                  "admin", 1)
                      : json_pack("{s:s, s:O}", "jid", jid, "password", pw));
    }
    json_object_set_new(root, "domain", json_string(o->domain));
    json_object_set_new(root, "service_jid", json_string(svc));
    json_object_set_new(root, "ca_cert",
                        json_string(realpath(ca, abs) ? abs : ca));
    json_object_set_new(root, "nodes", nodes);
    json_object_set_new(root, "accounts", accs);
    path = path_join(dir, "cluster.json.tmp");
    rc = json_dump_file(root, path, JSON_INDENT(2));
    if (rc == 0) {
        char *final = path_join(dir, "cluster.json");
        rc = rename(path, final);
        ic_free(final);
    }
    ic_free(path);
    ic_free(ca);
    ic_free(svc);
    json_decref(root);
    return rc == 0 ? 0 : IC_EIO;
}

/* The key type of the dev certificates: RSA-2048 unless the environment
 * says ICROOT_DEV_KEY=ec (ECDSA P-256; the benchmark gives the same files
 * to both servers it compares). A change remakes the CA and the leaves. */
static int dev_key_type(enum ic_devcerts_key *out)
{
    const char *v = getenv("ICROOT_DEV_KEY");

    *out = IC_DEVCERTS_RSA2048;
    if (v == NULL || v[0] == '\0' || ic_devcerts_key_parse(v, out) == 0)
        return 0;
    fprintf(stderr, "icroot dev: ICROOT_DEV_KEY: rsa or ec, not %s\n", v);
    return IC_EINVAL;
}

static int make_certs(const struct ic_dev_opts *o, const char *dir)
{
    enum ic_devcerts_key kt;
    char why[512];
    int rc = dev_key_type(&kt);

    if (rc != 0)
        return rc;
    rc = ic_devcerts_make_ca(dir, "icroot dev CA", kt, why, sizeof why);

    for (int i = 0; rc == 0 && i < o->nodes; i++)
        rc = ic_devcerts_make_node(dir, dir, o->domain, i + 1, kt, why,
                                   sizeof why);
    /* client certificates for SASL EXTERNAL: DIR/<account>.pem, .key */
    for (size_t i = 0; rc == 0 && i < IC_ARRAY_LEN(demo_accounts); i++) {
        char jid[512];
        snprintf(jid, sizeof jid, "%s@%s", demo_accounts[i], o->domain);
        rc = ic_devcerts_make_client(dir, dir, jid, demo_accounts[i], kt, why,
                                     sizeof why);
    }
    if (rc != 0)
        fprintf(stderr, "icroot dev: certificates: %s\n", why);
    return rc;
}

/* Whether node DATA_DIR's store holds the seed's admin account yet. */
static bool seeded(const char *data_dir)
{
    struct ic_scram_creds c;
    struct ic_store *st;
    char why[512];
    bool ok;

    if (ic_node_store_open(data_dir, false, true, &st, why, sizeof why) != 0)
        return false;
    ok = ic_node_account_creds(st, "admin", IC_SCRAM_SHA256, &c, NULL) == 0;
    ic_store_close(st);
    return ok;
}

/* Waits until every node has applied the seed (the cluster elected a
 * leader, committed the seed and replicated it), or a node died. */
static bool wait_seeded(const struct ic_dev_opts *o, char **datas, pid_t *pids)
{
    for (int tries = 0; tries < 600 && !stop_requested; tries++) {
        int done = 0;
        for (int i = 0; i < o->nodes; i++) {
            int status;
            if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
                fprintf(stderr, "icroot dev: node%d exited\n", i + 1);
                pids[i] = 0;
                return false;
            }
            done += seeded(datas[i]);
        }
        if (done == o->nodes)
            return true;
        sleep_ms(50);
    }
    return false;
}

/* Stops every live node and reaps them. */
static void stop_all(pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGTERM);
    for (int i = 0; i < n; i++)
        if (pids[i] > 0)
            waitpid(pids[i], NULL, 0);
}

static void
print_howto(const struct ic_dev_opts *o, const char *dir, json_t *acc)
{
    printf("icroot dev: %d node(s) of %s are up (data in %s)\n", o->nodes,
           o->domain, dir);
    for (int i = 0; i < o->nodes; i++)
        printf("  node%d: C2S 127.0.0.1:%d (STARTTLS), %d (direct TLS)\n",
               i + 1, o->base_port + 10 * i, o->base_port + 10 * i + 1);
    printf("  CA certificate: %s/ca.pem; catalog service: service.%s\n", dir,
           o->domain);
    printf("  accounts (passwords in %s/cluster.json): ", dir);
    {
        const char *name;
        json_t *pw;
        json_object_foreach(acc, name, pw) printf("%s@%s ", name, o->domain);
    }
    printf("\n  Ctrl-C stops every node.\n");
    if (o->nodes > 1)
        printf("  The nodes form one Raft cluster: any node takes writes, "
               "every node answers queries.\n");
    fflush(stdout);
}

static void supervise(pid_t *pids, int n)
{
    int live = n;

    while (!stop_requested && live > 0) {
        int status;
        pid_t p = waitpid(-1, &status, 0);
        if (p < 0 && errno == EINTR)
            continue;
        if (p < 0)
            break;
        for (int i = 0; i < n; i++)
            if (pids[i] == p) {
                fprintf(stderr, "icroot dev: node%d (pid %d) exited\n", i + 1,
                        (int)p);
                pids[i] = 0;
                live--;
            }
    }
}

int ic_node_dev(const struct ic_dev_opts *o)
{
    char dir[PATH_MAX], self[PATH_MAX];
    char *confs[MAX_NODES] = {0}, *datas[MAX_NODES] = {0};
    pid_t pids[MAX_NODES] = {0};
    struct sigaction sa = {0};
    json_t *acc;
    ssize_t sl;
    int rc = 0, started = 0;

    if (mkdir(o->dir, 0750) != 0 && errno != EEXIST) {
        fprintf(stderr, "icroot dev: %s: %s\n", o->dir, strerror(errno));
        return 1;
    }
    if (realpath(o->dir, dir) == NULL ||
        (sl = readlink("/proc/self/exe", self, sizeof self - 1)) < 0) {
        fprintf(stderr, "icroot dev: %s: %s\n", o->dir, strerror(errno));
        return 1;
    }
    self[sl] = '\0';
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    acc = accounts(dir);
    rc = make_certs(o, dir);
    if (rc == 0)
        rc = ic_dev_make_seed(o, dir, acc);
    for (int i = 0; rc == 0 && i < o->nodes; i++)
        rc = write_config(o, dir, i, &confs[i], &datas[i]);
    for (int i = 0; rc == 0 && i < o->nodes; i++) {
        char log[64], *lp;
        snprintf(log, sizeof log, "node%d.log", i + 1);
        lp = path_join(dir, log);
        pids[i] = spawn(self, confs[i], lp);
        ic_free(lp);
        started++;
        if (pids[i] < 0 || !wait_ready(pids[i], o->base_port + 10 * i)) {
            fprintf(stderr,
                    "icroot dev: node%d did not start (see %s/"
                    "node%d.log)\n",
                    i + 1, dir, i + 1);
            rc = IC_EIO;
        }
    }
    if (rc == 0 && !wait_seeded(o, datas, pids)) {
        fprintf(stderr, "icroot dev: the cluster did not apply its seed (the "
                        "catalog and accounts) in time; see the node logs\n");
        rc = IC_ETIMEDOUT;
    }
    if (rc == 0)
        rc = write_cluster_json(o, dir, pids, confs, datas, acc);
    if (rc == 0) {
        print_howto(o, dir, acc);
        supervise(pids, o->nodes);
    }
    stop_all(pids, started);
    for (int i = 0; i < o->nodes; i++) {
        ic_free(confs[i]);
        ic_free(datas[i]);
    }
    json_decref(acc);
    return rc == 0 ? 0 : 1;
}
