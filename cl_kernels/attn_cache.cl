/* Attention over a KV cache (facl_fwd_kvcache; varlen calls with a block table), in
 * three kernels enqueued in this order:
 *   cache_append   writes the new keys (after rotary) and values into the cache;
 *   attn_cache     attention of a tile of query rows over one chunk of their keys;
 *   cache_combine  merges the chunks through their lse when the keys were split.
 *
 * attn_cache is built for decoding, where there are few query rows and many keys: the
 * work is bound by reading the cache once. A work-group takes ROWS query rows that
 * share one kv head (the GQA group's heads and, for chunks of queries, several rows),
 * so each key and value is read from memory once for all of them. Its work-items form
 * KEY_GROUPS groups of CHUNKS lanes; lane c holds dims [8c, 8c + 8) of every row's q and
 * of its output accumulator. Each step, every key group reads KPS whole key rows (its
 * lanes together read 8 * CHUNKS contiguous elements: coalesced) and the values of the
 * same keys; the lanes' partial dot products meet in local memory. Each key group keeps
 * its own online softmax, and the groups' states are merged once at the end, so a step
 * needs no other synchronisation. With splits, the keys of each tile are cut into
 * num_splits chunks (the third grid dimension), each writing an fp32 partial result and
 * its lse; cache_combine merges them (merge_row.cl).
 *
 * On CPU devices (the portable-cpu path) the plan builds attn_cache with CACHE_CPU=1
 * instead: one work-item per tile of rows and split, 16 keys per step, whole rows as
 * 16-wide vectors, no local memory or barriers (see the kernel below); same arguments,
 * grid (with work-groups of 1), masks and partials.
 *
 * Keys live at cache positions; sequence b uses positions [kv_begin, kv_end) (kv_begin
 * = cache_leftpad[b]); key index j (masks, ALiBi) counts from kv_begin. Position pos is
 * in row pos of cache row cache_batch_idx[b] (dense) or in page block_table[b, pos /
 * page_size] at row pos % page_size (paged). Every index read from a buffer is clamped
 * into range, so wrong (trusted) indices never reach outside the tensors.
 *
 * Specialised with -D: FACL_DTYPE, HEAD_DIM, ROWS, KEY_GROUPS, KPS, CACHE_CPU and the switches
 * below; numbers that only change values are in attn_params / cache_params.
 */
#ifndef ROWS
#define ROWS 1
#endif
#ifndef KEY_GROUPS
#define KEY_GROUPS 1
#endif
#ifndef KPS
#define KPS 1
#endif
#ifndef IS_PAGED
#define IS_PAGED 0
#endif
#ifndef HAS_SEQLENS_BUF
#define HAS_SEQLENS_BUF 0
#endif
#ifndef HAS_BATCH_IDX
#define HAS_BATCH_IDX 0
#endif
#ifndef HAS_LEFTPAD
#define HAS_LEFTPAD 0
#endif
#ifndef HAS_NEW
#define HAS_NEW 0
#endif
#ifndef NEW_VARLEN
#define NEW_VARLEN 0
#endif
#ifndef HAS_ROTARY
#define HAS_ROTARY 0
#endif
#ifndef KEYS_FROM_CU_K
#define KEYS_FROM_CU_K 0
#endif
#ifndef SPLIT
#define SPLIT 0
#endif
#ifndef ALIGNED_KV
#define ALIGNED_KV 0
#endif
#ifndef WARP_SHUFFLE
#define WARP_SHUFFLE 0
#endif
#ifndef CACHE_MMA
#define CACHE_MMA 0
#endif
#ifndef CACHE_CPU
#define CACHE_CPU 0
#endif

#define CHUNKS ((HEAD_DIM + 7) / 8)
#define GROUP_SIZE (CHUNKS * KEY_GROUPS)

typedef struct {
    long bt_off, bt_sb;
    long seqlens_off, batch_idx_off, leftpad_off, cu_new_off;
    long kn_off, kn_sb, kn_ss, kn_sh;
    long vn_off, vn_sb, vn_ss, vn_sh;
    long cos_off, cos_ss, sin_off, sin_ss;
    /* split partials (fp32): out (split, batch, row, head) and lse (split, batch, head, row) */
    long part_off, part_split, part_sb, part_ss, part_sh;
    long plse_off, plse_split, plse_sb, plse_sh, plse_ss;
    int page_size, num_blocks, max_blocks, capacity;
    int batch_cache, seqlens_value, seqlen_new, total_new;
    int rotary_half, rotary_interleaved, seqlen_ro, q_rotary_per_row;
    int num_splits, batch, reserved0, reserved1; /* log2 of the page size: PAGE_SHIFT */
} cache_params;

#ifndef FACL_CACHE_PARAMS_SIZE
#error "FACL_CACHE_PARAMS_SIZE must be defined by the host (sizeof its facl_cache_params)"
#endif
typedef char cache_params_size_matches_host[sizeof(cache_params) == FACL_CACHE_PARAMS_SIZE ? 1 : -1];

/* The arguments of attn_cache, whichever variant (CUDA-core, CACHE_CPU, tensor-core in
 * attn_cache_mma.cl), in the order the host binds them (cache_launch.c): the partial
 * output is fp32 with splits (SPLIT), the storage type otherwise; merged_o, merged_lse
 * and split_counters serve the tensor-core kernel's merge of the splits inside the
 * kernel (MERGE_IN_KERNEL) and are NULL otherwise. */
