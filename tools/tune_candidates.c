/* facl-tune's candidates (see tune.h). Every candidate is a value the library accepts
 * (facl_tuning_check_value), so a rejection by the library is a failure worth reporting,
 * and each is what the plan would make of it on this device, so that no kernel is timed
 * twice under two names and the entry written says what runs. */
#include <stdio.h>
#include <string.h>

#include "fwd_problem.h"
#include "plan.h"
#include "tool_util.h"
#include "tune.h"

/* The fields a candidate's kernel reads: attn_fwd_rows only its rows per work-item; on
 * GPUs the choice of kernel, then attn_fwd's tile, lanes and rows per group or
 * attn_fwd_blocked's blocks and micro-tiles. */
static int field_used(tune_kernel kernel, const facl_tuning_params *p, int field)
{
    const char *name = facl_tuning_field_name(field);
    if (kernel == TUNE_CPU) return strcmp(name, "cpu_rows") == 0;
    if (strcmp(name, "kernel") == 0) return 1;
    const int blocked_field = strncmp(name, "blocked_", 8) == 0;
    if (p->kernel == FACL_TUNING_KERNEL_BLOCKED) return blocked_field;
    return !blocked_field && strcmp(name, "cpu_rows") != 0;
}

facl_tuning_params tune_params_used(tune_kernel kernel, const facl_tuning_params *p)
{
    facl_tuning_params out;
    memset(&out, 0, sizeof out);
    for (int i = 0; i < FACL_TUNING_FIELDS; ++i)
        if (field_used(kernel, p, i)) *facl_tuning_field(&out, i) = facl_tuning_field_value(p, i);
    return out;
}

void tune_params_text(tune_kernel kernel, const facl_tuning_params *p, char *buf, size_t size)
{
    if (size) buf[0] = '\0';
    for (int i = 0; i < FACL_TUNING_FIELDS; ++i)
        if (field_used(kernel, p, i))
            tool_appendf(buf, size, "%s%s %d", buf[0] ? ", " : "", facl_tuning_field_name(i),
                         facl_tuning_field_value(p, i));
}

/* The portable GPU kernel's values as src/plan.c turns them into a kernel and a
 * work-group on a device of `limits` (a long query, so that rows do not shrink for it):
 * attn_fwd's tile, lanes and rows, or attn_fwd_blocked's blocks (shrunk to fit); a
 * blocked shape that fits nowhere becomes the attn_fwd it falls back to. */
static facl_tuning_params as_planned(int hdim, const facl_device_profile *limits,
                                     const facl_tuning_params *c)
{
    facl_device_profile profile = *limits;
    profile.path = FACL_PATH_PORTABLE_GPU;
    memset(&profile.tuning, 0, sizeof profile.tuning);
    profile.tuning.d[facl_tuning_class(hdim)] = *c;
    facl_fwd_problem problem;
    memset(&problem, 0, sizeof problem);
    problem.dtype = FACL_DTYPE_F32;
    problem.head_dim = hdim;
    problem.seqlen_q = problem.seqlen_k = 1 << 20;
    problem.batch = problem.heads_q = problem.heads_kv = 1;
    facl_fwd_plan plan;
    facl_plan_fwd_program(&problem, &profile, &plan);
    facl_tuning_params out = *c;
    if (strcmp(plan.kernel, "attn_fwd_blocked") == 0) {
        out.blocked_m = plan.block_m;
        out.blocked_n = plan.block_n;
        return out;
    }
    out.kernel = FACL_TUNING_KERNEL_PREVIOUS;
    out.block_n = plan.block_n;
    out.lanes = plan.lanes;
    const size_t group = facl_plan_fwd_group_size(&plan, &problem, &profile, (size_t)-1);
    out.group_rows = (int)(group / (size_t)plan.lanes);
    return out;
}

/* Adds c, as planned, unless the library would refuse it or it is already there; lanes
 * beyond the head dim, which would only idle, are left out. The table's values
 * (`always`) go in whatever they are. */
