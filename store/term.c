/*
 * term.c - the term dictionary: terms are encoded to bytes, hashed to a
 * 64-bit key (hash2id, duplicates allowed) and given ids (id2term).
 *
 * Ids of numeric and dateTime literals are ordered by value: the top 48
 * bits of the payload are an order-preserving key of the value as a double,
 * the low 12 bits a sequence number among distinct literals that share the
 * key. A range scan is therefore exact except within the two edge buckets,
 * where the matcher compares exact values (ic_store__ordered_value).
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* Hash: 8 bytes at a time with multiply/xor-shift mixing; part of the
 * on-disk format, never change it within a format version. */
static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

static inline uint64_t mix_block(uint64_t k)
{
    k *= 0x87c37b91114253d5ULL;
    k = rotl64(k, 31);
    return k * 0x4cf5ad432745937fULL;
}

uint64_t ic_store__hash(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h =
        0x9e3779b97f4a7c15ULL ^ ((uint64_t)len * 0x87c37b91114253d5ULL);
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        h ^= mix_block(ic_get_le64(p + i));
        h = rotl64(h, 27) * 5 + 0x52dce729;
    }
    if (i < len) {
        unsigned char tail[8] = {0};
        memcpy(tail, p + i, len - i);
        h ^= mix_block(ic_get_le64(tail));
    }
    return fmix64(h);
}

struct ic_term ic_term_iri(const char *iri)
{
    struct ic_term t = {IC_TERM_IRI, iri, strlen(iri), NULL, NULL};
    return t;
}

struct ic_term ic_term_literal(const char *lex, const char *datatype)
{
    struct ic_term t = {IC_TERM_LITERAL, lex, strlen(lex), datatype, NULL};
    return t;
}

/* Lexical forms */

static const char *const numeric_types[] = {
    "integer",
    "decimal",
    "double",
    "float",
    "long",
    "int",
    "short",
    "byte",
    "nonNegativeInteger",
    "positiveInteger",
    "nonPositiveInteger",
    "negativeInteger",
    "unsignedLong",
    "unsignedInt",
    "unsignedShort",
    "unsignedByte",
};

static const char *xsd_local(const char *dt)
{
    size_t n = sizeof IC_XSD - 1;
    if (dt == NULL || strncmp(dt, IC_XSD, n) != 0)
        return NULL;
    return dt + n;
}

bool ic_store__is_numeric_type(const char *dt)
{
    const char *l = xsd_local(dt);
    if (l == NULL)
        return false;
    for (size_t i = 0; i < IC_ARRAY_LEN(numeric_types); i++)
        if (strcmp(l, numeric_types[i]) == 0)
            return true;
    return false;
}

static size_t digits(const char *s)
{
    size_t n = 0;
    while (isdigit((unsigned char)s[n]))
        n++;
    return n;
}

/* [+-]? digits ( . digits? )? | [+-]? . digits ; then exponent if EXP. */
static bool lex_number(const char *s, bool integer, bool exp)
{
    size_t a, b = 0;

    if (*s == '+' || *s == '-')
        s++;
    if (exp && (strcmp(s, "INF") == 0))
        return true;
    a = digits(s);
    s += a;
    if (!integer && *s == '.') {
        s++;
        b = digits(s);
        s += b;
    }
    if (a + b == 0)
        return false;
    if (exp && (*s == 'e' || *s == 'E')) {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (digits(s) == 0)
            return false;
        s += digits(s);
    }
    return *s == '\0';
}

static long days_from_civil(long y, unsigned m, unsigned d)
{
    long era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long)doe - 719468;
}

static bool fixed_num(const char *s, size_t n, unsigned *v)
{
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        *v = *v * 10 + (unsigned)(s[i] - '0');
    }
    return true;
}

