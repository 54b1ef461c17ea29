/* Storage types. Arithmetic is always fp32; these helpers convert on load and store.
 * FACL_DTYPE: 0 = fp32, 1 = fp16 (vload_half/vstore_half: core OpenCL 1.2, no cl_khr_fp16
 * needed), 2 = bf16 (the top 16 bits of an fp32, converted by shifts). */
#ifndef FACL_DTYPE
#error "FACL_DTYPE must be defined by the host (-DFACL_DTYPE=0|1|2)"
#endif

#if FACL_DTYPE == 0
#define storage_t float
inline float load_value(__global const float *p, long i) { return p[i]; }
inline void store_value(__global float *p, long i, float x) { p[i] = x; }
#elif FACL_DTYPE == 1
#define storage_t half
inline float load_value(__global const half *p, long i) { return vload_half(0, p + i); }
inline void store_value(__global half *p, long i, float x) { vstore_half_rte(x, 0, p + i); }
#elif FACL_DTYPE == 2
#define storage_t ushort
inline float load_value(__global const ushort *p, long i) { return as_float((uint)p[i] << 16); }
/* fp32 -> bf16 bits, round to nearest even (NaN stays a quiet NaN). */
inline ushort bf16_bits(float x)
{
    uint bits = as_uint(x);
    if (isnan(x)) return (ushort)0x7FC0;
    /* add half an ulp of bf16 plus the lowest kept bit */
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    return (ushort)(bits >> 16);
}
inline void store_value(__global ushort *p, long i, float x) { p[i] = bf16_bits(x); }
#else
#error "unknown FACL_DTYPE"
#endif

/* The 16-bit pattern of x in the storage type (fp16 or bf16), and back: what tensor-core
 * operands hold. Only the 16-bit storage types have them. */
#if FACL_DTYPE == 1
inline ushort storage_bits(float x)
{
    ushort bits;
    vstore_half_rte(x, 0, (__private half *)&bits);
    return bits;
}
inline float storage_float(ushort bits) { return vload_half(0, (__private const half *)&bits); }
#elif FACL_DTYPE == 2
inline ushort storage_bits(float x) { return bf16_bits(x); }
inline float storage_float(ushort bits) { return as_float((uint)bits << 16); }
#endif

/* x rounded to the storage type (round to nearest even), as a store then a load would. */
#if FACL_DTYPE == 0
inline float round_to_storage(float x) { return x; }
#else
inline float round_to_storage(float x) { return storage_float(storage_bits(x)); }
#endif
