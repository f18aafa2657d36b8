/*
 * icroot-cluster-bench - load generator for a running icroot cluster
 * (docs/benchmarks-cluster.md). It reads the cluster from `cluster.json`
 * (as `icroot dev` writes it) and drives the catalog service's ad-hoc
 * commands (docs/protocol.md) through ic_xmpp's outgoing client streams:
 *
 *   --mode publish  --clients N: account PREFIXi (i = 1..N) logs in to node
 *                   (i-1) mod nodes + 1 (or all to --node K) and runs
 *                   publish_resources back to back, one in flight, each
 *                   time a fixed description with one value changed
 *                   (same size); a cloud writes only its own graph.
 *   --mode query    the same with the seed paper's constraint query; an
 *                   answer without exactly --expect (cloud2,cloud5) is an
 *                   error.
 *   --create-accounts  first add PREFIX1..N with the admin account of
 *                   cluster.json (add_account, --create-window in flight);
 *                   --mode create does only that.
 *   --print-payload FILE  writes the publish description (<resources>, as
 *                   sent) to FILE and exits: etcd-bench puts the same bytes.
 *   --compare FILE  prints the markdown table of a results.jsonl
 *                   (report.c).
 *
 * One process, one libuv loop: logins are opened --login-parallel at a
 * time; when every client is up (or has failed) the run starts (cbench.h:
 * warm-up, window, JSON line on stdout). At the end of the window no new
 * request is sent; answers still out are awaited up to --grace seconds,
 * then counted as in_flight_at_end.
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "cbench.h"
#include "ic_xmpp.h"
#include "icluster.h"

#define NS_CMD "http://jabber.org/protocol/commands"
#define NS_IODATA "urn:xmpp:tmp:io-data"
#define NS_RES "http://www.csp/resOntology"

int cb_compare(const char *file); /* report.c */

struct opts {
    const char *cluster, *mode, *prefix, *password, *label, *case_name;
    const char *expect, *print_payload;
    unsigned clients, login_parallel, create_window;
    int node; /* 0: every node, round robin */
    double duration, warmup, grace, timeout;
    bool create;
    const char *pids;
};

struct bench;

struct client {
    struct bench *b;
    struct ic_xmpp_client *c;
    unsigned idx; /* 1-based: the account PREFIXidx */
    int node;     /* 0-based index into the cluster's nodes */
    bool up, closed, busy;
    uint64_t sent, seq;
};

struct bench {
    struct opts o;
    struct cluster cl;
    uv_loop_t loop;
    uv_timer_t tick;
    struct cb_run run;
    struct client *c;
    unsigned next, logging_in, up, failed, closed, in_flight;
    bool started, closing;
    uint64_t t_login0, t_stop;
    char mech[64];
    /* The request as written once (make_template): the text before its id
     * and the text after, where a publish's price digits are rewritten
     * for each send (the generator shares the servers' 2 cores: building
     * and writing a tree per request was a third of its CPU). */
    char *head, *tail;
    size_t head_len, tail_len, price_at; /* price_at 0: none */
};

/* ---- the stanzas --------------------------------------------------------- */

/* A realistic description (docs/benchmarks-cluster.md): 16 attribute
 * values, of which maxPrice changes with every publish (same width). It
 * does not match the seed query (availability 99.99 < 99.999). */
static const char *const description[][2] = {
    {"availabilityQuantity", "99.99"},
    {"replicationFactor", "3"},
    {"tierCountries", "DE, FR"},
    {"region", "eu-central"},
    {"jurisdiction", "DE"},
    {"StorageReplicationMethod", "AMQP"},
    {"StorageReplicationProtocol", "UDT"},
    {"InterCloudStorageAccess", "NFS"},
    {"InterCloudStorageAccess", "S3"},
    {"maxPrice", NULL}, /* 0.0NNNN from the sequence number */
    {"currency", "EUR"},
    {"cores", "4096"},
    {"memory", "16384"},
    {"storageSize", "1024000"},
};

