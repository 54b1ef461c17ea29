"""The backward calls (facl_bwd, facl_varlen_bwd) as functions.

flash_attn's backward runs inside torch.autograd and has no public function; these
follow its internal _flash_attn_backward / _flash_attn_varlen_backward: the same
argument order (dout, q, k, v, out, softmax_lse, dq, dk, dv, ...), with dq, dk, dv
optional (None: new arrays; given: written in place, any strided views, so the gradient
of a packed qkv is three views of one dqkv array). They return (dq, dk, dv).
Pass the forward's options unchanged, and for dropout the forward's dropout_seed and
dropout_offset (the mask is regenerated from them). softmax_lse is the forward's (from
return_attn_probs=True). deterministic (flash_attn's position, default False as in
flash_attn's functions) is facl_attn_options.deterministic: False lets the tensor-core
kernels (fp16/bf16 on NVIDIA) add dq with atomics, so dq may differ in its last bits
from run to run; True makes every gradient bitwise reproducible. mask_align, seqused_k
and trust_cu_seqlens as for the forward (keyword-only).
"""
from . import _alloc, _options
from ._call import Call
from ._lib import lib
from .interface import _array


def _gradients(call, q, k, v, dq, dk, dv):
    dq = _alloc.empty(call.queue, q.shape, q.dtype) if dq is None else dq
    dk = _alloc.empty(call.queue, k.shape, k.dtype) if dk is None else dk
    dv = _alloc.empty(call.queue, v.shape, v.dtype) if dv is None else dv
    return dq, dk, dv


def flash_attn_backward(dout, q, k, v, out, softmax_lse, dq=None, dk=None, dv=None,
                        dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1),
                        softcap=0.0, alibi_slopes=None, deterministic=False, *,
                        dropout_seed=None, dropout_offset=0,
                    mask_align="bottom_right", seqused_k=None, trust_cu_seqlens=False):
    """Gradients of flash_attn_func: dq like q (batch, seqlen_q, nheads, d), dk and dv like
    k and v. Returns (dq, dk, dv)."""
    _array("q", q, 4)
    call = Call(q.queue)
    dq, dk, dv = _gradients(call, q, k, v, dq, dk, dv)
    if dropout_seed is None and dropout_p:
        raise ValueError("dropout_seed: the backward of a dropout forward needs the "
                         "forward's dropout_seed (and dropout_offset)")
    opts = _options.build(call, softmax_scale, causal, window_size, softcap, alibi_slopes,
                          dropout_p, dropout_seed, dropout_offset,
                          mask_align=mask_align, seqused_k=seqused_k,
                          trust_cu_seqlens=trust_cu_seqlens, deterministic=deterministic)
    call.run(lib.facl_bwd, call.tensor("dout", dout), call.tensor("q", q),
             call.tensor("k", k), call.tensor("v", v), call.tensor("out", out),
             call.tensor("lse", softmax_lse), call.tensor("dq", dq, True),
             call.tensor("dk", dk, True), call.tensor("dv", dv, True), opts, None)
    return dq, dk, dv


def flash_attn_varlen_backward(dout, q, k, v, out, softmax_lse, dq, dk, dv, cu_seqlens_q,
                               cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0,
                               softmax_scale=None, causal=False, window_size=(-1, -1),
                               softcap=0.0, alibi_slopes=None, deterministic=False, *,
                               dropout_seed=None, dropout_offset=0,
                    mask_align="bottom_right", seqused_k=None, trust_cu_seqlens=False):
    """Gradients of flash_attn_varlen_func: dq (total_q, nheads, d), dk and dv (total_k,
    nheads_k, d); softmax_lse (nheads, total_q). dq, dk, dv may be None. Rows outside
    every sequence are not written. Returns (dq, dk, dv)."""
    _array("q", q, 3)
    call = Call(q.queue)
    dq, dk, dv = _gradients(call, q, k, v, dq, dk, dv)
    if dropout_seed is None and dropout_p:
        raise ValueError("dropout_seed: the backward of a dropout forward needs the "
                         "forward's dropout_seed (and dropout_offset)")
    opts = _options.build(call, softmax_scale, causal, window_size, softcap, alibi_slopes,
                          dropout_p, dropout_seed, dropout_offset,
                          mask_align=mask_align, seqused_k=seqused_k,
                          trust_cu_seqlens=trust_cu_seqlens, deterministic=deterministic)
    call.run(lib.facl_varlen_bwd, call.tensor("dout", dout), call.tensor("q", q),
             call.tensor("k", k), call.tensor("v", v),
             call.tensor("cu_seqlens_q", cu_seqlens_q), call.tensor("cu_seqlens_k", cu_seqlens_k),
             int(max_seqlen_q), int(max_seqlen_k), call.tensor("out", out),
             call.tensor("lse", softmax_lse), call.tensor("dq", dq, True),
             call.tensor("dk", dk, True), call.tensor("dv", dv, True), opts, None)
    return dq, dk, dv
