/* Warpgroup-level matrix products for Hopper (wgmma.mma_async, sm_90a): a warpgroup of
 * four warps (128 work-items) computes D(64 x 64) += A(64 x 16) B(16 x 64) in fp32,
 * with B, and A where the caller wants, read by the tensor cores straight from local
 * memory through 64-bit matrix descriptors.
 *
 * NVIDIA's OpenCL compiler targets sm_90 and refuses the sm_90a instructions, so each one
 * is written as a PTX comment behind FACL_PTX_SM90A_MARKER ("// FACL_SM90A "); the host
 * builds the program once, turns those comments into instructions and the target into
 * sm_90a (src/ptx_patch.c), and builds the result from that PTX. The operands are
 * substituted into the comment like into any inline asm.
 *
 * Register layouts, per warp w of the warpgroup (rows 16w .. 16w + 15 of the 64), with
 * g = lane / 4 and t = lane % 4: the fp32 accumulator of columns 8nb .. 8nb + 7 is the
 * float4 c[nb] of mma.m16n8k16's C layout (x, y = row g, columns 2t, 2t + 1; z, w = row
 * g + 8), and an A operand from registers is mma.m16n8k16's A layout (warp_mma.cl): the
 * score registers of two 8-key blocks are the A operand of one 16-key step, as with
 * mma.sync.
 *
 * Local tiles use the descriptors' interleaved layout without swizzling: 8 x 8 "core
 * matrices" of 128 contiguous bytes (8 rows of 16 bytes), stored row block by row block,
 * each row block's core matrices in column order (wg_tile_index). The same tile serves
 * as a K-major operand (rows = M or N, columns = K: keys for S = Q K^T, query rows for Q)
 * and as an MN-major one (rows = K, columns = N: values for O += P V), the descriptor's
 * two strides telling which (PTX ISA, "Shared Memory Matrix Layout", canonical layouts):
 *   K-major:  leading offset (next 8 columns) 128 bytes, stride offset (next 8 rows)
 *             16 * cols bytes;
 *   MN-major: leading offset (next 8 rows of K) 16 * cols bytes, stride offset (next 8
 *             columns of N) 128 bytes.
 * Data written to a tile by the work-items (stores or cp.async) is made visible to the
 * tensor cores by wg_proxy_fence in each writer, then a barrier.
 *
 * With MMA_EMULATE=1 (tests on any OpenCL device) the products are computed by each lane
 * for its own accumulator entries, reading the tiles through the same offsets the
 * descriptors describe, so that the kernels' layouts and strides are tested everywhere;
 * src/probe.c checks on the device that the hardware reads them the same way.
 * Needs warp_mma.cl (lanes, MMA_AB_TYPE, the emulation's scratch).
 */

inline int wg_warp(void) { return warp_index() & 3; } /* the warp within its warpgroup */

/* Element index of (row, col) in a tile of `cols` columns (a multiple of 8). */
inline int wg_tile_index(int row, int col, int cols)
{
    return ((row >> 3) * (cols >> 3) + (col >> 3)) * 64 + ((row & 7) << 3) + (col & 7);
}

/* The descriptor strides of a tile of `cols` columns, in bytes. */
/* WG_SW128=1: the tiles are in the tensor copy engine's 128-byte swizzle instead
 * (attn_fwd_mma.cl with WS_TMA): column blocks of 64 rows x 64 values (8 KiB, 1024-byte
 * aligned), each row's 128 bytes in place but its eight 16-byte pieces permuted, piece p
 * of row r at p ^ (r % 8). The descriptors then carry layout type 1 (bits 62-63) and,
 * for both majors, a stride of 1024 bytes per 8 rows; the leading offset is unused for
 * K-major operands and, MN-major, steps to the next 64 columns, which no product here
 * reads (each covers 64 columns). Checked on the H200 by tools/probes/tma_probe.c. */
#ifndef WG_SW128
#define WG_SW128 0
#endif
#if WG_SW128
#define WG_KMAJOR_LBO(cols) 16
#define WG_KMAJOR_SBO(cols) 1024
#define WG_MNMAJOR_LBO(cols) 8192
#define WG_MNMAJOR_SBO(cols) 1024
#else
#define WG_KMAJOR_LBO(cols) 128
#define WG_KMAJOR_SBO(cols) (16 * (cols))
#define WG_MNMAJOR_LBO(cols) (16 * (cols))
#define WG_MNMAJOR_SBO(cols) 128
#endif

#if !MMA_EMULATE

/* Matrix descriptor: start address, leading and stride byte offsets (each >> 4), no
 * swizzle (or the 128-byte one with WG_SW128), base offset 0 (swizzled tiles are
 * 1024-byte aligned). A __local pointer's integer value is its shared-window offset. */
inline ulong wg_desc(__local const ushort *start, int lbo, int sbo)
{
    const uint addr = (uint)(ulong)start;
    return (ulong)((addr & 0x3FFFFu) >> 4) | ((ulong)((uint)lbo >> 4) << 16) |
           ((ulong)((uint)sbo >> 4) << 32) | (WG_SW128 ? (1ul << 62) : 0ul);
}

