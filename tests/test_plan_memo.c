/* The plan memo (src/plan_memo.h) without a device: a plan it hands back is always the
 * plan the planner makes afresh for the same call (forward, KV cache, backward). Checked
 * for varied problems and profiles, for a change of every planner input (it must reach
 * the plan where the planner uses it), for the inputs the planner does not read (they
 * share a slot), for eviction, for random call sequences and for threads sharing one
 * memo. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
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
#include "plan.h"
#include "plan_memo.h"

/* A buffer handle the planners only compare with NULL. */
#define BUFFER(n) ((cl_mem)(uintptr_t)(0x1000 + (n)))

static facl_device_profile profile(facl_kernel_path path)
{
    facl_device_profile p;
    memset(&p, 0, sizeof p);
    p.path = path;
    p.type = path == FACL_PATH_PORTABLE_CPU ? CL_DEVICE_TYPE_CPU : CL_DEVICE_TYPE_GPU;
    p.local_mem_reported = 48 * 1024;
    p.local_mem_usable = 47 * 1024;
    p.max_work_group_size = 1024;
    p.max_alloc = (uint64_t)1 << 32;
    p.native_float_width = 8;
    p.compute_units = 16;
    snprintf(p.platform_name, sizeof p.platform_name, "Portable Computing Language");
    return p;
}

/* A dense fp16 problem: 2 sequences, 8 query heads over 2 kv heads, rows 16-byte aligned. */
static facl_fwd_problem fwd_problem(int head_dim, int seqlen_q)
{
    facl_fwd_problem p;
    memset(&p, 0, sizeof p);
    p.dtype = FACL_DTYPE_F16;
    p.head_dim = head_dim;
    p.batch = 2;
    p.heads_q = 8;
    p.heads_kv = 2;
    p.seqlen_q = seqlen_q;
    p.seqlen_k = 300;
    const facl_view q = {BUFFER(1), 0, (int64_t)seqlen_q * 8 * head_dim, 8 * head_dim, head_dim};
    const facl_view kv = {BUFFER(2), 0, 300 * 2 * head_dim, 2 * head_dim, head_dim};
    p.q = p.out = q;
    p.out.buffer = BUFFER(4);
    p.k = p.v = kv;
    p.v.buffer = BUFFER(3);
    p.scale = 0.125f;
    p.window_left = p.window_right = -1;
    return p;
}

/* A decode call over a dense cache of 1024 keys. */
static facl_cache_problem cache_problem(int head_dim)
{
    facl_cache_problem p;
    memset(&p, 0, sizeof p);
    p.fwd = fwd_problem(head_dim, 1);
    p.fwd.seqlen_k = 1024;
    p.fwd.k.sb = p.fwd.v.sb = 1024 * 2 * head_dim;
    p.seqlens = BUFFER(5);
    p.batch_cache = 2;
    return p;
}

static int fwd_plans_equal(const facl_fwd_plan *a, const facl_fwd_plan *b)
{
    return strcmp(a->kernel, b->kernel) == 0 && strcmp(a->options, b->options) == 0 &&
           a->block_n == b->block_n && a->rows_per_item == b->rows_per_item &&
           a->register_rows == b->register_rows && a->packed_kv == b->packed_kv &&
           a->packed_tiles == b->packed_tiles && a->packed_bytes == b->packed_bytes &&
           a->lanes == b->lanes && a->group_rows == b->group_rows && a->block_m == b->block_m &&
           a->fixed_group == b->fixed_group && a->local_bytes == b->local_bytes &&
           a->local_budget == b->local_budget && a->moves_registers == b->moves_registers &&
           a->tma == b->tma && a->tma_q == b->tma_q &&
           a->blocks_per_group == b->blocks_per_group;
}

static int cache_plans_equal(const facl_cache_plan *a, const facl_cache_plan *b)
{
    return strcmp(a->program, b->program) == 0 && strcmp(a->options, b->options) == 0 &&
           a->cpu == b->cpu && a->rows == b->rows && a->key_groups == b->key_groups &&
           a->keys_per_step == b->keys_per_step && a->chunks == b->chunks &&
           a->warp_shuffle == b->warp_shuffle && a->mma_warps == b->mma_warps &&
           a->mma_stages == b->mma_stages && a->group_size == b->group_size &&
           a->splits == b->splits && a->merge_in_kernel_ok == b->merge_in_kernel_ok &&
           a->units == b->units && a->local_bytes == b->local_bytes;
}

static int bwd_plans_equal(const facl_bwd_plan *a, const facl_bwd_plan *b)
{
    int same = strcmp(a->program, b->program) == 0 && strcmp(a->options, b->options) == 0 &&
               a->dq_atomic == b->dq_atomic && a->block_m == b->block_m &&
               a->block_n == b->block_n && memcmp(&a->mma, &b->mma, sizeof a->mma) == 0 &&
               a->local_bytes == b->local_bytes && a->local_budget == b->local_budget &&
               a->requested_shape == b->requested_shape;
    for (int i = 0; i < 3; ++i)
        same = same && strcmp(a->kernels[i], b->kernels[i]) == 0 && a->spans[i] == b->spans[i] &&
               a->fixed_group[i] == b->fixed_group[i] &&
               a->items_per_group[i] == b->items_per_group[i];
    return same;
}

