/* Enqueue the forward kernels of a validated problem. Everything that can fail (programs,
 * kernel objects, scratch memory, argument counts, the arguments themselves) is obtained,
 * checked or set before the first enqueue, so a failed call leaves nothing behind on the
 * queue.
 *
 * Kernel objects are the context's, made once per program and kernel name and shared by
 * every call and thread (facl_program_kernel, programs.h): a call no longer pays for
 * clCreateKernel. An argument stays set on a kernel object until it is set again, and
 * clSetKernelArg on one object from two threads at once is undefined (OpenCL, "Multiple
 * host threads"), so a call sets its arguments only while it holds the context's enqueue
 * lock: every argument of every kernel it enqueues, all before its first enqueue (a
 * refused argument then leaves nothing enqueued, and whatever state it left on the object
 * is overwritten by the next call), then its enqueues, then it lets go. Another call's
 * arguments can never land between this call's setting and its enqueues, and an enqueue
 * takes the values set at that moment ("the value used by all API calls that enqueue
 * kernel until the argument value is changed by a call to clSetKernelArg"), so the next
 * call may set its own right after. The shared kernels and cache_launch.c, bwd_launch.c
 * and merge_launch.c follow the same rule.
 *
 * Buffers left set on a kernel object after a call are not kept alive by it: a kernel
 * object does not update the reference count of memory objects set as its arguments (the
 * specification's note under clSetKernelArg; the conformance test
 * retain_mem_object_set_kernel_arg checks it), while the enqueued command keeps them until
 * it ends (clReleaseMemObject). So the caller's buffers and this call's scratch are
 * freed when their owners release them; a stale handle on the object is never used,
 * since every call sets every argument. (An implementation that retained them anyway
 * would free them at the kernel's next call or at facl_context_free: late, never wrong.) */
#include <string.h>

#include "context.h"
#include "fwd_problem.h"
#include "kernel_params.h"
#include "plan.h"
#include "plan_memo.h"
#include "status.h"
#include "tensor_map.h"

/* attn_fwd_rows with packed tiles takes the packed buffer and its tile count last;
 * attn_fwd_wgmma with the tensor copy engine its maps. */
enum { PACKED_EXTRA_ARGS = 2, PACK_KERNEL_ARGS = 8, TMA_EXTRA_ARGS = 1, TMA_FILL_ARGS = 9 };

/* The three maps (q, k, v) as tma_maps_fill takes them by value. */
#define TMA_MAPS 3

/* The program `name` (built or from the caches) and its kernel of the same name, checked
 * to take the arguments the host binds; the kernel is the context's (not released). */
static facl_status kernel_of(facl_context *ctx, const char *name, const char *options,
                             cl_uint extra_args, cl_kernel *kernel)
{
    cl_program program;
    facl_status st = facl_program_get(&ctx->programs, ctx->cl_ctx, ctx->device, &ctx->profile,
                                      name, options, &program);
    if (st != FACL_SUCCESS) return st;
    return facl_program_kernel(&ctx->programs, program, name, FACL_KERNEL_NUM_ARGS + extra_args,
                               kernel);
}

