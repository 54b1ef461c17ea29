/* Dropout as the device produces it, in every storage dtype (fp32, fp16, bf16): the keep
 * fraction of a large mask is within 1% of 1 - p, the mask is element for element the
 * one of the CPU Philox (SPEC.md rule 6), a rerun with the same (seed, offset) is bitwise
 * identical, and another seed or offset gives another mask. The mask is read through the
 * attn_probs debug output (negative = dropped). Outputs are poisoned before every call and
 * the inputs are fresh random normals per dtype. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "facl.h"
#include "numeric.h"

enum { B = 1, H = 2, SQ = 256, SK = 512, D = 16 };
enum { OUT_ELEMS = B * SQ * H * D, PROBS_ELEMS = B * H * SQ * SK };

typedef struct run_output {
    unsigned char out_raw[OUT_ELEMS * sizeof(float)]; /* in the storage dtype */
    size_t out_bytes;
    float probs[PROBS_ELEMS];
} run_output;

typedef struct dtype_inputs {
    facl_dtype dt;
    cl_mem q, k, v;
} dtype_inputs;

static facl_context *ctx;
static cl_mem out_buf, probs_buf;
static dtype_inputs inputs[3] = {
    {FACL_DTYPE_F32, NULL, NULL, NULL},
    {FACL_DTYPE_F16, NULL, NULL, NULL},
    {FACL_DTYPE_BF16, NULL, NULL, NULL},
};

static cl_mem upload_random(facl_dtype dt, size_t n, uint64_t seed)
{
    const size_t es = facl_dtype_size(dt);
    unsigned char *host = malloc(n * es);
    testkit_rng rng;
    cl_int err;
    cl_mem m;
    assert_non_null(host);
    testkit_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; ++i)
        testkit_store(dt, host, i, (float)testkit_rng_normal(&rng));
    m = clCreateBuffer(facl_context_cl_context(ctx), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                       n * es, host, &err);
    assert_int_equal(err, CL_SUCCESS);
    free(host);
    return m;
}

