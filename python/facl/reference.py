"""The math of docs/CONTRACT.md in numpy, and the rule that judges a result.

Used by the self-test and the package's tests. Everything works in varlen layout:
q (total_q, heads_q, d), k and v (total_k, heads_kv, d), sequence b owning rows
[cu_q[b], cu_q[b+1]) and [cu_k[b], cu_k[b+1]); dense tensors are reshaped into it.

precision=None computes in float64 (the reference, `ref`); "fp32", "fp16" or "bf16"
computes the naive storage-precision version (`low`): scores and softmax in fp32,
probabilities rounded to the storage dtype before P.V, outputs rounded. A result
passes (SPEC.md) iff max|got - ref| <= 2 max|low - ref| + 1e-5 for fp16 and bf16, and
||got - ref|| / ||ref|| < 1e-5 for fp32; NaN never passes; equal infinities count as no
difference.
"""
import numpy as np

from ._tensor import bf16_from_float, bf16_to_float

_M32 = np.uint64(0xFFFFFFFF)


def round_to(x, dtype):
    """x (any float array) rounded to a storage dtype, returned as float32."""
    x = np.asarray(x, dtype=np.float32)
    if dtype == "fp16":
        return x.astype(np.float16).astype(np.float32)
    if dtype == "bf16":
        return bf16_to_float(bf16_from_float(x)).reshape(x.shape)
    return x


# ---------------------------------------------------------------- dropout


