/* Program cache. A program is identified by (source bytes, build options, device).
 * Lookup order: this context's memory, then the disk cache, then a build from source
 * (whose binary is then written to disk). Any disk problem only costs a rebuild. */
#include "programs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk_cache.h"
#include "kernel_sources.h"
#include "sha256.h"
#include "status.h"

struct facl_program_entry {
    const facl_kernel_source *source;
    char *options;
    cl_program program;
    facl_program_entry *next;
};

facl_status facl_program_cache_init(facl_program_cache *cache, const char *configured_dir,
                                    uint64_t max_bytes, const facl_logger *logger)
{
    memset(cache, 0, sizeof *cache);
    if (pthread_mutex_init(&cache->lock, NULL) != 0)
        return facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "cannot create the program cache mutex");
    if (logger) cache->logger = *logger;
    cache->disk_max_bytes = max_bytes;
    char dir[512];
    if (configured_dir && !*configured_dir) return FACL_SUCCESS;
    if (configured_dir) snprintf(cache->disk_dir, sizeof cache->disk_dir, "%s", configured_dir);
    else if (facl_disk_cache_dir(dir, sizeof dir)) snprintf(cache->disk_dir, sizeof cache->disk_dir, "%s", dir);
    return FACL_SUCCESS;
}

void facl_program_cache_release(facl_program_cache *cache)
{
    facl_program_entry *e = cache->entries;
    while (e) {
        facl_program_entry *next = e->next;
        clReleaseProgram(e->program);
        free(e->options);
        free(e);
        e = next;
    }
    cache->entries = NULL;
    pthread_mutex_destroy(&cache->lock);
}

facl_cache_stats facl_program_cache_stats(facl_program_cache *cache)
{
    pthread_mutex_lock(&cache->lock);
    facl_cache_stats s = cache->stats;
    pthread_mutex_unlock(&cache->lock);
    return s;
}

static const facl_kernel_source *find_source(const char *name)
{
    for (unsigned i = 0; i < facl_kernel_source_count; ++i)
        if (strcmp(facl_kernel_sources[i].name, name) == 0) return &facl_kernel_sources[i];
    return NULL;
}

static void hash_string(facl_sha256 *h, const char *s)
{
    facl_sha256_update(h, s, strlen(s) + 1); /* the NUL separates fields unambiguously */
}

/* The disk key covers everything that can change the binary: the exact source and
 * options, the device and its driver, the platform, and this library's versions. */
static void disk_key(const facl_kernel_source *src, const char *options,
                     const facl_device_profile *p, uint8_t key[32])
{
    facl_sha256 h;
    facl_sha256_init(&h);
    char versions[64];
    snprintf(versions, sizeof versions, "facl %s format %d", FACL_VERSION_STRING,
             FACL_DISK_CACHE_FORMAT);
    hash_string(&h, versions);
    facl_sha256_update(&h, src->bytes, src->length);
    hash_string(&h, options);
    hash_string(&h, p->device_name);
    hash_string(&h, p->device_version);
    hash_string(&h, p->driver_version);
    hash_string(&h, p->platform_name);
    hash_string(&h, p->platform_version);
    facl_sha256_final(&h, key);
}

static facl_status build_failure(cl_program program, cl_device_id device, cl_int err,
                                 const char *name, const char *options)
{
    facl_fail(FACL_ERROR_BUILD_FAILED, "building kernel program '%s' with options '%s' failed: %d\n",
              name, options, (int)err);
    size_t log_size = 0;
    if (clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_size) ==
            CL_SUCCESS && log_size > 0) {
        char *log = malloc(log_size + 1);
        if (log && clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, log_size, log,
                                         NULL) == CL_SUCCESS) {
            log[log_size] = '\0';
            facl_error_append("build log:\n");
            facl_error_append(log);
        }
        free(log);
    }
    return FACL_ERROR_BUILD_FAILED;
}

