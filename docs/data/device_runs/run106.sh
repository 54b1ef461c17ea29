#!/bin/bash
# Session 18: the committed head (5e81c5b): decode fp16/bf16, dense and paged 16/256,
# next to torch in both row orders, one command after the other.
here=$PWD
rm -rf /tmp/E && mkdir /tmp/E && tar -xf .device/snapE.tar -C /tmp/E
cd /tmp/E
meson setup build -Dbuildtype=release > /tmp/mesonE.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonE.log 2>&1 || { echo "build E failed"; tail -20 /tmp/mesonE.log; exit 1; }
export FACL_CACHE_DIR=/tmp/cc106
timeout 200 ./build/tools/facl-bench --decode -d NVIDIA --copy-gbps 4270 --kv-lens 1024,4096,16384,65536 --pages 0,16,256 --splits 0 --forward-row off --json $OUT/decode_h200_run106.json > $OUT/decode_h200_run106.txt 2>&1
echo "facl rc $?"; grep "^fp16\|^bf16\|rror" $OUT/decode_h200_run106.txt
timeout 150 python3 tools/torch_decode.py --json $OUT/decode_h200_torch_run106.json > $OUT/decode_h200_torch_run106.txt 2>&1
echo "torch rc $?"; cat $OUT/decode_h200_torch_run106.txt
