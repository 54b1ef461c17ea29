/* Every refusal of the backward calls: its status, a message naming the argument, and
 * nothing written (the gradients and the workspace live in one buffer filled with a
 * sentinel, checked after every refused call). Table-driven: each case starts from a
 * valid call of one family and breaks one thing. The forward's own checks of q, k, v,
 * out, lse and the options are shared (validate_fwd.c) and tested by test_validation;
 * a few of them are repeated here to show the backward goes through them. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "facl.h"

enum { B = 2, SQ = 5, SK = 7, HQ = 4, HKV = 2, D = 8 };
#define SENTINEL 0x5Au
#define GRAD_FLOATS 8192

typedef enum { DENSE, QKVPACKED, KVPACKED, VARLEN, VARLEN_QKV, VARLEN_KV } family;

typedef struct call {
    family fam;
    facl_context *ctx;
    cl_command_queue queue;
    facl_tensor dout, q, k, v, out, lse, dq, dk, dv, qkv, dqkv, kv, dkv, cu_q, cu_k, ws;
    const facl_tensor *pdout, *plse, *pdq, *pdk, *pdv, *pdqkv, *pdkv, *pws;
    facl_attn_options opts;
    int64_t max_q, max_k;
} call;

static struct {
    facl_context *ctx;
    cl_mem in, grads, cu, small;
    cl_context other_cl;
    cl_command_queue other_queue;
} fx;

static facl_tensor view(cl_mem buf, facl_dtype dt, int ndim, const int64_t *shape, uint64_t offset)
{
    facl_tensor t = facl_tensor_contiguous(buf, dt, ndim, shape);
    t.offset = offset;
    return t;
}

static int setup(void **state)
{
    (void)state;
    if (facl_context_create(NULL, &fx.ctx) != FACL_SUCCESS) {
        print_error("facl_context_create: %s\n", facl_last_error());
        return -1;
    }
    cl_context c = facl_context_cl_context(fx.ctx);
    cl_int err;
    float *zeros = calloc(16384, sizeof(float));
    fx.in = clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, 16384 * sizeof(float), zeros, &err);
    assert_int_equal(err, CL_SUCCESS);
    free(zeros);
    fx.grads = clCreateBuffer(c, CL_MEM_READ_WRITE, GRAD_FLOATS * sizeof(float), NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    /* cu_seqlens_q {0, 2, 5}, cu_seqlens_k {0, 3, 7}, then a decreasing {0, 3, 1} */
    const int32_t cu[9] = {0, 2, 5, 0, 3, 7, 0, 3, 1};
    fx.cu = clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof cu, (void *)cu, &err);
    assert_int_equal(err, CL_SUCCESS);
    fx.small = clCreateBuffer(c, CL_MEM_READ_WRITE, 16, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    cl_device_id dev = facl_context_device(fx.ctx);
    fx.other_cl = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    fx.other_queue = clCreateCommandQueue(fx.other_cl, dev, 0, &err);
    assert_int_equal(err, CL_SUCCESS);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    clReleaseMemObject(fx.in);
    clReleaseMemObject(fx.grads);
    clReleaseMemObject(fx.cu);
    clReleaseMemObject(fx.small);
    clReleaseCommandQueue(fx.other_queue);
    clReleaseContext(fx.other_cl);
    facl_context_free(fx.ctx);
    return 0;
}

static void fill_grads(void)
{
    const unsigned char pattern = SENTINEL;
    cl_int err = clEnqueueFillBuffer(facl_context_queue(fx.ctx), fx.grads, &pattern, 1, 0,
                                     GRAD_FLOATS * sizeof(float), 0, NULL, NULL);
    assert_int_equal(err, CL_SUCCESS);
    assert_int_equal(clFinish(facl_context_queue(fx.ctx)), CL_SUCCESS);
}

