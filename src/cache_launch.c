/* Enqueue a validated cache problem: the append (when there are new keys), the attention
 * over the cache, and the merge of the key splits (when the plan splits). As in
 * fwd_launch.c, every program, kernel, scratch buffer and argument is obtained (the
 * arguments set, under the enqueue lock) before the first enqueue, so a failed call
 * leaves nothing on the queue; the kernels are the context's, shared by its threads
 * (fwd_launch.c says how their arguments stay each call's own). */
#include <stdio.h>
#include <string.h>

#include "cache_params.h"
#include "cache_plan.h"
#include "cache_problem.h"
#include "context.h"
#include "kernel_params.h"
#include "plan_memo.h"
#include "status.h"

static cl_int bind_buffers(cl_kernel kernel, const cl_mem *buffers, cl_uint n,
                           const facl_kernel_params *params, const facl_cache_params *cparams)
{
    cl_int err = CL_SUCCESS;
    for (cl_uint i = 0; i < n && err == CL_SUCCESS; ++i)
        err = clSetKernelArg(kernel, i, sizeof(cl_mem), &buffers[i]);
    if (err == CL_SUCCESS) err = clSetKernelArg(kernel, n, sizeof *params, params);
    if (err == CL_SUCCESS) err = clSetKernelArg(kernel, n + 1, sizeof *cparams, cparams);
    return err;
}

static void fill_cache_params(const facl_cache_problem *p, const facl_cache_plan *plan,
                              facl_cache_params *c)
{
    memset(c, 0, sizeof *c);
    c->bt_off = p->bt_off, c->bt_sb = p->bt_sb;
    c->seqlens_off = p->seqlens_off, c->batch_idx_off = p->batch_idx_off;
    c->leftpad_off = p->leftpad_off, c->cu_new_off = p->cu_new_off;
    c->kn_off = p->k_new.offset, c->kn_sb = p->k_new.sb, c->kn_ss = p->k_new.ss;
    c->kn_sh = p->k_new.sh;
    c->vn_off = p->v_new.offset, c->vn_sb = p->v_new.sb, c->vn_ss = p->v_new.ss;
    c->vn_sh = p->v_new.sh;
    c->cos_off = p->cos.offset, c->cos_ss = p->cos.ss;
    c->sin_off = p->sin.offset, c->sin_ss = p->sin.ss;
    /* partials: (split, batch, row, head, d) and (split, batch, head, row), packed */
    const facl_fwd_problem *f = &p->fwd;
    const int64_t rows = f->varlen ? f->total_q : f->seqlen_q, d = f->head_dim;
    const int64_t batches = f->varlen ? 1 : f->batch;
    c->part_sh = d, c->part_ss = f->heads_q * d, c->part_sb = f->varlen ? 0 : rows * c->part_ss;
    c->part_split = batches * rows * c->part_ss;
    c->plse_ss = 1, c->plse_sh = rows, c->plse_sb = f->varlen ? 0 : f->heads_q * rows;
    c->plse_split = batches * f->heads_q * rows;
    /* one fp32 scratch holds both: the partial outputs, then their lse */
    c->part_off = p->workspace ? p->workspace_off : 0;
    c->plse_off = c->part_off + (int64_t)plan->splits * c->part_split;
    c->page_size = p->page_size, c->num_blocks = p->num_blocks, c->max_blocks = p->max_blocks;
    c->capacity = f->seqlen_k;
    c->batch_cache = p->batch_cache, c->seqlens_value = p->seqlens_value;
    c->seqlen_new = p->seqlen_new, c->total_new = p->total_new;
    c->rotary_half = p->rotary_dim / 2, c->rotary_interleaved = p->rotary_interleaved;
    c->seqlen_ro = p->seqlen_ro;
    /* SPEC: queries rotate at cache_seqlens[b] + i when causal or a window is set (after
     * the normalisation), else all at cache_seqlens[b] */
    c->q_rotary_per_row = f->window_left >= 0 || f->window_right >= 0;
    c->num_splits = plan->splits;
    c->batch = f->batch;
}

