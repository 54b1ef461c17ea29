#!/bin/sh
# Smoke tests of the command-line tools, run by meson:
#   sh tests/test_tools.sh path/to/facl-selftest path/to/facl-bench tools/bench_table.py tools/plot_bench.sh path/to/facl-tune
# They check that the tools run, parse their options, write valid JSON/CSV, that the
# self-test's exit status follows a failing device (FACL_SELFTEST_INJECT_FAILURE), that
# the self-test runs its KV-cache and backward families, that facl-bench --decode measures
# every cache layout (and skips what the device cannot hold), that facl-bench --bwd times
# and checks the backward, that facl-bench --host-cost times calls on the host, that the
# table and chart scripts
# turn the benchmark's JSON into a table and a PNG, and that facl-tune --quick writes a
# tuning entry that the library then uses (docs/TUNING.md).
# Kept under a minute on a 2-core PoCL machine: quick sets, one tiny bench point.
set -u

selftest=$1
bench=$2
table=$3
plot=$4
tune=$5
if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 is needed to validate the JSON and CSV output"
    exit 77
fi
tmp=$(mktemp -d "${FACL_TEST_TMPDIR:-${TMPDIR:-/tmp}}/facl-tools.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

pass() {
    echo "ok:   $*"
}

# Runs "$@" with stdout/stderr in $tmp/out and $tmp/err; sets $rc.
run() {
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}

show() {
    echo "---- stdout"; tail -n 40 "$tmp/out"
    echo "---- stderr"; tail -n 20 "$tmp/err"
}

# 1. -l lists at least one device as "P:D".
run "$selftest" -l
if [ "$rc" -eq 0 ] && grep -Eq '^ +[0-9]+:[0-9]+ ' "$tmp/out"; then
    pass "facl-selftest -l lists devices"
else
    fail "facl-selftest -l (exit $rc)"; show
fi

# 2. --quick on the library's default device passes, exits 0, and its JSON parses and
#    says so.
run "$selftest" -d default --quick --json "$tmp/selftest.json"
if [ "$rc" -eq 0 ] && grep -q 'summary: 1 of 1 device passed' "$tmp/out"; then
    pass "facl-selftest -d default --quick passes"
else
    fail "facl-selftest -d default --quick (exit $rc)"; show
fi
if python3 -m json.tool "$tmp/selftest.json" >/dev/null &&
   python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["passed"] and len(d["devices"]) == 1 and d["devices"][0]["checks"] else 1)' "$tmp/selftest.json"; then
    pass "facl-selftest --json writes valid JSON"
else
    fail "facl-selftest --json output"; head -n 40 "$tmp/selftest.json"
fi

# 2b. The KV-cache family (facl_fwd_kvcache: dense decode with an append and rotary, a
#     paged causal chunk, split-KV) is part of the checks: its rows print and pass.
if grep -Eq '^[^ ]+ +pass .* kvcache .*dense.* new=1 rot=' "$tmp/out" &&
   grep -Eq '^[^ ]+ +pass .* kvcache .* sq=5 paged=16 ' "$tmp/out" &&
   grep -Eq '^[^ ]+ +pass .* kvcache .* splits=3' "$tmp/out" &&
   python3 - "$tmp/selftest.json" <<'PY'
import json, sys
checks = json.load(open(sys.argv[1]))["devices"][0]["checks"]
kv = [c for c in checks if c["family"] == "kvcache"]
assert len(kv) >= 3 and all(c["pass"] for c in kv), kv
assert all(c["error"] <= c["bound"] or c["rule"] == "relL2" for c in kv), kv
PY
then
    pass "facl-selftest runs and passes the KV-cache family"
else
    fail "facl-selftest KV-cache family"; grep -E 'kvcache|->' "$tmp/out"
fi

# 2c. The backward family (facl_bwd, facl_bwd_qkvpacked, facl_varlen_bwd: fp16 causal GQA,
#     bf16 d=128 softcap, fp32 varlen dropout) is part of the checks: its rows print and
#     pass with dq/dk/dv within SPEC.md's bound, and the backward has a speed figure.
if grep -Eq '^[^ ]+ +pass .* bwd dense f16 d=64 h=6/2 .* causal' "$tmp/out" &&
   grep -Eq '^[^ ]+ +pass .* bwd qkvpacked bf16 d=128 .* softcap=' "$tmp/out" &&
   grep -Eq '^[^ ]+ +pass .* bwd varlen f32 d=40 .* dropout=' "$tmp/out" &&
   grep -Eq '^[^ ]+ +bwd +[0-9.]+ +[0-9.]+ +[0-9]+ +facl_bwd ' "$tmp/out" &&
   python3 - "$tmp/selftest.json" <<'PY'
