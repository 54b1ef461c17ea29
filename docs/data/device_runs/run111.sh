#!/bin/bash
# Session 19: decode A (HEAD) against B (speculative first stage etc.), alternating twice,
# fp16 and bf16, contiguous and paged 16 / 256; B with the lengths as one host value; torch
# in both row orders; one command after the other. run110.sh built /tmp/A and /tmp/B.
here=$PWD
for x in A B; do
  [ -x /tmp/$x/build/tools/facl-bench ] && continue
  rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
  (cd /tmp/$x && meson setup build -Dbuildtype=release > /tmp/meson$x.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/meson$x.log 2>&1 || echo "build $x failed")
done
B1="--decode -d NVIDIA --copy-gbps 4270 --forward-row off --kv-lens 1024,4096,16384,65536 --pages 0,16,256"
{
for x in A B A; do
  echo "== $x"; date +%s
  (cd /tmp/$x && FACL_CACHE_DIR=/tmp/cc111$x timeout 120 ./build/tools/facl-bench $B1 2>&1 | grep "^fp16\|^bf16\|rror")
done
echo "== B (json)"; date +%s
(cd /tmp/B && FACL_CACHE_DIR=/tmp/cc111B timeout 120 ./build/tools/facl-bench $B1 --json $OUT/decode_h200_run111.json 2>&1 | grep "^fp16\|^bf16\|rror")
echo "== B, --cache-lens value"; date +%s
(cd /tmp/B && FACL_CACHE_DIR=/tmp/cc111B timeout 120 ./build/tools/facl-bench $B1 --cache-lens value --json $OUT/decode_h200_lensvalue_run111.json 2>&1 | grep "^fp16\|^bf16\|rror")
date +%s
} > $OUT/decode_h200_ab_run111.txt 2>&1
cat $OUT/decode_h200_ab_run111.txt
timeout 150 python3 /tmp/B/tools/torch_decode.py --json $OUT/decode_h200_torch_run111.json > $OUT/decode_h200_torch_run111.txt 2>&1
echo "torch rc $?"; cat $OUT/decode_h200_torch_run111.txt
