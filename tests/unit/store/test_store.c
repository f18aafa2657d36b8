/*
 * test_store.c - the store's environment, dictionary, quad indexes,
 * iteration, statistics and aborted transactions (key/value databases,
 * presence and the applied index: test_store_kv.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "store_int.h"
#include "test_util.h"

struct fx {
    char dir[64];
    char store[128];
    struct ic_store *st;
};

static int setup(void **state)
{
    struct fx *f = ic_calloc(1, sizeof *f);

    tu_tmpdir(f->dir, sizeof f->dir);
    tu_join(f->store, sizeof f->store, f->dir, "store");
    *state = f;
    return 0;
}

static int setup_open(void **state)
{
    struct fx *f;

    setup(state);
    f = *state;
    f->st = tu_store_open(f->store, 64ULL << 20);
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    ic_store_close(f->st);
    tu_rmrf(f->dir);
    ic_free(f);
    return 0;
}

static int try_open(const char *dir, bool create, char *why, size_t len)
{
    struct ic_store_opts o = {0};
    struct ic_store *st = NULL;
    int rc;

    o.create = create;
    why[0] = '\0';
    rc = ic_store_open(dir, &o, &st, why, len);
    if (rc == 0)
        ic_store_close(st);
    else
        assert_null(st);
    return rc;
}

static uint64_t id_of(struct ic_txn *txn, const struct ic_term *t)
{
    uint64_t id = 0;

    assert_int_equal(ic_store_term_id(txn, t, txn->write, &id), 0);
    assert_true(id != 0);
    return id;
}

static uint64_t iri_id(struct ic_txn *txn, const char *iri)
{
    struct ic_term t = ic_term_iri(iri);
    return id_of(txn, &t);
}

/* Every quad matching PATTERN, sorted, into OUT (up to MAX); the count. */
static int cmp_quad(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;

    for (int i = 0; i < 4; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

static size_t collect(struct ic_txn *txn,
                      const uint64_t pat[4],
                      uint64_t (*out)[4],
                      size_t max)
{
    struct ic_store_iter *it;
    uint64_t q[4];
    size_t n = 0;
    int rc;

    assert_int_equal(ic_store_iter_new(txn, pat, &it), 0);
    while ((rc = ic_store_iter_next(it, q)) == 0) {
        assert_true(n < max);
        memcpy(out[n++], q, sizeof q);
    }
    assert_int_equal(rc, IC_EEND);
    ic_store_iter_free(it);
    qsort(out, n, sizeof *out, cmp_quad);
    return n;
}

static size_t
count_pat(struct ic_txn *txn, uint64_t s, uint64_t p, uint64_t o, uint64_t g)
{
    uint64_t pat[4] = {s, p, o, g}, out[64][4];
    return collect(txn, pat, out, 64);
}

/* Open, close, reopen, refusals */

static void test_open_close(void **state)
{
    struct fx *f = *state;
    struct ic_store_stats s;
    struct stat sb;
    char path[256], why[512];
    DIR *d;
    struct dirent *e;
    int files = 0;

    /* missing and not asked to create */
    assert_int_equal(try_open(f->store, false, why, sizeof why), IC_ENOTFOUND);
    assert_int_equal(stat(f->store, &sb), -1);

    f->st = tu_store_open(f->store, 0);
    tu_stats(f->st, &s);
    assert_int_equal(s.format, IC_STORE_FORMAT);
    assert_int_equal(s.quads, 0);
    assert_int_equal(s.triples, 0);
    assert_int_equal(s.terms, 0);
    assert_int_equal(s.graphs, 0);
    assert_int_equal(s.applied_index, 0);
    assert_int_equal(s.map_size, 64ULL << 30); /* the default */
    ic_store_close(f->st);
    f->st = NULL;
    ic_store_close(NULL);

    /* the directory holds exactly LMDB's two files */
    d = opendir(f->store);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        assert_true(strcmp(e->d_name, "data.mdb") == 0 ||
                    strcmp(e->d_name, "lock.mdb") == 0);
        files++;
    }
    closedir(d);
    assert_int_equal(files, 2);

    /* an existing store opens without create, twice in a row */
    assert_int_equal(try_open(f->store, false, why, sizeof why), 0);
    assert_int_equal(try_open(f->store, false, why, sizeof why), 0);

    /* a plain file where the directory should be */
    tu_join(path, sizeof path, f->dir, "plain");
    tu_write_file(path, "x", 1);
    assert_int_equal(try_open(path, true, why, sizeof why), IC_ENOTOURS);
}

static void test_reopen_keeps_data(void **state)
{
    struct fx *f = *state;
    struct ic_term s = ic_term_iri("http://ex/s");
    struct ic_term p = ic_term_iri("http://ex/p");
    struct ic_term o = ic_term_literal("42", IC_XSD "integer");
    struct ic_term g = ic_term_iri("http://ex/g");
    const struct ic_term *q[4] = {&s, &p, &o, &g};
    struct ic_store_stats before, after;
    struct ic_txn *txn;
    uint64_t ids[4], got[4][4], pat[4] = {0};

    f->st = tu_store_open(f->store, 0);
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_quad_add(txn, q), 0);
    for (int i = 0; i < 4; i++)
        ids[i] = id_of(txn, q[i]);
    assert_int_equal(ic_store_applied_set(txn, 7), 0);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    tu_stats(f->st, &before);
    ic_store_close(f->st);

    f->st = tu_store_open(f->store, 0);
    tu_stats(f->st, &after);
    tu_assert_stats_equal(&before, &after);
    assert_int_equal(after.quads, 1);
    assert_int_equal(after.applied_index, 7);
    assert_int_equal(ic_store_txn_begin(f->st, false, &txn), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(id_of(txn, q[i]), ids[i]);
    assert_int_equal(collect(txn, pat, got, 4), 1);
    assert_memory_equal(got[0], ids, sizeof ids);
    ic_store_txn_abort(txn);

    /* read-only: reads work, writes are refused */
    ic_store_close(f->st);
    {
        struct ic_store_opts ro = {0};
        char why[256];
        ro.read_only = true;
        assert_int_equal(ic_store_open(f->store, &ro, &f->st, why, sizeof why),
                         0);
        assert_int_equal(ic_store_txn_begin(f->st, true, &txn), IC_EREADONLY);
        tu_stats(f->st, &after);
        assert_int_equal(after.quads, 1);
    }
}

static void test_refuse_foreign_file(void **state)
{
    struct fx *f = *state;
    char path[256], why[512], *back;
    struct stat sb;

    assert_int_equal(mkdir(f->store, 0750), 0);
    tu_join(path, sizeof path, f->store, "notes.txt");
    tu_write_file(path, "my notes\n", 9);
    assert_int_equal(try_open(f->store, true, why, sizeof why), IC_ENOTOURS);
    assert_non_null(strstr(why, "notes.txt"));
    /* nothing was created or changed */
    tu_join(path, sizeof path, f->store, "data.mdb");
    assert_int_equal(stat(path, &sb), -1);
    tu_join(path, sizeof path, f->store, "lock.mdb");
    assert_int_equal(stat(path, &sb), -1);
    tu_join(path, sizeof path, f->store, "notes.txt");
    back = tu_read_file(path, NULL);
    assert_string_equal(back, "my notes\n");
    ic_free(back);

    /* also next to a valid store */
    assert_int_equal(remove(path), 0);
    f->st = tu_store_open(f->store, 0);
    ic_store_close(f->st);
    f->st = NULL;
    tu_write_file(path, "again\n", 6);
    assert_int_equal(try_open(f->store, false, why, sizeof why), IC_ENOTOURS);
}

/* A database written by another program with the LMDB API. KIND 0: a main
 * database with one key; 1: a named database "meta" without our magic;
 * 2: a plain key "meta" in the main database. */
static void make_foreign(const char *dir, int kind)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {7, (void *)"foreign"}, v = {5, (void *)"value"};
    MDB_val mk = {4, (void *)"meta"};

    assert_int_equal(mkdir(dir, 0750), 0);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0640), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    if (kind == 1) {
        assert_int_equal(mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi), 0);
    } else {
        assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
        if (kind == 2)
            assert_int_equal(mdb_put(txn, dbi, &mk, &v, 0), 0);
    }
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* The foreign database still holds exactly what make_foreign wrote. */
static void check_foreign(const char *dir, int kind)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi, main;
    MDB_stat ms;
    MDB_val k = {7, (void *)"foreign"}, v;

    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0640), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &main), 0);
    assert_int_equal(mdb_stat(txn, main, &ms), 0);
    assert_int_equal(ms.ms_entries, kind == 2 ? 2 : 1);
    if (kind == 1)
        assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    else
        dbi = main;
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    assert_int_equal(v.mv_size, 5);
    assert_memory_equal(v.mv_data, "value", 5);
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

