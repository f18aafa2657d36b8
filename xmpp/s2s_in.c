/*
 * s2s_in.c - the receiving side of S2S (see s2s.h): a header to a domain
 * we host, STARTTLS required, then SASL EXTERNAL for a peer whose client
 * certificate names the domain in its header's 'from' (XEP-0178), or
 * dialback (XEP-0220) where allowed: its <db:result/> is checked with the
 * peer's authoritative server over our outgoing stream (<db:verify/>). An
 * incoming stream also answers the <db:verify/>s of servers checking keys
 * our outgoing streams gave them.
 *
 * Every move is one row of `moves`, checked on each move.
 */
#define _POSIX_C_SOURCE 200809L
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "s2s.h"

static const struct ic_xmpp__move moves[] = {
    {S2S_HEADER, S2S_FEATURES_TLS_IN, "header, <starttls/> offered"},
    {S2S_FEATURES_TLS_IN, S2S_TLS, "<proceed/> sent"},
    {S2S_TLS, S2S_TLS_HEADER, "TLS up"},
    {S2S_TLS_HEADER, S2S_FEATURES_AUTH, "header, authentication offered"},
    {S2S_FEATURES_AUTH, S2S_FEATURES_UP, "EXTERNAL succeeded"},
    {S2S_FEATURES_UP, S2S_UP, "header after SASL, features sent"},
    {S2S_FEATURES_AUTH, S2S_UP, "dialback valid"},
};

static void move(struct s2s_stream *st, enum s2s_state to)
{
    bool ok =
        ic_xmpp__move_ok(moves, IC_ARRAY_LEN(moves), (int)st->state, (int)to);

    (void)ok; /* without assertions (NDEBUG) */
    assert(ok && "s2s in: move not in the transition table");
    IC_LOG(IC_LOG_DEBUG, "s2s", "%s <- %s: %s -> %s",
           st->local ? st->local : "?", st->remote ? st->remote : "?",
           ic_xmpp__s2s_state_names[st->state], ic_xmpp__s2s_state_names[to]);
    st->state = to;
}

static void fail(struct s2s_stream *st, const char *cond, const char *why)
{
    ic_xmpp__s2s_stream_fail(st, cond, why);
}

static void new_id(struct s2s_stream *st)
{
    unsigned char r[12];
    char *b;

    RAND_bytes(r, sizeof r);
    b = ic_base64_encode(r, sizeof r);
    for (char *c = b; *c != '\0'; c++) /* a safe attribute value */
        if (*c == '+' || *c == '/')
            *c = 'x';
    ic_free(st->id);
    st->id = b;
}

/* Authenticated: stanzas up to the configured size. */
static void raise_limits(struct s2s_stream *st)
{
    struct ic_xml_limits lim = {st->s2s->srv->cfg.max_stanza, 64, 1u << 16, 64};

    ic_xml_stream_set_limits(st->sock.stream, &lim);
}

static void add_authed(struct s2s_stream *st, const char *domain)
{
    if (st->authed.len > 0)
        st->authed.len--; /* drop the list's final empty string */
    ic_buf_append(&st->authed, domain, strlen(domain) + 1);
    ic_buf_append(&st->authed, "", 1);
}

/* ---- authentication ----------------------------------------------------- */

static void send_auth_features(struct s2s_stream *st)
{
    struct ic_buf b = {0};
    int pin = ic_xmpp__s2s_check_pin(st, st->remote);
    bool external;

    if (pin == IC_EAUTH) {
        fail(st, "not-authorized", "the certificate is not the pinned one");
        return;
    }
    external = st->remote != NULL &&
               (pin == 0 || ic_tls_peer_names(st->sock.tls, st->remote));
    st->tls_verified = external;
    ic_buf_puts(&b, "<stream:features>");
    if (external)
        ic_buf_puts(&b, "<mechanisms xmlns='" IC_NS_SASL
                        "'><mechanism>EXTERNAL</mechanism></mechanisms>");
    if (st->s2s->dialback)
        ic_buf_puts(&b, "<dialback xmlns='" IC_NS_DIALBACK_FEATURE
                        "'><errors/></dialback>");
    ic_buf_puts(&b, "</stream:features>");
    ic_xmpp__sock_send(&st->sock, b.data, b.len);
    ic_buf_free(&b);
}

