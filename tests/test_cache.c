/* The program cache: a cold context compiles and writes binaries; a warm one loads them
 * without compiling (the counters prove it); corrupted, truncated, foreign and
 * unwritable cache entries only cost a rebuild; an unsafe directory is not used; the
 * size bound evicts. Every scenario checks the result against the float64 reference,
 * because a cache that loads the wrong binary is worse than no cache. The thread tests
 * show that a compile blocks only the threads that need that program. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "case_runner.h"
#include "disk_cache.h"
#include "facl.h"

static char cache_root[512];

static fwd_case small_case(facl_dtype dtype)
{
    fwd_case c = fwd_case_make(CASE_DENSE, dtype, 24, 17, 33, 4, 2, 2, 1234u + (uint64_t)dtype);
    c.opts.causal = 1;
    return c;
}

/* What a context's log callback was told. */
typedef struct log_capture {
    pthread_mutex_t lock;
    int count[8]; /* by facl_log_kind */
    char disk_cache[1024]; /* the messages of kind FACL_LOG_DISK_CACHE, joined */
} log_capture;

static void capture_log(void *user, int32_t kind, const char *message)
{
    log_capture *c = user;
    pthread_mutex_lock(&c->lock);
    if (kind >= 0 && kind < 8) c->count[kind]++;
    if (kind == FACL_LOG_DISK_CACHE) {
        size_t used = strlen(c->disk_cache);
        snprintf(c->disk_cache + used, sizeof c->disk_cache - used, "%s\n", message);
    }
    pthread_mutex_unlock(&c->lock);
}

/* The device's own kernel path, forced in the counting tests' contexts so that no probe
 * (a fast path's check at creation, which builds programs of its own) is counted. */
static char device_path[32];

static facl_cache_stats stats_of(const facl_context *ctx)
{
    facl_cache_stats s = FACL_CACHE_STATS_INIT;
    assert_int_equal(facl_context_cache_stats(ctx, &s), FACL_SUCCESS);
    return s;
}

/* The counters of what happened since `before`: a context on a device with a fast path
 * builds its probe's programs when it is created, which the tests do not count. */
static facl_cache_stats stats_since(const facl_context *ctx, facl_cache_stats before)
{
    facl_cache_stats s = stats_of(ctx);
    s.memory_hits -= before.memory_hits;
    s.disk_hits -= before.disk_hits;
    s.source_builds -= before.source_builds;
    s.disk_rejects -= before.disk_rejects;
    s.disk_writes -= before.disk_writes;
    s.disk_write_failures -= before.disk_write_failures;
    s.disk_evictions -= before.disk_evictions;
    return s;
}

/* A fresh context (it reads the cache environment) with `config` (NULL = defaults),
 * one correct case, its counters; its device info in *info if not NULL. */
static facl_cache_stats run_with_config(const facl_context_config *config, facl_dtype dtype,
                                        facl_device_info *info)
{
    facl_context_config forced = FACL_CONTEXT_CONFIG_INIT;
    if (config) forced = *config;
    if (!forced.kernel_path) forced.kernel_path = device_path;
    facl_context *ctx = NULL;
    if (facl_context_create_with_config(NULL, &forced, &ctx) != FACL_SUCCESS)
        fail_msg("context: %s", facl_last_error());
    const facl_cache_stats before = stats_of(ctx);
    fwd_case c = small_case(dtype);
    case_result r;
    if (!run_fwd_case(ctx, &c, &r)) fail_msg("forward case failed: %s", r.detail);
    const facl_cache_stats stats = stats_since(ctx, before);
    if (info) assert_int_equal(facl_context_device_info(ctx, info), FACL_SUCCESS);
    facl_context_free(ctx);
    return stats;
}

static facl_cache_stats run_in_new_context(facl_dtype dtype)
{
    return run_with_config(NULL, dtype, NULL);
}

