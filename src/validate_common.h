/* The checks every attention call's validation shares (validate_fwd.c defines them; the
 * forward and KV-cache validations use them). Each failure names the argument. */
#ifndef FACL_VALIDATE_COMMON_H
#define FACL_VALIDATE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "fwd_problem.h"

/* The view of `t` with the strides of the given dimensions (-1 = stride 0). */
facl_view facl_view_of(const facl_tensor *t, int batch_dim, int row_dim, int head_dim_index);

/* ctx present, the caller's options over the defaults into `local` (*opts then points
 * there), and the queue. */
facl_status facl_check_common(const facl_context *ctx, cl_command_queue queue,
                              const facl_attn_options **opts, facl_attn_options *local);

/* q, k, v, out: present, same float dtype, same head_dim (last dim) in 1..256, out shaped
 * like q, v like k, heads_q (dim rank_q - 2) a positive multiple of heads_kv (dim
 * rank_k - 2). Fills dtype, head_dim, heads_q, heads_kv. */
facl_status facl_check_qkvo(const facl_context *ctx, const facl_tensor *q, const facl_tensor *k,
                            const facl_tensor *v, const facl_tensor *out, int rank_q, int rank_k,
                            const facl_fwd_names *names, facl_fwd_problem *p);

/* The options' scalars and what comes from them alone (scale, softcap, the windows
 * normalised against p->seqlen_k, which must be set, alignment, dropout). */
facl_status facl_check_scalar_options(const facl_attn_options *o, int head_dim,
                                      facl_fwd_problem *p);

/* lse (dense or varlen by p->varlen), alibi slopes, seqused_k and attn_probs, against
 * p's batch, heads and lengths. */
facl_status facl_check_optional_tensors(const facl_context *ctx, const facl_tensor *lse,
                                        const facl_attn_options *o, facl_fwd_problem *p);

/* cu_seqlens_q/k (int32, batch + 1 >= 1 entries each) and the maxima (>= 0, 32-bit);
 * fills batch, total_q (q's rows), seqlen_q/k (the maxima), cu_q/cu_k. */
facl_status facl_check_varlen_seqlens(const facl_context *ctx, const facl_tensor *q,
                                      const facl_tensor *cu_q, const facl_tensor *cu_k,
                                      int64_t max_seqlen_q, int64_t max_seqlen_k,
                                      facl_fwd_problem *p);

/* Read `count` int32 from `buffer` at element `offset` (blocking, after the wait list)
 * into *values (malloc'd, at least one element; the caller frees). Enqueued under the
 * context's enqueue lock, waited for outside it. */
facl_status facl_read_int32_range(const facl_context *ctx, cl_command_queue queue, cl_mem buffer,
                                  uint64_t offset, size_t count, const char *name,
                                  cl_uint num_wait_events, const cl_event *wait_events,
                                  int32_t **values);

/* The same for a 1-D int32 tensor (all its t->shape[0] entries). */
facl_status facl_read_int32s(const facl_context *ctx, cl_command_queue queue,
                             const facl_tensor *t, const char *name, cl_uint num_wait_events,
                             const cl_event *wait_events, int32_t **values);

/* Read prefix sums back and refuse (FACL_ERROR_INVALID_SEQLENS) a first entry other than
 * 0, a decrease, a length > max_seqlen or a last sum > total; on success *sums holds them
 * (the caller frees). */
facl_status facl_check_prefix_sums(const facl_context *ctx, cl_command_queue queue,
                                   const facl_tensor *cu, const char *name, int64_t total,
                                   int64_t max_seqlen, const char *max_name,
                                   cl_uint num_wait_events, const cl_event *wait_events,
                                   int32_t **sums);

/* opts->seqused_k read back: 0 <= seqused_k[b] <= the keys of sequence b (cu_k NULL:
 * p->seqlen_k; else cu_k[b+1] - cu_k[b]). With `used` not NULL, *used receives the
 * values on success (the caller frees). */
facl_status facl_check_seqused(const facl_context *ctx, cl_command_queue queue,
                               const facl_tensor *seqused, const facl_fwd_problem *p,
                               const int32_t *cu_k, cl_uint num_wait_events,
                               const cl_event *wait_events, int32_t **used);

#endif
