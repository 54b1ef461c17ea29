/* Growable structs (struct_size).
 * An older (smaller) struct is read only up to its struct_size: the buffers here end
 * exactly there (ASan sees any over-read) or continue with garbage that would change the
 * result or crash if read. A newer (larger) one is accepted when its unknown tail is zero
 * and refused otherwise. Output structs are never written past their struct_size. */
#define _XOPEN_SOURCE 700
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_api.h"

#define GARBAGE 0xA5
#define GUARD 0x5A

/* A copy of the first `size` bytes of `full` with struct_size = size, in a buffer of
 * `alloc` bytes whose remainder is `fill`. */
static void *truncated(const void *full, size_t full_size, uint32_t size, size_t alloc, int fill)
{
    unsigned char *p = malloc(alloc);
    assert_non_null(p);
    memset(p, fill, alloc);
    memcpy(p, full, size < full_size ? size : full_size);
    memcpy(p, &size, sizeof size);
    return p;
}

/* ------------------------------------------------------------------ facl_attn_options */

/* Every option that changes the numbers set to a non-default value. */
static facl_attn_options full_options(void)
{
    facl_attn_options o;
    memset(&o, 0, sizeof o); /* padding too */
    const facl_attn_options init = FACL_ATTN_OPTIONS_INIT;
    o = init;
    o.softmax_scale = 0.3f;
    o.causal = 1;
    o.mask_align = FACL_ALIGN_TOP_LEFT;
    o.window_left = 3;
    o.window_right = 0; /* what causal means (another value with causal is refused) */
    o.softcap = 5.0f;
    return o;
}

#define HAS_FIELD(size, type, field) (offsetof(type, field) + sizeof(((type *)0)->field) <= (size))

/* What the library must compute for the first `size` bytes of full_options(). */
static tiny_expect expect_for(uint32_t size)
{
    const facl_attn_options o = full_options();
    tiny_expect e = TINY_EXPECT_DEFAULT;
    if (HAS_FIELD(size, facl_attn_options, softmax_scale)) e.scale = o.softmax_scale;
    if (HAS_FIELD(size, facl_attn_options, causal)) e.causal = o.causal;
    if (HAS_FIELD(size, facl_attn_options, mask_align)) e.top_left = o.mask_align == FACL_ALIGN_TOP_LEFT;
    if (HAS_FIELD(size, facl_attn_options, window_left)) e.window_left = o.window_left;
    if (HAS_FIELD(size, facl_attn_options, window_right)) e.window_right = o.window_right;
    if (HAS_FIELD(size, facl_attn_options, softcap)) e.softcap = o.softcap;
    return e;
}

/* The sizeof of every older version facl_attn_options can have had: the struct cut after
 * one of its fields, with the tail padding its alignment then gives (4 while it holds only
 * 4-byte fields, 8 from its first 8-byte field on). */
#define OPT_OFF(f) offsetof(facl_attn_options, f)
#define OPT_END(f) (OPT_OFF(f) + sizeof(((facl_attn_options *)0)->f))
#define MIN2(a, b) ((a) < (b) ? (a) : (b))
#define FIRST_8_BYTE_FIELD \
    MIN2(MIN2(OPT_OFF(alibi_slopes), OPT_OFF(dropout_seed)), \
         MIN2(OPT_OFF(dropout_offset), OPT_OFF(attn_probs)))
#define OLDER(f) \
    ((uint32_t)(OPT_OFF(f) < FIRST_8_BYTE_FIELD ? OPT_END(f) : (OPT_END(f) + 7u) / 8u * 8u))
static const uint32_t k_older_options[] = {
    OLDER(softmax_scale), OLDER(causal),       OLDER(mask_align),     OLDER(window_left),
    OLDER(window_right),  OLDER(softcap),      OLDER(dropout_p),      OLDER(alibi_slopes),
    OLDER(dropout_seed),  OLDER(dropout_offset), OLDER(attn_probs), OLDER(trust_cu_seqlens),
    OLDER(seqused_k)};
