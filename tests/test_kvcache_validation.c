/* Validation of facl_fwd_kvcache and of the paged varlen calls (opts->block_table): every
 * refusal returns its status with a message that begins with the argument's name, and
 * writes nothing (out, lse and both caches are poisoned before each call and compared
 * after). Each test starts from a valid call and breaks one thing.
 *
 * Valid calls are checked in two ways. Most go through the internal validators only
 * (facl_validate_kvcache, facl_validate_varlen_paged: the static library and src/
 * headers), which must accept them, fill the problem as cache_problem.h says and write
 * nothing; so this suite compiles no kernel for them and stays fast on a CPU. A few go
 * through the public calls end to end and must succeed (this also covers the routing of
 * the varlen calls with a block table to the cache kernels). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache_problem.h"
#include "facl.h"

/* Small sizes: dense q (B, SQ, HQ, D); dense cache (BC, SC, HKV, D); paged cache
 * (NB, PS, HKV, D) with a table (B, MB) of row stride BT_SB; k_new (B, SN, HKV, D);
 * varlen q (TQ, HQ, D) from cu_q {0, 2, 5}; varlen k_new (TN, HKV, D) from {0, 1, 3};
 * rotary (RO, RH). The dense and the paged cache hold the same 384 elements. */
enum { B = 2, SQ = 3, HQ = 4, HKV = 2, D = 8, BC = 3, SC = 8, NB = 6, PS = 4, MB = 3,
       BT_SB = 4, SN = 2, TQ = 5, MAXQ = 3, TN = 3, RO = 16, RH = 2, MAXK = 6 };

/* Element offsets in the buffers. */
enum { IN_Q = 0, IN_KNEW = 1024, IN_VNEW = 2048, IN_COS = 3072, IN_SIN = 3200, IN_ALIBI = 3328,
       IN_QKV = 4096, IN_FLOATS = 8192 };
enum { OUT_OUT = 0, OUT_LSE = 512, OUT_PROBS = 1024, OUT_FLOATS = 2048 };
enum { CACHE_FLOATS = 1024 };
enum { IX_SEQLENS = 0, IX_BATCH_IDX = 8, IX_LEFTPAD = 16, IX_CU_Q = 24, IX_CU_NEW = 32,
       IX_BT = 40, IX_CU_K = 56, IX_USED = 60, IX_INTS = 128 };

#define OUT_SENTINEL 0x5Au
#define CACHE_SENTINEL 0x3Cu

/* Which call a test makes. */
enum family {
    KVCACHE,          /* facl_fwd_kvcache */
    VARLEN_PAGED,     /* facl_varlen_fwd with opts->block_table */
    KVPACKED_PAGED,   /* facl_varlen_fwd_kvpacked with opts->block_table */
    QKVPACKED_VARLEN, /* facl_varlen_fwd_qkvpacked (cannot be paged) */
    DENSE_FWD,        /* facl_fwd, facl_fwd_qkvpacked, facl_fwd_kvpacked (no block table) */
    DENSE_QKVPACKED,
    DENSE_KVPACKED
};

/* What the valid facl_fwd_kvcache call has. */
enum {
    F_PAGED = 1,        /* cache->block_table */
    F_VARLEN = 2,       /* cache->cu_seqlens_q */
    F_NEW = 4,          /* k_new / v_new (varlen: with cu_seqlens_k_new) */
    F_ROTARY = 8,       /* rotary_cos / rotary_sin */
    F_BATCH_IDX = 16,   /* cache_batch_idx (dense caches) */
    F_LEFTPAD = 32,     /* cache_leftpad */
    F_HOST_SEQLENS = 64 /* cache_seqlens NULL, cache_seqlens_value 3 */
};

typedef struct fixture {
    facl_context *ctx;
    cl_mem in, out, kc, vc, idx;
    cl_context other_cl;
    cl_command_queue other_queue;
} fixture;

static fixture fx;

/* One call; tests change its fields. The cache struct points into it, so there is one,
 * global (make() resets it). */
typedef struct kcall {
    enum family family;
    facl_context *ctx;
    cl_command_queue queue;
    facl_tensor q, kc, vc, out, lse, k_new, v_new, cos, sin, seqlens, batch_idx, leftpad, bt,
        cu_q, cu_new, cu_k, alibi, used, probs, kv, qkv;
    const facl_tensor *q_arg, *kc_arg, *vc_arg, *out_arg, *lse_arg;
    facl_kvcache_args cache;
    const facl_kvcache_args *cache_arg;
    facl_attn_options opts;
    int64_t max_q, max_k;
    /* the index buffers' contents, uploaded by run() */
    int32_t h_seqlens[B], h_batch_idx[B], h_leftpad[B], h_cu_q[B + 1], h_cu_new[B + 1],
        h_bt[B][BT_SB], h_cu_k[B + 1], h_used[B];
} kcall;

static kcall g;

static facl_tensor view(cl_mem buf, facl_dtype dt, int ndim, const int64_t *shape, size_t offset)
{
    facl_tensor t = facl_tensor_contiguous(buf, dt, ndim, shape);
    t.offset = offset;
    return t;
}

