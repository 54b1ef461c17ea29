/* Argument validation of the forward calls. Everything is checked before anything is
 * enqueued, so a rejected call writes nothing. Each failure names the argument. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "fwd_problem.h"
#include "status.h"
#include "struct_size.h"
#include "tensor_check.h"
#include "validate_common.h"

static const facl_attn_options default_options = FACL_ATTN_OPTIONS_INIT;

facl_status facl_read_attn_options(const char *name, const facl_attn_options *given,
                                   facl_attn_options *out)
{
#define END(f) FACL_FIELD_END(facl_attn_options, f)
    static const size_t ends[] = {END(softmax_scale), END(causal), END(mask_align),
                                  END(window_left), END(window_right), END(softcap),
                                  END(dropout_p), END(alibi_slopes), END(dropout_seed),
                                  END(dropout_offset), END(attn_probs), END(trust_cu_seqlens),
                                  END(deterministic), END(seqused_k)};
#undef END
    *out = default_options;
    if (!given) return FACL_SUCCESS;
    return facl_read_struct(name, given, given->struct_size, out, sizeof *out, ends,
                            sizeof ends / sizeof ends[0]);
}

facl_view facl_view_of(const facl_tensor *t, int batch_dim, int row_dim, int head_dim_index)
{
    facl_view v;
    v.buffer = t->buffer;
    v.offset = (int64_t)t->offset;
    v.sb = batch_dim >= 0 ? t->stride[batch_dim] : 0;
    v.ss = row_dim >= 0 ? t->stride[row_dim] : 0;
    v.sh = head_dim_index >= 0 ? t->stride[head_dim_index] : 0;
    return v;
}

/* Scalars of the options, and the parts of the problem that come from them alone. */
facl_status facl_check_scalar_options(const facl_attn_options *o, int head_dim,
                                      facl_fwd_problem *p)
{
    if (!isfinite(o->softmax_scale) || o->softmax_scale < 0.0f)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "opts->softmax_scale: %g (must be finite and >= 0; 0 = 1/sqrt(d))",
                         (double)o->softmax_scale);
    if (!isfinite(o->softcap) || o->softcap < 0.0f)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "opts->softcap: %g (must be finite and >= 0)",
                         (double)o->softcap);
    if (o->window_left < -1)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "opts->window_left: %d (must be >= -1)",
                         o->window_left);
    if (o->window_right < -1)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "opts->window_right: %d (must be >= -1)",
                         o->window_right);
    if (o->mask_align != FACL_ALIGN_BOTTOM_RIGHT && o->mask_align != FACL_ALIGN_TOP_LEFT)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "opts->mask_align: %d is not a facl_mask_align",
                         (int)o->mask_align);
    if (!(o->dropout_p >= 0.0f && o->dropout_p < 1.0f)) /* also rejects NaN */
        return facl_fail(FACL_ERROR_INVALID_VALUE, "opts->dropout_p: %g (must be in [0, 1))",
                         (double)o->dropout_p);
    if (o->causal != 0 && o->causal != 1)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "opts->causal: %d (must be 0 or 1)", o->causal);
    if (o->causal && o->window_right > 0)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "opts->window_right: %d with opts->causal (causal means window_right 0; "
                         "pass -1 or 0)",
                         o->window_right);
    if (o->deterministic != 0 && o->deterministic != 1)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "opts->deterministic: %d (must be 0 or 1)",
                         o->deterministic);
    if (o->trust_cu_seqlens != 0 && o->trust_cu_seqlens != 1)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "opts->trust_cu_seqlens: %d (must be 0 or 1)",
                         o->trust_cu_seqlens);
    p->scale = o->softmax_scale == 0.0f ? (float)(1.0 / sqrt((double)head_dim)) : o->softmax_scale;
    p->softcap = o->softcap;
    /* As FlashAttention 2: a window reaching past every key (>= the call's key length;
     * varlen: max_seqlen_k) is unbounded on that side. Window 0 stays 0 (causal) even
     * for a call without keys, where it changes nothing. */
    const int64_t keys = p->seqlen_k > 1 ? p->seqlen_k : 1;
    p->window_left = o->window_left >= keys ? -1 : o->window_left;
    p->window_right = o->causal ? 0 : o->window_right >= keys ? -1 : o->window_right;
    p->align_top_left = o->mask_align == FACL_ALIGN_TOP_LEFT;
    p->dropout_p = o->dropout_p;
    p->drop_threshold = (uint32_t)fmin(ldexp((double)o->dropout_p, 32), 4294967295.0);
    p->drop_scale = 1.0f / (1.0f - o->dropout_p);
    p->seed = o->dropout_seed;
    p->offset = o->dropout_offset;
    p->dq_atomics = !o->deterministic;
    return FACL_SUCCESS;
}