import json, sys
dev = json.load(open(sys.argv[1]))["devices"][0]
bwd = [c for c in dev["checks"] if c["family"] == "bwd"]
assert len(bwd) >= 3 and all(c["pass"] for c in bwd), bwd
assert all(c["worst_output"] in ("dq", "dk", "dv") for c in bwd), bwd
assert all(c["error"] <= c["bound"] for c in bwd), bwd
speed = [s for s in dev["speed"] if s["family"] == "bwd"]
assert len(speed) == 1 and speed[0]["ok"] and speed[0]["tflops"] > 0, speed
PY
then
    pass "facl-selftest runs and passes the backward family"
else
    fail "facl-selftest backward family"; grep -E ' bwd |->' "$tmp/out"
fi

# 3. --json - writes only JSON to stdout.
run "$selftest" -d default --quick --no-speed --json -
if [ "$rc" -eq 0 ] && python3 -m json.tool "$tmp/out" >/dev/null; then
    pass "facl-selftest --json - writes JSON to stdout"
else
    fail "facl-selftest --json - (exit $rc)"; show
fi

# 4. Usage errors: an unknown option and a device that does not exist.
run "$selftest" --no-such-option
if [ "$rc" -ne 0 ] && grep -q 'unknown option' "$tmp/err"; then
    pass "facl-selftest rejects an unknown option (exit $rc)"
else
    fail "facl-selftest --no-such-option (exit $rc)"; show
fi
run "$selftest" -d 99:99 --quick
if [ "$rc" -ne 0 ] && [ -s "$tmp/err" ]; then
    pass "facl-selftest -d 99:99 fails (exit $rc)"
else
    fail "facl-selftest -d 99:99 (exit $rc)"; show
fi
run "$selftest" --json
if [ "$rc" -ne 0 ] && grep -q 'needs a value' "$tmp/err"; then
    pass "facl-selftest --json without a value fails (exit $rc)"
else
    fail "facl-selftest --json without a value (exit $rc)"; show
fi

# 5. A failing check makes the exit status non-zero and shows FAIL.
FACL_SELFTEST_INJECT_FAILURE=1 run "$selftest" -d default --quick --no-speed
if [ "$rc" -ne 0 ] && grep -q 'FAIL' "$tmp/out"; then
    pass "facl-selftest exits non-zero when a check fails (exit $rc)"
else
    fail "facl-selftest with an injected failure (exit $rc)"; show
fi

# 6. The benchmark on a tiny grid writes valid JSON and CSV.
run "$bench" --tokens 1024 --seqlens 256 --hdims 64 --dtypes fp32 --causal off --reps 2 \
    --json "$tmp/bench.json" --csv "$tmp/bench.csv"
if [ "$rc" -eq 0 ]; then
    pass "facl-bench tiny grid runs"
else
    fail "facl-bench tiny grid (exit $rc)"; show
fi
if python3 - "$tmp/bench.json" "$tmp/bench.csv" <<'PY'
import csv, json, sys
d = json.load(open(sys.argv[1]))
rows = d["rows"]
ours = [r for r in rows if r["impl"] == "facl"]
assert len(ours) == 1 and ours[0]["status"] == "ok" and ours[0]["tflops"] > 0, ours
assert {r["impl"] for r in rows} == {"facl", "clblast"}, rows
c = list(csv.DictReader(open(sys.argv[2])))
assert len(c) == 2 and c[0]["impl"] == "facl" and float(c[0]["tflops"]) > 0, c
PY
then
    pass "facl-bench --json and --csv are valid"
else
    fail "facl-bench output"; head -n 40 "$tmp/bench.json" "$tmp/bench.csv"
fi

# 6a. --portable-kernel unpacked,packed times both variants of the CPU kernel side by
#     side (on a GPU the CPU choice changes nothing, and both rows still come out), each
#     row named by its variant; an unknown name is refused.
run "$bench" --tokens 512 --seqlens 256 --hdims 64 --dtypes fp32 --causal off --reps 1 \
    --baseline off --portable-kernel unpacked,packed --json "$tmp/bench_pk.json"
if [ "$rc" -eq 0 ] && python3 - "$tmp/bench_pk.json" <<'PY'
import json, sys
rows = [r for r in json.load(open(sys.argv[1]))["rows"] if r["impl"] == "facl"]
assert [r.get("portable_kernel") for r in rows] == ["unpacked", "packed"], rows
assert all(r["status"] == "ok" and r["tflops"] > 0 for r in rows), rows
PY
then
    pass "facl-bench --portable-kernel unpacked,packed"
else
    fail "facl-bench --portable-kernel unpacked,packed (exit $rc)"; show
fi
run "$bench" --portable-kernel tiled
if [ "$rc" -ne 0 ] && grep -q "expected previous, blocked, unpacked or packed" "$tmp/err"; then
    pass "facl-bench refuses an unknown --portable-kernel"
