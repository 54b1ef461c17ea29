/* Variant and geometry of the KV-cache kernels. */
#include "cache_plan.h"

#include <stdio.h>
#include <string.h>

#include "cache_params.h"
#include "kernel_params.h"
#include "plan.h"

/* Work-items per work-group the kernel aims at: four warps on NVIDIA, two wavefronts on
 * AMD; PoCL runs a group as a loop, where the size only sets the vector width. */
#define TARGET_GROUP 128
/* Work-groups of the cache kernels a GPU compute unit runs at once, at most, as planned: on the
 * H200 (2026-11-29, docs/PERFORMANCE.md) the tensor-core kernel's groups ran 4 to a
 * multiprocessor, and a decode split into exactly one wave of them ran fastest: a wave
 * with a few groups left over costs nearly a whole wave (9 splits of 128 units ran at
 * 0.6x the speed of 8), and further full waves ran slower than one (2 warps x 2 stages:
 * 3.9 TB/s with 4 splits at 64k keys, 3.2 with 8). */
#define GPU_GROUPS_PER_CU 4
/* A split keeps at least this many keys, so that its fixed costs (its first copies'
 * latency, its share of the merge) stay small next to its reads. */
#define MIN_KEYS_PER_SPLIT 256

static uint64_t local_bytes(int rows, int key_groups, int kps, int chunks)
{
    const uint64_t floats = (uint64_t)key_groups * kps * rows * chunks + /* lane sums */
                            (uint64_t)key_groups * kps * rows +         /* scores */
                            2u * (uint64_t)key_groups * rows +           /* softmax states */
                            (uint64_t)key_groups * chunks * 8;           /* output sums */
    return floats * 4u;
}

int facl_plan_cache_auto_splits(int64_t units, int64_t keys, int keys_per_step,
                                int groups_per_cu, const facl_device_profile *profile)
{
    const int64_t cus = profile->compute_units ? profile->compute_units : 1;
    int64_t splits;
    if (profile->type & CL_DEVICE_TYPE_CPU) {
        /* one work-group per core; a split keeps at least 4 steps of keys */
        if (units <= 0 || units >= cus) return 1;
        splits = (cus + units - 1) / units;
        const int64_t by_keys = keys / ((int64_t)keys_per_step * 4);
        if (splits > by_keys) splits = by_keys;
    } else {
        /* one wave: as many splits as one wave of work-groups holds */
        const int64_t wave = cus * (groups_per_cu > 0 ? groups_per_cu : 1);
        if (units <= 0 || units >= wave) return 1;
        splits = wave / units;
        int64_t min_keys = (int64_t)keys_per_step * 4;
        if (min_keys < MIN_KEYS_PER_SPLIT) min_keys = MIN_KEYS_PER_SPLIT;
        if (splits > keys / min_keys) splits = keys / min_keys;
    }
    if (splits > FACL_CACHE_MAX_AUTO_SPLITS) splits = FACL_CACHE_MAX_AUTO_SPLITS;
    return splits < 1 ? 1 : (int)splits;
}

uint64_t facl_cache_workspace_floats(uint64_t rows, uint64_t heads, uint64_t head_dim,
                                     int splits)
{
    const uint64_t n = (uint64_t)(splits > 0 ? splits : 0) * rows * heads * (head_dim + 1);
    return n ? n : 1;
}

/* attn_cache_mma.cl's local arrays: the emulation scratch (a warp's
 * MMA_SCRATCH_PER_WARP = 16 * 16 + 16 * 8 floats each, else 1), the merge flag (one int),
 * the warps' row maxima and normalisers, and each warp's ring of `stages` key and value
 * tiles (16 rows of head_dim + 8 16-bit elements each), in which the warps park their
 * 16 fp32 output rows at the end (never larger than the tiles: the kernel checks), and
 * a 64-bit barrier per warp and stage (the copy engine's). */
static uint64_t mma_local_bytes(int head_dim, int emulated, int warps, int stages)
{
    const uint64_t scratch = emulated ? (uint64_t)warps * (16 * 16 + 16 * 8) : 1u;
    const uint64_t tiles = (uint64_t)warps * stages * 2u * 16u * ((uint64_t)head_dim + 8u) * 2u;
    return 4u * (scratch + 1u + 2u * (uint64_t)warps * 16u) + tiles + 8u * (uint64_t)warps * stages;
}

