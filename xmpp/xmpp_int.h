/*
 * xmpp_int.h - shared inside xmpp/ only: the server, its connections and
 * sessions.
 */
#ifndef IC_XMPP_INT_H
#define IC_XMPP_INT_H

#include <uv.h>

#include "ic_xmpp.h"
#include "sasl.h"
#include "tls.h"

/* Connection states of a client stream (RFC 6120 order). Every allowed
 * move is listed once in c2s.c's transition table and checked there. */
enum ic_c2s_state {
    C2S_CONNECTED = 0, /* TCP up, waiting for a stream header */
    C2S_TLS_HANDSHAKE, /* direct TLS, or after <proceed/> */
    C2S_TLS_STREAM,    /* TLS up, waiting for a stream header */
    C2S_FEATURES_TLS,  /* offered STARTTLS (required) */
    C2S_FEATURES_AUTH, /* offered SASL mechanisms */
    C2S_SASL,          /* inside a SASL exchange */
    C2S_AUTHED,        /* SASL succeeded, waiting for a stream header */
    C2S_FEATURES_BIND, /* offered resource binding */
    C2S_SESSION,       /* bound: stanzas flow */
    C2S_CLOSING,       /* our </stream:stream> sent, flushing */
    C2S_CLOSED,
    C2S__COUNT
};

struct ic_xmpp__conn;

/* One row of a stream's transition table: FROM -> TO when EVENT happens
 * (the state enums of c2s.c, client.c, link.c, s2s_in.c, s2s_out.c). Every
 * move a stream makes is one row of its file's table, checked. */
struct ic_xmpp__move {
    int from, to;
    const char *event;
};
/* Whether FROM -> TO is one of the N rows of T. */
bool ic_xmpp__move_ok(const struct ic_xmpp__move *t,
                      size_t n,
                      int from,
                      int to);

struct ic_xmpp__write {
    uv_write_t req;
    uv_buf_t buf;
    struct ic_xmpp__conn *conn;
};

struct ic_xmpp__session; /* a bound resource */

struct ic_xmpp__conn {
    struct ic_xmpp_server *srv;
    uv_tcp_t tcp;
    uv_timer_t timer; /* handshake, idle and keepalive */
    int handles_open; /* freed when both handles are closed */
    bool direct_tls;
    enum ic_c2s_state state;
    struct ic_xml_stream *stream;
    struct ic_tls *tls;
    struct ic_sasl *sasl;
    char *id;   /* stream id */
    char *user; /* authenticated local part */
    struct ic_xmpp__session *session;
    unsigned sasl_failures;
    bool admin;    /* the authenticated account is an admin */
    char peer[64]; /* remote address, for logs and throttling */
    size_t queued; /* bytes waiting in uv_write */
    bool reading;
    bool closing;      /* conn_fail/close started: callbacks return */
    struct ic_buf out; /* sent in this loop turn, not yet written */
    bool dirty;        /* on the server's list of connections to flush */
    struct ic_xmpp__conn *dirty_next;
    uint64_t last_activity;
    struct ic_xmpp__conn *prev, *next; /* all connections */
};

struct ic_xmpp__session {
    struct ic_xmpp__conn *conn;
    char *full; /* local@domain/resource */
    char *bare; /* local@domain */
    char *resource;
    bool available; /* sent initial presence */
    int priority;
    struct ic_xml *presence; /* last broadcast presence, or NULL */
    struct ic_xmpp__session *next_of_user; /* same bare JID */
    /* JIDs given directed available presence that are not subscribers:
     * they get unavailable when the session goes (RFC 6121 4.6.3). */
    struct ic_xmpp__directed *directed;
    /* when it was bound (wall clock, ms) and a random tie-break: of two
     * sessions of one full JID on two nodes the later one stays */
    uint64_t bound_at, nonce;
};

/* A session on another node of the cluster (remote.c). */
struct ic_xmpp__remote {
    char *full, *bare;
    unsigned node;
    int priority;
    struct ic_xml *presence;
    struct ic_xmpp__remote *next_of_user; /* same bare JID */
};

/* A string-keyed hash map (map.c). Keys are copied; values are the
 * caller's. */
struct ic_map_entry {
    char *key;
    void *value;
};

struct ic_map {
    struct ic_map_entry *slots;
    size_t cap, n, tombs;
};

