/* Kernels of tools/probes/tma_probe.c: Hopper's tensor copy engine (TMA,
 * cp.async.bulk.tensor) driven from OpenCL C with a tensor map that the CUDA driver
 * encoded, and the tensor cores reading the 128-byte swizzled tiles it writes.
 *
 * sm_90a instructions (wgmma) are PTX comments behind "// FACL_SM90A " (src/ptx_patch.h);
 * FACL_TMAP in a marker line is replaced by the host with the name of the kernel's first
 * parameter (the tensor map passed by value). Everything else is sm_90 PTX. */

#define STAGES 4
#define TILE_ROWS 64
#define TILE_HALVES (TILE_ROWS * 128) /* 64 rows x 128 dims of 16-bit values: 16 KiB */

typedef struct {
    ulong w[16];
} __attribute__((aligned(64))) tmap_t;

inline void mbar_init(__local ulong *bar, uint arrivals)
{
    asm volatile("mbarrier.init.shared.b64 [%0], %1;" : : "r"((uint)(ulong)bar), "r"(arrivals) : "memory");
}

inline void mbar_init_fence(void) { asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory"); }

inline void mbar_expect_tx(__local ulong *bar, uint bytes)
{
    asm volatile("{ .reg .b64 st; mbarrier.arrive.expect_tx.shared.b64 st, [%0], %1; }"
                 : : "r"((uint)(ulong)bar), "r"(bytes) : "memory");
}

inline void mbar_wait(__local ulong *bar, uint parity)
{
    uint done = 0;
    while (!done)
        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                     : "=r"(done) : "r"((uint)(ulong)bar), "r"(parity) : "memory");
}

inline void mbar_arrive(__local ulong *bar)
{
    asm volatile("{ .reg .b64 st; mbarrier.arrive.shared.b64 st, [%0]; }" : : "r"((uint)(ulong)bar) : "memory");
}

/* One box of the tensor map at generic address `map` into local memory, its bytes counted
 * on `bar`. */
inline void tma3(__local void *dst, __global const ulong *map, int x, int y, int z, __local ulong *bar)
{
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%2, %3, %4}], [%5];"
                 : : "r"((uint)(ulong)dst), "l"(map), "r"(x), "r"(y), "r"(z), "r"((uint)(ulong)bar)
                 : "memory");
}

/* The tensor map in global memory, written by the host before the launch; mode 1 adds
 * the acquire fence a map written by the device would need. */
inline void tmap_acquire(__global const ulong *map, int mode)
{
    if (mode == 1)
        asm volatile("fence.proxy.tensormap::generic.acquire.gpu [%0], 128;" : : "l"(map) : "memory");
}

#ifndef BYVAL_HOW
__kernel void addr_of(__global const uchar *p, __global ulong *out) { out[0] = (ulong)p; }

/* fp16 bits of a float that fp16 holds exactly (k / 8 here): no rounding needed. */
inline ushort half_bits(float f)
{
    if (f == 0.0f) return 0;
    const uint u = as_uint(f);
    const uint e = ((u >> 23) & 0xffu) - 127u + 15u;
    return (ushort)(((u >> 16) & 0x8000u) | (e << 10) | ((u >> 13) & 0x3ffu));
}

/* x (dims, seq, heads) fp16 with value ((s * 3 + c * 5 + h) % 17 - 8) / 8 */
__kernel void fill(__global ushort *x, int heads)
{
    const size_t i = get_global_id(0);
    const int c = (int)(i % 128), h = (int)((i / 128) % heads);
    const long s = (long)(i / (128 * (size_t)heads));
    x[i] = half_bits((float)((s * 3 + c * 5 + h) % 17 - 8) / 8.0f);
}

/* One 64 x 64 box at (x, y, z) into a 1024-byte aligned tile, copied out raw. */
__kernel __attribute__((reqd_work_group_size(128, 1, 1))) void tma_tile(__global const ulong *map,
                                                                        __global ushort *out, int x,
                                                                        int y, int z, int fence_mode)
{
    __local ushort tile[64 * 64] __attribute__((aligned(1024)));
    __local ulong bar;
    const int lid = get_local_id(0);
    if (lid == 0) {
        mbar_init(&bar, 1);
        mbar_init_fence();
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid == 0) {
        tmap_acquire(map, fence_mode);
        mbar_expect_tx(&bar, 64 * 64 * 2);
        tma3(tile, map, x, y, z, &bar);
    }
    mbar_wait(&bar, 0);
    for (int i = lid; i < 64 * 64; i += 128) out[i] = tile[i];
}

#else
/* The same with the map passed by value (CUDA's __grid_constant__ map): the copy takes
 * the generic address of the parameter FACL_TMAP (its name, put in by the host). Naming
 * the parameter in the copy itself is refused by ptxas ("state space mismatch"). */
