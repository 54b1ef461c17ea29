/* Context configuration (cache directory, kernel path, log callback; the environment
 * over them) and the probe of fast kernel paths. */
#define _GNU_SOURCE /* strcasestr */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_api.h"

#include "kernel_path.h" /* facl_probe_fwd_path (internal) */

static void restore_cache_env(void)
{
    unsetenv("FACL_CACHE");
    if (g_env_cache_dir[0]) setenv("FACL_CACHE_DIR", g_env_cache_dir, 1);
    else unsetenv("FACL_CACHE_DIR");
}

/* ------------------------------------------------------------------ configuration */

/* cache_dir "": no disk cache (nothing read or written); the log callback hears the
 * kernel path at creation and the compile of the first call. */
static void test_config_cache_off_and_log(void **state)
{
    (void)state;
    unsetenv("FACL_CACHE_DIR");
    log_record log;
    log_record_init(&log);
    facl_context_config config = FACL_CONTEXT_CONFIG_INIT;
    config.cache_dir = "";
    config.log = record_log;
    config.log_user = &log;
    facl_context *ctx = NULL;
    const facl_status st = facl_context_create_with_config(NULL, &config, &ctx);
    restore_cache_env();
    if (st != FACL_SUCCESS) fail_msg("facl_context_create_with_config: %s", facl_last_error());
    const facl_device_info info = api_info(ctx);
    assert_string_equal(info.cache_dir, "");
    assert_int_equal(log.count[FACL_LOG_KERNEL_PATH], 1);
    if (!strstr(log.path_message, info.kernel_path))
        fail_msg("the kernel-path log '%s' does not name %s", log.path_message, info.kernel_path);
    /* Only a fast path's probe compiles at creation (NVIDIA), and each compile is logged. */
    const facl_cache_stats created = api_stats(ctx);
    assert_int_equal((uint64_t)log.count[FACL_LOG_BUILD_START], created.source_builds);

    tiny_run_and_check(ctx, 21);
    const facl_cache_stats s = api_stats(ctx);
    assert_true(s.source_builds >= created.source_builds + 1);
    assert_int_equal(s.disk_hits, 0);
    assert_int_equal(s.disk_writes, 0);
    assert_int_equal(s.disk_write_failures, 0);
    assert_int_equal(s.disk_rejects, 0);
    if (log.count[FACL_LOG_BUILD_START] < 1 || log.count[FACL_LOG_BUILD_DONE] < 1)
        fail_msg("a compile from source logged %d BUILD_START and %d BUILD_DONE",
                 log.count[FACL_LOG_BUILD_START], log.count[FACL_LOG_BUILD_DONE]);
    assert_int_equal(log.count[FACL_LOG_BUILD_START], log.count[FACL_LOG_BUILD_DONE]);
    assert_int_equal((uint64_t)log.count[FACL_LOG_BUILD_START], s.source_builds);
    assert_int_equal(log.count[FACL_LOG_CACHE_HIT], 0);
    assert_int_equal(log.count[0], 0); /* no kind outside facl_log_kind */
    assert_int_equal(log.empty_messages, 0);
    facl_context_free(ctx);
    pthread_mutex_destroy(&log.lock);
}

/* A relative cache_dir is refused: the context runs without a disk cache, says why, and
 * creates nothing relative to the working directory. */
static void test_config_relative_cache_dir(void **state)
{
    (void)state;
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof cwd));
    char work[600];
    snprintf(work, sizeof work, "%s/cwd", g_tmp_dir);
    assert_int_equal(mkdir(work, 0700), 0);
    assert_int_equal(chdir(work), 0);
    unsetenv("FACL_CACHE_DIR");
    facl_context_config config = FACL_CONTEXT_CONFIG_INIT;
    config.cache_dir = "relative-cache";
    facl_context *ctx = NULL;
    const facl_status st = facl_context_create_with_config(NULL, &config, &ctx);
    restore_cache_env();
    facl_device_info info = FACL_DEVICE_INFO_INIT;
    facl_cache_stats s = FACL_CACHE_STATS_INIT;
    if (st == FACL_SUCCESS) {
        info = api_info(ctx);
        tiny_run_and_check(ctx, 22);
        s = api_stats(ctx);
        facl_context_free(ctx);
    }
    struct stat sb;
    const int created = stat("relative-cache", &sb) == 0;
    if (created) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s/relative-cache'", work);
        if (system(cmd) != 0) print_error("could not remove %s/relative-cache\n", work);
    }
    assert_int_equal(chdir(cwd), 0);
    rmdir(work);
    if (st != FACL_SUCCESS) fail_msg("facl_context_create_with_config: %s", facl_last_error());
    if (info.cache_dir[0]) fail_msg("relative cache_dir used: device_info.cache_dir '%s'", info.cache_dir);
    if (!info.cache_note[0]) fail_msg("relative cache_dir refused without a cache_note");
    assert_false(created);
    assert_int_equal(s.disk_writes, 0);
    assert_int_equal(s.disk_hits, 0);
}

