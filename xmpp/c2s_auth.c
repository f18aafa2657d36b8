/*
 * c2s_auth.c - SASL on a client stream (RFC 6120 section 6) with failed-
 * login throttling per source address, and resource binding (section 7).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "xmpp_int.h"

#define SASL_TRIES_MAX 5 /* RFC 6120 6.4.5: 2 to 5 retries */
#define THROTTLE_WINDOW_MS 60000

static int lookup(void *data,
                  const char *user,
                  enum ic_scram_hash h,
                  struct ic_scram_creds *out)
{
    struct ic_xmpp__conn *c = data;
    struct ic_xmpp_server *srv = c->srv;
    return srv->ops.get_creds(srv->ops.data, user, h, out);
}

/* Whether the client's (unprepared) AUTHZID is the JID BARE. */
static bool same_jid(const char *authzid, const char *bare)
{
    struct ic_jid j;
    char *b;
    bool same;

    if (ic_jid_parse(authzid, &j) != 0)
        return false;
    b = ic_jid_bare(&j);
    same = j.resource == NULL && strcmp(b, bare) == 0;
    ic_free(b);
    ic_jid_free(&j);
    return same;
}

/* EXTERNAL: the certificate's xmppAddr must name an account of ours. */
static int external(void *data, const char *authzid, char **user_out)
{
    struct ic_xmpp__conn *c = data;
    char *addrs = ic_tls_peer_xmpp_addrs(c->tls);
    int rc = IC_ENOTFOUND;

    for (const char *a = addrs; a != NULL && *a; a += strlen(a) + 1) {
        struct ic_jid j;
        if (ic_jid_parse(a, &j) != 0)
            continue;
        if (j.local != NULL && j.resource == NULL &&
            strcmp(j.domain, c->srv->domain) == 0) {
            char *bare = ic_jid_bare(&j);
            if (authzid == NULL || authzid[0] == '\0' ||
                same_jid(authzid, bare)) {
                *user_out = ic_strdup(j.local);
                rc = 0;
            } else {
                rc = IC_EVALUE;
            }
            ic_free(bare);
        }
        ic_jid_free(&j);
        if (rc == 0)
            break;
    }
    ic_free(addrs);
    return rc;
}

static void ops_for(struct ic_xmpp__conn *c, struct ic_sasl_ops *o)
{
    char *addrs = c->tls ? ic_tls_peer_xmpp_addrs(c->tls) : NULL;

    memset(o, 0, sizeof *o);
    o->data = c;
    o->domain = c->srv->domain;
    o->secret = c->srv->secret;
    o->secret_len = sizeof c->srv->secret;
    o->lookup = lookup;
    /* EXTERNAL only for a verified client certificate naming a JID */
    o->external = addrs != NULL ? external : NULL;
    ic_free(addrs);
}

/* Channel-binding data of the connection into CB (buffers E, P). */
static void cb_for(struct ic_xmpp__conn *c,
                   struct ic_sasl_cb *cb,
                   unsigned char *e,
                   unsigned char *p,
                   size_t plen)
{
    memset(cb, 0, sizeof *cb);
    cb->tls = c->tls != NULL;
    if (c->tls == NULL)
        return;
    if (ic_tls_exporter(c->tls, e) == 0) {
        cb->tls_exporter = e;
        cb->tls_exporter_len = 32;
    }
    if (ic_tls_server_end_point(c->tls, p, &plen) == 0) {
        cb->tls_server_end_point = p;
        cb->tls_server_end_point_len = plen;
    }
}

static void send_sasl(struct ic_xmpp__conn *c,
                      const char *elem,
                      const unsigned char *data,
                      size_t len,
                      bool with_data)
{
    struct ic_buf b = {0};

    ic_buf_puts(&b, "<");
    ic_buf_puts(&b, elem);
    ic_buf_puts(&b, " xmlns='" IC_NS_SASL "'");
    if (with_data) {
        char *enc = ic_base64_encode(data, len);
        ic_buf_puts(&b, ">");
        ic_buf_puts(&b, enc);
        ic_buf_puts(&b, "</");
        ic_buf_puts(&b, elem);
        ic_buf_puts(&b, ">");
        ic_free(enc);
    } else {
        ic_buf_puts(&b, "/>");
    }
    ic_xmpp__conn_send(c, b.data, b.len);
    ic_buf_free(&b);
}

