/*
 * ic_xmpp.h - the generic XMPP server engine: XML streams and stanza trees,
 * JIDs, SASL, TLS, connections, routing, and the component API on which
 * node/ registers the catalog service. It knows nothing of catalogs or
 * Raft: accounts, rosters and presence come through an ops table.
 *
 * Errors: functions return 0 or a negative IC_E* code (ic_common.h).
 * Ownership: a function that takes ownership of an argument says so.
 */
#ifndef IC_XMPP_H
#define IC_XMPP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ic_common.h"

#define IC_NS_STREAMS "http://etherx.jabber.org/streams"
#define IC_NS_CLIENT "jabber:client"
#define IC_NS_SERVER "jabber:server"
#define IC_NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"
#define IC_NS_STANZA_ERRORS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define IC_NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define IC_NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define IC_NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define IC_NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"

/* ---------------------------------------------------------------------
 * Growable byte buffer
 */

struct ic_buf {
    char *data; /* NUL-terminated while len < cap */
    size_t len;
    size_t cap;
};

void ic_buf_append(struct ic_buf *b, const char *s, size_t n);
void ic_buf_puts(struct ic_buf *b, const char *s);
/* Appends S with the five XML special characters escaped (&, <, >, ', "). */
void ic_buf_append_escaped(struct ic_buf *b, const char *s, size_t n);
void ic_buf_reset(struct ic_buf *b); /* len = 0, keeps the memory */
void ic_buf_free(struct ic_buf *b);

/* ---------------------------------------------------------------------
 * Stanza trees
 *
 * An element has a local name and a namespace (resolved from the input's
 * prefixes and default namespace declarations; the tree keeps no prefixes
 * and no xmlns attributes). A text node has name == NULL. Children are a
 * singly linked list in document order.
 */

struct ic_xml_attr {
    char *name; /* "to", "xml:lang"; other namespaced attributes are
                   "NAMESPACE-URI|local" */
    char *value;
    struct ic_xml_attr *next;
    bool inl; /* name and value share the attribute's allocation */
};

struct ic_xml {
    char *name; /* local name; NULL for a text node */
    char *ns;   /* namespace URI or NULL (change it with ic_xml_set_ns) */
    char *text; /* text node: its content (NUL-terminated) */
    size_t text_len;
    unsigned inl; /* IC_XML_INLINE_*: which strings share the node's
                     allocation (ic_xml_new and the parser make them so;
                     change them through ic_xml_set_ns, ic_xml_add_text) */
    struct ic_xml_attr *attrs;
    struct ic_xml *parent;
    struct ic_xml *children; /* first child */
    struct ic_xml *last;     /* last child */
    struct ic_xml *next;     /* next sibling */
};

#define IC_XML_INLINE_NAME 1u
#define IC_XML_INLINE_NS 2u
#define IC_XML_INLINE_TEXT 4u

/* A new element; NS may be NULL. */
struct ic_xml *ic_xml_new(const char *name, const char *ns);
/* A new element named LOCAL in NS (NULL: none), name and namespace in the
 * node's own allocation (one allocation per element). */
struct ic_xml *ic_xml_new_n(const char *local,
                            size_t local_len,
                            const char *ns,
                            size_t ns_len);
/* A new text node holding LEN bytes of TEXT, in one allocation. */
struct ic_xml *ic_xml_new_text(const char *text, size_t len);
/* A new attribute, name and value in its own allocation. */
struct ic_xml_attr *ic_xml_attr_new_n(const char *name,
                                      size_t name_len,
                                      const char *value,
                                      size_t value_len);
/* Replaces X's namespace (NULL: none). */
void ic_xml_set_ns(struct ic_xml *x, const char *ns);
/* A new child element of PARENT, appended; NS NULL means PARENT's. */
struct ic_xml *
ic_xml_add(struct ic_xml *parent, const char *name, const char *ns);
/* Appends a text node (merged with a preceding text node). */
void ic_xml_add_text(struct ic_xml *parent, const char *text, size_t len);
/* Appends CHILD (takes ownership; CHILD must have no parent). */
void ic_xml_append(struct ic_xml *parent, struct ic_xml *child);
/* Unlinks CHILD from its parent (the caller then owns it). */
void ic_xml_detach(struct ic_xml *child);
/* Sets (VALUE non-NULL) or removes (VALUE NULL) an attribute. */
void ic_xml_set_attr(struct ic_xml *x, const char *name, const char *value);
/* The attribute's value, or NULL. Valid while the attribute is unchanged. */
const char *ic_xml_attr(const struct ic_xml *x, const char *name);
/* The first child element with this name and namespace (either may be NULL
 * for "any"), or NULL. */
