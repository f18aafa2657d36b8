/*
 * fsm_presence.c - the state machine's presence operations: PRESENCE_BATCH
 * and NODE_LEASE applied to the store's presence registry and node leases
 * (ic_store.h), with the list of changes each made for the observer.
 *
 * Happy path: a batch whose (node, incarnation) is the node's current,
 * unrevoked lease sets or removes each JID's entry in order; START records
 * a newer incarnation and drops the node's older entries; REVOKE drops the
 * current incarnation's entries and marks it revoked. Either, when it
 * ends a live lease, lists a lease-end marker after the dropped entries.
 *
 * Failure modes: a batch of a stale incarnation, or a START of an older or
 * revoked one, is the business failure IC_ELEASE (the caller's nested
 * transaction is aborted and the changes listed so far are cleared);
 * store errors are returned as they are. Nothing here reads a clock: every
 * replica decides the same.
 */
#include <stdio.h>
#include <string.h>

#include "raft_int.h"

void ic_raft__changes_clear(struct ic_raft__changes *c)
{
    for (size_t i = 0; i < c->n; i++)
        ic_free((char *)c->v[i].jid);
    c->n = 0;
}

void ic_raft__changes_free(struct ic_raft__changes *c)
{
    ic_raft__changes_clear(c);
    ic_free(c->v);
    c->v = NULL;
    c->cap = 0;
}

/* Appends a change; JID is copied, PAYLOAD is not (it points into the
 * entry being applied, which outlives the observer's call). */
static void change_add(struct ic_raft__changes *c,
                       const void *jid,
                       size_t jid_len,
                       uint16_t node,
                       uint64_t incarnation,
                       const struct ic_kv *payload)
{
    struct ic_raft_presence_change *ch;

    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->v = ic_realloc(c->v, c->cap * sizeof *c->v);
    }
    ch = &c->v[c->n++];
    ch->jid = ic_strndup(jid, jid_len);
    ch->node = node;
    ch->incarnation = incarnation;
    ch->available = payload != NULL;
    ch->lease_end = false;
    ch->payload = payload != NULL ? payload->data : NULL;
    ch->payload_len = payload != NULL ? payload->len : 0;
}

/* NODE's live lease INCARNATION ends: the marker change (ic_raft.h). */
static void
lease_end_add(struct ic_raft__changes *c, uint16_t node, uint64_t incarnation)
{
    change_add(c, "", 0, node, incarnation, NULL);
    c->v[c->n - 1].lease_end = true;
}

/* ic_store_presence_drop's callback: the entry goes unavailable. */
static int on_dropped(void *data, const struct ic_store_presence *p)
{
    change_add(data, p->jid.data, p->jid.len, p->node, p->incarnation, NULL);
    return 0;
}

static int stale(char *msg,
                 uint16_t node,
                 uint64_t incarnation,
                 const struct ic_store_lease *cur,
                 bool known)
{
    if (!known)
        snprintf(msg, 256,
                 "stale incarnation: node %u incarnation %llu never started",
                 (unsigned)node, (unsigned long long)incarnation);
    else
        snprintf(msg, 256,
                 "stale incarnation: node %u incarnation %llu is not current "
                 "(current %llu%s)",
                 (unsigned)node, (unsigned long long)incarnation,
                 (unsigned long long)cur->incarnation,
                 cur->revoked ? ", revoked" : "");
    return IC_ELEASE;
}

/* Node NODE's lease into *L; *KNOWN false (and 0) when it has none. */
static int
lease_of(struct ic_txn *t, uint16_t node, struct ic_store_lease *l, bool *known)
{
    int rc = ic_store_lease_get(t, node, l);

    *known = rc == 0;
    if (rc == IC_ENOTFOUND) {
        l->incarnation = 0;
        l->revoked = false;
        return 0;
    }
    return rc;
}

static int item_run(struct ic_txn *t,
                    const struct ic_raft_presence *b,
                    const struct ic_raft_presence_item *it,
                    struct ic_raft__changes *ch)
{
    struct ic_kv jid = {it->jid, strlen(it->jid)};
    struct ic_store_presence p;
    int rc;

    if (it->available) {
        p.jid = jid;
        p.node = b->node;
        p.incarnation = b->incarnation;
        p.payload = it->payload;
        rc = ic_store_presence_put(t, &p);
        if (rc == 0)
            change_add(ch, jid.data, jid.len, b->node, b->incarnation,
                       &it->payload);
        return rc;
    }
    rc = ic_store_presence_get(t, jid, &p);
    if (rc == IC_ENOTFOUND || (rc == 0 && p.node != b->node))
        return 0; /* not this node's: nothing to remove */
    if (rc == 0)
        rc = ic_store_presence_del(t, jid);
    if (rc == 0)
        change_add(ch, jid.data, jid.len, b->node, b->incarnation, NULL);
    return rc;
}

static int batch_run(struct ic_txn *t,
                     const struct ic_raft_presence *b,
                     struct ic_raft__changes *ch,
                     char *msg)
{
    struct ic_store_lease l;
    bool known;
    int rc = lease_of(t, b->node, &l, &known);

    if (rc != 0)
        return rc;
    if (!known || l.revoked || l.incarnation != b->incarnation)
        return stale(msg, b->node, b->incarnation, &l, known);
    for (size_t i = 0; i < b->n_items && rc == 0; i++)
        rc = item_run(t, b, &b->items[i], ch);
    return rc;
}

static int lease_run(struct ic_txn *t,
                     const struct ic_raft_lease *op,
                     struct ic_raft__changes *ch,
                     char *msg)
{
    struct ic_store_lease l;
    uint64_t ended;
    bool known;
    int rc = lease_of(t, op->node, &l, &known);

    if (rc != 0)
        return rc;
    if (op->action == IC_RAFT_LEASE_START) {
        if (op->incarnation < l.incarnation ||
            (op->incarnation == l.incarnation && l.revoked))
            return stale(msg, op->node, op->incarnation, &l, known);
        if (op->incarnation == l.incarnation)
            return 0; /* started already */
        ended = known && !l.revoked ? l.incarnation : 0;
        l.incarnation = op->incarnation;
        l.revoked = false;
        rc = ic_store_lease_put(t, op->node, &l);
        if (rc == 0)
            rc = ic_store_presence_drop(t, op->node, 0, op->incarnation - 1,
                                        on_dropped, ch, NULL);
        if (rc == 0 && ended != 0)
            lease_end_add(ch, op->node, ended);
        return rc;
    }
    if (!known || l.revoked || l.incarnation != op->incarnation)
        return 0; /* not current: nothing to revoke */
    l.revoked = true;
    rc = ic_store_lease_put(t, op->node, &l);
    if (rc == 0)
        rc = ic_store_presence_drop(t, op->node, op->incarnation,
                                    op->incarnation, on_dropped, ch, NULL);
    if (rc == 0)
        lease_end_add(ch, op->node, op->incarnation);
    return rc;
}

int ic_raft__presence_run(struct ic_txn *t,
                          const struct ic_raft_op *op,
                          struct ic_raft__changes *ch,
                          char *msg)
{
    if (op->type == IC_RAFT_OP_PRESENCE_BATCH)
        return batch_run(t, &op->presence, ch, msg);
    return lease_run(t, &op->lease, ch, msg);
}
