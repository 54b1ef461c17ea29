/*
 * The self-test's correctness checks: every call family (dense, qkv-packed, kv-packed
 * and their varlen forms), each mask and score feature (causal in both alignments,
 * sliding windows, softcap, ALiBi per head and per batch, dropout, attn_probs), every
 * storage dtype, GQA/MQA, strided views, and head dims from 1 to 256 including odd ones.
 * Sizes follow FlashAttention's suite (odd on purpose) but stay small enough for the
 * float64 reference on a laptop CPU.
 *
 * The quick set keeps one check per family with the features spread over them.
 */
#include <string.h>

#include "selftest.h"

/* Varlen per-sequence lengths (static: fwd_case points at them). */
static const int32_t lq_a[] = {17, 64, 1, 100}, lk_a[] = {33, 64, 20, 100};
static const int32_t lq_b[] = {50, 3, 70}, lk_b[] = {20, 9, 70};
static const int32_t lq_c[] = {40, 128}, lk_c[] = {128, 16};
static const int32_t lens_d[] = {31, 1, 128};
static const int32_t lens_e[] = {64, 65};
static const int32_t lens_f[] = {7, 33};
static const int32_t lq_g[] = {10, 90}, lk_g[] = {90, 10};
static const int32_t lq_h[] = {5, 1}, lk_h[] = {1, 5};

typedef struct builder {
    fwd_case *out;
    size_t n, max;
} builder;

/* Appends a case with default options; the caller adjusts the returned one. */
static fwd_case *add(builder *b, case_layout layout, facl_dtype dt, int batch, int sq, int sk,
                     int hq, int hkv, int d)
{
    static fwd_case spare; /* absorbs edits when the list is full */
    if (b->n == b->max) return &spare;
    fwd_case *c = &b->out[b->n++];
    *c = fwd_case_make(layout, dt, d, sq, sk, hq, hkv, batch, 1000u + (uint64_t)b->n);
    c->want_lse = 0; /* the checks ask for it where they want it */
    return c;
}

static fwd_case *add_varlen(builder *b, case_layout layout, facl_dtype dt, int batch,
                            const int32_t *lq, const int32_t *lk, int hq, int hkv, int d)
{
    int mq = 0, mk = 0;
    for (int i = 0; i < batch; ++i) {
        if (lq[i] > mq) mq = lq[i];
        if (lk[i] > mk) mk = lk[i];
    }
    fwd_case *c = add(b, layout, dt, batch, mq, mk, hq, hkv, d);
    c->seqlens_q = lq;
    c->seqlens_k = lk;
    return c;
}

static void dropout(fwd_case *c, float p)
{
    c->opts.dropout_p = p;
    c->opts.dropout_seed = 0x5eedu + c->seed;
    c->opts.dropout_offset = 7;
}

static void window(fwd_case *c, int left, int right)
{
    c->opts.window_left = left;
    c->opts.window_right = right;
}

static void quick_set(builder *b)
{
    const facl_dtype f32 = FACL_DTYPE_F32, f16 = FACL_DTYPE_F16, bf16 = FACL_DTYPE_BF16;
    fwd_case *c;
    c = add(b, CASE_DENSE, f16, 2, 113, 203, 6, 2, 64);
    c->want_lse = 1;
    c = add(b, CASE_DENSE, f32, 1, 127, 256, 2, 1, 59);
    c->opts.causal = 1;
    c->want_lse = 1;
    c = add(b, CASE_DENSE, bf16, 1, 64, 97, 8, 1, 128);
    window(c, 16, 8);
    c->opts.softcap = 20.0f;
    c = add(b, CASE_DENSE, f16, 2, 48, 80, 2, 2, 32);
    c->use_alibi = 1;
    dropout(c, 0.2f);
    c->want_probs = 1;
    c = add(b, CASE_QKVPACKED, f16, 2, 100, 100, 4, 4, 40);
    c->opts.causal = 1;
    c->strided = 1;
    c = add(b, CASE_KVPACKED, bf16, 1, 77, 150, 6, 3, 80);
    c->opts.causal = 1;
    c->opts.mask_align = FACL_ALIGN_TOP_LEFT;
    c = add_varlen(b, CASE_VARLEN, f16, 4, lq_a, lk_a, 4, 2, 64);
    c->opts.causal = 1;
    c->want_lse = 1;
    c = add_varlen(b, CASE_VARLEN_QKVPACKED, f32, 2, lens_e, lens_e, 2, 2, 96);
    dropout(c, 0.17f);
    c = add_varlen(b, CASE_VARLEN_KVPACKED, bf16, 2, lq_c, lk_c, 4, 1, 111);
    c->use_alibi = 1;
    c->alibi_per_batch = 1;
    window(c, 32, 0);
}

