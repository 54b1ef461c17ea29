/* The CLBlast baseline (see bench_clblast.h). */
#include "bench_clblast.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_devices.h"

uint64_t bench_baseline_scores_bytes(const bench_config *c)
{
    return (uint64_t)c->batch * (uint64_t)c->heads * (uint64_t)c->seqlen * (uint64_t)c->seqlen *
           facl_dtype_size(c->dtype);
}

uint64_t bench_baseline_memory(const bench_config *c)
{
    uint64_t qkvo = 4ull * (uint64_t)c->batch * (uint64_t)c->seqlen * (uint64_t)c->heads *
                    (uint64_t)c->hdim * facl_dtype_size(c->dtype);
    return qkvo + bench_baseline_scores_bytes(c);
}

#ifndef FACL_BENCH_HAVE_CLBLAST

bench_baseline *bench_baseline_create(facl_context *ctx, char *why, size_t why_size)
{
    (void)ctx;
    snprintf(why, why_size, "unavailable (built without CLBlast)");
    return NULL;
}

void bench_baseline_free(bench_baseline *b) { (void)b; }

int bench_baseline_supports(const bench_baseline *b, facl_dtype dtype, char *why,
                            size_t why_size)
{
    (void)b;
    (void)dtype;
    snprintf(why, why_size, "unavailable (built without CLBlast)");
    return 0;
}

int bench_baseline_enqueue(bench_baseline *b, cl_command_queue queue, const bench_config *c,
                           cl_mem q, cl_mem k, cl_mem v, cl_mem out, cl_mem scores,
                           cl_event *last, char *err, size_t err_size)
{
    (void)b;
    (void)queue;
    (void)c;
    (void)q;
    (void)k;
    (void)v;
    (void)out;
    (void)scores;
    (void)last;
    snprintf(err, err_size, "unavailable (built without CLBlast)");
    return -1;
}

void bench_baseline_shutdown(void) {}

#else

#include <clblast_c.h>

#include "bench_softmax.h"
#include "numeric.h"

struct bench_baseline {
    cl_context ctx;
    cl_device_id device;
    bench_softmax softmax;
    int has_fp16;          /* cl_khr_fp16 advertised: what CLBlast's Hgemm checks */
    uint64_t base_align;   /* sub-buffer origin alignment, bytes */
};

static const char *clblast_error(CLBlastStatusCode code)
{
    switch (code) {
    case CLBlastNoHalfPrecision: return "CLBlast: the device lacks cl_khr_fp16";
    case CLBlastInvalidLocalMemUsage: return "CLBlast: not enough local memory";
    case CLBlastDatabaseError: return "CLBlast: no tuning entry for the device";
    case CLBlastInsufficientMemoryA: return "CLBlast: buffer A too small";
    case CLBlastInsufficientMemoryB: return "CLBlast: buffer B too small";
    case CLBlastInsufficientMemoryC: return "CLBlast: buffer C too small";
    case CLBlastUnknownError: return "CLBlast: unknown error";
    case CLBlastUnexpectedError: return "CLBlast: unexpected error";
    default: break;
    }
    if (code > -1000) return tool_cl_error_name((cl_int)code);
    return "CLBlast error";
}

bench_baseline *bench_baseline_create(facl_context *ctx, char *why, size_t why_size)
{
    bench_baseline *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(why, why_size, "error (out of host memory)");
        return NULL;
    }
    b->ctx = facl_context_cl_context(ctx);
    b->device = facl_context_device(ctx);
    char err[160];
    if (bench_softmax_init(&b->softmax, b->ctx, b->device, err, sizeof err) != 0) {
        snprintf(why, why_size, "error (%s)", err);
        free(b);
        return NULL;
    }
    size_t ext_size = 0;
    clGetDeviceInfo(b->device, CL_DEVICE_EXTENSIONS, 0, NULL, &ext_size);
    char *ext = calloc(ext_size + 1, 1);
    if (ext && clGetDeviceInfo(b->device, CL_DEVICE_EXTENSIONS, ext_size, ext, NULL) == CL_SUCCESS)
        b->has_fp16 = strstr(ext, "cl_khr_fp16") != NULL;
    free(ext);
    cl_uint align_bits = 0;
    clGetDeviceInfo(b->device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits, NULL);
    b->base_align = align_bits >= 8 ? align_bits / 8 : 1;
    return b;
}

