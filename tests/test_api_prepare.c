/* facl_prepare_fwd: what it prepares is not compiled or loaded again by the first call,
 * and its arguments are validated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_api.h"

/* After facl_prepare_fwd, the first call of the prepared variants compiles and loads
 * nothing: only a memory hit. A variant that was not prepared does compile or load. */
static void test_prepare_then_call(void **state)
{
    (void)state;
    facl_context *ctx = api_context();
    cl_command_queue queue = facl_context_queue(ctx);
    tiny t;
    tiny_init(&t, facl_context_cl_context(ctx), 33);
    facl_attn_options softcap = FACL_ATTN_OPTIONS_INIT;
    softcap.softcap = 5.0f;
    facl_prepare_desc descs[2] = {tiny_desc(&softcap), tiny_desc(NULL)};
    descs[1].varlen = 1;
    const facl_cache_stats s0 = api_stats(ctx);
    if (facl_prepare_fwd(ctx, descs, 2) != FACL_SUCCESS)
        fail_msg("facl_prepare_fwd: %s", facl_last_error());
    const facl_cache_stats s1 = api_stats(ctx);
    assert_int_equal(s1.source_builds + s1.disk_hits, s0.source_builds + s0.disk_hits + 2);

    /* Prepared dense variant with softcap. */
    facl_attn_options o = FACL_ATTN_OPTIONS_INIT;
    o.softcap = 7.5f; /* another value: the same program */
    tiny_poison(&t, queue);
    if (tiny_run_opts(ctx, &t, &o) != FACL_SUCCESS) fail_msg("facl_fwd: %s", facl_last_error());
    tiny_expect e = TINY_EXPECT_DEFAULT;
    e.softcap = 7.5f;
    tiny_check(&t, queue, &e);
    const facl_cache_stats s2 = api_stats(ctx);
    assert_int_equal(s2.source_builds, s1.source_builds);
    assert_int_equal(s2.disk_hits, s1.disk_hits);
    assert_int_equal(s2.memory_hits, s1.memory_hits + 1);

    /* Prepared varlen variant. */
    cl_int err;
    const int32_t cu_host[2 * (T_B + 1)] = {0, T_SQ, 2 * T_SQ, 0, T_SK, 2 * T_SK};
    cl_mem cu = clCreateBuffer(facl_context_cl_context(ctx), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                               sizeof cu_host, (void *)cu_host, &err);
    assert_int_equal(err, CL_SUCCESS);
    const int64_t qs[3] = {T_B * T_SQ, T_HQ, T_D}, ks[3] = {T_B * T_SK, T_HKV, T_D},
                  ls[2] = {T_HQ, T_B * T_SQ}, cs[1] = {T_B + 1};
    const facl_tensor q = facl_tensor_contiguous(t.bq, FACL_DTYPE_F32, 3, qs);
    const facl_tensor k = facl_tensor_contiguous(t.bk, FACL_DTYPE_F32, 3, ks);
    const facl_tensor v = facl_tensor_contiguous(t.bv, FACL_DTYPE_F32, 3, ks);
    const facl_tensor out = facl_tensor_contiguous(t.bout, FACL_DTYPE_F32, 3, qs);
    const facl_tensor lse = facl_tensor_contiguous(t.blse, FACL_DTYPE_F32, 2, ls);
    const facl_tensor cu_q = facl_tensor_contiguous(cu, FACL_DTYPE_I32, 1, cs);
    facl_tensor cu_k = cu_q;
    cu_k.offset = T_B + 1;
    tiny_poison(&t, queue);
    if (facl_varlen_fwd(ctx, NULL, &q, &k, &v, &cu_q, &cu_k, T_SQ, T_SK, &out, &lse, NULL, 0, NULL,
                        NULL) != FACL_SUCCESS)
        fail_msg("facl_varlen_fwd: %s", facl_last_error());
    e = (tiny_expect)TINY_EXPECT_DEFAULT;
    e.varlen_lse = 1;
    tiny_check(&t, queue, &e);
    clReleaseMemObject(cu);
    const facl_cache_stats s3 = api_stats(ctx);
    assert_int_equal(s3.source_builds, s2.source_builds);
    assert_int_equal(s3.disk_hits, s2.disk_hits);
    assert_int_equal(s3.memory_hits, s2.memory_hits + 1);

    /* Preparing again finds everything in memory. */
    assert_int_equal(facl_prepare_fwd(ctx, descs, 2), FACL_SUCCESS);
    const facl_cache_stats s4 = api_stats(ctx);
    assert_int_equal(s4.source_builds + s4.disk_hits, s3.source_builds + s3.disk_hits);
    assert_int_equal(s4.memory_hits, s3.memory_hits + 2);

    /* A variant not prepared (dense, no softcap) is compiled or loaded by its call: the
     * counters above would have seen it. */
    tiny_poison(&t, queue);
    if (tiny_run_opts(ctx, &t, NULL) != FACL_SUCCESS) fail_msg("facl_fwd: %s", facl_last_error());
    e = (tiny_expect)TINY_EXPECT_DEFAULT;
    tiny_check(&t, queue, &e);
    const facl_cache_stats s5 = api_stats(ctx);
    assert_int_equal(s5.source_builds + s5.disk_hits, s4.source_builds + s4.disk_hits + 1);
    tiny_free(&t);
    facl_context_free(ctx);
}

