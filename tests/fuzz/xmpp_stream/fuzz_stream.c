/*
 * fuzz_stream.c - libFuzzer driver for the XML stream parser and the
 * stanza serializer (xmpp/stream.c, xmpp/xml.c).
 *
 * Each input is a byte stream from a peer. It is parsed three times: whole,
 * byte by byte (short inputs) or in 13-byte chunks, and in chunks whose
 * sizes come from the input; the three records of events must be equal,
 * since chunking must never change what is delivered. Besides the
 * sanitizers' checks, the driver aborts when:
 *  - anything is delivered after on_error or on_close (before a reset),
 *    or on_error comes twice, or a feed's result disagrees with on_error;
 *  - a feed reports more bytes consumed than it was given;
 *  - a stanza (or header) does not survive parse -> write -> parse
 *    unchanged, or its copy differs from it.
 * Stanzas named "starttls" stop the stream (the rest is fed to a fresh
 * one, as after TLS), "success" resets it from the callback (the SASL
 * restart), and "bye" frees it from the callback. The last byte's low bit
 * picks small limits so that the limit checks are reached.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ic_xmpp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
    struct ic_xml_stream *s;
    struct ic_buf log;
    bool dead;    /* on_error or on_close seen; cleared by a reset */
    bool failed;  /* on_error seen since the last reset */
    bool stopped; /* a callback stopped the stream */
    bool freed;   /* a callback freed the stream */
};

#define CHECK(c)     \
    do {             \
        if (!(c))    \
            abort(); \
    } while (0)

/* ---------------------------------------------------------------------
 * Round trip: write with no context, parse again, compare.
 */

struct one {
    struct ic_xml *x;
    int n;
    bool error;
};

static void one_stanza(void *data, struct ic_xml *x)
{
    struct one *o = data;

    o->n++;
    ic_xml_free(o->x);
    o->x = x;
}

static void one_error(void *data, enum ic_stream_error cond, const char *text)
{
    struct one *o = data;

    (void)cond;
    (void)text;
    o->error = true;
}

static void one_open(void *data, struct ic_xml *x)
{
    (void)data;
    ic_xml_free(x);
}

static bool str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static void check_equal(const struct ic_xml *a, const struct ic_xml *b)
{
    const struct ic_xml_attr *aa = a->attrs, *ba = b->attrs;
    const struct ic_xml *ac = a->children, *bc = b->children;

    CHECK(str_eq(a->name, b->name) && str_eq(a->ns, b->ns));
    CHECK(a->text_len == b->text_len);
    CHECK(a->text_len == 0 || memcmp(a->text, b->text, a->text_len) == 0);
    for (; aa != NULL && ba != NULL; aa = aa->next, ba = ba->next)
        CHECK(str_eq(aa->name, ba->name) && str_eq(aa->value, ba->value));
    CHECK(aa == NULL && ba == NULL);
    for (; ac != NULL && bc != NULL; ac = ac->next, bc = bc->next) {
        CHECK(ac->parent == a && bc->parent == b);
        check_equal(ac, bc);
    }
    CHECK(ac == NULL && bc == NULL);
}

static void check_round_trip(const struct ic_xml *x)
{
    static const struct ic_xml_stream_cbs cbs = {
        .on_open = one_open,
        .on_stanza = one_stanza,
        .on_error = one_error,
    };
    const struct ic_xml_limits big = {1u << 24, 100000, 1u << 24, 1u << 24};
    struct one o = {0};
    struct ic_xml_stream *s = ic_xml_stream_new(&cbs, &o, &big);
    struct ic_buf doc = {0};
    struct ic_xml *copy = ic_xml_copy(x);
    char *w1, *w2;
    size_t used;

    check_equal(x, copy);
    ic_xml_free(copy);
    ic_buf_puts(&doc, "<stream:stream xmlns:stream='" IC_NS_STREAMS "'>");
    ic_xml_write(&doc, x, NULL);
    CHECK(ic_xml_stream_feed(s, doc.data, doc.len, &used) == 0);
    CHECK(used == doc.len && !o.error && o.n == 1);
    check_equal(x, o.x);
    w1 = ic_xml_to_string(x, NULL);
    w2 = ic_xml_to_string(o.x, NULL);
    CHECK(strcmp(w1, w2) == 0);
    ic_free(w1);
    ic_free(w2);
    ic_xml_free(o.x);
    ic_buf_free(&doc);
    ic_xml_stream_free(s);
}

/* ---------------------------------------------------------------------
 * The recorded run
 */

