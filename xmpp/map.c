/* map.c - a string-keyed open-addressing hash map with tombstones. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "xmpp_int.h"

#define TOMB ((char *)1)

static uint64_t hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}

static struct ic_map_entry *find(const struct ic_map *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    for (size_t j = hash(key) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        struct ic_map_entry *e = &m->slots[j];
        if (e->key == NULL)
            return NULL;
        if (e->key != TOMB && strcmp(e->key, key) == 0)
            return e;
    }
}

static void grow(struct ic_map *m)
{
    struct ic_map old = *m;

    m->cap = m->cap ? m->cap * 2 : 16;
    if ((m->n + 1) * 4 < old.cap) /* mostly tombstones: same size */
        m->cap = old.cap;
    m->slots = ic_calloc(m->cap, sizeof *m->slots);
    m->n = 0;
    m->tombs = 0;
    for (size_t i = 0; i < old.cap; i++) {
        struct ic_map_entry *e = &old.slots[i];
        size_t j;
        if (e->key == NULL || e->key == TOMB)
            continue;
        for (j = hash(e->key) & (m->cap - 1); m->slots[j].key != NULL;
             j = (j + 1) & (m->cap - 1))
            ;
        m->slots[j] = *e;
        m->n++;
    }
    ic_free(old.slots);
}

void *ic_map_get(const struct ic_map *m, const char *key)
{
    struct ic_map_entry *e = find(m, key);
    return e ? e->value : NULL;
}

void *ic_map_put(struct ic_map *m, const char *key, void *value)
{
    struct ic_map_entry *e = find(m, key);
    void *old;
    size_t j;

    if (e != NULL) {
        old = e->value;
        e->value = value;
        return old;
    }
    if ((m->n + m->tombs + 1) * 4 > m->cap * 3)
        grow(m);
    for (j = hash(key) & (m->cap - 1);
         m->slots[j].key != NULL && m->slots[j].key != TOMB;
         j = (j + 1) & (m->cap - 1))
        ;
    if (m->slots[j].key == TOMB)
        m->tombs--;
    m->slots[j].key = ic_strdup(key);
    m->slots[j].value = value;
    m->n++;
    return NULL;
}

void *ic_map_del(struct ic_map *m, const char *key)
{
    struct ic_map_entry *e = find(m, key);
    void *old;

    if (e == NULL)
        return NULL;
    old = e->value;
    ic_free(e->key);
    e->key = TOMB;
    e->value = NULL;
    m->n--;
    m->tombs++;
    return old;
}

struct ic_map_entry *ic_map_next(const struct ic_map *m, size_t *i)
{
    for (; *i < m->cap; (*i)++) {
        struct ic_map_entry *e = &m->slots[*i];
        if (e->key != NULL && e->key != TOMB) {
            (*i)++;
            return e;
        }
    }
    return NULL;
}

void ic_map_free(struct ic_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key != NULL && m->slots[i].key != TOMB)
            ic_free(m->slots[i].key);
    ic_free(m->slots);
    memset(m, 0, sizeof *m);
}

void ic_map_free_values(struct ic_map *m, void (*free_value)(void *value))
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key != NULL && m->slots[i].key != TOMB)
            free_value(m->slots[i].value);
    ic_map_free(m);
}