else
    fail "facl-bench --portable-kernel tiled (exit $rc)"; show
fi

# 6b. tools/bench_table.py turns that JSON into a Markdown row per point, and
#     tools/plot_bench.sh into a PNG (where gnuplot is installed; bootstrap.sh installs it).
run python3 "$table" "$tmp/bench.json"
if [ "$rc" -eq 0 ] && grep -q '^| dtype | d | seqlen' "$tmp/out" && grep -q '^| fp32 | 64 | 256 | off | [0-9]' "$tmp/out"; then
    pass "bench_table.py prints the table"
else
    fail "bench_table.py (exit $rc)"; show
fi
if command -v gnuplot >/dev/null 2>&1; then
    run sh "$plot" "$tmp/bench.json" -o "$tmp/charts"
    if [ "$rc" -eq 0 ] && [ -s "$tmp/charts/bench_fp32_d64_noncausal.png" ]; then
        pass "plot_bench.sh draws a chart"
    else
        fail "plot_bench.sh (exit $rc)"; show
    fi
else
    echo "note: gnuplot not installed, plot_bench.sh not exercised"
fi

# 7. The baseline's chunked path (score matrices beyond CLBlast's 32-bit indexing are
#    split over sub-buffers), forced with a tiny chunk limit, still agrees with facl.
FACL_BENCH_CHUNK_ELEMENTS=40000 run "$bench" --tokens 128 --seqlens 128 --hdims 64 \
    --dtypes fp32 --causal on --reps 1 --json "$tmp/chunk.json"
if [ "$rc" -eq 0 ] && python3 - "$tmp/chunk.json" "$tmp/out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
if d["clblast_status"] != "available":
    sys.exit(0)  # built without CLBlast: nothing to check
base = [r for r in d["rows"] if r["impl"] == "clblast"]
assert base and base[0]["status"] == "ok", base
assert "max |diff|" in open(sys.argv[2]).read() and "MISMATCH" not in open(sys.argv[2]).read()
PY
then
    pass "facl-bench chunked CLBlast baseline agrees with facl"
else
    fail "facl-bench chunked baseline (exit $rc)"; show
fi

# 7b. The benchmark exits non-zero, saying why, when the library cannot run on the device
#     (here: a kernel path that does not exist, forced through FACL_KERNEL_PATH).
FACL_KERNEL_PATH=no-such-path run "$bench" --tokens 256 --seqlens 256 --hdims 64 --dtypes fp32 \
    --causal off --reps 1
if [ "$rc" -eq 1 ] && grep -q 'FACL_KERNEL_PATH' "$tmp/err"; then
    pass "facl-bench fails on a device the library cannot use (exit $rc)"
else
    fail "facl-bench on an unusable device (exit $rc)"; show
fi

# 7c. Decode: facl_fwd_kvcache with seqlen_q 1 on a tiny grid, every cache layout
#     (contiguous, paged 16, paged 256) and the facl_fwd row, checked before timing;
#     JSON rows carry torch_sdpa.py --decode's field names, and bench_table.py joins them
#     with torch's rows.
run "$bench" --decode --batch 2 --kv-lens 64 --hdims 64 --dtypes fp16 --reps 1 \
    --copy-gbps 100 --flush-mib 1 --json "$tmp/decode.json" --csv "$tmp/decode.csv"
if [ "$rc" -eq 0 ] && grep -q '^dtype hdim  kv_len batch  heads layout' "$tmp/out" &&
   grep -q '^flush before each run: 1 MiB (device time' "$tmp/out" &&
   grep -Eq '^fp16 +64 +64 +2 +32/8 contiguous +auto \| +[0-9.]+ +[0-9.]+ +[0-9.]+% \| [0-9.e+-]+/' "$tmp/out" &&
   grep -Eq '^fp16 +64 +64 +2 +32/8 paged 16 +auto \| +[0-9.]+ ' "$tmp/out" &&
   grep -Eq '^fp16 +64 +64 +2 +32/8 paged 256 +auto \| +[0-9.]+ ' "$tmp/out" &&
   grep -Eq '^fp16 +64 +64 +2 +32/8 facl_fwd +- \| +[0-9.]+ ' "$tmp/out"; then
    pass "facl-bench --decode tiny grid runs and prints the decode table"
else
    fail "facl-bench --decode tiny grid (exit $rc)"; show
fi
cat >"$tmp/torch_decode.json" <<'JSON'
{"torch": "test", "device": "none", "rows": [{"kind": "decode", "dtype": "float16", "hdim": 64,
 "seqlen_k": 64, "batch": 2, "heads": 32, "heads_kv": 8, "kv_order": "shd", "ms": 0.01,
 "gb_per_s": 50.0}]}
