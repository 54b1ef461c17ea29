/* Backward attention on Hopper's warpgroup products (wgmma, sm_90a; warpgroup_mma.cl):
 * the math, the deterministic order and the two kernels of attn_bwd_mma.cl, with each
 * product a warpgroup-wide wgmma whose operands the tensor cores read from local memory
 * (descriptors) or, for the second products, from registers. attn_bwd_dot
 * (bwd_common.cl) writes D first; then
 *
 *   attn_bwd_wgmma_dkdv  one work-group per (block of 64 * WARPGROUPS keys, kv head,
 *       sequence); warpgroup w owns keys 64w .. 64w + 63 of the block, whose k and v
 *       stay in local memory for the whole call. For each query head of the GQA group
 *       and each tile of 64 query rows that can see the block (head-major, ascending),
 *       the group stages q, dout, lse and D (two buffers: the next tile's copies and
 *       loads fly while this one computes), and each warpgroup
 *         1. computes S^T = K Q^T and dP^T = V dO^T (64 keys x 64 rows each; both
 *            operands from local memory, K-major),
 *         2. turns them into P~^T and dS^T in registers (bwd_mma_entries.cl, rounded to
 *            the storage type), whose C layout is the A layout of the next products,
 *         3. adds P~^T dO to dv and dS^T Q to dk (dout and q MN-major from local memory).
 *   attn_bwd_wgmma_dq  one work-group per (block of 64 * WARPGROUPS query rows, query
 *       head, sequence); warpgroup w owns rows 64w .. 64w + 63. q and dout stay in local
 *       memory; for each tile of 64 keys that some row of the block sees (ascending,
 *       two buffers), each warpgroup computes S = Q K^T and dP = dO V^T, dS in
 *       registers, and adds dS K to dq (k MN-major).
 *
 * Nothing is summed with atomics: every dk, dv and dq element has one writer and a fixed
 * order of additions, so the gradients are the same on every run.
 *
 * With DQ_ATOMIC=1 (opts->deterministic = 0) dq comes from the dk/dv kernel instead, as
 * in attn_bwd_mma.cl's atomic mode: after step 3 each warpgroup
 *         4. writes its dS^T into a local tile that holds dS for the row tile and the
 *            whole block's keys, and after a barrier takes its share of dq's 64-column
 *            chunks: dS K over the block's keys (dS K-major, k MN-major, both from local
 *            memory), staged in local memory and added by the whole group into the fp32
 *            accumulator in the workspace, consecutive work-items along a row, 16
 *            bytes each (red.global.add.v4.f32) where the rows are 16-byte aligned;
 * attn_bwd_mma_dq_store (bwd_mma_entries.cl) then writes dq. Five products instead of
 * seven; dq's sums over key blocks come in no fixed order, dk and dv stay deterministic.
 * attn_bwd_wgmma_dq is not compiled in that mode.
 *
 * Tiles are in the descriptors' interleaved layout (wg_tile_index over D_PAD columns),
 * filled 16 bytes at a time by cp.async (VEC_LOADS: every row 16-byte aligned) or through
 * registers; padding rows and columns are zeros. Each product batch is fenced,
 * committed and waited for before its accumulators are read (warpgroup_mma.cl).
 *
 * Specialised by the host with -D: FACL_DTYPE (1 or 2), HEAD_DIM (up to 128: above it
 * dk's and dv's accumulators do not fit a work-item's registers beside the scores, and
 * attn_bwd_mma serves), attn_common.cl's switches, FACL_BWD_PARAMS_SIZE, WARPGROUPS (1
 * or 2), VEC_LOADS, MMA_EMULATE (warp_mma.cl), DQ_ATOMIC (0 or 1, above), GRAD_PAIRS
 * (32-bit stores of gradient pairs where every gradient row is 16-byte aligned) and
 * FACL_SM90A (the host's sm_90a rebuild, programs.c).
 */
#ifndef HEAD_DIM
#error "HEAD_DIM must be defined by the host"
#endif
#if HEAD_DIM > 128
#error "attn_bwd_wgmma covers head_dim up to 128"
#endif
#if !defined(WARPGROUPS) || (WARPGROUPS != 1 && WARPGROUPS != 2)
#error "WARPGROUPS must be defined by the host, 1 or 2"
#endif
#ifndef GRAD_PAIRS
#define GRAD_PAIRS 0
#endif
#if !defined(DQ_ATOMIC) || (DQ_ATOMIC != 0 && DQ_ATOMIC != 1)
#error "DQ_ATOMIC must be defined by the host, 0 or 1"
#endif

#define GROUP_SIZE (128 * WARPGROUPS)
#define BLOCK (64 * WARPGROUPS)                 /* keys (dk/dv) or rows (dq) of a group */
#define D_PAD (((HEAD_DIM + 63) / 64) * 64)     /* whole 64-column accumulator chunks */
#define K_STEPS (D_PAD / 16)                    /* 16-dim steps of S and dP */
#define CHUNKS (D_PAD / 64)                     /* 64-column chunks of dk, dv and dq */
#define TILE_AT(n, c) wg_tile_index(n, c, D_PAD)
/* S's probabilities are computed while dP is still in the tensor cores (two commit
 * groups, the first awaited alone): at head dim 64, 1.00-1.05x on the H200 (run 154,
 * docs/PERFORMANCE.md). At 128 it took the dk/dv kernel from 226-240 registers to up to
 * 255, some variants spilling, and ran 0.95-0.99x, so there (and with a softcap, whose
 * derivative needs the raw score) S and dP are awaited together. */
