/*
 * facl: FlashAttention for every OpenCL device.
 *
 * Exact attention (the math of FlashAttention 2, see docs/CONTRACT.md) over
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
 *
 * Threads
 * - One facl_context may be used by any number of threads at once: every call on it
 *   is safe to make concurrently (programs and kernel objects are shared; each call sets
 *   its kernels' arguments and enqueues them under the context's lock).
 *   facl_context_free must not race with other calls on the same context.
 * - The first call of each kernel variant (dtype, head dim, features) compiles its
 *   program and blocks for that compile (tens of ms to seconds; the disk cache makes
 *   later processes fast). Another thread that needs a program already built does not
 *   wait for that compile. facl_prepare_fwd compiles ahead of time.
 * - facl_last_error() is per thread.
 * - The library's own enqueues on a context are serialised (NVIDIA's driver is not safe
 *   when threads enqueue to one queue at once); on NVIDIA, give each thread its own
 *   queue for your own enqueues (docs/THREADS.md).
 *
 * Growing structs
 * - facl_attn_options, facl_context_config, facl_device_info, facl_cache_stats and
 *   facl_prepare_desc start with `struct_size`, set by their initialiser (the
 *   FACL_..._INIT macros) to the size the application was compiled with. A library
 *   newer than the application reads only that many bytes and gives the fields the
 *   application does not know their defaults; a library older than the application
 *   rejects fields it does not know unless they hold their default (zero). So a new
 *   field never breaks an application built against an older header. facl_tensor is
 *   fixed: changing it changes the soname (docs/ABI.md).
 * - facl.h does not choose the application's OpenCL headers: define
 *   CL_TARGET_OPENCL_VERSION yourself before including it (the library needs 1.2).
 */
#ifndef FACL_H
#define FACL_H

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
#define FACL_VERSION_MINOR 2
#define FACL_VERSION_PATCH 0
#define FACL_VERSION_NUMBER \
    (FACL_VERSION_MAJOR * 10000 + FACL_VERSION_MINOR * 100 + FACL_VERSION_PATCH)
#define FACL_VERSION_STRING "0.2.0"

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

/* The dtype's name as error messages print it: "fp32", "fp16", "bf16" or "int32"; NULL
 * for an unknown dtype. */
FACL_API const char *facl_dtype_name(facl_dtype dtype);

#define FACL_MAX_DIMS 5
#define FACL_MAX_HEAD_DIM 256

/* A strided view into a cl_mem buffer. Offsets and strides count elements of
 * dtype, not bytes. The last dimension must have stride 1; the others are free
 * (non-negative), so q, k and v may be views of one packed buffer. */
typedef struct facl_tensor {
    cl_mem buffer;
    uint64_t offset;
    int32_t dtype;   /* a facl_dtype (fixed width, so bindings need not guess enum sizes) */
    int32_t ndim;
    int64_t shape[FACL_MAX_DIMS];
    int64_t stride[FACL_MAX_DIMS];
} facl_tensor;

/* A dense row-major view of a whole buffer (offset 0). ndim must be 1..5. */
FACL_API facl_tensor facl_tensor_contiguous(cl_mem buffer, facl_dtype dtype, int ndim,
                                            const int64_t *shape);

/* ---------------------------------------------------------------- context */

typedef struct facl_context facl_context;

/* What the library tells a log callback about. */
typedef enum facl_log_kind {
    FACL_LOG_KERNEL_PATH = 1, /* the kernel path a context chose, and why */
    FACL_LOG_PROBE = 2,       /* a fast path's probe ran: passed, or failed and why */
    FACL_LOG_DISK_CACHE = 3,  /* the disk cache: its directory, or why it is off; evictions */
    FACL_LOG_CACHE_HIT = 4,   /* a program came from the disk cache */
    FACL_LOG_BUILD_START = 5, /* a program compile from source begins (no lock is held) */
    FACL_LOG_BUILD_DONE = 6,  /* that compile ended (the message says how) */
    FACL_LOG_TUNING = 7       /* the tuning entry a context uses, and its override file's fate */
} facl_log_kind;

/* Called from whichever thread made the call that caused the event, never with a lock
 * of the library held, so it may block or call back into the library (not with the
 * same context's facl_context_free). `kind` is a facl_log_kind; `message` is valid
 * during the call only. */
typedef void (*facl_log_fn)(void *user, int32_t kind, const char *message);

