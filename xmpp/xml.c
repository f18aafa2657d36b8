/*
 * xml.c - stanza trees and their serializer.
 *
 * A tree is a plain linked structure (ic_xml_new/ic_xml_add/...); the
 * stream parser (stream.c) builds the same trees. The walks below (free,
 * copy, write) are iterative and follow parent pointers, so a deep tree
 * built by code cannot exhaust the stack.
 *
 * Serialization rules, chosen so that parse -> write -> parse gives the
 * same tree:
 *  - every element is written unprefixed, with xmlns='...' where its
 *    namespace differs from the default namespace in scope (the parent's,
 *    or CONTEXT_NS at the root); an element without a namespace under a
 *    namespaced parent gets xmlns=''.
 *  - elements of the streams namespace (features, error) are the first
 *    exception: they are written as <stream:NAME>, because older XMPP
 *    peers match that prefix literally (RFC 6120 4.8.5); the outermost one
 *    redeclares xmlns:stream so the output stands on its own. Elements of
 *    the XML namespace are the second: that namespace may not be declared
 *    as a default, so they are written <xml:NAME> (the parser accepts
 *    them; the fuzzer found that). Prefixed elements do not change the
 *    default namespace their children see.
 *  - "xml:lang" is written as is; an attribute named "URI|local" gets a
 *    generated prefix declared on its own element ("ns<position>").
 *  - text escapes & < > and \r (a literal \r would come back as \n after
 *    end-of-line normalization); attribute values escape & < > ' " and
 *    \t \n \r (attribute-value normalization would turn them into spaces).
 *  - bytes that cannot appear in XML 1.0 (invalid UTF-8, C0 controls other
 *    than \t \n \r, U+FFFE/U+FFFF, surrogates) are written as U+FFFD, so
 *    the output is well-formed whatever a caller put into the tree. Trees
 *    from the parser never hold such bytes, so for them the round trip is
 *    exact.
 */
#include <assert.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>

#include "ic_xmpp.h"

#define XML_NS_URI "http://www.w3.org/XML/1998/namespace"
#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD in UTF-8 */

/* ---------------------------------------------------------------------
 * Building
 */

static char *dup_or_null(const char *s)
{
    return s != NULL ? ic_strdup(s) : NULL;
}

struct ic_xml *ic_xml_new(const char *name, const char *ns)
{
    assert(name != NULL);
    return ic_xml_new_n(name, strlen(name), ns, ns != NULL ? strlen(ns) : 0);
}

struct ic_xml *
ic_xml_new_n(const char *local, size_t local_len, const char *ns, size_t ns_len)
{
    size_t extra = local_len + 1 + (ns != NULL ? ns_len + 1 : 0);
    struct ic_xml *x = ic_malloc(sizeof(*x) + extra);
    char *p = (char *)(x + 1);

    memset(x, 0, sizeof(*x));
    x->name = p;
    memcpy(p, local, local_len);
    p[local_len] = '\0';
    x->inl = IC_XML_INLINE_NAME;
    if (ns != NULL) {
        x->ns = p + local_len + 1;
        memcpy(x->ns, ns, ns_len);
        x->ns[ns_len] = '\0';
        x->inl |= IC_XML_INLINE_NS;
    }
    return x;
}

struct ic_xml *ic_xml_new_text(const char *text, size_t len)
{
    struct ic_xml *t = ic_malloc(sizeof(*t) + len + 1);

    memset(t, 0, sizeof(*t));
    t->text = (char *)(t + 1);
    memcpy(t->text, text, len);
    t->text[len] = '\0';
    t->text_len = len;
    t->inl = IC_XML_INLINE_TEXT;
    return t;
}

void ic_xml_set_ns(struct ic_xml *x, const char *ns)
{
    char *copy = dup_or_null(ns);

    if (!(x->inl & IC_XML_INLINE_NS))
        ic_free(x->ns);
    x->inl &= ~IC_XML_INLINE_NS;
    x->ns = copy;
}