static struct ic_xml *
command_iq(const struct bench *b, const char *node, struct ic_xml **in)
{
    struct ic_xml *iq = ic_xml_new("iq", IC_NS_CLIENT);
    struct ic_xml *cmd = ic_xml_add(iq, "command", NS_CMD);
    struct ic_xml *io = ic_xml_add(cmd, "iodata", NS_IODATA);

    ic_xml_set_attr(iq, "type", "set");
    ic_xml_set_attr(iq, "to", b->cl.service);
    ic_xml_set_attr(cmd, "node", node);
    ic_xml_set_attr(cmd, "action", "execute");
    ic_xml_set_attr(io, "type", "input");
    *in = ic_xml_add(io, "in", NULL);
    return iq;
}

static void add_pair(struct ic_xml *parent,
                     const char *elem,
                     const char *attr,
                     const char *value)
{
    struct ic_xml *r = ic_xml_add(parent, elem, NULL);

    ic_xml_add_text(ic_xml_add(r, "attribute", NULL), attr, strlen(attr));
    ic_xml_add_text(ic_xml_add(r, "value", NULL), value, strlen(value));
}

static struct ic_xml *resources(uint64_t seq)
{
    struct ic_xml *res = ic_xml_new("resources", NS_RES);
    char price[16];

    snprintf(price, sizeof price, "0.0%04u", (unsigned)(seq % 10000));
    for (size_t i = 0; i < CB_ARRAY_LEN(description); i++)
        add_pair(res, "resource", description[i][0],
                 description[i][1] ? description[i][1] : price);
    return res;
}

static struct ic_xml *publish_iq(const struct bench *b, uint64_t seq)
{
    struct ic_xml *in, *iq = command_iq(b, "publish_resources", &in);

    ic_xml_append(in, resources(seq));
    return iq;
}

/* The seed paper's constraint query (section 6), as docs/protocol.md. */
static struct ic_xml *query_iq(const struct bench *b)
{
    static const char *const q[][2] = {
        {"availabilityQuanity ", "99.999"},
        {"replicationFactor", "5"},
        {"tierCountries", "JAPAN"},
        {"StorageReplicationMethod", "AMQP"},
        {"InterCloudStorageAccess", "NFS"},
    };
    struct ic_xml *in, *iq = command_iq(b, "constraint_catalog_resources", &in);
    struct ic_xml *cs = ic_xml_add(in, "constraints", NS_RES);

    for (size_t i = 0; i < CB_ARRAY_LEN(q); i++)
        add_pair(cs, "constraint", q[i][0], q[i][1]);
    return iq;
}

static struct ic_xml *add_account_iq(const struct bench *b, unsigned n)
{
    struct ic_xml *in, *iq = command_iq(b, "add_account", &in);
    struct ic_xml *a = ic_xml_add(in, "account", NS_RES);
    char user[128];

    snprintf(user, sizeof user, "%s%u", b->o.prefix, n);
    ic_xml_add_text(ic_xml_add(a, "user", NULL), user, strlen(user));
    ic_xml_add_text(ic_xml_add(a, "password", NULL), b->o.password,
                    strlen(b->o.password));
    ic_xml_add_text(ic_xml_add(a, "admin", NULL), "false", 5);
    return iq;
}

/* ---- answers ------------------------------------------------------------- */

/* Why REPLY is not a completed command ("" when it is). */
static void check_command(const struct ic_xml *reply, char *why, size_t len)
{
    const char *type = reply ? ic_xml_attr(reply, "type") : NULL;
    const struct ic_xml *cmd, *e, *x;
    char *text = NULL;

    why[0] = '\0';
    if (reply == NULL) {
        snprintf(why, len, "stream ended before the answer");
        return;
    }
    if (type != NULL && strcmp(type, "error") == 0) {
        e = ic_xml_child(reply, "error", NULL);
        for (x = e ? e->children : NULL; x != NULL; x = x->next)
            if (x->name != NULL && strcmp(x->name, "text") == 0)
                text = ic_xml_text(x);
            else if (x->name != NULL && text == NULL)
                snprintf(why, len, "%s", x->name);
        if (text != NULL)
            snprintf(why, len, "error: %s", text);
        else if (why[0] == '\0')
            snprintf(why, len, "error iq");
        ic_free(text);
        return;
    }
    cmd = ic_xml_child(reply, "command", NS_CMD);
    if (type == NULL || strcmp(type, "result") != 0 || cmd == NULL ||
        ic_xml_attr(cmd, "status") == NULL ||
        strcmp(ic_xml_attr(cmd, "status"), "completed") != 0) {
        snprintf(why, len, "not a completed command");
        return;
    }
    for (x = ic_xml_child(cmd, "note", NS_CMD); x != NULL;
         x = ic_xml_next(x, "note", NS_CMD)) {
        const char *t = ic_xml_attr(x, "type");
        if (t != NULL && strcmp(t, "error") == 0) {
            text = ic_xml_text(x);
            snprintf(why, len, "error note: %s", text);
            ic_free(text);
            return;
        }
    }
}

