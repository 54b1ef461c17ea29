/* facl-bench --decode: grid, buffers, the check before timing, timing (see bench_decode.h). */
#include "bench_decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_buffers.h"
#include "bench_devices.h"
#include "bench_timing.h"
#include "numeric.h"
#include "reference.h"
#include "tool_util.h"

uint64_t decode_kv_bytes(const decode_config *c)
{
    return 2ull * (uint64_t)c->batch * (uint64_t)c->kv_len * (uint64_t)c->heads_kv *
           (uint64_t)c->hdim * facl_dtype_size(c->dtype);
}

const char *decode_layout_name(decode_layout l)
{
    switch (l) {
    case DECODE_CONTIGUOUS: return "contiguous";
    case DECODE_PAGED: return "paged";
    case DECODE_FWD: return "fwd";
    }
    return "?";
}

size_t decode_grid(const bench_options *o, decode_config *out, size_t max)
{
    size_t n = 0;
    for (int t = 0; t < o->n_dtypes; ++t)
        for (int h = 0; h < o->n_hdims; ++h)
            for (int l = 0; l < o->n_kv_lens; ++l)
                for (int r = 0; r < o->n_kv_orders; ++r) {
                    decode_config c = {o->dtypes[t], o->hdims[h], o->kv_lens[l], o->batch,
                                       o->heads, o->heads_kv, DECODE_CONTIGUOUS, 0, 0,
                                       o->kv_orders[r]};
                    for (int p = 0; p < o->n_pages; ++p)
                        for (int s = 0; s < o->n_splits && n < max; ++s) {
                            c.layout = o->pages[p] ? DECODE_PAGED : DECODE_CONTIGUOUS;
                            c.page_size = o->pages[p];
                            c.num_splits = o->splits[s];
                            out[n++] = c;
                        }
                    if (o->forward_row && n < max) {
                        c.layout = DECODE_FWD;
                        c.page_size = 0;
                        c.num_splits = 0;
                        out[n++] = c;
                    }
                }
    return n;
}

/* ------------------------------------------------------------------ buffers */

/* The buffers of one (dtype, head dim, kv length): every layout of the group reads the
 * same k and v buffers, as a dense (batch, kv_len, heads_kv, d) cache or as pages
 * (num_blocks, page_size, heads_kv, d) through a table. */
typedef struct decode_buffers {
    int valid;
    facl_dtype dtype;
    int hdim, kv_len;
    cl_mem q, out, lse, k, v, seqlens;
    uint64_t kv_buffer_bytes, resident_bytes;
    bench_state state; /* BENCH_OK, or the state of every point of the group */
    char note[192];
} decode_buffers;

