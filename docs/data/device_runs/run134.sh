#!/bin/bash
# Session 22 (issue 10): row blocks longest first (5eea372) against 745979f, in one
# command: the default forward (Hopper kernel where faster) and attn_fwd_mma
# (FACL_FWD_WGMMA=0), fp16; causal cells for both trees, the whole grid for the new one;
# torch FA2 in the same command.
R=$(pwd)
for t in A B; do
  rm -rf /tmp/$t && mkdir /tmp/$t && tar -xf .device/snap$t.tar -C /tmp/$t
  (cd /tmp/$t && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/meson$t.log 2>&1 && ninja -C build tools/facl-bench tests/test_forward tests/test_bwd >> /tmp/meson$t.log 2>&1) || { echo "build $t failed"; tail -20 /tmp/meson$t.log; exit 1; }
done
S="--seqlens 1024,2048,4096,16384 --hdims 64,128,256 --dtypes fp16"
{
for rep in 1 2; do
for t in A B; do
  cd /tmp/$t; export FACL_CACHE_DIR=/tmp/cc$t
  echo "== $t default causal"; timeout 100 ./build/tools/facl-bench -d NVIDIA --baseline off $S --causal on $([ $rep = 2 ] && echo --json $OUT/lf_${t}_def_c.json) 2>&1 | grep "^fp16\|rror"
  echo "== $t mma causal"; FACL_FWD_WGMMA=0 timeout 100 ./build/tools/facl-bench -d NVIDIA --baseline off $S --causal on $([ $rep = 2 ] && echo --json $OUT/lf_${t}_mma_c.json) 2>&1 | grep "^fp16\|rror"
done
done
cd /tmp/B
echo "== B default non-causal"; timeout 100 ./build/tools/facl-bench -d NVIDIA --baseline off $S --causal off 2>&1 | grep "^fp16\|rror"
echo "== torch"; timeout 150 python3 $R/.device/torch_sdpa.py --hdims 64,128,256 --seqlens 1024,2048,4096,16384 --dtypes float16 --json $OUT/lf_torch.json 2>&1 | grep kind=
} > $OUT/longest_first_run134.txt 2>&1
cat $OUT/longest_first_run134.txt
