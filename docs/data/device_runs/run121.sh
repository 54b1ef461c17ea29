#!/bin/bash
# Session 20: A = HEAD; Q = Q's rows by cp.async into local memory (run 118's Q); QL = Q with
# every stage issued before Q is waited for and each step's tiles refilled at its end.
# Alternating A Q QL twice from do_bench's dirty L2, once from a clean one; registers;
# test_kvcache on QL (planner's shapes, and 2,2,async / 4,2,bulk / 8,3,bulk on fp16/bf16).
for x in A Q QL; do rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x; done
for x in A Q; do
  (cd /tmp/$x && meson setup build -Dbuildtype=release > /tmp/meson$x.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/meson$x.log 2>&1 || { echo "build $x failed"; tail -20 /tmp/meson$x.log; }) &
done
(cd /tmp/QL && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonQL.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_kvcache >> /tmp/mesonQL.log 2>&1 || { echo "build QL failed"; tail -20 /tmp/mesonQL.log; })
wait
B1="--decode -d NVIDIA --copy-gbps 4270 --forward-row off --kv-lens 1024,4096,16384,65536 --pages 0,16"
{
for round in 1 2; do
for x in A Q QL; do
  echo "== $x dirty $round"
  (cd /tmp/$x && FACL_CACHE_DIR=/tmp/cc121$x timeout 120 ./build/tools/facl-bench $B1 2>&1 | grep "^fp16\|^bf16\|rror")
done
done
for x in A Q QL; do
  echo "== $x clean"
  (cd /tmp/$x && FACL_CACHE_DIR=/tmp/cc121$x timeout 120 ./build/tools/facl-bench $B1 --flush-read on 2>&1 | grep "^fp16\|^bf16\|rror")
done
for x in A Q QL; do echo "== regs $x"; python3 /tmp/A/tools/driver_ptx_regs.py /tmp/cc121$x attn_cache; done
} > $OUT/decode_h200_ab_run121.txt 2>&1
cat $OUT/decode_h200_ab_run121.txt
cd /tmp/QL
{
export FACL_CACHE_DIR=/tmp/ccS
timeout 150 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick > /tmp/selftest121.txt 2>&1; echo "selftest rc $?"; tail -3 /tmp/selftest121.txt
echo "test_kvcache, planner's shapes"; FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror|selects" | head -12; echo "rc ${PIPESTATUS[0]}"
for shape in 2,2,async 4,2,bulk 8,3,bulk; do echo "test_kvcache f16/bf16 cases, shape $shape"; FACL_TEST_FILTER='* *16 *' FACL_CACHE_MMA_SHAPE=$shape FACL_DEVICE=NVIDIA timeout 100 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror|selects" | head -8; echo "rc ${PIPESTATUS[0]}"; done
} > $OUT/suites_run121.txt 2>&1
cat $OUT/suites_run121.txt
