#!/bin/bash
# Session 19: D = C without the speculative first stage (kept: the stored length and Q read
# first, the table entries a stage ahead in the prologue, the dense tile loop run at most
# once). Registers; decode A/D twice, D with the lengths as one host value; torch; suites.
here=$PWD
rm -rf /tmp/D && mkdir /tmp/D && tar -xf .device/snapD.tar -C /tmp/D
for x in A; do
  [ -x /tmp/$x/build/tools/facl-bench ] && continue
  rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
  (cd /tmp/$x && meson setup build -Dbuildtype=release > /tmp/meson$x.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/meson$x.log 2>&1 || echo "build $x failed")
done
(cd /tmp/D && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonD.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_kvcache >> /tmp/mesonD.log 2>&1 || { echo "build D failed"; tail -20 /tmp/mesonD.log; exit 1; })
(cd /tmp/D && FACL_CACHE_DIR=/tmp/cc113R timeout 60 ./build/tools/facl-bench --decode -d NVIDIA --forward-row off --kv-lens 4096 --pages 0,16 --reps 1 > /dev/null 2>&1
 FACL_CACHE_DIR=/tmp/cc113R timeout 60 ./build/tools/facl-bench --decode -d NVIDIA --forward-row off --kv-lens 4096 --pages 0,16 --reps 1 --cache-lens value > /dev/null 2>&1
 python3 tools/driver_ptx_regs.py /tmp/cc113R attn_cache) > $OUT/regs_run113.txt 2>&1
cat $OUT/regs_run113.txt
B1="--decode -d NVIDIA --copy-gbps 4270 --forward-row off --kv-lens 1024,4096,16384,65536 --pages 0,16,256"
{
for x in A D A; do
  echo "== $x"
  (cd /tmp/$x && FACL_CACHE_DIR=/tmp/cc113$x timeout 120 ./build/tools/facl-bench $B1 2>&1 | grep "^fp16\|^bf16\|rror")
done
echo "== D (json)"
(cd /tmp/D && FACL_CACHE_DIR=/tmp/cc113D timeout 120 ./build/tools/facl-bench $B1 --json $OUT/decode_h200_run113.json 2>&1 | grep "^fp16\|^bf16\|rror")
echo "== D, --cache-lens value"
(cd /tmp/D && FACL_CACHE_DIR=/tmp/cc113D timeout 120 ./build/tools/facl-bench $B1 --cache-lens value --json $OUT/decode_h200_lensvalue_run113.json 2>&1 | grep "^fp16\|^bf16\|rror")
} > $OUT/decode_h200_ab_run113.txt 2>&1
cat $OUT/decode_h200_ab_run113.txt
timeout 150 python3 /tmp/D/tools/torch_decode.py --json $OUT/decode_h200_torch_run113.json > $OUT/decode_h200_torch_run113.txt 2>&1
echo "torch rc $?"; cat $OUT/decode_h200_torch_run113.txt
cd /tmp/D
{
export FACL_CACHE_DIR=/tmp/cc113S
timeout 150 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick > /tmp/selftest112.txt 2>&1; echo "selftest rc $?"; tail -3 /tmp/selftest112.txt
echo "test_kvcache, planner's shapes"; FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror|selects" | head -12; echo "rc ${PIPESTATUS[0]}"
for shape in 2,2,async; do echo "test_kvcache f16/bf16 cases, shape $shape"; FACL_TEST_FILTER='* *16 *' FACL_CACHE_MMA_SHAPE=$shape FACL_DEVICE=NVIDIA timeout 150 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror|selects" | head -8; echo "rc ${PIPESTATUS[0]}"; done
} > $OUT/suites_run113.txt 2>&1
cat $OUT/suites_run113.txt
