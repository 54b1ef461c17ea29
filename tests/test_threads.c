/* Threads (facl.h "Threads"; issue 8 item 7): many threads calling the forward
 * functions at once, every result checked against the float64 reference.
 *
 *   one_context:    8 threads x 100 mixed calls on ONE shared facl_context, made
 *                   without a disk cache so that every run is a cold start: the
 *                   threads' first calls compile the programs while others wait for
 *                   them or already use them;
 *   eight_contexts: 8 threads x 100 mixed calls, each thread on its OWN context
 *                   (created and freed inside the thread, all at the same time), after
 *                   a single-threaded warm-up that runs each variant once and fills the
 *                   disk cache (a failure there is no thread problem).
 *
 * Each thread draws its own random inputs (seeds differ per thread and call) and owns
 * its buffers. Calls rotate over six kernel programs (dtype, head dim, varlen, softcap,
 * ALiBi, dropout) and, within them, over layouts (dense, qkv-packed, kv-packed and the
 * varlen forms), causal on/off, both mask alignments, windows (small and wider than the
 * sequences), a non-default scale, GQA, empty varlen sequences, trust_cu_seqlens, lse
 * on/off and strided views. Half the calls go through the testkit's run_fwd_case (the
 * context's queue, fresh strided or dense buffers per call, inputs checked unchanged);
 * the other half through run_on_queue below: the thread's own in-order queue, its
 * persistent buffers (poisoned with clEnqueueFillBuffer before every call, and checked
 * for stray writes past the views), inputs uploaded asynchronously and passed to the
 * call as a non-empty wait list. Every tenth call is followed by an invalid one:
 * facl_last_error() must then hold this thread's message, not another thread's.
 *
 * The workers never call cmocka (its asserts are not thread-safe): each records its
 * failures, and the test thread asserts after joining them. A deadlock is bounded by
 * the meson timeout. FACL_TEST_THREAD_CALLS=n changes the calls per thread (default
 * 100), for quick local runs.
 */
#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* pthreads */
#endif
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "case_runner.h"
#include "compare.h"
#include "facl.h"
#include "numeric.h"
#include "reference.h"

enum {
    NTHREADS = 8,
    DEFAULT_CALLS = 100,
    MAX_B = 3,
    MAX_S = 48,
    MAX_H = 4,
    MAX_D = 32,
    MAX_T = MAX_B * MAX_S,
    TAIL = 64, /* poisoned elements past every output view of run_on_queue */
};

/* ------------------------------------------------------------------ variants */

/* One kernel program each on every path (its build options are dtype, head dim,
 * varlen, softcap, ALiBi and dropout; layouts, masks, scale and lse are arguments). */
typedef struct variant {
    facl_dtype dtype;
    int head_dim, varlen, softcap, alibi, dropout;
} variant;

static const variant k_variants[] = {
    {FACL_DTYPE_F32, 32, 0, 0, 0, 0},  /* plain fp32 */
    {FACL_DTYPE_F16, 32, 0, 1, 0, 0},  /* softcap */
    {FACL_DTYPE_BF16, 32, 1, 0, 1, 0}, /* varlen, ALiBi */
    {FACL_DTYPE_F16, 16, 0, 0, 0, 1},  /* dropout */
    {FACL_DTYPE_F32, 24, 1, 0, 0, 0},  /* varlen, head dim not a multiple of 8 */
    {FACL_DTYPE_BF16, 32, 0, 0, 0, 0}, /* plain bf16 */
};
#define NVARIANTS ((int)(sizeof k_variants / sizeof k_variants[0]))

typedef struct call_plan {
    fwd_case c;
    int32_t lens_q[MAX_B], lens_k[MAX_B];
    int caller_queue; /* 1: run_on_queue on the thread's queue; 0: run_fwd_case */
} call_plan;

/* Call `i` of thread `tid`: the variant and the rotations follow (tid, i); sizes and
 * values come from the thread's generator. */
