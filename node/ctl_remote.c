/*
 * ctl_remote.c - icrootctl's online verbs: they log in to a running node
 * over XMPP (STARTTLS, the node's certificate checked against the CA,
 * SCRAM as an admin account, or EXTERNAL with a client certificate) and
 * run the catalog service's ad-hoc commands (docs/protocol.md), one per
 * invocation.
 *
 * Where to connect and as whom comes from cluster.json (what `icroot dev`
 * writes: domain, CA, each node's address, the admin's password) or from
 * explicit options; see the usage text in ctl.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>
#include <uv.h>

#include "ctl.h"
#include "ic_xmpp.h"

#define NS_COMMANDS "http://jabber.org/protocol/commands"
#define NS_IODATA "urn:xmpp:tmp:io-data"

/* ---- where to connect ------------------------------------------------ */

static char *dup_json_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? ic_strdup(s) : NULL;
}

/* The admin account's password from cluster.json's accounts. */
static void cluster_admin(json_t *root, struct ctl_remote *r)
{
    size_t i;
    json_t *a;

    json_array_foreach(json_object_get(root, "accounts"), i, a)
    {
        const char *jid = json_string_value(json_object_get(a, "jid"));
        size_t ul = strlen(r->user);
        if (jid == NULL || strncmp(jid, r->user, ul) != 0 || jid[ul] != '@')
            continue;
        if (r->password == NULL)
            r->password = dup_json_str(a, "password");
    }
}

