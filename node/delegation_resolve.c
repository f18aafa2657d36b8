/*
 * delegation_resolve.c - recursive resolution of a constraint query that
 * falls in delegated scopes (delegation.h, docs/protocol.md).
 *
 * Happy path: the query's local matches are known; for each exchange
 * concerned, a fresh cached answer is taken, or the same command
 * (constraint_catalog_resources, the same constraints, recursive='true',
 * hops one less) is sent through the seam; when every exchange has
 * answered, the clouds are merged ("name" from exchange service.D becomes
 * "name@D"; "x@y" stays), de-duplicated and sorted, and the answer goes
 * to the caller. A complete answer is cached for the delegation's TTL,
 * an empty one too (negative caching).
 *
 * Failure modes: an exchange that times out, answers an error, answers
 * without <matchingClouds>, or cannot be sent to stays a <referral> and
 * the output gets <partial/>; nothing is cached for it, so the next query
 * asks again. An exchange's own <partial/> is passed on with its
 * referrals, uncached. A request whose hops are spent is not forwarded:
 * local matches, referrals and <partial/>.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delegation.h"

#define NS_RES IC_RESONTOLOGY_NS
#define NS_IODATA "urn:xmpp:tmp:io-data"
#define NS_COMMANDS "http://jabber.org/protocol/commands"
#define NODE_QUERY "constraint_catalog_resources"

struct names {
    char **v;
    size_t n;
};

static void names_add(struct names *s, const char *name)
{
    s->v = ic_realloc(s->v, (s->n + 1) * sizeof *s->v);
    s->v[s->n++] = ic_strdup(name);
}

static void names_free(struct names *s)
{
    for (size_t i = 0; i < s->n; i++)
        ic_free(s->v[i]);
    ic_free(s->v);
    s->v = NULL;
    s->n = 0;
}

/* A cached answer of one exchange to one constraint set. */
struct entry {
    char *key; /* exchange "\n" canonical constraint set */
    uint64_t hash;
    struct names names;
    uint64_t stored_ms, expires_ms;
    struct entry *next_in_bucket;
    struct entry *older, *newer; /* by stored_ms: the oldest goes first */
};

#define CACHE_BUCKETS 2048 /* a power of two, twice IC_DELEG_CACHE_MAX */

struct ask;

/* A request to one exchange for one key, and every query waiting on it:
 * concurrent misses of one key share one request. */
struct inflight {
    char *key;
    struct ask *waiters;
    struct inflight *next;
};

struct ic_deleg_resolver {
    struct ic_deleg_seam seam;
    char *domain;
    struct entry *buckets[CACHE_BUCKETS];
    struct entry *oldest, *newest;
    size_t ncache;
    struct inflight *inflight;
};

/* One query being resolved. */
struct job {
    struct ic_deleg_resolver *rs;
    ic_deleg_done_fn done;
    void *arg;
    struct names names;        /* local and merged */
    struct ic_deleg_refs refs; /* the delegations concerned */
    bool *answered;            /* per ref: merged, no referral any more */
    struct ic_deleg_refs sub;  /* referrals passed on from exchanges */
    bool partial;
    size_t waiting; /* answers awaited, plus one while sending */
};

/* One exchange asked. */
struct ask {
    struct job *job;
    size_t i;         /* in job->refs */
    char *key;        /* cache key */
    struct ask *next; /* waiting on the same request */
};

static uint64_t now_ms(struct ic_deleg_resolver *rs)
{
    return rs->seam.now_ms(rs->seam.ctx);
}

struct ic_deleg_resolver *
ic_node__deleg_resolver_new(const struct ic_deleg_seam *seam,
                            const char *domain)
{
    struct ic_deleg_resolver *rs = ic_calloc(1, sizeof *rs);

    rs->seam = *seam;
    if (rs->seam.timeout_ms == 0)
        rs->seam.timeout_ms = IC_DELEG_TIMEOUT_MS;
    rs->domain = ic_strdup(domain);
    return rs;
}