#define SPLIT_WAIT (!HAS_SOFTCAP && D_PAD == 64)
#define ROW_TILE_ELEMS (64 * D_PAD)             /* a 64-row tile */
#if DQ_ATOMIC
#define DS_KEY_STEPS (BLOCK / 16)                          /* 16-key steps of dq += dS K */
#define DQ_ROUNDS ((CHUNKS + WARPGROUPS - 1) / WARPGROUPS) /* dq chunks per warpgroup */
#define DQ_PITCH (64 + 8) /* floats per staged dq row: 16-byte aligned rows, 8 banks apart */
#endif
#if MMA_EMULATE
#define SCRATCH_FLOATS ((GROUP_SIZE / 32) * MMA_SCRATCH_PER_WARP)
#else
#define SCRATCH_FLOATS 1
#endif

/* Rows row0 .. row0 + rows - 1 of x (16-bit, row stride x_ss; `rows` a multiple of 8)
 * into a tile; rows at or past `end` and columns at or past HEAD_DIM are zeros, so that
 * padding adds nothing to any product. Eight neighbouring work-items fill one 128-byte
 * core matrix (8 rows of one 16-byte column piece): no two on the same banks. With
 * VEC_LOADS asynchronous copies, which the caller commits and waits for. */
inline void wg_stage_rows(__global const ushort *x, long x_ss, int row0, int rows, int end,
                          __local ushort *tile)
{
#define PIECES (D_PAD / 8)
    for (int idx = get_local_id(0); idx < rows * PIECES; idx += GROUP_SIZE) {
        const int n = (idx & 7) + 8 * ((idx >> 3) / PIECES), c = ((idx >> 3) % PIECES) * 8;
        const bool in = row0 + n < end;
        __global const ushort *row = x + (long)(row0 + n) * x_ss;
#if VEC_LOADS
        /* HEAD_DIM % 8 == 0 here: a piece is all inside the row or all past it */
        const bool any = in && c < HEAD_DIM;
        copy_async16(tile + TILE_AT(n, c), any ? row + c : x, any ? 16 : 0);
#else
        *(__local uint4 *)(tile + TILE_AT(n, c)) = in ? load_row8(row, c) : (uint4)(0u);
#endif
    }
#undef PIECES
}

/* This work-item's copies have landed (cp.async) and are visible to the tensor cores'
 * reads; the caller's barrier then makes everyone's so. */
inline void wg_tiles_landed(void)
{
    ASYNC_WAIT(0);
    wg_proxy_fence();
}

/* The A operands of a second product (four 16-row steps over the first product's 64
 * columns) from an accumulator's 8-column blocks packed two values to a word: the C
 * layout of blocks 2kk and 2kk + 1 is the A layout of step kk. lo[nb] holds row g's
 * pair of block nb, hi[nb] row g + 8's. */
inline __attribute__((always_inline)) void wg_pack_a(const uint *lo, const uint *hi, uint4 *a)
{
MMA_UNROLL
    for (int kk = 0; kk < 4; ++kk) a[kk] = (uint4)(lo[2 * kk], hi[2 * kk], lo[2 * kk + 1], hi[2 * kk + 1]);
}

/* Issue c += A B over the 16-dim steps of two K-major tiles (A: 64 rows of `a`, B: 64
 * rows of `b`), after the caller's fence. */
inline __attribute__((always_inline)) void wg_issue_kmajor(float4 *c, __local const ushort *a,
                                                           __local const ushort *b, __local float *scratch)
{
MMA_UNROLL
    for (int ks = 0; ks < K_STEPS; ++ks)
        wg_mma_ss(c, a + TILE_AT(0, 16 * ks), WG_KMAJOR_LBO(D_PAD), WG_KMAJOR_SBO(D_PAD),
                  b + TILE_AT(0, 16 * ks), WG_KMAJOR_LBO(D_PAD), WG_KMAJOR_SBO(D_PAD), scratch);
}

/* Issue acc += A X for the four 16-row steps of A (registers) and x's rows as the
 * MN-major operand, every 64-column chunk, after the caller's fence. */
inline __attribute__((always_inline)) void wg_issue_mnmajor(float4 *acc, const uint4 *a,
                                                            __local const ushort *x, __local float *scratch)
{
MMA_UNROLL
    for (int ch = 0; ch < CHUNKS; ++ch)
MMA_UNROLL
        for (int kk = 0; kk < 4; ++kk)
            wg_mma_rs_mnmajor(acc + 8 * ch, a[kk], x + TILE_AT(16 * kk, 64 * ch),
                              WG_MNMAJOR_LBO(D_PAD), WG_MNMAJOR_SBO(D_PAD), scratch);
}

