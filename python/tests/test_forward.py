"""flash_attn_func against the float64 reference: dtypes, masks, softcap, ALiBi, GQA,
strided views, lse and attn_probs."""
import numpy as np
import pytest

import facl
from facl import reference
from helpers import (check, dense_cu, download, lse_dense, rand, reference_pair, to_varlen,
                     upload, upload_int, upload_view)

# Small shapes: every case compiles at most a few kernel variants on PoCL.
CASES = {
    "plain": dict(b=2, sq=5, sk=7, hq=2, hkv=2, d=16),
    # More rows than keys: bottom-right causal leaves the first rows empty (lse +inf).
    "causal_gqa_empty_rows": dict(b=1, sq=7, sk=5, hq=4, hkv=2, d=16, causal=True),
    "window_mqa": dict(b=2, sq=6, sk=9, hq=3, hkv=1, d=16, window_size=(2, 1)),
    "softcap_scale": dict(b=1, sq=4, sk=6, hq=2, hkv=2, d=16, softcap=1.5, softmax_scale=0.7),
    "alibi_heads": dict(b=2, sq=5, sk=5, hq=2, hkv=1, d=16, alibi="heads"),
    "alibi_batch_causal_window": dict(b=2, sq=5, sk=8, hq=2, hkv=2, d=16, alibi="batch",
                                      causal=True, window_size=(3, -1)),
}


def run_dense(queue, rng, dtype, b, sq, sk, hq, hkv, d, views=False, alibi=None, seqused=None,
              **opts):
    q = rand(rng, (b, sq, hq, d), dtype)
    k = rand(rng, (b, sk, hkv, d), dtype)
    v = rand(rng, (b, sk, hkv, d), dtype)
    put = upload_view if views else upload
    if seqused is not None:
        opts["seqused_k"] = upload_int(queue, np.asarray(seqused, dtype=np.int32))
    slopes = None
    if alibi:
        slopes = rng.uniform(0.1, 1.0, (hq,) if alibi == "heads" else (b, hq)).astype(np.float32)
        opts["alibi_slopes"] = upload(queue, slopes, "fp32")
    out, lse, probs = facl.flash_attn_func(put(queue, q, dtype), put(queue, k, dtype),
                                           put(queue, v, dtype), return_attn_probs=True, **opts)
    prob = reference.Problem(dense_cu(b, sq), dense_cu(b, sk), key_len=sk,
                             scale=opts.get("softmax_scale"), causal=opts.get("causal", False),
                             window=opts.get("window_size", (-1, -1)),
                             softcap=opts.get("softcap", 0.0), alibi=slopes,
                             dropout_p=opts.get("dropout_p", 0.0),
                             seed=opts.get("dropout_seed", 0), offset=opts.get("dropout_offset", 0),
                             top_left=opts.get("mask_align") == "top_left", seqused_k=seqused)
    (ro, rl, rp), (lo, ll, lp) = reference_pair(prob, to_varlen(q), to_varlen(k), to_varlen(v),
                                                dtype, max_seqlen_q=sq, max_seqlen_k=sk)
    check("out", to_varlen(download(out)), ro, lo, dtype)
    check("lse", download(lse), lse_dense(rl, b, sq), lse_dense(ll, b, sq), dtype)
    check("attn_probs", download(probs), rp, lp, dtype)
    return out


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("case", ["plain", "causal_gqa_empty_rows"])
def test_dtypes(queue, rng, dtype, case):
    run_dense(queue, rng, dtype, **CASES[case])


@pytest.mark.parametrize("case", ["window_mqa", "softcap_scale", "alibi_heads",
                                  "alibi_batch_causal_window"])
def test_features_fp16(queue, rng, case):
    run_dense(queue, rng, "fp16", **CASES[case])


def test_dropout_seed_offset(queue, rng):
    """dropout_seed and dropout_offset reach the kernel: out and the attn_probs signs
    (negative where dropped) match the reference's Philox mask for them."""
    run_dense(queue, rng, "fp32", b=2, sq=5, sk=9, hq=2, hkv=1, d=16, dropout_p=0.3,
              dropout_seed=2 ** 40 + 99, dropout_offset=11, causal=True)


def test_features_together_bf16(queue, rng):
    run_dense(queue, rng, "bf16", b=2, sq=6, sk=6, hq=4, hkv=2, d=16, alibi="heads",
              softcap=2.0, causal=True, window_size=(2, 0))


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_strided_views(queue, rng, dtype):
    """q, k, v as views with an element offset and padded rows."""
    run_dense(queue, rng, dtype, views=True, **CASES["causal_gqa_empty_rows"])


def test_empty_arrays(queue, rng):
    """No keys: every row is empty (out 0, lse +inf). No batch: empty results. pyopencl
    gives empty arrays no buffer; they still pass."""
    run_dense(queue, rng, "fp32", b=1, sq=3, sk=0, hq=2, hkv=2, d=16)
    q = upload(queue, np.zeros((0, 3, 2, 16)), "fp32")
    out, lse, probs = facl.flash_attn_func(q, q, q, return_attn_probs=True)
    assert out.shape == (0, 3, 2, 16) and lse.shape == (0, 2, 3) and probs.shape == (0, 2, 3, 3)


def test_return_values_follow_flash_attn(queue, rng):
    """out alone by default; (out, lse, probs) with return_attn_probs; new arrays on q's
    queue with q's dtype."""
    q = upload(queue, rand(rng, (1, 3, 2, 8), "fp16"), "fp16")
    out = facl.flash_attn_func(q, q, q)
    assert out.shape == q.shape and out.dtype == q.dtype and out.queue is queue
    res = facl.flash_attn_func(q, q, q, return_attn_probs=True)
    assert isinstance(res, tuple) and len(res) == 3
    assert res[1].shape == (1, 2, 3) and res[1].dtype == np.float32
    assert res[2].shape == (1, 2, 3, 3) and res[2].dtype == np.float32


# facl's keyword-only additions: the causal mask aligned top-left (torch SDPA's), and
# FlashAttention 3's seqused_k (each sequence uses only its first keys).
def test_mask_align_top_left(queue, rng):
    run_dense(queue, rng, "fp16", b=2, sq=5, sk=8, hq=2, hkv=1, d=16, causal=True,
              mask_align="top_left")


def test_seqused_k(queue, rng):
    run_dense(queue, rng, "fp16", b=2, sq=4, sk=9, hq=2, hkv=2, d=16, causal=True,
              seqused=[9, 4])


def test_mask_align_refused(queue, rng):
    q = upload(queue, rand(rng, (1, 2, 1, 16), "fp16"), "fp16")
    with pytest.raises(ValueError, match="mask_align"):
        facl.flash_attn_func(q, q, q, mask_align="top-left")
