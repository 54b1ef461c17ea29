"""facl.numpy_api: numpy in, numpy out, the same bits as the pyopencl functions; the
KV cache and given gradients written back into the caller's numpy arrays."""
import numpy as np

import facl
from facl import numpy_api as fa
from helpers import rand, to_storage, upload, upload_int


def test_forward_numpy_round_trip(queue, rng):
    q, k, v = (to_storage(rand(rng, s, "fp16"), "fp16")
               for s in ((2, 3, 2, 16), (2, 5, 2, 16), (2, 5, 2, 16)))
    out, lse, probs = fa.flash_attn_func(q, k, v, causal=True, return_attn_probs=True)
    assert isinstance(out, np.ndarray) and out.dtype == np.float16 and out.shape == q.shape
    assert lse.shape == (2, 2, 3) and probs.shape == (2, 2, 3, 5)
    dev = facl.flash_attn_func(*(upload(queue, x, "fp16") for x in (q, k, v)), causal=True)
    assert out.tobytes() == dev.get().tobytes()


def test_kvcache_writes_the_numpy_cache_back(queue, rng):
    """The variant of test_kvcache's default case (paged, rotary, leftpad), so nothing
    new compiles."""
    dtype, b, hkv, d, page = "fp16", 2, 2, 16, 4
    q = to_storage(rand(rng, (b, 2, 4, d), dtype), dtype)
    kc = to_storage(rand(rng, (7, page, hkv, d), dtype), dtype)
    vc = to_storage(rand(rng, (7, page, hkv, d), dtype), dtype)
    new = to_storage(rand(rng, (b, 2, hkv, d), dtype), dtype)
    cos = to_storage(rng.uniform(-1, 1, (12, 4)), dtype)
    sin = to_storage(rng.uniform(-1, 1, (12, 4)), dtype)
    table = np.array([[3, 0, 5], [1, 6, 2]], dtype=np.int32)
    seqlens, leftpad = np.array([5, 2], dtype=np.int32), np.array([2, 0], dtype=np.int32)
    kw = dict(causal=True, num_splits=1, rotary_interleaved=True)
    kc_np, vc_np = kc.copy(), vc.copy()
    out = fa.flash_attn_with_kvcache(q, kc_np, vc_np, new, new, cos, sin, seqlens,
                                     cache_leftpad=leftpad, block_table=table, **kw)
    KC, VC = upload(queue, kc, dtype), upload(queue, vc, dtype)
    dev = facl.flash_attn_with_kvcache(
        *(upload(queue, x, dtype) for x in (q,)), KC, VC, upload(queue, new, dtype),
        upload(queue, new, dtype), upload(queue, cos, dtype), upload(queue, sin, dtype),
        upload_int(queue, seqlens), cache_leftpad=upload_int(queue, leftpad),
        block_table=upload_int(queue, table), **kw)
    assert out.tobytes() == dev.get().tobytes()
    assert not np.array_equal(kc_np, kc)  # the append reached the caller's array
    assert kc_np.tobytes() == KC.get().tobytes() and vc_np.tobytes() == VC.get().tobytes()


def test_backward_fills_given_numpy_gradients(queue, rng):
    x = [to_storage(rand(rng, (1, 4, 2, 16), "fp32"), "fp32") for _ in range(4)]
    out, lse, _ = fa.flash_attn_func(x[0], x[1], x[2], return_attn_probs=True)
    dq, dk, dv = (np.full_like(x[0], np.nan) for _ in range(3))
    res = fa.flash_attn_backward(x[3], x[0], x[1], x[2], out, lse, dq, dk, dv)
    assert all(np.array_equal(a, b) for a, b in zip(res, (dq, dk, dv)))
    assert not np.isnan(dq).any() and not np.isnan(dk).any() and not np.isnan(dv).any()
