/*
 * test_stream.c - the XML stream parser (xmpp/stream.c): stream headers,
 * stanzas in any chunking, keepalives, close, every hostile input ending
 * in exactly one stream error, the limits, stop/consumed for STARTTLS,
 * and reset for the restart after SASL.
 *
 * Each test records the callbacks as lines of text ("open ...", "stanza
 * ...", "close", "error COND: TEXT") and compares the whole record.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ic_xmpp.h"

#define HDR                                                      \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
    "xmlns:stream='http://etherx.jabber.org/streams' "           \
    "to='intercloudexchg.com' version='1.0' xml:lang='en'>"
#define HDR_OPEN                                                           \
    "open <stream:stream xmlns:stream='http://etherx.jabber.org/streams' " \
    "to='intercloudexchg.com' version='1.0' xml:lang='en'/>\n"
#define TLS_NS "urn:ietf:params:xml:ns:xmpp-tls"

/* ---------------------------------------------------------------------
 * Recorder
 */

struct rec {
    struct ic_xml_stream *s;
    struct ic_buf log;
    struct ic_xml *header; /* the last header */
    struct ic_xml *stanza; /* the last stanza */
    int errors;
    enum ic_stream_error cond;
    /* What the callbacks do besides recording. */
    const char *stop_at;  /* stop after the stanza with this name */
    const char *reset_at; /* reset after the stanza with this name */
    const char *free_at;  /* free the stream at this stanza */
    bool stop_on_open;
};

static void rec_open(void *data, struct ic_xml *header)
{
    struct rec *r = data;
    char *s = ic_xml_to_string(header, NULL);

    ic_buf_puts(&r->log, "open ");
    ic_buf_puts(&r->log, s);
    ic_buf_puts(&r->log, "\n");
    ic_free(s);
    ic_xml_free(r->header);
    r->header = header;
    if (r->stop_on_open)
        ic_xml_stream_stop(r->s);
}

static bool named(const struct ic_xml *x, const char *name)
{
    return name != NULL && strcmp(x->name, name) == 0;
}

static void rec_stanza(void *data, struct ic_xml *x)
{
    struct rec *r = data;
    char *s = ic_xml_to_string(x, IC_NS_CLIENT);

    ic_buf_puts(&r->log, "stanza ");
    ic_buf_puts(&r->log, s);
    ic_buf_puts(&r->log, "\n");
    ic_free(s);
    ic_xml_free(r->stanza);
    r->stanza = x;
    if (named(x, r->stop_at))
        ic_xml_stream_stop(r->s);
    if (named(x, r->reset_at))
        ic_xml_stream_reset(r->s);
    if (named(x, r->free_at)) {
        ic_xml_stream_free(r->s);
        r->s = NULL;
    }
}

static void rec_close(void *data)
{
    struct rec *r = data;

    ic_buf_puts(&r->log, "close\n");
}

static void rec_error(void *data, enum ic_stream_error cond, const char *text)
{
    struct rec *r = data;

    ic_buf_puts(&r->log, "error ");
    ic_buf_puts(&r->log, ic_stream_error_name(cond));
    ic_buf_puts(&r->log, ": ");
    ic_buf_puts(&r->log, text);
    ic_buf_puts(&r->log, "\n");
    r->errors++;
    r->cond = cond;
}

static const struct ic_xml_stream_cbs rec_cbs = {
    .on_open = rec_open,
    .on_stanza = rec_stanza,
    .on_close = rec_close,
    .on_error = rec_error,
};

static void rec_init(struct rec *r, const struct ic_xml_limits *limits)
{
    memset(r, 0, sizeof(*r));
    r->s = ic_xml_stream_new(&rec_cbs, r, limits);
    ic_buf_puts(&r->log, ""); /* log.data is never NULL */
}

static void rec_done(struct rec *r)
{
    ic_xml_stream_free(r->s);
    ic_xml_free(r->header);
    ic_xml_free(r->stanza);
    ic_buf_free(&r->log);
}

/* Feeds TEXT in chunks of CHUNK bytes (0: all at once); every chunk must
 * be used whole. Returns the last feed's result. */
static int
feed_chunks(struct rec *r, const char *text, size_t len, size_t chunk)
{
    int rc = 0;

    if (chunk == 0)
        chunk = len;
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        size_t used = 12345;
        rc = ic_xml_stream_feed(r->s, text + off, n, &used);
        assert_int_equal(used, n);
    }
    return rc;
}

static int feed(struct rec *r, const char *text)
{
    return feed_chunks(r, text, strlen(text), 0);
}

/* A fresh stream fed TEXT (whole, then the same again byte by byte) must
 * record exactly WANT both times. */
static void
expect(const struct ic_xml_limits *limits, const char *text, const char *want)
{
    for (size_t chunk = 0; chunk <= 1; chunk++) {
        struct rec r;
        rec_init(&r, limits);
        feed_chunks(&r, text, strlen(text), chunk);
        assert_string_equal(r.log.data, want);
        rec_done(&r);
    }
}

