/* Which backward kernels run, their tile sizes, build options and work-group sizes. */
#include "bwd_plan.h"

#include <stdio.h>
#include <string.h>

#include "bwd_params.h"
#include "plan.h"

/* The largest work-group; each work-item keeps up to four head_dim rows in private memory. */
#define BWD_MAX_GROUP 64

uint64_t facl_bwd_dq_local_bytes(int block_n, int head_dim)
{
    /* __local float k_tile[BLOCK_N * HEAD_DIM], v_tile[BLOCK_N * HEAD_DIM] */
    return (uint64_t)2 * (uint64_t)block_n * (uint64_t)head_dim * 4u;
}

uint64_t facl_bwd_dkdv_local_bytes(int block_m, int head_dim)
{
    /* __local float q_tile[BLOCK_M * HEAD_DIM], do_tile[BLOCK_M * HEAD_DIM],
     *               lse_tile[BLOCK_M], delta_tile[BLOCK_M] */
    return (uint64_t)2 * (uint64_t)block_m * (uint64_t)head_dim * 4u + (uint64_t)2 * block_m * 4u;
}

/* attn_bwd_mma.cl's KV_WD: the dk/dv kernel's warps along the head dims. */
static int dim_warps(const facl_bwd_mma_shape *s) { return s->kv_warps / (s->kv_keys / 16); }

/* attn_bwd_mma.cl's D_PAD: the head dim padded so that each of those warps gets whole
 * 16-dim steps. */
static int mma_d_pad(const facl_bwd_mma_shape *s, int head_dim)
{
    const int align = 16 * dim_warps(s);
    return (head_dim + align - 1) / align * align;
}

/* attn_bwd_mma.cl's PITCH: D_PAD plus 8 (bank spread). */
static uint64_t mma_pitch(const facl_bwd_mma_shape *s, int head_dim)
{
    return (uint64_t)mma_d_pad(s, head_dim) + 8;
}

static uint64_t mma_scratch_bytes(int warps, int emulated)
{
    /* MMA_SCRATCH_PER_WARP floats per warp (warp_mma.cl) when emulated, else 1 float */
    return emulated ? (uint64_t)warps * (16 * 16 + 16 * 8) * 4u : 4u;
}

uint64_t facl_bwd_mma_dkdv_local_bytes(const facl_bwd_mma_shape *s, int head_dim, int emulated)
{
    /* k_tile, v_tile: KV_KEYS x PITCH; q_tiles, do_tiles: KV_STAGES x KV_ROWS x PITCH
     * (16-bit); pt_tile, dst_tile: KV_KEYS x (KV_ROWS + 8) (16-bit); lse2_tiles,
     * delta_tiles: KV_STAGES x KV_ROWS floats */
    const uint64_t pitch = mma_pitch(s, head_dim), stages = (uint64_t)s->kv_stages;
    return 2u * (uint64_t)s->kv_keys * pitch * 2u + 2u * stages * (uint64_t)s->kv_rows * pitch * 2u +
           2u * (uint64_t)s->kv_keys * (uint64_t)(s->kv_rows + 8) * 2u +
           2u * stages * (uint64_t)s->kv_rows * 4u + mma_scratch_bytes(s->kv_warps, emulated);
}

uint64_t facl_bwd_mma_dq_local_bytes(const facl_bwd_mma_shape *s, int head_dim, int emulated)
{
    /* q_tile, do_tile: 16 * DQ_WARPS x PITCH; k_tiles, v_tiles: DQ_STAGES x DQ_KEYS x
     * PITCH (16-bit) */
    const uint64_t pitch = mma_pitch(s, head_dim);
    return 2u * 16u * (uint64_t)s->dq_warps * pitch * 2u +
           2u * (uint64_t)s->dq_stages * (uint64_t)s->dq_keys * pitch * 2u +
           mma_scratch_bytes(s->dq_warps, emulated);
}

/* Candidate shapes in order of preference: more keys per dk/dv group (each staged q and
 * dout row then serves more keys) and more rows per dq group. */