/* Whether the query's answer names exactly the clouds of EXPECT ("a,b"). */
static bool matches_expected(const struct ic_xml *reply, const char *expect)
{
    const struct ic_xml *cmd = ic_xml_child(reply, "command", NS_CMD);
    const struct ic_xml *io = cmd ? ic_xml_child(cmd, "iodata", NULL) : NULL;
    const struct ic_xml *out = io ? ic_xml_child(io, "out", NULL) : NULL;
    const struct ic_xml *m =
        out ? ic_xml_child(out, "matchingClouds", NS_RES) : NULL;
    unsigned want = 1, got = 0;
    bool ok = true;

    if (m == NULL)
        return false;
    if (expect[0] == '\0')
        return true;
    for (const char *p = expect; *p; p++)
        want += *p == ',';
    for (const struct ic_xml *x = ic_xml_child(m, "cloudName", NULL);
         x != NULL && ok; x = ic_xml_next(x, "cloudName", NULL)) {
        char *t = ic_xml_text(x);
        size_t tl = strlen(t);
        const char *p = strstr(expect, t);
        ok = tl > 0 && p != NULL && (p == expect || p[-1] == ',') &&
             (p[tl] == ',' || p[tl] == '\0');
        got++;
        ic_free(t);
    }
    return ok && got == want;
}

/* ---- the run ------------------------------------------------------------- */

static void send_next(struct client *k);
static void maybe_begin(struct bench *b);

static void on_answer(void *data, struct ic_xml *reply)
{
    struct client *k = data;
    struct bench *b = k->b;
    char why[300];

    k->busy = false;
    b->in_flight--;
    check_command(reply, why, sizeof why);
    if (why[0] == '\0' && strcmp(b->o.mode, "query") == 0 &&
        !matches_expected(reply, b->o.expect))
        snprintf(why, sizeof why, "the answer does not name exactly %s",
                 b->o.expect);
    if (why[0] != '\0')
        cb_run_error(&b->run, "%s%u: %s", b->o.prefix, k->idx, why);
    if (reply != NULL)
        cb_run_done(&b->run, k->sent, why[0] == '\0');
    ic_xml_free(reply);
    if (reply != NULL)
        send_next(k);
}

static void send_next(struct client *k)
{
    struct bench *b = k->b;

    if (b->run.stopping || b->closing || k->closed || !k->up)
        return;
    if (b->price_at != 0) { /* the same digits resources() writes */
        char digits[8];
        snprintf(digits, sizeof digits, "%04u",
                 (unsigned)((k->idx + k->seq++) % 10000));
        memcpy(b->tail + b->price_at, digits, 4);
    }
    k->sent = cb_now_ns();
    if (ic_xmpp_client_iq_text(k->c, b->head, b->head_len, b->tail, b->tail_len,
                               on_answer, k) != 0) {
        cb_run_error(&b->run, "%s%u: cannot send", b->o.prefix, k->idx);
        return;
    }
    k->busy = true;
    b->in_flight++;
}

static void login_next(struct bench *b);

static void on_ready(void *data, const char *jid)
{
    struct client *k = data;
    struct bench *b = k->b;

    (void)jid;
    k->up = true;
    b->up++;
    b->logging_in--;
    if (b->mech[0] == '\0')
        snprintf(b->mech, sizeof b->mech, "%s", ic_xmpp_client_mechanism(k->c));
    login_next(b);
    maybe_begin(b);
}

