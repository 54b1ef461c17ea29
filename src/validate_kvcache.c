/* Argument validation of the KV-cache calls: facl_fwd_kvcache, and the varlen calls with
 * a block table (paged keys). Everything is checked before anything is enqueued, so a
 * rejected call writes nothing (the only commands it may issue are the blocking reads of
 * the index buffers). Each failure names the argument. */
#include <stdlib.h>
#include <string.h>

#include "cache_plan.h"
#include "cache_problem.h"
#include "context.h"
#include "status.h"
#include "struct_size.h"
#include "tensor_check.h"
#include "validate_common.h"

#define I32_ONLY (1u << FACL_DTYPE_I32)

/* The caller's facl_kvcache_args (NULL = the defaults): this version, the one before
 * `workspace` (0.2), or newer ones with a zero tail. */
static facl_status read_cache_args(const facl_kvcache_args *given, facl_kvcache_args *out)
{
    static const facl_kvcache_args defaults = FACL_KVCACHE_ARGS_INIT;
    static const size_t ends[] = {FACL_FIELD_END(facl_kvcache_args, cu_seqlens_k_new),
                                  FACL_FIELD_END(facl_kvcache_args, workspace)};
    *out = defaults;
    if (!given) return FACL_SUCCESS;
    return facl_read_struct("cache", given, given->struct_size, out, sizeof *out, ends,
                            sizeof ends / sizeof ends[0]);
}

/* The attention options a cache call cannot honour. */
static facl_status refuse_dropout_and_probs(const facl_attn_options *o, const char *call)
{
    if (o->dropout_p > 0.0f)
        return facl_fail(FACL_ERROR_UNSUPPORTED, "opts->dropout_p: %g (%s has no dropout)",
                         (double)o->dropout_p, call);
    if (o->attn_probs)
        return facl_fail(FACL_ERROR_UNSUPPORTED, "opts->attn_probs: %s does not write them", call);
    return FACL_SUCCESS;
}

/* The scalars of facl_kvcache_args and the combinations that make no sense. */
static facl_status check_cache_scalars(const facl_kvcache_args *a)
{
    if (a->num_splits < 0 || a->num_splits > FACL_CACHE_MAX_SPLITS)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "cache->num_splits: %d (must be 0 = choose, 1 = no split, or up to %d)",
                         a->num_splits, FACL_CACHE_MAX_SPLITS);
    if (a->rotary_interleaved != 0 && a->rotary_interleaved != 1)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "cache->rotary_interleaved: %d (must be 0 or 1)",
                         a->rotary_interleaved);
    if (!a->cache_seqlens && a->cache_seqlens_value < 0)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "cache->cache_seqlens_value: %d (must be >= 0)",
                         a->cache_seqlens_value);
    if (a->cache_seqlens && a->cache_seqlens_value != 0)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "cache->cache_seqlens_value: %d given together with cache->cache_seqlens "
                         "(one or the other)",
                         a->cache_seqlens_value);
    if (a->cu_seqlens_q && a->max_seqlen_q < 0)
        return facl_fail(FACL_ERROR_INVALID_SEQLENS, "cache->max_seqlen_q: negative (%lld)",
                         (long long)a->max_seqlen_q);
    if (!a->cu_seqlens_q && a->max_seqlen_q != 0)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "cache->max_seqlen_q: %lld without cache->cu_seqlens_q (a dense q's "
                         "length is its dimension 1)",
                         (long long)a->max_seqlen_q);
    if (a->cache_batch_idx && a->block_table)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "cache->cache_batch_idx: not with cache->block_table (a paged cache "
                         "finds each sequence's pages through its table row)");
    if (a->cu_seqlens_k_new && !a->k_new)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "cache->cu_seqlens_k_new: given without cache->k_new");
    if (a->cu_seqlens_k_new && !a->cu_seqlens_q)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "cache->cu_seqlens_k_new: given without cache->cu_seqlens_q (varlen "
                         "k_new goes with varlen q)");
    if (!a->k_new != !a->v_new)
        return facl_fail(FACL_ERROR_NULL_ARGUMENT, "%s: NULL while %s is given",
                         a->k_new ? "cache->v_new" : "cache->k_new",
                         a->k_new ? "cache->k_new" : "cache->v_new");
    if (!a->rotary_cos != !a->rotary_sin)
        return facl_fail(FACL_ERROR_NULL_ARGUMENT, "%s: NULL while %s is given",
                         a->rotary_cos ? "cache->rotary_sin" : "cache->rotary_cos",
                         a->rotary_cos ? "cache->rotary_cos" : "cache->rotary_sin");
    return FACL_SUCCESS;
}