/* A hostile TEXT ends the stream with one COND error and nothing else
 * after BEFORE (what was delivered first); more input changes nothing. */
static void expect_error(const struct ic_xml_limits *limits,
                         const char *text,
                         const char *before,
                         enum ic_stream_error cond)
{
    for (size_t chunk = 0; chunk <= 1; chunk++) {
        struct rec r;
        size_t used = 0;
        rec_init(&r, limits);
        assert_int_equal(feed_chunks(&r, text, strlen(text), chunk),
                         IC_ESYNTAX);
        assert_int_equal(r.errors, 1);
        assert_int_equal(r.cond, cond);
        assert_memory_equal(r.log.data, before, strlen(before));
        assert_non_null(strstr(r.log.data + strlen(before), "error "));
        assert_null(
            strchr(strchr(r.log.data + strlen(before), '\n') + 1, '\n'));
        /* The stream ignores what comes next. */
        size_t logged = r.log.len;
        assert_int_equal(ic_xml_stream_feed(r.s, "<iq/>", 5, &used),
                         IC_ESYNTAX);
        assert_int_equal(used, 5);
        assert_int_equal(r.log.len, logged);
        rec_done(&r);
    }
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct ic_buf b = {0};
    char chunk[4096];
    size_t n;

    assert_non_null(f);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        ic_buf_append(&b, chunk, n);
    fclose(f);
    return b.data;
}

/* ---------------------------------------------------------------------
 * Happy paths
 */

static void test_error_names(void **state)
{
    (void)state;
    assert_string_equal(ic_stream_error_name(IC_SE_BAD_FORMAT), "bad-format");
    assert_string_equal(ic_stream_error_name(IC_SE_RESTRICTED_XML),
                        "restricted-xml");
    assert_string_equal(ic_stream_error_name(IC_SE_UNSUPPORTED_VERSION),
                        "unsupported-version");
    assert_string_equal(ic_stream_error_name(IC_SE__COUNT),
                        "undefined-condition");
}

static const char client_stream[] =
    HDR "\n  <iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>"
        "<message to='juliet@example.com' type='chat'><body>Wherefore "
        "art thou &amp; &lt;Romeo&gt;?</body><thread>t1</thread></message>"
        "\n<presence><show>away</show><status xml:lang='fr'>parti"
        "</status></presence>\n</stream:stream>";

static const char client_log[] =
    HDR_OPEN "stanza <iq type='get' id='1'><query xmlns='jabber:iq:roster'/>"
             "</iq>\n"
             "stanza <message to='juliet@example.com' type='chat'><body>"
             "Wherefore art thou &amp; &lt;Romeo&gt;?</body><thread>t1"
             "</thread></message>\n"
             "stanza <presence><show>away</show><status xml:lang='fr'>parti"
             "</status></presence>\n"
             "close\n";

static void test_client_stream(void **state)
{
    struct rec r;
    const struct ic_xml *h;

    (void)state;
    expect(NULL, client_stream, client_log);
    /* Chunks of every size from 2 to 64 give the same record too. */
    for (size_t chunk = 2; chunk <= 64; chunk++) {
        rec_init(&r, NULL);
        feed_chunks(&r, client_stream, strlen(client_stream), chunk);
        assert_string_equal(r.log.data, client_log);
        rec_done(&r);
    }
    /* The header as delivered. */
    rec_init(&r, NULL);
    assert_null(ic_xml_stream_content_ns(r.s));
    assert_int_equal(feed(&r, HDR), 0);
    h = r.header;
    assert_non_null(h);
    assert_string_equal(h->name, "stream");
    assert_string_equal(h->ns, IC_NS_STREAMS);
    assert_null(h->children);
    assert_string_equal(ic_xml_attr(h, "to"), "intercloudexchg.com");
    assert_string_equal(ic_xml_attr(h, "version"), "1.0");
    assert_string_equal(ic_xml_attr(h, "xml:lang"), "en");
    assert_null(ic_xml_attr(h, "xmlns"));
    assert_string_equal(ic_xml_stream_content_ns(r.s), IC_NS_CLIENT);
    /* Stanzas inherit the stream's default namespace. */
    assert_int_equal(feed(&r, "<message><body>x</body></message>"), 0);
    assert_string_equal(r.stanza->ns, IC_NS_CLIENT);
    assert_string_equal(r.stanza->children->ns, IC_NS_CLIENT);
    rec_done(&r);
}

/* The seed paper's section 5: the responder's header (with id and from)
 * and its features, as a peer would send them. */
static void test_seed_header(void **state)
{
    (void)state;
    expect(NULL,
           "<stream:stream \n    xmlns='jabber:server' \n"
           "    xmlns:stream='http://etherx.jabber.org/streams' \n"
           "    from='intercloudexchg.com' \n    id=' cloud1_id2' \n"
           "    version='1.0'> \n<stream:features> \n"
           "  <mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-\nsasl'> \n"
           "    <mechanism>PLAIN</mechanism> \n  </mechanisms> \n"
           "</stream:features> \n",
           "open <stream:stream xmlns:stream='http://etherx.jabber.org/"
           "streams' from='intercloudexchg.com' id=' cloud1_id2' "
           "version='1.0'/>\n"
           "stanza <stream:features xmlns:stream='http://etherx.jabber.org/"
           "streams'> \n  <mechanisms xmlns='urn:ietf:params:xml:ns:xmpp- "
           "sasl'> \n    <mechanism>PLAIN</mechanism> \n  </mechanisms> \n"
           "</stream:features>\n");
}