static unsigned days_in_month(long y, unsigned m)
{
    static const unsigned days[12] = {31, 28, 31, 30, 31, 30,
                                      31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

/* xsd:dateTime to seconds since the epoch (UTC; no zone means UTC). */
static bool lex_datetime(const char *s, long double *out)
{
    unsigned mo, d, h, mi, se, zh = 0, zm = 0;
    long y;
    char *end;
    long double frac = 0, t;
    size_t fl;

    y = strtol(s, &end, 10);
    if (end == s || end - s < 4 || *end != '-')
        return false;
    s = end + 1;
    if (!fixed_num(s, 2, &mo) || s[2] != '-' || !fixed_num(s + 3, 2, &d) ||
        s[5] != 'T' || !fixed_num(s + 6, 2, &h) || s[8] != ':' ||
        !fixed_num(s + 9, 2, &mi) || s[11] != ':' || !fixed_num(s + 12, 2, &se))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 24 ||
        mi > 59 || se > 59 || (h == 24 && (mi != 0 || se != 0)))
        return false;
    s += 14;
    if (*s == '.') {
        fl = digits(s + 1);
        if (fl == 0)
            return false;
        frac = strtold(s, NULL);
        s += 1 + fl;
        if (h == 24 && frac != 0)
            return false;
    }
    t = (long double)days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 +
        se + frac;
    if (*s == 'Z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s == '+' ? 1 : -1;
        if (!fixed_num(s + 1, 2, &zh) || s[3] != ':' ||
            !fixed_num(s + 4, 2, &zm))
            return false;
        t -= sign * (long double)(zh * 3600 + zm * 60);
        s += 6;
    }
    if (*s != '\0')
        return false;
    *out = t;
    return true;
}

/* The value of a checked numeric lexical form, as strtold gives it; a
 * plain integer of at most 18 digits, which a long double holds exactly,
 * without strtold's general parse (most catalog numbers are such). */
static long double lex_value(const char *lex)
{
    const char *p = lex + (*lex == '+' || *lex == '-');
    uint64_t n = 0;
    size_t i;

    for (i = 0; i < 18 && p[i] >= '0' && p[i] <= '9'; i++)
        n = n * 10 + (uint64_t)(p[i] - '0');
    if (i == 0 || p[i] != '\0')
        return strtold(lex, NULL);
    return *lex == '-' ? -(long double)n : (long double)n;
}

int ic_store__ordered_value(const char *lex,
                            const char *dt,
                            uint64_t *tag,
                            long double *value)
{
    const char *l = xsd_local(dt);

    if (l == NULL)
        return IC_EVALUE;
    if (strcmp(l, "dateTime") == 0 || strcmp(l, "dateTimeStamp") == 0) {
        if (!lex_datetime(lex, value))
            return IC_EVALUE;
        *tag = IC_TAG_TIME;
        return 0;
    }
    if (!ic_store__is_numeric_type(dt))
        return IC_EVALUE;
    if (strcmp(l, "double") == 0 || strcmp(l, "float") == 0) {
        if (!lex_number(lex, false, true))
            return IC_EVALUE;
    } else if (!lex_number(lex, strcmp(l, "decimal") != 0, false)) {
        return IC_EVALUE;
    }
    *value = lex_value(lex);
    *tag = IC_TAG_NUM;
    return 0;
}

uint64_t ic_store__okey(long double v)
{
    double d = (double)v;
    uint64_t bits;

    if (d == 0)
        d = 0; /* -0 sorts with +0 */
    memcpy(&bits, &d, sizeof bits);
    if (bits >> 63)
        bits = ~bits;
    else
        bits |= 1ULL << 63;
    return bits >> 16;
}

/* Encoding:
 *   'I' iri '\0'          'B' label '\0'
 *   'L' len32le lexical '\0' ('@' lang | '^' datatype | '\0') '\0' */
static char *scratch(char **buf, size_t *cap, size_t n)
{
    if (n > *cap) {
        *cap = n < 256 ? 256 : n * 2;
        *buf = ic_realloc(*buf, *cap);
    }
    return *buf;
}

int ic_store__term_encode(const struct ic_term *t,
                          char **enc,
                          size_t *cap,
                          size_t *len,
                          uint64_t *tag,
                          uint64_t *okey,
                          uint64_t *inline_id)
{
    const char *suffix = "";
    char marker = '\0';
    size_t n, sl;
    char *b;
    long double v;
    uint64_t otag;

    *okey = 0;
    *tag = IC_TAG_DICT;
    if (t->kind == IC_TERM_IRI || t->kind == IC_TERM_BLANK) {
        if (memchr(t->value, '\0', t->len) != NULL)
            return IC_EINVAL;
        b = scratch(enc, cap, t->len + 2);
        b[0] = t->kind == IC_TERM_IRI ? 'I' : 'B';
        memcpy(b + 1, t->value, t->len);
        b[t->len + 1] = '\0';
        *len = t->len + 2;
        return 0;
    }
    if (t->kind != IC_TERM_LITERAL || t->len > UINT32_MAX)
        return IC_EINVAL;
    if (t->lang != NULL && t->lang[0] != '\0') {
        marker = '@';
        suffix = t->lang;
    } else if (t->datatype != NULL &&
               strcmp(t->datatype, IC_XSD "string") != 0) {
        marker = '^';
        suffix = t->datatype;
        if (strcmp(t->datatype, IC_XSD "boolean") == 0 &&
            ((t->len == 4 && memcmp(t->value, "true", 4) == 0) ||
             (t->len == 5 && memcmp(t->value, "false", 5) == 0))) {
            *len = 0;
            *inline_id = IC_ID_MAKE(IC_TAG_BOOL, t->len == 4 ? 1ULL : 0ULL);
            return 0;
        }
    }
    sl = strlen(suffix);
    n = 1 + 4 + t->len + 1 + 1 + sl + 1;
    b = scratch(enc, cap, n);
    b[0] = 'L';
    for (int i = 0; i < 4; i++)
        b[1 + i] = (char)((t->len >> (8 * i)) & 0xff);
    memcpy(b + 5, t->value, t->len);
    b[5 + t->len] = '\0';
    b[6 + t->len] = marker;
    memcpy(b + 7 + t->len, suffix, sl);
    b[n - 1] = '\0';
    if (marker == '^' &&
        ic_store__ordered_value(b + 5, suffix, &otag, &v) == 0 && !isnan(v)) {
        *tag = otag;
        *okey = ic_store__okey(v);
    }
    *len = n;
    return 0;
}

int ic_store__term_decode(const void *data, size_t len, struct ic_term *out)
{
    const char *e = data;
    uint32_t ll = 0;

    if (len < 2 || e[len - 1] != '\0')
        return IC_ECORRUPT;
    memset(out, 0, sizeof *out);
    switch (e[0]) {
    case 'I':
    case 'B':
        out->kind = e[0] == 'I' ? IC_TERM_IRI : IC_TERM_BLANK;
        out->value = e + 1;
        out->len = len - 2;
        return 0;
    case 'L':
        if (len < 8)
            return IC_ECORRUPT;
        for (int i = 3; i >= 0; i--)
            ll = (ll << 8) | (unsigned char)e[1 + i];
        if ((size_t)ll + 8 > len || e[5 + ll] != '\0')
            return IC_ECORRUPT;
        out->kind = IC_TERM_LITERAL;
        out->value = e + 5;
        out->len = ll;
        if (e[6 + ll] == '@')
            out->lang = e + 7 + ll;
        else if (e[6 + ll] == '^')
            out->datatype = e + 7 + ll;
        return 0;
    default:
        return IC_ECORRUPT;
    }
}

/* The transaction's term cache: open addressing on the hash. */

static void tcache_grow(struct ic_store__tcache *c)
{
    size_t ncap = c->cap ? c->cap * 2 : 64;
    struct ic_store__tcache_entry *ns = ic_calloc(ncap, sizeof *ns);

    for (size_t i = 0; i < c->cap; i++) {
        struct ic_store__tcache_entry *e = &c->slots[i];
        size_t j;
        if (e->enc == NULL)
            continue;
        for (j = e->hash & (ncap - 1); ns[j].enc != NULL;
             j = (j + 1) & (ncap - 1))
            ;
        ns[j] = *e;
    }
    ic_free(c->slots);
    c->slots = ns;
    c->cap = ncap;
}

static struct ic_store__tcache_entry *
tcache_find(struct ic_store__tcache *c, uint64_t h, const char *enc, size_t len)
{
    if (c->cap == 0)
        return NULL;
    for (size_t j = h & (c->cap - 1); c->slots[j].enc != NULL;
         j = (j + 1) & (c->cap - 1)) {
        struct ic_store__tcache_entry *e = &c->slots[j];
        if (e->hash == h && e->len == len && memcmp(e->enc, enc, len) == 0)
            return e;
    }
    return NULL;
}

static void tcache_add(struct ic_store__tcache *c,
                       uint64_t h,
                       char *enc,
                       size_t len,
                       uint64_t id,
                       bool created)
{
    size_t j;

    if ((c->n + 1) * 4 > c->cap * 3)
        tcache_grow(c);
    for (j = h & (c->cap - 1); c->slots[j].enc != NULL;
         j = (j + 1) & (c->cap - 1))
        ;
    c->slots[j].hash = h;
    c->slots[j].id = id;
    c->slots[j].len = (uint32_t)len;
    c->slots[j].created = created;
    c->slots[j].enc = enc;
    c->n++;
    c->n_created += created;
}

bool ic_store__tcache_has(struct ic_store__tcache *c,
                          const char *enc,
                          size_t len)
{
    return tcache_find(c, ic_store__hash(enc, len), enc, len) != NULL;
}

void ic_store__tcache_remove(struct ic_store__tcache *c,
                             uint64_t h,
                             const char *enc,
                             size_t len)
{
    struct ic_store__tcache_entry *e = tcache_find(c, h, enc, len);
    size_t mask = c->cap - 1, i, k;

    if (e == NULL)
        return;
    i = (size_t)(e - c->slots);
    c->n--;
    c->n_created -= e->created;
    ic_free(e->enc);
    e->enc = NULL;
    /* backward shift: move up every later entry of the run whose home
     * slot is not between the hole and it (cyclically) */
    for (k = (i + 1) & mask; c->slots[k].enc != NULL; k = (k + 1) & mask) {
        size_t home = c->slots[k].hash & mask;
        bool stays = i <= k ? (i < home && home <= k) : (i < home || home <= k);
        if (stays)
            continue;
        c->slots[i] = c->slots[k];
        c->slots[k].enc = NULL;
        i = k;
    }
}

void ic_store__tcache_free(struct ic_store__tcache *c)
{
    for (size_t i = 0; i < c->cap; i++)
        ic_free(c->slots[i].enc);
    ic_free(c->slots);
    memset(c, 0, sizeof *c);
}

/* The store's cache holds at most this many terms; it starts again empty
 * when full (a catalog's hot terms come back at once). */
#define STORE_TERMS_MAX (1u << 16)

void ic_store__tcache_commit(struct ic_txn *t)
{
    struct ic_store__tcache *to =
        t->parent != NULL ? &t->parent->cache : &t->st->terms;
    struct ic_store__tcache *c = &t->cache;

    for (size_t i = 0; i < c->cap; i++) {
        struct ic_store__tcache_entry *e = &c->slots[i];
        if (e->enc == NULL || tcache_find(to, e->hash, e->enc, e->len) != NULL)
            continue;
        if (t->parent == NULL && to->n >= STORE_TERMS_MAX)
            ic_store__tcache_free(to);
        /* created ones went to hash2id at the commit (tcache_flush) */
        tcache_add(to, e->hash, e->enc, e->len, e->id, false);
        e->enc = NULL;
    }
}

int ic_store__tcache_flush(struct ic_txn *t)
{
    static const struct ic_store__order order = {{0, 1, -1, -1}, 2};
    struct ic_store__tcache *c = &t->cache;
    uint64_t(*pend)[4];
    size_t n = 0;
    int rc;

    if (c->n_created == 0)
        return 0;
    pend = ic_calloc(c->n_created, sizeof *pend);
    for (size_t i = 0; i < c->cap; i++) {
        if (c->slots[i].enc != NULL && c->slots[i].created) {
            pend[n][0] = c->slots[i].hash;
            pend[n][1] = c->slots[i].id;
            c->slots[i].created = 0;
            n++;
        }
    }
    c->n_created = 0;
    rc = ic_store__put_bulk(t, DBI_HASH2ID, pend, n, &order);
    ic_free(pend);
    return rc;
}

/* Looks the encoding up in LMDB. */
static int lookup_enc(
    struct ic_txn *t, uint64_t h, const char *enc, size_t len, uint64_t *id)
{
    MDB_cursor *cur;
    MDB_val k, v, tv;
    unsigned char kb[8];
    int rc;

    ic_store__be64(kb, h);
    k.mv_size = 8;
    k.mv_data = kb;
    rc = mdb_cursor_open(t->txn, t->st->dbi[DBI_HASH2ID], &cur);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        MDB_val ik = {8, v.mv_data};
        if (v.mv_size != 8) {
            rc = MDB_CORRUPTED;
            break;
        }
        rc = mdb_get(t->txn, t->st->dbi[DBI_ID2TERM], &ik, &tv);
        if (rc != 0)
            break;
        if (tv.mv_size == len && memcmp(tv.mv_data, enc, len) == 0) {
            *id = ic_store__get_be64(v.mv_data);
            break;
        }
    }
    mdb_cursor_close(cur);
    return ic_store__mdb_err(rc);
}

