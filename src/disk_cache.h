/*
 * On-disk cache of program binaries (docs/CACHE.md). POSIX only.
 *
 * Loading a binary runs its code, so the rules of ssh and ccache apply: a directory or
 * an entry that anyone but the effective user could have written is never used.
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
/* An entry file larger than this is rejected unread (a cap on what a load allocates). */
#define FACL_DISK_CACHE_MAX_FILE_BYTES ((uint64_t)256 << 20)
/* The bound of the directory's total size when the caller gives 0. */
#define FACL_DISK_CACHE_DEFAULT_MAX_BYTES ((uint64_t)512 << 20)
/* A temporary file this old (seconds) belongs to a writer that died: removed. */
#define FACL_DISK_CACHE_STALE_TMP_SECONDS 600

/* Which directory to use, without touching the file system. Every variable is read
 * through facl_getenv (secure_getenv):
 *   FACL_CACHE "0", "off", "no" or "false" (any case)  -> off;
 *   else FACL_CACHE_DIR if set and non-empty (it must be absolute);
 *   else `configured`: NULL = the default location ($XDG_CACHE_HOME/facl if that is
 *   absolute, else $HOME/.cache/facl if that is absolute), "" = off, else it must be
 *   absolute. Never falls back to /tmp or to the working directory.
 * Returns 1 with dir filled, or 0 (dir "") when off; then note says why, or is "" when
 * the caller's `configured` asked for no disk cache. */
int facl_disk_cache_resolve(const char *configured, char *dir, size_t dir_cap, char *note,
                            size_t note_cap);

/* Make dir ready for use: create it and missing parents (mode 0700) if it does not
 * exist, then refuse it unless it is a directory (not a symbolic link to one) owned by
 * the effective user and not writable by group or others: whoever can write it could
 * plant code that every application loads. Then remove the temporary files of writers
 * that died (older than FACL_DISK_CACHE_STALE_TMP_SECONDS; fresher ones may belong to
 * a store in progress in another process). Returns 0, or -1 with the reason in note. */
int facl_disk_cache_open_dir(const char *dir, char *note, size_t note_cap);

/* Load <dir>/<hex(key)>.bin, refusing what the user did not write: the file is opened
 * without following a symbolic link (and without blocking on a FIFO) and must be a
 * regular file owned by the effective user, not writable by group or others, and at
 * most FACL_DISK_CACHE_MAX_FILE_BYTES. A loaded entry's mtime is set to now: it is the
 * "last used" time of the eviction order.
 * Returns 1 with *payload (malloc'd, caller frees; non-NULL even when *len is 0);
 * 0 when there is no such file; -1 when a file exists but is refused or unusable (see
 * above; bad magic, version, reserved field, stored key, length, checksum; read error,
 * out of memory). On 0 and -1, *payload is NULL and *len is 0. */
int facl_disk_cache_load(const char *dir, const uint8_t key[32], unsigned char **payload,
                         size_t *len);

/* Store atomically: create dir and missing parents (mode 0700; existing ones are
 * left as they are), write a temp file <hex(key)>.tmp.XXXXXX in dir, fsync, rename
 * over <dir>/<hex(key)>.bin. Returns 0, or -1 with no temp file left behind (also for
 * an entry that a load would refuse as too large). The file is created mode 0600. */
int facl_disk_cache_store(const char *dir, const uint8_t key[32], const unsigned char *payload,
                          size_t len);

/* Keep the entries of dir (<hex>.bin files) at most max_bytes in total: while they are
 * larger, delete the least recently used (oldest mtime; loads refresh it). Returns the
 * number of entries this call deleted (0 when under the bound), or -1 when dir cannot
 * be read. Safe to run in several processes at once. */
int facl_disk_cache_evict(const char *dir, uint64_t max_bytes);

#endif
