/*
 * stream.c - the XML stream parser (RFC 6120 section 4) on expat.
 *
 * Happy path: ic_xml_stream_feed() hands the bytes to expat in slices.
 * The root <stream:stream> start tag becomes on_open (an ic_xml header),
 * each complete first-level element is built into a tree and handed to
 * on_stanza, whitespace between stanzas (keepalives) is dropped, and
 * </stream:stream> is on_close. A callback may stop the parser at the
 * event it is handling (STARTTLS, SASL success); the feed then reports how
 * many bytes it used, and after ic_xml_stream_reset() the rest can be fed
 * to a fresh stream.
 *
 * Failure modes: each ends the stream with exactly one on_error, after
 * which nothing more is delivered and input is ignored.
 *  - DOCTYPE, entity declaration, comment, processing instruction:
 *    restricted-xml (RFC 6120 11.1). A DOCTYPE is refused as soon as it
 *    starts, so no DTD (and no entity) is ever processed.
 *  - an XML declaration naming another encoding than UTF-8, or a stream
 *    starting with a UTF-16/32 byte order mark or a NUL: unsupported-
 *    encoding. The parser is created with the encoding forced to UTF-8,
 *    but expat would still honour a UTF-16 BOM.
 *  - a top-level unit (stream header, stanza) longer than
 *    max_stanza_bytes: policy-violation. Bytes are counted before expat
 *    sees them, and a chunk is fed only up to the limit, so an oversized
 *    stanza is never buffered whole; this also bounds a huge start tag,
 *    for which expat calls no handler until it is complete.
 *  - nesting, children or attributes beyond the limits: policy-violation.
 *  - malformed XML: not-well-formed with expat's message and position.
 *  - a root other than {http://etherx.jabber.org/streams}stream:
 *    invalid-namespace (RFC 6120 4.8.1).
 *  - character data between stanzas other than whitespace: bad-format. It
 *    is well-formed XML, so not-well-formed would be wrong; RFC 6120 only
 *    allows whitespace there (11.7), and bad-format is its condition for
 *    XML that "cannot be processed". It is raised at the next tag, not at
 *    once: expat hands out text before checking all of it ("]]>" is
 *    refused whole but not byte by byte), and waiting lets expat's verdict
 *    on the same bytes come first, so the error does not depend on how the
 *    input was split. Until then the text counts against the size limit.
 *
 * Expat settings: namespaces on, with 0xFF as separator (a byte that never
 * occurs in UTF-8, so no namespace URI or name can hold it; a URI like
 * ' http://www.csp/resOntology' with a leading space is kept verbatim);
 * billion-laughs and allocation limits; reparse deferral OFF. Deferral
 * (expat >= 2.6 and backports) holds a partial token back until the
 * buffered data has doubled, so a complete stanza whose last bytes arrive
 * in a small read would wait for the peer's next data: wrong for an
 * interactive protocol. Its job, bounding re-scans of one huge token, is
 * done here by max_stanza_bytes.
 *
 * Memory: a parser that has read a stream header holds about 11 KiB
 * (string pools, hash tables, its input buffer, which never shrinks) and
 * its tables keep every element and attribute name the peer ever sent.
 * So a feed that ends cleanly between stanzas (no partial token, no open
 * stanza) "parks" the stream: its parser is reset and kept as one of the
 * thread's spares (below), and only a synthetic copy of the header's
 * start tag (QName and namespace declarations) stays with the stream; an
 * idle stream is about 420 bytes. The next feed takes a spare (or builds
 * a parser) and primes it with that copy, so the namespace context and
 * the match for </stream:stream> are as before; this costs about 2 us per
 * feed (one hash salt per stream spares expat a getrandom call), and on a
 * server with many busy connections it is cheaper than keeping a parser
 * per connection: the spares are in cache, a connection's own parser is
 * not by the time its next stanza comes (bench/cluster at 1000 clients:
 * about 8 % less CPU per publish). The spares hold at most SPARES_MAX
 * parsers per thread, each with the buffer and pools of the largest
 * stanza it parsed (max_stanza_bytes at most).
 * Positions (bytes, line/column in errors) stay the stream's throughout.
 * A parser is also made only when data comes, and dropped once the stream
 * has failed, closed or stopped. Slices of at most SLICE bytes keep the
 * input buffer of a busy parser small.
 *
 * Callbacks run inside expat. They may call ic_xml_stream_stop(),
 * ic_xml_stream_reset() (which stops too: the running parser is freed when
 * the feed returns) and ic_xml_stream_free() (deferred the same way).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* expat.h declares the billion-laughs and allocation-tracker setters only
 * for code that defines XML_DTD; Debian's libexpat is built with it (and
 * with the allocation tracker backported to 2.5.0). */