static void add(tune_kernel kernel, int hdim, const facl_device_profile *limits,
                const facl_tuning_params *given, int always, facl_tuning_params *out, size_t *n,
                size_t max)
{
    facl_tuning_params c = *given;
    char why[96];
    if (!always) {
        for (int i = 0; i < FACL_TUNING_FIELDS; ++i)
            if (field_used(kernel, &c, i) &&
                facl_tuning_check_value(i, facl_tuning_field_value(&c, i), why, sizeof why) != 0)
                return;
        if (kernel == TUNE_GPU && c.kernel == FACL_TUNING_KERNEL_PREVIOUS && c.lanes > hdim) return;
    }
    if (kernel == TUNE_GPU) c = as_planned(hdim, limits, &c);
    const facl_tuning_params used = tune_params_used(kernel, &c);
    for (size_t j = 0; j < *n; ++j)
        if (memcmp(&out[j], &used, sizeof used) == 0) return;
    if (*n < max) out[(*n)++] = used;
}

size_t tune_candidates(tune_kernel kernel, int quick, int hdim, const facl_device_profile *limits,
                       const facl_tuning_params *table, facl_tuning_params *out, size_t max)
{
    size_t n = 0;
    add(kernel, hdim, limits, table, 1, out, &n, max);
    if (kernel == TUNE_CPU) {
        /* Rows per work-item: how often each loaded key and value is reused, against
         * the private arrays (and registers) that many rows take. */
        static const int full[] = {4, 8, 12, 16, 20, 24, 28, 32};
        static const int fast[] = {8, 16, 32};
        const int *rows = quick ? fast : full;
        const size_t count = quick ? sizeof fast / sizeof fast[0] : sizeof full / sizeof full[0];
        for (size_t i = 0; i < count; ++i) {
            facl_tuning_params c = *table;
            c.cpu_rows = rows[i];
            add(kernel, hdim, limits, &c, 0, out, &n, max);
        }
        return n;
    }
    if (quick) {
        /* One parameter of the table's kernel at a time, halved and doubled from the
         * table's values; then the other kernel with the table's values. */
        for (int i = 0; i < FACL_TUNING_FIELDS; ++i) {
            if (!field_used(kernel, table, i) || strcmp(facl_tuning_field_name(i), "kernel") == 0)
                continue;
            for (int f = 0; f < 2; ++f) {
                facl_tuning_params c = *table;
                int *v = facl_tuning_field(&c, i);
                *v = f ? *v * 2 : *v / 2;
                add(kernel, hdim, limits, &c, 0, out, &n, max);
            }
        }
        facl_tuning_params other = *table;
        other.kernel = table->kernel == FACL_TUNING_KERNEL_BLOCKED ? FACL_TUNING_KERNEL_PREVIOUS
                                                                   : FACL_TUNING_KERNEL_BLOCKED;
        add(kernel, hdim, limits, &other, 0, out, &n, max);
        return n;
    }
    /* attn_fwd_blocked: blocks of rows and keys x micro-tiles (36). */
    static const int blocks[] = {32, 64, 128};
    static const int micro[] = {4, 8};
    for (size_t m = 0; m < 3; ++m)
        for (size_t b = 0; b < 3; ++b)
            for (size_t tm = 0; tm < 2; ++tm)
                for (size_t tn = 0; tn < 2; ++tn) {
                    facl_tuning_params c = *table;
                    c.kernel = FACL_TUNING_KERNEL_BLOCKED;
                    c.blocked_m = blocks[m];
                    c.blocked_n = blocks[b];
                    c.blocked_tm = micro[tm];
                    c.blocked_tn = micro[tn];
                    add(kernel, hdim, limits, &c, 0, out, &n, max);
                }
    /* attn_fwd: the whole grid of tile sizes, lanes and rows per work-group (64). */
    static const int block_n[] = {8, 16, 32, 64};
    static const int lanes[] = {1, 2, 4, 8};
    static const int rows[] = {16, 32, 64, 128};
    for (size_t b = 0; b < 4; ++b)
        for (size_t l = 0; l < 4; ++l)
            for (size_t r = 0; r < 4; ++r) {
                facl_tuning_params c = *table;
                c.kernel = FACL_TUNING_KERNEL_PREVIOUS;
                c.block_n = block_n[b];
                c.lanes = lanes[l];
                c.group_rows = rows[r];
                add(kernel, hdim, limits, &c, 0, out, &n, max);
            }
    return n;
}
