/* Placeholder: validation of facl_fwd_kvcache. */
#include "cache_problem.h"
#include "status.h"

facl_status facl_validate_kvcache(const facl_context *ctx, cl_command_queue queue,
                                  const facl_tensor *q, const facl_tensor *k_cache,
                                  const facl_tensor *v_cache, const facl_kvcache_args *cache,
                                  const facl_tensor *out, const facl_tensor *lse,
                                  const facl_attn_options *opts, cl_uint num_wait_events,
                                  const cl_event *wait_events, facl_cache_problem *problem)
{
    (void)ctx, (void)queue, (void)q, (void)k_cache, (void)v_cache, (void)cache, (void)out;
    (void)lse, (void)opts, (void)num_wait_events, (void)wait_events, (void)problem;
    return facl_fail(FACL_ERROR_UNSUPPORTED, "facl_fwd_kvcache: not yet");
}
