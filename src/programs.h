/* Built OpenCL programs of one context: in memory (thread-safe) and on disk. */
#ifndef FACL_PROGRAMS_H
#define FACL_PROGRAMS_H

#include <pthread.h>

#include "device_profile.h"
#include "facl.h"

typedef struct facl_program_entry facl_program_entry;

typedef struct facl_program_cache {
    pthread_mutex_t lock;
    facl_program_entry *entries;
    facl_cache_stats stats;
    char disk_dir[512]; /* "" = disk cache off */
} facl_program_cache;

/* disk_dir NULL or "" turns the disk cache off. */
facl_status facl_program_cache_init(facl_program_cache *cache, const char *disk_dir);
void facl_program_cache_release(facl_program_cache *cache);

/* A built program for the embedded source `source_name` compiled with `options`.
 * The program stays owned by the cache (do not release it). */
facl_status facl_program_get(facl_program_cache *cache, cl_context cl_ctx, cl_device_id device,
                             const facl_device_profile *profile, const char *source_name,
                             const char *options, cl_program *program);

facl_cache_stats facl_program_cache_stats(facl_program_cache *cache);

#endif
