#!/bin/bash
# Session 14: decode with the new default (sm_90, dense cache: copy engine, 4 warps x 2
# stages, 2 splits; paged: cp.async 2 x 2) against the previous default (FACL_CACHE_MMA_SHAPE=2,2,async),
# alternating, fp16 and bf16, contiguous and paged 16/256, next to torch in the same command; suites.
x=B; rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
(cd /tmp/$x && meson setup build -Dbuildtype=release -Dtests=enabled > $OUT/meson$x.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_kvcache tests/test_api tests/test_threads >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
here=$PWD
cd /tmp/B
export FACL_CACHE_DIR=/tmp/ccache74
{
./build/tools/facl-selftest -d NVIDIA --no-speed --quick > $OUT/selftest_run74.txt 2>&1; echo "selftest rc $?"; tail -3 $OUT/selftest_run74.txt
for t in test_kvcache test_api test_threads; do echo $t; FACL_DEVICE=NVIDIA timeout 300 ./build/tests/$t 2>&1 | grep -E "FAILED|PASSED|rror" | head -5; done
} > $OUT/suites_run74.txt 2>&1
cat $OUT/suites_run74.txt
B="--decode -d NVIDIA --copy-gbps 4270 --kv-lens 1024,4096,16384,65536 --splits 0 --forward-row off"
./build/tools/facl-bench $B --pages 0,16,256 --json $OUT/decode_h200_run74.json > $OUT/decode_h200_run74.txt 2>&1
python3 $here/.device/torch_sdpa.py --decode --json $OUT/decode_h200_torch_run74.json > $OUT/decode_h200_torch_run74.txt 2>&1
{
for r in 1 2; do
  echo "== round $r: previous default (2,2,async)"; FACL_CACHE_MMA_SHAPE=2,2,async ./build/tools/facl-bench $B --pages 0,16 2>&1 | grep "^fp16\|^bf16\|rror"
  echo "== round $r: new default"; ./build/tools/facl-bench $B --pages 0,16 2>&1 | grep "^fp16\|^bf16\|rror"
done
} > $OUT/decode_ab_run74.txt 2>&1
grep "^fp16\|^bf16" $OUT/decode_h200_run74.txt; tail -8 $OUT/decode_h200_torch_run74.txt; cat $OUT/decode_ab_run74.txt
