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
 *                   disk cache (a failure there is no thread problem);
 *   shared_kernels: 8 threads on one context calling back to back through the same
 *                   kernel objects (below, "Shared kernel objects").
 *
 * In the first two, each thread draws its own random inputs (seeds differ per thread and call) and owns
 * its buffers. Calls rotate over six kernel programs (dtype, head dim, varlen, softcap,
 * ALiBi, dropout) and, within them, over layouts (dense, qkv-packed, kv-packed and the
 * varlen forms), causal on/off, both mask alignments, windows (small and wider than the
 * sequences), a non-default scale, GQA, empty varlen sequences, trust_cu_seqlens, lse
 * on/off and strided views. Every call is the testkit's run_fwd_case (fresh buffers per
 * call, poisoned outputs checked for stray writes outside the views, inputs checked
 * unchanged): half of them on the thread's own in-order queue with the inputs uploaded
 * and the outputs poisoned asynchronously, those commands' events passed to the call as
 * its wait list (async_inputs); a quarter on the thread's queue with the buffers filled
 * at creation; a quarter on the context's queue (on one_context, shared by all the
 * threads). Every tenth call is followed by an invalid one: facl_last_error() must then
 * hold this thread's message, not another thread's.
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
    BAD_BYTES = 8 * 16 * 4, /* a buffer of bad_call's views */
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

/* Where a call runs: its queue, and how its buffers get their contents. */
typedef enum call_mode { ON_CONTEXT_QUEUE, ON_OWN_QUEUE, ON_OWN_QUEUE_ASYNC, NMODES } call_mode;

static const char *const k_mode_names[NMODES] = {
    "the context's queue", "the thread's queue", "the thread's queue, async uploads"};

typedef struct call_plan {
    fwd_case c;
    int32_t lens_q[MAX_B], lens_k[MAX_B];
    call_mode mode;
} call_plan;

/* Call `i` of thread `tid`: the variant and the rotations follow (tid, i); sizes and
 * values come from the thread's generator. `queue`: the thread's own (NULL: every call
 * on the context's queue). */
static void plan_call(int tid, int i, testkit_rng *rng, cl_command_queue queue, call_plan *p)
{
    const variant *v = &k_variants[(tid + i) % NVARIANTS];
    const int r = i / NVARIANTS + 5 * tid; /* rotation within the variant */
    fwd_case *c = &p->c;
    facl_attn_options o = FACL_ATTN_OPTIONS_INIT;

    memset(p, 0, sizeof *p);
    if (queue && (i + r) % 2)
        p->mode = ON_OWN_QUEUE_ASYNC;
    else if (queue && (i / 2 + tid) % 2)
        p->mode = ON_OWN_QUEUE;
    else
        p->mode = ON_CONTEXT_QUEUE;
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
    c->strided = (r / 2) % 2;
    c->queue = p->mode == ON_CONTEXT_QUEUE ? NULL : queue;
    c->async_inputs = p->mode == ON_OWN_QUEUE_ASYNC;
    c->seed = ((uint64_t)tid << 32) ^ ((uint64_t)i * 0x9E3779B97F4A7C15ull) ^ 0x7468726561ull;
}

/* ------------------------------------------------------------------ a thread's own queue */

/* A worker's in-order queue, and four small buffers that serve its invalid calls as
 * handles (the cases allocate their own). */
typedef struct thread_res {
    cl_command_queue queue;
    cl_mem mem[4]; /* q, k, v, out of bad_call */
} thread_res;

static void res_release(thread_res *tr)
{
    for (int i = 0; i < 4; i++)
        if (tr->mem[i]) {
            clReleaseMemObject(tr->mem[i]);
            tr->mem[i] = NULL;
        }
    if (tr->queue) {
        clReleaseCommandQueue(tr->queue);
        tr->queue = NULL;
    }
}

