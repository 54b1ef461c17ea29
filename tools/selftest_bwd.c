/*
 * The self-test's backward checks (facl_bwd, facl_bwd_qkvpacked, facl_bwd_kvpacked and
 * the varlen forms). Random q, k, v and dout; the forward's out and lse come from the test
 * kit's float64 reference, rounded as a device forward would hand them over (out to the
 * storage dtype, lse to fp32), so that the backward is judged on its own. dq, dk and dv
 * are judged by SPEC.md's rule against the test kit's float64 analytic gradients and, for
 * fp16/bf16, its storage-precision version (bwd_ref.h), like every other check. Every
 * gradient buffer starts as NaN (0xFF bytes), so an element the call leaves unwritten
 * fails.
 *
 * Also the backward's speed figure (selftest_speed_bwd): facl_bwd on the dense forward's
 * speed size, timed with profiling events, in TFLOP/s counted as 2.5x the forward FLOPs.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_buffers.h"
#include "bench_timing.h"
#include "bwd_ref.h"
#include "compare.h"
#include "numeric.h"
#include "reference.h"
#include "selftest.h"
#include "tool_util.h"

static int is_varlen(case_layout l)
{
    return l == CASE_VARLEN || l == CASE_VARLEN_QKVPACKED || l == CASE_VARLEN_KVPACKED;
}

void bwd_check_name(const bwd_check *c, char *buf, size_t size)
{
    buf[0] = '\0';
    tool_appendf(buf, size, "bwd %s %s d=%d h=%d/%d b=%d", case_layout_name(c->layout),
            testkit_dtype_name(c->dtype), c->head_dim, c->heads_q, c->heads_kv, c->batch);
    if (c->seqlens_q) {
        tool_appendf(buf, size, " sq=[");
        for (int i = 0; i < c->batch; ++i) tool_appendf(buf, size, i ? ",%d" : "%d", (int)c->seqlens_q[i]);
        tool_appendf(buf, size, "] sk=[");
        for (int i = 0; i < c->batch; ++i) tool_appendf(buf, size, i ? ",%d" : "%d", (int)c->seqlens_k[i]);
        tool_appendf(buf, size, "]");
    } else {
        tool_appendf(buf, size, " sq=%d sk=%d", c->seqlen_q, c->seqlen_k);
    }
    if (c->causal) tool_appendf(buf, size, " causal");
    if (c->softcap > 0) tool_appendf(buf, size, " softcap=%g", (double)c->softcap);
    if (c->dropout_p > 0) tool_appendf(buf, size, " dropout=%g", (double)c->dropout_p);
    if (c->deterministic) tool_appendf(buf, size, " deterministic");
}

/* Everything one run owns; freed in one place. */
typedef struct bwd_run {
    int32_t *cu_q, *cu_k;
    float *q, *k, *v, *dout, *out, *lse, *lse_dev;
    float *got_dq, *got_dk, *got_dv, *low_dq, *low_dk, *low_dv;
    double *out64, *lse64, *ref_dq, *ref_dk, *ref_dv;
    unsigned char *raw;
    cl_mem mem[16];
    int n_mem;
} bwd_run;

static void *zalloc(size_t n, size_t size)
{
    return calloc(n ? n : 1, size ? size : 1);
}

static void run_free(bwd_run *r)
{
    void *all[] = {r->cu_q,   r->cu_k,   r->q,      r->k,      r->v,      r->dout,
                   r->out,    r->lse,    r->lse_dev, r->got_dq, r->got_dk, r->got_dv,
                   r->low_dq, r->low_dk, r->low_dv, r->out64,  r->lse64,  r->ref_dq,
                   r->ref_dk, r->ref_dv, r->raw};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) free(all[i]);
    for (int i = 0; i < r->n_mem; ++i) clReleaseMemObject(r->mem[i]);
}

/* rows x (P members) x heads x d storage: member m of each row from the logical
 * (rows, heads, d) floats `x`. */
static void pack(facl_dtype dt, unsigned char *raw, const float *x, size_t rows, int P, int m,
                 int H, int D)
{
    for (size_t r = 0; r < rows; ++r)
        for (int h = 0; h < H; ++h)
            for (int e = 0; e < D; ++e)
                testkit_store(dt, raw, ((r * P + m) * H + h) * D + e, x[(r * H + h) * D + e]);
}

