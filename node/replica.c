/*
 * replica.c - a running node's own store, across crashes of the machine.
 *
 * A node commits to its store without syncing (MDB_NOSYNC, ctl.c): the
 * Raft log is the durable record. A crash of the process loses nothing,
 * since every committed page is in the kernel's page cache. A crash of the
 * machine (power, kernel) can lose any of the pages written since the last
 * sync, in any order, and leave a store LMDB does not even see as damaged.
 *
 * So the data directory holds a marker, `store.boot`: "BOOT STATE", the
 * machine's boot id (/proc/sys/kernel/random/boot_id) and "open" while the
 * node runs or "closed" once it synced the store and stopped. A store
 * found "open" under another boot id was open when the machine went down:
 * it is moved aside to `store.unsynced` (replacing an older one) and an
 * empty store takes its place; Raft then restores its last snapshot into
 * it and applies its log from there (raft/fsm.c restore), as on a new
 * node. The marker is written to a temporary file, synced and renamed.
 *
 * A directory without a marker (an older node's) keeps its store. When
 * the marker cannot be written (a full disk), the node goes on, says so,
 * and removes the marker: the store is then kept at the next start.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ic_common.h"
#include "ic_node.h"

#define MOD "store"
#define BOOT_ID_FILE "/proc/sys/kernel/random/boot_id"
#define MARKER "store.boot"
#define ASIDE "store.unsynced"

/* The machine's boot id, "-" when it cannot be read. */
static void boot_id(char *out, size_t n)
{
    FILE *f = fopen(BOOT_ID_FILE, "r");

    snprintf(out, n, "-");
    if (f == NULL)
        return;
    if (fgets(out, (int)n, f) == NULL || out[0] == '\n')
        snprintf(out, n, "-");
    out[strcspn(out, " \n")] = '\0';
    fclose(f);
}

static int in_dir(char *buf, size_t n, const char *dir, const char *name)
{
    return snprintf(buf, n, "%s/%s", dir, name) < (int)n ? 0 : IC_ELIMIT;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* DIR/store.boot := "BOOT STATE\n", durably. */
static int mark(const char *dir,
                const char *boot,
                const char *state,
                char *why,
                size_t why_len)
{
    char path[4096], tmp[4096], line[128];
    int n = snprintf(line, sizeof line, "%s %s\n", boot, state), fd;
    bool ok;

    if (in_dir(path, sizeof path, dir, MARKER) != 0 ||
        in_dir(tmp, sizeof tmp, dir, MARKER ".tmp") != 0) {
        snprintf(why, why_len, "%s: path too long", dir);
        return IC_ELIMIT;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    ok = fd >= 0 && write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    ok = ok && rename(tmp, path) == 0 && sync_dir(dir) == 0;
    if (!ok) {
        snprintf(why, why_len, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return IC_EIO;
    }
    return 0;
}

/* Whether DIR's store was open, unsynced, when the machine last went
 * down: its marker says "open" under another boot than BOOT (then in
 * WAS). */
static bool
open_across_boot(const char *dir, const char *boot, char *was, size_t was_len)
{
    char path[4096], b[64], state[16];
    FILE *f;
    int n;

    if (in_dir(path, sizeof path, dir, MARKER) != 0 ||
        (f = fopen(path, "r")) == NULL)
        return false;
    n = fscanf(f, "%63s %15s", b, state);
    fclose(f);
    if (n != 2) {
        IC_LOG(IC_LOG_WARN, MOD,
               "%s: not a marker (\"BOOT open|closed\"): "
               "store kept",
               path);
        return false;
    }
    snprintf(was, was_len, "%s", b);
    return strcmp(state, "open") == 0 && strcmp(b, boot) != 0;
}

/* DIR/store -> DIR/store.unsynced (an older one removed), and an empty
 * DIR/store. */
static int move_aside(const char *dir, char *why, size_t why_len)
{
    static const char *const files[] = {"data.mdb", "lock.mdb"};
    char store[4096], aside[4096], f[4200];

    if (in_dir(store, sizeof store, dir, "store") != 0 ||
        in_dir(aside, sizeof aside, dir, ASIDE) != 0) {
        snprintf(why, why_len, "%s: path too long", dir);
        return IC_ELIMIT;
    }
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(f, sizeof f, "%s/%s", aside, files[i]);
        if (unlink(f) != 0 && errno != ENOENT)
            goto fail;
    }
    if (rmdir(aside) != 0 && errno != ENOENT) {
        snprintf(why, why_len, "%s: %s (remove it and start again)", aside,
                 strerror(errno));
        return IC_EIO;
    }
    if (rename(store, aside) != 0 && errno != ENOENT)
        goto fail;
    if (mkdir(store, 0750) != 0 || sync_dir(dir) != 0)
        goto fail;
    return 0;
fail:
    snprintf(why, why_len, "moving %s aside: %s", store, strerror(errno));
    return IC_EIO;
}

int ic_node_replica_open(const char *dir,
                         struct ic_store **out,
                         char *why,
                         size_t why_len)
{
    char boot[64], was[64], mwhy[4400];
    int rc;

    boot_id(boot, sizeof boot);
    if (open_across_boot(dir, boot, was, sizeof was)) {
        IC_LOG(IC_LOG_WARN, MOD,
               "%s/store was open without a sync when the machine went down "
               "(boot %s, now %s): it may hold torn writes; moved to %s, "
               "rebuilt from the Raft snapshot and log",
               dir, was, boot, ASIDE);
        rc = move_aside(dir, why, why_len);
        if (rc != 0)
            return rc;
    }
    rc = ic_node_store_open_replica(dir, out, why, why_len);
    if (rc == 0 && mark(dir, boot, "open", mwhy, sizeof mwhy) != 0) {
        char path[4096];
        IC_LOG(IC_LOG_WARN, MOD,
               "%s: the store is not marked open; after a crash of the "
               "machine it would be kept as found",
               mwhy);
        if (in_dir(path, sizeof path, dir, MARKER) == 0)
            unlink(path);
    }
    return rc;
}

void ic_node_replica_close(const char *dir, struct ic_store *st)
{
    char boot[64], why[4400];
    int rc;

    if (st == NULL)
        return;
    boot_id(boot, sizeof boot);
    rc = ic_store_sync(st);
    if (rc != 0)
        IC_LOG(IC_LOG_WARN, MOD, "sync of %s/store: %s: left marked open", dir,
               ic_strerror(rc));
    else if (mark(dir, boot, "closed", why, sizeof why) != 0)
        IC_LOG(IC_LOG_WARN, MOD, "%s: left marked open", why);
    ic_store_close(st);
}
