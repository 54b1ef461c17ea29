/* testkit reference backward (see bwd_ref.h). The masks, scores (scale, softcap, ALiBi)
 * and dropout decisions come from reference.c and numeric.c, the forward's own helpers,
 * so the two references cannot drift apart. Serial: dk and dv of a kv head collect the
 * terms of several query heads. */
#include "bwd_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "numeric.h"

static void *xcalloc(size_t n, size_t size)
{
    void *ptr = calloc(n ? n : 1, size);
    if (!ptr)
        abort(); /* test code: out of memory is fatal */
    return ptr;
}

static int64_t max_keys(const ref_problem *p)
{
    int64_t m = 1;
    for (int b = 0; b < p->batch; b++)
        if (ref_seq_keys(p, b) > m)
            m = ref_seq_keys(p, b);
    return m;
}

void ref_attention_bwd_f64(const ref_problem *p, const float *q, const float *k, const float *v,
                           const float *dout, double *dq, double *dk, double *dv)
{
    const int d = p->head_dim, group = p->heads_q / p->heads_kv;
    const size_t nq = (size_t)p->cu_q[p->batch] * p->heads_q * d;
    const size_t nk = (size_t)p->cu_k[p->batch] * p->heads_kv * d;
    const uint32_t thr = testkit_dropout_threshold(p->dropout_p);
    const double dscale = (double)testkit_dropout_scale(p->dropout_p);
    const int64_t mk = max_keys(p);
    double *s = xcalloc((size_t)mk, sizeof *s), *raw = xcalloc((size_t)mk, sizeof *raw);
    double *prob = xcalloc((size_t)mk, sizeof *prob), *z = xcalloc((size_t)mk, sizeof *z);
    double *dpv = xcalloc((size_t)mk, sizeof *dpv);

    memset(dq, 0, nq * sizeof *dq);
    memset(dk, 0, nk * sizeof *dk);
    memset(dv, 0, nk * sizeof *dv);
    for (int b = 0; b < p->batch; b++) {
        const int64_t q0 = p->cu_q[b], sq = p->cu_q[b + 1] - q0;
        const int64_t k0 = p->cu_k[b], sk = ref_seq_keys(p, b);
        const int64_t off = p->align_top_left ? 0 : sk - sq;
        for (int h = 0; h < p->heads_q; h++) {
            const int hk = h / group;
            for (int64_t i = 0; i < sq; i++) {
                const float *qi = q + ((size_t)(q0 + i) * p->heads_q + h) * d;
                const float *doi = dout + ((size_t)(q0 + i) * p->heads_q + h) * d;
                double *dqi = dq + ((size_t)(q0 + i) * p->heads_q + h) * d;
                int64_t j0, n = ref_visible_range(p, sq, sk, i, &j0);
                double m = -INFINITY, sum = 0.0, lse, delta = 0.0;
                if (n == 0)
                    continue;
                ref_row_scores_f64(p, b, h, off, i, qi, k, k0, j0, n, s, raw);
                for (int64_t t = 0; t < n; t++)
                    m = s[t] > m ? s[t] : m;
                for (int64_t t = 0; t < n; t++)
                    sum += exp(s[t] - m);
                lse = m + log(sum);
                for (int64_t t = 0; t < n; t++) {
                    const int64_t j = j0 + t;
                    const float *vj = v + ((size_t)(k0 + j) * p->heads_kv + hk) * d;
                    double a = 0.0;
                    prob[t] = exp(s[t] - lse);
                    z[t] = 1.0;
                    if (p->dropout_p > 0.0f)
                        z[t] = testkit_dropout_keep(thr, p->seed, p->offset, b, p->heads_q, h, i, j)
                                   ? dscale
                                   : 0.0;
                    for (int e = 0; e < d; e++)
                        a += (double)doi[e] * (double)vj[e];
                    dpv[t] = z[t] * a; /* dP */
                    delta += prob[t] * dpv[t];
                }
                for (int64_t t = 0; t < n; t++) {
                    const int64_t j = j0 + t;
                    const float *kj = k + ((size_t)(k0 + j) * p->heads_kv + hk) * d;
                    double *dkj = dk + ((size_t)(k0 + j) * p->heads_kv + hk) * d;
                    double *dvj = dv + ((size_t)(k0 + j) * p->heads_kv + hk) * d;
                    double ds = prob[t] * (dpv[t] - delta), pz = prob[t] * z[t];
                    if (p->softcap > 0.0f) {
                        const double th = tanh(raw[t] / (double)p->softcap);
                        ds *= 1.0 - th * th;
                    }
                    ds *= (double)p->scale;
                    for (int e = 0; e < d; e++) {
                        dqi[e] += ds * (double)kj[e];
                        dkj[e] += ds * (double)qi[e];
                        dvj[e] += pz * (double)doi[e];
                    }
                }
            }
        }
    }
    free(s);
    free(raw);
    free(prob);
    free(z);
    free(dpv);
}

