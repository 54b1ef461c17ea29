#define _POSIX_C_SOURCE 200809L

#include "disk_cache.h"

#include "env.h"
#include "sha256.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const unsigned char MAGIC[8] = {'F', 'A', 'C', 'L', 'B', 'I', 'N', '\0'};

/* ------------------------------------------------------------ directory */

static void set_note(char *note, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void set_note(char *note, size_t cap, const char *fmt, ...)
{
    if (note == NULL || cap == 0)
        return;
    va_list args;
    va_start(args, fmt);
    vsnprintf(note, cap, fmt, args);
    va_end(args);
}

static int is_off(const char *v)
{
    return strcmp(v, "0") == 0 || strcasecmp(v, "off") == 0 || strcasecmp(v, "no") == 0 ||
           strcasecmp(v, "false") == 0;
}

/* dir = base + suffix without trailing slashes (a trailing slash would make lstat
 * follow a symbolic link in the last component), unless that is all of it ("/").
 * `what` names the source of base for the note. Returns 1, or 0 with a note. */
static int set_dir(char *dir, size_t cap, const char *base, const char *suffix, const char *what,
                   char *note, size_t note_cap)
{
    if (base[0] != '/') {
        set_note(note, note_cap, "%s is not an absolute path: '%s'", what, base);
        return 0;
    }
    size_t blen = strlen(base);
    while (blen > 1 && base[blen - 1] == '/')
        blen--;
    if (blen == 1 && *suffix == '/')
        blen = 0; /* HOME=/ gives "/.cache/facl", not "//.cache/facl" */
    int n = snprintf(dir, cap, "%.*s%s", (int)blen, base, suffix);
    if (n < 0 || (size_t)n >= cap) {
        dir[0] = '\0';
        set_note(note, note_cap, "%s is too long (%zu bytes at most)", what, cap - 1);
        return 0;
    }
    return 1;
}

int facl_disk_cache_resolve(const char *configured, char *dir, size_t dir_cap, char *note,
                            size_t note_cap)
{
    set_note(note, note_cap, "%s", "");
    if (dir == NULL || dir_cap == 0)
        return 0;
    dir[0] = '\0';
    const char *v = facl_getenv("FACL_CACHE");
    if (v != NULL && is_off(v)) {
        set_note(note, note_cap, "turned off by FACL_CACHE=%s", v);
        return 0;
    }
    v = facl_getenv("FACL_CACHE_DIR");
    if (v != NULL && v[0] != '\0')
        return set_dir(dir, dir_cap, v, "", "FACL_CACHE_DIR", note, note_cap);
    if (configured != NULL)
        return configured[0] != '\0' &&
               set_dir(dir, dir_cap, configured, "", "config.cache_dir", note, note_cap);
    /* The XDG spec says relative values are invalid and must be ignored; the same
     * goes for HOME, or the cache would land wherever the process happens to run. */
    v = facl_getenv("XDG_CACHE_HOME");
    if (v != NULL && v[0] == '/')
        return set_dir(dir, dir_cap, v, "/facl", "XDG_CACHE_HOME", note, note_cap);
    v = facl_getenv("HOME");
    if (v != NULL && v[0] == '/')
        return set_dir(dir, dir_cap, v, "/.cache/facl", "HOME", note, note_cap);
    set_note(note, note_cap, "no default location: neither XDG_CACHE_HOME nor HOME is an "
                             "absolute path");
    return 0;
}

/* ------------------------------------------------------------ helpers */

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void payload_sha256(const unsigned char *payload, size_t len, uint8_t digest[32])
{
    facl_sha256 s;
    facl_sha256_init(&s);
    if (len > 0)
        facl_sha256_update(&s, payload, len);
    facl_sha256_final(&s, digest);
}

/* "<dir>/<hex(key)><suffix>", malloc'd. */
static char *key_path(const char *dir, const uint8_t key[32], const char *suffix)
{
    char hex[65];
    facl_sha256_hex(key, hex);
    size_t n = strlen(dir) + 1 + 64 + strlen(suffix) + 1;
    char *path = malloc(n);
    if (path != NULL)
        snprintf(path, n, "%s/%s%s", dir, hex, suffix);
    return path;
}

/* Reads and writes may be partial or interrupted by signals; loop until done. */
static int read_all(int fd, void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1; /* error, or the file is shorter than it said */
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t r = write(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mkdir -p with mode 0700 for the directories we create. */
static int make_dirs(const char *dir)
{
    if (is_dir(dir))
        return 0;
    char *p = strdup(dir);
    if (p == NULL)
        return -1;
    int rc = 0;
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c != '\0')
            continue;
        char saved = *c;
        *c = '\0';
        /* Stat first: mkdir on an existing, unwritable parent ("/home") may report
         * EACCES or EROFS rather than EEXIST. */
        if (!is_dir(p)) {
            if (mkdir(p, 0700) == 0) {
                /* The umask may have taken bits we need; set exactly 0700. */
                if (chmod(p, 0700) != 0)
                    rc = -1;
            } else if (errno != EEXIST || !is_dir(p)) { /* EEXIST: lost a race, fine */
                rc = -1;
            }
        }
        *c = saved;
        if (rc != 0 || saved == '\0')
            break;
    }
    int err = errno; /* for the caller's message */
    free(p);
    errno = err;
    return rc;
}

/* <64 lowercase hex digits><suffix> and then exactly free_tail more characters (the
 * XXXXXX of a temp file): only names the store makes, never a user's file. */
static int is_key_name(const char *name, const char *suffix, size_t free_tail)
{
    for (int i = 0; i < 64; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return 0;
    size_t slen = strlen(suffix);
    return strncmp(name + 64, suffix, slen) == 0 && strlen(name + 64 + slen) == free_tail;
}

static int is_entry_name(const char *name) { return is_key_name(name, ".bin", 0); }
static int is_temp_name(const char *name) { return is_key_name(name, ".tmp.", 6); }

/* Temporary files outlive a writer that crashed or was killed between mkstemp and
 * rename. A fresh one may be another process's store in progress: leave it. */
static void remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    const time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (is_temp_name(e->d_name) &&
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            now - st.st_mtime >= FACL_DISK_CACHE_STALE_TMP_SECONDS)
            (void)unlinkat(dirfd(d), e->d_name, 0); /* lost a race with another remover: fine */
    }
    closedir(d);
}

