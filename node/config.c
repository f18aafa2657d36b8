/*
 * config.c - the node's INI configuration file (docs/configuration.md),
 * read with libinih.
 *
 * Happy path: the file is read into memory and split into lines; inih
 * parses them through our reader (next_line), calling on_pair for each
 * "key = value"; on_pair finds the key in the table `keys` and parses the
 * value into the struct; then the checks that span several keys run.
 *
 * Every problem is collected with its line and the parse goes on, so the
 * operator sees them all at once:
 *  - inih reports only the first syntax error (its return value). When it
 *    reports one, the line is marked and the whole parse runs again with
 *    that line fed to inih as a blank one, until inih finds no more.
 *  - Lines are fed left-trimmed, so inih never takes an indented line for
 *    the continuation of a multi-line value (which we do not support).
 *  - inih reads at most INI_MAX_LINE bytes a line; a longer "key = value"
 *    line is fed as "key =" and on_pair takes the value from our copy.
 */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "config_int.h"

#define MOD "config"
#define MAX_SYNTAX 100 /* syntax errors before giving up */
#define SECRET_MIN 16

#define F(m) offsetof(struct ic_node_config, m)

/* Every key, in the order ic_node_config_write writes them. */
const struct key ic_node__config_keys[] = {
    {"node", "id", K_UINT, F(node.id), 1, 255, true},
    {"node", "data_dir", K_PATH, F(node.data_dir), 0, 0, true},
    {"node", "domain", K_DOMAIN, F(node.domain), 0, 0, false},
    {"node", "role", K_ROLE, F(node.role), 0, 0, false},
    {"node", "log_level", K_LEVEL, F(node.log_level), 0, 0, false},
    {"c2s", "address", K_ADDR, F(c2s.address), 0, 0, false},
    {"c2s", "port", K_PORT, F(c2s.port), 1, 65535, false},
    {"c2s", "tls_port", K_PORT, F(c2s.tls_port), 1, 65535, false},
    {"c2s", "max_stanza", K_SIZE, F(c2s.max_stanza), 4096, 16777216, false},
    {"c2s", "max_stanza_preauth", K_SIZE, F(c2s.max_stanza_preauth), 1024,
     16777216, false},
    {"c2s", "handshake_timeout", K_UINT, F(c2s.handshake_timeout), 1, 3600,
     false},
    {"c2s", "idle_timeout", K_UINT, F(c2s.idle_timeout), 0, 86400, false},
    {"c2s", "keepalive", K_UINT, F(c2s.keepalive), 0, 3600, false},
    {"c2s", "login_throttle", K_UINT, F(c2s.login_throttle), 0, 1000000, false},
    {"tls", "cert", K_PATH, F(tls.cert), 0, 0, true},
    {"tls", "key", K_PATH, F(tls.key), 0, 0, true},
    {"tls", "ca", K_PATH, F(tls.ca), 0, 0, true},
    {"tls", "min_version", K_TLSVER, F(tls.min_version), 0, 0, false},
    {"s2s", "address", K_ADDR, F(s2s.address), 0, 0, false},
    {"s2s", "port", K_PORT, F(s2s.port), 0, 65535, false},
    {"s2s", "tls_port", K_PORT, F(s2s.tls_port), 0, 65535, false},
    {"s2s", "dialback", K_BOOL, F(s2s.dialback), 0, 0, false},
    {"s2s", "secret", K_SECRET, F(s2s.secret), 0, 0, false},
    {"s2s", "peers", K_ROUTES, F(s2s.routes), 0, 0, false},
    {"s2s", "dns", K_HOSTPORT, F(s2s.dns), 0, 0, false},
    {"s2s", "idle_timeout", K_UINT, F(s2s.idle_timeout), 0, 86400, false},
    {"cluster", "raft_port", K_PORT, F(cluster.raft_port), 1, 65535, false},
    {"cluster", "link_port", K_PORT, F(cluster.link_port), 1, 65535, false},
    {"cluster", "peers", K_PEERS, F(cluster.peers), 0, 0, false},
    {"cluster", "election_timeout", K_UINT, F(cluster.election_timeout), 100,
     60000, false},
    {"cluster", "heartbeat", K_UINT, F(cluster.heartbeat), 10, 10000, false},
    {"cluster", "snapshot_threshold", K_UINT, F(cluster.snapshot_threshold), 16,
     100000000, false},
    {"cluster", "snapshot_trailing", K_UINT, F(cluster.snapshot_trailing), 0,
     100000000, false},
    {"cluster", "log_memory", K_UINT, F(cluster.log_memory), 0, 1048576, false},
    {"cluster", "seed", K_PATH, F(cluster.seed), 0, 0, false},
    {"cluster", "join", K_BOOL, F(cluster.join), 0, 0, false},
    {"catalog", "ontology_dir", K_PATH, F(catalog.ontology_dir), 0, 0, false},
    {"catalog", "load_sample", K_BOOL, F(catalog.load_sample), 0, 0, false},
    {"accounts", "admins", K_NAMES, F(accounts.admins), 0, 0, false},
};

