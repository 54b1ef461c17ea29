"""flash_attn's forward functions over pyopencl arrays.

Names, argument order, defaults and return values are flash_attn 2's
(flash_attn/flash_attn_interface.py); the differences, all keyword-only additions or
documented refusals, are:
- dropout_seed / dropout_offset: the Philox seed and offset of the dropout mask
  (flash_attn takes them from torch's generator). None = a fresh random seed.
- return_attn_probs returns (out, softmax_lse, attn_probs) for every call, dropout or
  not (flash_attn returns S_dmask only with dropout); attn_probs is fp32, negated where
  dropout dropped the entry, 0 where masked. Slow: for tests and debugging.
- mask_align ("bottom_right", flash_attn's, or "top_left", torch SDPA's), seqused_k
  (FlashAttention 3's: int32 (batch,), sequence b uses only its first seqused_k[b]
  keys) and trust_cu_seqlens (skip the blocking read-back that checks cu_seqlens and
  seqused_k): keyword-only, facl_attn_options' fields of the same names.
- deterministic is accepted and always honoured: facl's forward is deterministic either
  way (flash_attn keeps it for its backward; facl's backward functions take their own).
- softmax_scale=0 is refused (facl reads 0 as "default"); window_size right other than
  -1 or 0 together with causal is refused (flash_attn overrides it silently).
Outputs are new arrays on q's queue; the call only enqueues (varlen calls read
cu_seqlens back, a short blocking read, as facl does by default).
"""
import pyopencl.array as cla

from . import _alloc, _options
from ._call import Call
from ._lib import lib


def _array(name, arr, ndim):
    if not isinstance(arr, cla.Array):
        raise TypeError("%s: expected a pyopencl.array.Array, got %s (the facl.numpy_api "
                        "functions take numpy arrays)" % (name, type(arr).__name__))
    if arr.ndim != ndim:
        raise ValueError("%s: expected %d dimensions, got shape %s" % (name, ndim, arr.shape))
    return arr.shape


def _outputs(call, q, out_shape, lse_shape, probs_shape, return_attn_probs):
    out = _alloc.empty(call.queue, out_shape, q.dtype)
    lse = _alloc.empty(call.queue, lse_shape) if return_attn_probs else None
    probs = _alloc.empty(call.queue, probs_shape) if return_attn_probs else None
    return out, lse, probs


def _result(out, lse, probs, return_attn_probs):
    return (out, lse, probs) if return_attn_probs else out


def flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False,
                    window_size=(-1, -1), softcap=0.0, alibi_slopes=None, deterministic=False,
                    return_attn_probs=False, *, dropout_seed=None, dropout_offset=0,
                    mask_align="bottom_right", seqused_k=None, trust_cu_seqlens=False):
    """q (batch, seqlen_q, nheads, d), k and v (batch, seqlen_k, nheads_k, d).
    Returns out (batch, seqlen_q, nheads, d), or with return_attn_probs
    (out, softmax_lse (batch, nheads, seqlen_q), attn_probs (batch, nheads, seqlen_q,
    seqlen_k))."""
    b, sq, hq, d = _array("q", q, 4)
    sk = _array("k", k, 4)[1]
    call = Call(q.queue)
    out, lse, probs = _outputs(call, q, q.shape, (b, hq, sq), (b, hq, sq, sk),
                               return_attn_probs)
    opts = _options.build(call, softmax_scale, causal, window_size, softcap, alibi_slopes,
                          dropout_p, dropout_seed, dropout_offset, probs,
                          mask_align=mask_align, seqused_k=seqused_k,
                          trust_cu_seqlens=trust_cu_seqlens)
    call.run(lib.facl_fwd, call.tensor("q", q), call.tensor("k", k), call.tensor("v", v),
             call.tensor("out", out, True), call.tensor("lse", lse, True), opts)
    return _result(out, lse, probs, return_attn_probs)


def flash_attn_qkvpacked_func(qkv, dropout_p=0.0, softmax_scale=None, causal=False,
                              window_size=(-1, -1), softcap=0.0, alibi_slopes=None,
                              deterministic=False, return_attn_probs=False, *,
                              dropout_seed=None, dropout_offset=0,
                    mask_align="bottom_right", seqused_k=None, trust_cu_seqlens=False):
    """qkv (batch, seqlen, 3, nheads, d). Returns out (batch, seqlen, nheads, d) (and lse,
    attn_probs as flash_attn_func)."""
    b, s, _, h, d = _array("qkv", qkv, 5)
    call = Call(qkv.queue)
    out, lse, probs = _outputs(call, qkv, (b, s, h, d), (b, h, s), (b, h, s, s),
                               return_attn_probs)
    opts = _options.build(call, softmax_scale, causal, window_size, softcap, alibi_slopes,
                          dropout_p, dropout_seed, dropout_offset, probs,
                          mask_align=mask_align, seqused_k=seqused_k,
                          trust_cu_seqlens=trust_cu_seqlens)
    call.run(lib.facl_fwd_qkvpacked, call.tensor("qkv", qkv), call.tensor("out", out, True),
             call.tensor("lse", lse, True), opts)
    return _result(out, lse, probs, return_attn_probs)


