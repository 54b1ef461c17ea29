#!/bin/bash
# Session 14: attn_cache_mma filling its tiles with Hopper's copy engine (cp.async.bulk, one
# row per lane, a transaction barrier per warp and stage) against cp.async, over shapes and
# split counts; test_kvcache on the bulk variant.
x=B; rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
(cd /tmp/$x && meson setup build -Dbuildtype=release -Dtests=enabled > $OUT/meson$x.log 2>&1 && ninja -C build tools/facl-bench tests/test_kvcache >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
here=$PWD
cd /tmp/B
export FACL_CACHE_DIR=/tmp/ccache73
{
echo "test_kvcache 2,2,bulk"; FACL_CACHE_MMA_SHAPE=2,2,bulk FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror" | head -20
} > $OUT/suites_run73.txt 2>&1
cat $OUT/suites_run73.txt
{
for sh in 2,2,async 2,2,bulk 4,2,bulk 2,3,bulk 1,4,bulk 4,3,bulk; do
  echo "== shape $sh"
  FACL_CACHE_MMA_SHAPE=$sh ./build/tools/facl-bench --decode -d NVIDIA --dtypes fp16 --copy-gbps 4270 --kv-lens 1024,4096,16384,65536 --pages 0 --splits 0,1,2,4,8 --forward-row off 2>&1 | grep "^fp16\|rror"
done
echo "== paged 16, 2,2 async / bulk"
for sh in 2,2,async 2,2,bulk; do FACL_CACHE_MMA_SHAPE=$sh ./build/tools/facl-bench --decode -d NVIDIA --dtypes fp16 --copy-gbps 4270 --kv-lens 1024,4096,16384,65536 --pages 16 --splits 0 --forward-row off 2>&1 | grep "^fp16\|rror"; done
} > $OUT/decode_bulk_run73.txt 2>&1
tar -czf $OUT/ccache73.tgz -C /tmp ccache73
cat $OUT/decode_bulk_run73.txt
