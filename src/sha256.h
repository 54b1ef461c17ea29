/*
 * SHA-256 (FIPS 180-4), used to key and checksum the on-disk program cache.
 * Our own small implementation so the library needs no crypto dependency;
 * it is not meant to be constant-time or fast, only correct and portable.
 */
#ifndef FACL_SHA256_H
#define FACL_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct facl_sha256 {
    uint32_t state[8];
    uint64_t total_len; /* bytes fed so far */
    uint8_t block[64];
    size_t block_fill;  /* bytes waiting in block */
} facl_sha256;

void facl_sha256_init(facl_sha256 *s);
void facl_sha256_update(facl_sha256 *s, const void *data, size_t len);
/* Writes the digest; the state must be re-initialised before reuse. */
void facl_sha256_final(facl_sha256 *s, uint8_t digest[32]);
/* Lowercase hex, NUL-terminated. */
void facl_sha256_hex(const uint8_t digest[32], char hex[65]);

#endif
