/* Public entry of facl_merge. */
#include "context.h"
#include "merge_problem.h"
#include "status.h"

facl_status facl_merge(facl_context *ctx, cl_command_queue queue, const facl_tensor *out_parts,
                       const facl_tensor *lse_parts, const facl_tensor *out,
                       const facl_tensor *lse, cl_uint num_wait, const cl_event *wait,
                       cl_event *event)
{
    facl_error_clear();
    facl_merge_problem p;
    facl_status st = facl_validate_merge(ctx, queue, out_parts, lse_parts, out, lse, &p);
    return st != FACL_SUCCESS ? st : facl_launch_merge(ctx, queue, &p, num_wait, wait, event);
}
