#!/bin/bash
# Session 22 (issue 10): the default forward grid with 128-key Hopper tiles and row blocks
# longest first (0496c5d), fp16 and bf16, next to torch, in one command.
R=$(pwd)
if [ ! -x /tmp/S/build/tools/facl-bench ]; then
  rm -rf /tmp/S && mkdir /tmp/S && tar -xf .device/snapH.tar -C /tmp/S
  (cd /tmp/S && meson setup build -Dbuildtype=release > /tmp/mesonS.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonS.log 2>&1) || { echo "build failed"; exit 1; }
fi
cd /tmp/S; export FACL_CACHE_DIR=/tmp/ccS
B="-d NVIDIA --baseline off --seqlens 1024,2048,4096,16384 --causal off,on --hdims 64,128,256"
{
for dt in fp16 bf16; do
  echo "== $dt default"; timeout 100 ./build/tools/facl-bench $B --dtypes $dt --json $OUT/fwd_h200_default_${dt}_run137.json 2>&1 | grep "^$dt\|rror"
done
echo "== torch"; timeout 150 python3 $R/.device/torch_sdpa.py --hdims 64,128,256 --seqlens 1024,2048,4096,16384 --dtypes float16,bfloat16 --json $OUT/fwd_h200_torch_run137.json 2>&1 | grep kind=
} > $OUT/fwd_h200_default_run137.txt 2>&1
cat $OUT/fwd_h200_default_run137.txt
