/* Public forward entry points. Packed calls only build views over the packed buffer
 * (no copies) and then follow the dense or varlen path; varlen calls with
 * opts->block_table take the paged path of the KV-cache kernels. */
#include "cache_problem.h"
#include "context.h"
#include "fwd_problem.h"
#include "status.h"
#include "tensor_check.h"

static const facl_fwd_names plain_names = {"q", "k", "v"};

/* opts->block_table as far as the caller's struct reaches (NULL for an older struct);
 * a struct that cannot be read fails here as it would in validation. */
static facl_status block_table_of(const facl_attn_options *opts, const facl_tensor **table)
{
    facl_attn_options o;
    const facl_status st = facl_read_attn_options("opts", opts, &o);
    *table = st == FACL_SUCCESS ? o.block_table : NULL;
    return st;
}

facl_status facl_fwd(facl_context *ctx, cl_command_queue queue, const facl_tensor *q,
                     const facl_tensor *k, const facl_tensor *v, const facl_tensor *out,
                     const facl_tensor *lse, const facl_attn_options *opts, cl_uint num_wait,
                     const cl_event *wait, cl_event *event)
{
    facl_error_clear();
    facl_fwd_problem p;
    facl_status st = facl_validate_fwd_dense(ctx, queue, q, k, v, out, lse, opts, &plain_names,
                                             num_wait, wait, &p);
    return st != FACL_SUCCESS ? st : facl_launch_fwd(ctx, queue, &p, num_wait, wait, event);
}

facl_status facl_fwd_qkvpacked(facl_context *ctx, cl_command_queue queue, const facl_tensor *qkv,
                               const facl_tensor *out, const facl_tensor *lse,
                               const facl_attn_options *opts, cl_uint num_wait,
                               const cl_event *wait, cl_event *event)
{
    facl_error_clear();
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    facl_status st = facl_check_packed(ctx, "qkv", qkv, 5, 2, 3);
    if (st != FACL_SUCCESS) return st;
    const facl_tensor q = facl_tensor_unpack(qkv, 2, 0), k = facl_tensor_unpack(qkv, 2, 1),
                      v = facl_tensor_unpack(qkv, 2, 2);
    const facl_fwd_names names = {"qkv[:, :, 0]", "qkv[:, :, 1]", "qkv[:, :, 2]"};
    facl_fwd_problem p;
    st = facl_validate_fwd_dense(ctx, queue, &q, &k, &v, out, lse, opts, &names, num_wait, wait,
                                 &p);
    return st != FACL_SUCCESS ? st : facl_launch_fwd(ctx, queue, &p, num_wait, wait, event);
}

facl_status facl_fwd_kvpacked(facl_context *ctx, cl_command_queue queue, const facl_tensor *q,
                              const facl_tensor *kv, const facl_tensor *out,
                              const facl_tensor *lse, const facl_attn_options *opts,
                              cl_uint num_wait, const cl_event *wait, cl_event *event)
{
    facl_error_clear();
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    facl_status st = facl_check_packed(ctx, "kv", kv, 5, 2, 2);
    if (st != FACL_SUCCESS) return st;
    const facl_tensor k = facl_tensor_unpack(kv, 2, 0), v = facl_tensor_unpack(kv, 2, 1);
    const facl_fwd_names names = {"q", "kv[:, :, 0]", "kv[:, :, 1]"};
    facl_fwd_problem p;
    st = facl_validate_fwd_dense(ctx, queue, q, &k, &v, out, lse, opts, &names, num_wait, wait,
                                 &p);
    return st != FACL_SUCCESS ? st : facl_launch_fwd(ctx, queue, &p, num_wait, wait, event);
}

facl_status facl_varlen_fwd(facl_context *ctx, cl_command_queue queue, const facl_tensor *q,
                            const facl_tensor *k, const facl_tensor *v,
                            const facl_tensor *cu_seqlens_q, const facl_tensor *cu_seqlens_k,
                            int64_t max_seqlen_q, int64_t max_seqlen_k, const facl_tensor *out,
                            const facl_tensor *lse, const facl_attn_options *opts,
                            cl_uint num_wait, const cl_event *wait, cl_event *event)
{
    facl_error_clear();
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    const facl_tensor *table;
    facl_status st = block_table_of(opts, &table);
    if (st != FACL_SUCCESS) return st;
    if (table) {
        facl_cache_problem cp;
        st = facl_validate_varlen_paged(ctx, queue, q, k, v, cu_seqlens_q, cu_seqlens_k,
                                        max_seqlen_q, max_seqlen_k, out, lse, opts, &plain_names,
                                        num_wait, wait, &cp);
        return st != FACL_SUCCESS ? st : facl_launch_cache(ctx, queue, &cp, num_wait, wait, event);
    }
    facl_fwd_problem p;
    st = facl_validate_fwd_varlen(ctx, queue, q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                                  max_seqlen_k, out, lse, opts, &plain_names, num_wait, wait, &p);
    return st != FACL_SUCCESS ? st : facl_launch_fwd(ctx, queue, &p, num_wait, wait, event);
}

