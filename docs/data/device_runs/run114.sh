#!/bin/bash
# Session 19: E = D with the tile's output summed and stored by the whole work-group from
# the slices every warp parks (GROUP_STORES, calls without splits), instead of warp 0
# alone. Decode A/E alternating twice, torch; E's registers; test_kvcache and the self-test.
here=$PWD
for x in A E; do rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x; done
(cd /tmp/A && meson setup build -Dbuildtype=release > /tmp/mesonA.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonA.log 2>&1 || echo "build A failed") &
(cd /tmp/E && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonE.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_kvcache >> /tmp/mesonE.log 2>&1 || { echo "build E failed"; tail -20 /tmp/mesonE.log; })
wait
B1="--decode -d NVIDIA --copy-gbps 4270 --forward-row off --kv-lens 1024,4096,16384,65536 --pages 0,16,256"
{
for x in A E A; do
  echo "== $x"
  (cd /tmp/$x && FACL_CACHE_DIR=/tmp/cc114$x timeout 120 ./build/tools/facl-bench $B1 2>&1 | grep "^fp16\|^bf16\|rror")
done
echo "== E (json)"
(cd /tmp/E && FACL_CACHE_DIR=/tmp/cc114E timeout 120 ./build/tools/facl-bench $B1 --json $OUT/decode_h200_run114.json 2>&1 | grep "^fp16\|^bf16\|rror")
} > $OUT/decode_h200_ab_run114.txt 2>&1
timeout 150 python3 /tmp/E/tools/torch_decode.py --kv-orders shd --json $OUT/decode_h200_torch_run114.json > $OUT/decode_h200_torch_run114.txt 2>&1
echo "torch rc $?"; cat $OUT/decode_h200_torch_run114.txt
python3 /tmp/E/tools/driver_ptx_regs.py /tmp/cc114E attn_cache > $OUT/regs_run114.txt 2>&1
cd /tmp/E
{
export FACL_CACHE_DIR=/tmp/cc114S
timeout 150 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick > /tmp/selftest114.txt 2>&1; echo "selftest rc $?"; tail -3 /tmp/selftest114.txt
echo "test_kvcache, planner's shapes"; FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror|selects" | head -12; echo "rc ${PIPESTATUS[0]}"
for shape in 2,2,async 4,2,bulk; do echo "test_kvcache f16/bf16 cases, shape $shape"; FACL_TEST_FILTER='* *16 *' FACL_CACHE_MMA_SHAPE=$shape FACL_DEVICE=NVIDIA timeout 150 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror|selects" | head -8; echo "rc ${PIPESTATUS[0]}"; done
} > $OUT/suites_run114.txt 2>&1
cat $OUT/suites_run114.txt