/* What one call enqueues, all obtained before the first enqueue; the kernels are the
 * context's, their arguments set under the enqueue lock (bind_all). */
typedef struct cache_launch {
    cl_kernel append, attn, combine; /* append / combine NULL when not needed */
    cl_mem parts;                    /* split partials and their lse, NULL without splits */
    int parts_owned;                 /* allocated here (else the caller's workspace) */
    cl_mem counters;                 /* the queue's split counters: merged in the kernel */
    size_t counters_zero_bytes;      /* > 0: a new counter buffer, zeroed before the kernel */
    size_t append_global[3], attn_global[3], attn_local[3], combine_global[3];
    facl_kernel_params params;
    facl_cache_params cparams;
} cache_launch;

static void release_launch(cache_launch *l)
{
    if (l->parts && l->parts_owned) clReleaseMemObject(l->parts);
    if (l->counters) clReleaseMemObject(l->counters);
}

static facl_status scratch(facl_context *ctx, size_t bytes, const char *what, cl_mem *buffer)
{
    cl_int err;
    *buffer = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, bytes ? bytes : 4, NULL, &err);
    return err == CL_SUCCESS ? FACL_SUCCESS : facl_fail_cl(err, what);
}

static facl_status prepare_launch(facl_context *ctx, cl_command_queue queue,
                                  const facl_cache_problem *p, cache_launch *l)
{
    const facl_fwd_problem *f = &p->fwd;
    facl_cache_plan plan;
    facl_plan_cache_memo(&ctx->plans, p, &ctx->profile, &ctx->cache_mma_shape, &plan);
    if (plan.local_bytes > plan.local_budget)
        return facl_fail(FACL_ERROR_UNSUPPORTED,
                         "attn_cache for head_dim %d needs %llu bytes of local memory; %s has %llu usable",
                         f->head_dim, (unsigned long long)plan.local_bytes,
                         ctx->profile.device_name, (unsigned long long)plan.local_budget);
    /* the split partials' scratch, checked and made before any compile */
    facl_status st = FACL_SUCCESS;
    const size_t rows = (size_t)(f->varlen ? f->total_q : (int64_t)f->batch * f->seqlen_q);
    if (plan.splits > 1) {
        const uint64_t floats =
            facl_cache_workspace_floats(rows, (uint64_t)f->heads_q, (uint64_t)f->head_dim, plan.splits);
        if (p->workspace) {
            if ((uint64_t)p->workspace_floats < floats)
                return facl_fail(FACL_ERROR_BUFFER_TOO_SMALL,
                                 "cache->workspace: %lld floats, this call (%d splits) needs %llu "
                                 "(facl_fwd_kvcache_workspace_size gives the bytes)",
                                 (long long)p->workspace_floats, plan.splits,
                                 (unsigned long long)floats);
            l->parts = p->workspace;
        } else {
            if ((st = scratch(ctx, (size_t)floats * sizeof(float), "split partials", &l->parts)))
                return st;
            l->parts_owned = 1;
        }
    }
    /* the splits merged by the kernel's last work-group per unit, where this queue has
     * counters (queue_counters.h), else by cache_combine */
    if (plan.merge_in_kernel_ok && !ctx->cache_merge_by_combine) {
        if ((st = facl_queue_counters_get(&ctx->split_counters, ctx->cl_ctx, queue,
                                          (size_t)plan.units, &l->counters, &l->counters_zero_bytes)))
            return st;
        if (l->counters) {
            const size_t used = strlen(plan.options);
            snprintf(plan.options + used, sizeof plan.options - used, " -DMERGE_IN_KERNEL=1");
        }
    }
    cl_program program;
    st = facl_program_get(&ctx->programs, ctx->cl_ctx, ctx->device, &ctx->profile, plan.program,
                          plan.options, &program);
    if (st != FACL_SUCCESS) return st;
    if ((st = facl_program_kernel(&ctx->programs, program, "attn_cache", FACL_CACHE_ATTN_NUM_ARGS,
                                  &l->attn)))
        return st;
    size_t kernel_wg = 0;
    cl_int err = clGetKernelWorkGroupInfo(l->attn, ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                          sizeof kernel_wg, &kernel_wg, NULL);
    if (err != CL_SUCCESS) return facl_fail_cl(err, "clGetKernelWorkGroupInfo(attn_cache)");
    if (kernel_wg < plan.group_size)
        return facl_fail(FACL_ERROR_UNSUPPORTED,
                         "attn_cache needs work-groups of %zu work-items; the device allows %zu",
                         plan.group_size, kernel_wg);
    if (p->k_new.buffer &&
        (st = facl_program_kernel(&ctx->programs, program, "cache_append",
                                  FACL_CACHE_APPEND_NUM_ARGS, &l->append)))
        return st;
    if (plan.splits > 1 && !l->counters &&
        (st = facl_program_kernel(&ctx->programs, program, "cache_combine",
                                  FACL_CACHE_COMBINE_NUM_ARGS, &l->combine)))
        return st;
    facl_kernel_params_fill(f, &f->lse, &l->params);
    fill_cache_params(p, &plan, &l->cparams);

    const size_t new_rows = p->cu_new ? (size_t)p->total_new : (size_t)f->batch * (size_t)p->seqlen_new;
    l->append_global[0] = (size_t)f->head_dim;
    l->append_global[1] = (size_t)f->heads_kv;
    l->append_global[2] = new_rows;
    /* at least one tile: trusted prefix sums may describe more rows than max_seqlen_q,
     * and the kernels stride over them */
    const size_t q_rows = (size_t)(f->seqlen_q > 0 ? f->seqlen_q : 1) * (size_t)(f->heads_q / f->heads_kv);
    l->attn_global[0] = (q_rows + (size_t)plan.rows - 1) / (size_t)plan.rows * plan.group_size;
    l->attn_global[1] = (size_t)f->heads_kv;
    l->attn_global[2] = (size_t)f->batch * (size_t)plan.splits;
    l->attn_local[0] = plan.group_size;
    l->attn_local[1] = l->attn_local[2] = 1;
    /* one work-item per output element: cache_combine splits dimension 0 into (row, d) */
    l->combine_global[0] = (size_t)(f->seqlen_q > 0 ? f->seqlen_q : 1) * (size_t)f->head_dim;
    l->combine_global[1] = (size_t)f->heads_q;
    l->combine_global[2] = (size_t)f->batch;
    return FACL_SUCCESS;
}