static void default_set(builder *b)
{
    const facl_dtype f32 = FACL_DTYPE_F32, f16 = FACL_DTYPE_F16, bf16 = FACL_DTYPE_BF16;
    const facl_dtype all[3] = {f32, f16, bf16};
    fwd_case *c;
    /* dense: each dtype on FlashAttention's odd (113, 203) with GQA and lse */
    for (int t = 0; t < 3; ++t) {
        c = add(b, CASE_DENSE, all[t], 3, 113, 203, 6, 2, 64);
        c->want_lse = 1;
    }
    c = add(b, CASE_DENSE, f16, 1, 127, 512, 1, 1, 59);
    c->opts.causal = 1;
    c->want_lse = 1;
    c = add(b, CASE_DENSE, bf16, 1, 256, 512, 8, 1, 128);
    c->opts.causal = 1;
    c->opts.mask_align = FACL_ALIGN_TOP_LEFT;
    c = add(b, CASE_DENSE, f32, 3, 1, 239, 1, 1, 1);
    c = add(b, CASE_DENSE, f16, 1, 3, 799, 2, 1, 256);
    c->want_lse = 1;
    c = add(b, CASE_DENSE, f32, 1, 128, 217, 6, 2, 111);
    c->strided = 1;
    c->want_lse = 1;
    c = add(b, CASE_DENSE, f16, 2, 108, 256, 2, 2, 40);
    window(c, 32, 16);
    /* bottom-right causal with seqlen_q > seqlen_k: early rows see no key (lse = +inf) */
    c = add(b, CASE_DENSE, bf16, 1, 512, 256, 2, 2, 80);
    c->opts.causal = 1;
    c->want_lse = 1;
    c = add(b, CASE_DENSE, f16, 1, 200, 200, 4, 2, 96);
    c->opts.softcap = 20.0f;
    c = add(b, CASE_DENSE, f32, 1, 150, 150, 4, 4, 32);
    c->use_alibi = 1;
    c->opts.causal = 1;
    c = add(b, CASE_DENSE, bf16, 2, 64, 300, 2, 2, 160);
    c->use_alibi = 1;
    c->alibi_per_batch = 1;
    c = add(b, CASE_DENSE, f16, 1, 128, 256, 4, 2, 64);
    dropout(c, 0.2f);
    c->want_lse = 1;
    c = add(b, CASE_DENSE, f32, 2, 33, 65, 2, 1, 8);
    dropout(c, 0.5f);
    c->want_probs = 1;
    c = add(b, CASE_DENSE, f16, 1, 70, 90, 8, 1, 192);
    c = add(b, CASE_DENSE, bf16, 1, 50, 129, 2, 2, 224);
    c = add(b, CASE_DENSE, f16, 1, 1023, 1024, 2, 1, 128);
    c->opts.causal = 1;
    /* packed */
    c = add(b, CASE_QKVPACKED, f16, 2, 128, 128, 4, 4, 64);
    c->opts.causal = 1;
    c->want_lse = 1;
    c = add(b, CASE_QKVPACKED, bf16, 1, 77, 77, 3, 3, 59);
    c->opts.softcap = 30.0f;
    window(c, 20, 5);
    c = add(b, CASE_QKVPACKED, f32, 1, 96, 96, 2, 2, 128);
    dropout(c, 0.1f);
    c->strided = 1;
    c = add(b, CASE_KVPACKED, f16, 1, 100, 300, 6, 2, 64);
    c->want_lse = 1;
    c = add(b, CASE_KVPACKED, bf16, 2, 257, 130, 4, 4, 32);
    c->opts.causal = 1;
    c->opts.mask_align = FACL_ALIGN_TOP_LEFT;
    c->use_alibi = 1;
    c = add(b, CASE_KVPACKED, f32, 1, 64, 64, 2, 1, 80);
    c->strided = 1;
    /* varlen */
    c = add_varlen(b, CASE_VARLEN, f16, 4, lq_a, lk_a, 4, 2, 64);
    c->want_lse = 1;
    c = add_varlen(b, CASE_VARLEN, bf16, 3, lq_b, lk_b, 2, 2, 59);
    c->opts.causal = 1;
    c->want_lse = 1;
    c = add_varlen(b, CASE_VARLEN, f32, 2, lq_c, lk_c, 4, 4, 128);
    window(c, 16, 0);
    c->use_alibi = 1;
    c = add_varlen(b, CASE_VARLEN, f16, 3, lq_b, lk_b, 2, 1, 96);
    c->opts.softcap = 15.0f;
    dropout(c, 0.25f);
    c->want_probs = 1;
    c = add_varlen(b, CASE_VARLEN_QKVPACKED, f16, 3, lens_d, lens_d, 4, 4, 64);
    c->opts.causal = 1;
    c->want_lse = 1;
    c = add_varlen(b, CASE_VARLEN_QKVPACKED, bf16, 2, lens_e, lens_e, 2, 2, 40);
    dropout(c, 0.3f);
    c = add_varlen(b, CASE_VARLEN_QKVPACKED, f32, 2, lens_f, lens_f, 2, 2, 256);
    c->strided = 1;
    c = add_varlen(b, CASE_VARLEN_KVPACKED, f16, 2, lq_g, lk_g, 6, 3, 80);
    c->opts.causal = 1;
    c->opts.mask_align = FACL_ALIGN_TOP_LEFT;
    c = add_varlen(b, CASE_VARLEN_KVPACKED, bf16, 2, lq_c, lk_c, 4, 1, 128);
    c->use_alibi = 1;
    c->alibi_per_batch = 1;
    window(c, 32, 8);
    c = add_varlen(b, CASE_VARLEN_KVPACKED, f32, 2, lq_h, lk_h, 1, 1, 1);
    c->want_lse = 1;
}

