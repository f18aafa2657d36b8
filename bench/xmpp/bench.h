/*
 * bench.h - the internals of icroot-bench, the XMPP load generator
 * (docs/benchmarks-xmpp.md), shared by its files:
 *
 *   icroot-bench.c  options, threads, the run's clock, the JSON line
 *   scenario.c      what each scenario does with a ready connection
 *   client.c        one client connection: TCP, STARTTLS, TLS over memory
 *                   BIOs, SASL, resource binding (a state machine)
 *   sasl.c          PLAIN, SCRAM-SHA-1, SCRAM-SHA-256 with a SaltedPassword
 *                   cache per account
 *   stats.c         latency histogram, process CPU and RSS from /proc
 *
 * Threads: each worker runs its own libuv loop over its own connections;
 * they share only the read-only options, the accounts (whose SCRAM cache
 * has a lock), the bound JIDs (written before the start barrier, read
 * after it) and the atomic flags of `struct run`.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <expat.h>
#include <openssl/ssl.h>
#include <uv.h>

#define BENCH_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* Queues a string literal on a connection. */
#define SEND_LIT(c, s) bench_conn_send((c), (s), sizeof(s) - 1)

enum bench_mech { MECH_PLAIN, MECH_SCRAM_SHA1, MECH_SCRAM_SHA256 };

enum bench_scenario {
    SC_LOGIN,
    SC_PING,
    SC_QUERY,
    SC_MESSAGE,
    SC_IDLE,
    SC_CREATE, /* --create-accounts: add_account for PREFIX1..N */
};

struct bench_account {
    char *local;
    char *password;
    bool admin;
    /* SCRAM SaltedPassword cache, under `lock` (shared by the threads). */
    uv_mutex_t lock;
    struct bench_salted *salted;
};

struct bench_opts {
    const char *host;
    int port;
    const char *domain;
    const char *ca;
    const char *service;
    const char *label;
    const char *user_prefix;
    const char *password;
    const char *accounts_file;
    const char *resource;
    const char *case_name; /* 'case' field of the JSON line */
    enum bench_mech mech;
    enum bench_scenario scenario;
    unsigned users;  /* accounts PREFIX1..PREFIXusers */
    unsigned conns;  /* connections (login: concurrent logins) */
    unsigned window; /* requests in flight per connection */
    unsigned threads;
    unsigned ramp;    /* connections logging in at once while ramping up */
    unsigned sources; /* source addresses 127.0.0.1.. (0: automatic) */
    unsigned body;    /* message body bytes */
    double duration, warmup, settle;
    double timeout; /* seconds the ramp-up may take */
    int server_pid;
    bool direct_tls;
    bool presence;
    bool pairs; /* message: pairs instead of a ring */
    bool no_cache;
    bool no_cert_cache; /* verify the server's chain on every login */
    bool verbose;
    /* message across two servers (--to-domain): connection 2k is a sender
     * on this server, 2k+1 its receiver on the --to-* server; --conns
     * counts the pairs (conns holds 2 * pairs once parsed) */
    const char *to_host;
    int to_port;
    const char *to_domain;
    const char *to_ca;
    const char *to_accounts_file;
    int to_server_pid; /* report that server's CPU too */
    bool cross;
    /* query: recursive='true'; VARY distinct constraint sets in turn (the
     * availability value 99.99 + k * 1e-7, k = 1..VARY, all matching the
     * same clouds; 0: the seed paper's fixed query); the expected
     * <cloudName>s, comma-separated (default cloud2,cloud5) */
    bool recursive;
    unsigned vary;
    const char *expect;
};

/* --to-domain: connection IDX is a receiver on the --to-* server. */
static inline bool bench_on_b(const struct bench_opts *o, unsigned idx)
{
    return o->cross && (idx & 1u) != 0;
}

/* Latency histogram: log-linear buckets of nanoseconds, about 3 %. */
#define HIST_BUCKETS 1920
struct bench_hist {
    uint64_t b[HIST_BUCKETS];
    uint64_t n;
};

void bench_hist_add(struct bench_hist *h, uint64_t ns);
void bench_hist_merge(struct bench_hist *into, const struct bench_hist *h);
/* The value (ns) below which a fraction Q of the samples lie; 0 if none. */
uint64_t bench_hist_quantile(const struct bench_hist *h, double q);

uint64_t bench_now_ns(void);
double bench_cpu_self(void);
/* Process PID's user+system CPU seconds and RSS in KiB; -1 if unknown. */
double bench_proc_cpu(int pid);
long bench_proc_rss_kib(int pid);
double bench_host_busy(void);

/* What the whole run shares across threads. */
struct bench_run {
    const struct bench_opts *o;
    struct bench_account *accounts;
    size_t n_accounts;
    SSL_CTX *tls;
    SSL_CTX *to_tls;                   /* --to-ca (or tls) */
    struct bench_account *to_accounts; /* --to-accounts (or accounts) */
    size_t n_to_accounts;
    atomic_uint query_seq; /* --vary: the next constraint set */
    char **jids;       /* bound full JID of each connection (by global index) */
    atomic_uint ready; /* workers whose connections are all up */
    atomic_int go;     /* traffic may start */
    atomic_int measuring;      /* operations count now */
    atomic_int stop;           /* close everything and end */
    atomic_uint connected;     /* connections bound now (all threads) */
    atomic_uint failures;      /* connections failed (all threads) */
    atomic_uint ramp_permille; /* how much of its share a worker opens */
};

