/*
 * test_client.c - the outgoing client stream (xmpp/client.c) against the
 * real server engine in the same process and loop, over real TCP and TLS
 * on 127.0.0.1: every SASL mechanism the client speaks (SCRAM-SHA-1/256,
 * both -PLUS channel bindings, PLAIN, EXTERNAL), direct TLS, iq round
 * trips, and the failures: a wrong password, an unknown CA, a certificate
 * for another name, a refused connection, a silent server, a server that
 * never offers STARTTLS. And one thing of the server seen through a
 * client: presence other nodes routed here, withdrawn when their lease
 * ends (xmpp/heard.c).
 */
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "ic_xmpp.h"
#include "node_int.h"
#include "sasl.h"

#define DOMAIN "client.test"
#define PASSWORD "correct horse"

struct fx {
    char dir[256];
    char cert[300], key[300], ca[300], ccert[300], ckey[300];
    char other_ca[300];
    uv_loop_t loop;
    struct ic_xmpp_server *srv;
    struct ic_scram_creds creds[2];
    int port, tls_port;
};

/* What one client run saw. */
struct run {
    struct fx *fx;
    struct ic_xmpp_client *c;
    bool ready, closed, answered;
    int err;
    char why[512];
    char jid[256];
    char mech[64];
    char binding[64];
    char reply_type[32];
    char reply_from[256];
};

static int get_creds(void *data,
                     const char *local,
                     enum ic_scram_hash h,
                     struct ic_scram_creds *out)
{
    struct fx *fx = data;

    if (strcmp(local, "alice") != 0)
        return IC_ENOTFOUND;
    *out = fx->creds[h];
    return 0;
}

static bool is_admin(void *data, const char *local)
{
    (void)data;
    (void)local;
    return false;
}

static int roster_get(void *data, const char *user, struct ic_roster *out)
{
    (void)data;
    (void)user;
    memset(out, 0, sizeof *out);
    return 0;
}

static int
roster_put(void *data, const char *user, const struct ic_roster_item *item)
{
    (void)data;
    (void)user;
    (void)item;
    return 0;
}

static int roster_del(void *data, const char *user, const char *contact)
{
    (void)data;
    (void)user;
    (void)contact;
    return 0;
}

/* A port nobody listens on now (below the ephemeral range). */
static int free_port(void)
{
    for (int tries = 0; tries < 200; tries++) {
        int port = 20000 + (int)(random() % 10000);
        uv_loop_t loop;
        uv_tcp_t t;
        struct sockaddr_in sa;
        int rc;
        uv_loop_init(&loop);
        uv_tcp_init(&loop, &t);
        uv_ip4_addr("127.0.0.1", port, &sa);
        rc = uv_tcp_bind(&t, (struct sockaddr *)&sa, 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&t, 1, NULL);
        uv_close((uv_handle_t *)&t, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        if (rc == 0)
            return port;
    }
    fail_msg("no free port");
    return 0;
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    struct ic_xmpp_config cfg;
    struct ic_xmpp_ops ops = {0};
    char why[256], tmp[300];

    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)getpid());
    snprintf(fx->dir, sizeof fx->dir, "/tmp/ic-client-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    assert_int_equal(ic_devcerts_make_ca(fx->dir, "test", IC_DEVCERTS_EC_P256,
                                         why, sizeof why),
                     0);
    assert_int_equal(ic_devcerts_make_node(fx->dir, fx->dir, DOMAIN, 1,
                                           IC_DEVCERTS_EC_P256, why,
                                           sizeof why),
                     0);
    assert_int_equal(ic_devcerts_make_client(fx->dir, fx->dir, "alice@" DOMAIN,
                                             "alice", IC_DEVCERTS_EC_P256, why,
                                             sizeof why),
                     0);
    snprintf(tmp, sizeof tmp, "%s/other", fx->dir);
    assert_int_equal(
        ic_devcerts_make_ca(tmp, "other", IC_DEVCERTS_EC_P256, why, sizeof why),
        0);
    snprintf(fx->cert, sizeof fx->cert, "%s/node1.pem", fx->dir);
    snprintf(fx->key, sizeof fx->key, "%s/node1.key", fx->dir);
    snprintf(fx->ca, sizeof fx->ca, "%s/ca.pem", fx->dir);
    snprintf(fx->ccert, sizeof fx->ccert, "%s/alice.pem", fx->dir);
    snprintf(fx->ckey, sizeof fx->ckey, "%s/alice.key", fx->dir);
    snprintf(fx->other_ca, sizeof fx->other_ca, "%s/other/ca.pem", fx->dir);
    for (int h = 0; h < 2; h++)
        assert_int_equal(ic_scram_creds_make((enum ic_scram_hash)h, PASSWORD,
                                             4096, &fx->creds[h]),
                         0);

    uv_loop_init(&fx->loop);
    ic_xmpp_config_defaults(&cfg);
    fx->port = free_port();
    do
        fx->tls_port = free_port();
    while (fx->tls_port == fx->port);
    cfg.domain = DOMAIN;
    cfg.c2s_port = fx->port;
    cfg.c2s_tls_port = fx->tls_port;
    cfg.cert = fx->cert;
    cfg.key = fx->key;
    cfg.ca = fx->ca;
    cfg.login_throttle = 1000;
    ops.data = fx;
    ops.get_creds = get_creds;
    ops.is_admin = is_admin;
    ops.roster_get = roster_get;
    ops.roster_put = roster_put;
    ops.roster_del = roster_del;
    assert_int_equal(
        ic_xmpp_server_new(&fx->loop, &cfg, &ops, &fx->srv, why, sizeof why),
        0);
    *state = fx;
    return 0;
}