/* The optional tensors: lse, alibi slopes and the attn_probs debug output. */
facl_status facl_check_optional_tensors(const facl_context *ctx, const facl_tensor *lse,
                                        const facl_attn_options *o, facl_fwd_problem *p)
{
    facl_status st;
    if (lse) {
        if (p->varlen) { /* (heads_q, total_q) */
            if ((st = facl_check_tensor(ctx, "lse", lse, 2, 1u << FACL_DTYPE_F32)) ||
                (st = facl_check_dim("lse", lse, 0, p->heads_q, "heads_q")) ||
                (st = facl_check_dim("lse", lse, 1, p->total_q, "total_q")))
                return st;
            p->lse = facl_view_of(lse, -1, 1, 0);
        } else { /* (batch, heads_q, seqlen_q) */
            if ((st = facl_check_tensor(ctx, "lse", lse, 3, 1u << FACL_DTYPE_F32)) ||
                (st = facl_check_dim("lse", lse, 0, p->batch, "batch")) ||
                (st = facl_check_dim("lse", lse, 1, p->heads_q, "heads_q")) ||
                (st = facl_check_dim("lse", lse, 2, p->seqlen_q, "seqlen_q")))
                return st;
            p->lse = facl_view_of(lse, 0, 2, 1);
        }
    }
    if (o->alibi_slopes) {
        const facl_tensor *a = o->alibi_slopes;
        const int per_batch = a->ndim == 2;
        if (a->ndim != 1 && a->ndim != 2)
            return facl_fail(FACL_ERROR_INVALID_SHAPE,
                             "opts->alibi_slopes: must be (heads_q) or (batch, heads_q), got %d dimensions",
                             a->ndim);
        if ((st = facl_check_tensor(ctx, "opts->alibi_slopes", a, a->ndim, 1u << FACL_DTYPE_F32)))
            return st;
        if (per_batch &&
            (st = facl_check_dim("opts->alibi_slopes", a, 0, p->batch, "batch")))
            return st;
        if ((st = facl_check_dim("opts->alibi_slopes", a, per_batch, p->heads_q, "heads_q")))
            return st;
        p->alibi = facl_view_of(a, per_batch ? 0 : -1, -1, per_batch);
    }
    if (o->seqused_k) {
        if ((st = facl_check_tensor(ctx, "opts->seqused_k", o->seqused_k, 1, 1u << FACL_DTYPE_I32)) ||
            (st = facl_check_dim("opts->seqused_k", o->seqused_k, 0, p->batch, "batch")))
            return st;
        p->seqused = o->seqused_k->buffer;
        p->seqused_off = (int64_t)o->seqused_k->offset;
    }
    if (o->attn_probs) {
        const facl_tensor *t = o->attn_probs;
        if ((st = facl_check_tensor(ctx, "opts->attn_probs", t, 4, 1u << FACL_DTYPE_F32)) ||
            (st = facl_check_dim("opts->attn_probs", t, 0, p->batch, "batch")) ||
            (st = facl_check_dim("opts->attn_probs", t, 1, p->heads_q, "heads_q")) ||
            (st = facl_check_dim("opts->attn_probs", t, 2, p->seqlen_q, "seqlen_q")) ||
            (st = facl_check_dim("opts->attn_probs", t, 3, p->seqlen_k, "seqlen_k")))
            return st;
        p->probs = facl_view_of(t, 0, 2, 1);
    }
    return FACL_SUCCESS;
}

