/*
 * ctl_verbs.c - icrootctl's online verbs, each one ad-hoc command of the
 * catalog service (docs/protocol.md) run by an admin over XMPP:
 *
 *   status                       node_status
 *   accounts                     list_accounts
 *   account-add USER [--admin]   add_account (a random password unless
 *                                --password-file; printed once)
 *   account-del USER             delete_account
 *   passwd USER                  change_password
 *   load FILE [--graph IRI]      load_catalog (Turtle)
 *   dump [--graph IRI] [--format trig|nq]   dump_catalog
 *   query A=V ... | --xml FILE   constraint_catalog_resources (referrals
 *                                and <partial/> on stderr)
 *   delegation-add A V JID TTL [--fingerprint sha256:HEX]  add_delegation
 *   delegation-del A V           remove_delegation
 *   delegations                  list_delegations
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "ctl.h"

#define NS_RES IC_RESONTOLOGY_NS
#define NS_IODATA "urn:xmpp:tmp:io-data"

static void add_text(struct ic_xml *parent, const char *name, const char *v)
{
    ic_xml_add_text(ic_xml_add(parent, name, NULL), v, strlen(v));
}

/* Runs NODE with PAYLOAD; prints the failure and returns 1, or 0 with the
 * answer in *CMD. */
static int call(struct ctl_remote *r,
                const char *verb,
                const char *node,
                struct ic_xml *payload,
                struct ic_xml **cmd)
{
    char why[600];
    int rc = ctl_remote_command(r, node, payload, cmd, why, sizeof why);

    if (rc != 0) {
        fprintf(stderr, "icrootctl %s: %s\n", verb, why);
        return 1;
    }
    return 0;
}

/* A verb whose answer is only a note: prints "done". */
static int call_simple(struct ctl_remote *r,
                       const char *verb,
                       const char *node,
                       struct ic_xml *payload)
{
    struct ic_xml *cmd = NULL;

    if (call(r, verb, node, payload, &cmd) != 0)
        return 1;
    ic_xml_free(cmd);
    return 0;
}

/* "name value" per child of X; nested elements as "parent.name", members
 * as "member id address role". */
static void print_fields(const struct ic_xml *x, const char *prefix)
{
    for (const struct ic_xml *c = x ? x->children : NULL; c; c = c->next) {
        char name[64], *t;
        if (c->name == NULL)
            continue;
        snprintf(name, sizeof name, "%s%s", prefix, c->name);
        if (strcmp(c->name, "member") == 0) {
            printf("%-17s %s %s %s\n", name, ic_xml_attr(c, "id"),
                   ic_xml_attr(c, "address"), ic_xml_attr(c, "role"));
        } else if (ic_xml_child(c, NULL, NULL) != NULL) {
            snprintf(name, sizeof name, "%s%s.", prefix, c->name);
            print_fields(c, name);
        } else {
            t = ic_xml_text(c);
            printf("%-17s %s\n", name, t);
            ic_free(t);
        }
    }
}

static int verb_status(struct ctl_remote *r, int argc, char **argv)
{
    const struct ic_xml *st;
    struct ic_xml *cmd = NULL;

    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "icrootctl status: no arguments expected\n");
        return 2;
    }
    if (call(r, "status", "node_status", NULL, &cmd) != 0)
        return 1;
    st = ctl_remote_output(cmd, "status");
    printf("%-17s %s:%d\n", "node", r->host, r->port);
    print_fields(st, "");
    ic_xml_free(cmd);
    return st != NULL ? 0 : 1;
}

static int verb_accounts(struct ctl_remote *r, int argc, char **argv)
{
    const struct ic_xml *list;
    struct ic_xml *cmd = NULL;

    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "icrootctl accounts: no arguments expected\n");
        return 2;
    }
    if (call(r, "accounts", "list_accounts", NULL, &cmd) != 0)
        return 1;
    list = ctl_remote_output(cmd, "accounts");
    for (const struct ic_xml *a = ic_xml_child(list, "account", NS_RES);
         a != NULL; a = ic_xml_next(a, "account", NS_RES)) {
        char *u = ic_xml_text(ic_xml_child(a, "user", NS_RES));
        char *adm = ic_xml_text(ic_xml_child(a, "admin", NS_RES));
        printf("%s%s\n", u, strcmp(adm, "true") == 0 ? " (admin)" : "");
        ic_free(u);
        ic_free(adm);
    }
    ic_xml_free(cmd);
    return list != NULL ? 0 : 1;
}

