#!/bin/bash
# Session 18: what the last 3-6% of paged 16 is: pages in random order against pages in
# memory order (the same kernel, the same instructions) and the dense cache, twice.
rm -rf /tmp/E && mkdir /tmp/E && tar -xf .device/snapE.tar -C /tmp/E
cd /tmp/E
meson setup build -Dbuildtype=release > /tmp/mesonE.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonE.log 2>&1 || { echo "build E failed"; exit 1; }
export FACL_CACHE_DIR=/tmp/cc107
B="--decode -d NVIDIA --copy-gbps 4270 --forward-row off --dtypes fp16 --kv-lens 1024,2048,4096,8192,16384,65536"
{
for rep in 1 2; do
  echo "== random"; timeout 90 ./build/tools/facl-bench $B --pages 0,16 2>&1 | grep "^fp16\|rror"
  echo "== sequential"; timeout 90 ./build/tools/facl-bench $B --pages 16 --page-order sequential 2>&1 | grep "^fp16\|rror"
done
} > $OUT/paged_order_run107.txt 2>&1
cat $OUT/paged_order_run107.txt
