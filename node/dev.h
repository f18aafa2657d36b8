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
};

/* Runs the embedded default; returns the exit code. */
int ic_node_dev(const struct ic_dev_opts *o);

/* Loads one RDF file into ST in one transaction (each cloud in its own
 * graph), rewriting the text FROM_DOMAIN to TO_DOMAIN first when
 * FROM_DOMAIN is not NULL (the sample catalog names its clouds' JIDs). */
int ic_dev_load_file(struct ic_store *st,
                     const char *path,
                     const char *from_domain,
                     const char *to_domain);

#endif /* IC_NODE_DEV_H */
