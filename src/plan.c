/* Kernel variant and geometry choices for the portable forward kernels. */
#include "plan.h"

#include <stdio.h>
#include <string.h>

#include "kernel_params.h"

/* The portable kernels' parameters come from the tuning database (tuning.h: rows per
 * work-item of the CPU kernel, keys per tile, lanes and rows per work-group of the GPU
 * kernel, per device and head-dim class); this file keeps them within the device. */

/* Keys per tile of the CPU kernel: one 16-wide vector of scores (AVX-512 width). The
 * kernel is written for this width, so it is not a tuning parameter. */
#define CPU_TILE_N 16

/* attn_fwd_rows's packed k/v buffer is made per call; past this size (or the device's
 * largest allocation) the work-items transpose their tiles themselves instead. */
#define CPU_PACK_MAX_BYTES ((uint64_t)1 << 30)

/* The GPU kernel's largest work-group; its lane-sum scratch is sized for it. */
#define GPU_MAX_GROUP 128

/* Work-items per query row in the GPU kernel (each keeps head_dim / lanes of q and of the
 * accumulator in registers): the tuned value, halved until one row's lanes fit a
 * work-group of the device, so that no entry can ask for a group it cannot launch. */
static int choose_lanes(int tuned, const facl_device_profile *profile)
{
    int lanes = tuned;
    size_t limit = profile->max_work_group_size;
    if (limit == 0 || limit > GPU_MAX_GROUP) limit = GPU_MAX_GROUP;
    while (lanes > 1 && (size_t)lanes > limit) lanes /= 2;
    return lanes;
}

/* attn_fwd_rows runs q.k and p.v for RB rows at once, RB chains of 16-wide FMAs: enough
 * to keep two FMA pipelines of 4 cycles' latency busy without spilling the 16 (AVX2) or
 * 32 (AVX-512) vector registers, i.e. 8 registers of accumulators: 4 rows where a
 * register holds 8 floats, 8 rows where it holds 16, 2 where it holds 4. */
static int cpu_register_rows(const facl_device_profile *profile)
{
    const unsigned width = profile->native_float_width;
    return width >= 16 ? 8 : width >= 8 ? 4 : 2;
}

int facl_plan_cpu_packing(const facl_fwd_plan_key *p, const facl_device_profile *profile,
                          int rows_per_item, int64_t *tiles, uint64_t *bytes)
{
    /* kt[d][16] and vt[16][d rounded up to 16] in fp32 (attn_fwd_rows.cl's TILE_FLOATS);
     * tiles as packed_first_tile lays the sequences out */
    const int64_t head_pad = (p->head_dim + 15) / 16 * 16;
    *tiles = p->varlen ? ((int64_t)p->total_k + 15) / 16 + p->batch
                       : (int64_t)p->batch * (((int64_t)p->seqlen_k + 15) / 16);
    *bytes = (uint64_t)p->heads_kv * (uint64_t)*tiles * 16u * (uint64_t)(p->head_dim + head_pad) * 4u;
    const uint64_t cap = profile->max_alloc && profile->max_alloc < CPU_PACK_MAX_BYTES
                             ? profile->max_alloc
                             : CPU_PACK_MAX_BYTES;
    if (profile->cpu_pack == FACL_CPU_PACK_NEVER || *tiles == 0 || *bytes > cap) return 0;
    /* Packing reads k and v once more and writes them: it pays where each tile is then
     * read by several work-items, i.e. where a (sequence, head) has more query rows
     * than one work-item takes. */
    return profile->cpu_pack == FACL_CPU_PACK_ALWAYS || p->seqlen_q > rows_per_item;
}

/* A tile of BLOCK_N keys holds k and v as fp32 (2 * BLOCK_N * head_dim * 4 bytes of
 * local memory), plus BLOCK_N * GPU_MAX_GROUP lane sums when rows are split in lanes.
 * Larger tiles amortise barriers; the private score array grows with BLOCK_N. Halve
 * until the device has room. */
static uint64_t gpu_local_bytes(int block_n, int head_dim, int lanes)
{
    uint64_t bytes = (uint64_t)2 * (uint64_t)block_n * (uint64_t)head_dim * 4u;
    if (lanes > 1) bytes += (uint64_t)block_n * GPU_MAX_GROUP * 4u;
    return bytes;
}

