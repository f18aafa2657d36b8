/*
 * config_int.h - what the reader (config.c) and the writer
 * (config_write.c) of the node's configuration share (private to node/):
 * the table of keys and the names of enumerated values.
 */
#ifndef IC_NODE_CONFIG_INT_H
#define IC_NODE_CONFIG_INT_H

#include <stddef.h>

#include "node_int.h"

enum ktype {
    K_UINT,   /* unsigned, within min..max */
    K_PORT,   /* uint16_t, within min..max */
    K_SIZE,   /* size_t, within min..max */
    K_BOOL,   /* true/false/yes/no/1/0 */
    K_PATH,   /* resolved against the file's directory */
    K_SECRET, /* at least SECRET_MIN characters */
    K_DOMAIN, /* a DNS name, lower-cased */
    K_ADDR,   /* an IP literal or a DNS name */
    K_ROLE,
    K_LEVEL,
    K_TLSVER,
    K_PEERS,    /* ID=HOST:PORT, ... */
    K_ROUTES,   /* DOMAIN=HOST:PORT, ... */
    K_HOSTPORT, /* HOST:PORT */
    K_NAMES,    /* local parts, ... */
};

struct key {
    const char *section;
    const char *name;
    enum ktype type;
    size_t off;
    unsigned long min, max;
    bool required;
};

struct name_val {
    const char *name;
    int val;
};

/* Characters of one line, ours and inih's (INI_MAX_LINE). */
#define MAX_LINE_LEN 4096

/* Every key, in the order ic_node_config_write writes them. */
#define IC_NODE__CONFIG_NKEYS 39
extern const struct key ic_node__config_keys[];
extern const size_t ic_node__config_nkeys;
extern const char *const ic_node__config_sections[];
extern const size_t ic_node__config_nsections;
extern const struct name_val ic_node__config_roles[];
extern const size_t ic_node__config_nroles;
extern const struct name_val ic_node__config_levels[];
extern const size_t ic_node__config_nlevels;
extern const struct name_val ic_node__config_tls_versions[];
extern const size_t ic_node__config_ntls_versions;

/* The name of value VAL in table T of N entries, or NULL. */
const char *
ic_node__config_name_of(const struct name_val *t, size_t n, int val);

#endif /* IC_NODE_CONFIG_INT_H */
