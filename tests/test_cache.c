/* The program cache: a cold context compiles and writes binaries; a warm one loads them
 * without compiling (the counters prove it); corrupted, truncated, foreign and
 * unwritable cache entries only cost a rebuild. Every scenario checks the result
 * against the float64 reference, because a cache that loads the wrong binary is worse
 * than no cache. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "case_runner.h"
#include "disk_cache.h"
#include "facl.h"

static char cache_root[512];

static fwd_case small_case(facl_dtype dtype)
{
    fwd_case c;
    memset(&c, 0, sizeof c);
    c.layout = CASE_DENSE;
    c.dtype = dtype;
    c.batch = 2;
    c.seqlen_q = 17;
    c.seqlen_k = 33;
    c.heads_q = 4;
    c.heads_kv = 2;
    c.head_dim = 24;
    c.opts = facl_attn_options_default();
    c.opts.causal = 1;
    c.want_lse = 1;
    c.seed = 1234u + (uint64_t)dtype;
    return c;
}

/* A fresh context (it reads the cache environment), one correct case, its counters. */
static facl_cache_stats run_in_new_context(facl_dtype dtype)
{
    facl_context *ctx = NULL;
    if (facl_context_create(NULL, &ctx) != FACL_SUCCESS) fail_msg("context: %s", facl_last_error());
    fwd_case c = small_case(dtype);
    case_result r;
    if (!run_fwd_case(ctx, &c, &r)) fail_msg("forward case failed: %s", r.detail);
    facl_cache_stats stats = FACL_CACHE_STATS_INIT;
    assert_int_equal(facl_context_cache_stats(ctx, &stats), FACL_SUCCESS);
    facl_context_free(ctx);
    return stats;
}

static void use_cache_dir(const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", cache_root, name);
    setenv("FACL_CACHE_DIR", path, 1);
    unsetenv("FACL_CACHE");
}

/* Paths of the .bin files in dir (at most `cap`), sorted by name for stable pairing. */
static int list_binaries(const char *dir, char paths[][640], int cap)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".bin") == 0)
            snprintf(paths[n++], 640, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    return n;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void test_cold_then_warm(void **state)
{
    (void)state;
    char dir[600];
    use_cache_dir("cold-warm", dir, sizeof dir);
    facl_cache_stats cold = run_in_new_context(FACL_DTYPE_F16);
    assert_true(cold.source_builds >= 1);
    assert_int_equal(cold.disk_hits, 0);
    assert_int_equal(cold.disk_writes, cold.source_builds);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    char files[8][640];
    assert_int_equal(list_binaries(dir, files, 8), (int)cold.disk_writes);

    facl_cache_stats warm = run_in_new_context(FACL_DTYPE_F16);
    assert_int_equal(warm.source_builds, 0); /* nothing was compiled */
    assert_int_equal(warm.disk_hits, cold.source_builds);
    assert_int_equal(warm.disk_rejects, 0);
}

/* Damage every cached file with `damage`, then expect a rebuild and a correct result. */
static void expect_rebuild_after(const char *name, void (*damage)(const char *path))
{
    char dir[600];
    use_cache_dir(name, dir, sizeof dir);
    facl_cache_stats cold = run_in_new_context(FACL_DTYPE_F32);
    assert_true(cold.disk_writes >= 1);
    char files[8][640];
    int n = list_binaries(dir, files, 8);
    assert_true(n >= 1);
    for (int i = 0; i < n; ++i) damage(files[i]);
    facl_cache_stats after = run_in_new_context(FACL_DTYPE_F32);
    assert_int_equal(after.disk_hits, 0);
    assert_int_equal(after.disk_rejects, (uint64_t)n);
    assert_int_equal(after.source_builds, cold.source_builds);
    /* The rebuilt binaries replaced the bad files: a third context loads them. */
    facl_cache_stats third = run_in_new_context(FACL_DTYPE_F32);
    assert_int_equal(third.source_builds, 0);
    assert_int_equal(third.disk_hits, cold.source_builds);
}

static void flip_last_byte(const char *path)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, -1, SEEK_END), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, -1, SEEK_END), 0);
    fputc(c ^ 0x40, f);
    fclose(f);
}

static void truncate_half(const char *path)
{
    assert_int_equal(truncate(path, file_size(path) / 2), 0);
}

/* A well-formed entry (right key, right checksum) whose binary the driver cannot use,
 * which is what a binary from another device or driver looks like. */
static void replace_with_foreign_binary(const char *path)
{
    const char *name = strrchr(path, '/') + 1;
    uint8_t key[32];
    for (int i = 0; i < 32; ++i) {
        unsigned byte;
        assert_int_equal(sscanf(name + 2 * i, "%2x", &byte), 1);
        key[i] = (uint8_t)byte;
    }
    char dir[640];
    snprintf(dir, sizeof dir, "%.*s", (int)(name - 1 - path), path);
    static const unsigned char foreign[] = "\x7f" "ELF this is not a binary for this device";
    assert_int_equal(facl_disk_cache_store(dir, key, foreign, sizeof foreign), 0);
}