/* Context configuration. Start from FACL_CONTEXT_CONFIG_INIT. The environment still
 * wins where it is set: FACL_CACHE=0 and FACL_CACHE_DIR over cache_dir,
 * FACL_KERNEL_PATH over kernel_path (so an administrator can steer any application). */
typedef struct facl_context_config {
    uint32_t struct_size;    /* sizeof(facl_context_config), set by the initialiser */
    uint32_t reserved0;      /* 0 */
    /* NULL: the default location ($XDG_CACHE_HOME/facl, else $HOME/.cache/facl);
     * "": no disk cache; otherwise an absolute path. */
    const char *cache_dir;
    /* Upper bound of the disk cache's total size in bytes; least recently used entries
     * go first. 0 = the default, 512 MiB. */
    uint64_t cache_max_bytes;
    /* NULL or "": choose (a fast path is used only after its probe passed);
     * "portable-gpu", "portable-cpu", "nvidia-mma" or "mma-emulated": force one. */
    const char *kernel_path;
    facl_log_fn log;         /* NULL = no log */
    void *log_user;          /* passed to log */
} facl_context_config;

#define FACL_CONTEXT_CONFIG_INIT \
    { (uint32_t)sizeof(facl_context_config), 0, NULL, 0, NULL, NULL, NULL }

/* Create a context on a device chosen by `selector`:
 *   NULL or ""      the FACL_DEVICE environment variable if set, else the first
 *                   GPU, else the first CPU or accelerator;
 *   "P:D"           platform index P, device index D (as `facl-selftest -l` lists);
 *   anything else   the first device whose platform or device name contains it
 *                   (case-insensitive).
 * The context owns an in-order command queue with profiling enabled. On a device with
 * a fast kernel path, creating the context runs that path's probe (one tiny attention
 * compiled, run and compared; from the disk cache after the first time). */
FACL_API facl_status facl_context_create(const char *selector, facl_context **out);

/* The same with a configuration (NULL = FACL_CONTEXT_CONFIG_INIT). */
FACL_API facl_status facl_context_create_with_config(const char *selector,
                                                     const facl_context_config *config,
                                                     facl_context **out);

/* The device facl_context_create(selector, ...) would use, for tools and applications
 * that number or show devices the same way. */
FACL_API facl_status facl_select_device(const char *selector, cl_device_id *device);

/* Create a context around the caller's own cl_context and device (both retained).
 * Calls then accept only queues of that cl_context and that device. */
FACL_API facl_status facl_context_wrap(cl_context cl_ctx, cl_device_id device,
                                       facl_context **out);
FACL_API facl_status facl_context_wrap_with_config(cl_context cl_ctx, cl_device_id device,
                                                   const facl_context_config *config,
                                                   facl_context **out);

/* Release everything. Accepts NULL. Waits for nothing: finish your queues first. */
FACL_API void facl_context_free(facl_context *ctx);

FACL_API cl_context facl_context_cl_context(const facl_context *ctx);
FACL_API cl_device_id facl_context_device(const facl_context *ctx);
FACL_API cl_command_queue facl_context_queue(const facl_context *ctx);

/* What the library found out about the device and will use there.
 * Set struct_size (FACL_DEVICE_INFO_INIT) before the call. */
typedef struct facl_device_info {
    uint32_t struct_size;         /* sizeof(facl_device_info), set by the caller */
    uint32_t reserved0;
    char platform_name[128];
    char device_name[128];
    char driver_version[64];
    uint64_t device_type;         /* cl_device_type */
    uint32_t compute_units;
    uint32_t native_half;         /* half arithmetic compiles (fp16 is always stored via vload_half) */
    uint64_t max_work_group_size;
    uint64_t local_mem_reported;  /* CL_DEVICE_LOCAL_MEM_SIZE */
    uint64_t local_mem_usable;    /* what the kernels plan with */
    uint64_t global_mem;
    uint64_t max_alloc;
    int32_t nv_compute_major, nv_compute_minor; /* 0 when not NVIDIA */
    char kernel_path[32];         /* "portable-gpu", "portable-cpu", "nvidia-mma", "mma-emulated" */
    char kernel_path_reason[256]; /* why: "probe passed", "probe failed: ...", "forced by ..." */
    char cache_dir[512];          /* "" when the disk cache is off */
    char cache_note[256];         /* why the disk cache is off, or "" */
} facl_device_info;

#define FACL_DEVICE_INFO_INIT { (uint32_t)sizeof(facl_device_info), 0, "", "", "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "", "", "", "" }

FACL_API facl_status facl_context_device_info(const facl_context *ctx, facl_device_info *info);

