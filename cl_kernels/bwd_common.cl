/* What the backward kernels of every path share (docs/CONTRACT.md "Backward"): the
 * second argument block, the argument list, the gradient of one (row, key) entry, the
 * dropout factor, and attn_bwd_dot, the first of the three kernels (D_i = dout_i . out_i).
 * attn_bwd.cl (portable) and attn_bwd_mma.cl (tensor cores) follow it in their programs.
 */
/* The backward's second argument block, mirrored by src/bwd_params.h (same fields, same
 * order): (offset, batch stride, row stride, head stride) of dout, dq, dk and dv, in
 * elements; delta is the workspace's fp32 D, (offset, batch, head, row) strides like lse. */
typedef struct {
    long do_off, do_sb, do_ss, do_sh;
    long dq_off, dq_sb, dq_ss, dq_sh;
    long dk_off, dk_sb, dk_ss, dk_sh;
    long dv_off, dv_sb, dv_ss, dv_sh;
    long delta_off, delta_sb, delta_sh, delta_ss;
} bwd_params;

#ifndef FACL_BWD_PARAMS_SIZE
#error "FACL_BWD_PARAMS_SIZE must be defined by the host (sizeof its facl_bwd_params)"
#endif
typedef char bwd_params_size_matches_host[sizeof(bwd_params) == FACL_BWD_PARAMS_SIZE ? 1 : -1];

/* With atomic dq (DQ_ATOMIC=1 in the tensor-core programs) each workspace entry is a
 * query row's fp32 dq accumulator, DQ_ACC_ROW floats (HEAD_DIM rounded up to whole
 * 16-byte pieces, so that rows start 16-byte aligned where the workspace does and can be
 * added to in 16-byte pieces), three unused floats and the row's D: D sits DQ_ACC_BACK
 * floats after its accumulator's first. facl_bwd_workspace_floats (bwd_plan.c) spaces the
 * entries the same way. */
#define DQ_ACC_ROW ((HEAD_DIM + 3) & ~3)
#define DQ_ACC_BACK (DQ_ACC_ROW + 3)

/* The sixteen arguments all three kernels take (the host binds them the same way). */
#define BWD_ARGS                                                                              \
    __global const storage_t *q, __global const storage_t *k, __global const storage_t *v,    \
        __global const storage_t *o, __global const float *lse, __global const storage_t *dout, \
        __global storage_t *dq, __global storage_t *dk, __global storage_t *dv,               \
        __global float *delta, __global const int *cu_q, __global const int *cu_k,            \
        __global const int *seqused, __global const float *alibi, const attn_params p,        \
        const bwd_params g

/* One entry (i, j) of the backward. `score` is scale * dot(q_i, k_j) and `dpv`
 * dot(dout_i, v_j). Returns (P~_ij, dS_ij): the dropout-scaled probability that
 * multiplied v_j in the forward, and the gradient of the loss with respect to `score`. */
inline float2 bwd_entry(float score, float dpv, float lse_i, float delta_i, float slope,
                        int rel, float softcap, float zscale)
{
    /* The forward's logit, through the same helper (softcap, then ALiBi). */
    const float x = adjust_score(score, softcap, slope, rel);
    const float prob = exp(x - lse_i);
#if HAS_SOFTCAP
    /* d(c * tanh(s / c)) / ds = 1 - tanh^2(s / c) */
    const float t = tanh(score / softcap);
    const float dlogit = 1.0f - t * t;
#else
    const float dlogit = 1.0f;
#endif
    /* zscale is Z_ij: keep / (1 - p_drop), or 1 without dropout. D_i = sum_j P~ dP~ =
     * sum_j P dP, so the softmax gradient takes dP = Z * dot(dout, v). */
    return (float2)(prob * zscale, prob * (dpv * zscale - delta_i) * dlogit);
}

/* Z_ij of row i and key j of query head h of sequence b (1 without dropout). */
inline float dropout_factor(const attn_params p, int b, int h, int i, int j)
{
#if HAS_DROPOUT
    return dropout_keep(p.seed_lo, p.seed_hi, p.drop_offset, b, p.heads_q, h, i, j,
                        p.drop_threshold)
               ? p.drop_scale
               : 0.0f;
#else
    (void)p; (void)b; (void)h; (void)i; (void)j;
    return 1.0f;
#endif
}

/* The key rows the tensors hold for sequence b, which get dk and dv written: with
 * seqused_k only the first e.sk of them take part, and the rest get dk = dv = 0. */
inline int bwd_key_rows(__global const int *cu_k, const seq_extent e, int b, const attn_params p)
{
#if HAS_SEQUSED && IS_VARLEN
    return clamp(cu_k[p.cu_k_off + b + 1], e.k_start, p.total_k) - e.k_start;
#elif HAS_SEQUSED
    (void)cu_k; (void)e; (void)b;
    return p.seqlen_k;
#else
    (void)cu_k; (void)b; (void)p;
    return e.sk;
#endif
}

/* The query rows [x, y) that see some key of [first_key, last_key]: key j is visible
 * to row i iff i + off - window_left <= j <= i + off + window_right (64-bit: windows may
 * be near INT_MAX). */
inline int2 bwd_rows_seeing(int first_key, int last_key, int off, int sq, const attn_params p)
{
    const long lo = p.window_right < 0 ? 0L
                    : clamp((long)first_key - off - p.window_right, 0L, (long)sq);
    const long end = p.window_left < 0 ? (long)sq
                     : clamp((long)last_key - off + p.window_left + 1, 0L, (long)sq);
    return (int2)((int)lo, (int)end);
}

/* D_i, one work-item per (row, head, sequence); rows strided so that every row of a
 * sequence longer than the launch (trusted varlen) is still covered. In attn_bwd_mma's
 * atomic mode (DQ_ATOMIC=1, attn_bwd_mma.cl and attn_bwd_wgmma.cl) it also zeroes the
 * row's dq accumulator (DQ_ACC_ROW floats, DQ_ACC_BACK floats before D), which the dk/dv
 * kernel then adds into: every row that kernel and attn_bwd_mma_dq_store touch is a row
 * of a sequence, so no other command (a fill of the whole workspace) is needed. */
__kernel void attn_bwd_dot(BWD_ARGS)
{
    const int h = get_group_id(1);
    const int b = get_group_id(2);
    const seq_extent e = sequence_extent(cu_q, cu_k, seqused, b, p);
    (void)q; (void)k; (void)v; (void)lse; (void)dq; (void)dk; (void)dv; (void)alibi;
    for (int i = get_global_id(0); i < e.sq; i += get_global_size(0)) {
        const long o_row = view_index(p.o_off, p.o_sb, p.o_ss, p.o_sh, b, e.q_start + i, h);
        const long do_row = view_index(g.do_off, g.do_sb, g.do_ss, g.do_sh, b, e.q_start + i, h);
        float acc = 0.0f;
        for (int d = 0; d < HEAD_DIM; ++d)
            acc = fma(load_value(dout, do_row + d), load_value(o, o_row + d), acc);
        const long at = view_index(g.delta_off, g.delta_sb, g.delta_ss, g.delta_sh, b, e.q_start + i, h);
        delta[at] = acc;
#if defined(DQ_ATOMIC) && DQ_ATOMIC
        for (int d = 0; d < DQ_ACC_ROW; ++d) delta[at - DQ_ACC_BACK + d] = 0.0f;
#endif
    }
}