#ifndef XML_DTD
#define XML_DTD 1
#endif
#include <expat.h>

#include "ic_xmpp.h"

#define NS_SEP '\xFF'
#define XML_NS_URI "http://www.w3.org/XML/1998/namespace"
#define SLICE 2048

/* Used for zero fields of struct ic_xml_limits (or a NULL one). */
#define DEFAULT_MAX_STANZA_BYTES (256u * 1024u)
#define DEFAULT_MAX_DEPTH 32u
#define DEFAULT_MAX_CHILDREN 10000u
#define DEFAULT_MAX_ATTRS 64u

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

enum state {
    LIVE,
    STOPPED, /* a callback stopped it: only a reset brings it back */
    CLOSED,  /* </stream:stream> seen: input is ignored */
    FAILED,  /* on_error called: input is ignored */
};

struct ic_xml_stream {
    XML_Parser p;      /* NULL until data comes, and while parked */
    XML_Parser zombie; /* replaced inside a callback: freed after feed */
    bool keep_parser;  /* park only on ic_xml_stream_trim() */
    struct ic_xml_stream_cbs cbs;
    void *data;
    struct ic_xml_limits limits;
    enum state state;
    unsigned depth;     /* open elements, the stream header included */
    struct ic_xml *cur; /* element being built, NULL between stanzas */
    struct ic_buf text; /* character data not yet added to cur */
    unsigned *kids;     /* child nodes per open stanza level */
    unsigned kids_cap;
    char *content_ns;    /* default namespace of the stream header */
    unsigned long salt;  /* expat's hash salt, drawn once per stream */
    struct ic_buf prime; /* the header's start tag, rebuilt (see above) */
    bool priming;        /* parsing PRIME: the handlers stay quiet */
    /* Positions are the stream's: bytes since its start, and line/column.
     * A parser primed after parking starts counting at the prime; these
     * translate. */
    uint64_t total;          /* bytes fed to this stream */
    uint64_t unit_start;     /* where the current top-level unit began */
    int64_t index_base;      /* stream position of parser byte 0 */
    unsigned long line_base; /* stream line of parser line 1 */
    unsigned long col_base;  /* stream column where parser line 1 resumes */
    unsigned long prime_col; /* parser column after the prime */
    /* The slice being parsed, and what this feed has to report. */
    uint64_t slice_base;
    size_t slice_off;
    size_t slice_len;
    size_t stop_off;
    bool in_feed;
    bool in_parse;
    bool halt; /* no handler may act until the feed returns */
    bool junk; /* text between stanzas, refused at the next tag */
    bool have_stop;
    bool feed_failed;
    bool free_pending;
};

static const char *const error_names[] = {
#define IC__SE_NAME(name, e) name,
    IC_STREAM_ERRORS(IC__SE_NAME)
#undef IC__SE_NAME
};

const char *ic_stream_error_name(enum ic_stream_error e)
{
    if ((unsigned)e >= IC_ARRAY_LEN(error_names))
        return "undefined-condition";
    return error_names[e];
}

/* ---------------------------------------------------------------------
 * Stopping and failing
 */

/* The stream offset just after the event being handled. */
static uint64_t event_end(const struct ic_xml_stream *s)
{
    XML_Index end = XML_GetCurrentByteIndex(s->p);

    if (end < 0)
        return s->total;
    end += XML_GetCurrentByteCount(s->p);
    return (uint64_t)(end + s->index_base);
}

/* Records where this feed stops: just after the current event. */
static void mark_stop(struct ic_xml_stream *s)
{
    uint64_t end = event_end(s);
    size_t in_slice = 0;

    if (end > s->slice_base)
        in_slice = (size_t)(end - s->slice_base);
    if (in_slice > s->slice_len)
        in_slice = s->slice_len;
    s->stop_off = s->slice_off + in_slice;
    s->have_stop = true;
}

/* Expat may still call a handler for the token it is in (the end of an
 * empty element after its start); HALT makes every handler ignore it. */
static void halt_parser(struct ic_xml_stream *s)
{
    if (s->halt)
        return;
    s->halt = true;
    if (s->in_parse)
        XML_StopParser(s->p, XML_FALSE);
}

static void drop_stanza(struct ic_xml_stream *s)
{
    struct ic_xml *root = s->cur;

    if (root != NULL) {
        while (root->parent != NULL)
            root = root->parent;
        ic_xml_free(root);
        s->cur = NULL;
    }
    ic_buf_free(&s->text);
}