/* 1 iff the gradient buffer still holds only the sentinel. */
static int grads_untouched(void)
{
    unsigned char *bytes = malloc(GRAD_FLOATS * sizeof(float));
    assert_int_equal(clEnqueueReadBuffer(facl_context_queue(fx.ctx), fx.grads, CL_TRUE, 0,
                                         GRAD_FLOATS * sizeof(float), bytes, 0, NULL, NULL),
                     CL_SUCCESS);
    int same = 1;
    for (size_t i = 0; i < GRAD_FLOATS * sizeof(float) && same; i++) same = bytes[i] == SENTINEL;
    free(bytes);
    return same;
}

/* A valid call of the family: inputs in fx.in, gradients and workspace in fx.grads. */
static void valid(family fam, call *out)
{
    call c;
    memset(&c, 0, sizeof c);
    c.fam = fam;
    c.ctx = fx.ctx;
    c.opts = facl_attn_options_default();
    const int varlen = fam >= VARLEN;
    const int64_t q4[4] = {B, SQ, HQ, D}, k4[4] = {B, SK, HKV, D};
    const int64_t q3[3] = {SQ, HQ, D}, k3[3] = {SK, HKV, D};
    const int64_t *qs = varlen ? q3 : q4, *ks = varlen ? k3 : k4;
    const int nd = varlen ? 3 : 4;
    c.q = view(fx.in, FACL_DTYPE_F32, nd, qs, 0);
    c.k = view(fx.in, FACL_DTYPE_F32, nd, ks, 1000);
    c.v = view(fx.in, FACL_DTYPE_F32, nd, ks, 2000);
    c.out = view(fx.in, FACL_DTYPE_F32, nd, qs, 3000);
    c.dout = view(fx.in, FACL_DTYPE_F32, nd, qs, 4000);
    const int64_t lse_d[3] = {B, HQ, SQ}, lse_v[2] = {HQ, SQ};
    c.lse = varlen ? view(fx.in, FACL_DTYPE_F32, 2, lse_v, 5000) : view(fx.in, FACL_DTYPE_F32, 3, lse_d, 5000);
    /* packed: qkv (B, SQ, 3, HQ, D) with k, v of HQ heads; kv (B, SK, 2, HKV, D) */
    const int64_t qkv5[5] = {B, SQ, 3, HQ, D}, kv5[5] = {B, SK, 2, HKV, D};
    const int64_t qkv4[4] = {SQ, 3, HQ, D}, kv4[4] = {SK, 2, HKV, D};
    c.qkv = varlen ? view(fx.in, FACL_DTYPE_F32, 4, qkv4, 6000) : view(fx.in, FACL_DTYPE_F32, 5, qkv5, 6000);
    c.kv = varlen ? view(fx.in, FACL_DTYPE_F32, 4, kv4, 8000) : view(fx.in, FACL_DTYPE_F32, 5, kv5, 8000);
    c.dq = view(fx.grads, FACL_DTYPE_F32, nd, qs, 0);
    c.dk = view(fx.grads, FACL_DTYPE_F32, nd, ks, 1000);
    c.dv = view(fx.grads, FACL_DTYPE_F32, nd, ks, 2000);
    c.dqkv = varlen ? view(fx.grads, FACL_DTYPE_F32, 4, qkv4, 3000) : view(fx.grads, FACL_DTYPE_F32, 5, qkv5, 3000);
    c.dkv = varlen ? view(fx.grads, FACL_DTYPE_F32, 4, kv4, 5000) : view(fx.grads, FACL_DTYPE_F32, 5, kv5, 5000);
    const int64_t ws_shape[1] = {varlen ? SQ * HQ : B * SQ * HQ}; /* exactly what is needed */
    c.ws = view(fx.grads, FACL_DTYPE_F32, 1, ws_shape, 6000);
    const int64_t cu_shape[1] = {B + 1};
    c.cu_q = view(fx.cu, FACL_DTYPE_I32, 1, cu_shape, 0);
    c.cu_k = view(fx.cu, FACL_DTYPE_I32, 1, cu_shape, fam == VARLEN_QKV ? 0 : 3);
    c.max_q = 3;
    c.max_k = fam == VARLEN_QKV ? 3 : 4;
    *out = c;
    out->pdout = &out->dout, out->plse = &out->lse, out->pdq = &out->dq, out->pdk = &out->dk;
    out->pdv = &out->dv, out->pdqkv = &out->dqkv, out->pdkv = &out->dkv, out->pws = &out->ws;
}