static cl_mem make_buffer(size_t bytes)
{
    cl_int err;
    cl_mem m = clCreateBuffer(facl_context_cl_context(fx.ctx), CL_MEM_READ_WRITE, bytes, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    return m;
}

static int setup(void **state)
{
    (void)state;
    if (facl_context_create(NULL, &fx.ctx) != FACL_SUCCESS) {
        print_error("facl_context_create: %s\n", facl_last_error());
        return -1;
    }
    fx.in = make_buffer(IN_FLOATS * sizeof(float));
    fx.out = make_buffer(OUT_FLOATS * sizeof(float));
    fx.kc = make_buffer(CACHE_FLOATS * sizeof(float));
    fx.vc = make_buffer(CACHE_FLOATS * sizeof(float));
    fx.idx = make_buffer(IX_INTS * sizeof(int32_t));
    const float zero = 0.0f;
    cl_command_queue q = facl_context_queue(fx.ctx);
    assert_int_equal(clEnqueueFillBuffer(q, fx.in, &zero, sizeof zero, 0, IN_FLOATS * sizeof(float),
                                         0, NULL, NULL),
                     CL_SUCCESS);
    assert_int_equal(clFinish(q), CL_SUCCESS);
    cl_device_id dev = facl_context_device(fx.ctx);
    cl_int err;
    fx.other_cl = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    fx.other_queue = clCreateCommandQueue(fx.other_cl, dev, 0, &err);
    assert_int_equal(err, CL_SUCCESS);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cl_mem all[5] = {fx.in, fx.out, fx.kc, fx.vc, fx.idx};
    for (int i = 0; i < 5; ++i) clReleaseMemObject(all[i]);
    clReleaseCommandQueue(fx.other_queue);
    clReleaseContext(fx.other_cl);
    facl_context_free(fx.ctx);
    return 0;
}

/* A valid call of `family`; for KVCACHE with the features in `flags`. */
static kcall *make(enum family family, int flags)
{
    kcall *c = &g;
    memset(c, 0, sizeof *c);
    c->family = family;
    c->ctx = fx.ctx;
    c->opts = facl_attn_options_default();
    const facl_kvcache_args init = FACL_KVCACHE_ARGS_INIT;
    c->cache = init;
    const facl_dtype f = FACL_DTYPE_F32, i32 = FACL_DTYPE_I32;
    const int varlen = family == VARLEN_PAGED || family == KVPACKED_PAGED ||
                       family == QKVPACKED_VARLEN || (flags & F_VARLEN);
    const int paged = family == VARLEN_PAGED || family == KVPACKED_PAGED || (flags & F_PAGED);

    const int64_t q_dense[4] = {B, SQ, HQ, D}, q_var[3] = {TQ, HQ, D};
    const int64_t lse_dense[3] = {B, HQ, SQ}, lse_var[2] = {HQ, TQ};
    c->q = varlen ? view(fx.in, f, 3, q_var, IN_Q) : view(fx.in, f, 4, q_dense, IN_Q);
    c->out = varlen ? view(fx.out, f, 3, q_var, OUT_OUT) : view(fx.out, f, 4, q_dense, OUT_OUT);
    c->lse = varlen ? view(fx.out, f, 2, lse_var, OUT_LSE) : view(fx.out, f, 3, lse_dense, OUT_LSE);

    const int64_t cache_dense[4] = {BC, SC, HKV, D}, cache_paged[4] = {NB, PS, HKV, D};
    const int64_t k_dense[4] = {B, SC, HKV, D};
    if (family == DENSE_FWD || family == DENSE_KVPACKED || family == DENSE_QKVPACKED) {
        c->kc = view(fx.kc, f, 4, k_dense, 0);
        c->vc = view(fx.vc, f, 4, k_dense, 0);
    } else {
        c->kc = view(fx.kc, f, 4, paged ? cache_paged : cache_dense, 0);
        c->vc = view(fx.vc, f, 4, paged ? cache_paged : cache_dense, 0);
    }
    const int64_t kv_paged[5] = {NB, PS, 2, HKV, D}, kv_dense[5] = {B, SC, 2, HKV, D};
    c->kv = view(fx.kc, f, 5, family == DENSE_KVPACKED ? kv_dense : kv_paged, 0);
    const int64_t qkv_var[4] = {TQ, 3, HQ, D}, qkv_dense[5] = {B, SQ, 3, HQ, D};
    c->qkv = family == DENSE_QKVPACKED ? view(fx.in, f, 5, qkv_dense, IN_QKV)
                                       : view(fx.in, f, 4, qkv_var, IN_QKV);

    const int64_t knew_dense[4] = {B, SN, HKV, D}, knew_var[3] = {TN, HKV, D};
    c->k_new = varlen ? view(fx.in, f, 3, knew_var, IN_KNEW) : view(fx.in, f, 4, knew_dense, IN_KNEW);
    c->v_new = varlen ? view(fx.in, f, 3, knew_var, IN_VNEW) : view(fx.in, f, 4, knew_dense, IN_VNEW);
    const int64_t ro[2] = {RO, RH}, vec[1] = {B}, cu[1] = {B + 1}, bt[2] = {B, MB};
    const int64_t alibi[1] = {HQ}, probs[4] = {B, HQ, MAXQ, MAXK};
    c->cos = view(fx.in, f, 2, ro, IN_COS);
    c->sin = view(fx.in, f, 2, ro, IN_SIN);
    c->alibi = view(fx.in, f, 1, alibi, IN_ALIBI);
    c->probs = view(fx.out, f, 4, probs, OUT_PROBS);
    c->seqlens = view(fx.idx, i32, 1, vec, IX_SEQLENS);
    c->batch_idx = view(fx.idx, i32, 1, vec, IX_BATCH_IDX);
    c->leftpad = view(fx.idx, i32, 1, vec, IX_LEFTPAD);
    c->used = view(fx.idx, i32, 1, vec, IX_USED);
    c->cu_q = view(fx.idx, i32, 1, cu, IX_CU_Q);
    c->cu_new = view(fx.idx, i32, 1, cu, IX_CU_NEW);
    c->cu_k = view(fx.idx, i32, 1, cu, IX_CU_K);
    c->bt = view(fx.idx, i32, 2, bt, IX_BT);
    c->bt.stride[0] = BT_SB; /* a padded table: row stride 4, 3 entries used */

    /* seq 0: 3 keys cached (+1 or 2 new); seq 1: 5 (+2). Pages: seq 0 [5, 1, unused],
     * seq 1 [2, 3, unused]; unused entries hold -1 and are never read. */
    const int32_t seqlens[B] = {3, 5}, batch_idx[B] = {2, 0}, leftpad[B] = {1, 0};
    const int32_t cu_q[B + 1] = {0, 2, 5}, cu_new[B + 1] = {0, 1, 3}, cu_k[B + 1] = {0, 3, 9};
    const int32_t table[B][BT_SB] = {{5, 1, -1, -7}, {2, 3, -1, -7}}, used[B] = {3, 6};
    memcpy(c->h_seqlens, seqlens, sizeof seqlens);
    memcpy(c->h_batch_idx, batch_idx, sizeof batch_idx);
    memcpy(c->h_leftpad, leftpad, sizeof leftpad);
    memcpy(c->h_cu_q, cu_q, sizeof cu_q);
    memcpy(c->h_cu_new, cu_new, sizeof cu_new);
    memcpy(c->h_cu_k, cu_k, sizeof cu_k);
    memcpy(c->h_bt, table, sizeof table);
    memcpy(c->h_used, used, sizeof used);

    c->q_arg = &c->q;
    c->kc_arg = &c->kc;
    c->vc_arg = &c->vc;
    c->out_arg = &c->out;
    c->lse_arg = &c->lse;
    c->cache_arg = &c->cache;
    c->max_q = MAXQ;
    c->max_k = MAXK;
    if (paged && family != KVCACHE) c->opts.block_table = &c->bt;
    if (family != KVCACHE) return c;

    c->cache.cache_seqlens = (flags & F_HOST_SEQLENS) ? NULL : &c->seqlens;
    c->cache.cache_seqlens_value = (flags & F_HOST_SEQLENS) ? 3 : 0;
    if (flags & F_PAGED) c->cache.block_table = &c->bt;
    if (flags & F_VARLEN) {
        c->cache.cu_seqlens_q = &c->cu_q;
        c->cache.max_seqlen_q = MAXQ;
    }
    if (flags & F_NEW) {
        c->cache.k_new = &c->k_new;
        c->cache.v_new = &c->v_new;
        if (flags & F_VARLEN) c->cache.cu_seqlens_k_new = &c->cu_new;
    }
    if (flags & F_ROTARY) {
        c->cache.rotary_cos = &c->cos;
        c->cache.rotary_sin = &c->sin;
    }
    if (flags & F_BATCH_IDX) c->cache.cache_batch_idx = &c->batch_idx;
    if (flags & F_LEFTPAD) c->cache.cache_leftpad = &c->leftpad;
    return c;
}

static void upload_indices(const kcall *c)
{
    int32_t host[IX_INTS];
    memset(host, 0, sizeof host);
    memcpy(host + IX_SEQLENS, c->h_seqlens, sizeof c->h_seqlens);
    memcpy(host + IX_BATCH_IDX, c->h_batch_idx, sizeof c->h_batch_idx);
    memcpy(host + IX_LEFTPAD, c->h_leftpad, sizeof c->h_leftpad);
    memcpy(host + IX_CU_Q, c->h_cu_q, sizeof c->h_cu_q);
    memcpy(host + IX_CU_NEW, c->h_cu_new, sizeof c->h_cu_new);
    memcpy(host + IX_BT, c->h_bt, sizeof c->h_bt);
    memcpy(host + IX_CU_K, c->h_cu_k, sizeof c->h_cu_k);
    memcpy(host + IX_USED, c->h_used, sizeof c->h_used);
    assert_int_equal(clEnqueueWriteBuffer(facl_context_queue(fx.ctx), fx.idx, CL_TRUE, 0,
                                          sizeof host, host, 0, NULL, NULL),
                     CL_SUCCESS);
}

static facl_status run(kcall *c)
{
    upload_indices(c);
    const facl_attn_options *o = &c->opts;
    switch (c->family) {
    case VARLEN_PAGED:
        return facl_varlen_fwd(c->ctx, c->queue, c->q_arg, c->kc_arg, c->vc_arg, &c->cu_q,
                               &c->cu_k, c->max_q, c->max_k, c->out_arg, c->lse_arg, o, 0, NULL,
                               NULL);
    case KVPACKED_PAGED:
        return facl_varlen_fwd_kvpacked(c->ctx, c->queue, c->q_arg, &c->kv, &c->cu_q, &c->cu_k,
                                        c->max_q, c->max_k, c->out_arg, c->lse_arg, o, 0, NULL,
                                        NULL);
    case QKVPACKED_VARLEN:
        return facl_varlen_fwd_qkvpacked(c->ctx, c->queue, &c->qkv, &c->cu_q, c->max_q,
                                         c->out_arg, c->lse_arg, o, 0, NULL, NULL);
    case DENSE_FWD:
        return facl_fwd(c->ctx, c->queue, c->q_arg, c->kc_arg, c->vc_arg, c->out_arg, c->lse_arg,
                        o, 0, NULL, NULL);
    case DENSE_QKVPACKED:
        return facl_fwd_qkvpacked(c->ctx, c->queue, &c->qkv, c->out_arg, c->lse_arg, o, 0, NULL,
                                  NULL);
    case DENSE_KVPACKED:
        return facl_fwd_kvpacked(c->ctx, c->queue, c->q_arg, &c->kv, c->out_arg, c->lse_arg, o,
                                 0, NULL, NULL);
    default:
        return facl_fwd_kvcache(c->ctx, c->queue, c->q_arg, c->kc_arg, c->vc_arg, c->cache_arg,
                                c->out_arg, c->lse_arg, o, 0, NULL, NULL);
    }
}

static void poison(void)
{
    cl_command_queue q = facl_context_queue(fx.ctx);
    const unsigned char out_byte = OUT_SENTINEL, cache_byte = CACHE_SENTINEL;
    assert_int_equal(clEnqueueFillBuffer(q, fx.out, &out_byte, 1, 0, OUT_FLOATS * sizeof(float),
                                         0, NULL, NULL),
                     CL_SUCCESS);
    assert_int_equal(clEnqueueFillBuffer(q, fx.kc, &cache_byte, 1, 0,
                                         CACHE_FLOATS * sizeof(float), 0, NULL, NULL),
                     CL_SUCCESS);
    assert_int_equal(clEnqueueFillBuffer(q, fx.vc, &cache_byte, 1, 0,
                                         CACHE_FLOATS * sizeof(float), 0, NULL, NULL),
                     CL_SUCCESS);
    assert_int_equal(clFinish(q), CL_SUCCESS);
}

static void assert_untouched(void)
{
    cl_command_queue q = facl_context_queue(fx.ctx);
    assert_int_equal(clFinish(q), CL_SUCCESS);
    const cl_mem bufs[3] = {fx.out, fx.kc, fx.vc};
    const size_t bytes[3] = {OUT_FLOATS * sizeof(float), CACHE_FLOATS * sizeof(float),
                             CACHE_FLOATS * sizeof(float)};
    const unsigned char sentinel[3] = {OUT_SENTINEL, CACHE_SENTINEL, CACHE_SENTINEL};
    const char *names[3] = {"out/lse", "k_cache", "v_cache"};
    unsigned char *host = malloc(OUT_FLOATS * sizeof(float));
    assert_non_null(host);
    for (int i = 0; i < 3; ++i) {
        assert_int_equal(clEnqueueReadBuffer(q, bufs[i], CL_TRUE, 0, bytes[i], host, 0, NULL, NULL),
                         CL_SUCCESS);
        for (size_t j = 0; j < bytes[i]; ++j)
            if (host[j] != sentinel[i]) {
                free(host);
                fail_msg("%s: byte %zu was written by a rejected call", names[i], j);
            }
    }
    free(host);
}

/* The message begins with `prefix` (the argument's name and what ends it: ':' or '[')
 * and, if `also` is given, names it after that. */
static void expect_message(const char *prefix, const char *also)
{
    const char *msg = facl_last_error();
    const size_t n = strlen(prefix);
    if (!strpbrk(prefix, ":["))
        fail_msg("test bug: prefix '%s' must include what ends the name (':' or '[')", prefix);
    if (strncmp(msg, prefix, n) != 0) fail_msg("message '%s' does not begin with '%s'", msg, prefix);
    if (also && !strstr(msg + n, also))
        fail_msg("message '%s' does not name '%s' after '%s'", msg, also, prefix);
}

static void expect_refused(kcall *c, facl_status expected, const char *prefix, const char *also)
{
    poison();
    const facl_status st = run(c);
    if (st != expected)
        fail_msg("expected %s, got %s: %s", facl_status_string(expected), facl_status_string(st),
                 facl_last_error());
    expect_message(prefix, also);
    assert_untouched();
}

/* The internal validation of a KVCACHE or VARLEN_PAGED call, without a launch. */
static facl_status validate_only(kcall *c, facl_cache_problem *cp)
{
    upload_indices(c);
    const facl_fwd_names names = {"q", "k", "v"};
    switch (c->family) {
    case KVCACHE:
        return facl_validate_kvcache(c->ctx, c->queue, c->q_arg, c->kc_arg, c->vc_arg,
                                     c->cache_arg, c->out_arg, c->lse_arg, &c->opts, 0, NULL, cp);
    case VARLEN_PAGED:
        return facl_validate_varlen_paged(c->ctx, c->queue, c->q_arg, c->kc_arg, c->vc_arg,
                                          &c->cu_q, &c->cu_k, c->max_q, c->max_k, c->out_arg,
                                          c->lse_arg, &c->opts, &names, 0, NULL, cp);
    default:
        fail_msg("test bug: family %d has no internal validator here", (int)c->family);
    }
    return FACL_SUCCESS;
}

/* Passes validation (and, like any validation, writes nothing). */
static void expect_accepted_into(kcall *c, const char *what, facl_cache_problem *cp)
{
    poison();
    const facl_status st = validate_only(c, cp);
    if (st != FACL_SUCCESS)
        fail_msg("%s: %s: %s", what, facl_status_string(st), facl_last_error());
    assert_untouched();
}

static void expect_accepted(kcall *c, const char *what)
{
    facl_cache_problem cp;
    expect_accepted_into(c, what, &cp);
}

/* The public call succeeds end to end. */
static void expect_runs(kcall *c, const char *what)
{
    const facl_status st = run(c);
    if (st != FACL_SUCCESS)
        fail_msg("%s: %s: %s", what, facl_status_string(st), facl_last_error());
    assert_int_equal(clFinish(facl_context_queue(fx.ctx)), CL_SUCCESS);
}

/* ------------------------------------------------------------------ valid calls */

static void test_valid_calls_pass_validation(void **state)
{
    (void)state;
    static const struct {
        int flags;
        const char *what;
    } cases[] = {
        {0, "dense cache"},
        {F_NEW, "dense cache, k_new"},
        {F_NEW | F_ROTARY | F_BATCH_IDX | F_LEFTPAD, "dense, k_new, rotary, batch_idx, leftpad"},
        {F_HOST_SEQLENS | F_NEW | F_ROTARY, "host cache_seqlens_value, k_new, rotary"},
        {F_PAGED, "paged"},
        {F_PAGED | F_NEW | F_ROTARY | F_LEFTPAD, "paged, k_new, rotary, leftpad"},
        {F_VARLEN, "varlen q, dense cache"},
        {F_VARLEN | F_NEW | F_BATCH_IDX, "varlen q, varlen k_new, batch_idx"},
        {F_VARLEN | F_PAGED | F_NEW | F_ROTARY | F_LEFTPAD, "varlen q, paged, everything"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        kcall *c = make(KVCACHE, cases[i].flags);
        expect_accepted(c, cases[i].what);
        c = make(KVCACHE, cases[i].flags); /* with the options that are allowed */
        c->opts.causal = 1;
        c->opts.window_left = 2;
        c->opts.softcap = 3.0f;
        c->opts.alibi_slopes = &c->alibi;
        c->cache.num_splits = 3;
        expect_accepted(c, cases[i].what);
    }
    kcall *c = make(KVCACHE, F_NEW);
    c->lse_arg = NULL;
    expect_accepted(c, "no lse");
    c = make(KVCACHE, 0);
    c->cache_arg = NULL; /* defaults: 0 keys in every sequence */
    expect_accepted(c, "cache NULL");
    c = make(KVCACHE, F_NEW);
    c->cache.num_splits = 256;
    expect_accepted(c, "num_splits 256");
    c = make(KVCACHE, F_NEW);
    c->cache.rotary_interleaved = 0;
    expect_accepted(c, "rotary_interleaved 0");
    /* a per-batch ALiBi (batch, heads_q) */
    c = make(KVCACHE, F_PAGED);
    const int64_t per_batch[2] = {B, HQ};
    c->alibi = view(fx.in, FACL_DTYPE_F32, 2, per_batch, IN_ALIBI);
    c->opts.alibi_slopes = &c->alibi;
    expect_accepted(c, "alibi (batch, heads_q)");
}

/* A few valid calls through the public entry points, end to end (each compiles one
 * variant of the KV-cache kernels, so there are few): the kernels' results are
 * test_kvcache.c's business, here only that validation lets them through and the varlen
 * calls with a block table reach the cache kernels. */
static void test_public_calls_run(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_NEW | F_ROTARY | F_BATCH_IDX | F_LEFTPAD);
    expect_runs(c, "facl_fwd_kvcache: dense cache, k_new, rotary, batch_idx, leftpad");
    c = make(KVCACHE, F_VARLEN | F_PAGED | F_NEW | F_ROTARY | F_LEFTPAD);
    c->opts.causal = 1;
    expect_runs(c, "facl_fwd_kvcache: varlen q, paged, k_new, rotary, leftpad, causal");
    c = make(VARLEN_PAGED, 0);
    expect_runs(c, "facl_varlen_fwd with a block table");
    c = make(KVPACKED_PAGED, 0);
    expect_runs(c, "facl_varlen_fwd_kvpacked with a block table");
    c = make(KVPACKED_PAGED, 0);
    c->opts.trust_cu_seqlens = 1;
    expect_runs(c, "facl_varlen_fwd_kvpacked with a block table, trusted");
}

#define EXPECT_VIEW(v, buf, off, b, s, h)            \
    do {                                              \
        assert_ptr_equal((v).buffer, (buf));          \
        assert_int_equal((v).offset, (off));          \
        assert_int_equal((v).sb, (b));                \
        assert_int_equal((v).ss, (s));                \
        assert_int_equal((v).sh, (h));                \
    } while (0)

/* The problem is filled as cache_problem.h describes it. */
static void test_problem_fields(void **state)
{
    (void)state;
    facl_cache_problem cp;
    /* dense q, dense cache, everything */
    kcall *c = make(KVCACHE, F_NEW | F_ROTARY | F_BATCH_IDX | F_LEFTPAD);
    c->opts.causal = 1;
    c->opts.window_left = SC; /* >= the capacity: unbounded */
    c->opts.alibi_slopes = &c->alibi;
    c->cache.num_splits = 5;
    expect_accepted_into(c, "dense, everything", &cp);
    const facl_fwd_problem *p = &cp.fwd;
    assert_int_equal(p->dtype, FACL_DTYPE_F32);
    assert_int_equal(p->head_dim, D);
    assert_int_equal(p->batch, B);
    assert_int_equal(p->heads_q, HQ);
    assert_int_equal(p->heads_kv, HKV);
    assert_int_equal(p->seqlen_q, SQ);
    assert_int_equal(p->seqlen_k, SC); /* the capacity */
    assert_int_equal(p->total_q, 0);
    assert_int_equal(p->total_k, 0);
    assert_int_equal(p->varlen, 0);
    assert_null(p->cu_q);
    assert_null(p->cu_k);
    assert_null(p->seqused);
    EXPECT_VIEW(p->q, fx.in, IN_Q, SQ * HQ * D, HQ * D, D);
    EXPECT_VIEW(p->out, fx.out, OUT_OUT, SQ * HQ * D, HQ * D, D);
    EXPECT_VIEW(p->k, fx.kc, 0, SC * HKV * D, HKV * D, D);
    EXPECT_VIEW(p->v, fx.vc, 0, SC * HKV * D, HKV * D, D);
    EXPECT_VIEW(p->lse, fx.out, OUT_LSE, HQ * SQ, 1, SQ);
    EXPECT_VIEW(p->alibi, fx.in, IN_ALIBI, 0, 0, 1);
    assert_null(p->probs.buffer);
    assert_true(fabsf(p->scale - 1.0f / sqrtf((float)D)) < 1e-7f);
    assert_int_equal(p->window_left, -1);
    assert_int_equal(p->window_right, 0);
    assert_true(p->dropout_p == 0.0f);
    assert_int_equal(cp.key_source, FACL_KEYS_CACHE_SEQLENS);
    assert_ptr_equal(cp.seqlens, fx.idx);
    assert_int_equal(cp.seqlens_off, IX_SEQLENS);
    assert_int_equal(cp.batch_cache, BC);
    assert_ptr_equal(cp.batch_idx, fx.idx);
    assert_int_equal(cp.batch_idx_off, IX_BATCH_IDX);
    assert_ptr_equal(cp.leftpad, fx.idx);
    assert_int_equal(cp.leftpad_off, IX_LEFTPAD);
    assert_int_equal(cp.paged, 0);
    assert_null(cp.block_table);
    EXPECT_VIEW(cp.k_new, fx.in, IN_KNEW, SN * HKV * D, HKV * D, D);
    EXPECT_VIEW(cp.v_new, fx.in, IN_VNEW, SN * HKV * D, HKV * D, D);
    assert_int_equal(cp.seqlen_new, SN);
    assert_int_equal(cp.total_new, 0);
    assert_null(cp.cu_new);
    EXPECT_VIEW(cp.cos, fx.in, IN_COS, 0, RH, 0);
    EXPECT_VIEW(cp.sin, fx.in, IN_SIN, 0, RH, 0);
    assert_int_equal(cp.rotary_dim, 2 * RH);
    assert_int_equal(cp.seqlen_ro, RO);
    assert_int_equal(cp.rotary_interleaved, 1);
    assert_int_equal(cp.num_splits, 5);

    /* varlen q, paged cache, varlen k_new, host cache_seqlens; a window below capacity */
    c = make(KVCACHE, F_VARLEN | F_PAGED | F_NEW | F_HOST_SEQLENS);
    c->opts.window_left = MB * PS - 1;
    c->cache.rotary_interleaved = 0;
    expect_accepted_into(c, "varlen, paged", &cp);
    assert_int_equal(p->varlen, 1);
    assert_int_equal(p->batch, B);
    assert_int_equal(p->total_q, TQ);
    assert_int_equal(p->seqlen_q, MAXQ);
    assert_int_equal(p->seqlen_k, MB * PS);
    assert_int_equal(p->total_k, 0);
    assert_ptr_equal(p->cu_q, fx.idx);
    assert_int_equal(p->cu_q_off, IX_CU_Q);
    EXPECT_VIEW(p->q, fx.in, IN_Q, 0, HQ * D, D);
    EXPECT_VIEW(p->out, fx.out, OUT_OUT, 0, HQ * D, D);
    EXPECT_VIEW(p->k, fx.kc, 0, PS * HKV * D, HKV * D, D);
    EXPECT_VIEW(p->v, fx.vc, 0, PS * HKV * D, HKV * D, D);
    EXPECT_VIEW(p->lse, fx.out, OUT_LSE, 0, 1, TQ);
    assert_null(p->alibi.buffer);
    assert_int_equal(p->window_left, MB * PS - 1);
    assert_int_equal(p->window_right, -1);
    assert_int_equal(cp.key_source, FACL_KEYS_CACHE_SEQLENS);
    assert_null(cp.seqlens);
    assert_int_equal(cp.seqlens_value, 3);
    assert_null(cp.batch_idx);
    assert_null(cp.leftpad);
    assert_int_equal(cp.paged, 1);
    assert_int_equal(cp.page_size, PS);
    assert_int_equal(cp.num_blocks, NB);
    assert_int_equal(cp.max_blocks, MB);
    assert_ptr_equal(cp.block_table, fx.idx);
    assert_int_equal(cp.bt_off, IX_BT);
    assert_int_equal(cp.bt_sb, BT_SB);
    EXPECT_VIEW(cp.k_new, fx.in, IN_KNEW, 0, HKV * D, D);
    EXPECT_VIEW(cp.v_new, fx.in, IN_VNEW, 0, HKV * D, D);
    assert_int_equal(cp.seqlen_new, 0);
    assert_int_equal(cp.total_new, TN);
    assert_ptr_equal(cp.cu_new, fx.idx);
    assert_int_equal(cp.cu_new_off, IX_CU_NEW);
    assert_null(cp.cos.buffer);
    assert_int_equal(cp.rotary_dim, 0);
    assert_int_equal(cp.rotary_interleaved, 0);
    assert_int_equal(cp.num_splits, 0);

    /* facl_varlen_fwd with a block table */
    c = make(VARLEN_PAGED, 0);
    c->opts.seqused_k = &c->used;
    expect_accepted_into(c, "varlen call, paged", &cp);
    assert_int_equal(p->varlen, 1);
    assert_int_equal(p->total_q, TQ);
    assert_int_equal(p->seqlen_q, MAXQ);
    assert_int_equal(p->seqlen_k, MAXK); /* max_seqlen_k, as the plain varlen call */
    assert_int_equal(p->total_k, 0);
    assert_ptr_equal(p->cu_k, fx.idx);
    assert_int_equal(p->cu_k_off, IX_CU_K);
    assert_ptr_equal(p->seqused, fx.idx);
    assert_int_equal(p->seqused_off, IX_USED);
    EXPECT_VIEW(p->k, fx.kc, 0, PS * HKV * D, HKV * D, D);
    assert_int_equal(cp.key_source, FACL_KEYS_CU_SEQLENS_K);
    assert_int_equal(cp.paged, 1);
    assert_int_equal(cp.max_blocks, MB);
    assert_int_equal(cp.bt_sb, BT_SB);
    assert_null(cp.k_new.buffer);
    assert_null(cp.seqlens);
    assert_null(cp.cos.buffer);
}

/* Batch 0 and queries without rows have nothing to compute and are valid. */
static void test_empty_calls_pass_validation(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_NEW | F_BATCH_IDX | F_LEFTPAD | F_ROTARY);
    c->q.shape[0] = c->out.shape[0] = c->lse.shape[0] = 0;
    c->k_new.shape[0] = c->v_new.shape[0] = 0;
    c->seqlens.shape[0] = c->batch_idx.shape[0] = c->leftpad.shape[0] = 0;
    expect_accepted(c, "dense batch 0");
    c = make(KVCACHE, F_PAGED | F_NEW);
    c->q.shape[0] = c->out.shape[0] = c->lse.shape[0] = 0;
    c->k_new.shape[0] = c->v_new.shape[0] = 0;
    c->seqlens.shape[0] = c->bt.shape[0] = 0;
    expect_accepted(c, "paged batch 0");
    c = make(KVCACHE, F_VARLEN | F_NEW);
    c->cu_q.shape[0] = c->cu_new.shape[0] = 1;
    c->seqlens.shape[0] = 0;
    c->h_cu_q[0] = c->h_cu_new[0] = 0;
    expect_accepted(c, "varlen batch 0");
    c = make(KVCACHE, F_NEW | F_ROTARY);
    c->q.shape[1] = c->out.shape[1] = c->lse.shape[2] = 0;
    expect_accepted(c, "dense q of 0 rows");
    c = make(KVCACHE, F_VARLEN | F_PAGED);
    c->q.shape[0] = c->out.shape[0] = c->lse.shape[1] = 0;
    c->h_cu_q[1] = c->h_cu_q[2] = 0;
    c->cache.max_seqlen_q = 0;
    expect_accepted(c, "varlen q of 0 rows");
    c = make(KVCACHE, 0);
    c->h_seqlens[0] = c->h_seqlens[1] = 0; /* no keys: empty rows */
    expect_accepted(c, "empty caches");
}

