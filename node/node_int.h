/*
 * node_int.h - what the files of node/ share and the programs use, but the
 * rest of the project does not: the node's configuration file and the
 * development certificates `icroot dev` makes.
 *
 * The file format and every key are documented in docs/configuration.md.
 */
#ifndef IC_NODE_INT_H
#define IC_NODE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ic_common.h"

/* Configuration (config.c) */

enum ic_node_role {
    IC_NODE_ROLE_ROOT = 0,
    IC_NODE_ROLE_EXCHANGE,
};

/* TLS protocol versions, numerically equal to OpenSSL's TLS1_2_VERSION and
 * TLS1_3_VERSION, so they can be passed to SSL_CTX_set_min_proto_version. */
enum ic_tls_version {
    IC_TLS_1_2 = 0x0303,
    IC_TLS_1_3 = 0x0304,
};

/* One member of the cluster: [cluster] peers = ID=HOST:PORT, ... */
/* Another domain's S2S service at a fixed place ([s2s] peers). */
struct ic_node_s2s_route {
    char *domain; /* lower case; its subdomains go there too */
    char *host;
    uint16_t port;
};

struct ic_node_peer {
    unsigned id; /* 1..255 */
    char *host;  /* IP literal (without brackets) or host name */
    uint16_t raft_port;
};

/*
 * A node's configuration. Every string is owned by the struct (ic_malloc'd;
 * to replace one, ic_free it and store an ic_strdup); NULL means unset.
 * Paths are absolute after ic_node_config_load (relative ones in the file
 * are resolved against the file's directory). Times are in seconds, sizes
 * in bytes; 0 means "off" where docs/configuration.md says so.
 */
struct ic_node_config {
    struct {
        unsigned id;    /* 1..255; required (0 = unset) */
        char *data_dir; /* required */
        char *domain;   /* "intercloudexchg.test", lower case */
        enum ic_node_role role;
        enum ic_log_level log_level;
    } node;
    struct {
        char *address; /* "127.0.0.1" */
        uint16_t port; /* 15222 */
        uint16_t tls_port;
        size_t max_stanza;
        size_t max_stanza_preauth;
        unsigned handshake_timeout;
        unsigned idle_timeout;   /* 0: never */
        unsigned keepalive;      /* 0: off */
        unsigned login_throttle; /* per minute per address; 0: no limit */
    } c2s;
    struct {
        char *cert; /* required */
        char *key;  /* required */
        char *ca;   /* required */
        enum ic_tls_version min_version;
    } tls;
    struct {
        char *address;
        uint16_t port;
        uint16_t tls_port; /* direct TLS (XEP-0368); 0: none */
        bool dialback;
        char *secret; /* required when dialback */
        struct ic_node_s2s_route *routes;
        size_t n_routes;
        char *dns;             /* "HOST:PORT" for SRV lookups, or NULL */
        unsigned idle_timeout; /* seconds; 0: never */
    } s2s;
    struct {
        uint16_t raft_port;
        uint16_t link_port;
        struct ic_node_peer *peers; /* empty: a cluster of this node alone */
        size_t n_peers;
        unsigned election_timeout; /* ms */
        unsigned heartbeat;        /* ms */
        unsigned snapshot_threshold;
        unsigned snapshot_trailing;
        unsigned log_memory; /* MiB */
        char *seed; /* a command applied once when the cluster is new */
        bool join;  /* joins an existing cluster: no bootstrap */
    } cluster;
    struct {
        char *ontology_dir; /* NULL: the program's built-in default */
        bool load_sample;
    } catalog;
    struct {
        char **admins; /* local parts */
        size_t n_admins;
    } accounts;
};

/* Defaults for every key (docs/configuration.md); the required keys are
 * left unset. Release with ic_node_config_free. */
void ic_node_config_init(struct ic_node_config *c);

/* Releases what C holds and leaves it zeroed; C may be NULL. */
void ic_node_config_free(struct ic_node_config *c);

