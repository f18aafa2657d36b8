/*
 * delegation.h - delegation of parts of the catalog to Intercloud
 * Exchanges, like DNS delegation (DESIGN.md decision 9, docs/protocol.md
 * "Delegation"). Private to node/.
 *
 * A delegation record says: the scope (attribute A = value V, as a
 * constraint query names it) is served by exchange JID X, answers may be
 * kept TTL seconds, and X's certificate has fingerprint F. Records live in
 * kv.delegations, written through Raft like every replicated datum:
 *
 *   key    canonical attribute | 0x00 | value
 *   value  "1" 0x00 attribute 0x00 value 0x00 exchange 0x00 ttl 0x00
 *          fingerprint            (texts; the "1" is the layout version)
 *
 * where the canonical attribute is the IRI of the attribute-map resource
 * (ontology/constraints.ttl) the name stands for, so "availabilityQuanity"
 * and "availabilityQuantity" name one scope; the attribute and value are
 * trimmed of white space, as the constraint query trims them.
 *
 * delegation.c: records, their XML, the admin commands and the lookup of
 * the delegations a query concerns. delegation_resolve.c: the recursive
 * resolution (forwarding to the exchanges, merging, caching, the hop
 * limit), behind a seam (struct ic_deleg_seam) the unit tests replace.
 */
#ifndef IC_NODE_DELEGATION_H
#define IC_NODE_DELEGATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ic_node.h"
#include "ic_store.h"
#include "ic_xmpp.h"

#define IC_DELEG_TTL_MIN 1
#define IC_DELEG_TTL_MAX 604800 /* one week */
/* Hops a recursive request may still travel when it carries none, and
 * the most a request may ask for (more is lowered to it). */
#define IC_DELEG_HOPS_DEFAULT 8
#define IC_DELEG_HOPS_MAX 16
#define IC_DELEG_TIMEOUT_MS 3000 /* per exchange */
#define IC_DELEG_CACHE_MAX 1024  /* answers kept; the oldest go first */
#define IC_DELEG_NAMES_MAX 10000 /* cloud names taken from one answer */
#define IC_DELEG_KEY_MAX 511     /* LMDB's key limit */

/* One delegation record. Strings owned (ic_node__deleg_clear). */
struct ic_deleg {
    char *attribute;   /* as given, trimmed */
    char *value;       /* trimmed */
    char *exchange;    /* the exchange's JID, prepared */
    uint32_t ttl;      /* seconds, IC_DELEG_TTL_MIN..MAX */
    char *fingerprint; /* "sha256:" and 64 lower-case hex digits, or NULL */
};

void ic_node__deleg_clear(struct ic_deleg *d);

/* Reads <delegation xmlns=resOntology> X into *D: attribute and value
 * always; with FULL also exchange, ttl and the optional fingerprint,
 * checked (a valid JID, a TTL in range, a well-formed fingerprint).
 * IC_EVALUE with ERR naming the fault; *D is then left cleared. */
int ic_node__deleg_from_xml(const struct ic_xml *x,
                            bool full,
                            struct ic_deleg *d,
                            char *err,
                            size_t err_len);
/* <delegation> with every field of D. */
struct ic_xml *ic_node__deleg_to_xml(const struct ic_deleg *d);

/* The canonical name of attribute ATTRIBUTE (trimmed here) in T: the
 * attribute-map resource's IRI, into BUF. IC_EUNKNOWN for an unknown
 * attribute, IC_ELIMIT when BUF is too small. */
int ic_node__deleg_attr_canon(struct ic_txn *t,
                              const char *attribute,
                              char *buf,
                              size_t len);
/* The record key of (ATTRIBUTE, VALUE) into KEY (IC_DELEG_KEY_MAX + 1
 * bytes: the key then a NUL), *KEY_LEN its length. IC_EUNKNOWN (unknown
 * attribute), IC_ELIMIT (too long for a key). */
int ic_node__deleg_key(struct ic_txn *t,
                       const char *attribute,
                       const char *value,
                       char *key,
                       size_t *key_len);
/* The key of the stored record of scope (WANT->attribute, WANT->value)
 * into KEY (IC_DELEG_KEY_MAX bytes) and *N: by the attribute's canonical
 * name, or, when the attribute has left the attribute map, by a record
 * with that very attribute and value text. IC_ENOTFOUND when none. */
int ic_node__deleg_find(struct ic_txn *t,
                        const struct ic_deleg *want,
                        char *key,
                        size_t *n);
