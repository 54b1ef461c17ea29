#!/bin/bash
# Session 12: the driver's PTX of attn_fwd_mma (d 64/128/256, fp16, causal off/on) for SASS
# study off the machine, and a baseline of the subset grid at HEAD.
set -x
mkdir -p $OUT/cache
rm -rf /tmp/b && mkdir /tmp/b && tar -xf .device/snap.tar -C /tmp/b && cd /tmp/b
meson setup build -Dbuildtype=release > $OUT/meson.log 2>&1 && ninja -C build >> $OUT/meson.log 2>&1 || { tail -30 $OUT/meson.log; exit 1; }
FACL_CACHE_DIR=$OUT/cache ./build/tools/facl-bench -d NVIDIA --dtypes fp16 --seqlens 1024,4096,16384 --baseline off --json $OUT/base58.json 2>&1 | tee $OUT/base58.txt
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw --format=csv > $OUT/smi.txt
ls -la $OUT/cache | head
