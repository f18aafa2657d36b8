/*
 * terms.c - triples as their terms' bytes: the form a checked publish
 * travels in through Raft, so that every replica writes the graph without
 * a parser (no syntax, no escapes, only lengths).
 *
 *   doc    := triple*
 *   triple := term term term                    (subject, predicate, object)
 *   term   := kind:u8 | len:u32 | value[len] | 0
 *             [ | xlen:u16 | extra[xlen] | 0 ]          (kinds 4 and 5)
 *   kind   := 1 IRI | 2 blank node | 3 literal | 4 literal with datatype
 *             (extra: the datatype IRI) | 5 literal with language (extra:
 *             the tag)
 *
 * Lengths are big-endian, as in the Raft commands. A subject is an IRI or a
 * blank node, a predicate an IRI; every string is followed by a NUL its length
 * does not count and holds none itself, so a decoded term points into the
 * document. Blank node labels are scoped to one replace, as a parsed document's
 * are (rdfio.c).
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

#define XLEN_MAX 0xffffu

static void reserve(struct ic_store_terms *w, size_t more)
{
    if (w->len + more <= w->cap)
        return;
    size_t cap = w->cap ? w->cap : 512;
    while (cap < w->len + more)
        cap *= 2;
    w->buf = ic_realloc(w->buf, cap);
    w->cap = cap;
}

static void put_be(struct ic_store_terms *w, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--)
        w->buf[w->len++] = (unsigned char)(v >> (8 * i));
}

static void put_str(struct ic_store_terms *w, const char *s, size_t len, int n)
{
    put_be(w, len, n);
    memcpy(w->buf + w->len, s, len);
    w->len += len;
    w->buf[w->len++] = 0;
}

static int put_term(struct ic_store_terms *w, const struct ic_term *t)
{
    const char *x = NULL;
    unsigned kind;
    size_t xlen = 0;

    switch (t->kind) {
    case IC_TERM_IRI:
        kind = K_IRI;
        break;
    case IC_TERM_BLANK:
        kind = K_BLANK;
        break;
    case IC_TERM_LITERAL:
        kind = t->lang ? K_LANG : t->datatype ? K_TYPED : K_LITERAL;
        x = t->lang ? t->lang : t->datatype;
        xlen = x ? strlen(x) : 0;
        break;
    default:
        return IC_EINVAL;
    }
    if (t->len > UINT32_MAX || memchr(t->value, '\0', t->len) != NULL ||
        xlen > XLEN_MAX || (x != NULL && xlen == 0))
        return IC_EINVAL;
    reserve(w, 1 + 4 + t->len + 1 + (x ? 2 + xlen + 1 : 0));
    w->buf[w->len++] = (unsigned char)kind;
    put_str(w, t->value, t->len, 4);
    if (x != NULL)
        put_str(w, x, xlen, 2);
    return 0;
}

int ic_store_terms_put(struct ic_store_terms *w,
                       const struct ic_term *s,
                       const struct ic_term *p,
                       const struct ic_term *o)
{
    size_t mark = w->len;
    int rc;

    if (s->kind == IC_TERM_LITERAL || p->kind != IC_TERM_IRI)
        return IC_EINVAL;
    rc = put_term(w, s);
    if (rc == 0)
        rc = put_term(w, p);
    if (rc == 0)
        rc = put_term(w, o);
    if (rc != 0)
        w->len = mark;
    return rc;
}

void ic_store_terms_free(struct ic_store_terms *w)
{
    ic_free(w->buf);
    memset(w, 0, sizeof *w);
}

/* Reading */

struct rd {
    const unsigned char *p;
    size_t left;
};

static int get_str(struct rd *r, int n, const char **s, size_t *len)
{
    uint64_t v = 0;

    if (r->left < (size_t)n)
        return IC_ESYNTAX;
    for (int i = 0; i < n; i++)
        v = v << 8 | r->p[i];
    r->p += n;
    r->left -= (size_t)n;
    if (v >= r->left || r->p[v] != 0 || memchr(r->p, '\0', v) != NULL)
        return IC_ESYNTAX;
    *s = (const char *)r->p;
    *len = (size_t)v;
    r->p += v + 1;
    r->left -= v + 1;
    return 0;
}