static void fix_pointers(call *c, const call *from)
{
    /* pointers that pointed into `from` point into `c` (cases copy a call and edit it) */
#define FIX(p, f) if (c->p == &from->f) c->p = &c->f
    FIX(pdout, dout); FIX(plse, lse); FIX(pdq, dq); FIX(pdk, dk); FIX(pdv, dv);
    FIX(pdqkv, dqkv); FIX(pdkv, dkv); FIX(pws, ws);
#undef FIX
}

static facl_status run(const call *c)
{
    const facl_attn_options *o = &c->opts;
    switch (c->fam) {
    case DENSE:
        return facl_bwd(c->ctx, c->queue, c->pdout, &c->q, &c->k, &c->v, &c->out, c->plse, c->pdq,
                        c->pdk, c->pdv, o, c->pws, 0, NULL, NULL);
    case QKVPACKED:
        return facl_bwd_qkvpacked(c->ctx, c->queue, c->pdout, &c->qkv, &c->out, c->plse, c->pdqkv, o,
                                  c->pws, 0, NULL, NULL);
    case KVPACKED:
        return facl_bwd_kvpacked(c->ctx, c->queue, c->pdout, &c->q, &c->kv, &c->out, c->plse, c->pdq,
                                 c->pdkv, o, c->pws, 0, NULL, NULL);
    case VARLEN:
        return facl_varlen_bwd(c->ctx, c->queue, c->pdout, &c->q, &c->k, &c->v, &c->cu_q, &c->cu_k,
                               c->max_q, c->max_k, &c->out, c->plse, c->pdq, c->pdk, c->pdv, o,
                               c->pws, 0, NULL, NULL);
    case VARLEN_QKV:
        return facl_varlen_bwd_qkvpacked(c->ctx, c->queue, c->pdout, &c->qkv, &c->cu_q, c->max_q,
                                         &c->out, c->plse, c->pdqkv, o, c->pws, 0, NULL, NULL);
    default:
        return facl_varlen_bwd_kvpacked(c->ctx, c->queue, c->pdout, &c->q, &c->kv, &c->cu_q,
                                        &c->cu_k, c->max_q, c->max_k, &c->out, c->plse, c->pdq,
                                        c->pdkv, o, c->pws, 0, NULL, NULL);
    }
}

/* The call must fail with `status`, a message containing `needle`, and write nothing. */
static void expect_refusal(const call *c, facl_status status, const char *needle, const char *what)
{
    fill_grads();
    const facl_status st = run(c);
    assert_int_equal(clFinish(facl_context_queue(fx.ctx)), CL_SUCCESS);
    if (st != status)
        fail_msg("%s: got %s (%s), expected %s", what, facl_status_string(st), facl_last_error(),
                 facl_status_string(status));
    if (!strstr(facl_last_error(), needle))
        fail_msg("%s: message '%s' does not name '%s'", what, facl_last_error(), needle);
    if (!grads_untouched()) fail_msg("%s: refused, but something was written", what);
}

/* The valid calls succeed and write the gradients. */
static void test_valid_calls(void **state)
{
    (void)state;
    for (family f = DENSE; f <= VARLEN_KV; f++) {
        call c;
        valid(f, &c);
        fill_grads();
        const facl_status st = run(&c);
        if (st != FACL_SUCCESS) fail_msg("family %d: %s", (int)f, facl_last_error());
        assert_int_equal(clFinish(facl_context_queue(fx.ctx)), CL_SUCCESS);
        assert_false(grads_untouched());
        c.pws = NULL; /* the call allocates its own */
        assert_int_equal(run(&c), FACL_SUCCESS);
        assert_int_equal(clFinish(facl_context_queue(fx.ctx)), CL_SUCCESS);
    }
}