/* The environment wins over the configuration: FACL_CACHE_DIR over cache_dir, and
 * FACL_CACHE=0 turns the cache off whatever cache_dir says. */
static void test_config_cache_env_overrides(void **state)
{
    (void)state;
    char env_dir[600], cfg_dir[600];
    snprintf(env_dir, sizeof env_dir, "%s/env-cache", g_tmp_dir);
    snprintf(cfg_dir, sizeof cfg_dir, "%s/config-cache", g_tmp_dir);
    assert_int_equal(mkdir(env_dir, 0700), 0);
    assert_int_equal(mkdir(cfg_dir, 0700), 0);
    facl_context_config config = FACL_CONTEXT_CONFIG_INIT;
    config.cache_dir = cfg_dir;
    facl_device_info with_env = FACL_DEVICE_INFO_INIT, cache_off = FACL_DEVICE_INFO_INIT,
                     config_only = FACL_DEVICE_INFO_INIT;
    facl_context *ctx = NULL;
    setenv("FACL_CACHE_DIR", env_dir, 1);
    facl_status st = facl_context_create_with_config(NULL, &config, &ctx);
    if (st == FACL_SUCCESS) {
        with_env = api_info(ctx);
        facl_context_free(ctx);
        setenv("FACL_CACHE", "0", 1);
        st = facl_context_create_with_config(NULL, &config, &ctx);
        if (st == FACL_SUCCESS) {
            cache_off = api_info(ctx);
            facl_context_free(ctx);
            unsetenv("FACL_CACHE");
            unsetenv("FACL_CACHE_DIR");
            st = facl_context_create_with_config(NULL, &config, &ctx);
            if (st == FACL_SUCCESS) {
                config_only = api_info(ctx);
                facl_context_free(ctx);
            }
        }
    }
    restore_cache_env();
    rmdir(env_dir);
    rmdir(cfg_dir);
    if (st != FACL_SUCCESS) fail_msg("facl_context_create_with_config: %s", facl_last_error());
    if (strcmp(with_env.cache_dir, env_dir) != 0)
        fail_msg("FACL_CACHE_DIR=%s, config %s: cache_dir is '%s' (note '%s')", env_dir, cfg_dir,
                 with_env.cache_dir, with_env.cache_note);
    assert_string_equal(cache_off.cache_dir, "");
    if (strcmp(config_only.cache_dir, cfg_dir) != 0)
        fail_msg("config %s alone: cache_dir is '%s' (note '%s')", cfg_dir, config_only.cache_dir,
                 config_only.cache_note);
}

static facl_status create_with_path(const char *path, facl_context **ctx)
{
    facl_context_config config = FACL_CONTEXT_CONFIG_INIT;
    config.kernel_path = path;
    *ctx = NULL;
    return facl_context_create_with_config(NULL, &config, ctx);
}

static void expect_path(const char *configured, const char *env, const char *path,
                        const char *reason_word)
{
    if (env) setenv("FACL_KERNEL_PATH", env, 1);
    facl_context *ctx = NULL;
    const facl_status st = create_with_path(configured, &ctx);
    unsetenv("FACL_KERNEL_PATH");
    if (st != FACL_SUCCESS)
        fail_msg("kernel_path %s, FACL_KERNEL_PATH %s: %s", configured, env ? env : "unset",
                 facl_last_error());
    const facl_device_info info = api_info(ctx);
    facl_context_free(ctx);
    if (strcmp(info.kernel_path, path) != 0 || !strstr(info.kernel_path_reason, reason_word))
        fail_msg("kernel_path %s, FACL_KERNEL_PATH %s: got %s (%s), expected %s (%s)", configured,
                 env ? env : "unset", info.kernel_path, info.kernel_path_reason, path, reason_word);
}

/* The configured kernel path is honoured, FACL_KERNEL_PATH overrides it, and an unknown
 * or impossible one is refused. */
