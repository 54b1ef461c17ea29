/* Warp-level matrix operations for the tensor-core kernels (attn_fwd_mma.cl,
 * attn_cache_mma.cl): the m16n8k16 tensor-core product with fp32 accumulation, a
 * butterfly shuffle, the packing of two fp32 values into one 32-bit operand register of
 * the 16-bit storage type, the softmax's exponential, asynchronous copies into local memory, and the readers of
 * key and value fragments from row-major local tiles (ldmatrix).
 *
 * On NVIDIA (sm_80 and newer) each is one inline-PTX instruction. With MMA_EMULATE=1 the
 * same operations are computed through local memory and barriers, with the same register
 * layouts, so that the kernel's fragment bookkeeping is tested on any OpenCL device
 * (PoCL in CI). The emulation needs the whole work-group to call each operation together,
 * which the kernel guarantees by keeping its control flow uniform.
 *
 * Register layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16"), with g = lane / 4 and
 * t = lane % 4, two 16-bit values per register, the lower column in the lower half:
 *   A (16 x 16, row major): a.x = (row g, cols 2t, 2t+1), a.y = (row g+8, same cols),
 *                           a.z = (row g, cols 2t+8, 2t+9), a.w = (row g+8, cols 2t+8, 2t+9)
 *   B (16 x 8, k x n):      b.x = (k 2t, 2t+1; col g),   b.y = (k 2t+8, 2t+9; col g)
 *   C (16 x 8, fp32):       c.x, c.y = (row g, cols 2t, 2t+1), c.z, c.w = (row g+8, same)
 */
#ifndef MMA_EMULATE
#define MMA_EMULATE 0
#endif

/* Loops over fragments are unrolled on NVIDIA, so that fragment arrays live in
 * registers. Not under emulation: there every unrolled copy of a loop body that holds a
 * barrier is a separate region for PoCL's work-group compiler, and compile time grows
 * into minutes. */
#if MMA_EMULATE
#define MMA_UNROLL
#else
#define MMA_UNROLL _Pragma("unroll")
#endif

/* Local floats the emulation needs per warp: A (16 x 16) and B (16 x 8). */
#define MMA_SCRATCH_PER_WARP (16 * 16 + 16 * 8)

inline int warp_lane(void) { return (int)get_local_id(0) & 31; }
inline int warp_index(void) { return (int)get_local_id(0) >> 5; }

#if !MMA_EMULATE

#if FACL_DTYPE == 1
#define MMA_AB_TYPE "f16"
#elif FACL_DTYPE == 2
#define MMA_AB_TYPE "bf16"
#else
#error "attn_fwd_mma needs fp16 or bf16 storage"
#endif

inline float4 warp_mma(float4 c, uint4 a, uint2 b, __local float *scratch)
{
    (void)scratch;
    float d0, d1, d2, d3;
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." MMA_AB_TYPE "." MMA_AB_TYPE ".f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};"
                 : "=f"(d0), "=f"(d1), "=f"(d2), "=f"(d3)
                 : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b.x), "r"(b.y), "f"(c.x),
                   "f"(c.y), "f"(c.z), "f"(c.w));
    return (float4)(d0, d1, d2, d3);
}

/* x from the lane whose index differs in the bits of `mask` (a compile-time constant). */
inline float warp_shuffle_xor(float x, int mask, __local float *scratch)
{
    (void)scratch;
    uint r;
    asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=r"(r) : "r"(as_uint(x)), "r"(mask));
    return as_float(r);
}

/* x from lane `lane` of the warp. */
inline uint warp_shuffle_u32(uint x, int lane, __local float *scratch)
{
    (void)scratch;
    uint r;
    asm volatile("shfl.sync.idx.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=r"(r) : "r"(x), "r"(lane));
    return r;
}