static void test_refuse_foreign_lmdb(void **state)
{
    struct fx *f = *state;
    char dir[256], why[512];

    for (int kind = 0; kind < 3; kind++) {
        snprintf(dir, sizeof dir, "%s/foreign%d", f->dir, kind);
        make_foreign(dir, kind);
        assert_int_equal(try_open(dir, true, why, sizeof why), IC_ENOTOURS);
        assert_non_null(strstr(why, dir));
        check_foreign(dir, kind);
        /* and read-only */
        {
            struct ic_store_opts o = {0};
            struct ic_store *st = NULL;
            o.read_only = true;
            assert_int_equal(ic_store_open(dir, &o, &st, why, sizeof why),
                             IC_ENOTOURS);
            assert_null(st);
        }
        check_foreign(dir, kind);
    }
}

/* Regression: read-only, a foreign database holding a "meta" database was
 * reported as IC_ENOTFOUND (a missing database) instead of IC_ENOTOURS. */
static void regress_store_readonly_foreign_meta(void **state)
{
    struct fx *f = *state;
    struct ic_store_opts o = {0};
    struct ic_store *st = NULL;
    char dir[256], why[512] = "";

    snprintf(dir, sizeof dir, "%s/foreign", f->dir);
    make_foreign(dir, 1);
    o.read_only = true;
    assert_int_equal(ic_store_open(dir, &o, &st, why, sizeof why), IC_ENOTOURS);
    assert_null(st);
    check_foreign(dir, 1);
}

static void test_refuse_garbage(void **state)
{
    struct fx *f = *state;
    char path[256], why[512], *back;
    unsigned char junk[3 * 4096];
    uint64_t seed = 0x1234567;
    size_t len;

    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)tu_rand(&seed);
    assert_int_equal(mkdir(f->store, 0750), 0);
    tu_join(path, sizeof path, f->store, "data.mdb");
    tu_write_file(path, junk, sizeof junk);
    assert_int_equal(try_open(f->store, true, why, sizeof why), IC_ENOTOURS);
    assert_true(why[0] != '\0');
    /* the file is left alone */
    back = tu_read_file(path, &len);
    assert_int_equal(len, sizeof junk);
    assert_memory_equal(back, junk, sizeof junk);
    ic_free(back);

    /* a short one */
    tu_write_file(path, "garbage", 7);
    assert_int_equal(try_open(f->store, true, why, sizeof why), IC_ENOTOURS);
    back = tu_read_file(path, &len);
    assert_int_equal(len, 7);
    ic_free(back);
}

static void test_refuse_newer_format(void **state)
{
    struct fx *f = *state;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    unsigned char be[8];
    MDB_val k = {6, (void *)"format"}, v = {8, be};
    char why[512], want[64];

    f->st = tu_store_open(f->store, 0);
    ic_store_close(f->st);
    f->st = NULL;

    ic_store__be64(be, IC_STORE_FORMAT + 1);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_open(env, f->store, 0, 0640), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    assert_int_equal(try_open(f->store, false, why, sizeof why), IC_EFORMAT);
    snprintf(want, sizeof want, "%d", IC_STORE_FORMAT + 1);
    if (strstr(why, want) == NULL)
        fail_msg("reason does not name version %s: %s", want, why);

    /* back to ours: opens again */
    ic_store__be64(be, IC_STORE_FORMAT);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_open(env, f->store, 0, 0640), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    assert_int_equal(try_open(f->store, false, why, sizeof why), 0);
}

/* A store of format 1 (gs: g -> s instead of gspo) is upgraded when opened
 * for writing: the same quads, graphs readable and replaceable, gs gone;
 * a read-only open of it is refused with a reason until then. */
