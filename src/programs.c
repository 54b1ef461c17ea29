/* Program cache. A program is identified by (source bytes, build options, device).
 * Lookup order: this context's memory, then the disk cache, then a build from source
 * (whose binary is then written to disk). Any disk problem only costs a rebuild. Each
 * built program keeps the kernel objects made from it (facl_program_kernel).
 *
 * Locking (see programs.h): the first thread to need a program puts an entry marked
 * building in the list and builds with no lock held; threads that need the same
 * program wait for that entry, the others never wait. A failed build's entry leaves
 * the list (a later call retries) and lives on until its last waiter has read the
 * failure. Counters are gathered per build and added under the lock. */
#include "programs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "disk_cache.h"
#include "kernel_sources.h"
#include "ptx_patch.h"
#include "sha256.h"
#include "status.h"

/* A kernel object of a built program, made on first use (facl_program_kernel). */
typedef struct facl_kernel_entry {
    char *name;
    cl_kernel kernel;
    cl_uint num_args;
    struct facl_kernel_entry *next;
} facl_kernel_entry;

struct facl_program_entry {
    const facl_kernel_source *source;
    char *options;
    cl_program program;   /* NULL while building and after a failed build */
    facl_kernel_entry *kernels; /* of `program`; only a built entry has any */
    int building;
    pthread_t builder;    /* while building: the thread that builds */
    int waiters;          /* threads waiting for this entry's build */
    facl_status failure;  /* a failed build's status and message, for its waiters */
    char *message;        /* NULL if it could not be copied */
    facl_program_entry *next;
};

static void free_kernel(facl_kernel_entry *k)
{
    if (k->kernel) clReleaseKernel(k->kernel);
    free(k->name);
    free(k);
}

static void free_entry(facl_program_entry *e)
{
    while (e->kernels) {
        facl_kernel_entry *next = e->kernels->next;
        free_kernel(e->kernels);
        e->kernels = next;
    }
    if (e->program) clReleaseProgram(e->program);
    free(e->options);
    free(e->message);
    free(e);
}

/* ------------------------------------------------------------ init and release */

/* Resolve, create and check the directory; any refusal leaves the cache memory-only. */
static void open_disk_cache(facl_program_cache *cache, const char *configured_dir)
{
    char dir[sizeof cache->disk_dir];
    if (facl_disk_cache_resolve(configured_dir, dir, sizeof dir, cache->disk_note,
                                sizeof cache->disk_note) &&
        facl_disk_cache_open_dir(dir, cache->disk_note, sizeof cache->disk_note) == 0)
        memcpy(cache->disk_dir, dir, sizeof dir);
    if (cache->disk_dir[0])
        facl_log(&cache->logger, FACL_LOG_DISK_CACHE, "disk cache %s (at most %llu bytes)",
                 cache->disk_dir, (unsigned long long)cache->disk_max_bytes);
    else
        facl_log(&cache->logger, FACL_LOG_DISK_CACHE, "no disk cache: %s",
                 cache->disk_note[0] ? cache->disk_note : "config.cache_dir is \"\"");
}

facl_status facl_program_cache_init(facl_program_cache *cache, const char *configured_dir,
                                    uint64_t max_bytes, const facl_logger *logger)
{
    memset(cache, 0, sizeof *cache);
    if (logger) cache->logger = *logger;
    cache->disk_max_bytes = max_bytes ? max_bytes : FACL_DISK_CACHE_DEFAULT_MAX_BYTES;
    if (pthread_mutex_init(&cache->lock, NULL) != 0)
        return facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "cannot create the program cache mutex");
    if (pthread_cond_init(&cache->built, NULL) != 0) {
        pthread_mutex_destroy(&cache->lock);
        return facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY,
                         "cannot create the program cache condition variable");
    }
    open_disk_cache(cache, configured_dir);
    return FACL_SUCCESS;
}

/* No call may be in progress (facl_context_free's rule), so no entry is building. */
void facl_program_cache_release(facl_program_cache *cache)
{
    facl_program_entry *e = cache->entries;
    while (e) {
        facl_program_entry *next = e->next;
        free_entry(e);
        e = next;
    }
    cache->entries = NULL;
    pthread_cond_destroy(&cache->built);
    pthread_mutex_destroy(&cache->lock);
}

facl_cache_stats facl_program_cache_stats(facl_program_cache *cache)
{
    pthread_mutex_lock(&cache->lock);
    facl_cache_stats s = cache->stats;
    pthread_mutex_unlock(&cache->lock);
    return s;
}

/* ------------------------------------------------------------ building (no lock held) */

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

