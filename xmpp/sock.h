/*
 * sock.h - one TCP connection carrying one XML stream, in the clear or over
 * TLS (private to xmpp/): the plumbing under outgoing client streams
 * (client.c) and cluster links (link.c), both directions. The owner keeps
 * the state machine; the socket resolves and connects, reads, decrypts,
 * feeds the parser, encrypts and writes.
 *
 * Happy path: ic_xmpp__sock_connect() (or _accept()), on_connected, the
 * owner sends its header with ic_xmpp__sock_send(), the parser's callbacks
 * (the owner's) get the peer's header and stanzas; ic_xmpp__sock_start_tls()
 * at <proceed/> or at once for direct TLS, on_tls_ready when the handshake
 * is done; ic_xmpp__sock_close() at the end.
 *
 * Failure modes: resolution, connection, read and TLS errors call on_down
 * once with an IC_E* code and a reason (the owner then closes). After a
 * parser callback stops the stream (ic_xml_stream_stop) because TLS
 * begins, the rest of that read is dropped: a peer sends nothing in the
 * clear after <proceed/>, so such bytes are an injection.
 *
 * Memory: the socket lives inside its owner, which frees itself only from
 * on_closed (every handle and request is finished then). The parser given
 * to the socket is freed with it.
 */
#ifndef IC_XMPP_SOCK_H
#define IC_XMPP_SOCK_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "ic_xmpp.h"
#include "tls.h"

struct ic_xmpp__sock_ops {
    void (*on_connected)(void *owner);
    void (*on_tls_ready)(void *owner);
    void (*on_down)(void *owner, int err, const char *why);
    void (*on_closed)(void *owner);
};

struct ic_xmpp__sock {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_getaddrinfo_t resolve;
    bool resolving;
    bool connected; /* TCP is up (accepted or connected) */
    bool down;      /* on_down has run */
    bool closing;   /* ic_xmpp__sock_close has run */
    struct ic_tls *tls;
    struct ic_xml_stream *stream; /* owned */
    const struct ic_xmpp__sock_ops *ops;
    void *owner;
    char *host;
    int port;
    char peer[64]; /* "ADDRESS:PORT" for logs */
};

/* Starts resolving HOST and connecting to PORT. STREAM (taken) parses what
 * arrives. */
void ic_xmpp__sock_connect(struct ic_xmpp__sock *s,
                           uv_loop_t *loop,
                           const char *host,
                           int port,
                           struct ic_xml_stream *stream,
                           const struct ic_xmpp__sock_ops *ops,
                           void *owner);
/* Accepts a connection waiting on LISTENER. IC_EIO if that fails: the
 * socket is closing then and on_closed follows. */
int ic_xmpp__sock_accept(struct ic_xmpp__sock *s,
                         uv_stream_t *listener,
                         struct ic_xml_stream *stream,
                         const struct ic_xmpp__sock_ops *ops,
                         void *owner);
/* Sends plaintext (encrypted when TLS is on). */
void ic_xmpp__sock_send(struct ic_xmpp__sock *s, const char *data, size_t len);
void ic_xmpp__sock_send_str(struct ic_xmpp__sock *s, const char *str);
/* Starts TLS: as a client of HOST (SNI and name check) or, HOST NULL, as a
 * server. */
int ic_xmpp__sock_start_tls(struct ic_xmpp__sock *s,
                            struct ic_tls_ctx *ctx,
                            const char *host);
/* Ends the connection: TLS close_notify, what was written goes out, then
 * the socket closes; on_closed follows. Safe to call more than once. */
void ic_xmpp__sock_close(struct ic_xmpp__sock *s);

#endif /* IC_XMPP_SOCK_H */
