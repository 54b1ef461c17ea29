/* Enqueue facl_merge: one program per (part dtype, out dtype, head dim); its kernel object
 * is the context's, shared by its threads, its arguments set under the enqueue lock
 * (fwd_launch.c says why). */
#include <stdio.h>

#include "context.h"
#include "merge_problem.h"
#include "status.h"

facl_status facl_launch_merge(facl_context *ctx, cl_command_queue queue,
                              const facl_merge_problem *p, cl_uint num_wait,
                              const cl_event *wait, cl_event *event)
{
    if (!queue) queue = ctx->queue;
    if (p->batch == 0 || p->rows == 0 || p->heads == 0) {
        facl_enqueue_lock(ctx);
        cl_int err = clEnqueueMarkerWithWaitList(queue, num_wait, wait, event);
        facl_enqueue_unlock(ctx);
        return err == CL_SUCCESS ? FACL_SUCCESS : facl_fail_cl(err, "clEnqueueMarkerWithWaitList");
    }
    char options[192];
    snprintf(options, sizeof options,
             "-cl-std=CL1.2 -DFACL_MERGE_PARAMS_SIZE=%zu -DFACL_DTYPE=%d -DPART_DTYPE=%d "
             "-DHEAD_DIM=%d",
             sizeof(facl_merge_params), (int)p->out_dtype, (int)p->part_dtype, p->head_dim);
    cl_program program;
    facl_status st = facl_program_get(&ctx->programs, ctx->cl_ctx, ctx->device, &ctx->profile,
                                      "attn_merge", options, &program);
    if (st != FACL_SUCCESS) return st;
    cl_kernel kernel; /* the context's, its arguments set under the enqueue lock */
    st = facl_program_kernel(&ctx->programs, program, "attn_merge", FACL_MERGE_KERNEL_NUM_ARGS,
                             &kernel);
    if (st != FACL_SUCCESS) return st;
    /* one work-item per output element: attn_merge.cl splits dimension 0 into (row, d) */
    const size_t global[3] = {(size_t)p->rows * (size_t)p->head_dim, (size_t)p->heads,
                              (size_t)p->batch};
    const cl_mem buffers[4] = {p->parts, p->lse_parts, p->out, p->lse};
    cl_int err = CL_SUCCESS;
    facl_enqueue_lock(ctx);
    for (cl_uint i = 0; i < 4 && err == CL_SUCCESS; ++i)
        err = clSetKernelArg(kernel, i, sizeof(cl_mem), &buffers[i]);
    if (err == CL_SUCCESS) err = clSetKernelArg(kernel, 4, sizeof p->params, &p->params);
    const char *failed = err != CL_SUCCESS ? "clSetKernelArg(attn_merge)" : NULL;
    if (!failed) {
        err = clEnqueueNDRangeKernel(queue, kernel, 3, NULL, global, NULL, num_wait, wait, event);
        if (err != CL_SUCCESS) failed = "enqueueing attn_merge";
    }
    facl_enqueue_unlock(ctx);
    return failed ? facl_fail_cl(err, failed) : FACL_SUCCESS;
}