PRINTF_LIKE(3, 4)
static void
fail(struct ic_xml_stream *s, enum ic_stream_error cond, const char *fmt, ...)
{
    char text[256];
    va_list ap;

    if (s->halt)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    s->state = FAILED;
    s->feed_failed = true;
    halt_parser(s);
    drop_stanza(s);
    if (s->cbs.on_error != NULL)
        s->cbs.on_error(s->data, cond, text);
}

/* ---------------------------------------------------------------------
 * Building elements
 */

/* Expat's names are "URI<sep>local<sep>prefix", "URI<sep>local" or
 * "local" (triplets are on); the separator is in no URI and no name. */
struct qname {
    const char *uri; /* NULL when none */
    size_t uri_len;
    const char *local;
    size_t local_len;
    const char *prefix; /* NULL when none */
};

static struct qname split_name(const char *q)
{
    struct qname n = {.local = q, .local_len = strlen(q)};
    const char *sep = strchr(q, NS_SEP);

    if (sep == NULL)
        return n;
    n.uri = q;
    n.uri_len = (size_t)(sep - q);
    n.local = sep + 1;
    sep = strchr(n.local, NS_SEP);
    n.local_len = sep != NULL ? (size_t)(sep - n.local) : strlen(n.local);
    n.prefix = sep != NULL ? sep + 1 : NULL;
    return n;
}

static struct ic_xml *element_new(const char *qname)
{
    struct qname n = split_name(qname);

    return ic_xml_new_n(n.local, n.local_len, n.uri, n.uri_len);
}

/* The tree's spelling of an attribute name: "xml:lang", "URI|local" or
 * "local". */
static char *attr_name(const char *qname)
{
    struct qname n = split_name(qname);
    struct ic_buf b = {0};

    if (n.uri == NULL)
        return ic_strdup(qname);
    if (n.uri_len == strlen(XML_NS_URI) &&
        memcmp(n.uri, XML_NS_URI, n.uri_len) == 0) {
        ic_buf_puts(&b, "xml:");
    } else {
        ic_buf_append(&b, n.uri, n.uri_len);
        ic_buf_puts(&b, "|");
    }
    ic_buf_append(&b, n.local, n.local_len);
    return b.data;
}

/* The element of a start tag, or NULL (after on_error) when it has too
 * many attributes. Expat has already refused duplicates. */
static struct ic_xml *
start_tag(struct ic_xml_stream *s, const char *qname, const char **atts)
{
    struct ic_xml_attr **tail;
    struct ic_xml *x;
    unsigned n = 0;

    for (const char **a = atts; *a != NULL; a += 2)
        n++;
    if (n > s->limits.max_attrs) {
        fail(s, IC_SE_POLICY_VIOLATION,
             "an element has more than %u attributes", s->limits.max_attrs);
        return NULL;
    }
    x = element_new(qname);
    tail = &x->attrs;
    for (const char **a = atts; *a != NULL; a += 2) {
        struct ic_xml_attr *attr;
        if (strchr(a[0], NS_SEP) == NULL) { /* the usual: no namespace */
            attr = ic_xml_attr_new_n(a[0], strlen(a[0]), a[1], strlen(a[1]));
        } else {
            char *name = attr_name(a[0]);
            attr = ic_xml_attr_new_n(name, strlen(name), a[1], strlen(a[1]));
            ic_free(name);
        }
        *tail = attr;
        tail = &attr->next;
    }
    return x;
}

/* Counts one more child of the element at stanza level LEVEL. */
static bool count_child(struct ic_xml_stream *s, unsigned level)
{
    if (++s->kids[level - 1] <= s->limits.max_children)
        return true;
    fail(s, IC_SE_POLICY_VIOLATION, "an element has more than %u children",
         s->limits.max_children);
    return false;
}

/* A text buffer up to this size is kept for the stream's next text. */
#define TEXT_KEEP 4096

/* Copies the gathered character data into cur as one text node. */
static bool flush_text(struct ic_xml_stream *s)
{
    struct ic_xml *t;

    if (s->text.len == 0)
        return true;
    if (!count_child(s, s->depth - 1))
        return false;
    t = ic_xml_new_text(s->text.data, s->text.len);
    if (s->text.cap > TEXT_KEEP)
        ic_buf_free(&s->text);
    else
        ic_buf_reset(&s->text); /* kept for the next text */
    ic_xml_append(s->cur, t);
    return true;
}

