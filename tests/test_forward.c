/*
 * Forward correctness on the default device (FACL_DEVICE selects another): a covering
 * subset of SPEC.md's grid that stays fast enough for CI on a small PoCL machine, then
 * every call family and option (packed and varlen layouts, windows, softcap, ALiBi,
 * dropout, attn_probs, custom scale, strided views), windows of any size (INT32_MAX
 * included), trust_cu_seqlens with maxima below the real lengths, empty problems
 * (batch 0, seqlen_q 0, seqlen_k 0) and seqused_k (only the first keys of each
 * sequence used, masks aligned to that length). Each case is its own cmocka test, named
 * "<group>: <case>"; a failure prints the case and the errors.
 *
 * FACL_TEST_FILTER=<cmocka pattern, * and ? wildcards> runs a subset, e.g.
 *   FACL_TEST_FILTER='*varlen*' ./test_forward
 * A filter that selects no case fails the suite.
 * FACL_KERNEL_PATH picks the kernel path; a path the device lacks skips the suite (77).
 * FACL_TEST_VERBOSE=1 prints the errors of passing cases too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "case_suite.h"
#include "facl.h"

/* ------------------------------------------------------------------ case builders */

enum { NOCAUSAL = 0, CAUSAL_BR = 1, CAUSAL_TL = 2 };

static fwd_case base_case(case_layout layout, facl_dtype dt, int d, int sq, int sk, int hq,
                          int hkv, int batch)
{
    return case_suite_case(layout, dt, d, sq, sk, hq, hkv, batch, 0x5eed0000u);
}

static void set_causal(fwd_case *c, int mode)
{
    c->opts.causal = mode != NOCAUSAL;
    c->opts.mask_align = mode == CAUSAL_TL ? FACL_ALIGN_TOP_LEFT : FACL_ALIGN_BOTTOM_RIGHT;
}

static const facl_dtype k_dtypes[3] = {FACL_DTYPE_F16, FACL_DTYPE_BF16, FACL_DTYPE_F32};

/* dense facl_fwd: every dtype x head dim once, the other axes rotating */
static void add_dense_dims(void)
{
    static const int dims[] = {1, 8, 40, 59, 64, 128, 256};
    static const int pairs[][2] = {{1, 1},     {1, 239},   {3, 799},  {113, 203},
                                   {128, 217}, {512, 256}, {108, 256}};
    static const int heads[][2] = {{1, 1}, {6, 2}, {8, 1}};
    int n = 0;
    for (int t = 0; t < 3; t++)
        for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++, n++) {
            const int *pr = pairs[(i + 2 * t) % 7], *hd = heads[(n + t) % 3];
            int batch = (n % 2) ? 3 : 1;
            fwd_case c;
            /* keep the largest work (d = 256, 512 x 256, 8 heads, 3 sequences) out */
            if (dims[i] >= 128 && pr[0] * pr[1] > 100000) {
                batch = 1;
                hd = heads[1];
            }
            c = base_case(CASE_DENSE, k_dtypes[t], dims[i], pr[0], pr[1], hd[0], hd[1], batch);
            set_causal(&c, n % 3);
            c.strided = (n / 2) % 2;
            c.want_lse = n % 4 != 3;
            case_suite_add("dims", &c);
        }
}

/* dense facl_fwd: the other head dims of SPEC's list once each, and the long pairs */
static void add_dense_more(void)
{
    static const int dims[] = {32, 80, 96, 111, 160, 192, 224};
    static const int pairs[][2] = {{127, 512}, {256, 512}, {108, 256}, {113, 203}};
    static const int longs[][2] = {{1023, 1024}, {1024, 1023}, {2048, 2048}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        const int *pr = pairs[i % 4];
        fwd_case c = base_case(CASE_DENSE, k_dtypes[i % 3], dims[i], pr[0], pr[1],
                               i % 2 ? 6 : 8, i % 2 ? 2 : 1, 1);
        set_causal(&c, (int)(i % 3));
        c.strided = (int)(i % 2);
        case_suite_add("dims", &c);
    }
    for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++) {
        fwd_case c = base_case(CASE_DENSE, k_dtypes[i], 64, longs[i][0], longs[i][1], 2, 1, 1);
        set_causal(&c, (int)(i + 1) % 3);
        c.strided = i == 1;
        case_suite_add("long", &c);
    }
}