struct ic_xml *
ic_xml_child(const struct ic_xml *x, const char *name, const char *ns);
/* The next sibling element after AFTER with this name and namespace. */
struct ic_xml *
ic_xml_next(const struct ic_xml *after, const char *name, const char *ns);
/* The concatenated text of X's direct text children (never NULL; the
 * caller frees). */
char *ic_xml_text(const struct ic_xml *x);
/* The same without a copy when X's text is one text node (or none):
 * otherwise the text is gathered into *OWNED, which the caller frees
 * (*OWNED is NULL when nothing was copied). */
const char *ic_xml_text_ref(const struct ic_xml *x, char **owned);
struct ic_xml *ic_xml_copy(const struct ic_xml *x);
/* Frees X and its subtree; X must be detached. ic_xml_free(NULL) is a
 * no-op. */
void ic_xml_free(struct ic_xml *x);

/* Serializes X. CONTEXT_NS is the default namespace in scope where X is
 * written (e.g. "jabber:client" for a stanza inside a client stream):
 * an element whose namespace differs gets an xmlns declaration. Text and
 * attribute values are escaped; the output is well-formed XML. */
void ic_xml_write(struct ic_buf *out,
                  const struct ic_xml *x,
                  const char *context_ns);
/* The same into a new string (the caller frees). */
char *ic_xml_to_string(const struct ic_xml *x, const char *context_ns);

/* ---------------------------------------------------------------------
 * XML streams (RFC 6120 section 4)
 */

/* Stream error conditions (RFC 6120 4.9.3): name, enum. */
#define IC_STREAM_ERRORS(X)                                       \
    X("bad-format", IC_SE_BAD_FORMAT)                             \
    X("bad-namespace-prefix", IC_SE_BAD_NAMESPACE_PREFIX)         \
    X("conflict", IC_SE_CONFLICT)                                 \
    X("connection-timeout", IC_SE_CONNECTION_TIMEOUT)             \
    X("host-gone", IC_SE_HOST_GONE)                               \
    X("host-unknown", IC_SE_HOST_UNKNOWN)                         \
    X("improper-addressing", IC_SE_IMPROPER_ADDRESSING)           \
    X("internal-server-error", IC_SE_INTERNAL_SERVER_ERROR)       \
    X("invalid-from", IC_SE_INVALID_FROM)                         \
    X("invalid-namespace", IC_SE_INVALID_NAMESPACE)               \
    X("invalid-xml", IC_SE_INVALID_XML)                           \
    X("not-authorized", IC_SE_NOT_AUTHORIZED)                     \
    X("not-well-formed", IC_SE_NOT_WELL_FORMED)                   \
    X("policy-violation", IC_SE_POLICY_VIOLATION)                 \
    X("remote-connection-failed", IC_SE_REMOTE_CONNECTION_FAILED) \
    X("reset", IC_SE_RESET)                                       \
    X("resource-constraint", IC_SE_RESOURCE_CONSTRAINT)           \
    X("restricted-xml", IC_SE_RESTRICTED_XML)                     \
    X("see-other-host", IC_SE_SEE_OTHER_HOST)                     \
    X("system-shutdown", IC_SE_SYSTEM_SHUTDOWN)                   \
    X("undefined-condition", IC_SE_UNDEFINED_CONDITION)           \
    X("unsupported-encoding", IC_SE_UNSUPPORTED_ENCODING)         \
    X("unsupported-feature", IC_SE_UNSUPPORTED_FEATURE)           \
    X("unsupported-stanza-type", IC_SE_UNSUPPORTED_STANZA_TYPE)   \
    X("unsupported-version", IC_SE_UNSUPPORTED_VERSION)

enum ic_stream_error {
#define IC__SE_ENUM(name, e) e,
    IC_STREAM_ERRORS(IC__SE_ENUM)
#undef IC__SE_ENUM
        IC_SE__COUNT
};

/* The condition's element name ("restricted-xml"). */
const char *ic_stream_error_name(enum ic_stream_error e);

struct ic_xml_limits {
    size_t max_stanza_bytes; /* raw bytes of one top-level element */
    unsigned max_depth;      /* element depth inside a stanza */
    unsigned max_children;   /* child nodes of any one element */
    unsigned max_attrs;      /* attributes of any one element */
};

