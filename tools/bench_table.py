#!/usr/bin/env python3
"""Turns facl-bench --json output, and optionally torch_sdpa.py --json output from the same
run, into the Markdown table docs/PERFORMANCE.md shows: one row per grid point with facl's
TFLOP/s, the peers' TFLOP/s and the ratios ours/peer.

  tools/bench_table.py BENCH.json [--torch TORCH.json]
  tools/bench_table.py DECODE.json [--torch TORCH_DECODE.json] [--copy-gbps 4270]
  tools/bench_table.py BWD.json [--torch TORCH_BWD.json]

Standard library only. Points a peer did not measure read "-", and an unavailable or n/a
baseline shows the reason facl-bench gave; when no point has a baseline at all (CLBlast
missing, --baseline off, or a dtype it lacks) its columns are left out.

facl-bench --decode output (rows of kind "decode") gives the decode table instead: per
dtype, head dim and KV length, facl's GB/s for the contiguous cache, each paged layout and
the plain facl_fwd row, torch's GB/s (torch_sdpa.py --decode --json, joined on dtype,
hdim, seqlen_k, batch, heads, heads_kv), the ratios facl contiguous / torch and
smallest page / contiguous, and each as a % of a copy rate (--copy-gbps, else the one
facl-bench was given). Rows join only rows of the same row order of the cache (kv_order:
shd, facl-bench's default and FlashAttention's layout, or hsd; torch rows without the field
are torch_sdpa.py --decode's, which are hsd; tools/torch_decode.py measures both); with
both orders in facl's rows a "rows" column tells them apart. Each layout shows its num_splits = auto (0) row, or its best over
--splits when auto was not measured; with several splits values a second table lists
GB/s per num_splits. Points that failed or were skipped show their status, and their
notes follow the table.

facl-bench --bwd output (rows of kind "bwd") gives the backward table: facl's backward
TFLOP/s per dtype, head dim, seqlen and causal, torch's (the bwd_tflops of torch_sdpa.py
--bwd --json rows, joined on dtype, hdim, seqlen and causal) and the ratio; with rows of
both modes (facl-bench --bwd --deterministic 0,1) a "det" column tells them apart.
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


def fmt_gbps(v):
    return f"{v:.2f}" if v < 100 else f"{v:.0f}"


def pct(v, copy):
    return f"{100.0 * v / copy:.1f}%" if v and copy else "-"


def decode_tables(bench, torch_path, copy):
    rows = [r for r in bench["rows"] if r.get("kind") == "decode"]
    if copy is None:
        copy = bench.get("copy_gbps")
    dkey = lambda dt, r, order: (dt, int(r["hdim"]), int(r["seqlen_k"]), int(r["batch"]),
                                 int(r["heads"]), int(r["heads_kv"]), order)
    torch, torch_orders = {}, set()
    if torch_path:
        tdoc = load(torch_path)
        # both sides' L2 state before each timed run: dirty after the flush's fill (do_bench,
        # facl-bench's default) or clean after reading it back (--flush zero-read / --flush-read on)
        if (tdoc.get("flush", "zero") == "zero-read") != bool(bench.get("flush_read", False)):
            print("note: facl and torch were timed from different L2 states (facl-bench "
                  "--flush-read against torch_decode.py --flush); the ratios compare unlike runs")
        for r in tdoc.get("rows", []):
            if r.get("kind") == "decode":
                order = r.get("kv_order", "hsd")
                torch_orders.add(order)
                torch[dkey(TORCH_DTYPES.get(r["dtype"], r["dtype"]), r, order)] = r.get("gb_per_s")

    def layout_of(r):
        if r["layout"] == "paged":
            return f"paged{r['page_size']}"
        return r["layout"]  # "contiguous" or "fwd"

    points, order = {}, []
    for r in rows:
        k = dkey(r["dtype"], r, r.get("kv_order", "shd"))
        if k not in points:
            points[k] = {}
            order.append(k)
        points[k].setdefault(layout_of(r), []).append(r)
    pages = sorted({int(r["page_size"]) for r in rows if r["layout"] == "paged"})
    layouts = ["contiguous"] + [f"paged{p}" for p in pages]
    has_fwd = any(r["layout"] == "fwd" for r in rows)
    splits = sorted({r["num_splits"] for r in rows if r.get("num_splits") is not None})

    def pick(cands):
        """The auto-splits row if measured, else the fastest; None if there is none."""
        if not cands:
            return None
        auto = [r for r in cands if r.get("num_splits") in (0, None)]
        ok = [r for r in cands if r.get("status") == "ok"]
        if auto:
            return auto[0]
        return max(ok, key=lambda r: r["gb_per_s"]) if ok else cands[0]

    def gbps(r):
        return r["gb_per_s"] if r and r.get("status") == "ok" else None

    def cell(r):
        if r is None:
            return "-"
        v = gbps(r)
        return fmt_gbps(v) if v else r.get("status", "?")

    notes = []
    orders = len({k[6] for k in order}) > 1
    cols = ["dtype", "d", "kv_len", "batch", "heads"] + (["rows"] if orders else [])
    cols += [f"{l} GB/s" for l in layouts]
    if has_fwd:
        cols.append("facl_fwd GB/s")
    if torch_path:
        cols += ["torch GB/s", "facl/torch"]
    if pages:
        cols.append(f"paged{pages[0]}/contiguous")
    if copy:
        cols.append("contiguous % copy")
        if torch_path:
            cols.append("torch % copy")
    if splits and 0 not in splits:
        print(f"GB/s: the best over num_splits {', '.join(map(str, splits))}.\n")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for k in order:
        p = points[k]
        chosen = {l: pick(p.get(l, [])) for l in layouts + ["fwd"]}
        for l, r in chosen.items():
            if r is not None and r.get("status") != "ok":
                notes.append(f"{k[0]} d={k[1]} kv_len={k[2]} {l}: {r.get('note', r.get('status'))}")
        contig = gbps(chosen["contiguous"])
        cells = [k[0], str(k[1]), str(k[2]), str(k[3]), f"{k[4]}/{k[5]}"]
        cells += [k[6]] if orders else []
        cells += [cell(chosen[l]) for l in layouts]
        if has_fwd:
            cells.append(cell(chosen["fwd"]))
        t = torch.get(k)
        if torch_path:
            cells += [fmt_gbps(t) if t else "-", ratio(contig, t)]
        if pages:
            cells.append(ratio(gbps(chosen[f"paged{pages[0]}"]), contig))
        if copy:
            cells.append(pct(contig, copy))
            if torch_path:
                cells.append(pct(t, copy))
        print("| " + " | ".join(cells) + " |")
    if copy:
        print(f"\n% copy: GB/s as a share of {copy:g} GB/s.")
    missing = sorted({k[6] for k in order} - torch_orders)
    if torch_path and missing:
        print(f"\ntorch: no rows of row order {', '.join(missing)} (its rows: "
              f"{', '.join(sorted(torch_orders)) or 'none'}; tools/torch_decode.py measures both).")
    if notes:
        print("\nNot measured:")
        for n in notes:
            print(f"- {n}")

    if len(splits) > 1:
        print("\nGB/s per num_splits (0 = auto):\n")
        cols = ["dtype", "d", "kv_len"] + (["rows"] if orders else []) + ["layout"]
        cols += [f"splits {s}" for s in splits]
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for k in order:
            for l in layouts:
                by = {r.get("num_splits"): r for r in points[k].get(l, [])}
                if not by:
                    continue
                cells = [k[0], str(k[1]), str(k[2])] + ([k[6]] if orders else []) + [l]
                cells += [cell(by.get(s)) for s in splits]
                print("| " + " | ".join(cells) + " |")


def bwd_table(bench, torch_path):
    torch = {}
    if torch_path:
        for r in load(torch_path).get("rows", []):
            if r.get("bwd_tflops") is not None:
                dt = TORCH_DTYPES.get(r["dtype"], r["dtype"])
                torch[key(dt, r["hdim"], r["seqlen"], r["causal"])] = r["bwd_tflops"]
    rows = [r for r in bench["rows"] if r.get("kind") == "bwd"]
    modes = len({bool(r.get("deterministic", False)) for r in rows}) > 1
    cols = ["dtype", "d", "seqlen", "causal"] + (["det"] if modes else []) + ["facl bwd TFLOP/s"]
    if torch_path:
        cols += ["torch bwd TFLOP/s", "facl/torch"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        k = key(r["dtype"], r["hdim"], r["seqlen"], r["causal"])
        ours = r.get("bwd_tflops") if r.get("status") == "ok" else None
        cells = [k[0], str(k[1]), str(k[2]), "on" if k[3] else "off"]
        if modes:
            cells.append("1" if r.get("deterministic") else "0")
        cells.append(f"{ours:.3f}" if ours else r.get("note", r.get("status", "?")))
        if torch_path:
            t = torch.get(k)
            cells += [f"{t:.3f}" if t else "-", ratio(ours, t)]
        print("| " + " | ".join(cells) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench")
    ap.add_argument("--torch")
    ap.add_argument("--copy-gbps", type=float,
                    help="decode: a copy rate in GB/s for the %% columns")
    args = ap.parse_args()

    bench = load(args.bench)
    if "rows" not in bench:
        sys.exit(f"bench_table: {args.bench} is not facl-bench --json output")
    if bench.get("mode") == "decode" or any(r.get("kind") == "decode" for r in bench["rows"]):
        decode_tables(bench, args.torch, args.copy_gbps)
        return
    if bench.get("mode") == "bwd" or any(r.get("kind") == "bwd" for r in bench["rows"]):
        bwd_table(bench, args.torch)
        return
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
