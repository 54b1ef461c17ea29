/*
 * facl-tune: measures the portable kernels' tuning parameters (docs/TUNING.md) on one
 * device and writes the best as an override file the library picks up, plus the line
 * for src/tuning_db.c's table. Its parts:
 *   tune_main.c        options, the device, the search, the report
 *   tune_candidates.c  the parameter sets tried, per kernel path
 *   tune_measure.c     one candidate: its own context, checked against the float64
 *                      reference, then timed
 *   tune_output.c      the override file (merged with one already there) and the line
 * It links the library's internal tuning code (src/tuning.h) for the file format, so
 * that what it writes is exactly what the library reads.
 */
#ifndef FACL_TOOLS_TUNE_H
#define FACL_TOOLS_TUNE_H

#include <stddef.h>

#include "bench_timing.h"
#include "device_profile.h"
#include "facl.h"
#include "tuning.h"

typedef struct tune_options {
    const char *device;   /* -d: NULL = the library's default */
    int hdim;             /* the head dim; its class (<= 64, <= 128, <= 256) is tuned */
    facl_dtype dtype;
    int seqlen, batch, heads, causal;
    const char *path;     /* --path: "portable-gpu" or "portable-cpu"; NULL = the device's */
    int quick;            /* --quick: few candidates, short timings */
    int reps;             /* 0: sized from a probe */
    const char *output;   /* -o: NULL = the fixed place in the disk cache, "-" = stdout */
    const char *print_line; /* --print-line FILE: only that file's table line */
} tune_options;

/* Which fields of facl_tuning_params a kernel path uses. */
typedef enum tune_kernel { TUNE_GPU, TUNE_CPU } tune_kernel;

typedef enum tune_state {
    TUNE_OK,
    TUNE_REJECTED,     /* the library did not apply the candidate's file */
    TUNE_BUILD_FAILED, /* the kernel did not compile */
    TUNE_WRONG,        /* the output failed the float64 reference */
    TUNE_ERROR         /* anything else (context, run, timing) */
} tune_state;

typedef struct tune_result {
    facl_tuning_params params; /* the tuned class's values (only the path's fields set) */
    int is_table;              /* the values the device uses without an override */
    tune_state state;
    double median_ms;
    int reps;
    char note[320];
} tune_result;

/* The device's key and its values without an override (facl_context_tuning's text). */
typedef struct tune_device {
    cl_context cl_ctx;
    cl_device_id device;
    cl_command_queue queue; /* profiling, for the timer */
    bench_timer timer;
    char vendor[16], architecture[64], name[128];
    char kernel_path[32];   /* the path tuned */
    char cache_dir[512];    /* the library's disk cache ("" when off) */
    facl_tuning_params table; /* the class's values from the table */
    facl_device_profile limits; /* local memory and work-group size, for the plan */
    cl_mem q, k, v, out, lse; /* the timed problem's buffers */
} tune_device;

/* ---- tune_candidates.c */
#define TUNE_MAX_CANDIDATES 128
/* The candidates for `kernel` around `table` (the first is `table` itself), each as the
 * plan makes it on a device of `limits` (src/plan.c: tiles halved to fit local memory,
 * lanes and rows within the work-group limits), without two the same; returns their
 * number. */
size_t tune_candidates(tune_kernel kernel, int quick, int hdim, const facl_device_profile *limits,
                       const facl_tuning_params *table, facl_tuning_params *out, size_t max);
/* "kernel 1, block_n 32, lanes 2, group_rows 64" (the fields `kernel` and p's portable
 * GPU kernel use). */
void tune_params_text(tune_kernel kernel, const facl_tuning_params *p, char *buf, size_t size);
/* Keeps only the fields `kernel` uses. */
facl_tuning_params tune_params_used(tune_kernel kernel, const facl_tuning_params *p);

/* ---- tune_measure.c */
/* Runs one candidate: writes its override file into tmp_dir, makes a context that must
 * report it applied, checks the forward against the float64 reference on small
 * problems, then times the tuned problem. Fills r (r->params set by the caller). */
void tune_measure(const tune_options *o, tune_device *dev, const char *tmp_dir, tune_result *r);

/* ---- tune_output.c */
/* The entry to write: the one at `path` if it names this device (its other values kept),
 * else a new one; then the winner's values for the tuned class. */
void tune_entry_for(const tune_options *o, const tune_device *dev, const char *path,
                    const facl_tuning_params *best, facl_tuning_entry *e, char *note,
                    size_t note_size);
/* Writes `text` to `path` atomically, mode 0600, creating its directory (0700) when it
 * is the fixed place's. Returns 0, or -1 with a message on stderr. */
int tune_write_file(const char *path, const char *text);

#endif
