/* Backward attention on tensor cores (FlashAttention 2's backward with warp-level mma;
 * the math and the deterministic order are those of attn_bwd.cl, docs/CONTRACT.md
 * "Backward").
 *
 * attn_bwd_dot (bwd_common.cl) writes D first; then two kernels, each the only writer of
 * what it computes, so the gradients need no atomics and are the same on every run:
 *
 *   attn_bwd_mma_dkdv  one work-group per (block of KV_KEYS keys, kv head, sequence).
 *       k and v of the block sit in local memory for the whole call; for each query head
 *       of the GQA group and each tile of KV_ROWS query rows that can see the block, the
 *       group stages q and dout, and
 *         1. each warp computes a 16-key slice of S^T = K Q^T and dP^T = V dO^T, turns
 *            them into P~^T and dS^T (rounded to the storage type, as FlashAttention
 *            does before its second products) and stores both in local memory;
 *         2. each warp adds P~^T dO to dv and dS^T Q to dk for its 16 keys and its share
 *            of the head dims (KV_WARPS / (KV_KEYS / 16) warps split the dims; in step 1
 *            they split the query rows).
 *       Sums run over query heads, then row tiles, in ascending order.
 *   attn_bwd_mma_dq  one work-group per (block of 16 * DQ_WARPS query rows, query head,
 *       sequence), a warp per 16 rows; for each tile of DQ_KEYS keys the group stages k
 *       and v, and each warp computes S = Q K^T and dP = dO V^T, dS in registers, and
 *       adds dS K to dq (the C layout of two score blocks is the A layout of one k-step,
 *       as in the forward). Sums run over key tiles in ascending order.
 *
 * With DQ_ATOMIC=1 (opts->deterministic = 0, FlashAttention 2's default) dq comes from the
 * dk/dv kernel instead, as in FlashAttention 2: after step 2 the warps
 *         3. add dS K for the row tile and the block's keys (dS^T is in local memory
 *            already, and so is K) into an fp32 accumulator in the workspace, with
 *            floating-point atomics (red.global.add.f32; emulated: a compare-and-swap
 *            loop on the float's bits, OpenCL 1.2 having no float atomics),
 * and attn_bwd_mma_dq_store turns the accumulator into dq. That is 5 matrix products
 * instead of 7 (no recomputation of S and dP), but the order of dq's sums over key
 * blocks, and so its last bits, changes from run to run; dk and dv stay deterministic.
 * attn_bwd_mma_dq is not compiled in that mode. The workspace then holds, for each query
 * row and head, the accumulator followed by D (bwd_common.cl's DQ_ACC_BACK), so that the
 * accumulator needs no argument of its own; attn_bwd_dot zeroes each row's accumulator
 * as it writes the row's D.
 *
 * The entries of S^T and S (P~ and dS) come from bwd_mma_entries.cl, which attn_bwd_wgmma.cl
 * shares. Every operand comes out of row-major local tiles through ldmatrix (warp_mma.cl:
 * mma_a_fragment, mma_key_fragments, and mma_value_fragments, whose .trans reads the
 * transposed operands of the second products). Probabilities use base 2 (the scale with
 * log2(e) folded in and lse converted once per row); masks, dropout, softcap and ALiBi
 * are applied per entry exactly as attn_bwd.cl applies them.
 *
 * Specialised by the host with -D: FACL_DTYPE (1 or 2), HEAD_DIM (up to 256), attn_common.cl's
 * switches, FACL_BWD_PARAMS_SIZE, MMA_EMULATE and VEC_LOADS (warp_mma.cl), KV_WARPS,
 * KV_KEYS, KV_ROWS, DQ_WARPS, DQ_KEYS (src/bwd_plan.c picks them to fit local memory),
 * KV_STAGES, DQ_STAGES: 2 where local memory holds two of the tiles that change
 * from step to step (q and dout; k and v), so that the next step's copies (cp.async)
 * overlap this step's products, else 1, DQ_ATOMIC (0 or 1, above), and GRAD_PAIRS (1 when
 * every row of dq, dk and dv starts on a 16-byte boundary: gradient pairs go out as
 * 32-bit stores).
 */
#ifndef HEAD_DIM
#error "HEAD_DIM must be defined by the host"
#endif
#if HEAD_DIM > 256
#error "attn_bwd_mma covers head_dim up to 256"
#endif
#if !defined(KV_WARPS) || !defined(KV_KEYS) || !defined(KV_ROWS) || !defined(KV_STAGES) || \
    !defined(DQ_WARPS) || !defined(DQ_KEYS) || !defined(DQ_STAGES)
#error "KV_WARPS, KV_KEYS, KV_ROWS, KV_STAGES, DQ_WARPS, DQ_KEYS and DQ_STAGES must be defined by the host"
#endif
#if (KV_STAGES != 1 && KV_STAGES != 2) || (DQ_STAGES != 1 && DQ_STAGES != 2)
#error "KV_STAGES and DQ_STAGES are 1 or 2"
#endif
#if !defined(DQ_ATOMIC) || (DQ_ATOMIC != 0 && DQ_ATOMIC != 1)
#error "DQ_ATOMIC must be defined by the host, 0 or 1"
#endif

