"""pyopencl arrays as facl_tensor views: dtypes, offsets and strides in elements.

numpy has no bfloat16. facl takes bf16 data as arrays of dtype uint16 holding the bf16
bit patterns (facl has no uint16 dtype, so this is unambiguous), or of any dtype named
"bfloat16" (ml_dtypes'). facl.bf16_from_float / facl.bf16_to_float convert.
"""
import numpy as np
import pyopencl.array as cla

from ._structs import MAX_DIMS, FaclTensor

F32, F16, BF16, I32 = 0, 1, 2, 3


def facl_dtype(name, dtype):
    """The facl dtype code of a numpy dtype; TypeError naming the argument otherwise."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return F32
    if dtype == np.float16:
        return F16
    if dtype == np.uint16 or dtype.name == "bfloat16":
        return BF16
    if dtype == np.int32:
        return I32
    raise TypeError("%s: dtype %s is not supported (float32, float16, bfloat16 as uint16 "
                    "bits, or int32 for index tensors)" % (name, dtype))


def to_tensor(name, arr, dummy_buffer=None):
    """A FaclTensor viewing `arr` (a pyopencl Array), without copying.

    Any strides numpy would make work (slices, transposes, views of packed tensors),
    as long as they are non-negative multiples of the element size and the last one is
    1 element; the byte offset must be a multiple of the element size too.
    """
    if not isinstance(arr, cla.Array):
        raise TypeError("%s: expected a pyopencl.array.Array, got %s (the facl.numpy_api "
                        "functions take numpy arrays)" % (name, type(arr).__name__))
    code = facl_dtype(name, arr.dtype)
    item = arr.dtype.itemsize
    if arr.ndim < 1 or arr.ndim > MAX_DIMS:
        raise ValueError("%s: %d dimensions (facl tensors have 1 to %d)"
                         % (name, arr.ndim, MAX_DIMS))
    if arr.offset % item:
        raise ValueError("%s: byte offset %d is not a multiple of the %d-byte element "
                         "(facl views count offsets in elements)" % (name, arr.offset, item))
    t = FaclTensor()
    t.dtype = code
    t.ndim = arr.ndim
    t.offset = arr.offset // item
    strides = arr.strides
    if arr.size == 0:
        # An empty view touches nothing: pyopencl may give it any strides (zeros, even);
        # dense ones say the same and pass facl's checks.
        strides = [int(np.prod(arr.shape[d + 1:])) * item for d in range(arr.ndim)]
    for d, (size, stride) in enumerate(zip(arr.shape, strides)):
        t.shape[d] = size
        if size <= 1:
            # A dimension of one element never moves: any stride numpy chose is as
            # good as the one facl requires (1 for the last, >= 0 for the others).
            t.stride[d] = 1 if d == arr.ndim - 1 else 0
            continue
        if stride < 0:
            raise ValueError("%s: negative stride in dimension %d (facl views need "
                             "non-negative strides; copy the array first)" % (name, d))
        if stride % item:
            raise ValueError("%s: stride %d bytes in dimension %d is not a multiple of the "
                             "%d-byte element" % (name, stride, d, item))
        t.stride[d] = stride // item
    if t.stride[arr.ndim - 1] != 1:
        raise ValueError("%s: the last dimension must be contiguous (stride 1 element), got "
                         "stride %d elements" % (name, t.stride[arr.ndim - 1]))
    buf = arr.base_data
    if buf is None:
        # pyopencl allocates nothing for an empty array; facl wants a buffer even for an
        # empty view (which it never reads).
        if arr.size != 0 or dummy_buffer is None:
            raise ValueError("%s: the array has no buffer" % name)
        buf = dummy_buffer
        t.offset = 0
    t.buffer = buf.int_ptr
    return t


def bf16_from_float(x):
    """float array -> uint16 bf16 bit patterns, rounded to nearest even (as facl does)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    out = rounded.astype(np.uint16)
    nan = np.isnan(x)
    out[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)  # keep NaN a (quiet) NaN
    return out


def bf16_to_float(bits):
    """uint16 bf16 bit patterns -> float32 (exact)."""
    b = np.ascontiguousarray(bits)
    if b.dtype.name == "bfloat16":
        return b.astype(np.float32)
    return (b.astype(np.uint32) << 16).view(np.float32)
