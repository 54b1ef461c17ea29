/* testkit KV-cache reference builder (see kvcache_ref.h and SPEC.md, "KV cache"). */
#include "kvcache_ref.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numeric.h"

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "testkit: out of host memory\n");
        abort();
    }
    return p;
}

static void refuse(char *why, size_t size, const char *fmt, ...)
{
    va_list ap;
    if (why && size) {
        va_start(ap, fmt);
        vsnprintf(why, size, fmt, ap);
        va_end(ap);
    }
}

int64_t kvc_capacity(const kvc_layout *l)
{
    return l->paged ? (int64_t)l->max_blocks * l->page_size : (int64_t)l->seqlen_cache;
}

int kvc_normalise_window(int w, int64_t key_length)
{
    return w > 0 && (int64_t)w >= key_length ? -1 : w;
}

int64_t kvc_elem_index(const kvc_layout *l, int is_v, int b, int64_t pos, int h, int e)
{
    const int64_t *st = is_v ? l->v_stride : l->k_stride;
    int64_t base = is_v ? l->v_offset : l->k_offset, row, r;
    if (pos < 0)
        return -1;
    if (l->paged) {
        int64_t blk = pos / l->page_size;
        if (blk >= l->max_blocks)
            return -1;
        row = l->block_table[(size_t)b * l->max_blocks + blk];
        if (row < 0 || row >= l->num_blocks)
            return -1;
        r = pos % l->page_size;
    } else {
        if (pos >= l->seqlen_cache)
            return -1;
        row = l->batch_idx ? l->batch_idx[b] : b;
        if (row < 0 || row >= l->batch_cache)
            return -1;
        r = pos;
    }
    return base + row * st[0] + r * st[1] + (int64_t)h * st[2] + (int64_t)e * st[3];
}

double kvc_ulp(facl_dtype dt, double x)
{
    int mant, emin, e;
    switch (dt) {
    case FACL_DTYPE_F16:
        mant = 10;
        emin = -14;
        break;
    case FACL_DTYPE_BF16:
        mant = 7;
        emin = -126;
        break;
    default:
        mant = 23;
        emin = -126;
        break;
    }
    x = fabs(x);
    if (x == 0.0 || !isfinite(x))
        return ldexp(1.0, emin - mant);
    (void)frexp(x, &e); /* x = f * 2^e, f in [0.5, 1): exponent of x is e - 1 */
    e -= 1;
    if (e < emin)
        e = emin;
    return ldexp(1.0, e - mant);
}

/* Rotation of one head vector x (d elements) at cos / sin row `pos`: out[] exact
 * (double), and per element the magnitude of the two products (for the tolerance of an
 * fp32 evaluation); dims past rotary_dim copied. */
static void rotate(const kvc_problem *p, const float *x, int64_t pos, double *out, double *mag)
{
    const int d = p->head_dim, half = p->rotary_dim / 2;
    for (int e = 0; e < d; e++) {
        out[e] = x[e];
        mag[e] = 0.0;
    }
    if (!p->rot_cos || half == 0)
        return;
    for (int t = 0; t < half; t++) {
        const double c = p->rot_cos[(size_t)pos * half + t], s = p->rot_sin[(size_t)pos * half + t];
        const int i0 = p->rotary_interleaved ? 2 * t : t;
        const int i1 = p->rotary_interleaved ? 2 * t + 1 : t + half;
        const double a = x[i0], b = x[i1];
        out[i0] = a * c - b * s;
        out[i1] = a * s + b * c;
        mag[i0] = fabs(a * c) + fabs(b * s);
        mag[i1] = fabs(a * s) + fabs(b * c);
    }
}

void kvc_ref_free(kvc_ref *r)
{
    if (!r)
        return;
    free(r->cu_q);
    free(r->cu_k);
    free(r->used_k);
    free(r->q);
    free(r->k);
    free(r->v);
    free(r->k_img);
    free(r->k_tol);
    if (!r->shared_image) {
        free(r->v_img);
        free(r->v_tol);
    }
    memset(r, 0, sizeof *r);
}

