/* Portable forward attention (FlashAttention 2's algorithm in OpenCL C 1.2).
 *
 * One work-group covers a block of query rows of one (sequence, head). Each row is
 * owned by LANES work-items, each holding HEAD_DIM / LANES of its scaled q row and of
 * its fp32 output accumulator in private memory (so wide heads do not spill registers);
 * their partial q.k sums meet in local memory. The group walks only the key/value tiles
 * that some of its rows can see, staging each tile in local memory as fp32, and keeps
 * an online softmax (running max m and normaliser l) per row, so the score matrix never
 * exists in global memory.
 *
 * Specialised by the host with -D: FACL_DTYPE, HEAD_DIM, BLOCK_N (keys per tile), LANES
 * and MAX_GROUP (the largest work-group it is launched with, when LANES > 1) and the
 * feature switches of attn_common.cl. Everything that only changes numbers (scale,
 * window, softcap value, dropout probability) is a run-time argument.
 */
#ifndef HEAD_DIM
#error "HEAD_DIM must be defined by the host"
#endif
#ifndef BLOCK_N
#error "BLOCK_N must be defined by the host"
#endif
#ifndef LANES
#define LANES 1
#endif
#if LANES > 1 && !defined(MAX_GROUP)
#error "MAX_GROUP must be defined by the host when LANES > 1"
#endif
#define LANE_DIMS ((HEAD_DIM + LANES - 1) / LANES)

__kernel void attn_fwd(
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
    const int lid = get_local_id(0);
    const int group_size = get_local_size(0);
    const int rows_per_group = group_size / LANES;
    const int lane = lid % LANES;
    const int d0 = lane * LANE_DIMS; /* this work-item's first dimension */
    const seq_extent e = sequence_extent(cu_q + cu_q_off, cu_k + cu_k_off, b, seqlen_q, seqlen_k, total_q, total_k);
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
#endif

    __local float k_tile[BLOCK_N * HEAD_DIM];
    __local float v_tile[BLOCK_N * HEAD_DIM];
#if LANES > 1
    /* partial[r * group_size + lid]: lane sums of q.k for key r, laid out so that the
     * writes of consecutive work-items hit consecutive banks. */
    __local float partial[BLOCK_N * MAX_GROUP];
#endif

    /* Striding over row blocks keeps every row covered even if the host launched fewer
     * groups than this sequence needs (a too-small max_seqlen in trusted varlen mode). */
    for (int row0 = get_group_id(0) * rows_per_group; row0 < e.sq;
         row0 += get_num_groups(0) * rows_per_group) {
        const int i = row0 + lid / LANES;
        const bool active = i < e.sq;
        const int last_row = min(row0 + rows_per_group, e.sq) - 1;
        /* Keys that any row of this block can see: the visible range moves right with i. */
        const int block_lo = max(0, first_visible_key(row0 + off, window_left));
        const int block_end = min(e.sk, end_visible_key(last_row + off, window_right, e.sk));
        const int row_lo = first_visible_key(i + off, window_left);
        const int row_end = min(block_end, end_visible_key(i + off, window_right, e.sk));

        float q_row[LANE_DIMS];
        float acc[LANE_DIMS];
        for (int dd = 0; dd < LANE_DIMS; ++dd) {
            const int d = d0 + dd;
            q_row[dd] = active && d < HEAD_DIM ? load_value(q_seq, (long)i * q_ss + d) * scale : 0.0f;
            acc[dd] = 0.0f;
        }
        float m = -INFINITY, l = 0.0f;

        for (int tile0 = block_lo; tile0 < block_end; tile0 += BLOCK_N) {
            barrier(CLK_LOCAL_MEM_FENCE); /* the previous tile is no longer read */
            for (int idx = lid; idx < BLOCK_N * HEAD_DIM; idx += group_size) {
                const int r = idx / HEAD_DIM, d = idx - r * HEAD_DIM;
                const int j = tile0 + r;
                const bool in_range = j < block_end;
                k_tile[idx] = in_range ? load_value(k_seq, (long)j * k_ss + d) : 0.0f;
                v_tile[idx] = in_range ? load_value(v_seq, (long)j * v_ss + d) : 0.0f;
            }
            barrier(CLK_LOCAL_MEM_FENCE);

            float s[BLOCK_N];
            for (int r = 0; r < BLOCK_N; ++r) {
                float x = 0.0f;
                for (int dd = 0; dd < LANE_DIMS; ++dd) {
                    const int d = d0 + dd;
                    if (LANES == 1 || d < HEAD_DIM) x = fma(q_row[dd], k_tile[r * HEAD_DIM + d], x);
                }
                s[r] = x;
            }
#if LANES > 1
            for (int r = 0; r < BLOCK_N; ++r) partial[r * group_size + lid] = s[r];
            barrier(CLK_LOCAL_MEM_FENCE);
            const int first_lane = lid - lane;
            for (int r = 0; r < BLOCK_N; ++r) {
                float x = 0.0f;
                for (int t = 0; t < LANES; ++t) x += partial[r * group_size + first_lane + t];
                s[r] = x;
            }
            barrier(CLK_LOCAL_MEM_FENCE); /* partial is rewritten by the next tile */
#endif
            if (!active) continue;

            float tile_max = -INFINITY;
            for (int r = 0; r < BLOCK_N; ++r) {
                const int j = tile0 + r;
                const float x = adjust_score(s[r], softcap, slope, i + off - j);
                s[r] = (j >= row_lo && j < row_end) ? x : -INFINITY;
                tile_max = fmax(tile_max, s[r]);
            }
            if (tile_max == -INFINITY) continue; /* nothing visible here for this row */

            const float m_new = fmax(m, tile_max);
            const float alpha = exp(m - m_new); /* 0 on the first visible tile (m = -inf) */
            l *= alpha;
            for (int dd = 0; dd < LANE_DIMS; ++dd) acc[dd] *= alpha;
            for (int r = 0; r < BLOCK_N; ++r) {
                float p = exp(s[r] - m_new);
                l += p; /* the normaliser and the lse see every visible key, dropped or not */
#if HAS_DROPOUT
                p = dropout_keep(seed_lo, seed_hi, drop_offset, b, heads_q, h, i, tile0 + r,
                                 drop_threshold)
                        ? p * drop_scale
                        : 0.0f;
#endif
                for (int dd = 0; dd < LANE_DIMS; ++dd) {
                    const int d = d0 + dd;
                    if (LANES == 1 || d < HEAD_DIM) acc[dd] = fma(p, v_tile[r * HEAD_DIM + d], acc[dd]);
                }
            }
            m = m_new;
        }

        if (active) {
            /* A row that saw no key: out = 0 and lse = +inf (never NaN). */
            const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;
            const long o_row = o_off + b * o_sb + (long)(e.q_start + i) * o_ss + h * o_sh;
            for (int dd = 0; dd < LANE_DIMS; ++dd)
                if (d0 + dd < HEAD_DIM) store_value(o, o_row + d0 + dd, acc[dd] * inv_l);
            if (lse && lane == 0) lse[lse_off + b * lse_sb + h * lse_sh + (long)(e.q_start + i) * lse_ss] =
                l > 0.0f ? m + log(l) : INFINITY;
        }
    }
#if !HAS_DROPOUT
    (void)heads_q;
#endif
}