static void on_closed(void *data, int err, const char *why)
{
    struct client *k = data;
    struct bench *b = k->b;

    k->closed = true;
    k->c = NULL;
    b->closed++;
    if (!k->up) {
        b->logging_in--;
        b->failed++;
        b->run.login_failures++;
        cb_run_error(&b->run, "%s%u: login: %s", b->o.prefix, k->idx, why);
        login_next(b);
        maybe_begin(b);
    } else if (!b->closing) {
        b->run.conn_errors++;
        cb_run_error(&b->run, "%s%u: stream ended (%s): %s", b->o.prefix,
                     k->idx, ic_strerror(err), why);
    }
}

static void login_next(struct bench *b)
{
    static const struct ic_xmpp_client_cbs cbs = {on_ready, NULL, on_closed};

    while (!b->closing && b->next < b->o.clients &&
           b->logging_in < b->o.login_parallel) {
        struct client *k = &b->c[b->next++];
        struct ic_xmpp_client_opts xo = {0};
        char user[128];

        snprintf(user, sizeof user, "%s%u", b->o.prefix, k->idx);
        xo.host = b->cl.host[k->node];
        xo.port = b->cl.port[k->node];
        xo.domain = b->cl.domain;
        xo.ca = b->cl.ca;
        xo.user = user;
        xo.password = b->o.password;
        xo.resource = "bench";
        xo.timeout_ms = (unsigned)(b->o.timeout * 1000);
        b->logging_in++;
        if (ic_xmpp_client_new(&b->loop, &xo, &cbs, k, &k->c) != 0) {
            b->logging_in--;
            b->failed++;
            k->closed = true;
            b->closed++;
            cb_run_error(&b->run, "cannot start client %u", k->idx);
        }
    }
}

static void maybe_begin(struct bench *b)
{
    if (b->started || b->up + b->failed < b->o.clients)
        return;
    b->started = true;
    b->run.clients_up = b->up;
    b->run.login_s = (double)(cb_now_ns() - b->t_login0) / 1e9;
    fprintf(stderr, "%s: %u of %u clients up in %.2f s, running\n",
            b->run.case_name, b->up, b->o.clients, b->run.login_s);
    cb_run_start(&b->run);
    for (unsigned i = 0; i < b->o.clients; i++)
        send_next(&b->c[i]);
}

static void close_all(struct bench *b)
{
    b->closing = true;
    for (unsigned i = 0; i < b->o.clients; i++)
        if (b->c[i].c != NULL && !b->c[i].closed)
            ic_xmpp_client_close(b->c[i].c);
    uv_close((uv_handle_t *)&b->tick, NULL);
}

static void on_tick(uv_timer_t *t)
{
    struct bench *b = t->data;
    uint64_t now;

    if (b->closing)
        return;
    cb_run_tick(&b->run);
    if (!b->run.stopping)
        return;
    now = cb_now_ns();
    if (b->t_stop == 0)
        b->t_stop = now;
    if (b->in_flight == 0 || now - b->t_stop > (uint64_t)(b->o.grace * 1e9)) {
        b->run.in_flight_at_end = b->in_flight;
        close_all(b);
    }
}

static int run_clients(struct bench *b)
{
    char extra[256];

    b->c = ic_calloc(b->o.clients, sizeof *b->c);
    for (unsigned i = 0; i < b->o.clients; i++) {
        b->c[i].b = b;
        b->c[i].idx = i + 1;
        b->c[i].node =
            b->o.node > 0 ? b->o.node - 1 : (int)(i % (unsigned)b->cl.nnodes);
    }
    uv_timer_init(&b->loop, &b->tick);
    b->tick.data = b;
    uv_timer_start(&b->tick, on_tick, 20, 20);
    b->t_login0 = cb_now_ns();
    login_next(b);
    maybe_begin(b);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    snprintf(extra, sizeof extra, ",\"mech\":\"%s\",\"nodes\":%d", b->mech,
             b->o.node > 0 ? 1 : b->cl.nnodes);
    cb_report_print(&b->run, extra);
    ic_free(b->c);
    ic_free(b->head);
    return b->run.cpu1 > 0 ? 0 : 1;
}

/* ---- --create-accounts ------------------------------------------------- */

struct creator {
    struct bench *b;
    struct ic_xmpp_client *c;
    unsigned next, in_flight, done, errors;
    int err;
    char why[300];
};

static void create_more(struct creator *k);

