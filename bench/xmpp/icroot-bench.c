/*
 * icroot-bench - an XMPP load generator in C on libuv and OpenSSL. It
 * speaks plain standard XMPP (RFC 6120: STARTTLS or direct TLS, SASL
 * PLAIN / SCRAM-SHA-1 / SCRAM-SHA-256, resource binding; XEP-0199 pings;
 * XEP-0050 commands) so it runs against any server. One JSON line per run;
 * bench/xmpp/xmpp-bench.sh runs every scenario against icroot and Prosody
 * and prints the ratios (docs/benchmarks-xmpp.md).
 *
 *   icroot-bench --scenario login|ping|query|message|idle --host H --port P
 *                --domain D --ca CA.pem (--user-prefix P --users N
 *                --password PW | --accounts FILE) [options]
 *   icroot-bench --create-accounts --accounts cluster.json
 *                --user-prefix P --users N --password PW ...
 *
 * The main thread keeps the clock: it waits for every worker's connections
 * to be up (ramp), lets the traffic go, waits --warmup, then counts for
 * --duration while reading its own CPU time (getrusage-equivalent
 * CLOCK_PROCESS_CPUTIME_ID, all threads) and the server's CPU time and RSS
 * from /proc/--server-pid.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>

#include "bench.h"

static void usage(FILE *f)
{
    fputs(
        "usage: icroot-bench --scenario login|ping|query|message|idle\n"
        "                    --host ADDR --port P --domain D --ca FILE\n"
        "                    (--user-prefix P --users N --password PW |\n"
        "                     --accounts FILE) [options]\n"
        "       icroot-bench --create-accounts --accounts cluster.json\n"
        "                    --user-prefix P --users N --password PW [...]\n"
        "       icroot-bench --compare RESULTS.jsonl\n"
        "\n"
        "  --host ADDR         server address (IPv4; default 127.0.0.1)\n"
        "  --port P            C2S port (STARTTLS; default 5222)\n"
        "  --direct-tls        TLS from the first byte (XEP-0368 port)\n"
        "  --domain D          XMPP domain, also the TLS name checked\n"
        "  --ca FILE           CA certificates the server must chain to\n"
        "  --mech M            plain, scram-sha-1 (default), scram-sha-256\n"
        "  --no-scram-cache    compute SaltedPassword on every login\n"
        "  --no-cert-cache     verify the server's chain on every login\n"
        "  --user-prefix P     accounts P1..PN (with --users, --password)\n"
        "  --users N           number of accounts (default 200)\n"
        "  --password PW       their password\n"
        "  --accounts FILE     JSON: {\"accounts\": [{\"jid\", \"password\",\n"
        "                      \"admin\"}]} as DIR/cluster.json, or the array\n"
        "  --resource PREFIX   ask for resource PREFIX<i> (default: the\n"
        "                      server's choice)\n"
        "  --conns N           connections (login: concurrent logins)\n"
        "  --window N          requests in flight per connection (1)\n"
        "  --threads N         client threads, one loop each (1)\n"
        "  --ramp N            logins at once while connecting (200)\n"
        "  --sources N         source addresses 127.0.0.1.. (default:\n"
        "                      one per 20,000 connections)\n"
        "  --duration S        measured seconds (10)\n"
        "  --warmup S          traffic before measuring (1)\n"
        "  --settle S          idle: wait before reading RSS (2)\n"
        "  --timeout S         most seconds the ramp-up may take (300)\n"
        "  --service JID       catalog service (query, create-accounts)\n"
        "  --body N            message body bytes (64)\n"
        "  --pairs             message: pairs instead of a ring\n"
        "  --presence          send <presence/> after binding\n"
        "  --server-pid PID    report the server's CPU and RSS\n"
        "  --label NAME        'server' field of the JSON line\n"
        "  --case NAME         'case' field of the JSON line (default: the\n"
        "                      scenario)\n"
        "  --verbose           errors on stderr\n"
        "\n"
        "Message across two servers (S2S; bench/s2s/s2s-bench.sh):\n"
        "  --to-domain D       --conns N sender connections on the server\n"
        "                      above each send to one of N receiver\n"
        "                      connections on server D (latency: send\n"
        "                      to receipt, one clock); the next message\n"
        "                      leaves when the receiver got one\n"
        "  --to-host ADDR      its address (default: --host)\n"
        "  --to-port P         its C2S port (default 5222)\n"
        "  --to-ca FILE        its CA file (default: --ca)\n"
        "  --to-accounts FILE  its accounts (default: the same names and\n"
        "                      password as on the first server)\n"
        "  --to-server-pid PID report that server's CPU too\n"
        "\n"
        "Query options:\n"
        "  --recursive         <constraints recursive='true'>\n"
        "  --vary N            N distinct constraint sets in turn (the\n"
        "                      availability 99.99 + k * 1e-7, k = 1..N,\n"
        "                      same matches); 0: the fixed seed query\n"
        "  --expect NAMES      the <cloudName>s an answer must have,\n"
        "                      comma-separated (default cloud2,cloud5)\n",
        f);
}

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_DIRECT,
    OPT_DOMAIN,
    OPT_CA,
    OPT_MECH,
    OPT_NOCACHE,
    OPT_NOCERTCACHE,
    OPT_PREFIX,
    OPT_USERS,
    OPT_PASSWORD,
    OPT_ACCOUNTS,
    OPT_RESOURCE,
    OPT_SCENARIO,
    OPT_CONNS,
    OPT_WINDOW,
    OPT_THREADS,
    OPT_RAMP,
    OPT_SOURCES,
    OPT_DURATION,
    OPT_WARMUP,
    OPT_SETTLE,
    OPT_TIMEOUT,
    OPT_SERVICE,
    OPT_BODY,
    OPT_PAIRS,
    OPT_PRESENCE,
    OPT_PID,
    OPT_LABEL,
    OPT_CREATE,
    OPT_CASE,
    OPT_VERBOSE,
    OPT_TO_HOST,
    OPT_TO_PORT,
    OPT_TO_DOMAIN,
    OPT_TO_CA,
    OPT_TO_ACCOUNTS,
    OPT_TO_PID,
    OPT_RECURSIVE,
    OPT_VARY,
    OPT_EXPECT,
};

static const struct option long_opts[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"direct-tls", no_argument, NULL, OPT_DIRECT},
    {"domain", required_argument, NULL, OPT_DOMAIN},
    {"ca", required_argument, NULL, OPT_CA},
    {"mech", required_argument, NULL, OPT_MECH},
    {"no-scram-cache", no_argument, NULL, OPT_NOCACHE},
    {"no-cert-cache", no_argument, NULL, OPT_NOCERTCACHE},
    {"user-prefix", required_argument, NULL, OPT_PREFIX},
    {"users", required_argument, NULL, OPT_USERS},
    {"password", required_argument, NULL, OPT_PASSWORD},
    {"accounts", required_argument, NULL, OPT_ACCOUNTS},
    {"resource", required_argument, NULL, OPT_RESOURCE},
    {"scenario", required_argument, NULL, OPT_SCENARIO},
    {"conns", required_argument, NULL, OPT_CONNS},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"ramp", required_argument, NULL, OPT_RAMP},
    {"sources", required_argument, NULL, OPT_SOURCES},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"settle", required_argument, NULL, OPT_SETTLE},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"service", required_argument, NULL, OPT_SERVICE},
    {"body", required_argument, NULL, OPT_BODY},
    {"pairs", no_argument, NULL, OPT_PAIRS},
    {"presence", no_argument, NULL, OPT_PRESENCE},
    {"server-pid", required_argument, NULL, OPT_PID},
    {"label", required_argument, NULL, OPT_LABEL},
    {"create-accounts", no_argument, NULL, OPT_CREATE},
    {"case", required_argument, NULL, OPT_CASE},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"to-host", required_argument, NULL, OPT_TO_HOST},
    {"to-port", required_argument, NULL, OPT_TO_PORT},
    {"to-domain", required_argument, NULL, OPT_TO_DOMAIN},
    {"to-ca", required_argument, NULL, OPT_TO_CA},
    {"to-accounts", required_argument, NULL, OPT_TO_ACCOUNTS},
    {"to-server-pid", required_argument, NULL, OPT_TO_PID},
    {"recursive", no_argument, NULL, OPT_RECURSIVE},
    {"vary", required_argument, NULL, OPT_VARY},
    {"expect", required_argument, NULL, OPT_EXPECT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char *const scenario_names[] = {"login",   "ping", "query",
                                             "message", "idle", "create"};

static unsigned num(const char *opt, const char *v, unsigned lo, unsigned hi)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);

    if (*v == '\0' || *end != '\0' || n < lo || n > hi) {
        fprintf(stderr, "icroot-bench: bad value '%s' for --%s (%u..%u)\n", v,
                opt, lo, hi);
        exit(2);
    }
    return (unsigned)n;
}

static double seconds(const char *opt, const char *v)
{
    char *end;
    double d = strtod(v, &end);

    if (*v == '\0' || *end != '\0' || d < 0 || d > 86400) {
        fprintf(stderr, "icroot-bench: bad value '%s' for --%s\n", v, opt);
        exit(2);
    }
    return d;
}

static int
pick(const char *opt, const char *v, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return (int)i;
    fprintf(stderr, "icroot-bench: unknown --%s '%s'\n", opt, v);
    exit(2);
}

static void parse(int argc, char **argv, struct bench_opts *o)
{
    static const char *const mechs[] = {"plain", "scram-sha-1",
                                        "scram-sha-256"};
    int ch;

    *o = (struct bench_opts){
        .host = "127.0.0.1",
        .port = 5222,
        .mech = MECH_SCRAM_SHA1,
        .users = 200,
        .conns = 100,
        .window = 1,
        .threads = 1,
        .ramp = 200,
        .body = 64,
        .duration = 10,
        .warmup = 1,
        .settle = 2,
        .timeout = 300,
        .scenario = SC_PING,
        .to_port = 5222,
    };
    while ((ch = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        switch (ch) {
        case OPT_HOST:
            o->host = optarg;
            break;
        case OPT_PORT:
            o->port = (int)num("port", optarg, 1, 65535);
            break;
        case OPT_DIRECT:
            o->direct_tls = true;
            break;
        case OPT_DOMAIN:
            o->domain = optarg;
            break;
        case OPT_CA:
            o->ca = optarg;
            break;
        case OPT_MECH:
            o->mech = (enum bench_mech)pick("mech", optarg, mechs, 3);
            break;
        case OPT_NOCACHE:
            o->no_cache = true;
            break;
        case OPT_NOCERTCACHE:
            o->no_cert_cache = true;
            break;
        case OPT_PREFIX:
            o->user_prefix = optarg;
            break;
        case OPT_USERS:
            o->users = num("users", optarg, 1, 10000000);
            break;
        case OPT_PASSWORD:
            o->password = optarg;
            break;
        case OPT_ACCOUNTS:
            o->accounts_file = optarg;
            break;
        case OPT_RESOURCE:
            o->resource = optarg;
            break;
        case OPT_SCENARIO:
            o->scenario = (enum bench_scenario)pick("scenario", optarg,
                                                    scenario_names, SC_CREATE);
            break;
        case OPT_CONNS:
            o->conns = num("conns", optarg, 1, 2000000);
            break;
        case OPT_WINDOW:
            o->window = num("window", optarg, 1, 10000);
            break;
        case OPT_THREADS:
            o->threads = num("threads", optarg, 1, 64);
            break;
        case OPT_RAMP:
            o->ramp = num("ramp", optarg, 1, 1000000);
            break;
        case OPT_SOURCES:
            o->sources = num("sources", optarg, 1, 65000);
            break;
        case OPT_DURATION:
            o->duration = seconds("duration", optarg);
            break;
        case OPT_WARMUP:
            o->warmup = seconds("warmup", optarg);
            break;
        case OPT_SETTLE:
            o->settle = seconds("settle", optarg);
            break;
        case OPT_TIMEOUT:
            o->timeout = seconds("timeout", optarg);
            break;
        case OPT_SERVICE:
            o->service = optarg;
            break;
        case OPT_BODY:
            o->body = num("body", optarg, 0, 256);
            break;
        case OPT_PAIRS:
            o->pairs = true;
            break;
        case OPT_PRESENCE:
            o->presence = true;
            break;
        case OPT_PID:
            o->server_pid = (int)num("server-pid", optarg, 1, 1u << 30);
            break;
        case OPT_LABEL:
            o->label = optarg;
            break;
        case OPT_CREATE:
            o->scenario = SC_CREATE;
            break;
        case OPT_CASE:
            o->case_name = optarg;
            break;
        case OPT_VERBOSE:
            o->verbose = true;
            break;
        case OPT_TO_HOST:
            o->to_host = optarg;
            break;
        case OPT_TO_PORT:
            o->to_port = (int)num("to-port", optarg, 1, 65535);
            break;
        case OPT_TO_DOMAIN:
            o->to_domain = optarg;
            break;
        case OPT_TO_CA:
            o->to_ca = optarg;
            break;
        case OPT_TO_ACCOUNTS:
            o->to_accounts_file = optarg;
            break;
        case OPT_TO_PID:
            o->to_server_pid = (int)num("to-server-pid", optarg, 1, 1u << 30);
            break;
        case OPT_RECURSIVE:
            o->recursive = true;
            break;
        case OPT_VARY:
            o->vary = num("vary", optarg, 0, 89999);
            break;
        case OPT_EXPECT:
            o->expect = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc || o->domain == NULL || o->ca == NULL) {
        usage(stderr);
        exit(2);
    }
    if (o->to_domain != NULL) {
        if (o->scenario != SC_MESSAGE) {
            fputs("icroot-bench: --to-domain is for --scenario message\n",
                  stderr);
            exit(2);
        }
        o->cross = true;
        o->conns *= 2; /* a sender and a receiver per pair */
        if (o->to_host == NULL)
            o->to_host = o->host;
        if (o->to_ca == NULL)
            o->to_ca = o->ca;
    }
}

