/* facl-bench --bwd: buffers, the check before timing, timing and output (see bench_bwd.h). */
#include "bench_bwd.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_buffers.h"
#include "bench_devices.h"
#include "bench_json.h"
#include "bench_timing.h"
#include "bwd_ref.h"
#include "compare.h"
#include "numeric.h"
#include "reference.h"
#include "tool_util.h"

#define BWD_TIMING \
    "median of profiling-event spans (stamp kernel end to the call's last command end) after a " \
    "warm-up; facl_bwd with a caller workspace made once per point (facl_bwd_workspace_size)"
#define BWD_FLOPS "bwd_tflops = 2.5 * 4 * batch * seqlen^2 * heads * hdim (halved when causal) / bwd_ms"

static const char *state_name(bench_state st)
{
    switch (st) {
    case BENCH_OK: return "ok";
    case BENCH_NA: return "n/a";
    case BENCH_UNAVAILABLE: return "unavailable";
    case BENCH_ERROR: return "error";
    }
    return "?";
}

/* ------------------------------------------------------------------ buffers */

/* The buffers of one dtype: every point holds tokens * 2048 elements per tensor, so
 * they are made once per dtype; lse and the workspace follow the point's heads. */
typedef struct bwd_buffers {
    int valid;
    facl_dtype dtype;
    cl_mem q, k, v, dout, out, dq, dk, dv, lse;
    size_t lse_floats;
} bwd_buffers;

static void release_buffers(bwd_buffers *b)
{
    cl_mem all[] = {b->q, b->k, b->v, b->dout, b->out, b->dq, b->dk, b->dv, b->lse};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (all[i]) clReleaseMemObject(all[i]);
    memset(b, 0, sizeof *b);
}

static int is_allocation_error(cl_int e)
{
    return e == CL_MEM_OBJECT_ALLOCATION_FAILURE || e == CL_OUT_OF_RESOURCES ||
           e == CL_OUT_OF_HOST_MEMORY || e == CL_INVALID_BUFFER_SIZE;
}

static cl_int make_buffers(bench_session *s, bwd_buffers *b, facl_dtype dt)
{
    if (b->valid && b->dtype == dt) return CL_SUCCESS;
    release_buffers(b);
    const bench_options *o = s->opts;
    const size_t n = (size_t)o->tokens * BENCH_HIDDEN;
    int min_hdim = FACL_MAX_HEAD_DIM;
    for (int i = 0; i < o->n_hdims; ++i)
        if (o->hdims[i] < min_hdim) min_hdim = o->hdims[i];
    cl_context cl = facl_context_cl_context(s->ctx);
    cl_int e = CL_SUCCESS;
    b->q = tool_random_buffer(cl, s->queue, dt, n, 11, &e);
    if (e == CL_SUCCESS) b->k = tool_random_buffer(cl, s->queue, dt, n, 12, &e);
    if (e == CL_SUCCESS) b->v = tool_random_buffer(cl, s->queue, dt, n, 13, &e);
    if (e == CL_SUCCESS) b->dout = tool_random_buffer(cl, s->queue, dt, n, 14, &e);
    if (e == CL_SUCCESS) b->out = tool_zero_buffer(cl, s->queue, dt, n, &e);
    if (e == CL_SUCCESS) b->dq = tool_zero_buffer(cl, s->queue, dt, n, &e);
    if (e == CL_SUCCESS) b->dk = tool_zero_buffer(cl, s->queue, dt, n, &e);
    if (e == CL_SUCCESS) b->dv = tool_zero_buffer(cl, s->queue, dt, n, &e);
    b->lse_floats = n / (size_t)min_hdim;
    if (e == CL_SUCCESS) b->lse = tool_zero_buffer(cl, s->queue, FACL_DTYPE_F32, b->lse_floats, &e);
    if (e != CL_SUCCESS) {
        release_buffers(b);
        return e;
    }
    b->valid = 1;
    b->dtype = dt;
    return CL_SUCCESS;
}

/* ------------------------------------------------------------------ the calls */

typedef struct bwd_work {
    bench_session *s;
    const bench_config *cfg;
    const bwd_buffers *b;
    cl_mem ws;
    uint64_t ws_bytes;
} bwd_work;

