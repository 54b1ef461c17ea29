/* facl_prepare_fwd: build ahead of time the programs that forward calls will need. */
#include <stdio.h>
#include <string.h>

#include "context.h"
#include "fwd_problem.h"
#include "plan.h"
#include "status.h"
#include "struct_size.h"
#include "tensor_check.h"

/* A problem with the described features and placeholder buffers: only what selects the
 * program matters (dtype, head dim, varlen, the feature switches, row alignment). */
static facl_status problem_of(const facl_prepare_desc *d, size_t index, facl_fwd_problem *p)
{
    facl_attn_options o;
    char name[48];
    snprintf(name, sizeof name, "descs[%zu].opts", index);
    facl_status st = facl_read_attn_options(name, d->opts, &o);
    if (st != FACL_SUCCESS) return st;
    if (d->dtype != FACL_DTYPE_F32 && d->dtype != FACL_DTYPE_F16 && d->dtype != FACL_DTYPE_BF16) {
        char given[24];
        return facl_fail(FACL_ERROR_INVALID_DTYPE, "descs[%zu].dtype: %s is not fp32, fp16 or bf16",
                         index, facl_dtype_text(d->dtype, given, sizeof given));
    }
    if (d->head_dim < 1 || d->head_dim > FACL_MAX_HEAD_DIM)
        return facl_fail(FACL_ERROR_INVALID_HEAD_DIM, "descs[%zu].head_dim: %d is outside 1..%d",
                         index, (int)d->head_dim, FACL_MAX_HEAD_DIM);
    if (o.block_table)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "%s->block_table: paged calls cannot be prepared (the KV-cache kernels "
                         "are compiled on first use)",
                         name);
    if (d->reserved0 != 0)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "descs[%zu].reserved0: must be 0", index);
    if ((d->varlen != 0 && d->varlen != 1) || (d->unaligned_rows != 0 && d->unaligned_rows != 1))
        return facl_fail(FACL_ERROR_INVALID_VALUE, "descs[%zu].%s: must be 0 or 1", index,
                         d->varlen != 0 && d->varlen != 1 ? "varlen" : "unaligned_rows");
    memset(p, 0, sizeof *p);
    p->dtype = (facl_dtype)d->dtype;
    p->head_dim = d->head_dim;
    p->varlen = d->varlen;
    p->batch = p->heads_q = p->heads_kv = p->seqlen_q = p->seqlen_k = 1;
    p->softcap = o.softcap;
    p->dropout_p = o.dropout_p;
    p->alibi.buffer = o.alibi_slopes ? o.alibi_slopes->buffer : NULL;
    p->probs.buffer = o.attn_probs ? o.attn_probs->buffer : NULL;
    p->seqused = o.seqused_k ? o.seqused_k->buffer : NULL;
    /* Row starts on 16-byte boundaries unless asked otherwise (see plan.c). */
    const int64_t step = d->unaligned_rows ? 1 : 8;
    facl_view *views[4] = {&p->q, &p->k, &p->v, &p->out};
    for (int i = 0; i < 4; ++i) views[i]->ss = views[i]->sh = views[i]->sb = step;
    return FACL_SUCCESS;
}

/* Rows and keys beyond every length at which the planner changes kernels. */
#define LONG_SEQUENCE (1 << 16)

facl_status facl_prepare_fwd(facl_context *ctx, const facl_prepare_desc *descs, size_t count)
{
#define END(f) FACL_FIELD_END(facl_prepare_desc, f)
    static const size_t ends[] = {END(dtype), END(head_dim), END(varlen),
                                  END(unaligned_rows), END(reserved0), END(opts)};
#undef END
    static const facl_prepare_desc defaults = FACL_PREPARE_DESC_INIT;
    facl_error_clear();
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    if (count == 0) return FACL_SUCCESS;
    if (!descs) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "descs: NULL");
    /* The array's elements are as far apart as the application's struct is large, which
     * may be an older, smaller version than this library's. */
    uint32_t stride;
    memcpy(&stride, descs, sizeof stride);
    const unsigned char *element = (const unsigned char *)descs;
    for (size_t i = 0; i < count; ++i, element += stride) {
        char name[32];
        snprintf(name, sizeof name, "descs[%zu]", i);
        uint32_t size;
        memcpy(&size, element, sizeof size);
        if (size != stride)
            return facl_fail(FACL_ERROR_INVALID_VALUE,
                             "%s->struct_size: %u differs from descs[0]'s %u (one array, one "
                             "struct version)",
                             name, (unsigned)size, (unsigned)stride);
        facl_prepare_desc d = defaults;
        facl_status st =
            facl_read_struct(name, element, size, &d, sizeof d, ends, sizeof ends / sizeof ends[0]);
        facl_fwd_problem p;
        if (st == FACL_SUCCESS) st = problem_of(&d, i, &p);
        cl_kernel fwd = NULL, probs = NULL; /* the context's: made here, kept for the calls */
        facl_fwd_plan plan;
        if (st == FACL_SUCCESS)
            st = facl_fwd_programs_get(ctx, &p, &fwd, p.probs.buffer ? &probs : NULL, &plan);
        if (st != FACL_SUCCESS) return st;
        /* On Hopper long sequences take another kernel (plan.c, FACL_WGMMA_WHERE_FASTER):
         * prepare it too where the described calls can reach it */
        facl_fwd_problem long_p = p;
        long_p.seqlen_q = long_p.seqlen_k = LONG_SEQUENCE;
        facl_fwd_plan long_plan;
        facl_plan_fwd_program(&long_p, &ctx->profile, &long_plan);
        if (strcmp(long_plan.kernel, plan.kernel) != 0 &&
            (st = facl_fwd_programs_get(ctx, &long_p, &fwd, long_p.probs.buffer ? &probs : NULL,
                                        &long_plan)) != FACL_SUCCESS)
            return st;
    }
    return FACL_SUCCESS;
}
