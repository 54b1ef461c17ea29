/* Enqueue the forward kernels of a validated problem. Kernel objects are made per
 * call because clSetKernelArg on a shared kernel is not thread-safe. */
#include "context.h"
#include "fwd_problem.h"
#include "plan.h"
#include "status.h"

typedef struct arg_list {
    cl_kernel kernel;
    cl_uint index;
    cl_int err;
} arg_list;

static void arg(arg_list *a, size_t size, const void *value)
{
    if (a->err == CL_SUCCESS) a->err = clSetKernelArg(a->kernel, a->index, size, value);
    a->index++;
}
static void arg_mem(arg_list *a, cl_mem m) { arg(a, sizeof m, &m); }
static void arg_long(arg_list *a, int64_t v) { cl_long x = v; arg(a, sizeof x, &x); }
static void arg_int(arg_list *a, int v) { cl_int x = v; arg(a, sizeof x, &x); }
static void arg_uint(arg_list *a, uint32_t v) { cl_uint x = v; arg(a, sizeof x, &x); }
static void arg_float(arg_list *a, float v) { cl_float x = v; arg(a, sizeof x, &x); }

/* (buffer, offset, batch stride, row stride, head stride), the order of q, k, v, out. */
static void arg_rows(arg_list *a, const facl_view *v)
{
    arg_mem(a, v->buffer);
    arg_long(a, v->offset);
    arg_long(a, v->sb);
    arg_long(a, v->ss);
    arg_long(a, v->sh);
}

/* (buffer, offset, batch stride, head stride, row stride): lse and probs order. */
static void arg_heads_first(arg_list *a, const facl_view *v)
{
    arg_mem(a, v->buffer);
    arg_long(a, v->offset);
    arg_long(a, v->sb);
    arg_long(a, v->sh);
    arg_long(a, v->ss);
}

/* Arguments shared by attn_fwd and attn_probs, from the prefix sums to the ALiBi view. */
static void arg_sequence_and_scores(arg_list *a, const facl_fwd_problem *p)
{
    arg_mem(a, p->cu_q);
    arg_long(a, p->cu_q_off);
    arg_mem(a, p->cu_k);
    arg_long(a, p->cu_k_off);
    arg_int(a, p->seqlen_q);
    arg_int(a, p->seqlen_k);
    arg_int(a, p->total_q);
    arg_int(a, p->total_k);
    arg_int(a, p->heads_q);
    arg_int(a, p->heads_q / p->heads_kv);
    arg_float(a, p->scale);
    arg_float(a, p->softcap);
    arg_int(a, p->window_left);
    arg_int(a, p->window_right);
    arg_int(a, p->align_top_left);
    arg_mem(a, p->alibi.buffer);
    arg_long(a, p->alibi.offset);
    arg_long(a, p->alibi.sb);
    arg_long(a, p->alibi.sh);
}

static facl_status make_kernel(facl_context *ctx, const char *name, const char *options,
                               cl_kernel *kernel)
{
    cl_program program;
    facl_status st = facl_program_get(&ctx->programs, ctx->cl_ctx, ctx->device, &ctx->profile,
                                      name, options, &program);
    if (st != FACL_SUCCESS) return st;
    cl_int err;
    *kernel = clCreateKernel(program, name, &err);
    return err == CL_SUCCESS ? FACL_SUCCESS : facl_fail_cl(err, name);
}

static facl_status enqueue_attn_fwd(facl_context *ctx, cl_command_queue queue,
                                    const facl_fwd_problem *p, const facl_view *lse,
                                    cl_uint num_wait, const cl_event *wait, cl_event *done)
{
    facl_fwd_plan plan;
    facl_plan_fwd_program(p, &ctx->profile, &plan);
    cl_kernel kernel;
    facl_status st = make_kernel(ctx, plan.kernel, plan.options, &kernel);
    if (st != FACL_SUCCESS) return st;
    size_t kernel_wg = 0;
    cl_int err = clGetKernelWorkGroupInfo(kernel, ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                          sizeof kernel_wg, &kernel_wg, NULL);
    if (err != CL_SUCCESS) {
        clReleaseKernel(kernel);
        return facl_fail_cl(err, "clGetKernelWorkGroupInfo");
    }
    if (plan.fixed_group && kernel_wg < plan.fixed_group) {
        clReleaseKernel(kernel);
        return facl_fail(FACL_ERROR_UNSUPPORTED,
                         "%s needs work-groups of %zu work-items; the device allows %zu for it",
                         plan.kernel, plan.fixed_group, kernel_wg);
    }
    const size_t group = facl_plan_fwd_group_size(&plan, p, &ctx->profile, kernel_wg);
    arg_list a = {kernel, 0, CL_SUCCESS};
    arg_rows(&a, &p->q);
    arg_rows(&a, &p->k);
    arg_rows(&a, &p->v);
    arg_rows(&a, &p->out);
    arg_heads_first(&a, lse);
    arg_sequence_and_scores(&a, p);
    arg_uint(&a, p->drop_threshold);
    arg_float(&a, p->drop_scale);
    arg_uint(&a, (uint32_t)p->seed);
    arg_uint(&a, (uint32_t)(p->seed >> 32));
    cl_ulong offset = p->offset;
    arg(&a, sizeof offset, &offset);
    if (a.err != CL_SUCCESS) {
        clReleaseKernel(kernel);
        return facl_fail_cl(a.err, "clSetKernelArg");
    }
    /* Each work-group covers group / lanes * rows_per_item query rows of one (sequence, head). */
    const size_t rows_per_group = group / (size_t)plan.lanes * (size_t)plan.rows_per_item;
    const size_t blocks = ((size_t)p->seqlen_q + rows_per_group - 1) / rows_per_group;
    const size_t global[3] = {blocks * group, (size_t)p->heads_q, (size_t)p->batch};
    const size_t local[3] = {group, 1, 1};
    err = clEnqueueNDRangeKernel(queue, kernel, 3, NULL, global, local, num_wait, wait, done);
    clReleaseKernel(kernel);
    return err == CL_SUCCESS ? FACL_SUCCESS : facl_fail_cl(err, "clEnqueueNDRangeKernel");
}

