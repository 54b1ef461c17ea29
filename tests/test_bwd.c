/* The backward calls against the float64 analytic reference (testkit/bwd_ref.c) with
 * SPEC.md's rule for dq, dk and dv; a finite-difference check of that reference; the
 * determinism promise (reruns and launch shapes bitwise equal).
 *
 * Every case draws fresh random normal inputs, computes the forward's out and lse on the
 * host in float64 (out rounded to the storage dtype, lse to fp32: what a device forward
 * hands the backward), poisons every gradient buffer (0xFF bytes: NaN in every dtype),
 * runs the call, and checks the gradients and that nothing outside their views changed.
 * Strided cases put every tensor in a padded buffer at an offset, in a memory order other
 * than the logical one (heads outermost).
 *
 * The default run takes a subsample; FACL_BWD_ALL=1 (test 'bwd_all', suite slow) adds the
 * grid. FACL_TEST_FILTER=<pattern> selects cases by name (cmocka's syntax).
 *
 * Both modes of opts.deterministic: every case runs in the default mode (0: atomic dq
 * where the tensor-core kernels run), and every 16-bit case again with deterministic = 1
 * (" det" in its name; FACL_BWD_MODE=0 or 1: that mode only); the determinism tests use
 * deterministic = 1; the mode tests check
 * which kernels each mode takes (through the context's log), that dk and dv are the same
 * bits in both modes (and dq too where no atomics run), and that a workspace sized for
 * the deterministic mode is refused by the atomic one. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bwd_ref.h"
#include "compare.h"
#include "facl.h"
#include "numeric.h"
#include "reference.h"

typedef enum { L_DENSE, L_QKVPACKED, L_KVPACKED, L_VARLEN, L_VARLEN_QKV, L_VARLEN_KV } layout;
static const char *const layout_names[] = {"dense", "qkvpacked", "kvpacked",
                                           "varlen", "varlen-qkvpacked", "varlen-kvpacked"};

typedef struct bwd_case {
    layout lay;
    facl_dtype dt;
    int d, sq, sk, hq, hkv, batch;
    int seqlens_q[4], seqlens_k[4]; /* varlen (batch entries) */
    int causal, top_left, wl, wr;
    float softcap, dropout;
    int alibi;    /* 0 none, 1 (heads_q), 2 (batch, heads_q) */
    int strided;
    int seqused;  /* dense: seqused_k[b] = sk - 37 * b (clamped at 0) */
    int workspace; /* pass a caller workspace view: 1 sized for the case's mode, 2 sized for
                    * deterministic = 1 whatever the mode */
    int det;       /* opts.deterministic */
    int grid;          /* one of the slow suite's grid cases */
    int64_t extra_max; /* varlen: added to the max_seqlen passed (another launch shape) */
    int trust;         /* opts.trust_cu_seqlens (needed when extra_max < 0) */
    uint64_t seed;
    char name[160];
} bwd_case;

static facl_context *g_ctx;

/* What the context's log said (setup's callback): the programs it compiled or loaded
 * (their options show the backward's variant) and the tensor-core backward's probe. */
static char g_log[64][640];
static int g_nlog, g_bwd_probe_failed, g_hopper_bwd;
static char g_path[32];

static void record_log(void *user, int32_t kind, const char *message)
{
    (void)user;
    if (kind == FACL_LOG_PROBE && strstr(message, "backward's probe failed")) {
        g_bwd_probe_failed = 1;
        print_message("  %s\n", message);
    }
    if ((kind == FACL_LOG_BUILD_START || kind == FACL_LOG_CACHE_HIT) && g_nlog < 64)
        snprintf(g_log[g_nlog++], sizeof g_log[0], "%s", message);
}

/* Whether the context's backward runs the tensor-core kernels for 16-bit storage. */
static int mma_backward(void)
{
    return strcmp(g_path, "mma-emulated") == 0 ||
           (strcmp(g_path, "nvidia-mma") == 0 && !g_bwd_probe_failed);
}

/* deterministic = 0 takes the atomic-dq kernels: the tensor-core backward with
 * FACL_BWD_DQ_ATOMIC=1 (opt-in: slower than the deterministic kernels on the H200). */
static int atomic_backward(void)
{
    const char *env = getenv("FACL_BWD_DQ_ATOMIC");
    return mma_backward() && env && strcmp(env, "1") == 0;
}

/* The Hopper backward, as the context's kernel path reason says (forced by
 * FACL_BWD_WGMMA=1, or the default on a compute capability 9.x GPU whose nvidia-mma path
 * was probed) and while the tensor-core backward's probe has not failed: attn_bwd_wgmma
 * takes the 16-bit cases up to head dim 128, in its atomic-dq variant for
 * deterministic = 0 with the opt-in. */
static int wgmma_backward(void)
{
    return g_hopper_bwd && mma_backward();
}

/* Whether facl_bwd_workspace_size counts the dq accumulator for deterministic = 0: with
 * the opt-in, and where attn_bwd_wgmma may take its atomic variant by default (long
 * sequences) unless FACL_BWD_DQ_ATOMIC=0. */
static int atomic_workspace(void)
{
    const char *env = getenv("FACL_BWD_DQ_ATOMIC");
    return atomic_backward() || (wgmma_backward() && !(env && strcmp(env, "0") == 0));
}

/* ------------------------------------------------------------ strided views */

/* Element (b, s, member, h, e) of a tensor (batch, seqlen, [members,] heads, d) lives at
 * off + b*sb + s*ss + member*sp + h*sh + e. Varlen tensors have batch 1, seqlen total. */
typedef struct lay {
    int64_t off, sb, ss, sp, sh;
    int64_t B, S, P, H, d;
    int varlen;
    size_t elems;
} lay;

static lay make_lay(int varlen, int64_t B, int64_t S, int64_t P, int64_t H, int64_t d,
                    int strided)
{
    lay l = {0};
    l.varlen = varlen, l.B = B, l.S = S, l.P = P, l.H = H, l.d = d;
    if (!strided) {
        l.sh = d, l.sp = H * d, l.ss = P * H * d, l.sb = S * l.ss, l.off = 0;
    } else { /* padded everywhere, heads and members outermost */
        l.ss = d + 3, l.sb = S * l.ss + 2, l.sh = B * l.sb + 5, l.sp = H * l.sh + 1, l.off = 11;
    }
    const int64_t last = l.off + (B - 1) * l.sb + (S - 1) * l.ss + (P - 1) * l.sp +
                         (H - 1) * l.sh + d - 1;
    l.elems = (size_t)(last + 1 > 1 ? last + 1 : 1) + (strided ? 7 : 0);
    return l;
}

static size_t lay_index(const lay *l, int64_t b, int64_t s, int64_t m, int64_t h, int64_t e)
{
    return (size_t)(l->off + b * l->sb + s * l->ss + m * l->sp + h * l->sh + e);
}

/* The facl_tensor of member m (packed = 0), or of the whole packed tensor (packed = 1). */
static facl_tensor lay_tensor(cl_mem buf, facl_dtype dt, const lay *l, int m, int packed)
{
    facl_tensor t;
    memset(&t, 0, sizeof t);
    t.buffer = buf;
    t.dtype = dt;
    int n = 0;
    if (!l->varlen) t.shape[n] = l->B, t.stride[n++] = l->sb;
    t.shape[n] = l->S, t.stride[n++] = l->ss;
    if (packed) t.shape[n] = l->P, t.stride[n++] = l->sp;
    t.shape[n] = l->H, t.stride[n++] = l->sh;
    t.shape[n] = l->d, t.stride[n++] = 1;
    t.ndim = n;
    t.offset = (uint64_t)(l->off + (packed ? 0 : m * l->sp));
    return t;
}

/* A device tensor group: one buffer of `P` members (q, k, v; or k, v; or just one). */
typedef struct dev {
    lay l;
    cl_mem buf;
    unsigned char *img; /* host image of the whole buffer */
    int out;            /* an output: everything outside the members' views stays poison */
} dev;

