/* Planning of the portable backward kernels (cl_kernels/attn_bwd.cl): build options,
 * tile sizes that fit the device's local memory, work-group sizes. Pure functions. */
#ifndef FACL_BWD_PLAN_H
#define FACL_BWD_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "device_profile.h"
#include "fwd_problem.h"

typedef struct facl_bwd_plan {
    char options[512];        /* OpenCL build options of the attn_bwd program */
    int block_m;              /* query rows per tile of attn_bwd_dkdv */
    int block_n;              /* keys per tile of attn_bwd_dq */
    uint64_t local_bytes;     /* the larger static local memory of the two kernels */
} facl_bwd_plan;

/* Static local memory of attn_bwd_dq (k and v tiles) and attn_bwd_dkdv (q and dout
 * tiles plus their lse and D), as the kernel source declares them. */
uint64_t facl_bwd_dq_local_bytes(int block_n, int head_dim);
uint64_t facl_bwd_dkdv_local_bytes(int block_m, int head_dim);

/* Tiles of 32 rows / keys, halved until both kernels fit local_mem_usable; the launch
 * refuses a plan whose local_bytes still exceeds it. */
void facl_plan_bwd_program(const facl_fwd_problem *problem, const facl_device_profile *profile,
                           facl_bwd_plan *plan);

/* Work-items per group for a kernel whose work-items own one row (or key) each: 64,
 * fewer for short sequences (down to 8), within the device's and the kernel's limits. */
size_t facl_plan_bwd_group_size(int64_t rows, const facl_device_profile *profile,
                                size_t kernel_wg_size);

#endif
