#!/bin/bash
# Session 18: the committed candidate (C: table entries clamped at the copy; pages of 16
# whose units fit one to an SM take 8 warps x 2 stages with the copy engine): decode
# fp16/bf16 in both row orders next to torch in both, in one command each; 8 x 3 on pages;
# the suites.
here=$PWD
rm -rf /tmp/C && mkdir /tmp/C && tar -xf .device/snapC.tar -C /tmp/C
cd /tmp/C
meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonC.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_kvcache >> /tmp/mesonC.log 2>&1 || { echo "build C failed"; tail -20 /tmp/mesonC.log; exit 1; }
export FACL_CACHE_DIR=/tmp/cc104
timeout 240 ./build/tools/facl-bench --decode -d NVIDIA --copy-gbps 4270 --kv-lens 1024,4096,16384,65536 --pages 0,16,256 --kv-order shd,hsd --splits 0 --forward-row off --json $OUT/decode_h200_run104.json > $OUT/decode_h200_run104.txt 2>&1
echo "facl rc $?"; grep "^fp16\|^bf16\|rror" $OUT/decode_h200_run104.txt
timeout 150 python3 tools/torch_decode.py --json $OUT/decode_h200_torch_run104.json > $OUT/decode_h200_torch_run104.txt 2>&1
echo "torch rc $?"; cat $OUT/decode_h200_torch_run104.txt
echo "== paged 16, 8 x 3 with the copy engine"
FACL_CACHE_MMA_SHAPE=8,3,bulk timeout 60 ./build/tools/facl-bench --decode -d NVIDIA --copy-gbps 4270 --dtypes fp16 --kv-lens 1024,4096,16384,65536 --pages 0,16 --forward-row off 2>&1 | grep "^fp16\|rror"
{
export FACL_CACHE_DIR=/tmp/cc104D
timeout 150 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick > /tmp/selftest104.txt 2>&1; echo "selftest rc $?"; tail -3 /tmp/selftest104.txt
for shape in "" 2,2,async; do echo "test_kvcache shape '$shape'"; FACL_CACHE_MMA_SHAPE=$shape FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror" | head -8; echo "rc ${PIPESTATUS[0]}"; done
} > $OUT/suites_run104.txt 2>&1
cat $OUT/suites_run104.txt
