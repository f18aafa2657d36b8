/*
 * terms.c - triples as a table of their terms: the form a checked publish
 * travels in through Raft, so that every replica writes the graph without
 * a parser, and looks each distinct term up once.
 *
 *   doc     := version:u8 (=1) | nterms:v | term{nterms}
 *              | ntriples:v | (s:v | p:v | o:v){ntriples}
 *   term    := kind:u8 | shared:v | n:v | suffix[n]
 *              [ | datatype:v ]              (kind 4: an IRI term's index)
 *              [ | m:v | tag[m] ]            (kind 5: the language tag)
 *   kind    := 1 IRI | 2 blank node | 3 literal | 4 literal with datatype
 *              | 5 literal with language tag
 *   v       := an unsigned LEB128 varint below 2^32
 *
 * A term's value is the first SHARED bytes of the term before it then its
 * suffix (the table is sorted, so a publish's predicates, which share
 * their namespace, cost their local names). Triples name terms by index:
 * a subject an IRI or a blank node, a predicate an IRI. No value or tag
 * holds a NUL. An empty document (no bytes) has no triples. Blank node
 * labels are scoped to one replace, as a parsed document's are (rdfio.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

enum {
    K_IRI = 1,
    K_BLANK,
    K_LITERAL,
    K_TYPED,
    K_LANG,
};

#define DOC_VERSION 1
#define V_MAX 0xffffffffu
/* A document decodes to at most this many bytes of values per byte of its
 * own (front coding makes a long value out of a short suffix). */
#define EXPANSION_MAX 64

/* ---- building ---------------------------------------------------------- */

struct tb_term {
    unsigned kind;
    size_t off, len;   /* the value in the arena */
    size_t xoff, xlen; /* K_LANG: the tag in the arena */
    uint32_t dt;       /* K_TYPED: the datatype's index */
    uint64_t hash;
};

struct ic_store__terms_build {
    struct tb_term *t;
    size_t n, cap;
    uint32_t *slots; /* index + 1, 0 free */
    size_t nslots;   /* a power of two */
    char *arena;
    size_t alen, acap;
    uint32_t (*tr)[3];
    size_t ntr, trcap;
};

static size_t
arena_put(struct ic_store__terms_build *b, const char *s, size_t n)
{
    size_t off = b->alen;

    if (b->alen + n > b->acap) {
        b->acap = b->acap ? b->acap : 1024;
        while (b->alen + n > b->acap)
            b->acap *= 2;
        b->arena = ic_realloc(b->arena, b->acap);
    }
    if (n > 0)
        memcpy(b->arena + off, s, n);
    b->alen += n;
    return off;
}

/* A term as the builder keys it: a typed literal's datatype by index. */
struct tkey {
    unsigned kind;
    const char *v;
    size_t len;
    const char *tag; /* K_LANG */
    size_t tlen;
    uint32_t dt; /* K_TYPED */
};

static bool same(const struct ic_store__terms_build *b,
                 const struct tb_term *x,
                 const struct tkey *k)
{
    return x->kind == k->kind && x->len == k->len &&
           memcmp(b->arena + x->off, k->v, k->len) == 0 &&
           (k->kind != K_TYPED || x->dt == k->dt) &&
           (k->kind != K_LANG ||
            (x->xlen == k->tlen &&
             memcmp(b->arena + x->xoff, k->tag, k->tlen) == 0));
}

static void rehash(struct ic_store__terms_build *b)
{
    size_t n = b->nslots ? 2 * b->nslots : 64;

    ic_free(b->slots);
    b->slots = ic_calloc(n, sizeof *b->slots);
    b->nslots = n;
    for (size_t i = 0; i < b->n; i++) {
        size_t s = b->t[i].hash & (n - 1);
        while (b->slots[s] != 0)
            s = (s + 1) & (n - 1);
        b->slots[s] = (uint32_t)i + 1;
    }
}