static void dev_init(dev *t, const lay *l, facl_dtype dt)
{
    t->l = *l;
    const size_t es = facl_dtype_size(dt);
    t->img = malloc(l->elems * es);
    assert_non_null(t->img);
    memset(t->img, 0xFF, l->elems * es);
}

/* Logical (rows, heads, d) floats of member m into the image; row r = b * S + s. */
static void dev_put(dev *t, facl_dtype dt, int m, const float *x)
{
    const lay *l = &t->l;
    for (int64_t b = 0; b < l->B; b++)
        for (int64_t s = 0; s < l->S; s++)
            for (int64_t h = 0; h < l->H; h++)
                for (int64_t e = 0; e < l->d; e++)
                    testkit_store(dt, t->img, lay_index(l, b, s, m, h, e),
                                  x[((b * l->S + s) * l->H + h) * l->d + e]);
}

static void dev_get(const dev *t, facl_dtype dt, int m, float *x)
{
    const lay *l = &t->l;
    for (int64_t b = 0; b < l->B; b++)
        for (int64_t s = 0; s < l->S; s++)
            for (int64_t h = 0; h < l->H; h++)
                for (int64_t e = 0; e < l->d; e++)
                    x[((b * l->S + s) * l->H + h) * l->d + e] =
                        testkit_load(dt, t->img, lay_index(l, b, s, m, h, e));
}

static void dev_upload(dev *t, facl_dtype dt)
{
    cl_int err;
    t->buf = clCreateBuffer(facl_context_cl_context(g_ctx), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                            t->l.elems * facl_dtype_size(dt), t->img, &err);
    assert_int_equal(err, CL_SUCCESS);
}

/* Read the buffer back; the bytes outside every member's view must still be poison. */
static int dev_download(dev *t, facl_dtype dt, char *why, size_t why_size)
{
    const size_t es = facl_dtype_size(dt), n = t->l.elems * es;
    cl_int err = clEnqueueReadBuffer(facl_context_queue(g_ctx), t->buf, CL_TRUE, 0, n, t->img, 0,
                                     NULL, NULL);
    assert_int_equal(err, CL_SUCCESS);
    unsigned char *inside = calloc(t->l.elems, 1);
    assert_non_null(inside);
    const lay *l = &t->l;
    for (int64_t m = 0; m < l->P; m++)
        for (int64_t b = 0; b < l->B; b++)
            for (int64_t s = 0; s < l->S; s++)
                for (int64_t h = 0; h < l->H; h++)
                    for (int64_t e = 0; e < l->d; e++) inside[lay_index(l, b, s, m, h, e)] = 1;
    int ok = 1;
    for (size_t i = 0; i < t->l.elems && ok; i++)
        for (size_t byte = 0; byte < es && !inside[i]; byte++)
            if (t->img[i * es + byte] != 0xFF) {
                snprintf(why, why_size, "element %zu outside the views was written", i);
                ok = 0;
                break;
            }
    free(inside);
    return ok;
}

static void dev_free(dev *t)
{
    if (t->buf) clReleaseMemObject(t->buf);
    free(t->img);
    memset(t, 0, sizeof *t);
}

static cl_mem upload_bytes(const void *data, size_t bytes)
{
    cl_int err;
    cl_mem m = clCreateBuffer(facl_context_cl_context(g_ctx), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                              bytes ? bytes : 4, (void *)data, &err);
    assert_int_equal(err, CL_SUCCESS);
    return m;
}

/* ------------------------------------------------------------------ one case */

typedef struct run_out {
    float *dq, *dk, *dv; /* logical (rows, heads, d) */
    facl_status status;
    char detail[256];
    int untouched; /* a refused call: every gradient buffer still all poison */
} run_out;

typedef struct prepared {
    const bwd_case *c;
    int varlen, nb;
    int64_t total_q, total_k, max_q, max_k;
    int32_t cu_q[5], cu_k[5], used[4];
    float *q, *k, *v, *dout, *out, *lse, *alibi;
    double *out64, *lse64;
    ref_problem rp;
    facl_attn_options opts;
} prepared;

static float *randn(testkit_rng *rng, size_t n, facl_dtype dt)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = testkit_round_to(dt, (float)testkit_rng_normal(rng));
    return x;
}

static void prepare(const bwd_case *c, prepared *pp)
{
    memset(pp, 0, sizeof *pp);
    pp->c = c;
    pp->varlen = c->lay >= L_VARLEN;
    pp->nb = c->batch;
    pp->cu_q[0] = pp->cu_k[0] = 0;
    for (int b = 0; b < c->batch; b++) {
        const int lq = pp->varlen ? c->seqlens_q[b] : c->sq;
        const int lk = pp->varlen ? c->seqlens_k[b] : c->sk;
        pp->cu_q[b + 1] = pp->cu_q[b] + lq;
        pp->cu_k[b + 1] = pp->cu_k[b] + lk;
        if (lq > pp->max_q) pp->max_q = lq;
        if (lk > pp->max_k) pp->max_k = lk;
        pp->used[b] = c->sk - 37 * b > 0 ? c->sk - 37 * b : 0;
    }
    if (!pp->varlen) pp->max_q = c->sq, pp->max_k = c->sk;
    pp->total_q = pp->cu_q[c->batch];
    pp->total_k = pp->cu_k[c->batch];

    testkit_rng rng;
    testkit_rng_seed(&rng, c->seed);
    const size_t nq = (size_t)pp->total_q * c->hq * c->d, nk = (size_t)pp->total_k * c->hkv * c->d;
    pp->q = randn(&rng, nq, c->dt);
    pp->k = randn(&rng, nk, c->dt);
    pp->v = randn(&rng, nk, c->dt);
    pp->dout = randn(&rng, nq, c->dt);
    const int n_alibi = c->alibi == 2 ? c->batch * c->hq : c->hq;
    pp->alibi = malloc((size_t)n_alibi * sizeof *pp->alibi);
    for (int i = 0; i < n_alibi; i++) pp->alibi[i] = (float)(0.05 + 0.5 * testkit_rng_uniform(&rng));

    facl_attn_options o = FACL_ATTN_OPTIONS_INIT;
    o.causal = c->causal;
    o.mask_align = c->top_left ? FACL_ALIGN_TOP_LEFT : FACL_ALIGN_BOTTOM_RIGHT;
    o.window_left = c->wl;
    o.window_right = c->wr;
    o.softcap = c->softcap;
    o.dropout_p = c->dropout;
    o.dropout_seed = c->seed * 31u + 7u;
    o.dropout_offset = c->seed % 1000u;
    o.trust_cu_seqlens = c->trust;
    o.deterministic = c->det;
    pp->opts = o;

    ref_problem *r = &pp->rp;
    r->batch = c->batch, r->heads_q = c->hq, r->heads_kv = c->hkv, r->head_dim = c->d;
    r->cu_q = pp->cu_q, r->cu_k = pp->cu_k;
    r->scale = (float)(1.0 / sqrt((double)c->d));
    /* windows as the library normalises them: one reaching the call's key length (dense
     * seqlen_k, varlen the max_seqlen_k passed) is unbounded */
    const int64_t call_keys = pp->varlen ? pp->max_k + c->extra_max : c->sk;
    const int64_t keys = call_keys > 1 ? call_keys : 1;
    r->window_left = c->wl >= keys ? -1 : c->wl;
    r->window_right = c->causal ? 0 : c->wr >= keys ? -1 : c->wr;
    r->align_top_left = c->top_left;
    r->softcap = c->softcap;
    r->alibi = c->alibi ? pp->alibi : NULL;
    r->alibi_per_batch = c->alibi == 2;
    r->dropout_p = c->dropout;
    r->seed = o.dropout_seed;
    r->offset = o.dropout_offset;
    r->used_k = c->seqused ? pp->used : NULL;

    /* The forward, as a device forward would hand it over. */
    pp->out64 = malloc((nq ? nq : 1) * sizeof *pp->out64);
    pp->lse64 = malloc(((size_t)pp->total_q * c->hq + 1) * sizeof *pp->lse64);
    ref_attention_f64(r, pp->q, pp->k, pp->v, pp->out64, pp->lse64);
    pp->out = malloc((nq ? nq : 1) * sizeof *pp->out);
    pp->lse = malloc(((size_t)pp->total_q * c->hq + 1) * sizeof *pp->lse);
    for (size_t i = 0; i < nq; i++) pp->out[i] = testkit_round_to(c->dt, (float)pp->out64[i]);
    for (size_t i = 0; i < (size_t)pp->total_q * c->hq; i++) pp->lse[i] = (float)pp->lse64[i];
}

