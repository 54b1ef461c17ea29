#!/bin/bash
# Session 17: the rate of wgmma m64nNk16 from OpenCL by N and A's source (tools/probes/wgmma_rate.c)
cc -O2 -o /tmp/wgmma_rate .device/wgmma_rate.c -lOpenCL 2>&1 | grep -v warning | head -5
timeout 200 /tmp/wgmma_rate 4000 2>&1 | tee $OUT/wgmma_rate_run97.txt
