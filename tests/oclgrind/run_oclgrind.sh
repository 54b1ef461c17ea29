#!/bin/sh
# Run a program with Oclgrind as its OpenCL implementation and fail on any diagnostic.
#
#   run_oclgrind.sh [--expect-diagnostic] [--no-uninitialized] [--no-data-races] OCLGRIND PROGRAM [ARGS...]
#
# Oclgrind 21.10 exits 0 even when it reports an error, so this script decides:
#   - every message of Oclgrind's logger (invalid accesses, data races, uninitialised
#     values, barrier and work-group divergence, unaligned accesses, fatal errors
#     during a kernel, "N errors generated") goes to a log of its own; any byte in that
#     log fails the run;
#   - what Oclgrind writes straight to the program's stderr (API errors of --check-api,
#     "OCLGRIND FATAL ERROR" while building, "[Oclgrind] ..." from the launcher) fails
#     the run too: any output line starting with Oclgrind, [Oclgrind] or OCLGRIND;
#   - the program must exit 0, and must have run on Oclgrind: its output has a line
#     "device: Oclgrind..." (tests/case_suite.c) or "platform: Oclgrind..." (the
#     self-check program); otherwise nothing was checked.
# Exit status: 0 pass, 1 fail, 77 (meson's skip) where oclgrind is not installed.
#
# With --expect-diagnostic the verdict is inverted for the self-check: exit 0 only if the
# program ran on Oclgrind, exited 0, and a diagnostic was found.
#
# Oclgrind options, fixed here so that every caller checks the same things:
#   --build-options -cl-opt-disable  appended to the program's build options: at its
#       default -Oz, Oclgrind 21.10 mis-executes LLVM's freeze and a 2-bit truncation
#       (the Philox lane select), wrong results with no diagnostic;
#   --data-races --uninitialized --check-api  the optional checks; --no-uninitialized
#       drops the middle one for a kernel where Oclgrind 21.10's uninitialised-value
#       plugin itself dies (exit 255, no message): the tensor-core KV-cache kernel's
#       emulation (attn_cache_mma.cl), whose races and accesses are still checked;
#       --no-data-races drops the first for a kernel whose work-groups order their
#       global accesses through atomics and fences (the KV-cache kernel merging its
#       splits itself): Oclgrind 21.10 reports every cross-work-group read after write
#       in one kernel as a race, whatever orders it;
#   --max-errors  past this many messages Oclgrind stops printing them (the run fails
#       anyway; FACL_OCLGRIND_MAX_ERRORS changes the cap, default 10000).
#
# Oclgrind's logger opens its log file afresh (truncating it) for every OpenCL context,
# so the log is a FIFO drained by one reader for the whole run: no context's messages
# can erase another's.
#
# Under AddressSanitizer: the launcher LD_PRELOADs Oclgrind's runtime ahead of the ASan
# runtime, so ASAN_OPTIONS must contain verify_asan_link_order=0 (tests/meson.build
# sets it for this suite).
set -u

expect_diagnostic=0
if [ "${1:-}" = --expect-diagnostic ]; then
    expect_diagnostic=1
    shift
fi
uninitialized=--uninitialized
if [ "${1:-}" = --no-uninitialized ]; then
    uninitialized=""
    shift
fi
data_races=--data-races
if [ "${1:-}" = --no-data-races ]; then
    data_races=""
    shift
fi
if [ $# -lt 2 ]; then
    echo "usage: $0 [--expect-diagnostic] [--no-uninitialized] [--no-data-races] OCLGRIND PROGRAM [ARGS...]" >&2
    exit 2
fi
oclgrind=$1
shift
if ! command -v "$oclgrind" >/dev/null 2>&1; then
    echo "run_oclgrind: '$oclgrind' not found: install Oclgrind (Debian package oclgrind)" \
         "to run this suite" >&2
    exit 77
fi

tmp=$(mktemp -d "${FACL_TEST_TMPDIR:-${TMPDIR:-/tmp}}/oclgrind.XXXXXX") || exit 1
reader=""
cleanup() {
    [ -n "$reader" ] && kill "$reader" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

mkfifo "$tmp/log.fifo" || exit 1
cat "$tmp/log.fifo" >"$tmp/log" &
reader=$!
# Hold the FIFO open for writing, so that the reader sees no end of file between one
# context's logger closing it and the next one's opening it.
exec 5>"$tmp/log.fifo"

start=$(date +%s)
"$oclgrind" --log "$tmp/log.fifo" --max-errors "${FACL_OCLGRIND_MAX_ERRORS:-10000}" \
    --build-options -cl-opt-disable $data_races $uninitialized --check-api \
    "$@" >"$tmp/out" 2>&1 5>&-
rc=$?
end=$(date +%s)
exec 5>&-
wait "$reader"
reader=""

cat "$tmp/out"
echo "run_oclgrind: $* exited $rc after $((end - start)) s"

problems=""
ran_on_oclgrind=1
if ! grep -Eq '^(device|platform): Oclgrind' "$tmp/out"; then
    problems="$problems; it did not report running on Oclgrind (no 'device: Oclgrind' line)"
    ran_on_oclgrind=0
fi
if [ "$rc" -ne 0 ]; then
    problems="$problems; it exited $rc"
fi

diagnostic=0
if grep -q '[^[:space:]]' "$tmp/log"; then
    diagnostic=1
    echo "run_oclgrind: Oclgrind reported (first 300 lines of its log):"
    head -n 300 "$tmp/log"
    echo "run_oclgrind: messages by kind (count, first words):"
    grep '^[^[:space:]]' "$tmp/log" | sed -E 's/ (at|of|from|to|on|in) .*//' |
        sort | uniq -c | sort -rn | head -n 40
    echo "run_oclgrind: messages by kernel:"
    grep -E '^[[:space:]]+Kernel:' "$tmp/log" | sed 's/^[[:space:]]*//' | sort | uniq -c
fi
if grep -Eq '^(\[Oclgrind\]|Oclgrind|OCLGRIND)' "$tmp/out"; then
    diagnostic=1
    echo "run_oclgrind: Oclgrind wrote to the program's output:"
    grep -E -A4 '^(\[Oclgrind\]|Oclgrind|OCLGRIND)' "$tmp/out" | head -n 200
fi

if [ "$expect_diagnostic" -eq 1 ]; then
    if [ "$diagnostic" -eq 1 ] && [ -z "$problems" ]; then
        echo "run_oclgrind: PASS: the diagnostic was caught (the suite fails on it)"
        exit 0
    fi
    [ "$diagnostic" -eq 1 ] || problems="$problems; no diagnostic was found"
    echo "run_oclgrind: FAIL: self-check expected a diagnostic${problems}" >&2
    exit 1
fi

if [ "$diagnostic" -eq 1 ]; then
    problems="$problems; Oclgrind reported diagnostics (above)"
fi
if [ -n "$problems" ]; then
    echo "run_oclgrind: FAIL${problems}" >&2
    exit 1
fi
[ "$ran_on_oclgrind" -eq 1 ] || exit 1
echo "run_oclgrind: PASS: no Oclgrind diagnostic"
exit 0