/* Entries past what a sequence uses are never read: -1 there is fine, and so is one in
 * a page before cache_leftpad that nothing appends to. */
static void test_unused_table_entries_pass_validation(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_PAGED | F_NEW | F_LEFTPAD);
    c->h_bt[0][2] = INT32_MIN;
    c->h_bt[1][2] = NB;
    expect_accepted(c, "entries past the used pages");
    c = make(KVCACHE, F_PAGED | F_LEFTPAD);
    c->h_leftpad[1] = 4; /* seq 1 reads [4, 5): page 1 only */
    c->h_bt[1][0] = -1;
    expect_accepted(c, "an entry before leftpad");
    c = make(VARLEN_PAGED, 0);
    c->opts.seqused_k = &c->used;
    c->h_used[1] = 4; /* seq 1 uses 4 of its 6 keys: page 0 only */
    c->h_bt[1][1] = -1;
    expect_accepted(c, "an entry past seqused_k");
    /* without k_new, two sequences may share cache rows and pages */
    c = make(KVCACHE, F_BATCH_IDX);
    c->h_batch_idx[0] = c->h_batch_idx[1] = 1;
    expect_accepted(c, "a shared cache row without k_new");
    c = make(KVCACHE, F_PAGED);
    c->h_bt[1][0] = c->h_bt[0][0];
    expect_accepted(c, "a shared page without k_new");
    /* with k_new, a dense row shared by a sequence that appends nothing */
    c = make(KVCACHE, F_VARLEN | F_NEW | F_BATCH_IDX);
    c->h_cu_new[1] = 0; /* seq 0 appends 0 keys, seq 1 appends 3 */
    c->h_batch_idx[0] = c->h_batch_idx[1] = 1;
    expect_accepted(c, "a shared row, one sequence appending");
}

