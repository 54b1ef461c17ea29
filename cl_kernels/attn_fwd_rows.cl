/* Portable forward attention shaped for CPUs (PoCL and other CPU runtimes).
 *
 * A CPU runs a work-group as a loop over its work-items and vectorises across them;
 * private arrays indexed per work-item defeat that. Here one work-item (work-group size
 * 1) owns ROWS query rows of one (sequence, head) and works like a small CPU GEMM kernel,
 * written with explicit 16-wide vectors (one AVX-512 register, two AVX2 ones) so that
 * the accumulators stay in registers instead of being stored and reloaded at every step:
 *   - the key tile is transposed into kt[d][16], so q.k for 16 keys and 4 rows at once is
 *     four independent 16-wide FMA chains over d;
 *   - masking, softcap, ALiBi, the running max and exp work on the 16 scores as a vector;
 *   - p.v walks the accumulators of four rows in 16-wide chunks, each chunk kept in a
 *     register while the 16 keys of the tile are folded in.
 * Each loaded key and value is reused by ROWS rows. Same arguments, masks and numerics
 * as attn_fwd.cl.
 *
 * Specialised with -D: FACL_DTYPE, HEAD_DIM, ROWS (a multiple of 4), TILE_N (16) and
 * attn_common.cl's switches.
 */
#ifndef HEAD_DIM
#error "HEAD_DIM must be defined by the host"
#endif
#ifndef ROWS
#error "ROWS must be defined by the host"
#endif
#if !defined(TILE_N) || TILE_N != 16
#error "TILE_N must be defined by the host as 16 (the vector width used below)"
#endif
#if ROWS % 4 != 0
#error "ROWS must be a multiple of 4 (q.k runs four rows at once)"
#endif

/* head_dim rounded up to whole 16-wide chunks; the padding holds zeros. */
#define HEAD_CHUNKS ((HEAD_DIM + 15) / 16)
#define HEAD_PAD (HEAD_CHUNKS * 16)

/* Reductions written with single-element extracts: the same code for the compiler, but
 * Oclgrind 21.10 marks any element a multi-element swizzle takes from position 11
 * (.s89ab, .hi, .odd) as uninitialised (it compares shufflevector masks with LLVM's
 * UndefValueVal, 11, instead of -1), which would drown real diagnostics. */
inline float max_of16(float16 v)
{
    const float a0 = fmax(fmax(v.s0, v.s4), fmax(v.s8, v.sc));
    const float a1 = fmax(fmax(v.s1, v.s5), fmax(v.s9, v.sd));
    const float a2 = fmax(fmax(v.s2, v.s6), fmax(v.sa, v.se));
    const float a3 = fmax(fmax(v.s3, v.s7), fmax(v.sb, v.sf));
    return fmax(fmax(a0, a1), fmax(a2, a3));
}

inline float sum_of16(float16 v)
{
    const float a0 = (v.s0 + v.s4) + (v.s8 + v.sc);
    const float a1 = (v.s1 + v.s5) + (v.s9 + v.sd);
    const float a2 = (v.s2 + v.s6) + (v.sa + v.se);
    const float a3 = (v.s3 + v.s7) + (v.sb + v.sf);
    return (a0 + a1) + (a2 + a3);
}