static void prepared_free(prepared *pp)
{
    free(pp->q), free(pp->k), free(pp->v), free(pp->dout), free(pp->out), free(pp->lse);
    free(pp->alibi), free(pp->out64), free(pp->lse64);
}

/* One device run of a prepared case: uploads, poisons, calls, reads back. */
static void device_run(const prepared *pp, run_out *ro)
{
    const bwd_case *c = pp->c;
    const facl_dtype dt = c->dt;
    const int varlen = pp->varlen;
    const int64_t B = varlen ? 1 : c->batch;
    const int64_t SQ = varlen ? pp->total_q : c->sq, SK = varlen ? pp->total_k : c->sk;
    const int qkvp = c->lay == L_QKVPACKED || c->lay == L_VARLEN_QKV;
    const int kvp = c->lay == L_KVPACKED || c->lay == L_VARLEN_KV;
    memset(ro, 0, sizeof *ro);

    /* inputs: qkv (3 members) / q + kv (2) / q, k, v; outputs likewise */
    dev in_q, in_k, in_v, g_q, g_k, g_v, t_out, t_dout;
    memset(&in_k, 0, sizeof in_k), memset(&in_v, 0, sizeof in_v);
    memset(&g_k, 0, sizeof g_k), memset(&g_v, 0, sizeof g_v);
    lay lq = make_lay(varlen, B, SQ, qkvp ? 3 : 1, c->hq, c->d, c->strided);
    lay lk = make_lay(varlen, B, SK, kvp ? 2 : 1, c->hkv, c->d, c->strided);
    dev_init(&in_q, &lq, dt);
    dev_init(&g_q, &lq, dt);
    dev_put(&in_q, dt, 0, pp->q);
    if (qkvp) {
        dev_put(&in_q, dt, 1, pp->k);
        dev_put(&in_q, dt, 2, pp->v);
    } else {
        dev_init(&in_k, &lk, dt);
        dev_init(&g_k, &lk, dt);
        dev_put(&in_k, dt, 0, pp->k);
        if (kvp) {
            dev_put(&in_k, dt, 1, pp->v);
        } else {
            dev_init(&in_v, &lk, dt);
            dev_init(&g_v, &lk, dt);
            dev_put(&in_v, dt, 0, pp->v);
        }
    }
    lay lo = make_lay(varlen, B, SQ, 1, c->hq, c->d, c->strided);
    dev_init(&t_out, &lo, dt);
    dev_init(&t_dout, &lo, dt);
    dev_put(&t_out, dt, 0, pp->out);
    dev_put(&t_dout, dt, 0, pp->dout);
    dev *all[] = {&in_q, &in_k, &in_v, &g_q, &g_k, &g_v, &t_out, &t_dout};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->img) dev_upload(all[i], dt);

    /* lse: fp32 (batch, heads_q, seqlen_q) or (heads_q, total_q), padded when strided */
    const int64_t pad = c->strided ? 3 : 0, loff = c->strided ? 5 : 0;
    const int64_t lsh = (varlen ? pp->total_q : c->sq) + pad, lsb = c->hq * lsh + pad;
    const size_t lse_elems = (size_t)(loff + (varlen ? 1 : c->batch) * lsb + 1);
    float *lse_img = malloc(lse_elems * sizeof *lse_img);
    for (size_t i = 0; i < lse_elems; i++) lse_img[i] = NAN;
    for (int b = 0; b < c->batch; b++)
        for (int h = 0; h < c->hq; h++)
            for (int32_t r = pp->cu_q[b]; r < pp->cu_q[b + 1]; r++)
                lse_img[varlen ? loff + h * lsh + r
                               : loff + b * lsb + h * lsh + (r - pp->cu_q[b])] =
                    pp->lse[(size_t)h * pp->total_q + r];
    cl_mem lse_buf = upload_bytes(lse_img, lse_elems * sizeof *lse_img);
    facl_tensor lse;
    memset(&lse, 0, sizeof lse);
    lse.buffer = lse_buf, lse.dtype = FACL_DTYPE_F32, lse.offset = (uint64_t)loff;
    if (varlen) {
        lse.ndim = 2, lse.shape[0] = c->hq, lse.shape[1] = pp->total_q;
        lse.stride[0] = lsh, lse.stride[1] = 1;
    } else {
        lse.ndim = 3, lse.shape[0] = c->batch, lse.shape[1] = c->hq, lse.shape[2] = c->sq;
        lse.stride[0] = lsb, lse.stride[1] = lsh, lse.stride[2] = 1;
    }

    facl_attn_options o = pp->opts;
    cl_mem alibi_buf = NULL, used_buf = NULL, cu_q_buf = NULL, cu_k_buf = NULL, ws_buf = NULL;
    facl_tensor alibi, used, cuq, cuk, ws;
    if (c->alibi) {
        const int64_t shape[2] = {c->batch, c->hq};
        alibi_buf = upload_bytes(pp->alibi, sizeof(float) * (size_t)(c->alibi == 2 ? c->batch * c->hq : c->hq));
        alibi = c->alibi == 2 ? facl_tensor_contiguous(alibi_buf, FACL_DTYPE_F32, 2, shape)
                              : facl_tensor_contiguous(alibi_buf, FACL_DTYPE_F32, 1, shape + 1);
        o.alibi_slopes = &alibi;
    }
    if (c->seqused) {
        const int64_t shape[1] = {c->batch};
        used_buf = upload_bytes(pp->used, sizeof(int32_t) * (size_t)c->batch);
        used = facl_tensor_contiguous(used_buf, FACL_DTYPE_I32, 1, shape);
        o.seqused_k = &used;
    }
    if (varlen) {
        const int64_t shape[1] = {c->batch + 1};
        cu_q_buf = upload_bytes(pp->cu_q, sizeof(int32_t) * (size_t)(c->batch + 1));
        cu_k_buf = upload_bytes(pp->cu_k, sizeof(int32_t) * (size_t)(c->batch + 1));
        cuq = facl_tensor_contiguous(cu_q_buf, FACL_DTYPE_I32, 1, shape);
        cuk = facl_tensor_contiguous(cu_k_buf, FACL_DTYPE_I32, 1, shape);
    }
    const facl_tensor *wsp = NULL;
    if (c->workspace) {
        uint64_t bytes = 0;
        assert_int_equal(facl_bwd_workspace_size(g_ctx, varlen ? pp->total_q : (int64_t)c->batch * c->sq,
                                                 c->hq, c->d, c->workspace == 2 ? 1 : c->det, &bytes),
                         FACL_SUCCESS);
        const int64_t floats = (int64_t)(bytes / 4);
        /* poisoned like the outputs: the call may not rely on what the workspace holds
         * (the atomic mode must zero its dq accumulator itself) */
        const size_t ws_bytes = (size_t)(floats + 3) * 4;
        unsigned char *poison = malloc(ws_bytes);
        assert_non_null(poison);
        memset(poison, 0xFF, ws_bytes);
        ws_buf = upload_bytes(poison, ws_bytes);
        free(poison);
        const int64_t shape[1] = {floats};
        ws = facl_tensor_contiguous(ws_buf, FACL_DTYPE_F32, 1, shape);
        ws.offset = 3;
        wsp = &ws;
    }

    const facl_tensor q = lay_tensor(in_q.buf, dt, &lq, 0, 0);
    const facl_tensor dq = lay_tensor(g_q.buf, dt, &lq, 0, 0);
    const facl_tensor out = lay_tensor(t_out.buf, dt, &lo, 0, 0);
    const facl_tensor dout = lay_tensor(t_dout.buf, dt, &lo, 0, 0);
    const int64_t mq = pp->max_q + c->extra_max, mk = pp->max_k + c->extra_max;
    cl_event ev = NULL;
    facl_status st;
    switch (c->lay) {
    case L_DENSE: {
        const facl_tensor k = lay_tensor(in_k.buf, dt, &lk, 0, 0), v = lay_tensor(in_v.buf, dt, &lk, 0, 0);
        const facl_tensor dk = lay_tensor(g_k.buf, dt, &lk, 0, 0), dv = lay_tensor(g_v.buf, dt, &lk, 0, 0);
        st = facl_bwd(g_ctx, NULL, &dout, &q, &k, &v, &out, &lse, &dq, &dk, &dv, &o, wsp, 0, NULL, &ev);
        break;
    }
    case L_QKVPACKED: {
        const facl_tensor qkv = lay_tensor(in_q.buf, dt, &lq, 0, 1), dqkv = lay_tensor(g_q.buf, dt, &lq, 0, 1);
        st = facl_bwd_qkvpacked(g_ctx, NULL, &dout, &qkv, &out, &lse, &dqkv, &o, wsp, 0, NULL, &ev);
        break;
    }
    case L_KVPACKED: {
        const facl_tensor kv = lay_tensor(in_k.buf, dt, &lk, 0, 1), dkv = lay_tensor(g_k.buf, dt, &lk, 0, 1);
        st = facl_bwd_kvpacked(g_ctx, NULL, &dout, &q, &kv, &out, &lse, &dq, &dkv, &o, wsp, 0, NULL, &ev);
        break;
    }
    case L_VARLEN: {
        const facl_tensor k = lay_tensor(in_k.buf, dt, &lk, 0, 0), v = lay_tensor(in_v.buf, dt, &lk, 0, 0);
        const facl_tensor dk = lay_tensor(g_k.buf, dt, &lk, 0, 0), dv = lay_tensor(g_v.buf, dt, &lk, 0, 0);
        st = facl_varlen_bwd(g_ctx, NULL, &dout, &q, &k, &v, &cuq, &cuk, mq, mk, &out, &lse, &dq, &dk,
                             &dv, &o, wsp, 0, NULL, &ev);
        break;
    }
    case L_VARLEN_QKV: {
        const facl_tensor qkv = lay_tensor(in_q.buf, dt, &lq, 0, 1), dqkv = lay_tensor(g_q.buf, dt, &lq, 0, 1);
        st = facl_varlen_bwd_qkvpacked(g_ctx, NULL, &dout, &qkv, &cuq, mq, &out, &lse, &dqkv, &o, wsp,
                                       0, NULL, &ev);
        break;
    }
    default: {
        const facl_tensor kv = lay_tensor(in_k.buf, dt, &lk, 0, 1), dkv = lay_tensor(g_k.buf, dt, &lk, 0, 1);
        st = facl_varlen_bwd_kvpacked(g_ctx, NULL, &dout, &q, &kv, &cuq, &cuk, mq, mk, &out, &lse, &dq,
                                      &dkv, &o, wsp, 0, NULL, &ev);
        break;
    }
    }
    ro->status = st;
    if (st != FACL_SUCCESS) {
        snprintf(ro->detail, sizeof ro->detail, "%s: %s", facl_status_string(st), facl_last_error());
        assert_int_equal(clFinish(facl_context_queue(g_ctx)), CL_SUCCESS);
        ro->untouched = 1;
        dev *grads[] = {&g_q, &g_k, &g_v};
        for (size_t i = 0; i < 3; i++) {
            if (!grads[i]->img) continue;
            const size_t n = grads[i]->l.elems * facl_dtype_size(dt);
            assert_int_equal(clEnqueueReadBuffer(facl_context_queue(g_ctx), grads[i]->buf, CL_TRUE, 0,
                                                 n, grads[i]->img, 0, NULL, NULL),
                             CL_SUCCESS);
            for (size_t b = 0; b < n; b++) ro->untouched &= grads[i]->img[b] == 0xFF;
        }
    } else {
        assert_non_null(ev);
        assert_int_equal(clWaitForEvents(1, &ev), CL_SUCCESS);
        clReleaseEvent(ev);
        assert_int_equal(clFinish(facl_context_queue(g_ctx)), CL_SUCCESS);
        const size_t nq = (size_t)pp->total_q * c->hq * c->d, nk = (size_t)pp->total_k * c->hkv * c->d;
        ro->dq = malloc((nq ? nq : 1) * sizeof *ro->dq);
        ro->dk = malloc((nk ? nk : 1) * sizeof *ro->dk);
        ro->dv = malloc((nk ? nk : 1) * sizeof *ro->dv);
        int ok = dev_download(&g_q, dt, ro->detail, sizeof ro->detail);
        dev_get(&g_q, dt, 0, ro->dq);
        if (qkvp) {
            dev_get(&g_q, dt, 1, ro->dk);
            dev_get(&g_q, dt, 2, ro->dv);
        } else {
            ok = dev_download(&g_k, dt, ro->detail, sizeof ro->detail) && ok;
            dev_get(&g_k, dt, 0, ro->dk);
            if (kvp) {
                dev_get(&g_k, dt, 1, ro->dv);
            } else {
                ok = dev_download(&g_v, dt, ro->detail, sizeof ro->detail) && ok;
                dev_get(&g_v, dt, 0, ro->dv);
            }
        }
        if (!ok) ro->status = FACL_ERROR_INVALID_VALUE; /* reported through detail */
    }
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dev_free(all[i]);
    free(lse_img);
    clReleaseMemObject(lse_buf);
    cl_mem extra[] = {alibi_buf, used_buf, cu_q_buf, cu_k_buf, ws_buf};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        if (extra[i]) clReleaseMemObject(extra[i]);
}

