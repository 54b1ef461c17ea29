/* attn_cache on tensor cores (NVIDIA mma.sync m16n8k16; with MMA_EMULATE=1 the same
 * bookkeeping through local memory, for tests on any device). Replaces attn_cache.cl's
 * kernel of the same name and arguments when the program is built with CACHE_MMA=1;
 * everything else (sequences, cache addressing, rotary, append, combine) is shared.
 *
 * A work-group of CACHE_WARPS warps takes one 16-row tile of the query rows that share a
 * kv head (R = query i * group + head in group, as attn_cache) and one split of their
 * keys. Each step, warp w takes 16 keys (base + 16w ..): S = Q K^T as two 16x8 blocks
 * (8 k-steps of 16 dims for d = 128), masked and scaled in fp32, an online softmax per
 * row, then O += P V with P rounded to the storage type, straight from S's registers (the
 * C layout of two 8-key blocks is the A layout of one 16-key block).
 *
 * Decoding is bound by reading the cache, so the kernel is built around keeping reads in
 * flight: each warp copies its 16 key and value rows straight into its own local tiles
 * with 16-byte asynchronous copies (cp.async: each row by CHUNKS_PER_ROW neighbouring
 * lanes, every sector used once), CACHE_STAGES steps ahead in a ring of tiles, and
 * synchronises only with itself (warp_sync), never with the other warps, until the end.
 * The block table entries of a step are read one step before its copies are issued. Each
 * warp keeps its own softmax state over its keys; the warps' states are merged through
 * local memory at the end (which reuses the tiles).
 *
 * Needs 16-bit storage, HEAD_DIM a multiple of 16 (<= 128, for the accumulators'
 * registers) and aligned rows (ALIGNED_KV); the host plans attn_cache.cl's kernel otherwise.
 * Fragments are read from the tiles with ldmatrix (.trans for values). Fragment layouts,
 * the fragment readers and the copy and ldmatrix primitives: warp_mma.cl.
 */
#if CACHE_MMA

#if HEAD_DIM % 16 != 0 || HEAD_DIM > 128
#error "attn_cache_mma needs HEAD_DIM a multiple of 16, at most 128"
#endif
#define K_STEPS (HEAD_DIM / 16) /* 16-dim blocks of q.k */
#define D_BLOCKS (HEAD_DIM / 8) /* 8-dim blocks of the output */
#define MMA_SCRATCH_FLOATS (MMA_EMULATE ? CACHE_WARPS * MMA_SCRATCH_PER_WARP : 1)
#define CHUNKS_PER_ROW (HEAD_DIM / 8)            /* 16-byte pieces of a row */
#define ROW_LOADS ((16 * CHUNKS_PER_ROW + 31) / 32) /* of a 16-row tile, per lane */
#define TILE_PITCH (HEAD_DIM + 8) /* 16-bit elements; the 16-byte pad spreads banks */
#define TILE_ELEMS (16 * TILE_PITCH)
#ifndef CACHE_WARPS
#define CACHE_WARPS 4
#endif
#ifndef CACHE_STAGES
#define CACHE_STAGES 2
#endif
#ifndef CACHE_BULK
#define CACHE_BULK 0
#endif
/* cache slots a lane holds for one step: its pieces' rows, or with the copy engine the
 * one row (lane % 16) whose k (lanes 0-15) or v (lanes 16-31) copy it issues */
#define ROW_SLOTS (CACHE_BULK ? 1 : ROW_LOADS)
#define ROW_BYTES (HEAD_DIM * 2)
#define STAGE_ELEMS (2 * TILE_ELEMS) /* a warp's key tile, then its value tile */
#define TILES_ELEMS (CACHE_WARPS * CACHE_STAGES * STAGE_ELEMS)
/* fp32 elements between the output rows warps park at the end: the pad of 8 puts a
 * half-warp's 8-byte accesses (rows g = 0..3, dims 2t) on distinct banks; unpadded, rows
 * HEAD_DIM apart, eight lanes shared a bank */
#define OUT_PITCH (HEAD_DIM + 8)
/* GROUP_STORES: every warp parks its rows and the whole work-group sums and stores the
 * tile's output (store_tile_rows); otherwise warps 1.. park theirs and warp 0 sums them
 * into its registers, where a split call's in-kernel merge then finds its own rows. */
#define GROUP_STORES (!SPLIT && CACHE_WARPS > 1)
#define PARKED_WARPS (GROUP_STORES ? CACHE_WARPS : CACHE_WARPS - 1)
#if TILES_ELEMS * 2 < PARKED_WARPS * 16 * OUT_PITCH * 4
#error "the warps' parked output rows must fit in the tiles they reuse"
#endif
/* wait for the oldest of the CACHE_STAGES groups in flight (the count must be a literal) */
#if CACHE_STAGES == 1
#define WAIT_OLDEST_STAGE() ASYNC_WAIT(0)
#elif CACHE_STAGES == 2
#define WAIT_OLDEST_STAGE() ASYNC_WAIT(1)
#elif CACHE_STAGES == 3
#define WAIT_OLDEST_STAGE() ASYNC_WAIT(2)
#elif CACHE_STAGES == 4
#define WAIT_OLDEST_STAGE() ASYNC_WAIT(3)
#else
#error "CACHE_STAGES must be 1 to 4"
#endif

