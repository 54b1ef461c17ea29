/* Public backward entry points. As in api_fwd.c, packed calls only build views over
 * their packed tensors (qkv and dqkv, kv and dkv; no copies) and then follow the dense
 * or varlen path. */
#include "bwd_plan.h"
#include "bwd_problem.h"
#include "context.h"
#include "status.h"
#include "tensor_check.h"

static const facl_bwd_names plain_names = {{"q", "k", "v"}, "dq", "dk", "dv"};

facl_status facl_bwd_workspace_size(const facl_context *ctx, int64_t rows_q, int64_t heads_q,
                                    int64_t head_dim, int32_t deterministic, uint64_t *bytes)
{
    facl_error_clear();
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    if (!bytes) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "bytes: NULL");
    if (rows_q < 0) return facl_fail(FACL_ERROR_INVALID_VALUE, "rows_q: negative (%lld)", (long long)rows_q);
    if (heads_q < 1)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "heads_q: %lld (must be >= 1)", (long long)heads_q);
    if (head_dim < 1 || head_dim > FACL_MAX_HEAD_DIM)
        return facl_fail(FACL_ERROR_INVALID_HEAD_DIM, "head_dim: %lld (must be 1..%d)",
                         (long long)head_dim, FACL_MAX_HEAD_DIM);
    if (deterministic != 0 && deterministic != 1)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "deterministic: %d (must be 0 or 1)",
                         (int)deterministic);
    /* The accumulator wherever this context's calls may take the tensor-core kernels with
     * atomic dq: attn_bwd_mma's with the opt-in, attn_bwd_wgmma's also by default (for long
     * sequences; bwd_plan.c). The probe has not necessarily run yet; if it fails, or a call
     * is short, calls need less. */
    const facl_device_profile *pr = &ctx->profile;
    const int wgmma_atomic =
        pr->bwd_wgmma_dq_atomic && pr->bwd_wgmma != FACL_BWD_WGMMA_OFF && head_dim <= 128;
    const int dq_atomic = !deterministic && (pr->bwd_dq_atomic || wgmma_atomic) &&
                          facl_bwd_mma_applies(pr, (int)head_dim);
    const uint64_t per = facl_bwd_workspace_entry_floats((int)head_dim, dq_atomic);
    if (rows_q > 0 && (uint64_t)heads_q > UINT64_MAX / 4 / per / (uint64_t)rows_q)
        return facl_fail(FACL_ERROR_SIZE_OVERFLOW, "rows_q * heads_q: overflows 64-bit bytes");
    *bytes = facl_bwd_workspace_floats(rows_q, heads_q, (int)head_dim, dq_atomic) * sizeof(float);
    return FACL_SUCCESS;
}

facl_status facl_bwd(facl_context *ctx, cl_command_queue queue, const facl_tensor *dout,
                     const facl_tensor *q, const facl_tensor *k, const facl_tensor *v,
                     const facl_tensor *out, const facl_tensor *lse, const facl_tensor *dq,
                     const facl_tensor *dk, const facl_tensor *dv, const facl_attn_options *opts,
                     const facl_tensor *workspace, cl_uint num_wait, const cl_event *wait,
                     cl_event *event)
{
    facl_error_clear();
    facl_bwd_problem p;
    facl_status st = facl_validate_bwd_dense(ctx, queue, dout, q, k, v, out, lse, dq, dk, dv, opts,
                                             workspace, &plain_names, num_wait, wait, &p);
    return st != FACL_SUCCESS ? st : facl_launch_bwd(ctx, queue, &p, num_wait, wait, event);
}