/* A context that reports to `log`, with a cache size bound (0 = default). */
static facl_context_config logging_config(log_capture *log, uint64_t max_bytes)
{
    facl_context_config config = FACL_CONTEXT_CONFIG_INIT;
    memset(log, 0, sizeof *log);
    pthread_mutex_init(&log->lock, NULL);
    config.log = capture_log;
    config.log_user = log;
    config.cache_max_bytes = max_bytes;
    return config;
}

static void assert_contains(const char *text, const char *part)
{
    if (!strstr(text, part)) fail_msg("'%s' does not say '%s'", text, part);
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
    assert_int_equal(cold.disk_evictions, 0); /* far under the default bound */
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    char files[8][640];
    assert_int_equal(list_binaries(dir, files, 8), (int)cold.disk_writes);

    log_capture log;
    facl_context_config config = logging_config(&log, 0);
    facl_cache_stats warm = run_with_config(&config, FACL_DTYPE_F16, NULL);
    assert_int_equal(warm.source_builds, 0); /* nothing was compiled */
    assert_int_equal(warm.disk_hits, cold.source_builds);
    assert_int_equal(warm.disk_rejects, 0);
    assert_int_equal(log.count[FACL_LOG_CACHE_HIT], (int)warm.disk_hits);
    assert_int_equal(log.count[FACL_LOG_BUILD_START], 0);
    assert_contains(log.disk_cache, dir);
    pthread_mutex_destroy(&log.lock);
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

/* A directory that cannot be created: no disk cache, and the context says why. */
static void test_uncreatable_directory(void **state)
{
    (void)state;
    char blocker[600], dir[700];
    snprintf(blocker, sizeof blocker, "%s/a-regular-file", cache_root);
    FILE *f = fopen(blocker, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(dir, sizeof dir, "%s/sub", blocker); /* cannot be created */
    setenv("FACL_CACHE_DIR", dir, 1);
    facl_device_info info = FACL_DEVICE_INFO_INIT;
    facl_cache_stats st = run_with_config(NULL, FACL_DTYPE_F32, &info);
    assert_true(st.source_builds >= 1);
    assert_int_equal(st.disk_writes + st.disk_write_failures, 0);
    assert_string_equal(info.cache_dir, "");
    assert_contains(info.cache_note, "cannot create");
}

/* The directory vanishes after the context opened it: each store fails, and is counted. */
static void test_write_failure(void **state)
{
    (void)state;
    char dir[600];
    use_cache_dir("vanished", dir, sizeof dir);
    /* The device's path forced: no probe writes into the directory before it goes. */
    facl_context_config config = FACL_CONTEXT_CONFIG_INIT;
    config.kernel_path = device_path;
    facl_context *ctx = NULL;
    assert_int_equal(facl_context_create_with_config(NULL, &config, &ctx), FACL_SUCCESS);
    const facl_cache_stats before = stats_of(ctx);
    assert_int_equal(rmdir(dir), 0);
    FILE *f = fopen(dir, "w"); /* a file where the directory was: it cannot come back */
    assert_non_null(f);
    fclose(f);
    fwd_case c = small_case(FACL_DTYPE_F32);
    case_result r;
    if (!run_fwd_case(ctx, &c, &r)) fail_msg("forward case failed: %s", r.detail);
    const facl_cache_stats st = stats_since(ctx, before);
    facl_context_free(ctx);
    assert_true(st.source_builds >= 1);
    assert_int_equal(st.disk_writes, 0);
    assert_int_equal(st.disk_write_failures, st.source_builds);
}

/* A directory others can write is not used, not even written to; the note and the log
 * say why, and results stay correct. (Each refusal is tested in test_disk_cache.) */
static void test_unsafe_directory_refused(void **state)
{
    (void)state;
    char dir[600];
    use_cache_dir("world-writable", dir, sizeof dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chmod(dir, 0777), 0);
    log_capture log;
    facl_context_config config = logging_config(&log, 0);
    facl_device_info info = FACL_DEVICE_INFO_INIT;
    facl_cache_stats st = run_with_config(&config, FACL_DTYPE_F32, &info);
    assert_int_equal(st.disk_hits + st.disk_writes + st.disk_write_failures, 0);
    assert_string_equal(info.cache_dir, "");
    assert_contains(info.cache_note, "writable by group or others");
    assert_contains(log.disk_cache, "writable by group or others");
    char files[8][640];
    assert_int_equal(list_binaries(dir, files, 8), 0);
    pthread_mutex_destroy(&log.lock);
}

static void test_relative_directory_refused(void **state)
{
    (void)state;
    setenv("FACL_CACHE_DIR", "relative/cache", 1);
    facl_device_info info = FACL_DEVICE_INFO_INIT;
    facl_cache_stats st = run_with_config(NULL, FACL_DTYPE_F32, &info);
    assert_int_equal(st.disk_writes + st.disk_write_failures, 0);
    assert_string_equal(info.cache_dir, "");
    assert_contains(info.cache_note, "FACL_CACHE_DIR is not an absolute path");
}

/* The configuration's directory is used when the environment names none; "" turns the
 * disk cache off without a note. */
static void test_configured_directory(void **state)
{
    (void)state;
    char dir[600];
    use_cache_dir("configured", dir, sizeof dir);
    unsetenv("FACL_CACHE_DIR");
    facl_context_config config = FACL_CONTEXT_CONFIG_INIT;
    config.cache_dir = dir;
    facl_device_info info = FACL_DEVICE_INFO_INIT;
    facl_cache_stats st = run_with_config(&config, FACL_DTYPE_F32, &info);
    assert_string_equal(info.cache_dir, dir);
    char files[8][640];
    assert_int_equal(list_binaries(dir, files, 8), (int)st.disk_writes);
    assert_true(st.disk_writes >= 1);

    config.cache_dir = "";
    facl_device_info off = FACL_DEVICE_INFO_INIT;
    st = run_with_config(&config, FACL_DTYPE_F32, &off);
    assert_int_equal(st.disk_hits + st.disk_writes, 0);
    assert_string_equal(off.cache_dir, "");
    assert_string_equal(off.cache_note, "");
}

/* A bound smaller than any entry: every store is followed by the eviction of what it
 * wrote, and the log says so. (The LRU order is tested in test_disk_cache.) */
static void test_size_bound_evicts(void **state)
{
    (void)state;
    char dir[600];
    use_cache_dir("bounded", dir, sizeof dir);
    log_capture log;
    facl_context_config config = logging_config(&log, 1);
    facl_cache_stats st = run_with_config(&config, FACL_DTYPE_F32, NULL);
    assert_true(st.disk_writes >= 1);
    assert_int_equal(st.disk_evictions, st.disk_writes);
    char files[8][640];
    assert_int_equal(list_binaries(dir, files, 8), 0);
    assert_contains(log.disk_cache, "evicted 1 least recently used entry");
    pthread_mutex_destroy(&log.lock);
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
    const facl_cache_stats before = stats_of(ctx);
    fwd_case c = small_case(FACL_DTYPE_F32);
    case_result r;
    assert_true(run_fwd_case(ctx, &c, &r));
    c.seed++;
    assert_true(run_fwd_case(ctx, &c, &r));
    const facl_cache_stats st = stats_since(ctx, before);
    assert_int_equal(st.source_builds, 1);
    assert_int_equal(st.memory_hits, 1);
    facl_context_free(ctx);
}

/* ------------------------------------------------------------ threads */

/* sem_wait with a deadline `seconds` from now; 1 if the semaphore was taken. */
static int wait_at_most(sem_t *sem, int seconds)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += seconds;
    int rc;
    while ((rc = sem_timedwait(sem, &deadline)) != 0 && errno == EINTR) continue;
    return rc == 0;
}

/* Thread A compiles a new program; inside its BUILD_START callback (compile not yet
 * done) it waits for thread B to finish a call whose program was built before. If the
 * compile held a lock that B needs, B could not finish and the wait times out. */
typedef struct nonblocking_test {
    facl_context *ctx;
    atomic_int armed;      /* the next BUILD_START is A's */
    sem_t a_compiling;     /* A is in its BUILD_START callback */
    sem_t b_done;          /* B's call returned */
    int b_finished_during_compile;
    int a_pass, b_pass, b_started;
    char a_detail[256], b_detail[256];
} nonblocking_test;

static void nonblocking_log(void *user, int32_t kind, const char *message)
{
    (void)message;
    nonblocking_test *t = user;
    if (kind != FACL_LOG_BUILD_START || !atomic_exchange(&t->armed, 0)) return;
    sem_post(&t->a_compiling);
    t->b_finished_during_compile = wait_at_most(&t->b_done, 120);
}

static void *nonblocking_a(void *arg)
{
    nonblocking_test *t = arg;
    fwd_case c = small_case(FACL_DTYPE_F16); /* a new dtype: a new program */
    case_result r;
    t->a_pass = run_fwd_case(t->ctx, &c, &r);
    snprintf(t->a_detail, sizeof t->a_detail, "%s", r.detail);
    return NULL;
}

static void *nonblocking_b(void *arg)
{
    nonblocking_test *t = arg;
    t->b_started = wait_at_most(&t->a_compiling, 120);
    if (t->b_started) {
        fwd_case c = small_case(FACL_DTYPE_F32); /* built before A started */
        c.seed += 7;
        case_result r;
        t->b_pass = run_fwd_case(t->ctx, &c, &r);
        snprintf(t->b_detail, sizeof t->b_detail, "%s", r.detail);
    }
    sem_post(&t->b_done);
    return NULL;
}

static void test_compile_does_not_block_built_programs(void **state)
{
    (void)state;
    char dir[600];
    use_cache_dir("nonblocking", dir, sizeof dir); /* empty: A's program is compiled */
    nonblocking_test t;
    memset(&t, 0, sizeof t);
    assert_int_equal(sem_init(&t.a_compiling, 0, 0), 0);
    assert_int_equal(sem_init(&t.b_done, 0, 0), 0);
    facl_context_config config = FACL_CONTEXT_CONFIG_INIT;
    config.log = nonblocking_log;
    config.log_user = &t;
    assert_int_equal(facl_context_create_with_config(NULL, &config, &t.ctx), FACL_SUCCESS);
    fwd_case c = small_case(FACL_DTYPE_F32);
    case_result r;
    if (!run_fwd_case(t.ctx, &c, &r)) fail_msg("forward case failed: %s", r.detail);

    atomic_store(&t.armed, 1);
    pthread_t a, b;
    assert_int_equal(pthread_create(&b, NULL, nonblocking_b, &t), 0);
    assert_int_equal(pthread_create(&a, NULL, nonblocking_a, &t), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    facl_context_free(t.ctx);
    sem_destroy(&t.a_compiling);
    sem_destroy(&t.b_done);
    if (!t.b_started) fail_msg("thread A never reported FACL_LOG_BUILD_START");
    if (!t.b_finished_during_compile)
        fail_msg("thread B's call on a built program waited for thread A's compile");
    if (!t.a_pass) fail_msg("thread A: %s", t.a_detail);
    if (!t.b_pass) fail_msg("thread B: %s", t.b_detail);
}

/* Two threads that need the same new program at once: one compiles, the other waits
 * for that compile and uses its program. */
typedef struct same_program_test {
    facl_context *ctx;
    pthread_barrier_t start;
    atomic_int calling;      /* threads that are about to make their call */
    atomic_int build_starts;
    int pass[2];
    char detail[2][256];
} same_program_test;

static void same_program_log(void *user, int32_t kind, const char *message)
{
    (void)message;
    same_program_test *t = user;
    if (kind != FACL_LOG_BUILD_START) return;
    atomic_fetch_add(&t->build_starts, 1);
    /* Keep the compile going until the other thread is making its call, and a little
     * longer, so that it asks for the program while it is being built. */
    const struct timespec ms = {0, 1000000};
    for (int i = 0; i < 10000 && atomic_load(&t->calling) < 2; ++i) nanosleep(&ms, NULL);
    const struct timespec pause = {0, 200000000};
    nanosleep(&pause, NULL);
}

typedef struct same_program_arg {
    same_program_test *t;
    int index;
} same_program_arg;

static void *same_program_thread(void *p)
{
    same_program_arg *arg = p;
    same_program_test *t = arg->t;
    pthread_barrier_wait(&t->start);
    fwd_case c = small_case(FACL_DTYPE_BF16);
    c.seed += (uint64_t)arg->index;
    case_result r;
    atomic_fetch_add(&t->calling, 1);
    t->pass[arg->index] = run_fwd_case(t->ctx, &c, &r);
    snprintf(t->detail[arg->index], sizeof t->detail[arg->index], "%s", r.detail);
    return NULL;
}

static void test_same_program_compiled_once(void **state)
{
    (void)state;
    char dir[600];
    use_cache_dir("same-program", dir, sizeof dir); /* empty: the program is compiled */
    same_program_test t;
    memset(&t, 0, sizeof t);
    assert_int_equal(pthread_barrier_init(&t.start, NULL, 2), 0);
    facl_context_config config = FACL_CONTEXT_CONFIG_INIT;
    config.log = same_program_log;
    config.log_user = &t;
    assert_int_equal(facl_context_create_with_config(NULL, &config, &t.ctx), FACL_SUCCESS);
    facl_cache_stats before = FACL_CACHE_STATS_INIT;
    assert_int_equal(facl_context_cache_stats(t.ctx, &before), FACL_SUCCESS);
    const int starts_before = atomic_load(&t.build_starts); /* a probe's, if any */

    pthread_t threads[2];
    same_program_arg args[2] = {{&t, 0}, {&t, 1}};
    for (int i = 0; i < 2; ++i)
        assert_int_equal(pthread_create(&threads[i], NULL, same_program_thread, &args[i]), 0);
    for (int i = 0; i < 2; ++i) pthread_join(threads[i], NULL);
    facl_cache_stats after = FACL_CACHE_STATS_INIT;
    assert_int_equal(facl_context_cache_stats(t.ctx, &after), FACL_SUCCESS);
    facl_context_free(t.ctx);
    pthread_barrier_destroy(&t.start);
    for (int i = 0; i < 2; ++i)
        if (!t.pass[i]) fail_msg("thread %d: %s", i, t.detail[i]);
    assert_int_equal(after.source_builds - before.source_builds, 1);
    assert_int_equal(atomic_load(&t.build_starts) - starts_before, 1);
    assert_int_equal(after.memory_hits - before.memory_hits, 1); /* the thread that waited */
    assert_int_equal(after.disk_writes - before.disk_writes, 1);
}

static int make_root(void **state)
{
    (void)state;
    facl_context_config config = FACL_CONTEXT_CONFIG_INIT;
    config.cache_dir = "";
    facl_context *ctx = NULL;
    facl_device_info info = FACL_DEVICE_INFO_INIT;
    if (facl_context_create_with_config(NULL, &config, &ctx) != FACL_SUCCESS ||
        facl_context_device_info(ctx, &info) != FACL_SUCCESS)
        return -1;
    snprintf(device_path, sizeof device_path, "%s", info.kernel_path);
    facl_context_free(ctx);
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
        cmocka_unit_test(test_cold_then_warm),
        cmocka_unit_test(test_corrupted_file),
        cmocka_unit_test(test_truncated_file),
        cmocka_unit_test(test_file_from_another_device),
        cmocka_unit_test(test_file_under_wrong_name),
        cmocka_unit_test(test_uncreatable_directory),
        cmocka_unit_test(test_write_failure),
        cmocka_unit_test(test_unsafe_directory_refused),
        cmocka_unit_test(test_relative_directory_refused),
        cmocka_unit_test(test_configured_directory),
        cmocka_unit_test(test_size_bound_evicts),
        cmocka_unit_test(test_cache_off),
        cmocka_unit_test(test_memory_cache),
        cmocka_unit_test(test_compile_does_not_block_built_programs),
        cmocka_unit_test(test_same_program_compiled_once),
    };
    return cmocka_run_group_tests(tests, make_root, remove_root);
}
