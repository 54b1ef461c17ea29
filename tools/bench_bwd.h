/*
 * facl-bench --bwd: the backward (facl_bwd) over the forward's grid (tokens / seqlen
 * sequences, heads * head_dim = 2048, --hdims, --seqlens, --causal, --dtypes), next to
 * torch_sdpa.py --bwd. Every point runs the forward once (untimed) for a real out and lse,
 * makes its workspace once (facl_bwd_workspace_size), and times facl_bwd with the
 * profiling-event timer (bench_timing.h). TFLOP/s counts 2.5x the forward's FLOPs
 * (bench_attention_flops), FlashAttention's and torch_sdpa.py's convention.
 *
 * Each point is checked before it is timed (unless --no-verify): dq of 6 rows (3 query
 * positions of the first sequence, in the first and the last head) by SPEC.md's rule
 * against the test kit's float64 gradients (bwd_ref.h) of those rows, computed on the
 * host over the keys each row sees.
 *
 * JSON rows carry torch_sdpa.py --bwd's names (dtype, hdim, seqlen, batch, heads, causal,
 * bwd_ms, bwd_tflops) so that the two can be joined on (dtype, hdim, seqlen, causal), and
 * the point's opts.deterministic (--deterministic 0,1 measures both modes; default 0, the
 * library's default: atomic dq on the tensor-core paths).
 */
#ifndef FACL_TOOLS_BENCH_BWD_H
#define FACL_TOOLS_BENCH_BWD_H

#include <stdio.h>

#include "bench_grid.h"
#include "bench_result.h"
#include "bench_run.h"

typedef struct bwd_row {
    bench_config cfg;
    bench_measure m; /* tflops: the backward's, 2.5x the forward FLOPs */
    /* The check before timing: checked 0 = not run (--no-verify, or the call failed). */
    int checked, check_pass;
    double check_err, check_bound; /* max|e| (fp16/bf16) or relL2 (fp32) and its bound */
} bwd_row;

/* The backward mode on an open session (s->opts->bwd): measures the grid, prints the
 * table on `table`, writes JSON/CSV. Returns the exit status: 0 when every point was
 * checked and timed or did not fit the device (a skip, said in the row), 1 otherwise. */
int bench_bwd_run(bench_session *s, const char *selector, FILE *table);

#endif