/* An int32 vector of `batch` entries. */
static facl_status check_index_vector(const facl_context *ctx, const char *name,
                                      const facl_tensor *t, int64_t batch)
{
    facl_status st = facl_check_tensor(ctx, name, t, 1, I32_ONLY);
    return st != FACL_SUCCESS ? st : facl_check_dim(name, t, 0, batch, "batch");
}

/* A float tensor in q's dtype. */
static facl_status check_like_q(const facl_context *ctx, const char *name, const facl_tensor *t,
                                int rank, const facl_tensor *q)
{
    facl_status st = facl_check_tensor(ctx, name, t, rank, FACL_FLOAT_DTYPES);
    if (st == FACL_SUCCESS && t->dtype != q->dtype)
        st = facl_fail(FACL_ERROR_INVALID_DTYPE, "%s: dtype %s differs from q's dtype %s", name,
                       facl_dtype_name((facl_dtype)t->dtype), facl_dtype_name((facl_dtype)q->dtype));
    return st;
}

/* `t` shaped like `like` (same rank, checked before). */
static facl_status check_same_shape(const char *name, const facl_tensor *t, const char *like_name,
                                    const facl_tensor *like)
{
    facl_status st = FACL_SUCCESS;
    for (int d = 0; d < like->ndim && st == FACL_SUCCESS; ++d)
        st = facl_check_dim(name, t, d, like->shape[d], like_name);
    return st;
}

/* The paged layout: the block table (batch, max_blocks >= 1) and k's (num_blocks,
 * page_size >= 1, ...); capacity = max_blocks * page_size. */
static facl_status check_paged(const facl_context *ctx, const char *bt_name, const facl_tensor *bt,
                               const char *k_name, const facl_tensor *k, int64_t batch,
                               facl_cache_problem *cp)
{
    facl_status st;
    if ((st = facl_check_tensor(ctx, bt_name, bt, 2, I32_ONLY)) ||
        (st = facl_check_dim(bt_name, bt, 0, batch, "batch")))
        return st;
    if (bt->shape[1] < 1)
        return facl_fail(FACL_ERROR_INVALID_SHAPE,
                         "%s: max_blocks (dimension 1) is 0, must be >= 1", bt_name);
    if (k->shape[1] < 1)
        return facl_fail(FACL_ERROR_INVALID_SHAPE, "%s: page_size (dimension 1) is 0, must be >= 1",
                         k_name);
    if ((st = facl_check_fits_int(k_name, k->shape[0])) ||
        (st = facl_check_fits_int(k_name, k->shape[1])) ||
        (st = facl_check_fits_int(bt_name, bt->shape[1])))
        return st;
    const int64_t capacity = bt->shape[1] * k->shape[1]; /* both < 2^31: no overflow */
    if (capacity > INT32_MAX)
        return facl_fail(FACL_ERROR_INVALID_SHAPE,
                         "%s: max_blocks %lld x page_size %lld = %lld key positions exceeds the "
                         "supported 2^31 - 1",
                         bt_name, (long long)bt->shape[1], (long long)k->shape[1],
                         (long long)capacity);
    cp->paged = 1;
    cp->num_blocks = (int)k->shape[0];
    cp->page_size = (int)k->shape[1];
    cp->max_blocks = (int)bt->shape[1];
    cp->block_table = bt->buffer;
    cp->bt_off = (int64_t)bt->offset;
    cp->bt_sb = bt->stride[0];
    cp->fwd.k = facl_view_of(k, 0, 1, 2);
    return FACL_SUCCESS;
}