static void plan_call(int tid, int i, testkit_rng *rng, call_plan *p)
{
    const variant *v = &k_variants[(tid + i) % NVARIANTS];
    const int r = i / NVARIANTS + 5 * tid; /* rotation within the variant */
    fwd_case *c = &p->c;
    facl_attn_options o = FACL_ATTN_OPTIONS_INIT;

    memset(p, 0, sizeof *p);
    p->caller_queue = (i + r) % 2;
    c->dtype = v->dtype;
    c->head_dim = v->head_dim;
    c->batch = (int)testkit_rng_range(rng, 1, MAX_B);
    if (v->varlen) {
        static const case_layout layouts[3] = {CASE_VARLEN, CASE_VARLEN_QKVPACKED,
                                               CASE_VARLEN_KVPACKED};
        c->layout = layouts[r % 3];
    } else {
        static const case_layout layouts[3] = {CASE_DENSE, CASE_QKVPACKED, CASE_KVPACKED};
        c->layout = layouts[r % 3];
    }
    c->heads_kv = (int)testkit_rng_range(rng, 1, 2);
    c->heads_q = c->heads_kv * (int)testkit_rng_range(rng, 1, 2); /* GQA half the time */
    c->seqlen_q = (int)testkit_rng_range(rng, 1, MAX_S);
    c->seqlen_k = (int)testkit_rng_range(rng, 1, MAX_S);
    if (c->layout == CASE_QKVPACKED || c->layout == CASE_VARLEN_QKVPACKED) {
        c->heads_q = c->heads_kv = (int)testkit_rng_range(rng, 1, MAX_H);
        c->seqlen_k = c->seqlen_q;
    }
    if (v->varlen) {
        int any = 0;
        for (int b = 0; b < c->batch; b++) {
            /* an empty sequence now and then */
            p->lens_q[b] = testkit_rng_range(rng, 0, 7) == 0
                               ? 0 : (int32_t)testkit_rng_range(rng, 1, MAX_S);
            p->lens_k[b] = c->layout == CASE_VARLEN_QKVPACKED
                               ? p->lens_q[b] : (int32_t)testkit_rng_range(rng, 1, MAX_S);
            any |= p->lens_q[b] > 0;
        }
        if (!any)
            p->lens_q[0] = 1 + tid;
        if (c->layout == CASE_VARLEN_QKVPACKED)
            p->lens_k[0] = p->lens_q[0];
        c->seqlens_q = p->lens_q;
        c->seqlens_k = p->lens_k;
        o.trust_cu_seqlens = r % 4 == 3;
    }

    o.causal = (r / 3) % 2;
    o.mask_align = (r / 6) % 2 ? FACL_ALIGN_TOP_LEFT : FACL_ALIGN_BOTTOM_RIGHT;
    if ((r + tid) % 3 == 0) {
        o.window_left = (int)testkit_rng_range(rng, 0, 20);
        o.window_right = o.causal ? -1 : (int)testkit_rng_range(rng, 0, 20);
    } else if ((r + tid) % 7 == 1) {
        o.window_left = 1 << 30; /* wider than any sequence: unbounded */
        o.window_right = o.causal ? -1 : INT32_MAX; /* causal is window_right 0 */
    }
    if (r % 5 == 2)
        o.softmax_scale = 0.25f;
    if (v->softcap)
        o.softcap = (float)testkit_rng_range(rng, 2, 30);
    if (v->dropout) {
        o.dropout_p = 0.125f * (float)testkit_rng_range(rng, 1, 4);
        o.dropout_seed = testkit_rng_next(rng);
        o.dropout_offset = (uint64_t)testkit_rng_range(rng, 0, 1000);
    }
    c->opts = o;
    c->use_alibi = v->alibi;
    c->alibi_per_batch = v->alibi && r % 2;
    c->want_lse = (i / 2 + tid) % 2;
    c->strided = !p->caller_queue && (r / 2) % 2;
    c->seed = ((uint64_t)tid << 32) ^ ((uint64_t)i * 0x9E3779B97F4A7C15ull) ^ 0x7468726561ull;
}

/* ------------------------------------------------------------------ a thread's own queue and buffers */

typedef struct thread_bufs {
    cl_command_queue queue;
    cl_mem in0, in1, in2; /* q or packed qkv / q, packed kv / q, k, v */
    cl_mem out, lse, cu_q, cu_k, slopes;
} thread_bufs;

#define IN_BYTES ((size_t)MAX_T * 3 * MAX_H * MAX_D * 4)
#define OUT_BYTES (((size_t)MAX_T * MAX_H * MAX_D + TAIL) * 4)
#define LSE_BYTES (((size_t)MAX_T * MAX_H + TAIL) * 4)

static void bufs_release(thread_bufs *tb)
{
    cl_mem *m[] = {&tb->in0, &tb->in1, &tb->in2, &tb->out, &tb->lse, &tb->cu_q, &tb->cu_k,
                   &tb->slopes};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (*m[i]) {
            clReleaseMemObject(*m[i]);
            *m[i] = NULL;
        }
    if (tb->queue) {
        clReleaseCommandQueue(tb->queue);
        tb->queue = NULL;
    }
}