/* A binary from the disk cache, or NULL (counted in *counts as a hit or a reject). */
static cl_program load_from_disk(const facl_program_cache *cache, cl_context cl_ctx,
                                 cl_device_id device, const char *options, const uint8_t key[32],
                                 facl_cache_stats *counts)
{
    unsigned char *binary = NULL;
    size_t length = 0;
    int found = facl_disk_cache_load(cache->disk_dir, key, &binary, &length);
    if (found == 0) return NULL;
    if (found < 0) {
        counts->disk_rejects++;
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
        counts->disk_rejects++;
        return NULL;
    }
    counts->disk_hits++;
    return program;
}

/* Write the binary, then keep the directory under its bound. */
static void store_to_disk(const facl_program_cache *cache, cl_program program,
                          const uint8_t key[32], facl_cache_stats *counts)
{
    size_t length = 0;
    if (clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, sizeof length, &length, NULL) !=
            CL_SUCCESS || length == 0) {
        counts->disk_write_failures++;
        return;
    }
    unsigned char *binary = malloc(length);
    unsigned char *binaries[1] = {binary};
    const int stored =
        binary &&
        clGetProgramInfo(program, CL_PROGRAM_BINARIES, sizeof binaries, binaries, NULL) ==
            CL_SUCCESS &&
        facl_disk_cache_store(cache->disk_dir, key, binary, length) == 0;
    free(binary);
    if (!stored) {
        counts->disk_write_failures++;
        return;
    }
    counts->disk_writes++;
    const int evicted = facl_disk_cache_evict(cache->disk_dir, cache->disk_max_bytes);
    if (evicted > 0) {
        counts->disk_evictions += (uint64_t)evicted;
        facl_log(&cache->logger, FACL_LOG_DISK_CACHE,
                 "evicted %d least recently used entr%s to keep %s under %llu bytes", evicted,
                 evicted == 1 ? "y" : "ies", cache->disk_dir,
                 (unsigned long long)cache->disk_max_bytes);
    }
}

/* Options that ask for the sm_90a rebuild (ptx_patch.h); the kernel source sees the
 * macro too, as a 1. */
#define SM90A_OPTION "-DFACL_SM90A=1"

/* A program built for sm_90, rebuilt from its PTX with its marked sm_90a instructions
 * (ptx_patch.h): replaces *program (released) on success. */
static facl_status rebuild_for_sm90a(cl_context cl_ctx, cl_device_id device,
                                     const facl_kernel_source *src, const char *options,
                                     cl_program *program)
{
    size_t length = 0;
    cl_int err = clGetProgramInfo(*program, CL_PROGRAM_BINARY_SIZES, sizeof length, &length, NULL);
    if (err != CL_SUCCESS || length == 0)
        return facl_fail_cl(err != CL_SUCCESS ? err : CL_INVALID_BINARY,
                            "reading a program's PTX for the sm_90a rebuild");
    char *ptx = malloc(length);
    if (!ptx) return facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "the PTX of %s", src->name);
    unsigned char *binaries[1] = {(unsigned char *)ptx};
    err = clGetProgramInfo(*program, CL_PROGRAM_BINARIES, sizeof binaries, binaries, NULL);
    if (err != CL_SUCCESS) {
        free(ptx);
        return facl_fail_cl(err, "reading a program's PTX for the sm_90a rebuild");
    }
    /* the driver's binary is NUL-terminated PTX text; the patch reads up to the NUL */
    char *patched = NULL;
    size_t patched_length = 0;
    int markers = 0;
    facl_status st = facl_ptx_to_sm90a(ptx, strnlen(ptx, length), &patched, &patched_length,
                                       &markers);
    free(ptx);
    if (st != FACL_SUCCESS) return st;
    const unsigned char *text[1] = {(const unsigned char *)patched};
    const size_t size = patched_length + 1; /* with its NUL, as the driver gave it */
    cl_int binary_status = CL_SUCCESS;
    cl_program rebuilt =
        clCreateProgramWithBinary(cl_ctx, 1, &device, &size, text, &binary_status, &err);
    free(patched);
    if (err != CL_SUCCESS || binary_status != CL_SUCCESS) {
        if (rebuilt) clReleaseProgram(rebuilt);
        return facl_fail_cl(err != CL_SUCCESS ? err : binary_status,
                            "creating a program from its sm_90a PTX");
    }
    err = clBuildProgram(rebuilt, 1, &device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        st = build_failure(rebuilt, device, err, src->name, options);
        clReleaseProgram(rebuilt);
        return st;
    }
    clReleaseProgram(*program);
    *program = rebuilt;
    return FACL_SUCCESS;
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
    if (strstr(options, SM90A_OPTION)) {
        facl_status st = rebuild_for_sm90a(cl_ctx, device, src, options, &program);
        if (st != FACL_SUCCESS) {
            clReleaseProgram(program);
            return st;
        }
    }
    *out = program;
    return FACL_SUCCESS;
}