/* The first line of FILE, or a new random password (printed). */
static char *new_password(const char *file, bool *generated)
{
    unsigned char rnd[18];
    size_t len;
    char *pw;

    *generated = file == NULL;
    if (file != NULL) {
        pw = ctl_read_all(file, &len);
        if (pw == NULL)
            return NULL;
        pw[strcspn(pw, "\r\n")] = '\0';
        return pw;
    }
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return NULL;
    pw = ic_malloc(2 * sizeof rnd + 1);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(pw + 2 * i, 3, "%02x", rnd[i]);
    return pw;
}

/* account-add, account-del, passwd */
static int verb_account(struct ctl_remote *r, int argc, char **argv)
{
    const char *verb = argv[0], *user = NULL, *pwfile = NULL;
    bool admin = false, generated = false;
    bool del = strcmp(verb, "account-del") == 0;
    struct ic_xml *acc;
    char *pw = NULL;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--admin") == 0 && !del)
            admin = true;
        else if (strcmp(argv[i], "--password-file") == 0 && i + 1 < argc &&
                 !del)
            pwfile = argv[++i];
        else if (user == NULL && argv[i][0] != '-')
            user = argv[i];
        else {
            fprintf(stderr, "icrootctl %s: unexpected '%s'\n", verb, argv[i]);
            return 2;
        }
    }
    if (user == NULL) {
        fprintf(stderr, "icrootctl %s: no user given\n", verb);
        return 2;
    }
    if (!del && (pw = new_password(pwfile, &generated)) == NULL) {
        fprintf(stderr, "icrootctl %s: %s: %s\n", verb, pwfile,
                strerror(errno));
        return 1;
    }
    acc = ic_xml_new("account", NS_RES);
    add_text(acc, "user", user);
    if (pw != NULL)
        add_text(acc, "password", pw);
    if (strcmp(verb, "account-add") == 0)
        add_text(acc, "admin", admin ? "true" : "false");
    rc = call_simple(r, verb,
                     del                           ? "delete_account"
                     : strcmp(verb, "passwd") == 0 ? "change_password"
                                                   : "add_account",
                     acc);
    if (rc == 0 && generated)
        printf("password for %s@%s: %s\n", user, r->domain, pw);
    if (pw != NULL) {
        OPENSSL_cleanse(pw, strlen(pw));
        ic_free(pw);
    }
    return rc;
}

static int verb_load(struct ctl_remote *r, int argc, char **argv)
{
    const char *file = NULL, *graph = NULL;
    char gbuf[1024];
    struct ic_xml *ttl;
    size_t len;
    char *text;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--graph") == 0 && i + 1 < argc)
            graph = argv[++i];
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
    if (graph == NULL) { /* as offline: urn:icroot:graph:<file's name> */
        const char *base = strrchr(file, '/');
        base = base ? base + 1 : file;
        snprintf(gbuf, sizeof gbuf, "urn:icroot:graph:%.*s",
                 (int)strcspn(base, "."), base);
        graph = gbuf;
    }
    text = ctl_read_all(file, &len);
    if (text == NULL) {
        fprintf(stderr, "icrootctl load: %s: %s\n", file, strerror(errno));
        return 1;
    }
    ttl = ic_xml_new("turtle", NS_RES);
    ic_xml_set_attr(ttl, "graph", graph);
    ic_xml_add_text(ttl, text, len);
    ic_free(text);
    if (call_simple(r, "load", "load_catalog", ttl) != 0)
        return 1;
    printf("loaded %s into the catalog\n", file);
    return 0;
}