static void log_tree(struct run *r, const char *tag, struct ic_xml *x)
{
    const char *ctx = ic_xml_stream_content_ns(r->s);
    char *w = ic_xml_to_string(x, ctx);

    ic_buf_puts(&r->log, tag);
    ic_buf_puts(&r->log, w);
    ic_buf_puts(&r->log, "\n");
    ic_free(w);
    check_round_trip(x);
    ic_xml_free(x);
}

static void on_open(void *data, struct ic_xml *header)
{
    struct run *r = data;

    CHECK(!r->dead && !r->stopped);
    log_tree(r, "open ", header);
}

static void on_stanza(void *data, struct ic_xml *x)
{
    struct run *r = data;
    bool stop = strcmp(x->name, "starttls") == 0;
    bool reset = strcmp(x->name, "success") == 0;
    bool bye = strcmp(x->name, "bye") == 0;

    CHECK(!r->dead && !r->stopped);
    log_tree(r, "stanza ", x);
    if (stop) {
        ic_xml_stream_stop(r->s);
        r->stopped = true;
    } else if (reset) {
        ic_buf_puts(&r->log, "reset\n");
        ic_xml_stream_reset(r->s);
    } else if (bye) {
        ic_xml_stream_free(r->s);
        r->freed = true;
    }
}

static void on_close(void *data)
{
    struct run *r = data;

    CHECK(!r->dead && !r->stopped);
    ic_buf_puts(&r->log, "close\n");
    r->dead = true;
}

static void on_error(void *data, enum ic_stream_error cond, const char *text)
{
    struct run *r = data;

    CHECK(!r->failed && !r->stopped);
    CHECK(cond < IC_SE__COUNT && text != NULL);
    ic_buf_puts(&r->log, "error ");
    ic_buf_puts(&r->log, ic_stream_error_name(cond));
    /* Expat's message and position for one malformed input can depend on
     * how it was split ("\t\0" is column 3 whole, 1 byte by byte); the
     * other texts are the parser's own and must match exactly. */
    if (cond != IC_SE_NOT_WELL_FORMED) {
        ic_buf_puts(&r->log, ": ");
        ic_buf_puts(&r->log, text);
    }
    ic_buf_puts(&r->log, "\n");
    r->dead = r->failed = true;
}

static const struct ic_xml_stream_cbs run_cbs = {
    .on_open = on_open,
    .on_stanza = on_stanza,
    .on_close = on_close,
    .on_error = on_error,
};

/* Feeds one chunk. What a stop leaves over goes to a fresh stream (as
 * after TLS); so does what a reset in a callback leaves over. */
static void feed_chunk(struct run *r, const char *p, size_t n)
{
    for (;;) {
        size_t used = n + 1;
        int rc = ic_xml_stream_feed(r->s, p, n, &used);
        if (r->freed)
            return;
        CHECK(rc == 0 || rc == IC_ESYNTAX);
        CHECK((rc == IC_ESYNTAX) == r->failed);
        CHECK(used <= n);
        if (r->stopped) {
            ic_buf_puts(&r->log, "restart\n");
            ic_xml_stream_reset(r->s);
            r->stopped = r->dead = r->failed = false;
        }
        if (used == n)
            return;
        CHECK(used > 0);
        p += used;
        n -= used;
    }
}

/* MODE 0: whole; 1: byte by byte (or 13 bytes); 2: sizes from the data. */
static char *record(const uint8_t *data,
                    size_t size,
                    int mode,
                    const struct ic_xml_limits *limits)
{
    struct run r = {0};
    size_t off = 0;
    unsigned k = 0;

    r.s = ic_xml_stream_new(&run_cbs, &r, limits);
    ic_buf_puts(&r.log, "");
    while (off < size && !r.freed) {
        size_t n = size - off;
        if (mode == 1)
            n = size <= 4096 ? 1 : 13;
        else if (mode == 2)
            n = 1 + (size_t)data[(k++ * 7) % size] % 97;
        if (n > size - off)
            n = size - off;
        feed_chunk(&r, (const char *)data + off, n);
        off += n;
    }
    if (!r.freed)
        ic_xml_stream_free(r.s);
    return r.log.data;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct ic_xml_limits small = {512, 8, 16, 4};
    const struct ic_xml_limits *limits = NULL;
    char *logs[3];

    if (size == 0)
        return 0;
    if (data[size - 1] & 1)
        limits = &small;
    for (int mode = 0; mode < 3; mode++)
        logs[mode] = record(data, size, mode, limits);
    for (int mode = 1; mode < 3; mode++) {
        if (strcmp(logs[0], logs[mode]) != 0) {
            fprintf(stderr, "whole:\n%s\nmode %d:\n%s\n", logs[0], mode,
                    logs[mode]);
            abort();
        }
    }
    for (int mode = 0; mode < 3; mode++)
        ic_free(logs[mode]);
    return 0;
}
