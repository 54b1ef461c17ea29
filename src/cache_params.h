/* The second argument block of the KV-cache kernels (cl_kernels/attn_cache.cl, struct
 * cache_params; the two must change together), after the forward's attn_params. Offsets
 * and strides count elements. Built with -DFACL_CACHE_PARAMS_SIZE=sizeof. */
#ifndef FACL_CACHE_PARAMS_H
#define FACL_CACHE_PARAMS_H

#include <stdint.h>

typedef struct facl_cache_params {
    int64_t bt_off, bt_sb;                 /* block table: offset, row stride */
    int64_t seqlens_off, batch_idx_off, leftpad_off, cu_new_off;
    int64_t kn_off, kn_sb, kn_ss, kn_sh;   /* k_new view */
    int64_t vn_off, vn_sb, vn_ss, vn_sh;   /* v_new view */
    int64_t cos_off, cos_ss, sin_off, sin_ss;
    /* split partials (fp32): out (split, batch, row, head), lse (split, batch, head, row),
     * from part_off / plse_off of their buffers (one workspace may hold both) */
    int64_t part_off, part_split, part_sb, part_ss, part_sh;
    int64_t plse_off, plse_split, plse_sb, plse_sh, plse_ss;
    int32_t page_size, num_blocks, max_blocks, capacity;
    int32_t batch_cache, seqlens_value, seqlen_new, total_new;
    int32_t rotary_half, rotary_interleaved, seqlen_ro, q_rotary_per_row;
    int32_t num_splits, batch, reserved0, reserved1; /* reserved0 was log2(page_size): now PAGE_SHIFT */
} facl_cache_params;

_Static_assert(sizeof(facl_cache_params) == 28 * 8 + 16 * 4, "facl_cache_params has padding");

/* attn_cache's buffers: q, k_cache, v_cache, out (the partials with splits), lse (the
 * partials' lse with splits), cu_q, cu_k, seqused, alibi, cache_seqlens, batch_idx,
 * leftpad, block_table, cu_new, cos, sin, then for a merge inside the kernel the merged
 * out and lse and the split counters (else NULL); then attn_params and cache_params. */
#define FACL_CACHE_ATTN_NUM_ARGS 21
/* cache_append's: k_new, v_new, k_cache, v_cache, cache_seqlens, batch_idx, block_table,
 * cu_new, cos, sin; then the two blocks. */
#define FACL_CACHE_APPEND_NUM_ARGS 12
/* cache_combine's: partial out, partial lse, out, lse, cu_q; then the two blocks. */
#define FACL_CACHE_COMBINE_NUM_ARGS 7

#endif