static int verb_dump(struct ctl_remote *r, int argc, char **argv)
{
    struct ic_xml *req = ic_xml_new("dump", NS_RES), *cmd = NULL;
    const struct ic_xml *out;
    char *text;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--graph") == 0 && i + 1 < argc)
            ic_xml_set_attr(req, "graph", argv[++i]);
        else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
            ic_xml_set_attr(req, "format", argv[++i]);
        else if (strcmp(argv[i], "--linearizable") == 0)
            ic_xml_set_attr(req, "consistency", "linearizable");
        else {
            fprintf(stderr, "icrootctl dump: unexpected '%s'\n", argv[i]);
            ic_xml_free(req);
            return 2;
        }
    }
    if (call(r, "dump", "dump_catalog", req, &cmd) != 0)
        return 1;
    out = ctl_remote_output(cmd, "trig");
    if (out == NULL)
        out = ctl_remote_output(cmd, "nquads");
    text = out ? ic_xml_text(out) : NULL;
    if (text != NULL)
        fputs(text, stdout);
    ic_free(text);
    ic_xml_free(cmd);
    return out != NULL ? 0 : 1;
}

/* <constraints> from A=V arguments. */
static struct ic_xml *constraints_of_args(int argc, char **argv)
{
    struct ic_xml *cs = ic_xml_new("constraints", NS_RES);

    for (int i = 1; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        struct ic_xml *c;
        if (eq == NULL) {
            fprintf(stderr, "icrootctl query: '%s' is not ATTRIBUTE=VALUE\n",
                    argv[i]);
            ic_xml_free(cs);
            return NULL;
        }
        c = ic_xml_add(cs, "constraint", NULL);
        ic_xml_add_text(ic_xml_add(c, "attribute", NULL), argv[i],
                        (size_t)(eq - argv[i]));
        add_text(c, "value", eq + 1);
    }
    return cs;
}

/* The <constraints> element of an XML file, as the offline query reads
 * it: parsed by the same strict parser, then rebuilt. */
static struct ic_xml *constraints_of_file(const char *path)
{
    struct ic_constraints_doc doc;
    struct ic_xml *cs;
    size_t len;
    char *xml = ctl_read_all(path, &len);

