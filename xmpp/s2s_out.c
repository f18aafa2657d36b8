/*
 * s2s_out.c - the initiating side of S2S (see s2s.h): where the peer is
 * (a configured route, DNS SRV, port 5269), connect, STARTTLS (required),
 * then SASL EXTERNAL with our certificate when the peer's certificate names
 * its domain and it offers EXTERNAL, else dialback where allowed; the
 * pair's queue goes out once the stream is up. Dialback verifications
 * (<db:verify/>) for our incoming streams ride on these streams too.
 *
 * Every move is one row of `moves`, checked on each move.
 */
#define _POSIX_C_SOURCE 200809L
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "s2s.h"

static const struct ic_xmpp__move moves[] = {
    {S2S_CONNECTING, S2S_FEATURES_TLS, "TCP up, header sent"},
    {S2S_CONNECTING, S2S_TLS, "TCP up, direct TLS (XEP-0368)"},
    {S2S_FEATURES_TLS, S2S_STARTTLS, "<starttls/> sent"},
    {S2S_STARTTLS, S2S_TLS, "<proceed/>"},
    {S2S_TLS, S2S_FEATURES_AUTH, "TLS up, header sent"},
    {S2S_FEATURES_AUTH, S2S_SASL, "EXTERNAL sent"},
    {S2S_SASL, S2S_FEATURES_UP, "<success/>, header sent"},
    {S2S_FEATURES_UP, S2S_UP, "features after SASL"},
    {S2S_FEATURES_AUTH, S2S_DIALBACK, "<db:result/> sent"},
    {S2S_DIALBACK, S2S_UP, "dialback valid"},
};

static void move(struct s2s_stream *st, enum s2s_state to)
{
    bool ok =
        ic_xmpp__move_ok(moves, IC_ARRAY_LEN(moves), (int)st->state, (int)to);

    (void)ok; /* without assertions (NDEBUG) */
    assert(ok && "s2s out: move not in the transition table");
    IC_LOG(IC_LOG_DEBUG, "s2s", "%s -> %s: %s -> %s", st->local, st->remote,
           ic_xmpp__s2s_state_names[st->state], ic_xmpp__s2s_state_names[to]);
    st->state = to;
}

static void fail(struct s2s_stream *st, const char *cond, const char *why)
{
    ic_xmpp__s2s_stream_fail(st, cond, why);
}

/* ---- dialback verifications ---------------------------------------------
 */

/* Sends the verifications of P not sent yet, once its stream has TLS. */
static void send_verifies(struct s2s_peer *p)
{
    struct s2s_stream *st = p->out;
    struct ic_buf b = {0};

    if (st == NULL || st->state < S2S_FEATURES_AUTH || st->state == S2S_CLOSING)
        return;
    for (struct s2s_verify *v = p->verifies; v != NULL; v = v->next) {
        if (v->sent)
            continue;
        v->sent = true;
        ic_buf_reset(&b);
        ic_buf_puts(&b, "<db:verify from='");
        ic_buf_append_escaped(&b, p->local, strlen(p->local));
        ic_buf_puts(&b, "' to='");
        ic_buf_append_escaped(&b, p->remote, strlen(p->remote));
        ic_buf_puts(&b, "' id='");
        ic_buf_append_escaped(&b, v->id, strlen(v->id));
        ic_buf_puts(&b, "'>");
        ic_buf_append_escaped(&b, v->key, strlen(v->key));
        ic_buf_puts(&b, "</db:verify>");
        ic_xmpp__sock_send(&st->sock, b.data, b.len);
    }
    ic_buf_free(&b);
}

static void verify_free(struct s2s_verify *v)
{
    ic_free(v->id);
    ic_free(v->key);
    ic_free(v);
}

/* The answer to one of our <db:verify/>s (or, ID NULL, no answer will
 * come: every waiting verification is invalid). */
static void verify_answered(struct s2s_peer *p, const char *id, bool valid)
{
    struct s2s_verify **pp = &p->verifies;

    while (*pp != NULL) {
        struct s2s_verify *v = *pp;
        if (id != NULL && (!v->sent || strcmp(v->id, id) != 0)) {
            pp = &v->next;
            continue;
        }
        *pp = v->next;
        if (v->in != NULL)
            ic_xmpp__s2s_in_verdict(v->in, p->remote, valid);
        verify_free(v);
        if (id != NULL)
            return;
    }
}

void ic_xmpp__s2s_out_verify(struct s2s_peer *p, struct s2s_verify *v)
{
    v->next = p->verifies;
    p->verifies = v;
    if (p->out != NULL)
        send_verifies(p);
    else if (!p->resolving)
        ic_xmpp__s2s_out_connect(p);
}

/* ---- authentication ----------------------------------------------------- */