/* The accumulator's 32 registers (8 float4) as asm operands. */
#define WG_C4(c) "+f"((c).x), "+f"((c).y), "+f"((c).z), "+f"((c).w)
#define WG_C32(c) WG_C4((c)[0]), WG_C4((c)[1]), WG_C4((c)[2]), WG_C4((c)[3]), \
                  WG_C4((c)[4]), WG_C4((c)[5]), WG_C4((c)[6]), WG_C4((c)[7])
#define WG_D32 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
               "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define WG_SHAPE "wgmma.mma_async.sync.aligned.m64n64k16.f32." MMA_AB_TYPE "." MMA_AB_TYPE " "

/* Orders this work-item's earlier local-memory writes before the tensor cores' reads
 * (the async proxy); sm_90, so not behind the marker. */
inline void wg_proxy_fence(void) { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

/* Before the first product of a batch: the accumulators and A registers are final. Taking
 * the accumulators as operands keeps the compiler from moving their writes past it. */
inline void wg_fence(float4 *c)
{
    asm volatile("// FACL_SM90A wgmma.fence.sync.aligned;" : WG_C32(c) : : "memory");
}

/* After the batch: commit it and wait for it. The accumulators are operands here too, so
 * that no read of them is scheduled before the wait. */
inline void wg_commit_wait(float4 *c)
{
    asm volatile("// FACL_SM90A wgmma.commit_group.sync.aligned;\n"
                 "// FACL_SM90A wgmma.wait_group.sync.aligned 0;"
                 : WG_C32(c) : : "memory");
}

/* Commit the products issued since the last commit as one group. */
inline void wg_commit(void) { asm volatile("// FACL_SM90A wgmma.commit_group.sync.aligned;" ::: "memory"); }

/* Wait for every committed group, or for all but the newest; the accumulators of the
 * awaited products are tied to the wait as in wg_commit_wait. */
inline void wg_wait_all(float4 *c)
{
    asm volatile("// FACL_SM90A wgmma.wait_group.sync.aligned 0;" : WG_C32(c) : : "memory");
}

inline void wg_wait_but_newest(float4 *c)
{
    asm volatile("// FACL_SM90A wgmma.wait_group.sync.aligned 1;" : WG_C32(c) : : "memory");
}

/* Further accumulators of the same batch: only tied to the fence or wait next to it (no
 * instruction), so that their writes come before the fence and their reads after the wait. */
inline void wg_hold(float4 *c) { asm volatile("" : WG_C32(c) : : "memory"); }

/* An A operand in registers: computed before the fence that follows (wgmma reads it
 * asynchronously; PTX ISA: no register a product reads may be written between the fence
 * and the product). */
inline void wg_hold_a(uint4 *a)
{
    asm volatile("" : "+r"((*a).x), "+r"((*a).y), "+r"((*a).z), "+r"((*a).w) : : "memory");
}

/* c += A B, A (64 x 16, K-major) and B from local memory: B K-major (N = 64 x 16,
 * `trans_b` 0) or MN-major (16 x 64, 1). */
#define WG_MMA_SS(NAME, TRANS_B)                                                              \
    inline void NAME(float4 *c, __local const ushort *a, int a_lbo, int a_sbo,              \
                     __local const ushort *b, int b_lbo, int b_sbo, __local float *scratch) \
    {                                                                                         \
        (void)scratch;                                                                        \
        asm volatile("{\n"                                                                  \
                     ".reg .pred p;\n"                                                      \
                     "setp.ne.b32 p, %34, 0;\n"                                             \
                     "// FACL_SM90A " WG_SHAPE WG_D32 ", %32, %33, p, 1, 1, 0, " #TRANS_B ";\n" \
                     "}"                                                                    \
                     : WG_C32(c)                                                            \
                     : "l"(wg_desc(a, a_lbo, a_sbo)), "l"(wg_desc(b, b_lbo, b_sbo)), "r"(1)); \
    }
WG_MMA_SS(wg_mma_ss, 0)
WG_MMA_SS(wg_mma_ss_mnmajor, 1)

/* c += A B, A from registers (this warp's 16 rows, mma's A layout), B from local memory:
 * K-major (`trans_b` 0) or MN-major (1). */
#define WG_MMA_RS(NAME, TRANS_B)                                                              \
    inline void NAME(float4 *c, uint4 a, __local const ushort *b, int b_lbo, int b_sbo,     \
                     __local float *scratch)                                                \
    {                                                                                         \
        (void)scratch;                                                                        \
        asm volatile("{\n"                                                                  \
                     ".reg .pred p;\n"                                                      \
                     "setp.ne.b32 p, %37, 0;\n"                                             \
                     "// FACL_SM90A " WG_SHAPE WG_D32 ", {%32, %33, %34, %35}, %36, p, 1, 1, " \
                     #TRANS_B ";\n"                                                         \
                     "}"                                                                    \
                     : WG_C32(c)                                                            \
                     : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "l"(wg_desc(b, b_lbo, b_sbo)), \
                       "r"(1));                                                             \
    }
WG_MMA_RS(wg_mma_rs_kmajor, 0)
WG_MMA_RS(wg_mma_rs_mnmajor, 1)

#else /* MMA_EMULATE */

inline void wg_proxy_fence(void) {}
inline void wg_fence(float4 *c) { (void)c; }
inline void wg_commit_wait(float4 *c) { (void)c; }
inline void wg_hold(float4 *c) { (void)c; }
inline void wg_commit(void) {}
inline void wg_wait_all(float4 *c) { (void)c; }
inline void wg_wait_but_newest(float4 *c) { (void)c; }
inline void wg_hold_a(uint4 *a) { (void)a; }

/* Element (r, k) of a K-major operand and (k, n) of an MN-major one, by the strides the
 * descriptor would carry (bytes; 2 per element). */
inline float wg_kmajor_at(__local const ushort *x, int lbo, int sbo, int r, int k)
{
    return storage_float(x[(r & 7) * 8 + (r >> 3) * (sbo / 2) + (k & 7) + (k >> 3) * (lbo / 2)]);
}

inline float wg_mnmajor_at(__local const ushort *x, int lbo, int sbo, int k, int n)
{
    return storage_float(x[(n & 7) + (n >> 3) * (sbo / 2) + (k & 7) * 8 + (k >> 3) * (lbo / 2)]);
}

/* This lane's accumulator entry i (0..3) of block nb: row and column in the 64 x 64. */
inline int wg_row(int i) { return 16 * wg_warp() + (warp_lane() >> 2) + 8 * (i >> 1); }
inline int wg_col(int nb, int i) { return 8 * nb + 2 * (warp_lane() & 3) + (i & 1); }

inline void wg_mma_ss_either(float4 *c, __local const ushort *a, int a_lbo, int a_sbo,
                             __local const ushort *b, int b_lbo, int b_sbo, int mn_major)
{
    for (int nb = 0; nb < 8; ++nb) {
        float e[4] = {c[nb].x, c[nb].y, c[nb].z, c[nb].w};
        for (int i = 0; i < 4; ++i)
            for (int k = 0; k < 16; ++k)
                e[i] += wg_kmajor_at(a, a_lbo, a_sbo, wg_row(i), k) *
                        (mn_major ? wg_mnmajor_at(b, b_lbo, b_sbo, k, wg_col(nb, i))
                                  : wg_kmajor_at(b, b_lbo, b_sbo, wg_col(nb, i), k));
        c[nb] = (float4)(e[0], e[1], e[2], e[3]);
    }
}

inline void wg_mma_ss(float4 *c, __local const ushort *a, int a_lbo, int a_sbo,
                      __local const ushort *b, int b_lbo, int b_sbo, __local float *scratch)
{
    (void)scratch;
    wg_mma_ss_either(c, a, a_lbo, a_sbo, b, b_lbo, b_sbo, 0);
}

inline void wg_mma_ss_mnmajor(float4 *c, __local const ushort *a, int a_lbo, int a_sbo,
                              __local const ushort *b, int b_lbo, int b_sbo, __local float *scratch)
{
    (void)scratch;
    wg_mma_ss_either(c, a, a_lbo, a_sbo, b, b_lbo, b_sbo, 1);
}

/* The warp's A registers through its scratch (16 x 16 floats), as warp_mma does. */
inline void wg_mma_rs(float4 *c, uint4 a, __local const ushort *b, int b_lbo, int b_sbo,
                      int mn_major, __local float *scratch)
{
    __local float *A = scratch + warp_index() * MMA_SCRATCH_PER_WARP; /* A[row * 16 + k] */
    const int g = warp_lane() >> 2;
    mma_store_a(A, a);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int nb = 0; nb < 8; ++nb) {
        float e[4] = {c[nb].x, c[nb].y, c[nb].z, c[nb].w};
        for (int i = 0; i < 4; ++i) {
            const int r = g + 8 * (i >> 1), n = wg_col(nb, i);
            for (int k = 0; k < 16; ++k)
                e[i] += A[r * 16 + k] * (mn_major ? wg_mnmajor_at(b, b_lbo, b_sbo, k, n)
                                                  : wg_kmajor_at(b, b_lbo, b_sbo, n, k));
        }
        c[nb] = (float4)(e[0], e[1], e[2], e[3]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

inline void wg_mma_rs_kmajor(float4 *c, uint4 a, __local const ushort *b, int b_lbo, int b_sbo,
                             __local float *scratch)
{
    wg_mma_rs(c, a, b, b_lbo, b_sbo, 0, scratch);
}

inline void wg_mma_rs_mnmajor(float4 *c, uint4 a, __local const ushort *b, int b_lbo, int b_sbo,
                              __local float *scratch)
{
    wg_mma_rs(c, a, b, b_lbo, b_sbo, 1, scratch);
}

#endif /* MMA_EMULATE */
