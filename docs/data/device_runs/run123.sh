#!/bin/bash
# Session 20: A = HEAD; Q2 = Q's rows by cp.async into warp 0's last stage (no extra local
# memory), only where Q's rows are 16-byte aligned (the plan's ALIGNED_Q) and 2+ stages.
# Alternating A Q2 twice from do_bench's dirty L2, once from a clean one; registers;
# test_kvcache on Q2 (planner's shapes, and 2,2,async / 4,2,bulk / 8,3,bulk on fp16/bf16).
for x in A Q2; do rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x; done
for x in A; do
  (cd /tmp/$x && meson setup build -Dbuildtype=release > /tmp/meson$x.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/meson$x.log 2>&1 || { echo "build $x failed"; tail -20 /tmp/meson$x.log; }) &
done
(cd /tmp/Q2 && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonQ2.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_kvcache >> /tmp/mesonQ2.log 2>&1 || { echo "build Q2 failed"; tail -20 /tmp/mesonQ2.log; })
wait
B1="--decode -d NVIDIA --copy-gbps 4270 --forward-row off --kv-lens 1024,4096,16384,65536 --pages 0,16"
{
for round in 1 2; do
for x in A Q2; do
  echo "== $x dirty $round"
  (cd /tmp/$x && FACL_CACHE_DIR=/tmp/cc123$x timeout 120 ./build/tools/facl-bench $B1 2>&1 | grep "^fp16\|^bf16\|rror")
done
done
for x in A Q2; do
  echo "== $x clean"
  (cd /tmp/$x && FACL_CACHE_DIR=/tmp/cc123$x timeout 120 ./build/tools/facl-bench $B1 --flush-read on 2>&1 | grep "^fp16\|^bf16\|rror")
done
for x in A Q2; do echo "== regs $x"; python3 /tmp/A/tools/driver_ptx_regs.py /tmp/cc123$x attn_cache; done
} > $OUT/decode_h200_ab_run123.txt 2>&1
cat $OUT/decode_h200_ab_run123.txt
cd /tmp/Q2
{
export FACL_CACHE_DIR=/tmp/ccS
timeout 150 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick > /tmp/selftest123.txt 2>&1; echo "selftest rc $?"; tail -3 /tmp/selftest123.txt
echo "test_kvcache, planner's shapes"; FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror|selects" | head -12; echo "rc ${PIPESTATUS[0]}"
for shape in 2,2,async 4,2,bulk 8,3,bulk; do echo "test_kvcache f16/bf16 cases, shape $shape"; FACL_TEST_FILTER='* *16 *' FACL_CACHE_MMA_SHAPE=$shape FACL_DEVICE=NVIDIA timeout 100 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror|selects" | head -8; echo "rc ${PIPESTATUS[0]}"; done
} > $OUT/suites_run123.txt 2>&1
cat $OUT/suites_run123.txt