static int valid_mma_shape(const facl_cache_mma_shape *s)
{
    return (s->warps == 1 || s->warps == 2 || s->warps == 4 || s->warps == 8) && s->stages >= 1 &&
           s->stages <= 4;
}

/* An SM's local memory as facl_mma_local_budget (two groups' share, each less 1 KiB)
 * implies it. */
static uint64_t sm_local_bytes(uint64_t budget) { return 2u * (budget + 1024u); }

/* The local memory a tensor-core cache shape of `warps` may take, given the budget of two
 * groups per SM (facl_mma_local_budget): 8 warps, one group to an SM (as their registers
 * allow anyway), may take the whole SM where that budget goes beyond what the device
 * reports (nvidia-mma); elsewhere the budget is what the device reports, and stays. */
static uint64_t shape_budget(int warps, uint64_t budget, const facl_device_profile *profile)
{
    if (warps == 8 && budget > profile->local_mem_usable) return facl_mma_sm_budget(profile);
    return budget;
}

int facl_parse_cache_mma_shape(const char *text, facl_cache_mma_shape *shape)
{
    int warps = 0, stages = 0, used = 0;
    if (!text || sscanf(text, "%d,%d%n", &warps, &stages, &used) != 2) return -1;
    int copy = FACL_CACHE_COPY_AUTO;
    if (strcmp(text + used, ",async") == 0)
        copy = FACL_CACHE_COPY_ASYNC;
    else if (strcmp(text + used, ",bulk") == 0)
        copy = FACL_CACHE_COPY_BULK;
    else if (text[used] != '\0')
        return -1;
    const facl_cache_mma_shape parsed = {warps, stages, copy};
    if (!valid_mma_shape(&parsed)) return -1;
    *shape = parsed;
    return 0;
}

/* The copy engine (CACHE_BULK): where asked for, on a device that has it (sm_90 and newer)
 * or emulated. The planner's choice, on such an NVIDIA device: for a dense cache and for
 * pages of 256 rows or more, where it read 1-5% faster than cp.async (H200, runs 73-75,
 * docs/PERFORMANCE.md); for pages of 16 rows or more where the units fit one to an SM
 * (eight warps, below), where with the block table's entries clamped at the copy it read
 * pages of 16 1-12% faster than two warps with cp.async (run 103). Smaller pages, and pages
 * below 256 rows with more units, keep cp.async (pages of 16, four warps of two stages:
 * 1-2% slower than cp.async from 16k keys on, run 103). */
int facl_cache_has_copy_engine(const facl_device_profile *profile)
{
    return profile->path == FACL_PATH_NVIDIA_MMA && profile->nv_compute_major >= 9;
}

static int use_bulk(int requested, int page_size, int whole_sm, const facl_device_profile *profile)
{
    const int nvidia_engine = facl_cache_has_copy_engine(profile);
    if (requested == FACL_CACHE_COPY_BULK)
        return nvidia_engine || profile->path == FACL_PATH_MMA_EMULATED;
    return requested == FACL_CACHE_COPY_AUTO && nvidia_engine &&
           (page_size == 0 || page_size >= 256 || (page_size >= 16 && whole_sm));
}

/* The planner's shape. With the copy engine on a cache whose units (16-row tiles of a kv
 * head of a sequence) fit one to an SM: eight warps of two stages, one work-group to an SM
 * (139 KiB at d = 128), with no split for issue 9's 128 units on the H200's 132 SMs:
 * 1.01-1.05x four warps with 2 splits on a dense cache (run 78, docs/PERFORMANCE.md), and
 * the fastest shape on pages of 16 (run 103). With the copy engine
 * otherwise, four warps of two stages (70 KiB), two to an SM: with two splits they read the
 * decode of run 73 as fast as any other shape, 1-5% ahead of two warps from 1k to 4k keys.
 * With cp.async, two warps of two stages (35 KiB), which ran decode fastest
 * (docs/PERFORMANCE.md: 1.0-1.5x one warp of three stages at 4k-64k keys); where a shape
 * does not fit, one warp of two stages, then of one. A requested shape is taken when it
 * fits (shape_budget of `usable`: on the nvidia-mma path facl_mma_local_budget, beyond the
 * 48 KiB NVIDIA's OpenCL reports). */
