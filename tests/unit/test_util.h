/*
 * test_util.h - helpers shared by the unit tests: temporary directories,
 * files, opening stores, loading the ontology, dumping and matching.
 *
 * Every helper that can fail asserts (cmocka), so a test reads as the list
 * of what it checks. Strings returned are ic_malloc'd: free with ic_free.
 */
#ifndef IC_TEST_UTIL_H
#define IC_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ic_store.h"

#ifndef IC_SOURCE_DIR
#error "IC_SOURCE_DIR must be defined (the project's source directory)"
#endif

#define TU_ONTOLOGY IC_SOURCE_DIR "/ontology"
#define TU_DATA IC_SOURCE_DIR "/tests/data"
#define TU_CLOUD2 "xmpp:cloud2@intercloudexchg.test"

/* The seed paper's five constraints with the paper's own spelling and
 * white space (section 6). */
extern const struct ic_constraint tu_seed_query[5];

/* A fresh directory /tmp/icroot-test-XXXXXX; BUF holds at least 64. */
void tu_tmpdir(char *buf, size_t len);
/* Removes PATH and everything under it. */
void tu_rmrf(const char *path);
/* "DIR/NAME" into BUF (asserts it fits). */
void tu_join(char *buf, size_t len, const char *dir, const char *name);

void tu_write_file(const char *path, const void *data, size_t len);
/* The whole file, NUL-terminated; *len (if not NULL) gets its size. */
char *tu_read_file(const char *path, size_t *len);

/* Opens (creating) the store in DIR with MAP_SIZE (0: the default). */
struct ic_store *tu_store_open(const char *dir, uint64_t map_size);

/* The usual fixture: a fresh temporary directory with a store (256 MiB
 * map) in DIR/store; tu_fx_setup_ontology also loads ontology/<name>.ttl.
 * Use as cmocka setup and teardown; *state is a struct tu_fx. */
struct tu_fx {
    char dir[64];
    char store[128];
    struct ic_store *st;
};
int tu_fx_setup(void **state);
int tu_fx_setup_ontology(void **state);
int tu_fx_teardown(void **state);
/* ic_node_load of FILE (by-subject, replace); asserts success. */
void tu_load(struct ic_store *st, const char *file);
/* Loads ontology/constraints.ttl, intercloud.ttl and sample-catalog.ttl. */
void tu_load_ontology(struct ic_store *st);
/* ic_store_load_buffer of Turtle TEXT in its own write transaction;
 * returns the load's result code (the transaction is aborted on error). */
int tu_load_text(struct ic_store *st,
                 const char *text,
                 const char *graph,
                 enum ic_load_graphs graphs,
                 bool replace,
                 struct ic_load_result *res);

void tu_stats(struct ic_store *st, struct ic_store_stats *out);
/* Stats minus the fields that legitimately change without a write
 * (none today) compared field by field. */
void tu_assert_stats_equal(const struct ic_store_stats *a,
                           const struct ic_store_stats *b);
/* The store (or one graph) dumped in SYNTAX. */
char *tu_dump(struct ic_store *st, const char *graph, enum ic_rdf_syntax syn);
/* Appends N bytes of DATA to *P (*LEN bytes used of *CAP), grown as
 * needed. */
void tu_append(
    unsigned char **p, size_t *len, size_t *cap, const void *data, size_t n);
/* The store's snapshot (ic_store_snapshot_write in a read transaction),
 * *LEN bytes; free with ic_free. */
unsigned char *tu_snapshot(struct ic_store *st, size_t *len);
/* The lines of TEXT sorted, joined again with '\n'. */
char *tu_sorted_lines(const char *text);

/* Runs the matcher in a read transaction; returns the names joined with
 * ',' ("" for none) and *rc; on error the result is NULL and ERR (if not
 * NULL, 256 bytes) gets the matcher's message. */
char *tu_match(struct ic_store *st,
               const struct ic_constraint *c,
               size_t n,
               int *rc,
               char *err);
/* Asserts that the query gives exactly EXPECTED ("cloud2,cloud5"). */
void tu_assert_match(struct ic_store *st,
                     const struct ic_constraint *c,
                     size_t n,
                     const char *expected);

/* A small deterministic PRNG (xorshift64*), so runs are repeatable. */
uint64_t tu_rand(uint64_t *state);

/* main() of every test program: runs TESTS; bug tests are named "bug_*"
 * and skipped unless named by argv[1] (a cmocka test filter), so CTest can
 * run each one alone with WILL_FAIL. */
int tu_main(int argc,
            char **argv,
            const char *group,
            const struct CMUnitTest *tests,
            size_t n);

#endif /* IC_TEST_UTIL_H */
