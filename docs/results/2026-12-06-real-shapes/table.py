#!/usr/bin/env python3
"""Predicted vs measured per model from tailor validate --json files (llama.cpp's or burn's).

usage: table.py NAME=validate.json ...   (prints one markdown row per model and file)
"""
import json
import sys

NAMES = {354483968: "LFM2-350M", 268098176: "Gemma-3-270M", 596049920: "Qwen3-0.6B",
         752393024: "Qwen3.5-0.8B (text)"}


def rows(d):
    for r in d["rows"]:
        m = r["measured"]
        if d.get("format_version") == 2:  # one schema for both engines (from 2026-12-06)
            pre, dec = m["prefill_ms"], m["decode_ms"]
            mem = m.get("peak_memory_bytes")
        elif "prefill_rounds_ms" in m:  # llama.cpp, format 1
            pre, dec = min(m["prefill_rounds_ms"]), min(m["decode_rounds_ms"])
            mem = m.get("peak_rss_bytes")
        else:  # burn, unversioned
            pre, dec = m["prefill"]["median_ms"], m["decode"]["median_ms"]
            mem = m.get("peak_memory_bytes")
        yield (NAMES.get(r["params"], str(r["params"])), r["predicted_prefill_ms"], pre,
               r["predicted_decode_ms"], dec, r["predicted_memory_bytes"], mem)


print("| run | model | prefill pred / meas ms (ratio) | decode pred / meas ms (ratio) | memory pred / meas MiB |")
print("|---|---|---|---|---|")
for arg in sys.argv[1:]:
    label, path = arg.split("=", 1)
    for name, pp, pm, dp, dm, mp, mm in rows(json.load(open(path))):
        mem = f"{mp / 2**20:.0f} / {mm / 2**20:.0f}" if mm else f"{mp / 2**20:.0f} / -"
        print(f"| {label} | {name} | {pp:.0f} / {pm:.0f} ({pp / pm:.2f}) | "
              f"{dp:.2f} / {dm:.2f} ({dp / dm:.2f}) | {mem} |")
