/*
 * scram.c - SCRAM credentials (RFC 5802 section 3, RFC 7677): what an
 * account stores instead of its password.
 *
 *   SaltedPassword = PBKDF2(SASLprep(password), salt, i)
 *   StoredKey      = H(HMAC(SaltedPassword, "Client Key"))
 *   ServerKey      = HMAC(SaltedPassword, "Server Key")
 *
 * Passwords are prepared with SASLprep (RFC 4013) as a query string
 * (unassigned code points allowed), as Prosody does, so a client's
 * preparation and ours agree. Every intermediate that could recover the
 * password is cleansed before returning.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stringprep.h>

#include "sasl.h"

#define SALT_LEN 16
/* SASLprep output is at most this many times its input (NFKC expansion),
 * and passwords are at most this long. */
#define PREP_GROWTH 18
#define PASSWORD_MAX 4096

static const EVP_MD *md(enum ic_scram_hash h)
{
    return h == IC_SCRAM_SHA1 ? EVP_sha1() : EVP_sha256();
}

static void crypto_failed(const char *what)
{
    fprintf(stderr, "icroot: %s failed in OpenSSL\n", what);
    abort();
}

size_t ic_scram_hash_len(enum ic_scram_hash h)
{
    switch (h) {
    case IC_SCRAM_SHA1:
        return 20;
    case IC_SCRAM_SHA256:
        return 32;
    }
    return 0;
}

void ic_scram__hmac(enum ic_scram_hash h,
                    const unsigned char *key,
                    size_t key_len,
                    const void *msg,
                    size_t msg_len,
                    unsigned char *out)
{
    unsigned int len = 0;

    if (key_len > INT_MAX ||
        HMAC(md(h), key, (int)key_len, msg, msg_len, out, &len) == NULL ||
        len != ic_scram_hash_len(h))
        crypto_failed("HMAC");
}

void ic_scram__hash(enum ic_scram_hash h,
                    const void *msg,
                    size_t msg_len,
                    unsigned char *out)
{
    unsigned int len = 0;

    if (!EVP_Digest(msg, msg_len, out, &len, md(h), NULL) ||
        len != ic_scram_hash_len(h))
        crypto_failed("EVP_Digest");
}

/* SASLprep(PASSWORD) into a new buffer the caller cleanses and frees, or
 * NULL when the password is empty, too long, not UTF-8, or prohibited. */
static char *saslprep(const char *password)
{
    size_t len = strlen(password), size;
    char *buf;

    if (len == 0 || len > PASSWORD_MAX)
        return NULL;
    size = len * PREP_GROWTH + 1;
    buf = ic_calloc(1, size);
    memcpy(buf, password, len);
    if (stringprep(buf, size, 0, stringprep_saslprep) != STRINGPREP_OK ||
        buf[0] == '\0') {
        OPENSSL_cleanse(buf, size);
        ic_free(buf);
        return NULL;
    }
    return buf;
}

static bool
valid_params(enum ic_scram_hash h, size_t salt_len, uint32_t iterations)
{
    return ic_scram_hash_len(h) != 0 && salt_len > 0 &&
           salt_len <= sizeof(((struct ic_scram_creds *)0)->salt) &&
           iterations > 0 && iterations <= INT_MAX;
}

int ic_scram__salted_password(enum ic_scram_hash h,
                              const char *password,
                              const unsigned char *salt,
                              size_t salt_len,
                              uint32_t iterations,
                              unsigned char *out)
{
    size_t hlen = ic_scram_hash_len(h);
    char *prep;

    if (password == NULL || salt == NULL ||
        !valid_params(h, salt_len, iterations))
        return IC_EINVAL;
    prep = saslprep(password);
    if (prep == NULL)
        return IC_EINVAL;
    if (!PKCS5_PBKDF2_HMAC(prep, (int)strlen(prep), salt, (int)salt_len,
                           (int)iterations, md(h), (int)hlen, out))
        crypto_failed("PKCS5_PBKDF2_HMAC");
    OPENSSL_cleanse(prep, strlen(prep));
    ic_free(prep);
    return 0;
}

int ic_scram_creds_derive(enum ic_scram_hash h,
                          const char *password,
                          const unsigned char *salt,
                          size_t salt_len,
                          uint32_t iterations,
                          struct ic_scram_creds *out)
{
    unsigned char salted[IC_SCRAM_MAX_HASH], client_key[IC_SCRAM_MAX_HASH];
    size_t hlen = ic_scram_hash_len(h);
    struct ic_scram_creds c;
    int rc;

    if (out == NULL)
        return IC_EINVAL;
    rc = ic_scram__salted_password(h, password, salt, salt_len, iterations,
                                   salted);
    if (rc != 0)
        return rc;
    memset(&c, 0, sizeof c);
    memcpy(c.salt, salt, salt_len);
    c.salt_len = salt_len;
    c.iterations = iterations;
    ic_scram__hmac(h, salted, hlen, "Client Key", 10, client_key);
    ic_scram__hash(h, client_key, hlen, c.stored_key);
    ic_scram__hmac(h, salted, hlen, "Server Key", 10, c.server_key);
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(client_key, sizeof client_key);
    *out = c;
    OPENSSL_cleanse(&c, sizeof c);
    return 0;
}

int ic_scram_creds_make(enum ic_scram_hash h,
                        const char *password,
                        uint32_t iterations,
                        struct ic_scram_creds *out)
{
    unsigned char salt[SALT_LEN];

    if (iterations < IC_SCRAM_MIN_ITERATIONS)
        return IC_EINVAL;
    if (RAND_bytes(salt, sizeof salt) != 1)
        return IC_EIO;
    return ic_scram_creds_derive(h, password, salt, sizeof salt, iterations,
                                 out);
}

bool ic_scram_check_password(enum ic_scram_hash h,
                             const struct ic_scram_creds *c,
                             const char *password)
{
    struct ic_scram_creds d;
    bool ok;

    if (c == NULL || password == NULL ||
        !valid_params(h, c->salt_len, c->iterations))
        return false;
    if (ic_scram_creds_derive(h, password, c->salt, c->salt_len, c->iterations,
                              &d) != 0)
        return false;
    ok = CRYPTO_memcmp(d.stored_key, c->stored_key, ic_scram_hash_len(h)) == 0;
    OPENSSL_cleanse(&d, sizeof d);
    return ok;
}
