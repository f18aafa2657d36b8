/*
 * match.c - the constraint matcher behind the seed paper's
 * constraint_catalog_resources query.
 *
 * Each (attribute, value) pair is looked up in the attribute map kept in the
 * catalog (ontology/constraints.ttl): the property it constrains, the
 * comparison (atLeast, atMost, equals, oneOf) and how the value is read (an
 * XSD datatype, or labels of instances of a class). A pair becomes a set of
 * intervals of object ids on `pos`; ordered literals make "at least 5" one
 * interval. The query is a star on one subject that must also be an
 * ic:Cloud: the most selective constraint is scanned first, the others
 * either scanned and intersected (sorted subject lists) or, when few
 * candidates remain, probed per subject on `spo`.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define ICQ "http://www.csp/resOntology/constraints#"
#define ICNS "http://www.csp/resOntology#"

struct vec {
    uint64_t *v;
    size_t n, cap;
};

static void vec_push(struct vec *a, uint64_t x)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = ic_realloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = x;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void vec_sort_unique(struct vec *a)
{
    size_t m = 0;

    if (a->n == 0)
        return;
    qsort(a->v, a->n, sizeof *a->v, cmp_u64);
    for (size_t i = 0; i < a->n; i++)
        if (m == 0 || a->v[i] != a->v[m - 1])
            a->v[m++] = a->v[i];
    a->n = m;
}

/* One interval [lo, hi] of object ids; for ordered literals, the exact
 * bounds to check in the edge buckets. */
struct interval {
    uint64_t lo, hi;
    bool exact;
    bool has_lo, has_hi;
    long double vlo, vhi;
};

struct cons {
    const char *attr;
    uint64_t p;
    struct interval *iv;
    size_t niv;
    uint64_t est;
};

struct mctx {
    struct ic_txn *t;
    MDB_cursor *spo, *pos, *osp;
    struct ic_match_result *res;
};

static int open_cursors(struct mctx *m);

static int iri_id(struct ic_txn *t, const char *iri, uint64_t *id)
{
    struct ic_term term = ic_term_iri(iri);
    return ic_store_term_id(t, &term, false, id);
}

/* The objects of (s, p) from spo. */
static int objects(struct mctx *m, uint64_t s, uint64_t p, struct vec *out)
{
    unsigned char kb[8], vb[16];
    MDB_val k = {8, kb}, v = {16, vb};
    int rc;

    ic_store__be64(kb, s);
    ic_store__be64(vb, p);
    memset(vb + 8, 0, 8);
    for (rc = mdb_cursor_get(m->spo, &k, &v, MDB_GET_BOTH_RANGE); rc == 0;
         rc = mdb_cursor_get(m->spo, &k, &v, MDB_NEXT_DUP)) {
        if (ic_store__get_be64(v.mv_data) != p)
            break;
        vec_push(out, ic_store__get_be64((unsigned char *)v.mv_data + 8));
    }
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : ic_store__mdb_err(rc);
}

/* The subjects of (?, p, o) from pos, appended in subject order. */
static int subjects(struct mctx *m, uint64_t p, uint64_t o, struct vec *out)
{
    unsigned char kb[8], vb[16];
    MDB_val k = {8, kb}, v = {16, vb};
    int rc;

    ic_store__be64(kb, p);
    ic_store__be64(vb, o);
    memset(vb + 8, 0, 8);
    for (rc = mdb_cursor_get(m->pos, &k, &v, MDB_GET_BOTH_RANGE); rc == 0;
         rc = mdb_cursor_get(m->pos, &k, &v, MDB_NEXT_DUP)) {
        if (ic_store__get_be64(v.mv_data) != o)
            break;
        vec_push(out, ic_store__get_be64((unsigned char *)v.mv_data + 8));
    }
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : ic_store__mdb_err(rc);
}

static int
has_triple(struct mctx *m, uint64_t s, uint64_t p, uint64_t o, bool *yes)
{
    unsigned char kb[8], vb[16];
    MDB_val k = {8, kb}, v = {16, vb};
    int rc;

    ic_store__be64(kb, s);
    ic_store__be64(vb, p);
    ic_store__be64(vb + 8, o);
    rc = mdb_cursor_get(m->spo, &k, &v, MDB_GET_BOTH);
    *yes = rc == 0;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : ic_store__mdb_err(rc);
}

static void trim(const char *s, size_t *off, size_t *len)
{
    size_t a = 0, b = strlen(s);

    while (a < b && isspace((unsigned char)s[a]))
        a++;
    while (b > a && isspace((unsigned char)s[b - 1]))
        b--;
    *off = a;
    *len = b - a;
}

static int literal_id(
    struct ic_txn *t, const char *s, size_t len, const char *dt, uint64_t *id)
{
    struct ic_term term = {IC_TERM_LITERAL, s, len, dt, NULL};
    return ic_store_term_id(t, &term, false, id);
}

/* The attribute map entry: the subject named NAME. */
struct attr {
    uint64_t p, cmp, dt, cls;
    struct vec labels;
};

