/* The kernel path of a context (see kernel_path.h). */
#include "kernel_path.h"

#include <stdio.h>
#include <string.h>

#include "env.h"
#include "status.h"

static facl_status force_path(facl_context *ctx, const char *name, const char *source)
{
    const int path = facl_kernel_path_from_name(name);
    if (path < 0)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "%s: '%s' is not portable-gpu, portable-cpu, nvidia-mma or mma-emulated",
                         source, name);
    if (path == FACL_PATH_NVIDIA_MMA && !facl_device_has_nvidia_mma(&ctx->profile))
        return facl_fail(FACL_ERROR_UNSUPPORTED,
                         "%s=nvidia-mma needs an NVIDIA GPU of compute capability 8.0 or newer; "
                         "%s is not one",
                         source, ctx->profile.device_name);
    ctx->profile.path = (facl_kernel_path)path;
    ctx->bwd_probe = FACL_BWD_PROBE_PASSED; /* forced: the backward's kernels are not probed either */
    snprintf(ctx->path_reason, sizeof ctx->path_reason, "forced by %s (no probe)", source);
    return FACL_SUCCESS;
}

facl_status facl_choose_kernel_path(facl_context *ctx, const char *configured)
{
    const char *env = facl_getenv("FACL_KERNEL_PATH");
    facl_status st = FACL_SUCCESS;
    if (env && *env) {
        st = force_path(ctx, env, "FACL_KERNEL_PATH");
    } else if (configured && *configured) {
        st = force_path(ctx, configured, "config.kernel_path");
    } else if (facl_device_has_nvidia_mma(&ctx->profile)) {
        char why[200];
        if (facl_probe_fwd_path(ctx, FACL_PATH_NVIDIA_MMA, why, sizeof why) == FACL_SUCCESS) {
            ctx->profile.path = FACL_PATH_NVIDIA_MMA;
            if (facl_probe_cache_mma(ctx, FACL_PATH_NVIDIA_MMA, why, sizeof why) == FACL_SUCCESS) {
                snprintf(ctx->path_reason, sizeof ctx->path_reason, "nvidia-mma probe passed");
            } else {
                ctx->profile.cache_mma_off = 1;
                snprintf(ctx->path_reason, sizeof ctx->path_reason,
                         "nvidia-mma probe passed; its KV-cache kernel's failed, the cache "
                         "uses attn_cache: %.120s", why);
            }
        } else {
            ctx->profile.path = FACL_PATH_PORTABLE_GPU;
            snprintf(ctx->path_reason, sizeof ctx->path_reason,
                     "nvidia-mma probe failed, using portable-gpu: %s", why);
        }
        facl_log(&ctx->logger, FACL_LOG_PROBE, "%s", ctx->path_reason);
        facl_error_clear(); /* a failed probe is not a failure of this call */
    } else {
        /* facl_device_profile_query already chose the portable path of the device type. */
        snprintf(ctx->path_reason, sizeof ctx->path_reason, "%s",
                 ctx->profile.path == FACL_PATH_PORTABLE_CPU ? "CPU device"
                                                             : "no fast path for this device");
    }
    if (st == FACL_SUCCESS)
        facl_log(&ctx->logger, FACL_LOG_KERNEL_PATH, "kernel path %s: %s",
                 facl_kernel_path_name(ctx->profile.path), ctx->path_reason);
    return st;
}
