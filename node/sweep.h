/*
 * sweep.h - the leader's dictionary sweep (private to node/; see sweep.c).
 */
#ifndef IC_NODE_SWEEP_H
#define IC_NODE_SWEEP_H

#include "cluster.h"

struct ic_node_sweep;
struct uv_loop_s;

/* Starts the sweep's timer: while this node leads, it submits TERMS_SWEEP
 * slices until a whole pass over the dictionary found every term in use
 * and no quad was removed since. */
void ic_node_sweep_start(struct uv_loop_s *loop,
                         struct ic_node_cluster *cluster,
                         struct ic_store *st,
                         struct ic_node_sweep **out);
/* Stops it (before the cluster closes); it frees itself once its timer is
 * closed and its slice in flight, if any, answered. NULL is a no-op. */
void ic_node_sweep_close(struct ic_node_sweep *sw);

#endif /* IC_NODE_SWEEP_H */
