/*
 * facl-selftest: a clinfo-style check of every OpenCL device. Shared types of its parts:
 *   selftest_main.c    options, the device loop, exit status
 *   selftest_cases.c   the correctness checks (every call family and feature)
 *   selftest_kvcache.c the KV-cache checks' runner (facl_fwd_kvcache)
 *   selftest_bwd.c     the backward checks' runner (facl_bwd and its packed/varlen forms)
 *                      and the backward's speed figure
 *   selftest_device.c  one device: context, checks, speed, cache counters
 *   selftest_speed.c   one speed figure per call family
 *   selftest_report.c  the table for people and the JSON for machines
 */
#ifndef FACL_TOOLS_SELFTEST_H
#define FACL_TOOLS_SELFTEST_H

#include <stddef.h>
#include <stdio.h>

#include "bench_devices.h"
#include "case_runner.h"
#include "facl.h"

typedef struct selftest_options {
    int list;           /* -l */
    const char *device; /* -d: NULL = every device */
    int quick;          /* --quick: a small subset, small speed case */
    int speed;          /* 0 with --no-speed */
    int progress;       /* progress line on stderr: tty or --progress */
    int table;          /* the human table on stdout (off with --json -) */
    const char *json_path;
    int inject_failure; /* FACL_SELFTEST_INJECT_FAILURE=1: fail the first check (tests) */
    int info_only;      /* --info: what the library uses on each device, no checks or speed */
} selftest_options;

typedef struct selftest_check_result {
    char name[192];
    const char *family;
    facl_dtype dtype;
    const char *worst;    /* "out", "lse" or "probs": the output closest to its bound */
    const char *measure;  /* "max|e|" (fp16/bf16 rule) or "relL2" (fp32 rule) */
    double error, bound;
    int pass;
    double ms;            /* the facl call and clFinish, wall clock (a cold call compiles) */
    char detail[256];
} selftest_check_result;

#define SELFTEST_FAMILIES 7 /* the six forward call families and the backward */

typedef struct selftest_speed_result {
    const char *family;
    char name[96];
    int ok;
    double tflops, median_ms;
    int reps;
    char note[192];
} selftest_speed_result;

typedef struct selftest_device_report {
    tool_device dev;
    int context_ok;
    char error[512]; /* a device-level error (context creation, ...); "" if none */
    facl_device_info info;
    char tuning[4096]; /* facl_context_tuning's "key = value" text; "" if it failed */
    facl_cache_stats cache;
    int have_cache;
    selftest_check_result *checks;
    size_t n_checks, n_failed;
    selftest_speed_result speed[SELFTEST_FAMILIES];
    size_t n_speed, n_speed_failed;
    double seconds;
} selftest_device_report;

/* ---- selftest_cases.c */
#define SELFTEST_MAX_CHECKS 64
/* Fills `out` with the checks of the default (quick = 0) or quick set; returns their
 * number (at most `max`). */
size_t selftest_checks(int quick, fwd_case *out, size_t max);

/* A facl_fwd_kvcache check: a cache filled with random keys, optionally an append (with
 * rotary), the attention judged against the float64 reference over the keys the call
 * must see (testkit kvcache_ref.h), and the whole cache read back: appended rows as the
 * rounded new keys after rotary, every other element unchanged. */
typedef struct kv_case {
    facl_dtype dtype;
    int batch, seqlen_q, heads_q, heads_kv, head_dim;
    /* varlen queries (cu_seqlens_q): per-sequence query counts, which are also the new
     * keys' counts (cu_seqlens_k_new) when seqlen_new > 0; NULL = dense q */
    const int32_t *seqlens_q;
    int capacity;             /* keys one sequence's cache holds (paged: a multiple of page_size) */
    int page_size;            /* 0 = dense cache */
    int batch_cache;          /* dense: cache rows (>= batch; 0 = batch) */
    const int32_t *batch_idx; /* dense: cache_batch_idx, NULL = none */
    const int32_t *leftpad;   /* cache_leftpad, NULL = none */
    const int32_t *cache_seqlens;
    int seqlen_new;           /* dense k_new per sequence (0 = no append); varlen: 1 = append */
    int rotary_dim, rotary_interleaved; /* rotary_dim 0 = none */
    int num_splits, causal;
    float softcap;
    int want_lse;
    uint64_t seed;
} kv_case;

