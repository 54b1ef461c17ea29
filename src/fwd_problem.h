/* A forward attention call after validation: every call family (dense, packed,
 * varlen) is reduced to this one description, which planning and launch consume. */
#ifndef FACL_FWD_PROBLEM_H
#define FACL_FWD_PROBLEM_H

#include "facl.h"

/* A (batch, row, head, dim) view whose dim stride is 1. Varlen views have sb = 0 and
 * rows counted from the start of the packed tensor. */
typedef struct facl_view {
    cl_mem buffer;
    int64_t offset, sb, ss, sh;
} facl_view;

/* Whether every row of the view, and every 8-element piece of it, starts on a 16-byte
 * boundary for 16-bit elements (buffers themselves are aligned by OpenCL): the kernels'
 * 16-byte loads and asynchronous copies need it. */
static inline int facl_view_rows_16_byte_aligned(const facl_view *v, int head_dim)
{
    return head_dim % 8 == 0 && v->offset % 8 == 0 && v->sb % 8 == 0 && v->ss % 8 == 0 &&
           v->sh % 8 == 0;
}

typedef struct facl_fwd_problem {
    facl_dtype dtype;
    int head_dim, batch, heads_q, heads_kv;
    int seqlen_q, seqlen_k; /* dense: the lengths; varlen: max_seqlen_q/k */
    int total_q, total_k;   /* varlen: rows of q and k; dense: unused */
    int varlen;
    cl_mem cu_q, cu_k;
    int64_t cu_q_off, cu_k_off;
    cl_mem seqused; /* opts->seqused_k, NULL = none */
    int64_t seqused_off;
    facl_view q, k, v, out;
    facl_view lse;    /* buffer NULL = not requested; ss is the row stride */
    facl_view alibi;  /* buffer NULL = none; sb, sh used */
    facl_view probs;  /* buffer NULL = none; sb, sh, ss (row) used, column stride 1 */
    float scale, softcap;
    int window_left, window_right, align_top_left;
    float dropout_p;
    uint32_t drop_threshold;
    float drop_scale;
    uint64_t seed, offset;
    /* !opts->deterministic: the backward may add dq with atomics (attn_bwd_mma's DQ_ATOMIC
     * mode; the forward has no such mode). 0, as in a zeroed problem, is deterministic. */
    int dq_atomics;
} facl_fwd_problem;

/* The tensor names used in error messages, so packed calls can name their own views. */
typedef struct facl_fwd_names {
    const char *q, *k, *v;
} facl_fwd_names;

/* The caller's options (NULL = defaults) over the defaults, as far as its struct_size
 * reaches (struct_size.h); `name` is how messages call it. */
facl_status facl_read_attn_options(const char *name, const facl_attn_options *given,
                                   facl_attn_options *out);

/* Validate a dense call (q, k, v as 4-D views) and fill `problem`. Reads
 * opts->seqused_k back (blocking, after the wait list) unless opts->trust_cu_seqlens. */
facl_status facl_validate_fwd_dense(const facl_context *ctx, cl_command_queue queue,
                                    const facl_tensor *q, const facl_tensor *k,
                                    const facl_tensor *v, const facl_tensor *out,
                                    const facl_tensor *lse, const facl_attn_options *opts,
                                    const facl_fwd_names *names, cl_uint num_wait_events,
                                    const cl_event *wait_events, facl_fwd_problem *problem);

/* Validate a varlen call (q, k, v as 3-D views plus prefix sums) and fill `problem`.
 * Reads cu_seqlens back (blocking) unless opts->trust_cu_seqlens. */
facl_status facl_validate_fwd_varlen(const facl_context *ctx, cl_command_queue queue,
                                     const facl_tensor *q, const facl_tensor *k,
                                     const facl_tensor *v, const facl_tensor *cu_q,
                                     const facl_tensor *cu_k, int64_t max_seqlen_q,
                                     int64_t max_seqlen_k, const facl_tensor *out,
                                     const facl_tensor *lse, const facl_attn_options *opts,
                                     const facl_fwd_names *names, cl_uint num_wait_events,
                                     const cl_event *wait_events, facl_fwd_problem *problem);

struct facl_fwd_plan;

/* The plan of a validated problem and its kernel objects (attn_probs too when `probs` is
 * not NULL), compiling or loading their programs. The kernels are the context's
 * (facl_program_kernel): not released by the caller, their arguments set only under the
 * enqueue lock. Where the driver's build of attn_fwd_blocked cannot take its fixed
 * work-group, the plan and kernels are attn_fwd's. */
facl_status facl_fwd_programs_get(facl_context *ctx, const facl_fwd_problem *problem,
                                  cl_kernel *fwd, cl_kernel *probs, struct facl_fwd_plan *plan);

/* Enqueue the kernels of a validated problem. */
facl_status facl_launch_fwd(facl_context *ctx, cl_command_queue queue,
                            const facl_fwd_problem *problem, cl_uint num_wait_events,
                            const cl_event *wait_events, cl_event *event);

#endif
