/* The entries of the tensor-core backward kernels (attn_bwd_mma.cl with mma.sync,
 * attn_bwd_wgmma.cl with Hopper's wgmma): one (row, key) entry's probability and score
 * gradient in base 2 from its raw score and dP, and the four entries of one C fragment
 * of S^T (dk/dv kernels) or of S (dq kernels). The C fragment layout (rows g and g + 8
 * of 16, columns 2t and 2t + 1 of 8) is the same for mma.m16n8k16 and for each 8-column
 * block of a wgmma accumulator, so both kernel files take the same helpers. With
 * DQ_ATOMIC=1 (both files' atomic-dq variants) it also holds the fp32 atomic addition and
 * attn_bwd_mma_dq_store. Needs attn_common.cl, warp_mma.cl (exp2_ftz, pack_pair) and
 * bwd_common.cl (dropout_factor, DQ_ACC_BACK).
 */
#define LOG2E 1.44269504088896340736f

/* Whether row i sees key j (both within the sequence's rows and keys). */
inline bool sees(int i, int j, int off, int sk, const attn_params p)
{
    return j >= visible_lo(i + off, p.window_left, sk) && j < visible_end(i + off, p.window_right, sk);
}

/* bwd_entry (bwd_common.cl) in base 2, for an entry with raw score `raw` = q . k (before
 * the scale): (P~, dS). lse2 is the row's lse times log2(e) (+inf for a row that sees
 * no key and for padding rows: P = 0 there); invisible entries give (0, 0). One
 * multiply and one ex2 instead of exp's longer sequence, as in the forward. */
inline float2 mma_bwd_entry(float raw, float dpv, float lse2, float delta, float slope, int rel,
                            float zscale, bool visible, const attn_params p)
{
    const float score = raw * p.scale;
#if HAS_SOFTCAP || HAS_ALIBI
    const float x2 = adjust_score(score, p.softcap, slope, rel) * LOG2E;
#else
    (void)slope, (void)rel;
    const float x2 = score * LOG2E;
#endif
    const float prob = visible ? exp2_ftz(x2 - lse2) : 0.0f; /* warp_mma.cl */
#if HAS_SOFTCAP
    const float th = tanh(score / p.softcap);
    const float dlogit = 1.0f - th * th;
#else
    const float dlogit = 1.0f;
#endif
    return (float2)(prob * zscale, prob * (dpv * zscale - delta) * dlogit);
}

/* What a dq kernel's lane keeps of one of its query rows r: lse * log2(e) (+inf past the
 * sequence: P = 0 there), D, and the keys the row sees, [lo, end). */
typedef struct {
    float lse2, delta;
    int lo, end;
} dq_row;

inline dq_row dq_row_of(__global const float *lse, __global const float *delta, const attn_params p,
                        const bwd_params g, int b, const seq_extent e, int h, int r, int off)
{
    const bool in = r < e.sq;
    dq_row x;
    x.lse2 = in ? lse[view_index(p.lse_off, p.lse_sb, p.lse_ss, p.lse_sh, b, e.q_start + r, h)] * LOG2E : INFINITY;
    x.delta = in ? delta[view_index(g.delta_off, g.delta_sb, g.delta_ss, g.delta_sh, b, e.q_start + r, h)] : 0.0f;
    x.lo = visible_lo(r + off, p.window_left, e.sk);
    x.end = visible_end(r + off, p.window_right, e.sk);
    return x;
}

/* Step 1's entries of one 8-row block: keys ja, jb (C rows) by rows i0, i0 + 1 (C
 * columns; their lse2 l0, l1 and D d0, d1), as (P~^T, dS^T) pairs packed for the local
 * tiles. `masked` is a literal at each call: blocks that every row sees whole skip the
 * visibility test (FlashAttention masks boundary tiles only). */
inline void dkdv_entries(float4 s, float4 dp, float l0, float l1, float d0, float d1, int i0,
                         int ja, int jb, int off, int sk, float slope, int b, int h,
                         const attn_params p, bool masked, uint *p_a, uint *p_b, uint *ds_a,
                         uint *ds_b)
{
    const int i1 = i0 + 1;
    const float2 a0 = mma_bwd_entry(s.x, dp.x, l0, d0, slope, i0 + off - ja, dropout_factor(p, b, h, i0, ja),
                                    !masked || sees(i0, ja, off, sk, p), p);
    const float2 a1 = mma_bwd_entry(s.y, dp.y, l1, d1, slope, i1 + off - ja, dropout_factor(p, b, h, i1, ja),
                                    !masked || sees(i1, ja, off, sk, p), p);
    const float2 b0 = mma_bwd_entry(s.z, dp.z, l0, d0, slope, i0 + off - jb, dropout_factor(p, b, h, i0, jb),
                                    !masked || sees(i0, jb, off, sk, p), p);
    const float2 b1 = mma_bwd_entry(s.w, dp.w, l1, d1, slope, i1 + off - jb, dropout_factor(p, b, h, i1, jb),
                                    !masked || sees(i1, jb, off, sk, p), p);
    *p_a = pack_pair(a0.x, a1.x);
    *p_b = pack_pair(b0.x, b1.x);
    *ds_a = pack_pair(a0.y, a1.y);
    *ds_b = pack_pair(b0.y, b1.y);
}

