#!/bin/bash
# Session 12 final: the forward grid (fp16, bf16) and the bf16 backward next to torch in
# one command, then the suites on the H200.
x=B; rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
(cd /tmp/$x && meson setup build -Dbuildtype=release > $OUT/meson$x.log 2>&1 && ninja -C build >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
here=$PWD
cd /tmp/B
./build/tools/facl-bench -d NVIDIA --dtypes fp16,bf16 --baseline off --json $OUT/fwd_h200_run64.json > $OUT/fwd_h200_run64.txt 2>&1
python3 $here/.device/torch_sdpa.py --json $OUT/fwd_h200_torch_run64.json > $OUT/fwd_h200_torch_run64.txt 2>&1
./build/tools/facl-bench --bwd -d NVIDIA --dtypes bf16 --hdims 64,128,256 --seqlens 1024,4096,16384 --causal off,on --json $OUT/bwd_h200_run64.json > $OUT/bwd_h200_run64.txt 2>&1
python3 $here/.device/torch_sdpa.py --bwd --dtypes bfloat16 --hdims 64,128,256 --seqlens 1024,4096,16384 --json $OUT/bwd_h200_torch_run64.json > $OUT/bwd_h200_torch_run64.txt 2>&1
tail -3 $OUT/*.txt
{
./build/tools/facl-selftest -d NVIDIA --no-speed --quick > $OUT/selftest_run64.txt 2>&1; echo "selftest rc $?"; tail -3 $OUT/selftest_run64.txt
FACL_DEVICE=NVIDIA ./build/tests/test_forward 2>&1 | tail -1
FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_bwd 2>&1 | tail -1
FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_kvcache 2>&1 | tail -1
FACL_FWD_WGMMA=1 FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_forward 2>&1 | tail -1
} > $OUT/suites_run64.txt 2>&1
cat $OUT/suites_run64.txt