void *ic_map_get(const struct ic_map *m, const char *key);
/* Sets KEY to VALUE; returns the previous value or NULL. */
void *ic_map_put(struct ic_map *m, const char *key, void *value);
void *ic_map_del(struct ic_map *m, const char *key);
void ic_map_free(struct ic_map *m);
/* ic_map_free after FREE_VALUE on every value. */
void ic_map_free_values(struct ic_map *m, void (*free_value)(void *value));
/* Iteration: *I starts at 0; returns NULL at the end. */
struct ic_map_entry *ic_map_next(const struct ic_map *m, size_t *i);

struct ic_xmpp__component {
    struct ic_xmpp_component c;
    struct ic_xmpp__component *next;
};

struct ic_xmpp__throttle {
    unsigned failures;
    uint64_t window_start; /* ms */
};

struct ic_xmpp_server {
    uv_loop_t *loop;
    struct ic_xmpp_config cfg;
    struct ic_xmpp_ops ops;
    char *domain;
    uv_tcp_t listen_starttls, listen_tls;
    bool have_tls_listener;
    int listeners_open;
    struct ic_tls_ctx *tls_starttls, *tls_direct;
    struct ic_xmpp__conn *conns;
    size_t nconns;
    uv_check_t flush;    /* writes what each connection got in a loop turn */
    uv_timer_t sweep;    /* trims the parsers of quiet connections */
    uv_timer_t iq_timer; /* the components' own iq requests time out */
    struct ic_map iq_pending; /* id -> the request (component.c) */
    struct ic_xmpp__conn *dirty;
    struct ic_map sessions;     /* full JID -> struct ic_xmpp__session */
    struct ic_map users;        /* bare JID -> first session of that user */
    struct ic_map remotes;      /* full JID -> struct ic_xmpp__remote */
    struct ic_map remote_users; /* bare JID -> first remote of that user */
    struct ic_map heard;    /* full JID -> presence routed from it (heard.c) */
    struct ic_map throttle; /* address -> struct ic_xmpp__throttle */
    struct ic_xmpp__component *components;
    struct ic_xmpp__s2s *s2s; /* NULL: no federation (s2s.c) */
    unsigned char secret[32]; /* for fake SCRAM credentials, stream ids */
    uint64_t id_counter;
    bool shutting_down;
    void (*shutdown_cb)(void *data);
    void *shutdown_data;
    struct ic_xmpp_stats stats;
    struct ic_buf plain; /* decrypted input, reused from read to read */
    struct ic_buf wout;  /* ciphertext being written, reused likewise */
    char rbuf[65536];    /* every connection's reads (consumed at once) */
};

/* client.c: whether <mechanisms/> MECHS (NULL: none) lists SASL mechanism
 * NAME. */
bool ic_xmpp__mechanism_offered(const struct ic_xml *mechs, const char *name);

/* conn.c */
void ic_xmpp__conn_accept(struct ic_xmpp_server *srv,
                          uv_stream_t *listener,
                          bool direct_tls);
/* Writes the connection's pending output now (encrypted when TLS is on). */
void ic_xmpp__conn_flush(struct ic_xmpp__conn *c);
/* Queues bytes (plaintext): they are written, in one write and one TLS
 * record per connection, at the end of the loop turn. */
void ic_xmpp__conn_send(struct ic_xmpp__conn *c, const char *data, size_t len);
void ic_xmpp__conn_send_xml(struct ic_xmpp__conn *c, const struct ic_xml *x);
/* Ends the stream with a stream error and closes. */
void ic_xmpp__conn_fail(struct ic_xmpp__conn *c,
                        enum ic_stream_error cond,
                        const char *text);
/* Ends the stream cleanly (</stream:stream>) and closes. */
void ic_xmpp__conn_close(struct ic_xmpp__conn *c);
/* Starts TLS on the connection (after <proceed/>). */
int ic_xmpp__conn_start_tls(struct ic_xmpp__conn *c);
uint64_t ic_xmpp__now_ms(const struct ic_xmpp_server *srv);
/* (Re)starts the timer for the connection's state: the handshake deadline
 * before the session, the keepalive period after. */
void ic_xmpp__conn_arm_timer(struct ic_xmpp__conn *c);