struct ic_xml_stream_cbs {
    /* <stream:stream ...> opened; HEADER holds its attributes (ownership
     * passes to the callee). */
    void (*on_open)(void *data, struct ic_xml *header);
    /* A complete top-level element (ownership passes to the callee). */
    void (*on_stanza)(void *data, struct ic_xml *stanza);
    /* </stream:stream> */
    void (*on_close)(void *data);
    /* The stream must end with this condition; TEXT says why. Called at
     * most once; the stream then ignores further input. */
    void (*on_error)(void *data, enum ic_stream_error cond, const char *text);
};

struct ic_xml_stream;

/* Hostile input ends the stream: a DOCTYPE, entity declaration, comment or
 * processing instruction (restricted-xml), a stanza beyond the limits
 * (policy-violation; the byte count is checked before the bytes are
 * parsed), malformed XML (not-well-formed), a stream header that is not
 * {http://etherx.jabber.org/streams}stream (invalid-namespace). Expat's
 * billion-laughs and allocation limits are set as well. */
struct ic_xml_stream *ic_xml_stream_new(const struct ic_xml_stream_cbs *cbs,
                                        void *data,
                                        const struct ic_xml_limits *limits);
void ic_xml_stream_free(struct ic_xml_stream *s);
/* Parses LEN bytes. A callback may call ic_xml_stream_stop(): parsing then
 * stops right after the element (or header) just delivered and *CONSUMED
 * tells how many bytes of BUF were used (the rest belongs to whatever comes
 * next: TLS after <starttls/>, a new stream after SASL success). Without a
 * stop *CONSUMED is LEN. Returns 0, or IC_ESYNTAX after on_error. */
int ic_xml_stream_feed(struct ic_xml_stream *s,
                       const char *buf,
                       size_t len,
                       size_t *consumed);
/* From inside a callback: stop after the current event. */
void ic_xml_stream_stop(struct ic_xml_stream *s);
/* Starts a fresh stream (new parser state) with the same callbacks. */
void ic_xml_stream_reset(struct ic_xml_stream *s);
void ic_xml_stream_set_limits(struct ic_xml_stream *s,
                              const struct ic_xml_limits *limits);

/* ---- Addition by the XML layer (xmpp/stream.c), not in the original
 * header: the content namespace is needed to check and answer the stream
 * header before any stanza arrives (RFC 6120 4.8.2). ---- */
/* The default namespace declared on the current stream header
 * ("jabber:client", "jabber:server"), or NULL when there is none (or no
 * header yet). Valid until the next reset. */
const char *ic_xml_stream_content_ns(const struct ic_xml_stream *s);
/* Between stanzas a stream can free its expat parser ("park": about 420
 * bytes stay) and rebuild it when data comes, for about 2 us per read.
 * By default it parks whenever a feed ends between stanzas; with
 * AUTO_TRIM false it parks only when ic_xml_stream_trim() is called (for
 * streams that have gone quiet; not from inside a callback). */
void ic_xml_stream_set_auto_trim(struct ic_xml_stream *s, bool auto_trim);
/* Returns whether the parser was freed now. */
bool ic_xml_stream_trim(struct ic_xml_stream *s);
/* ---- End of addition ---- */

/* ---------------------------------------------------------------------
 * JIDs (RFC 7622, prepared with libidn's XMPP stringprep profiles as
 * Prosody does: nodeprep, nameprep, resourceprep)
 */

#define IC_JID_PART_MAX 1023

struct ic_jid {
    char *local;    /* NULL when absent */
    char *domain;   /* never NULL */
    char *resource; /* NULL when absent */
};

/* Parses and prepares S. IC_EVALUE when it is not a valid JID. */
int ic_jid_parse(const char *s, struct ic_jid *out);
void ic_jid_free(struct ic_jid *j);
/* "local@domain/resource" (parts that exist); the caller frees. */
char *ic_jid_to_string(const struct ic_jid *j);
/* The bare JID "local@domain" or "domain"; the caller frees. */
char *ic_jid_bare(const struct ic_jid *j);
/* Prepares one part; a new string, or NULL when it is invalid. */
char *ic_jid_nodeprep(const char *s);
char *ic_jid_nameprep(const char *s);
char *ic_jid_resourceprep(const char *s);

/* ---------------------------------------------------------------------
 * SCRAM credentials (RFC 5802, RFC 7677): what an account stores, never
 * the password.
 */