facl_status facl_bwd_qkvpacked(facl_context *ctx, cl_command_queue queue, const facl_tensor *dout,
                               const facl_tensor *qkv, const facl_tensor *out,
                               const facl_tensor *lse, const facl_tensor *dqkv,
                               const facl_attn_options *opts, const facl_tensor *workspace,
                               cl_uint num_wait, const cl_event *wait, cl_event *event)
{
    facl_error_clear();
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    facl_status st;
    if ((st = facl_check_packed(ctx, "qkv", qkv, 5, 2, 3)) ||
        (st = facl_check_packed(ctx, "dqkv", dqkv, 5, 2, 3)))
        return st;
    const facl_tensor q = facl_tensor_unpack(qkv, 2, 0), k = facl_tensor_unpack(qkv, 2, 1),
                      v = facl_tensor_unpack(qkv, 2, 2);
    const facl_tensor dq = facl_tensor_unpack(dqkv, 2, 0), dk = facl_tensor_unpack(dqkv, 2, 1),
                      dv = facl_tensor_unpack(dqkv, 2, 2);
    const facl_bwd_names names = {{"qkv[:, :, 0]", "qkv[:, :, 1]", "qkv[:, :, 2]"},
                                  "dqkv[:, :, 0]", "dqkv[:, :, 1]", "dqkv[:, :, 2]"};
    facl_bwd_problem p;
    st = facl_validate_bwd_dense(ctx, queue, dout, &q, &k, &v, out, lse, &dq, &dk, &dv, opts,
                                 workspace, &names, num_wait, wait, &p);
    return st != FACL_SUCCESS ? st : facl_launch_bwd(ctx, queue, &p, num_wait, wait, event);
}

facl_status facl_bwd_kvpacked(facl_context *ctx, cl_command_queue queue, const facl_tensor *dout,
                              const facl_tensor *q, const facl_tensor *kv, const facl_tensor *out,
                              const facl_tensor *lse, const facl_tensor *dq,
                              const facl_tensor *dkv, const facl_attn_options *opts,
                              const facl_tensor *workspace, cl_uint num_wait,
                              const cl_event *wait, cl_event *event)
{
    facl_error_clear();
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    facl_status st;
    if ((st = facl_check_packed(ctx, "kv", kv, 5, 2, 2)) ||
        (st = facl_check_packed(ctx, "dkv", dkv, 5, 2, 2)))
        return st;
    const facl_tensor k = facl_tensor_unpack(kv, 2, 0), v = facl_tensor_unpack(kv, 2, 1);
    const facl_tensor dk = facl_tensor_unpack(dkv, 2, 0), dv = facl_tensor_unpack(dkv, 2, 1);
    const facl_bwd_names names = {{"q", "kv[:, :, 0]", "kv[:, :, 1]"},
                                  "dq", "dkv[:, :, 0]", "dkv[:, :, 1]"};
    facl_bwd_problem p;
    st = facl_validate_bwd_dense(ctx, queue, dout, q, &k, &v, out, lse, dq, &dk, &dv, opts,
                                 workspace, &names, num_wait, wait, &p);
    return st != FACL_SUCCESS ? st : facl_launch_bwd(ctx, queue, &p, num_wait, wait, event);
}

facl_status facl_varlen_bwd(facl_context *ctx, cl_command_queue queue, const facl_tensor *dout,
                            const facl_tensor *q, const facl_tensor *k, const facl_tensor *v,
                            const facl_tensor *cu_seqlens_q, const facl_tensor *cu_seqlens_k,
                            int64_t max_seqlen_q, int64_t max_seqlen_k, const facl_tensor *out,
                            const facl_tensor *lse, const facl_tensor *dq, const facl_tensor *dk,
                            const facl_tensor *dv, const facl_attn_options *opts,
                            const facl_tensor *workspace, cl_uint num_wait, const cl_event *wait,
                            cl_event *event)
{
    facl_error_clear();
    facl_bwd_problem p;
    facl_status st = facl_validate_bwd_varlen(ctx, queue, dout, q, k, v, cu_seqlens_q, cu_seqlens_k,
                                              max_seqlen_q, max_seqlen_k, out, lse, dq, dk, dv,
                                              opts, workspace, &plain_names, num_wait, wait, &p);
    return st != FACL_SUCCESS ? st : facl_launch_bwd(ctx, queue, &p, num_wait, wait, event);
}