/* Through the memo, checked against a fresh plan. */
static facl_fwd_plan memo_fwd(facl_plan_memo *m, const facl_fwd_problem *p,
                              const facl_device_profile *dev)
{
    facl_fwd_plan got, fresh;
    facl_plan_fwd_memo(m, p, dev, &got);
    facl_plan_fwd_program(p, dev, &fresh);
    if (!fwd_plans_equal(&got, &fresh))
        fail_msg("memo: %s [%s], fresh: %s [%s]", got.kernel, got.options, fresh.kernel,
                 fresh.options);
    return got;
}

static facl_cache_plan memo_cache(facl_plan_memo *m, const facl_cache_problem *p,
                                  const facl_device_profile *dev, const facl_cache_mma_shape *shape)
{
    facl_cache_plan got, fresh;
    facl_plan_cache_memo(m, p, dev, shape, &got);
    facl_plan_cache(p, dev, shape, &fresh);
    if (!cache_plans_equal(&got, &fresh))
        fail_msg("memo: %s [%s], fresh: %s [%s]", got.program, got.options, fresh.program,
                 fresh.options);
    return got;
}

static facl_bwd_plan memo_bwd(facl_plan_memo *m, const facl_bwd_problem *p,
                              const facl_device_profile *dev, const facl_bwd_mma_shape *requested)
{
    facl_bwd_plan got, fresh;
    facl_plan_bwd_memo(m, p, dev, requested, &got);
    facl_plan_bwd_program(p, dev, requested, &fresh);
    if (!bwd_plans_equal(&got, &fresh))
        fail_msg("memo: %s [%s], fresh: %s [%s]", got.program, got.options, fresh.program,
                 fresh.options);
    return got;
}

static facl_bwd_problem bwd_problem(int head_dim, int seqlen)
{
    facl_bwd_problem p;
    memset(&p, 0, sizeof p);
    p.f = fwd_problem(head_dim, seqlen);
    p.f.lse.buffer = BUFFER(20);
    p.dout = p.dq = p.f.q;
    p.dout.buffer = BUFFER(21);
    p.dq.buffer = BUFFER(22);
    p.dk = p.dv = p.f.k;
    p.dk.buffer = BUFFER(23);
    p.dv.buffer = BUFFER(24);
    return p;
}

static int used_slots(const facl_plan_memo *m)
{
    int n = 0;
    for (int i = 0; i < FACL_PLAN_MEMO_SLOTS; ++i) n += m->slots[i].last_use != 0;
    return n;
}

static int setup(void **state)
{
    facl_plan_memo *m = malloc(sizeof *m);
    if (!m || facl_plan_memo_init(m) != FACL_SUCCESS) return -1;
    *state = m;
    return 0;
}

static int teardown(void **state)
{
    facl_plan_memo_release(*state);
    free(*state);
    return 0;
}

static const facl_kernel_path k_paths[4] = {FACL_PATH_PORTABLE_GPU, FACL_PATH_PORTABLE_CPU,
                                            FACL_PATH_NVIDIA_MMA, FACL_PATH_MMA_EMULATED};
static const facl_dtype k_dtypes[3] = {FACL_DTYPE_F32, FACL_DTYPE_F16, FACL_DTYPE_BF16};

/* Every path, dtype and head-dim class, short and long queries, each call twice (the
 * second from the memo), with more shapes than slots in between. */
static void test_same_as_fresh(void **state)
{
    facl_plan_memo *m = *state;
    for (int round = 0; round < 2; ++round)
        for (int pa = 0; pa < 4; ++pa) {
            facl_device_profile dev = profile(k_paths[pa]);
            dev.nv_compute_major = 9;
            for (int t = 0; t < 3; ++t)
                for (int d = 8; d <= 256; d *= 2)
                    for (int sq = 1; sq <= 1024; sq *= 32) {
                        facl_fwd_problem p = fwd_problem(d, sq);
                        p.dtype = k_dtypes[t];
                        const facl_fwd_plan first = memo_fwd(m, &p, &dev);
                        const facl_fwd_plan again = memo_fwd(m, &p, &dev);
                        assert_true(fwd_plans_equal(&first, &again));
                        facl_cache_problem c = cache_problem(d);
                        c.fwd.dtype = k_dtypes[t];
                        c.fwd.seqlen_q = sq;
                        memo_cache(m, &c, &dev, NULL);
                        memo_cache(m, &c, &dev, NULL);
                    }
        }
    assert_int_equal(used_slots(m), FACL_PLAN_MEMO_SLOTS);
}

/* `variant` differs from `base` in one planner input: through a memo that holds base's
 * plan it gets its own fresh plan, which differs from base's (and holds `expect` in its
 * options where given); base's plan is still base's afterwards. */