static void describe_errno(char *note, size_t cap, const char *what, int err, const char *dir)
{
    char reason[128];
    if (strerror_r(err, reason, sizeof reason) != 0)
        snprintf(reason, sizeof reason, "errno %d", err);
    set_note(note, cap, "%s (%s): %s", what, reason, dir);
}

int facl_disk_cache_open_dir(const char *dir, char *note, size_t note_cap)
{
    set_note(note, note_cap, "%s", "");
    if (dir == NULL || dir[0] != '/') {
        set_note(note, note_cap, "not an absolute path: '%s'", dir ? dir : "(null)");
        return -1;
    }
    /* lstat: the final component itself must be the directory. A symbolic link there
     * could be re-pointed by whoever owns it, or its target checked in our stead. */
    struct stat st;
    if (lstat(dir, &st) != 0) {
        if (errno != ENOENT || make_dirs(dir) != 0 || lstat(dir, &st) != 0) {
            describe_errno(note, note_cap, "cannot create the cache directory", errno, dir);
            return -1;
        }
    }
    /* Reasons first: a long path may not fit in the note. */
    if (S_ISLNK(st.st_mode)) {
        set_note(note, note_cap, "refused: the cache directory is a symbolic link: %s", dir);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        set_note(note, note_cap, "refused: the cache directory is not a directory: %s", dir);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        set_note(note, note_cap,
                 "refused: the cache directory is owned by uid %lu, not by this user (uid %lu): %s",
                 (unsigned long)st.st_uid, (unsigned long)geteuid(), dir);
        return -1;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        set_note(note, note_cap,
                 "refused: the cache directory is writable by group or others (mode %04o): %s",
                 (unsigned)(st.st_mode & 07777), dir);
        return -1;
    }
    remove_stale_temps(dir);
    return 0;
}

/* ------------------------------------------------------------ load */

int facl_disk_cache_load(const char *dir, const uint8_t key[32], unsigned char **payload,
                         size_t *len)
{
    if (payload != NULL)
        *payload = NULL;
    if (len != NULL)
        *len = 0;
    if (dir == NULL || key == NULL || payload == NULL || len == NULL)
        return -1;

    char *path = key_path(dir, key, ".bin");
    if (path == NULL)
        return -1;
    /* O_NOFOLLOW: a symbolic link is refused, not followed to someone else's file.
     * O_NONBLOCK so that a FIFO planted under the name cannot hang us; it does not
     * affect reads from the regular file we insist on below. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
    int err = errno;
    free(path);
    if (fd < 0)
        return (err == ENOENT || err == ENOTDIR) ? 0 : -1;

    int rc = -1;
    unsigned char *data = NULL;
    unsigned char h[FACL_DISK_CACHE_HEADER_SIZE];
    uint8_t digest[32];
    struct stat st;
    /* Only what this user wrote, and no more than the cap (rejected unread). */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & (S_IWGRP | S_IWOTH)) || st.st_size < FACL_DISK_CACHE_HEADER_SIZE ||
        (uint64_t)st.st_size > FACL_DISK_CACHE_MAX_FILE_BYTES)
        goto done;
    if (read_all(fd, h, sizeof h) != 0)
        goto done;
    if (memcmp(h, MAGIC, 8) != 0 || get_le32(h + 8) != FACL_DISK_CACHE_FORMAT ||
        get_le32(h + 12) != 0 || memcmp(h + 16, key, 32) != 0)
        goto done;
    uint64_t plen = get_le64(h + 48);
    if (plen != (uint64_t)st.st_size - FACL_DISK_CACHE_HEADER_SIZE || plen != (size_t)plen)
        goto done;
    data = malloc(plen > 0 ? (size_t)plen : 1); /* non-NULL even for an empty payload */
    if (data == NULL || read_all(fd, data, (size_t)plen) != 0)
        goto done;
    payload_sha256(data, (size_t)plen, digest);
    if (memcmp(digest, h + 56, 32) != 0)
        goto done;
    *payload = data;
    *len = (size_t)plen;
    data = NULL;
    rc = 1;
    /* The mtime is the entry's "last used" time for eviction. Best effort: an entry
     * that keeps its old time is only evicted sooner. */
    (void)futimens(fd, NULL);
