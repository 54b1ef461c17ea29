/* testkit reference attention (see reference.h and SPEC.md).
 *
 * Every (sequence, head) pair is an independent work item; large problems spread them
 * over POSIX threads where there are some (TESTKIT_THREADS=n to choose, 1 for none;
 * default: the online CPUs). The result does not depend on the thread count: each item
 * is computed by one thread in the same order. (POSIX threads rather than C11
 * <threads.h>: ThreadSanitizer does not intercept glibc's thrd_create.) */
#if !defined(_POSIX_C_SOURCE) && (defined(__unix__) || defined(__APPLE__))
#define _POSIX_C_SOURCE 200809L /* sysconf, pthreads */
#endif
#include "reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#if defined(_POSIX_THREADS) && _POSIX_THREADS > 0
#include <pthread.h>
#define REF_HAVE_THREADS 1
#endif
#endif

#include "numeric.h"

int64_t ref_seq_keys(const ref_problem *p, int b)
{
    int64_t sk = (int64_t)p->cu_k[b + 1] - p->cu_k[b];
    if (p->used_k) {
        int64_t u = p->used_k[b];
        if (u < 0)
            u = 0;
        if (u < sk)
            sk = u;
    }
    return sk;
}

int64_t ref_visible_range(const ref_problem *p, int64_t sq, int64_t sk, int64_t i,
                          int64_t *first)
{
    int64_t off = p->align_top_left ? 0 : sk - sq;
    int64_t lo = 0, hi = sk - 1;
    if (p->window_left >= 0 && i + off - p->window_left > lo)
        lo = i + off - p->window_left;
    if (p->window_right >= 0 && i + off + p->window_right < hi)
        hi = i + off + p->window_right;
    *first = lo;
    return hi >= lo ? hi - lo + 1 : 0;
}

float ref_alibi_slope(const ref_problem *p, int b, int h)
{
    if (!p->alibi)
        return 0.0f;
    return p->alibi_per_batch ? p->alibi[(size_t)b * p->heads_q + h] : p->alibi[h];
}

void ref_row_scores_f64(const ref_problem *p, int b, int h, int64_t off, int64_t i,
                        const float *qi, const float *k, int64_t kbase, int64_t j0, int64_t n,
                        double *s, double *raw)
{
    int d = p->head_dim, hk = h / (p->heads_q / p->heads_kv);
    double slope = ref_alibi_slope(p, b, h);
    for (int64_t t = 0; t < n; t++) {
        int64_t j = j0 + t;
        const float *kj = k + ((size_t)(kbase + j) * p->heads_kv + hk) * d;
        double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0, x;
        int e = 0;
        for (; e + 4 <= d; e += 4) { /* four chains: the same float64 sum, faster */
            a0 += (double)qi[e] * (double)kj[e];
            a1 += (double)qi[e + 1] * (double)kj[e + 1];
            a2 += (double)qi[e + 2] * (double)kj[e + 2];
            a3 += (double)qi[e + 3] * (double)kj[e + 3];
        }
        for (; e < d; e++)
            a0 += (double)qi[e] * (double)kj[e];
        x = (double)p->scale * ((a0 + a1) + (a2 + a3));
        if (raw)
            raw[t] = x;
        if (p->softcap > 0.0f)
            x = (double)p->softcap * tanh(x / (double)p->softcap);
        if (p->alibi)
            x -= slope * fabs((double)(i + off - j));
        s[t] = x;
    }
}

static void *xmalloc(size_t n)
{
    void *ptr = malloc(n ? n : 1);
    if (!ptr)
        abort(); /* test code: out of memory is fatal */
    return ptr;
}

static int64_t max_seqlen_k(const ref_problem *p)
{
    int64_t m = 1;
    for (int b = 0; b < p->batch; b++) {
        int64_t sk = ref_seq_keys(p, b);
        if (sk > m)
            m = sk;
    }
    return m;
}

/* ------------------------------------------------------------------ work items */