typedef void (*breaker)(call *c);
typedef struct refusal {
    const char *what;
    family fam;
    breaker brk;
    facl_status status;
    const char *needle;
} refusal;

static void no_ctx(call *c) { c->ctx = NULL; }
static void no_lse(call *c) { c->plse = NULL; }
static void no_dout(call *c) { c->pdout = NULL; }
static void no_dq(call *c) { c->pdq = NULL; }
static void no_dk(call *c) { c->pdk = NULL; }
static void no_dv(call *c) { c->pdv = NULL; }
static void dq_null_buffer(call *c) { c->dq.buffer = NULL; }
static void dout_dtype(call *c) { c->dout.dtype = FACL_DTYPE_F16; }
static void dq_dtype(call *c) { c->dq.dtype = FACL_DTYPE_BF16; }
static void dk_i32(call *c) { c->dk.dtype = FACL_DTYPE_I32; }
static void dq_shape(call *c) { c->dq.shape[1] = SQ - 1; }
static void dk_heads(call *c) { c->dk.shape[c->dk.ndim - 2] = HQ; }
static void dv_rows(call *c) { c->dv.shape[c->dv.ndim - 3] = SK + 1; }
static void dout_headdim(call *c) { c->dout.shape[c->dout.ndim - 1] = D + 1; }
static void dq_rank(call *c) { c->dq.ndim = 3; }
static void dq_stride(call *c) { c->dq.stride[c->dq.ndim - 1] = 2; }
static void dv_negative_stride(call *c) { c->dv.stride[0] = -1; }
static void dk_small(call *c) { c->dk.buffer = fx.small; c->dk.offset = 0; }
static void ws_dtype(call *c) { c->ws.dtype = FACL_DTYPE_F16; }
static void ws_rank(call *c) { c->ws.ndim = 2, c->ws.shape[1] = 1, c->ws.stride[1] = 1, c->ws.stride[0] = 1; }
static void ws_short(call *c) { c->ws.shape[0] -= 1; }
static void ws_small_buffer(call *c) { c->ws.buffer = fx.small; c->ws.offset = 0; }
static facl_tensor g_probs;
static void with_probs(call *c)
{
    const int64_t shape[4] = {B, HQ, SQ, SK};
    g_probs = view(fx.in, FACL_DTYPE_F32, 4, shape, 9000);
    c->opts.attn_probs = &g_probs;
}
static facl_tensor g_table;
static void with_block_table(call *c)
{
    const int64_t shape[2] = {B, 1};
    g_table = view(fx.cu, FACL_DTYPE_I32, 2, shape, 0);
    c->opts.block_table = &g_table;
}
static void bad_scale(call *c) { c->opts.softmax_scale = NAN; }
static void bad_dropout(call *c) { c->opts.dropout_p = 1.0f; }
static void bad_softcap(call *c) { c->opts.softcap = -1.0f; }
static void bad_causal_window(call *c) { c->opts.causal = 1, c->opts.window_right = 2; }
static void bad_struct_size(call *c) { c->opts.struct_size = 6; }
static void bad_deterministic(call *c) { c->opts.deterministic = 2; }
static void negative_deterministic(call *c) { c->opts.deterministic = -1; }
static facl_tensor g_alibi;
static void bad_alibi(call *c)
{
    const int64_t shape[1] = {HQ + 1};
    g_alibi = view(fx.in, FACL_DTYPE_F32, 1, shape, 9500);
    c->opts.alibi_slopes = &g_alibi;
}
static void lse_f16(call *c) { c->lse.dtype = FACL_DTYPE_F16; }
static void lse_shape(call *c) { c->lse.shape[c->lse.ndim - 1] += 1; }
static void out_shape(call *c) { c->out.shape[c->out.ndim - 2] = 1; }
static void k_heads(call *c) { c->k.shape[c->k.ndim - 2] = 3, c->v.shape[c->v.ndim - 2] = 3; }
static void q_dtype_vs_dq(call *c)
{
    /* q, k, v, out in fp16 (the views shrink, still valid), the gradients fp32 */
    c->q.dtype = c->k.dtype = c->v.dtype = c->out.dtype = c->dout.dtype = FACL_DTYPE_F16;
}
static void other_queue(call *c) { c->queue = fx.other_queue; }
static void no_dqkv(call *c) { c->pdqkv = NULL; }
static void dqkv_members(call *c) { c->dqkv.shape[c->dqkv.ndim - 3] = 2; }
static void dqkv_dtype(call *c) { c->dqkv.dtype = FACL_DTYPE_F16; }
static void dqkv_rows(call *c) { c->dqkv.shape[c->dqkv.ndim - 4] -= 1; }
static void no_dkv(call *c) { c->pdkv = NULL; }
static void dkv_members(call *c) { c->dkv.shape[c->dkv.ndim - 3] = 3; }
static void dkv_heads(call *c) { c->dkv.shape[c->dkv.ndim - 2] = 1; }
static void cu_decreasing(call *c) { c->cu_k.offset = 6; }
static void max_q_small(call *c) { c->max_q = 2; }
static void max_negative(call *c) { c->max_k = -1; }
static void cu_dtype(call *c) { c->cu_q.dtype = FACL_DTYPE_F32; }

