/* Context lifetime: create on a selected device or wrap the caller's, and free. */
#include "context.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "kernel_path.h"
#include "status.h"
#include "struct_size.h"

static const facl_context_config default_config = FACL_CONTEXT_CONFIG_INIT;

/* The caller's configuration over the defaults, honouring its struct_size. */
static facl_status read_config(const facl_context_config *given, facl_context_config *config)
{
#define END(f) FACL_FIELD_END(facl_context_config, f)
    static const size_t ends[] = {END(reserved0), END(cache_dir), END(cache_max_bytes),
                                  END(kernel_path), END(log), END(log_user)};
#undef END
    *config = default_config;
    if (!given) return FACL_SUCCESS;
    facl_status st = facl_read_struct("config", given, given->struct_size, config,
                                      sizeof *config, ends, sizeof ends / sizeof ends[0]);
    if (st == FACL_SUCCESS && config->reserved0 != 0)
        st = facl_fail(FACL_ERROR_INVALID_VALUE, "config->reserved0: must be 0");
    return st;
}

/* The portable kernels' parameters: the tuning database, then an override file, which
 * may live in the disk cache's directory (hence after it). A bad file never fails the
 * context: it keeps the table's values and the log and facl_context_tuning say why. */
static void resolve_tuning(facl_context *ctx)
{
    facl_device_profile *p = &ctx->profile;
    const char *vendor = facl_vendor_name(p->vendor);
    size_t count;
    const facl_tuning_entry *table = facl_tuning_db(&count);
    facl_tuning_resolve(table, count, vendor, p->architecture, p->device_name,
                        ctx->programs.disk_dir, &p->tuning);
    const facl_tuning *t = &p->tuning;
    facl_log(&ctx->logger, FACL_LOG_TUNING,
             "tuning for %s/%s/%s: entry %s (level %s); override file %s%s%s%s%s", vendor,
             p->architecture, p->device_name, t->entry, facl_tuning_level_name(t->level),
             facl_tuning_override_name(t->override), t->override_path[0] ? " " : "",
             t->override_path, t->note[0] ? ": " : "", t->note);
}