#if SPLIT
#define CACHE_OUT_T float
#else
#define CACHE_OUT_T storage_t
#endif
#define CACHE_ATTN_ARGS                                                                        \
    __global const storage_t *q, __global const storage_t *k, __global const storage_t *v,     \
        __global CACHE_OUT_T *o, __global float *lse, __global const int *cu_q,                \
        __global const int *cu_k, __global const int *seqused, __global const float *alibi,    \
        __global const int *seqlens, __global const int *batch_idx, __global const int *leftpad, \
        __global const int *block_table, __global const int *cu_new,                           \
        __global const storage_t *cos_t, __global const storage_t *sin_t,                     \
        __global storage_t *merged_o, __global float *merged_lse, __global int *split_counters, \
        const attn_params p, const cache_params c

/* ------------------------------------------------------------ sequences and positions */

typedef struct {
    int q_start, sq;   /* q rows of the sequence */
    int before;        /* cache_seqlens[b]: where its new keys go, and the rotary base */
    int kv_begin, sk;  /* its keys: positions [kv_begin, kv_begin + sk) */
    int cache_row;     /* dense cache: the row of k_cache it uses */
} cache_seq;

/* Rows [start, start + len) of a prefix-sum described sequence, clamped into `total`. */
inline int2 prefix_range(__global const int *cu, long off, int b, int total)
{
    const int start = clamp(cu[off + b], 0, total);
    return (int2)(start, clamp(cu[off + b + 1], start, total) - start);
}

/* The new keys of sequence b: (first row in k_new, count). */
inline int2 new_range(__global const int *cu_new, const cache_params c, int b)
{
#if NEW_VARLEN
    return prefix_range(cu_new, c.cu_new_off, b, c.total_new);
#elif HAS_NEW
    (void)cu_new;
    return (int2)(0, c.seqlen_new);
#else
    (void)cu_new; (void)c; (void)b;
    return (int2)(0, 0);
#endif
}

/* Sequence b's cache_seqlens entry as stored (unclamped), or the one value for all. The
 * kernels read it apart from cache_sequence so that a kernel can issue this read first and
 * issue other reads that do not depend on it (Q) before its value is used. */
inline int stored_length(__global const int *seqlens, const cache_params c, int b)
{
#if HAS_SEQLENS_BUF && !KEYS_FROM_CU_K
    return seqlens[c.seqlens_off + b];
#else
    (void)seqlens; (void)b;
    return c.seqlens_value;
#endif
}

inline cache_seq cache_sequence(__global const int *cu_q, __global const int *cu_k,
                                __global const int *seqused, int stored_len,
                                __global const int *batch_idx, __global const int *leftpad,
                                __global const int *cu_new, const attn_params p,
                                const cache_params c, int b)
{
    cache_seq s;
#if IS_VARLEN
    const int2 qr = prefix_range(cu_q, p.cu_q_off, b, p.total_q);
    s.q_start = qr.x;
    s.sq = qr.y;
#else
    (void)cu_q;
    s.q_start = 0;
    s.sq = p.seqlen_q;
#endif
#if KEYS_FROM_CU_K
    (void)stored_len; (void)leftpad; (void)cu_new;
    /* varlen call with a block table: the prefix sums count each sequence's keys */
    const int start = max(cu_k[p.cu_k_off + b], 0);
    int keys = clamp(cu_k[p.cu_k_off + b + 1], start, INT_MAX) - start;
    keys = min(keys, c.capacity);
#if HAS_SEQUSED
    keys = clamp(seqused[p.seqused_off + b], 0, keys);
#else
    (void)seqused;
#endif
    s.before = 0;
    s.kv_begin = 0;
    s.sk = keys;
#else
    (void)cu_k; (void)seqused;
    s.before = clamp(stored_len, 0, c.capacity);
    const int kv_end = (int)min((long)s.before + new_range(cu_new, c, b).y, (long)c.capacity);
#if HAS_LEFTPAD
    s.kv_begin = clamp(leftpad[c.leftpad_off + b], 0, kv_end);
#else
    (void)leftpad;
    s.kv_begin = 0;
#endif
    s.sk = kv_end - s.kv_begin;
#endif
#if HAS_BATCH_IDX
    s.cache_row = clamp(batch_idx[c.batch_idx_off + b], 0, c.batch_cache - 1);
#else
    (void)batch_idx;
    s.cache_row = b;
#endif
    return s;
}

#ifndef PAGE_SHIFT
#error "PAGE_SHIFT (log2 of a power-of-two page size, else -1) comes from the cache plan"
#endif

/* Where position pos of sequence b's cache lives: (cache row, position) in a dense cache,
 * (page, row within the page) in a paged one, the page as the block table gives it. Keys
 * and values share it. A reader that issues the table's load ahead of its copies keeps
 * this and clamps at the copy (clamp_slot): a use next to the load makes the warp wait for
 * it there (on the H200 a whole load latency per step, run 102). */
inline int2 cache_slot_unclamped(__global const int *block_table, const cache_params c, int b,
                                 int cache_row, int pos)
{
#if IS_PAGED
    (void)cache_row;
    /* page sizes are usually powers of two: a shift by a constant (the page size is part
     * of the program's plan) instead of a division */
#if PAGE_SHIFT >= 0
    const int blk = pos >> PAGE_SHIFT;
    const int row = pos & ((1 << PAGE_SHIFT) - 1);
#else
    const int blk = pos / c.page_size;
    const int row = pos - blk * c.page_size;
#endif
    return (int2)(block_table[c.bt_off + b * c.bt_sb + blk], row);
#else
    (void)block_table; (void)c; (void)b;
    return (int2)(cache_row, pos);
#endif
}

