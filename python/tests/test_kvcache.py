"""flash_attn_with_kvcache: dense and paged caches, in-place append with rotary,
cache_batch_idx, cache_leftpad, cache_seqlens as an int or an array; out, lse and the
whole cache after the call against the float64 reference."""
import numpy as np
import pytest

import facl
from facl import reference
from helpers import check, download, rand, reference_pair, to_varlen, upload, upload_int


class Cache:
    """A dense or paged cache on the host, addressed by (sequence, position)."""

    def __init__(self, rng, dtype, batch, capacity, hkv, d, page=None, rows=None):
        self.page = page
        if page:
            per_seq = -(-capacity // page)
            self.nblocks = batch * per_seq + 1  # one page nobody uses
            self.table = rng.permutation(self.nblocks)[:batch * per_seq].reshape(batch, per_seq)
            shape = (self.nblocks, page, hkv, d)
        else:
            self.rows = np.arange(batch) if rows is None else np.asarray(rows)
            shape = (max(self.rows) + 2, capacity, hkv, d)  # a spare row nobody uses
        self.k = rand(rng, shape, dtype)
        self.v = rand(rng, shape, dtype)

    def loc(self, b, pos):
        if self.page:
            return self.table[b, pos // self.page], pos % self.page
        return self.rows[b], pos


def run_kvcache(queue, rng, dtype, b=2, sq=2, hq=4, hkv=2, d=16, capacity=12, seqlens=(3, 6),
                n_new=2, page=None, rotary=None, causal=True, leftpad=None, rows=None,
                seqlens_as_int=False, window=(-1, -1), num_splits=0):
    cache = Cache(rng, dtype, b, capacity, hkv, d, page, rows)
    q = rand(rng, (b, sq, hq, d), dtype)
    k_new = rand(rng, (b, n_new, hkv, d), dtype) if n_new else None
    v_new = rand(rng, (b, n_new, hkv, d), dtype) if n_new else None
    kw = dict(causal=causal, window_size=window, num_splits=num_splits, return_softmax_lse=True)
    if rotary is not None:
        half = 4
        cos = reference.round_to(rng.uniform(-1, 1, (capacity, half)), dtype).astype(np.float64)
        sin = reference.round_to(rng.uniform(-1, 1, (capacity, half)), dtype).astype(np.float64)
        kw.update(rotary_cos=upload(queue, cos, dtype), rotary_sin=upload(queue, sin, dtype),
                  rotary_interleaved=rotary)
    if n_new:
        kw.update(k=upload(queue, k_new, dtype), v=upload(queue, v_new, dtype))
    if page:
        kw["block_table"] = upload_int(queue, cache.table)
    if rows is not None:
        kw["cache_batch_idx"] = upload_int(queue, rows)
    if leftpad is not None:
        kw["cache_leftpad"] = upload_int(queue, leftpad)
    kw["cache_seqlens"] = seqlens[0] if seqlens_as_int else upload_int(queue, seqlens)
    seqlens = [seqlens[0]] * b if seqlens_as_int else list(seqlens)
    kc, vc = upload(queue, cache.k, dtype), upload(queue, cache.v, dtype)
    out, lse = facl.flash_attn_with_kvcache(upload(queue, q, dtype), kc, vc, **kw)

    # The cache after the append: rotated new keys (float64 for ref, rounded for low).
    exp = {name: (getattr(cache, name).copy(), getattr(cache, name).copy()) for name in "kv"}
    appended = np.zeros(cache.k.shape, dtype=bool)
    rot_q = q.copy()
    moves = causal or window != (-1, -1)
    for bi in range(b):
        s = seqlens[bi]
        pos = np.arange(s, s + n_new)
        new_k = k_new[bi] if n_new else None
        if rotary is not None:
            if n_new:
                new_k_ref = reference.rotary(new_k, cos, sin, pos, rotary)
                new_k_low = reference.rotary(new_k, cos, sin, pos, rotary, dtype)
            qpos = s + np.arange(sq) if moves else np.full(sq, s)
            rot_q[bi] = reference.rotary(q[bi], cos, sin, qpos, rotary, dtype)
        elif n_new:
            new_k_ref = new_k_low = new_k
        for t in range(n_new):
            at = cache.loc(bi, s + t)
            exp["k"][0][at], exp["k"][1][at] = new_k_ref[t], new_k_low[t]
            exp["v"][0][at] = exp["v"][1][at] = v_new[bi, t]
            appended[at] = True
    for name, got in (("k", kc), ("v", vc)):
        got = download(got)
        untouched = ~appended
        assert np.array_equal(got[untouched], getattr(cache, name)[untouched]), \
            "%s_cache changed outside the appended positions" % name
        check("%s_cache appended" % name, got[appended], exp[name][0][appended],
              exp[name][1][appended], dtype)

    # The attention over the stored (rounded) keys [leftpad, s + n) of each sequence.
    stored_k, stored_v = exp["k"][1], exp["v"][1]
    keys, values, cu_k = [], [], [0]
    for bi in range(b):
        start = 0 if leftpad is None else leftpad[bi]
        for p in range(start, seqlens[bi] + n_new):
            keys.append(stored_k[cache.loc(bi, p)])
            values.append(stored_v[cache.loc(bi, p)])
        cu_k.append(len(keys))
    keys = np.array(keys).reshape(-1, hkv, d)
    values = np.array(values).reshape(-1, hkv, d)
    prob = reference.Problem([i * sq for i in range(b + 1)], cu_k, key_len=capacity,
                             causal=causal, window=window)
    (ro, rl, _), (lo, ll, _) = reference_pair(prob, to_varlen(rot_q), keys, values, dtype)
    check("out", to_varlen(download(out)), ro, lo, dtype)
    h = rl.shape[0]
    check("lse", download(lse), rl.reshape(h, b, sq).transpose(1, 0, 2),
          ll.reshape(h, b, sq).transpose(1, 0, 2), dtype)


# The default suite runs one KV-cache variant (each compiles for a minute on PoCL): paged,
# appending after rotary, left padding, no split. The others are marked slow.
def test_paged_append_rotary_leftpad(queue, rng):
    run_kvcache(queue, rng, "fp16", page=4, rotary=True, seqlens=(5, 2), leftpad=[2, 0],
                num_splits=1)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
def test_dense_append_rotary_interleaved(queue, rng, dtype):
    run_kvcache(queue, rng, dtype, rotary=True)


@pytest.mark.slow
def test_dense_rotary_neox_window(queue, rng):
    run_kvcache(queue, rng, "fp16", rotary=False, causal=False, window=(3, 1))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_paged_append_rotary(queue, rng, dtype):
    run_kvcache(queue, rng, dtype, page=4, rotary=True, seqlens=(5, 2))


@pytest.mark.slow
def test_paged_int_seqlens_split(queue, rng):
    """cache_seqlens as a Python int; keys split in 3 chunks merged through their lse."""
    run_kvcache(queue, rng, "fp16", page=3, seqlens=(7,), seqlens_as_int=True, num_splits=3)


@pytest.mark.slow
def test_decode_batch_idx_leftpad(queue, rng):
    """No new keys: sequences read cache rows 2 and 0, after left padding."""
    run_kvcache(queue, rng, "fp16", sq=1, n_new=0, rows=[2, 0], leftpad=[1, 3], seqlens=(6, 9))