static void test_keepalives(void **state)
{
    struct ic_xml_limits small = {.max_stanza_bytes = 200};
    struct rec r;

    (void)state;
    expect(NULL, HDR " \n\t\r\n <iq/>  \r\n\n\t <iq/> ",
           HDR_OPEN "stanza <iq/>\nstanza <iq/>\n");
    /* Keepalives end a unit each: thousands of them never add up to the
     * 200-byte limit. */
    rec_init(&r, &small);
    assert_int_equal(feed(&r, "<stream:stream xmlns:stream='"
                              "http://etherx.jabber.org/streams'>"),
                     0);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(feed(&r, i % 2 ? " " : "\n"), 0);
    assert_int_equal(feed(&r, "<iq/>"), 0);
    assert_int_equal(r.errors, 0);
    assert_non_null(r.stanza);
    rec_done(&r);
}

static void test_close(void **state)
{
    struct rec r;
    size_t used = 0;

    (void)state;
    rec_init(&r, NULL);
    assert_int_equal(feed(&r, HDR "<iq/></stream:stream><junk"), 0);
    assert_string_equal(r.log.data, HDR_OPEN "stanza <iq/>\nclose\n");
    /* After the close, input is ignored. */
    assert_int_equal(ic_xml_stream_feed(r.s, "<iq/>", 5, &used), 0);
    assert_int_equal(used, 5);
    assert_string_equal(r.log.data, HDR_OPEN "stanza <iq/>\nclose\n");
    rec_done(&r);
    /* An empty root opens and closes at once. */
    expect(NULL,
           "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
           "to='a'/>",
           "open <stream:stream xmlns:stream='http://etherx.jabber.org/"
           "streams' to='a'/>\nclose\n");
}

static void test_encoding_declared(void **state)
{
    (void)state;
    expect(NULL,
           "<?xml version='1.0' encoding='utf-8'?><stream:stream "
           "xmlns:stream='http://etherx.jabber.org/streams'>",
           "open <stream:stream xmlns:stream='http://etherx.jabber.org/"
           "streams'/>\n");
    /* A UTF-8 byte order mark is allowed. */
    expect(NULL,
           "\xEF\xBB\xBF<stream:stream "
           "xmlns:stream='http://etherx.jabber.org/streams'>",
           "open <stream:stream xmlns:stream='http://etherx.jabber.org/"
           "streams'/>\n");
}

/* The seed paper's request iq (section 6, tests/data/seed-request.xml). */
static void test_seed_request(void **state)
{
    char *iq = read_file(IC_SOURCE_DIR "/tests/data/seed-request.xml");
    struct ic_xml *c;
    struct rec r;
    char *t;

    (void)state;
    for (size_t chunk = 0; chunk <= 7; chunk += 7) {
        rec_init(&r, NULL);
        assert_int_equal(feed(&r, HDR), 0);
        feed_chunks(&r, iq, strlen(iq), chunk);
        assert_int_equal(r.errors, 0);
        assert_non_null(r.stanza);
        assert_string_equal(r.stanza->name, "iq");
        assert_string_equal(r.stanza->ns, IC_NS_CLIENT);
        assert_string_equal(ic_xml_attr(r.stanza, "id"), "cloud1_id1");
        c = ic_xml_child(r.stanza, "command",
                         "http://jabber.org/protocol/commands");
        assert_non_null(c);
        assert_string_equal(ic_xml_attr(c, "node"),
                            "constraint_catalog_resources");
        c = ic_xml_child(c, "iodata", "urn:xmpp:tmp:io-data");
        c = ic_xml_child(c, "in", "urn:xmpp:tmp:io-data");
        assert_non_null(c);
        c = ic_xml_child(c, "constraints", NULL);
        assert_non_null(c);
        assert_string_equal(c->ns, "http://www.csp/resOntology");
        c = ic_xml_child(c, "constraint", NULL);
        c = ic_xml_next(c, "constraint", "http://www.csp/resOntology");
        t = ic_xml_text(ic_xml_child(c, "value", NULL));
        assert_string_equal(t, "5");
        ic_free(t);
        t = ic_xml_text(ic_xml_child(c, "attribute", NULL));
        assert_string_equal(t, "replicationFactor");
        ic_free(t);
        rec_done(&r);
    }
    ic_free(iq);
}

/* ---------------------------------------------------------------------
 * Hostile input
 */