/* A slot's page clamped to the cache: a trusted table is not checked on the host, and an
 * entry out of range then reads the first or last page, never memory outside the cache. */
inline int2 clamp_slot(int2 slot, const cache_params c)
{
#if IS_PAGED
    slot.x = clamp(slot.x, 0, c.num_blocks - 1);
#else
    (void)c;
#endif
    return slot;
}

inline int2 cache_slot(__global const int *block_table, const cache_params c, int b, int cache_row,
                       int pos)
{
    return clamp_slot(cache_slot_unclamped(block_table, c, b, cache_row, pos), c);
}

/* Element index of a slot's row of `head` in a cache view (offset, slot strides, head stride). */
inline long slot_index(int2 slot, long off, long sb, long ss, long sh, int head)
{
    return off + slot.x * sb + (long)slot.y * ss + head * sh;
}

inline long cache_index(__global const int *block_table, const cache_params c, long off, long sb,
                        long ss, long sh, int b, int cache_row, int pos, int head)
{
    return slot_index(cache_slot(block_table, c, b, cache_row, pos), off, sb, ss, sh, head);
}

/* Element d of the row at x[row .. row + HEAD_DIM) after rotary at position pos (pairs
 * (2t, 2t+1) interleaved, else (t, t + rotary_dim / 2)): (a, b) -> (a cos - b sin, a sin + b cos).
 * Products and difference are each rounded to fp32 (no fused multiply-add), so that the
 * result, once rounded to the storage type, is the same on every device. */
inline float rotary_value(__global const storage_t *x, long row, int d, int pos,
                          __global const storage_t *cos_t, __global const storage_t *sin_t,
                          const cache_params c)
{
#pragma OPENCL FP_CONTRACT OFF
    const float self = load_value(x, row + d);
#if HAS_ROTARY
    const int pair_gap = c.rotary_half; /* rotary_dim / 2 */
    if (d < 2 * pair_gap) {
        const bool first = c.rotary_interleaved ? (d & 1) == 0 : d < pair_gap;
        const int t = c.rotary_interleaved ? d >> 1 : (first ? d : d - pair_gap);
        const int partner = c.rotary_interleaved ? d ^ 1 : (first ? d + pair_gap : d - pair_gap);
        const int at = clamp(pos, 0, c.seqlen_ro - 1);
        const float cs = load_value(cos_t, c.cos_off + (long)at * c.cos_ss + t);
        const float sn = load_value(sin_t, c.sin_off + (long)at * c.sin_ss + t);
        const float other = load_value(x, row + partner);
        const float u = first ? self * cs : other * sn;
        const float w = first ? other * sn : self * cs;
        return first ? u - w : u + w;
    }
#else
    (void)cos_t; (void)sin_t; (void)c; (void)pos;
#endif
    return self;
}

/* ------------------------------------------------------------------------ append */

/* One work-item per (dim, kv head, new row): k_new rotated, then stored (rounded) at its
 * cache position; v_new copied. A position past the cache (possible only with trusted
 * lengths) is not written. */
__kernel void cache_append(__global const storage_t *k_new, __global const storage_t *v_new,
                           __global storage_t *k, __global storage_t *v,
                           __global const int *seqlens, __global const int *batch_idx,
                           __global const int *block_table, __global const int *cu_new,
                           __global const storage_t *cos_t, __global const storage_t *sin_t,
                           const attn_params p, const cache_params c)
{
    const int d = get_global_id(0), h = get_global_id(1), row = get_global_id(2);
    if (d >= HEAD_DIM) return;
#if NEW_VARLEN
    /* the sequence owning k_new's row `row`: the last b whose rows start at or before it */
    int lo = 0, hi = c.batch - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (prefix_range(cu_new, c.cu_new_off, mid, c.total_new).x <= row) lo = mid;
        else hi = mid - 1;
    }
    const int b = lo;
    const int2 rows_b = prefix_range(cu_new, c.cu_new_off, b, c.total_new);
    if (c.batch == 0 || row < rows_b.x || row >= rows_b.x + rows_b.y) return;
    const int t = row - rows_b.x;
    const long src_k = c.kn_off + (long)row * c.kn_ss + h * c.kn_sh;
    const long src_v = c.vn_off + (long)row * c.vn_ss + h * c.vn_sh;
#else
    const int b = row / max(c.seqlen_new, 1), t = row - b * max(c.seqlen_new, 1);
    const long src_k = c.kn_off + b * c.kn_sb + (long)t * c.kn_ss + h * c.kn_sh;
    const long src_v = c.vn_off + b * c.vn_sb + (long)t * c.vn_ss + h * c.vn_sh;
#endif
#if HAS_SEQLENS_BUF
    const int before = clamp(seqlens[c.seqlens_off + b], 0, c.capacity);
#else
    (void)seqlens;
    const int before = clamp(c.seqlens_value, 0, c.capacity);
#endif
    const long pos = (long)before + t;
    if (pos >= c.capacity) return;
#if HAS_BATCH_IDX
    const int cache_row = clamp(batch_idx[c.batch_idx_off + b], 0, c.batch_cache - 1);
#else
    (void)batch_idx;
    const int cache_row = b;
#endif
    const long dk = cache_index(block_table, c, p.k_off, p.k_sb, p.k_ss, p.k_sh, b, cache_row, (int)pos, h);
    const long dv = cache_index(block_table, c, p.v_off, p.v_sb, p.v_ss, p.v_sh, b, cache_row, (int)pos, h);
    store_value(k, dk + d, rotary_value(k_new, src_k, d, (int)pos, cos_t, sin_t, c));
    store_value(v, dv + d, load_value(v_new, src_v + d));
}

