/*
 * testkit comparison: SPEC.md's correctness rule.
 *   F16 / BF16: max|got - ref| <= 2 * max|low - ref| + 1e-5
 *   F32:        ||got - ref|| / ||ref|| < 1e-5 (or ||ref|| == 0 and got == ref)
 * NaN in got never passes. +inf in ref must be matched exactly by +inf in got (lse of a
 * row with no visible key) and is left out of the numeric errors; an infinite got where
 * ref is finite fails.
 */
#ifndef FACL_TESTKIT_COMPARE_H
#define FACL_TESTKIT_COMPARE_H

#include <stddef.h>
#include <stdint.h>

#include "facl.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cmp_result {
    double max_err;   /* max |got - ref| over the finite reference elements */
    double low_err;   /* max |low - ref| (0 when low is NULL) */
    double bound;     /* F16/BF16: 2 * low_err + 1e-5; F32: 1e-5 (on rel_l2) */
    double rel_l2;    /* ||got - ref|| / ||ref|| */
    int pass;
    int64_t first_bad; /* first failing element (NaN, inf mismatch, over the bound); -1 if none */
} cmp_result;

#define CMP_ABS_SLACK 1e-5
#define CMP_F32_REL_L2 1e-5

/* low may be NULL (then low_err = 0; for F16/BF16 the bound is just 1e-5). */
cmp_result cmp_check(facl_dtype dt, const float *got, const double *ref, const float *low,
                     size_t n);

/* One line describing r ("max_err=... bound=... rel_l2=... first_bad=..."). */
void cmp_format(const cmp_result *r, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