static int res_create(facl_context *ctx, thread_res *tr, char *err, size_t errsize)
{
    cl_context cl = facl_context_cl_context(ctx);
    cl_int e = CL_SUCCESS;
    memset(tr, 0, sizeof *tr);
    tr->queue = clCreateCommandQueue(cl, facl_context_device(ctx), 0, &e);
    if (e != CL_SUCCESS) {
        snprintf(err, errsize, "clCreateCommandQueue: %d", (int)e);
        return 0;
    }
    for (int i = 0; i < 4; i++) {
        tr->mem[i] = clCreateBuffer(cl, CL_MEM_READ_WRITE, BAD_BYTES, NULL, &e);
        if (e != CL_SUCCESS) {
            tr->mem[i] = NULL;
            snprintf(err, errsize, "clCreateBuffer(%d bytes): %d", BAD_BYTES, (int)e);
            res_release(tr);
            return 0;
        }
    }
    return 1;
}

static double now_seconds(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------ per-thread errors */

/* An invalid call whose message facl_last_error() must report on this thread: kind 0 a
 * NULL q, kind 1 k in another dtype than q. Needs tr's buffers only as handles. */
static facl_status bad_call(facl_context *ctx, const thread_res *tr, int kind)
{
    const int64_t s[4] = {1, 8, 1, 16};
    facl_tensor q = facl_tensor_contiguous(tr->mem[0], FACL_DTYPE_F32, 4, s);
    facl_tensor k =
        facl_tensor_contiguous(tr->mem[1], kind ? FACL_DTYPE_F16 : FACL_DTYPE_F32, 4, s);
    facl_tensor v = facl_tensor_contiguous(tr->mem[2], FACL_DTYPE_F32, 4, s);
    facl_tensor out = facl_tensor_contiguous(tr->mem[3], FACL_DTYPE_F32, 4, s);
    return facl_fwd(ctx, tr->queue, kind ? &q : NULL, &k, &v, &out, NULL, NULL, 0, NULL, NULL);
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

/* A worker's failures: how many, and the first one's message. */
typedef struct failure_log {
    int count;
    char first[2048];
} failure_log;

static void record_failure(failure_log *log, const char *fmt, ...)
{
    va_list ap;
    if (log->count++ == 0) {
        va_start(ap, fmt);
        vsnprintf(log->first, sizeof log->first, fmt, ap);
        va_end(ap);
    }
}

typedef struct worker {
    int tid, ncalls;
    facl_context *shared; /* NULL: the worker makes its own context */
    start_gate *start;
    /* results */
    int done, per_mode[NMODES];
    facl_cache_stats stats; /* of its own context */
    failure_log failures;
} worker;

static pthread_mutex_t g_context_queue_turn = PTHREAD_MUTEX_INITIALIZER;

static void *worker_main(void *arg)
{
    worker *w = arg;
    facl_context *ctx = w->shared;
    thread_res tr;
    testkit_rng rng;
    char err[256];

    memset(&tr, 0, sizeof tr);
    pthread_mutex_lock(&w->start->lock);
    while (!w->start->open)
        pthread_cond_wait(&w->start->cond, &w->start->lock);
    pthread_mutex_unlock(&w->start->lock);
    if (w->start->cancelled)
        return NULL;
    if (!ctx) {
        facl_status st = facl_context_create(NULL, &ctx);
        if (st != FACL_SUCCESS) {
            record_failure(&w->failures, "thread %d: facl_context_create: %s: %s", w->tid,
                           facl_status_string(st), facl_last_error());
            ctx = NULL;
            goto out;
        }
    }
    if (!res_create(ctx, &tr, err, sizeof err)) {
        record_failure(&w->failures, "thread %d: %s", w->tid, err);
        goto out;
    }
    testkit_rng_seed(&rng, 1000003u * (uint64_t)(w->tid + 1));

    for (int i = 0; i < w->ncalls; i++) {
        call_plan p;
        case_result r;
        plan_call(w->tid, i, &rng, tr.queue, &p);
        /* The threads of the shared context take turns on its queue: the case runner's
         * own uploads and reads on that queue would otherwise run concurrently with other
         * threads' enqueues there, which NVIDIA's driver does not survive (docs/THREADS.md;
         * the library serialises only its own enqueues). Calls on the threads' own queues,
         * the other 600 of 800, run fully concurrently. */
        const int turns = w->shared && p.mode == ON_CONTEXT_QUEUE;
        if (turns) pthread_mutex_lock(&g_context_queue_turn);
        run_fwd_case(ctx, &p.c, &r);
        if (turns) pthread_mutex_unlock(&g_context_queue_turn);
        w->per_mode[p.mode]++;
        w->done++;
        if (!r.pass) {
            char name[256], res[1400];
            fwd_case_name(&p.c, name, sizeof name);
            case_result_format(&r, res, sizeof res);
            record_failure(&w->failures, "thread %d call %d on %s: %s (seed %#llx)\n%s", w->tid, i,
                           k_mode_names[p.mode], name, (unsigned long long)p.c.seed, res);
        }
        if (i % 10 == 5) { /* an invalid call: this thread's message, not another's */
            const int kind = (w->tid + i) % 2;
            facl_status st = bad_call(ctx, &tr, kind);
            const char *msg = facl_last_error();
            if (st != g_bad_status[kind] || strcmp(msg, g_bad_message[kind]) != 0)
                record_failure(&w->failures, "thread %d call %d: invalid call %d gave %s \"%s\", "
                               "expected %s \"%s\"", w->tid, i, kind, facl_status_string(st),
                               msg, facl_status_string(g_bad_status[kind]), g_bad_message[kind]);
        }
    }
out:
    res_release(&tr);
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
    int started = 0, failures = 0, done = 0, per_mode[NMODES] = {0};
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
        failures += w[t].failures.count;
        done += w[t].done;
        for (int m = 0; m < NMODES; m++)
            per_mode[m] += w[t].per_mode[m];
        if (w[t].failures.count)
            print_message("thread %d: %d failure(s); first:\n%s\n", t, w[t].failures.count,
                          w[t].failures.first);
    }
    print_message("%d threads, %d calls (%d on the context's queue, %d on the threads' own, "
                  "%d of those with async uploads), %.1f s\n", NTHREADS, done,
                  per_mode[ON_CONTEXT_QUEUE], per_mode[ON_OWN_QUEUE] + per_mode[ON_OWN_QUEUE_ASYNC],
                  per_mode[ON_OWN_QUEUE_ASYNC], now_seconds() - t0);
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
        plan_call(0, i, &rng, NULL, &p);
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

/* ------------------------------------------------------------------ shared kernel objects */

/* Shared kernel objects (docs/THREADS.md): a context makes each kernel object
 * once, and every call of every thread sets its arguments on that same object, under the
 * context's enqueue lock, then enqueues it. Here 8 threads, all on one context and each on
 * its own in-order queue, make their calls back to back through the same two programs
 * (one forward variant; one KV-cache decode variant, whose calls alternate between one
 * split and two, so attn_cache and cache_combine), every call with its own shapes,
 * buffers and values, and wait only after a batch of calls; then every output is checked
 * against the float64 reference with the rule of docs/CONTRACT.md. Were a call's enqueue
 * able to take another call's arguments (arguments set outside the lock, or an enqueue
 * after letting it go), some call's outputs would stay poisoned or hold another
 * problem's numbers: with no wait between calls the threads spend most of their time
 * inside the calls, where the arguments are set, so such a race shows here.
 * FACL_TEST_SHARED_ROUNDS=n changes the rounds per thread (default 30). */

enum {
    DEFAULT_ROUNDS = 30,
    BATCH = 6,     /* calls per round, even slots facl_fwd, odd ones facl_fwd_kvcache */
    D = 16,        /* fp32, d 16, 2 query heads over 1 kv head: one program each */
    HQ = 2,
    HKV = 1,
    MAX_SQ = 5,    /* the forward's query rows, 1 .. MAX_SQ */
    MAX_SK = 24,   /* the forward's keys and the cache's capacity */
};

/* One call's buffers: q (MAX_SQ, HQ, D), k and v (MAX_SK, HKV, D), out like q, lse
 * (HQ, MAX_SQ); a call uses a prefix of each as a contiguous batch-1 tensor. */
typedef struct slot {
    cl_mem q, k, v, out, lse;
    int sq, sk, splits; /* this round's problem: sk is the cache's used length for a decode */
    float hq[MAX_SQ * HQ * D], hk[MAX_SK * HKV * D], hv[MAX_SK * HKV * D];
} slot;

typedef struct kernel_worker {
    int tid, rounds;
    facl_context *ctx;
    cl_command_queue queue;
    slot slots[BATCH];
    testkit_rng rng;
    int calls;
    failure_log failures;
} kernel_worker;

static int make_slots(kernel_worker *w)
{
    cl_context cl = facl_context_cl_context(w->ctx);
    const size_t bytes[5] = {sizeof w->slots[0].hq, sizeof w->slots[0].hk, sizeof w->slots[0].hk,
                             sizeof w->slots[0].hq, sizeof(float) * HQ * MAX_SQ};
    for (int s = 0; s < BATCH; s++) {
        cl_mem *all[5] = {&w->slots[s].q, &w->slots[s].k, &w->slots[s].v, &w->slots[s].out,
                          &w->slots[s].lse};
        for (int i = 0; i < 5; i++) {
            cl_int e;
            *all[i] = clCreateBuffer(cl, CL_MEM_READ_WRITE, bytes[i], NULL, &e);
            if (e != CL_SUCCESS) {
                *all[i] = NULL;
                record_failure(&w->failures, "thread %d: clCreateBuffer: %d", w->tid, (int)e);
                return 0;
            }
        }
    }
    return 1;
}

static void release_slots(kernel_worker *w)
{
    for (int s = 0; s < BATCH; s++) {
        cl_mem all[5] = {w->slots[s].q, w->slots[s].k, w->slots[s].v, w->slots[s].out,
                         w->slots[s].lse};
        for (int i = 0; i < 5; i++)
            if (all[i]) clReleaseMemObject(all[i]);
    }
}

/* This round's problem and values of slot s, uploaded, its outputs poisoned (NaN). */
static cl_int fill_slot(kernel_worker *w, int s, int round)
{
    slot *sl = &w->slots[s];
    const int decode = s % 2;
    sl->sq = decode ? 1 : 1 + (w->tid + s + round) % MAX_SQ;
    sl->sk = 1 + (3 * w->tid + 5 * s + round) % MAX_SK;
    sl->splits = decode ? 1 + (round + s / 2) % 2 : 0;
    for (size_t i = 0; i < sizeof sl->hq / sizeof sl->hq[0]; i++)
        sl->hq[i] = (float)testkit_rng_normal(&w->rng);
    for (size_t i = 0; i < sizeof sl->hk / sizeof sl->hk[0]; i++) {
        sl->hk[i] = (float)testkit_rng_normal(&w->rng);
        sl->hv[i] = (float)testkit_rng_normal(&w->rng);
    }
    const unsigned char poison = 0xFF;
    cl_int e = clEnqueueWriteBuffer(w->queue, sl->q, CL_FALSE, 0, sizeof sl->hq, sl->hq, 0, NULL, NULL);
    if (e == CL_SUCCESS)
        e = clEnqueueWriteBuffer(w->queue, sl->k, CL_FALSE, 0, sizeof sl->hk, sl->hk, 0, NULL, NULL);
    if (e == CL_SUCCESS)
        e = clEnqueueWriteBuffer(w->queue, sl->v, CL_FALSE, 0, sizeof sl->hv, sl->hv, 0, NULL, NULL);
    if (e == CL_SUCCESS)
        e = clEnqueueFillBuffer(w->queue, sl->out, &poison, 1, 0, sizeof sl->hq, 0, NULL, NULL);
    if (e == CL_SUCCESS)
        e = clEnqueueFillBuffer(w->queue, sl->lse, &poison, 1, 0, sizeof(float) * HQ * MAX_SQ, 0,
                                NULL, NULL);
    return e;
}

/* Slot s's call: facl_fwd over sk keys, or a decode over a cache holding sk keys. */
static facl_status call_slot(kernel_worker *w, int s)
{
    const slot *sl = &w->slots[s];
    const int decode = s % 2;
    const int64_t qs[4] = {1, sl->sq, HQ, D}, ls[3] = {1, HQ, sl->sq};
    const int64_t ks[4] = {1, decode ? MAX_SK : sl->sk, HKV, D};
    facl_tensor q = facl_tensor_contiguous(sl->q, FACL_DTYPE_F32, 4, qs);
    facl_tensor k = facl_tensor_contiguous(sl->k, FACL_DTYPE_F32, 4, ks);
    facl_tensor v = facl_tensor_contiguous(sl->v, FACL_DTYPE_F32, 4, ks);
    facl_tensor out = facl_tensor_contiguous(sl->out, FACL_DTYPE_F32, 4, qs);
    facl_tensor lse = facl_tensor_contiguous(sl->lse, FACL_DTYPE_F32, 3, ls);
    facl_attn_options opts = FACL_ATTN_OPTIONS_INIT;
    if (!decode)
        return facl_fwd(w->ctx, w->queue, &q, &k, &v, &out, &lse, &opts, 0, NULL, NULL);
    facl_kvcache_args args = FACL_KVCACHE_ARGS_INIT;
    args.cache_seqlens_value = sl->sk;
    args.num_splits = sl->splits;
    return facl_fwd_kvcache(w->ctx, w->queue, &q, &k, &v, &args, &out, &lse, &opts, 0, NULL, NULL);
}

/* Slot s's outputs, read back after the round, against float64 over its first sk keys. */
static void check_slot(kernel_worker *w, int s, int round)
{
    const slot *sl = &w->slots[s];
    float got[MAX_SQ * HQ * D], got_lse[HQ * MAX_SQ];
    const size_t n = (size_t)sl->sq * HQ * D, nl = (size_t)HQ * sl->sq;
    cl_int e = clEnqueueReadBuffer(w->queue, sl->out, CL_TRUE, 0, n * sizeof(float), got, 0,
                                   NULL, NULL);
    if (e == CL_SUCCESS)
        e = clEnqueueReadBuffer(w->queue, sl->lse, CL_TRUE, 0, nl * sizeof(float), got_lse, 0,
                                NULL, NULL);
    if (e != CL_SUCCESS) {
        record_failure(&w->failures, "thread %d round %d slot %d: reading back: %d", w->tid, round, s, (int)e);
        return;
    }
    const int32_t cu_q[2] = {0, sl->sq}, cu_k[2] = {0, sl->sk};
    ref_problem p;
    memset(&p, 0, sizeof p);
    p.batch = 1;
    p.heads_q = HQ;
    p.heads_kv = HKV;
    p.head_dim = D;
    p.cu_q = cu_q;
    p.cu_k = cu_k;
    p.scale = 1.0f / sqrtf((float)D);
    p.window_left = p.window_right = -1;
    double ref[MAX_SQ * HQ * D], ref_lse[HQ * MAX_SQ];
    ref_attention_f64(&p, sl->hq, sl->hk, sl->hv, ref, ref_lse);
    const cmp_result out = cmp_check(FACL_DTYPE_F32, got, ref, NULL, n);
    const cmp_result lse = cmp_check(FACL_DTYPE_F32, got_lse, ref_lse, NULL, nl);
    if (!out.pass || !lse.pass) {
        char what[160];
        cmp_format(out.pass ? &lse : &out, what, sizeof what);
        record_failure(&w->failures, "thread %d round %d: %s sq=%d sk=%d%s: %s wrong: %s", w->tid, round,
                       s % 2 ? "facl_fwd_kvcache" : "facl_fwd", sl->sq, sl->sk,
                       s % 2 ? (sl->splits > 1 ? " 2 splits" : " 1 split") : "",
                       out.pass ? "lse" : "out", what);
    }
}

static void *kernel_worker_main(void *arg)
{
    kernel_worker *w = arg;
    cl_int e = CL_SUCCESS;
    w->queue = clCreateCommandQueue(facl_context_cl_context(w->ctx), facl_context_device(w->ctx),
                                    0, &e);
    if (e != CL_SUCCESS) {
        record_failure(&w->failures, "thread %d: clCreateCommandQueue: %d", w->tid, (int)e);
        return NULL;
    }
    testkit_rng_seed(&w->rng, 0x5eedull * (uint64_t)(w->tid + 1));
    if (!make_slots(w)) goto out;
    for (int r = 0; r < w->rounds; r++) {
        for (int s = 0; s < BATCH && e == CL_SUCCESS; s++) e = fill_slot(w, s, r);
        if (e == CL_SUCCESS) e = clFinish(w->queue);
        if (e != CL_SUCCESS) {
            record_failure(&w->failures, "thread %d round %d: uploads: %d", w->tid, r, (int)e);
            break;
        }
        /* the round's calls back to back: no wait between them */
        for (int s = 0; s < BATCH; s++) {
            const facl_status st = call_slot(w, s);
            w->calls++;
            if (st != FACL_SUCCESS)
                record_failure(&w->failures, "thread %d round %d slot %d: %s: %s", w->tid, r, s,
                               facl_status_string(st), facl_last_error());
        }
        if ((e = clFinish(w->queue)) != CL_SUCCESS) {
            record_failure(&w->failures, "thread %d round %d: clFinish: %d", w->tid, r, (int)e);
            break;
        }
        for (int s = 0; s < BATCH; s++) check_slot(w, s, r);
    }
out:
    release_slots(w);
    clReleaseCommandQueue(w->queue);
    return NULL;
}

static int rounds_per_thread(void)
{
    const char *env = getenv("FACL_TEST_SHARED_ROUNDS");
    const int n = env && *env ? atoi(env) : DEFAULT_ROUNDS;
    return n > 0 ? n : DEFAULT_ROUNDS;
}

static void test_shared_kernels(void **state)
{
    (void)state;
    facl_context *ctx = NULL;
    const facl_status st = facl_context_create(NULL, &ctx);
    if (st != FACL_SUCCESS)
        fail_msg("facl_context_create: %s: %s", facl_status_string(st), facl_last_error());
    /* Each program once on this thread first: a build failure here is no thread problem,
     * and the threads then meet on built programs and kernels. */
    kernel_worker warm;
    memset(&warm, 0, sizeof warm);
    warm.ctx = ctx;
    warm.rounds = 1;
    kernel_worker_main(&warm);
    if (warm.failures.count) fail_msg("single-threaded warm-up: %s", warm.failures.first);

    static kernel_worker w[NTHREADS];
    pthread_t th[NTHREADS];
    int started = 0, failures = 0, calls = 0;
    memset(w, 0, sizeof w);
    for (int t = 0; t < NTHREADS; t++) {
        w[t].tid = t;
        w[t].rounds = rounds_per_thread();
        w[t].ctx = ctx;
        if (pthread_create(&th[t], NULL, kernel_worker_main, &w[t]) != 0) break;
        started++;
    }
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    facl_context_free(ctx);
    if (started < NTHREADS) fail_msg("pthread_create failed after %d threads", started);
    for (int t = 0; t < NTHREADS; t++) {
        failures += w[t].failures.count;
        calls += w[t].calls;
        if (w[t].failures.count)
            print_message("thread %d: %d failure(s); first: %s\n", t, w[t].failures.count,
                          w[t].failures.first);
    }
    print_message("%d threads, %d calls on one context's kernel objects\n", NTHREADS, calls);
    assert_int_equal(failures, 0);
    assert_int_equal(calls, NTHREADS * rounds_per_thread() * BATCH);
}

/* The shared context (no disk cache), and the messages of the invalid calls as a single
 * thread sees them. */
static int setup(void **state)
{
    facl_context *ctx = NULL;
    thread_res tr;
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
    if (!res_create(ctx, &tr, err, sizeof err)) {
        print_error("%s\n", err);
        facl_context_free(ctx);
        return -1;
    }
    for (int kind = 0; kind < 2; kind++) {
        g_bad_status[kind] = bad_call(ctx, &tr, kind);
        snprintf(g_bad_message[kind], sizeof g_bad_message[kind], "%s", facl_last_error());
        if (g_bad_status[kind] == FACL_SUCCESS || g_bad_message[kind][0] == '\0') {
            print_error("invalid call %d: status %d, message \"%s\"\n", kind,
                        (int)g_bad_status[kind], g_bad_message[kind]);
            res_release(&tr);
            facl_context_free(ctx);
            return -1;
        }
    }
    /* the two messages must differ, or a mix-up between threads would go unseen */
    if (strcmp(g_bad_message[0], g_bad_message[1]) == 0) {
        print_error("both invalid calls give \"%s\"\n", g_bad_message[0]);
        res_release(&tr);
        facl_context_free(ctx);
        return -1;
    }
    res_release(&tr);
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
        cmocka_unit_test(test_shared_kernels),
    };
    return cmocka_run_group_tests_name("threads", tests, setup, teardown);
}
