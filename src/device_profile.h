/* What the library knows about a device: read once per context, used by planning. */
#ifndef FACL_DEVICE_PROFILE_H
#define FACL_DEVICE_PROFILE_H

#include "facl.h"
#include "tuning.h"

typedef enum facl_vendor {
    FACL_VENDOR_OTHER = 0,
    FACL_VENDOR_NVIDIA,
    FACL_VENDOR_AMD,
    FACL_VENDOR_INTEL,
    FACL_VENDOR_POCL
} facl_vendor;

/* The forward kernel family used on a device. The portable ones are OpenCL C 1.2 and
 * correct everywhere; they differ in how work maps to the hardware. The mma ones use
 * tensor cores for fp16/bf16 with head_dim up to 128 and fall back to portable-gpu for
 * other problems. */
typedef enum facl_kernel_path {
    FACL_PATH_PORTABLE_GPU = 0, /* work-item per query row, tiles in local memory */
    FACL_PATH_PORTABLE_CPU = 1, /* work-item per block of rows, vectorised loops */
    FACL_PATH_NVIDIA_MMA = 2,   /* warp mma.sync through inline PTX: NVIDIA sm_80 and newer */
    FACL_PATH_MMA_EMULATED = 3  /* the same kernel with its warp operations emulated in
                                 * local memory: any device, for testing its bookkeeping */
} facl_kernel_path;

enum { FACL_WGMMA_OFF = 0, FACL_WGMMA_EVERYWHERE = 1, FACL_WGMMA_WHERE_FASTER = 2 };

typedef struct facl_device_profile {
    char platform_name[128];
    char platform_version[128];
    char device_name[128];
    char device_version[128];
    char driver_version[64];
    facl_vendor vendor;
    cl_device_type type;
    unsigned compute_units;
    size_t max_work_group_size;
    uint64_t local_mem_reported;
    uint64_t local_mem_usable;
    uint64_t global_mem;
    uint64_t max_alloc;
    /* CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT: floats per SIMD register (8 for AVX2, 16 for
     * AVX-512 on PoCL); sizes attn_fwd_rows's register blocks (plan.c) */
    unsigned native_float_width;
    int nv_compute_major, nv_compute_minor;
    /* The tuning database's architecture key (facl_device_architecture) */
    char architecture[64];
    /* The portable kernels' parameters (tuning.h): set when a context is made, after the
     * disk cache (its directory holds override files); all zero = built-in defaults */
    facl_tuning tuning;
    facl_kernel_path path;
    /* 1 when the nvidia-mma path's KV-cache kernel (attn_cache_mma.cl, which also uses
     * cp.async and warp barriers) failed its probe: attn_cache.cl serves the cache then */
    int cache_mma_off;
    /* 1: the backward plans attn_bwd.cl, not the tensor-core attn_bwd_mma.cl. Set only
     * on a copy for one call's plan (bwd_launch.c: their probe failed, or is running on
     * this thread); a context's own profile keeps 0. */
    int bwd_mma_off;
    /* 1: opts->deterministic = 0 takes attn_bwd_mma's atomic-dq variant (FACL_BWD_DQ_ATOMIC=1,
     * read at context creation). Off by default: on the H200 it ran at 0.35-0.70x of the
     * deterministic kernels (run 35, docs/PERFORMANCE.md), and the default mode only uses
     * atomics where they are faster. */
    int bwd_dq_atomic;
    /* 1: opts->deterministic = 0 takes attn_bwd_wgmma's atomic-dq variant where the
     * backward's key blocks see 4096 query rows or more on average (bwd_plan.c; always with
     * bwd_dq_atomic). On by default: there it ran at 1.02-1.20x of the deterministic
     * kernels on the H200, at 0.77-1.00x below (run 158, docs/PERFORMANCE.md);
     * FACL_BWD_DQ_ATOMIC=0 turns it off. */
    int bwd_wgmma_dq_atomic;
    /* Whether the backward plans attn_bwd_wgmma (Hopper's warpgroup products) for fp16/bf16
     * head dims up to 128 in the deterministic mode: FACL_BWD_WGMMA_OFF (FACL_BWD_WGMMA=0, a
     * forced path, a device without it), FACL_BWD_WGMMA_FORCED (FACL_BWD_WGMMA=1: also on
     * mma-emulated, without a probe), or FACL_BWD_WGMMA_PROBED (the default on compute
     * capability 9.x once nvidia-mma passed its probe: the tensor-core backward's probe,
     * run at the first backward call, then covers it too; bwd_launch.c). */
    int bwd_wgmma;
    /* Its warpgroups per work-group as FACL_BWD_WGMMA_WARPGROUPS (1 or 2) asked
     * (benchmarks), or 0: the planner's choice. */
    int bwd_wgmma_warpgroups;
    /* Whether the forward plans attn_fwd_wgmma (Hopper's warpgroup products, plan.c) for
     * fp16/bf16: FACL_WGMMA_OFF (FACL_FWD_WGMMA=0, a forced path, a device without it, or
     * its probe failed), FACL_WGMMA_EVERYWHERE when FACL_FWD_WGMMA=1 forces it (tests,
     * benchmarks), or FACL_WGMMA_WHERE_FASTER (the default on compute capability 9.x once
     * its warp-specialised form with the tensor copy engine passed its probe): that form
     * where the plan finds it faster than attn_fwd_mma (kernel_path.c, plan.c). */
    int fwd_wgmma;
    /* Its shape as FACL_FWD_WGMMA_SHAPE="warpgroups,q_regs,pipe" asked (benchmarking),
     * or zeros: the planner's choice. */
    int wgmma_warpgroups, wgmma_q_regs, wgmma_pipe;
    /* Its key tile as FACL_FWD_WGMMA_BLOCK_N (64 or 128) asked (benchmarking: 64 is the
     * kernel before 128-key tiles), or 0: the planner's choice (plan.c, wgmma_block_n). */
    int wgmma_block_n;
    /* Its row blocks per work-group as FACL_FWD_BLOCKS_PER_GROUP (1 to 64) asked
     * (benchmarks, tests), or 0: the planner's choice (plan.c, wgmma_blocks_per_group). */
    int fwd_blocks_per_group;
    /* 1 when FACL_FWD_WGMMA_WS=1 asks for its warp-specialised form (WG_WS: a copier warpgroup
     * and transaction barriers, attn_fwd_mma.cl) where the shape allows it (two or three
     * buffers, 16-byte aligned rows), 2 for that with the warpgroups' ping-pong
     * (WS_PINGPONG); 0 otherwise. */
    int wgmma_ws;
    /* 1 when that copier fills the tiles through the tensor copy engine (TMA; the context
     * holds the CUDA driver's map encoder, tensor_map.h, kernel_path.c): tiles in the
     * 128-byte swizzle, one work-item issuing each tile's boxes; 0 = cp.async. */
    int wgmma_tma;
    /* attn_fwd_mma's shape as FACL_FWD_MMA_SHAPE="m_tiles,q_local,block_n,kv_stages"
     * asked (benchmarking), or zeros: the planner's choice. */
    int mma_m_tiles, mma_q_local, mma_block_n, mma_kv_stages;
    /* The portable GPU kernel as FACL_PORTABLE_KERNEL asked (FACL_TUNING_KERNEL_PREVIOUS
     * or _BLOCKED, read at context creation: benchmarks of both side by side), or 0: the
     * tuning entry's choice. */
    int portable_kernel;
    /* attn_fwd_rows's k/v tiles as FACL_CPU_PACK asked (read at context creation):
     * FACL_CPU_PACK_AUTO (0) packs them once per call where that pays (plan.c),
     * _ALWAYS wherever the buffer can be made, _NEVER not at all (each work-item
     * transposes the tiles it reads). For tests and benchmarks of both variants. */
    int cpu_pack;
} facl_device_profile;