/* Sizes no version has: below the first field, not a multiple of 4, inside a field. */
static const uint32_t k_invalid_options[] = {0, 4, 10, 13, OPT_OFF(alibi_slopes) + 4,
                                             OPT_OFF(dropout_seed) + 4, OPT_OFF(block_table) + 4};

/* The sizes of this header's struct: a test that fails here was written for another
 * version and must be extended with the new field's older size above. */
_Static_assert(sizeof(facl_attn_options) == 88, "facl_attn_options grew: add its older size");
_Static_assert(OPT_END(seqused_k) == 80, "the 80-byte facl_attn_options ended at seqused_k");

/* Older sizes: the fields present are honoured, the others take their defaults, and no
 * byte past struct_size is read. */
static void test_options_older_sizes(void **state)
{
    (void)state;
    facl_context *ctx = api_context();
    cl_command_queue queue = facl_context_queue(ctx);
    tiny t;
    tiny_init(&t, facl_context_cl_context(ctx), 31);
    const facl_attn_options full = full_options();
    for (size_t i = 0; i < sizeof k_older_options / sizeof k_older_options[0]; ++i) {
        const uint32_t size = k_older_options[i];
        const tiny_expect e = expect_for(size);
        for (int garbage = 0; garbage < 2; ++garbage) {
            /* exact: the allocation ends at struct_size; garbage: the rest of a full-size
             * struct holds 0xA5 bytes (a negative softcap, dropout_p, trust_cu_seqlens and
             * wild pointers if they were read). */
            void *o = garbage ? truncated(&full, sizeof full, size, sizeof full, GARBAGE)
                              : truncated(&full, sizeof full, size, size, 0);
            tiny_poison(&t, queue);
            const facl_status st = tiny_run_opts(ctx, &t, o);
            free(o);
            if (st != FACL_SUCCESS)
                fail_msg("opts with struct_size %u (%s): %s", size, garbage ? "garbage after" : "exact",
                         facl_last_error());
            tiny_check(&t, queue, &e);
        }
    }
    tiny_free(&t);
    facl_context_free(ctx);
}

/* Newer sizes: a zero tail is accepted, a non-zero one refused; sizes that no version has
 * are invalid. Refused calls write nothing. */
static void test_options_newer_and_invalid_sizes(void **state)
{
    (void)state;
    facl_context *ctx = api_context();
    cl_command_queue queue = facl_context_queue(ctx);
    tiny t;
    tiny_init(&t, facl_context_cl_context(ctx), 32);
    const facl_attn_options full = full_options();
    const tiny_expect e = expect_for(sizeof full);
    const uint32_t bigger[2] = {(uint32_t)sizeof full + 8, (uint32_t)sizeof full + 64};
    for (int i = 0; i < 2; ++i) {
        unsigned char *o = truncated(&full, sizeof full, bigger[i], bigger[i], 0);
        tiny_poison(&t, queue);
        if (tiny_run_opts(ctx, &t, o) != FACL_SUCCESS)
            fail_msg("opts with struct_size %u and a zero tail: %s", bigger[i], facl_last_error());
        tiny_check(&t, queue, &e);
        const size_t where[2] = {sizeof full, bigger[i] - 1u};
        for (int w = 0; w < 2; ++w) {
            o[where[w]] = 1;
            tiny_poison(&t, queue);
            assert_int_equal(tiny_run_opts(ctx, &t, o), FACL_ERROR_UNSUPPORTED);
            assert_error_names("opts");
            assert_true(tiny_still_poisoned(&t, queue));
            o[where[w]] = 0;
        }
        free(o);
    }
    const size_t n_invalid = sizeof k_invalid_options / sizeof k_invalid_options[0];
    for (size_t i = 0; i < n_invalid; ++i) {
        const uint32_t *invalid = k_invalid_options;
        void *o = truncated(&full, sizeof full, invalid[i], sizeof full + 8, 0);
        tiny_poison(&t, queue);
        const facl_status st = tiny_run_opts(ctx, &t, o);
        free(o);
        if (st != FACL_ERROR_INVALID_VALUE)
            fail_msg("opts with struct_size %u: %s (%s), expected FACL_ERROR_INVALID_VALUE",
                     invalid[i], facl_status_string(st), facl_last_error());
        assert_error_names("opts");
        assert_true(tiny_still_poisoned(&t, queue));
    }
    tiny_free(&t);
    facl_context_free(ctx);
}