void bench_baseline_free(bench_baseline *b)
{
    if (!b) return;
    bench_softmax_free(&b->softmax);
    free(b);
}

int bench_baseline_supports(const bench_baseline *b, facl_dtype dtype, char *why,
                            size_t why_size)
{
    if (dtype == FACL_DTYPE_BF16) {
        snprintf(why, why_size, "unavailable (CLBlast has no bf16)");
        return 0;
    }
    if (dtype == FACL_DTYPE_F16 && !b->has_fp16) {
        /* CLBlast's Hgemm refuses such devices (CLBlastNoHalfPrecision); say so up front
         * instead of allocating a score matrix to learn it. */
        snprintf(why, why_size, "unavailable (CLBlast fp16 needs cl_khr_fp16)");
        return 0;
    }
    return 1;
}

/* One strided-batched GEMM, C = alpha * op(A) * op(B), row-major. */
typedef struct gemm_args {
    int transpose_b;
    size_t m, n, k;
    float alpha;
    cl_mem a, b, c;
    size_t a_off, a_ld, a_stride, b_off, b_ld, b_stride, c_off, c_ld, c_stride, count;
} gemm_args;

static CLBlastStatusCode gemm(facl_dtype dtype, const gemm_args *g, cl_command_queue *queue,
                              cl_event *event)
{
    CLBlastTranspose tb = g->transpose_b ? CLBlastTransposeYes : CLBlastTransposeNo;
    if (dtype == FACL_DTYPE_F16)
        return CLBlastHgemmStridedBatched(
            CLBlastLayoutRowMajor, CLBlastTransposeNo, tb, g->m, g->n, g->k,
            testkit_f32_to_f16(g->alpha), g->a, g->a_off, g->a_ld, g->a_stride, g->b, g->b_off,
            g->b_ld, g->b_stride, testkit_f32_to_f16(0.0f), g->c, g->c_off, g->c_ld, g->c_stride,
            g->count, queue, event);
    return CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, CLBlastTransposeNo, tb, g->m, g->n,
                                      g->k, g->alpha, g->a, g->a_off, g->a_ld, g->a_stride, g->b,
                                      g->b_off, g->b_ld, g->b_stride, 0.0f, g->c, g->c_off,
                                      g->c_ld, g->c_stride, g->count, queue, event);
}

/* CLBlast's kernels index with 32-bit ints (offset + batch * stride), so a score matrix
 * of more than INT_MAX elements is processed in chunks of (batch, head) matrices, each
 * through a sub-buffer of S that starts at the chunk. Returns the matrices per chunk.
 * FACL_BENCH_CHUNK_ELEMENTS lowers the limit so that tests reach this path with small
 * matrices. */
static size_t chunk_matrices(const bench_config *c, uint64_t base_align)
{
    uint64_t per = (uint64_t)c->seqlen * (uint64_t)c->seqlen;
    uint64_t total = (uint64_t)c->batch * (uint64_t)c->heads;
    uint64_t limit = INT_MAX;
    const char *env = getenv("FACL_BENCH_CHUNK_ELEMENTS");
    if (env && strtoull(env, NULL, 10) > 0 && strtoull(env, NULL, 10) < limit)
        limit = strtoull(env, NULL, 10);
    uint64_t fit = limit / per;
    if (fit >= total) return (size_t)total;
    if (fit == 0) return 0;
    /* Sub-buffer origins must respect CL_DEVICE_MEM_BASE_ADDR_ALIGN. */
    while (fit > 1 && (fit * per * facl_dtype_size(c->dtype)) % base_align != 0) --fit;
    return (size_t)fit;
}

static void replace_event(cl_event *keep, cl_event fresh)
{
    if (*keep) clReleaseEvent(*keep);
    *keep = fresh;
}

