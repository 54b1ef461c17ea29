#!/bin/bash
# Session 19: correctness of B (speculative first stage; the prologue's table entries read a
# stage ahead; Q of the first tile read at the start) on the H200: facl-selftest --quick,
# test_kvcache with the planner's shapes and with forced shapes; the driver's registers of
# A's (HEAD) and B's decode kernels. Builds A and B for run111.
here=$PWD
for x in A B; do rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x; done
(cd /tmp/A && meson setup build -Dbuildtype=release > /tmp/mesonA.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonA.log 2>&1 || echo "build A failed") &
(cd /tmp/B && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonB.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_kvcache >> /tmp/mesonB.log 2>&1 || { echo "build B failed"; tail -20 /tmp/mesonB.log; })
wait
cd /tmp/B
{
export FACL_CACHE_DIR=/tmp/cc110S
timeout 150 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick > /tmp/selftest110.txt 2>&1; echo "selftest rc $?"; tail -3 /tmp/selftest110.txt
echo "test_kvcache, planner's shapes"; FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror|selects" | head -12; echo "rc ${PIPESTATUS[0]}"
for shape in 2,2,async 8,2,bulk 4,2,bulk 8,3,bulk; do echo "test_kvcache f16/bf16 cases, shape $shape"; FACL_TEST_FILTER='* *16 *' FACL_CACHE_MMA_SHAPE=$shape FACL_DEVICE=NVIDIA timeout 150 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror|selects" | head -8; echo "rc ${PIPESTATUS[0]}"; done
} > $OUT/suites_run110.txt 2>&1
cat $OUT/suites_run110.txt
# the decode kernels the benchmark builds, through each tree's disk cache
for x in A B; do
  (cd /tmp/$x && FACL_CACHE_DIR=/tmp/cc110R$x timeout 60 ./build/tools/facl-bench --decode -d NVIDIA --forward-row off --kv-lens 4096 --pages 0,16 --reps 1 > /dev/null 2>&1)
  echo "== $x"; python3 /tmp/B/tools/driver_ptx_regs.py /tmp/cc110R$x attn_cache
done > $OUT/regs_run110.txt 2>&1
cat $OUT/regs_run110.txt
