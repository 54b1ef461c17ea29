/* Per-tensor and per-call argument checks, shared by every call family. */
#include "tensor_check.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "context.h"
#include "status.h"

size_t facl_dtype_size(facl_dtype dtype)
{
    switch (dtype) {
    case FACL_DTYPE_F32: return 4;
    case FACL_DTYPE_F16: return 2;
    case FACL_DTYPE_BF16: return 2;
    case FACL_DTYPE_I32: return 4;
    }
    return 0;
}

const char *facl_dtype_name(facl_dtype dtype)
{
    switch (dtype) {
    case FACL_DTYPE_F32: return "fp32";
    case FACL_DTYPE_F16: return "fp16";
    case FACL_DTYPE_BF16: return "bf16";
    case FACL_DTYPE_I32: return "int32";
    }
    return NULL;
}

const char *facl_dtype_text(int32_t dtype, char *buf, size_t cap)
{
    const char *name = facl_dtype_name((facl_dtype)dtype);
    if (name) return name;
    snprintf(buf, cap, "%d (unknown)", (int)dtype);
    return buf;
}

/* "fp32, fp16 or bf16": the dtypes of a mask, for messages. */
static void mask_text(unsigned mask, char *buf, size_t cap)
{
    const int32_t all[] = {FACL_DTYPE_F32, FACL_DTYPE_F16, FACL_DTYPE_BF16, FACL_DTYPE_I32};
    int left = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) left += (mask >> all[i]) & 1u;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) {
        if (!((mask >> all[i]) & 1u)) continue;
        size_t used = strlen(buf);
        --left;
        snprintf(buf + used, cap - used, "%s%s", facl_dtype_name((facl_dtype)all[i]),
                 left > 1 ? ", " : left == 1 ? " or " : "");
    }
}

facl_tensor facl_tensor_contiguous(cl_mem buffer, facl_dtype dtype, int ndim, const int64_t *shape)
{
    facl_tensor t = {0};
    t.buffer = buffer;
    t.dtype = dtype;
    t.ndim = ndim;
    if (ndim < 1 || ndim > FACL_MAX_DIMS || !shape) {
        t.ndim = 0; /* rejected as an invalid shape when used */
        return t;
    }
    int64_t stride = 1;
    for (int d = ndim - 1; d >= 0; --d) {
        t.shape[d] = shape[d];
        t.stride[d] = stride;
        stride *= shape[d];
    }
    return t;
}

/* Index one past the last element the view touches; 0 for an empty view. */
static facl_status view_extent(const char *name, const facl_tensor *t, uint64_t *end_elements)
{
    uint64_t last = (uint64_t)t->offset;
    for (int d = 0; d < t->ndim; ++d) {
        if (t->shape[d] == 0) {
            *end_elements = 0;
            return FACL_SUCCESS;
        }
        uint64_t reach;
        if (__builtin_mul_overflow((uint64_t)(t->shape[d] - 1), (uint64_t)t->stride[d], &reach) ||
            __builtin_add_overflow(last, reach, &last))
            return facl_fail(FACL_ERROR_SIZE_OVERFLOW, "%s: extent of dimension %d overflows", name, d);
    }
    if (__builtin_add_overflow(last, 1u, end_elements))
        return facl_fail(FACL_ERROR_SIZE_OVERFLOW, "%s: extent overflows", name);
    return FACL_SUCCESS;
}

