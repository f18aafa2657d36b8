/*
 * test_link.c - cluster links (xmpp/link.c): three endpoints in one loop
 * over real TCP and TLS on 127.0.0.1 with node certificates of one CA.
 * Messages both ways, queued while a peer is down and delivered once it
 * comes up (back-off reconnect), after a peer restarts, the queue bound,
 * and the refusals: a node that is not a member, a certificate of another
 * CA, a client certificate that names no node.
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

#define DOMAIN "links.test"
#define MAX_MSGS 64

struct node {
    unsigned id;
    struct ic_xmpp_links *links;
    unsigned members; /* bit N: node N may link */
    int port;
    char got[MAX_MSGS][64]; /* "FROM:text" */
    int ngot;
    int ups, downs;
};

static char dir[256];
static uv_loop_t loop;

static bool is_member(void *data, unsigned id)
{
    struct node *n = data;

    return id < 32 && (n->members & (1u << id));
}

static void on_message(void *data, unsigned from, struct ic_xml *msg)
{
    struct node *n = data;
    char *t = ic_xml_text(msg);

    if (n->ngot < MAX_MSGS)
        snprintf(n->got[n->ngot++], sizeof n->got[0], "%u:%s", from, t);
    ic_free(t);
    ic_xml_free(msg);
}

static void on_peer(void *data, unsigned id, bool up)
{
    struct node *n = data;

    (void)id;
    if (up)
        n->ups++;
    else
        n->downs++;
}

static int free_port(void)
{
    for (int tries = 0; tries < 200; tries++) {
        int port = 20000 + (int)(random() % 10000);
        uv_tcp_t t;
        struct sockaddr_in sa;
        int rc;
        uv_tcp_init(&loop, &t);
        uv_ip4_addr("127.0.0.1", port, &sa);
        rc = uv_tcp_bind(&t, (struct sockaddr *)&sa, 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&t, 1, NULL);
        uv_close((uv_handle_t *)&t, NULL);
        uv_run(&loop, UV_RUN_NOWAIT);
        if (rc == 0)
            return port;
    }
    fail_msg("no free port");
    return 0;
}

/* Starts node ID with the certificate CERTNAME (DIR/CERTNAME.pem/.key) of
 * the CA in CADIR. */
/* The level the next start() announces (0: none, as an older build). */
static unsigned start_level;

static void start(struct node *n,
                  unsigned id,
                  const char *certname,
                  const char *cadir,
                  unsigned members)
{
    static const struct ic_xmpp_links_ops ops0 = {NULL, is_member, on_message,
                                                  on_peer};
    struct ic_xmpp_links_ops ops = ops0;
    struct ic_xmpp_links_config c = {0};
    char cert[400], key[400], ca[400], why[256];
    int port = n->port;

    memset(n, 0, sizeof *n);
    n->id = id;
    n->members = members;
    n->port = port != 0 ? port : free_port();
    snprintf(cert, sizeof cert, "%s/%s.pem", dir, certname);
    snprintf(key, sizeof key, "%s/%s.key", dir, certname);
    snprintf(ca, sizeof ca, "%s/ca.pem", cadir);
    c.self = id;
    c.address = "127.0.0.1";
    c.port = n->port;
    c.domain = DOMAIN;
    c.cert = cert;
    c.key = key;
    c.ca = ca;
    c.backoff_min_ms = 20;
    c.backoff_max_ms = 200;
    c.queue_max = 4096;
    c.level = start_level;
    ops.data = n;
    if (ic_xmpp_links_new(&loop, &c, &ops, &n->links, why, sizeof why) != 0)
        fail_msg("links_new: %s", why);
}

static void on_shut(void *data)
{
    *(bool *)data = true;
}

static void stop(struct node *n)
{
    bool done = false;

    ic_xmpp_links_shutdown(n->links, on_shut, &done);
    while (!done)
        uv_run(&loop, UV_RUN_ONCE);
    ic_xmpp_links_free(n->links);
    n->links = NULL;
}

static void send_text(struct node *from, unsigned to, const char *text)
{
    struct ic_xml *m = ic_xml_new("note", "urn:test");

    ic_xml_add_text(m, text, strlen(text));
    assert_int_equal(ic_xmpp_links_send(from->links, to, m), 0);
    ic_xml_free(m);
}

