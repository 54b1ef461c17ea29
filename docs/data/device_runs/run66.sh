#!/bin/bash
# Session 13: where a short row block's time goes (attn_fwd_mma), experiment switches
# (FACL_EXP_OPTS, scratch patch docs/data/device_runs/run66_experiment_switches.patch;
# results wrong for NO_*, so the path is forced past the probe).
x=C; rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
(cd /tmp/$x && meson setup build -Dbuildtype=release > $OUT/meson$x.log 2>&1 && ninja -C build >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
B=/tmp/C/build/tools/facl-bench
G="-d NVIDIA --dtypes fp16 --seqlens 512,1024,16384 --baseline off --reps 5 --causal off"
export FACL_KERNEL_PATH=nvidia-mma
{
for r in 1 2; do
for o in "" "-DEXP_PAIR_STORE" "-DEXP_NO_STORE" "-DEXP_NO_QSTAGE" "-DEXP_NO_LOOP" "-DEXP_NO_LOOP -DEXP_NO_STORE -DEXP_NO_QSTAGE"; do
  echo "== round $r opts '$o'"; FACL_EXP_OPTS="$o" $B $G 2>&1 | grep "^fp16\|rror"
done; done
echo "== base, 4x the tokens"; $B $G --tokens 65536 2>&1 | grep "^fp16\|rror"
echo "== pair stores, causal"; FACL_EXP_OPTS="-DEXP_PAIR_STORE" $B -d NVIDIA --dtypes fp16 --seqlens 512,1024,16384 --baseline off --reps 5 --causal on 2>&1 | grep "^fp16\|rror"
echo "== base, causal"; $B -d NVIDIA --dtypes fp16 --seqlens 512,1024,16384 --baseline off --reps 5 --causal on 2>&1 | grep "^fp16\|rror"
} > $OUT/breakdown66.txt 2>&1
cat $OUT/breakdown66.txt
