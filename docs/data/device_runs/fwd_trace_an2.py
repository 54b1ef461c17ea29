#!/usr/bin/env python3
"""Run 140 (trace experiment): the Hopper forward's work-group start, step by step.
Slots (ns, %globaltimer) in the first output row of each row block: 0 entry, 8 barriers
initialised, 9 copier's maps acquired, 10 copier's first k boxes issued, 1 q in
registers (warpgroup 0), 2 first k tile landed (wg 0), 3/4 loop end (wg 0/1), 5/6 stores
done (wg 0/1), 11 SM id. Prints medians in us from entry."""
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
                r = struct.unpack_from('<12Q', data, off)
                if r[0] == 0: continue
                recs.append(r)
    med = lambda k: st.median([(r[k] - r[0]) / 1000.0 for r in recs])
    names = [(8, 'barriers'), (9, 'maps acquired'), (10, 'first k issued'), (1, 'q in registers'),
             (2, 'first k landed'), (3, 'loop end wg0'), (4, 'loop end wg1'), (5, 'stores wg0'), (6, 'stores wg1')]
    print(f"d={d} S={S} causal={causal} groups={len(recs)}: " + ", ".join(f"{n} {med(k):.2f}" for k, n in names))