/* ------------------------------------------------------------------ facl_context_config */

static int g_log_calls;
static void *g_log_user;

static void count_log(void *user, int32_t kind, const char *message)
{
    (void)kind;
    (void)message;
    g_log_calls++;
    g_log_user = user;
}

static void test_config_sizes(void **state)
{
    (void)state;
    facl_context_config full = FACL_CONTEXT_CONFIG_INIT;
    full.cache_dir = g_env_cache_dir[0] ? g_env_cache_dir : "";
    full.cache_max_bytes = 1u << 30;
    full.kernel_path = "portable-gpu";
    full.log = count_log;
    full.log_user = &g_log_calls;
    const uint32_t sizes[5] = {8, (uint32_t)offsetof(facl_context_config, kernel_path),
                               (uint32_t)offsetof(facl_context_config, log),
                               (uint32_t)offsetof(facl_context_config, log_user),
                               (uint32_t)sizeof full};
    for (int i = 0; i < 5; ++i) {
        const uint32_t size = sizes[i];
        assert_int_equal(size % 8, 0);
        for (int garbage = 0; garbage < 2; ++garbage) {
            void *c = garbage ? truncated(&full, sizeof full, size, sizeof full, GARBAGE)
                              : truncated(&full, sizeof full, size, size, 0);
            g_log_calls = 0;
            g_log_user = &g_log_user;
            facl_context *ctx = NULL;
            const facl_status st =
                facl_context_create_with_config(NULL, (const facl_context_config *)c, &ctx);
            free(c);
            if (st != FACL_SUCCESS)
                fail_msg("config with struct_size %u (%s): %s", size,
                         garbage ? "garbage after" : "exact", facl_last_error());
            const facl_device_info info = api_info(ctx);
            facl_context_free(ctx);
            const int has_path = HAS_FIELD(size, facl_context_config, kernel_path);
            const int has_log = HAS_FIELD(size, facl_context_config, log);
            const int has_user = HAS_FIELD(size, facl_context_config, log_user);
            if (has_path) assert_string_equal(info.kernel_path, "portable-gpu");
            else if (strstr(info.kernel_path_reason, "config"))
                fail_msg("struct_size %u has no kernel_path, yet: %s", size, info.kernel_path_reason);
            if (has_log) {
                assert_true(g_log_calls >= 1);
                assert_ptr_equal(g_log_user, has_user ? (void *)&g_log_calls : NULL);
            } else {
                assert_int_equal(g_log_calls, 0);
            }
        }
    }
    const uint32_t bigger = (uint32_t)sizeof full + 16;
    unsigned char *c = truncated(&full, sizeof full, bigger, bigger, 0);
    facl_context *ctx = NULL;
    if (facl_context_create_with_config(NULL, (const facl_context_config *)c, &ctx) != FACL_SUCCESS)
        fail_msg("config with struct_size %u and a zero tail: %s", bigger, facl_last_error());
    facl_context_free(ctx);
    c[bigger - 1] = 1;
    ctx = (facl_context *)&ctx;
    assert_int_equal(facl_context_create_with_config(NULL, (const facl_context_config *)c, &ctx),
                     FACL_ERROR_UNSUPPORTED);
    assert_error_names("config");
    assert_null(ctx);
    cl_device_id dev;
    assert_int_equal(facl_select_device(NULL, &dev), FACL_SUCCESS);
    cl_int err;
    cl_context cl = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    ctx = (facl_context *)&ctx;
    assert_int_equal(
        facl_context_wrap_with_config(cl, dev, (const facl_context_config *)c, &ctx),
        FACL_ERROR_UNSUPPORTED);
    assert_error_names("config");
    assert_null(ctx);
    free(c);
    /* Sizes no version has: below the first field, not a multiple of 4, inside a field. */
    const uint32_t invalid[6] = {0, 4, 6, offsetof(facl_context_config, cache_dir) + 4,
                                 offsetof(facl_context_config, cache_max_bytes) + 4,
                                 offsetof(facl_context_config, log_user) + 4};
    for (int i = 0; i < 6; ++i) {
        c = truncated(&full, sizeof full, invalid[i], sizeof full + 8, 0);
        ctx = (facl_context *)&ctx;
        assert_int_equal(facl_context_create_with_config(NULL, (const facl_context_config *)c, &ctx),
                         FACL_ERROR_INVALID_VALUE);
        assert_error_names("config");
        assert_null(ctx);
        ctx = (facl_context *)&ctx;
        assert_int_equal(
            facl_context_wrap_with_config(cl, dev, (const facl_context_config *)c, &ctx),
            FACL_ERROR_INVALID_VALUE);
        assert_error_names("config");
        assert_null(ctx);
        free(c);
    }
    clReleaseContext(cl);
}