static void unpack(facl_dtype dt, const unsigned char *raw, float *x, size_t rows, int P, int m,
                   int H, int D)
{
    for (size_t r = 0; r < rows; ++r)
        for (int h = 0; h < H; ++h)
            for (int e = 0; e < D; ++e)
                x[(r * H + h) * D + e] = testkit_load(dt, raw, ((r * P + m) * H + h) * D + e);
}

/* A device buffer of `bytes` from `host` (NULL: 0xFF bytes, NaN in every float dtype). */
static cl_mem upload(facl_context *ctx, bwd_run *run, const void *host, size_t bytes, cl_int *e)
{
    if (*e != CL_SUCCESS) return NULL;
    void *poison = NULL;
    if (!host) {
        poison = zalloc(bytes, 1);
        if (!poison) {
            *e = CL_OUT_OF_HOST_MEMORY;
            return NULL;
        }
        memset(poison, 0xff, bytes ? bytes : 1);
        host = poison;
    }
    cl_mem m = clCreateBuffer(facl_context_cl_context(ctx), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                              bytes ? bytes : 1, (void *)host, e);
    free(poison);
    if (m) run->mem[run->n_mem++] = m;
    return m;
}

/* A packed image (rows, P, heads, d) already filled by pack() as a device buffer. */
static cl_mem upload_packed(facl_context *ctx, bwd_run *run, facl_dtype dt, unsigned char *img,
                            size_t rows, int P, int H, int D, cl_int *e)
{
    return upload(ctx, run, img, rows * (size_t)P * H * D * facl_dtype_size(dt), e);
}

/* Which gradient decides the row: the one nearest its bound (a failure always wins). */
static void consider(selftest_check_result *out, double *worst, const char *what,
                     const cmp_result *m, facl_dtype rule)
{
    int rel = rule == FACL_DTYPE_F32;
    double value = rel ? m->rel_l2 : m->max_err;
    double ratio = m->pass ? (m->bound > 0 ? value / m->bound : 0) : 1e300;
    if (ratio > *worst) {
        *worst = ratio;
        out->worst = what;
        out->measure = rel ? "relL2" : "max|e|";
        out->error = value;
        out->bound = m->bound;
    }
}

static int fail_with(selftest_check_result *out, bwd_run *run, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->detail, sizeof out->detail, fmt, ap);
    va_end(ap);
    out->pass = 0;
    run_free(run);
    return 0;
}