/* Which 16-byte piece of a 16-row tile load `it` of this lane moves: (row, piece in row). */
inline int2 tile_piece(int it)
{
    const int piece = warp_lane() + 32 * it;
    return (int2)(piece / CHUNKS_PER_ROW, piece - piece / CHUNKS_PER_ROW * CHUNKS_PER_ROW);
}

/* A lane's row without a slot (past the keys): its copy is zeros. */
#define NO_SLOT ((int2)(0, -1))

/* The cache slots of the rows this lane loads for keys key0 .. key0 + 15 (NO_SLOT: none),
 * pages unclamped. The block table is read here, one step before the rows themselves, and
 * its entries are first used (clamped) where the rows' copies are issued, so that neither
 * the copies nor the step in between wait for the table. */
inline void tile_slots(__global const int *block_table, const cache_params c, const cache_seq s,
                       int b, int key0, int key_end, int2 *slots)
{
#if CACHE_BULK
    const int j = key0 + (warp_lane() & 15);
    slots[0] = j < key_end ? cache_slot_unclamped(block_table, c, b, s.cache_row, s.kv_begin + j) : NO_SLOT;
    return;
#endif
#if IS_PAGED
    /* 16 whole keys inside one page (power-of-two pages of 16 or more, the usual case):
     * one table entry for the tile instead of one per row */
    const int pos0 = s.kv_begin + key0;
    if (PAGE_SHIFT >= 4 && key0 + 16 <= key_end && (pos0 & (c.page_size - 1)) <= c.page_size - 16) {
        const int2 first = cache_slot_unclamped(block_table, c, b, s.cache_row, pos0);
        MMA_UNROLL
        for (int it = 0; it < ROW_LOADS; ++it)
            slots[it] = warp_lane() + 32 * it < 16 * CHUNKS_PER_ROW
                            ? (int2)(first.x, first.y + tile_piece(it).x)
                            : NO_SLOT;
        return;
    }
#endif
    MMA_UNROLL
    for (int it = 0; it < ROW_LOADS; ++it) {
        const int j = key0 + tile_piece(it).x;
        slots[it] = NO_SLOT;
        if (warp_lane() + 32 * it < 16 * CHUNKS_PER_ROW && j < key_end)
            slots[it] = cache_slot_unclamped(block_table, c, b, s.cache_row, s.kv_begin + j);
    }
}

/* Asynchronous copies of the rows at `slots` into a 16-row tile, 16 bytes per lane per
 * copy; rows without a slot are filled with zeros (their keys are masked, and a zero
 * value row keeps 0 * P finite). */
inline void copy_rows(__global const storage_t *x, long off, long sb, long ss, long sh,
                      int kv_head, const cache_params c, const int2 *slots, __local ushort *tile)
{
    MMA_UNROLL
    for (int it = 0; it < ROW_LOADS; ++it) {
        const int2 at = tile_piece(it);
        if (warp_lane() + 32 * it < 16 * CHUNKS_PER_ROW) {
            const bool has = slots[it].y >= 0;
            const long from =
                has ? slot_index(clamp_slot(slots[it], c), off, sb, ss, sh, kv_head) + 8 * at.y : 0;
            copy_async16(tile + at.x * TILE_PITCH + 8 * at.y, (__global const ushort *)x + from,
                         has ? 16 : 0);
        }
    }
}

/* One step's key and value rows (keys key0 .. key0 + 15 of this warp) into a stage's
 * tiles: 16-byte asynchronous copies by every lane, one commit group per stage; or with
 * the copy engine (CACHE_BULK) one bulk copy per row, lane L taking row L % 16 of k
 * (L < 16) or v, counted onto the stage's barrier. Rows without a slot are zeros. */
inline void copy_stage(__global const storage_t *k, __global const storage_t *v, const attn_params p,
                       const cache_params c, int kv_head, const int2 *slots, int key0, int key_end,
                       __local ushort *to, __local ulong *bar)
{
#if CACHE_BULK
    const int rows = clamp(key_end - key0, 0, 16); /* the rows with a slot: the first ones */
    if (warp_lane() == 0) mbar_expect_tx(bar, (uint)(2 * rows * ROW_BYTES));
    warp_sync(); /* the bytes are announced before any copy can complete */
    async_proxy_fence(); /* the warp's reads and zero rows of this stage, before the engine writes it */
    const int is_v = warp_lane() >> 4;
    __local ushort *row = to + is_v * TILE_ELEMS + (warp_lane() & 15) * TILE_PITCH;
    if (slots[0].y >= 0) {
        const int2 slot = clamp_slot(slots[0], c);
        const long from = is_v ? slot_index(slot, p.v_off, p.v_sb, p.v_ss, p.v_sh, kv_head)
                               : slot_index(slot, p.k_off, p.k_sb, p.k_ss, p.k_sh, kv_head);
        copy_bulk(row, (is_v ? v : k) + from, ROW_BYTES, bar);
    } else {
        MMA_UNROLL
        for (int i = 0; i < HEAD_DIM / 8; ++i) ((__local uint4 *)row)[i] = (uint4)(0u);
    }
#else
    (void)key0, (void)key_end, (void)bar;
    copy_rows(k, p.k_off, p.k_sb, p.k_ss, p.k_sh, kv_head, c, slots, to);
    copy_rows(v, p.v_off, p.v_sb, p.v_ss, p.v_sh, kv_head, c, slots, to + TILE_ELEMS);
    async_commit();
#endif
}

