#!/bin/bash
# Session 14: paged decode (pages 16 and 256) over shapes and both copy methods, next to the
# contiguous default in the same command (which copy and shape a paged cache should default to).
x=B; rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
(cd /tmp/$x && meson setup build -Dbuildtype=release -Dtests=disabled > $OUT/meson$x.log 2>&1 && ninja -C build tools/facl-bench >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
cd /tmp/B
export FACL_CACHE_DIR=/tmp/ccache75
B="--decode -d NVIDIA --dtypes fp16 --copy-gbps 4270 --kv-lens 1024,4096,16384,65536 --forward-row off"
{
echo "== default, contiguous"; ./build/tools/facl-bench $B --pages 0 --splits 0 2>&1 | grep "^fp16\|rror"
for sh in 2,2,async 4,2,async 4,2,bulk 2,3,async 2,3,bulk 4,3,bulk 4,3,async; do
  echo "== paged, $sh"; FACL_CACHE_MMA_SHAPE=$sh ./build/tools/facl-bench $B --pages 16,256 --splits 0,2,4 2>&1 | grep "^fp16\|rror"
done
} > $OUT/decode_paged_run75.txt 2>&1
cat $OUT/decode_paged_run75.txt
