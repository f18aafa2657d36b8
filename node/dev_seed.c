/*
 * dev_seed.c - the seed `icroot dev` gives a new cluster: one Raft command
 * (raft/README.md) that loads the ontology and the sample catalog and puts
 * the demo accounts. It carries a fixed client id and sequence (1, 1), so
 * the replicated state machine applies it once however many nodes submit
 * it (every node's config names it: whichever leads first commits it).
 */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "app.h"
#include "dev.h"
#include "ic_raft.h"

#define SAMPLE_DOMAIN "intercloudexchg.test"
#define SEED_CLIENT 1
#define SEED_SEQ 1
#define MAX_FILES 64

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, r;

    if (f == NULL)
        return NULL;
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            buf = ic_realloc(buf, cap + 1);
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
    } while (r > 0);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* TEXT with every FROM replaced by TO (a new string). */
static char *replace_all(const char *text, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    const char *p = text;
    char *out, *w;

    while ((p = strstr(p, from)) != NULL) {
        n++;
        p += fl;
    }
    out = ic_malloc(strlen(text) + n * tl + 1);
    w = out;
    while ((p = strstr(text, from)) != NULL) {
        memcpy(w, text, (size_t)(p - text));
        w += p - text;
        memcpy(w, to, tl);
        w += tl;
        text = p + fl;
    }
    strcpy(w, text);
    return out;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .ttl files of DIR in name order (the sample left out when asked). */
static size_t ttl_files(const char *dir, bool no_sample, char **names)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL && n < MAX_FILES) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".ttl") != 0 ||
            (no_sample && strncmp(e->d_name, "sample", 6) == 0))
            continue;
        names[n++] = ic_strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    return n;
}

/* The RDF_LOAD op of ontology file NAME: each cloud's statements in its
 * own graph, the rest in urn:icroot:graph:<name>. TEXT and GRAPH are the
 * caller's to free. */
static int file_op(const struct ic_seed_opts *o,
                   const char *name,
                   struct ic_raft_op *op,
                   char **text,
                   char **graph)
{
    char path[4096];
    size_t len, gl = strcspn(name, ".") + 18;
    char *raw;

    snprintf(path, sizeof path, "%s/%s", o->ontology, name);
    raw = read_file(path, &len);
    if (raw == NULL) {
        fprintf(stderr, "icroot dev: %s: %s\n", path, strerror(errno));
        return IC_EIO;
    }
    if (strncmp(name, "sample", 6) == 0 &&
        strcmp(o->domain, SAMPLE_DOMAIN) != 0) {
        *text = replace_all(raw, SAMPLE_DOMAIN, o->domain);
        ic_free(raw);
    } else {
        *text = raw;
    }
    *graph = ic_malloc(gl);
    snprintf(*graph, gl, "urn:icroot:graph:%.*s", (int)strcspn(name, "."),
             name);
    op->type = IC_RAFT_OP_RDF_LOAD;
    op->rdf.syntax = IC_RDF_TURTLE;
    op->rdf.graphs = IC_LOAD_BY_SUBJECT;
    op->rdf.replace = true;
    op->rdf.graph = *graph;
    op->rdf.base = "file:///ontology/";
    op->rdf.text = *text;
    op->rdf.text_len = strlen(*text);
    return 0;
}

/* Writes the encoded CMD to PATH (mode 0600, through a temporary file). */
static int write_cmd(const char *path, const struct ic_raft_cmd *cmd)
{
    char tmp[4200];
    size_t len;
    void *buf;
    int fd, rc = ic_raft_cmd_size(cmd, &len);

    if (rc != 0)
        return rc;
    buf = ic_malloc(len);
    rc = ic_raft_cmd_encode(cmd, buf, len);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = rc == 0 ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600) : -1;
    if (rc == 0 && (fd < 0 || write(fd, buf, len) != (ssize_t)len ||
                    fsync(fd) != 0 || rename(tmp, path) != 0))
        rc = IC_EIO;
    if (fd >= 0)
        close(fd);
    ic_free(buf);
    return rc;
}

int ic_node_make_seed(const struct ic_seed_opts *o)
{
    char *names[MAX_FILES], *texts[MAX_FILES] = {0};
    char *graphs[MAX_FILES] = {0}, *recs[IC_SEED_ACCOUNTS_MAX] = {0};
    size_t nf = 0, n = 0;
    struct ic_raft_op *ops;
    struct ic_raft_cmd cmd = {0};
    int rc = 0;

    if (o->n_accounts > IC_SEED_ACCOUNTS_MAX)
        return IC_ELIMIT;
    nf = ttl_files(o->ontology, o->no_sample, names);
    ops = ic_calloc(nf + o->n_accounts + 1, sizeof *ops);
    for (size_t i = 0; rc == 0 && i < nf; i++)
        rc = file_op(o, names[i], &ops[n++], &texts[i], &graphs[i]);
    for (size_t i = 0; rc == 0 && i < o->n_accounts; i++) {
        const struct ic_seed_account *a = &o->accounts[i];
        rc = ic_node_account_record(a->password, 4096, a->admin, &recs[i]);
        ops[n].type = IC_RAFT_OP_KV_PUT;
        ops[n].kv.db = IC_KV_ACCOUNTS;
        ops[n].kv.key = (struct ic_kv){a->name, strlen(a->name)};
        ops[n].kv.val = (struct ic_kv){recs[i], recs[i] ? strlen(recs[i]) : 0};
        n++;
    }
    cmd.client = SEED_CLIENT;
    cmd.seq = SEED_SEQ;
    cmd.batch = true;
    cmd.n_ops = n;
    cmd.ops = ops;
    if (rc == 0 && nf == 0) {
        fprintf(stderr, "icroot: no .ttl file in %s\n", o->ontology);
        rc = IC_ENOTFOUND;
    }
    if (rc == 0)
        rc = write_cmd(o->out, &cmd);
    if (rc != 0)
        fprintf(stderr, "icroot: seed %s: %s\n", o->out, ic_strerror(rc));
    for (size_t i = 0; i < nf; i++) {
        ic_free(names[i]);
        ic_free(texts[i]);
        ic_free(graphs[i]);
    }
    for (size_t i = 0; i < o->n_accounts; i++)
        free(recs[i]);
    ic_free(ops);
    return rc;
}

int ic_dev_make_seed(const struct ic_dev_opts *o,
                     const char *dir,
                     struct json_t *acc)
{
    struct ic_seed_account a[IC_SEED_ACCOUNTS_MAX];
    struct ic_seed_opts so = {0};
    char path[4096];
    const char *user;
    json_t *pw;

    snprintf(path, sizeof path, "%s/seed.cmd", dir);
    if (access(path, R_OK) == 0)
        return 0; /* made before: the cluster has it already */
    so.out = path;
    so.ontology = o->ontology;
    so.domain = o->domain;
    so.no_sample = o->no_sample;
    so.accounts = a;
    json_object_foreach(acc, user, pw)
    {
        if (so.n_accounts == IC_SEED_ACCOUNTS_MAX)
            break;
        a[so.n_accounts++] = (struct ic_seed_account){
            user, json_string_value(pw), strcmp(user, "admin") == 0};
    }
    return ic_node_make_seed(&so);
}
