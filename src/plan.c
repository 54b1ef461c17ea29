/* Kernel variant and geometry choices for the portable forward kernel. */
#include "plan.h"

#include <stdio.h>

/* A tile of BLOCK_N keys holds k and v as fp32: 2 * BLOCK_N * head_dim * 4 bytes of
 * local memory. Larger tiles amortise barriers; the private score array grows with
 * BLOCK_N, so wide heads take narrower tiles. Halve until the device has room. */
static int choose_block_n(int head_dim, uint64_t local_mem_usable)
{
    int block_n = head_dim <= 128 ? 32 : 16;
    while (block_n > 1 && (uint64_t)2 * (uint64_t)block_n * (uint64_t)head_dim * 4u > local_mem_usable)
        block_n /= 2;
    return block_n;
}

void facl_plan_fwd_program(const facl_fwd_problem *p, const facl_device_profile *profile,
                           facl_fwd_plan *plan)
{
    plan->block_n = choose_block_n(p->head_dim, profile->local_mem_usable);
    snprintf(plan->options, sizeof plan->options,
             "-cl-std=CL1.2 -DFACL_DTYPE=%d -DHEAD_DIM=%d -DBLOCK_N=%d -DIS_VARLEN=%d "
             "-DHAS_SOFTCAP=%d -DHAS_ALIBI=%d -DHAS_DROPOUT=%d",
             (int)p->dtype, p->head_dim, plan->block_n, p->varlen, p->softcap > 0.0f,
             p->alibi.buffer != NULL, p->dropout_p > 0.0f);
}

size_t facl_plan_fwd_rows_per_group(const facl_fwd_problem *p, const facl_device_profile *profile,
                                    size_t kernel_wg_size)
{
    size_t rows = 64;
    if (rows > kernel_wg_size) rows = kernel_wg_size;
    if (rows > profile->max_work_group_size) rows = profile->max_work_group_size;
    /* Short query blocks (decoding) waste most of a large group: shrink towards them. */
    while (rows > 8 && rows / 2 >= (size_t)p->seqlen_q) rows /= 2;
    return rows ? rows : 1;
}