/* dS of one score block of the dq kernel: rows a (x, y) and b (z, w) by keys j0, j0 + 1;
 * `masked` as for dkdv_entries (lo/end: the rows' visible keys). */
inline float4 dq_entries(float4 s, float4 dp, float lse2_a, float lse2_b, float delta_a,
                         float delta_b, int ra, int rb, int j0, int lo_a, int end_a, int lo_b,
                         int end_b, int off, float slope, int b, int h, const attn_params p,
                         bool masked)
{
    const int j1 = j0 + 1;
    return (float4)(
        mma_bwd_entry(s.x, dp.x, lse2_a, delta_a, slope, ra + off - j0, dropout_factor(p, b, h, ra, j0),
                      !masked || (j0 >= lo_a && j0 < end_a), p).y,
        mma_bwd_entry(s.y, dp.y, lse2_a, delta_a, slope, ra + off - j1, dropout_factor(p, b, h, ra, j1),
                      !masked || (j1 >= lo_a && j1 < end_a), p).y,
        mma_bwd_entry(s.z, dp.z, lse2_b, delta_b, slope, rb + off - j0, dropout_factor(p, b, h, rb, j0),
                      !masked || (j0 >= lo_b && j0 < end_b), p).y,
        mma_bwd_entry(s.w, dp.w, lse2_b, delta_b, slope, rb + off - j1, dropout_factor(p, b, h, rb, j1),
                      !masked || (j1 >= lo_b && j1 < end_b), p).y);
}

#if !HAS_SOFTCAP
/* mma_bwd_entry in two halves, for kernels that read S before dP has landed (no softcap:
 * its derivative needs the raw score, which the first half overwrites): the probability
 * from the raw score, then (P~, dS) from the probability; the same operations as
 * mma_bwd_entry, so the same values. */
inline float bwd_prob(float raw, float lse2, float slope, int rel, bool visible, const attn_params p)
{
    const float score = raw * p.scale;
#if HAS_ALIBI
    const float x2 = adjust_score(score, p.softcap, slope, rel) * LOG2E;
#else
    (void)slope, (void)rel;
    const float x2 = score * LOG2E;
#endif
    return visible ? exp2_ftz(x2 - lse2) : 0.0f;
}

inline float2 bwd_grad_of_prob(float prob, float dpv, float delta, float zscale)
{
    return (float2)(prob * zscale, prob * (dpv * zscale - delta));
}

/* dkdv_entries' halves: the probabilities of one C fragment of S^T (keys ja, jb by rows
 * i0, i0 + 1), then from them and dP^T the packed (P~^T, dS^T) pairs. */
inline float4 dkdv_probs(float4 s, float l0, float l1, int i0, int ja, int jb, int off, int sk,
                         float slope, const attn_params p, bool masked)
{
    const int i1 = i0 + 1;
    return (float4)(bwd_prob(s.x, l0, slope, i0 + off - ja, !masked || sees(i0, ja, off, sk, p), p),
                    bwd_prob(s.y, l1, slope, i1 + off - ja, !masked || sees(i1, ja, off, sk, p), p),
                    bwd_prob(s.z, l0, slope, i0 + off - jb, !masked || sees(i0, jb, off, sk, p), p),
                    bwd_prob(s.w, l1, slope, i1 + off - jb, !masked || sees(i1, jb, off, sk, p), p));
}

inline void dkdv_grads(float4 prob, float4 dp, float d0, float d1, int i0, int ja, int jb, int b,
                       int h, const attn_params p, uint *p_a, uint *p_b, uint *ds_a, uint *ds_b)
{
    const int i1 = i0 + 1;
    const float2 a0 = bwd_grad_of_prob(prob.x, dp.x, d0, dropout_factor(p, b, h, i0, ja));
    const float2 a1 = bwd_grad_of_prob(prob.y, dp.y, d1, dropout_factor(p, b, h, i1, ja));
    const float2 b0 = bwd_grad_of_prob(prob.z, dp.z, d0, dropout_factor(p, b, h, i0, jb));
    const float2 b1 = bwd_grad_of_prob(prob.w, dp.w, d1, dropout_factor(p, b, h, i1, jb));
    *p_a = pack_pair(a0.x, a1.x);
    *p_b = pack_pair(b0.x, b1.x);
    *ds_a = pack_pair(a0.y, a1.y);
    *ds_b = pack_pair(b0.y, b1.y);
}