/* --------------------------------------------------------------------- attention */

/* Dims [d0, d0 + 8) of a key or value row, as loaded: for 16-bit storage with aligned
 * rows the raw 16 bytes (half the registers of fp32 while a load is in flight), else
 * fp32. chunk_float converts when the values are used; dims past HEAD_DIM read as 0. */
#if ALIGNED_KV && FACL_DTYPE != 0
typedef uint4 raw_chunk;
#else
typedef float8 raw_chunk;
#endif

inline raw_chunk load_chunk(__global const storage_t *x, long i, int d0)
{
#if ALIGNED_KV
    /* the host checked that every row and this chunk start on 16-byte boundaries (32 for
     * fp32) and that HEAD_DIM is a multiple of 8 */
#if FACL_DTYPE == 0
    __global const float4 *w = (__global const float4 *)(x + i + d0);
    return (float8)(w[0], w[1]);
#else
    return *(__global const uint4 *)(x + i + d0);
#endif
#else
    float e[8];
    #pragma unroll
    for (int u = 0; u < 8; ++u) e[u] = d0 + u < HEAD_DIM ? load_value(x, i + d0 + u) : 0.0f;
    return (float8)(e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]);
#endif
}

inline float8 chunk_float(raw_chunk raw)
{
#if ALIGNED_KV && FACL_DTYPE == 1
    return vload_half8(0, (__private const half *)&raw);
#elif ALIGNED_KV && FACL_DTYPE == 2
    return as_float8(convert_uint8(as_ushort8(raw)) << 16);
#else
    return raw;
#endif
}

#if WARP_SHUFFLE
/* NVIDIA: x from the lane whose index differs in the bits of `mask` (inline PTX; the host
 * enables this only on NVIDIA devices whose probe passed). */
inline float shuffle_xor(float x, int mask)
{
    uint r;
    asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=r"(r) : "r"(as_uint(x)), "r"(mask));
    return as_float(r);
}
#endif

inline float dot8(float8 a, float8 b)
{
    const float8 m = a * b;
    return ((m.s0 + m.s1) + (m.s2 + m.s3)) + ((m.s4 + m.s5) + (m.s6 + m.s7));
}

/* With CACHE_MMA=1 the tensor-core kernel of attn_cache_mma.cl replaces this one. */
#if !CACHE_MMA
#if CACHE_CPU
/* The CPU variant (CACHE_CPU=1, the portable-cpu path). A CPU runs a work-group as a
 * loop over its work-items, and the GPU kernel's barriers cut that loop into pieces
 * between which every work-item's state is stored and reloaded. Here one work-item
 * (work-group size 1) owns the tile's ROWS rows over its split of the keys, like
 * attn_fwd_rows.cl: it walks CPU_TILE keys per step, reading each key and value row once
 * for all ROWS rows as 16-wide vectors of the whole head dim; the scores of the step,
 * their masks, maximum and exp are 16-wide vectors, and the online softmax lives in
 * registers. Splits (one work-group per core when the rows alone do not fill the cores)
 * are merged by cache_combine as for the GPU kernel. */
#define CPU_TILE 16
#define CPU_CHUNKS ((HEAD_DIM + 15) / 16)

/* Dims [16c, 16c + 16) of the row at x[i ..] as fp32; dims past HEAD_DIM read as 0. */
inline float16 cpu_load16(__global const storage_t *x, long i, int c)
{
    if ((c + 1) * 16 <= HEAD_DIM) {
#if FACL_DTYPE == 0
        return vload16(0, x + i + c * 16);
#elif FACL_DTYPE == 1
        return vload_half16(0, x + i + c * 16);
#else
        return as_float16(convert_uint16(vload16(0, x + i + c * 16)) << 16);
#endif
    }
    float e[16];
    for (int u = 0; u < 16; ++u)
        e[u] = c * 16 + u < HEAD_DIM ? load_value(x, i + c * 16 + u) : 0.0f;
    return vload16(0, e);
}

/* Software prefetch of a key or value row, a hint, through clang's builtin (OpenCL's
 * prefetch() does nothing on PoCL 3.1: 2.3 GB/s instead of 4.0 in the decode bench);
 * nothing where the compiler has no such builtin, or with CACHE_PREFETCH=0 (the host's
 * choice on Oclgrind, which cannot run llvm.prefetch). Rows of one kv head are a head
 * stride apart (4 KiB at 8 kv heads of 128 fp32 dims), each in its own page, where the
 * hardware prefetchers do not follow. */
#ifndef CACHE_PREFETCH
#define CACHE_PREFETCH 1
#endif
#if CACHE_PREFETCH && defined(__clang__) && defined(__has_builtin)
#if __has_builtin(__builtin_prefetch)
#define CPU_PREFETCH 1
#endif
#endif
inline void cpu_prefetch_row(__global const storage_t *x, long i)
{
#ifdef CPU_PREFETCH
    __global const char *at = (__global const char *)(x + i);
    for (int u = 0; u < HEAD_DIM * (int)sizeof(storage_t); u += 64) __builtin_prefetch(at + u);
#else
    (void)x; (void)i;
#endif
}

/* Reductions with single-element extracts (see attn_fwd_rows.cl: Oclgrind 21.10 and
 * multi-element swizzles). */
