/* The baseline's softmax kernel (see bench_softmax.h). One work-group per row, as a
 * careful OpenCL user would write it: work-items stride across the row so that reads
 * coalesce, and max and sum are reduced in local memory (three passes over the row). */
#include "bench_softmax.h"

#include <stdio.h>
#include <string.h>

#include "bench_devices.h"

/* Kept as a plain string: it is the tool's own kernel, not part of the library. Built
 * twice: as is for fp32 storage, and with -DHALF_STORAGE for fp16. */
static const char softmax_source[] =
    "#ifdef HALF_STORAGE\n"
    "typedef half T;\n"
    "#define LOAD(p, j) vload_half((size_t)(j), (p))\n"
    "#define STORE(p, j, v) vstore_half((v), (size_t)(j), (p))\n"
    "#else\n"
    "typedef float T;\n"
    "#define LOAD(p, j) ((p)[j])\n"
    "#define STORE(p, j, v) ((p)[j] = (v))\n"
    "#endif\n"
    "\n"
    "__kernel void softmax_rows(__global T *s, const int seqlen_q, const int seqlen_k,\n"
    "                           const int causal, __local float *red)\n"
    "{\n"
    "    const size_t row = get_group_id(0);\n"
    "    const int lid = (int)get_local_id(0), n = (int)get_local_size(0);\n"
    "    __global T *x = s + row * (size_t)seqlen_k;\n"
    "    const long i = (long)(row % (size_t)seqlen_q);\n"
    "    /* bottom-right alignment: row i sees keys j <= i + seqlen_k - seqlen_q */\n"
    "    const long last = causal ? i + seqlen_k - seqlen_q : (long)seqlen_k - 1;\n"
    "\n"
    "    float m = -INFINITY;\n"
    "    for (int j = lid; j < seqlen_k; j += n)\n"
    "        if (j <= last) m = fmax(m, LOAD(x, j));\n"
    "    red[lid] = m;\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    for (int w = n / 2; w > 0; w /= 2) {\n"
    "        if (lid < w) red[lid] = fmax(red[lid], red[lid + w]);\n"
    "        barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    }\n"
    "    m = red[0];\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "\n"
    "    float sum = 0.0f;\n"
    "    for (int j = lid; j < seqlen_k; j += n)\n"
    "        if (j <= last) sum += exp(LOAD(x, j) - m);\n"
    "    red[lid] = sum;\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    for (int w = n / 2; w > 0; w /= 2) {\n"
    "        if (lid < w) red[lid] += red[lid + w];\n"
    "        barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    }\n"
    "\n"
    "    /* a row with no visible key gets all zeros (m stays -inf) */\n"
    "    const float inv = m == -INFINITY ? 0.0f : 1.0f / red[0];\n"
    "    for (int j = lid; j < seqlen_k; j += n)\n"
    "        STORE(x, j, j <= last ? exp(LOAD(x, j) - m) * inv : 0.0f);\n"
    "}\n";

static cl_int build_one(cl_context ctx, cl_device_id device, const char *options,
                        cl_program *program, cl_kernel *kernel)
{
    cl_int e;
    const char *src = softmax_source;
    *program = clCreateProgramWithSource(ctx, 1, &src, NULL, &e);
    if (e == CL_SUCCESS) e = clBuildProgram(*program, 1, &device, options, NULL, NULL);
    if (e == CL_SUCCESS) *kernel = clCreateKernel(*program, "softmax_rows", &e);
    return e;
}

int bench_softmax_init(bench_softmax *s, cl_context ctx, cl_device_id device, char *err,
                       size_t err_size)
{
    memset(s, 0, sizeof *s);
    cl_int e = build_one(ctx, device, "", &s->program[0], &s->kernel[0]);
    if (e == CL_SUCCESS) e = build_one(ctx, device, "-DHALF_STORAGE", &s->program[1], &s->kernel[1]);
    /* The tree reduction wants a power of two; 256 is plenty for rows of 512+ keys. */
    size_t limit = 256;
    for (int k = 0; k < 2 && e == CL_SUCCESS; ++k) {
        size_t wg = 0;
        e = clGetKernelWorkGroupInfo(s->kernel[k], device, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg,
                                     &wg, NULL);
        if (e == CL_SUCCESS && wg < limit) limit = wg;
    }
    if (e != CL_SUCCESS) {
        snprintf(err, err_size, "softmax kernel: %s", tool_cl_error_name(e));
        bench_softmax_free(s);
        return -1;
    }
    s->local_size = 1;
    while (s->local_size * 2 <= limit) s->local_size *= 2;
    return 0;
}

void bench_softmax_free(bench_softmax *s)
{
    for (int k = 0; k < 2; ++k) {
        if (s->kernel[k]) clReleaseKernel(s->kernel[k]);
        if (s->program[k]) clReleaseProgram(s->program[k]);
    }
    memset(s, 0, sizeof *s);
}

cl_int bench_softmax_enqueue(bench_softmax *s, cl_command_queue queue, facl_dtype dtype,
                             cl_mem scores, size_t rows, int seqlen_q, int seqlen_k, int causal,
                             cl_event *event)
{
    cl_kernel k = s->kernel[dtype == FACL_DTYPE_F16 ? 1 : 0];
    cl_int e = clSetKernelArg(k, 0, sizeof scores, &scores);
    if (e == CL_SUCCESS) e = clSetKernelArg(k, 1, sizeof seqlen_q, &seqlen_q);
    if (e == CL_SUCCESS) e = clSetKernelArg(k, 2, sizeof seqlen_k, &seqlen_k);
    if (e == CL_SUCCESS) e = clSetKernelArg(k, 3, sizeof causal, &causal);
    if (e == CL_SUCCESS) e = clSetKernelArg(k, 4, s->local_size * sizeof(float), NULL);
    size_t global = rows * s->local_size, local = s->local_size;
    if (e == CL_SUCCESS) e = clEnqueueNDRangeKernel(queue, k, 1, NULL, &global, &local, 0, NULL, event);
    return e;
}
