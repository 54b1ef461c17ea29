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
    char options[768];
    int rows;            /* query rows per work-group (ROWS; 16 with tensor cores) */
    int key_groups;      /* KEY_GROUPS (tensor cores: the 4 warps) reading keys side by side */
    int keys_per_step;   /* KPS: keys per key group per step */
    int chunks;          /* lanes per key row: ceil(head_dim / 8) */
    int warp_shuffle;    /* lane sums through NVIDIA warp shuffles (else local memory) */
    size_t group_size;   /* chunks * key_groups work-items */
    int splits;          /* chunks of keys computed in parallel, then merged (>= 1) */
    uint64_t local_bytes;
} facl_cache_plan;

void facl_plan_cache(const facl_cache_problem *problem, const facl_device_profile *profile,
                     facl_cache_plan *plan);

/* The split count num_splits = 0 chooses: enough work-groups to fill the device
 * (`units` = work-groups without splitting, `keys` = the longest key range), each split
 * keeping at least a few steps of keys. */
int facl_plan_cache_auto_splits(int64_t units, int64_t keys, int keys_per_step,
                                const facl_device_profile *profile);

#endif
