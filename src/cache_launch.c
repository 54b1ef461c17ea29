/* Placeholder until the cache kernels land. */
#include "cache_problem.h"
#include "status.h"

facl_status facl_launch_cache(facl_context *ctx, cl_command_queue queue,
                              const facl_cache_problem *problem, cl_uint num_wait_events,
                              const cl_event *wait_events, cl_event *event)
{
    (void)ctx, (void)queue, (void)problem, (void)num_wait_events, (void)wait_events, (void)event;
    return facl_fail(FACL_ERROR_UNSUPPORTED, "KV-cache kernels: not yet built");
}