static void test_upgrade_format_1(void **state)
{
    struct fx *f = *state;
    struct ic_store_opts ro = {0};
    struct ic_store *st = NULL;
    struct ic_load_result res;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, gspo, gs;
    MDB_cursor *cur;
    MDB_val k, v;
    unsigned char be[8];
    char why[512], *before, *after;

    f->st = tu_store_open(f->store, 0);
    assert_int_equal(
        tu_load_text(f->st,
                     "<urn:s1> <urn:p> \"a\", \"b\" .\n<urn:s2> <urn:p> 3 .\n",
                     "urn:g1", IC_LOAD_ONE_GRAPH, false, &res),
        0);
    assert_int_equal(tu_load_text(f->st, "<urn:s1> <urn:p> \"a\" .\n", "urn:g2",
                                  IC_LOAD_ONE_GRAPH, false, &res),
                     0);
    before = tu_dump(f->st, NULL, IC_RDF_NQUADS);
    ic_store_close(f->st);
    f->st = NULL;

    /* back to format 1 by hand: gs from gspo, gspo emptied */
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_open(env, f->store, 0, 0640), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    assert_int_equal(
        mdb_dbi_open(txn, "gspo", MDB_DUPSORT | MDB_DUPFIXED, &gspo), 0);
    assert_int_equal(
        mdb_dbi_open(txn, "gs", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &gs),
        0);
    assert_int_equal(mdb_cursor_open(txn, gspo, &cur), 0);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        MDB_val sv = {8, v.mv_data};
        int prc = mdb_put(txn, gs, &k, &sv, MDB_NODUPDATA);
        assert_true(prc == 0 || prc == MDB_KEYEXIST);
    }
    mdb_cursor_close(cur);
    assert_int_equal(mdb_drop(txn, gspo, 0), 0);
    ic_store__be64(be, 1);
    k = (MDB_val){6, (void *)"format"};
    v = (MDB_val){8, be};
    assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    ro.read_only = true;
    assert_int_equal(ic_store_open(f->store, &ro, &st, why, sizeof why),
                     IC_EFORMAT);
    assert_non_null(strstr(why, "format 1"));

    f->st = tu_store_open(f->store, 0);
    after = tu_dump(f->st, NULL, IC_RDF_NQUADS);
    assert_string_equal(before, after);
    free(after);
    after = tu_dump(f->st, "urn:g2", IC_RDF_NQUADS);
    assert_string_equal(after, "<urn:s1> <urn:p> \"a\" <urn:g2> .\n");
    free(after);
    assert_int_equal(tu_load_text(f->st, "<urn:s2> <urn:p> 4 .\n", "urn:g1",
                                  IC_LOAD_ONE_GRAPH, true, &res),
                     0);
    after = tu_dump(f->st, NULL, IC_RDF_NQUADS);
    assert_null(strstr(after, "\"b\""));
    assert_non_null(strstr(after, "<urn:s1> <urn:p> \"a\" <urn:g2>"));
    assert_non_null(strstr(after, "\"4\"^^"));
    free(after);
    free(before);
    ic_store_close(f->st);
    f->st = NULL;

    /* gs is gone; the format is ours */
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_open(env, f->store, MDB_RDONLY, 0640), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "gs", 0, &gs), MDB_NOTFOUND);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    assert_int_equal(ic_store_open(f->store, &ro, &st, why, sizeof why), 0);
    ic_store_close(st);
}

/* Terms */

static void
check_term(struct ic_txn *txn, uint64_t id, const struct ic_term *want)
{
    struct ic_term got;
    char buf[64];

    memset(&got, 0xff, sizeof got);
    assert_int_equal(ic_store_term_get(txn, id, &got, buf), 0);
    assert_int_equal(got.kind, want->kind);
    assert_int_equal(got.len, want->len);
    assert_memory_equal(got.value, want->value, want->len);
    if (want->datatype == NULL || strcmp(want->datatype, IC_XSD "string") == 0)
        assert_null(got.datatype);
    else
        assert_string_equal(got.datatype, want->datatype);
    if (want->lang == NULL)
        assert_null(got.lang);
    else
        assert_string_equal(got.lang, want->lang);
}

static void test_term_round_trip(void **state)
{
    struct fx *f = *state;
    static char big[70000];
    struct ic_term terms[] = {
        {IC_TERM_IRI, "http://ex/a", 11, NULL, NULL},
        {IC_TERM_BLANK, "b0", 2, NULL, NULL},
        {IC_TERM_LITERAL, "plain", 5, NULL, NULL},
        {IC_TERM_LITERAL, "chat", 4, NULL, "fr"},
        {IC_TERM_LITERAL, "chat", 4, NULL, "en-GB"},
        {IC_TERM_LITERAL, "chat", 4, NULL, NULL},
        {IC_TERM_LITERAL, "2026-01-01T00:00:00Z", 20, IC_XSD "dateTime", NULL},
        {IC_TERM_LITERAL, "42", 2, IC_XSD "integer", NULL},
        {IC_TERM_LITERAL, "42", 2, IC_XSD "decimal", NULL},
        {IC_TERM_LITERAL, "42", 2, "http://ex/myType", NULL},
        {IC_TERM_LITERAL, "abc", 3, IC_XSD "integer", NULL},
        {IC_TERM_LITERAL, "true", 4, IC_XSD "boolean", NULL},
        {IC_TERM_LITERAL, "false", 5, IC_XSD "boolean", NULL},
        {IC_TERM_LITERAL, "1", 1, IC_XSD "boolean", NULL},
        {IC_TERM_LITERAL, "", 0, NULL, NULL},
        {IC_TERM_LITERAL, "a\nb\"c\\d \xe6\x97\xa5\xe6\x9c\xac", 14, NULL,
         NULL},
        /* same text, three kinds */
        {IC_TERM_IRI, "x", 1, NULL, NULL},
        {IC_TERM_BLANK, "x", 1, NULL, NULL},
        {IC_TERM_LITERAL, "x", 1, NULL, NULL},
        {IC_TERM_LITERAL, big, sizeof big - 1, NULL, NULL},
    };
    const size_t n = IC_ARRAY_LEN(terms);
    uint64_t ids[IC_ARRAY_LEN(terms)], id;
    struct ic_term str = {IC_TERM_LITERAL, "plain", 5, IC_XSD "string", NULL};
    struct ic_term nul = {IC_TERM_IRI, "a\0b", 3, NULL, NULL};
    struct ic_term absent = ic_term_iri("http://ex/absent");
    struct ic_txn *txn;

    for (size_t i = 0; i + 1 < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    for (size_t i = 0; i < n; i++) {
        ids[i] = id_of(txn, &terms[i]);
        for (size_t j = 0; j < i; j++)
            assert_true(ids[j] != ids[i]);
        assert_int_equal(id_of(txn, &terms[i]), ids[i]);
        check_term(txn, ids[i], &terms[i]);
    }
    /* booleans are inlined, the rest lives in the dictionary */
    assert_int_equal(IC_ID_TAG(ids[11]), IC_TAG_BOOL);
    assert_int_equal(IC_ID_TAG(ids[12]), IC_TAG_BOOL);
    assert_int_equal(IC_ID_TAG(ids[13]), IC_TAG_DICT);
    assert_int_equal(IC_ID_TAG(ids[0]), IC_TAG_DICT);
    assert_int_equal(IC_ID_TAG(ids[6]), IC_TAG_TIME);
    assert_int_equal(IC_ID_TAG(ids[7]), IC_TAG_NUM);
    assert_int_equal(IC_ID_TAG(ids[8]), IC_TAG_NUM);
    assert_int_equal(IC_ID_TAG(ids[9]), IC_TAG_DICT);
    assert_int_equal(IC_ID_TAG(ids[10]), IC_TAG_DICT);
    /* xsd:string is the plain literal */
    assert_int_equal(id_of(txn, &str), ids[2]);
    assert_int_equal(ic_store_term_id(txn, &nul, true, &id), IC_EINVAL);
    assert_int_equal(ic_store_term_id(txn, &absent, false, &id), IC_ENOTFOUND);
    assert_int_equal(ic_store_txn_commit(txn), 0);

    /* after commit, in a read transaction */
    assert_int_equal(ic_store_txn_begin(f->st, false, &txn), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ic_store_term_id(txn, &terms[i], false, &id), 0);
        assert_int_equal(id, ids[i]);
        check_term(txn, ids[i], &terms[i]);
    }
    assert_int_equal(ic_store_term_id(txn, &absent, false, &id), IC_ENOTFOUND);
    assert_int_equal(ic_store_term_id(txn, &absent, true, &id), IC_EREADONLY);
    {
        struct ic_term none;
        char buf[64];
        assert_int_equal(
            ic_store_term_get(txn, IC_ID_MAKE(IC_TAG_DICT, 999999), &none, buf),
            IC_ENOTFOUND);
    }
    ic_store_txn_abort(txn);
}