static void grow_kids(struct ic_xml_stream *s, unsigned level)
{
    unsigned cap = s->kids_cap != 0 ? s->kids_cap : 8;

    while (cap < level)
        cap *= 2;
    s->kids = ic_realloc(s->kids, cap * sizeof(*s->kids));
    s->kids_cap = cap;
}

/* ---------------------------------------------------------------------
 * Expat handlers
 */

/* Escapes an attribute value so that it reads back the same (white space
 * other than ' ' would be normalized to ' '). */
static void put_value(struct ic_buf *b, const char *v)
{
    static const char *const rep[] = {
        ['&'] = "&amp;", ['<'] = "&lt;",   ['\''] = "&apos;",
        ['\t'] = "&#9;", ['\n'] = "&#10;", ['\r'] = "&#13;",
    };

    for (; *v != '\0'; v++) {
        unsigned char c = (unsigned char)*v;
        if (c < IC_ARRAY_LEN(rep) && rep[c] != NULL)
            ic_buf_puts(b, rep[c]);
        else
            ic_buf_append(b, v, 1);
    }
}

/* Wraps the header's namespace declarations (gathered in PRIME) into the
 * start tag "<PREFIX:stream DECLS>" that a new parser is primed with. */
static void finish_prime(struct ic_xml_stream *s, const char *qname)
{
    struct qname n = split_name(qname);
    struct ic_buf b = {0};

    ic_buf_puts(&b, "<");
    if (n.prefix != NULL) {
        ic_buf_puts(&b, n.prefix);
        ic_buf_puts(&b, ":");
    }
    ic_buf_puts(&b, "stream");
    if (s->prime.len > 0)
        ic_buf_append(&b, s->prime.data, s->prime.len);
    ic_buf_puts(&b, ">");
    ic_buf_free(&s->prime);
    b.data = ic_realloc(b.data, b.len + 1); /* kept for the stream's life */
    b.cap = b.len + 1;
    s->prime = b;
}

static void
open_stream(struct ic_xml_stream *s, const char *qname, const char **atts)
{
    struct ic_xml *h = start_tag(s, qname, atts);

    if (h == NULL)
        return;
    if (h->ns == NULL || strcmp(h->ns, IC_NS_STREAMS) != 0 ||
        strcmp(h->name, "stream") != 0) {
        ic_xml_free(h);
        fail(s, IC_SE_INVALID_NAMESPACE,
             "the root element is not {" IC_NS_STREAMS "}stream");
        return;
    }
    finish_prime(s, qname);
    s->depth = 1;
    s->unit_start = event_end(s);
    if (s->cbs.on_open != NULL)
        s->cbs.on_open(s->data, h);
    else
        ic_xml_free(h);
}

static void
open_element(struct ic_xml_stream *s, const char *qname, const char **atts)
{
    unsigned level = s->depth; /* 1 for a stanza */
    struct ic_xml *x;

    if (level > s->limits.max_depth) {
        fail(s, IC_SE_POLICY_VIOLATION, "a stanza is nested deeper than %u",
             s->limits.max_depth);
        return;
    }
    if (s->cur != NULL && (!flush_text(s) || !count_child(s, level - 1)))
        return;
    x = start_tag(s, qname, atts);
    if (x == NULL)
        return;
    if (s->cur != NULL)
        ic_xml_append(s->cur, x);
    s->cur = x;
    if (level > s->kids_cap)
        grow_kids(s, level);
    s->kids[level - 1] = 0;
    s->depth++;
}

static void XMLCALL on_start(void *ud,
                             const XML_Char *qname,
                             const XML_Char **atts)
{
    struct ic_xml_stream *s = ud;

    if (s->halt || s->priming)
        return;
    if (s->junk) {
        fail(s, IC_SE_BAD_FORMAT, "text between stanzas");
        return;
    }
    if (s->depth == 0)
        open_stream(s, qname, atts);
    else
        open_element(s, qname, atts);
}

static void close_stream(struct ic_xml_stream *s)
{
    s->depth = 0;
    s->state = CLOSED;
    /* Whatever follows the root is not ours to judge (or to parse). */
    halt_parser(s);
    if (s->cbs.on_close != NULL)
        s->cbs.on_close(s->data);
}

