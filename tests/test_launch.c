/* What a call enqueues, seen from below: this test defines clEnqueueNDRangeKernel and
 * clBuildProgram itself (the executable's definitions win over libOpenCL's for every
 * caller, the library included) and forwards to the real ones, so it can count launches,
 * check their sizes and make one program's build fail.
 * - A call that fails must leave nothing enqueued: with the attn_probs program refusing
 *   to build, a forward call with attn_probs returns the build failure and launches
 *   nothing (before, the forward kernel was already enqueued when the probs build ran).
 * - No launch has a zero global size (an error on OpenCL 1.2 drivers): a call with
 *   seqlen_k 0 and attn_probs launches the forward kernel only.
 * - The backward: a failed build launches none of its three kernels and writes nothing;
 *   with no keys it launches all three (dq = 0), none of zero size.
 * - attn_fwd_blocked needs its whole fixed work-group: where the driver's build of it
 *   allows fewer work-items (this test's clGetKernelWorkGroupInfo says so), the call runs
 *   attn_fwd instead, and still computes the right thing.
 * - Kernel objects (counted through clCreateKernel and clReleaseKernel) are made once per
 *   context and kernel, by the first call that needs them, used by every later call, and
 *   all released by facl_context_free.
 * - A call sets every argument of its kernels before its first enqueue: a kernel refusing
 *   its arguments (this test's clSetKernelArg), even the call's last one, fails the call
 *   with nothing launched, and the next call, which sets them all again, is right. */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "facl.h"

static int g_launches, g_zero_sized, g_fail_probs_build, g_fail_bwd_build;
static size_t g_group_limit;  /* CL_KERNEL_WORK_GROUP_SIZE reported at most this; 0: real */
static int g_over_limit;      /* launches with a work-group above g_group_limit */
static char g_last_kernel[64]; /* the function name of the last launch */
static int g_kernels_made, g_kernels_released; /* by clCreateKernel / clReleaseKernel */
static char g_refuse_args_of[64]; /* clSetKernelArg refuses this kernel's arguments */

/* attn_probs is the one program built without a tile-size option (see src/plan.c). */
static int is_probs_program(const char *options)
{
    return options && !strstr(options, "-DBLOCK_N") && !strstr(options, "-DROWS") &&
           !strstr(options, "-DM_TILES");
}

CL_API_ENTRY cl_int CL_API_CALL clBuildProgram(cl_program program, cl_uint num_devices,
                                              const cl_device_id *devices, const char *options,
                                              void(CL_CALLBACK *notify)(cl_program, void *),
                                              void *user_data)
{
    typedef cl_int (*real_fn)(cl_program, cl_uint, const cl_device_id *, const char *,
                              void(CL_CALLBACK *)(cl_program, void *), void *);
    static real_fn real;
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "clBuildProgram"); /* POSIX's idiom */
    if (g_fail_probs_build && is_probs_program(options)) return CL_BUILD_PROGRAM_FAILURE;
    if (g_fail_bwd_build && options && strstr(options, "-DFACL_BWD_PARAMS_SIZE"))
        return CL_BUILD_PROGRAM_FAILURE;
    return real(program, num_devices, devices, options, notify, user_data);
}

CL_API_ENTRY cl_int CL_API_CALL clGetKernelWorkGroupInfo(cl_kernel kernel, cl_device_id device,
                                                        cl_kernel_work_group_info name,
                                                        size_t size, void *value,
                                                        size_t *size_ret)
{
    typedef cl_int (*real_fn)(cl_kernel, cl_device_id, cl_kernel_work_group_info, size_t, void *,
                              size_t *);
    static real_fn real;
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "clGetKernelWorkGroupInfo");
    const cl_int err = real(kernel, device, name, size, value, size_ret);
    if (err == CL_SUCCESS && name == CL_KERNEL_WORK_GROUP_SIZE && value && g_group_limit &&
        *(size_t *)value > g_group_limit)
        *(size_t *)value = g_group_limit;
    return err;
}

CL_API_ENTRY cl_kernel CL_API_CALL clCreateKernel(cl_program program, const char *name,
                                                  cl_int *err)
{
    typedef cl_kernel (*real_fn)(cl_program, const char *, cl_int *);
    static real_fn real;
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "clCreateKernel");
    cl_kernel kernel = real(program, name, err);
    if (kernel) g_kernels_made++;
    return kernel;
}