static int setup(void **state)
{
    (void)state;
    if (facl_context_create(NULL, &ctx) != FACL_SUCCESS) {
        print_error("facl_context_create: %s\n", facl_last_error());
        return -1;
    }
    for (int t = 0; t < 3; ++t) {
        const uint64_t seed = 0xd0d0u + 16u * (uint64_t)t;
        inputs[t].q = upload_random(inputs[t].dt, (size_t)B * SQ * H * D, seed + 1);
        inputs[t].k = upload_random(inputs[t].dt, (size_t)B * SK * H * D, seed + 2);
        inputs[t].v = upload_random(inputs[t].dt, (size_t)B * SK * H * D, seed + 3);
    }
    cl_int err;
    out_buf = clCreateBuffer(facl_context_cl_context(ctx), CL_MEM_READ_WRITE,
                             sizeof(float) * OUT_ELEMS, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    probs_buf = clCreateBuffer(facl_context_cl_context(ctx), CL_MEM_READ_WRITE,
                               sizeof(float) * PROBS_ELEMS, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int t = 0; t < 3; ++t) {
        clReleaseMemObject(inputs[t].q);
        clReleaseMemObject(inputs[t].k);
        clReleaseMemObject(inputs[t].v);
    }
    clReleaseMemObject(out_buf);
    clReleaseMemObject(probs_buf);
    facl_context_free(ctx);
    return 0;
}

/* One forward with dropout; out and attn_probs poisoned (0xFF: NaN in every dtype) first,
 * then read back and checked for unwritten (NaN) elements. */
static void run(const dtype_inputs *in, float p, uint64_t seed, uint64_t offset, run_output *r)
{
    const int64_t qs[4] = {B, SQ, H, D}, ks[4] = {B, SK, H, D}, ps[4] = {B, H, SQ, SK};
    const facl_dtype dt = in->dt;
    facl_tensor q = facl_tensor_contiguous(in->q, dt, 4, qs);
    facl_tensor k = facl_tensor_contiguous(in->k, dt, 4, ks);
    facl_tensor v = facl_tensor_contiguous(in->v, dt, 4, ks);
    facl_tensor out = facl_tensor_contiguous(out_buf, dt, 4, qs);
    facl_tensor probs = facl_tensor_contiguous(probs_buf, FACL_DTYPE_F32, 4, ps);
    facl_attn_options o = facl_attn_options_default();
    o.dropout_p = p;
    o.dropout_seed = seed;
    o.dropout_offset = offset;
    o.attn_probs = &probs;
    cl_command_queue queue = facl_context_queue(ctx);
    const unsigned char poison = 0xFF;
    r->out_bytes = (size_t)OUT_ELEMS * facl_dtype_size(dt);
    assert_int_equal(clEnqueueFillBuffer(queue, out_buf, &poison, 1, 0, sizeof r->out_raw, 0,
                                         NULL, NULL),
                     CL_SUCCESS);
    assert_int_equal(clEnqueueFillBuffer(queue, probs_buf, &poison, 1, 0, sizeof r->probs, 0,
                                         NULL, NULL),
                     CL_SUCCESS);
    facl_status st = facl_fwd(ctx, NULL, &q, &k, &v, &out, NULL, &o, 0, NULL, NULL);
    if (st != FACL_SUCCESS) fail_msg("facl_fwd (dtype %d): %s", (int)dt, facl_last_error());
    assert_int_equal(clEnqueueReadBuffer(queue, out_buf, CL_TRUE, 0, r->out_bytes, r->out_raw, 0,
                                         NULL, NULL),
                     CL_SUCCESS);
    assert_int_equal(clEnqueueReadBuffer(queue, probs_buf, CL_TRUE, 0, sizeof r->probs, r->probs,
                                         0, NULL, NULL),
                     CL_SUCCESS);
    for (size_t i = 0; i < OUT_ELEMS; ++i) {
        float x = testkit_load(dt, r->out_raw, i);
        if (x != x) fail_msg("dtype %d: out[%zu] unwritten (NaN)", (int)dt, i);
    }
    for (size_t i = 0; i < PROBS_ELEMS; ++i)
        if (r->probs[i] != r->probs[i]) fail_msg("dtype %d: probs[%zu] unwritten", (int)dt, i);
}

static size_t mask_differences(const run_output *a, const run_output *b)
{
    size_t n = 0;
    for (size_t i = 0; i < PROBS_ELEMS; ++i)
        n += (a->probs[i] < 0.0f) != (b->probs[i] < 0.0f);
    return n;
}

/* Every element of the mask as the CPU Philox decides it (no element is masked: no
 * probability is 0, so its sign is the decision). */
static void check_mask_is_philox(const run_output *r, float p, uint64_t seed, uint64_t offset)
{
    const uint32_t thr = testkit_dropout_threshold(p);
    for (int h = 0; h < H; ++h)
        for (int i = 0; i < SQ; ++i)
            for (int j = 0; j < SK; ++j) {
                const float pr = r->probs[((size_t)h * SQ + i) * SK + j];
                const int keep = testkit_dropout_keep(thr, seed, offset, 0, H, h, i, j);
                if (pr == 0.0f || (pr > 0.0f) != keep)
                    fail_msg("p = %g head %d row %d col %d: probs %g, Philox says %s", p, h, i,
                             j, pr, keep ? "keep" : "drop");
            }
}

static void test_keep_fraction(void **state)
{
    const dtype_inputs *in = *state;
    const float ps[3] = {0.1f, 0.3f, 0.8f};
    run_output *r = malloc(sizeof *r);
    assert_non_null(r);
    for (int t = 0; t < 3; ++t) {
        const uint64_t seed = 1234u + (uint64_t)t, offset = (uint64_t)t * 5u;
        run(in, ps[t], seed, offset, r);
        size_t kept = 0;
        for (size_t i = 0; i < PROBS_ELEMS; ++i) kept += r->probs[i] > 0.0f;
        const double fraction = (double)kept / (double)PROBS_ELEMS;
        if (fraction < (1.0 - ps[t]) - 0.01 || fraction > (1.0 - ps[t]) + 0.01)
            fail_msg("dtype %d p = %g: kept %.4f of %d, expected %.4f +- 0.01", (int)in->dt,
                     ps[t], fraction, (int)PROBS_ELEMS, 1.0 - ps[t]);
        check_mask_is_philox(r, ps[t], seed, offset);
    }
    free(r);
}

static void test_rerun_identical_and_seeds_differ(void **state)
{
    const dtype_inputs *in = *state;
    run_output *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    run(in, 0.25f, 42, 7, a);
    run(in, 0.25f, 42, 7, b);
    assert_memory_equal(a->out_raw, b->out_raw, a->out_bytes);
    assert_memory_equal(a->probs, b->probs, sizeof a->probs);
    run(in, 0.25f, 43, 7, b); /* another seed: about 2 p (1 - p) of the mask flips */
    if (mask_differences(a, b) <= PROBS_ELEMS / 4)
        fail_msg("dtype %d: seed 43 flips only %zu of %d mask elements", (int)in->dt,
                 mask_differences(a, b), (int)PROBS_ELEMS);
    assert_true(memcmp(a->out_raw, b->out_raw, a->out_bytes) != 0);
    run(in, 0.25f, 42, 7 + H, b); /* another offset */
    if (mask_differences(a, b) <= PROBS_ELEMS / 4)
        fail_msg("dtype %d: offset 9 flips only %zu of %d mask elements", (int)in->dt,
                 mask_differences(a, b), (int)PROBS_ELEMS);
    assert_true(memcmp(a->out_raw, b->out_raw, a->out_bytes) != 0);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        {"keep_fraction f32", test_keep_fraction, NULL, NULL, &inputs[0]},
        {"rerun_identical_and_seeds_differ f32", test_rerun_identical_and_seeds_differ, NULL,
         NULL, &inputs[0]},
        {"keep_fraction f16", test_keep_fraction, NULL, NULL, &inputs[1]},
        {"rerun_identical_and_seeds_differ f16", test_rerun_identical_and_seeds_differ, NULL,
         NULL, &inputs[1]},
        {"keep_fraction bf16", test_keep_fraction, NULL, NULL, &inputs[2]},
        {"rerun_identical_and_seeds_differ bf16", test_rerun_identical_and_seeds_differ, NULL,
         NULL, &inputs[2]},
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