static const struct { int warps, keys, rows; } kv_candidates[] = {
    {4, 64, 64}, {4, 64, 32}, {4, 32, 64}, {4, 32, 32}, {2, 32, 32},
    {2, 16, 32}, {2, 16, 16}, {1, 16, 16},
};
static const struct { int warps, keys; } dq_candidates[] = {
    {4, 64}, {4, 32}, {2, 32}, {4, 16}, {2, 16}, {1, 32}, {1, 16},
};

/* fp32 values a lane keeps across the inner loops: its dk and dv accumulators and its
 * S^T and dP^T blocks (dk/dv kernel), or its dq accumulator and S and dP blocks (dq
 * kernel). Shapes above MAX_LANE_FLOATS spilled on the H200 (run 20: 4,64,64 at d = 128,
 * 192 floats, 144 bytes of spills), so the planner stays at or below it. */
#define MAX_LANE_FLOATS 160

static int kv_lane_floats(const facl_bwd_mma_shape *s, int head_dim)
{
    return (mma_d_pad(s, head_dim) + s->kv_rows) / dim_warps(s);
}

static int dq_lane_floats(const facl_bwd_mma_shape *s, int head_dim)
{
    return mma_d_pad(s, head_dim) / 2 + s->dq_keys;
}

/* The kernel's #error conditions (attn_bwd_mma.cl). */
static int valid_mma_shape(const facl_bwd_mma_shape *s)
{
    const int ok_warps = (s->kv_warps == 1 || s->kv_warps == 2 || s->kv_warps == 4 ||
                          s->kv_warps == 8) &&
                         (s->dq_warps == 1 || s->dq_warps == 2 || s->dq_warps == 4 || s->dq_warps == 8);
    if (!ok_warps || s->kv_stages < 1 || s->kv_stages > 2 || s->dq_stages < 1 ||
        s->dq_stages > 2 || s->kv_keys < 16 || s->kv_keys % 16 != 0 || s->kv_rows < 16 ||
        s->kv_rows % 16 != 0 || s->dq_keys < 16 || s->dq_keys % 16 != 0 ||
        s->kv_keys > 256 || s->kv_rows > 256 || s->dq_keys > 256)
        return 0;
    const int key_warps = s->kv_keys / 16;
    if (s->kv_warps % key_warps != 0) return 0;
    const int dim_warps = s->kv_warps / key_warps;
    return s->kv_rows % dim_warps == 0 && (s->kv_rows / dim_warps) % 8 == 0;
}

int facl_parse_bwd_mma_shape(const char *text, facl_bwd_mma_shape *shape)
{
    facl_bwd_mma_shape s;
    int used = 0;
    if (!text || sscanf(text, "%d,%d,%d,%d,%d,%d,%d%n", &s.kv_warps, &s.kv_keys, &s.kv_rows,
                        &s.kv_stages, &s.dq_warps, &s.dq_keys, &s.dq_stages, &used) != 7 ||
        text[used] != '\0' ||
        !valid_mma_shape(&s))
        return -1;
    *shape = s;
    return 0;
}

/* The first dk/dv shape, then the first dq shape (with that dk/dv shape's padding), that
 * fit `usable` and MAX_LANE_FLOATS, each with two stages where they fit, else one; 0 if
 * none does. */
static int choose_mma_shape(int head_dim, int emulated, uint64_t usable, facl_bwd_mma_shape *out)
{
    const size_t n_kv = sizeof kv_candidates / sizeof kv_candidates[0];
    const size_t n_dq = sizeof dq_candidates / sizeof dq_candidates[0];
    for (size_t i = 0; i < 2 * n_kv; ++i) {
        facl_bwd_mma_shape s = {kv_candidates[i / 2].warps, kv_candidates[i / 2].keys,
                                kv_candidates[i / 2].rows, 2 - (int)(i % 2), 0, 0, 0};
        if (facl_bwd_mma_dkdv_local_bytes(&s, head_dim, emulated) > usable ||
            kv_lane_floats(&s, head_dim) > MAX_LANE_FLOATS)
            continue;
        for (size_t j = 0; j < 2 * n_dq; ++j) {
            s.dq_warps = dq_candidates[j / 2].warps;
            s.dq_keys = dq_candidates[j / 2].keys;
            s.dq_stages = 2 - (int)(j % 2);
            if (facl_bwd_mma_dq_local_bytes(&s, head_dim, emulated) <= usable &&
                dq_lane_floats(&s, head_dim) <= MAX_LANE_FLOATS) {
                *out = s;
                return 1;
            }
        }
    }
    return 0;
}

