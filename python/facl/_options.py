"""flash_attn's keyword arguments as a facl_attn_options."""
import ctypes
import secrets

from ._structs import AttnOptions


def _window(window_size):
    try:
        left, right = window_size
    except (TypeError, ValueError):
        raise ValueError("window_size: expected a pair (left, right), got %r"
                         % (window_size,)) from None
    return int(left), int(right)


_MASK_ALIGN = {"bottom_right": 0, "top_left": 1}


def build(call, softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0,
          alibi_slopes=None, dropout_p=0.0, dropout_seed=None, dropout_offset=0,
          attn_probs=None, block_table=None, mask_align="bottom_right", seqused_k=None,
          trust_cu_seqlens=False, deterministic=False):
    """AttnOptions for a call (its tensors are registered with `call`). The facl
    additions: mask_align "bottom_right" (FlashAttention's) or "top_left" (torch SDPA's)
    for causal masks, windows and ALiBi; seqused_k (FlashAttention 3's: int32 (batch,),
    sequence b uses its first seqused_k[b] keys); trust_cu_seqlens (skip the blocking
    read-back that checks cu_seqlens and seqused_k). deterministic: the backward's mode
    (False: dq may be summed with atomics where the tensor-core kernels run)."""
    o = call.keep(AttnOptions())
    o.deterministic = 1 if deterministic else 0
    if mask_align not in _MASK_ALIGN:
        raise ValueError("mask_align: expected 'bottom_right' or 'top_left', got %r"
                         % (mask_align,))
    o.mask_align = _MASK_ALIGN[mask_align]
    o.trust_cu_seqlens = 1 if trust_cu_seqlens else 0
    o.seqused_k = call.tensor("seqused_k", seqused_k)
    if softmax_scale is not None:
        scale = float(softmax_scale)
        # facl reads 0 as "the default 1/sqrt(d)"; flash_attn would scale by 0. Refuse
        # rather than compute something else than asked.
        if scale == 0.0:
            raise ValueError("softmax_scale: 0 is not supported (pass None for the "
                             "default 1/sqrt(head_dim))")
        o.softmax_scale = scale
    o.causal = 1 if causal else 0
    o.window_left, o.window_right = _window(window_size)
    o.softcap = float(softcap)
    o.dropout_p = float(dropout_p)
    # flash_attn draws its seed from torch's generator; facl takes it explicitly.
    # Without one, dropout gets a fresh random seed: pass dropout_seed to reproduce a call
    # or to run its backward with the same mask.
    if dropout_seed is None and o.dropout_p != 0.0:
        dropout_seed = secrets.randbits(64)
    o.dropout_seed = int(dropout_seed or 0) & (2 ** 64 - 1)
    o.dropout_offset = int(dropout_offset) & (2 ** 64 - 1)
    o.alibi_slopes = call.tensor("alibi_slopes", alibi_slopes)
    o.attn_probs = call.tensor("attn_probs", attn_probs, output=True)
    o.block_table = call.tensor("block_table", block_table)
    return ctypes.pointer(o)
