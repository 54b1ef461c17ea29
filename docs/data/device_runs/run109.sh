#!/bin/bash
# Session 18: the fixed cost of a decode call, ours against torch's: short caches
# (64 .. 2k keys), dense, one command after the other, fp16.
rm -rf /tmp/F && mkdir /tmp/F && tar -xf .device/snapF.tar -C /tmp/F
cd /tmp/F
meson setup build -Dbuildtype=release > /tmp/mesonF.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonF.log 2>&1 || { echo "build F failed"; exit 1; }
export FACL_CACHE_DIR=/tmp/cc109
L=64,256,512,1024,2048
timeout 90 ./build/tools/facl-bench --decode -d NVIDIA --copy-gbps 4270 --dtypes fp16 --kv-lens $L --pages 0 --forward-row off --json $OUT/decode_short_run109.json > $OUT/decode_short_run109.txt 2>&1
grep "^fp16\|empty kernel\|rror" $OUT/decode_short_run109.txt
timeout 90 python3 tools/torch_decode.py --kv-lens $L --dtypes float16 --kv-orders shd --json $OUT/decode_short_torch_run109.json > $OUT/decode_short_torch_run109.txt 2>&1
cat $OUT/decode_short_torch_run109.txt