static const refusal k_refusals[] = {
    {"ctx NULL", DENSE, no_ctx, FACL_ERROR_NULL_ARGUMENT, "ctx"},
    {"ctx NULL (qkvpacked)", QKVPACKED, no_ctx, FACL_ERROR_NULL_ARGUMENT, "ctx"},
    {"ctx NULL (varlen)", VARLEN, no_ctx, FACL_ERROR_NULL_ARGUMENT, "ctx"},
    {"lse NULL", DENSE, no_lse, FACL_ERROR_NULL_ARGUMENT, "lse"},
    {"lse NULL (varlen-kvpacked)", VARLEN_KV, no_lse, FACL_ERROR_NULL_ARGUMENT, "lse"},
    {"dout NULL", DENSE, no_dout, FACL_ERROR_NULL_ARGUMENT, "dout"},
    {"dq NULL", DENSE, no_dq, FACL_ERROR_NULL_ARGUMENT, "dq"},
    {"dk NULL", DENSE, no_dk, FACL_ERROR_NULL_ARGUMENT, "dk"},
    {"dv NULL", VARLEN, no_dv, FACL_ERROR_NULL_ARGUMENT, "dv"},
    {"dq NULL buffer", DENSE, dq_null_buffer, FACL_ERROR_NULL_ARGUMENT, "dq"},
    {"dout dtype", DENSE, dout_dtype, FACL_ERROR_INVALID_DTYPE, "dout"},
    {"dq dtype", VARLEN, dq_dtype, FACL_ERROR_INVALID_DTYPE, "dq"},
    {"dk int32", DENSE, dk_i32, FACL_ERROR_INVALID_DTYPE, "dk"},
    {"dq seqlen", DENSE, dq_shape, FACL_ERROR_INVALID_SHAPE, "dq"},
    {"dk heads", DENSE, dk_heads, FACL_ERROR_INVALID_SHAPE, "dk"},
    {"dv rows", VARLEN, dv_rows, FACL_ERROR_INVALID_SHAPE, "dv"},
    {"dout head_dim", DENSE, dout_headdim, FACL_ERROR_INVALID_SHAPE, "dout"},
    {"dq rank", DENSE, dq_rank, FACL_ERROR_INVALID_SHAPE, "dq"},
    {"dq last stride", DENSE, dq_stride, FACL_ERROR_INVALID_STRIDE, "dq"},
    {"dv negative stride", DENSE, dv_negative_stride, FACL_ERROR_INVALID_STRIDE, "dv"},
    {"dk buffer too small", DENSE, dk_small, FACL_ERROR_BUFFER_TOO_SMALL, "dk"},
    {"workspace dtype", DENSE, ws_dtype, FACL_ERROR_INVALID_DTYPE, "workspace"},
    {"workspace rank", DENSE, ws_rank, FACL_ERROR_INVALID_SHAPE, "workspace"},
    {"workspace too few floats", DENSE, ws_short, FACL_ERROR_BUFFER_TOO_SMALL, "workspace"},
    {"workspace too few floats (varlen)", VARLEN, ws_short, FACL_ERROR_BUFFER_TOO_SMALL, "workspace"},
    {"workspace buffer too small", DENSE, ws_small_buffer, FACL_ERROR_BUFFER_TOO_SMALL, "workspace"},
    {"attn_probs", DENSE, with_probs, FACL_ERROR_INVALID_VALUE, "opts->attn_probs"},
    {"block_table", VARLEN, with_block_table, FACL_ERROR_INVALID_VALUE, "opts->block_table"},
    {"block_table (dense)", DENSE, with_block_table, FACL_ERROR_INVALID_VALUE, "opts->block_table"},
    {"softmax_scale NaN", DENSE, bad_scale, FACL_ERROR_INVALID_VALUE, "opts->softmax_scale"},
    {"dropout_p 1", KVPACKED, bad_dropout, FACL_ERROR_INVALID_VALUE, "opts->dropout_p"},
    {"softcap negative", VARLEN, bad_softcap, FACL_ERROR_INVALID_VALUE, "opts->softcap"},
    {"causal with window_right", DENSE, bad_causal_window, FACL_ERROR_INVALID_VALUE, "opts->window_right"},
    {"opts struct_size", DENSE, bad_struct_size, FACL_ERROR_INVALID_VALUE, "opts->struct_size"},
    {"deterministic 2", DENSE, bad_deterministic, FACL_ERROR_INVALID_VALUE, "opts->deterministic"},
    {"deterministic -1 (varlen)", VARLEN, negative_deterministic, FACL_ERROR_INVALID_VALUE,
     "opts->deterministic"},
    {"alibi slopes shape", DENSE, bad_alibi, FACL_ERROR_INVALID_SHAPE, "opts->alibi_slopes"},
    {"lse dtype", DENSE, lse_f16, FACL_ERROR_INVALID_DTYPE, "lse"},
    {"lse shape", VARLEN, lse_shape, FACL_ERROR_INVALID_SHAPE, "lse"},
    {"out shape", DENSE, out_shape, FACL_ERROR_INVALID_SHAPE, "out"},
    {"heads_q not a multiple of heads_kv", DENSE, k_heads, FACL_ERROR_INVALID_SHAPE, "dk"},
    {"gradients of another dtype than q", DENSE, q_dtype_vs_dq, FACL_ERROR_INVALID_DTYPE, "dq"},
    {"queue of another context", DENSE, other_queue, FACL_ERROR_INVALID_CONTEXT, "queue"},
    {"queue of another context (varlen)", VARLEN, other_queue, FACL_ERROR_INVALID_CONTEXT, "queue"},
    {"dqkv NULL", QKVPACKED, no_dqkv, FACL_ERROR_NULL_ARGUMENT, "dqkv"},
    {"dqkv packing", QKVPACKED, dqkv_members, FACL_ERROR_INVALID_SHAPE, "dqkv"},
    {"dqkv dtype", QKVPACKED, dqkv_dtype, FACL_ERROR_INVALID_DTYPE, "dqkv"},
    {"dqkv rows", QKVPACKED, dqkv_rows, FACL_ERROR_INVALID_SHAPE, "dqkv"},
    {"dqkv NULL (varlen)", VARLEN_QKV, no_dqkv, FACL_ERROR_NULL_ARGUMENT, "dqkv"},
    {"dqkv packing (varlen)", VARLEN_QKV, dqkv_members, FACL_ERROR_INVALID_SHAPE, "dqkv"},
    {"dkv NULL", KVPACKED, no_dkv, FACL_ERROR_NULL_ARGUMENT, "dkv"},
    {"dkv packing", KVPACKED, dkv_members, FACL_ERROR_INVALID_SHAPE, "dkv"},
    {"dkv heads", KVPACKED, dkv_heads, FACL_ERROR_INVALID_SHAPE, "dkv"},
    {"dkv NULL (varlen)", VARLEN_KV, no_dkv, FACL_ERROR_NULL_ARGUMENT, "dkv"},
    {"dkv heads (varlen)", VARLEN_KV, dkv_heads, FACL_ERROR_INVALID_SHAPE, "dkv"},
    {"cu_seqlens_k decreasing", VARLEN, cu_decreasing, FACL_ERROR_INVALID_SEQLENS, "cu_seqlens_k"},
    {"max_seqlen_q too small", VARLEN_KV, max_q_small, FACL_ERROR_INVALID_SEQLENS, "max_seqlen_q"},
    {"max_seqlen_k negative", VARLEN, max_negative, FACL_ERROR_INVALID_SEQLENS, "max_seqlen_k"},
    {"cu_seqlens_q dtype", VARLEN_QKV, cu_dtype, FACL_ERROR_INVALID_DTYPE, "cu_seqlens_q"},
};

