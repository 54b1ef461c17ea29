/* Pieces shared by every attention kernel: where a sequence lives, which keys a query
 * row may see, and how a raw score becomes a logit (docs/CONTRACT.md, steps 2-4). */

/* Feature switches default to off so that each kernel file also reads on its own. */
#ifndef IS_VARLEN
#define IS_VARLEN 0
#endif
#ifndef HAS_SOFTCAP
#define HAS_SOFTCAP 0
#endif
#ifndef HAS_ALIBI
#define HAS_ALIBI 0
#endif
#ifndef HAS_DROPOUT
#define HAS_DROPOUT 0
#endif
#ifndef HAS_SEQUSED
#define HAS_SEQUSED 0
#endif

typedef struct {
    int q_start; /* first row of the sequence in q/out (0 for dense batches) */
    int sq;      /* its query length */
    int k_start;
    int sk;
} seq_extent;

/* Dense batches: every sequence has the same lengths. Varlen: read the prefix sums,
 * clamped so that bad sums never send a read or write out of bounds. With seqused_k,
 * sequence b uses only its first seqused_k[b] keys (clamped into its keys the same way). */
inline seq_extent sequence_extent(__global const int *cu_q, __global const int *cu_k,
                                  __global const int *seqused, int b, const attn_params p)
{
    seq_extent e;
#if IS_VARLEN
    cu_q += p.cu_q_off;
    cu_k += p.cu_k_off;
    e.q_start = clamp(cu_q[b], 0, p.total_q);
    e.sq = clamp(cu_q[b + 1], e.q_start, p.total_q) - e.q_start;
    e.k_start = clamp(cu_k[b], 0, p.total_k);
    e.sk = clamp(cu_k[b + 1], e.k_start, p.total_k) - e.k_start;
#else
    (void)cu_q; (void)cu_k; (void)b;
    e.q_start = 0;
    e.sq = p.seqlen_q;
    e.k_start = 0;
    e.sk = p.seqlen_k;
#endif
#if HAS_SEQUSED
    e.sk = clamp(seqused[p.seqused_off + b], 0, e.sk);
#else
    (void)seqused;
#endif
    return e;
}

/* The first row block of this work-group; each then strides by the grid. The grid's
 * groups take the row blocks last first: GPUs start work-groups roughly in the order of
 * their ids, and under a causal mask the later rows see the most keys, so the longest
 * blocks start first and short ones fill the tail, instead of the longest blocks of the
 * last head starting when the others are done (FlashAttention 3's scheduler orders them
 * longest first too). The heads stay the slower grid dimension, so that the groups running at
 * once still share one head's keys in L2. */
inline int first_row_block(void)
{
    return (int)(get_num_groups(0) - 1 - get_group_id(0));
}

/* The keys a query row sees are [visible_lo, visible_end), both within [0, sk]; `diag`
 * is the row's diagonal i + off. The window arithmetic is 64-bit: a window near
 * INT_MAX must not wrap around (docs/CONTRACT.md, step 4). */
inline int visible_lo(int diag, int window_left, int sk)
{
    return window_left < 0 ? 0 : (int)clamp((long)diag - window_left, 0L, (long)sk);
}

inline int visible_end(int diag, int window_right, int sk)
{
    return window_right < 0 ? sk : (int)clamp((long)diag + window_right + 1, 0L, (long)sk);
}

/* The ALiBi slope of query head h of sequence b (0 without ALiBi; alibi is then NULL). */
inline float alibi_slope(__global const float *alibi, const attn_params p, int b, int h)
{
#if HAS_ALIBI
    return alibi[p.alibi_off + b * p.alibi_sb + h * p.alibi_sh];
#else
    (void)alibi; (void)p; (void)b; (void)h;
    return 0.0f;
#endif
}

/* Softcap then ALiBi on an already scaled score; `rel` = i + off - j. */
inline float adjust_score(float x, float softcap, float slope, int rel)
{
#if HAS_SOFTCAP
    x = softcap * tanh(x / softcap);
#else
    (void)softcap;
#endif
#if HAS_ALIBI
    x -= slope * (float)abs(rel);
#else
    (void)slope; (void)rel;
#endif
    return x;
}

/* adjust_score on 16 scores at once (the CPU kernel's vector form); keep the two in step. */
inline float16 adjust_scores16(float16 x, float softcap, float slope, int16 rel)
{
#if HAS_SOFTCAP
    x = softcap * tanh(x / softcap);
#else
    (void)softcap;
#endif
#if HAS_ALIBI
    x -= slope * convert_float16(abs(rel));
#else
    (void)slope; (void)rel;
#endif
    return x;
}
