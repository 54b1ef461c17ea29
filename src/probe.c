/* The probe of a fast kernel path: before a context uses a path that is not the
 * portable one, it compiles and runs the path's kernels on a few tiny problems and
 * compares them with a float64 computation on the host. A driver that miscompiles,
 * refuses the inline assembly or runs it wrongly then costs speed, not correctness. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_plan.h"
#include "cache_problem.h"
#include "fwd_problem.h"
#include "kernel_path.h"
#include "plan.h"
#include "probe_data.h"
#include "status.h"

/* Shapes that reach the parts a layout mistake would break: two key tiles (the second
 * partial), a partial row tile, GQA, a causal diagonal inside a tile; one case per
 * 16-bit dtype and per row-tile variant of the mma kernel (d <= 64 and d > 64). */
typedef struct probe_case {
    facl_dtype dtype;
    int head_dim;
} probe_case;

static const probe_case k_cases[] = {{FACL_DTYPE_F16, 64}, {FACL_DTYPE_BF16, 80}};
/* The forward also at d = 256, whose 64-key tiles take local memory beyond the 48 KiB
 * NVIDIA reports (facl_mma_local_budget); the KV-cache kernel stops at d = 128. */
static const probe_case k_fwd_wide = {FACL_DTYPE_F16, 256};
enum { SQ = 70, SK = 90, HQ = 2, HKV = 1 };
/* Far above the rounding of fp16/bf16 outputs (< 0.01 here), far below what a wrong
 * fragment layout or mask gives (order 0.1 to 1). */
#define OUT_TOLERANCE 0.03
#define LSE_TOLERANCE 0.01

typedef struct probe_buffers {
    cl_mem q, k, v, out, lse;
} probe_buffers;

static void release_buffers(probe_buffers *b)
{
    cl_mem *all[5] = {&b->q, &b->k, &b->v, &b->out, &b->lse};
    for (int i = 0; i < 5; ++i)
        if (*all[i]) clReleaseMemObject(*all[i]);
}

/* Attention of one row in float64: causal, bottom-right aligned, scale 1/sqrt(d). */
static void reference_row(const double *q, const double *k, const double *v, int d, int i,
                          int h, double *out, double *lse)
{
    const int kv_head = h / (HQ / HKV), last = i + (SK - SQ);
    double scores[SK], m = -INFINITY, l = 0.0;
    for (int j = 0; j <= last && j < SK; ++j) {
        double x = 0.0;
        for (int c = 0; c < d; ++c) x += q[(i * HQ + h) * d + c] * k[(j * HKV + kv_head) * d + c];
        scores[j] = x / sqrt((double)d);
        m = fmax(m, scores[j]);
    }
    for (int c = 0; c < d; ++c) out[c] = 0.0;
    for (int j = 0; j <= last && j < SK; ++j) {
        const double p = exp(scores[j] - m);
        l += p;
        for (int c = 0; c < d; ++c) out[c] += p * v[(j * HKV + kv_head) * d + c];
    }
    for (int c = 0; c < d; ++c) out[c] /= l;
    *lse = m + log(l);
}

/* What a probe case runs: the forward's attn_fwd_mma, the forward's Hopper kernel with
 * its copier through the tensor copy engine, or the KV-cache kernel. */
typedef enum probe_target { PROBE_FWD_MMA, PROBE_FWD_HOPPER, PROBE_CACHE } probe_target;

/* The forward through the path's kernel (`hopper`: the Hopper kernel through the engine). */
static facl_status launch_fwd(facl_context *ctx, const facl_tensor *q, const facl_tensor *k,
                              const facl_tensor *v, const facl_tensor *out, const facl_tensor *lse,
                              const facl_attn_options *opts, int hopper)
{
    const facl_fwd_names names = {"q", "k", "v"};
    facl_fwd_problem p;
    facl_status st =
        facl_validate_fwd_dense(ctx, NULL, q, k, v, out, lse, opts, &names, 0, NULL, &p);
    if (st != FACL_SUCCESS) return st;
    facl_fwd_plan plan;
    facl_plan_fwd_program(&p, &ctx->profile, &plan);
    /* (the context's first probe runs before FACL_FWD_WGMMA is read: attn_fwd_mma it is) */
    if (strcmp(plan.kernel, hopper ? "attn_fwd_wgmma" : "attn_fwd_mma") != 0 || (hopper && !plan.tma))
        return facl_fail(FACL_ERROR_UNSUPPORTED, "the plan does not reach %s",
                         hopper ? "attn_fwd_wgmma through the tensor copy engine" : "attn_fwd_mma");
    return facl_launch_fwd(ctx, ctx->queue, &p, 0, NULL, NULL);
}

/* The same attention as facl_fwd_kvcache over k and v as a full dense cache (the causal
 * rule is the same: bottom-right), in two splits, through the tensor-core cache kernel. */