static void on_created(void *data, struct ic_xml *reply)
{
    struct creator *k = data;
    char why[300];

    k->in_flight--;
    check_command(reply, why, sizeof why);
    if (why[0] != '\0') {
        k->errors++;
        if (k->why[0] == '\0')
            snprintf(k->why, sizeof k->why, "%s", why);
    } else {
        k->done++;
    }
    ic_xml_free(reply);
    if (reply != NULL)
        create_more(k);
}

static void create_more(struct creator *k)
{
    struct bench *b = k->b;

    while (k->next < b->o.clients && k->in_flight < b->o.create_window) {
        if (ic_xmpp_client_iq(k->c, add_account_iq(b, ++k->next), on_created,
                              k) != 0)
            break;
        k->in_flight++;
    }
    if (k->in_flight == 0)
        ic_xmpp_client_close(k->c);
}

static void on_admin_ready(void *data, const char *jid)
{
    (void)jid;
    create_more(data);
}

static void on_admin_closed(void *data, int err, const char *why)
{
    struct creator *k = data;

    k->err = err;
    if (err != 0 && k->why[0] == '\0')
        snprintf(k->why, sizeof k->why, "%s", why);
}

static int create_accounts(struct bench *b)
{
    static const struct ic_xmpp_client_cbs cbs = {on_admin_ready, NULL,
                                                  on_admin_closed};
    struct ic_xmpp_client_opts xo = {0};
    struct creator k = {.b = b};
    int n = b->o.node > 0 ? b->o.node - 1 : 0;
    uint64_t t0 = cb_now_ns();

    if (b->cl.admin_password == NULL) {
        fprintf(stderr, "%s: no admin account\n", b->o.cluster);
        return -1;
    }
    xo.host = b->cl.host[n];
    xo.port = b->cl.port[n];
    xo.domain = b->cl.domain;
    xo.ca = b->cl.ca;
    xo.user = "admin";
    xo.password = b->cl.admin_password;
    xo.resource = "bench-admin";
    xo.timeout_ms = (unsigned)(b->o.timeout * 1000);
    if (ic_xmpp_client_new(&b->loop, &xo, &cbs, &k, &k.c) != 0)
        return -1;
    uv_run(&b->loop, UV_RUN_DEFAULT);
    fprintf(stderr, "created %u accounts %s1..%u in %.2f s (%u errors)%s%s\n",
            k.done, b->o.prefix, b->o.clients, (double)(cb_now_ns() - t0) / 1e9,
            k.errors, k.why[0] ? ": " : "", k.why);
    return k.done == b->o.clients ? 0 : -1;
}

