/* trust_cu_seqlens with prefix sums that are wrong, not merely larger than the maxima:
 * decreasing, negative, past the end of the tensors. facl.h promises that the kernels
 * clamp them into the tensors (start = clamp(cu[b], 0, rows), end = clamp(cu[b+1],
 * start, rows)) and compute every row of every sequence so described, without reading
 * or writing out of bounds; rows that no clamped sequence covers are not written. Both
 * portable paths are checked (the tensor-core kernel shares the clamping code, and its
 * row striding is covered by test_forward's trusted-max cases on every path). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_api.h"

enum { TOTAL_Q = T_B * T_SQ, TOTAL_K = T_B * T_SK };

static int clamp_int(int x, int lo, int hi) { return x < lo ? lo : x > hi ? hi : x; }

/* out and lse rows in float64 for the sequences the clamped sums describe; rows of no
 * sequence are marked with covered[t] = 0. */
static void expected(const tiny *t, const int32_t *cu_q, const int32_t *cu_k, int batch,
                     int causal, double *out, double *lse, int *covered)
{
    memset(covered, 0, sizeof(int) * TOTAL_Q);
    for (int b = 0; b < batch; ++b) {
        const int qs = clamp_int(cu_q[b], 0, TOTAL_Q), qe = clamp_int(cu_q[b + 1], qs, TOTAL_Q);
        const int ks = clamp_int(cu_k[b], 0, TOTAL_K), ke = clamp_int(cu_k[b + 1], ks, TOTAL_K);
        const int off = (ke - ks) - (qe - qs);
        for (int row = qs; row < qe; ++row) {
            covered[row] = 1;
            for (int h = 0; h < T_HQ; ++h) {
                double scores[TOTAL_K], m = -INFINITY, l = 0.0;
                const int last = causal ? row - qs + off : ke - ks - 1;
                for (int j = 0; j < ke - ks; ++j) {
                    double x = 0.0;
                    for (int d = 0; d < T_D; ++d)
                        x += (double)t->q[((size_t)row * T_HQ + h) * T_D + d] *
                             t->k[(size_t)(ks + j) * T_D + d];
                    scores[j] = j <= last ? x / sqrt((double)T_D) : -INFINITY;
                    m = fmax(m, scores[j]);
                }
                double *o = out + ((size_t)row * T_HQ + h) * T_D;
                for (int d = 0; d < T_D; ++d) o[d] = 0.0;
                for (int j = 0; j < ke - ks && m > -INFINITY; ++j) {
                    const double p = exp(scores[j] - m);
                    l += p;
                    for (int d = 0; d < T_D; ++d) o[d] += p * t->v[(size_t)(ks + j) * T_D + d];
                }
                for (int d = 0; d < T_D && l > 0.0; ++d) o[d] /= l;
                lse[(size_t)h * TOTAL_Q + row] = l > 0.0 ? m + log(l) : INFINITY;
            }
        }
    }
}