facl_status facl_varlen_bwd_qkvpacked(facl_context *ctx, cl_command_queue queue,
                                      const facl_tensor *dout, const facl_tensor *qkv,
                                      const facl_tensor *cu_seqlens, int64_t max_seqlen,
                                      const facl_tensor *out, const facl_tensor *lse,
                                      const facl_tensor *dqkv, const facl_attn_options *opts,
                                      const facl_tensor *workspace, cl_uint num_wait,
                                      const cl_event *wait, cl_event *event)
{
    facl_error_clear();
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    facl_status st;
    if ((st = facl_check_packed(ctx, "qkv", qkv, 4, 1, 3)) ||
        (st = facl_check_packed(ctx, "dqkv", dqkv, 4, 1, 3)))
        return st;
    const facl_tensor q = facl_tensor_unpack(qkv, 1, 0), k = facl_tensor_unpack(qkv, 1, 1),
                      v = facl_tensor_unpack(qkv, 1, 2);
    const facl_tensor dq = facl_tensor_unpack(dqkv, 1, 0), dk = facl_tensor_unpack(dqkv, 1, 1),
                      dv = facl_tensor_unpack(dqkv, 1, 2);
    const facl_bwd_names names = {{"qkv[:, 0]", "qkv[:, 1]", "qkv[:, 2]"},
                                  "dqkv[:, 0]", "dqkv[:, 1]", "dqkv[:, 2]"};
    facl_bwd_problem p;
    st = facl_validate_bwd_varlen(ctx, queue, dout, &q, &k, &v, cu_seqlens, cu_seqlens,
                                  max_seqlen, max_seqlen, out, lse, &dq, &dk, &dv, opts,
                                  workspace, &names, num_wait, wait, &p);
    return st != FACL_SUCCESS ? st : facl_launch_bwd(ctx, queue, &p, num_wait, wait, event);
}

facl_status facl_varlen_bwd_kvpacked(facl_context *ctx, cl_command_queue queue,
                                     const facl_tensor *dout, const facl_tensor *q,
                                     const facl_tensor *kv, const facl_tensor *cu_seqlens_q,
                                     const facl_tensor *cu_seqlens_k, int64_t max_seqlen_q,
                                     int64_t max_seqlen_k, const facl_tensor *out,
                                     const facl_tensor *lse, const facl_tensor *dq,
                                     const facl_tensor *dkv, const facl_attn_options *opts,
                                     const facl_tensor *workspace, cl_uint num_wait,
                                     const cl_event *wait, cl_event *event)
{
    facl_error_clear();
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    facl_status st;
    if ((st = facl_check_packed(ctx, "kv", kv, 4, 1, 2)) ||
        (st = facl_check_packed(ctx, "dkv", dkv, 4, 1, 2)))
        return st;
    const facl_tensor k = facl_tensor_unpack(kv, 1, 0), v = facl_tensor_unpack(kv, 1, 1);
    const facl_tensor dk = facl_tensor_unpack(dkv, 1, 0), dv = facl_tensor_unpack(dkv, 1, 1);
    const facl_bwd_names names = {{"q", "kv[:, 0]", "kv[:, 1]"}, "dq", "dkv[:, 0]", "dkv[:, 1]"};
    facl_bwd_problem p;
    st = facl_validate_bwd_varlen(ctx, queue, dout, q, &k, &v, cu_seqlens_q, cu_seqlens_k,
                                  max_seqlen_q, max_seqlen_k, out, lse, dq, &dk, &dv, opts,
                                  workspace, &names, num_wait, wait, &p);
    return st != FACL_SUCCESS ? st : facl_launch_bwd(ctx, queue, &p, num_wait, wait, event);
}