static int bufs_create(facl_context *ctx, thread_bufs *tb, char *err, size_t errsize)
{
    cl_context cl = facl_context_cl_context(ctx);
    cl_int e = CL_SUCCESS;
    struct {
        cl_mem *m;
        size_t bytes;
    } want[] = {{&tb->in0, IN_BYTES}, {&tb->in1, IN_BYTES}, {&tb->in2, IN_BYTES},
                {&tb->out, OUT_BYTES}, {&tb->lse, LSE_BYTES}, {&tb->cu_q, 4 * (MAX_B + 1)},
                {&tb->cu_k, 4 * (MAX_B + 1)}, {&tb->slopes, 4 * MAX_B * MAX_H}};
    memset(tb, 0, sizeof *tb);
    tb->queue = clCreateCommandQueue(cl, facl_context_device(ctx), 0, &e);
    if (e != CL_SUCCESS) {
        snprintf(err, errsize, "clCreateCommandQueue: %d", (int)e);
        return 0;
    }
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        *want[i].m = clCreateBuffer(cl, CL_MEM_READ_WRITE, want[i].bytes, NULL, &e);
        if (e != CL_SUCCESS) {
            *want[i].m = NULL;
            snprintf(err, errsize, "clCreateBuffer(%zu bytes): %d", want[i].bytes, (int)e);
            bufs_release(tb);
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ run_on_queue */

static int is_varlen(case_layout l)
{
    return l == CASE_VARLEN || l == CASE_VARLEN_QKVPACKED || l == CASE_VARLEN_KVPACKED;
}

static void set_fail(case_result *r, const char *fmt, ...)
{
    va_list ap;
    if (r->pass) {
        va_start(ap, fmt);
        vsnprintf(r->detail, sizeof r->detail, fmt, ap);
        va_end(ap);
    }
    r->pass = 0;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "test_threads: out of host memory\n");
        abort();
    }
    return p;
}

/* Logical row-major (rows, npack, heads, d) from logical (rows, heads, d) arrays. */
static void pack_rows(facl_dtype dt, unsigned char *dst, int64_t rows, int npack, int heads,
                      int d, const float *const *src)
{
    for (int64_t t = 0; t < rows; t++)
        for (int w = 0; w < npack; w++)
            for (int h = 0; h < heads; h++)
                for (int e = 0; e < d; e++)
                    testkit_store(dt, dst, (size_t)(((t * npack + w) * heads + h) * d + e),
                                  src[w][(t * heads + h) * d + e]);
}

static int normalise_window(int w, int64_t keys)
{
    return w > 0 && (int64_t)w >= keys ? -1 : w;
}

static int all_ff(const unsigned char *p, size_t n, size_t *where)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0xff) {
            *where = i;
            return 0;
        }
    return 1;
}