/* ------------------------------------------------------------------ output structs */

/* facl_device_info / facl_cache_stats into a caller struct of `size` bytes followed by
 * guard bytes: the known fields equal a full query's, struct_size stays the caller's,
 * and nothing past it changes. */
typedef facl_status (*query_fn)(const facl_context *ctx, void *out);

static facl_status query_info(const facl_context *ctx, void *out)
{
    return facl_context_device_info(ctx, out);
}

static facl_status query_stats(const facl_context *ctx, void *out)
{
    return facl_context_cache_stats(ctx, out);
}

static void check_output_struct(const facl_context *ctx, query_fn query, const char *name,
                                const void *full, size_t full_size, uint32_t size)
{
    const size_t guard = 64, alloc = size + guard;
    unsigned char *buf = malloc(alloc);
    assert_non_null(buf);
    memset(buf, GUARD, alloc);
    memcpy(buf, &size, sizeof size);
    const facl_status st = query(ctx, buf);
    if (st != FACL_SUCCESS) fail_msg("%s with struct_size %u: %s", name, size, facl_last_error());
    uint32_t got_size;
    memcpy(&got_size, buf, sizeof got_size);
    assert_int_equal(got_size, size);
    const size_t known = size < full_size ? size : full_size;
    if (memcmp(buf + sizeof size, (const unsigned char *)full + sizeof size, known - sizeof size))
        fail_msg("%s with struct_size %u: the fields differ from a full-size query", name, size);
    for (size_t i = size; i < alloc; ++i)
        if (buf[i] != GUARD) fail_msg("%s with struct_size %u: byte %zu written", name, size, i);
    free(buf);
}

static void check_invalid_output_size(const facl_context *ctx, query_fn query, const char *name,
                                      uint32_t size)
{
    unsigned char buf[2048];
    memset(buf, GUARD, sizeof buf);
    memcpy(buf, &size, sizeof size);
    assert_int_equal(query(ctx, buf), FACL_ERROR_INVALID_VALUE);
    assert_error_names(name);
    for (size_t i = sizeof size; i < sizeof buf; ++i)
        if (buf[i] != GUARD) fail_msg("%s with invalid struct_size %u: byte %zu written", name, size, i);
}

