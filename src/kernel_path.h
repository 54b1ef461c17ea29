/* Which kernel path a context uses: forced (environment, then configuration), or chosen
 * from the device, a fast path only once its probe has passed on this device. */
#ifndef FACL_KERNEL_PATH_H
#define FACL_KERNEL_PATH_H

#include "context.h"

/* Sets ctx->profile.path and ctx->path_reason, and logs the decision. `configured` is
 * facl_context_config.kernel_path (NULL or "" = choose). Fails only for a forced path
 * that is unknown or impossible on this device. */
facl_status facl_choose_kernel_path(facl_context *ctx, const char *configured);

/* Compile and run a few tiny attention problems on `path` and compare them with a
 * float64 computation on the host. FACL_SUCCESS if every output is within tolerance;
 * otherwise the status and, in why, what went wrong. ctx->profile.path is restored. */
facl_status facl_probe_fwd_path(facl_context *ctx, facl_kernel_path path, char *why, size_t cap);

/* The same problems through facl_fwd_kvcache's tensor-core kernel (split in two, so the
 * merge runs too) on `path`; the context's path is left as it was. */
facl_status facl_probe_cache_mma(facl_context *ctx, facl_kernel_path path, char *why, size_t cap);

/* The same problems through the Hopper forward's warp-specialised kernel (ping-pong) with
 * its copier through the tensor copy engine (the context holds the maps' encoder); the
 * profile's Hopper settings are left as they were. */
facl_status facl_probe_fwd_hopper(facl_context *ctx, char *why, size_t cap);

/* The backward's tensor-core kernels (attn_bwd_mma.cl, as planned for `path`) against
 * attn_bwd.cl on the same device and inputs: dq, dk and dv of a few tiny problems
 * (forward through the context's path). FACL_SUCCESS if they agree within the rounding
 * of 16-bit gradients; otherwise why. Neither the context's path nor its profile changes. */
facl_status facl_probe_bwd_mma(facl_context *ctx, facl_kernel_path path, char *why, size_t cap);

#endif
