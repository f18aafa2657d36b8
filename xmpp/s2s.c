/*
 * s2s.c - federation (see s2s.h): the listener, the domain pairs and their
 * queues, where a stanza for another domain goes, what an authenticated
 * incoming stream may deliver, dialback keys, deadlines and idle streams.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "s2s.h"

#define SWEEP_MS 1000
#define QUEUE_MAX 4096      /* stanzas waiting for one peer */
#define QUEUE_WAIT_MS 60000 /* then they are bounced */

const char *const ic_xmpp__s2s_state_names[S2S__COUNT] = {
    "connecting", "features-tls", "starttls",      "header", "features-tls-in",
    "tls",        "tls-header",   "features-auth", "sasl",   "features-up",
    "dialback",   "up",           "closing"};

bool ic_xmpp__s2s_hosted(const struct ic_xmpp_server *srv, const char *domain)
{
    if (strcasecmp(domain, srv->domain) == 0)
        return true;
    for (struct ic_xmpp__component *c = srv->components; c; c = c->next)
        if (strcasecmp(c->c.jid, domain) == 0)
            return true;
    return false;
}

int ic_xmpp__s2s_check_pin(struct s2s_stream *st, const char *domain)
{
    struct ic_xmpp_server *srv = st->s2s->srv;
    char want[72];
    char *got;
    int rc;

    if (srv->ops.s2s_pin == NULL || domain == NULL ||
        !srv->ops.s2s_pin(srv->ops.data, domain, want))
        return IC_ENOTFOUND;
    got = ic_tls_peer_fingerprint(st->sock.tls);
    rc = got != NULL && strcmp(got, want) == 0 ? 0 : IC_EAUTH;
    if (rc != 0)
        IC_LOG(IC_LOG_WARN, "s2s", "%s presented %s, pinned %s", domain,
               got ? got : "no certificate", want);
    ic_free(got);
    return rc;
}

/* ---- dialback keys (XEP-0185) -------------------------------------------
 */

void ic_xmpp__s2s_db_key(const struct ic_xmpp__s2s *s,
                         const char *receiving,
                         const char *originating,
                         const char *id,
                         char out[65])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    struct ic_buf msg = {0};

    ic_buf_puts(&msg, receiving);
    ic_buf_puts(&msg, " ");
    ic_buf_puts(&msg, originating);
    ic_buf_puts(&msg, " ");
    ic_buf_puts(&msg, id);
    HMAC(EVP_sha256(), s->db_secret, (int)strlen(s->db_secret),
         (const unsigned char *)msg.data, msg.len, mac, &len);
    for (unsigned i = 0; i < len && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    out[64] = '\0';
    ic_buf_free(&msg);
}

/* ---- streams ------------------------------------------------------------ */

void ic_xmpp__s2s_stream_add(struct ic_xmpp__s2s *s, struct s2s_stream *st)
{
    st->s2s = s;
    st->started = st->last_used = ic_xmpp__now_ms(s->srv);
    st->next = s->streams;
    s->streams = st;
    s->srv->listeners_open++; /* its socket */
}

void ic_xmpp__s2s_send_header(struct s2s_stream *st, bool with_id)
{
    struct ic_buf b = {0};

    ic_buf_puts(&b, "<?xml version='1.0'?><stream:stream xmlns='" IC_NS_SERVER
                    "' xmlns:stream='" IC_NS_STREAMS
                    "' xmlns:db='" IC_NS_DIALBACK "' from='");
    ic_buf_append_escaped(&b, st->local, strlen(st->local));
    if (st->remote != NULL) {
        ic_buf_puts(&b, "' to='");
        ic_buf_append_escaped(&b, st->remote, strlen(st->remote));
    }
    if (with_id) {
        ic_buf_puts(&b, "' id='");
        ic_buf_puts(&b, st->id);
    }
    ic_buf_puts(&b, "' version='1.0' xml:lang='en'>");
    ic_xmpp__sock_send(&st->sock, b.data, b.len);
    ic_buf_free(&b);
    st->header_sent = true;
}