CL_API_ENTRY cl_int CL_API_CALL clReleaseKernel(cl_kernel kernel)
{
    typedef cl_int (*real_fn)(cl_kernel);
    static real_fn real;
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "clReleaseKernel");
    const cl_int err = real(kernel);
    if (err == CL_SUCCESS) g_kernels_released++;
    return err;
}

CL_API_ENTRY cl_int CL_API_CALL clSetKernelArg(cl_kernel kernel, cl_uint index, size_t size,
                                              const void *value)
{
    typedef cl_int (*real_fn)(cl_kernel, cl_uint, size_t, const void *);
    static real_fn real;
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "clSetKernelArg");
    char name[64];
    if (g_refuse_args_of[0] &&
        clGetKernelInfo(kernel, CL_KERNEL_FUNCTION_NAME, sizeof name, name, NULL) == CL_SUCCESS &&
        strcmp(name, g_refuse_args_of) == 0)
        return CL_INVALID_ARG_VALUE;
    return real(kernel, index, size, value);
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueNDRangeKernel(cl_command_queue queue, cl_kernel kernel,
                                                      cl_uint dims, const size_t *offset,
                                                      const size_t *global, const size_t *local,
                                                      cl_uint num_wait, const cl_event *wait,
                                                      cl_event *event)
{
    typedef cl_int (*real_fn)(cl_command_queue, cl_kernel, cl_uint, const size_t *,
                              const size_t *, const size_t *, cl_uint, const cl_event *,
                              cl_event *);
    static real_fn real;
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "clEnqueueNDRangeKernel");
    g_launches++;
    for (cl_uint d = 0; d < dims; ++d) g_zero_sized += global[d] == 0;
    if (clGetKernelInfo(kernel, CL_KERNEL_FUNCTION_NAME, sizeof g_last_kernel, g_last_kernel,
                        NULL) != CL_SUCCESS)
        g_last_kernel[0] = '\0';
    if (g_group_limit && local && local[0] > g_group_limit) g_over_limit++;
    return real(queue, kernel, dims, offset, global, local, num_wait, wait, event);
}

typedef struct problem {
    facl_context *ctx;
    cl_mem q, k, out, lse, probs;
    facl_tensor tq, tk, tout, tlse, tprobs;
} problem;

enum { D = 8, SQ = 4, HEADS = 1 };

static cl_mem buffer_of(cl_context c, size_t bytes, unsigned char fill)
{
    unsigned char host[256];
    memset(host, fill, sizeof host);
    cl_int err;
    cl_mem m = clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, host, &err);
    assert_int_equal(err, CL_SUCCESS);
    return m;
}

/* fp32 (1, SQ, 1, D) queries over sk keys (at least one element allocated), outputs
 * poisoned, on a context without a disk cache (so its programs are built here). */
static void problem_make(problem *p, int sk)
{
    facl_context_config config = FACL_CONTEXT_CONFIG_INIT;
    config.cache_dir = "";
    config.kernel_path = "portable-gpu";
    assert_int_equal(facl_context_create_with_config(NULL, &config, &p->ctx), FACL_SUCCESS);
    cl_context c = facl_context_cl_context(p->ctx);
    const size_t kv = (size_t)(sk > 0 ? sk : 1) * D * 4;
    p->q = buffer_of(c, SQ * D * 4, 0x3c);
    p->k = buffer_of(c, kv, 0x3c);
    p->out = buffer_of(c, SQ * D * 4, 0xFF);
    p->lse = buffer_of(c, SQ * 4, 0xFF);
    p->probs = buffer_of(c, (size_t)SQ * (sk > 0 ? sk : 1) * 4, 0xFF);
    const int64_t qs[4] = {1, SQ, HEADS, D}, ks[4] = {1, sk, HEADS, D}, ls[3] = {1, HEADS, SQ},
                  ps[4] = {1, HEADS, SQ, sk};
    p->tq = facl_tensor_contiguous(p->q, FACL_DTYPE_F32, 4, qs);
    p->tk = facl_tensor_contiguous(p->k, FACL_DTYPE_F32, 4, ks);
    p->tout = facl_tensor_contiguous(p->out, FACL_DTYPE_F32, 4, qs);
    p->tlse = facl_tensor_contiguous(p->lse, FACL_DTYPE_F32, 3, ls);
    p->tprobs = facl_tensor_contiguous(p->probs, FACL_DTYPE_F32, 4, ps);
}

