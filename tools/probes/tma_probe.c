/* Probe: Hopper's tensor copy engine (TMA) from OpenCL, for issue 10.
 *
 * attn_fwd_wgmma's k/v copies bound it at d = 128 and 256 (docs/PERFORMANCE.md, session
 * 17: 2.4 TB/s from L2 into the SMs with cp.async); FlashAttention 3 moves the same bytes
 * with cp.async.bulk.tensor, which needs a tensor map (a 128-byte descriptor that only
 * the CUDA driver's cuTensorMapEncodeTiled makes). This asks, on the device at hand:
 *   1. can an OpenCL process encode a map through libcuda (dlopen; no CUDA context) for a
 *      cl_mem's device address (read by a kernel), and can a kernel copy a box with it,
 *      the map in global memory (with and without the acquire fence) or passed by value;
 *   2. is the box in local memory in the 128-byte swizzled layout, and are out-of-range
 *      rows zero;
 *   3. do wgmma's 128-byte swizzle descriptors read such tiles right, as a K-major
 *      operand (k of S = Q K^T) and as an MN-major one (v of O = P V), and which of the
 *      MN-major descriptor's two offsets is the 1024-byte step;
 *   4. how fast the engine streams tiles into the SMs next to cp.async, from L2 (every
 *      group reading the same rows, as FlashAttention's k/v reads do) and from memory.
 *
 *   cc -O2 -std=c11 -Iinclude -Isrc -o /tmp/tma_probe tools/probes/tma_probe.c \
 *      src/ptx_patch.c src/status.c -lOpenCL -ldl && /tmp/tma_probe tools/probes/tma_probe.cl
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptx_patch.h"

#define HEADS 16
#define SEQ_BLOCK 16384
#define SEQ (SEQ_BLOCK * 17) /* 264 groups / 16 heads, rounded up: every group its own rows */

static cl_context ctx;
static cl_device_id dev;
static cl_command_queue queue;

/* The CUDA driver's encoder, declared here (no CUDA headers needed): enums as ints. */
typedef int (*cu_init_fn)(unsigned);
typedef int (*cu_device_get_fn)(int *device, int ordinal);
typedef int (*cu_primary_ctx_retain_fn)(void **context, int device);
typedef int (*cu_ctx_set_current_fn)(void *context);
typedef int (*cu_encode_fn)(void *map, int dtype, uint32_t rank, void *address, const uint64_t *dims,
                            const uint64_t *strides, const uint32_t *box, const uint32_t *element_strides,
                            int interleave, int swizzle, int l2_promotion, int oob_fill);
enum { CU_DTYPE_FLOAT16 = 6, CU_SWIZZLE_128B = 3, CU_L2_PROMOTION_128B = 2 };

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    const size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

static void print_log(cl_program p, const char *what)
{
    char log[8192] = {0};
    clGetProgramBuildInfo(p, dev, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
    printf("%s: %.3000s\n", what, log);
}

/* Every occurrence of `from` in `s` replaced by `to` (a new string). */
static char *replace_all(const char *s, const char *from, const char *to)
{
    size_t count = 0;
    for (const char *p = strstr(s, from); p; p = strstr(p + 1, from)) ++count;
    char *out = malloc(strlen(s) + count * strlen(to) + 1), *o = out;
    for (const char *p = s;;) {
        const char *hit = strstr(p, from);
        if (!hit) {
            strcpy(o, p);
            break;
        }
        memcpy(o, p, (size_t)(hit - p));
        o += hit - p;
        strcpy(o, to);
        o += strlen(to);
        p = hit + strlen(from);
    }
    return out;
}

/* The library's way: build, take the driver's PTX, patch it to sm_90a (src/ptx_patch.c),
 * put the by-value map's parameter name in, build from that PTX. */
static cl_program build(const char *src, const char *options, const char *param_name)
{
    cl_int err;
    cl_program p = clCreateProgramWithSource(ctx, 1, &src, NULL, &err);
    if (clBuildProgram(p, 1, &dev, options, NULL, NULL) != CL_SUCCESS) {
        print_log(p, "OpenCL C build failed");
        return NULL;
    }
    size_t n;
    clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL);
    char *ptx = malloc(n + 1);
    clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof ptx, &ptx, NULL);
    ptx[n] = 0;
    clReleaseProgram(p);
    char *patched = NULL;
    size_t length = 0;
    int markers = 0;
    if (facl_ptx_to_sm90a(ptx, strlen(ptx), &patched, &length, &markers) != FACL_SUCCESS) {
        printf("patch failed\n");
        return NULL;
    }
    if (param_name) {
        char *named = replace_all(patched, "FACL_TMAP", param_name);
        free(patched);
        patched = named;
        const char *decl = strstr(patched, param_name);
        printf("  by-value parameter as declared: %.80s\n", decl ? decl - 40 : "(not found)");
    }
    size_t len = strlen(patched) + 1;
    cl_int status;
    cl_program q = clCreateProgramWithBinary(ctx, 1, &dev, &len, (const unsigned char **)&patched, &status, &err);
    if (err == CL_SUCCESS) err = clBuildProgram(q, 1, &dev, "", NULL, NULL);
    free(ptx);
    free(patched);
    if (err != CL_SUCCESS) {
        print_log(q, "sm_90a build failed");
        return NULL;
    }
    return q;
}