static double now_seconds(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The same case as run_fwd_case would run (same inputs for the same seed, contiguous
 * views), on `tb->queue`, with the uploads as the call's wait list. */
static int run_on_queue(facl_context *ctx, thread_bufs *tb, const fwd_case *c, case_result *r)
{
    const facl_dtype dt = c->dtype;
    const size_t es = facl_dtype_size(dt);
    const int B = c->batch, Hq = c->heads_q, Hk = c->heads_kv, D = c->head_dim;
    const int varlen = is_varlen(c->layout);
    const int qkvp = c->layout == CASE_QKVPACKED || c->layout == CASE_VARLEN_QKVPACKED;
    const int kvp = c->layout == CASE_KVPACKED || c->layout == CASE_VARLEN_KVPACKED;
    int32_t cu_q[MAX_B + 1] = {0}, cu_k[MAX_B + 1] = {0};
    int64_t Tq, Tk, msq = 0, msk = 0;
    float *q, *k, *v, slopes[MAX_B * MAX_H];
    unsigned char *h0, *h1 = NULL, *h2 = NULL, *back_out, *back_lse;
    float *got_out, *got_lse, *low_out, *low_lse;
    double *ref_out, *ref_lse;
    facl_tensor tq, tk, tv, tpack, tout, tlse, tcuq, tcuk, talibi;
    facl_attn_options o = c->opts;
    cl_event waits[8], ev = NULL;
    cl_uint nwait = 0;
    cl_int err;
    testkit_rng rng;
    ref_problem rp;
    size_t out_elems, lse_elems, where;
    const unsigned char ff = 0xff;
    double t0;

    memset(r, 0, sizeof *r);
    r->pass = 1;
    r->out.pass = r->lse.pass = r->probs.pass = 1;
    r->out.first_bad = r->lse.first_bad = r->probs.first_bad = -1;

    for (int b = 0; b < B; b++) {
        int32_t lq = varlen ? c->seqlens_q[b] : c->seqlen_q;
        int32_t lk = varlen ? c->seqlens_k[b] : c->seqlen_k;
        if (qkvp)
            lk = lq;
        cu_q[b + 1] = cu_q[b] + lq;
        cu_k[b + 1] = cu_k[b] + lk;
        msq = lq > msq ? lq : msq;
        msk = lk > msk ? lk : msk;
    }
    if (!varlen) {
        msq = c->seqlen_q;
        msk = c->seqlen_k;
    }
    Tq = cu_q[B];
    Tk = cu_k[B];
    out_elems = (size_t)(Tq * Hq * D);
    lse_elems = (size_t)(Hq * Tq);

    /* inputs, drawn exactly as run_fwd_case draws them */
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
    for (int b = 0; b < (c->alibi_per_batch ? B : 1); b++)
        for (int h = 0; h < Hq; h++)
            slopes[b * Hq + h] = (float)(exp2(-8.0 * (h + 1) / Hq) * (1.0 + 0.5 * b));

    /* host images in the storage type, and the views */
    {
        const int64_t dq[4] = {B, c->seqlen_q, Hq, D}, dk[4] = {B, c->seqlen_k, Hk, D};
        const int64_t vq[3] = {Tq, Hq, D}, vk[3] = {Tk, Hk, D};
        const int64_t d_qkv[5] = {B, c->seqlen_q, 3, Hq, D}, d_kv[5] = {B, c->seqlen_k, 2, Hk, D};
        const int64_t v_qkv[4] = {Tq, 3, Hq, D}, v_kv[4] = {Tk, 2, Hk, D};
        const int64_t dlse[3] = {B, Hq, c->seqlen_q}, vlse[2] = {Hq, Tq}, cus[1] = {B + 1};
        const int64_t al[2] = {B, Hq};
        if (qkvp) {
            const float *src[3] = {q, k, v};
            h0 = xcalloc((size_t)(Tq * 3 * Hq * D), es);
            pack_rows(dt, h0, Tq, 3, Hq, D, src);
            tpack = varlen ? facl_tensor_contiguous(tb->in0, dt, 4, v_qkv)
                           : facl_tensor_contiguous(tb->in0, dt, 5, d_qkv);
        } else {
            const float *srcq[1] = {q};
            h0 = xcalloc((size_t)(Tq * Hq * D), es);
            pack_rows(dt, h0, Tq, 1, Hq, D, srcq);
            tq = varlen ? facl_tensor_contiguous(tb->in0, dt, 3, vq)
                        : facl_tensor_contiguous(tb->in0, dt, 4, dq);
            if (kvp) {
                const float *src[2] = {k, v};
                h1 = xcalloc((size_t)(Tk * 2 * Hk * D), es);
                pack_rows(dt, h1, Tk, 2, Hk, D, src);
                tpack = varlen ? facl_tensor_contiguous(tb->in1, dt, 4, v_kv)
                               : facl_tensor_contiguous(tb->in1, dt, 5, d_kv);
            } else {
                const float *srck[1] = {k}, *srcv[1] = {v};
                h1 = xcalloc((size_t)(Tk * Hk * D), es);
                h2 = xcalloc((size_t)(Tk * Hk * D), es);
                pack_rows(dt, h1, Tk, 1, Hk, D, srck);
                pack_rows(dt, h2, Tk, 1, Hk, D, srcv);
                tk = varlen ? facl_tensor_contiguous(tb->in1, dt, 3, vk)
                            : facl_tensor_contiguous(tb->in1, dt, 4, dk);
                tv = varlen ? facl_tensor_contiguous(tb->in2, dt, 3, vk)
                            : facl_tensor_contiguous(tb->in2, dt, 4, dk);
            }
        }
        tout = varlen ? facl_tensor_contiguous(tb->out, dt, 3, vq)
                      : facl_tensor_contiguous(tb->out, dt, 4, dq);
        tlse = varlen ? facl_tensor_contiguous(tb->lse, FACL_DTYPE_F32, 2, vlse)
                      : facl_tensor_contiguous(tb->lse, FACL_DTYPE_F32, 3, dlse);
        tcuq = facl_tensor_contiguous(tb->cu_q, FACL_DTYPE_I32, 1, cus);
        tcuk = facl_tensor_contiguous(tb->cu_k, FACL_DTYPE_I32, 1, cus);
        talibi = c->alibi_per_batch ? facl_tensor_contiguous(tb->slopes, FACL_DTYPE_F32, 2, al)
                                    : facl_tensor_contiguous(tb->slopes, FACL_DTYPE_F32, 1, al + 1);
        o.alibi_slopes = c->use_alibi ? &talibi : NULL;
        o.attn_probs = NULL;
    }

    /* uploads and poison, all asynchronous: they are the call's wait list */
#define ENQ(call)                                                                   \
    do {                                                                            \
        err = (call);                                                               \
        if (err != CL_SUCCESS) {                                                    \
            set_fail(r, "%s: %d", #call, (int)err);                                 \
            goto finish;                                                            \
        }                                                                           \
        nwait++;                                                                    \
    } while (0)
    ENQ(clEnqueueFillBuffer(tb->queue, tb->out, &ff, 1, 0, OUT_BYTES, 0, NULL, &waits[nwait]));
    ENQ(clEnqueueFillBuffer(tb->queue, tb->lse, &ff, 1, 0, LSE_BYTES, 0, NULL, &waits[nwait]));
    ENQ(clEnqueueWriteBuffer(tb->queue, tb->in0, CL_FALSE, 0,
                             (size_t)(Tq * (qkvp ? 3 : 1) * Hq * D) * es, h0, 0, NULL,
                             &waits[nwait]));
    if (h1)
        ENQ(clEnqueueWriteBuffer(tb->queue, tb->in1, CL_FALSE, 0,
                                 (size_t)(Tk * (kvp ? 2 : 1) * Hk * D) * es, h1, 0, NULL,
                                 &waits[nwait]));
    if (h2)
        ENQ(clEnqueueWriteBuffer(tb->queue, tb->in2, CL_FALSE, 0, (size_t)(Tk * Hk * D) * es,
                                 h2, 0, NULL, &waits[nwait]));
    if (varlen) {
        ENQ(clEnqueueWriteBuffer(tb->queue, tb->cu_q, CL_FALSE, 0, 4 * (size_t)(B + 1), cu_q,
                                 0, NULL, &waits[nwait]));
        ENQ(clEnqueueWriteBuffer(tb->queue, tb->cu_k, CL_FALSE, 0, 4 * (size_t)(B + 1), cu_k,
                                 0, NULL, &waits[nwait]));
    }
    if (c->use_alibi)
        ENQ(clEnqueueWriteBuffer(tb->queue, tb->slopes, CL_FALSE, 0,
                                 sizeof(float) * (size_t)(c->alibi_per_batch ? B : 1) * Hq,
                                 slopes, 0, NULL, &waits[nwait]));
#undef ENQ

    t0 = now_seconds();
    {
        const facl_tensor *lse = c->want_lse ? &tlse : NULL;
        switch (c->layout) {
        case CASE_DENSE:
            r->status = facl_fwd(ctx, tb->queue, &tq, &tk, &tv, &tout, lse, &o, nwait, waits, &ev);
            break;
        case CASE_QKVPACKED:
            r->status = facl_fwd_qkvpacked(ctx, tb->queue, &tpack, &tout, lse, &o, nwait, waits,
                                           &ev);
            break;
        case CASE_KVPACKED:
            r->status = facl_fwd_kvpacked(ctx, tb->queue, &tq, &tpack, &tout, lse, &o, nwait,
                                          waits, &ev);
            break;
        case CASE_VARLEN:
            r->status = facl_varlen_fwd(ctx, tb->queue, &tq, &tk, &tv, &tcuq, &tcuk, msq, msk,
                                        &tout, lse, &o, nwait, waits, &ev);
            break;
        case CASE_VARLEN_QKVPACKED:
            r->status = facl_varlen_fwd_qkvpacked(ctx, tb->queue, &tpack, &tcuq, msq, &tout, lse,
                                                  &o, nwait, waits, &ev);
            break;
        case CASE_VARLEN_KVPACKED:
            r->status = facl_varlen_fwd_kvpacked(ctx, tb->queue, &tq, &tpack, &tcuq, &tcuk, msq,
                                                 msk, &tout, lse, &o, nwait, waits, &ev);
            break;
        }
    }
    if (r->status != FACL_SUCCESS) {
        set_fail(r, "facl call failed: %s: %s", facl_status_string(r->status),
                 facl_last_error());
        goto finish;
    }
    if (!ev) {
        set_fail(r, "a successful call returned no event");
        goto finish;
    }
    err = clWaitForEvents(1, &ev);
    r->seconds = now_seconds() - t0;
    if (err != CL_SUCCESS) {
        set_fail(r, "clWaitForEvents: %d", (int)err);
        goto finish;
    }

finish:
    /* the uploads read h0..h2, cu_q, cu_k and slopes: never free them before this */
    err = clFinish(tb->queue);
    if (err != CL_SUCCESS)
        set_fail(r, "clFinish: %d", (int)err);
    if (ev)
        clReleaseEvent(ev);
    for (cl_uint i = 0; i < nwait; i++)
        clReleaseEvent(waits[i]);
    free(h0);
    free(h1);
    free(h2);
    if (!r->pass) {
        free(q);
        free(k);
        free(v);
        return 0;
    }

    /* read back whole buffers: the views, then poison everywhere else */
    back_out = xcalloc(OUT_BYTES, 1);
    back_lse = xcalloc(LSE_BYTES, 1);
    err = clEnqueueReadBuffer(tb->queue, tb->out, CL_TRUE, 0, OUT_BYTES, back_out, 0, NULL, NULL);
    if (err == CL_SUCCESS)
        err = clEnqueueReadBuffer(tb->queue, tb->lse, CL_TRUE, 0, LSE_BYTES, back_lse, 0, NULL,
                                  NULL);
    if (err != CL_SUCCESS)
        set_fail(r, "clEnqueueReadBuffer: %d", (int)err);
    else if (!all_ff(back_out + out_elems * es, OUT_BYTES - out_elems * es, &where))
        set_fail(r, "out: byte %zu past the view was written", out_elems * es + where);
    else if (!all_ff(back_lse + (c->want_lse ? lse_elems * 4 : 0),
                     LSE_BYTES - (c->want_lse ? lse_elems * 4 : 0), &where))
        set_fail(r, "lse: byte %zu %s was written", (c->want_lse ? lse_elems * 4 : 0) + where,
                 c->want_lse ? "past the view" : "of a buffer not passed to the call");

    got_out = xcalloc(out_elems, sizeof *got_out);
    got_lse = xcalloc(lse_elems, sizeof *got_lse);
    for (size_t i = 0; i < out_elems; i++)
        got_out[i] = testkit_load(dt, back_out, i);
    if (c->want_lse) {
        for (int b = 0; b < B; b++) /* dense (b, h, s) -> the reference's (h, total) */
            for (int h = 0; h < Hq; h++)
                for (int64_t i = 0; i < cu_q[b + 1] - cu_q[b]; i++)
                    got_lse[(size_t)h * Tq + cu_q[b] + i] = testkit_load(
                        FACL_DTYPE_F32, back_lse,
                        varlen ? (size_t)h * Tq + cu_q[b] + i
                               : ((size_t)b * Hq + h) * c->seqlen_q + i);
    }

    memset(&rp, 0, sizeof rp);
    rp.batch = B;
    rp.heads_q = Hq;
    rp.heads_kv = Hk;
    rp.head_dim = D;
    rp.cu_q = cu_q;
    rp.cu_k = cu_k;
    rp.scale = o.softmax_scale != 0.0f ? o.softmax_scale : 1.0f / sqrtf((float)D);
    /* a window of at least the call's key length (dense: seqlen_k; varlen: max_seqlen_k)
     * is unbounded on that side, as the library documents */
    rp.window_left = normalise_window(o.window_left, msk);
    rp.window_right = o.causal ? 0 : normalise_window(o.window_right, msk);
    rp.align_top_left = o.mask_align == FACL_ALIGN_TOP_LEFT;
    rp.softcap = o.softcap;
    rp.alibi = c->use_alibi ? slopes : NULL;
    rp.alibi_per_batch = c->alibi_per_batch;
    rp.dropout_p = o.dropout_p;
    rp.seed = o.dropout_seed;
    rp.offset = o.dropout_offset;
    ref_out = xcalloc(out_elems, sizeof *ref_out);
    ref_lse = xcalloc(lse_elems, sizeof *ref_lse);
    low_out = xcalloc(out_elems, sizeof *low_out);
    low_lse = xcalloc(lse_elems, sizeof *low_lse);
    ref_attention_f64(&rp, q, k, v, ref_out, ref_lse);
    if (dt != FACL_DTYPE_F32)
        ref_attention_lowp(&rp, dt, q, k, v, low_out, low_lse);
    r->out = cmp_check(dt, got_out, ref_out, dt != FACL_DTYPE_F32 ? low_out : NULL, out_elems);
    if (!r->out.pass) {
        int64_t bad = r->out.first_bad;
        set_fail(r, "out wrong at row %lld head %d dim %d: got %.6g ref %.6g low %.6g",
                 (long long)(bad / ((int64_t)Hq * D)), (int)(bad / D % Hq), (int)(bad % D),
                 (double)got_out[bad], ref_out[bad], (double)low_out[bad]);
    }
    if (c->want_lse) {
        r->lse = cmp_check(dt, got_lse, ref_lse, dt != FACL_DTYPE_F32 ? low_lse : NULL,
                           lse_elems);
        if (!r->lse.pass) {
            int64_t bad = r->lse.first_bad;
            set_fail(r, "lse wrong at head %d row %lld: got %.8g ref %.8g", (int)(bad / Tq),
                     (long long)(bad % Tq), (double)got_lse[bad], ref_lse[bad]);
        }
    }
    free(back_out);
    free(back_lse);
    free(got_out);
    free(got_lse);
    free(low_out);
    free(low_lse);
    free(ref_out);
    free(ref_lse);
    free(q);
    free(k);
    free(v);
    if (r->pass)
        snprintf(r->detail, sizeof r->detail, "ok");
    return r->pass;
}

/* ------------------------------------------------------------------ per-thread errors */

/* An invalid call whose message facl_last_error() must report on this thread: kind 0 a
 * NULL q, kind 1 k in another dtype than q. Needs tb's buffers only as handles. */
static facl_status bad_call(facl_context *ctx, const thread_bufs *tb, int kind)
{
    const int64_t s[4] = {1, 8, 1, 16};
    facl_tensor q = facl_tensor_contiguous(tb->in0, FACL_DTYPE_F32, 4, s);
    facl_tensor k = facl_tensor_contiguous(tb->in1, kind ? FACL_DTYPE_F16 : FACL_DTYPE_F32, 4, s);
    facl_tensor v = facl_tensor_contiguous(tb->in2, FACL_DTYPE_F32, 4, s);
    facl_tensor out = facl_tensor_contiguous(tb->out, FACL_DTYPE_F32, 4, s);
    return facl_fwd(ctx, tb->queue, kind ? &q : NULL, &k, &v, &out, NULL, NULL, 0, NULL, NULL);
}

static facl_status g_bad_status[2];
static char g_bad_message[2][512];

/* ------------------------------------------------------------------ workers */

/* All workers start together (a cold start: every program wanted at once). */
typedef struct start_gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int open, cancelled;
} start_gate;

typedef struct worker {
    int tid, ncalls;
    facl_context *shared; /* NULL: the worker makes its own context */
    start_gate *start;
    /* results */
    int done, failures, on_queue, on_context_queue;
    facl_cache_stats stats; /* of its own context */
    char first_failure[2048];
} worker;

static void record_failure(worker *w, const char *fmt, ...)
{
    va_list ap;
    if (w->failures++ == 0) {
        va_start(ap, fmt);
        vsnprintf(w->first_failure, sizeof w->first_failure, fmt, ap);
        va_end(ap);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    facl_context *ctx = w->shared;
    thread_bufs tb;
    testkit_rng rng;
    char err[256];

    memset(&tb, 0, sizeof tb);
    pthread_mutex_lock(&w->start->lock);
    while (!w->start->open)
        pthread_cond_wait(&w->start->cond, &w->start->lock);
    pthread_mutex_unlock(&w->start->lock);
    if (w->start->cancelled)
        return NULL;
    if (!ctx) {
        facl_status st = facl_context_create(NULL, &ctx);
        if (st != FACL_SUCCESS) {
            record_failure(w, "thread %d: facl_context_create: %s: %s", w->tid,
                           facl_status_string(st), facl_last_error());
            ctx = NULL;
            goto out;
        }
    }
    if (!bufs_create(ctx, &tb, err, sizeof err)) {
        record_failure(w, "thread %d: %s", w->tid, err);
        goto out;
    }
    testkit_rng_seed(&rng, 1000003u * (uint64_t)(w->tid + 1));

    for (int i = 0; i < w->ncalls; i++) {
        call_plan p;
        case_result r;
        plan_call(w->tid, i, &rng, &p);
        if (p.caller_queue) {
            run_on_queue(ctx, &tb, &p.c, &r);
            w->on_queue++;
        } else {
            run_fwd_case(ctx, &p.c, &r);
            w->on_context_queue++;
        }
        w->done++;
        if (!r.pass) {
            char name[256], res[1400];
            fwd_case_name(&p.c, name, sizeof name);
            case_result_format(&r, res, sizeof res);
            record_failure(w, "thread %d call %d on %s: %s (seed %#llx)\n%s", w->tid, i,
                           p.caller_queue ? "the thread's queue" : "the context's queue", name,
                           (unsigned long long)p.c.seed, res);
        }
        if (i % 10 == 5) { /* an invalid call: this thread's message, not another's */
            const int kind = (w->tid + i) % 2;
            facl_status st = bad_call(ctx, &tb, kind);
            const char *msg = facl_last_error();
            if (st != g_bad_status[kind] || strcmp(msg, g_bad_message[kind]) != 0)
                record_failure(w, "thread %d call %d: invalid call %d gave %s \"%s\", "
                               "expected %s \"%s\"", w->tid, i, kind, facl_status_string(st),
                               msg, facl_status_string(g_bad_status[kind]), g_bad_message[kind]);
        }
    }
out:
    bufs_release(&tb);
    if (ctx && !w->shared) {
        w->stats.struct_size = (uint32_t)sizeof w->stats;
        facl_context_cache_stats(ctx, &w->stats);
        facl_context_free(ctx);
    }
    return NULL;
}

static void print_stats(const facl_cache_stats *s, const char *what)
{
    print_message("%s: program lookups: %llu in memory, %llu from disk, %llu compiled\n", what,
                  (unsigned long long)s->memory_hits, (unsigned long long)s->disk_hits,
                  (unsigned long long)s->source_builds);
}

static int calls_per_thread(void)
{
    const char *env = getenv("FACL_TEST_THREAD_CALLS");
    int n = env && *env ? atoi(env) : DEFAULT_CALLS;
    return n > 0 ? n : DEFAULT_CALLS;
}

static void run_workers(facl_context *shared)
{
    worker w[NTHREADS];
    pthread_t th[NTHREADS];
    start_gate start = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    int started = 0, failures = 0, done = 0, on_queue = 0, on_ctx = 0;
    const int ncalls = calls_per_thread();
    double t0 = now_seconds();

    memset(w, 0, sizeof w);
    for (int t = 0; t < NTHREADS; t++) {
        w[t].tid = t;
        w[t].ncalls = ncalls;
        w[t].shared = shared;
        w[t].start = &start;
        if (pthread_create(&th[t], NULL, worker_main, &w[t]) != 0)
            break;
        started++;
    }
    pthread_mutex_lock(&start.lock);
    start.open = 1;
    start.cancelled = started < NTHREADS;
    pthread_cond_broadcast(&start.cond);
    pthread_mutex_unlock(&start.lock);
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    if (started < NTHREADS)
        fail_msg("pthread_create failed after %d threads", started);

    for (int t = 0; t < NTHREADS; t++) {
        failures += w[t].failures;
        done += w[t].done;
        on_queue += w[t].on_queue;
        on_ctx += w[t].on_context_queue;
        if (w[t].failures)
            print_message("thread %d: %d failure(s); first:\n%s\n", t, w[t].failures,
                          w[t].first_failure);
    }
    print_message("%d threads, %d calls (%d on the context's queue, %d on the threads' own), "
                  "%.1f s\n", NTHREADS, done, on_ctx, on_queue, now_seconds() - t0);
    if (!shared) {
        facl_cache_stats sum = FACL_CACHE_STATS_INIT;
        for (int t = 0; t < NTHREADS; t++) {
            sum.memory_hits += w[t].stats.memory_hits;
            sum.disk_hits += w[t].stats.disk_hits;
            sum.source_builds += w[t].stats.source_builds;
        }
        print_stats(&sum, "eight contexts together");
    }
    assert_int_equal(failures, 0);
    assert_int_equal(done, NTHREADS * ncalls);
}

/* ------------------------------------------------------------------ tests */

static facl_context *g_ctx; /* the shared context, without a disk cache */

/* Cold start on one context: no disk cache, so the threads' first calls compile the six
 * programs while other threads wait for, or already use, those programs. */
static void test_one_context(void **state)
{
    facl_cache_stats s = FACL_CACHE_STATS_INIT;
    (void)state;
    run_workers(g_ctx);
    assert_int_equal(facl_context_cache_stats(g_ctx, &s), FACL_SUCCESS);
    print_stats(&s, "shared context");
}

/* Every variant once, on one thread, on a context with the disk cache: a failure here is
 * no thread problem; and the cache then holds every program, so that the eight contexts
 * below load them from disk instead of compiling each of them eight times. */
static void warm_up(void)
{
    facl_context *ctx = NULL;
    testkit_rng rng;
    facl_status st = facl_context_create(NULL, &ctx);
    if (st != FACL_SUCCESS)
        fail_msg("facl_context_create(NULL): %s: %s", facl_status_string(st), facl_last_error());
    testkit_rng_seed(&rng, 99);
    for (int i = 0; i < NVARIANTS; i++) {
        call_plan p;
        case_result r;
        plan_call(0, i, &rng, &p);
        if (!run_fwd_case(ctx, &p.c, &r)) {
            char name[256], res[1400];
            fwd_case_name(&p.c, name, sizeof name);
            case_result_format(&r, res, sizeof res);
            facl_context_free(ctx);
            fail_msg("single-threaded warm-up call %s failed (not a thread problem):\n%s",
                     name, res);
        }
    }
    facl_context_free(ctx);
}

static void test_eight_contexts(void **state)
{
    (void)state;
    warm_up();
    run_workers(NULL);
}

/* The shared context (no disk cache), and the messages of the invalid calls as a single
 * thread sees them. */
static int setup(void **state)
{
    facl_context *ctx = NULL;
    thread_bufs tb;
    char err[256], *saved = NULL;
    const char *env = getenv("FACL_CACHE");
    facl_status st;
    (void)state;
    /* no disk cache for the shared context (read at creation; no other thread runs yet) */
    if (env) {
        saved = malloc(strlen(env) + 1);
        if (!saved)
            return -1;
        strcpy(saved, env);
    }
    setenv("FACL_CACHE", "0", 1);
    st = facl_context_create(NULL, &ctx);
    if (saved)
        setenv("FACL_CACHE", saved, 1);
    else
        unsetenv("FACL_CACHE");
    free(saved);
    if (st != FACL_SUCCESS) {
        print_error("facl_context_create(NULL): %s: %s\n", facl_status_string(st),
                    facl_last_error());
        return -1;
    }
    if (!bufs_create(ctx, &tb, err, sizeof err)) {
        print_error("%s\n", err);
        facl_context_free(ctx);
        return -1;
    }
    for (int kind = 0; kind < 2; kind++) {
        g_bad_status[kind] = bad_call(ctx, &tb, kind);
        snprintf(g_bad_message[kind], sizeof g_bad_message[kind], "%s", facl_last_error());
        if (g_bad_status[kind] == FACL_SUCCESS || g_bad_message[kind][0] == '\0') {
            print_error("invalid call %d: status %d, message \"%s\"\n", kind,
                        (int)g_bad_status[kind], g_bad_message[kind]);
            bufs_release(&tb);
            facl_context_free(ctx);
            return -1;
        }
    }
    /* the two messages must differ, or a mix-up between threads would go unseen */
    if (strcmp(g_bad_message[0], g_bad_message[1]) == 0) {
        print_error("both invalid calls give \"%s\"\n", g_bad_message[0]);
        bufs_release(&tb);
        facl_context_free(ctx);
        return -1;
    }
    bufs_release(&tb);
    g_ctx = ctx;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    facl_context_free(g_ctx);
    g_ctx = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_context),
        cmocka_unit_test(test_eight_contexts),
    };
    return cmocka_run_group_tests_name("threads", tests, setup, teardown);
}
