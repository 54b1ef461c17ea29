/* facl-bench's session and per-point measurement (see bench_run.h). */
#include "bench_run.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench_buffers.h"
#include "bench_devices.h"
#include "bench_ours.h"
#include "tool_util.h"

void bench_format_bytes(uint64_t bytes, char *buf, size_t size)
{
    double b = (double)bytes;
    if (b >= 1024.0 * 1024 * 1024)
        snprintf(buf, size, "%.1f GiB", b / (1024.0 * 1024 * 1024));
    else
        snprintf(buf, size, "%.0f MiB", b / (1024.0 * 1024));
}

/* One context per --portable-kernel name, on the session's cl_context and device (so
 * they share its buffers and queue): the library reads FACL_PORTABLE_KERNEL and
 * FACL_CPU_PACK when a context is made, so the name's variable is set for each, then
 * put back as it was. */
static int open_kernel_contexts(bench_session *s, const bench_options *o, char *err,
                                size_t err_size)
{
    int rc = 0;
    for (int i = 0; i < o->n_portable_kernels && rc == 0; ++i) {
        const char *variable = NULL, *value = NULL;
        if (bench_kernel_choice(o->portable_kernels[i], &variable, &value) != 0) {
            snprintf(err, err_size, "unknown --portable-kernel '%s'", o->portable_kernels[i]);
            return -1;
        }
        const char *was = getenv(variable);
        char saved[64];
        snprintf(saved, sizeof saved, "%s", was ? was : "");
        setenv(variable, value, 1);
        const facl_status st = facl_context_wrap(facl_context_cl_context(s->ctx),
                                                 facl_context_device(s->ctx), &s->kernel_ctx[i]);
        if (st != FACL_SUCCESS) {
            snprintf(err, err_size, "cannot create a context with %s=%s: %s: %s", variable, value,
                     facl_status_string(st), facl_last_error());
            rc = -1;
        }
        if (was)
            setenv(variable, saved, 1);
        else
            unsetenv(variable);
    }
    return rc;
}

int bench_session_open(bench_session *s, const bench_options *o, char *err, size_t err_size)
{
    memset(s, 0, sizeof *s);
    s->opts = o;
    facl_status st = facl_context_create(o->device, &s->ctx);
    if (st != FACL_SUCCESS) {
        snprintf(err, err_size, "cannot create a context on %s: %s: %s",
                 o->device ? o->device : "the default device", facl_status_string(st),
                 facl_last_error());
        return -1;
    }
    if (open_kernel_contexts(s, o, err, err_size) != 0) {
        bench_session_close(s);
        return -1;
    }
    s->queue = facl_context_queue(s->ctx);
    s->info.struct_size = sizeof s->info;
    facl_context_device_info(s->ctx, &s->info);
    if (bench_timer_init(&s->timer, facl_context_cl_context(s->ctx), facl_context_device(s->ctx),
                         s->queue, err, err_size) != 0) {
        bench_session_close(s);
        return -1;
    }
    s->reps.reps = o->reps;
    s->reps.target_s = 1.0;
    s->reps.min_reps = 3;
    s->reps.max_reps = 50;
    if (!o->baseline)
        snprintf(s->baseline_why, sizeof s->baseline_why, "unavailable (--baseline off)");
    else
        s->baseline = bench_baseline_create(s->ctx, s->baseline_why, sizeof s->baseline_why);
    return 0;
}

static void release_inputs(bench_session *s)
{
    cl_mem *all[] = {&s->q, &s->k, &s->v, &s->out, &s->lse};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) {
        if (*all[i]) clReleaseMemObject(*all[i]);
        *all[i] = NULL;
    }
    s->have_inputs = 0;
}

void bench_session_close(bench_session *s)
{
    release_inputs(s);
    bench_baseline_free(s->baseline);
    bench_timer_free(&s->timer);
    for (int i = 0; i < 2; ++i) facl_context_free(s->kernel_ctx[i]);
    facl_context_free(s->ctx);
    memset(s, 0, sizeof *s);
}

/* q, k, v and out hold tokens * hidden elements at every point; lse holds
 * tokens * heads floats, at most tokens * hidden / (smallest head dim). */
static int ensure_inputs(bench_session *s, facl_dtype dtype, char *err, size_t err_size)
{
    if (s->have_inputs && s->dtype == dtype) return 0;
    release_inputs(s);
    size_t n = (size_t)s->opts->tokens * BENCH_HIDDEN;
    int min_hdim = FACL_MAX_HEAD_DIM;
    for (int i = 0; i < s->opts->n_hdims; ++i)
        if (s->opts->hdims[i] < min_hdim) min_hdim = s->opts->hdims[i];
    cl_context cl = facl_context_cl_context(s->ctx);
    cl_int e = CL_SUCCESS;
    s->q = tool_random_buffer(cl, s->queue, dtype, n, 1, &e);
    if (e == CL_SUCCESS) s->k = tool_random_buffer(cl, s->queue, dtype, n, 2, &e);
    if (e == CL_SUCCESS) s->v = tool_random_buffer(cl, s->queue, dtype, n, 3, &e);
    if (e == CL_SUCCESS) s->out = tool_zero_buffer(cl, s->queue, dtype, n, &e);
    if (e == CL_SUCCESS)
        s->lse = tool_zero_buffer(cl, s->queue, FACL_DTYPE_F32, n / (size_t)min_hdim, &e);
    if (e != CL_SUCCESS) {
        snprintf(err, err_size, "input buffers: %s", tool_cl_error_name(e));
        release_inputs(s);
        return -1;
    }
    s->dtype = dtype;
    s->have_inputs = 1;
    return 0;
}

