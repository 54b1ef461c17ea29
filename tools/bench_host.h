/*
 * facl-bench --host-cost: what one call costs the host, for an application that decodes
 * token by token and so makes many small calls. The figure is the wall time from entering
 * the facl call to its return, averaged over --calls back-to-back calls on the context's
 * queue (no event, no clFinish between them), the median over --reps rounds (5 by
 * default), with the calling thread's CPU time beside it. The round's first call waits
 * for a user event that is set only after the round's last call returns, so the device
 * runs nothing during the timed calls: a CPU device's threads would otherwise share the
 * host's cores and add their noise to the figure. Each round ends with that event set
 * and a clFinish, timed apart ("drain").
 *
 * Three small calls, on the decode options' shape (one --dtypes, one --hdims, one
 * --kv-lens; batch 1 and heads 8/2 unless --batch, --heads, --heads-kv say otherwise):
 * facl_fwd_kvcache with seqlen_q 1 over a contiguous cache (trusted cache_seqlens, a
 * workspace made once, as a decode loop would), facl_fwd with seqlen_q 1 over the same
 * k/v, and facl_fwd with 64 query rows over 64 of the keys (a short prefill chunk).
 * Each call runs once untimed first (which compiles its programs).
 */
#ifndef FACL_TOOLS_BENCH_HOST_H
#define FACL_TOOLS_BENCH_HOST_H

#include <stdio.h>

#include "bench_run.h"

/* The mode on an open session (s->opts->host_cost). Returns the exit status: 0 when
 * every call ran, 1 otherwise. */
int bench_host_run(bench_session *s, const char *selector, FILE *table);

#endif