/* The block table's rows as a host copy: row b starts at entries[b * bt_sb]. */
static facl_status read_block_table(const facl_context *ctx, cl_command_queue queue,
                                    const facl_cache_problem *cp, const char *name,
                                    cl_uint num_wait_events, const cl_event *wait_events,
                                    int32_t **entries)
{
    const int batch = cp->fwd.batch;
    const size_t count = batch ? (size_t)(batch - 1) * (size_t)cp->bt_sb + (size_t)cp->max_blocks : 0;
    return facl_read_int32_range(ctx, queue, cp->block_table, (uint64_t)cp->bt_off, count, name,
                                 num_wait_events, wait_events, entries);
}

/* The table entries of sequence b for key positions [from, to) must name a page. */
static facl_status check_table_row(const facl_cache_problem *cp, const char *name,
                                   const int32_t *entries, int b, int64_t from, int64_t to)
{
    if (to <= from) return FACL_SUCCESS;
    const int32_t *row = entries + (size_t)b * (size_t)cp->bt_sb;
    for (int64_t j = from / cp->page_size; j <= (to - 1) / cp->page_size; ++j)
        if (row[j] < 0 || row[j] >= cp->num_blocks)
            return facl_fail(FACL_ERROR_INVALID_VALUE,
                             "%s: [%d][%lld] is %d, outside 0..%d (num_blocks - 1); sequence %d "
                             "uses key positions %lld..%lld",
                             name, b, (long long)j, row[j], cp->num_blocks - 1, b,
                             (long long)from, (long long)(to - 1));
    return FACL_SUCCESS;
}

/* Where an append lands: a paged cache slot (page * page_size + row), or a dense cache
 * row; b is the sequence that appends there. */
typedef struct slot {
    int64_t slot;
    int32_t b;
} slot;

static int slot_cmp(const void *x, const void *y)
{
    const slot *a = x, *b = y;
    if (a->slot != b->slot) return a->slot < b->slot ? -1 : 1;
    return a->b < b->b ? -1 : a->b > b->b;
}

static facl_status rotary_refusal(int b, int64_t position, const char *what, int seqlen_ro)
{
    return facl_fail(FACL_ERROR_INVALID_SEQLENS,
                     "cache->rotary_cos: sequence %d needs rotary position %lld (%s), beyond its "
                     "%d rows (seqlen_ro)",
                     b, (long long)position, what, seqlen_ro);
}

/* Rotary positions of sequence b (start = its cache_seqlens, n_new appended keys, sq
 * query rows) must be < seqlen_ro. */
static facl_status check_rotary(const facl_cache_problem *cp, int b, int64_t start, int64_t n_new,
                                int64_t sq)
{
    if (!cp->cos.buffer) return FACL_SUCCESS;
    if (n_new > 0 && start + n_new - 1 >= cp->seqlen_ro)
        return rotary_refusal(b, start + n_new - 1, "the last new key", cp->seqlen_ro);
    /* Queries rotate per row when a causal mask or a window places them (after the
     * window normalisation), else all at the cache's end. */
    const int per_row = cp->fwd.window_left >= 0 || cp->fwd.window_right >= 0;
    const int64_t last_q = per_row ? start + sq - 1 : start;
    if (sq > 0 && last_q >= cp->seqlen_ro)
        return rotary_refusal(b, last_q, per_row ? "the last query row" : "the queries",
                              cp->seqlen_ro);
    return FACL_SUCCESS;
}

/* What needs only the host cache_seqlens_value (and the shapes): checked even when the
 * caller trusts the index buffers. */
static facl_status check_host_value(const facl_cache_problem *cp, const facl_kvcache_args *a)
{
    const facl_fwd_problem *p = &cp->fwd;
    if (a->cache_seqlens || p->batch == 0) return FACL_SUCCESS;
    const int64_t value = a->cache_seqlens_value;
    /* a varlen k_new's lengths are known only from its prefix sums */
    const int64_t n_new = cp->k_new.buffer && !p->varlen ? cp->seqlen_new : 0;
    if (value + n_new > p->seqlen_k)
        return facl_fail(FACL_ERROR_INVALID_SEQLENS,
                         "cache->cache_seqlens_value: %lld + %lld new keys = %lld, lengths beyond "
                         "the cache (capacity %d)",
                         (long long)value, (long long)n_new, (long long)(value + n_new),
                         p->seqlen_k);
    return check_rotary(cp, 0, value, n_new, p->varlen ? 0 : p->seqlen_q);
}