static float value_at(long s, int h, int c) { return (float)((s * 3 + c * 5 + h) % 17 - 8) / 8.0f; }

static uint16_t half_bits(float f)
{
    if (f == 0.0f) return 0;
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint32_t sign = (u >> 16) & 0x8000u;
    const int e = (int)((u >> 23) & 0xff) - 127 + 15;
    return (uint16_t)(sign | ((uint32_t)e << 10) | ((u >> 13) & 0x3ffu)); /* exact for k / 8 */
}

static int encode(cu_encode_fn enc, void *map, uint64_t address, uint64_t seq)
{
    const uint64_t dims[3] = {128, seq, HEADS};
    const uint64_t strides[2] = {HEADS * 128 * 2, 128 * 2}; /* bytes: next row, next head */
    const uint32_t box[3] = {64, 64, 1}, one[3] = {1, 1, 1};
    return enc(map, CU_DTYPE_FLOAT16, 3, (void *)(uintptr_t)address, dims, strides, box, one, 0,
               CU_SWIZZLE_128B, CU_L2_PROMOTION_128B, 0);
}

/* Element (r, c) of a 64 x 64 box in the 128-byte swizzle: the 16-byte piece c / 8 of
 * row r sits at piece (c / 8) ^ (r % 8) of the row's 128 bytes. */
static int swizzled(int r, int c) { return r * 64 + ((((c >> 3) ^ (r & 7))) << 3) + (c & 7); }

static int check_tile(const uint16_t *tile, int x, int y, int z, const char *what)
{
    int bad = 0;
    for (int r = 0; r < 64; ++r)
        for (int c = 0; c < 64; ++c) {
            const long s = (long)y + r;
            const uint16_t want = s < SEQ ? half_bits(value_at(s, z, x + c)) : 0;
            const uint16_t got = tile[swizzled(r, c)];
            if (got != want && bad++ < 4)
                printf("  %s: (%d, %d) got 0x%04x want 0x%04x (plain-layout value 0x%04x)\n", what, r, c,
                       got, want, tile[r * 64 + c]);
        }
    printf("%s: %s (%d of 4096 wrong)\n", what, bad ? "FAIL" : "ok", bad);
    return bad;
}

static double run_timed(cl_kernel k, size_t groups, int reps)
{
    const size_t local = 128, global = groups * local;
    double best = 1e30;
    for (int rep = 0; rep < reps; ++rep) {
        cl_event ev;
        if (clEnqueueNDRangeKernel(queue, k, 1, NULL, &global, &local, 0, NULL, &ev) != CL_SUCCESS) return -1;
        clWaitForEvents(1, &ev);
        cl_ulong t0, t1;
        clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
        clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
        clReleaseEvent(ev);
        if (rep && (double)(t1 - t0) < best) best = (double)(t1 - t0);
    }
    return best;
}