static int get_term(struct rd *r, struct ic_term *t)
{
    const char *x = NULL;
    size_t xlen = 0;
    unsigned kind;
    int rc;

    if (r->left < 1)
        return IC_ESYNTAX;
    kind = *r->p++;
    r->left--;
    if (kind < K_IRI || kind > K_LANG)
        return IC_ESYNTAX;
    memset(t, 0, sizeof *t);
    rc = get_str(r, 4, &t->value, &t->len);
    if (rc == 0 && kind >= K_TYPED) {
        rc = get_str(r, 2, &x, &xlen);
        if (rc == 0 && xlen == 0)
            rc = IC_ESYNTAX;
    }
    t->kind = kind == K_IRI     ? IC_TERM_IRI
              : kind == K_BLANK ? IC_TERM_BLANK
                                : IC_TERM_LITERAL;
    t->datatype = kind == K_TYPED ? x : NULL;
    t->lang = kind == K_LANG ? x : NULL;
    return rc;
}

/* The next triple at R into T; IC_EEND at the end of the document. */
static int next_triple(struct rd *r, struct ic_term t[3])
{
    int rc = 0;

    if (r->left == 0)
        return IC_EEND;
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = get_term(r, &t[i]);
    if (rc == 0 && (t[0].kind == IC_TERM_LITERAL || t[1].kind != IC_TERM_IRI))
        rc = IC_ESYNTAX;
    return rc;
}

/* The id of T, a blank node's label prefixed with PREFIX. */
static int term_id(struct ic_txn *txn,
                   const struct ic_term *t,
                   const char *prefix,
                   uint64_t *id)
{
    struct ic_term b = *t;
    char *label;
    int rc;

    if (t->kind != IC_TERM_BLANK)
        return ic_store_term_id(txn, t, true, id);
    size_t pl = strlen(prefix);
    label = ic_malloc(pl + t->len + 1);
    memcpy(label, prefix, pl);
    memcpy(label + pl, t->value, t->len + 1);
    b.value = label;
    b.len = pl + t->len;
    rc = ic_store_term_id(txn, &b, true, id);
    ic_free(label);
    return rc;
}

int ic_store_terms_replace(struct ic_txn *txn,
                           const char *graph_iri,
                           const void *doc,
                           size_t len,
                           struct ic_load_result *res)
{
    struct rd r = {doc, len};
    struct ic_term g = ic_term_iri(graph_iri), t[3];
    uint64_t(*q)[4] = NULL, gid;
    size_t n = 0, cap = 0, add = 0;
    char prefix[40];
    int rc;

    memset(res, 0, sizeof *res);
    if (!txn->write)
        return IC_EREADONLY;
    snprintf(prefix, sizeof prefix, "l%llux", (unsigned long long)txn->next_id);
    rc = ic_store_term_id(txn, &g, true, &gid);
    while (rc == 0 && (rc = next_triple(&r, t)) == 0) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            q = ic_realloc(q, cap * sizeof *q);
        }
        for (int i = 0; i < 3 && rc == 0; i++)
            rc = term_id(txn, &t[i], prefix, &q[n][i]);
        q[n++][3] = gid;
    }
    if (rc == IC_ESYNTAX)
        snprintf(res->error, sizeof res->error,
                 "triples: malformed at byte %zu of %zu", len - r.left, len);
    else if (rc == IC_EEND && n == 0)
        rc = ic_store__graph_clear_id(txn, gid);
    else if (rc == IC_EEND)
        rc = ic_store__graph_replace_id(txn, gid, q, n, &add);
    if (rc == 0)
        rc = ic_store__quads_add_bulk(txn, q, add);
    if (rc == 0) {
        res->quads = n;
        res->graphs = n > 0;
    } else if (res->error[0] == '\0') {
        snprintf(res->error, sizeof res->error, "%s", ic_strerror(rc));
    }
    ic_free(q);
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