/* Two appends must not land in one place: in a paged cache no two appended positions on
 * one (page, row); in a dense one no two appending sequences on one cache row. */
static facl_status check_overlapping_appends(const facl_cache_problem *cp, const int32_t *seqlens,
                                             const int32_t *cu_new, const int32_t *batch_idx,
                                             const int32_t *table)
{
    const facl_fwd_problem *p = &cp->fwd;
    if (!cp->paged && !batch_idx) return FACL_SUCCESS; /* row b for sequence b: all distinct */
    size_t total = 0;
    for (int b = 0; b < p->batch; ++b) {
        const int64_t count = cu_new ? cu_new[b + 1] - cu_new[b] : cp->seqlen_new;
        total += cp->paged ? (size_t)count : count > 0;
    }
    if (total < 2) return FACL_SUCCESS;
    slot *slots = malloc(total * sizeof *slots);
    if (!slots) return facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "cache->k_new: append check");
    size_t n = 0;
    for (int b = 0; b < p->batch; ++b) {
        const int64_t count = cu_new ? cu_new[b + 1] - cu_new[b] : cp->seqlen_new;
        if (!cp->paged && count > 0) {
            slots[n].slot = batch_idx[b];
            slots[n++].b = b;
        }
        for (int64_t t = 0; cp->paged && t < count; ++t) {
            const int64_t pos = (int64_t)seqlens[b] + t;
            const int32_t *row = table + (size_t)b * (size_t)cp->bt_sb;
            slots[n].slot = (int64_t)row[pos / cp->page_size] * cp->page_size + pos % cp->page_size;
            slots[n++].b = b;
        }
    }
    qsort(slots, n, sizeof *slots, slot_cmp);
    facl_status st = FACL_SUCCESS;
    for (size_t i = 1; i < n && st == FACL_SUCCESS; ++i) {
        if (slots[i].slot != slots[i - 1].slot) continue;
        const int b0 = slots[i - 1].b, b1 = slots[i].b;
        if (cp->paged)
            st = facl_fail(FACL_ERROR_INVALID_VALUE,
                           "cache->block_table: sequences %d and %d append to the same page %lld "
                           "row %lld",
                           b0, b1, (long long)(slots[i].slot / cp->page_size),
                           (long long)(slots[i].slot % cp->page_size));
        else
            st = facl_fail(FACL_ERROR_INVALID_VALUE,
                           "cache->cache_batch_idx: sequences %d and %d both append to cache row "
                           "%lld",
                           b0, b1, (long long)slots[i].slot);
    }
    free(slots);
    return st;
}