/* The portable kernels' tuning on this context's device (docs/TUNING.md): which entry of
 * the tuning database it matched and the parameters it uses, as "key = value" lines:
 *   level          default, vendor, architecture or device: the most specific entry found
 *   entry          that entry's key ("pocl / haswell / *"), or "built-in defaults"
 *   vendor, architecture, device   this device's key in the database
 *   override       none, applied or ignored: the override file (FACL_TUNING_FILE, or
 *                  <cache dir>/tuning/<vendor>-<device>.txt)
 *   override_file  its path ("" for none)
 *   note           why it was ignored (or a table value skipped); "" otherwise
 *   d64.block_n, d64.lanes, d64.group_rows, d64.cpu_rows, the same for d128 and d256:
 *                  the values used for head dims <= 64, <= 128, <= 256
 * More keys may follow in later versions. Writes the text and its NUL into `text`
 * (`capacity` bytes) and its length without the NUL into *length (if not NULL). With
 * text NULL and capacity 0 it only sets *length (ask, allocate, call again). A capacity
 * too small is FACL_ERROR_INVALID_VALUE (the message says how much is needed) and
 * writes nothing. */
FACL_API facl_status facl_context_tuning(const facl_context *ctx, char *text, uint64_t capacity,
                                         uint64_t *length);

/* Program cache counters, for tests and the self-test tool.
 * Set struct_size (FACL_CACHE_STATS_INIT) before the call. */
typedef struct facl_cache_stats {
    uint32_t struct_size;        /* sizeof(facl_cache_stats), set by the caller */
    uint32_t reserved0;
    uint64_t memory_hits;        /* program found in this context's memory */
    uint64_t disk_hits;          /* program loaded from a disk-cache binary, no compile */
    uint64_t source_builds;      /* program compiled from source */
    uint64_t disk_rejects;       /* disk file present but unusable (corrupt, other device, unsafe) */
    uint64_t disk_writes;        /* binaries written to the cache */
    uint64_t disk_write_failures;
    uint64_t disk_evictions;     /* entries removed to keep the cache under its size bound */
} facl_cache_stats;

#define FACL_CACHE_STATS_INIT { (uint32_t)sizeof(facl_cache_stats), 0, 0, 0, 0, 0, 0, 0, 0 }

FACL_API facl_status facl_context_cache_stats(const facl_context *ctx, facl_cache_stats *stats);

/* The disk cache (see docs/CACHE.md). Location: $FACL_CACHE_DIR if set, else the
 * configuration's cache_dir, else $XDG_CACHE_HOME/facl, else $HOME/.cache/facl;
 * FACL_CACHE=0 turns it off. The directory must be absolute, owned by the effective
 * user and not writable by group or others, or the context runs without a disk cache
 * (facl_device_info.cache_note says why). Entries are loaded only if they are regular
 * files (not symlinks) owned by the user, not writable by group or others, at most
 * 256 MiB, with a valid header, key and checksum. Temporary files left by a crash are
 * removed after 10 minutes; the least recently used entries go when the cache passes
 * its size bound. Read at context creation. */

/* ---------------------------------------------------------------- options */

typedef enum facl_mask_align {
    FACL_ALIGN_BOTTOM_RIGHT = 0, /* FlashAttention 2: row i sees keys j <= i + seqlen_k - seqlen_q */
    FACL_ALIGN_TOP_LEFT = 1      /* torch SDPA: row i sees keys j <= i */
} facl_mask_align;