int kvc_ref_build(const kvc_problem *p, const unsigned char *k_img, size_t k_count,
                  const unsigned char *v_img, size_t v_count, kvc_ref *r, char *why,
                  size_t why_size)
{
    const facl_dtype dt = p->dt;
    const size_t es = facl_dtype_size(dt);
    const int B = p->batch, Hq = p->heads_q, Hk = p->heads_kv, D = p->head_dim;
    const int cache_call = p->mode == KVC_FWD_KVCACHE;
    const kvc_layout *L = &p->cache;
    const int64_t cap = kvc_capacity(L);
    int64_t *start = NULL, *end = NULL; /* per sequence: the gathered positions */
    double *rot = NULL, *mag = NULL;
    int wl, wr;

    memset(r, 0, sizeof *r);
    if (why && why_size)
        why[0] = '\0';
    r->shared_image = k_img == v_img;
    r->k_count = k_count;
    r->v_count = v_count;
    r->k_img = xcalloc(k_count, es);
    memcpy(r->k_img, k_img, k_count * es);
    r->k_tol = xcalloc(k_count, sizeof *r->k_tol);
    if (r->shared_image) {
        r->v_img = r->k_img;
        r->v_tol = r->k_tol;
    } else {
        r->v_img = xcalloc(v_count, es);
        memcpy(r->v_img, v_img, v_count * es);
        r->v_tol = xcalloc(v_count, sizeof *r->v_tol);
    }

    /* windows: the key length of rule 4 is the cache's capacity (varlen paged call:
     * max_seqlen_k); causal folded in */
    r->key_length = cache_call ? cap : p->max_seqlen_k;
    wl = kvc_normalise_window(p->window_left, r->key_length);
    wr = p->causal ? 0 : kvc_normalise_window(p->window_right, r->key_length);
    r->rotate_per_row = p->causal || wl >= 0 || wr >= 0;

    r->cu_q = xcalloc((size_t)B + 1, sizeof *r->cu_q);
    r->cu_k = xcalloc((size_t)B + 1, sizeof *r->cu_k);
    memcpy(r->cu_q, p->cu_q, ((size_t)B + 1) * sizeof *r->cu_q);
    r->total_q = r->cu_q[B];
    start = xcalloc((size_t)B + 1, sizeof *start);
    end = xcalloc((size_t)B + 1, sizeof *end);
    rot = xcalloc((size_t)D, sizeof *rot);
    mag = xcalloc((size_t)D, sizeof *mag);

    /* ---- the append (and the key ranges) */
    for (int b = 0; b < B; b++) {
        if (cache_call) {
            const int64_t cs = p->cache_seqlens[b];
            const int64_t nb = p->cu_new ? (int64_t)p->cu_new[b + 1] - p->cu_new[b] : 0;
            const int64_t lp = p->leftpad ? p->leftpad[b] : 0;
            if (cs < 0 || nb < 0 || cs + nb > cap) {
                refuse(why, why_size, "sequence %d: cache_seqlens %lld + %lld new > capacity %lld",
                       b, (long long)cs, (long long)nb, (long long)cap);
                goto bad;
            }
            if (lp < 0 || lp > cs) {
                refuse(why, why_size, "sequence %d: leftpad %lld outside 0..%lld", b, (long long)lp,
                       (long long)cs);
                goto bad;
            }
            if (p->rot_cos && nb > 0 && cs + nb > p->seqlen_ro) {
                refuse(why, why_size, "sequence %d: key position %lld >= seqlen_ro %d", b,
                       (long long)(cs + nb - 1), p->seqlen_ro);
                goto bad;
            }
            start[b] = lp;
            end[b] = cs + nb;
            for (int64_t t = 0; t < nb; t++) {
                const int64_t pos = cs + t, row = p->cu_new[b] + t;
                for (int h = 0; h < Hk; h++) {
                    const float *kx = p->k_new + ((size_t)row * Hk + h) * D;
                    const float *vx = p->v_new + ((size_t)row * Hk + h) * D;
                    rotate(p, kx, pos, rot, mag);
                    for (int e = 0; e < D; e++) {
                        const int64_t ki = kvc_elem_index(L, 0, b, pos, h, e);
                        const int64_t vi = kvc_elem_index(L, 1, b, pos, h, e);
                        if (ki < 0 || vi < 0 || (size_t)ki >= k_count || (size_t)vi >= v_count) {
                            refuse(why, why_size,
                                   "sequence %d: position %lld has no place in the cache", b,
                                   (long long)pos);
                            goto bad;
                        }
                        if (p->rot_cos && e < p->rotary_dim) {
                            const float want = testkit_round_to(dt, (float)rot[e]);
                            testkit_store(dt, r->k_img, (size_t)ki, want);
                            /* fp32 evaluation of the rotation (two products and a sum,
                             * each rounded), then one rounding to the storage dtype */
                            r->k_tol[ki] = (float)(kvc_ulp(dt, rot[e]) + ldexp(mag[e], -22));
                        } else {
                            testkit_store(dt, r->k_img, (size_t)ki, kx[e]);
                            r->k_tol[ki] = -1.0f;
                        }
                        testkit_store(dt, r->v_img, (size_t)vi, vx[e]);
                        r->v_tol[vi] = -1.0f;
                    }
                }
            }
        } else {
            const int64_t sk = p->seqlens_k[b];
            if (sk < 0 || sk > cap) {
                refuse(why, why_size, "sequence %d: %lld keys > table capacity %lld", b,
                       (long long)sk, (long long)cap);
                goto bad;
            }
            start[b] = 0;
            end[b] = sk;
        }
        r->cu_k[b + 1] = r->cu_k[b] + (int32_t)(end[b] - start[b]);
    }
    r->total_k = r->cu_k[B];

    /* ---- the keys and values each sequence attends to, from the updated cache */
    r->k = xcalloc((size_t)r->total_k * Hk * D, sizeof *r->k);
    r->v = xcalloc((size_t)r->total_k * Hk * D, sizeof *r->v);
    for (int b = 0; b < B; b++) {
        for (int64_t pos = start[b]; pos < end[b]; pos++) {
            const size_t row = (size_t)(r->cu_k[b] + (pos - start[b]));
            for (int h = 0; h < Hk; h++)
                for (int e = 0; e < D; e++) {
                    const int64_t ki = kvc_elem_index(L, 0, b, pos, h, e);
                    const int64_t vi = kvc_elem_index(L, 1, b, pos, h, e);
                    if (ki < 0 || vi < 0 || (size_t)ki >= k_count || (size_t)vi >= v_count) {
                        refuse(why, why_size,
                               "sequence %d: position %lld has no place in the cache", b,
                               (long long)pos);
                        goto bad;
                    }
                    r->k[(row * Hk + h) * D + e] = testkit_load(dt, r->k_img, (size_t)ki);
                    r->v[(row * Hk + h) * D + e] = testkit_load(dt, r->v_img, (size_t)vi);
                }
        }
    }

    /* ---- q, rotated at its positions and rounded */
    r->q = xcalloc((size_t)r->total_q * Hq * D, sizeof *r->q);
    for (int b = 0; b < B; b++) {
        for (int64_t i = 0; i < (int64_t)p->cu_q[b + 1] - p->cu_q[b]; i++) {
            const size_t row = (size_t)(p->cu_q[b] + i);
            const int64_t pos = cache_call ? p->cache_seqlens[b] + (r->rotate_per_row ? i : 0) : 0;
            if (cache_call && p->rot_cos && pos >= p->seqlen_ro) {
                refuse(why, why_size, "sequence %d: query position %lld >= seqlen_ro %d", b,
                       (long long)pos, p->seqlen_ro);
                goto bad;
            }
            for (int h = 0; h < Hq; h++) {
                const float *x = p->q + (row * Hq + h) * D;
                float *y = r->q + (row * Hq + h) * D;
                if (cache_call && p->rot_cos) {
                    rotate(p, x, pos, rot, mag);
                    for (int e = 0; e < D; e++)
                        y[e] = testkit_round_to(dt, (float)rot[e]);
                } else {
                    memcpy(y, x, (size_t)D * sizeof *y);
                }
            }
        }
    }

    /* ---- the plain reference problem */
    memset(&r->rp, 0, sizeof r->rp);
    r->rp.batch = B;
    r->rp.heads_q = Hq;
    r->rp.heads_kv = Hk;
    r->rp.head_dim = D;
    r->rp.cu_q = r->cu_q;
    r->rp.cu_k = r->cu_k;
    r->rp.scale = p->softmax_scale != 0.0f ? p->softmax_scale : 1.0f / sqrtf((float)D);
    r->rp.window_left = wl;
    r->rp.window_right = wr;
    r->rp.align_top_left = p->align_top_left;
    r->rp.softcap = p->softcap;
    r->rp.alibi = p->alibi;
    r->rp.alibi_per_batch = p->alibi_per_batch;
    if (!cache_call && p->seqused_k) {
        r->used_k = xcalloc((size_t)B + 1, sizeof *r->used_k);
        memcpy(r->used_k, p->seqused_k, (size_t)B * sizeof *r->used_k);
        r->rp.used_k = r->used_k;
    }
    free(start);
    free(end);
    free(rot);
    free(mag);
    return 0;
bad:
    free(start);
    free(end);
    free(rot);
    free(mag);
    kvc_ref_free(r);
    return -1;
}

