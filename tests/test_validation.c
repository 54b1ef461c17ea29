/* Every bad argument gets its own status, a message naming it, and writes nothing.
 * Table-driven: each case starts from a valid call and breaks one thing. */
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

typedef struct call {
    facl_context *ctx;
    cl_command_queue queue;
    facl_tensor q, k, v, out, lse, alibi, probs, cu_q, cu_k, qkv, kv;
    facl_attn_options opts;
    int64_t max_q, max_k;
    enum { DENSE, VARLEN, QKVPACKED, KVPACKED } family;
} call;

typedef struct fixture {
    facl_context *ctx;
    cl_mem big;      /* q, k, v, qkv, kv live here */
    cl_mem out_buf;  /* out, lse, probs: checked for untouched bytes */
    cl_mem cu_buf;   /* cu_seqlens_q = {0,2,5}, cu_seqlens_k = {0,3,7} */
    cl_mem small;    /* 16 bytes, for "buffer too small" */
    cl_mem used_buf; /* opts->seqused_k: 8 int32 written per case (set_seqused) */
    cl_context other_cl;
    cl_command_queue other_queue;
    size_t out_bytes;
} fixture;

static fixture fx;

static facl_tensor view(cl_mem buf, facl_dtype dt, int ndim, const int64_t *shape, size_t offset)
{
    facl_tensor t = facl_tensor_contiguous(buf, dt, ndim, shape);
    t.offset = offset;
    return t;
}

