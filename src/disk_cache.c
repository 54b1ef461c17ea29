#define _POSIX_C_SOURCE 200809L

#include "disk_cache.h"

#include "sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const unsigned char MAGIC[8] = {'F', 'A', 'C', 'L', 'B', 'I', 'N', '\0'};

/* ------------------------------------------------------------ directory */

static int is_off(const char *v)
{
    return strcmp(v, "0") == 0 || strcasecmp(v, "off") == 0 || strcasecmp(v, "no") == 0 ||
           strcasecmp(v, "false") == 0;
}

static int join(char *buf, size_t cap, const char *base, const char *suffix)
{
    /* Avoid "//" when the variable already ends in a slash (HOME=/ is real). */
    size_t blen = strlen(base);
    if (*suffix == '/' && blen > 0 && base[blen - 1] == '/')
        suffix++;
    int n = snprintf(buf, cap, "%s%s", base, suffix);
    if (n < 0 || (size_t)n >= cap) {
        buf[0] = '\0';
        return 0;
    }
    return 1;
}

int facl_disk_cache_dir(char *buf, size_t cap)
{
    if (buf == NULL || cap == 0)
        return 0;
    buf[0] = '\0';
    const char *v = getenv("FACL_CACHE");
    if (v != NULL && is_off(v))
        return 0;
    v = getenv("FACL_CACHE_DIR");
    if (v != NULL && v[0] != '\0')
        return join(buf, cap, v, "");
    /* The XDG spec says relative values are invalid and must be ignored; the same
     * goes for HOME, or the cache would land wherever the process happens to run. */
    v = getenv("XDG_CACHE_HOME");
    if (v != NULL && v[0] == '/')
        return join(buf, cap, v, "/facl");
    v = getenv("HOME");
    if (v != NULL && v[0] == '/')
        return join(buf, cap, v, "/.cache/facl");
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
    free(p);
    return rc;
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
    /* O_NONBLOCK so that a FIFO planted under the name cannot hang us; it does not
     * affect reads from the regular file we insist on below. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    int err = errno;
    free(path);
    if (fd < 0)
        return (err == ENOENT || err == ENOTDIR) ? 0 : -1;

    int rc = -1;
    unsigned char *data = NULL;
    unsigned char h[FACL_DISK_CACHE_HEADER_SIZE];
    uint8_t digest[32];
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < FACL_DISK_CACHE_HEADER_SIZE)
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
done:
    free(data);
    close(fd);
    return rc;
}

/* ------------------------------------------------------------ store */

int facl_disk_cache_store(const char *dir, const uint8_t key[32], const unsigned char *payload,
                          size_t len)
{
    if (dir == NULL || dir[0] == '\0' || key == NULL || (payload == NULL && len > 0))
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
