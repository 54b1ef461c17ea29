"""The package computes exactly what the C calls compute: the same call made through
the raw ctypes binding gives the same bits, and views give the bits of contiguous
copies (so offsets and strides reach facl_tensor correctly)."""
import ctypes

import numpy as np
import pyopencl.array as cla

import facl
from facl import _context, _lib, _structs
from helpers import rand, upload, upload_int, upload_view

lib = _lib.lib
lib.facl_tensor_contiguous.restype = _structs.FaclTensor
lib.facl_tensor_contiguous.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                       ctypes.POINTER(ctypes.c_int64)]
DTYPE_CODE = {"fp32": 0, "fp16": 1, "bf16": 2, "int32": 3}


def raw_tensor(arr, code):
    """facl_tensor_contiguous, the C helper, over a whole contiguous array."""
    shape = (ctypes.c_int64 * arr.ndim)(*arr.shape)
    return lib.facl_tensor_contiguous(arr.base_data.int_ptr, code, arr.ndim, shape)


def same_bits(a, b):
    a, b = a.get(), b.get()
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def test_fwd_matches_raw_c_call(queue, rng):
    dtype = "fp16"
    q, k, v = (upload(queue, rand(rng, s, dtype), dtype)
               for s in ((2, 5, 4, 16), (2, 7, 2, 16), (2, 7, 2, 16)))
    slopes = upload(queue, rng.uniform(0.1, 1, 4), "fp32")
    out = facl.flash_attn_func(q, k, v, softmax_scale=0.4, causal=True, window_size=(3, -1),
                               alibi_slopes=slopes)

    raw_out = cla.empty(queue, q.shape, q.dtype)
    t = {n: raw_tensor(a, 1) for n, a in (("q", q), ("k", k), ("v", v), ("out", raw_out))}
    al = raw_tensor(slopes, 0)
    opts = _structs.AttnOptions()
    opts.softmax_scale, opts.causal, opts.window_left, opts.window_right = 0.4, 1, 3, -1
    opts.alibi_slopes = ctypes.pointer(al)
    queue.finish()
    st = lib.facl_fwd(_context.for_queue(queue).handle, queue.int_ptr, ctypes.byref(t["q"]),
                      ctypes.byref(t["k"]), ctypes.byref(t["v"]), ctypes.byref(t["out"]), None,
                      ctypes.byref(opts), 0, None, None)
    assert st == 0, lib.facl_last_error()
    queue.finish()
    assert same_bits(out, raw_out)


def test_varlen_matches_raw_c_call(queue, rng):
    dtype = "bf16"
    cu = [0, 3, 8]
    q = upload(queue, rand(rng, (8, 2, 16), dtype), dtype)
    cuq = upload_int(queue, cu)
    out, lse, _ = facl.flash_attn_varlen_func(q, q, q, cuq, cuq, 5, 5, softcap=2.0,
                                              return_attn_probs=True)
    raw_out = cla.empty(queue, q.shape, q.dtype)
    raw_lse = cla.empty(queue, (2, 8), np.float32)
    tq, to, tl, tc = (raw_tensor(q, 2), raw_tensor(raw_out, 2), raw_tensor(raw_lse, 0),
                      raw_tensor(cuq, 3))
    opts = _structs.AttnOptions()
    opts.softcap = 2.0
    queue.finish()
    st = lib.facl_varlen_fwd(_context.for_queue(queue).handle, queue.int_ptr, ctypes.byref(tq),
                             ctypes.byref(tq), ctypes.byref(tq), ctypes.byref(tc),
                             ctypes.byref(tc), 5, 5, ctypes.byref(to), ctypes.byref(tl),
                             ctypes.byref(opts), 0, None, None)
    assert st == 0, lib.facl_last_error()
    queue.finish()
    assert same_bits(out, raw_out) and same_bits(lse, raw_lse)


def test_views_give_the_bits_of_contiguous_arrays(queue, rng):
    dtype = "fp32"
    host = [rand(rng, s, dtype) for s in ((1, 4, 2, 16), (1, 6, 2, 16), (1, 6, 2, 16))]
    dense = facl.flash_attn_func(*(upload(queue, x, dtype) for x in host), causal=True)
    views = facl.flash_attn_func(*(upload_view(queue, x, dtype) for x in host), causal=True)
    assert same_bits(dense, views)
    # A transposed layout: k stored (batch, heads, seqlen, d) and viewed as (b, s, h, d).
    k_bhsd = upload(queue, np.ascontiguousarray(host[1].transpose(0, 2, 1, 3)), dtype)
    k_view = k_bhsd.transpose((0, 2, 1, 3))
    assert not k_view.flags.forc
    mixed = facl.flash_attn_func(upload(queue, host[0], dtype), k_view,
                                 upload(queue, host[2], dtype), causal=True)
    assert same_bits(dense, mixed)
