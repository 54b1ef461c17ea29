/* Portable backward attention (FlashAttention 2's backward, docs/CONTRACT.md "Backward").
 *
 * Given dout, q, k, v, out and the forward's lse, three kernels compute dq, dk and dv:
 *   attn_bwd_dot   D_i = sum_d dout_i[d] * out_i[d], fp32, into the workspace (delta;
 *                  in bwd_common.cl, shared with the tensor-core backward);
 *   attn_bwd_dq    one work-group per (query block, query head, sequence); each
 *                  work-item owns one query row and walks the key tiles its block can
 *                  see: dq_i = scale * sum_j dS_ij k_j;
 *   attn_bwd_dkdv  one work-group per (key block, kv head, sequence); each work-item
 *                  owns one key and walks the query rows of every query head of its GQA
 *                  group that can see the block: dv_j = sum_i P~_ij dout_i and
 *                  dk_j = scale * sum_i dS_ij q_i.
 * P is recomputed from q, k and lse (P_ij = exp(x_ij - lse_i)); with dropout, P~ = P * Z
 * with Z_ij = keep_ij / (1 - p_drop) exactly as the forward applies it, and
 *   dP_ij = Z_ij * dot(dout_i, v_j),  dS_ij = P_ij * (dP_ij - D_i) * dlogit/dscore
 * where dlogit/dscore is 1 - tanh^2 with softcap (ALiBi adds a constant: no gradient).
 *
 * Deterministic by construction: every output element is written once, by the one
 * work-item that owns its row, which sums its terms in a fixed order (keys ascending for
 * dq; query heads, then rows ascending, for dk and dv). No atomics, and the order does
 * not depend on the tile or work-group sizes, so any launch shape gives the same bits.
 *
 * Specialised by the host with -D: FACL_DTYPE, HEAD_DIM, attn_common.cl's switches,
 * FACL_BWD_PARAMS_SIZE (sizeof the host's facl_bwd_params), BLOCK_M (query rows per tile
 * of attn_bwd_dkdv) and BLOCK_N (keys per tile of attn_bwd_dq).
 */
#ifndef HEAD_DIM
#error "HEAD_DIM must be defined by the host"
#endif
#ifndef BLOCK_M
#error "BLOCK_M must be defined by the host"
#endif
#ifndef BLOCK_N
#error "BLOCK_N must be defined by the host"
#endif