static int choose_block_n(int tuned, int head_dim, int lanes, uint64_t local_mem_usable)
{
    int block_n = tuned;
    while (block_n > 1 && gpu_local_bytes(block_n, head_dim, lanes) > local_mem_usable)
        block_n /= 2;
    return block_n;
}

/* attn_fwd_blocked (cl_kernels/attn_fwd_blocked.cl): work-groups of (block_m / tm) x
 * (block_n / tn) work-items, each with a tm x tn micro-tile of scores and tm rows of
 * output dims; q and k staged chunk_d dims at a time, v chunk_keys keys at a time. */
typedef struct blocked_shape {
    int block_m, block_n, tm, tn, chunk_d, chunk_keys;
} blocked_shape;

/* The largest work-group attn_fwd_blocked is planned with (128 x 128 blocks of 4 x 4). */
#define BLOCKED_MAX_GROUP 1024

static int blocked_group(const blocked_shape *s)
{
    return (s->block_m / s->tm) * (s->block_n / s->tn);
}

/* The kernel's D_PAD: the head dim rounded up to float4 steps of a row's work-items. */
static uint64_t blocked_d_pad(int head_dim, int block_n, int tn)
{
    const uint64_t stride = 4u * (uint64_t)(block_n / tn);
    return ((uint64_t)head_dim + stride - 1) / stride * stride;
}

uint64_t facl_blocked_local_bytes(int head_dim, int block_m, int block_n, int tm, int tn,
                                  int chunk_d, int chunk_keys)
{
    (void)tm;
    const uint64_t qk = (uint64_t)chunk_d * (uint64_t)(block_m + 4 + block_n + 4);
    const uint64_t v = (uint64_t)chunk_keys * blocked_d_pad(head_dim, block_n, tn);
    const uint64_t stage = qk > v ? qk : v;
    const uint64_t p_tile = (uint64_t)block_n * (uint64_t)(block_m + 4);
    const uint64_t row_parts = (uint64_t)block_m * (uint64_t)(block_n / tn);
    return (stage + p_tile + row_parts) * sizeof(float);
}

static uint64_t blocked_bytes(int head_dim, const blocked_shape *s)
{
    return facl_blocked_local_bytes(head_dim, s->block_m, s->block_n, s->tm, s->tn, s->chunk_d,
                                    s->chunk_keys);
}

/* Keys per v staging step: as many as the q/k chunks' room holds (v takes turns with
 * them in one local array), a power of two dividing block_n; at least 1. */
static int blocked_chunk_keys(int head_dim, const blocked_shape *s)
{
    const uint64_t room = (uint64_t)s->chunk_d * (uint64_t)(s->block_m + s->block_n + 8);
    const uint64_t d_pad = blocked_d_pad(head_dim, s->block_n, s->tn);
    int keys = s->block_n;
    while (keys > 1 && (uint64_t)keys * d_pad > room) keys /= 2;
    return keys;
}

/* attn_fwd_blocked's shape from the tuned one: fewer rows for short queries (as attn_fwd
 * shrinks its groups for decoding), then smaller q/k steps, key tiles and row blocks until
 * the local memory fits and the work-group is within the device's limit. 0 when nothing
 * fits (the plan then takes attn_fwd). */
static int blocked_shape_for(const facl_tuning_params *tuned, const facl_fwd_plan_key *p,
                             const facl_device_profile *profile, blocked_shape *s)
{
    s->block_m = tuned->blocked_m;
    s->block_n = tuned->blocked_n;
    s->tm = tuned->blocked_tm;
    s->tn = tuned->blocked_tn;
    /* 32 dims per q/k step halves the barriers of 16; tiny heads need no more than theirs */
    s->chunk_d = 32;
    while (s->chunk_d > 4 && s->chunk_d / 2 >= p->head_dim) s->chunk_d /= 2;
    while (s->block_m > 16 && s->block_m / 2 >= p->seqlen_q) s->block_m /= 2;
    size_t limit = profile->max_work_group_size;
    if (limit == 0 || limit > BLOCKED_MAX_GROUP) limit = BLOCKED_MAX_GROUP;
    for (;;) {
        s->chunk_keys = blocked_chunk_keys(p->head_dim, s);
        const int fits = blocked_bytes(p->head_dim, s) <= profile->local_mem_usable;
        if (fits && (size_t)blocked_group(s) <= limit) return 1;
        if (!fits && s->chunk_d > 8)
            s->chunk_d /= 2;
        else if (s->block_n > 16 && s->block_n >= s->block_m)
            s->block_n /= 2;
        else if (s->block_m > 16)
            s->block_m /= 2;
        else if (s->block_n > 16)
            s->block_n /= 2;
        else
            return 0;
    }
}

