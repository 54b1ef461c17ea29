/*
 * testkit KV-cache reference builder: from host copies of the inputs of a
 * facl_fwd_kvcache call (or of a varlen call with opts->block_table), simulates what
 * SPEC.md ("KV cache") says the call does, and reduces the attention to the plain
 * reference (reference.h) so that SPEC.md's correctness rule applies unchanged:
 *
 * - the cache after the in-place append: new key t of sequence b rotated at position
 *   cache_seqlens[b] + t (exact rotation, then rounded to the storage dtype), new values
 *   copied bit for bit, written at that position of cache row batch_idx[b] (dense) or of
 *   page block_table[b][pos / page_size], row pos % page_size (paged);
 * - per sequence, the keys and values at positions [leftpad[b], cache_seqlens[b] +
 *   new_b) gathered from that updated cache into contiguous arrays (sk = cache_seqlens[b]
 *   + new_b - leftpad[b]: the bottom-right offset sk - sq and the ALiBi distances follow);
 * - q rotated (query i at cache_seqlens[b] + i when causal or a window is set after the
 *   window normalisation, else at cache_seqlens[b]) and rounded to the storage dtype;
 * - windows normalised against the cache's capacity (dense: seqlen_cache; paged:
 *   max_blocks * page_size; a varlen call with a block table: max_seqlen_k), causal
 *   folded in as window_right = 0.
 * Rotary pairs: interleaved (2t, 2t+1), else GPT-NeoX (t, t + rotary_dim / 2); a pair
 * (a, b) becomes (a cos - b sin, a sin + b cos) with cos / sin of row `position`.
 *
 * The cache lives in raw buffer images (the bytes of the cl_mem holding k_cache, and of
 * the one holding v_cache: they may be the same image) addressed through element
 * offsets and strides, so that "everything else unchanged" is checked bit for bit over
 * the whole buffer, padding and unused pages included.
 * Plain C11, no OpenCL calls.
 */
#ifndef FACL_TESTKIT_KVCACHE_REF_H
#define FACL_TESTKIT_KVCACHE_REF_H

#include <stddef.h>
#include <stdint.h>

#include "facl.h"
#include "reference.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where the cache's elements are. Dense: k (batch_cache, seqlen_cache, heads_kv, d);
 * paged: (num_blocks, page_size, heads_kv, d); v alike, each with its own offset and
 * strides (in elements) inside its buffer image. */
typedef struct kvc_layout {
    int paged;
    int batch_cache, seqlen_cache;         /* dense */
    const int32_t *batch_idx;              /* dense: (batch) cache rows, NULL = row b */
    int num_blocks, page_size, max_blocks; /* paged */
    const int32_t *block_table;            /* paged: (batch, max_blocks), row-major */
    int64_t k_offset, k_stride[4];
    int64_t v_offset, v_stride[4];
} kvc_layout;

typedef enum kvc_mode {
    KVC_FWD_KVCACHE = 0, /* facl_fwd_kvcache */
    KVC_VARLEN_PAGED = 1 /* facl_varlen_fwd(_kvpacked) with opts->block_table */
} kvc_mode;