static void XMLCALL on_end(void *ud, const XML_Char *qname)
{
    struct ic_xml_stream *s = ud;
    struct ic_xml *x;

    (void)qname; /* expat has matched it with the start tag */
    if (s->halt)
        return;
    if (s->depth == 1) {
        if (s->junk)
            fail(s, IC_SE_BAD_FORMAT, "text between stanzas");
        else
            close_stream(s);
        return;
    }
    if (!flush_text(s))
        return;
    s->depth--;
    x = s->cur;
    s->cur = x->parent;
    if (s->cur != NULL)
        return;
    s->unit_start = event_end(s);
    if (s->cbs.on_stanza != NULL)
        s->cbs.on_stanza(s->data, x);
    else
        ic_xml_free(x);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool all_space(const char *t, int len)
{
    for (int i = 0; i < len; i++) {
        if (!is_space(t[i]))
            return false;
    }
    return true;
}

/* Where the first raw byte that is not white space lies in the current
 * event. Expat may deliver "\n  junk" as one event or three, so a unit
 * cut there gives the same limits however the input was split. */
static uint64_t first_non_space(const struct ic_xml_stream *s)
{
    XML_Index start = XML_GetCurrentByteIndex(s->p);
    int n = XML_GetCurrentByteCount(s->p);
    int off, size, i = 0;
    const char *raw = XML_GetInputContext(s->p, &off, &size);

    while (raw != NULL && i < n && off + i < size && is_space(raw[off + i]))
        i++;
    return (uint64_t)(start + s->index_base) + (uint64_t)i;
}

static void XMLCALL on_text(void *ud, const XML_Char *t, int len)
{
    struct ic_xml_stream *s = ud;

    if (s->halt)
        return;
    if (s->cur != NULL) {
        ic_buf_append(&s->text, t, (size_t)len);
        return;
    }
    if (s->junk)
        return;
    if (all_space(t, len)) {
        s->unit_start = event_end(s); /* a keepalive ends a unit */
        return;
    }
    s->junk = true;
    s->unit_start = first_non_space(s);
}

static bool ascii_caseeq(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char ca = *a >= 'a' && *a <= 'z' ? (char)(*a - 'a' + 'A') : *a;
        char cb = *b >= 'a' && *b <= 'z' ? (char)(*b - 'a' + 'A') : *b;
        if (ca != cb)
            return false;
    }
    return *a == *b;
}

static void XMLCALL on_xml_decl(void *ud,
                                const XML_Char *version,
                                const XML_Char *encoding,
                                int standalone)
{
    struct ic_xml_stream *s = ud;

    (void)version;
    (void)standalone;
    if (s->halt || encoding == NULL || ascii_caseeq(encoding, "UTF-8"))
        return;
    fail(s, IC_SE_UNSUPPORTED_ENCODING, "encoding '%.40s' is not UTF-8",
         encoding);
}

static void XMLCALL on_doctype(void *ud,
                               const XML_Char *name,
                               const XML_Char *sysid,
                               const XML_Char *pubid,
                               int has_internal_subset)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal_subset;
    fail(ud, IC_SE_RESTRICTED_XML, "a DOCTYPE is not allowed");
}

static void XMLCALL on_entity(void *ud,
                              const XML_Char *name,
                              int is_param,
                              const XML_Char *value,
                              int value_len,
                              const XML_Char *base,
                              const XML_Char *sysid,
                              const XML_Char *pubid,
                              const XML_Char *notation)
{
    (void)name;
    (void)is_param;
    (void)value;
    (void)value_len;
    (void)base;
    (void)sysid;
    (void)pubid;
    (void)notation;
    fail(ud, IC_SE_RESTRICTED_XML, "an entity declaration is not allowed");
}

static void XMLCALL on_comment(void *ud, const XML_Char *text)
{
    (void)text;
    fail(ud, IC_SE_RESTRICTED_XML, "a comment is not allowed");
}

static void XMLCALL on_pi(void *ud,
                          const XML_Char *target,
                          const XML_Char *data)
{
    (void)target;
    (void)data;
    fail(ud, IC_SE_RESTRICTED_XML, "a processing instruction is not allowed");
}

/* Records the header's namespace declarations, for the prime and for the
 * content namespace (the default one). */
static void XMLCALL on_ns_decl(void *ud,
                               const XML_Char *prefix,
                               const XML_Char *uri)
{
    struct ic_xml_stream *s = ud;

    if (s->halt || s->priming || s->depth != 0)
        return;
    ic_buf_puts(&s->prime, " xmlns");
    if (prefix != NULL) {
        ic_buf_puts(&s->prime, ":");
        ic_buf_puts(&s->prime, prefix);
    }
    ic_buf_puts(&s->prime, "='");
    put_value(&s->prime, uri != NULL ? uri : "");
    ic_buf_puts(&s->prime, "'");
    if (prefix == NULL) {
        ic_free(s->content_ns);
        s->content_ns = uri != NULL ? ic_strdup(uri) : NULL;
    }
}

/* ---------------------------------------------------------------------
 * Life cycle
 */