uint64_t facl_mma_local_budget(const facl_device_profile *p)
{
    if (p->path != FACL_PATH_NVIDIA_MMA) return p->local_mem_usable;
    /* NVIDIA's OpenCL takes static local arrays beyond the 48 KiB it reports (227 KiB ran
     * on the H200, README of the GPU machine). The tensor-core kernels use up to 255
     * registers per work-item, so two work-groups of 4 warps share an SM; each may then
     * have half the SM's shared memory (CUDA's figures per compute capability), less
     * 1 KiB as for local_mem_usable. More is slower: the backward at d = 256 (run 22) ran
     * 110 TFLOP/s with 135 and 179 KiB (one group per SM), 156 with 111 and 101 KiB. The
     * probes run the shapes this allows before any call uses them. */
    uint64_t sm_kib;
    if (p->nv_compute_major == 9 || p->nv_compute_major == 10) sm_kib = 228;
    else if (p->nv_compute_major == 8 && (p->nv_compute_minor == 0 || p->nv_compute_minor == 7)) sm_kib = 164;
    else if (p->nv_compute_major >= 8) sm_kib = 100;
    else return p->local_mem_usable; /* no compute capability known: what the device reports */
    const uint64_t budget = (sm_kib / 2 - 1) * 1024;
    return budget > p->local_mem_usable ? budget : p->local_mem_usable;
}

uint64_t facl_mma_sm_budget(const facl_device_profile *p)
{
    const uint64_t half = facl_mma_local_budget(p);
    return half > p->local_mem_usable ? 2u * (half + 1024u) - 1024u : half;
}

/* attn_fwd_mma's shape (plan->options: M_TILES, Q_LOCAL, BLOCK_N, KV_STAGES). */
typedef struct mma_shape {
    int m_tiles, q_local, block_n, kv_stages;
} mma_shape;

/* attn_fwd_mma's static local memory (keep in step with its K_PITCH, TILE_ELEMS, KV_BUFS,
 * q_tile and SCRATCH_FLOATS): kv_stages k and v tiles of block_n keys, with q_local the
 * group's 64 * m_tiles q rows, and the emulation scratch. */
static uint64_t mma_local_bytes(int head_dim, mma_shape s, int emulated)
{
    const uint64_t pitch = (uint64_t)(head_dim + 15) / 16 * 16 + 8;
    const uint64_t tiles = 2u * (uint64_t)s.kv_stages * (uint64_t)s.block_n * pitch * 2u;
    const uint64_t q = s.q_local ? 64u * (uint64_t)s.m_tiles * pitch * 2u : 0u;
    const uint64_t scratch = emulated ? 4u * (16 * 16 + 16 * 8) * 4u : 4u;
    return tiles + q + scratch;
}

/* attn_fwd_mma's shape: FACL_FWD_MMA_SHAPE's where it fits the budget (a benchmark's
 * request; elsewhere, e.g. the wider head dims of the context's probe, the default), else
 * the first of these that fits: q staged in local memory with two 16-row tiles per warp
 * up to d = 128 (one above: the accumulators need the registers), 64-key tiles, k and v
 * double-buffered; then single-buffered, then 32-key tiles, then one row tile, then q in
 * registers (the least local memory). On the H200 (fp16, 1k-16k keys): staging q with
 * two row tiles ran 1.03-1.13x q in registers at d = 64 and 128, and with one row tile
 * 1.03-1.21x at d = 256 (fewer registers: no spills; run 51); 32-key tiles ran 3-15%
 * below 64-key ones; double buffers ran 1.01-1.04x single ones at d = 64 and 128, while
 * at d = 256, where they fit only with 32-key tiles, 0.92-0.97x (run 61). 0 when none
 * fits. */
static int choose_mma_shape(int head_dim, const facl_device_profile *profile, uint64_t budget,
                            mma_shape *chosen)
{
    const int emulated = profile->path == FACL_PATH_MMA_EMULATED;
    const int two = head_dim <= 128 ? 2 : 1;
    const mma_shape shapes[] = {
        {profile->mma_m_tiles, profile->mma_q_local, profile->mma_block_n, profile->mma_kv_stages},
        {two, 1, 64, 2}, {two, 1, 64, 1}, {two, 1, 32, 1}, {1, 1, 64, 1}, {1, 0, 64, 1}, {1, 0, 32, 1},
    };
    for (size_t i = profile->mma_m_tiles > 0 ? 0 : 1; i < sizeof shapes / sizeof shapes[0]; ++i) {
        if (mma_local_bytes(head_dim, shapes[i], emulated) <= budget) {
            *chosen = shapes[i];
            return 1;
        }
    }
    return 0;
}

