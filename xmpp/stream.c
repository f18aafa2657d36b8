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
 *    XML that "cannot be processed".
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
 * Memory: expat copies every chunk into its own buffer, which never
 * shrinks; feeding it slices of at most SLICE bytes keeps that buffer
 * about 4 KiB. Partial text of a stanza is gathered in one ic_buf whose
 * memory moves into the tree; nothing big is kept between stanzas.
 *
 * Callbacks run inside expat. They may call ic_xml_stream_stop(),
 * ic_xml_stream_reset() (which stops too: the running parser is freed when
 * the feed returns) and ic_xml_stream_free() (deferred the same way).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    XML_Parser p;
    XML_Parser zombie; /* replaced inside a callback: freed after feed */
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
    uint64_t total;      /* bytes handed to this parser */
    uint64_t unit_start; /* where the current top-level unit began */
    /* The slice being parsed, and what this feed has to report. */
    uint64_t slice_base;
    size_t slice_off;
    size_t slice_len;
    size_t stop_off;
    unsigned char first; /* the stream's first byte */
    bool in_feed;
    bool in_parse;
    bool halt; /* no handler may act until the feed returns */
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
    return (uint64_t)end;
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

/* "URI<sep>local" or "local" from expat into a new element. */
static struct ic_xml *element_new(const char *qname)
{
    const char *sep = strrchr(qname, NS_SEP);
    struct ic_xml *x = ic_calloc(1, sizeof(*x));

    if (sep == NULL) {
        x->name = ic_strdup(qname);
    } else {
        x->ns = ic_strndup(qname, (size_t)(sep - qname));
        x->name = ic_strdup(sep + 1);
    }
    return x;
}

/* The tree's spelling of an attribute name: "xml:lang", "URI|local" or
 * "local". */
static char *attr_name(const char *qname)
{
    const char *sep = strrchr(qname, NS_SEP);
    size_t ulen;
    char *name;

    if (sep == NULL)
        return ic_strdup(qname);
    ulen = (size_t)(sep - qname);
    if (ulen == strlen(XML_NS_URI) && memcmp(qname, XML_NS_URI, ulen) == 0) {
        name = ic_malloc(4 + strlen(sep + 1) + 1);
        memcpy(name, "xml:", 4);
        strcpy(name + 4, sep + 1);
        return name;
    }
    name = ic_strdup(qname);
    name[ulen] = '|';
    return name;
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
        struct ic_xml_attr *attr = ic_calloc(1, sizeof(*attr));
        attr->name = attr_name(a[0]);
        attr->value = ic_strdup(a[1]);
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

/* Moves the gathered character data into cur as one text node. */
static bool flush_text(struct ic_xml_stream *s)
{
    struct ic_xml *t;

    if (s->text.len == 0)
        return true;
    if (!count_child(s, s->depth - 1))
        return false;
    t = ic_calloc(1, sizeof(*t));
    t->text = ic_realloc(s->text.data, s->text.len + 1);
    t->text_len = s->text.len;
    s->text = (struct ic_buf){0};
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

    if (s->halt)
        return;
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

static bool all_space(const char *t, int len)
{
    for (int i = 0; i < len; i++) {
        if (t[i] != ' ' && t[i] != '\t' && t[i] != '\n' && t[i] != '\r')
            return false;
    }
    return true;
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
    if (!all_space(t, len)) {
        fail(s, IC_SE_BAD_FORMAT, "text between stanzas");
        return;
    }
    s->unit_start = event_end(s); /* a keepalive ends a unit */
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

/* Remembers the header's default namespace (the content namespace). */
static void XMLCALL on_ns_decl(void *ud,
                               const XML_Char *prefix,
                               const XML_Char *uri)
{
    struct ic_xml_stream *s = ud;

    if (s->halt || s->depth != 0 || prefix != NULL)
        return;
    ic_free(s->content_ns);
    s->content_ns = uri != NULL ? ic_strdup(uri) : NULL;
}

/* ---------------------------------------------------------------------
 * Life cycle
 */

static XML_Parser parser_new(struct ic_xml_stream *s)
{
    static const XML_Memory_Handling_Suite mem = {ic_malloc, ic_realloc,
                                                  ic_free};
    static const XML_Char sep[] = {NS_SEP, '\0'};
    XML_Parser p = XML_ParserCreate_MM("UTF-8", &mem, sep);

    if (p == NULL) /* only when memory is short: ic_malloc aborts first */
        abort();
    XML_SetUserData(p, s);
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
    return p;
}

/* Forgets the stream: the next byte is the start of a new document. */
static void clear_stream(struct ic_xml_stream *s)
{
    drop_stanza(s);
    ic_free(s->content_ns);
    s->content_ns = NULL;
    s->state = LIVE;
    s->depth = 0;
    s->total = 0;
    s->unit_start = 0;
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
    s->p = parser_new(s);
    return s;
}

static void destroy(struct ic_xml_stream *s)
{
    XML_ParserFree(s->p);
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
        if (s->zombie == NULL)
            s->zombie = s->p;
        else
            XML_ParserFree(s->p);
    } else {
        XML_ParserFree(s->p);
    }
    clear_stream(s);
    s->p = parser_new(s);
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

static void parse_error(struct ic_xml_stream *s)
{
    enum XML_Error e = XML_GetErrorCode(s->p);
    enum ic_stream_error cond = IC_SE_NOT_WELL_FORMED;

    if (e == XML_ERROR_NO_MEMORY)
        cond = IC_SE_RESOURCE_CONSTRAINT;
    else if (e == XML_ERROR_AMPLIFICATION_LIMIT_BREACH)
        cond = IC_SE_RESTRICTED_XML;
    fail(s, cond, "%s at line %llu, column %llu", XML_ErrorString(e),
         (unsigned long long)XML_GetCurrentLineNumber(s->p),
         (unsigned long long)XML_GetCurrentColumnNumber(s->p));
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

/* UTF-16 and UTF-32 start with a BOM (FE FF, FF FE), a NUL, or "<" and a
 * NUL. The second byte is looked at only after a "<", which expat cannot
 * have refused yet: the outcome is then the same however the bytes are
 * split into feeds. */
static void check_encoding(struct ic_xml_stream *s, const char *buf, size_t len)
{
    for (size_t i = 0; i < len && s->total + i < 2; i++) {
        unsigned char c = (unsigned char)buf[i];
        bool bad;
        if (s->total + i == 0) {
            s->first = c;
            bad = c == 0x00 || c == 0xFE || c == 0xFF;
        } else {
            bad = s->first == '<' && c == 0x00;
        }
        if (bad) {
            fail(s, IC_SE_UNSUPPORTED_ENCODING, "the stream is not UTF-8");
            return;
        }
    }
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
    if (s->free_pending)
        destroy(s);
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
    check_encoding(s, buf, len);
    while (off < len && !s->halt) {
        size_t n = slice_len(s, len - off);
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