static void test_config_kernel_path(void **state)
{
    (void)state;
    expect_path("portable-gpu", NULL, "portable-gpu", "config");
    expect_path("portable-cpu", NULL, "portable-cpu", "config");
    expect_path("mma-emulated", NULL, "mma-emulated", "config");
    expect_path("portable-gpu", "portable-cpu", "portable-cpu", "FACL_KERNEL_PATH");
    expect_path("portable-cpu", "portable-gpu", "portable-gpu", "FACL_KERNEL_PATH");
    expect_path(NULL, "portable-gpu", "portable-gpu", "FACL_KERNEL_PATH");
    expect_path("", "portable-gpu", "portable-gpu", "FACL_KERNEL_PATH");

    facl_context *ctx = (facl_context *)&ctx;
    assert_int_equal(create_with_path("warp-drive", &ctx), FACL_ERROR_INVALID_VALUE);
    assert_error_names("kernel_path");
    assert_error_names("warp-drive");
    assert_null(ctx);
    setenv("FACL_KERNEL_PATH", "warp-drive", 1);
    const facl_status st = create_with_path("portable-cpu", &ctx);
    unsetenv("FACL_KERNEL_PATH");
    assert_int_equal(st, FACL_ERROR_INVALID_VALUE);
    assert_error_names("FACL_KERNEL_PATH");
    assert_null(ctx);

    facl_context *plain = api_context();
    const facl_device_info info = api_info(plain);
    facl_context_free(plain);
    if (info.nv_compute_major == 0) { /* not NVIDIA: nvidia-mma is impossible */
        assert_int_equal(create_with_path("nvidia-mma", &ctx), FACL_ERROR_UNSUPPORTED);
        assert_error_names("nvidia-mma");
        assert_null(ctx);
    }
}

/* The kernels' benchmarking switches (KV cache, backward, the portable GPU kernel), read
 * at context creation: a malformed value fails creation and names the variable; a valid
 * one creates the context. */
static void expect_env(const char *name, const char *value, facl_status expected)
{
    setenv(name, value, 1);
    facl_context *ctx = (facl_context *)&ctx;
    const facl_status st = facl_context_create(NULL, &ctx);
    unsetenv(name);
    if (st != expected)
        fail_msg("%s=%s: %s (%s), expected %s", name, value, facl_status_string(st),
                 facl_last_error(), facl_status_string(expected));
    if (expected == FACL_SUCCESS) {
        assert_non_null(ctx);
        facl_context_free(ctx);
    } else {
        assert_error_names(name);
        assert_error_names(value);
        assert_null(ctx);
    }
}