static bool offers_mechanism(const struct ic_xml *features, const char *name)
{
    return ic_xmpp__mechanism_offered(
        ic_xml_child(features, "mechanisms", IC_NS_SASL), name);
}

static void send_db_result(struct s2s_stream *st)
{
    struct ic_buf b = {0};
    char key[65];

    ic_xmpp__s2s_db_key(st->s2s, st->remote, st->local, st->id, key);
    ic_buf_puts(&b, "<db:result from='");
    ic_buf_append_escaped(&b, st->local, strlen(st->local));
    ic_buf_puts(&b, "' to='");
    ic_buf_append_escaped(&b, st->remote, strlen(st->remote));
    ic_buf_puts(&b, "'>");
    ic_buf_puts(&b, key);
    ic_buf_puts(&b, "</db:result>");
    ic_xmpp__sock_send(&st->sock, b.data, b.len);
    ic_buf_free(&b);
}

/* Features after TLS: EXTERNAL, else dialback, else give up. */
static void authenticate(struct s2s_stream *st, const struct ic_xml *features)
{
    bool dialback_offered =
        ic_xml_child(features, "dialback", IC_NS_DIALBACK_FEATURE) != NULL;
    char why[256];

    int pin = ic_xmpp__s2s_check_pin(st, st->remote);

    if (pin == IC_EAUTH) {
        fail(st, "not-authorized", "the certificate is not the pinned one");
        return;
    }
    st->tls_verified = pin == 0 || ic_tls_peer_names(st->sock.tls, st->remote);
    if (st->tls_verified && offers_mechanism(features, "EXTERNAL")) {
        struct ic_buf b = {0};
        char *authz = ic_base64_encode((const unsigned char *)st->local,
                                       strlen(st->local));
        move(st, S2S_SASL);
        ic_buf_puts(&b, "<auth xmlns='" IC_NS_SASL "' mechanism='EXTERNAL'>");
        ic_buf_puts(&b, authz);
        ic_buf_puts(&b, "</auth>");
        ic_xmpp__sock_send(&st->sock, b.data, b.len);
        ic_buf_free(&b);
        ic_free(authz);
        return;
    }
    if (st->s2s->dialback && dialback_offered && st->id != NULL) {
        move(st, S2S_DIALBACK);
        send_db_result(st);
        return;
    }
    if (st->s2s->dialback && dialback_offered) {
        fail(st, "invalid-id", "the peer's stream header has no id");
        return;
    }
    snprintf(why, sizeof why, "cannot authenticate: %s%s%s; %s",
             st->tls_verified ? "the peer does not offer EXTERNAL"
                              : "the peer's certificate is not valid for it",
             st->tls_verified ? "" : ": ",
             st->tls_verified ? "" : ic_tls_verify_error(st->sock.tls),
             st->s2s->dialback ? "and no dialback offered"
                               : "dialback is off here");
    fail(st, "not-authorized", why);
}

/* ---- the stream --------------------------------------------------------- */

static void on_features(struct s2s_stream *st, const struct ic_xml *x)
{
    switch (st->state) {
    case S2S_FEATURES_TLS:
        if (ic_xml_child(x, "starttls", IC_NS_TLS) == NULL) {
            fail(st, "policy-violation", "the peer does not offer STARTTLS");
            return;
        }
        move(st, S2S_STARTTLS);
        ic_xmpp__sock_send_str(&st->sock, "<starttls xmlns='" IC_NS_TLS "'/>");
        break;
    case S2S_FEATURES_AUTH:
        send_verifies(st->peer);
        authenticate(st, x);
        break;
    case S2S_FEATURES_UP:
        move(st, S2S_UP);
        IC_LOG(IC_LOG_INFO, "s2s", "%s -> %s up (%s, certificate%s)", st->local,
               st->remote, st->sock.peer, st->direct_tls ? ", direct TLS" : "");
        ic_xmpp__s2s_peer_up(st->peer);
        break;
    default:
        fail(st, "unsupported-feature", "unexpected stream features");
    }
}

static void on_sasl(struct s2s_stream *st, const struct ic_xml *x)
{
    if (strcmp(x->name, "success") == 0) {
        ic_xml_stream_stop(st->sock.stream);
        ic_xml_stream_reset(st->sock.stream);
        move(st, S2S_FEATURES_UP);
        ic_xmpp__s2s_send_header(st, false); /* the restarted stream */
    } else {
        fail(st, NULL, "the peer refused our certificate (SASL EXTERNAL)");
    }
}