def philox4x32_10(ctr, key):
    """Philox 4x32-10 of counters ctr (4 uint64 arrays holding 32-bit words) and key
    (k0, k1): the 4 output words."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) & _M32 for c in ctr)
    k0, k1 = np.uint64(key[0]) & _M32, np.uint64(key[1]) & _M32
    for r in range(10):
        if r:
            k0 = (k0 + np.uint64(0x9E3779B9)) & _M32
            k1 = (k1 + np.uint64(0xBB67AE85)) & _M32
        p0 = np.uint64(0xD2511F53) * c0
        p1 = np.uint64(0xCD9E8D57) * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & _M32,
                          (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & _M32)
    return c0, c1, c2, c3


def dropout_threshold(p):
    return min(int(np.ldexp(float(np.float32(p)), 32)), 0xFFFFFFFF)


def dropout_keep(p, seed, offset, b, heads_q, h, sq, sk):
    """Boolean (sq, sk) keep mask of sequence b, head h (CONTRACT.md, Dropout)."""
    i, j = np.meshgrid(np.arange(sq, dtype=np.uint64), np.arange(sk, dtype=np.uint64),
                       indexing="ij")
    x = (int(offset) + b * heads_q + h) & (2 ** 64 - 1)
    ctr = (j // np.uint64(4), i, np.full_like(i, x & 0xFFFFFFFF), np.full_like(i, x >> 32))
    words = np.stack(philox4x32_10(ctr, (seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF)))
    word = np.take_along_axis(words, (j % np.uint64(4)).astype(np.int64)[None], 0)[0]
    return word >= np.uint64(dropout_threshold(p))


# -------------------------------------------------------------- attention


class Problem:
    """One call's shape and options, in the library's terms."""

    def __init__(self, cu_q, cu_k, key_len, scale=None, causal=False, window=(-1, -1),
                 softcap=0.0, alibi=None, dropout_p=0.0, seed=0, offset=0, top_left=False,
                 seqused_k=None, head_dim=None):
        self.cu_q = [int(x) for x in cu_q]
        self.cu_k = [int(x) for x in cu_k]
        self.batch = len(self.cu_q) - 1
        self.scale = scale
        wl, wr = window
        if causal:
            wr = 0
        # FlashAttention 2's normalisation: a window of at least the call's key length
        # is unbounded.
        self.wl = -1 if wl >= key_len else wl
        self.wr = -1 if wr >= key_len else wr
        self.softcap = float(np.float32(softcap))
        self.alibi = None if alibi is None else np.asarray(alibi, dtype=np.float32)
        self.dropout_p = float(np.float32(dropout_p))
        self.seed, self.offset = int(seed), int(offset)
        self.top_left = top_left
        self.seqused_k = seqused_k

    def lengths(self, b):
        sq = self.cu_q[b + 1] - self.cu_q[b]
        sk = self.cu_k[b + 1] - self.cu_k[b]
        if self.seqused_k is not None:
            sk = int(self.seqused_k[b])
        return sq, sk

    def logits(self, b, h, qb, kb, dt):
        """(x, s, visible): logits after softcap and ALiBi, raw scaled scores, mask."""
        sq, sk = qb.shape[0], kb.shape[0]
        d = qb.shape[1]
        scale = np.float32(self.scale if self.scale else 1.0 / np.sqrt(d))
        s = (qb.astype(dt) @ kb.astype(dt).T) * dt(scale)
        x = s
        if self.softcap > 0:
            c = dt(self.softcap)
            x = c * np.tanh(s / c)
        off = 0 if self.top_left else sk - sq
        i = np.arange(sq)[:, None]
        j = np.arange(sk)[None, :]
        if self.alibi is not None:
            slope = self.alibi[b, h] if self.alibi.ndim == 2 else self.alibi[h]
            x = x - dt(slope) * np.abs(i + off - j).astype(dt)
        visible = np.ones((sq, sk), dtype=bool)
        if self.wl >= 0:
            visible &= j >= i + off - self.wl
        if self.wr >= 0:
            visible &= j <= i + off + self.wr
        return x, s, visible

    def dropout_factor(self, b, heads_q, h, sq, sk, dt):
        if self.dropout_p <= 0:
            return None
        keep = dropout_keep(self.dropout_p, self.seed, self.offset, b, heads_q, h, sq, sk)
        return np.where(keep, dt(np.float32(1.0) / (np.float32(1.0) - np.float32(self.dropout_p))),
                        dt(0))


def _softmax(x, visible, dt):
    xm = np.where(visible, x, -np.inf)
    m = np.max(xm, axis=1, keepdims=True, initial=-np.inf)
    empty = ~np.any(visible, axis=1)
    m = np.where(empty[:, None], 0, m)
    e = np.where(visible, np.exp(xm - m), 0).astype(dt)
    total = e.sum(axis=1, dtype=dt)
    with np.errstate(divide="ignore"):
        lse = np.where(empty, np.inf, np.log(np.where(empty, 1, total)) + m[:, 0]).astype(dt)
    p = np.where(visible, np.exp(np.where(visible, x - lse[:, None], 0)), 0).astype(dt)
    return p, lse


def attention(prob, q, k, v, precision=None, max_seqlen_q=None, max_seqlen_k=None):
    """out (total_q, hq, d), lse (hq, total_q) and, when max_seqlen_q/k are given,
    attn_probs (batch, hq, max_seqlen_q, max_seqlen_k) as facl writes them."""
    dt = np.float64 if precision is None else np.float32
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    hq, hkv = q.shape[1], k.shape[1]
    out = np.zeros(q.shape, dtype=np.float64)
    lse = np.zeros((hq, q.shape[0]), dtype=np.float64)
    probs = None
    if max_seqlen_q is not None:
        probs = np.zeros((prob.batch, hq, max_seqlen_q, max_seqlen_k))
    for b in range(prob.batch):
        q0, k0 = prob.cu_q[b], prob.cu_k[b]
        sq, sk = prob.lengths(b)
        for h in range(hq):
            hk = h // (hq // hkv)
            qb, kb, vb = q[q0:q0 + sq, h], k[k0:k0 + sk, hk], v[k0:k0 + sk, hk]
            x, _, visible = prob.logits(b, h, qb, kb, dt)
            p, l = _softmax(x, visible, dt)
            z = prob.dropout_factor(b, hq, h, sq, sk, dt)
            pz = p if z is None else p * z
            if precision is not None:
                pz = round_to(pz, precision)
            o = pz.astype(dt) @ vb.astype(dt)
            if precision is not None:
                o = round_to(o, precision)
            out[q0:q0 + sq, h] = o
            lse[h, q0:q0 + sq] = l
            if probs is not None:
                shown = p if z is None else np.where(z > 0, p, -p)
                probs[b, h, :sq, :sk] = shown
    return out, lse, probs


def attention_backward(prob, q, k, v, dout, out=None, lse=None, precision=None):
    """dq, dk, dv (float64 arrays) of CONTRACT.md's backward. precision None: float64
    throughout (out and lse recomputed). Otherwise the storage-precision version from the
    device's out and lse: fp32 sums, P Z and dS rounded to the dtype, gradients rounded."""
    dt = np.float64 if precision is None else np.float32
    q, k, v, dout = (np.asarray(a, dtype=np.float64) for a in (q, k, v, dout))
    if precision is None:
        out, lse, _ = attention(prob, q, k, v)
    hq, hkv, d = q.shape[1], k.shape[1], q.shape[2]
    scale = dt(np.float32(prob.scale if prob.scale else 1.0 / np.sqrt(d)))
    rnd = (lambda a: a) if precision is None else (lambda a: round_to(a, precision))
    dq = np.zeros(q.shape)
    dk = np.zeros(k.shape)
    dv = np.zeros(v.shape)
    for b in range(prob.batch):
        q0, k0 = prob.cu_q[b], prob.cu_k[b]
        sq, sk = prob.lengths(b)
        for h in range(hq):
            hk = h // (hq // hkv)
            qb, kb, vb = (a.astype(dt) for a in (q[q0:q0 + sq, h], k[k0:k0 + sk, hk],
                                                 v[k0:k0 + sk, hk]))
            dob = dout[q0:q0 + sq, h].astype(dt)
            ob = np.asarray(out[q0:q0 + sq, h], dtype=dt)
            lb = np.asarray(lse[h, q0:q0 + sq], dtype=dt)
            x, s, visible = prob.logits(b, h, qb, kb, dt)
            with np.errstate(invalid="ignore", over="ignore"):
                p = np.where(visible, np.exp(np.where(visible, x - lb[:, None], 0)), 0).astype(dt)
            z = prob.dropout_factor(b, hq, h, sq, sk, dt)
            z = np.ones_like(p) if z is None else z
            delta = (dob * ob).sum(axis=1)
            dpv = dob @ vb.T
            dl = 1.0
            if prob.softcap > 0:
                th = np.tanh(s / dt(prob.softcap))
                dl = 1 - th * th
            ds = rnd(p * (dpv * z - delta[:, None]) * dl)
            pz = rnd(p * z)
            dq[q0:q0 + sq, h] = rnd(scale * (ds @ kb))
            dk[k0:k0 + sk, hk] += scale * (ds.T @ qb)
            dv[k0:k0 + sk, hk] += pz.T @ dob
    if precision is not None:
        dk, dv = round_to(dk, precision), round_to(dv, precision)
    return dq, dk, dv


