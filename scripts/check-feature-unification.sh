#!/usr/bin/env bash
# Checks that `cargo run --release -p tailor` (the quick start's first command) and
# `cargo test --release --workspace` (its second) resolve the same features for every
# crate they share, so that they share one build of burn. Prints the differences and
# exits 1 if there are any. Builds nothing (cargo tree only).
set -euo pipefail
cd "$(dirname "$0")/.."
tree() { cargo tree --prefix none --format '{p} [{f}]' "$@"; }
tree -p tailor -e normal,build >target/.features-run.txt
tree --workspace -e normal,build,dev >target/.features-test.txt
python3 - target/.features-run.txt target/.features-test.txt <<'PY'
import sys
from collections import defaultdict

def graph(path):
    # "name vX [f1,f2]" per crate and build context (a crate built for build scripts and
    # for the target appears twice, maybe with different features).
    g = defaultdict(set)
    for line in open(path):
        line = line.strip().removesuffix(" (*)")
        if not line or " [" not in line:
            continue
        head, feats = line.rsplit(" [", 1)
        name, version = head.split(" ")[:2]
        g[f"{name} {version}"].add(feats.rstrip("]"))
    return g

run, test = graph(sys.argv[1]), graph(sys.argv[2])
bad = [k for k in sorted(run.keys() & test.keys())
       if run[k] != test[k] and not k.startswith("tailor")]
for k in bad:
    print(f"{k}: run {sorted(run[k])} vs test {sorted(test[k])}", file=sys.stderr)
if bad:
    print("features differ between the quick start's two builds (see above)", file=sys.stderr)
    sys.exit(1)
print("the quick start's two builds resolve the same features for every shared crate")
PY
