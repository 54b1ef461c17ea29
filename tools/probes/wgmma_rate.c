/* Probe: the rate of Hopper's warpgroup products (wgmma.mma_async m64nNk16, fp16 in, fp32
 * accumulators) reached from OpenCL, by N (64, 128, 256) and by where A comes from
 * (registers, "rs", or local memory, "ss"). Issue 10 asks why attn_fwd_wgmma, which issues
 * only m64n64k16, stays near half of FlashAttention 3 (docs/PERFORMANCE.md, session 17).
 *
 *   cc -O2 -o /tmp/wgmma_rate tools/probes/wgmma_rate.c -lOpenCL && /tmp/wgmma_rate [iters]
 *
 * Each work-group is two warpgroups (256 work-items); each warpgroup issues batches of 8
 * products into one accumulator (K = 4 x 16 from a local tile, twice), commits, waits,
 * and repeats. The kernel is built the way the library builds its Hopper kernels: OpenCL
 * C whose sm_90a instructions are PTX comments behind "// FACL_SM90A ", the driver's PTX
 * retargeted to sm_90a with the markers removed, rebuilt from that PTX (src/ptx_patch.c
 * does this for the library). Stand-alone on purpose: one file, the OpenCL ICD only.
 */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cl_context ctx;
static cl_device_id dev;
static cl_command_queue queue;

