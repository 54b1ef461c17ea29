"""flash_attn_with_kvcache over pyopencl arrays (facl_fwd_kvcache)."""
import ctypes
import numbers

from . import _alloc, _options
from ._call import Call
from ._lib import lib
from ._structs import KvcacheArgs
from .interface import _array


def flash_attn_with_kvcache(q, k_cache, v_cache, k=None, v=None, rotary_cos=None,
                            rotary_sin=None, cache_seqlens=None, cache_batch_idx=None,
                            cache_leftpad=None, block_table=None, softmax_scale=None,
                            causal=False, window_size=(-1, -1), softcap=0.0,
                            rotary_interleaved=True, alibi_slopes=None, num_splits=0,
                            return_softmax_lse=False, *, cu_seqlens_q=None, max_seqlen_q=0,
                            cu_seqlens_k_new=None, mask_align="bottom_right"):
    """flash_attn's flash_attn_with_kvcache: q (batch, seqlen_q, nheads, d) attends over
    k_cache, v_cache (batch_cache, seqlen_cache, nheads_k, d), or paged (num_blocks,
    page_size, nheads_k, d) with block_table int32 (batch, max_blocks), after k, v (batch,
    seqlen_new, nheads_k, d) are written into the cache in place at cache_seqlens (after
    rotary). cache_seqlens: an int, an int32 array (batch,), or None (0). Returns out like
    q, or (out, softmax_lse (batch, nheads, seqlen_q)) with return_softmax_lse.
    Beyond flash_attn (keyword-only): cu_seqlens_q, max_seqlen_q and cu_seqlens_k_new for
    varlen queries (q (total_q, nheads, d), lse (nheads, total_q)); any page size.
    The cache arrays are written in place; cache_seqlens is never advanced."""
    varlen = cu_seqlens_q is not None
    shape = _array("q", q, 3 if varlen else 4)
    call = Call(q.queue)
    out = _alloc.empty(call.queue, q.shape, q.dtype)
    if varlen:
        lse_shape = (shape[1], shape[0])
    else:
        lse_shape = (shape[0], shape[2], shape[1])
    lse = _alloc.empty(call.queue, lse_shape) if return_softmax_lse else None

    args = call.keep(KvcacheArgs())
    args.num_splits = int(num_splits)
    if cache_seqlens is None or isinstance(cache_seqlens, numbers.Integral):
        args.cache_seqlens_value = int(cache_seqlens or 0)
    else:
        args.cache_seqlens = call.tensor("cache_seqlens", cache_seqlens)
    args.rotary_interleaved = 1 if rotary_interleaved else 0
    args.k_new = call.tensor("k", k)
    args.v_new = call.tensor("v", v)
    args.rotary_cos = call.tensor("rotary_cos", rotary_cos)
    args.rotary_sin = call.tensor("rotary_sin", rotary_sin)
    args.cache_batch_idx = call.tensor("cache_batch_idx", cache_batch_idx)
    args.cache_leftpad = call.tensor("cache_leftpad", cache_leftpad)
    args.block_table = call.tensor("block_table", block_table)
    args.cu_seqlens_q = call.tensor("cu_seqlens_q", cu_seqlens_q)
    args.max_seqlen_q = int(max_seqlen_q)
    args.cu_seqlens_k_new = call.tensor("cu_seqlens_k_new", cu_seqlens_k_new)
    opts = _options.build(call, softmax_scale, causal, window_size, softcap, alibi_slopes,
                          mask_align=mask_align)
    call.run(lib.facl_fwd_kvcache, call.tensor("q", q),
             call.tensor("k_cache", k_cache, True), call.tensor("v_cache", v_cache, True),
             ctypes.pointer(args), call.tensor("out", out, True),
             call.tensor("lse", lse, True), opts)
    return (out, lse) if return_softmax_lse else out
