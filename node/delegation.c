/*
 * delegation.c - delegation records (delegation.h): their XML, their
 * stored form, the lookup of the delegations a query falls in, and the
 * admin commands of the catalog service (docs/protocol.md):
 *
 *   add_delegation     puts a record (replacing one of the same scope)
 *   remove_delegation  removes one; item-not-found when there is none
 *   list_delegations   every record, in key order
 *
 * The three are admin-only (the framework refuses others); the two
 * writes go through the cluster (Raft) from any node.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "delegation.h"
#include "service.h"

#define ICQ "http://www.csp/resOntology/constraints#"
#define FP_PREFIX "sha256:"

void ic_node__deleg_clear(struct ic_deleg *d)
{
    ic_free(d->attribute);
    ic_free(d->value);
    ic_free(d->exchange);
    ic_free(d->fingerprint);
    memset(d, 0, sizeof *d);
}

/* S trimmed of white space, as a new string. */
static char *trimmed(const char *s, size_t len)
{
    while (len > 0 && isspace((unsigned char)s[0])) {
        s++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    return ic_strndup(s, len);
}

/* The trimmed text of X's child NAME, or NULL when it is absent. */
static char *child_text(const struct ic_xml *x, const char *name)
{
    const struct ic_xml *c = ic_xml_child(x, name, NS_RES);
    char *raw, *t;

    if (c == NULL)
        return NULL;
    raw = ic_xml_text(c);
    t = trimmed(raw, strlen(raw));
    ic_free(raw);
    return t;
}

static int parse_ttl(const char *s, uint32_t *ttl)
{
    unsigned long v = 0;
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (!isdigit((unsigned char)s[i]) || i >= 7)
            return IC_EVALUE;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (i == 0 || v < IC_DELEG_TTL_MIN || v > IC_DELEG_TTL_MAX)
        return IC_EVALUE;
    *ttl = (uint32_t)v;
    return 0;
}

/* "sha256:" and 64 hex digits, into lower case in place. */
static int check_fingerprint(char *s)
{
    size_t n = strlen(FP_PREFIX);

    if (strncmp(s, FP_PREFIX, n) != 0 || strlen(s) != n + 64)
        return IC_EVALUE;
    for (char *p = s + n; *p != '\0'; p++) {
        if (!isxdigit((unsigned char)*p))
            return IC_EVALUE;
        *p = (char)tolower((unsigned char)*p);
    }
    return 0;
}

/* The exchange's JID, prepared, into *OUT. */
static int check_jid(const char *s, char **out)
{
    struct ic_jid j;

    if (s[0] == '\0' || ic_jid_parse(s, &j) != 0)
        return IC_EVALUE;
    *out = ic_jid_to_string(&j);
    ic_jid_free(&j);
    return 0;
}

static int full_fields(const struct ic_xml *x,
                       struct ic_deleg *d,
                       char *err,
                       size_t err_len)
{
    char *ex = child_text(x, "exchange"), *ttl = child_text(x, "ttl");
    int rc = IC_EVALUE;

    d->fingerprint = child_text(x, "fingerprint");
    if (ex == NULL || ttl == NULL)
        snprintf(err, err_len, "a <delegation> needs <%s>",
                 ex == NULL ? "exchange" : "ttl");
    else if (check_jid(ex, &d->exchange) != 0)
        snprintf(err, err_len, "exchange '%.200s' is not a valid JID", ex);
    else if (parse_ttl(ttl, &d->ttl) != 0)
        snprintf(err, err_len,
                 "ttl '%.40s' is not a number of seconds in %d..%d", ttl,
                 IC_DELEG_TTL_MIN, IC_DELEG_TTL_MAX);
    else if (d->fingerprint != NULL && check_fingerprint(d->fingerprint) != 0)
        snprintf(err, err_len,
                 "fingerprint '%.100s' is not sha256: and 64 hex digits",
                 d->fingerprint);
    else
        rc = 0;
    ic_free(ex);
    ic_free(ttl);
    return rc;
}

int ic_node__deleg_from_xml(const struct ic_xml *x,
                            bool full,
                            struct ic_deleg *d,
                            char *err,
                            size_t err_len)
{
    int rc = 0;

    memset(d, 0, sizeof *d);
    if (x == NULL) {
        snprintf(err, err_len, "no <delegation xmlns='" NS_RES "'> input");
        return IC_EVALUE;
    }
    d->attribute = child_text(x, "attribute");
    d->value = child_text(x, "value");
    if (d->attribute == NULL || d->attribute[0] == '\0' || d->value == NULL ||
        d->value[0] == '\0') {
        snprintf(err, err_len, "a <delegation> needs a non-empty <%s>",
                 d->attribute == NULL || d->attribute[0] == '\0' ? "attribute"
                                                                 : "value");
        rc = IC_EVALUE;
    } else if (strlen(d->attribute) > IC_CONSTRAINT_TEXT_MAX ||
               strlen(d->value) > IC_CONSTRAINT_TEXT_MAX) {
        snprintf(err, err_len, "text longer than %d bytes",
                 IC_CONSTRAINT_TEXT_MAX);
        rc = IC_EVALUE;
    } else if (full) {
        rc = full_fields(x, d, err, err_len);
    }
    if (rc != 0)
        ic_node__deleg_clear(d);
    return rc;
}

static void add_text(struct ic_xml *parent, const char *name, const char *v)
{
    ic_xml_add_text(ic_xml_add(parent, name, NULL), v, strlen(v));
}

struct ic_xml *ic_node__deleg_to_xml(const struct ic_deleg *d)
{
    struct ic_xml *x = ic_xml_new("delegation", NS_RES);
    char ttl[16];

    snprintf(ttl, sizeof ttl, "%u", (unsigned)d->ttl);
    add_text(x, "attribute", d->attribute);
    add_text(x, "value", d->value);
    add_text(x, "exchange", d->exchange);
    add_text(x, "ttl", ttl);
    if (d->fingerprint != NULL)
        add_text(x, "fingerprint", d->fingerprint);
    return x;
}

/* ---- keys and the stored form ------------------------------------------ */

int ic_node__deleg_attr_canon(struct ic_txn *t,
                              const char *attribute,
                              char *buf,
                              size_t len)
{
    char *name = trimmed(attribute, strlen(attribute)), tbuf[64];
    struct ic_term nt = ic_term_iri(ICQ "name"),
                   lt = ic_term_literal(name, NULL);
    uint64_t pat[4] = {0}, q[4];
    struct ic_store_iter *it = NULL;
    struct ic_term subj;
    int rc = ic_store_term_id(t, &nt, false, &pat[1]);

    if (rc == 0)
        rc = ic_store_term_id(t, &lt, false, &pat[2]);
    if (rc == 0)
        rc = ic_store_iter_new(t, pat, &it);
    if (rc == 0)
        rc = ic_store_iter_next(it, q);
    if (rc == 0)
        rc = ic_store_term_get(t, q[0], &subj, tbuf);
    if (rc == IC_ENOTFOUND || rc == IC_EEND)
        rc = IC_EUNKNOWN;
    if (rc == 0 && subj.len >= len)
        rc = IC_ELIMIT;
    if (rc == 0) {
        memcpy(buf, subj.value, subj.len);
        buf[subj.len] = '\0';
    }
    ic_store_iter_free(it);
    ic_free(name);
    return rc;
}

int ic_node__deleg_key(struct ic_txn *t,
                       const char *attribute,
                       const char *value,
                       char *key,
                       size_t *key_len)
{
    char *v = trimmed(value, strlen(value));
    size_t a, n = strlen(v);
    int rc = ic_node__deleg_attr_canon(t, attribute, key, IC_DELEG_KEY_MAX);

    if (rc == 0) {
        a = strlen(key);
        if (a + 1 + n > IC_DELEG_KEY_MAX) {
            rc = IC_ELIMIT;
        } else {
            key[a] = '\0';
            memcpy(key + a + 1, v, n);
            key[a + 1 + n] = '\0';
            *key_len = a + 1 + n;
        }
    }
    ic_free(v);
    return rc;
}

char *ic_node__deleg_encode(const struct ic_deleg *d, size_t *len)
{
    const char *f[] = {"1",      d->attribute,
                       d->value, d->exchange,
                       NULL,     d->fingerprint ? d->fingerprint : ""};
    char ttl[16], *out, *p;
    size_t n = 0;

    snprintf(ttl, sizeof ttl, "%u", (unsigned)d->ttl);
    f[4] = ttl;
    for (size_t i = 0; i < IC_ARRAY_LEN(f); i++)
        n += strlen(f[i]) + 1;
    p = out = ic_malloc(n);
    for (size_t i = 0; i < IC_ARRAY_LEN(f); i++) {
        size_t m = strlen(f[i]);
        memcpy(p, f[i], m);
        p += m;
        *p++ = '\0';
    }
    *len = n - 1; /* the last field ends where the value does */
    return out;
}

int ic_node__deleg_decode(struct ic_kv val, struct ic_deleg *d)
{
    const char *p = val.data, *end = p + val.len;
    char *f[6];
    size_t nf = 0;

    memset(d, 0, sizeof *d);
    while (nf < IC_ARRAY_LEN(f)) {
        const char *z = memchr(p, '\0', (size_t)(end - p));
        size_t m = z ? (size_t)(z - p) : (size_t)(end - p);
        f[nf++] = ic_strndup(p, m);
        if (z == NULL)
            break;
        p = z + 1;
    }
    if (nf == IC_ARRAY_LEN(f) && strcmp(f[0], "1") == 0 &&
        parse_ttl(f[4], &d->ttl) == 0) {
        d->attribute = f[1];
        d->value = f[2];
        d->exchange = f[3];
        d->fingerprint = f[5][0] != '\0' ? f[5] : NULL;
        if (d->fingerprint == NULL)
            ic_free(f[5]);
        ic_free(f[0]);
        ic_free(f[4]);
        return 0;
    }
    for (size_t i = 0; i < nf; i++)
        ic_free(f[i]);
    memset(d, 0, sizeof *d);
    return IC_ECORRUPT;
}

/* ---- the delegations a query concerns ---------------------------------- */

void ic_node__deleg_refs_free(struct ic_deleg_refs *r)
{
    for (size_t i = 0; i < r->n; i++)
        ic_free(r->v[i].exchange);
    ic_free(r->v);
    r->v = NULL;
    r->n = 0;
}

void ic_node__deleg_refs_add(struct ic_deleg_refs *r,
                             const char *exchange,
                             uint32_t ttl)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->v[i].exchange, exchange) == 0) {
            if (ttl < r->v[i].ttl)
                r->v[i].ttl = ttl;
            return;
        }
    r->v = ic_realloc(r->v, (r->n + 1) * sizeof *r->v);
    r->v[r->n].exchange = ic_strdup(exchange);
    r->v[r->n].ttl = ttl;
    r->n++;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The canonical constraint set: "ATTR-IRI\x1fVALUE" per constraint,
 * sorted, joined by "\x1e". KEYS[i] hold the record keys. */