int facl_bwd_mma_applies(const facl_device_profile *profile, int head_dim)
{
    return (profile->path == FACL_PATH_NVIDIA_MMA || profile->path == FACL_PATH_MMA_EMULATED) &&
           head_dim <= 256;
}

uint64_t facl_bwd_workspace_entry_floats(int head_dim, int dq_atomic)
{
    return dq_atomic ? ((uint64_t)head_dim + 3) / 4 * 4 + 4 : 1;
}

uint64_t facl_bwd_workspace_floats(int64_t rows_q, int64_t heads_q, int head_dim, int dq_atomic)
{
    const uint64_t n = (uint64_t)(rows_q > 0 ? rows_q : 0) * (uint64_t)(heads_q > 0 ? heads_q : 0);
    const uint64_t per = facl_bwd_workspace_entry_floats(head_dim, dq_atomic);
    return n ? n * per : 1;
}

uint64_t facl_bwd_wgmma_local_bytes(int head_dim, int warpgroups, int dq_atomic, int emulated)
{
    /* attn_bwd_wgmma.cl, its dk/dv kernel (the dq kernel's is the same less lse and D):
     * two tiles of 64 * WARPGROUPS rows that stay (k and v), two buffers of two 64-row
     * tiles that change (q and dout), D_PAD 16-bit columns each; two buffers of 64 lse
     * and 64 D floats; with DQ_ATOMIC the dS tile (64 rows x the block's keys, 16-bit)
     * and a dq stage of 64 x DQ_PITCH (72) floats per warpgroup; the emulation's scratch */
    const uint64_t d_pad = (uint64_t)(head_dim + 63) / 64 * 64, wgs = (uint64_t)warpgroups;
    const uint64_t atomic_bytes = dq_atomic ? 64u * 64u * wgs * 2u + wgs * 64u * 72u * 4u : 0u;
    return 2u * 64u * wgs * d_pad * 2u + 2u * 2u * 64u * d_pad * 2u + 2u * 2u * 64u * 4u +
           atomic_bytes + mma_scratch_bytes(4 * warpgroups, emulated);
}

/* Rows per key (rows_per_key) from which attn_bwd_wgmma's atomic-dq variant is the
 * default for deterministic = 0: on the H200 it ran at 1.02-1.20x of the deterministic
 * kernels from 4096 on, 0.77-1.00x below (runs 158-159, docs/PERFORMANCE.md). */
#define WGMMA_ATOMIC_MIN_ROWS 4096

/* About how many query rows a key sees on average: seqlen_q (the longest for varlen), half
 * of it under a causal mask, the window's width under a two-sided window. */
static int64_t rows_per_key(const facl_fwd_problem *p)
{
    const int64_t sq = p->seqlen_q, wl = p->window_left, wr = p->window_right;
    int64_t rows;
    if (wl < 0 && wr < 0) rows = sq;
    else if (wl < 0) rows = wr + sq / 2; /* causal (wr = 0): half the rows on average */
    else if (wr < 0) rows = wl + sq / 2;
    else rows = wl + wr + 1;
    return rows < sq ? rows : sq;
}

/* attn_bwd_wgmma's warpgroups per group for a variant: the asked count only, else 2 then
 * 1, the first whose local memory fits (setting *budget to what the launch allows it);
 * 0 if none does. */
static int wgmma_warpgroups(const facl_fwd_plan_key *p, const facl_device_profile *profile,
                            int dq_atomic, uint64_t *budget)
{
    const int emulated = profile->path == FACL_PATH_MMA_EMULATED;
    const int asked = profile->bwd_wgmma_warpgroups, least = asked ? asked : 1;
    for (int wgs = asked ? asked : 2; wgs >= least; --wgs) {
        *budget = wgs == 2 ? facl_mma_sm_budget(profile) : facl_mma_local_budget(profile);
        if (facl_bwd_wgmma_local_bytes(p->head_dim, wgs, dq_atomic, emulated) <= *budget &&
            (size_t)wgs * 128u <= profile->max_work_group_size)
            return wgs;
    }
    return 0;
}