/* Sets P up for S: handlers, salt and limits (a reset clears them all). */
static void parser_setup(struct ic_xml_stream *s, XML_Parser p)
{
    XML_SetUserData(p, s);
    /* Expat would draw a salt with a system call for every parser. */
    if (s->salt != 0)
        XML_SetHashSalt(p, s->salt);
    XML_SetReturnNSTriplet(p, XML_TRUE); /* the header's prefix, for PRIME */
    XML_SetElementHandler(p, on_start, on_end);
    XML_SetCharacterDataHandler(p, on_text);
    XML_SetXmlDeclHandler(p, on_xml_decl);
    XML_SetStartDoctypeDeclHandler(p, on_doctype);
    XML_SetEntityDeclHandler(p, on_entity);
    XML_SetCommentHandler(p, on_comment);
    XML_SetProcessingInstructionHandler(p, on_pi);
    XML_SetStartNamespaceDeclHandler(p, on_ns_decl);
    XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
    XML_SetBillionLaughsAttackProtectionMaximumAmplification(p, 10.0f);
    XML_SetBillionLaughsAttackProtectionActivationThreshold(p, 1u << 20);
    XML_SetAllocTrackerMaximumAmplification(p, 100.0f);
    XML_SetAllocTrackerActivationThreshold(p, 4u << 20);
    XML_SetReparseDeferralEnabled(p, XML_FALSE);
}

/* ---- the thread's spare parsers -----------------------------------------
 * A parked stream's parser is reset (emptied, its memory kept) and kept
 * for the next stream that needs one, last in first out: on a busy server
 * a few parsers then serve every stream in turn, in memory that is in
 * cache, where one parser per connection would be cold by the time that
 * connection's next stanza comes. A reset parser keeps nothing of the
 * stream it served. Streams run on their loop's thread, so the spares are
 * the thread's; they are freed when it exits (the main thread's stay
 * reachable until the process ends). */

#define SPARES_MAX 4

struct spares {
    XML_Parser p[SPARES_MAX];
    unsigned n;
};

static pthread_key_t spares_key;
static pthread_once_t spares_once = PTHREAD_ONCE_INIT;

static void spares_free(void *arg)
{
    struct spares *sp = arg;

    while (sp->n > 0)
        XML_ParserFree(sp->p[--sp->n]);
    free(sp);
}

static void spares_init(void)
{
    if (pthread_key_create(&spares_key, spares_free) != 0)
        abort();
}

static struct spares *spares(void)
{
    struct spares *sp;

    pthread_once(&spares_once, spares_init);
    sp = pthread_getspecific(spares_key);
    if (sp == NULL) {
        sp = calloc(1, sizeof *sp); /* freed by spares_free */
        if (sp == NULL || pthread_setspecific(spares_key, sp) != 0)
            abort();
    }
    return sp;
}

/* Gives P up: kept as a spare once reset, or freed. */
static void parser_drop(XML_Parser p)
{
    struct spares *sp = spares();

    if (sp->n < SPARES_MAX && XML_ParserReset(p, "UTF-8") == XML_TRUE)
        sp->p[sp->n++] = p;
    else
        XML_ParserFree(p);
}

static XML_Parser parser_new(struct ic_xml_stream *s)
{
    static const XML_Memory_Handling_Suite mem = {ic_malloc, ic_realloc,
                                                  ic_free};
    static const XML_Char sep[] = {NS_SEP, '\0'};
    struct spares *sp = spares();
    XML_Parser p =
        sp->n > 0 ? sp->p[--sp->n] : XML_ParserCreate_MM("UTF-8", &mem, sep);

    if (p == NULL) /* only when memory is short: ic_malloc aborts first */
        abort();
    parser_setup(s, p);
    return p;
}

/* Forgets the stream: the next byte is the start of a new document. */
static void clear_stream(struct ic_xml_stream *s)
{
    drop_stanza(s);
    ic_free(s->content_ns);
    s->content_ns = NULL;
    ic_buf_free(&s->prime);
    s->state = LIVE;
    s->junk = false;
    s->depth = 0;
    s->total = 0;
    s->unit_start = 0;
    s->index_base = 0;
    s->line_base = 1;
    s->col_base = 0;
    s->prime_col = 0;
}

