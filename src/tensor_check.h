/* Checks of one tensor view against what a call expects of it. */
#ifndef FACL_TENSOR_CHECK_H
#define FACL_TENSOR_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "facl.h"

/* dtype_mask: bit (1 << dtype) set for each accepted dtype. */
#define FACL_FLOAT_DTYPES ((1u << FACL_DTYPE_F32) | (1u << FACL_DTYPE_F16) | (1u << FACL_DTYPE_BF16))

/* A dtype as messages print it: its name ("fp16"), or "<n> (unknown)" written into buf
 * (24 bytes are enough). */
const char *facl_dtype_text(int32_t dtype, char *buf, size_t cap);

/* Null handle, dtype, rank, negative sizes, strides (last 1, others >= 0), byte extent
 * (overflow-checked) within the buffer's CL_MEM_SIZE, and the buffer's context. */
facl_status facl_check_tensor(const facl_context *ctx, const char *name, const facl_tensor *t,
                              int ndim, unsigned dtype_mask);

/* Fail with FACL_ERROR_INVALID_SHAPE unless t->shape[dim] == expected. */
facl_status facl_check_dim(const char *name, const facl_tensor *t, int dim, int64_t expected,
                           const char *what);

/* NULL (the context's queue), or a queue of the context's cl_context and device; else
 * FACL_ERROR_INVALID_CONTEXT naming "queue". */
facl_status facl_check_queue(const facl_context *ctx, cl_command_queue queue);

/* FACL_ERROR_INVALID_SHAPE naming `name` unless value fits a 32-bit int. */
facl_status facl_check_fits_int(const char *name, int64_t value);

/* View `index` of the packed dimension `dim` of `packed`, with that dimension removed
 * (qkv and kv packed calls; no copy). */
facl_tensor facl_tensor_unpack(const facl_tensor *packed, int dim, int64_t index);

/* The packed tensor itself must be a valid float view of `ndim` dimensions with `count`
 * entries in dimension `dim`. */
facl_status facl_check_packed(const facl_context *ctx, const char *name, const facl_tensor *t,
                              int ndim, int dim, int64_t count);

#endif
