#!/bin/sh
# Smoke tests of the command-line tools, run by meson:
#   sh tests/test_tools.sh path/to/facl-selftest path/to/facl-bench tools/bench_table.py tools/plot_bench.sh
# They check that the tools run, parse their options, write valid JSON/CSV, that the
# self-test's exit status follows a failing device (FACL_SELFTEST_INJECT_FAILURE), and
# that the table and chart scripts turn the benchmark's JSON into a table and a PNG.
# Kept under a minute on a 2-core PoCL machine: quick sets, one tiny bench point.
set -u

selftest=$1
bench=$2
table=$3
plot=$4
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

# 8. The benchmark rejects bad options.
run "$bench" --dtypes fp8
if [ "$rc" -ne 0 ] && grep -q 'unknown dtype' "$tmp/err"; then
    pass "facl-bench rejects --dtypes fp8 (exit $rc)"
else
    fail "facl-bench --dtypes fp8 (exit $rc)"; show
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures tool smoke test(s) failed"
    exit 1
fi
echo "all tool smoke tests passed"
