/*
 * jid.c - JIDs (RFC 7622) prepared with libidn's stringprep profiles as
 * Prosody does: Nodeprep for the localpart, Nameprep (and an IDNA ToASCII
 * check with the STD3 rules) for the domainpart, Resourceprep for the
 * resourcepart. Unassigned code points are allowed (query strings).
 *
 * Splitting follows RFC 7622 section 3.1: the resourcepart is everything
 * after the first '/', the localpart everything before the first '@' that
 * precedes it. Every part is 1..1023 bytes after preparation; a domainpart
 * loses one trailing dot, and may be an IP literal ("[::1]", or a dotted
 * IPv4 address, which passes as a domain name).
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <idna.h>
#include <stringprep.h>

#include "ic_xmpp.h"

/* Runs PROFILE on the LEN bytes at S; a new string of 1..IC_JID_PART_MAX
 * bytes, or NULL. stringprep() works in a buffer of its final size, so an
 * output over the limit fails there without any quadratic growing. */
static char *prep(const char *s, size_t len, const Stringprep_profile *profile)
{
    size_t size = (len > IC_JID_PART_MAX ? len : IC_JID_PART_MAX) + 1;
    char *buf = ic_calloc(1, size);
    size_t n;

    memcpy(buf, s, len);
    if (memchr(s, '\0', len) != NULL ||
        stringprep(buf, size, 0, profile) != STRINGPREP_OK)
        goto err;
    n = strlen(buf);
    if (n == 0 || n > IC_JID_PART_MAX)
        goto err;
    return buf;
err:
    ic_free(buf);
    return NULL;
}

/* "[IPv6]" (hex digits lower-cased), or NULL when S is not one. */
static char *ip6_literal(const char *s, size_t len)
{
    char addr[INET6_ADDRSTRLEN + 1];
    unsigned char bin[16];
    char *out;

    if (len < 3 || s[0] != '[' || s[len - 1] != ']' ||
        len - 2 > INET6_ADDRSTRLEN)
        return NULL;
    memcpy(addr, s + 1, len - 2);
    addr[len - 2] = '\0';
    if (inet_pton(AF_INET6, addr, bin) != 1)
        return NULL;
    out = ic_strndup(s, len);
    for (char *p = out; *p; p++) {
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    }
    return out;
}

/* Replaces U+3002 IDEOGRAPHIC FULL STOP (left by Nameprep, a label
 * separator in IDNA) by '.', in place. */
static void map_dots(char *s)
{
    char *r = s, *w = s;

    while (*r) {
        if (!strncmp(r, "\xe3\x80\x82", 3)) {
            *w++ = '.';
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* A prepared domain name is one IDNA accepts under the STD3 rules (LDH
 * labels of 1..63 characters once in ASCII form) with no empty label. */
static bool idna_ok(const char *name)
{
    char *ascii = NULL;
    bool ok;

    if (name[0] == '.' || strstr(name, "..") != NULL ||
        name[strlen(name) - 1] == '.')
        return false;
    ok = idna_to_ascii_8z(name, &ascii,
                          IDNA_ALLOW_UNASSIGNED | IDNA_USE_STD3_ASCII_RULES) ==
         IDNA_SUCCESS;
    free(ascii);
    return ok;
}

/* Fast paths for ASCII, the common case on every stanza: what the
 * profiles do to ASCII is only case folding (nodeprep, nameprep) and
 * refusing control characters (all), space and "&'/:<>@ (nodeprep). A
 * fast path returns FALLBACK when the input is not plain ASCII, and the
 * caller runs stringprep then. */
static char *const fallback = (char *)"";

static char *
ascii_part(const char *s, size_t len, bool fold, const char *prohibited)
{
    char *out;

    if (len == 0 || len > IC_JID_PART_MAX)
        return len == 0 ? NULL : fallback;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x80)
            return fallback;
        if (ch < 0x20 || ch == 0x7f || strchr(prohibited, ch) != NULL)
            return NULL;
    }
    out = ic_strndup(s, len);
    for (char *p = out; fold && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return out;
}

/* An ASCII domain of LDH labels (STD3 rules) needs no IDNA pass. */
static char *ascii_domain(const char *s, size_t len)
{
    size_t label = 0;
    char *out;

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!isalnum(ch) && ch != '-' && ch != '.')
            return fallback;
    }
    out = ascii_part(s, len, true, "");
    if (out == NULL || out == fallback)
        return out;
    for (size_t i = 0; i <= len; i++) {
        bool end = out[i] == '.' || out[i] == '\0';
        if (end && (label == 0 || label > 63 || out[i - 1] == '-' ||
                    out[i - label] == '-')) {
            ic_free(out);
            return NULL;
        }
        label = end ? 0 : label + 1;
    }
    return out;
}

