/* Planning: from a validated problem and the device profile to a kernel variant and a
 * launch geometry. Pure functions, so they can be tested without a device. */
#ifndef FACL_PLAN_H
#define FACL_PLAN_H

#include <stddef.h>

#include "device_profile.h"
#include "fwd_problem.h"

typedef struct facl_fwd_plan {
    const char *kernel;  /* program and kernel name: "attn_fwd", "attn_fwd_blocked",
                          * "attn_fwd_rows", "attn_fwd_mma", "attn_fwd_wgmma" */
    char options[512];   /* OpenCL build options: -D specialisation macros */
    int block_n;         /* keys per tile */
    int rows_per_item;   /* attn_fwd_rows: query rows per work-item (else 1) */
    int register_rows;   /* attn_fwd_rows: rows whose q.k and p.v chains run at once (RB) */
    int packed_kv;       /* attn_fwd_rows: 1 when pack_kv_tiles first writes the k/v tiles
                          * into a buffer of packed_tiles tiles per kv head, packed_bytes */
    int64_t packed_tiles;
    uint64_t packed_bytes;
    int lanes;           /* work-items per query row (attn_fwd_mma: 128 for 64 rows, so 2) */
    int group_rows;      /* attn_fwd: query rows per work-group before the launch's limits
                          * (tuning.h), else 0 */
    int block_m;         /* attn_fwd_blocked, attn_fwd_wgmma: query rows per work-group (its
                          * fixed_group work-items cover them), else 0 */
    size_t fixed_group;  /* a work-group size the kernel requires, else 0 (sized at launch) */
    int moves_registers; /* 1: the kernel's warpgroups trade registers (setmaxnreg, attn_fwd_wgmma
                          * with WG_WS): NVIDIA's driver then reports the work-group size that
                          * its computing warps' raised count would allow (256 for the 384 it
                          * was built for and runs, run 88), so the launch goes by the size
                          * the kernel was compiled for */
    uint64_t local_bytes; /* static local memory of the kernel variant */
    uint64_t local_budget; /* what the launch allows it (local_mem_usable, or
                            * facl_mma_local_budget for attn_fwd_mma) */
    /* attn_fwd_wgmma's copier through the tensor copy engine (WS_TMA): the forward takes
     * the maps tma_maps_fill completes as one more argument; tma_q: q's map too (q staged
     * in local memory) */
    int tma, tma_q;
    /* row blocks per work-group (attn_fwd_wgmma: the launch divides its grid by this; each
     * group takes its blocks in row_block_at's order and fetches the next block's q, k and
     * v while it finishes one), else 1 */
    int blocks_per_group;
} facl_fwd_plan;

/* The static local memory a tensor-core kernel (attn_fwd_mma, attn_bwd_mma) may declare:
 * on the nvidia-mma path half the shared memory of an SM, so that two work-groups share
 * it (by compute capability; more than the 48 KiB NVIDIA's OpenCL reports), elsewhere
 * local_mem_usable. */
uint64_t facl_mma_local_budget(const facl_device_profile *profile);
/* The local memory of a tensor-core kernel's work-group that has an SM to itself (eight or
 * more warps: their registers fill the SM anyway): the whole SM, less 1 KiB, where
 * facl_mma_local_budget goes beyond what the device reports (nvidia-mma); elsewhere the
 * same as facl_mma_local_budget. */
uint64_t facl_mma_sm_budget(const facl_device_profile *profile);

/* attn_fwd_wgmma's static local memory for a head dim and shape (tests keep the kernel's
 * declarations and this in step). */
uint64_t facl_wgmma_local_bytes(int head_dim, int warpgroups, int q_regs, int pipe, int block_n,
                                int emulated);

/* attn_fwd_blocked's static local memory (cl_kernels/attn_fwd_blocked.cl: stage, p_tile,
 * row_parts) for a head dim, its blocks and micro-tiles and its staging steps. */
uint64_t facl_blocked_local_bytes(int head_dim, int block_m, int block_n, int tm, int tn,
                                  int chunk_d, int chunk_keys);

/* Everything the forward planner reads of a problem, and nothing else: facl_plan_fwd
 * sees only this and the device profile (no environment, no other state: settings read
 * from the environment live in the profile), so one key on one profile always gives the
 * same plan, which is what lets plan_memo.h reuse plans. All ints, so no padding
 * (plan.c checks) and equal keys are equal bytes. */
typedef struct facl_fwd_plan_key {
    int dtype, head_dim, batch, heads_q, heads_kv;
    int seqlen_q, seqlen_k, total_k, varlen;
    int softcap, alibi, dropout, seqused; /* the features, 0 or 1 */
    int q_aligned, k_aligned, v_aligned, o_aligned; /* facl_view_rows_16_byte_aligned of each view */
} facl_fwd_plan_key;

void facl_fwd_plan_key_of(const facl_fwd_problem *problem, facl_fwd_plan_key *key);

/* The kernel and its options. A fast path whose kernel would not fit the device's local
 * memory falls back to the portable kernel; the launch refuses a plan whose
 * local_bytes still exceeds profile->local_mem_usable. */
void facl_plan_fwd(const facl_fwd_plan_key *key, const facl_device_profile *profile,
                   facl_fwd_plan *plan);

/* facl_plan_fwd of the problem's key. */
void facl_plan_fwd_program(const facl_fwd_problem *problem, const facl_device_profile *profile,
                           facl_fwd_plan *plan);

/* Work-items per work-group, within the device's and the built kernel's limits: a
 * multiple of plan->lanes (1 for attn_fwd_rows, whose work-items own several rows). */
size_t facl_plan_fwd_group_size(const facl_fwd_plan *plan, const facl_fwd_problem *problem,
                                const facl_device_profile *profile, size_t kernel_wg_size);

/* attn_fwd_rows's packed k/v buffer: tiles per kv head and bytes (plan.c, the kernel's
 * packed_first_tile), and whether the plan packs. */
int facl_plan_cpu_packing(const facl_fwd_plan_key *key, const facl_device_profile *profile,
                          int rows_per_item, int64_t *tiles, uint64_t *bytes);

/* The options shared by every kernel of a forward call (dtype, head dim, features). */
void facl_plan_fwd_feature_options(const facl_fwd_plan_key *key, char *buf, size_t cap);

#endif
