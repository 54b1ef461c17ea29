#!/bin/bash
# Session 13: decode on HEAD (plan memo) next to torch in one command.
x=B; rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
(cd /tmp/$x && meson setup build -Dbuildtype=release -Dtests=disabled > $OUT/meson$x.log 2>&1 && ninja -C build tools/facl-bench >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
here=$PWD
cd /tmp/B
./build/tools/facl-bench --decode -d NVIDIA --copy-gbps 4270 --kv-lens 1024,4096,16384,65536 --pages 0,16 --splits 0 --forward-row off --json $OUT/decode_h200_run70.json > $OUT/decode_h200_run70.txt 2>&1
python3 $here/.device/torch_sdpa.py --decode --json $OUT/decode_h200_torch_run70.json > $OUT/decode_h200_torch_run70.txt 2>&1
tail -12 $OUT/decode_h200_run70.txt; tail -10 $OUT/decode_h200_torch_run70.txt