/* The ten buffers in the kernels' order, then the argument block. */
static cl_int bind(cl_kernel kernel, const facl_fwd_problem *p, const facl_view *lse,
                   const facl_kernel_params *params)
{
    const cl_mem buffers[] = {p->q.buffer, p->k.buffer, p->v.buffer,     p->out.buffer,
                              lse->buffer, p->cu_q,     p->cu_k,         p->seqused,
                              p->alibi.buffer, p->probs.buffer};
    const cl_uint n = sizeof buffers / sizeof buffers[0];
    cl_int err = CL_SUCCESS;
    for (cl_uint i = 0; i < n && err == CL_SUCCESS; ++i)
        err = clSetKernelArg(kernel, i, sizeof(cl_mem), &buffers[i]);
    if (err == CL_SUCCESS) err = clSetKernelArg(kernel, n, sizeof *params, params);
    return err;
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

/* What one call enqueues, all obtained before the first enqueue; the kernels are the
 * context's, their arguments set under the enqueue lock (bind_all). */
typedef struct fwd_launch {
    cl_kernel fwd, probs;  /* probs NULL when attn_probs is not wanted or empty */
    cl_kernel pack;        /* pack_kv_tiles when attn_fwd_rows reads packed tiles, else NULL */
    cl_mem packed;         /* its buffer, released once enqueued like the lse scratch */
    cl_int packed_tiles;
    size_t fwd_global[3], fwd_local[3], probs_global[3], pack_global[3];
    facl_view lse;
    facl_kernel_params params;
    /* the tensor copy engine's maps (plan.tma): tma_maps_fill writes them into `maps`,
     * released once enqueued like the lse scratch */
    cl_kernel tma_fill;
    cl_mem maps;
    _Alignas(64) unsigned char templates[TMA_MAPS][FACL_TENSOR_MAP_BYTES];
    cl_ulong map_offsets[TMA_MAPS];
    cl_int with_q;
} fwd_launch;

static void release_launch(fwd_launch *l, const facl_fwd_problem *p)
{
    if (l->packed) clReleaseMemObject(l->packed);
    if (l->maps) clReleaseMemObject(l->maps);
    if (l->lse.buffer && !p->lse.buffer) clReleaseMemObject(l->lse.buffer);
}

/* pack_kv_tiles and the buffer it fills: one work-item per tile of a (sequence, kv head),
 * striding over longer sequences than max_seqlen_k says (attn_fwd_rows.cl). */
static facl_status prepare_packing(facl_context *ctx, const facl_fwd_problem *p,
                                   const facl_fwd_plan *plan, fwd_launch *l)
{
    /* the forward kernel's own program: one program lookup per call, as elsewhere */
    cl_program program;
    cl_int err = clGetKernelInfo(l->fwd, CL_KERNEL_PROGRAM, sizeof program, &program, NULL);
    if (err != CL_SUCCESS) return facl_fail_cl(err, "clGetKernelInfo(CL_KERNEL_PROGRAM)");
    facl_status st =
        facl_program_kernel(&ctx->programs, program, "pack_kv_tiles", PACK_KERNEL_ARGS, &l->pack);
    if (st != FACL_SUCCESS) return st;
    l->packed = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, (size_t)plan->packed_bytes, NULL, &err);
    if (err != CL_SUCCESS) {
        l->packed = NULL;
        return facl_fail_cl(err, "allocating attn_fwd_rows's packed k/v tiles");
    }
    l->packed_tiles = (cl_int)plan->packed_tiles;
    const size_t keys = p->seqlen_k > 0 ? (size_t)p->seqlen_k : 1;
    l->pack_global[0] = (keys + 15) / 16;
    l->pack_global[1] = (size_t)p->heads_kv;
    l->pack_global[2] = (size_t)p->batch;
    return FACL_SUCCESS;
}

/* pack_kv_tiles's arguments, and the packed tail of attn_fwd_rows's. */
static cl_int bind_packing(const fwd_launch *l, const facl_fwd_problem *p)
{
    const cl_mem buffers[] = {p->k.buffer, p->v.buffer, p->cu_q, p->cu_k, p->seqused, l->packed};
    const cl_uint n = sizeof buffers / sizeof buffers[0];
    cl_int err = CL_SUCCESS;
    for (cl_uint i = 0; i < n && err == CL_SUCCESS; ++i)
        err = clSetKernelArg(l->pack, i, sizeof(cl_mem), &buffers[i]);
    if (err == CL_SUCCESS) err = clSetKernelArg(l->pack, n, sizeof l->params, &l->params);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(l->pack, n + 1, sizeof l->packed_tiles, &l->packed_tiles);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(l->fwd, FACL_KERNEL_NUM_ARGS, sizeof(cl_mem), &l->packed);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(l->fwd, FACL_KERNEL_NUM_ARGS + 1, sizeof l->packed_tiles,
                             &l->packed_tiles);
    return err;
}

