/* Register-blocked portable forward attention: FlashAttention 2's algorithm built like a
 * register-tiled SGEMM (CLBlast's xgemm is the model). OpenCL C 1.2, fp32 arithmetic.
 *
 * Why: attn_fwd takes one operand of every FMA from local memory, and local memory
 * delivers far fewer operands per cycle than the FMA units consume, so it tops out near a
 * quarter of the FMA peak. Here every work-item owns a TM x TN micro-tile of scores and a
 * TM x TD micro-tile of the output in registers: each value it reads from local memory
 * feeds TN (a q value), TM (a k value, a v value) FMAs.
 *
 * One work-group covers BLOCK_M query rows of one (sequence, head) and all of the head
 * dim, with ROW_ITEMS x KEY_ITEMS work-items. Work-item (tr, tc) owns rows
 * tr*TM .. tr*TM+TM-1 of the block and
 *   - in S = Q K^T, the keys tc*4 + v*KEY_STRIDE + (0..3) of the key tile (v < TN/4);
 *   - in O += P V, the dims tc*4 + u*KEY_STRIDE + (0..3) (u < TD4).
 * Both are interleaved in groups of four so that the work-items of a row read
 * consecutive float4s of local memory (no bank conflicts), and each row's statistics
 * (max m, normaliser l) live with the same work-items in both products.
 *
 * Per key tile of BLOCK_N keys (only tiles that some row of the block can see):
 *   1. S: q and k staged CHUNK_D dims at a time, transposed (tile[dim][row]), so that a
 *      work-item reads its TM rows and TN keys of one dim as float4s and does TM*TN
 *      FMAs with them. q is staged again for every key tile: a whole q block in local
 *      memory would take 64 KiB at d = 256 (fp32), more than GPUs give a work-group.
 *   2. Softmax: masks, softcap and ALiBi in registers; the row max over the tile meets in
 *      local memory (row_parts); P goes to local memory (p_tile[key][row]). The row sums
 *      stay partial per work-item (its own keys, rescaled by the same alpha as everyone
 *      else's), and meet once at the end.
 *   3. O: v staged CHUNK_KEYS keys at a time (tile[key][dim], in the same local memory as
 *      the q/k chunks); per key, TM x TD FMAs from TM/4 + TD4 float4 reads.
 *
 * Specialised by the host with -D: FACL_DTYPE, HEAD_DIM, BLOCK_M, BLOCK_N, TM, TN (4 or 8),
 * CHUNK_D (dims per q/k staging step), CHUNK_KEYS (keys per v staging step, dividing
 * BLOCK_N) and the feature switches of attn_common.cl. The host launches work-groups of
 * exactly GROUP_SIZE work-items (src/plan.c keeps its local memory count in step with
 * the arrays below).
 */
#ifndef HEAD_DIM
#error "HEAD_DIM must be defined by the host"
#endif
#if !defined(BLOCK_M) || !defined(BLOCK_N) || !defined(TM) || !defined(TN)
#error "BLOCK_M, BLOCK_N, TM and TN must be defined by the host"
#endif
#if !defined(CHUNK_D) || !defined(CHUNK_KEYS)
#error "CHUNK_D and CHUNK_KEYS must be defined by the host"
#endif
#if TM % 4 != 0 || TN % 4 != 0 || BLOCK_M % TM != 0 || BLOCK_N % TN != 0
#error "TM and TN must be multiples of 4 dividing BLOCK_M and BLOCK_N"
#endif
#if BLOCK_N % CHUNK_KEYS != 0
#error "CHUNK_KEYS must divide BLOCK_N"
#endif

#define ROW_ITEMS (BLOCK_M / TM)
#define KEY_ITEMS (BLOCK_N / TN)
#define GROUP_SIZE (ROW_ITEMS * KEY_ITEMS)
/* A row's work-items cover KEY_STRIDE consecutive keys (or dims) with one float4 each. */
#define KEY_STRIDE (4 * KEY_ITEMS)
/* The head dim rounded up to whole float4 steps of a row's work-items; the padding is 0. */
#define D_PAD (((HEAD_DIM + KEY_STRIDE - 1) / KEY_STRIDE) * KEY_STRIDE)
#define TD4 (D_PAD / KEY_STRIDE) /* float4s of output dims per work-item and row */
/* Pitches of the transposed tiles: 4 floats of padding keep float4 alignment and turn
 * the transposing writes' 16-way bank conflicts into 2-way ones. */