/* Ties the chunks of an accumulator from `first` on to the fence or wait next to it
 * (the fence or wait itself ties the one it names). */
inline __attribute__((always_inline)) void wg_hold_chunks(float4 *acc, int first)
{
MMA_UNROLL
    for (int ch = first; ch < CHUNKS; ++ch) wg_hold(acc + 8 * ch);
}

inline __attribute__((always_inline)) void wg_hold_operands(uint4 *a)
{
MMA_UNROLL
    for (int kk = 0; kk < 4; ++kk) wg_hold_a(&a[kk]);
}

/* Stores a lane's two rows (a: x, y; b: z, w) of a gradient accumulator, times `scale`,
 * through the gradient's view (row starts at_a, at_b); a row whose in_a / in_b is false
 * (past the sequence's keys or rows) is not written. */
inline void store_grad_rows(__global storage_t *x, long at_a, long at_b, bool in_a, bool in_b,
                            const float4 *acc, float scale)
{
    const int lt = warp_lane() & 3;
MMA_UNROLL
    for (int i = 0; i < 8 * CHUNKS; ++i) {
        const int c = 8 * i + 2 * lt; /* chunk i / 8, block i % 8 */
        if (in_a) store_value_pair(x, at_a, c, acc[i].x * scale, acc[i].y * scale, GRAD_PAIRS);
        if (in_b) store_value_pair(x, at_b, c, acc[i].z * scale, acc[i].w * scale, GRAD_PAIRS);
    }
}

/* Row tile row0 .. row0 + 63 (rows at or past `end` padded) of query head h: q and
 * dout into their tiles (the caller commits). */
inline void wg_stage_row_tile(__global const storage_t *q, __global const storage_t *dout,
                              const attn_params p, const bwd_params g, int b, const seq_extent e,
                              int h, int row0, int end, __local ushort *q_tile, __local ushort *do_tile)
{
    __global const ushort *q_seq = (__global const ushort *)(q + view_index(p.q_off, p.q_sb, p.q_ss, p.q_sh, b, e.q_start, h));
    __global const ushort *do_seq = (__global const ushort *)(dout + view_index(g.do_off, g.do_sb, g.do_ss, g.do_sh, b, e.q_start, h));
    wg_stage_rows(q_seq, p.q_ss, row0, 64, end, q_tile);
    wg_stage_rows(do_seq, g.do_ss, row0, 64, end, do_tile);
}

/* The same tile's lse * log2(e) (+inf for padding: P = 0 there) and D, row
 * get_local_id(0) of it (work-items 0..63), read into registers: loaded a step ahead
 * and stored into the local tiles at the step's end (wg_store_row_stats), so that no
 * work-item waits for global memory between its products. */
inline float2 wg_load_row_stats(__global const float *lse, __global const float *delta,
                                const attn_params p, const bwd_params g, int b, const seq_extent e,
                                int h, int row0, int end)
{
    const int r = get_local_id(0);
    if (r >= 64 || row0 + r >= end) return (float2)(INFINITY, 0.0f);
    const int row = e.q_start + row0 + r;
    return (float2)(lse[view_index(p.lse_off, p.lse_sb, p.lse_ss, p.lse_sh, b, row, h)] * LOG2E,
                    delta[view_index(g.delta_off, g.delta_sb, g.delta_ss, g.delta_sh, b, row, h)]);
}

inline void wg_store_row_stats(float2 stats, __local float *lse2_tile, __local float *delta_tile)
{
    const int r = get_local_id(0);
    if (r < 64) {
        lse2_tile[r] = stats.x;
        delta_tile[r] = stats.y;
    }
}

#if DQ_ATOMIC
/* dS^T of this lane's two keys (local indices ka, ka + 8 of the block) and the tile's
 * rows 8nb + 2lt, + 1 into the block's dS tile (rows x BLOCK keys, K-major for dq += dS K),
 * then made visible to the tensor cores (the caller's barrier: to everyone's). Read from
 * the packed A operands of dk += dS^T Q (wg_pack_a: a[kk] holds blocks 2kk and 2kk + 1),
 * which the tensor cores may still be reading: no second copy of them stays live. */
inline void wg_store_ds(const uint4 *a, int ka, __local ushort *ds_tile)
{
    const int lt = warp_lane() & 3;
MMA_UNROLL
    for (int nb = 0; nb < 8; ++nb) {
        const int r0 = 8 * nb + 2 * lt;
        const uint lo = nb & 1 ? a[nb >> 1].z : a[nb >> 1].x, hi = nb & 1 ? a[nb >> 1].w : a[nb >> 1].y;
        ds_tile[wg_tile_index(r0, ka, BLOCK)] = (ushort)(lo & 0xFFFFu);
        ds_tile[wg_tile_index(r0 + 1, ka, BLOCK)] = (ushort)(lo >> 16);
        ds_tile[wg_tile_index(r0, ka + 8, BLOCK)] = (ushort)(hi & 0xFFFFu);
        ds_tile[wg_tile_index(r0 + 1, ka + 8, BLOCK)] = (ushort)(hi >> 16);
    }
    wg_proxy_fence();
}

