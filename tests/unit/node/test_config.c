/*
 * test_config.c - the node's configuration file (node/config.c,
 * docs/configuration.md): defaults, write/load round trip, every bad line
 * reported with its line, required keys, relative paths.
 */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node_int.h"
#include "test_util.h"

#define TLS_OK \
    "[tls]\ncert = /c/node1.pem\nkey = /c/node1.key\nca = /c/ca.pem\n"
#define MINIMAL "[node]\nid = 1\ndata_dir = /d/node1\n" TLS_OK

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *f = ic_calloc(1, sizeof *f);

    tu_tmpdir(f->dir, sizeof f->dir);
    tu_join(f->path, sizeof f->path, f->dir, "node.conf");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    tu_rmrf(f->dir);
    ic_free(f);
    return 0;
}

/* Writes TEXT to the fixture's file and loads it; *ERRORS as returned. */
static int load_text(struct fixture *f,
                     const char *text,
                     struct ic_node_config *c,
                     char **errors)
{
    tu_write_file(f->path, text, strlen(text));
    return ic_node_config_load(f->path, c, errors);
}

/* Expects TEXT to fail with exactly the lines of WANT, each prefixed with
 * the file name (WANT uses "F" for it). */
static void refused(struct fixture *f, const char *text, const char *want)
{
    struct ic_node_config c;
    char *errors = NULL, expect[4096];
    size_t n = 0;
    int rc;

    memset(&c, 0x5a, sizeof c);
    rc = load_text(f, text, &c, &errors);
    for (const char *p = want; *p; p++) {
        if (*p == 'F' && (p == want || p[-1] == '\n'))
            n += (size_t)snprintf(expect + n, sizeof expect - n, "%s", f->path);
        else
            expect[n++] = *p;
        assert_true(n < sizeof expect);
    }
    expect[n] = '\0';
    assert_int_equal(rc, IC_EVALUE);
    assert_non_null(errors);
    assert_string_equal(errors, expect);
    for (size_t i = 0; i < sizeof c; i++)
        assert_int_equal(((unsigned char *)&c)[i], 0x5a);
    ic_free(errors);
}

static void t_defaults(void **state)
{
    struct fixture *f = *state;
    struct ic_node_config c;
    char *errors = (char *)"x";

    assert_int_equal(load_text(f, MINIMAL, &c, &errors), 0);
    assert_null(errors);
    assert_int_equal(c.node.id, 1);
    assert_string_equal(c.node.data_dir, "/d/node1");
    assert_string_equal(c.node.domain, "intercloudexchg.test");
    assert_int_equal(c.node.role, IC_NODE_ROLE_ROOT);
    assert_int_equal(c.node.log_level, IC_LOG_INFO);
    assert_string_equal(c.c2s.address, "127.0.0.1");
    assert_int_equal(c.c2s.port, 15222);
    assert_int_equal(c.c2s.tls_port, 15223);
    assert_int_equal(c.c2s.max_stanza, 262144);
    assert_int_equal(c.c2s.max_stanza_preauth, 16384);
    assert_int_equal(c.c2s.handshake_timeout, 30);
    assert_int_equal(c.c2s.idle_timeout, 600);
    assert_int_equal(c.c2s.keepalive, 60);
    assert_int_equal(c.c2s.login_throttle, 10);
    assert_string_equal(c.tls.ca, "/c/ca.pem");
    assert_int_equal(c.tls.min_version, IC_TLS_1_2);
    assert_string_equal(c.s2s.address, "127.0.0.1");
    assert_int_equal(c.s2s.port, 15224);
    assert_false(c.s2s.dialback);
    assert_null(c.s2s.secret);
    assert_int_equal(c.cluster.raft_port, 15225);
    assert_int_equal(c.cluster.link_port, 15226);
    assert_int_equal(c.cluster.n_peers, 0);
    assert_null(ic_node_config_self(&c));
    assert_null(c.catalog.ontology_dir);
    assert_true(c.catalog.load_sample);
    assert_int_equal(c.accounts.n_admins, 0);
    ic_node_config_free(&c);
    ic_node_config_free(NULL);
}