def flash_attn_kvpacked_func(q, kv, dropout_p=0.0, softmax_scale=None, causal=False,
                             window_size=(-1, -1), softcap=0.0, alibi_slopes=None,
                             deterministic=False, return_attn_probs=False, *,
                             dropout_seed=None, dropout_offset=0,
                    mask_align="bottom_right", seqused_k=None, trust_cu_seqlens=False):
    """q (batch, seqlen_q, nheads, d), kv (batch, seqlen_k, 2, nheads_k, d)."""
    b, sq, hq, d = _array("q", q, 4)
    sk = _array("kv", kv, 5)[1]
    call = Call(q.queue)
    out, lse, probs = _outputs(call, q, q.shape, (b, hq, sq), (b, hq, sq, sk),
                               return_attn_probs)
    opts = _options.build(call, softmax_scale, causal, window_size, softcap, alibi_slopes,
                          dropout_p, dropout_seed, dropout_offset, probs,
                          mask_align=mask_align, seqused_k=seqused_k,
                          trust_cu_seqlens=trust_cu_seqlens)
    call.run(lib.facl_fwd_kvpacked, call.tensor("q", q), call.tensor("kv", kv),
             call.tensor("out", out, True), call.tensor("lse", lse, True), opts)
    return _result(out, lse, probs, return_attn_probs)


def _batch(name, cu_seqlens):
    _array(name, cu_seqlens, 1)
    return max(cu_seqlens.shape[0] - 1, 0)


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                           dropout_p=0.0, softmax_scale=None, causal=False,
                           window_size=(-1, -1), softcap=0.0, alibi_slopes=None,
                           deterministic=False, return_attn_probs=False, block_table=None, *,
                           dropout_seed=None, dropout_offset=0,
                    mask_align="bottom_right", seqused_k=None, trust_cu_seqlens=False):
    """q (total_q, nheads, d), k and v (total_k, nheads_k, d) (or paged with block_table:
    (num_blocks, page_size, nheads_k, d)); cu_seqlens_q/k int32 (batch + 1).
    Returns out (total_q, nheads, d) (and softmax_lse (nheads, total_q), attn_probs
    (batch, nheads, max_seqlen_q, max_seqlen_k))."""
    tq, hq, d = _array("q", q, 3)
    b = _batch("cu_seqlens_q", cu_seqlens_q)
    call = Call(q.queue)
    out, lse, probs = _outputs(call, q, q.shape, (hq, tq),
                               (b, hq, max_seqlen_q, max_seqlen_k), return_attn_probs)
    opts = _options.build(call, softmax_scale, causal, window_size, softcap, alibi_slopes,
                          dropout_p, dropout_seed, dropout_offset, probs, block_table,
                          mask_align=mask_align, seqused_k=seqused_k,
                          trust_cu_seqlens=trust_cu_seqlens)
    call.run(lib.facl_varlen_fwd, call.tensor("q", q), call.tensor("k", k),
             call.tensor("v", v), call.tensor("cu_seqlens_q", cu_seqlens_q),
             call.tensor("cu_seqlens_k", cu_seqlens_k), int(max_seqlen_q), int(max_seqlen_k),
             call.tensor("out", out, True), call.tensor("lse", lse, True), opts)
    return _result(out, lse, probs, return_attn_probs)


def flash_attn_varlen_qkvpacked_func(qkv, cu_seqlens, max_seqlen, dropout_p=0.0,
                                     softmax_scale=None, causal=False, window_size=(-1, -1),
                                     softcap=0.0, alibi_slopes=None, deterministic=False,
                                     return_attn_probs=False, *, dropout_seed=None,
                                     dropout_offset=0,
                    mask_align="bottom_right", seqused_k=None, trust_cu_seqlens=False):
    """qkv (total, 3, nheads, d), cu_seqlens int32 (batch + 1)."""
    t, _, h, d = _array("qkv", qkv, 4)
    b = _batch("cu_seqlens", cu_seqlens)
    call = Call(qkv.queue)
    out, lse, probs = _outputs(call, qkv, (t, h, d), (h, t), (b, h, max_seqlen, max_seqlen),
                               return_attn_probs)
    opts = _options.build(call, softmax_scale, causal, window_size, softcap, alibi_slopes,
                          dropout_p, dropout_seed, dropout_offset, probs,
                          mask_align=mask_align, seqused_k=seqused_k,
                          trust_cu_seqlens=trust_cu_seqlens)
    call.run(lib.facl_varlen_fwd_qkvpacked, call.tensor("qkv", qkv),
             call.tensor("cu_seqlens", cu_seqlens), int(max_seqlen),
             call.tensor("out", out, True), call.tensor("lse", lse, True), opts)
    return _result(out, lse, probs, return_attn_probs)


def flash_attn_varlen_kvpacked_func(q, kv, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                                    max_seqlen_k, dropout_p=0.0, softmax_scale=None,
                                    causal=False, window_size=(-1, -1), softcap=0.0,
                                    alibi_slopes=None, deterministic=False,
                                    return_attn_probs=False, *, dropout_seed=None,
                                    dropout_offset=0,
                    mask_align="bottom_right", seqused_k=None, trust_cu_seqlens=False):
    """q (total_q, nheads, d), kv (total_k, 2, nheads_k, d)."""
    tq, hq, d = _array("q", q, 3)
    b = _batch("cu_seqlens_q", cu_seqlens_q)
    call = Call(q.queue)
    out, lse, probs = _outputs(call, q, q.shape, (hq, tq),
                               (b, hq, max_seqlen_q, max_seqlen_k), return_attn_probs)
    opts = _options.build(call, softmax_scale, causal, window_size, softcap, alibi_slopes,
                          dropout_p, dropout_seed, dropout_offset, probs,
                          mask_align=mask_align, seqused_k=seqused_k,
                          trust_cu_seqlens=trust_cu_seqlens)
    call.run(lib.facl_varlen_fwd_kvpacked, call.tensor("q", q), call.tensor("kv", kv),
             call.tensor("cu_seqlens_q", cu_seqlens_q), call.tensor("cu_seqlens_k", cu_seqlens_k),
             int(max_seqlen_q), int(max_seqlen_k), call.tensor("out", out, True),
             call.tensor("lse", lse, True), opts)
    return _result(out, lse, probs, return_attn_probs)