/* dq's 64-column chunk `ch` for the tile's 64 rows over the block's keys, dS (every
 * warpgroup's keys) times k's rows as the MN-major operand, into this warpgroup's
 * stage (DQ_PITCH floats a row). */
inline void wg_stage_dq_chunk(__local const ushort *ds_tile, __local const ushort *k_tile, int ch,
                              __local float *stage, __local float *scratch)
{
    float4 acc[8];
MMA_UNROLL
    for (int nb = 0; nb < 8; ++nb) acc[nb] = (float4)(0.0f);
    wg_fence(acc);
MMA_UNROLL
    for (int ks = 0; ks < DS_KEY_STEPS; ++ks)
        wg_mma_ss_mnmajor(acc, ds_tile + wg_tile_index(0, 16 * ks, BLOCK), WG_KMAJOR_LBO(BLOCK),
                          WG_KMAJOR_SBO(BLOCK), k_tile + TILE_AT(16 * ks, 64 * ch),
                          WG_MNMAJOR_LBO(D_PAD), WG_MNMAJOR_SBO(D_PAD), scratch);
    wg_commit_wait(acc);
    const int r = 16 * wg_warp() + (warp_lane() >> 2), lt = warp_lane() & 3;
MMA_UNROLL
    for (int nb = 0; nb < 8; ++nb) {
        *(__local float2 *)(stage + r * DQ_PITCH + 8 * nb + 2 * lt) = acc[nb].xy;
        *(__local float2 *)(stage + (r + 8) * DQ_PITCH + 8 * nb + 2 * lt) = acc[nb].zw;
    }
}

/* x added into four neighbouring fp32 in global memory (16-byte aligned) as one atomic
 * reduction: red.global.add.v4.f32 (sm_90); emulated, four of atomic_add_global_f32. */
inline void atomic_add_global_f32x4(__global float *addr, float4 x)
{
#if MMA_EMULATE
    atomic_add_global_f32(addr, x.x);
    atomic_add_global_f32(addr + 1, x.y);
    atomic_add_global_f32(addr + 2, x.z);
    atomic_add_global_f32(addr + 3, x.w);
#else
    asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};"
                 : : "l"(addr), "f"(x.x), "f"(x.y), "f"(x.z), "f"(x.w) : "memory");
#endif
}

/* Whether the workspace's accumulator rows are 16-byte aligned (the entries' spacing
 * keeps them so where the first is; bwd_common.cl): then dq goes in 16-byte pieces. */
inline bool wg_vector_dq(__global const float *delta, const bwd_params g)
{
    return ((ulong)(delta + g.delta_off - DQ_ACC_BACK) & 15ul) == 0;
}

/* The staged chunk `ch` added into the fp32 accumulators of rows row0 .. row0 + 63 of
 * query head h (DQ_ACC_BACK floats before each row's D; attn_bwd_dot zeroed them); rows
 * at or past `end` are left out. Consecutive work-items along a row, each adding a
 * 16-byte piece (`vec`: the row's DQ_ACC_ROW columns, those past HEAD_DIM zeros) or a
 * float (columns past HEAD_DIM left out). On the H200 (runs 156-158, docs/PERFORMANCE.md)
 * the 16-byte pieces ran 1.14-1.36x the per-float form, which ran 1.2x the copy engine's
 * bulk reductions (cp.reduce.async.bulk, a row per instruction). */
inline void wg_add_staged_dq(__local const float *stage, int ch, bool vec, __global float *delta,
                             const bwd_params g, int b, const seq_extent e, int h, int row0, int end)
{
    const long first = view_index(g.delta_off, g.delta_sb, g.delta_ss, g.delta_sh, b, e.q_start + row0, h) - DQ_ACC_BACK;
    /* not unrolled: this runs beside dk's and dv's accumulators, with no registers to spare */
    if (vec) {
#pragma unroll 1
        for (int idx = get_local_id(0); idx < 64 * 16; idx += GROUP_SIZE) {
            const int r = idx >> 4, c = 4 * (idx & 15), col = 64 * ch + c;
            if (row0 + r < end && col < DQ_ACC_ROW)
                atomic_add_global_f32x4(delta + first + r * g.delta_ss + col,
                                        *(__local const float4 *)(stage + r * DQ_PITCH + c));
        }
        return;
    }
#pragma unroll 1
    for (int idx = get_local_id(0); idx < 64 * 64; idx += GROUP_SIZE) {
        const int r = idx >> 6, c = idx & 63, col = 64 * ch + c;
        if (row0 + r < end && col < HEAD_DIM)
            atomic_add_global_f32(delta + first + r * g.delta_ss + col, stage[r * DQ_PITCH + c]);
    }
}
#endif