static int setup(void **state)
{
    (void)state;
    facl_status st = facl_context_create(NULL, &fx.ctx);
    if (st != FACL_SUCCESS) {
        print_error("facl_context_create: %s\n", facl_last_error());
        return -1;
    }
    cl_context c = facl_context_cl_context(fx.ctx);
    cl_int err;
    fx.big = clCreateBuffer(c, CL_MEM_READ_WRITE, 1 << 20, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    fx.out_bytes = 1 << 16;
    fx.out_buf = clCreateBuffer(c, CL_MEM_READ_WRITE, fx.out_bytes, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    const int32_t cu[6] = {0, 2, 5, 0, 3, 7};
    fx.cu_buf = clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof cu, (void *)cu, &err);
    assert_int_equal(err, CL_SUCCESS);
    fx.small = clCreateBuffer(c, CL_MEM_READ_WRITE, 16, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    fx.used_buf = clCreateBuffer(c, CL_MEM_READ_WRITE, 8 * sizeof(int32_t), NULL, &err);
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
    clReleaseMemObject(fx.big);
    clReleaseMemObject(fx.out_buf);
    clReleaseMemObject(fx.cu_buf);
    clReleaseMemObject(fx.small);
    clReleaseMemObject(fx.used_buf);
    clReleaseCommandQueue(fx.other_queue);
    clReleaseContext(fx.other_cl);
    facl_context_free(fx.ctx);
    return 0;
}

/* A valid call of the given family; every tensor is a view of fx's buffers. */
static call valid_call(int family)
{
    call c;
    memset(&c, 0, sizeof c);
    c.ctx = fx.ctx;
    c.family = family;
    c.opts = facl_attn_options_default();
    const facl_dtype f = FACL_DTYPE_F32;
    const int64_t q_dense[4] = {B, SQ, HQ, D}, k_dense[4] = {B, SK, HKV, D};
    const int64_t q_var[3] = {5, HQ, D}, k_var[3] = {7, HKV, D}, lse_var[2] = {HQ, 5};
    const int64_t lse_dense[3] = {B, HQ, SQ}, cu_shape[1] = {B + 1};
    const int64_t qkv_shape[5] = {B, SQ, 3, HQ, D}, kv_shape[5] = {B, SK, 2, HKV, D};
    const int64_t alibi_shape[1] = {HQ};
    if (family == VARLEN) {
        c.q = view(fx.big, f, 3, q_var, 0);
        c.k = view(fx.big, f, 3, k_var, 4096);
        c.v = view(fx.big, f, 3, k_var, 8192);
        c.out = view(fx.out_buf, f, 3, q_var, 0);
        c.lse = view(fx.out_buf, f, 2, lse_var, 4096);
        c.max_q = 3;
        c.max_k = 4;
        const int64_t probs_shape[4] = {B, HQ, 3, 4};
        c.probs = view(fx.out_buf, f, 4, probs_shape, 8192);
    } else {
        c.q = view(fx.big, f, 4, q_dense, 0);
        c.k = view(fx.big, f, 4, k_dense, 4096);
        c.v = view(fx.big, f, 4, k_dense, 8192);
        c.out = view(fx.out_buf, f, 4, q_dense, 0);
        c.lse = view(fx.out_buf, f, 3, lse_dense, 4096);
        const int64_t probs_shape[4] = {B, HQ, SQ, family == QKVPACKED ? SQ : SK};
        c.probs = view(fx.out_buf, f, 4, probs_shape, 8192);
    }
    c.cu_q = view(fx.cu_buf, FACL_DTYPE_I32, 1, cu_shape, 0);
    c.cu_k = view(fx.cu_buf, FACL_DTYPE_I32, 1, cu_shape, 3);
    c.qkv = view(fx.big, f, 5, qkv_shape, 16384);
    c.kv = view(fx.big, f, 5, kv_shape, 16384);
    c.alibi = view(fx.big, f, 1, alibi_shape, 0);
    return c;
}

static facl_status run(call *c)
{
    switch (c->family) {
    case VARLEN:
        return facl_varlen_fwd(c->ctx, c->queue, &c->q, &c->k, &c->v, &c->cu_q, &c->cu_k, c->max_q,
                               c->max_k, &c->out, &c->lse, &c->opts, 0, NULL, NULL);
    case QKVPACKED:
        return facl_fwd_qkvpacked(c->ctx, c->queue, &c->qkv, &c->out, &c->lse, &c->opts, 0,
                                  NULL, NULL);
    case KVPACKED:
        return facl_fwd_kvpacked(c->ctx, c->queue, &c->q, &c->kv, &c->out, &c->lse, &c->opts,
                                 0, NULL, NULL);
    default:
        return facl_fwd(c->ctx, c->queue, &c->q, &c->k, &c->v, &c->out, &c->lse, &c->opts, 0,
                        NULL, NULL);
    }
}

static void fill_outputs_with_sentinel(void)
{
    unsigned char pattern = SENTINEL;
    cl_command_queue q = facl_context_queue(fx.ctx);
    assert_int_equal(clEnqueueFillBuffer(q, fx.out_buf, &pattern, 1, 0, fx.out_bytes, 0, NULL, NULL),
                     CL_SUCCESS);
    assert_int_equal(clFinish(q), CL_SUCCESS);
}

static void assert_outputs_untouched(void)
{
    unsigned char *host = malloc(fx.out_bytes);
    assert_non_null(host);
    assert_int_equal(clEnqueueReadBuffer(facl_context_queue(fx.ctx), fx.out_buf, CL_TRUE, 0,
                                         fx.out_bytes, host, 0, NULL, NULL),
                     CL_SUCCESS);
    for (size_t i = 0; i < fx.out_bytes; ++i)
        if (host[i] != SENTINEL) fail_msg("output byte %zu was written by a rejected call", i);
    free(host);
}

/* The message must begin with the argument's name exactly as the library writes it, up to
 * and including what follows the name ("k:", "opts->window_left:", "cu_seqlens_k[0]"):
 * a name that merely appears somewhere ("k" in "shaped like k", "q:" inside
 * "cu_seqlens_q:") does not count. */
static void expect_message(const char *prefix, const char *also)
{
    const char *msg = facl_last_error();
    const size_t n = strlen(prefix);
    /* a bare name would let "q" match "qkv: ...": the prefix must end the name */
    if (!strpbrk(prefix, ":["))
        fail_msg("test bug: prefix '%s' must include what ends the name (':' or '[')", prefix);
    if (strncmp(msg, prefix, n) != 0)
        fail_msg("message '%s' does not begin with '%s'", msg, prefix);
    if (also && !strstr(msg + n, also))
        fail_msg("message '%s' does not name '%s' after '%s'", msg, also, prefix);
}

static void expect_rejected_naming(call *c, facl_status expected, const char *prefix,
                                   const char *also)
{
    fill_outputs_with_sentinel();
    facl_status st = run(c);
    if (st != expected)
        fail_msg("expected %s, got %s: %s", facl_status_string(expected), facl_status_string(st),
                 facl_last_error());
    expect_message(prefix, also);
    assert_int_equal(clFinish(facl_context_queue(fx.ctx)), CL_SUCCESS);
    assert_outputs_untouched();
}

static void expect_rejected(call *c, facl_status expected, const char *prefix)
{
    expect_rejected_naming(c, expected, prefix, NULL);
}

/* The unbroken calls succeed: otherwise every rejection below would prove nothing. */
static void test_valid_calls_succeed(void **state)
{
    (void)state;
    for (int family = DENSE; family <= KVPACKED; ++family) {
        call c = valid_call(family);
        c.opts.attn_probs = &c.probs;
        facl_status st = run(&c);
        if (st != FACL_SUCCESS) fail_msg("family %d: %s", family, facl_last_error());
    }
    assert_int_equal(clFinish(facl_context_queue(fx.ctx)), CL_SUCCESS);
}

static void test_null_arguments(void **state)
{
    (void)state;
    call c = valid_call(DENSE);
    c.ctx = NULL;
    expect_rejected(&c, FACL_ERROR_NULL_ARGUMENT, "ctx:");
    c = valid_call(DENSE);
    c.q.buffer = NULL;
    expect_rejected(&c, FACL_ERROR_NULL_ARGUMENT, "q: NULL buffer");
    c = valid_call(DENSE);
    c.v.buffer = NULL;
    expect_rejected(&c, FACL_ERROR_NULL_ARGUMENT, "v: NULL buffer");
    c = valid_call(DENSE);
    c.out.buffer = NULL;
    expect_rejected(&c, FACL_ERROR_NULL_ARGUMENT, "out: NULL buffer");
    c = valid_call(VARLEN);
    c.cu_k.buffer = NULL;
    expect_rejected(&c, FACL_ERROR_NULL_ARGUMENT, "cu_seqlens_k: NULL buffer");
    c = valid_call(KVPACKED);
    c.kv.buffer = NULL;
    expect_rejected(&c, FACL_ERROR_NULL_ARGUMENT, "kv: NULL buffer");
    fill_outputs_with_sentinel();
    assert_int_equal(facl_fwd(fx.ctx, NULL, NULL, &c.k, &c.v, &c.out, NULL, NULL, 0, NULL, NULL),
                     FACL_ERROR_NULL_ARGUMENT);
    expect_message("q: NULL tensor", NULL);
    assert_outputs_untouched();
    fill_outputs_with_sentinel();
    assert_int_equal(facl_fwd(fx.ctx, NULL, &c.q, NULL, &c.v, &c.out, NULL, NULL, 0, NULL, NULL),
                     FACL_ERROR_NULL_ARGUMENT);
    expect_message("k: NULL tensor", NULL);
    assert_outputs_untouched();
}

static void test_dtypes(void **state)
{
    (void)state;
    call c = valid_call(DENSE);
    c.k.dtype = FACL_DTYPE_F16;
    expect_rejected_naming(&c, FACL_ERROR_INVALID_DTYPE, "k: dtype fp16", "q's dtype fp32");
    c = valid_call(DENSE);
    c.out.dtype = FACL_DTYPE_BF16;
    expect_rejected_naming(&c, FACL_ERROR_INVALID_DTYPE, "out: dtype bf16", "q's dtype fp32");
    c = valid_call(DENSE);
    c.q.dtype = (facl_dtype)42;
    expect_rejected(&c, FACL_ERROR_INVALID_DTYPE,
                    "q: dtype 42 (unknown) is not accepted here (fp32, fp16 or bf16)");
    c = valid_call(DENSE);
    c.q.dtype = FACL_DTYPE_I32;
    expect_rejected(&c, FACL_ERROR_INVALID_DTYPE,
                    "q: dtype int32 is not accepted here (fp32, fp16 or bf16)");
    c = valid_call(DENSE);
    c.lse.dtype = FACL_DTYPE_F16;
    expect_rejected(&c, FACL_ERROR_INVALID_DTYPE, "lse:");
    c = valid_call(VARLEN);
    c.cu_q.dtype = FACL_DTYPE_F32;
    expect_rejected(&c, FACL_ERROR_INVALID_DTYPE, "cu_seqlens_q:");
    c = valid_call(DENSE);
    c.alibi.dtype = FACL_DTYPE_F16;
    c.opts.alibi_slopes = &c.alibi;
    expect_rejected(&c, FACL_ERROR_INVALID_DTYPE, "opts->alibi_slopes:");
    c = valid_call(KVPACKED);
    c.q.dtype = FACL_DTYPE_F16;
    expect_rejected_naming(&c, FACL_ERROR_INVALID_DTYPE, "kv[:, :, 0]: dtype", "q's dtype");
}

static void test_shapes(void **state)
{
    (void)state;
    call c = valid_call(DENSE);
    c.k.shape[0] = B + 1; /* k alone: v is no longer shaped like k */
    expect_rejected_naming(&c, FACL_ERROR_INVALID_SHAPE, "v: dimension 0", "shaped like k");
    c = valid_call(DENSE);
    c.k.shape[0] = B + 1; /* k and v: their batch differs from q's */
    c.v.shape[0] = B + 1;
    expect_rejected_naming(&c, FACL_ERROR_INVALID_SHAPE, "k: dimension 0", "batch");
    c = valid_call(DENSE);
    c.v.shape[1] = SK - 1;
    expect_rejected(&c, FACL_ERROR_INVALID_SHAPE, "v: dimension 1");
    c = valid_call(DENSE);
    c.out.shape[1] = SQ + 1;
    expect_rejected(&c, FACL_ERROR_INVALID_SHAPE, "out: dimension 1");
    c = valid_call(DENSE);
    c.k.shape[3] = D / 2;
    c.v.shape[3] = D / 2;
    expect_rejected_naming(&c, FACL_ERROR_INVALID_SHAPE, "k: dimension 3", "head_dim");
    c = valid_call(DENSE);
    c.q.ndim = 3;
    expect_rejected(&c, FACL_ERROR_INVALID_SHAPE, "q: expected 4 dimensions");
    c = valid_call(DENSE);
    c.q.shape[1] = -1;
    expect_rejected(&c, FACL_ERROR_INVALID_SHAPE, "q: negative size");
    c = valid_call(DENSE);
    c.lse.shape[2] = SQ + 1;
    expect_rejected(&c, FACL_ERROR_INVALID_SHAPE, "lse: dimension 2");
    c = valid_call(QKVPACKED);
    c.qkv.shape[2] = 2;
    expect_rejected(&c, FACL_ERROR_INVALID_SHAPE, "qkv: dimension 2");
    c = valid_call(QKVPACKED);
    c.lse.shape[1] = HQ - 1;
    expect_rejected(&c, FACL_ERROR_INVALID_SHAPE, "lse: dimension 1");
    c = valid_call(KVPACKED);
    c.kv.shape[2] = 3;
    expect_rejected(&c, FACL_ERROR_INVALID_SHAPE, "kv: dimension 2");
    c = valid_call(KVPACKED);
    c.kv.shape[4] = D / 2; /* k and v of the pack have another head_dim than q */
    expect_rejected_naming(&c, FACL_ERROR_INVALID_SHAPE, "kv[:, :, 0]: dimension 3", "head_dim");
    c = valid_call(DENSE);
    c.probs.shape[3] = SK + 1;
    c.opts.attn_probs = &c.probs;
    expect_rejected_naming(&c, FACL_ERROR_INVALID_SHAPE, "opts->attn_probs: dimension 3",
                           "seqlen_k");
    c = valid_call(VARLEN); /* varlen: (batch, heads_q, max_seqlen_q, max_seqlen_k) */
    c.probs.shape[2] = 5;
    c.opts.attn_probs = &c.probs;
    expect_rejected(&c, FACL_ERROR_INVALID_SHAPE, "opts->attn_probs: dimension 2");
    c = valid_call(VARLEN); /* varlen lse: (heads_q, total_q) */
    c.lse.shape[1] = 4;
    expect_rejected_naming(&c, FACL_ERROR_INVALID_SHAPE, "lse: dimension 1", "total_q");
}

static void test_heads_and_head_dim(void **state)
{
    (void)state;
    call c = valid_call(DENSE);
    c.k.shape[2] = 3;
    c.v.shape[2] = 3;
    expect_rejected_naming(&c, FACL_ERROR_INVALID_HEADS, "q: heads_q 4", "k's heads_kv 3");
    c = valid_call(DENSE);
    c.k.shape[2] = 0;
    c.v.shape[2] = 0;
    expect_rejected_naming(&c, FACL_ERROR_INVALID_HEADS, "q: heads_q 4", "k's heads_kv 0");
    const int64_t bad_dims[2] = {0, FACL_MAX_HEAD_DIM + 1};
    for (int i = 0; i < 2; ++i) {
        c = valid_call(DENSE);
        const int64_t qs[4] = {B, SQ, HQ, bad_dims[i]}, ks[4] = {B, SK, HKV, bad_dims[i]};
        c.q = view(fx.big, FACL_DTYPE_F32, 4, qs, 0);
        c.k = view(fx.big, FACL_DTYPE_F32, 4, ks, 0);
        c.v = view(fx.big, FACL_DTYPE_F32, 4, ks, 0);
        c.out = view(fx.out_buf, FACL_DTYPE_F32, 4, qs, 0);
        expect_rejected(&c, FACL_ERROR_INVALID_HEAD_DIM, "q: head_dim ");
    }
}

static void test_strides_and_extents(void **state)
{
    (void)state;
    call c = valid_call(DENSE);
    c.q.stride[3] = 2;
    expect_rejected(&c, FACL_ERROR_INVALID_STRIDE, "q: the last dimension");
    c = valid_call(DENSE);
    c.out.stride[1] = -1;
    expect_rejected(&c, FACL_ERROR_INVALID_STRIDE, "out: negative stride");
    c = valid_call(DENSE);
    c.k.buffer = fx.small;
    expect_rejected(&c, FACL_ERROR_BUFFER_TOO_SMALL, "k: the view reaches");
    c = valid_call(DENSE);
    c.out.offset = fx.out_bytes / 4 - 10; /* starts inside, ends outside */
    expect_rejected(&c, FACL_ERROR_BUFFER_TOO_SMALL, "out: the view reaches");
    c = valid_call(DENSE);
    c.q.stride[0] = INT64_MAX / 2;
    expect_rejected_naming(&c, FACL_ERROR_SIZE_OVERFLOW, "q:", "overflows");
    c = valid_call(DENSE);
    c.v.shape[1] = INT64_MAX / 4;
    c.k.shape[1] = INT64_MAX / 4;
    c.v.stride[0] = 8;
    expect_rejected(&c, FACL_ERROR_SIZE_OVERFLOW, "k: extent");
}

static void test_scalar_options(void **state)
{
    (void)state;
    const float bad_scales[3] = {-1.0f, NAN, INFINITY};
    for (int i = 0; i < 3; ++i) {
        call c = valid_call(DENSE);
        c.opts.softmax_scale = bad_scales[i];
        expect_rejected(&c, FACL_ERROR_INVALID_VALUE, "opts->softmax_scale:");
    }
    const float bad_p[4] = {1.0f, -0.1f, NAN, 2.0f};
    for (int i = 0; i < 4; ++i) {
        call c = valid_call(DENSE);
        c.opts.dropout_p = bad_p[i];
        expect_rejected(&c, FACL_ERROR_INVALID_VALUE, "opts->dropout_p:");
    }
    call c = valid_call(DENSE);
    c.opts.softcap = -2.0f;
    expect_rejected(&c, FACL_ERROR_INVALID_VALUE, "opts->softcap:");
    c = valid_call(DENSE);
    c.opts.window_left = -2;
    expect_rejected(&c, FACL_ERROR_INVALID_VALUE, "opts->window_left:");
    c = valid_call(DENSE);
    c.opts.window_right = -7;
    expect_rejected(&c, FACL_ERROR_INVALID_VALUE, "opts->window_right:");
    c = valid_call(DENSE);
    c.opts.mask_align = (facl_mask_align)5;
    expect_rejected(&c, FACL_ERROR_INVALID_VALUE, "opts->mask_align:");
    /* deterministic: 0 or 1 on every call (the forward is deterministic either way) */
    const int32_t bad_modes[2] = {2, -1};
    for (int i = 0; i < 2; ++i) {
        c = valid_call(i ? VARLEN : DENSE);
        c.opts.deterministic = bad_modes[i];
        expect_rejected(&c, FACL_ERROR_INVALID_VALUE, "opts->deterministic:");
    }
    for (int mode = 0; mode < 2; ++mode) {
        c = valid_call(DENSE);
        c.opts.deterministic = mode;
        if (run(&c) != FACL_SUCCESS) fail_msg("deterministic %d: %s", mode, facl_last_error());
    }
    assert_int_equal(clFinish(facl_context_queue(fx.ctx)), CL_SUCCESS);
}

static void test_alibi_shapes(void **state)
{
    (void)state;
    call c = valid_call(DENSE);
    const int64_t wrong_heads[1] = {HQ + 1};
    c.alibi = view(fx.big, FACL_DTYPE_F32, 1, wrong_heads, 0);
    c.opts.alibi_slopes = &c.alibi;
    expect_rejected_naming(&c, FACL_ERROR_INVALID_SHAPE, "opts->alibi_slopes: dimension 0",
                           "heads_q");
    c = valid_call(DENSE);
    const int64_t wrong_batch[2] = {B + 1, HQ};
    c.alibi = view(fx.big, FACL_DTYPE_F32, 2, wrong_batch, 0);
    c.opts.alibi_slopes = &c.alibi;
    expect_rejected_naming(&c, FACL_ERROR_INVALID_SHAPE, "opts->alibi_slopes: dimension 0",
                           "batch");
    c = valid_call(DENSE);
    const int64_t three_d[3] = {1, B, HQ};
    c.alibi = view(fx.big, FACL_DTYPE_F32, 3, three_d, 0);
    c.opts.alibi_slopes = &c.alibi;
    expect_rejected(&c, FACL_ERROR_INVALID_SHAPE, "opts->alibi_slopes: must be");
}

/* Writes a bad prefix-sum array into the fixture's cu buffer for one case. */
static void set_prefix_sums(const int32_t cu[6])
{
    assert_int_equal(clEnqueueWriteBuffer(facl_context_queue(fx.ctx), fx.cu_buf, CL_TRUE, 0,
                                          6 * sizeof(int32_t), cu, 0, NULL, NULL),
                     CL_SUCCESS);
}

static void test_varlen_arguments(void **state)
{
    (void)state;
    const int32_t good[6] = {0, 2, 5, 0, 3, 7};
    call c = valid_call(VARLEN);
    const int64_t four[1] = {4};
    c.cu_k = view(fx.cu_buf, FACL_DTYPE_I32, 1, four, 0);
    expect_rejected(&c, FACL_ERROR_INVALID_SHAPE, "cu_seqlens_k: dimension 0");
    c = valid_call(VARLEN);
    c.max_q = 2; /* sequence 1 has 3 rows */
    expect_rejected_naming(&c, FACL_ERROR_INVALID_SEQLENS, "cu_seqlens_q: sequence 1",
                           "max_seqlen_q = 2");
    c = valid_call(VARLEN);
    c.max_k = 3; /* sequence 1 has 4 keys */
    expect_rejected_naming(&c, FACL_ERROR_INVALID_SEQLENS, "cu_seqlens_k: sequence 1",
                           "max_seqlen_k = 3");
    c = valid_call(VARLEN);
    c.max_k = -1;
    expect_rejected(&c, FACL_ERROR_INVALID_SEQLENS, "max_seqlen_k: negative");
    c = valid_call(VARLEN);
    c.max_q = -3;
    expect_rejected(&c, FACL_ERROR_INVALID_SEQLENS, "max_seqlen_q: negative");

    const int32_t decreasing[6] = {0, 4, 2, 0, 3, 7};
    set_prefix_sums(decreasing);
    c = valid_call(VARLEN);
    c.max_q = 100;
    expect_rejected(&c, FACL_ERROR_INVALID_SEQLENS, "cu_seqlens_q: decreases");
    const int32_t nonzero_start[6] = {0, 2, 5, 1, 3, 7};
    set_prefix_sums(nonzero_start);
    c = valid_call(VARLEN);
    expect_rejected(&c, FACL_ERROR_INVALID_SEQLENS, "cu_seqlens_k[0]");
    const int32_t past_end[6] = {0, 2, 5, 0, 3, 9};
    set_prefix_sums(past_end);
    c = valid_call(VARLEN);
    c.max_k = 100;
    expect_rejected(&c, FACL_ERROR_INVALID_SEQLENS, "cu_seqlens_k: last prefix sum");
    set_prefix_sums(good);
    c = valid_call(VARLEN);
    c.opts.trust_cu_seqlens = 7;
    expect_rejected(&c, FACL_ERROR_INVALID_VALUE, "opts->trust_cu_seqlens:");
}

/* opts->seqused_k: n int32 values at element 1 of fx.used_buf (the rest: -1, out of
 * range), and a view of them (shape (n), offset 1). */
static facl_tensor set_seqused(const int32_t *values, int n)
{
    int32_t all[8];
    const int64_t shape[1] = {n};
    for (int i = 0; i < 8; ++i) all[i] = -1;
    memcpy(all + 1, values, (size_t)n * sizeof *values);
    assert_int_equal(clEnqueueWriteBuffer(facl_context_queue(fx.ctx), fx.used_buf, CL_TRUE, 0,
                                          sizeof all, all, 0, NULL, NULL),
                     CL_SUCCESS);
    return view(fx.used_buf, FACL_DTYPE_I32, 1, shape, 1);
}

/* FlashAttention 3's seqused_k: int32 (batch), each value in 0 .. the sequence's keys
 * (dense: SK; varlen: cu_seqlens_k's segments 3 and 4; qkvpacked: SQ). Untrusted calls
 * read it back and reject a value outside; trusted ones accept anything (clamped). */
static void test_seqused_k(void **state)
{
    (void)state;
    const int32_t dense_ok[2] = {SK, 0}, var_ok[2] = {3, 4}, qkv_ok[2] = {SQ, 1};
    facl_tensor used;
    call c;
    /* valid calls of every family succeed: otherwise the rejections prove nothing */
    for (int family = DENSE; family <= KVPACKED; ++family) {
        c = valid_call(family);
        used = set_seqused(family == VARLEN ? var_ok : family == QKVPACKED ? qkv_ok : dense_ok, B);
        c.opts.seqused_k = &used;
        c.opts.attn_probs = &c.probs;
        facl_status st = run(&c);
        if (st != FACL_SUCCESS) fail_msg("family %d with seqused_k: %s", family, facl_last_error());
        assert_int_equal(clFinish(facl_context_queue(fx.ctx)), CL_SUCCESS);
    }

    /* dtype, rank, shape */
    c = valid_call(DENSE);
    used = set_seqused(dense_ok, B);
    used.dtype = FACL_DTYPE_F32;
    c.opts.seqused_k = &used;
    expect_rejected(&c, FACL_ERROR_INVALID_DTYPE, "opts->seqused_k:");
    c = valid_call(VARLEN);
    used = set_seqused(var_ok, B);
    used.dtype = FACL_DTYPE_F16;
    c.opts.seqused_k = &used;
    expect_rejected(&c, FACL_ERROR_INVALID_DTYPE, "opts->seqused_k:");
    c = valid_call(DENSE);
    used = set_seqused(dense_ok, B);
    used.ndim = 2; /* (B, 1) */
    used.shape[1] = 1;
    used.stride[0] = 1;
    used.stride[1] = 1;
    c.opts.seqused_k = &used;
    expect_rejected(&c, FACL_ERROR_INVALID_SHAPE, "opts->seqused_k:");
    c = valid_call(DENSE);
    {
        const int32_t three[3] = {SK, 0, 1};
        used = set_seqused(three, B + 1);
    }
    c.opts.seqused_k = &used;
    expect_rejected_naming(&c, FACL_ERROR_INVALID_SHAPE, "opts->seqused_k:", "batch");
    c = valid_call(VARLEN); /* batch B from cu_seqlens: B + 1 entries are one too many */
    {
        const int32_t three[3] = {3, 4, 0};
        used = set_seqused(three, B + 1);
    }
    c.opts.seqused_k = &used;
    expect_rejected_naming(&c, FACL_ERROR_INVALID_SHAPE, "opts->seqused_k:", "batch");
    c = valid_call(DENSE);
    used = set_seqused(dense_ok, B);
    used.buffer = NULL;
    c.opts.seqused_k = &used;
    expect_rejected(&c, FACL_ERROR_NULL_ARGUMENT, "opts->seqused_k:");
    c = valid_call(DENSE);
    used = set_seqused(dense_ok, B);
    used.stride[0] = 2; /* read back as contiguous values: must be refused */
    c.opts.seqused_k = &used;
    expect_rejected(&c, FACL_ERROR_INVALID_STRIDE, "opts->seqused_k:");
    c = valid_call(DENSE);
    used = set_seqused(dense_ok, B);
    used.buffer = fx.small; /* 4 int32: offset 3 + 2 values reach past it */
    used.offset = 3;
    c.opts.seqused_k = &used;
    expect_rejected(&c, FACL_ERROR_BUFFER_TOO_SMALL, "opts->seqused_k:");

    /* values out of range, read back by an untrusted call of each family */
    const int32_t dense_bad[3][2] = {{-1, 0}, {SK, SK + 1}, {INT32_MIN, 3}};
    for (int i = 0; i < 3; ++i) {
        c = valid_call(i == 2 ? KVPACKED : DENSE);
        used = set_seqused(dense_bad[i], B);
        c.opts.seqused_k = &used;
        expect_rejected(&c, FACL_ERROR_INVALID_SEQLENS, "opts->seqused_k:");
    }
    const int32_t var_bad[3][2] = {{4, 0}, {3, 5}, {-1, 4}}; /* segments: 3 and 4 keys */
    for (int i = 0; i < 3; ++i) {
        c = valid_call(VARLEN); /* {4, 0}: within max_seqlen_k 4, one more than segment 0 */
        used = set_seqused(var_bad[i], B);
        c.opts.seqused_k = &used;
        expect_rejected(&c, FACL_ERROR_INVALID_SEQLENS, "opts->seqused_k:");
    }
    {
        const int32_t qkv_bad[2] = {SQ + 1, 0}; /* the keys are the SQ rows */
        c = valid_call(QKVPACKED);
        used = set_seqused(qkv_bad, B);
        c.opts.seqused_k = &used;
        expect_rejected(&c, FACL_ERROR_INVALID_SEQLENS, "opts->seqused_k:");
    }

    /* trusted: no read-back, the same values accepted (clamped on the device) */
    for (int family = DENSE; family <= VARLEN; ++family) {
        c = valid_call(family);
        used = set_seqused(family == VARLEN ? var_bad[1] : dense_bad[1], B);
        c.opts.seqused_k = &used;
        c.opts.trust_cu_seqlens = 1;
        facl_status st = run(&c);
        if (st != FACL_SUCCESS)
            fail_msg("family %d, trusted seqused_k out of range: %s", family, facl_last_error());
        assert_int_equal(clFinish(facl_context_queue(fx.ctx)), CL_SUCCESS);
    }
}

static void test_foreign_queue_and_buffer(void **state)
{
    (void)state;
    call c = valid_call(DENSE);
    c.queue = fx.other_queue;
    expect_rejected(&c, FACL_ERROR_INVALID_CONTEXT, "queue:");
    cl_int err;
    cl_mem foreign = clCreateBuffer(fx.other_cl, CL_MEM_READ_WRITE, 1 << 16, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    c = valid_call(DENSE);
    c.v.buffer = foreign;
    expect_rejected(&c, FACL_ERROR_INVALID_CONTEXT, "v: buffer belongs");
    clReleaseMemObject(foreign);
}

static void test_status_strings(void **state)
{
    (void)state;
    assert_string_equal(facl_status_string(FACL_SUCCESS), "FACL_SUCCESS");
    assert_string_equal(facl_status_string(FACL_ERROR_INVALID_HEADS), "FACL_ERROR_INVALID_HEADS");
    assert_string_equal(facl_status_string((facl_status)CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES");
    assert_string_equal(facl_status_string((facl_status)-12345), "FACL_UNKNOWN_STATUS");
    assert_int_equal(facl_version_number(), FACL_VERSION_NUMBER);
    assert_string_equal(facl_version_string(), FACL_VERSION_STRING);
    facl_context *ctx = (facl_context *)0x1;
    assert_int_equal(facl_context_create("no-such-device-name-xyz", &ctx), FACL_ERROR_NO_DEVICE);
    assert_null(ctx);
    assert_non_null(strstr(facl_last_error(), "no-such-device-name-xyz"));
    assert_int_equal(facl_context_create("99:99", &ctx), FACL_ERROR_NO_DEVICE);
    facl_context_free(NULL); /* accepted */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_calls_succeed), cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_dtypes),              cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_heads_and_head_dim),  cmocka_unit_test(test_strides_and_extents),
        cmocka_unit_test(test_scalar_options),      cmocka_unit_test(test_alibi_shapes),
        cmocka_unit_test(test_varlen_arguments),    cmocka_unit_test(test_seqused_k),
        cmocka_unit_test(test_foreign_queue_and_buffer),
        cmocka_unit_test(test_status_strings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
