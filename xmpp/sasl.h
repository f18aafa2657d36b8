/*
 * sasl.h - the server side of SASL (private to xmpp/): PLAIN, EXTERNAL,
 * SCRAM-SHA-1, SCRAM-SHA-256 and their -PLUS variants (RFC 4616, RFC 4422
 * appendix A, RFC 5802, RFC 7677), and strict base64 for the wire.
 *
 * Happy path: the connection receives <auth mechanism='M'>, calls
 * ic_sasl_new(M) (IC_EINVAL: answer <invalid-mechanism/>), base64-decodes
 * the element's text and calls ic_sasl_step() with it; then, for every
 * <response/>, ic_sasl_step() again, until the result is IC_SASL_SUCCESS
 * (send <success/> with the output as additional data, then
 * ic_sasl_user()) or IC_SASL_FAILURE (send <failure/> with the condition
 * of ic_sasl_condition()). On <abort/> the connection answers <aborted/>
 * itself and frees the exchange.
 *
 * Failure modes are results, not errors: malformed input is
 * malformed-request or incorrect-encoding, a wrong password or proof is
 * not-authorized. An unknown user goes through the same exchange as a
 * known one, with fake credentials derived from ops->secret, and fails
 * only at the end with not-authorized, so that neither the messages nor
 * the timing tell whether an account exists.
 *
 * Memory: the exchange keeps no password; the ones it sees are cleansed
 * (OPENSSL_cleanse) before ic_sasl_step() returns. The caller should
 * cleanse its own copy of the decoded input.
 */
#ifndef IC_XMPP_SASL_H
#define IC_XMPP_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ic_xmpp.h"

/* ---------------------------------------------------------------------
 * Base64 (RFC 4648 section 4, the alphabet with '+' and '/'), as the SASL
 * elements carry it (RFC 6120 6.4.2)
 */

/* Encodes LEN bytes; a new NUL-terminated string the caller frees. Zero
 * bytes give "=", the wire form of empty data in RFC 6120. */
char *ic_base64_encode(const unsigned char *in, size_t len);
/* Decodes IN_LEN characters strictly: only the alphabet, a length that is
 * a multiple of 4, correct padding, no white space, no non-zero bits in
 * the padding. "" and "=" give zero bytes. On success *OUT (NUL-terminated
 * past *OUT_LEN; the caller frees) and *OUT_LEN are written; otherwise
 * IC_EVALUE. */
int ic_base64_decode(const char *in,
                     size_t in_len,
                     unsigned char **out,
                     size_t *out_len);

/* ---------------------------------------------------------------------
 * Server-side SASL exchanges
 */

enum ic_sasl_result {
    IC_SASL_CHALLENGE, /* send <challenge/> with the output */
    IC_SASL_SUCCESS,   /* send <success/> (with the output, if any) */
    IC_SASL_FAILURE,   /* send <failure/> with ic_sasl_condition() */
};

/* SASL failure conditions (RFC 6120 6.5): name, enum. */
#define IC_SASL_CONDITIONS(X)                             \
    X("aborted", IC_SASL_ABORTED)                         \
    X("account-disabled", IC_SASL_ACCOUNT_DISABLED)       \
    X("credentials-expired", IC_SASL_CREDENTIALS_EXPIRED) \
    X("encryption-required", IC_SASL_ENCRYPTION_REQUIRED) \
    X("incorrect-encoding", IC_SASL_INCORRECT_ENCODING)   \
    X("invalid-authzid", IC_SASL_INVALID_AUTHZID)         \
    X("invalid-mechanism", IC_SASL_INVALID_MECHANISM)     \
    X("malformed-request", IC_SASL_MALFORMED_REQUEST)     \
    X("mechanism-too-weak", IC_SASL_MECHANISM_TOO_WEAK)   \
    X("not-authorized", IC_SASL_NOT_AUTHORIZED)           \
    X("temporary-auth-failure", IC_SASL_TEMPORARY_AUTH_FAILURE)

enum ic_sasl_condition {
#define IC__SASL_ENUM(name, e) e,
    IC_SASL_CONDITIONS(IC__SASL_ENUM)
#undef IC__SASL_ENUM
        IC_SASL__COUNT
};