void ic_xml_append(struct ic_xml *parent, struct ic_xml *child)
{
    assert(child->parent == NULL && child->next == NULL);
    child->parent = parent;
    if (parent->last != NULL)
        parent->last->next = child;
    else
        parent->children = child;
    parent->last = child;
}

struct ic_xml *
ic_xml_add(struct ic_xml *parent, const char *name, const char *ns)
{
    struct ic_xml *x = ic_xml_new(name, ns != NULL ? ns : parent->ns);

    ic_xml_append(parent, x);
    return x;
}

void ic_xml_add_text(struct ic_xml *parent, const char *text, size_t len)
{
    struct ic_xml *last = parent->last;
    struct ic_xml *t;

    if (len == 0)
        return;
    if (last != NULL && last->name == NULL) {
        if (last->inl & IC_XML_INLINE_TEXT) { /* give it its own buffer */
            char *own = ic_malloc(last->text_len + 1);
            memcpy(own, last->text, last->text_len + 1);
            last->text = own;
            last->inl &= ~IC_XML_INLINE_TEXT;
        }
        last->text = ic_realloc(last->text, last->text_len + len + 1);
        memcpy(last->text + last->text_len, text, len);
        last->text_len += len;
        last->text[last->text_len] = '\0';
        return;
    }
    /* the length, not a NUL, says where TEXT ends */
    t = ic_xml_new_text(text, len);
    ic_xml_append(parent, t);
}

void ic_xml_detach(struct ic_xml *child)
{
    struct ic_xml *p = child->parent;
    struct ic_xml *prev = NULL;

    if (p == NULL)
        return;
    for (struct ic_xml *c = p->children; c != child; c = c->next)
        prev = c;
    if (prev != NULL)
        prev->next = child->next;
    else
        p->children = child->next;
    if (p->last == child)
        p->last = prev;
    child->parent = NULL;
    child->next = NULL;
}

/* ---------------------------------------------------------------------
 * Attributes and lookup
 */

static void attr_free(struct ic_xml_attr *a)
{
    if (!a->inl) {
        ic_free(a->name);
        ic_free(a->value);
    }
    ic_free(a);
}

struct ic_xml_attr *ic_xml_attr_new_n(const char *name,
                                      size_t name_len,
                                      const char *value,
                                      size_t value_len)
{
    struct ic_xml_attr *a =
        ic_malloc(sizeof(*a) + name_len + 1 + value_len + 1);

    a->name = (char *)(a + 1);
    memcpy(a->name, name, name_len);
    a->name[name_len] = '\0';
    a->value = a->name + name_len + 1;
    memcpy(a->value, value, value_len);
    a->value[value_len] = '\0';
    a->next = NULL;
    a->inl = true;
    return a;
}

void ic_xml_set_attr(struct ic_xml *x, const char *name, const char *value)
{
    struct ic_xml_attr **link = &x->attrs;
    struct ic_xml_attr *a;

    for (; *link != NULL; link = &(*link)->next) {
        if (strcmp((*link)->name, name) == 0)
            break;
    }
    a = *link;
    if (a == NULL) {
        if (value == NULL)
            return;
        /* appended: attributes keep their order */
        *link = ic_xml_attr_new_n(name, strlen(name), value, strlen(value));
        return;
    }
    if (value == NULL) {
        *link = a->next;
        attr_free(a);
        return;
    }
    /* Copy before freeing: VALUE may be the old value itself. */
    char *copy = ic_strdup(value);
    if (a->inl) { /* the name gets its own allocation too */
        a->name = ic_strdup(a->name);
        a->inl = false;
    } else {
        ic_free(a->value);
    }
    a->value = copy;
}

const char *ic_xml_attr(const struct ic_xml *x, const char *name)
{
    for (const struct ic_xml_attr *a = x->attrs; a != NULL; a = a->next) {
        if (strcmp(a->name, name) == 0)
            return a->value;
    }
    return NULL;
}

static bool str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool matches(const struct ic_xml *c, const char *name, const char *ns)
{
    if (c->name == NULL)
        return false;
    if (name != NULL && strcmp(c->name, name) != 0)
        return false;
    return ns == NULL || str_eq(c->ns, ns);
}