/* The counters of one worker (added up at the end). */
struct bench_stats {
    struct bench_hist lat;
    uint64_t ops;
    uint64_t errors;
    uint64_t conn_errors; /* connections that failed or were closed */
    uint64_t auth_failures;
    uint64_t sent; /* query: every query sent, measured or not */
    char first_error[160];
};

struct bench_conn;

struct bench_worker {
    unsigned id;
    struct bench_run *run;
    uv_loop_t loop;
    uv_check_t flush; /* sends what the loop's callbacks queued */
    uv_timer_t tick;  /* watches the run's flags */
    uv_thread_t thread;
    unsigned first, count; /* global indexes first..first+count-1 */
    struct bench_conn **conns;
    struct bench_conn *dirty; /* connections with output to flush */
    unsigned started;         /* connections started (ramp-up) */
    unsigned in_login;        /* connections logging in now */
    unsigned up;              /* connections bound */
    unsigned open;            /* connections not yet closed */
    unsigned cursor;          /* ramp-up: the next slot to open */
    bool retry;               /* ramp-up: a slot was lost, scan again */
    uv_timer_t force;         /* stopping: closes what did not end */
    bool reported_ready, traffic, stopping;
    /* the loop's time blocked in epoll while measuring (uv_metrics) */
    int measure_phase; /* 0 before, 1 during, 2 after */
    uint64_t idle0, idle_ns, t0, span_ns;
    char tls_info[96]; /* the first connection's TLS: version, cipher, group,
                        * server signature */
    char rbuf[65536];  /* socket reads */
    char pbuf[65536];  /* TLS plaintext */
    char wbuf[65536];  /* TLS records to the socket */
    struct bench_stats st;
};

/* Client connection states (client.c has the transition table). */
enum bench_state {
    ST_CONNECTING,
    ST_FEATURES_TLS,  /* stream header sent, waiting for <starttls/> */
    ST_PROCEED,       /* <starttls/> sent */
    ST_TLS_HANDSHAKE, /* handshake running */
    ST_FEATURES_AUTH, /* stream header sent over TLS */
    ST_SASL,          /* <auth/> sent */
    ST_FEATURES_BIND, /* restarted after <success/> */
    ST_BIND,          /* bind iq sent */
    ST_READY,         /* bound: scenario traffic */
    ST_ENDING,        /* </stream:stream> sent */
    ST__COUNT,
};

/* The few facts of an incoming top-level element that the client needs. */
struct bench_stanza {
    char name[24];  /* local name: features, iq, message, success, ... */
    char type[16];  /* type attribute */
    char id[40];    /* id attribute */
    char from[96];  /* from attribute */
    char child[24]; /* first child's local name */
    bool starttls, bind;
    bool mech_plain, mech_sha1, mech_sha256;
    unsigned cloudnames; /* <cloudName> elements seen */
    unsigned referrals;  /* <referral> elements seen */
    bool partial;        /* a <partial/> seen */
    size_t text_len;
    char text[1024]; /* character data inside, concatenated, cut short */
};

struct bench_conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    struct bench_worker *w;
    struct bench_conn *next_dirty;
    unsigned idx; /* global index */
    struct bench_account *acct;
    const char *domain; /* the server's domain (--domain or --to-domain) */
    enum bench_state state;
    bool closing, dirty, in_list, tls_up, restart, counted_up, stream_closed,
        failed;
    SSL *ssl;
    BIO *rbio, *wbio;
    XML_Parser xp;
    unsigned depth, mech_depth;
    bool in_mech;
    char mech_text[32];
    size_t mech_len;
    struct bench_stanza *stz; /* allocated while an element is open */
    char *out;                /* plaintext waiting for the flush */
    size_t out_len, out_cap;
    size_t wq;        /* bytes queued in uv_write requests */
    char *sasl_state; /* SCRAM: client-first-message-bare */
    unsigned char server_key_sig[64];
    unsigned sasl_sig_len;
    uint64_t t_start; /* connect started */
    /* scenario traffic */
    uint64_t seq;
    uint64_t *sent_at; /* window slots: send time of request seq % window */
    unsigned inflight;
    unsigned peer; /* message: the global index messages go to */
};

/* client.c */
void bench_conn_start(struct bench_worker *w, unsigned idx);
void bench_conn_send(struct bench_conn *c, const char *data, size_t len);
void bench_conn_sendf(struct bench_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Sends </stream:stream> and closes once the server closes too. */
void bench_conn_end(struct bench_conn *c);
void bench_conn_close(struct bench_conn *c);
void bench_conn_flush(struct bench_conn *c);
void bench_error(struct bench_worker *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* sasl.c: the first message of MECH for the account, base64 (caller frees);
 * then the answer to a challenge (NULL on a bad challenge) and the check of
 * the server's final message. */
char *bench_sasl_first(struct bench_conn *c, enum bench_mech m);
char *bench_sasl_response(struct bench_conn *c,
                          enum bench_mech m,
                          const char *challenge_b64,
                          bool cache);
bool bench_sasl_verify(struct bench_conn *c, const char *success_b64);
void bench_account_clear_cache(struct bench_account *a);
const char *bench_mech_name(enum bench_mech m);

/* report.c: --compare FILE, the table of a run's JSON lines. */
int bench_compare(const char *file);

/* scenario.c */
void bench_on_ready(struct bench_conn *c);
void bench_on_stanza(struct bench_conn *c, const struct bench_stanza *s);
void bench_on_closed(struct bench_conn *c, bool failed);
void bench_traffic_start(struct bench_worker *w);
void bench_worker_fill(struct bench_worker *w);

/* icroot-bench.c: the worker's connections are all closed. */
void bench_worker_done(struct bench_worker *w);

#endif