JSON
if python3 - "$tmp/decode.json" "$tmp/decode.csv" <<'PY'
import csv, json, sys
d = json.load(open(sys.argv[1]))
rows = d["rows"]
assert d["mode"] == "decode" and len(rows) == 4, rows
assert d["flush_mib"] == 1 and "flush" in d, d
for r in rows:
    for f in ("kind", "dtype", "hdim", "seqlen_k", "batch", "heads", "heads_kv", "page_size",
              "num_splits", "ms", "gb_per_s"):
        assert f in r, (f, r)
    assert r["kind"] == "decode" and r["status"] == "ok" and r["gb_per_s"] > 0, r
    assert r["check_error"] is not None and r["check_error"] <= r["check_bound"], r
assert sorted((r["layout"], r["page_size"]) for r in rows) == \
    [("contiguous", 0), ("fwd", 0), ("paged", 16), ("paged", 256)], rows
c = list(csv.DictReader(open(sys.argv[2])))
assert len(c) == 4 and all(float(x["gb_per_s"]) > 0 for x in c), c
PY
then
    pass "facl-bench --decode --json and --csv are valid"
else
    fail "facl-bench --decode output"; head -n 60 "$tmp/decode.json" "$tmp/decode.csv"
fi
run python3 "$table" "$tmp/decode.json" --torch "$tmp/torch_decode.json" --copy-gbps 100
if [ "$rc" -eq 0 ] && grep -q '^| dtype | d | kv_len | batch | heads | contiguous GB/s | paged16 GB/s | paged256 GB/s | facl_fwd GB/s | torch GB/s | facl/torch | paged16/contiguous | contiguous % copy' "$tmp/out" &&
   grep -Eq '^\| fp16 \| 64 \| 64 \| 2 \| 32/8 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| 50.00 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+% \| 50.0% \|$' "$tmp/out"; then
    pass "bench_table.py prints the decode table joined with torch's rows"
else
    fail "bench_table.py decode table (exit $rc)"; show
fi

# 7c2. Both row orders of the cache (--kv-order shd,hsd: the hsd rows are strided views of
#      (.., kv head, position, d) storage), pages in memory order, each point checked
#      against the keys read back in its own order; bench_table.py joins torch's rows of
#      the same order only.
run "$bench" --decode --batch 2 --kv-lens 40 --hdims 64 --dtypes fp16 --reps 1 --pages 0,16 \
    --kv-order shd,hsd --page-order sequential --forward-row off --flush-mib 1 \
    --json "$tmp/decode_orders.json"
if [ "$rc" -eq 0 ] && grep -q '^pages: *in memory order' "$tmp/out" &&
   grep -Eq '^fp16 +64 +40 +2 +32/8 contig hsd +auto \| +[0-9.]+ +[0-9.]+ +- \| [0-9.e+-]+/' "$tmp/out" &&
   grep -Eq '^fp16 +64 +40 +2 +32/8 paged 16 hsd +auto \| +[0-9.]+ +[0-9.]+ +- \| [0-9.e+-]+/' "$tmp/out" &&
   grep -Eq '^fp16 +64 +40 +2 +32/8 paged 16 +auto \| +[0-9.]+ ' "$tmp/out"; then
    pass "facl-bench --decode --kv-order shd,hsd --page-order sequential runs and checks both orders"
else
    fail "facl-bench --decode --kv-order (exit $rc)"; show
fi
cat >"$tmp/torch_orders.json" <<'JSON'
{"torch": "test", "device": "none", "rows": [{"kind": "decode", "dtype": "float16", "hdim": 64,
 "seqlen_k": 40, "batch": 2, "heads": 32, "heads_kv": 8, "kv_order": "hsd", "ms": 0.01,
 "gb_per_s": 40.0}]}
JSON
run python3 "$table" "$tmp/decode_orders.json" --torch "$tmp/torch_orders.json"
if [ "$rc" -eq 0 ] && grep -q '^| dtype | d | kv_len | batch | heads | rows | contiguous GB/s' "$tmp/out" &&
   grep -Eq '^\| fp16 \| 64 \| 40 \| 2 \| 32/8 \| hsd \| [0-9.]+ \| [0-9.]+ \| 40.00 \| [0-9.]+ \|' "$tmp/out" &&
   grep -Eq '^\| fp16 \| 64 \| 40 \| 2 \| 32/8 \| shd \| [0-9.]+ \| [0-9.]+ \| - \| - \|' "$tmp/out" &&
   grep -q '^torch: no rows of row order shd' "$tmp/out"; then
    pass "bench_table.py joins torch's decode rows of the same row order only"
else
    fail "bench_table.py decode rows by order (exit $rc)"; show
fi