/* The layouts of the views whose maps the plan reads (q's only where q is staged), or
 * NULL with the reason one of them cannot have a map. */
static const char *tma_layouts(const facl_fwd_problem *p, int with_q, facl_tensor_map_layout out[TMA_MAPS])
{
    const char *why = NULL;
    memset(out, 0, TMA_MAPS * sizeof *out);
    if (with_q)
        why = facl_tensor_map_layout_of(&p->q, p->head_dim, p->seqlen_q, p->heads_q, p->batch, &out[0]);
    if (!why) why = facl_tensor_map_layout_of(&p->k, p->head_dim, p->seqlen_k, p->heads_kv, p->batch, &out[1]);
    if (!why) why = facl_tensor_map_layout_of(&p->v, p->head_dim, p->seqlen_k, p->heads_kv, p->batch, &out[2]);
    return why;
}

/* tma_maps_fill, the maps' buffer, and the maps encoded with a placeholder address. */
static facl_status prepare_tma(facl_context *ctx, const facl_fwd_problem *p, const facl_fwd_plan *plan,
                               fwd_launch *l)
{
    facl_tensor_map_layout layouts[TMA_MAPS];
    const char *why = tma_layouts(p, plan->tma_q, layouts);
    if (why) /* facl_fwd_programs_get planned without the engine for such views */
        return facl_fail(FACL_ERROR_UNSUPPORTED, "a tensor map the plan needs: %s", why);
    memset(l->templates, 0, sizeof l->templates);
    const int bf16 = p->dtype == FACL_DTYPE_BF16;
    for (int m = plan->tma_q ? 0 : 1; m < TMA_MAPS; ++m) {
        facl_status st = facl_tensor_map_encode(ctx->tensor_maps, &layouts[m], bf16, l->templates[m]);
        if (st != FACL_SUCCESS) return st;
        l->map_offsets[m] = layouts[m].offset_bytes;
    }
    l->with_q = plan->tma_q;
    cl_program program;
    cl_int err = clGetKernelInfo(l->fwd, CL_KERNEL_PROGRAM, sizeof program, &program, NULL);
    if (err != CL_SUCCESS) return facl_fail_cl(err, "clGetKernelInfo(CL_KERNEL_PROGRAM)");
    facl_status st = facl_program_kernel(&ctx->programs, program, "tma_maps_fill", TMA_FILL_ARGS, &l->tma_fill);
    if (st != FACL_SUCCESS) return st;
    l->maps = clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE, sizeof l->templates, NULL, &err);
    if (err != CL_SUCCESS) {
        l->maps = NULL;
        return facl_fail_cl(err, "allocating the tensor copy engine's maps");
    }
    return FACL_SUCCESS;
}

/* tma_maps_fill's arguments, and the forward's maps. */
static cl_int bind_tma(const fwd_launch *l, const facl_fwd_problem *p)
{
    const cl_mem buffers[] = {p->q.buffer, p->k.buffer, p->v.buffer, l->maps};
    cl_int err = CL_SUCCESS;
    for (cl_uint i = 0; i < 4 && err == CL_SUCCESS; ++i)
        err = clSetKernelArg(l->tma_fill, i, sizeof(cl_mem), &buffers[i]);
    if (err == CL_SUCCESS) err = clSetKernelArg(l->tma_fill, 4, sizeof l->templates, l->templates);
    for (cl_uint m = 0; m < TMA_MAPS && err == CL_SUCCESS; ++m)
        err = clSetKernelArg(l->tma_fill, 5 + m, sizeof(cl_ulong), &l->map_offsets[m]);
    if (err == CL_SUCCESS) err = clSetKernelArg(l->tma_fill, 8, sizeof l->with_q, &l->with_q);
    if (err == CL_SUCCESS) err = clSetKernelArg(l->fwd, FACL_KERNEL_NUM_ARGS, sizeof(cl_mem), &l->maps);
    return err;
}

