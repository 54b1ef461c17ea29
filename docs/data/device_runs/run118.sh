#!/bin/bash
# Session 20: A = HEAD; B = paged: the table's line 16 steps ahead prefetched into L2 and the
# first stages' entries read before the lengths (on the guess that the split starts at 0);
# Q = Q's rows copied into local memory by cp.async at the start (ldmatrix fragments);
# BQ = both. Alternating A B Q BQ twice, torch; registers; the trace of BQ (T2); test_kvcache on BQ.
for x in A B Q BQ T2; do rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x; done
for x in A B Q T2; do
  (cd /tmp/$x && meson setup build -Dbuildtype=release > /tmp/meson$x.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/meson$x.log 2>&1 || { echo "build $x failed"; tail -20 /tmp/meson$x.log; }) &
done
(cd /tmp/BQ && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonBQ.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_kvcache >> /tmp/mesonBQ.log 2>&1 || { echo "build BQ failed"; tail -20 /tmp/mesonBQ.log; })
wait
B1="--decode -d NVIDIA --copy-gbps 4270 --forward-row off --kv-lens 1024,4096,16384 --pages 0,16"
{
for round in 1 2; do
for x in A B Q BQ; do
  echo "== $x $round"
  (cd /tmp/$x && FACL_CACHE_DIR=/tmp/cc118$x timeout 120 ./build/tools/facl-bench $B1 2>&1 | grep "^fp16\|^bf16\|rror")
done
done
echo "== torch"; timeout 150 python3 /tmp/A/tools/torch_decode.py --kv-orders shd --kv-lens 1024,4096,16384 2>&1 | grep -v "^#"
for x in A B Q BQ; do echo "== regs $x"; python3 /tmp/A/tools/driver_ptx_regs.py /tmp/cc118$x attn_cache; done
mkdir -p /tmp/trace2
echo "== T2 (traced BQ)"; (cd /tmp/T2 && FACL_KERNEL_PATH=nvidia-mma FACL_CACHE_DIR=/tmp/ccT2 FACL_TRACE_OUT=/tmp/trace2 timeout 120 ./build/tools/facl-bench --decode -d NVIDIA --copy-gbps 4270 --forward-row off --kv-lens 4096,16384 --pages 0,16 --dtypes fp16 --no-verify 2>&1 | grep "^fp16\|rror\|empty")
python3 .device/trace_an.py /tmp/trace2/*.bin
} > $OUT/decode_h200_ab_run118.txt 2>&1
cat $OUT/decode_h200_ab_run118.txt
tar -czf $OUT/trace_run118.tgz -C /tmp trace2
cd /tmp/BQ
{
export FACL_CACHE_DIR=/tmp/ccS
timeout 150 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick > /tmp/selftest118.txt 2>&1; echo "selftest rc $?"; tail -3 /tmp/selftest118.txt
echo "test_kvcache, planner's shapes"; FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror|selects" | head -12; echo "rc ${PIPESTATUS[0]}"
for shape in 2,2,async 4,2,bulk; do echo "test_kvcache f16/bf16 cases, shape $shape"; FACL_TEST_FILTER='* *16 *' FACL_CACHE_MMA_SHAPE=$shape FACL_DEVICE=NVIDIA timeout 100 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror|selects" | head -8; echo "rc ${PIPESTATUS[0]}"; done
} > $OUT/suites_run118.txt 2>&1
cat $OUT/suites_run118.txt
