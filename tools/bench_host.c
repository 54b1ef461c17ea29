/* facl-bench --host-cost: host microseconds per call (see bench_host.h). */
#include "bench_host.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_buffers.h"
#include "bench_devices.h"
#include "tool_util.h"

enum { PREFILL_ROWS = 64 }; /* the short prefill chunk's query rows and keys */

typedef enum host_call { HOST_KVCACHE, HOST_FWD_DECODE, HOST_FWD_PREFILL, HOST_CALLS } host_call;

static const char *const k_call_names[HOST_CALLS] = {"facl_fwd_kvcache", "facl_fwd", "facl_fwd"};

/* The buffers every call reads or writes, made once. */
typedef struct host_buffers {
    facl_dtype dtype;
    int batch, heads, heads_kv, hdim, kv_len;
    cl_mem q, out, lse, k, v, seqlens, workspace;
    int64_t workspace_floats;
} host_buffers;

static void release_buffers(host_buffers *b)
{
    cl_mem all[] = {b->q, b->out, b->lse, b->k, b->v, b->seqlens, b->workspace};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (all[i]) clReleaseMemObject(all[i]);
}

/* q, out and lse for the prefill chunk's rows (the decode calls use the first row of
 * each sequence's), k and v as a contiguous (batch, kv_len, heads_kv, d) cache. */
static int make_buffers(bench_session *s, host_buffers *b, char *err, size_t err_size)
{
    const bench_options *o = s->opts;
    memset(b, 0, sizeof *b);
    b->dtype = o->dtypes[0];
    b->batch = o->batch, b->heads = o->heads, b->heads_kv = o->heads_kv;
    b->hdim = o->hdims[0], b->kv_len = o->kv_lens[0];
    if (b->kv_len < PREFILL_ROWS) {
        snprintf(err, err_size, "--kv-lens: at least %d keys (the prefill call reads %d)",
                 PREFILL_ROWS, PREFILL_ROWS);
        return -1;
    }
    cl_context cl = facl_context_cl_context(s->ctx);
    const size_t rows_q = (size_t)b->batch * PREFILL_ROWS * (size_t)b->heads;
    const size_t kv = (size_t)b->batch * (size_t)b->kv_len * (size_t)b->heads_kv * (size_t)b->hdim;
    cl_int e = CL_SUCCESS;
    b->q = tool_random_buffer(cl, s->queue, b->dtype, rows_q * (size_t)b->hdim, 1, &e);
    if (e == CL_SUCCESS) b->out = tool_zero_buffer(cl, s->queue, b->dtype, rows_q * (size_t)b->hdim, &e);
    if (e == CL_SUCCESS) b->lse = tool_zero_buffer(cl, s->queue, FACL_DTYPE_F32, rows_q, &e);
    if (e == CL_SUCCESS) b->k = tool_random_buffer(cl, s->queue, b->dtype, kv, 2, &e);
    if (e == CL_SUCCESS) b->v = tool_random_buffer(cl, s->queue, b->dtype, kv, 3, &e);
    int32_t *lens = e == CL_SUCCESS ? malloc((size_t)b->batch * sizeof *lens) : NULL;
    if (e == CL_SUCCESS && !lens) e = CL_OUT_OF_HOST_MEMORY;
    if (lens) {
        for (int i = 0; i < b->batch; ++i) lens[i] = b->kv_len;
        b->seqlens = tool_int_buffer(cl, s->queue, lens, (size_t)b->batch, &e);
        free(lens);
    }
    if (e != CL_SUCCESS) {
        snprintf(err, err_size, "buffers: %s", tool_cl_error_name(e));
        return -1;
    }
    /* made once, as a decode loop would: no allocation in the timed calls */
    uint64_t bytes = 0;
    facl_status st = facl_fwd_kvcache_workspace_size(s->ctx, b->batch, b->heads, b->hdim, 0, &bytes);
    if (st == FACL_SUCCESS)
        b->workspace = clCreateBuffer(cl, CL_MEM_READ_WRITE, (size_t)bytes, NULL, &e);
    if (st != FACL_SUCCESS || e != CL_SUCCESS) {
        snprintf(err, err_size, "workspace: %s",
                 st != FACL_SUCCESS ? facl_last_error() : tool_cl_error_name(e));
        return -1;
    }
    b->workspace_floats = (int64_t)(bytes / 4);
    return 0;
}

