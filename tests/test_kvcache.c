/*
 * KV-cache attention against the float64 reference (SPEC.md, "KV cache" and "How
 * correctness is judged"): facl_fwd_kvcache, and the varlen calls with
 * opts->block_table (facl_varlen_fwd with paged k / v, facl_varlen_fwd_kvpacked with a
 * paged kv).
 *
 * Every case draws fresh random normal inputs (its own seed), fills the cache buffers
 * with random values everywhere (unused rows, pages and padding included, so that a read
 * of the wrong place changes the result; cases marked "nan-unused" put NaN in every
 * position no sequence may read, so that such a row copied and multiplied by a zero
 * probability shows), poisons out and lse (NaN, plus one poisoned element past each
 * view), makes the call, and checks
 *   - out and lse against tests/testkit/kvcache_ref (the simulated append, the gathered
 *     keys, q rotated at its positions) with SPEC.md's rule;
 *   - the whole of each cache buffer: the appended rows hold the new values (bit for
 *     bit; rotated keys within the fp32 rounding of the rotation plus one rounding to
 *     the storage dtype), every other element is unchanged bit for bit;
 *   - every input buffer unchanged, nothing written past the output views.
 * Cases marked "splits" run num_splits 1, 2, 7 and 0 on the same inputs (each must pass,
 * and each must agree with num_splits = 1 within the rule); "trust-cmp" runs untrusted
 * and trusted and compares the same way.
 *
 * FACL_TEST_FILTER=<cmocka pattern, * and ? wildcards> runs the cases whose full name
 * ("<group>: <case>") matches, e.g. FACL_TEST_FILTER='paged*ps=16*' ./test_kvcache;
 * a filter that selects no case fails. FACL_TEST_VERBOSE=1 prints passing cases' errors.
 * FACL_KVCACHE_SLOW=1 (the 'kvcache_slow' test, suite 'slow') runs a larger sweep instead.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "case_suite.h"
#include "compare.h"
#include "facl.h"
#include "kvcache_ref.h"
#include "numeric.h"
#include "reference.h"

/* ------------------------------------------------------------------ the cases */

typedef enum kc_call {
    KC_CACHE,          /* facl_fwd_kvcache */
    KC_PAGED_VARLEN,   /* facl_varlen_fwd with opts->block_table */
    KC_PAGED_VARLEN_KV /* facl_varlen_fwd_kvpacked with opts->block_table */
} kc_call;

enum { NOCAUSAL = 0, CAUSAL_BR = 1, CAUSAL_TL = 2 };

typedef struct kc_case {
    kc_call call;
    facl_dtype dt;
    int d, hq, hkv, batch;
    /* queries: dense (batch, sq, hq, d), or varlen through cu_seqlens_q when sq_v */
    int sq;
    int q_offset; /* dense queries: q's view starts this many elements into its buffer
                   * (odd: rows not 16-byte aligned, so the tensor-core kernel reads Q into
                   * registers instead of copying it: read_q_bits, not Q_BY_COPY) */
    const int32_t *sq_v;
    /* new keys and values: dense (batch, snew, hkv, d); varlen (with sq_v) per snew_v */
    int has_new, snew;
    const int32_t *snew_v;
    /* cache_seqlens: per sequence (cs_v) or all equal (cs); cs_host: passed as
     * cache_seqlens_value (no buffer) */
    const int32_t *cs_v;
    int cs, cs_host;
    const int32_t *leftpad;
    /* dense: seqlen_cache; paged: the capacity, rounded up to whole pages */
    int capacity;
    int batch_cache;  /* dense: rows of the cache (0 = batch) */
    int batch_idx;    /* dense: pass cache_batch_idx, a random injective map */
    int page_size;    /* > 0: paged, with a random table */
    int extra_pages;  /* pages no sequence uses */
    int shared_kv;    /* k_cache and v_cache views of one padded buffer */
    int rotary_dim, neox;
    int causal, top_left, wl, wr;
    float softcap, scale;
    int alibi; /* 0 none, 1 (heads_q), 2 (batch, heads_q) */
    int want_lse;
    int num_splits;
    int sweep_splits; /* 1, 2, 7, 0 on the same inputs, compared */
    int trust;        /* opts.trust_cu_seqlens */
    int trust_cmp;    /* untrusted and trusted, compared */
    /* paged varlen calls: key counts (cu_seqlens_k), seqused_k, the max_seqlen_k passed */
    const int32_t *sk_v;
    const int32_t *used_k;
    int64_t max_sk;
    /* NaN in every cache position no sequence may read (kc_nan_unused) */
    int nan_unused;
    /* selected whatever share FACL_KVCACHE_EVERY keeps (the filter still applies) */
    int always;
    uint64_t seed;
} kc_case;

typedef struct named_kc {
    kc_case c;
    char name[400];
} named_kc;

static named_kc *g_cases;
static size_t g_ncases, g_cap;
static facl_context *g_ctx;
static char g_ctx_error[512];

static const facl_dtype k_dtypes[3] = {FACL_DTYPE_F16, FACL_DTYPE_BF16, FACL_DTYPE_F32};

static const char *dt_name(facl_dtype dt)
{
    return dt == FACL_DTYPE_F16 ? "f16" : dt == FACL_DTYPE_BF16 ? "bf16" : "f32";
}

static void appendf(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;
    if (len + 1 >= size)
        return;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

static void append_list(char *buf, size_t size, const char *what, const int32_t *v, int n)
{
    appendf(buf, size, " %s=[", what);
    for (int i = 0; i < n; i++)
        appendf(buf, size, i ? ",%d" : "%d", (int)v[i]);
    appendf(buf, size, "]");
}

static void kc_name(const kc_case *c, char *buf, size_t size)
{
    const char *al = c->top_left || c->causal == CAUSAL_TL ? "tl" : "br";
    buf[0] = '\0';
    appendf(buf, size, "%s %s d=%d h=%d/%d b=%d",
            c->call == KC_CACHE ? "kvcache" : c->call == KC_PAGED_VARLEN ? "varlen-paged"
                                                                         : "varlen-kvpacked-paged",
            dt_name(c->dt), c->d, c->hq, c->hkv, c->batch);
    if (c->sq_v)
        append_list(buf, size, "sq", c->sq_v, c->batch);
    else
        appendf(buf, size, " sq=%d", c->sq);
    if (c->call == KC_CACHE) {
        if (c->has_new && c->snew_v)
            append_list(buf, size, "new", c->snew_v, c->batch);
        else if (c->has_new)
            appendf(buf, size, " new=%d", c->snew);
        if (c->cs_v)
            append_list(buf, size, "cs", c->cs_v, c->batch);
        else
            appendf(buf, size, " cs=%d", c->cs);
        if (c->cs_host)
            appendf(buf, size, " cs-value");
        if (c->leftpad)
            append_list(buf, size, "leftpad", c->leftpad, c->batch);
    } else {
        append_list(buf, size, "sk", c->sk_v, c->batch);
        if (c->used_k)
            append_list(buf, size, "used", c->used_k, c->batch);
        if (c->max_sk)
            appendf(buf, size, " max_k=%lld", (long long)c->max_sk);
    }
    if (c->page_size)
        appendf(buf, size, " paged(ps=%d,cap=%d,+%d)", c->page_size,
                (c->capacity + c->page_size - 1) / c->page_size * c->page_size, c->extra_pages);
    else
        appendf(buf, size, " dense(cap=%d,rows=%d%s)", c->capacity,
                c->batch_cache ? c->batch_cache : c->batch, c->batch_idx ? ",idx" : "");
    if (c->shared_kv)
        appendf(buf, size, " shared-kv");
    if (c->rotary_dim)
        appendf(buf, size, " rot=%d-%s", c->rotary_dim, c->neox ? "neox" : "il");
    if (c->causal)
        appendf(buf, size, " causal-%s", al);
    if (c->wl != -1 || c->wr != -1)
        appendf(buf, size, " win=(%d,%d)-%s", c->wl, c->wr, al);
    else if (c->top_left && !c->causal)
        appendf(buf, size, " align-tl");
    if (c->scale != 0.0f)
        appendf(buf, size, " scale=%g", (double)c->scale);
    if (c->softcap != 0.0f)
        appendf(buf, size, " softcap=%g", (double)c->softcap);
    if (c->alibi)
        appendf(buf, size, " alibi%s", c->alibi == 2 ? "(b,h)" : "(h)");
    if (c->want_lse)
        appendf(buf, size, " lse");
    if (c->sweep_splits)
        appendf(buf, size, " splits=1,2,7,0");
    else if (c->num_splits != 0)
        appendf(buf, size, " splits=%d", c->num_splits);
    if (c->trust_cmp)
        appendf(buf, size, " trust-cmp");
    else if (c->trust)
        appendf(buf, size, " trusted");
    if (c->nan_unused)
        appendf(buf, size, " nan-unused");
    if (c->q_offset)
        appendf(buf, size, " q+%d", c->q_offset);
}

static kc_case kc_base(kc_call call, facl_dtype dt, int d, int hq, int hkv, int batch, int sq)
{
    kc_case c;
    memset(&c, 0, sizeof c);
    c.call = call;
    c.dt = dt;
    c.d = d;
    c.hq = hq;
    c.hkv = hkv;
    c.batch = batch;
    c.sq = sq;
    c.wl = c.wr = -1;
    c.want_lse = 1;
    c.num_splits = 0;
    c.capacity = 64;
    return c;
}

static void kc_add(const char *group, kc_case c)
{
    named_kc *nc;
    char name[340];
    if (g_ncases == g_cap) {
        g_cap = g_cap ? 2 * g_cap : 128;
        g_cases = realloc(g_cases, g_cap * sizeof *g_cases);
        if (!g_cases) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
    }
    c.seed = 0x6b76636163686500ull + (uint64_t)g_ncases * 7919u;
    nc = &g_cases[g_ncases++];
    nc->c = c;
    kc_name(&c, name, sizeof name);
    snprintf(nc->name, sizeof nc->name, "%s: %s", group, name);
    for (size_t i = 0; i + 1 < g_ncases; i++)
        if (strcmp(g_cases[i].name, nc->name) == 0) {
            fprintf(stderr, "test_kvcache: two cases named '%s'\n", nc->name);
            exit(1);
        }
}

/* ------------------------------------------------------------------ buffers */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "out of host memory\n");
        abort();
    }
    return p;
}

#define KC_MAX_BUFS 20

typedef struct kc_buf {
    const char *name;
    size_t esize, count;
    int is_output;        /* poisoned; checked through its view (and its poisoned tail) */
    int is_cache;         /* checked against the builder's expected image */
    unsigned char *host;  /* what was uploaded */
    unsigned char *back;  /* read back after the call */
    cl_mem mem;
} kc_buf;

typedef struct kc_bufs {
    kc_buf b[KC_MAX_BUFS];
    int n;
} kc_bufs;