/* q, k, v, out: present, same float dtype, same head_dim (last dim), head_dim in range,
 * heads_q a multiple of heads_kv. q and out have rank_q dimensions (4 dense, 3 varlen),
 * k and v rank_k (the same, or 4 for paged keys). */
facl_status facl_check_qkvo(const facl_context *ctx, const facl_tensor *q, const facl_tensor *k,
                            const facl_tensor *v, const facl_tensor *out, int rank_q, int rank_k,
                            const facl_fwd_names *n, facl_fwd_problem *p)
{
    facl_status st;
    if ((st = facl_check_tensor(ctx, n->q, q, rank_q, FACL_FLOAT_DTYPES)) ||
        (st = facl_check_tensor(ctx, n->k, k, rank_k, FACL_FLOAT_DTYPES)) ||
        (st = facl_check_tensor(ctx, n->v, v, rank_k, FACL_FLOAT_DTYPES)) ||
        (st = facl_check_tensor(ctx, "out", out, rank_q, FACL_FLOAT_DTYPES)))
        return st;
    const facl_tensor *others[3] = {k, v, out};
    const char *other_names[3] = {n->k, n->v, "out"};
    const int other_ranks[3] = {rank_k, rank_k, rank_q};
    for (int i = 0; i < 3; ++i)
        if (others[i]->dtype != q->dtype)
            return facl_fail(FACL_ERROR_INVALID_DTYPE, "%s: dtype %s differs from %s's dtype %s",
                             other_names[i], facl_dtype_name((facl_dtype)others[i]->dtype), n->q,
                             facl_dtype_name((facl_dtype)q->dtype));
    const int64_t d = q->shape[rank_q - 1];
    if (d < 1 || d > FACL_MAX_HEAD_DIM)
        return facl_fail(FACL_ERROR_INVALID_HEAD_DIM, "%s: head_dim %lld is outside 1..%d", n->q,
                         (long long)d, FACL_MAX_HEAD_DIM);
    for (int i = 0; i < 3; ++i)
        if ((st = facl_check_dim(other_names[i], others[i], other_ranks[i] - 1, d, "head_dim")))
            return st;
    for (int dim = 0; dim < rank_q; ++dim)
        if ((st = facl_check_dim("out", out, dim, q->shape[dim], "out must be shaped like q")))
            return st;
    for (int dim = 0; dim < rank_k - 1; ++dim)
        if ((st = facl_check_dim(n->v, v, dim, k->shape[dim], "v must be shaped like k")))
            return st;
    const int64_t heads_q = q->shape[rank_q - 2], heads_kv = k->shape[rank_k - 2];
    if (heads_q < 1 || heads_kv < 1 || heads_q % heads_kv != 0)
        return facl_fail(FACL_ERROR_INVALID_HEADS,
                         "%s: heads_q %lld is not a positive multiple of %s's heads_kv %lld", n->q,
                         (long long)heads_q, n->k, (long long)heads_kv);
    if ((st = facl_check_fits_int("heads_q", heads_q))) return st;
    p->dtype = q->dtype;
    p->head_dim = (int)d;
    p->heads_q = (int)heads_q;
    p->heads_kv = (int)heads_kv;
    return FACL_SUCCESS;
}

/* The caller's options over the defaults (struct_size decides how many fields it has),
 * into `local`; *opts then points there. */