static void check_case(const char *path, const int32_t *cu_q, const int32_t *cu_k, int batch,
                       int causal)
{
    facl_context_config config = FACL_CONTEXT_CONFIG_INIT;
    config.kernel_path = path;
    facl_context *ctx = NULL;
    if (facl_context_create_with_config(NULL, &config, &ctx) != FACL_SUCCESS)
        fail_msg("context on %s: %s", path, facl_last_error());
    cl_command_queue queue = facl_context_queue(ctx);
    tiny t;
    tiny_init(&t, facl_context_cl_context(ctx), 0x7a05u + (uint64_t)batch);
    cl_int err;
    cl_mem cu_buf = clCreateBuffer(t.cl_ctx, CL_MEM_READ_ONLY,
                                   sizeof(int32_t) * 2 * (size_t)(batch + 1), NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    assert_int_equal(clEnqueueWriteBuffer(queue, cu_buf, CL_TRUE, 0,
                                          sizeof(int32_t) * (size_t)(batch + 1), cu_q, 0, NULL,
                                          NULL),
                     CL_SUCCESS);
    assert_int_equal(clEnqueueWriteBuffer(queue, cu_buf, CL_TRUE,
                                          sizeof(int32_t) * (size_t)(batch + 1),
                                          sizeof(int32_t) * (size_t)(batch + 1), cu_k, 0, NULL,
                                          NULL),
                     CL_SUCCESS);
    /* The tiny dense buffers seen as varlen tensors: q and out (10, 2, 16), k and v
     * (18, 1, 16), lse (2, 10). */
    const int64_t qs[3] = {TOTAL_Q, T_HQ, T_D}, ks[3] = {TOTAL_K, T_HKV, T_D},
                  ls[2] = {T_HQ, TOTAL_Q}, cs[1] = {batch + 1};
    const facl_tensor q = facl_tensor_contiguous(t.bq, FACL_DTYPE_F32, 3, qs);
    const facl_tensor k = facl_tensor_contiguous(t.bk, FACL_DTYPE_F32, 3, ks);
    const facl_tensor v = facl_tensor_contiguous(t.bv, FACL_DTYPE_F32, 3, ks);
    const facl_tensor out = facl_tensor_contiguous(t.bout, FACL_DTYPE_F32, 3, qs);
    const facl_tensor lse = facl_tensor_contiguous(t.blse, FACL_DTYPE_F32, 2, ls);
    facl_tensor cuq = facl_tensor_contiguous(cu_buf, FACL_DTYPE_I32, 1, cs), cuk = cuq;
    cuk.offset = (uint64_t)(batch + 1);
    facl_attn_options opts = FACL_ATTN_OPTIONS_INIT;
    opts.trust_cu_seqlens = 1;
    opts.causal = causal;
    tiny_poison(&t, queue);
    /* Maxima of 1: smaller than every real sequence, as trusted calls may pass. */
    const facl_status st =
        facl_varlen_fwd(ctx, NULL, &q, &k, &v, &cuq, &cuk, 1, 1, &out, &lse, &opts, 0, NULL, NULL);
    if (st != FACL_SUCCESS) fail_msg("%s: %s", path, facl_last_error());
    float got_out[TOTAL_Q * T_HQ * T_D], got_lse[T_HQ * TOTAL_Q];
    assert_int_equal(clEnqueueReadBuffer(queue, t.bout, CL_TRUE, 0, sizeof got_out, got_out, 0,
                                         NULL, NULL),
                     CL_SUCCESS);
    assert_int_equal(clEnqueueReadBuffer(queue, t.blse, CL_TRUE, 0, sizeof got_lse, got_lse, 0,
                                         NULL, NULL),
                     CL_SUCCESS);
    double ref_out[TOTAL_Q * T_HQ * T_D], ref_lse[T_HQ * TOTAL_Q];
    int covered[TOTAL_Q];
    expected(&t, cu_q, cu_k, batch, causal, ref_out, ref_lse, covered);
    const uint32_t poison = 0xFFFFFFFFu;
    for (int row = 0; row < TOTAL_Q; ++row)
        for (int h = 0; h < T_HQ; ++h) {
            const float l = got_lse[h * TOTAL_Q + row];
            if (!covered[row]) {
                if (memcmp(&l, &poison, sizeof l) != 0)
                    fail_msg("%s: lse of row %d (in no sequence) was written", path, row);
                for (int d = 0; d < T_D; ++d)
                    if (memcmp(&got_out[(row * T_HQ + h) * T_D + d], &poison, 4) != 0)
                        fail_msg("%s: out row %d (in no sequence) was written", path, row);
                continue;
            }
            const double want = ref_lse[h * TOTAL_Q + row];
            if (!(fabs(l - want) <= 1e-4 || (isinf(want) && l == (float)want)))
                fail_msg("%s: lse row %d head %d: %g, float64 gives %g", path, row, h, l, want);
            for (int d = 0; d < T_D; ++d) {
                const double g = got_out[(row * T_HQ + h) * T_D + d],
                             w = ref_out[(row * T_HQ + h) * T_D + d];
                if (!(fabs(g - w) <= 1e-4))
                    fail_msg("%s: out[%d, %d, %d] = %g, float64 gives %g", path, row, h, d, g, w);
            }
        }
    clReleaseMemObject(cu_buf);
    tiny_free(&t);
    facl_context_free(ctx);
}

static const char *const k_paths[] = {"portable-gpu", "portable-cpu"};

/* Decreasing sums and a sum past the end: sequence 0 is rows 0..6 with keys 0..17,
 * sequence 1 is empty (its start clamps above its end); rows 7..9 belong to nobody. */
static void test_trusted_decreasing_and_past_end(void **state)
{
    (void)state;
    const int32_t cu_q[3] = {0, 7, 3}, cu_k[3] = {0, 20, 9};
    for (size_t i = 0; i < sizeof k_paths / sizeof k_paths[0]; ++i) {
        check_case(k_paths[i], cu_q, cu_k, 2, 0);
        check_case(k_paths[i], cu_q, cu_k, 2, 1);
    }
}

/* A negative first sum and a last one past the end: rows 0..3 and 4..9. */
static void test_trusted_negative_start(void **state)
{
    (void)state;
    const int32_t cu_q[3] = {-5, 4, 12}, cu_k[3] = {0, 9, 18};
    for (size_t i = 0; i < sizeof k_paths / sizeof k_paths[0]; ++i) check_case(k_paths[i], cu_q, cu_k, 2, 1);
}

int run_trust_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trusted_decreasing_and_past_end),
        cmocka_unit_test(test_trusted_negative_start),
    };
    return cmocka_run_group_tests_name("trusted cu_seqlens", tests, NULL, NULL);
}