static void on_db(struct s2s_stream *st, const struct ic_xml *x)
{
    const char *type = ic_xml_attr(x, "type");
    bool valid = type != NULL && strcmp(type, "valid") == 0;

    if (strcmp(x->name, "verify") == 0) {
        const char *id = ic_xml_attr(x, "id");
        if (id != NULL && type != NULL)
            verify_answered(st->peer, id, valid);
        return;
    }
    if (strcmp(x->name, "result") != 0 || st->state != S2S_DIALBACK) {
        fail(st, "not-authorized", "unsolicited dialback");
        return;
    }
    if (!valid) {
        fail(st, NULL, "the peer refused our dialback key");
        return;
    }
    move(st, S2S_UP);
    IC_LOG(IC_LOG_INFO, "s2s", "%s -> %s up (%s, dialback%s)", st->local,
           st->remote, st->sock.peer, st->direct_tls ? ", direct TLS" : "");
    ic_xmpp__s2s_peer_up(st->peer);
}

static void stream_error(struct s2s_stream *st, const struct ic_xml *x)
{
    const char *cond = "undefined-condition";
    char why[160];

    for (const struct ic_xml *c = x->children; c != NULL; c = c->next)
        if (c->name != NULL && c->ns != NULL &&
            strcmp(c->ns, IC_NS_STREAM_ERRORS) == 0 &&
            strcmp(c->name, "text") != 0)
            cond = c->name;
    snprintf(why, sizeof why, "stream error from the peer: %s", cond);
    fail(st, NULL, why);
}

static void on_stanza(void *data, struct ic_xml *x)
{
    struct s2s_stream *st = data;

    if (st->state == S2S_CLOSING || x->name == NULL)
        goto drop;
    if (x->ns != NULL && strcmp(x->ns, IC_NS_STREAMS) == 0) {
        if (strcmp(x->name, "error") == 0)
            stream_error(st, x);
        else if (strcmp(x->name, "features") == 0)
            on_features(st, x);
        else
            fail(st, "unsupported-stanza-type", x->name);
    } else if (st->state == S2S_STARTTLS) {
        if (x->ns == NULL || strcmp(x->ns, IC_NS_TLS) != 0 ||
            strcmp(x->name, "proceed") != 0) {
            fail(st, NULL, "the peer refused STARTTLS");
        } else {
            ic_xml_stream_stop(st->sock.stream);
            ic_xml_stream_reset(st->sock.stream);
            st->header_sent = false; /* a new stream comes over TLS */
            move(st, S2S_TLS);
            if (ic_xmpp__sock_start_tls(&st->sock, st->s2s->tls_client,
                                        st->remote) != 0)
                fail(st, NULL, "TLS cannot start");
        }
    } else if (st->state == S2S_SASL && x->ns != NULL &&
               strcmp(x->ns, IC_NS_SASL) == 0) {
        on_sasl(st, x);
    } else if (x->ns != NULL && strcmp(x->ns, IC_NS_DIALBACK) == 0 &&
               st->state >= S2S_FEATURES_AUTH) {
        on_db(st, x);
    } else {
        /* no stanzas come back on a stream we opened (no XEP-0288) */
        fail(st, "unsupported-stanza-type", x->name);
    }
drop:
    ic_xml_free(x);
}

static void on_open(void *data, struct ic_xml *header)
{
    struct s2s_stream *st = data;
    const char *ns = ic_xml_stream_content_ns(st->sock.stream);
    const char *id = ic_xml_attr(header, "id");

    if (ns == NULL || strcmp(ns, IC_NS_SERVER) != 0) {
        fail(st, "invalid-namespace", "the peer's stream is not jabber:server");
    } else {
        ic_free(st->id);
        st->id = id ? ic_strdup(id) : NULL;
    }
    ic_xml_free(header);
}

static void on_stream_close(void *data)
{
    fail(data, NULL, "the peer closed the stream");
}

static void on_parse_error(void *data, enum ic_stream_error c, const char *t)
{
    fail(data, ic_stream_error_name(c), t ? t : "bad XML");
}

static void on_connected(void *owner)
{
    struct s2s_stream *st = owner;

    if (st->direct_tls) {
        move(st, S2S_TLS);
        if (ic_xmpp__sock_start_tls(&st->sock, st->s2s->tls_client_direct,
                                    st->remote) != 0)
            fail(st, NULL, "TLS cannot start");
        return;
    }
    move(st, S2S_FEATURES_TLS);
    ic_xmpp__s2s_send_header(st, false);
}

static void on_tls_ready(void *owner)
{
    struct s2s_stream *st = owner;

    move(st, S2S_FEATURES_AUTH);
    ic_xmpp__s2s_send_header(st, false);
}

static void on_down(void *owner, int err, const char *why)
{
    (void)err;
    fail(owner, NULL, why);
}

static void on_closed(void *owner)
{
    struct s2s_stream *st = owner;
    struct s2s_peer *p = st->peer;

    /* verifications sent on this stream get no answer now */
    if (p != NULL && p->out == st)
        for (struct s2s_verify *v = p->verifies; v != NULL; v = v->next)
            v->sent = false;
    ic_xmpp__s2s_stream_closed(st);
}

