/* Forward attention on tensor cores (FlashAttention 2's algorithm with warp-level mma).
 *
 * A work-group of 128 work-items (4 warps) covers BLOCK_M = 64 * M_TILES query rows of
 * one (sequence, head); each warp owns M_TILES tiles of 16 rows, whose q it reads as mma
 * A operands from a local tile (Q_LOCAL) or keeps in registers for the whole call. For
 * each tile of BLOCK_N keys (plan.c chooses the shape) the group stages k and v, both
 * row major as raw 16-bit values, in local memory; each warp then computes its scores
 * with m16n8k16 products, applies scale, softcap, ALiBi and the masks, keeps an online
 * softmax in fp32 (each row is spread over the 4 lanes of a quad, reduced with
 * shuffles), and feeds the probabilities, rounded to the storage type as FlashAttention
 * does, straight from the score registers into the p.v products. Operands come out of
 * the tiles through ldmatrix (.trans for v: no transposing store).
 *
 * Copies overlap the arithmetic: with 16-byte aligned rows (VEC_LOADS) the tiles are
 * filled by asynchronous copies (cp.async), otherwise through registers. With one buffer
 * of each (KV_STAGES=1, FlashAttention 2's schedule) v of a tile is copied while its
 * scores are computed and k of the next tile while p.v runs; with two (KV_STAGES=2) k
 * and v of the next tile while the whole of this one computes. Only fp16 and bf16
 * storage, head_dim up to 256 (padded to a multiple of 16 with zeros); the host falls
 * back to attn_fwd.cl otherwise.
 *
 * The output leaves through local memory where it can (O_STAGED): each warp writes its
 * rows, rounded to the storage type, over its own rows of the q tile and stores them to
 * global memory in 16-byte pieces, whole rows at a time; elsewhere as 32-bit pairs
 * (O_PAIRS) where output rows are aligned, else value by value.
 *
 * Specialised by the host with -D: FACL_DTYPE (1 or 2), HEAD_DIM, M_TILES, BLOCK_N, Q_LOCAL,
 * KV_STAGES, VEC_LOADS (1 when every k and v row, and q's where Q_LOCAL stages q, starts on a
 * 16-byte boundary, so tiles load 8 values per access), O_VEC (1 when every output row
 * does),
 * MMA_EMULATE (warp_mma.cl) and attn_common.cl's feature switches. Same arguments,
 * masks and numerics as attn_fwd.cl.
 *
 * With WGMMA=1 (program attn_fwd_wgmma: Hopper, compute capability 9.x) the same kernel
 * runs its two products as warpgroup products (warpgroup_mma.cl): WARPGROUPS groups of
 * four warps, 64 rows each, share the k and v tiles, which are stored in the interleaved
 * layout the tensor cores read through descriptors (wg_tile_index); per 16-dim step one
 * m64n64k16 product gives a warpgroup its 64 x 64 scores (q from registers with Q_REGS=1,
 * else from a q tile in local memory), and per 16-key step and 64 dims one product adds
 * p.v, p from the score registers as with mma.sync. The scores and the accumulators have
 * mma.sync's register layout, so everything between the products is shared. Head dims
 * are padded to a multiple of 64 (the products' width).
 */
#ifndef HEAD_DIM
#error "HEAD_DIM must be defined by the host"
#endif
#if HEAD_DIM > 256
#error "attn_fwd_mma covers head_dim up to 256"
#endif
#ifndef VEC_LOADS
#define VEC_LOADS 0
#endif

#ifndef WGMMA
#define WGMMA 0
#endif
/* 16-row mma tiles per warp: two share every k and v operand loaded from local memory
 * (half the local loads per mma); the host picks 1 where registers are short (d > 64). */
#ifndef M_TILES
#define M_TILES 1
#endif
#ifndef BLOCK_N
#define BLOCK_N 64 /* keys per tile: 64, or 32 where local memory is short (plan.c) */
#endif
/* Q_LOCAL=1 (mma.sync only): the group's q rows stay in a local tile, each warp reading
 * its fragments per k-step with ldmatrix (FlashAttention 2 with Is_Q_in_regs off), so
 * that the registers q would take hold a second row tile's accumulators instead and
 * every k and v fragment read from local memory feeds twice the products. */
#ifndef Q_LOCAL
#define Q_LOCAL 0
#endif
#if BLOCK_N % 16 != 0
#error "BLOCK_N must be a multiple of 16"
#endif
/* KV_STAGES (mma.sync only): 1, k and v of one tile each, refilled in turn within the tile
 * (FlashAttention 2's schedule, two barriers per tile); 2, two of each, the next tile's k
 * and v copied while the whole of this tile computes (one barrier per tile). On the H200
 * a build without the copies ran 1.2-1.4x faster (run 60, docs/PERFORMANCE.md), double
 * buffers 1.01-1.04x (run 61): the copies cost mostly local-memory bandwidth, shared
 * with ldmatrix, rather than latency. */
#ifndef KV_STAGES
#define KV_STAGES 1
#endif
#if KV_STAGES != 1 && KV_STAGES != 2
#error "KV_STAGES is 1 or 2"
#endif
#if WGMMA
#ifndef WARPGROUPS
#define WARPGROUPS 1
#endif
#ifndef Q_REGS
#define Q_REGS 0
#endif
#ifndef WG_PIPE
#define WG_PIPE 0
#endif
#if M_TILES != 1 || (BLOCK_N != 64 && BLOCK_N != 128) || Q_LOCAL || KV_STAGES != 1
#error "attn_fwd_wgmma takes one 16-row tile per warp and 64- or 128-key tiles (Q_REGS, not Q_LOCAL)"
#endif
/* 64-key halves of a key tile: each a product of N = 64 (scores), or four 16-key steps
 * of p.v */
#define KEY_HALVES (BLOCK_N / 64)
/* The work-items that compute: WARPGROUPS warpgroups (KERNEL_ITEMS adds WG_WS's copier). */
#define GROUP_SIZE (128 * WARPGROUPS)
#define D_PAD (((HEAD_DIM + 63) / 64) * 64)
#define TILE_ELEMS (BLOCK_N * D_PAD)
/* Element (row n, column c) of a k, v (or q) tile: the descriptors' interleaved layout,
 * or with WS_TMA the copy engine's 128-byte swizzle (warpgroup_mma.cl, WG_SW128): column
 * blocks of 64 rows x 64 values, 16-byte piece p of row n at p ^ (n % 8), each 64 rows'
 * blocks one after the other (the engine's boxes, ws_fill). A q tile of two warpgroups
 * and a 128-key tile are two such 64-row tiles. */
#if WS_TMA
#define TILE_AT(n, c)                                                                     \
    (((n) >> 6) * 64 * D_PAD + ((c) >> 6) * 4096 + ((n) & 63) * 64 +                      \
     ((((c) >> 3) & 7) ^ ((n) & 7)) * 8 + ((c) & 7))
#define TILE_ALIGN 1024
#else
#define TILE_AT(n, c) wg_tile_index(n, c, D_PAD)
#endif
#else
#define GROUP_SIZE 128
#define D_PAD (((HEAD_DIM + 15) / 16) * 16)
/* The row pitch of both tiles in 16-bit elements. The +8 keeps rows 16-byte aligned (as
 * ldmatrix and cp.async need) and puts the eight rows one ldmatrix reads on all 32
 * local-memory banks. */
#define K_PITCH (D_PAD + 8)
#define TILE_ELEMS (BLOCK_N * K_PITCH)
#define TILE_AT(n, c) ((n) * K_PITCH + (c))
#endif
#define BLOCK_M (16 * M_TILES * (GROUP_SIZE / 32)) /* 16 * M_TILES rows per warp */
/* q in a local tile (the wgmma kernel without Q_REGS, or Q_LOCAL), in the k tiles'
 * layout; else in registers for the whole call. */
#define Q_STAGED ((WGMMA && !Q_REGS) || Q_LOCAL)
#ifndef O_VEC
#define O_VEC 0
#endif
/* How the output leaves. Stored from the registers, each lane writes two 16-bit values
 * per 8-column block and row, and those partial writes of 32-byte sectors cost a short
 * row block more than its products: on the H200 (run 66, docs/PERFORMANCE.md) builds
 * without the stores ran up to 1.29x at 512 keys. With 16-byte aligned output rows
 * (O_VEC): up to d = 128 through each warp's rows of the q tile, then 16-byte stores of
 * whole rows (O_STAGED, mma.sync with Q_LOCAL: 1.18-1.27x at 512 keys, 1.00-1.02x at 16k,
 * run 67); otherwise each pair of values as one 32-bit store (O_PAIRS: at d = 256, where
 * the staged stores cost the key loop 3-9% at 4k-16k keys, run 67, pairs ran 1.14-1.20x
 * at 512 keys and 1.00-1.04x at 16k, run 68). */