const char *const ic_node__config_sections[] = {
    "node", "c2s", "tls", "s2s", "cluster", "catalog", "accounts"};

const struct name_val ic_node__config_roles[] = {
    {"root", IC_NODE_ROLE_ROOT},
    {"exchange", IC_NODE_ROLE_EXCHANGE},
};
const struct name_val ic_node__config_levels[] = {
    {"error", IC_LOG_ERROR}, {"warn", IC_LOG_WARN},   {"info", IC_LOG_INFO},
    {"debug", IC_LOG_DEBUG}, {"trace", IC_LOG_TRACE},
};
const struct name_val ic_node__config_tls_versions[] = {
    {"1.2", IC_TLS_1_2},
    {"1.3", IC_TLS_1_3},
};
const size_t ic_node__config_nkeys = IC_ARRAY_LEN(ic_node__config_keys);
_Static_assert(IC_ARRAY_LEN(ic_node__config_keys) == IC_NODE__CONFIG_NKEYS,
               "IC_NODE__CONFIG_NKEYS is the number of keys");
const size_t ic_node__config_nsections = IC_ARRAY_LEN(ic_node__config_sections);
const size_t ic_node__config_nroles = IC_ARRAY_LEN(ic_node__config_roles);
const size_t ic_node__config_nlevels = IC_ARRAY_LEN(ic_node__config_levels);
const size_t ic_node__config_ntls_versions =
    IC_ARRAY_LEN(ic_node__config_tls_versions);

struct problem {
    int line; /* 0: none */
    size_t seq;
    char *msg;
};

/* The state of one load. */
struct load {
    const char *path; /* as given, for messages */
    char *dir;        /* absolute directory of the file */
    char **lines;
    size_t n_lines;
    bool *bad; /* lines inih found a syntax error on */
    size_t n_bad;
    struct ic_node_config cfg;
    int seen[IC_NODE__CONFIG_NKEYS]; /* line each key was set on, 0 if not */
    struct problem *problems;
    size_t n_problems, cap_problems;
    /* the reader's position */
    size_t next;
    int line;
    int header_line;     /* line of the current [section] */
    int reported_header; /* header line already reported unknown */
    bool skip_section;   /* inside a section whose header was bad */
    int long_line;       /* line fed without its value, 0 if none */
    const char *long_value;
};

/* Problems */

static void problem(struct load *ld, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(struct load *ld, int line, const char *fmt, ...)
{
    char msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ld->n_problems == ld->cap_problems) {
        ld->cap_problems = ld->cap_problems ? 2 * ld->cap_problems : 16;
        ld->problems =
            ic_realloc(ld->problems, ld->cap_problems * sizeof *ld->problems);
    }
    ld->problems[ld->n_problems].line = line;
    ld->problems[ld->n_problems].seq = ld->n_problems;
    ld->problems[ld->n_problems].msg = ic_strdup(msg);
    ld->n_problems++;
}

static void bad_value(struct load *ld,
                      const struct key *k,
                      const char *v,
                      const char *expected)
{
    problem(ld, ld->line, "bad value '%s' for %s (expected %s)", v, k->name,
            expected);
}

static void problems_clear(struct load *ld)
{
    for (size_t i = 0; i < ld->n_problems; i++)
        ic_free(ld->problems[i].msg);
    ld->n_problems = 0;
}