/* Every argument of every kernel the call enqueues; with the enqueue lock held, before the
 * first enqueue. The attention writes the split partials where the plan splits
 * (cparams.num_splits > 1), and merges them into out and lse itself where it has the
 * queue's counters. */
static cl_int bind_all(const cache_launch *l, const facl_cache_problem *p)
{
    const facl_fwd_problem *f = &p->fwd;
    const int split = l->cparams.num_splits > 1;
    const cl_mem attn_out = split ? l->parts : f->out.buffer;
    const cl_mem attn_lse = split ? l->parts : f->lse.buffer;
    const cl_mem merged_out = l->counters ? f->out.buffer : NULL;
    const cl_mem merged_lse = l->counters ? f->lse.buffer : NULL;
    const cl_mem attn_buffers[19] = {f->q.buffer,    f->k.buffer,   f->v.buffer,   attn_out,
                                     attn_lse,       f->cu_q,       f->cu_k,       f->seqused,
                                     f->alibi.buffer, p->seqlens,   p->batch_idx,  p->leftpad,
                                     p->block_table, p->cu_new,     p->cos.buffer, p->sin.buffer,
                                     merged_out,     merged_lse,    l->counters};
    cl_int err = CL_SUCCESS;
    if (l->attn) err = bind_buffers(l->attn, attn_buffers, 19, &l->params, &l->cparams);
    if (err == CL_SUCCESS && l->append) {
        const cl_mem b[10] = {p->k_new.buffer, p->v_new.buffer, f->k.buffer,  f->v.buffer,
                              p->seqlens,      p->batch_idx,    p->block_table, p->cu_new,
                              p->cos.buffer,   p->sin.buffer};
        err = bind_buffers(l->append, b, 10, &l->params, &l->cparams);
    }
    if (err == CL_SUCCESS && l->combine) {
        const cl_mem b[5] = {l->parts, l->parts, f->out.buffer, f->lse.buffer, f->cu_q};
        err = bind_buffers(l->combine, b, 5, &l->params, &l->cparams);
    }
    return err;
}