typedef struct ref_job {
    const ref_problem *p;
    facl_dtype dt;
    const float *q, *k, *v;
    double *out, *lse, *probs;
    float *outf, *lsef;
    int64_t max_sq, max_sk;
    void (*item)(const struct ref_job *job, int b, int h, void *scratch);
    size_t scratch_bytes;
#ifdef REF_HAVE_THREADS
    pthread_mutex_t lock;
    int next;
#endif
} ref_job;

static int g_ref_threads; /* ref_set_threads */

void ref_set_threads(int n)
{
    g_ref_threads = n < 0 ? 0 : n;
}

static int ref_thread_count(const ref_problem *p)
{
    const char *env = getenv("TESTKIT_THREADS");
    long n = 1;
    double work = 0.0;
    for (int b = 0; b < p->batch; b++)
        work += (double)(p->cu_q[b + 1] - p->cu_q[b]) * (double)ref_seq_keys(p, b);
    work *= (double)p->heads_q * p->head_dim;
    if (work < 4e6) /* not worth a thread */
        return 1;
    if (g_ref_threads > 0)
        n = g_ref_threads;
    else if (env && *env)
        n = strtol(env, NULL, 10);
#if defined(_SC_NPROCESSORS_ONLN)
    else
        n = sysconf(_SC_NPROCESSORS_ONLN);
#endif
    if (n < 1)
        n = 1;
    if (n > 64)
        n = 64;
    if (n > (long)p->batch * p->heads_q)
        n = (long)p->batch * p->heads_q;
    return (int)n;
}

#ifdef REF_HAVE_THREADS
static void *ref_worker(void *arg)
{
    ref_job *job = arg;
    const int n = job->p->batch * job->p->heads_q;
    void *scratch = xmalloc(job->scratch_bytes);
    for (;;) {
        int it;
        pthread_mutex_lock(&job->lock);
        it = job->next++;
        pthread_mutex_unlock(&job->lock);
        if (it >= n)
            break;
        job->item(job, it / job->p->heads_q, it % job->p->heads_q, scratch);
    }
    free(scratch);
    return NULL;
}
#endif

static void ref_run(ref_job *job)
{
    const ref_problem *p = job->p;
    int nthreads = ref_thread_count(p);
#ifdef REF_HAVE_THREADS
    if (nthreads > 1 && pthread_mutex_init(&job->lock, NULL) == 0) {
        pthread_t th[64];
        int started = 0;
        job->next = 0;
        for (int t = 0; t < nthreads - 1; t++) {
            if (pthread_create(&th[t], NULL, ref_worker, job) != 0)
                break;
            started++;
        }
        ref_worker(job); /* this thread works too (and alone if none started) */
        for (int t = 0; t < started; t++)
            pthread_join(th[t], NULL);
        pthread_mutex_destroy(&job->lock);
        return;
    }
#else
    (void)nthreads;
#endif
    {
        void *scratch = xmalloc(job->scratch_bytes);
        for (int b = 0; b < p->batch; b++)
            for (int h = 0; h < p->heads_q; h++)
                job->item(job, b, h, scratch);
        free(scratch);
    }
}

/* ------------------------------------------------------------------ float64 */

