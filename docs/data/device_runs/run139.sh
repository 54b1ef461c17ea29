#!/bin/bash
# Session 22 (issue 10): the Hopper kernel's output through quad-transposed 16-byte stores
# (O_QUADS) against d0daa39 (value by value): forced Hopper grids alternating, then the
# forward suite with the default and with the forced WS + engine kernel.
R=$(pwd)
for t in A S; do
  rm -rf /tmp/$t && mkdir /tmp/$t && tar -xf .device/snap$t.tar -C /tmp/$t
  (cd /tmp/$t && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/meson$t.log 2>&1 && ninja -C build tools/facl-bench tests/test_forward >> /tmp/meson$t.log 2>&1) || { echo "build $t failed"; tail -20 /tmp/meson$t.log; exit 1; }
done
W="FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2"
S="-d NVIDIA --baseline off --seqlens 1024,4096,16384 --causal off,on --hdims 64,128,256 --dtypes fp16"
{
for rep in 1 2; do
for t in A S; do
  cd /tmp/$t; export FACL_CACHE_DIR=/tmp/cc$t
  echo "== $t forced Hopper rep $rep"; env $W timeout 100 ./build/tools/facl-bench $S $([ $rep = 2 ] && echo --json $OUT/oq_$t.json) 2>&1 | grep "^fp16\|rror"
done
done
cd /tmp/S; export FACL_CACHE_DIR=/tmp/ccS
echo "== test_forward default"; FACL_DEVICE=NVIDIA timeout 150 ./build/tests/test_forward 2>&1 | tail -2
echo "== test_forward forced WS + engine"; env $W FACL_DEVICE=NVIDIA timeout 150 ./build/tests/test_forward 2>&1 | tail -2
} > $OUT/oquads_run139.txt 2>&1
cat $OUT/oquads_run139.txt
