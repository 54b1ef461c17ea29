"""facl: FlashAttention on every OpenCL device, with flash_attn's Python interface.

The functions take pyopencl arrays (any strides numpy would make, last stride 1) and
return new pyopencl arrays on q's queue; facl.numpy_api has the same functions for numpy
arrays. bf16 data travels as uint16 arrays of bf16 bits (bf16_from_float,
bf16_to_float). Failures of the library raise FaclError (status, status_name, message).
libfacl is found through $FACL_LIBRARY, then the system's library path.
"""
from ._lib import version
from .errors import FaclError
from ._context import context_tuning, default_queue, device_info
from ._tensor import bf16_from_float, bf16_to_float
from .interface import (flash_attn_func, flash_attn_kvpacked_func, flash_attn_qkvpacked_func,
                        flash_attn_varlen_func, flash_attn_varlen_kvpacked_func,
                        flash_attn_varlen_qkvpacked_func)
from .kvcache import flash_attn_with_kvcache
from .backward import flash_attn_backward, flash_attn_varlen_backward

__version__ = "0.2.0"

__all__ = [
    "FaclError", "version", "default_queue", "device_info", "context_tuning", "bf16_from_float",
    "bf16_to_float",
    "flash_attn_func", "flash_attn_qkvpacked_func", "flash_attn_kvpacked_func",
    "flash_attn_varlen_func", "flash_attn_varlen_qkvpacked_func",
    "flash_attn_varlen_kvpacked_func", "flash_attn_with_kvcache", "flash_attn_backward",
    "flash_attn_varlen_backward",
]
