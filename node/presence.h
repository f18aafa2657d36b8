/*
 * presence.h - presence through Raft, batched, with node leases (private
 * to node/; see presence.c).
 */
#ifndef IC_NODE_PRESENCE_H
#define IC_NODE_PRESENCE_H

#include "cluster.h"
#include "ic_xmpp.h"

struct ic_node_presence;
struct uv_loop_s;

/* Made before the cluster starts (its observer must see every apply);
 * inert until ic_node_presence_start. */
int ic_node_presence_new(struct uv_loop_s *loop,
                         struct ic_store *st,
                         unsigned self,
                         struct ic_node_presence **out);
/* Once the cluster and the XMPP server run: loads the registry (other
 * nodes' sessions), starts this node's lease and the leader's checks. */
void ic_node_presence_start(struct ic_node_presence *np,
                            struct ic_node_cluster *cluster,
                            struct ic_xmpp_server *srv);
/* The engine's ops->presence_changed (DATA: the ic_node_presence). */
void ic_node_presence_changed(void *data,
                              const char *full_jid,
                              const struct ic_xml *presence);
/* The state machine's observer (DATA: the ic_node_presence). */
void ic_node_presence_observe(void *data,
                              const struct ic_raft_presence_event *ev);
/* Stops; CB runs when its handles are closed and NP is freed. */
void ic_node_presence_close(struct ic_node_presence *np,
                            void (*cb)(void *data),
                            void *data);

#endif /* IC_NODE_PRESENCE_H */
