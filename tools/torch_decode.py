#!/usr/bin/env python3
"""Torch's decode (seqlen_q = 1 over a KV cache) on a GPU in both row orders of the cache,
next to facl-bench --decode --kv-order shd,hsd.

torch_sdpa.py --decode (../shared/device) times F.scaled_dot_product_attention on k and v
made as (batch, heads_kv, kv_len, d) tensors: each head's rows contiguous ("hsd").
FlashAttention's own cache layout, and facl-bench's default, is (batch, kv_len, heads_kv, d):
each position's heads side by side ("shd"), every head's rows heads_kv * d apart. This
script times torch on both, the shd one as the transposed view FlashAttention's kernel takes
without a copy, with torch_sdpa.py's shapes (batch 16, heads 32 / 8, d 128), timing
(triton's do_bench, median, which fills L2 before each run) and GB/s (k and v bytes / time).

--flush zero-read times the same way with the zeroed buffer read back before each run, so
that the call starts with clean lines in L2 instead of do_bench's dirty ones (as
facl-bench --flush-read on does): do_bench's own loop, with the read added.

  python3 tools/torch_decode.py [--kv-lens 1024,...] [--dtypes float16,bfloat16]
                                [--kv-orders hsd,shd] [--flush zero|zero-read] [--json FILE]
"""
import argparse, json, statistics
import torch
import torch.nn.functional as F
import triton
from torch.nn.attention import sdpa_kernel, SDPBackend

ap = argparse.ArgumentParser()
ap.add_argument("--kv-lens", default="1024,4096,16384,65536")
ap.add_argument("--dtypes", default="float16,bfloat16")
ap.add_argument("--kv-orders", default="hsd,shd")
ap.add_argument("--flush", default="zero", choices=["zero", "zero-read"])
ap.add_argument("--json")
args = ap.parse_args()


def time_zero_read(fn, warmup=25, rep=100):
    """do_bench's loop (a 256 MB buffer zeroed before each run, CUDA events around the
    call, the median) with the buffer read back after the zeroing."""
    flush = torch.empty(256 * 1024 * 1024 // 4, dtype=torch.int, device="cuda")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(rep):
        flush.zero_()
        torch.sum(flush)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


b, h, hk, d = 16, 32, 8, 128
rows = []
print(f"# torch {torch.__version__} on {torch.cuda.get_device_name()}, "
      f"scaled_dot_product_attention (FlashAttention-2 backend), decode, flush {args.flush}")
for dt in args.dtypes.split(","):
    for s in map(int, args.kv_lens.split(",")):
        for order in args.kv_orders.split(","):
            dtype = getattr(torch, dt)
            q = torch.randn(b, h, 1, d, device="cuda", dtype=dtype)
            if order == "hsd":
                k = torch.randn(b, hk, s, d, device="cuda", dtype=dtype)
                v = torch.randn_like(k)
            elif order == "shd":
                k = torch.randn(b, s, hk, d, device="cuda", dtype=dtype).transpose(1, 2)
                v = torch.randn(b, s, hk, d, device="cuda", dtype=dtype).transpose(1, 2)
            else:
                raise SystemExit(f"--kv-orders: unknown order {order!r} (hsd, shd)")
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                call = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
                if args.flush == "zero":
                    ms = triton.testing.do_bench(call, warmup=25, rep=100, return_mode="median")
                else:
                    ms = time_zero_read(call)
            gbytes = 2 * b * s * hk * d * k.element_size() / 1e9
            row = dict(kind="decode", dtype=dt, hdim=d, seqlen_k=s, batch=b, heads=h,
                       heads_kv=hk, kv_order=order, flush=args.flush, ms=ms, gb_per_s=gbytes / ms * 1e3)
            rows.append(row)
            print(f"{dt:9s} kv {s:6d} {order}: {ms:8.4f} ms {row['gb_per_s']:8.1f} GB/s", flush=True)
            del q, k, v
if args.json:
    with open(args.json, "w") as f:
        json.dump(dict(torch=torch.__version__, device=torch.cuda.get_device_name(),
                       flush=args.flush, rows=rows),
                  f, indent=1)