/* attn_bwd_wgmma where the profile takes it (profile->bwd_wgmma: by default on Hopper,
 * or forced) and it applies: fp16/bf16, head dims up to 128, unless the tensor-core
 * backward's probe failed (bwd_mma_off). With deterministic = 0 where the key blocks see
 * many rows (profile->bwd_wgmma_dq_atomic) or everywhere with the atomic-dq opt-in, its
 * dk/dv kernel adds dq into the workspace (DQ_ATOMIC=1) and attn_bwd_mma_dq_store writes
 * it; where that variant's local memory does not fit, the default takes the
 * deterministic kernels and the opt-in attn_bwd_mma's atomic variant.
 * Two warpgroups per group unless asked otherwise or they do not fit the SM (then one,
 * within half an SM). A requested attn_bwd_mma shape serves the calls this does not
 * take. */
static int plan_wgmma(const facl_bwd_plan_key *key, const facl_device_profile *profile,
                      const char *features, facl_bwd_plan *plan)
{
    const facl_fwd_plan_key *p = &key->fwd;
    const int emulated = profile->path == FACL_PATH_MMA_EMULATED;
    if (!profile->bwd_wgmma || profile->bwd_mma_off || !facl_bwd_mma_applies(profile, p->head_dim) ||
        p->head_dim > 128 ||
        (p->dtype != FACL_DTYPE_F16 && p->dtype != FACL_DTYPE_BF16))
        return 0;
    /* device_profile.h: where it pays by default, everywhere with the opt-in */
    int dq_atomic = key->dq_atomics &&
                    (profile->bwd_dq_atomic || (profile->bwd_wgmma_dq_atomic && key->long_rows));
    int wgs = wgmma_warpgroups(p, profile, dq_atomic, &plan->local_budget);
    if (!wgs && dq_atomic && !profile->bwd_dq_atomic) {
        dq_atomic = 0;
        wgs = wgmma_warpgroups(p, profile, 0, &plan->local_budget);
    }
    if (!wgs) return 0;
    const int vec_loads = p->q_aligned && p->k_aligned && p->v_aligned && key->dout_aligned;
    plan->program = "attn_bwd_wgmma";
    plan->wgmma_warpgroups = wgs;
    plan->dq_atomic = dq_atomic;
    plan->kernels[0] = "attn_bwd_dot";
    plan->spans[0] = FACL_BWD_SPAN_ROWS;
    if (dq_atomic) {
        plan->kernels[1] = "attn_bwd_wgmma_dkdv";
        plan->spans[1] = FACL_BWD_SPAN_KEYS;
        plan->fixed_group[1] = 128u * (size_t)wgs;
        plan->items_per_group[1] = 64 * wgs;
        plan->kernels[2] = "attn_bwd_mma_dq_store";
        plan->spans[2] = FACL_BWD_SPAN_ROW_ELEMENTS;
    } else {
        plan->kernels[1] = "attn_bwd_wgmma_dq";
        plan->spans[1] = FACL_BWD_SPAN_ROWS;
        plan->kernels[2] = "attn_bwd_wgmma_dkdv";
        plan->spans[2] = FACL_BWD_SPAN_KEYS;
        for (int i = 1; i < 3; ++i) {
            plan->fixed_group[i] = 128u * (size_t)wgs;
            plan->items_per_group[i] = 64 * wgs;
        }
    }
    plan->local_bytes = facl_bwd_wgmma_local_bytes(p->head_dim, wgs, dq_atomic, emulated);
    /* FACL_SM90A: rebuilt from its PTX with the sm_90a instructions (programs.c) */
    snprintf(plan->options, sizeof plan->options,
             "%s -DFACL_BWD_PARAMS_SIZE=%zu -DWARPGROUPS=%d -DVEC_LOADS=%d -DMMA_EMULATE=%d "
             "-DDQ_ATOMIC=%d -DGRAD_PAIRS=%d%s",
             features, sizeof(facl_bwd_params), wgs, vec_loads, emulated, dq_atomic,
             key->grads_aligned, emulated ? "" : " -DFACL_SM90A=1");
    return 1;
}