static void run_out_free(run_out *ro)
{
    free(ro->dq), free(ro->dk), free(ro->dv);
}

/* The case against the references with SPEC.md's rule. */
static void test_case(void **state)
{
    const bwd_case *c = *state;
    prepared pp;
    prepare(c, &pp);
    run_out ro;
    device_run(&pp, &ro);
    if (ro.status != FACL_SUCCESS) fail_msg("%s: %s", c->name, ro.detail);
    const size_t nq = (size_t)pp.total_q * c->hq * c->d, nk = (size_t)pp.total_k * c->hkv * c->d;
    double *dq = malloc((nq + 1) * sizeof *dq), *dk = malloc((nk + 1) * sizeof *dk),
           *dv = malloc((nk + 1) * sizeof *dv);
    ref_attention_bwd_f64(&pp.rp, pp.q, pp.k, pp.v, pp.dout, dq, dk, dv);
    float *lq = NULL, *lk = NULL, *lv = NULL;
    if (c->dt != FACL_DTYPE_F32) {
        lq = malloc((nq + 1) * sizeof *lq), lk = malloc((nk + 1) * sizeof *lk), lv = malloc((nk + 1) * sizeof *lv);
        ref_attention_bwd_lowp(&pp.rp, c->dt, pp.q, pp.k, pp.v, pp.out, pp.lse, pp.dout, lq, lk, lv);
    }
    const cmp_result r[3] = {cmp_check(c->dt, ro.dq, dq, lq, nq), cmp_check(c->dt, ro.dk, dk, lk, nk),
                             cmp_check(c->dt, ro.dv, dv, lv, nk)};
    const char *names[3] = {"dq", "dk", "dv"};
    int pass = 1;
    for (int i = 0; i < 3; i++) {
        char line[200];
        cmp_format(&r[i], line, sizeof line);
        if (!r[i].pass || getenv("FACL_TEST_VERBOSE")) print_message("  %s %s: %s\n", c->name, names[i], line);
        pass = pass && r[i].pass;
    }
    free(dq), free(dk), free(dv), free(lq), free(lk), free(lv);
    run_out_free(&ro);
    prepared_free(&pp);
    if (!pass) fail_msg("%s: gradients outside SPEC.md's bound", c->name);
}