static int
attr_read(struct mctx *m, const char *name, size_t len, struct attr *a)
{
    uint64_t pname, lit, x;
    struct vec subj = {0}, tmp = {0};
    int rc;

    memset(a, 0, sizeof *a);
    rc = iri_id(m->t, ICQ "name", &pname);
    if (rc == 0)
        rc = literal_id(m->t, name, len, NULL, &lit);
    if (rc == 0)
        rc = subjects(m, pname, lit, &subj);
    if (rc == 0 && subj.n == 0)
        rc = IC_ENOTFOUND;
    if (rc != 0)
        goto out;
    x = subj.v[0];
    {
        static const char *const preds[] = {ICQ "property", ICQ "comparison",
                                            ICQ "datatype", ICQ "valueClass"};
        uint64_t *slots[] = {&a->p, &a->cmp, &a->dt, &a->cls};
        for (size_t i = 0; i < IC_ARRAY_LEN(preds) && rc == 0; i++) {
            uint64_t pid;
            tmp.n = 0;
            if (iri_id(m->t, preds[i], &pid) != 0)
                continue;
            rc = objects(m, x, pid, &tmp);
            if (tmp.n > 0)
                *slots[i] = tmp.v[0];
        }
        if (rc == 0 && iri_id(m->t, ICQ "labelProperty", &pname) == 0)
            rc = objects(m, x, pname, &a->labels);
    }
    if (rc == 0 && (a->p == 0 || a->cmp == 0))
        rc = IC_ECORRUPT;
out:
    ic_free(subj.v);
    ic_free(tmp.v);
    return rc;
}

/* Attribute look-ups (every pair of every publish, every constraint of a
 * query) as read from the attribute map, kept while the map is unchanged:
 * ic_store.attr_gen moves when a commit touched one of its predicates. A
 * read transaction uses them only when it began at the current
 * generation; a write transaction never (it may have changed the map).
 * Entries for attributes that exist only, at most AMAP_MAX. */
#define AMAP_MAX 256

static const char *const amap_preds[6] = {
    ICQ "name",     ICQ "property",   ICQ "comparison",
    ICQ "datatype", ICQ "valueClass", ICQ "labelProperty"};

struct ic_store__amap {
    uint64_t gen;
    size_t n;
    struct amap_entry {
        char *name;
        size_t len;
        struct attr a;
    } e[AMAP_MAX];
};

void ic_store__amap_free(struct ic_store__amap *c)
{
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        ic_free(c->e[i].name);
        ic_free(c->e[i].a.labels.v);
    }
    ic_free(c);
}

/* rdf:type and every label property the attribute map names (the
 * objects of icq:labelProperty), into T; state 2 when rdf:type is not in
 * the dictionary yet (then any quad counts). */
static void label_preds(struct ic_txn *t)
{
    uint64_t type, lp;
    MDB_cursor *cur;
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    int rc;

    t->label_state = 2;
    if (iri_id(t, IC_RDF "type", &type) != 0)
        return;
    t->label_ids = ic_malloc(sizeof *t->label_ids);
    t->label_ids[0] = type;
    t->n_label_ids = 1;
    if (iri_id(t, ICQ "labelProperty", &lp) == 0) {
        if (mdb_cursor_open(t->txn, t->st->dbi[DBI_POS], &cur) != 0)
            return;
        ic_store__be64(kb, lp);
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
            t->label_ids = ic_realloc(t->label_ids, (t->n_label_ids + 1) *
                                                        sizeof *t->label_ids);
            t->label_ids[t->n_label_ids++] = ic_store__get_be64(v.mv_data);
        }
        mdb_cursor_close(cur);
        if (rc != MDB_NOTFOUND)
            return;
    }
    t->label_state = 1;
}

void ic_store__amap_touch(struct ic_txn *t, uint64_t p)
{
    if (!t->amap_dirty) {
        if (t->amap_state == 0) {
            t->amap_state = 1;
            for (size_t i = 0; i < IC_ARRAY_LEN(amap_preds); i++)
                if (iri_id(t, amap_preds[i], &t->amap_ids[i]) != 0)
                    t->amap_state = 2; /* a quad may bring it: any counts */
        }
        for (size_t i = 0; i < IC_ARRAY_LEN(amap_preds); i++)
            if (t->amap_state == 2 || t->amap_ids[i] == p)
                t->amap_dirty = true;
    }
    if (!t->label_dirty) {
        if (t->label_state == 0)
            label_preds(t);
        for (size_t i = 0; i < t->n_label_ids; i++)
            if (t->label_ids[i] == p)
                t->label_dirty = true;
        if (t->label_state == 2)
            t->label_dirty = true;
    }
}

static struct vec vec_dup(const struct vec *v)
{
    struct vec d = {NULL, v->n, v->n};

    if (v->n > 0) {
        d.v = ic_malloc(v->n * sizeof *d.v);
        memcpy(d.v, v->v, v->n * sizeof *d.v);
    }
    return d;
}

