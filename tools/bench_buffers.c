/* Device buffers for the tools (see bench_buffers.h). */
#include "bench_buffers.h"

#include <stdlib.h>
#include <string.h>

#include "numeric.h"

/* Upload in slices so that a 128 MiB tensor needs no 128 MiB host staging copy. */
#define SLICE_ELEMENTS ((size_t)1 << 20)

cl_mem tool_random_buffer(cl_context ctx, cl_command_queue queue, facl_dtype dtype, size_t count,
                          uint64_t seed, cl_int *err)
{
    size_t elt = facl_dtype_size(dtype);
    cl_mem buf = clCreateBuffer(ctx, CL_MEM_READ_WRITE, count * elt, NULL, err);
    if (*err != CL_SUCCESS) return NULL;
    size_t slice = count < SLICE_ELEMENTS ? count : SLICE_ELEMENTS;
    unsigned char *host = malloc(slice * elt);
    if (!host) {
        *err = CL_OUT_OF_HOST_MEMORY;
        clReleaseMemObject(buf);
        return NULL;
    }
    testkit_rng rng;
    testkit_rng_seed(&rng, seed);
    for (size_t done = 0; done < count && *err == CL_SUCCESS; done += slice) {
        size_t n = count - done < slice ? count - done : slice;
        for (size_t i = 0; i < n; ++i)
            testkit_store(dtype, host, i, (float)testkit_rng_normal(&rng));
        *err = clEnqueueWriteBuffer(queue, buf, CL_TRUE, done * elt, n * elt, host, 0, NULL, NULL);
    }
    free(host);
    if (*err != CL_SUCCESS) {
        clReleaseMemObject(buf);
        return NULL;
    }
    return buf;
}

/* Zeroes by uploading a zeroed host slice again and again. clEnqueueFillBuffer is not
 * usable for large buffers on NVIDIA's driver (580, H100): a 2 GiB fill with a 1-byte
 * pattern never finished, and 4-byte fills reaching 16 GiB left the queue broken
 * (CL_INVALID_COMMAND_QUEUE), both consistent with 32-bit element counters. */
#define ZERO_SLICE_BYTES ((size_t)64 << 20)

cl_mem tool_zero_buffer(cl_context ctx, cl_command_queue queue, facl_dtype dtype, size_t count,
                        cl_int *err)
{
    size_t bytes = count * facl_dtype_size(dtype);
    cl_mem buf = clCreateBuffer(ctx, CL_MEM_READ_WRITE, bytes, NULL, err);
    if (*err != CL_SUCCESS) return NULL;
    size_t slice = bytes < ZERO_SLICE_BYTES ? bytes : ZERO_SLICE_BYTES;
    void *zeros = calloc(slice ? slice : 1, 1);
    if (!zeros) *err = CL_OUT_OF_HOST_MEMORY;
    for (size_t done = 0; done < bytes && *err == CL_SUCCESS; done += slice) {
        size_t n = bytes - done < slice ? bytes - done : slice;
        *err = clEnqueueWriteBuffer(queue, buf, CL_FALSE, done, n, zeros, 0, NULL, NULL);
    }
    if (*err == CL_SUCCESS) *err = clFinish(queue);
    else clFinish(queue); /* the queued writes still read `zeros` */
    free(zeros);
    if (*err != CL_SUCCESS) {
        clReleaseMemObject(buf);
        return NULL;
    }
    return buf;
}

cl_mem tool_int_buffer(cl_context ctx, cl_command_queue queue, const int32_t *values,
                       size_t count, cl_int *err)
{
    cl_mem buf = clCreateBuffer(ctx, CL_MEM_READ_ONLY, count * sizeof *values, NULL, err);
    if (*err != CL_SUCCESS) return NULL;
    *err = clEnqueueWriteBuffer(queue, buf, CL_TRUE, 0, count * sizeof *values, values, 0, NULL,
                                NULL);
    if (*err != CL_SUCCESS) {
        clReleaseMemObject(buf);
        return NULL;
    }
    return buf;
}

float *tool_read_floats(cl_command_queue queue, cl_mem buf, facl_dtype dtype, size_t offset,
                        size_t count, cl_int *err)
{
    size_t elt = facl_dtype_size(dtype);
    unsigned char *raw = malloc(count * elt + 1);
    float *out = malloc(count * sizeof *out + 1);
    if (!raw || !out) {
        *err = CL_OUT_OF_HOST_MEMORY;
        free(raw);
        free(out);
        return NULL;
    }
    *err = clEnqueueReadBuffer(queue, buf, CL_TRUE, offset * elt, count * elt, raw, 0, NULL, NULL);
    if (*err == CL_SUCCESS)
        for (size_t i = 0; i < count; ++i) out[i] = testkit_load(dtype, raw, i);
    free(raw);
    if (*err != CL_SUCCESS) {
        free(out);
        return NULL;
    }
    return out;
}

const char *tool_dtype_name(facl_dtype dtype)
{
    switch (dtype) {
    case FACL_DTYPE_F32: return "fp32";
    case FACL_DTYPE_F16: return "fp16";
    case FACL_DTYPE_BF16: return "bf16";
    case FACL_DTYPE_I32: return "int32";
    }
    return "?";
}

int tool_dtype_parse(const char *name, facl_dtype *out)
{
    static const struct {
        const char *name;
        facl_dtype dtype;
    } names[] = {{"fp32", FACL_DTYPE_F32}, {"f32", FACL_DTYPE_F32}, {"float32", FACL_DTYPE_F32},
                 {"fp16", FACL_DTYPE_F16}, {"f16", FACL_DTYPE_F16}, {"float16", FACL_DTYPE_F16},
                 {"bf16", FACL_DTYPE_BF16}, {"bfloat16", FACL_DTYPE_BF16}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i) {
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].dtype;
            return 0;
        }
    }
    return -1;
}