/* Regression: "fals"^^xsd:boolean was inlined as true (a prefix compare):
 * it is not a boolean lexical form and must come back as written. */
static void regress_term_boolean_prefix(void **state)
{
    struct fx *f = *state;
    struct ic_term fals = {IC_TERM_LITERAL, "fals", 4, IC_XSD "boolean", NULL};
    struct ic_txn *txn;
    uint64_t id;

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    id = id_of(txn, &fals);
    assert_true(id != IC_ID_MAKE(IC_TAG_BOOL, 1ULL));
    check_term(txn, id, &fals);
    ic_store_txn_abort(txn);
}

/* Quads */

static void test_quad_add_remove(void **state)
{
    struct fx *f = *state;
    struct ic_term s = ic_term_iri("http://ex/s");
    struct ic_term p = ic_term_iri("http://ex/p");
    struct ic_term o = {IC_TERM_LITERAL, "v", 1, NULL, "en"};
    struct ic_term g = ic_term_iri("http://ex/g");
    struct ic_term other = ic_term_iri("http://ex/never-seen");
    const struct ic_term *q[4] = {&s, &p, &o, &g};
    const struct ic_term *q2[4] = {&s, &p, &other, &g};
    struct ic_store_stats st;
    struct ic_txn *txn;
    uint64_t ids[4];

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_quad_add(txn, q), 0);
    assert_int_equal(ic_store_quad_add(txn, q), 0); /* idempotent */
    for (int i = 0; i < 4; i++)
        ids[i] = id_of(txn, q[i]);
    assert_int_equal(count_pat(txn, 0, 0, 0, 0), 1);
    assert_int_equal(count_pat(txn, ids[0], ids[1], ids[2], ids[3]), 1);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    tu_stats(f->st, &st);
    assert_int_equal(st.quads, 1);
    assert_int_equal(st.triples, 1);
    assert_int_equal(st.graphs, 1);
    assert_int_equal(st.terms, 4);

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    /* removing a quad with an unknown term is a no-op */
    assert_int_equal(ic_store_quad_remove(txn, q2), 0);
    assert_int_equal(count_pat(txn, 0, 0, 0, 0), 1);
    assert_int_equal(ic_store_quad_remove(txn, q), 0);
    assert_int_equal(ic_store_quad_remove(txn, q), 0); /* already gone */
    for (int i = 0; i < 4; i++) {
        uint64_t pat[4] = {0, 0, 0, 0};
        pat[i] = ids[i];
        assert_int_equal(count_pat(txn, pat[0], pat[1], pat[2], pat[3]), 0);
    }
    assert_int_equal(count_pat(txn, 0, 0, 0, 0), 0);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    tu_stats(f->st, &st);
    assert_int_equal(st.quads, 0);
    assert_int_equal(st.triples, 0);
    assert_int_equal(st.graphs, 0); /* regress_stats_graphs_after_remove */

    /* by ids, and writes refused in a read transaction */
    assert_int_equal(ic_store_txn_begin(f->st, false, &txn), 0);
    assert_int_equal(ic_store_quad_add_ids(txn, ids), IC_EREADONLY);
    assert_int_equal(ic_store_quad_remove_ids(txn, ids), IC_EREADONLY);
    assert_int_equal(ic_store_graph_clear(txn, "http://ex/g"), IC_EREADONLY);
    ic_store_txn_abort(txn);
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_quad_add_ids(txn, ids), 0);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    tu_stats(f->st, &st);
    assert_int_equal(st.quads, 1);
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_quad_remove_ids(txn, ids), 0);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    tu_stats(f->st, &st);
    assert_int_equal(st.quads, 0);
}

/* The same triple in graphs g1 and g2; WHICH says how g1 loses it: 0 by
 * clearing the graph, 1 by removing the quad. */