/* Trusted, nothing is read back: values the checked call refuses are clamped on the
 * device, and validation passes. */
static void test_trusted_skips_read_back(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_PAGED | F_NEW | F_LEFTPAD | F_ROTARY);
    c->opts.trust_cu_seqlens = 1;
    c->h_seqlens[1] = 1000;
    c->h_leftpad[0] = -4;
    c->h_bt[0][0] = NB + 3;
    expect_accepted(c, "trusted, bad values");
    c = make(KVCACHE, F_VARLEN | F_NEW | F_BATCH_IDX);
    c->opts.trust_cu_seqlens = 1;
    c->h_cu_q[0] = 7;
    c->h_cu_new[2] = 99;
    c->h_batch_idx[0] = -1;
    expect_accepted(c, "trusted, bad prefix sums and index");
    c = make(VARLEN_PAGED, 0);
    c->opts.trust_cu_seqlens = 1;
    c->h_cu_k[2] = 100;
    c->h_bt[1][1] = -3;
    expect_accepted(c, "trusted paged varlen");
}

/* ------------------------------------------------------------------ arguments */

static void test_null_arguments(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, 0);
    c->ctx = NULL;
    expect_refused(c, FACL_ERROR_NULL_ARGUMENT, "ctx:", NULL);
    c = make(KVCACHE, 0);
    c->q_arg = NULL;
    expect_refused(c, FACL_ERROR_NULL_ARGUMENT, "q:", NULL);
    c = make(KVCACHE, 0);
    c->kc_arg = NULL;
    expect_refused(c, FACL_ERROR_NULL_ARGUMENT, "k_cache:", NULL);
    c = make(KVCACHE, 0);
    c->vc_arg = NULL;
    expect_refused(c, FACL_ERROR_NULL_ARGUMENT, "v_cache:", NULL);
    c = make(KVCACHE, 0);
    c->out_arg = NULL;
    expect_refused(c, FACL_ERROR_NULL_ARGUMENT, "out:", NULL);
    c = make(KVCACHE, 0);
    c->kc.buffer = NULL;
    expect_refused(c, FACL_ERROR_NULL_ARGUMENT, "k_cache: NULL buffer", NULL);
}