static void test_restricted(void **state)
{
    (void)state;
    expect_error(NULL,
                 "<?xml version='1.0'?><!DOCTYPE stream:stream>"
                 "<stream:stream xmlns:stream='http://etherx.jabber.org/"
                 "streams'>",
                 "", IC_SE_RESTRICTED_XML);
    expect_error(NULL,
                 "<!DOCTYPE lolz [<!ENTITY lol 'lol'>"
                 "<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
                 "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>]>"
                 "<stream:stream xmlns:stream='http://etherx.jabber.org/"
                 "streams'><iq>&lol3;</iq>",
                 "", IC_SE_RESTRICTED_XML);
    expect_error(NULL,
                 "<!DOCTYPE s [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>"
                 "<stream:stream xmlns:stream='http://etherx.jabber.org/"
                 "streams'><iq>&e;</iq>",
                 "", IC_SE_RESTRICTED_XML);
    expect_error(NULL, HDR "<iq/><!-- hi -->", HDR_OPEN "stanza <iq/>\n",
                 IC_SE_RESTRICTED_XML);
    expect_error(NULL, HDR "<iq><!-- in a stanza --></iq>", HDR_OPEN,
                 IC_SE_RESTRICTED_XML);
    expect_error(NULL, "<!-- first --><stream:stream/>", "",
                 IC_SE_RESTRICTED_XML);
    expect_error(NULL, HDR "<iq><?php echo 1; ?></iq>", HDR_OPEN,
                 IC_SE_RESTRICTED_XML);
    expect_error(NULL, "<?xml-stylesheet href='a'?><stream:stream/>", "",
                 IC_SE_RESTRICTED_XML);
    expect(NULL, HDR "<iq><!-- c --></iq>",
           HDR_OPEN "error restricted-xml: a comment is not allowed\n");
    expect(NULL, "<!DOCTYPE x>",
           "error restricted-xml: a DOCTYPE is not allowed\n");
    expect(NULL, HDR "<?pi x?>",
           HDR_OPEN
           "error restricted-xml: a processing instruction is not allowed\n");
}

static void test_not_well_formed(void **state)
{
    (void)state;
    /* Expat's position: line 1, the 0-based column of "iq" in "</iq>". */
    assert_int_equal(strlen(HDR "<message></"), 170);
    expect(NULL, HDR "<message></iq>",
           HDR_OPEN "error not-well-formed: mismatched tag at line 1, "
                    "column 170\n");
    expect_error(NULL, HDR "<message><body>&nbsp;</body></message>", HDR_OPEN,
                 IC_SE_NOT_WELL_FORMED);
    expect_error(NULL, HDR "<a b='1' b='2'/>", HDR_OPEN, IC_SE_NOT_WELL_FORMED);
    expect_error(NULL, HDR "<p:a/>", HDR_OPEN, IC_SE_NOT_WELL_FORMED);
    expect_error(NULL, HDR "<a>\xC3\x28</a>", HDR_OPEN, IC_SE_NOT_WELL_FORMED);
    expect_error(NULL, HDR "<a>\x01</a>", HDR_OPEN, IC_SE_NOT_WELL_FORMED);
    expect_error(NULL, "junk<stream:stream/>", "", IC_SE_NOT_WELL_FORMED);
    expect_error(NULL, HDR "<iq/><?xml version='1.0'?>",
                 HDR_OPEN "stanza <iq/>\n", IC_SE_NOT_WELL_FORMED);
    /* Well-formed, but text has no place between stanzas: refused at the
     * next tag (a stanza or the close)... */
    expect(NULL, HDR "<iq/> hello <iq/>",
           HDR_OPEN "stanza <iq/>\nerror bad-format: text between "
                    "stanzas\n");
    expect(NULL, HDR "<iq/> hello </stream:stream>",
           HDR_OPEN "stanza <iq/>\nerror bad-format: text between "
                    "stanzas\n");
    expect(NULL, HDR "x", HDR_OPEN);
    /* ...so that expat's verdict on the same bytes comes first: whole, it
     * refuses "]]>" before handing out any of the text; byte by byte it
     * hands out the first ']' before it can tell (expat's column differs
     * too, so only the condition is compared). */
    expect_error(NULL, HDR " ]]]]><iq/>", HDR_OPEN, IC_SE_NOT_WELL_FORMED);
}

static void test_bad_root(void **state)
{
    (void)state;
    expect(NULL,
           "<stream:stream xmlns:stream='http://etherx.jabber.org/streamz'>"
           "<iq/>",
           "error invalid-namespace: the root element is not "
           "{http://etherx.jabber.org/streams}stream\n");
    expect_error(NULL, "<stream xmlns='jabber:client'><iq/>", "",
                 IC_SE_INVALID_NAMESPACE);
    expect_error(NULL,
                 "<stream:flow xmlns:stream='http://etherx.jabber.org/"
                 "streams'>",
                 "", IC_SE_INVALID_NAMESPACE);
    /* Any prefix (or none) for the right namespace is fine. */
    expect(NULL, "<s:stream xmlns:s='http://etherx.jabber.org/streams'/>",
           "open <stream:stream xmlns:stream='http://etherx.jabber.org/"
           "streams'/>\nclose\n");
}