static void on_deadline(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Runs the loop until N has COUNT messages, or for MS at most. */
static void run_until(struct node *n, int count, unsigned ms)
{
    uv_timer_t t;
    bool late = false;

    uv_timer_init(&loop, &t);
    t.data = &late;
    uv_timer_start(&t, on_deadline, ms, 0);
    while (!late && (n == NULL || n->ngot < count))
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static int setup(void **state)
{
    char why[256], other[300];

    (void)state;
    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)getpid());
    snprintf(dir, sizeof dir, "/tmp/ic-link-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(other, sizeof other, "%s/other", dir);
    assert_int_equal(ic_devcerts_make_ca(dir, "cluster", IC_DEVCERTS_EC_P256,
                                         why, sizeof why),
                     0);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(ic_devcerts_make_node(dir, dir, DOMAIN, i,
                                               IC_DEVCERTS_EC_P256, why,
                                               sizeof why),
                         0);
    assert_int_equal(ic_devcerts_make_client(dir, dir, "cloud1@" DOMAIN,
                                             "cloud1", IC_DEVCERTS_EC_P256, why,
                                             sizeof why),
                     0);
    /* node 3 again, from another CA */
    assert_int_equal(ic_devcerts_make_ca(other, "other", IC_DEVCERTS_EC_P256,
                                         why, sizeof why),
                     0);
    assert_int_equal(ic_devcerts_make_node(other, other, DOMAIN, 3,
                                           IC_DEVCERTS_EC_P256, why,
                                           sizeof why),
                     0);
    uv_loop_init(&loop);
    return 0;
}

static int teardown(void **state)
{
    char cmd[400];

    (void)state;
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void test_messages_both_ways(void **state)
{
    struct node a = {0}, b = {0};

    (void)state;
    start(&a, 1, "node1", dir, 1u << 2);
    start(&b, 2, "node2", dir, 1u << 1);
    assert_int_equal(ic_xmpp_links_set_peer(a.links, 2, "127.0.0.1", b.port),
                     0);
    assert_int_equal(ic_xmpp_links_set_peer(b.links, 1, "127.0.0.1", a.port),
                     0);
    /* sent before the links are up: queued, then delivered in order */
    send_text(&a, 2, "one");
    send_text(&a, 2, "two");
    send_text(&b, 1, "back");
    run_until(&b, 2, 5000);
    run_until(&a, 1, 5000);
    assert_int_equal(b.ngot, 2);
    assert_string_equal(b.got[0], "1:one");
    assert_string_equal(b.got[1], "1:two");
    assert_int_equal(a.ngot, 1);
    assert_string_equal(a.got[0], "2:back");
    assert_true(ic_xmpp_links_up(a.links, 2));
    assert_int_equal(a.ups, 1);
    /* once up, at once */
    send_text(&a, 2, "three");
    run_until(&b, 3, 5000);
    assert_string_equal(b.got[2], "1:three");
    /* unknown peers and ourselves */
    assert_int_equal(ic_xmpp_links_set_peer(a.links, 1, "127.0.0.1", 1),
                     IC_EINVAL);
    {
        struct ic_xml *m = ic_xml_new("note", "urn:test");
        assert_int_equal(ic_xmpp_links_send(a.links, 9, m), IC_ENOTFOUND);
        ic_xml_free(m);
    }
    stop(&a);
    stop(&b);
}

/* Each side learns the level the other announced in its stream header:
 * 3 from a node that announces it, 0 from one that announces none (an
 * older build), -1 while the link is not up. */
static void test_levels(void **state)
{
    struct node a = {0}, b = {0};

    (void)state;
    start_level = 0;
    start(&a, 1, "node1", dir, 1u << 2);
    start_level = 3;
    start(&b, 2, "node2", dir, 1u << 1);
    start_level = 0;
    assert_int_equal(ic_xmpp_links_peer_level(a.links, 2), -1);
    assert_int_equal(ic_xmpp_links_set_peer(a.links, 2, "127.0.0.1", b.port),
                     0);
    assert_int_equal(ic_xmpp_links_set_peer(b.links, 1, "127.0.0.1", a.port),
                     0);
    assert_int_equal(ic_xmpp_links_peer_level(a.links, 2), -1);
    send_text(&a, 2, "one");
    send_text(&b, 1, "back");
    run_until(&b, 1, 5000);
    run_until(&a, 1, 5000);
    assert_true(ic_xmpp_links_up(a.links, 2) && ic_xmpp_links_up(b.links, 1));
    assert_int_equal(ic_xmpp_links_peer_level(a.links, 2), 3);
    assert_int_equal(ic_xmpp_links_peer_level(b.links, 1), 0);
    assert_int_equal(ic_xmpp_links_peer_level(a.links, 7), -1);
    stop(&b); /* down again: unknown */
    for (int i = 0; i < 100 && ic_xmpp_links_up(a.links, 2); i++)
        run_until(NULL, 0, 20);
    assert_int_equal(ic_xmpp_links_peer_level(a.links, 2), -1);
    stop(&a);
}

static void test_peer_down_then_up_and_restart(void **state)
{
    struct node a = {0}, b = {0};
    char big[1200];

    (void)state;
    start(&a, 1, "node1", dir, 1u << 2);
    b.port = free_port(); /* nobody listens there yet */
    assert_int_equal(ic_xmpp_links_set_peer(a.links, 2, "127.0.0.1", b.port),
                     0);
    send_text(&a, 2, "early");
    run_until(NULL, 0, 150); /* a few refused attempts */
    assert_false(ic_xmpp_links_up(a.links, 2));
    /* the queue is bounded (4096 bytes here) */
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    {
        int rc = 0, sent = 0;
        for (int i = 0; i < 10 && rc == 0; i++) {
            struct ic_xml *m = ic_xml_new("note", "urn:test");
            ic_xml_add_text(m, big, strlen(big));
            rc = ic_xmpp_links_send(a.links, 2, m);
            sent += rc == 0;
            ic_xml_free(m);
        }
        assert_int_equal(rc, IC_ELIMIT);
        assert_true(sent >= 2 && sent < 4);
    }
    start(&b, 2, "node2", dir, 1u << 1);
    run_until(&b, 1, 5000);
    assert_true(b.ngot >= 1);
    assert_string_equal(b.got[0], "1:early");
    run_until(NULL, 0, 100);
    assert_true(ic_xmpp_links_up(a.links, 2));

    /* B restarts on the same port: A's link goes down, comes back */
    stop(&b);
    run_until(NULL, 0, 100);
    assert_false(ic_xmpp_links_up(a.links, 2));
    assert_int_equal(a.downs, 1);
    start(&b, 2, "node2", dir, 1u << 1);
    for (int i = 0; i < 100 && !ic_xmpp_links_up(a.links, 2); i++)
        run_until(NULL, 0, 50);
    assert_true(ic_xmpp_links_up(a.links, 2));
    send_text(&a, 2, "after restart");
    run_until(&b, 1, 5000);
    assert_string_equal(b.got[0], "1:after restart");
    stop(&a);
    stop(&b);
}

/* X tries to link to A as node ID with CERT (of CADIR's CA): refused. */
static void expect_refused(unsigned id,
                           const char *cert,
                           const char *cadir,
                           unsigned a_members)
{
    struct node a = {0}, x = {0};

    start(&a, 1, "node1", dir, a_members);
    start(&x, id, cert, cadir, 1u << 1);
    assert_int_equal(ic_xmpp_links_set_peer(x.links, 1, "127.0.0.1", a.port),
                     0);
    send_text(&x, 1, "let me in");
    run_until(&a, 1, 600);
    assert_int_equal(a.ngot, 0);
    assert_false(ic_xmpp_links_up(x.links, 1));
    assert_int_equal(x.ups, 0);
    stop(&x);
    stop(&a);
}

static void test_not_a_member(void **state)
{
    (void)state;
    expect_refused(3, "node3", dir, 1u << 2); /* A admits only node 2 */
}

static void test_certificate_of_another_ca(void **state)
{
    (void)state;
    /* X trusts the cluster CA but shows node 3's certificate from another
     * CA: A's side refuses it */
    expect_refused(3, "other/node3", dir, 1u << 3);
}

static void test_client_certificate_is_no_node(void **state)
{
    (void)state;
    /* cloud1's certificate chains to the cluster CA but names no node */
    expect_refused(2, "cloud1", dir, 1u << 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages_both_ways),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_peer_down_then_up_and_restart),
        cmocka_unit_test(test_not_a_member),
        cmocka_unit_test(test_certificate_of_another_ca),
        cmocka_unit_test(test_client_certificate_is_no_node),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
