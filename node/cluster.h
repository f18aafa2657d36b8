/*
 * cluster.h - the node's place in the cluster (private to node/): its Raft
 * server (raft/), its cluster links (xmpp/), and writes from any node.
 *
 * A write is a raft command (ic_raft.h). ic_node_cluster_write submits it
 * here when this node leads, or forwards it over the cluster link to the
 * leader, which submits it and answers; leader changes, lost links and
 * "outcome unknown" answers are retried with the same client id and
 * sequence, which the replicated state machine deduplicates, so a write is
 * applied at most once however often it is retried. The leader follows
 * every committed write with a barrier, so the followers learn the commit
 * at once (without it a single client on the leader was seen stalling
 * ~38 ms on one write in six). The callback runs
 * once the command is applied on the leader and on this node (so a query
 * here sees it), or with IC_ETIMEDOUT when no leader took it in time (then
 * it may still be applied later: the caller says "outcome unknown"), also
 * when the leader applied it but this node could not apply it in time (a
 * full store, far behind after a partition or a restart): this node never
 * answers success before its own store has the write.
 */
#ifndef IC_NODE_CLUSTER_H
#define IC_NODE_CLUSTER_H

#include <stdint.h>

#include "ic_raft.h"
#include "ic_xmpp.h"
#include "node_int.h"

#define IC_NS_CLUSTER "urn:icroot:cluster:0"

struct ic_node_cluster;
struct uv_loop_s;

/* Starts the Raft server (bootstrapping the configured peers when the
 * data directory is new) and the cluster links. The seed command, when
 * configured, is submitted in the background until applied. */
int ic_node_cluster_start(struct uv_loop_s *loop,
                          const struct ic_node_config *cfg,
                          struct ic_store *st,
                          ic_raft_observer_fn observer,
                          void *observer_data,
                          struct ic_node_cluster **out,
                          char *why,
                          size_t why_len);

/* Stanzas between nodes: ST to node NODE over the cluster link, to be
 * delivered there to TARGET (a full JID, or NULL: by ST's 'to'). False
 * when the link's queue is full or NODE unknown. */
bool ic_node_cluster_route(struct ic_node_cluster *c,
                           unsigned node,
                           const struct ic_xml *st,
                           const char *target);
/* Where stanzas routed to this node go (ST taken), from node FROM whose
 * presence lease incarnation was INCARNATION when it sent them (0:
 * unknown). */
typedef void (*ic_node_router_fn)(void *data,
                                  struct ic_xml *st,
                                  const char *target,
                                  unsigned from,
                                  uint64_t incarnation);
void ic_node_cluster_set_router(struct ic_node_cluster *c,
                                ic_node_router_fn fn,
                                void *data);
/* This node's presence lease incarnation (node/presence.c), sent with
 * every stanza routed from now on. */
void ic_node_cluster_set_incarnation(struct ic_node_cluster *c,
                                     uint64_t incarnation);
/* How long (ms) our link to node ID has been down; 0 while it is up. */
uint64_t ic_node_cluster_unreachable_ms(struct ic_node_cluster *c, unsigned id);

/* What this build's state machine knows beyond the first commands, as the
 * cluster links announce it to the other nodes: 1, TERMS_SWEEP
 * (raft/README.md). A node writes a command of a later level only when
 * every other member announced that level. */
#define IC_NODE_LEVEL 1
#define IC_NODE_LEVEL_SWEEP 1
/* Whether every member of the Raft configuration but this node has its
 * link to us up and announced LEVEL or more. */
bool ic_node_cluster_members_at(struct ic_node_cluster *c, unsigned level);

/* RC 0: applied, RES its result (a business failure is RES->code != 0);
 * IC_ETIMEDOUT or IC_EBUSY (closing): the outcome is unknown. */
typedef void (*ic_node_write_cb)(void *data,
                                 int rc,
                                 const struct ic_raft_result *res);

/* Writes CMD (copied; its client and seq are given here unless CMD sets
 * them). DEADLINE_MS 0: 15 s. IC_EINVAL when CMD does not encode (no
 * callback then). */
int ic_node_cluster_write(struct ic_node_cluster *c,
                          const struct ic_raft_cmd *cmd,
                          unsigned deadline_ms,
                          ic_node_write_cb cb,
                          void *data);

void ic_node_cluster_status(struct ic_node_cluster *c,
                            struct ic_raft_status *out);

/* Membership, on the leader only (IC_ENOTLEADER otherwise, with the
 * leader's id in the callback when known). CB(DATA, RC, LEADER) runs once
 * the change is committed: RC 0, IC_ENOTLEADER, IC_EINDOUBT or another
 * IC_E* code. An error returned means no callback. */
typedef void (*ic_node_member_cb)(void *data, int rc, uint64_t leader);
/* Adds node ID whose Raft address is ADDRESS ("IPv4:port") as a spare,
 * then makes it a voter (Raft catches it up first). */
int ic_node_cluster_member_add(struct ic_node_cluster *c,
                               uint64_t id,
                               const char *address,
                               ic_node_member_cb cb,
                               void *data);
int ic_node_cluster_member_remove(struct ic_node_cluster *c,
                                  uint64_t id,
                                  ic_node_member_cb cb,
                                  void *data);
/* Hands leadership to voter ID (0: any). */
int ic_node_cluster_transfer(struct ic_node_cluster *c,
                             uint64_t id,
                             ic_node_member_cb cb,
                             void *data);

/* Closes the links and the Raft server (handing leadership over first);
 * pending writes complete with IC_EBUSY; CB runs when all is closed and C
 * is freed. */
void ic_node_cluster_close(struct ic_node_cluster *c,
                           void (*cb)(void *data),
                           void *data);

#endif /* IC_NODE_CLUSTER_H */