/* The index of term K, added when new. */
static uint32_t intern(struct ic_store__terms_build *b, const struct tkey *k)
{
    uint64_t h = ic_store__hash(k->v, k->len) ^
                 (uint64_t)k->kind * 0x9e3779b97f4a7c15u ^
                 (k->kind == K_TYPED ? (uint64_t)k->dt << 32 : 0) ^
                 (k->kind == K_LANG ? ic_store__hash(k->tag, k->tlen) : 0);
    size_t s;
    struct tb_term *x;

    if (2 * (b->n + 1) > b->nslots)
        rehash(b);
    for (s = h & (b->nslots - 1); b->slots[s] != 0;
         s = (s + 1) & (b->nslots - 1)) {
        x = &b->t[b->slots[s] - 1];
        if (x->hash == h && same(b, x, k))
            return b->slots[s] - 1;
    }
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 32;
        b->t = ic_realloc(b->t, b->cap * sizeof *b->t);
    }
    x = &b->t[b->n];
    memset(x, 0, sizeof *x);
    x->kind = k->kind;
    x->hash = h;
    x->dt = k->dt;
    x->len = k->len;
    x->off = arena_put(b, k->v, k->len);
    if (k->kind == K_LANG) {
        x->xlen = k->tlen;
        x->xoff = arena_put(b, k->tag, k->tlen);
    }
    b->slots[s] = (uint32_t)b->n + 1;
    return (uint32_t)b->n++;
}

static bool has_nul(const char *s, size_t n)
{
    return n > 0 && memchr(s, '\0', n) != NULL;
}

/* The index of T; IC_EINVAL for what the form cannot carry. */
static int term_index(struct ic_store__terms_build *b,
                      const struct ic_term *t,
                      uint32_t *ix)
{
    const char *x =
        t->kind == IC_TERM_LITERAL ? (t->lang ? t->lang : t->datatype) : NULL;
    size_t xlen = x ? strlen(x) : 0;
    uint32_t dt = 0;
    unsigned kind;

    if (t->len > V_MAX || has_nul(t->value, t->len) ||
        (x != NULL && (xlen == 0 || xlen > V_MAX)))
        return IC_EINVAL;
    switch (t->kind) {
    case IC_TERM_IRI:
        kind = K_IRI;
        break;
    case IC_TERM_BLANK:
        kind = K_BLANK;
        break;
    case IC_TERM_LITERAL:
        kind = t->lang ? K_LANG : t->datatype ? K_TYPED : K_LITERAL;
        if (kind == K_TYPED)
            dt = intern(b, &(struct tkey){K_IRI, x, xlen, NULL, 0, 0});
        break;
    default:
        return IC_EINVAL;
    }
    *ix = intern(b, &(struct tkey){kind, t->value, t->len, x, xlen, dt});
    return 0;
}

int ic_store_terms_put(struct ic_store_terms *w,
                       const struct ic_term *s,
                       const struct ic_term *p,
                       const struct ic_term *o)
{
    struct ic_store__terms_build *b;
    uint32_t ix[3];
    const struct ic_term *t[3] = {s, p, o};
    int rc = 0;

    if (s->kind == IC_TERM_LITERAL || p->kind != IC_TERM_IRI)
        return IC_EINVAL;
    if (w->b == NULL)
        w->b = ic_calloc(1, sizeof *w->b);
    b = w->b;
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = term_index(b, t[i], &ix[i]);
    if (rc != 0)
        return rc; /* the terms interned stay unused: harmless */
    if (b->ntr == b->trcap) {
        b->trcap = b->trcap ? 2 * b->trcap : 32;
        b->tr = ic_realloc(b->tr, b->trcap * sizeof *b->tr);
    }
    memcpy(b->tr[b->ntr++], ix, sizeof ix);
    return 0;
}

static void build_free(struct ic_store__terms_build *b)
{
    if (b == NULL)
        return;
    ic_free(b->t);
    ic_free(b->slots);
    ic_free(b->arena);
    ic_free(b->tr);
    ic_free(b);
}

/* Output */

static void out_reserve(struct ic_store_terms *w, size_t more)
{
    if (w->len + more <= w->cap)
        return;
    size_t cap = w->cap ? w->cap : 512;
    while (cap < w->len + more)
        cap *= 2;
    w->buf = ic_realloc(w->buf, cap);
    w->cap = cap;
}

static void out_v(struct ic_store_terms *w, uint64_t v)
{
    out_reserve(w, 10);
    do {
        unsigned char c = v & 0x7f;
        v >>= 7;
        w->buf[w->len++] = (unsigned char)(c | (v ? 0x80 : 0));
    } while (v);
}

