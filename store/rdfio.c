/*
 * rdfio.c - Turtle, TriG, N-Triples and N-Quads in and out through serd.
 *
 * Loading streams statements through serd's reader into an array of id
 * quads (terms go to the dictionary as they come), then inserts them sorted
 * per index. Everything happens inside the caller's write transaction, so a
 * syntax error at any line leaves the store as it was once the caller
 * aborts.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <serd/serd.h>

#include "store_int.h"

struct loader {
    struct ic_txn *txn;
    const struct ic_load_opts *opts;
    SerdEnv *env;
    uint64_t default_g;
    uint64_t (*q)[4];
    size_t n, cap;
    int rc;
    char *error;
    size_t error_len;
    const char *name;
    char *bad_token;         /* a name serd accepted but we could not expand */
    uint64_t last_s, last_g; /* IC_LOAD_BY_SUBJECT: the last subject */
};

enum ic_rdf_syntax ic_rdf_syntax_from_name(const char *name)
{
    const char *dot = strrchr(name, '.');

    if (dot == NULL)
        return 0;
    if (strcmp(dot, ".ttl") == 0 || strcmp(dot, ".turtle") == 0)
        return IC_RDF_TURTLE;
    if (strcmp(dot, ".nt") == 0)
        return IC_RDF_NTRIPLES;
    if (strcmp(dot, ".nq") == 0)
        return IC_RDF_NQUADS;
    if (strcmp(dot, ".trig") == 0)
        return IC_RDF_TRIG;
    return 0;
}

static SerdSyntax serd_syntax(enum ic_rdf_syntax s)
{
    switch (s) {
    case IC_RDF_NTRIPLES:
        return SERD_NTRIPLES;
    case IC_RDF_NQUADS:
        return SERD_NQUADS;
    case IC_RDF_TRIG:
        return SERD_TRIG;
    case IC_RDF_TURTLE:
    default:
        return SERD_TURTLE;
    }
}

static void fail(struct loader *l, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct loader *l, int rc, const char *fmt, ...)
{
    va_list ap;

    if (l->rc != 0)
        return;
    l->rc = rc;
    va_start(ap, fmt);
    vsnprintf(l->error, l->error_len, fmt, ap);
    va_end(ap);
}