/* The oldest stage in flight has landed, for every lane of the warp. With the copy
 * engine: the phase of the stage's barrier that its latest copy_stage opened (`issued`
 * holds one bit per stage, flipped at each copy_stage). */
inline void wait_stage(__local ulong *bar, uint issued, int stage)
{
#if CACHE_BULK
    mbar_wait(bar, ((issued >> stage) & 1u) ^ 1u);
#else
    (void)bar, (void)issued, (void)stage;
    WAIT_OLDEST_STAGE();
#endif
    warp_sync();
}

#if !HAS_ROTARY
/* This lane's 16-bit words of Q for tile `tile`'s A fragments, rows g (e & 1 = 0) and
 * g + 8: q_bits[ks][2e + j] is dim 16ks + 2t + (e >> 1) * 8 + j; 0 for rows past the tile.
 * Varlen queries, Q rows not 16-byte aligned, or one stage (else Q_BY_COPY, below).
 * Without rotary a fragment word is the stored pair itself, so these reads are issued
 * early, before anything waits, and assembled into fragments after the first copies. */
inline void read_q_bits(__global const storage_t *q, const attn_params p, int b, int q_start,
                        int tile, int kv_head, int rows_total, ushort q_bits[K_STEPS][8])
{
    const int g = warp_lane() >> 2, t = warp_lane() & 3;
    long q_row[2];
    bool active[2];
    MMA_UNROLL
    for (int x = 0; x < 2; ++x) {
        const int R = tile * 16 + g + 8 * x;
        const int i = R / p.group;
        active[x] = R < rows_total;
        q_row[x] = active[x] ? view_index(p.q_off, p.q_sb, p.q_ss, p.q_sh, b, q_start + i,
                                          kv_head * p.group + R - i * p.group)
                             : 0;
    }
    MMA_UNROLL
    for (int ks = 0; ks < K_STEPS; ++ks)
        MMA_UNROLL
        for (int e = 0; e < 4; ++e)
            MMA_UNROLL
            for (int j = 0; j < 2; ++j) {
                const int x = e & 1, d = 16 * ks + 2 * t + (e >> 1) * 8 + j;
                q_bits[ks][2 * e + j] = active[x] ? ((__global const ushort *)q)[q_row[x] + d] : 0;
            }
}
#endif

/* Q_BY_COPY (dense queries without rotary, Q's rows 16-byte aligned, two stages or more):
 * the tile's 16 Q rows are copied into local memory by cp.async at the kernel's start,
 * before the lengths' read is waited for, and the fragments read with ldmatrix once the
 * first stage is issued. Read into registers (read_q_bits, still the way for other
 * calls), Q's 64 16-bit words per lane delayed the lengths' read: 1.4 us against 0.7
 * (H200, run 118's trace); by copy, decode ran 1.6-2.3% faster at 1k keys and 0.2-1.1%
 * at 4k, the same within 0.7% from 16k on (run 123). Rows past the tile are zeros. */
#ifndef ALIGNED_Q
#define ALIGNED_Q 0
#endif
#define Q_BY_COPY (!HAS_ROTARY && !IS_VARLEN && ALIGNED_Q && CACHE_STAGES >= 2)
#if Q_BY_COPY
inline void copy_q_rows(__global const storage_t *q, const attn_params p, int b, int tile,
                        int kv_head, int rows_total, __local ushort *q_tile)
{
    for (int piece = get_local_id(0); piece < 16 * CHUNKS_PER_ROW; piece += 32 * CACHE_WARPS) {
        const int row = piece / CHUNKS_PER_ROW, chunk = piece - row * CHUNKS_PER_ROW;
        const int R = tile * 16 + row;
        const bool active = R < rows_total;
        const int i = active ? R / p.group : 0;
        const long from = active ? view_index(p.q_off, p.q_sb, p.q_ss, p.q_sh, b, i,
                                              kv_head * p.group + R - i * p.group) + 8 * chunk
                                 : 0;
        copy_async16(q_tile + row * TILE_PITCH + 8 * chunk, (__global const ushort *)q + from,
                     active ? 16 : 0);
    }
    async_commit();
}
#endif

/* Row `row` of the tile over the warps' softmax states in local memory: x the largest
 * row maximum, y the normaliser sum_w l_w exp(m_w - x) (warps that saw no key of the row
 * left out). One function for warp 0's path and the work-group's, so that both sum in
 * the same order and give the same bits. */
inline float2 merged_row_state(__local const float *warp_m, __local const float *warp_l, int row)
{
    float top = -INFINITY, total = 0.0f;
    for (int w = 0; w < CACHE_WARPS; ++w) top = fmax(top, warp_m[w * 16 + row]);
    for (int w = 0; w < CACHE_WARPS; ++w)
        if (warp_m[w * 16 + row] > -INFINITY)
            total += warp_l[w * 16 + row] * exp(warp_m[w * 16 + row] - top);
    return (float2)(top, total);
}

#if GROUP_STORES
/* The tile's output from the rows every warp parked (weighted to the row's maximum), summed
 * by the whole work-group: each work-item takes 4 neighbouring dims of a row at a time, so
 * a warp reads one row's slices without bank conflicts and the group's stores are spread
 * over all its warps. Warp 0 alone summing the other warps' rows in its registers and
 * storing them took 2-3 us at the end of every call (H200, run 80's trace). The sums are
 * taken in the same order as warp 0's (warp 0's rows first): the same bits. A row that saw
 * no key gets out 0 and lse +inf, never NaN. */
