/*
 * testkit reference backward: the analytic gradients of SPEC.md's forward (reference.h)
 * in float64, and the storage-precision naive version SPEC.md's rule compares against.
 * Plain C11, no OpenCL calls.
 */
#ifndef FACL_TESTKIT_BWD_REF_H
#define FACL_TESTKIT_BWD_REF_H

#include "reference.h"

#ifdef __cplusplus
extern "C" {
#endif

/* float64 gradients of L = sum(out * dout) for the forward of ref_attention_f64:
 *   P = exp(x - lse) over the visible keys, Z = keep / (1 - p_drop) (1 without dropout),
 *   dV_j = sum_i P_ij Z_ij dO_i,  dP_ij = Z_ij dO_i.v_j,  D_i = sum_j P_ij dP_ij,
 *   dX_ij = P_ij (dP_ij - D_i),  dS = dX * (1 - tanh^2(s / softcap)) (softcap; s = the
 *   scaled score), dQ_i = scale sum_j dS_ij K_j,  dK_j = scale sum_i dS_ij Q_i,
 * with dK and dV of a kv head summed over the query heads of its group.
 * Inputs as ref_attention_f64, plus dout (total_q, heads_q, d). Outputs: dq (total_q,
 * heads_q, d), dk and dv (total_k, heads_kv, d); every element is written (0 where nothing
 * depends on it). */
void ref_attention_bwd_f64(const ref_problem *p, const float *q, const float *k, const float *v,
                           const float *dout, double *dq, double *dk, double *dv);

/* The same in the storage precision: fp32 arithmetic from the forward's out (rounded to
 * dt, as the device got it) and fp32 lse; P~ = P Z rounded to dt before dV, dS rounded to
 * dt before dQ and dK (where FlashAttention 2 feeds 16-bit tensor cores); fp32 sums; the
 * gradients rounded to dt. */
void ref_attention_bwd_lowp(const ref_problem *p, facl_dtype dt, const float *q, const float *k,
                            const float *v, const float *out, const float *lse,
                            const float *dout, float *dq, float *dk, float *dv);

#ifdef __cplusplus
}
#endif
#endif