static void send_failure(struct ic_xmpp__conn *c, const char *cond)
{
    struct ic_buf b = {0};

    ic_buf_puts(&b, "<failure xmlns='" IC_NS_SASL "'><");
    ic_buf_puts(&b, cond);
    ic_buf_puts(&b, "/></failure>");
    ic_xmpp__conn_send(c, b.data, b.len);
    ic_buf_free(&b);
}

static struct ic_xmpp__throttle *throttle_of(struct ic_xmpp__conn *c)
{
    struct ic_xmpp_server *srv = c->srv;
    struct ic_xmpp__throttle *t = ic_map_get(&srv->throttle, c->peer);
    uint64_t now = ic_xmpp__now_ms(srv);

    if (t == NULL) {
        t = ic_calloc(1, sizeof *t);
        t->window_start = now;
        ic_map_put(&srv->throttle, c->peer, t);
    }
    if (now - t->window_start >= THROTTLE_WINDOW_MS) {
        t->window_start = now;
        t->failures = 0;
    }
    return t;
}

/* A failure; a guess at credentials counts against the address. */
static void failed_as(struct ic_xmpp__conn *c, const char *cond, bool guess)
{
    send_failure(c, cond);
    ic_sasl_free(c->sasl);
    c->sasl = NULL;
    if (c->state == C2S_SASL)
        ic_xmpp__c2s_move(c, C2S_FEATURES_AUTH);
    if (guess)
        throttle_of(c)->failures++;
    if (++c->sasl_failures >= SASL_TRIES_MAX)
        ic_xmpp__conn_fail(c, IC_SE_POLICY_VIOLATION,
                           "too many failed authentication attempts");
}

static void failed(struct ic_xmpp__conn *c, const char *cond)
{
    failed_as(c, cond, true);
}

/* Whether IN is a SCRAM client-first message asking for a channel-binding
 * type we do not have (say tls-unique, which TLS 1.3 lacks): a client
 * trying its preferred mechanism, not guessing a password. */
static bool unsupported_binding(const unsigned char *in, size_t len)
{
    static const char *const ours[] = {"p=tls-exporter,",
                                       "p=tls-server-end-point,"};

    if (len < 2 || in[0] != 'p' || in[1] != '=')
        return false;
    for (size_t i = 0; i < IC_ARRAY_LEN(ours); i++)
        if (len >= strlen(ours[i]) && memcmp(in, ours[i], strlen(ours[i])) == 0)
            return false;
    return true;
}

static void
succeeded(struct ic_xmpp__conn *c, const unsigned char *out, size_t len)
{
    const char *user = ic_sasl_user(c->sasl);

    send_sasl(c, "success", out, len, len > 0);
    ic_free(c->user);
    c->user = ic_strdup(user);
    /* looked up once per stream, not per command */
    c->admin = c->srv->ops.is_admin != NULL &&
               c->srv->ops.is_admin(c->srv->ops.data, user);
    ic_sasl_free(c->sasl);
    c->sasl = NULL;
    ic_xmpp__c2s_move(c, C2S_AUTHED);
    ic_xmpp__c2s_authenticated(c);
}

/* One step with the text of <auth/> or <response/> (NULL: none). */
static void step(struct ic_xmpp__conn *c, const char *text)
{
    unsigned char *in = NULL, *out = NULL;
    size_t in_len = 0, out_len = 0;
    enum ic_sasl_result res;

    if (text != NULL &&
        ic_base64_decode(text, strlen(text), &in, &in_len) != 0) {
        failed(c, "incorrect-encoding");
        return;
    }
    if (c->state == C2S_FEATURES_AUTH && in != NULL &&
        unsupported_binding(in, in_len)) {
        ic_free(in);
        failed_as(c, "not-authorized", false);
        return;
    }
    if (ic_sasl_step(c->sasl, in, in_len, &out, &out_len, &res) != 0)
        res = IC_SASL_FAILURE;
    if (in != NULL)
        OPENSSL_cleanse(in, in_len);
    ic_free(in);
    if (res == IC_SASL_CHALLENGE) {
        send_sasl(c, "challenge", out, out_len, true);
        if (c->state == C2S_FEATURES_AUTH)
            ic_xmpp__c2s_move(c, C2S_SASL);
    } else if (res == IC_SASL_SUCCESS) {
        succeeded(c, out, out_len);
    } else {
        const char *cond = ic_sasl_condition_name(ic_sasl_condition(c->sasl));
        /* Only a checked password or proof is a guess: a refusal of the
         * client's first message (a channel-binding flag, a malformed
         * request) happens before any credential is looked at. */
        const char *mech = ic_sasl_mechanism(c->sasl);
        bool guess = c->state == C2S_SASL || strcmp(mech, "PLAIN") == 0;
        failed_as(c, cond ? cond : "not-authorized", guess);
    }
    ic_free(out);
}