inline float cpu_max16(float16 v)
{
    const float a0 = fmax(fmax(v.s0, v.s4), fmax(v.s8, v.sc));
    const float a1 = fmax(fmax(v.s1, v.s5), fmax(v.s9, v.sd));
    const float a2 = fmax(fmax(v.s2, v.s6), fmax(v.sa, v.se));
    const float a3 = fmax(fmax(v.s3, v.s7), fmax(v.sb, v.sf));
    return fmax(fmax(a0, a1), fmax(a2, a3));
}

inline float cpu_sum16(float16 v)
{
    const float a0 = (v.s0 + v.s4) + (v.s8 + v.sc);
    const float a1 = (v.s1 + v.s5) + (v.s9 + v.sd);
    const float a2 = (v.s2 + v.s6) + (v.sa + v.se);
    const float a3 = (v.s3 + v.s7) + (v.sb + v.sf);
    return (a0 + a1) + (a2 + a3);
}

__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void attn_cache(CACHE_ATTN_ARGS)
{
    (void)merged_o, (void)merged_lse, (void)split_counters; /* the tensor-core kernel's */
    const int kv_head = get_group_id(1);
    const int b = get_group_id(2) / c.num_splits;
    const int split = get_group_id(2) - b * c.num_splits;
    const cache_seq s = cache_sequence(cu_q, cu_k, seqused, stored_length(seqlens, c, b),
                                       batch_idx, leftpad, cu_new, p, c, b);
    const int off = p.align_top_left ? 0 : s.sk - s.sq;
    const int rows_total = s.sq * p.group; /* row R = query i * group + head in group */
    const int16 lane = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

    float16 qv[ROWS][CPU_CHUNKS], acc[ROWS][CPU_CHUNKS];
    float sc[ROWS][CPU_TILE];
    long v_rows[CPU_TILE];

    for (int tile = get_group_id(0); tile * ROWS < rows_total; tile += get_num_groups(0)) {
        /* this tile's rows: their query index, head, q (rotated, rounded, scaled) */
        int row_i[ROWS], row_lo[ROWS], row_end[ROWS];
        float m[ROWS], l[ROWS], slope[ROWS];
        for (int r = 0; r < ROWS; ++r) {
            const int R = tile * ROWS + r;
            const bool active = R < rows_total;
            const int i = active ? R / p.group : 0;
            const int h = kv_head * p.group + (active ? R - i * p.group : 0);
            row_i[r] = active ? i : -1;
            row_lo[r] = visible_lo(i + off, p.window_left, s.sk);
            row_end[r] = active ? visible_end(i + off, p.window_right, s.sk) : 0;
            slope[r] = alibi_slope(alibi, p, b, h);
            const long q_row = view_index(p.q_off, p.q_sb, p.q_ss, p.q_sh, b, s.q_start + i, h);
            const int q_pos = s.before + (c.q_rotary_per_row ? i : 0);
            for (int ch = 0; ch < CPU_CHUNKS; ++ch) {
                float e[16];
                for (int u = 0; u < 16; ++u) {
                    const int d = ch * 16 + u;
                    e[u] = active && d < HEAD_DIM
                               ? round_to_storage(rotary_value(q, q_row, d, q_pos, cos_t, sin_t, c)) * p.scale
                               : 0.0f;
                }
                qv[r][ch] = vload16(0, e);
                acc[r][ch] = (float16)(0.0f);
            }
            m[r] = -INFINITY;
            l[r] = 0.0f;
        }
        /* the keys some row of the tile sees, and this split's share of them */
        int tile_lo = s.sk, tile_end = 0;
        for (int r = 0; r < ROWS; ++r)
            if (row_i[r] >= 0 && row_lo[r] < row_end[r]) {
                tile_lo = min(tile_lo, row_lo[r]);
                tile_end = max(tile_end, row_end[r]);
            }
        const int span = max(tile_end - tile_lo, 0);
        const int chunk = (span + c.num_splits - 1) / c.num_splits;
        const int key_lo = tile_lo + min(split * chunk, span);
        const int key_end = tile_lo + min((split + 1) * chunk, span);

        for (int base = key_lo; base < key_end; base += CPU_TILE) {
            const int n_keys = min(CPU_TILE, key_end - base);
            /* raw scores: each key row read once, as 16-wide vectors, for every row */
            for (int n = 0; n < n_keys; ++n) {
                const int2 slot = cache_slot(block_table, c, b, s.cache_row, s.kv_begin + base + n);
                const long k_row = slot_index(slot, p.k_off, p.k_sb, p.k_ss, p.k_sh, kv_head);
                v_rows[n] = slot_index(slot, p.v_off, p.v_sb, p.v_ss, p.v_sh, kv_head);
                /* this key's value row (read after the scores) and the next step's key */
                cpu_prefetch_row(v, v_rows[n]);
                if (base + CPU_TILE + n < key_end) {
                    const int2 next = cache_slot(block_table, c, b, s.cache_row,
                                                 s.kv_begin + base + CPU_TILE + n);
                    cpu_prefetch_row(k, slot_index(next, p.k_off, p.k_sb, p.k_ss, p.k_sh, kv_head));
                }
                float16 dot[ROWS];
                #pragma unroll
                for (int r = 0; r < ROWS; ++r) dot[r] = (float16)(0.0f);
                #pragma unroll
                for (int ch = 0; ch < CPU_CHUNKS; ++ch) {
                    const float16 kc = cpu_load16(k, k_row, ch);
                    #pragma unroll
                    for (int r = 0; r < ROWS; ++r) dot[r] = fma(qv[r][ch], kc, dot[r]);
                }
                #pragma unroll
                for (int r = 0; r < ROWS; ++r) sc[r][n] = cpu_sum16(dot[r]);
            }
            for (int n = n_keys; n < CPU_TILE; ++n)
                #pragma unroll
                for (int r = 0; r < ROWS; ++r) sc[r][n] = 0.0f;

            /* softmax step per row: sc[r] becomes the row's p for these keys and alpha[r]
             * the rescale of its accumulator (1 and zeros for a row that sees none) */
            float alpha[ROWS];
            const int16 j = base + lane;
            #pragma unroll
            for (int r = 0; r < ROWS; ++r) {
                float16 x = adjust_scores16(vload16(0, sc[r]), p.softcap, slope[r], (row_i[r] + off) - j);
                x = select((float16)(-INFINITY), x, (j < key_end) & (j >= row_lo[r]) & (j < row_end[r]));
                const float step_max = cpu_max16(x);
                if (step_max == -INFINITY) {
                    alpha[r] = 1.0f;
                    vstore16((float16)(0.0f), 0, sc[r]);
                    continue;
                }
                const float m_new = fmax(m[r], step_max);
                alpha[r] = exp(m[r] - m_new); /* 0 on the first visible key */
                const float16 pr = exp(x - m_new); /* masked keys: exp(-inf) = 0 */
                l[r] = l[r] * alpha[r] + cpu_sum16(pr);
                m[r] = m_new;
                vstore16(pr, 0, sc[r]);
            }

            /* acc = alpha * acc + p.v: each 16-wide chunk of the step's value rows read
             * once for every row's accumulator */
            for (int ch = 0; ch < CPU_CHUNKS; ++ch) {
                float16 a[ROWS];
                #pragma unroll
                for (int r = 0; r < ROWS; ++r) a[r] = acc[r][ch] * alpha[r];
                for (int n = 0; n < n_keys; ++n) {
                    const float16 vc = cpu_load16(v, v_rows[n], ch);
                    #pragma unroll
                    for (int r = 0; r < ROWS; ++r) a[r] = fma((float16)(sc[r][n]), vc, a[r]);
                }
                #pragma unroll
                for (int r = 0; r < ROWS; ++r) acc[r][ch] = a[r];
            }
        }

        for (int r = 0; r < ROWS; ++r) {
            const int i = row_i[r];
            if (i < 0) continue;
            const int h = kv_head * p.group + (tile * ROWS + r - i * p.group);
#if SPLIT
            const long o_row = view_index(c.part_off + split * c.part_split, c.part_sb, c.part_ss, c.part_sh,
                                          b, s.q_start + i, h);
#else
            const long o_row = view_index(p.o_off, p.o_sb, p.o_ss, p.o_sh, b, s.q_start + i, h);
#endif
            /* a row that saw no key (here) gets out 0 and lse +inf: never NaN */
            const float inv_l = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
            for (int ch = 0; ch < CPU_CHUNKS; ++ch) {
                float e[16];
                vstore16(acc[r][ch] * inv_l, 0, e);
                for (int u = 0; u < 16 && ch * 16 + u < HEAD_DIM; ++u)
#if SPLIT
                    o[o_row + ch * 16 + u] = e[u];
#else
                    store_value(o, o_row + ch * 16 + u, e[u]);
#endif
            }
            if (lse) {
                const float row_lse = l[r] > 0.0f ? m[r] + log(l[r]) : INFINITY;
#if SPLIT
                lse[view_index(c.plse_off + split * c.plse_split, c.plse_sb, c.plse_ss, c.plse_sh, b,
                               s.q_start + i, h)] = row_lse;
#else
                lse[view_index(p.lse_off, p.lse_sb, p.lse_ss, p.lse_sh, b, s.q_start + i, h)] = row_lse;
#endif
            }
        }
    }
}

