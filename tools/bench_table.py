#!/usr/bin/env python3
"""Turns facl-bench --json output, and optionally torch_sdpa.py --json output from the same
run, into the Markdown table docs/PERFORMANCE.md shows: one row per grid point with facl's
TFLOP/s, the peers' TFLOP/s and the ratios ours/peer.

  tools/bench_table.py BENCH.json [--torch TORCH.json]

Standard library only. Points a peer did not measure read "-", and an unavailable or n/a
baseline shows the reason facl-bench gave; when no point has a baseline at all (CLBlast
missing, --baseline off, or a dtype it lacks) its columns are left out.
"""
import argparse
import json
import sys

TORCH_DTYPES = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32"}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"cannot read {path}: {e}")


def key(dtype, hdim, seqlen, causal):
    return (dtype, int(hdim), int(seqlen), bool(causal))


def ratio(ours, peer):
    return f"{ours / peer:.3f}" if ours and peer else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench")
    ap.add_argument("--torch")
    args = ap.parse_args()

    bench = load(args.bench)
    if "rows" not in bench:
        sys.exit(f"bench_table: {args.bench} is not facl-bench --json output")
    facl, clblast, order = {}, {}, []
    for r in bench["rows"]:
        k = key(r["dtype"], r["hdim"], r["seqlen"], r["causal"])
        if r["impl"] == "facl":
            facl[k] = r
            order.append(k)
        else:
            clblast[k] = r
    torch = {}
    if args.torch:
        for r in load(args.torch).get("rows", []):
            if r.get("kind") == "fwd":
                dt = TORCH_DTYPES.get(r["dtype"], r["dtype"])
                torch[key(dt, r["hdim"], r["seqlen"], r["causal"])] = r["tflops"]

    with_baseline = any(r.get("status") in ("ok", "n/a") for r in clblast.values())
    cols = ["dtype", "d", "seqlen", "causal", "facl TFLOP/s"]
    if args.torch:
        cols += ["torch TFLOP/s", "facl/torch"]
    if with_baseline:
        cols += ["CLBlast TFLOP/s", "facl/CLBlast"]
    cols += ["facl MiB"] + (["CLBlast MiB"] if with_baseline else [])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for k in order:
        f = facl[k]
        ours = f.get("tflops") if f.get("status") == "ok" else None
        cells = [k[0], str(k[1]), str(k[2]), "on" if k[3] else "off",
                 f"{ours:.3f}" if ours else f.get("note", f.get("status", "?"))]
        if args.torch:
            t = torch.get(k)
            cells += [f"{t:.3f}" if t else "-", ratio(ours, t)]
        b = clblast.get(k, {})
        base = b.get("tflops") if b.get("status") == "ok" else None
        if with_baseline:
            cells += [f"{base:.3f}" if base else b.get("note", b.get("status", "-")),
                      ratio(ours, base)]
        cells.append(f"{f.get('mem_bytes', 0) / 2**20:.0f}")
        if with_baseline:
            cells.append(f"{b['mem_bytes'] / 2**20:.0f}" if b.get("mem_bytes") else "-")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