int ctl_remote_from_cluster(
    struct ctl_remote *r, const char *path, int node, char *why, size_t why_len)
{
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err), *nodes, *n;
    int rc = IC_EVALUE;

    if (root == NULL) {
        snprintf(why, why_len, "%s:%d: %s", path, err.line, err.text);
        return IC_EIO;
    }
    nodes = json_object_get(root, "nodes");
    n = json_array_get(nodes, (size_t)(node - 1));
    if (node < 1 || n == NULL) {
        snprintf(why, why_len, "%s: no node %d (it lists %zu)", path, node,
                 json_array_size(nodes));
        goto out;
    }
    if (r->domain == NULL)
        r->domain = dup_json_str(root, "domain");
    if (r->ca == NULL)
        r->ca = dup_json_str(root, "ca_cert");
    if (r->host == NULL)
        r->host = dup_json_str(n, "host");
    if (r->port == 0)
        r->port = (int)json_integer_value(json_object_get(n, "c2s_port"));
    if (r->cert == NULL)
        cluster_admin(root, r);
    if (r->domain == NULL || r->host == NULL || r->port <= 0) {
        snprintf(why, why_len, "%s: no domain, host or c2s_port", path);
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* ---- one command ------------------------------------------------------ */

struct call {
    struct ctl_remote *r;
    struct ic_xmpp_client *c;
    const char *node;
    struct ic_xml *payload; /* the <in> content, taken when sent */
    struct ic_xml *reply;   /* the answer iq */
    int err;
    char why[512];
};

static void on_reply(void *data, struct ic_xml *reply)
{
    struct call *k = data;

    k->reply = reply;
    ic_xmpp_client_close(k->c);
}

static void on_ready(void *data, const char *jid)
{
    struct call *k = data;
    struct ic_xml *iq = ic_xml_new("iq", IC_NS_CLIENT);
    struct ic_xml *cmd = ic_xml_add(iq, "command", NS_COMMANDS);
    char to[1100];

    (void)jid;
    snprintf(to, sizeof to, "service.%s", k->r->domain);
    ic_xml_set_attr(iq, "type", "set");
    ic_xml_set_attr(iq, "to", to);
    ic_xml_set_attr(cmd, "node", k->node);
    ic_xml_set_attr(cmd, "action", "execute");
    if (k->payload != NULL) {
        struct ic_xml *io = ic_xml_add(cmd, "iodata", NS_IODATA);
        ic_xml_set_attr(io, "type", "input");
        ic_xml_append(ic_xml_add(io, "in", NULL), k->payload);
        k->payload = NULL;
    }
    if (ic_xmpp_client_iq(k->c, iq, on_reply, k) != 0)
        ic_xmpp_client_close(k->c);
}

static void on_closed(void *data, int err, const char *why)
{
    struct call *k = data;

    k->err = err;
    snprintf(k->why, sizeof k->why, "%s", why);
}

/* The text of an error iq: "condition: text". */
static void stanza_error(const struct ic_xml *iq, char *why, size_t why_len)
{
    const struct ic_xml *e = ic_xml_child(iq, "error", NULL), *x;
    const char *cond = "undefined-condition";
    char *text = NULL;

    for (x = e ? e->children : NULL; x != NULL; x = x->next) {
        if (x->name == NULL)
            continue;
        if (strcmp(x->name, "text") == 0)
            text = ic_xml_text(x);
        else
            cond = x->name;
    }
    snprintf(why, why_len, "%s%s%s", cond, text ? ": " : "", text ? text : "");
    ic_free(text);
}

/* An error note of a completed command ("" when none). */
static const struct ic_xml *error_note(const struct ic_xml *cmd)
{
    for (const struct ic_xml *n = ic_xml_child(cmd, "note", NS_COMMANDS);
         n != NULL; n = ic_xml_next(n, "note", NS_COMMANDS)) {
        const char *t = ic_xml_attr(n, "type");
        if (t != NULL && strcmp(t, "error") == 0)
            return n;
    }
    return NULL;
}

static int check_reply(struct call *k, struct ic_xml **out_cmd)
{
    const char *type;
    const struct ic_xml *note;
    struct ic_xml *cmd;
    char *text;

    if (k->reply == NULL) {
        if (k->err == 0) {
            snprintf(k->why, sizeof k->why, "no answer");
            k->err = IC_EIO;
        }
        return k->err;
    }
    type = ic_xml_attr(k->reply, "type");
    if (type == NULL || strcmp(type, "result") != 0) {
        stanza_error(k->reply, k->why, sizeof k->why);
        return IC_EVALUE;
    }
    cmd = ic_xml_child(k->reply, "command", NS_COMMANDS);
    if (cmd == NULL) {
        snprintf(k->why, sizeof k->why, "the answer holds no <command/>");
        return IC_EIO;
    }
    note = error_note(cmd);
    if (note != NULL) {
        text = ic_xml_text(note);
        snprintf(k->why, sizeof k->why, "%s", text);
        ic_free(text);
        return IC_EVALUE;
    }
    ic_xml_detach(cmd);
    *out_cmd = cmd;
    return 0;
}

int ctl_remote_command(struct ctl_remote *r,
                       const char *node,
                       struct ic_xml *payload,
                       struct ic_xml **out_cmd,
                       char *why,
                       size_t why_len)
{
    static const struct ic_xmpp_client_cbs cbs = {on_ready, NULL, on_closed};
    struct ic_xmpp_client_opts o = {0};
    struct call k = {.r = r, .node = node, .payload = payload};
    uv_loop_t loop;
    int rc;

    signal(SIGPIPE, SIG_IGN);
    o.host = r->host;
    o.port = r->port;
    o.domain = r->domain;
    o.ca = r->ca;
    o.cert = r->cert;
    o.key = r->key;
    o.user = r->cert != NULL && r->password == NULL ? NULL : r->user;
    o.password = r->password;
    /* a resource of the server's choosing: concurrent icrootctl runs of
     * one account must not share a full JID (each would take the other's
     * answers) */
    o.resource = NULL;
    o.timeout_ms = r->timeout_ms;
    uv_loop_init(&loop);
    rc = ic_xmpp_client_new(&loop, &o, &cbs, &k, &k.c);
    if (rc != 0) {
        snprintf(why, why_len,
                 "cannot start a client (check --ca, --cert, "
                 "--key and the account)");
        ic_xml_free(payload);
        uv_loop_close(&loop);
        return rc;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    ic_xml_free(k.payload); /* when never sent */
    rc = check_reply(&k, out_cmd);
    if (rc != 0)
        snprintf(why, why_len, "%s", k.why);
    ic_xml_free(k.reply);
    return rc;
}

/* The payload of the answer's <iodata type='output'><out>: its first
 * element named NAME, or NULL. */
const struct ic_xml *ctl_remote_output(const struct ic_xml *cmd,
                                       const char *name)
{
    const struct ic_xml *io = ic_xml_child(cmd, "iodata", NS_IODATA);
    const struct ic_xml *out = io ? ic_xml_child(io, "out", NS_IODATA) : NULL;

    return out ? ic_xml_child(out, name, IC_RESONTOLOGY_NS) : NULL;
}

void ctl_remote_free(struct ctl_remote *r)
{
    ic_free(r->host);
    ic_free(r->domain);
    ic_free(r->ca);
    ic_free(r->cert);
    ic_free(r->key);
    ic_free(r->user);
    ic_free(r->password);
    ic_free(r->cluster);
    memset(r, 0, sizeof *r);
}