static void f64_item(const ref_job *job, int b, int h, void *scratch)
{
    const ref_problem *p = job->p;
    const int d = p->head_dim, hk = h / (p->heads_q / p->heads_kv);
    const int64_t total_q = p->cu_q[p->batch];
    const int64_t q0 = p->cu_q[b], sq = p->cu_q[b + 1] - q0;
    const int64_t k0 = p->cu_k[b], sk = ref_seq_keys(p, b);
    const int64_t off = p->align_top_left ? 0 : sk - sq;
    const uint32_t thr = testkit_dropout_threshold(p->dropout_p);
    const double dscale = (double)testkit_dropout_scale(p->dropout_p);
    double *acc = scratch, *s = acc + d;

    for (int64_t i = 0; i < sq; i++) {
        const float *qi = job->q + ((size_t)(q0 + i) * p->heads_q + h) * d;
        double *oi = job->out + ((size_t)(q0 + i) * p->heads_q + h) * d;
        int64_t j0, n = ref_visible_range(p, sq, sk, i, &j0);
        double m = -INFINITY, sum = 0.0, l;
        if (n == 0) {
            memset(oi, 0, (size_t)d * sizeof *oi);
            if (job->lse)
                job->lse[(size_t)h * total_q + q0 + i] = INFINITY;
            continue;
        }
        ref_row_scores_f64(p, b, h, off, i, qi, job->k, k0, j0, n, s, NULL);
        for (int64_t t = 0; t < n; t++)
            if (s[t] > m)
                m = s[t];
        for (int64_t t = 0; t < n; t++)
            sum += exp(s[t] - m);
        l = m + log(sum);
        if (job->lse)
            job->lse[(size_t)h * total_q + q0 + i] = l;
        for (int e = 0; e < d; e++)
            acc[e] = 0.0;
        for (int64_t t = 0; t < n; t++) {
            const int64_t j = j0 + t;
            const float *vj = job->v + ((size_t)(k0 + j) * p->heads_kv + hk) * d;
            double pr = exp(s[t] - l);
            if (p->dropout_p > 0.0f) {
                if (!testkit_dropout_keep(thr, p->seed, p->offset, b, p->heads_q, h, i, j))
                    continue;
                pr *= dscale;
            }
            for (int e = 0; e < d; e++)
                acc[e] += pr * (double)vj[e];
        }
        memcpy(oi, acc, (size_t)d * sizeof *oi);
    }
}

void ref_attention_f64(const ref_problem *p, const float *q, const float *k, const float *v,
                       double *out, double *lse)
{
    ref_job job;
    memset(&job, 0, sizeof job);
    job.p = p;
    job.q = q;
    job.k = k;
    job.v = v;
    job.out = out;
    job.lse = lse;
    job.item = f64_item;
    job.scratch_bytes = ((size_t)p->head_dim + (size_t)max_seqlen_k(p)) * sizeof(double);
    ref_run(&job);
}

/* ------------------------------------------------------------------ storage precision */

static void lowp_item(const ref_job *job, int b, int h, void *scratch)
{
    const ref_problem *p = job->p;
    const facl_dtype dt = job->dt;
    const int d = p->head_dim, hk = h / (p->heads_q / p->heads_kv);
    const int64_t total_q = p->cu_q[p->batch];
    const int64_t q0 = p->cu_q[b], sq = p->cu_q[b + 1] - q0;
    const int64_t k0 = p->cu_k[b], sk = ref_seq_keys(p, b);
    const int64_t off = p->align_top_left ? 0 : sk - sq;
    const uint32_t thr = testkit_dropout_threshold(p->dropout_p);
    const float dscale = testkit_dropout_scale(p->dropout_p);
    const float slope = ref_alibi_slope(p, b, h);
    float *acc = scratch, *s = acc + d;

    for (int64_t i = 0; i < sq; i++) {
        const float *qi = job->q + ((size_t)(q0 + i) * p->heads_q + h) * d;
        float *oi = job->outf + ((size_t)(q0 + i) * p->heads_q + h) * d;
        int64_t j0, n = ref_visible_range(p, sq, sk, i, &j0);
        float m = -INFINITY, sum = 0.0f;
        if (n == 0) {
            for (int e = 0; e < d; e++)
                oi[e] = 0.0f;
            if (job->lsef)
                job->lsef[(size_t)h * total_q + q0 + i] = INFINITY;
            continue;
        }
        for (int64_t t = 0; t < n; t++) {
            const int64_t j = j0 + t;
            const float *kj = job->k + ((size_t)(k0 + j) * p->heads_kv + hk) * d;
            float a = 0.0f, x;
            for (int e = 0; e < d; e++)
                a += qi[e] * kj[e];
            x = a * p->scale;
            if (p->softcap > 0.0f)
                x = p->softcap * tanhf(x / p->softcap);
            if (p->alibi)
                x -= slope * (float)llabs(i + off - j);
            s[t] = x;
            if (x > m)
                m = x;
        }
        for (int64_t t = 0; t < n; t++) {
            s[t] = expf(s[t] - m);
            sum += s[t];
        }
        if (job->lsef)
            job->lsef[(size_t)h * total_q + q0 + i] = m + logf(sum);
        for (int e = 0; e < d; e++)
            acc[e] = 0.0f;
        for (int64_t t = 0; t < n; t++) {
            const int64_t j = j0 + t;
            const float *vj = job->v + ((size_t)(k0 + j) * p->heads_kv + hk) * d;
            float pr = s[t] / sum;
            if (p->dropout_p > 0.0f) {
                if (!testkit_dropout_keep(thr, p->seed, p->offset, b, p->heads_q, h, i, j))
                    continue;
                pr *= dscale;
            }
            pr = testkit_round_to(dt, pr);
            for (int e = 0; e < d; e++)
                acc[e] += pr * vj[e];
        }
        for (int e = 0; e < d; e++)
            oi[e] = testkit_round_to(dt, acc[e]);
    }
}