/*
 * Reads the INI file PATH into *OUT (which need not be initialised).
 *
 * Every problem is reported, not only the first: syntax errors, unknown
 * sections and keys, duplicate keys, bad values, missing required keys and
 * inconsistent values. On failure *ERRORS (if ERRORS is not NULL) gets an
 * ic_malloc'd text of one line per problem, "PATH:LINE: message" in line
 * order ("PATH: message" for what has no line), each ending in '\n'; free
 * it with ic_free. On success *ERRORS is set to NULL.
 *
 * Returns 0, IC_EIO (the file cannot be read) or IC_EVALUE (the content is
 * wrong). *OUT is written only on success.
 */
int ic_node_config_load(const char *path,
                        struct ic_node_config *out,
                        char **errors);

/*
 * Writes C to PATH as an INI file that ic_node_config_load reads back to
 * the same values (all keys, defaults included; unset strings omitted).
 * The file is replaced atomically and has mode 0600 (it may hold the
 * dialback secret). Returns 0, IC_EINVAL (a value cannot be written: a
 * line break, a " ;" that would read as a comment, leading or trailing
 * blanks, a line over 4096 characters) or IC_EIO.
 */
int ic_node_config_write(const char *path, const struct ic_node_config *c);

/* This node's own entry in c->cluster.peers, or NULL. */
const struct ic_node_peer *ic_node_config_self(const struct ic_node_config *c);

/* Whether S is a DNS name of letter-digit-hyphen labels (RFC 1123), at
 * most 253 characters, without a trailing dot. */
bool ic_node__dns_name_ok(const char *s);

/* Development certificates (devcerts.c) */

enum ic_devcerts_key {
    IC_DEVCERTS_RSA2048 = 0, /* the default */
    IC_DEVCERTS_EC_P256,
};

/* "rsa2048" (or "rsa") and "p256" (or "ec"); 0 or IC_EINVAL. */
int ic_devcerts_key_parse(const char *name, enum ic_devcerts_key *out);

/*
 * A development CA: DIR/ca.pem (self-signed, 10 years, CA:TRUE critical,
 * keyCertSign and cRLSign, subject key identifier, subject
 * "O=Intercloud Root (dev), CN=NAME") and DIR/ca.key (mode 0600). DIR is
 * created (mode 0750) if missing.
 *
 * If both files already exist, hold a CA certificate valid for at least 30
 * more days, match each other and have the KEY type, they are kept;
 * otherwise both are written anew (atomically, each through a temporary
 * file and rename).
 *
 * All ic_devcerts_make_* return 0, IC_EINVAL (bad argument), IC_EIO (file
 * system or OpenSSL failure) or IC_ECORRUPT (no usable CA in CA_DIR);
 * on failure WHY (if not NULL) gets a one-line reason.
 */
int ic_devcerts_make_ca(const char *dir,
                        const char *name,
                        enum ic_devcerts_key key,
                        char *why,
                        size_t why_len);

/*
 * The certificate of node NODE_ID (1..255) of DOMAIN, issued by the CA in
 * CA_DIR (ca.pem, ca.key): DIR/nodeN.pem (the leaf alone, no chain) and
 * DIR/nodeN.key (mode 0600). subjectAltName: DNS:DOMAIN,
 * DNS:service.DOMAIN and an id-on-xmppAddr otherName for each (RFC 6120
 * 13.7.1.4); extendedKeyUsage serverAuth, clientAuth; keyUsage
 * digitalSignature (and keyEncipherment for RSA); 2 years; random 128-bit
 * serial. Kept if already present, issued by that CA, valid for 30 more
 * days, naming DOMAIN and of the KEY type.
 */
int ic_devcerts_make_node(const char *dir,
                          const char *ca_dir,
                          const char *domain,
                          int node_id,
                          enum ic_devcerts_key key,
                          char *why,
                          size_t why_len);

/*
 * A client certificate for account JID (a bare JID, "cloud1@DOMAIN"), for
 * SASL EXTERNAL: DIR/NAME.pem and DIR/NAME.key, issued by the CA in CA_DIR,
 * subjectAltName holding only an id-on-xmppAddr otherName with JID,
 * subject CN=JID, extendedKeyUsage clientAuth, keyUsage digitalSignature.
 * NAME is a plain file name (no '/'). Kept like the node's.
 */
int ic_devcerts_make_client(const char *dir,
                            const char *ca_dir,
                            const char *jid,
                            const char *name,
                            enum ic_devcerts_key key,
                            char *why,
                            size_t why_len);

#endif /* IC_NODE_INT_H */
