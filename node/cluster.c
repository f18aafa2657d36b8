/*
 * cluster.c - the node's Raft server and cluster links, and writes from
 * any node (see cluster.h).
 *
 * A write's life (struct req), each step one attempt:
 *   submit here -> applied (we lead): done
 *               -> not the leader, leader N known: forward to N over the
 *                  link as <write id= attempt= quiet='1'>base64</write>;
 *                  N submits it; done when our own store applies the
 *                  command (raft's await: its result is the leader's, and
 *                  the write is here for a read that follows). N answers
 *                  <written .../> on its own link to us only when the
 *                  submission failed (not leader, outcome unknown); a
 *                  leader of an earlier version answers every write, and
 *                  we then wait until our store has applied its index
 *               -> no leader known, "outcome unknown", no answer within
 *                  FORWARD_MS, the link's queue full: try again after a
 *                  short pause, until the deadline (IC_ETIMEDOUT)
 * Every attempt carries the same encoded command (same client id and
 * sequence), so the state machine applies it once. An answer or callback
 * of an earlier attempt is ignored.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <uv.h>

#include "cluster.h"

#define DEFAULT_DEADLINE_MS 15000
#define FORWARD_MS 3000    /* an answer from the leader within */
#define RETRY_MS 50        /* pause before another attempt */
#define APPLY_WAIT_MS 2000 /* at least, for our own apply */
#define SEED_DEADLINE_MS (24u * 3600u * 1000u)

enum rq_state {
    RQ_SUBMITTING, /* a local submission is running */
    RQ_FORWARDED,  /* waiting for the leader's <written/> */
    RQ_PAUSED,     /* before the next attempt */
    RQ_APPLYING,   /* applied on the leader; waiting for our store */
    RQ_DONE,
};

struct req {
    struct ic_node_cluster *c;
    uint64_t id;
    unsigned char *enc; /* the encoded command */
    size_t enc_len;
    struct ic_raft_cmd *cmd; /* decoded view over enc */
    ic_node_write_cb cb;
    void *data;
    uint64_t deadline; /* uv_now() ms */
    uv_timer_t timer;
    enum rq_state state;
    unsigned attempt;
    int inflight; /* local submissions not called back yet */
    bool timer_open;
    uint64_t wait_index;
    struct ic_raft_result res;
    struct ic_raft_await *await; /* our store's apply, once forwarded */
    struct req *next, *prev;     /* oldest first */
};

/* One local submission of a request. */
struct attempt {
    struct req *r;
    unsigned n;
};

/* A write another node forwarded to us. */
struct fwd {
    struct ic_node_cluster *c;
    unsigned from;
    char id[32], attempt[16];
    bool quiet; /* no <written/> when the submission succeeds */
    unsigned char *buf;
};

struct ic_node_cluster {
    uv_loop_t *loop;
    const struct ic_node_config *cfg;
    struct ic_store *st;
    struct ic_raft_node *raft;
    struct ic_xmpp_links *links;
    uv_timer_t sync; /* keeps the links' peers in step with the members */
    struct req *reqs, *reqs_last;
    unsigned applying; /* requests in RQ_APPLYING */
    uint64_t next_id;
    int fwd_inflight;
    bool closing, raft_closed, links_closed;
    void (*close_cb)(void *data);
    void *close_data;
    unsigned char *seed; /* the seed command's bytes, while it runs */
    ic_node_router_fn router;
    uint64_t incarnation; /* our presence lease's, for routed stanzas */
    void *router_data;
    uint64_t down_since[256]; /* ms; 0: the link is up */
};

static void attempt_start(struct req *r);
static void maybe_free_req(struct req *r);
static void on_sync(uv_timer_t *t);

/* ---- base64 for the link messages -------------------------------------- */

