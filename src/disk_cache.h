/*
 * On-disk cache of program binaries (DESIGN.md, "Programs"). POSIX only.
 *
 * One file per key, <dir>/<hex(key)>.bin, laid out as (all integers little-endian):
 *
 *   offset  size  field
 *        0     8  magic "FACLBIN\0"
 *        8     4  uint32 format version, FACL_DISK_CACHE_FORMAT
 *       12     4  uint32 reserved, 0 (a reader rejects anything else)
 *       16    32  key (the caller's SHA-256 over everything the binary depends on)
 *       48     8  uint64 payload length; must equal file size - 88
 *       56    32  SHA-256 of the payload
 *       88     n  payload
 *
 * The key is stored as well as used in the name so that a file copied or
 * renamed onto the wrong name is rejected. None of these functions print.
 */
#ifndef FACL_DISK_CACHE_H
#define FACL_DISK_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define FACL_DISK_CACHE_FORMAT 1
#define FACL_DISK_CACHE_HEADER_SIZE 88

/* Resolve the cache directory from the environment, without creating it:
 *   FACL_CACHE "0", "off", "no" or "false" (any case)  -> 0, the disk cache is off;
 *   else FACL_CACHE_DIR if set and non-empty;
 *   else $XDG_CACHE_HOME/facl if XDG_CACHE_HOME is set, non-empty and absolute;
 *   else $HOME/.cache/facl if HOME is set, non-empty and absolute;
 *   else 0. Never falls back to /tmp.
 * Returns 1 with buf filled (NUL-terminated), or 0 when off, unavailable or
 * longer than cap - 1 (buf is then "" if cap > 0). */
int facl_disk_cache_dir(char *buf, size_t cap);

/* Load <dir>/<hex(key)>.bin.
 * Returns 1 with *payload (malloc'd, caller frees; non-NULL even when *len is 0);
 * 0 when there is no such file; -1 when a file exists but is unusable (bad magic,
 * version, reserved field, stored key, length, checksum, not a regular file, read
 * error, out of memory). On 0 and -1, *payload is NULL and *len is 0. */
int facl_disk_cache_load(const char *dir, const uint8_t key[32], unsigned char **payload,
                         size_t *len);

/* Store atomically: create dir and missing parents (mode 0700; existing ones are
 * left as they are), write a temp file in dir, fsync, rename over
 * <dir>/<hex(key)>.bin. Returns 0, or -1 with no temp file left behind. The file
 * is created mode 0600. */
int facl_disk_cache_store(const char *dir, const uint8_t key[32], const unsigned char *payload,
                          size_t len);

#endif
