/* Planning is a pure function of the problem and the device profile: checked here on
 * made-up devices, with no OpenCL device involved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "plan.h"

static facl_device_profile device(uint64_t local_mem, size_t max_wg)
{
    facl_device_profile p;
    memset(&p, 0, sizeof p);
    p.local_mem_reported = local_mem;
    p.local_mem_usable = local_mem;
    p.max_work_group_size = max_wg;
    return p;
}

static facl_fwd_problem problem(int head_dim, int seqlen_q)
{
    facl_fwd_problem p;
    memset(&p, 0, sizeof p);
    p.dtype = FACL_DTYPE_F16;
    p.head_dim = head_dim;
    p.seqlen_q = seqlen_q;
    p.seqlen_k = 100;
    p.batch = 1;
    p.heads_q = p.heads_kv = 1;
    return p;
}

/* The k and v tiles must fit in the local memory the device has, whatever the head dim. */
static void test_tiles_fit_local_memory(void **state)
{
    (void)state;
    const uint64_t sizes[4] = {4096, 16384, 48 * 1024, 4u << 20};
    for (int s = 0; s < 4; ++s) {
        facl_device_profile dev = device(sizes[s], 1024);
        for (int d = 1; d <= FACL_MAX_HEAD_DIM; d += 17) {
            facl_fwd_problem p = problem(d, 128);
            facl_fwd_plan plan;
            facl_plan_fwd_program(&p, &dev, &plan);
            assert_true(plan.block_n >= 1);
            if (plan.block_n > 1) assert_true(2u * plan.block_n * d * 4u <= sizes[s]);
            char expect[32];
            snprintf(expect, sizeof expect, "-DHEAD_DIM=%d ", d);
            assert_non_null(strstr(plan.options, expect));
        }
    }
}

static void test_features_select_macros(void **state)
{
    (void)state;
    facl_device_profile dev = device(48 * 1024, 1024);
    facl_fwd_problem p = problem(64, 128);
    facl_fwd_plan plan;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_non_null(strstr(plan.options, "-DHAS_SOFTCAP=0"));
    assert_non_null(strstr(plan.options, "-DHAS_DROPOUT=0"));
    assert_non_null(strstr(plan.options, "-DFACL_DTYPE=1"));
    p.softcap = 30.0f;
    p.dropout_p = 0.1f;
    p.varlen = 1;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_non_null(strstr(plan.options, "-DHAS_SOFTCAP=1"));
    assert_non_null(strstr(plan.options, "-DHAS_DROPOUT=1"));
    assert_non_null(strstr(plan.options, "-DIS_VARLEN=1"));
}

/* Work-group size never exceeds what the device or the built kernel allows. */
static void test_rows_within_limits(void **state)
{
    (void)state;
    const size_t device_limits[3] = {1, 32, 4096};
    const size_t kernel_limits[3] = {1, 48, 1024};
    for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b)
            for (int sq = 1; sq <= 300; sq += 37) {
                facl_device_profile dev = device(48 * 1024, device_limits[a]);
                facl_fwd_problem p = problem(64, sq);
                facl_fwd_plan plan;
                facl_plan_fwd_program(&p, &dev, &plan);
                size_t rows = facl_plan_fwd_group_size(&plan, &p, &dev, kernel_limits[b]);
                assert_true(rows >= 1);
                assert_true(rows <= device_limits[a]);
                assert_true(rows <= kernel_limits[b]);
            }
}

/* Wide heads split each row over lanes; groups hold whole rows and respect the limits. */
static void test_lanes_for_wide_heads(void **state)
{
    (void)state;
    const int dims[4] = {32, 64, 128, 256};
    const int expect_lanes[4] = {1, 1, 2, 4};
    for (int i = 0; i < 4; ++i) {
        facl_device_profile dev = device(48 * 1024, 1024);
        facl_fwd_problem p = problem(dims[i], 4096);
        facl_fwd_plan plan;
        facl_plan_fwd_program(&p, &dev, &plan);
        assert_int_equal(plan.lanes, expect_lanes[i]);
        const size_t limits[3] = {4, 96, 1024};
        for (int l = 0; l < 3; ++l) {
            size_t group = facl_plan_fwd_group_size(&plan, &p, &dev, limits[l]);
            assert_int_equal(group % (size_t)plan.lanes, 0);
            assert_true(group <= limits[l]);
            assert_true(group >= (size_t)plan.lanes);
        }
    }
}

/* CPUs get the rows-per-work-item kernel, one work-item per group. */
static void test_cpu_path(void **state)
{
    (void)state;
    facl_device_profile dev = device(4u << 20, 4096);
    dev.path = FACL_PATH_PORTABLE_CPU;
    facl_fwd_problem p = problem(128, 1000);
    facl_fwd_plan plan;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_rows");
    assert_true(plan.rows_per_item > 1);
    assert_non_null(strstr(plan.options, "-DROWS="));
    assert_int_equal(facl_plan_fwd_group_size(&plan, &p, &dev, 4096), 1);
    dev.path = FACL_PATH_PORTABLE_GPU;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd");
    assert_int_equal(plan.rows_per_item, 1);
}

/* The mma paths take fp16/bf16 up to head_dim 128 with 128-item groups, and fall back
 * to the portable GPU kernel for fp32 and wider heads; 16-byte loads only when every k
 * and v row starts on a multiple of 8 elements. */
static void test_mma_path(void **state)
{
    (void)state;
    facl_device_profile dev = device(48 * 1024, 1024);
    dev.path = FACL_PATH_NVIDIA_MMA;
    facl_fwd_problem p = problem(128, 1000);
    p.k.ss = p.v.ss = 128;
    facl_fwd_plan plan;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_mma");
    assert_int_equal(facl_plan_fwd_group_size(&plan, &p, &dev, 1024), 128);
    assert_int_equal(128 / plan.lanes, 64); /* rows per group, as the launch computes them */
    assert_non_null(strstr(plan.options, "-DVEC_LOADS=1"));
    assert_non_null(strstr(plan.options, "-DMMA_EMULATE=0"));
    p.v.offset = 4;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_non_null(strstr(plan.options, "-DVEC_LOADS=0"));
    p.dtype = FACL_DTYPE_BF16;
    dev.path = FACL_PATH_MMA_EMULATED;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_mma");
    assert_non_null(strstr(plan.options, "-DMMA_EMULATE=1"));
    p.head_dim = 64; /* two 16-row tiles per warp: 128 rows per group */
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_non_null(strstr(plan.options, "-DM_TILES=2"));
    assert_int_equal(128 / plan.lanes, 128);
    p.dtype = FACL_DTYPE_F32;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd");
    assert_int_equal(plan.fixed_group, 0);
    p.dtype = FACL_DTYPE_F16;
    p.head_dim = 160;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiles_fit_local_memory),
        cmocka_unit_test(test_features_select_macros),
        cmocka_unit_test(test_rows_within_limits),
        cmocka_unit_test(test_cpu_path),
        cmocka_unit_test(test_mma_path),
        cmocka_unit_test(test_lanes_for_wide_heads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
