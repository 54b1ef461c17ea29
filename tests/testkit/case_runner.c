/* testkit case runner (see case_runner.h). */
#include "case_runner.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "numeric.h"
#include "reference.h"

/* ------------------------------------------------------------------ names */

const char *case_layout_name(case_layout layout)
{
    switch (layout) {
    case CASE_DENSE: return "dense";
    case CASE_QKVPACKED: return "qkvpacked";
    case CASE_KVPACKED: return "kvpacked";
    case CASE_VARLEN: return "varlen";
    case CASE_VARLEN_QKVPACKED: return "varlen-qkvpacked";
    case CASE_VARLEN_KVPACKED: return "varlen-kvpacked";
    }
    return "?";
}

const char *testkit_dtype_name(facl_dtype dt)
{
    switch (dt) {
    case FACL_DTYPE_F32: return "f32";
    case FACL_DTYPE_F16: return "f16";
    case FACL_DTYPE_BF16: return "bf16";
    case FACL_DTYPE_I32: return "i32";
    }
    return "?";
}

static int is_varlen(case_layout l)
{
    return l == CASE_VARLEN || l == CASE_VARLEN_QKVPACKED || l == CASE_VARLEN_KVPACKED;
}

static int is_qkvpacked(case_layout l)
{
    return l == CASE_QKVPACKED || l == CASE_VARLEN_QKVPACKED;
}

static void appendf(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;
    if (len + 1 >= size)
        return;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

static void append_lens(char *buf, size_t size, const char *what, const int32_t *lens, int n,
                        int dflt)
{
    if (!lens) {
        appendf(buf, size, " %s=%d", what, dflt);
        return;
    }
    appendf(buf, size, " %s=[", what);
    for (int b = 0; b < n; b++)
        appendf(buf, size, b ? ",%d" : "%d", (int)lens[b]);
    appendf(buf, size, "]");
}

fwd_case fwd_case_make(case_layout layout, facl_dtype dt, int d, int sq, int sk, int hq, int hkv,
                       int batch, uint64_t seed)
{
    fwd_case c;
    memset(&c, 0, sizeof c);
    c.layout = layout;
    c.dtype = dt;
    c.head_dim = d;
    c.seqlen_q = sq;
    c.seqlen_k = sk;
    c.heads_q = hq;
    c.heads_kv = hkv;
    c.batch = batch;
    c.opts = facl_attn_options_default();
    c.want_lse = 1;
    c.seed = seed;
    return c;
}

void fwd_case_name(const fwd_case *c, char *buf, size_t size)
{
    const facl_attn_options *o = &c->opts;
    const char *al = o->mask_align == FACL_ALIGN_TOP_LEFT ? "tl" : "br";
    if (!size)
        return;
    buf[0] = '\0';
    appendf(buf, size, "%s %s d=%d", case_layout_name(c->layout), testkit_dtype_name(c->dtype),
            c->head_dim);
    append_lens(buf, size, "sq", is_varlen(c->layout) ? c->seqlens_q : NULL, c->batch,
                c->seqlen_q);
    append_lens(buf, size, "sk", is_varlen(c->layout) ? c->seqlens_k : NULL, c->batch,
                c->seqlen_k);
    if (c->seqused_k)
        append_lens(buf, size, "used", c->seqused_k, c->batch, 0);
    appendf(buf, size, " h=%d/%d b=%d", c->heads_q, c->heads_kv, c->batch);
    if (o->causal)
        appendf(buf, size, " causal-%s", al);
    if (o->window_left >= 0 || o->window_right >= 0)
        appendf(buf, size, " win=(%d,%d)-%s", o->window_left, o->window_right, al);
    if (o->softmax_scale != 0.0f)
        appendf(buf, size, " scale=%g", (double)o->softmax_scale);
    if (o->softcap != 0.0f)
        appendf(buf, size, " softcap=%g", (double)o->softcap);
    if (c->use_alibi)
        appendf(buf, size, " alibi%s-%s", c->alibi_per_batch ? "(b,h)" : "(h)", al);
    if (o->dropout_p != 0.0f)
        appendf(buf, size, " dropout=%g", (double)o->dropout_p);
    if (c->strided)
        appendf(buf, size, " strided");
    if (c->want_lse)
        appendf(buf, size, " lse");
    if (c->want_probs)
        appendf(buf, size, " probs");
    if ((is_varlen(c->layout) || c->seqused_k) && o->trust_cu_seqlens)
        appendf(buf, size, " trusted");
    if (is_varlen(c->layout) && c->call_max_seqlen_q > 0)
        appendf(buf, size, " max_q=%lld", (long long)c->call_max_seqlen_q);
    if (is_varlen(c->layout) && c->call_max_seqlen_k > 0 && c->layout != CASE_VARLEN_QKVPACKED)
        appendf(buf, size, " max_k=%lld", (long long)c->call_max_seqlen_k);
}

/* SPEC.md rule 4: a window of at least the call's key length is unbounded (-1); 0 stays 0
 * (causal) even for a call without keys. */
static int normalise_window(int w, int64_t keys)
{
    return w > 0 && (int64_t)w >= keys ? -1 : w;
}

/* A checked comparison always has a positive bound; an unrequested one is all zeros. */
static void format_cmp(const cmp_result *c, char *buf, size_t size)
{
    if (c->bound == 0.0 && c->pass)
        snprintf(buf, size, "not checked");
    else
        cmp_format(c, buf, size);
}

void case_result_format(const case_result *r, char *buf, size_t size)
{
    char a[160], b[160], p[160];
    format_cmp(&r->out, a, sizeof a);
    format_cmp(&r->lse, b, sizeof b);
    format_cmp(&r->probs, p, sizeof p);
    snprintf(buf, size, "%s (status %d %s, %.3f s)\n  out:   %s\n  lse:   %s\n  probs: %s\n  %s\n",
             r->pass ? "PASS" : "FAIL", (int)r->status, facl_status_string(r->status),
             r->seconds, a, b, p, r->detail);
}

/* ------------------------------------------------------------------ buffers and views */

#define MAX_BUFS 10

typedef struct tk_buf {
    const char *name;
    facl_dtype dt;
    size_t esize, count; /* element size, elements in the buffer */
    int is_output;
    unsigned char *host;   /* inputs: the uploaded contents; outputs: the poison */
    unsigned char *back;   /* read back after the call */
    unsigned char *inview; /* outputs: 1 where a view covers the element */
    cl_mem mem;
} tk_buf;

typedef struct runner {
    tk_buf bufs[MAX_BUFS];
    int nbufs;
    case_result *r;
    cl_command_queue queue; /* the call's queue, never NULL once chosen */
    cl_event uploads[MAX_BUFS]; /* async_inputs: the call's wait list */
    cl_uint nuploads;
} runner;

static int fail(runner *run, const char *fmt, ...)
{
    va_list ap;
    if (run->r->detail[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(run->r->detail, sizeof run->r->detail, fmt, ap);
        va_end(ap);
    }
    run->r->pass = 0;
    return 0;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "testkit: out of host memory\n");
        abort();
    }
    return p;
}

