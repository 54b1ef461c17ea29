/* The opaque context behind facl_context. */
#ifndef FACL_CONTEXT_H
#define FACL_CONTEXT_H

#include "bwd_plan.h"
#include "cache_plan.h"
#include "device_profile.h"
#include "facl.h"
#include "log.h"
#include "plan_memo.h"
#include "programs.h"
#include "queue_counters.h"
#include "tensor_map.h"

struct facl_context {
    cl_context cl_ctx;
    cl_device_id device;
    cl_command_queue queue; /* the context's own, used when a call passes NULL */
    facl_device_profile profile;
    facl_program_cache programs;
    int programs_ready; /* programs initialised (so the failure path releases it) */
    facl_plan_memo plans; /* the plans of recent calls, reused by calls of their shapes */
    facl_logger logger;
    /* Held around each enqueue the library makes (see facl_enqueue_lock). */
    pthread_mutex_t enqueue_lock;
    char path_reason[256]; /* why profile.path was chosen (facl_device_info) */
    /* FACL_CACHE_MMA_SHAPE at creation (benchmarking the KV-cache kernel), else zeros */
    facl_cache_mma_shape cache_mma_shape;
    /* FACL_CACHE_SPLIT_MERGE=combine at creation: splits always merged by cache_combine */
    int cache_merge_by_combine;
    /* the KV-cache kernel's split counters, one buffer per in-order queue */
    facl_queue_counters split_counters;
    /* FACL_BWD_MMA_SHAPE at creation (benchmarking the tensor-core backward): the shape
     * every backward call of this context plans attn_bwd_mma in; has_bwd_mma_shape 0 = none */
    facl_bwd_mma_shape bwd_mma_shape;
    int has_bwd_mma_shape;
    /* The tensor-core backward's probe (bwd_launch.c), guarded by its lock there:
     * FACL_BWD_PROBE_* and, while it runs, the thread running it. */
    int bwd_probe;
    pthread_t bwd_probe_thread;
    /* The CUDA driver's tensor map encoder where the Hopper forward's copier uses the
     * tensor copy engine (profile.wgmma_tma), else NULL */
    facl_tensor_maps *tensor_maps;
};

enum {
    FACL_BWD_PROBE_NOT_RUN = 0, /* the first backward call that needs it runs it */
    FACL_BWD_PROBE_RUNNING,
    FACL_BWD_PROBE_PASSED,      /* also: a forced path, which is not probed */
    FACL_BWD_PROBE_FAILED
};

/* NVIDIA's OpenCL driver (580.159.04, H200) has a use-after-free when several threads
 * enqueue to one command queue at the same time: a plain OpenCL program, 8 threads on
 * one queue, segfaults under MALLOC_PERTURB_ (docs/THREADS.md). So the library's own
 * enqueues on a context go one at a time (an enqueue takes microseconds; the kernels
 * still overlap on the device). */
void facl_enqueue_lock(const facl_context *ctx);
void facl_enqueue_unlock(const facl_context *ctx);

#endif
