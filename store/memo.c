/*
 * memo.c - per graph, the terms table its last replace wrote and the ids
 * of its terms (store_int.h, struct ic_store__memo), in a hash table keyed
 * by the graph's IRI: open addressing, linear probing, never more than
 * MEMO_GRAPHS graphs or MEMO_BYTES bytes of tables, or it starts again
 * empty (the graphs being republished come back at once). Used on the
 * loop's thread only, by write transactions.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define MEMO_GRAPHS 4096
#define MEMO_BYTES ((size_t)16 << 20)
/* A table larger than this is not kept (a bulk load, not a description). */
#define MEMO_TABLE_BYTES ((size_t)64 << 10)

struct ic_store__memos {
    struct ic_store__memo *slots;
    size_t cap; /* a power of two, or 0 */
    size_t n;
    size_t bytes; /* of the tables held */
};

static size_t table_bytes(const struct ic_store__table *tb)
{
    return tb->n * sizeof *tb->t + tb->acap;
}

static void memo_free(struct ic_store__memo *m)
{
    ic_free(m->graph);
    ic_free(m->tb.t);
    ic_free(m->tb.arena);
    memset(m, 0, sizeof *m);
}

void ic_store__memo_clear(struct ic_store *st)
{
    struct ic_store__memos *ms = st->memos;

    if (ms == NULL || ms->n == 0)
        return;
    for (size_t i = 0; i < ms->cap; i++)
        if (ms->slots[i].graph != NULL)
            memo_free(&ms->slots[i]);
    ms->n = 0;
    ms->bytes = 0;
}

size_t ic_store__memo_bytes(const struct ic_store *st)
{
    return st->memos != NULL ? st->memos->bytes : 0;
}

void ic_store__memos_free(struct ic_store *st)
{
    if (st->memos == NULL)
        return;
    ic_store__memo_clear(st);
    ic_free(st->memos->slots);
    ic_free(st->memos);
    st->memos = NULL;
}

static struct ic_store__memo *
slot_of(struct ic_store__memos *ms, const char *graph, size_t len, uint64_t h)
{
    size_t mask = ms->cap - 1;

    for (size_t j = h & mask;; j = (j + 1) & mask) {
        struct ic_store__memo *m = &ms->slots[j];
        if (m->graph == NULL || (m->hash == h && m->graph_len == len &&
                                 memcmp(m->graph, graph, len) == 0))
            return m;
    }
}

const struct ic_store__memo *ic_store__memo_find(struct ic_store *st,
                                                 const char *graph,
                                                 size_t len,
                                                 uint64_t h)
{
    struct ic_store__memo *m;

    if (st->memos == NULL || st->memos->n == 0)
        return NULL;
    m = slot_of(st->memos, graph, len, h);
    return m->graph != NULL ? m : NULL;
}

static void grow(struct ic_store__memos *ms)
{
    size_t ncap = ms->cap ? ms->cap * 2 : 64;
    struct ic_store__memo *old = ms->slots;
    size_t ocap = ms->cap;

    ms->slots = ic_calloc(ncap, sizeof *ms->slots);
    ms->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].graph != NULL)
            *slot_of(ms, old[i].graph, old[i].graph_len, old[i].hash) = old[i];
    ic_free(old);
}

void ic_store__memo_put(struct ic_txn *t,
                        const char *graph,
                        size_t len,
                        uint64_t h,
                        uint64_t gid,
                        struct ic_store__table *tb)
{
    struct ic_store *st = t->st;
    struct ic_store__memos *ms;
    struct ic_store__memo *m;
    size_t bytes = table_bytes(tb);

    if (bytes > MEMO_TABLE_BYTES)
        return;
    if (st->memos == NULL)
        st->memos = ic_calloc(1, sizeof *st->memos);
    ms = st->memos;
    t->memo_put = true;
    if (ms->n > 0) {
        m = slot_of(ms, graph, len, h);
        /* the graph's own, replaced in place while the bound holds */
        if (m->graph != NULL &&
            ms->bytes - table_bytes(&m->tb) + bytes <= MEMO_BYTES) {
            ms->bytes -= table_bytes(&m->tb);
            ic_free(m->tb.t);
            ic_free(m->tb.arena);
            goto fill;
        }
    }
    if (ms->n + 1 > MEMO_GRAPHS || ms->bytes + bytes > MEMO_BYTES)
        ic_store__memo_clear(st); /* the graph's own too, if it had one */
    if ((ms->n + 1) * 4 > ms->cap * 3)
        grow(ms);
    m = slot_of(ms, graph, len, h);
    m->graph = ic_malloc(len + 1);
    memcpy(m->graph, graph, len);
    m->graph[len] = '\0';
    m->graph_len = len;
    m->hash = h;
    ms->n++;
fill:
    m->gid = gid;
    m->tb = *tb;
    ms->bytes += bytes;
    memset(tb, 0, sizeof *tb);
}
