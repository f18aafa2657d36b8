/* raft_int.h - shared inside raft/ only (and read by its unit tests). */
#ifndef IC_RAFT_INT_H
#define IC_RAFT_INT_H

#include <raft.h>

#include "ic_raft.h"

/* A submitter waiting for the result of command (CLIENT, SEQ): the state
 * machine fills RES and sets DONE when it applies the command, or finds it
 * a duplicate, after the apply's transaction committed. The waiter owns the
 * struct and removes it before freeing it. */
struct ic_raft__wait {
    uint64_t client;
    uint64_t seq;
    bool done;
    struct ic_raft_result res;
    struct ic_raft__wait *next, *prev;
};

void ic_raft__fsm_wait_add(struct ic_raft_fsm *fsm, struct ic_raft__wait *w);
/* Removes W if it is listed (no-op otherwise). */
void ic_raft__fsm_wait_del(struct ic_raft_fsm *fsm, struct ic_raft__wait *w);

/* Applies the entry at Raft INDEX holding LEN bytes at BUF: what the
 * apply callback does with the index raft is applying. 0 when applied,
 * skipped or a business failure; an IC_E* code when the store failed (the
 * entry must then be applied again). */
int ic_raft__fsm_apply_at(struct ic_raft_fsm *fsm,
                          uint64_t index,
                          const void *buf,
                          size_t len);

/* The IC_E* code of a raft library error. */
int ic_raft__err(int raft_rc);

#endif /* IC_RAFT_INT_H */