done:
    free(data);
    close(fd);
    return rc;
}

/* ------------------------------------------------------------ store */

int facl_disk_cache_store(const char *dir, const uint8_t key[32], const unsigned char *payload,
                          size_t len)
{
    if (dir == NULL || dir[0] == '\0' || key == NULL || (payload == NULL && len > 0) ||
        len > FACL_DISK_CACHE_MAX_FILE_BYTES - FACL_DISK_CACHE_HEADER_SIZE)
        return -1;
    if (make_dirs(dir) != 0)
        return -1;

    unsigned char h[FACL_DISK_CACHE_HEADER_SIZE];
    memcpy(h, MAGIC, 8);
    put_le32(h + 8, FACL_DISK_CACHE_FORMAT);
    put_le32(h + 12, 0);
    memcpy(h + 16, key, 32);
    put_le64(h + 48, (uint64_t)len);
    payload_sha256(payload, len, h + 56);

    int rc = -1, fd = -1;
    char *final_path = key_path(dir, key, ".bin");
    /* Same directory as the final name, so rename() is atomic (one filesystem). */
    char *tmp_path = key_path(dir, key, ".tmp.XXXXXX");
    if (final_path == NULL || tmp_path == NULL)
        goto done;
    fd = mkstemp(tmp_path); /* mode 0600 */
    if (fd < 0) {
        free(tmp_path);
        tmp_path = NULL; /* nothing was created; do not unlink a name we do not own */
        goto done;
    }
    /* Readers see either the old file or the new one complete: the data must be on
     * disk before the rename makes it visible, or a crash can leave a torn file. */
    if (write_all(fd, h, sizeof h) != 0 || write_all(fd, payload, len) != 0 || fsync(fd) != 0)
        goto done;
    int cerr = close(fd);
    fd = -1;
    if (cerr != 0 || rename(tmp_path, final_path) != 0)
        goto done;
    free(tmp_path);
    tmp_path = NULL;
    rc = 0;
    /* Best effort: persist the directory entry too. The cache stays correct
     * without it, so a failure here is not an error. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
done:
    if (fd >= 0)
        close(fd);
    if (tmp_path != NULL && rc != 0)
        unlink(tmp_path);
    free(tmp_path);
    free(final_path);
    return rc;
}

/* ------------------------------------------------------------ eviction */

typedef struct entry_info {
    char name[69]; /* 64 hex digits, ".bin" */
    uint64_t size;
    struct timespec mtime;
} entry_info;

static int older_first(const void *pa, const void *pb)
{
    const entry_info *a = pa, *b = pb;
    if (a->mtime.tv_sec != b->mtime.tv_sec)
        return a->mtime.tv_sec < b->mtime.tv_sec ? -1 : 1;
    if (a->mtime.tv_nsec != b->mtime.tv_nsec)
        return a->mtime.tv_nsec < b->mtime.tv_nsec ? -1 : 1;
    return strcmp(a->name, b->name); /* a stable order for equal times */
}

int facl_disk_cache_evict(const char *dir, uint64_t max_bytes)
{
    DIR *d = dir != NULL ? opendir(dir) : NULL;
    if (d == NULL)
        return -1;
    entry_info *list = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (!is_entry_name(e->d_name) ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            entry_info *grown = realloc(list, cap * sizeof *list);
            if (grown == NULL) {
                rc = -1;
                break;
            }
            list = grown;
        }
        memcpy(list[n].name, e->d_name, sizeof list[n].name); /* is_entry_name: 68 + NUL */
        list[n].size = (uint64_t)st.st_size;
        list[n].mtime = st.st_mtim;
        total += list[n].size;
        n++;
    }
    if (rc == 0 && total > max_bytes) {
        qsort(list, n, sizeof *list, older_first);
        for (size_t i = 0; i < n && total > max_bytes; i++) {
            /* ENOENT: another process evicted it first; its bytes are gone all the same.
             * A reader that opened it before keeps reading the unlinked file. */
            if (unlinkat(dirfd(d), list[i].name, 0) == 0)
                rc++;
            else if (errno != ENOENT)
                continue;
            total -= list[i].size;
        }
    }
    free(list);
    closedir(d);
    return rc;
}