/* dq: the work-group's rows share k and v tiles staged in local memory as fp32. */
__kernel void attn_bwd_dq(BWD_ARGS)
{
    const int h = get_group_id(1);
    const int b = get_group_id(2);
    const int lid = get_local_id(0);
    const int group_size = get_local_size(0);
    const seq_extent e = sequence_extent(cu_q, cu_k, seqused, b, p);
    const int off = p.align_top_left ? 0 : e.sk - e.sq;
    const int kv_head = h / p.group;
    (void)o; (void)dk; (void)dv;

    __global const storage_t *k_seq = k + view_index(p.k_off, p.k_sb, p.k_ss, p.k_sh, b, e.k_start, kv_head);
    __global const storage_t *v_seq = v + view_index(p.v_off, p.v_sb, p.v_ss, p.v_sh, b, e.k_start, kv_head);
    const float slope = alibi_slope(alibi, p, b, h);

    __local float k_tile[BLOCK_N * HEAD_DIM];
    __local float v_tile[BLOCK_N * HEAD_DIM];

    for (int row0 = first_row_block() * group_size; row0 < e.sq;
         row0 += get_num_groups(0) * group_size) {
        const int i = row0 + lid;
        const bool active = i < e.sq;
        const int last_row = min(row0 + group_size, e.sq) - 1;
        /* Keys some row of the block sees (the visible range moves right with i). */
        const int block_lo = visible_lo(row0 + off, p.window_left, e.sk);
        const int block_end = visible_end(last_row + off, p.window_right, e.sk);
        const int row_lo = visible_lo(i + off, p.window_left, e.sk);
        const int row_end = min(block_end, visible_end(i + off, p.window_right, e.sk));

        const long q_row = view_index(p.q_off, p.q_sb, p.q_ss, p.q_sh, b, e.q_start + i, h);
        const long do_row = view_index(g.do_off, g.do_sb, g.do_ss, g.do_sh, b, e.q_start + i, h);
        float q_i[HEAD_DIM], do_i[HEAD_DIM], acc[HEAD_DIM];
        for (int d = 0; d < HEAD_DIM; ++d) {
            q_i[d] = active ? load_value(q, q_row + d) : 0.0f;
            do_i[d] = active ? load_value(dout, do_row + d) : 0.0f;
            acc[d] = 0.0f;
        }
        const float lse_i = active ? lse[view_index(p.lse_off, p.lse_sb, p.lse_ss, p.lse_sh, b,
                                                   e.q_start + i, h)]
                                   : 0.0f;
        const float delta_i = active ? delta[view_index(g.delta_off, g.delta_sb, g.delta_ss,
                                                        g.delta_sh, b, e.q_start + i, h)]
                                     : 0.0f;

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
            if (!active) continue;
            for (int r = 0; r < BLOCK_N; ++r) {
                const int j = tile0 + r;
                if (j < row_lo || j >= row_end) continue;
                float s = 0.0f, dpv = 0.0f;
                for (int d = 0; d < HEAD_DIM; ++d) {
                    s = fma(q_i[d], k_tile[r * HEAD_DIM + d], s);
                    dpv = fma(do_i[d], v_tile[r * HEAD_DIM + d], dpv);
                }
                const float2 pd = bwd_entry(s * p.scale, dpv, lse_i, delta_i, slope, i + off - j,
                                            p.softcap, dropout_factor(p, b, h, i, j));
                for (int d = 0; d < HEAD_DIM; ++d) acc[d] = fma(pd.y, k_tile[r * HEAD_DIM + d], acc[d]);
            }
        }
        /* A row that sees no key gets dq = 0. */
        if (active) {
            const long dq_row = view_index(g.dq_off, g.dq_sb, g.dq_ss, g.dq_sh, b, e.q_start + i, h);
            for (int d = 0; d < HEAD_DIM; ++d) store_value(dq, dq_row + d, acc[d] * p.scale);
        }
    }
}

/* dk and dv: the work-group's keys share tiles of q and dout rows (with their lse and D)
 * staged in local memory, for every query head of the kv head's group in turn; the sums
 * over the group happen in the owning work-item, so no two groups write one element. */
