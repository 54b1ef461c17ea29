/*
 * The full forward grid of SPEC.md on the default device (FACL_DEVICE selects another):
 * every head dim x (sq, sk) pair x heads 1/1, 6/2, 8/1 x batch 1 and 3 x fp16, bf16, fp32
 * x causal off / on (bottom-right), dense facl_fwd, lse on; every other case uses strided
 * views. 6048 cases: this takes hours on a CPU. Run it with
 *   meson test -C <build> --suite slow        (or the binary directly)
 * FACL_TEST_FILTER=<cmocka pattern> picks a subset, e.g. FACL_TEST_FILTER='*d=128 *'.
 * FACL_TEST_VERBOSE=1 prints the errors of passing cases too.
 * FACL_SLOW_MAX_SEQLEN=n leaves out the pairs with sq or sk above n (small machines).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "case_suite.h"
#include "facl.h"

/* ------------------------------------------------------------------ case builders */

static const int k_dims[] = {1, 8, 32, 40, 59, 64, 80, 96, 111, 128, 160, 192, 224, 256};
static const int k_pairs[][2] = {{1, 1},     {1, 239},   {3, 799},    {113, 203},
                                 {127, 512}, {128, 217}, {108, 256},  {256, 512},
                                 {512, 256}, {1023, 1024}, {1024, 1023}, {2048, 2048}};
static const int k_heads[][2] = {{1, 1}, {6, 2}, {8, 1}};
static const int k_batches[] = {1, 3};
static const facl_dtype k_dtypes[] = {FACL_DTYPE_F16, FACL_DTYPE_BF16, FACL_DTYPE_F32};

int main(void)
{
    const char *max_env = getenv("FACL_SLOW_MAX_SEQLEN");
    const long max_seqlen = max_env && *max_env ? strtol(max_env, NULL, 10) : 0;
    for (size_t p = 0; p < sizeof k_pairs / sizeof k_pairs[0]; p++) {
        if (max_seqlen > 0 && (k_pairs[p][0] > max_seqlen || k_pairs[p][1] > max_seqlen))
            continue;
        for (size_t d = 0; d < sizeof k_dims / sizeof k_dims[0]; d++)
            for (size_t h = 0; h < sizeof k_heads / sizeof k_heads[0]; h++)
                for (size_t b = 0; b < sizeof k_batches / sizeof k_batches[0]; b++)
                    for (size_t t = 0; t < sizeof k_dtypes / sizeof k_dtypes[0]; t++)
                        for (int causal = 0; causal < 2; causal++) {
                            /* seed and layout follow the grid position, not the filter */
                            const uint64_t idx =
                                ((((p * 14 + d) * 3 + h) * 2 + b) * 3 + t) * 2 + (size_t)causal;
                            fwd_case c;
                            memset(&c, 0, sizeof c);
                            c.layout = CASE_DENSE;
                            c.dtype = k_dtypes[t];
                            c.head_dim = k_dims[d];
                            c.seqlen_q = k_pairs[p][0];
                            c.seqlen_k = k_pairs[p][1];
                            c.heads_q = k_heads[h][0];
                            c.heads_kv = k_heads[h][1];
                            c.batch = k_batches[b];
                            c.opts = facl_attn_options_default();
                            c.opts.causal = causal;
                            c.want_lse = 1;
                            c.strided = (int)((idx + idx / 6) % 2);
                            c.seed = 0x51000000u + idx * 104729u;
                            case_suite_add("grid", &c);
                        }
    }
    return case_suite_run("forward_slow");
}