static const struct ic_xmpp__sock_ops sock_ops = {on_connected, on_tls_ready,
                                                  on_down, on_closed};

/* ---- finding the peer --------------------------------------------------- */

/* The configured route for DOMAIN (itself or a parent domain), longest
 * match first. */
static const struct ic_xmpp_s2s_route *route_for(const struct ic_xmpp_config *c,
                                                 const char *domain)
{
    const struct ic_xmpp_s2s_route *best = NULL;
    size_t dl = strlen(domain), best_len = 0;

    for (size_t i = 0; i < c->n_s2s_routes; i++) {
        const struct ic_xmpp_s2s_route *r = &c->s2s_routes[i];
        size_t rl = strlen(r->domain);
        bool match = (dl == rl && strcasecmp(domain, r->domain) == 0) ||
                     (dl > rl && domain[dl - rl - 1] == '.' &&
                      strcasecmp(domain + dl - rl, r->domain) == 0);
        if (match && rl > best_len) {
            best = r;
            best_len = rl;
        }
    }
    return best;
}

static void clear_targets(struct s2s_peer *p)
{
    for (size_t i = 0; i < p->n_targets; i++)
        ic_free(p->targets[i].host);
    ic_free(p->targets);
    p->targets = NULL;
    p->n_targets = p->next_target = 0;
}

/* Nothing more to try: waiting stanzas bounce, waiting verifications are
 * invalid. */
static void give_up(struct s2s_peer *p)
{
    clear_targets(p);
    verify_answered(p, NULL, false);
    ic_xmpp__s2s_peer_failed(p);
}

static void on_resolved(void *arg, int rc, struct s2s_target *t, size_t n)
{
    struct s2s_peer *p = arg;
    char why[256];

    p->resolving = false;
    ic_xmpp__server_release(p->s2s->srv);
    if (p->s2s->shutting_down) {
        for (size_t i = 0; i < n; i++)
            ic_free(t[i].host);
        ic_free(t);
        return;
    }
    if (rc != 0 || n == 0) {
        snprintf(why, sizeof why, "no S2S service found for %s: %s", p->remote,
                 ic_strerror(rc));
        IC_LOG(IC_LOG_WARN, "s2s", "%s", why);
        ic_free(p->last_error);
        p->last_error = ic_strdup(why);
        give_up(p);
        return;
    }
    clear_targets(p);
    p->targets = t;
    p->n_targets = n;
    ic_xmpp__s2s_out_connect(p);
}

void ic_xmpp__s2s_out_connect(struct s2s_peer *p)
{
    struct ic_xmpp__s2s *s = p->s2s;
    struct ic_xmpp_server *srv = s->srv;
    struct ic_xml_limits lim = {srv->cfg.max_stanza, 64, 1u << 16, 64};
    static const struct ic_xml_stream_cbs cbs = {
        on_open, on_stanza, on_stream_close, on_parse_error};
    struct s2s_stream *st;
    struct s2s_target *t;

    if (p->out != NULL || p->resolving || s->shutting_down)
        return;
    if (p->n_targets > 0 && p->next_target >= p->n_targets) {
        give_up(p); /* every target tried */
        return;
    }
    if (p->n_targets == 0) {
        const struct ic_xmpp_s2s_route *r = route_for(&srv->cfg, p->remote);
        if (r != NULL) {
            p->targets = ic_calloc(1, sizeof *p->targets);
            p->targets[0].host = ic_strdup(r->host);
            p->targets[0].port = r->port;
            p->n_targets = 1;
        } else {
            p->resolving = true;
            srv->listeners_open++; /* the lookup, until it answers */
            if (ic_xmpp__s2s_resolve(srv->loop, srv->cfg.s2s_dns, p->remote,
                                     on_resolved, p) != 0)
                on_resolved(p, IC_EIO, NULL, 0);
            return;
        }
    }
    t = &p->targets[p->next_target++];
    st = ic_calloc(1, sizeof *st);
    st->peer = p;
    st->state = S2S_CONNECTING;
    st->local = ic_strdup(p->local);
    st->remote = ic_strdup(p->remote);
    st->direct_tls = t->direct_tls;
    p->out = st;
    ic_xmpp__s2s_stream_add(s, st);
    IC_LOG(IC_LOG_DEBUG, "s2s", "%s -> %s: connecting to %s:%d%s", p->local,
           p->remote, t->host, t->port, t->direct_tls ? " (direct TLS)" : "");
    ic_xmpp__sock_connect(&st->sock, srv->loop, t->host, t->port,
                          ic_xml_stream_new(&cbs, st, &lim), &sock_ops, st);
}