/* dense facl_fwd: SPEC's (sq, sk) pairs x causal alignments */
static void add_dense_pairs(void)
{
    static const int pairs[][2] = {{1, 1}, {1, 239}, {3, 799}, {113, 203}, {128, 217}, {512, 256}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        for (int mode = 0; mode < 3; mode++) {
            facl_dtype dt = k_dtypes[(i + (size_t)mode) % 3];
            fwd_case c = base_case(CASE_DENSE, dt, 64, pairs[i][0], pairs[i][1], 6, 2,
                                   (i % 2) ? 1 : 3);
            set_causal(&c, mode);
            c.strided = mode == 1;
            case_suite_add("pairs", &c);
        }
    /* sq > sk, causal bottom-right: the first rows see no key (out 0, lse +inf) */
    {
        fwd_case c = base_case(CASE_DENSE, FACL_DTYPE_F16, 32, 217, 128, 2, 1, 2);
        set_causal(&c, CAUSAL_BR);
        case_suite_add("pairs", &c);
        c = base_case(CASE_DENSE, FACL_DTYPE_F32, 32, 217, 128, 2, 1, 2);
        set_causal(&c, CAUSAL_BR);
        c.strided = 1;
        case_suite_add("pairs", &c);
    }
}

/* dense facl_fwd: GQA / MQA with batches and strided views, lse on and off */
static void add_dense_gqa(void)
{
    static const int heads[][2] = {{6, 2}, {8, 1}, {4, 4}};
    for (int t = 0; t < 3; t++)
        for (int h = 0; h < 3; h++) {
            fwd_case c = base_case(CASE_DENSE, k_dtypes[t], t == 2 ? 96 : 80, 113, 203,
                                   heads[h][0], heads[h][1], 3);
            set_causal(&c, (t + h) % 3);
            c.strided = h != 1;
            c.want_lse = (t + h) % 2;
            case_suite_add("gqa", &c);
        }
}

static void add_packed(void)
{
    for (int t = 0; t < 3; t++) {
        fwd_case c = base_case(CASE_QKVPACKED, k_dtypes[t], t == 1 ? 40 : 64, 128, 128, 4, 4,
                               2);
        set_causal(&c, t == 0 ? CAUSAL_BR : NOCAUSAL);
        c.strided = t != 2;
        case_suite_add("qkvpacked", &c);

        c = base_case(CASE_KVPACKED, k_dtypes[t], t == 2 ? 59 : 128, 113, 203, 6, 2, 3);
        set_causal(&c, t == 1 ? CAUSAL_TL : NOCAUSAL);
        c.strided = t != 0;
        case_suite_add("kvpacked", &c);
    }
}

static const int32_t vl_q1[] = {5, 0, 113, 1}, vl_k1[] = {7, 31, 203, 239};
static const int32_t vl_q2[] = {3, 17}, vl_k2[] = {0, 40};       /* a sequence with no keys */
static const int32_t vl_s3[] = {64, 1, 129, 30, 7};              /* qkv packed */
static const int32_t vl_q4[] = {128, 217, 1}, vl_k4[] = {217, 128, 300};

static void add_varlen(void)
{
    for (int t = 0; t < 3; t++) {
        fwd_case c = base_case(CASE_VARLEN, k_dtypes[t], t == 0 ? 64 : (t == 1 ? 8 : 59), 0, 0,
                               6, 2, 4);
        c.seqlens_q = vl_q1;
        c.seqlens_k = vl_k1;
        set_causal(&c, (t + 1) % 3);
        c.strided = t != 1;
        case_suite_add("varlen", &c);

        c = base_case(CASE_VARLEN, k_dtypes[t], 32, 0, 0, 2, 1, 2);
        c.seqlens_q = vl_q2;
        c.seqlens_k = vl_k2;
        set_causal(&c, t == 2 ? CAUSAL_TL : NOCAUSAL);
        c.strided = t == 0;
        case_suite_add("varlen", &c);

        c = base_case(CASE_VARLEN_QKVPACKED, k_dtypes[t], 128, 0, 0, 3, 3, 5);
        c.seqlens_q = vl_s3;
        c.seqlens_k = vl_s3;
        set_causal(&c, t % 2 ? CAUSAL_BR : NOCAUSAL);
        c.strided = t != 0;
        case_suite_add("varlen-qkvpacked", &c);

        c = base_case(CASE_VARLEN_KVPACKED, k_dtypes[t], 40, 0, 0, 8, 1, 3);
        c.seqlens_q = vl_q4;
        c.seqlens_k = vl_k4;
        set_causal(&c, t);
        c.strided = t != 2;
        case_suite_add("varlen-kvpacked", &c);
    }
    /* trust_cu_seqlens = 1: no host read-back, same results */
    {
        fwd_case c = base_case(CASE_VARLEN, FACL_DTYPE_F16, 64, 0, 0, 6, 2, 4);
        c.seqlens_q = vl_q1;
        c.seqlens_k = vl_k1;
        c.opts.trust_cu_seqlens = 1;
        set_causal(&c, CAUSAL_BR);
        case_suite_add("varlen", &c);
    }
}

static void add_windows(void)
{
    static const int wins[][2] = {{16, 8}, {0, 0}, {32, -1}, {-1, 5}, {100, 0}};
    for (size_t w = 0; w < sizeof wins / sizeof wins[0]; w++)
        for (int al = 0; al < 2; al++) {
            facl_dtype dt = k_dtypes[(w + (size_t)al) % 3];
            fwd_case c = base_case(w % 2 ? CASE_VARLEN : CASE_DENSE, dt, 64, 113, 203, 4, 2, 2);
            c.seqlens_q = vl_q4;
            c.seqlens_k = vl_k4;
            if (c.layout == CASE_VARLEN)
                c.batch = 3;
            c.opts.window_left = wins[w][0];
            c.opts.window_right = wins[w][1];
            c.opts.mask_align = al ? FACL_ALIGN_TOP_LEFT : FACL_ALIGN_BOTTOM_RIGHT;
            c.strided = al;
            case_suite_add("window", &c);
        }
    /* windows that leave rows with no visible key (out 0, lse +inf) */
    {
        fwd_case c = base_case(CASE_DENSE, FACL_DTYPE_F16, 40, 203, 113, 3, 1, 2);
        c.opts.window_left = 0;
        c.opts.window_right = 0; /* bottom-right: rows i < 90 see nothing */
        case_suite_add("window", &c);
        c = base_case(CASE_VARLEN, FACL_DTYPE_F32, 40, 0, 0, 2, 2, 3);
        c.seqlens_q = vl_q4;
        c.seqlens_k = vl_k4;
        c.opts.window_left = 5;
        c.opts.mask_align = FACL_ALIGN_TOP_LEFT; /* rows i > sk + 4 see nothing */
        c.strided = 1;
        case_suite_add("window", &c);
    }
    /* causal with a left window (window_right from causal) */
    {
        fwd_case c = base_case(CASE_DENSE, FACL_DTYPE_BF16, 64, 203, 113, 2, 2, 1);
        c.opts.causal = 1;
        c.opts.window_left = 20;
        case_suite_add("window", &c);
    }
}

static void add_softcap_scale(void)
{
    for (int t = 0; t < 3; t++) {
        fwd_case c = base_case(t == 1 ? CASE_VARLEN : CASE_DENSE, k_dtypes[t], 64, 113, 203, 6,
                               2, 2);
        c.seqlens_q = vl_q4;
        c.seqlens_k = vl_k4;
        if (c.layout == CASE_VARLEN)
            c.batch = 3;
        c.opts.softcap = t == 0 ? 5.0f : 30.0f;
        c.opts.softmax_scale = t == 2 ? 0.3f : 0.0f; /* large scores: softcap bites */
        set_causal(&c, t == 1 ? CAUSAL_BR : NOCAUSAL);
        c.strided = t == 2;
        case_suite_add("softcap", &c);

        c = base_case(CASE_DENSE, k_dtypes[t], 40, 128, 217, 2, 1, 2);
        c.opts.softmax_scale = t == 1 ? 0.02f : 0.9f;
        case_suite_add("scale", &c);
    }
}

static void add_alibi(void)
{
    for (int t = 0; t < 3; t++)
        for (int per_batch = 0; per_batch < 2; per_batch++) {
            fwd_case c = base_case(per_batch && t == 1 ? CASE_VARLEN : CASE_DENSE, k_dtypes[t],
                                   t == 2 ? 59 : 64, 113, 203, 6, 2, 3);
            c.seqlens_q = vl_q4;
            c.seqlens_k = vl_k4;
            c.use_alibi = 1;
            c.alibi_per_batch = per_batch;
            set_causal(&c, (t + per_batch) % 3);
            if (!c.opts.causal && t == 0)
                c.opts.mask_align = FACL_ALIGN_TOP_LEFT; /* alignment moves the |i+off-j| */
            c.strided = per_batch;
            case_suite_add("alibi", &c);
        }
}

static void add_dropout(void)
{
    for (int t = 0; t < 3; t++) {
        fwd_case c = base_case(t == 2 ? CASE_VARLEN : CASE_DENSE, k_dtypes[t], 64, 113, 203, 6,
                               2, 3);
        c.seqlens_q = vl_q4;
        c.seqlens_k = vl_k4;
        c.opts.dropout_p = t == 1 ? 0.5f : 0.17f;
        c.opts.dropout_seed = 0x0123456789abcdefull + (uint64_t)t;
        c.opts.dropout_offset = t == 0 ? 0xfffffffeull : 12345u; /* counter carries into word 3 */
        set_causal(&c, t == 1 ? CAUSAL_BR : NOCAUSAL);
        c.strided = t == 1;
        case_suite_add("dropout", &c);
    }
}

static void add_probs(void)
{
    for (int t = 0; t < 3; t++) {
        fwd_case c = base_case(t == 1 ? CASE_VARLEN : CASE_DENSE, k_dtypes[t], 40, 113, 203, 2,
                               1, 2);
        c.seqlens_q = vl_q1;
        c.seqlens_k = vl_k1;
        if (c.layout == CASE_VARLEN) {
            c.batch = 4;
            c.head_dim = 32;
        }
        c.want_probs = 1;
        set_causal(&c, t);
        c.strided = t != 0;
        if (t == 2) {
            c.opts.dropout_p = 0.25f; /* negated where dropped */
            c.opts.dropout_seed = 42;
        }
        case_suite_add("probs", &c);
    }
}

/* ------------------------------------------------------------------ windows >= seqlen_k */

/* SPEC.md rule 4: a window >= the call's key length (dense: seqlen_k; varlen: max_seqlen_k)
 * is unbounded on that side; 0 stays 0. Huge values overflowed 32-bit mask arithmetic
 * (out 0, lse +inf with a success status): window_right huge everywhere, window_left huge
 * when seqlen_q > seqlen_k bottom-right. Every (window pair, alignment) has one f16 case
 * (the emulated tensor-core suite runs those) and one in another dtype. */
static void add_huge_windows(void)
{
    static const int32_t wins[][2] = {
        {INT32_MAX, -1},     {-1, INT32_MAX},     {INT32_MAX, INT32_MAX}, {INT32_MAX - 3, 0},
        {0, INT32_MAX - 3},  {1 << 30, 1 << 30}, {1 << 30, 5},           {7, INT32_MAX - 3},
        {INT32_MAX - 3, -1}, {-1, 1 << 30}};
    for (size_t w = 0; w < sizeof wins / sizeof wins[0]; w++)
        for (int al = 0; al < 2; al++) {
            const int f16_dense = (int)(w + (size_t)al) % 2 == 0;
            const facl_dtype other = (w / 2 + (size_t)al) % 2 ? FACL_DTYPE_F32 : FACL_DTYPE_BF16;
            /* dense with seqlen_q > seqlen_k: bottom-right offset negative */
            fwd_case c = base_case(CASE_DENSE, f16_dense ? FACL_DTYPE_F16 : other,
                                   w % 3 == 2 ? 40 : 64, 203, 113, 4, 2, 2);
            c.opts.window_left = wins[w][0];
            c.opts.window_right = wins[w][1];
            c.opts.mask_align = al ? FACL_ALIGN_TOP_LEFT : FACL_ALIGN_BOTTOM_RIGHT;
            c.strided = (int)(w % 2);
            c.want_probs = w == 2 || w == 5; /* attn_probs masks with the same arithmetic */
            case_suite_add("huge-window", &c);
            /* varlen: sequences with seqlen_q > seqlen_k, < and a single row */
            c = base_case(CASE_VARLEN, f16_dense ? other : FACL_DTYPE_F16, 64, 0, 0, 4, 2, 3);
            c.seqlens_q = vl_q4;
            c.seqlens_k = vl_k4;
            c.opts.window_left = wins[w][0];
            c.opts.window_right = wins[w][1];
            c.opts.mask_align = al ? FACL_ALIGN_TOP_LEFT : FACL_ALIGN_BOTTOM_RIGHT;
            c.strided = (int)((w + 1) % 2);
            c.want_probs = w == 1 || w == 6;
            case_suite_add("huge-window", &c);
        }
    /* the packed families, causal with a huge left window, softcap + ALiBi alongside */
    for (int t = 0; t < 3; t++) {
        fwd_case c = base_case(CASE_QKVPACKED, k_dtypes[t], 64, 130, 130, 2, 2, 2);
        c.opts.window_left = INT32_MAX;
        c.opts.window_right = INT32_MAX - 3;
        c.opts.mask_align = t == 1 ? FACL_ALIGN_TOP_LEFT : FACL_ALIGN_BOTTOM_RIGHT;
        case_suite_add("huge-window", &c);

        c = base_case(CASE_VARLEN_KVPACKED, k_dtypes[t], 64, 0, 0, 6, 2, 3);
        c.seqlens_q = vl_q4;
        c.seqlens_k = vl_k4;
        c.opts.window_left = 1 << 30;
        c.opts.window_right = INT32_MAX;
        c.strided = 1;
        case_suite_add("huge-window", &c);

        c = base_case(CASE_DENSE, k_dtypes[t], 64, 203, 113, 2, 1, 2);
        c.opts.causal = 1;
        c.opts.window_left = t == 1 ? 1 << 30 : INT32_MAX;
        c.opts.mask_align = t == 2 ? FACL_ALIGN_TOP_LEFT : FACL_ALIGN_BOTTOM_RIGHT;
        case_suite_add("huge-window", &c);

        c = base_case(t == 1 ? CASE_VARLEN : CASE_KVPACKED, k_dtypes[t], 64, 203, 113, 6, 2, 3);
        c.seqlens_q = vl_q4;
        c.seqlens_k = vl_k4;
        c.opts.window_left = INT32_MAX - 3;
        c.opts.window_right = INT32_MAX;
        c.opts.softcap = 15.0f;
        c.use_alibi = 1;
        c.alibi_per_batch = t == 2;
        case_suite_add("huge-window", &c);
    }
}

/* varlen sequences longer on the query side than the longest key sequence (120) */
static const int32_t vl_q5[] = {300, 40}, vl_k5[] = {100, 120};

/* Windows of exactly seqlen_k (unbounded) and seqlen_k - 1 (still a window). Only rows
 * past seqlen_k tell them apart, so seqlen_q > seqlen_k: the left window with top-left
 * alignment, the right one with bottom-right. */
static void add_window_edges(void)
{
    for (int e = 0; e < 2; e++) {
        const int W = 113 - e;
        fwd_case c = base_case(CASE_DENSE, FACL_DTYPE_F16, 64, 203, 113, 4, 2, 2);
        c.opts.window_left = W;
        c.opts.mask_align = FACL_ALIGN_TOP_LEFT;
        case_suite_add("window-edge", &c);
        c = base_case(CASE_DENSE, FACL_DTYPE_F16, 64, 203, 113, 4, 2, 2);
        c.opts.window_right = W;
        c.strided = 1;
        case_suite_add("window-edge", &c);
        c = base_case(CASE_DENSE, e ? FACL_DTYPE_BF16 : FACL_DTYPE_F32, 59, 203, 113, 4, 2, 2);
        c.opts.window_left = W;
        c.opts.window_right = W;
        c.opts.mask_align = e ? FACL_ALIGN_BOTTOM_RIGHT : FACL_ALIGN_TOP_LEFT;
        c.want_probs = 1;
        case_suite_add("window-edge", &c);
        c = base_case(CASE_DENSE, e ? FACL_DTYPE_F32 : FACL_DTYPE_BF16, 64, 203, 113, 4, 2, 1);
        c.opts.window_left = W;
        c.opts.window_right = W;
        c.opts.mask_align = e ? FACL_ALIGN_TOP_LEFT : FACL_ALIGN_BOTTOM_RIGHT;
        case_suite_add("window-edge", &c);
    }
    /* varlen: the call's key length is max_seqlen_k (120), not each sequence's own */
    for (int e = 0; e < 2; e++) {
        const int W = 120 - e;
        for (int side = 0; side < 2; side++) {
            fwd_case c = base_case(CASE_VARLEN, side == e ? FACL_DTYPE_F16 : k_dtypes[1 + side],
                                   64, 0, 0, 4, 2, 2);
            c.seqlens_q = vl_q5;
            c.seqlens_k = vl_k5;
            if (side == 0) {
                c.opts.window_left = W;
                c.opts.mask_align = FACL_ALIGN_TOP_LEFT;
            } else {
                c.opts.window_right = W;
            }
            c.strided = e;
            c.want_probs = side == 1;
            case_suite_add("window-edge", &c);
        }
    }
    /* ... as passed to the call: a larger max_seqlen_k keeps a window of 120 a window */
    {
        fwd_case c = base_case(CASE_VARLEN, FACL_DTYPE_F16, 64, 0, 0, 4, 2, 2);
        c.seqlens_q = vl_q5;
        c.seqlens_k = vl_k5;
        c.call_max_seqlen_k = 200;
        c.opts.window_left = 120;
        c.opts.mask_align = FACL_ALIGN_TOP_LEFT;
        case_suite_add("window-edge", &c);
        c = base_case(CASE_VARLEN, FACL_DTYPE_BF16, 64, 0, 0, 4, 2, 2);
        c.seqlens_q = vl_q5;
        c.seqlens_k = vl_k5;
        c.call_max_seqlen_q = 400;
        c.call_max_seqlen_k = 150;
        c.opts.window_right = 149;
        c.want_probs = 1;
        case_suite_add("window-edge", &c);
    }
}

/* ------------------------------------------------------------------ trusted maxima */

/* trust_cu_seqlens = 1 with max_seqlen_q / max_seqlen_k below a real sequence's length:
 * facl.h documents that every row of every sequence is still computed as the prefix sums
 * describe it; the maxima decide only the launch size, the window normalisation and
 * attn_probs' shape (rows past max_seqlen_q, columns past max_seqlen_k left out). */
static void add_trusted_maxima(void)
{
    static const int64_t maxq[] = {100, 1, 127, 200};
    for (int t = 0; t < 4; t++) {
        const facl_dtype dt = t == 3 ? FACL_DTYPE_F16 : k_dtypes[t];
        fwd_case c = base_case(CASE_VARLEN, dt, t == 2 ? 40 : 64, 0, 0, 6, 2, 3);
        c.seqlens_q = vl_q4; /* 128, 217, 1 rows */
        c.seqlens_k = vl_k4; /* 217, 128, 300 keys */
        c.opts.trust_cu_seqlens = 1;
        c.call_max_seqlen_q = maxq[t];
        set_causal(&c, t % 3);
        c.strided = t % 2;
        case_suite_add("trusted-max", &c);

        c = base_case(CASE_VARLEN, dt, 64, 0, 0, 4, 2, 3);
        c.seqlens_q = vl_q4;
        c.seqlens_k = vl_k4;
        c.opts.trust_cu_seqlens = 1;
        c.call_max_seqlen_k = t == 1 ? 1 : 150; /* below 217 and 300 */
        set_causal(&c, (t + 1) % 3);
        c.strided = (t + 1) % 2;
        case_suite_add("trusted-max", &c);
    }
    /* both maxima small, with attn_probs cut to their shape and windows normalised
     * against the max_seqlen_k passed (100 < 120: a window of 100 is unbounded) */
    for (int t = 0; t < 3; t++) {
        fwd_case c = base_case(CASE_VARLEN, k_dtypes[t], 64, 0, 0, 4, 2, 2);
        c.seqlens_q = vl_q5;
        c.seqlens_k = vl_k5;
        c.opts.trust_cu_seqlens = 1;
        c.call_max_seqlen_q = 37;
        c.call_max_seqlen_k = 100;
        c.want_probs = 1;
        c.opts.window_left = t == 1 ? 99 : 100;
        c.opts.mask_align = FACL_ALIGN_TOP_LEFT;
        case_suite_add("trusted-max", &c);

        c = base_case(CASE_VARLEN_KVPACKED, k_dtypes[t], 64, 0, 0, 8, 1, 3);
        c.seqlens_q = vl_q4;
        c.seqlens_k = vl_k4;
        c.opts.trust_cu_seqlens = 1;
        c.call_max_seqlen_q = 64;
        c.call_max_seqlen_k = 64;
        c.opts.window_right = t == 0 ? 64 : 63; /* 64: unbounded, being max_seqlen_k */
        c.strided = 1;
        case_suite_add("trusted-max", &c);

        c = base_case(CASE_VARLEN_QKVPACKED, k_dtypes[t], 64, 0, 0, 3, 3, 5);
        c.seqlens_q = vl_s3; /* 64, 1, 129, 30, 7 */
        c.seqlens_k = vl_s3;
        c.opts.trust_cu_seqlens = 1;
        c.call_max_seqlen_q = t == 2 ? 16 : 100;
        set_causal(&c, t == 1 ? CAUSAL_TL : CAUSAL_BR);
        case_suite_add("trusted-max", &c);
    }
}

/* ------------------------------------------------------------------ seqused_k */

/* FlashAttention 3's seqused_k: sequence b uses only its first seqused_k[b] keys, and the
 * masks align to that used length (bottom-right off = used - sq, windows, ALiBi's
 * |i + off - j|; attn_probs 0 beyond it). Dense batch 3 with {seqlen_k, 0, 17}: all keys,
 * none (out 0, lse +inf) and fewer keys than queries (causal bottom-right: rows 0..22
 * see nothing, where the full length would show them every key). Every f16 case runs on
 * the emulated tensor-core suite too (d 64 and 128); trusted calls clamp out-of-range
 * values on the device. */
static const int32_t su_dense[] = {77, 0, 17};               /* seqlen_k 77 */
static const int32_t su_qkv[] = {64, 0, 17};                 /* seqlen 64 */
static const int32_t su_trust1[] = {-5, 1000, 17};           /* -> {0, 77, 17} */
static const int32_t su_trust2[] = {INT32_MIN, INT32_MAX, 78}; /* -> {0, 77, 77} */
static const int32_t su_vq[] = {30, 7, 1, 20}, su_vk[] = {50, 40, 64, 9};
static const int32_t su_vused[] = {33, 0, 17, 5};            /* below every segment */
static const int32_t su_vtrust[] = {-1, 20, 30, 100};        /* -> {0, 20, 30, 9} */
static const int32_t su_vs[] = {30, 7, 64, 9}, su_vsused[] = {20, 0, 50, 3};

static fwd_case seqused_dense(case_layout layout, facl_dtype dt, int d, int mode)
{
    fwd_case c = layout == CASE_QKVPACKED ? base_case(layout, dt, d, 64, 64, 4, 4, 3)
                                          : base_case(layout, dt, d, 40, 77, 6, 2, 3);
    c.seqused_k = layout == CASE_QKVPACKED ? su_qkv : su_dense;
    set_causal(&c, mode);
    return c;
}

static void add_seqused(void)
{
    fwd_case c;
    /* dense: no mask, causal bottom-right (aligned to the used length), top-left */
    c = seqused_dense(CASE_DENSE, FACL_DTYPE_F16, 64, NOCAUSAL);
    case_suite_add("seqused", &c);
    c = seqused_dense(CASE_DENSE, FACL_DTYPE_F16, 128, CAUSAL_BR);
    c.strided = 1;
    c.want_probs = 1;
    case_suite_add("seqused", &c);
    c = seqused_dense(CASE_DENSE, FACL_DTYPE_BF16, 64, CAUSAL_BR);
    case_suite_add("seqused", &c);
    c = seqused_dense(CASE_DENSE, FACL_DTYPE_F32, 128, CAUSAL_BR);
    c.strided = 1;
    case_suite_add("seqused", &c);
    c = seqused_dense(CASE_DENSE, FACL_DTYPE_F16, 64, CAUSAL_TL);
    case_suite_add("seqused", &c);
    c = seqused_dense(CASE_DENSE, FACL_DTYPE_BF16, 128, CAUSAL_TL);
    c.strided = 1;
    case_suite_add("seqused", &c);
    /* windows: offsets from the used length */
    c = seqused_dense(CASE_DENSE, FACL_DTYPE_F16, 64, NOCAUSAL);
    c.opts.window_left = 16;
    c.opts.window_right = 8;
    c.want_probs = 1;
    case_suite_add("seqused", &c);
    /* 20 >= 17 used keys but < seqlen_k 77: still a window (normalised against the
     * call's key length), rows 0..2 of sequence 2 see nothing */
    c = seqused_dense(CASE_DENSE, FACL_DTYPE_F32, 64, NOCAUSAL);
    c.opts.window_right = 20;
    c.strided = 1;
    case_suite_add("seqused", &c);
    /* softcap + ALiBi: distances |i + used - sq - j| */
    c = seqused_dense(CASE_DENSE, FACL_DTYPE_F16, 64, NOCAUSAL);
    c.opts.softcap = 5.0f;
    c.use_alibi = 1;
    c.want_probs = 1;
    case_suite_add("seqused", &c);
    c = seqused_dense(CASE_DENSE, FACL_DTYPE_F32, 128, CAUSAL_BR);
    c.opts.softcap = 20.0f;
    c.use_alibi = 1;
    c.alibi_per_batch = 1;
    c.want_probs = 1;
    c.strided = 1;
    case_suite_add("seqused", &c);
    /* the packed dense families */
    c = seqused_dense(CASE_KVPACKED, FACL_DTYPE_F16, 64, CAUSAL_BR);
    c.strided = 1;
    case_suite_add("seqused", &c);
    c = seqused_dense(CASE_KVPACKED, FACL_DTYPE_BF16, 128, NOCAUSAL);
    case_suite_add("seqused", &c);
    c = seqused_dense(CASE_QKVPACKED, FACL_DTYPE_F16, 64, CAUSAL_BR);
    case_suite_add("seqused", &c);
    c = seqused_dense(CASE_QKVPACKED, FACL_DTYPE_F32, 128, NOCAUSAL);
    c.strided = 1;
    case_suite_add("seqused", &c);
    /* varlen: fewer used keys than each segment has */
    c = base_case(CASE_VARLEN, FACL_DTYPE_F16, 64, 0, 0, 6, 2, 4);
    c.seqlens_q = su_vq;
    c.seqlens_k = su_vk;
    c.seqused_k = su_vused;
    set_causal(&c, CAUSAL_BR);
    c.strided = 1;
    case_suite_add("seqused", &c);
    c = base_case(CASE_VARLEN, FACL_DTYPE_BF16, 128, 0, 0, 4, 4, 4);
    c.seqlens_q = su_vq;
    c.seqlens_k = su_vk;
    c.seqused_k = su_vused;
    c.want_probs = 1;
    case_suite_add("seqused", &c);
    c = base_case(CASE_VARLEN_KVPACKED, FACL_DTYPE_F32, 64, 0, 0, 4, 1, 4);
    c.seqlens_q = su_vq;
    c.seqlens_k = su_vk;
    c.seqused_k = su_vused;
    c.opts.window_left = 6;
    c.opts.window_right = 2;
    c.opts.mask_align = FACL_ALIGN_TOP_LEFT;
    c.strided = 1;
    case_suite_add("seqused", &c);
    c = base_case(CASE_VARLEN_QKVPACKED, FACL_DTYPE_F16, 128, 0, 0, 2, 2, 4);
    c.seqlens_q = su_vs;
    c.seqlens_k = su_vs;
    c.seqused_k = su_vsused;
    set_causal(&c, CAUSAL_BR);
    case_suite_add("seqused", &c);
    /* trusted: no read-back; the device clamps each value into 0 .. the keys */
    c = seqused_dense(CASE_DENSE, FACL_DTYPE_F16, 64, CAUSAL_BR);
    c.seqused_k = su_trust1;
    c.opts.trust_cu_seqlens = 1;
    c.strided = 1;
    case_suite_add("seqused", &c);
    c = seqused_dense(CASE_DENSE, FACL_DTYPE_BF16, 128, CAUSAL_BR);
    c.seqused_k = su_trust2; /* INT32_MIN: bottom-right off = used - sq must not wrap */
    c.opts.trust_cu_seqlens = 1;
    c.want_probs = 1;
    case_suite_add("seqused", &c);
    c = base_case(CASE_VARLEN, FACL_DTYPE_F16, 128, 0, 0, 6, 2, 4);
    c.seqlens_q = su_vq;
    c.seqlens_k = su_vk;
    c.seqused_k = su_vtrust;
    c.opts.trust_cu_seqlens = 1;
    set_causal(&c, CAUSAL_BR);
    c.strided = 1;
    case_suite_add("seqused", &c);
    /* batch 0: a seqused_k of no element (its buffer: one poisoned element) */
    c = base_case(CASE_DENSE, FACL_DTYPE_F16, 64, 17, 23, 4, 2, 0);
    c.seqused_k = su_dense;
    c.strided = 1;
    case_suite_add("seqused", &c);
    /* untrusted with enqueued uploads: the read-back of seqused_k waits for its upload */
    c = seqused_dense(CASE_DENSE, FACL_DTYPE_F16, 64, CAUSAL_BR);
    c.heads_q = 4;
    c.async_inputs = 1;
    case_suite_add("seqused", &c);
}

/* ------------------------------------------------------------------ empty problems */

static const int32_t vl_q6[] = {5, 0, 17}, vl_k6[] = {0, 0, 0}; /* no keys at all */
static const int32_t vl_q7[] = {0, 0}, vl_k7[] = {5, 9};        /* no queries at all */

/* batch 0, seqlen_q 0, seqlen_k 0 (out 0, lse +inf; a zero-column attn_probs: nothing to
 * launch), varlen without any key or query. Outputs are poisoned, so an unwritten row
 * fails, and a buffer of an empty view holds one poisoned element that must survive. */
static void add_empty(void)
{
    for (int t = 0; t < 3; t++) {
        const facl_dtype dt = k_dtypes[t];
        fwd_case c = base_case(CASE_DENSE, dt, 64, 17, 23, 4, 2, 0); /* batch 0 */
        c.want_probs = t != 1;
        c.strided = t == 2;
        case_suite_add("empty", &c);

        c = base_case(CASE_VARLEN, dt, 64, 0, 0, 4, 2, 0); /* cu_seqlens = {0} */
        c.opts.trust_cu_seqlens = t == 1;
        c.want_probs = t == 0;
        c.strided = t == 2;
        case_suite_add("empty", &c);

        c = base_case(CASE_DENSE, dt, 64, 0, 50, 4, 2, 2); /* seqlen_q 0 */
        c.want_probs = 1;
        c.opts.causal = t == 0;
        c.strided = t == 1;
        case_suite_add("empty", &c);

        c = base_case(CASE_DENSE, dt, 64, 37, 0, 4, 2, 2); /* seqlen_k 0 */
        c.strided = t == 1;
        set_causal(&c, t);
        case_suite_add("empty", &c);

        c = base_case(CASE_DENSE, dt, 64, 37, 0, 4, 2, 2); /* ... with zero-column probs */
        c.want_probs = 1;
        c.strided = t == 0;
        c.opts.window_left = t == 2 ? 0 : -1;
        c.opts.window_right = t == 2 ? INT32_MAX : -1;
        case_suite_add("empty", &c);

        c = base_case(t == 1 ? CASE_VARLEN_KVPACKED : CASE_VARLEN, dt, 64, 0, 0, 4, 2, 3);
        c.seqlens_q = vl_q6; /* every sequence without keys */
        c.seqlens_k = vl_k6;
        c.want_probs = t != 2;
        c.opts.trust_cu_seqlens = t == 2;
        set_causal(&c, (t + 1) % 3);
        c.strided = t == 0;
        case_suite_add("empty", &c);

        c = base_case(CASE_VARLEN, dt, 64, 0, 0, 4, 2, 2);
        c.seqlens_q = vl_q7; /* every sequence without queries */
        c.seqlens_k = vl_k7;
        c.want_probs = t == 1;
        c.strided = t == 1;
        case_suite_add("empty", &c);
    }
    /* the packed families with empty sequences */
    {
        fwd_case c = base_case(CASE_QKVPACKED, FACL_DTYPE_F16, 64, 0, 0, 2, 2, 2);
        case_suite_add("empty", &c);
        c = base_case(CASE_KVPACKED, FACL_DTYPE_F16, 64, 19, 0, 4, 2, 2);
        c.want_probs = 1;
        case_suite_add("empty", &c);
        c = base_case(CASE_VARLEN_QKVPACKED, FACL_DTYPE_F16, 64, 0, 0, 2, 2, 0);
        case_suite_add("empty", &c);
    }
}

/* everything at once */
static void add_combined(void)
{
    for (int t = 0; t < 3; t++) {
        fwd_case c = base_case(t == 0 ? CASE_VARLEN_KVPACKED : CASE_VARLEN, k_dtypes[t], 59, 0, 0,
                               8, 2, 3);
        c.seqlens_q = vl_q4;
        c.seqlens_k = vl_k4;
        c.opts.softcap = 20.0f;
        c.opts.window_left = 50;
        c.opts.window_right = 10;
        c.opts.mask_align = t == 1 ? FACL_ALIGN_TOP_LEFT : FACL_ALIGN_BOTTOM_RIGHT;
        c.use_alibi = 1;
        c.alibi_per_batch = t != 0;
        c.opts.dropout_p = 0.1f;
        c.opts.dropout_seed = 7 + (uint64_t)t;
        c.opts.dropout_offset = 3;
        c.want_probs = t == 2;
        c.strided = 1;
        case_suite_add("combined", &c);
    }
}

int main(void)
{
    add_dense_dims();
    add_dense_more();
    add_dense_pairs();
    add_dense_gqa();
    add_packed();
    add_varlen();
    add_windows();
    add_softcap_scale();
    add_alibi();
    add_dropout();
    add_probs();
    add_combined();
    add_huge_windows();
    add_window_edges();
    add_trusted_maxima();
    add_empty();
    add_seqused();
    return case_suite_run("forward");
}