static int plan_mma(const facl_bwd_plan_key *key, const facl_device_profile *profile,
                    const char *features, facl_bwd_plan *plan)
{
    const facl_fwd_plan_key *p = &key->fwd;
    const facl_bwd_mma_shape *requested = key->has_requested ? &key->requested : NULL;
    const int emulated = profile->path == FACL_PATH_MMA_EMULATED;
    if (!facl_bwd_mma_applies(profile, p->head_dim) || profile->bwd_mma_off ||
        (p->dtype != FACL_DTYPE_F16 && p->dtype != FACL_DTYPE_BF16))
        return 0;
    facl_bwd_mma_shape s;
    if (requested && valid_mma_shape(requested)) s = *requested, plan->requested_shape = 1;
    else if (!choose_mma_shape(p->head_dim, emulated, facl_mma_local_budget(profile), &s))
        return 0;
    const uint64_t dkdv = facl_bwd_mma_dkdv_local_bytes(&s, p->head_dim, emulated);
    const uint64_t dq = facl_bwd_mma_dq_local_bytes(&s, p->head_dim, emulated);
    const int vec_loads = p->q_aligned && p->k_aligned && p->v_aligned && key->dout_aligned;
    plan->program = "attn_bwd_mma";
    plan->mma = s;
    plan->dq_atomic = key->dq_atomics && profile->bwd_dq_atomic; /* device_profile.h: why opt-in */
    plan->kernels[0] = "attn_bwd_dot";
    plan->spans[0] = FACL_BWD_SPAN_ROWS;
    if (plan->dq_atomic) {
        /* dq from the dk/dv kernel's atomic additions: attn_bwd_mma_dq is not built (its
         * DQ_* options only complete the set the source requires) */
        plan->kernels[1] = "attn_bwd_mma_dkdv";
        plan->spans[1] = FACL_BWD_SPAN_KEYS;
        plan->fixed_group[1] = 32u * (size_t)s.kv_warps;
        plan->items_per_group[1] = s.kv_keys;
        plan->kernels[2] = "attn_bwd_mma_dq_store";
        plan->spans[2] = FACL_BWD_SPAN_ROW_ELEMENTS;
        plan->local_bytes = dkdv;
    } else {
        plan->kernels[1] = "attn_bwd_mma_dq";
        plan->spans[1] = FACL_BWD_SPAN_ROWS;
        plan->fixed_group[1] = 32u * (size_t)s.dq_warps;
        plan->items_per_group[1] = 16 * s.dq_warps;
        plan->kernels[2] = "attn_bwd_mma_dkdv";
        plan->spans[2] = FACL_BWD_SPAN_KEYS;
        plan->fixed_group[2] = 32u * (size_t)s.kv_warps;
        plan->items_per_group[2] = s.kv_keys;
        plan->local_bytes = dkdv > dq ? dkdv : dq;
    }
    plan->local_budget = facl_mma_local_budget(profile);
    snprintf(plan->options, sizeof plan->options,
             "%s -DFACL_BWD_PARAMS_SIZE=%zu -DKV_WARPS=%d -DKV_KEYS=%d -DKV_ROWS=%d "
             "-DKV_STAGES=%d -DDQ_WARPS=%d -DDQ_KEYS=%d -DDQ_STAGES=%d -DVEC_LOADS=%d "
             "-DMMA_EMULATE=%d -DDQ_ATOMIC=%d -DGRAD_PAIRS=%d",
             features, sizeof(facl_bwd_params), s.kv_warps, s.kv_keys, s.kv_rows, s.kv_stages,
             s.dq_warps, s.dq_keys, s.dq_stages, vec_loads, emulated, plan->dq_atomic,
             key->grads_aligned);
    return 1;
}

