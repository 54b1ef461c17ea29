#!/bin/bash
# Session 15: attn_cache_mma with every stage issued before Q, L2 hints at the start, and the
# warps' merge spread over the work-group (snapB); its trace (snapT); the suites on the H200
# with the default and two forced shapes; decode next to torch in one command.
here=$PWD
for x in B T; do
  rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
done
(cd /tmp/T && meson setup build -Dbuildtype=release > $OUT/mesonT.log 2>&1 && ninja -C build tools/facl-bench >> $OUT/mesonT.log 2>&1) &
(cd /tmp/B && meson setup build -Dbuildtype=release -Dtests=enabled > $OUT/mesonB.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_kvcache tests/test_api >> $OUT/mesonB.log 2>&1) || { tail -30 $OUT/mesonB.log; exit 1; }
wait
cd /tmp/B
export FACL_CACHE_DIR=/tmp/ccache81
{
timeout 200 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick > $OUT/selftest_run81.txt 2>&1; echo "selftest rc $?"; tail -3 $OUT/selftest_run81.txt
for shape in "" 8,2,bulk 2,2,async; do echo "test_kvcache shape '$shape'"; FACL_CACHE_MMA_SHAPE=$shape FACL_DEVICE=NVIDIA timeout 150 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror" | head -8; done
echo test_api; FACL_DEVICE=NVIDIA timeout 100 ./build/tests/test_api 2>&1 | grep -E "FAILED|PASSED|rror" | head -8
} > $OUT/suites_run81.txt 2>&1
cat $OUT/suites_run81.txt
mkdir -p /tmp/trace
(cd /tmp/T && FACL_KERNEL_PATH=nvidia-mma FACL_CACHE_DIR=/tmp/ccache81t FACL_CACHE_TRACE=/tmp/trace timeout 100 ./build/tools/facl-bench --decode -d NVIDIA --dtypes fp16 --copy-gbps 4270 --kv-lens 16,256,1024,4096,16384 --pages 0 --splits 0 --forward-row off --no-verify > $OUT/trace_run81.txt 2>&1; grep "^fp16\|rror" $OUT/trace_run81.txt)
tar -czf $OUT/trace_run81.tgz -C /tmp trace
timeout 150 ./build/tools/facl-bench --decode -d NVIDIA --copy-gbps 4270 --kv-lens 1024,4096,16384,65536 --pages 0,16,256 --splits 0 --forward-row off --json $OUT/decode_h200_run81.json > $OUT/decode_h200_run81.txt 2>&1
timeout 150 python3 $here/.device/torch_sdpa.py --decode --json $OUT/decode_h200_torch_run81.json > $OUT/decode_h200_torch_run81.txt 2>&1
grep "^fp16\|^bf16\|empty" $OUT/decode_h200_run81.txt; tail -8 $OUT/decode_h200_torch_run81.txt