#define KV_WK (KV_KEYS / 16)     /* warps along the keys of a block */
#define KV_WD (KV_WARPS / KV_WK) /* warps along the query rows (step 1) and dims (step 2) */
#if KV_KEYS % 16 != 0 || KV_WARPS % KV_WK != 0 || KV_ROWS % 16 != 0 || KV_ROWS % KV_WD != 0 || \
    (KV_ROWS / KV_WD) % 8 != 0 || DQ_KEYS % 16 != 0
#error "unsupported attn_bwd_mma shape"
#endif
/* Head dims padded with zeros so that every warp's share of them is whole 16-dim steps. */
#define D_PAD (((HEAD_DIM + 16 * KV_WD - 1) / (16 * KV_WD)) * (16 * KV_WD))
#define K_STEPS (D_PAD / 16)
#define D_BLOCKS (D_PAD / 8)
/* Row pitch of the k, v, q and dout tiles in 16-bit elements: rows 16-byte aligned (as
 * ldmatrix needs) and the eight rows one ldmatrix reads on all 32 banks. */
#define PITCH (D_PAD + 8)
#define KV_ROWS_W (KV_ROWS / KV_WD)   /* query rows per warp in step 1 */
#define KV_NB (KV_ROWS_W / 8)         /* their 8-row blocks */
#define KV_DB (D_PAD / KV_WD / 8)     /* 8-dim blocks of dk and dv per warp in step 2 */
#define P_PITCH (KV_ROWS + 8)         /* row pitch of the P~^T and dS^T tiles */
#define DQ_ROWS (16 * DQ_WARPS)
#define DQ_NB (DQ_KEYS / 8)
#if MMA_EMULATE
#define KV_SCRATCH (KV_WARPS * MMA_SCRATCH_PER_WARP)
#define DQ_SCRATCH (DQ_WARPS * MMA_SCRATCH_PER_WARP)
#else
#define KV_SCRATCH 1
#define DQ_SCRATCH 1
#endif

/* Rows row0 .. row0 + n - 1 of x (16-bit, row stride x_ss) into a row-major tile; rows at
 * or past `end` and dims at or past HEAD_DIM are zeros, so that padding contributes
 * nothing to any product. The whole work-group (`group` work-items) takes part. With
 * VEC_LOADS as asynchronous copies (cp.async), which the caller commits and waits for;
 * else through registers. */
inline void stage_tile(__global const ushort *x, long x_ss, int row0, int n, int end,
                       __local ushort *tile, int group)
{
    for (int idx = get_local_id(0); idx < n * (D_PAD / 8); idx += group) {
        const int r = idx / (D_PAD / 8), c = (idx % (D_PAD / 8)) * 8;
#if VEC_LOADS
        /* HEAD_DIM % 8 == 0 here, so a piece is all inside the row or all past it */
        const bool in = row0 + r < end && c < HEAD_DIM;
        copy_async16(tile + r * PITCH + c, in ? x + (long)(row0 + r) * x_ss + c : x, in ? 16 : 0);
#else
        *(__local uint4 *)(tile + r * PITCH + c) =
            row0 + r < end ? load_row8(x + (long)(row0 + r) * x_ss, c) : (uint4)(0u);
#endif
    }
}

#ifndef GRAD_PAIRS
#define GRAD_PAIRS 0
#endif
/* GRAD_PAIRS (store_value_pair, warp_mma.cl): on the H200 pairs ran 1.02-1.06x at 1k keys
 * and 0.98-1.02x at 4k (run 69, docs/PERFORMANCE.md), less than the forward's gain: three
 * more products per stored value. */

/* Row tile row0 .. row0 + KV_ROWS - 1 (rows at or past `end` padded) of query head h:
 * q and dout into their tiles (asynchronous copies where rows are 16-byte aligned, which
 * the caller commits), lse * log2(e) (+inf for padding: P = 0 there) and D. */
inline void stage_row_tile(__global const storage_t *q, __global const storage_t *dout,
                           __global const float *lse, __global const float *delta,
                           const attn_params p, const bwd_params g, int b, const seq_extent e,
                           int h, int row0, int end, __local ushort *q_tile,
                           __local ushort *do_tile, __local float *lse2_tile,
                           __local float *delta_tile, int group)
{
    __global const ushort *q_seq = (__global const ushort *)(q + view_index(p.q_off, p.q_sb, p.q_ss, p.q_sh, b, e.q_start, h));
    __global const ushort *do_seq = (__global const ushort *)(dout + view_index(g.do_off, g.do_sb, g.do_ss, g.do_sh, b, e.q_start, h));
    stage_tile(q_seq, p.q_ss, row0, KV_ROWS, end, q_tile, group);
    stage_tile(do_seq, g.do_ss, row0, KV_ROWS, end, do_tile, group);
    for (int r = get_local_id(0); r < KV_ROWS; r += group) {
        const int row = e.q_start + row0 + r;
        const bool in = row0 + r < end;
        lse2_tile[r] = in ? lse[view_index(p.lse_off, p.lse_sb, p.lse_ss, p.lse_sh, b, row, h)] * LOG2E : INFINITY;
        delta_tile[r] = in ? delta[view_index(g.delta_off, g.delta_sb, g.delta_ss, g.delta_sh, b, row, h)] : 0.0f;
    }
}

