/* facl-first-call: how long an application waits for its first forward call, from
 * context creation to the finished result, and whether the kernel came from the disk
 * cache or was compiled. Run it twice over an empty FACL_CACHE_DIR to see cold and warm.
 *
 *   facl-first-call [-d P:D|name] [--dtype f16|bf16|f32] [--hdim D] [--seqlen S]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "facl.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int parse_dtype(const char *s, facl_dtype *dt)
{
    if (!strcmp(s, "f16")) *dt = FACL_DTYPE_F16;
    else if (!strcmp(s, "bf16")) *dt = FACL_DTYPE_BF16;
    else if (!strcmp(s, "f32")) *dt = FACL_DTYPE_F32;
    else return 0;
    return 1;
}

int main(int argc, char **argv)
{
    const char *device = NULL;
    facl_dtype dtype = FACL_DTYPE_F16;
    int head_dim = 128, seqlen = 512;
    for (int i = 1; i < argc; ++i) {
        const int has_value = i + 1 < argc;
        if (!strcmp(argv[i], "-d") && has_value) device = argv[++i];
        else if (!strcmp(argv[i], "--dtype") && has_value && parse_dtype(argv[i + 1], &dtype)) ++i;
        else if (!strcmp(argv[i], "--hdim") && has_value) head_dim = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seqlen") && has_value) seqlen = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [-d P:D|name] [--dtype f16|bf16|f32] [--hdim D] [--seqlen S]\n",
                    argv[0]);
            return 2;
        }
    }
    if (head_dim < 1 || seqlen < 1) {
        fprintf(stderr, "facl-first-call: --hdim and --seqlen must be positive\n");
        return 2;
    }
    const int batch = 1, heads = 8;
    const double t0 = now_ms();
    facl_context *ctx = NULL;
    facl_status st = facl_context_create(device, &ctx);
    if (st != FACL_SUCCESS) {
        fprintf(stderr, "facl-first-call: %s: %s\n", facl_status_string(st), facl_last_error());
        return 1;
    }
    const double t_context = now_ms();
    const int64_t shape[4] = {batch, seqlen, heads, head_dim};
    const size_t bytes = (size_t)batch * seqlen * heads * head_dim * facl_dtype_size(dtype);
    cl_int err;
    cl_mem buf[4];
    for (int i = 0; i < 4; ++i) {
        buf[i] = clCreateBuffer(facl_context_cl_context(ctx), CL_MEM_READ_WRITE, bytes, NULL, &err);
        if (err != CL_SUCCESS) {
            fprintf(stderr, "facl-first-call: clCreateBuffer failed (%d)\n", err);
            return 1;
        }
        const unsigned char zero = 0; /* timing only: the values do not matter here */
        clEnqueueFillBuffer(facl_context_queue(ctx), buf[i], &zero, 1, 0, bytes, 0, NULL, NULL);
    }
    clFinish(facl_context_queue(ctx));
    facl_tensor t[4];
    for (int i = 0; i < 4; ++i) t[i] = facl_tensor_contiguous(buf[i], dtype, 4, shape);
    const double t_call = now_ms();
    st = facl_fwd(ctx, NULL, &t[0], &t[1], &t[2], &t[3], NULL, NULL, 0, NULL, NULL);
    if (st == FACL_SUCCESS) clFinish(facl_context_queue(ctx));
    const double t_done = now_ms();
    int rc = 0;
    if (st != FACL_SUCCESS) {
        fprintf(stderr, "facl-first-call: %s: %s\n", facl_status_string(st), facl_last_error());
        rc = 1;
    } else {
        facl_device_info info = FACL_DEVICE_INFO_INIT;
        facl_cache_stats cache = FACL_CACHE_STATS_INIT;
        facl_context_device_info(ctx, &info);
        facl_context_cache_stats(ctx, &cache);
        printf("device: %s\nfirst forward (d=%d, seqlen %d, %s): context %.1f ms, call to result "
               "%.1f ms; kernels compiled %llu, loaded from disk cache %llu (%s)\n",
               info.device_name, head_dim, seqlen,
               dtype == FACL_DTYPE_F16 ? "fp16" : dtype == FACL_DTYPE_BF16 ? "bf16" : "fp32",
               t_context - t0, t_done - t_call, (unsigned long long)cache.source_builds,
               (unsigned long long)cache.disk_hits, info.cache_dir[0] ? info.cache_dir : "cache off");
    }
    for (int i = 0; i < 4; ++i) clReleaseMemObject(buf[i]);
    facl_context_free(ctx);
    return rc;
}