# 7c3. The lengths as one host value (--cache-lens value, as a call over whole caches has
#      them): said in the header and the JSON, each point still checked; a bad word refused.
run "$bench" --decode --batch 2 --kv-lens 40 --hdims 64 --dtypes fp16 --reps 1 --pages 0,16 \
    --cache-lens value --forward-row off --flush-mib 1 --json "$tmp/decode_lens.json"
if [ "$rc" -eq 0 ] && grep -q '^lengths: *cache_seqlens_value' "$tmp/out" &&
   grep -Eq '^fp16 +64 +40 +2 +32/8 contiguous +auto \| +[0-9.]+ +[0-9.]+ +- \| [0-9.e+-]+/' "$tmp/out" &&
   grep -Eq '^fp16 +64 +40 +2 +32/8 paged 16 +auto \| +[0-9.]+ +[0-9.]+ +- \| [0-9.e+-]+/' "$tmp/out" &&
   grep -q '"lens_as_value": true' "$tmp/decode_lens.json"; then
    pass "facl-bench --decode --cache-lens value runs and checks with the host value"
else
    fail "facl-bench --decode --cache-lens value (exit $rc)"; show
fi
run "$bench" --decode --cache-lens buffers
if [ "$rc" -ne 0 ] && grep -q "^--cache-lens: expected buffer or value, got 'buffers'" "$tmp/err"; then
    pass "facl-bench --cache-lens refuses an unknown word"
else
    fail "facl-bench --cache-lens buffers (exit $rc)"; show
fi

# 7d. A decode point whose cache cannot be one buffer on the device is a skip that says
#     so (CL_DEVICE_MAX_MEM_ALLOC_SIZE), not a crash or an allocation attempt.
run "$bench" --decode --batch 1024 --kv-lens 1048576 --hdims 256 --dtypes fp32 --pages 0 \
    --forward-row off --reps 1
if [ "$rc" -eq 0 ] && grep -q 'skip: a k/v cache buffer of .*(CL_DEVICE_MAX_MEM_ALLOC_SIZE' "$tmp/out"; then
    pass "facl-bench --decode skips a cache larger than the device's largest buffer"
else
    fail "facl-bench --decode oversized cache (exit $rc)"; show
fi

# 7e. --flush-mib 0 turns the fill off (the span then includes the host's call overhead).
run "$bench" --decode --batch 1 --kv-lens 16 --hdims 64 --dtypes fp16 --pages 0 --forward-row off \
    --reps 1 --flush-mib 0
if [ "$rc" -eq 0 ] && grep -q '^flush before each run: 0 MiB (off' "$tmp/out"; then
    pass "facl-bench --decode --flush-mib 0 measures with the host's overhead"
else
    fail "facl-bench --decode --flush-mib 0 (exit $rc)"; show
fi

# 7e2. --flush-read on: the filled buffer is read back before each timed run (the caches'
#      lines clean); said in the header and in the JSON; off in the JSON of 7c3's run.
run "$bench" --decode --batch 1 --kv-lens 16 --hdims 64 --dtypes fp16 --pages 0 --forward-row off \
    --reps 1 --flush-mib 1 --flush-read on --json "$tmp/decode_read.json"
if [ "$rc" -eq 0 ] && grep -q '^flush read: on' "$tmp/out" &&
   python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["flush_read"] is True' "$tmp/decode_read.json" &&
   python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["flush_read"] is False' "$tmp/decode_lens.json"; then
    pass "facl-bench --decode --flush-read on reads the flush buffer back"
else
    fail "facl-bench --decode --flush-read on (exit $rc)"; show
fi
run "$bench" --decode --batch 1 --kv-lens 16 --hdims 64 --dtypes fp16 --pages 0 --forward-row off \
    --reps 1 --flush-mib 0 --flush-read on
if [ "$rc" -ne 0 ] && grep -q -- "--flush-read on reads back the flush buffer, and there is none (--flush-mib 0)" "$tmp/err"; then
    pass "facl-bench --flush-read on without a flush is refused"
else
    fail "facl-bench --flush-read on --flush-mib 0 (exit $rc)"; show
fi
run "$bench" --decode --batch 1 --kv-lens 16 --flush-read maybe
if [ "$rc" -ne 0 ] && grep -q -- "--flush-read: expected on or off, got 'maybe'" "$tmp/err"; then
    pass "facl-bench --flush-read refuses a value other than on or off"
else
    fail "facl-bench --flush-read maybe (exit $rc)"; show
fi

# 7f. Backward: facl_bwd on a tiny forward grid (one head dim, two seqlens, causal off and
#     on), each point checked (dq rows vs float64) before timing; JSON rows carry
#     torch_sdpa.py --bwd's field names (bwd_ms, bwd_tflops) to join with its rows, and
#     the mode (opts.deterministic, default 0; the det column).
run "$bench" --bwd --tokens 256 --seqlens 64,128 --hdims 64 --dtypes fp16 --reps 1 \
    --json "$tmp/bwd.json" --csv "$tmp/bwd.csv"
