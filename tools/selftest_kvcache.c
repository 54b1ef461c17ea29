/*
 * The self-test's KV-cache checks (facl_fwd_kvcache). The expected cache after the
 * append and the keys each sequence sees come from the test kit (kvcache_ref.h), so the
 * attention is judged by SPEC.md's rule against the same float64 reference as every
 * other check, and the cache images read back are compared element by element: the
 * appended rows with the rounded new keys after rotary, every other element unchanged.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_buffers.h"
#include "kvcache_ref.h"
#include "numeric.h"
#include "selftest.h"
#include "tool_util.h"

static void append_list(char *buf, size_t size, const char *what, const int32_t *v, int n)
{
    tool_appendf(buf, size, " %s=[", what);
    for (int i = 0; i < n; ++i) tool_appendf(buf, size, i ? ",%d" : "%d", (int)v[i]);
    tool_appendf(buf, size, "]");
}

void kv_case_name(const kv_case *c, char *buf, size_t size)
{
    buf[0] = '\0';
    tool_appendf(buf, size, "kvcache %s d=%d h=%d/%d b=%d", testkit_dtype_name(c->dtype), c->head_dim,
            c->heads_q, c->heads_kv, c->batch);
    if (c->seqlens_q)
        append_list(buf, size, "sq", c->seqlens_q, c->batch);
    else
        tool_appendf(buf, size, " sq=%d", c->seqlen_q);
    if (c->page_size)
        tool_appendf(buf, size, " paged=%d cap=%d", c->page_size, c->capacity);
    else
        tool_appendf(buf, size, " dense cap=%d", c->capacity);
    append_list(buf, size, "lens", c->cache_seqlens, c->batch);
    if (c->batch_idx) append_list(buf, size, "idx", c->batch_idx, c->batch);
    if (c->leftpad) append_list(buf, size, "pad", c->leftpad, c->batch);
    if (c->seqlen_new) tool_appendf(buf, size, c->seqlens_q ? " new=sq" : " new=%d", c->seqlen_new);
    if (c->rotary_dim)
        tool_appendf(buf, size, " rot=%d%s", c->rotary_dim, c->rotary_interleaved ? "i" : "");
    if (c->causal) tool_appendf(buf, size, " causal");
    if (c->softcap > 0) tool_appendf(buf, size, " softcap=%g", (double)c->softcap);
    if (c->num_splits)
        tool_appendf(buf, size, " splits=%d", c->num_splits);
    else
        tool_appendf(buf, size, " splits=auto");
    if (c->want_lse) tool_appendf(buf, size, " lse");
}

/* Everything one run owns; freed in one place. */
typedef struct kv_run {
    int32_t *cu_q, *cu_new, *table;
    float *q, *k_new, *v_new, *cos, *sin;
    unsigned char *k_img, *v_img, *got_k, *got_v, *raw;
    float *got_out, *got_lse, *dev_lse, *low_out, *low_lse;
    double *ref_out, *ref_lse;
    cl_mem mem[16];
    int n_mem;
    kvc_ref ref;
    int have_ref;
} kv_run;

static void *zalloc(size_t n, size_t size)
{
    return calloc(n ? n : 1, size ? size : 1);
}

/* N(0,1) draws rounded to dt, as floats and (if raw) as the stored bytes. */
static void fill(testkit_rng *rng, facl_dtype dt, float *f, unsigned char *raw, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        float x = testkit_round_to(dt, (float)testkit_rng_normal(rng));
        if (f) f[i] = x;
        if (raw) testkit_store(dt, raw, i, x);
    }
}

/* A buffer holding n elements of dt converted from floats (raw NULL) or raw bytes. */
static cl_mem upload(facl_context *ctx, kv_run *run, facl_dtype dt, const float *f,
                     const void *raw, size_t n, cl_int *e)
{
    size_t bytes = (n ? n : 1) * facl_dtype_size(dt);
    void *host = NULL;
    if (!raw) {
        host = zalloc(bytes, 1);
        if (!host) {
            *e = CL_OUT_OF_HOST_MEMORY;
            return NULL;
        }
        for (size_t i = 0; i < n; ++i) testkit_store(dt, host, i, f[i]);
        raw = host;
    }
    cl_mem m = clCreateBuffer(facl_context_cl_context(ctx), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                              bytes, (void *)raw, e);
    free(host);
    if (m) run->mem[run->n_mem++] = m;
    return m;
}