/* The attribute map entry named NAME, from the cache or read. */
static int
attr_lookup(struct mctx *m, const char *name, size_t len, struct attr *a)
{
    struct ic_store *st = m->t->st;
    struct ic_store__amap *c = NULL;
    int rc;

    if (!m->t->write && m->t->attr_gen == st->attr_gen) {
        c = st->amap;
        if (c == NULL || c->gen != st->attr_gen) {
            ic_store__amap_free(c);
            c = st->amap = ic_calloc(1, sizeof *c);
            c->gen = st->attr_gen;
        }
        for (size_t i = 0; i < c->n; i++) {
            const struct amap_entry *e = &c->e[i];
            if (e->len == len && memcmp(e->name, name, len) == 0) {
                *a = e->a;
                a->labels = vec_dup(&e->a.labels);
                return 0;
            }
        }
    }
    rc = attr_read(m, name, len, a);
    if (rc == 0 && c != NULL && c->n < AMAP_MAX) {
        struct amap_entry *e = &c->e[c->n++];
        e->name = ic_strndup(name, len);
        e->len = len;
        e->a = *a;
        e->a.labels = vec_dup(&a->labels);
    }
    return rc;
}

/* A plan (a constraint's object-id intervals and estimate; the data is
 * still scanned by every query) depends only on the catalog: plans made at
 * one snapshot serve every query of that snapshot, up to PLANS_MAX. Keys
 * are "attribute\0value", trimmed, and "\1" for the cloud constraint. */
#define PLANS_MAX 256

struct ic_store__attr_cache {
    uint64_t txnid;
    size_t n;
    struct plan {
        char *key;
        size_t klen;
        struct cons c;
    } e[PLANS_MAX];
};

void ic_store__attr_cache_free(struct ic_store__attr_cache *c)
{
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        ic_free(c->e[i].key);
        ic_free(c->e[i].c.iv);
    }
    ic_free(c);
}

static struct interval *iv_dup(const struct interval *iv, size_t n)
{
    struct interval *d = ic_malloc(n * sizeof *iv + 1);
    return n > 0 ? memcpy(d, iv, n * sizeof *iv) : d;
}

/* The cached plan of KEY into *C (true), or false: then *SLOT is where to
 * keep it, or NULL (a write transaction sees its own changes; full). */
static bool plan_get(struct mctx *m,
                     const char *key,
                     size_t klen,
                     struct cons *c,
                     struct plan **slot)
{
    struct ic_store *st = m->t->st;
    struct ic_store__attr_cache *pc = st->attrs;
    uint64_t txnid = (uint64_t)mdb_txn_id(m->t->txn);

    *slot = NULL;
    if (m->t->write)
        return false;
    if (pc == NULL || pc->txnid != txnid) {
        ic_store__attr_cache_free(pc);
        pc = st->attrs = ic_calloc(1, sizeof *pc);
        pc->txnid = txnid;
    }
    for (size_t i = 0; i < pc->n; i++) {
        const struct plan *e = &pc->e[i];
        if (e->klen == klen && memcmp(e->key, key, klen) == 0) {
            *c = e->c;
            c->iv = iv_dup(e->c.iv, e->c.niv);
            return true;
        }
    }
    if (pc->n < PLANS_MAX)
        *slot = &pc->e[pc->n];
    return false;
}

/* Keeps C's plan in SLOT (if any) under KEY (taken). */
static void plan_put(
    struct mctx *m, struct plan *slot, char *key, size_t klen, struct cons *c)
{
    if (slot == NULL) {
        ic_free(key);
        return;
    }
    slot->key = key;
    slot->klen = klen;
    slot->c = *c;
    slot->c.iv = iv_dup(c->iv, c->niv);
    m->t->st->attrs->n++;
}

static bool term_is(struct ic_txn *t, uint64_t id, const char *iri)
{
    struct ic_term term;
    char buf[64];

    return ic_store_term_get(t, id, &term, buf) == 0 &&
           term.kind == IC_TERM_IRI && strcmp(term.value, iri) == 0;
}

static void add_iv(struct cons *c, struct interval iv)
{
    c->iv = ic_realloc(c->iv, (c->niv + 1) * sizeof *c->iv);
    c->iv[c->niv++] = iv;
}

static void add_point(struct cons *c, uint64_t id)
{
    struct interval iv = {id, id, false, false, false, 0, 0};
    add_iv(c, iv);
}

/* Instances of the attribute's class labelled VALUE. */
static int resolve_label(struct mctx *m,
                         const struct attr *a,
                         const char *value,
                         size_t len,
                         struct cons *c)
{
    uint64_t type, lit;
    struct vec xs = {0};
    size_t before = c->niv;
    int rc = iri_id(m->t, IC_RDF "type", &type);

    for (size_t i = 0; rc == 0 && i < a->labels.n; i++) {
        xs.n = 0;
        if (literal_id(m->t, value, len, NULL, &lit) != 0)
            break;
        rc = subjects(m, a->labels.v[i], lit, &xs);
        for (size_t j = 0; rc == 0 && j < xs.n; j++) {
            bool yes;
            rc = has_triple(m, xs.v[j], type, a->cls, &yes);
            if (rc == 0 && yes)
                add_point(c, xs.v[j]);
        }
    }
    ic_free(xs.v);
    if (rc == 0 && c->niv == before) {
        char cls[200] = "the value class";
        struct ic_term term;
        char buf[64];
        if (ic_store_term_get(m->t, a->cls, &term, buf) == 0)
            snprintf(cls, sizeof cls, "%s", term.value);
        snprintf(m->res->error, sizeof m->res->error,
                 "attribute '%s': '%.*s' names no %s", c->attr, (int)len, value,
                 cls);
        return IC_EVALUE;
    }
    return rc;
}