/* Determinism: the same call twice, and (varlen) the same problem with larger maxima
 * (another launch shape), give identical bits. */
static void test_determinism(void **state)
{
    bwd_case c = *(const bwd_case *)*state;
    prepared pp;
    prepare(&c, &pp);
    run_out a, b, s;
    device_run(&pp, &a);
    device_run(&pp, &b);
    if (a.status != FACL_SUCCESS || b.status != FACL_SUCCESS) fail_msg("%s: %s%s", c.name, a.detail, b.detail);
    const size_t nq = (size_t)pp.total_q * c.hq * c.d, nk = (size_t)pp.total_k * c.hkv * c.d;
    assert_memory_equal(a.dq, b.dq, nq * sizeof *a.dq);
    assert_memory_equal(a.dk, b.dk, nk * sizeof *a.dk);
    assert_memory_equal(a.dv, b.dv, nk * sizeof *a.dv);
    if (pp.varlen) {
        c.extra_max = 300; /* groups of another size, and more of them */
        pp.c = &c;
        device_run(&pp, &s);
        if (s.status != FACL_SUCCESS) fail_msg("%s: %s", c.name, s.detail);
        assert_memory_equal(a.dq, s.dq, nq * sizeof *a.dq);
        assert_memory_equal(a.dk, s.dk, nk * sizeof *a.dk);
        assert_memory_equal(a.dv, s.dv, nk * sizeof *a.dv);
        run_out_free(&s);
    }
    run_out_free(&a);
    run_out_free(&b);
    prepared_free(&pp);
}

/* ------------------------------------------------------------------ the two modes */

/* dk and dv are the same bits with deterministic = 1 and 0 (the atomic mode only adds a
 * step for dq after dk's and dv's), and so is dq where no atomics run (the portable
 * kernels, fp32). */
static void test_modes_agree(void **state)
{
    bwd_case c = *(const bwd_case *)*state;
    c.det = 1;
    prepared pp;
    prepare(&c, &pp);
    run_out a, b;
    device_run(&pp, &a);
    c.det = 0;
    pp.opts.deterministic = 0;
    device_run(&pp, &b);
    if (a.status != FACL_SUCCESS || b.status != FACL_SUCCESS) fail_msg("%s: %s%s", c.name, a.detail, b.detail);
    const size_t nq = (size_t)pp.total_q * c.hq * c.d, nk = (size_t)pp.total_k * c.hkv * c.d;
    assert_memory_equal(a.dk, b.dk, nk * sizeof *a.dk);
    assert_memory_equal(a.dv, b.dv, nk * sizeof *a.dv);
    if (!mma_backward() || c.dt == FACL_DTYPE_F32) assert_memory_equal(a.dq, b.dq, nq * sizeof *a.dq);
    run_out_free(&a);
    run_out_free(&b);
    prepared_free(&pp);
}

static void name_case(bwd_case *c);

/* The mode tests' problem: a head dim no other case has, so that its programs are not in
 * the context's memory yet and the log shows which ones the calls compile or load. */
static bwd_case mode_case(int det, int workspace)
{
    bwd_case c;
    memset(&c, 0, sizeof c);
    c.lay = L_DENSE, c.dt = FACL_DTYPE_F16, c.d = 24, c.sq = 40, c.sk = 75, c.hq = 2, c.hkv = 1;
    c.batch = 1, c.causal = 1, c.wl = c.wr = -1, c.seed = 0xd7e7u, c.det = det;
    c.workspace = workspace;
    for (int b = 0; b < 4; b++) c.seqlens_q[b] = c.sq, c.seqlens_k[b] = c.sk;
    name_case(&c);
    return c;
}

/* Which kernels each mode takes, from the programs the context compiles or loads: with
 * deterministic = 0, attn_bwd_mma or attn_bwd_wgmma built with DQ_ATOMIC=1 wherever the
 * tensor-core kernels run with FACL_BWD_DQ_ATOMIC=1 (so the atomic mode cannot fall back unnoticed;
 * DQ_ATOMIC=0 without it), DQ_ATOMIC=0 with
 * deterministic = 1, attn_bwd in both modes elsewhere; the workspace each needs; and the
 * gradients against the reference. */
static void test_mode_kernels(void **state)
{
    (void)state;
    uint64_t bytes[2] = {0, 0};
    for (int det = 0; det < 2; det++) {
        bwd_case c = mode_case(det, 1);
        g_nlog = 0;
        void *arg = &c;
        test_case(&arg);
        int mma = 0, atomic = -1, portable = 0, wgmma = 0;
        for (int i = 0; i < g_nlog; i++) {
            if (!strstr(g_log[i], "-DHEAD_DIM=24 ")) continue;
            if (strstr(g_log[i], "attn_bwd_mma [")) {
                mma = 1;
                atomic = strstr(g_log[i], "-DDQ_ATOMIC=1") ? 1 : strstr(g_log[i], "-DDQ_ATOMIC=0") ? 0 : -1;
            } else if (strstr(g_log[i], "attn_bwd_wgmma [")) {
                wgmma = 1;
                atomic = strstr(g_log[i], "-DDQ_ATOMIC=1") ? 1 : strstr(g_log[i], "-DDQ_ATOMIC=0") ? 0 : -1;
            } else if (strstr(g_log[i], "attn_bwd [")) {
                portable = 1;
            }
        }
        if (strcmp(g_path, "nvidia-mma") == 0 && g_bwd_probe_failed)
            fail_msg("the tensor-core backward's probe failed: neither mode runs attn_bwd_mma");
        /* attn_bwd is one program for both modes: the second call finds it built; so are
         * attn_bwd_mma and attn_bwd_wgmma (DQ_ATOMIC=0) when deterministic = 0 did not take
         * the atomic kernels */
        const int reused = det && !atomic_backward();
        const int expect_wgmma = wgmma_backward();
        if (expect_wgmma ? (!wgmma && !reused) || mma || portable ||
                               (wgmma && atomic != (!det && atomic_backward()))
            : mma_backward() ? (!mma && !reused) || portable || wgmma ||
                                   (mma && atomic != (!det && atomic_backward()))
                             : mma || wgmma || (!portable && !det))
            fail_msg("deterministic = %d on %s: the log shows %s%s%s%s (%d messages%s%s)", det, g_path,
                     mma ? "attn_bwd_mma " : "", wgmma ? "attn_bwd_wgmma " : "", portable ? "attn_bwd " : "",
                     atomic == 1 ? "DQ_ATOMIC=1" : atomic == 0 ? "DQ_ATOMIC=0" : "", g_nlog,
                     g_nlog ? ", last: " : "", g_nlog ? g_log[g_nlog - 1] : "");
        assert_int_equal(facl_bwd_workspace_size(g_ctx, c.sq, c.hq, c.d, det, &bytes[det]), FACL_SUCCESS);
    }
    const uint64_t d_only = (uint64_t)40 * 2 * 4;
    assert_int_equal(bytes[1], d_only);
    /* head dim 24: its accumulator (24 floats, 16-byte pieces), 3 unused floats and D */
    assert_int_equal(bytes[0], atomic_workspace() ? d_only * 28 : d_only);
}

