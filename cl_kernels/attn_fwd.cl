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

__kernel void attn_fwd(__global const storage_t *q, __global const storage_t *k,
                       __global const storage_t *v, __global storage_t *o, __global float *lse,
                       __global const int *cu_q, __global const int *cu_k, __global const int *seqused,
                       __global const float *alibi, __global float *probs, const attn_params p)
{
    const int h = get_group_id(1);
    const int b = get_group_id(2);
    const int lid = get_local_id(0);
    const int group_size = get_local_size(0);
    const int rows_per_group = group_size / LANES;
    const int lane = lid % LANES;
    const int d0 = lane * LANE_DIMS; /* this work-item's first dimension */
    const seq_extent e = sequence_extent(cu_q, cu_k, seqused, b, p);
    const int off = p.align_top_left ? 0 : e.sk - e.sq;
    const int kv_head = h / p.group;
    (void)probs;

    __global const storage_t *q_seq = q + view_index(p.q_off, p.q_sb, p.q_ss, p.q_sh, b, e.q_start, h);
    __global const storage_t *k_seq = k + view_index(p.k_off, p.k_sb, p.k_ss, p.k_sh, b, e.k_start, kv_head);
    __global const storage_t *v_seq = v + view_index(p.v_off, p.v_sb, p.v_ss, p.v_sh, b, e.k_start, kv_head);
    const float slope = alibi_slope(alibi, p, b, h);

    __local float k_tile[BLOCK_N * HEAD_DIM];
    __local float v_tile[BLOCK_N * HEAD_DIM];
#if LANES > 1
    /* partial[r * group_size + lid]: lane sums of q.k for key r, laid out so that the
     * writes of consecutive work-items hit consecutive banks. */
    __local float partial[BLOCK_N * MAX_GROUP];
#endif

    /* Striding over row blocks keeps every row covered even if the host launched fewer
     * groups than this sequence needs (a too-small max_seqlen in trusted varlen mode). */
    for (int row0 = first_row_block() * rows_per_group; row0 < e.sq;
         row0 += get_num_groups(0) * rows_per_group) {
        const int i = row0 + lid / LANES;
        const bool active = i < e.sq;
        const int last_row = min(row0 + rows_per_group, e.sq) - 1;
        /* Keys that any row of this block can see: the visible range moves right with i. */
        const int block_lo = visible_lo(row0 + off, p.window_left, e.sk);
        const int block_end = visible_end(last_row + off, p.window_right, e.sk);
        const int row_lo = visible_lo(i + off, p.window_left, e.sk);
        const int row_end = min(block_end, visible_end(i + off, p.window_right, e.sk));

        float q_row[LANE_DIMS];
        float acc[LANE_DIMS];
        for (int dd = 0; dd < LANE_DIMS; ++dd) {
            const int d = d0 + dd;
            q_row[dd] = active && d < HEAD_DIM ? load_value(q_seq, (long)i * p.q_ss + d) * p.scale : 0.0f;
            acc[dd] = 0.0f;
        }
        float m = -INFINITY, l = 0.0f;

        for (int tile0 = block_lo; tile0 < block_end; tile0 += BLOCK_N) {
            barrier(CLK_LOCAL_MEM_FENCE); /* the previous tile is no longer read */
            for (int idx = lid; idx < BLOCK_N * HEAD_DIM; idx += group_size) {
                const int r = idx / HEAD_DIM, d = idx - r * HEAD_DIM;
                const int j = tile0 + r;
                const bool in_range = j < block_end;
                k_tile[idx] = in_range ? load_value(k_seq, (long)j * p.k_ss + d) : 0.0f;
                v_tile[idx] = in_range ? load_value(v_seq, (long)j * p.v_ss + d) : 0.0f;
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
                const float x = adjust_score(s[r], p.softcap, slope, i + off - j);
                s[r] = (j >= row_lo && j < row_end) ? x : -INFINITY;
                tile_max = fmax(tile_max, s[r]);
            }
            if (tile_max == -INFINITY) continue; /* nothing visible here for this row */

            const float m_new = fmax(m, tile_max);
            const float alpha = exp(m - m_new); /* 0 on the first visible tile (m = -inf) */
            l *= alpha;
            for (int dd = 0; dd < LANE_DIMS; ++dd) acc[dd] *= alpha;
            for (int r = 0; r < BLOCK_N; ++r) {
                float pr = exp(s[r] - m_new);
                l += pr; /* the normaliser and the lse see every visible key, dropped or not */
#if HAS_DROPOUT
                pr = dropout_keep(p.seed_lo, p.seed_hi, p.drop_offset, b, p.heads_q, h, i,
                                  tile0 + r, p.drop_threshold)
                         ? pr * p.drop_scale
                         : 0.0f;
#endif
                for (int dd = 0; dd < LANE_DIMS; ++dd) {
                    const int d = d0 + dd;
                    if (LANES == 1 || d < HEAD_DIM) acc[dd] = fma(pr, v_tile[r * HEAD_DIM + d], acc[dd]);
                }
            }
            m = m_new;
        }

        if (active) {
            /* A row that saw no key: out = 0 and lse = +inf (never NaN). */
            const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;
            const long o_row = view_index(p.o_off, p.o_sb, p.o_ss, p.o_sh, b, e.q_start + i, h);
            for (int dd = 0; dd < LANE_DIMS; ++dd)
                if (d0 + dd < HEAD_DIM) store_value(o, o_row + d0 + dd, acc[dd] * inv_l);
            if (lse && lane == 0)
                lse[view_index(p.lse_off, p.lse_sb, p.lse_ss, p.lse_sh, b, e.q_start + i, h)] =
                    l > 0.0f ? m + log(l) : INFINITY;
        }
    }
}