__kernel __attribute__((reqd_work_group_size(GROUP_SIZE, 1, 1))) void attn_bwd_wgmma_dkdv(BWD_ARGS)
{
    __local ushort k_tile[BLOCK * D_PAD] __attribute__((aligned(128)));
    __local ushort v_tile[BLOCK * D_PAD] __attribute__((aligned(128)));
    __local ushort q_tiles[2 * ROW_TILE_ELEMS] __attribute__((aligned(128)));
    __local ushort do_tiles[2 * ROW_TILE_ELEMS] __attribute__((aligned(128)));
    __local float lse2_tiles[2 * 64];
    __local float delta_tiles[2 * 64];
#if DQ_ATOMIC
    __local ushort ds_tile[64 * BLOCK] __attribute__((aligned(128))); /* dS: rows x the block's keys */
    __local float dq_stage[WARPGROUPS * 64 * DQ_PITCH] __attribute__((aligned(16)));
    const bool vector_dq = wg_vector_dq(delta, g);
#endif
    __local float scratch[SCRATCH_FLOATS];

    const int kv_head = get_group_id(1);
    const int b = get_group_id(2);
    const seq_extent e = sequence_extent(cu_q, cu_k, seqused, b, p);
    const int off = p.align_top_left ? 0 : e.sk - e.sq;
    const int key_rows = bwd_key_rows(cu_k, e, b, p);
    (void)o; (void)dq;
    const int wg = warp_index() >> 2;
    const int lg = warp_lane() >> 2, lt = warp_lane() & 3; /* C rows lg, lg + 8; columns 2lt, 2lt + 1 */
    __global const ushort *k_seq = (__global const ushort *)(k + view_index(p.k_off, p.k_sb, p.k_ss, p.k_sh, b, e.k_start, kv_head));
    __global const ushort *v_seq = (__global const ushort *)(v + view_index(p.v_off, p.v_sb, p.v_ss, p.v_sh, b, e.k_start, kv_head));
    __local const ushort *k_wg = k_tile + TILE_AT(64 * wg, 0);
    __local const ushort *v_wg = v_tile + TILE_AT(64 * wg, 0);

    /* Key blocks stride by the grid (trusted varlen sums may describe more keys than
     * the launch planned for); the bounds are the group's, so every barrier and
     * warpgroup operation is reached by all of its work-items. */
    for (int key0 = get_group_id(0) * BLOCK; key0 < key_rows; key0 += get_num_groups(0) * BLOCK) {
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous block's tiles are no longer read */
        wg_stage_rows(k_seq, p.k_ss, key0, BLOCK, e.sk, k_tile);
        wg_stage_rows(v_seq, p.v_ss, key0, BLOCK, e.sk, v_tile);
        /* This lane's keys: rows g and g + 8 of its warp's 16 (the C operand's rows). */
        const int ja = key0 + 64 * wg + 16 * wg_warp() + lg, jb = ja + 8;
        float4 dk_acc[8 * CHUNKS], dv_acc[8 * CHUNKS];
MMA_UNROLL
        for (int i = 0; i < 8 * CHUNKS; ++i) dk_acc[i] = dv_acc[i] = (float4)(0.0f);

        const int2 rows = key0 < e.sk ? bwd_rows_seeing(key0, min(key0 + BLOCK, e.sk) - 1, off, e.sq, p)
                                      : (int2)(0, 0);
        const int row_tiles = (rows.y - rows.x + 63) / 64;
        const int steps = row_tiles * p.group;
        if (steps > 0) {
            wg_stage_row_tile(q, dout, p, g, b, e, kv_head * p.group, rows.x, rows.y, q_tiles, do_tiles);
            wg_store_row_stats(wg_load_row_stats(lse, delta, p, g, b, e, kv_head * p.group, rows.x, rows.y),
                               lse2_tiles, delta_tiles);
        }
        async_commit(); /* with k and v */
        for (int step = 0; step < steps; ++step) {
            const int h = kv_head * p.group + step / row_tiles;
            const int row0 = rows.x + (step % row_tiles) * 64;
            const int buf = step & 1;
            wg_tiles_landed(); /* this step's tiles (the only copies in flight) */
            barrier(CLK_LOCAL_MEM_FENCE); /* ... everyone's; and the other buffer is free */
            /* the next step's copies and row statistics fly while this one computes */
            const int next = step + 1, next_h = kv_head * p.group + next / row_tiles;
            const int next_row0 = rows.x + (next % row_tiles) * 64;
            float2 next_stats = (float2)(INFINITY, 0.0f);
            if (next < steps) {
                wg_stage_row_tile(q, dout, p, g, b, e, next_h, next_row0, rows.y,
                                  q_tiles + (buf ^ 1) * ROW_TILE_ELEMS, do_tiles + (buf ^ 1) * ROW_TILE_ELEMS);
                next_stats = wg_load_row_stats(lse, delta, p, g, b, e, next_h, next_row0, rows.y);
            }
            async_commit();
            const float slope = alibi_slope(alibi, p, b, h);
            __local const ushort *q_t = q_tiles + buf * ROW_TILE_ELEMS;
            __local const ushort *do_t = do_tiles + buf * ROW_TILE_ELEMS;
            __local const float *lse2_t = lse2_tiles + buf * 64;
            __local const float *delta_t = delta_tiles + buf * 64;

            /* No visibility test below where every row of the tile sees every key of the
             * block (the visible range grows with the row; padding rows have P = 0). */
            const bool whole = key0 + BLOCK <= e.sk &&
                               visible_lo(row0 + 63 + off, p.window_left, e.sk) <= key0 &&
                               visible_end(row0 + off, p.window_right, e.sk) >= key0 + BLOCK;
            /* 1. S^T and dP^T: the warpgroup's 64 keys (C rows) by the tile's 64 rows;
             * 2. P~^T and dS^T from them. */
            float4 s[8], dp[8];
            uint p_lo[8], p_hi[8], ds_lo[8], ds_hi[8];
MMA_UNROLL
            for (int nb = 0; nb < 8; ++nb) s[nb] = dp[nb] = (float4)(0.0f);
            wg_hold(dp);
            wg_fence(s);
            wg_issue_kmajor(s, k_wg, q_t, scratch);
#if SPLIT_WAIT
            /* the probabilities while dP^T is still in the tensor cores */
            wg_commit();
            wg_issue_kmajor(dp, v_wg, do_t, scratch);
            wg_commit();
            wg_wait_but_newest(s);
MMA_UNROLL
            for (int nb = 0; nb < 8; ++nb) {
                const int r0 = 8 * nb + 2 * lt;
                const float l0 = lse2_t[r0], l1 = lse2_t[r0 + 1];
                s[nb] = whole ? dkdv_probs(s[nb], l0, l1, row0 + r0, ja, jb, off, e.sk, slope, p, false)
                              : dkdv_probs(s[nb], l0, l1, row0 + r0, ja, jb, off, e.sk, slope, p, true);
            }
            wg_wait_all(dp);
MMA_UNROLL
            for (int nb = 0; nb < 8; ++nb) {
                const int r0 = 8 * nb + 2 * lt;
                dkdv_grads(s[nb], dp[nb], delta_t[r0], delta_t[r0 + 1], row0 + r0, ja, jb, b, h, p,
                           &p_lo[nb], &p_hi[nb], &ds_lo[nb], &ds_hi[nb]);
            }
#else
            wg_issue_kmajor(dp, v_wg, do_t, scratch);
            wg_commit_wait(s);
            wg_hold(dp);
MMA_UNROLL
            for (int nb = 0; nb < 8; ++nb) {
                const int r0 = 8 * nb + 2 * lt;
                const float l0 = lse2_t[r0], l1 = lse2_t[r0 + 1];
                const float d0 = delta_t[r0], d1 = delta_t[r0 + 1];
                if (whole)
                    dkdv_entries(s[nb], dp[nb], l0, l1, d0, d1, row0 + r0, ja, jb, off, e.sk, slope, b, h,
                                 p, false, &p_lo[nb], &p_hi[nb], &ds_lo[nb], &ds_hi[nb]);
                else
                    dkdv_entries(s[nb], dp[nb], l0, l1, d0, d1, row0 + r0, ja, jb, off, e.sk, slope, b, h,
                                 p, true, &p_lo[nb], &p_hi[nb], &ds_lo[nb], &ds_hi[nb]);
            }
#endif
            uint4 pa[4], da[4];
            wg_pack_a(p_lo, p_hi, pa);
            wg_pack_a(ds_lo, ds_hi, da);

            /* 3. dv += P~^T dO and dk += dS^T Q over the tile's 64 rows. */
            wg_hold_operands(pa);
            wg_hold_operands(da);
            wg_hold_chunks(dv_acc, 0);
            wg_hold_chunks(dk_acc, 1);
            wg_fence(dk_acc);
            wg_issue_mnmajor(dv_acc, pa, do_t, scratch);
            wg_issue_mnmajor(dk_acc, da, q_t, scratch);
#if DQ_ATOMIC
            /* 4. dq += dS K over the block's keys, added into the workspace: every
             * warpgroup's dS^T goes to the dS tile while dv and dk run; after the barrier
             * warpgroup w takes dq's 64-column chunks w, w + WARPGROUPS, ..., stages each
             * and the whole group adds them (a barrier between staging and adding, and
             * before a stage is written again: at the next round's or step's start). */
            wg_store_ds(da, 64 * wg + 16 * wg_warp() + lg, ds_tile);
            wg_commit();
            barrier(CLK_LOCAL_MEM_FENCE);
            wg_wait_all(dk_acc);
#else
            wg_commit_wait(dk_acc);
#endif
            wg_hold_chunks(dk_acc, 1);
            wg_hold_chunks(dv_acc, 0);
            wg_hold_operands(pa);
            wg_hold_operands(da);
#if DQ_ATOMIC
            for (int round = 0; round < DQ_ROUNDS; ++round) {
                if (round > 0) barrier(CLK_LOCAL_MEM_FENCE); /* the last round's adds are done */
                const int ch = wg + WARPGROUPS * round;
                if (ch < CHUNKS) wg_stage_dq_chunk(ds_tile, k_tile, ch, dq_stage + wg * 64 * DQ_PITCH, scratch);
                barrier(CLK_LOCAL_MEM_FENCE);
                for (int w = 0; w < WARPGROUPS && w + WARPGROUPS * round < CHUNKS; ++w)
                    wg_add_staged_dq(dq_stage + w * 64 * DQ_PITCH, w + WARPGROUPS * round, vector_dq, delta, g,
                                     b, e, h, row0, rows.y);
            }
#endif
            /* read in the previous step at the latest (the barrier at this step's start) */
            if (next < steps) wg_store_row_stats(next_stats, lse2_tiles + (buf ^ 1) * 64, delta_tiles + (buf ^ 1) * 64);
        }
        ASYNC_WAIT(0); /* no copy still lands in a tile when the next block stages it */
        /* Keys no row sees (and keys past seqused_k) get dk = dv = 0. */
        const long dk_a = view_index(g.dk_off, g.dk_sb, g.dk_ss, g.dk_sh, b, e.k_start + ja, kv_head);
        const long dk_b = view_index(g.dk_off, g.dk_sb, g.dk_ss, g.dk_sh, b, e.k_start + jb, kv_head);
        const long dv_a = view_index(g.dv_off, g.dv_sb, g.dv_ss, g.dv_sh, b, e.k_start + ja, kv_head);
        const long dv_b = view_index(g.dv_off, g.dv_sb, g.dv_ss, g.dv_sh, b, e.k_start + jb, kv_head);
        store_grad_rows(dk, dk_a, dk_b, ja < key_rows, jb < key_rows, dk_acc, p.scale);
        store_grad_rows(dv, dv_a, dv_b, ja < key_rows, jb < key_rows, dv_acc, 1.0f);
    }
}