/* dq_entries' halves: the probabilities of one C fragment of S (rows a, b by keys j0,
 * j0 + 1), then dS from them and dP. */
inline float4 dq_probs(float4 s, float lse2_a, float lse2_b, int ra, int rb, int j0, int lo_a,
                       int end_a, int lo_b, int end_b, int off, float slope, const attn_params p,
                       bool masked)
{
    const int j1 = j0 + 1;
    return (float4)(bwd_prob(s.x, lse2_a, slope, ra + off - j0, !masked || (j0 >= lo_a && j0 < end_a), p),
                    bwd_prob(s.y, lse2_a, slope, ra + off - j1, !masked || (j1 >= lo_a && j1 < end_a), p),
                    bwd_prob(s.z, lse2_b, slope, rb + off - j0, !masked || (j0 >= lo_b && j0 < end_b), p),
                    bwd_prob(s.w, lse2_b, slope, rb + off - j1, !masked || (j1 >= lo_b && j1 < end_b), p));
}

inline float4 dq_grads(float4 prob, float4 dp, float delta_a, float delta_b, int ra, int rb, int j0,
                       int b, int h, const attn_params p)
{
    const int j1 = j0 + 1;
    return (float4)(bwd_grad_of_prob(prob.x, dp.x, delta_a, dropout_factor(p, b, h, ra, j0)).y,
                    bwd_grad_of_prob(prob.y, dp.y, delta_a, dropout_factor(p, b, h, ra, j1)).y,
                    bwd_grad_of_prob(prob.z, dp.z, delta_b, dropout_factor(p, b, h, rb, j0)).y,
                    bwd_grad_of_prob(prob.w, dp.w, delta_b, dropout_factor(p, b, h, rb, j1)).y);
}
#endif

#if defined(DQ_ATOMIC) && DQ_ATOMIC
/* *addr += x as one atomic operation on an fp32 in global memory. Work-groups add in no
 * fixed order, hence dq's last bits in this mode. */
inline void atomic_add_global_f32(__global float *addr, float x)
{
#if MMA_EMULATE
    /* OpenCL 1.2 has integer atomics only: swap in the bits of old + x while the word
     * still holds old's. The first guess is 0.0f (the accumulator starts at zero), so
     * every access is atomic (no plain read racing with other groups' swaps). */
    volatile __global int *bits = (volatile __global int *)addr;
    int old = 0;
    for (;;) {
        const int seen = atomic_cmpxchg(bits, old, as_int(as_float(old) + x));
        if (seen == old) break;
        old = seen;
    }
#else
    /* red: the reduction without a result, so nothing waits for it */
    asm volatile("red.global.add.f32 [%0], %1;" : : "l"(addr), "f"(x) : "memory");
#endif
}

/* dq of every row of the sequence from its accumulator (added by attn_bwd_mma_dkdv or attn_bwd_wgmma_dkdv),
 * scaled as attn_bwd_mma_dq scales its sums, rounded to the storage type and written
 * through dq's strides. A work-item per element, consecutive ones along the head dim
 * (coalesced), strided over the sequence's rows as attn_bwd_dot is; a row that sees no
 * key got no additions (dq = 0); rows outside every varlen sequence are not written. */
__kernel void attn_bwd_mma_dq_store(BWD_ARGS)
{
    const int h = get_group_id(1);
    const int b = get_group_id(2);
    const seq_extent e = sequence_extent(cu_q, cu_k, seqused, b, p);
    (void)q; (void)k; (void)v; (void)o; (void)lse; (void)dout; (void)dk; (void)dv; (void)alibi;
    const long n = (long)e.sq * HEAD_DIM;
    for (long idx = get_global_id(0); idx < n; idx += get_global_size(0)) {
        const long row = e.q_start + idx / HEAD_DIM;
        const int c = (int)(idx % HEAD_DIM);
        const float sum = delta[view_index(g.delta_off, g.delta_sb, g.delta_ss, g.delta_sh, b, row, h) - DQ_ACC_BACK + c];
        store_value(dq, view_index(g.dq_off, g.dq_sb, g.dq_ss, g.dq_sh, b, row, h) + c, sum * p.scale);
    }
}
#endif
