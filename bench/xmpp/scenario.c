/*
 * scenario.c - what each scenario does with its connections.
 *
 *   login    each of --conns slots logs in (TCP, STARTTLS, SASL, bind),
 *            ends the stream and starts again; one operation per bind,
 *            latency from connect() to the bind result.
 *   ping     --window XEP-0199 pings to the server in flight per
 *            connection, the next sent when one is answered.
 *   query    the same with the seed paper's constraint query to --service;
 *            an answer without cloud2 and cloud5 counts as an error.
 *   message  a ring (or --pairs): connection i sends chat messages to the
 *            full JID of connection i+1, --window each at the start, then
 *            one more per message it receives (a closed loop, N * window
 *            in flight); latency from the send time carried in the id.
 *   idle     the connections log in and stay; the server's RSS is read
 *            before and after (icroot-bench.c).
 *   create   one admin connection runs add_account for PREFIX1..N.
 *
 * Before the start (`go`) the connections of ping/query/message/idle are
 * opened --ramp at a time (per process), up to the run's ramp_permille of
 * each worker's share (idle stops at half way for a first RSS reading);
 * lost ones are opened again until the start. Operations count only while
 * the run is `measuring`.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define NS_PING "urn:xmpp:ping"
#define NS_CMD "http://jabber.org/protocol/commands"
#define NS_IODATA "urn:xmpp:tmp:io-data"
#define NS_RES "http://www.csp/resOntology"

/* The seed paper's constraint query (section 6), as in docs/protocol.md:
 * the command up to <constraints, its first constraint's value (the
 * availability: 99.999, or a --vary value), and the rest. */
static const char query_head[] =
    "<command xmlns='" NS_CMD "' node='constraint_catalog_resources' "
    "action='execute'><iodata xmlns='" NS_IODATA "' type='input'><in>"
    "<constraints xmlns='" NS_RES "'";
static const char query_avail[] =
    "><constraint><attribute>availabilityQuanity </attribute><value>";
static const char query_tail[] =
    "</value></constraint>"
    "<constraint><attribute>replicationFactor</attribute>"
    "<value>5</value></constraint>"
    "<constraint><attribute>tierCountries</attribute>"
    "<value>JAPAN</value></constraint>"
    "<constraint><attribute>StorageReplicationMethod</attribute>"
    "<value>AMQP</value></constraint>"
    "<constraint><attribute>InterCloudStorageAccess</attribute>"
    "<value>NFS</value></constraint>"
    "</constraints></in></iodata></command>";

static bool measuring(const struct bench_worker *w)
{
    return atomic_load_explicit(&w->run->measuring, memory_order_relaxed);
}

static void count_op(struct bench_worker *w, uint64_t lat_ns)
{
    if (!measuring(w))
        return;
    w->st.ops++;
    bench_hist_add(&w->st.lat, lat_ns);
}

static void count_error(struct bench_worker *w, const char *what)
{
    if (!measuring(w))
        return;
    w->st.errors++;
    bench_error(w, "%s", what);
}

/* ---- sending ---- */

static void send_ping(struct bench_conn *c)
{
    const struct bench_opts *o = c->w->run->o;
    uint64_t seq = c->seq++;

    c->sent_at[seq % o->window] = bench_now_ns();
    c->inflight++;
    bench_conn_sendf(c,
                     "<iq type='get' id='p%" PRIu64
                     "' to='%s'><ping xmlns='" NS_PING "'/></iq>",
                     seq, o->domain);
}

static void send_query(struct bench_conn *c)
{
    const struct bench_opts *o = c->w->run->o;
    uint64_t seq = c->seq++;
    char value[16] = "99.999";

    /* --vary: 99.99 < value <= 99.999, so cloud1 (99.99) stays out and
     * cloud2 (99.999) in; each k is another constraint set (cache key) */
    if (o->vary > 0)
        snprintf(value, sizeof value, "99.99%05u",
                 atomic_fetch_add(&c->w->run->query_seq, 1) % o->vary + 1);
    c->sent_at[seq % o->window] = bench_now_ns();
    c->inflight++;
    c->w->st.sent++;
    bench_conn_sendf(
        c, "<iq type='set' id='q%" PRIu64 "' to='%s'>%s%s%s%s%s</iq>", seq,
        o->service, query_head, o->recursive ? " recursive='true'" : "",
        query_avail, value, query_tail);
}

/* The answer has exactly the --expect names (default cloud2, cloud5),
 * and no <referral> or <partial/> left. */
