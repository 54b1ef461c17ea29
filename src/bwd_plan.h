/* Planning of the backward kernels: the portable ones (cl_kernels/attn_bwd.cl) or, on
 * the tensor-core paths for fp16/bf16, attn_bwd_mma.cl; build options, tile sizes that
 * fit the device's local memory, work-group sizes. Pure functions. */
#ifndef FACL_BWD_PLAN_H
#define FACL_BWD_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "bwd_problem.h"
#include "device_profile.h"
#include "plan.h"

/* The shape of attn_bwd_mma.cl's kernels (its -D of the same names). */
typedef struct facl_bwd_mma_shape {
    /* attn_bwd_mma_dkdv: warps, keys per group, rows per tile, buffers of q and dout */
    int kv_warps, kv_keys, kv_rows, kv_stages;
    /* attn_bwd_mma_dq: warps (16 rows each), keys per tile, buffers of k and v */
    int dq_warps, dq_keys, dq_stages;
} facl_bwd_mma_shape;

/* What a kernel's work-items (or groups of them) cover along the launch's first axis. */
typedef enum facl_bwd_span {
    FACL_BWD_SPAN_ROWS,        /* query rows (heads_q along the second axis) */
    FACL_BWD_SPAN_KEYS,        /* keys (heads_kv) */
    FACL_BWD_SPAN_ROW_ELEMENTS /* query rows x head dims, an element each (heads_q) */
} facl_bwd_span;

typedef struct facl_bwd_plan {
    const char *program;      /* "attn_bwd", "attn_bwd_mma" or "attn_bwd_wgmma" */
    /* Launched in this order: D, dq, dk/dv; or, with dq_atomic, D, dk/dv adding dq into
     * the workspace's accumulator, and attn_bwd_mma_dq_store writing dq from it. */
    const char *kernels[3];
    facl_bwd_span spans[3];   /* what each kernel covers */
    /* attn_bwd_mma with DQ_ATOMIC=1 (opts->deterministic = 0): the workspace holds the
     * fp32 dq accumulator (head_dim floats before each D), zeroed before the kernels */
    int dq_atomic;
    char options[512];        /* OpenCL build options of the program */
    int block_m;              /* attn_bwd: query rows per tile of attn_bwd_dkdv */
    int block_n;              /* attn_bwd: keys per tile of attn_bwd_dq */
    facl_bwd_mma_shape mma;   /* attn_bwd_mma: its shape (zeros for the others) */
    int wgmma_warpgroups;     /* attn_bwd_wgmma: warpgroups per work-group (else 0) */
    /* Per kernel: the work-group size it requires (0: facl_plan_bwd_group_size chooses)
     * and the rows (dq) or keys (dk/dv) a group covers (0: one per work-item). */
    size_t fixed_group[3];
    int items_per_group[3];
    uint64_t local_bytes;     /* the largest static local memory of the kernels */
    uint64_t local_budget;    /* what the launch allows them (facl_mma_local_budget) */
    int requested_shape;      /* attn_bwd_mma in a requested shape (no local-memory check) */
} facl_bwd_plan;

/* Static local memory of attn_bwd_dq (k and v tiles) and attn_bwd_dkdv (q and dout
 * tiles plus their lse and D), as the kernel source declares them. */
uint64_t facl_bwd_dq_local_bytes(int block_n, int head_dim);
uint64_t facl_bwd_dkdv_local_bytes(int block_m, int head_dim);

/* Static local memory of attn_bwd_mma's dk/dv and dq kernels for a shape, as the kernel
 * source declares it (emulated: with the warp emulation's scratch). */
uint64_t facl_bwd_mma_dkdv_local_bytes(const facl_bwd_mma_shape *shape, int head_dim, int emulated);
uint64_t facl_bwd_mma_dq_local_bytes(const facl_bwd_mma_shape *shape, int head_dim, int emulated);

/* Static local memory of attn_bwd_wgmma's kernels (the larger, dk/dv's) with `warpgroups`
 * warpgroups per work-group, built with DQ_ATOMIC = dq_atomic. */
uint64_t facl_bwd_wgmma_local_bytes(int head_dim, int warpgroups, int dq_atomic, int emulated);