#define O_STAGED (!WGMMA && Q_LOCAL && O_VEC && D_PAD <= 128)
/* The Hopper kernel (no q tile to stage through up to d = 128) with 16-byte aligned
 * output rows: each quad's pairs transposed across its lanes (quad_transpose), then one
 * 16-byte store per lane and 32 columns. On the H200 (run 138, docs/PERFORMANCE.md) its
 * value-by-value stores took a work-group 3-4.4 us at d = 128, a fifth of its time at
 * 1k keys. */
#define O_QUADS (WGMMA && O_VEC)
#define O_PAIRS (O_VEC && !O_STAGED && !O_QUADS)
/* The tiles' alignment: 16 bytes for ldmatrix and cp.async, 1024 for the swizzle */
#ifndef TILE_ALIGN
#define TILE_ALIGN 16
#endif
#ifndef WG_PIPE
#define WG_PIPE 0
#endif
/* WG_PIPE: 0, or the k and v tiles of each kind the pipelined schedule cycles through
 * (2 or 3: copies run WG_PIPE - 1 tiles ahead) */
#if WG_PIPE != 0 && WG_PIPE != 2 && WG_PIPE != 3
#error "WG_PIPE is 0, 2 or 3"
#endif
#define KV_BUFS (WG_PIPE ? WG_PIPE : KV_STAGES)

/* WG_WS=1 (the wgmma kernel with WG_PIPE, 16-byte aligned rows): FlashAttention 3's
 * warp specialisation. One more warpgroup, the copier, fills the k, v (and q) tiles with
 * cp.async while the other warpgroups only compute; each buffer has two transaction
 * barriers (mbarrier): "full", completed by the copier's 128 work-items once their
 * copies have landed (cp.async.mbarrier.arrive), and "empty", completed by the computing
 * warps once their products have read it. No work-group barrier is left in the key
 * loop, and the copies' instructions leave the computing warps (session 8's breakdown on
 * the H200: 206 -> 351 TFLOP/s at d = 128 without the copies, docs/PERFORMANCE.md).
 * A whole warpgroup, not one warp: an SM's registers are four banks of 16 Ki, one per
 * quarter of its warps (warp w on quarter w % 4), so a ninth warp would leave 3 warps
 * on one quarter and every work-item 168 registers (ptxas with .reqntid 288, run 86);
 * with three warpgroups the copier gives its registers to the others instead
 * (setmaxnreg: 40 each for the copier, 232 for the computing warps; 2 x 232 + 40 warps'
 * worth fit a quarter's 16 Ki). The emulation has no warp that runs ahead of the others
 * (its warp operations are work-group barriers), so there WG_WS builds the plain
 * WG_PIPE kernel. */
#ifndef WG_WS
#define WG_WS 0
#endif
#define WS_COPIER (WGMMA && WG_WS && !MMA_EMULATE)
/* WS_TMA=1 (with the copier, on the device): the copier's tiles come through the tensor
 * copy engine (TMA): one of its work-items issues, per tile, one cp.async.bulk.tensor box
 * of 64 rows x 64 values for each 64 columns, read through tensor maps (src/tensor_map.h)
 * in global memory that tma_maps_fill (below) completed with the buffers' addresses; a
 * tile's "full" barrier then counts the box bytes (one arrival, expect_tx) instead of
 * the copier's 128 work-items. Rows past the tensor (q past seqlen_q, k and v past
 * seqlen_k) and columns past HEAD_DIM read as zeros. On the H200 the copier's cp.async
 * traffic held the kernel at 285-313 TFLOP/s at d = 128 (session 17); through the engine
 * it ran 435-493 at 4k-16k keys (run 125, docs/PERFORMANCE.md). Dense batches only (the
 * host's plan): in a varlen batch a sequence's last tile would read the next one's rows. */
#ifndef WS_TMA
#define WS_TMA 0
#endif
#if WS_TMA && !WS_COPIER
#error "WS_TMA is the device copier's form (WG_WS, no MMA_EMULATE)"
#endif
#ifndef WS_PINGPONG
#define WS_PINGPONG 0
#endif
#if WG_WS && (!WGMMA || !WG_PIPE || !VEC_LOADS)
#error "WG_WS needs the wgmma kernel with WG_PIPE and VEC_LOADS"
#endif
#define WS_COPIER_ITEMS 128
/* registers per work-item at the start (the entry's .maxnreg: 3 warps a quarter of the
 * SM, 16 Ki / 96 rounded down to 8), the copier's and the computing warps' afterwards */
#define WS_ENTRY_REGS "168"
#define WS_COPIER_REGS "40"
#define WS_MMA_REGS "232"
#define KERNEL_ITEMS (GROUP_SIZE + (WS_COPIER ? WS_COPIER_ITEMS : 0))

#define K_STEPS (D_PAD / 16)   /* k-steps of q.k */
#define D_BLOCKS (D_PAD / 8)   /* 8-wide column blocks of the output */
#define N_BLOCKS (BLOCK_N / 8) /* 8-wide key blocks of the scores */
#if MMA_EMULATE
#define SCRATCH_FLOATS ((GROUP_SIZE / 32) * MMA_SCRATCH_PER_WARP)
#else
#define SCRATCH_FLOATS 1
#endif

/* One 16-byte piece of a tile: row n, columns c .. c + 7 of x (the row at `row`, or zeros
 * where !row_in), as an asynchronous copy with VEC_LOADS (committed and waited for by the
 * caller), else through registers. With VEC_LOADS, HEAD_DIM % 8 == 0, so a piece is all
 * inside the row or all past it. */
inline void stage_piece(__local ushort *dst, __global const ushort *x_seq, __global const ushort *row,
                        int c, bool row_in)
{
#if VEC_LOADS
    const bool in = row_in && c < HEAD_DIM;
    copy_async16(dst, in ? row + c : x_seq, in ? 16 : 0);
#else
    (void)x_seq;
    *(__local uint4 *)dst = row_in ? load_row8(row, c) : (uint4)(0u);
#endif
}

/* Rows tile0 .. tile0 + rows - 1 of x (k, v or q of the sequence) into a tile (TILE_AT);
 * rows at or past `end` and columns at or past HEAD_DIM are zeros (a zero v row keeps
 * 0 * p finite). The caller passes a constant `rows`. */
inline void stage_rows(__global const ushort *x_seq, long x_ss, int tile0, int end, int rows,
                       __local ushort *tile)
{
#define PIECES (D_PAD / 8) /* 16-byte pieces per tile row */
#define PIECE_ROWS (GROUP_SIZE / PIECES)
#if !WGMMA && GROUP_SIZE % PIECES == 0
    /* Where a row's pieces divide the group (D_PAD 16, 32, 64, 128, 256), each work-item
     * keeps one column piece and steps down the rows: one pointer increment and a
     * constant local offset per copy instead of a division and two products (the SASS of
     * run 61's d = 128 build had about 25 instructions per copy in the general loop). */
    if (rows % PIECE_ROWS == 0) {
        const int n0 = get_local_id(0) / PIECES, c = (get_local_id(0) % PIECES) * 8;
        __global const ushort *row = x_seq + (long)(tile0 + n0) * x_ss;
        const long row_step = (long)PIECE_ROWS * x_ss;
        __local ushort *dst = tile + TILE_AT(n0, c);
MMA_UNROLL
        for (int it = 0; it < rows / PIECE_ROWS; ++it) {
            stage_piece(dst + it * PIECE_ROWS * K_PITCH, x_seq, row, c, tile0 + n0 + it * PIECE_ROWS < end);
            row += row_step;
        }
        return;
    }
#endif
    for (int idx = get_local_id(0); idx < rows * PIECES; idx += GROUP_SIZE) {
#if WGMMA
        /* eight neighbouring work-items fill one 128-byte core matrix (8 rows of one
         * 16-byte column piece): no two of them on the same local-memory banks */
        const int n = (idx & 7) + 8 * ((idx >> 3) / PIECES), c = ((idx >> 3) % PIECES) * 8;
#else
        const int n = idx / PIECES, c = (idx % PIECES) * 8;
#endif
        stage_piece(tile + TILE_AT(n, c), x_seq, x_seq + (long)(tile0 + n) * x_ss, c, tile0 + n < end);
    }
#undef PIECE_ROWS
#undef PIECES
}

/* After this work-item's copies into the tiles have landed: on the warpgroup path they
 * must also be made visible to the tensor cores' reads (before the barrier). */
#if WGMMA
#define TILES_LANDED() wg_proxy_fence()
#else
#define TILES_LANDED() ((void)0)
#endif

/* The i-th row block of this work-group among a sequence's `blocks`, or -1 past its last.
 * Ranks run heaviest first (rank r is block blocks - 1 - r: under a causal mask the later
 * blocks see more keys), round i giving ranks i G .. i G + G - 1 to the G groups of dim 0,
 * in group order in even rounds and reversed in odd ones (a snake, so that a group's blocks
 * add up to about the same work under a causal mask). With one block per group (the
 * grid's G >= blocks) that is first_row_block()'s order. The ranks a group takes grow
 * with i, so the first one past the sequence ends its loop; a sequence longer than the
 * launch planned for (trusted varlen prefix sums above max_seqlen_q) still has every
 * block taken. */