static void fwd_variant(facl_plan_memo *m, const facl_fwd_problem *base,
                        const facl_device_profile *base_dev, const facl_fwd_problem *variant,
                        const facl_device_profile *variant_dev, const char *expect)
{
    const facl_fwd_plan a = memo_fwd(m, base, base_dev);
    const facl_fwd_plan b = memo_fwd(m, variant, variant_dev);
    if (fwd_plans_equal(&a, &b)) fail_msg("the change does not reach the plan: %s", b.options);
    if (expect && (!strstr(b.options, expect) || strstr(a.options, expect)))
        fail_msg("'%s' expected in [%s], not in [%s]", expect, b.options, a.options);
    const facl_fwd_plan again = memo_fwd(m, base, base_dev);
    assert_true(fwd_plans_equal(&a, &again));
}

static void fwd_problem_variant(facl_plan_memo *m, const facl_fwd_problem *base,
                                const facl_fwd_problem *variant, const facl_device_profile *dev,
                                const char *expect)
{
    fwd_variant(m, base, dev, variant, dev, expect);
}

/* Each input of the forward planner's key, on a path where it decides something. */
static void test_fwd_problem_inputs(void **state)
{
    facl_plan_memo *m = *state;
    const facl_device_profile gpu = profile(FACL_PATH_PORTABLE_GPU);
    const facl_device_profile cpu = profile(FACL_PATH_PORTABLE_CPU);
    const facl_device_profile mma = profile(FACL_PATH_MMA_EMULATED);
    const facl_fwd_problem base = fwd_problem(64, 128);
    facl_fwd_problem v;

    v = base, v.head_dim = 128;
    fwd_problem_variant(m, &base, &v, &gpu, "-DHEAD_DIM=128 ");
    v = base, v.dtype = FACL_DTYPE_BF16;
    fwd_problem_variant(m, &base, &v, &gpu, "-DFACL_DTYPE=2 ");
    v = base, v.dtype = FACL_DTYPE_F32; /* no tensor cores for fp32 */
    fwd_problem_variant(m, &base, &v, &mma, "-DFACL_DTYPE=0 ");
    v = base, v.varlen = 1;
    fwd_problem_variant(m, &base, &v, &gpu, "-DIS_VARLEN=1 ");
    v = base, v.softcap = 30.0f;
    fwd_problem_variant(m, &base, &v, &gpu, "-DHAS_SOFTCAP=1 ");
    v = base, v.alibi.buffer = BUFFER(6);
    fwd_problem_variant(m, &base, &v, &gpu, "-DHAS_ALIBI=1 ");
    v = base, v.dropout_p = 0.1f;
    fwd_problem_variant(m, &base, &v, &gpu, "-DHAS_DROPOUT=1 ");
    v = base, v.seqused = BUFFER(7);
    fwd_problem_variant(m, &base, &v, &mma, "-DHAS_SEQUSED=1 ");

    /* row alignment decides the tensor-core kernel's 16-byte copies (VEC_LOADS) */
    v = base, v.k.offset = 4;
    fwd_problem_variant(m, &base, &v, &mma, "-DVEC_LOADS=0 ");
    v = base, v.v.ss += 1;
    fwd_problem_variant(m, &base, &v, &mma, "-DVEC_LOADS=0 ");
    v = base, v.q.sh = 68; /* q is staged in local memory (Q_LOCAL=1) */
    fwd_problem_variant(m, &base, &v, &mma, "-DVEC_LOADS=0 ");
    v = base, v.k.sb = 4;
    fwd_problem_variant(m, &base, &v, &mma, "-DVEC_LOADS=0 ");
    /* ... and whether the output leaves in 16-byte pieces (O_VEC) */
    v = base, v.out.ss += 1;
    fwd_problem_variant(m, &base, &v, &mma, "-DO_VEC=0 ");
    v = base, v.out.offset = 4;
    fwd_problem_variant(m, &base, &v, &mma, "-DO_VEC=0 ");
    v = fwd_problem(72, 128), v.k.sh = 4; /* q, k, v all unaligned where d % 8 != 0 too */
    facl_fwd_problem d72 = fwd_problem(72, 128);
    fwd_problem_variant(m, &d72, &v, &mma, "-DVEC_LOADS=0 ");

    /* query rows: attn_fwd_blocked's rows per group, attn_fwd_rows's packing */
    v = base, v.seqlen_q = 1;
    fwd_problem_variant(m, &base, &v, &gpu, "-DBLOCK_M=16 ");
    fwd_problem_variant(m, &base, &v, &cpu, "-DPACKED_KV=0");
    /* the packed buffer's tiles and bytes: keys, sequences, kv heads, varlen keys */
    v = base, v.seqlen_k = 1000;
    fwd_problem_variant(m, &base, &v, &cpu, NULL);
    v = base, v.batch = 3;
    fwd_problem_variant(m, &base, &v, &cpu, NULL);
    v = base, v.heads_kv = 4;
    fwd_problem_variant(m, &base, &v, &cpu, NULL);
    /* query heads: how many row blocks each Hopper work-group takes (blocks_per_group) */
    facl_device_profile hopper = mma;
    hopper.fwd_wgmma = FACL_WGMMA_EVERYWHERE;
    const facl_fwd_problem rows = fwd_problem(64, 1024);
    v = rows, v.heads_q = 6;
    fwd_problem_variant(m, &rows, &v, &hopper, NULL);
    facl_fwd_problem varlen = base;
    varlen.varlen = 1;
    varlen.total_k = 600;
    v = varlen, v.total_k = 6000;
    fwd_problem_variant(m, &varlen, &v, &cpu, NULL);
}

