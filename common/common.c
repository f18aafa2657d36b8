/* Error table, allocator and logging sink shared by every module. */
#define _POSIX_C_SOURCE 200809L
#include "ic_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *ic_strerror(int code)
{
    switch (code) {
#define IC__ERR_CASE(name, value, msg) \
    case value:                        \
        return msg;
        IC_ERRORS(IC__ERR_CASE)
#undef IC__ERR_CASE
    case 0:
        return "success";
    default:
        return "unknown error";
    }
}

static void oom(size_t size)
{
    fprintf(stderr, "icroot: out of memory allocating %zu bytes\n", size);
    abort();
}

void *ic_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        oom(size);
    return p;
}

void *ic_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom(n * size);
    return p;
}

void *ic_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL)
        oom(size);
    return p;
}

char *ic_strndup(const char *s, size_t n)
{
    char *p = ic_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *ic_strdup(const char *s)
{
    return ic_strndup(s, strlen(s));
}

void ic_free(void *ptr)
{
    free(ptr);
}

/* Logging */

static const char *const level_names[] = {"error", "warn", "info", "debug",
                                          "trace"};
static enum ic_log_level log_level = IC_LOG_INFO;
static int log_env_checked;
static ic_log_sink_fn log_sink;
static void *log_sink_data;

int ic_log_level_parse(const char *name, enum ic_log_level *out)
{
    for (size_t i = 0; i < IC_ARRAY_LEN(level_names); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum ic_log_level)i;
            return 0;
        }
    }
    return IC_EINVAL;
}

static void log_env(void)
{
    const char *env;
    enum ic_log_level lv;

    if (log_env_checked)
        return;
    log_env_checked = 1;
    env = getenv("IC_LOG_LEVEL");
    if (env != NULL && ic_log_level_parse(env, &lv) == 0)
        log_level = lv;
}

void ic_log_set_level(enum ic_log_level level)
{
    const char *env = getenv("IC_LOG_LEVEL");
    enum ic_log_level lv;

    log_env_checked = 1;
    /* The environment overrides the configured level. */
    if (env != NULL && ic_log_level_parse(env, &lv) == 0)
        level = lv;
    log_level = level;
}

enum ic_log_level ic_log_get_level(void)
{
    log_env();
    return log_level;
}

void ic_log_set_sink(ic_log_sink_fn fn, void *data)
{
    log_sink = fn;
    log_sink_data = data;
}

void ic_log_write(enum ic_log_level level,
                  const char *module,
                  const char *file,
                  int line,
                  const char *fmt,
                  ...)
{
    char msg[1024];
    char out[1200];
    struct timespec ts;
    struct tm tm;
    const char *base = strrchr(file, '/');
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, sizeof out,
             "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s %s:%d: %s",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L, level_names[level],
             module, base ? base + 1 : file, line, msg);
    if (log_sink != NULL) {
        log_sink(log_sink_data, level, out);
        return;
    }
    fprintf(stderr, "%s\n", out);
}
