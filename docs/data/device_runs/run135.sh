#!/bin/bash
# Session 22 (issue 10): the Hopper kernel with 128-key tiles (FACL_FWD_WGMMA_BLOCK_N=128,
# d <= 128) against 64: the forward suite with it forced, then forced-Hopper A/B grids
# (fp16, d 64 and 128) alternating, torch in the same command.
R=$(pwd)
rm -rf /tmp/S && mkdir /tmp/S && tar -xf .device/snapS.tar -C /tmp/S
cd /tmp/S && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonS.log 2>&1 && ninja -C build tools/facl-bench tests/test_forward >> /tmp/mesonS.log 2>&1 || { echo "build failed"; tail -30 /tmp/mesonS.log; exit 1; }
export FACL_CACHE_DIR=/tmp/ccS
W="FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2"
{
echo "== test_forward forced Hopper, 128-key tiles"
env $W FACL_FWD_WGMMA_BLOCK_N=128 FACL_DEVICE=NVIDIA timeout 240 ./build/tests/test_forward 2>&1 | tail -3
} > $OUT/bn128_suites_run135.txt 2>&1
cat $OUT/bn128_suites_run135.txt
S="-d NVIDIA --baseline off --seqlens 1024,2048,4096,16384 --causal off,on --hdims 64,128 --dtypes fp16"
{
for rep in 1 2; do
for bn in 64 128; do
  echo "== forced Hopper BLOCK_N=$bn rep $rep"; env $W FACL_FWD_WGMMA_BLOCK_N=$bn timeout 100 ./build/tools/facl-bench $S $([ $rep = 2 ] && echo --json $OUT/bn${bn}.json) 2>&1 | grep "^fp16\|rror"
done
done
echo "== torch"; timeout 150 python3 $R/.device/torch_sdpa.py --hdims 64,128 --seqlens 1024,2048,4096,16384 --dtypes float16 --json $OUT/bn_torch.json 2>&1 | grep kind=
} > $OUT/bn128_run135.txt 2>&1
cat $OUT/bn128_run135.txt