/* The next free id in an ordered bucket. */
static int
alloc_ordered(struct ic_txn *t, uint64_t tag, uint64_t okey, uint64_t *id)
{
    uint64_t base = IC_ID_MAKE(tag, okey << IC_ORD_SEQ_BITS);
    uint64_t next = base + IC_ORD_SEQ_MASK + 1, last;
    unsigned char kb[8];
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    rc = mdb_cursor_open(t->txn, t->st->dbi[DBI_ID2TERM], &cur);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    ic_store__be64(kb, next);
    k.mv_size = 8;
    k.mv_data = kb;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
    else if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == MDB_NOTFOUND) {
        *id = base;
        rc = 0;
    } else if (rc == 0) {
        last = ic_store__get_be64(k.mv_data);
        if (last < base)
            *id = base;
        else if ((last & IC_ORD_SEQ_MASK) == IC_ORD_SEQ_MASK)
            rc = -1;
        else
            *id = last + 1;
    }
    mdb_cursor_close(cur);
    if (rc == -1)
        return IC_ELIMIT;
    return ic_store__mdb_err(rc);
}

int ic_store__term_id_enc(struct ic_txn *t,
                          char *enc,
                          size_t len,
                          uint64_t tag,
                          uint64_t okey,
                          bool create,
                          bool take_enc,
                          uint64_t *id)
{
    uint64_t h = ic_store__hash(enc, len);
    struct ic_store__tcache_entry *e = NULL;
    unsigned char kb[8];
    MDB_val k, v;
    int rc;

    /* the store's committed terms first (most of a publish's terms are
     * there), then this transaction's: an id in the store's cache stands
     * in any later transaction, as a sweep takes what it removes out of
     * it at once (older read transactions stop using it) */
    if (t->write || mdb_txn_id(t->txn) >= t->st->terms_epoch)
        e = tcache_find(&t->st->terms, h, enc, len);
    if (e == NULL)
        e = tcache_find(&t->cache, h, enc, len);
    if (e != NULL) {
        *id = e->id;
        goto done;
    }
    rc = lookup_enc(t, h, enc, len, id);
    if (rc == 0) {
        if (t->write) {
            tcache_add(&t->cache, h, take_enc ? enc : ic_strndup(enc, len), len,
                       *id, false);
            return 0;
        }
        goto done;
    }
    if (rc != IC_ENOTFOUND || !create)
        goto fail;
    if (!t->write) {
        rc = IC_EREADONLY;
        goto fail;
    }
    if (tag == IC_TAG_DICT) {
        *id = IC_ID_MAKE(IC_TAG_DICT, t->next_id);
        t->next_id++;
        t->dirty_counter = true;
    } else {
        rc = alloc_ordered(t, tag, okey, id);
        if (rc != 0)
            goto fail;
    }
    ic_store__be64(kb, *id);
    k.mv_size = 8;
    k.mv_data = kb;
    v.mv_size = len;
    v.mv_data = enc;
    rc = ic_store__mdb_err(mdb_put(t->txn, t->st->dbi[DBI_ID2TERM], &k, &v,
                                   tag == IC_TAG_DICT ? MDB_APPEND : 0));
    if (rc != 0)
        goto fail;
    tcache_add(&t->cache, h, take_enc ? enc : ic_strndup(enc, len), len, *id,
               true);
    return 0;

done:
    if (take_enc)
        ic_free(enc);
    return 0;
fail:
    if (take_enc)
        ic_free(enc);
    return rc;
}