/* Keys compare with memcmp (plan_memo.c): padding would make equal keys differ. */
_Static_assert(sizeof(facl_fwd_plan_key) == 17 * sizeof(int), "facl_fwd_plan_key has padding");

void facl_fwd_plan_key_of(const facl_fwd_problem *p, facl_fwd_plan_key *key)
{
    memset(key, 0, sizeof *key);
    key->dtype = (int)p->dtype;
    key->head_dim = p->head_dim;
    key->batch = p->batch;
    key->heads_q = p->heads_q;
    key->heads_kv = p->heads_kv;
    key->seqlen_q = p->seqlen_q;
    key->seqlen_k = p->seqlen_k;
    key->total_k = p->total_k;
    key->varlen = p->varlen;
    key->softcap = p->softcap > 0.0f;
    key->alibi = p->alibi.buffer != NULL;
    key->dropout = p->dropout_p > 0.0f;
    key->seqused = p->seqused != NULL;
    key->q_aligned = facl_view_rows_16_byte_aligned(&p->q, p->head_dim);
    key->k_aligned = facl_view_rows_16_byte_aligned(&p->k, p->head_dim);
    key->v_aligned = facl_view_rows_16_byte_aligned(&p->v, p->head_dim);
    key->o_aligned = facl_view_rows_16_byte_aligned(&p->out, p->head_dim);
}

void facl_plan_fwd_feature_options(const facl_fwd_plan_key *p, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "-cl-std=CL1.2 -DFACL_PARAMS_SIZE=%zu -DFACL_DTYPE=%d -DHEAD_DIM=%d -DIS_VARLEN=%d "
             "-DHAS_SOFTCAP=%d -DHAS_ALIBI=%d -DHAS_DROPOUT=%d -DHAS_SEQUSED=%d",
             sizeof(facl_kernel_params), p->dtype, p->head_dim, p->varlen, p->softcap, p->alibi,
             p->dropout, p->seqused);
}

/* attn_fwd_wgmma's static local memory (attn_fwd_mma.cl with WGMMA=1: KV_BUFS,
 * TILE_ELEMS, q_tile, SCRATCH_FLOATS): k and v tiles of block_n keys (pipe of each when
 * pipelined) and, unless q stays in registers, the group's q rows, all with head dims
 * padded to a multiple of 64. */
uint64_t facl_wgmma_local_bytes(int head_dim, int warpgroups, int q_regs, int pipe, int block_n,
                                int emulated)
{
    const uint64_t d_pad = (uint64_t)(head_dim + 63) / 64 * 64;
    const uint64_t tiles = 2u * (pipe ? (uint64_t)pipe : 1u) * (uint64_t)block_n * d_pad * 2u;
    const uint64_t q = q_regs ? 0u : 64u * (uint64_t)warpgroups * d_pad * 2u;
    const uint64_t scratch = emulated ? 4u * (uint64_t)warpgroups * (16 * 16 + 16 * 8) * 4u : 4u;
    return tiles + q + scratch;
}

/* attn_fwd_wgmma's shape: q in registers and two warpgroups sharing the tiles where their
 * local memory fits the budget, else one; a shape asked for by FACL_FWD_WGMMA_SHAPE
 * where it fits. 0 when no shape fits. On the H200 (run 28, fp16, 4k keys, TFLOP/s at
 * d = 64 / 128 / 256) two warpgroups with q in registers ran 167 / 193 / 231, one
 * warpgroup 141-145 either way; at d = 256 q in registers takes 255 registers with 104
 * bytes of spills and is still the fastest. */
