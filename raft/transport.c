/*
 * transport.c - raft's TCP transport with Nagle's algorithm off. raft 0.22
 * leaves TCP_NODELAY unset on its sockets, so a small message (an append
 * result, a heartbeat) written while an earlier one is unacknowledged
 * waits for the peer's delayed ACK, up to 40 ms on Linux: that was the p99
 * of every write at 64 clients (docs/benchmarks-cluster.md). The wrapper
 * sets TCP_NODELAY on each stream the transport hands raft, accepted or
 * connected; everything else is raft's own transport.
 */
#define _POSIX_C_SOURCE 200809L
#include <uv.h>

#include "transport.h"

/* raft passes one and the same callback to every connect it makes (its
 * client's), whichever node: kept once for the wrapper to call. */
static raft_uv_connect_cb connect_cb;

static void nodelay(struct uv_stream_s *stream)
{
    if (stream != NULL && stream->type == UV_TCP)
        uv_tcp_nodelay((uv_tcp_t *)stream, 1);
}

static void on_accept(struct raft_uv_transport *t,
                      raft_id id,
                      const char *address,
                      struct uv_stream_s *stream)
{
    struct ic_raft__tcp *x = (struct ic_raft__tcp *)t;

    nodelay(stream);
    x->accept_cb(t, id, address, stream);
}

static int listen_nodelay(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct ic_raft__tcp *x = (struct ic_raft__tcp *)t;

    x->accept_cb = cb;
    return x->listen(t, on_accept);
}

static void
on_connect(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
    if (status == 0)
        nodelay(stream);
    connect_cb(req, stream, status);
}

static int connect_nodelay(struct raft_uv_transport *t,
                           struct raft_uv_connect *req,
                           raft_id id,
                           const char *address,
                           raft_uv_connect_cb cb)
{
    struct ic_raft__tcp *x = (struct ic_raft__tcp *)t;

    connect_cb = cb;
    return x->connect(t, req, id, address, on_connect);
}

int ic_raft__tcp_init(struct ic_raft__tcp *x, uv_loop_t *loop)
{
    int rc;

    x->t.version = 1; /* the caller's to set, says raft/uv.h */
    rc = raft_uv_tcp_init(&x->t, loop);
    if (rc != 0)
        return rc;
    x->listen = x->t.listen;
    x->connect = x->t.connect;
    x->t.listen = listen_nodelay;
    x->t.connect = connect_nodelay;
    return 0;
}
