/*
 * trace.c - the raft library's diagnostics to the project's one log sink
 * (IC_LOG, module "raft"). Raft's errors and warnings keep their level;
 * its info and debug chatter (every election step) goes to debug and
 * trace, so a production log shows it only when asked.
 */
#include <raft.h>

#include "raft_int.h"

static enum ic_log_level level_of(int raft_level)
{
    switch (raft_level) {
    case 1:
        return IC_LOG_ERROR;
    case 2:
        return IC_LOG_WARN;
    case 3:
        return IC_LOG_DEBUG;
    default:
        return IC_LOG_TRACE;
    }
}

static void on_emit(struct raft_tracer *t, int type, const void *info)
{
    const struct raft_tracer_info *i = info;
    enum ic_log_level level;

    (void)t;
    if (type != RAFT_TRACER_DIAGNOSTIC || i == NULL)
        return;
    level = level_of(i->diagnostic.level);
    if (level > ic_log_get_level())
        return;
    ic_log_write(level, "raft",
                 i->diagnostic.file != NULL ? i->diagnostic.file : "raft",
                 i->diagnostic.line, "%s",
                 i->diagnostic.message != NULL ? i->diagnostic.message : "");
}

static struct raft_tracer tracer = {NULL, 2, on_emit};

struct raft_tracer *ic_raft_tracer(void)
{
    return &tracer;
}
