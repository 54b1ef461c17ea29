/*
 * facl-bench's session: the context, the timer, the baseline, and the input buffers of
 * the current dtype (sized for the whole token budget and reused by every point of that
 * dtype, since batch * seqlen * heads * head_dim is the same at every point). Measures
 * one grid point for both implementations.
 */
#ifndef FACL_TOOLS_BENCH_RUN_H
#define FACL_TOOLS_BENCH_RUN_H

#include "bench_clblast.h"
#include "bench_result.h"
#include "bench_timing.h"
#include "facl.h"

typedef struct bench_session {
    facl_context *ctx;
    /* --portable-kernel: a context per kernel on ctx's cl_context and device, made with
     * FACL_PORTABLE_KERNEL set to its name; NULL where not asked for */
    facl_context *kernel_ctx[2];
    cl_command_queue queue;
    facl_device_info info;
    bench_timer timer;
    bench_reps reps;
    const bench_options *opts;
    bench_baseline *baseline; /* NULL: the column is unavailable, see baseline_why */
    char baseline_why[160];
    int have_inputs;
    facl_dtype dtype;
    cl_mem q, k, v, out, lse;
} bench_session;

/* Creates the context on o->device and everything else. Returns 0, or -1 with err. */
int bench_session_open(bench_session *s, const bench_options *o, char *err, size_t err_size);
void bench_session_close(bench_session *s);

/* Measures `row->cfg` for facl and the baseline; errors land in the row's notes. */
void bench_session_measure(bench_session *s, bench_row *row);

/* "12.0 GiB" style. */
void bench_format_bytes(uint64_t bytes, char *buf, size_t size);

#endif
