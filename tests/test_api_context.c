/* Contexts: wrapping the application's cl_context, its queues (and those of another
 * device), wait lists and events. */
#define _XOPEN_SOURCE 700
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_api.h"

/* ------------------------------------------------------------------ helpers */

static cl_command_queue new_queue(cl_context c, cl_device_id d)
{
    cl_int err;
    cl_command_queue q = clCreateCommandQueue(c, d, 0, &err);
    if (err != CL_SUCCESS) fail_msg("clCreateCommandQueue: %d", (int)err);
    return q;
}

static cl_int event_status(cl_event ev)
{
    cl_int status = 0;
    assert_int_equal(clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status,
                                    NULL),
                     CL_SUCCESS);
    return status;
}

static cl_uint context_refs(cl_context c)
{
    cl_uint n = 0;
    assert_int_equal(clGetContextInfo(c, CL_CONTEXT_REFERENCE_COUNT, sizeof n, &n, NULL),
                     CL_SUCCESS);
    return n;
}

/* The context's reference count once it settles at `expected`: PoCL drops the references
 * of finished commands' buffers a moment after clFinish returns, so poll up to 2 s. */
static cl_uint settled_context_refs(cl_context c, cl_uint expected)
{
    cl_uint n = context_refs(c);
    for (int i = 0; i < 200 && n != expected; ++i) {
        const struct timespec tick = {0, 10 * 1000 * 1000};
        nanosleep(&tick, NULL);
        n = context_refs(c);
    }
    return n;
}

static cl_uint device_refs(cl_device_id d)
{
    cl_uint n = 0;
    assert_int_equal(clGetDeviceInfo(d, CL_DEVICE_REFERENCE_COUNT, sizeof n, &n, NULL), CL_SUCCESS);
    return n;
}

/* Two devices that one cl_context can hold: two devices of the selected device's
 * platform, else the selected device split in two. Each candidate pair is kept only if a
 * context made of both reports both (PoCL 3.1 reports a context of sub-devices as one
 * context of their root device, so main() asks PoCL for two pthread devices instead). */
static int pair_in_one_context(const cl_device_id pair[2])
{
    cl_int err;
    cl_context c = clCreateContext(NULL, 2, pair, NULL, NULL, &err);
    if (err != CL_SUCCESS) return 0;
    cl_uint n = 0;
    cl_device_id listed[2] = {NULL, NULL};
    int ok = clGetContextInfo(c, CL_CONTEXT_NUM_DEVICES, sizeof n, &n, NULL) == CL_SUCCESS &&
             n == 2 &&
             clGetContextInfo(c, CL_CONTEXT_DEVICES, sizeof listed, listed, NULL) == CL_SUCCESS &&
             ((listed[0] == pair[0] && listed[1] == pair[1]) ||
              (listed[0] == pair[1] && listed[1] == pair[0]));
    clReleaseContext(c);
    return ok;
}

static int two_devices(cl_device_id devs[2])
{
    cl_device_id root;
    if (facl_select_device(NULL, &root) != FACL_SUCCESS)
        fail_msg("facl_select_device: %s", facl_last_error());
    cl_platform_id platform;
    assert_int_equal(clGetDeviceInfo(root, CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL),
                     CL_SUCCESS);
    cl_uint n = 0;
    cl_device_id all[2];
    if (clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 2, all, &n) == CL_SUCCESS && n >= 2 &&
        pair_in_one_context(all)) {
        devs[0] = all[0];
        devs[1] = all[1];
        return 1; /* root devices: release is a no-op */
    }
    const cl_device_partition_property props[3] = {CL_DEVICE_PARTITION_EQUALLY, 1, 0};
    if (clCreateSubDevices(root, props, 0, NULL, &n) != CL_SUCCESS || n < 2) return 0;
    cl_device_id *subs = calloc(n, sizeof *subs);
    assert_non_null(subs);
    assert_int_equal(clCreateSubDevices(root, props, n, subs, NULL), CL_SUCCESS);
    all[0] = subs[0];
    all[1] = subs[1];
    for (cl_uint i = 2; i < n; ++i) clReleaseDevice(subs[i]);
    free(subs);
    if (pair_in_one_context(all)) {
        devs[0] = all[0];
        devs[1] = all[1];
        return 1;
    }
    clReleaseDevice(all[0]);
    clReleaseDevice(all[1]);
    return 0;
}