typedef struct facl_attn_options {
    uint32_t struct_size; /* sizeof(facl_attn_options), set by FACL_ATTN_OPTIONS_INIT */
    /* Scale of q.k; 0 means 1/sqrt(head_dim). Negative, NaN or infinite: rejected. */
    float softmax_scale;
    /* Causal masking (= window_right 0; a window_right other than -1 or 0 with causal is
     * rejected rather than overridden). The alignment also applies to windows and ALiBi. */
    int32_t causal;
    int32_t mask_align; /* a facl_mask_align */
    /* Sliding window; -1 = unbounded on that side. Values below -1 are rejected. A window
     * of at least the call's key length (seqlen_k; varlen: max_seqlen_k) is unbounded on
     * that side too, as in FlashAttention 2, so INT32_MAX is a valid "no limit". */
    int32_t window_left;
    int32_t window_right;
    /* softcap > 0: x = softcap * tanh(x / softcap). 0 = off; negative/NaN rejected. */
    float softcap;
    /* Dropout probability in [0, 1). Philox 4x32-10 keyed by dropout_seed, counter
     * (col / 4, row, dropout_offset + batch * heads_q + head): word col % 4 of the
     * output is compared with floor(p * 2^32); the element is kept iff it is >=. */
    float dropout_p;
    /* fp32 slopes shaped (heads_q) or (batch, heads_q); NULL = no ALiBi. */
    const facl_tensor *alibi_slopes;
    uint64_t dropout_seed;
    uint64_t dropout_offset;
    /* Debug output (flash_attn's return_attn_probs): fp32 (batch, heads_q, seqlen_q,
     * seqlen_k) (varlen: (batch, heads_q, max_seqlen_q, max_seqlen_k), zero padded) of
     * softmax probabilities before dropout, negated where dropout dropped them, 0 where
     * masked. NULL = not written. */
    const facl_tensor *attn_probs;
    /* Varlen (and seqused_k): 0 (default) reads cu_seqlens back (a small blocking read after the
     * wait list) to reject bad prefix sums and too-small max_seqlen with
     * FACL_ERROR_INVALID_SEQLENS; 1 skips that and stays fully asynchronous. Then the
     * kernels clamp the prefix sums into the tensors (never reading or writing out of
     * bounds) and compute every row of every sequence as the clamped sums describe it,
     * even where a sequence is longer than max_seqlen_q or max_seqlen_k (the maxima only
     * decide the launch size, the window normalisation and attn_probs' shape). */
    int32_t trust_cu_seqlens;
    /* Backward (FlashAttention's `deterministic`): 0 (default, FlashAttention's default)
     * lets the backward add dq with floating-point atomics where that is faster, so its
     * dq may differ in the last bits from run to run (the tensor-core atomic-dq kernels;
     * opt-in with FACL_BWD_DQ_ATOMIC=1 at context creation, since they ran slower than
     * the deterministic ones on the H200); 1 makes every gradient bitwise reproducible
     * (no atomics). The portable kernels are deterministic in both modes, and
     * so is every forward call, which accepts the field and computes the same either way.
     * Values other than 0 and 1 are refused (FACL_ERROR_INVALID_VALUE). */
    int32_t deterministic;
    /* FlashAttention 3's seqused_k: int32 (batch); sequence b uses only its first
     * seqused_k[b] keys (dense: of seqlen_k; varlen: of cu_seqlens_k[b+1] - cu_seqlens_k[b]),
     * so a padded batch needs no gather. Masks align to the used length. NULL = all keys.
     * Unless trust_cu_seqlens, it is read back (blocking, dense calls too) and a value
     * outside 0..the sequence's keys is FACL_ERROR_INVALID_SEQLENS; trusted, each value is
     * clamped into that range on the device. */
    const facl_tensor *seqused_k;
    /* Paged keys and values for the varlen calls (FlashAttention 2's block_table): int32
     * (batch, max_blocks_per_seq); k and v are then (num_blocks, page_size, heads_kv, d)
     * and sequence b's key t lives in page block_table[b, t / page_size] at row
     * t % page_size; cu_seqlens_k still gives each sequence's key count. Any page_size
     * >= 1. Unless trust_cu_seqlens, the entries a sequence uses are read back and one
     * outside 0..num_blocks-1 is FACL_ERROR_INVALID_VALUE. Dense calls refuse it (use
     * facl_fwd_kvcache). NULL = k and v are plain varlen tensors. */
    const facl_tensor *block_table;
} facl_attn_options;

#define FACL_ATTN_OPTIONS_INIT \
    { (uint32_t)sizeof(facl_attn_options), 0.0f, 0, FACL_ALIGN_BOTTOM_RIGHT, -1, -1, 0.0f, \
      0.0f, NULL, 0, 0, NULL, 0, 0, NULL, NULL }

/* The same defaults as FACL_ATTN_OPTIONS_INIT. Inline, so that the struct returned is
 * the one of the header the application was compiled with (a library function
 * returning a growable struct by value would break older applications). */
static inline facl_attn_options facl_attn_options_default(void)
{
    facl_attn_options o = FACL_ATTN_OPTIONS_INIT;
    return o;
}

/* ---------------------------------------------------------------- prepare */

/* One forward variant to compile ahead of time: the kernels a call with this dtype,
 * head dim, layout and these options would use (the option values that only change
 * numbers do not matter; softcap > 0, alibi_slopes set, dropout_p > 0, seqused_k and attn_probs
 * set do). */