static void on_auth(struct s2s_stream *st, const struct ic_xml *x)
{
    const char *mech = ic_xml_attr(x, "mechanism");
    char *text = ic_xml_text(x);
    unsigned char *authz = NULL;
    size_t n = 0;
    bool ok = mech != NULL && strcmp(mech, "EXTERNAL") == 0 &&
              st->tls_verified && st->state == S2S_FEATURES_AUTH;

    /* the authorization identity, if any, must be the stream's 'from' */
    if (ok && text[0] != '\0' && strcmp(text, "=") != 0)
        ok = ic_base64_decode(text, strlen(text), &authz, &n) == 0 &&
             n == strlen(st->remote) &&
             strncasecmp((const char *)authz, st->remote, n) == 0;
    ic_free(text);
    ic_free(authz);
    if (!ok) {
        ic_xmpp__sock_send_str(&st->sock, "<failure xmlns='" IC_NS_SASL
                                          "'><not-authorized/></failure>");
        fail(st, NULL, "SASL EXTERNAL refused");
        return;
    }
    add_authed(st, st->remote);
    ic_xmpp__sock_send_str(&st->sock, "<success xmlns='" IC_NS_SASL "'/>");
    ic_xml_stream_stop(st->sock.stream);
    ic_xml_stream_reset(st->sock.stream);
    st->header_sent = false; /* the stream restarts */
    move(st, S2S_FEATURES_UP);
}

/* A <db:verify/> (XEP-0220 2.3): a server checks a key one of our
 * outgoing streams gave it. Any node can answer: the key is derived from
 * the cluster's shared secret. */
static void on_db_verify(struct s2s_stream *st, const struct ic_xml *x)
{
    const char *from = ic_xml_attr(x, "from"), *to = ic_xml_attr(x, "to");
    const char *id = ic_xml_attr(x, "id");
    char *key = ic_xml_text(x);
    char want[65];
    bool valid = false;
    struct ic_buf b = {0};

    if (from == NULL || to == NULL || id == NULL) {
        ic_free(key);
        fail(st, "invalid-xml", "<db:verify/> without from, to or id");
        return;
    }
    if (st->s2s->dialback && ic_xmpp__s2s_hosted(st->s2s->srv, to)) {
        ic_xmpp__s2s_db_key(st->s2s, from, to, id, want);
        valid = strlen(key) == 64 && CRYPTO_memcmp(key, want, 64) == 0;
    }
    ic_free(key);
    ic_buf_puts(&b, "<db:verify from='");
    ic_buf_append_escaped(&b, to, strlen(to));
    ic_buf_puts(&b, "' to='");
    ic_buf_append_escaped(&b, from, strlen(from));
    ic_buf_puts(&b, "' id='");
    ic_buf_append_escaped(&b, id, strlen(id));
    ic_buf_puts(&b, valid ? "' type='valid'/>" : "' type='invalid'/>");
    ic_xmpp__sock_send(&st->sock, b.data, b.len);
    ic_buf_free(&b);
}

/* A <db:result/> with a key (XEP-0220 2.1.1): the peer claims FROM; its
 * authoritative server is asked. */
static void on_db_result(struct s2s_stream *st, const struct ic_xml *x)
{
    const char *from = ic_xml_attr(x, "from"), *to = ic_xml_attr(x, "to");
    struct s2s_verify *v;
    char *from_n;

    if (ic_xml_attr(x, "type") != NULL) {
        fail(st, "not-authorized", "unsolicited dialback result");
        return;
    }
    if (!st->s2s->dialback) {
        fail(st, "not-authorized", "dialback is off here");
        return;
    }
    if (from == NULL || to == NULL ||
        (from_n = ic_jid_nameprep(from)) == NULL) {
        fail(st, "invalid-from", "<db:result/> without a valid from");
        return;
    }
    if (strcasecmp(to, st->local) != 0) {
        ic_free(from_n);
        fail(st, "host-unknown",
             "<db:result/> to another domain than the "
             "stream's");
        return;
    }
    if (st->state != S2S_UP && st->state != S2S_FEATURES_AUTH) {
        ic_free(from_n);
        fail(st, "not-authorized", "dialback before TLS");
        return;
    }
    if (ic_xmpp__s2s_check_pin(st, from_n) == IC_EAUTH) {
        ic_free(from_n);
        fail(st, "not-authorized", "the certificate is not the pinned one");
        return;
    }
    if (st->remote == NULL)
        st->remote = ic_strdup(from_n);
    v = ic_calloc(1, sizeof *v);
    v->id = ic_strdup(st->id);
    v->in = st;
    v->key = ic_xml_text(x);
    /* asked from our domain the peer wants to reach */
    ic_xmpp__s2s_out_verify(ic_xmpp__s2s_peer(st->s2s, st->local, from_n), v);
    ic_free(from_n);
}

