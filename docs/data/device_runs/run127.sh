#!/bin/bash
# Session 21 (issue 10): the forward grid, fp16 and bf16, in one command: the Hopper
# kernel (WS + ping-pong) with the tensor copy engine and with cp.async, attn_fwd_mma
# (the default), torch's FlashAttention 2.
R=$(pwd)
if [ ! -x /tmp/S/build/tools/facl-bench ]; then  # a fresh machine: build again
  rm -rf /tmp/S && mkdir /tmp/S && tar -xf .device/snapS.tar -C /tmp/S
  (cd /tmp/S && meson setup build -Dbuildtype=release > /tmp/mesonS.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonS.log 2>&1) || { echo "build failed"; exit 1; }
fi
cd /tmp/S || exit 1
export FACL_CACHE_DIR=/tmp/ccS
B="-d NVIDIA --baseline off --seqlens 1024,4096,16384 --causal off,on --hdims 64,128,256"
W="FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2"
{
for dt in fp16 bf16; do
  echo "== $dt TMA"; env $W timeout 100 ./build/tools/facl-bench $B --dtypes $dt --json $OUT/fwd_h200_tma_${dt}_run127.json 2>&1 | grep "^$dt\|rror"
  echo "== $dt cp.async"; env $W FACL_FWD_TMA=0 timeout 100 ./build/tools/facl-bench $B --dtypes $dt --json $OUT/fwd_h200_cp_${dt}_run127.json 2>&1 | grep "^$dt\|rror"
  echo "== $dt mma.sync"; timeout 100 ./build/tools/facl-bench $B --dtypes $dt --json $OUT/fwd_h200_mma_${dt}_run127.json 2>&1 | grep "^$dt\|rror"
done
echo "== torch"; timeout 150 python3 $R/.device/torch_sdpa.py --hdims 64,128,256 --seqlens 1024,4096,16384 --dtypes float16,bfloat16 --json $OUT/fwd_h200_torch_run127.json 2>&1 | grep kind=
} > $OUT/fwd_h200_run127.txt 2>&1
cat $OUT/fwd_h200_run127.txt
