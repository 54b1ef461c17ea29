/* Built OpenCL programs of one context: in memory (thread-safe) and on disk. */
#ifndef FACL_PROGRAMS_H
#define FACL_PROGRAMS_H

#include <pthread.h>

#include "device_profile.h"
#include "facl.h"
#include "log.h"

typedef struct facl_program_entry facl_program_entry;

/* Thread rules: `lock` guards entries (with their kernel objects) and stats and is never
 * held across a compile, a disk load or store, a log callback or any other OpenCL call.
 * A program being built has an entry marked building; threads that need that same
 * program wait on `built`, all others go on. */
typedef struct facl_program_cache {
    pthread_mutex_t lock;
    pthread_cond_t built; /* broadcast whenever an entry stops building */
    facl_program_entry *entries;
    facl_cache_stats stats;
    facl_logger logger;
    uint64_t disk_max_bytes; /* the bound the disk cache is kept under (never 0) */
    char disk_dir[512];  /* "" = disk cache off; set at init, then read-only */
    char disk_note[256]; /* why the disk cache is off ("" when on, or off by configuration) */
} facl_program_cache;

/* configured_dir: the context configuration's cache_dir (NULL = default location,
 * "" = off); the environment overrides it (FACL_CACHE=0, FACL_CACHE_DIR). A directory
 * that is not safe to load code from leaves the cache memory-only, with the reason in
 * disk_note (and logged). max_bytes 0 = the default bound. Fails only for want of
 * memory or a mutex. */
facl_status facl_program_cache_init(facl_program_cache *cache, const char *configured_dir,
                                    uint64_t max_bytes, const facl_logger *logger);
void facl_program_cache_release(facl_program_cache *cache);

/* A built program for the embedded source `source_name` compiled with `options`.
 * The program stays owned by the cache (do not release it). Blocks while this program
 * is compiled (by this call or another thread's), never for another program. */
facl_status facl_program_get(facl_program_cache *cache, cl_context cl_ctx, cl_device_id device,
                             const facl_device_profile *profile, const char *source_name,
                             const char *options, cl_program *program);

/* Kernel `name` of `program` (which facl_program_get returned from this cache), checked to
 * take `expected_args` arguments. Each program entry keeps its kernel objects by name:
 * created on first use, released with the program by facl_program_cache_release, never
 * by the caller. They are shared by every thread of the context, and clSetKernelArg on
 * one kernel object from two threads at once is undefined (OpenCL, "Multiple host
 * threads"), so callers set their arguments and enqueue them only while they hold the
 * context's enqueue lock (context.h), setting every argument each time. */
facl_status facl_program_kernel(facl_program_cache *cache, cl_program program, const char *name,
                                cl_uint expected_args, cl_kernel *kernel);

facl_cache_stats facl_program_cache_stats(facl_program_cache *cache);

#endif
