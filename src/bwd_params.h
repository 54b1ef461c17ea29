/* The backward kernels' second argument block (after attn_params), mirrored by the
 * bwd_params struct of cl_kernels/attn_bwd.cl: same fields, same order, all int64_t /
 * long, so there is no padding. Programs are built with
 * -DFACL_BWD_PARAMS_SIZE=sizeof(facl_bwd_params) and refuse to compile on a mismatch. */
#ifndef FACL_BWD_PARAMS_H
#define FACL_BWD_PARAMS_H

#include <stdint.h>

#include "bwd_problem.h"

typedef struct facl_bwd_params {
    int64_t do_off, do_sb, do_ss, do_sh;
    int64_t dq_off, dq_sb, dq_ss, dq_sh;
    int64_t dk_off, dk_sb, dk_ss, dk_sh;
    int64_t dv_off, dv_sb, dv_ss, dv_sh;
    int64_t delta_off, delta_sb, delta_sh, delta_ss;
} facl_bwd_params;

_Static_assert(sizeof(facl_bwd_params) == 20 * 8, "facl_bwd_params has padding");

/* q, k, v, out, lse, dout, dq, dk, dv, delta, cu_q, cu_k, seqused_k, alibi, then
 * attn_params and bwd_params. */
#define FACL_BWD_KERNEL_NUM_ARGS 16

/* The block of a validated problem; `delta` is the workspace view of D. */
void facl_bwd_params_fill(const facl_bwd_problem *p, const facl_view *delta,
                          facl_bwd_params *out);

#endif