int selftest_run_bwd_case(facl_context *ctx, const bwd_check *c, selftest_check_result *out)
{
    memset(out, 0, sizeof *out);
    bwd_check_name(c, out->name, sizeof out->name);
    out->family = "bwd";
    out->dtype = c->dtype;
    out->worst = "-";
    out->measure = "-";

    const facl_dtype dt = c->dtype;
    const size_t es = facl_dtype_size(dt);
    const int B = c->batch, Hq = c->heads_q, Hk = c->heads_kv, D = c->head_dim;
    const int varlen = is_varlen(c->layout);
    const int qkvp = c->layout == CASE_QKVPACKED || c->layout == CASE_VARLEN_QKVPACKED;
    const int kvp = c->layout == CASE_KVPACKED || c->layout == CASE_VARLEN_KVPACKED;
    cl_command_queue queue = facl_context_queue(ctx);
    bwd_run run;
    memset(&run, 0, sizeof run);
    testkit_rng rng;
    testkit_rng_seed(&rng, c->seed);

    /* ---- host inputs and the forward the backward starts from */
    run.cu_q = zalloc((size_t)B + 1, sizeof *run.cu_q);
    run.cu_k = zalloc((size_t)B + 1, sizeof *run.cu_k);
    for (int b = 0; b < B; ++b) {
        run.cu_q[b + 1] = run.cu_q[b] + (varlen ? c->seqlens_q[b] : c->seqlen_q);
        run.cu_k[b + 1] = run.cu_k[b] + (varlen ? c->seqlens_k[b] : c->seqlen_k);
    }
    const size_t total_q = (size_t)run.cu_q[B], total_k = (size_t)run.cu_k[B];
    const size_t nq = total_q * Hq * D, nk = total_k * Hk * D, nl = total_q * Hq;
    run.q = zalloc(nq, sizeof(float));
    run.k = zalloc(nk, sizeof(float));
    run.v = zalloc(nk, sizeof(float));
    run.dout = zalloc(nq, sizeof(float));
    float *inputs[4] = {run.q, run.k, run.v, run.dout};
    const size_t counts[4] = {nq, nk, nk, nq};
    for (int t = 0; t < 4; ++t)
        for (size_t i = 0; i < counts[t]; ++i)
            inputs[t][i] = testkit_round_to(dt, (float)testkit_rng_normal(&rng));

    facl_attn_options o = facl_attn_options_default();
    o.causal = c->causal;
    o.mask_align = FACL_ALIGN_BOTTOM_RIGHT;
    o.softcap = c->softcap;
    o.dropout_p = c->dropout_p;
    o.dropout_seed = 0x5eedu + c->seed;
    o.dropout_offset = 7;
    o.deterministic = c->deterministic;

    ref_problem rp;
    memset(&rp, 0, sizeof rp);
    rp.batch = B;
    rp.heads_q = Hq;
    rp.heads_kv = Hk;
    rp.head_dim = D;
    rp.cu_q = run.cu_q;
    rp.cu_k = run.cu_k;
    rp.scale = (float)(1.0 / sqrt((double)D));
    rp.window_left = -1;
    rp.window_right = c->causal ? 0 : -1;
    rp.align_top_left = 0;
    rp.softcap = c->softcap;
    rp.dropout_p = c->dropout_p;
    rp.seed = o.dropout_seed;
    rp.offset = o.dropout_offset;

    run.out64 = zalloc(nq, sizeof(double));
    run.lse64 = zalloc(nl, sizeof(double));
    ref_attention_f64(&rp, run.q, run.k, run.v, run.out64, run.lse64);
    run.out = zalloc(nq, sizeof(float));
    run.lse = zalloc(nl, sizeof(float));
    for (size_t i = 0; i < nq; ++i) run.out[i] = testkit_round_to(dt, (float)run.out64[i]);
    for (size_t i = 0; i < nl; ++i) run.lse[i] = (float)run.lse64[i];

    /* ---- device buffers: inputs packed as the layout wants, gradients poisoned */
    cl_int e = CL_SUCCESS;
    cl_mem bq = NULL, bk = NULL, bv = NULL, bpk = NULL, gq = NULL, gk = NULL, gv = NULL, gpk = NULL;
    if (qkvp) {
        run.raw = zalloc(total_q * 3 * Hq * D, es);
        pack(dt, run.raw, run.q, total_q, 3, 0, Hq, D);
        pack(dt, run.raw, run.k, total_q, 3, 1, Hq, D);
        pack(dt, run.raw, run.v, total_q, 3, 2, Hq, D);
        bpk = upload_packed(ctx, &run, dt, run.raw, total_q, 3, Hq, D, &e);
        gpk = upload(ctx, &run, NULL, total_q * 3 * Hq * D * es, &e);
    } else {
        run.raw = zalloc(nq > 2 * nk ? nq : 2 * nk, es);
        pack(dt, run.raw, run.q, total_q, 1, 0, Hq, D);
        bq = upload(ctx, &run, run.raw, nq * es, &e);
        gq = upload(ctx, &run, NULL, nq * es, &e);
        if (kvp) {
            pack(dt, run.raw, run.k, total_k, 2, 0, Hk, D);
            pack(dt, run.raw, run.v, total_k, 2, 1, Hk, D);
            bpk = upload_packed(ctx, &run, dt, run.raw, total_k, 2, Hk, D, &e);
            gpk = upload(ctx, &run, NULL, 2 * nk * es, &e);
        } else {
            pack(dt, run.raw, run.k, total_k, 1, 0, Hk, D);
            bk = upload(ctx, &run, run.raw, nk * es, &e);
            pack(dt, run.raw, run.v, total_k, 1, 0, Hk, D);
            bv = upload(ctx, &run, run.raw, nk * es, &e);
            gk = upload(ctx, &run, NULL, nk * es, &e);
            gv = upload(ctx, &run, NULL, nk * es, &e);
        }
    }
    unsigned char *tmp = zalloc(nq, es);
    if (tmp) pack(dt, tmp, run.out, total_q, 1, 0, Hq, D);
    cl_mem bout = tmp ? upload(ctx, &run, tmp, nq * es, &e) : NULL;
    if (tmp) pack(dt, tmp, run.dout, total_q, 1, 0, Hq, D);
    cl_mem bdout = tmp ? upload(ctx, &run, tmp, nq * es, &e) : NULL;
    free(tmp);
    /* lse: dense (batch, heads_q, seqlen_q), varlen (heads_q, total_q) as the reference */
    run.lse_dev = zalloc(nl, sizeof(float));
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < Hq; ++h)
            for (int i = run.cu_q[b]; i < run.cu_q[b + 1]; ++i)
                run.lse_dev[varlen ? (size_t)h * total_q + i
                                   : ((size_t)b * Hq + h) * c->seqlen_q + (i - run.cu_q[b])] =
                    run.lse[(size_t)h * total_q + i];
    cl_mem blse = upload(ctx, &run, run.lse_dev, nl * sizeof(float), &e);
    cl_mem bcuq = varlen ? upload(ctx, &run, run.cu_q, ((size_t)B + 1) * 4, &e) : NULL;
    cl_mem bcuk = varlen ? upload(ctx, &run, run.cu_k, ((size_t)B + 1) * 4, &e) : NULL;
    if (e != CL_SUCCESS || !bout || !bdout)
        return fail_with(out, &run, "buffers: OpenCL error %d", (int)e);

    const int64_t SQ = c->seqlen_q, SK = c->seqlen_k, TQ = (int64_t)total_q, TK = (int64_t)total_k;
    const int64_t q4[4] = {B, SQ, Hq, D}, k4[4] = {B, SK, Hk, D}, q3[3] = {TQ, Hq, D},
                  k3[3] = {TK, Hk, D};
    const int64_t qkv5[5] = {B, SQ, 3, Hq, D}, kv5[5] = {B, SK, 2, Hk, D},
                  qkv4[4] = {TQ, 3, Hq, D}, kv4[4] = {TK, 2, Hk, D};
    const int64_t l3[3] = {B, Hq, SQ}, l2[2] = {Hq, TQ}, cu1[1] = {B + 1};
