/*
 * facl: FlashAttention for every OpenCL device.
 *
 * Exact attention (the math of FlashAttention 2, see SPEC.md in the project) over
 * cl_mem buffers, with kernels compiled at run time for the device at hand,
 * specialised per call and cached on disk.
 *
 * Conventions
 * - Every call returns a facl_status. FACL_SUCCESS is 0; negative values above
 *   -1000 are OpenCL error codes passed through unchanged (CL_OUT_OF_RESOURCES is
 *   -5 here too); the library's own errors live from -2000 down.
 * - After a failure, facl_last_error() returns a message for the calling thread
 *   naming the argument at fault, the OpenCL error or the build log.
 * - Nothing is written to any output when an argument is rejected.
 * - Compute calls enqueue on the caller's queue (NULL = the context's own), wait on
 *   the caller's wait list and may return an event; they do not block, except the
 *   varlen calls' cu_seqlens check, which the documentation of each call states.
 * - The library never prints, never exits, and frees everything it allocates.
 */
#ifndef FACL_H
#define FACL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(FACL_BUILDING_LIBRARY) && defined(__GNUC__)
#define FACL_API __attribute__((visibility("default")))
#else
#define FACL_API
#endif

/* ---------------------------------------------------------------- version */

#define FACL_VERSION_MAJOR 0
#define FACL_VERSION_MINOR 1
#define FACL_VERSION_PATCH 0
#define FACL_VERSION_NUMBER \
    (FACL_VERSION_MAJOR * 10000 + FACL_VERSION_MINOR * 100 + FACL_VERSION_PATCH)
#define FACL_VERSION_STRING "0.1.0"

/* The version of the library actually linked (compare with FACL_VERSION_NUMBER). */
FACL_API unsigned facl_version_number(void);
FACL_API const char *facl_version_string(void);

/* ----------------------------------------------------------------- status */

typedef enum facl_status {
    FACL_SUCCESS = 0,
    /* -1 .. -999: an OpenCL error code, unchanged (see CL/cl.h). */
    FACL_ERROR_NULL_ARGUMENT = -2001,   /* a required pointer or buffer is NULL */
    FACL_ERROR_INVALID_DTYPE = -2002,   /* unknown dtype, or tensors that must share one differ */
    FACL_ERROR_INVALID_SHAPE = -2003,   /* wrong rank, or sizes inconsistent between tensors */
    FACL_ERROR_INVALID_HEAD_DIM = -2004, /* head_dim outside 1..FACL_MAX_HEAD_DIM */
    FACL_ERROR_INVALID_HEADS = -2005,   /* heads_q not a positive multiple of heads_kv */
    FACL_ERROR_INVALID_STRIDE = -2006,  /* last stride not 1, or a negative stride */
    FACL_ERROR_BUFFER_TOO_SMALL = -2007, /* the view reaches past the end of its cl_mem */
    FACL_ERROR_SIZE_OVERFLOW = -2008,   /* sizes whose extent overflows 64-bit arithmetic */
    FACL_ERROR_INVALID_VALUE = -2009,   /* a scalar out of range: scale, softcap, window, dropout */
    FACL_ERROR_INVALID_SEQLENS = -2010, /* cu_seqlens not prefix sums, or max_seqlen too small */
    FACL_ERROR_UNSUPPORTED = -2011,     /* valid, but this device or build cannot honour it */
    FACL_ERROR_NO_DEVICE = -2012,       /* no OpenCL device matches the selection */
    FACL_ERROR_BUILD_FAILED = -2013,    /* a kernel did not compile; the message has the log */
    FACL_ERROR_OUT_OF_HOST_MEMORY = -2014,
    FACL_ERROR_INVALID_CONTEXT = -2015  /* a context or queue that does not belong together */
} facl_status;

/* A static string naming the status ("FACL_ERROR_INVALID_SHAPE", "CL_OUT_OF_RESOURCES"). */
FACL_API const char *facl_status_string(facl_status status);

/* The message of the last failed call made by this thread ("" if none yet).
 * Valid until the next facl call on this thread. */
FACL_API const char *facl_last_error(void);

/* ---------------------------------------------------------------- tensors */

typedef enum facl_dtype {
    FACL_DTYPE_F32 = 0,
    FACL_DTYPE_F16 = 1,
    FACL_DTYPE_BF16 = 2,
    FACL_DTYPE_I32 = 3 /* index buffers (cu_seqlens) */
} facl_dtype;

/* Size in bytes of one element (0 for an unknown dtype). */
FACL_API size_t facl_dtype_size(facl_dtype dtype);

#define FACL_MAX_DIMS 5
#define FACL_MAX_HEAD_DIM 256

/* A strided view into a cl_mem buffer. Offsets and strides count elements of
 * dtype, not bytes. The last dimension must have stride 1; the others are free
 * (non-negative), so q, k and v may be views of one packed buffer. */
typedef struct facl_tensor {
    cl_mem buffer;
    size_t offset;
    facl_dtype dtype;
    int ndim;
    int64_t shape[FACL_MAX_DIMS];
    int64_t stride[FACL_MAX_DIMS];
} facl_tensor;