/* What the planner does not read shares one plan: buffers (other than which are given),
 * scale, windows, dropout's seed and offset, the lse view, the output view's strides
 * while its rows stay 16-byte aligned. */
static void test_fwd_unread_inputs_share_a_slot(void **state)
{
    facl_plan_memo *m = *state;
    const facl_device_profile dev = profile(FACL_PATH_MMA_EMULATED);
    const facl_fwd_problem base = fwd_problem(64, 128);
    const facl_fwd_plan a = memo_fwd(m, &base, &dev);
    facl_fwd_problem v = base;
    v.q.buffer = BUFFER(11);
    v.k.buffer = BUFFER(12);
    v.v.buffer = BUFFER(13);
    v.out.buffer = BUFFER(14);
    v.out.ss = 8 * 40;
    v.lse.buffer = BUFFER(15);
    v.probs.buffer = BUFFER(16);
    v.cu_q = BUFFER(17);
    v.total_q = 77;
    v.scale = 1.0f;
    v.window_left = 5;
    v.window_right = 0;
    v.align_top_left = 1;
    v.seed = 1234;
    v.offset = 99;
    v.dq_atomics = 1;
    const facl_fwd_plan b = memo_fwd(m, &v, &dev);
    assert_true(fwd_plans_equal(&a, &b));
    assert_int_equal(used_slots(m), 1);
}

/* The profile's fields, those read from the environment at context creation included:
 * each reaches the plan, and the memo never mixes profiles. */
static void test_fwd_profile_inputs(void **state)
{
    facl_plan_memo *m = *state;
    const facl_fwd_problem p = fwd_problem(64, 128);
    const facl_device_profile gpu = profile(FACL_PATH_PORTABLE_GPU);
    const facl_device_profile cpu = profile(FACL_PATH_PORTABLE_CPU);
    const facl_device_profile mma = profile(FACL_PATH_MMA_EMULATED);
    facl_device_profile v;

    /* the probe plans on the context's own profile with another path, then restores it */
    v = gpu, v.path = FACL_PATH_MMA_EMULATED;
    fwd_variant(m, &p, &gpu, &p, &v, "-DMMA_EMULATE=1");
    v = mma, v.path = FACL_PATH_NVIDIA_MMA; /* the emulation's scratch is gone */
    fwd_variant(m, &p, &mma, &p, &v, "-DMMA_EMULATE=0");
    /* FACL_FWD_MMA_SHAPE, FACL_FWD_WGMMA, FACL_FWD_WGMMA_SHAPE */
    v = mma, v.mma_m_tiles = 1, v.mma_q_local = 0, v.mma_block_n = 32, v.mma_kv_stages = 1;
    fwd_variant(m, &p, &mma, &p, &v, "-DM_TILES=1 -DQ_LOCAL=0 -DBLOCK_N=32 -DKV_STAGES=1 ");
    v = mma, v.fwd_wgmma = FACL_WGMMA_EVERYWHERE;
    fwd_variant(m, &p, &mma, &p, &v, "-DWGMMA=1 ");
    facl_device_profile wgmma = v;
    v.wgmma_warpgroups = 1, v.wgmma_q_regs = 0, v.wgmma_pipe = 0;
    fwd_variant(m, &p, &wgmma, &p, &v, "-DWARPGROUPS=1 -DQ_REGS=0 -DWG_PIPE=0 ");
    /* FACL_PORTABLE_KERNEL, FACL_CPU_PACK, a tuning entry or override file */
    v = gpu, v.portable_kernel = FACL_TUNING_KERNEL_PREVIOUS;
    fwd_variant(m, &p, &gpu, &p, &v, "-DLANES=");
    v = cpu, v.cpu_pack = FACL_CPU_PACK_NEVER;
    fwd_variant(m, &p, &cpu, &p, &v, "-DPACKED_KV=0");
    v = cpu, v.tuning.d[FACL_TUNING_D64].cpu_rows = 32;
    fwd_variant(m, &p, &cpu, &p, &v, "-DROWS=32 ");
    /* the device: vector width, local memory, work-group limit, compute capability */
    v = cpu, v.native_float_width = 16;
    fwd_variant(m, &p, &cpu, &p, &v, "-DRB=8 ");
    v = gpu, v.local_mem_usable = 8 * 1024;
    fwd_variant(m, &p, &gpu, &p, &v, NULL);
    v = gpu, v.max_work_group_size = 64;
    fwd_variant(m, &p, &gpu, &p, &v, NULL);
    facl_device_profile nvidia = mma;
    nvidia.path = FACL_PATH_NVIDIA_MMA;
    v = nvidia, v.nv_compute_major = 9;
    fwd_variant(m, &p, &nvidia, &p, &v, NULL);
}

