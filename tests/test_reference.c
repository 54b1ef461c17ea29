/*
 * Tests of the test kit itself (no OpenCL): storage conversions against known bit
 * patterns, Philox against Random123's known answers, the dropout decision, the PRNG,
 * the correctness rule, and properties of the reference attention computed
 * independently on small cases.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "compare.h"
#include "numeric.h"
#include "reference.h"

static float bits_f32(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static int f16_is_nan(uint16_t h)
{
    return (h & 0x7c00u) == 0x7c00u && (h & 0x03ffu) != 0;
}

/* ------------------------------------------------------------------ fp16 */

static void test_f16_known_patterns(void **state)
{
    (void)state;
    assert_int_equal(testkit_f32_to_f16(0.0f), 0x0000);
    assert_int_equal(testkit_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(testkit_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(testkit_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(testkit_f32_to_f16(0.1f), 0x2e66);
    assert_int_equal(testkit_f32_to_f16(1.0f / 3.0f), 0x3555);
    assert_int_equal(testkit_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(testkit_f32_to_f16(65519.996f), 0x7bff); /* just below the tie */
    assert_int_equal(testkit_f32_to_f16(65520.0f), 0x7c00);   /* tie -> even = inf */
    assert_int_equal(testkit_f32_to_f16(-1e9f), 0xfc00);
    assert_int_equal(testkit_f32_to_f16(INFINITY), 0x7c00);
    assert_int_equal(testkit_f32_to_f16(-INFINITY), 0xfc00);
    /* round to nearest even between 1 and 1 + 2^-10 */
    assert_int_equal(testkit_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
    assert_int_equal(testkit_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);
    assert_int_equal(testkit_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
    assert_int_equal(testkit_f32_to_f16(1.0f + 0x1p-11f - 0x1p-23f), 0x3c00);
    /* a carry from the mantissa into the exponent */
    assert_int_equal(testkit_f32_to_f16(2.0f - 0x1p-12f), 0x4000);
    /* subnormals */
    assert_int_equal(testkit_f32_to_f16(0x1p-14f), 0x0400);
    assert_int_equal(testkit_f32_to_f16(0x1p-24f), 0x0001);
    assert_int_equal(testkit_f32_to_f16(1023 * 0x1p-24f), 0x03ff);
    assert_int_equal(testkit_f32_to_f16(1023.5f * 0x1p-24f), 0x0400); /* tie -> even */
    assert_int_equal(testkit_f32_to_f16(0x1p-25f), 0x0000);            /* tie -> even 0 */
    assert_int_equal(testkit_f32_to_f16(bits_f32(0x33000001u)), 0x0001);
    assert_int_equal(testkit_f32_to_f16(-0x1p-25f), 0x8000);
    assert_int_equal(testkit_f32_to_f16(3 * 0x1p-25f), 0x0002); /* 1.5 units -> 2 */
    assert_int_equal(testkit_f32_to_f16(5 * 0x1p-25f), 0x0002); /* 2.5 units -> 2 */
    assert_int_equal(testkit_f32_to_f16(1e-30f), 0x0000);
    assert_int_equal(testkit_f32_to_f16(bits_f32(0x00000001u)), 0x0000);
    /* NaN stays NaN (quiet or signalling input, either sign) */
    assert_true(f16_is_nan(testkit_f32_to_f16(NAN)));
    assert_true(f16_is_nan(testkit_f32_to_f16(bits_f32(0x7f800001u))));
    assert_true(f16_is_nan(testkit_f32_to_f16(bits_f32(0xffc00000u))));
    assert_int_equal(testkit_f32_to_f16(bits_f32(0xffc00000u)) & 0x8000, 0x8000);

    assert_true(testkit_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(testkit_f16_to_f32(0x03ff) == 1023 * 0x1p-24f);
    assert_true(testkit_f16_to_f32(0x0400) == 0x1p-14f);
    assert_true(testkit_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(testkit_f16_to_f32(0x3555) == 0.333251953125f);
    assert_true(testkit_f16_to_f32(0xc000) == -2.0f);
    assert_int_equal(f32_bits(testkit_f16_to_f32(0x8000)), 0x80000000u);
    assert_true(testkit_f16_to_f32(0x7c00) == INFINITY);
    assert_true(testkit_f16_to_f32(0xfc00) == -INFINITY);
    assert_true(isnan(testkit_f16_to_f32(0x7e00)));
    assert_true(isnan(testkit_f16_to_f32(0x7c01)));
    assert_true(isnan(testkit_f16_to_f32(0xffff)));
}

static void test_f16_roundtrip_all(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float f = testkit_f16_to_f32((uint16_t)h);
        uint16_t back = testkit_f32_to_f16(f);
        if (f16_is_nan((uint16_t)h)) {
            assert_true(isnan(f));
            assert_true(f16_is_nan(back));
        } else {
            if (back != h)
                print_message("half 0x%04x -> %a -> 0x%04x\n", (unsigned)h, (double)f, back);
            assert_int_equal(back, h);
        }
    }
}

#if defined(__GNUC__) && defined(__FLT16_MAX__)
#define HAVE_COMPILER_F16 1
__extension__ typedef _Float16 compiler_half;
/* The compiler's own float -> _Float16 conversion (RNE) as an independent oracle. */
static void test_f16_against_compiler(void **state)
{
    (void)state;
    uint64_t mismatches = 0;
    for (uint64_t u = 0; u <= 0xffffffffull; u += 997) {
        float f = bits_f32((uint32_t)u);
        volatile float vf = f;
        compiler_half c = (compiler_half)vf;
        uint16_t want, got = testkit_f32_to_f16(f);
        memcpy(&want, &c, sizeof want);
        if (isnan(f)) {
            if (!f16_is_nan(got))
                mismatches++;
        } else if (got != want) {
            if (mismatches < 5)
                print_message("f32 0x%08x: got 0x%04x want 0x%04x\n", (unsigned)u, got, want);
            mismatches++;
        }
    }
    /* and every float near the subnormal/normal and overflow boundaries */
    for (uint32_t u = 0x33000000u - 4096; u < 0x38800000u + 4096; u += 7) {
        volatile float vf = bits_f32(u);
        compiler_half c = (compiler_half)vf;
        uint16_t want, got = testkit_f32_to_f16(vf);
        memcpy(&want, &c, sizeof want);
        if (got != want)
            mismatches++;
    }
    for (uint32_t u = 0x477fe000u; u < 0x47801000u; u++) {
        volatile float vf = bits_f32(u);
        compiler_half c = (compiler_half)vf;
        uint16_t want, got = testkit_f32_to_f16(vf);
        memcpy(&want, &c, sizeof want);
        if (got != want)
            mismatches++;
    }
    assert_int_equal(mismatches, 0);
}
#endif

/* ------------------------------------------------------------------ bf16 */

static void test_bf16_known_patterns(void **state)
{
    (void)state;
    assert_int_equal(testkit_f32_to_bf16(0.0f), 0x0000);
    assert_int_equal(testkit_f32_to_bf16(-0.0f), 0x8000);
    assert_int_equal(testkit_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(testkit_f32_to_bf16(-2.0f), 0xc000);
    assert_int_equal(testkit_f32_to_bf16(1.0f / 3.0f), 0x3eab);
    /* ties to even, above and below */
    assert_int_equal(testkit_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    assert_int_equal(testkit_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
    assert_int_equal(testkit_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
    assert_int_equal(testkit_f32_to_bf16(bits_f32(0x3f807fffu)), 0x3f80);
    assert_int_equal(testkit_f32_to_bf16(bits_f32(0x3f80ffffu)), 0x3f81);
    /* overflow: the largest floats round to infinity, the one below the tie does not */
    assert_int_equal(testkit_f32_to_bf16(bits_f32(0x7f7fffffu)), 0x7f80);
    assert_int_equal(testkit_f32_to_bf16(bits_f32(0x7f7f7fffu)), 0x7f7f);
    assert_int_equal(testkit_f32_to_bf16(bits_f32(0xff7fffffu)), 0xff80);
    assert_int_equal(testkit_f32_to_bf16(INFINITY), 0x7f80);
    assert_int_equal(testkit_f32_to_bf16(-INFINITY), 0xff80);
    /* subnormals round like everything else */
    assert_int_equal(testkit_f32_to_bf16(bits_f32(0x00008000u)), 0x0000);
    assert_int_equal(testkit_f32_to_bf16(bits_f32(0x00018000u)), 0x0002);
    assert_int_equal(testkit_f32_to_bf16(bits_f32(0x00008001u)), 0x0001);
    /* NaN stays NaN: a naive "add 0x7fff" turns these into inf or 0 */
    {
        uint16_t a = testkit_f32_to_bf16(bits_f32(0x7f800001u));
        uint16_t b = testkit_f32_to_bf16(bits_f32(0xffffffffu));
        uint16_t c = testkit_f32_to_bf16(bits_f32(0x7fffffffu));
        assert_true(isnan(testkit_bf16_to_f32(a)));
        assert_true(isnan(testkit_bf16_to_f32(b)));
        assert_true(isnan(testkit_bf16_to_f32(c)));
        assert_int_equal(b & 0x8000, 0x8000);
    }
    assert_true(testkit_bf16_to_f32(0x3f80) == 1.0f);
    assert_true(testkit_bf16_to_f32(0x3eab) == 0.333984375f);
    assert_true(testkit_bf16_to_f32(0x0001) == bits_f32(0x00010000u));
    /* every non-NaN bf16 pattern survives a round trip */
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float f = testkit_bf16_to_f32((uint16_t)h);
        if (!isnan(f))
            assert_int_equal(testkit_f32_to_bf16(f), h);
    }
}

static void test_round_to_and_store(void **state)
{
    (void)state;
    unsigned char buf[16];
    float x = 1.0f / 3.0f;
    assert_true(testkit_round_to(FACL_DTYPE_F32, x) == x);
    assert_true(testkit_round_to(FACL_DTYPE_F16, x) == 0.333251953125f);
    assert_true(testkit_round_to(FACL_DTYPE_BF16, x) == 0.333984375f);
    assert_true(testkit_round_to(FACL_DTYPE_F16, 1e6f) == INFINITY);
    assert_true(testkit_round_to(FACL_DTYPE_BF16, 1e6f) == 999424.0f);

    memset(buf, 0xff, sizeof buf);
    testkit_store(FACL_DTYPE_F16, buf, 1, 1.0f);
    assert_int_equal(buf[0], 0xff); /* element 0 untouched */
    assert_int_equal(buf[2] | (buf[3] << 8), 0x3c00); /* little-endian half bits */
    assert_int_equal(buf[4], 0xff);
    assert_true(testkit_load(FACL_DTYPE_F16, buf, 1) == 1.0f);
    assert_true(isnan(testkit_load(FACL_DTYPE_F16, buf, 0))); /* 0xffff poison is NaN */
    testkit_store(FACL_DTYPE_BF16, buf, 2, -2.0f);
    assert_int_equal(buf[4] | (buf[5] << 8), 0xc000);
    assert_true(testkit_load(FACL_DTYPE_BF16, buf, 2) == -2.0f);
    assert_true(isnan(testkit_load(FACL_DTYPE_BF16, buf, 3)));
    testkit_store(FACL_DTYPE_F32, buf, 3, 0.1f);
    assert_true(testkit_load(FACL_DTYPE_F32, buf, 3) == 0.1f);
    assert_true(isnan(testkit_load(FACL_DTYPE_F32, buf, 2)));
}

/* ------------------------------------------------------------------ PRNG */

static void test_rng(void **state)
{
    (void)state;
    testkit_rng a, b;
    const int n = 1000000;
    double sum = 0, sum2 = 0, umin = 1, umax = 0, usum = 0;
    testkit_rng_seed(&a, 42);
    testkit_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++)
        assert_true(testkit_rng_next(&a) == testkit_rng_next(&b));
    testkit_rng_seed(&b, 43);
    assert_true(testkit_rng_next(&a) != testkit_rng_next(&b));
    for (int i = 0; i < n; i++) {
        double x = testkit_rng_normal(&a), u = testkit_rng_uniform(&b);
        assert_true(isfinite(x));
        sum += x;
        sum2 += x * x;
        assert_true(u >= 0.0 && u < 1.0);
        usum += u;
        if (u < umin)
            umin = u;
        if (u > umax)
            umax = u;
    }
    assert_true(fabs(sum / n) < 0.01);
    assert_true(fabs(sum2 / n - 1.0) < 0.01);
    assert_true(fabs(usum / n - 0.5) < 0.005);
    assert_true(umin < 1e-4 && umax > 1 - 1e-4);
    for (int i = 0; i < 1000; i++) {
        int64_t r = testkit_rng_range(&a, -3, 5);
        assert_true(r >= -3 && r <= 5);
    }
}

/* ------------------------------------------------------------------ Philox */

static void check_philox(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                         uint32_t k1, uint32_t o0, uint32_t o1, uint32_t o2, uint32_t o3)
{
    const uint32_t ctr[4] = {c0, c1, c2, c3}, key[2] = {k0, k1};
    uint32_t out[4];
    testkit_philox4x32_10(ctr, key, out);
    assert_int_equal(out[0], o0);
    assert_int_equal(out[1], o1);
    assert_int_equal(out[2], o2);
    assert_int_equal(out[3], o3);
}

static void test_philox_kat(void **state)
{
    (void)state;
    /* Random123 kat_vectors, philox4x32 10 rounds */
    check_philox(0, 0, 0, 0, 0, 0, 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u);
    check_philox(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu,
                 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu);
    check_philox(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u,
                 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u);
}

/* ------------------------------------------------------------------ dropout */

static void test_dropout_threshold(void **state)
{
    (void)state;
    assert_int_equal(testkit_dropout_threshold(0.0f), 0u);
    assert_int_equal(testkit_dropout_threshold(0.5f), 0x80000000u);
    assert_int_equal(testkit_dropout_threshold(0.25f), 0x40000000u);
    /* 0.1f is 0x3dcccccd = 13421773 * 2^-27: floor(p * 2^32) = 13421773 * 32 */
    assert_int_equal(testkit_dropout_threshold(0.1f), 13421773u * 32u);
    /* the largest float below 1 stays below 2^32 */
    assert_int_equal(testkit_dropout_threshold(bits_f32(0x3f7fffffu)), 0xffffff00u);
    assert_true(testkit_dropout_scale(0.1f) == 1.0f / 0.9f);
    assert_true(testkit_dropout_scale(0.0f) == 1.0f);
}

static void test_dropout_indexing(void **state)
{
    (void)state;
    /* the counter layout: (j / 4, i, offset + b * heads_q + h) with a 64-bit carry, word j % 4 */
    const uint64_t seed = 0x0123456789abcdefull, offset = 0xfffffffeull;
    const int64_t b = 2, hq = 6, h = 3, i = 77, j = 1234567;
    uint64_t c = offset + (uint64_t)(b * hq + h); /* crosses 2^32 */
    uint32_t ctr[4] = {(uint32_t)(j / 4), (uint32_t)i, (uint32_t)c, (uint32_t)(c >> 32)};
    uint32_t key[2] = {0x89abcdefu, 0x01234567u};
    uint32_t out[4];
    assert_int_equal(ctr[3], 1u);
    testkit_philox4x32_10(ctr, key, out);
    for (int w = 0; w < 4; w++) {
        int64_t jj = j - (j % 4) + w;
        uint32_t t = out[w];
        /* a threshold just above / at the word decides the element */
        assert_int_equal(testkit_dropout_keep(t, seed, offset, b, hq, h, i, jj), 1);
        if (t != 0xffffffffu)
            assert_int_equal(testkit_dropout_keep(t + 1, seed, offset, b, hq, h, i, jj), 0);
    }
}

static void test_dropout_keep_fraction(void **state)
{
    (void)state;
    const float ps[] = {0.1f, 0.5f, 0.83f};
    for (size_t t = 0; t < sizeof ps / sizeof ps[0]; t++) {
        uint32_t thr = testkit_dropout_threshold(ps[t]);
        long kept = 0, n = 0, kept_even_rows = 0, n_even = 0;
        for (int64_t i = 0; i < 1000; i++)
            for (int64_t j = 0; j < 1000; j++) {
                int k = testkit_dropout_keep(thr, 1234 + t, 7, (i % 3), 4, (i % 4), i, j);
                kept += k;
                n++;
                if ((i & 1) == 0) {
                    kept_even_rows += k;
                    n_even++;
                }
            }
        assert_int_equal(n, 1000000);
        assert_true(fabs((double)kept / n - (1.0 - ps[t])) < 0.01);
        assert_true(fabs((double)kept_even_rows / n_even - (1.0 - ps[t])) < 0.01);
    }
    /* p = 0 keeps everything */
    for (int64_t j = 0; j < 1000; j++)
        assert_true(testkit_dropout_keep(testkit_dropout_threshold(0.0f), 9, 0, 0, 1, 0, 0, j));
}

/* ------------------------------------------------------------------ compare */

static void test_compare_rule(void **state)
{
    (void)state;
    double ref[4] = {1.0, -2.0, 0.5, INFINITY};
    float low[4] = {1.01f, -2.0f, 0.5f, INFINITY};
    float got[4] = {1.0f, -2.02f, 0.5f, INFINITY};
    cmp_result r;

    /* low error 0.01 (approximately, in float): bound 2 * 0.01 + 1e-5 */
    r = cmp_check(FACL_DTYPE_F16, got, ref, low, 4);
    assert_true(r.pass);
    assert_true(fabs(r.low_err - 0.01) < 1e-6);
    got[1] = -2.0202f; /* 0.0202 > 0.02001 */
    r = cmp_check(FACL_DTYPE_BF16, got, ref, low, 4);
    assert_false(r.pass);
    assert_int_equal(r.first_bad, 1);
    got[1] = -2.0f;
    /* NaN never passes */
    got[2] = NAN;
    r = cmp_check(FACL_DTYPE_F16, got, ref, low, 4);
    assert_false(r.pass);
    assert_int_equal(r.first_bad, 2);
    got[2] = 0.5f;
    /* inf where ref is +inf is required */
    got[3] = 1e30f;
    r = cmp_check(FACL_DTYPE_F16, got, ref, low, 4);
    assert_false(r.pass);
    assert_int_equal(r.first_bad, 3);
    got[3] = -INFINITY;
    assert_false(cmp_check(FACL_DTYPE_F32, got, ref, low, 4).pass);
    got[3] = INFINITY;
    assert_true(cmp_check(FACL_DTYPE_F32, got, ref, NULL, 4).pass);
    /* inf where ref is finite fails */
    got[0] = INFINITY;
    r = cmp_check(FACL_DTYPE_F32, got, ref, NULL, 4);
    assert_false(r.pass);
    assert_int_equal(r.first_bad, 0);
    got[0] = 1.0f;

    /* fp32: relative L2 below 1e-5 */
    {
        enum { N = 1000 };
        static double rr[N];
        static float gg[N];
        for (int i = 0; i < N; i++)
            rr[i] = sin(i + 1.0);
        for (int i = 0; i < N; i++)
            gg[i] = (float)(rr[i] * (1.0 + 5e-6));
        r = cmp_check(FACL_DTYPE_F32, gg, rr, NULL, N);
        assert_true(r.pass);
        assert_true(r.rel_l2 > 4e-6 && r.rel_l2 < 6e-6);
        for (int i = 0; i < N; i++)
            gg[i] = (float)(rr[i] * (1.0 + 2e-5));
        assert_false(cmp_check(FACL_DTYPE_F32, gg, rr, NULL, N).pass);
        /* all-zero reference: only an exact match passes */
        for (int i = 0; i < N; i++) {
            rr[i] = 0.0;
            gg[i] = 0.0f;
        }
        assert_true(cmp_check(FACL_DTYPE_F32, gg, rr, NULL, N).pass);
        gg[17] = 1e-30f;
        assert_false(cmp_check(FACL_DTYPE_F32, gg, rr, NULL, N).pass);
    }
    /* a NaN in the low-precision reference must not make everything pass */
    low[0] = NAN;
    got[0] = 5.0f;
    assert_false(cmp_check(FACL_DTYPE_F16, got, ref, low, 4).pass);
}

/* ------------------------------------------------------------------ reference */

static float *randn(testkit_rng *rng, size_t n, facl_dtype dt)
{
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = testkit_round_to(dt, (float)testkit_rng_normal(rng));
    return x;
}

static ref_problem make_problem(int batch, int hq, int hkv, int d, const int32_t *cu_q,
                                const int32_t *cu_k)
{
    ref_problem p;
    memset(&p, 0, sizeof p);
    p.batch = batch;
    p.heads_q = hq;
    p.heads_kv = hkv;
    p.head_dim = d;
    p.cu_q = cu_q;
    p.cu_k = cu_k;
    p.scale = 1.0f / sqrtf((float)d);
    p.window_left = -1;
    p.window_right = -1;
    return p;
}

static double dot_f64(const float *a, const float *b, int d)
{
    double s = 0;
    for (int e = 0; e < d; e++)
        s += (double)a[e] * b[e];
    return s;
}

/* One key: every visible row returns v exactly and lse = its score. */
static void test_ref_single_key(void **state)
{
    (void)state;
    const int d = 24, hq = 2, sq = 3;
    const int32_t cu_q[2] = {0, sq}, cu_k[2] = {0, 1};
    testkit_rng rng;
    float *q, *k, *v, lowo[3 * 2 * 24], lowl[2 * 3];
    double out[3 * 2 * 24], lse[2 * 3];
    ref_problem p = make_problem(1, hq, 1, d, cu_q, cu_k);
    testkit_rng_seed(&rng, 1);
    q = randn(&rng, sq * hq * d, FACL_DTYPE_F32);
    k = randn(&rng, d, FACL_DTYPE_F32);
    v = randn(&rng, d, FACL_DTYPE_F32);
    ref_attention_f64(&p, q, k, v, out, lse);
    ref_attention_lowp(&p, FACL_DTYPE_F16, q, k, v, lowo, lowl);
    for (int i = 0; i < sq; i++)
        for (int h = 0; h < hq; h++) {
            double s = p.scale * dot_f64(q + (i * hq + h) * d, k, d);
            assert_true(fabs(lse[h * sq + i] - s) < 1e-12);
            assert_true(fabs(lowl[h * sq + i] - s) < 1e-4);
            for (int e = 0; e < d; e++) {
                assert_true(out[(i * hq + h) * d + e] == (double)v[e]);
                assert_true(lowo[(i * hq + h) * d + e] == testkit_round_to(FACL_DTYPE_F16, v[e]));
            }
        }
    free(q);
    free(k);
    free(v);
}

/* q = 0: all scores are 0, so out is the mean of v and lse = log(sk). */
static void test_ref_uniform_scores(void **state)
{
    (void)state;
    const int d = 7, sk = 239;
    const int32_t cu_q[2] = {0, 2}, cu_k[2] = {0, sk};
    testkit_rng rng;
    float q[2 * 7] = {0}, *k, *v;
    double out[2 * 7], lse[2];
    ref_problem p = make_problem(1, 1, 1, d, cu_q, cu_k);
    testkit_rng_seed(&rng, 2);
    k = randn(&rng, (size_t)sk * d, FACL_DTYPE_F32);
    v = randn(&rng, (size_t)sk * d, FACL_DTYPE_F32);
    ref_attention_f64(&p, q, k, v, out, lse);
    for (int e = 0; e < d; e++) {
        double mean = 0;
        for (int j = 0; j < sk; j++)
            mean += v[j * d + e];
        mean /= sk;
        assert_true(fabs(out[e] - mean) < 1e-12);
        assert_true(fabs(out[d + e] - mean) < 1e-12);
    }
    assert_true(fabs(lse[0] - log((double)sk)) < 1e-12);
    free(k);
    free(v);
}

/* Causal bottom-right with sq > sk: the first sq - sk rows see nothing -> 0 / +inf.
 * Top-left alignment: row i sees keys 0..i. */
static void test_ref_masked_rows(void **state)
{
    (void)state;
    const int d = 5, sq = 5, sk = 2;
    const int32_t cu_q[2] = {0, sq}, cu_k[2] = {0, sk};
    testkit_rng rng;
    float *q, *k, *v, lowo[5 * 5], lowl[5];
    double out[5 * 5], lse[5], probs[5 * 2];
    ref_problem p = make_problem(1, 1, 1, d, cu_q, cu_k);
    p.window_right = 0;
    testkit_rng_seed(&rng, 3);
    q = randn(&rng, sq * d, FACL_DTYPE_BF16);
    k = randn(&rng, sk * d, FACL_DTYPE_BF16);
    v = randn(&rng, sk * d, FACL_DTYPE_BF16);

    ref_attention_f64(&p, q, k, v, out, lse);
    ref_attention_lowp(&p, FACL_DTYPE_BF16, q, k, v, lowo, lowl);
    ref_attn_probs(&p, q, k, probs, sq, sk);
    for (int i = 0; i < 3; i++) {
        assert_true(lse[i] == INFINITY);
        assert_true(lowl[i] == INFINITY);
        for (int e = 0; e < d; e++) {
            assert_true(out[i * d + e] == 0.0);
            assert_true(lowo[i * d + e] == 0.0f);
        }
        assert_true(probs[i * sk] == 0.0 && probs[i * sk + 1] == 0.0);
    }
    /* row 3 (off = -3) sees key 0 only; row 4 sees keys 0 and 1 */
    for (int e = 0; e < d; e++)
        assert_true(out[3 * d + e] == v[e]);
    assert_true(fabs(lse[3] - p.scale * dot_f64(q + 3 * d, k, d)) < 1e-12);
    assert_true(probs[3 * sk] == 1.0 && probs[3 * sk + 1] == 0.0);
    {
        double s0 = p.scale * dot_f64(q + 4 * d, k, d), s1 = p.scale * dot_f64(q + 4 * d, k + d, d);
        double l = log(exp(s0) + exp(s1));
        assert_true(fabs(lse[4] - l) < 1e-12);
        assert_true(fabs(probs[4 * sk] - exp(s0 - l)) < 1e-12);
        for (int e = 0; e < d; e++)
            assert_true(fabs(out[4 * d + e] - (exp(s0 - l) * v[e] + exp(s1 - l) * v[d + e])) <
                        1e-12);
    }

    /* top-left: every row sees at least key 0; row 0 returns v_0 */
    p.align_top_left = 1;
    ref_attention_f64(&p, q, k, v, out, lse);
    for (int i = 0; i < sq; i++)
        assert_true(isfinite(lse[i]));
    for (int e = 0; e < d; e++)
        assert_true(out[e] == v[e]);
    /* rows 1.. see both keys: identical to the non-causal result */
    {
        double out_nc[5 * 5], lse_nc[5];
        p.window_right = -1;
        ref_attention_f64(&p, q, k, v, out_nc, lse_nc);
        for (int i = 1; i < sq; i++) {
            assert_true(lse[i] == lse_nc[i]);
            for (int e = 0; e < d; e++)
                assert_true(out[i * d + e] == out_nc[i * d + e]);
        }
        assert_true(lse[0] != lse_nc[0]);
    }
    free(q);
    free(k);
    free(v);
}

/* A window (0, 0) with sq = sk: row i sees key i only. A window (1, 0): keys i-1 and i. */
static void test_ref_window(void **state)
{
    (void)state;
    const int d = 9, n = 6;
    const int32_t cu[2] = {0, n};
    testkit_rng rng;
    float *q, *k, *v;
    double out[6 * 9], lse[6], probs[36];
    ref_problem p = make_problem(1, 1, 1, d, cu, cu);
    p.window_left = 0;
    p.window_right = 0;
    testkit_rng_seed(&rng, 4);
    q = randn(&rng, n * d, FACL_DTYPE_F32);
    k = randn(&rng, n * d, FACL_DTYPE_F32);
    v = randn(&rng, n * d, FACL_DTYPE_F32);
    ref_attention_f64(&p, q, k, v, out, lse);
    for (int i = 0; i < n; i++) {
        assert_true(fabs(lse[i] - p.scale * dot_f64(q + i * d, k + i * d, d)) < 1e-12);
        for (int e = 0; e < d; e++)
            assert_true(out[i * d + e] == v[i * d + e]);
    }
    p.window_left = 1;
    ref_attn_probs(&p, q, k, probs, n, n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            int vis = (j == i) || (j == i - 1);
            assert_true(vis ? probs[i * n + j] > 0.0 : probs[i * n + j] == 0.0);
        }
    assert_true(probs[0] == 1.0);
    free(q);
    free(k);
    free(v);
}

/* softcap and alibi on two keys, computed by hand. */
static void test_ref_softcap_alibi(void **state)
{
    (void)state;
    const int d = 3, sq = 3, sk = 2;
    const int32_t cu_q[3] = {0, sq, 2 * sq}, cu_k[3] = {0, sk, 2 * sk};
    const float q[2 * 3 * 2 * 3] = {
        1.5f, -2, 0.25f, 3, 1, -1, /* b0 i0 (h0, h1) */
        0.5f, 0.5f, 2, -1, 2, 0,   /* b0 i1 */
        -3, 1, 1, 0.75f, 0, 2,     /* b0 i2 */
        2, 2, -2, 1, 1, 1,         /* b1 ... */
        0, 1, 0, -2, 0.5f, 3,
        1, -1, 1, 4, 0, -4};
    const float k[2 * 2 * 3] = {1, 0.5f, -1, 2, -1, 0.5f, 0.25f, 1, 1, -1, -1, 2};
    const float v[2 * 2 * 3] = {1, 2, 3, -1, 0, 4, 0.5f, -2, 1, 3, 3, -3};
    const float slopes[2 * 2] = {0.5f, 0.25f, 0.125f, 1.0f}; /* (batch, heads_q) */
    double out[2 * 3 * 2 * 3], lse[2 * 2 * 3];
    float lowo[2 * 3 * 2 * 3], lowl[2 * 2 * 3];
    ref_problem p = make_problem(2, 2, 1, d, cu_q, cu_k); /* MQA: both heads read kv head 0 */
    p.scale = 0.7f;
    p.softcap = 2.5f;
    p.alibi = slopes;
    p.alibi_per_batch = 1;
    ref_attention_f64(&p, q, k, v, out, lse);
    ref_attention_lowp(&p, FACL_DTYPE_F32, q, k, v, lowo, lowl);
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < sq; i++)
            for (int h = 0; h < 2; h++) {
                const float *qi = q + ((b * sq + i) * 2 + h) * d;
                double x[2], l, pr[2];
                for (int j = 0; j < sk; j++) {
                    double s = (double)p.scale * dot_f64(qi, k + (b * sk + j) * d, d);
                    s = (double)p.softcap * tanh(s / (double)p.softcap);
                    s -= (double)slopes[b * 2 + h] * fabs((double)(i + (sk - sq) - j));
                    x[j] = s;
                }
                l = log(exp(x[0]) + exp(x[1]));
                pr[0] = exp(x[0] - l);
                pr[1] = exp(x[1] - l);
                assert_true(fabs(lse[h * 2 * sq + b * sq + i] - l) < 1e-12);
                assert_true(fabs(lowl[h * 2 * sq + b * sq + i] - l) < 1e-5);
                for (int e = 0; e < d; e++) {
                    double want = pr[0] * v[(b * sk) * d + e] + pr[1] * v[(b * sk + 1) * d + e];
                    assert_true(fabs(out[((b * sq + i) * 2 + h) * d + e] - want) < 1e-12);
                    assert_true(fabs(lowo[((b * sq + i) * 2 + h) * d + e] - want) < 1e-5);
                }
            }
    /* shared slopes (heads_q) use the first row for every sequence */
    {
        double out2[2 * 3 * 2 * 3], lse2[2 * 2 * 3];
        p.alibi_per_batch = 0;
        ref_attention_f64(&p, q, k, v, out2, lse2);
        for (int i = 0; i < sq * 2 * d; i++)
            assert_true(out2[i] == out[i]); /* batch 0 unchanged */
        assert_true(lse2[0 * 6 + 3] != lse[0 * 6 + 3]); /* batch 1 differs */
    }
}

/* GQA maps query head h to kv head h / (heads_q / heads_kv): equal to MHA with k/v repeated. */
static void test_ref_gqa(void **state)
{
    (void)state;
    const int d = 16, hq = 6, hkv = 2, sq = 11, sk = 13;
    const int32_t cu_q[2] = {0, sq}, cu_k[2] = {0, sk};
    testkit_rng rng;
    float *q, *k, *v, *kx, *vx;
    double *o1, *o2, l1[6 * 11], l2[6 * 11];
    ref_problem p = make_problem(1, hq, hkv, d, cu_q, cu_k), px;
    testkit_rng_seed(&rng, 5);
    q = randn(&rng, (size_t)sq * hq * d, FACL_DTYPE_F32);
    k = randn(&rng, (size_t)sk * hkv * d, FACL_DTYPE_F32);
    v = randn(&rng, (size_t)sk * hkv * d, FACL_DTYPE_F32);
    kx = malloc((size_t)sk * hq * d * sizeof *kx);
    vx = malloc((size_t)sk * hq * d * sizeof *vx);
    o1 = malloc((size_t)sq * hq * d * sizeof *o1);
    o2 = malloc((size_t)sq * hq * d * sizeof *o2);
    assert_non_null(kx);
    assert_non_null(vx);
    assert_non_null(o1);
    assert_non_null(o2);
    for (int j = 0; j < sk; j++)
        for (int h = 0; h < hq; h++)
            for (int e = 0; e < d; e++) {
                kx[(j * hq + h) * d + e] = k[(j * hkv + h / 3) * d + e];
                vx[(j * hq + h) * d + e] = v[(j * hkv + h / 3) * d + e];
            }
    px = p;
    px.heads_kv = hq;
    p.window_right = 0;
    px.window_right = 0;
    ref_attention_f64(&p, q, k, v, o1, l1);
    ref_attention_f64(&px, q, kx, vx, o2, l2);
    assert_memory_equal(o1, o2, (size_t)sq * hq * d * sizeof *o1);
    assert_memory_equal(l1, l2, sizeof l1);
    free(q);
    free(k);
    free(v);
    free(kx);
    free(vx);
    free(o1);
    free(o2);
}

/* Varlen: each sequence equals the same problem run alone; fp32 lowp agrees with f64. */
static void test_ref_varlen_and_lowp(void **state)
{
    (void)state;
    const int d = 33, hq = 4, hkv = 2, B = 3;
    const int32_t sq[3] = {7, 1, 20}, sk[3] = {12, 9, 5};
    int32_t cu_q[4] = {0}, cu_k[4] = {0};
    testkit_rng rng;
    float *q, *k, *v, *lowo, *lowl;
    double *out, *lse;
    ref_problem p;
    for (int b = 0; b < B; b++) {
        cu_q[b + 1] = cu_q[b] + sq[b];
        cu_k[b + 1] = cu_k[b] + sk[b];
    }
    p = make_problem(B, hq, hkv, d, cu_q, cu_k);
    p.window_right = 0; /* causal, bottom-right: b=2 has fully masked rows */
    p.softcap = 3.0f;
    testkit_rng_seed(&rng, 6);
    q = randn(&rng, (size_t)cu_q[B] * hq * d, FACL_DTYPE_F32);
    k = randn(&rng, (size_t)cu_k[B] * hkv * d, FACL_DTYPE_F32);
    v = randn(&rng, (size_t)cu_k[B] * hkv * d, FACL_DTYPE_F32);
    out = malloc((size_t)cu_q[B] * hq * d * sizeof *out);
    lowo = malloc((size_t)cu_q[B] * hq * d * sizeof *lowo);
    lse = malloc((size_t)cu_q[B] * hq * sizeof *lse);
    lowl = malloc((size_t)cu_q[B] * hq * sizeof *lowl);
    assert_non_null(out);
    assert_non_null(lowo);
    assert_non_null(lse);
    assert_non_null(lowl);
    ref_attention_f64(&p, q, k, v, out, lse);
    ref_attention_lowp(&p, FACL_DTYPE_F32, q, k, v, lowo, lowl);
    {
        cmp_result r = cmp_check(FACL_DTYPE_F32, lowo, out, NULL, (size_t)cu_q[B] * hq * d);
        cmp_result rl = cmp_check(FACL_DTYPE_F32, lowl, lse, NULL, (size_t)cu_q[B] * hq);
        assert_true(r.pass);
        assert_true(rl.pass);
        assert_true(r.rel_l2 < 1e-6);
    }
    /* 15 fully masked rows in sequence 2 (20 queries, 5 keys) */
    {
        int inf = 0;
        for (int i = 0; i < hq * cu_q[B]; i++)
            inf += isinf(lse[i]);
        assert_int_equal(inf, hq * 15);
    }
    for (int b = 0; b < B; b++) {
        int32_t c1q[2] = {0, sq[b]}, c1k[2] = {0, sk[b]};
        ref_problem p1 = p;
        double *o1 = malloc((size_t)sq[b] * hq * d * sizeof *o1), *l1 = malloc((size_t)sq[b] * hq * sizeof *l1);
        assert_non_null(o1);
        assert_non_null(l1);
        p1.batch = 1;
        p1.cu_q = c1q;
        p1.cu_k = c1k;
        ref_attention_f64(&p1, q + (size_t)cu_q[b] * hq * d, k + (size_t)cu_k[b] * hkv * d,
                          v + (size_t)cu_k[b] * hkv * d, o1, l1);
        assert_memory_equal(o1, out + (size_t)cu_q[b] * hq * d, (size_t)sq[b] * hq * d * sizeof *o1);
        for (int h = 0; h < hq; h++)
            for (int i = 0; i < sq[b]; i++)
                assert_true(l1[h * sq[b] + i] == lse[(size_t)h * cu_q[B] + cu_q[b] + i]);
        free(o1);
        free(l1);
    }
    /* fp16 / bf16 lowp: close to f64 but not equal (P and out are rounded) */
    {
        float *q16 = malloc((size_t)cu_q[B] * hq * d * sizeof *q16);
        assert_non_null(q16);
        for (int dt = FACL_DTYPE_F16; dt <= FACL_DTYPE_BF16; dt++) {
            cmp_result r;
            ref_attention_lowp(&p, (facl_dtype)dt, q, k, v, q16, NULL);
            r = cmp_check(FACL_DTYPE_F32, q16, out, NULL, (size_t)cu_q[B] * hq * d);
            assert_true(r.max_err > 0.0);
            assert_true(r.max_err < (dt == FACL_DTYPE_F16 ? 0.01 : 0.05));
            for (size_t i = 0; i < (size_t)cu_q[B] * hq * d; i++)
                assert_true(q16[i] == testkit_round_to((facl_dtype)dt, q16[i]));
        }
        free(q16);
    }
    free(q);
    free(k);
    free(v);
    free(out);
    free(lowo);
    free(lse);
    free(lowl);
}

/* lowp rounds P to the storage type before P.V: with v = +-60000 the rounding of P is
 * visible in the output, so a lowp that forgets it (and widens every bound) fails here. */
static void test_ref_lowp_rounds_p(void **state)
{
    (void)state;
    const int32_t cu_q[2] = {0, 1}, cu_k[2] = {0, 3};
    const float q[1] = {1.0f}, k[3] = {0.3f, 0.2f, -0.1f}, v[3] = {60000.0f, -60000.0f, 24.0f};
    for (int dt = FACL_DTYPE_F16; dt <= FACL_DTYPE_BF16; dt++) {
        ref_problem p = make_problem(1, 1, 1, 1, cu_q, cu_k);
        float out, lse, x[3], m = -INFINITY, sum = 0.0f, acc_r = 0.0f, acc_u = 0.0f;
        p.scale = 1.0f;
        for (int j = 0; j < 3; j++) {
            x[j] = q[0] * k[j] * p.scale;
            if (x[j] > m)
                m = x[j];
        }
        for (int j = 0; j < 3; j++)
            sum += expf(x[j] - m);
        for (int j = 0; j < 3; j++) {
            float pr = expf(x[j] - m) / sum;
            acc_r += testkit_round_to((facl_dtype)dt, pr) * v[j];
            acc_u += pr * v[j];
        }
        acc_r = testkit_round_to((facl_dtype)dt, acc_r);
        acc_u = testkit_round_to((facl_dtype)dt, acc_u);
        assert_true(acc_r != acc_u); /* the case can tell the two apart */
        ref_attention_lowp(&p, (facl_dtype)dt, q, k, v, &out, &lse);
        assert_true(fabsf(lse - (m + logf(sum))) < 1e-6f);
        assert_true(out == acc_r);
    }
}

/* Dropout: probs carry the mask (negated where dropped), out = sum over kept of
 * p * v / (1 - p_drop); the lse does not depend on dropout; the kept share is ~ 1 - p. */
static void test_ref_dropout_and_probs(void **state)
{
    (void)state;
    const int d = 8, hq = 2, B = 2;
    const int32_t cu_q[3] = {0, 40, 45}, cu_k[3] = {0, 300, 301};
    const int64_t msq = 40, msk = 300;
    testkit_rng rng;
    float *q, *k, *v;
    double *out, *out0, lse[2 * 45], lse0[2 * 45], *probs;
    long dropped = 0, visible = 0;
    ref_problem p = make_problem(B, hq, 1, d, cu_q, cu_k);
    testkit_rng_seed(&rng, 7);
    q = randn(&rng, (size_t)45 * hq * d, FACL_DTYPE_F32);
    k = randn(&rng, (size_t)301 * d, FACL_DTYPE_F32);
    v = randn(&rng, (size_t)301 * d, FACL_DTYPE_F32);
    out = malloc((size_t)45 * hq * d * sizeof *out);
    out0 = malloc((size_t)45 * hq * d * sizeof *out0);
    probs = malloc((size_t)B * hq * msq * msk * sizeof *probs);
    assert_non_null(out);
    assert_non_null(out0);
    assert_non_null(probs);
    ref_attention_f64(&p, q, k, v, out0, lse0);
    p.dropout_p = 0.3f;
    p.seed = 0xdeadbeefcafef00dull;
    p.offset = 12345;
    ref_attention_f64(&p, q, k, v, out, lse);
    ref_attn_probs(&p, q, k, probs, msq, msk);
    assert_memory_equal(lse, lse0, sizeof lse);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < hq; h++)
            for (int64_t i = 0; i < msq; i++) {
                const double *row = probs + ((b * hq + h) * msq + i) * msk;
                int64_t sq = cu_q[b + 1] - cu_q[b], sk = cu_k[b + 1] - cu_k[b];
                double sum = 0.0;
                if (i >= sq) {
                    for (int64_t j = 0; j < msk; j++)
                        assert_true(row[j] == 0.0); /* padding rows */
                    continue;
                }
                for (int64_t j = sk; j < msk; j++)
                    assert_true(row[j] == 0.0); /* padding columns */
                for (int e = 0; e < d; e++) {
                    double acc = 0.0;
                    for (int64_t j = 0; j < sk; j++)
                        if (row[j] > 0.0)
                            acc += row[j] * (double)testkit_dropout_scale(0.3f) *
                                   v[(cu_k[b] + j) * d + e];
                    assert_true(fabs(out[((cu_q[b] + i) * hq + h) * d + e] - acc) < 1e-12);
                }
                for (int64_t j = 0; j < sk; j++) {
                    sum += fabs(row[j]);
                    dropped += row[j] < 0.0;
                    visible++;
                }
                assert_true(fabs(sum - 1.0) < 1e-12);
            }
    assert_true(fabs((double)dropped / visible - 0.3) < 0.02);
    /* another seed gives another mask; the same seed the same one */
    {
        double *o2 = malloc((size_t)45 * hq * d * sizeof *o2);
        assert_non_null(o2);
        ref_attention_f64(&p, q, k, v, o2, NULL);
        assert_memory_equal(o2, out, (size_t)45 * hq * d * sizeof *o2);
        p.offset = 12346;
        ref_attention_f64(&p, q, k, v, o2, NULL);
        assert_memory_not_equal(o2, out, (size_t)45 * hq * d * sizeof *o2);
        free(o2);
    }
    free(q);
    free(k);
    free(v);
    free(out);
    free(out0);
    free(probs);
}

/* Threads split the work by (sequence, head) and never change a bit of the result. */
static void test_ref_threads(void **state)
{
    (void)state;
    const int d = 32, hq = 4, hkv = 2, B = 2;
    const int32_t cu_q[3] = {0, 300, 513}, cu_k[3] = {0, 290, 600};
    const size_t nq = (size_t)513 * hq * d, nk = (size_t)600 * hkv * d, nl = (size_t)513 * hq;
    const size_t np = (size_t)B * hq * 300 * 310;
    testkit_rng rng;
    float *q, *k, *v, *lo1 = malloc(nq * 4), *lo2 = malloc(nq * 4);
    double *o1 = malloc(nq * 8), *o2 = malloc(nq * 8), *l1 = malloc(nl * 8), *l2 = malloc(nl * 8);
    double *p1 = malloc(np * 8), *p2 = malloc(np * 8);
    ref_problem p = make_problem(B, hq, hkv, d, cu_q, cu_k);
    assert_true(lo1 && lo2 && o1 && o2 && l1 && l2 && p1 && p2);
    p.window_right = 0;
    p.dropout_p = 0.2f;
    p.softcap = 4.0f;
    testkit_rng_seed(&rng, 11);
    q = randn(&rng, nq, FACL_DTYPE_F32);
    k = randn(&rng, nk, FACL_DTYPE_F32);
    v = randn(&rng, nk, FACL_DTYPE_F32);
    ref_set_threads(1);
    ref_attention_f64(&p, q, k, v, o1, l1);
    ref_attention_lowp(&p, FACL_DTYPE_BF16, q, k, v, lo1, NULL);
    ref_attn_probs(&p, q, k, p1, 300, 310);
    ref_set_threads(3);
    ref_attention_f64(&p, q, k, v, o2, l2);
    ref_attention_lowp(&p, FACL_DTYPE_BF16, q, k, v, lo2, NULL);
    ref_attn_probs(&p, q, k, p2, 300, 310);
    ref_set_threads(0);
    assert_memory_equal(o1, o2, nq * 8);
    assert_memory_equal(l1, l2, nl * 8);
    assert_memory_equal(lo1, lo2, nq * 4);
    assert_memory_equal(p1, p2, np * 8);
    free(q);
    free(k);
    free(v);
    free(lo1);
    free(lo2);
    free(o1);
    free(o2);
    free(l1);
    free(l2);
    free(p1);
    free(p2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_known_patterns),
        cmocka_unit_test(test_f16_roundtrip_all),
#ifdef HAVE_COMPILER_F16
        cmocka_unit_test(test_f16_against_compiler),
#endif
        cmocka_unit_test(test_bf16_known_patterns),
        cmocka_unit_test(test_round_to_and_store),
        cmocka_unit_test(test_rng),
        cmocka_unit_test(test_philox_kat),
        cmocka_unit_test(test_dropout_threshold),
        cmocka_unit_test(test_dropout_indexing),
        cmocka_unit_test(test_dropout_keep_fraction),
        cmocka_unit_test(test_compare_rule),
        cmocka_unit_test(test_ref_single_key),
        cmocka_unit_test(test_ref_uniform_scores),
        cmocka_unit_test(test_ref_masked_rows),
        cmocka_unit_test(test_ref_window),
        cmocka_unit_test(test_ref_softcap_alibi),
        cmocka_unit_test(test_ref_gqa),
        cmocka_unit_test(test_ref_varlen_and_lowp),
        cmocka_unit_test(test_ref_lowp_rounds_p),
        cmocka_unit_test(test_ref_dropout_and_probs),
        cmocka_unit_test(test_ref_threads),
    };
    return cmocka_run_group_tests_name("reference", tests, NULL, NULL);
}