static char *canon_set(char **keys, size_t n)
{
    size_t len = 1;
    char *s, *p;

    qsort(keys, n, sizeof *keys, cmp_str);
    for (size_t i = 0; i < n; i++)
        len += strlen(keys[i]) + 1;
    p = s = ic_malloc(len);
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%s", i ? "\x1e" : "", keys[i]);
    *p = '\0';
    return s;
}

/* The record of one constraint, added to OUT; its key (with 0x1f for the
 * 0x00) into *KEYSTR when found or not. */
static int concerned_one(struct ic_txn *t,
                         const struct ic_constraint *c,
                         struct ic_deleg_refs *out,
                         char **keystr)
{
    char key[IC_DELEG_KEY_MAX + 1];
    struct ic_kv val;
    struct ic_deleg d;
    size_t n;
    int rc = ic_node__deleg_key(t, c->attribute, c->value, key, &n);

    if (rc == IC_EUNKNOWN || rc == IC_ELIMIT) { /* never delegated */
        *keystr = ic_strdup("");
        return 0;
    }
    if (rc == 0)
        rc =
            ic_store_kv_get(t, IC_KV_DELEGATIONS, (struct ic_kv){key, n}, &val);
    if (rc == 0 && (rc = ic_node__deleg_decode(val, &d)) == 0) {
        ic_node__deleg_refs_add(out, d.exchange, d.ttl);
        ic_node__deleg_clear(&d);
    }
    /* a record this version cannot read delegates nothing here */
    if (rc == 0 || rc == IC_ENOTFOUND || rc == IC_ECORRUPT) {
        key[strlen(key)] = '\x1f';
        *keystr = ic_strndup(key, n);
        rc = 0;
    }
    return rc;
}