static int ordered_bound(struct mctx *m,
                         const struct attr *a,
                         const char *dt,
                         const char *value,
                         size_t len,
                         struct cons *c)
{
    char *v = ic_strndup(value, len);
    struct interval iv = {0};
    uint64_t tag, okey;
    long double x;
    int rc = ic_store__ordered_value(v, dt, &tag, &x);

    if (rc != 0 || isnan(x)) {
        snprintf(m->res->error, sizeof m->res->error,
                 "attribute '%s': '%s' is not a valid %s", c->attr, v,
                 strrchr(dt, '#') + 1);
        ic_free(v);
        return IC_EVALUE;
    }
    ic_free(v);
    okey = ic_store__okey(x);
    iv.exact = true;
    iv.lo = IC_ID_MAKE(tag, 0);
    iv.hi = IC_ID_MAKE(tag, (1ULL << IC_TAG_SHIFT) - 1);
    if (!term_is(m->t, a->cmp, ICQ "atMost")) {
        iv.lo = IC_ID_MAKE(tag, okey << IC_ORD_SEQ_BITS);
        iv.has_lo = true;
        iv.vlo = x;
    }
    if (!term_is(m->t, a->cmp, ICQ "atLeast")) {
        iv.hi = IC_ID_MAKE(tag, (okey << IC_ORD_SEQ_BITS) | IC_ORD_SEQ_MASK);
        iv.has_hi = true;
        iv.vhi = x;
    }
    add_iv(c, iv);
    return 0;
}

/* One value of a constraint into intervals. */
static int plan_value(struct mctx *m,
                      const struct attr *a,
                      const char *value,
                      size_t len,
                      struct cons *c)
{
    struct ic_term dt;
    char buf[64];
    uint64_t id;
    int rc;

    if (a->cls != 0)
        return resolve_label(m, a, value, len, c);
    if (a->dt == 0 || ic_store_term_get(m->t, a->dt, &dt, buf) != 0)
        return IC_ECORRUPT;
    if (ic_store__is_numeric_type(dt.value) ||
        strcmp(dt.value, IC_XSD "dateTime") == 0)
        return ordered_bound(m, a, dt.value, value, len, c);
    if (strcmp(dt.value, IC_XSD "boolean") == 0 &&
        !(len == 4 && strncmp(value, "true", 4) == 0) &&
        !(len == 5 && strncmp(value, "false", 5) == 0)) {
        snprintf(m->res->error, sizeof m->res->error,
                 "attribute '%s': '%.*s' is not a boolean", c->attr, (int)len,
                 value);
        return IC_EVALUE;
    }
    rc = literal_id(m->t, value, len,
                    strcmp(dt.value, IC_XSD "string") == 0 ? NULL : dt.value,
                    &id);
    if (rc == IC_ENOTFOUND)
        return 0; /* a value nobody has: matches nothing */
    if (rc == 0)
        add_point(c, id);
    return rc;
}

static uint64_t count_key(MDB_cursor *cur, uint64_t key)
{
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    size_t n = 0;

    ic_store__be64(kb, key);
    if (mdb_cursor_get(cur, &k, &v, MDB_SET_KEY) == 0)
        mdb_cursor_count(cur, &n);
    return (uint64_t)n;
}

static void estimate(struct mctx *m, struct cons *c)
{
    c->est = 0;
    for (size_t i = 0; i < c->niv; i++) {
        if (c->iv[i].lo == c->iv[i].hi)
            c->est += count_key(m->osp, c->iv[i].lo);
        else
            c->est += count_key(m->pos, c->p) / 2 + 1;
    }
}

typedef int (*value_fn)(
    struct mctx *m, const struct attr *a, const char *v, size_t len, void *arg);

/* Calls FN for the value (VAL, VL) or, for a oneOf attribute, for each
 * non-empty item of the comma-separated list, trimmed. */
static int each_value(struct mctx *m,
                      const struct attr *a,
                      const char *val,
                      size_t vl,
                      value_fn fn,
                      void *arg)
{
    const char *end = val + vl;
    int rc = 0;

    if (!term_is(m->t, a->cmp, ICQ "oneOf"))
        return fn(m, a, val, vl, arg);
    while (rc == 0 && val <= end) {
        const char *comma = memchr(val, ',', (size_t)(end - val));
        const char *e = comma ? comma : end, *b = val;
        while (b < e && isspace((unsigned char)*b))
            b++;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        if (e > b)
            rc = fn(m, a, b, (size_t)(e - b), arg);
        val = (comma ? comma : end) + 1;
    }
    return rc;
}

