/*
 * tls.h - TLS over memory BIOs (private to xmpp/): the event loop owns the
 * socket; ciphertext read from it is fed in, plaintext comes out, and
 * plaintext written goes out as ciphertext to queue on the socket.
 */
#ifndef IC_XMPP_TLS_H
#define IC_XMPP_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "ic_xmpp.h"

struct ic_tls_ctx;
struct ic_tls;

struct ic_tls_ctx_opts {
    const char *cert; /* PEM chain */
    const char *key;
    const char *ca;           /* CA file for peer certificates (may be NULL) */
    bool tls13_only;          /* minimum TLS 1.3 instead of 1.2 */
    bool request_client_cert; /* ask for (not require) a client cert */
    const char *alpn;         /* protocol to select for direct TLS, or NULL */
    bool system_ca;           /* trust the system store as well as CA (S2S) */
    bool verify_late; /* client: finish the handshake whatever the peer's
                         certificate; the owner reads the verdict
                         (ic_tls_verify_error) and decides (S2S, where
                         dialback may stand in for a certificate) */
};

/* A server context. On failure *why gets a one-line reason. */
int ic_tls_ctx_new_server(const struct ic_tls_ctx_opts *o,
                          struct ic_tls_ctx **out,
                          char *why,
                          size_t why_len);
/* A client context (outgoing streams: icrootctl, cluster links, S2S): the
 * peer's certificate must chain to O->ca (or, when NULL, the system trust
 * store, which honours SSL_CERT_FILE); O->cert and O->key, when given,
 * are presented as the client certificate; O->alpn is offered. */
int ic_tls_ctx_new_client(const struct ic_tls_ctx_opts *o,
                          struct ic_tls_ctx **out,
                          char *why,
                          size_t why_len);
void ic_tls_ctx_free(struct ic_tls_ctx *ctx);

/* A server-side TLS session. */
int ic_tls_new(struct ic_tls_ctx *ctx, struct ic_tls **out);
/* A client-side TLS session to HOST: sent as SNI, and the handshake fails
 * unless the peer's certificate names HOST (RFC 6125 DNS-ID). */
int ic_tls_new_client(struct ic_tls_ctx *ctx,
                      const char *host,
                      struct ic_tls **out);
/* Why the peer's certificate was refused ("" when it was not). */
const char *ic_tls_verify_error(const struct ic_tls *t);
void ic_tls_free(struct ic_tls *t);

/* Ciphertext from the peer. */
void ic_tls_feed(struct ic_tls *t, const char *buf, size_t len);
/* Plaintext (handshaking as needed): appends what is available to OUT.
 * Returns 0 (possibly with nothing new), IC_EIO on a fatal TLS error
 * (*why set), IC_EEND when the peer closed TLS. */
int ic_tls_read(struct ic_tls *t,
                struct ic_buf *out,
                char *why,
                size_t why_len);
/* Encrypts plaintext. */
int ic_tls_write(struct ic_tls *t, const char *buf, size_t len);
/* Moves the ciphertext waiting to be sent into OUT. */
void ic_tls_take_output(struct ic_tls *t, struct ic_buf *out);
bool ic_tls_handshake_done(const struct ic_tls *t);
/* A quiet session gives back its record buffers (they come back with the
 * next record); false when it holds none or still has data in them. */
bool ic_tls_trim(struct ic_tls *t);
/* Sends close_notify (then take the output). */
void ic_tls_shutdown(struct ic_tls *t);

/* Channel binding (RFC 9266 tls-exporter, 32 bytes; RFC 5929
 * tls-server-end-point, the hash of the server's certificate). 0 or
 * IC_ENOTFOUND when not available (e.g. tls-exporter before TLS 1.3 without
 * extended master secret). */
int ic_tls_exporter(struct ic_tls *t, unsigned char out[32]);
int ic_tls_server_end_point(struct ic_tls *t, unsigned char *out, size_t *len);
/* "TLSv1.3" etc. */
const char *ic_tls_version(const struct ic_tls *t);
/* The xmppAddr (id-on-xmppAddr otherName) values of a verified client
 * certificate, or NULL: a NUL-separated list ending in an empty string;
 * the caller frees. */
char *ic_tls_peer_xmpp_addrs(struct ic_tls *t);
/* Whether the peer's certificate chains to a trusted CA and names DOMAIN
 * (RFC 6125 DNS-ID, or an xmppAddr of exactly DOMAIN: XEP-0178). */
bool ic_tls_peer_names(struct ic_tls *t, const char *domain);
/* "sha256:HEX" of the peer's certificate (DER), or NULL (the caller
 * frees). */
char *ic_tls_peer_fingerprint(struct ic_tls *t);
/* The node id a verified peer certificate names in its subject's OU
 * ("node N", as the cluster CA issues node certificates), or 0. */
unsigned ic_tls_peer_node_id(struct ic_tls *t);

#endif /* IC_XMPP_TLS_H */
