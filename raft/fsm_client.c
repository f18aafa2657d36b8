/*
 * fsm_client.c - the state machine's per-client deduplication window: which
 * of a client's recent sequences were applied, and the result of each one
 * that failed. One record per client in the store's `clients` database.
 *
 * Rules (H the highest applied sequence, W = IC_RAFT__WINDOW):
 *   seq > H                       apply; the window slides up to seq
 *   H - W < seq <= H, applied     not applied again: the recorded result
 *   H - W < seq <= H, not applied apply now and mark it
 *   seq <= H - W                  IC_ESTALE: too old to tell
 * A record read in layout 1 (only the last sequence S and its result) says
 * nothing of the sequences below S: they stay too old to tell (the
 * window's floor is S until the window moves past it).
 *
 * Record layout 2 (integers big-endian):
 *   tag u8 0xC1 | version u8 2 | high u64 | floor u64 | bitmap 128 bytes |
 *   n u16 | n x (seq u64 | code i32 | message length u8 | message)
 * bit i of the bitmap (byte i / 8, mask 1 << (i % 8)) is sequence high - i;
 * the n failures are in increasing sequence order, each inside the window
 * and marked applied. Layout 1: seq u64 | code i32 | length u16 | message.
 * A layout-1 record of a sequence at or above 0xC102 << 48 would read as
 * layout 2; sequences count commands from 1 and never get there.
 *
 * Everything here depends only on the record and the command: every
 * replica decides the same.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "raft_int.h"

#define TAG 0xC1
#define LAYOUT 2
#define HEAD (2 + 8 + 8 + IC_RAFT__WINDOW / 8 + 2)
#define FAIL_HEAD (8 + 4 + 1)

struct fail {
    uint64_t seq;
    struct ic_raft_result res;
};

struct ic_raft__window {
    uint64_t high;  /* highest applied sequence; 0: none yet */
    uint64_t floor; /* sequences below it are too old to tell; 0: none */
    unsigned char bits[IC_RAFT__WINDOW / 8];
    struct fail *fails; /* increasing seq */
    size_t n_fails, cap;
};