inline void store_tile_rows(__local const float *out_acc, __local const float *warp_m,
                            __local const float *warp_l, __global storage_t *o,
                            __global float *lse, const attn_params p, const cache_seq s, int b,
                            int kv_head, int tile, int rows_total)
{
    for (int item = get_local_id(0); item < 16 * (HEAD_DIM / 4); item += 32 * CACHE_WARPS) {
        const int row = item / (HEAD_DIM / 4), d = 4 * (item - row * (HEAD_DIM / 4));
        const int R = tile * 16 + row;
        if (R >= rows_total) continue;
        const float2 state = merged_row_state(warp_m, warp_l, row);
        const float top = state.x, total = state.y;
        float4 sum = vload4(0, out_acc + row * OUT_PITCH + d);
        for (int w = 1; w < CACHE_WARPS; ++w) sum += vload4(0, out_acc + (w * 16 + row) * OUT_PITCH + d);
        const float inv_l = total > 0.0f ? 1.0f / total : 0.0f;
        const int i = R / p.group, h = kv_head * p.group + (R - i * p.group);
        const long at = view_index(p.o_off, p.o_sb, p.o_ss, p.o_sh, b, s.q_start + i, h) + d;
        store_value(o, at, sum.x * inv_l);
        store_value(o, at + 1, sum.y * inv_l);
        store_value(o, at + 2, sum.z * inv_l);
        store_value(o, at + 3, sum.w * inv_l);
        if (lse && d == 0)
            lse[view_index(p.lse_off, p.lse_sb, p.lse_ss, p.lse_sh, b, s.q_start + i, h)] =
                total > 0.0f ? top + log(total) : INFINITY;
    }
}
#endif

#if MERGE_IN_KERNEL
#if !SPLIT || IS_VARLEN
#error "the merge inside the kernel is for split calls with dense queries"
#endif
/* The splits of one unit (a 16-row tile of a kv head of a sequence) are merged by the
 * last of their work-groups to finish, instead of by a second kernel (cache_combine, whose
 * launch alone costs about 4 us on the H200). Every work-group publishes its normalised
 * partial rows and their lse (global_fence), then counts itself in on the unit's counter;
 * the one that brings it to num_splits resets it to 0 and merges (merge_row.cl's math):
 *   lse = log(sum_s exp(lse_s)),  out = sum_s exp(lse_s - lse) * out_s,
 * parts with a non-finite lse weighing 0, a row empty everywhere getting out 0, lse +inf.
 * The counters are the host's, one buffer per in-order queue, zero before the first call
 * and left zero by every call (queue_counters.h). Dense queries only: there a work-group
 * has exactly one tile, so each unit counts exactly num_splits arrivals.
 *
 * Warp 0 of the last work-group merges, its lanes owning the pairs of dims they wrote
 * (rows g and g + 8, dims 8 db + 2t, +1); its own split's values are still in `own`. The
 * loads are batched (MERGE_BATCH lse values, then two splits' rows) so that each batch
 * costs one round trip to L2, not one per value. */
#define MERGE_BATCH 8 /* lse values read at once */
__attribute__((always_inline)) inline void merge_unit_rows(const float4 *own, const float *own_lse, __global const float *parts,
                            __global const float *lse_parts, __global storage_t *out,
                            __global float *lse_out, const attn_params p, const cache_params c,
                            const cache_seq s, int b, int kv_head, int tile, int split,
                            int rows_total)
{
    const int g = warp_lane() >> 2, t = warp_lane() & 3;
    MMA_UNROLL
    for (int r = 0; r < 2; ++r) {
        const int R = tile * 16 + g + 8 * r;
        if (R >= rows_total) continue;
        const int i = R / p.group, h = kv_head * p.group + (R - i * p.group);
        const long part = view_index(c.part_off, c.part_sb, c.part_ss, c.part_sh, b, s.q_start + i, h) + 2 * t;
        const long plse = view_index(c.plse_off, c.plse_sb, c.plse_ss, c.plse_sh, b, s.q_start + i, h);
        /* the merged lse: the largest finite lse M, then the sum of exp(lse_s - M) */
        float top = -INFINITY, total = 0.0f;
        for (int s0 = 0; s0 < c.num_splits; s0 += MERGE_BATCH) {
            float x[MERGE_BATCH];
            MMA_UNROLL
            for (int k = 0; k < MERGE_BATCH; ++k) {
                const int sp = s0 + k;
                x[k] = sp >= c.num_splits ? -INFINITY
                       : sp == split      ? own_lse[r]
                                          : load_published(lse_parts + plse + sp * c.plse_split);
            }
            MMA_UNROLL
            for (int k = 0; k < MERGE_BATCH; ++k) {
                if (!isfinite(x[k])) continue;
                if (x[k] > top) {
                    total = total * exp(top - x[k]) + 1.0f;
                    top = x[k];
                } else {
                    total += exp(x[k] - top);
                }
            }
        }
        const float row_lse = total > 0.0f ? top + log(total) : INFINITY;
        float2 sum[D_BLOCKS];
        MMA_UNROLL
        for (int db = 0; db < D_BLOCKS; ++db) sum[db] = (float2)(0.0f);
        /* the weighted sum, two splits a round trip: both splits' lse and values are
         * requested before either is used */
        for (int s0 = 0; s0 < c.num_splits && total > 0.0f; s0 += 2) {
            float x[2];
            float2 v[2][D_BLOCKS];
            MMA_UNROLL
            for (int k = 0; k < 2; ++k) {
                const int sp = s0 + k;
                const bool remote = sp < c.num_splits && sp != split;
                x[k] = sp >= c.num_splits ? -INFINITY
                       : remote           ? load_published(lse_parts + plse + sp * c.plse_split)
                                          : own_lse[r];
                __global const float *at = parts + part + (remote ? sp : 0) * c.part_split;
                MMA_UNROLL
                for (int db = 0; db < D_BLOCKS; ++db)
                    v[k][db] = remote ? (float2)(load_published(at + 8 * db), load_published(at + 8 * db + 1))
                                      : (r == 0 ? own[db].xy : own[db].zw);
            }
            MMA_UNROLL
            for (int k = 0; k < 2; ++k) {
                const float weight = isfinite(x[k]) ? exp(x[k] - row_lse) : 0.0f;
                MMA_UNROLL
                for (int db = 0; db < D_BLOCKS; ++db) sum[db] += weight * v[k][db];
            }
        }
        const long o_row = view_index(p.o_off, p.o_sb, p.o_ss, p.o_sh, b, s.q_start + i, h) + 2 * t;
        MMA_UNROLL
        for (int db = 0; db < D_BLOCKS; ++db) {
            store_value(out, o_row + 8 * db, sum[db].x);
            store_value(out, o_row + 8 * db + 1, sum[db].y);
        }
        if (lse_out && t == 0)
            lse_out[view_index(p.lse_off, p.lse_sb, p.lse_ss, p.lse_sh, b, s.q_start + i, h)] = row_lse;
    }
}
#endif