static SerdStatus on_error(void *handle, const SerdError *e)
{
    struct loader *l = handle;
    char msg[400];
    va_list ap;
    size_t n;

    va_copy(ap, *e->args);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    vsnprintf(msg, sizeof msg, e->fmt, ap); /* serd's own format */
#pragma GCC diagnostic pop
    va_end(ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    fail(l, IC_ESYNTAX, "%s:%u:%u: %s", l->name, e->line, e->col, msg);
    return SERD_SUCCESS;
}

static SerdStatus on_base(void *handle, const SerdNode *uri)
{
    struct loader *l = handle;
    return serd_env_set_base_uri(l->env, uri);
}

static SerdStatus
on_prefix(void *handle, const SerdNode *name, const SerdNode *uri)
{
    struct loader *l = handle;
    return serd_env_set_prefix(l->env, name, uri);
}

/* An IRI node, expanded and resolved; the caller frees *owned. */
static const SerdNode *
expand(struct loader *l, const SerdNode *n, SerdNode *owned)
{
    if (n->type == SERD_URI &&
        serd_uri_string_has_scheme((const uint8_t *)n->buf))
        return n;
    *owned = serd_env_expand_node(l->env, n);
    if (owned->buf != NULL &&
        !serd_uri_string_has_scheme((const uint8_t *)owned->buf)) {
        /* a prefix bound to a relative IRI: resolve against the base */
        SerdNode rel = *owned;
        rel.type = SERD_URI;
        *owned = serd_env_expand_node(l->env, &rel);
        serd_node_free(&rel);
    }
    if (owned->buf == NULL ||
        !serd_uri_string_has_scheme((const uint8_t *)owned->buf)) {
        serd_node_free(owned);
        fail(l, IC_ESYNTAX,
             "%s: cannot expand '%s' (undefined prefix or "
             "relative IRI without a base)",
             l->name, (const char *)n->buf);
        if (l->bad_token == NULL)
            l->bad_token = ic_strdup((const char *)n->buf);
        return NULL;
    }
    return owned;
}

static int node_id(struct loader *l,
                   const SerdNode *n,
                   const SerdNode *dt,
                   const SerdNode *lang,
                   uint64_t *id)
{
    SerdNode own = SERD_NODE_NULL, own_dt = SERD_NODE_NULL;
    const SerdNode *x = n;
    struct ic_term t = {0};
    int rc;

    switch (n->type) {
    case SERD_URI:
    case SERD_CURIE:
        x = expand(l, n, &own);
        if (x == NULL)
            return l->rc;
        t.kind = IC_TERM_IRI;
        break;
    case SERD_BLANK:
        t.kind = IC_TERM_BLANK;
        break;
    case SERD_LITERAL:
        t.kind = IC_TERM_LITERAL;
        if (dt != NULL && dt->buf != NULL) {
            const SerdNode *d = expand(l, dt, &own_dt);
            if (d == NULL)
                return l->rc;
            t.datatype = (const char *)d->buf;
        }
        if (lang != NULL && lang->buf != NULL)
            t.lang = (const char *)lang->buf;
        break;
    default:
        fail(l, IC_ESYNTAX, "%s: unexpected node", l->name);
        return l->rc;
    }
    t.value = (const char *)x->buf;
    t.len = x->n_bytes;
    rc = ic_store_term_id(l->txn, &t, true, id);
    serd_node_free(&own);
    serd_node_free(&own_dt);
    return rc;
}

/* The graph of a triple in IC_LOAD_BY_SUBJECT mode. */
static int subject_graph(struct loader *l, uint64_t s, uint64_t *g)
{
    struct ic_term st, gt;
    char buf[64];
    const char *hash;
    int rc;

    if (s == l->last_s) { /* input comes grouped by subject */
        *g = l->last_g;
        return 0;
    }
    *g = l->default_g;
    rc = ic_store_term_get(l->txn, s, &st, buf);
    if (rc != 0)
        return rc;
    if (st.kind != IC_TERM_IRI || strncmp(st.value, "xmpp:", 5) != 0) {
        l->last_s = s;
        l->last_g = *g;
        return 0;
    }
    gt = st;
    hash = memchr(st.value, '#', st.len);
    if (hash != NULL)
        gt.len = (size_t)(hash - st.value);
    rc = ic_store_term_id(l->txn, &gt, true, g);
    if (rc == 0) {
        l->last_s = s;
        l->last_g = *g;
    }
    return rc;
}

static SerdStatus on_statement(void *handle,
                               SerdStatementFlags flags,
                               const SerdNode *graph,
                               const SerdNode *subject,
                               const SerdNode *predicate,
                               const SerdNode *object,
                               const SerdNode *object_datatype,
                               const SerdNode *object_lang)
{
    struct loader *l = handle;
    uint64_t q[4];
    int rc;

    (void)flags;
    if (l->rc != 0)
        return SERD_ERR_INTERNAL;
    rc = node_id(l, subject, NULL, NULL, &q[0]);
    if (rc == 0)
        rc = node_id(l, predicate, NULL, NULL, &q[1]);
    if (rc == 0)
        rc = node_id(l, object, object_datatype, object_lang, &q[2]);
    if (rc == 0 && graph != NULL && graph->buf != NULL)
        rc = node_id(l, graph, NULL, NULL, &q[3]);
    else if (rc == 0 && l->opts->graphs == IC_LOAD_BY_SUBJECT)
        rc = subject_graph(l, q[0], &q[3]);
    else
        q[3] = l->default_g;
    if (rc != 0) {
        fail(l, rc, "%s: %s", l->name, ic_strerror(rc));
        return SERD_ERR_INTERNAL;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4096;
        l->q = ic_realloc(l->q, l->cap * sizeof *l->q);
    }
    memcpy(l->q[l->n++], q, sizeof q);
    return SERD_SUCCESS;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_graph(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;

    return x[3] < y[3] ? -1 : x[3] > y[3];
}

/* Replace: every graph the input writes becomes what the input says of
 * it, touching only the quads that differ (a cloud that republishes its
 * description with one value changed rewrites one quad, not all); L's
 * quads become those to add, *N_ADD of them. */
static int replace_graphs(struct loader *l, size_t *n_add)
{
    size_t out = 0;
    int rc = 0;

    if (l->n > 0)
        qsort(l->q, l->n, sizeof *l->q, cmp_graph);
    for (size_t i = 0; i < l->n && rc == 0;) {
        size_t j = i, add = 0;
        while (j < l->n && l->q[j][3] == l->q[i][3])
            j++;
        rc = ic_store__graph_replace_id(l->txn, l->q[i][3], l->q + i, j - i,
                                        &add);
        memmove(l->q + out, l->q + i, add * sizeof *l->q);
        out += add;
        i = j;
    }
    *n_add = out;
    return rc;
}

/* Replaces (when asked) every graph the input wrote, or inserts. */
static int finish(struct loader *l, struct ic_load_result *res)
{
    uint64_t *gs = ic_malloc((l->n + 1) * sizeof *gs);
    size_t ng = 0, n_add = l->n;
    int rc = 0;

    for (size_t i = 0; i < l->n; i++)
        gs[i] = l->q[i][3];
    qsort(gs, l->n, sizeof *gs, cmp_u64);
    for (size_t i = 0; i < l->n; i++)
        if (i == 0 || gs[i] != gs[i - 1])
            gs[ng++] = gs[i];
    ic_free(gs);
    if (l->opts->replace)
        rc = replace_graphs(l, &n_add);
    if (rc == 0)
        rc = ic_store__quads_add_bulk(l->txn, l->q, n_add);
    if (rc != 0) {
        fail(l, rc, "%s: %s", l->name, ic_strerror(rc));
        return rc;
    }
    res->quads = l->n;
    res->graphs = ng;
    return 0;
}

/* serd reports no position for a name it could not expand: find the
 * token's first occurrence as a word in the input and say where. */
/* Where a Turtle comment starts on LINE (outside IRIs and strings). */
static size_t code_length(const char *line)
{
    char quote = 0;
    bool iri = false;
    size_t i;

    for (i = 0; line[i] != '\0'; i++) {
        char ch = line[i];
        if (quote != 0) {
            if (ch == '\\' && line[i + 1] != '\0')
                i++;
            else if (ch == quote)
                quote = 0;
        } else if (iri) {
            iri = ch != '>';
        } else if (ch == '"' || ch == '\'') {
            quote = ch;
        } else if (ch == '<') {
            iri = true;
        } else if (ch == '#') {
            break;
        }
    }
    return i;
}

static bool locate_line(const char *line, const char *tok, size_t *col)
{
    size_t tl = strlen(tok), code = code_length(line);

    for (const char *p = strstr(line, tok);
         p != NULL && (size_t)(p - line) + tl <= code; p = strstr(p + 1, tok)) {
        char before = p == line ? ' ' : p[-1];
        char after = p[tl];
        bool word = strchr(" \t([,;^", before) != NULL &&
                    strchr(" \t\r\n)],;.", after) != NULL;
        bool iri = before == '<' && after == '>';
        if (word || iri) {
            *col = (size_t)(p - line) + 1 - (iri ? 1 : 0);
            return true;
        }
    }
    return false;
}

static void locate(struct loader *l, FILE *f, const char *data)
{
    char *line = NULL, msg[400];
    size_t cap = 0, lineno = 0, col = 0;
    bool found = false;

    if (f != NULL) {
        rewind(f);
        while (!found && getline(&line, &cap, f) > 0) {
            lineno++;
            found = locate_line(line, l->bad_token, &col);
        }
        free(line);
    } else {
        for (const char *p = data; !found && p != NULL && *p;) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
            char *copy = ic_strndup(p, n);
            lineno++;
            found = locate_line(copy, l->bad_token, &col);
            ic_free(copy);
            p = nl ? nl + 1 : NULL;
        }
    }
    if (found) {
        snprintf(msg, sizeof msg,
                 "%s:%zu:%zu: cannot expand '%s' (undefined prefix or "
                 "relative IRI without a base)",
                 l->name, lineno, col, l->bad_token);
        snprintf(l->error, l->error_len, "%s", msg);
    }
}

static int load(struct ic_txn *txn,
                FILE *f,
                const char *data,
                const struct ic_load_opts *opts,
                const char *base,
                struct ic_load_result *res)
{
    struct loader l = {0};
    SerdNode base_node = SERD_NODE_NULL;
    SerdReader *reader;
    struct ic_term g;
    char prefix[40];
    SerdStatus st;
    int rc;

    memset(res, 0, sizeof *res);
    l.txn = txn;
    l.opts = opts;
    l.error = res->error;
    l.error_len = sizeof res->error;
    l.name = opts->name ? opts->name : "input";
    if (!txn->write)
        return IC_EREADONLY;
    if (opts->graph == NULL) {
        fail(&l, IC_EINVAL, "%s: no graph given", l.name);
        return IC_EINVAL;
    }
    g = ic_term_iri(opts->graph);
    rc = ic_store_term_id(txn, &g, true, &l.default_g);
    if (rc != 0) {
        fail(&l, rc, "%s: %s", l.name, ic_strerror(rc));
        return rc;
    }
    if (base != NULL)
        base_node = serd_node_from_string(SERD_URI, (const uint8_t *)base);
    l.env = serd_env_new(base != NULL ? &base_node : NULL);
    reader = serd_reader_new(serd_syntax(opts->syntax), &l, NULL, on_base,
                             on_prefix, on_statement, NULL);
    serd_reader_set_strict(reader, true);
    serd_reader_set_error_sink(reader, on_error, &l);
    /* Blank nodes are scoped to one load: prefix them uniquely. */
    snprintf(prefix, sizeof prefix, "l%llux", (unsigned long long)txn->next_id);
    serd_reader_add_blank_prefix(reader, (const uint8_t *)prefix);
    if (f != NULL)
        st = serd_reader_read_file_handle(reader, f, (const uint8_t *)l.name);
    else
        st = serd_reader_read_string(reader, (const uint8_t *)data);
    if (st != SERD_SUCCESS && l.rc == 0)
        fail(&l, IC_ESYNTAX, "%s: %s", l.name, (const char *)serd_strerror(st));
    serd_reader_free(reader);
    serd_env_free(l.env);
    if (l.bad_token != NULL) {
        locate(&l, f, data);
        ic_free(l.bad_token);
    }
    if (l.rc == 0)
        finish(&l, res);
    ic_free(l.q);
    return l.rc;
}

int ic_store_load_file(struct ic_txn *txn,
                       const char *path,
                       const struct ic_load_opts *opts,
                       struct ic_load_result *res)
{
    struct ic_load_opts o = *opts;
    SerdNode uri = SERD_NODE_NULL;
    FILE *f;
    int rc;

    if (o.name == NULL)
        o.name = path;
    if (o.syntax == 0)
        o.syntax = ic_rdf_syntax_from_name(path);
    if (o.syntax == 0)
        o.syntax = IC_RDF_TURTLE;
    f = fopen(path, "rb");
    if (f == NULL) {
        memset(res, 0, sizeof *res);
        snprintf(res->error, sizeof res->error, "%s: %s", path,
                 strerror(errno));
        return errno == ENOENT ? IC_ENOTFOUND : IC_EIO;
    }
    if (o.base_uri == NULL)
        uri = serd_node_new_file_uri((const uint8_t *)path, NULL, NULL, true);
    rc = load(txn, f, NULL, &o, o.base_uri ? o.base_uri : (const char *)uri.buf,
              res);
    serd_node_free(&uri);
    fclose(f);
    return rc;
}

int ic_store_load_buffer(struct ic_txn *txn,
                         const char *data,
                         size_t len,
                         const struct ic_load_opts *opts,
                         struct ic_load_result *res)
{
    char *copy;
    int rc;

    if (memchr(data, '\0', len) != NULL) {
        memset(res, 0, sizeof *res);
        snprintf(res->error, sizeof res->error, "%s: NUL byte in input",
                 opts->name ? opts->name : "input");
        return IC_ESYNTAX;
    }
    copy = ic_strndup(data, len);
    rc = load(txn, NULL, copy, opts, opts->base_uri, res);
    ic_free(copy);
    return rc;
}

/* Output */

static size_t sink(const void *buf, size_t len, void *stream)
{
    return fwrite(buf, 1, len, stream);
}

static const char *const prefixes[][2] = {
    {"ic", "http://www.csp/resOntology#"},
    {"icc", "http://www.csp/resOntology/country/"},
    {"icq", "http://www.csp/resOntology/constraints#"},
    {"rdf", IC_RDF},
    {"rdfs", IC_RDFS},
    {"xsd", IC_XSD},
    {"owl", "http://www.w3.org/2002/07/owl#"},
};

/* A node for term ID; blank nodes are labelled by id (BL, 24 bytes), so a
 * dump loaded again does not grow their labels. */
static int to_node(struct ic_txn *t,
                   uint64_t id,
                   SerdNode *n,
                   SerdNode *dt,
                   SerdNode *lang,
                   char *bl)
{
    struct ic_term term;
    char buf[64];
    int rc = ic_store_term_get(t, id, &term, buf);

    if (rc != 0)
        return rc;
    *dt = SERD_NODE_NULL;
    *lang = SERD_NODE_NULL;
    switch (term.kind) {
    case IC_TERM_IRI:
        *n = serd_node_from_substring(SERD_URI, (const uint8_t *)term.value,
                                      term.len);
        break;
    case IC_TERM_BLANK:
        snprintf(bl, 24, "b%llx", (unsigned long long)id);
        *n = serd_node_from_string(SERD_BLANK, (const uint8_t *)bl);
        break;
    default:
        *n = serd_node_from_substring(SERD_LITERAL, (const uint8_t *)term.value,
                                      term.len);
        if (term.datatype != NULL)
            *dt =
                serd_node_from_string(SERD_URI, (const uint8_t *)term.datatype);
        if (term.lang != NULL)
            *lang =
                serd_node_from_string(SERD_LITERAL, (const uint8_t *)term.lang);
    }
    return 0;
}

static int
write_quad(struct ic_txn *t, SerdWriter *w, const uint64_t q[4], bool graphs)
{
    SerdNode n[4], dt, lang, unused1, unused2;
    char bl[4][24];
    int rc = 0;

    for (int i = 0; i < 4 && rc == 0; i++)
        rc = to_node(t, q[i], &n[i], i == 2 ? &dt : &unused1,
                     i == 2 ? &lang : &unused2, bl[i]);
    if (rc != 0)
        return rc;
    if (serd_writer_write_statement(w, 0, graphs ? &n[3] : NULL, &n[0], &n[1],
                                    &n[2], dt.buf ? &dt : NULL,
                                    lang.buf ? &lang : NULL) != SERD_SUCCESS)
        return IC_EIO;
    return 0;
}

int ic_store_dump(struct ic_txn *t,
                  const char *graph_iri,
                  enum ic_rdf_syntax syntax,
                  FILE *out)
{
    uint64_t pat[4] = {0, 0, 0, 0}, q[4];
    bool graphs = syntax == IC_RDF_NQUADS || syntax == IC_RDF_TRIG;
    bool pretty = syntax == IC_RDF_TURTLE || syntax == IC_RDF_TRIG;
    struct ic_store_iter *it;
    SerdEnv *env;
    SerdWriter *w;
    int rc;

    if (graph_iri != NULL) {
        struct ic_term g = ic_term_iri(graph_iri);
        rc = ic_store_term_id(t, &g, false, &pat[3]);
        if (rc == IC_ENOTFOUND)
            return 0;
        if (rc != 0)
            return rc;
    }
    env = serd_env_new(NULL);
    if (pretty)
        for (size_t i = 0; i < IC_ARRAY_LEN(prefixes); i++)
            serd_env_set_prefix_from_strings(env,
                                             (const uint8_t *)prefixes[i][0],
                                             (const uint8_t *)prefixes[i][1]);
    w = serd_writer_new(
        serd_syntax(syntax),
        pretty ? (SerdStyle)(SERD_STYLE_ABBREVIATED | SERD_STYLE_CURIED)
               : (SerdStyle)0,
        env, NULL, sink, out);
    if (pretty)
        serd_env_foreach(env, (SerdPrefixSink)serd_writer_set_prefix, w);
    rc = ic_store_iter_new(t, pat, &it);
    while (rc == 0 && (rc = ic_store_iter_next(it, q)) == 0)
        rc = write_quad(t, w, q, graphs);
    if (rc == IC_EEND)
        rc = 0;
    ic_store_iter_free(it);
    serd_writer_finish(w);
    serd_writer_free(w);
    serd_env_free(env);
    if (rc == 0 && (fflush(out) != 0 || ferror(out)))
        rc = IC_EIO;
    return rc;
}
