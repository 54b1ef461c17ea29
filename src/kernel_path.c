/* The kernel path of a context (see kernel_path.h). */
#include "kernel_path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "status.h"
#include "tensor_map.h"

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

/* A benchmark's shape switch: `count` (3 or 4) comma-separated integers from environment
 * variable `name`, each one of allowed[i] (ended by -1), into *v[i]; untouched when it is
 * unset or empty. `usage` names the fields and their values for the error. */
enum { SHAPE_FIELDS_MAX = 4 };
static facl_status read_shape(const char *name, const char *usage, int count,
                              const int allowed[][4], int *const v[])
{
    const char *text = facl_getenv(name);
    if (!text || !*text) return FACL_SUCCESS;
    int read[SHAPE_FIELDS_MAX] = {0, 0, 0, 0}, used = 0;
    int ok = sscanf(text, "%d,%d,%d%n", &read[0], &read[1], &read[2], &used) == 3;
    if (ok && count == 4) {
        const int three = used;
        ok = sscanf(text + three, ",%d%n", &read[3], &used) == 1;
        used += three;
    }
    ok = ok && text[used] == '\0';
    for (int i = 0; i < count && ok; ++i) {
        int found = 0;
        for (int j = 0; j < 4 && allowed[i][j] >= 0; ++j) found |= read[i] == allowed[i][j];
        ok = found;
    }
    if (!ok)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "%s: expected %s, got \"%s\"", name, usage, text);
    for (int i = 0; i < count; ++i) *v[i] = read[i];
    return FACL_SUCCESS;
}

/* FACL_FWD_WGMMA_SHAPE, FACL_FWD_WGMMA_BLOCK_N, FACL_FWD_BLOCKS_PER_GROUP and
 * FACL_FWD_MMA_SHAPE into the profile. */
static facl_status read_shapes(facl_device_profile *p)
{
    static const int wgmma[3][4] = {{1, 2, -1}, {0, 1, -1}, {0, 2, 3, -1}};
    static const int mma[4][4] = {{1, 2, -1}, {0, 1, -1}, {32, 64, 128, -1}, {1, 2, -1}};
    int *const wgmma_fields[3] = {&p->wgmma_warpgroups, &p->wgmma_q_regs, &p->wgmma_pipe};
    int *const mma_fields[4] = {&p->mma_m_tiles, &p->mma_q_local, &p->mma_block_n, &p->mma_kv_stages};
    facl_status st = read_shape("FACL_FWD_WGMMA_SHAPE",
                                "\"warpgroups,q_regs,stages\" with warpgroups 1 or 2, q_regs 0 or 1, "
                                "stages 0, 2 or 3",
                                3, wgmma, wgmma_fields);
    if (st != FACL_SUCCESS) return st;
    const char *block_n = facl_getenv("FACL_FWD_WGMMA_BLOCK_N");
    if (block_n && *block_n) {
        if (strcmp(block_n, "64") != 0 && strcmp(block_n, "128") != 0)
            return facl_fail(FACL_ERROR_INVALID_VALUE,
                             "FACL_FWD_WGMMA_BLOCK_N: expected 64 or 128, got \"%s\"", block_n);
        p->wgmma_block_n = block_n[0] == '6' ? 64 : 128;
    }
    const char *per_group = facl_getenv("FACL_FWD_BLOCKS_PER_GROUP");
    if (per_group && *per_group) {
        char *end = NULL;
        const long n = strtol(per_group, &end, 10);
        if (*end != '\0' || n < 1 || n > 64)
            return facl_fail(FACL_ERROR_INVALID_VALUE,
                             "FACL_FWD_BLOCKS_PER_GROUP: expected 1 to 64, got \"%s\"", per_group);
        p->fwd_blocks_per_group = (int)n;
    }
    return read_shape("FACL_FWD_MMA_SHAPE",
                      "\"m_tiles,q_local,block_n,kv_stages\" with m_tiles 1 or 2, q_local 0 or 1, "
                      "block_n 32, 64 or 128, kv_stages 1 or 2",
                      4, mma, mma_fields);
}