facl_status facl_launch_cache(facl_context *ctx, cl_command_queue queue,
                              const facl_cache_problem *p, cl_uint num_wait, const cl_event *wait,
                              cl_event *event)
{
    if (!queue) queue = ctx->queue;
    const facl_fwd_problem *f = &p->fwd;
    const int no_queries = f->batch == 0 || (f->varlen ? f->total_q == 0 : f->seqlen_q == 0);
    const int no_append = !p->k_new.buffer || (p->cu_new ? p->total_new == 0 : p->seqlen_new == 0) ||
                          f->batch == 0;
    cache_launch l = {0};
    facl_status st = FACL_SUCCESS;
    if (!(no_queries && no_append)) st = prepare_launch(ctx, queue, p, &l);
    if (st != FACL_SUCCESS) {
        release_launch(&l);
        return st;
    }
    /* Each kernel waits for the one before through its event, so the order holds on an
     * out-of-order queue too. */
    cl_event last = NULL;
    const char *failed = NULL;
    facl_enqueue_lock(ctx);
    cl_int err = bind_all(&l, p);
    if (err != CL_SUCCESS) failed = "clSetKernelArg (KV-cache kernels)";
    if (!failed && l.counters_zero_bytes) { /* first, so that its failure leaves nothing enqueued */
        const cl_int zero = 0; /* in queue order, so before the attention kernel */
        err = clEnqueueFillBuffer(queue, l.counters, &zero, sizeof zero, 0, l.counters_zero_bytes,
                                  0, NULL, NULL);
        if (err != CL_SUCCESS) failed = "enqueueing the split counters' zero fill";
        else facl_queue_counters_zeroed(&ctx->split_counters, queue, l.counters);
    }
    if (!failed && no_queries && no_append) {
        err = clEnqueueMarkerWithWaitList(queue, num_wait, wait, &last);
        if (err != CL_SUCCESS) failed = "clEnqueueMarkerWithWaitList";
    }
    if (!failed && !no_append) {
        err = clEnqueueNDRangeKernel(queue, l.append, 3, NULL, l.append_global, NULL, num_wait,
                                     wait, &last);
        if (err != CL_SUCCESS) failed = "enqueueing cache_append";
    }
    if (!failed && !no_queries) {
        cl_event done = NULL;
        err = clEnqueueNDRangeKernel(queue, l.attn, 3, NULL, l.attn_global, l.attn_local,
                                     last ? 1 : num_wait, last ? &last : wait, &done);
        if (last) clReleaseEvent(last);
        last = done;
        if (err != CL_SUCCESS) failed = "enqueueing attn_cache";
        if (!failed && l.combine) {
            err = clEnqueueNDRangeKernel(queue, l.combine, 3, NULL, l.combine_global, NULL, 1,
                                         &last, &done);
            clReleaseEvent(last);
            last = done;
            if (err != CL_SUCCESS) failed = "enqueueing cache_combine";
        }
    }
    facl_enqueue_unlock(ctx);
    /* A failure after the append was enqueued (a driver out of resources) leaves the
     * cache updated and out unwritten: docs/CONTRACT.md says so. */
    if (failed) st = facl_fail_cl(err, failed);
    if (st == FACL_SUCCESS && event) *event = last;
    else if (last) clReleaseEvent(last);
    release_launch(&l);
    return st;
}
