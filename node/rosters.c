/*
 * rosters.c - rosters in the store: one JSON record per user in kv.rosters
 * under the user's local part, an array of items {jid, name, sub, ask,
 * pending, groups}.
 *
 * In a cluster every change is a KV_UPDATE through Raft (update
 * IC_NODE_UPDATE_ROSTER): the change (an ic_roster_event, with name and
 * groups for SET) is applied by ic_roster_apply to the item as stored when
 * the entry is applied, so two nodes changing one user's roster at once
 * compose in log order instead of one overwriting the other. Until the
 * entry is applied here, reads of that roster see the store's record with
 * this node's changes in flight applied on top, so a user reads its own
 * writes and the others' committed ones.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "app.h"
#include "cluster.h"

#define IC_NODE_UPDATE_ROSTER 1 /* the raft KV_UPDATE id */

static const char *const subs[] = {"none", "to", "from", "both"};

/* ---- records ------------------------------------------------------------ */

static void item_from_json(json_t *it, struct ic_roster_item *r)
{
    const char *name = json_string_value(json_object_get(it, "name"));
    const char *sub = json_string_value(json_object_get(it, "sub"));
    json_t *groups = json_object_get(it, "groups"), *g;
    size_t j;

    memset(r, 0, sizeof *r);
    r->jid = ic_strdup(json_string_value(json_object_get(it, "jid")));
    r->name = name ? ic_strdup(name) : NULL;
    for (unsigned s = 0; sub != NULL && s < 4; s++)
        if (strcmp(sub, subs[s]) == 0)
            r->sub = (enum ic_sub)s;
    r->ask = json_is_true(json_object_get(it, "ask"));
    r->pending_in = json_is_true(json_object_get(it, "pending"));
    r->groups = ic_calloc(json_array_size(groups) + 1, sizeof *r->groups);
    json_array_foreach(groups, j, g) if (json_is_string(g))
        r->groups[r->ngroups++] = ic_strdup(json_string_value(g));
}

static json_t *item_json(const struct ic_roster_item *it)
{
    json_t *groups = json_array();

    for (size_t i = 0; i < it->ngroups; i++)
        json_array_append_new(groups, json_string(it->groups[i]));
    return json_pack("{s:s, s:s?, s:s, s:b, s:b, s:o}", "jid", it->jid, "name",
                     it->name, "sub", subs[it->sub & 3], "ask", it->ask,
                     "pending", it->pending_in, "groups", groups);
}

/* A change: {"c": contact, "e": event, "n": name, "g": [groups]}. */
static json_t *change_json(const char *contact,
                           enum ic_roster_event ev,
                           const struct ic_roster_item *fields)
{
    json_t *c = json_pack("{s:s, s:i}", "c", contact, "e", (int)ev);

    if (ev == IC_ROSTER_SET && fields != NULL) {
        json_t *g = json_array();
        if (fields->name != NULL)
            json_object_set_new(c, "n", json_string(fields->name));
        for (size_t i = 0; i < fields->ngroups; i++)
            json_array_append_new(g, json_string(fields->groups[i]));
        json_object_set_new(c, "g", g);
    }
    return c;
}

/* RECORD (an array; NULL: none) with CHANGE applied: a new array. */
static json_t *apply_change(json_t *record, json_t *change)
{
    const char *contact = json_string_value(json_object_get(change, "c"));
    json_int_t e = json_integer_value(json_object_get(change, "e"));
    struct ic_roster_item fields = {0}, it;
    json_t *out = json_array(), *x, *g;
    bool found = false;
    size_t i;

    fields.name = (char *)json_string_value(json_object_get(change, "n"));
    g = json_object_get(change, "g");
    fields.groups = ic_calloc(json_array_size(g) + 1, sizeof *fields.groups);
    json_array_foreach(g, i, x) if (json_is_string(x))
        fields.groups[fields.ngroups++] = (char *)json_string_value(x);
    json_array_foreach(record, i, x)
    {
        const char *jid = json_string_value(json_object_get(x, "jid"));
        if (jid == NULL || strcmp(jid, contact) != 0) {
            json_array_append(out, x);
            continue;
        }
        found = true;
        if (e == IC_ROSTER_REMOVE)
            continue;
        item_from_json(x, &it);
        ic_roster_apply(&it, (enum ic_roster_event)e, &fields);
        json_array_append_new(out, item_json(&it));
        ic_roster_item_free(&it);
    }
    if (!found && e != IC_ROSTER_REMOVE) {
        memset(&it, 0, sizeof it);
        it.jid = ic_strdup(contact);
        ic_roster_apply(&it, (enum ic_roster_event)e, &fields);
        json_array_append_new(out, item_json(&it));
        ic_roster_item_free(&it);
    }
    ic_free(fields.groups);
    return out;
}

/* The KV_UPDATE: run by the state machine on every node, deterministic. */
int ic_node__roster_update(const struct ic_kv *old,
                           struct ic_kv arg,
                           struct ic_kv *out)
{
    json_t *change = json_loadb(arg.data, arg.len, 0, NULL);
    json_t *record = old ? json_loadb(old->data, old->len, 0, NULL) : NULL;
    json_int_t e = json_integer_value(json_object_get(change, "e"));
    json_t *next;
    char *txt;

