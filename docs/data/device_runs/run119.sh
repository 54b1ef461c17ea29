#!/bin/bash
# Session 20: what the L2's state before a timed run does to both sides. F = HEAD with
# FACL_BENCH_FLUSH_READ (experiment: after the fill, a kernel reads the flush buffer, so
# the L2 holds clean lines, not dirty ones). facl default / read-flush alternating, torch
# with do_bench (zero_) / zero_+read / no flush.
rm -rf /tmp/F && mkdir /tmp/F && tar -xf .device/snapF.tar -C /tmp/F
cd /tmp/F && (meson setup build -Dbuildtype=release > /tmp/mesonF.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonF.log 2>&1) || { echo "build failed"; tail -20 /tmp/mesonF.log; exit 1; }
export FACL_CACHE_DIR=/tmp/cc119
B1="--decode -d NVIDIA --copy-gbps 4270 --forward-row off --kv-lens 4096,16384,65536 --pages 0"
{
for i in 1 2; do
  echo "== facl fill $i"; timeout 60 ./build/tools/facl-bench $B1 2>&1 | grep "^fp16\|^bf16\|rror"
  echo "== facl fill+read $i"; FACL_BENCH_FLUSH_READ=1 timeout 60 ./build/tools/facl-bench $B1 2>&1 | grep "^fp16\|^bf16\|rror"
done
echo "== torch"; timeout 200 python3 $OLDPWD/.device/torch_flush.py 2>&1
} > $OUT/decode_h200_flush_run119.txt 2>&1
cat $OUT/decode_h200_flush_run119.txt