static void entry_free(struct entry *e)
{
    ic_free(e->key);
    names_free(&e->names);
    ic_free(e);
}

void ic_node__deleg_resolver_free(struct ic_deleg_resolver *rs)
{
    if (rs == NULL)
        return;
    while (rs->oldest != NULL) {
        struct entry *e = rs->oldest;
        rs->oldest = e->newer;
        entry_free(e);
    }
    ic_free(rs->domain);
    ic_free(rs);
}

size_t ic_node__deleg_cache_size(const struct ic_deleg_resolver *rs)
{
    return rs->ncache;
}

/* ---- the cache: a hash table, and a list from the oldest entry --------- */

static uint64_t key_hash(const char *key)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */

    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

static struct entry **bucket_of(struct ic_deleg_resolver *rs, uint64_t h)
{
    return &rs->buckets[h & (CACHE_BUCKETS - 1)];
}

static void list_unlink(struct ic_deleg_resolver *rs, struct entry *e)
{
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        rs->oldest = e->newer;
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        rs->newest = e->older;
    e->older = e->newer = NULL;
}

static void list_append(struct ic_deleg_resolver *rs, struct entry *e)
{
    e->older = rs->newest;
    e->newer = NULL;
    if (rs->newest != NULL)
        rs->newest->newer = e;
    else
        rs->oldest = e;
    rs->newest = e;
}

static void cache_drop(struct ic_deleg_resolver *rs, struct entry *e)
{
    struct entry **pp = bucket_of(rs, e->hash);

    while (*pp != e)
        pp = &(*pp)->next_in_bucket;
    *pp = e->next_in_bucket;
    list_unlink(rs, e);
    rs->ncache--;
    entry_free(e);
}