/* The warp-specialised Hopper kernel's copier on the device: the tensor copy engine (TMA)
 * where the CUDA driver can encode its maps (tensor_map.h), unless FACL_FWD_TMA=0 (`env`)
 * asks for cp.async (benchmarks of both). An engine that is not available leaves cp.async
 * and says why in the path's reason. */
static facl_status choose_tensor_maps(facl_context *ctx, const char *env)
{
    const size_t used = strlen(ctx->path_reason);
    if (env && strcmp(env, "0") == 0) {
        snprintf(ctx->path_reason + used, sizeof ctx->path_reason - used,
                 "; its copier uses cp.async (FACL_FWD_TMA=0)");
        return FACL_SUCCESS;
    }
    if (facl_tensor_maps_open(ctx->device, &ctx->tensor_maps) == FACL_SUCCESS) {
        ctx->profile.wgmma_tma = 1;
        snprintf(ctx->path_reason + used, sizeof ctx->path_reason - used,
                 "; its copier uses the tensor copy engine");
    } else {
        snprintf(ctx->path_reason + used, sizeof ctx->path_reason - used,
                 "; its copier uses cp.async: %.100s", facl_last_error());
        facl_error_clear(); /* not a failure of the context */
    }
    return FACL_SUCCESS;
}

/* The default on a Hopper GPU whose nvidia-mma path passed its probe: the warp-specialised
 * Hopper kernel (ping-pong) with the tensor copy engine where the planner finds it faster
 * than attn_fwd_mma (FACL_WGMMA_WHERE_FASTER, plan.c), once the CUDA driver's map encoder
 * is there and the kernel passed its own probe (the same problems as nvidia-mma's);
 * otherwise attn_fwd_mma everywhere, the reason saying why. FACL_FWD_TMA=0 (`tma`) keeps
 * it off. */
static void choose_hopper_default(facl_context *ctx, const char *tma)
{
    facl_device_profile *p = &ctx->profile;
    const size_t used = strlen(ctx->path_reason);
    if (tma && strcmp(tma, "0") == 0) {
        snprintf(ctx->path_reason + used, sizeof ctx->path_reason - used,
                 "; Hopper forward off (FACL_FWD_TMA=0)");
        return;
    }
    char why[200];
    if (facl_tensor_maps_open(ctx->device, &ctx->tensor_maps) != FACL_SUCCESS) {
        snprintf(ctx->path_reason + used, sizeof ctx->path_reason - used,
                 "; Hopper forward off: %.100s", facl_last_error());
    } else if (facl_probe_fwd_hopper(ctx, why, sizeof why) != FACL_SUCCESS) {
        facl_tensor_maps_close(ctx->tensor_maps);
        ctx->tensor_maps = NULL;
        snprintf(ctx->path_reason + used, sizeof ctx->path_reason - used,
                 "; Hopper forward probe failed: %.100s", why);
    } else {
        p->fwd_wgmma = FACL_WGMMA_WHERE_FASTER;
        p->wgmma_ws = 2;
        p->wgmma_tma = 1;
        snprintf(ctx->path_reason + used, sizeof ctx->path_reason - used,
                 "; Hopper forward with the tensor copy engine where faster (probe passed)");
    }
    facl_log(&ctx->logger, FACL_LOG_PROBE, "%s", ctx->path_reason + used + 2); /* past "; " */
    facl_error_clear(); /* none of this fails the context */
}