static void out_bytes(struct ic_store_terms *w, const char *s, size_t n)
{
    out_reserve(w, n);
    if (n > 0)
        memcpy(w->buf + w->len, s, n);
    w->len += n;
}

/* A table term as the sort sees it. */
struct skey {
    const char *v;
    size_t len;
    unsigned kind;
    uint32_t ix;
};

/* The table's order: value bytes, then length, then kind (the memo walk,
 * key_cmp below, relies on it too). */
static int order_cmp(const char *u,
                     size_t ulen,
                     unsigned ukind,
                     const char *v,
                     size_t vlen,
                     unsigned vkind)
{
    size_t n = ulen < vlen ? ulen : vlen;
    int c = n > 0 ? memcmp(u, v, n) : 0;

    if (c != 0)
        return c;
    if (ulen != vlen)
        return ulen < vlen ? -1 : 1;
    return ukind < vkind ? -1 : ukind > vkind;
}

static int cmp_terms(const void *a, const void *b)
{
    const struct skey *x = a, *y = b;
    int c = order_cmp(x->v, x->len, x->kind, y->v, y->len, y->kind);

    if (c != 0)
        return c;
    return x->ix < y->ix ? -1 : x->ix > y->ix;
}

int ic_store_terms_end(struct ic_store_terms *w)
{
    struct ic_store__terms_build *b = w->b;
    struct skey *order;
    uint32_t *rank;
    const char *prev = "";
    size_t prev_len = 0;

    w->len = 0;
    if (b == NULL || b->ntr == 0) {
        build_free(b);
        w->b = NULL;
        return 0;
    }
    order = ic_malloc(b->n * sizeof *order);
    rank = ic_malloc(b->n * sizeof *rank);
    for (size_t i = 0; i < b->n; i++)
        order[i] = (struct skey){b->arena + b->t[i].off, b->t[i].len,
                                 b->t[i].kind, (uint32_t)i};
    qsort(order, b->n, sizeof *order, cmp_terms);
    for (size_t i = 0; i < b->n; i++)
        rank[order[i].ix] = (uint32_t)i;
    out_reserve(w, 1);
    w->buf[w->len++] = DOC_VERSION;
    out_v(w, b->n);
    for (size_t i = 0; i < b->n; i++) {
        const struct tb_term *x = &b->t[order[i].ix];
        const char *v = b->arena + x->off;
        size_t shared = 0;
        while (shared < prev_len && shared < x->len &&
               prev[shared] == v[shared])
            shared++;
        out_reserve(w, 1);
        w->buf[w->len++] = (unsigned char)x->kind;
        out_v(w, shared);
        out_v(w, x->len - shared);
        out_bytes(w, v + shared, x->len - shared);
        if (x->kind == K_TYPED)
            out_v(w, rank[x->dt]);
        if (x->kind == K_LANG) {
            out_v(w, x->xlen);
            out_bytes(w, b->arena + x->xoff, x->xlen);
        }
        prev = v;
        prev_len = x->len;
    }
    out_v(w, b->ntr);
    for (size_t i = 0; i < b->ntr; i++)
        for (int j = 0; j < 3; j++)
            out_v(w, rank[b->tr[i][j]]);
    ic_free(order);
    ic_free(rank);
    build_free(b);
    w->b = NULL;
    return 0;
}

void ic_store_terms_free(struct ic_store_terms *w)
{
    build_free(w->b);
    ic_free(w->buf);
    memset(w, 0, sizeof *w);
}

/* ---- reading ----------------------------------------------------------- */

struct rd {
    const unsigned char *p;
    size_t left;
};

static int get_v(struct rd *r, uint32_t *out)
{
    uint64_t v = 0;

    for (int shift = 0; shift < 35; shift += 7) {
        if (r->left == 0)
            return IC_ESYNTAX;
        unsigned char c = *r->p++;
        r->left--;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            if (v > V_MAX || (c == 0 && shift > 0)) /* too big, overlong */
                return IC_ESYNTAX;
            *out = (uint32_t)v;
            return 0;
        }
    }
    return IC_ESYNTAX;
}

