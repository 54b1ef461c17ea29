/* Enqueue the backward kernels of a validated problem: attn_bwd_dot (D into the
 * workspace), then the dq and the dk/dv kernels of the plan (attn_bwd.cl's or
 * attn_bwd_mma.cl's), or with atomic dq (plan->dq_atomic) the dk/dv kernel that also adds
 * dq into the workspace's accumulator (which attn_bwd_dot zeroes) and the kernel that
 * writes dq from it; each waits on the one before (so an out-of-order queue keeps the
 * order too). As in fwd_launch.c, everything that can
 * fail (the workspace's size, the program, the kernel objects, the arguments) is
 * checked or obtained before the first enqueue, so a refused call leaves nothing on the
 * queue. The kernel objects are the context's, shared by its threads; their arguments
 * are set under the enqueue lock, all three kernels' before the first enqueue
 * (fwd_launch.c says why). */
#include "bwd_params.h"
#include "bwd_plan.h"
#include "bwd_problem.h"
#include "context.h"
#include "kernel_path.h"
#include "kernel_params.h"
#include "status.h"

#include <pthread.h>
#include <string.h>

void facl_bwd_params_fill(const facl_bwd_problem *p, const facl_view *delta, facl_bwd_params *g)
{
    memset(g, 0, sizeof *g);
    g->do_off = p->dout.offset, g->do_sb = p->dout.sb, g->do_ss = p->dout.ss, g->do_sh = p->dout.sh;
    g->dq_off = p->dq.offset, g->dq_sb = p->dq.sb, g->dq_ss = p->dq.ss, g->dq_sh = p->dq.sh;
    g->dk_off = p->dk.offset, g->dk_sb = p->dk.sb, g->dk_ss = p->dk.ss, g->dk_sh = p->dk.sh;
    g->dv_off = p->dv.offset, g->dv_sb = p->dv.sb, g->dv_ss = p->dv.ss, g->dv_sh = p->dv.sh;
    g->delta_off = delta->offset, g->delta_sb = delta->sb, g->delta_sh = delta->sh;
    g->delta_ss = delta->ss;
}

/* What one call enqueues, all obtained before the first enqueue; the kernels are the
 * context's, their arguments set under the enqueue lock (bind_all). */
typedef struct bwd_launch {
    cl_kernel kernels[3]; /* plan->kernels */
    size_t global[3][3], local[3][3];
    facl_view delta;
    cl_mem workspace;     /* the caller's, or own_workspace */
    cl_mem own_workspace; /* allocated here when the caller passed none */
    facl_kernel_params params;
    facl_bwd_params bparams;
} bwd_launch;

static void release_launch(bwd_launch *l)
{
    /* OpenCL keeps the buffer alive until the kernels that use it end. */
    if (l->own_workspace) clReleaseMemObject(l->own_workspace);
}

static facl_status get_kernels(facl_context *ctx, const facl_bwd_plan *plan, bwd_launch *l)
{
    cl_program program;
    facl_status st = facl_program_get(&ctx->programs, ctx->cl_ctx, ctx->device, &ctx->profile,
                                      plan->program, plan->options, &program);
    for (int i = 0; i < 3 && st == FACL_SUCCESS; ++i)
        st = facl_program_kernel(&ctx->programs, program, plan->kernels[i],
                                 FACL_BWD_KERNEL_NUM_ARGS, &l->kernels[i]);
    return st;
}

static cl_int bind(cl_kernel kernel, const facl_bwd_problem *bp, const cl_mem delta,
                   const facl_kernel_params *params, const facl_bwd_params *bparams)
{
    const facl_fwd_problem *p = &bp->f;
    const cl_mem buffers[] = {p->q.buffer,    p->k.buffer,     p->v.buffer,  p->out.buffer,
                              p->lse.buffer,  bp->dout.buffer, bp->dq.buffer, bp->dk.buffer,
                              bp->dv.buffer,  delta,           p->cu_q,      p->cu_k,
                              p->seqused,     p->alibi.buffer};
    const cl_uint n = sizeof buffers / sizeof buffers[0];
    cl_int err = CL_SUCCESS;
    for (cl_uint i = 0; i < n && err == CL_SUCCESS; ++i)
        err = clSetKernelArg(kernel, i, sizeof(cl_mem), &buffers[i]);
    if (err == CL_SUCCESS) err = clSetKernelArg(kernel, n, sizeof *params, params);
    if (err == CL_SUCCESS) err = clSetKernelArg(kernel, n + 1, sizeof *bparams, bparams);
    return err;
}

