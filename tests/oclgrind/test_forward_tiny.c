/*
 * A tiny forward set for the Oclgrind suite: every kernel path's kernels run once per
 * feature on shapes small enough for a simulator (head dims 8 to 256, sequences of at
 * most 32 queries and 72 keys, 1-2 heads), each still judged against the float64
 * reference. Run it through tests/oclgrind/run_oclgrind.sh, which fails on any
 * diagnostic Oclgrind prints.
 *
 * FACL_KERNEL_PATH picks the set: the two portable paths get the full tiny set; the
 * emulated tensor-core kernel (fp16/bf16 only, and the slowest to simulate: 128
 * work-items per group doing warp operations through local memory) gets the smallest
 * set that still reaches every feature branch of attn_fwd_mma, plus a d=128 fp16 case
 * whose 64-key tiles (40,960 bytes with the emulation's scratch) exceed Oclgrind's
 * 32 KiB device, so the plan takes 32-key tiles (23,552 bytes), and a d=256 case that
 * does not fit even so: the plan must fall back to portable-gpu there instead of failing
 * with CL_OUT_OF_RESOURCES.
 * FACL_TEST_FILTER works as in the other forward suites.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "case_suite.h"
#include "facl.h"

static fwd_case tiny(case_layout layout, facl_dtype dt, int d, int sq, int sk, int hq, int hkv,
                     int batch)
{
    return case_suite_case(layout, dt, d, sq, sk, hq, hkv, batch, 0x0c19d000u);
}

static void causal(fwd_case *c, facl_mask_align align)
{
    c->opts.causal = 1;
    c->opts.mask_align = align;
}

/* varlen: a sequence with no queries and one with no keys */
static const int32_t vl_q[] = {5, 0, 13}, vl_k[] = {7, 3, 21};
static const int32_t vl_q2[] = {9, 17}, vl_k2[] = {24, 0};

/* portable-gpu and portable-cpu: head dims 8/16/40/64, every dtype, every feature */
static void add_portable(void)
{
    fwd_case c;

    c = tiny(CASE_DENSE, FACL_DTYPE_F32, 8, 5, 17, 1, 1, 1); /* lse */
    case_suite_add("tiny", &c);

    c = tiny(CASE_DENSE, FACL_DTYPE_F16, 16, 32, 32, 2, 1, 1);
    causal(&c, FACL_ALIGN_BOTTOM_RIGHT);
    c.strided = 1;
    case_suite_add("causal", &c);

    /* sq > sk, top-left: the last rows see every key; no lse output */
    c = tiny(CASE_DENSE, FACL_DTYPE_BF16, 40, 20, 9, 2, 2, 2);
    causal(&c, FACL_ALIGN_TOP_LEFT);
    c.want_lse = 0;
    case_suite_add("causal", &c);

    /* a window wider than the sequence on the right (unbounded there) */
    c = tiny(CASE_DENSE, FACL_DTYPE_F32, 64, 16, 24, 1, 1, 1);
    c.opts.window_left = 6;
    c.opts.window_right = 2;
    c.strided = 1;
    case_suite_add("window", &c);

    c = tiny(CASE_DENSE, FACL_DTYPE_F16, 8, 12, 12, 1, 1, 1);
    c.opts.window_left = 3;
    c.opts.window_right = 1000;
    c.opts.mask_align = FACL_ALIGN_TOP_LEFT;
    case_suite_add("window", &c);

    c = tiny(CASE_VARLEN, FACL_DTYPE_F16, 16, 0, 0, 2, 1, 3);
    c.seqlens_q = vl_q;
    c.seqlens_k = vl_k;
    causal(&c, FACL_ALIGN_BOTTOM_RIGHT);
    case_suite_add("varlen", &c);

    c = tiny(CASE_DENSE, FACL_DTYPE_BF16, 8, 16, 32, 2, 1, 1);
    c.opts.dropout_p = 0.25f;
    c.opts.dropout_seed = 0x0123456789abcdefull;
    c.opts.dropout_offset = 0xfffffffeull; /* the Philox counter carries into word 3 */
    case_suite_add("dropout", &c);

    c = tiny(CASE_VARLEN, FACL_DTYPE_F32, 40, 0, 0, 2, 1, 2);
    c.seqlens_q = vl_q2;
    c.seqlens_k = vl_k2;
    c.opts.softcap = 5.0f;
    c.opts.softmax_scale = 0.4f; /* large scores: the softcap bites */
    c.use_alibi = 1;
    c.alibi_per_batch = 1;
    c.strided = 1;
    case_suite_add("softcap-alibi", &c);

    c = tiny(CASE_DENSE, FACL_DTYPE_F16, 16, 9, 20, 2, 1, 1);
    causal(&c, FACL_ALIGN_BOTTOM_RIGHT);
    c.want_probs = 1;
    c.opts.dropout_p = 0.2f; /* dropped probabilities come back negated */
    c.opts.dropout_seed = 42;
    case_suite_add("probs", &c);

    c = tiny(CASE_QKVPACKED, FACL_DTYPE_F32, 16, 11, 11, 2, 2, 2);
    c.strided = 1;
    case_suite_add("qkvpacked", &c);

    /* wide heads: portable-gpu splits a row over 2 and 4 work-items (lane sums in local
     * memory) and its key tiles shrink to 16 and 8 keys, so these run the barriers
     * between tiles under the race detector */
    c = tiny(CASE_DENSE, FACL_DTYPE_F16, 128, 8, 32, 2, 1, 1);
    causal(&c, FACL_ALIGN_BOTTOM_RIGHT);
    case_suite_add("wide", &c);

    c = tiny(CASE_DENSE, FACL_DTYPE_BF16, 256, 5, 29, 1, 1, 1);
    c.strided = 1;
    c.want_lse = 0;
    case_suite_add("wide", &c);
}