if [ "$rc" -eq 0 ] && grep -q '^backward: facl_bwd, 256 tokens' "$tmp/out" &&
   grep -q '^dtype hdim causal  seqlen batch heads det | *bwd ms bwd TFLOP/s' "$tmp/out" &&
   grep -Eq '^fp16 +64 +off +64 +4 +32 +0 \| +[0-9.]+ +[0-9.]+ +1 \| [0-9.e+-]+/' "$tmp/out" &&
   grep -Eq '^fp16 +64 +on +128 +2 +32 +0 \| +[0-9.]+ +[0-9.]+ +1 \| [0-9.e+-]+/' "$tmp/out"; then
    pass "facl-bench --bwd tiny grid runs and prints the backward table"
else
    fail "facl-bench --bwd tiny grid (exit $rc)"; show
fi
if python3 - "$tmp/bwd.json" "$tmp/bwd.csv" <<'PY'
import csv, json, sys
d = json.load(open(sys.argv[1]))
rows = d["rows"]
assert d["mode"] == "bwd" and len(rows) == 4, rows
for r in rows:
    for f in ("dtype", "hdim", "seqlen", "batch", "heads", "causal", "bwd_ms", "bwd_tflops"):
        assert f in r, (f, r)
    assert r["kind"] == "bwd" and r["status"] == "ok" and r["bwd_tflops"] > 0, r
    assert r["check_error"] is not None and r["check_error"] <= r["check_bound"], r
assert sorted((r["seqlen"], r["causal"]) for r in rows) == \
    [(64, False), (64, True), (128, False), (128, True)], rows
assert all(r["deterministic"] is False for r in rows), rows
c = list(csv.DictReader(open(sys.argv[2])))
assert len(c) == 4 and all(float(x["bwd_tflops"]) > 0 for x in c), c
assert all(x["deterministic"] == "false" for x in c), c
PY
then
    pass "facl-bench --bwd --json and --csv are valid"
else
    fail "facl-bench --bwd output"; head -n 60 "$tmp/bwd.json" "$tmp/bwd.csv"
fi
#     bench_table.py joins the backward rows with torch_sdpa.py --bwd's (one made-up torch
#     row: its point gets torch's figure and a ratio, the others "-").
cat >"$tmp/torch_bwd.json" <<'JSON'
{"torch": "test", "device": "none", "rows": [{"kind": "fwd", "dtype": "float16", "hdim": 64,
 "seqlen": 64, "batch": 4, "heads": 32, "causal": false, "ms": 0.01, "tflops": 1.0,
 "bwd_ms": 0.02, "bwd_tflops": 2.0}]}
JSON
run python3 "$table" "$tmp/bwd.json" --torch "$tmp/torch_bwd.json"
if [ "$rc" -eq 0 ] && grep -q '^| dtype | d | seqlen | causal | facl bwd TFLOP/s | torch bwd TFLOP/s | facl/torch |$' "$tmp/out" &&
   grep -Eq '^\| fp16 \| 64 \| 64 \| off \| [0-9.]+ \| 2.000 \| [0-9.]+ \|$' "$tmp/out" &&
   grep -Eq '^\| fp16 \| 64 \| 128 \| on \| [0-9.]+ \| - \| - \|$' "$tmp/out"; then
    pass "bench_table.py prints the backward table joined with torch's rows"
else
    fail "bench_table.py backward table (exit $rc)"; show
fi

# 7g. Host cost: host microseconds per call of a decode through facl_fwd_kvcache, the same
#     through facl_fwd, and a short prefill chunk (a few calls, one round).
run "$bench" --host-cost --kv-lens 64 --hdims 64 --dtypes fp32 --calls 5 --reps 1
if [ "$rc" -eq 0 ] && grep -q '^host time per call: wall time from entering the call' "$tmp/out" &&
   grep -Eq '^facl_fwd_kvcache +fp32 +64 +1 +8/2 +1 +64 \| +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ \| +[0-9.]+$' "$tmp/out" &&
   grep -Eq '^facl_fwd +fp32 +64 +1 +8/2 +1 +64 \| +[0-9.]+ ' "$tmp/out" &&
   grep -Eq '^facl_fwd +fp32 +64 +1 +8/2 +64 +64 \| +[0-9.]+ ' "$tmp/out"; then
    pass "facl-bench --host-cost prints host microseconds per call"
else
    fail "facl-bench --host-cost (exit $rc)"; show
fi

# 8. The benchmark rejects bad options.
run "$bench" --dtypes fp8
if [ "$rc" -ne 0 ] && grep -q 'unknown dtype' "$tmp/err"; then
    pass "facl-bench rejects --dtypes fp8 (exit $rc)"