static facl_status call_once(bench_session *s, const host_buffers *b, host_call which,
                             cl_uint num_wait, const cl_event *wait)
{
    const int sq = which == HOST_FWD_PREFILL ? PREFILL_ROWS : 1;
    const int sk = which == HOST_FWD_PREFILL ? PREFILL_ROWS : b->kv_len;
    const int64_t qs[4] = {b->batch, sq, b->heads, b->hdim}, ls[3] = {b->batch, b->heads, sq};
    const int64_t ks[4] = {b->batch, sk, b->heads_kv, b->hdim};
    facl_tensor q = facl_tensor_contiguous(b->q, b->dtype, 4, qs);
    facl_tensor out = facl_tensor_contiguous(b->out, b->dtype, 4, qs);
    facl_tensor lse = facl_tensor_contiguous(b->lse, FACL_DTYPE_F32, 3, ls);
    facl_tensor k = facl_tensor_contiguous(b->k, b->dtype, 4, ks);
    facl_tensor v = facl_tensor_contiguous(b->v, b->dtype, 4, ks);
    facl_attn_options opts = FACL_ATTN_OPTIONS_INIT;
    if (which != HOST_KVCACHE)
        return facl_fwd(s->ctx, s->queue, &q, &k, &v, &out, &lse, &opts, num_wait, wait, NULL);
    opts.trust_cu_seqlens = 1; /* a decode loop's own cache_seqlens: no read-back */
    const int64_t ss[1] = {b->batch}, wn[1] = {b->workspace_floats};
    facl_tensor seqlens = facl_tensor_contiguous(b->seqlens, FACL_DTYPE_I32, 1, ss);
    facl_tensor ws = facl_tensor_contiguous(b->workspace, FACL_DTYPE_F32, 1, wn);
    facl_kvcache_args a = FACL_KVCACHE_ARGS_INIT;
    a.cache_seqlens = &seqlens;
    a.workspace = &ws;
    return facl_fwd_kvcache(s->ctx, s->queue, &q, &k, &v, &a, &out, &lse, &opts, num_wait, wait,
                            NULL);
}

typedef struct host_figure {
    double median_us, min_us, max_us; /* wall time per call, over the rounds */
    double cpu_us;                    /* the calling thread's CPU time per call, median round */
    double drain_ms;                  /* the median round's clFinish */
} host_figure;

/* CPU seconds of the calling thread: what the calls cost the host, without the time a
 * CPU device's threads take from it on a small machine. */
