"""The best dense (all-attention) candidate within 5% of a search's pick, by predicted
decode at the space's context, written as a spec beside the pick's.

    python3 pick_dense.py SEARCH_DIR OUT_DIR

SEARCH_DIR is a `tailor search` output (candidates.csv, front.json, pick/spec.toml); OUT_DIR
receives hybrid.toml (the pick's spec.toml) and dense.toml (the same file with the dense
row's dimensions and a pattern of the global attention kind only)."""
import csv
import json
import pathlib
import re
import sys

search, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
rows = list(csv.DictReader(open(search / "candidates.csv")))
front = json.load(open(search / "front.json"))
pick_id = next(r["id"] for r in front["rows"] if r["picked"])
pick = next(r for r in rows if int(r["id"]) == int(pick_id))
p = int(pick["params"])
dense = [
    r
    for r in rows
    if r["feasible"] == "true"
    and set(r["stack"]) == {"A"}
    and abs(int(r["params"]) - p) <= 0.05 * p
]
best = min(dense, key=lambda r: float(r["decode_ms"]))
keys = ("id", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size",
        "params", "prefill_ms", "decode_ms", "stack")
print("pick ", {k: pick[k] for k in keys})
print("dense", {k: best[k] for k in keys}, f"({len(dense)} dense rows within 5%)")

spec = (search / "pick/spec.toml").read_text()
out.mkdir(parents=True, exist_ok=True)
(out / "hybrid.toml").write_text(spec)
spec = re.sub(r'^name = ".*"$', f'name = "{front["space"]}-{best["id"]}"', spec, flags=re.M)
why = "the best all-attention candidate within 5% of the pick's parameters"
spec = re.sub(
    r'^source = "(.*), candidate \d+"$',
    lambda m: f'source = "{m.group(1)}, candidate {best["id"]}, {why}"',
    spec,
    flags=re.M,
)
for k in ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size"):
    spec = re.sub(rf"^{k} = \d+$", f"{k} = {best[k]}", spec, flags=re.M)
spec = re.sub(r"pattern = \[[^\]]*\]", 'pattern = ["global"]', spec)
spec = spec.split("[model.stack.kinds.local]")[0].rstrip() + "\n"
(out / "dense.toml").write_text(spec)