/* mma-emulated: attn_fwd_mma's branches in few variants (each group is 128 simulated
 * work-items computing a whole 64-key tile for up to 128 rows, about 10-20 s under
 * Oclgrind's checks, so: few heads, one tile of keys) */
static void add_mma(void)
{
    fwd_case c;

    /* head_dim <= 64: two 16-row tiles per warp, q staged in local memory (its copies and
     * ldmatrix reads under the race detector); 16-byte loads, one column piece per
     * work-item (stage_rows); GQA; causal; attn_probs; two tiles of 64 keys in two k/v
     * buffers (KV_STAGES=2: the second tile's copies while the first computes, one
     * barrier per tile, under the race detector) */
    c = tiny(CASE_DENSE, FACL_DTYPE_F16, 16, 20, 72, 2, 1, 1);
    causal(&c, FACL_ALIGN_BOTTOM_RIGHT);
    c.want_probs = 1;
    case_suite_add("mma", &c);

    /* head_dim 80: one 16-row tile per warp with q in registers (no shape with q staged
     * fits Oclgrind's 32 KiB with the emulation's scratch), one k/v buffer, stage_rows'
     * general loop (10 pieces per row), 5 column blocks; bf16; varlen with a
     * sequence without keys; window, softcap, ALiBi and dropout; strided views at offsets
     * that rule out the 16-byte loads */
    c = tiny(CASE_VARLEN, FACL_DTYPE_BF16, 80, 0, 0, 1, 1, 2);
    c.seqlens_q = vl_q2;
    c.seqlens_k = vl_k2;
    c.opts.window_left = 5;
    c.opts.window_right = 2;
    c.opts.softcap = 5.0f;
    c.opts.softmax_scale = 0.4f;
    c.use_alibi = 1;
    c.opts.dropout_p = 0.25f;
    c.opts.dropout_seed = 7;
    c.opts.dropout_offset = 3;
    c.strided = 1;
    c.want_lse = 0;
    case_suite_add("mma", &c);

    /* head_dim 128: 64-key tiles need 40,960 bytes of local memory with the emulation's
     * scratch, more than Oclgrind's 32 KiB device has; the plan takes 32-key tiles */
    c = tiny(CASE_DENSE, FACL_DTYPE_F16, 128, 8, 40, 1, 1, 1);
    case_suite_add("mma-32-key-tiles", &c);
    /* head_dim 256: 39,936 bytes even with 32-key tiles; the plan must fall back to
     * portable-gpu */
    c = tiny(CASE_DENSE, FACL_DTYPE_F16, 256, 8, 16, 1, 1, 1);
    case_suite_add("mma-fallback", &c);
}

int main(void)
{
    const char *path = getenv("FACL_KERNEL_PATH");
    if (path && strcmp(path, "mma-emulated") == 0)
        add_mma();
    else
        add_portable();
    return case_suite_run("forward-tiny");
}
