/* dev.h - `icroot dev` (private to node/). */
#ifndef IC_NODE_DEV_H
#define IC_NODE_DEV_H

#include <stdbool.h>

#include "ic_store.h"

struct ic_dev_opts {
    int nodes;
    const char *dir;
    int base_port;
    const char *domain;
    const char *role;
    const char *ontology;
    bool no_sample;
    /* --s2s-peer DOMAIN=HOST:PORT: written to every node's [s2s] peers */
    const char *s2s_peers[16];
    int n_s2s_peers;
    const char *s2s_dns; /* --s2s-dns HOST:PORT: [s2s] dns */
};

/* Runs the embedded default; returns the exit code. */
int ic_node_dev(const struct ic_dev_opts *o);

struct json_t;

/* A seed: one Raft command (a batch with client id 1, sequence 1, so a
 * cluster applies it once whichever nodes submit it) that loads
 * the .ttl files of ONTOLOGY (sample ones unless NO_SAMPLE, their domain
 * rewritten to DOMAIN) and puts the ACCOUNTS (SCRAM keys, never a password),
 * written to OUT (mode 0600). For `icroot dev` and `icroot seed` (operators,
 * the Ansible role). */
#define IC_SEED_ACCOUNTS_MAX 64
struct ic_seed_account {
    const char *name; /* local part */
    const char *password;
    bool admin;
};
struct ic_seed_opts {
    const char *out;
    const char *ontology;
    const char *domain;
    bool no_sample;
    const struct ic_seed_account *accounts;
    size_t n_accounts;
};
int ic_node_make_seed(const struct ic_seed_opts *o);

/* DIR/seed.cmd, unless it exists: one Raft command (a batch with client id
 * 1, sequence 1, so the cluster applies it once whichever nodes submit it)
 * loading ontology/<name>.ttl (the sample's domain rewritten to the
 * cluster's, unless no_sample) and putting the accounts of ACC ({"name":
 * "password"}; "admin" is the admin). Mode 0600: it holds SCRAM keys. */
int ic_dev_make_seed(const struct ic_dev_opts *o,
                     const char *dir,
                     struct json_t *acc);

#endif /* IC_NODE_DEV_H */