static facl_status problem_run(problem *p)
{
    facl_attn_options opts = FACL_ATTN_OPTIONS_INIT;
    opts.attn_probs = &p->tprobs;
    return facl_fwd(p->ctx, NULL, &p->tq, &p->tk, &p->tk, &p->tout, &p->tlse, &opts, 0, NULL,
                    NULL);
}

static void problem_free(problem *p)
{
    cl_mem all[5] = {p->q, p->k, p->out, p->lse, p->probs};
    for (int i = 0; i < 5; ++i) clReleaseMemObject(all[i]);
    facl_context_free(p->ctx);
}

static void test_failed_call_enqueues_nothing(void **state)
{
    (void)state;
    problem p;
    problem_make(&p, 5);
    g_launches = 0;
    g_fail_probs_build = 1;
    const facl_status st = problem_run(&p);
    g_fail_probs_build = 0;
    assert_int_equal(st, FACL_ERROR_BUILD_FAILED);
    assert_int_equal(clFinish(facl_context_queue(p.ctx)), CL_SUCCESS);
    if (g_launches != 0) fail_msg("a failed call launched %d kernel(s)", g_launches);
    float out[SQ * D];
    assert_int_equal(clEnqueueReadBuffer(facl_context_queue(p.ctx), p.out, CL_TRUE, 0, sizeof out,
                                         out, 0, NULL, NULL),
                     CL_SUCCESS);
    const unsigned char *bytes = (const unsigned char *)out;
    for (size_t i = 0; i < sizeof out; ++i)
        if (bytes[i] != 0xFF) fail_msg("out byte %zu was written by a failed call", i);
    /* The same call without the sabotage works: the failure was the build's alone. */
    assert_int_equal(problem_run(&p), FACL_SUCCESS);
    assert_int_equal(g_launches, 2);
    problem_free(&p);
}

static void test_no_zero_sized_launch(void **state)
{
    (void)state;
    problem p;
    problem_make(&p, 0);
    g_launches = g_zero_sized = 0;
    assert_int_equal(problem_run(&p), FACL_SUCCESS);
    assert_int_equal(clFinish(facl_context_queue(p.ctx)), CL_SUCCESS);
    assert_int_equal(g_zero_sized, 0);
    assert_int_equal(g_launches, 1); /* the forward kernel: out 0 and lse +inf */
    float out[SQ * D], lse[SQ];
    cl_command_queue queue = facl_context_queue(p.ctx);
    assert_int_equal(clEnqueueReadBuffer(queue, p.out, CL_TRUE, 0, sizeof out, out, 0, NULL, NULL),
                     CL_SUCCESS);
    assert_int_equal(clEnqueueReadBuffer(queue, p.lse, CL_TRUE, 0, sizeof lse, lse, 0, NULL, NULL),
                     CL_SUCCESS);
    for (int i = 0; i < SQ * D; ++i) assert_true(out[i] == 0.0f);
    for (int i = 0; i < SQ; ++i) assert_true(lse[i] > 3.0e38f); /* +inf */
    problem_free(&p);
}

/* q = k = v = one value in every element: every row's output is that value. */
static void expect_out_equals_inputs(problem *p)
{
    float out[SQ * D], in;
    cl_command_queue queue = facl_context_queue(p->ctx);
    assert_int_equal(clEnqueueReadBuffer(queue, p->out, CL_TRUE, 0, sizeof out, out, 0, NULL, NULL),
                     CL_SUCCESS);
    assert_int_equal(clEnqueueReadBuffer(queue, p->q, CL_TRUE, 0, sizeof in, &in, 0, NULL, NULL),
                     CL_SUCCESS);
    for (int i = 0; i < SQ * D; ++i)
        if (!(out[i] > in * 0.999f && out[i] < in * 1.001f)) fail_msg("out[%d] = %g, not %g", i, out[i], in);
}