#define T(buf, nd, shape) facl_tensor_contiguous(buf, dt, nd, shape)
    facl_tensor tq = varlen ? T(bq, 3, q3) : T(bq, 4, q4);
    facl_tensor tdq = varlen ? T(gq, 3, q3) : T(gq, 4, q4);
    facl_tensor tk = varlen ? T(bk, 3, k3) : T(bk, 4, k4);
    facl_tensor tv = varlen ? T(bv, 3, k3) : T(bv, 4, k4);
    facl_tensor tdk = varlen ? T(gk, 3, k3) : T(gk, 4, k4);
    facl_tensor tdv = varlen ? T(gv, 3, k3) : T(gv, 4, k4);
    facl_tensor tqkv = varlen ? T(bpk, 4, qkv4) : T(bpk, 5, qkv5);
    facl_tensor tdqkv = varlen ? T(gpk, 4, qkv4) : T(gpk, 5, qkv5);
    facl_tensor tkv = varlen ? T(bpk, 4, kv4) : T(bpk, 5, kv5);
    facl_tensor tdkv = varlen ? T(gpk, 4, kv4) : T(gpk, 5, kv5);
    facl_tensor tout = varlen ? T(bout, 3, q3) : T(bout, 4, q4);
    facl_tensor tdout = varlen ? T(bdout, 3, q3) : T(bdout, 4, q4);
