/* facl-bench's untimed sanity check: the CLBlast baseline and facl on the same small
 * inputs must agree, or the comparison in the table means nothing. */
#ifndef FACL_TOOLS_BENCH_VERIFY_H
#define FACL_TOOLS_BENCH_VERIFY_H

#include <stdio.h>

#include "bench_run.h"

/* Checks dtype/causal on a small case (batch 2, heads 2, seqlen 128, head_dim `hdim`),
 * prints one line to `f`. Returns 0 if they agree or the baseline cannot run this dtype
 * (nothing to check), 1 on a mismatch or an error. */
int bench_verify_baseline(bench_session *s, facl_dtype dtype, int causal, int hdim, FILE *f);

#endif
