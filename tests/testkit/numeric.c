/* testkit numeric helpers (see numeric.h). */
#include "numeric.h"

#include <math.h>
#include <string.h>

static uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float bits_f32(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

uint16_t testkit_f32_to_f16(float x)
{
    uint32_t u = f32_bits(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;

    if (a >= 0x7f800000u) {
        if (a == 0x7f800000u)
            return (uint16_t)(sign | 0x7c00u);
        /* NaN: quiet, keep the top payload bits */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    }
    if (a >= 0x477ff000u) /* >= 65520 rounds to infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (a >= 0x38800000u) { /* normal half (>= 2^-14) */
        uint32_t v = a - 0x38000000u; /* rebias exponent 127 -> 15 */
        v += 0x0fffu + ((v >> 13) & 1u);
        return (uint16_t)(sign | (v >> 13));
    }
    if (a <= 0x33000000u) /* <= 2^-25: ties to even give 0 */
        return sign;
    {
        /* subnormal half: value in units of 2^-24 */
        uint32_t e = a >> 23; /* 103 .. 112 */
        uint32_t m = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e; /* 14 .. 23 */
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u)))
            r++;
        return (uint16_t)(sign | r);
    }
}

float testkit_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu;
    uint32_t m = h & 0x3ffu;

    if (e == 0x1fu)
        return bits_f32(sign | 0x7f800000u | (m << 13));
    if (e != 0)
        return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
    if (m == 0)
        return bits_f32(sign);
    {
        float v = (float)m * 0x1p-24f; /* exact */
        return sign ? -v : v;
    }
}

uint16_t testkit_f32_to_bf16(float x)
{
    uint32_t u = f32_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float testkit_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

float testkit_round_to(facl_dtype dt, float x)
{
    switch (dt) {
    case FACL_DTYPE_F16:
        return testkit_f16_to_f32(testkit_f32_to_f16(x));
    case FACL_DTYPE_BF16:
        return testkit_bf16_to_f32(testkit_f32_to_bf16(x));
    default:
        return x;
    }
}

void testkit_store(facl_dtype dt, void *buf, size_t i, float x)
{
    switch (dt) {
    case FACL_DTYPE_F16: {
        uint16_t h = testkit_f32_to_f16(x);
        memcpy((unsigned char *)buf + i * 2, &h, 2);
        break;
    }
    case FACL_DTYPE_BF16: {
        uint16_t h = testkit_f32_to_bf16(x);
        memcpy((unsigned char *)buf + i * 2, &h, 2);
        break;
    }
    default:
        memcpy((unsigned char *)buf + i * 4, &x, 4);
        break;
    }
}

float testkit_load(facl_dtype dt, const void *buf, size_t i)
{
    uint16_t h;
    float x;
    switch (dt) {
    case FACL_DTYPE_F16:
        memcpy(&h, (const unsigned char *)buf + i * 2, 2);
        return testkit_f16_to_f32(h);
    case FACL_DTYPE_BF16:
        memcpy(&h, (const unsigned char *)buf + i * 2, 2);
        return testkit_bf16_to_f32(h);
    default:
        memcpy(&x, (const unsigned char *)buf + i * 4, 4);
        return x;
    }
}

/* ---------------------------------------------------------------- PRNG */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void testkit_rng_seed(testkit_rng *rng, uint64_t seed)
{
    uint64_t st = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&st);
    rng->has_spare = 0;
    rng->spare = 0.0;
}

uint64_t testkit_rng_next(testkit_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

double testkit_rng_uniform(testkit_rng *rng)
{
    return (double)(testkit_rng_next(rng) >> 11) * 0x1p-53;
}

double testkit_rng_normal(testkit_rng *rng)
{
    const double two_pi = 6.283185307179586476925286766559;
    double u1, u2, r;
    if (rng->has_spare) {
        rng->has_spare = 0;
        return rng->spare;
    }
    u1 = 1.0 - testkit_rng_uniform(rng); /* (0, 1] */
    u2 = testkit_rng_uniform(rng);
    r = sqrt(-2.0 * log(u1));
    rng->spare = r * sin(two_pi * u2);
    rng->has_spare = 1;
    return r * cos(two_pi * u2);
}

int64_t testkit_rng_range(testkit_rng *rng, int64_t lo, int64_t hi)
{
    uint64_t span;
    if (hi <= lo)
        return lo;
    span = (uint64_t)(hi - lo) + 1u;
    return lo + (int64_t)(testkit_rng_next(rng) % span);
}

/* ---------------------------------------------------------------- Philox */

void testkit_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        uint64_t p0, p1;
        uint32_t hi0, lo0, hi1, lo1;
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        p0 = (uint64_t)0xD2511F53u * c0;
        p1 = (uint64_t)0xCD9E8D57u * c2;
        hi0 = (uint32_t)(p0 >> 32);
        lo0 = (uint32_t)p0;
        hi1 = (uint32_t)(p1 >> 32);
        lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

uint32_t testkit_dropout_threshold(float p)
{
    return (uint32_t)fmin(ldexp((double)p, 32), 4294967295.0);
}

int testkit_dropout_keep(uint32_t threshold, uint64_t seed, uint64_t offset, int64_t b,
                         int64_t heads_q, int64_t h, int64_t i, int64_t j)
{
    uint32_t key[2], ctr[4], out[4];
    uint64_t c = offset + (uint64_t)b * (uint64_t)heads_q + (uint64_t)h;
    key[0] = (uint32_t)seed;
    key[1] = (uint32_t)(seed >> 32);
    ctr[0] = (uint32_t)((uint64_t)j >> 2);
    ctr[1] = (uint32_t)i;
    ctr[2] = (uint32_t)c;
    ctr[3] = (uint32_t)(c >> 32);
    testkit_philox4x32_10(ctr, key, out);
    return out[j & 3] >= threshold;
}

float testkit_dropout_scale(float p)
{
    return 1.0f / (1.0f - p);
}