static cl_mem upload_poison(facl_context *ctx, kv_run *run, size_t bytes, cl_int *e)
{
    unsigned char *p = zalloc(bytes, 1);
    if (!p) {
        *e = CL_OUT_OF_HOST_MEMORY;
        return NULL;
    }
    memset(p, 0xff, bytes); /* NaN in every float dtype */
    cl_mem m = upload(ctx, run, FACL_DTYPE_I32, NULL, p, (bytes + 3) / 4, e);
    free(p);
    return m;
}

static void run_free(kv_run *r)
{
    void *all[] = {r->cu_q,    r->cu_new,  r->table,   r->q,       r->k_new,   r->v_new,
                   r->cos,     r->sin,     r->k_img,   r->v_img,   r->got_k,   r->got_v,
                   r->raw,     r->got_out, r->got_lse, r->dev_lse, r->low_out, r->low_lse,
                   r->ref_out, r->ref_lse};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) free(all[i]);
    for (int i = 0; i < r->n_mem; ++i) clReleaseMemObject(r->mem[i]);
    if (r->have_ref) kvc_ref_free(&r->ref);
}

/* Which output decides the row: the one nearest its bound (a failure always wins). */
static void consider(selftest_check_result *out, double *worst, const char *what,
                     const cmp_result *m, facl_dtype rule)
{
    int rel = rule == FACL_DTYPE_F32;
    double value = rel ? m->rel_l2 : m->max_err;
    double ratio = m->pass ? (m->bound > 0 ? value / m->bound : 0) : 1e300;
    if (ratio > *worst) {
        *worst = ratio;
        out->worst = what;
        out->measure = rel ? "relL2" : "max|e|";
        out->error = value;
        out->bound = m->bound;
    }
}