inline int row_block_at(int i, int blocks)
{
    const int groups = (int)get_num_groups(0), me = (int)get_group_id(0);
    const int rank = i * groups + ((i & 1) ? groups - 1 - me : me);
    return rank < blocks ? blocks - 1 - rank : -1;
}

#if WS_COPIER
/* The barriers in ws_bars: full and empty for each of the KV_BUFS k and v buffers, then
 * q's pair (one q tile). */
#define WS_K_FULL 0
#define WS_K_EMPTY KV_BUFS
#define WS_V_FULL (2 * KV_BUFS)
#define WS_V_EMPTY (3 * KV_BUFS)
#define WS_Q_FULL (4 * KV_BUFS)
#define WS_Q_EMPTY (4 * KV_BUFS + 1)
#define WS_BARS (4 * KV_BUFS + 2)

/* Rows tile0 .. tile0 + rows - 1 of x into an interleaved tile by the copier: the tile's
 * core matrices (8 rows x 16 bytes, 128 contiguous bytes; matrix m holds rows 8 (m /
 * PIECES) .., columns 8 (m % PIECES) ..) go to groups of eight neighbouring work-items,
 * one row each, so that a group fills one matrix. Rows at or past `end` and columns past
 * HEAD_DIM are zeros (cp.async with no source bytes). */
inline void ws_stage_tile(__global const ushort *x_seq, long x_ss, int tile0, int end, int rows,
                          __local ushort *tile)
{
#define PIECES (D_PAD / 8)
    const int item = get_local_id(0) - GROUP_SIZE, r = item & 7;
    for (int m = item >> 3; m < rows / 8 * PIECES; m += WS_COPIER_ITEMS / 8) {
        const int n = 8 * (m / PIECES) + r, c = 8 * (m % PIECES);
        stage_piece(tile + 64 * m + 8 * r, x_seq, x_seq + (long)(tile0 + n) * x_ss, c, tile0 + n < end);
    }
#undef PIECES
}

#if WS_TMA
/* One box (64 values x 64 rows of one head of one sequence) of the map at `map` (a
 * generic address of global memory), its bytes counted on `bar`. */
inline void tma_box(__local ushort *dst, ulong map, int c, int row, int head, int b, __local ulong *bar)
{
    asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%2, %3, %4, %5}], [%6];"
                 :
                 : "r"((uint)(ulong)dst), "l"(map), "r"(c), "r"(row), "r"(head), "r"(b),
                   "r"((uint)(ulong)bar)
                 : "memory");
}

/* The engine reads a map through its own proxy: order tma_maps_fill's writes before. */
inline void tma_map_acquire(__global const ulong *map)
{
    asm volatile("fence.proxy.tensormap::generic.acquire.gpu [%0], 128;" : : "l"(map) : "memory");
}
#endif

/* One fill of a tile (rows row0 .. row0 + rows - 1 of x, `rows` a multiple of 64 with
 * WS_TMA) that completes a phase of `full`: every copier work-item's cp.async, each
 * arriving once its copies have landed (rows at or past `end` zeros); or, with WS_TMA,
 * the engine's boxes (64-row tiles, every 64-column block) through the map at `map`,
 * their bytes announced on `full` by the one work-item that issues them. */
inline void ws_fill(__local ushort *tile, __global const ushort *x_seq, long x_ss, ulong map, int row0,
                    int end, int rows, int head, int b, __local ulong *full)
{
#if WS_TMA
    (void)x_seq, (void)x_ss, (void)end;
    mbar_expect_tx(full, (uint)(rows * D_PAD * 2));
    for (int r = 0; r < rows; r += 64)
        for (int cb = 0; cb < D_PAD / 64; ++cb)
            tma_box(tile + r * D_PAD + cb * 4096, map, cb * 64, row0 + r, head, b, full);
#else
    (void)map, (void)head, (void)b;
    ws_stage_tile(x_seq, x_ss, row0, end, rows, tile);
    async_arrive(full);
#endif
}

/* The copier's whole work: the same row blocks and key tiles as the computing warps, in
 * their order (q, then k and v of each tile). Buffer i's n-th fill waits for its n-th
 * release (the parity of phase n - 1; for n = 0 the phase before the first, which counts
 * as complete) and completes the n-th phase of its full barrier. With WS_TMA one
 * work-item issues every copy (the others leave), through `maps` (q's, k's, v's, 16
 * ulongs each; q's used where Q_STAGED). */
inline void ws_copy_all(const seq_extent e, const attn_params p, int off, int h, int kv_head, int b,
                        __global const ushort *q_seq, __global const ushort *k_seq,
                        __global const ushort *v_seq, __global const ulong *maps,
                        __local ushort *k_tile, __local ushort *v_tile, __local ushort *q_tile,
                        __local ulong *bars)
{
#if WS_TMA
    if (get_local_id(0) != GROUP_SIZE) return;
    for (int m = Q_STAGED ? 0 : 1; m < 3; ++m) tma_map_acquire(maps + 16 * m);
#endif
    const ulong q_map = (ulong)maps, k_map = (ulong)(maps + 16), v_map = (ulong)(maps + 32);
    uint tiles = 0, blocks = 0;
    const int row_blocks = (e.sq + BLOCK_M - 1) / BLOCK_M;
    for (int bi = 0;; ++bi) {
        const int blk = row_block_at(bi, row_blocks);
        if (blk < 0) break;
        const int row0 = blk * BLOCK_M;
        const int last_row = min(row0 + BLOCK_M, e.sq) - 1;
        const int block_lo = visible_lo(row0 + off, p.window_left, e.sk);
        const int block_end = visible_end(last_row + off, p.window_right, e.sk);
#if Q_STAGED
        mbar_wait(bars + WS_Q_EMPTY, (blocks & 1u) ^ 1u);
        ws_fill(q_tile, q_seq, p.q_ss, q_map, row0, e.sq, BLOCK_M, h, b, bars + WS_Q_FULL);
#else
        (void)q_seq, (void)q_tile, (void)q_map;
#endif
        blocks++;
        for (int tile0 = block_lo; tile0 < block_end; tile0 += BLOCK_N, ++tiles) {
            const uint buf = tiles % KV_BUFS, released = ((tiles / KV_BUFS) & 1u) ^ 1u;
            mbar_wait(bars + WS_K_EMPTY + buf, released);
            ws_fill(k_tile + buf * TILE_ELEMS, k_seq, p.k_ss, k_map, tile0, block_end, BLOCK_N, kv_head, b,
                    bars + WS_K_FULL + buf);
            mbar_wait(bars + WS_V_EMPTY + buf, released);
            ws_fill(v_tile + buf * TILE_ELEMS, v_seq, p.v_ss, v_map, tile0, block_end, BLOCK_N, kv_head, b,
                    bars + WS_V_FULL + buf);
        }
    }
#if !WS_TMA
    async_commit();
    ASYNC_WAIT(0); /* nothing in flight when the copier leaves */
#endif
}

/* A computing warp waits for fill n of a buffer (its full barrier's phase n), then makes
 * the copies visible to the tensor cores' reads. */
inline void ws_wait_filled(__local ulong *full, uint n)
{
    mbar_wait(full + n % KV_BUFS, (n / KV_BUFS) & 1u);
}

/* ... and hands it back once its products have read it (one arrival per warp). */
inline void ws_release(__local ulong *empty)
{
    warp_sync();
    if (warp_lane() == 0) mbar_arrive(empty);
}
#endif

/* WS_PINGPONG (two computing warpgroups): FlashAttention 3's schedule between them. Each
 * tile, a warpgroup issues its products only after the other has issued its own
 * (hardware barrier 1 + w: its 128 work-items wait, the other's 128 arrive), so that the
 * tensor cores run one warpgroup's products while the other computes its softmax,
 * instead of both computing their softmax at once. Warpgroup 1 lets warpgroup 0 go first
 * (ws_turn_start), and warpgroup 0 takes that extra turn back at the end (ws_turn_end),
 * so that no barrier is left half-arrived. */
#if WS_COPIER && WS_PINGPONG && WARPGROUPS == 2
inline int ws_group(void) { return get_local_id(0) >> 7; }
inline void ws_turn_wait(void)
{
    if (ws_group() == 0) asm volatile("bar.sync 1, 256;" ::: "memory");
    else asm volatile("bar.sync 2, 256;" ::: "memory");
}
inline void ws_turn_pass(void)
{
    if (ws_group() == 0) asm volatile("bar.arrive 2, 256;" ::: "memory");
    else asm volatile("bar.arrive 1, 256;" ::: "memory");
}
inline void ws_turn_start(void)
{
    if (ws_group() == 1) asm volatile("bar.arrive 1, 256;" ::: "memory");
}
inline void ws_turn_end(void)
{
    if (ws_group() == 0) asm volatile("bar.sync 1, 256;" ::: "memory");
}
#else
inline void ws_turn_wait(void) {}
inline void ws_turn_pass(void) {}
inline void ws_turn_start(void) {}
inline void ws_turn_end(void) {}
#endif