static double seconds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Disk, then source. On failure *message holds a copy of this thread's error message,
 * taken before the log callback runs (it may make facl calls, which clear it). */
static facl_status obtain(const facl_program_cache *cache, cl_context cl_ctx,
                          cl_device_id device, const facl_device_profile *profile,
                          const facl_kernel_source *src, const char *options, cl_program *out,
                          facl_cache_stats *counts, char **message)
{
    uint8_t key[32];
    const int use_disk = cache->disk_dir[0] != '\0';
    if (use_disk) {
        disk_key(src, options, profile, key);
        *out = load_from_disk(cache, cl_ctx, device, options, key, counts);
        if (*out) {
            facl_log(&cache->logger, FACL_LOG_CACHE_HIT, "program %s [%s] loaded from %s",
                     src->name, options, cache->disk_dir);
            return FACL_SUCCESS;
        }
    }
    facl_log(&cache->logger, FACL_LOG_BUILD_START, "compiling %s [%s]", src->name, options);
    const double start = seconds_now();
    facl_status st = build_from_source(cl_ctx, device, src, options, out);
    const double seconds = seconds_now() - start;
    if (st != FACL_SUCCESS) {
        *message = strdup(facl_last_error());
        facl_log(&cache->logger, FACL_LOG_BUILD_DONE, "compiling %s [%s] failed after %.3f s: %s",
                 src->name, options, seconds, facl_status_string(st));
        return st;
    }
    counts->source_builds++;
    facl_log(&cache->logger, FACL_LOG_BUILD_DONE, "compiled %s [%s] in %.3f s", src->name,
             options, seconds);
    if (use_disk) store_to_disk(cache, *out, key, counts);
    return FACL_SUCCESS;
}

/* ------------------------------------------------------------ lookup (lock held) */

static void add_counts(facl_cache_stats *to, const facl_cache_stats *c)
{
    to->disk_hits += c->disk_hits;
    to->disk_rejects += c->disk_rejects;
    to->source_builds += c->source_builds;
    to->disk_writes += c->disk_writes;
    to->disk_write_failures += c->disk_write_failures;
    to->disk_evictions += c->disk_evictions;
}

static facl_program_entry *find_entry(const facl_program_cache *cache,
                                      const facl_kernel_source *src, const char *options)
{
    for (facl_program_entry *e = cache->entries; e; e = e->next)
        if (e->source == src && strcmp(e->options, options) == 0) return e;
    return NULL;
}

static void unlink_entry(facl_program_cache *cache, facl_program_entry *entry)
{
    for (facl_program_entry **p = &cache->entries; *p; p = &(*p)->next)
        if (*p == entry) {
            *p = entry->next;
            return;
        }
}

/* An entry already in the list: built, or being built by another thread. */
static facl_status use_entry(facl_program_cache *cache, facl_program_entry *e,
                             cl_program *program)
{
    if (e->building && pthread_equal(e->builder, pthread_self()))
        return facl_fail(FACL_ERROR_UNSUPPORTED,
                         "program %s is being compiled by this thread: a log callback called "
                         "back for the program whose compile it reports",
                         e->source->name);
    e->waiters++;
    while (e->building) pthread_cond_wait(&cache->built, &cache->lock);
    e->waiters--;
    if (e->program) {
        cache->stats.memory_hits++;
        *program = e->program;
        return FACL_SUCCESS;
    }
    facl_status st = e->message
                         ? facl_fail(e->failure, "%s", e->message)
                         : facl_fail(e->failure, "building program %s failed in another thread",
                                     e->source->name);
    if (e->waiters == 0) free_entry(e); /* the builder has unlinked it */
    return st;
}