#define Q_PITCH (BLOCK_M + 4)
#define K_PITCH (BLOCK_N + 4)
#define P_PITCH (BLOCK_M + 4)
#define QK_FLOATS (CHUNK_D * (Q_PITCH + K_PITCH))
#define V_FLOATS (CHUNK_KEYS * D_PAD)
#define STAGE_FLOATS (QK_FLOATS > V_FLOATS ? QK_FLOATS : V_FLOATS)

/* The four floats of x into dst[0..3]. */
inline void unpack4(float4 x, float *dst)
{
    dst[0] = x.x;
    dst[1] = x.y;
    dst[2] = x.z;
    dst[3] = x.w;
}

/* The index within the key tile of this work-item's score column c (0 .. TN-1). */
inline int key_of_column(int tc, int c)
{
    return (c / 4) * KEY_STRIDE + tc * 4 + (c % 4);
}

/* Dims [d0, d0 + CHUNK_D) of rows [first, first + rows) of a row-major view, times
 * `factor`, into tile[dim * pitch + row]: transposed, so that the micro-tile loop reads
 * consecutive rows (or keys) of one dim as float4s. Rows at or past `end` and dims past
 * the head dim are 0. Consecutive work-items read consecutive dims of a row (coalesced). */
inline void stage_transposed(__local float *tile, int pitch, int rows,
                             __global const storage_t *src, long row_stride, int first, int end,
                             int d0, float factor)
{
    for (int idx = get_local_id(0); idx < rows * CHUNK_D; idx += GROUP_SIZE) {
        const int r = idx / CHUNK_D, dd = idx - r * CHUNK_D;
        const int row = first + r, d = d0 + dd;
        tile[dd * pitch + r] =
            row < end && d < HEAD_DIM ? load_value(src, (long)row * row_stride + d) * factor : 0.0f;
    }
}

/* Keys [first, first + CHUNK_KEYS) of v, all D_PAD dims, into tile[key * D_PAD + dim];
 * keys at or past `end` and dims past the head dim are 0 (their probabilities are 0, and
 * 0 * garbage could be NaN). */
inline void stage_values(__local float *tile, __global const storage_t *v_seq, long row_stride,
                         int first, int end)
{
    for (int idx = get_local_id(0); idx < CHUNK_KEYS * D_PAD; idx += GROUP_SIZE) {
        const int kk = idx / D_PAD, d = idx - kk * D_PAD;
        const int j = first + kk;
        tile[idx] = j < end && d < HEAD_DIM ? load_value(v_seq, (long)j * row_stride + d) : 0.0f;
    }
}

/* s[r * TN + c] += q[row r] . k[column c] over the CHUNK_D staged dims. */
inline void score_chunk(__local const float4 *q_tile, __local const float4 *k_tile, int tr, int tc,
                        float *s)
{
    for (int dd = 0; dd < CHUNK_D; ++dd) {
        float a[TM], bk[TN];
        for (int v = 0; v < TM / 4; ++v) unpack4(q_tile[dd * (Q_PITCH / 4) + tr * (TM / 4) + v], a + 4 * v);
        for (int v = 0; v < TN / 4; ++v) unpack4(k_tile[dd * (K_PITCH / 4) + v * KEY_ITEMS + tc], bk + 4 * v);
        for (int r = 0; r < TM; ++r)
            for (int c = 0; c < TN; ++c) s[r * TN + c] = fma(a[r], bk[c], s[r * TN + c]);
    }
}

/* acc[r * TD4 + u] += p[row r][key] * v[key][dims of u] over the CHUNK_KEYS staged keys,
 * keys counted from `key0` within the tile. */
inline void value_chunk(__local const float4 *p_tile, __local const float4 *v_tile, int key0,
                        int tr, int tc, float4 *acc)
{
    for (int k = 0; k < CHUNK_KEYS; ++k) {
        float pr[TM];
        for (int v = 0; v < TM / 4; ++v)
            unpack4(p_tile[(key0 + k) * (P_PITCH / 4) + tr * (TM / 4) + v], pr + 4 * v);
        for (int u = 0; u < TD4; ++u) {
            const float4 x = v_tile[k * (D_PAD / 4) + u * KEY_ITEMS + tc];
            for (int r = 0; r < TM; ++r) acc[r * TD4 + u] = fma((float4)(pr[r]), x, acc[r * TD4 + u]);
        }
    }
}

/* The largest of KEY_ITEMS partial values of block row `row` in row_parts, or their sum.
 * Every work-item of the row reads them in the same order, so all get the same value. */
