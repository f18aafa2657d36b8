/*
 * icluster.c - reads cluster.json (see icluster.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ic_common.h"
#include "icluster.h"

static char *jdup(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? ic_strdup(s) : NULL;
}

int cb_cluster_load(const char *path, struct cluster *cl)
{
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err), *n, *a;
    size_t i;

    if (root == NULL) {
        fprintf(stderr, "%s:%d: %s\n", path, err.line, err.text);
        return -1;
    }
    cl->domain = jdup(root, "domain");
    cl->ca = jdup(root, "ca_cert");
    cl->service = jdup(root, "service_jid");
    json_array_foreach(json_object_get(root, "nodes"), i, n)
    {
        if (cl->nnodes == MAX_NODES)
            break;
        cl->host[cl->nnodes] = jdup(n, "host");
        cl->port[cl->nnodes] =
            (int)json_integer_value(json_object_get(n, "c2s_port"));
        cl->pid[cl->nnodes] =
            (int)json_integer_value(json_object_get(n, "pid"));
        if (cl->host[cl->nnodes] == NULL || cl->port[cl->nnodes] <= 0)
            break;
        cl->nnodes++;
    }
    json_array_foreach(json_object_get(root, "accounts"), i, a)
    {
        if (json_is_true(json_object_get(a, "admin")) &&
            cl->admin_password == NULL)
            cl->admin_password = jdup(a, "password");
    }
    json_decref(root);
    if (cl->domain == NULL || cl->ca == NULL || cl->nnodes == 0) {
        fprintf(stderr, "%s: no domain, ca_cert or nodes\n", path);
        return -1;
    }
    if (cl->service == NULL) {
        size_t len = strlen(cl->domain) + 9;
        cl->service = ic_malloc(len);
        snprintf(cl->service, len, "service.%s", cl->domain);
    }
    return 0;
}

void cb_cluster_free(struct cluster *cl)
{
    ic_free(cl->domain);
    ic_free(cl->ca);
    ic_free(cl->service);
    ic_free(cl->admin_password);
    for (int i = 0; i < cl->nnodes; i++)
        ic_free(cl->host[i]);
}
