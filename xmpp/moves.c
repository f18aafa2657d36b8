/*
 * moves.c - the check every stream's transition table shares (see
 * struct ic_xmpp__move in xmpp_int.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "xmpp_int.h"

bool ic_xmpp__move_ok(const struct ic_xmpp__move *t, size_t n, int from, int to)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].from == from && t[i].to == to)
            return true;
    return false;
}
