/* facl-bench's side for the library: the forward as FlashAttention's benchmark calls
 * flash_attn_func, on contiguous (batch, seqlen, heads, head_dim) tensors, with lse. */
#ifndef FACL_TOOLS_BENCH_OURS_H
#define FACL_TOOLS_BENCH_OURS_H

#include <stddef.h>
#include <stdint.h>

#include "bench_grid.h"
#include "facl.h"

/* Device bytes the forward needs for a point: q, k, v, out and the fp32 lse. */
uint64_t bench_ours_memory(const bench_config *c);

/* Enqueues facl_fwd over buffers of at least the point's size; *last gets its event.
 * Returns 0, or non-zero with facl's message in err. */
int bench_ours_enqueue(facl_context *ctx, cl_command_queue queue, const bench_config *c,
                       cl_mem q, cl_mem k, cl_mem v, cl_mem out, cl_mem lse, cl_event *last,
                       char *err, size_t err_size);

#endif