/* Appends printf-formatted text to a growing buffer (measured first, so any length fits). */
static void add(char **buf, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    *buf = realloc(*buf, *len + (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(*buf + *len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *len += (size_t)n;
}

/* OpenCL C of the rate kernel for one N and operand source. */
static char *kernel_source(int n, int a_in_regs)
{
    char *s = NULL;
    size_t len = 0;
    const int regs = n / 2; /* accumulator floats per work-item: 64 x n / 128 */
    add(&s, &len, "#define N %d\n", n);
    add(&s, &len,
        "inline ulong desc(__local const ushort *p, int lbo, int sbo) {\n"
        "  uint a = (uint)(ulong)p;\n"
        "  return (ulong)((a & 0x3FFFFu) >> 4) | ((ulong)((uint)lbo >> 4) << 16) | ((ulong)((uint)sbo >> 4) << 32);\n"
        "}\n");
    /* the product: c[regs] += A (64 x 16) B (N x 16, K-major) */
    add(&s, &len, "inline void mma(float *c, uint4 a, __local const ushort *at, __local const ushort *bt) {\n");
    add(&s, &len, "  asm volatile(\"{\\n.reg .pred p;\\nsetp.ne.b32 p, %%%d, 0;\\n// FACL_SM90A wgmma.mma_async.sync.aligned.m64n%dk16.f32.f16.f16 {",
        regs + (a_in_regs ? 5 : 2), n);
    for (int i = 0; i < regs; ++i) add(&s, &len, "%s%%%d", i ? ", " : "", i);
    if (a_in_regs)
        add(&s, &len, "}, {%%%d, %%%d, %%%d, %%%d}, %%%d, p, 1, 1, 0;\\n}\"", regs, regs + 1, regs + 2, regs + 3, regs + 4);
    else
        add(&s, &len, "}, %%%d, %%%d, p, 1, 1, 0, 0;\\n}\"", regs, regs + 1);
    add(&s, &len, " : ");
    for (int i = 0; i < regs; ++i) add(&s, &len, "%s\"+f\"(c[%d])", i ? ", " : "", i);
    if (a_in_regs)
        add(&s, &len, " : \"r\"(a.x), \"r\"(a.y), \"r\"(a.z), \"r\"(a.w), \"l\"(desc(bt, 128, 256)), \"r\"(1));\n}\n");
    else
        add(&s, &len, " : \"l\"(desc(at, 128, 256)), \"l\"(desc(bt, 128, 256)), \"r\"(1));\n  (void)a;\n}\n");
    /* fence and commit+wait, the accumulators tied to both */
    const char *names[2] = {"fence", "commit_wait"};
    const char *texts[2] = {"// FACL_SM90A wgmma.fence.sync.aligned;",
                            "// FACL_SM90A wgmma.commit_group.sync.aligned;\\n// FACL_SM90A wgmma.wait_group.sync.aligned 0;"};
    for (int f = 0; f < 2; ++f) {
        add(&s, &len, "inline void %s(float *c) { asm volatile(\"%s\" : ", names[f], texts[f]);
        for (int i = 0; i < regs; ++i) add(&s, &len, "%s\"+f\"(c[%d])", i ? ", " : "", i);
        add(&s, &len, " : : \"memory\"); }\n");
    }
    add(&s, &len,
        "__kernel __attribute__((reqd_work_group_size(256, 1, 1))) void k(__global float *o, int iters) {\n"
        "  __local ushort bt[4 * N * 16] __attribute__((aligned(128)));\n"
        "  __local ushort at[4 * 64 * 16] __attribute__((aligned(128)));\n"
        "  const int lid = get_local_id(0);\n"
        "  for (int i = lid; i < 4 * N * 16; i += 256) bt[i] = (ushort)(0x2000 | (i & 7));\n"
        "  for (int i = lid; i < 4 * 64 * 16; i += 256) at[i] = (ushort)(0x2000 | (i & 3));\n"
        "  asm volatile(\"fence.proxy.async.shared::cta;\" ::: \"memory\");\n"
        "  barrier(CLK_LOCAL_MEM_FENCE);\n"
        "  float c[%d];\n"
        "  _Pragma(\"unroll\") for (int i = 0; i < %d; ++i) c[i] = 0.0f;\n"
        "  const uint4 a = (uint4)(0x20002000u + lid, 0x20002000u, 0x20002001u, 0x20002000u);\n"
        "  for (int it = 0; it < iters; ++it) {\n"
        "    fence(c);\n"
        "    _Pragma(\"unroll\") for (int rep = 0; rep < 2; ++rep)\n"
        "      _Pragma(\"unroll\") for (int ks = 0; ks < 4; ++ks) mma(c, a, at + ks * 64 * 16, bt + ks * N * 16);\n"
        "    commit_wait(c);\n"
        "  }\n"
        "  float sum = 0.0f;\n"
        "  _Pragma(\"unroll\") for (int i = 0; i < %d; ++i) sum += c[i];\n"
        "  o[get_global_id(0)] = sum;\n"
        "}\n",
        regs, regs, regs);
    return s;
}

/* Builds the source, turns the driver's PTX into sm_90a PTX and builds that. */
static cl_program build_sm90a(const char *src)
{
    cl_int err;
    cl_program p = clCreateProgramWithSource(ctx, 1, &src, NULL, &err);
    if (clBuildProgram(p, 1, &dev, "", NULL, NULL) != CL_SUCCESS) {
        char log[8192] = {0};
        clGetProgramBuildInfo(p, dev, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        printf("build failed: %.3000s\n", log);
        return NULL;
    }
    size_t n;
    clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL);
    char *ptx = malloc(n + 1), *out = malloc(n + 16);
    clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof ptx, &ptx, NULL);
    ptx[n] = 0;
    clReleaseProgram(p);
    /* copy, dropping every "// FACL_SM90A " and making ".target sm_90" sm_90a */
    size_t o = 0;
    for (size_t i = 0; i < n && ptx[i];) {
        if (!strncmp(ptx + i, "// FACL_SM90A ", 14)) {
            i += 14;
        } else if (!strncmp(ptx + i, ".target sm_90", 13) && ptx[i + 13] != 'a') {
            memcpy(out + o, ".target sm_90a", 14);
            o += 14;
            i += 13;
        } else {
            out[o++] = ptx[i++];
        }
    }
    out[o] = 0;
    size_t len = o + 1;
    cl_int status;
    cl_program q = clCreateProgramWithBinary(ctx, 1, &dev, &len, (const unsigned char **)&out, &status, &err);
    if (err == CL_SUCCESS) err = clBuildProgram(q, 1, &dev, "", NULL, NULL);
    free(ptx);
    free(out);
    if (err != CL_SUCCESS) {
        char log[8192] = {0};
        clGetProgramBuildInfo(q, dev, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        printf("sm_90a build failed (%d): %.3000s\n", err, log);
        return NULL;
    }
    return q;
}

int main(int argc, char **argv)
{
    const int iters = argc > 1 ? atoi(argv[1]) : 4000;
    cl_platform_id platforms[8];
    cl_uint np = 0, nd = 0;
    clGetPlatformIDs(8, platforms, &np);
    for (cl_uint i = 0; i < np; ++i)
        if (clGetDeviceIDs(platforms[i], CL_DEVICE_TYPE_GPU, 1, &dev, &nd) == CL_SUCCESS && nd) break;
    if (!nd) {
        printf("no GPU\n");
        return 1;
    }
    cl_int err;
    ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    queue = clCreateCommandQueue(ctx, dev, CL_QUEUE_PROFILING_ENABLE, &err);
    cl_uint cus = 0;
    clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cus, &cus, NULL);
    const size_t groups = (size_t)cus * 8, local = 256, global = groups * local;
    cl_mem out = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY, global * sizeof(float), NULL, &err);
    printf("wgmma m64nNk16 fp16 -> fp32, %u SMs, %zu work-groups of 2 warpgroups, batches of 8 products, %d batches each\n",
           cus, groups, iters);
    const int ns[3] = {64, 128, 256};
    for (int mode = 0; mode < 2; ++mode) {
        for (int t = 0; t < 3; ++t) {
            char *src = kernel_source(ns[t], mode == 0);
            cl_program p = build_sm90a(src);
            free(src);
            if (!p) continue;
            cl_kernel k = clCreateKernel(p, "k", &err);
            clSetKernelArg(k, 0, sizeof out, &out);
            clSetKernelArg(k, 1, sizeof iters, &iters);
            double best = 1e30;
            for (int rep = 0; rep < 4; ++rep) {
                cl_event ev;
                err = clEnqueueNDRangeKernel(queue, k, 1, NULL, &global, &local, 0, NULL, &ev);
                if (err != CL_SUCCESS) {
                    printf("launch failed %d\n", err);
                    break;
                }
                clWaitForEvents(1, &ev);
                cl_ulong t0, t1;
                clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
                clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
                clReleaseEvent(ev);
                if (rep && (double)(t1 - t0) < best) best = (double)(t1 - t0);
            }
            if (best == 1e30) { /* no timed launch */
                clReleaseKernel(k);
                clReleaseProgram(p);
                continue;
            }
            float check[4];
            clEnqueueReadBuffer(queue, out, CL_TRUE, 0, sizeof check, check, 0, NULL, NULL);
            const double flops = (double)groups * 2 * iters * 8 * 2.0 * 64 * ns[t] * 16;
            printf("%s n=%3d: %.1f TFLOP/s (%.3f ms; out[0] %g)\n", mode == 0 ? "rs" : "ss", ns[t],
                   flops / best * 1e-3, best * 1e-6, check[0]);
            clReleaseKernel(k);
            clReleaseProgram(p);
        }
    }
    return 0;
}