static void test_bad_encoding(void **state)
{
    (void)state;
    expect(NULL, "<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream/>",
           "error unsupported-encoding: encoding 'ISO-8859-1' is not "
           "UTF-8\n");
    expect_error(NULL,
                 "<?xml version='1.0' encoding='UTF-16'?><stream:stream/>", "",
                 IC_SE_UNSUPPORTED_ENCODING);
    /* UTF-16 with and without a byte order mark. */
    static const char le[] = "\xFF\xFE<\0s\0/\0>\0";
    static const char be[] = "\xFE\xFF\0<\0s\0/\0>";
    static const char nobom[] = "<\0s\0/\0>\0";
    const char *docs[] = {le, be, nobom};
    const size_t lens[] = {sizeof(le) - 1, sizeof(be) - 1, sizeof(nobom) - 1};
    for (size_t i = 0; i < 3; i++) {
        struct rec r;
        size_t used;
        rec_init(&r, NULL);
        assert_int_equal(ic_xml_stream_feed(r.s, docs[i], lens[i], &used),
                         IC_ESYNTAX);
        assert_string_equal(r.log.data, "error unsupported-encoding: the "
                                        "stream is not UTF-8\n");
        rec_done(&r);
    }
}

/* ---------------------------------------------------------------------
 * Limits
 */

/* A 10 MiB stanza in 64 KiB chunks with a 256 KiB limit: the fifth chunk
 * is refused before expat sees a byte of it. */
static void big_stanza(const char *start)
{
    struct ic_xml_limits l = {.max_stanza_bytes = 256 * 1024};
    size_t chunk = 64 * 1024;
    char *buf = ic_malloc(chunk);
    struct rec r;
    int failed_at = -1;

    memset(buf, 'x', chunk);
    memcpy(buf, start, strlen(start));
    rec_init(&r, &l);
    assert_int_equal(feed(&r, HDR), 0);
    for (int i = 0; i < 160; i++) {
        size_t used = 0;
        int rc = ic_xml_stream_feed(r.s, buf, chunk, &used);
        assert_int_equal(used, chunk);
        if (rc != 0 && failed_at < 0)
            failed_at = i;
        assert_int_equal(rc, i < 4 ? 0 : IC_ESYNTAX);
        memset(buf, 'x', strlen(start));
    }
    assert_int_equal(failed_at, 4);
    assert_string_equal(r.log.data,
                        HDR_OPEN "error policy-violation: a stanza is "
                                 "larger than 262144 bytes\n");
    rec_done(&r);
    ic_free(buf);
}

static void test_big_stanza(void **state)
{
    (void)state;
    big_stanza("<message><body>");
    /* One huge start tag: expat calls no handler while it grows. */
    big_stanza("<message a='");
    big_stanza("<message><body><![CDATA[");
}

static void test_stanza_size_boundary(void **state)
{
    struct ic_xml_limits l = {.max_stanza_bytes = 100};
    char ok[101], over[102];

    (void)state;
    /* "<m>" + text + "</m>" of exactly 100 bytes passes; 101 does not. */
    memset(ok, 'x', sizeof(ok));
    memcpy(ok, "<m>", 3);
    memcpy(ok + 96, "</m>", 5);
    memset(over, 'x', sizeof(over));
    memcpy(over, "<m>", 3);
    memcpy(over + 97, "</m>", 5);
    for (size_t chunk = 0; chunk <= 1; chunk++) {
        struct rec r;
        rec_init(&r, &l);
        assert_int_equal(feed(&r, "<stream:stream xmlns:stream='"
                                  "http://etherx.jabber.org/streams'>"),
                         0);
        assert_int_equal(feed_chunks(&r, ok, 100, chunk), 0);
        assert_int_equal(feed_chunks(&r, ok, 100, chunk), 0);
        assert_int_equal(r.errors, 0);
        assert_int_equal(r.stanza->children->text_len, 93);
        assert_int_equal(feed_chunks(&r, over, 101, chunk), IC_ESYNTAX);
        assert_int_equal(r.errors, 1);
        assert_int_equal(r.cond, IC_SE_POLICY_VIOLATION);
        rec_done(&r);
    }
    /* Text between stanzas counts from its first byte that is not white
     * space, however expat cut it into events: here the tag after it ends
     * at byte 99 of that unit, so bad-format comes first, whole or byte by
     * byte (found by the fuzzer). */
    char junk[200];
    snprintf(junk, sizeof(junk),
             "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'"
             ">\n    %095d<a/>",
             0);
    expect(&l, junk,
           "open <stream:stream xmlns:stream='http://etherx.jabber.org/"
           "streams'/>\nerror bad-format: text between stanzas\n");
    /* The header is a unit too. */
    expect_error(&l,
                 "<stream:stream xmlns:stream='http://etherx.jabber.org/"
                 "streams' to='aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'>",
                 "", IC_SE_POLICY_VIOLATION);
}