int main(int argc, char **argv)
{
    char *src = read_text(argc > 1 ? argv[1] : "tools/probes/tma_probe.cl");
    if (!src) {
        printf("no kernel source\n");
        return 1;
    }
    cl_platform_id platforms[8];
    cl_uint np = 0, nd = 0;
    clGetPlatformIDs(8, platforms, &np);
    for (cl_uint i = 0; i < np && !nd; ++i)
        if (clGetDeviceIDs(platforms[i], CL_DEVICE_TYPE_GPU, 1, &dev, &nd) != CL_SUCCESS) nd = 0;
    if (!nd) {
        printf("no GPU\n");
        return 1;
    }
    cl_int err;
    ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    queue = clCreateCommandQueue(ctx, dev, CL_QUEUE_PROFILING_ENABLE, &err);
    cl_uint cus = 0;
    clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cus, &cus, NULL);

    /* 1. the encoder */
    void *cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!cuda) cuda = dlopen("libcuda.so", RTLD_NOW | RTLD_LOCAL);
    if (!cuda) {
        printf("libcuda: not found (%s)\n", dlerror());
        return 1;
    }
    cu_init_fn cu_init = (cu_init_fn)dlsym(cuda, "cuInit");
    cu_encode_fn enc = (cu_encode_fn)dlsym(cuda, "cuTensorMapEncodeTiled");
    printf("libcuda: cuInit %p, cuTensorMapEncodeTiled %p\n", (void *)cu_init, (void *)enc);
    if (!cu_init || !enc) return 1;

    const size_t elems = (size_t)SEQ * HEADS * 128;
    cl_mem x = clCreateBuffer(ctx, CL_MEM_READ_WRITE, elems * 2, NULL, &err);
    cl_mem maps = clCreateBuffer(ctx, CL_MEM_READ_ONLY, 128, NULL, &err);
    cl_mem addr = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 8, NULL, &err);
    cl_mem tile = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 64 * 64 * 2, NULL, &err);
    cl_mem s_out = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 64 * 64 * 4, NULL, &err);
    cl_mem o_out = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 64 * 64 * 4, NULL, &err);
    cl_mem sums = clCreateBuffer(ctx, CL_MEM_READ_WRITE, (size_t)cus * 4 * 128 * 4, NULL, &err);

    cl_program prog = build(src, "-cl-std=CL1.2", NULL);
    if (!prog) return 1;
    cl_kernel k_addr = clCreateKernel(prog, "addr_of", &err);
    cl_kernel k_fill = clCreateKernel(prog, "fill", &err);
    {
        const int heads = HEADS;
        clSetKernelArg(k_fill, 0, sizeof x, &x);
        clSetKernelArg(k_fill, 1, sizeof heads, &heads);
        const size_t g = elems;
        clEnqueueNDRangeKernel(queue, k_fill, 1, NULL, &g, NULL, 0, NULL, NULL);
        clSetKernelArg(k_addr, 0, sizeof x, &x);
        clSetKernelArg(k_addr, 1, sizeof addr, &addr);
        const size_t one = 1;
        clEnqueueNDRangeKernel(queue, k_addr, 1, NULL, &one, &one, 0, NULL, NULL);
    }
    uint64_t address = 0;
    clEnqueueReadBuffer(queue, addr, CL_TRUE, 0, 8, &address, 0, NULL, NULL);
    /* the encoder wants a current context (run 124: 201, CUDA_ERROR_INVALID_CONTEXT, without) */
    cu_device_get_fn device_get = (cu_device_get_fn)dlsym(cuda, "cuDeviceGet");
    cu_primary_ctx_retain_fn retain = (cu_primary_ctx_retain_fn)dlsym(cuda, "cuDevicePrimaryCtxRetain");
    cu_ctx_set_current_fn set_current = (cu_ctx_set_current_fn)dlsym(cuda, "cuCtxSetCurrent");
    int st = cu_init(0), cu_dev = -1;
    void *cu_ctx = NULL;
    _Alignas(64) uint8_t map[128] = {0};
    int enc_st = encode(enc, map, address, SEQ);
    printf("cuInit %d; buffer at 0x%llx; encode without a context %d\n", st, (unsigned long long)address, enc_st);
    if (device_get && retain && set_current) {
        const int a = device_get(&cu_dev, 0), b = retain(&cu_ctx, cu_dev), c = set_current(cu_ctx);
        printf("cuDeviceGet %d, cuDevicePrimaryCtxRetain %d, cuCtxSetCurrent %d\n", a, b, c);
    }
    enc_st = encode(enc, map, address, SEQ);
    printf("encode with the primary context current %d\n", enc_st);
    if (enc_st != 0) return 1;
    /* the map's bytes, and those of maps differing in the address or a dimension only:
     * where the fields sit, should the library ever encode maps itself */
    _Alignas(64) uint8_t other[2][128];
    encode(enc, other[0], address + 4096, SEQ);
    encode(enc, other[1], address, SEQ - 1);
    for (int m = 0; m < 3; ++m) {
        const uint8_t *b = m == 0 ? map : other[m - 1];
        printf("map %s:", m == 0 ? "as used      " : m == 1 ? "address+4096 " : "seq-1        ");
        for (int i = 0; i < 128; ++i) printf("%s%02x", i % 16 ? "" : " ", b[i]);
        printf("\n");
    }
    clEnqueueWriteBuffer(queue, maps, CL_TRUE, 0, 128, map, 0, NULL, NULL);

    /* 1-2. a box through the map in global memory, with and without the fence; past the end */
    cl_kernel k_tile = clCreateKernel(prog, "tma_tile", &err);
    uint16_t host_tile[64 * 64];
    int failures = 0;
    const int boxes[3][3] = {{64, 100, 3}, {0, 4096, 15}, {0, SEQ - 32, 7}};
    for (int b = 0; b < 3; ++b)
        for (int fence = 0; fence < 2; ++fence) {
            clSetKernelArg(k_tile, 0, sizeof maps, &maps);
            clSetKernelArg(k_tile, 1, sizeof tile, &tile);
            for (int a = 0; a < 3; ++a) clSetKernelArg(k_tile, 2 + a, sizeof(int), &boxes[b][a]);
            clSetKernelArg(k_tile, 5, sizeof fence, &fence);
            const size_t g = 128, l = 128;
            err = clEnqueueNDRangeKernel(queue, k_tile, 1, NULL, &g, &l, 0, NULL, NULL);
            memset(host_tile, 0xff, sizeof host_tile);
            cl_int rd = clEnqueueReadBuffer(queue, tile, CL_TRUE, 0, sizeof host_tile, host_tile, 0, NULL, NULL);
            char what[96];
            snprintf(what, sizeof what, "map in global memory, box (%d, %d, %d), fence %d (launch %d read %d)",
                     boxes[b][0], boxes[b][1], boxes[b][2], fence, err, rd);
            failures += check_tile(host_tile, boxes[b][0], boxes[b][1], boxes[b][2], what);
        }

    /* 1. the map by value */
    for (int how = 1; how < 2; ++how) {
        char options[64];
        snprintf(options, sizeof options, "-cl-std=CL1.2 -DBYVAL_HOW=%d", how);
        printf("map by value, its parameter's generic address (mov + cvta.param):\n");
        cl_program pb = build(src, options, "tma_tile_byval_param_0");
        if (!pb) continue;
        cl_kernel kb = clCreateKernel(pb, "tma_tile_byval", &err);
        clSetKernelArg(kb, 0, 128, map);
        clSetKernelArg(kb, 1, sizeof tile, &tile);
        for (int a = 0; a < 3; ++a) clSetKernelArg(kb, 2 + a, sizeof(int), &boxes[0][a]);
        const size_t g = 128, l = 128;
        err = clEnqueueNDRangeKernel(queue, kb, 1, NULL, &g, &l, 0, NULL, NULL);
        memset(host_tile, 0xff, sizeof host_tile);
        cl_int rd = clEnqueueReadBuffer(queue, tile, CL_TRUE, 0, sizeof host_tile, host_tile, 0, NULL, NULL);
        char what[64];
        snprintf(what, sizeof what, "  by value %d (launch %d read %d)", how, err, rd);
        check_tile(host_tile, boxes[0][0], boxes[0][1], boxes[0][2], what);
        clReleaseKernel(kb);
        clReleaseProgram(pb);
    }

    /* 3. wgmma on swizzled tiles */
    cl_kernel k_mma = clCreateKernel(prog, "tma_mma", &err);
    const int y = 256, z = 5;
    double s_ref[64 * 64], o_ref[64 * 64];
    for (int r = 0; r < 64; ++r)
        for (int n = 0; n < 64; ++n) {
            double s = 0, o = 0;
            for (int c = 0; c < 64; ++c) {
                s += (double)value_at(y + r, z, c) * value_at(y + 64 + n, z, c);
                o += (double)value_at(y + r, z, c) * value_at(y + 64 + c, z, n);
            }
            s_ref[r * 64 + n] = s;
            o_ref[r * 64 + n] = o;
        }
    const int offsets[3][2] = {{16, 1024}, {1024, 16}, {8192, 1024}};
    for (int v = 0; v < 3; ++v) {
        clSetKernelArg(k_mma, 0, sizeof maps, &maps);
        clSetKernelArg(k_mma, 1, sizeof s_out, &s_out);
        clSetKernelArg(k_mma, 2, sizeof o_out, &o_out);
        clSetKernelArg(k_mma, 3, sizeof y, &y);
        clSetKernelArg(k_mma, 4, sizeof z, &z);
        clSetKernelArg(k_mma, 5, sizeof(int), &offsets[v][0]);
        clSetKernelArg(k_mma, 6, sizeof(int), &offsets[v][1]);
        const size_t g = 128, l = 128;
        err = clEnqueueNDRangeKernel(queue, k_mma, 1, NULL, &g, &l, 0, NULL, NULL);
        float s[64 * 64], o[64 * 64];
        clEnqueueReadBuffer(queue, s_out, CL_TRUE, 0, sizeof s, s, 0, NULL, NULL);
        clEnqueueReadBuffer(queue, o_out, CL_TRUE, 0, sizeof o, o, 0, NULL, NULL);
        int bad_s = 0, bad_o = 0;
        for (int i = 0; i < 64 * 64; ++i) {
            bad_s += fabs(s[i] - s_ref[i]) > 1e-3;
            bad_o += fabs(o[i] - o_ref[i]) > 1e-3;
        }
        printf("wgmma on swizzled tiles (launch %d): S = Q K^T (K-major) %s (%d wrong, s[1] %g want %g); "
               "O = Q V (MN-major, LBO %d, SBO %d) %s (%d wrong, o[1] %g want %g)\n",
               err, bad_s ? "FAIL" : "ok", bad_s, s[1], s_ref[1], offsets[v][0], offsets[v][1],
               bad_o ? "FAIL" : "ok", bad_o, o[1], o_ref[1]);
        if (v == 0) failures += bad_s != 0;
    }

    /* 4. rates */
    cl_kernel k_tma = clCreateKernel(prog, "rate_tma", &err);
    cl_kernel k_cp = clCreateKernel(prog, "rate_cp", &err);
    const int tiles = 1024, seq_block = SEQ_BLOCK;
    for (int distinct = 0; distinct < 2; ++distinct)
        for (int per_sm = 1; per_sm <= 2; ++per_sm)
            for (int engine = 0; engine < 2; ++engine) {
                cl_kernel k = engine ? k_cp : k_tma;
                if (engine)
                    clSetKernelArg(k, 0, sizeof x, &x);
                else
                    clSetKernelArg(k, 0, sizeof maps, &maps);
                clSetKernelArg(k, 1, sizeof sums, &sums);
                clSetKernelArg(k, 2, sizeof tiles, &tiles);
                clSetKernelArg(k, 3, sizeof distinct, &distinct);
                clSetKernelArg(k, 4, sizeof seq_block, &seq_block);
                const size_t groups = (size_t)cus * (size_t)per_sm;
                const double ns = run_timed(k, groups, 5);
                const double bytes = (double)groups * tiles * 16384.0;
                printf("rate %-8s %s, %zu groups (%d per SM): %.3f ms, %.2f TB/s\n",
                       engine ? "cp.async" : "TMA", distinct ? "from memory (own rows)" : "from L2 (same rows)",
                       groups, per_sm, ns * 1e-6, ns > 0 ? bytes / ns * 1e-3 : 0.0);
            }
    printf("%s\n", failures ? "SOME CHECKS FAILED" : "all checks passed");
    return failures != 0;
}