typedef struct bwd_tensors {
    facl_tensor q, k, v, out, dout, dq, dk, dv, lse, ws;
    facl_attn_options o;
} bwd_tensors;

static void tensors(const bwd_work *w, bwd_tensors *t)
{
    const bench_config *c = w->cfg;
    const int64_t x4[4] = {c->batch, c->seqlen, c->heads, c->hdim};
    const int64_t l3[3] = {c->batch, c->heads, c->seqlen}, w1[1] = {(int64_t)(w->ws_bytes / 4)};
    const facl_dtype dt = c->dtype;
    t->q = facl_tensor_contiguous(w->b->q, dt, 4, x4);
    t->k = facl_tensor_contiguous(w->b->k, dt, 4, x4);
    t->v = facl_tensor_contiguous(w->b->v, dt, 4, x4);
    t->out = facl_tensor_contiguous(w->b->out, dt, 4, x4);
    t->dout = facl_tensor_contiguous(w->b->dout, dt, 4, x4);
    t->dq = facl_tensor_contiguous(w->b->dq, dt, 4, x4);
    t->dk = facl_tensor_contiguous(w->b->dk, dt, 4, x4);
    t->dv = facl_tensor_contiguous(w->b->dv, dt, 4, x4);
    t->lse = facl_tensor_contiguous(w->b->lse, FACL_DTYPE_F32, 3, l3);
    t->ws = facl_tensor_contiguous(w->ws, FACL_DTYPE_F32, 1, w1);
    t->o = facl_attn_options_default();
    t->o.causal = c->causal;
    t->o.deterministic = c->deterministic;
}

static int enqueue_bwd(void *arg, cl_command_queue queue, cl_event *last, char *err,
                       size_t err_size)
{
    const bwd_work *w = arg;
    bwd_tensors t;
    tensors(w, &t);
    facl_status st = facl_bwd(w->s->ctx, queue, &t.dout, &t.q, &t.k, &t.v, &t.out, &t.lse, &t.dq,
                              &t.dk, &t.dv, &t.o, w->ws ? &t.ws : NULL, 0, NULL, last);
    if (st != FACL_SUCCESS) {
        snprintf(err, err_size, "facl_bwd: %s: %s", facl_status_string(st), facl_last_error());
        return -1;
    }
    return 0;
}