#if !DQ_ATOMIC
__kernel __attribute__((reqd_work_group_size(GROUP_SIZE, 1, 1))) void attn_bwd_wgmma_dq(BWD_ARGS)
{
    __local ushort q_tile[BLOCK * D_PAD] __attribute__((aligned(128)));
    __local ushort do_tile[BLOCK * D_PAD] __attribute__((aligned(128)));
    __local ushort k_tiles[2 * ROW_TILE_ELEMS] __attribute__((aligned(128)));
    __local ushort v_tiles[2 * ROW_TILE_ELEMS] __attribute__((aligned(128)));
    __local float scratch[SCRATCH_FLOATS];

    const int h = get_group_id(1);
    const int b = get_group_id(2);
    const seq_extent e = sequence_extent(cu_q, cu_k, seqused, b, p);
    const int off = p.align_top_left ? 0 : e.sk - e.sq;
    const int kv_head = h / p.group;
    (void)o; (void)dk; (void)dv;
    const int wg = warp_index() >> 2;
    const int lg = warp_lane() >> 2, lt = warp_lane() & 3;
    const float slope = alibi_slope(alibi, p, b, h);
    __global const ushort *q_seq = (__global const ushort *)(q + view_index(p.q_off, p.q_sb, p.q_ss, p.q_sh, b, e.q_start, h));
    __global const ushort *do_seq = (__global const ushort *)(dout + view_index(g.do_off, g.do_sb, g.do_ss, g.do_sh, b, e.q_start, h));
    __global const ushort *k_seq = (__global const ushort *)(k + view_index(p.k_off, p.k_sb, p.k_ss, p.k_sh, b, e.k_start, kv_head));
    __global const ushort *v_seq = (__global const ushort *)(v + view_index(p.v_off, p.v_sb, p.v_ss, p.v_sh, b, e.k_start, kv_head));
    __local const ushort *q_wg = q_tile + TILE_AT(64 * wg, 0);
    __local const ushort *do_wg = do_tile + TILE_AT(64 * wg, 0);

    for (int row0 = first_row_block() * BLOCK; row0 < e.sq; row0 += get_num_groups(0) * BLOCK) {
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous rows' tiles are no longer read */
        wg_stage_rows(q_seq, p.q_ss, row0, BLOCK, e.sq, q_tile);
        wg_stage_rows(do_seq, g.do_ss, row0, BLOCK, e.sq, do_tile);
        /* This lane's rows: g and g + 8 of its warp's 16 (a: x, y; b: z, w). */
        const int warp_row0 = row0 + 64 * wg + 16 * wg_warp();
        const int ra = warp_row0 + lg, rb = ra + 8;
        const dq_row row_a = dq_row_of(lse, delta, p, g, b, e, h, ra, off);
        const dq_row row_b = dq_row_of(lse, delta, p, g, b, e, h, rb, off);
        /* The keys every row of this warp sees (from its last row's first to its first
         * row's last; rows past the end have P = 0 anyway). */
        const int whole_lo = visible_lo(warp_row0 + 15 + off, p.window_left, e.sk);
        const int whole_end = visible_end(warp_row0 + off, p.window_right, e.sk);
        /* Keys some row of the group sees: the same for all work-items. */
        const int block_lo = visible_lo(row0 + off, p.window_left, e.sk);
        const int block_end = visible_end(min(row0 + BLOCK, e.sq) - 1 + off, p.window_right, e.sk);

        float4 dq_acc[8 * CHUNKS];
MMA_UNROLL
        for (int i = 0; i < 8 * CHUNKS; ++i) dq_acc[i] = (float4)(0.0f);
        const int key_tiles = block_end > block_lo ? (block_end - block_lo + 63) / 64 : 0;
        if (key_tiles > 0) {
            wg_stage_rows(k_seq, p.k_ss, block_lo, 64, block_end, k_tiles);
            wg_stage_rows(v_seq, p.v_ss, block_lo, 64, block_end, v_tiles);
        }
        async_commit(); /* with q and dout */
        for (int kt = 0; kt < key_tiles; ++kt) {
            const int tile0 = block_lo + kt * 64;
            const int buf = kt & 1;
            wg_tiles_landed();
            barrier(CLK_LOCAL_MEM_FENCE); /* everyone's copies; the other buffer is free */
            if (kt + 1 < key_tiles) {
                wg_stage_rows(k_seq, p.k_ss, tile0 + 64, 64, block_end, k_tiles + (buf ^ 1) * ROW_TILE_ELEMS);
                wg_stage_rows(v_seq, p.v_ss, tile0 + 64, 64, block_end, v_tiles + (buf ^ 1) * ROW_TILE_ELEMS);
            }
            async_commit();
            __local const ushort *k_t = k_tiles + buf * ROW_TILE_ELEMS;
            __local const ushort *v_t = v_tiles + buf * ROW_TILE_ELEMS;

            /* S and dP: the warpgroup's 64 rows (C rows) by the tile's 64 keys; then dS
             * (rows a, b; keys j0, j0 + 1), with no visibility test where every row of the
             * warp sees every key of the tile. */
            const bool whole = tile0 >= whole_lo && tile0 + 64 <= whole_end;
            float4 s[8], dp[8];
            uint ds_lo[8], ds_hi[8];
MMA_UNROLL
            for (int nb = 0; nb < 8; ++nb) s[nb] = dp[nb] = (float4)(0.0f);
            wg_hold(dp);
            wg_fence(s);
            wg_issue_kmajor(s, q_wg, k_t, scratch);
#if SPLIT_WAIT
            /* the probabilities while dP is still in the tensor cores */
            wg_commit();
            wg_issue_kmajor(dp, do_wg, v_t, scratch);
            wg_commit();
            wg_wait_but_newest(s);
MMA_UNROLL
            for (int nb = 0; nb < 8; ++nb) {
                const int j0 = tile0 + 8 * nb + 2 * lt;
                s[nb] = whole ? dq_probs(s[nb], row_a.lse2, row_b.lse2, ra, rb, j0, row_a.lo, row_a.end, row_b.lo, row_b.end, off, slope, p, false)
                              : dq_probs(s[nb], row_a.lse2, row_b.lse2, ra, rb, j0, row_a.lo, row_a.end, row_b.lo, row_b.end, off, slope, p, true);
            }
            wg_wait_all(dp);
MMA_UNROLL
            for (int nb = 0; nb < 8; ++nb) {
                const float4 d = dq_grads(s[nb], dp[nb], row_a.delta, row_b.delta, ra, rb, tile0 + 8 * nb + 2 * lt, b, h, p);
                ds_lo[nb] = pack_pair(d.x, d.y);
                ds_hi[nb] = pack_pair(d.z, d.w);
            }
#else
            wg_issue_kmajor(dp, do_wg, v_t, scratch);
            wg_commit_wait(s);
            wg_hold(dp);
MMA_UNROLL
            for (int nb = 0; nb < 8; ++nb) {
                const int j0 = tile0 + 8 * nb + 2 * lt;
                const float4 d = whole ? dq_entries(s[nb], dp[nb], row_a.lse2, row_b.lse2, row_a.delta, row_b.delta, ra, rb, j0,
                                                    row_a.lo, row_a.end, row_b.lo, row_b.end, off, slope, b, h, p, false)
                                       : dq_entries(s[nb], dp[nb], row_a.lse2, row_b.lse2, row_a.delta, row_b.delta, ra, rb, j0,
                                                    row_a.lo, row_a.end, row_b.lo, row_b.end, off, slope, b, h, p, true);
                ds_lo[nb] = pack_pair(d.x, d.y);
                ds_hi[nb] = pack_pair(d.z, d.w);
            }
#endif
            uint4 da[4];
            wg_pack_a(ds_lo, ds_hi, da);

            /* dq += dS K over the tile's 64 keys. */
            wg_hold_operands(da);
            wg_hold_chunks(dq_acc, 1);
            wg_fence(dq_acc);
            wg_issue_mnmajor(dq_acc, da, k_t, scratch);
            wg_commit_wait(dq_acc);
            wg_hold_chunks(dq_acc, 1);
            wg_hold_operands(da);
        }
        ASYNC_WAIT(0); /* no copy still lands in the tiles when the next row block stages them */
        /* A row that sees no key gets dq = 0. */
        const long dq_a = view_index(g.dq_off, g.dq_sb, g.dq_ss, g.dq_sh, b, e.q_start + ra, h);
        const long dq_b = view_index(g.dq_off, g.dq_sb, g.dq_ss, g.dq_sh, b, e.q_start + rb, h);
        store_grad_rows(dq, dq_a, dq_b, ra < e.sq, rb < e.sq, dq_acc, p.scale);
    }
}
#endif
