/* The probe of the backward's tensor-core kernels (kernel_path.h): before a context
 * runs attn_bwd_mma.cl, the same tiny backward goes through it in both of its variants
 * (deterministic, and with atomic dq: DQ_ATOMIC, where the context opted in), through
 * attn_bwd_wgmma.cl the same way where the context takes it by default (Hopper, head
 * dims up to 128; its atomic variant unless FACL_BWD_DQ_ATOMIC=0), and through the
 * portable attn_bwd.cl on the device, and the gradients must agree. The portable kernels
 * are what every suite checks against float64 on every device, so a driver that
 * miscompiles the tensor-core kernels costs speed, not correctness. One verdict covers all of them, so
 * none runs on a context before it has passed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bwd_plan.h"
#include "bwd_problem.h"
#include "context.h"
#include "kernel_path.h"
#include "probe_data.h"
#include "status.h"

/* Two key blocks and several row tiles per block in every shape the planner picks, a
 * partial tile at both ends, GQA, a causal diagonal inside tiles; both 16-bit dtypes, a
 * head dim padded to a multiple of 16, and one case per head-dim class whose shape (and
 * local memory, beyond the 48 KiB NVIDIA reports) differs. */
typedef struct bwd_probe_case {
    facl_dtype dtype;
    int head_dim;
} bwd_probe_case;

static const bwd_probe_case k_cases[] = {
    {FACL_DTYPE_F16, 72}, {FACL_DTYPE_BF16, 128}, {FACL_DTYPE_F16, 256}};
enum { SQ = 70, SK = 90, HQ = 2, HKV = 1 };
/* Of the largest portable gradient: far above the rounding of P and dS to 16 bits
 * (below 1% here), far below what a wrong fragment layout or mask gives (order 1). */
#define GRAD_TOLERANCE 0.05

/* q, k, v, dout, out, lse; then dq, dk, dv of each run: attn_bwd_mma deterministic,
 * then with atomic dq, attn_bwd_wgmma in both modes, then the portable kernels. */
enum { B_Q, B_K, B_V, B_DOUT, B_OUT, B_LSE, B_GRADS, N_RUNS = 5, N_BUFFERS = B_GRADS + 3 * N_RUNS };
static const int key_shaped[N_BUFFERS] = {0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1};
static const char *const run_names[N_RUNS - 1] = {"attn_bwd_mma", "attn_bwd_mma (atomic dq)",
                                                  "attn_bwd_wgmma", "attn_bwd_wgmma (atomic dq)"};

static facl_status compare(const char *run, const char *name, facl_dtype dtype,
                           const uint16_t *got, const uint16_t *want, size_t n)
{
    double largest = 0.0;
    for (size_t i = 0; i < n; ++i) largest = fmax(largest, fabs(facl_probe_decode(dtype, want[i])));
    const double tolerance = GRAD_TOLERANCE * largest + 1e-3;
    for (size_t i = 0; i < n; ++i) {
        const double a = facl_probe_decode(dtype, got[i]), b = facl_probe_decode(dtype, want[i]);
        if (!(fabs(a - b) <= tolerance))
            return facl_fail(FACL_ERROR_UNSUPPORTED,
                             "%s[%zu] is %g through %s, %g through attn_bwd", name, i, a, run, b);
    }
    return FACL_SUCCESS;
}

/* The backward of the problem into the given gradient buffers with the plan that
 * `profile` gives; `want` is the program the plan must use, `atomic` whether with
 * atomic dq (opts->deterministic decides it). */
static facl_status run_backward(facl_context *ctx, const facl_device_profile *profile,
                                const char *want, int atomic, const facl_tensor t[N_BUFFERS],
                                int first_grad, const facl_attn_options *opts)
{
    const facl_bwd_names names = {{"q", "k", "v"}, "dq", "dk", "dv"};
    facl_bwd_problem bp;
    facl_status st = facl_validate_bwd_dense(
        ctx, NULL, &t[B_DOUT], &t[B_Q], &t[B_K], &t[B_V], &t[B_OUT], &t[B_LSE], &t[first_grad],
        &t[first_grad + 1], &t[first_grad + 2], opts, NULL, &names, 0, NULL, &bp);
    if (st != FACL_SUCCESS) return st;
    facl_bwd_plan plan;
    facl_plan_bwd_program(&bp, profile, NULL, &plan);
    if (strcmp(plan.program, want) != 0 || plan.dq_atomic != atomic)
        return facl_fail(FACL_ERROR_UNSUPPORTED, "the plan reaches %s%s, not %s%s", plan.program,
                         plan.dq_atomic ? " (atomic dq)" : "", want, atomic ? " (atomic dq)" : "");
    return facl_launch_bwd_planned(ctx, ctx->queue, &bp, &plan, 0, NULL, NULL);
}