static void test_output_struct_sizes(void **state)
{
    (void)state;
    facl_context *ctx = api_context();
    const facl_device_info info = api_info(ctx);
    assert_int_equal(info.struct_size, sizeof info);
    const uint32_t info_sizes[5] = {8, (uint32_t)offsetof(facl_device_info, kernel_path),
                                    (uint32_t)offsetof(facl_device_info, cache_dir),
                                    (uint32_t)offsetof(facl_device_info, cache_note),
                                    (uint32_t)sizeof info + 16};
    for (int i = 0; i < 5; ++i) {
        assert_int_equal(info_sizes[i] % 8, 0);
        check_output_struct(ctx, query_info, "info", &info, sizeof info, info_sizes[i]);
    }
    const facl_cache_stats stats = api_stats(ctx);
    assert_int_equal(stats.struct_size, sizeof stats);
    const uint32_t stats_sizes[4] = {8, (uint32_t)offsetof(facl_cache_stats, source_builds),
                                     (uint32_t)offsetof(facl_cache_stats, disk_writes),
                                     (uint32_t)sizeof stats + 8};
    for (int i = 0; i < 4; ++i)
        check_output_struct(ctx, query_stats, "stats", &stats, sizeof stats, stats_sizes[i]);
    const uint32_t invalid[4] = {0, 4, 6, 13};
    for (int i = 0; i < 4; ++i) {
        check_invalid_output_size(ctx, query_info, "info", invalid[i]);
        check_invalid_output_size(ctx, query_stats, "stats", invalid[i]);
    }
    assert_int_equal(facl_context_device_info(ctx, NULL), FACL_ERROR_NULL_ARGUMENT);
    assert_int_equal(facl_context_cache_stats(ctx, NULL), FACL_ERROR_NULL_ARGUMENT);
    facl_context_free(ctx);
}

/* ------------------------------------------------------------------ facl_prepare_fwd */

/* An older facl_prepare_desc (without opts): alone, and as an array whose stride is the
 * caller's struct_size. */
static void test_prepare_desc_sizes(void **state)
{
    (void)state;
    facl_context *ctx = api_context();
    const facl_prepare_desc full = tiny_desc(NULL);
    const uint32_t old = (uint32_t)offsetof(facl_prepare_desc, opts);
    assert_int_equal(old % 8, 0);
    for (int garbage = 0; garbage < 2; ++garbage) {
        void *d = garbage ? truncated(&full, sizeof full, old, sizeof full, GARBAGE)
                          : truncated(&full, sizeof full, old, old, 0);
        const facl_status st = facl_prepare_fwd(ctx, d, 1);
        free(d);
        if (st != FACL_SUCCESS)
            fail_msg("a desc of struct_size %u (%s): %s", old, garbage ? "garbage after" : "exact",
                     facl_last_error());
    }
    /* Two old-sized descs back to back: the second starts at byte `old`, not at
     * sizeof(facl_prepare_desc). */
    for (int garbage = 0; garbage < 2; ++garbage) {
        const size_t alloc = 2 * (size_t)old + (garbage ? 64 : 0);
        unsigned char *arr = malloc(alloc);
        assert_non_null(arr);
        memset(arr, GARBAGE, alloc);
        for (int i = 0; i < 2; ++i) {
            memcpy(arr + (size_t)i * old, &full, old);
            memcpy(arr + (size_t)i * old, &old, sizeof old);
        }
        const facl_status st = facl_prepare_fwd(ctx, (const facl_prepare_desc *)arr, 2);
        free(arr);
        if (st != FACL_SUCCESS) {
            print_error("two descs of struct_size %u (%s): %s\n", old,
                        garbage ? "garbage after" : "exact", facl_last_error());
            facl_context_free(ctx); /* no leak report on top of the failure */
            fail();
        }
    }
    /* Newer: zero tail accepted, non-zero refused; invalid sizes. */
    const uint32_t bigger = (uint32_t)sizeof full + 8;
    unsigned char *d = truncated(&full, sizeof full, bigger, bigger, 0);
    if (facl_prepare_fwd(ctx, (const facl_prepare_desc *)d, 1) != FACL_SUCCESS)
        fail_msg("a desc of struct_size %u with a zero tail: %s", bigger, facl_last_error());
    d[bigger - 1] = 1;
    assert_int_equal(facl_prepare_fwd(ctx, (const facl_prepare_desc *)d, 1), FACL_ERROR_UNSUPPORTED);
    assert_error_names("descs");
    free(d);
    const uint32_t invalid[4] = {0, 4, 6, offsetof(facl_prepare_desc, opts) + 4};
    for (int i = 0; i < 4; ++i) {
        void *bad = truncated(&full, sizeof full, invalid[i], sizeof full + 8, 0);
        assert_int_equal(facl_prepare_fwd(ctx, bad, 1), FACL_ERROR_INVALID_VALUE);
        assert_error_names("descs");
        free(bad);
    }
    /* The opts a desc points to follow the same rules. */
    const facl_attn_options opts = full_options();
    void *old_opts = truncated(&opts, sizeof opts, 16, 16, 0);
    facl_prepare_desc with_opts = tiny_desc(old_opts);
    if (facl_prepare_fwd(ctx, &with_opts, 1) != FACL_SUCCESS)
        fail_msg("a desc with opts of struct_size 16: %s", facl_last_error());
    free(old_opts);
    void *bad_opts =
        truncated(&opts, sizeof opts, offsetof(facl_attn_options, alibi_slopes) + 4, sizeof opts, 0);
    with_opts = tiny_desc(bad_opts);
    assert_int_equal(facl_prepare_fwd(ctx, &with_opts, 1), FACL_ERROR_INVALID_VALUE);
    assert_error_names("opts");
    free(bad_opts);
    facl_context_free(ctx);
}