/* A dense row-major view of a whole buffer (offset 0). ndim must be 1..5. */
FACL_API facl_tensor facl_tensor_contiguous(cl_mem buffer, facl_dtype dtype, int ndim,
                                            const int64_t *shape);

/* ---------------------------------------------------------------- context */

typedef struct facl_context facl_context;

/* Create a context on a device chosen by `selector`:
 *   NULL or ""      the FACL_DEVICE environment variable if set, else the first
 *                   GPU, else the first CPU or accelerator;
 *   "P:D"           platform index P, device index D (as `facl-selftest -l` lists);
 *   anything else   the first device whose platform or device name contains it
 *                   (case-insensitive).
 * The context owns an in-order command queue with profiling enabled. */
FACL_API facl_status facl_context_create(const char *selector, facl_context **out);

/* The device facl_context_create(selector, ...) would use, for tools and applications
 * that number or show devices the same way. */
FACL_API facl_status facl_select_device(const char *selector, cl_device_id *device);

/* Create a context around the caller's own cl_context and device (both retained). */
FACL_API facl_status facl_context_wrap(cl_context cl_ctx, cl_device_id device,
                                       facl_context **out);

/* Release everything. Accepts NULL. Waits for nothing: finish your queues first. */
FACL_API void facl_context_free(facl_context *ctx);

FACL_API cl_context facl_context_cl_context(const facl_context *ctx);
FACL_API cl_device_id facl_context_device(const facl_context *ctx);
FACL_API cl_command_queue facl_context_queue(const facl_context *ctx);

/* What the library found out about the device and will use there. */
typedef struct facl_device_info {
    char platform_name[128];
    char device_name[128];
    char driver_version[64];
    cl_device_type device_type;
    unsigned compute_units;
    size_t max_work_group_size;
    uint64_t local_mem_reported;  /* CL_DEVICE_LOCAL_MEM_SIZE */
    uint64_t local_mem_usable;    /* what the kernels plan with */
    uint64_t global_mem;
    uint64_t max_alloc;
    int native_half;              /* half arithmetic compiles (fp16 is always stored via vload_half) */
    int nv_compute_major, nv_compute_minor; /* 0 when not NVIDIA */
    char kernel_path[32];         /* "portable-gpu" or "portable-cpu" (FACL_KERNEL_PATH overrides) */
    char cache_dir[512];          /* "" when the disk cache is off */
} facl_device_info;

FACL_API facl_status facl_context_device_info(const facl_context *ctx, facl_device_info *info);

/* Program cache counters, for tests and the self-test tool. */
typedef struct facl_cache_stats {
    uint64_t memory_hits;        /* program found in this context's memory */
    uint64_t disk_hits;          /* program loaded from a disk-cache binary, no compile */
    uint64_t source_builds;      /* program compiled from source */
    uint64_t disk_rejects;       /* disk file present but unusable (corrupt, other device) */
    uint64_t disk_writes;        /* binaries written to the cache */
    uint64_t disk_write_failures;
} facl_cache_stats;

FACL_API facl_status facl_context_cache_stats(const facl_context *ctx, facl_cache_stats *stats);

/* Disk cache location: $FACL_CACHE_DIR if set, else $XDG_CACHE_HOME/facl, else
 * $HOME/.cache/facl. FACL_CACHE=0 turns the disk cache off. Read at context creation. */

/* ---------------------------------------------------------------- options */

typedef enum facl_mask_align {
    FACL_ALIGN_BOTTOM_RIGHT = 0, /* FlashAttention 2: row i sees keys j <= i + seqlen_k - seqlen_q */
    FACL_ALIGN_TOP_LEFT = 1      /* torch SDPA: row i sees keys j <= i */
} facl_mask_align;

typedef struct facl_attn_options {
    /* Scale of q.k; 0 means 1/sqrt(head_dim). Negative, NaN or infinite: rejected. */
    float softmax_scale;
    /* Causal masking (= window_right 0). The alignment also applies to windows and ALiBi. */
    int causal;
    facl_mask_align mask_align;
    /* Sliding window; -1 = unbounded on that side. Values below -1 are rejected. */
    int window_left;
    int window_right;
    /* softcap > 0: x = softcap * tanh(x / softcap). 0 = off; negative/NaN rejected. */
    float softcap;
    /* fp32 slopes shaped (heads_q) or (batch, heads_q); NULL = no ALiBi. */
    const facl_tensor *alibi_slopes;
    /* Dropout probability in [0, 1). Philox 4x32-10 keyed by dropout_seed, counter
     * (col / 4, row, dropout_offset + batch * heads_q + head): word col % 4 of the
     * output is compared with floor(p * 2^32); the element is kept iff it is >=. */
    float dropout_p;
    uint64_t dropout_seed;
    uint64_t dropout_offset;
    /* Debug output (flash_attn's return_attn_probs): fp32 (batch, heads_q, seqlen_q,
     * seqlen_k) (varlen: (batch, heads_q, max_seqlen_q, max_seqlen_k), zero padded) of
     * softmax probabilities before dropout, negated where dropout dropped them, 0 where
     * masked. NULL = not written. */
    const facl_tensor *attn_probs;
    /* Varlen only: 0 (default) reads cu_seqlens back (a small blocking read after the
     * wait list) to reject bad prefix sums and too-small max_seqlen with
     * FACL_ERROR_INVALID_SEQLENS; 1 skips that and stays fully asynchronous (the
     * kernel then clamps lengths so that it never reads or writes out of bounds). */
    int trust_cu_seqlens;
} facl_attn_options;