__kernel void attn_bwd_dkdv(BWD_ARGS)
{
    const int kv_head = get_group_id(1);
    const int b = get_group_id(2);
    const int lid = get_local_id(0);
    const int group_size = get_local_size(0);
    const seq_extent e = sequence_extent(cu_q, cu_k, seqused, b, p);
    const int off = p.align_top_left ? 0 : e.sk - e.sq;
    (void)o;
    (void)dq;
    const int key_rows = bwd_key_rows(cu_k, e, b, p);

    __global const storage_t *k_seq = k + view_index(p.k_off, p.k_sb, p.k_ss, p.k_sh, b, e.k_start, kv_head);
    __global const storage_t *v_seq = v + view_index(p.v_off, p.v_sb, p.v_ss, p.v_sh, b, e.k_start, kv_head);

    __local float q_tile[BLOCK_M * HEAD_DIM];
    __local float do_tile[BLOCK_M * HEAD_DIM];
    __local float lse_tile[BLOCK_M];
    __local float delta_tile[BLOCK_M];

    for (int key0 = get_group_id(0) * group_size; key0 < key_rows;
         key0 += get_num_groups(0) * group_size) {
        const int j = key0 + lid;
        const bool active = j < e.sk;
        float k_j[HEAD_DIM], v_j[HEAD_DIM], dk_acc[HEAD_DIM], dv_acc[HEAD_DIM];
        for (int d = 0; d < HEAD_DIM; ++d) {
            k_j[d] = active ? load_value(k_seq, (long)j * p.k_ss + d) : 0.0f;
            v_j[d] = active ? load_value(v_seq, (long)j * p.v_ss + d) : 0.0f;
            dk_acc[d] = dv_acc[d] = 0.0f;
        }
        if (key0 < e.sk) {
            const int2 rows = bwd_rows_seeing(key0, min(key0 + group_size, e.sk) - 1, off, e.sq, p);
            const long i_lo = rows.x, i_end = rows.y;
            for (int h = kv_head * p.group; h < (kv_head + 1) * p.group; ++h) {
                const float slope = alibi_slope(alibi, p, b, h);
                for (long row0 = i_lo; row0 < i_end; row0 += BLOCK_M) {
                    barrier(CLK_LOCAL_MEM_FENCE); /* the previous tile is no longer read */
                    for (int idx = lid; idx < BLOCK_M * HEAD_DIM; idx += group_size) {
                        const int r = idx / HEAD_DIM, d = idx - r * HEAD_DIM;
                        const long i = row0 + r;
                        const bool in_range = i < i_end;
                        const int row = e.q_start + (int)i;
                        q_tile[idx] = in_range ? load_value(q, view_index(p.q_off, p.q_sb, p.q_ss, p.q_sh, b, row, h) + d) : 0.0f;
                        do_tile[idx] = in_range ? load_value(dout, view_index(g.do_off, g.do_sb, g.do_ss, g.do_sh, b, row, h) + d) : 0.0f;
                    }
                    for (int r = lid; r < BLOCK_M; r += group_size) {
                        const long i = row0 + r;
                        const int row = e.q_start + (int)i;
                        lse_tile[r] = i < i_end ? lse[view_index(p.lse_off, p.lse_sb, p.lse_ss, p.lse_sh, b, row, h)] : 0.0f;
                        delta_tile[r] = i < i_end ? delta[view_index(g.delta_off, g.delta_sb, g.delta_ss, g.delta_sh, b, row, h)] : 0.0f;
                    }
                    barrier(CLK_LOCAL_MEM_FENCE);
                    if (!active) continue;
                    for (int r = 0; r < BLOCK_M && row0 + r < i_end; ++r) {
                        const int i = (int)row0 + r;
                        if (j < visible_lo(i + off, p.window_left, e.sk) ||
                            j >= visible_end(i + off, p.window_right, e.sk))
                            continue;
                        float s = 0.0f, dpv = 0.0f;
                        for (int d = 0; d < HEAD_DIM; ++d) {
                            s = fma(q_tile[r * HEAD_DIM + d], k_j[d], s);
                            dpv = fma(do_tile[r * HEAD_DIM + d], v_j[d], dpv);
                        }
                        const float2 pd = bwd_entry(s * p.scale, dpv, lse_tile[r], delta_tile[r],
                                                    slope, i + off - j, p.softcap,
                                                    dropout_factor(p, b, h, i, j));
                        for (int d = 0; d < HEAD_DIM; ++d) {
                            dv_acc[d] = fma(pd.x, do_tile[r * HEAD_DIM + d], dv_acc[d]);
                            dk_acc[d] = fma(pd.y, q_tile[r * HEAD_DIM + d], dk_acc[d]);
                        }
                    }
                }
            }
        }
        /* Keys no row sees (and keys past seqused_k) get dk = dv = 0. */
        if (j < key_rows) {
            const long dk_row = view_index(g.dk_off, g.dk_sb, g.dk_ss, g.dk_sh, b, e.k_start + j, kv_head);
            const long dv_row = view_index(g.dv_off, g.dv_sb, g.dv_ss, g.dv_sh, b, e.k_start + j, kv_head);
            for (int d = 0; d < HEAD_DIM; ++d) {
                store_value(dk, dk_row + d, dk_acc[d] * p.scale);
                store_value(dv, dv_row + d, dv_acc[d]);
            }
        }
    }
}