void ic_xmpp__s2s_stream_fail(struct s2s_stream *st,
                              const char *cond,
                              const char *why)
{
    bool open = st->header_sent && st->state != S2S_TLS;

    if (st->state == S2S_CLOSING)
        return;
    IC_LOG(st->state == S2S_UP ? IC_LOG_INFO : IC_LOG_WARN, "s2s",
           "%s %s %s (%s, %s): %s%s%s", st->local ? st->local : "?",
           st->peer ? "->" : "<-", st->remote ? st->remote : "?",
           st->sock.peer[0] ? st->sock.peer : "-",
           ic_xmpp__s2s_state_names[st->state], cond ? cond : "",
           cond ? ": " : "", why);
    if (st->peer != NULL && st->peer->out == st) {
        ic_free(st->peer->last_error);
        st->peer->last_error = ic_strdup(why);
    }
    if (open && cond != NULL) {
        char e[256];
        snprintf(e, sizeof e,
                 "<stream:error><%s xmlns='" IC_NS_STREAM_ERRORS
                 "'/></stream:error>",
                 cond);
        ic_xmpp__sock_send_str(&st->sock, e);
    }
    if (open)
        ic_xmpp__sock_send_str(&st->sock, "</stream:stream>");
    st->state = S2S_CLOSING;
    ic_xmpp__sock_close(&st->sock);
}

static void bounce_queue(struct s2s_peer *p, const char *cond)
{
    struct ic_xmpp_server *srv = p->s2s->srv;
    size_t n = p->n_queue;
    struct ic_xml **q = p->queue;

    p->queue = NULL;
    p->n_queue = p->cap_queue = 0;
    for (size_t i = 0; i < n; i++) {
        ic_xmpp__bounce(srv, q[i], "cancel", cond, p->last_error);
        ic_xml_free(q[i]);
    }
    ic_free(q);
}

void ic_xmpp__s2s_stream_closed(struct s2s_stream *st)
{
    struct ic_xmpp__s2s *s = st->s2s;
    struct s2s_stream **pp = &s->streams;
    struct s2s_peer *p = st->peer;

    while (*pp != NULL && *pp != st)
        pp = &(*pp)->next;
    if (*pp == st)
        *pp = st->next;
    /* incoming streams waiting on a dialback verdict forget this one */
    for (struct s2s_peer *q = s->peers; q != NULL; q = q->next)
        for (struct s2s_verify *v = q->verifies; v != NULL; v = v->next)
            if (v->in == st)
                v->in = NULL;
    if (p != NULL && p->out == st) {
        p->out = NULL;
        if ((p->n_queue > 0 || p->verifies != NULL) && !s->shutting_down)
            ic_xmpp__s2s_out_connect(p); /* the next target, if any */
    }
    ic_free(st->local);
    ic_free(st->remote);
    ic_free(st->id);
    ic_buf_free(&st->authed);
    ic_free(st);
    ic_xmpp__server_release(s->srv);
}

/* ---- peers and queues --------------------------------------------------- */

struct s2s_peer *
ic_xmpp__s2s_peer(struct ic_xmpp__s2s *s, const char *local, const char *remote)
{
    struct s2s_peer *p;

    for (p = s->peers; p != NULL; p = p->next)
        if (strcasecmp(p->local, local) == 0 &&
            strcasecmp(p->remote, remote) == 0)
            return p;
    p = ic_calloc(1, sizeof *p);
    p->s2s = s;
    p->local = ic_strdup(local);
    p->remote = ic_strdup(remote);
    p->next = s->peers;
    s->peers = p;
    return p;
}

static void write_stanza(struct s2s_stream *st, const struct ic_xml *x)
{
    struct ic_buf b = {0};

    /* our trees hold stanzas in jabber:client; written without a
     * declaration they take the stream's default, jabber:server */
    ic_xml_write(&b, x, IC_NS_CLIENT);
    ic_xmpp__sock_send(&st->sock, b.data, b.len);
    ic_buf_free(&b);
    st->last_used = ic_xmpp__now_ms(st->s2s->srv);
}

void ic_xmpp__s2s_peer_up(struct s2s_peer *p)
{
    size_t n = p->n_queue;
    struct ic_xml **q = p->queue;

    p->queue = NULL;
    p->n_queue = p->cap_queue = 0;
    p->next_target = 0; /* a later attempt starts from the best target */
    for (size_t i = 0; i < n; i++) {
        write_stanza(p->out, q[i]);
        ic_xml_free(q[i]);
    }
    ic_free(q);
}