inline float row_max(__local const float *row_parts, int row)
{
    float x = row_parts[row * KEY_ITEMS];
    for (int t = 1; t < KEY_ITEMS; ++t) x = fmax(x, row_parts[row * KEY_ITEMS + t]);
    return x;
}

inline float row_sum(__local const float *row_parts, int row)
{
    float x = row_parts[row * KEY_ITEMS];
    for (int t = 1; t < KEY_ITEMS; ++t) x += row_parts[row * KEY_ITEMS + t];
    return x;
}

__kernel __attribute__((reqd_work_group_size(GROUP_SIZE, 1, 1))) void
attn_fwd_blocked(__global const storage_t *q, __global const storage_t *k,
                 __global const storage_t *v, __global storage_t *o, __global float *lse,
                 __global const int *cu_q, __global const int *cu_k, __global const int *seqused,
                 __global const float *alibi, __global float *probs, const attn_params p)
{
    const int h = get_group_id(1);
    const int b = get_group_id(2);
    const int lid = get_local_id(0);
    const int tr = lid / KEY_ITEMS; /* this work-item's rows: tr * TM .. + TM - 1 */
    const int tc = lid - tr * KEY_ITEMS;
    const seq_extent e = sequence_extent(cu_q, cu_k, seqused, b, p);
    const int off = p.align_top_left ? 0 : e.sk - e.sq;
    const int kv_head = h / p.group;
    (void)probs;

    __global const storage_t *q_seq = q + view_index(p.q_off, p.q_sb, p.q_ss, p.q_sh, b, e.q_start, h);
    __global const storage_t *k_seq = k + view_index(p.k_off, p.k_sb, p.k_ss, p.k_sh, b, e.k_start, kv_head);
    __global const storage_t *v_seq = v + view_index(p.v_off, p.v_sb, p.v_ss, p.v_sh, b, e.k_start, kv_head);
    const float slope = alibi_slope(alibi, p, b, h);

    /* The q/k chunks of S, then the v chunks of O, take turns in `stage`. */
    __local float4 stage[STAGE_FLOATS / 4];
    __local float4 p_tile[BLOCK_N * P_PITCH / 4];
    __local float row_parts[BLOCK_M * KEY_ITEMS];
    __local float *stage_floats = (__local float *)stage;
    __local float *q_tile = stage_floats;
    __local float *k_tile = stage_floats + CHUNK_D * Q_PITCH;

    /* Striding over row blocks keeps every row covered even if the host launched fewer
     * groups than this sequence needs (a too-small max_seqlen in trusted varlen mode). */
    for (int row0 = first_row_block() * BLOCK_M; row0 < e.sq; row0 += get_num_groups(0) * BLOCK_M) {
        const int last_row = min(row0 + BLOCK_M, e.sq) - 1;
        /* Keys that any row of this block can see: the visible range moves right with i. */
        const int block_lo = visible_lo(row0 + off, p.window_left, e.sk);
        const int block_end = visible_end(last_row + off, p.window_right, e.sk);

        /* Each owned row's visible keys [row_lo, row_end); empty for rows past the end. */
        int row_lo[TM], row_end[TM];
        float m[TM], l[TM];
        float4 acc[TM * TD4];
        for (int r = 0; r < TM; ++r) {
            const int i = row0 + tr * TM + r;
            row_lo[r] = visible_lo(i + off, p.window_left, e.sk);
            row_end[r] = i < e.sq ? min(block_end, visible_end(i + off, p.window_right, e.sk)) : 0;
            m[r] = -INFINITY;
            l[r] = 0.0f;
            for (int u = 0; u < TD4; ++u) acc[r * TD4 + u] = (float4)(0.0f);
        }

        for (int tile0 = block_lo; tile0 < block_end; tile0 += BLOCK_N) {
            /* 1. S = (scale q) K^T for this tile, in registers. */
            float s[TM * TN];
            for (int x = 0; x < TM * TN; ++x) s[x] = 0.0f;
            for (int d0 = 0; d0 < HEAD_DIM; d0 += CHUNK_D) {
                barrier(CLK_LOCAL_MEM_FENCE); /* the previous chunk (or v chunk) is read */
                stage_transposed(q_tile, Q_PITCH, BLOCK_M, q_seq, p.q_ss, row0, e.sq, d0, p.scale);
                stage_transposed(k_tile, K_PITCH, BLOCK_N, k_seq, p.k_ss, tile0, block_end, d0, 1.0f);
                barrier(CLK_LOCAL_MEM_FENCE);
                score_chunk(stage, stage + CHUNK_D * Q_PITCH / 4, tr, tc, s);
            }

            /* 2. Logits, masks and each row's max over this work-item's keys. */
            for (int r = 0; r < TM; ++r) {
                const int i = row0 + tr * TM + r;
                float part_max = -INFINITY;
                for (int c = 0; c < TN; ++c) {
                    const int j = tile0 + key_of_column(tc, c);
                    const float x = adjust_score(s[r * TN + c], p.softcap, slope, i + off - j);
                    s[r * TN + c] = j >= row_lo[r] && j < row_end[r] ? x : -INFINITY;
                    part_max = fmax(part_max, s[r * TN + c]);
                }
                row_parts[(tr * TM + r) * KEY_ITEMS + tc] = part_max;
            }
            barrier(CLK_LOCAL_MEM_FENCE); /* row maxima visible; the q/k chunks are read */

            /* The online softmax step; P into p_tile[key][row]. */
            float prob[TM * TN];
            for (int r = 0; r < TM; ++r) {
                const int i = row0 + tr * TM + r;
                const float m_new = fmax(m[r], row_max(row_parts, tr * TM + r));
                /* A row that has seen no key yet keeps m = -inf: no exp(-inf - -inf). */
                const int none = m_new == -INFINITY;
                const float alpha = none ? 1.0f : exp(m[r] - m_new); /* 0 on the first visible tile */
                float sum = 0.0f;
                for (int c = 0; c < TN; ++c) {
                    float pr = none ? 0.0f : exp(s[r * TN + c] - m_new);
                    sum += pr; /* the normaliser and the lse see every visible key, dropped or not */
#if HAS_DROPOUT
                    pr = dropout_keep(p.seed_lo, p.seed_hi, p.drop_offset, b, p.heads_q, h, i,
                                      tile0 + key_of_column(tc, c), p.drop_threshold)
                             ? pr * p.drop_scale
                             : 0.0f;
#else
                    (void)i;
#endif
                    prob[r * TN + c] = pr;
                }
                l[r] = l[r] * alpha + sum;
                m[r] = m_new;
                for (int u = 0; u < TD4; ++u) acc[r * TD4 + u] *= alpha;
            }
            for (int c = 0; c < TN; ++c)
                for (int v4 = 0; v4 < TM / 4; ++v4)
                    p_tile[key_of_column(tc, c) * (P_PITCH / 4) + tr * (TM / 4) + v4] =
                        (float4)(prob[(4 * v4) * TN + c], prob[(4 * v4 + 1) * TN + c],
                                 prob[(4 * v4 + 2) * TN + c], prob[(4 * v4 + 3) * TN + c]);

            /* 3. O += P V, v staged a chunk of keys at a time. */
            for (int key0 = 0; key0 < BLOCK_N; key0 += CHUNK_KEYS) {
                if (key0 > 0) barrier(CLK_LOCAL_MEM_FENCE); /* the previous v chunk is read */
                stage_values(stage_floats, v_seq, p.v_ss, tile0 + key0, block_end);
                barrier(CLK_LOCAL_MEM_FENCE); /* v chunk (and, the first time, P) visible */
                value_chunk(p_tile, stage, key0, tr, tc, acc);
            }
        }

        /* The row sums meet; then out = acc / l and lse = m + log(l). */
        for (int r = 0; r < TM; ++r) row_parts[(tr * TM + r) * KEY_ITEMS + tc] = l[r];
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int r = 0; r < TM; ++r) {
            const int i = row0 + tr * TM + r;
            if (i >= e.sq) continue;
            const float l_row = row_sum(row_parts, tr * TM + r);
            /* A row that saw no key: out = 0 and lse = +inf (never NaN). */
            const float inv_l = l_row > 0.0f ? 1.0f / l_row : 0.0f;
            const long o_row = view_index(p.o_off, p.o_sb, p.o_ss, p.o_sh, b, e.q_start + i, h);
            for (int u = 0; u < TD4; ++u) {
                float x[4];
                unpack4(acc[r * TD4 + u] * inv_l, x);
                for (int c = 0; c < 4; ++c) {
                    const int d = u * KEY_STRIDE + tc * 4 + c;
                    if (d < HEAD_DIM) store_value(o, o_row + d, x[c]);
                }
            }
            if (lse && tc == 0)
                lse[view_index(p.lse_off, p.lse_sb, p.lse_ss, p.lse_sh, b, e.q_start + i, h)] =
                    l_row > 0.0f ? m[r] + log(l_row) : INFINITY;
        }
        barrier(CLK_LOCAL_MEM_FENCE); /* row_parts is rewritten by the next row block */
    }
}