/* ---- accounts ---- */

static void add_account(struct bench_run *r,
                        size_t *cap,
                        const char *local,
                        const char *password,
                        bool admin)
{
    struct bench_account *a;

    if (r->n_accounts == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        r->accounts = realloc(r->accounts, *cap * sizeof *r->accounts);
        if (r->accounts == NULL)
            abort();
    }
    a = &r->accounts[r->n_accounts++];
    memset(a, 0, sizeof *a);
    a->local = strdup(local);
    a->password = strdup(password);
    a->admin = admin;
    uv_mutex_init(&a->lock);
}

/* The accounts of FILE; WANT_ADMIN picks the admin ones or the others. */
static int load_accounts(struct bench_run *r,
                         size_t *cap,
                         const char *file,
                         bool want_admin)
{
    json_error_t err;
    json_t *root = json_load_file(file, 0, &err), *arr, *a;
    size_t i;

    if (root == NULL) {
        fprintf(stderr, "icroot-bench: %s:%d: %s\n", file, err.line, err.text);
        return -1;
    }
    arr = json_is_array(root) ? root : json_object_get(root, "accounts");
    json_array_foreach(arr, i, a)
    {
        const char *jid = json_string_value(json_object_get(a, "jid"));
        const char *pw = json_string_value(json_object_get(a, "password"));
        bool admin = json_is_true(json_object_get(a, "admin"));
        char local[256];
        const char *at;

        if (jid == NULL || pw == NULL || admin != want_admin)
            continue;
        at = strchr(jid, '@');
        snprintf(local, sizeof local, "%.*s",
                 (int)(at ? (size_t)(at - jid) : strlen(jid)), jid);
        add_account(r, cap, local, pw, admin);
    }
    json_decref(root);
    return 0;
}

