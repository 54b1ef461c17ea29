/* Unit tests for src/sha256.c and src/disk_cache.c. */
#define _XOPEN_SOURCE 700 /* mkdtemp, setenv, nftw */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static void assert_dir(int expected_rc, const char *expected)
{
    char buf[256];
    memset(buf, 'z', sizeof buf);
    assert_int_equal(facl_disk_cache_dir(buf, sizeof buf), expected_rc);
    assert_string_equal(buf, expected_rc ? expected : "");
}

static void test_dir_env(void **state)
{
    (void)state;
    assert_dir(0, NULL); /* nothing set: no /tmp fallback */

    setenv("HOME", "/home/u", 1);
    assert_dir(1, "/home/u/.cache/facl");
    setenv("HOME", "/", 1);
    assert_dir(1, "/.cache/facl");
    setenv("HOME", "relative", 1);
    assert_dir(0, NULL);
    setenv("HOME", "/home/u", 1);

    setenv("XDG_CACHE_HOME", "/xdg/cache", 1);
    assert_dir(1, "/xdg/cache/facl");
    setenv("XDG_CACHE_HOME", "/xdg/cache/", 1);
    assert_dir(1, "/xdg/cache/facl");
    setenv("XDG_CACHE_HOME", "", 1);
    assert_dir(1, "/home/u/.cache/facl");
    setenv("XDG_CACHE_HOME", "rel/cache", 1); /* ignored per the XDG spec */
    assert_dir(1, "/home/u/.cache/facl");
    setenv("XDG_CACHE_HOME", "/xdg/cache", 1);

    setenv("FACL_CACHE_DIR", "/my/cache", 1);
    assert_dir(1, "/my/cache");
    setenv("FACL_CACHE_DIR", "", 1);
    assert_dir(1, "/xdg/cache/facl");
    setenv("FACL_CACHE_DIR", "/my/cache", 1);

    static const char *const off[] = {"0", "off", "OFF", "no", "No", "false", "FALSE"};
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        setenv("FACL_CACHE", off[i], 1);
        assert_dir(0, NULL);
    }
    static const char *const on[] = {"1", "on", "", "yes"};
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
        setenv("FACL_CACHE", on[i], 1);
        assert_dir(1, "/my/cache");
    }
}

static void test_dir_too_long(void **state)
{
    (void)state;
    setenv("FACL_CACHE_DIR", "/abcdefgh", 1);
    char buf[10];
    assert_int_equal(facl_disk_cache_dir(buf, sizeof buf), 1); /* exactly fits */
    assert_string_equal(buf, "/abcdefgh");
    setenv("FACL_CACHE_DIR", "/abcdefghi", 1);
    assert_int_equal(facl_disk_cache_dir(buf, sizeof buf), 0);
    assert_string_equal(buf, "");
    assert_int_equal(facl_disk_cache_dir(buf, 0), 0);
    assert_int_equal(facl_disk_cache_dir(NULL, 10), 0);
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
        E(test_dir_env),
        E(test_dir_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