static int get_bytes(struct rd *r, size_t n, const unsigned char **p)
{
    if (n > r->left)
        return IC_ESYNTAX;
    *p = r->p;
    r->p += n;
    r->left -= n;
    return 0;
}

/* Room for NEED more bytes in the arena (IC_ESYNTAX past its bound). */
static int table_room(struct ic_store__table *tb, size_t need)
{
    if (tb->alen + need > tb->amax)
        return IC_ESYNTAX; /* expands beyond reason */
    if (tb->alen + need > tb->acap) {
        tb->acap = tb->acap ? tb->acap : 1024;
        while (tb->alen + need > tb->acap)
            tb->acap *= 2;
        tb->arena = ic_realloc(tb->arena, tb->acap);
    }
    return 0;
}

/* Appends the first A bytes at offset AOFF of the arena (or nothing), then
 * B bytes of S, then a NUL; *OFF where it starts. */
static int table_put(struct ic_store__table *tb,
                     size_t aoff,
                     size_t a,
                     const unsigned char *s,
                     size_t b,
                     uint32_t *off)
{
    int rc = table_room(tb, a + b + 1);

    if (rc != 0)
        return rc;
    *off = (uint32_t)tb->alen; /* below amax, below 2^32 */
    if (a > 0)
        memmove(tb->arena + tb->alen, tb->arena + aoff, a);
    if (b > 0)
        memcpy(tb->arena + tb->alen + a, s, b);
    tb->arena[tb->alen + a + b] = '\0';
    tb->alen += a + b + 1;
    return 0;
}

static int read_term(struct rd *r, struct ic_store__table *tb, uint32_t i)
{
    struct ic_store__tterm *x = &tb->t[i];
    const struct ic_store__tterm *prev = i > 0 ? &tb->t[i - 1] : NULL;
    const unsigned char *suffix, *tag;
    uint32_t shared = 0, n = 0, m = 0;
    int rc;

    if (r->left == 0)
        return IC_ESYNTAX;
    x->kind = *r->p++;
    r->left--;
    if (x->kind < K_IRI || x->kind > K_LANG)
        return IC_ESYNTAX;
    rc = get_v(r, &shared);
    if (rc == 0 && shared > (prev ? prev->len : 0))
        rc = IC_ESYNTAX;
    if (rc == 0)
        rc = get_v(r, &n);
    if (rc == 0)
        rc = get_bytes(r, n, &suffix);
    if (rc == 0 && has_nul((const char *)suffix, n))
        rc = IC_ESYNTAX;
    if (rc == 0)
        rc = table_put(tb, prev ? prev->off : 0, shared, suffix, n, &x->off);
    x->len = shared + n; /* below the arena's bound, so below 2^32 */
    if (rc == 0 && x->kind == K_TYPED)
        rc = get_v(r, &x->dt);
    if (rc == 0 && x->kind == K_LANG) {
        rc = get_v(r, &m);
        if (rc == 0)
            rc = get_bytes(r, m, &tag);
        if (rc == 0 && (m == 0 || has_nul((const char *)tag, m)))
            rc = IC_ESYNTAX;
        if (rc == 0)
            rc = table_put(tb, 0, 0, tag, m, &x->xoff);
    }
    return rc;
}

static int read_table(struct rd *r, size_t doc_len, struct ic_store__table *tb)
{
    uint32_t n;
    int rc;

    if (r->left == 0 || *r->p != DOC_VERSION)
        return IC_ESYNTAX;
    r->p++;
    r->left--;
    rc = get_v(r, &n);
    if (rc == 0 && n > r->left / 3) /* a term takes 3 bytes at least */
        rc = IC_ESYNTAX;
    if (rc != 0)
        return rc;
    tb->t = ic_calloc(n ? n : 1, sizeof *tb->t);
    tb->n = n;
    tb->amax = EXPANSION_MAX * doc_len + 4096;
    if (tb->amax > UINT32_MAX) /* offsets are 32-bit */
        tb->amax = UINT32_MAX;
    for (uint32_t i = 0; i < n && rc == 0; i++)
        rc = read_term(r, tb, i);
    for (uint32_t i = 0; i < n && rc == 0; i++)
        if (tb->t[i].kind == K_TYPED &&
            (tb->t[i].dt >= n || tb->t[tb->t[i].dt].kind != K_IRI))
            rc = IC_ESYNTAX;
    return rc;
}