static void test_depth(void **state)
{
    struct ic_xml_limits l = {.max_depth = 32};
    struct ic_buf doc = {0};

    (void)state;
    ic_buf_puts(&doc, HDR);
    for (int i = 0; i < 32; i++)
        ic_buf_puts(&doc, "<a>");
    for (int i = 0; i < 32; i++)
        ic_buf_puts(&doc, "</a>");
    /* 32 levels pass... */
    for (size_t chunk = 0; chunk <= 1; chunk++) {
        struct rec r;
        rec_init(&r, &l);
        assert_int_equal(feed_chunks(&r, doc.data, doc.len, chunk), 0);
        assert_int_equal(r.errors, 0);
        assert_non_null(r.stanza);
        rec_done(&r);
    }
    /* ...33 or 100 do not. */
    for (int depth = 33; depth <= 100; depth += 67) {
        ic_buf_reset(&doc);
        ic_buf_puts(&doc, HDR);
        for (int i = 0; i < depth; i++)
            ic_buf_puts(&doc, "<a>");
        for (int i = 0; i < depth; i++)
            ic_buf_puts(&doc, "</a>");
        expect(&l, doc.data,
               HDR_OPEN "error policy-violation: a stanza is nested deeper "
                        "than 32\n");
    }
    ic_buf_free(&doc);
}

static void test_children(void **state)
{
    struct ic_xml_limits l = {.max_children = 1000};
    struct ic_buf doc = {0};
    struct rec r;
    int n = 0;

    (void)state;
    ic_buf_puts(&doc, HDR "<message>");
    for (int i = 0; i < 10000; i++)
        ic_buf_puts(&doc, "<b/>");
    ic_buf_puts(&doc, "</message>");
    expect(&l, doc.data,
           HDR_OPEN "error policy-violation: an element has more than 1000 "
                    "children\n");
    /* Text nodes count as children too: 1000 elements + 1 text. */
    ic_buf_reset(&doc);
    ic_buf_puts(&doc, HDR "<message>");
    for (int i = 0; i < 1000; i++)
        ic_buf_puts(&doc, "<b/>");
    ic_buf_puts(&doc, "tail</message>");
    expect_error(&l, doc.data, HDR_OPEN, IC_SE_POLICY_VIOLATION);
    /* With the default limit the 10000 arrive. */
    ic_buf_reset(&doc);
    ic_buf_puts(&doc, HDR "<message>");
    for (int i = 0; i < 10000; i++)
        ic_buf_puts(&doc, "<b/>");
    ic_buf_puts(&doc, "</message>");
    rec_init(&r, NULL);
    assert_int_equal(feed(&r, doc.data), 0);
    for (struct ic_xml *c = r.stanza->children; c != NULL; c = c->next)
        n++;
    assert_int_equal(n, 10000);
    rec_done(&r);
    ic_buf_free(&doc);
}

static void test_attrs_limit(void **state)
{
    struct ic_xml_limits l = {.max_attrs = 8};
    struct rec r;

    (void)state;
    expect(&l,
           HDR "<m a='1' b='2' c='3' d='4' e='5' f='6' g='7' h='8'/>"
               "<m a='1' b='2' c='3' d='4' e='5' f='6' g='7' h='8' i='9'/>",
           HDR_OPEN "stanza <m a='1' b='2' c='3' d='4' e='5' f='6' g='7' "
                    "h='8'/>\nerror policy-violation: an element has more "
                    "than 8 attributes\n");
    /* Limits can change on a live stream. */
    rec_init(&r, NULL);
    assert_int_equal(feed(&r, HDR "<m a='1' b='2'/>"), 0);
    ic_xml_stream_set_limits(r.s, &(struct ic_xml_limits){.max_attrs = 1});
    assert_int_equal(feed(&r, "<m a='1' b='2'/>"), IC_ESYNTAX);
    assert_int_equal(r.cond, IC_SE_POLICY_VIOLATION);
    rec_done(&r);
}

/* ---------------------------------------------------------------------
 * Stop, reset, free
 */

static void test_starttls_stop(void **state)
{
    static const char buf[] =
        HDR "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>GARBAGE";
    struct rec r;
    size_t used = 0;

    (void)state;
    rec_init(&r, NULL);
    r.stop_at = "starttls";
    assert_int_equal(ic_xml_stream_feed(r.s, buf, strlen(buf), &used), 0);
    assert_int_equal(used, strlen(buf) - strlen("GARBAGE"));
    assert_string_equal(r.log.data,
                        HDR_OPEN "stanza <starttls xmlns='" TLS_NS "'/>\n");
    assert_string_equal(r.stanza->ns, TLS_NS);
    /* Stopped: no more input until a reset. */
    assert_int_equal(ic_xml_stream_feed(r.s, "<iq/>", 5, &used), IC_EINVAL);
    /* After TLS the client opens a new stream. */
    ic_xml_stream_reset(r.s);
    assert_null(ic_xml_stream_content_ns(r.s));
    assert_int_equal(feed(&r, HDR "<iq/>"), 0);
    assert_string_equal(r.log.data, HDR_OPEN "stanza <starttls xmlns='" TLS_NS
                                             "'/>\n" HDR_OPEN "stanza <iq/>\n");
    rec_done(&r);

    /* Byte by byte the stop falls on the feed of the last '>'. */
    rec_init(&r, NULL);
    r.stop_at = "starttls";
    for (size_t i = 0; i < strlen(buf); i++) {
        int rc = ic_xml_stream_feed(r.s, buf + i, 1, &used);
        if (i < strlen(buf) - strlen("GARBAGE")) {
            assert_int_equal(rc, 0);
            assert_int_equal(used, 1);
        } else {
            assert_int_equal(rc, IC_EINVAL);
        }
    }
    assert_non_null(r.stanza);
    rec_done(&r);

    /* Stopping a non-empty stanza: just after its end tag. */
    rec_init(&r, NULL);
    r.stop_at = "a";
    assert_int_equal(
        ic_xml_stream_feed(r.s, HDR "<a><b/></a><c/>", strlen(HDR) + 15, &used),
        0);
    assert_int_equal(used, strlen(HDR) + 11);
    rec_done(&r);
}