/* Every argument of every kernel the call enqueues; with the enqueue lock held, before the
 * first enqueue (the top of this file says why). */
static cl_int bind_all(const fwd_launch *l, const facl_fwd_problem *p)
{
    cl_int err = bind(l->fwd, p, &l->lse, &l->params);
    if (err == CL_SUCCESS && l->probs) err = bind(l->probs, p, &l->lse, &l->params);
    if (err == CL_SUCCESS && l->pack) err = bind_packing(l, p);
    if (err == CL_SUCCESS && l->tma_fill) err = bind_tma(l, p);
    return err;
}

/* The forward programs as planned for `profile` (the context's, or a copy of it). */
static facl_status programs_for(facl_context *ctx, const facl_device_profile *profile,
                                const facl_fwd_problem *p, cl_kernel *fwd, cl_kernel *probs,
                                facl_fwd_plan *plan)
{
    facl_plan_fwd_memo(&ctx->plans, p, profile, plan);
    if (plan->local_bytes > plan->local_budget)
        return facl_fail(FACL_ERROR_UNSUPPORTED,
                         "%s for head_dim %d needs %llu bytes of local memory; %s has %llu usable",
                         plan->kernel, p->head_dim, (unsigned long long)plan->local_bytes,
                         ctx->profile.device_name, (unsigned long long)plan->local_budget);
    facl_status st = kernel_of(ctx, plan->kernel, plan->options,
                               plan->packed_kv ? PACKED_EXTRA_ARGS : plan->tma ? TMA_EXTRA_ARGS : 0, fwd);
    if (st != FACL_SUCCESS || !probs) return st;
    facl_fwd_plan_key key;
    facl_fwd_plan_key_of(p, &key);
    char options[320];
    facl_plan_fwd_feature_options(&key, options, sizeof options);
    st = kernel_of(ctx, "attn_probs", options, 0, probs);
    if (st != FACL_SUCCESS) *fwd = NULL;
    return st;
}

/* attn_fwd_blocked runs only with its whole work-group; a driver whose build of it allows
 * fewer work-items (registers) gets attn_fwd instead, which sizes its groups at launch. */
static facl_status blocked_group_fits(facl_context *ctx, const facl_fwd_problem *p,
                                      cl_kernel *fwd, cl_kernel *probs, facl_fwd_plan *plan)
{
    if (strcmp(plan->kernel, "attn_fwd_blocked") != 0) return FACL_SUCCESS; /* no driver query */
    size_t kernel_wg = 0;
    cl_int err = clGetKernelWorkGroupInfo(*fwd, ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                          sizeof kernel_wg, &kernel_wg, NULL);
    if (err != CL_SUCCESS) return facl_fail_cl(err, "clGetKernelWorkGroupInfo");
    if (kernel_wg >= plan->fixed_group) return FACL_SUCCESS;
    *fwd = NULL; /* the context keeps it; this call takes attn_fwd's */
    if (probs) *probs = NULL;
    facl_device_profile previous; /* byte for byte: the plan memo compares with memcmp */
    memcpy(&previous, &ctx->profile, sizeof previous);
    previous.portable_kernel = FACL_TUNING_KERNEL_PREVIOUS;
    return programs_for(ctx, &previous, p, fwd, probs, plan);
}

/* The Hopper kernel's copier takes the tensor copy engine only where every map it needs
 * can be made (tensor_map.h: strides, offset); otherwise this call's copier uses cp.async. */
static facl_status maps_fit(facl_context *ctx, const facl_fwd_problem *p, cl_kernel *fwd,
                            cl_kernel *probs, facl_fwd_plan *plan)
{
    facl_tensor_map_layout layouts[TMA_MAPS];
    if (!plan->tma || !tma_layouts(p, plan->tma_q, layouts)) return FACL_SUCCESS;
    *fwd = NULL; /* the context keeps it */
    if (probs) *probs = NULL;
    facl_device_profile without; /* byte for byte: the plan memo compares with memcmp */
    memcpy(&without, &ctx->profile, sizeof without);
    without.wgmma_tma = 0;
    return programs_for(ctx, &without, p, fwd, probs, plan);
}