enum ic_scram_hash { IC_SCRAM_SHA1 = 0, IC_SCRAM_SHA256 = 1 };

#define IC_SCRAM_MAX_HASH 32
#define IC_SCRAM_MIN_ITERATIONS 4096

struct ic_scram_creds {
    unsigned char salt[32];
    size_t salt_len;
    uint32_t iterations;
    unsigned char stored_key[IC_SCRAM_MAX_HASH];
    unsigned char server_key[IC_SCRAM_MAX_HASH];
};

size_t ic_scram_hash_len(enum ic_scram_hash h);
/* Derives credentials from PASSWORD (SASLprep'd) with a random salt. */
int ic_scram_creds_make(enum ic_scram_hash h,
                        const char *password,
                        uint32_t iterations,
                        struct ic_scram_creds *out);
/* The same with a given salt (for test vectors). */
int ic_scram_creds_derive(enum ic_scram_hash h,
                          const char *password,
                          const unsigned char *salt,
                          size_t salt_len,
                          uint32_t iterations,
                          struct ic_scram_creds *out);
/* Constant-time check of PASSWORD against stored credentials (for
 * PLAIN). */
bool ic_scram_check_password(enum ic_scram_hash h,
                             const struct ic_scram_creds *c,
                             const char *password);

/* ---------------------------------------------------------------------
 * The server
 */

struct ic_xmpp_server;
struct uv_loop_s;

/* Roster items (RFC 6121 2.1.2): subscription and pending states. */
enum ic_sub { IC_SUB_NONE = 0, IC_SUB_TO, IC_SUB_FROM, IC_SUB_BOTH };

struct ic_roster_item {
    char *jid;  /* bare JID of the contact */
    char *name; /* or NULL */
    enum ic_sub sub;
    bool ask;        /* outbound subscribe pending (ask='subscribe') */
    bool pending_in; /* inbound subscribe not yet answered */
    char **groups;
    size_t ngroups;
};

struct ic_roster {
    struct ic_roster_item *items;
    size_t n;
};

void ic_roster_free(struct ic_roster *r);

/* What changes a roster item (RFC 6121 sections 2 and 3): the user sets
 * its name and groups, or removes it; the user (OUT) or the contact (IN)
 * asks, approves, cancels or refuses a subscription. */
enum ic_roster_event {
    IC_ROSTER_SET = 1,          /* name and groups (the item is made) */
    IC_ROSTER_REMOVE,           /* the item goes */
    IC_ROSTER_OUT_SUBSCRIBE,    /* the user asks for the contact's presence */
    IC_ROSTER_IN_SUBSCRIBE,     /* the contact asks for the user's */
    IC_ROSTER_OUT_SUBSCRIBED,   /* the user approves the contact's request */
    IC_ROSTER_IN_SUBSCRIBED,    /* the contact approves the user's */
    IC_ROSTER_OUT_UNSUBSCRIBE,  /* the user stops seeing the contact */
    IC_ROSTER_IN_UNSUBSCRIBE,   /* the contact stops seeing the user */
    IC_ROSTER_OUT_UNSUBSCRIBED, /* the user stops the contact seeing it */
    IC_ROSTER_IN_UNSUBSCRIBED,  /* the contact stops the user seeing it */
};
#define IC_ROSTER_EVENT_MAX IC_ROSTER_IN_UNSUBSCRIBED

/* Applies EV to IT (FIELDS: the name and groups of IC_ROSTER_SET, copied);
 * REMOVE changes nothing here (the caller drops the item). The one
 * definition of the transitions: the engine computes its pushes with it,
 * and a cluster applies it to the stored item when the change commits. */
void ic_roster_apply(struct ic_roster_item *it,
                     enum ic_roster_event ev,
                     const struct ic_roster_item *fields);
void ic_roster_item_free(struct ic_roster_item *it);

/* What the engine asks of the application: accounts and rosters. Every
 * function returns 0 or an IC_E* code. */