int ic_node__deleg_concerned(struct ic_txn *t,
                             const struct ic_constraint *c,
                             size_t n,
                             struct ic_deleg_refs *out,
                             char **canon)
{
    struct ic_kv none = {NULL, 0}, k, v;
    char **keys;
    size_t nk = 0;
    int rc = ic_store_kv_next(t, IC_KV_DELEGATIONS, none, &k, &v);

    out->v = NULL;
    out->n = 0;
    if (canon != NULL)
        *canon = NULL;
    if (rc == IC_EEND)
        return 0;
    if (rc != 0)
        return rc;
    keys = ic_calloc(n + 1, sizeof *keys);
    for (; nk < n && rc == 0; nk++)
        rc = concerned_one(t, &c[nk], out, &keys[nk]);
    if (rc == 0 && canon != NULL && out->n > 0)
        *canon = canon_set(keys, nk);
    for (size_t i = 0; i < nk; i++)
        ic_free(keys[i]);
    ic_free(keys);
    if (rc != 0)
        ic_node__deleg_refs_free(out);
    return rc;
}

/* ---- admin commands ------------------------------------------------------ */

static void bad(struct ic_adhoc_req *r, const char *text)
{
    ic_adhoc_fail(r, "modify", "bad-request", text);
}

static void internal(struct ic_adhoc_req *r, int rc)
{
    ic_adhoc_fail(r, "wait", "internal-server-error", ic_strerror(rc));
}