/* Scores in base 2: exp(x - m) = 2^(x * log2(e) - m * log2(e)), so one multiply (the
 * scale with log2(e) folded in) and ex2 give what scale, subtract, multiply and ex2 gave;
 * the running maxima are kept in the same units and lse converted back. */
#define LOG2E 1.44269504088896340736f
#define LN2 0.69314718055994530942f

/* A row's running maximum (base-2 logits) moves only when a score exceeds it by more than
 * this, as FlashAttention 4 rescales: the softmax is the same (any reference point
 * cancels), the unnormalised probabilities stay at most 2^8 (inside fp16's and bf16's
 * range as p.v operands, and fp32's as sums). */
#define MAX_SLACK 8.0f

/* The lean softmax, up to d = 128: without softcap and ALiBi the scale goes into the
 * exponent, as FlashAttention 2 does (a score tile keeps the raw products q.k, its row
 * maxima are scaled once per row, and each probability is 2^(s * scale_log2 - m), one
 * FMA before ex2 instead of a multiply per score and a subtraction), and ex2 skips the
 * denormal handling (exp2_ftz, warp_mma.cl). The fold is exact for the maxima because
 * scale > 0 (validate_fwd.c rejects negative scales and replaces 0 by 1/sqrt(d)) and
 * rounding is monotonic: the scaled maximum of the raw scores is the maximum of the
 * scaled ones. On the H200 the fold ran 1.01-1.05x and exp2_ftz 1.03-1.08x at d = 64
 * and 128, but each lost 1-4% non-causal at d = 256 (runs 59 and 63), where local-memory
 * reads bound the kernel (one row tile per warp: 144 ldmatrix per 256 products against
 * 80) and the compiler's schedule of the leaner code came out slower: not there. */
#define LEAN_SOFTMAX (HEAD_DIM <= 128)
#define FOLD_SCALE (LEAN_SOFTMAX && !HAS_SOFTCAP && !HAS_ALIBI)
#if LEAN_SOFTMAX
#define softmax_exp2 exp2_ftz
#else
#define softmax_exp2 native_exp2
#endif

/* Key block 8nb of a score tile as base-2 logits (FOLD_SCALE: as raw scores): scale,
 * softcap, ALiBi and, where `masked`, the visibility of keys j0, j0 + 1 for rows a (x, y)
 * and b (z, w). The kernel calls it with a literal `masked`, so the tiles that every row
 * of a warp sees whole run without the comparisons (FlashAttention applies masks on
 * boundary tiles only). */
inline float4 base2_logits(float4 s, const attn_params p, float scale_log2, float slope, int j0,
                           int rel_a, int rel_b, int lo_a, int end_a, int lo_b, int end_b,
                           bool masked)
{
    float4 x;
#if HAS_SOFTCAP || HAS_ALIBI
    (void)scale_log2;
    x = s * p.scale;
    x = (float4)(adjust_score(x.x, p.softcap, slope, rel_a), adjust_score(x.y, p.softcap, slope, rel_a - 1),
                 adjust_score(x.z, p.softcap, slope, rel_b), adjust_score(x.w, p.softcap, slope, rel_b - 1)) *
        LOG2E;
#else
    (void)p, (void)slope, (void)rel_a, (void)rel_b;
#if FOLD_SCALE
    (void)scale_log2;
    x = s;
#else
    x = s * scale_log2;
#endif
#endif
    if (masked) {
        const int j1 = j0 + 1;
        x.x = j0 >= lo_a && j0 < end_a ? x.x : -INFINITY;
        x.y = j1 >= lo_a && j1 < end_a ? x.y : -INFINITY;
        x.z = j0 >= lo_b && j0 < end_b ? x.z : -INFINITY;
        x.w = j1 >= lo_b && j1 < end_b ? x.w : -INFINITY;
    }
    return x;
}

/* 2^(logit - max) of a score block's rows a (x, y) and b (z, w), from base2_logits'
 * values and the rows' maxima (base-2 logits); one special-function instruction each on
 * NVIDIA (ex2.approx, relative error near 2^-22), far inside the tolerance of fp16/bf16
 * results. */
inline float4 probabilities(float4 x, float scale_log2, float max_a, float max_b)
{
#if FOLD_SCALE
    return (float4)(softmax_exp2(fma(x.x, scale_log2, -max_a)), softmax_exp2(fma(x.y, scale_log2, -max_a)),
                    softmax_exp2(fma(x.z, scale_log2, -max_b)), softmax_exp2(fma(x.w, scale_log2, -max_b)));
#else
    (void)scale_log2;
    return (float4)(softmax_exp2(x.x - max_a), softmax_exp2(x.y - max_a), softmax_exp2(x.z - max_b),
                    softmax_exp2(x.w - max_b));
#endif
}

/* Two adjacent 16-bit values of q as one operand register (zeros outside the matrix). */
inline uint load_q_pair(__global const ushort *q_seq, long q_ss, int row, int sq, int c)
{
    if (row >= sq) return 0u;
    __global const ushort *r = q_seq + (long)row * q_ss;
    const uint lo = c < HEAD_DIM ? r[c] : 0u;
    const uint hi = c + 1 < HEAD_DIM ? r[c + 1] : 0u;
    return lo | (hi << 16);
}

/* This lane's q operands of the row block at row0 (each warp's M_TILES 16-row tiles, rows
 * g and g + 8), for the whole key loop where q stays in registers. Always inlined: the
 * array stays in registers. */
inline __attribute__((always_inline)) void load_q_operands(uint4 (*qa)[K_STEPS], __global const ushort *q_seq,
                                                           long q_ss, int row0, int sq)
{
    const int g = warp_lane() >> 2, t = warp_lane() & 3;
MMA_UNROLL
    for (int mt = 0; mt < M_TILES; ++mt) {
        const int ra = row0 + (warp_index() * M_TILES + mt) * 16 + g, rb = ra + 8;
MMA_UNROLL
        for (int ks = 0; ks < K_STEPS; ++ks) {
            const int c = ks * 16 + 2 * t;
            qa[mt][ks] = (uint4)(load_q_pair(q_seq, q_ss, ra, sq, c), load_q_pair(q_seq, q_ss, rb, sq, c),
                                 load_q_pair(q_seq, q_ss, ra, sq, c + 8), load_q_pair(q_seq, q_ss, rb, sq, c + 8));
        }
    }
}

/* Q_AHEAD (the Hopper kernel with q in registers): a row block's q is loaded while the
 * block before it finishes (after its last scores, before its last p.v and its output),
 * so that a work-group with several row blocks (plan.c, blocks_per_group) does not wait
 * the loads' latency at each block's start: about 2.4 us under load on the H200, where
 * the copier has the block's first k and v in place already (run 144, docs/PERFORMANCE.md). */
#define Q_AHEAD (WGMMA && !Q_STAGED)

#if WGMMA
/* (The helpers below take the kernel's register arrays by pointer: always inlined, so
 * that the arrays stay in registers.) */

/* The score registers of a tile's 64-key halves after the first: tied to the fence or
 * wait next to it, as wg_hold_rest does for the accumulators. */
inline __attribute__((always_inline)) void wg_hold_scores_rest(float4 *s)
{
MMA_UNROLL
    for (int kh = 1; kh < KEY_HALVES; ++kh) wg_hold(s + 8 * kh);
}

/* Issue a warpgroup's scores s (its 64 rows x BLOCK_N keys) = q k^T, one product per 16
 * dims and 64 keys, after a fence: q from registers (qa, Q_REGS) or from its slice of
 * q_tile; k_cur a key tile. The caller commits and waits, then wg_hold_scores_rest. */
inline __attribute__((always_inline)) void wg_issue_scores(float4 *s, uint4 *qa, __local const ushort *q_wg,
                            __local const ushort *k_cur, __local float *scratch)
{
MMA_UNROLL
    for (int nb = 0; nb < N_BLOCKS; ++nb) s[nb] = (float4)(0.0f);
#if Q_REGS
MMA_UNROLL
    for (int ks = 0; ks < K_STEPS; ++ks) wg_hold_a(&qa[ks]);
#endif
    wg_hold_scores_rest(s);
    wg_fence(s);
MMA_UNROLL
    for (int kh = 0; kh < KEY_HALVES; ++kh)
MMA_UNROLL
        for (int ks = 0; ks < K_STEPS; ++ks) {
#if Q_REGS
            (void)q_wg;
            wg_mma_rs_kmajor(s + 8 * kh, qa[ks], k_cur + TILE_AT(64 * kh, 16 * ks), WG_KMAJOR_LBO(D_PAD),
                             WG_KMAJOR_SBO(D_PAD), scratch);
#else
            (void)qa;
            wg_mma_ss(s + 8 * kh, q_wg + TILE_AT(0, 16 * ks), WG_KMAJOR_LBO(D_PAD), WG_KMAJOR_SBO(D_PAD),
                      k_cur + TILE_AT(64 * kh, 16 * ks), WG_KMAJOR_LBO(D_PAD), WG_KMAJOR_SBO(D_PAD), scratch);
#endif
        }
}

