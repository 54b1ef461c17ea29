/* facl-bench: the library's forward (see bench_ours.h). */
#include "bench_ours.h"

#include <stdio.h>

uint64_t bench_ours_memory(const bench_config *c)
{
    uint64_t tokens = (uint64_t)c->batch * (uint64_t)c->seqlen;
    uint64_t qkvo = 4ull * tokens * (uint64_t)c->heads * (uint64_t)c->hdim *
                    facl_dtype_size(c->dtype);
    return qkvo + tokens * (uint64_t)c->heads * sizeof(float);
}

int bench_ours_enqueue(facl_context *ctx, cl_command_queue queue, const bench_config *c,
                       cl_mem q, cl_mem k, cl_mem v, cl_mem out, cl_mem lse, cl_event *last,
                       char *err, size_t err_size)
{
    const int64_t shape[4] = {c->batch, c->seqlen, c->heads, c->hdim};
    const int64_t lse_shape[3] = {c->batch, c->heads, c->seqlen};
    facl_tensor tq = facl_tensor_contiguous(q, c->dtype, 4, shape);
    facl_tensor tk = facl_tensor_contiguous(k, c->dtype, 4, shape);
    facl_tensor tv = facl_tensor_contiguous(v, c->dtype, 4, shape);
    facl_tensor to = facl_tensor_contiguous(out, c->dtype, 4, shape);
    facl_tensor tl = facl_tensor_contiguous(lse, FACL_DTYPE_F32, 3, lse_shape);
    facl_attn_options opts = facl_attn_options_default();
    opts.causal = c->causal;
    facl_status st = facl_fwd(ctx, queue, &tq, &tk, &tv, &to, &tl, &opts, 0, NULL, last);
    if (st != FACL_SUCCESS) {
        snprintf(err, err_size, "%s: %s", facl_status_string(st), facl_last_error());
        return -1;
    }
    return 0;
}