/* Whether the forward uses attn_fwd_wgmma (device_profile.h, fwd_wgmma): FACL_FWD_WGMMA=1
 * forces it for every fp16/bf16 head dim (nvidia-mma on compute capability 9.x, or
 * mma-emulated); "0" never; unset or "": where faster on a Hopper GPU whose nvidia-mma
 * path was chosen by its probe (choose_hopper_default), else never.
 * FACL_FWD_WGMMA_WS (0, 1 or 2) picks its warp-specialised form when forced, and is
 * refused where the kernel is not forced (it would change nothing); FACL_FWD_TMA (0 or 1)
 * its copier when forced, or turns the default off, and is refused with FACL_FWD_WGMMA=0
 * and with FACL_FWD_WGMMA=1 without FACL_FWD_WGMMA_WS. Appends the choice to the path's
 * reason. `probed`: the path was chosen by its probe. */
static facl_status choose_wgmma(facl_context *ctx, int probed)
{
    facl_device_profile *p = &ctx->profile;
    const char *ws = facl_getenv("FACL_FWD_WGMMA_WS");
    if (ws && *ws && strcmp(ws, "0") != 0 && strcmp(ws, "1") != 0 && strcmp(ws, "2") != 0)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "FACL_FWD_WGMMA_WS: expected 0, 1 or 2 (with ping-pong), got \"%s\"", ws);
    const int ws_asked = ws && *ws ? ws[0] - '0' : 0;
    const char *tma = facl_getenv("FACL_FWD_TMA");
    if (tma && *tma && strcmp(tma, "0") != 0 && strcmp(tma, "1") != 0)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "FACL_FWD_TMA: expected 0 or 1, got \"%s\"", tma);
    const char *env = facl_getenv("FACL_FWD_WGMMA");
    const int hopper = p->path == FACL_PATH_NVIDIA_MMA && p->nv_compute_major == 9;
    if (!env || !*env) {
        if (ws_asked)
            return facl_fail(FACL_ERROR_INVALID_VALUE,
                             "FACL_FWD_WGMMA_WS=%s applies to the Hopper kernel when forced only: set "
                             "FACL_FWD_WGMMA=1 too", ws);
        if (hopper && probed) choose_hopper_default(ctx, tma && *tma ? tma : NULL);
        return FACL_SUCCESS;
    }
    if (strcmp(env, "0") == 0) {
        if (ws_asked || (tma && *tma))
            return facl_fail(FACL_ERROR_INVALID_VALUE,
                             "%s=%s changes nothing with FACL_FWD_WGMMA=0 (no Hopper kernel)",
                             ws_asked ? "FACL_FWD_WGMMA_WS" : "FACL_FWD_TMA", ws_asked ? ws : tma);
        return FACL_SUCCESS;
    }
    if (strcmp(env, "1") != 0)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "FACL_FWD_WGMMA: expected 0 or 1, got \"%s\"",
                         env);
    if (tma && *tma && !ws_asked)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "FACL_FWD_TMA=%s applies to the warp-specialised Hopper kernel only when it "
                         "is forced: set FACL_FWD_WGMMA_WS too", tma);
    if (!hopper && p->path != FACL_PATH_MMA_EMULATED)
        return facl_fail(FACL_ERROR_UNSUPPORTED,
                         "FACL_FWD_WGMMA=1 needs the nvidia-mma path on a compute "
                         "capability 9.x GPU, or mma-emulated; %s runs %s",
                         p->device_name, facl_kernel_path_name(p->path));
    p->fwd_wgmma = FACL_WGMMA_EVERYWHERE;
    p->wgmma_ws = ws_asked;
    const size_t used = strlen(ctx->path_reason);
    snprintf(ctx->path_reason + used, sizeof ctx->path_reason - used,
             "; forward wgmma forced by FACL_FWD_WGMMA (%sno probe)",
             ws_asked ? "warp-specialised, " : "");
    return ws_asked && hopper ? choose_tensor_maps(ctx, tma) : FACL_SUCCESS;
}

/* The Hopper backward (device_profile.h, bwd_wgmma): unset or "", attn_bwd_wgmma on a
 * compute capability 9.x GPU whose nvidia-mma path was chosen by its probe (`probed`),
 * behind the tensor-core backward's probe; FACL_BWD_WGMMA=1 forces it wherever it applies
 * (nvidia-mma on compute capability 9.x, or mma-emulated; refused elsewhere), without a
 * probe; "0" never. FACL_BWD_WGMMA_WARPGROUPS (1 or 2) sets its warpgroups per
 * work-group when it is forced. */