/* Every field set away from its default. */
static void full_config(struct ic_node_config *c)
{
    static const struct ic_node_peer peers[] = {
        {1, (char *)"10.0.0.1", 25225},
        {2, (char *)"node2.example.net", 25235},
        {3, (char *)"::1", 25245},
    };

    ic_node_config_init(c);
    c->node.id = 3;
    c->node.data_dir = ic_strdup("/var/lib/icroot/node 3");
    ic_free(c->node.domain);
    c->node.domain = ic_strdup("exch.example");
    c->node.role = IC_NODE_ROLE_EXCHANGE;
    c->node.log_level = IC_LOG_TRACE;
    ic_free(c->c2s.address);
    c->c2s.address = ic_strdup("::");
    c->c2s.port = 5222;
    c->c2s.tls_port = 5223;
    c->c2s.max_stanza = 1048576;
    c->c2s.max_stanza_preauth = 8192;
    c->c2s.handshake_timeout = 5;
    c->c2s.idle_timeout = 0;
    c->c2s.keepalive = 0;
    c->c2s.login_throttle = 0;
    c->tls.cert = ic_strdup("/etc/icroot/node3.pem");
    c->tls.key = ic_strdup("/etc/icroot/node3.key");
    c->tls.ca = ic_strdup("/etc/icroot/ca.pem");
    c->tls.min_version = IC_TLS_1_3;
    ic_free(c->s2s.address);
    c->s2s.address = ic_strdup("0.0.0.0");
    c->s2s.port = 5269;
    c->s2s.dialback = true;
    c->s2s.secret = ic_strdup("0123456789abcdef;#=x");
    c->cluster.raft_port = 25245;
    c->cluster.link_port = 25246;
    c->cluster.peers = ic_calloc(3, sizeof *c->cluster.peers);
    for (size_t i = 0; i < 3; i++) {
        c->cluster.peers[i] = peers[i];
        c->cluster.peers[i].host = ic_strdup(peers[i].host);
    }
    c->cluster.n_peers = 3;
    c->catalog.ontology_dir = ic_strdup("/usr/share/icroot/ontology");
    c->catalog.load_sample = false;
    c->accounts.admins = ic_calloc(2, sizeof *c->accounts.admins);
    c->accounts.admins[0] = ic_strdup("admin");
    c->accounts.admins[1] = ic_strdup("ops.team");
    c->accounts.n_admins = 2;
}

/* Strings or both NULL. */
static void assert_str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_same_lists(const struct ic_node_config *a,
                              const struct ic_node_config *b)
{
    assert_int_equal(a->cluster.n_peers, b->cluster.n_peers);
    for (size_t i = 0; i < a->cluster.n_peers; i++) {
        assert_int_equal(a->cluster.peers[i].id, b->cluster.peers[i].id);
        assert_string_equal(a->cluster.peers[i].host, b->cluster.peers[i].host);
        assert_int_equal(a->cluster.peers[i].raft_port,
                         b->cluster.peers[i].raft_port);
    }
    assert_int_equal(a->accounts.n_admins, b->accounts.n_admins);
    for (size_t i = 0; i < a->accounts.n_admins; i++)
        assert_string_equal(a->accounts.admins[i], b->accounts.admins[i]);
}

static void assert_same(const struct ic_node_config *a,
                        const struct ic_node_config *b)
{
    assert_int_equal(a->node.id, b->node.id);
    assert_str_eq(a->node.data_dir, b->node.data_dir);
    assert_str_eq(a->node.domain, b->node.domain);
    assert_int_equal(a->node.role, b->node.role);
    assert_int_equal(a->node.log_level, b->node.log_level);
    assert_str_eq(a->c2s.address, b->c2s.address);
    assert_int_equal(a->c2s.port, b->c2s.port);
    assert_int_equal(a->c2s.tls_port, b->c2s.tls_port);
    assert_int_equal(a->c2s.max_stanza, b->c2s.max_stanza);
    assert_int_equal(a->c2s.max_stanza_preauth, b->c2s.max_stanza_preauth);
    assert_int_equal(a->c2s.handshake_timeout, b->c2s.handshake_timeout);
    assert_int_equal(a->c2s.idle_timeout, b->c2s.idle_timeout);
    assert_int_equal(a->c2s.keepalive, b->c2s.keepalive);
    assert_int_equal(a->c2s.login_throttle, b->c2s.login_throttle);
    assert_str_eq(a->tls.cert, b->tls.cert);
    assert_str_eq(a->tls.key, b->tls.key);
    assert_str_eq(a->tls.ca, b->tls.ca);
    assert_int_equal(a->tls.min_version, b->tls.min_version);
    assert_str_eq(a->s2s.address, b->s2s.address);
    assert_int_equal(a->s2s.port, b->s2s.port);
    assert_int_equal(a->s2s.dialback, b->s2s.dialback);
    assert_str_eq(a->s2s.secret, b->s2s.secret);
    assert_int_equal(a->cluster.raft_port, b->cluster.raft_port);
    assert_int_equal(a->cluster.link_port, b->cluster.link_port);
    assert_str_eq(a->catalog.ontology_dir, b->catalog.ontology_dir);
    assert_int_equal(a->catalog.load_sample, b->catalog.load_sample);
    assert_same_lists(a, b);
}