typedef struct kvc_problem {
    kvc_mode mode;
    facl_dtype dt;
    int batch, heads_q, heads_kv, head_dim;
    const int32_t *cu_q; /* (batch + 1) prefix sums of the query rows */
    const float *q;      /* (total_q, heads_q, d), already rounded to dt */
    kvc_layout cache;
    /* KVC_FWD_KVCACHE */
    const int32_t *cache_seqlens;   /* (batch) */
    const int32_t *leftpad;         /* (batch) or NULL = 0 */
    const int32_t *cu_new;          /* (batch + 1) prefix sums of k_new's rows; NULL = none */
    const float *k_new, *v_new;     /* (total_new, heads_kv, d), already rounded to dt */
    const float *rot_cos, *rot_sin; /* (seqlen_ro, rotary_dim / 2), rounded; NULL = none */
    int rotary_dim, seqlen_ro, rotary_interleaved;
    /* KVC_VARLEN_PAGED: sequence b's keys are its positions 0 .. seqlens_k[b] - 1 (the
     * differences of cu_seqlens_k), of which seqused_k[b] are used (NULL = all) */
    const int32_t *seqlens_k;
    const int32_t *seqused_k;
    int64_t max_seqlen_k; /* the call's, for the window normalisation */
    /* the options as the call gets them (causal not folded, windows not normalised) */
    float softmax_scale; /* 0 = 1/sqrt(d) */
    int causal, align_top_left, window_left, window_right;
    float softcap;
    const float *alibi; /* (heads_q) or (batch, heads_q); NULL = none */
    int alibi_per_batch;
} kvc_problem;

typedef struct kvc_ref {
    ref_problem rp;  /* ready for ref_attention_f64 / ref_attention_lowp */
    int32_t *cu_q;   /* copies of the prefix sums rp points to */
    int32_t *cu_k;   /* per-sequence key counts as prefix sums */
    int32_t *used_k; /* KVC_VARLEN_PAGED with seqused_k */
    float *q;        /* (total_q, heads_q, d): rotated and rounded */
    float *k, *v;    /* (total_k, heads_kv, d): the gathered keys and values */
    int64_t total_q, total_k;
    int64_t key_length; /* what the windows were normalised against */
    int rotate_per_row; /* 1: query i at cache_seqlens[b] + i; 0: at cache_seqlens[b] */
    /* The expected images after the call, and per element of each image: 0 = must be
     * bit-identical to the expected image, > 0 = a rotated new key, within that absolute
     * distance of the expected (exactly rounded) value; -1 = appended bit for bit
     * (v, k past rotary_dim, k without rotary). k_tol == v_tol when the images are one. */
    unsigned char *k_img, *v_img;
    float *k_tol, *v_tol;
    size_t k_count, v_count; /* elements of each image */
    int shared_image;
} kvc_ref;

/* Builds everything above. k_img / v_img: the images of the buffers before the call
 * (k_count / v_count elements of dt); pass the same pointer (and count) twice when
 * k_cache and v_cache are views of one buffer. The inputs are not modified.
 * Returns 0 on success, -1 on inputs outside the contract (a position beyond the
 * cache or the rotary table, a table entry out of range; `why` says which). */
int kvc_ref_build(const kvc_problem *p, const unsigned char *k_img, size_t k_count,
                  const unsigned char *v_img, size_t v_count, kvc_ref *r, char *why,
                  size_t why_size);

void kvc_ref_free(kvc_ref *r);

/* Capacity of one sequence's cache: dense seqlen_cache, paged max_blocks * page_size. */
int64_t kvc_capacity(const kvc_layout *l);

/* Element index in the image of sequence b's position `pos`, head h, dim e (-1 when the
 * position has no page: a table entry < 0 or past the table). */
int64_t kvc_elem_index(const kvc_layout *l, int is_v, int b, int64_t pos, int h, int e);

/* SPEC rule 4's normalisation: a window > 0 and >= the key length is unbounded. */
int kvc_normalise_window(int w, int64_t key_length);

/* One unit in the last place of dt at |x| (subnormals included). */
double kvc_ulp(facl_dtype dt, double x);

/* Compare a read-back image with the expected one (tol as in kvc_ref). Returns the
 * number of bad elements; the first in *first_bad (-1 if none). */
int64_t kvc_check_image(facl_dtype dt, const unsigned char *expected, const float *tol,
                        const unsigned char *got, size_t count, int64_t *first_bad);

/* Names the element `index` of the k (is_v 0) or v image: "seq b pos t head h dim e
 * (appended)" when an appended element lies there, else "not written by the call". */
void kvc_describe_elem(const kvc_problem *p, int is_v, int64_t index, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
