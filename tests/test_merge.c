/* facl_merge: partial attention results merged through their lse.
 * - against the unsplit result: facl_fwd over three slices of the keys (one of them
 *   empty) merged equals facl_fwd over all keys (fp32, rule of docs/CONTRACT.md);
 * - against a float64 merge of random partials, in fp16, bf16 and fp32 outputs, dense
 *   and varlen, with empty parts (lse +inf and -inf) and rows empty in every part;
 * - argument errors with a message naming the argument, and nothing written. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "compare.h"
#include "facl.h"
#include "numeric.h"

static facl_context *g_ctx;

static cl_mem upload(const void *host, size_t bytes)
{
    cl_int err;
    cl_mem m = clCreateBuffer(facl_context_cl_context(g_ctx), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                              bytes, (void *)host, &err);
    assert_int_equal(err, CL_SUCCESS);
    return m;
}

static cl_mem poisoned(size_t bytes)
{
    unsigned char *host = malloc(bytes);
    assert_non_null(host);
    memset(host, 0xFF, bytes);
    cl_mem m = upload(host, bytes);
    free(host);
    return m;
}

static void download(cl_mem m, void *host, size_t bytes)
{
    assert_int_equal(clEnqueueReadBuffer(facl_context_queue(g_ctx), m, CL_TRUE, 0, bytes, host, 0,
                                         NULL, NULL),
                     CL_SUCCESS);
}

/* ------------------------------------------------------ against the unsplit forward */

enum { B = 2, SQ = 7, HQ = 4, HKV = 2, D = 40, SK = 50 };

static void test_split_keys_equal_unsplit(void **state)
{
    (void)state;
    static const int cuts[4] = {0, 13, 13, 50}; /* the middle part has no keys */
    enum { PARTS = 3 };
    const size_t nq = (size_t)B * SQ * HQ * D, nk = (size_t)B * SK * HKV * D;
    float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nk * 4);
    assert_true(q && k && v);
    testkit_rng rng;
    testkit_rng_seed(&rng, 0x5117u);
    for (size_t i = 0; i < nq; ++i) q[i] = (float)testkit_rng_normal(&rng);
    for (size_t i = 0; i < nk; ++i) k[i] = (float)testkit_rng_normal(&rng);
    for (size_t i = 0; i < nk; ++i) v[i] = (float)testkit_rng_normal(&rng);
    cl_mem bq = upload(q, nq * 4), bk = upload(k, nk * 4), bv = upload(v, nk * 4);
    cl_mem full = poisoned(nq * 4), full_lse = poisoned((size_t)B * HQ * SQ * 4);
    cl_mem parts = poisoned(PARTS * nq * 4), lse_parts = poisoned((size_t)PARTS * B * HQ * SQ * 4);
    cl_mem merged = poisoned(nq * 4), merged_lse = poisoned((size_t)B * HQ * SQ * 4);
    const int64_t qs[4] = {B, SQ, HQ, D}, ks[4] = {B, SK, HKV, D}, ls[3] = {B, HQ, SQ};
    const int64_t ps[5] = {PARTS, B, SQ, HQ, D}, pls[4] = {PARTS, B, HQ, SQ};
    facl_tensor tq = facl_tensor_contiguous(bq, FACL_DTYPE_F32, 4, qs);
    facl_tensor tk = facl_tensor_contiguous(bk, FACL_DTYPE_F32, 4, ks);
    facl_tensor tv = facl_tensor_contiguous(bv, FACL_DTYPE_F32, 4, ks);
    facl_tensor tfull = facl_tensor_contiguous(full, FACL_DTYPE_F32, 4, qs);
    facl_tensor tfull_lse = facl_tensor_contiguous(full_lse, FACL_DTYPE_F32, 3, ls);
    facl_tensor tparts = facl_tensor_contiguous(parts, FACL_DTYPE_F32, 5, ps);
    facl_tensor tlse_parts = facl_tensor_contiguous(lse_parts, FACL_DTYPE_F32, 4, pls);
    facl_tensor tmerged = facl_tensor_contiguous(merged, FACL_DTYPE_F32, 4, qs);
    facl_tensor tmerged_lse = facl_tensor_contiguous(merged_lse, FACL_DTYPE_F32, 3, ls);
    facl_attn_options opts = FACL_ATTN_OPTIONS_INIT;
    opts.softcap = 8.0f; /* per-key score changes split like any other */
    assert_int_equal(facl_fwd(g_ctx, NULL, &tq, &tk, &tv, &tfull, &tfull_lse, &opts, 0, NULL, NULL),
                     FACL_SUCCESS);
    for (int s = 0; s < PARTS; ++s) {
        facl_tensor ks_view = tk, vs_view = tv, out_s = tq, lse_s = tfull_lse;
        ks_view.shape[1] = vs_view.shape[1] = cuts[s + 1] - cuts[s];
        ks_view.offset += (uint64_t)(cuts[s] * tk.stride[1]);
        vs_view.offset += (uint64_t)(cuts[s] * tv.stride[1]);
        out_s.buffer = parts;
        out_s.offset = (uint64_t)(s * tparts.stride[0]);
        lse_s.buffer = lse_parts;
        lse_s.offset = (uint64_t)(s * tlse_parts.stride[0]);
        if (facl_fwd(g_ctx, NULL, &tq, &ks_view, &vs_view, &out_s, &lse_s, &opts, 0, NULL, NULL) !=
            FACL_SUCCESS)
            fail_msg("part %d: %s", s, facl_last_error());
    }
    if (facl_merge(g_ctx, NULL, &tparts, &tlse_parts, &tmerged, &tmerged_lse, 0, NULL, NULL) !=
        FACL_SUCCESS)
        fail_msg("facl_merge: %s", facl_last_error());
    float *want = malloc(nq * 4), *got = malloc(nq * 4);
    float want_lse[B * HQ * SQ], got_lse[B * HQ * SQ];
    assert_true(want && got);
    download(full, want, nq * 4);
    download(merged, got, nq * 4);
    download(full_lse, want_lse, sizeof want_lse);
    download(merged_lse, got_lse, sizeof got_lse);
    double *ref = malloc(nq * sizeof *ref);
    assert_non_null(ref);
    for (size_t i = 0; i < nq; ++i) ref[i] = want[i];
    const cmp_result r = cmp_check(FACL_DTYPE_F32, got, ref, NULL, nq);
    if (!r.pass) fail_msg("merged out vs unsplit: rel_l2 %g (max_err %g)", r.rel_l2, r.max_err);
    for (int i = 0; i < B * HQ * SQ; ++i)
        if (!(fabsf(got_lse[i] - want_lse[i]) <= 1e-5f * (1.0f + fabsf(want_lse[i]))))
            fail_msg("lse[%d]: merged %g, unsplit %g", i, got_lse[i], want_lse[i]);
    cl_mem all[9] = {bq, bk, bv, full, full_lse, parts, lse_parts, merged, merged_lse};
    for (int i = 0; i < 9; ++i) clReleaseMemObject(all[i]);
    free(q), free(k), free(v), free(want), free(got), free(ref);
}