static cl_program load_from_disk(facl_program_cache *cache, cl_context cl_ctx,
                                 cl_device_id device, const char *options, const uint8_t key[32])
{
    unsigned char *binary = NULL;
    size_t length = 0;
    int found = facl_disk_cache_load(cache->disk_dir, key, &binary, &length);
    if (found == 0) return NULL;
    if (found < 0) {
        cache->stats.disk_rejects++;
        return NULL;
    }
    const unsigned char *binaries[1] = {binary};
    cl_int binary_status = CL_SUCCESS, err = CL_SUCCESS;
    cl_program program =
        clCreateProgramWithBinary(cl_ctx, 1, &device, &length, binaries, &binary_status, &err);
    free(binary);
    if (err == CL_SUCCESS && binary_status == CL_SUCCESS)
        err = clBuildProgram(program, 1, &device, options, NULL, NULL);
    if (err != CL_SUCCESS || binary_status != CL_SUCCESS) {
        /* A binary the driver refuses (another device, a changed driver) is rebuilt. */
        if (program) clReleaseProgram(program);
        cache->stats.disk_rejects++;
        return NULL;
    }
    cache->stats.disk_hits++;
    return program;
}

static void store_to_disk(facl_program_cache *cache, cl_program program, const uint8_t key[32])
{
    size_t length = 0;
    if (clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, sizeof length, &length, NULL) !=
            CL_SUCCESS || length == 0) {
        cache->stats.disk_write_failures++;
        return;
    }
    unsigned char *binary = malloc(length);
    unsigned char *binaries[1] = {binary};
    if (!binary ||
        clGetProgramInfo(program, CL_PROGRAM_BINARIES, sizeof binaries, binaries, NULL) !=
            CL_SUCCESS ||
        facl_disk_cache_store(cache->disk_dir, key, binary, length) != 0)
        cache->stats.disk_write_failures++;
    else
        cache->stats.disk_writes++;
    free(binary);
}

static facl_status build_from_source(cl_context cl_ctx, cl_device_id device,
                                     const facl_kernel_source *src, const char *options,
                                     cl_program *out)
{
    cl_int err;
    const char *text = (const char *)src->bytes;
    cl_program program = clCreateProgramWithSource(cl_ctx, 1, &text, &src->length, &err);
    if (err != CL_SUCCESS) return facl_fail_cl(err, "clCreateProgramWithSource");
    err = clBuildProgram(program, 1, &device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        facl_status st = build_failure(program, device, err, src->name, options);
        clReleaseProgram(program);
        return st;
    }
    *out = program;
    return FACL_SUCCESS;
}

facl_status facl_program_get(facl_program_cache *cache, cl_context cl_ctx, cl_device_id device,
                             const facl_device_profile *profile, const char *source_name,
                             const char *options, cl_program *program)
{
    const facl_kernel_source *src = find_source(source_name);
    if (!src) return facl_fail(FACL_ERROR_UNSUPPORTED, "no embedded kernel source '%s'", source_name);

    /* One lock around lookup and build: two threads asking for the same new program
     * build it once. Builds of different programs are serialised too (rare, simple). */
    pthread_mutex_lock(&cache->lock);
    for (facl_program_entry *e = cache->entries; e; e = e->next) {
        if (e->source == src && strcmp(e->options, options) == 0) {
            cache->stats.memory_hits++;
            *program = e->program;
            pthread_mutex_unlock(&cache->lock);
            return FACL_SUCCESS;
        }
    }

    facl_status st = FACL_SUCCESS;
    cl_program built = NULL;
    uint8_t key[32];
    int use_disk = cache->disk_dir[0] != '\0';
    if (use_disk) {
        disk_key(src, options, profile, key);
        built = load_from_disk(cache, cl_ctx, device, options, key);
    }
    if (!built) {
        st = build_from_source(cl_ctx, device, src, options, &built);
        if (st == FACL_SUCCESS) {
            cache->stats.source_builds++;
            if (use_disk) store_to_disk(cache, built, key);
        }
    }
    facl_program_entry *entry = NULL;
    if (st == FACL_SUCCESS) {
        entry = calloc(1, sizeof *entry);
        char *opts_copy = entry ? malloc(strlen(options) + 1) : NULL;
        if (!entry || !opts_copy) {
            free(entry);
            clReleaseProgram(built);
            st = facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "program cache entry");
        } else {
            strcpy(opts_copy, options);
            entry->source = src;
            entry->options = opts_copy;
            entry->program = built;
            entry->next = cache->entries;
            cache->entries = entry;
            *program = built;
        }
    }
    pthread_mutex_unlock(&cache->lock);
    return st;
}