#define FACL_ATTN_OPTIONS_INIT \
    { 0.0f, 0, FACL_ALIGN_BOTTOM_RIGHT, -1, -1, 0.0f, NULL, 0.0f, 0, 0, NULL, 0 }

/* The same defaults as FACL_ATTN_OPTIONS_INIT. */
FACL_API facl_attn_options facl_attn_options_default(void);

/* ---------------------------------------------------------------- forward */

/* flash_attn_func.
 * q (batch, seqlen_q, heads_q, d), k and v (batch, seqlen_k, heads_kv, d), out like q,
 * lse fp32 (batch, heads_q, seqlen_q) or NULL. fp16, bf16 or fp32, all alike.
 * opts NULL = defaults. */
FACL_API facl_status facl_fwd(facl_context *ctx, cl_command_queue queue, const facl_tensor *q,
                              const facl_tensor *k, const facl_tensor *v, const facl_tensor *out,
                              const facl_tensor *lse, const facl_attn_options *opts,
                              cl_uint num_wait_events, const cl_event *wait_events,
                              cl_event *event);

/* flash_attn_qkvpacked_func: qkv (batch, seqlen, 3, heads, d); out (batch, seqlen, heads, d). */
FACL_API facl_status facl_fwd_qkvpacked(facl_context *ctx, cl_command_queue queue,
                                        const facl_tensor *qkv, const facl_tensor *out,
                                        const facl_tensor *lse, const facl_attn_options *opts,
                                        cl_uint num_wait_events, const cl_event *wait_events,
                                        cl_event *event);

/* flash_attn_kvpacked_func: kv (batch, seqlen_k, 2, heads_kv, d). */
FACL_API facl_status facl_fwd_kvpacked(facl_context *ctx, cl_command_queue queue,
                                       const facl_tensor *q, const facl_tensor *kv,
                                       const facl_tensor *out, const facl_tensor *lse,
                                       const facl_attn_options *opts, cl_uint num_wait_events,
                                       const cl_event *wait_events, cl_event *event);

/* flash_attn_varlen_func.
 * q (total_q, heads_q, d), k and v (total_k, heads_kv, d), out like q,
 * lse fp32 (heads_q, total_q) or NULL. cu_seqlens_q/k: int32 (batch + 1) prefix sums
 * starting at 0; sequence b owns rows [cu[b], cu[b+1]). max_seqlen_q/k bound every
 * sequence's length. Blocks for a moment unless opts->trust_cu_seqlens (see there). */
FACL_API facl_status facl_varlen_fwd(facl_context *ctx, cl_command_queue queue,
                                     const facl_tensor *q, const facl_tensor *k,
                                     const facl_tensor *v, const facl_tensor *cu_seqlens_q,
                                     const facl_tensor *cu_seqlens_k, int64_t max_seqlen_q,
                                     int64_t max_seqlen_k, const facl_tensor *out,
                                     const facl_tensor *lse, const facl_attn_options *opts,
                                     cl_uint num_wait_events, const cl_event *wait_events,
                                     cl_event *event);

/* flash_attn_varlen_qkvpacked_func: qkv (total, 3, heads, d), one cu_seqlens. */
FACL_API facl_status facl_varlen_fwd_qkvpacked(facl_context *ctx, cl_command_queue queue,
                                               const facl_tensor *qkv,
                                               const facl_tensor *cu_seqlens, int64_t max_seqlen,
                                               const facl_tensor *out, const facl_tensor *lse,
                                               const facl_attn_options *opts,
                                               cl_uint num_wait_events,
                                               const cl_event *wait_events, cl_event *event);

/* flash_attn_varlen_kvpacked_func: kv (total_k, 2, heads_kv, d). */
FACL_API facl_status facl_varlen_fwd_kvpacked(facl_context *ctx, cl_command_queue queue,
                                              const facl_tensor *q, const facl_tensor *kv,
                                              const facl_tensor *cu_seqlens_q,
                                              const facl_tensor *cu_seqlens_k,
                                              int64_t max_seqlen_q, int64_t max_seqlen_k,
                                              const facl_tensor *out, const facl_tensor *lse,
                                              const facl_attn_options *opts,
                                              cl_uint num_wait_events,
                                              const cl_event *wait_events, cl_event *event);

#ifdef __cplusplus
}
#endif
#endif /* FACL_H */
