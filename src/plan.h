/* Planning: from a validated problem and the device profile to a kernel variant and a
 * launch geometry. Pure functions, so they can be tested without a device. */
#ifndef FACL_PLAN_H
#define FACL_PLAN_H

#include <stddef.h>

#include "device_profile.h"
#include "fwd_problem.h"

typedef struct facl_fwd_plan {
    char options[384]; /* OpenCL build options: -D specialisation macros */
    int block_n;       /* keys per local-memory tile */
} facl_fwd_plan;

void facl_plan_fwd_program(const facl_fwd_problem *problem, const facl_device_profile *profile,
                           facl_fwd_plan *plan);

/* Query rows (= work-items) per work-group, within the device's and the built kernel's
 * work-group limits. */
size_t facl_plan_fwd_rows_per_group(const facl_fwd_problem *problem,
                                    const facl_device_profile *profile, size_t kernel_wg_size);

#endif