static void on_server_down(void *data)
{
    (void)data;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    char cmd[400];

    ic_xmpp_server_shutdown(fx->srv, on_server_down, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    ic_xmpp_server_free(fx->srv);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

/* ---- one client run ---------------------------------------------------- */

static void on_reply(void *data, struct ic_xml *reply)
{
    struct run *r = data;

    r->answered = true;
    if (reply != NULL) {
        const char *t = ic_xml_attr(reply, "type");
        const char *f = ic_xml_attr(reply, "from");
        snprintf(r->reply_type, sizeof r->reply_type, "%s", t ? t : "");
        snprintf(r->reply_from, sizeof r->reply_from, "%s", f ? f : "");
        ic_xml_free(reply);
    }
    ic_xmpp_client_close(r->c);
}

static void on_ready(void *data, const char *jid)
{
    struct run *r = data;
    struct ic_xml *iq = ic_xml_new("iq", IC_NS_CLIENT);

    r->ready = true;
    snprintf(r->jid, sizeof r->jid, "%s", jid);
    snprintf(r->mech, sizeof r->mech, "%s", ic_xmpp_client_mechanism(r->c));
    if (ic_xmpp_client_binding(r->c) != NULL)
        snprintf(r->binding, sizeof r->binding, "%s",
                 ic_xmpp_client_binding(r->c));
    ic_xml_set_attr(iq, "type", "get");
    ic_xml_set_attr(iq, "to", DOMAIN);
    ic_xml_add(iq, "ping", "urn:xmpp:ping");
    assert_int_equal(ic_xmpp_client_iq(r->c, iq, on_reply, r), 0);
}

static void on_closed(void *data, int err, const char *why)
{
    struct run *r = data;

    assert_false(r->closed); /* exactly once */
    r->closed = true;
    r->err = err;
    snprintf(r->why, sizeof r->why, "%s", why);
}

static void
run_client(struct fx *fx, struct ic_xmpp_client_opts *o, struct run *r)
{
    static const struct ic_xmpp_client_cbs cbs = {on_ready, NULL, on_closed};

    memset(r, 0, sizeof *r);
    r->fx = fx;
    if (o->host == NULL)
        o->host = "127.0.0.1";
    if (o->port == 0)
        o->port = o->direct_tls ? fx->tls_port : fx->port;
    if (o->domain == NULL)
        o->domain = DOMAIN;
    if (o->ca == NULL)
        o->ca = fx->ca;
    if (o->timeout_ms == 0)
        o->timeout_ms = 5000;
    assert_int_equal(ic_xmpp_client_new(&fx->loop, o, &cbs, r, &r->c), 0);
    while (!r->closed)
        uv_run(&fx->loop, UV_RUN_ONCE);
    /* let the handles close: the client frees itself */
    for (int i = 0; i < 20; i++)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
}

static void expect_login(struct fx *fx,
                         struct ic_xmpp_client_opts *o,
                         const char *mech,
                         const char *binding)
{
    struct run r;

    run_client(fx, o, &r);
    if (!r.ready)
        fail_msg("login failed: %s", r.why);
    assert_int_equal(r.err, 0);
    assert_string_equal(r.mech, mech);
    assert_string_equal(r.binding, binding ? binding : "");
    assert_true(strncmp(r.jid, "alice@" DOMAIN "/", 7 + strlen(DOMAIN)) == 0);
    assert_true(r.answered);
    assert_string_equal(r.reply_type, "result");
    assert_string_equal(r.reply_from, DOMAIN);
}

static void expect_failure(struct fx *fx,
                           struct ic_xmpp_client_opts *o,
                           int err,
                           const char *why_part)
{
    struct run r;

    run_client(fx, o, &r);
    assert_false(r.ready);
    if (r.err != err || strstr(r.why, why_part) == NULL)
        fail_msg("got %d (%s), want %d with '%s'", r.err, r.why, err, why_part);
}

/* ---- the cases ------------------------------------------------------- */

static void test_scram_plus_tls_exporter(void **state)
{
    struct ic_xmpp_client_opts o = {.user = "alice", .password = PASSWORD};

    /* TLS 1.3: the strongest choice is SCRAM-SHA-256-PLUS, tls-exporter */
    expect_login(*state, &o, "SCRAM-SHA-256-PLUS", "tls-exporter");
}

static void test_scram_mechanisms(void **state)
{
    struct ic_xmpp_client_opts o = {.user = "alice", .password = PASSWORD};

    o.mechanism = "SCRAM-SHA-256";
    expect_login(*state, &o, "SCRAM-SHA-256", NULL);
    o.mechanism = "SCRAM-SHA-1";
    expect_login(*state, &o, "SCRAM-SHA-1", NULL);
    o.mechanism = "SCRAM-SHA-1-PLUS";
    expect_login(*state, &o, "SCRAM-SHA-1-PLUS", "tls-exporter");
    o.mechanism = "PLAIN";
    expect_login(*state, &o, "PLAIN", NULL);
}

static void test_direct_tls(void **state)
{
    struct ic_xmpp_client_opts o = {
        .user = "alice", .password = PASSWORD, .direct_tls = true};

    expect_login(*state, &o, "SCRAM-SHA-256-PLUS", "tls-exporter");
}

static void test_external(void **state)
{
    struct fx *fx = *state;
    struct ic_xmpp_client_opts o = {.cert = fx->ccert, .key = fx->ckey};

    expect_login(fx, &o, "EXTERNAL", NULL);
}

static void test_wrong_password(void **state)
{
    struct ic_xmpp_client_opts o = {.user = "alice", .password = "wrong"};

    expect_failure(*state, &o, IC_EAUTH, "not-authorized");
    o.mechanism = "PLAIN";
    expect_failure(*state, &o, IC_EAUTH, "not-authorized");
    o.user = "nobody";
    o.mechanism = NULL;
    expect_failure(*state, &o, IC_EAUTH, "not-authorized");
}

static void test_untrusted_certificate(void **state)
{
    struct fx *fx = *state;
    struct ic_xmpp_client_opts o = {
        .user = "alice", .password = PASSWORD, .ca = fx->other_ca};

    expect_failure(fx, &o, IC_EIO, "certificate");
    /* Direct TLS checks the name before any stream header: the
     * certificate does not name other.test. */
    o.ca = fx->ca;
    o.domain = "other.test";
    o.direct_tls = true;
    o.port = 0;
    expect_failure(fx, &o, IC_EIO, "certificate");
}

static void test_refused(void **state)
{
    struct ic_xmpp_client_opts o = {
        .user = "alice", .password = PASSWORD, .port = free_port()};

    expect_failure(*state, &o, IC_ECONNECT, "connect");
}

/* A raw listener: says nothing (timeout) or offers no STARTTLS. */
struct raw {
    uv_tcp_t listener, conn;
    bool accepted;
    const char *say;
    char in[4096];
    size_t in_len;
};

static void raw_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    struct raw *raw = h->data;

    (void)n;
    b->base = raw->in + raw->in_len;
    b->len = sizeof raw->in - raw->in_len - 1;
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct raw *raw = s->data;
    static uv_write_t w;
    uv_buf_t out;

    (void)b;
    if (n <= 0)
        return;
    raw->in_len += (size_t)n;
    raw->in[raw->in_len] = '\0';
    if (raw->say != NULL && strstr(raw->in, "<stream:stream") != NULL) {
        out = uv_buf_init((char *)raw->say, (unsigned)strlen(raw->say));
        uv_write(&w, s, &out, 1, NULL);
        raw->say = NULL;
    }
}

static void raw_accept(uv_stream_t *l, int status)
{
    struct raw *raw = l->data;

    assert_int_equal(status, 0);
    uv_tcp_init(l->loop, &raw->conn);
    raw->conn.data = raw;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&raw->conn), 0);
    raw->accepted = true;
    uv_read_start((uv_stream_t *)&raw->conn, raw_alloc, raw_read);
}