/* A buffer of `count` elements (at least one: an empty view's buffer holds one poisoned
 * element that must survive), contents `init` (NULL: 0xff poison bytes). */
static kc_buf *kc_new_buf(kc_bufs *bs, const char *name, size_t esize, size_t count,
                          const void *init, size_t init_bytes)
{
    kc_buf *b = &bs->b[bs->n++];
    if (bs->n > KC_MAX_BUFS) {
        fprintf(stderr, "test_kvcache: too many buffers\n");
        abort();
    }
    memset(b, 0, sizeof *b);
    b->name = name;
    b->esize = esize;
    b->count = count ? count : 1;
    b->host = xcalloc(b->count, esize);
    b->back = xcalloc(b->count, esize);
    memset(b->host, 0xff, b->count * esize);
    if (init && init_bytes)
        memcpy(b->host, init, init_bytes);
    return b;
}

static void kc_free_bufs(kc_bufs *bs)
{
    for (int i = 0; i < bs->n; i++) {
        if (bs->b[i].mem)
            clReleaseMemObject(bs->b[i].mem);
        free(bs->b[i].host);
        free(bs->b[i].back);
    }
    bs->n = 0;
}

static facl_tensor kc_view(const kc_buf *b, facl_dtype dt, int ndim, const int64_t *shape,
                           const int64_t *stride, int64_t offset)
{
    facl_tensor t;
    int64_t run = 1;
    memset(&t, 0, sizeof t);
    t.buffer = b ? b->mem : NULL;
    t.dtype = dt;
    t.ndim = ndim;
    t.offset = (uint64_t)offset;
    for (int i = ndim - 1; i >= 0; i--) {
        t.shape[i] = shape[i];
        t.stride[i] = stride ? stride[i] : run;
        run *= shape[i];
    }
    return t;
}

/* ------------------------------------------------------------------ one run */

typedef struct kc_run {
    facl_status status;
    int pass;
    char detail[1024];
    cmp_result out, lse;
    float *got_out, *got_lse;  /* (total_q, hq, d) and (hq, total_q) */
    double *ref_out, *ref_lse;
    float *low_out, *low_lse;
    size_t n_out, n_lse;
    double seconds;
} kc_run;

static void kc_run_free(kc_run *r)
{
    free(r->got_out);
    free(r->got_lse);
    free(r->ref_out);
    free(r->ref_lse);
    free(r->low_out);
    free(r->low_lse);
    memset(r, 0, sizeof *r);
}

static int kc_fail(kc_run *r, const char *fmt, ...)
{
    va_list ap;
    size_t len = strlen(r->detail);
    if (len + 2 < sizeof r->detail) {
        if (len)
            r->detail[len++] = '\n', r->detail[len] = '\0';
        va_start(ap, fmt);
        vsnprintf(r->detail + len, sizeof r->detail - len, fmt, ap);
        va_end(ap);
    }
    r->pass = 0;
    return 0;
}