static int accounts(struct bench_run *r, struct bench_opts *o)
{
    size_t cap = 0;
    char name[256];

    if (o->scenario == SC_CREATE) {
        if (o->accounts_file == NULL || o->user_prefix == NULL ||
            o->password == NULL || o->service == NULL) {
            fputs("icroot-bench: --create-accounts needs --accounts (with "
                  "an admin), --user-prefix, --password, --service\n",
                  stderr);
            return -1;
        }
        if (load_accounts(r, &cap, o->accounts_file, true) != 0)
            return -1;
    } else if (o->user_prefix != NULL) {
        if (o->password == NULL) {
            fputs("icroot-bench: --user-prefix needs --password\n", stderr);
            return -1;
        }
        for (unsigned i = 1; i <= o->users; i++) {
            snprintf(name, sizeof name, "%s%u", o->user_prefix, i);
            add_account(r, &cap, name, o->password, false);
        }
    } else if (o->accounts_file != NULL) {
        if (load_accounts(r, &cap, o->accounts_file, false) != 0)
            return -1;
    }
    if (r->n_accounts == 0) {
        fputs("icroot-bench: no accounts (--user-prefix or --accounts)\n",
              stderr);
        return -1;
    }
    r->to_accounts = r->accounts;
    r->n_to_accounts = r->n_accounts;
    if (o->cross && o->to_accounts_file != NULL) {
        struct bench_run b = {0};

        cap = 0;
        if (load_accounts(&b, &cap, o->to_accounts_file, false) != 0)
            return -1;
        if (b.n_accounts == 0) {
            fputs("icroot-bench: no accounts in --to-accounts\n", stderr);
            return -1;
        }
        r->to_accounts = b.accounts;
        r->n_to_accounts = b.n_accounts;
    }
    return 0;
}

