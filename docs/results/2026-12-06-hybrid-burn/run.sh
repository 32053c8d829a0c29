#!/bin/bash
# The burn (flex, f32) side of issue 29 on this host: the hybrid-350m space at f32, profiled
# and validated whole at decode 4096; the four published shapes profiled and validated at
# 512, 4096 and 16384. Run from the repository root with nothing else running:
#   bash docs/results/2026-12-06-hybrid-burn/run.sh
set -euo pipefail
D=docs/results/2026-12-06-hybrid-burn
O=${OUT:-out/hybrid-burn}
T=./target/release/tailor
mkdir -p "$O"
# burn runs f32: the space's copy at f32 (its reference path one folder deeper).
sed -e 's/^weights = "q4_0".*/weights = "f32"/' \
    -e 's|references = \["../specs/|references = ["../../../specs/|' \
    -e 's/^name = "hybrid-350m"/name = "hybrid-350m-f32"/' \
    search-spaces/hybrid-350m.toml > "$D/hybrid-350m-f32.toml"
P=$D/profile-burn-flex.toml
# A fresh profile (an existing one would be resumed, keeping entries of an older bench).
rm -f "$P"
SPECS="specs/lfm2-350m.config.json specs/gemma-3-270m.config.json crates/spec/tests/fixtures/qwen3-0.6b.config.json crates/spec/tests/fixtures/qwen3.5-0.8b.config.json"
time $T profile --space "$D/hybrid-350m-f32.toml" --out "$P"
time $T profile --spec $SPECS --prompt 512 --context 512 --context 4096 --context 16384 \
    --out "$P"
time $T validate --profile "$P" --space "$D/hybrid-350m-f32.toml" --samples 16 --rounds 2 \
    --out "$O/sample-4096" --json > "$D/validate-sample-4096.json"
for C in 512 4096 16384; do
  args=""; for s in $SPECS; do args="$args --spec $s"; done
  time $T validate --profile "$P" --space "$D/hybrid-350m-f32.toml" $args --prompt 512 \
      --context $C --rounds 2 --out "$O/real-$C" --json > "$D/validate-real-$C.json"
done
