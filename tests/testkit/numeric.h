/*
 * testkit numeric helpers: storage-type conversions, a seeded PRNG, Philox 4x32-10 and
 * the exact dropout decision of the kernels. Plain C11, no OpenCL calls (facl.h is
 * included only for facl_dtype).
 */
#ifndef FACL_TESTKIT_NUMERIC_H
#define FACL_TESTKIT_NUMERIC_H

#include <stddef.h>
#include <stdint.h>

#include "facl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* IEEE binary16, round to nearest even, subnormals, +-inf; NaN stays NaN (quiet, sign and
 * top payload bits kept). */
uint16_t testkit_f32_to_f16(float x);
float testkit_f16_to_f32(uint16_t h);

/* bfloat16 = the top 16 bits of a float, round to nearest even; NaN stays NaN (quiet). */
uint16_t testkit_f32_to_bf16(float x);
float testkit_bf16_to_f32(uint16_t h);

/* x rounded through the storage type dt (F32: x unchanged). */
float testkit_round_to(facl_dtype dt, float x);

/* Store / load one element of dt at element index i of a raw buffer (F32: float,
 * F16: IEEE half bits, BF16: bf16 bits). */
void testkit_store(facl_dtype dt, void *buf, size_t i, float x);
float testkit_load(facl_dtype dt, const void *buf, size_t i);

/* Seeded PRNG: xoshiro256** seeded through splitmix64. */
typedef struct testkit_rng {
    uint64_t s[4];
    int has_spare;
    double spare;
} testkit_rng;

void testkit_rng_seed(testkit_rng *rng, uint64_t seed);
uint64_t testkit_rng_next(testkit_rng *rng);
/* Uniform in [0, 1) with 53 random bits. */
double testkit_rng_uniform(testkit_rng *rng);
/* Standard normal (Box-Muller). */
double testkit_rng_normal(testkit_rng *rng);
/* Uniform integer in [lo, hi] (inclusive). */
int64_t testkit_rng_range(testkit_rng *rng, int64_t lo, int64_t hi);

/* Philox 4x32-10 exactly as Random123 defines it. */
void testkit_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Dropout as the kernels do it:
 *   threshold = (uint32_t) fmin(ldexp((double)p, 32), 4294967295.0);
 *   key = {(uint32)seed, (uint32)(seed >> 32)}; c = offset + (uint64)b * heads_q + h;
 *   ctr = {(uint32)(j >> 2), (uint32)i, (uint32)c, (uint32)(c >> 32)};
 *   keep iff philox(ctr, key)[j & 3] >= threshold.
 * b: sequence index, h: query head, i: query row within its sequence, j: key column
 * within its sequence. */
uint32_t testkit_dropout_threshold(float p);
int testkit_dropout_keep(uint32_t threshold, uint64_t seed, uint64_t offset, int64_t b,
                         int64_t heads_q, int64_t h, int64_t i, int64_t j);
/* Scale of kept elements: 1.0f / (1.0f - p), computed in float. */
float testkit_dropout_scale(float p);

#ifdef __cplusplus
}
#endif
#endif
