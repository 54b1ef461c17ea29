#!/bin/bash
# Session 19: C = B with the tile loop of dense queries visibly run at most once (Q's words
# no longer live through the key loop). Registers of C's decode kernels; decode A/C twice,
# C with the lengths as one host value; torch; then test_kvcache and the self-test on C.
here=$PWD
rm -rf /tmp/C && mkdir /tmp/C && tar -xf .device/snapC.tar -C /tmp/C
for x in A; do
  [ -x /tmp/$x/build/tools/facl-bench ] && continue
  rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
  (cd /tmp/$x && meson setup build -Dbuildtype=release > /tmp/meson$x.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/meson$x.log 2>&1 || echo "build $x failed")
done
(cd /tmp/C && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonC.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_kvcache >> /tmp/mesonC.log 2>&1 || { echo "build C failed"; tail -20 /tmp/mesonC.log; exit 1; })
(cd /tmp/C && FACL_CACHE_DIR=/tmp/cc112R timeout 60 ./build/tools/facl-bench --decode -d NVIDIA --forward-row off --kv-lens 4096 --pages 0,16 --reps 1 > /dev/null 2>&1
 FACL_CACHE_DIR=/tmp/cc112R timeout 60 ./build/tools/facl-bench --decode -d NVIDIA --forward-row off --kv-lens 4096 --pages 0,16 --reps 1 --cache-lens value > /dev/null 2>&1
 python3 tools/driver_ptx_regs.py /tmp/cc112R attn_cache) > $OUT/regs_run112.txt 2>&1
cat $OUT/regs_run112.txt
B1="--decode -d NVIDIA --copy-gbps 4270 --forward-row off --kv-lens 1024,4096,16384,65536 --pages 0,16,256"
{
for x in A C A; do
  echo "== $x"
  (cd /tmp/$x && FACL_CACHE_DIR=/tmp/cc112$x timeout 120 ./build/tools/facl-bench $B1 2>&1 | grep "^fp16\|^bf16\|rror")
done
echo "== C (json)"
(cd /tmp/C && FACL_CACHE_DIR=/tmp/cc112C timeout 120 ./build/tools/facl-bench $B1 --json $OUT/decode_h200_run112.json 2>&1 | grep "^fp16\|^bf16\|rror")
echo "== C, --cache-lens value"
(cd /tmp/C && FACL_CACHE_DIR=/tmp/cc112C timeout 120 ./build/tools/facl-bench $B1 --cache-lens value --json $OUT/decode_h200_lensvalue_run112.json 2>&1 | grep "^fp16\|^bf16\|rror")
} > $OUT/decode_h200_ab_run112.txt 2>&1
cat $OUT/decode_h200_ab_run112.txt
timeout 150 python3 /tmp/C/tools/torch_decode.py --json $OUT/decode_h200_torch_run112.json > $OUT/decode_h200_torch_run112.txt 2>&1
echo "torch rc $?"; cat $OUT/decode_h200_torch_run112.txt
cd /tmp/C
{
export FACL_CACHE_DIR=/tmp/cc112S
timeout 150 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick > /tmp/selftest112.txt 2>&1; echo "selftest rc $?"; tail -3 /tmp/selftest112.txt
echo "test_kvcache, planner's shapes"; FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror|selects" | head -12; echo "rc ${PIPESTATUS[0]}"
for shape in 2,2,async 4,2,bulk; do echo "test_kvcache f16/bf16 cases, shape $shape"; FACL_TEST_FILTER='* *16 *' FACL_CACHE_MMA_SHAPE=$shape FACL_DEVICE=NVIDIA timeout 150 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror|selects" | head -8; echo "rc ${PIPESTATUS[0]}"; done
} > $OUT/suites_run112.txt 2>&1
cat $OUT/suites_run112.txt
