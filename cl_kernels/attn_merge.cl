/* Merge of partial attention results (flash-decoding's second step, and facl_merge for
 * attention split across devices or processes). Part s holds out_s, normalised over its
 * own keys, and lse_s = log of its softmax denominator; the merged row is
 *   lse = log(sum_s exp(lse_s)),   out = sum_s exp(lse_s - lse) * out_s.
 * A part with lse_s = +inf (a row that saw no key there, as the forward writes it) or
 * -inf weighs 0; a row empty in every part gets out = 0 and lse = +inf, as the forward
 * gives such a row.
 *
 * One work-item per (row, head, batch); it reads the parts' lse, then walks d. The
 * parts' and the output's storage types are separate (-DPART_DTYPE, -DFACL_DTYPE):
 * partials are often kept in fp32 for a fp16 or bf16 output.
 */
#ifndef HEAD_DIM
#error "HEAD_DIM must be defined by the host"
#endif

typedef struct {
    /* parts: (split, batch, row, head) strides; lse parts: (split, batch, head, row) */
    long part_off, part_ss, part_sb, part_sr, part_sh;
    long plse_off, plse_ss, plse_sb, plse_sh, plse_sr;
    long o_off, o_sb, o_sr, o_sh;
    long lse_off, lse_sb, lse_sh, lse_sr;
    int splits, rows;
} merge_params;

#ifndef FACL_MERGE_PARAMS_SIZE
#error "FACL_MERGE_PARAMS_SIZE must be defined by the host (sizeof its facl_merge_params)"
#endif
typedef char merge_params_size_matches_host[sizeof(merge_params) == FACL_MERGE_PARAMS_SIZE ? 1 : -1];

/* The parts' storage type, read as fp32 (dtype.cl's conversions, for PART_DTYPE). */
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

__kernel void attn_merge(__global const void *parts, __global const float *lse_parts,
                         __global storage_t *o, __global float *lse, const merge_params p)
{
    const int r = get_global_id(0), h = get_global_id(1), b = get_global_id(2);
    if (r >= p.rows) return;
    const long plse = p.plse_off + b * p.plse_sb + h * p.plse_sh + (long)r * p.plse_sr;
    /* The largest finite lse, so that every weight is exp(<= 0). */
    float m = -INFINITY;
    for (int s = 0; s < p.splits; ++s) {
        const float x = lse_parts[plse + s * p.plse_ss];
        if (isfinite(x)) m = fmax(m, x);
    }
    float total = 0.0f;
    for (int s = 0; s < p.splits; ++s) {
        const float x = lse_parts[plse + s * p.plse_ss];
        if (isfinite(x)) total += exp(x - m);
    }
    const float merged_lse = total > 0.0f ? m + log(total) : INFINITY;
    const long part = p.part_off + b * p.part_sb + (long)r * p.part_sr + h * p.part_sh;
    const long out = p.o_off + b * p.o_sb + (long)r * p.o_sr + h * p.o_sh;
    for (int d = 0; d < HEAD_DIM; ++d) {
        float acc = 0.0f;
        for (int s = 0; s < p.splits; ++s) {
            const float x = lse_parts[plse + s * p.plse_ss];
            if (isfinite(x)) acc = fma(exp(x - merged_lse), load_part(parts, part + s * p.part_ss + d), acc);
        }
        store_value(o, out + d, acc);
    }
    if (lse) lse[p.lse_off + b * p.lse_sb + h * p.lse_sh + (long)r * p.lse_sr] = merged_lse;
}