struct ic_xmpp_ops {
    void *data;
    /* SCRAM credentials of account LOCAL; IC_ENOTFOUND if none. */
    int (*get_creds)(void *data,
                     const char *local,
                     enum ic_scram_hash h,
                     struct ic_scram_creds *out);
    bool (*is_admin)(void *data, const char *local);
    /* The roster of USER (bare JID). */
    int (*roster_get)(void *data, const char *user, struct ic_roster *out);
    /* Adds or replaces ITEM in USER's roster. */
    int (*roster_put)(void *data,
                      const char *user,
                      const struct ic_roster_item *item);
    int (*roster_del)(void *data, const char *user, const char *contact);
    /* Changes USER's item for CONTACT by EV (ic_roster_apply, with FIELDS
     * for IC_ROSTER_SET), applied to the item as stored when the change
     * is applied, so changes from several nodes compose. NULL: the engine
     * writes whole items (roster_put, roster_del). */
    int (*roster_event)(void *data,
                        const char *user,
                        const char *contact,
                        enum ic_roster_event ev,
                        const struct ic_roster_item *fields);
    /* Clusters (all three may be NULL for a node alone). A local session's
     * broadcast presence changed: PRESENCE is what it broadcast (valid
     * during the call), NULL when it became unavailable or ended. The
     * application replicates it; the other nodes then call
     * ic_xmpp_server_remote_presence. */
    void (*presence_changed)(void *data,
                             const char *full_jid,
                             const struct ic_xml *presence);
    /* Sends ST to node NODE (0: every other node), to be given there to
     * ic_xmpp_server_deliver_routed with TARGET (a full JID, or NULL: the
     * stanza's 'to'). False when it cannot be sent. */
    bool (*route_remote)(void *data,
                         unsigned node,
                         const struct ic_xml *st,
                         const char *target);
    /* S2S (may be NULL): the certificate pinned for DOMAIN ("sha256:" and
     * 64 lower-case hex digits) into OUT, true; false when none is. A
     * pinned certificate is the domain's trust anchor: it must be the one
     * presented, and then stands for a CA's verdict. */
    bool (*s2s_pin)(void *data, const char *domain, char out[72]);
};

/* A fixed place for another domain's S2S service (private meshes, tests):
 * DOMAIN and its subdomains are reached at HOST:PORT, before DNS. */
struct ic_xmpp_s2s_route {
    const char *domain;
    const char *host;
    int port;
};

struct ic_xmpp_config {
    const char *domain;
    const char *c2s_address;
    int c2s_port;     /* STARTTLS */
    int c2s_tls_port; /* direct TLS (XEP-0368), 0 for none */
    const char *cert, *key, *ca;
    bool tls13_only;
    size_t max_stanza;          /* after authentication */
    size_t max_stanza_preauth;  /* before */
    unsigned handshake_timeout; /* seconds to authenticate */
    unsigned idle_timeout;      /* seconds without input */
    unsigned keepalive;         /* seconds between whitespace pings */
    unsigned login_throttle;    /* failed logins per minute per address */
    size_t write_queue_max;     /* bytes queued before reading pauses */
    /* S2S (RFC 6120, XEP-0178, XEP-0220); s2s_port 0: no federation. */
    const char *s2s_address;
    int s2s_port;
    int s2s_tls_port;       /* direct TLS (XEP-0368), 0 for none */
    bool s2s_dialback;      /* XEP-0220 where a certificate does not do */
    const char *s2s_secret; /* dialback keys; the same on every node */
    const struct ic_xmpp_s2s_route *s2s_routes;
    size_t n_s2s_routes;
    const char *s2s_dns;       /* "ADDR:PORT" for SRV lookups; NULL: the
                                  system's resolv.conf */
    unsigned s2s_idle_timeout; /* seconds before an unused stream closes */
};

void ic_xmpp_config_defaults(struct ic_xmpp_config *c);

/* Creates the server on LOOP and starts listening. */
int ic_xmpp_server_new(struct uv_loop_s *loop,
                       const struct ic_xmpp_config *cfg,
                       const struct ic_xmpp_ops *ops,
                       struct ic_xmpp_server **out,
                       char *why,
                       size_t why_len);
/* Ends every stream with </stream:stream>, closes listeners; CB runs when
 * everything is closed (then ic_xmpp_server_free). */
void ic_xmpp_server_shutdown(struct ic_xmpp_server *srv,
                             void (*cb)(void *data),
                             void *data);
void ic_xmpp_server_free(struct ic_xmpp_server *srv);

/* A session of another node of the cluster: FULL_JID is available there
 * with PRESENCE (copied), or, PRESENCE NULL, gone. The engine routes
 * stanzas for it to NODE from then on, counts it among the user's
 * resources, and delivers the presence change to the local sessions that
 * see it (the contacts whose roster subscribes to the user, the user's own
 * other resources). */