static void two_graphs(struct fx *f, int which)
{
    struct ic_txn *txn;
    uint64_t s, p, o, g1, g2, x, q1[4], q2[4], got[8][4];
    uint64_t all[4] = {0, 0, 0, 0};
    struct ic_store_stats st;

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    s = iri_id(txn, "http://ex/s");
    p = iri_id(txn, "http://ex/p");
    o = iri_id(txn, "http://ex/o");
    g1 = iri_id(txn, "http://ex/g1");
    g2 = iri_id(txn, "http://ex/g2");
    x = iri_id(txn, "http://ex/x");
    q1[0] = q2[0] = s;
    q1[1] = q2[1] = p;
    q1[2] = q2[2] = o;
    q1[3] = g1;
    q2[3] = g2;
    assert_int_equal(ic_store_quad_add_ids(txn, q1), 0);
    assert_int_equal(ic_store_quad_add_ids(txn, q2), 0);
    {
        /* g1 also holds another triple */
        uint64_t q3[4] = {s, p, x, g1};
        assert_int_equal(ic_store_quad_add_ids(txn, q3), 0);
    }
    assert_int_equal(ic_store_txn_commit(txn), 0);
    tu_stats(f->st, &st);
    assert_int_equal(st.quads, 3);
    assert_int_equal(st.triples, 2);
    assert_int_equal(st.graphs, 2);

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    if (which == 0) {
        assert_int_equal(ic_store_graph_clear(txn, "http://ex/g1"), 0);
    } else {
        uint64_t q3[4] = {s, p, x, g1};
        assert_int_equal(ic_store_quad_remove_ids(txn, q1), 0);
        assert_int_equal(ic_store_quad_remove_ids(txn, q3), 0);
    }
    assert_int_equal(ic_store_txn_commit(txn), 0);

    assert_int_equal(ic_store_txn_begin(f->st, false, &txn), 0);
    {
        /* every pattern that binds any of s, p, o, g2 finds exactly q2 */
        const uint64_t pats[][4] = {
            {s, 0, 0, 0},  {0, p, 0, 0}, {0, 0, o, 0}, {0, 0, 0, g2},
            {s, p, 0, 0},  {0, p, o, 0}, {s, 0, o, 0}, {s, p, o, 0},
            {s, p, o, g2}, {0, 0, 0, 0},
        };
        for (size_t i = 0; i < IC_ARRAY_LEN(pats); i++) {
            assert_int_equal(collect(txn, pats[i], got, 8), 1);
            assert_memory_equal(got[0], q2, sizeof q2);
        }
    }
    assert_int_equal(count_pat(txn, 0, 0, 0, g1), 0);
    assert_int_equal(count_pat(txn, 0, 0, x, 0), 0);
    assert_int_equal(count_pat(txn, s, p, o, g1), 0);
    assert_int_equal(collect(txn, all, got, 8), 1);
    ic_store_txn_abort(txn);
    tu_stats(f->st, &st);
    assert_int_equal(st.quads, 1);
    assert_int_equal(st.triples, 1);
    assert_int_equal(st.graphs, 1);

    /* the last copy goes: the triple goes */
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_quad_remove_ids(txn, q2), 0);
    assert_int_equal(count_pat(txn, s, 0, 0, 0), 0);
    assert_int_equal(count_pat(txn, 0, p, 0, 0), 0);
    assert_int_equal(count_pat(txn, 0, 0, o, 0), 0);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    tu_stats(f->st, &st);
    assert_int_equal(st.quads, 0);
    assert_int_equal(st.triples, 0);
}

static void test_same_triple_two_graphs_clear(void **state)
{
    two_graphs(*state, 0);
}

static void test_same_triple_two_graphs_remove(void **state)
{
    two_graphs(*state, 1);
}

/* Adds <http://ex/s> <http://ex/p> <http://ex/o> in graph <http://ex/g>;
 * Q gets the ids. */
static void add_sample_quad(struct ic_txn *txn, uint64_t q[4])
{
    q[0] = iri_id(txn, "http://ex/s");
    q[1] = iri_id(txn, "http://ex/p");
    q[2] = iri_id(txn, "http://ex/o");
    q[3] = iri_id(txn, "http://ex/g");
    assert_int_equal(ic_store_quad_add_ids(txn, q), 0);
}

/* Regression: a graph whose last quad was removed one quad at a time was
 * still counted in stats.graphs (the gs index kept the subject). */
static void regress_stats_graphs_after_remove(void **state)
{
    struct fx *f = *state;
    struct ic_store_stats st;
    struct ic_txn *txn;
    uint64_t q[4];

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    add_sample_quad(txn, q);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    tu_stats(f->st, &st);
    assert_int_equal(st.graphs, 1);
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_quad_remove_ids(txn, q), 0);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    tu_stats(f->st, &st);
    assert_int_equal(st.quads, 0);
    assert_int_equal(st.graphs, 0);
}

static void test_graph_clear(void **state)
{
    struct fx *f = *state;
    struct ic_txn *txn;
    struct ic_store_stats st;
    uint64_t g[3], p, obj[50];
    char iri[64];

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    /* unknown graph: nothing to do */
    assert_int_equal(ic_store_graph_clear(txn, "http://ex/nothing"), 0);
    p = iri_id(txn, "http://ex/p");
    for (int i = 0; i < 3; i++) {
        snprintf(iri, sizeof iri, "http://ex/g%d", i);
        g[i] = iri_id(txn, iri);
    }
    for (int i = 0; i < 50; i++) {
        snprintf(iri, sizeof iri, "http://ex/o%d", i);
        obj[i] = iri_id(txn, iri);
    }
    for (int gi = 0; gi < 3; gi++)
        for (int i = 0; i < 50; i++) {
            uint64_t q[4] = {obj[(i + gi) % 50], p, obj[i], g[gi]};
            assert_int_equal(ic_store_quad_add_ids(txn, q), 0);
        }
    assert_int_equal(ic_store_txn_commit(txn), 0);
    tu_stats(f->st, &st);
    assert_int_equal(st.quads, 150);
    assert_int_equal(st.triples, 150);
    assert_int_equal(st.graphs, 3);

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_graph_clear(txn, "http://ex/g1"), 0);
    assert_int_equal(ic_store_graph_clear(txn, "http://ex/g1"), 0);
    /* a graph with no quads, only a dictionary entry */
    assert_int_equal(ic_store_graph_clear(txn, "http://ex/p"), 0);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    tu_stats(f->st, &st);
    assert_int_equal(st.quads, 100);
    assert_int_equal(st.triples, 100);
    assert_int_equal(st.graphs, 2);
    assert_int_equal(ic_store_txn_begin(f->st, false, &txn), 0);
    assert_int_equal(count_pat(txn, 0, 0, 0, g[1]), 0);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(count_pat(txn, 0, p, obj[i], 0), 2);
        assert_int_equal(count_pat(txn, obj[(i + 1) % 50], p, obj[i], 0), 0);
    }
    ic_store_txn_abort(txn);
}