#undef T
    facl_tensor tlse = varlen ? facl_tensor_contiguous(blse, FACL_DTYPE_F32, 2, l2)
                              : facl_tensor_contiguous(blse, FACL_DTYPE_F32, 3, l3);
    facl_tensor tcuq = facl_tensor_contiguous(bcuq, FACL_DTYPE_I32, 1, cu1);
    facl_tensor tcuk = facl_tensor_contiguous(bcuk, FACL_DTYPE_I32, 1, cu1);

    /* ---- the call (untrusted cu_seqlens: validated as a user's would be) */
    cl_event ev = NULL;
    facl_status st;
    double t0 = tool_now_seconds();
    switch (c->layout) {
    case CASE_DENSE:
        st = facl_bwd(ctx, queue, &tdout, &tq, &tk, &tv, &tout, &tlse, &tdq, &tdk, &tdv, &o, NULL,
                      0, NULL, &ev);
        break;
    case CASE_QKVPACKED:
        st = facl_bwd_qkvpacked(ctx, queue, &tdout, &tqkv, &tout, &tlse, &tdqkv, &o, NULL, 0,
                                NULL, &ev);
        break;
    case CASE_KVPACKED:
        st = facl_bwd_kvpacked(ctx, queue, &tdout, &tq, &tkv, &tout, &tlse, &tdq, &tdkv, &o, NULL,
                               0, NULL, &ev);
        break;
    case CASE_VARLEN:
        st = facl_varlen_bwd(ctx, queue, &tdout, &tq, &tk, &tv, &tcuq, &tcuk, SQ, SK, &tout, &tlse,
                             &tdq, &tdk, &tdv, &o, NULL, 0, NULL, &ev);
        break;
    case CASE_VARLEN_QKVPACKED:
        st = facl_varlen_bwd_qkvpacked(ctx, queue, &tdout, &tqkv, &tcuq, SQ, &tout, &tlse, &tdqkv,
                                       &o, NULL, 0, NULL, &ev);
        break;
    default:
        st = facl_varlen_bwd_kvpacked(ctx, queue, &tdout, &tq, &tkv, &tcuq, &tcuk, SQ, SK, &tout,
                                      &tlse, &tdq, &tdkv, &o, NULL, 0, NULL, &ev);
        break;
    }
    if (st == FACL_SUCCESS) {
        e = ev ? clWaitForEvents(1, &ev) : CL_SUCCESS;
        if (e == CL_SUCCESS) e = clFinish(queue);
    }
    out->ms = (tool_now_seconds() - t0) * 1e3;
    if (ev) clReleaseEvent(ev);
    if (st != FACL_SUCCESS)
        return fail_with(out, &run, "%s: %s: %s", case_layout_name(c->layout),
                         facl_status_string(st), facl_last_error());
    if (e != CL_SUCCESS) return fail_with(out, &run, "clFinish: OpenCL error %d", (int)e);

    /* ---- read back the gradients */
    run.got_dq = zalloc(nq, sizeof(float));
    run.got_dk = zalloc(nk, sizeof(float));
    run.got_dv = zalloc(nk, sizeof(float));
    if (qkvp) {
        e = clEnqueueReadBuffer(queue, gpk, CL_TRUE, 0, total_q * 3 * Hq * D * es, run.raw, 0,
                                NULL, NULL);
        unpack(dt, run.raw, run.got_dq, total_q, 3, 0, Hq, D);
        unpack(dt, run.raw, run.got_dk, total_q, 3, 1, Hq, D);
        unpack(dt, run.raw, run.got_dv, total_q, 3, 2, Hq, D);
    } else {
        e = clEnqueueReadBuffer(queue, gq, CL_TRUE, 0, nq * es, run.raw, 0, NULL, NULL);
        unpack(dt, run.raw, run.got_dq, total_q, 1, 0, Hq, D);
        if (e == CL_SUCCESS && kvp) {
            e = clEnqueueReadBuffer(queue, gpk, CL_TRUE, 0, 2 * nk * es, run.raw, 0, NULL, NULL);
            unpack(dt, run.raw, run.got_dk, total_k, 2, 0, Hk, D);
            unpack(dt, run.raw, run.got_dv, total_k, 2, 1, Hk, D);
        } else if (e == CL_SUCCESS) {
            e = clEnqueueReadBuffer(queue, gk, CL_TRUE, 0, nk * es, run.raw, 0, NULL, NULL);
            unpack(dt, run.raw, run.got_dk, total_k, 1, 0, Hk, D);
            if (e == CL_SUCCESS)
                e = clEnqueueReadBuffer(queue, gv, CL_TRUE, 0, nk * es, run.raw, 0, NULL, NULL);
            unpack(dt, run.raw, run.got_dv, total_k, 1, 0, Hk, D);
        }
    }
    if (e != CL_SUCCESS) return fail_with(out, &run, "read back: OpenCL error %d", (int)e);

    /* ---- SPEC.md's rule against the float64 analytic gradients */
    run.ref_dq = zalloc(nq, sizeof(double));
    run.ref_dk = zalloc(nk, sizeof(double));
    run.ref_dv = zalloc(nk, sizeof(double));
    ref_attention_bwd_f64(&rp, run.q, run.k, run.v, run.dout, run.ref_dq, run.ref_dk, run.ref_dv);
    const int lowp = dt != FACL_DTYPE_F32; /* the fp32 rule does not use it */
    if (lowp) {
        run.low_dq = zalloc(nq, sizeof(float));
        run.low_dk = zalloc(nk, sizeof(float));
        run.low_dv = zalloc(nk, sizeof(float));
        ref_attention_bwd_lowp(&rp, dt, run.q, run.k, run.v, run.out, run.lse, run.dout,
                               run.low_dq, run.low_dk, run.low_dv);
    }
    const cmp_result r[3] = {cmp_check(dt, run.got_dq, run.ref_dq, run.low_dq, nq),
                             cmp_check(dt, run.got_dk, run.ref_dk, run.low_dk, nk),
                             cmp_check(dt, run.got_dv, run.ref_dv, run.low_dv, nk)};
    const char *names[3] = {"dq", "dk", "dv"};
    double worst = -1.0;
    out->pass = 1;
    for (int i = 0; i < 3; ++i) {
        consider(out, &worst, names[i], &r[i], dt);
        out->pass = out->pass && r[i].pass;
    }
    if (out->pass) {
        snprintf(out->detail, sizeof out->detail, "ok (%zu dq, %zu dk and %zu dv elements)", nq, nk,
                 nk);
    } else {
        for (int i = 0; i < 3; ++i) {
            if (r[i].pass) continue;
            char line[128];
            cmp_format(&r[i], line, sizeof line);
            tool_appendf(out->detail, sizeof out->detail, "%s%s wrong: %s", out->detail[0] ? "; " : "",
                    names[i], line);
        }
    }
    run_free(&run);
    return out->pass;
}