/* attn_bwd_wgmma where the profile takes it (profile->bwd_wgmma: by default on Hopper,
 * or forced by FACL_BWD_WGMMA=1) for fp16/bf16 head dims up to 128 (with atomic dq,
 * dq_atomic, where the problem allows it and its key blocks see >= 4096 rows on average
 * (profile->bwd_wgmma_dq_atomic), or at any length with the opt-in), in two warpgroups
 * per group where they fit (else one; else attn_bwd_mma), unless the probe failed. Else
 * attn_bwd_mma on the nvidia-mma and mma-emulated paths (unless the device's probe of it
 * failed: profile->bwd_mma_off) for fp16/bf16 and head dims up to 256, with atomic dq
 * (dq_atomic) where the problem allows it (problem->f.dq_atomics) and the opt-in asks
 * for it (profile->bwd_dq_atomic), in the first
 * shape of its list that fits facl_mma_local_budget and keeps a lane's fp32 values
 * within what ran without spills, or in `requested` (non-NULL: a valid shape, taken
 * whatever its local memory; the driver may then refuse it at the launch). Otherwise
 * attn_bwd, with tiles of 32 rows / keys halved until both kernels fit; the launch
 * refuses a plan of the chosen shapes whose local_bytes still exceeds the device's. */
void facl_plan_bwd_program(const facl_bwd_problem *problem, const facl_device_profile *profile,
                           const facl_bwd_mma_shape *requested, facl_bwd_plan *plan);

/* Everything the backward planner reads of a problem and of the requested shape, and
 * nothing else (as the forward's key, plan.h): facl_plan_bwd_keyed sees only this and
 * the device profile. All ints, no padding (bwd_plan.c checks). */
typedef struct facl_bwd_plan_key {
    facl_fwd_plan_key fwd;        /* the forward's: features, head dim, q, k, v alignment */
    int dout_aligned;             /* dout's rows 16-byte aligned */
    int grads_aligned;            /* dq's, dk's and dv's rows 16-byte aligned */
    int dq_atomics;               /* the problem allows atomic dq */
    int long_rows;                /* its key blocks see >= 4096 query rows on average (bwd_plan.c) */
    int has_requested;            /* requested: a shape was asked for, else zeros */
    facl_bwd_mma_shape requested;
} facl_bwd_plan_key;

/* `requested` may be NULL. */
void facl_bwd_plan_key_of(const facl_bwd_problem *problem, const facl_bwd_mma_shape *requested,
                          facl_bwd_plan_key *key);

/* facl_plan_bwd_program, of the problem's key. */
void facl_plan_bwd_keyed(const facl_bwd_plan_key *key, const facl_device_profile *profile,
                         facl_bwd_plan *plan);

/* "kv_warps,kv_keys,kv_rows,kv_stages,dq_warps,dq_keys,dq_stages" (FACL_BWD_MMA_SHAPE,
 * for benchmarking shapes): 0 and the shape, or -1 when the text is malformed or the
 * kernel cannot take the shape (warps 1, 2, 4 or 8; keys and rows multiples of 16 up to
 * 256; stages 1 or 2; the dk/dv kernel's warps a multiple of its 16-key slices, each dim
 * share of rows whole 8-row blocks). */
int facl_parse_bwd_mma_shape(const char *text, facl_bwd_mma_shape *shape);

/* Enqueue a validated problem's backward with a given plan (the probe runs both plans
 * on one problem); facl_launch_bwd plans, and probes attn_bwd_mma where it must. */
facl_status facl_launch_bwd_planned(facl_context *ctx, cl_command_queue queue,
                                    const facl_bwd_problem *problem, const facl_bwd_plan *plan,
                                    cl_uint num_wait_events, const cl_event *wait_events,
                                    cl_event *event);

/* Work-items per group for a kernel whose work-items own one row (or key) each: 64,
 * fewer for short sequences (down to 8), within the device's and the kernel's limits. */
size_t facl_plan_bwd_group_size(int64_t rows, const facl_device_profile *profile,
                                size_t kernel_wg_size);

/* Floats of workspace per query row and head: D alone (1), or with dq_atomic the fp32 dq
 * accumulator (head_dim rounded up to a multiple of 4, so that each row starts 16-byte
 * aligned where the workspace does), three unused floats and D, as bwd_common.cl's
 * DQ_ACC_ROW and DQ_ACC_BACK lay it out. */
uint64_t facl_bwd_workspace_entry_floats(int head_dim, int dq_atomic);

/* Floats of workspace for rows_q query rows and heads_q heads: an entry each (at least 1
 * float in all). */
uint64_t facl_bwd_workspace_floats(int64_t rows_q, int64_t heads_q, int head_dim, int dq_atomic);

/* Whether this profile's path runs attn_bwd_mma for this head dim (fp16 and bf16 calls,
 * unless its probe fails): where it does and the call allows atomics, the workspace
 * holds the dq accumulator too (facl_bwd_workspace_size counts it). */
int facl_bwd_mma_applies(const facl_device_profile *profile, int head_dim);

#endif