static int cmp_problem(const void *a, const void *b)
{
    const struct problem *x = a, *y = b;
    unsigned lx = (unsigned)x->line - 1u; /* line 0 (none) last */
    unsigned ly = (unsigned)y->line - 1u;

    if (lx != ly)
        return lx < ly ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The problems sorted by line, one "PATH:LINE: msg\n" each. */
static char *problems_text(struct load *ld)
{
    size_t cap = 1, n = 0;
    char *out;

    qsort(ld->problems, ld->n_problems, sizeof *ld->problems, cmp_problem);
    for (size_t i = 0; i < ld->n_problems; i++)
        cap += strlen(ld->path) + strlen(ld->problems[i].msg) + 16;
    out = ic_malloc(cap);
    out[0] = '\0';
    for (size_t i = 0; i < ld->n_problems; i++) {
        const struct problem *p = &ld->problems[i];
        int w = p->line > 0
                    ? snprintf(out + n, cap - n, "%s:%d: %s\n", ld->path,
                               p->line, p->msg)
                    : snprintf(out + n, cap - n, "%s: %s\n", ld->path, p->msg);
        n += (size_t)w;
    }
    return out;
}

/* Value syntax */

static bool parse_ulong(const char *v,
                        unsigned long min,
                        unsigned long max,
                        unsigned long *out)
{
    char *end;
    unsigned long n;

    if (!isdigit((unsigned char)v[0]))
        return false;
    errno = 0;
    n = strtoul(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < min || n > max)
        return false;
    *out = n;
    return true;
}

static bool
parse_name(const struct name_val *t, size_t n, const char *v, int *out)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(t[i].name, v) == 0) {
            *out = t[i].val;
            return true;
        }
    }
    return false;
}

const char *ic_node__config_name_of(const struct name_val *t, size_t n, int val)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i].val == val)
            return t[i].name;
    }
    return NULL;
}

static bool parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "yes", "1"};
    static const char *const no[] = {"false", "no", "0"};

    for (size_t i = 0; i < IC_ARRAY_LEN(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
            *out = strcasecmp(v, yes[i]) == 0;
            return true;
        }
    }
    return false;
}

bool ic_node__dns_name_ok(const char *s)
{
    size_t label = 0, total = strlen(s);

    if (total == 0 || total > 253)
        return false;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || label > 63 || p[-1] == '-')
                return false;
            if (*p == '\0')
                return true;
            label = 0;
        } else if (isalnum((unsigned char)*p) || (*p == '-' && label > 0)) {
            label++;
        } else {
            return false;
        }
    }
}

static bool is_ip(const char *s)
{
    unsigned char buf[16];

    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* An XMPP local part: no characters RFC 7622 forbids there, no blanks. */
static bool is_localpart(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 1023)
        return false;
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f || strchr("\"&'/:<>@", *p))
            return false;
    }
    return true;
}

/* "HOST:PORT" or "[IPV6]:PORT" (S is modified). */
static bool parse_hostport(char *s, char **host, uint16_t *port)
{
    char *colon;
    unsigned long p;
    unsigned char buf[16];

    if (s[0] == '[') {
        char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return false;
        *close = '\0';
        if (inet_pton(AF_INET6, s + 1, buf) != 1)
            return false;
        colon = close + 1;
        s++;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return false;
        *colon = '\0';
        if (!is_ip(s) && !ic_node__dns_name_ok(s))
            return false;
    }
    if (!parse_ulong(colon + 1, 1, 65535, &p))
        return false;
    *host = ic_strdup(s);
    *port = (uint16_t)p;
    return true;
}