/* The same for the KV-cache planner. */
static void cache_variant(facl_plan_memo *m, const facl_cache_problem *base,
                          const facl_device_profile *base_dev, const facl_cache_mma_shape *base_shape,
                          const facl_cache_problem *variant, const facl_device_profile *variant_dev,
                          const facl_cache_mma_shape *variant_shape, const char *expect)
{
    const facl_cache_plan a = memo_cache(m, base, base_dev, base_shape);
    const facl_cache_plan b = memo_cache(m, variant, variant_dev, variant_shape);
    if (cache_plans_equal(&a, &b)) fail_msg("the change does not reach the plan: %s", b.options);
    if (expect && (!strstr(b.options, expect) || strstr(a.options, expect)))
        fail_msg("'%s' expected in [%s], not in [%s]", expect, b.options, a.options);
    const facl_cache_plan again = memo_cache(m, base, base_dev, base_shape);
    assert_true(cache_plans_equal(&a, &again));
}

static void test_cache_inputs(void **state)
{
    facl_plan_memo *m = *state;
    const facl_device_profile gpu = profile(FACL_PATH_PORTABLE_GPU);
    const facl_device_profile cpu = profile(FACL_PATH_PORTABLE_CPU);
    facl_device_profile mma = profile(FACL_PATH_MMA_EMULATED);
    mma.local_mem_usable = 100 * 1024;
    const facl_cache_problem base = cache_problem(128);
    facl_cache_problem v;
#define SAME_DEVICE(dev, expect) cache_variant(m, &base, &dev, NULL, &v, &dev, NULL, expect)
    v = base, v.fwd.head_dim = 64;
    SAME_DEVICE(gpu, "-DHEAD_DIM=64 ");
    v = base, v.fwd.dtype = FACL_DTYPE_F32;
    SAME_DEVICE(mma, "-DCACHE_MMA=0 ");
    v = base, v.fwd.varlen = 1;
    SAME_DEVICE(gpu, "-DIS_VARLEN=1 ");
    v = base, v.fwd.softcap = 30.0f;
    SAME_DEVICE(gpu, "-DHAS_SOFTCAP=1 ");
    v = base, v.fwd.alibi.buffer = BUFFER(6);
    SAME_DEVICE(gpu, "-DHAS_ALIBI=1 ");
    v = base, v.fwd.seqused = BUFFER(7);
    SAME_DEVICE(gpu, "-DHAS_SEQUSED=1 ");
    v = base, v.paged = 1;
    SAME_DEVICE(gpu, "-DIS_PAGED=1 ");
    v = base, v.seqlens = NULL;
    SAME_DEVICE(gpu, "-DHAS_SEQLENS_BUF=0 ");
    v = base, v.batch_idx = BUFFER(8);
    SAME_DEVICE(gpu, "-DHAS_BATCH_IDX=1 ");
    v = base, v.leftpad = BUFFER(9);
    SAME_DEVICE(gpu, "-DHAS_LEFTPAD=1 ");
    v = base, v.k_new.buffer = BUFFER(10);
    SAME_DEVICE(gpu, "-DHAS_NEW=1 ");
    v = base, v.cu_new = BUFFER(11);
    SAME_DEVICE(gpu, "-DNEW_VARLEN=1 ");
    v = base, v.cos.buffer = BUFFER(12);
    SAME_DEVICE(gpu, "-DHAS_ROTARY=1 ");
    v = base, v.key_source = FACL_KEYS_CU_SEQLENS_K;
    SAME_DEVICE(gpu, "-DKEYS_FROM_CU_K=1 ");
    v = base, v.num_splits = 1;
    SAME_DEVICE(gpu, "-DSPLIT=0 ");
    v = base, v.num_splits = 3;
    SAME_DEVICE(cpu, NULL); /* the split count itself */
    v = base, v.fwd.k.ss += 1;
    SAME_DEVICE(mma, "-DALIGNED_KV=0 ");
    v = base, v.fwd.v.offset = 4;
    SAME_DEVICE(gpu, "-DALIGNED_KV=0 ");
    v = base, v.fwd.heads_q = 2; /* the GQA group: rows per tile */
    SAME_DEVICE(gpu, "-DROWS=1 ");
    v = base, v.fwd.seqlen_q = 4;
    SAME_DEVICE(gpu, "-DROWS=8 ");
    /* automatic splits: sequences, kv heads and keys */
    v = base, v.fwd.batch = 16;
    SAME_DEVICE(cpu, NULL);
    v = base, v.fwd.heads_kv = 1, v.fwd.heads_q = 4;
    SAME_DEVICE(cpu, NULL);
    v = base, v.fwd.seqlen_k = 64;
    SAME_DEVICE(gpu, NULL);
#undef SAME_DEVICE
    /* the requested shape (FACL_CACHE_MMA_SHAPE) */
    const facl_cache_mma_shape one = {1, 1, 0};
    cache_variant(m, &base, &mma, NULL, &base, &mma, &one, "-DCACHE_WARPS=1 -DCACHE_STAGES=1 ");
    /* the profile: the probe's verdict, the platform, the compute units, the path */
    facl_device_profile nvidia = mma;
    nvidia.path = FACL_PATH_NVIDIA_MMA;
    facl_device_profile d = nvidia;
    d.cache_mma_off = 1;
    cache_variant(m, &base, &nvidia, NULL, &base, &d, NULL, "-DCACHE_MMA=0 ");
    d = cpu;
    snprintf(d.platform_name, sizeof d.platform_name, "Oclgrind");
    cache_variant(m, &base, &cpu, NULL, &base, &d, NULL, "-DCACHE_PREFETCH=0");
    d = gpu, d.compute_units = 1; /* one wave holds every unit: no splits */
    cache_variant(m, &base, &gpu, NULL, &base, &d, NULL, "-DSPLIT=0 ");
    d = gpu, d.path = FACL_PATH_MMA_EMULATED;
    cache_variant(m, &base, &gpu, NULL, &base, &d, NULL, "-DCACHE_MMA=1 ");
    /* the copy asked for, the compute capability, the page size and the compute units
     * (sm_90: the copy engine for a dense cache, pages of 256 rows or more, and pages of 16
     * or more whose units fit one to an SM) */
    const facl_cache_mma_shape bulk = {2, 2, FACL_CACHE_COPY_BULK};
    const facl_cache_mma_shape two = {2, 2, 0};
    cache_variant(m, &base, &mma, &two, &base, &mma, &bulk, "-DCACHE_BULK=1 ");
    facl_device_profile hopper = nvidia;
    hopper.nv_compute_major = 9;
    cache_variant(m, &base, &nvidia, &two, &base, &hopper, &two, "-DCACHE_BULK=1 ");
    facl_cache_problem small_pages = base, large_pages = base;
    small_pages.paged = large_pages.paged = 1;
    small_pages.page_size = 8;
    large_pages.page_size = 256;
    cache_variant(m, &small_pages, &hopper, &two, &large_pages, &hopper, &two, "-DCACHE_BULK=1 ");
    facl_cache_problem pages_16 = small_pages;
    pages_16.page_size = 16;
    facl_device_profile few_units = hopper; /* 4 units over 2 SMs: not one to an SM */
    few_units.compute_units = 2;
    cache_variant(m, &pages_16, &few_units, &two, &pages_16, &hopper, &two, "-DCACHE_BULK=1 ");
}