else
    fail "facl-bench --dtypes fp8 (exit $rc)"; show
fi
run "$bench" --kv-lens 64
if [ "$rc" -eq 2 ] && grep -q -- '--kv-lens needs --decode' "$tmp/err"; then
    pass "facl-bench rejects a decode option without --decode (exit $rc)"
else
    fail "facl-bench --kv-lens without --decode (exit $rc)"; show
fi
run "$bench" --decode --heads 6 --heads-kv 4
if [ "$rc" -eq 2 ] && grep -q 'not a multiple of --heads-kv' "$tmp/err"; then
    pass "facl-bench --decode rejects heads not a multiple of heads_kv (exit $rc)"
else
    fail "facl-bench --decode --heads 6 --heads-kv 4 (exit $rc)"; show
fi

run "$bench" --bwd --kv-lens 64
if [ "$rc" -eq 2 ] && grep -q -- '--kv-lens needs --decode' "$tmp/err"; then
    pass "facl-bench --bwd rejects a decode option (exit $rc)"
else
    fail "facl-bench --bwd --kv-lens (exit $rc)"; show
fi
# --deterministic 0,1 measures each point in both modes (a row each, checked), and the
# table tells them apart; it needs --bwd, and takes 0 and 1 only.
run "$bench" --bwd --tokens 128 --seqlens 64 --hdims 64 --dtypes fp16 --causal on --reps 1 \
    --deterministic 0,1 --json "$tmp/bwd_modes.json"
if [ "$rc" -eq 0 ] && grep -Eq '^fp16 +64 +on +64 +2 +32 +0 \| +[0-9.]+ +[0-9.]+ +1 \| [0-9.e+-]+/' "$tmp/out" &&
   grep -Eq '^fp16 +64 +on +64 +2 +32 +1 \| +[0-9.]+ +[0-9.]+ +1 \| [0-9.e+-]+/' "$tmp/out" &&
   python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))["rows"]; assert [x["deterministic"] for x in r] == [False, True] and all(x["status"] == "ok" for x in r), r' "$tmp/bwd_modes.json" &&
   python3 "$table" "$tmp/bwd_modes.json" > "$tmp/modes_table" &&
   grep -q '^| dtype | d | seqlen | causal | det | facl bwd TFLOP/s |$' "$tmp/modes_table" &&
   grep -Eq '^\| fp16 \| 64 \| 64 \| on \| 1 \| [0-9.]+ \|$' "$tmp/modes_table"; then
    pass "facl-bench --bwd --deterministic 0,1 measures both modes"
else
    fail "facl-bench --bwd --deterministic 0,1 (exit $rc)"; show; cat "$tmp/modes_table"
fi
run "$bench" --deterministic 1
if [ "$rc" -eq 2 ] && grep -q -- '--deterministic needs --bwd' "$tmp/err"; then
    pass "facl-bench rejects --deterministic without --bwd (exit $rc)"
else
    fail "facl-bench --deterministic without --bwd (exit $rc)"; show
fi
run "$bench" --bwd --deterministic 2
if [ "$rc" -eq 2 ] && grep -q -- '--deterministic: expected 0 and/or 1' "$tmp/err"; then
    pass "facl-bench --bwd rejects --deterministic 2 (exit $rc)"
else
    fail "facl-bench --bwd --deterministic 2 (exit $rc)"; show
fi
run "$bench" --bwd --baseline on
if [ "$rc" -eq 2 ] && grep -q -- '--baseline does not apply to --bwd' "$tmp/err"; then
    pass "facl-bench --bwd rejects --baseline (exit $rc)"
else
    fail "facl-bench --bwd --baseline on (exit $rc)"; show
fi
run "$bench" --host-cost --pages 16
if [ "$rc" -eq 2 ] && grep -q -- '--pages does not apply to --host-cost' "$tmp/err"; then
    pass "facl-bench --host-cost rejects a decode-only option (exit $rc)"
else
    fail "facl-bench --host-cost --pages 16 (exit $rc)"; show
fi
run "$bench" --calls 10
if [ "$rc" -eq 2 ] && grep -q -- '--calls needs --host-cost' "$tmp/err"; then
    pass "facl-bench rejects --calls without --host-cost (exit $rc)"
else
    fail "facl-bench --calls without --host-cost (exit $rc)"; show
fi
run "$bench" --bwd --decode
if [ "$rc" -eq 2 ] && grep -q 'different modes' "$tmp/err"; then
    pass "facl-bench rejects --bwd with --decode (exit $rc)"
else
    fail "facl-bench --bwd --decode (exit $rc)"; show
fi