static int wgmma_shape(const facl_fwd_plan_key *p, const facl_device_profile *profile,
                       uint64_t budget, int *warpgroups, int *q_regs, int *pipe)
{
    const int emulated = profile->path == FACL_PATH_MMA_EMULATED;
    if (profile->wgmma_warpgroups > 0) {
        *warpgroups = profile->wgmma_warpgroups;
        *q_regs = profile->wgmma_q_regs;
        *pipe = profile->wgmma_pipe;
        /* two warpgroups (one group per SM) may take the whole SM */
        const uint64_t room = *warpgroups == 2 ? facl_mma_sm_budget(profile) : budget;
        return facl_wgmma_local_bytes(p->head_dim, *warpgroups, *q_regs, *pipe, 64, emulated) <= room;
    }
    /* Warp-specialised above d = 128 (FACL_FWD_WGMMA_WS): q in local memory and two
     * buffers each, in the whole SM (192 KiB at d = 256); on the H200 (run 93,
     * docs/PERFORMANCE.md) 1.00-1.12x attn_fwd_mma at 4k-16k keys in fp16, 0.94-1.02x in
     * bf16, the fastest wgmma shape there */
    if (profile->wgmma_ws && p->head_dim > 128 && profile->path == FACL_PATH_NVIDIA_MMA &&
        facl_wgmma_local_bytes(p->head_dim, 2, 0, 2, 64, emulated) <= facl_mma_sm_budget(profile) &&
        (size_t)(2 * 128 + 128) <= profile->max_work_group_size) {
        *warpgroups = 2;
        *q_regs = 0;
        *pipe = 2;
        return 1;
    }
    *q_regs = 1;
    static const int stages[3] = {3, 2, 0};
    for (int i = 0; i < 3; ++i)
        for (*pipe = stages[i], *warpgroups = 2; *warpgroups >= 1; --*warpgroups)
            if (facl_wgmma_local_bytes(p->head_dim, *warpgroups, *q_regs, *pipe, 64, emulated) <= budget &&
                (size_t)*warpgroups * 128u <= profile->max_work_group_size)
                return 1;
    return 0;
}

/* attn_fwd_wgmma's key tile: 128 keys with two warpgroups up to d = 128 (the scores of
 * 128 keys take 64 registers a work-item beside the accumulators' 64 at d = 128; above,
 * they would not fit), the k and v tiles then in the whole SM with as many of the
 * shape's buffers (`pipe`, lowered to 2 where 3 do not fit) as fit; 64 keys otherwise,
 * or where FACL_FWD_WGMMA_BLOCK_N=64 asks. Half as many waits, turns, maxima and
 * rescales per key: on the H200 (run 135, docs/PERFORMANCE.md; fp16, WS + ping-pong
 * through the copy engine) 1.16-1.25x at d = 64 and 1.04-1.11x at d = 128 from 1k keys. */
static int wgmma_block_n(const facl_fwd_plan_key *p, const facl_device_profile *profile,
                         int warpgroups, int q_regs, int *pipe)
{
    const int emulated = profile->path == FACL_PATH_MMA_EMULATED;
    if (profile->wgmma_block_n == 64 || warpgroups != 2 || p->head_dim > 128 || *pipe < 2) return 64;
    for (int stages = *pipe; stages >= 2; --stages)
        if (facl_wgmma_local_bytes(p->head_dim, 2, q_regs, stages, 128, emulated) <=
            facl_mma_sm_budget(profile)) {
            *pipe = stages;
            return 128;
        }
    return 64;
}

/* The share of the SMs' time that `groups` work-groups of about equal length keep busy,
 * one group to an SM at a time: the last wave may run part-empty. */
static double wave_use(int64_t groups, int64_t sms)
{
    const int64_t waves = (groups + sms - 1) / sms;
    return waves ? (double)groups / (double)(waves * sms) : 1.0;
}

/* Row blocks per work-group of the Hopper kernel: as FACL_FWD_BLOCKS_PER_GROUP asks, else,
 * where a block's keys times head_dim stay within 2^20 (4k keys at d = 256, 8k at 128,
 * 16k at 64), the most, up to 4 at d <= 64 and 2 above, whose last wave leaves the SMs no
 * emptier than one block per group does (within 2%). A group's start (its barriers, its
 * first q, k and v: about 3-4 us on the H200) is then paid once per group, and each
 * further block's q, k and v arrive while it finishes the one before (Q_AHEAD, the
 * copier). Longer blocks hide the start themselves, and there the coarser last wave of
 * groups twice as long cost more than the start saved. On the H200 (docs/PERFORMANCE.md,
 * fp16, TFLOP/s against one block per group): run 145 (2 reps, 1k-4k keys) 4 blocks
 * 1.04-1.11x at d = 64, 3 blocks (part-empty last waves) down to 0.89x at d = 128; run 148
 * (the default grid) 1.02-1.10x within the bound but d = 128 non-causal 4k (0.96), and
 * 0.95-0.97x past it (d = 256 from 8k keys; causal 16k). */