/* Issue acc += p v for a key tile after a fence: p as the A operands of its 16-key
 * steps (pa), v_cur as the MN-major operand, D_PAD / 64 accumulator chunks. The
 * caller commits and waits, then wg_hold_rest(acc) ties the other chunks to the wait. */
inline __attribute__((always_inline)) void wg_issue_pv(float4 *acc, uint4 *pa, __local const ushort *v_cur,
                        __local float *scratch)
{
MMA_UNROLL
    for (int kk = 0; kk < BLOCK_N / 16; ++kk) wg_hold_a(&pa[kk]);
MMA_UNROLL
    for (int ch = 1; ch < D_BLOCKS / 8; ++ch) wg_hold(acc + 8 * ch);
    wg_fence(acc);
MMA_UNROLL
    for (int ch = 0; ch < D_BLOCKS / 8; ++ch)
MMA_UNROLL
        for (int kk = 0; kk < BLOCK_N / 16; ++kk)
            wg_mma_rs_mnmajor(acc + 8 * ch, pa[kk], v_cur + TILE_AT(16 * kk, 64 * ch),
                              WG_MNMAJOR_LBO(D_PAD), WG_MNMAJOR_SBO(D_PAD), scratch);
}

inline __attribute__((always_inline)) void wg_hold_rest(float4 *acc)
{
MMA_UNROLL
    for (int ch = 1; ch < D_BLOCKS / 8; ++ch) wg_hold(acc + 8 * ch);
}

/* After the wait for p.v: p's registers, which the products read while in flight, are
 * tied to the wait, so that the compiler cannot give them to the next tile's p before it
 * (PTX ISA: the A registers of a wgmma stay untouched until its wait). */
inline __attribute__((always_inline)) void wg_keep_p(uint4 *pa)
{
MMA_UNROLL
    for (int kk = 0; kk < BLOCK_N / 16; ++kk) wg_hold_a(&pa[kk]);
}

/* The A operands of p.v from a score tile's probabilities (the C layout of two 8-key
 * blocks is the A layout of one 16-key step). */
inline __attribute__((always_inline)) void wg_pack_p(const float4 *s, uint4 *pa)
{
MMA_UNROLL
    for (int kk = 0; kk < BLOCK_N / 16; ++kk) {
        const float4 p0 = s[2 * kk], p1 = s[2 * kk + 1];
        pa[kk] = (uint4)(pack_pair(p0.x, p0.y), pack_pair(p0.z, p0.w), pack_pair(p1.x, p1.y),
                         pack_pair(p1.z, p1.w));
    }
}

#define FWD_MMA_KERNEL attn_fwd_wgmma
#else
#define FWD_MMA_KERNEL attn_fwd_mma
#endif