/* The dictionary id of table term I, a blank node's label prefixed with
 * PREFIX. */
static int table_id(struct ic_txn *txn,
                    struct ic_store__table *tb,
                    uint32_t i,
                    const char *prefix,
                    uint64_t *id)
{
    struct ic_store__tterm *x = &tb->t[i];
    struct ic_term t = {0};
    char *label = NULL;
    int rc;

    if (x->id != 0) {
        *id = x->id;
        return 0;
    }
    t.kind = x->kind == K_IRI     ? IC_TERM_IRI
             : x->kind == K_BLANK ? IC_TERM_BLANK
                                  : IC_TERM_LITERAL;
    t.value = tb->arena + x->off;
    t.len = x->len;
    if (x->kind == K_TYPED)
        t.datatype = tb->arena + tb->t[x->dt].off;
    if (x->kind == K_LANG)
        t.lang = tb->arena + x->xoff;
    if (x->kind == K_BLANK) {
        size_t pl = strlen(prefix);
        label = ic_malloc(pl + x->len + 1);
        memcpy(label, prefix, pl);
        memcpy(label + pl, t.value, x->len + 1);
        t.value = label;
        t.len = pl + x->len;
    }
    rc = ic_store_term_id(txn, &t, true, &x->id);
    if (label != NULL)
        ic_free(label);
    *id = x->id;
    return rc;
}

/* Term I of A against term J of B in the table's order. */
static int key_cmp(const struct ic_store__table *a,
                   uint32_t i,
                   const struct ic_store__table *b,
                   uint32_t j)
{
    const struct ic_store__tterm *x = &a->t[i], *y = &b->t[j];

    return order_cmp(a->arena + x->off, x->len, x->kind, b->arena + y->off,
                     y->len, y->kind);
}

/* Whether term J of B, with the same value and kind, is term I of A: the
 * same datatype or language tag. */
static bool same_rest(const struct ic_store__table *a,
                      uint32_t i,
                      const struct ic_store__table *b,
                      uint32_t j)
{
    const struct ic_store__tterm *x = &a->t[i], *y = &b->t[j];

    if (x->kind == K_TYPED) { /* datatypes differ at their ends */
        const struct ic_store__tterm *dx = &a->t[x->dt], *dy = &b->t[y->dt];
        const char *u = a->arena + dx->off, *v = b->arena + dy->off;
        for (uint32_t k = dx->len; dx->len == dy->len && k > 0; k--)
            if (u[k - 1] != v[k - 1])
                return false;
        return dx->len == dy->len;
    }
    if (x->kind == K_LANG)
        return strcmp(a->arena + x->xoff, b->arena + y->xoff) == 0;
    return true;
}

/* The ids of TB's terms that the graph's last table M had, walking both
 * in their sorted order (an unsorted table only finds fewer): a term
 * found is the same term, compared in full. Blank nodes are never taken
 * (their labels are scoped to one replace). */
static void memo_ids(struct ic_store__table *tb,
                     const struct ic_store__table *m)
{
    uint32_t j = 0;

    for (uint32_t i = 0; i < tb->n && j < m->n; i++) {
        int c = -1;
        if (tb->t[i].kind == K_BLANK)
            continue;
        while (j < m->n && (c = key_cmp(m, j, tb, i)) < 0)
            j++;
        /* one comparison per term while both tables go in step */
        for (uint32_t k = j; c == 0 && k < m->n; k++) {
            if (k > j && key_cmp(m, k, tb, i) != 0)
                break;
            if (m->t[k].id != 0 && same_rest(tb, i, m, k)) {
                tb->t[i].id = m->t[k].id;
                break;
            }
        }
    }
}

int ic_store_terms_replace(struct ic_txn *txn,
                           const char *graph_iri,
                           const void *doc,
                           size_t len,
                           struct ic_load_result *res)
{
    struct rd r = {doc, len};
    struct ic_term g = ic_term_iri(graph_iri);
    struct ic_store__table tb = {0};
    const struct ic_store__memo *memo;
    uint64_t(*q)[4] = NULL, gid = 0, gh;
    uint32_t ntr = 0;
    size_t add = 0;
    char prefix[40];
    int rc = 0;

