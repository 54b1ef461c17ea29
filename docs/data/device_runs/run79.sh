#!/bin/bash
# Session 15: the committed decode defaults (8x2 bulk for few units, the 3-variant probe) through
# the suites; a timestamp trace of attn_cache_mma (experiment build, snapT) over KV lengths;
# decode next to torch in one command.
here=$PWD
for x in B T; do
  rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
done
(cd /tmp/T && meson setup build -Dbuildtype=release > $OUT/mesonT.log 2>&1 && ninja -C build tools/facl-bench >> $OUT/mesonT.log 2>&1) &
(cd /tmp/B && meson setup build -Dbuildtype=release -Dtests=enabled > $OUT/mesonB.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_kvcache tests/test_api tests/test_threads >> $OUT/mesonB.log 2>&1) || { tail -30 $OUT/mesonB.log; exit 1; }
wait
test -x /tmp/T/build/tools/facl-bench || { tail -30 $OUT/mesonT.log; }
cd /tmp/B
export FACL_CACHE_DIR=/tmp/ccache79
{
timeout 200 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick > $OUT/selftest_run79.txt 2>&1; echo "selftest rc $?"; tail -3 $OUT/selftest_run79.txt
for t in test_kvcache test_api test_threads; do echo $t; FACL_DEVICE=NVIDIA timeout 200 ./build/tests/$t 2>&1 | grep -E "FAILED|PASSED|rror" | head -8; done
} > $OUT/suites_run79.txt 2>&1
cat $OUT/suites_run79.txt
mkdir -p $OUT/trace
(cd /tmp/T && FACL_CACHE_DIR=/tmp/ccache79t FACL_CACHE_TRACE=$OUT/trace timeout 120 ./build/tools/facl-bench --decode -d NVIDIA --dtypes fp16 --copy-gbps 4270 --kv-lens 16,256,1024,4096,16384 --pages 0,16 --splits 0 --forward-row off --no-verify > $OUT/trace_run79.txt 2>&1; grep "^fp16\|rror\|empty" $OUT/trace_run79.txt)
timeout 150 ./build/tools/facl-bench --decode -d NVIDIA --copy-gbps 4270 --kv-lens 1024,4096,16384,65536 --pages 0,16,256 --splits 0 --forward-row off --json $OUT/decode_h200_run79.json > $OUT/decode_h200_run79.txt 2>&1
timeout 150 python3 $here/.device/torch_sdpa.py --decode --json $OUT/decode_h200_torch_run79.json > $OUT/decode_h200_torch_run79.txt 2>&1
grep "^fp16\|^bf16\|empty" $OUT/decode_h200_run79.txt; tail -8 $OUT/decode_h200_torch_run79.txt
