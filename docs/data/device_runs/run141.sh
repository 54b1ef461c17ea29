#!/bin/bash
# Session 22 (issue 10): the default forward grid with 128-key Hopper tiles and row blocks
# longest first (50d454b: 128-key tiles, longest first, 16-byte output stores, Hopper from 1k keys above d = 64), fp16 and bf16, next to torch, in one command.
R=$(pwd)
if true; then
  rm -rf /tmp/S && mkdir /tmp/S && tar -xf .device/snapH.tar -C /tmp/S
  (cd /tmp/S && meson setup build -Dbuildtype=release > /tmp/mesonS.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonS.log 2>&1) || { echo "build failed"; exit 1; }
fi
cd /tmp/S; export FACL_CACHE_DIR=/tmp/ccS
B="-d NVIDIA --baseline off --seqlens 1024,2048,4096,16384 --causal off,on --hdims 64,128,256"
{
for dt in fp16 bf16; do
  echo "== $dt default"; timeout 100 ./build/tools/facl-bench $B --dtypes $dt --json $OUT/fwd_h200_default_${dt}_run141.json 2>&1 | grep "^$dt\|rror"
done
echo "== fp16 attn_fwd_mma (FACL_FWD_WGMMA=0)"; FACL_FWD_WGMMA=0 timeout 100 ./build/tools/facl-bench $B --dtypes fp16 --json $OUT/fwd_h200_mma_fp16_run141.json 2>&1 | grep "^fp16\|rror"
echo "== torch"; timeout 150 python3 $R/.device/torch_sdpa.py --hdims 64,128,256 --seqlens 1024,2048,4096,16384 --dtypes float16,bfloat16 --json $OUT/fwd_h200_torch_run141.json 2>&1 | grep kind=
} > $OUT/fwd_h200_default_run141.txt 2>&1
cat $OUT/fwd_h200_default_run141.txt