static int64_t view_elems(const facl_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

/* One past the last element the view touches. */
static size_t view_end(const facl_tensor *t)
{
    int64_t last = (int64_t)t->offset;
    if (view_elems(t) == 0)
        return t->offset;
    for (int i = 0; i < t->ndim; i++)
        last += (t->shape[i] - 1) * t->stride[i];
    return (size_t)last + 1;
}

/* Element position of the row-major logical index `lin`. */
static size_t view_pos(const facl_tensor *t, int64_t lin)
{
    int64_t pos = (int64_t)t->offset;
    for (int i = t->ndim - 1; i >= 0; i--) {
        pos += (lin % t->shape[i]) * t->stride[i];
        lin /= t->shape[i];
    }
    return (size_t)pos;
}

/* A view of logical shape `shape` whose memory nests the dimensions in `order`
 * (outermost first, the last logical dimension last) with pad[k] extra elements in the
 * stride of order[k] (k < ndim - 1), starting at `offset`. pad NULL = dense. */
static facl_tensor make_view(facl_dtype dt, int ndim, const int64_t *shape, const int *order,
                             const int64_t *pad, size_t offset)
{
    facl_tensor t;
    int64_t run = 1;
    memset(&t, 0, sizeof t);
    t.dtype = dt;
    t.ndim = ndim;
    t.offset = offset;
    for (int k = ndim - 1; k >= 0; k--) {
        int dim = order ? order[k] : k;
        int64_t s = k == ndim - 1 ? 1 : run + (pad ? pad[k] : 0);
        t.shape[dim] = shape[dim];
        t.stride[dim] = s;
        run = s * shape[dim];
    }
    return t;
}

/* Dimension `dim` of `t` fixed at `index` and removed. */
static facl_tensor view_select(const facl_tensor *t, int dim, int64_t index)
{
    facl_tensor s = *t;
    s.offset = t->offset + (size_t)(index * t->stride[dim]);
    s.ndim = t->ndim - 1;
    for (int i = dim; i < s.ndim; i++) {
        s.shape[i] = t->shape[i + 1];
        s.stride[i] = t->stride[i + 1];
    }
    return s;
}

static tk_buf *new_buf(runner *run, const char *name, facl_dtype dt, size_t count,
                       int is_output)
{
    tk_buf *b = &run->bufs[run->nbufs++];
    b->name = name;
    b->dt = dt;
    b->esize = facl_dtype_size(dt);
    b->count = count ? count : 1;
    b->is_output = is_output;
    b->host = xcalloc(b->count, b->esize);
    b->back = xcalloc(b->count, b->esize);
    b->inview = is_output ? xcalloc(b->count, 1) : NULL;
    memset(b->host, 0xff, b->count * b->esize); /* poison, NaN in every float dtype */
    return b;
}

/* Write the logical array src (row-major over the view's shape) through the view. */
static void scatter(tk_buf *b, const facl_tensor *t, const float *src)
{
    int64_t n = view_elems(t);
    for (int64_t i = 0; i < n; i++)
        testkit_store(b->dt, b->host, view_pos(t, i), src[i]);
}

/* Read the view out of the read-back contents; mark the covered elements. */
static void gather(tk_buf *b, const facl_tensor *t, float *dst)
{
    int64_t n = view_elems(t);
    for (int64_t i = 0; i < n; i++) {
        size_t pos = view_pos(t, i);
        dst[i] = testkit_load(b->dt, b->back, pos);
        b->inview[pos] = 1;
    }
}

/* Buffers filled at creation; or (async) created empty, then the inputs written and the
 * outputs poisoned by commands on run->queue whose events are kept in run->uploads. */
static int upload(runner *run, cl_context clctx, int async)
{
    static const unsigned char poison = 0xff; /* what new_buf put in an output's host */
    for (int i = 0; i < run->nbufs; i++) {
        tk_buf *b = &run->bufs[i];
        const size_t bytes = b->count * b->esize;
        cl_int err;
        b->mem = clCreateBuffer(clctx, CL_MEM_READ_WRITE | (async ? 0 : CL_MEM_COPY_HOST_PTR),
                                bytes, async ? NULL : b->host, &err);
        if (err != CL_SUCCESS) {
            b->mem = NULL;
            return fail(run, "clCreateBuffer(%s, %zu bytes): %d", b->name, bytes, (int)err);
        }
        if (!async)
            continue;
        if (b->is_output)
            err = clEnqueueFillBuffer(run->queue, b->mem, &poison, 1, 0, bytes, 0, NULL,
                                      &run->uploads[run->nuploads]);
        else
            err = clEnqueueWriteBuffer(run->queue, b->mem, CL_FALSE, 0, bytes, b->host, 0, NULL,
                                       &run->uploads[run->nuploads]);
        if (err != CL_SUCCESS)
            return fail(run, "%s(%s): %d",
                        b->is_output ? "clEnqueueFillBuffer" : "clEnqueueWriteBuffer", b->name,
                        (int)err);
        run->nuploads++;
    }
    return 1;
}

static int download(runner *run, cl_command_queue queue)
{
    for (int i = 0; i < run->nbufs; i++) {
        tk_buf *b = &run->bufs[i];
        cl_int err = clEnqueueReadBuffer(queue, b->mem, CL_TRUE, 0, b->count * b->esize,
                                         b->back, 0, NULL, NULL);
        if (err != CL_SUCCESS)
            return fail(run, "clEnqueueReadBuffer(%s): %d", b->name, (int)err);
    }
    return 1;
}

static void free_bufs(runner *run)
{
    if (run->nuploads) {
        /* non-blocking writes read the host copies until they complete */
        cl_int err = clFinish(run->queue);
        if (err != CL_SUCCESS)
            fail(run, "clFinish: %d", (int)err);
        for (cl_uint i = 0; i < run->nuploads; i++)
            clReleaseEvent(run->uploads[i]);
        run->nuploads = 0;
    }
    for (int i = 0; i < run->nbufs; i++) {
        tk_buf *b = &run->bufs[i];
        if (b->mem)
            clReleaseMemObject(b->mem);
        free(b->host);
        free(b->back);
        free(b->inview);
    }
    run->nbufs = 0;
}

/* Inputs untouched; outputs untouched outside their views. */
static int check_untouched(runner *run)
{
    int ok = 1;
    for (int i = 0; i < run->nbufs; i++) {
        tk_buf *b = &run->bufs[i];
        for (size_t e = 0; e < b->count; e++) {
            const unsigned char *h = b->host + e * b->esize, *g = b->back + e * b->esize;
            if (b->is_output && b->inview[e])
                continue;
            if (memcmp(h, g, b->esize) != 0) {
                ok = fail(run, "%s: element %zu of the buffer changed (%s)", b->name, e,
                          b->is_output ? "outside the output view" : "an input");
                break;
            }
        }
    }
    return ok;
}

static double now_seconds(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------ the case */

/* The sequence b of packed row t, and the row i within it. */
static void describe_row(const int32_t *cu, int batch, int64_t t, int *b, int64_t *i)
{
    int s = 0;
    while (s + 1 < batch && t >= cu[s + 1])
        s++;
    *b = s;
    *i = t - cu[s];
}

int run_fwd_case(facl_context *ctx, const fwd_case *c, case_result *r)
{
    runner run;
    const facl_dtype dt = c->dtype;
    const int B = c->batch, Hq = c->heads_q, Hk = c->heads_kv, D = c->head_dim;
    const int varlen = is_varlen(c->layout), strided = c->strided;
    int32_t *cu_q = NULL, *cu_k = NULL, *used = NULL; /* used: clamped, for the reference */
    int64_t Tq, Tk, msq = 0, msk = 0; /* the true maxima (dense: seqlen_q, seqlen_k) */
    int64_t cmsq, cmsk;               /* the maxima passed to the call */
    float *q = NULL, *k = NULL, *v = NULL, *slopes = NULL;
    float *got_out = NULL, *got_lse = NULL, *got_probs = NULL, *dev_lse = NULL;
    float *low_out = NULL, *low_lse = NULL;
    double *ref_out = NULL, *ref_lse = NULL, *ref_probs = NULL;
    facl_tensor tq, tk, tv, tqkv, tkv, tcuq, tcuk, tout, tlse, tprobs, talibi, tused;
    tk_buf *bq = NULL, *bk = NULL, *bv = NULL, *bpack = NULL, *bcuq = NULL, *bcuk = NULL;
    tk_buf *bused = NULL;
    tk_buf *bout, *blse = NULL, *bprobs = NULL, *balibi = NULL;
    facl_attn_options o = c->opts;
    ref_problem rp;
    testkit_rng rng;
    cl_command_queue queue; /* the call's: c->queue or NULL (the context's) */
    const cl_event *wait;
    cl_uint nwait;
    const facl_tensor *lse;
    cl_event ev = NULL;
    double t0;

    memset(&run, 0, sizeof run);
    memset(&tqkv, 0, sizeof tqkv);
    tkv = tcuq = tcuk = tprobs = talibi = tused = tqkv;
    memset(r, 0, sizeof *r);
    r->pass = 1;
    r->out.pass = r->lse.pass = r->probs.pass = 1;
    r->out.first_bad = r->lse.first_bad = r->probs.first_bad = -1;
    run.r = r;

    if (!ctx) {
        fail(&run, "no facl_context");
        return 0;
    }
    if (B < 0 || Hq < 1 || Hk < 1 || D < 1 || Hq % Hk != 0 || c->seqlen_q < 0 ||
        c->seqlen_k < 0 || (is_qkvpacked(c->layout) &&
                            (Hq != Hk || c->seqlen_q != c->seqlen_k ||
                             (varlen && c->seqlens_q != c->seqlens_k &&
                              (c->seqlens_q == NULL || c->seqlens_k == NULL ||
                               memcmp(c->seqlens_q, c->seqlens_k, (size_t)B * 4) != 0))))) {
        fail(&run, "invalid test case (sizes, GQA or qkv-packed with q != k shapes)");
        return 0;
    }
    if (c->call_max_seqlen_q < 0 || c->call_max_seqlen_k < 0 ||
        (!varlen && (c->call_max_seqlen_q || c->call_max_seqlen_k))) {
        fail(&run, "invalid test case (call_max_seqlen_q/k: varlen only, >= 0)");
        return 0;
    }

    /* ---- sequence lengths */
    cu_q = xcalloc((size_t)B + 1, sizeof *cu_q);
    cu_k = xcalloc((size_t)B + 1, sizeof *cu_k);
    for (int b = 0; b < B; b++) {
        int32_t lq = (varlen && c->seqlens_q) ? c->seqlens_q[b] : c->seqlen_q;
        int32_t lk = (varlen && c->seqlens_k) ? c->seqlens_k[b] : c->seqlen_k;
        if (is_qkvpacked(c->layout))
            lk = lq;
        cu_q[b + 1] = cu_q[b] + lq;
        cu_k[b + 1] = cu_k[b] + lk;
        if (lq > msq)
            msq = lq;
        if (lk > msk)
            msk = lk;
    }
    if (!varlen) {
        msq = c->seqlen_q;
        msk = c->seqlen_k;
    }
    Tq = cu_q[B];
    Tk = cu_k[B];
    if (c->seqused_k) {
        /* what the device uses: each value clamped into 0 .. the sequence's keys (a trusted
         * call; an untrusted one rejects a value out of range) */
        used = xcalloc((size_t)B + 1, sizeof *used);
        for (int b = 0; b < B; b++) {
            int32_t u = c->seqused_k[b], keys = cu_k[b + 1] - cu_k[b];
            used[b] = u < 0 ? 0 : (u > keys ? keys : u);
        }
    }
    cmsq = (varlen && c->call_max_seqlen_q) ? c->call_max_seqlen_q : msq;
    cmsk = (varlen && c->call_max_seqlen_k) ? c->call_max_seqlen_k : msk;
    if (c->layout == CASE_VARLEN_QKVPACKED)
        cmsk = cmsq; /* one max_seqlen for both */

    /* ---- inputs, rounded to the storage type */
    testkit_rng_seed(&rng, c->seed);
    q = xcalloc((size_t)(Tq * Hq * D), sizeof *q);
    k = xcalloc((size_t)(Tk * Hk * D), sizeof *k);
    v = xcalloc((size_t)(Tk * Hk * D), sizeof *v);
    for (int64_t i = 0; i < Tq * Hq * D; i++)
        q[i] = testkit_round_to(dt, (float)testkit_rng_normal(&rng));
    for (int64_t i = 0; i < Tk * Hk * D; i++)
        k[i] = testkit_round_to(dt, (float)testkit_rng_normal(&rng));
    for (int64_t i = 0; i < Tk * Hk * D; i++)
        v[i] = testkit_round_to(dt, (float)testkit_rng_normal(&rng));
    if (c->use_alibi) {
        int rows = c->alibi_per_batch ? B : 1;
        slopes = xcalloc((size_t)rows * Hq, sizeof *slopes);
        for (int b = 0; b < rows; b++)
            for (int h = 0; h < Hq; h++)
                slopes[b * Hq + h] = (float)(exp2(-8.0 * (h + 1) / Hq) * (1.0 + 0.5 * b));
    }

    /* ---- views and buffers */
    {
        const int64_t pad4[3] = {7, 5, 3}, pad5[4] = {5, 3, 4, 2}, pad3[2] = {3, 2};
        const int64_t padp4[3] = {3, 4, 2}, pado4[3] = {4, 6, 2}, pado3[2] = {5, 2};
        const int ord4_sb[4] = {1, 0, 2, 3};    /* (S, B, H, d) */
        const int ord4_bh[4] = {0, 2, 1, 3};    /* (B, H, S, d) */
        const int ord5_sb[5] = {1, 0, 2, 3, 4}; /* (S, B, pack, H, d) */
        const int ord3_ht[3] = {1, 0, 2};       /* (H, T, d) */
        const int ord3_hbs[3] = {1, 0, 2};      /* lse (H, B, S) */
        const int64_t *P4 = strided ? pad4 : NULL, *P5 = strided ? pad5 : NULL;
        const int64_t *P3 = strided ? pad3 : NULL;
        const int *O4 = strided ? ord4_sb : NULL, *O5 = strided ? ord5_sb : NULL;
        const int *O3 = strided ? ord3_ht : NULL;
        size_t off_in = strided ? 13 : 0, tail = strided ? 5 : 0;

        if (!varlen) {
            int64_t sq_shape[4] = {B, c->seqlen_q, Hq, D}, sk_shape[4] = {B, c->seqlen_k, Hk, D};
            if (c->layout == CASE_QKVPACKED) {
                int64_t s5[5] = {B, c->seqlen_q, 3, Hq, D};
                tqkv = make_view(dt, 5, s5, O5, P5, off_in);
                tq = view_select(&tqkv, 2, 0);
                tk = view_select(&tqkv, 2, 1);
                tv = view_select(&tqkv, 2, 2);
                bpack = new_buf(&run, "qkv", dt, view_end(&tqkv) + tail, 0);
                bq = bk = bv = bpack;
            } else {
                tq = make_view(dt, 4, sq_shape, O4, P4, off_in);
                bq = new_buf(&run, "q", dt, view_end(&tq) + tail, 0);
                if (c->layout == CASE_KVPACKED) {
                    int64_t s5[5] = {B, c->seqlen_k, 2, Hk, D};
                    tkv = make_view(dt, 5, s5, O5, P5, off_in + 2);
                    tk = view_select(&tkv, 2, 0);
                    tv = view_select(&tkv, 2, 1);
                    bpack = new_buf(&run, "kv", dt, view_end(&tkv) + tail, 0);
                    bk = bv = bpack;
                } else {
                    tk = make_view(dt, 4, sk_shape, O4, P4, off_in + 1);
                    tv = make_view(dt, 4, sk_shape, strided ? ord4_bh : NULL, P4, off_in + 3);
                    bk = new_buf(&run, "k", dt, view_end(&tk) + tail, 0);
                    bv = new_buf(&run, "v", dt, view_end(&tv) + tail, 0);
                }
            }
            tout = make_view(dt, 4, sq_shape, strided ? ord4_bh : NULL, strided ? pado4 : NULL,
                             strided ? 7 : 0);
            {
                int64_t ls[3] = {B, Hq, c->seqlen_q};
                tlse = make_view(FACL_DTYPE_F32, 3, ls, strided ? ord3_hbs : NULL, P3,
                                 strided ? 5 : 0);
            }
        } else {
            int64_t sq_shape[3] = {Tq, Hq, D}, sk_shape[3] = {Tk, Hk, D};
            if (c->layout == CASE_VARLEN_QKVPACKED) {
                int64_t s4[4] = {Tq, 3, Hq, D};
                tqkv = make_view(dt, 4, s4, NULL, strided ? padp4 : NULL, off_in);
                tq = view_select(&tqkv, 1, 0);
                tk = view_select(&tqkv, 1, 1);
                tv = view_select(&tqkv, 1, 2);
                bpack = new_buf(&run, "qkv", dt, view_end(&tqkv) + tail, 0);
                bq = bk = bv = bpack;
            } else {
                tq = make_view(dt, 3, sq_shape, O3, P3, off_in);
                bq = new_buf(&run, "q", dt, view_end(&tq) + tail, 0);
                if (c->layout == CASE_VARLEN_KVPACKED) {
                    int64_t s4[4] = {Tk, 2, Hk, D};
                    const int ord4_p[4] = {1, 0, 2, 3}; /* (2, T, H, d): k block, v block */
                    tkv = make_view(dt, 4, s4, strided ? ord4_p : NULL, strided ? padp4 : NULL,
                                    off_in + 1);
                    tk = view_select(&tkv, 1, 0);
                    tv = view_select(&tkv, 1, 1);
                    bpack = new_buf(&run, "kv", dt, view_end(&tkv) + tail, 0);
                    bk = bv = bpack;
                } else {
                    tk = make_view(dt, 3, sk_shape, NULL, P3, off_in + 2);
                    tv = make_view(dt, 3, sk_shape, O3, P3, off_in + 1);
                    bk = new_buf(&run, "k", dt, view_end(&tk) + tail, 0);
                    bv = new_buf(&run, "v", dt, view_end(&tv) + tail, 0);
                }
            }
            tout = make_view(dt, 3, sq_shape, NULL, strided ? pado3 : NULL, strided ? 3 : 0);
            {
                int64_t ls[2] = {Hq, Tq}, lpad[1] = {4};
                tlse = make_view(FACL_DTYPE_F32, 2, ls, NULL, strided ? lpad : NULL,
                                 strided ? 2 : 0);
            }
            {
                int64_t cs[1] = {B + 1};
                tcuq = make_view(FACL_DTYPE_I32, 1, cs, NULL, NULL, strided ? 3 : 0);
                tcuk = make_view(FACL_DTYPE_I32, 1, cs, NULL, NULL, strided ? 1 : 0);
                bcuq = new_buf(&run, "cu_seqlens_q", FACL_DTYPE_I32, view_end(&tcuq) + tail, 0);
                memcpy(bcuq->host + tcuq.offset * 4, cu_q, (size_t)(B + 1) * 4);
                if (c->layout != CASE_VARLEN_QKVPACKED) {
                    bcuk = new_buf(&run, "cu_seqlens_k", FACL_DTYPE_I32, view_end(&tcuk) + tail,
                                   0);
                    memcpy(bcuk->host + tcuk.offset * 4, cu_k, (size_t)(B + 1) * 4);
                }
            }
        }
        scatter(bq, &tq, q);
        scatter(bk, &tk, k);
        scatter(bv, &tv, v);

        bout = new_buf(&run, "out", dt, view_end(&tout) + tail, 1);
        if (c->want_lse)
            blse = new_buf(&run, "lse", FACL_DTYPE_F32, view_end(&tlse) + tail, 1);
        if (c->want_probs) {
            int64_t ps[4] = {B, Hq, cmsq, cmsk}, ppad[3] = {1, 2, 3};
            tprobs = make_view(FACL_DTYPE_F32, 4, ps, NULL, strided ? ppad : NULL,
                               strided ? 4 : 0);
            bprobs = new_buf(&run, "attn_probs", FACL_DTYPE_F32, view_end(&tprobs) + tail, 1);
        }
        if (c->use_alibi) {
            int64_t as[2] = {B, Hq}, apad[1] = {3};
            if (c->alibi_per_batch)
                talibi = make_view(FACL_DTYPE_F32, 2, as, NULL, strided ? apad : NULL,
                                   strided ? 2 : 0);
            else
                talibi = make_view(FACL_DTYPE_F32, 1, as + 1, NULL, NULL, strided ? 2 : 0);
            balibi = new_buf(&run, "alibi_slopes", FACL_DTYPE_F32, view_end(&talibi) + tail, 0);
            scatter(balibi, &talibi, slopes);
        }
        if (c->seqused_k) {
            /* strided: at offset 3 of a buffer poisoned around it (0xff bytes: -1, out of
             * range), so reading the wrong elements is seen */
            int64_t us[1] = {B};
            tused = make_view(FACL_DTYPE_I32, 1, us, NULL, NULL, strided ? 3 : 0);
            bused = new_buf(&run, "seqused_k", FACL_DTYPE_I32, view_end(&tused) + tail, 0);
            if (B > 0)
                memcpy(bused->host + tused.offset * 4, c->seqused_k, (size_t)B * 4);
        }
    }

    run.queue = c->queue ? c->queue : facl_context_queue(ctx);
    if (!upload(&run, facl_context_cl_context(ctx), c->async_inputs))
        goto done;
    tq.buffer = bq->mem;
    tk.buffer = bk->mem;
    tv.buffer = bv->mem;
    if (bpack) {
        tqkv.buffer = bpack->mem;
        tkv.buffer = bpack->mem;
    }
    if (bcuq)
        tcuq.buffer = bcuq->mem;
    tcuk.buffer = bcuk ? bcuk->mem : NULL;
    tout.buffer = bout->mem;
    if (blse)
        tlse.buffer = blse->mem;
    if (bprobs) {
        tprobs.buffer = bprobs->mem;
        o.attn_probs = &tprobs;
    } else {
        o.attn_probs = NULL;
    }
    if (balibi) {
        talibi.buffer = balibi->mem;
        o.alibi_slopes = &talibi;
    } else {
        o.alibi_slopes = NULL;
    }
    if (bused) {
        tused.buffer = bused->mem;
        o.seqused_k = &tused;
    } else {
        o.seqused_k = NULL;
    }

    /* ---- the call */
    queue = c->queue;
    nwait = run.nuploads;
    wait = nwait ? run.uploads : NULL;
    lse = blse ? &tlse : NULL;
    t0 = now_seconds();
    switch (c->layout) {
    case CASE_DENSE:
        r->status = facl_fwd(ctx, queue, &tq, &tk, &tv, &tout, lse, &o, nwait, wait, &ev);
        break;
    case CASE_QKVPACKED:
        r->status = facl_fwd_qkvpacked(ctx, queue, &tqkv, &tout, lse, &o, nwait, wait, &ev);
        break;
    case CASE_KVPACKED:
        r->status = facl_fwd_kvpacked(ctx, queue, &tq, &tkv, &tout, lse, &o, nwait, wait, &ev);
        break;
    case CASE_VARLEN:
        r->status = facl_varlen_fwd(ctx, queue, &tq, &tk, &tv, &tcuq, &tcuk, cmsq, cmsk, &tout,
                                    lse, &o, nwait, wait, &ev);
        break;
    case CASE_VARLEN_QKVPACKED:
        r->status = facl_varlen_fwd_qkvpacked(ctx, queue, &tqkv, &tcuq, cmsq, &tout, lse, &o,
                                              nwait, wait, &ev);
        break;
    case CASE_VARLEN_KVPACKED:
        r->status = facl_varlen_fwd_kvpacked(ctx, queue, &tq, &tkv, &tcuq, &tcuk, cmsq, cmsk,
                                             &tout, lse, &o, nwait, wait, &ev);
        break;
    }
    if (r->status != FACL_SUCCESS) {
        fail(&run, "facl call failed: %s: %s", facl_status_string(r->status), facl_last_error());
        if (ev)
            clReleaseEvent(ev);
        goto done;
    }
    if (!ev && c->async_inputs) {
        fail(&run, "a successful call returned no event");
        goto done;
    }
    if (ev) {
        cl_int err = clWaitForEvents(1, &ev);
        clReleaseEvent(ev);
        if (err != CL_SUCCESS) {
            fail(&run, "clWaitForEvents: %d", (int)err);
            goto done;
        }
    }
    {
        cl_int err = clFinish(run.queue);
        r->seconds = now_seconds() - t0;
        if (err != CL_SUCCESS) {
            fail(&run, "clFinish: %d", (int)err);
            goto done;
        }
    }
    if (!download(&run, run.queue))
        goto done;

    /* ---- read back through the views */
    got_out = xcalloc((size_t)(Tq * Hq * D), sizeof *got_out);
    gather(bout, &tout, got_out);
    if (blse) {
        dev_lse = xcalloc((size_t)(Hq * Tq), sizeof *dev_lse);
        got_lse = xcalloc((size_t)(Hq * Tq), sizeof *got_lse);
        gather(blse, &tlse, dev_lse);
        if (varlen) {
            memcpy(got_lse, dev_lse, (size_t)(Hq * Tq) * sizeof *got_lse);
        } else {
            /* (batch, heads_q, seqlen_q) -> the reference's (heads_q, total_q) */
            for (int b = 0; b < B; b++)
                for (int h = 0; h < Hq; h++)
                    for (int64_t i = 0; i < c->seqlen_q; i++)
                        got_lse[(size_t)h * Tq + (size_t)b * c->seqlen_q + i] =
                            dev_lse[((size_t)b * Hq + h) * c->seqlen_q + i];
        }
    }
    if (bprobs) {
        got_probs = xcalloc((size_t)(B * Hq * cmsq * cmsk), sizeof *got_probs);
        gather(bprobs, &tprobs, got_probs);
    }
    check_untouched(&run);

    /* ---- reference */
    memset(&rp, 0, sizeof rp);
    rp.batch = B;
    rp.heads_q = Hq;
    rp.heads_kv = Hk;
    rp.head_dim = D;
    rp.cu_q = cu_q;
    rp.cu_k = cu_k;
    rp.scale = o.softmax_scale != 0.0f ? o.softmax_scale : 1.0f / sqrtf((float)D);
    /* rule 4's normalisation against the call's key length (dense: seqlen_k; varlen:
     * max_seqlen_k as passed, which may be below a real sequence's length) */
    rp.window_left = normalise_window(o.window_left, varlen ? cmsk : c->seqlen_k);
    rp.window_right = o.causal ? 0 : normalise_window(o.window_right, varlen ? cmsk : c->seqlen_k);
    rp.align_top_left = o.mask_align == FACL_ALIGN_TOP_LEFT;
    rp.softcap = o.softcap;
    rp.alibi = slopes;
    rp.alibi_per_batch = c->alibi_per_batch;
    rp.dropout_p = o.dropout_p;
    rp.seed = o.dropout_seed;
    rp.offset = o.dropout_offset;
    rp.used_k = used;

    ref_out = xcalloc((size_t)(Tq * Hq * D), sizeof *ref_out);
    ref_lse = xcalloc((size_t)(Hq * Tq), sizeof *ref_lse);
    low_out = xcalloc((size_t)(Tq * Hq * D), sizeof *low_out);
    low_lse = xcalloc((size_t)(Hq * Tq), sizeof *low_lse);
    ref_attention_f64(&rp, q, k, v, ref_out, ref_lse);
    if (dt != FACL_DTYPE_F32) /* the fp32 rule (relative L2) does not use it */
        ref_attention_lowp(&rp, dt, q, k, v, low_out, low_lse);

    r->out = cmp_check(dt, got_out, ref_out, dt != FACL_DTYPE_F32 ? low_out : NULL,
                       (size_t)(Tq * Hq * D));
    if (!r->out.pass) {
        int64_t bad = r->out.first_bad, t = bad / ((int64_t)Hq * D), i;
        int b;
        describe_row(cu_q, B, t, &b, &i);
        fail(&run, "out wrong at seq %d row %lld head %d dim %d: got %.6g ref %.6g low %.6g", b,
             (long long)i, (int)(bad / D % Hq), (int)(bad % D), (double)got_out[bad],
             ref_out[bad], (double)low_out[bad]);
    }
    if (blse) {
        r->lse = cmp_check(dt, got_lse, ref_lse, dt != FACL_DTYPE_F32 ? low_lse : NULL,
                           (size_t)(Hq * Tq));
        if (!r->lse.pass) {
            int64_t bad = r->lse.first_bad, i;
            int b;
            describe_row(cu_q, B, bad % Tq, &b, &i);
            fail(&run, "lse wrong at seq %d head %d row %lld: got %.8g ref %.8g low %.8g", b,
                 (int)(bad / Tq), (long long)i, (double)got_lse[bad], ref_lse[bad],
                 (double)low_lse[bad]);
        }
    }
    if (bprobs) {
        size_t n = (size_t)(B * Hq * cmsq * cmsk);
        ref_probs = xcalloc(n, sizeof *ref_probs);
        ref_attn_probs(&rp, q, k, ref_probs, cmsq, cmsk);
        /* fp32 output from fp32 scores whatever the storage type: the fp32 rule */
        r->probs = cmp_check(FACL_DTYPE_F32, got_probs, ref_probs, NULL, n);
        if (!r->probs.pass) {
            int64_t bad = r->probs.first_bad;
            fail(&run, "attn_probs wrong at seq %d head %d row %lld col %lld: got %.6g ref %.6g",
                 (int)(bad / (Hq * cmsq * cmsk)), (int)(bad / (cmsq * cmsk) % Hq),
                 (long long)(bad / cmsk % cmsq), (long long)(bad % cmsk), (double)got_probs[bad],
                 ref_probs[bad]);
        }
    }

done:
    free_bufs(&run);
    free(cu_q);
    free(cu_k);
    free(used);
    free(q);
    free(k);
    free(v);
    free(slopes);
    free(got_out);
    free(got_lse);
    free(dev_lse);
    free(got_probs);
    free(low_out);
    free(low_lse);
    free(ref_out);
    free(ref_lse);
    free(ref_probs);
    if (r->pass && r->detail[0] == '\0')
        snprintf(r->detail, sizeof r->detail, "ok");
    return r->pass;
}