size_t selftest_checks(int quick, fwd_case *out, size_t max)
{
    builder b = {out, 0, max};
    if (quick)
        quick_set(&b);
    else
        default_set(&b);
    return b.n;
}

/* ---- KV cache (facl_fwd_kvcache) */

static const int32_t kv_lens_a[] = {37, 80, 5};
static const int32_t kv_lens_b[] = {22, 47};
static const int32_t kv_lens_c[] = {300, 129};
static const int32_t kv_lens_d[] = {40, 64}, kv_pad_d[] = {7, 0}, kv_idx_d[] = {2, 0};
static const int32_t kv_lens_e[] = {20, 33, 0}, kv_q_e[] = {1, 6, 3};

static kv_case *add_kv(kv_case *out, size_t *n, size_t max, facl_dtype dt, int batch, int sq,
                       int hq, int hkv, int d, int capacity, int page_size,
                       const int32_t *cache_seqlens)
{
    static kv_case spare;
    if (*n == max) return &spare;
    kv_case *c = &out[(*n)++];
    memset(c, 0, sizeof *c);
    c->dtype = dt;
    c->batch = batch;
    c->seqlen_q = sq;
    c->heads_q = hq;
    c->heads_kv = hkv;
    c->head_dim = d;
    c->capacity = capacity;
    c->page_size = page_size;
    c->cache_seqlens = cache_seqlens;
    c->seed = 5000u + (uint64_t)*n;
    return c;
}

size_t selftest_kv_checks(int quick, kv_case *out, size_t max)
{
    size_t n = 0;
    kv_case *c;
    /* decode over a dense cache: one new token appended with interleaved rotary */
    c = add_kv(out, &n, max, FACL_DTYPE_F16, 3, 1, 6, 2, 64, 96, 0, kv_lens_a);
    c->seqlen_new = 1;
    c->rotary_dim = 32;
    c->rotary_interleaved = 1;
    c->causal = 1;
    c->want_lse = 1;
    /* a causal chunk of 5 queries (and 5 new keys) into a paged cache, page 16 */
    c = add_kv(out, &n, max, FACL_DTYPE_BF16, 2, 5, 8, 2, 128, 64, 16, kv_lens_b);
    c->seqlen_new = 5;
    c->rotary_dim = 128;
    c->causal = 1;
    c->want_lse = 1;
    /* split-KV: the keys in 3 chunks merged through their lse */
    c = add_kv(out, &n, max, FACL_DTYPE_F16, 2, 1, 8, 1, 128, 320, 16, kv_lens_c);
    c->num_splits = 3;
    c->want_lse = 1;
    if (quick) return n;
    /* dense rows picked by cache_batch_idx, left padding, softcap, GPT-NeoX rotary */
    c = add_kv(out, &n, max, FACL_DTYPE_F32, 2, 3, 4, 2, 80, 72, 0, kv_lens_d);
    c->batch_cache = 3;
    c->batch_idx = kv_idx_d;
    c->leftpad = kv_pad_d;
    c->seqlen_new = 3;
    c->rotary_dim = 40;
    c->softcap = 15.0f;
    c->causal = 1;
    c->want_lse = 1;
    /* varlen queries into a paged cache: decode, a prefill chunk and a new sequence in
     * one call, each appending its tokens; page 7 (no power of two) */
    c = add_kv(out, &n, max, FACL_DTYPE_BF16, 3, 6, 4, 4, 59, 42, 7, kv_lens_e);
    c->seqlens_q = kv_q_e;
    c->seqlen_new = 1;
    c->causal = 1;
    c->num_splits = 2;
    c->want_lse = 1;
    return n;
}

