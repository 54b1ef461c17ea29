/* Tile sizes, build options and work-group sizes of the portable backward kernels. */
#include "bwd_plan.h"

#include <stdio.h>

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

void facl_plan_bwd_program(const facl_fwd_problem *p, const facl_device_profile *profile,
                           facl_bwd_plan *plan)
{
    char features[320];
    facl_plan_fwd_feature_options(p, features, sizeof features);
    int block = 32;
    while (block > 1 && (facl_bwd_dq_local_bytes(block, p->head_dim) > profile->local_mem_usable ||
                         facl_bwd_dkdv_local_bytes(block, p->head_dim) > profile->local_mem_usable))
        block /= 2;
    plan->block_m = plan->block_n = block;
    const uint64_t dq = facl_bwd_dq_local_bytes(block, p->head_dim);
    const uint64_t dkdv = facl_bwd_dkdv_local_bytes(block, p->head_dim);
    plan->local_bytes = dq > dkdv ? dq : dkdv;
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
