/*
 * The self-test on one device: create a context (an error is recorded in place and the
 * caller goes on with the next device), print what the library uses there (kernel path,
 * tuning entry, cache), run the correctness checks and the speed figures (not with
 * --info), then read the program cache counters, which tell whether this run's programs
 * came from the disk cache or were compiled.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "selftest.h"
#include "tool_util.h"

/* One line on stderr, rewritten in place on a terminal, or a plain line with
 * --progress into a file. */
static void progress(const selftest_options *o, const char *fmt_what, const tool_device *dev,
                     size_t i, size_t n, const char *name)
{
    if (!o->progress) return;
    if (o->progress > 1)
        fprintf(stderr, "\r\033[K[%s] %s %zu/%zu: %.90s", dev->selector, fmt_what, i + 1, n, name);
    else
        fprintf(stderr, "[%s] %s %zu/%zu: %s\n", dev->selector, fmt_what, i + 1, n, name);
    fflush(stderr);
}

static void progress_clear(const selftest_options *o)
{
    if (o->progress > 1) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
}

/* The output nearest its bound decides what the row shows. */
static void judge(const fwd_case *c, const case_result *r, selftest_check_result *out)
{
    const struct {
        const char *what;
        const cmp_result *cmp;
        facl_dtype rule; /* attn_probs are fp32 whatever the storage: fp32 rule */
    } outputs[3] = {{"out", &r->out, c->dtype},
                    {"lse", &r->lse, c->dtype},
                    {"probs", &r->probs, FACL_DTYPE_F32}};
    double worst_ratio = -1.0;
    for (int i = 0; i < 3; ++i) {
        const cmp_result *m = outputs[i].cmp;
        if (m->bound == 0.0 && m->pass) continue; /* not requested */
        int rel = outputs[i].rule == FACL_DTYPE_F32;
        double value = rel ? m->rel_l2 : m->max_err;
        double ratio = m->pass ? value / m->bound : 1e300; /* a failure always shows */
        if (ratio > worst_ratio) {
            worst_ratio = ratio;
            out->worst = outputs[i].what;
            out->measure = rel ? "relL2" : "max|e|";
            out->error = value;
            out->bound = m->bound;
        }
    }
    if (!out->worst) {
        /* the call failed before anything was compared */
        out->worst = "-";
        out->measure = "-";
        out->error = out->bound = 0.0;
    }
}

/* For the smoke test of the exit status: a result the tool must report as a failure,
 * exactly as if the device had computed it. */
static void inject_failure(selftest_check_result *out)
{
    out->pass = 0;
    out->error = out->bound > 0 ? 2.0 * out->bound : 1.0;
    snprintf(out->detail, sizeof out->detail, "failure injected by FACL_SELFTEST_INJECT_FAILURE");
}

static void run_checks(const selftest_options *o, facl_context *ctx,
                       selftest_device_report *rep, FILE *f)
{
    fwd_case cases[SELFTEST_MAX_CHECKS];
    kv_case kv[SELFTEST_MAX_KV_CHECKS];
    bwd_check bwd[SELFTEST_MAX_BWD_CHECKS];
    size_t n = selftest_checks(o->quick, cases, SELFTEST_MAX_CHECKS);
    size_t n_kv = selftest_kv_checks(o->quick, kv, SELFTEST_MAX_KV_CHECKS);
    size_t n_bwd = selftest_bwd_checks(o->quick, bwd, SELFTEST_MAX_BWD_CHECKS);
    const size_t total = n + n_kv + n_bwd;
    rep->checks = calloc(total ? total : 1, sizeof *rep->checks);
    if (!rep->checks) {
        snprintf(rep->error, sizeof rep->error, "out of host memory");
        return;
    }
    if (f) selftest_print_check_header(f);
    for (size_t i = 0; i < n; ++i) {
        selftest_check_result *out = &rep->checks[rep->n_checks++];
        fwd_case_name(&cases[i], out->name, sizeof out->name);
        progress(o, "check", &rep->dev, i, total, out->name);
        case_result r;
        run_fwd_case(ctx, &cases[i], &r);
        out->family = case_layout_name(cases[i].layout);
        out->dtype = cases[i].dtype;
        out->pass = r.pass;
        out->ms = r.seconds * 1e3;
        snprintf(out->detail, sizeof out->detail, "%s", r.detail);
        judge(&cases[i], &r, out);
        if (o->inject_failure && i == 0) inject_failure(out);
        if (!out->pass) rep->n_failed++;
        progress_clear(o);
        if (f) selftest_print_check(f, rep, out);
    }
    /* the KV-cache family (facl_fwd_kvcache), judged by the same rule */
    for (size_t i = 0; i < n_kv; ++i) {
        selftest_check_result *out = &rep->checks[rep->n_checks++];
        kv_case_name(&kv[i], out->name, sizeof out->name);
        progress(o, "check", &rep->dev, n + i, total, out->name);
        selftest_run_kv_case(ctx, &kv[i], out);
        if (o->inject_failure && n == 0 && i == 0) inject_failure(out);
        if (!out->pass) rep->n_failed++;
        progress_clear(o);
        if (f) selftest_print_check(f, rep, out);
    }
    /* the backward (facl_bwd and its packed/varlen forms): dq, dk, dv by the same rule */
    for (size_t i = 0; i < n_bwd; ++i) {
        selftest_check_result *out = &rep->checks[rep->n_checks++];
        bwd_check_name(&bwd[i], out->name, sizeof out->name);
        progress(o, "check", &rep->dev, n + n_kv + i, total, out->name);
        selftest_run_bwd_case(ctx, &bwd[i], out);
        if (!out->pass) rep->n_failed++;
        progress_clear(o);
        if (f) selftest_print_check(f, rep, out);
    }
}