/* The index buffers read back and checked against each other and the cache. */
static facl_status check_cache_contents(const facl_context *ctx, cl_command_queue queue,
                                        const facl_cache_problem *cp, const facl_kvcache_args *a,
                                        cl_uint num_wait_events, const cl_event *wait_events)
{
    const facl_fwd_problem *p = &cp->fwd;
    const int64_t capacity = p->seqlen_k;
    int32_t *cu_q = NULL, *cu_new = NULL, *seqlens = NULL, *batch_idx = NULL, *leftpad = NULL;
    int32_t *table = NULL;
    facl_status st = FACL_SUCCESS;
    if (a->cu_seqlens_q)
        st = facl_check_prefix_sums(ctx, queue, a->cu_seqlens_q, "cache->cu_seqlens_q", p->total_q,
                                    p->seqlen_q, "cache->max_seqlen_q", num_wait_events,
                                    wait_events, &cu_q);
    if (st == FACL_SUCCESS && a->cu_seqlens_k_new)
        st = facl_check_prefix_sums(ctx, queue, a->cu_seqlens_k_new, "cache->cu_seqlens_k_new",
                                    cp->total_new, capacity, "the cache's capacity",
                                    num_wait_events, wait_events, &cu_new);
    if (st == FACL_SUCCESS && a->cache_seqlens)
        st = facl_read_int32s(ctx, queue, a->cache_seqlens, "cache->cache_seqlens",
                              num_wait_events, wait_events, &seqlens);
    if (st == FACL_SUCCESS && !a->cache_seqlens) {
        seqlens = malloc((size_t)p->batch * sizeof *seqlens);
        if (!seqlens)
            st = facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "cache->cache_seqlens_value: host copy");
        for (int b = 0; seqlens && b < p->batch; ++b) seqlens[b] = a->cache_seqlens_value;
    }
    if (st == FACL_SUCCESS && a->cache_batch_idx)
        st = facl_read_int32s(ctx, queue, a->cache_batch_idx, "cache->cache_batch_idx",
                              num_wait_events, wait_events, &batch_idx);
    if (st == FACL_SUCCESS && a->cache_leftpad)
        st = facl_read_int32s(ctx, queue, a->cache_leftpad, "cache->cache_leftpad",
                              num_wait_events, wait_events, &leftpad);
    if (st == FACL_SUCCESS && cp->paged)
        st = read_block_table(ctx, queue, cp, "cache->block_table", num_wait_events, wait_events,
                              &table);
    const char *seqlens_name =
        a->cache_seqlens ? "cache->cache_seqlens" : "cache->cache_seqlens_value";
    const int appends = cp->k_new.buffer != NULL;
    for (int b = 0; b < p->batch && st == FACL_SUCCESS; ++b) {
        const int64_t start = seqlens[b];
        const int64_t n_new = !appends ? 0 : cu_new ? cu_new[b + 1] - cu_new[b] : cp->seqlen_new;
        const int64_t end = start + n_new;
        const int64_t pad = leftpad ? leftpad[b] : 0;
        const int64_t sq = cu_q ? cu_q[b + 1] - cu_q[b] : p->seqlen_q;
        if (start < 0)
            st = facl_fail(FACL_ERROR_INVALID_SEQLENS, "%s: [%d] is %lld, must be >= 0",
                           seqlens_name, b, (long long)start);
        else if (end > capacity)
            st = facl_fail(FACL_ERROR_INVALID_SEQLENS,
                           "%s: sequence %d: %lld + %lld new keys = %lld, lengths beyond the cache "
                           "(capacity %lld)",
                           seqlens_name, b, (long long)start, (long long)n_new, (long long)end,
                           (long long)capacity);
        else if (pad < 0 || pad > end)
            st = facl_fail(FACL_ERROR_INVALID_SEQLENS,
                           "cache->cache_leftpad: [%d] is %lld, outside 0..%lld (the sequence's "
                           "cache_seqlens + new keys)",
                           b, (long long)pad, (long long)end);
        else if (batch_idx && (batch_idx[b] < 0 || batch_idx[b] >= cp->batch_cache))
            st = facl_fail(FACL_ERROR_INVALID_VALUE,
                           "cache->cache_batch_idx: [%d] is %d, outside 0..%d (k_cache's rows)", b,
                           batch_idx[b], cp->batch_cache - 1);
        else if (table)
            /* the attention reads [pad, end); the append writes [start, end) */
            st = check_table_row(cp, "cache->block_table", table, b, pad < start ? pad : start,
                                 end);
        if (st == FACL_SUCCESS) st = check_rotary(cp, b, start, n_new, sq);
    }
    if (st == FACL_SUCCESS && appends)
        st = check_overlapping_appends(cp, seqlens, cu_new, batch_idx, table);
    free(cu_q);
    free(cu_new);
    free(seqlens);
    free(batch_idx);
    free(leftpad);
    free(table);
    return st;
}

