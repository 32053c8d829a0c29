#!/usr/bin/env python3
"""Repeatability of two profiles of one setup: the share of shared entries whose medians
agree within a tolerance (default 5%), and the distribution of their ratios.

    python3 scripts/profile-stability.py profiles/a.toml profiles/b.toml [--tolerance 0.05]
"""
import argparse
import json
import sys
import tomllib


def entries(path):
    with open(path, "rb") as f:
        p = tomllib.load(f)
    key = lambda shape: json.dumps(shape, sort_keys=True)
    return p["fingerprint"], {key(e["shape"]): e for e in p.get("entries", [])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--tolerance", type=float, default=0.05)
    args = ap.parse_args()
    fa, ea = entries(args.a)
    fb, eb = entries(args.b)
    if fa != fb:
        sys.exit(f"error: the profiles were made on different setups: {fa} vs {fb}")
    shared = sorted(set(ea) & set(eb))
    if not shared:
        sys.exit("error: the profiles share no entry")
    ratios = sorted(eb[k]["median_us"] / ea[k]["median_us"] for k in shared)
    within = sum(abs(r - 1.0) <= args.tolerance for r in ratios)
    pick = lambda q: ratios[min(len(ratios) - 1, int(q * (len(ratios) - 1) + 0.5))]
    print(f"shared entries: {len(shared)}")
    print(f"medians within {args.tolerance:.0%}: {within}/{len(shared)} = {within / len(shared):.1%}")
    print(f"ratio b/a: p10 {pick(0.1):.3f}, median {pick(0.5):.3f}, p90 {pick(0.9):.3f}, "
          f"min {ratios[0]:.3f}, max {ratios[-1]:.3f}")


if __name__ == "__main__":
    main()
