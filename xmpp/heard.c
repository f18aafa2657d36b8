/*
 * heard.c - available presence that other nodes routed here, remembered
 * until it is withdrawn.
 *
 * Broadcast presence crosses nodes through the replicated registry, and
 * when a node's lease ends the registry's entries of that node go
 * unavailable everywhere. Presence routed as a stanza is not in the
 * registry: directed presence, and the presence a node shares at once
 * when a subscription is approved (whose registry entry may never be
 * committed if its node dies within milliseconds). So every node keeps,
 * per sender (a full JID on another node), the local recipients of its
 * available presence with the node's lease incarnation at the time, and
 * when that lease ends (ic_xmpp_server_remote_node_gone) tells each
 * recipient the sender is unavailable, as the sender's own server would
 * have at the end of its session (RFC 6121 4.6.3). A node that restarted
 * routes under a newer incarnation: what its new sessions sent before its
 * new lease was committed is not withdrawn with the old lease.
 *
 * A recipient is a local full JID (the stanza's routing target) or a bare
 * JID with sessions here. Unavailable presence from the sender to a
 * recipient forgets it; the registry saying the sender's session ended
 * forgets the sender (ic_xmpp__heard_forget: its node sends the directed
 * unavailable itself), so what is kept lives no longer than the sessions.
 * At most MAX_RECIPIENTS per sender are kept: the oldest is forgotten
 * first.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "xmpp_int.h"

#define MAX_RECIPIENTS 256

struct ic_xmpp__heard {
    unsigned node;
    uint64_t incarnation; /* the node's lease when it last routed one */
    size_t n, cap;
    char **to;
};

static void heard_free(void *value)
{
    struct ic_xmpp__heard *h = value;

    for (size_t i = 0; i < h->n; i++)
        ic_free(h->to[i]);
    ic_free(h->to);
    ic_free(h);
}

static void forget(struct ic_xmpp__heard *h, size_t i)
{
    ic_free(h->to[i]);
    memmove(&h->to[i], &h->to[i + 1], (h->n - i - 1) * sizeof h->to[0]);
    h->n--;
}

static size_t find(const struct ic_xmpp__heard *h, const char *to)
{
    size_t i = 0;

    while (i < h->n && strcmp(h->to[i], to) != 0)
        i++;
    return i;
}

void ic_xmpp__heard_note(struct ic_xmpp_server *srv,
                         const struct ic_xml *st,
                         const char *to,
                         unsigned node,
                         uint64_t incarnation)
{
    const char *from = ic_xml_attr(st, "from"), *type = ic_xml_attr(st, "type");
    bool available = type == NULL;
    struct ic_xmpp__heard *h;
    size_t i;

    if (from == NULL || strchr(from, '/') == NULL || to == NULL ||
        (!available && strcmp(type, "unavailable") != 0))
        return;
    h = ic_map_get(&srv->heard, from);
    if (!available) {
        if (h != NULL && (i = find(h, to)) < h->n)
            forget(h, i);
        if (h != NULL && h->n == 0)
            heard_free(ic_map_del(&srv->heard, from));
        return;
    }
    if (h == NULL) {
        h = ic_calloc(1, sizeof *h);
        ic_map_put(&srv->heard, from, h);
    }
    h->node = node; /* the sender's session is there now */
    h->incarnation = incarnation;
    if (find(h, to) < h->n)
        return;
    if (h->n == MAX_RECIPIENTS)
        forget(h, 0);
    if (h->n == h->cap) {
        h->cap = h->cap != 0 ? h->cap * 2 : 4;
        h->to = ic_realloc(h->to, h->cap * sizeof *h->to);
    }
    h->to[h->n++] = ic_strdup(to);
}

/* Unavailable presence from FROM to each recipient of H, H freed. */
static void
withdraw(struct ic_xmpp_server *srv, const char *from, struct ic_xmpp__heard *h)
{
    for (size_t i = 0; i < h->n; i++) {
        struct ic_xml *p = ic_xml_new("presence", IC_NS_CLIENT);
        struct ic_xmpp__session *s = ic_map_get(&srv->sessions, h->to[i]);

        ic_xml_set_attr(p, "from", from);
        ic_xml_set_attr(p, "to", h->to[i]);
        ic_xml_set_attr(p, "type", "unavailable");
        if (s != NULL)
            ic_xmpp__deliver(s, p);
        else if (strchr(h->to[i], '/') == NULL)
            ic_xmpp__presence_to_local(srv, h->to[i], p);
        ic_xml_free(p);
    }
    heard_free(h);
}

void ic_xmpp_server_remote_node_gone(struct ic_xmpp_server *srv,
                                     unsigned node,
                                     uint64_t incarnation)
{
    struct ic_map_entry *e;
    char **gone = NULL;
    size_t n = 0, cap = 0, i = 0;

    while ((e = ic_map_next(&srv->heard, &i)) != NULL) {
        const struct ic_xmpp__heard *h = e->value;
        if (h->node != node ||
            (h->incarnation != 0 && h->incarnation > incarnation))
            continue; /* another node's, or its new run's */
        if (n == cap) {
            cap = cap != 0 ? cap * 2 : 16;
            gone = ic_realloc(gone, cap * sizeof *gone);
        }
        gone[n++] = ic_strdup(e->key);
    }
    for (i = 0; i < n; i++) {
        withdraw(srv, gone[i], ic_map_del(&srv->heard, gone[i]));
        ic_free(gone[i]);
    }
    ic_free(gone);
}

void ic_xmpp__heard_forget(struct ic_xmpp_server *srv, const char *full_jid)
{
    struct ic_xmpp__heard *h = ic_map_del(&srv->heard, full_jid);

    if (h != NULL)
        heard_free(h);
}

void ic_xmpp__heard_free_all(struct ic_xmpp_server *srv)
{
    ic_map_free_values(&srv->heard, heard_free);
}