    if (xml == NULL) {
        fprintf(stderr, "icrootctl query: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if (ic_constraints_parse(xml, len, &doc) != 0) {
        fprintf(stderr, "icrootctl query: %s: %s\n", path, doc.error);
        ic_free(xml);
        return NULL;
    }
    ic_free(xml);
    cs = ic_xml_new("constraints", NS_RES);
    if (doc.recursive)
        ic_xml_set_attr(cs, "recursive", "true");
    for (size_t i = 0; i < doc.n; i++) {
        struct ic_xml *c = ic_xml_add(cs, "constraint", NULL);
        add_text(c, "attribute", doc.c[i].attribute);
        add_text(c, "value", doc.c[i].value);
    }
    ic_constraints_doc_free(&doc);
    return cs;
}

/* The referrals and the partial flag of a query's answer, on stderr (the
 * standard output holds the names only). */
static void print_referrals(const struct ic_xml *cmd)
{
    const struct ic_xml *io = ic_xml_child(cmd, "iodata", NS_IODATA);
    const struct ic_xml *out = io ? ic_xml_child(io, "out", NS_IODATA) : NULL;

    for (const struct ic_xml *x = ic_xml_child(out, "referral", NS_RES);
         x != NULL; x = ic_xml_next(x, "referral", NS_RES)) {
        char *e = ic_xml_text(ic_xml_child(x, "exchange", NS_RES));
        char *t = ic_xml_text(ic_xml_child(x, "ttl", NS_RES));
        fprintf(stderr, "referral: %s (ttl %s)\n", e, t);
        ic_free(e);
        ic_free(t);
    }
    if (ic_xml_child(out, "partial", NS_RES) != NULL)
        fprintf(stderr, "partial: an exchange did not answer\n");
}

static int verb_query(struct ctl_remote *r, int argc, char **argv)
{
    struct ic_xml *cs, *cmd = NULL;
    const struct ic_xml *mc;
    bool lin = false, rec = false;

    while (argc > 1 && (strcmp(argv[1], "--linearizable") == 0 ||
                        strcmp(argv[1], "--recursive") == 0)) {
        if (strcmp(argv[1], "--recursive") == 0)
            rec = true;
        else
            lin = true;
        argv[1] = argv[0]; /* the verb stays argv[0] */
        argc--;
        argv++;
    }
    if (argc == 3 && strcmp(argv[1], "--xml") == 0)
        cs = constraints_of_file(argv[2]);
    else
        cs = constraints_of_args(argc, argv);
    if (cs == NULL)
        return 2;
    if (lin)
        ic_xml_set_attr(cs, "consistency", "linearizable");
    if (rec)
        ic_xml_set_attr(cs, "recursive", "true");
    if (call(r, "query", "constraint_catalog_resources", cs, &cmd) != 0)
        return 1;
    print_referrals(cmd);
    mc = ctl_remote_output(cmd, "matchingClouds");
    for (const struct ic_xml *n = ic_xml_child(mc, "cloudName", NS_RES);
         n != NULL; n = ic_xml_next(n, "cloudName", NS_RES)) {
        char *t = ic_xml_text(n);
        printf("%s\n", t);
        ic_free(t);
    }
    ic_xml_free(cmd);
    return mc != NULL ? 0 : 1;
}

/* ---- delegations ------------------------------------------------------- */

static int verb_delegation(struct ctl_remote *r, int argc, char **argv)
{
    const char *verb = argv[0], *fp = NULL, *pos[4] = {NULL};
    bool add = strcmp(verb, "delegation-add") == 0;
    int want = add ? 4 : 2, npos = 0;
    struct ic_xml *d;

    for (int i = 1; i < argc; i++) {
        if (add && strcmp(argv[i], "--fingerprint") == 0 && i + 1 < argc) {
            fp = argv[++i];
        } else if (npos < want && argv[i][0] != '-') {
            pos[npos++] = argv[i];
        } else {
            fprintf(stderr, "icrootctl %s: unexpected '%s'\n", verb, argv[i]);
            return 2;
        }
    }
    if (npos != want) {
        fprintf(stderr, "icrootctl %s: give %s\n", verb,
                add ? "ATTRIBUTE VALUE EXCHANGE_JID TTL "
                      "[--fingerprint sha256:HEX]"
                    : "ATTRIBUTE VALUE");
        return 2;
    }
    d = ic_xml_new("delegation", NS_RES);
    add_text(d, "attribute", pos[0]);
    add_text(d, "value", pos[1]);
    if (add) {
        add_text(d, "exchange", pos[2]);
        add_text(d, "ttl", pos[3]);
        if (fp != NULL)
            add_text(d, "fingerprint", fp);
    }
    if (call_simple(r, verb, add ? "add_delegation" : "remove_delegation", d) !=
        0)
        return 1;
    printf("done\n");
    return 0;
}

/* One line per delegation: ATTRIBUTE=VALUE EXCHANGE TTL [FINGERPRINT]. */
static int verb_delegations(struct ctl_remote *r, int argc, char **argv)
{
    static const char *const fields[] = {"attribute", "value", "exchange",
                                         "ttl", "fingerprint"};
    const struct ic_xml *io, *out;
    struct ic_xml *cmd = NULL;

    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "icrootctl delegations: no arguments expected\n");
        return 2;
    }
    if (call(r, "delegations", "list_delegations", NULL, &cmd) != 0)
        return 1;
    io = ic_xml_child(cmd, "iodata", NS_IODATA);
    out = io ? ic_xml_child(io, "out", NS_IODATA) : NULL;
    for (const struct ic_xml *d = ic_xml_child(out, "delegation", NS_RES);
         d != NULL; d = ic_xml_next(d, "delegation", NS_RES)) {
        for (size_t i = 0; i < IC_ARRAY_LEN(fields); i++) {
            const struct ic_xml *f = ic_xml_child(d, fields[i], NS_RES);
            char *t = f ? ic_xml_text(f) : NULL;
            if (t != NULL)
                printf("%s%s", i == 0 ? "" : i == 1 ? "=" : " ", t);
            ic_free(t);
        }
        printf("\n");
    }
    ic_xml_free(cmd);
    return out != NULL ? 0 : 1;
}

/* ---- membership: on the leader, following one redirect ------------------ */

/* Runs NODE like call(), but when the answer is a redirect ("node N
 * leads") and R came from cluster.json, once more on node N. */
