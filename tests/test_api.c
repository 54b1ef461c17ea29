/* The public API around the forward calls: wrapped contexts and caller queues, wait lists
 * and events, context configuration and the log callback, the probe of fast paths,
 * growable structs (struct_size) and facl_prepare_fwd. Every forward result is checked
 * against the testkit's float64 reference, on outputs poisoned beforehand.
 * This file: shared helpers and main; the tests are in test_api_*.c. */
#define _XOPEN_SOURCE 700
#include "test_api.h"

#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compare.h"
#include "numeric.h"
#include "reference.h"

char g_env_cache_dir[512];
char g_tmp_dir[512];

static cl_mem make_buffer(cl_context c, size_t bytes, const void *data)
{
    cl_int err;
    cl_mem m = clCreateBuffer(c, CL_MEM_READ_WRITE | (data ? CL_MEM_COPY_HOST_PTR : 0), bytes,
                              (void *)data, &err);
    if (err != CL_SUCCESS) fail_msg("clCreateBuffer: %d", (int)err);
    return m;
}

void tiny_init(tiny *t, cl_context cl_ctx, uint64_t seed)
{
    memset(t, 0, sizeof *t);
    t->cl_ctx = cl_ctx;
    t->nq = (size_t)T_B * T_SQ * T_HQ * T_D;
    t->nk = (size_t)T_B * T_SK * T_HKV * T_D;
    t->nlse = (size_t)T_B * T_HQ * T_SQ;
    t->q = malloc(t->nq * sizeof(float));
    t->k = malloc(t->nk * sizeof(float));
    t->v = malloc(t->nk * sizeof(float));
    assert_non_null(t->q);
    assert_non_null(t->k);
    assert_non_null(t->v);
    testkit_rng rng;
    testkit_rng_seed(&rng, seed);
    for (size_t i = 0; i < t->nq; ++i) t->q[i] = (float)testkit_rng_normal(&rng);
    for (size_t i = 0; i < t->nk; ++i) t->k[i] = (float)testkit_rng_normal(&rng);
    for (size_t i = 0; i < t->nk; ++i) t->v[i] = (float)testkit_rng_normal(&rng);
    t->bq = make_buffer(cl_ctx, t->nq * sizeof(float), t->q);
    t->bk = make_buffer(cl_ctx, t->nk * sizeof(float), t->k);
    t->bv = make_buffer(cl_ctx, t->nk * sizeof(float), t->v);
    t->bout = make_buffer(cl_ctx, t->nq * sizeof(float), NULL);
    t->blse = make_buffer(cl_ctx, t->nlse * sizeof(float), NULL);
    const int64_t qs[4] = {T_B, T_SQ, T_HQ, T_D}, ks[4] = {T_B, T_SK, T_HKV, T_D},
                  ls[3] = {T_B, T_HQ, T_SQ};
    t->tq = facl_tensor_contiguous(t->bq, FACL_DTYPE_F32, 4, qs);
    t->tk = facl_tensor_contiguous(t->bk, FACL_DTYPE_F32, 4, ks);
    t->tv = facl_tensor_contiguous(t->bv, FACL_DTYPE_F32, 4, ks);
    t->tout = facl_tensor_contiguous(t->bout, FACL_DTYPE_F32, 4, qs);
    t->tlse = facl_tensor_contiguous(t->blse, FACL_DTYPE_F32, 3, ls);
}

void tiny_free(tiny *t)
{
    cl_mem all[5] = {t->bq, t->bk, t->bv, t->bout, t->blse};
    for (int i = 0; i < 5; ++i)
        if (all[i]) clReleaseMemObject(all[i]);
    free(t->q);
    free(t->k);
    free(t->v);
    memset(t, 0, sizeof *t);
}