/* c2s.c */
void ic_xmpp__c2s_on_open(struct ic_xmpp__conn *c, struct ic_xml *header);
void ic_xmpp__c2s_on_stanza(struct ic_xmpp__conn *c, struct ic_xml *st);
void ic_xmpp__c2s_on_tls_ready(struct ic_xmpp__conn *c);
void ic_xmpp__c2s_move(struct ic_xmpp__conn *c, enum ic_c2s_state to);
/* After SASL success: larger stanzas allowed, the stream restarts. */
void ic_xmpp__c2s_authenticated(struct ic_xmpp__conn *c);
void ic_xmpp__c2s_sasl(struct ic_xmpp__conn *c, struct ic_xml *st);
/* The SASL mechanisms to offer on this connection. */
size_t ic_xmpp__c2s_mechanisms(struct ic_xmpp__conn *c,
                               const char **names,
                               size_t max);
void ic_xmpp__c2s_bind(struct ic_xmpp__conn *c, struct ic_xml *st);
const char *ic_xmpp__c2s_state_name(enum ic_c2s_state s);
/* Whether the transition table allows FROM -> TO. */
bool ic_xmpp__c2s_allowed(enum ic_c2s_state from, enum ic_c2s_state to);

/* session.c */
int ic_xmpp__session_bind(struct ic_xmpp__conn *c,
                          const char *resource,
                          struct ic_xmpp__session **out);
void ic_xmpp__session_end(struct ic_xmpp__session *s);
/* Another node bound full JID FULL at BOUND_AT (with NONCE): our session
 * of it, if older, ends with <conflict/>. */
void ic_xmpp__session_claimed(struct ic_xmpp_server *srv,
                              const char *full,
                              uint64_t bound_at,
                              uint64_t nonce);
#define IC_NS_BOUND "urn:icroot:bound:0"

/* route.c: a stanza (taken) from a bound session; 'from' is stamped. */
void ic_xmpp__route(struct ic_xmpp_server *srv,
                    struct ic_xmpp__session *from,
                    struct ic_xml *st);
/* A stanza (taken) whose 'from' is already right (a component, the server,
 * a routed error, another server's user) to its 'to', wherever that is:
 * a session here or on another node, a user's bare JID, a component, the
 * server, or another domain over S2S. Dropped without 'to'. */
void ic_xmpp__send(struct ic_xmpp_server *srv, struct ic_xml *st);
/* Answers ST's sender (its 'from') with a stanza error, unless ST is an
 * error or a result. */
void ic_xmpp__bounce(struct ic_xmpp_server *srv,
                     const struct ic_xml *st,
                     const char *type,
                     const char *cond,
                     const char *text);
/* Delivers ST to session S (ownership stays with the caller). */
void ic_xmpp__deliver(struct ic_xmpp__session *s, const struct ic_xml *st);
/* An error reply to ST (swaps to/from), of TYPE and CONDITION. */
struct ic_xml *ic_xmpp__error_reply(const struct ic_xml *st,
                                    const char *type,
                                    const char *condition,
                                    const char *text);
/* A result iq for request ST, with optional child PAYLOAD (taken). */
struct ic_xml *ic_xmpp__iq_result(const struct ic_xml *st,
                                  struct ic_xml *payload);

/* remote.c: sessions of other nodes */
struct ic_xmpp__remote *ic_xmpp__remote_find(struct ic_xmpp_server *srv,
                                             const char *full);
struct ic_xmpp__remote *ic_xmpp__remote_first(struct ic_xmpp_server *srv,
                                              const char *bare);
/* Sends ST to the node holding remote session R (ST's 'to' unchanged). */
bool ic_xmpp__remote_send(struct ic_xmpp_server *srv,
                          const struct ic_xmpp__remote *r,
                          const struct ic_xml *st);
/* Delivers ST to full JID FULL wherever it is bound (here or on another
 * node); false when it is bound nowhere. */
bool ic_xmpp__deliver_to(struct ic_xmpp_server *srv,
                         const char *full,
                         const struct ic_xml *st);
/* Sends ST to every node other than ours holding an available resource of
 * BARE, once per node (that node delivers to its own resources). */
void ic_xmpp__route_to_user_nodes(struct ic_xmpp_server *srv,
                                  const char *bare,
                                  const struct ic_xml *st);
void ic_xmpp__remote_free_all(struct ic_xmpp_server *srv);

/* heard.c: available presence routed from other nodes' sessions. Notes
 * presence stanza ST (from a full JID, available or unavailable) that
 * node NODE (lease INCARNATION) routed to local recipient TO (a full JID,
 * or a bare JID with sessions here). */
void ic_xmpp__heard_note(struct ic_xmpp_server *srv,
                         const struct ic_xml *st,
                         const char *to,
                         unsigned node,
                         uint64_t incarnation);