/* ------------------------------------------------------------------ facl_kvcache_args */

_Static_assert(sizeof(facl_kvcache_args) == 112, "facl_kvcache_args grew: test its older size");
/* 0.2's facl_kvcache_args ended after cu_seqlens_k_new (104 bytes); 0.3 added workspace. */
#define KVCACHE_ARGS_0_2_SIZE 104u
_Static_assert(offsetof(facl_kvcache_args, cu_seqlens_k_new) + sizeof(const facl_tensor *) ==
                   KVCACHE_ARGS_0_2_SIZE,
               "0.2's layout moved");

/* The tiny problem as a KV-cache call: k and v are the cache (batch_cache = batch,
 * seqlen_cache = T_SK), every sequence holding all T_SK keys, so it computes what
 * facl_fwd computes on the tiny problem. */
static facl_status tiny_kvcache(facl_context *ctx, tiny *t, const void *cache)
{
    return facl_fwd_kvcache(ctx, NULL, &t->tq, &t->tk, &t->tv,
                            (const facl_kvcache_args *)cache, &t->tout, &t->tlse, NULL, 0, NULL,
                            NULL);
}

static void expect_kvcache_success(facl_status st, const char *what, uint32_t size)
{
    if (st != FACL_SUCCESS)
        fail_msg("%s (struct_size %u): %s: %s", what, size, facl_status_string(st),
                 facl_last_error());
}

/* cache NULL means FACL_KVCACHE_ARGS_INIT: cache_seqlens_value 0, so every row sees no
 * key (out 0, lse +inf); a larger struct with a zero tail is read as this one; a
 * non-zero tail is refused; smaller sizes (no older version exists) and sizes no version
 * has are invalid. Refused calls write nothing. */
