/* Profiling-event timing (see bench_timing.h). */
#include "bench_timing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_devices.h"

/* The stamp does nothing visible; it exists for its profiling timestamps. The branch on a
 * runtime argument keeps a compiler from deciding the kernel is empty and skipping it.
 * The read kernel reads the flush buffer after its fill (bench_timer.flush_read), so that
 * the caches hold clean lines; it stores its result only on a pattern that the zero fill
 * never gives, which keeps the reads from being dropped. */
static const char stamp_source[] =
    "__kernel void facl_tool_stamp(__global int *flag, const int value)\n"
    "{\n"
    "    if (value == 12345) flag[0] = value;\n"
    "}\n"
    "__kernel void facl_tool_read(__global const uint4 *x, const uint n, __global uint *sink)\n"
    "{\n"
    "    uint4 acc = (uint4)(0u);\n"
    "    for (uint i = get_global_id(0); i < n; i += get_global_size(0)) acc ^= x[i];\n"
    "    if (acc.x == 0x12345678u && acc.y == 7u) sink[0] = acc.z;\n"
    "}\n";

int bench_timer_init(bench_timer *t, cl_context ctx, cl_device_id device, cl_command_queue queue,
                     char *err, size_t err_size)
{
    memset(t, 0, sizeof *t);
    t->queue = queue;
    cl_int e;
    const char *src = stamp_source;
    t->program = clCreateProgramWithSource(ctx, 1, &src, NULL, &e);
    if (e == CL_SUCCESS) e = clBuildProgram(t->program, 1, &device, "", NULL, NULL);
    if (e == CL_SUCCESS) t->stamp = clCreateKernel(t->program, "facl_tool_stamp", &e);
    if (e == CL_SUCCESS) t->read = clCreateKernel(t->program, "facl_tool_read", &e);
    cl_int zero = 0;
    if (e == CL_SUCCESS) e = clSetKernelArg(t->stamp, 0, sizeof(cl_mem), &(cl_mem){NULL});
    if (e == CL_SUCCESS) e = clSetKernelArg(t->stamp, 1, sizeof zero, &zero);
    if (e != CL_SUCCESS) {
        snprintf(err, err_size, "timing stamp kernel: %s", tool_cl_error_name(e));
        bench_timer_free(t);
        return -1;
    }
    return 0;
}

int bench_timer_flush(bench_timer *t, cl_context ctx, size_t bytes, char *err, size_t err_size)
{
    if (t->flush) clReleaseMemObject(t->flush);
    t->flush = NULL;
    t->flush_bytes = 0;
    if (bytes == 0) return 0;
    cl_int e;
    t->flush = clCreateBuffer(ctx, CL_MEM_READ_WRITE, bytes, NULL, &e);
    if (e != CL_SUCCESS) {
        t->flush = NULL;
        snprintf(err, err_size, "flush buffer of %zu bytes: %s", bytes, tool_cl_error_name(e));
        return -1;
    }
    t->flush_bytes = bytes;
    return 0;
}

void bench_timer_free(bench_timer *t)
{
    if (t->flush) clReleaseMemObject(t->flush);
    if (t->stamp) clReleaseKernel(t->stamp);
    if (t->read) clReleaseKernel(t->read);
    if (t->program) clReleaseProgram(t->program);
    memset(t, 0, sizeof *t);
}

static int profile(cl_event ev, cl_profiling_info what, cl_ulong *value)
{
    return clGetEventProfilingInfo(ev, what, sizeof *value, value, NULL);
}

/* The flush buffer read back by about as many work-items as a large GPU runs at once
 * (the work-group size left to the driver). */
static cl_int enqueue_flush_read(bench_timer *t)
{
    const cl_uint n = (cl_uint)(t->flush_bytes / 16);
    const size_t global = 128 * 1024;
    cl_int e = clSetKernelArg(t->read, 0, sizeof(cl_mem), &t->flush);
    if (e == CL_SUCCESS) e = clSetKernelArg(t->read, 1, sizeof n, &n);
    if (e == CL_SUCCESS) e = clSetKernelArg(t->read, 2, sizeof(cl_mem), &t->flush);
    if (e == CL_SUCCESS) e = clEnqueueNDRangeKernel(t->queue, t->read, 1, NULL, &global, NULL, 0, NULL, NULL);
    return e;
}