__kernel __attribute__((reqd_work_group_size(KERNEL_ITEMS, 1, 1))) void FWD_MMA_KERNEL(
    __global const storage_t *q, __global const storage_t *k, __global const storage_t *v,
    __global storage_t *o, __global float *lse, __global const int *cu_q,
    __global const int *cu_k, __global const int *seqused, __global const float *alibi, __global float *probs,
    const attn_params p
#if WS_TMA
    , __global const ulong *tensor_maps /* q, k, v: tma_maps_fill's */
#endif
    )
{
    __local ushort k_tile[KV_BUFS * TILE_ELEMS] __attribute__((aligned(TILE_ALIGN)));
    __local ushort v_tile[KV_BUFS * TILE_ELEMS] __attribute__((aligned(TILE_ALIGN)));
#if Q_STAGED
    /* the group's q rows (a 64-row slice per warpgroup, 16 * M_TILES rows per warp) */
    __local ushort q_tile[BLOCK_M * (TILE_ELEMS / BLOCK_N)] __attribute__((aligned(TILE_ALIGN)));
#endif
    __local float scratch[SCRATCH_FLOATS];

    const int h = get_group_id(1);
    const int b = get_group_id(2);
    const int g = warp_lane() >> 2, t = warp_lane() & 3;
    const seq_extent e = sequence_extent(cu_q, cu_k, seqused, b, p);
    const int off = p.align_top_left ? 0 : e.sk - e.sq;
    const int kv_head = h / p.group;
    (void)probs;
    __global const ushort *q_seq = (__global const ushort *)(q + view_index(p.q_off, p.q_sb, p.q_ss, p.q_sh, b, e.q_start, h));
    __global const ushort *k_seq = (__global const ushort *)(k + view_index(p.k_off, p.k_sb, p.k_ss, p.k_sh, b, e.k_start, kv_head));
    __global const ushort *v_seq = (__global const ushort *)(v + view_index(p.v_off, p.v_sb, p.v_ss, p.v_sh, b, e.k_start, kv_head));
    const float slope = alibi_slope(alibi, p, b, h);
#if WS_COPIER
    __local ulong ws_bars[WS_BARS];
    {
        const int i = get_local_id(0);
        /* full: the copier's work-items (with WS_TMA the one expect_tx); empty (and q's): one
         * arrival per computing warp */
        const bool full = i < KV_BUFS || (i >= WS_V_FULL && i < WS_V_EMPTY) || i == WS_Q_FULL;
        const uint fillers = WS_TMA ? 1u : (uint)WS_COPIER_ITEMS; /* expect_tx, or each cp.async */
        if (i < WS_BARS) mbar_init(ws_bars + i, full ? fillers : (uint)(GROUP_SIZE / 32));
        mbar_init_fence();
        barrier(CLK_LOCAL_MEM_FENCE); /* the last work-group barrier: the copier leaves early */
    }
    if (get_local_id(0) >= GROUP_SIZE) {
#if WARPGROUPS == 2
        asm volatile("// FACL_SM90A setmaxnreg.dec.sync.aligned.u32 " WS_COPIER_REGS ";" ::: "memory");
#endif
#if !Q_STAGED
        __local ushort *q_tile = 0;
#endif
#if !WS_TMA
        __global const ulong *tensor_maps = 0;
#endif
        ws_copy_all(e, p, off, h, kv_head, b, q_seq, k_seq, v_seq, tensor_maps, k_tile, v_tile, q_tile, ws_bars);
        return;
    }
#if WARPGROUPS == 2
    asm volatile("// FACL_SM90A_ENTRY .maxnreg " WS_ENTRY_REGS "\n"
                 "// FACL_SM90A setmaxnreg.inc.sync.aligned.u32 " WS_MMA_REGS ";" ::: "memory");
#endif
    uint ws_tiles = 0; /* key tiles of the earlier row blocks: the buffers' fills so far */
    uint ws_blocks = 0;
    ws_turn_start();
#endif

    /* A group's row blocks in row_block_at's order (every block of a sequence longer than
     * the launch planned for included, as on the portable paths). The bound is the same
     * for the whole group, so every barrier and warp operation below is reached by all of
     * its work-items. */
    const int row_blocks = (e.sq + BLOCK_M - 1) / BLOCK_M;
#if !Q_STAGED
    uint4 qa[M_TILES][K_STEPS];
#if Q_AHEAD
    if (row_blocks > 0) load_q_operands(qa, q_seq, p.q_ss, row_block_at(0, row_blocks) * BLOCK_M, e.sq);
#endif
#endif
    for (int bi = 0;; ++bi) {
        const int blk = row_block_at(bi, row_blocks);
        if (blk < 0) break;
        const int row0 = blk * BLOCK_M;
        /* This lane's rows: in each of the warp's M_TILES 16-row tiles, C-operand rows g
         * ("a") and g + 8 ("b"). */
        int row_a[M_TILES], row_b[M_TILES], lo_a[M_TILES], lo_b[M_TILES], end_a[M_TILES], end_b[M_TILES];
MMA_UNROLL
        for (int mt = 0; mt < M_TILES; ++mt) {
            row_a[mt] = row0 + (warp_index() * M_TILES + mt) * 16 + g;
            row_b[mt] = row_a[mt] + 8;
            lo_a[mt] = visible_lo(row_a[mt] + off, p.window_left, e.sk);
            lo_b[mt] = visible_lo(row_b[mt] + off, p.window_left, e.sk);
            end_a[mt] = visible_end(row_a[mt] + off, p.window_right, e.sk);
            end_b[mt] = visible_end(row_b[mt] + off, p.window_right, e.sk);
        }
        /* The keys every row of each of this warp's 16-row tiles sees: from the last
         * row's first visible key to the first row's last (both bounds grow with the
         * row). A key tile inside them needs no mask. */
        int whole_lo[M_TILES], whole_end[M_TILES];
MMA_UNROLL
        for (int mt = 0; mt < M_TILES; ++mt) {
            const int first = row0 + (warp_index() * M_TILES + mt) * 16;
            whole_lo[mt] = visible_lo(first + 15 + off, p.window_left, e.sk);
            whole_end[mt] = visible_end(first + off, p.window_right, e.sk);
        }
        const float scale_log2 = p.scale * LOG2E;

        /* Keys some row of the group can see; the same for all work-items, so every
         * barrier and warp operation below is reached by the whole group. */
        const int last_row = min(row0 + BLOCK_M, e.sq) - 1;
        const int block_lo = visible_lo(row0 + off, p.window_left, e.sk);
        const int block_end = visible_end(last_row + off, p.window_right, e.sk);

        float4 acc[M_TILES][D_BLOCKS];
        float m_a[M_TILES], m_b[M_TILES]; /* running maxima, base-2 logits (the same in all 4 lanes of a quad) */
        float l_a[M_TILES], l_b[M_TILES]; /* this lane's part of the normalisers */
#if !Q_STAGED && !Q_AHEAD
        load_q_operands(qa, q_seq, p.q_ss, row0, e.sq);
#endif
MMA_UNROLL
        for (int mt = 0; mt < M_TILES; ++mt) {
MMA_UNROLL
            for (int db = 0; db < D_BLOCKS; ++db) acc[mt][db] = (float4)(0.0f);
            m_a[mt] = m_b[mt] = -INFINITY;
            l_a[mt] = l_b[mt] = 0.0f;
        }

        /* k of the first tile in flight; each step then fetches its own v while it
         * computes the scores and the next step's k during the softmax and p.v (one tile
         * of each), with FlashAttention 2's two barriers per step: one once k has landed
         * (every warp is then done with v_tile too), one once v has landed (every warp is
         * done with k_tile). The copy groups are committed in the same order by every
         * work-item, also when empty. */
#if WS_COPIER
#if Q_STAGED
        mbar_wait(ws_bars + WS_Q_FULL, ws_blocks & 1u); /* this row block's q */
        wg_proxy_fence();
#endif
#else
#if Q_STAGED
        /* the previous row block's products are done with q_tile (its last scores came
         * before a barrier); committed with the first k tile, so waited for with it */
        stage_rows(q_seq, p.q_ss, row0, e.sq, BLOCK_M, q_tile);
#endif
        if (block_lo < block_end) {
            stage_rows(k_seq, p.k_ss, block_lo, block_end, BLOCK_N, k_tile);
#if KV_STAGES == 2
            stage_rows(v_seq, p.v_ss, block_lo, block_end, BLOCK_N, v_tile); /* and its v */
#endif
        }
        async_commit();
#if WG_PIPE == 3
        /* a second group ahead: k of the next tile, v of the first */
        if (block_lo + BLOCK_N < block_end)
            stage_rows(k_seq, p.k_ss, block_lo + BLOCK_N, block_end, BLOCK_N, k_tile + TILE_ELEMS);
        if (block_lo < block_end) stage_rows(v_seq, p.v_ss, block_lo, block_end, BLOCK_N, v_tile);
        async_commit();
#endif
#endif /* !WS_COPIER */
#if WG_PIPE
        /* At tile j the products of the scores of j and of p.v of tile j - 1 are issued
         * as one batch and waited for together, so that the tensor cores run them back to
         * back while the other warpgroup computes its softmax. WG_PIPE k and v tiles
         * cycle: tile j's k and j - 1's v are read while the copies of k of
         * j + WG_PIPE - 1 and v of j + WG_PIPE - 2 are in flight, so one barrier per tile
         * suffices. */
        uint4 pa_prev[BLOCK_N / 16];
#endif
#if WG_PIPE || KV_STAGES == 2
        int step = 0; /* the tile's index in this row block */
#endif
        for (int tile0 = block_lo; tile0 < block_end; tile0 += BLOCK_N) {
#if WS_COPIER
            /* fill n of the buffers holds tile n (counted over the row blocks) */
            const uint n = ws_tiles + step;
            __local ushort *k_cur = k_tile + (n % KV_BUFS) * TILE_ELEMS;
            __local ushort *v_prev = v_tile + ((n + KV_BUFS - 1) % KV_BUFS) * TILE_ELEMS;
            const bool has_prev = step > 0;
            ws_wait_filled(ws_bars + WS_K_FULL, n);
            if (has_prev) ws_wait_filled(ws_bars + WS_V_FULL, n - 1);
            wg_proxy_fence();
#elif WG_PIPE
            __local ushort *k_cur = k_tile + (step % WG_PIPE) * TILE_ELEMS;
            __local ushort *v_prev = v_tile + ((step + WG_PIPE - 1) % WG_PIPE) * TILE_ELEMS;
            const bool has_prev = step > 0;
#if WG_PIPE == 3
            ASYNC_WAIT(1); /* k of this tile, v of the previous have landed (not the newest) */
#else
            ASYNC_WAIT(0); /* k of this tile, v of the previous have landed */
#endif
            TILES_LANDED();
            barrier(CLK_LOCAL_MEM_FENCE); /* everyone's; and every product reading the
                                           * buffers refilled below has been waited for */
            {
                const int k_ahead = tile0 + (WG_PIPE - 1) * BLOCK_N, v_ahead = tile0 + (WG_PIPE - 2) * BLOCK_N;
                if (v_ahead < block_end)
                    stage_rows(v_seq, p.v_ss, v_ahead, block_end, BLOCK_N,
                               v_tile + ((step + WG_PIPE - 2) % WG_PIPE) * TILE_ELEMS);
                if (k_ahead < block_end)
                    stage_rows(k_seq, p.k_ss, k_ahead, block_end, BLOCK_N,
                               k_tile + ((step + WG_PIPE - 1) % WG_PIPE) * TILE_ELEMS);
            }
            async_commit();
#elif KV_STAGES == 2
            /* tile j in buffers j % 2: once its copies have landed and every warp is done
             * with tile j - 1, the copies of tile j + 1 go into the other buffers */
            __local ushort *k_cur = k_tile + (step & 1) * TILE_ELEMS;
            __local ushort *v_cur = v_tile + (step & 1) * TILE_ELEMS;
            ASYNC_WAIT(0);                /* this work-item's copies of k and v have landed */
            barrier(CLK_LOCAL_MEM_FENCE); /* ... and everyone's; every warp is done with the
                                           * previous tile's buffers */
            if (tile0 + BLOCK_N < block_end) {
                __local ushort *k_next = k_tile + ((step + 1) & 1) * TILE_ELEMS;
                __local ushort *v_next = v_tile + ((step + 1) & 1) * TILE_ELEMS;
                stage_rows(k_seq, p.k_ss, tile0 + BLOCK_N, block_end, BLOCK_N, k_next);
                stage_rows(v_seq, p.v_ss, tile0 + BLOCK_N, block_end, BLOCK_N, v_next);
            }
            async_commit();
            step++;
#else
            __local ushort *k_cur = k_tile;
            __local ushort *v_cur = v_tile;
            ASYNC_WAIT(0);                /* this work-item's copies of k have landed */
            TILES_LANDED();
            barrier(CLK_LOCAL_MEM_FENCE); /* ... and everyone's; every p.v of the last step
                                           * is done with v_tile */
            stage_rows(v_seq, p.v_ss, tile0, block_end, BLOCK_N, v_tile);
            async_commit();
#endif

            /* Scores: s[mt][nb] covers keys tile0 + 8nb .. + 7 of rows a (x, y) and b (z, w).
             * Each k operand read from local memory feeds the M_TILES row tiles. */
            float4 s[M_TILES][N_BLOCKS];
#if WGMMA
            /* the warpgroup's 64 x 64 scores; this warp keeps its 16 rows' share in
             * mma.sync's C layout */
#if Q_REGS
            uint4 *q_ops = qa[0];
            __local const ushort *q_wg = 0;
#else
            uint4 *q_ops = 0;
            __local const ushort *q_wg = q_tile + 64 * D_PAD * (warp_index() >> 2);
#endif
            ws_turn_wait();
            wg_issue_scores(s[0], q_ops, q_wg, k_cur, scratch);
#if WG_PIPE
            if (has_prev) wg_issue_pv(acc[0], pa_prev, v_prev, scratch);
            wg_commit();
            ws_turn_pass();
            /* Both products are waited for before the softmax. Waiting only for the scores
             * and letting p.v run under the softmax (FlashAttention 3's overlap within a
             * warpgroup) computed wrong outputs (H200, runs 90-91): the tensor cores read
             * p's registers until the wait, but ptxas ends their life at the last product
             * that names them and gave them to the softmax (the machine code of the
             * driver's PTX, tools/wgmma_hazards.py). */
            wg_wait_all(s[0]);
            wg_hold_scores_rest(s[0]);
            wg_hold(acc[0]);
            wg_hold_rest(acc[0]);
            wg_keep_p(pa_prev);
#if WS_COPIER
            ws_release(ws_bars + WS_K_EMPTY + n % KV_BUFS); /* k of this tile is read */
            if (has_prev) ws_release(ws_bars + WS_V_EMPTY + (n - 1) % KV_BUFS); /* v of the last */
#endif
#else
            wg_commit_wait(s[0]);
            wg_hold_scores_rest(s[0]);
#endif
#elif Q_LOCAL
            /* k-steps outermost: each q fragment is read once per tile from local memory
             * and serves every key block */
            __local const ushort *q_warp = q_tile + warp_index() * M_TILES * 16 * K_PITCH;
MMA_UNROLL
            for (int nb = 0; nb < N_BLOCKS; ++nb)
MMA_UNROLL
                for (int mt = 0; mt < M_TILES; ++mt) s[mt][nb] = (float4)(0.0f);
MMA_UNROLL
            for (int ks = 0; ks < K_STEPS; ks += 2) {
                const bool two = ks + 1 < K_STEPS;
                uint4 qf[M_TILES][2];
MMA_UNROLL
                for (int mt = 0; mt < M_TILES; ++mt) {
                    qf[mt][0] = mma_a_fragment(q_warp + mt * 16 * K_PITCH, K_PITCH, ks);
                    qf[mt][1] = two ? mma_a_fragment(q_warp + mt * 16 * K_PITCH, K_PITCH, ks + 1) : qf[mt][0];
                }
MMA_UNROLL
                for (int nb = 0; nb < N_BLOCKS; ++nb) {
                    uint2 kb[2];
                    mma_key_fragments(k_cur, K_PITCH, nb, ks, two, kb);
MMA_UNROLL
                    for (int mt = 0; mt < M_TILES; ++mt) {
                        s[mt][nb] = warp_mma(s[mt][nb], qf[mt][0], kb[0], scratch);
                        if (two) s[mt][nb] = warp_mma(s[mt][nb], qf[mt][1], kb[1], scratch);
                    }
                }
            }
#else
MMA_UNROLL
            for (int nb = 0; nb < N_BLOCKS; ++nb) {
MMA_UNROLL
                for (int mt = 0; mt < M_TILES; ++mt) s[mt][nb] = (float4)(0.0f);
MMA_UNROLL
                for (int ks = 0; ks < K_STEPS; ks += 2) {
                    uint2 kb[2];
                    mma_key_fragments(k_cur, K_PITCH, nb, ks, ks + 1 < K_STEPS, kb);
MMA_UNROLL
                    for (int mt = 0; mt < M_TILES; ++mt) {
                        s[mt][nb] = warp_mma(s[mt][nb], qa[mt][ks], kb[0], scratch);
                        if (ks + 1 < K_STEPS) s[mt][nb] = warp_mma(s[mt][nb], qa[mt][ks + 1], kb[1], scratch);
                    }
                }
            }
#endif
#if !WG_PIPE && KV_STAGES == 1
            ASYNC_WAIT(0);                /* this work-item's copies of v have landed */
            TILES_LANDED();
            barrier(CLK_LOCAL_MEM_FENCE); /* ... and everyone's; every warp is done with
                                           * k_tile: refill it */
            if (tile0 + BLOCK_N < block_end)
                stage_rows(k_seq, p.k_ss, tile0 + BLOCK_N, block_end, BLOCK_N, k_tile);
            async_commit();
#endif

MMA_UNROLL
            for (int mt = 0; mt < M_TILES; ++mt) {
                const int ra = row_a[mt], rb = row_b[mt];
                /* Scale, softcap, ALiBi and (on boundary tiles) masks, then the tile maxima
                 * of both rows. */
                float tmax_a = -INFINITY, tmax_b = -INFINITY;
                const bool whole = tile0 >= whole_lo[mt] && tile0 + BLOCK_N <= whole_end[mt];
                if (whole) {
MMA_UNROLL
                    for (int nb = 0; nb < N_BLOCKS; ++nb) {
                        const int j0 = tile0 + nb * 8 + 2 * t;
                        s[mt][nb] = base2_logits(s[mt][nb], p, scale_log2, slope, j0, ra + off - j0,
                                                 rb + off - j0, 0, 0, 0, 0, false);
                    }
                } else {
MMA_UNROLL
                    for (int nb = 0; nb < N_BLOCKS; ++nb) {
                        const int j0 = tile0 + nb * 8 + 2 * t;
                        s[mt][nb] = base2_logits(s[mt][nb], p, scale_log2, slope, j0, ra + off - j0,
                                                 rb + off - j0, lo_a[mt], end_a[mt], lo_b[mt],
                                                 end_b[mt], true);
                    }
                }
MMA_UNROLL
                for (int nb = 0; nb < N_BLOCKS; ++nb) {
                    tmax_a = fmax(tmax_a, fmax(s[mt][nb].x, s[mt][nb].y));
                    tmax_b = fmax(tmax_b, fmax(s[mt][nb].z, s[mt][nb].w));
                }
                /* The running maxima move only when a score exceeds them by more than
                 * MAX_SLACK, so that in most tiles no row of a warp moves and the warp skips
                 * the rescale of its accumulators (below). */
#if FOLD_SCALE
                const float tile_a = quad_max(tmax_a, scratch) * scale_log2;
                const float tile_b = quad_max(tmax_b, scratch) * scale_log2;
#else
                const float tile_a = quad_max(tmax_a, scratch), tile_b = quad_max(tmax_b, scratch);
#endif
                const float mnew_a = tile_a > m_a[mt] + MAX_SLACK ? tile_a : m_a[mt];
                const float mnew_b = tile_b > m_b[mt] + MAX_SLACK ? tile_b : m_b[mt];
                const bool moved = mnew_a != m_a[mt] || mnew_b != m_b[mt];
                /* A row that has seen no key yet keeps max -inf: subtract 0 instead, so that
                 * 2^-inf = 0 everywhere and no inf - inf appears. */
                const float base_a = mnew_a == -INFINITY ? 0.0f : mnew_a;
                const float base_b = mnew_b == -INFINITY ? 0.0f : mnew_b;
                const float alpha_a = softmax_exp2(m_a[mt] - base_a), alpha_b = softmax_exp2(m_b[mt] - base_b);
                m_a[mt] = mnew_a;
                m_b[mt] = mnew_b;
                l_a[mt] *= alpha_a;
                l_b[mt] *= alpha_b;
                if (warp_any(moved)) /* else every alpha of the warp is 2^0 = 1 */
MMA_UNROLL
                    for (int db = 0; db < D_BLOCKS; ++db)
                        acc[mt][db] *= (float4)(alpha_a, alpha_a, alpha_b, alpha_b);

                /* Probabilities; l sums them before dropout, p.v uses them after (docs/CONTRACT.md). */
MMA_UNROLL
                for (int nb = 0; nb < N_BLOCKS; ++nb) {
                    float4 pr = probabilities(s[mt][nb], scale_log2, base_a, base_b);
                    l_a[mt] += pr.x + pr.y;
                    l_b[mt] += pr.z + pr.w;
    #if HAS_DROPOUT
                    const int j0 = tile0 + nb * 8 + 2 * t;
                    pr.x = dropout_keep(p.seed_lo, p.seed_hi, p.drop_offset, b, p.heads_q, h, ra, j0, p.drop_threshold) ? pr.x * p.drop_scale : 0.0f;
                    pr.y = dropout_keep(p.seed_lo, p.seed_hi, p.drop_offset, b, p.heads_q, h, ra, j0 + 1, p.drop_threshold) ? pr.y * p.drop_scale : 0.0f;
                    pr.z = dropout_keep(p.seed_lo, p.seed_hi, p.drop_offset, b, p.heads_q, h, rb, j0, p.drop_threshold) ? pr.z * p.drop_scale : 0.0f;
                    pr.w = dropout_keep(p.seed_lo, p.seed_hi, p.drop_offset, b, p.heads_q, h, rb, j0 + 1, p.drop_threshold) ? pr.w * p.drop_scale : 0.0f;
    #endif
                    s[mt][nb] = pr;
                }
            }

#if WG_PIPE
            wg_pack_p(s[0], pa_prev); /* p.v issued with the next tile's scores */
            step++;
#else
#if WGMMA
            /* acc += p.v per 16 keys and 64 dims, p from the score registers */
            {
                uint4 pa[BLOCK_N / 16];
                wg_pack_p(s[0], pa);
                wg_issue_pv(acc[0], pa, v_tile, scratch);
                wg_commit_wait(acc[0]);
                wg_hold_rest(acc[0]);
            }
#else
            /* acc += p.v: the C layout of two adjacent key blocks is the A layout of one
             * 16-key step; each v operand feeds the M_TILES row tiles. */
MMA_UNROLL
            for (int kk = 0; kk < BLOCK_N / 16; ++kk) {
                uint4 pa[M_TILES];
MMA_UNROLL
                for (int mt = 0; mt < M_TILES; ++mt) {
                    const float4 p0 = s[mt][2 * kk], p1 = s[mt][2 * kk + 1];
                    pa[mt] = (uint4)(pack_pair(p0.x, p0.y), pack_pair(p0.z, p0.w),
                                     pack_pair(p1.x, p1.y), pack_pair(p1.z, p1.w));
                }
MMA_UNROLL
                for (int db = 0; db < D_BLOCKS; db += 2) { /* D_BLOCKS is even: D_PAD % 16 == 0 */
                    uint2 vb[2];
                    mma_value_fragments(v_cur + kk * 16 * K_PITCH, K_PITCH, db, vb);
MMA_UNROLL
                    for (int h2 = 0; h2 < 2; ++h2)
MMA_UNROLL
                        for (int mt = 0; mt < M_TILES; ++mt)
                            acc[mt][db + h2] = warp_mma(acc[mt][db + h2], pa[mt], vb[h2], scratch);
                }
            }
#endif
#endif /* !WG_PIPE */
        }
#if Q_AHEAD
        { /* every score of this block is in: the next block's q (row_block_at) */
            const int next = row_block_at(bi + 1, row_blocks);
            if (next >= 0) load_q_operands(qa, q_seq, p.q_ss, next * BLOCK_M, e.sq);
        }
#endif
#if WS_COPIER
        if (block_lo < block_end) { /* p.v of the last tile */
            const uint last = ws_tiles + step - 1;
            ws_wait_filled(ws_bars + WS_V_FULL, last);
            wg_proxy_fence();
            wg_issue_pv(acc[0], pa_prev, v_tile + (last % KV_BUFS) * TILE_ELEMS, scratch);
            wg_commit_wait(acc[0]);
            wg_hold_rest(acc[0]);
            wg_keep_p(pa_prev);
            ws_release(ws_bars + WS_V_EMPTY + last % KV_BUFS);
        }
        ws_tiles += step;
#if Q_STAGED
        /* every score of the row block is read. (Released after the block's last scores
         * instead, so that the copier could fetch the next block's q during its last p.v
         * and output, it ran 1-6% slower at d = 256: run 149, docs/PERFORMANCE.md.) */
        ws_release(ws_bars + WS_Q_EMPTY);
#endif
        ws_blocks++;
#elif WG_PIPE
        if (block_lo < block_end) { /* p.v of the last tile */
            ASYNC_WAIT(0);
            TILES_LANDED();
            barrier(CLK_LOCAL_MEM_FENCE);
            wg_issue_pv(acc[0], pa_prev, v_tile + ((step + WG_PIPE - 1) % WG_PIPE) * TILE_ELEMS,
                        scratch);
            wg_commit_wait(acc[0]);
            wg_hold_rest(acc[0]);
            wg_keep_p(pa_prev);
        }
#endif
#if Q_STAGED
        ASYNC_WAIT(0); /* q's copies, where no key tile waited for them, land before the next */
#endif
#if O_STAGED
        /* This warp's rows of q_tile take its output. q's copies were spread over the
         * whole group: where no key tile's barrier followed them, wait for everyone's. */
        if (block_lo >= block_end) barrier(CLK_LOCAL_MEM_FENCE);
        __local ushort *o_warp = q_tile + warp_index() * M_TILES * 16 * K_PITCH;
        warp_sync(); /* every lane of the warp is done reading its q rows */
#endif

MMA_UNROLL
        for (int mt = 0; mt < M_TILES; ++mt) {
            const int ra = row_a[mt], rb = row_b[mt];
            const float sum_a = quad_sum(l_a[mt], scratch), sum_b = quad_sum(l_b[mt], scratch);
            const float inv_a = sum_a > 0.0f ? 1.0f / sum_a : 0.0f;
            const float inv_b = sum_b > 0.0f ? 1.0f / sum_b : 0.0f;
#if O_STAGED
MMA_UNROLL
            for (int db = 0; db < D_BLOCKS; ++db) {
                __local ushort *at = o_warp + (mt * 16 + g) * K_PITCH + db * 8 + 2 * t;
                *(__local uint *)at = pack_pair(acc[mt][db].x * inv_a, acc[mt][db].y * inv_a);
                *(__local uint *)(at + 8 * K_PITCH) = pack_pair(acc[mt][db].z * inv_b, acc[mt][db].w * inv_b);
            }
#elif O_QUADS
            const long o_a = view_index(p.o_off, p.o_sb, p.o_ss, p.o_sh, b, e.q_start + ra, h);
            const long o_b = view_index(p.o_off, p.o_sb, p.o_ss, p.o_sh, b, e.q_start + rb, h);
MMA_UNROLL
            for (int db0 = 0; db0 < D_BLOCKS; db0 += 4) {
                uint va[4], vb[4];
MMA_UNROLL
                for (int j = 0; j < 4; ++j) {
                    va[j] = pack_pair(acc[mt][db0 + j].x * inv_a, acc[mt][db0 + j].y * inv_a);
                    vb[j] = pack_pair(acc[mt][db0 + j].z * inv_b, acc[mt][db0 + j].w * inv_b);
                }
                const uint4 wa = quad_transpose(va, scratch), wb = quad_transpose(vb, scratch);
                const int c = (db0 + t) * 8; /* HEAD_DIM % 8 == 0: all of the piece or none */
                if (c < HEAD_DIM && ra < e.sq) *(__global uint4 *)((__global ushort *)o + o_a + c) = wa;
                if (c < HEAD_DIM && rb < e.sq) *(__global uint4 *)((__global ushort *)o + o_b + c) = wb;
            }
#else
            const long o_a = view_index(p.o_off, p.o_sb, p.o_ss, p.o_sh, b, e.q_start + ra, h);
            const long o_b = view_index(p.o_off, p.o_sb, p.o_ss, p.o_sh, b, e.q_start + rb, h);
MMA_UNROLL
            for (int db = 0; db < D_BLOCKS; ++db) {
                const int c = db * 8 + 2 * t;
                if (ra < e.sq) store_value_pair(o, o_a, c, acc[mt][db].x * inv_a, acc[mt][db].y * inv_a, O_PAIRS);
                if (rb < e.sq) store_value_pair(o, o_b, c, acc[mt][db].z * inv_b, acc[mt][db].w * inv_b, O_PAIRS);
            }
#endif
            if (lse && t == 0) {
                const long l0 = p.lse_off + b * p.lse_sb + h * p.lse_sh;
                /* the maxima are base-2 logits: back to natural units */
                if (ra < e.sq)
                    lse[l0 + (long)(e.q_start + ra) * p.lse_ss] = sum_a > 0.0f ? m_a[mt] * LN2 + log(sum_a) : INFINITY;
                if (rb < e.sq)
                    lse[l0 + (long)(e.q_start + rb) * p.lse_ss] = sum_b > 0.0f ? m_b[mt] * LN2 + log(sum_b) : INFINITY;
            }
        }
#if O_STAGED
        /* The warp's output rows, 16 bytes per work-item and step, whole rows in turn
         * (HEAD_DIM % 8 == 0 with O_VEC: a piece is all inside the row or all past it). */
        warp_sync(); /* every lane's values are in o_warp */
        {
#define O_PIECES (D_PAD / 8)
            const int warp_row0 = row0 + warp_index() * M_TILES * 16;
MMA_UNROLL
            for (int idx = warp_lane(); idx < M_TILES * 16 * O_PIECES; idx += 32) {
                const int r = idx / O_PIECES, c = (idx % O_PIECES) * 8;
                if (warp_row0 + r < e.sq && c < HEAD_DIM) {
                    const long at = view_index(p.o_off, p.o_sb, p.o_ss, p.o_sh, b, e.q_start + warp_row0 + r, h);
                    *(__global uint4 *)((__global ushort *)o + at + c) = *(__local const uint4 *)(o_warp + r * K_PITCH + c);
                }
            }
#undef O_PIECES
        }
#endif
#if KV_STAGES == 2 || O_STAGED
        /* No barrier follows the last scores of a tile here: slower warps may still read
         * q_tile (for their scores or their output) and the buffers the next row block's
         * first copies go into. */
        barrier(CLK_LOCAL_MEM_FENCE);
#endif
    }
#if WS_COPIER
    ws_turn_end();
#endif
}