struct ic_xml *
ic_xml_child(const struct ic_xml *x, const char *name, const char *ns)
{
    for (struct ic_xml *c = x->children; c != NULL; c = c->next) {
        if (matches(c, name, ns))
            return c;
    }
    return NULL;
}

struct ic_xml *
ic_xml_next(const struct ic_xml *after, const char *name, const char *ns)
{
    for (struct ic_xml *c = after->next; c != NULL; c = c->next) {
        if (matches(c, name, ns))
            return c;
    }
    return NULL;
}

/* For a text node X: its own text (there are no children to look at). */
char *ic_xml_text(const struct ic_xml *x)
{
    struct ic_buf b = {0};

    if (x->name == NULL)
        ic_buf_append(&b, x->text, x->text_len);
    for (const struct ic_xml *c = x->children; c != NULL; c = c->next) {
        if (c->name == NULL)
            ic_buf_append(&b, c->text, c->text_len);
    }
    if (b.data == NULL)
        return ic_strdup("");
    return b.data;
}

const char *ic_xml_text_ref(const struct ic_xml *x, char **owned)
{
    const struct ic_xml *only = NULL;

    *owned = NULL;
    if (x->name == NULL)
        return x->text;
    for (const struct ic_xml *c = x->children; c != NULL; c = c->next) {
        if (c->name != NULL)
            continue;
        if (only != NULL) /* more than one: gather them */
            return *owned = ic_xml_text(x);
        only = c;
    }
    return only != NULL ? only->text : "";
}

/* ---------------------------------------------------------------------
 * Copy and free
 */

static struct ic_xml *copy_node(const struct ic_xml *x)
{
    struct ic_xml *c;
    struct ic_xml_attr **tail;

    if (x->name == NULL)
        return ic_xml_new_text(x->text, x->text_len);
    c = ic_xml_new(x->name, x->ns);
    tail = &c->attrs;
    for (const struct ic_xml_attr *a = x->attrs; a != NULL; a = a->next) {
        *tail = ic_xml_attr_new_n(a->name, strlen(a->name), a->value,
                                  strlen(a->value));
        tail = &(*tail)->next;
    }
    return c;
}

struct ic_xml *ic_xml_copy(const struct ic_xml *x)
{
    const struct ic_xml *src = x;
    struct ic_xml *root, *dst;

    if (x == NULL)
        return NULL;
    root = dst = copy_node(x);
    for (;;) {
        if (src->children != NULL) {
            src = src->children;
            struct ic_xml *c = copy_node(src);
            ic_xml_append(dst, c);
            dst = c;
            continue;
        }
        while (src != x && src->next == NULL) {
            src = src->parent;
            dst = dst->parent;
        }
        if (src == x)
            return root;
        src = src->next;
        struct ic_xml *c = copy_node(src);
        ic_xml_append(dst->parent, c);
        dst = c;
    }
}

/* Detaches X first if the caller forgot to: freeing a node still linked
 * into a tree would leave the parent pointing at freed memory. */
void ic_xml_free(struct ic_xml *x)
{
    struct ic_xml *work = x;

    if (x == NULL)
        return;
    ic_xml_detach(x);
    /* The work list is threaded through the next pointers: each node's
     * children are spliced in front of the rest before it is freed. */
    while (work != NULL) {
        struct ic_xml *n = work;
        work = n->next;
        if (n->children != NULL) {
            n->last->next = work;
            work = n->children;
        }
        while (n->attrs != NULL) {
            struct ic_xml_attr *a = n->attrs;
            n->attrs = a->next;
            attr_free(a);
        }
        if (!(n->inl & IC_XML_INLINE_NAME))
            ic_free(n->name);
        if (!(n->inl & IC_XML_INLINE_NS))
            ic_free(n->ns);
        if (!(n->inl & IC_XML_INLINE_TEXT))
            ic_free(n->text);
        ic_free(n);
    }
}

/* ---------------------------------------------------------------------
 * Escaping
 */

/* The length of the valid UTF-8 sequence of an XML Char at P (1 to 4), or
 * 0 when the bytes are not one. P[0] >= 0x80. */
