#!/bin/bash
# Session 22 (issue 10): the suites with 128-key Hopper tiles (0496c5d) on the H200: unit
# tests, selftest, test_forward with the default, the forced Hopper kernel (plain
# pipelined, WS + engine, WS + cp.async), test_threads.
R=$(pwd)
rm -rf /tmp/S && mkdir /tmp/S && tar -xf .device/snapH.tar -C /tmp/S
cd /tmp/S && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonS.log 2>&1 && ninja -C build >> /tmp/mesonS.log 2>&1 || { echo "build failed"; tail -30 /tmp/mesonS.log; exit 1; }
export FACL_CACHE_DIR=/tmp/ccS
{
meson test -C build plan tensor_map ptx_patch plan_memo 2>&1 | grep -E "Ok:|Fail:"
echo "== selftest (default)"
timeout 120 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick 2>&1 | grep -i "kernel path\|passed\|failed" | head -4
for cfg in "default:" "forced-plain:FACL_FWD_WGMMA=1" "forced-ws-tma:FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2" "forced-ws-cp-async:FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=1 FACL_FWD_TMA=0"; do
  echo "== test_forward ${cfg%%:*}"
  env ${cfg#*:} FACL_DEVICE=NVIDIA timeout 150 ./build/tests/test_forward 2>&1 | tail -2
done
echo "== test_threads"
FACL_DEVICE=NVIDIA timeout 100 ./build/tests/test_threads 2>&1 | tail -2
} > $OUT/bn128_suites_run136.txt 2>&1
cat $OUT/bn128_suites_run136.txt
