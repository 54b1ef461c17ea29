"""Argument errors: the library's refusals as FaclError with its status and message
(dtypes by name), the package's own as TypeError/ValueError, and the struct-layout check
that guards the ctypes mirrors."""
import ctypes

import numpy as np
import pyopencl.array as cla
import pytest

import facl
from facl import _lib, _structs
from helpers import download, rand, upload, upload_int


def q_k_v(queue, rng, dtype="fp32", b=1, sq=3, sk=4, hq=2, hkv=2, d=8, dk=None):
    return (upload(queue, rand(rng, (b, sq, hq, d), dtype), dtype),
            upload(queue, rand(rng, (b, sk, hkv, dk or d), dtype), dtype),
            upload(queue, rand(rng, (b, sk, hkv, d), dtype), dtype))


def raises_facl(status_name, message_start, fn, *args, **kwargs):
    with pytest.raises(facl.FaclError) as info:
        fn(*args, **kwargs)
    err = info.value
    assert err.status_name == status_name, str(err)
    assert err.message.startswith(message_start), err.message
    # The library's own words and code, unchanged.
    assert err.message == _lib.lib.facl_last_error().decode()
    assert _lib.lib.facl_status_string(err.status).decode() == status_name
    assert err.message in str(err) and status_name in str(err)
    return err


def test_shape_error_carries_status_and_message(queue, rng):
    q, k, v = q_k_v(queue, rng, dk=4)
    err = raises_facl("FACL_ERROR_INVALID_SHAPE", "k: dimension 3 is 4, expected 8 (head_dim)",
                      facl.flash_attn_func, q, k, v)
    assert err.status == -2003


def test_dtype_error_names_dtypes(queue, rng):
    q, _, v = q_k_v(queue, rng)
    k = upload(queue, rand(rng, (1, 4, 2, 8), "fp16"), "fp16")
    raises_facl("FACL_ERROR_INVALID_DTYPE", "k: dtype fp16 differs from q's dtype fp32",
                facl.flash_attn_func, q, k, v)


def test_index_tensor_dtype_named(queue, rng):
    q, k, v = q_k_v(queue, rng)
    flat = [x.reshape(3 if i == 0 else 4, 2, 8) for i, x in enumerate((q, k, v))]
    cu = cla.to_device(queue, np.array([0, 3], dtype=np.float32))
    raises_facl("FACL_ERROR_INVALID_DTYPE", "cu_seqlens_q: dtype fp32 is not accepted here "
                "(int32)", facl.flash_attn_varlen_func, flat[0], flat[1], flat[2], cu,
                upload_int(queue, [0, 4]), 3, 4)


def test_window_with_causal_refused(queue, rng):
    raises_facl("FACL_ERROR_INVALID_VALUE", "opts->window_right", facl.flash_attn_func,
                *q_k_v(queue, rng), causal=True, window_size=(-1, 2))


def test_bad_cu_seqlens_refused(queue, rng):
    q = upload(queue, rand(rng, (5, 2, 8), "fp16"), "fp16")
    raises_facl("FACL_ERROR_INVALID_SEQLENS", "cu_seqlens_q", facl.flash_attn_varlen_func,
                q, q, q, upload_int(queue, [0, 4, 2]), upload_int(queue, [0, 2, 5]), 4, 4)


def test_refused_kvcache_leaves_the_cache_unchanged(queue, rng):
    """cache_seqlens past the capacity: refused before anything is written."""
    q = upload(queue, rand(rng, (1, 1, 2, 8), "fp16"), "fp16")
    cache = rand(rng, (1, 4, 2, 8), "fp16")
    kc, vc = upload(queue, cache, "fp16"), upload(queue, cache, "fp16")
    new = upload(queue, rand(rng, (1, 2, 2, 8), "fp16"), "fp16")
    raises_facl("FACL_ERROR_INVALID_SEQLENS", "cache->cache_seqlens: sequence 0",
                facl.flash_attn_with_kvcache,
                q, kc, vc, new, new, cache_seqlens=upload_int(queue, [3]))
    assert np.array_equal(download(kc), cache) and np.array_equal(download(vc), cache)