#if WS_TMA
/* The forward's tensor maps, completed (host: src/fwd_launch.c, src/tensor_map.h): the
 * host encoded q's, k's and v's with a placeholder address (OpenCL does not tell the
 * host where a buffer lives); here each is copied into `maps` and given its view's
 * address with tensormap.replace, the documented way to change a map's field. The
 * forward, enqueued after this kernel, acquires them (tma_map_acquire). q's stays as
 * encoded (all zeros) where the kernel keeps q in registers (with_q 0). */
typedef struct {
    ulong w[48];
} __attribute__((aligned(64))) tma_templates;

__kernel __attribute__((reqd_work_group_size(64, 1, 1))) void tma_maps_fill(
    __global const uchar *q, __global const uchar *k, __global const uchar *v, __global ulong *maps,
    const tma_templates templates, ulong q_offset, ulong k_offset, ulong v_offset, int with_q)
{
    const int i = get_local_id(0);
    if (i < 48) maps[i] = templates.w[i];
    barrier(CLK_GLOBAL_MEM_FENCE);
    if (i < 3 && (i > 0 || with_q)) {
        __global const uchar *base = i == 0 ? q + q_offset : i == 1 ? k + k_offset : v + v_offset;
        asm volatile("// FACL_SM90A tensormap.replace.tile.global_address.global.b1024.b64 [%0], %1;"
                     :
                     : "l"(maps + 16 * i), "l"((ulong)base)
                     : "memory");
    }
}
#endif