int64_t kvc_check_image(facl_dtype dt, const unsigned char *expected, const float *tol,
                        const unsigned char *got, size_t count, int64_t *first_bad)
{
    const size_t es = facl_dtype_size(dt);
    int64_t bad = 0;
    *first_bad = -1;
    for (size_t i = 0; i < count; i++) {
        int ok;
        if (tol && tol[i] > 0.0f) {
            const double g = testkit_load(dt, got, i), w = testkit_load(dt, expected, i);
            ok = isfinite(g) && fabs(g - w) <= (double)tol[i];
        } else {
            ok = memcmp(expected + i * es, got + i * es, es) == 0;
        }
        if (!ok) {
            if (*first_bad < 0)
                *first_bad = (int64_t)i;
            bad++;
        }
    }
    return bad;
}

void kvc_describe_elem(const kvc_problem *p, int is_v, int64_t index, char *buf, size_t size)
{
    const kvc_layout *L = &p->cache;
    const int64_t cap = kvc_capacity(L);
    for (int b = 0; b < p->batch; b++)
        for (int64_t pos = 0; pos < cap; pos++)
            for (int h = 0; h < p->heads_kv; h++)
                for (int e = 0; e < p->head_dim; e++) {
                    if (kvc_elem_index(L, is_v, b, pos, h, e) != index)
                        continue;
                    {
                        const char *what = "a cached position, not appended";
                        if (p->mode == KVC_FWD_KVCACHE && p->cu_new) {
                            const int64_t cs = p->cache_seqlens[b];
                            const int64_t nb = (int64_t)p->cu_new[b + 1] - p->cu_new[b];
                            if (pos >= cs && pos < cs + nb)
                                what = "appended (new row)";
                        }
                        snprintf(buf, size, "%s element %lld = seq %d pos %lld head %d dim %d, %s",
                                 is_v ? "v" : "k", (long long)index, b, (long long)pos, h, e, what);
                        return;
                    }
                }
    snprintf(buf, size, "%s element %lld: no sequence's position (padding, unused page or row)",
             is_v ? "v" : "k", (long long)index);
}