void ref_attention_lowp(const ref_problem *p, facl_dtype dt, const float *q, const float *k,
                        const float *v, float *out, float *lse)
{
    ref_job job;
    memset(&job, 0, sizeof job);
    job.p = p;
    job.dt = dt;
    job.q = q;
    job.k = k;
    job.v = v;
    job.outf = out;
    job.lsef = lse;
    job.item = lowp_item;
    job.scratch_bytes = ((size_t)p->head_dim + (size_t)max_seqlen_k(p)) * sizeof(float);
    ref_run(&job);
}

/* ------------------------------------------------------------------ probabilities */

static void probs_item(const ref_job *job, int b, int h, void *scratch)
{
    const ref_problem *p = job->p;
    const int d = p->head_dim;
    const int64_t max_sq = job->max_sq, max_sk = job->max_sk;
    const int64_t q0 = p->cu_q[b], sq = p->cu_q[b + 1] - q0;
    const int64_t k0 = p->cu_k[b], sk = ref_seq_keys(p, b);
    const int64_t off = p->align_top_left ? 0 : sk - sq;
    const uint32_t thr = testkit_dropout_threshold(p->dropout_p);
    double *s = scratch;
    double *plane = job->probs + ((size_t)b * p->heads_q + h) * max_sq * max_sk;

    memset(plane, 0, (size_t)(max_sq * max_sk) * sizeof *plane);
    for (int64_t i = 0; i < sq && i < max_sq; i++) {
        const float *qi = job->q + ((size_t)(q0 + i) * p->heads_q + h) * d;
        double *row = plane + i * max_sk;
        int64_t j0, n = ref_visible_range(p, sq, sk, i, &j0);
        double m = -INFINITY, sum = 0.0, l;
        if (n == 0)
            continue;
        ref_row_scores_f64(p, b, h, off, i, qi, job->k, k0, j0, n, s, NULL);
        for (int64_t t = 0; t < n; t++)
            if (s[t] > m)
                m = s[t];
        for (int64_t t = 0; t < n; t++)
            sum += exp(s[t] - m);
        l = m + log(sum);
        for (int64_t t = 0; t < n; t++) {
            const int64_t j = j0 + t;
            double pr = exp(s[t] - l);
            if (j >= max_sk)
                break;
            if (p->dropout_p > 0.0f &&
                !testkit_dropout_keep(thr, p->seed, p->offset, b, p->heads_q, h, i, j))
                pr = -pr;
            row[j] = pr;
        }
    }
}

void ref_attn_probs(const ref_problem *p, const float *q, const float *k, double *probs,
                    int64_t max_sq, int64_t max_sk)
{
    ref_job job;
    memset(&job, 0, sizeof job);
    job.p = p;
    job.q = q;
    job.k = k;
    job.probs = probs;
    job.max_sq = max_sq;
    job.max_sk = max_sk;
    job.item = probs_item;
    job.scratch_bytes = (size_t)max_seqlen_k(p) * sizeof(double);
    ref_run(&job);
}
