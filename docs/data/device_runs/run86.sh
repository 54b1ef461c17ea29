#!/bin/bash
# Session 16: why the driver allows 256 work-items for the WS kernel: its cached PTX back
cd /tmp/W || exit 1
python3 tools/driver_ptx_regs.py /tmp/ccWS 2>&1 | grep -v "threads 256" | head -20
mkdir -p /tmp/ptxws
for f in /tmp/ccWS/*; do
  if grep -q "reqntid 288" "$f" 2>/dev/null; then cp "$f" /tmp/ptxws/; fi
done
ls -la /tmp/ptxws | head
tar -czf $OUT/ptxws.tgz -C /tmp ptxws
