/* libFuzzer driver: RDF import (Turtle, TriG, N-Triples, N-Quads picked by
 * the first byte) into a real LMDB store, always aborted; with the first
 * byte's top bit set, the binary triples a publish travels in (terms.c). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ic_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ic_store *store;

static void cleanup(void)
{
    ic_store_close(store);
}

static struct ic_store *get_store(void)
{
    static char dir[] = "/tmp/icroot-fuzz-turtle-XXXXXX";
    struct ic_store_opts o = {0};
    char sub[64];

    if (store != NULL)
        return store;
    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(sub, sizeof sub, "%s/store", dir);
    o.create = true;
    o.no_sync = true;
    o.map_size = 256u << 20;
    if (ic_store_open(sub, &o, &store, NULL, 0) != 0)
        abort();
    atexit(cleanup);
    return store;
}

/* What decodes comes out of the graph again and replaces it with itself. */
static int terms(const uint8_t *data, size_t size)
{
    struct ic_store_terms back = {0};
    struct ic_load_result res, again;
    struct ic_txn *txn;
    int rc;

    if (ic_store_txn_begin(get_store(), true, &txn) != 0)
        abort();
    rc = ic_store_terms_replace(txn, "urn:icroot:graph:fuzz", data, size, &res);
    if (rc == 0) {
        if (ic_store_graph_terms(txn, "urn:icroot:graph:fuzz", &back) != 0 ||
            ic_store_terms_end(&back) != 0 ||
            ic_store_terms_replace(txn, "urn:icroot:graph:fuzz", back.buf,
                                   back.len, &again) != 0)
            abort();
        ic_store_terms_free(&back);
    } else if (rc != IC_ESYNTAX || res.error[0] == '\0') {
        abort();
    }
    ic_store_txn_abort(txn);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum ic_rdf_syntax syntaxes[] = {
        IC_RDF_TURTLE, IC_RDF_TRIG, IC_RDF_NTRIPLES, IC_RDF_NQUADS};
    struct ic_load_opts o = {0};
    struct ic_load_result res;
    struct ic_txn *txn;
    FILE *out;

    if (size < 1)
        return 0;
    if (data[0] & 0x80)
        return terms(data + 1, size - 1);
    o.syntax = syntaxes[data[0] & 3];
    o.graph = "urn:icroot:graph:fuzz";
    o.graphs = (data[0] & 4) ? IC_LOAD_BY_SUBJECT : IC_LOAD_ONE_GRAPH;
    o.replace = (data[0] & 8) != 0;
    o.base_uri = "http://example.org/base/";
    o.name = "fuzz";
    if (ic_store_txn_begin(get_store(), true, &txn) != 0)
        abort();
    if (ic_store_load_buffer(txn, (const char *)data + 1, size - 1, &o, &res) ==
        0) {
        /* What went in must come out. */
        out = fopen("/dev/null", "w");
        if (out != NULL) {
            if (ic_store_dump(txn, NULL, IC_RDF_NQUADS, out) != 0)
                abort();
            fclose(out);
        }
    } else if (res.error[0] == '\0') {
        abort(); /* every failure says why */
    }
    ic_store_txn_abort(txn);
    return 0;
}