/* -------------------------------------------------- against a float64 merge */

typedef struct merge_case {
    facl_dtype part_dtype, out_dtype;
    int varlen, parts, batch, rows, heads, d;
    uint64_t seed;
} merge_case;

static void run_random_case(const merge_case *c)
{
    const int rank = c->varlen ? 3 : 4, batch = c->varlen ? 1 : c->batch;
    const size_t n = (size_t)batch * c->rows * c->heads * c->d, nl = (size_t)batch * c->heads * c->rows;
    const size_t pes = facl_dtype_size(c->part_dtype), oes = facl_dtype_size(c->out_dtype);
    unsigned char *parts = malloc(c->parts * n * pes);
    float *lse_parts = malloc(c->parts * nl * 4);
    assert_true(parts && lse_parts);
    testkit_rng rng;
    testkit_rng_seed(&rng, c->seed);
    for (size_t i = 0; i < c->parts * n; ++i)
        testkit_store(c->part_dtype, parts, i, (float)testkit_rng_normal(&rng));
    for (size_t i = 0; i < c->parts * nl; ++i) {
        const double u = testkit_rng_uniform(&rng);
        lse_parts[i] = u < 0.15 ? INFINITY : u < 0.25 ? -INFINITY : (float)(6.0 * u - 3.0);
    }
    /* the first row of every (batch, head) empty in every part */
    for (int s = 0; s < c->parts; ++s)
        for (size_t bh = 0; bh < (size_t)batch * c->heads; ++bh)
            lse_parts[s * nl + bh * c->rows] = s % 2 ? INFINITY : -INFINITY;
    /* float64 reference and the storage-precision "low" one, element (b, r, h, d) */
    double *ref = malloc(n * sizeof *ref), *ref_lse = malloc(nl * sizeof *ref_lse);
    float *low = malloc(n * 4), *got = malloc(n * 4), *got_lse = malloc(nl * 4);
    assert_true(ref && ref_lse && low && got && got_lse);
    for (int b = 0; b < batch; ++b)
        for (int h = 0; h < c->heads; ++h)
            for (int r = 0; r < c->rows; ++r) {
                const size_t li = ((size_t)b * c->heads + h) * c->rows + r;
                double m = -INFINITY, total = 0.0;
                for (int s = 0; s < c->parts; ++s)
                    if (isfinite(lse_parts[s * nl + li])) m = fmax(m, lse_parts[s * nl + li]);
                for (int s = 0; s < c->parts; ++s)
                    if (isfinite(lse_parts[s * nl + li])) total += exp(lse_parts[s * nl + li] - m);
                const double merged = total > 0.0 ? m + log(total) : INFINITY;
                ref_lse[li] = merged;
                for (int d = 0; d < c->d; ++d) {
                    const size_t oi = (((size_t)b * c->rows + r) * c->heads + h) * c->d + d;
                    double acc = 0.0;
                    float acc32 = 0.0f;
                    for (int s = 0; s < c->parts; ++s) {
                        const float x = lse_parts[s * nl + li];
                        if (!isfinite(x)) continue;
                        const float part = testkit_load(c->part_dtype, parts, s * n + oi);
                        acc += exp(x - merged) * part;
                        acc32 += expf(x - (float)merged) * part;
                    }
                    ref[oi] = acc;
                    low[oi] = testkit_round_to(c->out_dtype, acc32);
                }
            }
    cl_mem bparts = upload(parts, c->parts * n * pes), blse_parts = upload(lse_parts, c->parts * nl * 4);
    cl_mem bout = poisoned(n * oes), blse = poisoned(nl * 4);
    int64_t ps[5], pls[4], os[4], ls[3];
    if (c->varlen) {
        const int64_t p5[4] = {c->parts, c->rows, c->heads, c->d}, l4[3] = {c->parts, c->heads, c->rows};
        const int64_t o4[3] = {c->rows, c->heads, c->d}, l3[2] = {c->heads, c->rows};
        memcpy(ps, p5, sizeof p5), memcpy(pls, l4, sizeof l4), memcpy(os, o4, sizeof o4), memcpy(ls, l3, sizeof l3);
    } else {
        const int64_t p5[5] = {c->parts, batch, c->rows, c->heads, c->d}, l4[4] = {c->parts, batch, c->heads, c->rows};
        const int64_t o4[4] = {batch, c->rows, c->heads, c->d}, l3[3] = {batch, c->heads, c->rows};
        memcpy(ps, p5, sizeof p5), memcpy(pls, l4, sizeof l4), memcpy(os, o4, sizeof o4), memcpy(ls, l3, sizeof l3);
    }
    const facl_tensor tparts = facl_tensor_contiguous(bparts, c->part_dtype, rank + 1, ps);
    const facl_tensor tlse_parts = facl_tensor_contiguous(blse_parts, FACL_DTYPE_F32, rank, pls);
    const facl_tensor tout = facl_tensor_contiguous(bout, c->out_dtype, rank, os);
    const facl_tensor tlse = facl_tensor_contiguous(blse, FACL_DTYPE_F32, rank - 1, ls);
    if (facl_merge(g_ctx, NULL, &tparts, &tlse_parts, &tout, &tlse, 0, NULL, NULL) != FACL_SUCCESS)
        fail_msg("facl_merge: %s", facl_last_error());
    unsigned char *raw = malloc(n * oes);
    assert_non_null(raw);
    download(bout, raw, n * oes);
    download(blse, got_lse, nl * 4);
    for (size_t i = 0; i < n; ++i) got[i] = testkit_load(c->out_dtype, raw, i);
    const cmp_result r = cmp_check(c->out_dtype, got, ref, low, n);
    if (!r.pass) {
        char line[256];
        cmp_format(&r, line, sizeof line);
        fail_msg("out: %s", line);
    }
    const cmp_result rl = cmp_check(FACL_DTYPE_F32, got_lse, ref_lse, NULL, nl);
    if (!rl.pass) {
        char line[256];
        cmp_format(&rl, line, sizeof line);
        fail_msg("lse: %s", line);
    }
    /* rows empty in every part: out 0 and lse +inf, as the forward writes such rows */
    for (size_t bh = 0; bh < (size_t)batch * c->heads; ++bh)
        if (!(isinf(got_lse[bh * c->rows]) && got_lse[bh * c->rows] > 0)) fail_msg("empty row: lse not +inf");
    clReleaseMemObject(bparts), clReleaseMemObject(blse_parts), clReleaseMemObject(bout), clReleaseMemObject(blse);
    free(parts), free(lse_parts), free(ref), free(ref_lse), free(low), free(got), free(got_lse), free(raw);
}

