"""flash_attn_backward and flash_attn_varlen_backward against the float64 analytic
gradients (and the storage-precision ones for the tolerance), dropout included."""
import numpy as np
import pytest

import facl
from facl import reference
from helpers import check, dense_cu, download, rand, to_varlen, upload, upload_int


def grads_check(prob, q, k, v, dout, out, lse, got, dtype):
    ref = reference.attention_backward(prob, q, k, v, dout)
    low = reference.attention_backward(prob, q, k, v, dout, out=out, lse=lse, precision=dtype)
    for name, g, r, lo in zip(("dq", "dk", "dv"), got, ref, low):
        check(name, g, r, lo, dtype)


def run_dense_bwd(queue, rng, dtype, b=2, sq=5, sk=6, hq=4, hkv=2, d=16, into_packed=False,
                  seqused=None, **opts):
    q = rand(rng, (b, sq, hq, d), dtype)
    k = rand(rng, (b, sk, hkv, d), dtype)
    v = rand(rng, (b, sk, hkv, d), dtype)
    dout = rand(rng, (b, sq, hq, d), dtype)
    Q, K, V = (upload(queue, x, dtype) for x in (q, k, v))
    if seqused is not None:
        opts["seqused_k"] = upload_int(queue, np.asarray(seqused, dtype=np.int32))
    out, lse, _ = facl.flash_attn_func(Q, K, V, return_attn_probs=True, **opts)
    grads = dict(dq=None, dk=None, dv=None)
    if into_packed:
        # Gradients written into three views of one (batch, seqlen, 3, heads, d) array,
        # as a qkv-packed model's dqkv would be (needs sq == sk and hq == hkv).
        dqkv = upload(queue, np.full((b, sq, 3, hq, d), np.nan), dtype)
        grads = dict(dq=dqkv[:, :, 0], dk=dqkv[:, :, 1], dv=dqkv[:, :, 2])
    dq, dk, dv = facl.flash_attn_backward(upload(queue, dout, dtype), Q, K, V, out, lse,
                                          **grads, **opts)
    if into_packed:
        assert dq.base_data is dqkv.base_data
        whole = download(dqkv)
        dq, dk, dv = whole[:, :, 0], whole[:, :, 1], whole[:, :, 2]
    else:
        dq, dk, dv = download(dq), download(dk), download(dv)
    prob = reference.Problem(dense_cu(b, sq), dense_cu(b, sk), key_len=sk,
                             scale=opts.get("softmax_scale"), causal=opts.get("causal", False),
                             window=opts.get("window_size", (-1, -1)),
                             softcap=opts.get("softcap", 0.0),
                             dropout_p=opts.get("dropout_p", 0.0),
                             seed=opts.get("dropout_seed", 0), offset=opts.get("dropout_offset", 0),
                             top_left=opts.get("mask_align") == "top_left", seqused_k=seqused)
    lse_v = download(lse).transpose(1, 0, 2).reshape(hq, -1)
    grads_check(prob, to_varlen(q), to_varlen(k), to_varlen(v), to_varlen(dout),
                to_varlen(download(out)), lse_v, (to_varlen(dq), to_varlen(dk), to_varlen(dv)),
                dtype)


# fp16 runs in test_varlen_backward; the dense fp16 and bf16 variants are marked slow.
@pytest.mark.parametrize("dtype", ["fp32", pytest.param("fp16", marks=pytest.mark.slow),
                                   pytest.param("bf16", marks=pytest.mark.slow)])
def test_dense_causal_gqa(queue, rng, dtype):
    run_dense_bwd(queue, rng, dtype, causal=True)


def test_dense_softcap_window(queue, rng):
    run_dense_bwd(queue, rng, "fp32", softcap=2.0, window_size=(2, 1), sq=6, sk=6)


def test_dense_into_packed_views(queue, rng):
    run_dense_bwd(queue, rng, "fp32", sq=6, sk=6, hq=2, hkv=2)


def test_dropout_forward_and_backward(queue, rng):
    """The same seed and offset give the forward's mask to the backward; the reference's
    Philox reproduces both."""
    run_dense_bwd(queue, rng, "fp32", dropout_p=0.25, dropout_seed=0x1234_5678_9ABC,
                  dropout_offset=7)


def test_varlen_backward(queue, rng):
    dtype, hq, hkv, d = "fp16", 2, 1, 16
    cu_q, cu_k = [0, 3, 3, 9], [0, 5, 7, 13]
    q = rand(rng, (cu_q[-1], hq, d), dtype)
    k = rand(rng, (cu_k[-1], hkv, d), dtype)
    v = rand(rng, (cu_k[-1], hkv, d), dtype)
    dout = rand(rng, q.shape, dtype)
    Q, K, V = (upload(queue, x, dtype) for x in (q, k, v))
    CQ, CK = upload_int(queue, cu_q), upload_int(queue, cu_k)
    out, lse, _ = facl.flash_attn_varlen_func(Q, K, V, CQ, CK, 6, 6, causal=True,
                                              return_attn_probs=True)
    dq, dk, dv = facl.flash_attn_varlen_backward(upload(queue, dout, dtype), Q, K, V, out, lse,
                                                 None, None, None, CQ, CK, 6, 6, causal=True)
    prob = reference.Problem(cu_q, cu_k, key_len=6, causal=True)
    grads_check(prob, q, k, v, dout, download(out), download(lse),
                (download(dq), download(dk), download(dv)), dtype)


# facl's keyword-only additions reach the backward too.
def test_dense_top_left_seqused(queue, rng):
    run_dense_bwd(queue, rng, "fp32", b=2, sq=4, sk=7, causal=True, mask_align="top_left",
                  seqused=[7, 3])


# deterministic is passed through to facl_attn_options (both modes against the reference;
# fp16, which the tensor-core kernels run where the device has them, in the default mode
# with atomic dq), and a value the library would refuse cannot be built from a bool.
@pytest.mark.parametrize("deterministic", [False, True])
def test_deterministic_modes(queue, rng, deterministic):
    run_dense_bwd(queue, rng, "fp16", b=1, sq=6, sk=9, hq=2, hkv=1, causal=True,
                  deterministic=deterministic)


def test_deterministic_reaches_the_options(queue):
    from facl import _options
    from facl._call import Call
    for value, field in ((False, 0), (True, 1), (0, 0), (1, 1)):
        assert _options.build(Call(queue), deterministic=value).contents.deterministic == field