/* One run; *ms is the span from the stamp's end to the work's end. */
static int timed_run(bench_timer *t, bench_work_fn work, void *arg, double *ms, char *err,
                     size_t err_size)
{
    const size_t one = 1;
    cl_event stamp = NULL, last = NULL;
    cl_int e = CL_SUCCESS;
    if (t->flush) {
        const cl_int pattern = 0;
        e = clEnqueueFillBuffer(t->queue, t->flush, &pattern, sizeof pattern, 0, t->flush_bytes,
                                0, NULL, NULL);
        if (e != CL_SUCCESS) {
            snprintf(err, err_size, "enqueue of the flush fill: %s", tool_cl_error_name(e));
            return -1;
        }
        if (t->flush_read && (e = enqueue_flush_read(t)) != CL_SUCCESS) {
            snprintf(err, err_size, "enqueue of the flush read: %s", tool_cl_error_name(e));
            return -1;
        }
    }
    e = clEnqueueNDRangeKernel(t->queue, t->stamp, 1, NULL, &one, &one, 0, NULL, &stamp);
    if (e != CL_SUCCESS) {
        snprintf(err, err_size, "enqueue of the timing stamp: %s", tool_cl_error_name(e));
        return -1;
    }
    int rc = work(arg, t->queue, &last, err, err_size);
    if (rc == 0 && !last) {
        snprintf(err, err_size, "the timed work returned no event");
        rc = -1;
    }
    if (rc == 0) {
        e = clWaitForEvents(1, &last);
        cl_ulong begin = 0, end = 0;
        if (e == CL_SUCCESS) e = profile(stamp, CL_PROFILING_COMMAND_END, &begin);
        if (e == CL_SUCCESS) e = profile(last, CL_PROFILING_COMMAND_END, &end);
        if (e != CL_SUCCESS) {
            snprintf(err, err_size, "profiling information: %s", tool_cl_error_name(e));
            rc = -1;
        } else {
            *ms = end > begin ? (double)(end - begin) * 1e-6 : 0.0;
        }
    }
    clFinish(t->queue);
    if (last) clReleaseEvent(last);
    clReleaseEvent(stamp);
    return rc;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int bench_time(bench_timer *t, bench_work_fn work, void *arg, const bench_reps *policy,
               bench_timing *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    double warm, probe;
    if (timed_run(t, work, arg, &warm, err, err_size) != 0) return -1;
    if (timed_run(t, work, arg, &probe, err, err_size) != 0) return -1;

    int reps = policy->reps;
    if (reps <= 0) {
        double want = probe > 0 ? policy->target_s * 1e3 / probe : policy->max_reps;
        reps = want > policy->max_reps ? policy->max_reps : (int)ceil(want);
        if (reps < policy->min_reps) reps = policy->min_reps;
    }
    double *samples = malloc((size_t)reps * sizeof *samples);
    if (!samples) {
        snprintf(err, err_size, "out of host memory");
        return -1;
    }
    /* The probe ran after the warm-up, so it is a valid sample: keep it. */
    samples[0] = probe;
    for (int i = 1; i < reps; ++i) {
        if (timed_run(t, work, arg, &samples[i], err, err_size) != 0) {
            free(samples);
            return -1;
        }
    }
    qsort(samples, (size_t)reps, sizeof *samples, compare_doubles);
    out->reps = reps;
    out->min_ms = samples[0];
    out->max_ms = samples[reps - 1];
    out->median_ms = reps % 2 ? samples[reps / 2]
                              : 0.5 * (samples[reps / 2 - 1] + samples[reps / 2]);
    free(samples);
    return 0;
}

double bench_attention_flops(double batch, double seqlen_q, double seqlen_k, double heads,
                             double head_dim, int causal)
{
    double f = 4.0 * batch * seqlen_q * seqlen_k * heads * head_dim;
    return causal ? f / 2 : f;
}

static int enqueue_empty(void *arg, cl_command_queue queue, cl_event *last, char *err,
                         size_t err_size)
{
    const bench_timer *t = arg;
    const size_t one = 1;
    const cl_int e = clEnqueueNDRangeKernel(queue, t->stamp, 1, NULL, &one, &one, 0, NULL, last);
    if (e == CL_SUCCESS) return 0;
    snprintf(err, err_size, "enqueue of the empty kernel: %s", tool_cl_error_name(e));
    return -1;
}

int bench_timer_measure_empty(bench_timer *t, const bench_reps *policy, char *err, size_t err_size)
{
    bench_timing timing;
    if (bench_time(t, enqueue_empty, t, policy, &timing, err, err_size) != 0) return -1;
    t->empty_ms = timing.median_ms;
    return 0;
}
