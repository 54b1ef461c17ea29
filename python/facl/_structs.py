"""ctypes mirrors of facl.h's structs, checked against the loaded library.

A mirror that disagrees with the library by one byte would pass wrong options without
any error, so at import every field of every mirror is compared with what the library
reports through facl_struct_layout; any difference refuses the import.
"""
import ctypes as c

MAX_DIMS = 5


def _library_defaults(mirror, c_name):
    """Fill a growable struct's mirror with the library's defaults (facl_struct_defaults):
    the initialiser macros cannot be expanded from Python, and a hand-made copy drifts."""
    from ._lib import lib, check  # at call time: _lib imports this module first
    check(lib.facl_struct_defaults(c_name.encode(), c.addressof(mirror), c.sizeof(mirror)))


class FaclTensor(c.Structure):
    _fields_ = [
        ("buffer", c.c_void_p),
        ("offset", c.c_uint64),   # in elements
        ("dtype", c.c_int32),
        ("ndim", c.c_int32),
        ("shape", c.c_int64 * MAX_DIMS),
        ("stride", c.c_int64 * MAX_DIMS),  # in elements
    ]


_T = c.POINTER(FaclTensor)


class AttnOptions(c.Structure):
    _fields_ = [
        ("struct_size", c.c_uint32),
        ("softmax_scale", c.c_float),
        ("causal", c.c_int32),
        ("mask_align", c.c_int32),
        ("window_left", c.c_int32),
        ("window_right", c.c_int32),
        ("softcap", c.c_float),
        ("dropout_p", c.c_float),
        ("alibi_slopes", _T),
        ("dropout_seed", c.c_uint64),
        ("dropout_offset", c.c_uint64),
        ("attn_probs", _T),
        ("trust_cu_seqlens", c.c_int32),
        ("deterministic", c.c_int32),
        ("seqused_k", _T),
        ("block_table", _T),
    ]

    def __init__(self):
        # FACL_ATTN_OPTIONS_INIT, from the library itself (struct_size is this mirror's
        # size, as an application compiled against this header would send it).
        super().__init__()
        _library_defaults(self, "facl_attn_options")


class KvcacheArgs(c.Structure):
    _fields_ = [
        ("struct_size", c.c_uint32),
        ("num_splits", c.c_int32),
        ("cache_seqlens", _T),
        ("cache_seqlens_value", c.c_int32),
        ("rotary_interleaved", c.c_int32),
        ("k_new", _T),
        ("v_new", _T),
        ("rotary_cos", _T),
        ("rotary_sin", _T),
        ("cache_batch_idx", _T),
        ("cache_leftpad", _T),
        ("block_table", _T),
        ("cu_seqlens_q", _T),
        ("max_seqlen_q", c.c_int64),
        ("cu_seqlens_k_new", _T),
        ("workspace", _T),
    ]

    def __init__(self):
        super().__init__()
        _library_defaults(self, "facl_kvcache_args")  # FACL_KVCACHE_ARGS_INIT


class DeviceInfo(c.Structure):
    _fields_ = [
        ("struct_size", c.c_uint32),
        ("reserved0", c.c_uint32),
        ("platform_name", c.c_char * 128),
        ("device_name", c.c_char * 128),
        ("driver_version", c.c_char * 64),
        ("device_type", c.c_uint64),
        ("compute_units", c.c_uint32),
        ("native_half", c.c_uint32),
        ("max_work_group_size", c.c_uint64),
        ("local_mem_reported", c.c_uint64),
        ("local_mem_usable", c.c_uint64),
        ("global_mem", c.c_uint64),
        ("max_alloc", c.c_uint64),
        ("nv_compute_major", c.c_int32),
        ("nv_compute_minor", c.c_int32),
        ("kernel_path", c.c_char * 32),
        ("kernel_path_reason", c.c_char * 256),
        ("cache_dir", c.c_char * 512),
        ("cache_note", c.c_char * 256),
    ]

    def __init__(self):
        super().__init__()
        _library_defaults(self, "facl_device_info")  # FACL_DEVICE_INFO_INIT


# The C name of each mirror. facl_tensor has no struct_size: its size must be equal.
# The growable ones may be smaller in the mirror than in a newer library (ABI.md).
MIRRORS = {
    "facl_tensor": (FaclTensor, True),
    "facl_attn_options": (AttnOptions, False),
    "facl_kvcache_args": (KvcacheArgs, False),
    "facl_device_info": (DeviceInfo, False),
}


def layout_mismatches(lib, mirrors=None):
    """Every way the mirrors differ from the library's layout (empty when they agree)."""
    problems = []
    off, size = c.c_uint64(), c.c_uint64()
    for cname, (mirror, exact) in (MIRRORS if mirrors is None else mirrors).items():
        st = lib.facl_struct_layout(cname.encode(), None, c.byref(off), c.byref(size))
        if st != 0:
            problems.append("%s: %s" % (cname, lib.facl_last_error().decode()))
            continue
        if (size.value != c.sizeof(mirror)) if exact else (size.value < c.sizeof(mirror)):
            problems.append("%s: %d bytes in the library, %d in the mirror"
                            % (cname, size.value, c.sizeof(mirror)))
        for fname, _ in mirror._fields_:
            desc = getattr(mirror, fname)
            st = lib.facl_struct_layout(cname.encode(), fname.encode(), c.byref(off),
                                        c.byref(size))
            if st != 0:
                problems.append("%s.%s: %s" % (cname, fname, lib.facl_last_error().decode()))
            elif (off.value, size.value) != (desc.offset, desc.size):
                problems.append("%s.%s: offset %d size %d in the library, %d and %d in the "
                                "mirror" % (cname, fname, off.value, size.value, desc.offset,
                                            desc.size))
    return problems


def verify(lib):
    problems = layout_mismatches(lib)
    if problems:
        raise ImportError("facl: this package's struct mirrors do not match the loaded "
                          "libfacl (%s):\n  %s" % (lib._name, "\n  ".join(problems)))