static facl_status choose_bwd_wgmma(facl_context *ctx, int probed)
{
    facl_device_profile *p = &ctx->profile;
    const char *env = facl_getenv("FACL_BWD_WGMMA");
    const char *wgs = facl_getenv("FACL_BWD_WGMMA_WARPGROUPS");
    if (env && *env && strcmp(env, "0") != 0 && strcmp(env, "1") != 0)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "FACL_BWD_WGMMA: expected 0 or 1, got \"%s\"", env);
    const int forced = env && strcmp(env, "1") == 0;
    if (wgs && *wgs) {
        if (strcmp(wgs, "1") != 0 && strcmp(wgs, "2") != 0)
            return facl_fail(FACL_ERROR_INVALID_VALUE,
                             "FACL_BWD_WGMMA_WARPGROUPS: expected 1 or 2, got \"%s\"", wgs);
        if (!forced)
            return facl_fail(FACL_ERROR_INVALID_VALUE,
                             "FACL_BWD_WGMMA_WARPGROUPS=%s applies to the Hopper backward when "
                             "forced only: set FACL_BWD_WGMMA=1 too", wgs);
        p->bwd_wgmma_warpgroups = wgs[0] - '0';
    }
    const int hopper = p->path == FACL_PATH_NVIDIA_MMA && p->nv_compute_major == 9;
    const size_t used = strlen(ctx->path_reason);
    if (!forced) {
        if ((!env || !*env) && hopper && probed) {
            p->bwd_wgmma = FACL_BWD_WGMMA_PROBED;
            snprintf(ctx->path_reason + used, sizeof ctx->path_reason - used,
                     "; Hopper backward up to head dim 128 (probed at the first backward call)");
        }
        return FACL_SUCCESS;
    }
    if (!hopper && p->path != FACL_PATH_MMA_EMULATED)
        return facl_fail(FACL_ERROR_UNSUPPORTED,
                         "FACL_BWD_WGMMA=1 needs the nvidia-mma path on a compute capability 9.x "
                         "GPU, or mma-emulated; %s runs %s",
                         p->device_name, facl_kernel_path_name(p->path));
    p->bwd_wgmma = FACL_BWD_WGMMA_FORCED;
    snprintf(ctx->path_reason + used, sizeof ctx->path_reason - used,
             "; backward wgmma forced by FACL_BWD_WGMMA (no probe)");
    return FACL_SUCCESS;
}

facl_status facl_choose_kernel_path(facl_context *ctx, const char *configured)
{
    const char *env = facl_getenv("FACL_KERNEL_PATH");
    /* before the probe, so that it runs the shape the calls will */
    facl_status st = read_shapes(&ctx->profile);
    if (st != FACL_SUCCESS) return st;
    int probed = 0; /* nvidia-mma chosen by its probe */
    if (env && *env) {
        st = force_path(ctx, env, "FACL_KERNEL_PATH");
    } else if (configured && *configured) {
        st = force_path(ctx, configured, "config.kernel_path");
    } else if (facl_device_has_nvidia_mma(&ctx->profile)) {
        char why[200];
        if (facl_probe_fwd_path(ctx, FACL_PATH_NVIDIA_MMA, why, sizeof why) == FACL_SUCCESS) {
            ctx->profile.path = FACL_PATH_NVIDIA_MMA;
            probed = 1;
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
    if (st == FACL_SUCCESS) st = choose_wgmma(ctx, probed);
    if (st == FACL_SUCCESS) st = choose_bwd_wgmma(ctx, probed);
    if (st == FACL_SUCCESS)
        facl_log(&ctx->logger, FACL_LOG_KERNEL_PATH, "kernel path %s: %s",
                 facl_kernel_path_name(ctx->profile.path), ctx->path_reason);
    return st;
}
