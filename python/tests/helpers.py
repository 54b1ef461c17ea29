"""Inputs, uploads, downloads and the correctness check shared by the tests.

Values live on the host as float64 arrays already rounded to the storage dtype, so the
reference (facl.reference, float64) and the device see the same numbers. bf16 travels
as uint16 bit patterns.
"""
import numpy as np
import pyopencl.array as cla

import facl
from facl import reference

NP_DTYPE = {"fp32": np.float32, "fp16": np.float16, "bf16": np.uint16}
DTYPES = ["fp32", "fp16", "bf16"]


def rand(rng, shape, dtype, scale=1.0):
    """Fresh random normals rounded to dtype (float64 holding the rounded values)."""
    x = rng.standard_normal(shape) * scale
    return reference.round_to(x, dtype).astype(np.float64)


def to_storage(x, dtype):
    """Host float values -> a numpy array of the storage dtype (bf16: uint16 bits)."""
    if dtype == "bf16":
        return facl.bf16_from_float(np.asarray(x, dtype=np.float32))
    return np.asarray(x, dtype=NP_DTYPE[dtype])


def upload(queue, x, dtype):
    return cla.to_device(queue, np.ascontiguousarray(to_storage(x, dtype)))


def upload_int(queue, x):
    """An int32 index tensor (cu_seqlens, block tables, cache lengths)."""
    return cla.to_device(queue, np.ascontiguousarray(x, dtype=np.int32))


def upload_view(queue, x, dtype, pad=3):
    """x as a non-contiguous device view: each row of its last dimension sits in a wider
    row (pad extra NaN elements) of a larger buffer, which starts with `pad` NaN elements.
    Exercises offsets and strides in elements."""
    x = np.asarray(x)
    n = x.shape[-1]
    wide = x.shape[:-1] + (n + pad,)
    full = to_storage(np.full(wide, np.nan), dtype)
    full[..., :n] = to_storage(x, dtype)
    lead = to_storage(np.full(pad, np.nan), dtype)
    dev = cla.to_device(queue, np.concatenate([lead, full.reshape(-1)]))
    view = dev[pad:].reshape(wide)[..., :n]
    assert view.offset == pad * full.itemsize and not view.flags.forc
    return view


def download(arr, dtype=None):
    """A device array (contiguous) as float64; bf16 (uint16) converted."""
    host = arr.get()
    if host.dtype == np.uint16:
        host = facl.bf16_to_float(host).reshape(host.shape)
    return host.astype(np.float64)


def check(what, got, ref, low, dtype):
    why = reference.rule(got, ref, low, dtype)
    assert why is None, "%s (%s): %s" % (what, dtype, why)


def dense_cu(batch, seqlen):
    return [b * seqlen for b in range(batch + 1)]


def to_varlen(x):
    """(batch, seqlen, heads, d) -> (batch * seqlen, heads, d)."""
    return x.reshape((-1,) + x.shape[2:])


def lse_dense(lse_varlen, batch, seqlen):
    """(heads, batch * seqlen) -> (batch, heads, seqlen)."""
    h = lse_varlen.shape[0]
    return lse_varlen.reshape(h, batch, seqlen).transpose(1, 0, 2)


def reference_pair(prob, q, k, v, dtype, **kw):
    """(ref, low) results of facl.reference.attention."""
    return (reference.attention(prob, q, k, v, **kw),
            reference.attention(prob, q, k, v, precision=dtype, **kw))
