#!/bin/bash
# Session 26 (issue 12): the backward's new default (deterministic = 0 takes attn_bwd_wgmma's
# atomic-dq variant where key blocks see >= 4096 rows on average, the deterministic
# kernels below), as committed. test_bwd by default (its probe now runs the atomic
# variant too), then facl-bench's backward grid at d 64/128 (1k/4k/16k, causal off/on,
# fp16 and bf16) by default next to torch, in one command.
R=$(pwd)
rm -rf /tmp/S && mkdir /tmp/S && tar -xf $R/.device/snapS.tar -C /tmp/S
(cd /tmp/S && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonS.log 2>&1 && ninja -C build tools/facl-bench tests/test_bwd >> /tmp/mesonS.log 2>&1) || { echo "build failed"; tail -30 /tmp/mesonS.log; }
export FACL_DEVICE=NVIDIA FACL_CACHE_DIR=/tmp/ccS
cd /tmp/S
{
echo "== test_bwd default"; timeout 150 ./build/tests/test_bwd 2>&1 | grep -E "FAIL|PASSED|FAILED|rror|probe" | head -20
echo "== default"; timeout 100 ./build/tools/facl-bench --bwd -d NVIDIA --hdims 64,128 --seqlens 1024,4096,16384 --causal off,on --dtypes fp16,bf16 --json $OUT/bwd_h200_default_run159.json 2>&1 | grep "^fp16\|^bf16\|rror\|FAIL"
echo "== torch"; timeout 100 python3 $R/.device/torch_sdpa.py --bwd --dtypes float16,bfloat16 --hdims 64,128 --seqlens 1024,4096,16384 --json $OUT/bwd_h200_torch_run159.json 2>&1 | grep kind=
} > $OUT/bwd_h200_run159.txt 2>&1
grep -v '^kind=' $OUT/bwd_h200_run159.txt | tail -40