static char *trim(char *s)
{
    size_t n;

    while (isspace((unsigned char)*s))
        s++;
    n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Lists: comma-separated items, blanks around items and empty items
 * ignored. Each item parser returns false on a bad item. */

typedef bool (*item_fn)(struct load *ld, const struct key *k, char *item);

static void
parse_list(struct load *ld, const struct key *k, const char *v, item_fn fn)
{
    char *copy = ic_strdup(v), *save = NULL;

    for (char *it = strtok_r(copy, ",", &save); it != NULL;
         it = strtok_r(NULL, ",", &save)) {
        it = trim(it);
        if (*it != '\0')
            fn(ld, k, it);
    }
    ic_free(copy);
}

static bool peer_item(struct load *ld, const struct key *k, char *item)
{
    struct ic_node_config *c = &ld->cfg;
    char *eq = strchr(item, '='), *orig = ic_strdup(item), *host = NULL;
    unsigned long id = 0;
    uint16_t port = 0;

    if (eq != NULL)
        *eq = '\0';
    if (eq == NULL || !parse_ulong(trim(item), 1, 255, &id) ||
        !parse_hostport(trim(eq + 1), &host, &port)) {
        bad_value(ld, k, orig,
                  "ID=HOST:PORT, ... with ID 1..255 and PORT 1..65535");
        ic_free(orig);
        return false;
    }
    ic_free(orig);
    for (size_t i = 0; i < c->cluster.n_peers; i++) {
        if (c->cluster.peers[i].id == id) {
            problem(ld, ld->line, "duplicate peer id %lu in peers", id);
            ic_free(host);
            return false;
        }
    }
    c->cluster.peers = ic_realloc(
        c->cluster.peers, (c->cluster.n_peers + 1) * sizeof *c->cluster.peers);
    c->cluster.peers[c->cluster.n_peers++] =
        (struct ic_node_peer){(unsigned)id, host, port};
    return true;
}

static bool route_item(struct load *ld, const struct key *k, char *item)
{
    struct ic_node_config *c = &ld->cfg;
    char *eq = strchr(item, '='), *orig = ic_strdup(item), *host = NULL;
    char *domain;
    uint16_t port = 0;

    if (eq != NULL)
        *eq = '\0';
    domain = trim(item);
    if (eq == NULL || !ic_node__dns_name_ok(domain) ||
        !parse_hostport(trim(eq + 1), &host, &port)) {
        bad_value(ld, k, orig, "DOMAIN=HOST:PORT, ... with PORT 1..65535");
        ic_free(orig);
        return false;
    }
    ic_free(orig);
    for (char *p = domain; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    for (size_t i = 0; i < c->s2s.n_routes; i++) {
        if (strcmp(c->s2s.routes[i].domain, domain) == 0) {
            problem(ld, ld->line, "duplicate domain %s in peers", domain);
            ic_free(host);
            return false;
        }
    }
    c->s2s.routes = ic_realloc(c->s2s.routes,
                               (c->s2s.n_routes + 1) * sizeof *c->s2s.routes);
    c->s2s.routes[c->s2s.n_routes++] =
        (struct ic_node_s2s_route){ic_strdup(domain), host, port};
    return true;
}

static bool admin_item(struct load *ld, const struct key *k, char *item)
{
    struct ic_node_config *c = &ld->cfg;

    if (!is_localpart(item)) {
        bad_value(ld, k, item, "local parts of JIDs, separated by commas");
        return false;
    }
    c->accounts.admins =
        ic_realloc(c->accounts.admins,
                   (c->accounts.n_admins + 1) * sizeof *c->accounts.admins);
    c->accounts.admins[c->accounts.n_admins++] = ic_strdup(item);
    return true;
}

/* Setting values */

static void set_str(void *field, char *v)
{
    char **p = field;

    ic_free(*p);
    *p = v;
}

static char *resolve_path(const struct load *ld, const char *v)
{
    size_t n;
    char *out;

    if (v[0] == '/')
        return ic_strdup(v);
    n = strlen(ld->dir) + strlen(v) + 2;
    out = ic_malloc(n);
    snprintf(out, n, "%s/%s", ld->dir, v);
    return out;
}

static void set_number(struct load *ld, const struct key *k, const char *v)
{
    void *field = (char *)&ld->cfg + k->off;
    unsigned long n;
    char expected[64];

    if (!parse_ulong(v, k->min, k->max, &n)) {
        snprintf(expected, sizeof expected, "%lu..%lu", k->min, k->max);
        bad_value(ld, k, v, expected);
        return;
    }
    if (k->type == K_PORT)
        *(uint16_t *)field = (uint16_t)n;
    else if (k->type == K_SIZE)
        *(size_t *)field = (size_t)n;
    else
        *(unsigned *)field = (unsigned)n;
}

static void set_enum(struct load *ld, const struct key *k, const char *v)
{
    void *field = (char *)&ld->cfg + k->off;
    int n;

    if (k->type == K_ROLE) {
        if (parse_name(ic_node__config_roles, ic_node__config_nroles, v, &n))
            *(enum ic_node_role *)field = (enum ic_node_role)n;
        else
            bad_value(ld, k, v, "root or exchange");
    } else if (k->type == K_LEVEL) {
        if (parse_name(ic_node__config_levels, ic_node__config_nlevels, v, &n))
            *(enum ic_log_level *)field = (enum ic_log_level)n;
        else
            bad_value(ld, k, v, "error, warn, info, debug or trace");
    } else {
        if (parse_name(ic_node__config_tls_versions,
                       ic_node__config_ntls_versions, v, &n))
            *(enum ic_tls_version *)field = (enum ic_tls_version)n;
        else
            bad_value(ld, k, v, "1.2 or 1.3");
    }
}

static void set_string(struct load *ld, const struct key *k, const char *v)
{
    void *field = (char *)&ld->cfg + k->off;
    char *s;

    if (k->type == K_PATH && v[0] == '\0') {
        bad_value(ld, k, v, "a path");
    } else if (k->type == K_PATH) {
        set_str(field, resolve_path(ld, v));
    } else if (k->type == K_SECRET && strlen(v) < SECRET_MIN) {
        bad_value(ld, k, "...", "at least 16 characters");
    } else if (k->type == K_SECRET) {
        set_str(field, ic_strdup(v));
    } else if (k->type == K_DOMAIN && !ic_node__dns_name_ok(v)) {
        bad_value(ld, k, v, "a domain name");
    } else if (k->type == K_DOMAIN) {
        s = ic_strdup(v);
        for (char *p = s; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        set_str(field, s);
    } else if (!is_ip(v) && !ic_node__dns_name_ok(v)) {
        bad_value(ld, k, v, "an IP address or a host name");
    } else {
        set_str(field, ic_strdup(v));
    }
}

static void set_value(struct load *ld, const struct key *k, const char *v)
{
    void *field = (char *)&ld->cfg + k->off;
    bool b;

    switch (k->type) {
    case K_UINT:
    case K_PORT:
    case K_SIZE:
        set_number(ld, k, v);
        break;
    case K_BOOL:
        if (parse_bool(v, &b))
            *(bool *)field = b;
        else
            bad_value(ld, k, v, "true, false, yes, no, 1 or 0");
        break;
    case K_PATH:
    case K_SECRET:
    case K_DOMAIN:
    case K_ADDR:
        set_string(ld, k, v);
        break;
    case K_ROLE:
    case K_LEVEL:
    case K_TLSVER:
        set_enum(ld, k, v);
        break;
    case K_PEERS:
        parse_list(ld, k, v, peer_item);
        break;
    case K_ROUTES:
        parse_list(ld, k, v, route_item);
        break;
    case K_HOSTPORT: {
        char *copy = ic_strdup(v), *host = NULL;
        uint16_t port;
        if (parse_hostport(copy, &host, &port)) {
            ic_free(host);
            set_str(field, ic_strdup(v));
        } else {
            bad_value(ld, k, v, "HOST:PORT");
        }
        ic_free(copy);
        break;
    }
    case K_NAMES:
        parse_list(ld, k, v, admin_item);
        break;
    }
}

/* inih's side: the reader and the handler */

static bool known_section(const char *s)
{
    for (size_t i = 0; i < ic_node__config_nsections; i++) {
        if (strcmp(ic_node__config_sections[i], s) == 0)
            return true;
    }
    return false;
}

static const struct key *find_key(const char *section, const char *name)
{
    for (size_t i = 0; i < ic_node__config_nkeys; i++) {
        if (strcmp(ic_node__config_keys[i].section, section) == 0 &&
            strcmp(ic_node__config_keys[i].name, name) == 0)
            return &ic_node__config_keys[i];
    }
    return NULL;
}

/* Where inih's value ends: at an inline comment, a ';' after a blank. */
static char *value_end(char *s)
{
    bool blank = false; /* as inih: the start is not after a blank */

    for (; *s; s++) {
        if (blank && *s == ';')
            break;
        blank = isspace((unsigned char)*s) != 0;
    }
    return s;
}

static void on_key(struct load *ld,
                   const char *section,
                   const char *name,
                   const char *value)
{
    const struct key *k;
    size_t i;

    if (section[0] == '\0') {
        problem(ld, ld->line, "key '%s' outside any [section]", name);
        return;
    }
    if (!known_section(section)) {
        if (ld->reported_header != ld->header_line)
            problem(ld, ld->header_line, "unknown section [%s]", section);
        ld->reported_header = ld->header_line;
        return;
    }
    k = find_key(section, name);
    if (k == NULL) {
        problem(ld, ld->line, "unknown key '%s' in [%s]", name, section);
        return;
    }
    i = (size_t)(k - ic_node__config_keys);
    if (ld->seen[i] != 0) {
        problem(ld, ld->line, "duplicate key '%s' in [%s] (first on line %d)",
                name, section, ld->seen[i]);
        return;
    }
    ld->seen[i] = ld->line;
    set_value(ld, k, value);
}

/* inih's handler: always goes on (a zero return would read as a syntax
 * error); problems are recorded instead. */
static int
on_pair(void *user, const char *section, const char *name, const char *value)
{
    struct load *ld = user;
    char *long_value = NULL;

    if (ld->skip_section)
        return 1;
    if (ld->long_line == ld->line) {
        long_value = ic_strdup(ld->long_value);
        *value_end(long_value) = '\0';
        value = trim(long_value);
    }
    on_key(ld, section, name, value);
    ic_free(long_value);
    return 1;
}

/* A line too long for inih's buffer: "key =" if it is a key line whose
 * key fits (the value is kept aside for on_pair), else a blank line. */
static const char *long_line(struct load *ld, const char *t, char *str, int num)
{
    char *copy = ic_strdup(t);
    char *sep = value_end(copy);
    size_t name_len = strcspn(copy, "=:");

    if (strlen(t) > MAX_LINE_LEN || t[0] == '[' || copy + name_len >= sep ||
        name_len + 2 >= (size_t)num) {
        if (t[0] != ';' && t[0] != '#')
            problem(ld, ld->line, "line too long (over %d characters)",
                    strlen(t) > MAX_LINE_LEN ? MAX_LINE_LEN : num - 3);
        ic_free(copy);
        return "";
    }
    ic_free(copy);
    memcpy(str, t, name_len + 1);
    str[name_len + 1] = '\0';
    ld->long_line = ld->line;
    ld->long_value = t + name_len + 1;
    return str;
}

/* inih's reader: one line a call, left-trimmed, syntax errors blanked. */
static char *next_line(char *str, int num, void *stream)
{
    struct load *ld = stream;
    const char *t;
    size_t i;

    if (ld->next >= ld->n_lines)
        return NULL;
    i = ld->next++;
    ld->line = (int)i + 1;
    t = ld->lines[i];
    if (i == 0 && strncmp(t, "\xef\xbb\xbf", 3) == 0)
        t += 3;
    while (isspace((unsigned char)*t))
        t++;
    if (ld->bad[i]) {
        if (t[0] == '[')
            ld->skip_section = true;
        t = "";
    } else if (t[0] == '[') {
        ld->skip_section = false;
        ld->header_line = ld->line;
    }
    if (strlen(t) + 3 > (size_t)num)
        t = long_line(ld, t, str, num);
    if (t != str)
        snprintf(str, (size_t)num, "%s", t);
    return str;
}

/* Reading the file */

/* The file's lines, without their ends, into ld->lines. */
static int read_lines(struct load *ld, char **why)
{
    FILE *f = fopen(ld->path, "r");
    char *line = NULL;
    size_t size = 0, cap = 0;
    ssize_t len;

    if (f == NULL) {
        *why = ic_strdup(strerror(errno));
        return IC_EIO;
    }
    while ((len = getline(&line, &size, f)) >= 0) {
        if (ld->n_lines == cap) {
            cap = cap ? 2 * cap : 64;
            ld->lines = ic_realloc(ld->lines, cap * sizeof *ld->lines);
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        ld->lines[ld->n_lines++] = ic_strndup(line, (size_t)len);
    }
    free(line);
    if (ferror(f))
        *why = ic_strdup(strerror(errno));
    fclose(f);
    ld->bad = ic_calloc(ld->n_lines, sizeof *ld->bad);
    return *why != NULL ? IC_EIO : 0;
}

static char *config_dir(const char *path)
{
    char *copy = ic_strdup(path);
    char *slash = strrchr(copy, '/');
    char *abs;

    if (slash == copy)
        slash[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    abs = realpath(slash != NULL ? copy : ".", NULL);
    ic_free(copy);
    if (abs == NULL)
        return NULL;
    copy = ic_strdup(abs);
    free(abs);
    if (strcmp(copy, "/") == 0)
        copy[0] = '\0'; /* "/" + "/" + "x" would read "//x" */
    return copy;
}

/* Checks across keys */

static void check_required(struct load *ld)
{
    for (size_t i = 0; i < ic_node__config_nkeys; i++) {
        if (ic_node__config_keys[i].required && ld->seen[i] == 0)
            problem(ld, 0, "missing required key '%s' in [%s]",
                    ic_node__config_keys[i].name,
                    ic_node__config_keys[i].section);
    }
}

static int line_of(const struct load *ld, const char *section, const char *k)
{
    return ld->seen[find_key(section, k) - ic_node__config_keys];
}

static void check_peers(struct load *ld)
{
    const struct ic_node_config *c = &ld->cfg;
    const struct ic_node_peer *self = ic_node_config_self(c);
    int line = line_of(ld, "cluster", "peers");

    if (c->cluster.n_peers == 0 || c->node.id == 0)
        return;
    if (self == NULL) {
        problem(ld, line, "peers lacks this node (id %u)", c->node.id);
    } else if (self->raft_port != c->cluster.raft_port) {
        problem(ld, line,
                "peers gives this node (id %u) raft port %u but raft_port "
                "is %u",
                c->node.id, self->raft_port, c->cluster.raft_port);
    }
}

static void check_across(struct load *ld)
{
    const struct ic_node_config *c = &ld->cfg;
    int line;

    if (c->c2s.max_stanza_preauth > c->c2s.max_stanza) {
        line = line_of(ld, "c2s", "max_stanza_preauth");
        problem(ld, line ? line : line_of(ld, "c2s", "max_stanza"),
                "max_stanza_preauth (%zu) exceeds max_stanza (%zu)",
                c->c2s.max_stanza_preauth, c->c2s.max_stanza);
    }
    if (c->s2s.dialback && c->s2s.secret == NULL)
        problem(ld, line_of(ld, "s2s", "dialback"),
                "dialback needs a secret in [s2s] (the same on every node)");
    if (c->cluster.link_port != (unsigned)c->cluster.raft_port + 1) {
        line = line_of(ld, "cluster", "link_port");
        problem(ld, line ? line : line_of(ld, "cluster", "raft_port"),
                "link_port (%u) must be raft_port + 1 (%u): the other nodes "
                "find a node's links there",
                (unsigned)c->cluster.link_port,
                (unsigned)c->cluster.raft_port + 1);
    }
    check_peers(ld);
}

/* One parse of the lines, from defaults. */
static int parse_pass(struct load *ld)
{
    ic_node_config_free(&ld->cfg);
    ic_node_config_init(&ld->cfg);
    problems_clear(ld);
    memset(ld->seen, 0, sizeof ld->seen);
    ld->next = 0;
    ld->line = ld->header_line = ld->reported_header = ld->long_line = 0;
    ld->skip_section = false;
    return ini_parse_stream(next_line, ld, on_pair, ld);
}

static void parse_all(struct load *ld)
{
    bool gave_up = false;
    int rc;

    while ((rc = parse_pass(ld)) > 0 && (size_t)rc <= ld->n_lines &&
           !ld->bad[rc - 1]) {
        if (ld->n_bad == MAX_SYNTAX) {
            gave_up = true;
            break;
        }
        ld->bad[rc - 1] = true;
        ld->n_bad++;
    }
    if (rc == -2) {
        fprintf(stderr, "icroot: out of memory in inih\n");
        abort();
    }
    for (size_t i = 0; i < ld->n_lines; i++) {
        const char *t = ld->lines[i] + strspn(ld->lines[i], " \t\f\v");
        if (ld->bad[i])
            problem(ld, (int)i + 1, "syntax error: %s",
                    t[0] == '[' ? "expected ']' after the section name"
                                : "expected 'key = value'");
    }
    if (gave_up)
        problem(ld, 0, "too many syntax errors, gave up");
    check_required(ld);
    check_across(ld);
}

static void load_close(struct load *ld)
{
    ic_node_config_free(&ld->cfg);
    problems_clear(ld);
    ic_free(ld->problems);
    ic_free(ld->bad);
    for (size_t i = 0; i < ld->n_lines; i++)
        ic_free(ld->lines[i]);
    ic_free(ld->lines);
    ic_free(ld->dir);
}

int ic_node_config_load(const char *path,
                        struct ic_node_config *out,
                        char **errors)
{
    struct load ld = {.path = path};
    char *why = NULL;
    int rc;

    if (errors != NULL)
        *errors = NULL;
    rc = read_lines(&ld, &why);
    if (rc == 0 && (ld.dir = config_dir(path)) == NULL) {
        why = ic_strdup(strerror(errno));
        rc = IC_EIO;
    }
    if (rc != 0) {
        problem(&ld, 0, "%s", why);
        ic_free(why);
    } else {
        parse_all(&ld);
        rc = ld.n_problems > 0 ? IC_EVALUE : 0;
    }
    if (rc != 0 && errors != NULL)
        *errors = problems_text(&ld);
    if (rc == 0) {
        *out = ld.cfg;
        memset(&ld.cfg, 0, sizeof ld.cfg);
    }
    load_close(&ld);
    return rc;
}

/* Defaults, freeing, look-ups */

void ic_node_config_init(struct ic_node_config *c)
{
    memset(c, 0, sizeof *c);
    c->node.domain = ic_strdup("intercloudexchg.test");
    c->node.role = IC_NODE_ROLE_ROOT;
    c->node.log_level = IC_LOG_INFO;
    c->c2s.address = ic_strdup("127.0.0.1");
    c->c2s.port = 15222;
    c->c2s.tls_port = 15223;
    c->c2s.max_stanza = 262144;
    c->c2s.max_stanza_preauth = 16384;
    c->c2s.handshake_timeout = 30;
    c->c2s.idle_timeout = 600;
    c->c2s.keepalive = 60;
    c->c2s.login_throttle = 10;
    c->tls.min_version = IC_TLS_1_2;
    c->s2s.address = ic_strdup("127.0.0.1");
    c->s2s.port = 15224;
    c->s2s.dialback = false;
    c->s2s.idle_timeout = 300;
    c->cluster.raft_port = 15225;
    c->cluster.link_port = 15226;
    c->cluster.election_timeout = 1000;
    c->cluster.heartbeat = 20;
    c->cluster.snapshot_threshold = 65536;
    c->cluster.snapshot_trailing = 8192;
    c->cluster.log_memory = 96;
    c->catalog.load_sample = true;
}

void ic_node_config_free(struct ic_node_config *c)
{
    if (c == NULL)
        return;
    ic_free(c->node.data_dir);
    ic_free(c->node.domain);
    ic_free(c->c2s.address);
    ic_free(c->tls.cert);
    ic_free(c->tls.key);
    ic_free(c->tls.ca);
    ic_free(c->s2s.address);
    ic_free(c->s2s.secret);
    for (size_t i = 0; i < c->s2s.n_routes; i++) {
        ic_free(c->s2s.routes[i].domain);
        ic_free(c->s2s.routes[i].host);
    }
    ic_free(c->s2s.routes);
    ic_free(c->s2s.dns);
    for (size_t i = 0; i < c->cluster.n_peers; i++)
        ic_free(c->cluster.peers[i].host);
    ic_free(c->cluster.peers);
    ic_free(c->cluster.seed);
    ic_free(c->catalog.ontology_dir);
    for (size_t i = 0; i < c->accounts.n_admins; i++)
        ic_free(c->accounts.admins[i]);
    ic_free(c->accounts.admins);
    memset(c, 0, sizeof *c);
}

const struct ic_node_peer *ic_node_config_self(const struct ic_node_config *c)
{
    for (size_t i = 0; i < c->cluster.n_peers; i++) {
        if (c->cluster.peers[i].id == c->node.id)
            return &c->cluster.peers[i];
    }
    return NULL;
}
