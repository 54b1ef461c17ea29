/* Planning of the KV-cache kernels (cl_kernels/attn_cache.cl): the variant's -D options,
 * its work-group shape and the number of key splits. Pure, testable without a device. */
#ifndef FACL_CACHE_PLAN_H
#define FACL_CACHE_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "cache_problem.h"
#include "device_profile.h"

typedef struct facl_cache_plan {
    const char *program; /* "attn_cache", or "attn_cache_mma" (tensor cores) */
    int cpu;             /* attn_cache's CPU variant (CACHE_CPU=1, portable-cpu path): one
                          * work-item per tile of rows, no local memory */
    char options[768];
    int rows;            /* query rows per work-group (ROWS; 16 with tensor cores) */
    int key_groups;      /* KEY_GROUPS (tensor cores: the 4 warps) reading keys side by side */
    int keys_per_step;   /* KPS: keys per key group per step */
    int chunks;          /* lanes per key row: ceil(head_dim / 8) */
    int warp_shuffle;    /* lane sums through NVIDIA warp shuffles (else local memory) */
    int mma_warps;       /* tensor cores: CACHE_WARPS, warps per work-group (else 0) */
    int mma_stages;      /* tensor cores: CACHE_STAGES, steps of tiles in flight per warp */
    int mma_bulk;        /* tensor cores: CACHE_BULK, tiles filled by the copy engine */
    size_t group_size;   /* chunks * key_groups work-items */
    int splits;          /* chunks of keys computed in parallel, then merged (>= 1) */
    /* the splits may be merged inside the attention kernel (tensor cores, dense queries,
     * splits > 1); the launch adds -DMERGE_IN_KERNEL=1 when it has counters for the
     * queue, else a second kernel (cache_combine) merges */
    int merge_in_kernel_ok;
    int64_t units; /* work-groups per split: a counter each when merged in the kernel */
    uint64_t local_bytes;
    uint64_t local_budget; /* what the launch allows it (local_mem_usable, or for
                            * attn_cache_mma facl_mma_local_budget, an SM's for 8 warps) */
} facl_cache_plan;

/* The tensor-core kernel's work-group shape; 0 = the planner's choice. Set through
 * FACL_CACHE_MMA_SHAPE for benchmarking (docs/ARCHITECTURE.md). */
typedef struct facl_cache_mma_shape {
    int warps;  /* 1, 2 or 4 */
    int stages; /* 1 to 4 */
    int copy;   /* how the tiles are filled: a facl_cache_copy */
} facl_cache_mma_shape;

/* How attn_cache_mma fills its tiles: the planner's choice, 16-byte asynchronous copies by
 * every lane (cp.async, sm_80), or a bulk copy per row by the copy engine (sm_90). */
typedef enum facl_cache_copy {
    FACL_CACHE_COPY_AUTO = 0,
    FACL_CACHE_COPY_ASYNC = 1,
    FACL_CACHE_COPY_BULK = 2
} facl_cache_copy;

/* Everything the cache planner reads of a problem and of the requested shape, and
 * nothing else: facl_plan_cache_keyed sees only this and the device profile, so one key
 * on one profile always gives the same plan (plan_memo.h reuses plans on that). All
 * ints, so no padding (cache_plan.c checks) and equal keys are equal bytes. */
typedef struct facl_cache_plan_key {
    int dtype, head_dim, batch, heads_q, heads_kv, seqlen_q, seqlen_k, varlen;
    int softcap, alibi, seqused;          /* the forward's features, 0 or 1 */
    int kv_aligned;                       /* k and v rows 16-byte aligned */
    int paged, seqlens, batch_idx, leftpad, k_new, cu_new, rotary; /* each 0 or 1 */
    int page_size;                        /* paged: rows per page, else 0 */
    int keys_from_cu_k;                   /* key_source == FACL_KEYS_CU_SEQLENS_K */
    int num_splits;
    facl_cache_mma_shape shape;           /* the requested shape, zeros = none */
    int q_aligned;                        /* q rows 16-byte aligned (last: the fields
                                           * before it line up with the forward key's in
                                           * test_plan_memo's check that they stay apart) */
} facl_cache_plan_key;

/* `shape` may be NULL. */
void facl_cache_plan_key_of(const facl_cache_problem *problem, const facl_cache_mma_shape *shape,
                            facl_cache_plan_key *key);

/* A requested shape whose tiles do not fit the device's local memory is not taken (the
 * planner's choice is). */
void facl_plan_cache_keyed(const facl_cache_plan_key *key, const facl_device_profile *profile,
                           facl_cache_plan *plan);

/* facl_plan_cache_keyed of the problem's key. */
void facl_plan_cache(const facl_cache_problem *problem, const facl_device_profile *profile,
                     const facl_cache_mma_shape *shape, facl_cache_plan *plan);

/* The most splits a call may ask for, and the most num_splits = 0 chooses. */
#define FACL_CACHE_MAX_SPLITS 256
#define FACL_CACHE_MAX_AUTO_SPLITS 64

/* fp32 scratch for `splits` partials of rows x heads rows of head_dim values and their
 * lse (at least 1). */
uint64_t facl_cache_workspace_floats(uint64_t rows, uint64_t heads, uint64_t head_dim,
                                     int splits);

/* An NVIDIA device of the nvidia-mma path with Hopper's copy engine (sm_90 and newer),
 * which the planner uses for dense caches and large pages (cache_plan.c says why). */
int facl_cache_has_copy_engine(const facl_device_profile *profile);

/* "W,S" or "W,S,async" / "W,S,bulk" (FACL_CACHE_MMA_SHAPE) into a shape; 0 on success,
 * -1 if malformed. */
int facl_parse_cache_mma_shape(const char *text, facl_cache_mma_shape *shape);

/* The split count num_splits = 0 chooses (`units` = work-groups without splitting,
 * `keys` = the longest key range): on a CPU one work-group per core; on a GPU one wave
 * of work-groups (`groups_per_cu` to a compute unit), each split keeping at least 256
 * keys (cache_plan.c says why). */
int facl_plan_cache_auto_splits(int64_t units, int64_t keys, int keys_per_step,
                                int groups_per_cu, const facl_device_profile *profile);

#endif
