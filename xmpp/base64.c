/*
 * base64.c - strict base64 for SASL data (RFC 4648 section 4, RFC 6120
 * 6.4.2) on OpenSSL's block coder.
 *
 * EVP_DecodeBlock() is lenient (it skips surrounding white space and
 * ignores the bits under the padding), so decoding checks the characters
 * and the length first and then accepts only input that encodes back to
 * itself: there is exactly one valid encoding of any byte string.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "sasl.h"

char *ic_base64_encode(const unsigned char *in, size_t len)
{
    char *out;
    int n;

    if (len == 0)
        return ic_strdup("=");
    if (len > (size_t)INT_MAX / 4 * 3) /* EVP_EncodeBlock takes an int */
        abort();
    out = ic_malloc((len + 2) / 3 * 4 + 1);
    n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    out[n] = '\0';
    return out;
}

static bool is_alphabet(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* The number of padding characters, or -1 when IN has the wrong length
 * or a character outside the alphabet before its padding. */
static int check_chars(const char *in, size_t len)
{
    size_t pad = 0;

    if (len % 4 != 0)
        return -1;
    while (pad < 2 && pad < len && in[len - 1 - pad] == '=')
        pad++;
    for (size_t i = 0; i < len - pad; i++) {
        if (!is_alphabet(in[i]))
            return -1;
    }
    return (int)pad;
}

int ic_base64_decode(const char *in,
                     size_t in_len,
                     unsigned char **out,
                     size_t *out_len)
{
    unsigned char *buf;
    char *again;
    int pad, n;
    bool ok;

    if (in_len == 0 || (in_len == 1 && in[0] == '=')) {
        *out = ic_calloc(1, 1);
        *out_len = 0;
        return 0;
    }
    pad = check_chars(in, in_len);
    if (pad < 0 || in_len > (size_t)INT_MAX)
        return IC_EVALUE;
    buf = ic_malloc(in_len / 4 * 3 + 1);
    n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)in_len) - pad;
    /* The data may be a password: wipe what is not handed out. */
    ok = n > 0;
    if (ok) {
        again = ic_base64_encode(buf, (size_t)n);
        ok = strlen(again) == in_len && !memcmp(again, in, in_len);
        OPENSSL_cleanse(again, strlen(again));
        ic_free(again);
    }
    if (!ok) {
        OPENSSL_cleanse(buf, in_len / 4 * 3);
        ic_free(buf);
        return IC_EVALUE;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = (size_t)n;
    return 0;
}