#if DQ_ATOMIC
/* Step 3's work (DQ_ATOMIC): the row tile's dq is DQA_SLICES slices of 16 rows by
 * DQA_PAIRS pairs of 8-dim blocks. A unit is a slice, or a share of its pairs when there
 * are fewer slices than warps; each warp takes whole units (no two warps add to one
 * element within a step). */
#define DQA_SLICES (KV_ROWS / 16)
#define DQA_PAIRS (D_PAD / 16)
#define DQA_CHUNKS (KV_WARPS > DQA_SLICES ? KV_WARPS / DQA_SLICES : 1) /* units per slice */
#define DQA_CHUNK ((DQA_PAIRS + DQA_CHUNKS - 1) / DQA_CHUNKS)           /* pairs per unit */
#define DQA_UNITS (DQA_SLICES * DQA_CHUNKS)
#define DQA_ROUNDS ((DQA_UNITS + KV_WARPS - 1) / KV_WARPS)

/* The A operand (16 x 16: rows m, columns k) of dq += dS K for query rows m0 .. m0 + 15
 * and keys 16kk .. 16kk + 15, out of the dS^T tile (row-major, a row per key, `pitch`
 * 16-bit elements): one ldmatrix.trans on NVIDIA, as mma_value_fragments reads its
 * transposed operands. */
inline uint4 mma_a_fragment_trans(__local const ushort *tile, int pitch, int kk, int m0)
{
#if MMA_EMULATE
    /* a.x = (m g; k 2t, 2t+1), a.y = (m g+8; same k), a.z = (m g; k 2t+8, 2t+9), a.w = (m g+8; same) */
    const int g = warp_lane() >> 2, t = warp_lane() & 3;
    __local const ushort *col = tile + (16 * kk + 2 * t) * pitch + m0 + g;
    return (uint4)((uint)col[0] | ((uint)col[pitch] << 16),
                   (uint)col[8] | ((uint)col[pitch + 8] << 16),
                   (uint)col[8 * pitch] | ((uint)col[9 * pitch] << 16),
                   (uint)col[8 * pitch + 8] | ((uint)col[9 * pitch + 8] << 16));
#else
    /* matrix i = keys 16kk + 8(i / 2) .. + 7 (rows of the tile) x query rows m0 + 8(i & 1)
     * .. + 7, transposed */
    const int lane = warp_lane(), i = lane >> 3;
    return ldmatrix_x4_trans(tile + (16 * kk + 8 * (i >> 1) + (lane & 7)) * pitch + m0 + 8 * (i & 1));
#endif
}

/* One C fragment of dq (dims c, c + 1 of rows a and b) added into the accumulator, whose
 * rows start at acc[at_a] and acc[at_b]: padding rows (in_a, in_b false) and padding dims
 * (at or past HEAD_DIM) are left out. */
inline void dq_accumulate(__global float *acc, long at_a, long at_b, bool in_a, bool in_b, int c,
                          float4 x)
{
    if (in_a) {
        if (c < HEAD_DIM) atomic_add_global_f32(acc + at_a + c, x.x);
        if (c + 1 < HEAD_DIM) atomic_add_global_f32(acc + at_a + c + 1, x.y);
    }
    if (in_b) {
        if (c < HEAD_DIM) atomic_add_global_f32(acc + at_b + c, x.z);
        if (c + 1 < HEAD_DIM) atomic_add_global_f32(acc + at_b + c + 1, x.w);
    }
}

#endif

