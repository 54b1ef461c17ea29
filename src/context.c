/* Context lifetime: create on a selected device or wrap the caller's, and free. */
#include "context.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk_cache.h"
#include "status.h"

static facl_status finish_context(facl_context *ctx)
{
    facl_status st = facl_device_profile_query(ctx->device, &ctx->profile);
    if (st != FACL_SUCCESS) return st;
    cl_int err;
    ctx->queue = clCreateCommandQueue(ctx->cl_ctx, ctx->device, CL_QUEUE_PROFILING_ENABLE, &err);
    if (err != CL_SUCCESS) {
        ctx->queue = NULL;
        return facl_fail_cl(err, "clCreateCommandQueue");
    }
    char dir[512];
    return facl_program_cache_init(&ctx->programs,
                                   facl_disk_cache_dir(dir, sizeof dir) ? dir : NULL);
}

static facl_status new_context(cl_context cl_ctx, cl_device_id device, facl_context **out)
{
    facl_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "allocating the context");
    ctx->cl_ctx = cl_ctx;
    ctx->device = device;
    facl_status st = finish_context(ctx);
    if (st != FACL_SUCCESS) {
        if (ctx->queue) clReleaseCommandQueue(ctx->queue);
        free(ctx);
        return st;
    }
    *out = ctx;
    return FACL_SUCCESS;
}

facl_status facl_context_create(const char *selector, facl_context **out)
{
    facl_error_clear();
    if (!out) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "out: NULL");
    *out = NULL;
    cl_device_id device;
    facl_status st = facl_select_device(selector, &device);
    if (st != FACL_SUCCESS) return st;
    cl_int err;
    cl_context cl_ctx = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
    if (err != CL_SUCCESS) return facl_fail_cl(err, "clCreateContext");
    clRetainDevice(device);
    st = new_context(cl_ctx, device, out);
    if (st != FACL_SUCCESS) {
        clReleaseDevice(device);
        clReleaseContext(cl_ctx);
    }
    return st;
}

facl_status facl_context_wrap(cl_context cl_ctx, cl_device_id device, facl_context **out)
{
    facl_error_clear();
    if (!out) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "out: NULL");
    *out = NULL;
    if (!cl_ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "cl_ctx: NULL");
    if (!device) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "device: NULL");
    cl_uint n = 0;
    cl_int err = clGetContextInfo(cl_ctx, CL_CONTEXT_NUM_DEVICES, sizeof n, &n, NULL);
    if (err != CL_SUCCESS) return facl_fail_cl(err, "cl_ctx: clGetContextInfo");
    cl_device_id *devices = calloc(n ? n : 1, sizeof *devices);
    if (!devices) return facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "device list");
    err = clGetContextInfo(cl_ctx, CL_CONTEXT_DEVICES, n * sizeof *devices, devices, NULL);
    int found = 0;
    for (cl_uint i = 0; err == CL_SUCCESS && i < n; ++i) found |= devices[i] == device;
    free(devices);
    if (err != CL_SUCCESS) return facl_fail_cl(err, "cl_ctx: clGetContextInfo");
    if (!found)
        return facl_fail(FACL_ERROR_INVALID_CONTEXT, "device: not a device of cl_ctx");
    clRetainContext(cl_ctx);
    clRetainDevice(device);
    facl_status st = new_context(cl_ctx, device, out);
    if (st != FACL_SUCCESS) {
        clReleaseDevice(device);
        clReleaseContext(cl_ctx);
    }
    return st;
}

void facl_context_free(facl_context *ctx)
{
    if (!ctx) return;
    facl_program_cache_release(&ctx->programs);
    clReleaseCommandQueue(ctx->queue);
    clReleaseDevice(ctx->device);
    clReleaseContext(ctx->cl_ctx);
    free(ctx);
}

cl_context facl_context_cl_context(const facl_context *ctx) { return ctx ? ctx->cl_ctx : NULL; }
cl_device_id facl_context_device(const facl_context *ctx) { return ctx ? ctx->device : NULL; }
cl_command_queue facl_context_queue(const facl_context *ctx) { return ctx ? ctx->queue : NULL; }

facl_status facl_context_cache_stats(const facl_context *ctx, facl_cache_stats *stats)
{
    facl_error_clear();
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    if (!stats) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "stats: NULL");
    *stats = facl_program_cache_stats((facl_program_cache *)&ctx->programs);
    return FACL_SUCCESS;
}

/* Half arithmetic is not needed by the portable path (fp16 is stored through
 * vload_half/vstore_half), so it is probed here, on request, by compiling a kernel:
 * extension strings lie (NVIDIA compiles half math without advertising cl_khr_fp16). */
static int probe_native_half(const facl_context *ctx)
{
    char extensions[4096] = "";
    clGetDeviceInfo(ctx->device, CL_DEVICE_EXTENSIONS, sizeof extensions - 1, extensions, NULL);
    if (strstr(extensions, "cl_khr_fp16")) return 1;
    /* Only NVIDIA is known to compile half math unadvertised; elsewhere a failing probe
     * would just make some compilers print diagnostics. */
    if (ctx->profile.vendor != FACL_VENDOR_NVIDIA) return 0;
    static const char *probe =
        "#pragma OPENCL EXTENSION cl_khr_fp16 : enable\n"
        "__kernel void probe(__global half *x) { half a = x[0]; x[0] = a * a + (half)1; }\n";
    cl_int err;
    cl_program program = clCreateProgramWithSource(ctx->cl_ctx, 1, &probe, NULL, &err);
    if (err != CL_SUCCESS) return 0;
    err = clBuildProgram(program, 1, &ctx->device, "", NULL, NULL);
    clReleaseProgram(program);
    return err == CL_SUCCESS;
}

facl_status facl_context_device_info(const facl_context *ctx, facl_device_info *info)
{
    facl_error_clear();
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    if (!info) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "info: NULL");
    const facl_device_profile *p = &ctx->profile;
    memset(info, 0, sizeof *info);
    snprintf(info->platform_name, sizeof info->platform_name, "%s", p->platform_name);
    snprintf(info->device_name, sizeof info->device_name, "%s", p->device_name);
    snprintf(info->driver_version, sizeof info->driver_version, "%s", p->driver_version);
    info->device_type = p->type;
    info->compute_units = p->compute_units;
    info->max_work_group_size = p->max_work_group_size;
    info->local_mem_reported = p->local_mem_reported;
    info->local_mem_usable = p->local_mem_usable;
    info->global_mem = p->global_mem;
    info->max_alloc = p->max_alloc;
    info->native_half = probe_native_half(ctx);
    info->nv_compute_major = p->nv_compute_major;
    info->nv_compute_minor = p->nv_compute_minor;
    snprintf(info->kernel_path, sizeof info->kernel_path, "%s", facl_kernel_path_name(p->path));
    snprintf(info->cache_dir, sizeof info->cache_dir, "%s", ctx->programs.disk_dir);
    return FACL_SUCCESS;
}