static double thread_cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One untimed call and clFinish, then the rounds. */
static int measure(bench_session *s, const host_buffers *b, host_call which, host_figure *f,
                   char *err, size_t err_size)
{
    const bench_options *o = s->opts;
    const int rounds = o->reps > 0 ? o->reps : 5;
    double *per_call = calloc((size_t)rounds, sizeof *per_call);
    double *drain = calloc((size_t)rounds, sizeof *drain);
    double *cpu = calloc((size_t)rounds, sizeof *cpu);
    int rc = -1;
    if (!per_call || !drain || !cpu) {
        snprintf(err, err_size, "out of host memory");
        goto done;
    }
    facl_status st = call_once(s, b, which, 0, NULL);
    cl_int e = clFinish(s->queue);
    for (int r = 0; r < rounds && st == FACL_SUCCESS && e == CL_SUCCESS; ++r) {
        /* The round's first call waits for a user event, and the in-order queue holds
         * the others behind it, so the device starts only after the round: on a CPU
         * device its threads would otherwise take the host's cores during the calls. */
        cl_event gate = clCreateUserEvent(facl_context_cl_context(s->ctx), &e);
        if (e != CL_SUCCESS) break;
        const double t0 = tool_now_seconds(), c0 = thread_cpu_seconds();
        for (int i = 0; i < o->calls && st == FACL_SUCCESS; ++i)
            st = call_once(s, b, which, i == 0 ? 1 : 0, i == 0 ? &gate : NULL);
        const double t1 = tool_now_seconds();
        cpu[r] = (thread_cpu_seconds() - c0) / o->calls * 1e6;
        clSetUserEventStatus(gate, CL_COMPLETE);
        clReleaseEvent(gate);
        e = clFinish(s->queue);
        per_call[r] = (t1 - t0) / o->calls * 1e6;
        drain[r] = (tool_now_seconds() - t1) * 1e3;
    }
    if (st != FACL_SUCCESS) {
        snprintf(err, err_size, "%s: %s: %s", k_call_names[which], facl_status_string(st),
                 facl_last_error());
        goto done;
    }
    if (e != CL_SUCCESS) {
        snprintf(err, err_size, "clFinish: %s", tool_cl_error_name(e));
        goto done;
    }
    /* the CPU time and drain of the round whose time per call is the median */
    double *order = malloc((size_t)rounds * sizeof *order);
    if (!order) {
        snprintf(err, err_size, "out of host memory");
        goto done;
    }
    memcpy(order, per_call, (size_t)rounds * sizeof *order);
    qsort(order, (size_t)rounds, sizeof *order, compare_doubles);
    f->median_us = order[rounds / 2];
    f->min_us = order[0];
    f->max_us = order[rounds - 1];
    f->drain_ms = drain[0];
    f->cpu_us = cpu[0];
    for (int r = 0; r < rounds; ++r)
        if (per_call[r] == f->median_us) f->drain_ms = drain[r], f->cpu_us = cpu[r];
    free(order);
    rc = 0;
done:
    free(per_call);
    free(drain);
    free(cpu);
    return rc;
}

int bench_host_run(bench_session *s, const char *selector, FILE *table)
{
    const bench_options *o = s->opts;
    const facl_device_info *d = &s->info;
    fprintf(table, "facl-bench %s on %s: %s (%s, driver %s), %s kernel path\n",
            facl_version_string(), selector, d->device_name, d->platform_name, d->driver_version,
            d->kernel_path);
    fprintf(table,
            "host time per call: wall time from entering the call to its return, the mean of "
            "%d back-to-back calls on the context's queue (no clFinish between them; the device "
            "held back by a user event until the last returns), median and range of %d rounds; "
            "cpu: the calling thread's CPU time per call in the median round; drain: the "
            "device's run of that round's calls (clFinish)\n\n",
            o->calls, o->reps > 0 ? o->reps : 5);
    host_buffers b;
    char err[256];
    if (make_buffers(s, &b, err, sizeof err) != 0) {
        fprintf(stderr, "facl-bench: %s\n", err);
        release_buffers(&b);
        return 1;
    }
    fprintf(table, "%-16s %-5s %4s %5s %6s %4s %6s | %9s %9s %9s %9s | %9s\n", "call", "dtype",
            "hdim", "batch", "heads", "sq", "sk", "us/call", "min", "max", "cpu us", "drain ms");
    int rc = 0;
    for (int c = 0; c < HOST_CALLS; ++c) {
        const int prefill = c == HOST_FWD_PREFILL;
        char heads[16];
        snprintf(heads, sizeof heads, "%d/%d", b.heads, b.heads_kv);
        fprintf(table, "%-16s %-5s %4d %5d %6s %4d %6d | ", k_call_names[c],
                tool_dtype_name(b.dtype), b.hdim, b.batch, heads, prefill ? PREFILL_ROWS : 1,
                prefill ? PREFILL_ROWS : b.kv_len);
        host_figure f;
        if (measure(s, &b, (host_call)c, &f, err, sizeof err) != 0) {
            fprintf(table, "error: %s\n", err);
            rc = 1;
            continue;
        }
        fprintf(table, "%9.1f %9.1f %9.1f %9.1f | %9.2f\n", f.median_us, f.min_us, f.max_us,
                f.cpu_us, f.drain_ms);
        fflush(table);
    }
    release_buffers(&b);
    return rc;
}