static char *b64_encode(const unsigned char *in, size_t len)
{
    char *out = ic_malloc(4 * ((len + 2) / 3) + 1);

    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

static unsigned char *b64_decode(const char *in, size_t *len)
{
    size_t n = strlen(in);
    unsigned char *out;
    int got;

    if (n % 4 != 0)
        return NULL;
    out = ic_malloc(n / 4 * 3 + 1);
    got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (got < 0) {
        ic_free(out);
        return NULL;
    }
    /* EVP_DecodeBlock counts the padding as zero bytes */
    if (n > 0 && in[n - 1] == '=')
        got--;
    if (n > 1 && in[n - 2] == '=')
        got--;
    *len = (size_t)got;
    return out;
}

/* ---- requests ---------------------------------------------------------- */

static void on_req_timer_closed(uv_handle_t *h)
{
    struct req *r = h->data;

    r->timer_open = false;
    maybe_free_req(r);
}

static void maybe_free_req(struct req *r)
{
    if (r->state != RQ_DONE || r->inflight > 0 || r->timer_open)
        return;
    ic_raft_cmd_free(r->cmd);
    ic_free(r->enc);
    ic_free(r);
}

static void unlink_req(struct req *r)
{
    struct ic_node_cluster *c = r->c;

    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        c->reqs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    else
        c->reqs_last = r->prev;
    r->next = r->prev = NULL;
}

static void finish(struct req *r, int rc, const struct ic_raft_result *res)
{
    if (r->state == RQ_DONE)
        return;
    if (r->state == RQ_APPLYING)
        r->c->applying--;
    r->state = RQ_DONE;
    unlink_req(r);
    if (r->await != NULL) {
        ic_raft_node_await_cancel(r->c->raft, r->await);
        r->await = NULL;
    }
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, on_req_timer_closed);
    if (r->cb != NULL)
        r->cb(r->data, rc, res);
    maybe_free_req(r);
}

static void on_retry(uv_timer_t *t)
{
    attempt_start(t->data);
}

static void retry_later(struct req *r, const char *why)
{
    if (uv_now(r->c->loop) >= r->deadline) {
        IC_LOG(IC_LOG_WARN, "cluster", "write %llu: gave up: %s",
               (unsigned long long)r->id, why);
        finish(r, IC_ETIMEDOUT, NULL);
        return;
    }
    IC_LOG(IC_LOG_DEBUG, "cluster", "write %llu: again (%s)",
           (unsigned long long)r->id, why);
    r->state = RQ_PAUSED;
    uv_timer_start(&r->timer, on_retry, RETRY_MS, 0);
}

static void on_forward_timeout(uv_timer_t *t)
{
    retry_later(t->data, "no answer from the leader");
}

/* Our store applied the forwarded command (or found it a duplicate),
 * whichever attempt got it in: done with its result. */
static void on_awaited(void *data,
                       int rc,
                       const struct ic_raft_result *res,
                       uint64_t leader_id,
                       const char *leader_address)
{
    struct req *r = data;

    (void)leader_id;
    (void)leader_address;
    r->await = NULL;
    if (rc == 0)
        finish(r, 0, res);
}

static void forward(struct req *r, uint64_t leader)
{
    struct ic_xml *m = ic_xml_new("write", IC_NS_CLUSTER);
    char id[32], at[16];
    char *b64 = b64_encode(r->enc, r->enc_len);
    int rc;

    snprintf(id, sizeof id, "%llu", (unsigned long long)r->id);
    snprintf(at, sizeof at, "%u", r->attempt);
    ic_xml_set_attr(m, "id", id);
    ic_xml_set_attr(m, "attempt", at);
    /* one await for every attempt: they all carry (client, seq) */
    if (r->await == NULL)
        ic_raft_node_await(r->c->raft, r->cmd->client, r->cmd->seq, on_awaited,
                           r, &r->await);
    if (r->await != NULL)
        ic_xml_set_attr(m, "quiet", "1");
    ic_xml_add_text(m, b64, strlen(b64));
    ic_free(b64);
    rc = ic_xmpp_links_send(r->c->links, (unsigned)leader, m);
    ic_xml_free(m);
    if (rc != 0) {
        retry_later(r, ic_strerror(rc));
        return;
    }
    r->state = RQ_FORWARDED;
    uv_timer_start(&r->timer, on_forward_timeout, FORWARD_MS, 0);
}

/* Never done before our store has the entry: the caller reads it here
 * next (a linearizable read is a no-op write, then a local read). A store
 * that cannot catch up in time (full, or far behind after a partition or
 * restart) is "outcome unknown" at the deadline. */