static void release_group(decode_buffers *b)
{
    cl_mem all[] = {b->q, b->out, b->lse, b->k, b->v, b->seqlens};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (all[i]) clReleaseMemObject(all[i]);
    memset(b, 0, sizeof *b);
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Rows of (heads_kv, d) that k and v need for every layout of the group. */
static uint64_t group_rows(const bench_options *o, int kv_len)
{
    uint64_t rows = (uint64_t)o->batch * (uint64_t)kv_len;
    for (int p = 0; p < o->n_pages; ++p) {
        if (!o->pages[p]) continue;
        uint64_t paged = (uint64_t)o->batch * (uint64_t)ceil_div(kv_len, o->pages[p]) *
                         (uint64_t)o->pages[p];
        if (paged > rows) rows = paged;
    }
    return rows;
}

/* N(0,1) draws, a period of PERIOD elements (a prime, so rows of any head dim do not
 * repeat in step) repeated over the buffer: a multi-GiB cache fills in seconds, not
 * minutes of host random numbers. */
#define PERIOD ((size_t)1048573)

static cl_mem tiled_random_buffer(cl_context ctx, cl_command_queue queue, facl_dtype dtype,
                                  size_t count, uint64_t seed, cl_int *err)
{
    size_t elt = facl_dtype_size(dtype);
    cl_mem buf = clCreateBuffer(ctx, CL_MEM_READ_WRITE, count * elt, NULL, err);
    if (*err != CL_SUCCESS) return NULL;
    size_t period = count < PERIOD ? count : PERIOD;
    unsigned char *host = malloc(period * elt);
    if (!host) {
        *err = CL_OUT_OF_HOST_MEMORY;
        clReleaseMemObject(buf);
        return NULL;
    }
    testkit_rng rng;
    testkit_rng_seed(&rng, seed);
    for (size_t i = 0; i < period; ++i)
        testkit_store(dtype, host, i, (float)testkit_rng_normal(&rng));
    for (size_t done = 0; done < count && *err == CL_SUCCESS; done += period) {
        size_t n = count - done < period ? count - done : period;
        *err = clEnqueueWriteBuffer(queue, buf, CL_FALSE, done * elt, n * elt, host, 0, NULL,
                                    NULL);
    }
    cl_int fin = clFinish(queue); /* the queued writes read `host` */
    if (*err == CL_SUCCESS) *err = fin;
    free(host);
    if (*err != CL_SUCCESS) {
        clReleaseMemObject(buf);
        return NULL;
    }
    return buf;
}

/* An allocation the device refused: the point does not fit (a skip), not a failure. */
static int is_allocation_error(cl_int e)
{
    return e == CL_MEM_OBJECT_ALLOCATION_FAILURE || e == CL_OUT_OF_RESOURCES ||
           e == CL_OUT_OF_HOST_MEMORY || e == CL_INVALID_BUFFER_SIZE;
}

static void ensure_group(bench_session *s, decode_buffers *b, const decode_config *c)
{
    if (b->valid && b->dtype == c->dtype && b->hdim == c->hdim && b->kv_len == c->kv_len) return;
    release_group(b);
    const bench_options *o = s->opts;
    b->valid = 1;
    b->dtype = c->dtype;
    b->hdim = c->hdim;
    b->kv_len = c->kv_len;
    b->state = BENCH_OK;
    size_t elt = facl_dtype_size(c->dtype);
    uint64_t kv_elems = group_rows(o, c->kv_len) * (uint64_t)c->heads_kv * (uint64_t)c->hdim;
    uint64_t q_elems = (uint64_t)c->batch * (uint64_t)c->heads * (uint64_t)c->hdim;
    b->kv_buffer_bytes = kv_elems * elt;
    b->resident_bytes = 2 * b->kv_buffer_bytes + 2 * q_elems * elt +
                        (uint64_t)c->batch * (uint64_t)c->heads * sizeof(float);
    char one[32], lim[32];
    if (b->kv_buffer_bytes > s->info.max_alloc || kv_elems > SIZE_MAX / elt) {
        bench_format_bytes(b->kv_buffer_bytes, one, sizeof one);
        bench_format_bytes(s->info.max_alloc, lim, sizeof lim);
        b->state = BENCH_NA;
        snprintf(b->note, sizeof b->note,
                 "skip: a k/v cache buffer of %s is above the device's largest allocation "
                 "(CL_DEVICE_MAX_MEM_ALLOC_SIZE %s)",
                 one, lim);
        return;
    }
    if (b->resident_bytes > s->info.global_mem) {
        bench_format_bytes(b->resident_bytes, one, sizeof one);
        bench_format_bytes(s->info.global_mem, lim, sizeof lim);
        b->state = BENCH_NA;
        snprintf(b->note, sizeof b->note, "skip: needs %s of device memory, the device has %s",
                 one, lim);
        return;
    }
    cl_context cl = facl_context_cl_context(s->ctx);
    cl_int e = CL_SUCCESS;
    uint64_t seed = 0xdec0deu + (uint64_t)c->kv_len * 31u + (uint64_t)c->hdim;
    b->k = tiled_random_buffer(cl, s->queue, c->dtype, (size_t)kv_elems, seed + 1, &e);
    if (e == CL_SUCCESS)
        b->v = tiled_random_buffer(cl, s->queue, c->dtype, (size_t)kv_elems, seed + 2, &e);
    if (e == CL_SUCCESS) b->q = tool_random_buffer(cl, s->queue, c->dtype, q_elems, seed + 3, &e);
    if (e == CL_SUCCESS) b->out = tool_zero_buffer(cl, s->queue, c->dtype, q_elems, &e);
    if (e == CL_SUCCESS)
        b->lse = tool_zero_buffer(cl, s->queue, FACL_DTYPE_F32,
                                  (size_t)c->batch * (size_t)c->heads, &e);
    if (e == CL_SUCCESS) {
        int32_t *lens = malloc((size_t)c->batch * sizeof *lens);
        if (!lens) {
            e = CL_OUT_OF_HOST_MEMORY;
        } else {
            for (int i = 0; i < c->batch; ++i) lens[i] = c->kv_len;
            b->seqlens = tool_int_buffer(cl, s->queue, lens, (size_t)c->batch, &e);
            free(lens);
        }
    }
    if (e != CL_SUCCESS) {
        bench_format_bytes(b->resident_bytes, one, sizeof one);
        facl_dtype dt = b->dtype;
        int hdim = b->hdim, kv_len = b->kv_len;
        release_group(b);
        b->valid = 1, b->dtype = dt, b->hdim = hdim, b->kv_len = kv_len;
        b->state = is_allocation_error(e) ? BENCH_NA : BENCH_ERROR;
        snprintf(b->note, sizeof b->note, "%sallocating %s of buffers: %s",
                 b->state == BENCH_NA ? "skip: " : "", one, tool_cl_error_name(e));
    }
}

/* ------------------------------------------------------------------ the call */

typedef struct decode_call {
    facl_context *ctx;
    const decode_config *c;
    const decode_buffers *b;
    cl_mem table;     /* paged: int32 (batch, max_blocks) */
    int32_t *host_table;
    int max_blocks, num_blocks;
    int trusted;      /* 1 in the timed runs: no read-back of the index buffers */
    int lens_as_value; /* --cache-lens value: cache_seqlens_value instead of the buffer */
    cl_mem workspace; /* the split partials' scratch, made once per point (NULL: fwd row) */
    int64_t workspace_floats;
} decode_call;

static facl_status enqueue_call(const decode_call *w, cl_command_queue queue, cl_event *event)
{
    const decode_config *c = w->c;
    const decode_buffers *b = w->b;
    const int64_t qs[4] = {c->batch, 1, c->heads, c->hdim}, ls[3] = {c->batch, c->heads, 1};
    facl_tensor q = facl_tensor_contiguous(b->q, c->dtype, 4, qs);
    facl_tensor out = facl_tensor_contiguous(b->out, c->dtype, 4, qs);
    facl_tensor lse = facl_tensor_contiguous(b->lse, FACL_DTYPE_F32, 3, ls);
    facl_attn_options opts = facl_attn_options_default();
    opts.trust_cu_seqlens = w->trusted;
    int64_t ks[4] = {c->batch, c->kv_len, c->heads_kv, c->hdim};
    if (c->layout == DECODE_PAGED) {
        ks[0] = w->num_blocks;
        ks[1] = c->page_size;
    }
    facl_tensor k = facl_tensor_contiguous(b->k, c->dtype, 4, ks);
    facl_tensor v = facl_tensor_contiguous(b->v, c->dtype, 4, ks);
    if (c->kv_hsd) { /* the same shape over (outer, kv head, position, d) storage */
        const int64_t hsd[4] = {ks[2] * ks[1] * ks[3], ks[3], ks[1] * ks[3], 1};
        memcpy(k.stride, hsd, sizeof hsd);
        memcpy(v.stride, hsd, sizeof hsd);
    }
    if (c->layout == DECODE_FWD)
        return facl_fwd(w->ctx, queue, &q, &k, &v, &out, &lse, &opts, 0, NULL, event);
    const int64_t ss[1] = {c->batch}, ts[2] = {c->batch, w->max_blocks};
    facl_tensor seqlens = facl_tensor_contiguous(b->seqlens, FACL_DTYPE_I32, 1, ss);
    facl_tensor table = facl_tensor_contiguous(w->table, FACL_DTYPE_I32, 2, ts);
    facl_kvcache_args a = FACL_KVCACHE_ARGS_INIT;
    a.num_splits = c->num_splits;
    if (w->lens_as_value)
        a.cache_seqlens_value = c->kv_len;
    else
        a.cache_seqlens = &seqlens;
    if (c->layout == DECODE_PAGED) a.block_table = &table;
    /* made once, as a decode loop would: no allocation in the timed call */
    const int64_t wn[1] = {w->workspace_floats};
    facl_tensor ws = facl_tensor_contiguous(w->workspace, FACL_DTYPE_F32, 1, wn);
    if (w->workspace) a.workspace = &ws;
    return facl_fwd_kvcache(w->ctx, queue, &q, &k, &v, &a, &out, &lse, &opts, 0, NULL, event);
}

static const char *call_name(const decode_config *c)
{
    return c->layout == DECODE_FWD ? "facl_fwd" : "facl_fwd_kvcache";
}

static int work(void *arg, cl_command_queue queue, cl_event *last, char *err, size_t err_size)
{
    const decode_call *w = arg;
    facl_status st = enqueue_call(w, queue, last);
    if (st != FACL_SUCCESS) {
        snprintf(err, err_size, "%s: %s: %s", call_name(w->c), facl_status_string(st),
                 facl_last_error());
        return -1;
    }
    return 0;
}

/* A random permutation of the pages (Fisher-Yates), so that no sequence's pages are
 * contiguous or in order; with --page-order sequential the pages in memory order. */
static int make_table(bench_session *s, decode_call *w, char *err, size_t err_size)
{
    const decode_config *c = w->c;
    w->max_blocks = (int)ceil_div(c->kv_len, c->page_size);
    w->num_blocks = c->batch * w->max_blocks;
    w->host_table = malloc((size_t)w->num_blocks * sizeof *w->host_table);
    if (!w->host_table) {
        snprintf(err, err_size, "out of host memory");
        return -1;
    }
    for (int i = 0; i < w->num_blocks; ++i) w->host_table[i] = i;
    testkit_rng rng;
    testkit_rng_seed(&rng, 0x7ab1eu + (uint64_t)c->page_size * 1000003u + (uint64_t)c->kv_len);
    for (int i = s->opts->pages_in_order ? 0 : w->num_blocks - 1; i > 0; --i) {
        int j = (int)testkit_rng_range(&rng, 0, i);
        int32_t t = w->host_table[i];
        w->host_table[i] = w->host_table[j];
        w->host_table[j] = t;
    }
    cl_int e;
    w->table = tool_int_buffer(facl_context_cl_context(s->ctx), s->queue, w->host_table,
                               (size_t)w->num_blocks, &e);
    if (!w->table) {
        snprintf(err, err_size, "block table buffer: %s", tool_cl_error_name(e));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ the check */

/* Where key t of sequence b lies: its outer index (sequence, or page) and position in it. */
static void key_place(const decode_call *w, int b, int64_t t, int64_t *outer, int64_t *pos)
{
    const decode_config *c = w->c;
    if (c->layout != DECODE_PAGED) {
        *outer = b, *pos = t;
        return;
    }
    *outer = w->host_table[(int64_t)b * w->max_blocks + t / c->page_size];
    *pos = t % c->page_size;
}

/* Keys (or values) 0..kv_len-1 of sequence b, kv head hk, as floats: one rectangular
 * read per run of consecutive rows (the whole sequence when contiguous, a page when
 * paged), rows heads_kv * d elements apart (shd) or d apart (hsd). */
static cl_int read_keys(bench_session *s, const decode_call *w, cl_mem buf, int b, int hk,
                        float *dst)
{
    const decode_config *c = w->c;
    size_t elt = facl_dtype_size(c->dtype), row = (size_t)c->hdim * elt;
    unsigned char *raw = malloc((size_t)c->kv_len * row);
    if (!raw) return CL_OUT_OF_HOST_MEMORY;
    const int64_t run = c->layout == DECODE_PAGED ? c->page_size : c->kv_len;
    const size_t pitch = c->kv_hsd ? row : (size_t)c->heads_kv * row;
    cl_int e = CL_SUCCESS;
    for (int64_t t = 0; t < c->kv_len && e == CL_SUCCESS; t += run) {
        int64_t n = c->kv_len - t < run ? c->kv_len - t : run, outer, pos;
        key_place(w, b, t, &outer, &pos);
        /* the first row, in units of the pitch, and the head's bytes within a row */
        const size_t first = c->kv_hsd ? (size_t)((outer * c->heads_kv + hk) * run + pos)
                                       : (size_t)(outer * run + pos);
        const size_t origin[3] = {c->kv_hsd ? 0 : (size_t)hk * row, first, 0};
        const size_t host_origin[3] = {0, 0, 0};
        const size_t region[3] = {row, (size_t)n, 1};
        e = clEnqueueReadBufferRect(s->queue, buf, CL_FALSE, origin, host_origin, region, pitch,
                                    0, row, 0, raw + (size_t)t * row, 0, NULL, NULL);
    }
    cl_int fin = clFinish(s->queue);
    if (e == CL_SUCCESS) e = fin;
    if (e == CL_SUCCESS)
        for (size_t i = 0; i < (size_t)c->kv_len * (size_t)c->hdim; ++i)
            dst[i] = testkit_load(c->dtype, raw, i);
    free(raw);
    return e;
}

static cl_int poison(cl_command_queue queue, cl_mem buf, size_t bytes)
{
    unsigned char *p = malloc(bytes);
    if (!p) return CL_OUT_OF_HOST_MEMORY;
    memset(p, 0xff, bytes); /* NaN in every float dtype */
    cl_int e = clEnqueueWriteBuffer(queue, buf, CL_TRUE, 0, bytes, p, 0, NULL, NULL);
    free(p);
    return e;
}

/* One ulp of the storage dtype at magnitude 1, added to the rule's bound times the row's
 * largest |ref|: a single row's low-precision error can be small by chance, while a
 * wrong key or page moves the output by about its own magnitude. */
static double ulp_one(facl_dtype dt)
{
    return dt == FACL_DTYPE_F16 ? 0x1p-11 : dt == FACL_DTYPE_BF16 ? 0x1p-8 : 0x1p-23;
}

typedef struct row_check {
    double out_err, out_bound, lse_err, lse_bound;
    int nan;
} row_check;

/* out and lse of (sequence b, query head h) against float64 over the keys read back. */
static int check_row(bench_session *s, const decode_call *w, int b, int h, row_check *rc,
                     char *err, size_t err_size)
{
    const decode_config *c = w->c;
    const int d = c->hdim, hk = h / (c->heads / c->heads_kv);
    size_t n = (size_t)c->kv_len * (size_t)d;
    float *k = malloc(n * sizeof *k), *v = malloc(n * sizeof *v), *low = malloc(d * sizeof *low);
    double *ref = malloc(d * sizeof *ref);
    float *q = NULL, *got = NULL, *got_lse = NULL;
    int rcode = -1;
    cl_int e = CL_OUT_OF_HOST_MEMORY;
    if (!k || !v || !low || !ref) goto done;
    size_t qoff = ((size_t)b * c->heads + h) * d;
    q = tool_read_floats(s->queue, w->b->q, c->dtype, qoff, d, &e);
    if (q) got = tool_read_floats(s->queue, w->b->out, c->dtype, qoff, d, &e);
    if (got)
        got_lse = tool_read_floats(s->queue, w->b->lse, FACL_DTYPE_F32,
                                   (size_t)b * c->heads + h, 1, &e);
    if (got_lse) e = read_keys(s, w, w->b->k, b, hk, k);
    if (e == CL_SUCCESS) e = read_keys(s, w, w->b->v, b, hk, v);
    if (e != CL_SUCCESS) goto done;

    const int32_t cu_q[2] = {0, 1}, cu_k[2] = {0, c->kv_len};
    ref_problem p;
    memset(&p, 0, sizeof p);
    p.batch = 1;
    p.heads_q = p.heads_kv = 1;
    p.head_dim = d;
    p.cu_q = cu_q;
    p.cu_k = cu_k;
    p.scale = 1.0f / sqrtf((float)d);
    p.window_left = p.window_right = -1;
    double ref_lse;
    float low_lse;
    ref_attention_f64(&p, q, k, v, ref, &ref_lse);
    ref_attention_lowp(&p, c->dtype, q, k, v, low, &low_lse);
    double err_max = 0, low_max = 0, mag = 0;
    rc->nan = 0;
    for (int i = 0; i < d; ++i) {
        double diff = fabs((double)got[i] - ref[i]);
        if (isnan(diff)) rc->nan = 1;
        if (diff > err_max) err_max = diff;
        if (fabs((double)low[i] - ref[i]) > low_max) low_max = fabs((double)low[i] - ref[i]);
        if (fabs(ref[i]) > mag) mag = fabs(ref[i]);
    }
    rc->out_err = err_max;
    rc->out_bound = 2 * low_max + 1e-5 + ulp_one(c->dtype) * mag;
    rc->lse_err = fabs((double)got_lse[0] - ref_lse);
    if (isnan(rc->lse_err)) rc->nan = 1;
    rc->lse_bound = 2 * fabs((double)low_lse - ref_lse) + 1e-4 * fmax(1.0, fabs(ref_lse));
    rcode = 0;
done:
    if (rcode != 0) snprintf(err, err_size, "check: reading back: %s", tool_cl_error_name(e));
    free(k);
    free(v);
    free(low);
    free(ref);
    free(q);
    free(got);
    free(got_lse);
    return rcode;
}

/* One untrusted call (the index buffers are read back and validated), then a few
 * (sequence, head) rows against the host. */
static int verify_point(bench_session *s, const decode_call *w, decode_row *row)
{
    const decode_config *c = w->c;
    bench_measure *m = &row->m;
    size_t elt = facl_dtype_size(c->dtype);
    size_t q_elems = (size_t)c->batch * c->heads * c->hdim;
    cl_int e = poison(s->queue, w->b->out, q_elems * elt);
    if (e == CL_SUCCESS) e = poison(s->queue, w->b->lse, (size_t)c->batch * c->heads * 4);
    if (e != CL_SUCCESS) {
        m->state = BENCH_ERROR;
        snprintf(m->note, sizeof m->note, "check: poisoning the outputs: %s",
                 tool_cl_error_name(e));
        return -1;
    }
    decode_call untrusted = *w;
    untrusted.trusted = 0;
    facl_status st = enqueue_call(&untrusted, s->queue, NULL);
    if (st == FACL_SUCCESS && (e = clFinish(s->queue)) != CL_SUCCESS) {
        m->state = BENCH_ERROR;
        snprintf(m->note, sizeof m->note, "%s: clFinish: %s", call_name(c), tool_cl_error_name(e));
        return -1;
    }
    if (st != FACL_SUCCESS) {
        m->state = BENCH_ERROR;
        snprintf(m->note, sizeof m->note, "%s: %s: %s", call_name(c), facl_status_string(st),
                 facl_last_error());
        return -1;
    }
    /* first, last, and one in the middle of another kv group */
    const int rows[3][2] = {{0, 0},
                            {c->batch - 1, c->heads - 1},
                            {c->batch / 2, (c->heads / 2 + c->heads / c->heads_kv / 2) % c->heads}};
    double worst = -1.0;
    for (int i = 0; i < 3; ++i) {
        int b = rows[i][0], h = rows[i][1];
        if (i > 0 && b == rows[0][0] && h == rows[0][1]) continue;
        row_check rc;
        if (check_row(s, w, b, h, &rc, m->note, sizeof m->note) != 0) {
            m->state = BENCH_ERROR;
            return -1;
        }
        int bad_out = rc.nan || !(rc.out_err <= rc.out_bound);
        int bad_lse = rc.nan || !(rc.lse_err <= rc.lse_bound);
        if (bad_out || bad_lse) {
            m->state = BENCH_ERROR;
            snprintf(m->note, sizeof m->note,
                     "check FAILED at sequence %d head %d: %s |e| %.3g > bound %.3g%s", b, h,
                     bad_out ? "out" : "lse", bad_out ? rc.out_err : rc.lse_err,
                     bad_out ? rc.out_bound : rc.lse_bound, rc.nan ? " (NaN)" : "");
            return -1;
        }
        double r1 = rc.out_err / rc.out_bound, r2 = rc.lse_err / rc.lse_bound;
        if (r1 > worst) worst = r1, row->check_err = rc.out_err, row->check_bound = rc.out_bound;
        if (r2 > worst) worst = r2, row->check_err = rc.lse_err, row->check_bound = rc.lse_bound;
    }
    row->checked = 1;
    return 0;
}

/* ------------------------------------------------------------------ one point */

static void measure(bench_session *s, decode_buffers *b, decode_row *row)
{
    const decode_config *c = &row->cfg;
    bench_measure *m = &row->m;
    memset(m, 0, sizeof *m);
    row->gb_per_s = 0;
    row->checked = 0;
    double t0 = tool_now_seconds();
    ensure_group(s, b, c);
    m->mem_bytes = b->resident_bytes;
    if (b->state != BENCH_OK) {
        m->state = b->state;
        snprintf(m->note, sizeof m->note, "%s", b->note);
        m->wall_s = tool_now_seconds() - t0;
        return;
    }
    decode_call w;
    memset(&w, 0, sizeof w);
    w.ctx = s->ctx;
    w.c = c;
    w.b = b;
    w.trusted = 1;
    w.lens_as_value = s->opts->lens_as_value;
    if (c->layout == DECODE_PAGED) {
        if (make_table(s, &w, m->note, sizeof m->note) != 0) {
            m->state = BENCH_ERROR;
            goto done;
        }
        m->mem_bytes += (uint64_t)w.num_blocks * sizeof(int32_t);
    }
    if (c->layout != DECODE_FWD) {
        uint64_t bytes = 0;
        cl_int e = CL_SUCCESS;
        facl_status st = facl_fwd_kvcache_workspace_size(s->ctx, c->batch, c->heads, c->hdim,
                                                         c->num_splits, &bytes);
        if (st == FACL_SUCCESS)
            w.workspace = clCreateBuffer(facl_context_cl_context(s->ctx), CL_MEM_READ_WRITE,
                                         (size_t)bytes, NULL, &e);
        if (st != FACL_SUCCESS || e != CL_SUCCESS) {
            snprintf(m->note, sizeof m->note, "workspace: %s",
                     st != FACL_SUCCESS ? facl_last_error() : tool_cl_error_name(e));
            m->state = BENCH_ERROR;
            goto done;
        }
        w.workspace_floats = (int64_t)(bytes / 4);
        m->mem_bytes += bytes;
    }
    if (s->opts->verify && verify_point(s, &w, row) != 0) goto done;
    bench_timing t;
    if (bench_time(&s->timer, work, &w, &s->reps, &t, m->note, sizeof m->note) != 0) {
        m->state = BENCH_ERROR;
        goto done;
    }
    m->state = BENCH_OK;
    m->median_ms = t.median_ms;
    m->min_ms = t.min_ms;
    m->max_ms = t.max_ms;
    m->reps = t.reps;
    row->gb_per_s = t.median_ms > 0 ? (double)decode_kv_bytes(c) / 1e9 / (t.median_ms * 1e-3) : 0;
done:
    if (w.table) clReleaseMemObject(w.table);
    if (w.workspace) clReleaseMemObject(w.workspace);
    free(w.host_table);
    m->wall_s = tool_now_seconds() - t0;
}

int bench_decode_run(bench_session *s, const char *selector, FILE *table)
{
    const bench_options *o = s->opts;
    size_t max = (size_t)o->n_dtypes * o->n_hdims * o->n_kv_lens * o->n_kv_orders *
                 (o->n_pages * o->n_splits + 1);
    decode_config *configs = calloc(max, sizeof *configs);
    decode_row *rows = calloc(max, sizeof *rows);
    if (!configs || !rows) {
        fprintf(stderr, "facl-bench: out of host memory\n");
        free(configs);
        free(rows);
        return 1;
    }
    size_t n = decode_grid(o, configs, max);
    /* GPUs: hide the host's call overhead behind a fill, as torch's timer does; a CPU
     * device shares its cores with the host, so there is nothing to hide behind */
    const int flush_mib = o->flush_mib >= 0 ? o->flush_mib
                          : (s->info.device_type & CL_DEVICE_TYPE_GPU) ? 512 : 0;
    char err[200];
    if (o->flush_read && flush_mib == 0) {
        fprintf(stderr, "facl-bench: --flush-read on reads back the flush buffer, and there is "
                        "none (--flush-mib 0%s); give --flush-mib N > 0\n",
                o->flush_mib < 0 ? ", this device's default" : "");
        free(configs);
        free(rows);
        return 1;
    }
    if (bench_timer_flush(&s->timer, facl_context_cl_context(s->ctx), (size_t)flush_mib << 20, err,
                          sizeof err) != 0) {
        fprintf(stderr, "facl-bench: %s\n", err);
        free(configs);
        free(rows);
        return 1;
    }
    s->timer.flush_read = o->flush_read;
    /* the cost of launching one kernel through this timer: the floor of a call */
    if (bench_timer_measure_empty(&s->timer, &s->reps, err, sizeof err) != 0) {
        fprintf(stderr, "facl-bench: %s\n", err);
        free(configs);
        free(rows);
        return 1;
    }
    decode_print_header(table, s, selector);
    decode_print_columns(table);
    int rc = 0;
    decode_buffers b;
    memset(&b, 0, sizeof b);
    for (size_t i = 0; i < n; ++i) {
        rows[i].cfg = configs[i];
        measure(s, &b, &rows[i]);
        decode_print_row(table, o, &rows[i]);
        if (o->progress) decode_print_progress(stderr, i, n, &rows[i]);
        if (rows[i].m.state == BENCH_ERROR) rc = 1;
    }
    release_group(&b);
    if (o->json_path && decode_write_json(o->json_path, s, selector, rows, n) != 0) rc = 1;
    if (o->csv_path && decode_write_csv(o->csv_path, o, rows, n) != 0) rc = 1;
    free(configs);
    free(rows);
    return rc;
}