void ic_xmpp_server_remote_presence(struct ic_xmpp_server *srv,
                                    const char *full_jid,
                                    unsigned node,
                                    const struct ic_xml *presence);
/* Forgets every remote session (before the application re-reads the
 * cluster's presence registry); nothing is delivered. */
void ic_xmpp_server_remote_reset(struct ic_xmpp_server *srv);
/* A stanza node FROM routed here (ST taken), sent under FROM's presence
 * lease INCARNATION (0: unknown): to local session TARGET (a full JID),
 * or, TARGET NULL, by the delivery rules for its 'to' among this node's
 * sessions. What cannot be delivered is bounced to its sender (errors are
 * never bounced). Available presence from a full JID is remembered
 * (sender, recipient, FROM, INCARNATION) until its unavailable comes, or
 * until ic_xmpp_server_remote_node_gone withdraws it. */
void ic_xmpp_server_deliver_routed(struct ic_xmpp_server *srv,
                                   struct ic_xml *st,
                                   const char *target,
                                   unsigned from,
                                   uint64_t incarnation);
/* NODE's lease INCARNATION ended (the registry's lease_end change): every
 * session it had is gone. The local recipients of available presence that
 * NODE routed here under that incarnation or an earlier one (directed
 * presence, presence shared when a subscription was approved), which the
 * registry may never have held, get unavailable presence from each
 * sender. */
void ic_xmpp_server_remote_node_gone(struct ic_xmpp_server *srv,
                                     unsigned node,
                                     uint64_t incarnation);

/* Parses one XML element (TEXT, LEN bytes) in default namespace NS with
 * the stream parser's rules (no DTD, entities, comments or PIs); NULL when
 * it is not exactly one well-formed element. */
struct ic_xml *ic_xml_parse(const char *text, size_t len, const char *ns);

struct ic_xmpp_stats {
    size_t connections;
    size_t sessions;
    uint64_t stanzas_in, stanzas_out;
};
void ic_xmpp_server_stats(const struct ic_xmpp_server *srv,
                          struct ic_xmpp_stats *out);

/* ---------------------------------------------------------------------
 * Components: a JID the server answers for itself (the catalog service),
 * with XEP-0030 disco and XEP-0050 ad-hoc commands carrying XEP-0244 IO
 * Data.
 */

struct ic_adhoc_req;

struct ic_adhoc_command {
    const char *node;
    const char *name;
    bool admin_only;
    /* Runs on execute, next or complete. Answer now or later with
     * ic_adhoc_done / ic_adhoc_fail; exactly once per request. */
    void (*handler)(void *data, struct ic_adhoc_req *req);
};

struct ic_xmpp_component {
    const char *jid; /* e.g. "service.example.org" */
    const char *identity_category;
    const char *identity_type;
    const char *identity_name;
    const struct ic_adhoc_command *commands;
    size_t ncommands;
    void *data;
};

int ic_xmpp_component_add(struct ic_xmpp_server *srv,
                          const struct ic_xmpp_component *c);

/* The answer to a component's own iq request: the <iq type='result'/> or
 * <iq type='error'/> that came back (borrowed for the call), or NULL when
 * none came within the timeout or the server shut down first. */
typedef void (*ic_xmpp_iq_cb)(void *arg, const struct ic_xml *answer);

/* Sends IQ (taken; type 'get' or 'set', its 'to' any JID: a local user, a
 * component, a user on another node, or another domain over S2S) from the
 * component FROM_JID (registered with ic_xmpp_component_add), with a fresh
 * 'id'. CB runs exactly once: with the answer, with an error answer when it
 * cannot be routed (remote-server-not-found...), or with NULL after
 * TIMEOUT_MS. Returns 0, or IC_EVALUE (FROM_JID is not a component, IQ is
 * not a request); then CB never runs. */
int ic_xmpp_component_iq(struct ic_xmpp_server *srv,
                         const char *from_jid,
                         struct ic_xml *iq,
                         unsigned timeout_ms,
                         ic_xmpp_iq_cb cb,
                         void *arg);

/* The request's parts. */
const char *ic_adhoc_from(const struct ic_adhoc_req *r); /* full JID */
const char *ic_adhoc_from_local(const struct ic_adhoc_req *r);
bool ic_adhoc_is_admin(const struct ic_adhoc_req *r);
const char *ic_adhoc_node(const struct ic_adhoc_req *r);
const char *ic_adhoc_action(const struct ic_adhoc_req *r); /* "execute"...*/
/* The <command/> element of the request (its children: the payload). */
const struct ic_xml *ic_adhoc_command_elem(const struct ic_adhoc_req *r);