facl_status facl_check_common(const facl_context *ctx, cl_command_queue queue,
                              const facl_attn_options **opts, facl_attn_options *local)
{
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    facl_status st = facl_read_attn_options("opts", *opts, local);
    if (st != FACL_SUCCESS) return st;
    *opts = local;
    return facl_check_queue(ctx, queue);
}

facl_status facl_validate_fwd_dense(const facl_context *ctx, cl_command_queue queue,
                                    const facl_tensor *q, const facl_tensor *k,
                                    const facl_tensor *v, const facl_tensor *out,
                                    const facl_tensor *lse, const facl_attn_options *opts,
                                    const facl_fwd_names *names, cl_uint num_wait_events,
                                    const cl_event *wait_events, facl_fwd_problem *p)
{
    memset(p, 0, sizeof *p);
    facl_attn_options local;
    facl_status st;
    if ((st = facl_check_common(ctx, queue, &opts, &local))) return st;
    if (opts->block_table)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "opts->block_table: dense calls have no block table; use "
                         "facl_fwd_kvcache");
    if ((st = facl_check_qkvo(ctx, q, k, v, out, 4, 4, names, p))) return st;
    if ((st = facl_check_dim(names->k, k, 0, q->shape[0], "batch must match q")) ||
        (st = facl_check_fits_int("batch", q->shape[0])) ||
        (st = facl_check_fits_int("seqlen_q", q->shape[1])) ||
        (st = facl_check_fits_int("seqlen_k", k->shape[1])))
        return st;
    p->batch = (int)q->shape[0];
    p->seqlen_q = (int)q->shape[1];
    p->seqlen_k = (int)k->shape[1];
    p->q = facl_view_of(q, 0, 1, 2);
    p->k = facl_view_of(k, 0, 1, 2);
    p->v = facl_view_of(v, 0, 1, 2);
    p->out = facl_view_of(out, 0, 1, 2);
    if ((st = facl_check_scalar_options(opts, p->head_dim, p)) ||
        (st = facl_check_optional_tensors(ctx, lse, opts, p)))
        return st;
    if (!opts->seqused_k || opts->trust_cu_seqlens) return FACL_SUCCESS;
    return facl_check_seqused(ctx, queue ? queue : ctx->queue, opts->seqused_k, p, NULL,
                              num_wait_events, wait_events, NULL);
}

facl_status facl_read_int32_range(const facl_context *ctx, cl_command_queue queue, cl_mem buffer,
                                  uint64_t offset, size_t count, const char *name,
                                  cl_uint num_wait_events, const cl_event *wait_events,
                                  int32_t **values)
{
    *values = malloc((count ? count : 1) * sizeof **values);
    if (!*values) return facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "%s: host copy", name);
    if (count == 0) return FACL_SUCCESS;
    /* The wait list may hold events that another thread completes only after its own
     * call: wait outside the lock. */
    cl_event read_done = NULL;
    facl_enqueue_lock(ctx);
    cl_int err = clEnqueueReadBuffer(queue, buffer, CL_FALSE, offset * sizeof(int32_t),
                                     count * sizeof **values, *values, num_wait_events,
                                     wait_events, &read_done);
    facl_enqueue_unlock(ctx);
    if (err == CL_SUCCESS) err = clWaitForEvents(1, &read_done);
    if (read_done) clReleaseEvent(read_done);
    if (err == CL_SUCCESS) return FACL_SUCCESS;
    free(*values);
    *values = NULL;
    return facl_fail_cl(err, name);
}

facl_status facl_read_int32s(const facl_context *ctx, cl_command_queue queue,
                             const facl_tensor *t, const char *name, cl_uint num_wait_events,
                             const cl_event *wait_events, int32_t **values)
{
    return facl_read_int32_range(ctx, queue, t->buffer, t->offset, (size_t)t->shape[0], name,
                                 num_wait_events, wait_events, values);
}

