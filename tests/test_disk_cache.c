/* Unit tests for src/sha256.c and src/disk_cache.c: the file format, and every case in
 * which the cache refuses a directory or an entry it cannot trust. */
#define _XOPEN_SOURCE 700 /* mkdtemp, setenv, nftw, symlink, mkfifo, utimensat */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "disk_cache.h"
#include "sha256.h"

/* ------------------------------------------------------------ helpers */

static void digest_hex(const void *data, size_t len, char hex[65])
{
    facl_sha256 s;
    uint8_t d[32];
    facl_sha256_init(&s);
    facl_sha256_update(&s, data, len);
    facl_sha256_final(&s, d);
    facl_sha256_hex(d, hex);
}

static void fill_key(uint8_t key[32], uint8_t seed)
{
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(seed + 7 * i);
}

/* Deterministic "random" bytes so a failure reproduces. */
static void fill_random(unsigned char *p, size_t len, uint32_t seed)
{
    uint32_t x = seed ? seed : 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + 1 + strlen(b) + 1;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static char *entry_path(const char *dir, const uint8_t key[32])
{
    char hex[65], name[80];
    facl_sha256_hex(key, hex);
    snprintf(name, sizeof name, "%s.bin", hex);
    return path_join(dir, name);
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_file(const char *path, const unsigned char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Each test gets a fresh directory, removed afterwards. */
static int setup_tmpdir(void **state)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp"; /* tests only; the library never defaults to /tmp */
    char *dir = path_join(base, "facl-test-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

static int teardown_tmpdir(void **state)
{
    char *dir = *state;
    int rc = nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
    return rc;
}

/* Store an entry for key and return the path of its file. */
static char *store_entry(const char *dir, const uint8_t key[32], size_t len)
{
    unsigned char *payload = malloc(len + 1);
    assert_non_null(payload);
    fill_random(payload, len, 42);
    assert_int_equal(facl_disk_cache_store(dir, key, payload, len), 0);
    free(payload);
    return entry_path(dir, key);
}

static void assert_load(const char *dir, const uint8_t key[32], int expected)
{
    unsigned char *payload = (unsigned char *)"sentinel";
    size_t len = 12345;
    int rc = facl_disk_cache_load(dir, key, &payload, &len);
    assert_int_equal(rc, expected);
    if (rc != 1) {
        assert_null(payload);
        assert_int_equal(len, 0);
    }
    free(payload);
}

/* ------------------------------------------------------------ SHA-256 */

static void test_sha256_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *msg, *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr"
         "lmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    char hex[65];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        digest_hex(v[i].msg, strlen(v[i].msg), hex);
        assert_string_equal(hex, v[i].hex);
    }
}

/* Lengths around the 55/56/64-byte padding boundaries (reference: Python hashlib). */
static void test_sha256_padding_boundaries(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        const char *hex;
    } v[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
        {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
        {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
    };
    char a[128], hex[65];
    memset(a, 'a', sizeof a);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        digest_hex(a, v[i].n, hex);
        assert_string_equal(hex, v[i].hex);
    }
}

static void test_sha256_million_a_chunked(void **state)
{
    (void)state;
    static const size_t chunks[] = {1, 7, 63, 64, 65, 127, 1000, 3, 4096, 55};
    char buf[4096];
    memset(buf, 'a', sizeof buf);
    facl_sha256 s;
    facl_sha256_init(&s);
    size_t left = 1000000;
    for (size_t i = 0; left > 0; i++) {
        size_t n = chunks[i % (sizeof chunks / sizeof chunks[0])];
        if (n > left)
            n = left;
        facl_sha256_update(&s, buf, n);
        left -= n;
    }
    uint8_t d[32];
    char hex[65];
    facl_sha256_final(&s, d);
    facl_sha256_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Any split of the input into two updates must give the one-shot digest. */
static void test_sha256_split_points(void **state)
{
    (void)state;
    unsigned char msg[200];
    fill_random(msg, sizeof msg, 7);
    char want[65], got[65];
    digest_hex(msg, sizeof msg, want);
    for (size_t cut = 0; cut <= sizeof msg; cut++) {
        facl_sha256 s;
        uint8_t d[32];
        facl_sha256_init(&s);
        facl_sha256_update(&s, msg, cut);
        facl_sha256_update(&s, msg + cut, sizeof msg - cut);
        facl_sha256_final(&s, d);
        facl_sha256_hex(d, got);
        assert_string_equal(got, want);
    }
}

/* ------------------------------------------------------------ load/store */

static void test_roundtrip(void **state)
{
    const char *dir = *state;
    static const size_t sizes[] = {0, 1, 55, 64, 87, 88, 4097, 1u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        uint8_t key[32];
        fill_key(key, (uint8_t)i);
        unsigned char *in = malloc(n + 1);
        assert_non_null(in);
        fill_random(in, n, (uint32_t)(i + 1));
        assert_int_equal(facl_disk_cache_store(dir, key, in, n), 0);

        unsigned char *out = NULL;
        size_t len = 0;
        assert_int_equal(facl_disk_cache_load(dir, key, &out, &len), 1);
        assert_non_null(out);
        assert_int_equal(len, n);
        if (n > 0)
            assert_memory_equal(out, in, n);
        free(out);
        free(in);

        char *path = entry_path(dir, key);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal((size_t)st.st_size, FACL_DISK_CACHE_HEADER_SIZE + n);
        free(path);
    }
    /* Only the final files: no temp files left over. */
    assert_int_equal(count_entries(dir), (int)(sizeof sizes / sizeof sizes[0]));
}

static void test_overwrite(void **state)
{
    const char *dir = *state;
    uint8_t key[32];
    fill_key(key, 1);
    const unsigned char a[] = "first", b[] = "second, longer";
    assert_int_equal(facl_disk_cache_store(dir, key, a, sizeof a), 0);
    assert_int_equal(facl_disk_cache_store(dir, key, b, sizeof b), 0);
    unsigned char *out = NULL;
    size_t len = 0;
    assert_int_equal(facl_disk_cache_load(dir, key, &out, &len), 1);
    assert_int_equal(len, sizeof b);
    assert_memory_equal(out, b, sizeof b);
    free(out);
    assert_int_equal(count_entries(dir), 1);
}

static void test_header_layout(void **state)
{
    const char *dir = *state;
    uint8_t key[32];
    fill_key(key, 9);
    const unsigned char payload[] = {1, 2, 3};
    assert_int_equal(facl_disk_cache_store(dir, key, payload, sizeof payload), 0);
    char *path = entry_path(dir, key);
    size_t n;
    unsigned char *f = read_file(path, &n);
    assert_int_equal(n, 88 + 3);
    assert_memory_equal(f, "FACLBIN\0", 8);
    static const unsigned char ver_reserved[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(f + 8, ver_reserved, 8);
    assert_memory_equal(f + 16, key, 32);
    static const unsigned char len_le[8] = {3, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(f + 48, len_le, 8);
    /* sha256 of {1,2,3}, computed independently */
    uint8_t d[32];
    facl_sha256 s;
    facl_sha256_init(&s);
    facl_sha256_update(&s, payload, 3);
    facl_sha256_final(&s, d);
    assert_memory_equal(f + 56, d, 32);
    assert_memory_equal(f + 88, payload, 3);
    free(f);
    free(path);
}

static void test_missing(void **state)
{
    const char *dir = *state;
    uint8_t key[32];
    fill_key(key, 3);
    assert_load(dir, key, 0);
    char *sub = path_join(dir, "does/not/exist");
    assert_load(sub, key, 0);
    free(sub);
}

static void test_corrupt_payload(void **state)
{
    const char *dir = *state;
    uint8_t key[32];
    fill_key(key, 4);
    char *path = store_entry(dir, key, 1000);
    size_t n;
    unsigned char *f = read_file(path, &n);
    f[FACL_DISK_CACHE_HEADER_SIZE + 500] ^= 0x01;
    write_file(path, f, n);
    assert_load(dir, key, -1);
    free(f);
    free(path);
}

static void test_truncated(void **state)
{
    const char *dir = *state;
    uint8_t key[32];
    fill_key(key, 5);
    char *path = store_entry(dir, key, 1000);
    size_t n;
    unsigned char *f = read_file(path, &n);
    /* One byte short of the payload, inside the header, and empty. */
    static const size_t cuts[] = {1, 1000 + 10, 1000 + 88};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_file(path, f, n - cuts[i]);
        assert_load(dir, key, -1);
    }
    free(f);
    free(path);
}

static void test_trailing_garbage(void **state)
{
    const char *dir = *state;
    uint8_t key[32];
    fill_key(key, 6);
    char *path = store_entry(dir, key, 100);
    size_t n;
    unsigned char *f = read_file(path, &n);
    f = realloc(f, n + 1);
    assert_non_null(f);
    f[n] = 0;
    write_file(path, f, n + 1);
    assert_load(dir, key, -1);
    free(f);
    free(path);
}

static void test_other_key(void **state)
{
    const char *dir = *state;
    uint8_t key_a[32], key_b[32];
    fill_key(key_a, 10);
    fill_key(key_b, 11);
    char *path_a = store_entry(dir, key_a, 256);
    char *path_b = entry_path(dir, key_b);
    size_t n;
    unsigned char *f = read_file(path_a, &n);
    write_file(path_b, f, n);
    assert_load(dir, key_a, 1);
    assert_load(dir, key_b, -1);
    free(f);
    free(path_a);
    free(path_b);
}

/* Flip one header byte at `offset` and expect the file to be refused. */
static void check_header_byte(const char *dir, uint8_t seed, size_t offset)
{
    uint8_t key[32];
    fill_key(key, seed);
    char *path = store_entry(dir, key, 64);
    size_t n;
    unsigned char *f = read_file(path, &n);
    f[offset] ^= 0x40;
    write_file(path, f, n);
    assert_load(dir, key, -1);
    free(f);
    free(path);
}

static void test_bad_header_fields(void **state)
{
    const char *dir = *state;
    check_header_byte(dir, 20, 0);  /* magic */
    check_header_byte(dir, 21, 7);  /* magic's NUL */
    check_header_byte(dir, 22, 8);  /* format version */
    check_header_byte(dir, 23, 12); /* reserved */
    check_header_byte(dir, 24, 48); /* length */
    check_header_byte(dir, 25, 60); /* checksum */
}

static void test_not_a_regular_file(void **state)
{
    const char *dir = *state;
    uint8_t key[32];
    fill_key(key, 30);
    char *path = entry_path(dir, key);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_load(dir, key, -1);
    free(path);
}

/* Created directories are 0700 whatever the umask: 0277 would leave them 0500. */
static void test_dir_mode(void **state)
{
    const char *dir = *state;
    static const mode_t umasks[] = {022, 0277};
    static const char *const rel[][3] = {{"a", "a/b", "a/b/c"}, {"x", "x/y", "x/y/z"}};
    for (size_t u = 0; u < 2; u++) {
        char *leaf = path_join(dir, rel[u][2]);
        uint8_t key[32];
        fill_key(key, 40);
        const unsigned char payload[] = "x";
        mode_t old = umask(umasks[u]);
        int rc = facl_disk_cache_store(leaf, key, payload, sizeof payload);
        umask(old);
        assert_int_equal(rc, 0);
        for (size_t i = 0; i < 3; i++) {
            char *p = path_join(dir, rel[u][i]);
            struct stat st;
            assert_int_equal(stat(p, &st), 0);
            assert_true(S_ISDIR(st.st_mode));
            assert_int_equal(st.st_mode & 0777, 0700);
            free(p);
        }
        assert_load(leaf, key, 1);
        free(leaf);
    }
    /* The entry itself is private too (mkstemp's 0600, under umask 022). */
    char *leaf = path_join(dir, "a/b/c");
    uint8_t key[32];
    fill_key(key, 40);
    char *entry = entry_path(leaf, key);
    struct stat st;
    assert_int_equal(stat(entry, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    free(entry);
    free(leaf);
}

static void test_unwritable_dir(void **state)
{
    const char *dir = *state;
    char *afile = path_join(dir, "afile");
    write_file(afile, (const unsigned char *)"x", 1);
    char *sub = path_join(dir, "afile/sub");
    uint8_t key[32];
    fill_key(key, 50);
    const unsigned char payload[] = "payload";
    assert_int_equal(facl_disk_cache_store(sub, key, payload, sizeof payload), -1);
    assert_int_equal(facl_disk_cache_store(afile, key, payload, sizeof payload), -1);
    assert_int_equal(count_entries(dir), 1);
    free(sub);
    free(afile);
}

/* The temp file exists when the rename fails: it must be removed. A directory
 * squatting on the final name makes rename() fail, even for root. */
static void test_failed_rename_cleans_up(void **state)
{
    const char *dir = *state;
    uint8_t key[32];
    fill_key(key, 60);
    char *path = entry_path(dir, key);
    char *inner = path_join(path, "keep");
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(mkdir(inner, 0700), 0);
    const unsigned char payload[] = "payload";
    assert_int_equal(facl_disk_cache_store(dir, key, payload, sizeof payload), -1);
    assert_int_equal(count_entries(dir), 1);
    free(inner);
    free(path);
}

/* ------------------------------------------------------------ environment */

static const char *const ENV_NAMES[] = {"FACL_CACHE", "FACL_CACHE_DIR", "XDG_CACHE_HOME", "HOME"};
#define N_ENV (sizeof ENV_NAMES / sizeof ENV_NAMES[0])

static int setup_env(void **state)
{
    char **saved = calloc(N_ENV, sizeof *saved);
    if (saved == NULL)
        return -1;
    for (size_t i = 0; i < N_ENV; i++) {
        const char *v = getenv(ENV_NAMES[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(ENV_NAMES[i]);
    }
    *state = saved;
    return 0;
}

static int teardown_env(void **state)
{
    char **saved = *state;
    for (size_t i = 0; i < N_ENV; i++) {
        if (saved[i] != NULL)
            setenv(ENV_NAMES[i], saved[i], 1);
        else
            unsetenv(ENV_NAMES[i]);
        free(saved[i]);
    }
    free(saved);
    return 0;
}

/* resolve with `configured`; expects rc, the directory, and a note containing
 * `note_part` ("" = an empty note). */
static void assert_resolve(const char *configured, int expected_rc, const char *expected,
                           const char *note_part)
{
    char buf[256], note[256];
    memset(buf, 'z', sizeof buf);
    memset(note, 'z', sizeof note);
    assert_int_equal(facl_disk_cache_resolve(configured, buf, sizeof buf, note, sizeof note),
                     expected_rc);
    assert_string_equal(buf, expected_rc ? expected : "");
    if (note_part[0] == '\0')
        assert_string_equal(note, "");
    else if (strstr(note, note_part) == NULL)
        fail_msg("note '%s' does not say '%s'", note, note_part);
}

static void test_resolve_default_location(void **state)
{
    (void)state;
    assert_resolve(NULL, 0, NULL, "neither XDG_CACHE_HOME nor HOME"); /* no /tmp fallback */

    setenv("HOME", "/home/u", 1);
    assert_resolve(NULL, 1, "/home/u/.cache/facl", "");
    setenv("HOME", "/", 1);
    assert_resolve(NULL, 1, "/.cache/facl", "");
    setenv("HOME", "relative", 1);
    assert_resolve(NULL, 0, NULL, "absolute");
    setenv("HOME", "/home/u", 1);

    setenv("XDG_CACHE_HOME", "/xdg/cache", 1);
    assert_resolve(NULL, 1, "/xdg/cache/facl", "");
    setenv("XDG_CACHE_HOME", "/xdg/cache/", 1);
    assert_resolve(NULL, 1, "/xdg/cache/facl", "");
    setenv("XDG_CACHE_HOME", "", 1);
    assert_resolve(NULL, 1, "/home/u/.cache/facl", "");
    setenv("XDG_CACHE_HOME", "rel/cache", 1); /* ignored per the XDG spec */
    assert_resolve(NULL, 1, "/home/u/.cache/facl", "");
}

static void test_resolve_env_over_configured(void **state)
{
    (void)state;
    setenv("HOME", "/home/u", 1);
    assert_resolve("/configured", 1, "/configured", "");
    assert_resolve("/configured//", 1, "/configured", ""); /* lstat must see the last name */
    assert_resolve("", 0, NULL, "");                        /* off by request: no note */

    setenv("FACL_CACHE_DIR", "/my/cache", 1);
    assert_resolve(NULL, 1, "/my/cache", "");
    assert_resolve("/configured", 1, "/my/cache", "");
    assert_resolve("", 1, "/my/cache", "");
    setenv("FACL_CACHE_DIR", "", 1); /* empty: as if unset */
    assert_resolve("/configured", 1, "/configured", "");
    setenv("FACL_CACHE_DIR", "/my/cache", 1);

    static const char *const off[] = {"0", "off", "OFF", "no", "No", "false", "FALSE"};
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        setenv("FACL_CACHE", off[i], 1);
        assert_resolve("/configured", 0, NULL, "FACL_CACHE");
    }
    static const char *const on[] = {"1", "on", "", "yes"};
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
        setenv("FACL_CACHE", on[i], 1);
        assert_resolve(NULL, 1, "/my/cache", "");
    }
}

/* A relative directory would follow the process's working directory around. */
static void test_resolve_relative_env_dir(void **state)
{
    (void)state;
    setenv("HOME", "/home/u", 1);
    setenv("FACL_CACHE_DIR", "build/cache", 1);
    assert_resolve(NULL, 0, NULL, "FACL_CACHE_DIR is not an absolute path");
    assert_resolve("/configured", 0, NULL, "FACL_CACHE_DIR is not an absolute path");
}

static void test_resolve_relative_configured_dir(void **state)
{
    (void)state;
    setenv("HOME", "/home/u", 1);
    assert_resolve("cache", 0, NULL, "config.cache_dir is not an absolute path");
}

static void test_resolve_too_long(void **state)
{
    (void)state;
    char buf[10], note[128];
    setenv("FACL_CACHE_DIR", "/abcdefgh", 1);
    assert_int_equal(facl_disk_cache_resolve(NULL, buf, sizeof buf, note, sizeof note), 1);
    assert_string_equal(buf, "/abcdefgh"); /* exactly fits */
    setenv("FACL_CACHE_DIR", "/abcdefghi", 1);
    assert_int_equal(facl_disk_cache_resolve(NULL, buf, sizeof buf, note, sizeof note), 0);
    assert_string_equal(buf, "");
    assert_non_null(strstr(note, "too long"));
    assert_int_equal(facl_disk_cache_resolve(NULL, buf, 0, note, sizeof note), 0);
    assert_int_equal(facl_disk_cache_resolve(NULL, NULL, 10, NULL, 0), 0);
}

/* ------------------------------------------------------------ unsafe directories */

static void assert_refused(const char *dir, const char *note_part)
{
    char note[256] = "";
    assert_int_equal(facl_disk_cache_open_dir(dir, note, sizeof note), -1);
    if (strstr(note, note_part) == NULL)
        fail_msg("note '%s' does not say '%s'", note, note_part);
}

static void test_open_dir_creates_private(void **state)
{
    const char *dir = *state;
    char *leaf = path_join(dir, "new/cache");
    char note[256] = "x";
    mode_t old = umask(0);
    int rc = facl_disk_cache_open_dir(leaf, note, sizeof note);
    umask(old);
    assert_int_equal(rc, 0);
    assert_string_equal(note, "");
    struct stat st;
    assert_int_equal(lstat(leaf, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(facl_disk_cache_open_dir(leaf, note, sizeof note), 0); /* existing: fine */
    /* Read-only for others is fine (ssh accepts 0755 too). */
    assert_int_equal(chmod(leaf, 0755), 0);
    assert_int_equal(facl_disk_cache_open_dir(leaf, note, sizeof note), 0);
    free(leaf);
}

static void test_open_dir_group_writable(void **state)
{
    const char *dir = *state;
    char *sub = path_join(dir, "shared");
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(chmod(sub, 0770), 0);
    assert_refused(sub, "writable by group or others (mode 0770)");
    free(sub);
}

static void test_open_dir_other_writable(void **state)
{
    const char *dir = *state;
    char *sub = path_join(dir, "world");
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(chmod(sub, 01777), 0); /* /tmp-like, sticky bit or not */
    assert_refused(sub, "writable by group or others");
    assert_int_equal(chmod(sub, 0702), 0);
    assert_refused(sub, "writable by group or others (mode 0702)");
    free(sub);
}

static void test_open_dir_other_owner(void **state)
{
    const char *dir = *state;
    char *sub = path_join(dir, "theirs");
    assert_int_equal(mkdir(sub, 0700), 0);
    if (chown(sub, 12345, 12345) != 0) {
        free(sub);
        skip(); /* only root can give a directory away */
    }
    assert_refused(sub, "owned by uid 12345");
    free(sub);
}

/* A link in the last component is refused even when its target would be accepted. */
static void test_open_dir_symlink(void **state)
{
    const char *dir = *state;
    char *target = path_join(dir, "real");
    char *link = path_join(dir, "link");
    assert_int_equal(mkdir(target, 0700), 0);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(facl_disk_cache_open_dir(target, NULL, 0), 0);
    assert_refused(link, "symbolic link");
    free(link);
    free(target);
}

static void test_open_dir_not_a_directory(void **state)
{
    const char *dir = *state;
    char *file = path_join(dir, "afile");
    write_file(file, (const unsigned char *)"x", 1);
    assert_refused(file, "not a directory");
    char *below = path_join(file, "sub");
    assert_refused(below, "cannot create");
    assert_refused("relative/dir", "absolute");
    free(below);
    free(file);
}

/* ------------------------------------------------------------ unsafe entries */

/* A valid entry reached through a symbolic link is not loaded. */
static void test_entry_symlink(void **state)
{
    const char *dir = *state;
    char *elsewhere = path_join(dir, "elsewhere");
    char *cache = path_join(dir, "cache");
    assert_int_equal(mkdir(cache, 0700), 0);
    uint8_t key[32];
    fill_key(key, 70);
    char *real = store_entry(elsewhere, key, 100);
    assert_load(elsewhere, key, 1);
    char *link = entry_path(cache, key);
    assert_int_equal(symlink(real, link), 0);
    assert_load(cache, key, -1);
    free(link);
    free(real);
    free(cache);
    free(elsewhere);
}

/* A FIFO under the entry's name: refused at once (a blocking open would hang). */
static void test_entry_fifo(void **state)
{
    const char *dir = *state;
    uint8_t key[32];
    fill_key(key, 71);
    char *path = entry_path(dir, key);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_load(dir, key, -1);
    free(path);
}

static void test_entry_writable_by_others(void **state)
{
    const char *dir = *state;
    uint8_t key[32];
    fill_key(key, 72);
    char *path = store_entry(dir, key, 100);
    assert_int_equal(chmod(path, 0602), 0);
    assert_load(dir, key, -1);
    assert_int_equal(chmod(path, 0620), 0);
    assert_load(dir, key, -1);
    assert_int_equal(chmod(path, 0644), 0); /* readable by others: harmless */
    assert_load(dir, key, 1);
    free(path);
}

static void test_entry_other_owner(void **state)
{
    const char *dir = *state;
    uint8_t key[32];
    fill_key(key, 73);
    char *path = store_entry(dir, key, 100);
    if (chown(path, 12345, 12345) != 0) {
        free(path);
        skip(); /* only root can give a file away */
    }
    assert_load(dir, key, -1);
    free(path);
}

/* One byte over the cap, and otherwise valid: header, length and checksum (of the
 * zero payload, computed with Python's hashlib) all agree, so only the size check
 * refuses it, before any read or allocation. The file is sparse: it costs no disk. */
static void test_entry_oversized(void **state)
{
    const char *dir = *state;
    uint8_t key[32];
    fill_key(key, 74);
    const uint64_t size = FACL_DISK_CACHE_MAX_FILE_BYTES + 1;
    const uint64_t plen = size - FACL_DISK_CACHE_HEADER_SIZE;
    assert_int_equal(plen, 268435369u);
    static const char zeros_sha256[] =
        "4be84098c7c5eabe7d46d39e47c05211f67c145e2e533a97c2aa3127ed151259";
    unsigned char h[FACL_DISK_CACHE_HEADER_SIZE] = "FACLBIN";
    h[8] = FACL_DISK_CACHE_FORMAT;
    memcpy(h + 16, key, 32);
    for (int i = 0; i < 8; i++)
        h[48 + i] = (unsigned char)(plen >> (8 * i));
    for (int i = 0; i < 32; i++) {
        unsigned byte;
        assert_int_equal(sscanf(zeros_sha256 + 2 * i, "%2x", &byte), 1);
        h[56 + i] = (unsigned char)byte;
    }
    char *path = entry_path(dir, key);
    write_file(path, h, sizeof h);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(truncate(path, (off_t)size), 0);
    assert_load(dir, key, -1);
    free(path);
}

/* ------------------------------------------------------------ temp files, eviction */

static void set_mtime(const char *path, time_t when)
{
    struct timespec times[2] = {{when, 0}, {when, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW), 0);
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* A dead writer's temp file goes; one that may be another process's store stays. */
static void test_stale_temp_removed(void **state)
{
    const char *dir = *state;
    uint8_t key[32];
    fill_key(key, 80);
    char hex[65], name[100];
    facl_sha256_hex(key, hex);
    snprintf(name, sizeof name, "%s.tmp.AbC123", hex);
    char *stale = path_join(dir, name);
    snprintf(name, sizeof name, "%s.tmp.xYz789", hex);
    char *fresh = path_join(dir, name);
    char *mine = path_join(dir, "notes.tmp.AbC123"); /* not a name the store makes */
    write_file(stale, (const unsigned char *)"x", 1);
    write_file(fresh, (const unsigned char *)"x", 1);
    write_file(mine, (const unsigned char *)"x", 1);
    const time_t now = time(NULL);
    set_mtime(stale, now - FACL_DISK_CACHE_STALE_TMP_SECONDS - 60);
    set_mtime(fresh, now - 60);
    set_mtime(mine, now - 86400);
    assert_int_equal(facl_disk_cache_open_dir(dir, NULL, 0), 0);
    assert_false(exists(stale));
    assert_true(exists(fresh));
    assert_true(exists(mine));
    free(mine);
    free(fresh);
    free(stale);
}

static void test_load_refreshes_mtime(void **state)
{
    const char *dir = *state;
    uint8_t key[32];
    fill_key(key, 81);
    char *path = store_entry(dir, key, 100);
    set_mtime(path, 1000000000);
    assert_load(dir, key, 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_mtime >= time(NULL) - 60);
    free(path);
}

/* Four entries used in the order 1, 2, 3, 0 (entry 0 last through a load): a bound
 * that holds two of them keeps 3 and 0. */
static void test_evict_least_recently_used(void **state)
{
    const char *dir = *state;
    enum { N = 4, PAYLOAD = 10000 };
    const uint64_t entry = FACL_DISK_CACHE_HEADER_SIZE + PAYLOAD;
    uint8_t keys[N][32];
    char *paths[N];
    const time_t base = time(NULL) - 3600;
    for (int i = 0; i < N; i++) {
        fill_key(keys[i], (uint8_t)(90 + i));
        paths[i] = store_entry(dir, keys[i], PAYLOAD);
        set_mtime(paths[i], base + i);
    }
    assert_load(dir, keys[0], 1); /* now the most recently used */
    char hex[65], name[100];
    facl_sha256_hex(keys[1], hex);
    snprintf(name, sizeof name, "%s.tmp.AbC123", hex);
    char *temp = path_join(dir, name);
    write_file(temp, (const unsigned char *)"x", 1); /* not an entry: neither counted nor evicted */

    assert_int_equal(facl_disk_cache_evict(dir, N * entry), 0); /* at the bound: nothing */
    assert_int_equal(facl_disk_cache_evict(dir, 2 * entry + 1), 2);
    assert_false(exists(paths[1]));
    assert_false(exists(paths[2]));
    assert_true(exists(paths[3]));
    assert_true(exists(paths[0]));
    assert_true(exists(temp));
    assert_load(dir, keys[0], 1);
    assert_load(dir, keys[3], 1);
    assert_int_equal(facl_disk_cache_evict(dir, 2 * entry), 0);
    /* Below one entry: every entry goes, the temp file stays. */
    assert_int_equal(facl_disk_cache_evict(dir, entry - 1), 2);
    assert_int_equal(count_entries(dir), 1);
    char *missing = path_join(dir, "missing");
    assert_int_equal(facl_disk_cache_evict(missing, 0), -1);
    free(missing);
    free(temp);
    for (int i = 0; i < N; i++)
        free(paths[i]);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_tmpdir, teardown_tmpdir)
#define E(fn) cmocka_unit_test_setup_teardown(fn, setup_env, teardown_env)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_sha256_padding_boundaries),
        cmocka_unit_test(test_sha256_million_a_chunked),
        cmocka_unit_test(test_sha256_split_points),
        T(test_roundtrip),
        T(test_overwrite),
        T(test_header_layout),
        T(test_missing),
        T(test_corrupt_payload),
        T(test_truncated),
        T(test_trailing_garbage),
        T(test_other_key),
        T(test_bad_header_fields),
        T(test_not_a_regular_file),
        T(test_dir_mode),
        T(test_unwritable_dir),
        T(test_failed_rename_cleans_up),
        E(test_resolve_default_location),
        E(test_resolve_env_over_configured),
        E(test_resolve_relative_env_dir),
        E(test_resolve_relative_configured_dir),
        E(test_resolve_too_long),
        T(test_open_dir_creates_private),
        T(test_open_dir_group_writable),
        T(test_open_dir_other_writable),
        T(test_open_dir_other_owner),
        T(test_open_dir_symlink),
        T(test_open_dir_not_a_directory),
        T(test_entry_symlink),
        T(test_entry_fifo),
        T(test_entry_writable_by_others),
        T(test_entry_other_owner),
        T(test_entry_oversized),
        T(test_stale_temp_removed),
        T(test_load_refreshes_mtime),
        T(test_evict_least_recently_used),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
