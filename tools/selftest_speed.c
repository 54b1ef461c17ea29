/*
 * The self-test's speed figure per call family: one forward of a moderate size, timed
 * with profiling events like facl-bench (warm-up, probe, median), in TFLOP/s by
 * FlashAttention's formula. Non-causal, fp16, lse written; varlen calls get equal
 * sequence lengths and trust_cu_seqlens = 1, so that the figure is the kernel's and not
 * the cu_seqlens read-back's.
 */
#include <stdio.h>
#include <string.h>

#include "bench_buffers.h"
#include "bench_timing.h"
#include "selftest.h"

typedef struct speed_setup {
    facl_context *ctx;
    case_layout layout;
    facl_dtype dt;
    int b, s, h, d;
    cl_mem q, k, v, packed, out, lse, cu;
} speed_setup;

static int is_varlen(case_layout l)
{
    return l == CASE_VARLEN || l == CASE_VARLEN_QKVPACKED || l == CASE_VARLEN_KVPACKED;
}

static int enqueue(void *arg, cl_command_queue queue, cl_event *last, char *err, size_t err_size)
{
    const speed_setup *p = arg;
    const int64_t B = p->b, S = p->s, H = p->h, D = p->d, T = B * S;
    facl_attn_options o = facl_attn_options_default();
    o.trust_cu_seqlens = 1;
    const int64_t cu_shape[1] = {B + 1};
    facl_tensor cu = facl_tensor_contiguous(p->cu, FACL_DTYPE_I32, 1, cu_shape);
    facl_status st = FACL_SUCCESS;
    if (!is_varlen(p->layout)) {
        const int64_t x4[4] = {B, S, H, D}, l3[3] = {B, H, S};
        const int64_t p3[5] = {B, S, 3, H, D}, p2[5] = {B, S, 2, H, D};
        facl_tensor q = facl_tensor_contiguous(p->q, p->dt, 4, x4);
        facl_tensor out = facl_tensor_contiguous(p->out, p->dt, 4, x4);
        facl_tensor lse = facl_tensor_contiguous(p->lse, FACL_DTYPE_F32, 3, l3);
        if (p->layout == CASE_DENSE) {
            facl_tensor k = facl_tensor_contiguous(p->k, p->dt, 4, x4);
            facl_tensor v = facl_tensor_contiguous(p->v, p->dt, 4, x4);
            st = facl_fwd(p->ctx, queue, &q, &k, &v, &out, &lse, &o, 0, NULL, last);
        } else if (p->layout == CASE_QKVPACKED) {
            facl_tensor qkv = facl_tensor_contiguous(p->packed, p->dt, 5, p3);
            st = facl_fwd_qkvpacked(p->ctx, queue, &qkv, &out, &lse, &o, 0, NULL, last);
        } else {
            facl_tensor kv = facl_tensor_contiguous(p->packed, p->dt, 5, p2);
            st = facl_fwd_kvpacked(p->ctx, queue, &q, &kv, &out, &lse, &o, 0, NULL, last);
        }
    } else {
        const int64_t x3[3] = {T, H, D}, l2[2] = {H, T};
        const int64_t p3[4] = {T, 3, H, D}, p2[4] = {T, 2, H, D};
        facl_tensor q = facl_tensor_contiguous(p->q, p->dt, 3, x3);
        facl_tensor out = facl_tensor_contiguous(p->out, p->dt, 3, x3);
        facl_tensor lse = facl_tensor_contiguous(p->lse, FACL_DTYPE_F32, 2, l2);
        if (p->layout == CASE_VARLEN) {
            facl_tensor k = facl_tensor_contiguous(p->k, p->dt, 3, x3);
            facl_tensor v = facl_tensor_contiguous(p->v, p->dt, 3, x3);
            st = facl_varlen_fwd(p->ctx, queue, &q, &k, &v, &cu, &cu, S, S, &out, &lse, &o, 0,
                                 NULL, last);
        } else if (p->layout == CASE_VARLEN_QKVPACKED) {
            facl_tensor qkv = facl_tensor_contiguous(p->packed, p->dt, 4, p3);
            st = facl_varlen_fwd_qkvpacked(p->ctx, queue, &qkv, &cu, S, &out, &lse, &o, 0, NULL,
                                           last);
        } else {
            facl_tensor kv = facl_tensor_contiguous(p->packed, p->dt, 4, p2);
            st = facl_varlen_fwd_kvpacked(p->ctx, queue, &q, &kv, &cu, &cu, S, S, &out, &lse,
                                          &o, 0, NULL, last);
        }
    }
    if (st != FACL_SUCCESS) {
        snprintf(err, err_size, "%s: %s", facl_status_string(st), facl_last_error());
        return -1;
    }
    return 0;
}