/* Completes a user event from another thread after `delay` seconds unless the test did it
 * first: a watchdog against a call that blocks on its wait list, or a late producer. */
typedef struct completer {
    cl_event event;
    double delay;
    atomic_int claimed, fired;
    pthread_t thread;
} completer;

static void *completer_main(void *arg)
{
    completer *c = arg;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (atomic_load(&c->claimed)) return NULL;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - start.tv_sec) + 1e-9 * (double)(now.tv_nsec - start.tv_nsec) >=
            c->delay)
            break;
        const struct timespec tick = {0, 5 * 1000 * 1000};
        nanosleep(&tick, NULL);
    }
    if (atomic_exchange(&c->claimed, 1) == 0) {
        atomic_store(&c->fired, 1);
        clSetUserEventStatus(c->event, CL_COMPLETE);
    }
    return NULL;
}

static void completer_start(completer *c, cl_event event, double delay)
{
    c->event = event;
    c->delay = delay;
    atomic_init(&c->claimed, 0);
    atomic_init(&c->fired, 0);
    assert_int_equal(pthread_create(&c->thread, NULL, completer_main, c), 0);
}

/* The test completes the event itself (if the thread has not). Returns whether the
 * thread had to. */
static int completer_finish(completer *c)
{
    if (atomic_exchange(&c->claimed, 1) == 0)
        assert_int_equal(clSetUserEventStatus(c->event, CL_COMPLETE), CL_SUCCESS);
    pthread_join(c->thread, NULL);
    return atomic_load(&c->fired);
}

/* ------------------------------------------------------------------ wrap */