/* Forgets what was routed from FULL_JID: its session ended (the registry
 * says so), and its own node sends its directed unavailable. */
void ic_xmpp__heard_forget(struct ic_xmpp_server *srv, const char *full_jid);
void ic_xmpp__heard_free_all(struct ic_xmpp_server *srv);
/* Tells the application (ops->presence_changed) that session S's
 * broadcast presence is now PRESENCE (NULL: unavailable). */
void ic_xmpp__presence_changed(struct ic_xmpp__session *s,
                               const struct ic_xml *presence);

/* component.c */
struct ic_xmpp__component *ic_xmpp__component_find(struct ic_xmpp_server *srv,
                                                   const char *jid);
/* ST (taken) to component COMP from session FROM, or, FROM NULL, from
 * elsewhere (another node, another server: never an admin). */
void ic_xmpp__component_handle(struct ic_xmpp_server *srv,
                               struct ic_xmpp__component *comp,
                               struct ic_xmpp__session *from,
                               struct ic_xml *st);
/* Every pending component iq is answered NULL (shutdown). */
void ic_xmpp__component_iq_cancel_all(struct ic_xmpp_server *srv);

/* s2s.c: ST (taken) to another domain: over a verified stream to it, or
 * queued while one is being set up; bounced when none can be. */
void ic_xmpp__s2s_send(struct ic_xmpp_server *srv, struct ic_xml *st);
/* Listens on the S2S port when the configuration has one. */
int ic_xmpp__s2s_start(struct ic_xmpp_server *srv, char *why, size_t why_len);
/* Ends every S2S stream, bounces what waits, closes the listener. */
void ic_xmpp__s2s_shutdown(struct ic_xmpp_server *srv);
void ic_xmpp__s2s_free(struct ic_xmpp_server *srv);

/* server.c: one of the handles the server waits for at shutdown (the
 * listeners, timers, S2S streams) has closed. Each was counted in
 * listeners_open when opened. */
void ic_xmpp__server_release(struct ic_xmpp_server *srv);

/* presence.c and roster.c */
void ic_xmpp__presence_handle(struct ic_xmpp_server *srv,
                              struct ic_xmpp__session *from,
                              struct ic_xml *st);
/* Presence ST from another server's user (or a component) to a user of
 * this domain: subscription requests and answers, probes, directed and
 * broadcast presence (RFC 6121 3.1.3, 3.2.3, 3.3.3, 3.4.3, 4.3.2, 4.4.3). */
void ic_xmpp__presence_in(struct ic_xmpp_server *srv, const struct ic_xml *st);
/* The session goes unavailable: subscribers, the user's other resources
 * and directed-presence recipients are told; frees the directed list. */
void ic_xmpp__presence_unavailable(struct ic_xmpp__session *s);
/* Presence ST to the available sessions of BARE on this node. */
void ic_xmpp__presence_to_local(struct ic_xmpp_server *srv,
                                const char *bare,
                                const struct ic_xml *st);
/* A remote session's presence P (from set) delivered to this node's
 * sessions that see BARE's presence. */
void ic_xmpp__presence_fan_out(struct ic_xmpp_server *srv,
                               const char *bare,
                               struct ic_xml *p);
void ic_xmpp__roster_iq(struct ic_xmpp__session *s, struct ic_xml *st);
/* A roster push routed from another node (to USER's bare JID). */
bool ic_xmpp__roster_push_routed(struct ic_xmpp_server *srv,
                                 const char *user,
                                 const struct ic_xml *st);
bool ic_xmpp__roster_hidden(const struct ic_roster_item *it);
bool ic_xmpp__roster_find(struct ic_xmpp_server *srv,
                          const char *user,
                          const char *contact,
                          struct ic_roster_item *out);
void ic_xmpp__roster_push(struct ic_xmpp_server *srv,
                          const char *user,
                          const struct ic_roster_item *it,
                          bool removed);
/* USER's item IT changes by EV (ic_roster_apply; FIELDS for SET): stored
 * through ops (roster_event, else whole items), then pushed to USER's
 * sessions. */
int ic_xmpp__roster_change(struct ic_xmpp_server *srv,
                           const char *user,
                           struct ic_roster_item *it,
                           enum ic_roster_event ev,
                           const struct ic_roster_item *fields);
/* Before removing a roster item: cancel subscriptions both ways. */
void ic_xmpp__presence_cancel_all(struct ic_xmpp__session *s,
                                  const struct ic_roster_item *it);

#endif /* IC_XMPP_INT_H */