static void test_foreign_queue(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, 0);
    c->queue = fx.other_queue;
    expect_refused(c, FACL_ERROR_INVALID_CONTEXT, "queue:", NULL);
}

static void test_cache_struct_size(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, 0);
    c->cache.struct_size = 16; /* no older version exists */
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->struct_size:", NULL);
    c = make(KVCACHE, 0);
    c->cache.struct_size = 0;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->struct_size:", NULL);
}

static void test_opts_block_table_refused(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_PAGED);
    c->opts.block_table = &c->bt;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "opts->block_table:", "cache->block_table");
}

static void test_opts_dropout_probs_seqused_unsupported(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, 0);
    c->opts.dropout_p = 0.1f;
    expect_refused(c, FACL_ERROR_UNSUPPORTED, "opts->dropout_p:", NULL);
    c = make(KVCACHE, 0);
    c->opts.attn_probs = &c->probs;
    expect_refused(c, FACL_ERROR_UNSUPPORTED, "opts->attn_probs:", NULL);
    c = make(KVCACHE, 0);
    c->opts.seqused_k = &c->used;
    expect_refused(c, FACL_ERROR_UNSUPPORTED, "opts->seqused_k:", "cache_seqlens");
}

static void test_opts_scalars(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, 0);
    c->opts.softmax_scale = -1.0f;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "opts->softmax_scale:", NULL);
    c = make(KVCACHE, 0);
    c->opts.softcap = NAN;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "opts->softcap:", NULL);
    c = make(KVCACHE, 0);
    c->opts.window_left = -2;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "opts->window_left:", NULL);
    c = make(KVCACHE, 0);
    c->opts.causal = 1;
    c->opts.window_right = 1;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "opts->window_right:", NULL);
    c = make(KVCACHE, 0);
    c->opts.mask_align = 7;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "opts->mask_align:", NULL);
    c = make(KVCACHE, 0);
    c->opts.trust_cu_seqlens = 2;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "opts->trust_cu_seqlens:", NULL);
    c = make(KVCACHE, 0);
    c->opts.dropout_p = NAN;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "opts->dropout_p:", NULL);
}

static void test_opts_tensors(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, 0);
    c->lse.shape[2] = SQ + 1;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "lse:", NULL);
    c = make(KVCACHE, F_VARLEN); /* varlen lse is (heads_q, total_q) */
    const int64_t lse_dense[3] = {B, HQ, SQ};
    c->lse = view(fx.out, FACL_DTYPE_F32, 3, lse_dense, OUT_LSE);
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "lse:", NULL);
    c = make(KVCACHE, 0);
    c->alibi.shape[0] = HQ - 1;
    c->opts.alibi_slopes = &c->alibi;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "opts->alibi_slopes:", NULL);
    c = make(KVCACHE, 0);
    const int64_t per_batch[2] = {B + 1, HQ};
    c->alibi = view(fx.in, FACL_DTYPE_F32, 2, per_batch, IN_ALIBI);
    c->opts.alibi_slopes = &c->alibi;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "opts->alibi_slopes:", "batch");
}

static void test_q_and_out(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, 0);
    c->q.ndim = 3;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "q:", "4 dimensions");
    c = make(KVCACHE, F_VARLEN);
    const int64_t q_dense[4] = {B, SQ, HQ, D};
    c->q = view(fx.in, FACL_DTYPE_F32, 4, q_dense, IN_Q); /* cu_seqlens_q wants 3-D */
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "q:", "3 dimensions");
    c = make(KVCACHE, 0);
    c->out.shape[1] = SQ - 1;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "out:", "shaped like q");
    c = make(KVCACHE, 0);
    c->out.dtype = FACL_DTYPE_F16;
    expect_refused(c, FACL_ERROR_INVALID_DTYPE, "out:", "q's dtype");
    c = make(KVCACHE, 0);
    c->q.shape[2] = 3; /* 3 query heads over 2 kv heads */
    c->out.shape[2] = 3;
    c->lse.shape[1] = 3;
    expect_refused(c, FACL_ERROR_INVALID_HEADS, "q:", NULL);
    c = make(KVCACHE, 0);
    c->q.shape[3] = 0;
    expect_refused(c, FACL_ERROR_INVALID_HEAD_DIM, "q:", NULL);
    c = make(KVCACHE, 0);
    c->q.offset = IN_FLOATS; /* past the buffer */
    expect_refused(c, FACL_ERROR_BUFFER_TOO_SMALL, "q:", NULL);
}

static void test_cache_tensors(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, 0);
    c->kc.ndim = 3;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "k_cache:", NULL);
    c = make(KVCACHE, 0);
    c->kc.dtype = FACL_DTYPE_F16;
    expect_refused(c, FACL_ERROR_INVALID_DTYPE, "k_cache:", "q's dtype");
    c = make(KVCACHE, 0);
    c->vc.dtype = FACL_DTYPE_BF16;
    expect_refused(c, FACL_ERROR_INVALID_DTYPE, "v_cache:", "q's dtype");
    c = make(KVCACHE, 0);
    c->vc.shape[1] = SC - 1;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "v_cache:", "shaped like k");
    c = make(KVCACHE, 0);
    c->kc.shape[3] = c->vc.shape[3] = D / 2;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "k_cache:", "head_dim");
    c = make(KVCACHE, 0);
    c->kc.stride[3] = 2;
    expect_refused(c, FACL_ERROR_INVALID_STRIDE, "k_cache:", NULL);
}

static void test_dense_batch_cache(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, 0);
    c->kc.shape[0] = c->vc.shape[0] = B - 1;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "k_cache:", "batch");
    /* with cache_batch_idx, fewer rows than sequences are fine */
    c = make(KVCACHE, F_BATCH_IDX);
    c->kc.shape[0] = c->vc.shape[0] = 1;
    c->h_batch_idx[0] = c->h_batch_idx[1] = 0;
    expect_accepted(c, "one cache row for two sequences");
}

static void test_block_table_shape(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_PAGED);
    c->bt.ndim = 1;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->block_table:", NULL);
    c = make(KVCACHE, F_PAGED);
    c->bt.dtype = FACL_DTYPE_F32;
    expect_refused(c, FACL_ERROR_INVALID_DTYPE, "cache->block_table:", NULL);
    c = make(KVCACHE, F_PAGED);
    c->bt.shape[0] = B + 1;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->block_table:", "batch");
    c = make(KVCACHE, F_PAGED);
    c->bt.shape[1] = 0;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->block_table:", "max_blocks");
    c = make(KVCACHE, F_PAGED);
    c->kc.shape[1] = c->vc.shape[1] = 0;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "k_cache:", "page_size");
}