# ----------------------------------------------------------------- rotary


def rotary(x, cos, sin, positions, interleaved, precision=None):
    """x (n, heads, d) rotated at positions (n,) by cos, sin (seqlen_ro, rotary_dim / 2);
    dims past rotary_dim unchanged. Rounded to the storage dtype when precision is set."""
    x = np.asarray(x, dtype=np.float64).copy()
    half = cos.shape[1]
    c = np.asarray(cos, dtype=np.float64)[positions][:, None, :]
    s = np.asarray(sin, dtype=np.float64)[positions][:, None, :]
    if interleaved:
        a, b = x[..., 0:2 * half:2].copy(), x[..., 1:2 * half:2].copy()
        x[..., 0:2 * half:2] = a * c - b * s
        x[..., 1:2 * half:2] = a * s + b * c
    else:
        a, b = x[..., :half].copy(), x[..., half:2 * half].copy()
        x[..., :half] = a * c - b * s
        x[..., half:2 * half] = a * s + b * c
    return x if precision is None else round_to(x, precision).astype(np.float64)


# ------------------------------------------------------------------- rule


def rule(got, ref, low, dtype):
    """None if `got` passes SPEC.md's rule against ref (float64) and low, else why not."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    low = np.asarray(low, dtype=np.float64)
    if got.shape != ref.shape:
        return "shape %s, expected %s" % (got.shape, ref.shape)
    if np.isnan(got).any():
        return "%d NaN (unwritten or broken) of %d" % (np.isnan(got).sum(), got.size)
    same_inf = np.isinf(got) & np.isinf(ref) & (np.sign(got) == np.sign(ref))
    bad_inf = (np.isinf(got) | np.isinf(ref)) & ~same_inf
    if bad_inf.any():
        return "%d infinities where the reference differs" % bad_inf.sum()
    finite = ~same_inf
    with np.errstate(invalid="ignore"):
        diff = np.abs(got - ref)[finite]
        low_diff = np.abs(low - ref)[finite]
    if dtype == "fp32":
        num = np.sqrt((diff ** 2).sum())
        den = np.sqrt((ref[finite] ** 2).sum())
        if num < 1e-5 * den or num == 0:
            return None
        return "relative L2 error %.3g >= 1e-5" % (num / den if den else np.inf)
    lim = 2 * np.max(low_diff, initial=0.0) + 1e-5
    err = np.max(diff, initial=0.0)
    return None if err <= lim else "max error %.3g > limit %.3g" % (err, lim)