__kernel __attribute__((reqd_work_group_size(128, 1, 1))) void tma_tile_byval(tmap_t map,
                                                                              __global ushort *out,
                                                                              int x, int y, int z)
{
    __local ushort tile[64 * 64] __attribute__((aligned(1024)));
    __local ulong bar;
    const int lid = get_local_id(0);
    if (lid == 0) {
        mbar_init(&bar, 1);
        mbar_init_fence();
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid == 0) {
        mbar_expect_tx(&bar, 64 * 64 * 2);
        ulong param_address = 0, map_address = 0;
        asm volatile("// FACL_SM90A mov.u64 %0, FACL_TMAP;" : "+l"(param_address));
        asm volatile("// FACL_SM90A cvta.param.u64 %0, %1;" : "+l"(map_address) : "l"(param_address));
        tma3(tile, (__global const ulong *)map_address, x, y, z, &bar);
    }
    mbar_wait(&bar, 0);
    for (int i = lid; i < 64 * 64; i += 128) out[i] = tile[i];
    if (lid == 0 && map.w[0] == 0x5a5a5a5a5a5a5a5aul) out[0] = 0; /* keeps the parameter */
}
#endif /* BYVAL_HOW */
#ifndef BYVAL_HOW

/* 128-byte swizzle descriptor (layout type 1 in bits 62-63), base offset 0: the tile is
 * 1024-byte aligned. */
inline ulong desc_sw128(__local const ushort *start, int lbo, int sbo)
{
    const uint addr = (uint)(ulong)start;
    return (ulong)((addr & 0x3FFFFu) >> 4) | ((ulong)((uint)lbo >> 4) << 16) |
           ((ulong)((uint)sbo >> 4) << 32) | (1ul << 62);
}

#define C4(c) "+f"((c).x), "+f"((c).y), "+f"((c).z), "+f"((c).w)
#define C32(c) C4((c)[0]), C4((c)[1]), C4((c)[2]), C4((c)[3]), C4((c)[4]), C4((c)[5]), C4((c)[6]), C4((c)[7])
#define D32 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
            "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"

inline void mma_ss(float4 *c, ulong da, ulong db, int trans_b)
{
    if (trans_b)
        asm volatile("// FACL_SM90A wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " D32
                     ", %32, %33, 1, 1, 1, 0, 1;" : C32(c) : "l"(da), "l"(db));
    else
        asm volatile("// FACL_SM90A wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " D32
                     ", %32, %33, 1, 1, 1, 0, 0;" : C32(c) : "l"(da), "l"(db));
}

inline void mma_fence(float4 *c) { asm volatile("// FACL_SM90A wgmma.fence.sync.aligned;" : C32(c) : : "memory"); }

inline void mma_commit_wait(float4 *c)
{
    asm volatile("// FACL_SM90A wgmma.commit_group.sync.aligned;\n"
                 "// FACL_SM90A wgmma.wait_group.sync.aligned 0;" : C32(c) : : "memory");
}

inline void store_acc(__global float *out, const float4 *c)
{
    const int lane = get_local_id(0) & 31, w = get_local_id(0) >> 5;
    const int r = 16 * w + (lane >> 2), t = lane & 3;
    for (int nb = 0; nb < 8; ++nb) {
        out[r * 64 + 8 * nb + 2 * t] = c[nb].x;
        out[r * 64 + 8 * nb + 2 * t + 1] = c[nb].y;
        out[(r + 8) * 64 + 8 * nb + 2 * t] = c[nb].z;
        out[(r + 8) * 64 + 8 * nb + 2 * t + 1] = c[nb].w;
    }
}

/* Q = rows y .. y + 63 and K = rows y + 64 .. y + 127 (dims 0..63, head z) by TMA; then
 * S = Q K^T (K K-major) and O = Q K (K read as an MN-major 64 x 64 B, "values"). The
 * MN-major descriptor's two offsets come from the host (which is which is the question). */
__kernel __attribute__((reqd_work_group_size(128, 1, 1))) void tma_mma(__global const ulong *map,
                                                                       __global float *s_out,
                                                                       __global float *o_out, int y,
                                                                       int z, int mn_lbo, int mn_sbo)
{
    __local ushort tq[64 * 64] __attribute__((aligned(1024)));
    __local ushort tk[64 * 64] __attribute__((aligned(1024)));
    __local ulong bar;
    const int lid = get_local_id(0);
    if (lid == 0) {
        mbar_init(&bar, 1);
        mbar_init_fence();
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid == 0) {
        mbar_expect_tx(&bar, 2 * 64 * 64 * 2);
        tma3(tq, map, 0, y, z, &bar);
        tma3(tk, map, 0, y + 64, z, &bar);
    }
    mbar_wait(&bar, 0);
    float4 c[8];
    for (int i = 0; i < 8; ++i) c[i] = (float4)(0.0f);
    mma_fence(c);
    for (int ks = 0; ks < 4; ++ks) /* 16 dims = 32 bytes along the swizzled row */
        mma_ss(c, desc_sw128(tq + ks * 16, 16, 1024), desc_sw128(tk + ks * 16, 16, 1024), 0);
    mma_commit_wait(c);
    store_acc(s_out, c);
    for (int i = 0; i < 8; ++i) c[i] = (float4)(0.0f);
    mma_fence(c);
    for (int ks = 0; ks < 4; ++ks) /* 16 keys = 16 rows of 128 bytes */
        mma_ss(c, desc_sw128(tq + ks * 16, 16, 1024), desc_sw128(tk + ks * 16 * 64, mn_lbo, mn_sbo), 1);
    mma_commit_wait(c);
    store_acc(o_out, c);
}