/* An fp16 head-dim-128 dense description builds two programs on a context whose Hopper
 * forward passed its probe (the kernel long sequences take, and attn_fwd_mma), one
 * anywhere else; f32 one everywhere. */
static void test_prepare_long_sequence_kernel(void **state)
{
    (void)state;
    facl_context *ctx = api_context();
    const int hopper = strstr(api_info(ctx).kernel_path_reason, "Hopper forward with the tensor copy engine") != NULL;
    facl_prepare_desc d = FACL_PREPARE_DESC_INIT;
    d.head_dim = 128;
    const facl_cache_stats s0 = api_stats(ctx);
    if (facl_prepare_fwd(ctx, &d, 1) != FACL_SUCCESS) fail_msg("facl_prepare_fwd: %s", facl_last_error());
    const facl_cache_stats s1 = api_stats(ctx);
    assert_int_equal(s1.source_builds + s1.disk_hits, s0.source_builds + s0.disk_hits + (hopper ? 2 : 1));
    d.dtype = FACL_DTYPE_F32;
    if (facl_prepare_fwd(ctx, &d, 1) != FACL_SUCCESS) fail_msg("facl_prepare_fwd: %s", facl_last_error());
    const facl_cache_stats s2 = api_stats(ctx);
    assert_int_equal(s2.source_builds + s2.disk_hits, s1.source_builds + s1.disk_hits + 1);
    facl_context_free(ctx);
}

static void expect_prepare_error(facl_context *ctx, const facl_prepare_desc *descs, size_t count,
                                 facl_status expected, const char *name)
{
    const facl_status st = facl_prepare_fwd(ctx, descs, count);
    if (st != expected)
        fail_msg("facl_prepare_fwd (%s): %s (%s), expected %s", name, facl_status_string(st),
                 facl_last_error(), facl_status_string(expected));
    assert_error_names(name);
}

static void test_prepare_validation(void **state)
{
    (void)state;
    facl_context *ctx = api_context();
    const facl_prepare_desc good = tiny_desc(NULL);
    facl_prepare_desc d[2] = {good, good};
    assert_int_equal(facl_prepare_fwd(ctx, NULL, 0), FACL_SUCCESS);
    assert_int_equal(facl_prepare_fwd(ctx, d, 0), FACL_SUCCESS);
    expect_prepare_error(ctx, NULL, 1, FACL_ERROR_NULL_ARGUMENT, "descs");
    expect_prepare_error(NULL, d, 1, FACL_ERROR_NULL_ARGUMENT, "ctx");
    const int32_t dtypes[3] = {FACL_DTYPE_I32, 7, -1};
    for (int i = 0; i < 3; ++i) {
        d[1] = good;
        d[1].dtype = dtypes[i];
        expect_prepare_error(ctx, d, 2, FACL_ERROR_INVALID_DTYPE, "descs[1].dtype");
    }
    const int32_t dims[3] = {0, FACL_MAX_HEAD_DIM + 1, -64};
    for (int i = 0; i < 3; ++i) {
        d[1] = good;
        d[1].head_dim = dims[i];
        expect_prepare_error(ctx, d, 2, FACL_ERROR_INVALID_HEAD_DIM, "descs[1].head_dim");
    }
    d[1] = good;
    d[1].varlen = 2;
    expect_prepare_error(ctx, d, 2, FACL_ERROR_INVALID_VALUE, "descs[1].varlen");
    d[1] = good;
    d[1].unaligned_rows = -1;
    expect_prepare_error(ctx, d, 2, FACL_ERROR_INVALID_VALUE, "descs[1].unaligned_rows");
    facl_context_free(ctx);
}

int run_prepare_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prepare_then_call),
        cmocka_unit_test(test_prepare_long_sequence_kernel),
        cmocka_unit_test(test_prepare_validation),
    };
    return cmocka_run_group_tests_name("api: prepare", tests, NULL, NULL);
}