/* NULL context, NULL device, NULL out, and a device that is not in the context. */
static void test_wrap_rejects(void **state)
{
    (void)state;
    cl_device_id dev;
    assert_int_equal(facl_select_device(NULL, &dev), FACL_SUCCESS);
    cl_int err;
    cl_context c = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    facl_context *ctx = (facl_context *)&err; /* must be overwritten with NULL */
    assert_int_equal(facl_context_wrap(NULL, dev, &ctx), FACL_ERROR_NULL_ARGUMENT);
    assert_error_names("cl_ctx");
    assert_null(ctx);
    ctx = (facl_context *)&err;
    assert_int_equal(facl_context_wrap(c, NULL, &ctx), FACL_ERROR_NULL_ARGUMENT);
    assert_error_names("device");
    assert_null(ctx);
    assert_int_equal(facl_context_wrap(c, dev, NULL), FACL_ERROR_NULL_ARGUMENT);
    assert_error_names("out");
    const facl_context_config config = FACL_CONTEXT_CONFIG_INIT;
    ctx = (facl_context *)&err;
    assert_int_equal(facl_context_wrap_with_config(NULL, dev, &config, &ctx),
                     FACL_ERROR_NULL_ARGUMENT);
    assert_null(ctx);
    assert_int_equal(context_refs(c), 1);
    clReleaseContext(c);

    cl_device_id devs[2];
    if (!two_devices(devs)) {
        print_message("no two devices share a cl_context here: foreign-device case skipped\n");
        skip();
    }
    c = clCreateContext(NULL, 1, &devs[0], NULL, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    ctx = (facl_context *)&err;
    assert_int_equal(facl_context_wrap(c, devs[1], &ctx), FACL_ERROR_INVALID_CONTEXT);
    assert_error_names("device");
    assert_null(ctx);
    ctx = (facl_context *)&err;
    assert_int_equal(facl_context_wrap_with_config(c, devs[1], &config, &ctx),
                     FACL_ERROR_INVALID_CONTEXT);
    assert_null(ctx);
    /* Nothing retained by the failed calls. */
    assert_int_equal(context_refs(c), 1);
    assert_int_equal(device_refs(devs[1]), 1);
    clReleaseContext(c);
    clReleaseDevice(devs[0]);
    clReleaseDevice(devs[1]);
}

/* The application's own cl_context and queue: a correct result, events on its queue, and
 * every reference given back at free. A queue of another cl_context is refused. */
static void test_wrap_caller_queue(void **state)
{
    (void)state;
    cl_device_id dev;
    assert_int_equal(facl_select_device(NULL, &dev), FACL_SUCCESS);
    cl_int err;
    cl_context c = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    cl_command_queue queue = new_queue(c, dev);
    /* Whether a queue holds a reference to its context is the implementation's business
     * (PoCL: yes, NVIDIA: no): what counts is that facl leaves what it found. */
    const cl_uint refs_before = context_refs(c);
    log_record log;
    log_record_init(&log);
    facl_context_config config = FACL_CONTEXT_CONFIG_INIT;
    config.log = record_log;
    config.log_user = &log;
    facl_context *ctx = NULL;
    if (facl_context_wrap_with_config(c, dev, &config, &ctx) != FACL_SUCCESS)
        fail_msg("facl_context_wrap_with_config: %s", facl_last_error());
    assert_ptr_equal(facl_context_cl_context(ctx), c);
    assert_ptr_equal(facl_context_device(ctx), dev);
    assert_non_null(facl_context_queue(ctx));
    assert_int_equal(log.count[FACL_LOG_KERNEL_PATH], 1);

    tiny t;
    tiny_init(&t, c, 11);
    tiny_poison(&t, queue);
    cl_event done = NULL;
    if (tiny_run(ctx, queue, &t, 0, NULL, &done) != FACL_SUCCESS)
        fail_msg("facl_fwd on the caller's queue: %s", facl_last_error());
    assert_non_null(done);
    cl_command_queue event_queue = NULL;
    assert_int_equal(clGetEventInfo(done, CL_EVENT_COMMAND_QUEUE, sizeof event_queue, &event_queue,
                                    NULL),
                     CL_SUCCESS);
    assert_ptr_equal(event_queue, queue); /* enqueued where the caller asked */
    assert_int_equal(clWaitForEvents(1, &done), CL_SUCCESS);
    clReleaseEvent(done);
    const tiny_expect e = TINY_EXPECT_DEFAULT;
    tiny_check(&t, queue, &e);

    /* A queue of another cl_context of the same device. */
    cl_context other = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    cl_command_queue other_queue = new_queue(other, dev);
    tiny_poison(&t, queue);
    assert_int_equal(tiny_run(ctx, other_queue, &t, 0, NULL, NULL), FACL_ERROR_INVALID_CONTEXT);
    assert_error_names("queue");
    assert_true(tiny_still_poisoned(&t, queue));
    clReleaseCommandQueue(other_queue);
    clReleaseContext(other);

    /* The plain wrap on the same cl_context works too, alongside the first. */
    facl_context *ctx2 = NULL;
    if (facl_context_wrap(c, dev, &ctx2) != FACL_SUCCESS)
        fail_msg("facl_context_wrap: %s", facl_last_error());
    if (tiny_run(ctx2, queue, &t, 0, NULL, NULL) != FACL_SUCCESS)
        fail_msg("facl_fwd on the second wrap: %s", facl_last_error());
    tiny_check(&t, queue, &e);
    facl_context_free(ctx2);

    tiny_free(&t);
    assert_int_equal(clFinish(queue), CL_SUCCESS);
    facl_context_free(ctx);
    assert_int_equal(settled_context_refs(c, refs_before), refs_before); /* nothing of facl's left */
    clReleaseCommandQueue(queue);
    clReleaseContext(c);
    pthread_mutex_destroy(&log.lock);
}

/* A cl_context with two devices, wrapped for the first: the first device's queue gives
 * the right result, the other device's queue is refused and nothing is written. */
static void test_wrap_multi_device_queue(void **state)
{
    (void)state;
    cl_device_id devs[2];
    if (!two_devices(devs)) {
        print_message("no two devices share a cl_context here: test skipped\n");
        skip();
    }
    cl_int err;
    cl_context c = clCreateContext(NULL, 2, devs, NULL, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    cl_command_queue q0 = new_queue(c, devs[0]), q1 = new_queue(c, devs[1]);
    facl_context *ctx = NULL;
    if (facl_context_wrap(c, devs[0], &ctx) != FACL_SUCCESS)
        fail_msg("facl_context_wrap: %s", facl_last_error());
    tiny t;
    tiny_init(&t, c, 12);
    const tiny_expect e = TINY_EXPECT_DEFAULT;

    tiny_poison(&t, q0);
    facl_status st = tiny_run(ctx, q1, &t, 0, NULL, NULL);
    if (st != FACL_ERROR_INVALID_CONTEXT)
        fail_msg("a queue of the context's other device: got %s (%s), expected "
                 "FACL_ERROR_INVALID_CONTEXT",
                 facl_status_string(st), facl_last_error());
    assert_error_names("queue");
    assert_int_equal(clFinish(q1), CL_SUCCESS);
    assert_true(tiny_still_poisoned(&t, q0));

    if (tiny_run(ctx, q0, &t, 0, NULL, NULL) != FACL_SUCCESS)
        fail_msg("facl_fwd on the wrapped device's queue: %s", facl_last_error());
    tiny_check(&t, q0, &e);
    assert_int_equal(clFinish(q0), CL_SUCCESS);
    facl_context_free(ctx);

    /* The same cl_context wrapped for its second device: that device's queue works. */
    if (facl_context_wrap(c, devs[1], &ctx) != FACL_SUCCESS)
        fail_msg("facl_context_wrap (second device): %s", facl_last_error());
    tiny_poison(&t, q1);
    assert_int_equal(tiny_run(ctx, q0, &t, 0, NULL, NULL), FACL_ERROR_INVALID_CONTEXT);
    assert_error_names("queue");
    if (tiny_run(ctx, q1, &t, 0, NULL, NULL) != FACL_SUCCESS)
        fail_msg("facl_fwd on the second device's queue: %s", facl_last_error());
    tiny_check(&t, q1, &e);
    assert_int_equal(clFinish(q1), CL_SUCCESS);
    facl_context_free(ctx);

    tiny_free(&t);
    clReleaseCommandQueue(q0);
    clReleaseCommandQueue(q1);
    assert_int_equal(settled_context_refs(c, 1), 1);
    clReleaseContext(c);
    assert_int_equal(device_refs(devs[0]), 1);
    assert_int_equal(device_refs(devs[1]), 1);
    clReleaseDevice(devs[0]);
    clReleaseDevice(devs[1]);
}

/* ------------------------------------------------------------------ wait lists */

/* A dense call waits for its wait list without blocking the caller: its event stays
 * pending and the output poisoned until the user event completes. */
static void test_wait_list_user_event(void **state)
{
    (void)state;
    facl_context *ctx = api_context();
    cl_context c = facl_context_cl_context(ctx);
    cl_command_queue reader = new_queue(c, facl_context_device(ctx));
    tiny t;
    tiny_init(&t, c, 13);
    tiny_poison(&t, reader);
    /* Build the variant first, so that the call below only enqueues. */
    assert_int_equal(tiny_run(ctx, NULL, &t, 0, NULL, NULL), FACL_SUCCESS);
    assert_int_equal(clFinish(facl_context_queue(ctx)), CL_SUCCESS);
    tiny_poison(&t, reader);

    cl_int err;
    cl_event user = clCreateUserEvent(c, &err);
    assert_int_equal(err, CL_SUCCESS);
    completer watchdog;
    completer_start(&watchdog, user, 60.0);
    cl_event done = NULL;
    const facl_status st = tiny_run(ctx, NULL, &t, 1, &user, &done);
    const int returned_before_watchdog = !atomic_load(&watchdog.fired);
    cl_int status_pending = CL_COMPLETE;
    int poisoned_pending = 0;
    if (st == FACL_SUCCESS && returned_before_watchdog) {
        assert_non_null(done);
        clFlush(facl_context_queue(ctx));
        const struct timespec pause = {0, 200 * 1000 * 1000};
        nanosleep(&pause, NULL); /* room for a kernel that ignored the wait list to run */
        status_pending = event_status(done);
        poisoned_pending = tiny_still_poisoned(&t, reader);
    }
    completer_finish(&watchdog);
    if (st != FACL_SUCCESS) fail_msg("facl_fwd with a wait list: %s", facl_last_error());
    if (!returned_before_watchdog) fail_msg("facl_fwd blocked until its wait list completed");
    assert_true(status_pending > CL_COMPLETE); /* queued, submitted or running: not done */
    assert_true(poisoned_pending);
    assert_int_equal(clWaitForEvents(1, &done), CL_SUCCESS);
    assert_int_equal(event_status(done), CL_COMPLETE);
    clReleaseEvent(done);
    clReleaseEvent(user);
    const tiny_expect e = TINY_EXPECT_DEFAULT;
    tiny_check(&t, reader, &e);
    tiny_free(&t);
    clReleaseCommandQueue(reader);
    facl_context_free(ctx);
}

/* Varlen views over the tiny problem's buffers: q (B*SQ, HQ, D), k and v (B*SK, HKV, D),
 * lse (HQ, B*SQ). */
typedef struct varlen_views {
    facl_tensor q, k, v, out, lse, cu_q, cu_k;
} varlen_views;

static varlen_views varlen_of(const tiny *t, cl_mem cu)
{
    varlen_views w;
    const int64_t qs[3] = {T_B * T_SQ, T_HQ, T_D}, ks[3] = {T_B * T_SK, T_HKV, T_D},
                  ls[2] = {T_HQ, T_B * T_SQ}, cs[1] = {T_B + 1};
    w.q = facl_tensor_contiguous(t->bq, FACL_DTYPE_F32, 3, qs);
    w.k = facl_tensor_contiguous(t->bk, FACL_DTYPE_F32, 3, ks);
    w.v = facl_tensor_contiguous(t->bv, FACL_DTYPE_F32, 3, ks);
    w.out = facl_tensor_contiguous(t->bout, FACL_DTYPE_F32, 3, qs);
    w.lse = facl_tensor_contiguous(t->blse, FACL_DTYPE_F32, 2, ls);
    w.cu_q = facl_tensor_contiguous(cu, FACL_DTYPE_I32, 1, cs);
    w.cu_k = w.cu_q;
    w.cu_k.offset = T_B + 1;
    return w;
}

/* Varlen calls: trusted ones do not block on the wait list; untrusted ones read the
 * prefix sums only after it (a producer writes them behind a user event). */
static void test_wait_list_varlen(void **state)
{
    (void)state;
    facl_context *ctx = api_context();
    cl_context c = facl_context_cl_context(ctx);
    cl_command_queue producer = new_queue(c, facl_context_device(ctx));
    tiny t;
    tiny_init(&t, c, 14);
    static const int32_t good[2 * (T_B + 1)] = {0, T_SQ, 2 * T_SQ, 0, T_SK, 2 * T_SK};
    static const int32_t stale[2 * (T_B + 1)] = {7, 7, 7, 7, 7, 7}; /* invalid prefix sums */
    cl_int err;
    cl_mem cu = clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof good,
                               (void *)good, &err);
    assert_int_equal(err, CL_SUCCESS);
    const varlen_views w = varlen_of(&t, cu);
    facl_attn_options opts = FACL_ATTN_OPTIONS_INIT;
    opts.trust_cu_seqlens = 1;
    tiny_expect e = TINY_EXPECT_DEFAULT;
    e.varlen_lse = 1;

    /* Trusted: compile first, then a call behind a pending user event. */
    tiny_poison(&t, producer);
    if (facl_varlen_fwd(ctx, NULL, &w.q, &w.k, &w.v, &w.cu_q, &w.cu_k, T_SQ, T_SK, &w.out, &w.lse,
                        &opts, 0, NULL, NULL) != FACL_SUCCESS)
        fail_msg("facl_varlen_fwd: %s", facl_last_error());
    assert_int_equal(clFinish(facl_context_queue(ctx)), CL_SUCCESS);
    tiny_check(&t, producer, &e);
    tiny_poison(&t, producer);
    cl_event user = clCreateUserEvent(c, &err);
    assert_int_equal(err, CL_SUCCESS);
    completer watchdog;
    completer_start(&watchdog, user, 60.0);
    cl_event done = NULL;
    facl_status st = facl_varlen_fwd(ctx, NULL, &w.q, &w.k, &w.v, &w.cu_q, &w.cu_k, T_SQ, T_SK,
                                     &w.out, &w.lse, &opts, 1, &user, &done);
    const int returned_before_watchdog = !atomic_load(&watchdog.fired);
    cl_int status_pending = CL_COMPLETE;
    if (st == FACL_SUCCESS && returned_before_watchdog) status_pending = event_status(done);
    completer_finish(&watchdog);
    if (st != FACL_SUCCESS) fail_msg("trusted facl_varlen_fwd with a wait list: %s", facl_last_error());
    if (!returned_before_watchdog)
        fail_msg("trusted facl_varlen_fwd blocked until its wait list completed");
    assert_true(status_pending > CL_COMPLETE);
    assert_int_equal(clWaitForEvents(1, &done), CL_SUCCESS);
    clReleaseEvent(done);
    clReleaseEvent(user);
    tiny_check(&t, producer, &e);

    /* Untrusted: the sums in the buffer are stale (invalid) until a write on another
     * queue, gated by a user event, lands; the call's wait list holds that write. */
    assert_int_equal(clEnqueueWriteBuffer(producer, cu, CL_TRUE, 0, sizeof stale, stale, 0, NULL,
                                          NULL),
                     CL_SUCCESS);
    tiny_poison(&t, producer);
    user = clCreateUserEvent(c, &err);
    assert_int_equal(err, CL_SUCCESS);
    cl_event written = NULL;
    assert_int_equal(clEnqueueWriteBuffer(producer, cu, CL_FALSE, 0, sizeof good, good, 1, &user,
                                          &written),
                     CL_SUCCESS);
    assert_int_equal(clFlush(producer), CL_SUCCESS);
    completer late;
    completer_start(&late, user, 0.3);
    opts.trust_cu_seqlens = 0;
    st = facl_varlen_fwd(ctx, NULL, &w.q, &w.k, &w.v, &w.cu_q, &w.cu_k, T_SQ, T_SK, &w.out, &w.lse,
                         &opts, 1, &written, NULL);
    const int fired = completer_finish(&late);
    if (st != FACL_SUCCESS)
        fail_msg("untrusted facl_varlen_fwd read the prefix sums before its wait list: %s",
                 facl_last_error());
    assert_true(fired); /* it did wait for the producer */
    assert_int_equal(clFinish(facl_context_queue(ctx)), CL_SUCCESS);
    tiny_check(&t, producer, &e);
    clReleaseEvent(written);
    clReleaseEvent(user);
    clReleaseMemObject(cu);
    tiny_free(&t);
    clReleaseCommandQueue(producer);
    facl_context_free(ctx);
}

/* Calls with nothing to compute (batch 0, seqlen_q 0) still honour the wait list and
 * hand back an event that completes after it. */
static void test_empty_call_event(void **state)
{
    (void)state;
    facl_context *ctx = api_context();
    cl_context c = facl_context_cl_context(ctx);
    cl_int err;
    cl_mem buf = clCreateBuffer(c, CL_MEM_READ_WRITE, 4096, NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    const int64_t shapes[2][2][4] = {
        {{0, 4, 2, 8}, {0, 6, 1, 8}}, /* batch 0 */
        {{2, 0, 2, 8}, {2, 6, 1, 8}}, /* seqlen_q 0 */
    };
    for (int s = 0; s < 2; ++s) {
        const facl_tensor q = facl_tensor_contiguous(buf, FACL_DTYPE_F32, 4, shapes[s][0]);
        const facl_tensor k = facl_tensor_contiguous(buf, FACL_DTYPE_F32, 4, shapes[s][1]);
        const int64_t ls[3] = {shapes[s][0][0], 2, shapes[s][0][1]};
        const facl_tensor lse = facl_tensor_contiguous(buf, FACL_DTYPE_F32, 3, ls);
        cl_event user = clCreateUserEvent(c, &err);
        assert_int_equal(err, CL_SUCCESS);
        cl_event done = NULL;
        if (facl_fwd(ctx, NULL, &q, &k, &k, &q, &lse, NULL, 1, &user, &done) != FACL_SUCCESS)
            fail_msg("empty call %d: %s", s, facl_last_error());
        assert_non_null(done);
        clFlush(facl_context_queue(ctx));
        const struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
        assert_true(event_status(done) > CL_COMPLETE); /* waits for the user event */
        assert_int_equal(clSetUserEventStatus(user, CL_COMPLETE), CL_SUCCESS);
        assert_int_equal(clWaitForEvents(1, &done), CL_SUCCESS);
        assert_int_equal(event_status(done), CL_COMPLETE);
        clReleaseEvent(done);
        clReleaseEvent(user);
        /* Without a wait list: an event that completes. */
        done = NULL;
        assert_int_equal(facl_fwd(ctx, NULL, &q, &k, &k, &q, NULL, NULL, 0, NULL, &done),
                         FACL_SUCCESS);
        assert_non_null(done);
        assert_int_equal(clWaitForEvents(1, &done), CL_SUCCESS);
        clReleaseEvent(done);
    }
    clReleaseMemObject(buf);
    facl_context_free(ctx);
}

int run_context_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrap_rejects),
        cmocka_unit_test(test_wrap_caller_queue),
        cmocka_unit_test(test_wrap_multi_device_queue),
        cmocka_unit_test(test_wait_list_user_event),
        cmocka_unit_test(test_wait_list_varlen),
        cmocka_unit_test(test_empty_call_event),
    };
    return cmocka_run_group_tests_name("api: contexts", tests, NULL, NULL);
}
