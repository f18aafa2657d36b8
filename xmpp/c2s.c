/*
 * c2s.c - the client stream's state machine (RFC 6120): stream headers and
 * features, STARTTLS, SASL, resource binding, then stanzas to the router.
 *
 * Every move of a connection's state is one row of `moves` and is checked
 * by ic_xmpp__c2s_move(); a move not in the table is a bug (assert).
 */
#define _POSIX_C_SOURCE 200809L
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "xmpp_int.h"

static const char *const state_names[C2S__COUNT] = {
    "connected",     "tls-handshake", "tls-stream", "features-tls",
    "features-auth", "sasl",          "authed",     "features-bind",
    "session",       "closing",       "closed",
};

/* The allowed moves, each with the event that makes it. */
static const struct ic_xmpp__move moves[] = {
    {C2S_CONNECTED, C2S_FEATURES_TLS, "stream header"},
    {C2S_FEATURES_TLS, C2S_TLS_HANDSHAKE, "<starttls/>"},
    {C2S_TLS_HANDSHAKE, C2S_TLS_STREAM, "TLS established"},
    {C2S_TLS_STREAM, C2S_FEATURES_AUTH, "stream header"},
    {C2S_FEATURES_AUTH, C2S_SASL, "<auth/>, challenge"},
    {C2S_FEATURES_AUTH, C2S_AUTHED, "<auth/>, success"},
    {C2S_SASL, C2S_AUTHED, "<response/>, success"},
    {C2S_SASL, C2S_FEATURES_AUTH, "failure or <abort/>"},
    {C2S_AUTHED, C2S_FEATURES_BIND, "stream header"},
    {C2S_FEATURES_BIND, C2S_SESSION, "resource bound"},
};

const char *ic_xmpp__c2s_state_name(enum ic_c2s_state s)
{
    return (unsigned)s < C2S__COUNT ? state_names[s] : "?";
}

bool ic_xmpp__c2s_allowed(enum ic_c2s_state from, enum ic_c2s_state to)
{
    return ic_xmpp__move_ok(moves, IC_ARRAY_LEN(moves), (int)from, (int)to);
}

void ic_xmpp__c2s_move(struct ic_xmpp__conn *c, enum ic_c2s_state to)
{
    bool ok = ic_xmpp__c2s_allowed(c->state, to);

    assert(ok && "c2s: move not in the transition table");
    if (!ok)
        return;
    IC_LOG(IC_LOG_DEBUG, "c2s", "%s: %s -> %s", c->peer, state_names[c->state],
           state_names[to]);
    c->state = to;
}

static void send_str(struct ic_xmpp__conn *c, const char *s)
{
    ic_xmpp__conn_send(c, s, strlen(s));
}

static void send_header(struct ic_xmpp__conn *c, const char *to)
{
    struct ic_buf b = {0};
    unsigned char rnd[12];
    char id[32];

    RAND_bytes(rnd, sizeof rnd);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    ic_free(c->id);
    c->id = ic_strdup(id);
    ic_buf_puts(&b, "<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
                    " xmlns:stream='" IC_NS_STREAMS "' id='");
    ic_buf_puts(&b, id);
    ic_buf_puts(&b, "' from='");
    ic_buf_append_escaped(&b, c->srv->domain, strlen(c->srv->domain));
    if (to != NULL) {
        ic_buf_puts(&b, "' to='");
        ic_buf_append_escaped(&b, to, strlen(to));
    }
    ic_buf_puts(&b, "' version='1.0' xml:lang='en'>");
    ic_xmpp__conn_send(c, b.data, b.len);
    ic_buf_free(&b);
}

static void send_auth_features(struct ic_xmpp__conn *c)
{
    const char *names[IC_SASL_MAX_MECHANISMS];
    size_t n = ic_xmpp__c2s_mechanisms(c, names, IC_ARRAY_LEN(names));
    struct ic_buf b = {0};
    unsigned char x[64];
    size_t xl = sizeof x;
    bool plus = false;

    ic_buf_puts(&b, "<stream:features><mechanisms xmlns='" IC_NS_SASL "'>");
    for (size_t i = 0; i < n; i++) {
        ic_buf_puts(&b, "<mechanism>");
        ic_buf_puts(&b, names[i]);
        ic_buf_puts(&b, "</mechanism>");
        plus = plus || strstr(names[i], "-PLUS") != NULL;
    }
    ic_buf_puts(&b, "</mechanisms>");
    if (plus) { /* XEP-0440: which channel-binding types we support */
        ic_buf_puts(&b, "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>");
        if (ic_tls_exporter(c->tls, x) == 0)
            ic_buf_puts(&b, "<channel-binding type='tls-exporter'/>");
        if (ic_tls_server_end_point(c->tls, x, &xl) == 0)
            ic_buf_puts(&b, "<channel-binding type='tls-server-end-point'/>");
        ic_buf_puts(&b, "</sasl-channel-binding>");
    }
    ic_buf_puts(&b, "</stream:features>");
    ic_xmpp__conn_send(c, b.data, b.len);
    ic_buf_free(&b);
}