static facl_status run_case(facl_context *ctx, facl_kernel_path path, const bwd_probe_case *pc)
{
    const int d = pc->head_dim;
    const size_t nq = (size_t)SQ * HQ * d, nk = (size_t)SK * HKV * d;
    size_t elems[N_BUFFERS] = {nq, nk, nk, nq, nq, (size_t)2 * HQ * SQ};
    for (int i = B_GRADS; i < N_BUFFERS; ++i) elems[i] = key_shaped[i] ? nk : nq;
    size_t total = 0;
    for (int i = 0; i < N_BUFFERS; ++i) total += elems[i];
    uint16_t *bits = malloc(sizeof *bits * total);
    cl_mem buffers[N_BUFFERS] = {0};
    facl_status st = FACL_SUCCESS;
    if (!bits) return facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "backward probe buffers");
    /* the atomic-dq variants only where the context may take them (attn_bwd_mma's with
     * FACL_BWD_DQ_ATOMIC=1, attn_bwd_wgmma's unless =0), the Hopper kernels where the
     * context takes them by default (forced, they run unprobed) */
    const int hopper = ctx->profile.bwd_wgmma == FACL_BWD_WGMMA_PROBED && d <= 128;
    const int runs[N_RUNS - 1] = {1, ctx->profile.bwd_dq_atomic, hopper,
                                  hopper && (ctx->profile.bwd_dq_atomic || ctx->profile.bwd_wgmma_dq_atomic)};
    /* q, k, v and dout random; out, lse (fp32 as 16-bit pairs) and gradients poison */
    uint32_t state = 0x85EBCA6Bu ^ (uint32_t)d;
    size_t at = 0;
    uint16_t *host[N_BUFFERS];
    for (int i = 0; i < N_BUFFERS; ++i) {
        host[i] = bits + at;
        for (size_t e = 0; e < elems[i]; ++e) {
            double unused;
            host[i][e] = i <= B_DOUT ? facl_probe_random_bits(pc->dtype, &state, &unused) : 0xFFFFu;
        }
        at += elems[i];
    }
    for (int i = 0; i < N_BUFFERS && st == FACL_SUCCESS; ++i) {
        cl_int err;
        buffers[i] = facl_probe_upload(ctx, host[i], elems[i] * 2, &err);
        if (err != CL_SUCCESS) {
            buffers[i] = NULL;
            st = facl_fail_cl(err, "backward probe buffers");
        }
    }
    if (st == FACL_SUCCESS) {
        const int64_t qs[4] = {1, SQ, HQ, d}, ks[4] = {1, SK, HKV, d}, ls[3] = {1, HQ, SQ};
        facl_tensor t[N_BUFFERS];
        for (int i = 0; i < N_BUFFERS; ++i)
            t[i] = i == B_LSE ? facl_tensor_contiguous(buffers[i], FACL_DTYPE_F32, 3, ls)
                              : facl_tensor_contiguous(buffers[i], pc->dtype, 4,
                                                       key_shaped[i] ? ks : qs);
        facl_attn_options opts = facl_attn_options_default();
        opts.causal = 1;
        /* out and lse through the context's own (already probed) forward */
        st = facl_fwd(ctx, ctx->queue, &t[B_Q], &t[B_K], &t[B_V], &t[B_OUT], &t[B_LSE], &opts,
                      0, NULL, NULL);
        facl_device_profile profile = ctx->profile;
        profile.path = path;
        profile.bwd_mma_off = 0;
        for (int r = 0; r < N_RUNS - 1 && st == FACL_SUCCESS; ++r) {
            if (!runs[r]) continue;
            const int atomic = r == 1 || r == 3, wgmma = r >= 2;
            opts.deterministic = !atomic;
            profile.bwd_dq_atomic = atomic; /* the atomic variants even at the probe's short length */
            profile.bwd_wgmma = wgmma ? ctx->profile.bwd_wgmma : FACL_BWD_WGMMA_OFF;
            st = run_backward(ctx, &profile, wgmma ? "attn_bwd_wgmma" : "attn_bwd_mma", atomic, t,
                              B_GRADS + 3 * r, &opts);
        }
        profile.bwd_mma_off = 1;
        opts.deterministic = 1;
        if (st == FACL_SUCCESS)
            st = run_backward(ctx, &profile, "attn_bwd", 0, t, B_GRADS + 3 * (N_RUNS - 1), &opts);
    }
    for (int i = B_GRADS; i < N_BUFFERS && st == FACL_SUCCESS; ++i) {
        const cl_int err = clEnqueueReadBuffer(ctx->queue, buffers[i], CL_TRUE, 0, elems[i] * 2,
                                               host[i], 0, NULL, NULL);
        if (err != CL_SUCCESS) st = facl_fail_cl(err, "reading the backward probe's gradients");
    }
    static const char *const grad_names[3] = {"dq", "dk", "dv"};
    const int want = B_GRADS + 3 * (N_RUNS - 1); /* the portable run's */
    for (int r = 0; r < N_RUNS - 1; ++r)
        for (int g = 0; g < 3 && st == FACL_SUCCESS && runs[r]; ++g)
            st = compare(run_names[r], grad_names[g], pc->dtype, host[B_GRADS + 3 * r + g],
                         host[want + g], elems[B_GRADS + g]);
    for (int i = 0; i < N_BUFFERS; ++i)
        if (buffers[i]) clReleaseMemObject(buffers[i]);
    free(bits);
    return st;
}

facl_status facl_probe_bwd_mma(facl_context *ctx, facl_kernel_path path, char *why, size_t cap)
{
    facl_status st = FACL_SUCCESS;
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0] && st == FACL_SUCCESS; ++i) {
        st = run_case(ctx, path, &k_cases[i]);
        if (st != FACL_SUCCESS)
            snprintf(why, cap, "backward %s d=%d: %s",
                     k_cases[i].dtype == FACL_DTYPE_F16 ? "fp16" : "bf16", k_cases[i].head_dim,
                     facl_last_error());
    }
    if (st == FACL_SUCCESS) snprintf(why, cap, "passed");
    return st;
}