void ref_attention_bwd_lowp(const ref_problem *p, facl_dtype dt, const float *q, const float *k,
                            const float *v, const float *out, const float *lse,
                            const float *dout, float *dq, float *dk, float *dv)
{
    const int d = p->head_dim, group = p->heads_q / p->heads_kv;
    const int64_t total_q = p->cu_q[p->batch];
    const size_t nq = (size_t)total_q * p->heads_q * d;
    const size_t nk = (size_t)p->cu_k[p->batch] * p->heads_kv * d;
    const uint32_t thr = testkit_dropout_threshold(p->dropout_p);
    const float dscale = testkit_dropout_scale(p->dropout_p);

    memset(dq, 0, nq * sizeof *dq);
    memset(dk, 0, nk * sizeof *dk);
    memset(dv, 0, nk * sizeof *dv);
    for (int b = 0; b < p->batch; b++) {
        const int64_t q0 = p->cu_q[b], sq = p->cu_q[b + 1] - q0;
        const int64_t k0 = p->cu_k[b], sk = ref_seq_keys(p, b);
        const int64_t off = p->align_top_left ? 0 : sk - sq;
        for (int h = 0; h < p->heads_q; h++) {
            const int hk = h / group;
            const float slope = ref_alibi_slope(p, b, h);
            for (int64_t i = 0; i < sq; i++) {
                const size_t row = ((size_t)(q0 + i) * p->heads_q + h) * d;
                const float *qi = q + row, *doi = dout + row, *oi = out + row;
                float *dqi = dq + row, delta = 0.0f;
                const float lse_i = lse[(size_t)h * total_q + q0 + i];
                int64_t j0, n = ref_visible_range(p, sq, sk, i, &j0);
                for (int e = 0; e < d; e++)
                    delta += doi[e] * oi[e];
                for (int64_t t = 0; t < n; t++) {
                    const int64_t j = j0 + t;
                    const size_t krow = ((size_t)(k0 + j) * p->heads_kv + hk) * d;
                    const float *kj = k + krow, *vj = v + krow;
                    float a = 0.0f, dpv = 0.0f, x, raw, prob, z = 1.0f, dl = 1.0f, ds, pz;
                    for (int e = 0; e < d; e++) {
                        a += qi[e] * kj[e];
                        dpv += doi[e] * vj[e];
                    }
                    raw = x = a * p->scale;
                    if (p->softcap > 0.0f) {
                        const float th = tanhf(raw / p->softcap);
                        x = p->softcap * th;
                        dl = 1.0f - th * th;
                    }
                    if (p->alibi)
                        x -= slope * (float)llabs(i + off - j);
                    prob = expf(x - lse_i);
                    if (p->dropout_p > 0.0f)
                        z = testkit_dropout_keep(thr, p->seed, p->offset, b, p->heads_q, h, i, j)
                                ? dscale
                                : 0.0f;
                    pz = testkit_round_to(dt, prob * z);
                    ds = testkit_round_to(dt, prob * (dpv * z - delta) * dl);
                    for (int e = 0; e < d; e++) {
                        dqi[e] += ds * kj[e];
                        dk[krow + e] += ds * qi[e];
                        dv[krow + e] += pz * doi[e];
                    }
                }
                for (int e = 0; e < d; e++)
                    dqi[e] = testkit_round_to(dt, dqi[e] * p->scale);
            }
        }
    }
    for (size_t e = 0; e < nk; e++) {
        dk[e] = testkit_round_to(dt, dk[e] * p->scale);
        dv[e] = testkit_round_to(dt, dv[e]);
    }
}
