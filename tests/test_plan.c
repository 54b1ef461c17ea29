/* Planning is a pure function of the problem and the device profile: checked here on
 * made-up devices, with no OpenCL device involved. The local memory of every plan is
 * recounted here from the kernels' own declarations (which the test reads, so that a
 * kernel that grows a local array fails it until this count follows). */
#define _POSIX_C_SOURCE 200809L
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bwd_plan.h"
#include "cache_plan.h"
#include "context.h"
#include "fwd_problem.h"
#include "plan.h"

/* The kernel sources, from the command line (tests/meson.build). */
static int g_argc;
static char **g_argv;

static facl_device_profile device(uint64_t local_mem, size_t max_wg)
{
    facl_device_profile p;
    memset(&p, 0, sizeof p);
    p.local_mem_reported = local_mem;
    p.local_mem_usable = local_mem;
    p.max_work_group_size = max_wg;
    return p;
}

/* The same device with the portable GPU kernel of before issue 11 (attn_fwd), as
 * FACL_PORTABLE_KERNEL=previous or a tuning entry's kernel = 1 chooses it. */
static facl_device_profile previous_kernel(facl_device_profile p)
{
    p.portable_kernel = FACL_TUNING_KERNEL_PREVIOUS;
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
        facl_device_profile dev = previous_kernel(device(sizes[s], 1024));
        for (int d = 1; d <= FACL_MAX_HEAD_DIM; d += 17) {
            facl_fwd_problem p = problem(d, 128);
            facl_fwd_plan plan;
            facl_plan_fwd_program(&p, &dev, &plan);
            assert_string_equal(plan.kernel, "attn_fwd");
            assert_true(plan.block_n >= 1);
            if (plan.block_n > 1) assert_true(2u * plan.block_n * d * 4u <= sizes[s]);
            char expect[32];
            snprintf(expect, sizeof expect, "-DHEAD_DIM=%d ", d);
            assert_non_null(strstr(plan.options, expect));
        }
    }
}

/* The backward's tiles (bwd_plan.c): both kernels' local memory, as attn_bwd.cl declares
 * it, within the device's, and the options the kernel needs; work-groups within limits. */
