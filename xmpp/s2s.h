/*
 * s2s.h - federation with other domains (private to xmpp/): the server's
 * S2S listener, one outgoing stream per (our domain, their domain) pair with
 * the stanzas that wait for it, incoming streams, and where peers are.
 *
 * Happy path, outgoing (s2s_out.c): a stanza for another domain finds the
 * pair's stream up and is written, or waits in the pair's queue while the
 * peer is looked up (a configured route, else DNS SRV, else port 5269),
 * connected, STARTTLS'd, and authenticated: SASL EXTERNAL with our
 * certificate when the peer's certificate names its domain and it offers
 * EXTERNAL (XEP-0178), else, where allowed, dialback (XEP-0220).
 *
 * Happy path, incoming (s2s_in.c): header to a domain we host, STARTTLS
 * (required), then EXTERNAL when the peer's client certificate names the
 * domain in its header's 'from', or dialback; then stanzas, each checked:
 * 'from' in a domain this stream authenticated, 'to' in one we host.
 *
 * Failure modes: an unresolvable or unreachable peer, a TLS or certificate
 * failure without dialback to fall back on, a refused authentication, or a
 * handshake past its deadline end the attempt; the next target is tried,
 * and when none is left every waiting stanza is bounced
 * (remote-server-not-found, or remote-server-timeout). Hostile input on an
 * incoming stream (a spoofed 'from', unsolicited dialback, stanzas before
 * authentication, bad XML) ends that stream with the stream error RFC 6120
 * names, and nothing else.
 */
#ifndef IC_XMPP_S2S_H
#define IC_XMPP_S2S_H

#include "sock.h"
#include "xmpp_int.h"

#define IC_NS_DIALBACK "jabber:server:dialback"
#define IC_NS_DIALBACK_FEATURE "urn:xmpp:features:dialback"

/* Stream states, both directions; each direction's moves are one table
 * in its file. */
enum s2s_state {
    S2S_CONNECTING = 0,  /* out: resolving and connecting */
    S2S_FEATURES_TLS,    /* out: header sent, waiting for <starttls/> */
    S2S_STARTTLS,        /* out: <starttls/> sent */
    S2S_HEADER,          /* in: waiting for the peer's header */
    S2S_FEATURES_TLS_IN, /* in: <starttls/> offered, waiting for it */
    S2S_TLS,             /* both: TLS handshake */
    S2S_TLS_HEADER,      /* in: TLS up, waiting for the header */
    S2S_FEATURES_AUTH,   /* out: header sent over TLS, waiting for features;
                            in: features sent, waiting for auth/dialback */
    S2S_SASL,            /* out: <auth mechanism='EXTERNAL'/> sent */
    S2S_FEATURES_UP,     /* out: restarted after SASL, waiting for features;
                            in: waiting for the restarted header */
    S2S_DIALBACK,        /* out: <db:result/> sent, waiting for the verdict */
    S2S_UP,              /* stanzas flow */
    S2S_CLOSING,
    S2S__COUNT
};

struct s2s_peer;

/* One S2S stream, outgoing (PEER set) or incoming. */
struct s2s_stream {
    struct ic_xmpp__s2s *s2s;
    struct ic_xmpp__sock sock;
    struct s2s_peer *peer; /* outgoing: the pair it serves */
    enum s2s_state state;
    char *local;  /* our domain on this stream */
    char *remote; /* theirs (incoming: as the header claimed) */
    char *id;     /* the receiving side's stream id */
    /* incoming: the remote domains this stream authenticated, as one
     * NUL-separated list ending in an empty string (EXTERNAL gives one,
     * dialback may add more) */
    struct ic_buf authed;
    bool tls_verified;       /* the peer's certificate names its domain */
    bool header_sent;        /* our header is out on the current stream */
    bool direct_tls;         /* TLS from the first byte (XEP-0368) */
    uint64_t started;        /* ms */
    uint64_t last_used;      /* ms: the last stanza either way */
    struct s2s_stream *next; /* every stream of the server */
};

/* A place to try for a peer. */
struct s2s_target {
    char *host;
    int port;
    bool direct_tls; /* XEP-0368: TLS from the first byte */
};

/* The outgoing side of one (local, remote) domain pair. */
struct s2s_peer {
    struct ic_xmpp__s2s *s2s;
    char *local, *remote;
    struct s2s_stream *out; /* the current attempt or the stream up */
    bool resolving;
    struct s2s_target *targets;
    size_t n_targets, next_target;
    char *last_error;      /* why the last attempt failed */
    struct ic_xml **queue; /* stanzas waiting for the stream */
    size_t n_queue, cap_queue;
    uint64_t queued_since; /* ms: the oldest waiting stanza */
    /* dialback verifications we asked this peer to make (<db:verify/>),
     * for incoming streams waiting on the answer */
    struct s2s_verify *verifies;
    struct s2s_peer *next;
};