static void test_kvcache_args_sizes(void **state)
{
    (void)state;
    facl_context *ctx = api_context();
    cl_command_queue queue = facl_context_queue(ctx);
    tiny t;
    tiny_init(&t, facl_context_cl_context(ctx), 33);
    facl_kvcache_args full;
    memset(&full, 0, sizeof full);
    const facl_kvcache_args init = FACL_KVCACHE_ARGS_INIT;
    full = init;
    full.cache_seqlens_value = T_SK;

    tiny_poison(&t, queue);
    expect_kvcache_success(tiny_kvcache(ctx, &t, NULL), "cache NULL", 0);
    {
        float *out = malloc(t.nq * sizeof(float)), *lse = malloc(t.nlse * sizeof(float));
        assert_true(out && lse);
        assert_int_equal(clEnqueueReadBuffer(queue, t.bout, CL_TRUE, 0, t.nq * sizeof(float), out,
                                             0, NULL, NULL),
                         CL_SUCCESS);
        assert_int_equal(clEnqueueReadBuffer(queue, t.blse, CL_TRUE, 0, t.nlse * sizeof(float),
                                             lse, 0, NULL, NULL),
                         CL_SUCCESS);
        for (size_t i = 0; i < t.nq; ++i)
            if (out[i] != 0.0f) fail_msg("cache NULL (no keys): out[%zu] = %g, not 0", i, out[i]);
        for (size_t i = 0; i < t.nlse; ++i)
            if (!(isinf(lse[i]) && lse[i] > 0))
                fail_msg("cache NULL (no keys): lse[%zu] = %g, not +inf", i, lse[i]);
        free(out);
        free(lse);
    }

    const tiny_expect e = TINY_EXPECT_DEFAULT;
    /* 0.2's size, this one, and newer ones with a zero tail */
    const uint32_t sizes[4] = {KVCACHE_ARGS_0_2_SIZE, (uint32_t)sizeof full,
                               (uint32_t)sizeof full + 8, (uint32_t)sizeof full + 64};
    for (int i = 0; i < 4; ++i) {
        /* an older size gets garbage where the newer fields would be: never read */
        unsigned char *c = sizes[i] < sizeof full
                               ? truncated(&full, sizeof full, sizes[i], sizeof full, GARBAGE)
                               : truncated(&full, sizeof full, sizes[i], sizes[i], 0);
        tiny_poison(&t, queue);
        expect_kvcache_success(tiny_kvcache(ctx, &t, c), "cache with a zero tail", sizes[i]);
        tiny_check(&t, queue, &e);
        if (sizes[i] > sizeof full) {
            const size_t where[2] = {sizeof full, sizes[i] - 1u};
            for (int w = 0; w < 2; ++w) {
                c[where[w]] = 1;
                tiny_poison(&t, queue);
                assert_int_equal(tiny_kvcache(ctx, &t, c), FACL_ERROR_UNSUPPORTED);
                if (strncmp(facl_last_error(), "cache: sets fields beyond", 25) != 0)
                    fail_msg("cache with a non-zero tail: '%s'", facl_last_error());
                assert_true(tiny_still_poisoned(&t, queue));
                c[where[w]] = 0;
            }
        }
        free(c);
    }
    /* Below the first field, not a multiple of 4, inside a field, and the ends of fields
     * (older versions that never existed). */
    const uint32_t invalid[6] = {0, 4, 6, (uint32_t)offsetof(facl_kvcache_args, cache_seqlens) + 4,
                                 (uint32_t)offsetof(facl_kvcache_args, cache_seqlens),
                                 (uint32_t)offsetof(facl_kvcache_args, cu_seqlens_k_new) + 4};
    for (int i = 0; i < 6; ++i) {
        void *c = truncated(&full, sizeof full, invalid[i], sizeof full + 8, 0);
        tiny_poison(&t, queue);
        const facl_status st = tiny_kvcache(ctx, &t, c);
        free(c);
        if (st != FACL_ERROR_INVALID_VALUE)
            fail_msg("cache with struct_size %u: %s (%s), expected FACL_ERROR_INVALID_VALUE",
                     invalid[i], facl_status_string(st), facl_last_error());
        if (strncmp(facl_last_error(), "cache->struct_size:", 19) != 0)
            fail_msg("cache with struct_size %u: '%s'", invalid[i], facl_last_error());
        assert_true(tiny_still_poisoned(&t, queue));
    }
    tiny_free(&t);
    facl_context_free(ctx);
}

int run_struct_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_older_sizes),
        cmocka_unit_test(test_options_newer_and_invalid_sizes),
        cmocka_unit_test(test_config_sizes),
        cmocka_unit_test(test_output_struct_sizes),
        cmocka_unit_test(test_prepare_desc_sizes),
        cmocka_unit_test(test_kvcache_args_sizes),
    };
    return cmocka_run_group_tests_name("api: structs and prepare", tests, NULL, NULL);
}