static void run_speed(const selftest_options *o, facl_context *ctx, selftest_device_report *rep,
                      FILE *f)
{
    static const case_layout families[SELFTEST_FAMILIES - 1] = {
        CASE_DENSE,  CASE_QKVPACKED,        CASE_KVPACKED,
        CASE_VARLEN, CASE_VARLEN_QKVPACKED, CASE_VARLEN_KVPACKED};
    for (size_t i = 0; i < SELFTEST_FAMILIES; ++i) {
        const int bwd = i == SELFTEST_FAMILIES - 1; /* the backward comes last */
        progress(o, "speed", &rep->dev, i, SELFTEST_FAMILIES,
                 bwd ? "bwd" : case_layout_name(families[i]));
        selftest_speed_result *s = &rep->speed[rep->n_speed++];
        if (bwd)
            selftest_speed_bwd(ctx, o->quick, s);
        else
            selftest_speed(ctx, families[i], o->quick, s);
        if (!s->ok) rep->n_speed_failed++;
        progress_clear(o);
        if (f) selftest_print_speed(f, rep, s);
    }
}

int selftest_run_device(const selftest_options *o, const tool_device *dev,
                        selftest_device_report *rep)
{
    FILE *f = o->table ? stdout : NULL;
    memset(rep, 0, sizeof *rep);
    rep->dev = *dev;
    double t0 = tool_now_seconds();
    facl_context *ctx = NULL;
    facl_status st = facl_context_create(dev->selector, &ctx);
    if (st != FACL_SUCCESS) {
        snprintf(rep->error, sizeof rep->error, "context creation failed: %s: %s",
                 facl_status_string(st), facl_last_error());
    } else {
        rep->context_ok = 1;
        rep->info.struct_size = sizeof rep->info;
        st = facl_context_device_info(ctx, &rep->info);
        if (st != FACL_SUCCESS)
            snprintf(rep->error, sizeof rep->error, "facl_context_device_info: %s: %s",
                     facl_status_string(st), facl_last_error());
        else if ((st = facl_context_tuning(ctx, rep->tuning, sizeof rep->tuning, NULL)) !=
                 FACL_SUCCESS)
            snprintf(rep->error, sizeof rep->error, "facl_context_tuning: %s: %s",
                     facl_status_string(st), facl_last_error());
    }
    if (f) selftest_print_device_header(f, rep);
    if (ctx && !rep->error[0] && !o->info_only) {
        run_checks(o, ctx, rep, f);
        if (o->speed) run_speed(o, ctx, rep, f);
        rep->cache.struct_size = sizeof rep->cache;
        rep->have_cache = facl_context_cache_stats(ctx, &rep->cache) == FACL_SUCCESS;
    }
    facl_context_free(ctx);
    rep->seconds = tool_now_seconds() - t0;
    if (f) selftest_print_device_footer(f, rep);
    return !rep->error[0] && rep->n_failed == 0 && rep->n_speed_failed == 0;
}

void selftest_report_free(selftest_device_report *rep)
{
    free(rep->checks);
    rep->checks = NULL;
}
