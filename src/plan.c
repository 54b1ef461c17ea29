/* Kernel variant and geometry choices for the portable forward kernels. */
#include "plan.h"

#include <stdio.h>

/* Rows per work-item of the CPU kernel: each loaded key and value is reused this often. */
#define CPU_ROWS 8
/* Keys per tile of the CPU kernel: one 16-wide vector of scores (AVX-512 width). */
#define CPU_TILE_N 16

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

void facl_plan_fwd_feature_options(const facl_fwd_problem *p, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "-cl-std=CL1.2 -DFACL_DTYPE=%d -DHEAD_DIM=%d -DIS_VARLEN=%d -DHAS_SOFTCAP=%d "
             "-DHAS_ALIBI=%d -DHAS_DROPOUT=%d",
             (int)p->dtype, p->head_dim, p->varlen, p->softcap > 0.0f, p->alibi.buffer != NULL,
             p->dropout_p > 0.0f);
}

void facl_plan_fwd_program(const facl_fwd_problem *p, const facl_device_profile *profile,
                           facl_fwd_plan *plan)
{
    char features[256];
    facl_plan_fwd_feature_options(p, features, sizeof features);
    if (profile->path == FACL_PATH_PORTABLE_CPU) {
        plan->kernel = "attn_fwd_rows";
        plan->block_n = CPU_TILE_N;
        plan->rows_per_item = CPU_ROWS;
        snprintf(plan->options, sizeof plan->options, "%s -DROWS=%d -DTILE_N=%d", features,
                 CPU_ROWS, CPU_TILE_N);
        return;
    }
    plan->kernel = "attn_fwd";
    plan->block_n = choose_block_n(p->head_dim, profile->local_mem_usable);
    plan->rows_per_item = 1;
    snprintf(plan->options, sizeof plan->options, "%s -DBLOCK_N=%d", features, plan->block_n);
}

size_t facl_plan_fwd_group_size(const facl_fwd_plan *plan, const facl_fwd_problem *p,
                                const facl_device_profile *profile, size_t kernel_wg_size)
{
    if (plan->rows_per_item > 1) return 1;
    size_t rows = 64;
    if (rows > kernel_wg_size) rows = kernel_wg_size;
    if (rows > profile->max_work_group_size) rows = profile->max_work_group_size;
    /* Short query blocks (decoding) waste most of a large group: shrink towards them. */
    while (rows > 8 && rows / 2 >= (size_t)p->seqlen_q) rows /= 2;
    return rows ? rows : 1;
}