static void test_blocked_kernel_group_too_large(void **state)
{
    (void)state;
    problem p;
    problem_make(&p, 5);
    facl_attn_options opts = FACL_ATTN_OPTIONS_INIT;
    assert_int_equal(facl_fwd(p.ctx, NULL, &p.tq, &p.tk, &p.tk, &p.tout, &p.tlse, &opts, 0, NULL, NULL),
                     FACL_SUCCESS);
    assert_string_equal(g_last_kernel, "attn_fwd_blocked"); /* the portable-gpu default */
    assert_int_equal(clFinish(facl_context_queue(p.ctx)), CL_SUCCESS);
    expect_out_equals_inputs(&p);
    /* 4 query rows: 16-row blocks of 64 work-items; a build that takes 32 cannot run it */
    g_group_limit = 32;
    g_over_limit = 0;
    const facl_status st =
        facl_fwd(p.ctx, NULL, &p.tq, &p.tk, &p.tk, &p.tout, &p.tlse, &opts, 0, NULL, NULL);
    g_group_limit = 0;
    assert_int_equal(st, FACL_SUCCESS);
    assert_string_equal(g_last_kernel, "attn_fwd");
    assert_int_equal(g_over_limit, 0);
    assert_int_equal(clFinish(facl_context_queue(p.ctx)), CL_SUCCESS);
    expect_out_equals_inputs(&p);
    problem_free(&p);
}

/* facl_bwd over the problem: dout, out = q; dq in p->out (poisoned); dk, dv = k's view. */
static facl_status bwd_run(problem *p)
{
    return facl_bwd(p->ctx, NULL, &p->tq, &p->tq, &p->tk, &p->tk, &p->tq, &p->tlse, &p->tout,
                    &p->tk, &p->tk, NULL, NULL, 0, NULL, NULL);
}

static void test_backward_launches(void **state)
{
    (void)state;
    problem p;
    problem_make(&p, 0);
    g_launches = g_zero_sized = 0;
    g_fail_bwd_build = 1;
    const facl_status st = bwd_run(&p);
    g_fail_bwd_build = 0;
    assert_int_equal(st, FACL_ERROR_BUILD_FAILED);
    assert_int_equal(clFinish(facl_context_queue(p.ctx)), CL_SUCCESS);
    if (g_launches != 0) fail_msg("a failed backward launched %d kernel(s)", g_launches);
    float dq[SQ * D];
    cl_command_queue queue = facl_context_queue(p.ctx);
    assert_int_equal(clEnqueueReadBuffer(queue, p.out, CL_TRUE, 0, sizeof dq, dq, 0, NULL, NULL),
                     CL_SUCCESS);
    const unsigned char *bytes = (const unsigned char *)dq;
    for (size_t i = 0; i < sizeof dq; ++i)
        if (bytes[i] != 0xFF) fail_msg("dq byte %zu was written by a failed call", i);
    assert_int_equal(bwd_run(&p), FACL_SUCCESS);
    assert_int_equal(clFinish(queue), CL_SUCCESS);
    assert_int_equal(g_launches, 3); /* D, dq, dk/dv */
    assert_int_equal(g_zero_sized, 0);
    assert_int_equal(clEnqueueReadBuffer(queue, p.out, CL_TRUE, 0, sizeof dq, dq, 0, NULL, NULL),
                     CL_SUCCESS);
    for (int i = 0; i < SQ * D; ++i) assert_true(dq[i] == 0.0f); /* no key: dq = 0 */
    problem_free(&p);
}

/* A decode over the problem's k and v as a dense cache holding all its keys. */
static facl_status decode_run(problem *p)
{
    const int64_t qs[4] = {1, 1, HEADS, D}, ls[3] = {1, HEADS, 1};
    facl_tensor q = facl_tensor_contiguous(p->q, FACL_DTYPE_F32, 4, qs);
    facl_tensor out = facl_tensor_contiguous(p->out, FACL_DTYPE_F32, 4, qs);
    facl_tensor lse = facl_tensor_contiguous(p->lse, FACL_DTYPE_F32, 3, ls);
    facl_kvcache_args args = FACL_KVCACHE_ARGS_INIT;
    args.cache_seqlens_value = (int32_t)p->tk.shape[1];
    return facl_fwd_kvcache(p->ctx, NULL, &q, &p->tk, &p->tk, &args, &out, &lse, NULL, 0, NULL,
                            NULL);
}