/* The same for the backward planner. */
static void bwd_variant(facl_plan_memo *m, const facl_bwd_problem *base,
                        const facl_device_profile *base_dev, const facl_bwd_mma_shape *base_req,
                        const facl_bwd_problem *variant, const facl_device_profile *variant_dev,
                        const facl_bwd_mma_shape *variant_req, const char *expect)
{
    const facl_bwd_plan a = memo_bwd(m, base, base_dev, base_req);
    const facl_bwd_plan b = memo_bwd(m, variant, variant_dev, variant_req);
    if (bwd_plans_equal(&a, &b)) fail_msg("the change does not reach the plan: %s", b.options);
    if (expect && (!strstr(b.options, expect) || strstr(a.options, expect)))
        fail_msg("'%s' expected in [%s], not in [%s]", expect, b.options, a.options);
    const facl_bwd_plan again = memo_bwd(m, base, base_dev, base_req);
    assert_true(bwd_plans_equal(&a, &again));
}

static void test_bwd_inputs(void **state)
{
    facl_plan_memo *m = *state;
    facl_device_profile mma = profile(FACL_PATH_MMA_EMULATED);
    mma.local_mem_usable = 100 * 1024;
    const facl_device_profile gpu = profile(FACL_PATH_PORTABLE_GPU);
    const facl_bwd_problem base = bwd_problem(64, 128);
    facl_bwd_problem v;
#define SAME_DEVICE(dev, expect) bwd_variant(m, &base, &dev, NULL, &v, &dev, NULL, expect)
    v = base, v.f.head_dim = 128;
    SAME_DEVICE(mma, "-DHEAD_DIM=128 ");
    v = base, v.f.dtype = FACL_DTYPE_F32;
    SAME_DEVICE(mma, "-DBLOCK_M=");
    v = base, v.f.softcap = 30.0f;
    SAME_DEVICE(gpu, "-DHAS_SOFTCAP=1 ");
    v = base, v.f.alibi.buffer = BUFFER(6);
    SAME_DEVICE(gpu, "-DHAS_ALIBI=1 ");
    v = base, v.f.dropout_p = 0.1f;
    SAME_DEVICE(mma, "-DHAS_DROPOUT=1 ");
    v = base, v.f.seqused = BUFFER(7);
    SAME_DEVICE(gpu, "-DHAS_SEQUSED=1 ");
    v = base, v.f.varlen = 1;
    SAME_DEVICE(mma, "-DIS_VARLEN=1 ");
    v = base, v.dout.ss += 1;
    SAME_DEVICE(mma, "-DVEC_LOADS=0 ");
    v = base, v.f.q.offset = 4;
    SAME_DEVICE(mma, "-DVEC_LOADS=0 ");
    v = base, v.f.v.sh = 4;
    SAME_DEVICE(mma, "-DVEC_LOADS=0 ");
    /* the gradients' rows decide their 32-bit pair stores */
    v = base, v.dq.offset = 4;
    SAME_DEVICE(mma, "-DGRAD_PAIRS=0");
    v = base, v.dk.ss += 1;
    SAME_DEVICE(mma, "-DGRAD_PAIRS=0");
    v = base, v.dv.sb = 4;
    SAME_DEVICE(mma, "-DGRAD_PAIRS=0");
#undef SAME_DEVICE
    /* atomic dq: the problem allows it and the context takes it (FACL_BWD_DQ_ATOMIC=1) */
    facl_device_profile atomic = mma;
    atomic.bwd_dq_atomic = 1;
    v = base, v.f.dq_atomics = 1;
    bwd_variant(m, &base, &atomic, NULL, &v, &atomic, NULL, "-DDQ_ATOMIC=1");
    bwd_variant(m, &v, &mma, NULL, &v, &atomic, NULL, "-DDQ_ATOMIC=1");
    /* the probe's verdict: the copy of the profile that a failed probe plans with */
    facl_device_profile off = mma;
    off.bwd_mma_off = 1;
    bwd_variant(m, &base, &mma, NULL, &base, &off, NULL, "-DBLOCK_M=");
    /* the path: portable-cpu's -w */
    facl_device_profile cpu = gpu;
    cpu.path = FACL_PATH_PORTABLE_CPU;
    bwd_variant(m, &base, &gpu, NULL, &base, &cpu, NULL, " -w ");
    /* FACL_BWD_MMA_SHAPE */
    const facl_bwd_mma_shape shape = {2, 32, 32, 1, 2, 32, 1};
    bwd_variant(m, &base, &mma, NULL, &base, &mma, &shape, "-DKV_WARPS=2 -DKV_KEYS=32 -DKV_ROWS=32 ");
}