static bool query_ok(const struct bench_opts *o, const struct bench_stanza *s)
{
    const char *e = o->expect ? o->expect : "cloud2,cloud5";
    unsigned n = 0;

    if (s->partial || s->referrals > 0)
        return false;
    while (*e) {
        size_t len = strcspn(e, ",");
        char name[128];

        snprintf(name, sizeof name, "%.*s", (int)len, e);
        if (len > 0 && strstr(s->text, name) == NULL)
            return false;
        n += len > 0;
        e += len + (e[len] == ',');
    }
    return s->cloudnames == n;
}

static void send_message(struct bench_conn *c)
{
    const struct bench_opts *o = c->w->run->o;
    const char *to = c->w->run->jids[c->peer];
    static const char pad[] =
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    unsigned body = o->body < sizeof pad - 1 ? o->body : sizeof pad - 1;

    if (to == NULL) {
        count_error(c->w, "message: the peer is not connected");
        return;
    }
    bench_conn_sendf(c,
                     "<message to='%s' type='chat' id='m%" PRIx64
                     "'><body>%.*s</body></message>",
                     to, bench_now_ns(), (int)body, pad);
}

static void send_add_account(struct bench_conn *c)
{
    const struct bench_opts *o = c->w->run->o;
    uint64_t n = ++c->seq;

    c->inflight++;
    bench_conn_sendf(
        c,
        "<iq type='set' id='a%" PRIu64 "' to='%s'><command xmlns='" NS_CMD
        "' node='add_account' action='execute'><iodata xmlns='" NS_IODATA
        "' type='input'><in><account xmlns='" NS_RES "'><user>%s%" PRIu64
        "</user><password>%s</password><admin>false</admin></account>"
        "</in></iodata></command></iq>",
        n, o->service, o->user_prefix, n, o->password);
}

/* ---- traffic ---- */

static void start_traffic(struct bench_conn *c)
{
    struct bench_worker *w = c->w;
    const struct bench_opts *o = w->run->o;
    unsigned n = w->run->o->conns;

    switch (o->scenario) {
    case SC_PING:
    case SC_QUERY:
        c->sent_at = calloc(o->window, sizeof *c->sent_at);
        if (c->sent_at == NULL)
            abort();
        for (unsigned i = 0; i < o->window; i++)
            (o->scenario == SC_PING ? send_ping : send_query)(c);
        break;
    case SC_MESSAGE:
        if (o->cross) { /* senders only, to their receiver */
            c->peer = c->idx ^ 1u;
            if (!bench_on_b(o, c->idx))
                for (unsigned i = 0; i < o->window; i++)
                    send_message(c);
            break;
        }
        c->peer = o->pairs ? (c->idx ^ 1u) : (c->idx + 1) % n;
        if (c->peer >= n)
            c->peer = c->idx;
        for (unsigned i = 0; i < o->window; i++)
            send_message(c);
        break;
    case SC_CREATE:
        for (unsigned i = 0; i < o->window && c->seq < o->users; i++)
            send_add_account(c);
        break;
    default:
        break;
    }
}

void bench_traffic_start(struct bench_worker *w)
{
    w->traffic = true;
    if (w->run->o->scenario == SC_LOGIN) {
        bench_worker_fill(w);
        return;
    }
    for (unsigned i = 0; i < w->count; i++)
        if (w->conns[i] != NULL && w->conns[i]->state == ST_READY)
            start_traffic(w->conns[i]);
}

/* Opens connections: login keeps every slot busy once started; the others
 * ramp up --ramp at a time until the start. */
void bench_worker_fill(struct bench_worker *w)
{
    const struct bench_opts *o = w->run->o;
    unsigned ramp = (o->ramp + o->threads - 1) / o->threads, cap;

    if (w->stopping)
        return;
    if (o->scenario == SC_LOGIN) {
        if (!w->traffic)
            return;
        for (unsigned i = 0; i < w->count; i++)
            if (w->conns[i] == NULL)
                bench_conn_start(w, w->first + i);
        return;
    }
    if (w->traffic)
        return; /* lost connections are not replaced once started */
    cap = (unsigned)((uint64_t)w->count * atomic_load(&w->run->ramp_permille) /
                     1000);
    while (w->cursor < cap && w->in_login < ramp) {
        unsigned i = w->cursor++;
        if (w->conns[i] == NULL)
            bench_conn_start(w, w->first + i);
    }
    if (w->cursor >= cap && w->retry && w->in_login < ramp) {
        w->retry = false;
        w->cursor = 0; /* another pass for the ones lost on the way */
    }
}