static void t_round_trip(void **state)
{
    struct fixture *f = *state;
    struct ic_node_config a, b, d;
    struct stat st;
    char *errors = NULL;
    int rc;

    full_config(&a);
    assert_int_equal(ic_node_config_write(f->path, &a), 0);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    rc = ic_node_config_load(f->path, &b, &errors);
    if (rc != 0)
        fail_msg("%s", errors);
    assert_same(&a, &b);
    assert_non_null(ic_node_config_self(&b));
    assert_string_equal(ic_node_config_self(&b)->host, "::1");
    /* and the defaults too, written over the first file */
    ic_node_config_init(&d);
    d.node.id = 1;
    d.node.data_dir = ic_strdup("/d");
    d.tls.cert = ic_strdup("/c");
    d.tls.key = ic_strdup("/k");
    d.tls.ca = ic_strdup("/a");
    assert_int_equal(ic_node_config_write(f->path, &d), 0);
    ic_node_config_free(&b);
    assert_int_equal(ic_node_config_load(f->path, &b, NULL), 0);
    assert_same(&d, &b);
    ic_node_config_free(&a);
    ic_node_config_free(&b);
    ic_node_config_free(&d);
}

static void t_write_refuses(void **state)
{
    struct fixture *f = *state;
    struct ic_node_config c;

    full_config(&c);
    ic_free(c.s2s.secret);
    c.s2s.secret = ic_strdup("0123456789abcdef ;comment");
    assert_int_equal(ic_node_config_write(f->path, &c), IC_EINVAL);
    ic_free(c.s2s.secret);
    c.s2s.secret = ic_strdup("0123456789abcdef\nid = 3");
    assert_int_equal(ic_node_config_write(f->path, &c), IC_EINVAL);
    ic_free(c.s2s.secret);
    c.s2s.secret = ic_strdup(" 0123456789abcdef");
    assert_int_equal(ic_node_config_write(f->path, &c), IC_EINVAL);
    assert_int_equal(access(f->path, F_OK), -1);
    ic_node_config_free(&c);
}