static int wgmma_blocks_per_group(const facl_fwd_plan_key *p, const facl_device_profile *profile,
                                  int block_m)
{
    if (profile->fwd_blocks_per_group > 0) return profile->fwd_blocks_per_group;
    if ((int64_t)p->seqlen_k * p->head_dim > ((int64_t)1 << 20)) return 1;
    const int64_t sms = profile->compute_units ? profile->compute_units : 1;
    const int64_t blocks = ((int64_t)(p->seqlen_q > 0 ? p->seqlen_q : 1) + block_m - 1) / block_m;
    const int64_t heads = (int64_t)p->heads_q * p->batch;
    const double one = wave_use(blocks * heads, sms);
    int best = 1;
    for (int k = 2; k <= (p->head_dim <= 64 ? 4 : 2) && k <= blocks; ++k)
        if (wave_use((blocks + k - 1) / k * heads, sms) >= one - 0.02) best = k;
    return best;
}

/* FACL_WGMMA_WHERE_FASTER: the warp-specialised Hopper kernel with the tensor copy engine
 * (WS + ping-pong, WS_TMA) where it runs faster than attn_fwd_mma: a dense batch without
 * seqused_k, q, k and v rows 16-byte aligned (the engine's copier; elsewhere the Hopper
 * kernel's cp.async copier is slower than attn_fwd_mma), and at least as many query rows
 * and keys as its fixed costs need: 1k at d <= 64, 512 above. On the H200
 * (docs/PERFORMANCE.md, TFLOP/s of the Hopper kernel over attn_fwd_mma's, non-causal /
 * causal): with 128-key tiles (runs 135 and 137, fp16) d <= 64 0.98 / 0.84 at 1k, 1.16 /
 * 1.00 at 2k, 1.28 / 1.17 at 4k; d <= 128 1.16 / 1.00 at 1k. With several row blocks
 * per group (wgmma_blocks_per_group): d <= 64 (run 147, fp16 / bf16) 1.13 / 1.14 at 1k
 * non-causal and 0.95 / 1.02 causal, 1.26 / 1.17 at 2k; at 512 (run 149, fp16 and bf16
 * alike) d = 64 0.94 / 0.86, d = 128 1.09 / 1.01, d = 256 1.61 / 1.39. */
static int hopper_kernel_faster(const facl_fwd_plan_key *p, const facl_device_profile *profile)
{
    if (profile->fwd_wgmma != FACL_WGMMA_WHERE_FASTER || !profile->wgmma_tma ||
        profile->path != FACL_PATH_NVIDIA_MMA)
        return 0;
    if (p->varlen || p->seqused || !p->q_aligned || !p->k_aligned || !p->v_aligned) return 0;
    const int rows = p->seqlen_q < p->seqlen_k ? p->seqlen_q : p->seqlen_k;
    return rows >= (p->head_dim <= 64 ? 1024 : 512);
}

/* attn_fwd_mma: fp16 or bf16 operands, any head_dim (up to 256). */
static int mma_applies(const facl_fwd_plan_key *p)
{
    return (p->dtype == FACL_DTYPE_F16 || p->dtype == FACL_DTYPE_BF16) && p->head_dim <= 256;
}

