/*
 * ic_node.h - the Intercloud application: the catalog payloads of the seed
 * paper's commands and the operator's tool.
 */
#ifndef IC_NODE_H
#define IC_NODE_H

#include <stdbool.h>
#include <stddef.h>

#include "ic_store.h"

#define IC_RESONTOLOGY_NS "http://www.csp/resOntology"

/* Limits on a constraints payload. */
#define IC_CONSTRAINTS_MAX 64
#define IC_CONSTRAINT_TEXT_MAX 4096
#define IC_CONSTRAINTS_DEPTH_MAX 16

/* The pairs of a <constraints xmlns='http://www.csp/resOntology'> payload,
 * as in the seed paper's constraint_catalog_resources request. Strings are
 * owned and trimmed of white space. */
struct ic_constraints_doc {
    struct ic_constraint *c;
    size_t n;
    bool recursive; /* recursive='true' on <constraints> */
    char error[256];
};

/* Parses XML text holding a <constraints> element (alone, or anywhere in a
 * larger document such as the whole iq). Rejects DTDs, entity
 * declarations, comments and processing instructions (IC_ESYNTAX), too
 * many constraints or too long texts (IC_ELIMIT), and constraints without
 * <attribute> or <value> (IC_EVALUE); doc->error says which. */
int ic_constraints_parse(const char *xml,
                         size_t len,
                         struct ic_constraints_doc *doc);
void ic_constraints_doc_free(struct ic_constraints_doc *doc);

/* The operator's tool, icrootctl: returns the process exit code. */
int ic_ctl_main(int argc, char **argv);

/* Opens the store of node data directory DIR (DIR/store), refusing a
 * directory that is not an icroot data directory. */
int ic_node_store_open(const char *dir,
                       bool create,
                       bool read_only,
                       struct ic_store **out,
                       char *why,
                       size_t why_len);

/* The same for a running node: created when missing, and without an
 * fsync per transaction (MDB_NOSYNC): the Raft log is the durable record,
 * and after a crash the state machine re-applies what the store lost
 * (DESIGN.md decision 3). */
int ic_node_store_open_replica(const char *dir,
                               struct ic_store **out,
                               char *why,
                               size_t why_len);

/* What a running node opens (replica.c): the replica store, first moved
 * aside to store.unsynced and replaced by an empty one when it was open,
 * unsynced, when the machine went down (the marker DIR/store.boot names
 * another boot), so that Raft rebuilds it from its snapshot and log; then
 * marked open under this boot. */
int ic_node_replica_open(const char *dir,
                         struct ic_store **out,
                         char *why,
                         size_t why_len);
/* Syncs ST, marks it closed and closes it (NULL: nothing). */
void ic_node_replica_close(const char *dir, struct ic_store *st);

/* Loads FILE (Turtle, TriG, N-Triples, N-Quads by extension) into ST in one
 * write transaction: by default each cloud's statements (xmpp: subjects)
 * into the cloud's own graph and the rest into a graph named after the
 * file; with GRAPH, everything into GRAPH. The graphs written are replaced
 * unless MERGE. On failure nothing changes and res->error says why. */
int ic_node_load(struct ic_store *st,
                 const char *file,
                 const char *graph,
                 bool merge,
                 struct ic_load_result *res);

#endif /* IC_NODE_H */