static void test_config_cache_kernel_env(void **state)
{
    (void)state;
    expect_env("FACL_CACHE_MMA_SHAPE", "2,2", FACL_SUCCESS);
    expect_env("FACL_CACHE_MMA_SHAPE", "3,2", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_CACHE_MMA_SHAPE", "2,2x", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_CACHE_SPLIT_MERGE", "kernel", FACL_SUCCESS);
    expect_env("FACL_CACHE_SPLIT_MERGE", "combine", FACL_SUCCESS);
    expect_env("FACL_CACHE_SPLIT_MERGE", "both", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_BWD_MMA_SHAPE", "2,16,16,1,1,16,1", FACL_SUCCESS);
    expect_env("FACL_BWD_MMA_SHAPE", "2,16,16,1,16", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_BWD_MMA_SHAPE", "4,48,64,2,4,64,2", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_WGMMA_SHAPE", "2,1,3", FACL_SUCCESS);
    expect_env("FACL_FWD_WGMMA_SHAPE", "3,1,0", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_WGMMA_SHAPE", "2,1", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_WGMMA_SHAPE", "2,1,1", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_WGMMA_BLOCK_N", "64", FACL_SUCCESS);
    expect_env("FACL_FWD_WGMMA_BLOCK_N", "128", FACL_SUCCESS);
    expect_env("FACL_FWD_WGMMA_BLOCK_N", "96", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_WGMMA_BLOCK_N", "128x", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_BLOCKS_PER_GROUP", "1", FACL_SUCCESS);
    expect_env("FACL_FWD_BLOCKS_PER_GROUP", "64", FACL_SUCCESS);
    expect_env("FACL_FWD_BLOCKS_PER_GROUP", "0", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_BLOCKS_PER_GROUP", "65", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_BLOCKS_PER_GROUP", "-2", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_BLOCKS_PER_GROUP", "2x", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_BLOCKS_PER_GROUP", "99999999999999999999", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_MMA_SHAPE", "2,1,64,2", FACL_SUCCESS);
    expect_env("FACL_FWD_MMA_SHAPE", "1,0,32,1", FACL_SUCCESS);
    expect_env("FACL_FWD_MMA_SHAPE", "3,1,64,1", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_MMA_SHAPE", "2,2,64,1", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_MMA_SHAPE", "2,1,48,1", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_MMA_SHAPE", "2,1,64,3", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_MMA_SHAPE", "2,1,64", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_MMA_SHAPE", "2,1,64,2,1", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_MMA_SHAPE", "2,1", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_WGMMA", "0", FACL_SUCCESS);
    expect_env("FACL_FWD_WGMMA", "yes", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_WGMMA_WS", "0", FACL_SUCCESS);
    expect_env("FACL_FWD_WGMMA_WS", "3", FACL_ERROR_INVALID_VALUE);
    /* without FACL_FWD_WGMMA=1 it would change nothing: refused */
    expect_env("FACL_FWD_WGMMA_WS", "1", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_TMA", "", FACL_SUCCESS);
    expect_env("FACL_FWD_TMA", "on", FACL_ERROR_INVALID_VALUE);
    /* alone it turns the Hopper default off (nothing to turn off here) */
    expect_env("FACL_FWD_TMA", "0", FACL_SUCCESS);
    /* with FACL_FWD_WGMMA=0 it would change nothing: refused */
    setenv("FACL_FWD_WGMMA", "0", 1);
    expect_env("FACL_FWD_TMA", "0", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_FWD_WGMMA_WS", "2", FACL_ERROR_INVALID_VALUE);
    unsetenv("FACL_FWD_WGMMA");
    expect_env("FACL_BWD_DQ_ATOMIC", "1", FACL_SUCCESS);
    expect_env("FACL_BWD_DQ_ATOMIC", "on", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_BWD_WGMMA", "0", FACL_SUCCESS);
    expect_env("FACL_BWD_WGMMA", "2", FACL_ERROR_INVALID_VALUE);
    /* without FACL_BWD_WGMMA=1 it would change nothing: refused */
    expect_env("FACL_BWD_WGMMA_WARPGROUPS", "2", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_PORTABLE_KERNEL", "previous", FACL_SUCCESS);
    expect_env("FACL_PORTABLE_KERNEL", "attn_fwd_blocked", FACL_SUCCESS);
    expect_env("FACL_PORTABLE_KERNEL", "fast", FACL_ERROR_INVALID_VALUE);
    expect_env("FACL_CPU_PACK", "always", FACL_SUCCESS);
    expect_env("FACL_CPU_PACK", "auto", FACL_SUCCESS);
    expect_env("FACL_CPU_PACK", "1", FACL_ERROR_INVALID_VALUE);
}

/* FACL_FWD_WGMMA=1 forces the Hopper kernel where it can run (mma-emulated here, an
 * sm_90 nvidia-mma path) and is refused, naming itself, on any other path; the reason says
 * so. */
static void test_fwd_wgmma_env(void **state)
{
    (void)state;
    setenv("FACL_FWD_WGMMA", "1", 1);
    facl_context *ctx = NULL;
    facl_status st = create_with_path("mma-emulated", &ctx);
    if (st != FACL_SUCCESS) fail_msg("FACL_FWD_WGMMA=1 on mma-emulated: %s", facl_last_error());
    facl_device_info info = api_info(ctx);
    facl_context_free(ctx);
    if (!strstr(info.kernel_path_reason, "wgmma forced"))
        fail_msg("reason '%s' does not say wgmma is forced", info.kernel_path_reason);
    /* its warp-specialised form, said in the reason */
    setenv("FACL_FWD_WGMMA_WS", "2", 1);
    st = create_with_path("mma-emulated", &ctx);
    unsetenv("FACL_FWD_WGMMA_WS");
    if (st != FACL_SUCCESS) fail_msg("FACL_FWD_WGMMA_WS=2 on mma-emulated: %s", facl_last_error());
    info = api_info(ctx);
    facl_context_free(ctx);
    if (!strstr(info.kernel_path_reason, "wgmma forced") || !strstr(info.kernel_path_reason, "warp-specialised"))
        fail_msg("reason '%s' does not say warp-specialised wgmma is forced", info.kernel_path_reason);
    /* its copier's choice is taken there (the emulation has no copier: nothing to open) */
    setenv("FACL_FWD_WGMMA_WS", "1", 1);
    setenv("FACL_FWD_TMA", "0", 1);
    st = create_with_path("mma-emulated", &ctx);
    unsetenv("FACL_FWD_TMA");
    unsetenv("FACL_FWD_WGMMA_WS");
    if (st != FACL_SUCCESS) fail_msg("FACL_FWD_TMA=0 with the WS kernel on mma-emulated: %s", facl_last_error());
    facl_context_free(ctx);
    ctx = (facl_context *)&ctx;
    st = create_with_path("portable-gpu", &ctx);
    unsetenv("FACL_FWD_WGMMA");
    assert_int_equal(st, FACL_ERROR_UNSUPPORTED);
    assert_error_names("FACL_FWD_WGMMA");
    assert_null(ctx);
}

/* FACL_BWD_WGMMA=1 likewise for the Hopper backward, with its warpgroup count (1 or 2,
 * else refused, naming itself). */
static void test_bwd_wgmma_env(void **state)
{
    (void)state;
    setenv("FACL_BWD_WGMMA", "1", 1);
    facl_context *ctx = NULL;
    facl_status st = create_with_path("mma-emulated", &ctx);
    if (st != FACL_SUCCESS) fail_msg("FACL_BWD_WGMMA=1 on mma-emulated: %s", facl_last_error());
    facl_device_info info = api_info(ctx);
    facl_context_free(ctx);
    if (!strstr(info.kernel_path_reason, "backward wgmma forced"))
        fail_msg("reason '%s' does not say the backward's wgmma is forced", info.kernel_path_reason);
    setenv("FACL_BWD_WGMMA_WARPGROUPS", "1", 1);
    st = create_with_path("mma-emulated", &ctx);
    if (st != FACL_SUCCESS) fail_msg("FACL_BWD_WGMMA_WARPGROUPS=1: %s", facl_last_error());
    facl_context_free(ctx);
    setenv("FACL_BWD_WGMMA_WARPGROUPS", "3", 1);
    ctx = (facl_context *)&ctx;
    st = create_with_path("mma-emulated", &ctx);
    unsetenv("FACL_BWD_WGMMA_WARPGROUPS");
    assert_int_equal(st, FACL_ERROR_INVALID_VALUE);
    assert_error_names("FACL_BWD_WGMMA_WARPGROUPS");
    assert_null(ctx);
    ctx = (facl_context *)&ctx;
    st = create_with_path("portable-gpu", &ctx);
    unsetenv("FACL_BWD_WGMMA");
    assert_int_equal(st, FACL_ERROR_UNSUPPORTED);
    assert_error_names("FACL_BWD_WGMMA");
    assert_null(ctx);
}

/* ------------------------------------------------------------------ probe */

/* Without a forced path the reason says why the context uses its path. */
static void test_default_path_reason(void **state)
{
    (void)state;
    facl_context *ctx = api_context();
    const facl_device_info info = api_info(ctx);
    facl_context_free(ctx);
    assert_true(info.kernel_path[0] != '\0');
    assert_true(info.kernel_path_reason[0] != '\0');
    if (info.device_type & CL_DEVICE_TYPE_CPU) {
        assert_string_equal(info.kernel_path, "portable-cpu");
        if (!strcasestr(info.kernel_path_reason, "CPU"))
            fail_msg("kernel_path_reason '%s' does not say CPU", info.kernel_path_reason);
    }
}

/* The nvidia-mma probes (forward, KV cache and backward) fail where the inline PTX cannot compile,
 * with a reason; the probes of the emulated kernels pass (so the probes can pass), and
 * none changes the context's path. */
static void test_probe(void **state)
{
    (void)state;
    facl_context *ctx = api_context();
    const facl_device_info before = api_info(ctx);
    char why[256];
    if (before.nv_compute_major == 0) {
        memset(why, 0, sizeof why);
        const facl_status st = facl_probe_fwd_path(ctx, FACL_PATH_NVIDIA_MMA, why, sizeof why);
        if (st == FACL_SUCCESS) fail_msg("the nvidia-mma probe passed on %s", before.device_name);
        if (!why[0] || strcmp(why, "passed") == 0)
            fail_msg("the failed nvidia-mma probe gave the reason '%s'", why);
        print_message("nvidia-mma probe: %s\n", why);
        assert_string_equal(api_info(ctx).kernel_path, before.kernel_path);
        memset(why, 0, sizeof why);
        if (facl_probe_cache_mma(ctx, FACL_PATH_NVIDIA_MMA, why, sizeof why) == FACL_SUCCESS)
            fail_msg("the nvidia-mma KV-cache probe passed on %s", before.device_name);
        if (!strstr(why, "KV cache"))
            fail_msg("the failed KV-cache probe gave the reason '%s'", why);
        assert_string_equal(api_info(ctx).kernel_path, before.kernel_path);
        memset(why, 0, sizeof why);
        if (facl_probe_bwd_mma(ctx, FACL_PATH_NVIDIA_MMA, why, sizeof why) == FACL_SUCCESS)
            fail_msg("the nvidia-mma backward probe passed on %s", before.device_name);
        if (!strstr(why, "backward"))
            fail_msg("the failed backward probe gave the reason '%s'", why);
        assert_string_equal(api_info(ctx).kernel_path, before.kernel_path);
    }
    memset(why, 0, sizeof why);
    const facl_status st = facl_probe_fwd_path(ctx, FACL_PATH_MMA_EMULATED, why, sizeof why);
    if (st != FACL_SUCCESS) fail_msg("the mma-emulated probe failed: %s", why);
    assert_string_equal(why, "passed");
    assert_string_equal(api_info(ctx).kernel_path, before.kernel_path);
    memset(why, 0, sizeof why);
    if (facl_probe_cache_mma(ctx, FACL_PATH_MMA_EMULATED, why, sizeof why) != FACL_SUCCESS)
        fail_msg("the mma-emulated KV-cache probe failed: %s", why);
    assert_string_equal(why, "passed");
    assert_string_equal(api_info(ctx).kernel_path, before.kernel_path);
    memset(why, 0, sizeof why);
    if (facl_probe_bwd_mma(ctx, FACL_PATH_MMA_EMULATED, why, sizeof why) != FACL_SUCCESS)
        fail_msg("the mma-emulated backward probe failed: %s", why);
    assert_string_equal(why, "passed");
    assert_string_equal(api_info(ctx).kernel_path, before.kernel_path);
    /* The context still computes correctly on its own path afterwards. */
    tiny_run_and_check(ctx, 23);
    facl_context_free(ctx);
}

/* ------------------------------------------------------------------ backward probe */

/* A small fp16 backward problem (q, k, v, out, lse, dout, dq, dk, dv): inputs drawn from
 * exact fp16 values, out and lse from the context's own forward, gradients poisoned. */
enum { BS_SQ = 20, BS_SK = 24, BS_H = 2, BS_D = 16, BS_N = 9 };

typedef struct bwd_small {
    cl_mem m[BS_N];
    facl_tensor t[BS_N];
} bwd_small;

static void bwd_small_init(bwd_small *b, facl_context *ctx, cl_context cl_ctx)
{
    static const uint16_t values[8] = {0x3800, 0xB800, 0x3400, 0xB400,
                                       0x3C00, 0xBC00, 0x3A00, 0xBA00}; /* +-0.5, 0.25, 1, 0.75 */
    const int64_t qs[4] = {1, BS_SQ, BS_H, BS_D}, ks[4] = {1, BS_SK, BS_H, BS_D}, ls[3] = {1, BS_H, BS_SQ};
    uint16_t host[BS_SK * BS_H * BS_D];
    uint32_t state = 12345u;
    for (int i = 0; i < BS_N; ++i) {
        const int keys = i == 1 || i == 2 || i == 7 || i == 8; /* k, v, dk, dv */
        const size_t n = (size_t)(keys ? BS_SK : BS_SQ) * BS_H * BS_D;
        for (size_t e = 0; e < n; ++e) {
            state = state * 1664525u + 1013904223u;
            host[e] = (i <= 2 || i == 5) ? values[state >> 29] : 0xFFFFu; /* inputs; poison */
        }
        cl_int err;
        b->m[i] = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                                 i == 4 ? (size_t)BS_H * BS_SQ * 4 : n * 2, host, &err);
        assert_int_equal(err, CL_SUCCESS);
        b->t[i] = i == 4 ? facl_tensor_contiguous(b->m[i], FACL_DTYPE_F32, 3, ls)
                         : facl_tensor_contiguous(b->m[i], FACL_DTYPE_F16, 4, keys ? ks : qs);
    }
    facl_attn_options opts = facl_attn_options_default();
    opts.causal = 1;
    if (facl_fwd(ctx, NULL, &b->t[0], &b->t[1], &b->t[2], &b->t[3], &b->t[4], &opts, 0, NULL,
                 NULL) != FACL_SUCCESS)
        fail_msg("facl_fwd: %s", facl_last_error());
}

static facl_status bwd_small_run(facl_context *ctx, bwd_small *b)
{
    facl_attn_options opts = facl_attn_options_default();
    opts.causal = 1;
    return facl_bwd(ctx, NULL, &b->t[5], &b->t[0], &b->t[1], &b->t[2], &b->t[3], &b->t[4],
                    &b->t[6], &b->t[7], &b->t[8], &opts, NULL, 0, NULL, NULL);
}

/* dq, dk and dv hold no NaN (the poison) after the calls. */
static void bwd_small_check_written(facl_context *ctx, bwd_small *b)
{
    cl_command_queue queue = facl_context_queue(ctx);
    for (int i = 6; i < BS_N; ++i) {
        const size_t n = (size_t)(i == 6 ? BS_SQ : BS_SK) * BS_H * BS_D;
        uint16_t host[BS_SK * BS_H * BS_D];
        assert_int_equal(clEnqueueReadBuffer(queue, b->m[i], CL_TRUE, 0, n * 2, host, 0, NULL, NULL),
                         CL_SUCCESS);
        for (size_t e = 0; e < n; ++e)
            if ((host[e] & 0x7C00u) == 0x7C00u) fail_msg("gradient %d element %zu is 0x%04x", i, e, host[e]);
    }
}

static void bwd_small_free(bwd_small *b)
{
    for (int i = 0; i < BS_N; ++i) clReleaseMemObject(b->m[i]);
}

typedef struct probe_watch {
    facl_context *ctx;
    bwd_small *problem;
    int probe_logs, passed, nested_calls;
    facl_status nested;
} probe_watch;

/* Counts the backward probe's log lines; at the first program the probe gets (a compile
 * or a disk-cache hit, on the probing thread) makes a backward call itself, once. */
static void watch_probe(void *user, int32_t kind, const char *message)
{
    probe_watch *w = user;
    if (kind == FACL_LOG_PROBE && message && strstr(message, "backward")) {
        w->probe_logs++;
        w->passed += strstr(message, "passed") != NULL;
    }
    const int program = kind == FACL_LOG_BUILD_START || kind == FACL_LOG_CACHE_HIT;
    if (program && w->problem && w->nested_calls == 0 && w->ctx->bwd_probe == FACL_BWD_PROBE_RUNNING) {
        w->nested_calls++;
        w->nested = bwd_small_run(w->ctx, w->problem);
    }
}

typedef struct program_watch {
    pthread_mutex_t lock;
    char wanted[128];
    int seen; /* programs compiled or loaded whose options contain `wanted` */
} program_watch;

static void watch_programs(void *user, int32_t kind, const char *message)
{
    program_watch *w = user;
    if ((kind == FACL_LOG_BUILD_START || kind == FACL_LOG_CACHE_HIT) && message &&
        strstr(message, "attn_bwd_mma") && strstr(message, w->wanted)) {
        pthread_mutex_lock(&w->lock);
        w->seen++;
        pthread_mutex_unlock(&w->lock);
    }
}

/* FACL_BWD_MMA_SHAPE, read at context creation, is the shape the backward's tensor-core
 * program is built in (its options name it). */
static void test_bwd_mma_shape_env(void **state)
{
    (void)state;
    program_watch w;
    memset(&w, 0, sizeof w);
    pthread_mutex_init(&w.lock, NULL);
    snprintf(w.wanted, sizeof w.wanted,
             "-DKV_WARPS=2 -DKV_KEYS=16 -DKV_ROWS=16 -DKV_STAGES=1 -DDQ_WARPS=1 -DDQ_KEYS=16 "
             "-DDQ_STAGES=1");
    facl_context_config config = FACL_CONTEXT_CONFIG_INIT;
    config.kernel_path = "mma-emulated";
    config.log = watch_programs;
    config.log_user = &w;
    setenv("FACL_BWD_MMA_SHAPE", "2,16,16,1,1,16,1", 1);
    facl_context *ctx = NULL;
    const facl_status st = facl_context_create_with_config(NULL, &config, &ctx);
    unsetenv("FACL_BWD_MMA_SHAPE");
    if (st != FACL_SUCCESS) fail_msg("facl_context_create_with_config: %s", facl_last_error());
    bwd_small b;
    bwd_small_init(&b, ctx, facl_context_cl_context(ctx));
    if (bwd_small_run(ctx, &b) != FACL_SUCCESS) fail_msg("facl_bwd: %s", facl_last_error());
    bwd_small_check_written(ctx, &b);
    bwd_small_free(&b);
    facl_context_free(ctx);
    if (w.seen != 1) fail_msg("%d attn_bwd_mma programs with '%s'", w.seen, w.wanted);
    pthread_mutex_destroy(&w.lock);
}

/* The tensor-core backward's probe at the first backward call that needs it
 * (bwd_launch.c), through the emulation on a context in the state an NVIDIA context is
 * in after its forward probe: it runs once and says so; a backward call made from inside
 * it (a log callback on the probing thread) does not wait for itself but takes the
 * portable kernels; later calls neither probe nor log again. */
static void test_bwd_probe_first_call(void **state)
{
    (void)state;
    probe_watch w;
    memset(&w, 0, sizeof w);
    facl_context_config config = FACL_CONTEXT_CONFIG_INIT;
    config.kernel_path = "mma-emulated";
    config.log = watch_probe;
    config.log_user = &w;
    facl_context *ctx = NULL;
    if (facl_context_create_with_config(NULL, &config, &ctx) != FACL_SUCCESS)
        fail_msg("facl_context_create_with_config: %s", facl_last_error());
    assert_int_equal(ctx->bwd_probe, FACL_BWD_PROBE_PASSED); /* forced: not probed */
    ctx->bwd_probe = FACL_BWD_PROBE_NOT_RUN;
    bwd_small b;
    bwd_small_init(&b, ctx, facl_context_cl_context(ctx));
    w.ctx = ctx;
    w.problem = &b;
    if (bwd_small_run(ctx, &b) != FACL_SUCCESS) fail_msg("facl_bwd: %s", facl_last_error());
    assert_int_equal(w.probe_logs, 1);
    assert_int_equal(w.passed, 1);
    assert_int_equal(ctx->bwd_probe, FACL_BWD_PROBE_PASSED);
    assert_int_equal(w.nested_calls, 1);
    if (w.nested != FACL_SUCCESS) fail_msg("the backward call inside the probe: %s", facl_last_error());
    if (bwd_small_run(ctx, &b) != FACL_SUCCESS) fail_msg("facl_bwd: %s", facl_last_error());
    assert_int_equal(w.probe_logs, 1);
    bwd_small_check_written(ctx, &b);
    bwd_small_free(&b);
    facl_context_free(ctx);
}

/* Counts, on a context that takes the Hopper backward by default, the backward probe's
 * log lines and the attn_bwd_wgmma programs of the probe's head dims (72 and 128). */
typedef struct wgmma_probe_watch {
    int probe_logs, passed;
    int wgmma[2][2]; /* builds of attn_bwd_wgmma: [d = 72, 128][DQ_ATOMIC 0, 1] */
} wgmma_probe_watch;

static void watch_wgmma_probe(void *user, int32_t kind, const char *message)
{
    wgmma_probe_watch *w = user;
    if (!message) return;
    if (kind == FACL_LOG_PROBE && strstr(message, "backward")) {
        w->probe_logs++;
        w->passed += strstr(message, "passed") != NULL;
    }
    if ((kind == FACL_LOG_BUILD_START || kind == FACL_LOG_CACHE_HIT) && strstr(message, "attn_bwd_wgmma [")) {
        const int atomic = strstr(message, "-DDQ_ATOMIC=1") != NULL;
        w->wgmma[0][atomic] += strstr(message, "-DHEAD_DIM=72 ") != NULL;
        w->wgmma[1][atomic] += strstr(message, "-DHEAD_DIM=128 ") != NULL;
    }
}

/* Where the Hopper backward is the default (FACL_BWD_WGMMA_PROBED, as on an sm_90 context
 * whose nvidia-mma probe passed), the first backward call probes attn_bwd_wgmma too, at
 * the probe's head dims up to 128, before any call runs it, and with the atomic-dq opt-in
 * its DQ_ATOMIC variant as well; here through the emulation. */
static void test_bwd_probe_wgmma(void **state)
{
    (void)state;
    wgmma_probe_watch w;
    memset(&w, 0, sizeof w);
    facl_context_config config = FACL_CONTEXT_CONFIG_INIT;
    config.kernel_path = "mma-emulated";
    config.log = watch_wgmma_probe;
    config.log_user = &w;
    facl_context *ctx = NULL;
    if (facl_context_create_with_config(NULL, &config, &ctx) != FACL_SUCCESS)
        fail_msg("facl_context_create_with_config: %s", facl_last_error());
    ctx->profile.bwd_wgmma = FACL_BWD_WGMMA_PROBED;
    ctx->profile.bwd_dq_atomic = 1; /* as FACL_BWD_DQ_ATOMIC=1 at creation */
    ctx->bwd_probe = FACL_BWD_PROBE_NOT_RUN;
    bwd_small b;
    bwd_small_init(&b, ctx, facl_context_cl_context(ctx));
    if (bwd_small_run(ctx, &b) != FACL_SUCCESS) fail_msg("facl_bwd: %s", facl_last_error());
    assert_int_equal(w.probe_logs, 1);
    assert_int_equal(w.passed, 1);
    assert_int_equal(ctx->bwd_probe, FACL_BWD_PROBE_PASSED);
    for (int d = 0; d < 2; ++d)
        for (int atomic = 0; atomic < 2; ++atomic)
            if (w.wgmma[d][atomic] != 1)
                fail_msg("the probe built attn_bwd_wgmma with DQ_ATOMIC=%d %d times at d = %d, expected once",
                         atomic, w.wgmma[d][atomic], d ? 128 : 72);
    bwd_small_check_written(ctx, &b);
    bwd_small_free(&b);
    facl_context_free(ctx);
}

/* FACL_BWD_DQ_ATOMIC: unset, attn_bwd_wgmma's atomic-dq variant where it pays and
 * attn_bwd_mma's nowhere; 1, both everywhere deterministic = 0 allows; 0, neither. */
static void test_bwd_dq_atomic_env(void **state)
{
    (void)state;
    static const char *const values[3] = {NULL, "1", "0"};
    static const int mma[3] = {0, 1, 0}, wgmma[3] = {1, 1, 0};
    for (int i = 0; i < 3; ++i) {
        if (values[i]) setenv("FACL_BWD_DQ_ATOMIC", values[i], 1);
        facl_context *ctx = NULL;
        const facl_status st = facl_context_create(NULL, &ctx);
        unsetenv("FACL_BWD_DQ_ATOMIC");
        if (st != FACL_SUCCESS) fail_msg("facl_context_create: %s", facl_last_error());
        assert_int_equal(ctx->profile.bwd_dq_atomic, mma[i]);
        assert_int_equal(ctx->profile.bwd_wgmma_dq_atomic, wgmma[i]);
        facl_context_free(ctx);
    }
}

int run_config_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_cache_off_and_log),
        cmocka_unit_test(test_config_relative_cache_dir),
        cmocka_unit_test(test_config_cache_env_overrides),
        cmocka_unit_test(test_config_kernel_path),
        cmocka_unit_test(test_config_cache_kernel_env),
        cmocka_unit_test(test_fwd_wgmma_env),
        cmocka_unit_test(test_bwd_wgmma_env),
        cmocka_unit_test(test_bwd_dq_atomic_env),
        cmocka_unit_test(test_default_path_reason),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_bwd_probe_first_call),
        cmocka_unit_test(test_bwd_probe_wgmma),
        cmocka_unit_test(test_bwd_mma_shape_env),
    };
    return cmocka_run_group_tests_name("api: configuration and probe", tests, NULL, NULL);
}