static void raw_server(struct fx *fx,
                       const char *say,
                       struct ic_xmpp_client_opts *o,
                       int err,
                       const char *why)
{
    struct raw raw = {.say = say};
    struct sockaddr_in sa;
    int port = free_port();

    uv_tcp_init(&fx->loop, &raw.listener);
    raw.listener.data = &raw;
    uv_ip4_addr("127.0.0.1", port, &sa);
    assert_int_equal(uv_tcp_bind(&raw.listener, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&raw.listener, 4, raw_accept), 0);
    o->port = port;
    expect_failure(fx, o, err, why);
    assert_true(raw.accepted);
    uv_close((uv_handle_t *)&raw.listener, NULL);
    uv_close((uv_handle_t *)&raw.conn, NULL);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
}

static void test_silent_server(void **state)
{
    struct ic_xmpp_client_opts o = {
        .user = "alice", .password = PASSWORD, .timeout_ms = 300};

    raw_server(*state, NULL, &o, IC_ETIMEDOUT, "no session");
}

static void test_no_starttls(void **state)
{
    struct ic_xmpp_client_opts o = {.user = "alice", .password = PASSWORD};

    raw_server(*state,
               "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
               "xmlns:stream='http://etherx.jabber.org/streams' id='x' "
               "from='" DOMAIN "' version='1.0'><stream:features>"
               "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
               "<mechanism>PLAIN</mechanism></mechanisms>"
               "</stream:features>",
               &o, IC_EIO, "STARTTLS");
}