/* Query rows of the call's tensors (batch * seqlen_q, or total_q). */
static int64_t rows_q(const facl_fwd_problem *p)
{
    return p->varlen ? (int64_t)p->total_q : (int64_t)p->batch * p->seqlen_q;
}

/* The caller's workspace against what the plan needs (D, and with atomic dq the
 * accumulator): checked before anything is enqueued, so a refusal writes nothing. */
static facl_status check_workspace(const facl_bwd_problem *bp, const facl_bwd_plan *plan)
{
    const facl_fwd_problem *p = &bp->f;
    const uint64_t need = facl_bwd_workspace_floats(rows_q(p), p->heads_q, p->head_dim, plan->dq_atomic);
    if (!bp->workspace || (uint64_t)bp->workspace_floats >= need) return FACL_SUCCESS;
    return facl_fail(FACL_ERROR_BUFFER_TOO_SMALL,
                     "workspace: %lld floats, the call needs %llu (%s; facl_bwd_workspace_size "
                     "with the call's head_dim and opts->deterministic gives the bytes)",
                     (long long)bp->workspace_floats, (unsigned long long)need,
                     plan->dq_atomic ? "D and the fp32 dq accumulator of the tensor-core kernels' "
                                       "atomic mode, opts->deterministic = 0"
                                     : "D, one float per query row and head");
}

static facl_status prepare_launch(facl_context *ctx, const facl_bwd_problem *bp,
                                  const facl_bwd_plan *plan, bwd_launch *l)
{
    const facl_fwd_problem *p = &bp->f;
    if (plan->local_bytes > plan->local_budget && !plan->requested_shape)
        return facl_fail(FACL_ERROR_UNSUPPORTED,
                         "%s for head_dim %d needs %llu bytes of local memory; %s has %llu "
                         "usable",
                         plan->program, p->head_dim, (unsigned long long)plan->local_bytes,
                         ctx->profile.device_name,
                         (unsigned long long)plan->local_budget);
    facl_status st = get_kernels(ctx, plan, l);
    if (st != FACL_SUCCESS) return st;

    /* Launch shapes: over query rows (and query heads), keys (and kv heads) or the query
     * rows' elements (and query heads), as plan->spans says; a group covers one row, key
     * or element per work-item, or the plan's rows or keys (attn_bwd_mma). At least one
     * block: trusted prefix sums may describe more rows than the maxima, and every kernel
     * strides over them. */
    int64_t lengths[3];
    size_t heads[3];
    for (int i = 0; i < 3; ++i) {
        const facl_bwd_span span = plan->spans[i];
        lengths[i] = span == FACL_BWD_SPAN_KEYS ? p->seqlen_k
                     : span == FACL_BWD_SPAN_ROWS ? p->seqlen_q
                                                  : (int64_t)p->seqlen_q * p->head_dim;
        heads[i] = (size_t)(span == FACL_BWD_SPAN_KEYS ? p->heads_kv : p->heads_q);
    }
    for (int i = 0; i < 3; ++i) {
        size_t kernel_wg = 0;
        cl_int err = clGetKernelWorkGroupInfo(l->kernels[i], ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                              sizeof kernel_wg, &kernel_wg, NULL);
        if (err != CL_SUCCESS) return facl_fail_cl(err, "clGetKernelWorkGroupInfo");
        const size_t group = plan->fixed_group[i]
                                 ? plan->fixed_group[i]
                                 : facl_plan_bwd_group_size(lengths[i], &ctx->profile, kernel_wg);
        if (group > kernel_wg)
            return facl_fail(FACL_ERROR_UNSUPPORTED,
                             "%s needs work-groups of %zu; %s allows %zu for it", plan->kernels[i],
                             group, ctx->profile.device_name, kernel_wg);
        const size_t per_group = plan->items_per_group[i] ? (size_t)plan->items_per_group[i] : group;
        const size_t rows = lengths[i] > 0 ? (size_t)lengths[i] : 1;
        l->global[i][0] = (rows + per_group - 1) / per_group * group;
        l->global[i][1] = heads[i];
        l->global[i][2] = (size_t)p->batch;
        l->local[i][0] = group;
        l->local[i][1] = l->local[i][2] = 1;
    }

    /* D lives in the workspace laid out like lse: (batch, heads_q, seqlen_q) dense,
     * (heads_q, total_q) varlen. With atomic dq each entry is preceded by its row's
     * accumulator (facl_bwd_workspace_entry_floats; the kernels find it DQ_ACC_BACK
     * floats before D, and attn_bwd_dot zeroes it). */
    const size_t floats = (size_t)facl_bwd_workspace_floats(rows_q(p), p->heads_q, p->head_dim,
                                                            plan->dq_atomic);
    const int64_t per_entry = (int64_t)facl_bwd_workspace_entry_floats(p->head_dim, plan->dq_atomic);
    l->workspace = bp->workspace;
    int64_t base = bp->workspace_off;
    if (!l->workspace) {
        cl_int err;
        l->own_workspace = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, floats * sizeof(float),
                                          NULL, &err);
        if (err != CL_SUCCESS) return facl_fail_cl(err, "allocating the backward's workspace");
        l->workspace = l->own_workspace;
        base = 0;
    }
    l->delta.buffer = l->workspace;
    l->delta.offset = base + per_entry - 1;
    l->delta.ss = per_entry;
    l->delta.sh = (p->varlen ? (int64_t)p->total_q : (int64_t)p->seqlen_q) * per_entry;
    l->delta.sb = p->varlen ? 0 : l->delta.sh * p->heads_q;

    facl_kernel_params_fill(p, &p->lse, &l->params);
    facl_bwd_params_fill(bp, &l->delta, &l->bparams);
    return FACL_SUCCESS;
}

