/*
 * config_write.c - writes a node's configuration back as an INI file that
 * config.c reads to the same values (icroot dev writes every node's file
 * this way).
 */
#define _XOPEN_SOURCE 700
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_int.h"

#define MOD "config"

struct buf {
    char *p;
    size_t n, cap;
};

static void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int w;

    for (;;) {
        va_start(ap, fmt);
        w = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (w >= 0 && (size_t)w < b->cap - b->n)
            break;
        b->cap = 2 * b->cap + (w > 0 ? (size_t)w : 0) + 64;
        b->p = ic_realloc(b->p, b->cap);
    }
    b->n += (size_t)w;
}

static void buf_host_port(struct buf *b, const char *host, uint16_t port)
{
    if (strchr(host, ':') != NULL)
        buf_printf(b, "[%s]:%u", host, port);
    else
        buf_printf(b, "%s:%u", host, port);
}

static void
format_list(const struct key *k, const struct ic_node_config *c, struct buf *b)
{
    if (k->type == K_PEERS) {
        for (size_t i = 0; i < c->cluster.n_peers; i++) {
            const struct ic_node_peer *p = &c->cluster.peers[i];
            buf_printf(b, "%s%u=", i ? ", " : "", p->id);
            buf_host_port(b, p->host, p->raft_port);
        }
    } else if (k->type == K_ROUTES) {
        for (size_t i = 0; i < c->s2s.n_routes; i++) {
            const struct ic_node_s2s_route *r = &c->s2s.routes[i];
            buf_printf(b, "%s%s=", i ? ", " : "", r->domain);
            buf_host_port(b, r->host, r->port);
        }
    } else {
        for (size_t i = 0; i < c->accounts.n_admins; i++)
            buf_printf(b, "%s%s", i ? ", " : "", c->accounts.admins[i]);
    }
}

/* The value of K in C as text into B; false if unset (not written). */
static bool
format_value(const struct key *k, const struct ic_node_config *c, struct buf *b)
{
    const void *f = (const char *)c + k->off;
    const char *s = NULL;

    switch (k->type) {
    case K_UINT:
        if (*(const unsigned *)f == 0 && k->min > 0)
            return false;
        buf_printf(b, "%u", *(const unsigned *)f);
        return true;
    case K_PORT:
        buf_printf(b, "%u", *(const uint16_t *)f);
        return true;
    case K_SIZE:
        buf_printf(b, "%zu", *(const size_t *)f);
        return true;
    case K_BOOL:
        buf_printf(b, "%s", *(const bool *)f ? "true" : "false");
        return true;
    case K_PATH:
    case K_SECRET:
    case K_DOMAIN:
    case K_ADDR:
    case K_HOSTPORT:
        s = *(char *const *)f;
        break;
    case K_ROLE:
        s = ic_node__config_name_of(ic_node__config_roles,
                                    ic_node__config_nroles, (int)c->node.role);
        break;
    case K_LEVEL:
        s = ic_node__config_name_of(ic_node__config_levels,
                                    ic_node__config_nlevels,
                                    (int)c->node.log_level);
        break;
    case K_TLSVER:
        s = ic_node__config_name_of(ic_node__config_tls_versions,
                                    ic_node__config_ntls_versions,
                                    (int)c->tls.min_version);
        break;
    case K_PEERS:
    case K_ROUTES:
    case K_NAMES:
        format_list(k, c, b);
        return true;
    }
    if (s != NULL)
        buf_printf(b, "%s", s);
    return s != NULL;
}

/* Whether V reads back as itself after "key = V". */
static bool writable(const char *v, size_t len)
{
    if (len > MAX_LINE_LEN - 32 || strlen(v) != len || v[0] == ';')
        return false;
    if (len > 0 &&
        (isspace((unsigned char)v[0]) || isspace((unsigned char)v[len - 1])))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (v[i] == '\n' || v[i] == '\r' ||
            (i > 0 && v[i] == ';' && isspace((unsigned char)v[i - 1])))
            return false;
    }
    return true;
}

static int format_config(const struct ic_node_config *c, struct buf *out)
{
    struct buf v = {ic_malloc(256), 0, 256};
    int rc = 0;

    buf_printf(out, "# icroot node configuration (docs/configuration.md)\n");
    for (size_t s = 0; s < ic_node__config_nsections && rc == 0; s++) {
        buf_printf(out, "\n[%s]\n", ic_node__config_sections[s]);
        for (size_t i = 0; i < ic_node__config_nkeys && rc == 0; i++) {
            if (strcmp(ic_node__config_keys[i].section,
                       ic_node__config_sections[s]) != 0)
                continue;
            v.n = 0;
            v.p[0] = '\0';
            if (!format_value(&ic_node__config_keys[i], c, &v))
                continue;
            if (!writable(v.p, v.n)) {
                IC_LOG(IC_LOG_ERROR, MOD,
                       "cannot write %s in [%s]: a line break, a blank "
                       "before ';', blanks around it or too long",
                       ic_node__config_keys[i].name,
                       ic_node__config_sections[s]);
                rc = IC_EINVAL;
            }
            buf_printf(out, "%s =%s%s\n", ic_node__config_keys[i].name,
                       v.n ? " " : "", v.p);
        }
    }
    ic_free(v.p);
    return rc;
}

static int write_file(const char *path, const char *text, size_t len)
{
    size_t n = strlen(path) + 8;
    char *tmp = ic_malloc(n);
    int fd, rc = 0;

    snprintf(tmp, n, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || fchmod(fd, 0600) != 0 ||
        write(fd, text, len) != (ssize_t)len || fsync(fd) != 0)
        rc = IC_EIO;
    if (fd >= 0 && close(fd) != 0)
        rc = IC_EIO;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = IC_EIO;
    if (rc != 0) {
        IC_LOG(IC_LOG_ERROR, MOD, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            unlink(tmp);
    }
    ic_free(tmp);
    return rc;
}

int ic_node_config_write(const char *path, const struct ic_node_config *c)
{
    struct buf out = {ic_malloc(4096), 0, 4096};
    int rc = format_config(c, &out);

    if (rc == 0)
        rc = write_file(path, out.p, out.n);
    ic_free(out.p);
    return rc;
}
