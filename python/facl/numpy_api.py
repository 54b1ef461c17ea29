"""The same functions over numpy arrays: upload, run on facl's default device, download.

    from facl import numpy_api as fa
    out = fa.flash_attn_func(q, k, v, causal=True)          # numpy in, numpy out

Every argument that is a numpy array is uploaded (as a contiguous copy) to a queue on the
device facl chooses (FACL_DEVICE, else the first GPU, else the first CPU; the queue is
made once, see facl.default_queue()), every array returned is downloaded, and arguments
the call writes in place (k_cache and v_cache of flash_attn_with_kvcache; dq, dk, dv of
the backward when given) are copied back into the numpy arrays passed. Convenient for
tests and small jobs; keep data on the device with the pyopencl functions for speed.
"""
import functools
import inspect

import numpy as np
import pyopencl.array as cla

from . import backward as _backward
from . import interface as _interface
from . import kvcache as _kvcache
from ._context import default_queue

# Arguments each call writes in place.
_IN_PLACE = {
    "flash_attn_with_kvcache": ("k_cache", "v_cache"),
    "flash_attn_backward": ("dq", "dk", "dv"),
    "flash_attn_varlen_backward": ("dq", "dk", "dv"),
}


def _download(x):
    if isinstance(x, cla.Array):
        return x.get()
    if isinstance(x, tuple):
        return tuple(_download(e) for e in x)
    return x


def _numpy_version(fn):
    sig = inspect.signature(fn)
    in_place = _IN_PLACE.get(fn.__name__, ())

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        queue = default_queue()
        originals, uploaded = {}, {}
        for name, value in bound.arguments.items():
            if isinstance(value, np.ndarray):
                originals[name] = value
                uploaded[name] = cla.to_device(queue, np.ascontiguousarray(value))
                bound.arguments[name] = uploaded[name]
        result = fn(*bound.args, **bound.kwargs)
        for name in in_place:
            if name in uploaded:
                # get() waits for the array's events, the call's among them.
                np.copyto(originals[name], uploaded[name].get())
        return _download(result)

    wrapper.__doc__ = "numpy version of facl.%s.\n\n%s" % (fn.__name__, fn.__doc__ or "")
    return wrapper


flash_attn_func = _numpy_version(_interface.flash_attn_func)
flash_attn_qkvpacked_func = _numpy_version(_interface.flash_attn_qkvpacked_func)
flash_attn_kvpacked_func = _numpy_version(_interface.flash_attn_kvpacked_func)
flash_attn_varlen_func = _numpy_version(_interface.flash_attn_varlen_func)
flash_attn_varlen_qkvpacked_func = _numpy_version(_interface.flash_attn_varlen_qkvpacked_func)
flash_attn_varlen_kvpacked_func = _numpy_version(_interface.flash_attn_varlen_kvpacked_func)
flash_attn_with_kvcache = _numpy_version(_kvcache.flash_attn_with_kvcache)
flash_attn_backward = _numpy_version(_backward.flash_attn_backward)
flash_attn_varlen_backward = _numpy_version(_backward.flash_attn_varlen_backward)
