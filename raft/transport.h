/* transport.h - raft's TCP transport with TCP_NODELAY on its streams
 * (transport.c); for node.c, which embeds it. */
#ifndef IC_RAFT_TRANSPORT_H
#define IC_RAFT_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>

/* T first: raft sees only it; close it with raft_uv_tcp_close(&x->t). */
struct ic_raft__tcp {
    struct raft_uv_transport t;
    int (*listen)(struct raft_uv_transport *t, raft_uv_accept_cb cb);
    int (*connect)(struct raft_uv_transport *t,
                   struct raft_uv_connect *req,
                   raft_id id,
                   const char *address,
                   raft_uv_connect_cb cb);
    raft_uv_accept_cb accept_cb;
};

int ic_raft__tcp_init(struct ic_raft__tcp *x, uv_loop_t *loop);

#endif /* IC_RAFT_TRANSPORT_H */