enum { FACL_CPU_PACK_AUTO = 0, FACL_CPU_PACK_ALWAYS = 1, FACL_CPU_PACK_NEVER = 2 };
enum { FACL_BWD_WGMMA_OFF = 0, FACL_BWD_WGMMA_FORCED = 1, FACL_BWD_WGMMA_PROBED = 2 };

/* "nvidia", "amd", "intel", "pocl", "other": the tuning database's vendor keys. */
const char *facl_vendor_name(facl_vendor vendor);

/* The vendor named `name`, or -1. */
int facl_vendor_from_name(const char *name);

/* The tuning database's architecture key of a device (device_arch.c), from the fields
 * facl_device_profile_query fills before it: NVIDIA "sm_<major><minor>"; AMD the gfx
 * target its device name starts with ("gfx90a" of "gfx90a:sramecc+:xnack-"); a PoCL CPU
 * LLVM's CPU name ("haswell", "skylake-avx512"); anything else the device name without
 * its words that hold a digit ("Intel(R) UHD Graphics 630" -> "Intel(R) UHD Graphics"),
 * a family name that survives model numbers. */
void facl_device_architecture(const facl_device_profile *p, char *out, size_t cap);

/* "portable-gpu", "portable-cpu", "nvidia-mma", "mma-emulated". */
const char *facl_kernel_path_name(facl_kernel_path path);

/* The path named `name`, or -1. */
int facl_kernel_path_from_name(const char *name);

/* Whether the device can have the nvidia-mma path (its probe still decides). */
int facl_device_has_nvidia_mma(const facl_device_profile *p);

/* Queries the device. The path is set to the portable one of its type; the context
 * then chooses (kernel_path.h). */
facl_status facl_device_profile_query(cl_device_id device, facl_device_profile *profile);

#endif
