#!/usr/bin/env python3
"""burn against itself: Kendall tau-b between the two rounds of a `tailor validate` folder
(measured/<id>.json is round 1, <id>.round2.json round 2), per phase, and the median
absolute difference of the two rounds (the spread). usage: self_tau.py VALIDATE_OUT_DIR"""
import json
import pathlib
import statistics
import sys


def tau_b(x, y):
    conc = disc = tx = ty = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                tx += 1
            elif dy == 0:
                ty += 1
            elif dx * dy > 0:
                conc += 1
            else:
                disc += 1
    n = conc + disc
    return (conc - disc) / (((n + tx) * (n + ty)) ** 0.5)


d = pathlib.Path(sys.argv[1]) / "measured"
ids = sorted(p.stem for p in d.glob("*.json") if ".round" not in p.stem)
for phase in ("prefill", "decode"):
    r1 = [json.load(open(d / f"{i}.json"))[phase]["median_ms"] for i in ids]
    r2 = [json.load(open(d / f"{i}.round2.json"))[phase]["median_ms"] for i in ids]
    spread = statistics.median(abs(a - b) / min(a, b) for a, b in zip(r1, r2))
    print(f"{phase}: n={len(ids)} tau(round 1, round 2)={tau_b(r1, r2):.3f} "
          f"median |r1-r2|/min={spread:.1%} round2/round1 median={statistics.median(b / a for a, b in zip(r1, r2)):.3f}")
