/*
 * ctl.h - icrootctl's parts (private to node/): the offline verbs on a
 * data directory (ctl.c) and the online verbs that reach a running node
 * over XMPP (ctl_remote.c, ctl_verbs.c).
 */
#ifndef IC_NODE_CTL_H
#define IC_NODE_CTL_H

#include <stdbool.h>
#include <stddef.h>

#include "ic_node.h"
#include "ic_xmpp.h"

/* Where and as whom to log in. Strings owned (ctl_remote_free). */
struct ctl_remote {
    char *host;
    int port;
    char *domain;
    char *ca;
    char *cert, *key; /* EXTERNAL when there is no password */
    char *user;       /* default "admin" */
    char *password;
    unsigned timeout_ms;
    char *cluster; /* cluster.json, when given: to follow redirects */
};

/* Fills what R lacks from cluster.json at PATH, node NODE (1-based):
 * domain, CA, host, C2S port and, for R->user, the password. */
int ctl_remote_from_cluster(struct ctl_remote *r,
                            const char *path,
                            int node,
                            char *why,
                            size_t why_len);
void ctl_remote_free(struct ctl_remote *r);

/* Logs in, runs ad-hoc command NODE on service.DOMAIN with PAYLOAD (taken;
 * may be NULL) as its IO Data input, and logs out. 0 and the answer's
 * <command/> in *OUT_CMD (the caller frees); otherwise an IC_E* code and
 * WHY: a stanza error ("bad-request: ..."), an error note, or why the
 * login failed. */
int ctl_remote_command(struct ctl_remote *r,
                       const char *node,
                       struct ic_xml *payload,
                       struct ic_xml **out_cmd,
                       char *why,
                       size_t why_len);
/* The first element NAME (resOntology namespace) of the answer's output,
 * or NULL. */
const struct ic_xml *ctl_remote_output(const struct ic_xml *cmd,
                                       const char *name);

/* The online verbs (ctl_verbs.c): ARGV[0] is the verb. Returns the exit
 * code, or -1 when the verb is not an online one. */
int ctl_online(struct ctl_remote *r, int argc, char **argv);

/* Reads a whole file ("-": standard input), at most 64 MiB; NULL with
 * errno set on failure. The caller frees. */
char *ctl_read_all(const char *path, size_t *len);

#endif /* IC_NODE_CTL_H */