facl_status facl_check_tensor(const facl_context *ctx, const char *name, const facl_tensor *t,
                              int ndim, unsigned dtype_mask)
{
    if (!t) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "%s: NULL tensor", name);
    if (!t->buffer) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "%s: NULL buffer", name);
    if ((unsigned)t->dtype > FACL_DTYPE_I32 || !(dtype_mask & (1u << t->dtype))) {
        char given[24], accepted[48];
        mask_text(dtype_mask, accepted, sizeof accepted);
        return facl_fail(FACL_ERROR_INVALID_DTYPE, "%s: dtype %s is not accepted here (%s)", name,
                         facl_dtype_text(t->dtype, given, sizeof given), accepted);
    }
    if (t->ndim != ndim)
        return facl_fail(FACL_ERROR_INVALID_SHAPE, "%s: expected %d dimensions, got %d", name, ndim,
                         t->ndim);
    for (int d = 0; d < ndim; ++d) {
        if (t->shape[d] < 0)
            return facl_fail(FACL_ERROR_INVALID_SHAPE, "%s: negative size %lld in dimension %d",
                             name, (long long)t->shape[d], d);
        if (t->stride[d] < 0)
            return facl_fail(FACL_ERROR_INVALID_STRIDE, "%s: negative stride in dimension %d", name, d);
    }
    if (t->stride[ndim - 1] != 1)
        return facl_fail(FACL_ERROR_INVALID_STRIDE, "%s: the last dimension must have stride 1, got %lld",
                         name, (long long)t->stride[ndim - 1]);
    uint64_t end = 0, bytes = 0;
    facl_status st = view_extent(name, t, &end);
    if (st != FACL_SUCCESS) return st;
    if (__builtin_mul_overflow(end, (uint64_t)facl_dtype_size(t->dtype), &bytes))
        return facl_fail(FACL_ERROR_SIZE_OVERFLOW, "%s: byte extent overflows", name);
    size_t size = 0;
    cl_int err = clGetMemObjectInfo(t->buffer, CL_MEM_SIZE, sizeof size, &size, NULL);
    if (err != CL_SUCCESS)
        return facl_fail((facl_status)err, "%s: not a valid cl_mem (clGetMemObjectInfo: %s)", name,
                         facl_status_string((facl_status)err));
    if (bytes > size)
        return facl_fail(FACL_ERROR_BUFFER_TOO_SMALL, "%s: the view reaches byte %llu of a %zu-byte buffer",
                         name, (unsigned long long)bytes, size);
    cl_context owner = NULL;
    err = clGetMemObjectInfo(t->buffer, CL_MEM_CONTEXT, sizeof owner, &owner, NULL);
    if (err == CL_SUCCESS && owner != ctx->cl_ctx)
        return facl_fail(FACL_ERROR_INVALID_CONTEXT, "%s: buffer belongs to another cl_context", name);
    return FACL_SUCCESS;
}

facl_status facl_check_dim(const char *name, const facl_tensor *t, int dim, int64_t expected,
                           const char *what)
{
    if (t->shape[dim] == expected) return FACL_SUCCESS;
    return facl_fail(FACL_ERROR_INVALID_SHAPE, "%s: dimension %d is %lld, expected %lld (%s)", name,
                     dim, (long long)t->shape[dim], (long long)expected, what);
}

facl_status facl_check_queue(const facl_context *ctx, cl_command_queue queue)
{
    if (!queue) return FACL_SUCCESS; /* the context's own */
    cl_context owner = NULL;
    cl_int err = clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT, sizeof owner, &owner, NULL);
    if (err != CL_SUCCESS) return facl_fail_cl(err, "queue: clGetCommandQueueInfo");
    if (owner != ctx->cl_ctx)
        return facl_fail(FACL_ERROR_INVALID_CONTEXT, "queue: belongs to another cl_context");
    /* A wrapped cl_context may hold several devices; the programs are built for one. */
    cl_device_id device = NULL;
    err = clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, sizeof device, &device, NULL);
    if (err != CL_SUCCESS) return facl_fail_cl(err, "queue: clGetCommandQueueInfo");
    if (device != ctx->device)
        return facl_fail(FACL_ERROR_INVALID_CONTEXT,
                         "queue: belongs to another device of the cl_context than the facl "
                         "context's");
    return FACL_SUCCESS;
}

facl_status facl_check_fits_int(const char *name, int64_t value)
{
    if (value <= INT32_MAX) return FACL_SUCCESS;
    return facl_fail(FACL_ERROR_INVALID_SHAPE, "%s: %lld exceeds the supported 2^31 - 1", name,
                     (long long)value);
}

/* View `index` of the packed dimension `dim` of `packed`, with that dimension removed. */
facl_tensor facl_tensor_unpack(const facl_tensor *packed, int dim, int64_t index)
{
    facl_tensor t = *packed;
    t.offset = packed->offset + (size_t)(index * packed->stride[dim]);
    t.ndim = packed->ndim - 1;
    for (int d = dim; d < t.ndim; ++d) {
        t.shape[d] = packed->shape[d + 1];
        t.stride[d] = packed->stride[d + 1];
    }
    return t;
}

/* The packed tensor itself must be a valid view with `count` entries in dimension `dim`. */
facl_status facl_check_packed(const facl_context *ctx, const char *name, const facl_tensor *t,
                              int ndim, int dim, int64_t count)
{
    facl_status st = facl_check_tensor(ctx, name, t, ndim, FACL_FLOAT_DTYPES);
    if (st == FACL_SUCCESS) st = facl_check_dim(name, t, dim, count, "the packing dimension");
    return st;
}