typedef struct facl_prepare_desc {
    uint32_t struct_size;   /* sizeof(facl_prepare_desc), set by FACL_PREPARE_DESC_INIT */
    int32_t dtype;          /* a facl_dtype: F32, F16 or BF16 */
    int32_t head_dim;       /* 1..FACL_MAX_HEAD_DIM */
    int32_t varlen;         /* 0: dense and packed calls; 1: varlen calls */
    /* 0: views whose k and v rows start on 16-byte boundaries (contiguous tensors with
     * head_dim % 8 == 0); 1: the variant for other views. */
    int32_t unaligned_rows;
    uint32_t reserved0;     /* 0 */
    const facl_attn_options *opts; /* NULL = defaults */
} facl_prepare_desc;

#define FACL_PREPARE_DESC_INIT { (uint32_t)sizeof(facl_prepare_desc), FACL_DTYPE_F16, 64, 0, 0, 0, NULL }

/* Compile (or load from the disk cache) every program the described calls need, so
 * that an inference server pays no compile on its first request (on Hopper also the
 * kernel that long sequences take). Blocks until done. Enqueues nothing. */
FACL_API facl_status facl_prepare_fwd(facl_context *ctx, const facl_prepare_desc *descs,
                                      size_t count);

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

/* ------------------------------------------------------------------ merge */

/* Merge attention results computed over disjoint parts of the keys (split-KV decoding,
 * attention split across devices or processes). Part s holds out_s, normalised over its
 * own keys, and its lse_s, as facl_fwd writes them; the merged result is
 *   lse = log(sum_s exp(lse_s)),   out = sum_s exp(lse_s - lse) * out_s,
 * exactly the attention over all the parts' keys. A part whose lse is +inf (a row that
 * saw no key there, as facl_fwd writes it) or -inf weighs nothing; a row empty in every
 * part gets out = 0 and lse = +inf.
 *   out_parts  (parts, batch, seqlen, heads, d), or varlen (parts, total, heads, d);
 *              fp32, fp16 or bf16 (need not be out's dtype: fp32 partials are common)
 *   lse_parts  fp32 (parts, batch, heads, seqlen), or varlen (parts, heads, total)
 *   out        (batch, seqlen, heads, d), or varlen (total, heads, d)
 *   lse        fp32 (batch, heads, seqlen), varlen (heads, total), or NULL
 * Arithmetic in fp32. Does not block. */
FACL_API facl_status facl_merge(facl_context *ctx, cl_command_queue queue,
                                const facl_tensor *out_parts, const facl_tensor *lse_parts,
                                const facl_tensor *out, const facl_tensor *lse,
                                cl_uint num_wait_events, const cl_event *wait_events,
                                cl_event *event);

/* --------------------------------------------------------------- KV cache */

/* The cache side of facl_fwd_kvcache (FlashAttention's flash_attn_with_kvcache). Start
 * from FACL_KVCACHE_ARGS_INIT; every tensor is optional (NULL). */
typedef struct facl_kvcache_args {
    uint32_t struct_size;  /* sizeof(facl_kvcache_args), set by FACL_KVCACHE_ARGS_INIT */
    /* 0 = choose from the device and the work, 1 = no split, n >= 2 = the keys of each
     * (sequence, kv head) in n chunks computed in parallel and merged through their lse
     * (flash-decoding). Results agree to rounding whatever the count. */
    int32_t num_splits;
    /* The tokens already in each sequence's cache row, counting left padding: int32
     * (batch). NULL: cache_seqlens_value for every sequence. */
    const facl_tensor *cache_seqlens;
    int32_t cache_seqlens_value;
    /* Rotary pairing: 1 (FlashAttention's default) pairs dims (2t, 2t+1); 0 pairs
     * (t, t + rotary_dim / 2) as GPT-NeoX does. */
    int32_t rotary_interleaved;
    /* New keys and values, appended in place at positions cache_seqlens[b] ..
     * cache_seqlens[b] + seqlen_new - 1 (k after rotary) before the attention reads the
     * cache: (batch, seqlen_new, heads_kv, d), or with cu_seqlens_q (total_new, heads_kv,
     * d) described by cu_seqlens_k_new. Both or neither. */
    const facl_tensor *k_new;
    const facl_tensor *v_new;
    /* Rotary embedding of q and k_new: cos and sin (seqlen_ro, rotary_dim / 2) in q's
     * dtype, rotary_dim <= d. Positions are absolute cache positions: new key t at
     * cache_seqlens[b] + t; query row i at cache_seqlens[b] + i when causal or a window
     * is set, else every query at cache_seqlens[b]. Both or neither. */
    const facl_tensor *rotary_cos;
    const facl_tensor *rotary_sin;
    /* Which cache row (of k_cache's first dimension) sequence b uses: int32 (batch).
     * Dense caches only. NULL = row b. */
    const facl_tensor *cache_batch_idx;
    /* Keys before cache_leftpad[b] are not part of sequence b: int32 (batch). Masks and
     * ALiBi count positions from there; rotary positions do not move. NULL = 0. */
    const facl_tensor *cache_leftpad;
    /* Paged cache: int32 (batch, max_blocks_per_seq); k_cache and v_cache are then
     * (num_blocks, page_size, heads_kv, d), any page_size >= 1. NULL = dense cache
     * (batch_cache, seqlen_cache, heads_kv, d). */
    const facl_tensor *block_table;
    /* Varlen queries into the cache (chunked prefill, mixed prefill and decode in one
     * call): int32 (batch + 1) prefix sums over q's rows; q and out are then
     * (total_q, heads_q, d) and lse (heads_q, total_q). NULL = dense q. */
    const facl_tensor *cu_seqlens_q;
    int64_t max_seqlen_q;
    /* With cu_seqlens_q and k_new: int32 (batch + 1) prefix sums over k_new's rows. */
    const facl_tensor *cu_seqlens_k_new;
    /* Scratch for the split partials: a contiguous fp32 1-D view of at least
     * facl_fwd_kvcache_workspace_size() / 4 elements, which the call may overwrite
     * (until its event completes, nothing else may use it). NULL: a call that splits
     * allocates its own, an allocation per call that a decode loop pays on the host. */
    const facl_tensor *workspace;
} facl_kvcache_args;