void bench_on_ready(struct bench_conn *c)
{
    struct bench_worker *w = c->w;

    if (w->run->o->scenario == SC_LOGIN) {
        count_op(w, bench_now_ns() - c->t_start);
        bench_conn_end(c);
        return;
    }
    if (w->traffic)
        start_traffic(c);
    else
        bench_worker_fill(w);
}

static uint64_t sent_time(struct bench_conn *c, const char *id)
{
    uint64_t seq = strtoull(id + 1, NULL, 10);

    if (c->inflight > 0)
        c->inflight--;
    return c->sent_at[seq % c->w->run->o->window];
}

static void on_iq(struct bench_conn *c, const struct bench_stanza *s)
{
    struct bench_worker *w = c->w;
    const struct bench_opts *o = w->run->o;
    bool result = strcmp(s->type, "result") == 0;
    uint64_t t;

    if (strcmp(s->type, "get") == 0 || strcmp(s->type, "set") == 0) {
        /* a server's ping or query: answer, as clients must */
        bench_conn_sendf(c, "<iq type='%s' id='%s' to='%s'/>",
                         strcmp(s->child, "ping") == 0 ? "result" : "error",
                         s->id, s->from);
        return;
    }
    if (o->scenario == SC_PING && s->id[0] == 'p') {
        t = sent_time(c, s->id);
        if (result)
            count_op(w, bench_now_ns() - t);
        else
            count_error(w, "ping answered with an error");
        if (!w->stopping)
            send_ping(c);
    } else if (o->scenario == SC_QUERY && s->id[0] == 'q') {
        t = sent_time(c, s->id);
        if (result && query_ok(o, s))
            count_op(w, bench_now_ns() - t);
        else if (result && o->expect == NULL && !s->partial &&
                 s->referrals == 0)
            count_error(w, "query: not {cloud2, cloud5}");
        else
            count_error(w, !result        ? "query answered with an error"
                           : s->partial   ? "query: partial answer"
                           : s->referrals ? "query: referrals left"
                                          : "query: not the --expect names");
        if (!w->stopping)
            send_query(c);
    } else if (o->scenario == SC_CREATE && s->id[0] == 'a') {
        c->inflight--;
        if (result) {
            w->st.ops++;
        } else {
            w->st.errors++;
            bench_error(w, "add_account %s: %s %s", s->id, s->child, s->text);
        }
        if (c->seq < o->users)
            send_add_account(c);
        else if (c->inflight == 0)
            atomic_store(&w->run->stop, 1);
    }
}

void bench_on_stanza(struct bench_conn *c, const struct bench_stanza *s)
{
    struct bench_worker *w = c->w;

    if (strcmp(s->name, "iq") == 0) {
        on_iq(c, s);
    } else if (strcmp(s->name, "message") == 0 &&
               w->run->o->scenario == SC_MESSAGE) {
        struct bench_conn *from = c;
        bool bounce = strcmp(s->type, "error") == 0;

        if (bounce) {
            count_error(w, "message bounced");
        } else if (s->id[0] == 'm') {
            count_op(w, bench_now_ns() - strtoull(s->id + 1, NULL, 16));
        }
        /* across servers: a receiver's message lets its sender (the same
         * worker) send the next; a bounce, the sender itself */
        if (w->run->o->cross && !bounce) {
            unsigned p = c->idx ^ 1u;
            from = bench_on_b(w->run->o, c->idx) && p >= w->first &&
                           p - w->first < w->count
                       ? w->conns[p - w->first]
                       : NULL;
            if (from != NULL && (from->state != ST_READY || from->closing))
                from = NULL;
        }
        if (!w->stopping && from != NULL)
            send_message(from);
    }
}

void bench_on_closed(struct bench_conn *c, bool failed)
{
    struct bench_worker *w = c->w;

    if (w->stopping) {
        if (w->open == 0)
            bench_worker_done(w);
        return;
    }
    if (w->run->o->scenario == SC_LOGIN) {
        if (!failed)
            bench_conn_start(w, c->idx); /* failed slots: on the next tick */
        return;
    }
    if (!w->traffic) {
        w->retry = true;
        if (!failed) /* failed ones: on the next tick, not in a tight loop */
            bench_worker_fill(w);
    }
}
