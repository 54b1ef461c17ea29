/* Argument validation of facl_merge: everything checked before anything is enqueued. */
#include <string.h>

#include "context.h"
#include "merge_problem.h"
#include "status.h"
#include "tensor_check.h"

facl_status facl_validate_merge(const facl_context *ctx, cl_command_queue queue,
                                const facl_tensor *parts, const facl_tensor *lse_parts,
                                const facl_tensor *out, const facl_tensor *lse,
                                facl_merge_problem *p)
{
    memset(p, 0, sizeof *p);
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    facl_status st = facl_check_queue(ctx, queue);
    if (st != FACL_SUCCESS) return st;
    if (!out) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "out: NULL");
    /* out: (batch, seqlen, heads, d) or varlen (total, heads, d); parts one more dim. */
    const int rank = out->ndim;
    if (rank != 3 && rank != 4)
        return facl_fail(FACL_ERROR_INVALID_SHAPE,
                         "out: must be (batch, seqlen, heads, d) or (total, heads, d), got %d "
                         "dimensions",
                         (int)rank);
    const int varlen = rank == 3;
    if ((st = facl_check_tensor(ctx, "out", out, rank, FACL_FLOAT_DTYPES)) ||
        (st = facl_check_tensor(ctx, "out_parts", parts, rank + 1, FACL_FLOAT_DTYPES)) ||
        (st = facl_check_tensor(ctx, "lse_parts", lse_parts, rank, 1u << FACL_DTYPE_F32)))
        return st;
    const int64_t splits = parts->shape[0];
    if (splits < 1)
        return facl_fail(FACL_ERROR_INVALID_SHAPE, "out_parts: needs at least one part, got %lld",
                         (long long)splits);
    for (int d = 0; d < rank; ++d)
        if ((st = facl_check_dim("out_parts", parts, d + 1, out->shape[d],
                                 "out_parts[s] must be shaped like out")))
            return st;
    const int64_t d = out->shape[rank - 1], heads = out->shape[rank - 2];
    const int64_t batch = varlen ? 1 : out->shape[0], rows = out->shape[rank - 3];
    if (d < 1 || d > FACL_MAX_HEAD_DIM)
        return facl_fail(FACL_ERROR_INVALID_HEAD_DIM, "out: head_dim %lld is outside 1..%d",
                         (long long)d, FACL_MAX_HEAD_DIM);
    /* lse_parts: (splits, batch, heads, seqlen) or varlen (splits, heads, total). */
    if ((st = facl_check_dim("lse_parts", lse_parts, 0, splits, "the number of parts")) ||
        (!varlen && (st = facl_check_dim("lse_parts", lse_parts, 1, batch, "batch"))) ||
        (st = facl_check_dim("lse_parts", lse_parts, rank - 2, heads, "heads")) ||
        (st = facl_check_dim("lse_parts", lse_parts, rank - 1, rows, "rows")))
        return st;
    if (lse) {
        if ((st = facl_check_tensor(ctx, "lse", lse, rank - 1, 1u << FACL_DTYPE_F32)) ||
            (!varlen && (st = facl_check_dim("lse", lse, 0, batch, "batch"))) ||
            (st = facl_check_dim("lse", lse, rank - 3, heads, "heads")) ||
            (st = facl_check_dim("lse", lse, rank - 2, rows, "rows")))
            return st;
    }
    if ((st = facl_check_fits_int("out_parts: parts", splits)) ||
        (st = facl_check_fits_int("out: batch", batch)) ||
        (st = facl_check_fits_int("out: rows", rows)) ||
        (st = facl_check_fits_int("out: heads", heads)))
        return st;
    p->part_dtype = (facl_dtype)parts->dtype;
    p->out_dtype = (facl_dtype)out->dtype;
    p->head_dim = (int)d;
    p->batch = (int)batch;
    p->rows = (int)rows;
    p->heads = (int)heads;
    p->parts = parts->buffer;
    p->lse_parts = lse_parts->buffer;
    p->out = out->buffer;
    p->lse = lse ? lse->buffer : NULL;
    facl_merge_params *k = &p->params;
    const int o = varlen ? -1 : 0; /* the batch dimension of out, if any */
    k->part_off = (int64_t)parts->offset;
    k->part_ss = parts->stride[0];
    k->part_sb = varlen ? 0 : parts->stride[1];
    k->part_sr = parts->stride[o + 2];
    k->part_sh = parts->stride[o + 3];
    k->plse_off = (int64_t)lse_parts->offset;
    k->plse_ss = lse_parts->stride[0];
    k->plse_sb = varlen ? 0 : lse_parts->stride[1];
    k->plse_sh = lse_parts->stride[o + 2];
    k->plse_sr = lse_parts->stride[o + 3];
    k->o_off = (int64_t)out->offset;
    k->o_sb = varlen ? 0 : out->stride[0];
    k->o_sr = out->stride[o + 1];
    k->o_sh = out->stride[o + 2];
    if (lse) {
        k->lse_off = (int64_t)lse->offset;
        k->lse_sb = varlen ? 0 : lse->stride[0];
        k->lse_sh = lse->stride[o + 1];
        k->lse_sr = lse->stride[o + 2];
    }
    k->splits = (int32_t)splits;
    k->rows = (int32_t)rows;
    return FACL_SUCCESS;
}
