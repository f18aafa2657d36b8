/*
 * test_util.c - see test_util.h.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ic_node.h"
#include "test_util.h"

const struct ic_constraint tu_seed_query[5] = {
    {"availabilityQuanity ", "99.999"},
    {"replicationFactor", "5"},
    {"tierCountries", "JAPAN"},
    {"StorageReplicationMethod\n         ", "AMQP"},
    {"InterCloudStorageAccess\n         ", "NFS"},
};

void tu_tmpdir(char *buf, size_t len)
{
    static const char tmpl[] = "/tmp/icroot-test-XXXXXX";

    assert_true(len >= sizeof tmpl);
    memcpy(buf, tmpl, sizeof tmpl);
    assert_non_null(mkdtemp(buf));
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

void tu_rmrf(const char *path)
{
    int rc = nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);

    assert_true(rc == 0 || errno == ENOENT);
}

void tu_join(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);

    assert_true(n > 0 && (size_t)n < len);
}

void tu_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 4096, n = 0, r;
    char *buf;

    assert_non_null(f);
    buf = ic_malloc(cap);
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap) {
            cap *= 2;
            buf = ic_realloc(buf, cap);
        }
    }
    assert_int_equal(ferror(f), 0);
    fclose(f);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

struct ic_store *tu_store_open(const char *dir, uint64_t map_size)
{
    struct ic_store_opts o = {0};
    struct ic_store *st = NULL;
    char why[512] = "";
    int rc;

    o.create = true;
    o.map_size = map_size;
    rc = ic_store_open(dir, &o, &st, why, sizeof why);
    if (rc != 0)
        fail_msg("ic_store_open(%s): %d %s", dir, rc, why);
    assert_non_null(st);
    return st;
}

void tu_load(struct ic_store *st, const char *file)
{
    struct ic_load_result res;
    int rc;

    memset(&res, 0, sizeof res);
    rc = ic_node_load(st, file, NULL, false, &res);
    if (rc != 0)
        fail_msg("ic_node_load(%s): %d %s", file, rc, res.error);
    assert_true(res.quads > 0);
}

void tu_load_ontology(struct ic_store *st)
{
    tu_load(st, TU_ONTOLOGY "/constraints.ttl");
    tu_load(st, TU_ONTOLOGY "/intercloud.ttl");
    tu_load(st, TU_ONTOLOGY "/sample-catalog.ttl");
}

int tu_load_text(struct ic_store *st,
                 const char *text,
                 const char *graph,
                 enum ic_load_graphs graphs,
                 bool replace,
                 struct ic_load_result *res)
{
    struct ic_load_opts o = {0};
    struct ic_txn *txn;
    int rc;

    o.syntax = IC_RDF_TURTLE;
    o.graph = graph;
    o.graphs = graphs;
    o.replace = replace;
    o.name = "text";
    assert_int_equal(ic_store_txn_begin(st, true, &txn), 0);
    rc = ic_store_load_buffer(txn, text, strlen(text), &o, res);
    if (rc != 0) {
        ic_store_txn_abort(txn);
        return rc;
    }
    return ic_store_txn_commit(txn);
}

void tu_stats(struct ic_store *st, struct ic_store_stats *out)
{
    struct ic_txn *txn;

    assert_int_equal(ic_store_txn_begin(st, false, &txn), 0);
    assert_int_equal(ic_store_stats(txn, out), 0);
    ic_store_txn_abort(txn);
}

void tu_assert_stats_equal(const struct ic_store_stats *a,
                           const struct ic_store_stats *b)
{
    assert_int_equal(a->format, b->format);
    assert_int_equal(a->quads, b->quads);
    assert_int_equal(a->triples, b->triples);
    assert_int_equal(a->terms, b->terms);
    assert_int_equal(a->graphs, b->graphs);
    assert_int_equal(a->used_bytes, b->used_bytes);
    assert_int_equal(a->applied_index, b->applied_index);
}

struct snap_buf {
    unsigned char *p;
    size_t len, cap;
};

void tu_append(
    unsigned char **p, size_t *len, size_t *cap, const void *data, size_t n)
{
    if (*len + n > *cap) {
        *cap = (*len + n) * 2;
        *p = ic_realloc(*p, *cap);
    }
    memcpy(*p + *len, data, n);
    *len += n;
}

static int snap_write(void *data, const void *p, size_t len)
{
    struct snap_buf *b = data;

    tu_append(&b->p, &b->len, &b->cap, p, len);
    return 0;
}

unsigned char *tu_snapshot(struct ic_store *st, size_t *len)
{
    struct snap_buf b = {0};
    struct ic_txn *t;

    assert_int_equal(ic_store_txn_begin(st, false, &t), 0);
    assert_int_equal(ic_store_snapshot_write(t, snap_write, &b), 0);
    ic_store_txn_abort(t);
    *len = b.len;
    return b.p;
}

char *tu_dump(struct ic_store *st, const char *graph, enum ic_rdf_syntax syn)
{
    struct ic_txn *txn;
    char *buf = NULL, *copy;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    assert_int_equal(ic_store_txn_begin(st, false, &txn), 0);
    assert_int_equal(ic_store_dump(txn, graph, syn, f), 0);
    ic_store_txn_abort(txn);
    assert_int_equal(fclose(f), 0);
    copy = ic_strndup(buf, len);
    free(buf);
    return copy;
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *tu_sorted_lines(const char *text)
{
    char *copy = ic_strdup(text), *out, *p, *save = NULL;
    size_t n = 0, cap = 64, len = 0;
    char **lines = ic_malloc(cap * sizeof *lines);

    for (p = strtok_r(copy, "\n", &save); p != NULL;
         p = strtok_r(NULL, "\n", &save)) {
        if (n == cap) {
            cap *= 2;
            lines = ic_realloc(lines, cap * sizeof *lines);
        }
        lines[n++] = p;
    }
    qsort(lines, n, sizeof *lines, cmp_line);
    out = ic_malloc(strlen(text) + 2);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(lines[i]);
        memcpy(out + len, lines[i], l);
        len += l;
        out[len++] = '\n';
    }
    out[len] = '\0';
    ic_free(lines);
    ic_free(copy);
    return out;
}

char *tu_match(struct ic_store *st,
               const struct ic_constraint *c,
               size_t n,
               int *rc,
               char *err)
{
    struct ic_match_result res;
    struct ic_txn *txn;
    char *out;
    size_t len = 0;

    assert_int_equal(ic_store_txn_begin(st, false, &txn), 0);
    *rc = ic_store_match(txn, c, n, &res);
    ic_store_txn_abort(txn);
    if (*rc != 0) {
        if (err != NULL)
            snprintf(err, 256, "%s", res.error);
        ic_match_result_free(&res);
        return NULL;
    }
    for (size_t i = 0; i < res.n; i++)
        len += strlen(res.names[i]) + 1;
    out = ic_malloc(len + 1);
    out[0] = '\0';
    len = 0;
    for (size_t i = 0; i < res.n; i++) {
        size_t l = strlen(res.names[i]);
        if (i > 0)
            out[len++] = ',';
        memcpy(out + len, res.names[i], l + 1);
        len += l;
    }
    ic_match_result_free(&res);
    return out;
}

void tu_assert_match(struct ic_store *st,
                     const struct ic_constraint *c,
                     size_t n,
                     const char *expected)
{
    char err[256] = "";
    int rc;
    char *got = tu_match(st, c, n, &rc, err);

    if (rc != 0)
        fail_msg("match failed: %d %s", rc, err);
    assert_string_equal(got, expected);
    ic_free(got);
}

uint64_t tu_rand(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dULL;
}

int tu_main(int argc,
            char **argv,
            const char *group,
            const struct CMUnitTest *tests,
            size_t n)
{
    if (argc > 1) {
        size_t i;
        for (i = 0; i < n && strcmp(tests[i].name, argv[1]) != 0; i++)
            ;
        if (i == n) {
            /* a crash, so that WILL_FAIL cannot take it for a pass */
            fprintf(stderr, "%s: no test named %s\n", group, argv[1]);
            abort();
        }
        cmocka_set_test_filter(argv[1]);
    } else {
        cmocka_set_skip_filter("bug_*");
    }
    return _cmocka_run_group_tests(group, tests, n, NULL, NULL);
}

int tu_fx_setup(void **state)
{
    struct tu_fx *f = ic_calloc(1, sizeof *f);

    tu_tmpdir(f->dir, sizeof f->dir);
    tu_join(f->store, sizeof f->store, f->dir, "store");
    f->st = tu_store_open(f->store, 256ULL << 20);
    *state = f;
    return 0;
}

int tu_fx_setup_ontology(void **state)
{
    tu_fx_setup(state);
    tu_load_ontology(((struct tu_fx *)*state)->st);
    return 0;
}

int tu_fx_teardown(void **state)
{
    struct tu_fx *f = *state;

    ic_store_close(f->st);
    tu_rmrf(f->dir);
    ic_free(f);
    return 0;
}