void ic_xml_stream_set_limits(struct ic_xml_stream *s,
                              const struct ic_xml_limits *limits)
{
    struct ic_xml_limits l = {0};

    if (limits != NULL)
        l = *limits;
    if (l.max_stanza_bytes == 0)
        l.max_stanza_bytes = DEFAULT_MAX_STANZA_BYTES;
    if (l.max_depth == 0)
        l.max_depth = DEFAULT_MAX_DEPTH;
    if (l.max_children == 0)
        l.max_children = DEFAULT_MAX_CHILDREN;
    if (l.max_attrs == 0)
        l.max_attrs = DEFAULT_MAX_ATTRS;
    s->limits = l;
}

struct ic_xml_stream *ic_xml_stream_new(const struct ic_xml_stream_cbs *cbs,
                                        void *data,
                                        const struct ic_xml_limits *limits)
{
    struct ic_xml_stream *s = ic_calloc(1, sizeof(*s));

    s->cbs = *cbs;
    s->data = data;
    ic_xml_stream_set_limits(s, limits);
    clear_stream(s);
    /* On failure expat draws its own salt: 0 means "none". */
    if (getrandom(&s->salt, sizeof(s->salt), GRND_NONBLOCK) !=
        (ssize_t)sizeof(s->salt))
        s->salt = 0;
    return s;
}

static void destroy(struct ic_xml_stream *s)
{
    if (s->p != NULL)
        parser_drop(s->p);
    if (s->zombie != NULL)
        XML_ParserFree(s->zombie);
    clear_stream(s);
    ic_free(s->kids);
    ic_free(s);
}

void ic_xml_stream_free(struct ic_xml_stream *s)
{
    if (s == NULL)
        return;
    if (s->in_feed) {
        halt_parser(s);
        s->free_pending = true;
        return;
    }
    destroy(s);
}

void ic_xml_stream_stop(struct ic_xml_stream *s)
{
    if (!s->in_parse || s->halt)
        return;
    mark_stop(s);
    s->state = STOPPED;
    halt_parser(s);
}

void ic_xml_stream_reset(struct ic_xml_stream *s)
{
    if (s->in_parse) {
        /* Expat is running this parser: stop it here and free it when
         * the feed returns. */
        if (!s->have_stop)
            mark_stop(s);
        halt_parser(s);
        if (s->zombie == NULL) /* else a reset already took it */
            s->zombie = s->p;
    } else if (s->p != NULL) {
        XML_ParserFree(s->p);
    }
    s->p = NULL; /* the next feed makes a fresh one */
    clear_stream(s);
}

/* ---------------------------------------------------------------------
 * Feeding
 */

/* How many bytes may go to expat now: 0 when the current unit has used
 * up max_stanza_bytes. */
static size_t slice_len(const struct ic_xml_stream *s, size_t left)
{
    uint64_t used = s->total - s->unit_start;
    uint64_t max = s->limits.max_stanza_bytes;
    size_t n = left < SLICE ? left : SLICE;

    if (used >= max)
        return 0;
    if (n > max - used)
        n = (size_t)(max - used);
    return n;
}

/* The parser's current line and column (1- and 0-based, as expat counts)
 * in the stream's terms: a primed parser's line 1 holds the prime first. */
static void position(const struct ic_xml_stream *s,
                     unsigned long long *line,
                     unsigned long long *col)
{
    unsigned long long l = XML_GetCurrentLineNumber(s->p);
    unsigned long long c = XML_GetCurrentColumnNumber(s->p);

    if (l <= 1) {
        *line = s->line_base;
        *col = s->col_base + (c > s->prime_col ? c - s->prime_col : 0);
    } else {
        *line = s->line_base + l - 1;
        *col = c;
    }
}

static void parse_error(struct ic_xml_stream *s)
{
    enum XML_Error e = XML_GetErrorCode(s->p);
    enum ic_stream_error cond = IC_SE_NOT_WELL_FORMED;
    unsigned long long line, col;

    if (e == XML_ERROR_NO_MEMORY)
        cond = IC_SE_RESOURCE_CONSTRAINT;
    else if (e == XML_ERROR_AMPLIFICATION_LIMIT_BREACH)
        cond = IC_SE_RESTRICTED_XML;
    position(s, &line, &col);
    fail(s, cond, "%s at line %llu, column %llu", XML_ErrorString(e), line,
         col);
}

/* Whether the parser can go: between stanzas, with every byte fed already
 * turned into events (nothing partial inside expat). */
static bool can_park(const struct ic_xml_stream *s)
{
    return s->p != NULL && s->state == LIVE && s->depth == 1 &&
           s->cur == NULL && !s->junk && s->unit_start == s->total &&
           s->prime.len > 0;
}

static void park(struct ic_xml_stream *s)
{
    unsigned long long line, col;

    position(s, &line, &col); /* after a whole parse: the end */
    s->line_base = (unsigned long)line;
    s->col_base = (unsigned long)col;
    parser_drop(s->p);
    s->p = NULL;
    ic_free(s->kids);
    s->kids = NULL;
    s->kids_cap = 0;
}