static void test_batch_idx_with_block_table(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_PAGED | F_BATCH_IDX);
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->cache_batch_idx:", "block_table");
}

static void test_index_vectors(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, 0);
    c->seqlens.shape[0] = B + 1;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->cache_seqlens:", "batch");
    c = make(KVCACHE, 0);
    c->seqlens.dtype = FACL_DTYPE_F32;
    expect_refused(c, FACL_ERROR_INVALID_DTYPE, "cache->cache_seqlens:", NULL);
    c = make(KVCACHE, F_BATCH_IDX);
    c->batch_idx.ndim = 2;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->cache_batch_idx:", NULL);
    c = make(KVCACHE, F_LEFTPAD);
    c->leftpad.shape[0] = B - 1;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->cache_leftpad:", "batch");
    c = make(KVCACHE, F_LEFTPAD);
    c->leftpad.dtype = FACL_DTYPE_F16;
    expect_refused(c, FACL_ERROR_INVALID_DTYPE, "cache->cache_leftpad:", NULL);
}

static void test_cache_seqlens_value(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_HOST_SEQLENS);
    c->cache.cache_seqlens_value = -1;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->cache_seqlens_value:", NULL);
    c = make(KVCACHE, 0);
    c->cache.cache_seqlens_value = 2; /* and the tensor: which one? */
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->cache_seqlens_value:", "cache_seqlens");
}

static void test_cu_seqlens_q_arguments(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_VARLEN);
    c->cu_q.dtype = FACL_DTYPE_F32;
    expect_refused(c, FACL_ERROR_INVALID_DTYPE, "cache->cu_seqlens_q:", NULL);
    c = make(KVCACHE, F_VARLEN);
    c->cu_q.shape[0] = 0;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->cu_seqlens_q:", NULL);
    c = make(KVCACHE, F_VARLEN);
    c->cache.max_seqlen_q = -1;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->max_seqlen_q:", NULL);
    c = make(KVCACHE, 0);
    c->cache.max_seqlen_q = 3; /* without cu_seqlens_q it would be ignored */
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->max_seqlen_q:", "cu_seqlens_q");
    c = make(KVCACHE, F_VARLEN); /* batch + 1 = 3 entries: the index vectors want 2 */
    c->seqlens.shape[0] = 3;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->cache_seqlens:", "batch");
}

static void test_k_new_v_new_pairing(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_NEW);
    c->cache.v_new = NULL;
    expect_refused(c, FACL_ERROR_NULL_ARGUMENT, "cache->v_new:", "cache->k_new");
    c = make(KVCACHE, F_NEW);
    c->cache.k_new = NULL;
    expect_refused(c, FACL_ERROR_NULL_ARGUMENT, "cache->k_new:", "cache->v_new");
}

static void test_k_new_shapes(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_NEW);
    c->k_new.ndim = 3;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->k_new:", NULL);
    c = make(KVCACHE, F_NEW);
    c->k_new.shape[0] = c->v_new.shape[0] = B + 1;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->k_new:", "batch");
    c = make(KVCACHE, F_NEW);
    c->k_new.shape[2] = c->v_new.shape[2] = 1;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->k_new:", "heads_kv");
    c = make(KVCACHE, F_NEW);
    c->k_new.shape[3] = c->v_new.shape[3] = D - 1;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->k_new:", "head_dim");
    c = make(KVCACHE, F_NEW);
    c->v_new.shape[1] = SN + 1;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->v_new:", "shaped like cache->k_new");
    c = make(KVCACHE, F_NEW);
    c->k_new.dtype = FACL_DTYPE_F16;
    expect_refused(c, FACL_ERROR_INVALID_DTYPE, "cache->k_new:", "q's dtype");
    c = make(KVCACHE, F_NEW);
    c->v_new.dtype = FACL_DTYPE_I32;
    expect_refused(c, FACL_ERROR_INVALID_DTYPE, "cache->v_new:", NULL);
    c = make(KVCACHE, F_VARLEN | F_NEW); /* varlen q: k_new is (total_new, heads_kv, d) */
    const int64_t knew_dense[4] = {B, SN, HKV, D};
    c->k_new = view(fx.in, FACL_DTYPE_F32, 4, knew_dense, IN_KNEW);
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->k_new:", "3 dimensions");
}

static void test_cu_seqlens_k_new_arguments(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_VARLEN | F_NEW);
    c->cache.cu_seqlens_k_new = NULL;
    expect_refused(c, FACL_ERROR_NULL_ARGUMENT, "cache->cu_seqlens_k_new:", NULL);
    c = make(KVCACHE, F_VARLEN | F_NEW);
    c->cu_new.shape[0] = B;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->cu_seqlens_k_new:", "batch + 1");
    c = make(KVCACHE, F_VARLEN);
    c->cache.cu_seqlens_k_new = &c->cu_new; /* without k_new */
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->cu_seqlens_k_new:", "cache->k_new");
    c = make(KVCACHE, F_NEW);
    c->cache.cu_seqlens_k_new = &c->cu_new; /* without cu_seqlens_q */
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->cu_seqlens_k_new:", "cu_seqlens_q");
}

static void test_rotary_arguments(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_ROTARY);
    c->cache.rotary_sin = NULL;
    expect_refused(c, FACL_ERROR_NULL_ARGUMENT, "cache->rotary_sin:", "cache->rotary_cos");
    c = make(KVCACHE, F_ROTARY);
    c->cache.rotary_cos = NULL;
    expect_refused(c, FACL_ERROR_NULL_ARGUMENT, "cache->rotary_cos:", "cache->rotary_sin");
    c = make(KVCACHE, F_ROTARY);
    c->cos.dtype = FACL_DTYPE_F16;
    expect_refused(c, FACL_ERROR_INVALID_DTYPE, "cache->rotary_cos:", "q's dtype");
    c = make(KVCACHE, F_ROTARY);
    c->sin.ndim = 1;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->rotary_sin:", NULL);
    c = make(KVCACHE, F_ROTARY);
    c->sin.shape[0] = RO - 1;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->rotary_sin:", "rotary_cos");
    c = make(KVCACHE, F_ROTARY);
    c->cos.shape[1] = c->sin.shape[1] = 0;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->rotary_cos:", "rotary_dim");
    c = make(KVCACHE, F_ROTARY);
    c->cos.shape[1] = c->sin.shape[1] = D / 2 + 1; /* rotary_dim 10 > d 8 */
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->rotary_cos:", "exceeds head_dim");
    c = make(KVCACHE, F_ROTARY);
    c->cos.shape[1] = c->sin.shape[1] = D / 2; /* rotary_dim = d is fine */
    expect_accepted(c, "rotary_dim = head_dim");
}

static void test_rotary_interleaved(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_ROTARY);
    c->cache.rotary_interleaved = 2;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->rotary_interleaved:", NULL);
}

static void test_num_splits(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, 0);
    c->cache.num_splits = -1;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->num_splits:", NULL);
    c = make(KVCACHE, 0);
    c->cache.num_splits = 257;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->num_splits:", NULL);
}

/* cache->workspace: an fp32 1-D view, big enough for the call's splits (checked before
 * anything is compiled or enqueued). That an unsplit call ignores it, whatever its size,
 * test_kvcache checks (a 1-float workspace on its num_splits = 1 runs). */
static void test_workspace(void **state)
{
    (void)state;
    cl_mem small = make_buffer(64);
    static facl_tensor ws;
    const int64_t n16[1] = {16}, n4x4[2] = {4, 4};
    kcall *c = make(KVCACHE, 0);
    c->cache.num_splits = 2;
    ws = facl_tensor_contiguous(small, FACL_DTYPE_F32, 1, n16);
    c->cache.workspace = &ws;
    expect_refused(c, FACL_ERROR_BUFFER_TOO_SMALL, "cache->workspace:",
                   "facl_fwd_kvcache_workspace_size");
    c = make(KVCACHE, 0);
    c->cache.num_splits = 2;
    ws = facl_tensor_contiguous(small, FACL_DTYPE_F16, 1, n16);
    c->cache.workspace = &ws;
    expect_refused(c, FACL_ERROR_INVALID_DTYPE, "cache->workspace:", NULL);
    c = make(KVCACHE, 0);
    c->cache.num_splits = 2;
    ws = facl_tensor_contiguous(small, FACL_DTYPE_F32, 2, n4x4);
    c->cache.workspace = &ws;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cache->workspace:", NULL);
    clReleaseMemObject(small);

    /* the size query: every argument checked and named */
    uint64_t bytes = 0;
    assert_int_equal(facl_fwd_kvcache_workspace_size(fx.ctx, 16, 32, 128, 4, &bytes), FACL_SUCCESS);
    assert_int_equal(bytes, 4u * 4u * 16u * 32u * 129u);
    assert_int_equal(facl_fwd_kvcache_workspace_size(fx.ctx, 16, 32, 128, 0, &bytes), FACL_SUCCESS);
    assert_int_equal(bytes, 4u * 64u * 16u * 32u * 129u); /* room for the most auto chooses */
    const struct {
        const facl_context *ctx;
        int64_t rows, heads, d;
        int32_t splits;
        uint64_t *out;
        facl_status expected;
        const char *prefix;
    } bad[] = {
        {NULL, 1, 1, 64, 0, &bytes, FACL_ERROR_NULL_ARGUMENT, "ctx:"},
        {fx.ctx, 1, 1, 64, 0, NULL, FACL_ERROR_NULL_ARGUMENT, "bytes:"},
        {fx.ctx, -1, 1, 64, 0, &bytes, FACL_ERROR_INVALID_SHAPE, "rows_q:"},
        {fx.ctx, 1, 0, 64, 0, &bytes, FACL_ERROR_INVALID_SHAPE, "heads_q:"},
        {fx.ctx, 1, 1, 0, 0, &bytes, FACL_ERROR_INVALID_HEAD_DIM, "head_dim:"},
        {fx.ctx, 1, 1, FACL_MAX_HEAD_DIM + 1, 0, &bytes, FACL_ERROR_INVALID_HEAD_DIM, "head_dim:"},
        {fx.ctx, 1, 1, 64, -1, &bytes, FACL_ERROR_INVALID_VALUE, "num_splits:"},
        {fx.ctx, 1, 1, 64, 257, &bytes, FACL_ERROR_INVALID_VALUE, "num_splits:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        const facl_status st = facl_fwd_kvcache_workspace_size(bad[i].ctx, bad[i].rows, bad[i].heads,
                                                               bad[i].d, bad[i].splits, bad[i].out);
        if (st != bad[i].expected)
            fail_msg("workspace size case %zu: %s (%s)", i, facl_status_string(st), facl_last_error());
        expect_message(bad[i].prefix, NULL);
    }
}

