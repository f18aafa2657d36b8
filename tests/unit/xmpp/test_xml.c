/*
 * test_xml.c - stanza trees (xmpp/xml.c): building, attributes, lookup,
 * text, copy, free, and the serializer's escaping and namespace
 * declarations, checked by exact output and by parse -> write -> parse
 * round trips through the stream parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ic_xmpp.h"

/* ---------------------------------------------------------------------
 * Helpers
 */

struct one {
    struct ic_xml *stanza;
    int stanzas;
    int errors;
};

static void one_open(void *data, struct ic_xml *header)
{
    (void)data;
    ic_xml_free(header);
}

static void one_stanza(void *data, struct ic_xml *x)
{
    struct one *o = data;

    o->stanzas++;
    ic_xml_free(o->stanza);
    o->stanza = x;
}

static void one_error(void *data, enum ic_stream_error cond, const char *text)
{
    struct one *o = data;

    (void)cond;
    (void)text;
    o->errors++;
}

/* Parses one stanza written inside a stream whose default namespace is
 * CTX; asserts that exactly one stanza and no error came out. */
static struct ic_xml *parse_in(const char *ctx, const char *stanza)
{
    static const struct ic_xml_stream_cbs cbs = {
        .on_open = one_open,
        .on_stanza = one_stanza,
        .on_error = one_error,
    };
    struct one o = {0};
    struct ic_xml_stream *s = ic_xml_stream_new(&cbs, &o, NULL);
    struct ic_buf doc = {0};
    size_t used;

    ic_buf_puts(&doc, "<stream:stream xmlns:stream='" IC_NS_STREAMS "'");
    if (ctx != NULL) {
        ic_buf_puts(&doc, " xmlns='");
        ic_buf_puts(&doc, ctx);
        ic_buf_puts(&doc, "'");
    }
    ic_buf_puts(&doc, ">");
    ic_buf_puts(&doc, stanza);
    assert_int_equal(ic_xml_stream_feed(s, doc.data, doc.len, &used), 0);
    assert_int_equal(used, doc.len);
    assert_int_equal(o.errors, 0);
    assert_int_equal(o.stanzas, 1);
    ic_xml_stream_free(s);
    ic_buf_free(&doc);
    return o.stanza;
}