/* A workspace sized for deterministic = 1 is refused by the atomic mode (which needs the
 * accumulator too), naming the workspace, with nothing written; elsewhere both modes
 * need the same and the call runs. */
static void test_mode_workspace(void **state)
{
    (void)state;
    bwd_case c = mode_case(0, 2);
    prepared pp;
    prepare(&c, &pp);
    run_out ro;
    device_run(&pp, &ro);
    if (atomic_backward()) {
        if (ro.status != FACL_ERROR_BUFFER_TOO_SMALL || !strstr(ro.detail, "workspace:"))
            fail_msg("%s: expected a refusal of the workspace, got %s", c.name,
                     ro.status == FACL_SUCCESS ? "success" : ro.detail);
        if (!ro.untouched) fail_msg("%s: refused, but a gradient buffer was written", c.name);
    } else if (ro.status != FACL_SUCCESS) {
        fail_msg("%s: %s", c.name, ro.detail);
    }
    run_out_free(&ro);
    prepared_free(&pp);
}

/* ----------------------------------------------- finite differences of the reference */

/* L = sum(out * dout) in float64 through the forward reference. */
static double loss(const ref_problem *p, const float *q, const float *k, const float *v,
                   const float *dout, size_t nq, double *out)
{
    ref_attention_f64(p, q, k, v, out, NULL);
    double l = 0.0;
    for (size_t i = 0; i < nq; i++) l += out[i] * (double)dout[i];
    return l;
}

/* Central differences with steps of 2^-10 on inputs that are multiples of 2^-12 (so the
 * perturbed inputs are exact floats) against the analytic gradients. */
static void fd_check(const ref_problem *p, int64_t total_q, int64_t total_k, uint64_t seed)
{
    const int d = p->head_dim;
    const size_t nq = (size_t)total_q * p->heads_q * d, nk = (size_t)total_k * p->heads_kv * d;
    testkit_rng rng;
    testkit_rng_seed(&rng, seed);
    float *x[4];
    const size_t n[4] = {nq, nk, nk, nq};
    for (int t = 0; t < 4; t++) {
        x[t] = malloc(n[t] * sizeof *x[t]);
        for (size_t i = 0; i < n[t]; i++)
            x[t][i] = (float)(round(testkit_rng_normal(&rng) * 4096.0) / 4096.0);
    }
    double *g[3] = {malloc(nq * sizeof(double)), malloc(nk * sizeof(double)), malloc(nk * sizeof(double))};
    double *out = malloc(nq * sizeof *out);
    ref_attention_bwd_f64(p, x[0], x[1], x[2], x[3], g[0], g[1], g[2]);
    const double step = 1.0 / 1024.0;
    for (int t = 0; t < 3; t++) {
        double worst = 0.0, scale = 1e-3;
        for (size_t i = 0; i < n[t]; i++) scale = fmax(scale, fabs(g[t][i]));
        for (size_t i = 0; i < n[t]; i++) {
            const float keep = x[t][i];
            x[t][i] = keep + (float)step;
            const double up = loss(p, x[0], x[1], x[2], x[3], nq, out);
            x[t][i] = keep - (float)step;
            const double down = loss(p, x[0], x[1], x[2], x[3], nq, out);
            x[t][i] = keep;
            worst = fmax(worst, fabs((up - down) / (2.0 * step) - g[t][i]));
        }
        if (!(worst <= 2e-4 * scale))
            fail_msg("%s: finite differences differ by %g (largest gradient %g)", t == 0 ? "dq" : t == 1 ? "dk" : "dv",
                     worst, scale);
    }
    for (int t = 0; t < 4; t++) free(x[t]);
    for (int t = 0; t < 3; t++) free(g[t]);
    free(out);
}

static void test_reference_fd(void **state)
{
    (void)state;
    static const int32_t cu_q[3] = {0, 3, 7}, cu_k[3] = {0, 5, 9};
    static const float slopes[2] = {0.3f, 0.7f};
    const int32_t used[2] = {4, 3};
    for (int variant = 0; variant < 6; variant++) {
        ref_problem p;
        memset(&p, 0, sizeof p);
        p.batch = 2, p.heads_q = 2, p.heads_kv = 1, p.head_dim = 3;
        p.cu_q = cu_q, p.cu_k = cu_k;
        p.scale = 0.6f;
        p.window_left = p.window_right = -1;
        switch (variant) {
        case 1: p.window_right = 0; break;                                       /* causal */
        case 2: p.softcap = 1.5f; p.window_left = 1; break;                      /* softcap, window */
        case 3: p.alibi = slopes; p.align_top_left = 1; p.window_right = 0; break; /* alibi */
        case 4: p.dropout_p = 0.3f; p.seed = 1234; p.offset = 5; break;         /* dropout */
        case 5: p.dropout_p = 0.25f; p.seed = 99; p.softcap = 2.0f; p.alibi = slopes; p.used_k = used; break;
        default: break;
        }
        print_message("  finite differences, variant %d\n", variant);
        fd_check(&p, 7, 9, 1000u + (uint64_t)variant);
    }
}

/* ------------------------------------------------------------------ the cases */

static bwd_case g_cases[512];
static int g_ncases;

static bwd_case *add(layout lo, facl_dtype dt, int d, int sq, int sk, int hq, int hkv, int batch)
{
    bwd_case *c = &g_cases[g_ncases++];
    memset(c, 0, sizeof *c);
    c->lay = lo, c->dt = dt, c->d = d, c->sq = sq, c->sk = sk, c->hq = hq, c->hkv = hkv;
    c->batch = batch;
    c->wl = c->wr = -1;
    c->seed = 0xb0d0000u + 7919u * (uint64_t)g_ncases;
    for (int b = 0; b < 4; b++) c->seqlens_q[b] = sq, c->seqlens_k[b] = sk;
    return c;
}

static void name_case(bwd_case *c)
{
    static const char *dts[] = {"f32", "f16", "bf16"};
    int n = snprintf(c->name, sizeof c->name, "%s %s d=%d", layout_names[c->lay], dts[c->dt], c->d);
    if (c->lay >= L_VARLEN) {
        n += snprintf(c->name + n, sizeof c->name - (size_t)n, " seqlens=");
        for (int b = 0; b < c->batch; b++)
            n += snprintf(c->name + n, sizeof c->name - (size_t)n, "%s%d/%d", b ? "," : "", c->seqlens_q[b],
                          c->seqlens_k[b]);
    } else {
        n += snprintf(c->name + n, sizeof c->name - (size_t)n, " sq=%d sk=%d", c->sq, c->sk);
    }
    n += snprintf(c->name + n, sizeof c->name - (size_t)n, " h=%d/%d b=%d", c->hq, c->hkv, c->batch);
    if (c->causal) n += snprintf(c->name + n, sizeof c->name - (size_t)n, " causal-%s", c->top_left ? "tl" : "br");
    else if (c->top_left) n += snprintf(c->name + n, sizeof c->name - (size_t)n, " tl");
    if (c->wl >= 0 || c->wr >= 0) n += snprintf(c->name + n, sizeof c->name - (size_t)n, " window=%d,%d", c->wl, c->wr);
    if (c->softcap > 0) n += snprintf(c->name + n, sizeof c->name - (size_t)n, " softcap=%g", (double)c->softcap);
    if (c->alibi) n += snprintf(c->name + n, sizeof c->name - (size_t)n, " alibi%s", c->alibi == 2 ? "-b" : "");
    if (c->dropout > 0) n += snprintf(c->name + n, sizeof c->name - (size_t)n, " dropout=%g", (double)c->dropout);
    if (c->seqused) n += snprintf(c->name + n, sizeof c->name - (size_t)n, " seqused");
    if (c->strided) n += snprintf(c->name + n, sizeof c->name - (size_t)n, " strided");
    if (c->workspace) n += snprintf(c->name + n, sizeof c->name - (size_t)n, " workspace");
    if (c->det) n += snprintf(c->name + n, sizeof c->name - (size_t)n, " det");
    if (c->trust) n += snprintf(c->name + n, sizeof c->name - (size_t)n, " trusted max%+lld", (long long)c->extra_max);
    (void)n;
}