static void test_bwd_plan(void **state)
{
    (void)state;
    const uint64_t sizes[4] = {4096, 16384, 48 * 1024, 4u << 20};
    for (int s = 0; s < 4; ++s) {
        facl_device_profile dev = device(sizes[s], 256);
        for (int d = 1; d <= FACL_MAX_HEAD_DIM; d += 17) {
            facl_bwd_problem bp;
            memset(&bp, 0, sizeof bp);
            bp.f = problem(d, 128);
            facl_bwd_plan plan;
            facl_plan_bwd_program(&bp, &dev, NULL, &plan);
            assert_string_equal(plan.program, "attn_bwd");
            assert_true(plan.block_m >= 1 && plan.block_n >= 1);
            const uint64_t dq = 2u * (uint64_t)plan.block_n * (uint64_t)d * 4u;
            const uint64_t dkdv = 2u * (uint64_t)plan.block_m * (uint64_t)d * 4u + 2u * plan.block_m * 4u;
            assert_int_equal(plan.local_bytes, dq > dkdv ? dq : dkdv);
            if (plan.block_m > 1) assert_true(plan.local_bytes <= sizes[s]);
            char expect[64];
            snprintf(expect, sizeof expect, "-DBLOCK_M=%d -DBLOCK_N=%d", plan.block_m, plan.block_n);
            assert_non_null(strstr(plan.options, expect));
            assert_non_null(strstr(plan.options, "-DFACL_BWD_PARAMS_SIZE=160"));
        }
    }
    facl_device_profile dev = device(1 << 20, 16);
    assert_int_equal(facl_plan_bwd_group_size(1000, &dev, 1024), 16);
    dev = device(1 << 20, 1024);
    assert_int_equal(facl_plan_bwd_group_size(1000, &dev, 1024), 64);
    assert_int_equal(facl_plan_bwd_group_size(20, &dev, 1024), 32);
    assert_int_equal(facl_plan_bwd_group_size(1, &dev, 1024), 8);
    assert_int_equal(facl_plan_bwd_group_size(0, &dev, 1024), 8);
    assert_int_equal(facl_plan_bwd_group_size(1000, &dev, 8), 8);
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

/* Work-group size never exceeds what the device or the built kernel allows (attn_fwd,
 * sized at launch; attn_fwd_blocked's fixed groups: test_blocked_plan). */
static void test_rows_within_limits(void **state)
{
    (void)state;
    const size_t device_limits[3] = {1, 32, 4096};
    const size_t kernel_limits[3] = {1, 48, 1024};
    for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b)
            for (int sq = 1; sq <= 300; sq += 37) {
                facl_device_profile dev = previous_kernel(device(48 * 1024, device_limits[a]));
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
        facl_device_profile dev = previous_kernel(device(48 * 1024, 1024));
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
    assert_string_equal(plan.kernel, "attn_fwd_blocked");
    assert_int_equal(plan.rows_per_item, 1);
    facl_device_profile previous = previous_kernel(dev);
    facl_plan_fwd_program(&p, &previous, &plan);
    assert_string_equal(plan.kernel, "attn_fwd");
    assert_int_equal(plan.rows_per_item, 1);
    /* the CPU path ignores the portable GPU kernel's choice */
    previous.path = FACL_PATH_PORTABLE_CPU;
    facl_plan_fwd_program(&p, &previous, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_rows");
}

/* attn_fwd_rows's register blocks follow the device's vector width (8 floats: 4 rows;
 * 16: 8 rows; 4: 2 rows), and its rows per work-item come in whole blocks. */
static void test_cpu_register_rows(void **state)
{
    (void)state;
    const unsigned widths[4] = {0, 4, 8, 16};
    const int blocks[4] = {2, 2, 4, 8};
    for (int w = 0; w < 4; ++w) {
        facl_device_profile dev = device(4u << 20, 4096);
        dev.path = FACL_PATH_PORTABLE_CPU;
        dev.native_float_width = widths[w];
        facl_fwd_problem p = problem(64, 1000);
        facl_fwd_plan plan;
        facl_plan_fwd_program(&p, &dev, &plan);
        assert_int_equal(plan.register_rows, blocks[w]);
        assert_int_equal(plan.rows_per_item % plan.register_rows, 0);
        char rb[32];
        snprintf(rb, sizeof rb, "-DRB=%d ", blocks[w]);
        assert_non_null(strstr(plan.options, rb));
        /* a tuned 4 rows on a 16-float device: one whole block of 8 */
        dev.tuning.d[FACL_TUNING_D64].cpu_rows = 4;
        facl_plan_fwd_program(&p, &dev, &plan);
        assert_int_equal(plan.rows_per_item, blocks[w] > 4 ? blocks[w] : 4);
    }
}

/* Whether the CPU plan of a problem packs its k/v tiles. */
static int packs(const facl_fwd_problem *p, const facl_device_profile *dev)
{
    facl_fwd_plan plan;
    facl_plan_fwd_program(p, dev, &plan);
    return plan.packed_kv;
}

/* The packed k/v tiles: sized as the kernel lays them out (dense: whole tiles per
 * sequence; varlen: ceil(total_k / 16) + batch), packed by default only where a
 * (sequence, head) has more query rows than a work-item takes, always or never as
 * FACL_CPU_PACK asks, and never past 1 GiB or the device's largest allocation. */
static void test_cpu_packing(void **state)
{
    (void)state;
    facl_device_profile dev = device(4u << 20, 4096);
    dev.path = FACL_PATH_PORTABLE_CPU;
    dev.native_float_width = 8;
    facl_fwd_problem p = problem(40, 1000); /* head dims padded to 48 for v */
    p.batch = 3;
    p.heads_kv = 2;
    p.seqlen_k = 33;
    facl_fwd_plan plan;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_int_equal(plan.packed_kv, 1);
    assert_int_equal(plan.packed_tiles, 3 * 3);
    assert_int_equal(plan.packed_bytes, 2u * 9u * 16u * (40u + 48u) * 4u);
    assert_non_null(strstr(plan.options, "-DPACKED_KV=1"));
    p.varlen = 1;
    p.total_k = 70;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_int_equal(plan.packed_tiles, 5 + 3);
    /* one work-item's rows or fewer per sequence: each tile would be read once */
    p.seqlen_q = plan.rows_per_item;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_int_equal(plan.packed_kv, 0);
    assert_non_null(strstr(plan.options, "-DPACKED_KV=0"));
    dev.cpu_pack = FACL_CPU_PACK_ALWAYS;
    assert_int_equal(packs(&p, &dev), 1);
    dev.cpu_pack = FACL_CPU_PACK_NEVER;
    p.seqlen_q = 1000;
    assert_int_equal(packs(&p, &dev), 0);
    /* no keys: nothing to pack, even when asked */
    dev.cpu_pack = FACL_CPU_PACK_ALWAYS;
    p.total_k = 0;
    p.batch = 0;
    assert_int_equal(packs(&p, &dev), 0);
    /* too large for the device's largest allocation, then for the 1 GiB cap */
    p.varlen = 0;
    p.batch = 1;
    p.seqlen_k = 1 << 20; /* 65536 tiles x 2 heads x 5632 bytes: 704 MiB */
    dev.max_alloc = 256u << 20;
    assert_int_equal(packs(&p, &dev), 0);
    dev.max_alloc = (uint64_t)4 << 30;
    assert_int_equal(packs(&p, &dev), 1);
    p.heads_kv = 4;
    assert_int_equal(packs(&p, &dev), 0);
    /* other paths never pack */
    dev.path = FACL_PATH_PORTABLE_GPU;
    p.heads_kv = 2;
    assert_int_equal(packs(&p, &dev), 0);
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
    assert_string_equal(plan.kernel, "attn_fwd_blocked");
    assert_int_equal(plan.fixed_group, 256);
    assert_int_equal(plan.block_m, 64);
    p.dtype = FACL_DTYPE_F16;
    /* q staged with 64-key tiles where they fit the budget, then with 32-key tiles, then
     * q in registers: within 48 KiB (with the emulation's 6 KiB of scratch) d = 160 takes
     * q staged with 32-key tiles, d = 176 and 256 q in registers with 32-key tiles; an
     * sm_90 (113 KiB, facl_mma_local_budget) q staged with 64-key tiles at d = 256 */
    p.head_dim = 160;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_mma");
    assert_non_null(strstr(plan.options, "-DQ_LOCAL=1 -DBLOCK_N=32"));
    p.head_dim = 176;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_mma");
    assert_non_null(strstr(plan.options, "-DQ_LOCAL=0 -DBLOCK_N=32"));
    assert_int_equal(plan.block_n, 32);
    assert_int_equal(plan.local_budget, dev.local_mem_usable);
    p.head_dim = 256;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_mma");
    assert_int_equal(plan.block_n, 32);
    dev.path = FACL_PATH_NVIDIA_MMA;
    dev.nv_compute_major = 9;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_mma");
    assert_int_equal(plan.block_n, 64);
    assert_non_null(strstr(plan.options, "-DQ_LOCAL=1"));
    assert_int_equal(plan.local_budget, 113 * 1024);
    assert_true(plan.local_bytes > dev.local_mem_usable && plan.local_bytes <= plan.local_budget);
    dev.path = FACL_PATH_PORTABLE_GPU; /* the budget is the tensor-core paths' only */
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_int_equal(plan.local_budget, dev.local_mem_usable);
}


/* ------------------------------------------------------------------ local memory */

/* The value of -DNAME=value in build options; fails the test when absent. */
static long options_value(const char *options, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "-D%s=", name);
    const char *at = strstr(options, key);
    if (!at) fail_msg("no %s in '%s'", key, options);
    return strtol(at + strlen(key), NULL, 10);
}

static long option_value(const facl_fwd_plan *plan, const char *name)
{
    return options_value(plan->options, name);
}

/* The static local memory of a plan's kernel as its source declares it, from the macros
 * the plan compiles it with:
 *   attn_fwd.cl:      __local float k_tile[BLOCK_N * HEAD_DIM], v_tile[BLOCK_N * HEAD_DIM];
 *                     #if LANES > 1: __local float partial[BLOCK_N * MAX_GROUP]
 *   attn_fwd_mma.cl:  __local ushort k_tile[TILE_ELEMS], v_tile[TILE_ELEMS];
 *                     __local float scratch[SCRATCH_FLOATS], with BLOCK_N from the options,
 *                     D_PAD = round_up(HEAD_DIM, 16), K_PITCH = D_PAD + 8,
 *                     TILE_ELEMS = BLOCK_N * K_PITCH, SCRATCH_FLOATS = MMA_EMULATE ?
 *                     GROUP_SIZE / 32 * MMA_SCRATCH_PER_WARP (warp_mma.cl: 16 * 16 + 16 * 8)
 *                     : 1, GROUP_SIZE 128
 *     with WGMMA=1 (attn_fwd_wgmma): D_PAD = round_up(HEAD_DIM, 64), TILE_ELEMS =
 *                     BLOCK_N * D_PAD, KV_BUFS * TILE_ELEMS each (KV_BUFS = WG_PIPE, else 1),
 *                     GROUP_SIZE = 128 * WARPGROUPS, and unless Q_REGS
 *                     __local ushort q_tile[BLOCK_M * D_PAD], BLOCK_M = 64 * WARPGROUPS;
 *                     with WG_WS and !MMA_EMULATE __local ulong ws_bars[4 * KV_BUFS + 2]
 *   attn_fwd_blocked.cl: __local float4 stage[STAGE_FLOATS / 4], STAGE_FLOATS the larger of
 *                     CHUNK_D * (Q_PITCH + K_PITCH) and CHUNK_KEYS * D_PAD, Q_PITCH =
 *                     BLOCK_M + 4, K_PITCH = BLOCK_N + 4, D_PAD = HEAD_DIM rounded up to
 *                     KEY_STRIDE = 4 * KEY_ITEMS, KEY_ITEMS = BLOCK_N / TN;
 *                     __local float4 p_tile[BLOCK_N * P_PITCH / 4], P_PITCH = BLOCK_M + 4;
 *                     __local float row_parts[BLOCK_M * KEY_ITEMS]
 *   attn_fwd_rows.cl: none. */
static uint64_t kernel_local_bytes(const facl_fwd_plan *plan)
{
    const uint64_t d = (uint64_t)option_value(plan, "HEAD_DIM");
    if (strcmp(plan->kernel, "attn_fwd") == 0) {
        const uint64_t block_n = (uint64_t)option_value(plan, "BLOCK_N");
        const long lanes = option_value(plan, "LANES");
        const uint64_t max_group = (uint64_t)option_value(plan, "MAX_GROUP");
        return 2 * block_n * d * sizeof(float) + (lanes > 1 ? block_n * max_group * sizeof(float) : 0);
    }
    if (strcmp(plan->kernel, "attn_fwd_mma") == 0) {
        const uint64_t block_n = (uint64_t)option_value(plan, "BLOCK_N");
        const uint64_t d_pad = (d + 15) / 16 * 16, k_pitch = d_pad + 8;
        const uint64_t scratch_floats =
            option_value(plan, "MMA_EMULATE") ? 4 * (16 * 16 + 16 * 8) : 1;
        const uint64_t block_m = 64 * (uint64_t)option_value(plan, "M_TILES");
        const uint64_t q_tile = option_value(plan, "Q_LOCAL") ? block_m * k_pitch * 2 : 0;
        const uint64_t stages = (uint64_t)option_value(plan, "KV_STAGES");
        return 2 * stages * block_n * k_pitch * 2 + q_tile + scratch_floats * sizeof(float);
    }
    if (strcmp(plan->kernel, "attn_fwd_wgmma") == 0) {
        const uint64_t block_n = (uint64_t)option_value(plan, "BLOCK_N");
        const uint64_t groups = (uint64_t)option_value(plan, "WARPGROUPS");
        const uint64_t d_pad = (d + 63) / 64 * 64;
        const uint64_t scratch_floats =
            option_value(plan, "MMA_EMULATE") ? 128 * groups / 32 * (16 * 16 + 16 * 8) : 1;
        const uint64_t q_tile = option_value(plan, "Q_REGS") ? 0 : 64 * groups * d_pad * 2;
        const uint64_t bufs = option_value(plan, "WG_PIPE") ? (uint64_t)option_value(plan, "WG_PIPE") : 1;
        /* WG_WS on the device: ulong ws_bars[4 * KV_BUFS + 2] */
        const uint64_t bars = option_value(plan, "WG_WS") && !option_value(plan, "MMA_EMULATE")
                                  ? (4 * bufs + 2) * 8
                                  : 0;
        return 2 * bufs * block_n * d_pad * 2 + q_tile + scratch_floats * sizeof(float) + bars;
    }
    if (strcmp(plan->kernel, "attn_fwd_blocked") == 0) {
        const uint64_t bm = (uint64_t)option_value(plan, "BLOCK_M");
        const uint64_t bn = (uint64_t)option_value(plan, "BLOCK_N");
        const uint64_t tn = (uint64_t)option_value(plan, "TN");
        const uint64_t chunk_d = (uint64_t)option_value(plan, "CHUNK_D");
        const uint64_t chunk_keys = (uint64_t)option_value(plan, "CHUNK_KEYS");
        const uint64_t key_stride = 4 * (bn / tn);
        const uint64_t d_pad = (d + key_stride - 1) / key_stride * key_stride;
        const uint64_t qk = chunk_d * ((bm + 4) + (bn + 4)), v = chunk_keys * d_pad;
        return ((qk > v ? qk : v) + bn * (bm + 4) + bm * (bn / tn)) * sizeof(float);
    }
    if (strcmp(plan->kernel, "attn_fwd_rows") == 0) return 0;
    fail_msg("unknown kernel %s", plan->kernel);
    return 0;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    char *text = NULL;
    size_t len = 0, cap = 0;
    int c;
    while ((c = fgetc(f)) != EOF) {
        if (len + 2 > cap) {
            cap = cap ? 2 * cap : 65536;
            text = realloc(text, cap);
            assert_non_null(text);
        }
        text[len++] = (char)c;
    }
    fclose(f);
    if (!text) text = calloc(1, 1);
    text[len] = '\0';
    return text;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* The kernels still declare exactly the local arrays that kernel_local_bytes counts:
 * every `__local <type> <name>[` in each source file is one of the expected ones. */
static void test_kernel_sources_match_count(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        const char *expected[20]; /* declarations and macros, verbatim */
        int arrays;              /* __local arrays in the file */
    } k_files[] = {
        {"attn_fwd.cl",
         {"__local float k_tile[BLOCK_N * HEAD_DIM];", "__local float v_tile[BLOCK_N * HEAD_DIM];",
          "#if LANES > 1", "__local float partial[BLOCK_N * MAX_GROUP];", NULL},
         3},
        {"attn_fwd_mma.cl",
         {"__local ushort k_tile[KV_BUFS * TILE_ELEMS]", "__local ushort v_tile[KV_BUFS * TILE_ELEMS]",
          "__local float scratch[SCRATCH_FLOATS];", "#define TILE_ELEMS (BLOCK_N * K_PITCH)",
          "#define D_PAD (((HEAD_DIM + 15) / 16) * 16)", "#define K_PITCH (D_PAD + 8)",
          "#define SCRATCH_FLOATS ((GROUP_SIZE / 32) * MMA_SCRATCH_PER_WARP)",
          "#define KV_BUFS (WG_PIPE ? WG_PIPE : KV_STAGES)",
          "#define GROUP_SIZE 128", "#define GROUP_SIZE (128 * WARPGROUPS)",
          "#define D_PAD (((HEAD_DIM + 63) / 64) * 64)", "#define TILE_ELEMS (BLOCK_N * D_PAD)",
          "#define Q_STAGED ((WGMMA && !Q_REGS) || Q_LOCAL)",
          "__local ulong ws_bars[WS_BARS];", "#define WS_BARS (4 * KV_BUFS + 2)",
          "#if Q_STAGED\n    /* the group's q rows (a 64-row slice per warpgroup, 16 * M_TILES rows per warp) */\n"
          "    __local ushort q_tile[BLOCK_M * (TILE_ELEMS / BLOCK_N)]",
          "#define BLOCK_M (16 * M_TILES * (GROUP_SIZE / 32))", NULL},
         5},
        {"attn_fwd_blocked.cl",
         {"__local float4 stage[STAGE_FLOATS / 4];", "__local float4 p_tile[BLOCK_N * P_PITCH / 4];",
          "__local float row_parts[BLOCK_M * KEY_ITEMS];", "#define KEY_ITEMS (BLOCK_N / TN)",
          "#define KEY_STRIDE (4 * KEY_ITEMS)",
          "#define D_PAD (((HEAD_DIM + KEY_STRIDE - 1) / KEY_STRIDE) * KEY_STRIDE)",
          "#define Q_PITCH (BLOCK_M + 4)", "#define K_PITCH (BLOCK_N + 4)", "#define P_PITCH (BLOCK_M + 4)",
          "#define QK_FLOATS (CHUNK_D * (Q_PITCH + K_PITCH))", "#define V_FLOATS (CHUNK_KEYS * D_PAD)",
          "#define STAGE_FLOATS (QK_FLOATS > V_FLOATS ? QK_FLOATS : V_FLOATS)", NULL},
         3},
        {"warp_mma.cl", {"#define MMA_SCRATCH_PER_WARP (16 * 16 + 16 * 8)", NULL}, 0},
        {"warpgroup_mma.cl", {NULL}, 0},
        {"attn_fwd_rows.cl", {NULL}, 0},
        {"attn_common.cl", {NULL}, 0},
        {"attn_params.cl", {NULL}, 0},
        {"dtype.cl", {NULL}, 0},
        {"philox.cl", {NULL}, 0},
        {"attn_probs.cl", {NULL}, 0},
        /* counted by facl_bwd_dq_local_bytes and facl_bwd_dkdv_local_bytes (bwd_plan.c) */
        {"attn_bwd.cl",
         {"__local float k_tile[BLOCK_N * HEAD_DIM];", "__local float v_tile[BLOCK_N * HEAD_DIM];",
          "__local float q_tile[BLOCK_M * HEAD_DIM];", "__local float do_tile[BLOCK_M * HEAD_DIM];",
          "__local float lse_tile[BLOCK_M];", "__local float delta_tile[BLOCK_M];", NULL},
         6},
        {"bwd_common.cl", {NULL}, 0},
        /* counted by facl_bwd_mma_dkdv_local_bytes and facl_bwd_mma_dq_local_bytes, and by
         * bwd_mma_local_bytes below */
        {"attn_bwd_mma.cl",
         {"__local ushort k_tile[KV_KEYS * PITCH]", "__local ushort q_tiles[KV_STAGES * KV_ROWS * PITCH]",
          "__local ushort pt_tile[KV_KEYS * P_PITCH]", "__local float lse2_tiles[KV_STAGES * KV_ROWS];",
          "__local ushort q_tile[DQ_ROWS * PITCH]", "__local ushort k_tiles[DQ_STAGES * DQ_KEYS * PITCH]",
          "#define D_PAD (((HEAD_DIM + 16 * KV_WD - 1) / (16 * KV_WD)) * (16 * KV_WD))",
          "#define PITCH (D_PAD + 8)"},
         14},
        {"bwd_mma_entries.cl", {NULL}, 0},
        /* counted by facl_bwd_wgmma_local_bytes, and by bwd_wgmma_local_bytes below */
        {"attn_bwd_wgmma.cl",
         {"__local ushort k_tile[BLOCK * D_PAD]", "__local ushort v_tile[BLOCK * D_PAD]",
          "__local ushort q_tiles[2 * ROW_TILE_ELEMS]", "__local ushort do_tiles[2 * ROW_TILE_ELEMS]",
          "__local float lse2_tiles[2 * 64];", "__local float delta_tiles[2 * 64];",
          "__local ushort q_tile[BLOCK * D_PAD]", "__local ushort k_tiles[2 * ROW_TILE_ELEMS]",
          "#define D_PAD (((HEAD_DIM + 63) / 64) * 64)", "#define BLOCK (64 * WARPGROUPS)",
          "#define ROW_TILE_ELEMS (64 * D_PAD)",
          "#define SCRATCH_FLOATS ((GROUP_SIZE / 32) * MMA_SCRATCH_PER_WARP)",
          "__local ushort ds_tile[64 * BLOCK]", "__local float dq_stage[WARPGROUPS * 64 * DQ_PITCH]",
          "#define DQ_PITCH (64 + 8)", NULL},
         14},
        {"attn_merge.cl", {NULL}, 0},
        {"merge_row.cl", {NULL}, 0},
        {"attn_cache.cl",
         {"__local float lane_sums[KEY_GROUPS * KPS * ROWS * CHUNKS];",
          "__local float scores[KEY_GROUPS * KPS * ROWS];",
          "__local float group_m[KEY_GROUPS * ROWS];", "__local float group_l[KEY_GROUPS * ROWS];",
          "__local float out_sums[KEY_GROUPS * CHUNKS * 8];",
          "#define CHUNKS ((HEAD_DIM + 7) / 8)", "#define GROUP_SIZE (CHUNKS * KEY_GROUPS)", NULL},
         5},
        {"attn_cache_mma.cl",
         {"__local float scratch[MMA_SCRATCH_FLOATS];", "__local float warp_m[CACHE_WARPS * 16];",
          "__local float warp_l[CACHE_WARPS * 16];",
          "#define MMA_SCRATCH_FLOATS (MMA_EMULATE ? CACHE_WARPS * MMA_SCRATCH_PER_WARP : 1)",
          "__local ushort kv_tiles[TILES_ELEMS]",
          "#define TILES_ELEMS (CACHE_WARPS * CACHE_STAGES * STAGE_ELEMS)",
          "#define STAGE_ELEMS (2 * TILE_ELEMS)", "#define TILE_ELEMS (16 * TILE_PITCH)",
          "__local ulong stage_bars[CACHE_WARPS * CACHE_STAGES];"},
         5},
    };
    regex_t decl;
    assert_int_equal(regcomp(&decl, "__local[ \t]+(const[ \t]+)?[A-Za-z_][A-Za-z0-9_]*[ \t]+[A-Za-z_][A-Za-z0-9_]*[ \t]*\\[",
                             REG_EXTENDED),
                     0);
    int seen = 0;
    for (int a = 1; a < g_argc; ++a) {
        const char *name = base_name(g_argv[a]);
        int index = -1;
        for (size_t i = 0; i < sizeof k_files / sizeof k_files[0]; ++i)
            if (strcmp(name, k_files[i].file) == 0) index = (int)i;
        if (index < 0) fail_msg("%s: a kernel source this test does not know: count its local memory", name);
        seen++;
        char *text = read_text(g_argv[a]);
        for (int e = 0; e < 20 && k_files[index].expected[e]; ++e)
            if (!strstr(text, k_files[index].expected[e]))
                fail_msg("%s no longer has '%s': update kernel_local_bytes", name,
                         k_files[index].expected[e]);
        int arrays = 0;
        regmatch_t m;
        for (const char *at = text; regexec(&decl, at, 1, &m, 0) == 0; at += m.rm_eo) arrays++;
        free(text);
        if (arrays != k_files[index].arrays)
            fail_msg("%s declares %d __local arrays, kernel_local_bytes counts %d", name, arrays,
                     k_files[index].arrays);
    }
    regfree(&decl);
    if (seen < 4) fail_msg("pass the kernel sources (cl_kernels/*.cl) as arguments");
}

static const facl_kernel_path k_paths[4] = {FACL_PATH_PORTABLE_GPU, FACL_PATH_PORTABLE_CPU,
                                            FACL_PATH_NVIDIA_MMA, FACL_PATH_MMA_EMULATED};
static const facl_dtype k_dtypes[3] = {FACL_DTYPE_F32, FACL_DTYPE_F16, FACL_DTYPE_BF16};

/* A device as facl_device_profile_query describes it: 1 KiB of the reported local memory
 * is kept back for the implementation. */
static facl_device_profile device_reporting(uint64_t local_mem, facl_kernel_path path)
{
    facl_device_profile p = device(local_mem, 1024);
    p.local_mem_usable = local_mem > 1024 ? local_mem - 1024 : local_mem;
    p.path = path;
    return p;
}

/* A Hopper GPU (nvidia-mma, compute capability 9.x) whose forward plans attn_fwd_wgmma as
 * `mode` says (FACL_WGMMA_*), warp-specialised as `ws` says, through the tensor copy
 * engine where `tma`. */
static facl_device_profile hopper(int mode, int ws, int tma)
{
    facl_device_profile dev = device_reporting(48 * 1024, FACL_PATH_NVIDIA_MMA);
    dev.nv_compute_major = 9;
    dev.fwd_wgmma = mode;
    dev.wgmma_ws = ws;
    dev.wgmma_tma = tma;
    return dev;
}

/* attn_cache.cl's local arrays (see k_files) from the macros its plan compiles it with. */
static uint64_t cache_kernel_local_bytes(const facl_cache_plan *plan)
{
    const char *o = plan->options;
    const char *names[6] = {"HEAD_DIM", "ROWS", "KEY_GROUPS", "KPS", "CACHE_WARPS", "CACHE_STAGES"};
    uint64_t v[6];
    for (int i = 0; i < 6; ++i) {
        char key[32];
        snprintf(key, sizeof key, "-D%s=", names[i]);
        const char *at = strstr(o, key);
        if (!at) fail_msg("attn_cache: no %s in '%s'", key, o);
        v[i] = (uint64_t)strtol(at + strlen(key), NULL, 10);
    }
    const uint64_t chunks = (v[0] + 7) / 8, rows = v[1], groups = v[2], kps = v[3];
    if (strstr(o, "-DCACHE_CPU=1")) return 0; /* the CPU variant: private arrays only */
    if (strstr(o, "-DCACHE_MMA=1")) { /* attn_cache_mma.cl: scratch, merges_here, warp_m,
                                          * warp_l, kv_tiles, stage_bars */
        const uint64_t warps = v[4], stages = v[5];
        const uint64_t scratch = strstr(o, "-DMMA_EMULATE=1") ? warps * (16 * 16 + 16 * 8) : 1;
        const uint64_t tiles = 2 * (warps * stages * 2 * 16 * (v[0] + 8));
        assert_true(tiles >= (warps - 1) * 16 * v[0] * 4); /* the parked output rows fit */
        return 4 * (scratch + 1 + 2 * warps * 16) + tiles + 8 * warps * stages;
    }
    return 4 * (groups * kps * rows * chunks + groups * kps * rows + 2 * groups * rows +
                groups * chunks * 8);
}

/* attn_bwd_mma.cl's local arrays (see k_files) from its options, for both kernels. */
static uint64_t bwd_mma_local_bytes(const char *o, int head_dim, int kernel_dq)
{
    const uint64_t kv_warps = options_value(o, "KV_WARPS"), keys = options_value(o, "KV_KEYS");
    const uint64_t rows = options_value(o, "KV_ROWS"), dq_warps = options_value(o, "DQ_WARPS");
    const uint64_t dq_keys = options_value(o, "DQ_KEYS");
    const uint64_t wd = kv_warps / (keys / 16);
    const uint64_t pitch = ((uint64_t)head_dim + 16 * wd - 1) / (16 * wd) * (16 * wd) + 8;
    const int emulated = options_value(o, "MMA_EMULATE");
    const uint64_t warps = kernel_dq ? dq_warps : kv_warps;
    const uint64_t scratch = emulated ? warps * (16 * 16 + 16 * 8) : 1;
    const uint64_t kv_stages = options_value(o, "KV_STAGES"), dq_stages = options_value(o, "DQ_STAGES");
    if (kernel_dq)
        return 2 * (16 * dq_warps * pitch * 2) + 2 * (dq_stages * dq_keys * pitch * 2) + 4 * scratch;
    return 2 * (keys * pitch * 2) + 2 * (kv_stages * rows * pitch * 2) + 2 * (keys * (rows + 8) * 2) +
           4 * (2 * kv_stages * rows) + 4 * scratch;
}

/* A lane's fp32 values in attn_bwd_mma's loops, from its options (bwd_plan.c keeps both
 * kernels at or below 160: more spilled on the H200). */
static int bwd_mma_lane_floats(const char *o, int head_dim, int kernel_dq)
{
    const int kv_warps = (int)options_value(o, "KV_WARPS"), keys = (int)options_value(o, "KV_KEYS");
    const int wd = kv_warps / (keys / 16);
    const int d_pad = (head_dim + 16 * wd - 1) / (16 * wd) * (16 * wd);
    if (kernel_dq) return d_pad / 2 + (int)options_value(o, "DQ_KEYS");
    return (d_pad + (int)options_value(o, "KV_ROWS")) / wd;
}

/* The backward's tensor-core kernels on the tensor-core paths for 16-bit storage and
 * every head dim up to 256, their local memory as declared and within the budget (on
 * NVIDIA half an SM's shared memory: 114 KiB on sm_90, 82 on sm_80, 50 on sm_86, less
 * 1 KiB; elsewhere local_mem_usable), a lane's values within what ran without spills,
 * a shape the kernel accepts, groups as the kernels require; attn_bwd for fp32, for a
 * device whose probe of them failed and for the portable paths. */
static void test_bwd_mma_plan(void **state)
{
    (void)state;
    static const int caps[4][3] = {{9, 0, 114}, {8, 0, 82}, {8, 6, 50}, {0, 0, 0}};
    for (int pa = 0; pa < 4; ++pa)
        for (int cap = 0; cap < 4; ++cap)
            for (int t = 0; t < 3; ++t)
                for (int d = 1; d <= FACL_MAX_HEAD_DIM; ++d) {
                    facl_device_profile dev = device_reporting(48 * 1024, k_paths[pa]);
                    dev.nv_compute_major = caps[cap][0];
                    dev.nv_compute_minor = caps[cap][1];
                    const uint64_t budget = k_paths[pa] == FACL_PATH_NVIDIA_MMA && caps[cap][2]
                                                ? (uint64_t)(caps[cap][2] - 1) * 1024
                                                : dev.local_mem_usable;
                    assert_int_equal(facl_mma_local_budget(&dev), budget);
                    facl_bwd_problem bp;
                    memset(&bp, 0, sizeof bp);
                    bp.f = problem(d, 128);
                    bp.f.dtype = k_dtypes[t];
                    facl_bwd_plan plan;
                    facl_plan_bwd_program(&bp, &dev, NULL, &plan);
                    const int mma = (k_paths[pa] == FACL_PATH_NVIDIA_MMA ||
                                     k_paths[pa] == FACL_PATH_MMA_EMULATED) &&
                                    k_dtypes[t] != FACL_DTYPE_F32;
                    if (!mma) {
                        assert_string_equal(plan.program, "attn_bwd");
                        assert_int_equal(plan.requested_shape, 0);
                        assert_string_equal(plan.kernels[2], "attn_bwd_dkdv");
                        continue;
                    }
                    assert_string_equal(plan.program, "attn_bwd_mma");
                    assert_string_equal(plan.kernels[0], "attn_bwd_dot");
                    assert_string_equal(plan.kernels[1], "attn_bwd_mma_dq");
                    assert_string_equal(plan.kernels[2], "attn_bwd_mma_dkdv");
                    const char *o = plan.options;
                    const uint64_t dq = bwd_mma_local_bytes(o, d, 1), dkdv = bwd_mma_local_bytes(o, d, 0);
                    assert_int_equal(plan.local_bytes, dq > dkdv ? dq : dkdv);
                    assert_int_equal(plan.local_budget, budget);
                    assert_true(plan.local_bytes <= budget);
                    assert_true(bwd_mma_lane_floats(o, d, 0) <= 160);
                    assert_true(bwd_mma_lane_floats(o, d, 1) <= 160);
                    const int kv_warps = (int)options_value(o, "KV_WARPS");
                    const int keys = (int)options_value(o, "KV_KEYS");
                    const int rows = (int)options_value(o, "KV_ROWS");
                    const int dq_warps = (int)options_value(o, "DQ_WARPS");
                    /* the kernel's #error conditions */
                    assert_true(keys % 16 == 0 && kv_warps % (keys / 16) == 0 && rows % 16 == 0);
                    const int wd = kv_warps / (keys / 16);
                    assert_true(rows % wd == 0 && (rows / wd) % 8 == 0);
                    assert_true(options_value(o, "DQ_KEYS") % 16 == 0);
                    assert_int_equal(plan.fixed_group[1], 32 * dq_warps);
                    assert_int_equal(plan.items_per_group[1], 16 * dq_warps);
                    assert_int_equal(plan.fixed_group[2], 32 * kv_warps);
                    assert_int_equal(plan.items_per_group[2], keys);
                    assert_int_equal(plan.fixed_group[0], 0);
                    assert_int_equal(options_value(o, "MMA_EMULATE"), k_paths[pa] == FACL_PATH_MMA_EMULATED);
                    assert_int_equal(options_value(o, "VEC_LOADS"), d % 8 == 0);
                    assert_int_equal(options_value(o, "FACL_BWD_PARAMS_SIZE"), 160);
                    /* a failed probe sends the backward to attn_bwd */
                    dev.bwd_mma_off = 1;
                    facl_plan_bwd_program(&bp, &dev, NULL, &plan);
                    assert_string_equal(plan.program, "attn_bwd");
                }
    /* the H200's shapes (sm_90: 113 KiB) per head-dim class */
    facl_device_profile dev = device_reporting(48 * 1024, FACL_PATH_NVIDIA_MMA);
    dev.nv_compute_major = 9;
    static const struct { int d; const char *shape; } h200[] = {
        {64, "-DKV_WARPS=4 -DKV_KEYS=64 -DKV_ROWS=64 -DKV_STAGES=2 -DDQ_WARPS=4 -DDQ_KEYS=64 -DDQ_STAGES=2"},
        {128, "-DKV_WARPS=4 -DKV_KEYS=64 -DKV_ROWS=32 -DKV_STAGES=2 -DDQ_WARPS=4 -DDQ_KEYS=64 -DDQ_STAGES=2"},
        {256, "-DKV_WARPS=4 -DKV_KEYS=32 -DKV_ROWS=64 -DKV_STAGES=1 -DDQ_WARPS=4 -DDQ_KEYS=32 -DDQ_STAGES=1"},
    };
    for (int i = 0; i < 3; ++i) {
        facl_bwd_problem bp;
        memset(&bp, 0, sizeof bp);
        bp.f = problem(h200[i].d, 128);
        facl_bwd_plan plan;
        facl_plan_bwd_program(&bp, &dev, NULL, &plan);
        if (!strstr(plan.options, h200[i].shape))
            fail_msg("d=%d: '%s' lacks '%s'", h200[i].d, plan.options, h200[i].shape);
    }
}

/* FACL_BWD_MMA_SHAPE's parser takes exactly the shapes attn_bwd_mma compiles, and a
 * requested shape is planned as given, whatever its local memory. */
static void test_bwd_mma_requested_shape(void **state)
{
    (void)state;
    facl_bwd_mma_shape s;
    assert_int_equal(facl_parse_bwd_mma_shape("4,64,64,2,4,64,1", &s), 0);
    assert_true(s.kv_warps == 4 && s.kv_keys == 64 && s.kv_rows == 64 && s.kv_stages == 2 &&
                s.dq_warps == 4 && s.dq_keys == 64 && s.dq_stages == 1);
    assert_int_equal(facl_parse_bwd_mma_shape("4,32,16,1,1,16,2", &s), 0); /* 2 dim warps x 8 rows */
    static const char *const bad[] = {"", "4,64,64,4,64", "4,64,64,2,4,64,2x", "3,64,64,2,4,64,2",
                                      "4,48,64,2,4,64,2", "2,16,8,2,1,16,2", "4,16,16,2,1,16,2",
                                      "4,64,64,2,4,24,2", "8,512,64,2,4,64,2", "4,64,64,2,0,64,2",
                                      "4,64,64,3,4,64,2", "4,64,64,2,4,64,0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i)
        if (facl_parse_bwd_mma_shape(bad[i], &s) == 0) fail_msg("'%s' was accepted", bad[i]);
    facl_device_profile dev = device_reporting(48 * 1024, FACL_PATH_NVIDIA_MMA);
    facl_bwd_problem bp;
    memset(&bp, 0, sizeof bp);
    bp.f = problem(128, 128);
    const facl_bwd_mma_shape big = {4, 64, 64, 2, 4, 64, 2};
    facl_bwd_plan plan;
    facl_plan_bwd_program(&bp, &dev, &big, &plan);
    assert_string_equal(plan.program, "attn_bwd_mma");
    assert_int_equal(plan.requested_shape, 1);
    assert_non_null(strstr(plan.options, "-DKV_WARPS=4 -DKV_KEYS=64 -DKV_ROWS=64 -DKV_STAGES=2 "
                                         "-DDQ_WARPS=4 -DDQ_KEYS=64 -DDQ_STAGES=2"));
    assert_true(plan.local_bytes > dev.local_mem_usable);
    assert_int_equal(plan.local_bytes, bwd_mma_local_bytes(plan.options, 128, 0));
    facl_plan_bwd_program(&bp, &dev, NULL, &plan);
    assert_int_equal(plan.requested_shape, 0);
}

/* attn_bwd_wgmma.cl's static local memory as its dk/dv kernel declares it (the larger of
 * the two): k and v tiles of 64 * WARPGROUPS rows, two buffers of 64-row q and dout
 * tiles and of 64 lse and D floats, the emulation's scratch; D_PAD columns. */
static uint64_t bwd_wgmma_local_bytes(int head_dim, int warpgroups, int dq_atomic, int emulated)
{
    const uint64_t d_pad = (uint64_t)(head_dim + 63) / 64 * 64;
    const uint64_t scratch = emulated ? (uint64_t)warpgroups * 4 * (16 * 16 + 16 * 8) : 1;
    /* DQ_ATOMIC: ds_tile[64 * BLOCK] (16-bit), dq_stage[WARPGROUPS * 64 * DQ_PITCH] floats */
    const uint64_t atomic = dq_atomic ? 64 * 64 * (uint64_t)warpgroups * 2 + (uint64_t)warpgroups * 64 * 72 * 4 : 0;
    return 2 * (64 * (uint64_t)warpgroups * d_pad * 2) + 2 * (2 * 64 * d_pad * 2) + 2 * (2 * 64 * 4) +
           atomic + 4 * scratch;
}

/* The warpgroups the planner should give attn_bwd_wgmma (0: none fits). */
static int expected_wgmma_warpgroups(const facl_device_profile *dev, int d, int asked, int dq_atomic, int emulated)
{
    for (int w = asked ? asked : 2; w >= (asked ? asked : 1); --w) {
        const uint64_t budget = w == 2 ? facl_mma_sm_budget(dev) : facl_mma_local_budget(dev);
        if (bwd_wgmma_local_bytes(d, w, dq_atomic, emulated) <= budget) return w;
    }
    return 0;
}

/* FACL_BWD_WGMMA=1 (profile.bwd_wgmma): attn_bwd_wgmma for 16-bit storage and head dims
 * up to 128 on the tensor-core paths, two warpgroups where they fit the SM (else one,
 * within half an SM; else attn_bwd_mma), the sm_90a rebuild on NVIDIA only, groups as
 * the kernels require; with the atomic-dq opt-in its DQ_ATOMIC variant and the dq store
 * (where its local memory fits); attn_bwd_mma above d = 128 and without the switch;
 * attn_bwd for fp32. */
static void test_bwd_wgmma_plan(void **state)
{
    (void)state;
    static const uint64_t locals[2] = {48 * 1024, 256 * 1024};
    for (int pa = 0; pa < 2; ++pa)
        for (int l = 0; l < 2; ++l)
            for (int asked = 0; asked <= 2; ++asked)
                for (int t = 0; t < 3; ++t)
                    for (int d = 1; d <= FACL_MAX_HEAD_DIM; ++d) {
                        const facl_kernel_path path = pa ? FACL_PATH_MMA_EMULATED : FACL_PATH_NVIDIA_MMA;
                        facl_device_profile dev = device_reporting(locals[l], path);
                        dev.nv_compute_major = pa ? 0 : 9;
                        dev.bwd_wgmma = 1;
                        dev.bwd_wgmma_warpgroups = asked;
                        facl_bwd_problem bp;
                        memset(&bp, 0, sizeof bp);
                        bp.f = problem(d, 128);
                        bp.f.dtype = k_dtypes[t];
                        bp.f.dq_atomics = 1; /* deterministic = 0: no atomics without the opt-in */
                        facl_bwd_plan plan;
                        facl_plan_bwd_program(&bp, &dev, NULL, &plan);
                        if (k_dtypes[t] == FACL_DTYPE_F32) {
                            assert_string_equal(plan.program, "attn_bwd");
                            continue;
                        }
                        const int wgs = expected_wgmma_warpgroups(&dev, d, asked, 0, pa);
                        if (d > 128 || !wgs) {
                            assert_string_equal(plan.program, "attn_bwd_mma");
                            continue;
                        }
                        assert_string_equal(plan.program, "attn_bwd_wgmma");
                        assert_string_equal(plan.kernels[0], "attn_bwd_dot");
                        assert_string_equal(plan.kernels[1], "attn_bwd_wgmma_dq");
                        assert_string_equal(plan.kernels[2], "attn_bwd_wgmma_dkdv");
                        assert_int_equal(plan.spans[1], FACL_BWD_SPAN_ROWS);
                        assert_int_equal(plan.spans[2], FACL_BWD_SPAN_KEYS);
                        const char *o = plan.options;
                        assert_int_equal(options_value(o, "WARPGROUPS"), wgs);
                        assert_int_equal(plan.wgmma_warpgroups, wgs);
                        assert_int_equal(plan.local_bytes, bwd_wgmma_local_bytes(d, wgs, 0, pa));
                        assert_true(plan.local_bytes <= plan.local_budget);
                        for (int i = 1; i < 3; ++i) {
                            assert_int_equal(plan.fixed_group[i], 128 * wgs);
                            assert_int_equal(plan.items_per_group[i], 64 * wgs);
                        }
                        assert_int_equal(plan.dq_atomic, 0);
                        assert_int_equal(options_value(o, "DQ_ATOMIC"), 0);
                        assert_int_equal(options_value(o, "MMA_EMULATE"), pa);
                        assert_int_equal(strstr(o, "-DFACL_SM90A=1") != NULL, !pa);
                        assert_int_equal(options_value(o, "VEC_LOADS"), d % 8 == 0);
                        assert_int_equal(options_value(o, "FACL_BWD_PARAMS_SIZE"), 160);
                        /* the atomic-dq opt-in: the dk/dv kernel adds dq (DQ_ATOMIC=1), then
                         * attn_bwd_mma_dq_store, where its larger local memory fits; else
                         * attn_bwd_mma's atomic variant */
                        dev.bwd_dq_atomic = 1;
                        facl_plan_bwd_program(&bp, &dev, NULL, &plan);
                        const int atomic_wgs = expected_wgmma_warpgroups(&dev, d, asked, 1, pa);
                        assert_int_equal(plan.dq_atomic, 1);
                        if (!atomic_wgs) {
                            assert_string_equal(plan.program, "attn_bwd_mma");
                        } else {
                            assert_string_equal(plan.program, "attn_bwd_wgmma");
                            assert_string_equal(plan.kernels[0], "attn_bwd_dot");
                            assert_string_equal(plan.kernels[1], "attn_bwd_wgmma_dkdv");
                            assert_string_equal(plan.kernels[2], "attn_bwd_mma_dq_store");
                            assert_int_equal(plan.spans[1], FACL_BWD_SPAN_KEYS);
                            assert_int_equal(plan.spans[2], FACL_BWD_SPAN_ROW_ELEMENTS);
                            assert_int_equal(plan.fixed_group[1], 128 * atomic_wgs);
                            assert_int_equal(plan.items_per_group[1], 64 * atomic_wgs);
                            assert_int_equal(plan.fixed_group[2], 0);
                            assert_int_equal(plan.wgmma_warpgroups, atomic_wgs);
                            assert_int_equal(options_value(plan.options, "WARPGROUPS"), atomic_wgs);
                            assert_int_equal(options_value(plan.options, "DQ_ATOMIC"), 1);
                            assert_int_equal(plan.local_bytes, bwd_wgmma_local_bytes(d, atomic_wgs, 1, pa));
                            assert_true(plan.local_bytes <= plan.local_budget);
                        }
                        /* without the switch: attn_bwd_mma */
                        dev.bwd_dq_atomic = 0;
                        dev.bwd_wgmma = 0;
                        facl_plan_bwd_program(&bp, &dev, NULL, &plan);
                        assert_string_equal(plan.program, "attn_bwd_mma");
                    }
    /* deterministic = 0 by default (profile.bwd_wgmma_dq_atomic, no opt-in): the atomic
     * variant where a key block sees >= 4096 rows on average (bwd_plan.c's rows_per_key) */
    {
        facl_device_profile dev = device_reporting(256 * 1024, FACL_PATH_NVIDIA_MMA);
        dev.nv_compute_major = 9;
        dev.bwd_wgmma = 1;
        dev.bwd_wgmma_dq_atomic = 1;
        static const struct { int sq, wl, wr, det, atomic; } cases[] = {
            {4096, -1, -1, 0, 1}, {4095, -1, -1, 0, 0}, {1024, -1, -1, 0, 0},
            {8192, -1, 0, 0, 1},  {4096, -1, 0, 0, 0},  {16384, 100, 100, 0, 0},
            {16384, 4000, 100, 0, 1}, {16384, 100, -1, 0, 1}, {4096, -1, -1, 1, 0},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
            facl_bwd_problem bp;
            memset(&bp, 0, sizeof bp);
            bp.f = problem(128, cases[i].sq);
            bp.f.window_left = cases[i].wl;
            bp.f.window_right = cases[i].wr;
            bp.f.dq_atomics = !cases[i].det;
            facl_bwd_plan plan;
            facl_plan_bwd_program(&bp, &dev, NULL, &plan);
            assert_string_equal(plan.program, "attn_bwd_wgmma");
            if (plan.dq_atomic != cases[i].atomic)
                fail_msg("seqlen_q %d, window %d,%d, deterministic %d: dq_atomic %d", cases[i].sq, cases[i].wl,
                         cases[i].wr, cases[i].det, plan.dq_atomic);
            assert_int_equal(options_value(plan.options, "DQ_ATOMIC"), cases[i].atomic);
        }
        /* where the atomic variant's local memory does not fit, the default keeps the
         * Hopper kernels' deterministic form (the opt-in's fallback, attn_bwd_mma's
         * atomic variant, is checked in test_bwd_wgmma_plan) */
        for (uint64_t local = 16 * 1024; local <= 256 * 1024; local += 4 * 1024)
            for (int d = 64; d <= 128; d += 64) {
                facl_device_profile small = device_reporting(local, FACL_PATH_NVIDIA_MMA);
                small.nv_compute_major = 9;
                small.bwd_wgmma = 1;
                small.bwd_wgmma_dq_atomic = 1;
                facl_bwd_problem bp;
                memset(&bp, 0, sizeof bp);
                bp.f = problem(d, 16384);
                bp.f.window_left = bp.f.window_right = -1;
                bp.f.dq_atomics = 1;
                facl_bwd_plan plan;
                facl_plan_bwd_program(&bp, &small, NULL, &plan);
                const int det_wgs = expected_wgmma_warpgroups(&small, d, 0, 0, 0);
                const int atomic_wgs = expected_wgmma_warpgroups(&small, d, 0, 1, 0);
                assert_string_equal(plan.program, det_wgs ? "attn_bwd_wgmma" : "attn_bwd_mma");
                assert_int_equal(plan.dq_atomic, atomic_wgs > 0);
                if (det_wgs) assert_int_equal(plan.wgmma_warpgroups, atomic_wgs ? atomic_wgs : det_wgs);
            }
        /* FACL_BWD_DQ_ATOMIC=0 */
        dev.bwd_wgmma_dq_atomic = 0;
        facl_bwd_problem bp;
        memset(&bp, 0, sizeof bp);
        bp.f = problem(128, 16384);
        bp.f.window_left = bp.f.window_right = -1; /* long rows: only the switch says no */
        bp.f.dq_atomics = 1;
        facl_bwd_plan plan;
        facl_plan_bwd_program(&bp, &dev, NULL, &plan);
        assert_int_equal(plan.dq_atomic, 0);
    }
    /* the H200 at d = 128 and 64: two warpgroups (129 and 65 KiB, one group per SM) */
    facl_device_profile dev = device_reporting(48 * 1024, FACL_PATH_NVIDIA_MMA);
    dev.nv_compute_major = 9;
    dev.bwd_wgmma = 1;
    for (int d = 64; d <= 128; d += 64) {
        facl_bwd_problem bp;
        memset(&bp, 0, sizeof bp);
        bp.f = problem(d, 128);
        facl_bwd_plan plan;
        facl_plan_bwd_program(&bp, &dev, NULL, &plan);
        assert_string_equal(plan.program, "attn_bwd_wgmma");
        assert_int_equal(options_value(plan.options, "WARPGROUPS"), 2);
    }
}

/* The KV-cache plan: local memory as declared and within budget, work-groups within the
 * device's limit and exactly chunks x key groups, ROWS covering a GQA group, forced
 * split counts kept, automatic ones filling a GPU and leaving a CPU alone. */
/* Issue 9's decode: one query row per sequence, batch 16, heads_q over 8 kv heads, a
 * dense cache of seqlen_k keys with rows of head_dim (token-major, 16-byte aligned
 * where head_dim % 8 == 0). */
static facl_cache_problem decode_problem(int head_dim, int heads_q, int seqlen_k)
{
    facl_cache_problem p;
    memset(&p, 0, sizeof p);
    p.fwd = problem(head_dim, 1);
    p.fwd.heads_q = heads_q;
    p.fwd.heads_kv = 8;
    p.fwd.batch = 16;
    p.fwd.seqlen_k = seqlen_k;
    p.fwd.k.ss = p.fwd.v.ss = 8 * head_dim;
    p.fwd.k.sh = p.fwd.v.sh = head_dim;
    return p;
}

static void test_cache_plan(void **state)
{
    (void)state;
    const uint64_t reported[3] = {48 * 1024, 32 * 1024, 16 * 1024};
    for (int r = 0; r < 3; ++r)
        for (int t = 0; t < 3; ++t)
            for (int d = 1; d <= FACL_MAX_HEAD_DIM; d += 3)
                for (int group = 1; group <= 32; group *= 2) {
                    facl_device_profile dev = device_reporting(reported[r], FACL_PATH_PORTABLE_GPU);
                    dev.max_work_group_size = 256;
                    dev.compute_units = 132;
                    dev.type = CL_DEVICE_TYPE_GPU;
                    facl_cache_problem p = decode_problem(d, 8 * group, 65536);
                    p.fwd.dtype = k_dtypes[t];
                    facl_cache_plan plan;
                    facl_plan_cache(&p, &dev, NULL, &plan);
                    assert_int_equal(plan.local_bytes, cache_kernel_local_bytes(&plan));
                    assert_true(plan.local_bytes <= dev.local_mem_usable);
                    assert_true(plan.group_size <= dev.max_work_group_size);
                    assert_int_equal(plan.group_size, (size_t)plan.chunks * plan.key_groups);
                    assert_int_equal(plan.rows, group < 8 ? group : 8);
                    /* one wave of 528 groups over 16 x 8 x (row tiles) units */
                    const int units = 128 * ((group + plan.rows - 1) / plan.rows);
                    assert_int_equal(plan.splits, units >= 528 ? 1 : 528 / units);
                    p.num_splits = 7;
                    facl_plan_cache(&p, &dev, NULL, &plan);
                    assert_int_equal(plan.splits, 7);
                    assert_non_null(strstr(plan.options, "-DSPLIT=1"));
                    p.num_splits = 1;
                    facl_plan_cache(&p, &dev, NULL, &plan);
                    assert_int_equal(plan.splits, 1);
                    assert_non_null(strstr(plan.options, "-DSPLIT=0"));
                }
    /* the tensor-core kernel where it applies (16-bit, d % 16 == 0, d <= 128, aligned
     * rows), attn_cache otherwise; local memory as declared either way */
    for (int pa = 0; pa < 4; ++pa)
        for (int t = 0; t < 3; ++t)
            for (int d = 8; d <= FACL_MAX_HEAD_DIM; d += 8) {
                facl_device_profile dev = device_reporting(48 * 1024, k_paths[pa]);
                dev.max_work_group_size = 1024;
                dev.compute_units = 132;
                dev.type = CL_DEVICE_TYPE_GPU;
                facl_cache_problem p = decode_problem(d, 32, 4096);
                p.fwd.dtype = k_dtypes[t];
                facl_cache_plan plan;
                facl_plan_cache(&p, &dev, NULL, &plan);
                /* the smallest tile layout of attn_cache_mma.cl (one warp, one stage) must fit */
                const int emulated = k_paths[pa] == FACL_PATH_MMA_EMULATED;
                const uint64_t mma_bytes = 4 * ((emulated ? 16 * 16 + 16 * 8 : 1) + 1 + 2 * 16) +
                                           2 * (2 * 16 * ((uint64_t)d + 8));
                const int mma = (k_paths[pa] == FACL_PATH_NVIDIA_MMA || emulated) &&
                                k_dtypes[t] != FACL_DTYPE_F32 && d % 16 == 0 && d <= 128 &&
                                mma_bytes <= dev.local_mem_usable;
                assert_string_equal(plan.program, mma ? "attn_cache_mma" : "attn_cache");
                assert_int_equal(plan.local_bytes, cache_kernel_local_bytes(&plan));
                assert_true(plan.local_bytes <= dev.local_mem_usable);
                if (mma) {
                    assert_int_equal(plan.group_size, 32 * (size_t)plan.mma_warps);
                    assert_int_equal(plan.rows, 16);
                    assert_true(plan.mma_stages >= 1 && plan.mma_stages <= 4);
                    /* a requested shape is taken when it fits, else the planner's */
                    const facl_cache_mma_shape four = {4, 2, 0};
                    facl_cache_plan forced;
                    facl_plan_cache(&p, &dev, &four, &forced);
                    assert_int_equal(forced.local_bytes, cache_kernel_local_bytes(&forced));
                    assert_true(forced.local_bytes <= forced.local_budget);
                    if (forced.mma_warps == 4)
                        assert_int_equal(forced.mma_stages, 2);
                    else
                        assert_int_equal(forced.mma_warps, plan.mma_warps);
                }
                /* the CPU variant exactly on portable-cpu: one work-item, no local memory */
                const int cpu = k_paths[pa] == FACL_PATH_PORTABLE_CPU;
                assert_int_equal(plan.cpu, cpu);
                assert_non_null(strstr(plan.options, cpu ? "-DCACHE_CPU=1" : "-DCACHE_CPU=0"));
                if (cpu) {
                    assert_int_equal(plan.group_size, 1);
                    assert_int_equal(plan.local_bytes, 0);
                    assert_int_equal(plan.rows, 4); /* a GQA group of 4 */
                    assert_non_null(strstr(plan.options, "-DCACHE_PREFETCH=1"));
                }
                p.fwd.k.ss = 8 * d + 1; /* unaligned rows: the CUDA-core kernel */
                facl_plan_cache(&p, &dev, NULL, &plan);
                assert_string_equal(plan.program, "attn_cache");
                assert_int_equal(plan.cpu, cpu);
            }
    {
        /* no software prefetch on Oclgrind (it cannot run llvm.prefetch) */
        facl_device_profile og = device_reporting(64 * 1024, FACL_PATH_PORTABLE_CPU);
        og.type = CL_DEVICE_TYPE_CPU;
        snprintf(og.platform_name, sizeof og.platform_name, "Oclgrind");
        const facl_cache_problem p = decode_problem(128, 32, 4096);
        facl_cache_plan plan;
        facl_plan_cache(&p, &og, NULL, &plan);
        assert_int_equal(plan.cpu, 1);
        assert_non_null(strstr(plan.options, "-DCACHE_PREFETCH=0"));
    }
    facl_device_profile cpu = device_reporting(64 * 1024, FACL_PATH_PORTABLE_CPU);
    cpu.compute_units = 16;
    cpu.type = CL_DEVICE_TYPE_CPU;
    assert_int_equal(facl_plan_cache_auto_splits(128, 65536, 16, 4, &cpu), 1);
    assert_int_equal(facl_plan_cache_auto_splits(2, 65536, 16, 4, &cpu), 8);
    assert_int_equal(facl_plan_cache_auto_splits(2, 100, 16, 4, &cpu), 1); /* too few keys */
    /* a GPU of 132 units: waves of 528 groups; decode of 16 x 8 kv heads = 128 units */
    facl_device_profile gpu = device_reporting(48 * 1024, FACL_PATH_NVIDIA_MMA);
    gpu.compute_units = 132;
    gpu.type = CL_DEVICE_TYPE_GPU;
    assert_int_equal(facl_plan_cache_auto_splits(128, 1024, 16, 4, &gpu), 4);   /* one wave */
    assert_int_equal(facl_plan_cache_auto_splits(128, 4096, 16, 4, &gpu), 4);
    assert_int_equal(facl_plan_cache_auto_splits(128, 16384, 16, 4, &gpu), 4);
    assert_int_equal(facl_plan_cache_auto_splits(128, 65536, 16, 4, &gpu), 4);
    assert_int_equal(facl_plan_cache_auto_splits(8, 65536, 16, 4, &gpu), 64);  /* 66, capped */
    assert_int_equal(facl_plan_cache_auto_splits(100, 65536, 16, 4, &gpu), 5); /* 528 / 100 */
    assert_int_equal(facl_plan_cache_auto_splits(128, 600, 16, 4, &gpu), 2);    /* >= 256 keys */
    assert_int_equal(facl_plan_cache_auto_splits(128, 200, 16, 4, &gpu), 1);
    assert_int_equal(facl_plan_cache_auto_splits(528, 65536, 16, 4, &gpu), 1);  /* a wave already */
    assert_int_equal(facl_plan_cache_auto_splits(1, 1 << 20, 16, 4, &gpu), 64); /* at most 64 */
    facl_cache_mma_shape shape = {0, 0, 0};
    assert_int_equal(facl_parse_cache_mma_shape("2,3", &shape), 0);
    assert_int_equal(shape.warps, 2);
    assert_int_equal(shape.stages, 3);
    assert_int_equal(shape.copy, FACL_CACHE_COPY_AUTO);
    assert_int_equal(facl_parse_cache_mma_shape("4,3,bulk", &shape), 0);
    assert_int_equal(shape.warps, 4);
    assert_int_equal(shape.stages, 3);
    assert_int_equal(shape.copy, FACL_CACHE_COPY_BULK);
    assert_int_equal(facl_parse_cache_mma_shape("1,1,async", &shape), 0);
    assert_int_equal(shape.copy, FACL_CACHE_COPY_ASYNC);
    const char *bad[] = {"", "3,2", "16,2", "2", "2,0", "2,5", "2,3x", "a,b", "4,2,1", "2,2,",
                         "2,2,bulkx", "2,2,BULK", "2,2 ,bulk"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i)
        assert_int_equal(facl_parse_cache_mma_shape(bad[i], &shape), -1);
}

/* attn_cache_mma's copies and shapes on NVIDIA: the copy engine where asked for and the
 * device has it (sm_90) or it is emulated, and by default on sm_90 for a dense cache,
 * pages of 256 rows or more, and pages of 16 or more whose units fit one to an SM;
 * cp.async otherwise. Shapes beyond the 48 KiB NVIDIA's OpenCL reports up to
 * facl_mma_local_budget, and the split count of one wave counting the work-groups an SM
 * holds (its shared memory, and its registers: 8 warps of 255 registers). */
static void test_cache_copy_and_budget(void **state)
{
    (void)state;
    const facl_cache_problem p = decode_problem(128, 32, 65536);
    facl_device_profile h200 = device_reporting(48 * 1024, FACL_PATH_NVIDIA_MMA);
    h200.compute_units = 132;
    h200.type = CL_DEVICE_TYPE_GPU;
    h200.vendor = FACL_VENDOR_NVIDIA;
    h200.nv_compute_major = 9;
    facl_device_profile a100 = h200;
    a100.nv_compute_major = 8;
    a100.compute_units = 108;
    facl_device_profile emulated = h200;
    emulated.path = FACL_PATH_MMA_EMULATED;
    const struct {
        const facl_device_profile *dev;
        int page_size, copy, bulk; /* page_size 0: dense */
    } cases[] = {
        {&h200, 0, FACL_CACHE_COPY_AUTO, 1},      {&h200, 16, FACL_CACHE_COPY_AUTO, 1},
        {&h200, 8, FACL_CACHE_COPY_AUTO, 0},      {&h200, 128, FACL_CACHE_COPY_AUTO, 1},
        {&h200, 256, FACL_CACHE_COPY_AUTO, 1},
        {&h200, 1024, FACL_CACHE_COPY_AUTO, 1},   {&h200, 0, FACL_CACHE_COPY_ASYNC, 0},
        {&h200, 256, FACL_CACHE_COPY_ASYNC, 0},   {&h200, 16, FACL_CACHE_COPY_BULK, 1},
        {&a100, 0, FACL_CACHE_COPY_BULK, 0},      {&a100, 0, FACL_CACHE_COPY_AUTO, 0},
        {&emulated, 16, FACL_CACHE_COPY_BULK, 1}, {&emulated, 0, FACL_CACHE_COPY_AUTO, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        const facl_cache_mma_shape shape = {2, 2, cases[i].copy};
        facl_cache_problem q = p;
        q.paged = cases[i].page_size > 0;
        q.page_size = cases[i].page_size;
        facl_cache_plan plan;
        facl_plan_cache(&q, cases[i].dev, &shape, &plan);
        assert_string_equal(plan.program, "attn_cache_mma");
        assert_int_equal(plan.mma_bulk, cases[i].bulk);
        assert_non_null(strstr(plan.options, cases[i].bulk ? "-DCACHE_BULK=1" : "-DCACHE_BULK=0"));
        assert_int_equal(plan.mma_warps, 2); /* the requested shape */
    }
    /* the default on the H200, dense, 128 units: the copy engine, 8 warps x 2 stages
     * (139 KiB at d = 128), one group to an SM, which may take the whole SM less 1 KiB:
     * 132 / 128 = 1 split */
    facl_cache_plan plan;
    facl_plan_cache(&p, &h200, NULL, &plan);
    assert_int_equal(plan.mma_bulk, 1);
    assert_int_equal(plan.mma_warps, 8);
    assert_int_equal(plan.mma_stages, 2);
    assert_int_equal(plan.local_budget, 2 * (facl_mma_local_budget(&h200) + 1024) - 1024);
    assert_true(plan.local_bytes > facl_mma_local_budget(&h200) && plan.local_bytes <= plan.local_budget);
    assert_int_equal(plan.local_bytes, cache_kernel_local_bytes(&plan));
    assert_int_equal(plan.splits, 1);
    /* 256 units (batch 32) do not fit one to an SM: 4 warps x 2 stages (70 KiB: beyond the
     * reported 48 KiB, within the budget of half the SM's 228 KiB less 1 KiB), two to an
     * SM by registers, so one wave of 264 holds them unsplit; with 64 units (batch 8), 264 /
     * 64 = 4 splits of 8-warp groups would be 2 waves: 8 warps, 132 / 64 = 2 splits */
    facl_cache_problem big_batch = p;
    big_batch.fwd.batch = 32;
    facl_plan_cache(&big_batch, &h200, NULL, &plan);
    assert_int_equal(plan.mma_warps, 4);
    assert_int_equal(plan.mma_stages, 2);
    assert_int_equal(plan.local_budget, facl_mma_local_budget(&h200));
    assert_true(plan.local_bytes > h200.local_mem_usable && plan.local_bytes <= plan.local_budget);
    assert_int_equal(plan.local_bytes, cache_kernel_local_bytes(&plan));
    assert_int_equal(plan.splits, 1);
    facl_cache_problem small_batch = p;
    small_batch.fwd.batch = 8;
    facl_plan_cache(&small_batch, &h200, NULL, &plan);
    assert_int_equal(plan.mma_warps, 8);
    assert_int_equal(plan.splits, 2);
    /* pages of 16 whose 128 units fit one to an SM: as a dense cache, the copy engine,
     * 8 warps x 2 stages, one split */
    facl_cache_problem paged = p;
    paged.paged = 1;
    paged.page_size = 16;
    facl_plan_cache(&paged, &h200, NULL, &plan);
    assert_int_equal(plan.mma_bulk, 1);
    assert_int_equal(plan.mma_warps, 8);
    assert_int_equal(plan.mma_stages, 2);
    assert_int_equal(plan.splits, 1);
    /* 256 units on pages of 16: cp.async, 2 warps x 2 stages, four to an SM: 528 / 256 =
     * 2 splits; on pages of 256 the copy engine, 4 warps x 2 stages, two to an SM */
    facl_cache_problem paged_big = big_batch;
    paged_big.paged = 1;
    paged_big.page_size = 16;
    facl_plan_cache(&paged_big, &h200, NULL, &plan);
    assert_int_equal(plan.mma_bulk, 0);
    assert_int_equal(plan.mma_warps, 2);
    assert_int_equal(plan.mma_stages, 2);
    assert_int_equal(plan.splits, 2);
    paged_big.page_size = 256;
    facl_plan_cache(&paged_big, &h200, NULL, &plan);
    assert_int_equal(plan.mma_bulk, 1);
    assert_int_equal(plan.mma_warps, 4);
    assert_int_equal(plan.splits, 1);
    /* 2 warps x 3 stages (53 KiB) asked for: four to an SM (212 of 228 KiB) */
    const facl_cache_mma_shape three = {2, 3, 0};
    facl_plan_cache(&p, &h200, &three, &plan);
    assert_int_equal(plan.mma_stages, 3);
    assert_int_equal(plan.splits, 4);
    /* 2 warps x 4 stages (70 KiB): three to an SM by shared memory, 396 / 128 = 3 */
    const facl_cache_mma_shape four = {2, 4, 0};
    facl_plan_cache(&p, &h200, &four, &plan);
    assert_int_equal(plan.mma_stages, 4);
    assert_int_equal(plan.splits, 3);
    /* 8 warps x 2 stages (139 KiB): one group to an SM, which may then take all of its
     * shared memory less 1 KiB; one split of the 128 units */
    const facl_cache_mma_shape eight = {8, 2, FACL_CACHE_COPY_BULK};
    facl_plan_cache(&p, &h200, &eight, &plan);
    assert_int_equal(plan.mma_warps, 8);
    assert_int_equal(plan.group_size, 256);
    assert_int_equal(plan.local_budget, 2 * (facl_mma_local_budget(&h200) + 1024) - 1024);
    assert_true(plan.local_bytes > facl_mma_local_budget(&h200) && plan.local_bytes <= plan.local_budget);
    assert_int_equal(plan.local_bytes, cache_kernel_local_bytes(&plan));
    assert_int_equal(plan.splits, 1);
    /* ... but 8 x 4 (278 KiB) does not fit even so: the planner's shape (8 x 2) */
    const facl_cache_mma_shape eight_deep = {8, 4, 0};
    facl_plan_cache(&p, &h200, &eight_deep, &plan);
    assert_int_equal(plan.mma_warps, 8);
    assert_int_equal(plan.mma_stages, 2);
    /* beyond the budget (4 warps x 4 stages, 139 KiB): the planner's shape */
    const facl_cache_mma_shape big = {4, 4, 0};
    facl_plan_cache(&big_batch, &h200, &big, &plan);
    assert_int_equal(plan.mma_warps, 4);
    assert_int_equal(plan.mma_stages, 2);
    /* the A100 (no copy engine) keeps 2 x 2 with cp.async */
    facl_plan_cache(&p, &a100, NULL, &plan);
    assert_int_equal(plan.mma_bulk, 0);
    assert_int_equal(plan.mma_warps, 2);
    assert_int_equal(plan.mma_stages, 2);
    /* the emulation keeps to what the device reports: 4 x 2 does not fit there */
    const facl_cache_mma_shape wide = {4, 2, FACL_CACHE_COPY_BULK};
    facl_plan_cache(&p, &emulated, &wide, &plan);
    assert_int_equal(plan.mma_warps, 2);
    assert_int_equal(plan.local_budget, emulated.local_mem_usable);
    facl_plan_cache(&p, &emulated, &eight, &plan);
    assert_int_equal(plan.mma_warps, 2);
    assert_int_equal(plan.local_budget, emulated.local_mem_usable);
}

/* attn_fwd_blocked, the portable GPU default: its local memory as declared and within
 * the device's, its fixed work-group within the device's limit, options the kernel's
 * #error checks accept; the tuned shape where it fits, rows shrunk for short queries,
 * and attn_fwd where no shape fits. */
static void test_blocked_plan(void **state)
{
    (void)state;
    const uint64_t usable[5] = {2000, 16 * 1024, 31 * 1024, 47 * 1024, 63 * 1024};
    const size_t limits[4] = {16, 64, 256, 1024};
    const int seqlens[3] = {1, 17, 1000};
    int blocked = 0, previous = 0;
    for (int u = 0; u < 5; ++u)
        for (int w = 0; w < 4; ++w)
            for (int q = 0; q < 3; ++q)
                for (int d = 1; d <= FACL_MAX_HEAD_DIM; d += 3) {
                    facl_device_profile dev = device(usable[u], limits[w]);
                    facl_fwd_problem p = problem(d, seqlens[q]);
                    facl_fwd_plan plan;
                    facl_plan_fwd_program(&p, &dev, &plan);
                    if (strcmp(plan.kernel, "attn_fwd") == 0) {
                        previous++;
                        continue;
                    }
                    assert_string_equal(plan.kernel, "attn_fwd_blocked");
                    blocked++;
                    const long bm = option_value(&plan, "BLOCK_M"), bn = option_value(&plan, "BLOCK_N");
                    const long tm = option_value(&plan, "TM"), tn = option_value(&plan, "TN");
                    const long keys = option_value(&plan, "CHUNK_KEYS");
                    assert_true(tm % 4 == 0 && tn % 4 == 0 && bm % tm == 0 && bn % tn == 0);
                    assert_true(keys >= 1 && bn % keys == 0);
                    assert_true(option_value(&plan, "CHUNK_D") >= 4);
                    assert_int_equal(plan.block_m, bm);
                    assert_int_equal(plan.block_n, bn);
                    assert_int_equal(plan.fixed_group, (size_t)((bm / tm) * (bn / tn)));
                    assert_true(plan.fixed_group <= limits[w]);
                    assert_int_equal(facl_plan_fwd_group_size(&plan, &p, &dev, 4096), plan.fixed_group);
                    assert_int_equal(plan.local_bytes, kernel_local_bytes(&plan));
                    assert_true(plan.local_bytes <= usable[u]);
                    /* short queries: no more than 16 rows beyond them */
                    assert_true(bm == 16 || bm / 2 < seqlens[q]);
                }
    assert_true(blocked > 0);
    assert_true(previous > 0); /* 2000 bytes cannot hold the smallest shape at d = 256 */

    /* 47 KiB (what NVIDIA reports, less 1 KiB) takes the default shape at every head dim,
     * with 32 dims per q/k step. */
    facl_device_profile nvidia = device(47 * 1024, 1024);
    for (int d = 1; d <= FACL_MAX_HEAD_DIM; ++d) {
        facl_fwd_problem p = problem(d, 1000);
        facl_fwd_plan plan;
        facl_plan_fwd_program(&p, &nvidia, &plan);
        assert_string_equal(plan.kernel, "attn_fwd_blocked");
        char expect[96];
        snprintf(expect, sizeof expect, "-DBLOCK_M=64 -DBLOCK_N=64 -DTM=4 -DTN=4 -DCHUNK_D=%d",
                 d > 16 ? 32 : d > 8 ? 16 : d > 4 ? 8 : 4);
        if (!strstr(plan.options, expect)) fail_msg("d=%d: '%s' lacks '%s'", d, plan.options, expect);
    }
    /* a tuning entry's shape reaches the options */
    facl_device_profile tuned = device(63 * 1024, 1024);
    tuned.tuning.d[FACL_TUNING_D128].blocked_tm = 8;
    tuned.tuning.d[FACL_TUNING_D128].blocked_n = 32;
    facl_fwd_problem p = problem(128, 1000);
    facl_fwd_plan plan;
    facl_plan_fwd_program(&p, &tuned, &plan);
    assert_non_null(strstr(plan.options, "-DBLOCK_M=64 -DBLOCK_N=32 -DTM=8 -DTN=4"));
    assert_int_equal(plan.fixed_group, 8 * 8);
    /* ... and a tuning entry's kernel = 1, as FACL_PORTABLE_KERNEL would */
    tuned.tuning.d[FACL_TUNING_D128].kernel = FACL_TUNING_KERNEL_PREVIOUS;
    facl_plan_fwd_program(&p, &tuned, &plan);
    assert_string_equal(plan.kernel, "attn_fwd");
    tuned.portable_kernel = FACL_TUNING_KERNEL_BLOCKED;
    facl_plan_fwd_program(&p, &tuned, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_blocked");
}

/* Realistic devices: every kernel path, dtype and head dim gets a plan that fits, with
 * local_bytes equal to what the kernel declares. */
static void test_local_memory_every_path(void **state)
{
    (void)state;
    const uint64_t reported[3] = {48 * 1024, /* NVIDIA (what OpenCL reports) */
                                  32 * 1024, /* Oclgrind, many mobile and older GPUs */
                                  64 * 1024 /* AMD */};
    int mma_plans = 0, lane_plans = 0, blocked_plans = 0;
    for (int r = 0; r < 3; ++r)
        for (int pa = 0; pa < 8; ++pa) {
            /* each path with the default portable GPU kernel, then with attn_fwd */
            facl_device_profile dev = device_reporting(reported[r], k_paths[pa % 4]);
            if (pa >= 4) dev = previous_kernel(dev);
            for (int t = 0; t < 3; ++t)
                for (int d = 1; d <= FACL_MAX_HEAD_DIM; ++d) {
                    facl_fwd_problem p = problem(d, 1000);
                    p.dtype = k_dtypes[t];
                    facl_fwd_plan plan;
                    facl_plan_fwd_program(&p, &dev, &plan);
                    const uint64_t bytes = kernel_local_bytes(&plan);
                    if (plan.local_bytes != bytes)
                        fail_msg("%s d=%d dtype %d on %llu bytes: plan says %llu bytes of local "
                                 "memory, the kernel declares %llu",
                                 plan.kernel, d, (int)k_dtypes[t], (unsigned long long)reported[r],
                                 (unsigned long long)plan.local_bytes, (unsigned long long)bytes);
                    if (bytes > dev.local_mem_usable)
                        fail_msg("%s d=%d dtype %d: %llu bytes of local memory, %llu usable",
                                 plan.kernel, d, (int)k_dtypes[t], (unsigned long long)bytes,
                                 (unsigned long long)dev.local_mem_usable);
                    mma_plans += strcmp(plan.kernel, "attn_fwd_mma") == 0;
                    blocked_plans += strcmp(plan.kernel, "attn_fwd_blocked") == 0;
                    if (strcmp(plan.kernel, "attn_fwd") == 0) {
                        /* The lane-sum array holds MAX_GROUP work-items: no group is larger. */
                        lane_plans += plan.lanes > 1;
                        const size_t group = facl_plan_fwd_group_size(&plan, &p, &dev, 4096);
                        assert_true(group <= (size_t)option_value(&plan, "MAX_GROUP"));
                        assert_int_equal(option_value(&plan, "LANES"), plan.lanes);
                        assert_int_equal(option_value(&plan, "BLOCK_N"), plan.block_n);
                    }
                    if (strcmp(plan.kernel, "attn_fwd_mma") == 0)
                        assert_int_equal(plan.fixed_group, 128); /* the 4 warps of SCRATCH_FLOATS */
                }
        }
    assert_true(mma_plans > 0);
    assert_true(lane_plans > 0);
    assert_true(blocked_plans > 0);

    /* The case Oclgrind found: the emulated mma kernel at d=128 needs 40,960 bytes with
     * 64-key tiles, more than a 32 KiB device has; it takes 32-key tiles there (23,552
     * bytes), and 64-key tiles on 48 KiB. */
    facl_fwd_problem p = problem(128, 1000);
    facl_fwd_plan plan;
    facl_device_profile small = device_reporting(32 * 1024, FACL_PATH_MMA_EMULATED);
    facl_plan_fwd_program(&p, &small, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_mma");
    assert_int_equal(plan.block_n, 32);
    assert_int_equal(plan.local_bytes, 23552);
    facl_device_profile nvidia = device_reporting(48 * 1024, FACL_PATH_MMA_EMULATED);
    facl_plan_fwd_program(&p, &nvidia, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_mma");
    assert_int_equal(plan.local_bytes, 40960);
    nvidia.path = FACL_PATH_NVIDIA_MMA;
    facl_plan_fwd_program(&p, &nvidia, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_mma");
}

/* attn_fwd_wgmma (Hopper): forced, every fp16/bf16 head dim on nvidia-mma (with the
 * sm_90a rebuild) and mma-emulated (without); never unless forced;
 * local memory as the kernel declares it and within the budget; a requested shape that
 * does not fit falls back to attn_fwd_mma. */
static void test_wgmma_plan(void **state)
{
    (void)state;
    const facl_kernel_path paths[2] = {FACL_PATH_NVIDIA_MMA, FACL_PATH_MMA_EMULATED};
    int wgmma_plans = 0;
    for (int pa = 0; pa < 2; ++pa)
        for (int mode = FACL_WGMMA_OFF; mode <= FACL_WGMMA_EVERYWHERE; ++mode)
            for (int t = 1; t < 3; ++t)
                for (int d = 1; d <= FACL_MAX_HEAD_DIM; ++d) {
                    facl_device_profile dev = device_reporting(48 * 1024, paths[pa]);
                    dev.nv_compute_major = 9;
                    dev.fwd_wgmma = mode;
                    facl_fwd_problem p = problem(d, 1000);
                    p.dtype = k_dtypes[t];
                    facl_fwd_plan plan;
                    facl_plan_fwd_program(&p, &dev, &plan);
                    const int wanted = mode == FACL_WGMMA_EVERYWHERE;
                    const int emulated = paths[pa] == FACL_PATH_MMA_EMULATED;
                    if (!wanted || facl_wgmma_local_bytes(d, 1, 1, 0, 64, emulated) >
                                       facl_mma_local_budget(&dev)) {
                        /* (the emulation's scratch leaves 48 KiB short above d = 128) */
                        assert_string_equal(plan.kernel, "attn_fwd_mma");
                        continue;
                    }
                    if (strcmp(plan.kernel, "attn_fwd_wgmma") != 0)
                        fail_msg("d=%d path %d mode %d: %s, not attn_fwd_wgmma", d, (int)paths[pa],
                                 mode, plan.kernel);
                    wgmma_plans++;
                    assert_int_equal(plan.local_bytes, kernel_local_bytes(&plan));
                    assert_true(plan.local_bytes <= plan.local_budget);
                    /* two warpgroups: one group per SM, which it may fill */
                    assert_int_equal(plan.local_budget, option_value(&plan, "WARPGROUPS") == 2
                                                            ? facl_mma_sm_budget(&dev)
                                                            : facl_mma_local_budget(&dev));
                    assert_int_equal(plan.fixed_group, 128 * option_value(&plan, "WARPGROUPS"));
                    assert_int_equal(plan.fixed_group / plan.lanes, 64 * option_value(&plan, "WARPGROUPS"));
                    assert_int_equal(option_value(&plan, "WGMMA"), 1);
                    /* 128-key tiles with two warpgroups up to d = 128 where two buffers of
                     * each fit the whole SM */
                    const int wide = option_value(&plan, "WARPGROUPS") == 2 && d <= 128 &&
                                     option_value(&plan, "WG_PIPE") >= 2 &&
                                     facl_wgmma_local_bytes(d, 2, (int)option_value(&plan, "Q_REGS"), 2, 128,
                                                            emulated) <= facl_mma_sm_budget(&dev);
                    assert_int_equal(option_value(&plan, "BLOCK_N"), wide ? 128 : 64);
                    assert_int_equal(plan.block_n, option_value(&plan, "BLOCK_N"));
                    assert_int_equal(option_value(&plan, "M_TILES"), 1);
                    assert_int_equal(strstr(plan.options, "-DFACL_SM90A=1") != NULL,
                                     paths[pa] == FACL_PATH_NVIDIA_MMA);
                    assert_int_equal(option_value(&plan, "MMA_EMULATE"),
                                     paths[pa] == FACL_PATH_MMA_EMULATED);
                }
    assert_true(wgmma_plans > 0);

    /* the planner's shapes on the H200's budget: two warpgroups, q in registers */
    facl_device_profile dev = hopper(FACL_WGMMA_EVERYWHERE, 0, 0);
    facl_fwd_problem p = problem(256, 1000);
    facl_fwd_plan plan;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_wgmma");
    assert_int_equal(option_value(&plan, "WARPGROUPS"), 2);
    assert_int_equal(option_value(&plan, "Q_REGS"), 1);
    assert_int_equal(option_value(&plan, "WG_PIPE"), 0); /* two or three of each tile: 128+ KiB */
    assert_int_equal(plan.local_bytes, 2 * 64 * 256 * 2 + 4);
    assert_int_equal(option_value(&plan, "BLOCK_N"), 64); /* 128 keys only up to d = 128 */
    /* d <= 128: 128-key tiles, three of each in the whole SM (192 KiB); 64 keys where
     * FACL_FWD_WGMMA_BLOCK_N=64 asks, three of each in half the SM */
    facl_fwd_problem p128 = problem(128, 1000);
    facl_plan_fwd_program(&p128, &dev, &plan);
    assert_int_equal(option_value(&plan, "WG_PIPE"), 3);
    assert_int_equal(option_value(&plan, "BLOCK_N"), 128);
    assert_int_equal(plan.block_n, 128);
    assert_int_equal(plan.local_bytes, 6 * 128 * 128 * 2 + 4);
    dev.wgmma_block_n = 64;
    facl_plan_fwd_program(&p128, &dev, &plan);
    assert_int_equal(option_value(&plan, "WG_PIPE"), 3);
    assert_int_equal(option_value(&plan, "BLOCK_N"), 64);
    assert_int_equal(plan.local_bytes, 6 * 64 * 128 * 2 + 4);
    dev.wgmma_block_n = 0;
    /* q in local memory beside them (FACL_FWD_WGMMA_SHAPE=2,0,3): 224 KiB, just fits */
    dev.wgmma_warpgroups = 2;
    dev.wgmma_pipe = 3;
    facl_plan_fwd_program(&p128, &dev, &plan);
    assert_int_equal(option_value(&plan, "BLOCK_N"), 128);
    assert_int_equal(option_value(&plan, "WG_PIPE"), 3);
    assert_int_equal(plan.local_bytes, 6 * 128 * 128 * 2 + 128 * 128 * 2 + 4);
    /* one warpgroup: 64 keys */
    dev.wgmma_warpgroups = 1;
    dev.wgmma_q_regs = 1;
    dev.wgmma_pipe = 2;
    facl_plan_fwd_program(&p128, &dev, &plan);
    assert_int_equal(option_value(&plan, "BLOCK_N"), 64);
    dev.wgmma_warpgroups = dev.wgmma_q_regs = dev.wgmma_pipe = 0;
    /* q in local memory needs 16-byte q rows for its copies too */
    dev.wgmma_warpgroups = 1;
    dev.wgmma_q_regs = 0;
    dev.wgmma_pipe = 0;
    p.q.offset = 4;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_wgmma");
    assert_int_equal(option_value(&plan, "Q_REGS"), 0);
    assert_int_equal(option_value(&plan, "VEC_LOADS"), 0);
    p.q.offset = 0;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_int_equal(option_value(&plan, "VEC_LOADS"), 1);
    /* two warpgroups (one group per SM) may take the whole SM: 128 KiB */
    dev.wgmma_warpgroups = 2;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_wgmma");
    assert_int_equal(plan.local_bytes, 2 * 64 * 256 * 2 + 128 * 256 * 2 + 4);
    /* a requested shape beyond even that (3 buffers each: 256 KiB): attn_fwd_mma instead */
    dev.wgmma_pipe = 3;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_mma");
    dev.wgmma_warpgroups = dev.wgmma_q_regs = dev.wgmma_pipe = 0;
    /* fp32 never */
    dev.fwd_wgmma = FACL_WGMMA_EVERYWHERE;
    p.dtype = FACL_DTYPE_F32;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_blocked");
}

/* attn_fwd_wgmma warp-specialised (FACL_FWD_WGMMA_WS, profile.wgmma_ws): on the device a
 * copier warpgroup more (384 work-items, registers traded: the launch goes by the compiled
 * size), its barriers counted, 128 rows per group; at d > 128 q in local memory with two
 * buffers each in the whole SM; where rows are not 16-byte aligned, or emulated, no
 * copier; the ping-pong only with WS_PINGPONG's value 2. */
static void test_wgmma_ws_plan(void **state)
{
    (void)state;
    facl_device_profile dev = hopper(FACL_WGMMA_EVERYWHERE, 1, 0);
    facl_fwd_problem p = problem(128, 1000);
    facl_fwd_plan plan;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_wgmma");
    assert_int_equal(option_value(&plan, "WG_WS"), 1);
    assert_int_equal(option_value(&plan, "WS_PINGPONG"), 0);
    assert_int_equal(option_value(&plan, "WG_PIPE"), 3);
    assert_int_equal(plan.fixed_group, 384);
    assert_int_equal(plan.moves_registers, 1);
    assert_int_equal(plan.block_m, 128);
    assert_int_equal(option_value(&plan, "BLOCK_N"), 128);
    assert_int_equal(plan.local_bytes, 6 * 128 * 128 * 2 + 4 + (4 * 3 + 2) * 8);
    assert_int_equal(plan.local_bytes, kernel_local_bytes(&plan));
    dev.wgmma_ws = 2;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_int_equal(option_value(&plan, "WS_PINGPONG"), 1);
    /* d = 256: q staged, two buffers each, 192 KiB */
    facl_fwd_problem p256 = problem(256, 1000);
    facl_plan_fwd_program(&p256, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_wgmma");
    assert_int_equal(option_value(&plan, "Q_REGS"), 0);
    assert_int_equal(option_value(&plan, "WG_PIPE"), 2);
    assert_int_equal(option_value(&plan, "WG_WS"), 1);
    assert_int_equal(plan.local_bytes, 4 * 64 * 256 * 2 + 128 * 256 * 2 + 4 + (4 * 2 + 2) * 8);
    assert_int_equal(plan.local_bytes, kernel_local_bytes(&plan));
    /* unaligned k rows: the plain kernel (its copies go through registers) */
    p.k.offset = 4;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_wgmma");
    assert_int_equal(option_value(&plan, "WG_WS"), 0);
    assert_int_equal(plan.fixed_group, 256);
    assert_int_equal(plan.moves_registers, 0);
    p.k.offset = 0;
    /* emulated: WG_WS builds the plain pipelined kernel, no copier */
    facl_device_profile emu = device_reporting(48 * 1024, FACL_PATH_MMA_EMULATED);
    emu.fwd_wgmma = FACL_WGMMA_EVERYWHERE;
    emu.wgmma_ws = 1;
    facl_plan_fwd_program(&p, &emu, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_wgmma");
    assert_int_equal(plan.fixed_group, 128u * (size_t)option_value(&plan, "WARPGROUPS"));
    assert_int_equal(plan.moves_registers, 0);
    assert_int_equal(plan.local_bytes, kernel_local_bytes(&plan));
}

/* The copier through the tensor copy engine (profile.wgmma_tma, WS_TMA with the 128-byte
 * swizzle): only where the context has the maps and there is a copier (device, aligned
 * rows), only for dense batches without seqused_k; q's map where q is staged (d > 128);
 * the same local memory as the cp.async copier. */
static void test_wgmma_tma_plan(void **state)
{
    (void)state;
    facl_device_profile dev = hopper(FACL_WGMMA_EVERYWHERE, 2, 0);
    facl_fwd_problem p = problem(128, 1000);
    facl_fwd_plan plan;
    facl_plan_fwd_program(&p, &dev, &plan); /* no maps in the context: cp.async */
    assert_int_equal(option_value(&plan, "WG_WS"), 1);
    assert_null(strstr(plan.options, "WS_TMA"));
    assert_int_equal(plan.tma, 0);
    const uint64_t cp_async_bytes = plan.local_bytes;
    dev.wgmma_tma = 1;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_int_equal(option_value(&plan, "WS_TMA"), 1);
    assert_int_equal(option_value(&plan, "WG_SW128"), 1);
    assert_int_equal(plan.tma, 1);
    assert_int_equal(plan.tma_q, 0); /* d = 128: q in registers */
    assert_int_equal(plan.local_bytes, cp_async_bytes);
    assert_int_equal(plan.local_bytes, kernel_local_bytes(&plan));
    facl_fwd_problem p256 = problem(256, 1000);
    facl_plan_fwd_program(&p256, &dev, &plan);
    assert_int_equal(option_value(&plan, "Q_REGS"), 0);
    assert_int_equal(plan.tma, 1);
    assert_int_equal(plan.tma_q, 1);
    /* varlen and seqused_k: cp.async */
    facl_fwd_problem v = p;
    v.varlen = 1;
    facl_plan_fwd_program(&v, &dev, &plan);
    assert_int_equal(option_value(&plan, "WG_WS"), 1);
    assert_int_equal(plan.tma, 0);
    assert_null(strstr(plan.options, "WS_TMA"));
    facl_fwd_problem u = p;
    u.seqused = (cl_mem)&u; /* any non-NULL handle: planning never reads it */
    facl_plan_fwd_program(&u, &dev, &plan);
    assert_int_equal(plan.tma, 0);
    /* no copier (unaligned k rows; the emulation): no engine */
    p.k.offset = 4;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_int_equal(option_value(&plan, "WG_WS"), 0);
    assert_int_equal(plan.tma, 0);
    p.k.offset = 0;
    facl_device_profile emu = device_reporting(48 * 1024, FACL_PATH_MMA_EMULATED);
    emu.fwd_wgmma = FACL_WGMMA_EVERYWHERE;
    emu.wgmma_ws = 2;
    emu.wgmma_tma = 1;
    facl_plan_fwd_program(&p, &emu, &plan);
    assert_int_equal(plan.tma, 0);
    assert_null(strstr(plan.options, "WS_TMA"));
}

/* FACL_WGMMA_WHERE_FASTER (a Hopper context whose Hopper kernel passed its probe): that
 * kernel, warp-specialised with the engine, from 1k rows and keys at d <= 64 and 512 above;
 * attn_fwd_mma below,
 * and for what the engine does not take (varlen,
 * seqused_k, unaligned rows) or without the engine; never on another path. */
static void test_wgmma_where_faster_plan(void **state)
{
    (void)state;
    facl_device_profile dev = hopper(FACL_WGMMA_WHERE_FASTER, 2, 1);
    /* head dim, query rows (and keys), the rows and keys it needs */
    static const struct {
        int d, rows, needed;
    } cases[] = {{64, 2048, 1024}, {64, 1024, 1024}, {64, 1023, 1024}, {64, 512, 1024},
                 {128, 1024, 512}, {128, 512, 512}, {128, 511, 512}, {80, 512, 512},
                 {72, 512, 512}, {256, 512, 512}, {256, 511, 512}, {192, 1024, 512},
                 {32, 100000, 1024}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        const int hopper = cases[i].rows >= cases[i].needed;
        facl_fwd_problem p = problem(cases[i].d, cases[i].rows);
        p.seqlen_k = cases[i].rows;
        facl_fwd_plan plan;
        facl_plan_fwd_program(&p, &dev, &plan);
        if (strcmp(plan.kernel, hopper ? "attn_fwd_wgmma" : "attn_fwd_mma") != 0)
            fail_msg("d=%d rows %d: %s", cases[i].d, cases[i].rows, plan.kernel);
        if (hopper) {
            assert_int_equal(plan.tma, 1);
            assert_int_equal(option_value(&plan, "WS_PINGPONG"), 1);
        }
        /* one key short of what it needs: attn_fwd_mma */
        p.seqlen_k = cases[i].needed - 1;
        facl_plan_fwd_program(&p, &dev, &plan);
        assert_string_equal(plan.kernel, "attn_fwd_mma");
    }
    facl_fwd_problem p = problem(128, 4096);
    p.seqlen_k = 4096;
    facl_fwd_problem v = p, u = p, a = p;
    v.varlen = 1;
    u.seqused = (cl_mem)&u;
    a.q.offset = 4;
    const facl_fwd_problem *others[3] = {&v, &u, &a};
    facl_fwd_plan plan;
    for (int i = 0; i < 3; ++i) {
        facl_plan_fwd_program(others[i], &dev, &plan);
        assert_string_equal(plan.kernel, "attn_fwd_mma");
    }
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_wgmma");
    dev.wgmma_tma = 0; /* no engine (a view it cannot take: fwd_launch.c replans so) */
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_mma");
    dev.wgmma_tma = 1;
    p.dtype = FACL_DTYPE_F32;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_not_equal(plan.kernel, "attn_fwd_wgmma");
    facl_device_profile emu = dev;
    emu.path = FACL_PATH_MMA_EMULATED;
    p.dtype = FACL_DTYPE_F16;
    facl_plan_fwd_program(&p, &emu, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_mma");
}

/* Row blocks per Hopper work-group (plan.blocks_per_group): where keys x head_dim stay
 * within 2^20, the most, up to 4 at d <= 64 and 2 above, whose last wave of groups leaves
 * the SMs no emptier than one block per group does (within 2%); never more than a
 * sequence has; as FACL_FWD_BLOCKS_PER_GROUP
 * asks (profile.fwd_blocks_per_group); 1 on every other kernel. */
static void test_wgmma_blocks_per_group(void **state)
{
    (void)state;
    facl_device_profile dev = hopper(FACL_WGMMA_EVERYWHERE, 2, 1);
    dev.compute_units = 132;
    /* head dim, query rows, batch x heads, the blocks each group takes; 128-row blocks */
    static const struct {
        int d, rows, heads, expect;
    } cases[] = {
        {64, 1024, 64, 4},  /* 512 groups in 4 waves (97% full), 128 in one (97%) */
        {64, 1024, 50, 4},  /* 3 blocks would leave the second wave 57% full: 4 (76%, as 1) */
        {128, 1024, 64, 2}, /* at most 2 above d = 64 */
        {256, 4096, 16, 2}, /* keys x d = 2^20 */
        {256, 8192, 16, 1}, /* past it: one block per group */
        {128, 16384, 4, 1},
        {128, 384, 44, 1},  /* 3 blocks: 132 groups fill one wave, 88 two thirds of it */
        {64, 128, 500, 1},  /* one block to a sequence */
        {64, 256, 500, 2},  /* two */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        facl_fwd_problem p = problem(cases[i].d, cases[i].rows);
        p.seqlen_k = cases[i].rows;
        p.heads_q = p.heads_kv = cases[i].heads;
        facl_fwd_plan plan;
        facl_plan_fwd_program(&p, &dev, &plan);
        assert_string_equal(plan.kernel, "attn_fwd_wgmma");
        assert_int_equal(plan.block_m, 128);
        if (plan.blocks_per_group != cases[i].expect)
            fail_msg("d=%d rows %d heads %d: %d blocks per group, expected %d", cases[i].d,
                     cases[i].rows, cases[i].heads, plan.blocks_per_group, cases[i].expect);
        /* the batch counts as heads do */
        p.heads_q = p.heads_kv = 1;
        p.batch = cases[i].heads;
        facl_plan_fwd_program(&p, &dev, &plan);
        assert_int_equal(plan.blocks_per_group, cases[i].expect);
    }
    facl_fwd_problem p = problem(128, 1024);
    p.seqlen_k = 1024;
    facl_fwd_plan plan;
    dev.fwd_blocks_per_group = 3; /* FACL_FWD_BLOCKS_PER_GROUP=3 */
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_wgmma");
    assert_int_equal(plan.blocks_per_group, 3);
    dev.fwd_wgmma = FACL_WGMMA_OFF; /* attn_fwd_mma: one block per group whatever is asked */
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_mma");
    assert_int_equal(plan.blocks_per_group, 1);
    facl_device_profile cpu = device_reporting(48 * 1024, FACL_PATH_PORTABLE_CPU);
    cpu.fwd_blocks_per_group = 3;
    facl_plan_fwd_program(&p, &cpu, &plan);
    assert_int_equal(plan.blocks_per_group, 1);
}

/* attn_fwd_mma's shape as FACL_FWD_MMA_SHAPE asks (profile.mma_*): its q tile and its
 * k/v buffers counted, q's rows in the 16-byte check where q is staged, and the default
 * shape where the asked one does not fit the budget. */
static void test_mma_requested_shape(void **state)
{
    (void)state;
    facl_device_profile dev = device_reporting(48 * 1024, FACL_PATH_NVIDIA_MMA);
    dev.nv_compute_major = 9;
    facl_fwd_problem p = problem(128, 1000);
    facl_fwd_plan plan;
    /* the default at d = 128 on sm_90 (113 KiB): two row tiles, q staged, 64-key tiles,
     * k and v double-buffered: 104 KiB */
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_mma");
    assert_int_equal(option_value(&plan, "KV_STAGES"), 2);
    assert_int_equal(plan.local_bytes, 2 * 2 * 64 * 136 * 2 + 128 * 136 * 2 + 4);
    assert_int_equal(plan.local_bytes, kernel_local_bytes(&plan));
    dev.mma_m_tiles = 2;
    dev.mma_q_local = 1;
    dev.mma_block_n = 64;
    dev.mma_kv_stages = 1;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_mma");
    assert_int_equal(option_value(&plan, "M_TILES"), 2);
    assert_int_equal(option_value(&plan, "Q_LOCAL"), 1);
    assert_int_equal(option_value(&plan, "KV_STAGES"), 1);
    assert_int_equal(plan.block_n, 64);
    assert_int_equal(128 / plan.lanes, 128); /* rows per group */
    assert_int_equal(plan.local_bytes, 2 * 64 * 136 * 2 + 128 * 136 * 2 + 4);
    assert_int_equal(plan.local_bytes, kernel_local_bytes(&plan));
    assert_int_equal(option_value(&plan, "VEC_LOADS"), 1);
    p.q.offset = 4; /* q's copies need 16-byte rows too, k's and v's do not change */
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_int_equal(option_value(&plan, "VEC_LOADS"), 0);
    dev.mma_q_local = 0; /* ... unless q stays in registers */
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_int_equal(option_value(&plan, "VEC_LOADS"), 1);
    /* the output's 16-byte pieces (O_VEC): its own rows' alignment only */
    assert_int_equal(option_value(&plan, "O_VEC"), 1);
    p.out.offset = 4;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_int_equal(option_value(&plan, "O_VEC"), 0);
    assert_int_equal(option_value(&plan, "VEC_LOADS"), 1);
    p.out.offset = 0;
    assert_int_equal(plan.local_bytes, 2 * 64 * 136 * 2 + 4);
    /* 2 row tiles, q staged, 128-key tiles at d = 256: 203 KiB, over the 113 KiB budget:
     * the default shape there (one row tile, q staged, 64-key tiles, one buffer: two
     * would take 165 KiB) */
    dev.mma_q_local = 1;
    dev.mma_block_n = 128;
    p.head_dim = 256;
    p.q.offset = 0;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_mma");
    assert_int_equal(option_value(&plan, "M_TILES"), 1);
    assert_int_equal(option_value(&plan, "Q_LOCAL"), 1);
    assert_int_equal(option_value(&plan, "KV_STAGES"), 1);
    assert_int_equal(plan.block_n, 64);
    assert_int_equal(plan.local_bytes, kernel_local_bytes(&plan));
}

/* The shapes tests/oclgrind/test_forward_tiny.c's mma-emulated cases rely on (Oclgrind's
 * 32 KiB): d = 16 two row tiles, q staged, 64-key tiles, two k/v buffers; d = 80 q in
 * registers and one buffer; d = 128 32-key tiles; d = 256 no shape (portable-gpu). */
static void test_mma_shapes_on_oclgrind(void **state)
{
    (void)state;
    const facl_device_profile dev = device_reporting(32 * 1024, FACL_PATH_MMA_EMULATED);
    const struct {
        int d, m_tiles, q_local, block_n, kv_stages;
    } want[] = {{16, 2, 1, 64, 2}, {80, 1, 0, 64, 1}, {128, 1, 0, 32, 1}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; ++i) {
        facl_fwd_problem p = problem(want[i].d, 1000);
        facl_fwd_plan plan;
        facl_plan_fwd_program(&p, &dev, &plan);
        assert_string_equal(plan.kernel, "attn_fwd_mma");
        assert_int_equal(option_value(&plan, "M_TILES"), want[i].m_tiles);
        assert_int_equal(option_value(&plan, "Q_LOCAL"), want[i].q_local);
        assert_int_equal(plan.block_n, want[i].block_n);
        assert_int_equal(option_value(&plan, "KV_STAGES"), want[i].kv_stages);
    }
    facl_fwd_problem p = problem(256, 1000);
    facl_fwd_plan plan;
    facl_plan_fwd_program(&p, &dev, &plan);
    assert_string_not_equal(plan.kernel, "attn_fwd_mma");
}

/* Devices with too little local memory: a fast path falls back to a portable kernel
 * rather than plan its kernel over budget, attn_fwd_blocked to attn_fwd; a plan still
 * over budget (attn_fwd's smallest tile) is refused before any compile or enqueue,
 * saying why. */
static void test_local_memory_too_small(void **state)
{
    (void)state;
    const uint64_t usable[5] = {512, 1024, 3000, 8192, 20000};
    facl_context *fake = calloc(1, sizeof *fake); /* no OpenCL objects: nothing may use them */
    assert_non_null(fake);
    int refused = 0, fell_back = 0;
    for (int u = 0; u < 5; ++u)
        for (int pa = 0; pa < 4; ++pa) {
            facl_device_profile dev = device(usable[u], 1024);
            dev.path = k_paths[pa];
            snprintf(dev.device_name, sizeof dev.device_name, "a device with %llu bytes",
                     (unsigned long long)usable[u]);
            for (int t = 0; t < 3; ++t)
                for (int d = 1; d <= FACL_MAX_HEAD_DIM; d += 5) {
                    facl_fwd_problem p = problem(d, 1000);
                    p.dtype = k_dtypes[t];
                    facl_fwd_plan plan;
                    facl_plan_fwd_program(&p, &dev, &plan);
                    const uint64_t bytes = kernel_local_bytes(&plan);
                    assert_int_equal(plan.local_bytes, bytes);
                    const int mma_path = dev.path == FACL_PATH_NVIDIA_MMA ||
                                         dev.path == FACL_PATH_MMA_EMULATED;
                    if (strcmp(plan.kernel, "attn_fwd_mma") == 0 ||
                        strcmp(plan.kernel, "attn_fwd_blocked") == 0) {
                        assert_true(bytes <= usable[u]); /* never chosen over budget */
                    } else if (mma_path && p.dtype != FACL_DTYPE_F32 && d <= 128) {
                        assert_string_equal(plan.kernel, "attn_fwd");
                        fell_back++;
                    }
                    if (bytes <= usable[u]) continue;
                    /* Over budget: only attn_fwd at its smallest tile may get here. */
                    assert_string_equal(plan.kernel, "attn_fwd");
                    assert_int_equal(plan.block_n, 1);
                    fake->profile = dev;
                    cl_kernel fwd = NULL;
                    facl_fwd_plan got;
                    const facl_status st = facl_fwd_programs_get(fake, &p, &fwd, NULL, &got);
                    if (st != FACL_ERROR_UNSUPPORTED)
                        fail_msg("an over-budget plan (%llu of %llu bytes) was not refused: %s",
                                 (unsigned long long)bytes, (unsigned long long)usable[u],
                                 facl_status_string(st));
                    assert_null(fwd);
                    if (!strstr(facl_last_error(), "local memory"))
                        fail_msg("refusal without a reason: '%s'", facl_last_error());
                    refused++;
                }
        }
    free(fake);
    assert_true(refused > 0);
    assert_true(fell_back > 0);
}

int main(int argc, char **argv)
{
    g_argc = argc;
    g_argv = argv;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernel_sources_match_count),
        cmocka_unit_test(test_local_memory_every_path),
        cmocka_unit_test(test_cache_plan),
        cmocka_unit_test(test_cache_copy_and_budget),
        cmocka_unit_test(test_local_memory_too_small),
        cmocka_unit_test(test_tiles_fit_local_memory),
        cmocka_unit_test(test_bwd_plan),
        cmocka_unit_test(test_bwd_mma_plan),
        cmocka_unit_test(test_bwd_mma_requested_shape),
        cmocka_unit_test(test_bwd_wgmma_plan),
        cmocka_unit_test(test_features_select_macros),
        cmocka_unit_test(test_rows_within_limits),
        cmocka_unit_test(test_cpu_path),
        cmocka_unit_test(test_cpu_register_rows),
        cmocka_unit_test(test_cpu_packing),
        cmocka_unit_test(test_blocked_plan),
        cmocka_unit_test(test_mma_path),
        cmocka_unit_test(test_wgmma_plan),
        cmocka_unit_test(test_wgmma_ws_plan),
        cmocka_unit_test(test_wgmma_tma_plan),
        cmocka_unit_test(test_wgmma_blocks_per_group),
        cmocka_unit_test(test_wgmma_where_faster_plan),
        cmocka_unit_test(test_mma_requested_shape),
        cmocka_unit_test(test_mma_shapes_on_oclgrind),
        cmocka_unit_test(test_lanes_for_wide_heads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