int selftest_run_kv_case(facl_context *ctx, const kv_case *c, selftest_check_result *out)
{
    memset(out, 0, sizeof *out);
    kv_case_name(c, out->name, sizeof out->name);
    out->family = "kvcache";
    out->dtype = c->dtype;
    out->worst = "-";
    out->measure = "-";

    const facl_dtype dt = c->dtype;
    const size_t es = facl_dtype_size(dt);
    const int B = c->batch, Hq = c->heads_q, Hk = c->heads_kv, D = c->head_dim;
    const int paged = c->page_size > 0, varlen = c->seqlens_q != NULL;
    const int max_blocks = paged ? (c->capacity + c->page_size - 1) / c->page_size : 0;
    const int num_blocks = paged ? B * max_blocks + 3 : 0; /* 3 pages no sequence uses */
    const int rows = paged ? num_blocks : (c->batch_cache ? c->batch_cache : B);
    const int per_row = paged ? c->page_size : c->capacity;
    const size_t img = (size_t)rows * per_row * Hk * D;
    const int half = c->rotary_dim / 2, seqlen_ro = c->capacity;
    cl_command_queue queue = facl_context_queue(ctx);
    kv_run run;
    memset(&run, 0, sizeof run);
    testkit_rng rng;
    testkit_rng_seed(&rng, c->seed);

    /* ---- host inputs */
    run.cu_q = zalloc((size_t)B + 1, sizeof *run.cu_q);
    run.cu_new = zalloc((size_t)B + 1, sizeof *run.cu_new);
    for (int b = 0; b < B; ++b) {
        int nq = varlen ? c->seqlens_q[b] : c->seqlen_q;
        run.cu_q[b + 1] = run.cu_q[b] + nq;
        run.cu_new[b + 1] = run.cu_new[b] + (varlen ? (c->seqlen_new ? nq : 0) : c->seqlen_new);
    }
    const int total_q = run.cu_q[B], total_new = run.cu_new[B];
    const int sq = varlen ? 0 : c->seqlen_q;
    int max_sq = 0;
    for (int b = 0; b < B; ++b)
        if (run.cu_q[b + 1] - run.cu_q[b] > max_sq) max_sq = run.cu_q[b + 1] - run.cu_q[b];
    run.q = zalloc((size_t)total_q * Hq * D, sizeof *run.q);
    run.k_img = zalloc(img, es);
    run.v_img = zalloc(img, es);
    run.k_new = zalloc((size_t)total_new * Hk * D, sizeof *run.k_new);
    run.v_new = zalloc((size_t)total_new * Hk * D, sizeof *run.v_new);
    run.cos = zalloc((size_t)seqlen_ro * (half ? half : 1), sizeof *run.cos);
    run.sin = zalloc((size_t)seqlen_ro * (half ? half : 1), sizeof *run.sin);
    run.table = zalloc((size_t)B * (max_blocks ? max_blocks : 1), sizeof *run.table);
    fill(&rng, dt, run.q, NULL, (size_t)total_q * Hq * D);
    fill(&rng, dt, NULL, run.k_img, img);
    fill(&rng, dt, NULL, run.v_img, img);
    fill(&rng, dt, run.k_new, NULL, (size_t)total_new * Hk * D);
    fill(&rng, dt, run.v_new, NULL, (size_t)total_new * Hk * D);
    for (int p = 0; p < seqlen_ro; ++p)
        for (int t = 0; t < half; ++t) {
            double angle = p * pow(10000.0, -2.0 * t / c->rotary_dim);
            run.cos[(size_t)p * half + t] = testkit_round_to(dt, (float)cos(angle));
            run.sin[(size_t)p * half + t] = testkit_round_to(dt, (float)sin(angle));
        }
    if (paged) {
        /* the pages in a random order out of all num_blocks */
        int32_t *perm = zalloc((size_t)num_blocks, sizeof *perm);
        for (int i = 0; i < num_blocks; ++i) perm[i] = i;
        for (int i = num_blocks - 1; i > 0; --i) {
            int j = (int)testkit_rng_range(&rng, 0, i);
            int32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        memcpy(run.table, perm, (size_t)B * max_blocks * sizeof *perm);
        free(perm);
    }

    /* ---- what the call must do (kvcache_ref.h) */
    kvc_problem p;
    memset(&p, 0, sizeof p);
    p.mode = KVC_FWD_KVCACHE;
    p.dt = dt;
    p.batch = B;
    p.heads_q = Hq;
    p.heads_kv = Hk;
    p.head_dim = D;
    p.cu_q = run.cu_q;
    p.q = run.q;
    p.cache.paged = paged;
    p.cache.batch_cache = paged ? 0 : rows;
    p.cache.seqlen_cache = paged ? 0 : c->capacity;
    p.cache.batch_idx = c->batch_idx;
    p.cache.num_blocks = num_blocks;
    p.cache.page_size = c->page_size;
    p.cache.max_blocks = max_blocks;
    p.cache.block_table = paged ? run.table : NULL;
    const int64_t strides[4] = {(int64_t)per_row * Hk * D, (int64_t)Hk * D, D, 1};
    memcpy(p.cache.k_stride, strides, sizeof strides);
    memcpy(p.cache.v_stride, strides, sizeof strides);
    p.cache_seqlens = c->cache_seqlens;
    p.leftpad = c->leftpad;
    p.cu_new = total_new ? run.cu_new : NULL;
    p.k_new = run.k_new;
    p.v_new = run.v_new;
    p.rot_cos = half ? run.cos : NULL;
    p.rot_sin = half ? run.sin : NULL;
    p.rotary_dim = c->rotary_dim;
    p.seqlen_ro = seqlen_ro;
    p.rotary_interleaved = c->rotary_interleaved;
    p.causal = c->causal;
    p.window_left = p.window_right = -1;
    p.softcap = c->softcap;
    char why[160];
    if (kvc_ref_build(&p, run.k_img, img, run.v_img, img, &run.ref, why, sizeof why) != 0) {
        snprintf(out->detail, sizeof out->detail, "the case is outside the contract: %s", why);
        run_free(&run);
        return 0;
    }
    run.have_ref = 1;

    /* ---- device buffers and the call (untrusted: the index buffers are validated) */
    cl_int e = CL_SUCCESS;
    cl_mem bq = upload(ctx, &run, dt, run.q, NULL, (size_t)total_q * Hq * D, &e);
    cl_mem bk = e ? NULL : upload(ctx, &run, dt, NULL, run.k_img, img, &e);
    cl_mem bv = e ? NULL : upload(ctx, &run, dt, NULL, run.v_img, img, &e);
    cl_mem bkn = e ? NULL : upload(ctx, &run, dt, run.k_new, NULL, (size_t)total_new * Hk * D, &e);
    cl_mem bvn = e ? NULL : upload(ctx, &run, dt, run.v_new, NULL, (size_t)total_new * Hk * D, &e);
    cl_mem bcos = e ? NULL : upload(ctx, &run, dt, run.cos, NULL, (size_t)seqlen_ro * half, &e);
    cl_mem bsin = e ? NULL : upload(ctx, &run, dt, run.sin, NULL, (size_t)seqlen_ro * half, &e);
    cl_mem blens = e ? NULL : upload(ctx, &run, FACL_DTYPE_I32, NULL, c->cache_seqlens, (size_t)B, &e);
    cl_mem bpad = e || !c->leftpad ? NULL
                                   : upload(ctx, &run, FACL_DTYPE_I32, NULL, c->leftpad, (size_t)B, &e);
    cl_mem bidx = e || !c->batch_idx
                      ? NULL
                      : upload(ctx, &run, FACL_DTYPE_I32, NULL, c->batch_idx, (size_t)B, &e);
    cl_mem btab = e || !paged ? NULL
                              : upload(ctx, &run, FACL_DTYPE_I32, NULL, run.table,
                                       (size_t)B * max_blocks, &e);
    cl_mem bcuq = e || !varlen ? NULL
                               : upload(ctx, &run, FACL_DTYPE_I32, NULL, run.cu_q, (size_t)B + 1, &e);
    cl_mem bcun = e || !varlen ? NULL
                               : upload(ctx, &run, FACL_DTYPE_I32, NULL, run.cu_new, (size_t)B + 1, &e);
    cl_mem bout = e ? NULL : upload_poison(ctx, &run, (size_t)total_q * Hq * D * es, &e);
    cl_mem blse = e ? NULL : upload_poison(ctx, &run, (size_t)Hq * total_q * 4, &e);
    if (e != CL_SUCCESS) {
        snprintf(out->detail, sizeof out->detail, "buffers: OpenCL error %d", (int)e);
        run_free(&run);
        return 0;
    }

    const int64_t q4[4] = {B, sq, Hq, D}, q3[3] = {total_q, Hq, D};
    const int64_t l3[3] = {B, Hq, sq}, l2[2] = {Hq, total_q};
    const int64_t cache4[4] = {rows, per_row, Hk, D};
    const int64_t new4[4] = {B, c->seqlen_new, Hk, D}, new3[3] = {total_new, Hk, D};
    const int64_t ro[2] = {seqlen_ro, half}, b1[1] = {B}, cu1[1] = {B + 1};
    const int64_t tab[2] = {B, max_blocks};
    facl_tensor tq = varlen ? facl_tensor_contiguous(bq, dt, 3, q3) : facl_tensor_contiguous(bq, dt, 4, q4);
    facl_tensor tout = varlen ? facl_tensor_contiguous(bout, dt, 3, q3)
                              : facl_tensor_contiguous(bout, dt, 4, q4);
    facl_tensor tlse = varlen ? facl_tensor_contiguous(blse, FACL_DTYPE_F32, 2, l2)
                              : facl_tensor_contiguous(blse, FACL_DTYPE_F32, 3, l3);
    facl_tensor tk = facl_tensor_contiguous(bk, dt, 4, cache4);
    facl_tensor tv = facl_tensor_contiguous(bv, dt, 4, cache4);
    facl_tensor tkn = varlen ? facl_tensor_contiguous(bkn, dt, 3, new3)
                             : facl_tensor_contiguous(bkn, dt, 4, new4);
    facl_tensor tvn = varlen ? facl_tensor_contiguous(bvn, dt, 3, new3)
                             : facl_tensor_contiguous(bvn, dt, 4, new4);
    facl_tensor tcos = facl_tensor_contiguous(bcos, dt, 2, ro);
    facl_tensor tsin = facl_tensor_contiguous(bsin, dt, 2, ro);
    facl_tensor tlens = facl_tensor_contiguous(blens, FACL_DTYPE_I32, 1, b1);
    facl_tensor tpad = facl_tensor_contiguous(bpad, FACL_DTYPE_I32, 1, b1);
    facl_tensor tidx = facl_tensor_contiguous(bidx, FACL_DTYPE_I32, 1, b1);
    facl_tensor ttab = facl_tensor_contiguous(btab, FACL_DTYPE_I32, 2, tab);
    facl_tensor tcuq = facl_tensor_contiguous(bcuq, FACL_DTYPE_I32, 1, cu1);
    facl_tensor tcun = facl_tensor_contiguous(bcun, FACL_DTYPE_I32, 1, cu1);

    facl_kvcache_args a = FACL_KVCACHE_ARGS_INIT;
    a.num_splits = c->num_splits;
    a.cache_seqlens = &tlens;
    a.rotary_interleaved = c->rotary_interleaved;
    if (total_new) {
        a.k_new = &tkn;
        a.v_new = &tvn;
        if (varlen) a.cu_seqlens_k_new = &tcun;
    }
    if (half) {
        a.rotary_cos = &tcos;
        a.rotary_sin = &tsin;
    }
    if (bidx) a.cache_batch_idx = &tidx;
    if (bpad) a.cache_leftpad = &tpad;
    if (paged) a.block_table = &ttab;
    if (varlen) {
        a.cu_seqlens_q = &tcuq;
        a.max_seqlen_q = max_sq;
    }
    facl_attn_options o = facl_attn_options_default();
    o.causal = c->causal;
    o.softcap = c->softcap;

    double t0 = tool_now_seconds();
    facl_status st = facl_fwd_kvcache(ctx, queue, &tq, &tk, &tv, &a, &tout,
                                      c->want_lse ? &tlse : NULL, &o, 0, NULL, NULL);
    if (st == FACL_SUCCESS) e = clFinish(queue);
    out->ms = (tool_now_seconds() - t0) * 1e3;
    if (st != FACL_SUCCESS || e != CL_SUCCESS) {
        if (st != FACL_SUCCESS)
            snprintf(out->detail, sizeof out->detail, "facl_fwd_kvcache: %s: %s",
                     facl_status_string(st), facl_last_error());
        else
            snprintf(out->detail, sizeof out->detail, "clFinish: OpenCL error %d", (int)e);
        run_free(&run);
        return 0;
    }

    /* ---- read back */
    run.got_k = zalloc(img, es);
    run.got_v = zalloc(img, es);
    run.raw = zalloc((size_t)total_q * Hq * D, es);
    e = clEnqueueReadBuffer(queue, bk, CL_TRUE, 0, img * es, run.got_k, 0, NULL, NULL);
    if (e == CL_SUCCESS)
        e = clEnqueueReadBuffer(queue, bv, CL_TRUE, 0, img * es, run.got_v, 0, NULL, NULL);
    if (e == CL_SUCCESS)
        e = clEnqueueReadBuffer(queue, bout, CL_TRUE, 0, (size_t)total_q * Hq * D * es, run.raw, 0,
                                NULL, NULL);
    run.dev_lse = zalloc((size_t)Hq * total_q, sizeof *run.dev_lse);
    if (e == CL_SUCCESS && c->want_lse)
        e = clEnqueueReadBuffer(queue, blse, CL_TRUE, 0, (size_t)Hq * total_q * 4, run.dev_lse, 0,
                                NULL, NULL);
    if (e != CL_SUCCESS) {
        snprintf(out->detail, sizeof out->detail, "read back: OpenCL error %d", (int)e);
        run_free(&run);
        return 0;
    }

    /* ---- the cache: appended rows within rounding of the rotated new keys, the rest
     * bit for bit */
    int64_t k_first = -1, v_first = -1;
    int64_t k_bad = kvc_check_image(dt, run.ref.k_img, run.ref.k_tol, run.got_k, img, &k_first);
    int64_t v_bad = kvc_check_image(dt, run.ref.v_img, run.ref.v_tol, run.got_v, img, &v_first);

    /* ---- the attention against the reference over the keys the call must see */
    const size_t n_out = (size_t)total_q * Hq * D, n_lse = (size_t)Hq * total_q;
    run.got_out = zalloc(n_out, sizeof *run.got_out);
    for (size_t i = 0; i < n_out; ++i) run.got_out[i] = testkit_load(dt, run.raw, i);
    run.got_lse = zalloc(n_lse, sizeof *run.got_lse);
    for (int b = 0; b < B; ++b) /* dense (B, Hq, sq) -> the reference's (Hq, total_q) */
        for (int h = 0; h < Hq; ++h)
            for (int i = run.cu_q[b]; i < run.cu_q[b + 1]; ++i)
                run.got_lse[(size_t)h * total_q + i] =
                    varlen ? run.dev_lse[(size_t)h * total_q + i]
                           : run.dev_lse[((size_t)b * Hq + h) * sq + (i - run.cu_q[b])];
    run.ref_out = zalloc(n_out, sizeof *run.ref_out);
    run.ref_lse = zalloc(n_lse, sizeof *run.ref_lse);
    run.low_out = zalloc(n_out, sizeof *run.low_out);
    run.low_lse = zalloc(n_lse, sizeof *run.low_lse);
    ref_attention_f64(&run.ref.rp, run.ref.q, run.ref.k, run.ref.v, run.ref_out, run.ref_lse);
    const int lowp = dt != FACL_DTYPE_F32; /* the fp32 rule does not use it */
    if (lowp)
        ref_attention_lowp(&run.ref.rp, dt, run.ref.q, run.ref.k, run.ref.v, run.low_out,
                           run.low_lse);
    cmp_result r_out = cmp_check(dt, run.got_out, run.ref_out, lowp ? run.low_out : NULL, n_out);
    cmp_result r_lse = {0};
    r_lse.pass = 1;
    if (c->want_lse)
        r_lse = cmp_check(dt, run.got_lse, run.ref_lse, lowp ? run.low_lse : NULL, n_lse);

    double worst = -1.0;
    consider(out, &worst, "out", &r_out, dt);
    if (c->want_lse) consider(out, &worst, "lse", &r_lse, dt);
    out->pass = r_out.pass && r_lse.pass && k_bad == 0 && v_bad == 0;
    out->detail[0] = '\0';
    if (!r_out.pass || !r_lse.pass) {
        const cmp_result *m = !r_out.pass ? &r_out : &r_lse;
        char line[128];
        cmp_format(m, line, sizeof line);
        tool_appendf(out->detail, sizeof out->detail, "%s wrong: %s", !r_out.pass ? "out" : "lse",
                line);
    }
    if (k_bad || v_bad) {
        /* the cache decides the row: the attention read what was stored */
        char where[128];
        kvc_describe_elem(&p, k_bad ? 0 : 1, k_bad ? k_first : v_first, where, sizeof where);
        out->worst = "cache";
        out->measure = "bad";
        out->error = (double)(k_bad + v_bad);
        out->bound = 0;
        tool_appendf(out->detail, sizeof out->detail,
                "%scache after the append: %lld k and %lld v elements wrong, first: %s",
                out->detail[0] ? "; " : "", (long long)k_bad, (long long)v_bad, where);
    }
    if (out->pass)
        snprintf(out->detail, sizeof out->detail, "ok (cache: %zu k and v elements checked)",
                 2 * img);
    run_free(&run);
    return out->pass;
}