static facl_status enqueue_attn_probs(facl_context *ctx, cl_command_queue queue,
                                      const facl_fwd_problem *p, const facl_view *lse,
                                      cl_uint num_wait, const cl_event *wait, cl_event *done)
{
    char options[256];
    facl_plan_fwd_feature_options(p, options, sizeof options);
    cl_kernel kernel;
    facl_status st = make_kernel(ctx, "attn_probs", options, &kernel);
    if (st != FACL_SUCCESS) return st;
    arg_list a = {kernel, 0, CL_SUCCESS};
    arg_rows(&a, &p->q);
    arg_rows(&a, &p->k);
    arg_heads_first(&a, lse);
    arg_sequence_and_scores(&a, p);
    arg_uint(&a, p->drop_threshold);
    arg_uint(&a, (uint32_t)p->seed);
    arg_uint(&a, (uint32_t)(p->seed >> 32));
    cl_ulong offset = p->offset;
    arg(&a, sizeof offset, &offset);
    arg_heads_first(&a, &p->probs);
    arg_int(&a, p->seqlen_q);
    arg_int(&a, p->seqlen_k);
    cl_int err = a.err;
    if (err == CL_SUCCESS) {
        const size_t global[3] = {(size_t)p->seqlen_k, (size_t)p->seqlen_q,
                                  (size_t)p->batch * (size_t)p->heads_q};
        err = clEnqueueNDRangeKernel(queue, kernel, 3, NULL, global, NULL, num_wait, wait, done);
    }
    clReleaseKernel(kernel);
    return err == CL_SUCCESS ? FACL_SUCCESS : facl_fail_cl(err, "enqueueing attn_probs");
}

/* attn_probs needs the lse; when the caller did not ask for it, keep it in a buffer
 * of our own, released once enqueued (OpenCL keeps it alive until the kernels end). */
static facl_status scratch_lse(facl_context *ctx, const facl_fwd_problem *p, facl_view *lse)
{
    const size_t rows = p->varlen ? (size_t)p->total_q : (size_t)p->batch * (size_t)p->seqlen_q;
    cl_int err;
    lse->buffer = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE,
                                 sizeof(float) * (size_t)p->heads_q * (rows ? rows : 1), NULL, &err);
    if (err != CL_SUCCESS) return facl_fail_cl(err, "allocating the lse for attn_probs");
    lse->offset = 0;
    lse->ss = 1;
    lse->sh = (int64_t)(p->varlen ? (size_t)p->total_q : (size_t)p->seqlen_q);
    lse->sb = p->varlen ? 0 : lse->sh * p->heads_q;
    return FACL_SUCCESS;
}

facl_status facl_launch_fwd(facl_context *ctx, cl_command_queue queue, const facl_fwd_problem *p,
                            cl_uint num_wait, const cl_event *wait, cl_event *event)
{
    if (!queue) queue = ctx->queue;
    if (p->batch == 0 || p->seqlen_q == 0) {
        /* Nothing to compute; still honour the wait list and hand back an event. */
        cl_int err = clEnqueueMarkerWithWaitList(queue, num_wait, wait, event);
        return err == CL_SUCCESS ? FACL_SUCCESS : facl_fail_cl(err, "clEnqueueMarkerWithWaitList");
    }
    const int want_probs = p->probs.buffer != NULL;
    facl_view lse = p->lse;
    facl_status st = FACL_SUCCESS;
    if (want_probs && !lse.buffer) st = scratch_lse(ctx, p, &lse);
    cl_event fwd_done = NULL;
    if (st == FACL_SUCCESS)
        st = enqueue_attn_fwd(ctx, queue, p, &lse, num_wait, wait,
                              want_probs || event ? &fwd_done : NULL);
    if (st == FACL_SUCCESS && want_probs) {
        cl_event probs_done = NULL;
        st = enqueue_attn_probs(ctx, queue, p, &lse, 1, &fwd_done, event ? &probs_done : NULL);
        clReleaseEvent(fwd_done);
        fwd_done = probs_done;
    }
    if (st == FACL_SUCCESS && event) *event = fwd_done;
    else if (fwd_done) clReleaseEvent(fwd_done);
    if (lse.buffer && !p->lse.buffer) clReleaseMemObject(lse.buffer);
    return st;
}
