#!/bin/bash
# FFN widths priced from a line: a llama.cpp Q4_0 profile of phonelm-0.5b made on this
# machine, the space searched by tailor before the change (OLD) and after it, the picks and
# a sample of the space timed whole, and both builds' predictions compared on the same
# measurements. Run from the repository root with nothing else running:
#   git worktree add /tmp/tailor-old 06894e7 && (cd /tmp/tailor-old && cargo build --release)
#   OLD=/tmp/tailor-old/target/release/tailor \
#   TAILOR_LLAMA_BENCH=target/llama.cpp/0c1e57098/build/bin/llama-bench \
#     bash docs/results/2026-12-06-ffn-line/run.sh
set -euo pipefail
NEW=./target/release/tailor
OLD=${OLD:?a release build of 06894e7}
D=docs/results/2026-12-06-ffn-line
O=${OUT:-out/ffn-line}
P=$D/profile-llamacpp-q4_0-xeon.toml
S=search-spaces/phonelm-0.5b.toml
mkdir -p "$O"
time $NEW profile --engine llama.cpp --space $S --weights q4_0 --out $P
for b in old new; do
  T=$OLD; [ $b = new ] && T=$NEW
  $T search $S --target "llama-q4_0=$P" --out "$O/alone-$b" --json > "$D/summary-alone-$b.json"
  cp "$O/alone-$b/pick/spec.toml" "$D/specs/pick-$b.toml"
done
# The picks of issue 30's four devices (docs/results/2026-12-06-devices.md) and both own
# picks here, then 16 models sampled over the space's range of predicted decode time.
SPECS=(); for f in "$D"/specs/*.toml; do SPECS+=(--spec "$f"); done
time $NEW validate --profile $P --space $S --weights q4_0 "${SPECS[@]}" --rounds 3 \
  --out "$O/picks" --json > "$D/validate-picks.json"
time $NEW validate --profile $P --space $S --weights q4_0 --samples 16 --seed 7 --rounds 3 \
  --out "$O/sample" --json > "$D/validate-sample.json"
OLD=$OLD OUT=$O python3 $D/table.py "$D/validate-picks.json" "$D/validate-sample.json"
