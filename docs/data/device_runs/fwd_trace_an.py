#!/usr/bin/env python3
"""Run 138 (trace experiment): per work-group timestamps of the Hopper forward, written
into the first row of each row block's output: entry, first k tile landed (warpgroup 0,
1), loop end (0, 1), stores done (0, 1), SM id. Prints medians (us) and per-SM gaps."""
import re, struct, sys, statistics as st
for path in sys.argv[1:]:
    m = re.search(r'trace_d(\d+)_s(\d+)_c(\d+)_b(\d+)_h(\d+)', path)
    d, S, causal, B, H = map(int, m.groups())
    data = open(path, 'rb').read()
    nb = (S + 127) // 128
    recs = []
    for b in range(B):
        for h in range(H):
            for rb in range(nb):
                off = (((b * S + rb * 128) * H + h) * d) * 2
                r = struct.unpack_from('<8Q', data, off)
                if r[0] == 0: continue
                recs.append((rb,) + r)
    if not recs:
        print(path, 'no records'); continue
    t0 = min(r[1] for r in recs)
    us = lambda x: x / 1000.0
    pro = [us(r[2] - r[1]) for r in recs]
    pro1 = [us(r[3] - r[1]) for r in recs]
    loop0 = [us(r[4] - r[2]) for r in recs]
    epi0 = [us(r[6] - r[4]) for r in recs]
    epi1 = [us(r[7] - r[5]) for r in recs]
    end = [max(r[6], r[7]) for r in recs]
    span = us(max(end) - t0)
    bysm = {}
    for r, e in zip(recs, end):
        bysm.setdefault(r[8], []).append((r[1], e))
    gaps, first, tail = [], [], []
    lastend = max(end)
    for sm, v in bysm.items():
        v.sort()
        first.append(us(v[0][0] - t0))
        tail.append(us(lastend - v[-1][1]))
        for a, bb in zip(v, v[1:]):
            gaps.append(us(bb[0] - a[1]))
    busy = sum(us(e - r[1]) for r, e in zip(recs, end))
    med = lambda x: st.median(x) if x else float('nan')
    print(f"d={d} S={S} causal={causal} groups={len(recs)} SMs={len(bysm)} span {span:.1f} us; "
          f"median us: first tile in (wg0/wg1) {med(pro):.2f}/{med(pro1):.2f}, loop wg0 {med(loop0):.2f}, "
          f"stores wg0/wg1 {med(epi0):.2f}/{med(epi1):.2f}, gap between groups on an SM {med(gaps):.2f} "
          f"(p90 {sorted(gaps)[int(0.9*len(gaps))] if gaps else 0:.2f}), SM first start {med(first):.2f}, "
          f"SM idle at the end median {med(tail):.2f} max {max(tail):.2f}; busy {100*busy/(span*len(bysm)):.1f}% of SM-time; "
          f"prologue share {100*sum(pro)/busy:.1f}%, stores share {100*sum(epi0)/busy:.1f}%, gaps share {100*sum(gaps)/(span*len(bysm)):.1f}%")