static uint64_t be_get(const unsigned char *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static void be_put(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
}

static bool bit_get(const struct ic_raft__window *w, uint64_t i)
{
    return (w->bits[i / 8] >> (i % 8)) & 1;
}

static void bit_set(struct ic_raft__window *w, uint64_t i)
{
    w->bits[i / 8] |= (unsigned char)(1u << (i % 8));
}

static void fail_add(struct ic_raft__window *w,
                     uint64_t seq,
                     const struct ic_raft_result *res)
{
    size_t at = w->n_fails;

    if (w->n_fails == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 4;
        w->fails = ic_realloc(w->fails, w->cap * sizeof *w->fails);
    }
    while (at > 0 && w->fails[at - 1].seq > seq)
        at--;
    memmove(&w->fails[at + 1], &w->fails[at],
            (w->n_fails - at) * sizeof *w->fails);
    w->fails[at].seq = seq;
    w->fails[at].res = *res;
    w->n_fails++;
}

/* Whether SEQ is below the window (too old to tell). */
static bool too_old(const struct ic_raft__window *w, uint64_t seq)
{
    return seq < w->floor ||
           (w->high >= IC_RAFT__WINDOW && seq <= w->high - IC_RAFT__WINDOW);
}

/* Layout 1: the last sequence and its result. */
static int read_v1(struct ic_raft__window *w, const unsigned char *p, size_t n)
{
    struct ic_raft_result res;
    size_t ml;

    if (n < 14 || (ml = be_get(p + 12, 2)) != n - 14 || ml >= sizeof res.msg)
        return IC_ECORRUPT;
    w->high = be_get(p, 8);
    if (w->high == 0)
        return IC_ECORRUPT;
    w->floor = w->high;
    bit_set(w, 0);
    res.code = (int)(int32_t)(uint32_t)be_get(p + 8, 4);
    memcpy(res.msg, p + 14, ml);
    res.msg[ml] = '\0';
    if (res.code != 0)
        fail_add(w, w->high, &res);
    return 0;
}

static int read_fails(struct ic_raft__window *w,
                      const unsigned char *p,
                      size_t n,
                      size_t count)
{
    struct ic_raft_result res;
    uint64_t seq, prev = 0;
    size_t ml;

    for (size_t i = 0; i < count; i++) {
        if (n < FAIL_HEAD || (ml = p[12]) > n - FAIL_HEAD)
            return IC_ECORRUPT;
        seq = be_get(p, 8);
        res.code = (int)(int32_t)(uint32_t)be_get(p + 8, 4);
        if (seq <= prev || seq > w->high || too_old(w, seq) ||
            !bit_get(w, w->high - seq) || res.code == 0)
            return IC_ECORRUPT;
        memcpy(res.msg, p + FAIL_HEAD, ml);
        res.msg[ml] = '\0';
        fail_add(w, seq, &res);
        prev = seq;
        p += FAIL_HEAD + ml;
        n -= FAIL_HEAD + ml;
    }
    return n == 0 ? 0 : IC_ECORRUPT;
}

static int read_v2(struct ic_raft__window *w, const unsigned char *p, size_t n)
{
    size_t count;

    if (n < HEAD)
        return IC_ECORRUPT;
    w->high = be_get(p + 2, 8);
    w->floor = be_get(p + 10, 8);
    memcpy(w->bits, p + 18, sizeof w->bits);
    count = be_get(p + HEAD - 2, 2);
    if (count > IC_RAFT__WINDOW)
        return IC_ECORRUPT;
    return read_fails(w, p + HEAD, n - HEAD, count);
}

int ic_raft__window_load(struct ic_txn *t,
                         uint64_t client,
                         struct ic_raft__window **out)
{
    struct ic_raft__window *w;
    const unsigned char *p;
    struct ic_kv v;
    int rc = ic_store_client_get(t, client, &v);

    if (rc != 0 && rc != IC_ENOTFOUND)
        return rc;
    w = ic_calloc(1, sizeof *w);
    if (rc == 0) {
        p = v.data;
        if (v.len >= 2 && p[0] == TAG && p[1] == LAYOUT)
            rc = read_v2(w, p, v.len);
        else
            rc = read_v1(w, p, v.len);
    } else {
        rc = 0;
    }
    if (rc != 0) {
        ic_raft__window_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void ic_raft__window_free(struct ic_raft__window *w)
{
    if (w == NULL)
        return;
    ic_free(w->fails);
    ic_free(w);
}

enum ic_raft__verdict ic_raft__window_check(const struct ic_raft__window *w,
                                            uint64_t seq,
                                            struct ic_raft_result *res)
{
    if (seq > w->high)
        return IC_RAFT__APPLY;
    if (too_old(w, seq)) {
        res->code = IC_ESTALE;
        snprintf(res->msg, sizeof res->msg,
                 "sequence %llu is too old to tell: below the client's "
                 "window (highest applied %llu)",
                 (unsigned long long)seq, (unsigned long long)w->high);
        return IC_RAFT__STALE;
    }
    if (!bit_get(w, w->high - seq))
        return IC_RAFT__APPLY;
    res->code = 0;
    res->msg[0] = '\0';
    for (size_t i = 0; i < w->n_fails; i++)
        if (w->fails[i].seq == seq)
            *res = w->fails[i].res;
    return IC_RAFT__DUPLICATE;
}

/* Moves the window's top up to SEQ (> high). */
static void slide(struct ic_raft__window *w, uint64_t seq)
{
    enum { WORDS = IC_RAFT__WINDOW / 64 };
    uint64_t d = seq - w->high, in[WORDS];
    size_t keep = 0;

    /* bit j (offset below the top) becomes bit j + d: the bit string, a
     * little-endian number of WORDS words, is shifted left by d */
    if (d >= IC_RAFT__WINDOW) {
        memset(w->bits, 0, sizeof w->bits);
    } else {
        size_t q = (size_t)(d / 64);
        unsigned r = (unsigned)(d % 64);
        for (size_t k = 0; k < WORDS; k++)
            in[k] = ic_get_le64(w->bits + 8 * k);
        for (size_t k = 0; k < WORDS; k++) {
            uint64_t v = k >= q ? in[k - q] << r : 0;
            if (r != 0 && k >= q + 1)
                v |= in[k - q - 1] >> (64 - r);
            ic_put_le64(w->bits + 8 * k, v);
        }
    }
    w->high = seq;
    for (size_t i = 0; i < w->n_fails; i++)
        if (!too_old(w, w->fails[i].seq))
            w->fails[keep++] = w->fails[i];
    w->n_fails = keep;
    /* a floor at or below the window's bottom says nothing more */
    if (w->high >= IC_RAFT__WINDOW && w->floor <= w->high - IC_RAFT__WINDOW + 1)
        w->floor = 0;
}

void ic_raft__window_mark(struct ic_raft__window *w,
                          uint64_t seq,
                          const struct ic_raft_result *res)
{
    assert(!too_old(w, seq));
    if (seq > w->high)
        slide(w, seq);
    bit_set(w, w->high - seq);
    if (res->code != 0)
        fail_add(w, seq, res);
}

int ic_raft__window_store(struct ic_txn *t,
                          uint64_t client,
                          const struct ic_raft__window *w)
{
    size_t len = HEAD, ml;
    unsigned char *buf, *p;
    int rc;

    for (size_t i = 0; i < w->n_fails; i++)
        len += FAIL_HEAD + strlen(w->fails[i].res.msg);
    buf = ic_malloc(len);
    buf[0] = TAG;
    buf[1] = LAYOUT;
    be_put(buf + 2, w->high, 8);
    be_put(buf + 10, w->floor, 8);
    memcpy(buf + 18, w->bits, sizeof w->bits);
    be_put(buf + HEAD - 2, w->n_fails, 2);
    p = buf + HEAD;
    for (size_t i = 0; i < w->n_fails; i++) {
        ml = strlen(w->fails[i].res.msg);
        be_put(p, w->fails[i].seq, 8);
        be_put(p + 8, (uint32_t)w->fails[i].res.code, 4);
        p[12] = (unsigned char)ml;
        memcpy(p + FAIL_HEAD, w->fails[i].res.msg, ml);
        p += FAIL_HEAD + ml;
    }
    rc = ic_store_client_put(t, client, (struct ic_kv){buf, len});
    ic_free(buf);
    return rc;
}