/* Runs GEMM `g` (whose C, or A for the second GEMM, is S) over chunks of `per_chunk`
 * matrices; `s_is_c` says which operand is the score matrix. */
static int chunked_gemm(facl_dtype dtype, gemm_args g, int s_is_c,
                        cl_mem scores, size_t per_chunk, size_t total, cl_command_queue *queue,
                        cl_event *last, char *err, size_t err_size)
{
    size_t elt = facl_dtype_size(dtype);
    size_t s_stride = s_is_c ? g.c_stride : g.a_stride;
    size_t other_stride = s_is_c ? g.a_stride : g.c_stride;
    for (size_t first = 0; first < total; first += per_chunk) {
        size_t count = total - first < per_chunk ? total - first : per_chunk;
        gemm_args part = g;
        part.count = count;
        cl_mem sub = NULL;
        if (per_chunk < total) {
            cl_buffer_region region = {first * s_stride * elt, count * s_stride * elt};
            cl_int e;
            sub = clCreateSubBuffer(scores, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION,
                                    &region, &e);
            if (e != CL_SUCCESS) {
                snprintf(err, err_size, "clCreateSubBuffer: %s", tool_cl_error_name(e));
                return -1;
            }
        }
        cl_mem s_view = sub ? sub : scores;
        if (s_is_c) {
            part.c = s_view;
            part.a_off = first * other_stride;
        } else {
            part.a = s_view;
            part.c_off = first * other_stride;
        }
        part.b_off = first * g.b_stride;
        cl_event ev = NULL;
        CLBlastStatusCode st = gemm(dtype, &part, queue, &ev);
        if (sub) clReleaseMemObject(sub); /* the queued command keeps it alive */
        if (st != CLBlastSuccess) {
            snprintf(err, err_size, "%s", clblast_error(st));
            return -1;
        }
        replace_event(last, ev);
    }
    return 0;
}

int bench_baseline_enqueue(bench_baseline *b, cl_command_queue queue, const bench_config *c,
                           cl_mem q, cl_mem k, cl_mem v, cl_mem out, cl_mem scores,
                           cl_event *last, char *err, size_t err_size)
{
    const size_t s = (size_t)c->seqlen, d = (size_t)c->hdim;
    const size_t total = (size_t)c->batch * (size_t)c->heads;
    size_t per_chunk = chunk_matrices(c, b->base_align);
    if (per_chunk == 0) {
        snprintf(err, err_size, "one %zu x %zu score matrix exceeds CLBlast's 32-bit indexing", s, s);
        return -1;
    }
    *last = NULL;
    /* S = scale * Q K^T: m = seqlen_q, n = seqlen_k, k = d; K read transposed. */
    gemm_args g1 = {1, s, s, d, 1.0f / sqrtf((float)d), q, k, NULL,
                    0, d, s * d, 0, d, s * d, 0, s, s * s, total};
    if (chunked_gemm(c->dtype, g1, 1, scores, per_chunk, total, &queue, last, err, err_size))
        goto fail;

    cl_event sm = NULL;
    cl_int e = bench_softmax_enqueue(&b->softmax, queue, c->dtype, scores, total * s, c->seqlen,
                                     c->seqlen, c->causal, &sm);
    if (e != CL_SUCCESS) {
        snprintf(err, err_size, "softmax kernel: %s", tool_cl_error_name(e));
        goto fail;
    }
    replace_event(last, sm);

    /* O = P V: m = seqlen_q, n = d, k = seqlen_k. */
    gemm_args g2 = {0, s, d, s, 1.0f, NULL, v, out,
                    0, s, s * s, 0, d, s * d, 0, d, s * d, total};
    if (chunked_gemm(c->dtype, g2, 0, scores, per_chunk, total, &queue, last, err, err_size))
        goto fail;
    return 0;
fail:
    clFinish(queue);
    replace_event(last, NULL);
    return -1;
}

void bench_baseline_shutdown(void) { CLBlastClearCache(); }

#endif