static void test_bad_options(void **state)
{
    struct fx *fx = *state;
    static const struct ic_xmpp_client_cbs cbs = {on_ready, NULL, on_closed};
    struct ic_xmpp_client_opts o = {
        .host = "127.0.0.1", .port = fx->port, .domain = DOMAIN};
    struct ic_xmpp_client *c = NULL;

    /* neither a password nor a certificate */
    assert_int_equal(ic_xmpp_client_new(&fx->loop, &o, &cbs, NULL, &c),
                     IC_EINVAL);
    o.password = PASSWORD; /* a password without a user */
    assert_int_equal(ic_xmpp_client_new(&fx->loop, &o, &cbs, NULL, &c),
                     IC_EINVAL);
    o.user = "alice";
    o.ca = "/nonexistent/ca.pem";
    assert_int_equal(ic_xmpp_client_new(&fx->loop, &o, &cbs, NULL, &c),
                     IC_EINVAL);
    assert_null(c);
}

/* ---- presence other nodes routed here (xmpp/heard.c) ------------------ */

struct heard_run {
    struct run r;
    struct ic_buf log; /* "FROM TYPE;" per presence alice got */
};

static void heard_stanza(void *data, struct ic_xml *st)
{
    struct heard_run *h = data;
    const char *type = ic_xml_attr(st, "type");

    if (st->name != NULL && strcmp(st->name, "presence") == 0) {
        ic_buf_puts(&h->log, ic_xml_attr(st, "from"));
        ic_buf_puts(&h->log, " ");
        ic_buf_puts(&h->log, type != NULL ? type : "available");
        ic_buf_puts(&h->log, ";");
    }
    ic_xml_free(st);
}

/* Presence from FROM (TYPE NULL: available) that node NODE, under lease
 * INCARNATION, routed to session TARGET. */
