"""Allocation of the arrays the functions return.

poison_outputs (off by default) fills each new output with 0xFF bytes, NaN in every
float dtype, before the call: a test then sees any element the library left unwritten
instead of whatever the allocator's memory held (a previous result, say).
"""
import numpy as np
import pyopencl as cl
import pyopencl.array as cla

poison_outputs = False


def empty(queue, shape, dtype=np.float32):
    arr = cla.empty(queue, tuple(int(s) for s in shape), dtype)
    if poison_outputs and arr.nbytes:
        arr.add_event(cl.enqueue_fill_buffer(queue, arr.base_data, np.uint8(0xFF), arr.offset,
                                             arr.nbytes))
    return arr
