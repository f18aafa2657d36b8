/*
 * client.c - the initiating side of an XMPP client stream (RFC 6120):
 * connect, STARTTLS (or direct TLS), SASL, bind, then stanzas. Used by
 * icrootctl and the tests; the same parser, TLS and SASL code as the
 * server's side.
 *
 * Every move of the state is one row of `moves`, checked on each move.
 * One way out: fail(), which ends the stream, answers pending iqs with
 * NULL, calls on_closed once and closes the handles; the client is freed
 * in the last close callback.
 */
#define _POSIX_C_SOURCE 200809L
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "sock.h"
#include "xmpp_int.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_STANZA (64u << 20)

enum cl_state {
    CL_CONNECTING = 0, /* resolving and connecting */
    CL_FEATURES_TLS,   /* header sent, waiting for <starttls/> offered */
    CL_STARTTLS,       /* <starttls/> sent, waiting for <proceed/> */
    CL_TLS_HANDSHAKE,  /* TLS handshake running */
    CL_FEATURES_AUTH,  /* header sent over TLS, waiting for mechanisms */
    CL_SASL,           /* <auth/> sent */
    CL_FEATURES_BIND,  /* stream restarted, waiting for <bind/> offered */
    CL_BINDING,        /* bind iq sent */
    CL_READY,          /* bound: stanzas flow */
    CL__COUNT
};

static const char *const state_names[CL__COUNT] = {
    "connecting", "features-tls",  "starttls", "tls-handshake", "features-auth",
    "sasl",       "features-bind", "binding",  "ready",
};

static const struct ic_xmpp__move moves[] = {
    {CL_CONNECTING, CL_FEATURES_TLS, "TCP up, header sent"},
    {CL_CONNECTING, CL_TLS_HANDSHAKE, "TCP up, direct TLS"},
    {CL_FEATURES_TLS, CL_STARTTLS, "<starttls/> sent"},
    {CL_STARTTLS, CL_TLS_HANDSHAKE, "<proceed/>"},
    {CL_TLS_HANDSHAKE, CL_FEATURES_AUTH, "TLS up, header sent"},
    {CL_FEATURES_AUTH, CL_SASL, "<auth/> sent"},
    {CL_SASL, CL_FEATURES_BIND, "<success/>, header sent"},
    {CL_FEATURES_BIND, CL_BINDING, "bind iq sent"},
    {CL_BINDING, CL_READY, "bound"},
};

struct pending_iq {
    char *id;
    void (*cb)(void *data, struct ic_xml *reply);
    void *data;
    struct pending_iq *next;
};

struct ic_xmpp_client {
    uv_loop_t *loop;
    struct ic_xmpp__sock sock;
    uv_timer_t timer;
    int handles_open;             /* the socket and the timer */
    struct ic_xmpp_client_opts o; /* strings owned */
    struct ic_xmpp_client_cbs cbs;
    void *data;
    enum cl_state state;
    bool closing; /* fail() or close started */
    struct ic_tls_ctx *tls_ctx;
    struct ic_sasl_client *sasl;
    char *mechanism;
    const char *binding; /* channel-binding type used, or NULL */
    char *jid;
    struct pending_iq *iqs;
    uint64_t next_id;
};