/* Streaming rates: every work-group reads `tiles` tiles of 64 rows x 128 dims (16 KiB)
 * of one head through STAGES buffers; all groups the same rows of head 0 (`distinct` 0:
 * FlashAttention's k/v reads, from L2) or each its own (1: from memory). */
__kernel __attribute__((reqd_work_group_size(128, 1, 1))) void rate_tma(__global const ulong *map,
                                                                        __global float *out,
                                                                        int tiles, int distinct,
                                                                        int seq_block)
{
    __local ushort buf[STAGES * TILE_HALVES] __attribute__((aligned(1024)));
    __local ulong full[STAGES], empty[STAGES];
    const int lid = get_local_id(0), g = get_group_id(0);
    const int head = distinct ? g % 16 : 0, seq0 = distinct ? (g / 16) * seq_block : 0;
    const int rows = seq_block / TILE_ROWS;
    if (lid == 0) {
        for (int s = 0; s < STAGES; ++s) {
            mbar_init(&full[s], 1);
            mbar_init(&empty[s], 4);
        }
        mbar_init_fence();
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid == 0)
        for (int t = 0; t < STAGES && t < tiles; ++t) {
            mbar_expect_tx(&full[t], TILE_HALVES * 2);
            const int y = seq0 + (t % rows) * TILE_ROWS;
            tma3(buf + t * TILE_HALVES, map, 0, y, head, &full[t]);
            tma3(buf + t * TILE_HALVES + 64 * 64, map, 64, y, head, &full[t]);
        }
    float sum = 0.0f;
    for (int t = 0; t < tiles; ++t) {
        const int s = t % STAGES;
        const uint phase = (uint)(t / STAGES) & 1u;
        mbar_wait(&full[s], phase);
        sum += (float)buf[s * TILE_HALVES + lid * 64];
        if ((lid & 31) == 0) mbar_arrive(&empty[s]);
        if (lid == 0 && t + STAGES < tiles) {
            mbar_wait(&empty[s], phase);
            mbar_expect_tx(&full[s], TILE_HALVES * 2);
            const int y = seq0 + ((t + STAGES) % rows) * TILE_ROWS;
            tma3(buf + s * TILE_HALVES, map, 0, y, head, &full[s]);
            tma3(buf + s * TILE_HALVES + 64 * 64, map, 64, y, head, &full[s]);
        }
    }
    out[g * 128 + lid] = sum;
}

inline void copy16(__local ushort *dst, __global const ushort *src)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" : : "r"((uint)(ulong)dst), "l"(src) : "memory");
}

/* The same reads with cp.async: each work-item copies 8 of a tile's 1024 16-byte pieces,
 * STAGES - 1 tiles ahead, a barrier on each side of the tile's use (FlashAttention 2). */
__kernel __attribute__((reqd_work_group_size(128, 1, 1))) void rate_cp(__global const ushort *x,
                                                                       __global float *out,
                                                                       int tiles, int distinct,
                                                                       int seq_block)
{
    __local ushort buf[STAGES * TILE_HALVES] __attribute__((aligned(1024)));
    const int lid = get_local_id(0), g = get_group_id(0);
    const int head = distinct ? g % 16 : 0, seq0 = distinct ? (g / 16) * seq_block : 0;
    const int rows = seq_block / TILE_ROWS;
    for (int t = 0; t < STAGES - 1; ++t) {
        for (int i = 0; i < 8; ++i) {
            const int p = lid + 128 * i, r = p >> 4, ch = p & 15;
            const long row = seq0 + (t % rows) * TILE_ROWS + r;
            copy16(buf + (t % STAGES) * TILE_HALVES + r * 128 + ch * 8, x + (row * 16 + head) * 128 + ch * 8);
        }
        asm volatile("cp.async.commit_group;" ::: "memory");
    }
    float sum = 0.0f;
    for (int t = 0; t < tiles; ++t) {
        const int next = t + STAGES - 1;
        if (next < tiles)
            for (int i = 0; i < 8; ++i) {
                const int p = lid + 128 * i, r = p >> 4, ch = p & 15;
                const long row = seq0 + (next % rows) * TILE_ROWS + r;
                copy16(buf + (next % STAGES) * TILE_HALVES + r * 128 + ch * 8,
                       x + (row * 16 + head) * 128 + ch * 8);
            }
        asm volatile("cp.async.commit_group;" ::: "memory");
        asm volatile("cp.async.wait_group 3;" ::: "memory"); /* STAGES - 1 */
        barrier(CLK_LOCAL_MEM_FENCE);
        sum += (float)buf[(t % STAGES) * TILE_HALVES + lid * 64];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    out[g * 128 + lid] = sum;
}
#endif /* !BYVAL_HOW */