def test_not_an_array(queue, rng):
    q, k, v = q_k_v(queue, rng)
    with pytest.raises(TypeError, match="q: expected a pyopencl.array.Array"):
        facl.flash_attn_func(np.zeros((1, 3, 2, 8), np.float32), k, v)
    with pytest.raises(ValueError, match="q: expected 4 dimensions"):
        facl.flash_attn_func(q.reshape(3, 2, 8), k, v)


def test_unsupported_dtype(queue, rng):
    _, k, v = q_k_v(queue, rng)
    q = cla.zeros(queue, (1, 3, 2, 8), np.float64)
    with pytest.raises(TypeError, match="q: dtype float64 is not supported"):
        facl.flash_attn_func(q, k, v)


def test_views_facl_cannot_take(queue, rng):
    q, k, v = q_k_v(queue, rng)
    wide = cla.zeros(queue, (1, 3, 2, 16), np.float32)
    with pytest.raises(ValueError, match="q: the last dimension must be contiguous"):
        facl.flash_attn_func(wide[..., ::2], k, v)
    reversed_rows = cla.Array(queue, (1, 3, 2, 8), np.float32, strides=(48 * 4, -16 * 4, 32, 4),
                              data=wide.base_data, offset=32 * 4 * 2)
    with pytest.raises(ValueError, match="q: negative stride in dimension 1"):
        facl.flash_attn_func(reversed_rows, k, v)
    odd = cla.Array(queue, (1, 3, 2, 8), np.float32, data=wide.base_data, offset=2)
    with pytest.raises(ValueError, match="q: byte offset 2 is not a multiple"):
        facl.flash_attn_func(odd, k, v)


def test_package_refusals(queue, rng):
    q, k, v = q_k_v(queue, rng)
    with pytest.raises(ValueError, match="softmax_scale: 0 is not supported"):
        facl.flash_attn_func(q, k, v, softmax_scale=0.0)
    with pytest.raises(ValueError, match="window_size"):
        facl.flash_attn_func(q, k, v, window_size=3)
    out, lse, _ = facl.flash_attn_func(q, k, v, return_attn_probs=True)
    with pytest.raises(ValueError, match="dropout_seed"):
        facl.flash_attn_backward(q, q, k, v, out, lse, dropout_p=0.1)


def test_mirrors_match_the_library():
    assert _structs.layout_mismatches(_lib.lib) == []


def test_layout_check_catches_a_wrong_mirror():
    """A mirror with two fields swapped, or with a field the library lacks, is reported."""
    class Swapped(ctypes.Structure):
        _fields_ = [("buffer", ctypes.c_void_p), ("offset", ctypes.c_uint64),
                    ("ndim", ctypes.c_int32), ("dtype", ctypes.c_int32),
                    ("shape", ctypes.c_int64 * 5), ("stride", ctypes.c_int64 * 5)]

    class Extra(ctypes.Structure):
        _fields_ = _structs.AttnOptions._fields_ + [("future_field", ctypes.c_uint64)]

    problems = _structs.layout_mismatches(_lib.lib, {"facl_tensor": (Swapped, True),
                                                     "facl_attn_options": (Extra, False)})
    text = "\n".join(problems)
    assert "facl_tensor.dtype: offset 16 size 4 in the library, 20 and 4" in text
    assert "facl_tensor.ndim: offset 20" in text
    assert "facl_attn_options.future_field" in text and "no field" in text
    assert "facl_attn_options: 88 bytes in the library, 96 in the mirror" in text


# facl_context_tuning through the package: the keys docs/TUNING.md names, values that
# parse, and the level the library reports.
def test_context_tuning(queue):
    t = facl.context_tuning(queue)
    for key in ("level", "entry", "vendor", "architecture", "device", "override",
                "d64.block_n", "d128.lanes", "d256.cpu_rows"):
        assert key in t, key
    assert t["level"] in ("default", "vendor", "architecture", "device")
    assert int(t["d64.block_n"]) >= 1 and int(t["d256.cpu_rows"]) >= 4
    assert t["device"] == facl.device_info(queue)["device_name"].strip()
