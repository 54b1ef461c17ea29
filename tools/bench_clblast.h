/*
 * The baseline an OpenCL user would write today: standard attention as
 *   S = scale * Q K^T   (CLBlast strided-batched GEMM, one matrix per (batch, head))
 *   P = softmax(S)      (bench_softmax.c, in place, causal mask bottom-right)
 *   O = P V             (CLBlast strided-batched GEMM)
 * over contiguous (batch, heads, seqlen, head_dim) buffers, materialising the full
 * score matrix (batch * heads * seqlen_q * seqlen_k elements in the storage dtype).
 * fp32 through Sgemm, fp16 through Hgemm (CLBlast needs cl_khr_fp16 for it); CLBlast has
 * no bf16. Built only with CLBlast (FACL_BENCH_HAVE_CLBLAST); without it every call
 * reports the column unavailable.
 */
#ifndef FACL_TOOLS_BENCH_CLBLAST_H
#define FACL_TOOLS_BENCH_CLBLAST_H

#include <stddef.h>
#include <stdint.h>

#include "bench_grid.h"
#include "facl.h"

typedef struct bench_baseline bench_baseline;

/* NULL with a reason in `why` when the baseline cannot run at all (not built, kernel
 * failed to build). */
bench_baseline *bench_baseline_create(facl_context *ctx, char *why, size_t why_size);
void bench_baseline_free(bench_baseline *b);

/* 1 if the baseline can run `dtype` on this device, else 0 with the reason in `why`. */
int bench_baseline_supports(const bench_baseline *b, facl_dtype dtype, char *why,
                            size_t why_size);

/* Device bytes the baseline allocates for a point: q, k, v, out and the score matrix. */
uint64_t bench_baseline_memory(const bench_config *c);
uint64_t bench_baseline_scores_bytes(const bench_config *c);

/* Enqueues one forward on (batch, heads, seqlen, hdim) buffers q, k, v -> out, using
 * `scores` (bench_baseline_scores_bytes large) as the score matrix. *last gets the event
 * of the last command. Returns 0, or non-zero with a message. */
int bench_baseline_enqueue(bench_baseline *b, cl_command_queue queue, const bench_config *c,
                           cl_mem q, cl_mem k, cl_mem v, cl_mem out, cl_mem scores,
                           cl_event *last, char *err, size_t err_size);

/* Called once at exit: CLBlast keeps compiled programs in a process-wide cache. */
void bench_baseline_shutdown(void);

#endif