facl_status facl_launch_bwd_planned(facl_context *ctx, cl_command_queue queue,
                                    const facl_bwd_problem *bp, const facl_bwd_plan *plan,
                                    cl_uint num_wait, const cl_event *wait, cl_event *event)
{
    if (!queue) queue = ctx->queue;
    facl_status st = check_workspace(bp, plan);
    if (st != FACL_SUCCESS) return st;
    if (bp->f.batch == 0) { /* no sequence: nothing to write; honour the wait list */
        facl_enqueue_lock(ctx);
        cl_int err = clEnqueueMarkerWithWaitList(queue, num_wait, wait, event);
        facl_enqueue_unlock(ctx);
        return err == CL_SUCCESS ? FACL_SUCCESS : facl_fail_cl(err, "clEnqueueMarkerWithWaitList");
    }
    bwd_launch l;
    memset(&l, 0, sizeof l);
    st = prepare_launch(ctx, bp, plan, &l);
    if (st != FACL_SUCCESS) {
        release_launch(&l);
        return st;
    }
    /* Each kernel waits on the previous one's event: the others read D (and the dk/dv
     * kernel adds into the accumulator attn_bwd_dot zeroed). A failure of the second or
     * third enqueue (a driver out of resources) leaves the earlier ones queued: then dq
     * may be written and dk, dv not, as docs/CONTRACT.md says. */
    cl_event done = NULL;
    facl_enqueue_lock(ctx);
    cl_int bound = CL_SUCCESS; /* every argument of the three, before the first enqueue */
    for (int i = 0; i < 3 && bound == CL_SUCCESS; ++i)
        bound = bind(l.kernels[i], bp, l.workspace, &l.params, &l.bparams);
    if (bound != CL_SUCCESS) st = facl_fail_cl(bound, "clSetKernelArg");
    for (int i = 0; i < 3 && st == FACL_SUCCESS; ++i) {
        cl_event next = NULL;
        const cl_int err = clEnqueueNDRangeKernel(
            queue, l.kernels[i], 3, NULL, l.global[i], l.local[i], i == 0 ? num_wait : 1,
            i == 0 ? wait : &done, (i < 2 || event) ? &next : NULL);
        if (err != CL_SUCCESS) st = facl_fail_cl(err, plan->kernels[i]);
        if (done) clReleaseEvent(done);
        done = next;
    }
    facl_enqueue_unlock(ctx);
    if (st == FACL_SUCCESS && event) *event = done;
    else if (done) clReleaseEvent(done);
    release_launch(&l);
    return st;
}