int ic_store_term_id(struct ic_txn *t,
                     const struct ic_term *term,
                     bool create,
                     uint64_t *id)
{
    size_t len;
    uint64_t tag = 0, okey = 0, inl = 0;
    int rc;

    rc = ic_store__term_encode(term, &t->scratch, &t->scratch_cap, &len, &tag,
                               &okey, &inl);
    if (rc != 0)
        return rc;
    if (len == 0) {
        *id = inl;
        return 0;
    }
    return ic_store__term_id_enc(t, t->scratch, len, tag, okey, create, false,
                                 id);
}

int ic_store_term_get(struct ic_txn *t,
                      uint64_t id,
                      struct ic_term *out,
                      char *buf)
{
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    int rc;

    (void)buf;
    if (IC_ID_TAG(id) == IC_TAG_BOOL) {
        memset(out, 0, sizeof *out);
        out->kind = IC_TERM_LITERAL;
        out->value = (id & 1) ? "true" : "false";
        out->len = strlen(out->value);
        out->datatype = IC_XSD "boolean";
        return 0;
    }
    ic_store__be64(kb, id);
    rc = mdb_get(t->txn, t->st->dbi[DBI_ID2TERM], &k, &v);
    if (rc != 0)
        return ic_store__mdb_err(rc);
    return ic_store__term_decode(v.mv_data, v.mv_size, out);
}
