/* The argument block of every attention kernel (after its ten buffers), mirrored by
 * cl_kernels/attn_params.cl: same fields, same order, same types (long = int64_t,
 * int = int32_t, uint = uint32_t, float = float). Every program is built with
 * -DFACL_PARAMS_SIZE=sizeof(facl_kernel_params), and the kernel source refuses to
 * compile if its struct has another size; the launch checks the argument count. */
#ifndef FACL_KERNEL_PARAMS_H
#define FACL_KERNEL_PARAMS_H

#include <stdint.h>

#include "fwd_problem.h"

typedef struct facl_kernel_params {
    int64_t q_off, q_sb, q_ss, q_sh;
    int64_t k_off, k_sb, k_ss, k_sh;
    int64_t v_off, v_sb, v_ss, v_sh;
    int64_t o_off, o_sb, o_ss, o_sh;
    int64_t lse_off, lse_sb, lse_sh, lse_ss;
    int64_t probs_off, probs_sb, probs_sh, probs_ss;
    int64_t alibi_off, alibi_sb, alibi_sh;
    int64_t cu_q_off, cu_k_off, seqused_off;
    uint64_t drop_offset;
    int32_t seqlen_q, seqlen_k;
    int32_t total_q, total_k;
    int32_t heads_q, group;
    int32_t window_left, window_right, align_top_left;
    float scale, softcap, drop_scale;
    uint32_t drop_threshold, seed_lo, seed_hi;
    int32_t reserved;
} facl_kernel_params;

/* 31 eight-byte fields and 16 four-byte ones: no padding anywhere, on the host or in
 * OpenCL C, so equal sizes mean equal layouts. */
_Static_assert(sizeof(facl_kernel_params) == 31 * 8 + 16 * 4, "facl_kernel_params has padding");

/* Buffers first (q, k, v, out, lse, cu_q, cu_k, seqused_k, alibi, probs), then the block. */
#define FACL_KERNEL_NUM_ARGS 11

/* The block of a validated problem; `lse` is the view the kernels write (the caller's,
 * or a scratch one when only attn_probs needs it). */
void facl_kernel_params_fill(const facl_fwd_problem *p, const facl_view *lse,
                             facl_kernel_params *out);

#endif
