"""The packed and varlen forward functions against the float64 reference."""
import numpy as np
import pytest

import facl
from facl import reference
from helpers import (check, dense_cu, download, lse_dense, rand, reference_pair, to_varlen, upload,
                     upload_int)


@pytest.mark.parametrize("dtype", ["fp32", pytest.param("fp16", marks=pytest.mark.slow),
                                   pytest.param("bf16", marks=pytest.mark.slow)])
def test_qkvpacked(queue, rng, dtype):
    b, s, h, d = 2, 6, 2, 16
    qkv = rand(rng, (b, s, 3, h, d), dtype)
    out, lse, _ = facl.flash_attn_qkvpacked_func(upload(queue, qkv, dtype), causal=True,
                                                 return_attn_probs=True)
    q, k, v = (to_varlen(qkv[:, :, i]) for i in range(3))
    prob = reference.Problem(dense_cu(b, s), dense_cu(b, s), key_len=s, causal=True)
    (ro, rl, _), (lo, ll, _) = reference_pair(prob, q, k, v, dtype)
    check("out", to_varlen(download(out)), ro, lo, dtype)
    check("lse", download(lse), lse_dense(rl, b, s), lse_dense(ll, b, s), dtype)


@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_kvpacked_gqa(queue, rng, dtype):
    b, sq, sk, hq, hkv, d = 2, 3, 8, 4, 2, 16
    q = rand(rng, (b, sq, hq, d), dtype)
    kv = rand(rng, (b, sk, 2, hkv, d), dtype)
    out, lse, _ = facl.flash_attn_kvpacked_func(upload(queue, q, dtype), upload(queue, kv, dtype),
                                                window_size=(4, 0), return_attn_probs=True)
    prob = reference.Problem(dense_cu(b, sq), dense_cu(b, sk), key_len=sk, window=(4, 0))
    (ro, rl, _), (lo, ll, _) = reference_pair(prob, to_varlen(q), to_varlen(kv[:, :, 0]),
                                              to_varlen(kv[:, :, 1]), dtype)
    check("out", to_varlen(download(out)), ro, lo, dtype)
    check("lse", download(lse), lse_dense(rl, b, sq), lse_dense(ll, b, sq), dtype)


# Sequences of different lengths, one of them empty on the query side.
CU_Q = [0, 3, 3, 9]
CU_K = [0, 5, 7, 13]


@pytest.mark.parametrize("dtype", ["fp16", pytest.param("fp32", marks=pytest.mark.slow),
                                   pytest.param("bf16", marks=pytest.mark.slow)])
def test_varlen(queue, rng, dtype):
    hq, hkv, d = 4, 2, 16
    q = rand(rng, (CU_Q[-1], hq, d), dtype)
    k = rand(rng, (CU_K[-1], hkv, d), dtype)
    v = rand(rng, (CU_K[-1], hkv, d), dtype)
    mq, mk = 6, 6
    out, lse, probs = facl.flash_attn_varlen_func(
        upload(queue, q, dtype), upload(queue, k, dtype), upload(queue, v, dtype),
        upload_int(queue, CU_Q), upload_int(queue, CU_K), mq, mk, causal=True,
        return_attn_probs=True)
    prob = reference.Problem(CU_Q, CU_K, key_len=mk, causal=True)
    (ro, rl, rp), (lo, ll, lp) = reference_pair(prob, q, k, v, dtype, max_seqlen_q=mq,
                                                max_seqlen_k=mk)
    check("out", download(out), ro, lo, dtype)
    check("lse", download(lse), rl, ll, dtype)
    check("attn_probs", download(probs), rp, lp, dtype)


