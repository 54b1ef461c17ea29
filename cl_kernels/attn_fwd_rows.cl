/* Portable forward attention shaped for CPUs (PoCL and other CPU runtimes).
 *
 * A CPU runs a work-group as a loop over its work-items and vectorises across them;
 * private arrays indexed per work-item defeat that. Here one work-item (work-group size
 * 1) owns ROWS query rows of one (sequence, head) and works like a small CPU kernel: the
 * key tile is transposed into kt[d][n], so q.k for TILE_N keys is TILE_N-wide vector
 * FMAs over d, and p.v is HEAD_DIM-wide FMAs over n. Each loaded key and value is
 * reused by ROWS rows. Same arguments, masks and numerics as attn_fwd.cl.
 *
 * Specialised with -D: FACL_DTYPE, HEAD_DIM, ROWS, TILE_N and attn_common.cl's switches.
 */
#ifndef HEAD_DIM
#error "HEAD_DIM must be defined by the host"
#endif
#ifndef ROWS
#error "ROWS must be defined by the host"
#endif
#ifndef TILE_N
#error "TILE_N must be defined by the host"
#endif

__kernel void attn_fwd_rows(
    __global const storage_t *q, long q_off, long q_sb, long q_ss, long q_sh,
    __global const storage_t *k, long k_off, long k_sb, long k_ss, long k_sh,
    __global const storage_t *v, long v_off, long v_sb, long v_ss, long v_sh,
    __global storage_t *o, long o_off, long o_sb, long o_ss, long o_sh,
    __global float *lse, long lse_off, long lse_sb, long lse_sh, long lse_ss,
    __global const int *cu_q, long cu_q_off, __global const int *cu_k, long cu_k_off,
    int seqlen_q, int seqlen_k, int total_q, int total_k, int heads_q, int group,
    float scale, float softcap, int window_left, int window_right, int align_top_left,
    __global const float *alibi, long alibi_off, long alibi_sb, long alibi_sh,
    uint drop_threshold, float drop_scale, uint seed_lo, uint seed_hi, ulong drop_offset)
{
    const int h = get_group_id(1);
    const int b = get_group_id(2);
    const seq_extent e = sequence_extent(cu_q + cu_q_off, cu_k + cu_k_off, b, seqlen_q, seqlen_k,
                                         total_q, total_k);
    const int off = align_top_left ? 0 : e.sk - e.sq;
    const int kv_head = h / group;
    __global const storage_t *q_seq = q + q_off + b * q_sb + (long)e.q_start * q_ss + h * q_sh;
    __global const storage_t *k_seq = k + k_off + b * k_sb + (long)e.k_start * k_ss + kv_head * k_sh;
    __global const storage_t *v_seq = v + v_off + b * v_sb + (long)e.k_start * v_ss + kv_head * v_sh;
#if HAS_ALIBI
    const float slope = alibi[alibi_off + b * alibi_sb + h * alibi_sh];
#else
    const float slope = 0.0f;
    (void)alibi; (void)alibi_off; (void)alibi_sb; (void)alibi_sh;
#endif
#if !HAS_DROPOUT
    (void)drop_threshold; (void)drop_scale; (void)seed_lo; (void)seed_hi; (void)drop_offset;
    (void)heads_q;
#endif

    float q_rows[ROWS][HEAD_DIM];
    float acc[ROWS][HEAD_DIM];
    float m[ROWS], l[ROWS];
    float kt[HEAD_DIM][TILE_N];
    float vt[TILE_N][HEAD_DIM];

    for (int row0 = get_group_id(0) * ROWS; row0 < e.sq; row0 += get_num_groups(0) * ROWS) {
        const int rows = min(ROWS, e.sq - row0);
        const int block_lo = max(0, first_visible_key(row0 + off, window_left));
        const int block_end = min(e.sk, end_visible_key(row0 + rows - 1 + off, window_right, e.sk));
        for (int r = 0; r < ROWS; ++r) {
            for (int d = 0; d < HEAD_DIM; ++d) {
                q_rows[r][d] = r < rows ? load_value(q_seq, (long)(row0 + r) * q_ss + d) * scale : 0.0f;
                acc[r][d] = 0.0f;
            }
            m[r] = -INFINITY;
            l[r] = 0.0f;
        }

        for (int tile0 = block_lo; tile0 < block_end; tile0 += TILE_N) {
            const int n_keys = min(TILE_N, block_end - tile0);
            for (int n = 0; n < TILE_N; ++n) {
                const bool in_range = n < n_keys;
                for (int d = 0; d < HEAD_DIM; ++d) {
                    kt[d][n] = in_range ? load_value(k_seq, (long)(tile0 + n) * k_ss + d) : 0.0f;
                    vt[n][d] = in_range ? load_value(v_seq, (long)(tile0 + n) * v_ss + d) : 0.0f;
                }
            }
            for (int r = 0; r < rows; ++r) {
                const int i = row0 + r;
                const int row_lo = first_visible_key(i + off, window_left);
                const int row_end = min(block_end, end_visible_key(i + off, window_right, e.sk));
                float s[TILE_N];
                for (int n = 0; n < TILE_N; ++n) s[n] = 0.0f;
                for (int d = 0; d < HEAD_DIM; ++d) {
                    const float qd = q_rows[r][d];
                    for (int n = 0; n < TILE_N; ++n) s[n] += qd * kt[d][n];
                }
                float tile_max = -INFINITY;
                for (int n = 0; n < TILE_N; ++n) {
                    const int j = tile0 + n;
                    const float x = adjust_score(s[n], softcap, slope, i + off - j);
                    s[n] = (j >= row_lo && j < row_end) ? x : -INFINITY;
                    tile_max = fmax(tile_max, s[n]);
                }
                if (tile_max == -INFINITY) continue;
                const float m_new = fmax(m[r], tile_max);
                const float alpha = exp(m[r] - m_new);
                l[r] *= alpha;
                for (int d = 0; d < HEAD_DIM; ++d) acc[r][d] *= alpha;
                for (int n = 0; n < TILE_N; ++n) {
                    float p = exp(s[n] - m_new);
                    l[r] += p;
#if HAS_DROPOUT
                    p = dropout_keep(seed_lo, seed_hi, drop_offset, b, heads_q, h, i, tile0 + n,
                                     drop_threshold)
                            ? p * drop_scale
                            : 0.0f;
#endif
                    for (int d = 0; d < HEAD_DIM; ++d) acc[r][d] += p * vt[n][d];
                }
                m[r] = m_new;
            }
        }

        for (int r = 0; r < rows; ++r) {
            const int i = row0 + r;
            const float inv_l = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
            const long o_row = o_off + b * o_sb + (long)(e.q_start + i) * o_ss + h * o_sh;
            for (int d = 0; d < HEAD_DIM; ++d) store_value(o, o_row + d, acc[r][d] * inv_l);
            if (lse) lse[lse_off + b * lse_sb + h * lse_sh + (long)(e.q_start + i) * lse_ss] =
                l[r] > 0.0f ? m[r] + log(l[r]) : INFINITY;
        }
    }
}
