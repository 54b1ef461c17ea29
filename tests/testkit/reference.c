/* testkit reference attention (see reference.h and SPEC.md). */
#include "reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "numeric.h"

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

static float slope_of(const ref_problem *p, int b, int h)
{
    if (!p->alibi)
        return 0.0f;
    return p->alibi_per_batch ? p->alibi[(size_t)b * p->heads_q + h] : p->alibi[h];
}

/* Scores of one row in float64 (steps 1-3) for the visible keys j0 .. j0+n-1. */
static void scores_f64(const ref_problem *p, int b, int h, int64_t off, int64_t i,
                       const float *qi, const float *k, int64_t kbase, int64_t j0, int64_t n,
                       double *s)
{
    int d = p->head_dim, hk = h / (p->heads_q / p->heads_kv);
    double slope = slope_of(p, b, h);
    for (int64_t t = 0; t < n; t++) {
        int64_t j = j0 + t;
        const float *kj = k + ((size_t)(kbase + j) * p->heads_kv + hk) * d;
        double acc = 0.0, x;
        for (int e = 0; e < d; e++)
            acc += (double)qi[e] * (double)kj[e];
        x = (double)p->scale * acc;
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
        int64_t sk = p->cu_k[b + 1] - p->cu_k[b];
        if (sk > m)
            m = sk;
    }
    return m;
}

void ref_attention_f64(const ref_problem *p, const float *q, const float *k, const float *v,
                       double *out, double *lse)
{
    int d = p->head_dim, group = p->heads_q / p->heads_kv;
    int64_t total_q = p->cu_q[p->batch];
    double *s = xmalloc((size_t)max_seqlen_k(p) * sizeof *s);
    double *acc = xmalloc((size_t)d * sizeof *acc);
    uint32_t thr = testkit_dropout_threshold(p->dropout_p);
    double dscale = (double)testkit_dropout_scale(p->dropout_p);

    for (int b = 0; b < p->batch; b++) {
        int64_t q0 = p->cu_q[b], sq = p->cu_q[b + 1] - q0;
        int64_t k0 = p->cu_k[b], sk = p->cu_k[b + 1] - k0;
        int64_t off = p->align_top_left ? 0 : sk - sq;
        for (int h = 0; h < p->heads_q; h++) {
            int hk = h / group;
            for (int64_t i = 0; i < sq; i++) {
                const float *qi = q + ((size_t)(q0 + i) * p->heads_q + h) * d;
                double *oi = out + ((size_t)(q0 + i) * p->heads_q + h) * d;
                int64_t j0, n = ref_visible_range(p, sq, sk, i, &j0);
                double m = -INFINITY, sum = 0.0, l;
                if (n == 0) {
                    memset(oi, 0, (size_t)d * sizeof *oi);
                    if (lse)
                        lse[(size_t)h * total_q + q0 + i] = INFINITY;
                    continue;
                }
                scores_f64(p, b, h, off, i, qi, k, k0, j0, n, s);
                for (int64_t t = 0; t < n; t++)
                    if (s[t] > m)
                        m = s[t];
                for (int64_t t = 0; t < n; t++)
                    sum += exp(s[t] - m);
                l = m + log(sum);
                if (lse)
                    lse[(size_t)h * total_q + q0 + i] = l;
                for (int e = 0; e < d; e++)
                    acc[e] = 0.0;
                for (int64_t t = 0; t < n; t++) {
                    int64_t j = j0 + t;
                    const float *vj = v + ((size_t)(k0 + j) * p->heads_kv + hk) * d;
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
    }
    free(acc);
    free(s);
}

void ref_attention_lowp(const ref_problem *p, facl_dtype dt, const float *q, const float *k,
                        const float *v, float *out, float *lse)
{
    int d = p->head_dim, group = p->heads_q / p->heads_kv;
    int64_t total_q = p->cu_q[p->batch];
    float *s = xmalloc((size_t)max_seqlen_k(p) * sizeof *s);
    float *acc = xmalloc((size_t)d * sizeof *acc);
    uint32_t thr = testkit_dropout_threshold(p->dropout_p);
    float dscale = testkit_dropout_scale(p->dropout_p);

    for (int b = 0; b < p->batch; b++) {
        int64_t q0 = p->cu_q[b], sq = p->cu_q[b + 1] - q0;
        int64_t k0 = p->cu_k[b], sk = p->cu_k[b + 1] - k0;
        int64_t off = p->align_top_left ? 0 : sk - sq;
        for (int h = 0; h < p->heads_q; h++) {
            int hk = h / group;
            float slope = slope_of(p, b, h);
            for (int64_t i = 0; i < sq; i++) {
                const float *qi = q + ((size_t)(q0 + i) * p->heads_q + h) * d;
                float *oi = out + ((size_t)(q0 + i) * p->heads_q + h) * d;
                int64_t j0, n = ref_visible_range(p, sq, sk, i, &j0);
                float m = -INFINITY, sum = 0.0f;
                if (n == 0) {
                    for (int e = 0; e < d; e++)
                        oi[e] = 0.0f;
                    if (lse)
                        lse[(size_t)h * total_q + q0 + i] = INFINITY;
                    continue;
                }
                for (int64_t t = 0; t < n; t++) {
                    int64_t j = j0 + t;
                    const float *kj = k + ((size_t)(k0 + j) * p->heads_kv + hk) * d;
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
                if (lse)
                    lse[(size_t)h * total_q + q0 + i] = m + logf(sum);
                for (int e = 0; e < d; e++)
                    acc[e] = 0.0f;
                for (int64_t t = 0; t < n; t++) {
                    int64_t j = j0 + t;
                    const float *vj = v + ((size_t)(k0 + j) * p->heads_kv + hk) * d;
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
    }
    free(acc);
    free(s);
}

void ref_attn_probs(const ref_problem *p, const float *q, const float *k, double *probs,
                    int64_t max_sq, int64_t max_sk)
{
    int d = p->head_dim;
    double *s = xmalloc((size_t)max_seqlen_k(p) * sizeof *s);
    uint32_t thr = testkit_dropout_threshold(p->dropout_p);

    memset(probs, 0, (size_t)p->batch * p->heads_q * max_sq * max_sk * sizeof *probs);
    for (int b = 0; b < p->batch; b++) {
        int64_t q0 = p->cu_q[b], sq = p->cu_q[b + 1] - q0;
        int64_t k0 = p->cu_k[b], sk = p->cu_k[b + 1] - k0;
        int64_t off = p->align_top_left ? 0 : sk - sq;
        for (int h = 0; h < p->heads_q; h++) {
            for (int64_t i = 0; i < sq && i < max_sq; i++) {
                const float *qi = q + ((size_t)(q0 + i) * p->heads_q + h) * d;
                double *row = probs + (((size_t)b * p->heads_q + h) * max_sq + i) * max_sk;
                int64_t j0, n = ref_visible_range(p, sq, sk, i, &j0);
                double m = -INFINITY, sum = 0.0, l;
                if (n == 0)
                    continue;
                scores_f64(p, b, h, off, i, qi, k, k0, j0, n, s);
                for (int64_t t = 0; t < n; t++)
                    if (s[t] > m)
                        m = s[t];
                for (int64_t t = 0; t < n; t++)
                    sum += exp(s[t] - m);
                l = m + log(sum);
                for (int64_t t = 0; t < n; t++) {
                    int64_t j = j0 + t;
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
    }
    free(s);
}