/* (lo, hi) rounded to the storage type, lo in the lower 16 bits. */
inline uint pack_pair(float lo, float hi)
{
    uint r;
    asm("cvt.rn." MMA_AB_TYPE "x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

/* Whether `pred` holds in any lane of the warp (vote.sync.any): a branch that every lane
 * then takes together. */
inline bool warp_any(bool pred)
{
    uint r;
    asm volatile("{ .reg .pred p; setp.ne.u32 p, %1, 0; vote.sync.any.pred p, p, 0xffffffff; "
                 "selp.u32 %0, 1, 0, p; }"
                 : "=r"(r)
                 : "r"((uint)pred));
    return r != 0;
}

/* The lanes of this warp meet; their local-memory writes become visible to each other
 * (bar.warp.sync orders memory among the threads it names). Warps that stage their own
 * tiles need no work-group barrier, so they do not wait for one another. */
inline void warp_sync(void) { asm volatile("bar.warp.sync -1;" ::: "memory"); }

/* 16 bytes from global to local memory without passing through registers (cp.async,
 * sm_80 and newer), landing by the matching async_wait; src_bytes = 0 writes zeros and
 * reads nothing. A __local pointer's integer value is its offset in the shared window,
 * which is what the .shared operand takes. */
inline void copy_async16(__local void *dst, __global const void *src, int src_bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;"
                 :
                 : "r"((uint)(ulong)dst), "l"(src), "r"(src_bytes)
                 : "memory");
}

/* ldmatrix: 8x8 matrices of 16-bit elements from local memory, each row 16 contiguous
 * bytes. Lane L names row L % 8 of matrix L / 8 (.x2: lanes 0-15 are read); register i
 * of lane L gets matrix i's (row L / 4; columns 2(L % 4), +1), or with .trans its
 * (rows 2(L % 4), +1; column L / 4): the mma fragment layouts, from one instruction
 * instead of a local load per 32 or 16 bits. */
inline uint4 ldmatrix_x4(__local const ushort *row)
{
    uint4 r;
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
                 : "r"((uint)(ulong)row));
    return r;
}

inline uint4 ldmatrix_x4_trans(__local const ushort *row)
{
    uint4 r;
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
                 : "r"((uint)(ulong)row));
    return r;
}

inline uint2 ldmatrix_x2(__local const ushort *row)
{
    uint2 r;
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];"
                 : "=r"(r.x), "=r"(r.y)
                 : "r"((uint)(ulong)row));
    return r;
}

/* The copies issued since the last commit form one group. */
inline void async_commit(void) { asm volatile("cp.async.commit_group;" ::: "memory"); }

/* Wait until at most n (a literal) committed groups are still in flight. */
#define ASYNC_WAIT(n) asm volatile("cp.async.wait_group " #n ";" ::: "memory")

/* Hopper's bulk copy engine (sm_90): one instruction moves a whole row (`bytes`, a
 * multiple of 16, both ends 16-byte aligned) from global to local memory, outside the
 * load/store unit, and counts its bytes onto a transaction barrier (mbarrier) in local
 * memory; a waiter sees the row once the barrier's phase completes, i.e. once the bytes
 * announced by mbar_expect_tx have all landed and its `arrivals` arrivals have been made
 * (one for the copy engine's expect_tx; attn_fwd_wgmma's producer and consumers count
 * work-items or warps). */
inline void mbar_init(__local ulong *bar, uint arrivals)
{
    asm volatile("mbarrier.init.shared.b64 [%0], %1;" : : "r"((uint)(ulong)bar), "r"(arrivals) : "memory");
}

/* The barriers' initialisation, before the copy engine uses them. */
inline void mbar_init_fence(void)
{
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

/* This phase's one arrival, announcing the bytes its copies will bring. */
inline void mbar_expect_tx(__local ulong *bar, uint bytes)
{
    asm volatile("{ .reg .b64 st; mbarrier.arrive.expect_tx.shared.b64 st, [%0], %1; }"
                 :
                 : "r"((uint)(ulong)bar), "r"(bytes)
                 : "memory");
}

/* Until the phase of this parity (0 or 1) has completed. */
inline void mbar_wait(__local ulong *bar, uint parity)
{
    uint done = 0;
    while (!done)
        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                     : "=r"(done)
                     : "r"((uint)(ulong)bar), "r"(parity)
                     : "memory");
}

