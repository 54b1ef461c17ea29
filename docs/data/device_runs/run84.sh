#!/bin/bash
# Session 15: A = HEAD (8a44841) against Q = Q read before the first copies (no rotary),
# alternating; Q through the suites; torch in the same command.
here=$PWD
for x in A Q; do
  rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
done
(cd /tmp/A && meson setup build -Dbuildtype=release > /tmp/mesonA.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonA.log 2>&1 || echo "build A failed") &
(cd /tmp/Q && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonQ.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_kvcache >> /tmp/mesonQ.log 2>&1 || { echo "build Q failed"; tail -20 /tmp/mesonQ.log; })
wait
A1="--decode -d NVIDIA --dtypes fp16 --copy-gbps 4270 --kv-lens 1024,4096,16384,65536 --pages 0,16 --splits 0 --forward-row off"
{
for x in A Q A Q; do
  echo "== $x"; (cd /tmp/$x && FACL_CACHE_DIR=/tmp/cc84$x timeout 60 ./build/tools/facl-bench $A1 2>&1 | grep "^fp16\|rror")
done
cd /tmp/Q
export FACL_CACHE_DIR=/tmp/cc84D
timeout 150 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick > /tmp/selftest84.txt 2>&1; echo "selftest rc $?"; tail -3 /tmp/selftest84.txt
for shape in "" 2,2,async; do echo "test_kvcache shape '$shape'"; FACL_CACHE_MMA_SHAPE=$shape FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror" | head -8; echo "rc ${PIPESTATUS[0]}"; done
} > $OUT/ab_run84.txt 2>&1
cat $OUT/ab_run84.txt
timeout 120 python3 $here/.device/torch_sdpa.py --decode > $OUT/torch_run84.txt 2>&1; tail -8 $OUT/torch_run84.txt