static void on_apply_late(uv_timer_t *t)
{
    struct req *r = t->data;

    IC_LOG(IC_LOG_WARN, "cluster",
           "write %llu: applied on the leader at %llu, not here in "
           "time: gave up",
           (unsigned long long)r->id, (unsigned long long)r->wait_index);
    finish(r, IC_ETIMEDOUT, NULL);
}

/* Our store has applied up to APPLIED (raft's applied callback): the
 * forwarded writes waiting for it are done. */
static void on_store_applied(void *data, uint64_t applied)
{
    struct ic_node_cluster *c = data;
    struct req *r = c->reqs, *next;

    for (; r != NULL && c->applying > 0; r = next) {
        next = r->next;
        if (r->state == RQ_APPLYING && r->wait_index <= applied)
            finish(r, 0, &r->res);
    }
}

/* Applied on the leader at INDEX: done once our store has it too (where
 * the store really is: raft/node.c). */
static void await_apply(struct req *r, uint64_t index)
{
    uint64_t now = uv_now(r->c->loop);

    if (ic_raft_node_applied(r->c->raft) >= index) {
        finish(r, 0, &r->res);
        return;
    }
    r->state = RQ_APPLYING;
    r->c->applying++;
    r->wait_index = index;
    /* the deadline counts from the write's start, which may have passed
     * while the leader was busy: leave at least a short wait */
    if (r->deadline < now + APPLY_WAIT_MS)
        r->deadline = now + APPLY_WAIT_MS;
    uv_timer_start(&r->timer, on_apply_late, r->deadline - now, 0);
}

static void on_local(void *data,
                     int rc,
                     const struct ic_raft_result *res,
                     uint64_t leader_id,
                     const char *leader_address)
{
    struct attempt *a = data;
    struct req *r = a->r;
    bool current = a->n == r->attempt && r->state == RQ_SUBMITTING;

    (void)leader_address;
    ic_free(a);
    r->inflight--;
    if (!current || r->c->closing) {
        maybe_free_req(r);
        return;
    }
    if (rc == 0) {
        finish(r, 0, res);
    } else if (rc == IC_ENOTLEADER && leader_id != 0 &&
               leader_id != r->c->cfg->node.id)
        forward(r, leader_id);
    else if (rc == IC_ENOTLEADER || rc == IC_EINDOUBT)
        retry_later(r, rc == IC_ENOTLEADER ? "no leader" : "outcome unknown");
    else
        finish(r, rc, NULL);
}

static void attempt_start(struct req *r)
{
    uint64_t leader;
    struct attempt *a;
    int rc;

    if (r->c->closing) {
        finish(r, IC_EBUSY, NULL);
        return;
    }
    /* A follower that knows its leader forwards at once: the write then
     * goes out before anything this node sends next (a stanza routed
     * after a roster change reaches the leader's node after the change). */
    if (!ic_raft_node_leading(r->c->raft, &leader) && leader != 0 &&
        leader != r->c->cfg->node.id &&
        ic_xmpp_links_up(r->c->links, (unsigned)leader)) {
        ++r->attempt;
        forward(r, leader);
        return;
    }
    a = ic_malloc(sizeof *a);
    a->r = r;
    a->n = ++r->attempt;
    r->state = RQ_SUBMITTING;
    r->inflight++;
    rc = ic_raft_node_submit(r->c->raft, r->cmd, on_local, a);
    if (rc != 0) {
        r->inflight--;
        ic_free(a);
        finish(r, rc, NULL);
    }
}