facl_status facl_program_get(facl_program_cache *cache, cl_context cl_ctx, cl_device_id device,
                             const facl_device_profile *profile, const char *source_name,
                             const char *options, cl_program *program)
{
    const facl_kernel_source *src = find_source(source_name);
    if (!src) return facl_fail(FACL_ERROR_UNSUPPORTED, "no embedded kernel source '%s'", source_name);

    pthread_mutex_lock(&cache->lock);
    facl_program_entry *e = find_entry(cache, src, options);
    if (e) {
        facl_status st = use_entry(cache, e, program);
        pthread_mutex_unlock(&cache->lock);
        return st;
    }
    e = calloc(1, sizeof *e);
    if (e) e->options = strdup(options);
    if (!e || !e->options) {
        pthread_mutex_unlock(&cache->lock);
        free(e);
        return facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "program cache entry");
    }
    e->source = src;
    e->building = 1;
    e->builder = pthread_self();
    e->next = cache->entries;
    cache->entries = e;
    pthread_mutex_unlock(&cache->lock);

    facl_cache_stats counts;
    memset(&counts, 0, sizeof counts);
    cl_program built = NULL;
    char *message = NULL;
    facl_status st = obtain(cache, cl_ctx, device, profile, src, options, &built, &counts,
                            &message);
    if (st != FACL_SUCCESS && message) facl_fail(st, "%s", message); /* as before the log */

    pthread_mutex_lock(&cache->lock);
    add_counts(&cache->stats, &counts);
    e->building = 0;
    if (st == FACL_SUCCESS) {
        e->program = built;
        *program = built;
    } else {
        unlink_entry(cache, e);
        e->failure = st;
        e->message = message;
        if (e->waiters == 0) free_entry(e);
    }
    pthread_cond_broadcast(&cache->built);
    pthread_mutex_unlock(&cache->lock);
    return st;
}

/* ------------------------------------------------------------ kernel objects */

/* The built entry of `program`, or NULL (lock held). Entries with a program stay in the
 * list until the cache is released, so the pointer outlives the lock. */
static facl_program_entry *entry_of_program(const facl_program_cache *cache, cl_program program)
{
    for (facl_program_entry *e = cache->entries; e; e = e->next)
        if (e->program == program) return e;
    return NULL;
}

static facl_kernel_entry *find_kernel(const facl_program_entry *e, const char *name)
{
    for (facl_kernel_entry *k = e->kernels; k; k = k->next)
        if (strcmp(k->name, name) == 0) return k;
    return NULL;
}

static facl_status check_num_args(const char *name, cl_uint num_args, cl_uint expected_args)
{
    if (num_args == expected_args) return FACL_SUCCESS;
    return facl_fail(FACL_ERROR_BUILD_FAILED, "kernel %s takes %u arguments, the host binds %u",
                     name, (unsigned)num_args, (unsigned)expected_args);
}

/* A new kernel object and its argument count (no lock held). */
static facl_status create_kernel(cl_program program, const char *name, facl_kernel_entry **out)
{
    facl_kernel_entry *k = calloc(1, sizeof *k);
    if (k) k->name = strdup(name);
    if (!k || !k->name) {
        free(k);
        return facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "kernel cache entry");
    }
    cl_int err;
    k->kernel = clCreateKernel(program, name, &err);
    if (err != CL_SUCCESS) {
        k->kernel = NULL;
        free_kernel(k);
        return facl_fail_cl(err, name);
    }
    err = clGetKernelInfo(k->kernel, CL_KERNEL_NUM_ARGS, sizeof k->num_args, &k->num_args, NULL);
    if (err != CL_SUCCESS) {
        free_kernel(k);
        return facl_fail_cl(err, "clGetKernelInfo(CL_KERNEL_NUM_ARGS)");
    }
    *out = k;
    return FACL_SUCCESS;
}

facl_status facl_program_kernel(facl_program_cache *cache, cl_program program, const char *name,
                                cl_uint expected_args, cl_kernel *kernel)
{
    *kernel = NULL;
    pthread_mutex_lock(&cache->lock);
    facl_program_entry *e = entry_of_program(cache, program);
    const facl_kernel_entry *found = e ? find_kernel(e, name) : NULL;
    const cl_uint num_args = found ? found->num_args : 0;
    const cl_kernel cached = found ? found->kernel : NULL;
    pthread_mutex_unlock(&cache->lock);
    if (!e)
        return facl_fail(FACL_ERROR_UNSUPPORTED, "kernel %s: its program is not in the context's cache",
                         name);
    if (cached) {
        facl_status st = check_num_args(name, num_args, expected_args);
        if (st == FACL_SUCCESS) *kernel = cached;
        return st;
    }
    /* Made with no lock held; a thread that made the same kernel meanwhile wins. */
    facl_kernel_entry *made = NULL;
    facl_status st = create_kernel(program, name, &made);
    if (st != FACL_SUCCESS) return st;
    pthread_mutex_lock(&cache->lock);
    facl_kernel_entry *k = find_kernel(e, name);
    if (!k) {
        made->next = e->kernels;
        e->kernels = made;
        k = made;
        made = NULL;
    }
    const cl_uint args = k->num_args;
    const cl_kernel use = k->kernel;
    pthread_mutex_unlock(&cache->lock);
    if (made) free_kernel(made);
    st = check_num_args(name, args, expected_args);
    if (st == FACL_SUCCESS) *kernel = use;
    return st;
}