/* The condition's element name ("not-authorized"); NULL when out of
 * range. */
const char *ic_sasl_condition_name(enum ic_sasl_condition c);

/* What the exchange needs from the server. The struct is copied by
 * ic_sasl_new(); the strings and bytes it points to must outlive the
 * exchange. */
struct ic_sasl_ops {
    void *data; /* passed to the callbacks */
    /* The stream's domain: an authzid is accepted when empty or equal to
     * the user's own bare JID "user@domain" (compared prepared). */
    const char *domain;
    /* Key of the fake credentials of unknown users. A cluster should give
     * every node the same one; NULL means a random key per process. */
    const unsigned char *secret;
    size_t secret_len;
    /* Iteration count of the fake credentials: the one accounts are
     * created with (0: IC_SCRAM_MIN_ITERATIONS). */
    uint32_t iterations;
    /* The credentials of USER (nodeprep'd) for hash H into *OUT: 0,
     * IC_ENOTFOUND for an unknown user (or one without credentials for
     * H), anything else for temporary-auth-failure. Credentials without
     * salt or iterations count as unknown. PLAIN checks the SHA-256 ones.
     * NULL: PLAIN and SCRAM are not offered. */
    int (*lookup)(void *data,
                  const char *user,
                  enum ic_scram_hash h,
                  struct ic_scram_creds *out);
    /* EXTERNAL: the user the TLS client certificate authenticates, given
     * the AUTHZID the client sent (NULL when none; as sent, not prepared:
     * compare it through ic_jid_parse()). 0 and *USER_OUT (the nodeprep'd
     * user, ic_malloc'd; the exchange takes it); IC_EVALUE for
     * invalid-authzid; IC_EBUSY or IC_EIO for temporary-auth-failure;
     * anything else for not-authorized. NULL: EXTERNAL is not offered. */
    int (*external)(void *data, const char *authzid, char **user_out);
};

/* Channel-binding data of the connection (copied by ic_sasl_new()): RFC
 * 9266 tls-exporter (32 bytes of keying material, label
 * "EXPORTER-Channel-Binding", empty context) and RFC 5929
 * tls-server-end-point (the hash of our certificate). A NULL pointer or a
 * zero length means the type is not available. */
struct ic_sasl_cb {
    const unsigned char *tls_exporter;
    size_t tls_exporter_len;
    const unsigned char *tls_server_end_point;
    size_t tls_server_end_point_len;
    bool tls; /* the stream is encrypted */
};

struct ic_sasl;

#define IC_SASL_MAX_MECHANISMS 6

/* The mechanisms to advertise given OPS and CB (NULL: no TLS), strongest
 * first, into NAMES (room for MAX); returns how many were written. The
 * -PLUS variants need channel-binding data, PLAIN and EXTERNAL need TLS
 * and their callback. */
size_t ic_sasl_mechanisms(const struct ic_sasl_ops *ops,
                          const struct ic_sasl_cb *cb,
                          const char **names,
                          size_t max);

/* Starts an exchange of MECHANISM. PLUS_ADVERTISED tells whether the
 * stream features offered a -PLUS mechanism (a client flag "y" is then a
 * downgrade, RFC 5802 section 6). IC_EINVAL when the mechanism is unknown
 * or not available with OPS and CB (answer <invalid-mechanism/>); PLAIN
 * and EXTERNAL without TLS start, then fail with encryption-required. */
int ic_sasl_new(const char *mechanism,
                const struct ic_sasl_ops *ops,
                const struct ic_sasl_cb *cb,
                bool plus_advertised,
                struct ic_sasl **out);
/* ic_sasl_free(NULL) is a no-op. */
void ic_sasl_free(struct ic_sasl *s);

/* One step with the decoded data IN of <auth/> or <response/>. IN NULL
 * (only on the first step) means <auth/> carried no initial response: the
 * result is an empty challenge. On return *RES is set and *OUT is the
 * data to send (ic_malloc'd, the caller frees; NULL with *OUT_LEN 0 when
 * there is none: every failure, PLAIN and EXTERNAL success). Returns 0,
 * or IC_EINVAL when the exchange has already ended. */