static facl_status finish_context(facl_context *ctx, const facl_context_config *config)
{
    ctx->logger.fn = config->log;
    ctx->logger.user = config->log_user;
    const char *shape = facl_getenv("FACL_CACHE_MMA_SHAPE");
    if (shape && *shape && facl_parse_cache_mma_shape(shape, &ctx->cache_mma_shape) != 0)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "FACL_CACHE_MMA_SHAPE: expected \"warps,stages\" with warps 1, 2, 4 or 8 "
                         "and stages 1 to 4, optionally \",async\" or \",bulk\", got \"%s\"", shape);
    shape = facl_getenv("FACL_BWD_MMA_SHAPE");
    ctx->has_bwd_mma_shape = shape && *shape;
    if (ctx->has_bwd_mma_shape && facl_parse_bwd_mma_shape(shape, &ctx->bwd_mma_shape) != 0)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "FACL_BWD_MMA_SHAPE: expected "
                         "\"kv_warps,kv_keys,kv_rows,kv_stages,dq_warps,dq_keys,dq_stages\" "
                         "that attn_bwd_mma can take, got \"%s\"", shape);
    /* "combine": split results merged by the second kernel even where the attention
     * kernel could merge them (benchmarks compare the two; Oclgrind's race check, which
     * cannot see the ordering that atomics give across work-groups, runs on it) */
    const char *merge = facl_getenv("FACL_CACHE_SPLIT_MERGE");
    if (merge && *merge && strcmp(merge, "kernel") != 0 && strcmp(merge, "combine") != 0)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "FACL_CACHE_SPLIT_MERGE: expected \"kernel\" or \"combine\", got \"%s\"",
                         merge);
    ctx->cache_merge_by_combine = merge && strcmp(merge, "combine") == 0;
    const char *dq_atomic = facl_getenv("FACL_BWD_DQ_ATOMIC");
    if (dq_atomic && *dq_atomic && strcmp(dq_atomic, "0") != 0 && strcmp(dq_atomic, "1") != 0)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "FACL_BWD_DQ_ATOMIC: expected 0 or 1, got \"%s\"",
                         dq_atomic);
    /* Which portable GPU kernel, for benchmarks of both in one process (facl-bench
     * --portable-kernel): the tuning entry's choice unless set. */
    const char *portable = facl_getenv("FACL_PORTABLE_KERNEL");
    int portable_kernel = 0;
    if (portable && *portable) {
        if (strcmp(portable, "previous") == 0 || strcmp(portable, "attn_fwd") == 0)
            portable_kernel = FACL_TUNING_KERNEL_PREVIOUS;
        else if (strcmp(portable, "blocked") == 0 || strcmp(portable, "attn_fwd_blocked") == 0)
            portable_kernel = FACL_TUNING_KERNEL_BLOCKED;
        else
            return facl_fail(FACL_ERROR_INVALID_VALUE,
                             "FACL_PORTABLE_KERNEL: expected previous (attn_fwd) or blocked "
                             "(attn_fwd_blocked), got \"%s\"", portable);
    }
    /* attn_fwd_rows's packing, for tests and benchmarks of both variants */
    const char *pack = facl_getenv("FACL_CPU_PACK");
    int cpu_pack = FACL_CPU_PACK_AUTO;
    if (pack && *pack) {
        if (strcmp(pack, "always") == 0) cpu_pack = FACL_CPU_PACK_ALWAYS;
        else if (strcmp(pack, "never") == 0) cpu_pack = FACL_CPU_PACK_NEVER;
        else if (strcmp(pack, "auto") != 0)
            return facl_fail(FACL_ERROR_INVALID_VALUE,
                             "FACL_CPU_PACK: expected auto, always or never, got \"%s\"", pack);
    }
    facl_status st = facl_device_profile_query(ctx->device, &ctx->profile);
    if (st != FACL_SUCCESS) return st;
    ctx->profile.portable_kernel = portable_kernel;
    ctx->profile.cpu_pack = cpu_pack;
    ctx->profile.bwd_dq_atomic = dq_atomic && strcmp(dq_atomic, "1") == 0;
    ctx->profile.bwd_wgmma_dq_atomic = !(dq_atomic && strcmp(dq_atomic, "0") == 0);
    cl_int err;
    ctx->queue = clCreateCommandQueue(ctx->cl_ctx, ctx->device, CL_QUEUE_PROFILING_ENABLE, &err);
    if (err != CL_SUCCESS) {
        ctx->queue = NULL;
        return facl_fail_cl(err, "clCreateCommandQueue");
    }
    st = facl_program_cache_init(&ctx->programs, config->cache_dir, config->cache_max_bytes,
                                 &ctx->logger);
    if (st != FACL_SUCCESS) return st;
    ctx->programs_ready = 1;
    resolve_tuning(ctx);
    /* The path last: its probe runs kernels, which need the program cache. */
    return facl_choose_kernel_path(ctx, config->kernel_path);
}

static facl_status new_context(cl_context cl_ctx, cl_device_id device,
                               const facl_context_config *config, facl_context **out)
{
    facl_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "allocating the context");
    ctx->cl_ctx = cl_ctx;
    ctx->device = device;
    if (pthread_mutex_init(&ctx->enqueue_lock, NULL) != 0) {
        free(ctx);
        return facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "cannot create the enqueue mutex");
    }
    facl_status st = facl_queue_counters_init(&ctx->split_counters);
    if (st == FACL_SUCCESS && (st = facl_plan_memo_init(&ctx->plans)) != FACL_SUCCESS)
        facl_queue_counters_release(&ctx->split_counters);
    if (st != FACL_SUCCESS) {
        pthread_mutex_destroy(&ctx->enqueue_lock);
        free(ctx);
        return st;
    }
    st = finish_context(ctx, config);
    if (st != FACL_SUCCESS) {
        facl_plan_memo_release(&ctx->plans);
        facl_queue_counters_release(&ctx->split_counters);
        pthread_mutex_destroy(&ctx->enqueue_lock);
        if (ctx->programs_ready) facl_program_cache_release(&ctx->programs);
        if (ctx->queue) clReleaseCommandQueue(ctx->queue);
        facl_tensor_maps_close(ctx->tensor_maps);
        free(ctx);
        return st;
    }
    *out = ctx;
    return FACL_SUCCESS;
}

facl_status facl_context_create(const char *selector, facl_context **out)
{
    return facl_context_create_with_config(selector, NULL, out);
}

