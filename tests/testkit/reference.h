/*
 * testkit reference attention: the math of SPEC.md (steps 1-8) in float64, and the
 * "low precision" naive version that SPEC.md's correctness rule compares against.
 * Plain C11, no OpenCL calls.
 */
#ifndef FACL_TESTKIT_REFERENCE_H
#define FACL_TESTKIT_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "facl.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ref_problem {
    int batch, heads_q, heads_kv, head_dim;
    const int32_t *cu_q, *cu_k;    /* batch+1 prefix sums; dense calls pass b*seqlen */
    float scale;                   /* already resolved (never 0 = default here) */
    int window_left, window_right; /* -1 unbounded; causal already folded in as window_right = 0 */
    int align_top_left;            /* 0: off = sk - sq (bottom-right), 1: off = 0 */
    float softcap;                 /* 0 off */
    const float *alibi;            /* NULL = none; slopes (heads_q) or (batch, heads_q) */
    int alibi_per_batch;
    float dropout_p;
    uint64_t seed, offset;
    /* FlashAttention 3's seqused_k: NULL = every key; else (batch) counts: sequence b
     * uses only its first used_k[b] keys (clamped into 0 .. its keys), and every mask
     * (alignment offset, windows, ALiBi distances) and attn_probs' columns follow that
     * used length (columns beyond it are 0 like the padding). */
    const int32_t *used_k;
} ref_problem;

/* Inputs: contiguous float arrays already rounded to the storage dtype:
 * q (total_q, heads_q, d), k and v (total_k, heads_kv, d).
 * Outputs: out (total_q, heads_q, d), lse (heads_q, total_q); lse may be NULL. */
void ref_attention_f64(const ref_problem *p, const float *q, const float *k, const float *v,
                       double *out, double *lse);

/* Scores and softmax in fp32, P (after dropout scaling) rounded to dt before P.V (fp32
 * accumulation), output rounded to dt; lse in fp32. lse may be NULL. */
void ref_attention_lowp(const ref_problem *p, facl_dtype dt, const float *q, const float *k,
                        const float *v, float *out, float *lse);

/* flash_attn's return_attn_probs output: (batch, heads_q, max_sq, max_sk), softmax
 * probability before dropout, negated where dropout dropped it, 0 where masked and in the
 * padding beyond each sequence's lengths. */
void ref_attn_probs(const ref_problem *p, const float *q, const float *k, double *probs,
                    int64_t max_sq, int64_t max_sk);

/* Threads for the three calls above on large problems: 0 (default) = $TESTKIT_THREADS
 * or the online CPUs, 1 = serial, n = at most n. Results never depend on it. */
void ref_set_threads(int n);

/* The keys sequence b uses: cu_k[b+1] - cu_k[b], or with used_k that clamped into
 * 0 .. it. Every sk of the reference comes from here. */
int64_t ref_seq_keys(const ref_problem *p, int b);

/* Number of keys visible to row i (0 .. sk-1) of a sequence with sq queries, sk keys,
 * and the first visible one in *first (helper shared with the tests). */
int64_t ref_visible_range(const ref_problem *p, int64_t sq, int64_t sk, int64_t i,
                          int64_t *first);

/* The ALiBi slope of query head h of sequence b (0 without ALiBi). */
float ref_alibi_slope(const ref_problem *p, int b, int h);

/* Logits of row i (steps 1-3, float64) of head h of sequence b for the keys j0 .. j0+n-1:
 * qi is the row (head_dim floats), k the (total_k, heads_kv, d) keys, kbase the
 * sequence's first key row and off its mask offset (sk - sq, or 0 top-left). raw, if not
 * NULL, receives scale * q.k before softcap and ALiBi (the backward's chain rule). */
void ref_row_scores_f64(const ref_problem *p, int b, int h, int64_t off, int64_t i,
                        const float *qi, const float *k, int64_t kbase, int64_t j0, int64_t n,
                        double *s, double *raw);

#ifdef __cplusplus
}
#endif
#endif