int ic_sasl_step(struct ic_sasl *s,
                 const unsigned char *in,
                 size_t in_len,
                 unsigned char **out,
                 size_t *out_len,
                 enum ic_sasl_result *res);

/* After IC_SASL_FAILURE: why (IC_SASL__COUNT when nothing failed). */
enum ic_sasl_condition ic_sasl_condition(const struct ic_sasl *s);
/* After IC_SASL_SUCCESS: the authenticated user (the localpart, prepared);
 * NULL before. Valid until ic_sasl_free(). */
const char *ic_sasl_user(const struct ic_sasl *s);
/* The mechanism's name ("SCRAM-SHA-256-PLUS"). */
const char *ic_sasl_mechanism(const struct ic_sasl *s);

/* Tests only: the server part of SCRAM nonces becomes NONCE (printable
 * ASCII without ',', at most 64 characters) instead of random bytes, for
 * every exchange started afterwards; NULL restores random nonces. */
void ic_sasl__set_test_nonce(const char *nonce);

/* ---------------------------------------------------------------------
 * SCRAM primitives shared by scram.c and sasl.c
 */

/* HMAC(KEY, MSG) with H into OUT (ic_scram_hash_len(H) bytes). */
void ic_scram__hmac(enum ic_scram_hash h,
                    const unsigned char *key,
                    size_t key_len,
                    const void *msg,
                    size_t msg_len,
                    unsigned char *out);
/* H(MSG) into OUT. */
void ic_scram__hash(enum ic_scram_hash h,
                    const void *msg,
                    size_t msg_len,
                    unsigned char *out);

/* SaltedPassword = PBKDF2(SASLprep(PASSWORD), SALT, ITERATIONS) into OUT
 * (ic_scram_hash_len(H) bytes; the caller cleanses it). IC_EINVAL for a
 * password SASLprep refuses or bad parameters. */
int ic_scram__salted_password(enum ic_scram_hash h,
                              const char *password,
                              const unsigned char *salt,
                              size_t salt_len,
                              uint32_t iterations,
                              unsigned char *out);

/* ---------------------------------------------------------------------
 * Client-side SASL (outgoing streams): SCRAM-SHA-1/256 and -PLUS with
 * tls-exporter or tls-server-end-point, PLAIN, EXTERNAL.
 *
 * Happy path: ic_sasl_client_new() with the mechanism chosen from the
 * server's list, ic_sasl_client_start() for the initial response of
 * <auth/>, ic_sasl_client_step() for every <challenge/>, and
 * ic_sasl_client_finish() with the additional data of <success/>: for
 * SCRAM it checks the server's signature, so a server that does not know
 * the password is caught (IC_EAUTH).
 */

struct ic_sasl_client;

struct ic_sasl_client_opts {
    const char *mechanism; /* as offered: "SCRAM-SHA-256-PLUS" ... */
    const char *user;      /* authcid (localpart); NULL for EXTERNAL */
    const char *password;  /* NULL for EXTERNAL */
    const char *authzid;   /* EXTERNAL: the JID to act as, or NULL */
    /* -PLUS: the binding type ("tls-exporter", "tls-server-end-point")
     * and its data. */
    const char *cb_type;
    const unsigned char *cb_data;
    size_t cb_data_len;
    /* The client could bind but the server offered no -PLUS: GS2 "y". */
    bool cb_supported;
};

int ic_sasl_client_new(const struct ic_sasl_client_opts *o,
                       struct ic_sasl_client **out);
void ic_sasl_client_free(struct ic_sasl_client *c);
/* The initial response (*OUT ic_malloc'd, may be empty). */
int ic_sasl_client_start(struct ic_sasl_client *c,
                         unsigned char **out,
                         size_t *out_len);
/* The response to a challenge; IC_EVALUE for a malformed or hostile
 * challenge (bad nonce, iteration count below 4096). */
int ic_sasl_client_step(struct ic_sasl_client *c,
                        const unsigned char *in,
                        size_t in_len,
                        unsigned char **out,
                        size_t *out_len);
/* Checks <success/>'s data: 0, or IC_EAUTH when the server's signature is
 * wrong or missing. */
int ic_sasl_client_finish(struct ic_sasl_client *c,
                          const unsigned char *in,
                          size_t in_len);

#endif /* IC_XMPP_SASL_H */