/* Iteration: every bound/unbound combination against brute force. */

#define NQ 400

static size_t brute(const uint64_t (*data)[4],
                    size_t n,
                    const uint64_t pat[4],
                    uint64_t (*out)[4])
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        bool ok = true;
        for (int j = 0; j < 4; j++)
            if (pat[j] && pat[j] != data[i][j])
                ok = false;
        if (ok)
            memcpy(out[k++], data[i], sizeof *out);
    }
    qsort(out, k, sizeof *out, cmp_quad);
    return k;
}

static void check_all_patterns(struct ic_txn *txn,
                               const uint64_t (*data)[4],
                               size_t n,
                               uint64_t *seed,
                               const uint64_t *absent)
{
    static uint64_t want[NQ][4], got[NQ][4];
    size_t checked = 0;

    for (unsigned mask = 0; mask < 16; mask++) {
        for (int trial = 0; trial < 24; trial++) {
            uint64_t pat[4] = {0, 0, 0, 0};
            const uint64_t *src = data[tu_rand(seed) % n];
            for (int j = 0; j < 4; j++)
                if (mask & (1u << j)) {
                    /* mostly values from one quad, sometimes from
                     * another, sometimes a term no quad has */
                    unsigned r = (unsigned)(tu_rand(seed) % 8);
                    pat[j] = r == 0   ? *absent
                             : r == 1 ? data[tu_rand(seed) % n][j]
                                      : src[j];
                }
            size_t nw = brute(data, n, pat, want);
            size_t ng = collect(txn, pat, got, NQ);
            if (ng != nw)
                fail_msg("pattern mask %u: %zu quads, expected %zu", mask, ng,
                         nw);
            assert_memory_equal(got, want, nw * sizeof *want);
            checked += nw;
        }
    }
    assert_true(checked > 0);
}

static void test_iter_patterns(void **state)
{
    struct fx *f = *state;
    static uint64_t data[NQ][4];
    uint64_t terms[4][8], absent, seed = 0x9e3779b97f4a7c15ULL;
    size_t n = 0;
    struct ic_txn *txn;
    char txt[64];

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    for (int pos = 0; pos < 4; pos++)
        for (int i = 0; i < 8; i++) {
            struct ic_term t;
            if (pos == 2 && i % 3 == 1) {
                /* ordered literals and a boolean among the objects */
                snprintf(txt, sizeof txt, "%d", i * 7 - 20);
                t = ic_term_literal(txt, IC_XSD "integer");
            } else if (pos == 2 && i == 6) {
                t = ic_term_literal("true", IC_XSD "boolean");
            } else {
                snprintf(txt, sizeof txt, "http://ex/t%d_%d", pos, i);
                t = ic_term_iri(txt);
            }
            terms[pos][i] = id_of(txn, &t);
        }
    /* subjects and objects share some terms, as in real data */
    terms[2][0] = terms[0][1];
    terms[2][2] = terms[0][3];
    absent = iri_id(txn, "http://ex/absent");
    for (int i = 0; i < NQ; i++) {
        uint64_t q[4];
        for (int j = 0; j < 4; j++)
            q[j] = terms[j][tu_rand(&seed) % (j == 1 ? 4 : 8)];
        assert_int_equal(ic_store_quad_add_ids(txn, q), 0);
    }
    /* remove some, clear a graph */
    for (int i = 0; i < 60; i++) {
        uint64_t q[4];
        for (int j = 0; j < 4; j++)
            q[j] = terms[j][tu_rand(&seed) % (j == 1 ? 4 : 8)];
        assert_int_equal(ic_store_quad_remove_ids(txn, q), 0);
    }
    assert_int_equal(ic_store_graph_clear(txn, "http://ex/t3_5"), 0);
    /* the truth is what a full scan returns, checked against the
     * expectation below by construction: rebuild it from gspo */
    {
        uint64_t all[4] = {0, 0, 0, 0};
        n = collect(txn, all, data, NQ);
    }
    assert_true(n > 100);
    for (size_t i = 0; i < n; i++)
        assert_true(data[i][3] != terms[3][5]);
    check_all_patterns(txn, (const uint64_t(*)[4])data, n, &seed, &absent);
    assert_int_equal(ic_store_txn_commit(txn), 0);

    assert_int_equal(ic_store_txn_begin(f->st, false, &txn), 0);
    check_all_patterns(txn, (const uint64_t(*)[4])data, n, &seed, &absent);
    ic_store_txn_abort(txn);
}

/* The same, with the expectation kept outside the store: a set of quads
 * maintained in memory alongside the adds and removes. */
static void test_iter_patterns_model(void **state)
{
    struct fx *f = *state;
    static uint64_t model[NQ][4];
    uint64_t ids[24], absent, seed = 42;
    size_t n = 0;
    struct ic_txn *txn;
    char iri[64];

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    for (int i = 0; i < 24; i++) {
        snprintf(iri, sizeof iri, "http://ex/n%d", i);
        ids[i] = iri_id(txn, iri);
    }
    absent = iri_id(txn, "http://ex/absent");
    for (int step = 0; step < 700; step++) {
        uint64_t q[4] = {ids[tu_rand(&seed) % 6], ids[6 + tu_rand(&seed) % 4],
                         ids[tu_rand(&seed) % 16],
                         ids[16 + tu_rand(&seed) % 4]};
        size_t at = n;
        for (size_t i = 0; i < n; i++)
            if (cmp_quad(model[i], q) == 0)
                at = i;
        if (tu_rand(&seed) % 3 == 0) {
            assert_int_equal(ic_store_quad_remove_ids(txn, q), 0);
            if (at < n)
                memcpy(model[at], model[--n], sizeof *model);
        } else {
            assert_int_equal(ic_store_quad_add_ids(txn, q), 0);
            if (at == n) {
                assert_true(n < NQ);
                memcpy(model[n++], q, sizeof q);
            }
        }
    }
    assert_true(n > 50);
    check_all_patterns(txn, (const uint64_t(*)[4])model, n, &seed, &absent);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    assert_int_equal(ic_store_txn_begin(f->st, false, &txn), 0);
    check_all_patterns(txn, (const uint64_t(*)[4])model, n, &seed, &absent);
    ic_store_txn_abort(txn);
    {
        struct ic_store_stats st;
        tu_stats(f->st, &st);
        assert_int_equal(st.quads, n);
    }
}