/* The stored form of D; the caller frees. */
char *ic_node__deleg_encode(const struct ic_deleg *d, size_t *len);
/* Decodes a stored value into *D (copies). IC_ECORRUPT for a bad one. */
int ic_node__deleg_decode(struct ic_kv val, struct ic_deleg *d);

/* A referral: an exchange a query is sent to. */
struct ic_deleg_ref {
    char *exchange;
    uint32_t ttl;
};

struct ic_deleg_refs {
    struct ic_deleg_ref *v;
    size_t n;
};

void ic_node__deleg_refs_free(struct ic_deleg_refs *r);
/* Adds (EXCHANGE, TTL) unless EXCHANGE is there already (then the smaller
 * TTL is kept). */
void ic_node__deleg_refs_add(struct ic_deleg_refs *r,
                             const char *exchange,
                             uint32_t ttl);

/* The delegations the N constraints C fall in (a constraint with the
 * attribute and value of a record, after trimming and attribute-name
 * resolution), one referral per exchange, into *OUT; and, when CANON is
 * not NULL and there is one, the canonical form of the constraint set
 * (the cache's key: the pairs canonical, sorted) into *CANON (the caller
 * frees). With no delegation at all this costs one key/value read. */
int ic_node__deleg_concerned(struct ic_txn *t,
                             const struct ic_constraint *c,
                             size_t n,
                             struct ic_deleg_refs *out,
                             char **canon);

/* ---- recursion (delegation_resolve.c) ---------------------------------- */

/* The seam to the network and the clock. SEND sends IQ (taken) and calls
 * CB exactly once with the answer (borrowed), an error answer, or NULL on
 * timeout, as ic_xmpp_component_iq does; it returns 0, or an error, and
 * then CB never runs (the exchange counts as failed). NOW_MS is a
 * monotonic clock in milliseconds. */
struct ic_deleg_seam {
    int (*send)(void *ctx,
                struct ic_xml *iq,
                unsigned timeout_ms,
                ic_xmpp_iq_cb cb,
                void *arg);
    uint64_t (*now_ms)(void *ctx);
    void *ctx;
    unsigned timeout_ms; /* 0: IC_DELEG_TIMEOUT_MS */
};

struct ic_deleg_resolver;

/* A resolver with its own answer cache, for the node whose domain is
 * DOMAIN (names "x@DOMAIN" in an exchange's answer are this node's own
 * clouds, come back by a loop, and are dropped). */
struct ic_deleg_resolver *
ic_node__deleg_resolver_new(const struct ic_deleg_seam *seam,
                            const char *domain);
/* Frees the resolver; no resolution may be in flight. NULL: no-op. */
void ic_node__deleg_resolver_free(struct ic_deleg_resolver *rs);

/* What a query found locally and what it asks for. Everything is copied
 * by ic_node__deleg_resolve. */
struct ic_deleg_query {
    const struct ic_constraint *c; /* the constraints, as received */
    size_t n;
    const char *canon;                /* their canonical set (cache key) */
    char *const *local;               /* the local matches, sorted */
    size_t nlocal;                    /* ... and their number */
    const struct ic_deleg_refs *refs; /* the delegations concerned */
    bool recursive;                   /* recursive='true' */
    unsigned hops;                    /* hops the request may still travel */
};

/* The <iodata type='output'> of the answer (taken by DONE). */
typedef void (*ic_deleg_done_fn)(void *arg, struct ic_xml *iodata);

/* Answers Q through DONE, exactly once, now or later: the local matches
 * and, for each delegation concerned, a referral; with Q->recursive the
 * exchanges are asked first (from the cache when it holds a fresh
 * answer), their clouds merged in as "name@domain" and their referrals
 * dropped; an exchange that fails or times out stays a referral and the
 * output gets <partial/>, as does a request whose hops are spent. */
void ic_node__deleg_resolve(struct ic_deleg_resolver *rs,
                            const struct ic_deleg_query *q,
                            ic_deleg_done_fn done,
                            void *arg);

/* The number of cached answers (for the tests). */
size_t ic_node__deleg_cache_size(const struct ic_deleg_resolver *rs);

/* "D" of the naming rule: the exchange JID's domain without a leading
 * "service." label; the caller frees. */
char *ic_node__deleg_domain_of(const char *exchange);

/* The certificate pinned for S2S DOMAIN: the fingerprint of a delegation
 * whose exchange JID is in DOMAIN (or in service.DOMAIN) into OUT. Read
 * when a stream to or from DOMAIN authenticates (ic_xmpp_ops.s2s_pin). */
bool ic_node__deleg_pin(struct ic_store *st, const char *domain, char out[72]);

#endif /* IC_NODE_DELEGATION_H */