/* One bad line of each kind, and every one of them reported. */
static void t_every_bad_line(void **state)
{
    refused(*state,
            "; a comment\n"                                      /* 1 */
            "stray = 1\n"                                        /* 2 */
            "[node]\n"                                           /* 3 */
            "id = 0\n"                                           /* 4 */
            "data_dir = /d\n"                                    /* 5 */
            "foo = bar\n"                                        /* 6 */
            "role = leader\n"                                    /* 7 */
            "this line has no equals sign\n"                     /* 8 */
            "log_level = loud\n"                                 /* 9 */
            "domain = bad_domain.test\n"                         /* 10 */
            "[c2s]\n"                                            /* 11 */
            "port = 70000\n"                                     /* 12 */
            "port = 5222\n"                                      /* 13 */
            "tls_port = x\n"                                     /* 14 */
            "max_stanza = 1k\n"                                  /* 15 */
            "address = not an address\n"                         /* 16 */
            "[tsl]\n"                                            /* 17 */
            "cert = /c\n"                                        /* 18 */
            "[tls\n"                                             /* 19 */
            "bogus = 1\n"                                        /* 20 */
            "[tls]\n"                                            /* 21 */
            "cert = /c\nkey = /k\nca = /a\n"                     /* 22-24 */
            "min_version = 1.1\n"                                /* 25 */
            "[s2s]\n"                                            /* 26 */
            "dialback = maybe\n"                                 /* 27 */
            "secret = short\n"                                   /* 28 */
            "secret = 0123456789abcdef\n"                        /* 29 */
            "[cluster]\n"                                        /* 30 */
            "peers = 1=127.0.0.1:15225, 2=x:y, 300=h:1, 1=h:2\n" /* 31 */
            "link_port = 0\n"                                    /* 32 */
            "[catalog]\n"                                        /* 33 */
            "load_sample = 2\n"                                  /* 34 */
            "[accounts]\n"                                       /* 35 */
            "admins = admin, bad@one\n"                          /* 36 */
            "and another syntax error\n",                        /* 37 */
            "F:2: key 'stray' outside any [section]\n"
            "F:4: bad value '0' for id (expected 1..255)\n"
            "F:6: unknown key 'foo' in [node]\n"
            "F:7: bad value 'leader' for role (expected root or exchange)\n"
            "F:8: syntax error: expected 'key = value'\n"
            "F:9: bad value 'loud' for log_level (expected error, warn, info, "
            "debug or trace)\n"
            "F:10: bad value 'bad_domain.test' for domain (expected a domain "
            "name)\n"
            "F:12: bad value '70000' for port (expected 1..65535)\n"
            "F:13: duplicate key 'port' in [c2s] (first on line 12)\n"
            "F:14: bad value 'x' for tls_port (expected 1..65535)\n"
            "F:15: bad value '1k' for max_stanza (expected 4096..16777216)\n"
            "F:16: bad value 'not an address' for address (expected an IP "
            "address or a host name)\n"
            "F:17: unknown section [tsl]\n"
            "F:19: syntax error: expected ']' after the section name\n"
            "F:25: bad value '1.1' for min_version (expected 1.2 or 1.3)\n"
            "F:27: bad value 'maybe' for dialback (expected true, false, yes, "
            "no, 1 or 0)\n"
            "F:28: bad value '...' for secret (expected at least 16 "
            "characters)\n"
            "F:29: duplicate key 'secret' in [s2s] (first on line 28)\n"
            "F:31: bad value '2=x:y' for peers (expected ID=HOST:PORT, ... "
            "with ID 1..255 and PORT 1..65535)\n"
            "F:31: bad value '300=h:1' for peers (expected ID=HOST:PORT, ... "
            "with ID 1..255 and PORT 1..65535)\n"
            "F:31: duplicate peer id 1 in peers\n"
            "F:32: bad value '0' for link_port (expected 1..65535)\n"
            "F:34: bad value '2' for load_sample (expected true, false, yes, "
            "no, 1 or 0)\n"
            "F:36: bad value 'bad@one' for admins (expected local parts of "
            "JIDs, separated by commas)\n"
            "F:37: syntax error: expected 'key = value'\n");
}

static void t_missing_required(void **state)
{
    refused(*state, "[node]\nid = 1\ndata_dir = /d\n[tls]\nkey = /k\nca = /a\n",
            "F: missing required key 'cert' in [tls]\n");
    refused(*state, "", /* an empty file */
            "F: missing required key 'id' in [node]\n"
            "F: missing required key 'data_dir' in [node]\n"
            "F: missing required key 'cert' in [tls]\n"
            "F: missing required key 'key' in [tls]\n"
            "F: missing required key 'ca' in [tls]\n");
}

static void t_across_keys(void **state)
{
    refused(*state,
            MINIMAL "[c2s]\nmax_stanza = 8192\nmax_stanza_preauth = 9000\n"
                    "[s2s]\ndialback = yes\n"
                    "[cluster]\npeers = 2=127.0.0.1:15235\n",
            "F:10: max_stanza_preauth (9000) exceeds max_stanza (8192)\n"
            "F:12: dialback needs a secret in [s2s] (the same on every "
            "node)\n"
            "F:14: peers lacks this node (id 1)\n");
    refused(*state, MINIMAL "[cluster]\npeers = 1=127.0.0.1:15235\n",
            "F:9: peers gives this node (id 1) raft port 15235 but "
            "raft_port is 15225\n");
    refused(*state, MINIMAL "[cluster]\nlink_port = 16000\n",
            "F:9: link_port (16000) must be raft_port + 1 (15226): the other "
            "nodes find a node's links there\n");
}

static void t_file_errors(void **state)
{
    struct fixture *f = *state;
    struct ic_node_config c;
    char *errors = NULL, want[256];

    snprintf(want, sizeof want, "%s/nope.conf: No such file or directory\n",
             f->dir);
    snprintf(f->path, sizeof f->path, "%s/nope.conf", f->dir);
    assert_int_equal(ic_node_config_load(f->path, &c, &errors), IC_EIO);
    assert_string_equal(errors, want);
    ic_free(errors);
    assert_int_equal(ic_node_config_load(f->path, &c, NULL), IC_EIO);
}

/* Relative paths are taken from the file's directory, also when the file
 * itself is named relative to the working directory. */
