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
inline void store_value(__global ushort *p, long i, float x)
{
    uint bits = as_uint(x);
    if (isnan(x)) {
        p[i] = (ushort)0x7FC0;
        return;
    }
    /* Round to nearest, ties to even: add half an ulp of bf16 plus the lowest kept bit. */
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    p[i] = (ushort)(bits >> 16);
}
#else
#error "unknown FACL_DTYPE"
#endif