__kernel __attribute__((reqd_work_group_size(32 * KV_WARPS, 1, 1))) void attn_bwd_mma_dkdv(BWD_ARGS)
{
    __local ushort k_tile[KV_KEYS * PITCH] __attribute__((aligned(16)));
    __local ushort v_tile[KV_KEYS * PITCH] __attribute__((aligned(16)));
    /* q, dout, lse2 and D of a row tile, once per stage: with two, one step computes
     * with one while the next step's copies fill the other */
    __local ushort q_tiles[KV_STAGES * KV_ROWS * PITCH] __attribute__((aligned(16)));
    __local ushort do_tiles[KV_STAGES * KV_ROWS * PITCH] __attribute__((aligned(16)));
    __local ushort pt_tile[KV_KEYS * P_PITCH] __attribute__((aligned(16)));  /* P~^T */
    __local ushort dst_tile[KV_KEYS * P_PITCH] __attribute__((aligned(16))); /* dS^T */
    __local float lse2_tiles[KV_STAGES * KV_ROWS];
    __local float delta_tiles[KV_STAGES * KV_ROWS];
    __local float scratch[KV_SCRATCH];

    const int kv_head = get_group_id(1);
    const int b = get_group_id(2);
    const int group_size = 32 * KV_WARPS;
    const seq_extent e = sequence_extent(cu_q, cu_k, seqused, b, p);
    const int off = p.align_top_left ? 0 : e.sk - e.sq;
    const int key_rows = bwd_key_rows(cu_k, e, b, p);
    (void)o; (void)dq;
    const int wk = warp_index() % KV_WK, wd = warp_index() / KV_WK;
    const int lg = warp_lane() >> 2, lt = warp_lane() & 3; /* C rows lg, lg + 8; columns 2lt, 2lt + 1 */
    __global const ushort *k_seq = (__global const ushort *)(k + view_index(p.k_off, p.k_sb, p.k_ss, p.k_sh, b, e.k_start, kv_head));
    __global const ushort *v_seq = (__global const ushort *)(v + view_index(p.v_off, p.v_sb, p.v_ss, p.v_sh, b, e.k_start, kv_head));

    /* Key blocks stride by the grid (trusted varlen sums may describe more keys than
     * the launch planned for); the bounds are the group's, so every barrier and warp
     * operation is reached by all of its work-items. */
    for (int key0 = get_group_id(0) * KV_KEYS; key0 < key_rows; key0 += get_num_groups(0) * KV_KEYS) {
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous block's tiles are no longer read */
        stage_tile(k_seq, p.k_ss, key0, KV_KEYS, e.sk, k_tile, group_size);
        stage_tile(v_seq, p.v_ss, key0, KV_KEYS, e.sk, v_tile, group_size);
        /* This lane's keys: rows g and g + 8 of its warp's 16 (the C operand's rows). */
        const int ja = key0 + 16 * wk + lg, jb = ja + 8;
        float4 dk_acc[KV_DB], dv_acc[KV_DB];
MMA_UNROLL
        for (int db = 0; db < KV_DB; ++db) dk_acc[db] = dv_acc[db] = (float4)(0.0f);

        /* The steps: every row tile that can see the block, of every query head of the
         * GQA group (head-major); step n + 1's q and dout are copied while step n computes. */
        const int2 rows = key0 < e.sk ? bwd_rows_seeing(key0, min(key0 + KV_KEYS, e.sk) - 1, off, e.sq, p)
                                      : (int2)(0, 0);
        const int row_tiles = (rows.y - rows.x + KV_ROWS - 1) / KV_ROWS;
        const int steps = row_tiles * p.group;
        if (steps > 0)
            stage_row_tile(q, dout, lse, delta, p, g, b, e, kv_head * p.group, rows.x, rows.y,
                           q_tiles, do_tiles, lse2_tiles, delta_tiles, group_size);
        async_commit(); /* with k and v: the first step waits for both */
        for (int step = 0; step < steps; ++step) {
            const int h = kv_head * p.group + step / row_tiles;
            const int row0 = rows.x + (step % row_tiles) * KV_ROWS;
#if KV_STAGES == 2
            const int buf = step & 1;
            if (step + 1 < steps) {
                const int next = step + 1;
                stage_row_tile(q, dout, lse, delta, p, g, b, e, kv_head * p.group + next / row_tiles,
                               rows.x + (next % row_tiles) * KV_ROWS, rows.y,
                               q_tiles + (buf ^ 1) * KV_ROWS * PITCH, do_tiles + (buf ^ 1) * KV_ROWS * PITCH,
                               lse2_tiles + (buf ^ 1) * KV_ROWS, delta_tiles + (buf ^ 1) * KV_ROWS, group_size);
            }
            async_commit();
            ASYNC_WAIT(1);                /* this work-item's copies of this step have landed */
#else
            const int buf = 0;
            if (step > 0) /* step 0 is in flight already; the others follow the previous step */
                stage_row_tile(q, dout, lse, delta, p, g, b, e, h, row0, rows.y, q_tiles, do_tiles,
                               lse2_tiles, delta_tiles, group_size);
            async_commit();
            ASYNC_WAIT(0);
#endif
            barrier(CLK_LOCAL_MEM_FENCE); /* ... and everyone's */
            const float slope = alibi_slope(alibi, p, b, h);
            __local const ushort *q_tile = q_tiles + buf * KV_ROWS * PITCH;
            __local const ushort *do_tile = do_tiles + buf * KV_ROWS * PITCH;
            __local const float *lse2_tile = lse2_tiles + buf * KV_ROWS;
            __local const float *delta_tile = delta_tiles + buf * KV_ROWS;
            /* Step 1: s = S^T and dp = dP^T for the warp's 16 keys (rows of C) and
             * its KV_ROWS_W query rows (columns of C). The dq kernel's S and dP loop is
             * the same with the operands swapped; a shared helper taking s and dp by
             * pointer put them on the stack (clang's PTX: 124 local loads), so each
             * kernel keeps its own copy. */
            __local const ushort *kt = k_tile + 16 * wk * PITCH, *vt = v_tile + 16 * wk * PITCH;
            __local const ushort *qt = q_tile + wd * KV_ROWS_W * PITCH;
            __local const ushort *ot = do_tile + wd * KV_ROWS_W * PITCH;
            float4 s[KV_NB], dp[KV_NB];
MMA_UNROLL
            for (int nb = 0; nb < KV_NB; ++nb) s[nb] = dp[nb] = (float4)(0.0f);
MMA_UNROLL
            for (int ks = 0; ks < K_STEPS; ks += 2) {
                const bool two = ks + 1 < K_STEPS;
                uint4 ka[2], va[2];
                ka[0] = mma_a_fragment(kt, PITCH, ks);
                va[0] = mma_a_fragment(vt, PITCH, ks);
                if (two) {
                    ka[1] = mma_a_fragment(kt, PITCH, ks + 1);
                    va[1] = mma_a_fragment(vt, PITCH, ks + 1);
                }
MMA_UNROLL
                for (int nb = 0; nb < KV_NB; ++nb) {
                    uint2 qb[2], ob[2];
                    mma_key_fragments(qt, PITCH, nb, ks, two, qb);
                    mma_key_fragments(ot, PITCH, nb, ks, two, ob);
                    s[nb] = warp_mma(s[nb], ka[0], qb[0], scratch);
                    dp[nb] = warp_mma(dp[nb], va[0], ob[0], scratch);
                    if (two) {
                        s[nb] = warp_mma(s[nb], ka[1], qb[1], scratch);
                        dp[nb] = warp_mma(dp[nb], va[1], ob[1], scratch);
                    }
                }
            }
            /* Entries (key ja or jb, row i0 or i0 + 1) to P~^T and dS^T in local
             * memory. The tile is whole when every row sees every key of the block
             * (the visible range grows with the row; padding rows have P = 0). */
            const bool whole = key0 + KV_KEYS <= e.sk &&
                               visible_lo(row0 + KV_ROWS - 1 + off, p.window_left, e.sk) <= key0 &&
                               visible_end(row0 + off, p.window_right, e.sk) >= key0 + KV_KEYS;
MMA_UNROLL
            for (int nb = 0; nb < KV_NB; ++nb) {
                const int r0 = wd * KV_ROWS_W + 8 * nb + 2 * lt;
                const float l0 = lse2_tile[r0], l1 = lse2_tile[r0 + 1];
                const float d0 = delta_tile[r0], d1 = delta_tile[r0 + 1];
                uint pa, pb, da, db2;
                if (whole)
                    dkdv_entries(s[nb], dp[nb], l0, l1, d0, d1, row0 + r0, ja, jb, off, e.sk,
                                 slope, b, h, p, false, &pa, &pb, &da, &db2);
                else
                    dkdv_entries(s[nb], dp[nb], l0, l1, d0, d1, row0 + r0, ja, jb, off, e.sk,
                                 slope, b, h, p, true, &pa, &pb, &da, &db2);
                __local ushort *pt_row = pt_tile + (16 * wk + lg) * P_PITCH + r0;
                __local ushort *ds_row = dst_tile + (16 * wk + lg) * P_PITCH + r0;
                *(__local uint *)pt_row = pa;
                *(__local uint *)(pt_row + 8 * P_PITCH) = pb;
                *(__local uint *)ds_row = da;
                *(__local uint *)(ds_row + 8 * P_PITCH) = db2;
            }
            barrier(CLK_LOCAL_MEM_FENCE); /* every warp's P~^T and dS^T are in place */

            /* Step 2: dv += P~^T dO and dk += dS^T Q over the tile's rows, for the
             * warp's 16 keys and dims 8 * (wd * KV_DB) onwards. */
            __local const ushort *pt = pt_tile + 16 * wk * P_PITCH, *dst = dst_tile + 16 * wk * P_PITCH;
MMA_UNROLL
            for (int kk = 0; kk < KV_ROWS / 16; ++kk) {
                const uint4 pa = mma_a_fragment(pt, P_PITCH, kk);
                const uint4 da = mma_a_fragment(dst, P_PITCH, kk);
MMA_UNROLL
                for (int db = 0; db < KV_DB; db += 2) { /* KV_DB is even */
                    uint2 ob[2], qb[2];
                    mma_value_fragments(do_tile + kk * 16 * PITCH, PITCH, wd * KV_DB + db, ob);
                    mma_value_fragments(q_tile + kk * 16 * PITCH, PITCH, wd * KV_DB + db, qb);
                    dv_acc[db] = warp_mma(dv_acc[db], pa, ob[0], scratch);
                    dv_acc[db + 1] = warp_mma(dv_acc[db + 1], pa, ob[1], scratch);
                    dk_acc[db] = warp_mma(dk_acc[db], da, qb[0], scratch);
                    dk_acc[db + 1] = warp_mma(dk_acc[db + 1], da, qb[1], scratch);
                }
            }
#if DQ_ATOMIC
            /* Step 3: dq += dS K for the tile's rows (those before rows.y) and the block's
             * keys, added into the accumulator (the HEAD_DIM floats before each D in the
             * workspace). A pass of its own rather than a part of step 2: step 2 gives
             * each warp 16 keys (its rows of dk and dv), while dq sums over all the
             * block's keys, so here each warp owns whole output units (DQA_*), reading dS
             * through ldmatrix.trans from the dS^T tile and K as attn_bwd_mma_dq does. A
             * lane keeps KV_KEYS / 16 A fragments and two C fragments beside dk's and
             * dv's accumulators (the kernel is at ~255 registers on the H200; S^T and
             * dP^T are dead by now). Written out here like steps 1 and 2: a helper this
             * large is not inlined, and OpenCL C's `inline` then leaves a call to a
             * function that is never defined. */
MMA_UNROLL
            for (int round = 0; round < DQA_ROUNDS; ++round) {
                /* A warp without a unit (more warps than units) computes the first one's
                 * products and adds nothing: under emulation every warp must reach
                 * every warp_mma. */
                const int unit = round * KV_WARPS + warp_index();
                const bool active = unit < DQA_UNITS;
                const int slice = active ? unit / DQA_CHUNKS : 0;
                const int pair0 = active ? unit % DQA_CHUNKS * DQA_CHUNK : 0;
                uint4 ds[KV_KEYS / 16];
MMA_UNROLL
                for (int kk = 0; kk < KV_KEYS / 16; ++kk)
                    ds[kk] = mma_a_fragment_trans(dst_tile, P_PITCH, kk, 16 * slice);
                const int ra = row0 + 16 * slice + lg, rb = ra + 8;
                const bool in_a = active && ra < rows.y, in_b = active && rb < rows.y;
                const long at_a = view_index(g.delta_off, g.delta_sb, g.delta_ss, g.delta_sh, b,
                                             e.q_start + ra, h) - DQ_ACC_BACK;
                const long at_b = view_index(g.delta_off, g.delta_sb, g.delta_ss, g.delta_sh, b,
                                             e.q_start + rb, h) - DQ_ACC_BACK;
MMA_UNROLL
                for (int pp = 0; pp < DQA_CHUNK; ++pp) {
                    /* a pair past the last (uneven shares) is computed again, not added */
                    const bool in = pair0 + pp < DQA_PAIRS;
                    const int pair = min(pair0 + pp, DQA_PAIRS - 1);
                    float4 c0 = (float4)(0.0f), c1 = (float4)(0.0f);
MMA_UNROLL
                    for (int kk = 0; kk < KV_KEYS / 16; ++kk) {
                        uint2 kb[2];
                        mma_value_fragments(k_tile + kk * 16 * PITCH, PITCH, 2 * pair, kb);
                        c0 = warp_mma(c0, ds[kk], kb[0], scratch);
                        c1 = warp_mma(c1, ds[kk], kb[1], scratch);
                    }
                    dq_accumulate(delta, at_a, at_b, in && in_a, in && in_b, 16 * pair + 2 * lt, c0);
                    dq_accumulate(delta, at_a, at_b, in && in_a, in && in_b, 16 * pair + 8 + 2 * lt, c1);
                }
            }
#endif
            /* every warp is done with this step's tiles and with P~^T and dS^T: the next
             * step refills them */
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        ASYNC_WAIT(0); /* no copy still lands in k_tile or v_tile when the next block stages them */
        /* Keys no row sees (and keys past seqused_k) get dk = dv = 0. */
        const long dk_a = view_index(g.dk_off, g.dk_sb, g.dk_ss, g.dk_sh, b, e.k_start + ja, kv_head);
        const long dk_b = view_index(g.dk_off, g.dk_sb, g.dk_ss, g.dk_sh, b, e.k_start + jb, kv_head);
        const long dv_a = view_index(g.dv_off, g.dv_sb, g.dv_ss, g.dv_sh, b, e.k_start + ja, kv_head);
        const long dv_b = view_index(g.dv_off, g.dv_sb, g.dv_ss, g.dv_sh, b, e.k_start + jb, kv_head);
MMA_UNROLL
        for (int db = 0; db < KV_DB; ++db) {
            const int c = 8 * (wd * KV_DB + db) + 2 * lt;
            if (ja < key_rows) {
                store_value_pair(dk, dk_a, c, dk_acc[db].x * p.scale, dk_acc[db].y * p.scale, GRAD_PAIRS);
                store_value_pair(dv, dv_a, c, dv_acc[db].x, dv_acc[db].y, GRAD_PAIRS);
            }
            if (jb < key_rows) {
                store_value_pair(dk, dk_b, c, dk_acc[db].z * p.scale, dk_acc[db].w * p.scale, GRAD_PAIRS);
                store_value_pair(dv, dv_b, c, dv_acc[db].z, dv_acc[db].w, GRAD_PAIRS);
            }
        }
    }
}

#if !DQ_ATOMIC
__kernel __attribute__((reqd_work_group_size(32 * DQ_WARPS, 1, 1))) void attn_bwd_mma_dq(BWD_ARGS)
{
    __local ushort q_tile[DQ_ROWS * PITCH] __attribute__((aligned(16)));
    __local ushort do_tile[DQ_ROWS * PITCH] __attribute__((aligned(16)));
    /* k and v of a key tile, once per stage: with two, one tile is computed with while
     * the next is copied */
    __local ushort k_tiles[DQ_STAGES * DQ_KEYS * PITCH] __attribute__((aligned(16)));
    __local ushort v_tiles[DQ_STAGES * DQ_KEYS * PITCH] __attribute__((aligned(16)));
    __local float scratch[DQ_SCRATCH];

    const int h = get_group_id(1);
    const int b = get_group_id(2);
    const int group_size = 32 * DQ_WARPS;
    const seq_extent e = sequence_extent(cu_q, cu_k, seqused, b, p);
    const int off = p.align_top_left ? 0 : e.sk - e.sq;
    const int kv_head = h / p.group;
    (void)o; (void)dk; (void)dv;
    const int lg = warp_lane() >> 2, lt = warp_lane() & 3; /* C rows lg, lg + 8; columns 2lt, 2lt + 1 */
    const float slope = alibi_slope(alibi, p, b, h);
    __global const ushort *q_seq = (__global const ushort *)(q + view_index(p.q_off, p.q_sb, p.q_ss, p.q_sh, b, e.q_start, h));
    __global const ushort *do_seq = (__global const ushort *)(dout + view_index(g.do_off, g.do_sb, g.do_ss, g.do_sh, b, e.q_start, h));
    __global const ushort *k_seq = (__global const ushort *)(k + view_index(p.k_off, p.k_sb, p.k_ss, p.k_sh, b, e.k_start, kv_head));
    __global const ushort *v_seq = (__global const ushort *)(v + view_index(p.v_off, p.v_sb, p.v_ss, p.v_sh, b, e.k_start, kv_head));
    __local const ushort *qt = q_tile + 16 * warp_index() * PITCH;
    __local const ushort *ot = do_tile + 16 * warp_index() * PITCH;

    for (int row0 = first_row_block() * DQ_ROWS; row0 < e.sq; row0 += get_num_groups(0) * DQ_ROWS) {
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous rows' tiles are no longer read */
        stage_tile(q_seq, p.q_ss, row0, DQ_ROWS, e.sq, q_tile, group_size);
        stage_tile(do_seq, g.do_ss, row0, DQ_ROWS, e.sq, do_tile, group_size);
        /* This lane's rows: g and g + 8 of its warp's 16 (a: x, y; b: z, w). */
        const int ra = row0 + 16 * warp_index() + lg, rb = ra + 8;
        const dq_row row_a = dq_row_of(lse, delta, p, g, b, e, h, ra, off);
        const dq_row row_b = dq_row_of(lse, delta, p, g, b, e, h, rb, off);
        /* The keys every row of this warp sees (from its last row's first to its first
         * row's last; rows past the end have P = 0 anyway). */
        const int warp_row0 = row0 + 16 * warp_index();
        const int whole_lo = visible_lo(warp_row0 + 15 + off, p.window_left, e.sk);
        const int whole_end = visible_end(warp_row0 + off, p.window_right, e.sk);
        /* Keys some row of the group sees: the same for all work-items. */
        const int block_lo = visible_lo(row0 + off, p.window_left, e.sk);
        const int block_end = visible_end(min(row0 + DQ_ROWS, e.sq) - 1 + off, p.window_right, e.sk);

        float4 acc[D_BLOCKS];
MMA_UNROLL
        for (int db = 0; db < D_BLOCKS; ++db) acc[db] = (float4)(0.0f);
        const int key_tiles = block_end > block_lo ? (block_end - block_lo + DQ_KEYS - 1) / DQ_KEYS : 0;
        if (key_tiles > 0) {
            stage_tile(k_seq, p.k_ss, block_lo, DQ_KEYS, block_end, k_tiles, group_size);
            stage_tile(v_seq, p.v_ss, block_lo, DQ_KEYS, block_end, v_tiles, group_size);
        }
        async_commit(); /* with q and dout: the first tile waits for all four */
        for (int kt = 0; kt < key_tiles; ++kt) {
            const int tile0 = block_lo + kt * DQ_KEYS;
#if DQ_STAGES == 2
            const int buf = kt & 1;
            if (kt + 1 < key_tiles) { /* the next tile's copies fly while this one computes */
                stage_tile(k_seq, p.k_ss, tile0 + DQ_KEYS, DQ_KEYS, block_end,
                           k_tiles + (buf ^ 1) * DQ_KEYS * PITCH, group_size);
                stage_tile(v_seq, p.v_ss, tile0 + DQ_KEYS, DQ_KEYS, block_end,
                           v_tiles + (buf ^ 1) * DQ_KEYS * PITCH, group_size);
            }
            async_commit();
            ASYNC_WAIT(1);                /* this work-item's copies of this tile have landed */
#else
            const int buf = 0;
            if (kt > 0) { /* tile 0 is in flight already; the others follow the previous tile */
                stage_tile(k_seq, p.k_ss, tile0, DQ_KEYS, block_end, k_tiles, group_size);
                stage_tile(v_seq, p.v_ss, tile0, DQ_KEYS, block_end, v_tiles, group_size);
            }
            async_commit();
            ASYNC_WAIT(0);
#endif
            barrier(CLK_LOCAL_MEM_FENCE); /* ... and everyone's */
            __local const ushort *k_tile = k_tiles + buf * DQ_KEYS * PITCH;
            __local const ushort *v_tile = v_tiles + buf * DQ_KEYS * PITCH;

            /* s = S and dp = dP for the warp's 16 rows and the tile's keys. */
            float4 s[DQ_NB], dp[DQ_NB];
MMA_UNROLL
            for (int nb = 0; nb < DQ_NB; ++nb) s[nb] = dp[nb] = (float4)(0.0f);
MMA_UNROLL
            for (int ks = 0; ks < K_STEPS; ks += 2) {
                const bool two = ks + 1 < K_STEPS;
                uint4 qa[2], oa[2];
                qa[0] = mma_a_fragment(qt, PITCH, ks);
                oa[0] = mma_a_fragment(ot, PITCH, ks);
                if (two) {
                    qa[1] = mma_a_fragment(qt, PITCH, ks + 1);
                    oa[1] = mma_a_fragment(ot, PITCH, ks + 1);
                }
MMA_UNROLL
                for (int nb = 0; nb < DQ_NB; ++nb) {
                    uint2 kb[2], vb[2];
                    mma_key_fragments(k_tile, PITCH, nb, ks, two, kb);
                    mma_key_fragments(v_tile, PITCH, nb, ks, two, vb);
                    s[nb] = warp_mma(s[nb], qa[0], kb[0], scratch);
                    dp[nb] = warp_mma(dp[nb], oa[0], vb[0], scratch);
                    if (two) {
                        s[nb] = warp_mma(s[nb], qa[1], kb[1], scratch);
                        dp[nb] = warp_mma(dp[nb], oa[1], vb[1], scratch);
                    }
                }
            }
            /* dS in place of s (rows a, b; keys j0, j0 + 1); no visibility test where
             * every row of the warp sees every key of the tile. */
            const bool whole = tile0 >= whole_lo && tile0 + DQ_KEYS <= whole_end;
MMA_UNROLL
            for (int nb = 0; nb < DQ_NB; ++nb) {
                const int j0 = tile0 + 8 * nb + 2 * lt;
                if (whole)
                    s[nb] = dq_entries(s[nb], dp[nb], row_a.lse2, row_b.lse2, row_a.delta, row_b.delta, ra, rb, j0, row_a.lo,
                                       row_a.end, row_b.lo, row_b.end, off, slope, b, h, p, false);
                else
                    s[nb] = dq_entries(s[nb], dp[nb], row_a.lse2, row_b.lse2, row_a.delta, row_b.delta, ra, rb, j0, row_a.lo,
                                       row_a.end, row_b.lo, row_b.end, off, slope, b, h, p, true);
            }
            /* dq += dS K: two adjacent key blocks of dS form one A operand (16 keys). */
MMA_UNROLL
            for (int kk = 0; kk < DQ_KEYS / 16; ++kk) {
                const float4 s0 = s[2 * kk], s1 = s[2 * kk + 1];
                const uint4 a = (uint4)(pack_pair(s0.x, s0.y), pack_pair(s0.z, s0.w),
                                        pack_pair(s1.x, s1.y), pack_pair(s1.z, s1.w));
MMA_UNROLL
                for (int db = 0; db < D_BLOCKS; db += 2) { /* D_BLOCKS is even */
                    uint2 kb[2];
                    mma_value_fragments(k_tile + kk * 16 * PITCH, PITCH, db, kb);
                    acc[db] = warp_mma(acc[db], a, kb[0], scratch);
                    acc[db + 1] = warp_mma(acc[db + 1], a, kb[1], scratch);
                }
            }
            barrier(CLK_LOCAL_MEM_FENCE); /* every warp is done with this tile's buffer */
        }
        ASYNC_WAIT(0); /* no copy still lands in the tiles when the next row block stages them */
        /* A row that sees no key gets dq = 0. */
        const long dq_a = view_index(g.dq_off, g.dq_sb, g.dq_ss, g.dq_sh, b, e.q_start + ra, h);
        const long dq_b = view_index(g.dq_off, g.dq_sb, g.dq_ss, g.dq_sh, b, e.q_start + rb, h);
MMA_UNROLL
        for (int db = 0; db < D_BLOCKS; ++db) {
            const int c = 8 * db + 2 * lt;
            if (ra < e.sq) store_value_pair(dq, dq_a, c, acc[db].x * p.scale, acc[db].y * p.scale, GRAD_PAIRS);
            if (rb < e.sq) store_value_pair(dq, dq_b, c, acc[db].z * p.scale, acc[db].w * p.scale, GRAD_PAIRS);
        }
    }
}
#endif
