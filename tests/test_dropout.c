/* Dropout as the device produces it: the keep fraction of a large mask is within 1% of
 * 1 - p, a rerun with the same (seed, offset) is bitwise identical, and another seed or
 * offset gives another mask. The mask is read through the attn_probs debug output
 * (negative = dropped); element-by-element agreement with the CPU Philox is checked by
 * the forward suite. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "facl.h"

enum { B = 1, H = 2, SQ = 256, SK = 512, D = 16 };

typedef struct run_output {
    float out[B * SQ * H * D];
    float probs[B * H * SQ * SK];
} run_output;

static facl_context *ctx;
static cl_mem q_buf, k_buf, v_buf, out_buf, probs_buf;

static cl_mem upload_random(size_t n, unsigned seed)
{
    float *host = malloc(n * sizeof *host);
    assert_non_null(host);
    srand(seed);
    for (size_t i = 0; i < n; ++i) host[i] = (float)rand() / RAND_MAX - 0.5f;
    cl_int err;
    cl_mem m = clCreateBuffer(facl_context_cl_context(ctx), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                              n * sizeof *host, host, &err);
    assert_int_equal(err, CL_SUCCESS);
    free(host);
    return m;
}

static int setup(void **state)
{
    (void)state;
    if (facl_context_create(NULL, &ctx) != FACL_SUCCESS) return -1;
    q_buf = upload_random((size_t)B * SQ * H * D, 1);
    k_buf = upload_random((size_t)B * SK * H * D, 2);
    v_buf = upload_random((size_t)B * SK * H * D, 3);
    cl_int err;
    out_buf = clCreateBuffer(facl_context_cl_context(ctx), CL_MEM_READ_WRITE,
                             sizeof(float) * B * SQ * H * D, NULL, &err);
    probs_buf = clCreateBuffer(facl_context_cl_context(ctx), CL_MEM_READ_WRITE,
                               sizeof(float) * B * H * SQ * SK, NULL, &err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    clReleaseMemObject(q_buf);
    clReleaseMemObject(k_buf);
    clReleaseMemObject(v_buf);
    clReleaseMemObject(out_buf);
    clReleaseMemObject(probs_buf);
    facl_context_free(ctx);
    return 0;
}

static void run(float p, uint64_t seed, uint64_t offset, run_output *r)
{
    const int64_t qs[4] = {B, SQ, H, D}, ks[4] = {B, SK, H, D}, ps[4] = {B, H, SQ, SK};
    facl_tensor q = facl_tensor_contiguous(q_buf, FACL_DTYPE_F32, 4, qs);
    facl_tensor k = facl_tensor_contiguous(k_buf, FACL_DTYPE_F32, 4, ks);
    facl_tensor v = facl_tensor_contiguous(v_buf, FACL_DTYPE_F32, 4, ks);
    facl_tensor out = facl_tensor_contiguous(out_buf, FACL_DTYPE_F32, 4, qs);
    facl_tensor probs = facl_tensor_contiguous(probs_buf, FACL_DTYPE_F32, 4, ps);
    facl_attn_options o = facl_attn_options_default();
    o.dropout_p = p;
    o.dropout_seed = seed;
    o.dropout_offset = offset;
    o.attn_probs = &probs;
    cl_command_queue queue = facl_context_queue(ctx);
    const unsigned char poison = 0xFF;
    clEnqueueFillBuffer(queue, out_buf, &poison, 1, 0, sizeof r->out, 0, NULL, NULL);
    clEnqueueFillBuffer(queue, probs_buf, &poison, 1, 0, sizeof r->probs, 0, NULL, NULL);
    facl_status st = facl_fwd(ctx, NULL, &q, &k, &v, &out, NULL, &o, 0, NULL, NULL);
    if (st != FACL_SUCCESS) fail_msg("facl_fwd: %s", facl_last_error());
    assert_int_equal(clEnqueueReadBuffer(queue, out_buf, CL_TRUE, 0, sizeof r->out, r->out, 0, NULL, NULL), 0);
    assert_int_equal(clEnqueueReadBuffer(queue, probs_buf, CL_TRUE, 0, sizeof r->probs, r->probs, 0, NULL, NULL), 0);
}

static size_t mask_differences(const run_output *a, const run_output *b)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof a->probs / sizeof a->probs[0]; ++i)
        n += (a->probs[i] < 0.0f) != (b->probs[i] < 0.0f);
    return n;
}

static void test_keep_fraction(void **state)
{
    (void)state;
    const float ps[3] = {0.1f, 0.3f, 0.8f};
    run_output *r = malloc(sizeof *r);
    assert_non_null(r);
    for (int t = 0; t < 3; ++t) {
        run(ps[t], 1234, 0, r);
        size_t kept = 0, total = sizeof r->probs / sizeof r->probs[0];
        for (size_t i = 0; i < total; ++i) {
            if (r->probs[i] != r->probs[i]) fail_msg("probs[%zu] unwritten", i);
            kept += r->probs[i] > 0.0f;
        }
        const double fraction = (double)kept / (double)total;
        if (fraction < (1.0 - ps[t]) - 0.01 || fraction > (1.0 - ps[t]) + 0.01)
            fail_msg("p = %g: kept %.4f of %zu, expected %.4f +- 0.01", ps[t], fraction, total,
                     1.0 - ps[t]);
    }
    free(r);
}

static void test_rerun_identical_and_seeds_differ(void **state)
{
    (void)state;
    run_output *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    run(0.25f, 42, 7, a);
    run(0.25f, 42, 7, b);
    assert_memory_equal(a->out, b->out, sizeof a->out);
    assert_memory_equal(a->probs, b->probs, sizeof a->probs);
    const size_t total = sizeof a->probs / sizeof a->probs[0];
    run(0.25f, 43, 7, b); /* another seed: about 2 p (1 - p) of the mask flips */
    assert_true(mask_differences(a, b) > total / 4);
    assert_true(memcmp(a->out, b->out, sizeof a->out) != 0);
    run(0.25f, 42, 7 + H, b); /* another offset */
    assert_true(mask_differences(a, b) > total / 4);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_fraction),
        cmocka_unit_test(test_rerun_identical_and_seeds_differ),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