#else /* !CACHE_CPU */
__kernel __attribute__((reqd_work_group_size(GROUP_SIZE, 1, 1)))
void attn_cache(CACHE_ATTN_ARGS)
{
    (void)merged_o, (void)merged_lse, (void)split_counters; /* the tensor-core kernel's */
    const int kv_head = get_group_id(1);
    const int b = get_group_id(2) / c.num_splits;
    const int split = get_group_id(2) - b * c.num_splits;
    const int lid = get_local_id(0);
    const int kg = lid / CHUNKS, lane = lid - kg * CHUNKS, d0 = lane * 8;
    const cache_seq s = cache_sequence(cu_q, cu_k, seqused, stored_length(seqlens, c, b),
                                       batch_idx, leftpad, cu_new, p, c, b);
    const int off = p.align_top_left ? 0 : s.sk - s.sq;
    const int rows_total = s.sq * p.group; /* row R = query i * group + head in group */

    __local float lane_sums[KEY_GROUPS * KPS * ROWS * CHUNKS];
    __local float scores[KEY_GROUPS * KPS * ROWS];
    __local float group_m[KEY_GROUPS * ROWS];
    __local float group_l[KEY_GROUPS * ROWS];
    __local float out_sums[KEY_GROUPS * CHUNKS * 8];

    for (int tile = get_group_id(0); tile * ROWS < rows_total; tile += get_num_groups(0)) {
        /* this tile's rows: their query index, head, q chunk (rotated, rounded, scaled) */
        int row_i[ROWS], row_lo[ROWS], row_end[ROWS];
        float8 qv[ROWS], acc[ROWS];
        float m[ROWS], l[ROWS], slope[ROWS];
        #pragma unroll
        for (int r = 0; r < ROWS; ++r) {
            const int R = tile * ROWS + r;
            const bool active = R < rows_total;
            const int i = active ? R / p.group : 0;
            const int h = kv_head * p.group + (active ? R - i * p.group : 0);
            row_i[r] = active ? i : -1;
            row_lo[r] = visible_lo(i + off, p.window_left, s.sk);
            row_end[r] = active ? visible_end(i + off, p.window_right, s.sk) : 0;
            slope[r] = alibi_slope(alibi, p, b, h);
            const long q_row = view_index(p.q_off, p.q_sb, p.q_ss, p.q_sh, b, s.q_start + i, h);
            const int q_pos = s.before + (c.q_rotary_per_row ? i : 0);
            float e[8];
            #pragma unroll
            for (int u = 0; u < 8; ++u) {
                const int d = d0 + u;
                e[u] = active && d < HEAD_DIM
                           ? round_to_storage(rotary_value(q, q_row, d, q_pos, cos_t, sin_t, c)) * p.scale
                           : 0.0f;
            }
            qv[r] = (float8)(e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]);
            acc[r] = (float8)(0.0f);
            m[r] = -INFINITY;
            l[r] = 0.0f;
        }
        /* the keys some row of the tile sees, and this split's share of them */
        int tile_lo = s.sk, tile_end = 0;
        #pragma unroll
        for (int r = 0; r < ROWS; ++r)
            if (row_i[r] >= 0 && row_lo[r] < row_end[r]) {
                tile_lo = min(tile_lo, row_lo[r]);
                tile_end = max(tile_end, row_end[r]);
            }
        const int span = max(tile_end - tile_lo, 0);
        const int chunk = (span + c.num_splits - 1) / c.num_splits;
        const int key_lo = tile_lo + min(split * chunk, span);
        const int key_end = tile_lo + min((split + 1) * chunk, span);

        /* Each step reads KPS keys per key group; the next step's keys are loaded before
         * this step's arithmetic, so that the loads of two steps are in flight at once. */
        raw_chunk kc[KPS], vc[KPS];
        #pragma unroll
        for (int u = 0; u < KPS; ++u) {
            const int j = key_lo + kg * KPS + u;
            kc[u] = vc[u] = (raw_chunk)(0);
            if (j < key_end) {
                const int2 slot = cache_slot(block_table, c, b, s.cache_row, s.kv_begin + j);
                kc[u] = load_chunk(k, slot_index(slot, p.k_off, p.k_sb, p.k_ss, p.k_sh, kv_head), d0);
                vc[u] = load_chunk(v, slot_index(slot, p.v_off, p.v_sb, p.v_ss, p.v_sh, kv_head), d0);
            }
        }
        for (int base = key_lo; base < key_end; base += KEY_GROUPS * KPS) {
            raw_chunk kn[KPS], vn[KPS];
            #pragma unroll
            for (int u = 0; u < KPS; ++u) {
                const int j = base + KEY_GROUPS * KPS + kg * KPS + u;
                kn[u] = vn[u] = (raw_chunk)(0);
                if (j < key_end) {
                    const int2 slot = cache_slot(block_table, c, b, s.cache_row, s.kv_begin + j);
                    kn[u] = load_chunk(k, slot_index(slot, p.k_off, p.k_sb, p.k_ss, p.k_sh, kv_head), d0);
                    vn[u] = load_chunk(v, slot_index(slot, p.v_off, p.v_sb, p.v_ss, p.v_sh, kv_head), d0);
                }
            }
            /* scores of the step's keys for every row: lane partial dot products, summed
             * over the key group's lanes */
            float sc[KPS * ROWS];
            #pragma unroll
            for (int u = 0; u < KPS; ++u) {
                const float8 kf = chunk_float(kc[u]);
                #pragma unroll
                for (int r = 0; r < ROWS; ++r) sc[u * ROWS + r] = dot8(qv[r], kf);
            }
#if WARP_SHUFFLE
            /* a key group is CHUNKS (a power of two) aligned lanes of one warp */
            #pragma unroll
            for (int mask = CHUNKS / 2; mask > 0; mask >>= 1)
                #pragma unroll
                for (int x = 0; x < KPS * ROWS; ++x) sc[x] += shuffle_xor(sc[x], mask);
#else
            #pragma unroll
            for (int x = 0; x < KPS * ROWS; ++x)
                lane_sums[(kg * KPS * ROWS + x) * CHUNKS + lane] = sc[x];
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int x = lane; x < KPS * ROWS; x += CHUNKS) {
                float sum = 0.0f;
                for (int t = 0; t < CHUNKS; ++t) sum += lane_sums[(kg * KPS * ROWS + x) * CHUNKS + t];
                scores[kg * KPS * ROWS + x] = sum;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            #pragma unroll
            for (int x = 0; x < KPS * ROWS; ++x) sc[x] = scores[kg * KPS * ROWS + x];
#endif
            float8 vf[KPS];
            #pragma unroll
            for (int u = 0; u < KPS; ++u) vf[u] = chunk_float(vc[u]);
            #pragma unroll
            for (int r = 0; r < ROWS; ++r) {
                float x[KPS];
                float step_max = -INFINITY;
                #pragma unroll
                for (int u = 0; u < KPS; ++u) {
                    const int j = base + kg * KPS + u;
                    const bool visible = j < key_end && j >= row_lo[r] && j < row_end[r];
                    x[u] = visible ? adjust_score(sc[u * ROWS + r], p.softcap, slope[r],
                                                  row_i[r] + off - j)
                                   : -INFINITY;
                    step_max = fmax(step_max, x[u]);
                }
                if (step_max > -INFINITY) {
                    const float m_new = fmax(m[r], step_max);
                    const float alpha = exp(m[r] - m_new); /* 0 on the first visible key */
                    l[r] *= alpha;
                    acc[r] *= alpha;
                    #pragma unroll
                    for (int u = 0; u < KPS; ++u) {
                        const float pr = exp(x[u] - m_new);
                        l[r] += pr;
                        acc[r] = fma((float8)(pr), vf[u], acc[r]);
                    }
                    m[r] = m_new;
                }
            }
            #pragma unroll
            for (int u = 0; u < KPS; ++u) {
                kc[u] = kn[u];
                vc[u] = vn[u];
            }
        }

        /* Merge the key groups' softmax states, then their accumulators, row by row. */
        if (lane == 0)
            #pragma unroll
            for (int r = 0; r < ROWS; ++r) {
                group_m[kg * ROWS + r] = m[r];
                group_l[kg * ROWS + r] = l[r];
            }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* unrolled: a loop index into the private arrays would move them out of registers */
        #pragma unroll
        for (int r = 0; r < ROWS; ++r) {
            float row_m = -INFINITY;
            for (int g = 0; g < KEY_GROUPS; ++g) row_m = fmax(row_m, group_m[g * ROWS + r]);
            float row_l = 0.0f;
            for (int g = 0; g < KEY_GROUPS; ++g)
                if (group_m[g * ROWS + r] > -INFINITY)
                    row_l += group_l[g * ROWS + r] * exp(group_m[g * ROWS + r] - row_m);
            const float8 mine = m[r] > -INFINITY ? acc[r] * exp(m[r] - row_m) : (float8)(0.0f);
            vstore8(mine, 0, out_sums + (kg * CHUNKS + lane) * 8);
            barrier(CLK_LOCAL_MEM_FENCE);
            const int i = row_i[r];
            if (i >= 0) {
                const int h = kv_head * p.group + (tile * ROWS + r - i * p.group);
#if SPLIT
                const long o_row = view_index(c.part_off + split * c.part_split, c.part_sb, c.part_ss, c.part_sh,
                                              b, s.q_start + i, h);
#else
                const long o_row = view_index(p.o_off, p.o_sb, p.o_ss, p.o_sh, b, s.q_start + i, h);
#endif
                /* a row that saw no key (here) gets out 0 and lse +inf: never NaN */
                const float inv_l = row_l > 0.0f ? 1.0f / row_l : 0.0f;
                for (int d = lid; d < HEAD_DIM; d += GROUP_SIZE) {
                    float sum = 0.0f;
                    for (int g = 0; g < KEY_GROUPS; ++g) sum += out_sums[g * CHUNKS * 8 + d];
#if SPLIT
                    o[o_row + d] = sum * inv_l;
#else
                    store_value(o, o_row + d, sum * inv_l);
#endif
                }
                if (lse && lid == 0) {
                    const float row_lse = row_l > 0.0f ? row_m + log(row_l) : INFINITY;
#if SPLIT
                    lse[view_index(c.plse_off + split * c.plse_split, c.plse_sb, c.plse_ss, c.plse_sh, b,
                                   s.q_start + i, h)] = row_lse;
#else
                    lse[view_index(p.lse_off, p.lse_sb, p.lse_ss, p.lse_sh, b, s.q_start + i, h)] =
                        row_lse;
#endif
                }
            }
            barrier(CLK_LOCAL_MEM_FENCE); /* out_sums is rewritten for the next row */
        }
    }
}

