#!/bin/bash
# Session 14: 8-warp work-groups (one to an SM, 139-209 KiB of tiles) for the decode's short
# caches, one split, no merge; test_kvcache's fp16 cases on the 8-warp shape.
x=B; rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
(cd /tmp/$x && meson setup build -Dbuildtype=release -Dtests=enabled > $OUT/meson$x.log 2>&1 && ninja -C build tools/facl-bench tests/test_kvcache >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
cd /tmp/B
export FACL_CACHE_DIR=/tmp/ccache78
{
echo "test_kvcache f16, 8,2,bulk"; FACL_TEST_FILTER='* f16 *' FACL_CACHE_MMA_SHAPE=8,2,bulk FACL_DEVICE=NVIDIA timeout 100 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror|selects" | head -8
B="--decode -d NVIDIA --dtypes fp16 --copy-gbps 4270 --kv-lens 1024,4096,16384,65536 --forward-row off"
echo "== default"; ./build/tools/facl-bench $B --pages 0,16 --splits 0 2>&1 | grep "^fp16\|rror"
echo "== 8,2,bulk"; FACL_CACHE_MMA_SHAPE=8,2,bulk ./build/tools/facl-bench $B --pages 0 --splits 0,2 2>&1 | grep "^fp16\|rror"
echo "== 8,3,bulk"; FACL_CACHE_MMA_SHAPE=8,3,bulk ./build/tools/facl-bench $B --pages 0 --splits 0 2>&1 | grep "^fp16\|rror"
echo "== 8,2,async"; FACL_CACHE_MMA_SHAPE=8,2,async ./build/tools/facl-bench $B --pages 0,16 --splits 0 2>&1 | grep "^fp16\|rror"
} > $OUT/decode_8warps_run78.txt 2>&1
cat $OUT/decode_8warps_run78.txt