/* ---- workers ---- */

static void on_check(uv_check_t *h)
{
    struct bench_worker *w = h->data;
    struct bench_conn *c;

    while ((c = w->dirty) != NULL) {
        w->dirty = c->next_dirty;
        c->in_list = false;
        bench_conn_flush(c);
    }
}

static void on_force(uv_timer_t *t)
{
    struct bench_worker *w = t->data;

    for (unsigned i = 0; i < w->count; i++)
        if (w->conns[i] != NULL)
            bench_conn_close(w->conns[i]);
}

static void begin_stop(struct bench_worker *w)
{
    w->stopping = true;
    if (w->open == 0) {
        bench_worker_done(w);
        return;
    }
    for (unsigned i = 0; i < w->count; i++)
        if (w->conns[i] != NULL)
            bench_conn_end(w->conns[i]);
    uv_timer_start(&w->force, on_force, 3000, 0);
}

void bench_worker_done(struct bench_worker *w)
{
    if (uv_is_closing((uv_handle_t *)&w->tick))
        return;
    uv_close((uv_handle_t *)&w->tick, NULL);
    uv_close((uv_handle_t *)&w->flush, NULL);
    uv_close((uv_handle_t *)&w->force, NULL);
}

/* Connections still logging in after 60 s have failed. */
static void check_timeouts(struct bench_worker *w)
{
    uint64_t now = bench_now_ns();

    for (unsigned i = 0; i < w->count && w->in_login > 0; i++) {
        struct bench_conn *c = w->conns[i];
        if (c != NULL && !c->closing && c->state < ST_READY &&
            now - c->t_start > 60000000000u) {
            w->st.conn_errors++;
            bench_error(w, "conn %u: login timed out", c->idx);
            c->failed = true;
            bench_conn_close(c);
        }
    }
}