/* A forward and a cache plan never stand in for each other, even where the forward key's
 * bytes are the start of the cache key's (built so here). */
static void test_planners_apart(void **state)
{
    facl_plan_memo *m = *state;
    const facl_device_profile dev = profile(FACL_PATH_PORTABLE_GPU);
    facl_cache_problem c = cache_problem(128);
    c.fwd.heads_q = c.fwd.heads_kv = 1;
    facl_fwd_problem f = fwd_problem(128, 1);
    f.heads_q = f.heads_kv = 1, f.seqlen_k = 1024; /* total_k 0: where the cache key has varlen 0 */
    f.dropout_p = 0.1f;                          /* kv_aligned = 1 */
    f.k.offset = f.v.offset = 4;                 /* batch_idx = 0, leftpad = 0 */
    f.out.offset = 4;                            /* k_new = 0 */
    facl_fwd_plan_key fk;
    facl_cache_plan_key ck;
    facl_fwd_plan_key_of(&f, &fk);
    facl_cache_plan_key_of(&c, NULL, &ck);
    assert_memory_equal(&fk, &ck, sizeof fk);
    for (int i = 0; i < 3; ++i) {
        memo_fwd(m, &f, &dev);
        memo_cache(m, &c, &dev, NULL);
    }
    assert_int_equal(used_slots(m), 2);
}

/* Past FACL_PLAN_MEMO_SLOTS shapes the least recently used goes; a shape in use stays. */
static void test_eviction(void **state)
{
    facl_plan_memo *m = *state;
    const facl_device_profile dev = profile(FACL_PATH_PORTABLE_CPU);
    const facl_fwd_problem hot = fwd_problem(64, 1);
    facl_fwd_plan_key hot_key;
    facl_fwd_plan_key_of(&hot, &hot_key);
    for (int i = 0; i < 5 * FACL_PLAN_MEMO_SLOTS; ++i) {
        memo_fwd(m, &hot, &dev);
        const facl_fwd_problem cold = fwd_problem(64, 2 + i);
        memo_fwd(m, &cold, &dev);
        assert_true(used_slots(m) <= FACL_PLAN_MEMO_SLOTS);
        int found = 0;
        for (int s = 0; s < FACL_PLAN_MEMO_SLOTS; ++s)
            found += m->slots[s].last_use &&
                     memcmp(&m->slots[s].key.fwd, &hot_key, sizeof hot_key) == 0;
        assert_int_equal(found, 1);
    }
    assert_int_equal(used_slots(m), FACL_PLAN_MEMO_SLOTS);
}

