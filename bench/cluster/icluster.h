/*
 * icluster.h - the icroot cluster a generator drives, as `icroot dev`'s
 * cluster.json describes it (shared by icroot-cluster-bench and
 * icroot-presence-bench).
 */
#ifndef ICLUSTER_H
#define ICLUSTER_H

#define MAX_NODES 16

struct cluster {
    char *domain, *ca, *service, *admin_password;
    int nnodes;
    char *host[MAX_NODES];
    int port[MAX_NODES], pid[MAX_NODES];
};

/* Reads PATH into CL (zeroed by the caller); -1 with a message on stderr. */
int cb_cluster_load(const char *path, struct cluster *cl);
void cb_cluster_free(struct cluster *cl);

#endif /* ICLUSTER_H */
