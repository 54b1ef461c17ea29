"""python -m facl.selftest: each function once, small, on the default device, checked
against the float64 reference with SPEC.md's rule. Prints PASS/FAIL per check; exit
status 1 if any check fails, 2 if the library or the device cannot be used.

The device is facl's choice (FACL_DEVICE, else the first GPU, else the first CPU). The
first run compiles a dozen kernel variants (a minute or more on a CPU through PoCL);
later runs load them from the disk cache.
"""
import sys
import time

import numpy as np

from . import numpy_api as fa
from . import reference as ref
from ._tensor import bf16_from_float, bf16_to_float

NP = {"fp32": np.float32, "fp16": np.float16}
# Head dim of every check: small, and the one of the package's tests, so that a test run
# compiles no kernel variant twice.
D = 16


def _inputs(rng, shape, dtype):
    """(device-storage numpy array, float64 values it holds)."""
    x = ref.round_to(rng.standard_normal(shape), dtype).astype(np.float64)
    stored = bf16_from_float(x) if dtype == "bf16" else x.astype(NP[dtype])
    return stored, x


def _values(stored):
    if stored.dtype == np.uint16:
        return bf16_to_float(stored).reshape(stored.shape).astype(np.float64)
    return stored.astype(np.float64)


def _judge(prob, q, k, v, out, dtype):
    r = ref.attention(prob, q, k, v)[0]
    low = ref.attention(prob, q, k, v, precision=dtype)[0]
    return ref.rule(_values(out).reshape(r.shape), r, low, dtype)


def _cu(b, s):
    return [i * s for i in range(b + 1)]


def check_func(rng, dtype):
    b, sq, sk, hq, hkv, d = 2, 5, 7, 4, 2, D
    (q, qv), (k, kv_), (v, vv) = (_inputs(rng, s, dtype) for s in
                                  ((b, sq, hq, d), (b, sk, hkv, d), (b, sk, hkv, d)))
    out = fa.flash_attn_func(q, k, v, causal=True)
    prob = ref.Problem(_cu(b, sq), _cu(b, sk), sk, causal=True)
    flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
    return _judge(prob, flat(qv), flat(kv_), flat(vv), out, dtype)


def check_qkvpacked(rng, dtype):
    qkv, x = _inputs(rng, (1, 6, 3, 2, D), dtype)
    out = fa.flash_attn_qkvpacked_func(qkv)
    prob = ref.Problem(_cu(1, 6), _cu(1, 6), 6)
    return _judge(prob, x[0, :, 0], x[0, :, 1], x[0, :, 2], out, dtype)


def check_kvpacked(rng, dtype):
    (q, qv), (kv, kvv) = _inputs(rng, (1, 3, 2, D), dtype), _inputs(rng, (1, 8, 2, 1, D), dtype)
    out = fa.flash_attn_kvpacked_func(q, kv, window_size=(3, 0))
    prob = ref.Problem(_cu(1, 3), _cu(1, 8), 8, window=(3, 0))
    return _judge(prob, qv[0], kvv[0, :, 0], kvv[0, :, 1], out, dtype)


CU_Q, CU_K = np.array([0, 2, 7], dtype=np.int32), np.array([0, 4, 10], dtype=np.int32)


def check_varlen(rng, dtype):
    (q, qv), (k, kv_), (v, vv) = (_inputs(rng, (n, 2, D), dtype) for n in (7, 10, 10))
    out = fa.flash_attn_varlen_func(q, k, v, CU_Q, CU_K, 5, 6, causal=True)
    return _judge(ref.Problem(CU_Q, CU_K, 6, causal=True), qv, kv_, vv, out, dtype)


def check_varlen_qkvpacked(rng, dtype):
    qkv, x = _inputs(rng, (10, 3, 2, D), dtype)
    out = fa.flash_attn_varlen_qkvpacked_func(qkv, CU_K, 6)
    return _judge(ref.Problem(CU_K, CU_K, 6), x[:, 0], x[:, 1], x[:, 2], out, dtype)


def check_varlen_kvpacked(rng, dtype):
    (q, qv), (kv, kvv) = _inputs(rng, (7, 2, D), dtype), _inputs(rng, (10, 2, 2, D), dtype)
    out = fa.flash_attn_varlen_kvpacked_func(q, kv, CU_Q, CU_K, 5, 6)
    return _judge(ref.Problem(CU_Q, CU_K, 6), qv, kvv[:, 0], kvv[:, 1], out, dtype)


