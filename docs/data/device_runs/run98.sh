#!/bin/bash
# Session 17: where attn_fwd_wgmma's time goes (WS + ping-pong, fp16): the committed
# kernel, the same without the copier's k/v copies (N: products on stale tiles), and
# without the products (P: copies and softmax only). Experiments, not committed.
here=$PWD
G="-d NVIDIA --dtypes fp16 --baseline off --seqlens 4096,16384 --causal off"
for v in N P; do
  rm -rf /tmp/E$v && mkdir /tmp/E$v && tar -xf .device/snap$v.tar -C /tmp/E$v
  (cd /tmp/E$v && meson setup build -Dbuildtype=release > /tmp/m$v.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/m$v.log 2>&1) || { echo "build $v failed"; tail -20 /tmp/m$v.log; }
done
{
for v in N P; do
  echo "== $v WS=2"; (cd /tmp/E$v && FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2 FACL_CACHE_DIR=/tmp/cc98$v timeout 100 ./build/tools/facl-bench $G 2>&1 | grep "^fp16\|rror")
done
} | tee $OUT/wgmma_breakdown_run98.txt
