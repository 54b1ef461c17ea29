/* A backward attention call after validation: the forward's problem (q, k, v, out, lse
 * and every option, validated exactly as the forward validates them) plus the views the
 * backward adds. Planning and launch consume it. */
#ifndef FACL_BWD_PROBLEM_H
#define FACL_BWD_PROBLEM_H

#include <stdint.h>

#include "fwd_problem.h"

typedef struct facl_bwd_problem {
    facl_fwd_problem f;       /* f.lse is always set: the backward needs it */
    facl_view dout, dq, dk, dv;
    cl_mem workspace;         /* the caller's fp32 workspace, NULL = allocated per call */
    int64_t workspace_off;    /* its offset in floats */
    int64_t workspace_floats; /* its length in floats (checked at the launch, whose plan
                               * says how many the call needs) */
} facl_bwd_problem;

/* The names used in error messages, so packed calls can name their own views. */
typedef struct facl_bwd_names {
    facl_fwd_names fwd;       /* q, k, v */
    const char *dq, *dk, *dv;
} facl_bwd_names;

/* Validate a dense backward call (4-D views) into `problem`. Reads opts->seqused_k back
 * (blocking, after the wait list) unless opts->trust_cu_seqlens, as the forward does. */
facl_status facl_validate_bwd_dense(const facl_context *ctx, cl_command_queue queue,
                                    const facl_tensor *dout, const facl_tensor *q,
                                    const facl_tensor *k, const facl_tensor *v,
                                    const facl_tensor *out, const facl_tensor *lse,
                                    const facl_tensor *dq, const facl_tensor *dk,
                                    const facl_tensor *dv, const facl_attn_options *opts,
                                    const facl_tensor *workspace, const facl_bwd_names *names,
                                    cl_uint num_wait_events, const cl_event *wait_events,
                                    facl_bwd_problem *problem);

/* Validate a varlen backward call (3-D views plus prefix sums) into `problem`. Reads
 * cu_seqlens back (blocking) unless opts->trust_cu_seqlens, as the forward does. */
facl_status facl_validate_bwd_varlen(const facl_context *ctx, cl_command_queue queue,
                                     const facl_tensor *dout, const facl_tensor *q,
                                     const facl_tensor *k, const facl_tensor *v,
                                     const facl_tensor *cu_q, const facl_tensor *cu_k,
                                     int64_t max_seqlen_q, int64_t max_seqlen_k,
                                     const facl_tensor *out, const facl_tensor *lse,
                                     const facl_tensor *dq, const facl_tensor *dk,
                                     const facl_tensor *dv, const facl_attn_options *opts,
                                     const facl_tensor *workspace, const facl_bwd_names *names,
                                     cl_uint num_wait_events, const cl_event *wait_events,
                                     facl_bwd_problem *problem);

/* Enqueue the three backward kernels of a validated problem. */
facl_status facl_launch_bwd(facl_context *ctx, cl_command_queue queue,
                            const facl_bwd_problem *problem, cl_uint num_wait_events,
                            const cl_event *wait_events, cl_event *event);

#endif
