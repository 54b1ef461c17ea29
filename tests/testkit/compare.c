/* testkit comparison (see compare.h). */
#include "compare.h"

#include <math.h>
#include <stdio.h>

cmp_result cmp_check(facl_dtype dt, const float *got, const double *ref, const float *low,
                     size_t n)
{
    cmp_result r = {0.0, 0.0, 0.0, 0.0, 1, -1};
    double num = 0.0, den = 0.0;
    int all_equal = 1, low_bad = 0;
    int64_t first_struct = -1; /* first NaN / inf mismatch */

    for (size_t i = 0; i < n; i++) {
        double g = (double)got[i], e = ref[i], err;
        if (isnan(g) || isnan(e)) {
            if (first_struct < 0)
                first_struct = (int64_t)i;
            continue;
        }
        if (isinf(e) || isinf(g)) {
            if (!(e == INFINITY && g == INFINITY) && first_struct < 0)
                first_struct = (int64_t)i;
            continue;
        }
        err = fabs(g - e);
        if (err > r.max_err)
            r.max_err = err;
        if (g != e)
            all_equal = 0;
        num += err * err;
        den += e * e;
        if (low) {
            double l = (double)low[i];
            if (!isfinite(l))
                low_bad = 1; /* a broken low reference must not widen the bound */
            else if (fabs(l - e) > r.low_err)
                r.low_err = fabs(l - e);
        }
    }
    if (low_bad)
        r.low_err = NAN;
    r.rel_l2 = den > 0.0 ? sqrt(num) / sqrt(den) : (num > 0.0 ? INFINITY : 0.0);

    if (dt == FACL_DTYPE_F32) {
        r.bound = CMP_F32_REL_L2;
        r.pass = den > 0.0 ? r.rel_l2 < CMP_F32_REL_L2 : all_equal;
    } else {
        r.bound = 2.0 * r.low_err + CMP_ABS_SLACK;
        r.pass = r.max_err <= r.bound; /* false when bound is NaN */
    }
    if (first_struct >= 0)
        r.pass = 0;

    if (!r.pass) {
        r.first_bad = first_struct;
        if (r.first_bad < 0) {
            /* numeric failure: the first element over the bound (F16/BF16), or the
             * largest error (F32, where the rule is global) */
            double worst = -1.0;
            for (size_t i = 0; i < n; i++) {
                double e = ref[i], err;
                if (isinf(e))
                    continue;
                err = fabs((double)got[i] - e);
                if (dt != FACL_DTYPE_F32) {
                    if (!(err <= r.bound)) {
                        r.first_bad = (int64_t)i;
                        break;
                    }
                } else if (err > worst) {
                    worst = err;
                    r.first_bad = (int64_t)i;
                }
            }
        }
    }
    return r;
}

void cmp_format(const cmp_result *r, char *buf, size_t size)
{
    snprintf(buf, size, "max_err=%.3g low_err=%.3g bound=%.3g rel_l2=%.3g first_bad=%lld %s",
             r->max_err, r->low_err, r->bound, r->rel_l2, (long long)r->first_bad,
             r->pass ? "PASS" : "FAIL");
}