/* ---- options ------------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs("usage: icroot-cluster-bench --cluster cluster.json --mode "
          "publish|query|create\n"
          "         [--clients N] [--node K] [--duration S] [--warmup S]\n"
          "         [--prefix bench] --password PW [--create-accounts]\n"
          "       icroot-cluster-bench --print-payload FILE\n"
          "       icroot-cluster-bench --compare results.jsonl\n"
          "\n"
          "  --cluster FILE      cluster.json (domain, CA, nodes, admin)\n"
          "  --mode M            publish (publish_resources), query (the seed\n"
          "                      query), create (accounts only)\n"
          "  --clients N         clients, one account each (64)\n"
          "  --node K            all clients on node K (default: round robin)\n"
          "  --prefix P          accounts P1..PN (bench)\n"
          "  --password PW       their password\n"
          "  --create-accounts   add_account P1..PN first, as the admin\n"
          "  --create-window W   add_account requests in flight (32)\n"
          "  --duration S        measured seconds (10)\n"
          "  --warmup S          seconds before the window opens (2)\n"
          "  --grace S           wait for answers after the window (10)\n"
          "  --timeout S         login deadline per client (60)\n"
          "  --login-parallel N  logins at once (32)\n"
          "  --expect LIST       the query's expected clouds (cloud2,cloud5;\n"
          "                      '' accepts any answer)\n"
          "  --label L           server name in the output (icroot)\n"
          "  --case C            case name in the output (MODE-N)\n"
          "  --pids LIST         server processes to measure (default: the\n"
          "                      nodes' pids from cluster.json)\n",
          f);
}

enum {
    OPT_CLUSTER = 256,
    OPT_MODE,
    OPT_CLIENTS,
    OPT_NODE,
    OPT_PREFIX,
    OPT_PASSWORD,
    OPT_CREATE,
    OPT_CREATE_WINDOW,
    OPT_DURATION,
    OPT_WARMUP,
    OPT_GRACE,
    OPT_TIMEOUT,
    OPT_LOGIN_PAR,
    OPT_EXPECT,
    OPT_LABEL,
    OPT_CASE,
    OPT_PIDS,
    OPT_PRINT,
    OPT_COMPARE,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"cluster", required_argument, NULL, OPT_CLUSTER},
    {"mode", required_argument, NULL, OPT_MODE},
    {"clients", required_argument, NULL, OPT_CLIENTS},
    {"node", required_argument, NULL, OPT_NODE},
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {"password", required_argument, NULL, OPT_PASSWORD},
    {"create-accounts", no_argument, NULL, OPT_CREATE},
    {"create-window", required_argument, NULL, OPT_CREATE_WINDOW},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"grace", required_argument, NULL, OPT_GRACE},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"login-parallel", required_argument, NULL, OPT_LOGIN_PAR},
    {"expect", required_argument, NULL, OPT_EXPECT},
    {"label", required_argument, NULL, OPT_LABEL},
    {"case", required_argument, NULL, OPT_CASE},
    {"pids", required_argument, NULL, OPT_PIDS},
    {"print-payload", required_argument, NULL, OPT_PRINT},
    {"compare", required_argument, NULL, OPT_COMPARE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static unsigned to_uint(const char *s)
{
    long v = strtol(s, NULL, 10);

    return v > 0 ? (unsigned)v : 0;
}

/* Returns -1 to go on, else the exit code. */
static int parse(int argc, char **argv, struct opts *o)
{
    int ch;

    while ((ch = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        switch (ch) {
        case OPT_CLUSTER:
            o->cluster = optarg;
            break;
        case OPT_MODE:
            o->mode = optarg;
            break;
        case OPT_CLIENTS:
            o->clients = to_uint(optarg);
            break;
        case OPT_NODE:
            o->node = (int)to_uint(optarg);
            break;
        case OPT_PREFIX:
            o->prefix = optarg;
            break;
        case OPT_PASSWORD:
            o->password = optarg;
            break;
        case OPT_CREATE:
            o->create = true;
            break;
        case OPT_CREATE_WINDOW:
            o->create_window = to_uint(optarg);
            break;
        case OPT_DURATION:
            o->duration = atof(optarg);
            break;
        case OPT_WARMUP:
            o->warmup = atof(optarg);
            break;
        case OPT_GRACE:
            o->grace = atof(optarg);
            break;
        case OPT_TIMEOUT:
            o->timeout = atof(optarg);
            break;
        case OPT_LOGIN_PAR:
            o->login_parallel = to_uint(optarg);
            break;
        case OPT_EXPECT:
            o->expect = optarg;
            break;
        case OPT_LABEL:
            o->label = optarg;
            break;
        case OPT_CASE:
            o->case_name = optarg;
            break;
        case OPT_PIDS:
            o->pids = optarg;
            break;
        case OPT_PRINT:
            o->print_payload = optarg;
            break;
        case OPT_COMPARE:
            return cb_compare(optarg) == 0 ? 0 : 1;
        case OPT_HELP:
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    return -1;
}

static int print_payload(const char *file)
{
    struct ic_xml *res = resources(0);
    char *s = ic_xml_to_string(res, NULL);
    FILE *f = fopen(file, "w");
    int rc = 1;

    if (f != NULL && fputs(s, f) >= 0 && fclose(f) == 0)
        rc = 0;
    else
        perror(file);
    fprintf(stderr, "payload: %zu bytes\n", strlen(s));
    ic_free(s);
    ic_xml_free(res);
    return rc;
}

/* The request's text around its id, once (struct bench). */
static void make_template(struct bench *b)
{
    static const char mark[] = "ID-MARK-7f3c";
    bool query = strcmp(b->o.mode, "query") == 0;
    struct ic_xml *x = query ? query_iq(b) : publish_iq(b, 0);
    char *s, *m, *price;

    ic_xml_set_attr(x, "id", mark);
    s = ic_xml_to_string(x, IC_NS_CLIENT);
    ic_xml_free(x);
    m = strstr(s, mark);
    b->head = s;
    b->head_len = (size_t)(m - s);
    b->tail = m + strlen(mark);
    b->tail_len = strlen(b->tail);
    price = query ? NULL : strstr(b->tail, ">0.00000<");
    b->price_at = price ? (size_t)(price - b->tail) + 4 : 0;
}

/* The sizes of the description and of one request as written (the
 * template's, with an id of 5 characters: "c1000"). */
static void sizes(struct bench *b)
{
    struct ic_xml *x = resources(0);
    char *s = ic_xml_to_string(x, NULL);

    b->run.payload_bytes = strlen(s);
    ic_free(s);
    ic_xml_free(x);
    b->run.request_bytes = b->head_len + strlen("c1000") + b->tail_len;
    if (strcmp(b->o.mode, "query") == 0)
        b->run.payload_bytes = 0;
}

static int setup_run(struct bench *b, char *case_buf, size_t len)
{
    struct cb_run *r = &b->run;

    if (b->o.case_name == NULL)
        snprintf(case_buf, len, "%s-%u", b->o.mode, b->o.clients);
    r->case_name = b->o.case_name ? b->o.case_name : case_buf;
    r->mode = b->o.mode;
    r->server = b->o.label;
    r->clients = b->o.clients;
    r->warmup_s = b->o.warmup;
    r->duration_s = b->o.duration;
    if (b->o.pids != NULL) {
        r->npids = cb_parse_pids(b->o.pids, r->pids);
        if (r->npids < 0) {
            fprintf(stderr, "--pids: a list of process ids\n");
            return -1;
        }
    } else {
        for (int i = 0; i < b->cl.nnodes && i < CB_MAX_PIDS; i++)
            if (b->cl.pid[i] > 0)
                r->pids[r->npids++] = b->cl.pid[i];
    }
    make_template(b);
    sizes(b);
    return 0;
}

int main(int argc, char **argv)
{
    static struct bench b; /* large: the histogram and per-second counts */
    char case_buf[64], target[32];
    int rc;

    b.o = (struct opts){.mode = "publish",
                        .prefix = "bench",
                        .clients = 64,
                        .login_parallel = 32,
                        .create_window = 32,
                        .duration = 10,
                        .warmup = 2,
                        .grace = 10,
                        .timeout = 60,
                        .expect = "cloud2,cloud5",
                        .label = "icroot"};
    rc = parse(argc, argv, &b.o);
    if (rc >= 0)
        return rc;
    if (b.o.print_payload != NULL)
        return print_payload(b.o.print_payload);
    if (b.o.cluster == NULL || b.o.clients == 0 ||
        (b.o.password == NULL &&
         (strcmp(b.o.mode, "create") == 0 || b.o.create ||
          strcmp(b.o.mode, "publish") == 0 ||
          strcmp(b.o.mode, "query") == 0)) ||
        (strcmp(b.o.mode, "publish") != 0 && strcmp(b.o.mode, "query") != 0 &&
         strcmp(b.o.mode, "create") != 0)) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    ic_log_set_level(IC_LOG_WARN);
    if (cb_cluster_load(b.o.cluster, &b.cl) != 0)
        return 1;
    if (b.o.node > b.cl.nnodes) {
        fprintf(stderr, "--node %d: the cluster has %d nodes\n", b.o.node,
                b.cl.nnodes);
        return 2;
    }
    uv_loop_init(&b.loop);
    rc = 0;
    if (b.o.create || strcmp(b.o.mode, "create") == 0)
        rc = create_accounts(&b) == 0 ? 0 : 1;
    if (rc == 0 && strcmp(b.o.mode, "create") != 0) {
        if (b.o.node > 0)
            snprintf(target, sizeof target, "node %d", b.o.node);
        else
            snprintf(target, sizeof target, "all %d nodes", b.cl.nnodes);
        b.run.target = target;
        rc =
            setup_run(&b, case_buf, sizeof case_buf) == 0 ? run_clients(&b) : 2;
    }
    uv_run(&b.loop, UV_RUN_DEFAULT);
    uv_loop_close(&b.loop);
    cb_cluster_free(&b.cl);
    return rc;
}