/* ------------------------------------------------------------------ speed */

typedef struct bwd_speed_setup {
    facl_context *ctx;
    facl_dtype dt;
    int b, s, h, d;
    cl_mem q, k, v, out, dout, lse, dq, dk, dv, ws;
    uint64_t ws_bytes;
} bwd_speed_setup;

static int enqueue_bwd(void *arg, cl_command_queue queue, cl_event *last, char *err,
                       size_t err_size)
{
    const bwd_speed_setup *p = arg;
    const int64_t x4[4] = {p->b, p->s, p->h, p->d}, l3[3] = {p->b, p->h, p->s};
    const int64_t w1[1] = {(int64_t)(p->ws_bytes / 4)};
    facl_tensor q = facl_tensor_contiguous(p->q, p->dt, 4, x4);
    facl_tensor k = facl_tensor_contiguous(p->k, p->dt, 4, x4);
    facl_tensor v = facl_tensor_contiguous(p->v, p->dt, 4, x4);
    facl_tensor out = facl_tensor_contiguous(p->out, p->dt, 4, x4);
    facl_tensor dout = facl_tensor_contiguous(p->dout, p->dt, 4, x4);
    facl_tensor dq = facl_tensor_contiguous(p->dq, p->dt, 4, x4);
    facl_tensor dk = facl_tensor_contiguous(p->dk, p->dt, 4, x4);
    facl_tensor dv = facl_tensor_contiguous(p->dv, p->dt, 4, x4);
    facl_tensor lse = facl_tensor_contiguous(p->lse, FACL_DTYPE_F32, 3, l3);
    facl_tensor ws = facl_tensor_contiguous(p->ws, FACL_DTYPE_F32, 1, w1);
    facl_attn_options o = facl_attn_options_default();
    facl_status st = facl_bwd(p->ctx, queue, &dout, &q, &k, &v, &out, &lse, &dq, &dk, &dv, &o,
                              p->ws ? &ws : NULL, 0, NULL, last);
    if (st != FACL_SUCCESS) {
        snprintf(err, err_size, "%s: %s", facl_status_string(st), facl_last_error());
        return -1;
    }
    return 0;
}