static facl_cache_mma_shape mma_shape(int head_dim, int emulated, int bulk, int whole_sm,
                                      uint64_t usable, const facl_cache_mma_shape *requested,
                                      const facl_device_profile *profile)
{
    if (requested && valid_mma_shape(requested) &&
        mma_local_bytes(head_dim, emulated, requested->warps, requested->stages) <=
            shape_budget(requested->warps, usable, profile))
        return *requested;
    static const facl_cache_mma_shape choices[] = {{8, 2, 0}, {4, 2, 0}, {2, 2, 0}, {1, 2, 0}, {1, 1, 0}};
    const size_t first = bulk ? (whole_sm ? 0 : 1) : 2;
    for (size_t i = first; i + 1 < sizeof choices / sizeof choices[0]; ++i)
        if (mma_local_bytes(head_dim, emulated, choices[i].warps, choices[i].stages) <=
            shape_budget(choices[i].warps, usable, profile))
            return choices[i];
    return choices[sizeof choices / sizeof choices[0] - 1];
}

/* The tensor-core kernel: 16-bit storage, head dims it keeps in registers, rows whose
 * 32-bit pairs are aligned, on a path whose warp operations exist (NVIDIA, where the
 * kernel passed its own probe) or are emulated (tests). */
static int use_mma(const facl_cache_plan_key *f, const facl_device_profile *profile)
{
    const int mma_path = (profile->path == FACL_PATH_NVIDIA_MMA && !profile->cache_mma_off) ||
                         profile->path == FACL_PATH_MMA_EMULATED;
    return mma_path && f->dtype != FACL_DTYPE_F32 && f->head_dim % 16 == 0 &&
           f->head_dim <= 128 && f->kv_aligned &&
           mma_local_bytes(f->head_dim, profile->path == FACL_PATH_MMA_EMULATED, 1, 1) <=
               profile->local_mem_usable &&
           profile->max_work_group_size >= 32;
}

/* How many of the plan's work-groups a GPU compute unit holds at once, at most
 * GPU_GROUPS_PER_CU: the tensor-core kernel's shapes beyond two warps of two stages take
 * more than a quarter of an SM's shared memory (facl_mma_local_budget is half of it, less
 * 1 KiB), and its split variants use all 255 registers a work-item may have (ptxas,
 * run 72), so an SM's 64 Ki registers hold 8 of its warps: two groups of 4 warps. (Run 72:
 * 3 splits of 4-warp groups, 1.5 waves, ran at 0.75-0.8x of 2.) */
static int groups_per_cu(const facl_cache_plan *plan, const facl_device_profile *profile)
{
    if (!plan->mma_warps) return GPU_GROUPS_PER_CU;
    uint64_t fit = sm_local_bytes(facl_mma_local_budget(profile)) / (plan->local_bytes + 1024u);
    const uint64_t by_registers = 8u / (uint64_t)plan->mma_warps;
    if (fit > by_registers) fit = by_registers;
    return fit < 1 ? 1 : fit > GPU_GROUPS_PER_CU ? GPU_GROUPS_PER_CU : (int)fit;
}

/* Keys compare with memcmp (plan_memo.c): padding would make equal keys differ. */
_Static_assert(sizeof(facl_cache_plan_key) == 26 * sizeof(int), "facl_cache_plan_key has padding");

void facl_cache_plan_key_of(const facl_cache_problem *p, const facl_cache_mma_shape *shape,
                            facl_cache_plan_key *key)
{
    const facl_fwd_problem *f = &p->fwd;
    memset(key, 0, sizeof *key);
    key->dtype = (int)f->dtype;
    key->head_dim = f->head_dim;
    key->batch = f->batch;
    key->heads_q = f->heads_q;
    key->heads_kv = f->heads_kv;
    key->seqlen_q = f->seqlen_q;
    key->seqlen_k = f->seqlen_k;
    key->varlen = f->varlen;
    key->softcap = f->softcap > 0.0f;
    key->alibi = f->alibi.buffer != NULL;
    key->seqused = f->seqused != NULL;
    key->kv_aligned = facl_view_rows_16_byte_aligned(&f->k, f->head_dim) &&
                      facl_view_rows_16_byte_aligned(&f->v, f->head_dim);
    key->q_aligned = facl_view_rows_16_byte_aligned(&f->q, f->head_dim);
    key->paged = p->paged;
    key->page_size = p->paged ? p->page_size : 0;
    key->seqlens = p->seqlens != NULL;
    key->batch_idx = p->batch_idx != NULL;
    key->leftpad = p->leftpad != NULL;
    key->k_new = p->k_new.buffer != NULL;
    key->cu_new = p->cu_new != NULL;
    key->rotary = p->cos.buffer != NULL;
    key->keys_from_cu_k = p->key_source == FACL_KEYS_CU_SEQLENS_K;
    key->num_splits = p->num_splits;
    if (shape) key->shape = *shape;
}

