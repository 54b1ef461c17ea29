/* Variant and geometry of the KV-cache kernels. */
#include "cache_plan.h"

#include <stdio.h>

#include "cache_params.h"
#include "kernel_params.h"

/* Work-items per work-group the kernel aims at: four warps on NVIDIA, two wavefronts on
 * AMD; PoCL runs a group as a loop, where the size only sets the vector width. */
#define TARGET_GROUP 128
/* Work-groups per compute unit that keep enough loads in flight to saturate memory. */
#define GPU_GROUPS_PER_CU 8
/* A split keeps at least this many steps of keys, so its fixed costs stay small. */
#define MIN_STEPS_PER_SPLIT 4
#define MAX_AUTO_SPLITS 64

static uint64_t local_bytes(int rows, int key_groups, int kps, int chunks)
{
    const uint64_t floats = (uint64_t)key_groups * kps * rows * chunks + /* lane sums */
                            (uint64_t)key_groups * kps * rows +         /* scores */
                            2u * (uint64_t)key_groups * rows +           /* softmax states */
                            (uint64_t)key_groups * chunks * 8;           /* output sums */
    return floats * 4u;
}

int facl_plan_cache_auto_splits(int64_t units, int64_t keys, int keys_per_step,
                                const facl_device_profile *profile)
{
    const int64_t cus = profile->compute_units ? profile->compute_units : 1;
    const int64_t target = profile->type & CL_DEVICE_TYPE_CPU ? cus : cus * GPU_GROUPS_PER_CU;
    if (units <= 0 || units >= target) return 1;
    int64_t splits = (target + units - 1) / units;
    const int64_t by_keys = keys / ((int64_t)keys_per_step * MIN_STEPS_PER_SPLIT);
    if (splits > by_keys) splits = by_keys;
    if (splits > MAX_AUTO_SPLITS) splits = MAX_AUTO_SPLITS;
    return splits < 1 ? 1 : (int)splits;
}

/* Aligned 16-byte loads need every row and every 8-dim chunk to start on a 16-byte
 * boundary (buffers themselves are aligned by OpenCL). */
static int aligned_view(const facl_view *v, int head_dim)
{
    return head_dim % 8 == 0 && v->offset % 8 == 0 && v->sb % 8 == 0 && v->ss % 8 == 0 &&
           v->sh % 8 == 0;
}

/* attn_cache_mma.cl's local arrays: the emulation scratch (4 warps of
 * MMA_SCRATCH_PER_WARP = 16 * 16 + 16 * 8 floats, else 1), the warps' row maxima and
 * normalisers, the 16-row output sum, and each warp's key and value tiles (16 rows of
 * head_dim + 8 16-bit elements). */
static uint64_t mma_local_bytes(int head_dim, int emulated)
{
    const uint64_t scratch = emulated ? 4u * (16 * 16 + 16 * 8) : 1u;
    const uint64_t tiles = 4u * 2u * 16u * ((uint64_t)head_dim + 8u) * 2u;
    return 4u * (scratch + 2u * 4u * 16u + 16u * (uint64_t)head_dim) + tiles;
}

/* The tensor-core kernel: 16-bit storage, head dims it keeps in registers, rows whose
 * 32-bit pairs are aligned, on a path whose warp operations exist (NVIDIA, probed) or are
 * emulated (tests). */
static int use_mma(const facl_cache_problem *p, const facl_device_profile *profile, int aligned)
{
    const facl_fwd_problem *f = &p->fwd;
    const int mma_path = profile->path == FACL_PATH_NVIDIA_MMA ||
                         profile->path == FACL_PATH_MMA_EMULATED;
    return mma_path && f->dtype != FACL_DTYPE_F32 && f->head_dim % 16 == 0 &&
           f->head_dim <= 128 && aligned &&
           mma_local_bytes(f->head_dim, profile->path == FACL_PATH_MMA_EMULATED) <=
               profile->local_mem_usable &&
           profile->max_work_group_size >= 128;
}

void facl_plan_cache(const facl_cache_problem *p, const facl_device_profile *profile,
                     facl_cache_plan *plan)
{
    const facl_fwd_problem *f = &p->fwd;
    const int group = f->heads_q / f->heads_kv;
    const int64_t rows_needed = (int64_t)group * (f->seqlen_q > 0 ? f->seqlen_q : 1);
    const int aligned = aligned_view(&f->k, f->head_dim) && aligned_view(&f->v, f->head_dim);
    const int mma = use_mma(p, profile, aligned);
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
    if (mma) { /* 4 warps, each 16 keys per step, over a 16-row tile */
        plan->rows = 16;
        plan->key_groups = 4;
        plan->keys_per_step = 16;
        plan->warp_shuffle = 0;
        plan->group_size = 128;
        plan->local_bytes = mma_local_bytes(f->head_dim, profile->path == FACL_PATH_MMA_EMULATED);
    }

    if (p->num_splits > 0) {
        plan->splits = p->num_splits;
    } else {
        const int64_t tiles = (rows_needed + plan->rows - 1) / plan->rows;
        plan->splits = facl_plan_cache_auto_splits(
            (int64_t)f->batch * f->heads_kv * tiles, f->seqlen_k,
            plan->key_groups * plan->keys_per_step, profile);
    }

    snprintf(plan->options, sizeof plan->options,
             "-cl-std=CL1.2 -DFACL_PARAMS_SIZE=%zu -DFACL_CACHE_PARAMS_SIZE=%zu -DFACL_DTYPE=%d "
             "-DPART_DTYPE=0 -DHEAD_DIM=%d -DIS_VARLEN=%d -DHAS_SOFTCAP=%d -DHAS_ALIBI=%d "
             "-DHAS_DROPOUT=0 -DHAS_SEQUSED=%d -DIS_PAGED=%d -DHAS_SEQLENS_BUF=%d "
             "-DHAS_BATCH_IDX=%d -DHAS_LEFTPAD=%d -DHAS_NEW=%d -DNEW_VARLEN=%d -DHAS_ROTARY=%d "
             "-DKEYS_FROM_CU_K=%d -DSPLIT=%d -DALIGNED_KV=%d -DWARP_SHUFFLE=%d -DROWS=%d "
             "-DKEY_GROUPS=%d -DKPS=%d -DCACHE_MMA=%d -DMMA_EMULATE=%d",
             sizeof(facl_kernel_params), sizeof(facl_cache_params), (int)f->dtype, f->head_dim,
             f->varlen, f->softcap > 0.0f, f->alibi.buffer != NULL, f->seqused != NULL, p->paged,
             p->seqlens != NULL, p->batch_idx != NULL, p->leftpad != NULL,
             p->k_new.buffer != NULL, p->cu_new != NULL, p->cos.buffer != NULL,
             p->key_source == FACL_KEYS_CU_SEQLENS_K, plan->splits > 1, aligned, plan->warp_shuffle, plan->rows,
             plan->key_groups, plan->keys_per_step, mma, mma && profile->path == FACL_PATH_MMA_EMULATED);
}