    if (change == NULL || !json_is_string(json_object_get(change, "c")) ||
        e < IC_ROSTER_SET || e > IC_ROSTER_EVENT_MAX ||
        (old != NULL && !json_is_array(record))) {
        json_decref(change);
        json_decref(record);
        return IC_EVALUE;
    }
    next = apply_change(record, change);
    json_decref(change);
    json_decref(record);
    out->data = NULL;
    out->len = 0;
    if (json_array_size(next) > 0) {
        txt = json_dumps(next, JSON_COMPACT);
        out->len = strlen(txt);
        out->data = ic_strdup(txt);
        free(txt);
    }
    json_decref(next);
    return 0;
}

char *ic_node__roster_change(const char *contact,
                             enum ic_roster_event ev,
                             const struct ic_roster_item *fields)
{
    json_t *c = change_json(contact, ev, fields);
    char *txt = json_dumps(c, JSON_COMPACT), *out = ic_strdup(txt);

    free(txt);
    json_decref(c);
    return out;
}

/* ---- the engine's ops --------------------------------------------------- */

/* USER's record as this node sees it: the store's, with this node's
 * changes still in flight applied on top (every change is idempotent, so
 * one the store already holds does no harm); NULL when there is none. */
static int record_of(struct ic_node_ctx *ctx, const char *local, json_t **out)
{
    json_t *pending =
        ctx->rosters ? json_object_get(ctx->rosters, local) : NULL;
    json_t *rec = NULL, *ch;
    size_t i;
    int rc = ic_node__get_json(ctx->st, IC_KV_ROSTERS, local, &rec);

    if (rc == IC_ENOTFOUND) {
        rec = NULL;
        rc = 0;
    }
    if (rc != 0)
        return rc;
    json_array_foreach(pending, i, ch)
    {
        json_t *next = apply_change(rec, ch);
        json_decref(rec);
        rec = next;
    }
    *out = rec;
    return 0;
}

static int roster_get(void *data, const char *user, struct ic_roster *out)
{
    struct ic_node_ctx *ctx = data;
    char local[1100];
    json_t *rec, *it;
    size_t i;
    int rc;

    memset(out, 0, sizeof *out);
    rc = record_of(ctx, ic_node__local_of(user, local, sizeof local), &rec);
    if (rc != 0 || rec == NULL)
        return rc;
    out->items = ic_calloc(json_array_size(rec) + 1, sizeof *out->items);
    json_array_foreach(rec, i, it)
    {
        if (!json_is_string(json_object_get(it, "jid")))
            continue;
        item_from_json(it, &out->items[out->n++]);
    }
    json_decref(rec);
    return 0;
}

/* A change applied here (or refused): out of the user's in-flight list. */
struct roster_write {
    struct ic_node_ctx *ctx;
    char *local;
    json_t *change;
};

static void
on_roster_written(void *data, int rc, const struct ic_raft_result *res)
{
    struct roster_write *w = data;
    json_t *pending = json_object_get(w->ctx->rosters, w->local), *ch;
    size_t i;

    if (rc != 0 || res->code != 0)
        IC_LOG(IC_LOG_WARN, "roster", "%s: roster change: %s", w->local,
               rc ? ic_strerror(rc) : res->msg);
    json_array_foreach(pending, i, ch) if (ch == w->change)
    {
        json_array_remove(pending, i);
        break;
    }
    if (pending != NULL && json_array_size(pending) == 0)
        json_object_del(w->ctx->rosters, w->local);
    json_decref(w->change);
    ic_free(w->local);
    ic_free(w);
}

static int roster_event(void *data,
                        const char *user,
                        const char *contact,
                        enum ic_roster_event ev,
                        const struct ic_roster_item *fields)
{
    struct ic_node_ctx *ctx = data;
    json_t *change = change_json(contact, ev, fields), *pending;
    char local[1100], *arg = json_dumps(change, JSON_COMPACT);
    struct roster_write *w;
    struct ic_raft_op op = {0};
    struct ic_raft_cmd cmd = {0};
    int rc;

    ic_node__local_of(user, local, sizeof local);
    if (ctx->cluster == NULL) { /* a node alone: straight to the store */
        json_t *rec = NULL, *next;
        rc = record_of(ctx, local, &rec);
        if (rc == 0) {
            next = apply_change(rec, change);
            rc = ic_node__put_json(ctx->st, IC_KV_ROSTERS, local, next);
            json_decref(next);
        }
        json_decref(rec);
        goto out;
    }
    op.type = IC_RAFT_OP_KV_UPDATE;
    op.kv.db = IC_KV_ROSTERS;
    op.kv.key = (struct ic_kv){local, strlen(local)};
    op.kv.val = (struct ic_kv){arg, strlen(arg)};
    op.kv.update = IC_NODE_UPDATE_ROSTER;
    cmd.n_ops = 1;
    cmd.ops = &op;
    pending = json_object_get(ctx->rosters, local);
    if (pending == NULL) {
        pending = json_array();
        json_object_set_new(ctx->rosters, local, pending);
    }
    json_array_append(pending, change);
    w = ic_malloc(sizeof *w);
    w->ctx = ctx;
    w->local = ic_strdup(local);
    w->change = json_incref(change);
    rc = ic_node_cluster_write(ctx->cluster, &cmd, 0, on_roster_written, w);
    if (rc != 0) {
        json_array_remove(pending, json_array_size(pending) - 1);
        if (json_array_size(pending) == 0)
            json_object_del(ctx->rosters, local);
        json_decref(w->change);
        ic_free(w->local);
        ic_free(w);
    }
out:
    json_decref(change);
    free(arg);
    return rc;
}

void ic_node__roster_ops(struct ic_xmpp_ops *ops)
{
    ic_raft_register_kv_update(IC_NODE_UPDATE_ROSTER, ic_node__roster_update);
    ops->roster_get = roster_get;
    ops->roster_event = roster_event;
}