static int plan_one(
    struct mctx *m, const struct attr *a, const char *v, size_t len, void *arg)
{
    return plan_value(m, a, v, len, arg);
}

static int plan_fresh(struct mctx *m,
                      const char *at,
                      size_t al,
                      const char *val,
                      size_t vl,
                      struct cons *c)
{
    struct attr a;
    int rc = attr_lookup(m, at, al, &a);

    if (rc == IC_ENOTFOUND) {
        snprintf(m->res->error, sizeof m->res->error,
                 "unknown attribute '%.*s'", (int)al, at);
        return IC_EUNKNOWN;
    }
    if (rc != 0)
        return rc;
    c->p = a.p;
    rc = each_value(m, &a, val, vl, plan_one, c);
    ic_free(a.labels.v);
    if (rc == IC_ECORRUPT)
        snprintf(m->res->error, sizeof m->res->error,
                 "attribute '%.*s' is defined incompletely in the "
                 "attribute map",
                 (int)al, at);
    if (rc == 0)
        estimate(m, c);
    return rc;
}

static int plan(struct mctx *m, const struct ic_constraint *in, struct cons *c)
{
    size_t ao, al, vo, vl, klen;
    struct plan *slot;
    char *key;
    int rc = 0;

    trim(in->attribute, &ao, &al);
    trim(in->value, &vo, &vl);
    klen = al + 1 + vl;
    key = ic_malloc(klen);
    memcpy(key, in->attribute + ao, al);
    key[al] = '\0';
    memcpy(key + al + 1, in->value + vo, vl);
    c->attr = in->attribute; /* for error messages */
    if (!plan_get(m, key, klen, c, &slot) &&
        (rc = plan_fresh(m, key, al, key + al + 1, vl, c)) == 0) {
        plan_put(m, slot, key, klen, c);
        key = NULL;
    }
    ic_free(key);
    c->attr = in->attribute; /* a cached plan has another query's */
    return rc;
}

/* Whether object O passes the exact bounds of IV. */
static bool exact_ok(struct mctx *m, const struct interval *iv, uint64_t o)
{
    struct ic_term term;
    char buf[64], *lex;
    uint64_t tag, b = o >> IC_ORD_SEQ_BITS;
    long double x;
    int rc;

    if (!iv->exact ||
        (b != iv->lo >> IC_ORD_SEQ_BITS && b != iv->hi >> IC_ORD_SEQ_BITS))
        return true;
    if (ic_store_term_get(m->t, o, &term, buf) != 0 ||
        term.kind != IC_TERM_LITERAL)
        return false;
    lex = ic_strndup(term.value, term.len);
    rc = ic_store__ordered_value(lex, term.datatype, &tag, &x);
    ic_free(lex);
    if (rc != 0)
        return false;
    return (!iv->has_lo || x >= iv->vlo) && (!iv->has_hi || x <= iv->vhi);
}

/* Membership of sorted subject list S, for filtering a scan against it. */
struct sset {
    uint64_t *keys;
    uint32_t *idx;
    size_t mask;
};

static void sset_init(struct sset *h, const struct vec *s)
{
    size_t cap = 16;

    while (cap < s->n * 2)
        cap *= 2;
    h->keys = ic_calloc(cap, sizeof *h->keys);
    h->idx = ic_calloc(cap, sizeof *h->idx);
    h->mask = cap - 1;
    for (size_t i = 0; i < s->n; i++) {
        size_t j = (s->v[i] * 0x9e3779b97f4a7c15ULL) >> 20 & h->mask;
        while (h->keys[j] != 0)
            j = (j + 1) & h->mask;
        h->keys[j] = s->v[i];
        h->idx[j] = (uint32_t)i;
    }
}

static long sset_find(const struct sset *h, uint64_t k)
{
    size_t j = (k * 0x9e3779b97f4a7c15ULL) >> 20 & h->mask;

    for (; h->keys[j] != 0; j = (j + 1) & h->mask)
        if (h->keys[j] == k)
            return (long)h->idx[j];
    return -1;
}

static void sset_free(struct sset *h)
{
    ic_free(h->keys);
    ic_free(h->idx);
}

/* Where scanned subjects go: appended to OUT, or, with FILTER, marked in
 * SEEN when they are members of the current candidates. */
struct sink {
    struct vec *out;
    const struct sset *filter;
    unsigned char *seen;
};

static void sink_put(struct sink *k, uint64_t s)
{
    long i;

    if (k->filter == NULL) {
        vec_push(k->out, s);
        return;
    }
    i = sset_find(k->filter, s);
    if (i >= 0)
        k->seen[i] = 1;
}

/* Scans one interval of pos a page of duplicates at a time. */
static int scan_interval(struct mctx *m,
                         uint64_t p,
                         const struct interval *iv,
                         struct sink *k)
{
    unsigned char kb[8], vb[16];
    MDB_val key = {8, kb}, v = {16, vb};
    uint64_t last_o = 0;
    bool last_ok = false;
    int rc;