#endif /* !CACHE_CPU */
#endif /* !CACHE_MMA */

/* ------------------------------------------------------------------------ combine */

/* One work-item per (row of the sequence, query head, sequence): merge the splits'
 * partials (fp32, split stride part_split) into out and lse.
 * Rows outside every sequence stay unwritten, as in the forward. */
__kernel void cache_combine(__global const float *parts, __global const float *lse_parts,
                            __global storage_t *o, __global float *lse, __global const int *cu_q,
                            const attn_params p, const cache_params c)
{
    /* dimension 0: (row, d) pairs of launch_rows rows; one work-item per output element */
    const int launch_rows = (int)(get_global_size(0) / HEAD_DIM);
    const int i = get_global_id(0) / HEAD_DIM, d = get_global_id(0) - i * HEAD_DIM;
    const int h = get_global_id(1), b = get_global_id(2);
#if IS_VARLEN
    const int2 qr = prefix_range(cu_q, p.cu_q_off, b, p.total_q);
    const int q_start = qr.x, sq = qr.y;
#else
    (void)cu_q;
    const int q_start = 0, sq = p.seqlen_q;
#endif
    /* trusted prefix sums may describe more rows than the launch has: stride over them */
    for (int row = i; row < sq; row += launch_rows) {
        const long part = view_index(c.part_off, c.part_sb, c.part_ss, c.part_sh, b, q_start + row, h);
        const long plse = view_index(c.plse_off, c.plse_sb, c.plse_ss, c.plse_sh, b, q_start + row, h);
        const long out = view_index(p.o_off, p.o_sb, p.o_ss, p.o_sh, b, q_start + row, h);
        const float row_lse = merged_lse(lse_parts, plse, c.plse_split, c.num_splits);
        store_value(o, out + d, merged_value(parts, part, c.part_split, lse_parts, plse,
                                             c.plse_split, c.num_splits, row_lse, d));
        if (lse && d == 0)
            lse[view_index(p.lse_off, p.lse_sb, p.lse_ss, p.lse_sh, b, q_start + row, h)] = row_lse;
    }
}
