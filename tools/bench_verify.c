/* Baseline-vs-facl sanity check (see bench_verify.h). facl reads the baseline's
 * (batch, heads, seqlen, d) buffers through strided (batch, seqlen, heads, d) views, so
 * both work on the very same bytes. */
#include "bench_verify.h"

#include <math.h>
#include <stdlib.h>

#include "bench_buffers.h"
#include "bench_devices.h"

/* Beyond rounding: fp32 scores agree to ~1e-6; the fp16 baseline rounds S and P to fp16
 * (relative 2^-11 each), which moves outputs of magnitude ~0.1 by ~1e-3. */
static double tolerance(facl_dtype dtype) { return dtype == FACL_DTYPE_F32 ? 1e-4 : 2e-2; }

static facl_tensor bhsd_view(cl_mem buf, facl_dtype dtype, const bench_config *c)
{
    const int64_t shape[4] = {c->batch, c->heads, c->seqlen, c->hdim};
    facl_tensor t = facl_tensor_contiguous(buf, dtype, 4, shape);
    /* logical (batch, seqlen, heads, d) over memory ordered (batch, heads, seqlen, d) */
    t.shape[1] = c->seqlen;
    t.shape[2] = c->heads;
    t.stride[1] = c->hdim;
    t.stride[2] = (int64_t)c->seqlen * c->hdim;
    return t;
}

static int run_both(bench_session *s, const bench_config *c, cl_mem q, cl_mem k, cl_mem v,
                    cl_mem out_ours, cl_mem out_base, cl_mem scores, char *err, size_t err_size)
{
    facl_tensor tq = bhsd_view(q, c->dtype, c), tk = bhsd_view(k, c->dtype, c);
    facl_tensor tv = bhsd_view(v, c->dtype, c), to = bhsd_view(out_ours, c->dtype, c);
    facl_attn_options opts = facl_attn_options_default();
    opts.causal = c->causal;
    facl_status st = facl_fwd(s->ctx, s->queue, &tq, &tk, &tv, &to, NULL, &opts, 0, NULL, NULL);
    if (st != FACL_SUCCESS) {
        snprintf(err, err_size, "facl: %s: %s", facl_status_string(st), facl_last_error());
        return -1;
    }
    cl_event last = NULL;
    if (bench_baseline_enqueue(s->baseline, s->queue, c, q, k, v, out_base, scores, &last, err,
                               err_size) != 0)
        return -1;
    clReleaseEvent(last);
    cl_int e = clFinish(s->queue);
    if (e != CL_SUCCESS) {
        snprintf(err, err_size, "clFinish: %s", tool_cl_error_name(e));
        return -1;
    }
    return 0;
}

int bench_verify_baseline(bench_session *s, facl_dtype dtype, int causal, int hdim, FILE *f)
{
    char why[160];
    if (!s->baseline || !bench_baseline_supports(s->baseline, dtype, why, sizeof why)) return 0;
    bench_config c = {dtype, hdim, 128, 2, 2, causal, 0, -1};
    size_t n = (size_t)c.batch * c.heads * c.seqlen * c.hdim;
    size_t ns = (size_t)c.batch * c.heads * c.seqlen * c.seqlen;
    cl_context cl = facl_context_cl_context(s->ctx);
    cl_int e = CL_SUCCESS;
    cl_mem q = NULL, k = NULL, v = NULL, oo = NULL, ob = NULL, sc = NULL;
    q = tool_random_buffer(cl, s->queue, dtype, n, 11, &e);
    if (e == CL_SUCCESS) k = tool_random_buffer(cl, s->queue, dtype, n, 12, &e);
    if (e == CL_SUCCESS) v = tool_random_buffer(cl, s->queue, dtype, n, 13, &e);
    if (e == CL_SUCCESS) oo = tool_zero_buffer(cl, s->queue, dtype, n, &e);
    if (e == CL_SUCCESS) ob = tool_zero_buffer(cl, s->queue, dtype, n, &e);
    if (e == CL_SUCCESS) sc = tool_zero_buffer(cl, s->queue, dtype, ns, &e);

    char err[256] = "";
    int bad = 1;
    float *a = NULL, *b = NULL;
    if (e != CL_SUCCESS) {
        snprintf(err, sizeof err, "buffers: %s", tool_cl_error_name(e));
    } else if (run_both(s, &c, q, k, v, oo, ob, sc, err, sizeof err) == 0) {
        a = tool_read_floats(s->queue, oo, dtype, 0, n, &e);
        if (a) b = tool_read_floats(s->queue, ob, dtype, 0, n, &e);
        if (!b) snprintf(err, sizeof err, "read back: %s", tool_cl_error_name(e));
    }
    fprintf(f, "check: clblast vs facl, %s causal %s, b=%d h=%d s=%d d=%d: ", tool_dtype_name(dtype),
            causal ? "on" : "off", c.batch, c.heads, c.seqlen, c.hdim);
    if (a && b) {
        double worst = 0.0;
        int nan = 0;
        for (size_t i = 0; i < n; ++i) {
            double d = fabs((double)a[i] - (double)b[i]);
            if (isnan(d)) nan = 1;
            if (d > worst) worst = d;
        }
        bad = nan || worst > tolerance(dtype);
        fprintf(f, "max |diff| = %.2e (%s, tolerance %.0e)\n", worst,
                nan ? "NaN: MISMATCH" : bad ? "MISMATCH" : "ok", tolerance(dtype));
    } else {
        fprintf(f, "ERROR %s\n", err);
    }
    free(a);
    free(b);
    cl_mem all[] = {q, k, v, oo, ob, sc};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (all[i]) clReleaseMemObject(all[i]);
    return bad;
}