static facl_status launch_cache(facl_context *ctx, const facl_tensor *q, const facl_tensor *k,
                                const facl_tensor *v, const facl_tensor *out,
                                const facl_tensor *lse, const facl_attn_options *opts)
{
    facl_kvcache_args args = FACL_KVCACHE_ARGS_INIT;
    args.num_splits = 2;
    args.cache_seqlens_value = SK;
    facl_cache_problem p;
    facl_status st =
        facl_validate_kvcache(ctx, NULL, q, k, v, &args, out, lse, opts, 0, NULL, &p);
    if (st != FACL_SUCCESS) return st;
    facl_cache_plan plan;
    facl_plan_cache(&p, &ctx->profile, &ctx->cache_mma_shape, &plan);
    if (strcmp(plan.program, "attn_cache_mma") != 0)
        return facl_fail(FACL_ERROR_UNSUPPORTED, "the plan does not reach attn_cache_mma");
    return facl_launch_cache(ctx, ctx->queue, &p, 0, NULL, NULL);
}

static facl_status run_case(facl_context *ctx, const probe_case *pc, probe_target target,
                            char *why, size_t cap)
{
    const int cache = target == PROBE_CACHE;
    const int d = pc->head_dim;
    const size_t nq = (size_t)SQ * HQ * d, nk = (size_t)SK * HKV * d;
    uint16_t *bits = malloc(sizeof *bits * (nq + 2 * nk + nq));
    double *values = malloc(sizeof *values * (nq + 2 * nk + (size_t)d));
    float *lse = malloc(sizeof *lse * HQ * SQ);
    probe_buffers buf = {0};
    facl_status st = FACL_SUCCESS;
    if (!bits || !values || !lse) {
        st = facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "probe buffers");
        goto done;
    }
    uint32_t state = 0x9E3779B9u ^ (uint32_t)d;
    for (size_t i = 0; i < nq + 2 * nk; ++i) bits[i] = facl_probe_random_bits(pc->dtype, &state, &values[i]);
    memset(bits + nq + 2 * nk, 0xFF, nq * sizeof *bits); /* poison: NaN in both dtypes */
    memset(lse, 0xFF, sizeof *lse * HQ * SQ);
    cl_int err = CL_SUCCESS, e2 = CL_SUCCESS, e3 = CL_SUCCESS, e4 = CL_SUCCESS, e5 = CL_SUCCESS;
    buf.q = facl_probe_upload(ctx, bits, nq * 2, &err);
    buf.k = facl_probe_upload(ctx, bits + nq, nk * 2, &e2);
    buf.v = facl_probe_upload(ctx, bits + nq + nk, nk * 2, &e3);
    buf.out = facl_probe_upload(ctx, bits + nq + 2 * nk, nq * 2, &e4);
    buf.lse = facl_probe_upload(ctx, lse, sizeof *lse * HQ * SQ, &e5);
    if (err == CL_SUCCESS) err = e2 ? e2 : e3 ? e3 : e4 ? e4 : e5;
    if (err != CL_SUCCESS) {
        st = facl_fail_cl(err, "probe buffers");
        goto done;
    }
    const int64_t qs[4] = {1, SQ, HQ, d}, ks[4] = {1, SK, HKV, d}, ls[3] = {1, HQ, SQ};
    const facl_tensor q = facl_tensor_contiguous(buf.q, pc->dtype, 4, qs);
    const facl_tensor k = facl_tensor_contiguous(buf.k, pc->dtype, 4, ks);
    const facl_tensor v = facl_tensor_contiguous(buf.v, pc->dtype, 4, ks);
    const facl_tensor out = facl_tensor_contiguous(buf.out, pc->dtype, 4, qs);
    const facl_tensor lse_t = facl_tensor_contiguous(buf.lse, FACL_DTYPE_F32, 3, ls);
    facl_attn_options opts = facl_attn_options_default();
    opts.causal = 1;
    st = cache ? launch_cache(ctx, &q, &k, &v, &out, &lse_t, &opts)
               : launch_fwd(ctx, &q, &k, &v, &out, &lse_t, &opts, target == PROBE_FWD_HOPPER);
    if (st != FACL_SUCCESS) goto done;
    uint16_t *out_bits = bits + nq + 2 * nk;
    err = clEnqueueReadBuffer(ctx->queue, buf.out, CL_TRUE, 0, nq * 2, out_bits, 0, NULL, NULL);
    if (err == CL_SUCCESS)
        err = clEnqueueReadBuffer(ctx->queue, buf.lse, CL_TRUE, 0, sizeof *lse * HQ * SQ, lse, 0,
                                  NULL, NULL);
    if (err != CL_SUCCESS) {
        st = facl_fail_cl(err, "reading the probe's results");
        goto done;
    }
    const double *qv = values, *kv = values + nq, *vv = values + nq + nk;
    double *ref = values + nq + 2 * nk, ref_lse;
    for (int i = 0; i < SQ && st == FACL_SUCCESS; ++i)
        for (int h = 0; h < HQ && st == FACL_SUCCESS; ++h) {
            reference_row(qv, kv, vv, d, i, h, ref, &ref_lse);
            const double lse_err = fabs(lse[h * SQ + i] - ref_lse);
            if (!(lse_err <= LSE_TOLERANCE))
                st = facl_fail(FACL_ERROR_UNSUPPORTED, "lse of row %d head %d off by %g", i, h,
                               lse_err);
            for (int c = 0; c < d && st == FACL_SUCCESS; ++c) {
                const double got = facl_probe_decode(pc->dtype, out_bits[(i * HQ + h) * d + c]);
                if (!(fabs(got - ref[c]) <= OUT_TOLERANCE))
                    st = facl_fail(FACL_ERROR_UNSUPPORTED,
                                   "out[%d, %d, %d] is %g, float64 gives %g", i, h, c, got, ref[c]);
            }
        }