/* The parser for the next bytes. A parked stream's is primed with the
 * header's start tag while the handlers stay quiet. */
static void make_parser(struct ic_xml_stream *s)
{
    enum XML_Status st;

    s->p = parser_new(s);
    if (s->depth == 0)
        return; /* a new stream: nothing to restore */
    s->priming = true;
    st = XML_Parse(s->p, s->prime.data, (int)s->prime.len, XML_FALSE);
    s->priming = false;
    s->index_base = (int64_t)s->total - (int64_t)s->prime.len;
    s->prime_col = XML_GetCurrentColumnNumber(s->p);
    if (st != XML_STATUS_OK)
        fail(s, IC_SE_INTERNAL_SERVER_ERROR, "cannot restore the parser");
}

static void
parse_slice(struct ic_xml_stream *s, const char *data, size_t off, size_t n)
{
    enum XML_Status st;

    s->slice_base = s->total;
    s->slice_off = off;
    s->slice_len = n;
    s->total += n; /* before parsing: a reset in a callback zeroes it */
    s->in_parse = true;
    st = XML_Parse(s->p, data, (int)n, XML_FALSE);
    s->in_parse = false;
    if (st == XML_STATUS_ERROR && !s->halt)
        parse_error(s);
}

/* A stream's first two bytes go to expat one at a time, so that expat's
 * encoding detection (which honours a UTF-16 BOM, or a "<\0", even when
 * told UTF-8) sees the same thing however the input is split. Each is
 * checked before expat gets it: a BOM or NUL first, or a NUL second, is
 * UTF-16 or UTF-32. */
static bool check_encoding(struct ic_xml_stream *s, unsigned char c)
{
    bool bad = c == 0x00 || (s->total == 0 && (c == 0xFE || c == 0xFF));

    if (bad)
        fail(s, IC_SE_UNSUPPORTED_ENCODING, "the stream is not UTF-8");
    return !bad;
}

static int finish_feed(struct ic_xml_stream *s, size_t len, size_t *consumed)
{
    bool failed = s->feed_failed;

    s->in_feed = false;
    if (consumed != NULL)
        *consumed = s->have_stop ? s->stop_off : len;
    if (s->zombie != NULL) {
        XML_ParserFree(s->zombie);
        s->zombie = NULL;
    }
    s->have_stop = false;
    s->feed_failed = false;
    s->halt = false;
    if (s->free_pending) {
        destroy(s);
    } else if (!s->keep_parser && can_park(s)) {
        park(s);
    } else if (s->state != LIVE && s->p != NULL) {
        /* Failed, closed or stopped: only a reset makes it useful again
         * (after STARTTLS that waits for a TLS handshake). */
        XML_ParserFree(s->p);
        s->p = NULL;
    }
    return failed ? IC_ESYNTAX : 0;
}

int ic_xml_stream_feed(struct ic_xml_stream *s,
                       const char *buf,
                       size_t len,
                       size_t *consumed)
{
    size_t off = 0;

    if (s->in_feed || s->state == STOPPED)
        return s->in_feed ? IC_EBUSY : IC_EINVAL;
    if (s->state != LIVE) {
        if (consumed != NULL)
            *consumed = len;
        return s->state == FAILED ? IC_ESYNTAX : 0;
    }
    s->in_feed = true;
    if (s->p == NULL && len > 0)
        make_parser(s);
    while (off < len && !s->halt) {
        size_t n = slice_len(s, len - off);
        if (s->total < 2 && n > 0) {
            if (!check_encoding(s, (unsigned char)buf[off]))
                break;
            n = 1;
        }
        if (n == 0) {
            fail(s, IC_SE_POLICY_VIOLATION, "a stanza is larger than %zu bytes",
                 s->limits.max_stanza_bytes);
            break;
        }
        parse_slice(s, buf + off, off, n);
        off += n;
    }
    return finish_feed(s, len, consumed);
}

/* ---- addition to ic_xmpp.h (see the block marked there) ---- */

const char *ic_xml_stream_content_ns(const struct ic_xml_stream *s)
{
    return s->content_ns;
}

void ic_xml_stream_set_auto_trim(struct ic_xml_stream *s, bool auto_trim)
{
    s->keep_parser = !auto_trim;
}

bool ic_xml_stream_trim(struct ic_xml_stream *s)
{
    if (s->in_feed || !can_park(s))
        return false;
    park(s);
    return true;
}