void tiny_poison(tiny *t, cl_command_queue queue)
{
    const size_t bytes = (t->nq > t->nlse ? t->nq : t->nlse) * sizeof(float);
    unsigned char *p = malloc(bytes);
    assert_non_null(p);
    memset(p, 0xFF, bytes);
    assert_int_equal(clEnqueueWriteBuffer(queue, t->bout, CL_TRUE, 0, t->nq * sizeof(float), p, 0,
                                          NULL, NULL),
                     CL_SUCCESS);
    assert_int_equal(clEnqueueWriteBuffer(queue, t->blse, CL_TRUE, 0, t->nlse * sizeof(float), p,
                                          0, NULL, NULL),
                     CL_SUCCESS);
    free(p);
}

int tiny_still_poisoned(tiny *t, cl_command_queue queue)
{
    const size_t n = t->nq + t->nlse;
    unsigned char *p = malloc(n * sizeof(float));
    assert_non_null(p);
    assert_int_equal(clEnqueueReadBuffer(queue, t->bout, CL_TRUE, 0, t->nq * sizeof(float), p, 0,
                                         NULL, NULL),
                     CL_SUCCESS);
    assert_int_equal(clEnqueueReadBuffer(queue, t->blse, CL_TRUE, 0, t->nlse * sizeof(float),
                                         p + t->nq * sizeof(float), 0, NULL, NULL),
                     CL_SUCCESS);
    int all = 1;
    for (size_t i = 0; i < n * sizeof(float); ++i) all &= p[i] == 0xFF;
    free(p);
    return all;
}

void tiny_check_at(tiny *t, cl_command_queue queue, const tiny_expect *e, const char *file,
                   int line)
{
    float *out = malloc(t->nq * sizeof(float)), *lse = malloc(t->nlse * sizeof(float));
    float *lse_ref_order = malloc(t->nlse * sizeof(float));
    double *ref = malloc(t->nq * sizeof(double)), *ref_lse = malloc(t->nlse * sizeof(double));
    assert_true(out && lse && lse_ref_order && ref && ref_lse);
    assert_int_equal(clEnqueueReadBuffer(queue, t->bout, CL_TRUE, 0, t->nq * sizeof(float), out, 0,
                                         NULL, NULL),
                     CL_SUCCESS);
    assert_int_equal(clEnqueueReadBuffer(queue, t->blse, CL_TRUE, 0, t->nlse * sizeof(float), lse,
                                         0, NULL, NULL),
                     CL_SUCCESS);
    int32_t cu_q[T_B + 1], cu_k[T_B + 1];
    for (int b = 0; b <= T_B; ++b) {
        cu_q[b] = b * T_SQ;
        cu_k[b] = b * T_SK;
    }
    ref_problem p;
    memset(&p, 0, sizeof p);
    p.batch = T_B;
    p.heads_q = T_HQ;
    p.heads_kv = T_HKV;
    p.head_dim = T_D;
    p.cu_q = cu_q;
    p.cu_k = cu_k;
    p.scale = e->scale > 0.0f ? e->scale : (float)(1.0 / sqrt((double)T_D));
    p.window_left = e->window_left;
    p.window_right = e->causal ? 0 : e->window_right;
    p.align_top_left = e->top_left;
    p.softcap = e->softcap;
    ref_attention_f64(&p, t->q, t->k, t->v, ref, ref_lse);
    /* facl's dense lse is (batch, heads_q, seqlen_q); the reference's (heads_q, total_q). */
    for (int b = 0; b < T_B; ++b)
        for (int h = 0; h < T_HQ; ++h)
            for (int i = 0; i < T_SQ; ++i) {
                const size_t r = (size_t)h * T_B * T_SQ + (size_t)b * T_SQ + i;
                lse_ref_order[r] = e->varlen_lse ? lse[r] : lse[((size_t)b * T_HQ + h) * T_SQ + i];
            }
    cmp_result r_out = cmp_check(FACL_DTYPE_F32, out, ref, NULL, t->nq);
    cmp_result r_lse = cmp_check(FACL_DTYPE_F32, lse_ref_order, ref_lse, NULL, t->nlse);
    char a[160], b[160];
    cmp_format(&r_out, a, sizeof a);
    cmp_format(&r_lse, b, sizeof b);
    free(out);
    free(lse);
    free(lse_ref_order);
    free(ref);
    free(ref_lse);
    if (!r_out.pass || !r_lse.pass)
        fail_msg("%s:%d: result differs from the reference: out %s; lse %s", file, line, a, b);
}