/* Completes the command: status='completed', PAYLOAD (ownership taken, may
 * be NULL) inside <command/>, and an optional note (type "info", "warn"
 * or "error"). */
void ic_adhoc_done(struct ic_adhoc_req *r,
                   struct ic_xml *payload,
                   const char *note_type,
                   const char *note);
/* Answers with a stanza error CONDITION (e.g. "bad-request") of TYPE
 * ("modify", "cancel", "auth") and an optional text. */
void ic_adhoc_fail(struct ic_adhoc_req *r,
                   const char *type,
                   const char *condition,
                   const char *text);

/* ---------------------------------------------------------------------
 * Outgoing client streams (client.c): the initiating side of RFC 6120 for
 * the operator's tool and the tests; TCP or direct TLS, STARTTLS required,
 * the server's certificate verified, SASL, resource binding, then stanzas
 * and iq requests with their answers.
 *
 * Happy path: ic_xmpp_client_new() connects at once; on_ready runs when
 * the resource is bound; ic_xmpp_client_iq() sends requests whose answers
 * come to their callbacks; ic_xmpp_client_close() ends the stream and
 * on_closed runs once, last, whatever happened (then the client frees
 * itself when its handles are closed: never call anything on it after
 * on_closed).
 *
 * Failure modes: a refused connection, a certificate that does not chain
 * to the CA or name the domain, a server without STARTTLS, no acceptable
 * mechanism, a wrong password or a server that cannot prove it knows it
 * (SCRAM's server signature), a stream error, the deadline: each ends the
 * stream and on_closed gets the code (IC_ECONNECT, IC_EAUTH, IC_ETIMEDOUT,
 * IC_EIO ...) and a one-line reason. Pending iq callbacks then get NULL.
 *
 * As with the server, the process must ignore SIGPIPE: a peer that closes
 * first would otherwise kill it on the next write.
 */

struct ic_xmpp_client;

struct ic_xmpp_client_opts {
    const char *host; /* address to connect to (numeric or a name) */
    int port;
    const char *domain;    /* the stream's 'to', the TLS name checked */
    bool direct_tls;       /* XEP-0368: TLS first, ALPN xmpp-client */
    const char *ca;        /* CA file; NULL: the system trust store */
    const char *cert;      /* client certificate (EXTERNAL), or NULL */
    const char *key;       /* its key */
    const char *user;      /* localpart; NULL with a certificate: EXTERNAL */
    const char *password;  /* NULL: EXTERNAL */
    const char *mechanism; /* force one ("SCRAM-SHA-1"...); NULL: best */
    const char *resource;  /* requested resource, or NULL */
    unsigned timeout_ms;   /* connect + log in; 0: 10 s */
    size_t max_stanza;     /* largest stanza accepted; 0: 64 MiB */
};

struct ic_xmpp_client_cbs {
    /* Bound as FULL_JID: stanzas may flow. */
    void (*on_ready)(void *data, const char *full_jid);
    /* A stanza that is not the answer to one of our iqs (ownership passes
     * to the callee). May be NULL: such stanzas are dropped (iq get/set
     * get service-unavailable, pings are answered). */
    void (*on_stanza)(void *data, struct ic_xml *st);
    /* The stream ended: ERR 0 after a clean close, or an IC_E* code. */
    void (*on_closed)(void *data, int err, const char *why);
};

/* Starts connecting on LOOP. The options' strings are copied. */
int ic_xmpp_client_new(struct uv_loop_s *loop,
                       const struct ic_xmpp_client_opts *o,
                       const struct ic_xmpp_client_cbs *cbs,
                       void *data,
                       struct ic_xmpp_client **out);
/* Sends ST as is (after on_ready). */
int ic_xmpp_client_send(struct ic_xmpp_client *c, const struct ic_xml *st);
/* Sends IQ (ownership taken) with a fresh id; CB gets the result or error
 * iq (owned by the callee) or NULL when the stream ends first. */
int ic_xmpp_client_iq(struct ic_xmpp_client *c,
                      struct ic_xml *iq,
                      void (*cb)(void *data, struct ic_xml *reply),
                      void *data);
/* The same for an iq the caller wrote: HEAD (ending inside its id
 * attribute's opening quote), the fresh id, then TAIL (from the closing
 * quote on) are sent as they are. For a generator that sends one stanza
 * many times. */