facl_status facl_check_prefix_sums(const facl_context *ctx, cl_command_queue queue,
                                   const facl_tensor *cu, const char *name, int64_t total,
                                   int64_t max_seqlen, const char *max_name,
                                   cl_uint num_wait_events, const cl_event *wait_events,
                                   int32_t **sums_out)
{
    const size_t count = (size_t)cu->shape[0];
    int32_t *sums;
    facl_status st = facl_read_int32s(ctx, queue, cu, name, num_wait_events, wait_events, &sums);
    if (st != FACL_SUCCESS) return st;
    if (sums[0] != 0) {
        st = facl_fail(FACL_ERROR_INVALID_SEQLENS, "%s[0] is %d, must be 0", name, sums[0]);
    } else {
        for (size_t b = 0; b + 1 < count && st == FACL_SUCCESS; ++b) {
            const int64_t len = (int64_t)sums[b + 1] - sums[b];
            if (len < 0)
                st = facl_fail(FACL_ERROR_INVALID_SEQLENS, "%s: decreases at index %zu", name, b + 1);
            else if (len > max_seqlen)
                st = facl_fail(FACL_ERROR_INVALID_SEQLENS,
                               "%s: sequence %zu has length %lld > %s = %lld", name, b,
                               (long long)len, max_name, (long long)max_seqlen);
        }
        if (st == FACL_SUCCESS && sums[count - 1] > total)
            st = facl_fail(FACL_ERROR_INVALID_SEQLENS, "%s: last prefix sum %d exceeds %lld rows",
                           name, sums[count - 1], (long long)total);
    }
    if (st != FACL_SUCCESS) {
        free(sums);
        sums = NULL;
    }
    *sums_out = sums;
    return st;
}

facl_status facl_check_seqused(const facl_context *ctx, cl_command_queue queue,
                               const facl_tensor *seqused, const facl_fwd_problem *p,
                               const int32_t *cu_k, cl_uint num_wait_events,
                               const cl_event *wait_events, int32_t **used_out)
{
    int32_t *used;
    facl_status st = facl_read_int32s(ctx, queue, seqused, "opts->seqused_k", num_wait_events,
                                      wait_events, &used);
    for (int b = 0; b < p->batch && st == FACL_SUCCESS; ++b) {
        const int64_t keys = cu_k ? (int64_t)cu_k[b + 1] - cu_k[b] : p->seqlen_k;
        if (used[b] < 0 || used[b] > keys)
            st = facl_fail(FACL_ERROR_INVALID_SEQLENS,
                           "opts->seqused_k: [%d] is %d, outside 0..%lld (the sequence's keys)",
                           b, used[b], (long long)keys);
    }
    if (st == FACL_SUCCESS && used_out) {
        *used_out = used;
        return st;
    }
    free(used);
    return st;
}

facl_status facl_check_varlen_seqlens(const facl_context *ctx, const facl_tensor *q,
                                      const facl_tensor *cu_q, const facl_tensor *cu_k,
                                      int64_t max_seqlen_q, int64_t max_seqlen_k,
                                      facl_fwd_problem *p)
{
    facl_status st;
    if ((st = facl_check_tensor(ctx, "cu_seqlens_q", cu_q, 1, 1u << FACL_DTYPE_I32)) ||
        (st = facl_check_tensor(ctx, "cu_seqlens_k", cu_k, 1, 1u << FACL_DTYPE_I32)))
        return st;
    if (cu_q->shape[0] < 1)
        return facl_fail(FACL_ERROR_INVALID_SHAPE, "cu_seqlens_q: needs batch + 1 >= 1 entries");
    if ((st = facl_check_dim("cu_seqlens_k", cu_k, 0, cu_q->shape[0],
                             "cu_seqlens_q and cu_seqlens_k need the same batch + 1 entries")))
        return st;
    if (max_seqlen_q < 0 || max_seqlen_k < 0)
        return facl_fail(FACL_ERROR_INVALID_SEQLENS, "%s: negative (%lld)",
                         max_seqlen_q < 0 ? "max_seqlen_q" : "max_seqlen_k",
                         (long long)(max_seqlen_q < 0 ? max_seqlen_q : max_seqlen_k));
    if ((st = facl_check_fits_int("batch", cu_q->shape[0] - 1)) ||
        (st = facl_check_fits_int("total_q", q->shape[0])) ||
        (st = facl_check_fits_int("max_seqlen_q", max_seqlen_q)) ||
        (st = facl_check_fits_int("max_seqlen_k", max_seqlen_k)))
        return st;
    p->varlen = 1;
    p->batch = (int)(cu_q->shape[0] - 1);
    p->total_q = (int)q->shape[0];
    p->seqlen_q = (int)max_seqlen_q;
    p->seqlen_k = (int)max_seqlen_k;
    p->cu_q = cu_q->buffer;
    p->cu_k = cu_k->buffer;
    p->cu_q_off = (int64_t)cu_q->offset;
    p->cu_k_off = (int64_t)cu_k->offset;
    return FACL_SUCCESS;
}