static size_t utf8_char(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned long cp;

    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0u) != 0x80u)
            return 0;
        cp = cp << 6 | (p[i] & 0x3Fu);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF) ||
                     cp == 0xFFFE || cp == 0xFFFF))
        return 0;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))
        return 0;
    return len;
}

/* The replacement of an ASCII byte, or NULL to copy it. */
static const char *ascii_escape(unsigned char c, bool attr)
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '\r':
        return "&#13;";
    case '\'':
        return attr ? "&apos;" : NULL;
    case '"':
        return attr ? "&quot;" : NULL;
    case '\n':
        return attr ? "&#10;" : NULL;
    case '\t':
        return attr ? "&#9;" : NULL;
    default:
        return c < 0x20 ? REPLACEMENT : NULL;
    }
}

static void put_escaped(struct ic_buf *out, const char *s, size_t n, bool attr)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0;
    size_t i = 0;

    while (i < n) {
        const char *rep;
        size_t step = 1;

        /* the common case first: printable ASCII that needs nothing (the
         * quotes go the long way, which copies them in text) */
        while (i < n && u[i] >= 0x20 && u[i] < 0x80 && u[i] != '&' &&
               u[i] != '<' && u[i] != '>' && u[i] != '\'' && u[i] != '"')
            i++;
        if (i == n)
            break;
        if (u[i] < 0x80) {
            rep = ascii_escape(u[i], attr);
        } else {
            step = utf8_char(u + i, n - i);
            rep = step == 0 ? REPLACEMENT : NULL;
            if (step == 0)
                step = 1;
        }
        if (rep == NULL) {
            i += step;
            continue;
        }
        ic_buf_append(out, s + run, i - run);
        ic_buf_puts(out, rep);
        i += step;
        run = i;
    }
    ic_buf_append(out, s + run, n - run);
}

/* " PREFIX:NAME" (PREFIX may be NULL). */
static void put_name(struct ic_buf *out, const char *prefix, const char *name)
{
    ic_buf_puts(out, " ");
    if (prefix != NULL) {
        ic_buf_puts(out, prefix);
        ic_buf_puts(out, ":");
    }
    ic_buf_puts(out, name);
}

static void put_value(struct ic_buf *out, const char *value, size_t len)
{
    ic_buf_puts(out, "='");
    put_escaped(out, value, len, true);
    ic_buf_puts(out, "'");
}

/* ---------------------------------------------------------------------
 * Writing
 */

/* NULL and "" both mean "no namespace". */
static const char *nz(const char *ns)
{
    return ns != NULL ? ns : "";
}

static bool is_streams(const struct ic_xml *e)
{
    return e->ns != NULL && strcmp(e->ns, IC_NS_STREAMS) == 0;
}

/* The prefix E is written with, or NULL. */
static const char *prefix_of_element(const struct ic_xml *e)
{
    if (e->ns == NULL)
        return NULL;
    if (strcmp(e->ns, IC_NS_STREAMS) == 0)
        return "stream";
    if (strcmp(e->ns, XML_NS_URI) == 0)
        return "xml";
    return NULL;
}

/* The default namespace in scope at E's start tag: that of the nearest
 * unprefixed ancestor inside the written subtree, else CTX. */
static const char *
scope_at(const struct ic_xml *e, const struct ic_xml *root, const char *ctx)
{
    while (e != root) {
        e = e->parent;
        if (prefix_of_element(e) == NULL)
            return e->ns;
    }
    return ctx;
}

static bool stream_prefix_bound(const struct ic_xml *e,
                                const struct ic_xml *root)
{
    while (e != root) {
        e = e->parent;
        if (is_streams(e))
            return true;
    }
    return false;
}

/* The URI part of "URI|local" (its length in *LEN), or NULL. A local name
 * cannot hold '|', so the last one is the split. */
static const char *attr_uri(const char *name, size_t *len)
{
    const char *bar = strrchr(name, '|');

    if (bar == NULL || bar == name)
        return NULL;
    *len = (size_t)(bar - name);
    return name;
}