void ic_xmpp__c2s_on_open(struct ic_xmpp__conn *c, struct ic_xml *header)
{
    const char *to = ic_xml_attr(header, "to");
    const char *from = ic_xml_attr(header, "from");
    const char *version = ic_xml_attr(header, "version");

    if (c->closing)
        goto out;
    send_header(c, from);
    if (to == NULL || strcasecmp(to, c->srv->domain) != 0) {
        ic_xmpp__conn_fail(c, IC_SE_HOST_UNKNOWN,
                           "this server serves "
                           "another domain");
        goto out;
    }
    if (ic_xml_stream_content_ns(c->stream) == NULL ||
        strcmp(ic_xml_stream_content_ns(c->stream), IC_NS_CLIENT) != 0) {
        ic_xmpp__conn_fail(c, IC_SE_INVALID_NAMESPACE,
                           "the stream's namespace must be jabber:client");
        goto out;
    }
    if (version == NULL || strncmp(version, "1.", 2) != 0) {
        ic_xmpp__conn_fail(c, IC_SE_UNSUPPORTED_VERSION, "version 1.0 only");
        goto out;
    }
    switch (c->state) {
    case C2S_CONNECTED:
        send_str(c, "<stream:features><starttls xmlns='" IC_NS_TLS
                    "'><required/></starttls></stream:features>");
        ic_xmpp__c2s_move(c, C2S_FEATURES_TLS);
        break;
    case C2S_TLS_STREAM:
        send_auth_features(c);
        ic_xmpp__c2s_move(c, C2S_FEATURES_AUTH);
        break;
    case C2S_AUTHED:
        send_str(c, "<stream:features><bind xmlns='" IC_NS_BIND "'/>"
                    "<session xmlns='" IC_NS_SESSION "'><optional/>"
                    "</session></stream:features>");
        ic_xmpp__c2s_move(c, C2S_FEATURES_BIND);
        break;
    default:
        ic_xmpp__conn_fail(c, IC_SE_BAD_FORMAT, "unexpected stream header");
    }
out:
    ic_xml_free(header);
}

void ic_xmpp__c2s_on_tls_ready(struct ic_xmpp__conn *c)
{
    IC_LOG(IC_LOG_DEBUG, "c2s", "%s: %s", c->peer, ic_tls_version(c->tls));
    ic_xml_stream_reset(c->stream);
    ic_xmpp__c2s_move(c, C2S_TLS_STREAM);
}

static bool is(const struct ic_xml *x, const char *name, const char *ns)
{
    return x->name != NULL && strcmp(x->name, name) == 0 && x->ns != NULL &&
           strcmp(x->ns, ns) == 0;
}

static void on_starttls(struct ic_xmpp__conn *c, struct ic_xml *st)
{
    if (!is(st, "starttls", IC_NS_TLS)) {
        ic_xmpp__conn_fail(c, IC_SE_POLICY_VIOLATION,
                           "STARTTLS is required first");
        return;
    }
    send_str(c, "<proceed xmlns='" IC_NS_TLS "'/>");
    /* Whatever follows <starttls/> in this read was sent before the client
     * saw <proceed/>: stop here so it is dropped, not parsed. */
    ic_xml_stream_stop(c->stream);
    if (ic_xmpp__conn_start_tls(c) != 0) {
        ic_xmpp__conn_close(c);
        return;
    }
    ic_xmpp__c2s_move(c, C2S_TLS_HANDSHAKE);
}

void ic_xmpp__c2s_authenticated(struct ic_xmpp__conn *c)
{
    struct ic_xml_limits lim = {c->srv->cfg.max_stanza, 32, 4096, 64};

    ic_xml_stream_set_limits(c->stream, &lim);
    /* The client restarts the stream right after <success/>. */
    ic_xml_stream_stop(c->stream);
    ic_xml_stream_reset(c->stream);
    IC_LOG(IC_LOG_INFO, "c2s", "%s: authenticated %s@%s", c->peer, c->user,
           c->srv->domain);
}

void ic_xmpp__c2s_on_stanza(struct ic_xmpp__conn *c, struct ic_xml *st)
{
    if (c->closing)
        goto out;
    switch (c->state) {
    case C2S_FEATURES_TLS:
        on_starttls(c, st);
        break;
    case C2S_FEATURES_AUTH:
    case C2S_SASL:
        if (st->ns == NULL || strcmp(st->ns, IC_NS_SASL) != 0) {
            ic_xmpp__conn_fail(c, IC_SE_NOT_AUTHORIZED, "authenticate first");
            break;
        }
        ic_xmpp__c2s_sasl(c, st);
        break;
    case C2S_FEATURES_BIND:
        ic_xmpp__c2s_bind(c, st);
        break;
    case C2S_SESSION:
        if (st->ns == NULL || strcmp(st->ns, IC_NS_CLIENT) != 0) {
            ic_xmpp__conn_fail(c, IC_SE_INVALID_NAMESPACE,
                               "stanzas must be in jabber:client");
            break;
        }
        ic_xmpp__route(c->srv, c->session, st);
        st = NULL; /* the router owns it */
        break;
    default:
        ic_xmpp__conn_fail(c, IC_SE_NOT_AUTHORIZED, "unexpected element");
    }
out:
    ic_xml_free(st);
}