facl_status facl_varlen_fwd_qkvpacked(facl_context *ctx, cl_command_queue queue,
                                      const facl_tensor *qkv, const facl_tensor *cu_seqlens,
                                      int64_t max_seqlen, const facl_tensor *out,
                                      const facl_tensor *lse, const facl_attn_options *opts,
                                      cl_uint num_wait, const cl_event *wait, cl_event *event)
{
    facl_error_clear();
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    const facl_tensor *table;
    facl_status st = block_table_of(opts, &table);
    if (st != FACL_SUCCESS) return st;
    if (table)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "opts->block_table: the qkv-packed varlen call cannot be paged (its keys "
                         "are rows of qkv); use facl_varlen_fwd or facl_varlen_fwd_kvpacked");
    st = facl_check_packed(ctx, "qkv", qkv, 4, 1, 3);
    if (st != FACL_SUCCESS) return st;
    const facl_tensor q = facl_tensor_unpack(qkv, 1, 0), k = facl_tensor_unpack(qkv, 1, 1),
                      v = facl_tensor_unpack(qkv, 1, 2);
    const facl_fwd_names names = {"qkv[:, 0]", "qkv[:, 1]", "qkv[:, 2]"};
    facl_fwd_problem p;
    st = facl_validate_fwd_varlen(ctx, queue, &q, &k, &v, cu_seqlens, cu_seqlens, max_seqlen,
                                  max_seqlen, out, lse, opts, &names, num_wait, wait, &p);
    return st != FACL_SUCCESS ? st : facl_launch_fwd(ctx, queue, &p, num_wait, wait, event);
}

facl_status facl_varlen_fwd_kvpacked(facl_context *ctx, cl_command_queue queue,
                                     const facl_tensor *q, const facl_tensor *kv,
                                     const facl_tensor *cu_seqlens_q,
                                     const facl_tensor *cu_seqlens_k, int64_t max_seqlen_q,
                                     int64_t max_seqlen_k, const facl_tensor *out,
                                     const facl_tensor *lse, const facl_attn_options *opts,
                                     cl_uint num_wait, const cl_event *wait, cl_event *event)
{
    facl_error_clear();
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    const facl_tensor *table;
    facl_status st = block_table_of(opts, &table);
    if (st != FACL_SUCCESS) return st;
    if (table) { /* kv (num_blocks, page_size, 2, heads_kv, d) */
        if ((st = facl_check_packed(ctx, "kv", kv, 5, 2, 2))) return st;
        const facl_tensor k = facl_tensor_unpack(kv, 2, 0), v = facl_tensor_unpack(kv, 2, 1);
        const facl_fwd_names names = {"q", "kv[:, :, 0]", "kv[:, :, 1]"};
        facl_cache_problem cp;
        st = facl_validate_varlen_paged(ctx, queue, q, &k, &v, cu_seqlens_q, cu_seqlens_k,
                                        max_seqlen_q, max_seqlen_k, out, lse, opts, &names,
                                        num_wait, wait, &cp);
        return st != FACL_SUCCESS ? st : facl_launch_cache(ctx, queue, &cp, num_wait, wait, event);
    }
    st = facl_check_packed(ctx, "kv", kv, 4, 1, 2);
    if (st != FACL_SUCCESS) return st;
    const facl_tensor k = facl_tensor_unpack(kv, 1, 0), v = facl_tensor_unpack(kv, 1, 1);
    const facl_fwd_names names = {"q", "kv[:, 0]", "kv[:, 1]"};
    facl_fwd_problem p;
    st = facl_validate_fwd_varlen(ctx, queue, q, &k, &v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                                  max_seqlen_k, out, lse, opts, &names, num_wait, wait, &p);
    return st != FACL_SUCCESS ? st : facl_launch_fwd(ctx, queue, &p, num_wait, wait, event);
}
