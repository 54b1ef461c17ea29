/* Portable forward attention shaped for CPUs (PoCL and other CPU runtimes).
 *
 * A CPU runs a work-group as a loop over its work-items and vectorises across them;
 * private arrays indexed per work-item defeat that. Here one work-item (work-group size
 * 1) owns ROWS query rows of one (sequence, head) and works like a small CPU GEMM kernel,
 * written with explicit 16-wide vectors (one AVX-512 register, two AVX2 ones) so that
 * the accumulators stay in registers instead of being stored and reloaded at every step:
 *   - keys come in tiles of 16, transposed (kt[d][16]), so q.k for 16 keys and RB rows
 *     at once is RB independent 16-wide FMA chains over d;
 *   - masking, softcap, ALiBi, the running max and exp work on the 16 scores as a vector;
 *   - p.v walks the accumulators of RB rows in 16-wide chunks, each chunk kept in a
 *     register while the 16 keys of the tile are folded in.
 * RB (rows per register block) is sized by the host so that the RB chains fill the FMA
 * pipelines without spilling: 4 with 256-bit vectors (8 registers), 8 with 512-bit ones.
 * Each loaded key and value is reused by ROWS rows.
 *
 * Where the tiles come from (PACKED_KV):
 *   0: each work-item loads and transposes every tile it visits itself (element by
 *      element, converting the storage type): about a third of the time at 16 rows per
 *      work-item, repeated by every work-item of a (sequence, head);
 *   1: pack_kv_tiles (below) has written every tile once, in fp32, already transposed,
 *      into a buffer of the host's (`packed`, tiles of TILE_FLOATS floats, head by head),
 *      and attn_fwd_rows reads them as they are. The host packs when a tile is read by
 *      more than one work-item and the buffer is not too large (src/plan.c).
 * Same arguments (PACKED_KV adds `packed` and `total_tiles` at the end), masks and
 * numerics as attn_fwd.cl.
 *
 * Specialised with -D: FACL_DTYPE, HEAD_DIM, ROWS (a multiple of RB), RB, TILE_N (16),
 * PACKED_KV and attn_common.cl's switches.
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
#if !defined(RB) || !defined(PACKED_KV)
#error "RB and PACKED_KV must be defined by the host"
#endif
#if ROWS % RB != 0
#error "ROWS must be a multiple of RB (q.k and p.v run RB rows at once)"
#endif

/* FOR_RB(X) expands X(0) .. X(RB - 1): the register block's chains as named variables,
 * not an array. (Arrays of vectors indexed in unrolled loops compile to the same code
 * on PoCL, but Oclgrind 21.10 then reports their FMAs as depending on uninitialised
 * values.) */
#if RB == 2
#define FOR_RB(X) X(0) X(1)
#elif RB == 4
#define FOR_RB(X) X(0) X(1) X(2) X(3)
#elif RB == 8
#define FOR_RB(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#else
#error "RB must be 2, 4 or 8"
#endif

/* The running max of a row moves only when a score exceeds it by more than this (in
 * natural-log units), so most tiles skip the rescale of the row's accumulator and the
 * exp of the shift. The result is the same softmax (any reference point cancels); the
 * unnormalised weights stay below e^8 < 3000, far inside fp32's range. */
#define MAX_SLACK 8.0f

/* head_dim rounded up to whole 16-wide chunks; the padding holds zeros. */
#define HEAD_CHUNKS ((HEAD_DIM + 15) / 16)
#define HEAD_PAD (HEAD_CHUNKS * 16)
/* A packed tile: kt[HEAD_DIM][16], then vt[16][HEAD_PAD] (padding dims zero). */
#define TILE_FLOATS (16 * (HEAD_DIM + HEAD_PAD))

/* The packed tile where sequence b's keys start. Dense sequences get seqlen_k / 16 tiles
 * each; a varlen sequence starting at key k_start gets tiles from ceil(k_start / 16) + b,
 * which leaves room for its own rounding up: ceil((s + n) / 16) >= ceil(s / 16) +
 * ceil(n / 16) - 1, so sequence b + 1 (starting one tile further per sequence) never
 * overlaps it, and all of them end within ceil(total_k / 16) + batch tiles. */
inline long packed_first_tile(const seq_extent e, int b, const attn_params p)
{
#if IS_VARLEN
    return (long)(e.k_start + 15) / 16 + b;
#else
    return (long)b * ((p.seqlen_k + 15) / 16);
#endif
}

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


