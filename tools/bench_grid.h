/*
 * facl-bench's options and the grid they span. The default grid is FlashAttention's own
 * benchmark: 16384 tokens in total (batch = tokens / seqlen), heads * head_dim = 2048,
 * head_dim 64/128/256, seqlen 512..16384, causal off and on, fp16/bf16/fp32.
 * With --decode the grid is torch_sdpa.py --decode's instead (bench_decode.h): seqlen_q 1
 * over a KV cache, batch 16, heads 32/8, head_dim 128, KV 1k..64k, fp16/bf16.
 * With --bwd the forward's grid times the backward (facl_bwd) instead (bench_bwd.h).
 * With --host-cost: the host's time per call of a few small calls (bench_host.h).
 */
#ifndef FACL_TOOLS_BENCH_GRID_H
#define FACL_TOOLS_BENCH_GRID_H

#include <stddef.h>

#include "facl.h"

#define BENCH_MAX_LIST 16
#define BENCH_HIDDEN 2048 /* heads * head_dim, as in FlashAttention's benchmark */

typedef struct bench_options {
    int hdims[BENCH_MAX_LIST], n_hdims;
    int seqlens[BENCH_MAX_LIST], n_seqlens;
    facl_dtype dtypes[3];
    int n_dtypes;
    int causal[2], n_causal; /* values 0 (off) and/or 1 (on), in that order */
    long tokens;
    const char *device;      /* NULL: the library's default (FACL_DEVICE, else first GPU) */
    int reps;                /* 0: sized from a probe */
    const char *json_path, *csv_path; /* "-" = stdout */
    int baseline;            /* CLBlast column on/off */
    int verify;              /* compare the baseline with ours once per dtype/causal */
    int progress;            /* --progress: a line per point on stderr with its wall time */
    /* --decode (bench_decode.h): facl_fwd_kvcache with seqlen_q 1 */
    int decode;
    /* the decode shape (also --host-cost's); 0 / none given: the mode's defaults */
    int batch, heads, heads_kv;
    int kv_lens[BENCH_MAX_LIST], n_kv_lens;
    int pages[BENCH_MAX_LIST], n_pages;   /* 0 = contiguous cache, P = paged, page size P */
    int splits[BENCH_MAX_LIST], n_splits; /* num_splits; 0 = the library chooses */
    int kv_orders[2], n_kv_orders;        /* --kv-order: 0 = shd (position-major), 1 = hsd */
    int pages_in_order;                   /* --page-order sequential: table = identity */
    int lens_as_value;                    /* --cache-lens value: cache_seqlens_value, no buffer */
    int forward_row;                      /* the facl_fwd comparison row (default on) */
    double copy_gbps;                     /* reference copy rate for "% of copy"; 0 = none */
    int flush_mib; /* MiB filled before each timed run (bench_timing.h); -1 = per device type */
    int flush_read; /* --flush-read on: the filled buffer read back before each timed run */
    /* --bwd (bench_bwd.h): facl_bwd over the forward's grid */
    int bwd;
    int deterministic[2], n_deterministic; /* --deterministic: opts.deterministic values */
    /* --host-cost (bench_host.h): host microseconds per call, on the decode shape options */
    int host_cost;
    int calls; /* back-to-back calls per round */
    /* --portable-kernel: the portable kernels to time side by side, each through a
     * context made with the variable bench_kernel_choice() names for it (the GPU ones'
     * FACL_PORTABLE_KERNEL, the CPU one's FACL_CPU_PACK); 0 names: the library's */
    char portable_kernels[2][16];
    int n_portable_kernels;
} bench_options;

typedef struct bench_config {
    facl_dtype dtype;
    int hdim, seqlen, batch, heads, causal;
    int deterministic; /* --bwd: opts.deterministic (0 elsewhere) */
    int portable_kernel; /* index into bench_options.portable_kernels; -1: the library's */
} bench_config;

/* The environment variable and value that select --portable-kernel's `name` when a
 * context is made: previous / blocked (FACL_PORTABLE_KERNEL), unpacked / packed
 * (FACL_CPU_PACK=never / always). Returns 0, or -1 for an unknown name. */
int bench_kernel_choice(const char *name, const char **variable, const char **value);

/* Parses argv. Returns 0 to run, 1 when --help was printed, -1 on an error (printed). */
int bench_parse_args(int argc, char **argv, bench_options *o);

/* The configs of the grid in table order (dtype, head dim, causal, seqlen, and with
 * --bwd the --deterministic values, with --portable-kernel the kernels), skipping
 * seqlens above the token count and head dims that do not divide the hidden size.
 * Returns the count (at most `max`). */
size_t bench_grid_configs(const bench_options *o, bench_config *out, size_t max);

#endif
