/*
 * facl in an inference engine, in one file: a batch of prompts of different lengths is
 * prefilled into a paged KV cache, then decoded token by token over that cache, every
 * call chained to the previous one by its cl_event (the host waits for nothing until it
 * reads the results). Then the last decoded token of each sequence is compared with the
 * same attention computed on the CPU, so this example also tests itself.
 *
 * One attention layer stands for the model: the q, k and v that a real engine computes
 * with its own kernels (projections, rotary, ...) are made up here from a hash of
 * (sequence, position, head, dim). fp32 keeps the host side short; fp16 and bf16 take
 * the same calls with another dtype.
 *
 * Build: cc -std=c11 decode.c $(pkg-config --cflags --libs facl OpenCL) -lm
 */
#define CL_TARGET_OPENCL_VERSION 120 /* facl.h leaves this to the application */
#include <facl.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Three sequences, 4 query heads sharing 2 kv heads (GQA), head dim 64. */
enum { BATCH = 3, STEPS = 4, HQ = 4, HKV = 2, D = 64 };
static const int prompt_len[BATCH] = {5, 17, 11};
#define TOTAL_PROMPT (5 + 17 + 11)
#define MAX_PROMPT 17
#define MAX_LEN (MAX_PROMPT + STEPS)

/* The paged cache: pages of 8 positions, each sequence owning up to 3 pages (enough for
 * 17 + STEPS tokens) through its row of the block table. */
enum { PAGE = 8, MAX_PAGES = 3, NUM_PAGES = 8 };

