/*
 * test_constraints_xml.c - the <constraints xmlns='http://www.csp/resOntology'>
 * payload of the seed paper's constraint_catalog_resources request.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ic_node.h"
#include "test_util.h"

#define NS "http://www.csp/resOntology"
#define OPEN "<constraints xmlns='" NS "'>"
#define C(a, v)                                                    \
    "<constraint><attribute>" a "</attribute><value>" v "</value>" \
    "</constraint>"

static const char *const seed_pairs[5][2] = {
    {"availabilityQuanity", "99.999"},  {"replicationFactor", "5"},
    {"tierCountries", "JAPAN"},         {"StorageReplicationMethod", "AMQP"},
    {"InterCloudStorageAccess", "NFS"},
};

static int parse(const char *xml, struct ic_constraints_doc *doc)
{
    return ic_constraints_parse(xml, strlen(xml), doc);
}

static void check_seed_doc(const struct ic_constraints_doc *doc)
{
    assert_int_equal(doc->n, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(doc->c[i].attribute, seed_pairs[i][0]);
        assert_string_equal(doc->c[i].value, seed_pairs[i][1]);
    }
    assert_false(doc->recursive);
}

/* Expects RC, with doc->error holding NEEDLE and the doc left empty. */
static void
refused(const char *xml, size_t len, int rc_want, const char *needle)
{
    struct ic_constraints_doc doc;
    int rc;

    memset(&doc, 0xa5, sizeof doc);
    rc = ic_constraints_parse(xml, len, &doc);
    if (rc != rc_want)
        fail_msg("expected %d, got %d (%s) for: %.200s", rc_want, rc,
                 rc ? doc.error : "", xml);
    if (strstr(doc.error, needle) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", doc.error, needle);
    assert_null(doc.c);
    assert_int_equal(doc.n, 0);
    ic_constraints_doc_free(&doc);
}

static void refuse(const char *xml, int rc_want, const char *needle)
{
    refused(xml, strlen(xml), rc_want, needle);
}

static void test_seed_request(void **state)
{
    struct ic_constraints_doc doc;
    size_t len;
    char *xml;

    (void)state;
    xml = tu_read_file(TU_DATA "/seed-request.xml", &len);
    /* the file is the paper's text: its odd white space is there */
    assert_non_null(strstr(xml, "<attribute>availabilityQuanity </attribute>"
                                " \n\n         <value>"));
    assert_non_null(strstr(xml, "<attribute>StorageReplicationMethod \n"
                                "         </attribute>"));
    assert_int_equal(ic_constraints_parse(xml, len, &doc), 0);
    check_seed_doc(&doc);
    ic_constraints_doc_free(&doc);
    assert_null(doc.c);
    assert_int_equal(doc.n, 0);
    ic_constraints_doc_free(&doc); /* twice is harmless */
    ic_free(xml);

    xml = tu_read_file(TU_DATA "/seed-constraints.xml", &len);
    assert_int_equal(strncmp(xml, "      " OPEN, strlen(OPEN) + 6), 0);
    assert_int_equal(ic_constraints_parse(xml, len, &doc), 0);
    check_seed_doc(&doc);
    ic_constraints_doc_free(&doc);
    ic_free(xml);
}

static void test_forms(void **state)
{
    struct ic_constraints_doc doc;

    (void)state;
    /* an XML declaration is not a processing instruction */
    assert_int_equal(parse("<?xml version='1.0' encoding='UTF-8'?>\n" OPEN C(
                               "a", "b") "</constraints>",
                           &doc),
                     0);
    assert_int_equal(doc.n, 1);
    ic_constraints_doc_free(&doc);
    /* prefixed names, CDATA, character references, the namespace with the
     * white space the paper's answer puts in it */
    assert_int_equal(
        parse("<r:constraints xmlns:r=' " NS "'><r:constraint>"
              "<r:attribute><![CDATA[ tier]]>Countries</r:attribute>"
              "<r:value>US, &#74;APAN&amp;</r:value></r:constraint>"
              "</r:constraints>",
              &doc),
        0);
    assert_int_equal(doc.n, 1);
    assert_string_equal(doc.c[0].attribute, "tierCountries");
    assert_string_equal(doc.c[0].value, "US, JAPAN&");
    ic_constraints_doc_free(&doc);
    /* an empty value is a value; an empty list is a list */
    assert_int_equal(parse(OPEN C("a", "") C("b", "  ") "</constraints>", &doc),
                     0);
    assert_int_equal(doc.n, 2);
    assert_string_equal(doc.c[0].value, "");
    assert_string_equal(doc.c[1].value, "");
    ic_constraints_doc_free(&doc);
    assert_int_equal(parse(OPEN "</constraints>", &doc), 0);
    assert_int_equal(doc.n, 0);
    ic_constraints_doc_free(&doc);
    /* elements of other namespaces are ignored; value before attribute */
    assert_int_equal(
        parse(OPEN "<constraint xmlns:o='urn:o'><o:note>x</o:note>"
                   "<value>v</value><attribute>a</attribute></constraint>"
                   "<other xmlns='urn:o'>" C("no", "no") "</other>"
                                                         "</constraints>",
              &doc),
        0);
    assert_int_equal(doc.n, 1);
    assert_string_equal(doc.c[0].attribute, "a");
    assert_string_equal(doc.c[0].value, "v");
    ic_constraints_doc_free(&doc);
}

static void test_recursive(void **state)
{
    static const struct {
        const char *attr;
        bool want;
    } cases[] = {
        {"", false},
        {" recursive='true'", true},
        {" recursive=\"true\"", true},
        {" recursive='1'", true},
        {" recursive='false'", false},
        {" recursive='yes'", false},
    };
    struct ic_constraints_doc doc;
    char xml[256];

    (void)state;
    for (size_t i = 0; i < IC_ARRAY_LEN(cases); i++) {
        snprintf(xml, sizeof xml,
                 "<constraints xmlns='" NS "'%s>" C("a", "b") "</constraints>",
                 cases[i].attr);
        assert_int_equal(parse(xml, &doc), 0);
        assert_int_equal(doc.recursive, cases[i].want);
        assert_int_equal(doc.n, 1);
        ic_constraints_doc_free(&doc);
    }
}

static void test_missing_parts(void **state)
{
    (void)state;
    refuse(OPEN "<constraint><attribute>replicationFactor</attribute>"
                "</constraint></constraints>",
           IC_EVALUE, "replicationFactor");
    refuse(OPEN C("a", "1") "<constraint><attribute>x</attribute>"
                            "</constraint></constraints>",
           IC_EVALUE, "constraint 2");
    refuse(OPEN "<constraint><value>5</value></constraint></constraints>",
           IC_EVALUE, "attribute");
    refuse(OPEN "<constraint><attribute> </attribute><value>5</value>"
                "</constraint></constraints>",
           IC_EVALUE, "attribute");
    refuse(OPEN "<constraint/></constraints>", IC_EVALUE, "attribute");
}

static const char laughs[] =
    "<?xml version='1.0'?>\n"
    "<!DOCTYPE lolz [\n"
    " <!ENTITY lol \"lol\">\n"
    " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
    " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
    " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
    " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
    " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
    " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
    " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
    " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
    " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
    "]>\n" OPEN C("a", "&lol9;") "</constraints>\n";

static void test_hostile(void **state)
{
    (void)state;
    refuse("<!DOCTYPE constraints>" OPEN C("a", "b") "</constraints>",
           IC_ESYNTAX, "DTD");
    refuse("<!DOCTYPE constraints SYSTEM 'file:///etc/passwd'>" OPEN C(
               "a", "&xxe;") "</constraints>",
           IC_ESYNTAX, "DTD");
    refuse(laughs, IC_ESYNTAX, "");
    refuse("<!-- hello -->" OPEN C("a", "b") "</constraints>", IC_ESYNTAX,
           "comment");
    refuse(OPEN "<constraint><attribute>a<!--x--></attribute><value>b"
                "</value></constraint></constraints>",
           IC_ESYNTAX, "comment");
    refuse(OPEN "<?php evil(); ?>" C("a", "b") "</constraints>", IC_ESYNTAX,
           "processing instruction");
    refuse("<?xml-stylesheet href='x'?>" OPEN C("a", "b") "</constraints>",
           IC_ESYNTAX, "processing instruction");
    /* an entity nobody declared */
    refuse(OPEN C("a", "&undeclared;") "</constraints>", IC_ESYNTAX, "line 1");
}

static char *many(int n, size_t text, int depth)
{
    size_t cap = (size_t)n * 120 + text + (size_t)depth * 16 + 256, len = 0;
    char *x = ic_malloc(cap);

    for (int i = 0; i < depth; i++)
        len += (size_t)snprintf(x + len, cap - len, "<w%d>", i);
    len += (size_t)snprintf(x + len, cap - len, OPEN);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(x + len, cap - len, C("attr%d", "v%d"), i, i);
    if (text > 0) {
        len += (size_t)snprintf(x + len, cap - len,
                                "<constraint><attribute>t</attribute>"
                                "<value>");
        memset(x + len, 'x', text);
        len += text;
        len += (size_t)snprintf(x + len, cap - len, "</value></constraint>");
    }
    len += (size_t)snprintf(x + len, cap - len, "</constraints>");
    for (int i = depth - 1; i >= 0; i--)
        len += (size_t)snprintf(x + len, cap - len, "</w%d>", i);
    assert_true(len < cap);
    return x;
}

static void test_limits(void **state)
{
    struct ic_constraints_doc doc;
    char *x;

    (void)state;
    /* as many constraints as allowed, then one more */
    x = many(IC_CONSTRAINTS_MAX, 0, 0);
    assert_int_equal(parse(x, &doc), 0);
    assert_int_equal(doc.n, IC_CONSTRAINTS_MAX);
    assert_string_equal(doc.c[IC_CONSTRAINTS_MAX - 1].attribute, "attr63");
    ic_constraints_doc_free(&doc);
    ic_free(x);
    x = many(IC_CONSTRAINTS_MAX + 1, 0, 0);
    refuse(x, IC_ELIMIT, "constraints");
    ic_free(x);

    /* the longest text allowed, then one byte more */
    x = many(0, IC_CONSTRAINT_TEXT_MAX, 0);
    assert_int_equal(parse(x, &doc), 0);
    assert_int_equal(doc.n, 1);
    assert_int_equal(strlen(doc.c[0].value), IC_CONSTRAINT_TEXT_MAX);
    ic_constraints_doc_free(&doc);
    ic_free(x);
    x = many(0, IC_CONSTRAINT_TEXT_MAX + 1, 0);
    refuse(x, IC_ELIMIT, "text");
    ic_free(x);
    x = many(0, 100000, 0);
    refuse(x, IC_ELIMIT, "text");
    ic_free(x);

    /* depth: constraints, constraint and value take three levels */
    x = many(1, 0, IC_CONSTRAINTS_DEPTH_MAX - 3);
    assert_int_equal(parse(x, &doc), 0);
    assert_int_equal(doc.n, 1);
    ic_constraints_doc_free(&doc);
    ic_free(x);
    x = many(1, 0, IC_CONSTRAINTS_DEPTH_MAX - 2);
    refuse(x, IC_ELIMIT, "deeper");
    ic_free(x);
    x = many(0, 0, 5000);
    refuse(x, IC_ELIMIT, "deeper");
    ic_free(x);

    /* a payload far too large to look at */
    {
        size_t big =
            (size_t)IC_CONSTRAINTS_MAX * IC_CONSTRAINT_TEXT_MAX * 2 + 1;
        x = ic_malloc(big + 1);
        memset(x, ' ', big);
        x[big] = '\0';
        memcpy(x, OPEN, strlen(OPEN));
        refused(x, big, IC_ELIMIT, "large");
        ic_free(x);
    }
}

static void test_malformed(void **state)
{
    (void)state;
    /* the mismatched end tag's name is on line 3, column 15 (expat counts
     * columns from 0) */
    refuse(OPEN "\n<constraint>\n <attribute>a</value>\n</constraint>"
                "</constraints>",
           IC_ESYNTAX, "line 3, column 15: mismatched tag");
    /* unclosed */
    refuse(OPEN "\n" C("a", "b"), IC_ESYNTAX, "line 2");
    refuse("", IC_ESYNTAX, "line 1");
    refuse("just text", IC_ESYNTAX, "line 1, column 0");
    refuse(OPEN "<constraint><attribute>a</attribute><value>b</value>"
                "</constraint></constraints><second/>",
           IC_ESYNTAX, "line 1");
    /* invalid UTF-8 */
    refuse(OPEN C("a", "\xff\xfe") "</constraints>", IC_ESYNTAX, "line 1");
    /* a NUL byte inside the length */
    refused(OPEN C("a", "b") "\0</constraints>", strlen(OPEN C("a", "b")) + 15,
            IC_ESYNTAX, "line 1");
}

static void test_wrong_namespace(void **state)
{
    (void)state;
    refuse("<constraints xmlns='http://www.csp/resOntology#'>" C(
               "a", "b") "</constraints>",
           IC_EVALUE, "constraints");
    refuse("<constraints>" C("a", "b") "</constraints>", IC_EVALUE,
           "constraints");
    refuse("<constraints xmlns='http://www.csp/resontology'>" C(
               "a", "b") "</constraints>",
           IC_EVALUE, NS);
    refuse("<iq xmlns='jabber:client'><constraint><attribute>a</attribute>"
           "<value>b</value></constraint></iq>",
           IC_EVALUE, NS);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_request),
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_recursive),
        cmocka_unit_test(test_missing_parts),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_wrong_namespace),
    };

    return tu_main(argc, argv, "constraints_xml", tests, IC_ARRAY_LEN(tests));
}