void ic_xmpp__s2s_in_verdict(struct s2s_stream *st,
                             const char *domain,
                             bool valid)
{
    struct ic_buf b = {0};

    if (st->state == S2S_CLOSING)
        return;
    ic_buf_puts(&b, "<db:result from='");
    ic_buf_append_escaped(&b, st->local, strlen(st->local));
    ic_buf_puts(&b, "' to='");
    ic_buf_append_escaped(&b, domain, strlen(domain));
    ic_buf_puts(&b, valid ? "' type='valid'/>" : "' type='invalid'/>");
    ic_xmpp__sock_send(&st->sock, b.data, b.len);
    ic_buf_free(&b);
    if (!valid) {
        fail(st, NULL, "dialback key invalid");
        return;
    }
    add_authed(st, domain);
    if (st->state == S2S_FEATURES_AUTH) {
        raise_limits(st);
        move(st, S2S_UP);
        IC_LOG(IC_LOG_INFO, "s2s", "%s <- %s up (%s, dialback%s)", st->local,
               domain, st->sock.peer, st->direct_tls ? ", direct TLS" : "");
    }
}

/* ---- the stream --------------------------------------------------------- */

static void on_stanza(void *data, struct ic_xml *x)
{
    struct s2s_stream *st = data;

    if (st->state == S2S_CLOSING || x->name == NULL) {
        ic_xml_free(x);
        return;
    }
    if (x->ns != NULL && strcmp(x->ns, IC_NS_STREAMS) == 0) {
        if (strcmp(x->name, "error") == 0)
            fail(st, NULL, "stream error from the peer");
        else
            fail(st, "unsupported-stanza-type", x->name);
    } else if (st->state == S2S_FEATURES_TLS_IN) {
        if (x->ns == NULL || strcmp(x->ns, IC_NS_TLS) != 0 ||
            strcmp(x->name, "starttls") != 0) {
            fail(st, "not-authorized", "STARTTLS is required");
        } else {
            ic_xmpp__sock_send_str(&st->sock,
                                   "<proceed xmlns='" IC_NS_TLS "'/>");
            ic_xml_stream_stop(st->sock.stream);
            ic_xml_stream_reset(st->sock.stream);
            st->header_sent = false;
            move(st, S2S_TLS);
            if (ic_xmpp__sock_start_tls(&st->sock, st->s2s->tls_server, NULL) !=
                0)
                fail(st, NULL, "TLS cannot start");
        }
    } else if (x->ns != NULL && strcmp(x->ns, IC_NS_SASL) == 0 &&
               strcmp(x->name, "auth") == 0) {
        on_auth(st, x);
    } else if (x->ns != NULL && strcmp(x->ns, IC_NS_DIALBACK) == 0 &&
               strcmp(x->name, "verify") == 0 &&
               (st->state == S2S_FEATURES_AUTH || st->state == S2S_UP)) {
        on_db_verify(st, x);
    } else if (x->ns != NULL && strcmp(x->ns, IC_NS_DIALBACK) == 0 &&
               strcmp(x->name, "result") == 0) {
        on_db_result(st, x);
    } else if (st->state == S2S_UP) {
        ic_xmpp__s2s_in_stanza(st, x);
        return;
    } else {
        fail(st, "not-authorized", "stanza before authentication");
    }
    ic_xml_free(x);
}

