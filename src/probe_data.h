/* Inputs and outputs of the fast paths' probes (probe.c, probe_bwd.c). */
#ifndef FACL_PROBE_DATA_H
#define FACL_PROBE_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "facl.h"

/* A random value of magnitude [0.25, 1) as a raw fp16 or bf16 pattern (a normal number,
 * so the host side needs no rounding code), with its exact value in *value. */
uint16_t facl_probe_random_bits(facl_dtype dtype, uint32_t *state, double *value);

/* Any fp16 or bf16 pattern back to a double (NaN for NaN and poison). */
double facl_probe_decode(facl_dtype dtype, uint16_t bits);

/* A read-write buffer of the context holding a copy of `bytes` at data. */
cl_mem facl_probe_upload(facl_context *ctx, const void *data, size_t bytes, cl_int *err);

#endif
