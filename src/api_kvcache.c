/* Public entry of facl_fwd_kvcache: validation, then the launch. */
#include "cache_plan.h"
#include "cache_problem.h"
#include "status.h"

#include <stdint.h>

facl_status facl_fwd_kvcache(facl_context *ctx, cl_command_queue queue, const facl_tensor *q,
                             const facl_tensor *k_cache, const facl_tensor *v_cache,
                             const facl_kvcache_args *cache, const facl_tensor *out,
                             const facl_tensor *lse, const facl_attn_options *opts,
                             cl_uint num_wait, const cl_event *wait, cl_event *event)
{
    facl_error_clear();
    facl_cache_problem p;
    facl_status st = facl_validate_kvcache(ctx, queue, q, k_cache, v_cache, cache, out, lse, opts,
                                           num_wait, wait, &p);
    return st != FACL_SUCCESS ? st : facl_launch_cache(ctx, queue, &p, num_wait, wait, event);
}

facl_status facl_fwd_kvcache_workspace_size(const facl_context *ctx, int64_t rows_q,
                                            int64_t heads_q, int64_t head_dim,
                                            int32_t num_splits, uint64_t *bytes)
{
    facl_error_clear();
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    if (!bytes) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "bytes: NULL");
    if (rows_q < 0 || rows_q > INT32_MAX)
        return facl_fail(FACL_ERROR_INVALID_SHAPE, "rows_q: %lld, expected 0 to %d",
                         (long long)rows_q, INT32_MAX);
    if (heads_q < 1 || heads_q > INT32_MAX)
        return facl_fail(FACL_ERROR_INVALID_SHAPE, "heads_q: %lld, expected 1 to %d",
                         (long long)heads_q, INT32_MAX);
    if (head_dim < 1 || head_dim > FACL_MAX_HEAD_DIM)
        return facl_fail(FACL_ERROR_INVALID_HEAD_DIM, "head_dim: %lld, expected 1 to %d",
                         (long long)head_dim, FACL_MAX_HEAD_DIM);
    if (num_splits < 0 || num_splits > FACL_CACHE_MAX_SPLITS)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "num_splits: %d, expected 0 to %d",
                         (int)num_splits, FACL_CACHE_MAX_SPLITS);
    const int splits = num_splits > 0 ? num_splits : FACL_CACHE_MAX_AUTO_SPLITS;
    *bytes = 4u * facl_cache_workspace_floats((uint64_t)rows_q, (uint64_t)heads_q,
                                              (uint64_t)head_dim, splits);
    return FACL_SUCCESS;
}
