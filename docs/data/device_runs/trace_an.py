#!/usr/bin/env python3
"""Summarise attn_cache_mma trace dumps (experiment build): per stamp min/median/max over groups, us from the earliest entry."""
import sys, struct, statistics, glob, os
names = {0: "entry", 1: "lengths", 2: "q", 19: "merge bar", 20: "end"}
for path in sorted(sys.argv[1:]):
    data = open(path, "rb").read()
    n = len(data) // 8
    u = struct.unpack("<%dQ" % n, data)
    groups = n // 128
    recs = [u[g * 128: g * 128 + 22] for g in range(groups)]
    recs = [r for r in recs if r[0] and r[20]]
    t0 = min(r[0] for r in recs)
    def show(label, vals):
        vals = sorted((v - t0) / 1e3 for v in vals)
        print(f"  {label:14s} {vals[0]:9.2f} {statistics.median(vals):9.2f} {vals[-1]:9.2f}")
    print(os.path.basename(path), "groups", len(recs), "sms", len(set(r[21] for r in recs)))
    for k in (0, 1, 2):
        show(names[k], [r[k] for r in recs])
    show("1st data min w", [min(r[3:11]) for r in recs])
    show("1st data max w", [max(r[3:11]) for r in recs])
    show("loop end min w", [min(r[11:19]) for r in recs])
    show("loop end max w", [max(r[11:19]) for r in recs])
    for k in (19, 20):
        show(names[k], [r[k] for r in recs])
    # loop end by SM id: which SMs are slow
    ends = sorted(((r[20] - t0) / 1e3, r[21]) for r in recs)
    print("  earliest ends (us, sm):", " ".join(f"{e:.1f}/{s}" for e, s in ends[:6]))
    print("  latest ends   (us, sm):", " ".join(f"{e:.1f}/{s}" for e, s in ends[-6:]))