static double now_seconds(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int32_t *prefix(const int32_t *lens, int n, int dflt)
{
    int32_t *cu = xcalloc((size_t)n + 1, sizeof *cu);
    for (int b = 0; b < n; b++)
        cu[b + 1] = cu[b] + (lens ? lens[b] : dflt);
    return cu;
}

static int32_t max_of(const int32_t *cu, int n)
{
    int32_t m = 0;
    for (int b = 0; b < n; b++)
        if (cu[b + 1] - cu[b] > m)
            m = cu[b + 1] - cu[b];
    return m;
}

static void shuffle(testkit_rng *rng, int32_t *v, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)testkit_rng_range(rng, 0, i);
        int32_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

static void fill_normal(testkit_rng *rng, facl_dtype dt, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = testkit_round_to(dt, (float)testkit_rng_normal(rng));
}

/* Cases marked nan_unused: every whole position (all heads and dims, in k and in v) that
 * no sequence's attention may read becomes a quiet NaN in the storage dtype (fp16 0x7e00,
 * bf16 0x7fc0, fp32 0x7fc00000): in each sequence's cache row or pages, the positions
 * before its leftpad and from its key count on (after the append), and whole cache rows
 * and pages that no sequence uses. A kernel that copies such rows into its tiles (a tile
 * or step running past the keys) and multiplies them by a zero probability gets
 * 0 * NaN = NaN, where the random finite values everywhere else would hide it. The padding
 * of a strided layout keeps its values; the appended rows lie inside the key count. The
 * reference gathers only the keys and the cache check compares bytes, so the expected
 * results are unchanged. */
static void kc_nan_unused(const kc_case *c, const kvc_layout *L, const int32_t *cs,
                          const int32_t *cu_new, const int32_t *cu_k, unsigned char *k_img,
                          unsigned char *v_img)
{
    const int64_t rows = L->paged ? L->num_blocks : L->batch_cache;
    const int64_t per_row = L->paged ? L->page_size : L->seqlen_cache;
    unsigned char *live = xcalloc((size_t)(rows * per_row), 1);
    for (int b = 0; b < c->batch; b++) {
        int64_t lo = 0, hi;
        if (c->call == KC_CACHE) {
            lo = c->leftpad ? c->leftpad[b] : 0;
            hi = (int64_t)cs[b] + (cu_new ? cu_new[b + 1] - cu_new[b] : 0);
        } else {
            hi = c->used_k ? c->used_k[b] : cu_k[b + 1] - cu_k[b];
        }
        for (int64_t pos = lo; pos < hi; pos++) {
            int64_t row = L->batch_idx ? L->batch_idx[b] : b, r = pos;
            if (L->paged) {
                if (pos / L->page_size >= L->max_blocks)
                    break;
                row = L->block_table[(size_t)b * L->max_blocks + pos / L->page_size];
                r = pos % L->page_size;
            }
            if (row >= 0 && row < rows && r < per_row) /* else kvc_ref_build refuses it */
                live[row * per_row + r] = 1;
        }
    }
    for (int64_t row = 0; row < rows; row++)
        for (int64_t r = 0; r < per_row; r++) {
            if (live[row * per_row + r])
                continue;
            for (int h = 0; h < c->hkv; h++)
                for (int e = 0; e < c->d; e++) {
                    testkit_store(c->dt, k_img,
                                  (size_t)(L->k_offset + row * L->k_stride[0] +
                                           r * L->k_stride[1] + h * L->k_stride[2] +
                                           e * L->k_stride[3]),
                                  NAN);
                    testkit_store(c->dt, v_img,
                                  (size_t)(L->v_offset + row * L->v_stride[0] +
                                           r * L->v_stride[1] + h * L->v_stride[2] +
                                           e * L->v_stride[3]),
                                  NAN);
                }
        }
    free(live);
}

/* Runs case c once with num_splits ns and trust_cu_seqlens trust. */
/* The queue the facl call runs on (NULL: the context's own). The split sweep also runs
 * on other queues: the merge inside the tensor-core kernel keeps counters per in-order
 * queue (src/queue_counters.h), an out-of-order queue merges with a second kernel. */
static cl_command_queue g_call_queue;

static int kc_run_once(const kc_case *c, int ns, int trust, kc_run *r)
{
    const facl_dtype dt = c->dt;
    const size_t es = facl_dtype_size(dt);
    const int B = c->batch, Hq = c->hq, Hk = c->hkv, D = c->d;
    const int cache_call = c->call == KC_CACHE;
    const int varlen_q = c->sq_v != NULL || !cache_call;
    const int paged = c->page_size > 0;
    testkit_rng rng;
    kc_bufs bs;
    kvc_problem p;
    kvc_ref kr;
    int have_ref = 0;
    char why[256];
    cl_mem workspace = NULL; /* the caller workspace of some split runs */
    int32_t *cu_q = NULL, *cu_new = NULL, *cu_k = NULL, *cs = NULL, *bidx = NULL, *table = NULL;
    float *q = NULL, *k_new = NULL, *v_new = NULL, *cosv = NULL, *sinv = NULL, *slopes = NULL;
    unsigned char *k_img = NULL, *v_img = NULL;
    size_t k_count = 0, v_count = 0;
    int64_t total_q, total_new = 0, max_sq, cap, seqlen_ro = 0, rows;
    int max_blocks = 0, num_blocks = 0, half = c->rotary_dim / 2;
    kc_buf *bq, *bk, *bv = NULL, *bout, *blse = NULL, *bkn = NULL, *bvn = NULL, *bcos = NULL,
                         *bsin = NULL, *bcs = NULL, *bbi = NULL, *blp = NULL, *bbt = NULL,
                         *bcuq = NULL, *bcun = NULL, *bcuk = NULL, *bal = NULL, *bused = NULL;
    facl_tensor tq, tk, tv, tkv, tout, tlse, tkn, tvn, tcos, tsin, tcs, tbi, tlp, tbt, tcuq,
        tcun, tcuk, tal, tused;
    facl_attn_options o = facl_attn_options_default();
    facl_kvcache_args args = FACL_KVCACHE_ARGS_INIT;
    cl_event ev = NULL;
    cl_context clctx = facl_context_cl_context(g_ctx);
    cl_command_queue queue = facl_context_queue(g_ctx);

    memset(r, 0, sizeof *r);
    memset(&bs, 0, sizeof bs);
    memset(&kr, 0, sizeof kr);
    r->pass = 1;
    testkit_rng_seed(&rng, c->seed);

    /* ---- lengths */
    cu_q = prefix(c->sq_v, B, c->sq);
    total_q = cu_q[B];
    max_sq = max_of(cu_q, B);
    if (cache_call && c->has_new)
        cu_new = prefix(c->snew_v, B, c->snew);
    total_new = cu_new ? cu_new[B] : 0;
    if (!cache_call)
        cu_k = prefix(c->sk_v, B, 0);
    cs = xcalloc((size_t)B + 1, sizeof *cs);
    for (int b = 0; b < B; b++)
        cs[b] = c->cs_v ? c->cs_v[b] : c->cs;

    /* ---- the cache's geometry */
    if (paged) {
        max_blocks = (c->capacity + c->page_size - 1) / c->page_size;
        cap = (int64_t)max_blocks * c->page_size;
        num_blocks = B * max_blocks + c->extra_pages;
        if (num_blocks < 1)
            num_blocks = 1;
        rows = num_blocks;
    } else {
        cap = c->capacity;
        rows = c->batch_cache ? c->batch_cache : B;
    }
    {
        /* shared: (rows, cap-or-ps, 2, hkv, d) with padding after each head row, each
         * position and each row, at offset 3; else plain (rows, cap-or-ps, hkv, d) each */
        const int64_t per_row = paged ? c->page_size : cap;
        kvc_layout *L = &p.cache;
        memset(&p, 0, sizeof p);
        L->paged = paged;
        L->batch_cache = (int)rows;
        L->seqlen_cache = (int)cap;
        L->num_blocks = num_blocks;
        L->page_size = c->page_size;
        L->max_blocks = max_blocks;
        if (c->shared_kv) {
            const int64_t hs = D + 1, ps = 2 * Hk * hs + 5, rs = per_row * ps + 7;
            L->k_stride[0] = L->v_stride[0] = rs;
            L->k_stride[1] = L->v_stride[1] = ps;
            L->k_stride[2] = L->v_stride[2] = hs;
            L->k_stride[3] = L->v_stride[3] = 1;
            L->k_offset = 3;
            L->v_offset = 3 + Hk * hs + 2;
            k_count = v_count = (size_t)(3 + rows * rs + 4);
        } else if (c->call == KC_PAGED_VARLEN_KV) {
            /* kv (num_blocks, page_size, 2, hkv, d) */
            L->k_stride[3] = L->v_stride[3] = 1;
            L->k_stride[2] = L->v_stride[2] = D;
            L->k_stride[1] = L->v_stride[1] = 2 * Hk * D;
            L->k_stride[0] = L->v_stride[0] = per_row * 2 * Hk * D;
            L->k_offset = 0;
            L->v_offset = (int64_t)Hk * D;
            k_count = v_count = (size_t)(rows * per_row * 2 * Hk * D);
        } else {
            L->k_stride[3] = L->v_stride[3] = 1;
            L->k_stride[2] = L->v_stride[2] = D;
            L->k_stride[1] = L->v_stride[1] = (int64_t)Hk * D;
            L->k_stride[0] = L->v_stride[0] = per_row * Hk * D;
            k_count = v_count = (size_t)(rows * per_row * Hk * D);
        }
    }

    /* ---- random inputs (the order of the draws fixes each case's data) */
    q = xcalloc((size_t)total_q * Hq * D, sizeof *q);
    fill_normal(&rng, dt, q, (size_t)total_q * Hq * D);
    if (cu_new) {
        k_new = xcalloc((size_t)total_new * Hk * D, sizeof *k_new);
        v_new = xcalloc((size_t)total_new * Hk * D, sizeof *v_new);
        fill_normal(&rng, dt, k_new, (size_t)total_new * Hk * D);
        fill_normal(&rng, dt, v_new, (size_t)total_new * Hk * D);
    }
    k_img = xcalloc(k_count, es);
    for (size_t i = 0; i < k_count; i++)
        testkit_store(dt, k_img, i, (float)testkit_rng_normal(&rng));
    if (c->shared_kv || c->call == KC_PAGED_VARLEN_KV) {
        v_img = k_img;
    } else {
        v_img = xcalloc(v_count, es);
        for (size_t i = 0; i < v_count; i++)
            testkit_store(dt, v_img, i, (float)testkit_rng_normal(&rng));
    }
    if (paged) {
        /* every sequence's pages from a shuffled pool; entries past the pages its keys
         * (and appended rows) need are -1 */
        int32_t *pool = xcalloc((size_t)num_blocks, sizeof *pool);
        int used = 0;
        for (int i = 0; i < num_blocks; i++)
            pool[i] = i;
        shuffle(&rng, pool, num_blocks);
        table = xcalloc((size_t)B * max_blocks + 1, sizeof *table);
        for (int b = 0; b < B; b++) {
            int64_t len = cache_call ? cs[b] + (cu_new ? cu_new[b + 1] - cu_new[b] : 0)
                                     : cu_k[b + 1] - cu_k[b];
            int64_t need = (len + c->page_size - 1) / c->page_size;
            for (int j = 0; j < max_blocks; j++)
                table[(size_t)b * max_blocks + j] = j < need ? pool[used++] : -1;
        }
        free(pool);
    } else if (c->batch_idx) {
        int32_t *perm = xcalloc((size_t)rows, sizeof *perm);
        for (int i = 0; i < rows; i++)
            perm[i] = i;
        shuffle(&rng, perm, (int)rows);
        bidx = xcalloc((size_t)B + 1, sizeof *bidx);
        memcpy(bidx, perm, (size_t)B * sizeof *bidx);
        free(perm);
    }
    if (c->nan_unused) {
        p.cache.batch_idx = bidx;
        p.cache.block_table = table;
        kc_nan_unused(c, &p.cache, cs, cu_new, cu_k, k_img, v_img);
    }
    if (c->rotary_dim) {
        seqlen_ro = cap + max_sq + 3;
        cosv = xcalloc((size_t)seqlen_ro * half, sizeof *cosv);
        sinv = xcalloc((size_t)seqlen_ro * half, sizeof *sinv);
        for (int64_t pos = 0; pos < seqlen_ro; pos++)
            for (int t = 0; t < half; t++) {
                const double th = (double)pos * pow(10000.0, -2.0 * t / c->rotary_dim);
                cosv[pos * half + t] = testkit_round_to(dt, (float)cos(th));
                sinv[pos * half + t] = testkit_round_to(dt, (float)sin(th));
            }
    }
    if (c->alibi) {
        const int nrows = c->alibi == 2 ? B : 1;
        slopes = xcalloc((size_t)(nrows ? nrows : 1) * Hq, sizeof *slopes);
        for (int b = 0; b < nrows; b++)
            for (int h = 0; h < Hq; h++)
                slopes[b * Hq + h] = (float)(exp2(-8.0 * (h + 1) / Hq) * (1.0 + 0.5 * b));
    }

    /* ---- the reference */
    p.mode = cache_call ? KVC_FWD_KVCACHE : KVC_VARLEN_PAGED;
    p.dt = dt;
    p.batch = B;
    p.heads_q = Hq;
    p.heads_kv = Hk;
    p.head_dim = D;
    p.cu_q = cu_q;
    p.q = q;
    p.cache.batch_idx = bidx;
    p.cache.block_table = table;
    p.cache_seqlens = cs;
    p.leftpad = c->leftpad;
    p.cu_new = cu_new;
    p.k_new = k_new;
    p.v_new = v_new;
    p.rot_cos = cosv;
    p.rot_sin = sinv;
    p.rotary_dim = c->rotary_dim;
    p.seqlen_ro = (int)seqlen_ro;
    p.rotary_interleaved = !c->neox;
    if (!cache_call) {
        p.seqlens_k = c->sk_v;
        p.seqused_k = c->used_k;
        p.max_seqlen_k = c->max_sk ? c->max_sk : max_of(cu_k, B);
    }
    p.softmax_scale = c->scale;
    p.causal = c->causal != NOCAUSAL;
    p.align_top_left = c->causal == CAUSAL_TL || c->top_left;
    p.window_left = c->wl;
    p.window_right = c->wr;
    p.softcap = c->softcap;
    p.alibi = slopes;
    p.alibi_per_batch = c->alibi == 2;
    if (kvc_ref_build(&p, k_img, k_count, v_img, v_count, &kr, why, sizeof why) != 0) {
        kc_fail(r, "test bug: the case is outside the contract: %s", why);
        goto done;
    }
    have_ref = 1;
    r->n_out = (size_t)total_q * Hq * D;
    r->n_lse = (size_t)total_q * Hq;
    r->ref_out = xcalloc(r->n_out, sizeof *r->ref_out);
    r->ref_lse = xcalloc(r->n_lse, sizeof *r->ref_lse);
    r->low_out = xcalloc(r->n_out, sizeof *r->low_out);
    r->low_lse = xcalloc(r->n_lse, sizeof *r->low_lse);
    ref_attention_f64(&kr.rp, kr.q, kr.k, kr.v, r->ref_out, r->ref_lse);
    if (dt != FACL_DTYPE_F32)
        ref_attention_lowp(&kr.rp, dt, kr.q, kr.k, kr.v, r->low_out, r->low_lse);

    /* ---- buffers */
    {
        const size_t q_at = varlen_q ? 0 : (size_t)c->q_offset;
        unsigned char *raw = xcalloc(r->n_out + q_at + 1, es);
        for (size_t i = 0; i < r->n_out; i++)
            testkit_store(dt, raw, q_at + i, q[i]);
        bq = kc_new_buf(&bs, "q", es, r->n_out + q_at, raw, (r->n_out + q_at) * es);
        free(raw);
    }
    bk = kc_new_buf(&bs, v_img == k_img ? "kv cache" : "k_cache", es, k_count, k_img,
                    k_count * es);
    bk->is_cache = 1;
    if (v_img != k_img) {
        bv = kc_new_buf(&bs, "v_cache", es, v_count, v_img, v_count * es);
        bv->is_cache = 1;
    }
    /* outputs: the view plus one poisoned element past it */
    bout = kc_new_buf(&bs, "out", es, r->n_out + 1, NULL, 0);
    bout->is_output = 1;
    if (c->want_lse) {
        blse = kc_new_buf(&bs, "lse", 4, r->n_lse + 1, NULL, 0);
        blse->is_output = 1;
    }
    if (cu_new) {
        unsigned char *raw = xcalloc((size_t)total_new * Hk * D + 1, es);
        for (size_t i = 0; i < (size_t)total_new * Hk * D; i++)
            testkit_store(dt, raw, i, k_new[i]);
        bkn = kc_new_buf(&bs, "k_new", es, (size_t)total_new * Hk * D, raw,
                         (size_t)total_new * Hk * D * es);
        for (size_t i = 0; i < (size_t)total_new * Hk * D; i++)
            testkit_store(dt, raw, i, v_new[i]);
        bvn = kc_new_buf(&bs, "v_new", es, (size_t)total_new * Hk * D, raw,
                         (size_t)total_new * Hk * D * es);
        free(raw);
    }
    if (cosv) {
        unsigned char *raw = xcalloc((size_t)seqlen_ro * half + 1, es);
        for (size_t i = 0; i < (size_t)seqlen_ro * half; i++)
            testkit_store(dt, raw, i, cosv[i]);
        bcos = kc_new_buf(&bs, "rotary_cos", es, (size_t)seqlen_ro * half, raw,
                          (size_t)seqlen_ro * half * es);
        for (size_t i = 0; i < (size_t)seqlen_ro * half; i++)
            testkit_store(dt, raw, i, sinv[i]);
        bsin = kc_new_buf(&bs, "rotary_sin", es, (size_t)seqlen_ro * half, raw,
                          (size_t)seqlen_ro * half * es);
        free(raw);
    }
    if (cache_call && !c->cs_host)
        bcs = kc_new_buf(&bs, "cache_seqlens", 4, (size_t)B, cs, (size_t)B * 4);
    if (bidx)
        bbi = kc_new_buf(&bs, "cache_batch_idx", 4, (size_t)B, bidx, (size_t)B * 4);
    if (cache_call && c->leftpad)
        blp = kc_new_buf(&bs, "cache_leftpad", 4, (size_t)B, c->leftpad, (size_t)B * 4);
    if (table)
        bbt = kc_new_buf(&bs, "block_table", 4, (size_t)B * max_blocks, table,
                         (size_t)B * max_blocks * 4);
    if (varlen_q)
        bcuq = kc_new_buf(&bs, "cu_seqlens_q", 4, (size_t)B + 1, cu_q, ((size_t)B + 1) * 4);
    if (cu_new && c->sq_v)
        bcun = kc_new_buf(&bs, "cu_seqlens_k_new", 4, (size_t)B + 1, cu_new,
                          ((size_t)B + 1) * 4);
    if (cu_k)
        bcuk = kc_new_buf(&bs, "cu_seqlens_k", 4, (size_t)B + 1, cu_k, ((size_t)B + 1) * 4);
    if (slopes)
        bal = kc_new_buf(&bs, "alibi_slopes", 4, (size_t)(c->alibi == 2 ? B : 1) * Hq, slopes,
                         (size_t)(c->alibi == 2 ? B : 1) * Hq * 4);
    if (c->used_k)
        bused = kc_new_buf(&bs, "seqused_k", 4, (size_t)B, c->used_k, (size_t)B * 4);

    for (int i = 0; i < bs.n; i++) {
        cl_int err;
        bs.b[i].mem = clCreateBuffer(clctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                                     bs.b[i].count * bs.b[i].esize, bs.b[i].host, &err);
        if (err != CL_SUCCESS) {
            bs.b[i].mem = NULL;
            kc_fail(r, "clCreateBuffer(%s): %d", bs.b[i].name, (int)err);
            goto done;
        }
    }

    /* ---- views */
    if (varlen_q) {
        const int64_t s3[3] = {total_q, Hq, D}, l2[2] = {Hq, total_q};
        tq = kc_view(bq, dt, 3, s3, NULL, 0);
        tout = kc_view(bout, dt, 3, s3, NULL, 0);
        tlse = kc_view(blse, FACL_DTYPE_F32, 2, l2, NULL, 0);
    } else {
        const int64_t s4[4] = {B, c->sq, Hq, D}, l3[3] = {B, Hq, c->sq};
        tq = kc_view(bq, dt, 4, s4, NULL, c->q_offset);
        tout = kc_view(bout, dt, 4, s4, NULL, 0);
        tlse = kc_view(blse, FACL_DTYPE_F32, 3, l3, NULL, 0);
    }
    {
        const int64_t cshape[4] = {rows, paged ? c->page_size : cap, Hk, D};
        tk = kc_view(bk, dt, 4, cshape, p.cache.k_stride, p.cache.k_offset);
        tv = kc_view(bv ? bv : bk, dt, 4, cshape, p.cache.v_stride, p.cache.v_offset);
        if (c->call == KC_PAGED_VARLEN_KV) {
            const int64_t s5[5] = {rows, c->page_size, 2, Hk, D};
            tkv = kc_view(bk, dt, 5, s5, NULL, 0);
        }
    }
    if (bkn) {
        if (c->sq_v) {
            const int64_t s3[3] = {total_new, Hk, D};
            tkn = kc_view(bkn, dt, 3, s3, NULL, 0);
            tvn = kc_view(bvn, dt, 3, s3, NULL, 0);
        } else {
            const int64_t s4[4] = {B, c->snew, Hk, D};
            tkn = kc_view(bkn, dt, 4, s4, NULL, 0);
            tvn = kc_view(bvn, dt, 4, s4, NULL, 0);
        }
        args.k_new = &tkn;
        args.v_new = &tvn;
    }
    if (bcos) {
        const int64_t s2[2] = {seqlen_ro, half};
        tcos = kc_view(bcos, dt, 2, s2, NULL, 0);
        tsin = kc_view(bsin, dt, 2, s2, NULL, 0);
        args.rotary_cos = &tcos;
        args.rotary_sin = &tsin;
        args.rotary_interleaved = !c->neox;
    }
    {
        const int64_t s1[1] = {B}, s1p[1] = {B + 1}, s2[2] = {B, max_blocks};
        if (bcs) {
            tcs = kc_view(bcs, FACL_DTYPE_I32, 1, s1, NULL, 0);
            args.cache_seqlens = &tcs;
        } else {
            args.cache_seqlens_value = c->cs;
        }
        if (bbi) {
            tbi = kc_view(bbi, FACL_DTYPE_I32, 1, s1, NULL, 0);
            args.cache_batch_idx = &tbi;
        }
        if (blp) {
            tlp = kc_view(blp, FACL_DTYPE_I32, 1, s1, NULL, 0);
            args.cache_leftpad = &tlp;
        }
        if (bbt) {
            tbt = kc_view(bbt, FACL_DTYPE_I32, 2, s2, NULL, 0);
            if (cache_call)
                args.block_table = &tbt;
            else
                o.block_table = &tbt;
        }
        if (bcuq) {
            tcuq = kc_view(bcuq, FACL_DTYPE_I32, 1, s1p, NULL, 0);
            if (cache_call) {
                args.cu_seqlens_q = &tcuq;
                args.max_seqlen_q = max_sq;
            }
        }
        if (bcun) {
            tcun = kc_view(bcun, FACL_DTYPE_I32, 1, s1p, NULL, 0);
            args.cu_seqlens_k_new = &tcun;
        }
        if (bcuk)
            tcuk = kc_view(bcuk, FACL_DTYPE_I32, 1, s1p, NULL, 0);
        if (bused) {
            tused = kc_view(bused, FACL_DTYPE_I32, 1, s1, NULL, 0);
            o.seqused_k = &tused;
        }
        if (bal) {
            const int64_t a2[2] = {B, Hq}, a1[1] = {Hq};
            tal = c->alibi == 2 ? kc_view(bal, FACL_DTYPE_F32, 2, a2, NULL, 0)
                                : kc_view(bal, FACL_DTYPE_F32, 1, a1, NULL, 0);
            o.alibi_slopes = &tal;
        }
    }
    o.causal = c->causal != NOCAUSAL;
    o.mask_align = p.align_top_left ? FACL_ALIGN_TOP_LEFT : FACL_ALIGN_BOTTOM_RIGHT;
    o.window_left = c->wl;
    o.window_right = c->wr;
    o.softcap = c->softcap;
    o.softmax_scale = c->scale;
    o.trust_cu_seqlens = trust;
    args.num_splits = ns;
    /* Forced 7 and automatic splits run with a caller workspace (poisoned, at an odd
     * offset, the size facl_fwd_kvcache_workspace_size gives); 2 allocates its own; 1
     * gets a workspace of one float, which an unsplit call must not need. The poison is
     * a large finite value, not NaN: the merge gives a NaN or infinite lse no weight, so
     * a partial the attention kernel failed to write would pass unseen under NaN, while
     * a finite 1000 dominates the merge and fails the comparison. */
    facl_tensor tws;
    if (c->call == KC_CACHE && (ns == 7 || ns == 0 || ns == 1)) {
        uint64_t bytes = 4;
        if (ns != 1 &&
            facl_fwd_kvcache_workspace_size(g_ctx, total_q, Hq, D, ns, &bytes) != FACL_SUCCESS) {
            kc_fail(r, "facl_fwd_kvcache_workspace_size: %s", facl_last_error());
            goto done;
        }
        const size_t floats = (size_t)(bytes / 4) + 3;
        float *poison = xcalloc(floats, sizeof *poison);
        for (size_t i = 0; i < floats; i++)
            poison[i] = 1000.0f;
        cl_int err;
        workspace = clCreateBuffer(facl_context_cl_context(g_ctx),
                                   CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, floats * sizeof(float),
                                   poison, &err);
        free(poison);
        if (err != CL_SUCCESS) {
            kc_fail(r, "workspace buffer: %d", (int)err);
            goto done;
        }
        const int64_t n_ws[1] = {(int64_t)(bytes / 4)};
        const kc_buf wb = {.mem = workspace};
        tws = kc_view(&wb, FACL_DTYPE_F32, 1, n_ws, NULL, 3);
        args.workspace = &tws;
    }

    /* ---- the call */
    {
        const double t0 = now_seconds();
        const facl_tensor *lse = blse ? &tlse : NULL;
        cl_int err;
        switch (c->call) {
        case KC_CACHE:
            r->status = facl_fwd_kvcache(g_ctx, g_call_queue, &tq, &tk, &tv, &args, &tout, lse,
                                         &o, 0, NULL, &ev);
            break;
        case KC_PAGED_VARLEN:
            r->status = facl_varlen_fwd(g_ctx, NULL, &tq, &tk, &tv, &tcuq, &tcuk, max_sq,
                                        p.max_seqlen_k, &tout, lse, &o, 0, NULL, &ev);
            break;
        case KC_PAGED_VARLEN_KV:
            r->status = facl_varlen_fwd_kvpacked(g_ctx, NULL, &tq, &tkv, &tcuq, &tcuk, max_sq,
                                                 p.max_seqlen_k, &tout, lse, &o, 0, NULL, &ev);
            break;
        }
        if (r->status != FACL_SUCCESS) {
            kc_fail(r, "call failed: %s: %s", facl_status_string(r->status), facl_last_error());
            if (ev)
                clReleaseEvent(ev);
            goto done;
        }
        if (ev) {
            err = clWaitForEvents(1, &ev);
            clReleaseEvent(ev);
            if (err != CL_SUCCESS) {
                kc_fail(r, "clWaitForEvents: %d", (int)err);
                goto done;
            }
        }
        err = clFinish(g_call_queue ? g_call_queue : queue);
        r->seconds = now_seconds() - t0;
        if (workspace)
            clReleaseMemObject(workspace);
        workspace = NULL;
        if (err != CL_SUCCESS) {
            kc_fail(r, "clFinish: %d", (int)err);
            goto done;
        }
    }
    for (int i = 0; i < bs.n; i++) {
        cl_int err = clEnqueueReadBuffer(queue, bs.b[i].mem, CL_TRUE, 0,
                                         bs.b[i].count * bs.b[i].esize, bs.b[i].back, 0, NULL,
                                         NULL);
        if (err != CL_SUCCESS) {
            kc_fail(r, "clEnqueueReadBuffer(%s): %d", bs.b[i].name, (int)err);
            goto done;
        }
    }

    /* ---- inputs unchanged; outputs' poisoned tails unchanged */
    for (int i = 0; i < bs.n; i++) {
        const kc_buf *b = &bs.b[i];
        if (b->is_cache)
            continue;
        if (b->is_output) {
            /* the element past the view (the only one when the view is empty) */
            const size_t last = b->count - 1;
            if (memcmp(b->host + last * b->esize, b->back + last * b->esize, b->esize) != 0)
                kc_fail(r, "%s: element %zu past the view was written", b->name, last);
            continue;
        }
        for (size_t e = 0; e < b->count; e++)
            if (memcmp(b->host + e * b->esize, b->back + e * b->esize, b->esize) != 0) {
                kc_fail(r, "input %s: element %zu changed", b->name, e);
                break;
            }
    }

    /* ---- the cache, element by element over the whole buffers */
    {
        const kc_buf *imgs[2] = {bk, bv};
        const unsigned char *want[2] = {kr.k_img, kr.v_img};
        const float *tol[2] = {kr.k_tol, kr.v_tol};
        for (int w = 0; w < 2; w++) {
            int64_t first, nbad;
            if (!imgs[w])
                continue;
            nbad = kvc_check_image(dt, want[w], tol[w], imgs[w]->back, imgs[w]->count, &first);
            if (nbad) {
                char where[200];
                const double g = testkit_load(dt, imgs[w]->back, (size_t)first);
                const double x = testkit_load(dt, want[w], (size_t)first);
                const double o0 = testkit_load(dt, imgs[w]->host, (size_t)first);
                /* a shared image: name the element after the view it lies in */
                int is_v = w == 1;
                if (!bv) {
                    char wk[200], wv[200];
                    kvc_describe_elem(&p, 0, first, wk, sizeof wk);
                    kvc_describe_elem(&p, 1, first, wv, sizeof wv);
                    is_v = strstr(wk, "no sequence") != NULL && strstr(wv, "no sequence") == NULL;
                }
                kvc_describe_elem(&p, is_v, first, where, sizeof where);
                kc_fail(r,
                        "%s: %lld of %zu elements wrong; first %s: got %.8g, expected %.8g "
                        "(tol %g), before the call %.8g",
                        imgs[w]->name, (long long)nbad, imgs[w]->count, where, g, x,
                        (double)(tol[w][first] > 0 ? tol[w][first] : 0.0f), o0);
            }
        }
    }

    /* ---- out and lse against the reference */
    r->got_out = xcalloc(r->n_out, sizeof *r->got_out);
    for (size_t i = 0; i < r->n_out; i++)
        r->got_out[i] = testkit_load(dt, bout->back, i);
    r->out = cmp_check(dt, r->got_out, r->ref_out, dt != FACL_DTYPE_F32 ? r->low_out : NULL,
                       r->n_out);
    if (!r->out.pass) {
        const int64_t bad = r->out.first_bad, t = bad / ((int64_t)Hq * D);
        int b = 0;
        char line[200];
        while (b + 1 < B && t >= cu_q[b + 1])
            b++;
        cmp_format(&r->out, line, sizeof line);
        kc_fail(r, "out wrong (%s): first at seq %d row %lld head %d dim %d: got %.6g ref %.6g "
                   "low %.6g",
                line, b, (long long)(t - cu_q[b]), (int)(bad / D % Hq), (int)(bad % D),
                (double)r->got_out[bad], r->ref_out[bad], (double)r->low_out[bad]);
    }
    if (blse) {
        r->got_lse = xcalloc(r->n_lse, sizeof *r->got_lse);
        for (int b = 0; b < B; b++)
            for (int h = 0; h < Hq; h++)
                for (int64_t i = 0; i < cu_q[b + 1] - cu_q[b]; i++) {
                    const size_t dev = varlen_q ? (size_t)h * total_q + cu_q[b] + i
                                                : ((size_t)b * Hq + h) * c->sq + i;
                    float x;
                    memcpy(&x, blse->back + dev * 4, 4);
                    r->got_lse[(size_t)h * total_q + cu_q[b] + i] = x;
                }
        r->lse = cmp_check(dt, r->got_lse, r->ref_lse, dt != FACL_DTYPE_F32 ? r->low_lse : NULL,
                           r->n_lse);
        if (!r->lse.pass) {
            const int64_t bad = r->lse.first_bad, t = bad % total_q;
            int b = 0;
            char line[200];
            while (b + 1 < B && t >= cu_q[b + 1])
                b++;
            cmp_format(&r->lse, line, sizeof line);
            kc_fail(r, "lse wrong (%s): first at seq %d head %d row %lld: got %.8g ref %.8g "
                       "low %.8g",
                    line, b, (int)(bad / total_q), (long long)(t - cu_q[b]),
                    (double)r->got_lse[bad], r->ref_lse[bad], (double)r->low_lse[bad]);
        }
    }

done:
    if (workspace)
        clReleaseMemObject(workspace);
    if (have_ref)
        kvc_ref_free(&kr);
    kc_free_bufs(&bs);
    free(cu_q);
    free(cu_new);
    free(cu_k);
    free(cs);
    free(bidx);
    free(table);
    free(q);
    free(k_new);
    free(v_new);
    free(cosv);
    free(sinv);
    free(slopes);
    if (v_img != k_img)
        free(v_img);
    free(k_img);
    return r->pass;
}

/* Run b agrees with run a within the rule: a's result stands for the reference. */
static int kc_agree(const kc_case *c, const kc_run *a, const kc_run *b, const char *what,
                    kc_run *report)
{
    int ok = 1;
    double *ref = xcalloc(a->n_out > a->n_lse ? a->n_out : a->n_lse, sizeof *ref);
    cmp_result ro, rl;
    char line[200];
    for (size_t i = 0; i < a->n_out; i++)
        ref[i] = a->got_out[i];
    ro = cmp_check(c->dt, b->got_out, ref, c->dt != FACL_DTYPE_F32 ? a->low_out : NULL, a->n_out);
    if (!ro.pass) {
        cmp_format(&ro, line, sizeof line);
        ok = kc_fail(report, "%s: out differs from the first run beyond the rule: %s", what, line);
    }
    if (a->got_lse && b->got_lse) {
        for (size_t i = 0; i < a->n_lse; i++)
            ref[i] = a->got_lse[i];
        rl = cmp_check(c->dt, b->got_lse, ref, c->dt != FACL_DTYPE_F32 ? a->low_lse : NULL,
                       a->n_lse);
        if (!rl.pass) {
            cmp_format(&rl, line, sizeof line);
            ok = kc_fail(report, "%s: lse differs from the first run beyond the rule: %s", what,
                         line);
        }
    }
    free(ref);
    return ok;
}

static void print_run(const char *label, const kc_run *r)
{
    char a[200], b[200];
    cmp_format(&r->out, a, sizeof a);
    cmp_format(&r->lse, b, sizeof b);
    print_message("  %s: %s (%.3f s)\n    out: %s\n    lse: %s\n", label,
                  r->pass ? "PASS" : "FAIL", r->seconds, a, b);
}

/* num_splits = 7 on queues other than the context's: a second in-order queue, an
 * out-of-order one where the device has them, and ten more in-order queues one after
 * another (more than the context keeps counters for), each compared with the unsplit
 * run `first` and the reference. */
static int sweep_queues(const kc_case *c, const kc_run *first, char *failures, size_t cap,
                        int verbose)
{
    cl_context clctx = facl_context_cl_context(g_ctx);
    cl_device_id dev = facl_context_device(g_ctx);
    cl_command_queue_properties supported = 0;
    const cl_int info_err =
        clGetDeviceInfo(dev, CL_DEVICE_QUEUE_PROPERTIES, sizeof supported, &supported, NULL);
    /* FACL_KVCACHE_QUEUES=n: n queues (the Oclgrind runs take 0: each is slow there) */
    const char *queues_env = getenv("FACL_KVCACHE_QUEUES");
    const int queues = queues_env && *queues_env ? atoi(queues_env) : 12;
    int ok = 1;
    if (info_err != CL_SUCCESS) { /* else the out-of-order queue would be left out unseen */
        appendf(failures, cap, "[queues] clGetDeviceInfo(CL_DEVICE_QUEUE_PROPERTIES): %d\n",
                (int)info_err);
        ok = 0;
    }
    for (int q = 0; q < queues; q++) {
        const int ooo = q == 1;
        if (ooo && !(supported & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE))
            continue; /* the device has no out-of-order queues: nothing to check */
        cl_int err;
        g_call_queue = clCreateCommandQueue(clctx, dev, ooo ? CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE : 0,
                                            &err);
        char label[64];
        snprintf(label, sizeof label, "num_splits=7 on %s queue %d", ooo ? "out-of-order" : "in-order", q);
        if (err != CL_SUCCESS) {
            appendf(failures, cap, "[%s] clCreateCommandQueue: %d\n", label, (int)err);
            g_call_queue = NULL;
            ok = 0;
            continue;
        }
        kc_run other;
        int one = kc_run_once(c, 7, c->trust, &other);
        if (one && first->pass)
            one = kc_agree(c, first, &other, label, &other);
        if (verbose || !one)
            print_run(label, &other);
        if (!one)
            appendf(failures, cap, "[%s] %s\n", label, other.detail);
        ok = ok && one;
        kc_run_free(&other);
        clReleaseCommandQueue(g_call_queue);
        g_call_queue = NULL;
    }
    return ok;
}

static void run_case_test(void **state)
{
    const named_kc *nc = *state;
    const kc_case *c = &nc->c;
    const int verbose = getenv("FACL_TEST_VERBOSE") != NULL;
    char failures[4096] = "";
    kc_run first, other;
    int ok;
    if (!g_ctx)
        fail_msg("facl_context_create(NULL) failed: %s", g_ctx_error);

    if (c->sweep_splits) {
        static const int splits[4] = {1, 2, 7, 0};
        ok = kc_run_once(c, 1, c->trust, &first);
        if (verbose || !ok)
            print_run("num_splits=1", &first);
        if (!ok)
            appendf(failures, sizeof failures, "[num_splits=1] %s\n", first.detail);
        for (int s = 1; s < 4; s++) {
            char label[32];
            int one = kc_run_once(c, splits[s], c->trust, &other);
            snprintf(label, sizeof label, "num_splits=%d", splits[s]);
            if (one && first.pass)
                one = kc_agree(c, &first, &other, label, &other);
            if (verbose || !one)
                print_run(label, &other);
            if (!one)
                appendf(failures, sizeof failures, "[%s] %s\n", label, other.detail);
            ok = ok && one;
            kc_run_free(&other);
        }
        ok = sweep_queues(c, &first, failures, sizeof failures, verbose) && ok;
    } else if (c->trust_cmp) {
        ok = kc_run_once(c, c->num_splits, 0, &first);
        if (verbose || !ok)
            print_run("untrusted", &first);
        if (!ok)
            appendf(failures, sizeof failures, "[untrusted] %s\n", first.detail);
        {
            int one = kc_run_once(c, c->num_splits, 1, &other);
            if (one && first.pass)
                one = kc_agree(c, &first, &other, "trusted", &other);
            if (verbose || !one)
                print_run("trusted", &other);
            if (!one)
                appendf(failures, sizeof failures, "[trusted] %s\n", other.detail);
            ok = ok && one;
            kc_run_free(&other);
        }
    } else {
        ok = kc_run_once(c, c->num_splits, c->trust, &first);
        if (verbose || !ok)
            print_run("run", &first);
        if (!ok)
            appendf(failures, sizeof failures, "%s\n", first.detail);
    }
    kc_run_free(&first);
    if (!ok) {
        print_message("case %s\n%s", nc->name, failures);
        fail_msg("%s", nc->name);
    }
}

/* ------------------------------------------------------------------ the case table */

/* Per-sequence lengths used by several groups. */
static const int32_t cs3[] = {17, 40, 5};          /* batch 3 */
static const int32_t cs3b[] = {0, 33, 60};         /* an empty cache row first */
static const int32_t lp3[] = {3, 0, 5};            /* leftpad <= cache_seqlens */
static const int32_t lp3b[] = {0, 30, 1};
static const int32_t cs16[] = {1, 40, 7, 63, 0, 12, 33, 5, 62, 19, 2, 50, 28, 9, 44, 31};
static const int32_t vq_mixed[] = {1, 37, 0, 1, 5};  /* decode, prefill chunk, none, ... */
static const int32_t vn_mixed[] = {1, 37, 0, 1, 5};
static const int32_t cs_mixed[] = {50, 0, 20, 90, 13};
static const int32_t vq_chunk[] = {64, 113};       /* chunked prefill */
static const int32_t cs_chunk[] = {64, 0};
static const int32_t vq_nonew[] = {3, 1, 6};       /* varlen q without new keys */
static const int32_t vq_diff[] = {2, 0, 3};        /* new keys != queries */
static const int32_t vn_diff[] = {1, 2, 3};
static const int32_t sk_pv[] = {37, 0, 129, 5};    /* paged varlen key counts */
static const int32_t sq_pv[] = {5, 3, 1, 17};
static const int32_t used_pv[] = {20, 0, 100, 5};

/* The core: dtypes x head dims x heads, decode and short queries, with and without new
 * keys, dense and paged, causal and not. */
static void add_basic(void)
{
    static const int dims[] = {1, 32, 59, 64, 80, 128, 256};
    static const int heads[][2] = {{1, 1}, {6, 2}, {8, 1}, {32, 8}};
    static const int sqs[] = {1, 2, 5, 7, 1, 3, 1};
    int n = 0;
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        for (int t = 0; t < 3; t++, n++) {
            const int *hd = heads[(i + (size_t)t) % 4];
            const int big = dims[i] >= 128 || hd[0] >= 32;
            kc_case c = kc_base(KC_CACHE, k_dtypes[t], dims[i], hd[0], hd[1], n % 2 ? 3 : 1,
                                sqs[(i + (size_t)t) % 7]);
            c.capacity = big ? 48 : 96;
            if (c.batch == 3) {
                c.cs_v = cs3;
            } else {
                c.cs = big ? 20 : 70;
            }
            c.has_new = n % 3 != 2;
            c.snew = n % 3 == 0 ? 1 : 5;
            if (c.has_new && c.snew > c.sq && n % 2)
                c.snew = c.sq; /* decode-like: new keys = queries */
            c.causal = n % 4 == 1 ? CAUSAL_BR : n % 4 == 3 ? CAUSAL_TL : NOCAUSAL;
            if (n % 5 == 4) {
                c.page_size = n % 2 ? 16 : 1;
                c.extra_pages = 3;
            }
            c.want_lse = n % 7 != 6;
            kc_add("basic", c);
        }
}

/* Decode: seqlen_q 1, one new key each, batch 16 with cache lengths all over. */
static void add_decode(void)
{
    for (int t = 0; t < 3; t++) {
        kc_case c = kc_base(KC_CACHE, k_dtypes[t], t == 2 ? 128 : 64, t == 1 ? 32 : 8,
                            t == 1 ? 8 : 1, 16, 1);
        c.cs_v = cs16;
        c.capacity = 64;
        c.has_new = 1;
        c.snew = 1;
        c.causal = t == 0 ? CAUSAL_BR : NOCAUSAL;
        if (t == 1) {
            c.page_size = 16;
            c.extra_pages = 5;
        }
        kc_add("decode", c);
    }
    /* seqlen_q 1 without a new key, cache_seqlens as a host value */
    {
        kc_case c = kc_base(KC_CACHE, FACL_DTYPE_F16, 64, 6, 2, 3, 1);
        c.cs = 45;
        c.cs_host = 1;
        c.capacity = 50;
        kc_add("decode", c);
        c = kc_base(KC_CACHE, FACL_DTYPE_BF16, 80, 8, 1, 3, 4);
        c.cs = 30;
        c.cs_host = 1;
        c.has_new = 1;
        c.snew = 4;
        c.causal = CAUSAL_BR;
        c.capacity = 40;
        kc_add("decode", c);
    }
}

/* seqlen_new 0, 1 and 5, with and without k_new, on a dense cache. */
static void add_new(void)
{
    static const int news[] = {-1, 0, 1, 5}; /* -1: no k_new at all */
    for (size_t i = 0; i < sizeof news / sizeof news[0]; i++)
        for (int t = 0; t < 2; t++) {
            kc_case c = kc_base(KC_CACHE, k_dtypes[(i + (size_t)t) % 3], t ? 59 : 64, 6, 2, 3, 5);
            c.cs_v = t ? cs3b : cs3;
            c.capacity = 70;
            c.has_new = news[i] >= 0;
            c.snew = news[i] < 0 ? 0 : news[i];
            c.causal = t ? CAUSAL_BR : NOCAUSAL;
            kc_add("new", c);
        }
}

/* Paged caches: page sizes 1, 24 (not a power of two: the kernels divide instead of
 * shifting; 16 or more, so the H200 copies its rows with the copy engine), 16, 256;
 * shuffled tables, -1 past the used pages, unused pages in the pool. */
static void add_paged(void)
{
    static const int psz[] = {1, 24, 16, 256};
    for (size_t i = 0; i < sizeof psz / sizeof psz[0]; i++)
        for (int t = 0; t < 3; t++) {
            kc_case c = kc_base(KC_CACHE, k_dtypes[t], t == 1 ? 128 : 64, 6, 2, 3,
                                t == 0 ? 1 : 6);
            c.page_size = psz[i];
            c.capacity = psz[i] == 256 ? 300 : 90;
            c.extra_pages = 2;
            c.cs_v = t == 2 ? cs3b : cs3;
            c.has_new = t != 1;
            c.snew = t == 0 ? 1 : 6;
            c.causal = t == 2 ? CAUSAL_BR : NOCAUSAL;
            c.leftpad = psz[i] == 16 && t == 0 ? lp3 : NULL;
            c.shared_kv = psz[i] == 256 && t == 2;
            kc_add("paged", c);
        }
}

/* cache_batch_idx (permutations, batch_cache > batch), cache_leftpad, shared k/v buffer. */
static void add_index(void)
{
    for (int t = 0; t < 3; t++) {
        kc_case c = kc_base(KC_CACHE, k_dtypes[t], t == 1 ? 32 : 64, 6, 2, 3, t == 2 ? 1 : 4);
        c.capacity = 72;
        c.cs_v = cs3;
        c.batch_cache = t == 0 ? 3 : 7;
        c.batch_idx = 1;
        c.has_new = 1;
        c.snew = t == 2 ? 1 : 4;
        c.causal = t == 1 ? CAUSAL_BR : NOCAUSAL;
        kc_add("batch-idx", c);

        c = kc_base(KC_CACHE, k_dtypes[t], 64, 8, 1, 3, t == 0 ? 1 : 5);
        c.capacity = 72;
        c.cs_v = t == 1 ? cs3b : cs3;
        c.leftpad = t == 1 ? lp3b : lp3;
        c.has_new = t != 2;
        c.snew = 5;
        c.causal = t == 2 ? NOCAUSAL : CAUSAL_BR;
        c.alibi = t == 0 ? 1 : 0;
        c.batch_cache = t == 2 ? 5 : 0;
        c.batch_idx = t == 2;
        kc_add("leftpad", c);

        c = kc_base(KC_CACHE, k_dtypes[t], 40, 4, 2, 3, 3);
        c.capacity = 50;
        c.cs_v = cs3;
        c.has_new = 1;
        c.snew = 3;
        c.shared_kv = 1;
        c.batch_cache = 4;
        c.batch_idx = 1;
        c.causal = t == 0 ? CAUSAL_BR : NOCAUSAL;
        kc_add("shared-kv", c);
    }
}

/* Rotary: interleaved and GPT-NeoX, rotary_dim < d and == d, with and without causal
 * (the query position rule), windows (a window also moves the queries), leftpad (rotary
 * positions stay absolute). */
static void add_rotary(void)
{
    int n = 0;
    for (int neox = 0; neox < 2; neox++)
        for (int full = 0; full < 2; full++)
            for (int causal = 0; causal < 2; causal++, n++) {
                const facl_dtype dt = k_dtypes[n % 3];
                const int d = n % 4 == 3 ? 128 : 64;
                kc_case c = kc_base(KC_CACHE, dt, d, 6, 2, 3, 5);
                c.capacity = 80;
                c.cs_v = cs3;
                c.has_new = 1;
                c.snew = n % 2 ? 5 : 3;
                c.rotary_dim = full ? d : (n % 3 == 0 ? 16 : 32);
                c.neox = neox;
                c.causal = causal ? (n % 4 == 1 ? CAUSAL_TL : CAUSAL_BR) : NOCAUSAL;
                c.leftpad = n == 5 ? lp3 : NULL;
                c.page_size = n == 6 ? 16 : 0;
                kc_add("rotary", c);
            }
    /* no causal but a window: queries at cache_seqlens + i */
    {
        kc_case c = kc_base(KC_CACHE, FACL_DTYPE_F16, 64, 6, 2, 3, 5);
        c.capacity = 80;
        c.cs_v = cs3;
        c.has_new = 1;
        c.snew = 5;
        c.rotary_dim = 32;
        c.wl = 20;
        kc_add("rotary", c);
        /* a window >= the capacity is no window: queries all at cache_seqlens */
        c.wl = INT32_MAX;
        c.wr = 80;
        c.neox = 1;
        kc_add("rotary", c);
        /* d = 59 (odd) with rotary_dim 58, decode */
        c = kc_base(KC_CACHE, FACL_DTYPE_BF16, 59, 8, 1, 3, 1);
        c.capacity = 41; /* sequence 1 fills it exactly */
        c.cs_v = cs3;
        c.has_new = 1;
        c.snew = 1;
        c.rotary_dim = 58;
        c.causal = CAUSAL_BR;
        kc_add("rotary", c);
        /* rotary on q only (no new keys) */
        c = kc_base(KC_CACHE, FACL_DTYPE_F32, 64, 4, 4, 3, 2);
        c.capacity = 40;
        c.cs_v = cs3;
        c.rotary_dim = 64;
        c.neox = 1;
        c.causal = CAUSAL_BR;
        kc_add("rotary", c);
    }
}

/* Masks and score modifiers: windows (huge ones included), softcap, ALiBi (heads) and
 * (batch, heads), a custom scale, top-left alignment. */
static void add_masks(void)
{
    static const int32_t wins[][2] = {{8, 0},          {16, 4},     {0, 0},
                                      {INT32_MAX, -1}, {-1, INT32_MAX}, {INT32_MAX, INT32_MAX},
                                      {70, 71},        {71, 3}};
    for (size_t w = 0; w < sizeof wins / sizeof wins[0]; w++) {
        kc_case c = kc_base(KC_CACHE, k_dtypes[w % 3], 64, 6, 2, 3, 6);
        c.capacity = 71; /* windows 71 and more: unbounded */
        c.cs_v = cs3;
        c.leftpad = w == 1 ? lp3 : NULL;
        c.has_new = 1;
        c.snew = w % 2 ? 6 : 2;
        c.wl = wins[w][0];
        c.wr = wins[w][1];
        c.top_left = w % 3 == 2;
        c.page_size = w == 4 ? 16 : 0;
        kc_add("window", c);
    }
    /* Windows of exactly the capacity (unbounded) and one less (a window): only rows
     * beyond the keys tell them apart, so seqlen_q 70 over 20 keys; the left window with
     * top-left alignment, the right one bottom-right. Paged: the capacity is
     * max_blocks * page_size (48 for 40 keys in pages of 16), not the keys in use. */
    for (int e = 0; e < 2; e++)
        for (int pg = 0; pg < 2; pg++)
            for (int side = 0; side < 2; side++) {
                const int cap = pg ? 48 : 40;
                kc_case c = kc_base(KC_CACHE, k_dtypes[(e + pg + side) % 3], 64, 4, 2, 2, 70);
                c.capacity = 40;
                c.page_size = pg ? 16 : 0;
                c.cs = 20;
                if (side == 0) {
                    c.wl = cap - e;
                    c.top_left = 1;
                } else {
                    c.wr = cap - e;
                }
                kc_add("window-edge", c);
            }
    for (int t = 0; t < 3; t++) {
        kc_case c = kc_base(KC_CACHE, k_dtypes[t], 64, 6, 2, 3, t == 0 ? 1 : 5);
        c.capacity = 64;
        c.cs_v = cs3;
        c.has_new = 1;
        c.snew = t == 0 ? 1 : 5;
        c.softcap = t == 1 ? 5.0f : 30.0f;
        c.scale = t == 2 ? 0.3f : 0.0f;
        c.causal = t == 1 ? CAUSAL_BR : NOCAUSAL;
        kc_add("softcap", c);

        c = kc_base(KC_CACHE, k_dtypes[t], t == 2 ? 59 : 64, 6, 2, 3, 4);
        c.capacity = 64;
        c.cs_v = cs3;
        c.leftpad = t == 1 ? lp3 : NULL;
        c.has_new = 1;
        c.snew = 4;
        c.alibi = t == 0 ? 1 : 2;
        c.causal = t == 2 ? CAUSAL_BR : NOCAUSAL;
        c.top_left = t == 1;
        c.page_size = t == 2 ? 16 : 0;
        c.want_lse = t != 1;
        kc_add("alibi", c);
    }
    {
        kc_case c = kc_base(KC_CACHE, FACL_DTYPE_F16, 64, 8, 2, 3, 5);
        c.capacity = 64;
        c.cs_v = cs3;
        c.has_new = 1;
        c.snew = 5;
        c.softcap = 20.0f;
        c.alibi = 2;
        c.wl = 12;
        c.causal = CAUSAL_BR;
        c.rotary_dim = 32;
        c.leftpad = lp3;
        c.page_size = 16;
        c.extra_pages = 1;
        kc_add("combined", c);
    }
}

/* num_splits 1, 2, 7, 0 on the same inputs. */
static void add_splits(void)
{
    for (int t = 0; t < 3; t++) {
        kc_case c = kc_base(KC_CACHE, k_dtypes[t], t == 1 ? 128 : 64, 8, 2, t == 0 ? 3 : 1,
                            t == 2 ? 4 : 1);
        c.capacity = 300;
        if (c.batch == 3) {
            static const int32_t csl[] = {250, 3, 120};
            c.cs_v = csl;
        } else {
            c.cs = 280;
        }
        c.has_new = 1;
        c.snew = t == 2 ? 4 : 1;
        c.causal = t == 2 ? CAUSAL_BR : NOCAUSAL;
        c.sweep_splits = 1;
        c.page_size = t == 1 ? 16 : 0;
        c.alibi = t == 2;
        c.softcap = t == 0 ? 10.0f : 0.0f;
        kc_add("splits", c);
    }
    /* a window and leftpad, so that some chunks see no key (lse +inf partials) */
    {
        kc_case c = kc_base(KC_CACHE, FACL_DTYPE_F16, 64, 4, 1, 3, 3);
        static const int32_t csl[] = {200, 60, 150}, lpl[] = {100, 0, 149};
        c.capacity = 210;
        c.cs_v = csl;
        c.leftpad = lpl;
        c.has_new = 1;
        c.snew = 3;
        c.wl = 10;
        c.causal = CAUSAL_BR;
        c.sweep_splits = 1;
        kc_add("splits", c);
    }
}

/* Varlen queries into the cache: chunked prefill, a mixed batch (decode, prefill, no
 * queries), new keys through cu_seqlens_k_new. */
static void add_varlen_q(void)
{
    for (int t = 0; t < 3; t++) {
        kc_case c = kc_base(KC_CACHE, k_dtypes[t], t == 2 ? 80 : 64, 6, 2, 2, 0);
        c.sq_v = vq_chunk;
        c.snew_v = vq_chunk;
        c.has_new = 1;
        c.cs_v = cs_chunk;
        c.capacity = 200;
        c.causal = CAUSAL_BR;
        c.page_size = t == 1 ? 16 : 0;
        c.rotary_dim = t == 0 ? 64 : 0;
        kc_add("chunked-prefill", c);

        c = kc_base(KC_CACHE, k_dtypes[t], 64, 8, 2, 5, 0);
        c.sq_v = vq_mixed;
        c.snew_v = vn_mixed;
        c.has_new = 1;
        c.cs_v = cs_mixed;
        c.capacity = 110;
        c.causal = t == 1 ? NOCAUSAL : CAUSAL_BR;
        c.page_size = t == 2 ? 16 : 0;
        c.extra_pages = 2;
        c.rotary_dim = t == 2 ? 32 : 0;
        c.neox = 1;
        kc_add("mixed-batch", c);
    }
    {
        kc_case c = kc_base(KC_CACHE, FACL_DTYPE_F16, 64, 6, 2, 3, 0);
        c.sq_v = vq_nonew;
        c.cs_v = cs3;
        c.capacity = 64;
        c.causal = CAUSAL_BR;
        kc_add("varlen-q", c);
        /* new keys in a different count than queries (a sequence with none and 2 new) */
        c = kc_base(KC_CACHE, FACL_DTYPE_BF16, 64, 6, 2, 3, 0);
        c.sq_v = vq_diff;
        c.snew_v = vn_diff;
        c.has_new = 1;
        c.cs_v = cs3;
        c.capacity = 64;
        c.causal = CAUSAL_BR;
        kc_add("varlen-q", c);
    }
}

/* trust_cu_seqlens = 1 on valid inputs: the same results as the checked call. */
static void add_trusted(void)
{
    kc_case c = kc_base(KC_CACHE, FACL_DTYPE_F16, 64, 8, 2, 5, 0);
    c.sq_v = vq_mixed;
    c.snew_v = vn_mixed;
    c.has_new = 1;
    c.cs_v = cs_mixed;
    c.capacity = 110;
    c.causal = CAUSAL_BR;
    c.page_size = 16;
    c.extra_pages = 2;
    c.leftpad = NULL;
    c.trust_cmp = 1;
    kc_add("trusted", c);
    c = kc_base(KC_CACHE, FACL_DTYPE_BF16, 64, 6, 2, 3, 3);
    c.cs_v = cs3;
    c.leftpad = lp3;
    c.batch_cache = 5;
    c.batch_idx = 1;
    c.has_new = 1;
    c.snew = 3;
    c.rotary_dim = 32;
    c.capacity = 64;
    c.trust_cmp = 1;
    kc_add("trusted", c);
}

/* batch 0 and seqlen_q 0: success, nothing written. */
static void add_empty(void)
{
    for (int t = 0; t < 3; t++) {
        kc_case c = kc_base(KC_CACHE, k_dtypes[t], 64, 6, 2, 0, 3);
        c.capacity = 32;
        c.batch_cache = 2;
        c.cs = 4;
        c.cs_host = t == 1;
        c.has_new = t != 2;
        c.snew = 3;
        c.page_size = t == 2 ? 16 : 0;
        kc_add("empty", c);

        c = kc_base(KC_CACHE, k_dtypes[t], 64, 6, 2, 3, 0);
        c.capacity = 48;
        c.cs_v = cs3;
        c.causal = t == 1 ? CAUSAL_BR : NOCAUSAL;
        c.page_size = t == 2 ? 16 : 0;
        kc_add("empty", c);
    }
}

/* The varlen calls with opts->block_table: paged k / v, and a paged kv. */
static void add_paged_varlen(void)
{
    static const int psz[] = {1, 16, 256};
    for (size_t i = 0; i < 3; i++)
        for (int t = 0; t < 3; t++) {
            const int packed = (i + (size_t)t) % 2;
            kc_case c = kc_base(packed ? KC_PAGED_VARLEN_KV : KC_PAGED_VARLEN, k_dtypes[t],
                                t == 2 ? 59 : 64, 6, 2, 4, 0);
            c.sq_v = sq_pv;
            c.sk_v = sk_pv;
            c.page_size = psz[i];
            c.capacity = psz[i] == 256 ? 256 : 140;
            c.extra_pages = 2;
            c.used_k = t == 1 ? used_pv : NULL;
            c.causal = t == 0 ? CAUSAL_BR : t == 2 ? CAUSAL_TL : NOCAUSAL;
            c.alibi = i == 2 && t == 1;
            c.softcap = i == 1 && t == 2 ? 10.0f : 0.0f;
            kc_add("varlen-paged", c);
        }
    /* a window against max_seqlen_k (129): 129 is unbounded, 128 is a window */
    for (int e = 0; e < 2; e++) {
        kc_case c = kc_base(KC_PAGED_VARLEN, FACL_DTYPE_F16, 64, 4, 2, 4, 0);
        c.sq_v = sq_pv;
        c.sk_v = sk_pv;
        c.page_size = 16;
        c.capacity = 140;
        c.wr = 129 - e;
        c.wl = 3;
        c.top_left = 1;
        kc_add("varlen-paged", c);
    }
    {
        kc_case c = kc_base(KC_PAGED_VARLEN, FACL_DTYPE_BF16, 64, 4, 2, 4, 0);
        c.sq_v = sq_pv;
        c.sk_v = sk_pv;
        c.page_size = 16;
        c.capacity = 140;
        c.used_k = used_pv;
        c.causal = CAUSAL_BR;
        c.trust_cmp = 1;
        kc_add("varlen-paged", c);
    }
}

/* Q's rows not 16-byte aligned (its view one or three elements into the buffer): the
 * tensor-core kernel then reads Q into registers (read_q_bits) instead of copying the
 * rows into local memory (Q_BY_COPY), the path every aligned dense case takes. Marked
 * `always`, so that every share of the suite, the emulated ones included, runs it. */
static void add_q_unaligned(void)
{
    static const int32_t cs_a[] = {17, 40, 5}, cs_b[] = {30, 3};
    kc_case c;
    /* decode over a dense cache in two splits (their in-kernel merge starts from warp 0's
     * registers); one split count only, to keep the emulated suites' compile time down */
    c = kc_base(KC_CACHE, FACL_DTYPE_F16, 128, 8, 2, 3, 1);
    c.cs_v = cs_a;
    c.q_offset = 1;
    c.num_splits = 2;
    c.always = 1;
    kc_add("q-unaligned", c);
    /* three query rows per sequence with an append, causal, pages of 16 */
    c = kc_base(KC_CACHE, FACL_DTYPE_BF16, 64, 6, 2, 2, 3);
    c.cs_v = cs_b;
    c.has_new = 1;
    c.snew = 3;
    c.causal = 1;
    c.page_size = 16;
    c.q_offset = 3;
    c.always = 1;
    kc_add("q-unaligned", c);
}

/* Decode-like GQA shapes (d = 128) over caches whose unused positions hold NaN
 * (kc_nan_unused): a kernel that copies rows past the keys, before a leftpad or of unused
 * rows and pages must zero them. Key counts (after the append) end inside a 16-row tile
 * and just before, at and past a 128-key step, one sequence has none. Marked `always`:
 * the dense and the page-256 fp16 cases (the bulk suite's filter keeps fp16 only) and the
 * page-16 bf16 one, so every default suite runs at least two of them. */
static void add_unused_nan(void)
{
    static const int32_t cs_a[] = {0, 17, 128, 300}, cs_b[] = {5, 127, 0, 200};
    static const int32_t cs_c[] = {129, 1, 100}, cs_d[] = {17, 300, 128}, lp_d[] = {5, 100, 0};
    static const int32_t cs_p1[] = {1, 17, 100}, cs_p16[] = {0, 127, 128, 129};
    static const int32_t cs_p24[] = {5, 200, 17}, lp_p24[] = {2, 30, 0};
    static const int32_t cs_p256[] = {300, 1, 0, 129}, cs_w[] = {200, 5, 129};
    kc_case c;

    /* dense, no append, cache rows 4 and 5 unused, sequence 0 empty; splits */
    c = kc_base(KC_CACHE, FACL_DTYPE_F16, 128, 8, 2, 4, 1);
    c.cs_v = cs_a;
    c.capacity = 320;
    c.batch_cache = 6;
    c.sweep_splits = 1;
    c.nan_unused = c.always = 1;
    kc_add("unused-nan", c);
    /* dense with one appended key (the empty row gets its first) */
    c = kc_base(KC_CACHE, FACL_DTYPE_F16, 128, 32, 8, 4, 1);
    c.cs_v = cs_b;
    c.capacity = 320;
    c.has_new = 1;
    c.snew = 1;
    c.nan_unused = 1;
    kc_add("unused-nan", c);
    /* cache_batch_idx into 6 rows: 3 of them unused */
    c = kc_base(KC_CACHE, FACL_DTYPE_BF16, 128, 8, 2, 3, 1);
    c.cs_v = cs_c;
    c.capacity = 320;
    c.batch_cache = 6;
    c.batch_idx = 1;
    c.has_new = 1;
    c.snew = 1;
    c.nan_unused = 1;
    kc_add("unused-nan", c);
    /* leftpad: NaN before it too */
    c = kc_base(KC_CACHE, FACL_DTYPE_BF16, 128, 32, 8, 3, 1);
    c.cs_v = cs_d;
    c.leftpad = lp_d;
    c.capacity = 320;
    c.has_new = 1;
    c.snew = 1;
    c.nan_unused = 1;
    kc_add("unused-nan", c);
    /* pages of 1: every unused page and no partial one */
    c = kc_base(KC_CACHE, FACL_DTYPE_F16, 128, 8, 2, 3, 1);
    c.cs_v = cs_p1;
    c.capacity = 160;
    c.page_size = 1;
    c.extra_pages = 5;
    c.has_new = 1;
    c.snew = 1;
    c.nan_unused = 1;
    kc_add("unused-nan", c);
    /* pages of 16: key counts 127, 128, 129 (one a whole tile); splits */
    c = kc_base(KC_CACHE, FACL_DTYPE_BF16, 128, 32, 8, 4, 1);
    c.cs_v = cs_p16;
    c.capacity = 320;
    c.page_size = 16;
    c.extra_pages = 3;
    c.sweep_splits = 1;
    c.nan_unused = c.always = 1;
    kc_add("unused-nan", c);
    /* pages of 24 (the division path) with leftpad */
    c = kc_base(KC_CACHE, FACL_DTYPE_F32, 128, 8, 2, 3, 1);
    c.cs_v = cs_p24;
    c.leftpad = lp_p24;
    c.capacity = 320;
    c.page_size = 24;
    c.extra_pages = 2;
    c.has_new = 1;
    c.snew = 1;
    c.nan_unused = 1;
    kc_add("unused-nan", c);
    /* pages of 256, three queries each (causal), three appended keys */
    c = kc_base(KC_CACHE, FACL_DTYPE_F16, 128, 8, 2, 4, 3);
    c.cs_v = cs_p256;
    c.capacity = 384;
    c.page_size = 256;
    c.extra_pages = 2;
    c.has_new = 1;
    c.snew = 3;
    c.causal = CAUSAL_BR;
    c.nan_unused = c.always = 1;
    kc_add("unused-nan", c);
    /* a left window: keys before it are finite and masked, rows past the keys NaN */
    c = kc_base(KC_CACHE, FACL_DTYPE_F16, 128, 8, 2, 3, 1);
    c.cs_v = cs_w;
    c.capacity = 320;
    c.has_new = 1;
    c.snew = 1;
    c.causal = CAUSAL_BR;
    c.wl = 40;
    c.nan_unused = 1;
    kc_add("unused-nan", c);
    /* cache_seqlens as a value: 129 keys in every row */
    c = kc_base(KC_CACHE, FACL_DTYPE_BF16, 128, 32, 8, 2, 1);
    c.cs = 129;
    c.cs_host = 1;
    c.capacity = 320;
    c.nan_unused = 1;
    kc_add("unused-nan", c);
}

/* FACL_KVCACHE_SLOW=1: a larger grid: every head dim of SPEC's list x dtype, twice each
 * (heads and page size rotating: dense, 1, 16, 256), with caches of about 1000 keys,
 * rotary, causal and explicit or automatic splits rotating too. 84 cases: every case is
 * its own kernel variant, and a cold PoCL compiles each for tens of seconds. */
static void add_slow(void)
{
    static const int dims[] = {1, 8, 32, 40, 59, 64, 80, 96, 111, 128, 160, 192, 224, 256};
    static const int heads[][2] = {{1, 1}, {6, 2}, {8, 1}, {32, 8}};
    static const int psz[] = {0, 1, 16, 256};
    static const int32_t csl[] = {700, 5, 1023};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        for (int t = 0; t < 3; t++)
            for (int k = 0; k < 2; k++) {
                const int n = (int)((i * 3 + (size_t)t) * 2 + (size_t)k);
                const int h = (int)(i + (size_t)t + 2 * (size_t)k) % 4;
                const int pg = (int)(i + 2 * (size_t)t + (size_t)k) % 4;
                kc_case c = kc_base(KC_CACHE, k_dtypes[t], dims[i], heads[h][0], heads[h][1], 3,
                                    n % 3 == 0 ? 1 : 7);
                c.capacity = 1100;
                c.cs_v = csl;
                c.page_size = psz[pg];
                c.extra_pages = 3;
                c.has_new = n % 4 != 3;
                c.snew = c.sq;
                c.causal = n % 2 ? CAUSAL_BR : NOCAUSAL;
                c.rotary_dim = dims[i] % 2 == 0 && n % 5 < 2 ? dims[i] : 0;
                c.neox = n % 5 == 1;
                c.num_splits = (n / 2) % 3 == 0 ? 0 : (n / 2) % 3 == 1 ? 1 : 5;
                kc_add("slow", c);
            }
}

int main(void)
{
    const char *filter = getenv("FACL_TEST_FILTER");
    const char *slow = getenv("FACL_KVCACHE_SLOW");
    struct CMUnitTest *tests;
    size_t nsel = 0;
    int failed;
    facl_status st;

    if (slow && *slow && strcmp(slow, "0") != 0) {
        add_slow();
    } else {
        add_basic();
        add_decode();
        add_new();
        add_paged();
        add_index();
        add_rotary();
        add_masks();
        add_splits();
        add_varlen_q();
        add_trusted();
        add_empty();
        add_paged_varlen();
        add_unused_nan();
        add_q_unaligned();
    }

    tests = calloc(g_ncases ? g_ncases : 1, sizeof *tests);
    if (!tests)
        return 1;
    /* FACL_KVCACHE_EVERY=n keeps every n-th case (of those the filter selects): the
     * default suite's share, so that its kernel compiles stay within CI's time; the
     * 'kvcache_all' test (suite 'slow') runs every case. Cases marked `always` are kept
     * besides and not counted, so they move no other case in or out of the share. */
    const char *every_env = getenv("FACL_KVCACHE_EVERY");
    const long every = every_env && atol(every_env) > 1 ? atol(every_env) : 1;
    size_t seen = 0;
    for (size_t i = 0; i < g_ncases; i++) {
        if (filter && *filter && !case_suite_match(filter, g_cases[i].name))
            continue;
        if (!g_cases[i].c.always && seen++ % (size_t)every != 0)
            continue;
        tests[nsel].name = g_cases[i].name;
        tests[nsel].test_func = run_case_test;
        tests[nsel].initial_state = &g_cases[i];
        nsel++;
    }
    if (nsel == 0) {
        print_error("kvcache: FACL_TEST_FILTER='%s' selects none of the %zu cases: failing (the "
                    "names look like '%s')\n",
                    filter ? filter : "", g_ncases, g_ncases ? g_cases[0].name : "(none)");
        free(tests);
        free(g_cases);
        return 1;
    }
    if (filter && *filter)
        print_message("FACL_TEST_FILTER='%s' selects %zu of %zu cases\n", filter, nsel, g_ncases);
    st = facl_context_create(NULL, &g_ctx);
    if (st != FACL_SUCCESS) {
        g_ctx = NULL;
        snprintf(g_ctx_error, sizeof g_ctx_error, "%s: %s", facl_status_string(st),
                 facl_last_error());
    } else {
        facl_device_info info = FACL_DEVICE_INFO_INIT;
        if (facl_context_device_info(g_ctx, &info) == FACL_SUCCESS)
            print_message("device: %s / %s (%s)\n", info.platform_name, info.device_name,
                          info.driver_version);
    }
    failed = _cmocka_run_group_tests("kvcache", tests, nsel, NULL, NULL);
    facl_context_free(g_ctx);
    free(tests);
    free(g_cases);
    return failed;
}
