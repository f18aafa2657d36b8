/*
 * ic_common.h - what every module of the Intercloud Root shares: the one
 * table of error codes, the one allocator (out of memory aborts), and the
 * one logging sink.
 *
 * Errors: functions return 0 or a negative IC_E* code; ic_strerror() gives
 * the message. Output parameters are written only on success.
 */
#ifndef IC_COMMON_H
#define IC_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* X-macro table: name, value, message. */
#define IC_ERRORS(X)                                     \
    X(IC_ENOMEM, -1, "out of memory")                    \
    X(IC_EINVAL, -2, "invalid argument")                 \
    X(IC_ENOTFOUND, -3, "not found")                     \
    X(IC_EEXIST, -4, "already exists")                   \
    X(IC_EIO, -5, "input/output error")                  \
    X(IC_EFULL, -6, "store is full")                     \
    X(IC_ECORRUPT, -7, "data is corrupt")                \
    X(IC_EFORMAT, -8, "unsupported data format version") \
    X(IC_ENOTOURS, -9, "not an icroot data directory")   \
    X(IC_ESYNTAX, -10, "syntax error")                   \
    X(IC_EBUSY, -11, "resource busy")                    \
    X(IC_EEND, -12, "end of iteration")                  \
    X(IC_EUNKNOWN, -13, "unknown name")                  \
    X(IC_EVALUE, -14, "value does not parse")            \
    X(IC_ELIMIT, -15, "limit exceeded")                  \
    X(IC_EREADONLY, -16, "read-only transaction")        \
    X(IC_ENOSPC, -17, "no space left on device")         \
    X(IC_EAUTH, -18, "authentication failed")            \
    X(IC_ETIMEDOUT, -19, "timed out")                    \
    X(IC_ECONNECT, -20, "connection failed")             \
    X(IC_ENOTLEADER, -30, "not the Raft leader")         \
    X(IC_EINDOUBT, -31, "outcome unknown, retry")        \
    X(IC_ESTALE, -32, "older than last applied")         \
    X(IC_ELEASE, -33, "node lease incarnation not current")

enum ic_error {
#define IC__ERR_ENUM(name, value, msg) name = value,
    IC_ERRORS(IC__ERR_ENUM)
#undef IC__ERR_ENUM
};

/* The message of an IC_E* code; "unknown error" for anything else. */
const char *ic_strerror(int code);

/* Allocation that never returns NULL: out of memory aborts the process. */
void *ic_malloc(size_t size);
void *ic_calloc(size_t n, size_t size);
void *ic_realloc(void *ptr, size_t size);
char *ic_strdup(const char *s);
char *ic_strndup(const char *s, size_t n);
void ic_free(void *ptr);

/* Logging: one sink (stderr by default), levels below the current one are
 * dropped. The level comes from config and can be overridden with the
 * environment variable IC_LOG_LEVEL (error, warn, info, debug, trace). */
enum ic_log_level {
    IC_LOG_ERROR = 0,
    IC_LOG_WARN,
    IC_LOG_INFO,
    IC_LOG_DEBUG,
    IC_LOG_TRACE,
};

typedef void (*ic_log_sink_fn)(void *data,
                               enum ic_log_level level,
                               const char *line);

void ic_log_set_level(enum ic_log_level level);
enum ic_log_level ic_log_get_level(void);
/* Parses a level name; returns 0 and writes *out, or IC_EINVAL. */
int ic_log_level_parse(const char *name, enum ic_log_level *out);
/* Replaces the sink (NULL restores stderr). */
void ic_log_set_sink(ic_log_sink_fn fn, void *data);
void ic_log_write(enum ic_log_level level,
                  const char *module,
                  const char *file,
                  int line,
                  const char *fmt,
                  ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

#define IC_LOG(level, module, ...)                                            \
    do {                                                                      \
        if ((level) <= ic_log_get_level())                                    \
            ic_log_write((level), (module), __FILE__, __LINE__, __VA_ARGS__); \
    } while (0)

#define IC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The 8 bytes at P as a little-endian number and back, whatever the
 * host's order (one load or store on a little-endian host). */
static inline uint64_t ic_get_le64(const void *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline void ic_put_le64(void *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, sizeof v);
}

#endif /* IC_COMMON_H */
