#!/bin/bash
# Session 14: the final decode defaults (sm_90: copy engine, 4 warps x 2 stages for a dense
# cache and pages >= 256; cp.async 2 x 2 for smaller pages) next to torch in one command,
# and the suites (the context's probe now runs both copy variants).
x=B; rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
(cd /tmp/$x && meson setup build -Dbuildtype=release -Dtests=enabled > $OUT/meson$x.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_kvcache tests/test_api tests/test_threads >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
here=$PWD
cd /tmp/B
export FACL_CACHE_DIR=/tmp/ccache76
{
./build/tools/facl-selftest -d NVIDIA --no-speed --quick > $OUT/selftest_run76.txt 2>&1; echo "selftest rc $?"; tail -3 $OUT/selftest_run76.txt
for t in test_kvcache test_api test_threads; do echo $t; FACL_DEVICE=NVIDIA timeout 300 ./build/tests/$t 2>&1 | grep -E "FAILED|PASSED|rror" | head -8; done
} > $OUT/suites_run76.txt 2>&1
cat $OUT/suites_run76.txt
./build/tools/facl-bench --decode -d NVIDIA --copy-gbps 4270 --kv-lens 1024,4096,16384,65536 --pages 0,16,256 --splits 0 --forward-row off --json $OUT/decode_h200_run76.json > $OUT/decode_h200_run76.txt 2>&1
python3 $here/.device/torch_sdpa.py --decode --json $OUT/decode_h200_torch_run76.json > $OUT/decode_h200_torch_run76.txt 2>&1
grep "^fp16\|^bf16" $OUT/decode_h200_run76.txt; tail -8 $OUT/decode_h200_torch_run76.txt