static void t_relative_paths(void **state)
{
    struct fixture *f = *state;
    struct ic_node_config c;
    char sub[128], path[160], cwd[4096], real[4096], want[4200];
    static const char text[] =
        "[node]\nid = 1\ndata_dir = data/node1\n"
        "[tls]\ncert = ../certs/node1.pem\nkey = ./node1.key\n"
        "ca = /etc/ca.pem\n[catalog]\nontology_dir = onto\n";

    tu_join(sub, sizeof sub, f->dir, "etc");
    assert_int_equal(mkdir(sub, 0700), 0);
    tu_join(path, sizeof path, sub, "node.conf");
    tu_write_file(path, text, strlen(text));
    assert_non_null(realpath(sub, real));
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(f->dir), 0);
    assert_int_equal(ic_node_config_load("etc/node.conf", &c, NULL), 0);
    assert_int_equal(chdir(cwd), 0);
    snprintf(want, sizeof want, "%s/data/node1", real);
    assert_string_equal(c.node.data_dir, want);
    snprintf(want, sizeof want, "%s/../certs/node1.pem", real);
    assert_string_equal(c.tls.cert, want);
    snprintf(want, sizeof want, "%s/./node1.key", real);
    assert_string_equal(c.tls.key, want);
    assert_string_equal(c.tls.ca, "/etc/ca.pem");
    snprintf(want, sizeof want, "%s/onto", real);
    assert_string_equal(c.catalog.ontology_dir, want);
    ic_node_config_free(&c);
}

/* What INI files in the wild hold: a BOM, CRLF, indentation, comments,
 * "key: value", booleans in any case. */
static void t_lenient_syntax(void **state)
{
    struct fixture *f = *state;
    struct ic_node_config c;
    char *errors = NULL;
    int rc;

    rc = load_text(f,
                   "\xef\xbb\xbf# node 1\r\n"
                   "[node]\r\n"
                   "  id = 7 ; inline comment\r\n"
                   "\tdata_dir: /d\r\n"
                   "  ; indented comment\r\n"
                   "\r\n"
                   "   domain = Example.ORG\r\n" TLS_OK "[s2s]\n"
                   "dialback = YES\nsecret = 0123456789abcdef;not-a-comment\n"
                   "[catalog]\nload_sample = No\n[accounts]\nadmins =\n",
                   &c, &errors);
    if (rc != 0)
        fail_msg("%s", errors);
    assert_int_equal(c.node.id, 7);
    assert_string_equal(c.node.data_dir, "/d");
    assert_string_equal(c.node.domain, "example.org");
    assert_true(c.s2s.dialback);
    assert_string_equal(c.s2s.secret, "0123456789abcdef;not-a-comment");
    assert_false(c.catalog.load_sample);
    assert_int_equal(c.accounts.n_admins, 0);
    ic_node_config_free(&c);
}

/* Lines longer than inih's buffer still parse; beyond 4096 characters
 * they are refused. */
static void t_long_lines(void **state)
{
    struct fixture *f = *state;
    struct ic_node_config c;
    char text[12000], *errors = NULL;
    size_t n;
    int rc;

    n = (size_t)snprintf(text, sizeof text,
                         MINIMAL "[cluster]\npeers = 1=127.0.0.1:15225");
    for (unsigned id = 2; id <= 40; id++)
        n += (size_t)snprintf(text + n, sizeof text - n,
                              ", %u=node%u.intercloud.example.net:15225", id,
                              id);
    n += (size_t)snprintf(text + n, sizeof text - n, " ; comment\n");
    rc = load_text(f, text, &c, &errors);
    if (rc != 0)
        fail_msg("%s", errors);
    assert_int_equal(c.cluster.n_peers, 40);
    assert_string_equal(c.cluster.peers[39].host,
                        "node40.intercloud.example.net");
    ic_node_config_free(&c);

    n = (size_t)snprintf(text, sizeof text, "%s[accounts]\nadmins = a",
                         MINIMAL);
    memset(text + n, 'a', 5000);
    snprintf(text + n + 5000, sizeof text - n - 5000, "\n[c2s]\nport = 0\n");
    refused(f, text,
            "F:9: line too long (over 4096 characters)\n"
            "F:11: bad value '0' for port (expected 1..65535)\n");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(t_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(t_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(t_write_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(t_every_bad_line, setup, teardown),
        cmocka_unit_test_setup_teardown(t_missing_required, setup, teardown),
        cmocka_unit_test_setup_teardown(t_across_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(t_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(t_relative_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(t_lenient_syntax, setup, teardown),
        cmocka_unit_test_setup_teardown(t_long_lines, setup, teardown),
    };

    (void)argc, (void)argv;
    ic_log_set_level(IC_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