facl_status facl_validate_kvcache(const facl_context *ctx, cl_command_queue queue,
                                  const facl_tensor *q, const facl_tensor *k_cache,
                                  const facl_tensor *v_cache, const facl_kvcache_args *cache,
                                  const facl_tensor *out, const facl_tensor *lse,
                                  const facl_attn_options *opts, cl_uint num_wait_events,
                                  const cl_event *wait_events, facl_cache_problem *cp)
{
    memset(cp, 0, sizeof *cp);
    facl_fwd_problem *p = &cp->fwd;
    facl_attn_options local;
    facl_kvcache_args a;
    facl_status st;
    if ((st = facl_check_common(ctx, queue, &opts, &local)) ||
        (st = read_cache_args(cache, &a)))
        return st;
    if (opts->block_table)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "opts->block_table: facl_fwd_kvcache takes its block table in "
                         "cache->block_table");
    if ((st = refuse_dropout_and_probs(opts, "facl_fwd_kvcache"))) return st;
    if (opts->seqused_k)
        return facl_fail(FACL_ERROR_UNSUPPORTED,
                         "opts->seqused_k: facl_fwd_kvcache takes the key counts from "
                         "cache->cache_seqlens");
    if ((st = check_cache_scalars(&a))) return st;

    /* q, out and the cache tensors */
    const facl_fwd_names names = {"q", "k_cache", "v_cache"};
    const int varlen = a.cu_seqlens_q != NULL;
    if ((st = facl_check_qkvo(ctx, q, k_cache, v_cache, out, varlen ? 3 : 4, 4, &names, p)))
        return st;
    int64_t batch;
    if (varlen) {
        const facl_tensor *cu = a.cu_seqlens_q;
        if ((st = facl_check_tensor(ctx, "cache->cu_seqlens_q", cu, 1, I32_ONLY))) return st;
        if (cu->shape[0] < 1)
            return facl_fail(FACL_ERROR_INVALID_SHAPE,
                             "cache->cu_seqlens_q: needs batch + 1 >= 1 entries");
        batch = cu->shape[0] - 1;
        if ((st = facl_check_fits_int("batch", batch)) ||
            (st = facl_check_fits_int("total_q", q->shape[0])) ||
            (st = facl_check_fits_int("cache->max_seqlen_q", a.max_seqlen_q)))
            return st;
        p->varlen = 1;
        p->total_q = (int)q->shape[0];
        p->seqlen_q = (int)a.max_seqlen_q;
        p->cu_q = cu->buffer;
        p->cu_q_off = (int64_t)cu->offset;
        p->q = facl_view_of(q, -1, 0, 1);
        p->out = facl_view_of(out, -1, 0, 1);
    } else {
        batch = q->shape[0];
        if ((st = facl_check_fits_int("batch", batch)) ||
            (st = facl_check_fits_int("seqlen_q", q->shape[1])))
            return st;
        p->seqlen_q = (int)q->shape[1];
        p->q = facl_view_of(q, 0, 1, 2);
        p->out = facl_view_of(out, 0, 1, 2);
    }
    p->batch = (int)batch;

    if (a.block_table) {
        if ((st = check_paged(ctx, "cache->block_table", a.block_table, "k_cache", k_cache, batch,
                              cp)))
            return st;
        p->seqlen_k = cp->max_blocks * cp->page_size;
    } else {
        if ((st = facl_check_fits_int("k_cache", k_cache->shape[0])) ||
            (st = facl_check_fits_int("k_cache", k_cache->shape[1])))
            return st;
        if (!a.cache_batch_idx && k_cache->shape[0] < batch)
            return facl_fail(FACL_ERROR_INVALID_SHAPE,
                             "k_cache: batch_cache (dimension 0) is %lld, less than the batch %lld "
                             "(without cache->cache_batch_idx, sequence b uses cache row b)",
                             (long long)k_cache->shape[0], (long long)batch);
        cp->batch_cache = (int)k_cache->shape[0];
        p->seqlen_k = (int)k_cache->shape[1];
        p->k = facl_view_of(k_cache, 0, 1, 2);
    }
    p->v = facl_view_of(v_cache, 0, 1, 2);
    cp->key_source = FACL_KEYS_CACHE_SEQLENS;

    /* the per-sequence index vectors */
    if (a.cache_seqlens) {
        if ((st = check_index_vector(ctx, "cache->cache_seqlens", a.cache_seqlens, batch)))
            return st;
        cp->seqlens = a.cache_seqlens->buffer;
        cp->seqlens_off = (int64_t)a.cache_seqlens->offset;
    } else {
        cp->seqlens_value = a.cache_seqlens_value;
    }
    if (a.workspace) { /* its size depends on the split count: checked by the launch */
        if ((st = facl_check_tensor(ctx, "cache->workspace", a.workspace, 1, 1u << FACL_DTYPE_F32)))
            return st;
        cp->workspace = a.workspace->buffer;
        cp->workspace_off = (int64_t)a.workspace->offset;
        cp->workspace_floats = a.workspace->shape[0];
    }
    if (a.cache_batch_idx) {
        if ((st = check_index_vector(ctx, "cache->cache_batch_idx", a.cache_batch_idx, batch)))
            return st;
        cp->batch_idx = a.cache_batch_idx->buffer;
        cp->batch_idx_off = (int64_t)a.cache_batch_idx->offset;
    }
    if (a.cache_leftpad) {
        if ((st = check_index_vector(ctx, "cache->cache_leftpad", a.cache_leftpad, batch)))
            return st;
        cp->leftpad = a.cache_leftpad->buffer;
        cp->leftpad_off = (int64_t)a.cache_leftpad->offset;
    }

    /* the appended keys and values */
    if (a.k_new) {
        const int rank = varlen ? 3 : 4;
        if ((st = check_like_q(ctx, "cache->k_new", a.k_new, rank, q)) ||
            (st = check_like_q(ctx, "cache->v_new", a.v_new, rank, q)) ||
            (!varlen && (st = facl_check_dim("cache->k_new", a.k_new, 0, batch, "batch"))) ||
            (st = facl_check_dim("cache->k_new", a.k_new, rank - 2, p->heads_kv, "heads_kv")) ||
            (st = facl_check_dim("cache->k_new", a.k_new, rank - 1, p->head_dim, "head_dim")) ||
            (st = check_same_shape("cache->v_new", a.v_new, "shaped like cache->k_new", a.k_new)))
            return st;
        if (varlen) {
            const facl_tensor *cu = a.cu_seqlens_k_new;
            if ((st = facl_check_tensor(ctx, "cache->cu_seqlens_k_new", cu, 1, I32_ONLY)) ||
                (st = facl_check_dim("cache->cu_seqlens_k_new", cu, 0, batch + 1,
                                     "batch + 1, as cache->cu_seqlens_q")) ||
                (st = facl_check_fits_int("cache->k_new", a.k_new->shape[0])))
                return st;
            cp->total_new = (int)a.k_new->shape[0];
            cp->cu_new = cu->buffer;
            cp->cu_new_off = (int64_t)cu->offset;
            cp->k_new = facl_view_of(a.k_new, -1, 0, 1);
            cp->v_new = facl_view_of(a.v_new, -1, 0, 1);
        } else {
            if ((st = facl_check_fits_int("cache->k_new", a.k_new->shape[1]))) return st;
            cp->seqlen_new = (int)a.k_new->shape[1];
            cp->k_new = facl_view_of(a.k_new, 0, 1, 2);
            cp->v_new = facl_view_of(a.v_new, 0, 1, 2);
        }
    }

    /* rotary */
    if (a.rotary_cos) {
        const facl_tensor *c = a.rotary_cos, *s = a.rotary_sin;
        if ((st = check_like_q(ctx, "cache->rotary_cos", c, 2, q)) ||
            (st = check_like_q(ctx, "cache->rotary_sin", s, 2, q)) ||
            (st = check_same_shape("cache->rotary_sin", s, "shaped like cache->rotary_cos", c)))
            return st;
        if (c->shape[1] < 1)
            return facl_fail(FACL_ERROR_INVALID_SHAPE,
                             "cache->rotary_cos: rotary_dim / 2 (dimension 1) is 0, must be >= 1");
        if (2 * c->shape[1] > p->head_dim)
            return facl_fail(FACL_ERROR_INVALID_SHAPE,
                             "cache->rotary_cos: rotary_dim %lld (twice dimension 1) exceeds "
                             "head_dim %d",
                             (long long)(2 * c->shape[1]), p->head_dim);
        if ((st = facl_check_fits_int("cache->rotary_cos", c->shape[0]))) return st;
        cp->cos.buffer = c->buffer;
        cp->cos.offset = (int64_t)c->offset;
        cp->cos.ss = c->stride[0];
        cp->sin.buffer = s->buffer;
        cp->sin.offset = (int64_t)s->offset;
        cp->sin.ss = s->stride[0];
        cp->rotary_dim = (int)(2 * c->shape[1]);
        cp->seqlen_ro = (int)c->shape[0];
    }
    cp->rotary_interleaved = a.rotary_interleaved;
    cp->num_splits = a.num_splits;

    /* the attention options, the window normalised against the cache's capacity */
    if ((st = facl_check_scalar_options(opts, p->head_dim, p)) ||
        (st = facl_check_optional_tensors(ctx, lse, opts, p)) ||
        (st = check_host_value(cp, &a)))
        return st;
    if (opts->trust_cu_seqlens || p->batch == 0) return FACL_SUCCESS;
    return check_cache_contents(ctx, queue ? queue : ctx->queue, cp, &a, num_wait_events,
                                wait_events);
}