static void on_tick(uv_timer_t *t)
{
    struct bench_worker *w = t->data;
    struct bench_run *r = w->run;
    static _Thread_local unsigned ticks;

    if (w->stopping)
        return;
    if (atomic_load(&r->stop)) {
        if (w->measure_phase == 1) {
            w->measure_phase = 2;
            w->idle_ns = uv_metrics_idle_time(&w->loop) - w->idle0;
            w->span_ns = bench_now_ns() - w->t0;
        }
        begin_stop(w);
        return;
    }
    if (!w->traffic && atomic_load(&r->go))
        bench_traffic_start(w);
    if (!w->reported_ready &&
        (r->o->scenario == SC_LOGIN || w->up == w->count)) {
        w->reported_ready = true;
        atomic_fetch_add(&r->ready, 1);
    }
    if (w->measure_phase == 0 && atomic_load(&r->measuring)) {
        w->measure_phase = 1;
        w->idle0 = uv_metrics_idle_time(&w->loop);
        w->t0 = bench_now_ns();
    } else if (w->measure_phase == 1 && !atomic_load(&r->measuring)) {
        w->measure_phase = 2;
        w->idle_ns = uv_metrics_idle_time(&w->loop) - w->idle0;
        w->span_ns = bench_now_ns() - w->t0;
    }
    ticks++;
    if (ticks % 20 == 0)
        bench_worker_fill(w);
    if (ticks % 200 == 0)
        check_timeouts(w);
}

static void worker_main(void *arg)
{
    struct bench_worker *w = arg;

    uv_loop_init(&w->loop);
    uv_loop_configure(&w->loop, UV_METRICS_IDLE_TIME);
    uv_check_init(&w->loop, &w->flush);
    w->flush.data = w;
    uv_check_start(&w->flush, on_check);
    uv_timer_init(&w->loop, &w->tick);
    w->tick.data = w;
    uv_timer_start(&w->tick, on_tick, 5, 5);
    uv_timer_init(&w->loop, &w->force);
    w->force.data = w;
    bench_worker_fill(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
}

/* ---- the run ---- */

static void sleep_s(double s)
{
    struct timespec ts;

    if (s <= 0)
        return;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
}

/* Sleeps S seconds, in steps, returning early once the run stops. */
static void wait_s(struct bench_run *r, double s)
{
    uint64_t end = bench_now_ns() + (uint64_t)(s * 1e9);

    while (bench_now_ns() < end && !atomic_load(&r->stop))
        sleep_s(0.01);
}

/* One descriptor per connection: raises the soft limit, and the hard one
 * where allowed (CAP_SYS_RESOURCE). Fails when there are too few. */
static int raise_nofile(unsigned conns)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)conns + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return 0;
    rl.rlim_cur = want;
    if (rl.rlim_max < want)
        rl.rlim_max = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        return 0;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur >= want)
        return 0;
    fprintf(stderr,
            "icroot-bench: %u connections need %lu open files; the hard "
            "limit is %lu and cannot be raised here\n",
            conns, (unsigned long)want, (unsigned long)rl.rlim_max);
    return -1;
}

/* The server certificate verified in this run: a later handshake that
 * presents the same certificate (DER-identical, compared by X509_cmp)
 * skips building and checking the chain again, as a client's certificate
 * verification cache does. The handshake's own signature (CertificateVerify,
 * the proof of the private key) is checked every time by OpenSSL. */
static struct {
    pthread_mutex_t lock;
    X509 *leaf;
} verified = {PTHREAD_MUTEX_INITIALIZER, NULL};

static int verify_cached(X509_STORE_CTX *x, void *arg)
{
    X509 *leaf = X509_STORE_CTX_get0_cert(x);
    bool hit;
    int rc;

    (void)arg;
    pthread_mutex_lock(&verified.lock);
    hit = verified.leaf != NULL && leaf != NULL &&
          X509_cmp(verified.leaf, leaf) == 0;
    pthread_mutex_unlock(&verified.lock);
    if (hit) {
        X509_STORE_CTX_set_error(x, X509_V_OK);
        return 1;
    }
    rc = X509_verify_cert(x);
    if (rc == 1 && leaf != NULL && X509_up_ref(leaf) == 1) {
        pthread_mutex_lock(&verified.lock);
        X509_free(verified.leaf);
        verified.leaf = leaf;
        pthread_mutex_unlock(&verified.lock);
    }
    return rc;
}

static SSL_CTX *tls_context(const char *ca, bool cert_cache)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        fprintf(stderr, "icroot-bench: cannot load CA file %s\n", ca);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cert_cache)
        SSL_CTX_set_cert_verify_callback(ctx, verify_cached, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return ctx;
}

