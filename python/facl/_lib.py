"""Finding and loading libfacl, and the ctypes prototypes of the calls the package uses.

Search order: $FACL_LIBRARY (a path), ctypes.util.find_library("facl"), then the
soname and the usual file names (the dynamic loader's own search: LD_LIBRARY_PATH,
ld.so.cache, rpath). Only soname 1 is accepted: another ABI would not match the
struct mirrors, which _structs checks against the library anyway.
"""
import ctypes
import ctypes.util
import os
import sys

from .errors import FaclError

_c = ctypes
# Handles (cl_mem, cl_context, facl_context *, ...) travel as void pointers.
_P = _c.c_void_p
_I64, _U64, _I32, _U32 = _c.c_int64, _c.c_uint64, _c.c_int32, _c.c_uint32
_STATUS = _c.c_int  # facl_status is returned by value: the platform's int (docs/ABI.md)


def _candidates():
    env = os.environ.get("FACL_LIBRARY")
    if env:
        # An explicit choice is the only candidate: falling back silently would test or
        # run another library than the one asked for.
        return [env]
    found = ctypes.util.find_library("facl")
    names = [found] if found else []
    if sys.platform == "darwin":
        names += ["libfacl.1.dylib", "libfacl.dylib"]
    elif os.name == "nt":
        names += ["facl-1.dll", "facl.dll", "libfacl.dll"]
    else:
        names += ["libfacl.so.1", "libfacl.so"]
    return names


def _load():
    errors = []
    for name in _candidates():
        try:
            return _c.CDLL(name)
        except OSError as exc:
            errors.append("%s: %s" % (name, exc))
    raise ImportError(
        "facl: cannot load libfacl (set FACL_LIBRARY to its path, or install it where "
        "the dynamic loader finds it). Tried:\n  " + "\n  ".join(errors))


def _declare(lib):
    from . import _structs as s

    T = _c.POINTER(s.FaclTensor)
    O = _c.POINTER(s.AttnOptions)
    K = _c.POINTER(s.KvcacheArgs)
    W = [_c.c_uint, _c.POINTER(_P), _c.POINTER(_P)]  # num_wait_events, wait_events, event
    protos = {
        "facl_version_string": (_c.c_char_p, []),
        "facl_status_string": (_c.c_char_p, [_STATUS]),
        "facl_last_error": (_c.c_char_p, []),
        "facl_dtype_name": (_c.c_char_p, [_c.c_int]),
        "facl_struct_layout": (_STATUS, [_c.c_char_p, _c.c_char_p, _c.POINTER(_U64),
                                         _c.POINTER(_U64)]),
        "facl_struct_field_name": (_c.c_char_p, [_c.c_char_p, _U32]),
        "facl_struct_defaults": (_STATUS, [_c.c_char_p, _P, _U64]),
        "facl_select_device": (_STATUS, [_c.c_char_p, _c.POINTER(_P)]),
        "facl_context_wrap": (_STATUS, [_P, _P, _c.POINTER(_P)]),
        "facl_context_free": (None, [_P]),
        "facl_context_device_info": (_STATUS, [_P, _c.POINTER(s.DeviceInfo)]),
        "facl_context_tuning": (_STATUS, [_P, _c.c_char_p, _U64, _c.POINTER(_U64)]),
        "facl_fwd": (_STATUS, [_P, _P, T, T, T, T, T, O] + W),
        "facl_fwd_qkvpacked": (_STATUS, [_P, _P, T, T, T, O] + W),
        "facl_fwd_kvpacked": (_STATUS, [_P, _P, T, T, T, T, O] + W),
        "facl_varlen_fwd": (_STATUS, [_P, _P, T, T, T, T, T, _I64, _I64, T, T, O] + W),
        "facl_varlen_fwd_qkvpacked": (_STATUS, [_P, _P, T, T, _I64, T, T, O] + W),
        "facl_varlen_fwd_kvpacked": (_STATUS, [_P, _P, T, T, T, T, _I64, _I64, T, T, O] + W),
        "facl_fwd_kvcache": (_STATUS, [_P, _P, T, T, T, K, T, T, O] + W),
        "facl_bwd": (_STATUS, [_P, _P, T, T, T, T, T, T, T, T, T, O, T] + W),
        "facl_varlen_bwd": (_STATUS, [_P, _P, T, T, T, T, T, T, _I64, _I64, T, T, T, T, T,
                                      O, T] + W),
    }
    for name, (res, args) in protos.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise ImportError(
                "facl: the loaded libfacl (%s) has no %s: it is older than this package "
                "needs" % (lib._name, name)) from None
        fn.restype = res
        fn.argtypes = args


lib = _load()
_declare(lib)
# Refuse to run on a library whose structs differ from the mirrors (_structs.verify).
from . import _structs  # noqa: E402
_structs.verify(lib)


def check(status):
    """Raise FaclError for a failed call, with the library's name and message for it."""
    if status != 0:
        # Read the message first: it is valid only until this thread's next facl call.
        message = (lib.facl_last_error() or b"").decode("utf-8", "replace")
        name = (lib.facl_status_string(status) or b"?").decode()
        raise FaclError(status, name, message)


def version():
    return lib.facl_version_string().decode()