int ic_node_cluster_write(struct ic_node_cluster *c,
                          const struct ic_raft_cmd *cmd,
                          unsigned deadline_ms,
                          ic_node_write_cb cb,
                          void *data)
{
    struct ic_raft_cmd copy = *cmd;
    struct req *r;
    size_t len;
    int rc;

    if (c->closing)
        return IC_EBUSY;
    if (copy.client == 0) {
        copy.client = ic_raft_node_client(c->raft);
        copy.seq = ic_raft_node_next_seq(c->raft);
    }
    rc = ic_raft_cmd_size(&copy, &len);
    if (rc != 0)
        return rc;
    r = ic_calloc(1, sizeof *r);
    r->c = c;
    r->id = ++c->next_id;
    r->enc = ic_malloc(len);
    r->enc_len = len;
    if (ic_raft_cmd_encode(&copy, r->enc, len) != 0 ||
        ic_raft_cmd_decode(r->enc, len, &r->cmd) != 0) {
        ic_free(r->enc);
        ic_free(r);
        return IC_EINVAL;
    }
    r->cb = cb;
    r->data = data;
    r->deadline = uv_now(c->loop) +
                  (deadline_ms != 0 ? deadline_ms : DEFAULT_DEADLINE_MS);
    uv_timer_init(c->loop, &r->timer);
    r->timer.data = r;
    r->timer_open = true;
    r->prev = c->reqs_last;
    if (c->reqs_last != NULL)
        c->reqs_last->next = r;
    else
        c->reqs = r;
    c->reqs_last = r;
    attempt_start(r);
    return 0;
}

/* ---- the leader's side of forwarded writes --------------------------------
 */

static void answer(struct ic_node_cluster *c,
                   unsigned to,
                   const char *id,
                   const char *attempt,
                   int rc,
                   const struct ic_raft_result *res,
                   uint64_t leader)
{
    struct ic_xml *m = ic_xml_new("written", IC_NS_CLUSTER);
    char buf[32];

    ic_xml_set_attr(m, "id", id);
    ic_xml_set_attr(m, "attempt", attempt);
    snprintf(buf, sizeof buf, "%d", rc);
    ic_xml_set_attr(m, "rc", buf);
    if (rc == 0) {
        snprintf(buf, sizeof buf, "%d", res->code);
        ic_xml_set_attr(m, "code", buf);
        snprintf(buf, sizeof buf, "%llu",
                 (unsigned long long)ic_raft_node_applied(c->raft));
        ic_xml_set_attr(m, "applied", buf);
        ic_xml_add_text(m, res->msg, strlen(res->msg));
    }
    if (leader != 0) {
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)leader);
        ic_xml_set_attr(m, "leader", buf);
    }
    if (!c->links_closed)
        ic_xmpp_links_send(c->links, to, m);
    ic_xml_free(m);
}

/* (The followers learn that the write committed from the barrier the
 * leader's raft node appends once its store applied it: raft/node.c.) */
static void on_forwarded_done(void *data,
                              int rc,
                              const struct ic_raft_result *res,
                              uint64_t leader_id,
                              const char *leader_address)
{
    struct fwd *f = data;
    (void)leader_address;
    if (rc != 0 || !f->quiet)
        answer(f->c, f->from, f->id, f->attempt, rc, res, leader_id);
    f->c->fwd_inflight--;
    ic_free(f->buf);
    ic_free(f);
}

static void
on_write_msg(struct ic_node_cluster *c, unsigned from, const struct ic_xml *m)
{
    const char *id = ic_xml_attr(m, "id"), *at = ic_xml_attr(m, "attempt");
    struct ic_raft_cmd *cmd = NULL;
    struct fwd *f;
    char *own;
    size_t len = 0;

    if (id == NULL || at == NULL || strlen(id) >= 32 || strlen(at) >= 16)
        return;
    f = ic_calloc(1, sizeof *f);
    f->c = c;
    f->from = from;
    snprintf(f->id, sizeof f->id, "%s", id);
    snprintf(f->attempt, sizeof f->attempt, "%s", at);
    f->quiet = ic_xml_attr(m, "quiet") != NULL &&
               strcmp(ic_xml_attr(m, "quiet"), "1") == 0;
    f->buf = b64_decode(ic_xml_text_ref(m, &own), &len);
    ic_free(own);
    if (f->buf == NULL || ic_raft_cmd_decode(f->buf, len, &cmd) != 0 ||
        c->closing ||
        ic_raft_node_submit(c->raft, cmd, on_forwarded_done, f) != 0) {
        answer(c, from, f->id, f->attempt,
               c->closing ? IC_EINDOUBT : IC_ECORRUPT, NULL, 0);
        ic_raft_cmd_free(cmd);
        ic_free(f->buf);
        ic_free(f);
        return;
    }
    c->fwd_inflight++;
    ic_raft_cmd_free(cmd); /* submit copied it */
}