/* An incoming <db:result/> waiting for the authoritative server's word. */
struct s2s_verify {
    char *id;              /* the incoming stream's id */
    struct s2s_stream *in; /* cleared if that stream ends first */
    char *key;
    bool sent;
    struct s2s_verify *next;
};

struct ic_xmpp__s2s {
    struct ic_xmpp_server *srv;
    uv_tcp_t listener;
    uv_tcp_t listener_tls; /* direct TLS ([s2s] tls_port), if any */
    uv_timer_t sweep;
    struct ic_tls_ctx *tls_server, *tls_client;
    /* the same with ALPN "xmpp-server", for direct TLS (XEP-0368) */
    struct ic_tls_ctx *tls_server_direct, *tls_client_direct;
    struct s2s_stream *streams;
    struct s2s_peer *peers;
    char db_secret[65]; /* hex SHA-256 of the configured secret (XEP-0185) */
    bool dialback;
    bool shutting_down;
};

/* s2s.c */
extern const char *const ic_xmpp__s2s_state_names[S2S__COUNT];
/* DOMAIN's pinned certificate (ops->s2s_pin) against the one ST's peer
 * presented: 0 when they are the same, IC_EAUTH when not (logged),
 * IC_ENOTFOUND when nothing is pinned for DOMAIN. */
int ic_xmpp__s2s_check_pin(struct s2s_stream *st, const char *domain);
/* Our domain and our components' domains are hosted here. */
bool ic_xmpp__s2s_hosted(const struct ic_xmpp_server *srv, const char *domain);
/* Adds ST to the server's list (created by s2s_in.c or s2s_out.c). */
void ic_xmpp__s2s_stream_add(struct ic_xmpp__s2s *s, struct s2s_stream *st);
/* Ends stream ST: a stream error COND first (NULL: none), then
 * </stream:stream> when a stream is open, then close. */
void ic_xmpp__s2s_stream_fail(struct s2s_stream *st,
                              const char *cond,
                              const char *why);
/* The stream ended (socket closed): unlink, tell its peer, free. */
void ic_xmpp__s2s_stream_closed(struct s2s_stream *st);
void ic_xmpp__s2s_send_header(struct s2s_stream *st, bool with_id);
/* XEP-0185 dialback key for stream ID from ORIGINATING to RECEIVING, as
 * lower-case hex into OUT (65 bytes). */
void ic_xmpp__s2s_db_key(const struct ic_xmpp__s2s *s,
                         const char *receiving,
                         const char *originating,
                         const char *id,
                         char out[65]);
/* The peer for (LOCAL, REMOTE), created if missing. */
struct s2s_peer *ic_xmpp__s2s_peer(struct ic_xmpp__s2s *s,
                                   const char *local,
                                   const char *remote);
/* The outgoing stream of PEER is up: the queue goes out. */
void ic_xmpp__s2s_peer_up(struct s2s_peer *p);
/* No target of PEER is left: what waits is bounced. */
void ic_xmpp__s2s_peer_failed(struct s2s_peer *p);
/* A stanza (taken) arrived on authenticated incoming stream ST. */
void ic_xmpp__s2s_in_stanza(struct s2s_stream *st, struct ic_xml *x);
/* Stream ID authenticated DOMAIN by dialback: a verdict for the
 * incoming stream waiting on it (s2s_in.c). */
void ic_xmpp__s2s_in_verdict(struct s2s_stream *in,
                             const char *domain,
                             bool valid);

/* s2s_out.c */
/* Starts (or continues) connecting PEER to its next target. */
void ic_xmpp__s2s_out_connect(struct s2s_peer *p);
/* Sends <db:verify/> for an incoming stream on PEER's stream (opened if
 * need be); the answer comes back to ic_xmpp__s2s_in_verdict. */
void ic_xmpp__s2s_out_verify(struct s2s_peer *p, struct s2s_verify *v);

/* s2s_in.c: a connection on the S2S port, or (DIRECT_TLS) on the direct
 * TLS port. */
void ic_xmpp__s2s_in_accept(struct ic_xmpp__s2s *s, bool direct_tls);

/* s2s_dns.c: DOMAIN's S2S targets, one per address (SRV
 * _xmpps-server._tcp and _xmpp-server._tcp in preference order;
 * DOMAIN:5269 when there is no record), looked up on a worker thread with
 * c-ares (and DNS_SERVER, when given, for the addresses too). CB runs on
 * the loop with RC 0 and the targets (taken), or an IC_E* code (no
 * service: IC_ENOTFOUND). */
typedef void (*ic_xmpp__s2s_dns_cb)(void *arg,
                                    int rc,
                                    struct s2s_target *t,
                                    size_t n);
int ic_xmpp__s2s_resolve(uv_loop_t *loop,
                         const char *dns_server,
                         const char *domain,
                         ic_xmpp__s2s_dns_cb cb,
                         void *arg);

#endif /* IC_XMPP_S2S_H */
