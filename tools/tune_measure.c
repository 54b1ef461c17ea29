/* One candidate of facl-tune (see tune.h). The candidate reaches the library exactly as a
 * user's entry would: as an override file named by FACL_TUNING_FILE, read when a
 * context is made (each candidate wraps the same cl_context, so the timed buffers are
 * shared). Its programs go through the disk cache like any others, so that a second run
 * of the tuner does not compile them again (the cache's size bound evicts the losers). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_ours.h"
#include "case_runner.h"
#include "tool_util.h"
#include "tune.h"

static void set_note(tune_result *r, tune_state state, const char *what, const char *detail)
{
    r->state = state;
    /* Build logs run long: their first line says enough here. */
    const size_t line = strcspn(detail, "\n");
    snprintf(r->note, sizeof r->note, "%s%s%.*s", what, detail[0] ? ": " : "", (int)line, detail);
}

static int write_candidate(const tune_device *dev, int hdim, const facl_tuning_params *p,
                           const char *path)
{
    facl_tuning_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.vendor, sizeof e.vendor, "%s", dev->vendor);
    snprintf(e.architecture, sizeof e.architecture, "%s", dev->architecture);
    snprintf(e.device, sizeof e.device, "%s", dev->name);
    e.d[facl_tuning_class(hdim)] = *p;
    char text[FACL_TUNING_FILE_MAX_BYTES + 1];
    facl_tuning_format_file(&e, text, sizeof text);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    const int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Small problems that cross every boundary a parameter moves: partial key tiles and row
 * blocks, GQA, causal rows that see no key (lse +inf), and a single-row query (the
 * work-group shrinks). The float64 reference and the rule of docs/CONTRACT.md judge. */
static int verify(const tune_options *o, facl_context *ctx, tune_result *r)
{
    fwd_case cases[3] = {
        fwd_case_make(CASE_DENSE, o->dtype, o->hdim, 77, 203, 4, 2, 2, 101),
        fwd_case_make(CASE_DENSE, o->dtype, o->hdim, 203, 77, 2, 1, 1, 102),
        fwd_case_make(CASE_DENSE, o->dtype, o->hdim, 1, 150, 4, 1, 2, 103),
    };
    cases[1].opts.causal = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        case_result cr;
        if (run_fwd_case(ctx, &cases[i], &cr)) continue;
        char name[192], what[256];
        fwd_case_name(&cases[i], name, sizeof name);
        snprintf(what, sizeof what, "%s %s", cr.status == FACL_SUCCESS ? "wrong on" : "failed on",
                 name);
        set_note(r,
                 cr.status == FACL_ERROR_BUILD_FAILED ? TUNE_BUILD_FAILED
                 : cr.status == FACL_SUCCESS          ? TUNE_WRONG
                                                      : TUNE_ERROR,
                 what, cr.detail);
        return -1;
    }
    return 0;
}

typedef struct work_args {
    facl_context *ctx;
    const tune_device *dev;
    bench_config cfg;
} work_args;

static int work(void *arg, cl_command_queue queue, cl_event *last, char *err, size_t err_size)
{
    const work_args *w = arg;
    return bench_ours_enqueue(w->ctx, queue, &w->cfg, w->dev->q, w->dev->k, w->dev->v,
                              w->dev->out, w->dev->lse, last, err, err_size);
}

void tune_measure(const tune_options *o, tune_device *dev, const char *tmp_dir, tune_result *r)
{
    r->state = TUNE_ERROR;
    r->note[0] = '\0';
    char path[600];
    snprintf(path, sizeof path, "%s/candidate.txt", tmp_dir);
    if (write_candidate(dev, o->hdim, &r->params, path) != 0) {
        set_note(r, TUNE_ERROR, "cannot write the candidate's file", path);
        return;
    }
    setenv("FACL_TUNING_FILE", path, 1);
    facl_context_config cfg = FACL_CONTEXT_CONFIG_INIT;
    cfg.kernel_path = dev->kernel_path;
    facl_context *ctx = NULL;
    facl_status st = facl_context_wrap_with_config(dev->cl_ctx, dev->device, &cfg, &ctx);
    if (st != FACL_SUCCESS) {
        set_note(r, TUNE_ERROR, "context", facl_last_error());
        return;
    }
    char tuning[4096], state[32], note[320];
    st = facl_context_tuning(ctx, tuning, sizeof tuning, NULL);
    tool_kv_get(tuning, "override", state, sizeof state);
    tool_kv_get(tuning, "note", note, sizeof note);
    if (st != FACL_SUCCESS || strcmp(state, "applied") != 0) {
        set_note(r, TUNE_REJECTED, "the library did not apply it",
                 st != FACL_SUCCESS ? facl_last_error() : note);
    } else if (verify(o, ctx, r) == 0) {
        work_args w = {ctx, dev, {o->dtype, o->hdim, o->seqlen, o->batch, o->heads, o->causal, 0, -1}};
        const bench_reps policy = {o->reps, o->quick ? 0.2 : 1.0, 3, o->quick ? 10 : 50};
        bench_timing timing;
        char err[256] = "";
        if (bench_time(&dev->timer, work, &w, &policy, &timing, err, sizeof err) != 0) {
            set_note(r, TUNE_ERROR, "timing", err);
        } else {
            r->state = TUNE_OK;
            r->median_ms = timing.median_ms;
            r->reps = timing.reps;
        }
    }
    facl_context_free(ctx);
}