/* ---- backward (facl_bwd and its packed and varlen forms) */

static const int32_t bwd_lq_a[] = {17, 64, 1, 100}, bwd_lk_a[] = {33, 64, 20, 100};
static const int32_t bwd_lq_b[] = {10, 90}, bwd_lk_b[] = {90, 10};
static const int32_t bwd_lens_c[] = {31, 1, 128};

static bwd_check *add_bwd(bwd_check *out, size_t *n, size_t max, case_layout layout,
                          facl_dtype dt, int batch, int sq, int sk, int hq, int hkv, int d)
{
    static bwd_check spare;
    if (*n == max) return &spare;
    bwd_check *c = &out[(*n)++];
    memset(c, 0, sizeof *c);
    c->layout = layout;
    c->dtype = dt;
    c->batch = batch;
    c->seqlen_q = sq;
    c->seqlen_k = sk;
    c->heads_q = hq;
    c->heads_kv = hkv;
    c->head_dim = d;
    c->seed = 7000u + (uint64_t)*n;
    return c;
}

static void bwd_varlen(bwd_check *c, const int32_t *lq, const int32_t *lk)
{
    c->seqlens_q = lq;
    c->seqlens_k = lk;
    c->seqlen_q = c->seqlen_k = 0;
    for (int i = 0; i < c->batch; ++i) {
        if (lq[i] > c->seqlen_q) c->seqlen_q = lq[i];
        if (lk[i] > c->seqlen_k) c->seqlen_k = lk[i];
    }
}

size_t selftest_bwd_checks(int quick, bwd_check *out, size_t max)
{
    size_t n = 0;
    bwd_check *c;
    /* dense, bottom-right causal over more keys than queries, GQA 6/2 */
    c = add_bwd(out, &n, max, CASE_DENSE, FACL_DTYPE_F16, 2, 113, 203, 6, 2, 64);
    c->causal = 1;
    /* qkv-packed with softcap (its tanh' term in dS), in the deterministic mode (the
     * others run the default one: atomic dq where the tensor-core kernels run) */
    c = add_bwd(out, &n, max, CASE_QKVPACKED, FACL_DTYPE_BF16, 1, 77, 77, 3, 3, 128);
    c->softcap = 20.0f;
    c->deterministic = 1;
    /* varlen with dropout (the forward's mask regenerated), GQA 4/2, an odd head dim */
    c = add_bwd(out, &n, max, CASE_VARLEN, FACL_DTYPE_F32, 4, 0, 0, 4, 2, 40);
    bwd_varlen(c, bwd_lq_a, bwd_lk_a);
    c->dropout_p = 0.17f;
    if (quick) return n;
    /* kv-packed, head dim 256, MQA, causal */
    c = add_bwd(out, &n, max, CASE_KVPACKED, FACL_DTYPE_BF16, 1, 64, 150, 2, 1, 256);
    c->causal = 1;
    /* varlen kv-packed, causal with seqlen_q > seqlen_k: rows that see no key */
    c = add_bwd(out, &n, max, CASE_VARLEN_KVPACKED, FACL_DTYPE_F16, 2, 0, 0, 6, 3, 80);
    bwd_varlen(c, bwd_lq_b, bwd_lk_b);
    c->causal = 1;
    /* varlen qkv-packed with dropout and softcap, a head dim no tile divides */
    c = add_bwd(out, &n, max, CASE_VARLEN_QKVPACKED, FACL_DTYPE_F16, 3, 0, 0, 2, 2, 59);
    bwd_varlen(c, bwd_lens_c, bwd_lens_c);
    c->dropout_p = 0.1f;
    c->softcap = 15.0f;
    /* dense fp32, head dim 1 */
    c = add_bwd(out, &n, max, CASE_DENSE, FACL_DTYPE_F32, 3, 5, 239, 1, 1, 1);
    return n;
}
