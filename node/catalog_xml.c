/*
 * catalog_xml.c - the seed paper's <constraints> payload to (attribute,
 * value) pairs, with expat. Hostile input is refused: no DTD, no entity
 * declaration, no comment or processing instruction, bounded depth, count
 * and text length.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <expat.h>

#include "ic_node.h"

#define SEP '\x01'

enum field { F_NONE, F_ATTR, F_VALUE };

struct pstate {
    XML_Parser p;
    struct ic_constraints_doc *doc;
    int rc;
    unsigned depth;
    unsigned cons_depth; /* depth of <constraints>, 0 outside */
    bool in_constraint;
    enum field field;
    char *text;
    size_t text_len;
    char *attr, *value;
    bool seen;
};

static void perr(struct pstate *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void perr(struct pstate *s, int rc, const char *fmt, ...)
{
    va_list ap;

    if (s->rc != 0)
        return;
    s->rc = rc;
    va_start(ap, fmt);
    vsnprintf(s->doc->error, sizeof s->doc->error, fmt, ap);
    va_end(ap);
    XML_StopParser(s->p, XML_FALSE);
}

/* Whether expat's "ns<SEP>local" NAME is LOCAL in our namespace (the
 * namespace compared trimmed, as the seed writes ' http://...'). */
static bool is_ours(const char *name, const char *local)
{
    const char *sep = strchr(name, SEP);
    const char *ns = name;
    size_t nl;

    if (sep == NULL || strcmp(sep + 1, local) != 0)
        return false;
    while (ns < sep && isspace((unsigned char)*ns))
        ns++;
    nl = (size_t)(sep - ns);
    while (nl > 0 && isspace((unsigned char)ns[nl - 1]))
        nl--;
    return nl == strlen(IC_RESONTOLOGY_NS) &&
           memcmp(ns, IC_RESONTOLOGY_NS, nl) == 0;
}

static char *trimmed(const char *t, size_t n)
{
    size_t a = 0;

    while (a < n && isspace((unsigned char)t[a]))
        a++;
    while (n > a && isspace((unsigned char)t[n - 1]))
        n--;
    return ic_strndup(t + a, n - a);
}

static void on_start(void *data, const XML_Char *name, const XML_Char **atts)
{
    struct pstate *s = data;

    if (++s->depth > IC_CONSTRAINTS_DEPTH_MAX) {
        perr(s, IC_ELIMIT, "elements nested deeper than %d",
             IC_CONSTRAINTS_DEPTH_MAX);
        return;
    }
    if (s->cons_depth == 0) {
        if (is_ours(name, "constraints") && !s->seen) {
            s->cons_depth = s->depth;
            s->seen = true;
            for (int i = 0; atts[i] != NULL; i += 2)
                if (strcmp(atts[i], "recursive") == 0)
                    s->doc->recursive = strcmp(atts[i + 1], "true") == 0 ||
                                        strcmp(atts[i + 1], "1") == 0;
        }
        return;
    }
    if (s->depth == s->cons_depth + 1 && is_ours(name, "constraint")) {
        if (s->doc->n >= IC_CONSTRAINTS_MAX) {
            perr(s, IC_ELIMIT, "more than %d constraints", IC_CONSTRAINTS_MAX);
            return;
        }
        s->in_constraint = true;
    } else if (s->in_constraint && s->depth == s->cons_depth + 2) {
        if (is_ours(name, "attribute"))
            s->field = F_ATTR;
        else if (is_ours(name, "value"))
            s->field = F_VALUE;
        s->text_len = 0;
    }
}

static void on_end(void *data, const XML_Char *name)
{
    struct pstate *s = data;
    struct ic_constraints_doc *d = s->doc;

    (void)name;
    if (s->field != F_NONE && s->depth == s->cons_depth + 2) {
        char **slot = s->field == F_ATTR ? &s->attr : &s->value;
        ic_free(*slot);
        *slot = trimmed(s->text ? s->text : "", s->text_len);
        s->field = F_NONE;
    } else if (s->in_constraint && s->depth == s->cons_depth + 1) {
        s->in_constraint = false;
        if (s->attr == NULL || s->attr[0] == '\0') {
            perr(s, IC_EVALUE, "constraint %zu has no <attribute>", d->n + 1);
        } else if (s->value == NULL) {
            perr(s, IC_EVALUE, "constraint %zu ('%s') has no <value>", d->n + 1,
                 s->attr);
        } else {
            d->c[d->n].attribute = s->attr;
            d->c[d->n].value = s->value;
            d->n++;
            s->attr = s->value = NULL;
        }
    } else if (s->depth == s->cons_depth) {
        s->cons_depth = 0;
    }
    s->depth--;
}

static void on_text(void *data, const XML_Char *t, int len)
{
    struct pstate *s = data;

    if (s->field == F_NONE || len <= 0)
        return;
    if (s->text_len + (size_t)len > IC_CONSTRAINT_TEXT_MAX) {
        perr(s, IC_ELIMIT, "text longer than %d bytes", IC_CONSTRAINT_TEXT_MAX);
        return;
    }
    if (s->text == NULL)
        s->text = ic_malloc(IC_CONSTRAINT_TEXT_MAX + 1);
    memcpy(s->text + s->text_len, t, (size_t)len);
    s->text_len += (size_t)len;
}

static void on_doctype(void *data,
                       const XML_Char *name,
                       const XML_Char *sys,
                       const XML_Char *pub,
                       int internal)
{
    (void)name, (void)sys, (void)pub, (void)internal;
    perr(data, IC_ESYNTAX, "DTDs are not allowed");
}

static void on_entity(void *data,
                      const XML_Char *name,
                      int pe,
                      const XML_Char *v,
                      int vl,
                      const XML_Char *base,
                      const XML_Char *sys,
                      const XML_Char *pub,
                      const XML_Char *notation)
{
    (void)name, (void)pe, (void)v, (void)vl, (void)base, (void)sys;
    (void)pub, (void)notation;
    perr(data, IC_ESYNTAX, "entity declarations are not allowed");
}

static void on_comment(void *data, const XML_Char *c)
{
    (void)c;
    perr(data, IC_ESYNTAX, "comments are not allowed");
}

static void on_pi(void *data, const XML_Char *target, const XML_Char *d)
{
    (void)target, (void)d;
    perr(data, IC_ESYNTAX, "processing instructions are not allowed");
}

int ic_constraints_parse(const char *xml,
                         size_t len,
                         struct ic_constraints_doc *doc)
{
    struct pstate s = {0};
    enum XML_Status st;

    memset(doc, 0, sizeof *doc);
    if (len > (size_t)IC_CONSTRAINTS_MAX * IC_CONSTRAINT_TEXT_MAX * 2) {
        snprintf(doc->error, sizeof doc->error, "payload too large");
        return IC_ELIMIT;
    }
    doc->c = ic_calloc(IC_CONSTRAINTS_MAX, sizeof *doc->c);
    s.doc = doc;
    s.p = XML_ParserCreateNS("UTF-8", SEP);
    XML_SetUserData(s.p, &s);
    XML_SetElementHandler(s.p, on_start, on_end);
    XML_SetCharacterDataHandler(s.p, on_text);
    XML_SetStartDoctypeDeclHandler(s.p, on_doctype);
    XML_SetEntityDeclHandler(s.p, on_entity);
    XML_SetCommentHandler(s.p, on_comment);
    XML_SetProcessingInstructionHandler(s.p, on_pi);
    XML_SetParamEntityParsing(s.p, XML_PARAM_ENTITY_PARSING_NEVER);
    st = XML_Parse(s.p, xml, (int)len, XML_TRUE);
    if (st == XML_STATUS_ERROR && s.rc == 0) {
        s.rc = IC_ESYNTAX;
        snprintf(doc->error, sizeof doc->error, "line %lu, column %lu: %s",
                 (unsigned long)XML_GetCurrentLineNumber(s.p),
                 (unsigned long)XML_GetCurrentColumnNumber(s.p),
                 XML_ErrorString(XML_GetErrorCode(s.p)));
    }
    if (s.rc == 0 && !s.seen) {
        s.rc = IC_EVALUE;
        snprintf(doc->error, sizeof doc->error,
                 "no <constraints xmlns='%s'> element", IC_RESONTOLOGY_NS);
    }
    XML_ParserFree(s.p);
    ic_free(s.text);
    ic_free(s.attr);
    ic_free(s.value);
    if (s.rc != 0) {
        char err[sizeof doc->error];
        memcpy(err, doc->error, sizeof err);
        ic_constraints_doc_free(doc);
        memcpy(doc->error, err, sizeof err);
    }
    return s.rc;
}

void ic_constraints_doc_free(struct ic_constraints_doc *doc)
{
    if (doc->c != NULL) {
        for (size_t i = 0; i < doc->n; i++) {
            ic_free((char *)doc->c[i].attribute);
            ic_free((char *)doc->c[i].value);
        }
        ic_free(doc->c);
    }
    memset(doc, 0, sizeof *doc);
}