facl_status facl_fwd_programs_get(facl_context *ctx, const facl_fwd_problem *p, cl_kernel *fwd,
                                  cl_kernel *probs, facl_fwd_plan *plan)
{
    facl_status st = programs_for(ctx, &ctx->profile, p, fwd, probs, plan);
    if (st == FACL_SUCCESS) st = blocked_group_fits(ctx, p, fwd, probs, plan);
    if (st == FACL_SUCCESS) st = maps_fit(ctx, p, fwd, probs, plan);
    return st;
}

static facl_status prepare_launch(facl_context *ctx, const facl_fwd_problem *p, fwd_launch *l)
{
    /* attn_probs with no key columns has nothing to write: no launch (a zero global size
     * is an error on OpenCL 1.2 drivers). */
    const int want_probs = p->probs.buffer != NULL && p->seqlen_q > 0 && p->seqlen_k > 0;
    facl_fwd_plan plan;
    facl_status st = facl_fwd_programs_get(ctx, p, &l->fwd, want_probs ? &l->probs : NULL, &plan);
    if (st != FACL_SUCCESS) return st;
    size_t kernel_wg = 0;
    cl_int err = clGetKernelWorkGroupInfo(l->fwd, ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                          sizeof kernel_wg, &kernel_wg, NULL);
    if (err != CL_SUCCESS) return facl_fail_cl(err, "clGetKernelWorkGroupInfo");
    if (plan.moves_registers) {
        size_t compiled[3] = {0, 0, 0};
        err = clGetKernelWorkGroupInfo(l->fwd, ctx->device, CL_KERNEL_COMPILE_WORK_GROUP_SIZE,
                                       sizeof compiled, compiled, NULL);
        if (err != CL_SUCCESS) return facl_fail_cl(err, "clGetKernelWorkGroupInfo");
        if (compiled[0] == plan.fixed_group) kernel_wg = plan.fixed_group;
    }
    if (plan.fixed_group && kernel_wg < plan.fixed_group)
        return facl_fail(FACL_ERROR_UNSUPPORTED,
                         "%s needs work-groups of %zu work-items; the device allows %zu for it",
                         plan.kernel, plan.fixed_group, kernel_wg);
    const size_t group = facl_plan_fwd_group_size(&plan, p, &ctx->profile, kernel_wg);
    /* Each work-group covers group / lanes * rows_per_item query rows of one (sequence, head). */
    const size_t rows_per_group = plan.block_m ? (size_t)plan.block_m
                                               : group / (size_t)plan.lanes * (size_t)plan.rows_per_item;
    /* At least one block: trusted prefix sums may describe rows beyond max_seqlen_q (even
     * with max_seqlen_q 0), and the kernels stride over them (facl.h, trust_cu_seqlens). */
    const size_t rows = p->seqlen_q > 0 ? (size_t)p->seqlen_q : 1;
    const size_t blocks = (rows + rows_per_group - 1) / rows_per_group;
    /* attn_fwd_wgmma's groups may take several blocks each (row_block_at) */
    const size_t per_group = plan.blocks_per_group > 1 ? (size_t)plan.blocks_per_group : 1;
    l->fwd_global[0] = (blocks + per_group - 1) / per_group * group;
    l->fwd_global[1] = (size_t)p->heads_q;
    l->fwd_global[2] = (size_t)p->batch;
    l->fwd_local[0] = group;
    l->fwd_local[1] = l->fwd_local[2] = 1;
    l->probs_global[0] = (size_t)p->seqlen_k;
    l->probs_global[1] = (size_t)p->seqlen_q;
    l->probs_global[2] = (size_t)p->batch * (size_t)p->heads_q;
    l->lse = p->lse;
    if (want_probs && !l->lse.buffer && (st = scratch_lse(ctx, p, &l->lse)) != FACL_SUCCESS)
        return st;
    facl_kernel_params_fill(p, &l->lse, &l->params);
    if (plan.tma) return prepare_tma(ctx, p, &plan, l);
    return plan.packed_kv ? prepare_packing(ctx, p, &plan, l) : FACL_SUCCESS;
}