static void test_refusals(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof k_refusals / sizeof k_refusals[0]; i++) {
        const refusal *r = &k_refusals[i];
        call base;
        valid(r->fam, &base);
        call c = base;
        fix_pointers(&c, &base);
        r->brk(&c);
        expect_refusal(&c, r->status, r->needle, r->what);
    }
}

/* The heads rule applies to the gradients' owner too: a k of 3 heads is refused by the
 * forward's check (named after q) when dk and dv are shaped like it. */
static void test_heads_rule(void **state)
{
    (void)state;
    call base;
    valid(DENSE, &base);
    call c = base;
    fix_pointers(&c, &base);
    k_heads(&c);
    c.dk.shape[2] = c.dv.shape[2] = 3;
    expect_refusal(&c, FACL_ERROR_INVALID_HEADS, "heads", "heads_q % heads_kv");
}

static void test_workspace_size(void **state)
{
    (void)state;
    uint64_t bytes = 0;
    for (int32_t det = 0; det < 2; ++det) {
        assert_int_equal(facl_bwd_workspace_size(fx.ctx, B * SQ, HQ, D, det, &bytes), FACL_SUCCESS);
        assert_true(bytes >= (uint64_t)B * SQ * HQ * 4);
        assert_int_equal(bytes % 4, 0);
    }
    assert_int_equal(facl_bwd_workspace_size(fx.ctx, 0, 1, 1, 0, &bytes), FACL_SUCCESS);
    assert_true(bytes >= 4);
    assert_int_equal(facl_bwd_workspace_size(NULL, 1, 1, D, 1, &bytes), FACL_ERROR_NULL_ARGUMENT);
    assert_non_null(strstr(facl_last_error(), "ctx"));
    assert_int_equal(facl_bwd_workspace_size(fx.ctx, 1, 1, D, 1, NULL), FACL_ERROR_NULL_ARGUMENT);
    assert_non_null(strstr(facl_last_error(), "bytes"));
    assert_int_equal(facl_bwd_workspace_size(fx.ctx, -1, 1, D, 1, &bytes), FACL_ERROR_INVALID_VALUE);
    assert_non_null(strstr(facl_last_error(), "rows_q"));
    assert_int_equal(facl_bwd_workspace_size(fx.ctx, 1, 0, D, 1, &bytes), FACL_ERROR_INVALID_VALUE);
    assert_non_null(strstr(facl_last_error(), "heads_q"));
    const int64_t bad_dims[2] = {0, FACL_MAX_HEAD_DIM + 1};
    for (int i = 0; i < 2; ++i) {
        assert_int_equal(facl_bwd_workspace_size(fx.ctx, 1, 1, bad_dims[i], 1, &bytes),
                         FACL_ERROR_INVALID_HEAD_DIM);
        assert_non_null(strstr(facl_last_error(), "head_dim"));
    }
    assert_int_equal(facl_bwd_workspace_size(fx.ctx, 1, 1, D, 2, &bytes), FACL_ERROR_INVALID_VALUE);
    assert_non_null(strstr(facl_last_error(), "deterministic"));
    assert_int_equal(facl_bwd_workspace_size(fx.ctx, INT64_MAX / 2, 1024, D, 1, &bytes),
                     FACL_ERROR_SIZE_OVERFLOW);
    assert_non_null(strstr(facl_last_error(), "rows_q"));
}

