#!/bin/bash
# Session 25 (issue 12): the committed Hopper backward (split wait at head dim 64 only).
# The backward grid at d 64/128 (1k/4k/16k, causal off/on, fp16 and bf16) by default next
# to torch in one command (d = 256 runs attn_bwd_mma, unchanged: run 154), then test_bwd
# (default set, then the whole grid while time remains).
R=$(pwd)
rm -rf /tmp/S && mkdir /tmp/S && tar -xf $R/.device/snapS.tar -C /tmp/S
(cd /tmp/S && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonS.log 2>&1 && ninja -C build tools/facl-bench tests/test_bwd >> /tmp/mesonS.log 2>&1) || { echo "build failed"; tail -30 /tmp/mesonS.log; }
export FACL_DEVICE=NVIDIA FACL_CACHE_DIR=/tmp/ccS
cd /tmp/S
{
echo "== default"; timeout 150 ./build/tools/facl-bench --bwd -d NVIDIA --hdims 64,128 --seqlens 1024,4096,16384 --causal off,on --dtypes fp16,bf16 --json $OUT/bwd_h200_default_run155.json 2>&1 | grep "^fp16\|^bf16\|rror\|FAIL"
echo "== torch"; timeout 100 python3 $R/.device/torch_sdpa.py --bwd --dtypes float16,bfloat16 --hdims 64,128 --seqlens 1024,4096,16384 --json $OUT/bwd_h200_torch_run155.json 2>&1 | grep kind=
echo "== test_bwd default"; timeout 100 ./build/tests/test_bwd 2>&1 | grep -E "FAIL|PASSED|FAILED|rror|probe" | head -20
} > $OUT/bwd_h200_run155.txt 2>&1
echo "== test_bwd whole grid, default" > $OUT/bwd_h200_grid_run155.txt
FACL_BWD_ALL=1 timeout 170 ./build/tests/test_bwd >> $OUT/bwd_h200_grid_run155.txt 2>&1
grep -E "FAIL|PASSED|FAILED|rror" $OUT/bwd_h200_grid_run155.txt | head; grep -c "OK \]" $OUT/bwd_h200_grid_run155.txt
grep -v "^kind=" $OUT/bwd_h200_run155.txt | tail -32