static uint64_t attr_u64(const struct ic_xml *m, const char *name)
{
    const char *v = ic_xml_attr(m, name);

    return v != NULL ? strtoull(v, NULL, 10) : 0;
}

static void on_written_msg(struct ic_node_cluster *c, const struct ic_xml *m)
{
    uint64_t id = attr_u64(m, "id"), leader = attr_u64(m, "leader");
    unsigned at = (unsigned)attr_u64(m, "attempt");
    const char *rcs = ic_xml_attr(m, "rc");
    int rc = rcs != NULL ? atoi(rcs) : IC_ECORRUPT;
    struct req *r = c->reqs;
    char *text;

    while (r != NULL && r->id != id)
        r = r->next;
    if (r == NULL || r->attempt != at || r->state != RQ_FORWARDED)
        return; /* an earlier attempt's answer */
    uv_timer_stop(&r->timer);
    if (rc == 0) {
        r->res.code = (int)strtol(
            ic_xml_attr(m, "code") ? ic_xml_attr(m, "code") : "0", NULL, 10);
        text = ic_xml_text(m);
        snprintf(r->res.msg, sizeof r->res.msg, "%s", text);
        ic_free(text);
        await_apply(r, attr_u64(m, "applied"));
    } else if (rc == IC_ENOTLEADER && leader != 0 &&
               leader != c->cfg->node.id) {
        forward(r, leader);
    } else {
        retry_later(r, ic_strerror(rc));
    }
}

/* <route target='JID'><message xmlns='jabber:client' .../></route> */
static void
on_route_msg(struct ic_node_cluster *c, unsigned from, struct ic_xml *m)
{
    struct ic_xml *st = ic_xml_child(m, NULL, NULL);
    char *target;

    if (st == NULL || c->router == NULL || c->closing)
        return;
    target =
        ic_xml_attr(m, "target") ? ic_strdup(ic_xml_attr(m, "target")) : NULL;
    ic_xml_detach(st);
    c->router(c->router_data, st, target, from, attr_u64(m, "inc"));
    ic_free(target);
}

bool ic_node_cluster_route(struct ic_node_cluster *c,
                           unsigned node,
                           const struct ic_xml *st,
                           const char *target)
{
    struct ic_xml *m = ic_xml_new("route", IC_NS_CLUSTER);
    int rc;

    if (target != NULL)
        ic_xml_set_attr(m, "target", target);
    if (c->incarnation != 0) {
        char inc[24];
        snprintf(inc, sizeof inc, "%llu", (unsigned long long)c->incarnation);
        ic_xml_set_attr(m, "inc", inc);
    }
    ic_xml_append(m, ic_xml_copy(st));
    rc = c->closing ? IC_EBUSY : ic_xmpp_links_send(c->links, node, m);
    ic_xml_free(m);
    return rc == 0;
}

void ic_node_cluster_set_router(struct ic_node_cluster *c,
                                ic_node_router_fn fn,
                                void *data)
{
    c->router = fn;
    c->router_data = data;
}

void ic_node_cluster_set_incarnation(struct ic_node_cluster *c,
                                     uint64_t incarnation)
{
    c->incarnation = incarnation;
}

static void on_peer(void *data, unsigned id, bool up)
{
    struct ic_node_cluster *c = data;

    if (id < 256)
        c->down_since[id] = up ? 0 : uv_now(c->loop);
}

uint64_t ic_node_cluster_unreachable_ms(struct ic_node_cluster *c, unsigned id)
{
    if (id >= 256 || c->down_since[id] == 0)
        return 0;
    return uv_now(c->loop) - c->down_since[id];
}

bool ic_node_cluster_members_at(struct ic_node_cluster *c, unsigned level)
{
    struct ic_raft_status s;

    ic_node_cluster_status(c, &s);
    for (size_t i = 0; i < s.n_servers; i++)
        if (s.servers[i].id != c->cfg->node.id &&
            ic_xmpp_links_peer_level(c->links, (unsigned)s.servers[i].id) <
                (int)level)
            return false;
    return true;
}

