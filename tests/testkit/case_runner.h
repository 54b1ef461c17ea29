/*
 * testkit case runner: one forward attention case end to end on a facl_context.
 * Draws seeded random normal inputs, rounds them to the storage dtype, uploads them
 * (packed layouts: one buffer; `strided`: padded views at non-zero offsets, in a
 * memory order other than the logical one), poisons every output with 0xFF bytes (NaN
 * in every dtype), calls the matching facl_* function, waits, reads everything back,
 * and judges out and lse (and attn_probs if asked) against the reference with SPEC.md's
 * rule (cmp_check). Also checks that nothing outside the output views was written and
 * that the input buffers are unchanged. By default on the context's queue with the
 * buffers filled at creation; `queue` and `async_inputs` make it a caller's queue and
 * enqueued uploads passed to the call as its wait list.
 */
#ifndef FACL_TESTKIT_CASE_RUNNER_H
#define FACL_TESTKIT_CASE_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#include "compare.h"
#include "facl.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum case_layout {
    CASE_DENSE,
    CASE_QKVPACKED,
    CASE_KVPACKED,
    CASE_VARLEN,
    CASE_VARLEN_QKVPACKED,
    CASE_VARLEN_KVPACKED
} case_layout;

typedef struct fwd_case {
    case_layout layout;
    facl_dtype dtype;
    /* batch and the seqlens may be 0 (varlen batch 0: cu_seqlens of one entry); a buffer
     * then holds one poisoned element (OpenCL has no empty buffers) that must stay so. */
    int batch, seqlen_q, seqlen_k, heads_q, heads_kv, head_dim;
    /* varlen: per-sequence lengths (NULL = all equal to seqlen_q / seqlen_k). qkv-packed
     * layouts need seqlen_q == seqlen_k (and equal seqlens) and heads_q == heads_kv. */
    const int32_t *seqlens_q, *seqlens_k;
    facl_attn_options opts; /* alibi_slopes / attn_probs / seqused_k left NULL: use the
                             * fields below */
    int use_alibi;
    int alibi_per_batch;
    int want_lse;
    int want_probs;
    int strided; /* views with padding between heads / rows and a non-zero buffer offset */
    uint64_t seed;
    /* varlen only: the max_seqlen_q / max_seqlen_k passed to the call; 0 = the true maxima
     * of the sequences. Smaller than a real sequence needs opts.trust_cu_seqlens = 1 (then
     * every row is still computed; the maxima decide the window normalisation and
     * attn_probs' shape); larger is always valid. varlen-qkvpacked passes the q one. */
    int64_t call_max_seqlen_q, call_max_seqlen_k;
    /* FlashAttention 3's seqused_k (NULL = none): (batch) counts uploaded as an int32
     * tensor (`strided`: at a non-zero offset, poisoned around) and passed as
     * opts.seqused_k; the reference uses them clamped into 0 .. each sequence's keys, as
     * the device does for a trusted call (untrusted, a value out of range fails the call). */
    const int32_t *seqused_k;
    /* The queue passed to the call, then finished and read back on (NULL = the
     * context's queue). */
    cl_command_queue queue;
    /* 0: every buffer filled at creation (CL_MEM_COPY_HOST_PTR), no wait list.
     * 1: the buffers are created empty; the inputs are uploaded with non-blocking
     * clEnqueueWriteBuffer and the outputs poisoned with clEnqueueFillBuffer, all on
     * that queue, and the events of those commands are the call's wait list; a
     * successful call must then return an event. */
    int async_inputs;
} fwd_case;

typedef struct case_result {
    facl_status status; /* what the facl call returned */
    cmp_result out, lse, probs;
    int pass;
    double seconds; /* the facl call and clFinish */
    char detail[256];
} case_result;

/* Runs the case; returns r->pass (1 pass, 0 fail). Never aborts on a library failure:
 * a facl error is a failure with facl_last_error() in r->detail. */
int run_fwd_case(facl_context *ctx, const fwd_case *c, case_result *r);

/* A case with default options, lse on, everything else off. */
fwd_case fwd_case_make(case_layout layout, facl_dtype dt, int d, int sq, int sk, int hq, int hkv,
                       int batch, uint64_t seed);

/* A short unique-ish name, e.g. "dense f16 d=64 sq=113 sk=203 h=6/2 b=3 causal-br
 * strided lse". */
void fwd_case_name(const fwd_case *c, char *buf, size_t size);

/* Multi-line description of a result (errors of out / lse / probs and the detail). */
void case_result_format(const case_result *r, char *buf, size_t size);

const char *case_layout_name(case_layout layout);
const char *testkit_dtype_name(facl_dtype dt);

#ifdef __cplusplus
}
#endif
#endif