#define FACL_KVCACHE_ARGS_INIT \
    { (uint32_t)sizeof(facl_kvcache_args), 0, NULL, 0, 1, NULL, NULL, NULL, NULL, NULL, \
      NULL, NULL, NULL, 0, NULL, NULL }

/* flash_attn_with_kvcache: attention of q over the keys [leftpad[b], cache_seqlens[b] +
 * seqlen_new) of each sequence's cache, after appending k_new/v_new (docs/CONTRACT.md,
 * "KV cache").
 *   q        (batch, seqlen_q, heads_q, d), or (total_q, heads_q, d) with cu_seqlens_q
 *   k_cache, v_cache  (batch_cache, seqlen_cache, heads_kv, d), or paged
 *            (num_blocks, page_size, heads_kv, d); written only where k_new/v_new go
 *   out      like q;  lse  fp32 (batch, heads_q, seqlen_q), varlen (heads_q, total_q), or NULL
 * opts: softmax_scale, causal, mask_align, windows (a window >= the cache's capacity
 * is unbounded), softcap, alibi_slopes, trust_cu_seqlens; dropout, attn_probs and
 * seqused_k are refused (FACL_ERROR_UNSUPPORTED). Unless opts->trust_cu_seqlens the index
 * buffers are read back (a small blocking read after the wait list) and lengths beyond
 * the cache, leftpad beyond cache_seqlens, table entries out of range, two sequences
 * appending to the same cache rows and rotary positions >= seqlen_ro are refused before
 * anything is written; trusted, they are clamped on the device. The library never
 * updates cache_seqlens. */
FACL_API facl_status facl_fwd_kvcache(facl_context *ctx, cl_command_queue queue,
                                      const facl_tensor *q, const facl_tensor *k_cache,
                                      const facl_tensor *v_cache,
                                      const facl_kvcache_args *cache, const facl_tensor *out,
                                      const facl_tensor *lse, const facl_attn_options *opts,
                                      cl_uint num_wait_events, const cl_event *wait_events,
                                      cl_event *event);

/* Bytes of facl_kvcache_args.workspace that any facl_fwd_kvcache call with these shapes
 * needs: rows_q query rows (batch * seqlen_q, or total_q with cu_seqlens_q), heads_q
 * query heads, head_dim, and its num_splits (0 = automatic: room for the most the library
 * chooses, 64). */
FACL_API facl_status facl_fwd_kvcache_workspace_size(const facl_context *ctx, int64_t rows_q,
                                                     int64_t heads_q, int64_t head_dim,
                                                     int32_t num_splits, uint64_t *bytes);

/* --------------------------------------------------------------- backward */