# 9. The tuner: --quick on the default device, with a disk cache of its own so that the
#    entry lands where the library looks for it (<cache>/tuning/<vendor>-<device>.txt)
#    without touching the cache the other tests share. Candidate 2 is made to fail: it is
#    reported, never chosen, and the others still run. Then the library picks the file
#    up: facl-selftest --info shows it applied, with the file's values.
unset FACL_TUNING_FILE
FACL_CACHE_DIR="$tmp/tune-cache" FACL_TUNE_INJECT_FAILURE=2 run "$tune" -d default --quick
tuned=$(ls "$tmp"/tune-cache/tuning/*.txt 2>/dev/null | head -n 1)
tuned_line=$(grep -A1 '^line for src/tuning_db.c' "$tmp/out" | tail -n 1)
if [ "$rc" -eq 0 ] && [ -n "$tuned" ] && grep -q '^best: ' "$tmp/out" &&
   grep -Eq '^ +2 .* WRONG +-> failure injected' "$tmp/out" &&
   grep -Eq '^ +1 .*\(table\) +pass +[0-9.]+ ' "$tmp/out" &&
   grep -q "^wrote $tuned " "$tmp/out" &&
   grep -Eq '^    \{"[a-z]+", "[^"]*", "[^"]+", \{\[D64\] = \{\.[a-z_]+ = [0-9]+' "$tmp/out" &&
   grep -q '^format = 1$' "$tuned" && grep -Eq '^d64\.[a-z_]+ = [0-9]+$' "$tuned" &&
   [ "$(stat -c %a "$tuned")" = 600 ]; then
    pass "facl-tune --quick writes an entry and its table line"
else
    fail "facl-tune --quick (exit $rc)"; show; ls -lR "$tmp/tune-cache" 2>&1 | tail -n 5
fi
FACL_CACHE_DIR="$tmp/tune-cache" run "$selftest" -d default --info --json "$tmp/tuned.json"
if [ "$rc" -eq 0 ] && grep -q "^   tuning override    applied $tuned\$" "$tmp/out" &&
   python3 - "$tmp/tuned.json" "$tuned" <<'PY'
import json, re, sys
t = json.load(open(sys.argv[1]))["devices"][0]["tuning"]
assert t["override"] == "applied" and t["override_file"] == sys.argv[2], t
values = re.findall(r"^(d\d+)\.(\w+) = (\d+)$", open(sys.argv[2]).read(), re.M)
assert values, "no values in the file"
for cls, field, value in values:
    assert t[cls][field] == int(value), (cls, field, value, t)
PY
then
    pass "the library uses the tuned entry (facl-selftest --info)"
else
    fail "the tuned entry is not applied (exit $rc)"; show; cat "$tuned"
fi

# 9a. --print-line turns the file back into the table line the tuner printed.
run "$tune" --print-line "$tuned"
if [ "$rc" -eq 0 ] && [ -n "$tuned_line" ] && [ "$(cat "$tmp/out")" = "$tuned_line" ]; then
    pass "facl-tune --print-line gives the tuner's table line"
else
    fail "facl-tune --print-line (exit $rc, expected '$tuned_line')"; show
fi
run "$tune" --print-line "$tmp/no-such-file.txt"
if [ "$rc" -eq 1 ] && grep -q 'no-such-file.txt: no such file' "$tmp/err"; then
    pass "facl-tune --print-line of a missing file fails (exit $rc)"
else
    fail "facl-tune --print-line of a missing file (exit $rc)"; show
fi

# 9b. A bad override file changes nothing and says why; the self-test still passes.
printf 'format = 1\nvendor = pocl\nd64.cpu_rows = 6\n' >"$tmp/bad-tuning.txt"
FACL_TUNING_FILE="$tmp/bad-tuning.txt" run "$selftest" -d default --info
if [ "$rc" -eq 0 ] && grep -q "^   tuning override    ignored $tmp/bad-tuning.txt: line 3: d64.cpu_rows = 6: must be a multiple of 4" "$tmp/out"; then
    pass "a bad tuning file is ignored with its reason"
else
    fail "a bad tuning file (exit $rc)"; show
fi

# 9c. Usage errors of the tuner.
run "$tune" --path nvidia-mma
if [ "$rc" -eq 2 ] && grep -q -- '--path takes portable-gpu or portable-cpu' "$tmp/err"; then
    pass "facl-tune rejects a path without tuning parameters (exit $rc)"
else
    fail "facl-tune --path nvidia-mma (exit $rc)"; show
fi
run "$tune" --hdim 300
if [ "$rc" -eq 2 ] && grep -q -- '--hdim: at most 256' "$tmp/err"; then
    pass "facl-tune rejects --hdim 300 (exit $rc)"
else
    fail "facl-tune --hdim 300 (exit $rc)"; show
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures tool smoke test(s) failed"
    exit 1
fi
echo "all tool smoke tests passed"