void selftest_speed_bwd(facl_context *ctx, int quick, selftest_speed_result *out)
{
    memset(out, 0, sizeof *out);
    out->family = "bwd";
    facl_device_info info = FACL_DEVICE_INFO_INIT;
    facl_context_device_info(ctx, &info);
    bwd_speed_setup p;
    memset(&p, 0, sizeof p);
    p.ctx = ctx;
    p.dt = FACL_DTYPE_F16;
    /* the dense forward's speed size (selftest_speed.c) */
    int gpu = (info.device_type & CL_DEVICE_TYPE_GPU) != 0;
    p.b = gpu ? 4 : quick ? 1 : 2;
    p.s = gpu ? (quick ? 1024 : 2048) : (quick ? 256 : 512);
    p.h = gpu ? 16 : quick ? 4 : 8;
    p.d = gpu ? 128 : 64;
    snprintf(out->name, sizeof out->name, "facl_bwd %s b=%d s=%d h=%d d=%d (2.5x fwd FLOPs)",
             tool_dtype_name(p.dt), p.b, p.s, p.h, p.d);

    cl_context cl = facl_context_cl_context(ctx);
    cl_command_queue queue = facl_context_queue(ctx);
    const size_t n = (size_t)p.b * p.s * p.h * p.d, rows = (size_t)p.b * p.s * p.h;
    cl_int e = CL_SUCCESS;
    p.q = tool_random_buffer(cl, queue, p.dt, n, 31, &e);
    if (e == CL_SUCCESS) p.k = tool_random_buffer(cl, queue, p.dt, n, 32, &e);
    if (e == CL_SUCCESS) p.v = tool_random_buffer(cl, queue, p.dt, n, 33, &e);
    if (e == CL_SUCCESS) p.dout = tool_random_buffer(cl, queue, p.dt, n, 34, &e);
    if (e == CL_SUCCESS) p.out = tool_zero_buffer(cl, queue, p.dt, n, &e);
    if (e == CL_SUCCESS) p.lse = tool_zero_buffer(cl, queue, FACL_DTYPE_F32, rows, &e);
    if (e == CL_SUCCESS) p.dq = tool_zero_buffer(cl, queue, p.dt, n, &e);
    if (e == CL_SUCCESS) p.dk = tool_zero_buffer(cl, queue, p.dt, n, &e);
    if (e == CL_SUCCESS) p.dv = tool_zero_buffer(cl, queue, p.dt, n, &e);
    if (e != CL_SUCCESS) {
        snprintf(out->note, sizeof out->note, "buffers: %s", tool_cl_error_name(e));
    } else if (facl_bwd_workspace_size(ctx, (int64_t)p.b * p.s, p.h, p.d, 0, &p.ws_bytes) != FACL_SUCCESS) {
        snprintf(out->note, sizeof out->note, "facl_bwd_workspace_size: %s", facl_last_error());
    } else {
        if (p.ws_bytes >= 4) p.ws = tool_zero_buffer(cl, queue, FACL_DTYPE_F32, p.ws_bytes / 4, &e);
        /* the forward's out and lse, so that the backward sees real probabilities */
        const int64_t x4[4] = {p.b, p.s, p.h, p.d}, l3[3] = {p.b, p.h, p.s};
        facl_tensor q = facl_tensor_contiguous(p.q, p.dt, 4, x4);
        facl_tensor k = facl_tensor_contiguous(p.k, p.dt, 4, x4);
        facl_tensor v = facl_tensor_contiguous(p.v, p.dt, 4, x4);
        facl_tensor o4 = facl_tensor_contiguous(p.out, p.dt, 4, x4);
        facl_tensor lse = facl_tensor_contiguous(p.lse, FACL_DTYPE_F32, 3, l3);
        facl_attn_options o = facl_attn_options_default();
        facl_status st = e == CL_SUCCESS ? facl_fwd(ctx, queue, &q, &k, &v, &o4, &lse, &o, 0, NULL, NULL)
                                         : FACL_SUCCESS;
        bench_timer timer;
        if (e != CL_SUCCESS) {
            snprintf(out->note, sizeof out->note, "workspace: %s", tool_cl_error_name(e));
        } else if (st != FACL_SUCCESS) {
            snprintf(out->note, sizeof out->note, "the forward: %s: %s", facl_status_string(st),
                     facl_last_error());
        } else if (bench_timer_init(&timer, cl, facl_context_device(ctx), queue, out->note,
                                    sizeof out->note) == 0) {
            bench_reps policy = {0, quick ? 0.2 : 0.5, 3, 20};
            bench_timing t;
            if (bench_time(&timer, enqueue_bwd, &p, &policy, &t, out->note, sizeof out->note) == 0) {
                double flops = 2.5 * bench_attention_flops(p.b, p.s, p.s, p.h, p.d, 0);
                out->ok = 1;
                out->median_ms = t.median_ms;
                out->reps = t.reps;
                out->tflops = t.median_ms > 0 ? flops / (t.median_ms * 1e-3) / 1e12 : 0.0;
            }
            bench_timer_free(&timer);
        }
    }
    cl_mem all[] = {p.q, p.k, p.v, p.out, p.dout, p.lse, p.dq, p.dk, p.dv, p.ws};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (all[i]) clReleaseMemObject(all[i]);
}