static void test_stats_counts(void **state)
{
    struct fx *f = *state;
    struct ic_store_stats st;
    struct ic_txn *txn;
    uint64_t s1, s2, p, o1, o2, g1, g2;
    struct ic_term b = ic_term_literal("true", IC_XSD "boolean");
    struct ic_term n5 = ic_term_literal("5", IC_XSD "integer");

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    s1 = iri_id(txn, "http://ex/s1");
    s2 = iri_id(txn, "http://ex/s2");
    p = iri_id(txn, "http://ex/p");
    o1 = id_of(txn, &n5);
    o2 = id_of(txn, &b); /* inlined: not a dictionary term */
    g1 = iri_id(txn, "http://ex/g1");
    g2 = iri_id(txn, "http://ex/g2");
    {
        const uint64_t qs[][4] = {
            {s1, p, o1, g1}, {s1, p, o2, g1}, {s2, p, o1, g1},
            {s1, p, o1, g2}, {s2, p, o2, g2},
        };
        for (size_t i = 0; i < IC_ARRAY_LEN(qs); i++)
            assert_int_equal(ic_store_quad_add_ids(txn, qs[i]), 0);
    }
    /* Regression: ic_store_stats fails inside a write transaction, see
     * regress_stats_in_write_txn */
    assert_int_equal(ic_store_txn_commit(txn), 0);
    tu_stats(f->st, &st);
    assert_int_equal(st.format, IC_STORE_FORMAT);
    assert_int_equal(st.quads, 5);
    assert_int_equal(st.triples, 4);
    assert_int_equal(st.terms, 6);
    assert_int_equal(st.graphs, 2);
    assert_int_equal(st.map_size, 64ULL << 20);
    assert_true(st.used_bytes > 0);
    assert_true(st.used_bytes % 4096 == 0);
    assert_true(st.used_bytes < st.map_size);
}

/* Regression: stats in a write transaction failed with IC_EIO (a cursor on
 * LMDB's free list, which LMDB refuses in write transactions). */
static void regress_stats_in_write_txn(void **state)
{
    struct fx *f = *state;
    struct ic_store_stats st;
    struct ic_txn *txn;
    uint64_t q[4];

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    add_sample_quad(txn, q);
    assert_int_equal(ic_store_stats(txn, &st), 0);
    assert_int_equal(st.quads, 1);
    assert_int_equal(st.triples, 1);
    assert_int_equal(st.terms, 4);
    assert_int_equal(st.graphs, 1);
    ic_store_txn_abort(txn);
}

/* Key/value databases */

static void test_abort_discards(void **state)
{
    struct fx *f = *state;
    struct ic_store_stats before, after;
    struct ic_term s = ic_term_iri("http://ex/s");
    struct ic_term p = ic_term_iri("http://ex/p");
    struct ic_term o = ic_term_literal("3.25", IC_XSD "decimal");
    struct ic_term g = ic_term_iri("http://ex/g");
    struct ic_term keep = ic_term_iri("http://ex/keep");
    const struct ic_term *q[4] = {&s, &p, &o, &g};
    const struct ic_term *qk[4] = {&keep, &p, &keep, &g};
    const struct ic_term *all[] = {&s, &p, &o, &g};
    struct ic_kv key = {"k", 1}, val;
    struct ic_txn *txn;
    uint64_t id, idx, keep_id;
    char *dump_before, *dump_after;

    /* something committed first */
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_quad_add(txn, qk), 0);
    keep_id = id_of(txn, &keep);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    tu_stats(f->st, &before);
    dump_before = tu_dump(f->st, NULL, IC_RDF_NQUADS);

    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_quad_add(txn, q), 0);
    assert_int_equal(ic_store_quad_remove(txn, qk), 0);
    assert_int_equal(ic_store_graph_clear(txn, "http://ex/g"), 0);
    assert_int_equal(ic_store_quad_add(txn, q), 0);
    assert_int_equal(ic_store_kv_put(txn, IC_KV_ACCOUNTS, key, key), 0);
    assert_int_equal(ic_store_applied_set(txn, 9), 0);
    assert_int_equal(count_pat(txn, 0, 0, 0, 0), 1);
    ic_store_txn_abort(txn);

    tu_stats(f->st, &after);
    tu_assert_stats_equal(&before, &after);
    dump_after = tu_dump(f->st, NULL, IC_RDF_NQUADS);
    assert_string_equal(dump_after, dump_before);
    assert_int_equal(ic_store_txn_begin(f->st, false, &txn), 0);
    for (size_t i = 0; i < IC_ARRAY_LEN(all); i++) {
        if (all[i] == &p || all[i] == &g)
            continue; /* committed before */
        assert_int_equal(ic_store_term_id(txn, all[i], false, &id),
                         IC_ENOTFOUND);
    }
    assert_int_equal(ic_store_kv_get(txn, IC_KV_ACCOUNTS, key, &val),
                     IC_ENOTFOUND);
    assert_int_equal(ic_store_applied_get(txn, &idx), 0);
    assert_int_equal(idx, 0);
    assert_int_equal(count_pat(txn, keep_id, 0, 0, 0), 1);
    ic_store_txn_abort(txn);

    /* the dictionary still works after the abort: new terms get ids that
     * do not clash with the committed ones */
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_quad_add(txn, q), 0);
    assert_true(id_of(txn, &s) != keep_id);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    assert_int_equal(ic_store_txn_begin(f->st, false, &txn), 0);
    assert_int_equal(id_of(txn, &keep), keep_id);
    check_term(txn, keep_id, &keep);
    check_term(txn, id_of(txn, &s), &s);
    check_term(txn, id_of(txn, &o), &o);
    assert_int_equal(count_pat(txn, 0, 0, 0, 0), 2);
    ic_store_txn_abort(txn);
    ic_free(dump_before);
    ic_free(dump_after);
}

static int to_file(void *data, const void *buf, size_t len)
{
    return fwrite(buf, 1, len, data) == len ? 0 : IC_EIO;
}