static int call_leader(struct ctl_remote *r,
                       const char *verb,
                       const char *node,
                       struct ic_xml *payload,
                       struct ic_xml **cmd)
{
    struct ic_xml *copy = payload ? ic_xml_copy(payload) : NULL;
    struct ctl_remote to = {0};
    char why[600];
    const char *lead;
    int rc = ctl_remote_command(r, node, payload, cmd, why, sizeof why);
    unsigned n;

    lead = strstr(why, "node ");
    if (rc != 0 && strncmp(why, "redirect", 8) == 0 && r->cluster != NULL &&
        lead != NULL && sscanf(lead, "node %u", &n) == 1 && n > 0) {
        to.user = ic_strdup(r->user);
        to.password = r->password ? ic_strdup(r->password) : NULL;
        to.cert = r->cert ? ic_strdup(r->cert) : NULL;
        to.key = r->key ? ic_strdup(r->key) : NULL;
        to.timeout_ms = r->timeout_ms;
        rc = ctl_remote_from_cluster(&to, r->cluster, (int)n, why, sizeof why);
        if (rc == 0) {
            rc = ctl_remote_command(&to, node, copy, cmd, why, sizeof why);
            copy = NULL;
        }
        ctl_remote_free(&to);
    }
    ic_xml_free(copy);
    if (rc != 0)
        fprintf(stderr, "icrootctl %s: %s\n", verb, why);
    return rc != 0;
}

static struct ic_xml *node_payload(const char *id, const char *address)
{
    struct ic_xml *n = ic_xml_new("node", NS_RES);

    if (id != NULL)
        add_text(n, "id", id);
    if (address != NULL)
        add_text(n, "address", address);
    return n;
}

static int verb_member(struct ctl_remote *r, int argc, char **argv)
{
    const char *verb = argv[0];
    bool add = strcmp(verb, "member-add") == 0;
    bool transfer = strcmp(verb, "transfer") == 0;
    struct ic_xml *cmd = NULL;
    int want = add ? 3 : 2;

    if (!(argc == want || (transfer && argc == 1))) {
        fprintf(stderr, "icrootctl %s: %s\n", verb,
                add        ? "give ID HOST:RAFTPORT"
                : transfer ? "give [ID]"
                           : "give ID");
        return 2;
    }
    if (call_leader(
            r, verb,
            add        ? "add_node"
            : transfer ? "transfer_leadership"
                       : "remove_node",
            node_payload(argc > 1 ? argv[1] : NULL, add ? argv[2] : NULL),
            &cmd) != 0)
        return 1;
    ic_xml_free(cmd);
    printf("done\n");
    return 0;
}

static int verb_members(struct ctl_remote *r, int argc, char **argv)
{
    const struct ic_xml *st, *raft;
    struct ic_xml *cmd = NULL;

    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "icrootctl members: no arguments expected\n");
        return 2;
    }
    if (call(r, "members", "node_status", NULL, &cmd) != 0)
        return 1;
    st = ctl_remote_output(cmd, "status");
    raft = st ? ic_xml_child(st, "raft", NS_RES) : NULL;
    print_fields(raft, "");
    ic_xml_free(cmd);
    return raft != NULL ? 0 : 1;
}

int ctl_online(struct ctl_remote *r, int argc, char **argv)
{
    static const struct {
        const char *verb;
        int (*fn)(struct ctl_remote *r, int argc, char **argv);
    } verbs[] = {
        {"status", verb_status},
        {"accounts", verb_accounts},
        {"account-add", verb_account},
        {"account-del", verb_account},
        {"passwd", verb_account},
        {"load", verb_load},
        {"dump", verb_dump},
        {"query", verb_query},
        {"members", verb_members},
        {"member-add", verb_member},
        {"member-remove", verb_member},
        {"transfer", verb_member},
        {"delegation-add", verb_delegation},
        {"delegation-del", verb_delegation},
        {"delegations", verb_delegations},
    };

    for (size_t i = 0; i < IC_ARRAY_LEN(verbs); i++)
        if (strcmp(argv[0], verbs[i].verb) == 0)
            return verbs[i].fn(r, argc, argv);
    return -1;
}
