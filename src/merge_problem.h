/* facl_merge after validation: the views of the parts and the output, reduced to
 * (batch, row, head) form (varlen tensors have one batch of `rows` rows). */
#ifndef FACL_MERGE_PROBLEM_H
#define FACL_MERGE_PROBLEM_H

#include <stdint.h>

#include "facl.h"

/* Mirrored by merge_params in cl_kernels/attn_merge.cl (same fields, order, types). */
typedef struct facl_merge_params {
    int64_t part_off, part_ss, part_sb, part_sr, part_sh;
    int64_t plse_off, plse_ss, plse_sb, plse_sh, plse_sr;
    int64_t o_off, o_sb, o_sr, o_sh;
    int64_t lse_off, lse_sb, lse_sh, lse_sr;
    int32_t splits, rows;
} facl_merge_params;

_Static_assert(sizeof(facl_merge_params) == 18 * 8 + 2 * 4, "facl_merge_params has padding");

/* attn_merge's arguments: parts, lse_parts, out, lse, then the block above. */
#define FACL_MERGE_KERNEL_NUM_ARGS 5

typedef struct facl_merge_problem {
    facl_dtype part_dtype, out_dtype;
    int head_dim, batch, rows, heads;
    cl_mem parts, lse_parts, out, lse; /* lse NULL = not requested */
    facl_merge_params params;
} facl_merge_problem;

facl_status facl_validate_merge(const facl_context *ctx, cl_command_queue queue,
                                const facl_tensor *out_parts, const facl_tensor *lse_parts,
                                const facl_tensor *out, const facl_tensor *lse,
                                facl_merge_problem *problem);

facl_status facl_launch_merge(facl_context *ctx, cl_command_queue queue,
                              const facl_merge_problem *problem, cl_uint num_wait,
                              const cl_event *wait, cl_event *event);

#endif