/* One work-item per tile of 16 keys of one (sequence, kv head): k transposed and v as
 * rows, both in fp32, keys past the sequence's end as zeros. Strides over the tiles
 * (trusted prefix sums may describe more keys than max_seqlen_k); a tile index past
 * the buffer (prefix sums that overlap, which only trusted ones can) is skipped, so a
 * lie gives wrong numbers, never a write outside the buffer. */
__kernel void pack_kv_tiles(__global const storage_t *k, __global const storage_t *v,
                            __global const int *cu_q, __global const int *cu_k,
                            __global const int *seqused, __global float *packed,
                            const attn_params p, const int total_tiles)
{
    const int kv_head = get_global_id(1);
    const int b = get_global_id(2);
    const seq_extent e = sequence_extent(cu_q, cu_k, seqused, b, p);
    __global const storage_t *k_seq = k + view_index(p.k_off, p.k_sb, p.k_ss, p.k_sh, b, e.k_start, kv_head);
    __global const storage_t *v_seq = v + view_index(p.v_off, p.v_sb, p.v_ss, p.v_sh, b, e.k_start, kv_head);
    const long first = packed_first_tile(e, b, p);
    for (int t = get_global_id(0); t * 16 < e.sk; t += get_global_size(0)) {
        if (first + t >= total_tiles) return;
        __global float *kt = packed + ((long)kv_head * total_tiles + first + t) * TILE_FLOATS;
        __global float *vt = kt + HEAD_DIM * 16;
        for (int n = 0; n < 16; ++n) {
            const int key = t * 16 + n;
            const bool in_range = key < e.sk;
            for (int d = 0; d < HEAD_DIM; ++d) {
                kt[d * 16 + n] = in_range ? load_value(k_seq, (long)key * p.k_ss + d) : 0.0f;
                vt[n * HEAD_PAD + d] = in_range ? load_value(v_seq, (long)key * p.v_ss + d) : 0.0f;
            }
            for (int d = HEAD_DIM; d < HEAD_PAD; ++d) vt[n * HEAD_PAD + d] = 0.0f;
        }
    }
}

__kernel void attn_fwd_rows(__global const storage_t *q, __global const storage_t *k,
                            __global const storage_t *v, __global storage_t *o,
                            __global float *lse, __global const int *cu_q,
                            __global const int *cu_k, __global const int *seqused, __global const float *alibi,
                            __global float *probs, const attn_params p
#if PACKED_KV
                            , __global const float *packed, const int total_tiles
#endif
                            )
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
    float m[ROWS];
    float16 l16[ROWS]; /* each row's sum of weights, per lane: reduced once at the end */
    float scores[ROWS][16];
#if PACKED_KV
    /* Tiles aligned to 16 keys of the sequence: the first may start before block_lo,
     * whose keys the mask below hides. */
    __global const float *packed_head = packed + (long)kv_head * total_tiles * TILE_FLOATS;
    const long first_tile = packed_first_tile(e, b, p);
    (void)k_seq;
    (void)v_seq;
#define KT_ROW(d) vload16(d, kt_tile)
#define VT_CHUNK(n, c) vload16(c, vt_tile + (n) * HEAD_PAD)
#else
    float kt[HEAD_DIM][16];
    float vt[16][HEAD_PAD];
#define KT_ROW(d) vload16(0, kt[d])
#define VT_CHUNK(n, c) vload16(c, vt[n])

    /* The padding columns of vt are never loaded from memory: zero them once. */
    for (int n = 0; n < 16; ++n)
        for (int d = HEAD_DIM; d < HEAD_PAD; ++d) vt[n][d] = 0.0f;