static void test_kernel_objects_kept_and_released(void **state)
{
    (void)state;
    problem p;
    problem_make(&p, 5);
    g_kernels_made = g_kernels_released = 0;
    for (int i = 0; i < 3; ++i) assert_int_equal(problem_run(&p), FACL_SUCCESS);
    assert_int_equal(g_kernels_made, 2); /* the forward kernel and attn_probs */
    assert_int_equal(clFinish(facl_context_queue(p.ctx)), CL_SUCCESS);
    expect_out_equals_inputs(&p);
    for (int i = 0; i < 3; ++i) assert_int_equal(decode_run(&p), FACL_SUCCESS);
    assert_int_equal(g_kernels_made, 3); /* and attn_cache */
    for (int i = 0; i < 3; ++i) assert_int_equal(bwd_run(&p), FACL_SUCCESS);
    assert_int_equal(g_kernels_made, 6); /* and the backward's three */
    assert_int_equal(clFinish(facl_context_queue(p.ctx)), CL_SUCCESS);
    assert_int_equal(g_kernels_released, 0);
    problem_free(&p);
    assert_int_equal(g_kernels_released, g_kernels_made);
}

/* out still all 0xFF bytes. */
static void expect_out_poisoned(problem *p, const char *what)
{
    unsigned char out[SQ * D * 4];
    assert_int_equal(clEnqueueReadBuffer(facl_context_queue(p->ctx), p->out, CL_TRUE, 0,
                                         sizeof out, out, 0, NULL, NULL),
                     CL_SUCCESS);
    for (size_t i = 0; i < sizeof out; ++i)
        if (out[i] != 0xFF) fail_msg("out byte %zu was written by %s", i, what);
}

static void test_refused_argument_enqueues_nothing(void **state)
{
    (void)state;
    problem p;
    problem_make(&p, 5);
    cl_command_queue queue = facl_context_queue(p.ctx);
    assert_int_equal(problem_run(&p), FACL_SUCCESS); /* the kernels exist, arguments set */
    const unsigned char poison = 0xFF;
    assert_int_equal(clEnqueueFillBuffer(queue, p.out, &poison, 1, 0, SQ * D * 4, 0, NULL, NULL),
                     CL_SUCCESS);
    assert_int_equal(clFinish(queue), CL_SUCCESS);
    g_launches = 0;
    /* the forward's second kernel: the forward kernel's arguments were set already */
    snprintf(g_refuse_args_of, sizeof g_refuse_args_of, "attn_probs");
    facl_status st = problem_run(&p);
    g_refuse_args_of[0] = '\0';
    assert_int_not_equal(st, FACL_SUCCESS);
    if (!strstr(facl_last_error(), "clSetKernelArg")) fail_msg("message: %s", facl_last_error());
    /* the backward's last kernel: its first two are not enqueued either */
    snprintf(g_refuse_args_of, sizeof g_refuse_args_of, "attn_bwd_dkdv");
    st = bwd_run(&p);
    g_refuse_args_of[0] = '\0';
    assert_int_not_equal(st, FACL_SUCCESS);
    assert_int_equal(clFinish(queue), CL_SUCCESS);
    if (g_launches != 0) fail_msg("calls refused at their arguments launched %d kernel(s)", g_launches);
    expect_out_poisoned(&p, "a call refused at its arguments");
    /* the same call again sets every argument anew */
    assert_int_equal(problem_run(&p), FACL_SUCCESS);
    assert_int_equal(clFinish(queue), CL_SUCCESS);
    assert_int_equal(g_launches, 2);
    expect_out_equals_inputs(&p);
    problem_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_call_enqueues_nothing),
        cmocka_unit_test(test_no_zero_sized_launch),
        cmocka_unit_test(test_backward_launches),
        cmocka_unit_test(test_blocked_kernel_group_too_large),
        cmocka_unit_test(test_kernel_objects_kept_and_released),
        cmocka_unit_test(test_refused_argument_enqueues_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
