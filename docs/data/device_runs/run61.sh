#!/bin/bash
# Session 12: attn_fwd_mma with k and v double-buffered (KV_STAGES=2) against the single
# buffer, per shape (FACL_FWD_MMA_SHAPE=m_tiles,q_local,block_n,kv_stages), B = working tree
# (scale folded into the exponent + KV_STAGES); A = HEAD for reference.
for x in A B; do
  t=.device/snap$x.tar; [ $x = A ] && t=.device/snap.tar
  rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf $t -C /tmp/$x
  (cd /tmp/$x && meson setup build -Dbuildtype=release > $OUT/meson$x.log 2>&1 && ninja -C build >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
done
G="-d NVIDIA --dtypes fp16 --seqlens 1024,4096,16384 --baseline off --reps 5 --causal off,on"
{
echo "== A (HEAD) default"; /tmp/A/build/tools/facl-bench $G 2>&1 | grep "^fp16\|rror"
for sh in "" 2,1,64,1 2,1,64,2 2,1,32,2 1,1,64,1 1,1,32,2 1,1,32,1; do
  echo "== B shape '$sh'"; FACL_FWD_MMA_SHAPE=$sh /tmp/B/build/tools/facl-bench $G 2>&1 | grep "^fp16\|rror"
done
echo "== A (HEAD) default again"; /tmp/A/build/tools/facl-bench $G 2>&1 | grep "^fp16\|rror"
} > $OUT/shapes61.txt
cat $OUT/shapes61.txt
mkdir -p /tmp/cacheB
for sh in 2,1,64,2 1,1,32,2; do (cd /tmp/B && FACL_FWD_MMA_SHAPE=$sh FACL_CACHE_DIR=/tmp/cacheB ./build/tools/facl-bench -d NVIDIA --dtypes fp16 --seqlens 4096 --causal off --baseline off --reps 3 > /dev/null 2>&1); done
tar -czf $OUT/cacheB.tgz -C /tmp/cacheB .
cd /tmp/B
for sh in "" 2,1,64,2 1,1,32,2; do
  FACL_FWD_MMA_SHAPE=$sh FACL_DEVICE=NVIDIA ./build/tests/test_forward > $OUT/test_forward_B_$sh.txt 2>&1; echo "test_forward shape '$sh' rc $?"; tail -1 $OUT/test_forward_B_$sh.txt
done