/* Keys compare with memcmp (plan_memo.c): padding would make equal keys differ. */
_Static_assert(sizeof(facl_bwd_plan_key) == sizeof(facl_fwd_plan_key) + 12 * sizeof(int),
               "facl_bwd_plan_key has padding");

void facl_bwd_plan_key_of(const facl_bwd_problem *bp, const facl_bwd_mma_shape *requested,
                          facl_bwd_plan_key *key)
{
    memset(key, 0, sizeof *key);
    facl_fwd_plan_key_of(&bp->f, &key->fwd);
    key->dout_aligned = facl_view_rows_16_byte_aligned(&bp->dout, bp->f.head_dim);
    key->grads_aligned = facl_view_rows_16_byte_aligned(&bp->dq, bp->f.head_dim) &&
                         facl_view_rows_16_byte_aligned(&bp->dk, bp->f.head_dim) &&
                         facl_view_rows_16_byte_aligned(&bp->dv, bp->f.head_dim);
    key->dq_atomics = bp->f.dq_atomics;
    key->long_rows = rows_per_key(&bp->f) >= WGMMA_ATOMIC_MIN_ROWS;
    key->has_requested = requested != NULL;
    if (requested) key->requested = *requested;
}

void facl_plan_bwd_program(const facl_bwd_problem *bp, const facl_device_profile *profile,
                           const facl_bwd_mma_shape *requested, facl_bwd_plan *plan)
{
    facl_bwd_plan_key key;
    facl_bwd_plan_key_of(bp, requested, &key);
    facl_plan_bwd_keyed(&key, profile, plan);
}

void facl_plan_bwd_keyed(const facl_bwd_plan_key *key, const facl_device_profile *profile,
                         facl_bwd_plan *plan)
{
    const facl_fwd_plan_key *p = &key->fwd;
    memset(plan, 0, sizeof *plan);
    char features[320];
    facl_plan_fwd_feature_options(p, features, sizeof features);
    if (plan_wgmma(key, profile, features, plan) || plan_mma(key, profile, features, plan)) return;
    /* deterministic whatever the options say: no atomics here */
    plan->program = "attn_bwd";
    plan->kernels[0] = "attn_bwd_dot";
    plan->kernels[1] = "attn_bwd_dq";
    plan->kernels[2] = "attn_bwd_dkdv";
    plan->spans[0] = plan->spans[1] = FACL_BWD_SPAN_ROWS;
    plan->spans[2] = FACL_BWD_SPAN_KEYS;
    int block = 32;
    while (block > 1 && (facl_bwd_dq_local_bytes(block, p->head_dim) > profile->local_mem_usable ||
                         facl_bwd_dkdv_local_bytes(block, p->head_dim) > profile->local_mem_usable))
        block /= 2;
    plan->block_m = plan->block_n = block;
    const uint64_t dq = facl_bwd_dq_local_bytes(block, p->head_dim);
    const uint64_t dkdv = facl_bwd_dkdv_local_bytes(block, p->head_dim);
    plan->local_bytes = dq > dkdv ? dq : dkdv;
    plan->local_budget = profile->local_mem_usable;
    /* -w on CPUs: PoCL on AVX2 machines warns, on its own stderr, that attn_common.cl's
     * 16-wide softcap helper (unused here) changes the call ABI (as plan.c does for
     * attn_fwd_rows). */
    snprintf(plan->options, sizeof plan->options,
             "%s%s -DFACL_BWD_PARAMS_SIZE=%zu -DBLOCK_M=%d -DBLOCK_N=%d", features,
             profile->path == FACL_PATH_PORTABLE_CPU ? " -w" : "", sizeof(facl_bwd_params),
             plan->block_m, plan->block_n);
}

size_t facl_plan_bwd_group_size(int64_t rows, const facl_device_profile *profile,
                                size_t kernel_wg_size)
{
    size_t group = BWD_MAX_GROUP;
    /* Short sequences (decoding, tiny batches) waste most of a large group. */
    while (group > 8 && (int64_t)(group / 2) >= rows) group /= 2;
    size_t limit = kernel_wg_size < profile->max_work_group_size ? kernel_wg_size
                                                                  : profile->max_work_group_size;
    while (group > 1 && group > limit) group /= 2;
    return group;
}