static cl_int allocate(speed_setup *p)
{
    cl_context cl = facl_context_cl_context(p->ctx);
    cl_command_queue queue = facl_context_queue(p->ctx);
    const size_t n = (size_t)p->b * p->s * p->h * p->d;
    cl_int e = CL_SUCCESS;
    int packs = p->layout == CASE_QKVPACKED || p->layout == CASE_VARLEN_QKVPACKED ? 3
                : p->layout == CASE_KVPACKED || p->layout == CASE_VARLEN_KVPACKED ? 2
                                                                                  : 0;
    if (packs != 3) p->q = tool_random_buffer(cl, queue, p->dt, n, 21, &e);
    if (e == CL_SUCCESS && packs == 0) p->k = tool_random_buffer(cl, queue, p->dt, n, 22, &e);
    if (e == CL_SUCCESS && packs == 0) p->v = tool_random_buffer(cl, queue, p->dt, n, 23, &e);
    if (e == CL_SUCCESS && packs)
        p->packed = tool_random_buffer(cl, queue, p->dt, n * (size_t)packs, 24, &e);
    if (e == CL_SUCCESS) p->out = tool_zero_buffer(cl, queue, p->dt, n, &e);
    if (e == CL_SUCCESS)
        p->lse = tool_zero_buffer(cl, queue, FACL_DTYPE_F32, (size_t)p->b * p->s * p->h, &e);
    if (e == CL_SUCCESS) {
        int32_t cu[65];
        for (int i = 0; i <= p->b && i < 65; ++i) cu[i] = i * p->s;
        p->cu = tool_int_buffer(cl, queue, cu, (size_t)p->b + 1, &e);
    }
    return e;
}

static void release(speed_setup *p)
{
    cl_mem all[] = {p->q, p->k, p->v, p->packed, p->out, p->lse, p->cu};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (all[i]) clReleaseMemObject(all[i]);
}

void selftest_speed(facl_context *ctx, case_layout layout, int quick, selftest_speed_result *out)
{
    memset(out, 0, sizeof *out);
    out->family = case_layout_name(layout);
    facl_device_info info = FACL_DEVICE_INFO_INIT;
    facl_context_device_info(ctx, &info);
    speed_setup p;
    memset(&p, 0, sizeof p);
    p.ctx = ctx;
    p.layout = layout;
    p.dt = FACL_DTYPE_F16;
    /* A GPU needs a large case to fill its compute units; a CPU finishes this one in
     * a fraction of a second per run. */
    int gpu = (info.device_type & CL_DEVICE_TYPE_GPU) != 0;
    p.b = gpu ? 4 : quick ? 1 : 2;
    p.s = gpu ? (quick ? 1024 : 2048) : (quick ? 256 : 512);
    p.h = gpu ? 16 : quick ? 4 : 8;
    p.d = gpu ? 128 : 64;
    snprintf(out->name, sizeof out->name, "%s %s b=%d s=%d h=%d d=%d", out->family,
             tool_dtype_name(p.dt), p.b, p.s, p.h, p.d);

    cl_int e = allocate(&p);
    bench_timer timer;
    if (e != CL_SUCCESS) {
        snprintf(out->note, sizeof out->note, "buffers: %s", tool_cl_error_name(e));
    } else if (bench_timer_init(&timer, facl_context_cl_context(ctx), facl_context_device(ctx),
                                facl_context_queue(ctx), out->note, sizeof out->note) == 0) {
        bench_reps policy = {0, quick ? 0.2 : 0.5, 3, 20};
        bench_timing t;
        if (bench_time(&timer, enqueue, &p, &policy, &t, out->note, sizeof out->note) == 0) {
            double flops = bench_attention_flops(p.b, p.s, p.s, p.h, p.d, 0);
            out->ok = 1;
            out->median_ms = t.median_ms;
            out->reps = t.reps;
            out->tflops = t.median_ms > 0 ? flops / (t.median_ms * 1e-3) / 1e12 : 0.0;
        }
        bench_timer_free(&timer);
    }
    release(&p);
}