/* ------------------------------------------------------------------ read back */

static void test_cu_seqlens_q_read_back(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_VARLEN);
    c->h_cu_q[0] = 1;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->cu_seqlens_q[0]", NULL);
    c = make(KVCACHE, F_VARLEN);
    c->h_cu_q[2] = 1; /* {0, 2, 1} */
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->cu_seqlens_q:", "decreases");
    c = make(KVCACHE, F_VARLEN);
    c->h_cu_q[2] = 6; /* lengths 2, 4 > max_seqlen_q 3 */
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->cu_seqlens_q:", "max_seqlen_q");
    c = make(KVCACHE, F_VARLEN);
    c->h_cu_q[2] = 6; /* beyond q's 5 rows */
    c->cache.max_seqlen_q = 4;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->cu_seqlens_q:", "rows");
}

static void test_cu_seqlens_k_new_read_back(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_VARLEN | F_NEW);
    c->h_cu_new[0] = -1;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->cu_seqlens_k_new[0]", NULL);
    c = make(KVCACHE, F_VARLEN | F_NEW);
    c->h_cu_new[2] = 0;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->cu_seqlens_k_new:", "decreases");
    c = make(KVCACHE, F_VARLEN | F_NEW);
    c->h_cu_new[2] = 4; /* k_new has 3 rows */
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->cu_seqlens_k_new:", "rows");
}

static void test_cache_seqlens_negative(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, 0);
    c->h_seqlens[1] = -1;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->cache_seqlens:", "[1]");
}

static void test_lengths_beyond_the_cache(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, 0); /* no k_new: 9 > capacity 8 */
    c->h_seqlens[1] = SC + 1;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->cache_seqlens:", "beyond the cache");
    c = make(KVCACHE, F_NEW); /* 7 + 2 new > 8 */
    c->h_seqlens[1] = SC - 1;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->cache_seqlens:", "sequence 1");
    c = make(KVCACHE, F_NEW); /* 6 + 2 = 8 fills it exactly */
    c->h_seqlens[1] = SC - SN;
    expect_accepted(c, "a dense cache filled exactly");
    c = make(KVCACHE, F_PAGED | F_NEW); /* paged capacity 3 x 4 = 12: 11 + 2 > 12 */
    c->h_seqlens[0] = MB * PS - 1;
    c->h_bt[0][2] = 4;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->cache_seqlens:", "sequence 0");
    c = make(KVCACHE, F_VARLEN | F_NEW); /* seq 1: 5 + 2 + 2 new = 9 > 8 */
    c->h_seqlens[1] = 7;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->cache_seqlens:", "beyond the cache");
}

/* The host value is checked even when trusted: nothing else could bound it. */
static void test_host_value_beyond_the_cache(void **state)
{
    (void)state;
    for (int trusted = 0; trusted < 2; ++trusted) {
        kcall *c = make(KVCACHE, F_HOST_SEQLENS | F_NEW);
        c->opts.trust_cu_seqlens = trusted;
        c->cache.cache_seqlens_value = SC - 1; /* + 2 new > 8 */
        expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->cache_seqlens_value:",
                       "beyond the cache");
        c = make(KVCACHE, F_HOST_SEQLENS | F_VARLEN | F_PAGED);
        c->opts.trust_cu_seqlens = trusted;
        c->cache.cache_seqlens_value = MB * PS + 1;
        expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->cache_seqlens_value:",
                       "beyond the cache");
    }
}

static void test_leftpad_range(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_LEFTPAD);
    c->h_leftpad[0] = -1;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->cache_leftpad:", "[0]");
    c = make(KVCACHE, F_LEFTPAD | F_NEW); /* seq 1 ends at 5 + 2 = 7 */
    c->h_leftpad[1] = 8;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->cache_leftpad:", "[1]");
    c = make(KVCACHE, F_LEFTPAD | F_NEW);
    c->h_leftpad[1] = 7; /* = the end: the sequence sees no key, which is valid */
    expect_accepted(c, "leftpad at the end");
}

static void test_batch_idx_range(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_BATCH_IDX);
    c->h_batch_idx[1] = -1;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->cache_batch_idx:", "[1]");
    c = make(KVCACHE, F_BATCH_IDX);
    c->h_batch_idx[0] = BC;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->cache_batch_idx:", "[0]");
}

static void test_batch_idx_shared_by_appends(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_NEW | F_BATCH_IDX);
    c->h_batch_idx[0] = c->h_batch_idx[1] = 1;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->cache_batch_idx:", "append");
    c = make(KVCACHE, F_VARLEN | F_NEW | F_BATCH_IDX);
    c->h_batch_idx[0] = c->h_batch_idx[1] = 2;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->cache_batch_idx:", "sequences 0 and 1");
}

static void test_block_table_entries(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_PAGED); /* seq 1 reads [0, 5): pages 0 and 1 */
    c->h_bt[1][1] = -1;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->block_table:", "[1][1]");
    c = make(KVCACHE, F_PAGED);
    c->h_bt[0][0] = NB;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->block_table:", "[0][0]");
    c = make(KVCACHE, F_PAGED | F_NEW); /* seq 1 appends at 5, 6 (page 1); seq 0 at 3, 4 */
    c->h_bt[0][1] = NB + 1;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->block_table:", "[0][1]");
    /* leftpad past cache_seqlens: the append still writes from cache_seqlens on */
    c = make(KVCACHE, F_PAGED | F_NEW | F_LEFTPAD);
    c->h_seqlens[0] = 3;
    c->h_leftpad[0] = 5; /* appends at 3, 4 (page 0); reads [5, 5) */
    c->h_bt[0][0] = -1;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->block_table:", "[0][0]");
}

static void test_block_table_overlapping_appends(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_PAGED | F_NEW); /* seq 1 appends to its page 1 rows 1, 2 */
    c->h_seqlens[0] = 5; /* seq 0 too, and its page 1 is seq 1's */
    c->h_bt[0][1] = c->h_bt[1][1];
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->block_table:", "append");
    c = make(KVCACHE, F_PAGED | F_NEW); /* seq 0: 3 + 2 new cross pages 0 -> 1 */
    c->h_seqlens[0] = 3;
    c->h_bt[0][0] = c->h_bt[0][1] = 4; /* position 3 -> page 4 row 3; 4 -> page 4 row 0 */
    expect_accepted(c, "one page twice, distinct rows");
    c = make(KVCACHE, F_VARLEN | F_PAGED | F_NEW);
    c->h_seqlens[0] = 4; /* seq 0 appends at 4 (page 1 row 0) */
    c->h_seqlens[1] = 4; /* seq 1 at 4, 5 (its page 1 row 0, 1) */
    c->h_bt[1][1] = c->h_bt[0][1];
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "cache->block_table:", "sequences 0 and 1");
}