static void default_cases(void)
{
    const facl_dtype F32 = FACL_DTYPE_F32, F16 = FACL_DTYPE_F16, BF16 = FACL_DTYPE_BF16;
    bwd_case *c;
    add(L_DENSE, F32, 64, 113, 203, 6, 2, 3)->workspace = 1;
    add(L_DENSE, F16, 32, 1, 239, 1, 1, 1);
    c = add(L_DENSE, BF16, 59, 128, 217, 8, 1, 1), c->causal = 1;
    c = add(L_DENSE, F16, 128, 113, 203, 6, 2, 1), c->causal = 1, c->top_left = 1, c->strided = 1;
    add(L_DENSE, F32, 1, 3, 799, 1, 1, 3);
    c = add(L_DENSE, BF16, 256, 33, 65, 2, 1, 1), c->strided = 1;
    c = add(L_DENSE, F16, 64, 113, 203, 6, 2, 1), c->wl = 16, c->wr = 8;
    c = add(L_DENSE, F32, 32, 64, 97, 2, 1, 2), c->softcap = 5.0f;
    c = add(L_DENSE, F16, 64, 64, 128, 4, 2, 3), c->alibi = 2, c->causal = 1;
    c = add(L_DENSE, F32, 64, 100, 150, 2, 1, 2), c->dropout = 0.2f;
    c = add(L_DENSE, BF16, 32, 77, 77, 2, 2, 1), c->dropout = 0.15f, c->softcap = 3.0f, c->alibi = 1, c->causal = 1;
    c = add(L_DENSE, F16, 64, 200, 50, 2, 1, 1), c->causal = 1; /* rows that see no key */
    c = add(L_DENSE, F32, 64, 113, 203, 2, 1, 3), c->seqused = 1, c->causal = 1;
    c = add(L_DENSE, F32, 32, 90, 60, 2, 1, 1), c->wl = 10, c->wr = 3, c->top_left = 1;
    add(L_DENSE, F32, 32, 0, 17, 2, 1, 2); /* no query rows: dk = dv = 0 */
    add(L_DENSE, F32, 32, 9, 0, 2, 1, 2);  /* no keys: dq = 0 */
    c = add(L_QKVPACKED, F16, 64, 97, 97, 4, 4, 2), c->strided = 1, c->causal = 1;
    add(L_KVPACKED, BF16, 64, 50, 131, 6, 2, 1);
    c = add(L_VARLEN, F16, 64, 0, 0, 6, 2, 3), c->causal = 1;
    c->seqlens_q[0] = 37, c->seqlens_q[1] = 0, c->seqlens_q[2] = 113;
    c->seqlens_k[0] = 203, c->seqlens_k[1] = 5, c->seqlens_k[2] = 64;
    /* trusted prefix sums with maxima below the real lengths: the kernels still cover
     * every row and key (they stride over what the launch size misses) */
    c = add(L_VARLEN, F16, 64, 0, 0, 6, 2, 3), c->causal = 1, c->trust = 1, c->extra_max = -30;
    c->seqlens_q[0] = 37, c->seqlens_q[1] = 0, c->seqlens_q[2] = 113;
    c->seqlens_k[0] = 203, c->seqlens_k[1] = 5, c->seqlens_k[2] = 64;
    c = add(L_VARLEN_QKV, F32, 32, 0, 0, 2, 2, 3), c->workspace = 1;
    c->seqlens_q[0] = c->seqlens_k[0] = 17, c->seqlens_q[1] = c->seqlens_k[1] = 64;
    c->seqlens_q[2] = c->seqlens_k[2] = 1;
    c = add(L_VARLEN_KV, F16, 40, 0, 0, 8, 1, 2), c->strided = 1, c->dropout = 0.1f;
    c->seqlens_q[0] = 3, c->seqlens_q[1] = 50, c->seqlens_k[0] = 799, c->seqlens_k[1] = 60;
    /* The edge cases above again in 16-bit storage, which the tensor-core paths run with
     * attn_bwd_mma (fp32 takes attn_bwd everywhere): seqused_k, no query rows, no keys,
     * a top-left window. */
    c = add(L_DENSE, BF16, 64, 113, 203, 2, 1, 3), c->seqused = 1, c->causal = 1;
    add(L_DENSE, F16, 32, 0, 17, 2, 1, 2);
    add(L_DENSE, BF16, 32, 9, 0, 2, 1, 2);
    c = add(L_DENSE, F16, 32, 90, 60, 2, 1, 1), c->wl = 10, c->wr = 3, c->top_left = 1;
}

/* Tiny cases for Oclgrind (FACL_BWD_TINY=1, tests/oclgrind): every kernel, every
 * feature switch and layout, a few work-items each. Each case passes its own workspace
 * (made from host data): a buffer the library allocates can inherit a freed buffer's
 * shorter uninitialised-memory shadow in Oclgrind (tests/oclgrind/README.md). */
static void tiny_cases(void)
{
    bwd_case *c;
    c = add(L_DENSE, FACL_DTYPE_F16, 8, 5, 9, 2, 1, 2), c->causal = 1, c->dropout = 0.3f;
    c->softcap = 2.0f, c->alibi = 2, c->strided = 1, c->workspace = 1;
    c = add(L_VARLEN, FACL_DTYPE_F32, 3, 0, 0, 2, 2, 3), c->wl = 2, c->wr = 1, c->workspace = 1;
    c->seqlens_q[0] = 3, c->seqlens_q[1] = 0, c->seqlens_q[2] = 5;
    c->seqlens_k[0] = 4, c->seqlens_k[1] = 2, c->seqlens_k[2] = 1;
    c = add(L_QKVPACKED, FACL_DTYPE_BF16, 4, 6, 6, 2, 2, 1), c->top_left = 1, c->causal = 1;
    c->workspace = 1;
    c = add(L_DENSE, FACL_DTYPE_F32, 5, 4, 11, 3, 1, 2), c->seqused = 1, c->workspace = 1;
    c->sk = 40; /* seqused_k = {40, 3} of 40 keys */
    /* several work-groups and tiles per sequence: 70 keys (groups of 64), 40 rows (tiles of 32) */
    c = add(L_KVPACKED, FACL_DTYPE_F16, 6, 40, 70, 2, 1, 1), c->causal = 1, c->dropout = 0.2f;
    c->workspace = 1;
}

/* The grid of the slow suite: every dtype, head dim and SPEC.md's odd pairs, heads and
 * batches and the mask alignments rotating through them. */