/* Checks D's attribute and value as the query would read them (an unknown
 * attribute or a value that does not parse is refused) and gives its key. */
static int checked_key(struct ic_node_service *svc,
                       const struct ic_deleg *d,
                       char *key,
                       size_t *n,
                       char *err,
                       size_t err_len)
{
    struct ic_constraint c = {d->attribute, d->value};
    struct ic_match_result res = {0};
    struct ic_txn *t;
    int rc = ic_store_txn_begin(svc->st, false, &t);

    if (rc != 0)
        return rc;
    rc = ic_node__deleg_key(t, d->attribute, d->value, key, n);
    if (rc == IC_EUNKNOWN)
        snprintf(err, err_len, "unknown attribute '%.200s'", d->attribute);
    else if (rc == IC_ELIMIT)
        snprintf(err, err_len, "attribute and value too long for a scope");
    if (rc == 0) {
        rc = ic_store_match(t, &c, 1, &res);
        if (rc == IC_EUNKNOWN || rc == IC_EVALUE)
            snprintf(err, err_len, "%s", res.error);
        ic_match_result_free(&res);
    }
    ic_store_txn_abort(t);
    return rc;
}

void ic_node__svc_add_delegation(void *data, struct ic_adhoc_req *r)
{
    struct ic_node_service *svc = data;
    const struct ic_xml *x = ic_node__svc_input(r, "delegation", NS_RES);
    char err[512] = "", key[IC_DELEG_KEY_MAX + 1], *val;
    struct ic_raft_op op = {0};
    struct ic_deleg d;
    size_t klen, vlen;
    int rc = ic_node__deleg_from_xml(x, true, &d, err, sizeof err);

    if (rc != 0) {
        bad(r, err);
        return;
    }
    rc = checked_key(svc, &d, key, &klen, err, sizeof err);
    if (rc == IC_EUNKNOWN || rc == IC_EVALUE || rc == IC_ELIMIT) {
        bad(r, err);
    } else if (rc != 0) {
        internal(r, rc);
    } else {
        val = ic_node__deleg_encode(&d, &vlen);
        op.type = IC_RAFT_OP_KV_PUT;
        op.kv.db = IC_KV_DELEGATIONS;
        op.kv.key = (struct ic_kv){key, klen};
        op.kv.val = (struct ic_kv){val, vlen};
        ic_node__svc_write_op(svc, r, &op, "done");
        ic_free(val);
    }
    ic_node__deleg_clear(&d);
}

int ic_node__deleg_find(struct ic_txn *t,
                        const struct ic_deleg *want,
                        char *key,
                        size_t *n)
{
    struct ic_kv after = {NULL, 0}, k, v;
    struct ic_deleg d;
    int rc = ic_node__deleg_key(t, want->attribute, want->value, key, n);

    if (rc == 0)
        return ic_store_kv_get(t, IC_KV_DELEGATIONS, (struct ic_kv){key, *n},
                               &v);
    if (rc != IC_EUNKNOWN && rc != IC_ELIMIT)
        return rc;
    while ((rc = ic_store_kv_next(t, IC_KV_DELEGATIONS, after, &k, &v)) == 0) {
        bool same = false;
        after = k;
        if (ic_node__deleg_decode(v, &d) == 0) {
            same = strcmp(d.attribute, want->attribute) == 0 &&
                   strcmp(d.value, want->value) == 0;
            ic_node__deleg_clear(&d);
        }
        if (same && k.len <= IC_DELEG_KEY_MAX) {
            memcpy(key, k.data, k.len);
            *n = k.len;
            return 0;
        }
    }
    return rc == IC_EEND ? IC_ENOTFOUND : rc;
}