facl_status facl_context_create_with_config(const char *selector,
                                            const facl_context_config *given,
                                            facl_context **out)
{
    facl_error_clear();
    if (!out) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "out: NULL");
    *out = NULL;
    facl_context_config config;
    facl_status st = read_config(given, &config);
    if (st != FACL_SUCCESS) return st;
    cl_device_id device;
    st = facl_select_device(selector, &device);
    if (st != FACL_SUCCESS) return st;
    cl_int err;
    cl_context cl_ctx = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
    if (err != CL_SUCCESS) return facl_fail_cl(err, "clCreateContext");
    clRetainDevice(device);
    st = new_context(cl_ctx, device, &config, out);
    if (st != FACL_SUCCESS) {
        clReleaseDevice(device);
        clReleaseContext(cl_ctx);
    }
    return st;
}

facl_status facl_context_wrap(cl_context cl_ctx, cl_device_id device, facl_context **out)
{
    return facl_context_wrap_with_config(cl_ctx, device, NULL, out);
}

facl_status facl_context_wrap_with_config(cl_context cl_ctx, cl_device_id device,
                                          const facl_context_config *given, facl_context **out)
{
    facl_error_clear();
    if (!out) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "out: NULL");
    *out = NULL;
    facl_context_config config;
    facl_status st = read_config(given, &config);
    if (st != FACL_SUCCESS) return st;
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
    st = new_context(cl_ctx, device, &config, out);
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
    facl_queue_counters_release(&ctx->split_counters);
    facl_plan_memo_release(&ctx->plans);
    facl_tensor_maps_close(ctx->tensor_maps);
    clReleaseCommandQueue(ctx->queue);
    clReleaseDevice(ctx->device);
    clReleaseContext(ctx->cl_ctx);
    pthread_mutex_destroy(&ctx->enqueue_lock);
    free(ctx);
}

/* The mutex is the one part of a context that calls change; taking it through a const
 * pointer keeps validation's signatures honest about everything else. */
void facl_enqueue_lock(const facl_context *ctx)
{
    pthread_mutex_lock((pthread_mutex_t *)&ctx->enqueue_lock);
}
void facl_enqueue_unlock(const facl_context *ctx)
{
    pthread_mutex_unlock((pthread_mutex_t *)&ctx->enqueue_lock);
}

cl_context facl_context_cl_context(const facl_context *ctx) { return ctx ? ctx->cl_ctx : NULL; }
cl_device_id facl_context_device(const facl_context *ctx) { return ctx ? ctx->device : NULL; }
cl_command_queue facl_context_queue(const facl_context *ctx) { return ctx ? ctx->queue : NULL; }

facl_status facl_context_cache_stats(const facl_context *ctx, facl_cache_stats *stats)
{
    facl_error_clear();
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    if (!stats) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "stats: NULL");
    facl_cache_stats s = facl_program_cache_stats((facl_program_cache *)&ctx->programs);
    s.struct_size = sizeof s;
    return facl_write_struct("stats", &s, sizeof s, stats, stats->struct_size);
}

facl_status facl_context_tuning(const facl_context *ctx, char *text, uint64_t capacity,
                                uint64_t *length)
{
    facl_error_clear();
    if (!ctx) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "ctx: NULL");
    if (!text && capacity > 0) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "text: NULL");
    if (!text && !length)
        return facl_fail(FACL_ERROR_NULL_ARGUMENT, "text and length: NULL (nothing to return)");
    const facl_device_profile *p = &ctx->profile;
    char full[4096];
    const size_t n = facl_tuning_describe(&p->tuning, facl_vendor_name(p->vendor),
                                          p->architecture, p->device_name, full, sizeof full);
    if (text && capacity < (uint64_t)n + 1)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "capacity: %llu bytes, the text needs %llu (with its NUL)",
                         (unsigned long long)capacity, (unsigned long long)n + 1);
    if (text) memcpy(text, full, n + 1);
    if (length) *length = n;
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
    facl_device_info full;
    facl_device_info *info_out = info;
    info = &full;
    memset(info, 0, sizeof *info);
    info->struct_size = sizeof *info;
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
    snprintf(info->kernel_path_reason, sizeof info->kernel_path_reason, "%s", ctx->path_reason);
    snprintf(info->cache_dir, sizeof info->cache_dir, "%s", ctx->programs.disk_dir);
    snprintf(info->cache_note, sizeof info->cache_note, "%s", ctx->programs.disk_note);
    return facl_write_struct("info", info, sizeof *info, info_out, info_out->struct_size);
}
