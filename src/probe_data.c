/* Inputs and outputs of the fast paths' probes (probe.c, probe_bwd.c): random 16-bit
 * values whose exact value the host knows, their decoding, and uploads. */
#include "probe_data.h"

#include <math.h>
#include <string.h>

#include "context.h"

/* Random values of magnitude [0.25, 1) as raw 16-bit patterns (normal numbers only, so
 * the host side needs no rounding code), with their exact value. */
uint16_t facl_probe_random_bits(facl_dtype dtype, uint32_t *state, double *value)
{
    *state = *state * 1664525u + 1013904223u;
    const uint32_t r = *state >> 8;
    const int negative = r & 1, exponent = -1 - (int)((r >> 1) & 1);
    if (dtype == FACL_DTYPE_F16) {
        const uint32_t mantissa = (r >> 2) & 0x3FFu;
        *value = (negative ? -1.0 : 1.0) * ldexp(1.0 + mantissa / 1024.0, exponent);
        return (uint16_t)(negative << 15 | (uint32_t)(exponent + 15) << 10 | mantissa);
    }
    const uint32_t mantissa = (r >> 2) & 0x7Fu;
    *value = (negative ? -1.0 : 1.0) * ldexp(1.0 + mantissa / 128.0, exponent);
    return (uint16_t)(negative << 15 | (uint32_t)(exponent + 127) << 7 | mantissa);
}

/* Any 16-bit pattern of the output back to a double (NaN for NaN and poison). */
double facl_probe_decode(facl_dtype dtype, uint16_t bits)
{
    const int negative = bits >> 15;
    double x;
    if (dtype == FACL_DTYPE_BF16) {
        uint32_t word = (uint32_t)bits << 16;
        float f;
        memcpy(&f, &word, sizeof f);
        return f;
    }
    const int exponent = (bits >> 10) & 0x1F, mantissa = bits & 0x3FF;
    if (exponent == 31) return mantissa ? NAN : INFINITY * (negative ? -1 : 1);
    x = exponent ? ldexp(1.0 + mantissa / 1024.0, exponent - 15) : ldexp(mantissa, -24);
    return negative ? -x : x;
}

cl_mem facl_probe_upload(facl_context *ctx, const void *data, size_t bytes, cl_int *err)
{
    return clCreateBuffer(ctx->cl_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes,
                          (void *)data, err);
}

