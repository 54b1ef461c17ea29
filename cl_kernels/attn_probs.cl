/* Debug output of the forward (flash_attn's return_attn_probs): the softmax probability
 * of every (row, key), recomputed from q, k and the forward's lse, negated where
 * dropout dropped it and 0 where the key is masked or the entry is padding. One
 * work-item per entry: this is for tests, clarity beats speed. */
#ifndef HEAD_DIM
#error "HEAD_DIM must be defined by the host"
#endif

__kernel void attn_probs(
    __global const storage_t *q, long q_off, long q_sb, long q_ss, long q_sh,
    __global const storage_t *k, long k_off, long k_sb, long k_ss, long k_sh,
    __global const float *lse, long lse_off, long lse_sb, long lse_sh, long lse_ss,
    __global const int *cu_q, long cu_q_off, __global const int *cu_k, long cu_k_off,
    int seqlen_q, int seqlen_k, int total_q, int total_k, int heads_q, int group,
    float scale, float softcap, int window_left, int window_right, int align_top_left,
    __global const float *alibi, long alibi_off, long alibi_sb, long alibi_sh,
    uint drop_threshold, uint seed_lo, uint seed_hi, ulong drop_offset,
    __global float *probs, long p_off, long p_sb, long p_sh, long p_si, int rows, int cols)
{
    const int j = get_global_id(0);
    const int i = get_global_id(1);
    const int b = get_global_id(2) / heads_q;
    const int h = get_global_id(2) - b * heads_q;
    if (i >= rows || j >= cols) return;
    const seq_extent e = sequence_extent(cu_q + cu_q_off, cu_k + cu_k_off, b, seqlen_q, seqlen_k, total_q, total_k);
    const int off = align_top_left ? 0 : e.sk - e.sq;
    float value = 0.0f;
    const bool visible = i < e.sq && j < e.sk && j >= first_visible_key(i + off, window_left) &&
                         j < end_visible_key(i + off, window_right, e.sk);
    if (visible) {
        __global const storage_t *q_row = q + q_off + b * q_sb + (long)(e.q_start + i) * q_ss + h * q_sh;
        __global const storage_t *k_row =
            k + k_off + b * k_sb + (long)(e.k_start + j) * k_ss + (h / group) * k_sh;
        float x = 0.0f;
        for (int d = 0; d < HEAD_DIM; ++d) x = fma(load_value(q_row, d) * scale, load_value(k_row, d), x);
#if HAS_ALIBI
        const float slope = alibi[alibi_off + b * alibi_sb + h * alibi_sh];
#else
        const float slope = 0.0f;
#endif
        x = adjust_score(x, softcap, slope, i + off - j);
        value = exp(x - lse[lse_off + b * lse_sb + h * lse_sh + (long)(e.q_start + i) * lse_ss]);
#if HAS_DROPOUT
        if (!dropout_keep(seed_lo, seed_hi, drop_offset, b, heads_q, h, i, j, drop_threshold))
            value = -value;
#endif
    }
    probs[p_off + b * p_sb + h * p_sh + (long)i * p_si + j] = value;
#if !HAS_ALIBI
    (void)alibi; (void)alibi_off; (void)alibi_sb; (void)alibi_sh;
#endif
#if !HAS_DROPOUT
    (void)drop_threshold; (void)seed_lo; (void)seed_hi; (void)drop_offset;
#endif
}