struct results {
    double loop_idle; /* mean share of the workers' time in epoll */
    long gen_rss;     /* the generator's own RSS with every connection up */
    char tls_info[96];
    double ramp_s, ramp_cpu, ramp_server_cpu;
    double window_s, cpu, server_cpu, host_busy, to_server_cpu;
    long rss_before, rss_half, rss_after, rss_end;
    unsigned up_half;
    unsigned up_at_start, up_at_end;
    struct bench_stats st;
};

static void json_str(const char *s)
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

static void print_json(const struct bench_opts *o, const struct results *x)
{
    const struct bench_stats *st = &x->st;
    double ops = (double)st->ops;

    printf("{\"case\":");
    json_str(o->case_name ? o->case_name : scenario_names[o->scenario]);
    printf(",\"scenario\":\"%s\",\"server\":", scenario_names[o->scenario]);
    json_str(o->label ? o->label : o->host);
    printf(",\"tls\":");
    json_str(x->tls_info[0] ? x->tls_info : "none");
    printf(",\"mech\":\"%s\",\"transport\":\"%s\",\"conns\":%u,\"window\":%u,"
           "\"threads\":%u",
           bench_mech_name(o->mech), o->direct_tls ? "direct" : "starttls",
           o->conns, o->window, o->threads);
    if (o->cross) {
        printf(",\"pairs\":%u,\"to\":", o->conns / 2);
        json_str(o->to_domain);
    }
    if (o->scenario == SC_QUERY && (o->recursive || o->vary))
        printf(",\"recursive\":%s,\"vary\":%u,\"sent_total\":%llu",
               o->recursive ? "true" : "false", o->vary,
               (unsigned long long)st->sent);
    printf(",\"duration_s\":%.3f,\"ops\":%llu,\"rate\":%.1f", x->window_s,
           (unsigned long long)st->ops,
           x->window_s > 0 ? ops / x->window_s : 0.0);
    printf(",\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f",
           (double)bench_hist_quantile(&st->lat, 0.5) / 1e3,
           (double)bench_hist_quantile(&st->lat, 0.9) / 1e3,
           (double)bench_hist_quantile(&st->lat, 0.99) / 1e3);
    printf(",\"errors\":%llu,\"conn_errors\":%llu,\"auth_failures\":%llu",
           (unsigned long long)st->errors, (unsigned long long)st->conn_errors,
           (unsigned long long)st->auth_failures);
    printf(",\"gen_cpu_s\":%.3f,\"gen_cpu_share\":%.3f", x->cpu,
           x->window_s > 0 ? x->cpu / x->window_s : 0.0);
    if (x->loop_idle >= 0)
        printf(",\"gen_loop_idle_share\":%.3f", x->loop_idle);
    if (ops > 0)
        printf(",\"gen_cpu_us_per_op\":%.2f", x->cpu / ops * 1e6);
    if (x->server_cpu >= 0) {
        printf(",\"server_cpu_s\":%.2f,\"server_cpu_share\":%.3f",
               x->server_cpu,
               x->window_s > 0 ? x->server_cpu / x->window_s : 0.0);
        if (ops > 0)
            printf(",\"server_cpu_us_per_op\":%.2f", x->server_cpu / ops * 1e6);
    }
    if (x->to_server_cpu >= 0) {
        printf(",\"to_server_cpu_s\":%.2f,\"to_server_cpu_share\":%.3f",
               x->to_server_cpu,
               x->window_s > 0 ? x->to_server_cpu / x->window_s : 0.0);
        if (ops > 0)
            printf(",\"to_server_cpu_us_per_op\":%.2f",
                   x->to_server_cpu / ops * 1e6);
    }
    if (x->host_busy >= 0 && x->window_s > 0)
        printf(",\"host_busy_cores\":%.2f,\"other_cpu_cores\":%.2f",
               x->host_busy / x->window_s,
               (x->host_busy - x->cpu -
                (x->server_cpu > 0 ? x->server_cpu : 0) -
                (x->to_server_cpu > 0 ? x->to_server_cpu : 0)) /
                   x->window_s);
    printf(",\"conns_up\":%u,\"ramp_s\":%.2f", x->up_at_start, x->ramp_s);
    if (o->scenario == SC_IDLE) {
        printf(",\"ramp_logins_per_s\":%.1f,\"ramp_gen_cpu_s\":%.2f",
               x->ramp_s > 0 ? x->up_at_start / x->ramp_s : 0.0, x->ramp_cpu);
        if (x->ramp_server_cpu >= 0 && x->up_at_start > 0)
            printf(",\"ramp_server_cpu_us_per_login\":%.1f",
                   x->ramp_server_cpu / x->up_at_start * 1e6);
        printf(",\"conns_held\":%u,\"gen_rss_kib\":%ld", x->up_at_end,
               x->gen_rss);
        if (x->rss_before >= 0 && x->rss_after >= 0 && x->up_at_start > 0)
            printf(",\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,"
                   "\"rss_end_kib\":%ld,\"rss_per_conn_kib\":%.2f",
                   x->rss_before, x->rss_after, x->rss_end,
                   (double)(x->rss_after - x->rss_before) / x->up_at_start);
        if (x->rss_half > 0 && x->up_at_start > x->up_half)
            printf(",\"rss_half_kib\":%ld,\"conns_half\":%u,"
                   "\"rss_per_conn_marginal_kib\":%.2f",
                   x->rss_half, x->up_half,
                   (double)(x->rss_after - x->rss_half) /
                       (x->up_at_start - x->up_half));
    } else if (x->rss_end >= 0) {
        printf(",\"server_rss_kib\":%ld", x->rss_end);
    }
    if (st->first_error[0]) {
        printf(",\"first_error\":");
        json_str(st->first_error);
    }
    printf("}\n");
    fflush(stdout);
}

