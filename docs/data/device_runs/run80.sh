#!/bin/bash
# Session 15: timestamp trace of attn_cache_mma (experiment build snapT, the probe skipped: the
# traced kernel writes timestamps instead of out) over KV lengths; untraced times beside it.
for x in B T; do
  rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
done
(cd /tmp/T && meson setup build -Dbuildtype=release > $OUT/mesonT.log 2>&1 && ninja -C build tools/facl-bench >> $OUT/mesonT.log 2>&1) &
(cd /tmp/B && meson setup build -Dbuildtype=release > $OUT/mesonB.log 2>&1 && ninja -C build tools/facl-bench >> $OUT/mesonB.log 2>&1) || { tail -30 $OUT/mesonB.log; exit 1; }
wait
mkdir -p /tmp/trace
A="--decode -d NVIDIA --dtypes fp16 --copy-gbps 4270 --kv-lens 16,256,1024,4096,16384 --pages 0,16 --splits 0 --forward-row off"
{
echo "== traced"; (cd /tmp/T && FACL_KERNEL_PATH=nvidia-mma FACL_CACHE_DIR=/tmp/ccache80t FACL_CACHE_TRACE=/tmp/trace timeout 120 ./build/tools/facl-bench $A --no-verify 2>&1 | grep "^fp16\|rror\|empty")
echo "== untraced, forced path"; (cd /tmp/B && FACL_KERNEL_PATH=nvidia-mma FACL_CACHE_DIR=/tmp/ccache80 timeout 120 ./build/tools/facl-bench $A 2>&1 | grep "^fp16\|rror\|empty")
} > $OUT/trace_run80.txt 2>&1
tar -czf $OUT/trace_run80.tgz -C /tmp trace
cat $OUT/trace_run80.txt