void ic_xmpp__s2s_send(struct ic_xmpp_server *srv, struct ic_xml *x)
{
    struct ic_xmpp__s2s *s = srv->s2s;
    struct ic_jid from, to;
    struct s2s_peer *p;

    if (s == NULL || s->shutting_down) {
        ic_xmpp__bounce(srv, x, "cancel", "remote-server-not-found",
                        "federation is off on this server");
        ic_xml_free(x);
        return;
    }
    if (ic_jid_parse(ic_xml_attr(x, "from"), &from) != 0) {
        ic_xml_free(x);
        return;
    }
    if (ic_jid_parse(ic_xml_attr(x, "to"), &to) != 0) {
        ic_jid_free(&from);
        ic_xml_free(x);
        return;
    }
    if (!ic_xmpp__s2s_hosted(srv, from.domain)) {
        /* never a relay for other domains' stanzas */
        ic_xmpp__bounce(srv, x, "cancel", "not-allowed", NULL);
        ic_xml_free(x);
    } else {
        p = ic_xmpp__s2s_peer(s, from.domain, to.domain);
        if (p->out != NULL && p->out->state == S2S_UP) {
            write_stanza(p->out, x);
            ic_xml_free(x);
        } else if (p->n_queue >= QUEUE_MAX) {
            ic_xmpp__bounce(srv, x, "wait", "resource-constraint",
                            "too many stanzas wait for this server");
            ic_xml_free(x);
        } else {
            if (p->n_queue == p->cap_queue) {
                p->cap_queue = p->cap_queue ? 2 * p->cap_queue : 8;
                p->queue =
                    ic_realloc(p->queue, p->cap_queue * sizeof *p->queue);
            }
            if (p->n_queue == 0)
                p->queued_since = ic_xmpp__now_ms(srv);
            p->queue[p->n_queue++] = x;
            if (p->out == NULL && !p->resolving)
                ic_xmpp__s2s_out_connect(p);
        }
    }
    ic_jid_free(&from);
    ic_jid_free(&to);
}

/* No target left for P: what waits is bounced. */
void ic_xmpp__s2s_peer_failed(struct s2s_peer *p)
{
    bool timeout =
        p->last_error != NULL && strstr(p->last_error, "timed out") != NULL;

    p->next_target = 0;
    bounce_queue(p,
                 timeout ? "remote-server-timeout" : "remote-server-not-found");
}

/* ---- incoming stanzas --------------------------------------------------- */

static bool authed(const struct s2s_stream *st, const char *domain)
{
    for (const char *a = st->authed.data; a != NULL && *a != '\0';
         a += strlen(a) + 1)
        if (strcasecmp(a, domain) == 0)
            return true;
    return false;
}

/* jabber:server -> jabber:client, through the tree: what came over S2S is
 * kept like what came from a client. */
static void to_client_ns(struct ic_xml *x)
{
    if (x->name == NULL)
        return;
    if (x->ns != NULL && strcmp(x->ns, IC_NS_SERVER) == 0) {
        ic_xml_set_ns(x, IC_NS_CLIENT);
    }
    for (struct ic_xml *c = x->children; c != NULL; c = c->next)
        to_client_ns(c);
}