__kernel void attn_fwd_rows(__global const storage_t *q, __global const storage_t *k,
                            __global const storage_t *v, __global storage_t *o,
                            __global float *lse, __global const int *cu_q,
                            __global const int *cu_k, __global const int *seqused, __global const float *alibi,
                            __global float *probs, const attn_params p)
{
    const int h = get_group_id(1);
    const int b = get_group_id(2);
    const seq_extent e = sequence_extent(cu_q, cu_k, seqused, b, p);
    const int off = p.align_top_left ? 0 : e.sk - e.sq;
    const int kv_head = h / p.group;
    (void)probs;
    __global const storage_t *q_seq = q + view_index(p.q_off, p.q_sb, p.q_ss, p.q_sh, b, e.q_start, h);
    __global const storage_t *k_seq = k + view_index(p.k_off, p.k_sb, p.k_ss, p.k_sh, b, e.k_start, kv_head);
    __global const storage_t *v_seq = v + view_index(p.v_off, p.v_sb, p.v_ss, p.v_sh, b, e.k_start, kv_head);
    const float slope = alibi_slope(alibi, p, b, h);
    const int16 lane = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

    float q_rows[ROWS][HEAD_PAD];
    float acc[ROWS][HEAD_PAD];
    float m[ROWS], l[ROWS];
    float kt[HEAD_DIM][16];
    float vt[16][HEAD_PAD];
    float scores[ROWS][16];

    /* The padding columns of vt are never loaded from memory: zero them once. */
    for (int n = 0; n < 16; ++n)
        for (int d = HEAD_DIM; d < HEAD_PAD; ++d) vt[n][d] = 0.0f;

    for (int row0 = get_group_id(0) * ROWS; row0 < e.sq; row0 += get_num_groups(0) * ROWS) {
        const int rows = min(ROWS, e.sq - row0);
        const int block_lo = visible_lo(row0 + off, p.window_left, e.sk);
        const int block_end = visible_end(row0 + rows - 1 + off, p.window_right, e.sk);
        for (int r = 0; r < ROWS; ++r) {
            for (int d = 0; d < HEAD_PAD; ++d) {
                const bool real = r < rows && d < HEAD_DIM;
                q_rows[r][d] = real ? load_value(q_seq, (long)(row0 + r) * p.q_ss + d) * p.scale : 0.0f;
                acc[r][d] = 0.0f;
            }
            m[r] = -INFINITY;
            l[r] = 0.0f;
        }

        for (int tile0 = block_lo; tile0 < block_end; tile0 += 16) {
            const int n_keys = min(16, block_end - tile0);
            for (int n = 0; n < 16; ++n) {
                const bool in_range = n < n_keys;
                for (int d = 0; d < HEAD_DIM; ++d) {
                    kt[d][n] = in_range ? load_value(k_seq, (long)(tile0 + n) * p.k_ss + d) : 0.0f;
                    vt[n][d] = in_range ? load_value(v_seq, (long)(tile0 + n) * p.v_ss + d) : 0.0f;
                }
            }

            /* Raw scores of the whole tile, four rows per pass over kt. Rows past `rows`
             * hold zeros in q_rows and are never read back. */
            for (int r = 0; r < ROWS; r += 4) {
                float16 s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
                for (int d = 0; d < HEAD_DIM; ++d) {
                    const float16 kd = vload16(0, kt[d]);
                    s0 = fma((float16)q_rows[r][d], kd, s0);
                    s1 = fma((float16)q_rows[r + 1][d], kd, s1);
                    s2 = fma((float16)q_rows[r + 2][d], kd, s2);
                    s3 = fma((float16)q_rows[r + 3][d], kd, s3);
                }
                vstore16(s0, 0, scores[r]);
                vstore16(s1, 0, scores[r + 1]);
                vstore16(s2, 0, scores[r + 2]);
                vstore16(s3, 0, scores[r + 3]);
            }

            /* Softmax step per row: scores[r] becomes the row's p for this tile and
             * alpha[r] the rescale of its accumulator (1 and zeros for a row that sees
             * none of these keys, and for the rows past `rows`). */
            float alpha[ROWS];
            for (int r = 0; r < ROWS; ++r) {
                const int i = row0 + r;
                const int row_lo = visible_lo(i + off, p.window_left, e.sk);
                const int row_end = min(block_end, visible_end(i + off, p.window_right, e.sk));
                const int16 j = tile0 + lane;
                float16 x = adjust_scores16(vload16(0, scores[r]), p.softcap, slope, (i + off) - j);
                x = select((float16)(-INFINITY), x, (j >= row_lo) & (j < row_end));
                const float tile_max = r < rows ? max_of16(x) : -INFINITY;
                if (tile_max == -INFINITY) {
                    alpha[r] = 1.0f;
                    vstore16((float16)0.0f, 0, scores[r]);
                    continue;
                }
                const float m_new = fmax(m[r], tile_max);
                alpha[r] = exp(m[r] - m_new);
                float16 pr = exp(x - m_new); /* masked keys: exp(-inf) = 0 */
                l[r] = l[r] * alpha[r] + sum_of16(pr);
                m[r] = m_new;
#if HAS_DROPOUT
                float dropped[16];
                vstore16(pr, 0, dropped);
                for (int n = 0; n < 16; ++n)
                    dropped[n] = dropout_keep(p.seed_lo, p.seed_hi, p.drop_offset, b, p.heads_q,
                                              h, i, tile0 + n, p.drop_threshold)
                                     ? dropped[n] * p.drop_scale
                                     : 0.0f;
                pr = vload16(0, dropped);
#endif
                vstore16(pr, 0, scores[r]);
            }

            /* acc = alpha * acc + p.v, four rows per pass over vt: each 16-wide chunk of
             * vt is loaded once for four independent FMA chains. */
            for (int r = 0; r < ROWS; r += 4) {
                for (int c = 0; c < HEAD_CHUNKS; ++c) {
                    float16 a0 = vload16(c, acc[r]) * alpha[r];
                    float16 a1 = vload16(c, acc[r + 1]) * alpha[r + 1];
                    float16 a2 = vload16(c, acc[r + 2]) * alpha[r + 2];
                    float16 a3 = vload16(c, acc[r + 3]) * alpha[r + 3];
                    for (int n = 0; n < 16; ++n) {
                        const float16 vn = vload16(c, vt[n]);
                        a0 = fma((float16)scores[r][n], vn, a0);
                        a1 = fma((float16)scores[r + 1][n], vn, a1);
                        a2 = fma((float16)scores[r + 2][n], vn, a2);
                        a3 = fma((float16)scores[r + 3][n], vn, a3);
                    }
                    vstore16(a0, c, acc[r]);
                    vstore16(a1, c, acc[r + 1]);
                    vstore16(a2, c, acc[r + 2]);
                    vstore16(a3, c, acc[r + 3]);
                }
            }
        }

        for (int r = 0; r < rows; ++r) {
            const int i = row0 + r;
            const float inv_l = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
            const long o_row = view_index(p.o_off, p.o_sb, p.o_ss, p.o_sh, b, e.q_start + i, h);
            for (int d = 0; d < HEAD_DIM; ++d) store_value(o, o_row + d, acc[r][d] * inv_l);
            if (lse)
                lse[view_index(p.lse_off, p.lse_sb, p.lse_ss, p.lse_sh, b, e.q_start + i, h)] =
                    l[r] > 0.0f ? m[r] + log(l[r]) : INFINITY;
        }
    }
}