#define SELFTEST_MAX_KV_CHECKS 8
size_t selftest_kv_checks(int quick, kv_case *out, size_t max);

/* ---- selftest_kvcache.c */
void kv_case_name(const kv_case *c, char *buf, size_t size);
/* Runs the case and fills `out` (family "kvcache"); returns out->pass. */
int selftest_run_kv_case(facl_context *ctx, const kv_case *c, selftest_check_result *out);

/* A backward check (facl_bwd, facl_bwd_qkvpacked, facl_bwd_kvpacked, facl_varlen_bwd*):
 * random q, k, v and dout, the forward's out and lse from the float64 reference (out
 * rounded to the dtype, lse to fp32: what a device forward hands over), and dq, dk, dv
 * judged by SPEC.md's rule against the test kit's float64 analytic gradients
 * (bwd_ref.h). Contiguous tensors; the packed layouts pack q, k, v into one buffer. */
typedef struct bwd_check {
    case_layout layout;
    facl_dtype dtype;
    int batch, seqlen_q, seqlen_k, heads_q, heads_kv, head_dim;
    const int32_t *seqlens_q, *seqlens_k; /* varlen layouts: per-sequence lengths */
    int causal;
    float softcap, dropout_p;
    uint64_t seed;
    int deterministic; /* opts.deterministic (0, the default: atomic dq on tensor cores) */
} bwd_check;

#define SELFTEST_MAX_BWD_CHECKS 8
size_t selftest_bwd_checks(int quick, bwd_check *out, size_t max);

/* ---- selftest_bwd.c */
void bwd_check_name(const bwd_check *c, char *buf, size_t size);
/* Runs the case and fills `out` (family "bwd"; worst of "dq", "dk", "dv"); returns
 * out->pass. */
int selftest_run_bwd_case(facl_context *ctx, const bwd_check *c, selftest_check_result *out);
/* The backward's speed figure: facl_bwd on the size selftest_speed uses for the dense
 * forward, in TFLOP/s counted as 2.5x the forward's FLOPs (FlashAttention's convention). */
void selftest_speed_bwd(facl_context *ctx, int quick, selftest_speed_result *out);

/* ---- selftest_device.c */
/* Runs everything on one device; prints as it goes when o->table. Returns 1 if every
 * check passed and no device-level error occurred. */
int selftest_run_device(const selftest_options *o, const tool_device *dev,
                        selftest_device_report *rep);
void selftest_report_free(selftest_device_report *rep);

/* ---- selftest_speed.c */
/* One speed figure for `layout`, on a case sized for the device type (smaller when
 * quick). */
void selftest_speed(facl_context *ctx, case_layout layout, int quick, selftest_speed_result *out);

/* ---- selftest_report.c */
void selftest_print_device_header(FILE *f, const selftest_device_report *rep);
void selftest_print_check_header(FILE *f);
void selftest_print_check(FILE *f, const selftest_device_report *rep,
                          const selftest_check_result *r);
void selftest_print_speed(FILE *f, const selftest_device_report *rep,
                          const selftest_speed_result *s);
void selftest_print_device_footer(FILE *f, const selftest_device_report *rep);
void selftest_print_summary(FILE *f, const selftest_device_report *reps, size_t n);
/* Returns 0, or -1 if the file could not be written (a message is printed). */
int selftest_write_json(const char *path, const selftest_options *o,
                        const selftest_device_report *reps, size_t n);

#endif