static void on_message(void *data, unsigned from, struct ic_xml *msg)
{
    struct ic_node_cluster *c = data;

    if (msg->ns != NULL && strcmp(msg->ns, IC_NS_CLUSTER) == 0) {
        if (strcmp(msg->name, "write") == 0)
            on_write_msg(c, from, msg);
        else if (strcmp(msg->name, "written") == 0)
            on_written_msg(c, msg);
        else if (strcmp(msg->name, "route") == 0)
            on_route_msg(c, from, msg);
    }
    ic_xml_free(msg);
}

static bool is_member(void *data, unsigned id)
{
    struct ic_node_cluster *c = data;
    struct ic_raft_status s;

    for (size_t i = 0; i < c->cfg->cluster.n_peers; i++)
        if (c->cfg->cluster.peers[i].id == id)
            return true;
    ic_node_cluster_status(c, &s);
    for (size_t i = 0; i < s.n_servers; i++)
        if (s.servers[i].id == id)
            return true;
    return false;
}

/* ---- the seed ---------------------------------------------------------------
 */

static void on_seeded(void *data, int rc, const struct ic_raft_result *res)
{
    struct ic_node_cluster *c = data;

    ic_free(c->seed);
    c->seed = NULL;
    if (rc != 0)
        IC_LOG(IC_LOG_ERROR, "cluster", "seed: %s", ic_strerror(rc));
    else if (res->code != 0)
        IC_LOG(IC_LOG_ERROR, "cluster", "seed refused: %s", res->msg);
    else
        IC_LOG(IC_LOG_INFO, "cluster", "seed applied");
}

/* Reads and submits the seed command (a fixed client id and sequence: it
 * is applied once, whichever nodes submit it). */
static int start_seed(struct ic_node_cluster *c, char *why, size_t why_len)
{
    const char *path = c->cfg->cluster.seed;
    struct ic_raft_cmd *cmd;
    FILE *f = fopen(path, "rb");
    long n;
    int rc;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 ||
        n > (long)IC_RAFT_CMD_MAX || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(why, why_len, "seed %s: cannot read it", path);
        if (f != NULL)
            fclose(f);
        return IC_EIO;
    }
    c->seed = ic_malloc((size_t)n);
    rc = fread(c->seed, 1, (size_t)n, f) == (size_t)n ? 0 : IC_EIO;
    fclose(f);
    if (rc == 0)
        rc = ic_raft_cmd_decode(c->seed, (size_t)n, &cmd);
    if (rc != 0) {
        snprintf(why, why_len, "seed %s: %s", path, ic_strerror(rc));
        return rc;
    }
    rc = ic_node_cluster_write(c, cmd, SEED_DEADLINE_MS, on_seeded, c);
    ic_raft_cmd_free(cmd);
    if (rc != 0)
        snprintf(why, why_len, "seed %s: %s", path, ic_strerror(rc));
    return rc;
}

/* ---- membership ---------------------------------------------------------- */

/* A membership change in flight: add runs in two steps (spare, voter). */
struct member_op {
    struct ic_node_cluster *c;
    uint64_t id;
    bool then_assign;
    ic_node_member_cb cb;
    void *data;
};

static void on_member_done(void *data,
                           int rc,
                           uint64_t leader_id,
                           const char *leader_address)
{
    struct member_op *m = data;

    (void)leader_address;
    if (rc == 0 && m->then_assign) {
        m->then_assign = false;
        rc = ic_raft_node_assign(m->c->raft, m->id, IC_RAFT_VOTER,
                                 on_member_done, m);
        if (rc == 0)
            return;
    }
    m->cb(m->data, rc, leader_id);
    ic_free(m);
}

enum member_change { MC_ADD, MC_REMOVE, MC_TRANSFER };

static int member_start(struct ic_node_cluster *c,
                        enum member_change what,
                        uint64_t id,
                        const char *address,
                        ic_node_member_cb cb,
                        void *data)
{
    struct member_op *m = ic_calloc(1, sizeof *m);
    int rc;

    m->c = c;
    m->id = id;
    m->cb = cb;
    m->data = data;
    m->then_assign = what == MC_ADD;
    rc = what == MC_ADD
             ? ic_raft_node_add(c->raft, id, address, on_member_done, m)
         : what == MC_REMOVE
             ? ic_raft_node_remove(c->raft, id, on_member_done, m)
             : ic_raft_node_transfer(c->raft, id, on_member_done, m);
    if (rc != 0)
        ic_free(m);
    return rc;
}

