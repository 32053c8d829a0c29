#!/bin/bash
# The four published shapes in llama.cpp on this host: profiled from their config.json at
# prefill 512 and decode at 512 and 4,096, then validated whole at each context (3 rounds).
# Run from the repository root with nothing else running; W=q4_0 (default) or W=f32.
#   TAILOR_LLAMA_BENCH=target/llama.cpp/0c1e57098/build/bin/llama-bench \
#     bash docs/results/2026-12-06-real-shapes/run-llamacpp.sh
set -euo pipefail
T=./target/release/tailor
D=docs/results/2026-12-06-real-shapes
O=${OUT:-out/real}
W=${W:-q4_0}
SPECS="specs/lfm2-350m.config.json specs/gemma-3-270m.config.json crates/spec/tests/fixtures/qwen3-0.6b.config.json crates/spec/tests/fixtures/qwen3.5-0.8b.config.json"
P=$D/profile-llamacpp-$W.toml
mkdir -p "$O"
$T profile --engine llama.cpp --spec $SPECS --weights "$W" --prompt 512 --context 512 --context 4096 --out "$P"
args=""; for s in $SPECS; do args="$args --spec $s"; done
for C in 512 4096; do
  # The space only supplies the workload's defaults; --prompt and --context set it.
  $T validate --profile "$P" --space search-spaces/hybrid-350m.toml $args --weights "$W" \
    --prompt 512 --context "$C" --rounds 3 --out "$O/validate-$W-$C" --json \
    > "$D/validate-llamacpp-$W-$C.json"
done