static void test_random_partials(void **state)
{
    (void)state;
    static const merge_case cases[] = {
        {FACL_DTYPE_F32, FACL_DTYPE_F16, 0, 4, 2, 9, 3, 64, 1},
        {FACL_DTYPE_F32, FACL_DTYPE_BF16, 1, 7, 1, 13, 2, 128, 2},
        {FACL_DTYPE_F16, FACL_DTYPE_F16, 1, 2, 1, 5, 4, 8, 3},
        {FACL_DTYPE_BF16, FACL_DTYPE_F32, 0, 3, 3, 4, 2, 59, 4},
        {FACL_DTYPE_F32, FACL_DTYPE_F32, 0, 1, 1, 6, 1, 256, 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) run_random_case(&cases[i]);
}

/* ------------------------------------------------------------------ errors */

static void expect(facl_status got, facl_status want, const char *prefix)
{
    if (got != want)
        fail_msg("expected %s, got %s: %s", facl_status_string(want), facl_status_string(got),
                 facl_last_error());
    if (strncmp(facl_last_error(), prefix, strlen(prefix)) != 0)
        fail_msg("message '%s' does not start with '%s'", facl_last_error(), prefix);
}

static void test_errors(void **state)
{
    (void)state;
    const int64_t ps[5] = {2, 1, 3, 2, 8}, pls[4] = {2, 1, 2, 3}, os[4] = {1, 3, 2, 8}, ls[3] = {1, 2, 3};
    cl_mem bp = poisoned(2 * 48 * 4), bpl = poisoned(12 * 4), bo = poisoned(48 * 4), bl = poisoned(6 * 4);
    facl_tensor p = facl_tensor_contiguous(bp, FACL_DTYPE_F32, 5, ps);
    facl_tensor pl = facl_tensor_contiguous(bpl, FACL_DTYPE_F32, 4, pls);
    facl_tensor o = facl_tensor_contiguous(bo, FACL_DTYPE_F32, 4, os);
    facl_tensor l = facl_tensor_contiguous(bl, FACL_DTYPE_F32, 3, ls);
    facl_tensor bad;
    expect(facl_merge(NULL, NULL, &p, &pl, &o, &l, 0, NULL, NULL), FACL_ERROR_NULL_ARGUMENT, "ctx:");
    expect(facl_merge(g_ctx, NULL, NULL, &pl, &o, &l, 0, NULL, NULL), FACL_ERROR_NULL_ARGUMENT, "out_parts:");
    bad = p, bad.shape[3] = 1; /* heads 1, out has 2 */
    expect(facl_merge(g_ctx, NULL, &bad, &pl, &o, &l, 0, NULL, NULL), FACL_ERROR_INVALID_SHAPE, "out_parts:");
    bad = p, bad.shape[0] = 0;
    expect(facl_merge(g_ctx, NULL, &bad, &pl, &o, &l, 0, NULL, NULL), FACL_ERROR_INVALID_SHAPE, "out_parts:");
    bad = pl, bad.dtype = FACL_DTYPE_F16;
    expect(facl_merge(g_ctx, NULL, &p, &bad, &o, &l, 0, NULL, NULL), FACL_ERROR_INVALID_DTYPE, "lse_parts:");
    bad = pl, bad.shape[0] = 3;
    expect(facl_merge(g_ctx, NULL, &p, &bad, &o, &l, 0, NULL, NULL), FACL_ERROR_BUFFER_TOO_SMALL, "lse_parts:");
    bad = l, bad.shape[2] = 2;
    expect(facl_merge(g_ctx, NULL, &p, &pl, &o, &bad, 0, NULL, NULL), FACL_ERROR_INVALID_SHAPE, "lse:");
    bad = o, bad.ndim = 2;
    expect(facl_merge(g_ctx, NULL, &p, &pl, &bad, &l, 0, NULL, NULL), FACL_ERROR_INVALID_SHAPE, "out:");
    bad = o, bad.dtype = FACL_DTYPE_I32;
    expect(facl_merge(g_ctx, NULL, &p, &pl, &bad, &l, 0, NULL, NULL), FACL_ERROR_INVALID_DTYPE, "out:");
    unsigned char host[48 * 4];
    download(bo, host, sizeof host);
    for (size_t i = 0; i < sizeof host; ++i)
        if (host[i] != 0xFF) fail_msg("out byte %zu written by a rejected call", i);
    clReleaseMemObject(bp), clReleaseMemObject(bpl), clReleaseMemObject(bo), clReleaseMemObject(bl);
}

static int setup(void **state)
{
    (void)state;
    if (facl_context_create(NULL, &g_ctx) != FACL_SUCCESS) return -1;
    facl_device_info info = FACL_DEVICE_INFO_INIT;
    if (facl_context_device_info(g_ctx, &info) == FACL_SUCCESS) /* the Oclgrind runner reads it */
        print_message("device: %s / %s\n", info.platform_name, info.device_name);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    facl_context_free(g_ctx);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_keys_equal_unsplit),
        cmocka_unit_test(test_random_partials),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
