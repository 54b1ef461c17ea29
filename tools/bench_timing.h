/*
 * Timing with OpenCL profiling events, the clpeak way: one untimed warm-up (which also
 * pays for kernel compilation), a probe, then a repetition count sized from the probe,
 * and the median reported.
 *
 * One timed run spans from the END of a tiny "stamp" kernel enqueued just before the
 * work to the END of the work's last command. The stamp makes every command of the work
 * count, also when it is several kernels (CLBlast's GEMM may pad, multiply and copy
 * back, and returns an event for its last kernel only), and treats every implementation
 * alike. All timestamps come from the same queue, so they share one device clock.
 *
 * With a flush buffer (bench_timer_flush), each run first fills it: the device is busy
 * with the fill while the host makes the call, so the span is the device's time for the
 * work (not the host's time to enqueue it), and the fill evicts the work's data from the
 * caches, as triton's do_bench (torch_sdpa.py's timer) does before each run. The fill
 * leaves the L2 full of dirty lines, whose writebacks the timed work then pays for as it
 * reads; with flush_read, a kernel reads the buffer back after the fill, so that the work
 * starts from clean lines instead (on the H200 decode's GB/s differs by up to 25% between
 * the two states, torch's more than ours from 4k keys on: docs/PERFORMANCE.md, session 20).
 */
#ifndef FACL_TOOLS_BENCH_TIMING_H
#define FACL_TOOLS_BENCH_TIMING_H

#include <stddef.h>

#include "facl.h"

typedef struct bench_timer {
    cl_command_queue queue; /* must have CL_QUEUE_PROFILING_ENABLE */
    cl_program program;
    cl_kernel stamp;
    cl_kernel read;     /* reads the flush buffer (flush_read) */
    cl_mem flush;       /* NULL: no fill before the stamp */
    size_t flush_bytes;
    int flush_read;     /* after the fill, read the buffer back: the caches' lines clean */
    double empty_ms;    /* bench_timer_measure_empty: an empty kernel's span, else 0 */
} bench_timer;

/* Enqueues one run of the work on `queue` and returns the event of its last command in
 * *last (owned by the caller afterwards). Returns 0, or non-zero with a message in err. */
typedef int (*bench_work_fn)(void *arg, cl_command_queue queue, cl_event *last, char *err,
                             size_t err_size);

typedef struct bench_timing {
    double median_ms, min_ms, max_ms;
    int reps;
} bench_timing;

/* Repetition policy: `reps` > 0 times exactly; 0 = sized from the probe so that the
 * timed runs take about `target_s` seconds, between min_reps and max_reps. */
typedef struct bench_reps {
    int reps;
    double target_s;
    int min_reps, max_reps;
} bench_reps;

int bench_timer_init(bench_timer *t, cl_context ctx, cl_device_id device, cl_command_queue queue,
                     char *err, size_t err_size);
void bench_timer_free(bench_timer *t);

/* Fill `bytes` of a buffer before every timed run (0: stop). Returns 0, or non-zero with
 * err set. */
int bench_timer_flush(bench_timer *t, cl_context ctx, size_t bytes, char *err, size_t err_size);

/* Warm-up, then timed runs per `policy`. Returns 0, or non-zero with err set. */
/* The span of an empty kernel (one work-item) timed like any work: what launching one
 * kernel costs through this timer, the floor under every kernel of a call. Sets
 * t->empty_ms. */
int bench_timer_measure_empty(bench_timer *t, const bench_reps *policy, char *err, size_t err_size);

int bench_time(bench_timer *t, bench_work_fn work, void *arg, const bench_reps *policy,
               bench_timing *out, char *err, size_t err_size);

/* 4 * batch * seqlen_q * seqlen_k * heads * head_dim, halved for causal (FlashAttention's
 * convention, so figures compare with its papers and torch_sdpa.py). */
double bench_attention_flops(double batch, double seqlen_q, double seqlen_k, double heads,
                             double head_dim, int causal);

#endif