int ic_xmpp_client_iq_text(struct ic_xmpp_client *c,
                           const char *head,
                           size_t head_len,
                           const char *tail,
                           size_t tail_len,
                           void (*cb)(void *data, struct ic_xml *reply),
                           void *data);
/* The channel-binding type SCRAM-PLUS used, or NULL (after on_ready). */
const char *ic_xmpp_client_binding(const struct ic_xmpp_client *c);
/* The SASL mechanism used (after on_ready). */
const char *ic_xmpp_client_mechanism(const struct ic_xmpp_client *c);
/* Ends the stream with </stream:stream>; on_closed follows. */
void ic_xmpp_client_close(struct ic_xmpp_client *c);

/* ---------------------------------------------------------------------
 * Cluster links (link.c): node-to-node streams with mutual TLS under the
 * cluster CA, carrying elements of any namespace between the nodes of one
 * cluster (forwarded writes, routed stanzas). Each node keeps one outgoing
 * link to every peer it knows (reconnected with exponential back-off) and
 * accepts the peers' links; a message goes out on the sender's own link
 * and arrives on the receiver's accepted one.
 *
 * A link is opened with direct TLS (ALPN "icroot-link"): both sides show a
 * certificate of the cluster CA naming the cluster's domain and, in its
 * subject's OU, "node N"; the stream header's 'from' must be that N, a
 * member (ops->is_member) other than ourselves, and the outgoing side
 * checks that it reached the node it meant. Anything else ends the link
 * with a stream error (not-authorized, improper-addressing).
 */

#define IC_NS_LINK "urn:icroot:link:0"

struct ic_xmpp_links;

struct ic_xmpp_links_config {
    unsigned self;           /* this node's id, 1..65535 */
    const char *address;     /* where to listen */
    int port;                /* 0: no listener (tests) */
    const char *domain;      /* the cluster's domain, in every node's cert */
    const char *cert, *key;  /* this node's certificate ("OU=node N") */
    const char *ca;          /* the cluster CA */
    unsigned backoff_min_ms; /* first reconnect delay; 0: 100 ms */
    unsigned backoff_max_ms; /* its ceiling; 0: 5 s */
    size_t queue_max;        /* bytes held per peer while it is down; 0:
                                16 MiB */
    size_t max_stanza;       /* largest message accepted; 0: 64 MiB */
    /* Announced in this node's stream headers (attribute `level`): what
     * the caller's peers may rely on it knowing; 0 is not announced. */
    unsigned level;
};

struct ic_xmpp_links_ops {
    void *data;
    /* Whether node ID may link with us now. */
    bool (*is_member)(void *data, unsigned id);
    /* A message from node FROM (ownership passes to the callee). */
    void (*on_message)(void *data, unsigned from, struct ic_xml *msg);
    /* Our link to node ID is up (UP true) or down; may be NULL. */
    void (*on_peer)(void *data, unsigned id, bool up);
};

int ic_xmpp_links_new(struct uv_loop_s *loop,
                      const struct ic_xmpp_links_config *cfg,
                      const struct ic_xmpp_links_ops *ops,
                      struct ic_xmpp_links **out,
                      char *why,
                      size_t why_len);
/* Where node ID listens (HOST:PORT); HOST NULL forgets the peer and
 * closes its link. Setting the same address again changes nothing. */
int ic_xmpp_links_set_peer(struct ic_xmpp_links *l,
                           unsigned id,
                           const char *host,
                           int port);
/* Sends MSG to node ID: at once when the link is up, else queued until it
 * is. IC_ENOTFOUND for an unknown peer, IC_ELIMIT when its queue is full
 * (the message is dropped: the caller retries or fails its request). */
int ic_xmpp_links_send(struct ic_xmpp_links *l,
                       unsigned id,
                       const struct ic_xml *msg);
bool ic_xmpp_links_up(const struct ic_xmpp_links *l, unsigned id);
/* The level node ID announced in its stream header (0 when it announced
 * none, an older build), or -1 while our link to it is not up. */
int ic_xmpp_links_peer_level(const struct ic_xmpp_links *l, unsigned id);
/* Closes every link and the listener; CB runs when all is closed, then
 * free L with ic_xmpp_links_free. */
void ic_xmpp_links_shutdown(struct ic_xmpp_links *l,
                            void (*cb)(void *data),
                            void *data);
void ic_xmpp_links_free(struct ic_xmpp_links *l);

#endif /* IC_XMPP_H */
