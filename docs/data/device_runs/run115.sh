#!/bin/bash
# Session 19: HEAD (9c94fff) at 16k keys, dense, fp16 and bf16, alternating with torch three
# times in one command: how far apart the two are against how much each moves.
rm -rf /tmp/H && mkdir /tmp/H && tar -xf .device/snapH.tar -C /tmp/H
cd /tmp/H && (meson setup build -Dbuildtype=release > /tmp/mesonH.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonH.log 2>&1) || { echo "build failed"; tail -20 /tmp/mesonH.log; exit 1; }
export FACL_CACHE_DIR=/tmp/cc115
{
for i in 1 2 3; do
  echo "== facl $i"; timeout 60 ./build/tools/facl-bench --decode -d NVIDIA --copy-gbps 4270 --kv-lens 16384 --pages 0 --forward-row off 2>&1 | grep "^fp16\|^bf16\|rror"
  echo "== torch $i"; timeout 60 python3 tools/torch_decode.py --kv-lens 16384 --kv-orders shd 2>&1 | grep -v "^#"
done
} > $OUT/decode_h200_16k_alternating_run115.txt 2>&1
cat $OUT/decode_h200_16k_alternating_run115.txt
