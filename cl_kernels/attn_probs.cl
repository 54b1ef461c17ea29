/* Debug output of the forward (flash_attn's return_attn_probs): the softmax probability
 * of every (row, key), recomputed from q, k and the forward's lse, negated where
 * dropout dropped it and 0 where the key is masked or the entry is padding. One
 * work-item per entry: this is for tests, clarity beats speed. */
#ifndef HEAD_DIM
#error "HEAD_DIM must be defined by the host"
#endif

__kernel void attn_probs(__global const storage_t *q, __global const storage_t *k,
                         __global const storage_t *v, __global storage_t *o,
                         __global float *lse, __global const int *cu_q,
                         __global const int *cu_k, __global const int *seqused, __global const float *alibi,
                         __global float *probs, const attn_params p)
{
    const int j = get_global_id(0);
    const int i = get_global_id(1);
    const int b = get_global_id(2) / p.heads_q;
    const int h = get_global_id(2) - b * p.heads_q;
    (void)v; (void)o;
    /* attn_probs is (batch, heads, seqlen_q, seqlen_k) (varlen: the maxima). */
    if (i >= p.seqlen_q || j >= p.seqlen_k) return;
    const seq_extent e = sequence_extent(cu_q, cu_k, seqused, b, p);
    const int off = p.align_top_left ? 0 : e.sk - e.sq;
    float value = 0.0f;
    const bool visible = i < e.sq && j < e.sk && j >= visible_lo(i + off, p.window_left, e.sk) &&
                         j < visible_end(i + off, p.window_right, e.sk);
    if (visible) {
        __global const storage_t *q_row = q + view_index(p.q_off, p.q_sb, p.q_ss, p.q_sh, b, e.q_start + i, h);
        __global const storage_t *k_row =
            k + view_index(p.k_off, p.k_sb, p.k_ss, p.k_sh, b, e.k_start + j, h / p.group);
        float x = 0.0f;
        for (int d = 0; d < HEAD_DIM; ++d) x = fma(load_value(q_row, d) * p.scale, load_value(k_row, d), x);
        x = adjust_score(x, p.softcap, alibi_slope(alibi, p, b, h), i + off - j);
        value = exp(x - lse[view_index(p.lse_off, p.lse_sb, p.lse_ss, p.lse_sh, b, e.q_start + i, h)]);
#if HAS_DROPOUT
        if (!dropout_keep(p.seed_lo, p.seed_hi, p.drop_offset, b, p.heads_q, h, i, j, p.drop_threshold))
            value = -value;
#endif
    }
    probs[view_index(p.probs_off, p.probs_sb, p.probs_ss, p.probs_sh, b, i, h) + j] = value;
}
