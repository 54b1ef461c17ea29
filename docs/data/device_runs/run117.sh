#!/bin/bash
# Session 20: HEAD (494139f, not yet run here) decode + torch + both timing floors; the
# trace build T (timestamps into out, probe skipped) at 4k/16k, dense and pages of 16;
# pages of 16 with 8x3 stages and in memory order; test_kvcache on HEAD.
for x in A T; do rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x; done
(cd /tmp/T && meson setup build -Dbuildtype=release > /tmp/mesonT.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonT.log 2>&1 || { echo "build T failed"; tail -20 /tmp/mesonT.log; }) &
(cd /tmp/A && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonA.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_kvcache >> /tmp/mesonA.log 2>&1 || { echo "build A failed"; tail -20 /tmp/mesonA.log; })
wait
B1="--decode -d NVIDIA --copy-gbps 4270 --forward-row off --kv-lens 1024,4096,16384,65536 --pages 0,16,256"
{
echo "== A"; (cd /tmp/A && FACL_CACHE_DIR=/tmp/ccA timeout 120 ./build/tools/facl-bench $B1 --json $OUT/decode_h200_run117.json 2>&1 | grep "^fp16\|^bf16\|rror\|empty\|floor")
echo "== torch"; timeout 150 python3 /tmp/A/tools/torch_decode.py --kv-orders shd --json $OUT/decode_h200_torch_run117.json 2>&1 | grep -v "^#"
timeout 60 python3 .device/torch_floor.py
echo "== A pages 16 in memory order"; (cd /tmp/A && FACL_CACHE_DIR=/tmp/ccA timeout 60 ./build/tools/facl-bench --decode -d NVIDIA --copy-gbps 4270 --forward-row off --kv-lens 4096,16384 --pages 16 --page-order sequential --dtypes fp16 2>&1 | grep "^fp16\|rror")
echo "== A pages 16, 8x3 bulk"; (cd /tmp/A && FACL_CACHE_MMA_SHAPE=8,3,bulk FACL_CACHE_DIR=/tmp/ccA3 timeout 60 ./build/tools/facl-bench --decode -d NVIDIA --copy-gbps 4270 --forward-row off --kv-lens 4096,16384 --pages 16 --dtypes fp16 2>&1 | grep "^fp16\|rror")
mkdir -p /tmp/trace
echo "== T (traced)"; (cd /tmp/T && FACL_KERNEL_PATH=nvidia-mma FACL_CACHE_DIR=/tmp/ccT FACL_TRACE_OUT=/tmp/trace timeout 120 ./build/tools/facl-bench --decode -d NVIDIA --copy-gbps 4270 --forward-row off --kv-lens 1024,4096,16384,65536 --pages 0,16 --dtypes fp16 --no-verify 2>&1 | grep "^fp16\|rror\|empty")
python3 .device/trace_an.py /tmp/trace/*.bin
} > $OUT/decode_h200_run117.txt 2>&1
cat $OUT/decode_h200_run117.txt
tar -czf $OUT/trace_run117.tgz -C /tmp trace
cd /tmp/A
{
export FACL_CACHE_DIR=/tmp/ccS
timeout 150 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick > /tmp/selftest117.txt 2>&1; echo "selftest rc $?"; tail -3 /tmp/selftest117.txt
echo "test_kvcache, planner's shapes"; FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror|selects" | head -12; echo "rc ${PIPESTATUS[0]}"
} > $OUT/suites_run117.txt 2>&1
cat $OUT/suites_run117.txt