facl_status facl_validate_fwd_varlen(const facl_context *ctx, cl_command_queue queue,
                                     const facl_tensor *q, const facl_tensor *k,
                                     const facl_tensor *v, const facl_tensor *cu_q,
                                     const facl_tensor *cu_k, int64_t max_seqlen_q,
                                     int64_t max_seqlen_k, const facl_tensor *out,
                                     const facl_tensor *lse, const facl_attn_options *opts,
                                     const facl_fwd_names *names, cl_uint num_wait_events,
                                     const cl_event *wait_events, facl_fwd_problem *p)
{
    memset(p, 0, sizeof *p);
    p->varlen = 1;
    facl_attn_options local;
    facl_status st;
    if ((st = facl_check_common(ctx, queue, &opts, &local))) return st;
    /* The public varlen calls take paged keys through facl_validate_varlen_paged; the
     * qkv-packed one refuses them before coming here. */
    if (opts->block_table)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "opts->block_table: this call takes no block table");
    if ((st = facl_check_qkvo(ctx, q, k, v, out, 3, 3, names, p)) ||
        (st = facl_check_varlen_seqlens(ctx, q, cu_q, cu_k, max_seqlen_q, max_seqlen_k, p)) ||
        (st = facl_check_fits_int("total_k", k->shape[0])))
        return st;
    p->total_k = (int)k->shape[0];
    p->q = facl_view_of(q, -1, 0, 1);
    p->k = facl_view_of(k, -1, 0, 1);
    p->v = facl_view_of(v, -1, 0, 1);
    p->out = facl_view_of(out, -1, 0, 1);
    if ((st = facl_check_scalar_options(opts, p->head_dim, p)) ||
        (st = facl_check_optional_tensors(ctx, lse, opts, p)))
        return st;
    if (opts->trust_cu_seqlens) return FACL_SUCCESS;
    if (!queue) queue = ctx->queue;
    int32_t *sums_q = NULL, *sums_k = NULL;
    st = facl_check_prefix_sums(ctx, queue, cu_q, "cu_seqlens_q", p->total_q, max_seqlen_q,
                                "max_seqlen_q", num_wait_events, wait_events, &sums_q);
    /* The qkv-packed varlen call passes one array twice: one read checks both roles. */
    const int same = cu_k == cu_q && max_seqlen_k == max_seqlen_q && p->total_k == p->total_q;
    if (st == FACL_SUCCESS && !same)
        st = facl_check_prefix_sums(ctx, queue, cu_k, "cu_seqlens_k", p->total_k, max_seqlen_k,
                                    "max_seqlen_k", num_wait_events, wait_events, &sums_k);
    if (st == FACL_SUCCESS && opts->seqused_k)
        st = facl_check_seqused(ctx, queue, opts->seqused_k, p, same ? sums_q : sums_k,
                                num_wait_events, wait_events, NULL);
    free(sums_q);
    free(sums_k);
    return st;
}
