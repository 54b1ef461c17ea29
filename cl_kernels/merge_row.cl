/* The merge of partial attention results for one (row, head), shared by attn_merge
 * (facl_merge) and cache_combine (split-KV decoding). Part s holds out_s, normalised over
 * its own keys, and lse_s = log of its softmax denominator; the merged row is
 *   lse = log(sum_s exp(lse_s)),   out = sum_s exp(lse_s - lse) * out_s.
 * A part with lse_s = +inf (a row that saw no key there, as the forward writes it) or
 * -inf weighs 0; a row empty in every part gets out = 0 and lse = +inf, as the forward
 * gives such a row. The parts' storage type is PART_DTYPE (read as fp32), the output's
 * FACL_DTYPE: partials are often kept in fp32 for a fp16 or bf16 output. */
#ifndef HEAD_DIM
#error "HEAD_DIM must be defined by the host"
#endif

#if PART_DTYPE == 0
inline float load_part(__global const void *p, long i) { return ((__global const float *)p)[i]; }
#elif PART_DTYPE == 1
inline float load_part(__global const void *p, long i) { return vload_half(0, (__global const half *)p + i); }
#elif PART_DTYPE == 2
inline float load_part(__global const void *p, long i)
{
    return as_float((uint)((__global const ushort *)p)[i] << 16);
}
#else
#error "unknown PART_DTYPE"
#endif

/* The merged lse of one (row, head): part s's lse is lse_parts[plse + s * plse_ss]. */
inline float merged_lse(__global const float *lse_parts, long plse, long plse_ss, int splits)
{
    /* The largest finite lse, so that every weight is exp(<= 0). */
    float m = -INFINITY;
    for (int s = 0; s < splits; ++s) {
        const float x = lse_parts[plse + s * plse_ss];
        if (isfinite(x)) m = fmax(m, x);
    }
    float total = 0.0f;
    for (int s = 0; s < splits; ++s) {
        const float x = lse_parts[plse + s * plse_ss];
        if (isfinite(x)) total += exp(x - m);
    }
    return total > 0.0f ? m + log(total) : INFINITY;
}

/* Element d of the merged row, given its merged lse: part s of the row starts at
 * parts[part + s * part_ss]. The kernels give each element its own work-item, so that
 * neighbouring work-items read neighbouring addresses and a row's splits are read in
 * parallel (a work-item per row walking d left a decode launch of a few hundred
 * work-items, each with thousands of strided loads). */
inline float merged_value(__global const void *parts, long part, long part_ss,
                          __global const float *lse_parts, long plse, long plse_ss, int splits,
                          float lse, int d)
{
    float acc = 0.0f;
    for (int s = 0; s < splits; ++s) {
        const float x = lse_parts[plse + s * plse_ss];
        if (isfinite(x)) acc = fma(exp(x - lse), load_part(parts, part + s * part_ss + d), acc);
    }
    return acc;
}
