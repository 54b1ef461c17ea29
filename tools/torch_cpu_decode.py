#!/usr/bin/env python3
"""torch_sdpa.py --decode --cpu, limited to the KV lengths given (the shared script always
includes 64k, whose 8.6 GiB fp32 cache takes minutes to fill on the CPU). Same shapes,
same timing rule (median of 3 after one warm-up), same GB/s definition. First it measures
the CPU's memory bandwidth the same way on the same threads: a 1 GiB copy (GB/s of read +
write, as the GPU copy figure) and a 1 GiB sum (GB/s read, what decoding does)."""
import json, sys, time
import torch
import torch.nn.functional as F
lens = [int(x) for x in sys.argv[1].split(",")]
rows = []

def timed(fn):
    fn(); ts = []
    for _ in range(3):
        t0 = time.perf_counter(); fn(); ts.append((time.perf_counter() - t0) * 1e3)
    return sorted(ts)[1]

src = torch.randn(1 << 28); dst = torch.empty_like(src)  # 1 GiB each, fp32
for what, fn, moved in (("copy", lambda: dst.copy_(src), 2), ("sum", lambda: src.sum(), 1)):
    ms = timed(fn)
    row = dict(kind="memory", op=what, bytes=src.numel() * 4 * moved, ms=ms,
               gb_per_s=src.numel() * 4 * moved / 1e9 / ms * 1e3, threads=torch.get_num_threads())
    rows.append(row); print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
del src, dst
for dt in ("float32", "bfloat16"):
    for s in lens:
        b, h, hk, d = 16, 32, 8, 128
        q = torch.randn(b, h, 1, d, dtype=getattr(torch, dt))
        k = torch.randn(b, hk, s, d, dtype=q.dtype); v = torch.randn_like(k)
        ms = timed(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True))
        gb = (k.numel() + v.numel()) * k.element_size() / 1e9
        row = dict(kind="decode", dtype=dt, hdim=d, seqlen_k=s, batch=b, heads=h, heads_kv=hk,
                   ms=ms, gb_per_s=gb / ms * 1e3, threads=torch.get_num_threads())
        rows.append(row); print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
if len(sys.argv) > 2: json.dump(rows, open(sys.argv[2], "w"), indent=1)