/* The backward of the forward calls (FlashAttention 2's _flash_attn_backward; see
 * docs/CONTRACT.md, "Backward"): from dout, the forward's inputs q, k, v, its out and its
 * lse, the gradients dq, dk, dv of a loss L with dout = dL/dout.
 *   dout, dq  shaped like q (and out), dk like k, dv like v, all of q's dtype; any
 *             strided views (last stride 1). With GQA/MQA, dk and dv of a kv head sum
 *             over the query heads of its group. The gradients (and the workspace) must
 *             not overlap the inputs or each other: dq is written before dk and dv are
 *             computed from q (not checked).
 *   lse       the forward's fp32 lse (required).
 *   opts      the forward's options, unchanged: scale, causal and mask_align, windows,
 *             softcap, alibi_slopes, dropout_p with the same dropout_seed and
 *             dropout_offset (the same mask is regenerated), seqused_k, trust_cu_seqlens,
 *             and deterministic (below). attn_probs and block_table are refused.
 *   workspace an fp32 1-D view of at least facl_bwd_workspace_size() / 4 elements (with
 *             the call's head_dim and opts->deterministic), or NULL: the call then
 *             allocates it (released once its kernels end). Too small for what the call
 *             runs: FACL_ERROR_BUFFER_TOO_SMALL, nothing written.
 * Every gradient element of every sequence is written, 0 where nothing depends on it (a
 * key no row sees, keys past seqused_k, a row that sees no key); varlen rows outside every
 * sequence are not written. opts->deterministic = 1: no atomics; every element is summed
 * by one work-item in a fixed order, so reruns, and launches of other shapes on one
 * device, give the same bits. opts->deterministic = 0 (the default, as in FlashAttention)
 * with FACL_BWD_DQ_ATOMIC=1: the tensor-core kernels (fp16/bf16 on nvidia-mma and
 * mma-emulated) add dq into an fp32 accumulator in the workspace with atomics from the
 * dk/dv kernel instead of recomputing S and dP in a dq kernel (5 matrix products instead
 * of 7), so dq may differ in its last bits from run to run (dk and dv do not); without
 * it, and on other paths and fp32, the deterministic kernels run.
 * Validation is the forward's, plus the gradients and the workspace; nothing is written
 * when an argument is refused. Does not block (varlen calls and seqused_k read their
 * index buffers back as the forward does, unless trusted). */
FACL_API facl_status facl_bwd(facl_context *ctx, cl_command_queue queue, const facl_tensor *dout,
                              const facl_tensor *q, const facl_tensor *k, const facl_tensor *v,
                              const facl_tensor *out, const facl_tensor *lse,
                              const facl_tensor *dq, const facl_tensor *dk, const facl_tensor *dv,
                              const facl_attn_options *opts, const facl_tensor *workspace,
                              cl_uint num_wait_events, const cl_event *wait_events,
                              cl_event *event);

/* Bytes of workspace a backward call on this context needs, for rows_q query rows
 * (batch * seqlen_q for the dense and packed calls, total_q for the varlen calls),
 * heads_q query heads, head_dim (1..FACL_MAX_HEAD_DIM) and the call's opts->deterministic
 * (0 or 1): one fp32 D per row and head, plus, with deterministic = 0 on a context whose
 * backward takes the atomic-dq kernels (FACL_BWD_DQ_ATOMIC=1; nvidia-mma or mma-emulated), the
 * fp32 dq accumulator of head_dim floats per row and head. Enough for every dtype (fp32
 * calls use only D). */
FACL_API facl_status facl_bwd_workspace_size(const facl_context *ctx, int64_t rows_q,
                                             int64_t heads_q, int64_t head_dim,
                                             int32_t deterministic, uint64_t *bytes);

/* Backward of facl_fwd_qkvpacked: dqkv shaped like qkv (batch, seqlen, 3, heads, d). */
FACL_API facl_status facl_bwd_qkvpacked(facl_context *ctx, cl_command_queue queue,
                                        const facl_tensor *dout, const facl_tensor *qkv,
                                        const facl_tensor *out, const facl_tensor *lse,
                                        const facl_tensor *dqkv, const facl_attn_options *opts,
                                        const facl_tensor *workspace, cl_uint num_wait_events,
                                        const cl_event *wait_events, cl_event *event);

/* Backward of facl_fwd_kvpacked: dkv shaped like kv (batch, seqlen_k, 2, heads_kv, d). */
FACL_API facl_status facl_bwd_kvpacked(facl_context *ctx, cl_command_queue queue,
                                       const facl_tensor *dout, const facl_tensor *q,
                                       const facl_tensor *kv, const facl_tensor *out,
                                       const facl_tensor *lse, const facl_tensor *dq,
                                       const facl_tensor *dkv, const facl_attn_options *opts,
                                       const facl_tensor *workspace, cl_uint num_wait_events,
                                       const cl_event *wait_events, cl_event *event);