def test_varlen_qkvpacked(queue, rng):
    dtype, h, d = "fp16", 2, 16
    cu = [0, 4, 9]
    qkv = rand(rng, (cu[-1], 3, h, d), dtype)
    out, lse, _ = facl.flash_attn_varlen_qkvpacked_func(
        upload(queue, qkv, dtype), upload_int(queue, cu), 5, softcap=3.0, return_attn_probs=True)
    prob = reference.Problem(cu, cu, key_len=5, softcap=3.0)
    (ro, rl, _), (lo, ll, _) = reference_pair(prob, qkv[:, 0], qkv[:, 1], qkv[:, 2], dtype)
    check("out", download(out), ro, lo, dtype)
    check("lse", download(lse), rl, ll, dtype)


def test_varlen_kvpacked(queue, rng):
    dtype, hq, hkv, d = "fp16", 2, 1, 16
    q = rand(rng, (CU_Q[-1], hq, d), dtype)
    kv = rand(rng, (CU_K[-1], 2, hkv, d), dtype)
    out = facl.flash_attn_varlen_kvpacked_func(upload(queue, q, dtype), upload(queue, kv, dtype),
                                               upload_int(queue, CU_Q), upload_int(queue, CU_K),
                                               6, 6)
    prob = reference.Problem(CU_Q, CU_K, key_len=6)
    (ro, _, _), (lo, _, _) = reference_pair(prob, q, kv[:, 0], kv[:, 1], dtype)
    check("out", download(out), ro, lo, dtype)


@pytest.mark.slow  # a KV-cache program: minutes to compile on PoCL
def test_varlen_paged_block_table(queue, rng):
    """flash_attn_varlen_func's block_table: k, v in pages of 3 rows, scattered."""
    dtype, hq, hkv, d, page = "fp16", 2, 2, 16, 3
    q = rand(rng, (CU_Q[-1], hq, d), dtype)
    k = rand(rng, (CU_K[-1], hkv, d), dtype)
    v = rand(rng, (CU_K[-1], hkv, d), dtype)
    lengths = np.diff(CU_K)
    max_blocks = int(-(-lengths.max() // page))
    num_blocks = len(lengths) * max_blocks + 2
    order = rng.permutation(num_blocks)
    table = order[:len(lengths) * max_blocks].reshape(len(lengths), max_blocks).astype(np.int32)
    kp = rand(rng, (num_blocks, page, hkv, d), dtype)  # garbage where no key lives
    vp = rand(rng, (num_blocks, page, hkv, d), dtype)
    for b, n in enumerate(lengths):
        for t in range(n):
            kp[table[b, t // page], t % page] = k[CU_K[b] + t]
            vp[table[b, t // page], t % page] = v[CU_K[b] + t]
    out = facl.flash_attn_varlen_func(upload(queue, q, dtype), upload(queue, kp, dtype),
                                      upload(queue, vp, dtype), upload_int(queue, CU_Q),
                                      upload_int(queue, CU_K), 6, 6, causal=True,
                                      block_table=upload_int(queue, table))
    prob = reference.Problem(CU_Q, CU_K, key_len=6, causal=True)
    (ro, _, _), (lo, _, _) = reference_pair(prob, q, k, v, dtype)
    check("out", download(out), ro, lo, dtype)


# trust_cu_seqlens skips the read-back that checks the prefix sums: same bits where the
# sums are right; maxima below the real lengths are refused without it and, with it, run
# every row anyway (the kernels stride over what the launch size misses), same bits again.
def test_varlen_trust_cu_seqlens(queue, rng):
    cu = np.array([0, 3, 3, 9], dtype=np.int32)
    q = rand(rng, (9, 2, 16), "fp16")
    k = rand(rng, (9, 1, 16), "fp16")
    Q, K, CU = upload(queue, q, "fp16"), upload(queue, k, "fp16"), upload_int(queue, cu)

    def run(max_seqlen, trust):
        return download(facl.flash_attn_varlen_func(Q, K, K, CU, CU, max_seqlen, max_seqlen,
                                                    causal=True, trust_cu_seqlens=trust))
    checked = run(6, False)
    for out in (run(6, True), run(2, True)):
        assert np.array_equal(checked.view(np.uint16), out.view(np.uint16))
    with pytest.raises(facl.FaclError, match="max_seqlen"):
        run(2, False)