/* The 1-based position of E's first attribute in namespace URI: the
 * prefix for that namespace is "ns<position>", declared with it. */
static unsigned prefix_of(const struct ic_xml *e, const char *uri, size_t len)
{
    unsigned pos = 1;

    for (const struct ic_xml_attr *a = e->attrs; a != NULL;
         a = a->next, pos++) {
        size_t l;
        const char *u = attr_uri(a->name, &l);
        if (u != NULL && l == len && memcmp(u, uri, len) == 0)
            return pos;
    }
    return pos;
}

/* The tree holds no namespace declarations; the writer makes its own and
 * must not repeat or contradict them. */
static bool is_xmlns(const char *name)
{
    return strcmp(name, "xmlns") == 0 || strncmp(name, "xmlns:", 6) == 0;
}

static void write_attrs(struct ic_buf *out, const struct ic_xml *e)
{
    unsigned pos = 0;

    for (const struct ic_xml_attr *a = e->attrs; a != NULL; a = a->next) {
        size_t len;
        const char *uri = attr_uri(a->name, &len);
        char prefix[24];

        pos++;
        if (uri == NULL) {
            if (is_xmlns(a->name))
                continue;
            put_name(out, NULL, a->name + (a->name[0] == '|'));
        } else if (len == strlen(XML_NS_URI) &&
                   memcmp(uri, XML_NS_URI, len) == 0) {
            put_name(out, "xml", uri + len + 1);
        } else {
            unsigned p = prefix_of(e, uri, len);
            snprintf(prefix, sizeof(prefix), "ns%u", p);
            if (p == pos) {
                put_name(out, "xmlns", prefix);
                put_value(out, uri, len);
            }
            put_name(out, prefix, uri + len + 1);
        }
        put_value(out, a->value, strlen(a->value));
    }
}

static void open_tag(struct ic_buf *out,
                     const struct ic_xml *e,
                     const struct ic_xml *root,
                     const char *ctx)
{
    const char *prefix = prefix_of_element(e);

    ic_buf_puts(out, "<");
    if (prefix != NULL) {
        ic_buf_puts(out, prefix);
        ic_buf_puts(out, ":");
    }
    ic_buf_puts(out, e->name);
    if (prefix != NULL) {
        if (is_streams(e) && !stream_prefix_bound(e, root)) {
            put_name(out, "xmlns", "stream");
            put_value(out, IC_NS_STREAMS, strlen(IC_NS_STREAMS));
        }
    } else if (strcmp(nz(e->ns), nz(scope_at(e, root, ctx))) != 0) {
        put_name(out, NULL, "xmlns");
        put_value(out, nz(e->ns), strlen(nz(e->ns)));
    }
    write_attrs(out, e);
    ic_buf_puts(out, e->children != NULL ? ">" : "/>");
}

static void close_tag(struct ic_buf *out, const struct ic_xml *e)
{
    const char *prefix = prefix_of_element(e);

    ic_buf_puts(out, "</");
    if (prefix != NULL) {
        ic_buf_puts(out, prefix);
        ic_buf_puts(out, ":");
    }
    ic_buf_puts(out, e->name);
    ic_buf_puts(out, ">");
}

void ic_xml_write(struct ic_buf *out,
                  const struct ic_xml *x,
                  const char *context_ns)
{
    const struct ic_xml *cur = x;

    for (;;) {
        if (cur->name == NULL) {
            if (cur->text_len > 0)
                put_escaped(out, cur->text, cur->text_len, false);
        } else {
            open_tag(out, cur, x, context_ns);
            if (cur->children != NULL) {
                cur = cur->children;
                continue;
            }
        }
        while (cur != x && cur->next == NULL) {
            cur = cur->parent;
            close_tag(out, cur);
        }
        if (cur == x)
            return;
        cur = cur->next;
    }
}

char *ic_xml_to_string(const struct ic_xml *x, const char *context_ns)
{
    struct ic_buf b = {0};

    ic_xml_write(&b, x, context_ns);
    if (b.data == NULL)
        return ic_strdup("");
    return b.data;
}