void facl_plan_fwd(const facl_fwd_plan_key *p, const facl_device_profile *profile,
                   facl_fwd_plan *plan)
{
    char features[256];
    facl_plan_fwd_feature_options(p, features, sizeof features);
    plan->fixed_group = 0;
    plan->tma = plan->tma_q = 0;
    plan->blocks_per_group = 1;
    plan->moves_registers = 0;
    plan->group_rows = 0;
    plan->block_m = 0;
    plan->register_rows = 0;
    plan->packed_kv = 0;
    plan->packed_tiles = 0;
    plan->packed_bytes = 0;
    const int emulated = profile->path == FACL_PATH_MMA_EMULATED;
    const uint64_t mma_budget = facl_mma_local_budget(profile);
    plan->local_budget = profile->local_mem_usable;
    int warpgroups, q_regs, pipe;
    /* Forced (FACL_FWD_WGMMA=1), or its warp-specialised form with the tensor copy engine
     * where that is faster (hopper_kernel_faster); elsewhere attn_fwd_mma, which with q
     * staged in local memory ran faster than the other Hopper forms (run 51). */
    const int hopper = profile->fwd_wgmma == FACL_WGMMA_EVERYWHERE || hopper_kernel_faster(p, profile);
    if (hopper && (profile->path == FACL_PATH_NVIDIA_MMA || emulated) &&
        mma_applies(p) && wgmma_shape(p, profile, mma_budget, &warpgroups, &q_regs, &pipe)) {
        plan->kernel = "attn_fwd_wgmma";
        plan->block_n = wgmma_block_n(p, profile, warpgroups, q_regs, &pipe);
        plan->local_budget = warpgroups == 2 ? facl_mma_sm_budget(profile) : mma_budget;
        plan->rows_per_item = 1;
        plan->lanes = 2; /* 128 work-items per 64 rows */
        /* 16-byte copies of q too where q is staged in local memory */
        const int aligned = p->k_aligned && p->v_aligned && (q_regs || p->q_aligned);
        /* warp-specialised where asked and the shape allows; the copier warpgroup and the
         * barriers exist on the device only (the emulation builds the plain WG_PIPE) */
        const int ws = profile->wgmma_ws && pipe >= 2 && aligned;
        const int copier = ws && !emulated;
        plan->block_m = 64 * warpgroups;
        plan->blocks_per_group = wgmma_blocks_per_group(p, profile, plan->block_m);
        plan->fixed_group = 128u * (size_t)warpgroups + (copier ? 128u : 0u);
        plan->moves_registers = copier && warpgroups == 2;
        /* the copier through the tensor copy engine where the context has its maps
         * (profile.wgmma_tma), in dense batches: in a varlen batch a sequence's last tile
         * would bring the next sequence's rows, and keys past seqused_k may hold anything
         * (the engine's zeros start only past the whole tensor) */
        plan->tma = copier && profile->wgmma_tma && !p->varlen && !p->seqused;
        plan->tma_q = plan->tma && !q_regs;
        plan->local_bytes = facl_wgmma_local_bytes(p->head_dim, warpgroups, q_regs, pipe, plan->block_n, emulated) +
                            (copier ? 8u * (4u * (uint64_t)pipe + 2u) : 0u);
        /* FACL_SM90A: the program is rebuilt from its PTX with the sm_90a instructions
         * (programs.c, ptx_patch.h); the emulation needs no patch */
        snprintf(plan->options, sizeof plan->options,
                 "%s -DWGMMA=1 -DWARPGROUPS=%d -DQ_REGS=%d -DWG_PIPE=%d -DWG_WS=%d -DWS_PINGPONG=%d "
                 "-DM_TILES=1 -DBLOCK_N=%d -DVEC_LOADS=%d -DO_VEC=%d -DMMA_EMULATE=%d%s%s",
                 features, warpgroups, q_regs, pipe, ws, ws && profile->wgmma_ws == 2, plan->block_n,
                 aligned, p->o_aligned, emulated,
                 emulated ? "" : " -DFACL_SM90A=1", plan->tma ? " -DWS_TMA=1 -DWG_SW128=1" : "");
        return;
    }
    mma_shape mma;
    if ((profile->path == FACL_PATH_NVIDIA_MMA || emulated) && mma_applies(p) &&
        choose_mma_shape(p->head_dim, profile, mma_budget, &mma)) {
        plan->kernel = "attn_fwd_mma";
        plan->block_n = mma.block_n;
        plan->local_budget = mma_budget;
        plan->rows_per_item = 1;
        plan->lanes = 2 / mma.m_tiles; /* work-items per row: 128 of them per 64 * m_tiles rows */
        plan->fixed_group = 128;
        plan->local_bytes = mma_local_bytes(p->head_dim, mma, emulated);
        /* 16-byte copies where every row they read starts on a 16-byte boundary */
        const int aligned = p->k_aligned && p->v_aligned && (!mma.q_local || p->q_aligned);
        snprintf(plan->options, sizeof plan->options,
                 "%s -DM_TILES=%d -DQ_LOCAL=%d -DBLOCK_N=%d -DKV_STAGES=%d -DVEC_LOADS=%d "
                 "-DO_VEC=%d -DMMA_EMULATE=%d",
                 features, mma.m_tiles, mma.q_local, mma.block_n, mma.kv_stages, aligned,
                 p->o_aligned, emulated);
        return;
    }
    const facl_tuning_params tuned = facl_tuning_params_for(&profile->tuning, p->head_dim);
    if (profile->path == FACL_PATH_PORTABLE_CPU) {
        plan->kernel = "attn_fwd_rows";
        plan->block_n = CPU_TILE_N;
        plan->register_rows = cpu_register_rows(profile);
        /* each loaded key and value is reused this often: the tuned rows, in whole
         * register blocks */
        plan->rows_per_item = (tuned.cpu_rows + plan->register_rows - 1) / plan->register_rows *
                              plan->register_rows;
        plan->packed_kv = facl_plan_cpu_packing(p, profile, plan->rows_per_item,
                                                &plan->packed_tiles, &plan->packed_bytes);
        plan->lanes = 1;
        plan->local_bytes = 0; /* private arrays only */
        /* -w: PoCL on AVX2 machines warns, on its own stderr, that the 16-wide vectors
         * change the call ABI; the kernel does not depend on it. */
        snprintf(plan->options, sizeof plan->options,
                 "%s -w -DROWS=%d -DRB=%d -DTILE_N=%d -DPACKED_KV=%d", features,
                 plan->rows_per_item, plan->register_rows, CPU_TILE_N, plan->packed_kv);
        return;
    }
    const int kernel = profile->portable_kernel ? profile->portable_kernel : tuned.kernel;
    blocked_shape shape;
    if (kernel == FACL_TUNING_KERNEL_BLOCKED && blocked_shape_for(&tuned, p, profile, &shape)) {
        plan->kernel = "attn_fwd_blocked";
        plan->block_m = shape.block_m;
        plan->block_n = shape.block_n;
        plan->rows_per_item = 1;
        plan->lanes = 1; /* rows are not split in lanes: block_m rows per fixed_group work-items */
        plan->fixed_group = (size_t)blocked_group(&shape);
        plan->local_bytes = blocked_bytes(p->head_dim, &shape);
        snprintf(plan->options, sizeof plan->options,
                 "%s -DBLOCK_M=%d -DBLOCK_N=%d -DTM=%d -DTN=%d -DCHUNK_D=%d -DCHUNK_KEYS=%d",
                 features, shape.block_m, shape.block_n, shape.tm, shape.tn, shape.chunk_d,
                 shape.chunk_keys);
        return;
    }
    plan->kernel = "attn_fwd";
    plan->lanes = choose_lanes(tuned.lanes, profile);
    plan->block_n =
        choose_block_n(tuned.block_n, p->head_dim, plan->lanes, profile->local_mem_usable);
    plan->group_rows = tuned.group_rows;
    plan->rows_per_item = 1;
    plan->local_bytes = gpu_local_bytes(plan->block_n, p->head_dim, plan->lanes);
    snprintf(plan->options, sizeof plan->options, "%s -DBLOCK_N=%d -DLANES=%d -DMAX_GROUP=%d",
             features, plan->block_n, plan->lanes, GPU_MAX_GROUP);
}