static void add_stats(struct bench_stats *into, const struct bench_stats *s)
{
    bench_hist_merge(&into->lat, &s->lat);
    into->ops += s->ops;
    into->errors += s->errors;
    into->conn_errors += s->conn_errors;
    into->auth_failures += s->auth_failures;
    into->sent += s->sent;
    if (into->first_error[0] == '\0')
        memcpy(into->first_error, s->first_error, sizeof s->first_error);
}

/* The main thread's part: the clock and the measures. */
/* Waits until WANT connections are up (or every worker is ready when WANT
 * is 0); false on the timeout or too many failures. */
static bool wait_up(struct bench_run *r, unsigned want, uint64_t t0)
{
    const struct bench_opts *o = r->o;

    while (want ? atomic_load(&r->connected) < want
                : atomic_load(&r->ready) < o->threads) {
        if (bench_now_ns() - t0 > (uint64_t)(o->timeout * 1e9) ||
            atomic_load(&r->stop))
            return false;
        if (atomic_load(&r->failures) > o->conns / 2 + 100) {
            fputs("icroot-bench: too many failed connections, giving up\n",
                  stderr);
            return false;
        }
        sleep_s(0.005);
    }
    return true;
}

/* idle: the server's RSS with half the connections up, then the rest of
 * the ramp (the pause is not counted in its time). */
static bool half_way(struct bench_run *r,
                     struct results *x,
                     unsigned half,
                     uint64_t t0,
                     double *pause)
{
    uint64_t p0;
    bool ok = wait_up(r, half, t0);

    p0 = bench_now_ns();
    if (ok) {
        wait_s(r, r->o->settle);
        x->rss_half = bench_proc_rss_kib(r->o->server_pid);
        x->up_half = atomic_load(&r->connected);
    }
    atomic_store(&r->ramp_permille, 1000);
    *pause = (double)(bench_now_ns() - p0) / 1e9;
    return ok;
}

static void conduct(struct bench_run *r, struct results *x, unsigned half)
{
    const struct bench_opts *o = r->o;
    int pid = o->server_pid;
    uint64_t t0 = bench_now_ns(), t1;
    double c0 = bench_cpu_self(), s0 = bench_proc_cpu(pid), h0 = -1;
    double pause = 0, to0 = -1;

    bool ok = half == 0 || half_way(r, x, half, t0, &pause);

    ok = ok && wait_up(r, 0, t0);
    x->ramp_s = (double)(bench_now_ns() - t0) / 1e9 - pause;
    x->ramp_cpu = bench_cpu_self() - c0;
    x->ramp_server_cpu = s0 >= 0 ? bench_proc_cpu(pid) - s0 : -1;
    if (o->scenario == SC_IDLE) {
        wait_s(r, o->settle);
        x->rss_after = bench_proc_rss_kib(pid);
        x->gen_rss = bench_proc_rss_kib(getpid());
    }
    x->up_at_start = atomic_load(&r->connected);
    if (!ok && x->up_at_start == 0) { /* nothing to measure */
        atomic_store(&r->stop, 1);
        return;
    }
    atomic_store(&r->go, 1);
    if (o->scenario == SC_CREATE) {
        wait_s(r, o->timeout);
        x->window_s = (double)(bench_now_ns() - t0) / 1e9;
        atomic_store(&r->stop, 1);
        return;
    }
    wait_s(r, o->warmup);
    h0 = bench_host_busy();
    c0 = bench_cpu_self();
    s0 = bench_proc_cpu(pid);
    to0 = bench_proc_cpu(o->to_server_pid);
    t1 = bench_now_ns();
    atomic_store(&r->measuring, 1);
    wait_s(r, o->duration);
    atomic_store(&r->measuring, 0);
    x->window_s = (double)(bench_now_ns() - t1) / 1e9;
    x->cpu = bench_cpu_self() - c0;
    x->server_cpu = s0 >= 0 ? bench_proc_cpu(pid) - s0 : -1;
    x->to_server_cpu = to0 >= 0 ? bench_proc_cpu(o->to_server_pid) - to0 : -1;
    x->host_busy = h0 >= 0 ? bench_host_busy() - h0 : -1;
    x->up_at_end = atomic_load(&r->connected);
    x->rss_end = bench_proc_rss_kib(pid);
    atomic_store(&r->stop, 1);
}