    memset(res, 0, sizeof *res);
    if (!txn->write)
        return IC_EREADONLY;
    snprintf(prefix, sizeof prefix, "l%llux", (unsigned long long)txn->next_id);
    gh = ic_store__hash(graph_iri, g.len);
    memo = ic_store__memo_find(txn->st, graph_iri, g.len, gh);
    if (memo != NULL)
        gid = memo->gid;
    else
        rc = ic_store_term_id(txn, &g, true, &gid);
    if (rc == 0 && len > 0) {
        rc = read_table(&r, len, &tb);
        if (rc == 0 && memo != NULL)
            memo_ids(&tb, &memo->tb);
        if (rc == 0)
            rc = get_v(&r, &ntr);
        if (rc == 0 && (ntr == 0 || ntr > r.left / 3))
            rc = IC_ESYNTAX;
        if (rc == 0)
            q = ic_malloc((size_t)ntr * sizeof *q);
        for (uint32_t i = 0; i < ntr && rc == 0; i++) {
            uint32_t ix[3];
            for (int j = 0; j < 3 && rc == 0; j++) {
                rc = get_v(&r, &ix[j]);
                if (rc == 0 && ix[j] >= tb.n)
                    rc = IC_ESYNTAX;
            }
            if (rc == 0 &&
                (tb.t[ix[0]].kind > K_BLANK || tb.t[ix[1]].kind != K_IRI))
                rc = IC_ESYNTAX;
            for (int j = 0; j < 3 && rc == 0; j++)
                rc = table_id(txn, &tb, ix[j], prefix, &q[i][j]);
            q[i][3] = gid;
        }
        if (rc == 0 && r.left != 0)
            rc = IC_ESYNTAX; /* bytes left over */
    }
    if (rc == IC_ESYNTAX)
        snprintf(res->error, sizeof res->error,
                 "triples: malformed at byte %zu of %zu", len - r.left, len);
    else if (rc == 0 && ntr == 0)
        rc = ic_store__graph_clear_id(txn, gid);
    else if (rc == 0)
        rc = ic_store__graph_replace_id(txn, gid, q, ntr, &add);
    if (rc == 0 && ntr > 0)
        rc = ic_store__quads_add_bulk(txn, q, add);
    if (rc == 0 && ntr > 0) /* the graph's terms for its next replace */
        ic_store__memo_put(txn, graph_iri, g.len, gh, gid, &tb);
    if (rc == 0) {
        res->quads = ntr;
        res->graphs = ntr > 0;
    } else if (res->error[0] == '\0') {
        snprintf(res->error, sizeof res->error, "%s", ic_strerror(rc));
    }
    ic_free(q);
    ic_free(tb.t);
    ic_free(tb.arena);
    return rc;
}

int ic_store_graph_terms(struct ic_txn *txn,
                         const char *graph_iri,
                         struct ic_store_terms *out)
{
    uint64_t pat[4] = {0, 0, 0, 0}, q[4];
    struct ic_term g = ic_term_iri(graph_iri);
    struct ic_store_iter *it;
    int rc = ic_store_term_id(txn, &g, false, &pat[3]);

    if (rc == IC_ENOTFOUND)
        return 0;
    if (rc == 0)
        rc = ic_store_iter_new(txn, pat, &it);
    if (rc != 0)
        return rc;
    while ((rc = ic_store_iter_next(it, q)) == 0) {
        struct ic_term t[3];
        char buf[3][64], bl[3][24];
        for (int i = 0; i < 3 && rc == 0; i++) {
            rc = ic_store_term_get(txn, q[i], &t[i], buf[i]);
            /* labelled by id, as a dump labels them (rdfio.c) */
            if (rc == 0 && t[i].kind == IC_TERM_BLANK) {
                snprintf(bl[i], sizeof bl[i], "b%llx",
                         (unsigned long long)q[i]);
                t[i].value = bl[i];
                t[i].len = strlen(bl[i]);
            }
        }
        if (rc == 0)
            rc = ic_store_terms_put(out, &t[0], &t[1], &t[2]);
        if (rc != 0)
            break;
    }
    ic_store_iter_free(it);
    return rc == IC_EEND ? 0 : rc;
}