static void test_stop_on_open(void **state)
{
    struct rec r;
    size_t used = 0;

    (void)state;
    rec_init(&r, NULL);
    r.stop_on_open = true;
    assert_int_equal(
        ic_xml_stream_feed(r.s, HDR "<iq/>", strlen(HDR) + 5, &used), 0);
    assert_int_equal(used, strlen(HDR));
    assert_string_equal(r.log.data, HDR_OPEN);
    rec_done(&r);
    /* An empty root stopped at its start is not closed as well. */
    rec_init(&r, NULL);
    r.stop_on_open = true;
    assert_int_equal(feed(&r, "<s:stream xmlns:s='"
                              "http://etherx.jabber.org/streams'/>"),
                     0);
    assert_null(strstr(r.log.data, "close"));
    rec_done(&r);
}

/* SASL success: the client's new header follows <auth/> in the same
 * read; the stream is reset from the callback and the rest fed again. */
#define AUTH                                                            \
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" \
    "AGp1bGlldAByMG0zMG15cjBtMzA=</auth>"
#define BIND "<iq type='set' id='b'><bind xmlns='" IC_NS_BIND "'/></iq>"

static void test_sasl_restart(void **state)
{
    static const char buf[] = HDR AUTH HDR BIND;
    const size_t first = strlen(HDR AUTH);
    struct rec r;
    size_t used = 0;

    (void)state;
    rec_init(&r, NULL);
    r.reset_at = "auth";
    assert_int_equal(ic_xml_stream_feed(r.s, buf, strlen(buf), &used), 0);
    assert_int_equal(used, first);
    assert_null(ic_xml_stream_content_ns(r.s)); /* a fresh stream */
    assert_int_equal(
        ic_xml_stream_feed(r.s, buf + first, strlen(buf) - first, &used), 0);
    assert_int_equal(used, strlen(buf) - first);
    assert_string_equal(r.log.data, HDR_OPEN "stanza " AUTH "\n" HDR_OPEN
                                             "stanza " BIND "\n");
    assert_string_equal(ic_xml_stream_content_ns(r.s), IC_NS_CLIENT);
    rec_done(&r);

    /* Stop then reset in the same callback: the same outcome. */
    rec_init(&r, NULL);
    r.stop_at = "auth";
    r.reset_at = "auth";
    assert_int_equal(ic_xml_stream_feed(r.s, buf, strlen(buf), &used), 0);
    assert_int_equal(used, first);
    assert_int_equal(feed(&r, buf + first), 0);
    assert_int_equal(r.errors, 0);
    assert_string_equal(r.stanza->name, "iq");
    rec_done(&r);
}

static void test_free_in_callback(void **state)
{
    struct rec r;
    size_t used = 0;

    (void)state;
    rec_init(&r, NULL);
    r.free_at = "iq";
    assert_int_equal(ic_xml_stream_feed(r.s, HDR "<iq/><iq/><message/>",
                                        strlen(HDR) + 20, &used),
                     0);
    assert_null(r.s);
    assert_string_equal(r.log.data, HDR_OPEN "stanza <iq/>\n");
    rec_done(&r);
}

/* Reset outside a callback drops a half-read stanza and the header. */
static void test_reset_midway(void **state)
{
    struct rec r;

    (void)state;
    rec_init(&r, NULL);
    assert_int_equal(feed(&r, HDR "<message><body>half"), 0);
    ic_xml_stream_reset(r.s);
    assert_int_equal(feed(&r, HDR "<iq/>"), 0);
    assert_string_equal(r.log.data, HDR_OPEN HDR_OPEN "stanza <iq/>\n");
    rec_done(&r);
}

/* Between stanzas a stream parks (gives its parser up) when a feed ends
 * cleanly; byte by byte that is after nearly every byte. The rebuilt
 * parser must keep the header's prefixes (here "s" and "p", with a
 * namespace holding a newline), match its close tag, and report errors at
 * the stream's own line and column. */