static void grid_cases(void)
{
    static const int dims[] = {1, 32, 59, 64, 128, 256};
    static const int pairs[][2] = {{1, 239}, {113, 203}, {128, 217}, {3, 799}};
    static const int heads[][2] = {{1, 1}, {6, 2}, {8, 1}};
    int n = 0;
    for (int dt = 0; dt < 3; dt++)
        for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
            for (size_t pi = 0; pi < sizeof pairs / sizeof pairs[0]; pi++, n++) {
                bwd_case *c = add(L_DENSE, (facl_dtype)dt, dims[di], pairs[pi][0], pairs[pi][1],
                                  heads[n % 3][0], heads[n % 3][1], n % 2 ? 3 : 1);
                c->causal = n % 4 == 1 || n % 4 == 2;
                c->top_left = n % 4 == 2;
                c->strided = n % 5 == 0;
            }
    /* The other head dims of SPEC.md and its longer pairs, each with a feature and a
     * layout in rotation. */
    static const int dims2[] = {8, 40, 80, 96, 111, 160, 192, 224};
    static const int pairs2[][2] = {{127, 512}, {108, 256}, {256, 512}, {512, 256}, {1, 1}};
    for (size_t di = 0; di < sizeof dims2 / sizeof dims2[0]; di++)
        for (size_t pi = 0; pi < sizeof pairs2 / sizeof pairs2[0]; pi++, n++) {
            const int sq = pairs2[pi][0], sk = pairs2[pi][1];
            static const layout lays[] = {L_DENSE, L_KVPACKED, L_VARLEN, L_VARLEN_KV};
            bwd_case *c = add(lays[n % 4], (facl_dtype)(n % 3), dims2[di], sq, sk, heads[n % 3][0],
                              heads[n % 3][1], n % 2 ? 3 : 1);
            for (int b = 0; b < c->batch; b++) /* varlen: lengths that differ */
                c->seqlens_q[b] = sq - b * sq / 4, c->seqlens_k[b] = sk - b * sk / 3;
            switch (n % 6) {
            case 0: c->causal = 1; break;
            case 1: c->wl = 17, c->wr = 5; break;
            case 2: c->softcap = 4.0f; c->causal = 1; c->top_left = 1; break;
            case 3: c->alibi = 1 + (int)(n % 2); break;
            case 4: c->dropout = 0.25f; break;
            default: c->dropout = 0.1f, c->softcap = 2.0f, c->alibi = 1, c->causal = 1; break;
            }
            c->strided = n % 3 == 0;
        }
    /* SPEC.md's largest pairs, once each. */
    bwd_case *c = add(L_DENSE, FACL_DTYPE_BF16, 128, 1023, 1024, 8, 1, 1);
    c->causal = 1;
    add(L_DENSE, FACL_DTYPE_F16, 64, 1024, 1023, 6, 2, 1);
    c = add(L_DENSE, FACL_DTYPE_F16, 128, 2048, 2048, 2, 1, 1), c->causal = 1;
}

/* Every 16-bit case again with deterministic = 1 (the tensor-core kernels run those in
 * both modes; fp32 runs attn_bwd, the same in both). FACL_BWD_MODE=0 or 1 runs the 16-bit
 * cases in that mode only (a device run's time for the grid). */
static void deterministic_copies(void)
{
    const char *only = getenv("FACL_BWD_MODE");
    const int n = g_ncases;
    for (int i = 0; i < n; i++) {
        if (g_cases[i].dt == FACL_DTYPE_F32 || (only && strcmp(only, "0") == 0)) continue;
        if (only && strcmp(only, "1") == 0) {
            g_cases[i].det = 1;
        } else {
            g_cases[g_ncases] = g_cases[i];
            g_cases[g_ncases++].det = 1;
        }
    }
}

static int setup(void **state)
{
    (void)state;
    facl_context_config cfg = FACL_CONTEXT_CONFIG_INIT;
    cfg.log = record_log;
    facl_status st = facl_context_create_with_config(NULL, &cfg, &g_ctx);
    if (st != FACL_SUCCESS) {
        print_error("facl_context_create: %s\n", facl_last_error());
        return -1;
    }
    facl_device_info info = FACL_DEVICE_INFO_INIT;
    if (facl_context_device_info(g_ctx, &info) == FACL_SUCCESS)
        print_message("device: %s (%s, kernel path %s)\n", info.device_name, info.platform_name,
                      info.kernel_path);
    snprintf(g_path, sizeof g_path, "%s", info.kernel_path);
    g_hopper_bwd = strstr(info.kernel_path_reason, "backward wgmma forced") != NULL ||
                   strstr(info.kernel_path_reason, "Hopper backward") != NULL;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    facl_context_free(g_ctx);
    return 0;
}

/* cmocka's own pattern syntax would do, but a filter that selects nothing must fail. */
static int match(const char *pat, const char *s)
{
    if (!*pat) return !*s;
    if (*pat == '*') return match(pat + 1, s) || (*s && match(pat, s + 1));
    return *s && (*pat == '?' || *pat == *s) && match(pat + 1, s + 1);
}

int main(void)
{
    const char *tiny = getenv("FACL_BWD_TINY");
    if (tiny && strcmp(tiny, "1") == 0) tiny_cases();
    else default_cases();
    const int n_default = g_ncases;
    const char *all = getenv("FACL_BWD_ALL");
    if (all && strcmp(all, "1") == 0) grid_cases();
    for (int i = n_default; i < g_ncases; i++) g_cases[i].grid = 1;
    deterministic_copies();
    static bwd_case det[2];
    det[0] = g_cases[g_ncases > 2 ? 2 : 0]; /* bf16 causal GQA 8/1 */
    /* varlen f16 with dropout: reruns, and maxima of 300 more rows (groups of 64 work-items
     * instead of 32, and more groups) */
    det[1] = g_cases[0];
    for (int i = g_ncases - 1; i >= 0; i--)
        if (g_cases[i].lay == L_VARLEN) det[1] = g_cases[i];
    det[1].seqlens_q[0] = 20, det[1].seqlens_q[1] = 5, det[1].seqlens_q[2] = 30;
    det[1].seqlens_k[0] = 25, det[1].seqlens_k[1] = 30, det[1].seqlens_k[2] = 9;
    det[1].dropout = 0.2f;
    det[0].det = det[1].det = 1; /* the determinism promise is the deterministic mode's */
    static struct CMUnitTest tests[600];
    static char names[600][200];
    const char *filter = getenv("FACL_TEST_FILTER");
    int n = 0;
    if (!filter || match(filter, "reference finite differences"))
        tests[n++] = (struct CMUnitTest){"reference finite differences", test_reference_fd, NULL, NULL, NULL};
    for (int i = 0; i < g_ncases; i++) {
        name_case(&g_cases[i]);
        snprintf(names[n], sizeof names[n], "%s: %s", g_cases[i].grid ? "grid" : "bwd", g_cases[i].name);
        if (filter && !match(filter, names[n])) continue;
        tests[n] = (struct CMUnitTest){names[n], test_case, NULL, NULL, &g_cases[i]};
        n++;
    }
    for (int i = 0; i < 2 && !(tiny && strcmp(tiny, "1") == 0); i++) {
        name_case(&det[i]);
        snprintf(names[n], sizeof names[n], "determinism: %s", det[i].name);
        if (filter && !match(filter, names[n])) continue;
        tests[n] = (struct CMUnitTest){names[n], test_determinism, NULL, NULL, &det[i]};
        n++;
    }
    static bwd_case agree[2];
    for (int i = 0; i < 2 && !(tiny && strcmp(tiny, "1") == 0); i++) {
        agree[i] = det[i];
        agree[i].det = 0;
        name_case(&agree[i]);
        snprintf(names[n], sizeof names[n], "modes agree: %s", agree[i].name);
        if (filter && !match(filter, names[n])) continue;
        tests[n] = (struct CMUnitTest){names[n], test_modes_agree, NULL, NULL, &agree[i]};
        n++;
    }
    /* kernels first: the workspace test may build the portable program of their head dim */
    static bwd_case mode;
    mode = mode_case(0, 1);
    static const struct { const char *what; CMUnitTestFunction fn; } mode_tests[2] = {
        {"kernels of each mode", test_mode_kernels},
        {"a deterministic-size workspace in the atomic mode", test_mode_workspace}};
    for (int i = 0; i < 2 && !(tiny && strcmp(tiny, "1") == 0); i++) {
        snprintf(names[n], sizeof names[n], "mode: %s: %s", mode.name, mode_tests[i].what);
        if (filter && !match(filter, names[n])) continue;
        tests[n] = (struct CMUnitTest){names[n], mode_tests[i].fn, NULL, NULL, NULL};
        n++;
    }
    if (n == 0) {
        fprintf(stderr, "FACL_TEST_FILTER selects no case\n");
        return 1;
    }
    return _cmocka_run_group_tests("bwd", tests, (size_t)n, setup, teardown);
}