/* One arrival on a barrier counting work-items (release: this work-item's earlier
 * accesses, and the tensor-core reads it has waited for, come before the phase's end). */
inline void mbar_arrive(__local ulong *bar)
{
    asm volatile("{ .reg .b64 st; mbarrier.arrive.shared.b64 st, [%0]; }" : : "r"((uint)(ulong)bar) : "memory");
}

/* This work-item's arrival, made once its cp.async copies issued so far have landed
 * (.noinc: the barrier's arrival count includes it). */
inline void async_arrive(__local ulong *bar)
{
    asm volatile("cp.async.mbarrier.arrive.noinc.shared.b64 [%0];" : : "r"((uint)(ulong)bar) : "memory");
}

inline void copy_bulk(__local void *dst, __global const void *src, uint bytes, __local ulong *bar)
{
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 :
                 : "r"((uint)(ulong)dst), "l"(src), "r"(bytes), "r"((uint)(ulong)bar)
                 : "memory");
}

/* Ordinary local writes before the copy engine's later writes to the same bytes. */
inline void async_proxy_fence(void) { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

/* This thread's global writes before its later ones, for every thread of the device
 * (membar.gl): what a work-group publishes before counting itself in with an atomic, and
 * what the last one to count in does before it reads the others' results. */
inline void global_fence(void) { asm volatile("membar.gl;" ::: "memory"); }

/* 2^x for the softmax (the argument at most a few units above 0, the result a
 * probability): ex2.approx.ftz, one special-function instruction. native_exp2 compiles to
 * ex2.approx without .ftz, which NVIDIA's compiler wraps in a denormal-safe sequence (a
 * compare and two predicated multiplies around each ex2: 3 of every 5 instructions of
 * the exponentials in attn_fwd_mma's SASS, run 62). Flushing results below 2^-126 to
 * zero changes nothing a row's sum (at least 1) can show. */
inline float exp2_ftz(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

/* A float another work-group of this kernel wrote (published by global_fence and an
 * atomic): read from L2 (.cg), past this compute unit's L1, which is not coherent with
 * the others; volatile, so that it is not moved above the fence that orders it. */
inline float load_published(__global const float *x)
{
    float v;
    asm volatile("ld.global.cg.f32 %0, [%1];" : "=f"(v) : "l"(x) : "memory");
    return v;
}

#else /* MMA_EMULATE */

inline float exp2_ftz(float x) { return native_exp2(x); }

inline uint pack_pair(float lo, float hi)
{
    return (uint)storage_bits(lo) | ((uint)storage_bits(hi) << 16);
}

inline float low_half(uint r) { return storage_float((ushort)(r & 0xFFFFu)); }
inline float high_half(uint r) { return storage_float((ushort)(r >> 16)); }

/* This lane's share of an A operand (16 x 16, A layout) into A[row * 16 + k]. */
inline void mma_store_a(__local float *A, uint4 a)
{
    const int g = warp_lane() >> 2, t = warp_lane() & 3;
    A[g * 16 + 2 * t] = low_half(a.x);
    A[g * 16 + 2 * t + 1] = high_half(a.x);
    A[(g + 8) * 16 + 2 * t] = low_half(a.y);
    A[(g + 8) * 16 + 2 * t + 1] = high_half(a.y);
    A[g * 16 + 2 * t + 8] = low_half(a.z);
    A[g * 16 + 2 * t + 9] = high_half(a.z);
    A[(g + 8) * 16 + 2 * t + 8] = low_half(a.w);
    A[(g + 8) * 16 + 2 * t + 9] = high_half(a.w);
}

inline float4 warp_mma(float4 c, uint4 a, uint2 b, __local float *scratch)
{
    __local float *A = scratch + warp_index() * MMA_SCRATCH_PER_WARP; /* A[row * 16 + k] */
    __local float *B = A + 16 * 16;                                    /* B[k * 8 + col] */
    const int g = warp_lane() >> 2, t = warp_lane() & 3;
    mma_store_a(A, a);
    B[(2 * t) * 8 + g] = low_half(b.x);
    B[(2 * t + 1) * 8 + g] = high_half(b.x);
    B[(2 * t + 8) * 8 + g] = low_half(b.y);
    B[(2 * t + 9) * 8 + g] = high_half(b.y);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = 0; k < 16; ++k) {
        c.x += A[g * 16 + k] * B[k * 8 + 2 * t];
        c.y += A[g * 16 + k] * B[k * 8 + 2 * t + 1];
        c.z += A[(g + 8) * 16 + k] * B[k * 8 + 2 * t];
        c.w += A[(g + 8) * 16 + k] * B[k * 8 + 2 * t + 1];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    return c;
}

inline float warp_shuffle_xor(float x, int mask, __local float *scratch)
{
    __local float *S = scratch + warp_index() * MMA_SCRATCH_PER_WARP;
    S[warp_lane()] = x;
    barrier(CLK_LOCAL_MEM_FENCE);
    const float y = S[warp_lane() ^ mask];
    barrier(CLK_LOCAL_MEM_FENCE);
    return y;
}

inline uint warp_shuffle_u32(uint x, int lane, __local float *scratch)
{
    __local uint *S = (__local uint *)(scratch + warp_index() * MMA_SCRATCH_PER_WARP);
    S[warp_lane()] = x;
    barrier(CLK_LOCAL_MEM_FENCE);
    const uint y = S[lane];
    barrier(CLK_LOCAL_MEM_FENCE);
    return y;
}

/* Callers use it to skip work that would change nothing, so "yes" is always right here. */
inline bool warp_any(bool pred)
{
    (void)pred;
    return true;
}

/* The emulation runs a work-group's work-items in lock step through barriers, so a
 * work-group barrier stands in for the warp's, and copies complete at once. */
inline void warp_sync(void) { barrier(CLK_LOCAL_MEM_FENCE); }

inline void copy_async16(__local void *dst, __global const void *src, int src_bytes)
{
    *(__local uint4 *)dst = src_bytes ? *(__global const uint4 *)src : (uint4)(0u);
}

inline void async_commit(void) {}

#define ASYNC_WAIT(n) ((void)0)

inline void global_fence(void) { mem_fence(CLK_GLOBAL_MEM_FENCE); }

/* The bulk copy completes at once, so its barrier has nothing to count. */
inline void mbar_init(__local ulong *bar, uint arrivals) { (void)arrivals, *bar = 0; }
inline void mbar_init_fence(void) {}
inline void mbar_expect_tx(__local ulong *bar, uint bytes) { (void)bar, (void)bytes; }
inline void mbar_wait(__local ulong *bar, uint parity) { (void)bar, (void)parity; }
inline void mbar_arrive(__local ulong *bar) { (void)bar; }
inline void async_arrive(__local ulong *bar) { (void)bar; }
inline void copy_bulk(__local void *dst, __global const void *src, uint bytes, __local ulong *bar)
{
    (void)bar;
    for (uint i = 0; i < bytes / 16; ++i)
        ((__local uint4 *)dst)[i] = ((__global const uint4 *)src)[i];
}
inline void async_proxy_fence(void) {}


inline float load_published(__global const float *x) { return *(volatile __global const float *)x; }

#endif /* MMA_EMULATE */

/* Max and sum over the four lanes of a quad (lanes 4g .. 4g+3: one row of a fragment). */
inline float quad_max(float x, __local float *scratch)
{
    x = fmax(x, warp_shuffle_xor(x, 1, scratch));
    return fmax(x, warp_shuffle_xor(x, 2, scratch));
}

inline float quad_sum(float x, __local float *scratch)
{
    x += warp_shuffle_xor(x, 1, scratch);
    return x + warp_shuffle_xor(x, 2, scratch);
}


/* Eight consecutive 16-bit values of one row starting at column c; columns at or past
 * HEAD_DIM read as zero. VEC_LOADS (the kernel's -D, 0 when absent): every row starts
 * on a 16-byte boundary, so one 16-byte load serves. */
inline uint4 load_row8(__global const ushort *row, int c)
{
#if VEC_LOADS
    if (c + 8 <= HEAD_DIM) return *(__global const uint4 *)(row + c);
#endif
    ushort x[8];
    for (int e = 0; e < 8; ++e) x[e] = c + e < HEAD_DIM ? row[c + e] : (ushort)0;
    return (uint4)((uint)x[0] | ((uint)x[1] << 16), (uint)x[2] | ((uint)x[3] << 16),
                   (uint)x[4] | ((uint)x[5] << 16), (uint)x[6] | ((uint)x[7] << 16));
}

/* Columns c and c + 1 of the row starting at element `row` of x (lo and hi in fp32,
 * rounded to the storage type). With `as_pair` (a literal: 1 only where every row starts on
 * a 16-byte boundary and HEAD_DIM % 8 == 0, so c < HEAD_DIM covers c + 1) one 32-bit store;
 * else value by value, which half-fills 32-byte sectors: on the H200 such stores cost the
 * forward's short rows up to a fifth of their time (docs/PERFORMANCE.md, run 66). */
inline void store_value_pair(__global storage_t *x, long row, int c, float lo, float hi, bool as_pair)
{
    if (as_pair) {
        if (c < HEAD_DIM) *(__global uint *)((__global ushort *)x + row + c) = pack_pair(lo, hi);
    } else {
        if (c < HEAD_DIM) store_value(x, row + c, lo);
        if (c + 1 < HEAD_DIM) store_value(x, row + c + 1, hi);
    }
}

/* A row's 16-byte pieces from the C layout: in the 8-column blocks db0 .. db0 + 3, lane t
 * of a quad holds the pair (2t, 2t + 1) of each (v[0..3], packed); a 4 x 4 transpose
 * across the quad gives lane t the whole of block db0 + t (its four pairs, from lanes
 * 0..3), which it then stores with one 16-byte store: a quad writes 64 contiguous bytes
 * of its row instead of sixteen 4-byte pieces. In round r lane s offers its pair of block
 * (s - r) % 4 and lane t reads it from lane (t + r) % 4, which holds exactly the pair of
 * block t that belongs at position (t + r) % 4. Selects instead of indexing, so that v
 * and the result stay in registers. */
inline uint4 quad_transpose(const uint v[4], __local float *scratch)
{
    const int t = warp_lane() & 3;
    uint4 out = (uint4)(0u);
MMA_UNROLL
    for (int r = 0; r < 4; ++r) {
        const int give = (t - r) & 3, from = (t + r) & 3;
        const uint offer = give == 0 ? v[0] : give == 1 ? v[1] : give == 2 ? v[2] : v[3];
        const uint got = warp_shuffle_u32(offer, (warp_lane() & ~3) | from, scratch);
        out.x = from == 0 ? got : out.x;
        out.y = from == 1 ? got : out.y;
        out.z = from == 2 ? got : out.z;
        out.w = from == 3 ? got : out.w;
    }
    return out;
}

/* ---------------------------------------------------------------- fragment readers */

/* The B fragments (b.x: dims 2t, 2t+1; b.y: dims 2t+8, 2t+9; of key g) of keys
 * 8nb .. 8nb+7 of a row-major key tile (`pitch` 16-bit elements per key row) for k-steps
 * ks and ks + 1 (kb[0], kb[1]), or ks alone (`two` = 0): one ldmatrix on NVIDIA. */
inline void mma_key_fragments(__local const ushort *k_tile, int pitch, int nb, int ks, bool two,
                              uint2 *kb)
{
#if MMA_EMULATE
    const int g = warp_lane() >> 2, t = warp_lane() & 3;
    __local const ushort *krow = k_tile + (8 * nb + g) * pitch + 16 * ks + 2 * t;
    kb[0] = (uint2)(*(__local const uint *)krow, *(__local const uint *)(krow + 8));
    if (two) kb[1] = (uint2)(*(__local const uint *)(krow + 16), *(__local const uint *)(krow + 24));
#else
    /* matrix i = dims 16ks + 8i .. + 7 of the 8 keys (rows) */
    const int lane = warp_lane();
    if (two) {
        const uint4 r = ldmatrix_x4(k_tile + (8 * nb + (lane & 7)) * pitch + 16 * ks + 8 * (lane >> 3));
        kb[0] = r.xy;
        kb[1] = r.zw;
    } else {
        kb[0] = ldmatrix_x2(k_tile + (8 * nb + (lane & 7)) * pitch + 16 * ks + 8 * ((lane >> 3) & 1));
    }
#endif
}

/* The B fragments (b.x: keys 2t, 2t+1; b.y: keys 2t+8, 2t+9; of dim g) of 16 keys' value
 * dims 8db .. 8db+7 (vb[0]) and 8(db+1) .. (vb[1]), from a row-major value tile whose
 * first row is the first of the 16 keys: one ldmatrix.trans on NVIDIA, so the values
 * need no transposing store. */
inline void mma_value_fragments(__local const ushort *v_tile, int pitch, int db, uint2 *vb)
{
#if MMA_EMULATE
    const int g = warp_lane() >> 2, t = warp_lane() & 3;
    for (int h = 0; h < 2; ++h) {
        __local const ushort *vcol = v_tile + 2 * t * pitch + 8 * (db + h) + g;
        uint e[4];
        for (int i = 0; i < 4; ++i) e[i] = vcol[((i & 1) + (i >> 1) * 8) * pitch];
        vb[h] = (uint2)(e[0] | (e[1] << 16), e[2] | (e[3] << 16));
    }
#else
    /* matrix i = keys 8(i & 1) .. + 7 (rows) x dims 8(db + i / 2) .. + 7, transposed */
    const int lane = warp_lane(), i = lane >> 3;
    const uint4 r = ldmatrix_x4_trans(v_tile + ((lane & 7) + 8 * (i & 1)) * pitch + 8 * (db + (i >> 1)));
    vb[0] = r.xy;
    vb[1] = r.zw;
#endif
}

/* The A operand (a 16 x 16 block, rows m, columns k) made of rows 0 .. 15 and columns
 * 16ks .. 16ks + 15 of a row-major tile (`pitch` 16-bit elements per row): one ldmatrix
 * on NVIDIA. The backward kernels read k, v, q, dout and the transposed probabilities
 * this way, so that no operand has to stay in registers for a whole call. */
inline uint4 mma_a_fragment(__local const ushort *tile, int pitch, int ks)
{
#if MMA_EMULATE
    const int g = warp_lane() >> 2, t = warp_lane() & 3;
    __local const ushort *row_a = tile + g * pitch + 16 * ks + 2 * t;
    __local const ushort *row_b = row_a + 8 * pitch;
    return (uint4)(*(__local const uint *)row_a, *(__local const uint *)row_b,
                   *(__local const uint *)(row_a + 8), *(__local const uint *)(row_b + 8));
#else
    /* matrix i = rows 8(i & 1) .. + 7 x columns 16ks + 8(i / 2) .. + 7 */
    const int lane = warp_lane(), i = lane >> 3;
    return ldmatrix_x4(tile + ((lane & 7) + 8 * (i & 1)) * pitch + 16 * ks + 8 * (i >> 1));
#endif
}
