/* buf.c - the growable byte buffer used for output and serialization. */
#include <string.h>

#include "ic_xmpp.h"

static void reserve(struct ic_buf *b, size_t n)
{
    size_t cap = b->cap ? b->cap : 256;

    if (b->len + n + 1 <= b->cap)
        return;
    while (cap < b->len + n + 1)
        cap *= 2;
    b->data = ic_realloc(b->data, cap);
    b->cap = cap;
}

void ic_buf_append(struct ic_buf *b, const char *s, size_t n)
{
    reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void ic_buf_puts(struct ic_buf *b, const char *s)
{
    ic_buf_append(b, s, strlen(s));
}

void ic_buf_append_escaped(struct ic_buf *b, const char *s, size_t n)
{
    size_t run = 0;

    for (size_t i = 0; i < n; i++) {
        const char *rep;
        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '\'':
            rep = "&apos;";
            break;
        case '"':
            rep = "&quot;";
            break;
        default:
            continue;
        }
        ic_buf_append(b, s + run, i - run);
        ic_buf_puts(b, rep);
        run = i + 1;
    }
    ic_buf_append(b, s + run, n - run);
}

void ic_buf_reset(struct ic_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void ic_buf_free(struct ic_buf *b)
{
    ic_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