facl_status facl_validate_varlen_paged(const facl_context *ctx, cl_command_queue queue,
                                       const facl_tensor *q, const facl_tensor *k,
                                       const facl_tensor *v, const facl_tensor *cu_q,
                                       const facl_tensor *cu_k, int64_t max_seqlen_q,
                                       int64_t max_seqlen_k, const facl_tensor *out,
                                       const facl_tensor *lse, const facl_attn_options *opts,
                                       const facl_fwd_names *names, cl_uint num_wait_events,
                                       const cl_event *wait_events, facl_cache_problem *cp)
{
    memset(cp, 0, sizeof *cp);
    facl_fwd_problem *p = &cp->fwd;
    facl_attn_options local;
    facl_status st;
    if ((st = facl_check_common(ctx, queue, &opts, &local)) ||
        (st = refuse_dropout_and_probs(opts, "a varlen call with opts->block_table")) ||
        (st = facl_check_qkvo(ctx, q, k, v, out, 3, 4, names, p)) ||
        (st = facl_check_varlen_seqlens(ctx, q, cu_q, cu_k, max_seqlen_q, max_seqlen_k, p)) ||
        (st = check_paged(ctx, "opts->block_table", opts->block_table, names->k, k, p->batch,
                          cp)))
        return st;
    p->total_k = 0; /* keys are found through the table, not as rows of k */
    p->q = facl_view_of(q, -1, 0, 1);
    p->out = facl_view_of(out, -1, 0, 1);
    p->v = facl_view_of(v, 0, 1, 2);
    cp->key_source = FACL_KEYS_CU_SEQLENS_K;
    cp->rotary_interleaved = 1;
    cp->num_splits = 0; /* choose */
    if ((st = facl_check_scalar_options(opts, p->head_dim, p)) ||
        (st = facl_check_optional_tensors(ctx, lse, opts, p)))
        return st;
    if (opts->trust_cu_seqlens || p->batch == 0) return FACL_SUCCESS;
    if (!queue) queue = ctx->queue;
    const int64_t capacity = (int64_t)cp->max_blocks * cp->page_size;
    int32_t *sums_q = NULL, *sums_k = NULL, *used = NULL, *table = NULL;
    st = facl_check_prefix_sums(ctx, queue, cu_q, "cu_seqlens_q", p->total_q, max_seqlen_q,
                                "max_seqlen_q", num_wait_events, wait_events, &sums_q);
    /* k has no rows to bound the last sum: each length is bounded by the table instead */
    if (st == FACL_SUCCESS)
        st = facl_check_prefix_sums(ctx, queue, cu_k, "cu_seqlens_k", INT32_MAX, max_seqlen_k,
                                    "max_seqlen_k", num_wait_events, wait_events, &sums_k);
    if (st == FACL_SUCCESS && opts->seqused_k)
        st = facl_check_seqused(ctx, queue, opts->seqused_k, p, sums_k, num_wait_events,
                                wait_events, &used);
    if (st == FACL_SUCCESS)
        st = read_block_table(ctx, queue, cp, "opts->block_table", num_wait_events, wait_events,
                              &table);
    for (int b = 0; b < p->batch && st == FACL_SUCCESS; ++b) {
        const int64_t len = (int64_t)sums_k[b + 1] - sums_k[b];
        if (len > capacity)
            st = facl_fail(FACL_ERROR_INVALID_SEQLENS,
                           "cu_seqlens_k: sequence %d has length %lld, beyond the block table's "
                           "%d pages x %d rows",
                           b, (long long)len, cp->max_blocks, cp->page_size);
        else
            st = check_table_row(cp, "opts->block_table", table, b, 0, used ? used[b] : len);
    }
    free(sums_q);
    free(sums_k);
    free(used);
    free(table);
    return st;
}
