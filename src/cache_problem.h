/* A call that reads keys and values from a KV cache (facl_fwd_kvcache, and the varlen
 * calls with a block table) after validation: the forward description it shares with
 * every attention call, plus where the cache's keys are and what is appended to it.
 * Planning and launch (cache_launch.c) consume it; the kernels are cl_kernels/attn_cache.cl. */
#ifndef FACL_CACHE_PROBLEM_H
#define FACL_CACHE_PROBLEM_H

#include <stdint.h>

#include "fwd_problem.h"

/* Where sequence b's key count comes from. */
typedef enum facl_key_source {
    FACL_KEYS_CACHE_SEQLENS = 0, /* cache_seqlens[b] (or the host value) + its new keys */
    FACL_KEYS_CU_SEQLENS_K = 1   /* cu_k[b+1] - cu_k[b] (varlen call with a block table) */
} facl_key_source;

typedef struct facl_cache_problem {
    /* q, out, lse, alibi, scale, softcap, windows, alignment, heads, head_dim, batch;
     * varlen q through cu_q / total_q / seqlen_q (= max_seqlen_q); k and v are the
     * cache views: dense (batch_cache row, position, head) or paged (page, row in page,
     * head). seqlen_k is the capacity of one sequence's cache (dense: seqlen_cache;
     * paged: max_blocks * page_size), the key length of the window rule. cu_k and
     * seqused are used with FACL_KEYS_CU_SEQLENS_K. Dropout and attn_probs are off. */
    facl_fwd_problem fwd;
    facl_key_source key_source;
    /* cache_seqlens: buffer (NULL = seqlens_value for every sequence) */
    cl_mem seqlens;
    int64_t seqlens_off;
    int seqlens_value;
    int batch_cache;           /* dense: k_cache's first dimension */
    cl_mem batch_idx;          /* NULL = row b */
    int64_t batch_idx_off;
    cl_mem leftpad;            /* NULL = 0 */
    int64_t leftpad_off;
    /* paged: block table (batch, max_blocks) with row stride bt_sb */
    int paged, page_size, num_blocks, max_blocks;
    cl_mem block_table;
    int64_t bt_off, bt_sb;
    /* appended keys/values: buffer NULL = none. Dense (batch, seqlen_new, heads_kv, d):
     * sb, ss, sh; varlen (total_new, heads_kv, d): sb = 0, rows through cu_new. */
    facl_view k_new, v_new;
    int seqlen_new;            /* dense: k_new's seqlen; varlen: 0 (from cu_new) */
    int total_new;             /* varlen: k_new's rows */
    cl_mem cu_new;             /* varlen k_new's prefix sums, else NULL */
    int64_t cu_new_off;
    /* rotary: cos/sin (seqlen_ro, rotary_dim / 2), row stride ss; buffer NULL = none */
    facl_view cos, sin;
    int rotary_dim, seqlen_ro, rotary_interleaved;
    int num_splits;            /* as the caller gave it: 0 = choose, 1 = off, n */
    /* the caller's fp32 scratch for split partials: buffer NULL = allocate per call */
    cl_mem workspace;
    int64_t workspace_off, workspace_floats;
} facl_cache_problem;

/* Validate facl_fwd_kvcache's arguments and fill `problem`. Unless
 * opts->trust_cu_seqlens, reads the index buffers back (blocking, after the wait list)
 * and refuses lengths beyond the cache, leftpad beyond cache_seqlens, table entries out
 * of range, overlapping appends and rotary positions past seqlen_ro. */
facl_status facl_validate_kvcache(const facl_context *ctx, cl_command_queue queue,
                                  const facl_tensor *q, const facl_tensor *k_cache,
                                  const facl_tensor *v_cache, const facl_kvcache_args *cache,
                                  const facl_tensor *out, const facl_tensor *lse,
                                  const facl_attn_options *opts, cl_uint num_wait_events,
                                  const cl_event *wait_events, facl_cache_problem *problem);

/* facl_varlen_fwd (and its packed forms) with opts->block_table: k and v are paged
 * (num_blocks, page_size, heads_kv, d), keys counted by cu_seqlens_k, seqused_k
 * honoured, nothing appended. Same checks and read-backs as the plain varlen call, plus
 * the table's shape and (unless trusted) the entries each sequence uses. */
facl_status facl_validate_varlen_paged(const facl_context *ctx, cl_command_queue queue,
                                       const facl_tensor *q, const facl_tensor *k,
                                       const facl_tensor *v, const facl_tensor *cu_q,
                                       const facl_tensor *cu_k, int64_t max_seqlen_q,
                                       int64_t max_seqlen_k, const facl_tensor *out,
                                       const facl_tensor *lse, const facl_attn_options *opts,
                                       const facl_fwd_names *names, cl_uint num_wait_events,
                                       const cl_event *wait_events, facl_cache_problem *problem);

/* Enqueue the append (when k_new is given) and the attention, with split-KV partials
 * merged through attn_merge when the plan splits. */
facl_status facl_launch_cache(facl_context *ctx, cl_command_queue queue,
                              const facl_cache_problem *problem, cl_uint num_wait_events,
                              const cl_event *wait_events, cl_event *event);

#endif