/* The state of every context's tensor-core backward probe (ctx->bwd_probe); one lock for
 * all contexts, held only to read or change it, never while the probe runs or logs. */
static pthread_mutex_t g_probe_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_probe_done = PTHREAD_COND_INITIALIZER;

/* On a context whose nvidia-mma path was chosen by its probe, the first backward call
 * that would run attn_bwd_mma probes it (kernel_path.h); calls from other threads in
 * the meantime wait for the verdict, and a call from the probing thread itself (a log
 * callback during the probe) takes attn_bwd. Returns whether attn_bwd_mma may run. */
static int bwd_mma_allowed(facl_context *ctx)
{
    pthread_mutex_lock(&g_probe_lock);
    while (ctx->bwd_probe == FACL_BWD_PROBE_RUNNING &&
           !pthread_equal(ctx->bwd_probe_thread, pthread_self()))
        pthread_cond_wait(&g_probe_done, &g_probe_lock);
    const int state = ctx->bwd_probe;
    if (state == FACL_BWD_PROBE_NOT_RUN) {
        ctx->bwd_probe = FACL_BWD_PROBE_RUNNING;
        ctx->bwd_probe_thread = pthread_self();
    }
    pthread_mutex_unlock(&g_probe_lock);
    if (state != FACL_BWD_PROBE_NOT_RUN) return state == FACL_BWD_PROBE_PASSED;

    char why[200];
    const int passed = facl_probe_bwd_mma(ctx, ctx->profile.path, why, sizeof why) == FACL_SUCCESS;
    facl_error_clear(); /* a failed probe is not a failure of this call */
    pthread_mutex_lock(&g_probe_lock);
    ctx->bwd_probe = passed ? FACL_BWD_PROBE_PASSED : FACL_BWD_PROBE_FAILED;
    pthread_cond_broadcast(&g_probe_done);
    pthread_mutex_unlock(&g_probe_lock);
    if (passed)
        facl_log(&ctx->logger, FACL_LOG_PROBE, "the tensor-core backward's probe passed");
    else
        facl_log(&ctx->logger, FACL_LOG_PROBE,
                 "the tensor-core backward's probe failed, the backward uses attn_bwd: %s", why);
    return passed;
}

facl_status facl_launch_bwd(facl_context *ctx, cl_command_queue queue, const facl_bwd_problem *bp,
                            cl_uint num_wait, const cl_event *wait, cl_event *event)
{
    /* FACL_BWD_MMA_SHAPE (read at context creation): a shape for attn_bwd_mma */
    const facl_bwd_mma_shape *req = ctx->has_bwd_mma_shape ? &ctx->bwd_mma_shape : NULL;
    /* Planned on a copy of the profile, whose bwd_mma_off this call may set; copied byte
     * for byte, padding included, as the plan memo compares profiles with memcmp. */
    facl_device_profile profile;
    memcpy(&profile, &ctx->profile, sizeof profile);
    facl_bwd_plan plan;
    facl_plan_bwd_memo(&ctx->plans, bp, &profile, req, &plan);
    /* the tensor-core kernels behind their probe: attn_bwd_mma, and attn_bwd_wgmma where it
     * is the default (forced, it runs unprobed) */
    const int probed_program = strcmp(plan.program, "attn_bwd_mma") == 0 ||
                               (strcmp(plan.program, "attn_bwd_wgmma") == 0 &&
                                profile.bwd_wgmma == FACL_BWD_WGMMA_PROBED);
    if (probed_program && !bwd_mma_allowed(ctx)) {
        profile.bwd_mma_off = 1;
        facl_plan_bwd_memo(&ctx->plans, bp, &profile, req, &plan);
    }
    return facl_launch_bwd_planned(ctx, queue, bp, &plan, num_wait, wait, event);
}