static void start(struct ic_xmpp__conn *c, struct ic_xml *st)
{
    const char *mech = ic_xml_attr(st, "mechanism");
    struct ic_sasl_ops ops;
    struct ic_sasl_cb cb;
    unsigned char e[32], p[64];
    const char *names[IC_SASL_MAX_MECHANISMS];
    bool plus = false;
    size_t n;
    char *text;

    if (throttle_of(c)->failures >= c->srv->cfg.login_throttle) {
        send_failure(c, "temporary-auth-failure");
        return;
    }
    ops_for(c, &ops);
    cb_for(c, &cb, e, p, sizeof p);
    n = ic_sasl_mechanisms(&ops, &cb, names, IC_ARRAY_LEN(names));
    for (size_t i = 0; i < n; i++)
        plus = plus || strstr(names[i], "-PLUS") != NULL;
    ic_sasl_free(c->sasl);
    c->sasl = NULL;
    if (mech == NULL || ic_sasl_new(mech, &ops, &cb, plus, &c->sasl) != 0) {
        send_failure(c, "invalid-mechanism");
        return;
    }
    text = ic_xml_text(st);
    step(c, text[0] != '\0' ? text : NULL);
    ic_free(text);
}

void ic_xmpp__c2s_sasl(struct ic_xmpp__conn *c, struct ic_xml *st)
{
    char *text;

    if (strcmp(st->name, "auth") == 0 && c->state == C2S_FEATURES_AUTH) {
        start(c, st);
    } else if (strcmp(st->name, "response") == 0 && c->state == C2S_SASL) {
        text = ic_xml_text(st);
        step(c, text);
        ic_free(text);
    } else if (strcmp(st->name, "abort") == 0 && c->state == C2S_SASL) {
        send_failure(c, "aborted");
        ic_sasl_free(c->sasl);
        c->sasl = NULL;
        ic_xmpp__c2s_move(c, C2S_FEATURES_AUTH);
    } else {
        ic_xmpp__conn_fail(c, IC_SE_POLICY_VIOLATION,
                           "unexpected SASL element");
    }
}

size_t
ic_xmpp__c2s_mechanisms(struct ic_xmpp__conn *c, const char **names, size_t max)
{
    struct ic_sasl_ops ops;
    struct ic_sasl_cb cb;
    unsigned char e[32], p[64];

    ops_for(c, &ops);
    cb_for(c, &cb, e, p, sizeof p);
    return ic_sasl_mechanisms(&ops, &cb, names, max);
}

/* Resource binding, then the legacy session iq. */
void ic_xmpp__c2s_bind(struct ic_xmpp__conn *c, struct ic_xml *st)
{
    struct ic_xml *b = ic_xml_child(st, "bind", IC_NS_BIND), *res, *r;
    const char *type = ic_xml_attr(st, "type");
    struct ic_xmpp__session *s;
    char *want = NULL;

    if (strcmp(st->name, "iq") != 0 || b == NULL || type == NULL ||
        strcmp(type, "set") != 0) {
        ic_xmpp__conn_fail(c, IC_SE_NOT_AUTHORIZED, "bind a resource first");
        return;
    }
    res = ic_xml_child(b, "resource", IC_NS_BIND);
    if (res != NULL)
        want = ic_xml_text(res);
    if (ic_xmpp__session_bind(c, want, &s) != 0) {
        r = ic_xmpp__error_reply(st, "modify", "bad-request",
                                 "invalid resource");
        ic_xmpp__conn_send_xml(c, r);
        ic_xml_free(r);
        ic_free(want);
        return;
    }
    ic_free(want);
    b = ic_xml_new("bind", IC_NS_BIND);
    ic_xml_add_text(ic_xml_add(b, "jid", NULL), s->full, strlen(s->full));
    r = ic_xmpp__iq_result(st, b);
    ic_xml_set_attr(r, "to", NULL);
    ic_xml_set_attr(r, "from", NULL);
    ic_xmpp__conn_send_xml(c, r);
    ic_xml_free(r);
    ic_xmpp__c2s_move(c, C2S_SESSION);
    ic_xmpp__conn_arm_timer(c);
    IC_LOG(IC_LOG_INFO, "c2s", "%s: bound %s", c->peer, s->full);
}