void facl_plan_fwd_program(const facl_fwd_problem *problem, const facl_device_profile *profile,
                           facl_fwd_plan *plan)
{
    facl_fwd_plan_key key;
    facl_fwd_plan_key_of(problem, &key);
    facl_plan_fwd(&key, profile, plan);
}

size_t facl_plan_fwd_group_size(const facl_fwd_plan *plan, const facl_fwd_problem *p,
                                const facl_device_profile *profile, size_t kernel_wg_size)
{
    if (plan->fixed_group) return plan->fixed_group;
    if (plan->rows_per_item > 1) return 1;
    const size_t lanes = (size_t)plan->lanes;
    size_t rows = plan->group_rows > 0 ? (size_t)plan->group_rows : 64; /* tuned; 64 by default */
    /* Short query blocks (decoding) waste most of a large group: shrink towards them. */
    while (rows > 8 && rows / 2 >= (size_t)p->seqlen_q) rows /= 2;
    size_t limit = kernel_wg_size < profile->max_work_group_size ? kernel_wg_size
                                                                  : profile->max_work_group_size;
    if (limit > GPU_MAX_GROUP) limit = GPU_MAX_GROUP;
    while (rows > 1 && rows * lanes > limit) rows /= 2;
    /* A row's lanes never straddle groups; a device that cannot hold even one row's
     * lanes is refused by the launch (CL_INVALID_WORK_GROUP_SIZE), not run wrongly. */
    return rows * lanes;
}
