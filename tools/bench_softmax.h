/*
 * The baseline's softmax: a small OpenCL kernel that turns each row of the score matrix
 * S (rows of seqlen_k elements, already scaled by the first GEMM) into probabilities in
 * place, with FlashAttention's bottom-right causal mask. fp32 or fp16 storage (fp16 via
 * vload_half/vstore_half, so it needs no cl_khr_fp16); arithmetic in fp32.
 */
#ifndef FACL_TOOLS_BENCH_SOFTMAX_H
#define FACL_TOOLS_BENCH_SOFTMAX_H

#include <stddef.h>

#include "facl.h"

typedef struct bench_softmax {
    cl_program program[2]; /* [0] fp32, [1] fp16 storage */
    cl_kernel kernel[2];
    size_t local_size;   /* a power of two the device accepts for both kernels */
} bench_softmax;

int bench_softmax_init(bench_softmax *s, cl_context ctx, cl_device_id device, char *err,
                       size_t err_size);
void bench_softmax_free(bench_softmax *s);

/* Softmax over `rows` rows of `seqlen_k` elements of `scores` (one row per
 * (batch, head, query)); query i of a row is row % seqlen_q. */
cl_int bench_softmax_enqueue(bench_softmax *s, cl_command_queue queue, facl_dtype dtype,
                             cl_mem scores, size_t rows, int seqlen_q, int seqlen_k, int causal,
                             cl_event *event);

#endif