typedef struct work_args {
    bench_session *s;
    const bench_config *cfg;
    cl_mem scores; /* NULL: ours */
} work_args;

static int work(void *arg, cl_command_queue queue, cl_event *last, char *err, size_t err_size)
{
    work_args *w = arg;
    bench_session *s = w->s;
    if (!w->scores) {
        const int pk = w->cfg->portable_kernel;
        facl_context *ctx = pk >= 0 && pk < 2 && s->kernel_ctx[pk] ? s->kernel_ctx[pk] : s->ctx;
        return bench_ours_enqueue(ctx, queue, w->cfg, s->q, s->k, s->v, s->out, s->lse, last,
                                  err, err_size);
    }
    return bench_baseline_enqueue(s->baseline, queue, w->cfg, s->q, s->k, s->v, s->out,
                                  w->scores, last, err, err_size);
}

static void time_it(bench_session *s, const bench_config *c, cl_mem scores, bench_measure *m)
{
    work_args w = {s, c, scores};
    bench_timing t;
    if (bench_time(&s->timer, work, &w, &s->reps, &t, m->note, sizeof m->note) != 0) {
        m->state = BENCH_ERROR;
        return;
    }
    m->state = BENCH_OK;
    m->median_ms = t.median_ms;
    m->min_ms = t.min_ms;
    m->max_ms = t.max_ms;
    m->reps = t.reps;
    double flops = bench_attention_flops(c->batch, c->seqlen, c->seqlen, c->heads, c->hdim,
                                         c->causal);
    m->tflops = t.median_ms > 0 ? flops / (t.median_ms * 1e-3) / 1e12 : 0.0;
}

/* n/a when one buffer exceeds the largest allocation or `resident` (what is allocated
 * at once) the device memory; the note gives `needs`, the implementation's own total. */
static int fits(const bench_session *s, uint64_t largest, uint64_t resident, uint64_t needs,
                bench_measure *m)
{
    if (largest <= s->info.max_alloc && resident <= s->info.global_mem) return 1;
    char need[32];
    bench_format_bytes(needs, need, sizeof need);
    m->state = BENCH_NA;
    if (largest > s->info.max_alloc) {
        char one[32];
        bench_format_bytes(largest, one, sizeof one);
        snprintf(m->note, sizeof m->note, "n/a (needs %s, one buffer of %s)", need, one);
    } else {
        snprintf(m->note, sizeof m->note, "n/a (needs %s)", need);
    }
    return 0;
}

/* can_run 0: our own buffers did not fit, so after the availability checks the
 * baseline (which needs more) is n/a too. */
static void measure_baseline(bench_session *s, const bench_config *c, int can_run,
                             bench_measure *m)
{
    m->mem_bytes = bench_baseline_memory(c);
    if (c->portable_kernel > 0) {
        m->state = BENCH_UNAVAILABLE;
        snprintf(m->note, sizeof m->note, "(timed with the first --portable-kernel)");
        return;
    }
    if (!s->baseline) {
        m->state = BENCH_UNAVAILABLE;
        snprintf(m->note, sizeof m->note, "%s", s->baseline_why);
        return;
    }
    if (!bench_baseline_supports(s->baseline, c->dtype, m->note, sizeof m->note)) {
        m->state = BENCH_UNAVAILABLE;
        return;
    }
    uint64_t scores_bytes = bench_baseline_scores_bytes(c);
    if (!can_run) {
        fits(s, scores_bytes, UINT64_MAX, m->mem_bytes, m);
        return;
    }
    /* Our buffers stay allocated meanwhile (the baseline reuses q, k, v and out). */
    if (!fits(s, scores_bytes, scores_bytes + bench_ours_memory(c), m->mem_bytes, m)) return;
    cl_int e;
    cl_mem scores = tool_zero_buffer(facl_context_cl_context(s->ctx), s->queue, c->dtype,
                                     (size_t)(scores_bytes / facl_dtype_size(c->dtype)), &e);
    if (!scores) {
        char need[32];
        bench_format_bytes(scores_bytes, need, sizeof need);
        m->state = BENCH_NA;
        snprintf(m->note, sizeof m->note, "n/a (score matrix of %s: %s)", need,
                 tool_cl_error_name(e));
        return;
    }
    time_it(s, c, scores, m);
    clReleaseMemObject(scores);
}

void bench_session_measure(bench_session *s, bench_row *row)
{
    const bench_config *c = &row->cfg;
    memset(&row->ours, 0, sizeof row->ours);
    memset(&row->base, 0, sizeof row->base);
    double t0 = tool_now_seconds();
    row->ours.mem_bytes = bench_ours_memory(c);
    uint64_t q_bytes = (uint64_t)s->opts->tokens * BENCH_HIDDEN * facl_dtype_size(c->dtype);
    if (fits(s, q_bytes, row->ours.mem_bytes, row->ours.mem_bytes, &row->ours)) {
        if (ensure_inputs(s, c->dtype, row->ours.note, sizeof row->ours.note) != 0)
            row->ours.state = BENCH_ERROR;
        else
            time_it(s, c, NULL, &row->ours);
    }
    double t1 = tool_now_seconds();
    row->ours.wall_s = t1 - t0;
    if (row->ours.state == BENCH_NA) {
        measure_baseline(s, c, 0, &row->base);
    } else if (s->have_inputs && s->dtype == c->dtype) {
        measure_baseline(s, c, 1, &row->base);
    } else {
        row->base.state = BENCH_ERROR;
        snprintf(row->base.note, sizeof row->base.note, "not run (no input buffers)");
    }
    row->base.wall_s = tool_now_seconds() - t1;
}