static void on_open(void *data, struct ic_xml *header)
{
    struct s2s_stream *st = data;
    struct ic_xmpp_server *srv = st->s2s->srv;
    const char *ns = ic_xml_stream_content_ns(st->sock.stream);
    const char *to = ic_xml_attr(header, "to");
    const char *from = ic_xml_attr(header, "from");
    const char *version = ic_xml_attr(header, "version");
    char *to_n = to ? ic_jid_nameprep(to) : NULL;
    char *from_n = from ? ic_jid_nameprep(from) : NULL;
    const char *bad = NULL;

    /* our header answers first (RFC 6120 4.9.1.2), even before an error */
    ic_free(st->local);
    st->local =
        ic_strdup(to_n && ic_xmpp__s2s_hosted(srv, to_n) ? to_n : srv->domain);
    if (!st->header_sent) {
        char *remote = st->remote;
        st->remote = from_n;
        new_id(st);
        ic_xmpp__s2s_send_header(st, true);
        st->remote = remote;
    }
    if (ns == NULL || strcmp(ns, IC_NS_SERVER) != 0)
        bad = "invalid-namespace";
    else if (version == NULL || strcmp(version, "1.0") < 0)
        bad = "unsupported-version"; /* STARTTLS is required */
    else if (to_n == NULL || !ic_xmpp__s2s_hosted(srv, to_n))
        bad = "host-unknown";
    else if (from != NULL && from_n == NULL)
        bad = "invalid-from";
    else if (st->state == S2S_FEATURES_UP && st->remote != NULL &&
             (from_n == NULL || strcasecmp(from_n, st->remote) != 0))
        bad = "invalid-from"; /* not who authenticated */
    ic_xml_free(header);
    if (bad != NULL) {
        ic_free(to_n);
        ic_free(from_n);
        fail(st, bad, "bad stream header");
        return;
    }
    if (st->remote == NULL && from_n != NULL)
        st->remote = ic_strdup(from_n);
    switch (st->state) {
    case S2S_HEADER:
        move(st, S2S_FEATURES_TLS_IN);
        ic_xmpp__sock_send_str(&st->sock,
                               "<stream:features><starttls xmlns='" IC_NS_TLS
                               "'><required/></starttls></stream:features>");
        break;
    case S2S_TLS_HEADER:
        move(st, S2S_FEATURES_AUTH);
        send_auth_features(st);
        break;
    case S2S_FEATURES_UP:
        raise_limits(st);
        move(st, S2S_UP);
        ic_xmpp__sock_send_str(&st->sock, "<stream:features/>");
        IC_LOG(IC_LOG_INFO, "s2s", "%s <- %s up (%s, certificate%s)", st->local,
               st->remote, st->sock.peer, st->direct_tls ? ", direct TLS" : "");
        break;
    default:
        fail(st, "invalid-xml", "unexpected stream header");
    }
    ic_free(to_n);
    ic_free(from_n);
}

static void on_stream_close(void *data)
{
    fail(data, NULL, "the peer closed the stream");
}

static void on_parse_error(void *data, enum ic_stream_error c, const char *t)
{
    struct s2s_stream *st = data;

    if (!st->header_sent && st->state != S2S_TLS) {
        /* no header of ours yet: send one so the error can follow */
        new_id(st);
        ic_xmpp__s2s_send_header(st, true);
    }
    fail(st, ic_stream_error_name(c), t ? t : "bad XML");
}

static void on_connected(void *owner)
{
    (void)owner; /* accepted: never called */
}

static void on_tls_ready(void *owner)
{
    move(owner, S2S_TLS_HEADER);
}

static void on_down(void *owner, int err, const char *why)
{
    (void)err;
    fail(owner, NULL, why);
}

static void on_closed(void *owner)
{
    ic_xmpp__s2s_stream_closed(owner);
}

static const struct ic_xmpp__sock_ops sock_ops = {on_connected, on_tls_ready,
                                                  on_down, on_closed};

void ic_xmpp__s2s_in_accept(struct ic_xmpp__s2s *s, bool direct_tls)
{
    struct ic_xmpp_server *srv = s->srv;
    struct ic_xml_limits lim = {srv->cfg.max_stanza_preauth, 32, 1024, 32};
    static const struct ic_xml_stream_cbs cbs = {
        on_open, on_stanza, on_stream_close, on_parse_error};
    struct s2s_stream *st = ic_calloc(1, sizeof *st);

    /* direct TLS: the handshake first, then the header (XEP-0368) */
    st->state = direct_tls ? S2S_TLS : S2S_HEADER;
    st->direct_tls = direct_tls;
    st->local = ic_strdup(srv->domain);
    ic_xmpp__s2s_stream_add(s, st);
    if (ic_xmpp__sock_accept(
            &st->sock,
            (uv_stream_t *)(direct_tls ? &s->listener_tls : &s->listener),
            ic_xml_stream_new(&cbs, st, &lim), &sock_ops, st) != 0)
        st->state = S2S_CLOSING; /* on_closed follows */
    else if (direct_tls &&
             ic_xmpp__sock_start_tls(&st->sock, s->tls_server_direct, NULL))
        fail(st, NULL, "TLS cannot start");
}