static char *domain_prep(const char *s, size_t len)
{
    char *out;

    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len > 0 && s[0] == '[')
        return ip6_literal(s, len);
    out = ascii_domain(s, len);
    if (out != fallback)
        return out;
    out = prep(s, len, stringprep_nameprep);
    if (out == NULL)
        return NULL;
    map_dots(out);
    if (!idna_ok(out)) {
        ic_free(out);
        return NULL;
    }
    return out;
}

/* Nodeprep of the LEN bytes at S: the ASCII fast path, else libidn. */
static char *node_prep(const char *s, size_t len)
{
    char *out = ascii_part(s, len, true, " \"&'/:<>@");

    return out != fallback ? out : prep(s, len, stringprep_xmpp_nodeprep);
}

char *ic_jid_nodeprep(const char *s)
{
    return s ? node_prep(s, strlen(s)) : NULL;
}

char *ic_jid_nameprep(const char *s)
{
    return s ? domain_prep(s, strlen(s)) : NULL;
}

char *ic_jid_resourceprep(const char *s)
{
    char *out;

    if (s == NULL)
        return NULL;
    out = ascii_part(s, strlen(s), false, "");
    return out != fallback ? out
                           : prep(s, strlen(s), stringprep_xmpp_resourceprep);
}

int ic_jid_parse(const char *s, struct ic_jid *out)
{
    const char *slash, *at, *dom;
    struct ic_jid j = {NULL, NULL, NULL};
    size_t head;

    if (s == NULL || out == NULL)
        return IC_EINVAL;
    slash = strchr(s, '/');
    head = slash ? (size_t)(slash - s) : strlen(s);
    at = memchr(s, '@', head);
    dom = at ? at + 1 : s;
    if (at != NULL) {
        j.local = node_prep(s, (size_t)(at - s));
        if (j.local == NULL)
            goto err;
    }
    j.domain = domain_prep(dom, (size_t)(s + head - dom));
    if (j.domain == NULL)
        goto err;
    if (slash != NULL) {
        j.resource = ic_jid_resourceprep(slash + 1);
        if (j.resource == NULL)
            goto err;
    }
    *out = j;
    return 0;
err:
    ic_jid_free(&j);
    return IC_EVALUE;
}

void ic_jid_free(struct ic_jid *j)
{
    if (j == NULL)
        return;
    ic_free(j->local);
    ic_free(j->domain);
    ic_free(j->resource);
    j->local = j->domain = j->resource = NULL;
}

static char *join(const struct ic_jid *j, bool with_resource)
{
    struct ic_buf b = {NULL, 0, 0};

    if (j->local != NULL) {
        ic_buf_puts(&b, j->local);
        ic_buf_puts(&b, "@");
    }
    ic_buf_puts(&b, j->domain ? j->domain : "");
    if (with_resource && j->resource != NULL) {
        ic_buf_puts(&b, "/");
        ic_buf_puts(&b, j->resource);
    }
    return b.data;
}

char *ic_jid_to_string(const struct ic_jid *j)
{
    return join(j, true);
}

char *ic_jid_bare(const struct ic_jid *j)
{
    return join(j, false);
}
