#!/bin/sh
# Turns facl-bench --json output (and optionally torch_sdpa.py --json output from the same
# machine) into PNG charts with gnuplot: TFLOP/s against seqlen, one line per
# implementation (facl, clblast, torch), one chart per (dtype, head dim, causal).
#
#   tools/plot_bench.sh BENCH.json [--torch TORCH.json] [-o OUTDIR]
#
# Needs python3 (standard library only) and gnuplot (pngcairo if present, else png).
# Writes OUTDIR/bench_<dtype>_d<hdim>_<causal|noncausal>.png (OUTDIR defaults to
# ./bench-charts) and prints their names. Exit status non-zero on bad input.
set -eu

usage() {
    echo "usage: $0 BENCH.json [--torch TORCH.json] [-o OUTDIR]" >&2
    exit 2
}

bench=""
torch=""
outdir="bench-charts"
while [ $# -gt 0 ]; do
    case "$1" in
        --torch) [ $# -ge 2 ] || usage; torch="$2"; shift 2 ;;
        -o|--out) [ $# -ge 2 ] || usage; outdir="$2"; shift 2 ;;
        -h|--help) usage ;;
        -*) echo "$0: unknown option $1" >&2; usage ;;
        *) [ -z "$bench" ] || usage; bench="$1"; shift ;;
    esac
done
[ -n "$bench" ] || usage
command -v python3 >/dev/null 2>&1 || { echo "$0: python3 not found" >&2; exit 1; }
command -v gnuplot >/dev/null 2>&1 || { echo "$0: gnuplot not found" >&2; exit 1; }

# pngcairo draws antialiased lines; the libgd png terminal is the fallback.
terminal="png"
if gnuplot -e 'set terminal' 2>&1 | grep -q pngcairo; then terminal="pngcairo"; fi

mkdir -p "$outdir/data"
FACL_TOOLS_DIR=$(cd "$(dirname "$0")" && pwd) python3 - "$bench" "$torch" "$outdir" "$terminal" <<'PY'
import os, subprocess, sys

sys.path.insert(0, os.environ["FACL_TOOLS_DIR"])
from bench_table import load  # noqa: E402  (one JSON loader for both scripts)

bench_path, torch_path, outdir, terminal = sys.argv[1:5]
DTYPES = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32"}


bench = load(bench_path)
if not isinstance(bench, dict) or "rows" not in bench:
    sys.exit(f"plot_bench: {bench_path} is not facl-bench --json output (no 'rows')")
device = bench.get("device", {}).get("name", "?")

# series[(dtype, hdim, causal)][impl] = {seqlen: tflops}
series = {}
for r in bench["rows"]:
    if r.get("kind", "fwd") != "fwd" or r.get("tflops") is None:
        continue
    key = (r["dtype"], int(r["hdim"]), bool(r["causal"]))
    series.setdefault(key, {}).setdefault(r["impl"], {})[int(r["seqlen"])] = float(r["tflops"])
if torch_path:
    t = load(torch_path)
    for r in t.get("rows", []):
        if r.get("kind") != "fwd" or r.get("tflops") is None:
            continue
        key = (DTYPES.get(r["dtype"], r["dtype"]), int(r["hdim"]), bool(r["causal"]))
        name = "torch " + t.get("torch", "")
        series.setdefault(key, {}).setdefault(name.strip(), {})[int(r["seqlen"])] = float(r["tflops"])

charts = []
for (dtype, hdim, causal), impls in sorted(series.items()):
    stem = f"bench_{dtype}_d{hdim}_{'causal' if causal else 'noncausal'}"
    plots, seqlens = [], set()
    for i, (impl, points) in enumerate(sorted(impls.items(), key=lambda kv: (kv[0] != "facl", kv[0]))):
        if not points:
            continue
        dat = os.path.join(outdir, "data", f"{stem}.{i}.dat")
        with open(dat, "w") as f:
            f.write(f"# seqlen tflops ({impl})\n")
            for s in sorted(points):
                f.write(f"{s} {points[s]}\n")
        seqlens.update(points)
        title = impl.replace('"', "'")
        plots.append(f'"{dat}" using 1:2 with linespoints lw 2 pt 7 title "{title}"')
    if not plots:
        continue
    png = os.path.join(outdir, stem + ".png")
    tics = ", ".join(f'"{s}" {s}' for s in sorted(seqlens))
    script = "\n".join([
        f"set terminal {terminal} size 900,560",
        f'set output "{png}"',
        f'set title "forward, {dtype}, head dim {hdim}, {"causal" if causal else "non-causal"} ({device.replace(chr(34), "")})"',
        'set xlabel "seqlen (batch = tokens / seqlen)"',
        'set ylabel "TFLOP/s"',
        "set logscale x 2",
        f"set xrange [{min(seqlens) / 1.5}:{max(seqlens) * 1.5}]",
        f"set xtics ({tics})",
        "set yrange [0:*]",
        "set offsets 0, 0, graph 0.08, 0",
        "set grid",
        "set key top left",
        "plot " + ", ".join(plots),
        "",
    ])
    gp = os.path.join(outdir, "data", stem + ".gp")
    with open(gp, "w") as f:
        f.write(script)
    subprocess.run(["gnuplot", gp], check=True)
    charts.append(png)

if not charts:
    sys.exit("plot_bench: no measured points to plot")
for c in charts:
    print(c)
PY