/* The store keeps the ids of committed terms for later write transactions
 * (store_int.h, ic_store.terms): a term created in a transaction that was
 * aborted, or in a nested one whose parent was, never gets there (its id
 * is handed out again), nor one from before a snapshot restore (ids differ
 * after it). */
static void test_term_cache_committed_only(void **state)
{
    struct fx *f = *state;
    struct ic_term a = ic_term_iri("http://ex/aborted");
    struct ic_term b = ic_term_iri("http://ex/other");
    struct ic_term c = ic_term_iri("http://ex/child");
    struct ic_term k = ic_term_iri("http://ex/kept");
    struct ic_txn *txn, *child;
    uint64_t ida, idb, idc, idk, id;
    unsigned char *snap = NULL;
    size_t snap_len = 0;
    char why[256];

    /* committed: cached, and found again */
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_term_id(txn, &k, true, &idk), 0);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    assert_true(f->st->terms.n >= 1);
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_term_id(txn, &k, false, &id), 0);
    assert_int_equal(id, idk);

    /* created in a child, the parent aborted */
    assert_int_equal(ic_store_txn_begin_nested(txn, &child), 0);
    assert_int_equal(ic_store_term_id(child, &c, true, &idc), 0);
    assert_int_equal(ic_store_txn_commit(child), 0);
    assert_int_equal(ic_store_term_id(txn, &a, true, &ida), 0);
    ic_store_txn_abort(txn);

    /* the ids come back for other terms; the aborted ones are unknown */
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_term_id(txn, &b, true, &idb), 0);
    assert_true(idb == idc || idb == ida);
    assert_int_equal(ic_store_term_id(txn, &a, false, &id), IC_ENOTFOUND);
    assert_int_equal(ic_store_term_id(txn, &c, false, &id), IC_ENOTFOUND);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_term_id(txn, &b, false, &id), 0);
    assert_int_equal(id, idb);
    assert_int_equal(ic_store_term_id(txn, &a, false, &id), IC_ENOTFOUND);
    ic_store_txn_abort(txn);

    /* a snapshot taken now, then a term added, then the snapshot restored:
     * the cache starts again, and the term added after it is unknown */
    assert_int_equal(ic_store_txn_begin(f->st, false, &txn), 0);
    {
        FILE *mf = open_memstream((char **)&snap, &snap_len);
        assert_non_null(mf);
        assert_int_equal(ic_store_snapshot_write(txn, to_file, mf), 0);
        fclose(mf);
    }
    ic_store_txn_abort(txn);
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_term_id(txn, &a, true, &ida), 0);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(
        ic_store_snapshot_restore(txn, snap, snap_len, why, sizeof why), 0);
    assert_int_equal(f->st->terms.n, 0);
    assert_int_equal(ic_store_txn_commit(txn), 0);
    assert_int_equal(ic_store_txn_begin(f->st, true, &txn), 0);
    assert_int_equal(ic_store_term_id(txn, &a, false, &id), IC_ENOTFOUND);
    assert_int_equal(ic_store_term_id(txn, &k, false, &id), 0);
    assert_int_equal(id, idk);
    ic_store_txn_abort(txn);
    free(snap);
}

/* Quads added in bulk (sorted, appended per index) and a few at a time
 * (one put per index each) leave the same store: same digest. */
static void test_add_small_and_bulk_same(void **state)
{
    char dir[2][64], path[128];
    struct ic_store *st[2];
    unsigned char dg[2][32];
    uint64_t q[6][4];

    (void)state;
    for (int i = 0; i < 6; i++) {
        q[i][0] = IC_ID_MAKE(IC_TAG_DICT, 100 + (uint64_t)(i % 2));
        q[i][1] = IC_ID_MAKE(IC_TAG_DICT, 200 + (uint64_t)(i % 3));
        q[i][2] = IC_ID_MAKE(IC_TAG_DICT, 300 + (uint64_t)i);
        q[i][3] = IC_ID_MAKE(IC_TAG_DICT, 400);
    }
    for (int k = 0; k < 2; k++) {
        struct ic_txn *t;
        tu_tmpdir(dir[k], sizeof dir[k]);
        tu_join(path, sizeof path, dir[k], "store");
        st[k] = tu_store_open(path, 64ULL << 20);
        assert_int_equal(ic_store_txn_begin(st[k], true, &t), 0);
        if (k == 0) {
            assert_int_equal(ic_store__quads_add_bulk(t, q, 6), 0);
        } else {
            assert_int_equal(ic_store__quads_add_bulk(t, q, 3), 0);
            assert_int_equal(ic_store__quads_add_bulk(t, q + 3, 3), 0);
            assert_int_equal(ic_store__quads_add_bulk(t, q, 2), 0); /* again */
        }
        assert_int_equal(ic_store_txn_commit(t), 0);
        assert_int_equal(ic_store_txn_begin(st[k], false, &t), 0);
        assert_int_equal(ic_store_digest(t, dg[k]), 0);
        ic_store_txn_abort(t);
    }
    assert_memory_equal(dg[0], dg[1], 32);
    for (int k = 0; k < 2; k++) {
        ic_store_close(st[k]);
        tu_rmrf(dir[k]);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_close, setup, teardown),
        cmocka_unit_test(test_add_small_and_bulk_same),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refuse_foreign_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refuse_foreign_lmdb, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(regress_store_readonly_foreign_meta,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_newer_format, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_format_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_term_round_trip, setup_open,
                                        teardown),
        cmocka_unit_test_setup_teardown(regress_term_boolean_prefix, setup_open,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_quad_add_remove, setup_open,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_same_triple_two_graphs_clear,
                                        setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_same_triple_two_graphs_remove,
                                        setup_open, teardown),
        cmocka_unit_test_setup_teardown(regress_stats_graphs_after_remove,
                                        setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_graph_clear, setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_iter_patterns, setup_open,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_iter_patterns_model, setup_open,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stats_counts, setup_open,
                                        teardown),
        cmocka_unit_test_setup_teardown(regress_stats_in_write_txn, setup_open,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_term_cache_committed_only,
                                        setup_open, teardown),
        cmocka_unit_test_setup_teardown(test_abort_discards, setup_open,
                                        teardown),
    };

    return tu_main(argc, argv, "store", tests, IC_ARRAY_LEN(tests));
}
