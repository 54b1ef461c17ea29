/*
 * Device buffers for the tools: filled with seeded random normals in a storage dtype
 * (so that timings run on realistic data, not zeros or NaN), and read back as floats.
 */
#ifndef FACL_TOOLS_BENCH_BUFFERS_H
#define FACL_TOOLS_BENCH_BUFFERS_H

#include <stddef.h>
#include <stdint.h>

#include "facl.h"

/* A buffer of `count` elements of `dtype` holding N(0, 1) draws (seeded), or NULL with
 * *err set. The upload is blocking. */
cl_mem tool_random_buffer(cl_context ctx, cl_command_queue queue, facl_dtype dtype, size_t count,
                          uint64_t seed, cl_int *err);

/* A buffer of `count` elements of `dtype`, zero-filled (blocking), or NULL. */
cl_mem tool_zero_buffer(cl_context ctx, cl_command_queue queue, facl_dtype dtype, size_t count,
                        cl_int *err);

/* An int32 buffer holding `values` (blocking upload), or NULL. */
cl_mem tool_int_buffer(cl_context ctx, cl_command_queue queue, const int32_t *values,
                       size_t count, cl_int *err);

/* Reads `count` elements of `dtype` at element `offset` back as floats (blocking).
 * Returns a malloc'ed array or NULL. */
float *tool_read_floats(cl_command_queue queue, cl_mem buf, facl_dtype dtype, size_t offset,
                        size_t count, cl_int *err);

/* "fp32", "fp16", "bf16" and back (-1 for an unknown name). */
const char *tool_dtype_name(facl_dtype dtype);
int tool_dtype_parse(const char *name, facl_dtype *out);

#endif