/* The forward that gives the backward its out and lse (untimed). */
static int run_forward(const bwd_work *w, char *err, size_t err_size)
{
    bwd_tensors t;
    tensors(w, &t);
    facl_status st = facl_fwd(w->s->ctx, w->s->queue, &t.q, &t.k, &t.v, &t.out, &t.lse, &t.o, 0,
                              NULL, NULL);
    if (st != FACL_SUCCESS) {
        snprintf(err, err_size, "facl_fwd: %s: %s", facl_status_string(st), facl_last_error());
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ the check */

/* Reads `count` elements of dt at element `first` of buf as floats. */
static cl_int read_floats(cl_command_queue queue, cl_mem buf, facl_dtype dt, size_t first,
                          size_t count, unsigned char *raw, float *x)
{
    const size_t es = facl_dtype_size(dt);
    cl_int e = clEnqueueReadBuffer(queue, buf, CL_TRUE, first * es, count * es, raw, 0, NULL, NULL);
    for (size_t i = 0; e == CL_SUCCESS && i < count; ++i) x[i] = testkit_load(dt, raw, i);
    return e;
}

/* dq of 3 rows of the first sequence in the first and last head, each as a problem of its
 * own for the test kit's reference: one query over the keys it sees (bottom-right causal
 * with one query and i + 1 keys is exactly row i of the square causal mask). */
static int check_point(const bwd_work *w, bwd_row *row, char *err, size_t err_size)
{
    const bench_config *c = w->cfg;
    const facl_dtype dt = c->dtype;
    const size_t S = (size_t)c->seqlen, H = (size_t)c->heads, D = (size_t)c->hdim;
    const size_t es = facl_dtype_size(dt);
    const size_t rows_i[3] = {0, S / 2, S - 1};
    const size_t heads[2] = {0, H - 1};
    cl_command_queue queue = w->s->queue;
    unsigned char *raw = malloc(S * H * D * es);
    float *k = malloc(S * D * sizeof *k), *v = malloc(S * D * sizeof *v);
    float *kh = malloc(S * H * D * sizeof *kh);
    float got[6 * FACL_MAX_HEAD_DIM], low[6 * FACL_MAX_HEAD_DIM];
    double ref[6 * FACL_MAX_HEAD_DIM];
    double *dk = malloc(S * D * sizeof *dk), *dv = malloc(S * D * sizeof *dv);
    float *ldk = malloc(S * D * sizeof *ldk), *ldv = malloc(S * D * sizeof *ldv);
    float *vh = malloc(S * H * D * sizeof *vh);
    int rc = -1;
    if (!raw || !k || !v || !kh || !vh || !dk || !dv || !ldk || !ldv) {
        snprintf(err, err_size, "check: out of host memory");
        goto done;
    }
    /* the first sequence's keys and values, every head */
    cl_int e = read_floats(queue, w->b->k, dt, 0, S * H * D, raw, kh);
    if (e == CL_SUCCESS) e = read_floats(queue, w->b->v, dt, 0, S * H * D, raw, vh);
    size_t n = 0;
    for (int hi = 0; hi < 2 && e == CL_SUCCESS; ++hi) {
        const size_t h = heads[hi];
        for (size_t j = 0; j < S; ++j)
            for (size_t d = 0; d < D; ++d) {
                k[j * D + d] = kh[(j * H + h) * D + d];
                v[j * D + d] = vh[(j * H + h) * D + d];
            }
        for (int ri = 0; ri < 3 && e == CL_SUCCESS; ++ri) {
            const size_t i = rows_i[ri], at = (i * H + h) * D;
            float q[FACL_MAX_HEAD_DIM], dout[FACL_MAX_HEAD_DIM], out[FACL_MAX_HEAD_DIM], lse;
            e = read_floats(queue, w->b->q, dt, at, D, raw, q);
            if (e == CL_SUCCESS) e = read_floats(queue, w->b->dout, dt, at, D, raw, dout);
            if (e == CL_SUCCESS) e = read_floats(queue, w->b->out, dt, at, D, raw, out);
            if (e == CL_SUCCESS) e = read_floats(queue, w->b->dq, dt, at, D, raw, got + n);
            if (e == CL_SUCCESS)
                e = clEnqueueReadBuffer(queue, w->b->lse, CL_TRUE, (h * S + i) * sizeof lse,
                                        sizeof lse, &lse, 0, NULL, NULL);
            if (e != CL_SUCCESS) break;
            const int32_t keys = c->causal ? (int32_t)i + 1 : (int32_t)S;
            const int32_t cu_q[2] = {0, 1}, cu_k[2] = {0, keys};
            ref_problem p;
            memset(&p, 0, sizeof p);
            p.batch = p.heads_q = p.heads_kv = 1;
            p.head_dim = (int)D;
            p.cu_q = cu_q;
            p.cu_k = cu_k;
            p.scale = (float)(1.0 / sqrt((double)D));
            p.window_left = p.window_right = -1; /* the keys passed are those the row sees */
            double dq64[FACL_MAX_HEAD_DIM];
            ref_attention_bwd_f64(&p, q, k, v, dout, dq64, dk, dv);
            for (size_t d = 0; d < D; ++d) ref[n + d] = dq64[d];
            if (dt != FACL_DTYPE_F32)
                ref_attention_bwd_lowp(&p, dt, q, k, v, out, &lse, dout, low + n, ldk, ldv);
            n += D;
        }
    }
    if (e != CL_SUCCESS) {
        snprintf(err, err_size, "check: read back: %s", tool_cl_error_name(e));
        goto done;
    }
    cmp_result r = cmp_check(dt, got, ref, dt != FACL_DTYPE_F32 ? low : NULL, n);
    row->checked = 1;
    row->check_pass = r.pass;
    row->check_err = dt == FACL_DTYPE_F32 ? r.rel_l2 : r.max_err;
    row->check_bound = r.bound;
    if (!r.pass) {
        char line[160];
        cmp_format(&r, line, sizeof line);
        snprintf(err, err_size, "check FAILED: dq of 6 rows: %s", line);
        goto done;
    }
    rc = 0;
done:
    free(raw), free(k), free(v), free(kh), free(vh), free(dk), free(dv), free(ldk), free(ldv);
    return rc;
}

/* ------------------------------------------------------------------ one point */

static void measure(bench_session *s, bwd_buffers *b, bwd_row *row)
{
    const bench_config *c = &row->cfg;
    bench_measure *m = &row->m;
    double t0 = tool_now_seconds();
    const size_t n = (size_t)c->batch * c->seqlen * c->heads * c->hdim;
    const uint64_t tensor_bytes = (uint64_t)n * facl_dtype_size(c->dtype);
    bwd_work w = {s, c, b, NULL, 0};
    cl_int e = make_buffers(s, b, c->dtype);
    if (e != CL_SUCCESS) {
        m->state = is_allocation_error(e) ? BENCH_NA : BENCH_ERROR;
        snprintf(m->note, sizeof m->note, "%sbuffers of 8 x %llu bytes: %s",
                 m->state == BENCH_NA ? "skip: " : "", (unsigned long long)tensor_bytes,
                 tool_cl_error_name(e));
        goto done;
    }
    if (facl_bwd_workspace_size(s->ctx, (int64_t)c->batch * c->seqlen, c->heads, c->hdim,
                                c->deterministic, &w.ws_bytes) != FACL_SUCCESS) {
        m->state = BENCH_ERROR;
        snprintf(m->note, sizeof m->note, "facl_bwd_workspace_size: %s", facl_last_error());
        goto done;
    }
    if (w.ws_bytes >= 4) {
        w.ws = clCreateBuffer(facl_context_cl_context(s->ctx), CL_MEM_READ_WRITE,
                              (size_t)w.ws_bytes, NULL, &e);
        if (e != CL_SUCCESS) {
            m->state = is_allocation_error(e) ? BENCH_NA : BENCH_ERROR;
            snprintf(m->note, sizeof m->note, "%sworkspace of %llu bytes: %s",
                     m->state == BENCH_NA ? "skip: " : "", (unsigned long long)w.ws_bytes,
                     tool_cl_error_name(e));
            goto done;
        }
    }
    m->mem_bytes = 8 * tensor_bytes + b->lse_floats * 4 + w.ws_bytes;
    char err[192] = "";
    if (run_forward(&w, err, sizeof err) != 0) {
        m->state = BENCH_ERROR;
        snprintf(m->note, sizeof m->note, "%s", err);
        goto done;
    }
    if (s->opts->verify) {
        cl_event ev = NULL;
        if (enqueue_bwd(&w, s->queue, &ev, err, sizeof err) != 0 ||
            (e = clWaitForEvents(1, &ev)) != CL_SUCCESS || check_point(&w, row, err, sizeof err) != 0) {
            if (!err[0]) snprintf(err, sizeof err, "facl_bwd: %s", tool_cl_error_name(e));
            m->state = BENCH_ERROR;
            snprintf(m->note, sizeof m->note, "%s", err);
            if (ev) clReleaseEvent(ev);
            goto done;
        }
        clReleaseEvent(ev);
    }
    bench_timing t;
    if (bench_time(&s->timer, enqueue_bwd, &w, &s->reps, &t, err, sizeof err) != 0) {
        m->state = BENCH_ERROR;
        snprintf(m->note, sizeof m->note, "%s", err);
        goto done;
    }
    m->state = BENCH_OK;
    m->median_ms = t.median_ms;
    m->min_ms = t.min_ms;
    m->max_ms = t.max_ms;
    m->reps = t.reps;
    double flops = 2.5 * bench_attention_flops(c->batch, c->seqlen, c->seqlen, c->heads, c->hdim,
                                               c->causal);
    m->tflops = t.median_ms > 0 ? flops / (t.median_ms * 1e-3) / 1e12 : 0.0;
done:
    if (w.ws) clReleaseMemObject(w.ws);
    m->wall_s = tool_now_seconds() - t0;
}

/* ------------------------------------------------------------------ output */

static void print_header(FILE *f, const bench_session *s, const char *selector)
{
    const facl_device_info *d = &s->info;
    fprintf(f, "facl-bench %s on %s: %s (%s, driver %s)\n", facl_version_string(), selector,
            d->device_name, d->platform_name, d->driver_version);
    fprintf(f, "backward: facl_bwd, %ld tokens (batch = tokens / seqlen), heads * hdim = %d, %s kernel\n",
            s->opts->tokens, BENCH_HIDDEN, d->kernel_path);
    fprintf(f, "%s\n%s\n", BWD_FLOPS, BWD_TIMING);
    fprintf(f, "det: opts.deterministic (0, the default: atomic dq where the tensor-core kernels "
               "run; 1: bitwise reproducible)\n");
    fprintf(f, "check: %s\n\n",
            s->opts->verify ? "before timing, dq of 6 rows (3 positions of the first sequence in "
                              "the first and last head) vs the float64 reference by SPEC.md's "
                              "rule (error/bound)"
                            : "off (--no-verify)");
    fprintf(f, "%-5s %4s %6s %7s %5s %5s %3s | %10s %11s %5s | %s\n", "dtype", "hdim", "causal",
            "seqlen", "batch", "heads", "det", "bwd ms", "bwd TFLOP/s", "runs", "check");
}

static void print_row(FILE *f, const bwd_row *r)
{
    const bench_config *c = &r->cfg;
    fprintf(f, "%-5s %4d %6s %7d %5d %5d %3d | ", tool_dtype_name(c->dtype), c->hdim,
            c->causal ? "on" : "off", c->seqlen, c->batch, c->heads, c->deterministic);
    if (r->m.state != BENCH_OK) {
        fprintf(f, "%s%s\n", r->m.state == BENCH_ERROR ? "ERROR " : "", r->m.note);
    } else {
        fprintf(f, "%10.3f %11.4f %5d | ", r->m.median_ms, r->m.tflops, r->m.reps);
        if (r->checked)
            fprintf(f, "%.1e/%.1e\n", r->check_err, r->check_bound);
        else
            fputs("-\n", f);
    }
    fflush(f);
}

static void json_row(json_writer *w, const bwd_row *r)
{
    const bench_config *c = &r->cfg;
    json_begin_object(w, NULL);
    json_string(w, "kind", "bwd");
    json_string(w, "impl", "facl");
    json_string(w, "api", "facl_bwd");
    json_string(w, "dtype", tool_dtype_name(c->dtype));
    json_int(w, "hdim", c->hdim);
    json_int(w, "seqlen", c->seqlen);
    json_int(w, "batch", c->batch);
    json_int(w, "heads", c->heads);
    json_bool(w, "causal", c->causal);
    json_bool(w, "deterministic", c->deterministic);
    json_string(w, "status", state_name(r->m.state));
    if (r->m.state == BENCH_OK) {
        json_number(w, "bwd_ms", r->m.median_ms);
        json_number(w, "bwd_ms_min", r->m.min_ms);
        json_number(w, "bwd_ms_max", r->m.max_ms);
        json_int(w, "reps", r->m.reps);
        json_number(w, "bwd_tflops", r->m.tflops);
    } else {
        json_null(w, "bwd_ms");
        json_null(w, "bwd_tflops");
        json_string(w, "note", r->m.note);
    }
    if (r->checked) {
        json_number(w, "check_error", r->check_err);
        json_number(w, "check_bound", r->check_bound);
    } else {
        json_null(w, "check_error");
    }
    json_uint(w, "mem_bytes", (unsigned long long)r->m.mem_bytes);
    json_number(w, "wall_s", r->m.wall_s);
    json_end_object(w);
}

static int write_json(const char *path, const bench_session *s, const char *selector,
                      const bwd_row *rows, size_t n)
{
    FILE *f = tool_open_output(path);
    if (!f) return -1;
    json_writer w;
    json_init(&w, f);
    json_begin_object(&w, NULL);
    json_string(&w, "tool", "facl-bench");
    json_string(&w, "version", facl_version_string());
    json_string(&w, "mode", "bwd");
    json_begin_object(&w, "device");
    json_string(&w, "selector", selector);
    json_string(&w, "platform", s->info.platform_name);
    json_string(&w, "name", s->info.device_name);
    json_string(&w, "driver", s->info.driver_version);
    json_string(&w, "type", tool_device_type_name(s->info.device_type));
    json_string(&w, "kernel_path", s->info.kernel_path);
    json_uint(&w, "global_mem", (unsigned long long)s->info.global_mem);
    json_uint(&w, "max_alloc", (unsigned long long)s->info.max_alloc);
    json_end_object(&w);
    json_int(&w, "tokens", s->opts->tokens);
    json_bool(&w, "verified", s->opts->verify);
    json_string(&w, "timing", BWD_TIMING);
    json_string(&w, "flops", BWD_FLOPS);
    json_begin_array(&w, "rows");
    for (size_t i = 0; i < n; ++i) json_row(&w, &rows[i]);
    json_end_array(&w);
    json_end_object(&w);
    json_finish(&w);
    return tool_close_output(f, path);
}

static int write_csv(const char *path, const bwd_row *rows, size_t n)
{
    FILE *f = tool_open_output(path);
    if (!f) return -1;
    fputs("kind,impl,dtype,hdim,seqlen,batch,heads,causal,deterministic,status,bwd_ms,bwd_tflops,"
          "reps,check_error,check_bound,mem_bytes,note\n",
          f);
    for (size_t i = 0; i < n; ++i) {
        const bwd_row *r = &rows[i];
        const bench_config *c = &r->cfg;
        fprintf(f, "bwd,facl,%s,%d,%d,%d,%d,%s,%s,%s,", tool_dtype_name(c->dtype), c->hdim,
                c->seqlen, c->batch, c->heads, c->causal ? "true" : "false",
                c->deterministic ? "true" : "false", state_name(r->m.state));
        if (r->m.state == BENCH_OK)
            fprintf(f, "%.6g,%.6g,%d,", r->m.median_ms, r->m.tflops, r->m.reps);
        else
            fputs(",,,", f);
        if (r->checked)
            fprintf(f, "%.6g,%.6g,", r->check_err, r->check_bound);
        else
            fputs(",,", f);
        fprintf(f, "%llu,\"", (unsigned long long)r->m.mem_bytes);
        for (const char *p = r->m.note; *p; ++p) {
            if (*p == '"') fputc('"', f);
            fputc(*p, f);
        }
        fputs("\"\n", f);
    }
    return tool_close_output(f, path);
}

/* ------------------------------------------------------------------ the mode */

int bench_bwd_run(bench_session *s, const char *selector, FILE *table)
{
    const bench_options *o = s->opts;
    size_t max = (size_t)o->n_dtypes * o->n_hdims * o->n_causal * o->n_seqlens * o->n_deterministic;
    bench_config *configs = calloc(max ? max : 1, sizeof *configs);
    bwd_row *rows = calloc(max ? max : 1, sizeof *rows);
    if (!configs || !rows) {
        fprintf(stderr, "facl-bench: out of host memory\n");
        free(configs);
        free(rows);
        return 1;
    }
    size_t n = bench_grid_configs(o, configs, max);
    int rc = 0;
    if (n == 0) {
        fprintf(stderr, "facl-bench: no point of the grid has seqlen <= --tokens %ld\n", o->tokens);
        rc = 2;
        goto done;
    }
    print_header(table, s, selector);
    bwd_buffers b;
    memset(&b, 0, sizeof b);
    for (size_t i = 0; i < n; ++i) {
        rows[i].cfg = configs[i];
        measure(s, &b, &rows[i]);
        print_row(table, &rows[i]);
        if (o->progress) {
            const bench_config *c = &rows[i].cfg;
            fprintf(stderr, "[%zu/%zu] bwd %s d=%d s=%d causal %s: %.1f s (wall, incl. setup and check)\n",
                    i + 1, n, tool_dtype_name(c->dtype), c->hdim, c->seqlen, c->causal ? "on" : "off",
                    rows[i].m.wall_s);
        }
        if (rows[i].m.state == BENCH_ERROR) rc = 1;
    }
    release_buffers(&b);
    if (o->json_path && write_json(o->json_path, s, selector, rows, n) != 0) rc = 1;
    if (o->csv_path && write_csv(o->csv_path, rows, n) != 0) rc = 1;
done:
    free(configs);
    free(rows);
    return rc;
}