    ic_store__be64(kb, p);
    ic_store__be64(vb, iv->lo);
    memset(vb + 8, 0, 8);
    rc = mdb_cursor_get(m->pos, &key, &v, MDB_GET_BOTH_RANGE);
    if (rc == 0)
        rc = mdb_cursor_get(m->pos, &key, &v, MDB_GET_MULTIPLE);
    while (rc == 0) {
        const unsigned char *d = v.mv_data;
        size_t n = v.mv_size / 16;
        for (size_t i = 0; i < n; i++, d += 16) {
            uint64_t o = ic_store__get_be64(d);
            if (o < iv->lo)
                continue; /* the page starts before our position */
            if (o > iv->hi)
                return 0;
            if (o != last_o) {
                last_o = o;
                last_ok = exact_ok(m, iv, o);
            }
            if (last_ok)
                sink_put(k, ic_store__get_be64(d + 8));
        }
        rc = mdb_cursor_get(m->pos, &key, &v, MDB_NEXT_MULTIPLE);
    }
    return rc == MDB_NOTFOUND ? 0 : ic_store__mdb_err(rc);
}

static int scan(struct mctx *m, const struct cons *c, struct sink *k)
{
    int rc = 0;

    for (size_t i = 0; i < c->niv && rc == 0; i++)
        rc = scan_interval(m, c->p, &c->iv[i], k);
    return rc;
}

