/* Public entry of facl_fwd_kvcache: validation, then the launch. */
#include "cache_problem.h"
#include "status.h"

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