int ic_node_cluster_member_add(struct ic_node_cluster *c,
                               uint64_t id,
                               const char *address,
                               ic_node_member_cb cb,
                               void *data)
{
    return member_start(c, MC_ADD, id, address, cb, data);
}

int ic_node_cluster_member_remove(struct ic_node_cluster *c,
                                  uint64_t id,
                                  ic_node_member_cb cb,
                                  void *data)
{
    return member_start(c, MC_REMOVE, id, NULL, cb, data);
}

int ic_node_cluster_transfer(struct ic_node_cluster *c,
                             uint64_t id,
                             ic_node_member_cb cb,
                             void *data)
{
    return member_start(c, MC_TRANSFER, id, NULL, cb, data);
}

/* Every second: a link to every member of the Raft configuration (at its
 * Raft port + 1), none to nodes that left it. */
static void on_sync(uv_timer_t *t)
{
    struct ic_node_cluster *c = t->data;
    struct ic_raft_status s;

    if (c->closing)
        return;
    ic_node_cluster_status(c, &s);
    if (s.n_servers == 0)
        return;
    for (size_t i = 0; i < s.n_servers; i++) {
        char host[IC_RAFT_ADDRESS_MAX], *colon;
        if (s.servers[i].id == c->cfg->node.id)
            continue;
        snprintf(host, sizeof host, "%s", s.servers[i].address);
        colon = strrchr(host, ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        ic_xmpp_links_set_peer(c->links, (unsigned)s.servers[i].id, host,
                               atoi(colon + 1) + 1);
    }
    for (unsigned id = 1; id <= 255; id++) {
        bool member = false;
        for (size_t i = 0; i < s.n_servers && !member; i++)
            member = s.servers[i].id == id;
        if (!member && id != c->cfg->node.id)
            ic_xmpp_links_set_peer(c->links, id, NULL, 0);
    }
}

/* ---- start, status, close ---------------------------------------------------
 */

static int start_links(struct ic_node_cluster *c, char *why, size_t why_len)
{
    static const struct ic_xmpp_links_ops ops0 = {NULL, is_member, on_message,
                                                  on_peer};
    const struct ic_node_config *cfg = c->cfg;
    const struct ic_node_peer *self = ic_node_config_self(cfg);
    struct ic_xmpp_links_ops ops = ops0;
    struct ic_xmpp_links_config lc = {0};
    int rc;

    ops.data = c;
    lc.self = cfg->node.id;
    lc.level = IC_NODE_LEVEL;
    lc.address = self != NULL ? self->host : cfg->c2s.address;
    lc.port = cfg->cluster.link_port;
    lc.domain = cfg->node.domain;
    lc.cert = cfg->tls.cert;
    lc.key = cfg->tls.key;
    lc.ca = cfg->tls.ca;
    rc = ic_xmpp_links_new(c->loop, &lc, &ops, &c->links, why, why_len);
    for (size_t i = 0; rc == 0 && i < cfg->cluster.n_peers; i++) {
        const struct ic_node_peer *p = &cfg->cluster.peers[i];
        if (p->id < 256) /* down until the link comes up */
            c->down_since[p->id] = uv_now(c->loop);
        if (p->id != cfg->node.id) /* links listen on raft port + 1 */
            rc = ic_xmpp_links_set_peer(c->links, p->id, p->host,
                                        p->raft_port + 1);
    }
    return rc;
}

static int start_raft(struct ic_node_cluster *c,
                      ic_raft_observer_fn observer,
                      void *observer_data,
                      char *why,
                      size_t why_len)
{
    const struct ic_node_config *cfg = c->cfg;
    const struct ic_node_peer *self = ic_node_config_self(cfg);
    size_t n = cfg->cluster.n_peers;
    struct ic_raft_server *servers = ic_calloc(n + 1, sizeof *servers);
    char(*addrs)[IC_RAFT_ADDRESS_MAX] = ic_calloc(n + 1, sizeof *addrs);
    struct ic_raft_node_opts o = {0};
    int rc;

    for (size_t i = 0; i < n; i++) {
        snprintf(addrs[i], sizeof addrs[i], "%s:%u", cfg->cluster.peers[i].host,
                 (unsigned)cfg->cluster.peers[i].raft_port);
        servers[i] = (struct ic_raft_server){cfg->cluster.peers[i].id, addrs[i],
                                             IC_RAFT_VOTER};
    }
    if (n == 0) { /* a cluster of this node alone */
        snprintf(addrs[0], sizeof addrs[0], "%s:%u", cfg->c2s.address,
                 (unsigned)cfg->cluster.raft_port);
        servers[0] =
            (struct ic_raft_server){cfg->node.id, addrs[0], IC_RAFT_VOTER};
        n = 1;
    }
    o.id = cfg->node.id;
    o.address = self != NULL ? addrs[self - cfg->cluster.peers] : addrs[0];
    o.data_dir = cfg->node.data_dir;
    o.store = c->st;
    o.initial = cfg->cluster.join ? NULL : servers;
    o.n_initial = cfg->cluster.join ? 0 : n;
    o.election_timeout_ms = cfg->cluster.election_timeout;
    o.heartbeat_ms = cfg->cluster.heartbeat;
    o.snapshot_threshold = cfg->cluster.snapshot_threshold;
    o.snapshot_trailing = cfg->cluster.snapshot_trailing;
    o.log_memory = (uint64_t)cfg->cluster.log_memory << 20;
    o.observer = observer;
    o.observer_data = observer_data;
    o.applied = on_store_applied;
    o.applied_data = c;
    rc = ic_raft_node_new(c->loop, &o, &c->raft, why, why_len);
    ic_free(servers);
    ic_free(addrs);
    return rc;
}

static void on_links_closed(void *data);

int ic_node_cluster_start(struct uv_loop_s *loop,
                          const struct ic_node_config *cfg,
                          struct ic_store *st,
                          ic_raft_observer_fn observer,
                          void *observer_data,
                          struct ic_node_cluster **out,
                          char *why,
                          size_t why_len)
{
    struct ic_node_cluster *c = ic_calloc(1, sizeof *c);
    int rc;

    c->loop = loop;
    c->cfg = cfg;
    c->st = st;
    rc = start_raft(c, observer, observer_data, why, why_len);
    if (rc != 0) {
        ic_free(c);
        return rc;
    }
    uv_timer_init(loop, &c->sync);
    c->sync.data = c;
    rc = start_links(c, why, why_len);
    if (rc == 0)
        uv_timer_start(&c->sync, on_sync, 1000, 1000);
    if (rc == 0 && cfg->cluster.seed != NULL)
        rc = start_seed(c, why, why_len);
    *out = c; /* even on failure: the caller closes it */
    return rc;
}

void ic_node_cluster_status(struct ic_node_cluster *c,
                            struct ic_raft_status *out)
{
    ic_raft_node_status(c->raft, out);
}

static void on_raft_closed(void *data)
{
    struct ic_node_cluster *c = data;

    c->raft_closed = true;
    if (c->links == NULL) {
        on_links_closed(c);
        return;
    }
    ic_xmpp_links_shutdown(c->links, on_links_closed, c);
}

static void on_links_closed(void *data)
{
    struct ic_node_cluster *c = data;
    void (*cb)(void *) = c->close_cb;
    void *cb_data = c->close_data;

    c->links_closed = true;
    ic_xmpp_links_free(c->links);
    ic_free(c->seed);
    ic_free(c);
    if (cb != NULL)
        cb(cb_data);
}

void ic_node_cluster_close(struct ic_node_cluster *c,
                           void (*cb)(void *data),
                           void *data)
{
    c->closing = true;
    c->close_cb = cb;
    c->close_data = data;
    uv_close((uv_handle_t *)&c->sync, NULL);
    while (c->reqs != NULL)
        finish(c->reqs, IC_EBUSY, NULL);
    /* Raft first (it hands leadership over; forwarded writes still
     * running complete and are answered on the links), then the links. */
    ic_raft_node_close(c->raft, on_raft_closed, c);
}
