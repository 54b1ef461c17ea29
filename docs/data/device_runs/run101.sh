#!/bin/bash
# Session 18: decode in both row orders of the cache next to torch in both; paged-16 shapes
# and page order (random / sequential).
here=$PWD
rm -rf /tmp/A && mkdir /tmp/A && tar -xf .device/snapA.tar -C /tmp/A
(cd /tmp/A && meson setup build -Dbuildtype=release > /tmp/mesonA.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonA.log 2>&1) || { echo "build failed"; tail -20 /tmp/mesonA.log; exit 1; }
cd /tmp/A
export FACL_CACHE_DIR=/tmp/cc101
L=1024,2048,4096,8192,16384,32768,65536
B="--decode -d NVIDIA --copy-gbps 4270 --forward-row off"
timeout 200 ./build/tools/facl-bench $B --dtypes fp16 --kv-lens $L --pages 0,16 --kv-order shd,hsd --json $OUT/decode_orders_run101.json > $OUT/decode_orders_run101.txt 2>&1
echo "orders rc $?"; grep "^fp16\|rror" $OUT/decode_orders_run101.txt
timeout 150 python3 $here/tools/torch_decode.py --kv-lens $L --dtypes float16 --json $OUT/decode_torch_orders_run101.json > $OUT/decode_torch_orders_run101.txt 2>&1
echo "torch rc $?"; cat $OUT/decode_torch_orders_run101.txt
{
for shape in "" 8,2,bulk 4,2,bulk 8,2,async 4,2,async; do
  for po in random sequential; do
    [ "$po" = sequential ] && [ "$shape" != "" ] && [ "$shape" != 8,2,bulk ] && continue
    echo "== shape '$shape' pages $po"
    FACL_CACHE_MMA_SHAPE=$shape timeout 60 ./build/tools/facl-bench $B --dtypes fp16 --kv-lens 1024,4096,16384,65536 --pages 16 --page-order $po 2>&1 | grep "^fp16\|rror"
  done
done
} > $OUT/decode_paged_run101.txt 2>&1
cat $OUT/decode_paged_run101.txt