facl_status facl_launch_fwd(facl_context *ctx, cl_command_queue queue, const facl_fwd_problem *p,
                            cl_uint num_wait, const cl_event *wait, cl_event *event)
{
    if (!queue) queue = ctx->queue;
    /* Nothing to compute: no sequence, or no query row anywhere (dense seqlen_q 0; varlen
     * with an empty q, whatever the prefix sums say). */
    if (p->batch == 0 || (p->varlen ? p->total_q == 0 : p->seqlen_q == 0)) {
        /* Still honour the wait list and hand back an event. */
        facl_enqueue_lock(ctx);
        cl_int err = clEnqueueMarkerWithWaitList(queue, num_wait, wait, event);
        facl_enqueue_unlock(ctx);
        return err == CL_SUCCESS ? FACL_SUCCESS : facl_fail_cl(err, "clEnqueueMarkerWithWaitList");
    }
    fwd_launch l = {0};
    facl_status st = prepare_launch(ctx, p, &l);
    if (st != FACL_SUCCESS) {
        release_launch(&l, p);
        return st;
    }
    cl_event fwd_done = NULL, packed = NULL;
    facl_enqueue_lock(ctx);
    cl_int err = bind_all(&l, p);
    if (err != CL_SUCCESS) st = facl_fail_cl(err, "clSetKernelArg");
    if (st == FACL_SUCCESS && l.pack) {
        /* The packing first; the forward waits for it through its event, so the order
         * holds on an out-of-order queue too. Its failure leaves nothing enqueued; the
         * forward's failure after it leaves only the library's own buffer written. */
        err = clEnqueueNDRangeKernel(queue, l.pack, 3, NULL, l.pack_global, NULL, num_wait, wait,
                                     &packed);
        if (err != CL_SUCCESS) st = facl_fail_cl(err, "enqueueing pack_kv_tiles");
    }
    if (st == FACL_SUCCESS && l.tma_fill) {
        /* The maps the same way (a call has packing or maps, never both) */
        const size_t one_group = 64;
        err = clEnqueueNDRangeKernel(queue, l.tma_fill, 1, NULL, &one_group, &one_group, num_wait,
                                     wait, &packed);
        if (err != CL_SUCCESS) st = facl_fail_cl(err, "enqueueing tma_maps_fill");
    }
    if (st == FACL_SUCCESS) {
        err = clEnqueueNDRangeKernel(queue, l.fwd, 3, NULL, l.fwd_global, l.fwd_local,
                                     packed ? 1 : num_wait, packed ? &packed : wait,
                                     (l.probs || event) ? &fwd_done : NULL);
        if (err != CL_SUCCESS) st = facl_fail_cl(err, "enqueueing the forward kernel");
    }
    if (packed) clReleaseEvent(packed);
    if (st == FACL_SUCCESS && l.probs) {
        /* In order after the forward on any queue: the event carries the dependency on
         * an out-of-order queue too. This enqueue is the one step that can still fail
         * after work the caller sees was enqueued (a driver out of resources; a failed
         * forward after the packing leaves only our own buffer written): out and lse are then
         * written and attn_probs is not, as docs/CONTRACT.md says. */
        cl_event probs_done = NULL;
        err = clEnqueueNDRangeKernel(queue, l.probs, 3, NULL, l.probs_global, NULL, 1, &fwd_done,
                                     event ? &probs_done : NULL);
        if (err != CL_SUCCESS) st = facl_fail_cl(err, "enqueueing attn_probs");
        clReleaseEvent(fwd_done);
        fwd_done = probs_done;
    }
    facl_enqueue_unlock(ctx);
    if (st == FACL_SUCCESS && event) *event = fwd_done;
    else if (fwd_done) clReleaseEvent(fwd_done);
    release_launch(&l, p);
    return st;
}
