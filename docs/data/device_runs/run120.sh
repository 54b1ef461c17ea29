#!/bin/bash
# Session 20: HEAD (with facl-bench --flush-read and torch_decode.py --flush): issue 9's
# decode grid from both L2 states, torch in both, in one command; then pages of 16 at 4k
# keys through other shapes (4 warps with 2 splits, cp.async).
rm -rf /tmp/H && mkdir /tmp/H && tar -xf .device/snapH.tar -C /tmp/H
cd /tmp/H && (meson setup build -Dbuildtype=release > /tmp/mesonH.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonH.log 2>&1) || { echo "build failed"; tail -20 /tmp/mesonH.log; exit 1; }
export FACL_CACHE_DIR=/tmp/cc120
B1="--decode -d NVIDIA --copy-gbps 4270 --forward-row off --kv-lens 1024,4096,16384,65536 --pages 0,16,256"
{
echo "== facl, fill (dirty L2)"; timeout 120 ./build/tools/facl-bench $B1 --json $OUT/decode_h200_run120.json 2>&1 | grep "^fp16\|^bf16\|rror\|empty"
echo "== torch, do_bench (zero_: dirty L2)"; timeout 150 python3 tools/torch_decode.py --kv-orders shd --json $OUT/decode_h200_torch_run120.json 2>&1 | grep -v "^#"
echo "== facl, fill + read (clean L2)"; timeout 120 ./build/tools/facl-bench $B1 --flush-read on --json $OUT/decode_h200_clean_run120.json 2>&1 | grep "^fp16\|^bf16\|rror"
echo "== torch, zero_ + read (clean L2)"; timeout 150 python3 tools/torch_decode.py --kv-orders shd --flush zero-read --json $OUT/decode_h200_torch_clean_run120.json 2>&1 | grep -v "^#"
P="--decode -d NVIDIA --copy-gbps 4270 --forward-row off --kv-lens 4096,16384 --pages 0,16 --dtypes fp16"
echo "== pages 16, 4 warps x 2 stages bulk, 2 splits"; FACL_CACHE_MMA_SHAPE=4,2,bulk timeout 60 ./build/tools/facl-bench $P --splits 2 2>&1 | grep "^fp16\|rror"
echo "== pages 16, 8 warps x 2 stages cp.async"; FACL_CACHE_MMA_SHAPE=8,2,async timeout 60 ./build/tools/facl-bench $P 2>&1 | grep "^fp16\|rror"
echo "== pages 16, 2 warps x 2 stages cp.async, auto splits"; FACL_CACHE_MMA_SHAPE=2,2,async timeout 60 ./build/tools/facl-bench $P 2>&1 | grep "^fp16\|rror"
} > $OUT/decode_h200_run120.txt 2>&1
cat $OUT/decode_h200_run120.txt