static void test_park(void **state)
{
    (void)state;
    expect(NULL,
           "<s:stream xmlns:s='http://etherx.jabber.org/streams' "
           "xmlns='jabber:server' xmlns:p='urn:p&#10;&apos;x'>\n<iq/>\n"
           "<p:x p:a='1'/> <message><p:y/></message>\n</s:stream>",
           "open <stream:stream xmlns:stream='http://etherx.jabber.org/"
           "streams'/>\n"
           "stanza <iq xmlns='jabber:server'/>\n"
           "stanza <x xmlns='urn:p&#10;&apos;x' xmlns:ns1='urn:p&#10;&apos;x' "
           "ns1:a='1'/>\n"
           "stanza <message xmlns='jabber:server'><y xmlns='urn:p&#10;&apos;x'"
           "/></message>\n"
           "close\n");
    expect(NULL, HDR "\n<iq/>\n  <a></b>",
           HDR_OPEN "stanza <iq/>\nerror not-well-formed: mismatched tag at "
                    "line 3, column 7\n");
    expect(NULL, HDR "<iq/><iq/>\xC3\xA9<a></b>",
           HDR_OPEN "stanza <iq/>\nstanza <iq/>\nerror bad-format: text "
                    "between stanzas\n");
    expect(NULL, HDR "<iq/><iq/> <a></b>",
           HDR_OPEN "stanza <iq/>\nstanza <iq/>\nerror not-well-formed: "
                    "mismatched tag at line 1, column 175\n");
    assert_int_equal(strlen(HDR "<iq/><iq/> <a></"), 175);
}

/* With auto-trim off the parser stays between feeds; ic_xml_stream_trim()
 * parks it, and the stream goes on exactly as when it parks by itself. */
static void test_manual_trim(void **state)
{
    const char *parts[] = {HDR, "<iq/>", "<message><body>x</body>",
                           "</message>", "<iq/></stream:stream>"};
    struct rec a, b;

    (void)state;
    rec_init(&a, NULL);
    rec_init(&b, NULL);
    ic_xml_stream_set_auto_trim(b.s, false);
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        assert_int_equal(feed(&a, parts[i]), 0);
        assert_int_equal(feed(&b, parts[i]), 0);
        ic_xml_stream_trim(b.s); /* mid-stanza after part 2: no effect */
    }
    assert_string_equal(a.log.data, b.log.data);
    assert_int_equal(b.errors, 0);
    rec_done(&a);
    rec_done(&b);
}

/* A parked stream's parser is reset and kept for the next stream that
 * needs one (the thread's spares). Interleaved streams therefore take
 * turns with the same parser: each must see only its own header's
 * prefixes, the prefixes its own stanzas declare must not outlive them,
 * and positions stay each stream's own. */
static void test_spare_parsers(void **state)
{
    struct rec a, b;

    (void)state;
    rec_init(&a, NULL);
    rec_init(&b, NULL);
    assert_int_equal(feed(&a, "<s:stream xmlns:s='http://etherx.jabber.org/"
                              "streams' xmlns='jabber:server' "
                              "xmlns:p='urn:p'>"),
                     0);
    assert_int_equal(feed(&b, HDR), 0);
    assert_int_equal(feed(&a, "<p:x/>"), 0);
    assert_int_equal(feed(&b, "<iq><q:y xmlns:q='urn:q'/></iq>"), 0);
    assert_int_equal(feed(&a, "\n<iq/>"), 0);
    assert_int_equal(feed(&a, "<q:y/>"), IC_ESYNTAX); /* b's, not a's */
    assert_int_equal(feed(&b, "<p:x/>"), IC_ESYNTAX); /* a's, not b's */
    assert_string_equal(a.log.data,
                        "open <stream:stream xmlns:stream='http://etherx."
                        "jabber.org/streams'/>\n"
                        "stanza <x xmlns='urn:p'/>\n"
                        "stanza <iq xmlns='jabber:server'/>\n"
                        "error not-well-formed: unbound prefix at line 2, "
                        "column 5\n");
    assert_string_equal(b.log.data,
                        HDR_OPEN "stanza <iq><y xmlns='urn:q'/></iq>\n"
                                 "error not-well-formed: unbound prefix at "
                                 "line 1, column 190\n");
    rec_done(&a);
    rec_done(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_client_stream),
        cmocka_unit_test(test_seed_header),
        cmocka_unit_test(test_keepalives),
        cmocka_unit_test(test_close),
        cmocka_unit_test(test_encoding_declared),
        cmocka_unit_test(test_seed_request),
        cmocka_unit_test(test_restricted),
        cmocka_unit_test(test_not_well_formed),
        cmocka_unit_test(test_bad_root),
        cmocka_unit_test(test_bad_encoding),
        cmocka_unit_test(test_big_stanza),
        cmocka_unit_test(test_stanza_size_boundary),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_children),
        cmocka_unit_test(test_attrs_limit),
        cmocka_unit_test(test_starttls_stop),
        cmocka_unit_test(test_stop_on_open),
        cmocka_unit_test(test_sasl_restart),
        cmocka_unit_test(test_free_in_callback),
        cmocka_unit_test(test_reset_midway),
        cmocka_unit_test(test_park),
        cmocka_unit_test(test_manual_trim),
        cmocka_unit_test(test_spare_parsers),
    };

    return cmocka_run_group_tests_name("xmpp_stream", tests, NULL, NULL);
}