static void fail(struct ic_xmpp_client *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void move(struct ic_xmpp_client *c, enum cl_state to)
{
    bool ok =
        ic_xmpp__move_ok(moves, IC_ARRAY_LEN(moves), (int)c->state, (int)to);

    (void)ok; /* without assertions (NDEBUG) */
    assert(ok && "client: move not in the transition table");
    IC_LOG(IC_LOG_DEBUG, "client", "%s -> %s", state_names[c->state],
           state_names[to]);
    c->state = to;
}

/* ---- output ---------------------------------------------------------- */

static void send_bytes(struct ic_xmpp_client *c, const char *data, size_t len)
{
    ic_xmpp__sock_send(&c->sock, data, len);
}

static void send_str(struct ic_xmpp_client *c, const char *s)
{
    ic_xmpp__sock_send_str(&c->sock, s);
}

static void send_header(struct ic_xmpp_client *c)
{
    struct ic_buf b = {0};

    ic_buf_puts(&b, "<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
                    " xmlns:stream='" IC_NS_STREAMS "' to='");
    ic_buf_append_escaped(&b, c->o.domain, strlen(c->o.domain));
    ic_buf_puts(&b, "' version='1.0' xml:lang='en'>");
    send_bytes(c, b.data, b.len);
    ic_buf_free(&b);
}

/* ---- the way out ----------------------------------------------------- */

static void free_opts(struct ic_xmpp_client_opts *o)
{
    ic_free((char *)o->host);
    ic_free((char *)o->domain);
    ic_free((char *)o->ca);
    ic_free((char *)o->cert);
    ic_free((char *)o->key);
    ic_free((char *)o->user);
    if (o->password != NULL) {
        OPENSSL_cleanse((char *)o->password, strlen(o->password));
        ic_free((char *)o->password);
    }
    ic_free((char *)o->mechanism);
    ic_free((char *)o->resource);
}

/* Frees the client once the socket and the timer are closed. */
static void maybe_free(struct ic_xmpp_client *c)
{
    if (c->handles_open > 0)
        return;
    ic_tls_ctx_free(c->tls_ctx);
    ic_sasl_client_free(c->sasl);
    free_opts(&c->o);
    ic_free(c->mechanism);
    ic_free(c->jid);
    ic_free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct ic_xmpp_client *c = h->data;

    c->handles_open--;
    maybe_free(c);
}

static void on_sock_closed(void *owner)
{
    struct ic_xmpp_client *c = owner;

    c->handles_open--;
    maybe_free(c);
}

static void close_handles(struct ic_xmpp_client *c)
{
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    ic_xmpp__sock_close(&c->sock);
}

static void end(struct ic_xmpp_client *c, int err, const char *why)
{
    struct pending_iq *p = c->iqs;

    c->closing = true;
    c->iqs = NULL;
    while (p != NULL) {
        struct pending_iq *next = p->next;
        p->cb(p->data, NULL);
        ic_free(p->id);
        ic_free(p);
        p = next;
    }
    if (c->cbs.on_closed != NULL)
        c->cbs.on_closed(c->data, err, why);
    close_handles(c);
}

static void fail(struct ic_xmpp_client *c, int err, const char *fmt, ...)
{
    char why[512];
    va_list ap;

    if (c->closing)
        return;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    IC_LOG(IC_LOG_INFO, "client", "%s:%d: %s", c->o.host, c->o.port, why);
    if (c->state != CL_CONNECTING && c->state != CL_TLS_HANDSHAKE)
        send_str(c, "</stream:stream>");
    end(c, err, why);
}

void ic_xmpp_client_close(struct ic_xmpp_client *c)
{
    if (c == NULL || c->closing)
        return;
    if (c->state != CL_CONNECTING && c->state != CL_TLS_HANDSHAKE)
        send_str(c, "</stream:stream>");
    end(c, 0, "closed");
}

/* ---- features, SASL, binding ----------------------------------------- */

bool ic_xmpp__mechanism_offered(const struct ic_xml *mechs, const char *name)
{
    if (mechs == NULL) /* no <mechanisms/> at all */
        return false;
    for (struct ic_xml *m = ic_xml_child(mechs, "mechanism", IC_NS_SASL);
         m != NULL; m = ic_xml_next(m, "mechanism", IC_NS_SASL)) {
        char *t = ic_xml_text(m);
        bool same = strcmp(t, name) == 0;
        ic_free(t);
        if (same)
            return true;
    }
    return false;
}

/* Whether FEATURES lists channel-binding TYPE (XEP-0440); a server that
 * does not say is assumed to support tls-exporter only under TLS 1.3 and
 * tls-server-end-point always (RFC 5929 works with any TLS version). */
static bool cb_offered(const struct ic_xml *features, const char *type)
{
    const struct ic_xml *l =
        ic_xml_child(features, "sasl-channel-binding", "urn:xmpp:sasl-cb:0");

    if (l == NULL)
        return strcmp(type, "tls-server-end-point") == 0;
    for (struct ic_xml *b = ic_xml_child(l, "channel-binding", NULL); b != NULL;
         b = ic_xml_next(b, "channel-binding", NULL)) {
        const char *t = ic_xml_attr(b, "type");
        if (t != NULL && strcmp(t, type) == 0)
            return true;
    }
    return false;
}

/* The channel-binding data of TYPE for this connection into OUT. */
static size_t cb_data(struct ic_xmpp_client *c,
                      const char *type,
                      unsigned char *out,
                      size_t cap)
{
    size_t n = cap;

    if (strcmp(type, "tls-exporter") == 0)
        return cap >= 32 && ic_tls_exporter(c->sock.tls, out) == 0 ? 32 : 0;
    return ic_tls_server_end_point(c->sock.tls, out, &n) == 0 ? n : 0;
}

/* Picks the mechanism: the forced one, else EXTERNAL with a certificate
 * and no password, else the strongest SCRAM (-PLUS first). Never PLAIN
 * unless forced. */
static int choose(struct ic_xmpp_client *c,
                  const struct ic_xml *features,
                  struct ic_sasl_client_opts *so,
                  unsigned char *cb,
                  size_t cb_cap)
{
    static const char *const order[] = {"SCRAM-SHA-256-PLUS",
                                        "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256",
                                        "SCRAM-SHA-1"};
    static const char *const types[] = {"tls-exporter", "tls-server-end-point"};
    const struct ic_xml *mechs =
        ic_xml_child(features, "mechanisms", IC_NS_SASL);
    bool plus_offered = false;

    if (mechs == NULL)
        return IC_EAUTH;
    so->user = c->o.user;
    so->password = c->o.password;
    if (c->o.password == NULL) {
        so->mechanism = "EXTERNAL";
        return ic_xmpp__mechanism_offered(mechs, "EXTERNAL") ? 0 : IC_EAUTH;
    }
    for (size_t i = 0; i < IC_ARRAY_LEN(order); i++)
        plus_offered =
            plus_offered || (strstr(order[i], "-PLUS") != NULL &&
                             ic_xmpp__mechanism_offered(mechs, order[i]));
    for (size_t i = 0; i < IC_ARRAY_LEN(order); i++) {
        bool plus = strstr(order[i], "-PLUS") != NULL;
        if (!ic_xmpp__mechanism_offered(mechs, order[i]))
            continue;
        if (c->o.mechanism != NULL && strcmp(c->o.mechanism, order[i]) != 0)
            continue;
        for (size_t t = 0; plus && t < IC_ARRAY_LEN(types); t++) {
            size_t n;
            if (!cb_offered(features, types[t]))
                continue;
            n = cb_data(c, types[t], cb, cb_cap);
            if (n == 0)
                continue;
            so->mechanism = order[i];
            so->cb_type = types[t];
            so->cb_data = cb;
            so->cb_data_len = n;
            return 0;
        }
        if (!plus) {
            so->mechanism = order[i];
            /* We could bind but saw no -PLUS: "y" lets a server that did
             * offer one (stripped by an attacker) see the downgrade. When
             * -PLUS was offered and we chose not to use it, "n". */
            so->cb_supported = !plus_offered;
            return 0;
        }
    }
    if (c->o.mechanism != NULL &&
        ic_xmpp__mechanism_offered(mechs, c->o.mechanism) &&
        strcmp(c->o.mechanism, "PLAIN") == 0) {
        so->mechanism = "PLAIN";
        return 0;
    }
    return IC_EAUTH;
}

static void send_sasl(struct ic_xmpp_client *c,
                      const char *elem,
                      const char *mech,
                      const unsigned char *data,
                      size_t len)
{
    struct ic_buf b = {0};
    char *b64 = ic_base64_encode(data, len);

    ic_buf_puts(&b, "<");
    ic_buf_puts(&b, elem);
    ic_buf_puts(&b, " xmlns='" IC_NS_SASL "'");
    if (mech != NULL) {
        ic_buf_puts(&b, " mechanism='");
        ic_buf_puts(&b, mech);
        ic_buf_puts(&b, "'");
    }
    ic_buf_puts(&b, ">");
    ic_buf_puts(&b, b64);
    ic_buf_puts(&b, "</");
    ic_buf_puts(&b, elem);
    ic_buf_puts(&b, ">");
    send_bytes(c, b.data, b.len);
    OPENSSL_cleanse(b.data, b.len);
    ic_buf_free(&b);
    ic_free(b64);
}

static void start_auth(struct ic_xmpp_client *c, const struct ic_xml *features)
{
    struct ic_sasl_client_opts so = {0};
    unsigned char cb[64], *first = NULL;
    size_t first_len = 0;
    int rc = choose(c, features, &so, cb, sizeof cb);

    if (rc != 0) {
        fail(c, IC_EAUTH, "no acceptable SASL mechanism offered%s%s",
             c->o.mechanism ? " (wanted " : "",
             c->o.mechanism ? c->o.mechanism : "");
        return;
    }
    rc = ic_sasl_client_new(&so, &c->sasl);
    if (rc == 0)
        rc = ic_sasl_client_start(c->sasl, &first, &first_len);
    if (rc != 0) {
        fail(c, IC_EAUTH, "SASL %s: %s", so.mechanism, ic_strerror(rc));
        return;
    }
    c->mechanism = ic_strdup(so.mechanism);
    c->binding = so.cb_type;
    move(c, CL_SASL);
    send_sasl(c, "auth", so.mechanism, first, first_len);
    OPENSSL_cleanse(first, first_len);
    ic_free(first);
}

/* Decodes the base64 text of a SASL element. */
static int sasl_data(const struct ic_xml *st, unsigned char **out, size_t *len)
{
    char *t = ic_xml_text(st);
    int rc = ic_base64_decode(t, strlen(t), out, len);

    ic_free(t);
    return rc;
}

static void on_sasl(struct ic_xmpp_client *c, const struct ic_xml *st)
{
    unsigned char *in = NULL, *out = NULL;
    size_t in_len = 0, out_len = 0;
    int rc;

    if (strcmp(st->name, "failure") == 0) {
        const struct ic_xml *cond = st->children;
        while (cond != NULL &&
               (cond->name == NULL || strcmp(cond->name, "text") == 0))
            cond = cond->next;
        fail(c, IC_EAUTH, "SASL %s failed: %s", c->mechanism,
             cond ? cond->name : "no condition");
        return;
    }
    if (sasl_data(st, &in, &in_len) != 0) {
        fail(c, IC_EAUTH, "SASL: bad base64 from the server");
        return;
    }
    if (strcmp(st->name, "challenge") == 0) {
        rc = ic_sasl_client_step(c->sasl, in, in_len, &out, &out_len);
        if (rc == 0)
            send_sasl(c, "response", NULL, out, out_len);
        else
            fail(c, IC_EAUTH, "SASL %s: bad challenge", c->mechanism);
        ic_free(out);
    } else if (strcmp(st->name, "success") == 0) {
        if (ic_sasl_client_finish(c->sasl, in, in_len) != 0) {
            fail(c, IC_EAUTH,
                 "SASL %s: the server did not prove it knows "
                 "the password",
                 c->mechanism);
        } else {
            ic_xml_stream_stop(c->sock.stream);
            ic_xml_stream_reset(c->sock.stream);
            move(c, CL_FEATURES_BIND);
            send_header(c);
        }
    } else {
        fail(c, IC_EIO, "unexpected <%s/> during SASL", st->name);
    }
    ic_free(in);
}

static void send_bind(struct ic_xmpp_client *c)
{
    struct ic_xml *iq = ic_xml_new("iq", IC_NS_CLIENT);
    struct ic_xml *b = ic_xml_add(iq, "bind", IC_NS_BIND);

    ic_xml_set_attr(iq, "type", "set");
    ic_xml_set_attr(iq, "id", "bind");
    if (c->o.resource != NULL) {
        struct ic_xml *r = ic_xml_add(b, "resource", NULL);
        ic_xml_add_text(r, c->o.resource, strlen(c->o.resource));
    }
    move(c, CL_BINDING);
    ic_xmpp_client_send(c, iq);
    ic_xml_free(iq);
}

static void on_bound(struct ic_xmpp_client *c, const struct ic_xml *st)
{
    const char *type = ic_xml_attr(st, "type");
    const struct ic_xml *b = ic_xml_child(st, "bind", IC_NS_BIND);
    const struct ic_xml *j = b ? ic_xml_child(b, "jid", IC_NS_BIND) : NULL;

    if (type == NULL || strcmp(type, "result") != 0 || j == NULL) {
        fail(c, IC_EIO, "resource binding refused");
        return;
    }
    c->jid = ic_xml_text(j);
    move(c, CL_READY);
    uv_timer_stop(&c->timer); /* the deadline was for logging in */
    if (c->cbs.on_ready != NULL)
        c->cbs.on_ready(c->data, c->jid);
}

/* ---- stanzas ----------------------------------------------------------- */

static void stream_error(struct ic_xmpp_client *c, const struct ic_xml *st)
{
    const struct ic_xml *x;
    const char *cond = "undefined-condition";
    char *text = NULL;

    for (x = st->children; x != NULL; x = x->next) {
        if (x->name == NULL || x->ns == NULL ||
            strcmp(x->ns, IC_NS_STREAM_ERRORS) != 0)
            continue;
        if (strcmp(x->name, "text") == 0) {
            ic_free(text);
            text = ic_xml_text(x);
        } else {
            cond = x->name;
        }
    }
    fail(c, strcmp(cond, "not-authorized") == 0 ? IC_EAUTH : IC_EIO,
         "stream error %s%s%s", cond, text ? ": " : "", text ? text : "");
    ic_free(text);
}

/* An iq answering one of ours: its callback takes it. */
static bool answer(struct ic_xmpp_client *c, struct ic_xml *st)
{
    const char *type = ic_xml_attr(st, "type"), *id = ic_xml_attr(st, "id");
    struct pending_iq **pp;

    if (type == NULL || id == NULL ||
        (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
        return false;
    for (pp = &c->iqs; *pp != NULL; pp = &(*pp)->next) {
        struct pending_iq *p = *pp;
        if (strcmp(p->id, id) != 0)
            continue;
        *pp = p->next;
        p->cb(p->data, st);
        ic_free(p->id);
        ic_free(p);
        return true;
    }
    return false;
}

/* A request we have no handler for: pings get a result, the rest
 * service-unavailable (RFC 6120 8.4). */
static void unhandled_iq(struct ic_xmpp_client *c, const struct ic_xml *st)
{
    const char *type = ic_xml_attr(st, "type");
    struct ic_xml *r;

    if (type == NULL || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
        return;
    if (ic_xml_child(st, "ping", "urn:xmpp:ping") != NULL)
        r = ic_xmpp__iq_result(st, NULL);
    else
        r = ic_xmpp__error_reply(st, "cancel", "service-unavailable", NULL);
    ic_xml_set_attr(r, "from", NULL);
    ic_xmpp_client_send(c, r);
    ic_xml_free(r);
}

static void ready_stanza(struct ic_xmpp_client *c, struct ic_xml *st)
{
    if (strcmp(st->name, "iq") == 0 && answer(c, st))
        return;
    if (c->cbs.on_stanza != NULL) {
        c->cbs.on_stanza(c->data, st);
        return;
    }
    if (strcmp(st->name, "iq") == 0)
        unhandled_iq(c, st);
    ic_xml_free(st);
}

static void on_features(struct ic_xmpp_client *c, const struct ic_xml *st)
{
    switch (c->state) {
    case CL_FEATURES_TLS:
        if (ic_xml_child(st, "starttls", IC_NS_TLS) == NULL) {
            fail(c, IC_EIO, "the server does not offer STARTTLS");
            return;
        }
        move(c, CL_STARTTLS);
        send_str(c, "<starttls xmlns='" IC_NS_TLS "'/>");
        break;
    case CL_FEATURES_AUTH:
        start_auth(c, st);
        break;
    case CL_FEATURES_BIND:
        if (ic_xml_child(st, "bind", IC_NS_BIND) == NULL)
            fail(c, IC_EIO, "the server does not offer resource binding");
        else
            send_bind(c);
        break;
    default:
        fail(c, IC_EIO, "unexpected stream features");
    }
}

static void begin_tls(struct ic_xmpp_client *c)
{
    int rc = ic_xmpp__sock_start_tls(&c->sock, c->tls_ctx, c->o.domain);

    if (rc != 0)
        fail(c, IC_EIO, "TLS: %s", ic_strerror(rc));
}

static void on_stanza(void *data, struct ic_xml *st)
{
    struct ic_xmpp_client *c = data;

    if (c->closing || st->name == NULL)
        goto drop;
    if (st->ns != NULL && strcmp(st->ns, IC_NS_STREAMS) == 0) {
        if (strcmp(st->name, "error") == 0)
            stream_error(c, st);
        else if (strcmp(st->name, "features") == 0)
            on_features(c, st);
        else
            fail(c, IC_EIO, "unexpected <stream:%s/>", st->name);
        goto drop;
    }
    switch (c->state) {
    case CL_STARTTLS:
        if (st->ns == NULL || strcmp(st->ns, IC_NS_TLS) != 0 ||
            strcmp(st->name, "proceed") != 0) {
            fail(c, IC_EIO, "STARTTLS refused");
            goto drop;
        }
        ic_xml_stream_stop(c->sock.stream);
        ic_xml_stream_reset(c->sock.stream);
        move(c, CL_TLS_HANDSHAKE);
        begin_tls(c);
        goto drop;
    case CL_SASL:
        if (st->ns != NULL && strcmp(st->ns, IC_NS_SASL) == 0)
            on_sasl(c, st);
        else
            fail(c, IC_EIO, "unexpected <%s/> during SASL", st->name);
        goto drop;
    case CL_BINDING:
        if (strcmp(st->name, "iq") == 0 && ic_xml_attr(st, "id") != NULL &&
            strcmp(ic_xml_attr(st, "id"), "bind") == 0)
            on_bound(c, st);
        goto drop;
    case CL_READY:
        ready_stanza(c, st);
        return;
    default:
        fail(c, IC_EIO, "unexpected <%s/> in state %s", st->name,
             state_names[c->state]);
        goto drop;
    }
drop:
    ic_xml_free(st);
}

static void on_open(void *data, struct ic_xml *header)
{
    struct ic_xmpp_client *c = data;
    const char *ns = ic_xml_stream_content_ns(c->sock.stream);

    if (!c->closing && (ns == NULL || strcmp(ns, IC_NS_CLIENT) != 0))
        fail(c, IC_EIO, "the server's stream is not jabber:client");
    ic_xml_free(header);
}

static void on_stream_close(void *data)
{
    struct ic_xmpp_client *c = data;

    fail(c, c->state == CL_READY ? 0 : IC_EIO, "the server closed the stream");
}

static void
on_stream_error(void *data, enum ic_stream_error cond, const char *text)
{
    struct ic_xmpp_client *c = data;

    fail(c, IC_EIO, "bad XML from the server (%s: %s)",
         ic_stream_error_name(cond), text ? text : "");
}

/* ---- the socket's events ------------------------------------------------ */

static void on_connected(void *owner)
{
    struct ic_xmpp_client *c = owner;

    if (c->o.direct_tls) {
        move(c, CL_TLS_HANDSHAKE);
        begin_tls(c);
    } else {
        move(c, CL_FEATURES_TLS);
        send_header(c);
    }
}

static void on_tls_ready(void *owner)
{
    struct ic_xmpp_client *c = owner;

    move(c, CL_FEATURES_AUTH);
    send_header(c);
}

static void on_down(void *owner, int err, const char *why)
{
    struct ic_xmpp_client *c = owner;

    /* A peer that closes a bound session ends it cleanly. */
    if (c->state == CL_READY && err == IC_EEND)
        err = 0;
    else if (err == IC_EEND)
        err = IC_ECONNECT;
    fail(c, err, "%s", why);
}

static void on_timeout(uv_timer_t *t)
{
    struct ic_xmpp_client *c = t->data;

    fail(c, IC_ETIMEDOUT, "no session after %u ms (state %s)", c->o.timeout_ms,
         state_names[c->state]);
}

/* ---- the API ----------------------------------------------------------- */

static void copy_opts(struct ic_xmpp_client_opts *d,
                      const struct ic_xmpp_client_opts *o)
{
#define DUP(f) d->f = o->f ? ic_strdup(o->f) : NULL
    *d = *o;
    DUP(host);
    DUP(domain);
    DUP(ca);
    DUP(cert);
    DUP(key);
    DUP(user);
    DUP(password);
    DUP(mechanism);
    DUP(resource);
#undef DUP
    if (d->timeout_ms == 0)
        d->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (d->max_stanza == 0)
        d->max_stanza = DEFAULT_MAX_STANZA;
}

static int make_tls_ctx(struct ic_xmpp_client *c, char *why, size_t why_len)
{
    struct ic_tls_ctx_opts t = {0};

    t.ca = c->o.ca;
    t.cert = c->o.cert;
    t.key = c->o.key;
    t.alpn = c->o.direct_tls ? "xmpp-client" : NULL;
    return ic_tls_ctx_new_client(&t, &c->tls_ctx, why, why_len);
}

int ic_xmpp_client_new(struct uv_loop_s *loop,
                       const struct ic_xmpp_client_opts *o,
                       const struct ic_xmpp_client_cbs *cbs,
                       void *data,
                       struct ic_xmpp_client **out)
{
    static const struct ic_xml_stream_cbs scbs = {
        on_open, on_stanza, on_stream_close, on_stream_error};
    static const struct ic_xmpp__sock_ops sops = {on_connected, on_tls_ready,
                                                  on_down, on_sock_closed};
    struct ic_xmpp_client *c;
    struct ic_xml_limits lim;
    char why[256];

    if (o->host == NULL || o->domain == NULL || o->port <= 0 ||
        o->port > 65535 || (o->password == NULL && o->cert == NULL) ||
        (o->password != NULL && o->user == NULL))
        return IC_EINVAL;
    c = ic_calloc(1, sizeof *c);
    c->loop = loop;
    copy_opts(&c->o, o);
    c->cbs = *cbs;
    c->data = data;
    if (make_tls_ctx(c, why, sizeof why) != 0) {
        IC_LOG(IC_LOG_ERROR, "client", "%s", why);
        free_opts(&c->o);
        ic_free(c);
        return IC_EINVAL;
    }
    lim = (struct ic_xml_limits){c->o.max_stanza, 64, 1u << 20, 64};
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->handles_open = 2;
    uv_timer_start(&c->timer, on_timeout, c->o.timeout_ms, 0);
    ic_xmpp__sock_connect(&c->sock, loop, c->o.host, c->o.port,
                          ic_xml_stream_new(&scbs, c, &lim), &sops, c);
    *out = c;
    return 0;
}

int ic_xmpp_client_send(struct ic_xmpp_client *c, const struct ic_xml *st)
{
    struct ic_buf b = {0};

    if (c->closing || (c->state != CL_READY && c->state != CL_BINDING))
        return IC_EINVAL;
    ic_xml_write(&b, st, IC_NS_CLIENT);
    send_bytes(c, b.data, b.len);
    ic_buf_free(&b);
    return 0;
}

static void wait_answer(struct ic_xmpp_client *c,
                        const char *id,
                        void (*cb)(void *data, struct ic_xml *reply),
                        void *data)
{
    struct pending_iq *p = ic_calloc(1, sizeof *p);

    p->id = ic_strdup(id);
    p->cb = cb;
    p->data = data;
    p->next = c->iqs;
    c->iqs = p;
}

int ic_xmpp_client_iq(struct ic_xmpp_client *c,
                      struct ic_xml *iq,
                      void (*cb)(void *data, struct ic_xml *reply),
                      void *data)
{
    char id[32];
    int rc;

    snprintf(id, sizeof id, "c%llu", (unsigned long long)++c->next_id);
    ic_xml_set_attr(iq, "id", id);
    rc = ic_xmpp_client_send(c, iq);
    ic_xml_free(iq);
    if (rc == 0)
        wait_answer(c, id, cb, data);
    return rc;
}

int ic_xmpp_client_iq_text(struct ic_xmpp_client *c,
                           const char *head,
                           size_t head_len,
                           const char *tail,
                           size_t tail_len,
                           void (*cb)(void *data, struct ic_xml *reply),
                           void *data)
{
    struct ic_buf b = {0};
    char id[32];

    if (c->closing || c->state != CL_READY)
        return IC_EINVAL;
    snprintf(id, sizeof id, "c%llu", (unsigned long long)++c->next_id);
    ic_buf_append(&b, head, head_len);
    ic_buf_puts(&b, id);
    ic_buf_append(&b, tail, tail_len);
    send_bytes(c, b.data, b.len);
    ic_buf_free(&b);
    wait_answer(c, id, cb, data);
    return 0;
}

const char *ic_xmpp_client_binding(const struct ic_xmpp_client *c)
{
    return c->binding;
}

const char *ic_xmpp_client_mechanism(const struct ic_xmpp_client *c)
{
    return c->mechanism;
}