facl_context *api_context(void)
{
    facl_context *ctx = NULL;
    if (facl_context_create(NULL, &ctx) != FACL_SUCCESS)
        fail_msg("facl_context_create: %s", facl_last_error());
    return ctx;
}

facl_device_info api_info(const facl_context *ctx)
{
    facl_device_info info = FACL_DEVICE_INFO_INIT;
    if (facl_context_device_info(ctx, &info) != FACL_SUCCESS)
        fail_msg("facl_context_device_info: %s", facl_last_error());
    return info;
}

facl_cache_stats api_stats(const facl_context *ctx)
{
    facl_cache_stats s = FACL_CACHE_STATS_INIT;
    if (facl_context_cache_stats(ctx, &s) != FACL_SUCCESS)
        fail_msg("facl_context_cache_stats: %s", facl_last_error());
    return s;
}

facl_status tiny_run(facl_context *ctx, cl_command_queue queue, tiny *t, cl_uint nwait,
                     const cl_event *wait, cl_event *ev)
{
    return facl_fwd(ctx, queue, &t->tq, &t->tk, &t->tv, &t->tout, &t->tlse, NULL, nwait, wait, ev);
}

facl_status tiny_run_opts(facl_context *ctx, tiny *t, const void *opts)
{
    return facl_fwd(ctx, NULL, &t->tq, &t->tk, &t->tv, &t->tout, &t->tlse,
                    (const facl_attn_options *)opts, 0, NULL, NULL);
}

void tiny_run_and_check(facl_context *ctx, uint64_t seed)
{
    tiny t;
    tiny_init(&t, facl_context_cl_context(ctx), seed);
    tiny_poison(&t, facl_context_queue(ctx));
    if (tiny_run(ctx, NULL, &t, 0, NULL, NULL) != FACL_SUCCESS)
        fail_msg("facl_fwd: %s", facl_last_error());
    const tiny_expect e = TINY_EXPECT_DEFAULT;
    tiny_check(&t, facl_context_queue(ctx), &e);
    tiny_free(&t);
}

void record_log(void *user, int32_t kind, const char *message)
{
    log_record *r = user;
    pthread_mutex_lock(&r->lock);
    if (kind >= 1 && kind <= 7) r->count[kind]++;
    else r->count[0]++;
    if (!message || !*message) r->empty_messages++;
    if (kind == FACL_LOG_KERNEL_PATH && message)
        snprintf(r->path_message, sizeof r->path_message, "%s", message);
    pthread_mutex_unlock(&r->lock);
}

void log_record_init(log_record *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path); /* best effort */
    return 0;
}

facl_prepare_desc tiny_desc(const facl_attn_options *opts)
{
    facl_prepare_desc d = FACL_PREPARE_DESC_INIT;
    d.dtype = FACL_DTYPE_F32;
    d.head_dim = T_D;
    d.opts = opts;
    return d;
}

int main(void)
{
    /* Two PoCL CPU devices, so that one cl_context can hold two devices (PoCL 3.1 reports
     * a context of sub-devices as a context of their root device alone). Other platforms
     * ignore it; a value the caller set is kept. */
    setenv("POCL_DEVICES", "pthread pthread", 0);
    /* The tests set these themselves where they matter. */
    unsetenv("FACL_KERNEL_PATH");
    unsetenv("FACL_CACHE");
    const char *dir = getenv("FACL_CACHE_DIR");
    snprintf(g_env_cache_dir, sizeof g_env_cache_dir, "%s", dir ? dir : "");
    const char *tmp = getenv("FACL_TEST_TMPDIR");
    snprintf(g_tmp_dir, sizeof g_tmp_dir, "%s/api-tmp-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    int failed = run_context_tests();
    failed += run_config_tests();
    failed += run_struct_tests();
    failed += run_prepare_tests();
    failed += run_trust_tests();
    nftw(g_tmp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed;
}