static void test_rotary_positions(void **state)
{
    (void)state;
    kcall *c = make(KVCACHE, F_ROTARY | F_NEW); /* seq 1: keys at 5, 6 */
    c->cos.shape[0] = c->sin.shape[0] = 6;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->rotary_cos:", "sequence 1");
    c = make(KVCACHE, F_ROTARY | F_NEW);
    c->cos.shape[0] = c->sin.shape[0] = 7;
    expect_accepted(c, "seqlen_ro just enough for the new keys");
    /* Queries: without causal or a window all sit at cache_seqlens (5 for seq 1) ... */
    c = make(KVCACHE, F_ROTARY);
    c->cos.shape[0] = c->sin.shape[0] = 6;
    expect_accepted(c, "queries at cache_seqlens");
    /* ... with causal they sit at 5, 6, 7 */
    c = make(KVCACHE, F_ROTARY);
    c->cos.shape[0] = c->sin.shape[0] = 6;
    c->opts.causal = 1;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->rotary_cos:", "query");
    c = make(KVCACHE, F_ROTARY);
    c->cos.shape[0] = c->sin.shape[0] = 6;
    c->opts.window_left = 1;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->rotary_cos:", "query");
    /* a window of at least the capacity is no window */
    c = make(KVCACHE, F_ROTARY);
    c->cos.shape[0] = c->sin.shape[0] = 6;
    c->opts.window_left = SC;
    expect_accepted(c, "a window >= capacity normalised away");
    /* varlen q: seq 1 has 3 rows at 5, 6, 7 when causal */
    c = make(KVCACHE, F_VARLEN | F_ROTARY);
    c->cos.shape[0] = c->sin.shape[0] = 7;
    c->opts.causal = 1;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->rotary_cos:", "sequence 1");
    /* host value: checked even when trusted */
    c = make(KVCACHE, F_HOST_SEQLENS | F_ROTARY | F_NEW);
    c->opts.trust_cu_seqlens = 1;
    c->cos.shape[0] = c->sin.shape[0] = 4; /* new keys at 3, 4 */
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->rotary_cos:", "new key");
    c = make(KVCACHE, F_HOST_SEQLENS | F_ROTARY);
    c->opts.trust_cu_seqlens = 1;
    c->opts.causal = 1;
    c->cos.shape[0] = c->sin.shape[0] = 5; /* queries at 3, 4, 5 */
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cache->rotary_cos:", "query");
}

/* ------------------------------------------------------------------ the forward calls */

static void test_dense_calls_refuse_block_table(void **state)
{
    (void)state;
    const enum family dense[3] = {DENSE_FWD, DENSE_QKVPACKED, DENSE_KVPACKED};
    for (int i = 0; i < 3; ++i) {
        kcall *c = make(dense[i], 0);
        c->opts.block_table = &c->bt;
        expect_refused(c, FACL_ERROR_INVALID_VALUE, "opts->block_table:", "facl_fwd_kvcache");
    }
    kcall *c = make(QKVPACKED_VARLEN, 0);
    c->opts.block_table = &c->bt;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "opts->block_table:", "qkv-packed");
}

static void test_prepare_refuses_block_table(void **state)
{
    (void)state;
    kcall *c = make(VARLEN_PAGED, 0);
    facl_prepare_desc d = FACL_PREPARE_DESC_INIT;
    d.dtype = FACL_DTYPE_F32;
    d.head_dim = D;
    d.varlen = 1;
    d.opts = &c->opts;
    assert_int_equal(facl_prepare_fwd(fx.ctx, &d, 1), FACL_ERROR_INVALID_VALUE);
    expect_message("descs[0].opts->block_table:", NULL);
}

static void test_varlen_paged_pass_validation(void **state)
{
    (void)state;
    kcall *c = make(VARLEN_PAGED, 0);
    expect_accepted(c, "varlen, paged");
    c = make(VARLEN_PAGED, 0);
    c->opts.seqused_k = &c->used;
    c->opts.causal = 1;
    c->opts.alibi_slopes = &c->alibi;
    expect_accepted(c, "varlen, paged, seqused_k, causal, alibi");
    c = make(VARLEN_PAGED, 0);
    c->lse_arg = NULL;
    expect_accepted(c, "varlen, paged, no lse");
}

static void test_varlen_paged_refusals(void **state)
{
    (void)state;
    kcall *c = make(VARLEN_PAGED, 0);
    c->opts.dropout_p = 0.25f;
    expect_refused(c, FACL_ERROR_UNSUPPORTED, "opts->dropout_p:", NULL);
    c = make(VARLEN_PAGED, 0);
    const int64_t probs[4] = {B, HQ, MAXQ, MAXK};
    c->probs = view(fx.out, FACL_DTYPE_F32, 4, probs, OUT_PROBS);
    c->opts.attn_probs = &c->probs;
    expect_refused(c, FACL_ERROR_UNSUPPORTED, "opts->attn_probs:", NULL);
    c = make(VARLEN_PAGED, 0);
    const int64_t k_var[3] = {7, HKV, D};
    c->kc = view(fx.kc, FACL_DTYPE_F32, 3, k_var, 0); /* paged k is 4-D */
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "k:", "4 dimensions");
    c = make(VARLEN_PAGED, 0);
    c->kc.shape[1] = c->vc.shape[1] = 0;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "k:", "page_size");
    c = make(VARLEN_PAGED, 0);
    c->bt.shape[0] = B + 1;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "opts->block_table:", "batch");
    c = make(VARLEN_PAGED, 0);
    c->bt.dtype = FACL_DTYPE_F32;
    expect_refused(c, FACL_ERROR_INVALID_DTYPE, "opts->block_table:", NULL);
    c = make(VARLEN_PAGED, 0);
    c->bt.shape[1] = 0;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "opts->block_table:", "max_blocks");
    c = make(VARLEN_PAGED, 0);
    c->cu_k.shape[0] = B;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "cu_seqlens_k:", NULL);
    c = make(KVPACKED_PAGED, 0);
    c->kv.shape[2] = 3;
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "kv:", NULL);
    c = make(KVPACKED_PAGED, 0);
    c->kv.ndim = 4; /* the unpaged packing (total_k, 2, heads_kv, d) */
    expect_refused(c, FACL_ERROR_INVALID_SHAPE, "kv:", "5 dimensions");
}

static void test_varlen_paged_read_back(void **state)
{
    (void)state;
    kcall *c = make(VARLEN_PAGED, 0);
    c->h_cu_q[1] = 6;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cu_seqlens_q:", NULL);
    c = make(VARLEN_PAGED, 0);
    c->h_cu_k[0] = 2;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cu_seqlens_k[0]", NULL);
    c = make(VARLEN_PAGED, 0);
    c->h_cu_k[2] = 10; /* length 7 > max_seqlen_k 6 */
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cu_seqlens_k:", "max_seqlen_k");
    c = make(VARLEN_PAGED, 0);
    c->h_cu_k[2] = 3 + MB * PS + 1; /* 13 keys, beyond the table's 12 positions */
    c->max_k = 20;
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "cu_seqlens_k:", "beyond the block table");
    c = make(VARLEN_PAGED, 0);
    c->h_bt[1][1] = NB; /* seq 1: 6 keys on pages 0, 1 */
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "opts->block_table:", "[1][1]");
    c = make(KVPACKED_PAGED, 0);
    c->h_bt[0][0] = -2;
    expect_refused(c, FACL_ERROR_INVALID_VALUE, "opts->block_table:", "[0][0]");
    c = make(VARLEN_PAGED, 0);
    c->opts.seqused_k = &c->used;
    c->h_used[0] = 4; /* seq 0 has 3 keys */
    expect_refused(c, FACL_ERROR_INVALID_SEQLENS, "opts->seqused_k:", "[0]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_calls_pass_validation),
        cmocka_unit_test(test_public_calls_run),
        cmocka_unit_test(test_problem_fields),
        cmocka_unit_test(test_empty_calls_pass_validation),
        cmocka_unit_test(test_unused_table_entries_pass_validation),
        cmocka_unit_test(test_trusted_skips_read_back),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_foreign_queue),
        cmocka_unit_test(test_cache_struct_size),
        cmocka_unit_test(test_workspace),
        cmocka_unit_test(test_opts_block_table_refused),
        cmocka_unit_test(test_opts_dropout_probs_seqused_unsupported),
        cmocka_unit_test(test_opts_scalars),
        cmocka_unit_test(test_opts_tensors),
        cmocka_unit_test(test_q_and_out),
        cmocka_unit_test(test_cache_tensors),
        cmocka_unit_test(test_dense_batch_cache),
        cmocka_unit_test(test_block_table_shape),
        cmocka_unit_test(test_batch_idx_with_block_table),
        cmocka_unit_test(test_index_vectors),
        cmocka_unit_test(test_cache_seqlens_value),
        cmocka_unit_test(test_cu_seqlens_q_arguments),
        cmocka_unit_test(test_k_new_v_new_pairing),
        cmocka_unit_test(test_k_new_shapes),
        cmocka_unit_test(test_cu_seqlens_k_new_arguments),
        cmocka_unit_test(test_rotary_arguments),
        cmocka_unit_test(test_rotary_interleaved),
        cmocka_unit_test(test_num_splits),
        cmocka_unit_test(test_cu_seqlens_q_read_back),
        cmocka_unit_test(test_cu_seqlens_k_new_read_back),
        cmocka_unit_test(test_cache_seqlens_negative),
        cmocka_unit_test(test_lengths_beyond_the_cache),
        cmocka_unit_test(test_host_value_beyond_the_cache),
        cmocka_unit_test(test_leftpad_range),
        cmocka_unit_test(test_batch_idx_range),
        cmocka_unit_test(test_batch_idx_shared_by_appends),
        cmocka_unit_test(test_block_table_entries),
        cmocka_unit_test(test_block_table_overlapping_appends),
        cmocka_unit_test(test_rotary_positions),
        cmocka_unit_test(test_dense_calls_refuse_block_table),
        cmocka_unit_test(test_prepare_refuses_block_table),
        cmocka_unit_test(test_varlen_paged_pass_validation),
        cmocka_unit_test(test_varlen_paged_refusals),
        cmocka_unit_test(test_varlen_paged_read_back),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