/* A small pool of problems and profiles: random calls, so that hits, misses and
 * evictions interleave. */
enum { POOL = 24, POOL_DEVICES = 3 };

typedef struct pool {
    facl_fwd_problem fwd[POOL];
    facl_cache_problem cache[POOL];
    facl_bwd_problem bwd[POOL];
    facl_device_profile dev[POOL_DEVICES];
    facl_fwd_plan fwd_plan[POOL][POOL_DEVICES];     /* fresh */
    facl_cache_plan cache_plan[POOL][POOL_DEVICES]; /* fresh */
    facl_bwd_plan bwd_plan[POOL][POOL_DEVICES];     /* fresh */
} pool;

static pool *make_pool(void)
{
    pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    static const int dims[4] = {64, 72, 128, 256};
    for (int i = 0; i < POOL; ++i) {
        p->fwd[i] = fwd_problem(dims[i % 4], i % 3 == 0 ? 1 : 16 * i);
        p->fwd[i].dtype = k_dtypes[i % 3];
        p->fwd[i].softcap = i % 5 == 0 ? 30.0f : 0.0f;
        p->fwd[i].k.offset = i % 7 == 0 ? 4 : 0;
        p->cache[i] = cache_problem(dims[i % 4]);
        p->cache[i].fwd.dtype = k_dtypes[(i + 1) % 3];
        p->cache[i].paged = i % 2;
        p->cache[i].num_splits = i % 4;
        p->bwd[i] = bwd_problem(dims[(i + 2) % 4], 8 * i);
        p->bwd[i].f.dtype = k_dtypes[(i + 2) % 3];
        p->bwd[i].f.dq_atomics = i % 2;
    }
    p->dev[0] = profile(FACL_PATH_PORTABLE_CPU);
    p->dev[1] = profile(FACL_PATH_MMA_EMULATED);
    p->dev[2] = profile(FACL_PATH_PORTABLE_GPU);
    for (int i = 0; i < POOL; ++i)
        for (int d = 0; d < POOL_DEVICES; ++d) {
            facl_plan_fwd_program(&p->fwd[i], &p->dev[d], &p->fwd_plan[i][d]);
            facl_plan_cache(&p->cache[i], &p->dev[d], NULL, &p->cache_plan[i][d]);
            facl_plan_bwd_program(&p->bwd[i], &p->dev[d], NULL, &p->bwd_plan[i][d]);
        }
    return p;
}

static unsigned next_random(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* One call of the pool through the memo; 0 when its plan is not the fresh one. */
static int pool_call(const pool *p, facl_plan_memo *m, unsigned *seed)
{
    const unsigned r = next_random(seed);
    const int i = (int)(r % POOL), d = (int)(r / POOL % POOL_DEVICES);
    const unsigned planner = r / (POOL * POOL_DEVICES) % 3;
    if (planner == 0) {
        facl_fwd_plan plan;
        facl_plan_fwd_memo(m, &p->fwd[i], &p->dev[d], &plan);
        return fwd_plans_equal(&plan, &p->fwd_plan[i][d]);
    }
    if (planner == 1) {
        facl_bwd_plan plan;
        facl_plan_bwd_memo(m, &p->bwd[i], &p->dev[d], NULL, &plan);
        return bwd_plans_equal(&plan, &p->bwd_plan[i][d]);
    }
    facl_cache_plan plan;
    facl_plan_cache_memo(m, &p->cache[i], &p->dev[d], NULL, &plan);
    return cache_plans_equal(&plan, &p->cache_plan[i][d]);
}

static void test_random_calls(void **state)
{
    facl_plan_memo *m = *state;
    pool *p = make_pool();
    assert_non_null(p);
    unsigned seed = 1;
    for (int call = 0; call < 20000; ++call)
        if (!pool_call(p, m, &seed)) fail_msg("call %d: a plan that is not the fresh one", call);
    free(p);
}

/* Threads sharing one memo (as they share a context): every plan fresh, with the pool
 * three times the slots so that they keep replacing each other's entries. */
enum { THREADS = 8, THREAD_CALLS = 20000 };

typedef struct worker {
    const pool *pool;
    facl_plan_memo *memo;
    unsigned seed;
    int wrong;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (int call = 0; call < THREAD_CALLS; ++call) w->wrong += !pool_call(w->pool, w->memo, &w->seed);
    return NULL;
}

static void test_threads(void **state)
{
    facl_plan_memo *m = *state;
    pool *p = make_pool();
    assert_non_null(p);
    worker w[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; ++t) {
        w[t] = (worker){p, m, 1000u + (unsigned)t, 0};
        assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
    }
    int wrong = 0;
    for (int t = 0; t < THREADS; ++t) {
        pthread_join(th[t], NULL);
        wrong += w[t].wrong;
    }
    free(p);
    assert_int_equal(wrong, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_as_fresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fwd_problem_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fwd_unread_inputs_share_a_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fwd_profile_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bwd_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_planners_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