static void test_corrupted_file(void **state)
{
    (void)state;
    expect_rebuild_after("corrupted", flip_last_byte);
}

static void test_truncated_file(void **state)
{
    (void)state;
    expect_rebuild_after("truncated", truncate_half);
}

static void test_file_from_another_device(void **state)
{
    (void)state;
    expect_rebuild_after("foreign", replace_with_foreign_binary);
}

/* An entry stored under another program's name: its header key gives it away. */
static void test_file_under_wrong_name(void **state)
{
    (void)state;
    char dir[600];
    use_cache_dir("swapped", dir, sizeof dir);
    run_in_new_context(FACL_DTYPE_F32);
    char f32_files[8][640];
    assert_int_equal(list_binaries(dir, f32_files, 8), 1);
    char moved[700];
    snprintf(moved, sizeof moved, "%s.keep", f32_files[0]);
    assert_int_equal(rename(f32_files[0], moved), 0);
    run_in_new_context(FACL_DTYPE_BF16);
    char bf16_files[8][640];
    assert_int_equal(list_binaries(dir, bf16_files, 8), 1);
    assert_int_equal(rename(moved, bf16_files[0]), 0); /* fp32 binary under the bf16 name */
    facl_cache_stats st = run_in_new_context(FACL_DTYPE_BF16);
    assert_int_equal(st.disk_rejects, 1);
    assert_int_equal(st.source_builds, 1);
}

static void test_unwritable_directory(void **state)
{
    (void)state;
    char blocker[600], dir[700];
    snprintf(blocker, sizeof blocker, "%s/a-regular-file", cache_root);
    FILE *f = fopen(blocker, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(dir, sizeof dir, "%s/sub", blocker); /* cannot be created */
    setenv("FACL_CACHE_DIR", dir, 1);
    facl_cache_stats st = run_in_new_context(FACL_DTYPE_F32);
    assert_true(st.source_builds >= 1);
    assert_int_equal(st.disk_writes, 0);
    assert_int_equal(st.disk_write_failures, st.source_builds);
}

static void test_cache_off(void **state)
{
    (void)state;
    char dir[600];
    use_cache_dir("off", dir, sizeof dir);
    setenv("FACL_CACHE", "0", 1);
    facl_context *ctx = NULL;
    assert_int_equal(facl_context_create(NULL, &ctx), FACL_SUCCESS);
    facl_device_info info = FACL_DEVICE_INFO_INIT;
    assert_int_equal(facl_context_device_info(ctx, &info), FACL_SUCCESS);
    assert_string_equal(info.cache_dir, "");
    facl_context_free(ctx);
    facl_cache_stats st = run_in_new_context(FACL_DTYPE_F32);
    assert_int_equal(st.disk_writes + st.disk_write_failures + st.disk_hits, 0);
    struct stat s;
    assert_int_not_equal(stat(dir, &s), 0); /* never created */
    unsetenv("FACL_CACHE");
}

/* Same context, same call twice: the second comes from memory. */
static void test_memory_cache(void **state)
{
    (void)state;
    char dir[600];
    use_cache_dir("memory", dir, sizeof dir);
    facl_context *ctx = NULL;
    assert_int_equal(facl_context_create(NULL, &ctx), FACL_SUCCESS);
    fwd_case c = small_case(FACL_DTYPE_F32);
    case_result r;
    assert_true(run_fwd_case(ctx, &c, &r));
    c.seed++;
    assert_true(run_fwd_case(ctx, &c, &r));
    facl_cache_stats st = FACL_CACHE_STATS_INIT;
    assert_int_equal(facl_context_cache_stats(ctx, &st), FACL_SUCCESS);
    assert_int_equal(st.source_builds, 1);
    assert_int_equal(st.memory_hits, 1);
    facl_context_free(ctx);
}

static int make_root(void **state)
{
    (void)state;
    const char *base = getenv("FACL_TEST_TMPDIR");
    if (!base) base = getenv("TMPDIR");
    snprintf(cache_root, sizeof cache_root, "%s/facl-cache-test-XXXXXX", base ? base : "/tmp");
    return mkdtemp(cache_root) ? 0 : -1;
}

static int remove_root(void **state)
{
    (void)state;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache_root);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cold_then_warm),       cmocka_unit_test(test_corrupted_file),
        cmocka_unit_test(test_truncated_file),       cmocka_unit_test(test_file_from_another_device),
        cmocka_unit_test(test_file_under_wrong_name), cmocka_unit_test(test_unwritable_directory),
        cmocka_unit_test(test_cache_off),            cmocka_unit_test(test_memory_cache),
    };
    return cmocka_run_group_tests(tests, make_root, remove_root);
}