def check_kvcache(rng, dtype):
    """A paged cache (pages of 4 rows): two new keys per sequence appended after rotary
    at cache_seqlens, then attention over the keys from cache_leftpad on."""
    b, hq, h, d, page, n, sq = 2, 4, 2, D, 4, 2, 2
    seqlens, leftpad = np.array([3, 5], np.int32), np.array([1, 0], np.int32)
    table = np.array([[3, 0], [4, 1]], np.int32)
    (q, qv), (kn, knv), (vn, vnv) = (_inputs(rng, (b, sq, hq, d) if i == 0 else (b, n, h, d),
                                             dtype) for i in range(3))
    (kc, kcv), (vc, vcv) = (_inputs(rng, (5, page, h, d), dtype) for _ in range(2))
    (cos, cosv), (sin, sinv) = _inputs(rng, (8, 4), dtype), _inputs(rng, (8, 4), dtype)
    out = fa.flash_attn_with_kvcache(q, kc, vc, kn, vn, cos, sin, seqlens, cache_leftpad=leftpad,
                                     block_table=table, causal=True, num_splits=1)
    loc = lambda i, p: (table[i, p // page], p % page)  # noqa: E731
    keys, vals, cu, qr = [], [], [0], qv.copy()
    for i, s in enumerate(seqlens):
        pos = np.arange(s, s + n)
        rotated = ref.rotary(knv[i], cosv, sinv, pos, True, dtype)
        for t in range(n):
            kcv[loc(i, s + t)], vcv[loc(i, s + t)] = rotated[t], vnv[i, t]
        qr[i] = ref.rotary(qv[i], cosv, sinv, s + np.arange(sq), True, dtype)
        keys += [kcv[loc(i, p)] for p in range(leftpad[i], s + n)]
        vals += [vcv[loc(i, p)] for p in range(leftpad[i], s + n)]
        cu.append(len(keys))
    prob = ref.Problem(_cu(b, sq), cu, 2 * page, causal=True)
    return _judge(prob, qr.reshape(-1, hq, d), np.array(keys), np.array(vals), out, dtype)


def check_backward(rng, dtype):
    b, s, h, d = 1, 6, 2, D
    (q, qv), (k, kv_), (v, vv), (do, dov) = (_inputs(rng, (b, s, h, d), dtype) for _ in range(4))
    out, lse, _ = fa.flash_attn_func(q, k, v, causal=True, return_attn_probs=True)
    grads = fa.flash_attn_backward(do, q, k, v, out, lse, causal=True)
    prob = ref.Problem(_cu(b, s), _cu(b, s), s, causal=True)
    args = [x[0] for x in (qv, kv_, vv, dov)]
    r = ref.attention_backward(prob, *args)
    low = ref.attention_backward(prob, *args, out=_values(out)[0],
                                 lse=lse[0], precision=dtype)
    for name, g, rr, lo in zip(("dq", "dk", "dv"), grads, r, low):
        why = ref.rule(_values(g)[0], rr, lo, dtype)
        if why:
            return "%s: %s" % (name, why)
    return None


CHECKS = [
    ("flash_attn_func", check_func, ("fp32", "fp16", "bf16")),
    ("flash_attn_qkvpacked_func", check_qkvpacked, ("fp16",)),
    ("flash_attn_kvpacked_func", check_kvpacked, ("fp16",)),
    ("flash_attn_varlen_func", check_varlen, ("fp16",)),
    ("flash_attn_varlen_qkvpacked_func", check_varlen_qkvpacked, ("fp16",)),
    ("flash_attn_varlen_kvpacked_func", check_varlen_kvpacked, ("fp16",)),
    ("flash_attn_with_kvcache", check_kvcache, ("fp16",)),
    ("flash_attn_backward", check_backward, ("fp32",)),
]


def main(argv=None):
    from . import FaclError, default_queue, device_info, version

    try:
        info = device_info(default_queue())
    except (FaclError, OSError, ImportError) as exc:
        print("facl.selftest: no usable device: %s" % exc)
        return 2
    print("facl %s on %s (%s), kernel path %s" % (version(), info["device_name"],
                                                  info["platform_name"], info["kernel_path"]))
    rng = np.random.default_rng(2024)
    failed = 0
    for name, fn, dtypes in CHECKS:
        for dtype in dtypes:
            start = time.time()
            try:
                why = fn(rng, dtype)
            except FaclError as exc:
                why = str(exc)
            failed += why is not None
            print("%s %s %s (%.2f s)%s" % ("PASS" if why is None else "FAIL", name, dtype,
                                           time.time() - start, "" if why is None else ": " + why))
    print("%d of %d checks failed" % (failed, sum(len(c[2]) for c in CHECKS)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
