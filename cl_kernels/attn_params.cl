/* The argument block every attention kernel takes after its buffers, mirrored on the
 * host by src/kernel_params.h (the two must change together). Offsets and strides
 * count elements. The host passes the size of its struct as FACL_PARAMS_SIZE; a build
 * where the two layouts differ in size fails here, before anything runs. */
typedef struct {
    /* (offset, batch stride, row stride, head stride) of q, k, v and out */
    long q_off, q_sb, q_ss, q_sh;
    long k_off, k_sb, k_ss, k_sh;
    long v_off, v_sb, v_ss, v_sh;
    long o_off, o_sb, o_ss, o_sh;
    /* lse and attn_probs: (offset, batch stride, head stride, row stride); probs columns
     * have stride 1 */
    long lse_off, lse_sb, lse_sh, lse_ss;
    long probs_off, probs_sb, probs_sh, probs_ss;
    long alibi_off, alibi_sb, alibi_sh;
    long cu_q_off, cu_k_off, seqused_off;
    ulong drop_offset;
    int seqlen_q, seqlen_k; /* dense: the lengths; varlen: max_seqlen_q/k */
    int total_q, total_k;   /* varlen: rows of q and k */
    int heads_q, group;     /* group = heads_q / heads_kv */
    int window_left, window_right, align_top_left;
    float scale, softcap, drop_scale;
    uint drop_threshold, seed_lo, seed_hi;
    int reserved;
} attn_params;

#ifndef FACL_PARAMS_SIZE
#error "FACL_PARAMS_SIZE must be defined by the host (sizeof its facl_kernel_params)"
#endif
typedef char attn_params_size_matches_host[sizeof(attn_params) == FACL_PARAMS_SIZE ? 1 : -1];

/* Element index of (batch b, row, head) in a (offset, batch, row, head)-strided view. */
inline long view_index(long off, long sb, long ss, long sh, int b, long row, int head)
{
    return off + b * sb + row * ss + head * sh;
}