done:
    if (st != FACL_SUCCESS)
        snprintf(why, cap, "%s%s d=%d: %s",
                 cache ? "KV cache " : target == PROBE_FWD_HOPPER ? "Hopper kernel " : "",
                 pc->dtype == FACL_DTYPE_F16 ? "fp16" : "bf16", d, facl_last_error());
    release_buffers(&buf);
    free(bits);
    free(values);
    free(lse);
    return st;
}

facl_status facl_probe_fwd_path(facl_context *ctx, facl_kernel_path path, char *why, size_t cap)
{
    const facl_kernel_path saved = ctx->profile.path;
    ctx->profile.path = path;
    facl_status st = FACL_SUCCESS;
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0] && st == FACL_SUCCESS; ++i)
        st = run_case(ctx, &k_cases[i], PROBE_FWD_MMA, why, cap);
    if (st == FACL_SUCCESS) st = run_case(ctx, &k_fwd_wide, PROBE_FWD_MMA, why, cap);
    ctx->profile.path = saved;
    if (st == FACL_SUCCESS) snprintf(why, cap, "passed");
    return st;
}

facl_status facl_probe_fwd_hopper(facl_context *ctx, char *why, size_t cap)
{
    facl_device_profile *pr = &ctx->profile;
    const int saved[3] = {pr->fwd_wgmma, pr->wgmma_ws, pr->wgmma_tma};
    pr->fwd_wgmma = FACL_WGMMA_EVERYWHERE;
    pr->wgmma_ws = 2;
    pr->wgmma_tma = 1;
    facl_status st = FACL_SUCCESS;
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0] && st == FACL_SUCCESS; ++i)
        st = run_case(ctx, &k_cases[i], PROBE_FWD_HOPPER, why, cap);
    if (st == FACL_SUCCESS) st = run_case(ctx, &k_fwd_wide, PROBE_FWD_HOPPER, why, cap);
    pr->fwd_wgmma = saved[0];
    pr->wgmma_ws = saved[1];
    pr->wgmma_tma = saved[2];
    if (st == FACL_SUCCESS) snprintf(why, cap, "passed");
    return st;
}

facl_status facl_probe_cache_mma(facl_context *ctx, facl_kernel_path path, char *why, size_t cap)
{
    const facl_kernel_path saved = ctx->profile.path;
    const int saved_off = ctx->profile.cache_mma_off;
    const facl_cache_mma_shape saved_shape = ctx->cache_mma_shape;
    ctx->profile.path = path;
    ctx->profile.cache_mma_off = 0;
    facl_status st = FACL_SUCCESS;
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0] && st == FACL_SUCCESS; ++i)
        st = run_case(ctx, &k_cases[i], PROBE_CACHE, why, cap);
    /* where the planner fills a dense cache's tiles with the copy engine (8 warps for the
     * probe's few units, 4 for many), small pages still take cp.async: every variant it
     * may choose passes before any is used */
    if (saved_shape.copy == FACL_CACHE_COPY_AUTO && facl_cache_has_copy_engine(&ctx->profile)) {
        const facl_cache_mma_shape others[2] = {
            {saved_shape.warps, saved_shape.stages, FACL_CACHE_COPY_ASYNC},
            {4, 2, FACL_CACHE_COPY_BULK}};
        /* (a requested shape is the only one either copy uses) */
        const int count = saved_shape.warps ? 1 : 2;
        for (int o = 0; o < count && st == FACL_SUCCESS; ++o) {
            ctx->cache_mma_shape = others[o];
            for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0] && st == FACL_SUCCESS; ++i)
                st = run_case(ctx, &k_cases[i], PROBE_CACHE, why, cap);
        }
        ctx->cache_mma_shape = saved_shape;
    }
    ctx->profile.path = saved;
    ctx->profile.cache_mma_off = saved_off;
    if (st == FACL_SUCCESS) snprintf(why, cap, "passed");
    return st;
}