void ic_node__svc_remove_delegation(void *data, struct ic_adhoc_req *r)
{
    struct ic_node_service *svc = data;
    const struct ic_xml *x = ic_node__svc_input(r, "delegation", NS_RES);
    char err[512] = "", key[IC_DELEG_KEY_MAX + 1];
    struct ic_raft_op op = {0};
    struct ic_txn *t;
    struct ic_deleg d;
    size_t klen = 0;
    int rc = ic_node__deleg_from_xml(x, false, &d, err, sizeof err);

    if (rc != 0) {
        bad(r, err);
        return;
    }
    rc = ic_store_txn_begin(svc->st, false, &t);
    if (rc == 0) {
        rc = ic_node__deleg_find(t, &d, key, &klen);
        ic_store_txn_abort(t);
    }
    if (rc == IC_ENOTFOUND) {
        ic_adhoc_fail(r, "cancel", "item-not-found", "no such delegation");
    } else if (rc != 0) {
        internal(r, rc);
    } else {
        op.type = IC_RAFT_OP_KV_DEL;
        op.kv.db = IC_KV_DELEGATIONS;
        op.kv.key = (struct ic_kv){key, klen};
        ic_node__svc_write_op(svc, r, &op, "done");
    }
    ic_node__deleg_clear(&d);
}

void ic_node__svc_list_delegations(void *data, struct ic_adhoc_req *r)
{
    struct ic_node_service *svc = data;
    struct ic_xml *io = ic_node__svc_output(NULL);
    struct ic_xml *out = ic_xml_child(io, "out", NS_IODATA);
    struct ic_kv after = {NULL, 0}, k, v;
    struct ic_deleg d;
    struct ic_txn *t = NULL;
    int rc = ic_store_txn_begin(svc->st, false, &t);

    while (rc == 0 &&
           (rc = ic_store_kv_next(t, IC_KV_DELEGATIONS, after, &k, &v)) == 0) {
        after = k;
        if (ic_node__deleg_decode(v, &d) != 0)
            continue; /* not ours to show; the others are */
        ic_xml_append(out, ic_node__deleg_to_xml(&d));
        ic_node__deleg_clear(&d);
    }
    if (t != NULL)
        ic_store_txn_abort(t);
    if (rc != IC_EEND) {
        ic_xml_free(io);
        internal(r, rc);
        return;
    }
    ic_adhoc_done(r, io, NULL, NULL);
}

/* The domain an exchange JID's S2S streams use, and the one its clouds are
 * named after (without a leading "service." label). */
static bool jid_domain_is(const char *jid, const char *domain)
{
    const char *d = strchr(jid, '@');
    size_t n;

    d = d ? d + 1 : jid;
    n = strcspn(d, "/");
    if (strlen(domain) == n && strncasecmp(d, domain, n) == 0)
        return true;
    return n > 8 && strncasecmp(d, "service.", 8) == 0 &&
           strlen(domain) == n - 8 && strncasecmp(d + 8, domain, n - 8) == 0;
}

bool ic_node__deleg_pin(struct ic_store *st, const char *domain, char out[72])
{
    struct ic_kv after = {NULL, 0}, k, v;
    struct ic_txn *t = NULL;
    struct ic_deleg d;
    bool found = false;
    int rc = ic_store_txn_begin(st, false, &t);

    while (rc == 0 && !found &&
           (rc = ic_store_kv_next(t, IC_KV_DELEGATIONS, after, &k, &v)) == 0) {
        after = k;
        if (ic_node__deleg_decode(v, &d) != 0)
            continue;
        if (d.fingerprint != NULL && jid_domain_is(d.exchange, domain) &&
            strlen(d.fingerprint) < 72) {
            strcpy(out, d.fingerprint);
            found = true;
        }
        ic_node__deleg_clear(&d);
    }
    if (t != NULL)
        ic_store_txn_abort(t);
    return found;
}