/* On a tensor-core path (mma-emulated, forced: no probe) whose context takes the atomic-dq
 * kernels (FACL_BWD_DQ_ATOMIC=1 at its creation; without it both modes need only D) the
 * non-deterministic mode's workspace holds the fp32 dq accumulator too:
 * facl_bwd_workspace_size says so, and a
 * 16-bit call given only the deterministic mode's floats is refused, naming the workspace,
 * with nothing written (checked before any program is built), while an fp32 call (which
 * runs the deterministic portable kernels) needs only those. */
static void test_workspace_atomic_mode(void **state)
{
    (void)state;
    facl_context_config cfg = FACL_CONTEXT_CONFIG_INIT;
    cfg.kernel_path = "mma-emulated";
    facl_context *ctx = NULL;
    assert_int_equal(facl_context_wrap_with_config(facl_context_cl_context(fx.ctx),
                                                   facl_context_device(fx.ctx), &cfg, &ctx),
                     FACL_SUCCESS);
    uint64_t atomic = 0, det = 0;
    assert_int_equal(facl_bwd_workspace_size(ctx, B * SQ, HQ, D, 0, &atomic), FACL_SUCCESS);
    assert_int_equal(facl_bwd_workspace_size(ctx, B * SQ, HQ, D, 1, &det), FACL_SUCCESS);
    assert_int_equal(atomic, det); /* not opted in: the deterministic kernels in both modes */
    facl_context_free(ctx);
    setenv("FACL_BWD_DQ_ATOMIC", "1", 1);
    const facl_status made = facl_context_wrap_with_config(facl_context_cl_context(fx.ctx),
                                                           facl_context_device(fx.ctx), &cfg, &ctx);
    unsetenv("FACL_BWD_DQ_ATOMIC");
    assert_int_equal(made, FACL_SUCCESS);
    assert_int_equal(facl_bwd_workspace_size(ctx, B * SQ, HQ, D, 0, &atomic), FACL_SUCCESS);
    assert_int_equal(facl_bwd_workspace_size(ctx, B * SQ, HQ, D, 1, &det), FACL_SUCCESS);
    assert_int_equal(det, (uint64_t)B * SQ * HQ * 4);
    /* the accumulator's row rounded up to 16-byte pieces, 3 unused floats, D */
    assert_int_equal(atomic, (uint64_t)B * SQ * HQ * ((D + 3) / 4 * 4 + 4) * 4);
    for (int f16 = 1; f16 >= 0; --f16) {
        call c;
        valid(DENSE, &c);
        c.ctx = ctx;
        const facl_dtype dt = f16 ? FACL_DTYPE_F16 : FACL_DTYPE_F32;
        facl_tensor *all[] = {&c.q, &c.k, &c.v, &c.out, &c.dout, &c.dq, &c.dk, &c.dv};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) all[i]->dtype = dt;
        assert_int_equal(c.ws.shape[0], (int64_t)(det / 4));
        fill_grads();
        const facl_status st = run(&c); /* on ctx's own queue */
        assert_int_equal(clFinish(facl_context_queue(ctx)), CL_SUCCESS);
        if (f16) {
            if (st != FACL_ERROR_BUFFER_TOO_SMALL || !strstr(facl_last_error(), "workspace:") ||
                !strstr(facl_last_error(), "accumulator"))
                fail_msg("f16, atomic mode, deterministic-size workspace: %s (%s)",
                         facl_status_string(st), facl_last_error());
            if (!grads_untouched()) fail_msg("refused, but something was written");
        } else if (st != FACL_SUCCESS) {
            fail_msg("f32, deterministic-size workspace: %s", facl_last_error());
        }
    }
    facl_context_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_calls),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_heads_rule),
        cmocka_unit_test(test_workspace_size),
        cmocka_unit_test(test_workspace_atomic_mode),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