static struct entry *
cache_find(struct ic_deleg_resolver *rs, const char *key, uint64_t h)
{
    for (struct entry *e = *bucket_of(rs, h); e != NULL; e = e->next_in_bucket)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* The fresh entry of KEY, or NULL; a stale one is dropped. */
static struct entry *
cache_get(struct ic_deleg_resolver *rs, const char *key, uint64_t now)
{
    struct entry *e = cache_find(rs, key, key_hash(key));

    if (e != NULL && now >= e->expires_ms) {
        cache_drop(rs, e);
        e = NULL;
    }
    return e;
}

static void cache_put(struct ic_deleg_resolver *rs,
                      const char *key,
                      const struct names *names,
                      uint32_t ttl)
{
    uint64_t now = now_ms(rs), h = key_hash(key);
    struct entry *e = cache_find(rs, key, h);

    if (e != NULL) {
        list_unlink(rs, e);
    } else {
        /* room for one more: the oldest goes (stale ones go when met) */
        while (rs->ncache >= IC_DELEG_CACHE_MAX && rs->oldest != NULL)
            cache_drop(rs, rs->oldest);
        e = ic_calloc(1, sizeof *e);
        e->key = ic_strdup(key);
        e->hash = h;
        e->next_in_bucket = *bucket_of(rs, h);
        *bucket_of(rs, h) = e;
        rs->ncache++;
    }
    list_append(rs, e);
    names_free(&e->names);
    for (size_t i = 0; i < names->n; i++)
        names_add(&e->names, names->v[i]);
    e->stored_ms = now;
    e->expires_ms = now + (uint64_t)ttl * 1000;
}

/* ---- naming -------------------------------------------------------------- */

char *ic_node__deleg_domain_of(const char *exchange)
{
    const char *at = strchr(exchange, '@');
    const char *d = at ? at + 1 : exchange;
    size_t n = strcspn(d, "/");

    if (n > 8 && strncmp(d, "service.", 8) == 0) {
        d += 8;
        n -= 8;
    }
    return ic_strndup(d, n);
}

/* NAME from an exchange whose domain is DOMAIN, as this node lists it;
 * NULL when it is one of this node's own clouds, come back by a loop. */
static char *
merged_name(struct ic_deleg_resolver *rs, const char *name, const char *domain)
{
    const char *at = strchr(name, '@');
    size_t n;
    char *s;

    if (at != NULL)
        return strcmp(at + 1, rs->domain) == 0 ? NULL : ic_strdup(name);
    n = strlen(name) + strlen(domain) + 2;
    s = ic_malloc(n);
    snprintf(s, n, "%s@%s", name, domain);
    return s;
}

/* X's text trimmed of white space (a new string). */
static char *trimmed_text(const struct ic_xml *x)
{
    char *t = ic_xml_text(x), *a = t;
    size_t n;

    while (isspace((unsigned char)*a))
        a++;
    n = strlen(a);
    while (n > 0 && isspace((unsigned char)a[n - 1]))
        n--;
    memmove(t, a, n);
    t[n] = '\0';
    return t;
}

/* ---- the forwarded request ----------------------------------------------- */

static struct ic_xml *forward_iq(const char *to,
                                 const struct ic_constraint *c,
                                 size_t n,
                                 unsigned hops)
{
    struct ic_xml *iq = ic_xml_new("iq", IC_NS_CLIENT);
    struct ic_xml *cmd = ic_xml_add(iq, "command", NS_COMMANDS);
    struct ic_xml *io = ic_xml_add(cmd, "iodata", NS_IODATA);
    struct ic_xml *cs =
        ic_xml_add(ic_xml_add(io, "in", NULL), "constraints", NS_RES);
    char h[16];

    ic_xml_set_attr(iq, "type", "set");
    ic_xml_set_attr(iq, "to", to);
    ic_xml_set_attr(cmd, "node", NODE_QUERY);
    ic_xml_set_attr(cmd, "action", "execute");
    ic_xml_set_attr(io, "type", "input");
    snprintf(h, sizeof h, "%u", hops);
    ic_xml_set_attr(cs, "recursive", "true");
    ic_xml_set_attr(cs, "hops", h);
    for (size_t i = 0; i < n; i++) {
        struct ic_xml *x = ic_xml_add(cs, "constraint", NULL);
        ic_xml_add_text(ic_xml_add(x, "attribute", NULL), c[i].attribute,
                        strlen(c[i].attribute));
        ic_xml_add_text(ic_xml_add(x, "value", NULL), c[i].value,
                        strlen(c[i].value));
    }
    return iq;
}

/* The <out> of a completed constraint_catalog_resources answer, or NULL. */
static const struct ic_xml *answer_out(const struct ic_xml *answer)
{
    const char *type = answer ? ic_xml_attr(answer, "type") : NULL;
    const struct ic_xml *cmd, *io;

    if (type == NULL || strcmp(type, "result") != 0)
        return NULL;
    cmd = ic_xml_child(answer, "command", NS_COMMANDS);
    io = cmd ? ic_xml_child(cmd, "iodata", NS_IODATA) : NULL;
    return io ? ic_xml_child(io, "out", NS_IODATA) : NULL;
}

/* ---- the output ---------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_referral(struct ic_xml *out, const struct ic_deleg_ref *ref)
{
    struct ic_xml *x = ic_xml_add(out, "referral", NS_RES);
    char ttl[16];

    snprintf(ttl, sizeof ttl, "%u", (unsigned)ref->ttl);
    ic_xml_add_text(ic_xml_add(x, "exchange", NULL), ref->exchange,
                    strlen(ref->exchange));
    ic_xml_add_text(ic_xml_add(x, "ttl", NULL), ttl, strlen(ttl));
}

static struct ic_xml *output_of(struct job *job)
{
    struct ic_xml *io = ic_xml_new("iodata", NS_IODATA);
    struct ic_xml *out = ic_xml_add(io, "out", NULL);
    struct ic_xml *mc = ic_xml_add(out, "matchingClouds", NS_RES);
    struct ic_deleg_refs left = {0};
    struct names *s = &job->names;

    ic_xml_set_attr(io, "type", "output");
    if (s->n > 0)
        qsort(s->v, s->n, sizeof *s->v, cmp_str);
    for (size_t i = 0; i < s->n; i++)
        if (i == 0 || strcmp(s->v[i], s->v[i - 1]) != 0)
            ic_xml_add_text(ic_xml_add(mc, "cloudName", NULL), s->v[i],
                            strlen(s->v[i]));
    for (size_t i = 0; i < job->refs.n; i++)
        if (!job->answered[i])
            ic_node__deleg_refs_add(&left, job->refs.v[i].exchange,
                                    job->refs.v[i].ttl);
    for (size_t i = 0; i < job->sub.n; i++)
        ic_node__deleg_refs_add(&left, job->sub.v[i].exchange,
                                job->sub.v[i].ttl);
    for (size_t i = 0; i < left.n; i++)
        add_referral(out, &left.v[i]);
    if (job->partial)
        ic_xml_add(out, "partial", NS_RES);
    ic_node__deleg_refs_free(&left);
    return io;
}

static void finish(struct job *job)
{
    job->done(job->arg, output_of(job));
    names_free(&job->names);
    ic_node__deleg_refs_free(&job->refs);
    ic_node__deleg_refs_free(&job->sub);
    ic_free(job->answered);
    ic_free(job);
}

static void job_release(struct job *job)
{
    if (--job->waiting == 0)
        finish(job);
}

/* ---- answers ------------------------------------------------------------- */

/* The referrals of an exchange's partial answer OUT, passed on. */
static void take_referrals(struct job *job, const struct ic_xml *out)
{
    for (const struct ic_xml *r = ic_xml_child(out, "referral", NS_RES);
         r != NULL; r = ic_xml_next(r, "referral", NS_RES)) {
        const struct ic_xml *ex = ic_xml_child(r, "exchange", NS_RES);
        const struct ic_xml *tt = ic_xml_child(r, "ttl", NS_RES);
        char *e = ex ? trimmed_text(ex) : NULL;
        char *t = tt ? trimmed_text(tt) : NULL;
        unsigned long ttl = t ? strtoul(t, NULL, 10) : 0;
        if (e != NULL && e[0] != '\0' && job->sub.n < IC_DELEG_NAMES_MAX)
            ic_node__deleg_refs_add(
                &job->sub, e,
                (uint32_t)(ttl > IC_DELEG_TTL_MAX ? IC_DELEG_TTL_MAX : ttl));
        ic_free(e);
        ic_free(t);
    }
}

/* Merges the exchange's clouds; false when OUT is not a usable answer. */
static bool take_answer(struct ask *a, const struct ic_xml *out)
{
    struct job *job = a->job;
    const struct ic_deleg_ref *ref = &job->refs.v[a->i];
    const struct ic_xml *mc = ic_xml_child(out, "matchingClouds", NS_RES);
    char *domain = ic_node__deleg_domain_of(ref->exchange);
    struct names got = {0};
    bool partial;

    if (mc == NULL) {
        ic_free(domain);
        return false;
    }
    partial = ic_xml_child(out, "partial", NS_RES) != NULL;
    for (const struct ic_xml *x = ic_xml_child(mc, "cloudName", NS_RES);
         x != NULL && got.n < IC_DELEG_NAMES_MAX;
         x = ic_xml_next(x, "cloudName", NS_RES)) {
        char *t = trimmed_text(x);
        char *name = t[0] ? merged_name(job->rs, t, domain) : NULL;
        if (name != NULL) {
            names_add(&got, name);
            names_add(&job->names, name);
        }
        ic_free(name);
        ic_free(t);
    }
    if (partial) {
        job->partial = true;
        take_referrals(job, out);
    } else {
        cache_put(job->rs, a->key, &got, ref->ttl);
    }
    names_free(&got);
    ic_free(domain);
    return true;
}

/* The answer (or NULL: none) to the request of IF, for every query
 * waiting on it. */
static void on_answer(void *arg, const struct ic_xml *answer)
{
    struct inflight *fl = arg, **pp;
    const struct ic_xml *out = answer_out(answer);
    struct ask *a = fl->waiters, *next;
    struct ic_deleg_resolver *rs = a != NULL ? a->job->rs : NULL;

    for (pp = rs ? &rs->inflight : NULL; pp != NULL && *pp != NULL;
         pp = &(*pp)->next)
        if (*pp == fl) {
            *pp = fl->next;
            break;
        }
    for (; a != NULL; a = next) {
        struct job *job = a->job;
        next = a->next;
        if (out != NULL && take_answer(a, out))
            job->answered[a->i] = true;
        else
            job->partial = true;
        ic_free(a->key);
        ic_free(a);
        job_release(job);
    }
    ic_free(fl->key);
    ic_free(fl);
}

/* ---- resolution ---------------------------------------------------------- */

static char *cache_key(const char *exchange, const char *canon)
{
    size_t n = strlen(exchange) + strlen(canon) + 2;
    char *k = ic_malloc(n);

    snprintf(k, n, "%s\n%s", exchange, canon);
    return k;
}

/* Resolves ref I of JOB: from the cache, or by asking the exchange. */
static void ask_one(struct job *job, const struct ic_deleg_query *q, size_t i)
{
    struct ic_deleg_resolver *rs = job->rs;
    const char *exchange = job->refs.v[i].exchange;
    struct ask *a = ic_calloc(1, sizeof *a);
    struct inflight *fl;
    struct entry *e;
    char hops[16];

    a->job = job;
    a->i = i;
    a->key = cache_key(exchange, q->canon ? q->canon : "");
    e = cache_get(rs, a->key, now_ms(rs));
    if (e != NULL) {
        for (size_t k = 0; k < e->names.n; k++)
            names_add(&job->names, e->names.v[k]);
        job->answered[i] = true;
        ic_free(a->key);
        ic_free(a);
        return;
    }
    job->waiting++;
    /* the same question with the same hops left is asked once at a time
     * (with other hops it is another request: a loop's inner question
     * must not wait for the outer one) */
    snprintf(hops, sizeof hops, "\n%u", q->hops);
    for (struct inflight *f = rs->inflight; f != NULL; f = f->next)
        if (strncmp(f->key, a->key, strlen(a->key)) == 0 &&
            strcmp(f->key + strlen(a->key), hops) == 0) {
            a->next = f->waiters; /* asked already: wait with it */
            f->waiters = a;
            return;
        }
    fl = ic_calloc(1, sizeof *fl);
    fl->key = ic_malloc(strlen(a->key) + sizeof hops);
    strcpy(fl->key, a->key);
    strcat(fl->key, hops);
    fl->waiters = a;
    a->next = NULL;
    fl->next = rs->inflight;
    rs->inflight = fl;
    if (rs->seam.send(rs->seam.ctx,
                      forward_iq(exchange, q->c, q->n, q->hops - 1),
                      rs->seam.timeout_ms, on_answer, fl) != 0) {
        rs->inflight = fl->next;
        job->partial = true;
        ic_free(a->key);
        ic_free(a);
        ic_free(fl->key);
        ic_free(fl);
        job->waiting--;
    }
}

void ic_node__deleg_resolve(struct ic_deleg_resolver *rs,
                            const struct ic_deleg_query *q,
                            ic_deleg_done_fn done,
                            void *arg)
{
    struct job *job = ic_calloc(1, sizeof *job);

    job->rs = rs;
    job->done = done;
    job->arg = arg;
    for (size_t i = 0; i < q->nlocal; i++)
        names_add(&job->names, q->local[i]);
    for (size_t i = 0; q->refs != NULL && i < q->refs->n; i++)
        ic_node__deleg_refs_add(&job->refs, q->refs->v[i].exchange,
                                q->refs->v[i].ttl);
    job->answered = ic_calloc(job->refs.n + 1, sizeof *job->answered);
    job->waiting = 1; /* until every exchange is asked */
    if (q->recursive && job->refs.n > 0 && q->hops == 0)
        job->partial = true; /* the hop limit: not forwarded */
    else if (q->recursive)
        for (size_t i = 0; i < job->refs.n; i++)
            ask_one(job, q, i);
    job_release(job);
}