void ic_xmpp__s2s_in_stanza(struct s2s_stream *st, struct ic_xml *x)
{
    struct ic_xmpp_server *srv = st->s2s->srv;
    struct ic_jid from, to;
    const char *bad = NULL, *why = NULL;

    if (x->ns == NULL || strcmp(x->ns, IC_NS_SERVER) != 0 ||
        (strcmp(x->name, "message") != 0 && strcmp(x->name, "iq") != 0 &&
         strcmp(x->name, "presence") != 0)) {
        ic_xmpp__s2s_stream_fail(st, "unsupported-stanza-type", x->name);
        ic_xml_free(x);
        return;
    }
    if (ic_jid_parse(ic_xml_attr(x, "from"), &from) != 0) {
        ic_xmpp__s2s_stream_fail(st, "improper-addressing", "bad 'from'");
        ic_xml_free(x);
        return;
    }
    if (ic_jid_parse(ic_xml_attr(x, "to"), &to) != 0) {
        ic_jid_free(&from);
        ic_xmpp__s2s_stream_fail(st, "improper-addressing", "bad 'to'");
        ic_xml_free(x);
        return;
    }
    if (!authed(st, from.domain)) {
        bad = "invalid-from";
        why = "a 'from' this stream did not authenticate";
    } else if (!ic_xmpp__s2s_hosted(srv, to.domain)) {
        bad = "host-unknown";
        why = "a 'to' this server does not host";
    }
    ic_jid_free(&from);
    ic_jid_free(&to);
    if (bad != NULL) {
        ic_xmpp__s2s_stream_fail(st, bad, why);
        ic_xml_free(x);
        return;
    }
    st->last_used = ic_xmpp__now_ms(srv);
    to_client_ns(x);
    srv->stats.stanzas_in++;
    ic_xmpp__send(srv, x);
}

/* ---- deadlines ---------------------------------------------------------- */

static void on_sweep(uv_timer_t *t)
{
    struct ic_xmpp__s2s *s = t->data;
    struct ic_xmpp_server *srv = s->srv;
    uint64_t now = ic_xmpp__now_ms(srv);
    uint64_t handshake = (uint64_t)srv->cfg.handshake_timeout * 1000;
    uint64_t idle = (uint64_t)srv->cfg.s2s_idle_timeout * 1000;
    struct s2s_stream *st, *next;

    for (st = s->streams; st != NULL; st = next) {
        next = st->next;
        if (st->state == S2S_CLOSING)
            continue;
        if (st->state != S2S_UP && now - st->started > handshake)
            ic_xmpp__s2s_stream_fail(st, "connection-timeout",
                                     "handshake timed out");
        else if (st->state == S2S_UP && idle > 0 && now - st->last_used > idle)
            ic_xmpp__s2s_stream_fail(st, NULL, "idle");
    }
    for (struct s2s_peer *p = s->peers; p != NULL; p = p->next)
        if (p->n_queue > 0 && now - p->queued_since > QUEUE_WAIT_MS) {
            ic_free(p->last_error);
            p->last_error = ic_strdup("timed out waiting for the server");
            ic_xmpp__s2s_peer_failed(p);
        }
}

/* ---- start and stop ----------------------------------------------------- */

static void on_connection(uv_stream_t *l, int status)
{
    struct ic_xmpp__s2s *s = l->data;

    if (status == 0 && !s->shutting_down)
        ic_xmpp__s2s_in_accept(s, l == (uv_stream_t *)&s->listener_tls);
}

static int listen_s2s(
    struct ic_xmpp__s2s *s, uv_tcp_t *t, int port, char *why, size_t why_len)
{
    struct ic_xmpp_server *srv = s->srv;
    const char *addr = srv->cfg.s2s_address;
    struct sockaddr_storage ss;
    int rc;

    if (uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss) != 0) {
        snprintf(why, why_len, "bad S2S address '%s'", addr);
        return IC_EINVAL;
    }
    uv_tcp_init(srv->loop, t);
    t->data = s;
    srv->listeners_open++;
    rc = uv_tcp_bind(t, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)t, 511, on_connection);
    if (rc != 0) {
        snprintf(why, why_len, "listen on %s:%d (S2S): %s", addr, port,
                 uv_strerror(rc));
        return IC_EIO;
    }
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct ic_xmpp__s2s *s = h->data;

    ic_xmpp__server_release(s->srv);
}