/* Backward of facl_varlen_fwd: dout, dq (total_q, heads_q, d), dk, dv (total_k,
 * heads_kv, d), lse (heads_q, total_q). Blocks for a moment unless
 * opts->trust_cu_seqlens, like the forward. */
FACL_API facl_status facl_varlen_bwd(facl_context *ctx, cl_command_queue queue,
                                     const facl_tensor *dout, const facl_tensor *q,
                                     const facl_tensor *k, const facl_tensor *v,
                                     const facl_tensor *cu_seqlens_q,
                                     const facl_tensor *cu_seqlens_k, int64_t max_seqlen_q,
                                     int64_t max_seqlen_k, const facl_tensor *out,
                                     const facl_tensor *lse, const facl_tensor *dq,
                                     const facl_tensor *dk, const facl_tensor *dv,
                                     const facl_attn_options *opts, const facl_tensor *workspace,
                                     cl_uint num_wait_events, const cl_event *wait_events,
                                     cl_event *event);

/* Backward of facl_varlen_fwd_qkvpacked: dqkv shaped like qkv (total, 3, heads, d). */
FACL_API facl_status facl_varlen_bwd_qkvpacked(facl_context *ctx, cl_command_queue queue,
                                               const facl_tensor *dout, const facl_tensor *qkv,
                                               const facl_tensor *cu_seqlens, int64_t max_seqlen,
                                               const facl_tensor *out, const facl_tensor *lse,
                                               const facl_tensor *dqkv,
                                               const facl_attn_options *opts,
                                               const facl_tensor *workspace,
                                               cl_uint num_wait_events,
                                               const cl_event *wait_events, cl_event *event);

/* Backward of facl_varlen_fwd_kvpacked: dkv shaped like kv (total_k, 2, heads_kv, d). */
FACL_API facl_status facl_varlen_bwd_kvpacked(facl_context *ctx, cl_command_queue queue,
                                              const facl_tensor *dout, const facl_tensor *q,
                                              const facl_tensor *kv,
                                              const facl_tensor *cu_seqlens_q,
                                              const facl_tensor *cu_seqlens_k,
                                              int64_t max_seqlen_q, int64_t max_seqlen_k,
                                              const facl_tensor *out, const facl_tensor *lse,
                                              const facl_tensor *dq, const facl_tensor *dkv,
                                              const facl_attn_options *opts,
                                              const facl_tensor *workspace,
                                              cl_uint num_wait_events,
                                              const cl_event *wait_events, cl_event *event);

/* ----------------------------------------------------------- struct layout */

/* For bindings that mirror the public structs in another language (ctypes, cffi,
 * hand-written FFI): the layout this library was compiled with, so that a mirror is
 * checked when the binding loads instead of trusted (docs/ABI.md, "Checking a binding's
 * layout").
 *   struct_name  any struct of this header, as spelled here: "facl_tensor",
 *                "facl_attn_options", "facl_kvcache_args", ...
 *   field_name   a field as spelled here ("shape", "alibi_slopes"), or NULL for the
 *                struct itself (offset 0, size = its sizeof)
 *   offset, size in bytes; an array field's size is the whole array's.
 * An unknown struct or field is FACL_ERROR_INVALID_VALUE naming it (a binding newer than
 * the library asks for a field the library does not have). */
FACL_API facl_status facl_struct_layout(const char *struct_name, const char *field_name,
                                        uint64_t *offset, uint64_t *size);

/* The defaults of a growable struct (what its FACL_..._INIT initialiser gives), for
 * bindings that cannot expand the macros: writes out_size bytes at `out` (the binding's
 * sizeof of its mirror): the defaults of the fields this library knows, zeros past them,
 * and struct_size = out_size. Structs without an initialiser (facl_tensor) and
 * out_size < 4 are FACL_ERROR_INVALID_VALUE. */
FACL_API facl_status facl_struct_defaults(const char *struct_name, void *out, uint64_t out_size);

/* Field `index` (0-based, declaration order) of a struct, or with struct_name NULL the
 * name of struct `index`; NULL past the last one or for an unknown struct. Lists what
 * facl_struct_layout knows, so a binding can also see fields it does not mirror. */
FACL_API const char *facl_struct_field_name(const char *struct_name, uint32_t index);

#ifdef __cplusplus
}
#endif
#endif /* FACL_H */
