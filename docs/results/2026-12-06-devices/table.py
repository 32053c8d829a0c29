#!/usr/bin/env python3
"""Tables of docs/results/2026-12-06-devices from the summaries run.sh writes.

python3 docs/results/2026-12-06-devices/table.py [DIR]
"""
import json
import sys
from pathlib import Path

d = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)


def shape(spec):
    return "{}x{} {}/{} ffn {} {}".format(
        spec["hidden_size"], spec["num_layers"], spec["num_heads"], spec["num_kv_heads"],
        spec["intermediate_size"], spec["activation"])


def load(name):
    p = d / name
    return json.loads(p.read_text()) if p.exists() else None


for tag in ["worst", "mean"]:
    s = load(f"summary-{tag}.json")
    if not s:
        continue
    pick = s["pick"]
    print(f"\n### {tag}: pick rule {s['pick_rule']['sense']} {s['pick_rule']['metric']}, "
          f"shared pick #{pick['id']} {shape(pick['spec'])}, "
          f"{pick['metrics']['params'] / 1e6:.1f} M params\n")
    print("| device | weight | weights | feasible | own pick | own decode ms | shared decode ms | regret |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for dev in s["devices"]:
        own, r = dev["pick"], dev["regret"]
        print(f"| {dev['name']} | {dev['weight']:g} | {dev['workload']['precision']['weights']} "
              f"| {dev['feasible']} | #{own['id']} {shape(own['spec'])} | {r['own']:.3f} "
              f"| {r['shared']:.3f} | {100 * r['regret']:+.1f}% |")
    objs = pick["objectives"]
    print("\nshared pick's objectives: " + ", ".join(f"`{k}` {v:.4f}" for k, v in objs.items()))
    checks = s.get("device_checks", [])
    if checks:
        print("\n| device | shared decode pred / meas ms | own decode pred / meas ms "
              "| regret pred | regret meas | fastest timed (meas ms) | shared vs fastest meas "
              "| all models decode meas/pred | prefill meas/pred "
              "| engine vs itself (decode spread, tau) |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for c in checks:
            if c.get("skipped"):
                print(f"| {c['device']} | not timed here: {c['skipped'][:60]} | | | | | | | | |")
                continue
            r, ch = c.get("regret"), c["check"]
            es = ch.get("engine_self") or {}
            cell = lambda a, b: f"{a:.3f} / {b:.3f}"
            print(f"| {c['device']} "
                  f"| {cell(r['predicted_shared_ms'], r['measured_shared_ms']) if r else '-'} "
                  f"| {cell(r['predicted_own_ms'], r['measured_own_ms']) if r else '-'} "
                  f"| {100 * r['predicted']:+.1f}% | {100 * r['measured']:+.1f}% "
                  + (f"| #{r['fastest_id']} ({r['measured_fastest_ms']:.3f}) "
                     f"| {100 * r['measured_vs_fastest']:+.1f}% " if 'fastest_id' in r else "| - | - ")
                  + f"| {ch['decode']['median_ratio']:.2f} | {ch['prefill']['median_ratio']:.2f} "
                  f"| {100 * es.get('decode_spread', float('nan')):.1f}%, "
                  f"{es.get('decode_tau', float('nan')):.2f} |")

alone = sorted(d.glob("summary-alone-*.json"))
if alone:
    worst = load("summary-worst.json")
    own = {dev["name"]: dev["pick"]["id"] for dev in worst["devices"]} if worst else {}
    print("\n| device searched alone | its pick | own pick in the set | same |")
    print("| --- | --- | --- | --- |")
    for p in alone:
        s = json.loads(p.read_text())
        name = p.stem.removeprefix("summary-alone-")
        print(f"| {name} | #{s['pick']['id']} {shape(s['pick']['spec'])} | #{own.get(name)} "
              f"| {'yes' if own.get(name) == s['pick']['id'] else 'no'} |")