int ic_xmpp__s2s_start(struct ic_xmpp_server *srv, char *why, size_t why_len)
{
    const struct ic_xmpp_config *cfg = &srv->cfg;
    struct ic_tls_ctx_opts o = {0};
    struct ic_xmpp__s2s *s;
    unsigned char h[32];
    int rc;

    if (cfg->s2s_port == 0)
        return 0;
    if (cfg->s2s_dialback &&
        (cfg->s2s_secret == NULL || strlen(cfg->s2s_secret) < 16)) {
        snprintf(why, why_len,
                 "dialback needs a secret of 16 characters "
                 "or more");
        return IC_EINVAL;
    }
    s = ic_calloc(1, sizeof *s);
    s->srv = srv;
    srv->s2s = s;
    s->dialback = cfg->s2s_dialback;
    if (cfg->s2s_secret != NULL) {
        SHA256((const unsigned char *)cfg->s2s_secret, strlen(cfg->s2s_secret),
               h);
        for (int i = 0; i < 32; i++)
            snprintf(s->db_secret + 2 * i, 3, "%02x", h[i]);
    }
    o.cert = cfg->cert;
    o.key = cfg->key;
    o.ca = cfg->ca;
    o.tls13_only = cfg->tls13_only;
    o.request_client_cert = true;
    o.system_ca = true;
    rc = ic_tls_ctx_new_server(&o, &s->tls_server, why, why_len);
    o.alpn = "xmpp-server";
    if (rc == 0)
        rc = ic_tls_ctx_new_server(&o, &s->tls_server_direct, why, why_len);
    o.verify_late = true;
    if (rc == 0)
        rc = ic_tls_ctx_new_client(&o, &s->tls_client_direct, why, why_len);
    o.alpn = NULL;
    if (rc == 0)
        rc = ic_tls_ctx_new_client(&o, &s->tls_client, why, why_len);
    if (rc != 0)
        return rc;
    uv_timer_init(srv->loop, &s->sweep);
    s->sweep.data = s;
    uv_timer_start(&s->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    srv->listeners_open++;
    rc = listen_s2s(s, &s->listener, cfg->s2s_port, why, why_len);
    if (rc == 0 && cfg->s2s_tls_port > 0)
        rc = listen_s2s(s, &s->listener_tls, cfg->s2s_tls_port, why, why_len);
    return rc;
}

void ic_xmpp__s2s_shutdown(struct ic_xmpp_server *srv)
{
    struct ic_xmpp__s2s *s = srv->s2s;
    struct s2s_stream *st, *next;

    if (s == NULL || s->shutting_down)
        return;
    s->shutting_down = true;
    for (struct s2s_peer *p = s->peers; p != NULL; p = p->next) {
        ic_free(p->last_error);
        p->last_error = ic_strdup("the server is stopping");
        bounce_queue(p, "remote-server-not-found");
    }
    for (st = s->streams; st != NULL; st = next) {
        next = st->next;
        ic_xmpp__s2s_stream_fail(st,
                                 st->state == S2S_UP ? "system-shutdown" : NULL,
                                 "server stopping");
    }
    if (s->listener.data != NULL && !uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, on_handle_closed);
    if (s->listener_tls.data != NULL &&
        !uv_is_closing((uv_handle_t *)&s->listener_tls))
        uv_close((uv_handle_t *)&s->listener_tls, on_handle_closed);
    if (s->sweep.data != NULL && !uv_is_closing((uv_handle_t *)&s->sweep))
        uv_close((uv_handle_t *)&s->sweep, on_handle_closed);
}

void ic_xmpp__s2s_free(struct ic_xmpp_server *srv)
{
    struct ic_xmpp__s2s *s = srv->s2s;

    if (s == NULL)
        return;
    while (s->peers != NULL) {
        struct s2s_peer *p = s->peers;
        s->peers = p->next;
        for (size_t i = 0; i < p->n_queue; i++)
            ic_xml_free(p->queue[i]);
        ic_free(p->queue);
        for (size_t i = 0; i < p->n_targets; i++)
            ic_free(p->targets[i].host);
        ic_free(p->targets);
        while (p->verifies != NULL) {
            struct s2s_verify *v = p->verifies;
            p->verifies = v->next;
            ic_free(v->id);
            ic_free(v->key);
            ic_free(v);
        }
        ic_free(p->last_error);
        ic_free(p->local);
        ic_free(p->remote);
        ic_free(p);
    }
    ic_tls_ctx_free(s->tls_server);
    ic_tls_ctx_free(s->tls_client);
    ic_tls_ctx_free(s->tls_server_direct);
    ic_tls_ctx_free(s->tls_client_direct);
    OPENSSL_cleanse(s->db_secret, sizeof s->db_secret);
    ic_free(s);
    srv->s2s = NULL;
}