#endif

    for (int row0 = first_row_block() * ROWS; row0 < e.sq; row0 += get_num_groups(0) * ROWS) {
        const int rows = min(ROWS, e.sq - row0);
        const int rows_rb = min(ROWS, (rows + RB - 1) & -RB); /* whole register blocks */
        const int block_lo = visible_lo(row0 + off, p.window_left, e.sk);
        const int block_end = visible_end(row0 + rows - 1 + off, p.window_right, e.sk);
        for (int r = 0; r < ROWS; ++r) {
            for (int d = 0; d < HEAD_PAD; ++d) {
                const bool real = r < rows && d < HEAD_DIM;
                q_rows[r][d] = real ? load_value(q_seq, (long)(row0 + r) * p.q_ss + d) * p.scale : 0.0f;
                acc[r][d] = 0.0f;
            }
            m[r] = -INFINITY;
            l16[r] = 0.0f;
        }

#if PACKED_KV
        for (int tile0 = block_lo & ~15; tile0 < block_end; tile0 += 16) {
            /* min: only overlapping trusted prefix sums reach past the buffer */
            const long tile = min(first_tile + tile0 / 16, (long)total_tiles - 1);
            __global const float *kt_tile = packed_head + tile * TILE_FLOATS;
            __global const float *vt_tile = kt_tile + HEAD_DIM * 16;
#else
        for (int tile0 = block_lo; tile0 < block_end; tile0 += 16) {
            const int n_keys = min(16, block_end - tile0);
            for (int n = 0; n < 16; ++n) {
                const bool in_range = n < n_keys;
                for (int d = 0; d < HEAD_DIM; ++d) {
                    kt[d][n] = in_range ? load_value(k_seq, (long)(tile0 + n) * p.k_ss + d) : 0.0f;
                    vt[n][d] = in_range ? load_value(v_seq, (long)(tile0 + n) * p.v_ss + d) : 0.0f;
                }
            }
#endif

            /* Raw scores of the whole tile, RB rows per pass over kt. Rows past `rows`
             * (up to a whole block) hold zeros in q_rows and are never read back. */
            for (int r = 0; r < rows_rb; r += RB) {
#define SCORE_ZERO(i) float16 s##i = 0.0f;
#define SCORE_FMA(i) s##i = fma((float16)q_rows[r + i][d], kd, s##i);
#define SCORE_STORE(i) vstore16(s##i, 0, scores[r + i]);
                FOR_RB(SCORE_ZERO)
                for (int d = 0; d < HEAD_DIM; ++d) {
                    const float16 kd = KT_ROW(d);
                    FOR_RB(SCORE_FMA)
                }
                FOR_RB(SCORE_STORE)
            }

            /* Softmax step per row: scores[r] becomes the row's p for this tile and
             * alpha[r] the rescale of its accumulator (1 and zeros for a row that sees
             * none of these keys, and for the rows past `rows`). The mask is applied
             * only where the tile is not wholly visible to the row. */
            float alpha[ROWS];
            for (int r = 0; r < rows_rb; ++r) {
                const int i = row0 + r;
                const int row_lo = visible_lo(i + off, p.window_left, e.sk);
                const int row_end = min(block_end, visible_end(i + off, p.window_right, e.sk));
                const int16 j = tile0 + lane;
                float16 x = adjust_scores16(vload16(0, scores[r]), p.softcap, slope, (i + off) - j);
                if (tile0 < row_lo || tile0 + 16 > row_end)
                    x = select((float16)(-INFINITY), x, (j >= row_lo) & (j < row_end));
                alpha[r] = 1.0f;
                if (r >= rows) {
                    vstore16((float16)0.0f, 0, scores[r]);
                    continue;
                }
                if (m[r] == -INFINITY || any(x > (float16)(m[r] + MAX_SLACK))) {
                    const float tile_max = max_of16(x);
                    if (tile_max == -INFINITY) { /* no visible key yet */
                        vstore16((float16)0.0f, 0, scores[r]);
                        continue;
                    }
                    const float m_new = fmax(m[r], tile_max);
                    alpha[r] = exp(m[r] - m_new); /* 0 for the first visible tile */
                    l16[r] *= alpha[r];
                    m[r] = m_new;
                }
                float16 pr = exp(x - m[r]); /* masked keys: exp(-inf) = 0 */
                l16[r] += pr;
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

            /* acc = alpha * acc + p.v, RB rows per pass over vt: each 16-wide chunk of
             * vt is loaded once for RB independent FMA chains. */
            for (int r = 0; r < rows_rb; r += RB) {
                for (int c = 0; c < HEAD_CHUNKS; ++c) {
#define ACC_LOAD(i) float16 a##i = vload16(c, acc[r + i]) * alpha[r + i];
#define ACC_FMA(i) a##i = fma((float16)scores[r + i][n], vn, a##i);
#define ACC_STORE(i) vstore16(a##i, c, acc[r + i]);
                    FOR_RB(ACC_LOAD)
                    for (int n = 0; n < 16; ++n) {
                        const float16 vn = VT_CHUNK(n, c);
                        FOR_RB(ACC_FMA)
                    }
                    FOR_RB(ACC_STORE)
                }
            }
        }

        for (int r = 0; r < rows; ++r) {
            const int i = row0 + r;
            const float l = sum_of16(l16[r]);
            const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;
            const long o_row = view_index(p.o_off, p.o_sb, p.o_ss, p.o_sh, b, e.q_start + i, h);
            for (int d = 0; d < HEAD_DIM; ++d) store_value(o, o_row + d, acc[r][d] * inv_l);
            if (lse)
                lse[view_index(p.lse_off, p.lse_sb, p.lse_ss, p.lse_sh, b, e.q_start + i, h)] =
                    l > 0.0f ? m[r] + log(l) : INFINITY;
        }
    }
}
