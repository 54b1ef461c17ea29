"""Running one library call on a pyopencl queue: wait lists in, an event out.

facl calls only enqueue. The call waits for the events pyopencl keeps on the arrays it
reads and writes (so an out-of-order queue stays correct), and its own event is added to
the arrays it writes, so that pyopencl's later operations on them wait for it.
"""
import ctypes

import pyopencl as cl

from ._context import for_queue
from ._lib import check
from ._tensor import to_tensor


class Call:
    """Collects the tensors of one call, then runs it."""

    def __init__(self, queue):
        if queue is None:
            raise ValueError("the arrays have no queue (pyopencl arrays need one: "
                             "pass queue= when making them)")
        self.queue = queue
        self.ctx = for_queue(queue)
        self._arrays = []
        self._outputs = []
        self._keep = []  # ctypes objects that must outlive the call

    def tensor(self, name, arr, output=False):
        """byref(FaclTensor) of arr, or None for None."""
        if arr is None:
            return None
        t = to_tensor(name, arr, self.ctx.dummy_buffer())
        self._keep.append(t)
        self._arrays.append(arr)
        if output:
            self._outputs.append(arr)
        return ctypes.pointer(t)

    def keep(self, obj):
        self._keep.append(obj)
        return obj

    def run(self, fn, *args):
        waits = [e for a in self._arrays for e in a.events]
        handles = (ctypes.c_void_p * len(waits))(*[e.int_ptr for e in waits]) if waits else None
        event = ctypes.c_void_p()
        check(fn(self.ctx.handle, self.queue.int_ptr, *args, len(waits), handles,
                 ctypes.byref(event)))
        evt = cl.Event.from_int_ptr(event.value, retain=False)
        for a in self._outputs:
            a.add_event(evt)
        return evt