static void assert_str_or_null(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

/* Structural equality: names, namespaces, attributes in order, text
 * bytes, children in order. */
static void assert_tree_equal(const struct ic_xml *a, const struct ic_xml *b)
{
    const struct ic_xml_attr *aa = a->attrs, *ba = b->attrs;
    const struct ic_xml *ac = a->children, *bc = b->children;

    assert_str_or_null(a->name, b->name);
    assert_str_or_null(a->ns, b->ns);
    assert_int_equal(a->text_len, b->text_len);
    if (a->text_len > 0)
        assert_memory_equal(a->text, b->text, a->text_len);
    for (; aa != NULL && ba != NULL; aa = aa->next, ba = ba->next) {
        assert_string_equal(aa->name, ba->name);
        assert_string_equal(aa->value, ba->value);
    }
    assert_null(aa);
    assert_null(ba);
    for (; ac != NULL && bc != NULL; ac = ac->next, bc = bc->next) {
        assert_ptr_equal(ac->parent, a);
        assert_ptr_equal(bc->parent, b);
        assert_tree_equal(ac, bc);
    }
    assert_null(ac);
    assert_null(bc);
}

static void
assert_writes(const struct ic_xml *x, const char *ctx, const char *want)
{
    char *got = ic_xml_to_string(x, ctx);

    assert_string_equal(got, want);
    ic_free(got);
}

/* parse -> write -> parse gives the same tree, and writing the second
 * tree gives the same bytes as writing the first. */
static void assert_round_trip(const char *ctx, const char *stanza)
{
    struct ic_xml *a = parse_in(ctx, stanza);
    char *text = ic_xml_to_string(a, ctx);
    struct ic_xml *b = parse_in(ctx, text);
    char *again = ic_xml_to_string(b, ctx);

    assert_tree_equal(a, b);
    assert_string_equal(text, again);
    ic_free(text);
    ic_free(again);
    ic_xml_free(a);
    ic_xml_free(b);
}

/* ---------------------------------------------------------------------
 * Trees
 */

static void test_build(void **state)
{
    struct ic_xml *iq = ic_xml_new("iq", IC_NS_CLIENT);
    struct ic_xml *q, *item;
    char *t;

    (void)state;
    assert_string_equal(iq->name, "iq");
    assert_string_equal(iq->ns, IC_NS_CLIENT);
    assert_null(iq->parent);
    q = ic_xml_add(iq, "query", "jabber:iq:roster");
    item = ic_xml_add(q, "item", NULL);
    assert_ptr_equal(q->parent, iq);
    assert_ptr_equal(iq->children, q);
    assert_ptr_equal(iq->last, q);
    assert_string_equal(item->ns, "jabber:iq:roster"); /* inherited */

    ic_xml_add_text(item, "ab", 2);
    ic_xml_add_text(item, "cd", 2); /* merged with the text before */
    assert_non_null(item->children);
    assert_ptr_equal(item->children, item->last);
    assert_null(item->children->name);
    assert_int_equal(item->children->text_len, 4);
    assert_string_equal(item->children->text, "abcd");
    ic_xml_add_text(item, "", 0); /* nothing to add: no node */
    assert_ptr_equal(item->children, item->last);

    ic_xml_add(item, "group", NULL);
    ic_xml_add_text(item, "e\0f", 3); /* a new node: an element is between */
    assert_int_equal(item->last->text_len, 3);
    assert_memory_equal(item->last->text, "e\0f", 4);
    t = ic_xml_text(item);
    assert_string_equal(t, "abcde"); /* stops at the NUL, as a C string */
    ic_free(t);
    t = ic_xml_text(iq);
    assert_string_equal(t, "");
    ic_free(t);

    ic_xml_free(iq);
    ic_xml_free(NULL);
}

static void test_attrs(void **state)
{
    struct ic_xml *x = ic_xml_new("message", NULL);

    (void)state;
    assert_null(ic_xml_attr(x, "to"));
    ic_xml_set_attr(x, "to", "a@b");
    ic_xml_set_attr(x, "type", "chat");
    ic_xml_set_attr(x, "id", "1");
    assert_string_equal(ic_xml_attr(x, "to"), "a@b");
    ic_xml_set_attr(x, "to", "c@d"); /* replaced in place */
    assert_string_equal(ic_xml_attr(x, "to"), "c@d");
    ic_xml_set_attr(x, "to", ic_xml_attr(x, "to")); /* aliasing value */
    assert_string_equal(ic_xml_attr(x, "to"), "c@d");
    assert_writes(x, NULL, "<message to='c@d' type='chat' id='1'/>");

    ic_xml_set_attr(x, "type", NULL); /* middle */
    assert_null(ic_xml_attr(x, "type"));
    assert_writes(x, NULL, "<message to='c@d' id='1'/>");
    ic_xml_set_attr(x, "to", NULL); /* first */
    ic_xml_set_attr(x, "id", NULL); /* last */
    ic_xml_set_attr(x, "nothing", NULL);
    assert_null(x->attrs);
    ic_xml_set_attr(x, "xml:lang", "en");
    assert_string_equal(ic_xml_attr(x, "xml:lang"), "en");
    assert_writes(x, NULL, "<message xml:lang='en'/>");
    ic_xml_free(x);
}

static void test_lookup(void **state)
{
    struct ic_xml *m = ic_xml_new("message", IC_NS_CLIENT);
    struct ic_xml *b1, *b2, *x, *b3;

    (void)state;
    ic_xml_add_text(m, " ", 1);
    b1 = ic_xml_add(m, "body", NULL);
    x = ic_xml_add(m, "x", "jabber:x:oob");
    b2 = ic_xml_add(m, "body", NULL);
    b3 = ic_xml_add(m, "body", "urn:other");

    assert_ptr_equal(ic_xml_child(m, "body", NULL), b1);
    assert_ptr_equal(ic_xml_child(m, "body", IC_NS_CLIENT), b1);
    assert_ptr_equal(ic_xml_child(m, "body", "urn:other"), b3);
    assert_ptr_equal(ic_xml_child(m, NULL, "jabber:x:oob"), x);
    assert_ptr_equal(ic_xml_child(m, NULL, NULL), b1); /* not the text */
    assert_null(ic_xml_child(m, "subject", NULL));
    assert_ptr_equal(ic_xml_next(b1, "body", NULL), b2);
    assert_ptr_equal(ic_xml_next(b2, "body", NULL), b3);
    assert_ptr_equal(ic_xml_next(b2, "body", IC_NS_CLIENT), NULL);
    assert_ptr_equal(ic_xml_next(b1, NULL, NULL), x);
    assert_null(ic_xml_next(b3, NULL, NULL));
    ic_xml_free(m);
}

static void test_detach_append(void **state)
{
    struct ic_xml *p = ic_xml_new("p", NULL);
    struct ic_xml *a = ic_xml_add(p, "a", NULL);
    struct ic_xml *b = ic_xml_add(p, "b", NULL);
    struct ic_xml *c = ic_xml_add(p, "c", NULL);

    (void)state;
    ic_xml_detach(b); /* middle */
    assert_null(b->parent);
    assert_null(b->next);
    assert_ptr_equal(a->next, c);
    assert_writes(p, NULL, "<p><a/><c/></p>");
    ic_xml_detach(c); /* last: p->last moves back */
    assert_ptr_equal(p->last, a);
    ic_xml_append(p, b);
    assert_ptr_equal(p->last, b);
    assert_ptr_equal(b->parent, p);
    assert_writes(p, NULL, "<p><a/><b/></p>");
    ic_xml_detach(a); /* first */
    assert_ptr_equal(p->children, b);
    ic_xml_detach(a); /* already detached: nothing */
    ic_xml_append(b, a);
    ic_xml_append(b, c);
    assert_writes(p, NULL, "<p><b><a/><c/></b></p>");
    ic_xml_detach(b);
    assert_null(p->children);
    assert_null(p->last);
    assert_writes(p, NULL, "<p/>");
    /* Freeing a child still in a tree unlinks it first. */
    ic_xml_free(c);
    assert_ptr_equal(b->last, a);
    assert_null(a->next);
    ic_xml_free(b);
    ic_xml_free(p);
}

static void test_copy(void **state)
{
    struct ic_xml *x = ic_xml_new("iq", IC_NS_CLIENT);
    struct ic_xml *q, *c;
    char *a, *b;

    (void)state;
    ic_xml_set_attr(x, "type", "get");
    ic_xml_set_attr(x, "urn:x|a", "1");
    q = ic_xml_add(x, "query", "jabber:iq:version");
    ic_xml_add_text(q, "t1", 2);
    ic_xml_add(ic_xml_add(q, "name", NULL), "deep", NULL);
    ic_xml_add_text(q, "t2", 2);
    ic_xml_add(x, "last", NULL);

    c = ic_xml_copy(x);
    assert_null(c->parent);
    assert_tree_equal(x, c);
    a = ic_xml_to_string(x, NULL);
    b = ic_xml_to_string(c, NULL);
    assert_string_equal(a, b);
    ic_free(b);
    /* The copy is independent. */
    ic_xml_set_attr(c, "type", "set");
    ic_xml_free(ic_xml_child(c, "query", NULL));
    b = ic_xml_to_string(x, NULL);
    assert_string_equal(a, b);
    ic_free(a);
    ic_free(b);
    ic_xml_free(c);

    /* A subtree copies alone, without its siblings. */
    c = ic_xml_copy(q);
    assert_null(c->parent);
    assert_null(c->next);
    assert_writes(c, NULL,
                  "<query xmlns='jabber:iq:version'>t1<name><deep/></name>"
                  "t2</query>");
    ic_xml_free(c);
    assert_null(ic_xml_copy(NULL));
    ic_xml_free(x);
}

/* A tree far deeper than any stanza may be: the walks do not recurse. */
static void test_deep_tree(void **state)
{
    struct ic_xml *root = ic_xml_new("a", NULL);
    struct ic_xml *x = root, *c;
    char *s;

    (void)state;
    for (int i = 0; i < 200000; i++)
        x = ic_xml_add(x, "a", NULL);
    c = ic_xml_copy(root);
    s = ic_xml_to_string(c, NULL);
    assert_int_equal(strlen(s), 200000 * 7 + 4); /* <a>..</a>, <a/> */
    ic_free(s);
    ic_xml_free(c);
    ic_xml_free(root);
}

/* ---------------------------------------------------------------------
 * Serializer
 */

static void test_escape(void **state)
{
    struct ic_xml *x = ic_xml_new("body", NULL);

    (void)state;
    ic_xml_set_attr(x, "a", "&<>'\"\t\n\r");
    ic_xml_add_text(x, "&<>'\"\t\n\r]]>", 11);
    assert_writes(x, NULL,
                  "<body a='&amp;&lt;&gt;&apos;&quot;&#9;&#10;&#13;'>"
                  "&amp;&lt;&gt;'\"\t\n&#13;]]&gt;</body>");
    ic_xml_free(x);
}

/* Bytes that XML 1.0 cannot carry become U+FFFD; valid UTF-8 passes. */
static void test_escape_invalid(void **state)
{
    struct ic_xml *x = ic_xml_new("b", NULL);
    static const char in[] = "\x01"             /* C0 control */
                             "\xC3\xA9"         /* e acute */
                             "\xC3"             /* truncated */
                             "\xED\xA0\x80"     /* surrogate */
                             "\xEF\xBF\xBE"     /* U+FFFE */
                             "\xF0\x9D\x84\x9E" /* U+1D11E */
                             "\xC0\xAF"         /* overlong */
                             "\0";              /* NUL */

    (void)state;
    ic_xml_add_text(x, in, sizeof(in) - 1);
    ic_xml_set_attr(x, "v", "\xFF");
    assert_writes(x, NULL,
                  "<b v='\xEF\xBF\xBD'>\xEF\xBF\xBD\xC3\xA9\xEF\xBF\xBD"
                  "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                  "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                  "\xF0\x9D\x84\x9E\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                  "</b>");
    ic_xml_free(x);
}

static void test_xmlns_placement(void **state)
{
    struct ic_xml *m = ic_xml_new("message", IC_NS_CLIENT);
    struct ic_xml *body = ic_xml_add(m, "body", NULL);
    struct ic_xml *x = ic_xml_add(m, "x", "jabber:x:data");
    struct ic_xml *none;

    (void)state;
    ic_xml_add(x, "field", NULL);
    none = ic_xml_add(x, "plain", NULL);
    ic_xml_set_ns(none, NULL);
    ic_xml_add(none, "inner", "jabber:x:data");
    (void)body;
    /* In a client stream, the stanza needs no declaration. */
    assert_writes(m, IC_NS_CLIENT,
                  "<message><body/><x xmlns='jabber:x:data'><field/>"
                  "<plain xmlns=''><inner xmlns='jabber:x:data'/></plain>"
                  "</x></message>");
    /* Standalone or in a server stream it does. */
    assert_writes(m, NULL,
                  "<message xmlns='jabber:client'><body/>"
                  "<x xmlns='jabber:x:data'><field/><plain xmlns=''>"
                  "<inner xmlns='jabber:x:data'/></plain></x></message>");
    assert_writes(m, IC_NS_SERVER,
                  "<message xmlns='jabber:client'><body/>"
                  "<x xmlns='jabber:x:data'><field/><plain xmlns=''>"
                  "<inner xmlns='jabber:x:data'/></plain></x></message>");
    /* A subtree written alone is declared against the context. */
    assert_writes(x, "jabber:x:data",
                  "<x><field/><plain xmlns=''><inner xmlns='jabber:x:data'/>"
                  "</plain></x>");
    /* No namespace at the root, none in the context: nothing. */
    assert_writes(none, NULL, "<plain><inner xmlns='jabber:x:data'/></plain>");
    ic_xml_free(m);
}

static void test_stream_prefix(void **state)
{
    struct ic_xml *f = ic_xml_new("features", IC_NS_STREAMS);
    struct ic_xml *tls = ic_xml_add(f, "starttls", IC_NS_TLS);
    struct ic_xml *err = ic_xml_new("error", IC_NS_STREAMS);

    (void)state;
    ic_xml_add(tls, "required", NULL);
    ic_xml_add(f, "bind", IC_NS_BIND);
    assert_writes(f, IC_NS_CLIENT,
                  "<stream:features "
                  "xmlns:stream='http://etherx.jabber.org/streams'>"
                  "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
                  "<required/></starttls>"
                  "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                  "</stream:features>");
    /* The children of a stream element see the context's default. */
    ic_xml_add(err, "text", IC_NS_CLIENT);
    ic_xml_add(ic_xml_add(err, "inner", IC_NS_STREAMS), "x", IC_NS_CLIENT);
    assert_writes(err, IC_NS_CLIENT,
                  "<stream:error "
                  "xmlns:stream='http://etherx.jabber.org/streams'>"
                  "<text/><stream:inner><x/></stream:inner></stream:error>");
    ic_xml_free(f);
    ic_xml_free(err);
}

static void test_attr_namespaces(void **state)
{
    struct ic_xml *x = ic_xml_new("e", NULL);

    (void)state;
    ic_xml_set_attr(x, "plain", "0");
    ic_xml_set_attr(x, "urn:a|x", "1");
    ic_xml_set_attr(x, "urn:b|y", "2");
    ic_xml_set_attr(x, "urn:a|z", "3");
    ic_xml_set_attr(x, "http://www.w3.org/XML/1998/namespace|space", "keep");
    ic_xml_set_attr(x, "xml:lang", "fr");
    ic_xml_set_attr(x, "xmlns", "urn:ignored");
    ic_xml_set_attr(x, "xmlns:p", "urn:ignored");
    ic_xml_set_attr(x, "urn:c|d|w", "4"); /* URI holding '|' */
    assert_writes(x, NULL,
                  "<e plain='0' xmlns:ns2='urn:a' ns2:x='1' "
                  "xmlns:ns3='urn:b' ns3:y='2' ns2:z='3' xml:space='keep' "
                  "xml:lang='fr' xmlns:ns9='urn:c|d' ns9:w='4'/>");
    ic_xml_free(x);
}

/* ---------------------------------------------------------------------
 * Round trips through the parser
 */

static void test_round_trip_escaping(void **state)
{
    struct ic_xml *x;

    (void)state;
    assert_round_trip(IC_NS_CLIENT,
                      "<message to='a@b/r&apos;&quot;&amp;&lt;&gt;' "
                      "from=\"q'&quot;\" id='&#9;&#10;&#13; x'>"
                      "<body>&amp; &lt;tag&gt; ' \" ]]&gt; &#13;\r\n end"
                      "</body>"
                      "<subject><![CDATA[<not a tag> & ]]]]></subject>"
                      "</message>");
    /* The attribute really holds the characters. */
    x = parse_in(IC_NS_CLIENT, "<m a='&#9;&#10;&#13;&apos;&quot;'/>");
    assert_string_equal(ic_xml_attr(x, "a"), "\t\n\r'\"");
    ic_xml_free(x);
    /* And the CR in text survives (a raw CR would become LF). */
    x = parse_in(IC_NS_CLIENT, "<m>a&#13;b\r\nc\rd</m>");
    assert_string_equal(x->children->text, "a\rb\nc\nd");
    ic_xml_free(x);
}

static void test_round_trip_utf8(void **state)
{
    struct ic_xml *x;

    (void)state;
    assert_round_trip(
        IC_NS_CLIENT,
        "<message xml:lang='ja'>"
        "<body xml:lang='fr'>caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC "
        "\xF0\x9D\x84\x9E &#x1F600;</body>"
        "<nick xmlns='http://jabber.org/protocol/nick' "
        "n='\xC3\xBC'>J\xC3\xBCrgen</nick></message>");
    x = parse_in(IC_NS_CLIENT, "<m xml:lang='en'>&#x1F600;</m>");
    assert_string_equal(ic_xml_attr(x, "xml:lang"), "en");
    assert_string_equal(x->children->text, "\xF0\x9F\x98\x80");
    ic_xml_free(x);
}

static void test_round_trip_namespaces(void **state)
{
    struct ic_xml *x;

    (void)state;
    assert_round_trip(
        IC_NS_CLIENT,
        "<iq type='set' id='1'><pubsub xmlns='http://jabber.org/protocol/"
        "pubsub'><publish node='n'><item><entry xmlns='http://www.w3.org/"
        "2005/Atom' xmlns:a='urn:attr' a:one='1' a:two='2'><title>t</title>"
        "<inner xmlns=''/></entry></item></publish></pubsub>"
        "<x:data xmlns:x='jabber:x:data'/></iq>");
    assert_round_trip(IC_NS_SERVER, "<presence><c xmlns='a'><d/></c>"
                                    "<e xmlns='jabber:client'/></presence>");
    assert_round_trip(IC_NS_CLIENT,
                      "<stream:features><starttls xmlns='"
                      "urn:ietf:params:xml:ns:xmpp-tls'><required/>"
                      "</starttls></stream:features>");
    assert_round_trip(NULL, "<plain a='1'><child/></plain>");
    /* An element in the XML namespace keeps its predeclared prefix: that
     * namespace may not be a default one (found by the fuzzer). */
    assert_round_trip(IC_NS_CLIENT, "<m><xml:x a='1'><y/></xml:x></m>");
    x = parse_in(IC_NS_CLIENT, "<xml:ltls xmlns='urn:q'><y/></xml:ltls>");
    assert_string_equal(x->ns, "http://www.w3.org/XML/1998/namespace");
    assert_writes(x, IC_NS_CLIENT, "<xml:ltls><y xmlns='urn:q'/></xml:ltls>");
    ic_xml_free(x);
    /* Namespaced attributes are stored as URI|local. */
    x = parse_in(IC_NS_CLIENT, "<m xmlns:p='urn:p' p:a='1' b='2'/>");
    assert_string_equal(ic_xml_attr(x, "urn:p|a"), "1");
    assert_string_equal(ic_xml_attr(x, "b"), "2");
    assert_writes(x, IC_NS_CLIENT, "<m xmlns:ns1='urn:p' ns1:a='1' b='2'/>");
    ic_xml_free(x);
}

static void test_round_trip_seed(void **state)
{
    struct ic_xml *x;

    (void)state;
    /* The seed paper's result: the namespace with its leading space. */
    assert_round_trip(IC_NS_CLIENT,
                      "<iq type='result' from='service.intercloudexchg.com' "
                      "to='user@cloud1.org' id='cloud1_id1'><command xmlns= \n"
                      "    'http://jabber.org/protocol/commands' \n"
                      "    sessionid='RPC-SESSION-0000001' \n"
                      "    node='constraint_catalog_resources' \n"
                      "    status='completed'><iodata xmlns='urn:xmpp:tmp:"
                      "io-data' type='output'><out><matchingClouds \n"
                      "         xmlns=' http://www.csp/resOntology'> \n"
                      "<cloudName>cloud2</cloudName></matchingClouds></out>"
                      "</iodata></command></iq>");
    x = parse_in(IC_NS_CLIENT, "<m><c xmlns=' http://www.csp/resOntology'/>"
                               "</m>");
    assert_string_equal(x->children->ns, " http://www.csp/resOntology");
    assert_writes(x, IC_NS_CLIENT,
                  "<m><c xmlns=' http://www.csp/resOntology'/></m>");
    ic_xml_free(x);
}

/* ic_xml_parse: exactly one element, with the stream parser's rules;
 * a short element (shorter than the wrapper it is parsed in) too. */
static void test_parse_one_element(void **state)
{
    static const char *const bad[] = {
        "",
        "<a>",
        "<a/><b/>",
        "<!DOCTYPE a><a/>",
        "<a><!-- c --></a>",
        "<a><?pi x?></a>",
        "<a>&amp;</a",
        "text only",
    };
    struct ic_xml *x;
    char *out;

    (void)state;
    x = ic_xml_parse("<presence/>", 11, IC_NS_CLIENT);
    assert_non_null(x);
    assert_string_equal(x->name, "presence");
    assert_string_equal(x->ns, IC_NS_CLIENT);
    ic_xml_free(x);
    x = ic_xml_parse("<presence from='a@b/c'><status>t1</status></presence>",
                     53, IC_NS_CLIENT);
    assert_non_null(x);
    out = ic_xml_to_string(x, IC_NS_CLIENT);
    assert_string_equal(
        out, "<presence from='a@b/c'><status>t1</status></presence>");
    ic_free(out);
    ic_xml_free(x);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        x = ic_xml_parse(bad[i], strlen(bad[i]), IC_NS_CLIENT);
        if (x != NULL)
            fail_msg("accepted: %s", bad[i]);
    }
}

/* The parser's nodes keep their strings in the node's own allocation;
 * changing them (more text, another namespace) and copying them works as
 * for built nodes, and freeing frees each allocation once (ASan). */
static void test_parsed_nodes_change(void **state)
{
    struct ic_xml *x =
        parse_in(IC_NS_CLIENT, "<message to='a@b'><body>hello</body>"
                               "<x xmlns='jabber:x:data'>v</x></message>");
    struct ic_xml *body, *data, *copy;
    char *out;

    (void)state;
    assert_non_null(x);
    assert_true(x->inl & IC_XML_INLINE_NAME);
    body = ic_xml_child(x, "body", NULL);
    data = ic_xml_child(x, "x", "jabber:x:data");
    assert_non_null(body);
    assert_non_null(data);
    assert_true(body->children->inl & IC_XML_INLINE_TEXT);
    ic_xml_add_text(body, ", world", 7);
    assert_string_equal(body->children->text, "hello, world");
    assert_int_equal(body->children->text_len, 12);
    ic_xml_set_ns(data, "urn:other");
    assert_string_equal(data->ns, "urn:other");
    ic_xml_set_ns(body, NULL);
    assert_null(body->ns);
    ic_xml_set_ns(body, IC_NS_CLIENT);
    assert_true(x->attrs->inl);
    ic_xml_set_attr(x, "to", ic_xml_attr(x, "to")); /* its own value */
    assert_string_equal(ic_xml_attr(x, "to"), "a@b");
    ic_xml_set_attr(x, "id", "1");
    ic_xml_set_attr(x, "to", NULL);
    ic_xml_set_attr(x, "to", "c@d");
    copy = ic_xml_copy(x);
    assert_tree_equal(x, copy);
    out = ic_xml_to_string(copy, IC_NS_CLIENT);
    assert_string_equal(out,
                        "<message id='1' to='c@d'><body>hello, world</body>"
                        "<x xmlns='urn:other'>v</x></message>");
    ic_free(out);
    ic_xml_free(copy);
    ic_xml_free(x);
}

/* ic_xml_text_ref copies only when the text is split by elements. */
static void test_text_ref(void **state)
{
    struct ic_xml *x =
        parse_in(IC_NS_CLIENT, "<message><body>one</body><subject/>"
                               "<thread>a<x/>b</thread></message>");
    char *own;
    const char *t;

    (void)state;
    t = ic_xml_text_ref(ic_xml_child(x, "body", NULL), &own);
    assert_string_equal(t, "one");
    assert_null(own);
    t = ic_xml_text_ref(ic_xml_child(x, "body", NULL)->children, &own);
    assert_string_equal(t, "one");
    assert_null(own);
    t = ic_xml_text_ref(ic_xml_child(x, "subject", NULL), &own);
    assert_string_equal(t, "");
    assert_null(own);
    t = ic_xml_text_ref(ic_xml_child(x, "thread", NULL), &own);
    assert_string_equal(t, "ab");
    assert_non_null(own);
    ic_free(own);
    ic_xml_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_attrs),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_detach_append),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_deep_tree),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_escape_invalid),
        cmocka_unit_test(test_xmlns_placement),
        cmocka_unit_test(test_stream_prefix),
        cmocka_unit_test(test_attr_namespaces),
        cmocka_unit_test(test_round_trip_escaping),
        cmocka_unit_test(test_round_trip_utf8),
        cmocka_unit_test(test_round_trip_namespaces),
        cmocka_unit_test(test_round_trip_seed),
        cmocka_unit_test(test_parse_one_element),
        cmocka_unit_test(test_parsed_nodes_change),
        cmocka_unit_test(test_text_ref),
    };

    return cmocka_run_group_tests_name("xmpp_xml", tests, NULL, NULL);
}
