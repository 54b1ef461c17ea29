/* Argument validation of the backward calls. q, k, v, out, lse and the options go
 * through the forward's validation (validate_fwd.c), so both directions accept and refuse
 * exactly the same things; this file adds what only the backward has: lse required,
 * dout, the gradients, the workspace, and the options the backward cannot honour.
 * Everything is checked before anything is enqueued, so a rejected call writes nothing. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bwd_problem.h"
#include "context.h"
#include "status.h"
#include "tensor_check.h"
#include "validate_common.h"

/* Options read before the forward's validation: the ones only the backward refuses. */
static facl_status check_bwd_options(const facl_attn_options *opts, const facl_tensor *lse)
{
    facl_attn_options o;
    facl_status st = facl_read_attn_options("opts", opts, &o);
    if (st != FACL_SUCCESS) return st;
    if (o.attn_probs)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "opts->attn_probs: the backward has no attn_probs output (pass NULL)");
    if (o.block_table)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "opts->block_table: the backward takes no paged keys (pass NULL)");
    if (!lse)
        return facl_fail(FACL_ERROR_NULL_ARGUMENT,
                         "lse: NULL (the backward needs the forward's lse)");
    return FACL_SUCCESS;
}

/* `t` (named `name`) must be a valid view of `like`'s dtype and shape. */
static facl_status check_like(const facl_context *ctx, const char *name, const facl_tensor *t,
                              const facl_tensor *like, const char *like_name)
{
    facl_status st = facl_check_tensor(ctx, name, t, like->ndim, FACL_FLOAT_DTYPES);
    if (st != FACL_SUCCESS) return st;
    if (t->dtype != like->dtype)
        return facl_fail(FACL_ERROR_INVALID_DTYPE, "%s: dtype %s differs from %s's dtype %s", name,
                         facl_dtype_name((facl_dtype)t->dtype), like_name,
                         facl_dtype_name((facl_dtype)like->dtype));
    char what[64];
    snprintf(what, sizeof what, "%s must be shaped like %s", name, like_name);
    for (int d = 0; d < like->ndim; ++d)
        if ((st = facl_check_dim(name, t, d, like->shape[d], what))) return st;
    return FACL_SUCCESS;
}

/* dout, dq, dk, dv against q, k and v (valid views by now), and the workspace's dtype
 * and rank; fills the views. Its length is checked at the launch, once the plan says
 * how much the call needs (bwd_launch.c), still before anything is enqueued. */
static facl_status check_grads(const facl_context *ctx, const facl_tensor *dout,
                               const facl_tensor *q, const facl_tensor *k, const facl_tensor *v,
                               const facl_tensor *dq, const facl_tensor *dk,
                               const facl_tensor *dv, const facl_tensor *workspace,
                               const facl_bwd_names *n, facl_bwd_problem *p)
{
    facl_status st;
    if ((st = check_like(ctx, "dout", dout, q, n->fwd.q)) ||
        (st = check_like(ctx, n->dq, dq, q, n->fwd.q)) ||
        (st = check_like(ctx, n->dk, dk, k, n->fwd.k)) ||
        (st = check_like(ctx, n->dv, dv, v, n->fwd.v)))
        return st;
    const int varlen = q->ndim == 3;
    const int b = varlen ? -1 : 0, r = varlen ? 0 : 1, h = varlen ? 1 : 2;
    p->dout = facl_view_of(dout, b, r, h);
    p->dq = facl_view_of(dq, b, r, h);
    p->dk = facl_view_of(dk, b, r, h);
    p->dv = facl_view_of(dv, b, r, h);
    if (workspace) {
        if ((st = facl_check_tensor(ctx, "workspace", workspace, 1, 1u << FACL_DTYPE_F32)))
            return st;
        p->workspace = workspace->buffer;
        p->workspace_off = (int64_t)workspace->offset;
        p->workspace_floats = workspace->shape[0];
    }
    return FACL_SUCCESS;
}

facl_status facl_validate_bwd_dense(const facl_context *ctx, cl_command_queue queue,
                                    const facl_tensor *dout, const facl_tensor *q,
                                    const facl_tensor *k, const facl_tensor *v,
                                    const facl_tensor *out, const facl_tensor *lse,
                                    const facl_tensor *dq, const facl_tensor *dk,
                                    const facl_tensor *dv, const facl_attn_options *opts,
                                    const facl_tensor *workspace, const facl_bwd_names *names,
                                    cl_uint num_wait, const cl_event *wait, facl_bwd_problem *p)
{
    memset(p, 0, sizeof *p);
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    facl_status st = check_bwd_options(opts, lse);
    if (st != FACL_SUCCESS) return st;
    /* The gradients first: the forward's validation may block for a seqused_k read. */
    if ((st = facl_check_tensor(ctx, names->fwd.q, q, 4, FACL_FLOAT_DTYPES)) ||
        (st = facl_check_tensor(ctx, names->fwd.k, k, 4, FACL_FLOAT_DTYPES)) ||
        (st = facl_check_tensor(ctx, names->fwd.v, v, 4, FACL_FLOAT_DTYPES)))
        return st;
    if ((st = check_grads(ctx, dout, q, k, v, dq, dk, dv, workspace, names, p)))
        return st;
    /* Everything of the forward's, into p->f (which it resets; the views above stay). */
    return facl_validate_fwd_dense(ctx, queue, q, k, v, out, lse, opts, &names->fwd, num_wait,
                                   wait, &p->f);
}

facl_status facl_validate_bwd_varlen(const facl_context *ctx, cl_command_queue queue,
                                     const facl_tensor *dout, const facl_tensor *q,
                                     const facl_tensor *k, const facl_tensor *v,
                                     const facl_tensor *cu_q, const facl_tensor *cu_k,
                                     int64_t max_seqlen_q, int64_t max_seqlen_k,
                                     const facl_tensor *out, const facl_tensor *lse,
                                     const facl_tensor *dq, const facl_tensor *dk,
                                     const facl_tensor *dv, const facl_attn_options *opts,
                                     const facl_tensor *workspace, const facl_bwd_names *names,
                                     cl_uint num_wait, const cl_event *wait, facl_bwd_problem *p)
{
    memset(p, 0, sizeof *p);
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    facl_status st = check_bwd_options(opts, lse);
    if (st != FACL_SUCCESS) return st;
    /* The gradients first: the forward's validation blocks for the cu_seqlens read. */
    if ((st = facl_check_tensor(ctx, names->fwd.q, q, 3, FACL_FLOAT_DTYPES)) ||
        (st = facl_check_tensor(ctx, names->fwd.k, k, 3, FACL_FLOAT_DTYPES)) ||
        (st = facl_check_tensor(ctx, names->fwd.v, v, 3, FACL_FLOAT_DTYPES)))
        return st;
    if ((st = check_grads(ctx, dout, q, k, v, dq, dk, dv, workspace, names, p)))
        return st;
    return facl_validate_fwd_varlen(ctx, queue, q, k, v, cu_q, cu_k, max_seqlen_q, max_seqlen_k,
                                    out, lse, opts, &names->fwd, num_wait, wait, &p->f);
}