static int probe(struct mctx *m, const struct cons *c, uint64_t s, bool *yes)
{
    unsigned char kb[8], vb[16];
    MDB_val k, v;
    int rc = 0;

    *yes = false;
    for (size_t i = 0; i < c->niv && !*yes; i++) {
        const struct interval *iv = &c->iv[i];
        ic_store__be64(kb, s);
        ic_store__be64(vb, c->p);
        ic_store__be64(vb + 8, iv->lo);
        k.mv_size = 8;
        k.mv_data = kb;
        v.mv_size = 16;
        v.mv_data = vb;
        for (rc = mdb_cursor_get(m->spo, &k, &v, MDB_GET_BOTH_RANGE); rc == 0;
             rc = mdb_cursor_get(m->spo, &k, &v, MDB_NEXT_DUP)) {
            const unsigned char *d = v.mv_data;
            uint64_t o = ic_store__get_be64(d + 8);
            if (ic_store__get_be64(d) != c->p || o > iv->hi)
                break;
            if (exact_ok(m, iv, o)) {
                *yes = true;
                break;
            }
        }
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    return ic_store__mdb_err(rc);
}

static int cmp_cons(const void *a, const void *b)
{
    const struct cons *x = a, *y = b;
    return x->est < y->est ? -1 : x->est > y->est;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A cloud's name: the local part of its xmpp: IRI, else of its ic:jid. */
static char *cloud_name(struct mctx *m, uint64_t s)
{
    struct ic_term term;
    char buf[64];
    const char *v;
    size_t n;
    struct vec jids = {0};
    uint64_t pjid;

    if (ic_store_term_get(m->t, s, &term, buf) != 0)
        return ic_strdup("?");
    v = term.value;
    n = term.len;
    if (term.kind == IC_TERM_IRI && strncmp(v, "xmpp:", 5) == 0) {
        v += 5;
        n -= 5;
    } else if (iri_id(m->t, ICNS "jid", &pjid) == 0 &&
               objects(m, s, pjid, &jids) == 0 && jids.n > 0 &&
               ic_store_term_get(m->t, jids.v[0], &term, buf) == 0) {
        v = term.value;
        n = term.len;
    }
    ic_free(jids.v);
    for (size_t i = 0; i < n; i++)
        if (v[i] == '@' || v[i] == '/' || v[i] == '#')
            return ic_strndup(v, i);
    return ic_strndup(v, n);
}

/* Probing costs a B-tree descent per candidate and interval; scanning a few
 * nanoseconds per index entry: probe when that is cheaper. */
#define PROBE_COST 40

static int filter_probe(struct mctx *m, const struct cons *c, struct vec *s)
{
    size_t w = 0;
    int rc = 0;

    for (size_t j = 0; j < s->n && rc == 0; j++) {
        bool yes;
        rc = probe(m, c, s->v[j], &yes);
        if (yes)
            s->v[w++] = s->v[j];
    }
    s->n = w;
    return rc;
}

/* A point interval yields its subjects sorted: intersect by merging. */
static int filter_merge(struct mctx *m, const struct cons *c, struct vec *s)
{
    struct vec t = {0};
    struct sink k = {&t, NULL, NULL};
    size_t i = 0, j = 0, w = 0;
    int rc = scan(m, c, &k);

    while (rc == 0 && i < s->n && j < t.n) {
        if (s->v[i] < t.v[j]) {
            i++;
        } else if (s->v[i] > t.v[j]) {
            j++;
        } else {
            s->v[w++] = s->v[i];
            i++;
            j++;
        }
    }
    if (rc == 0)
        s->n = w;
    ic_free(t.v);
    return rc;
}

static int filter_scan(struct mctx *m, const struct cons *c, struct vec *s)
{
    struct sset set;
    struct sink k = {NULL, &set, ic_calloc(s->n, 1)};
    size_t w = 0;
    int rc;

    sset_init(&set, s);
    rc = scan(m, c, &k);
    for (size_t j = 0; j < s->n; j++)
        if (k.seen[j])
            s->v[w++] = s->v[j];
    s->n = w;
    sset_free(&set);
    ic_free(k.seen);
    return rc;
}

static int run(struct mctx *m, struct cons *cs, size_t n, struct vec *out)
{
    struct sink k = {out, NULL, NULL};
    int rc;

    qsort(cs, n, sizeof *cs, cmp_cons);
    rc = scan(m, &cs[0], &k);
    if (cs[0].niv > 1 || (cs[0].niv == 1 && cs[0].iv[0].lo != cs[0].iv[0].hi))
        vec_sort_unique(out);
    for (size_t i = 1; i < n && rc == 0 && out->n > 0; i++) {
        if (out->n * cs[i].niv * PROBE_COST < cs[i].est)
            rc = filter_probe(m, &cs[i], out);
        else if (cs[i].niv == 1 && cs[i].iv[0].lo == cs[i].iv[0].hi)
            rc = filter_merge(m, &cs[i], out);
        else
            rc = filter_scan(m, &cs[i], out);
    }
    return rc;
}

static int open_cursors(struct mctx *m)
{
    int rc = mdb_cursor_open(m->t->txn, m->t->st->dbi[DBI_SPO], &m->spo);
    if (rc == 0)
        rc = mdb_cursor_open(m->t->txn, m->t->st->dbi[DBI_POS], &m->pos);
    if (rc == 0)
        rc = mdb_cursor_open(m->t->txn, m->t->st->dbi[DBI_OSP], &m->osp);
    return ic_store__mdb_err(rc);
}

int ic_store_match(struct ic_txn *t,
                   const struct ic_constraint *in,
                   size_t n,
                   struct ic_match_result *res)
{
    struct mctx m = {t, NULL, NULL, NULL, res};
    struct cons *cs = ic_calloc(n + 1, sizeof *cs);
    struct vec subj = {0};
    uint64_t type, cloud;
    int rc;

    memset(res, 0, sizeof *res);
    rc = open_cursors(&m);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = plan(&m, &in[i], &cs[i]);
    if (rc != 0)
        goto out;
    /* The subject must be a cloud. */
    if (iri_id(t, IC_RDF "type", &type) != 0 ||
        iri_id(t, ICNS "Cloud", &cloud) != 0)
        goto out;
    cs[n].attr = "rdf:type";
    cs[n].p = type;
    add_point(&cs[n], cloud);
    estimate(&m, &cs[n]);
    rc = run(&m, cs, n + 1, &subj);
    if (rc != 0)
        goto out;
    res->names = ic_calloc(subj.n + 1, sizeof *res->names);
    for (size_t i = 0; i < subj.n; i++)
        res->names[res->n++] = cloud_name(&m, subj.v[i]);
    qsort(res->names, res->n, sizeof *res->names, cmp_str);
out:
    for (size_t i = 0; i <= n; i++)
        ic_free(cs[i].iv);
    ic_free(cs);
    ic_free(subj.v);
    if (m.spo)
        mdb_cursor_close(m.spo);
    if (m.pos)
        mdb_cursor_close(m.pos);
    if (m.osp)
        mdb_cursor_close(m.osp);
    if (rc != 0 && res->error[0] == '\0')
        snprintf(res->error, sizeof res->error, "%s", ic_strerror(rc));
    return rc;
}

void ic_match_result_free(struct ic_match_result *res)
{
    if (res == NULL)
        return;
    for (size_t i = 0; i < res->n; i++)
        ic_free(res->names[i]);
    ic_free(res->names);
    res->names = NULL;
    res->n = 0;
}

/* Publishing: an (attribute, value) pair as the statements it stands for.
 * The same attribute map, read the other way. */

/* Where a published value of property P goes: object term O, or (O NULL)
 * the existing term ID. */
typedef int (*object_fn)(struct mctx *m,
                         uint64_t p,
                         const struct ic_term *o,
                         uint64_t id,
                         void *arg);

static int publish_value(struct mctx *m,
                         const struct attr *a,
                         const char *attr,
                         const char *v,
                         size_t len,
                         object_fn fn,
                         void *arg)
{
    struct cons c = {attr, 0, NULL, 0, 0};
    struct ic_term dt, lit = {IC_TERM_LITERAL, v, len, NULL, NULL};
    char buf[64], *s;
    uint64_t tag;
    long double x;
    int rc;

    if (a->cls != 0) {
        rc = resolve_label(m, a, v, len, &c);
        for (size_t i = 0; rc == 0 && i < c.niv; i++)
            rc = fn(m, a->p, NULL, c.iv[i].lo, arg);
        ic_free(c.iv);
        return rc;
    }
    if (a->dt == 0 || ic_store_term_get(m->t, a->dt, &dt, buf) != 0)
        return IC_ECORRUPT;
    if (strcmp(dt.value, IC_XSD "string") != 0) {
        s = ic_strndup(v, len);
        rc = strcmp(dt.value, IC_XSD "boolean") == 0
                 ? (strcmp(s, "true") == 0 || strcmp(s, "false") == 0
                        ? 0
                        : IC_EVALUE)
                 : ic_store__ordered_value(s, dt.value, &tag, &x);
        if (rc != 0 || (strcmp(dt.value, IC_XSD "boolean") != 0 && isnan(x)))
            snprintf(m->res->error, sizeof m->res->error,
                     "attribute '%s': '%s' is not a valid %s", attr, s,
                     strrchr(dt.value, '#') + 1);
        ic_free(s);
        if (rc != 0)
            return IC_EVALUE;
        lit.datatype = dt.value;
    }
    return fn(m, a->p, &lit, 0, arg);
}

struct pub {
    const char *attr;
    object_fn fn;
    void *arg;
};

static int publish_one(
    struct mctx *m, const struct attr *a, const char *v, size_t len, void *arg)
{
    struct pub *p = arg;
    return publish_value(m, a, p->attr, v, len, p->fn, p->arg);
}

/* The attribute map's property for ATTRIBUTE, then FN for each object
 * (ATTRIBUTE, VALUE) stands for. */
static int attr_objects(struct ic_txn *t,
                        const char *attribute,
                        const char *value,
                        uint64_t *property,
                        object_fn fn,
                        void *arg,
                        char *err,
                        size_t err_len)
{
    struct ic_match_result res;
    struct mctx m = {t, NULL, NULL, NULL, &res};
    size_t ao, al, vo, vl;
    struct attr a;
    int rc;

    memset(&res, 0, sizeof res);
    trim(attribute, &ao, &al);
    trim(value, &vo, &vl);
    rc = open_cursors(&m);
    if (rc == 0)
        rc = attr_lookup(&m, attribute + ao, al, &a);
    if (rc == IC_ENOTFOUND) {
        snprintf(res.error, sizeof res.error, "unknown attribute '%.*s'",
                 (int)al, attribute + ao);
        rc = IC_EUNKNOWN;
    } else if (rc == 0) {
        *property = a.p;
        struct pub p = {attribute + ao, fn, arg};
        rc = each_value(&m, &a, value + vo, vl, publish_one, &p);
        ic_free(a.labels.v);
    }
    if (m.spo)
        mdb_cursor_close(m.spo);
    if (m.pos)
        mdb_cursor_close(m.pos);
    if (m.osp)
        mdb_cursor_close(m.osp);
    if (rc != 0 && err != NULL)
        snprintf(err, err_len, "%s",
                 res.error[0] ? res.error : ic_strerror(rc));
    return rc;
}

static int object_id(
    struct mctx *m, uint64_t p, const struct ic_term *o, uint64_t id, void *arg)
{
    struct ic_store_ids_out *out = arg;

    (void)p;
    int rc = o != NULL ? ic_store_term_id(m->t, o, true, &id) : 0;

    if (rc == 0 && out->n < out->max)
        out->ids[out->n++] = id;
    return rc;
}

int ic_store_attr_terms(struct ic_txn *t,
                        const char *attribute,
                        const char *value,
                        uint64_t *property,
                        struct ic_store_ids_out *out,
                        char *err,
                        size_t err_len)
{
    return attr_objects(t, attribute, value, property, object_id, out, err,
                        err_len);
}

struct stmt {
    uint64_t p; /* the property of PT, 0 before the first */
    struct ic_term pt;
    char pbuf[64];
    ic_store_statement_fn fn;
    void *data;
    struct ic_store__pairs_rec rec; /* what to remember (pairs.c) */
};

static int object_term(
    struct mctx *m, uint64_t p, const struct ic_term *o, uint64_t id, void *arg)
{
    struct stmt *st = arg;
    struct ic_term term;
    char buf[64];
    int rc = 0;

    if (st->p != p) {
        rc = ic_store_term_get(m->t, p, &st->pt, st->pbuf);
        st->p = p;
    }
    if (rc == 0 && o == NULL) {
        st->rec.labels = true; /* an individual, named by a label */
        rc = ic_store_term_get(m->t, id, &term, buf);
        o = &term;
    } else if (rc == 0 && o->kind != IC_TERM_LITERAL) {
        st->rec.off = true;
    }
    if (rc == 0)
        ic_store__pairs_note(&st->rec, &st->pt, o);
    return rc != 0 ? rc : st->fn(st->data, &st->pt, o);
}

int ic_store_attr_statements(struct ic_txn *t,
                             const char *attribute,
                             const char *value,
                             ic_store_statement_fn fn,
                             void *data,
                             char *err,
                             size_t err_len)
{
    struct stmt st;
    uint64_t p;
    int rc;

    if (ic_store__pairs_replay(t, attribute, value, fn, data, &rc))
        return rc;
    memset(&st, 0, sizeof st);
    st.fn = fn;
    st.data = data;
    rc = attr_objects(t, attribute, value, &p, object_term, &st, err, err_len);
    if (rc == 0)
        ic_store__pairs_keep(t, attribute, value, &st.rec);
    ic_store__pairs_rec_free(&st.rec);
    return rc;
}
