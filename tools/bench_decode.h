/*
 * facl-bench --decode: one token per sequence (seqlen_q 1) attending over a KV cache
 * through facl_fwd_kvcache, on torch_sdpa.py --decode's grid (batch 16, heads 32/8,
 * head_dim 128, KV 1k/4k/16k/64k, fp16 and bf16), in three cache layouts per point
 * (contiguous, paged with page 16, paged with page 256; the block table a random
 * permutation of the pages) and, for comparison, plain facl_fwd over the contiguous k/v.
 * Decode reads the whole cache once and does little arithmetic per byte, so the figure
 * is GB/s: the bytes of k and v read (batch*kv_len*heads_kv*d*2*elem, 1 GB = 1e9 bytes as
 * torch_sdpa.py counts) over the median time.
 *
 * Each point is checked before it is timed (unless --no-verify): one untrusted call,
 * then out and lse of a few (sequence, head) rows against a float64 computation on the
 * host over the keys read back from the cache as the block table places them.
 */
#ifndef FACL_TOOLS_BENCH_DECODE_H
#define FACL_TOOLS_BENCH_DECODE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bench_grid.h"
#include "bench_result.h"
#include "bench_run.h"

typedef enum decode_layout {
    DECODE_CONTIGUOUS, /* facl_fwd_kvcache, dense cache (batch, kv_len, heads_kv, d) */
    DECODE_PAGED,      /* facl_fwd_kvcache, (num_blocks, page_size, heads_kv, d) + table */
    DECODE_FWD         /* facl_fwd over the contiguous cache: the path before the cache call */
} decode_layout;

typedef struct decode_config {
    facl_dtype dtype;
    int hdim, kv_len, batch, heads, heads_kv;
    decode_layout layout;
    int page_size;  /* DECODE_PAGED; 0 otherwise */
    int num_splits; /* the cache calls' num_splits (0 = the library chooses); 0 for DECODE_FWD */
    int kv_hsd;     /* rows ordered (.., kv head, position, d) in the buffer: each head's
                     * rows contiguous (--kv-order hsd); 0: (.., position, kv head, d) */
} decode_config;

typedef struct decode_row {
    decode_config cfg;
    bench_measure m;   /* tflops unused */
    double gb_per_s;   /* 0 unless m.state == BENCH_OK */
    /* The check before timing: checked 0 = not run (--no-verify, or the call failed). */
    int checked;
    double check_err, check_bound; /* the worst of out and lse relative to its bound */
} decode_row;

/* Bytes of k and v the attention reads at a point. */
uint64_t decode_kv_bytes(const decode_config *c);

/* "contiguous", "paged" or "fwd" (the JSON's layout field). */
const char *decode_layout_name(decode_layout l);

/* The points of the grid in table order (dtype, head dim, kv length, then for each
 * --kv-order the layouts of --pages with each --splits value, then the facl_fwd row).
 * Returns the count. */
size_t decode_grid(const bench_options *o, decode_config *out, size_t max);

/* The decode mode on an open session (s->opts->decode): measures the grid, prints the
 * table on `table`, writes JSON/CSV. Returns the exit status: 0 when every point was
 * checked and timed or did not fit the device (a skip, said in the row), 1 otherwise. */
int bench_decode_run(bench_session *s, const char *selector, FILE *table);

/* ---- bench_decode_output.c */
void decode_print_header(FILE *f, const bench_session *s, const char *selector);
void decode_print_columns(FILE *f);
void decode_print_row(FILE *f, const bench_options *o, const decode_row *r);
void decode_print_progress(FILE *f, size_t i, size_t n, const decode_row *r);
int decode_write_json(const char *path, const bench_session *s, const char *selector,
                      const decode_row *rows, size_t n);
int decode_write_csv(const char *path, const bench_options *o, const decode_row *rows, size_t n);

#endif
