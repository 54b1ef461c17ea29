"""One facl context per (pyopencl context, device), made on first use and reused.

facl_context_wrap retains the cl_context and device, so a facl context stays valid as
long as it lives; compiled kernels live in it, so reusing it is what makes the second
call of a kernel variant cheap. Contexts are freed at interpreter exit.
"""
import atexit
import ctypes
import threading

import pyopencl as cl

from ._lib import check, lib
from ._structs import DeviceInfo

_lock = threading.Lock()
_contexts = {}  # (cl_context int_ptr, cl_device int_ptr) -> _Context
_default = None  # (pyopencl Context, CommandQueue) of facl's default device


class _Context:
    def __init__(self, cl_context, device):
        handle = ctypes.c_void_p()
        check(lib.facl_context_wrap(cl_context.int_ptr, device.int_ptr, ctypes.byref(handle)))
        self.handle = handle.value
        self.cl_context = cl_context  # the pyopencl object, kept for the dummy buffer
        self._dummy = None

    def dummy_buffer(self):
        """A tiny buffer standing in for the storage of empty arrays."""
        if self._dummy is None:
            self._dummy = cl.Buffer(self.cl_context, cl.mem_flags.READ_WRITE, 16)
        return self._dummy


def for_queue(queue):
    """The facl context serving `queue`'s cl_context and device."""
    key = (queue.context.int_ptr, queue.device.int_ptr)
    with _lock:
        ctx = _contexts.get(key)
        if ctx is None:
            ctx = _contexts[key] = _Context(queue.context, queue.device)
        return ctx


def default_queue():
    """A queue on the device facl itself would choose (FACL_DEVICE, else the first GPU,
    else the first CPU): what the numpy functions and the self-test use."""
    global _default
    with _lock:
        if _default is None:
            dev = ctypes.c_void_p()
            check(lib.facl_select_device(None, ctypes.byref(dev)))
            device = cl.Device.from_int_ptr(dev.value)
            context = cl.Context([device])
            _default = (context, cl.CommandQueue(context))
        return _default[1]


def device_info(queue):
    """facl_context_device_info of the context serving `queue`, as a dict."""
    info = DeviceInfo()
    check(lib.facl_context_device_info(for_queue(queue).handle, ctypes.byref(info)))
    out = {}
    for name, _ in DeviceInfo._fields_:
        value = getattr(info, name)
        out[name] = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    del out["struct_size"], out["reserved0"]
    return out


def context_tuning(queue):
    """facl_context_tuning of the context serving `queue`: the portable kernels' tuning
    entry (docs/TUNING.md) as a dict of its "key = value" lines (values as text)."""
    handle = for_queue(queue).handle
    length = ctypes.c_uint64(0)
    check(lib.facl_context_tuning(handle, None, 0, ctypes.byref(length)))
    text = ctypes.create_string_buffer(length.value + 1)
    check(lib.facl_context_tuning(handle, text, length.value + 1, ctypes.byref(length)))
    out = {}
    for line in text.value.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(" = ")
        if sep:
            out[key.strip()] = value
    return out


@atexit.register
def _free_all():
    with _lock:
        for ctx in _contexts.values():
            lib.facl_context_free(ctx.handle)
        _contexts.clear()
