/* facl_merge: merge of partial attention results computed over disjoint parts of the
 * keys (merge_row.cl has the math). One work-item per (row, head, batch) and element d:
 * dimension 0 of the launch is rows * HEAD_DIM. */
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

__kernel void attn_merge(__global const void *parts, __global const float *lse_parts,
                         __global storage_t *o, __global float *lse, const merge_params p)
{
    const int r = get_global_id(0) / HEAD_DIM, d = get_global_id(0) - r * HEAD_DIM;
    const int h = get_global_id(1), b = get_global_id(2);
    if (r >= p.rows) return;
    const long plse = p.plse_off + b * p.plse_sb + h * p.plse_sh + (long)r * p.plse_sr;
    const long part = p.part_off + b * p.part_sb + (long)r * p.part_sr + h * p.part_sh;
    const long out = p.o_off + b * p.o_sb + (long)r * p.o_sr + h * p.o_sh;
    const float row_lse = merged_lse(lse_parts, plse, p.plse_ss, p.splits);
    store_value(o, out + d, merged_value(parts, part, p.part_ss, lse_parts, plse, p.plse_ss,
                                         p.splits, row_lse, d));
    if (lse && d == 0) lse[p.lse_off + b * p.lse_sb + h * p.lse_sh + (long)r * p.lse_sr] = row_lse;
}