void facl_plan_cache(const facl_cache_problem *p, const facl_device_profile *profile,
                     const facl_cache_mma_shape *shape, facl_cache_plan *plan)
{
    facl_cache_plan_key key;
    facl_cache_plan_key_of(p, shape, &key);
    facl_plan_cache_keyed(&key, profile, plan);
}

/* log2 of a page size that is a power of two, else (or without pages) -1: the kernels'
 * PAGE_SHIFT, a constant shift for a page's index where a division would be needed */
static int page_shift(int page_size)
{
    for (int shift = 0; shift < 31; ++shift)
        if (page_size == 1 << shift) return shift;
    return -1;
}

void facl_plan_cache_keyed(const facl_cache_plan_key *f, const facl_device_profile *profile,
                           facl_cache_plan *plan)
{
    const int group = f->heads_q / f->heads_kv;
    const int64_t rows_needed = (int64_t)group * (f->seqlen_q > 0 ? f->seqlen_q : 1);
    const int mma = use_mma(f, profile);
    plan->program = mma ? "attn_cache_mma" : "attn_cache";
    plan->rows = 1;
    while (plan->rows < 8 && plan->rows < rows_needed) plan->rows *= 2;
    plan->chunks = (f->head_dim + 7) / 8;
    /* NVIDIA (mma path, whose probe also ran its shuffles): key groups sum their lanes'
     * dot products with warp shuffles instead of local memory and barriers, which needs
     * a key group to be a power-of-two run of lanes within one warp. Without barriers in
     * the loop, more keys per step keep more loads in flight. */
    const int pow2 = (plan->chunks & (plan->chunks - 1)) == 0 && plan->chunks <= 32;
    plan->warp_shuffle = profile->path == FACL_PATH_NVIDIA_MMA && pow2;
    plan->keys_per_step = plan->warp_shuffle ? 4 : 2;
    plan->key_groups = TARGET_GROUP / plan->chunks > 1 ? TARGET_GROUP / plan->chunks : 1;
    const size_t max_group = profile->max_work_group_size ? profile->max_work_group_size : 1;
    while (plan->key_groups > 1 && (size_t)plan->key_groups * (size_t)plan->chunks > max_group)
        plan->key_groups /= 2;
    while (plan->key_groups > 1 &&
           local_bytes(plan->rows, plan->key_groups, plan->keys_per_step, plan->chunks) >
               profile->local_mem_usable)
        plan->key_groups /= 2;
    plan->group_size = (size_t)plan->chunks * (size_t)plan->key_groups;
    plan->local_bytes = local_bytes(plan->rows, plan->key_groups, plan->keys_per_step, plan->chunks);
    plan->mma_warps = plan->mma_stages = plan->mma_bulk = 0;
    plan->local_budget = profile->local_mem_usable;
    /* CPUs (portable-cpu path): attn_cache.cl's CACHE_CPU variant, where one work-item
     * takes the tile's rows over its split of the keys, CPU_TILE (16) keys per step, with
     * 16-wide vectors and no local memory or barriers (PoCL runs a 128-item work-group
     * with barriers as a loop per barrier interval, storing each item's state between). */
    plan->cpu = !mma && profile->path == FACL_PATH_PORTABLE_CPU;
    if (plan->cpu) {
        plan->key_groups = 1;
        plan->keys_per_step = 16;
        plan->warp_shuffle = 0;
        plan->group_size = 1;
        plan->local_bytes = 0;
    }
    if (mma) { /* warps of 16 keys per step each, over a 16-row tile */
        const int emulated = profile->path == FACL_PATH_MMA_EMULATED;
        const uint64_t budget = facl_mma_local_budget(profile);
        /* units that fit one to an SM may take whole SMs */
        const int64_t units = (int64_t)f->batch * f->heads_kv * ((rows_needed + 15) / 16);
        const int whole_sm = units <= (int64_t)profile->compute_units;
        plan->mma_bulk = use_bulk(f->shape.copy, f->page_size, whole_sm, profile);
        facl_cache_mma_shape chosen = mma_shape(f->head_dim, emulated, plan->mma_bulk, whole_sm,
                                                budget, &f->shape, profile);
        while (chosen.warps > 1 && (size_t)chosen.warps * 32u > profile->max_work_group_size)
            chosen.warps /= 2;
        plan->local_budget = shape_budget(chosen.warps, budget, profile);
        plan->mma_warps = chosen.warps;
        plan->mma_stages = chosen.stages;
        plan->rows = 16;
        plan->key_groups = chosen.warps;
        plan->keys_per_step = 16;
        plan->warp_shuffle = 0;
        plan->group_size = 32u * (size_t)chosen.warps;
        plan->local_bytes = mma_local_bytes(f->head_dim, emulated, chosen.warps, chosen.stages);
    }

    const int64_t tiles = (rows_needed + plan->rows - 1) / plan->rows;
    plan->units = (int64_t)f->batch * f->heads_kv * tiles;
    if (f->num_splits > 0) {
        plan->splits = f->num_splits;
    } else {
        plan->splits = facl_plan_cache_auto_splits(plan->units, f->seqlen_k,
                                                   plan->key_groups * plan->keys_per_step,
                                                   groups_per_cu(plan, profile), profile);
    }
    /* varlen queries may describe more rows than max_seqlen_q (the kernel strides over
     * them), so a work-group could meet a unit more than once: not there */
    plan->merge_in_kernel_ok = mma && plan->splits > 1 && !f->varlen;

    snprintf(plan->options, sizeof plan->options,
             "-cl-std=CL1.2 -DFACL_PARAMS_SIZE=%zu -DFACL_CACHE_PARAMS_SIZE=%zu -DFACL_DTYPE=%d "
             "-DPART_DTYPE=0 -DHEAD_DIM=%d -DIS_VARLEN=%d -DHAS_SOFTCAP=%d -DHAS_ALIBI=%d "
             "-DHAS_DROPOUT=0 -DHAS_SEQUSED=%d -DIS_PAGED=%d -DHAS_SEQLENS_BUF=%d "
             "-DHAS_BATCH_IDX=%d -DHAS_LEFTPAD=%d -DHAS_NEW=%d -DNEW_VARLEN=%d -DHAS_ROTARY=%d "
             "-DKEYS_FROM_CU_K=%d -DSPLIT=%d -DALIGNED_KV=%d -DALIGNED_Q=%d -DWARP_SHUFFLE=%d -DROWS=%d "
             "-DKEY_GROUPS=%d -DKPS=%d -DCACHE_MMA=%d -DMMA_EMULATE=%d -DCACHE_WARPS=%d "
             "-DCACHE_STAGES=%d -DCACHE_BULK=%d -DCACHE_CPU=%d -DCACHE_PREFETCH=%d -DPAGE_SHIFT=%d",
             sizeof(facl_kernel_params), sizeof(facl_cache_params), f->dtype, f->head_dim,
             f->varlen, f->softcap, f->alibi, f->seqused, f->paged, f->seqlens, f->batch_idx,
             f->leftpad, f->k_new, f->cu_new, f->rotary, f->keys_from_cu_k, plan->splits > 1,
             f->kv_aligned, f->q_aligned, plan->warp_shuffle, plan->rows,
             plan->key_groups, plan->keys_per_step, mma, mma && profile->path == FACL_PATH_MMA_EMULATED,
             mma ? plan->mma_warps : 1, mma ? plan->mma_stages : 1, plan->mma_bulk, plan->cpu,
             /* the CPU variant's software prefetch: not on Oclgrind (no llvm.prefetch) */
             plan->cpu && !strstr(profile->platform_name, "Oclgrind"), page_shift(f->page_size));
}