static void routed(struct fx *fx,
                   const char *from,
                   const char *type,
                   const char *target,
                   unsigned node,
                   uint64_t incarnation)
{
    struct ic_xml *p = ic_xml_new("presence", IC_NS_CLIENT);

    ic_xml_set_attr(p, "from", from);
    ic_xml_set_attr(p, "to", target);
    if (type != NULL)
        ic_xml_set_attr(p, "type", type);
    ic_xmpp_server_deliver_routed(fx->srv, p, target, node, incarnation);
}

static void heard_ready(void *data, const char *jid)
{
    struct heard_run *h = data;
    struct fx *fx = h->r.fx;
    struct ic_xml *iq = ic_xml_new("iq", IC_NS_CLIENT);

    h->r.ready = true;
    routed(fx, "bob@" DOMAIN "/1", NULL, jid, 2, 5);
    routed(fx, "carol@" DOMAIN "/1", NULL, jid, 2, 7); /* node 2's next run */
    routed(fx, "dave@" DOMAIN "/1", NULL, jid, 2, 5);
    routed(fx, "dave@" DOMAIN "/1", "unavailable", jid, 2, 5); /* forgotten */
    routed(fx, "erin@" DOMAIN "/1", NULL, jid, 3, 5);
    /* gina's session ended, the registry says: forgotten, and her node
     * routes her directed unavailable itself */
    routed(fx, "gina@" DOMAIN "/1", NULL, jid, 2, 5);
    ic_xmpp_server_remote_presence(fx->srv, "gina@" DOMAIN "/1", 2, NULL);
    ic_xmpp_server_remote_node_gone(fx->srv, 4, 9);    /* none of node 4 */
    ic_xmpp_server_remote_node_gone(fx->srv, 2, 5);    /* bob only */
    routed(fx, "frank@" DOMAIN "/1", NULL, jid, 3, 1); /* in between */
    ic_xmpp_server_remote_node_gone(fx->srv, 2, 7);    /* carol */
    ic_xmpp_server_remote_node_gone(fx->srv, 2, 7);    /* nothing left */
    /* the answer comes after every presence queued above */
    ic_xml_set_attr(iq, "type", "get");
    ic_xml_set_attr(iq, "to", DOMAIN);
    ic_xml_add(iq, "ping", "urn:xmpp:ping");
    assert_int_equal(ic_xmpp_client_iq(h->r.c, iq, on_reply, &h->r), 0);
}

/* Available presence routed from another node's session is withdrawn
 * when that node's lease ends (its unavailable sent to the recipient),
 * unless it was withdrawn already or was sent under a later lease of that
 * node; other nodes' are left alone. */
static void test_routed_presence_withdrawn(void **state)
{
    static const struct ic_xmpp_client_cbs cbs = {heard_ready, heard_stanza,
                                                  on_closed};
    struct fx *fx = *state;
    struct ic_xmpp_client_opts o = {.host = "127.0.0.1",
                                    .port = fx->port,
                                    .domain = DOMAIN,
                                    .ca = fx->ca,
                                    .user = "alice",
                                    .password = PASSWORD,
                                    .timeout_ms = 5000};
    struct heard_run h = {{.fx = fx}, {0}};

    assert_int_equal(ic_xmpp_client_new(&fx->loop, &o, &cbs, &h, &h.r.c), 0);
    while (!h.r.closed)
        uv_run(&fx->loop, UV_RUN_ONCE);
    for (int i = 0; i < 20; i++)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_true(h.r.ready);
    assert_true(h.r.answered);
    assert_non_null(h.log.data);
    assert_string_equal(h.log.data, "bob@" DOMAIN "/1 available;"
                                    "carol@" DOMAIN "/1 available;"
                                    "dave@" DOMAIN "/1 available;"
                                    "dave@" DOMAIN "/1 unavailable;"
                                    "erin@" DOMAIN "/1 available;"
                                    "gina@" DOMAIN "/1 available;"
                                    "bob@" DOMAIN "/1 unavailable;"
                                    "frank@" DOMAIN "/1 available;"
                                    "carol@" DOMAIN "/1 unavailable;");
    ic_buf_free(&h.log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scram_plus_tls_exporter),
        cmocka_unit_test(test_scram_mechanisms),
        cmocka_unit_test(test_direct_tls),
        cmocka_unit_test(test_external),
        cmocka_unit_test(test_wrong_password),
        cmocka_unit_test(test_untrusted_certificate),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_silent_server),
        cmocka_unit_test(test_no_starttls),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_routed_presence_withdrawn),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