#define CHECK(call)                                                                       \
    do {                                                                                  \
        facl_status st_ = (facl_status)(call); /* OpenCL errors are facl statuses too */ \
        if (st_ != FACL_SUCCESS) {                                                        \
            fprintf(stderr, "decode.c:%d: %s: %s\n", __LINE__, facl_status_string(st_),   \
                    facl_last_error());                                                   \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

/* The made-up activations: q, k and v of sequence b at position pos, in [-1, 1). */
enum { Q, K, V };
static float act(int kind, int b, int pos, int head, int i)
{
    uint32_t x = (uint32_t)(kind * 7919 + b * 104729 + pos * 1299709 + head * 15485863 + i * 31);
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return (float)(x & 0xffffU) / 32768.0f - 1.0f;
}

/* q, k and v of one token, where a model would compute them from its hidden state. */
static void make_token(int b, int pos, float q[HQ][D], float k[HKV][D], float v[HKV][D])
{
    for (int i = 0; i < D; ++i) {
        for (int h = 0; h < HQ; ++h) q[h][i] = act(Q, b, pos, h, i);
        for (int h = 0; h < HKV; ++h) k[h][i] = act(K, b, pos, h, i);
        for (int h = 0; h < HKV; ++h) v[h][i] = act(V, b, pos, h, i);
    }
}

static cl_mem upload(facl_context *ctx, size_t bytes, void *host)
{
    cl_int err;
    cl_mem_flags flags = CL_MEM_READ_WRITE | (host ? CL_MEM_COPY_HOST_PTR : 0);
    cl_mem m = clCreateBuffer(facl_context_cl_context(ctx), flags, bytes, host, &err);
    CHECK(err);
    return m;
}

/* Attention of sequence b's query at position `pos` over its keys 0..pos, in double so
 * that the comparison measures facl's rounding only. */
static void cpu_attention(int b, int pos, int h, double *out)
{
    int kvh = h / (HQ / HKV);
    double w[MAX_LEN], sum = 0, max = -INFINITY;
    for (int j = 0; j <= pos; ++j) {
        double dot = 0;
        for (int i = 0; i < D; ++i) dot += (double)act(Q, b, pos, h, i) * act(K, b, j, kvh, i);
        w[j] = dot / sqrt((double)D);
        max = fmax(max, w[j]);
    }
    for (int j = 0; j <= pos; ++j) sum += w[j] = exp(w[j] - max);
    for (int i = 0; i < D; ++i) {
        out[i] = 0;
        for (int j = 0; j <= pos; ++j) out[i] += w[j] / sum * act(V, b, j, kvh, i);
    }
}

int main(void)
{
    /* 1. A context. facl_context_create picks the device (FACL_DEVICE, else the first GPU,
     *    else a CPU) and makes its own cl_context and in-order queue. An engine with its
     *    own cl_context wraps it instead, and passes its own queues to the calls:
     *
     *        facl_context *ctx;
     *        CHECK(facl_context_wrap(engine_cl_context, engine_device, &ctx));
     *        CHECK(facl_fwd_kvcache(ctx, engine_queue, ...));
     */
    facl_context *ctx;
    CHECK(facl_context_create(NULL, &ctx));
    facl_device_info info = FACL_DEVICE_INFO_INIT;
    CHECK(facl_context_device_info(ctx, &info));
    printf("device: %s (kernel path %s)\n", info.device_name, info.kernel_path);
    cl_command_queue queue = facl_context_queue(ctx);

    /* 2. The host side of the batch. The prompts are packed one after another (varlen):
     *    sequence b owns rows cu[b] .. cu[b+1]-1. Decode step t gives each sequence one
     *    more token, at position prompt_len[b] + t. */
    static float q_pre[TOTAL_PROMPT][HQ][D], k_pre[TOTAL_PROMPT][HKV][D];
    static float v_pre[TOTAL_PROMPT][HKV][D];
    static float q_dec[STEPS][BATCH][HQ][D], k_dec[STEPS][BATCH][HKV][D];
    static float v_dec[STEPS][BATCH][HKV][D], out_dec[STEPS][BATCH][HQ][D];
    int32_t cu[BATCH + 1] = {0}, seqlens[STEPS][BATCH];
    for (int b = 0; b < BATCH; ++b) {
        cu[b + 1] = cu[b] + prompt_len[b];
        for (int p = 0; p < prompt_len[b]; ++p)
            make_token(b, p, q_pre[cu[b] + p], k_pre[cu[b] + p], v_pre[cu[b] + p]);
        for (int t = 0; t < STEPS; ++t) {
            seqlens[t][b] = prompt_len[b] + t; /* tokens in the cache when step t runs */
            make_token(b, prompt_len[b] + t, q_dec[t][b], k_dec[t][b], v_dec[t][b]);
        }
    }
    /* Pages handed out from the end of the pool, as an allocator might: any page can
     * hold any part of any sequence. Entries a sequence never reaches stay -1. */
    int32_t table[BATCH][MAX_PAGES], next_page = NUM_PAGES - 1;
    for (int b = 0; b < BATCH; ++b)
        for (int j = 0; j < MAX_PAGES; ++j)
            table[b][j] = j * PAGE < prompt_len[b] + STEPS ? next_page-- : -1;

    /* 3. Device buffers. Uploaded whole here; an engine's own kernels would write q, k and
     *    v of each step (and the seqlens) just before the attention, chained by events. */
    cl_mem m_q_pre = upload(ctx, sizeof q_pre, q_pre), m_k_pre = upload(ctx, sizeof k_pre, k_pre);
    cl_mem m_v_pre = upload(ctx, sizeof v_pre, v_pre), m_cu = upload(ctx, sizeof cu, cu);
    cl_mem m_q_dec = upload(ctx, sizeof q_dec, q_dec), m_k_dec = upload(ctx, sizeof k_dec, k_dec);
    cl_mem m_v_dec = upload(ctx, sizeof v_dec, v_dec), m_table = upload(ctx, sizeof table, table);
    cl_mem m_lens = upload(ctx, sizeof seqlens, seqlens);
    cl_mem m_out_pre = upload(ctx, sizeof q_pre, NULL); /* outputs: no host data */
    cl_mem m_out_dec = upload(ctx, sizeof out_dec, NULL);
    size_t cache_bytes = sizeof(float) * NUM_PAGES * PAGE * HKV * D;
    cl_mem m_k_cache = upload(ctx, cache_bytes, NULL), m_v_cache = upload(ctx, cache_bytes, NULL);

    /* Tensors are views: shapes and strides in elements, plus an offset into the buffer. */
    int64_t cache_shape[4] = {NUM_PAGES, PAGE, HKV, D}, table_shape[2] = {BATCH, MAX_PAGES};
    int64_t pre_q_shape[3] = {TOTAL_PROMPT, HQ, D}, pre_kv_shape[3] = {TOTAL_PROMPT, HKV, D};
    int64_t cu_shape[1] = {BATCH + 1};
    facl_tensor k_cache = facl_tensor_contiguous(m_k_cache, FACL_DTYPE_F32, 4, cache_shape);
    facl_tensor v_cache = facl_tensor_contiguous(m_v_cache, FACL_DTYPE_F32, 4, cache_shape);
    facl_tensor block_table = facl_tensor_contiguous(m_table, FACL_DTYPE_I32, 2, table_shape);
    facl_tensor q_prompt = facl_tensor_contiguous(m_q_pre, FACL_DTYPE_F32, 3, pre_q_shape);
    facl_tensor k_prompt = facl_tensor_contiguous(m_k_pre, FACL_DTYPE_F32, 3, pre_kv_shape);
    facl_tensor v_prompt = facl_tensor_contiguous(m_v_pre, FACL_DTYPE_F32, 3, pre_kv_shape);
    facl_tensor out_prompt = facl_tensor_contiguous(m_out_pre, FACL_DTYPE_F32, 3, pre_q_shape);
    facl_tensor cu_seqlens = facl_tensor_contiguous(m_cu, FACL_DTYPE_I32, 1, cu_shape);

    /* Split-KV decoding (num_splits 0: facl chooses) needs scratch; made once and reused
     * by every call, which is safe because each call waits for the one before. Sized for
     * the larger of the two row counts (prompt rows, one row per sequence). */
    uint64_t ws_pre, ws_dec;
    CHECK(facl_fwd_kvcache_workspace_size(ctx, TOTAL_PROMPT, HQ, D, 0, &ws_pre));
    CHECK(facl_fwd_kvcache_workspace_size(ctx, BATCH, HQ, D, 0, &ws_dec));
    int64_t ws_elems = (int64_t)((ws_pre > ws_dec ? ws_pre : ws_dec) / 4);
    cl_mem m_ws = upload(ctx, (size_t)ws_elems * 4, NULL);
    facl_tensor workspace = facl_tensor_contiguous(m_ws, FACL_DTYPE_F32, 1, &ws_elems);

    /* 4. Prefill: one call appends every prompt's k and v into its pages (positions 0..)
     *    and computes causal attention of the prompt over them. The caches start empty
     *    (cache_seqlens_value 0). This call is checked (the default): facl reads the index
     *    buffers back, a short blocking read, and refuses bad lengths or page numbers
     *    before writing anything. */
    facl_attn_options opts = FACL_ATTN_OPTIONS_INIT; /* scale 1/sqrt(D) */
    opts.causal = 1;
    facl_kvcache_args pre = FACL_KVCACHE_ARGS_INIT;
    pre.cu_seqlens_q = &cu_seqlens; /* varlen queries: the packed prompts */
    pre.max_seqlen_q = MAX_PROMPT;
    pre.k_new = &k_prompt;
    pre.v_new = &v_prompt;
    pre.cu_seqlens_k_new = &cu_seqlens; /* each prompt appends its own length of keys */
    pre.block_table = &block_table;
    pre.workspace = &workspace;
    cl_event done;
    CHECK(facl_fwd_kvcache(ctx, queue, &q_prompt, &k_cache, &v_cache, &pre, &out_prompt, NULL,
                           &opts, 0, NULL, &done));

    /* 5. Decode: one token per sequence per step, its k and v appended in place at
     *    position seqlens[t][b]; facl never advances the lengths, the engine does (here
     *    precomputed, one row of m_lens per step). Trusted: the hot loop must not read
     *    anything back, so indices are clamped on the device instead of checked. Each
     *    call waits on the previous call's event; in a model, the layers in between would
     *    wait on it the same way. (On the context's in-order queue the order is implied;
     *    the events carry it across several queues, out-of-order queues, your kernels.) */
    facl_attn_options dec_opts = opts;
    dec_opts.trust_cu_seqlens = 1;
    int64_t q_shape[4] = {BATCH, 1, HQ, D}, kv_shape[4] = {BATCH, 1, HKV, D};
    int64_t lens_shape[1] = {BATCH};
    for (int t = 0; t < STEPS; ++t) {
        facl_tensor q = facl_tensor_contiguous(m_q_dec, FACL_DTYPE_F32, 4, q_shape);
        facl_tensor k_new = facl_tensor_contiguous(m_k_dec, FACL_DTYPE_F32, 4, kv_shape);
        facl_tensor v_new = facl_tensor_contiguous(m_v_dec, FACL_DTYPE_F32, 4, kv_shape);
        facl_tensor out = facl_tensor_contiguous(m_out_dec, FACL_DTYPE_F32, 4, q_shape);
        facl_tensor lens = facl_tensor_contiguous(m_lens, FACL_DTYPE_I32, 1, lens_shape);
        q.offset = out.offset = (uint64_t)t * BATCH * HQ * D; /* step t's slice */
        k_new.offset = v_new.offset = (uint64_t)t * BATCH * HKV * D;
        lens.offset = (uint64_t)t * BATCH;

        facl_kvcache_args dec = FACL_KVCACHE_ARGS_INIT;
        dec.cache_seqlens = &lens;
        dec.k_new = &k_new;
        dec.v_new = &v_new;
        dec.block_table = &block_table;
        dec.num_splits = 0; /* flash-decoding: facl splits long caches across the device */
        dec.workspace = &workspace;
        cl_event next;
        CHECK(facl_fwd_kvcache(ctx, queue, &q, &k_cache, &v_cache, &dec, &out, NULL, &dec_opts,
                               1, &done, &next));
        CHECK(clReleaseEvent(done)); /* the enqueued call keeps what it needs */
        done = next;
    }

    /* 6. The first wait for results: read every step's output once the last call is done. */
    CHECK(clEnqueueReadBuffer(queue, m_out_dec, CL_TRUE, 0, sizeof out_dec, out_dec, 1, &done,
                              NULL));
    CHECK(clReleaseEvent(done));

    /* 7. The last token of every sequence against the CPU: it attends over the whole
     *    cache, so it sees every page the prefill and each decode step wrote. */
    double want[D], err2 = 0, ref2 = 0;
    for (int b = 0; b < BATCH; ++b)
        for (int h = 0; h < HQ; ++h) {
            cpu_attention(b, prompt_len[b] + STEPS - 1, h, want);
            for (int i = 0; i < D; ++i) {
                double e = out_dec[STEPS - 1][b][h][i] - want[i];
                err2 += e * e;
                ref2 += want[i] * want[i];
            }
        }
    /* fp32's rule in docs/CONTRACT.md: relative L2 error below 1e-5 (NaN fails). */
    double rel = sqrt(err2 / ref2);
    int ok = rel < 1e-5;

    cl_mem all[] = {m_q_pre, m_k_pre, m_v_pre, m_cu, m_out_pre, m_q_dec, m_k_dec, m_v_dec,
                    m_lens, m_out_dec, m_table, m_k_cache, m_v_cache, m_ws};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) clReleaseMemObject(all[i]);
    facl_context_free(ctx);

    printf("%d prompts (5, 17, 11 tokens) prefilled, %d tokens decoded: last token %s the CPU "
           "(relative L2 error %.2g)\n",
           BATCH, STEPS, ok ? "matches" : "DIFFERS FROM", rel);
    return ok ? 0 : 1;
}
