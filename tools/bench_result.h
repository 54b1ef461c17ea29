/* What facl-bench measures for one implementation at one grid point. */
#ifndef FACL_TOOLS_BENCH_RESULT_H
#define FACL_TOOLS_BENCH_RESULT_H

#include <stdint.h>

#include "bench_grid.h"

typedef enum bench_state {
    BENCH_OK,          /* measured */
    BENCH_NA,          /* does not fit this device (note says what it needs) */
    BENCH_UNAVAILABLE, /* not built, switched off, or unsupported for this dtype/device */
    BENCH_ERROR        /* an error while running (note has it) */
} bench_state;

typedef struct bench_measure {
    bench_state state;
    double median_ms, min_ms, max_ms, tflops;
    int reps;
    uint64_t mem_bytes; /* device buffers this implementation allocates for the point */
    double wall_s;      /* host time of the whole measurement (setup, compile, all runs) */
    char note[192];
} bench_measure;

typedef struct bench_row {
    bench_config cfg;
    bench_measure ours, base;
} bench_row;

#endif
