/*
 * pairs.c - what an (attribute, value) pair of a published description
 * maps to, remembered (see store_int.h).
 *
 * A cloud publishes its whole description again for each change, so the
 * node that takes a publish maps the same pairs over and over
 * (ic_store_attr_statements: the attribute map's property, the value
 * parsed and checked against the attribute's datatype, or the individual
 * its label names). The statements a pair gave are kept in a
 * direct-mapped table of PAIRS_SLOTS entries (a collision replaces the
 * older entry), valid while ic_store.attr_gen is what it was filled at: a
 * pair whose objects are literals depends on the attribute map only. A
 * pair that named an individual by its label (a class-valued attribute)
 * also depends on the catalog's rdf:type and label statements, and is
 * valid only while ic_store.label_gen stands too (publishes replace
 * their graphs writing only the quads that differ, so a republished
 * description moves neither).
 * Read transactions only, at the store's current generation; used on the
 * loop's thread, as the attribute caches are.
 */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "store_int.h"

#define PAIRS_SLOTS 4096

struct pair_stmt {
    char *p; /* the property's IRI */
    char *o; /* the literal's lexical form or the individual's IRI */
    size_t plen, olen;
    enum ic_term_kind okind;
    char *datatype, *lang; /* or NULL */
};

struct pair_entry {
    uint64_t hash;
    char *key; /* attribute NUL value, KLEN bytes */
    size_t klen;
    size_t n;
    struct pair_stmt *s;
    bool labels;        /* an object named by a label: */
    uint64_t label_gen; /* valid at this ic_store.label_gen only */
};

struct ic_store__pairs {
    uint64_t gen;
    struct pair_entry e[PAIRS_SLOTS];
};

static void stmts_free(struct pair_stmt *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ic_free(s[i].p);
        ic_free(s[i].o);
        ic_free(s[i].datatype);
        ic_free(s[i].lang);
    }
    ic_free(s);
}

static void entry_clear(struct pair_entry *e)
{
    ic_free(e->key);
    stmts_free(e->s, e->n);
    memset(e, 0, sizeof *e);
}

void ic_store__pairs_free(struct ic_store__pairs *c)
{
    for (size_t i = 0; c != NULL && i < PAIRS_SLOTS; i++)
        entry_clear(&c->e[i]);
    ic_free(c);
}

/* "ATTRIBUTE\0VALUE" in *KEY (allocated), its length and hash. */
static uint64_t
make_key(const char *attribute, const char *value, char **key, size_t *klen)
{
    size_t al = strlen(attribute), vl = strlen(value);

    *klen = al + 1 + vl;
    *key = ic_malloc(*klen);
    memcpy(*key, attribute, al + 1);
    memcpy(*key + al + 1, value, vl);
    return ic_store__hash(*key, *klen);
}

/* The table when T may use it: a read transaction at the store's
 * generation. */
static struct ic_store__pairs *usable(struct ic_txn *t)
{
    struct ic_store *st = t->st;

    if (t->write || t->attr_gen != st->attr_gen)
        return NULL;
    if (st->pairs != NULL && st->pairs->gen != st->attr_gen) {
        ic_store__pairs_free(st->pairs);
        st->pairs = NULL;
    }
    return st->pairs;
}

bool ic_store__pairs_replay(struct ic_txn *t,
                            const char *attribute,
                            const char *value,
                            ic_store_statement_fn fn,
                            void *data,
                            int *rc)
{
    struct ic_store__pairs *c = usable(t);
    struct pair_entry *e;
    char *key;
    size_t klen;
    uint64_t h;

    if (c == NULL)
        return false;
    h = make_key(attribute, value, &key, &klen);
    e = &c->e[h % PAIRS_SLOTS];
    if (e->key == NULL || e->hash != h || e->klen != klen ||
        memcmp(e->key, key, klen) != 0 ||
        (e->labels && (e->label_gen != t->st->label_gen ||
                       t->label_gen != t->st->label_gen))) {
        ic_free(key);
        return false;
    }
    ic_free(key);
    *rc = 0;
    for (size_t i = 0; *rc == 0 && i < e->n; i++) {
        const struct pair_stmt *s = &e->s[i];
        struct ic_term p = {IC_TERM_IRI, s->p, s->plen, NULL, NULL};
        struct ic_term o = {s->okind, s->o, s->olen, s->datatype, s->lang};
        *rc = fn(data, &p, &o);
    }
    return true;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? ic_strdup(s) : NULL;
}

void ic_store__pairs_note(struct ic_store__pairs_rec *r,
                          const struct ic_term *p,
                          const struct ic_term *o)
{
    struct pair_stmt *s;

    if (r->off)
        return;
    if (p->kind != IC_TERM_IRI || !(o->kind == IC_TERM_LITERAL ||
                                    (o->kind == IC_TERM_IRI && r->labels))) {
        r->off = true;
        return;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 4;
        r->s = ic_realloc(r->s, r->cap * sizeof *r->s);
    }
    s = &r->s[r->n++];
    s->p = ic_strndup(p->value, p->len);
    s->plen = p->len;
    s->o = ic_strndup(o->value, o->len);
    s->olen = o->len;
    s->okind = o->kind;
    s->datatype = dup_or_null(o->datatype);
    s->lang = dup_or_null(o->lang);
}

void ic_store__pairs_keep(struct ic_txn *t,
                          const char *attribute,
                          const char *value,
                          struct ic_store__pairs_rec *r)
{
    struct ic_store *st = t->st;
    struct pair_entry *e;
    char *key;
    size_t klen;
    uint64_t h;

    if (r->off || t->write || t->attr_gen != st->attr_gen ||
        (r->labels && t->label_gen != st->label_gen))
        return;
    (void)usable(t); /* drops a table of an older generation */
    if (st->pairs == NULL) {
        st->pairs = ic_calloc(1, sizeof *st->pairs);
        st->pairs->gen = st->attr_gen;
    }
    h = make_key(attribute, value, &key, &klen);
    e = &st->pairs->e[h % PAIRS_SLOTS];
    entry_clear(e);
    e->hash = h;
    e->key = key;
    e->klen = klen;
    e->n = r->n;
    e->s = r->s;
    e->labels = r->labels;
    e->label_gen = t->label_gen;
    r->s = NULL;
    r->n = r->cap = 0;
}

void ic_store__pairs_rec_free(struct ic_store__pairs_rec *r)
{
    stmts_free(r->s, r->n);
    memset(r, 0, sizeof *r);
}