int main(int argc, char **argv)
{
    static struct bench_opts o;
    static struct bench_run r;
    static struct results x;
    struct bench_worker *workers;
    unsigned per, half = 0;

    if (argc == 3 && strcmp(argv[1], "--compare") == 0)
        return bench_compare(argv[2]);
    parse(argc, argv, &o);
    if (o.scenario == SC_CREATE) {
        o.conns = 1;
        o.threads = 1;
        if (o.window == 1)
            o.window = 16;
    }
    if (o.scenario == SC_QUERY && o.service == NULL) {
        fputs("icroot-bench: --scenario query needs --service\n", stderr);
        return 2;
    }
    if (o.threads > o.conns)
        o.threads = o.conns;
    if (o.cross && o.threads > o.conns / 2)
        o.threads = o.conns / 2;
    if (o.sources == 0)
        o.sources = o.scenario == SC_LOGIN ? 1 : (o.conns + 19999) / 20000;
    r.o = &o;
    if (accounts(&r, &o) != 0)
        return 2;
    if (raise_nofile(o.conns) != 0)
        return 1;
    r.tls = tls_context(o.ca, !o.no_cert_cache);
    if (r.tls == NULL)
        return 1;
    r.to_tls = r.tls;
    if (o.cross && strcmp(o.to_ca, o.ca) != 0 &&
        (r.to_tls = tls_context(o.to_ca, !o.no_cert_cache)) == NULL)
        return 1;
    r.jids = calloc(o.conns, sizeof *r.jids);
    workers = calloc(o.threads, sizeof *workers);
    if (r.jids == NULL || workers == NULL)
        abort();
    x.rss_before = bench_proc_rss_kib(o.server_pid);
    x.rss_after = x.rss_end = -1;
    x.host_busy = -1;
    x.to_server_cpu = -1;
    per = o.conns / o.threads;
    if (o.cross)
        per &= ~1u; /* a pair's two connections in one worker */
    /* idle: a first stop at half way (see conduct) */
    atomic_store(&r.ramp_permille, o.scenario == SC_IDLE ? 500 : 1000);
    for (unsigned i = 0; i < o.threads; i++) {
        unsigned count = i + 1 == o.threads ? o.conns - i * per : per;
        half += o.scenario == SC_IDLE ? (unsigned)((uint64_t)count * 500 / 1000)
                                      : 0;
    }
    for (unsigned i = 0; i < o.threads; i++) {
        struct bench_worker *w = &workers[i];
        w->id = i;
        w->run = &r;
        w->first = i * per;
        w->count = i + 1 == o.threads ? o.conns - w->first : per;
        w->conns = calloc(w->count, sizeof *w->conns);
        if (w->conns == NULL)
            abort();
        if (uv_thread_create(&w->thread, worker_main, w) != 0)
            abort();
    }
    conduct(&r, &x, half);
    x.loop_idle = 0;
    for (unsigned i = 0; i < o.threads; i++) {
        struct bench_worker *w = &workers[i];
        uv_thread_join(&w->thread);
        add_stats(&x.st, &w->st);
        x.loop_idle +=
            w->span_ns ? (double)w->idle_ns / (double)w->span_ns : 0.0;
        if (x.tls_info[0] == '\0')
            memcpy(x.tls_info, w->tls_info, sizeof x.tls_info);
        free(w->conns);
    }
    x.loop_idle = o.scenario == SC_CREATE ? -1 : x.loop_idle / o.threads;
    print_json(&o, &x);
    for (unsigned i = 0; i < o.conns; i++)
        free(r.jids[i]);
    for (size_t i = 0; i < r.n_accounts; i++) {
        bench_account_clear_cache(&r.accounts[i]);
        uv_mutex_destroy(&r.accounts[i].lock);
        free(r.accounts[i].local);
        free(r.accounts[i].password);
    }
    if (r.to_accounts != r.accounts) {
        for (size_t i = 0; i < r.n_to_accounts; i++) {
            bench_account_clear_cache(&r.to_accounts[i]);
            uv_mutex_destroy(&r.to_accounts[i].lock);
            free(r.to_accounts[i].local);
            free(r.to_accounts[i].password);
        }
        free(r.to_accounts);
    }
    free(r.accounts);
    free(r.jids);
    free(workers);
    if (r.to_tls != r.tls)
        SSL_CTX_free(r.to_tls);
    SSL_CTX_free(r.tls);
    X509_free(verified.leaf);
    return x.st.ops > 0 || o.scenario == SC_IDLE ? 0 : 1;
}