__kernel __attribute__((reqd_work_group_size(32 * CACHE_WARPS, 1, 1)))
void attn_cache(CACHE_ATTN_ARGS)
{
    __local float scratch[MMA_SCRATCH_FLOATS];
    __local int merges_here; /* MERGE_IN_KERNEL: this work-group is its unit's last split */
    __local float warp_m[CACHE_WARPS * 16];
    __local float warp_l[CACHE_WARPS * 16];
    __local ushort kv_tiles[TILES_ELEMS] __attribute__((aligned(16)));
#if Q_BY_COPY
    /* Q's rows in warp 0's last stage, which the prologue leaves empty and its first
     * refill fills only after every warp has read them (the second barrier where Q's
     * fragments are built) */
    __local ushort *q_tile = kv_tiles + (CACHE_STAGES - 1) * STAGE_ELEMS;
#endif
    /* CACHE_BULK: a transaction barrier per warp and stage (else unused) */
    __local ulong stage_bars[CACHE_WARPS * CACHE_STAGES];
    /* the warps park their output rows in the tiles once every copy has landed */
    __local float *out_acc = (__local float *)kv_tiles;

    const int kv_head = get_group_id(1);
    const int b = get_group_id(2) / c.num_splits;
    const int split = get_group_id(2) - b * c.num_splits;
    const int lid = get_local_id(0), warp = warp_index();
    const int g = warp_lane() >> 2, t = warp_lane() & 3;
    /* Reads in the order the start needs them: the sequence's stored length, then Q
     * (dense queries: its rows do not depend on the lengths), both issued before the
     * length is used. */
    const int stored_len = stored_length(seqlens, c, b);
    const int warp_key = 16 * warp, step_keys = 16 * CACHE_WARPS;
    __local ushort *warp_tiles = kv_tiles + warp * CACHE_STAGES * STAGE_ELEMS;
    __local ulong *warp_bars = stage_bars + warp * CACHE_STAGES;
#if CACHE_BULK
    if (warp_lane() < CACHE_STAGES) mbar_init(warp_bars + warp_lane(), 1);
    mbar_init_fence();
    warp_sync();
#endif
    uint issued = 0; /* CACHE_BULK: the parity of each stage's copies issued so far */
#if Q_BY_COPY
    /* the tile's Q rows into local memory by the copy unit, issued before anything waits */
    copy_q_rows(q, p, b, get_group_id(0), kv_head, p.seqlen_q * p.group, q_tile);
#elif !HAS_ROTARY
    ushort q_bits[K_STEPS][8];
#if !IS_VARLEN
    read_q_bits(q, p, b, 0, get_group_id(0), kv_head, p.seqlen_q * p.group, q_bits);
#endif
#endif
    const cache_seq s = cache_sequence(cu_q, cu_k, seqused, stored_len, batch_idx, leftpad,
                                       cu_new, p, c, b);
    const int off = p.align_top_left ? 0 : s.sk - s.sq;
    const int rows_total = s.sq * p.group;

    /* Varlen queries may give a work-group several tiles (the kernel strides over them).
     * Dense queries have one work-group per tile (the host's grid), and the loop below
     * then runs at most once, visibly to the compiler: Q's words read before the loop
     * would otherwise stay live through the key loop for a next tile that never comes
     * (run 111 on the H200: 247-255 registers instead of 209, decode 6-7% slower from
     * 16k keys). */
#if IS_VARLEN
    for (int tile = get_group_id(0); tile * 16 < rows_total; tile += get_num_groups(0)) {
#else
    for (int tile = get_group_id(0), once = 1; once && tile * 16 < rows_total; once = 0) {
#endif
        const bool first_tile = tile == (int)get_group_id(0);
        (void)first_tile; /* unused with rotary */
        /* this lane's two rows: g (index 0) and g + 8 (index 1) of the tile */
        int row_i[2], row_h[2], row_lo[2], row_end[2];
        float slope[2], m[2], l[2];
        MMA_UNROLL
        for (int x = 0; x < 2; ++x) {
            const int R = tile * 16 + g + 8 * x;
            const bool active = R < rows_total;
            const int i = active ? R / p.group : 0;
            row_i[x] = active ? i : -1;
            row_h[x] = kv_head * p.group + (active ? R - i * p.group : 0);
            row_lo[x] = visible_lo(i + off, p.window_left, s.sk);
            row_end[x] = active ? visible_end(i + off, p.window_right, s.sk) : 0;
            slope[x] = alibi_slope(alibi, p, b, row_h[x]);
            m[x] = -INFINITY;
            l[x] = 0.0f;
        }
        /* the keys some row of the tile sees, and this split's share of them (the same
         * for every work-item: the loop below stays uniform, as the emulation needs) */
        int tile_lo = s.sk, tile_end = 0;
        for (int r = 0; r < 16; ++r) {
            const int R = tile * 16 + r;
            if (R >= rows_total) break;
            const int i = R / p.group;
            const int lo = visible_lo(i + off, p.window_left, s.sk);
            const int end = visible_end(i + off, p.window_right, s.sk);
            if (lo < end) {
                tile_lo = min(tile_lo, lo);
                tile_end = max(tile_end, end);
            }
        }
        const int span = max(tile_end - tile_lo, 0);
        const int chunk = (span + c.num_splits - 1) / c.num_splits;
        const int key_lo = tile_lo + min(split * chunk, span);
        const int key_end = tile_lo + min((split + 1) * chunk, span);

        /* Q as A fragments (rows g, g+8; dims 16ks + 2t, +1 and +8, +9), rotated and
         * rounded; rows outside the tile are 0. Without rotary, Q's 16-bit reads are
         * issued before the first copies (for the first tile of dense queries at the
         * kernel's start) and assembled after them: behind the copies (16 MB over the
         * GPU) they took 4 us, and the next stage waited for them (run 80's trace). */
        uint4 qa[K_STEPS];
#if HAS_ROTARY
        long q_row[2];
        MMA_UNROLL
        for (int x = 0; x < 2; ++x)
            q_row[x] = row_i[x] >= 0 ? view_index(p.q_off, p.q_sb, p.q_ss, p.q_sh, b,
                                                  s.q_start + row_i[x], row_h[x])
                                     : 0;
#elif !Q_BY_COPY
        if (IS_VARLEN || !first_tile)
            read_q_bits(q, p, b, s.q_start, tile, kv_head, rows_total, q_bits);
#endif

        /* The first CACHE_STAGES - 1 steps in flight, and the slots of the next one: each
         * stage's table entries are read before the previous stage's copies are issued,
         * so that no copy waits for the entries read just before it (pages: one table
         * read per stage otherwise waited in turn at the start). */
        int2 slots[ROW_SLOTS], ahead[ROW_SLOTS];
        tile_slots(block_table, c, s, b, key_lo + warp_key, key_end, slots);
        for (int st = 0; st < CACHE_STAGES - 1; ++st) {
            const int key0 = key_lo + st * step_keys + warp_key;
            tile_slots(block_table, c, s, b, key0 + step_keys, key_end, ahead);
            copy_stage(k, v, p, c, kv_head, slots, key0, key_end, warp_tiles + st * STAGE_ELEMS,
                       warp_bars + st);
            issued ^= 1u << st;
            MMA_UNROLL
            for (int i = 0; i < ROW_SLOTS; ++i) slots[i] = ahead[i];
        }
#if Q_BY_COPY
#if CACHE_BULK
        ASYNC_WAIT(0);
#else
        WAIT_OLDEST_STAGE(); /* Q's group is older than the prologue's CACHE_STAGES - 1 */
#endif
        barrier(CLK_LOCAL_MEM_FENCE); /* every lane's pieces of Q, for every warp */
        MMA_UNROLL
        for (int ks = 0; ks < K_STEPS; ++ks) qa[ks] = mma_a_fragment(q_tile, TILE_PITCH, ks);
        barrier(CLK_LOCAL_MEM_FENCE); /* every warp has read Q before warp 0 refills its tile */
#else
        MMA_UNROLL
        for (int ks = 0; ks < K_STEPS; ++ks) {
            uint w[4];
            MMA_UNROLL
            for (int e = 0; e < 4; ++e) {
#if HAS_ROTARY
                const int x = e & 1, d = 16 * ks + 2 * t + (e >> 1) * 8;
                float pair[2] = {0.0f, 0.0f};
                if (row_i[x] >= 0) {
                    const int q_pos = s.before + (c.q_rotary_per_row ? row_i[x] : 0);
                    pair[0] = rotary_value(q, q_row[x], d, q_pos, cos_t, sin_t, c);
                    pair[1] = rotary_value(q, q_row[x], d + 1, q_pos, cos_t, sin_t, c);
                }
                w[e] = pack_pair(pair[0], pair[1]);
#else
                w[e] = (uint)q_bits[ks][2 * e] | ((uint)q_bits[ks][2 * e + 1] << 16);
#endif
            }
            qa[ks] = (uint4)(w[0], w[1], w[2], w[3]);
        }
#endif
        float4 acc[D_BLOCKS];
        MMA_UNROLL
        for (int db = 0; db < D_BLOCKS; ++db) acc[db] = (float4)(0.0f);

        int stage = 0;
        for (int base = key_lo; base < key_end; base += step_keys) {
            const int key0 = base + warp_key; /* this warp's 16 keys */
            /* refill the tiles the previous step finished with, CACHE_STAGES - 1 steps
             * ahead, then read the table entries of the step after that */
            const int refill = stage == 0 ? CACHE_STAGES - 1 : stage - 1;
            copy_stage(k, v, p, c, kv_head, slots, key0 + (CACHE_STAGES - 1) * step_keys, key_end,
                       warp_tiles + refill * STAGE_ELEMS, warp_bars + refill);
            issued ^= 1u << refill;
            tile_slots(block_table, c, s, b, key0 + CACHE_STAGES * step_keys, key_end, slots);
            wait_stage(warp_bars + stage, issued, stage); /* this step's copies have landed */
            __local const ushort *k_tile = warp_tiles + stage * STAGE_ELEMS;
            __local const ushort *v_tile = k_tile + TILE_ELEMS;
            /* S for keys key0 + 8nb + g (B columns: dims 16ks + 2t, +1 and +8, +9) */
            float4 sc[2];
            MMA_UNROLL
            for (int nb = 0; nb < 2; ++nb) {
                sc[nb] = (float4)(0.0f);
                MMA_UNROLL
                for (int ks = 0; ks < K_STEPS; ks += 2) {
                    uint2 kb[2];
                    mma_key_fragments(k_tile, TILE_PITCH, nb, ks, ks + 1 < K_STEPS, kb);
                    sc[nb] = warp_mma(sc[nb], qa[ks], kb[0], scratch);
                    if (ks + 1 < K_STEPS) sc[nb] = warp_mma(sc[nb], qa[ks + 1], kb[1], scratch);
                }
            }
            /* scores: scale, softcap, ALiBi, mask; then the online softmax per row */
            float x[2][4]; /* [nb][c.x, c.y (row g), c.z, c.w (row g+8)] */
            float step_max[2] = {-INFINITY, -INFINITY};
            MMA_UNROLL
            for (int nb = 0; nb < 2; ++nb) {
                const float vals[4] = {sc[nb].x, sc[nb].y, sc[nb].z, sc[nb].w};
                MMA_UNROLL
                for (int e = 0; e < 4; ++e) {
                    const int r = e >> 1, j = key0 + 8 * nb + 2 * t + (e & 1);
                    const bool visible = j < key_end && j >= row_lo[r] && j < row_end[r];
                    x[nb][e] = visible ? adjust_score(vals[e] * p.scale, p.softcap, slope[r],
                                                      row_i[r] + off - j)
                                       : -INFINITY;
                    step_max[r] = fmax(step_max[r], x[nb][e]);
                }
            }
            float alpha[2];
            MMA_UNROLL
            for (int r = 0; r < 2; ++r) {
                const float m_new = fmax(m[r], quad_max(step_max[r], scratch));
                /* a row with nothing visible yet keeps m = -inf and weighs nothing */
                alpha[r] = m_new == -INFINITY ? 1.0f : exp(m[r] - m_new);
                m[r] = m_new;
                l[r] *= alpha[r];
            }
            float pr[2][4];
            MMA_UNROLL
            for (int nb = 0; nb < 2; ++nb)
                MMA_UNROLL
                for (int e = 0; e < 4; ++e) {
                    const int r = e >> 1;
                    pr[nb][e] = x[nb][e] == -INFINITY ? 0.0f : exp(x[nb][e] - m[r]);
                    l[r] += pr[nb][e];
                }
            const uint4 pa = (uint4)(pack_pair(pr[0][0], pr[0][1]), pack_pair(pr[0][2], pr[0][3]),
                                     pack_pair(pr[1][0], pr[1][1]), pack_pair(pr[1][2], pr[1][3]));
            MMA_UNROLL
            for (int db = 0; db < D_BLOCKS; db += 2) { /* D_BLOCKS is even: d % 16 == 0 */
                uint2 vb[2];
                mma_value_fragments(v_tile, TILE_PITCH, db, vb);
                MMA_UNROLL
                for (int h = 0; h < 2; ++h) {
                    acc[db + h].xy *= alpha[0];
                    acc[db + h].zw *= alpha[1];
                    acc[db + h] = warp_mma(acc[db + h], pa, vb[h], scratch);
                }
            }
            warp_sync(); /* every lane is done with these tiles before they are refilled */
            stage = stage + 1 == CACHE_STAGES ? 0 : stage + 1;
        }
        ASYNC_WAIT(0); /* copies past the last step (zero rows) land before out_acc reuses the tiles */

        /* Merge the warps: each row's max and normaliser through local memory, then the
         * warps' weighted accumulators are summed: by the whole work-group from the slices
         * every warp parked (GROUP_STORES, store_tile_rows), or with splits into warp 0's
         * registers, which writes the tile's partial rows straight from them (a lane's
         * pairs of dims of rows g and g + 8) and keeps them for the in-kernel merge. */
        MMA_UNROLL
        for (int r = 0; r < 2; ++r) l[r] = quad_sum(l[r], scratch);
        if (t == 0) {
            warp_m[warp * 16 + g] = m[0];
            warp_m[warp * 16 + g + 8] = m[1];
            warp_l[warp * 16 + g] = l[0];
            warp_l[warp * 16 + g + 8] = l[1];
        }
        barrier(CLK_LOCAL_MEM_FENCE); /* also: no warp still reads its tiles */
        float weight[2], row_m[2], row_l[2];
        MMA_UNROLL
        for (int r = 0; r < 2; ++r) {
            const float2 state = merged_row_state(warp_m, warp_l, g + 8 * r);
            row_m[r] = state.x;
            row_l[r] = state.y;
            weight[r] = m[r] == -INFINITY ? 0.0f : exp(m[r] - row_m[r]);
        }
#if CACHE_WARPS > 1
        /* the warps that park (GROUP_STORES: all; else 1..) their weighted pairs, each in
         * its own slice of the tiles */
        if (GROUP_STORES || warp > 0)
            MMA_UNROLL
            for (int db = 0; db < D_BLOCKS; ++db) {
                __local float *slice =
                    out_acc + (warp - 1 + GROUP_STORES) * 16 * OUT_PITCH + 8 * db + 2 * t;
                vstore2(acc[db].xy * weight[0], 0, slice + g * OUT_PITCH);
                vstore2(acc[db].zw * weight[1], 0, slice + (g + 8) * OUT_PITCH);
            }
        barrier(CLK_LOCAL_MEM_FENCE);
#endif
#if GROUP_STORES
        store_tile_rows(out_acc, warp_m, warp_l, o, lse, p, s, b, kv_head, tile, rows_total);
        (void)row_m, (void)row_l;
#else
        float row_lse[2];
        if (warp == 0) {
            /* acc becomes the tile's normalised output (its split's, with splits) */
            MMA_UNROLL
            for (int r = 0; r < 2; ++r) {
                /* a row that saw no key (here) gets out 0 and lse +inf: never NaN */
                const float inv_l = row_l[r] > 0.0f ? 1.0f / row_l[r] : 0.0f;
                row_lse[r] = row_l[r] > 0.0f ? row_m[r] + log(row_l[r]) : INFINITY;
                MMA_UNROLL
                for (int db = 0; db < D_BLOCKS; ++db) {
                    float2 pair = (r == 0 ? acc[db].xy : acc[db].zw) * weight[r];
                    for (int w = 1; w < CACHE_WARPS; ++w)
                        pair += vload2(0, out_acc + ((w - 1) * 16 + g + 8 * r) * OUT_PITCH + 8 * db + 2 * t);
                    if (r == 0) acc[db].xy = pair * inv_l;
                    else acc[db].zw = pair * inv_l;
                }
            }
            MMA_UNROLL
            for (int r = 0; r < 2; ++r) {
                const int R = tile * 16 + g + 8 * r;
                if (R >= rows_total) continue;
                const int i = R / p.group, h = kv_head * p.group + (R - i * p.group);
#if SPLIT
                const long out_row = view_index(c.part_off + split * c.part_split, c.part_sb,
                                                 c.part_ss, c.part_sh, b, s.q_start + i, h);
#else
                const long out_row = view_index(p.o_off, p.o_sb, p.o_ss, p.o_sh, b, s.q_start + i, h);
#endif
                MMA_UNROLL
                for (int db = 0; db < D_BLOCKS; ++db) {
                    const float2 pair = r == 0 ? acc[db].xy : acc[db].zw;
#if SPLIT
                    vstore2(pair, 0, o + out_row + 8 * db + 2 * t); /* fp32 partials */
#else
                    store_value(o, out_row + 8 * db + 2 * t, pair.x);
                    store_value(o, out_row + 8 * db + 2 * t + 1, pair.y);
#endif
                }
                if (lse && t == 0) {
#if SPLIT
                    lse[view_index(c.plse_off + split * c.plse_split, c.plse_sb, c.plse_ss, c.plse_sh, b, s.q_start + i, h)] = row_lse[r];
#else
                    lse[view_index(p.lse_off, p.lse_sb, p.lse_ss, p.lse_sh, b, s.q_start + i, h)] = row_lse[r];
#endif
                }
            }
        }
#endif /* GROUP_STORES */
#if MERGE_IN_KERNEL
        /* count this split in; the unit's last one merges */
        global_fence(); /* this work-item's partials, before the count */
        barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
        if (lid == 0) {
            const int unit = (b * (int)get_num_groups(1) + kv_head) * (int)get_num_groups(0) + tile;
            const int last = atomic_inc(split_counters + unit) == c.num_splits - 1;
            if (last) {
                atomic_xchg(split_counters + unit, 0); /* left zero for the next call */
                global_fence(); /* the others' partials are read after their counts */
            }
            merges_here = last;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (merges_here && warp == 0)
            merge_unit_rows(acc, row_lse, o, lse, merged_o, merged_lse, p, c, s, b, kv_head,
                            tile, split, rows_total);
#else
        (void)merged_o, (void)merged_lse, (void)split_counters;
#endif
        barrier(CLK_LOCAL_MEM_FENCE); /* warp_m, warp_l and the tiles are reused by the next tile */
    }
}

#endif /* CACHE_MMA */
