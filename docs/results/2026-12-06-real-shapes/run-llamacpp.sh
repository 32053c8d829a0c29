#!/bin/bash
# The four published shapes in llama.cpp on this host: profiled from their config.json at
# prefill 512 and decode at each context of CONTEXTS, then validated whole at each context.
# Run from the repository root with nothing else running; W=q4_0 (default) or W=f32. The
# profile resumes: CONTEXTS="16384" adds the longest context to a profile of 512 and 4096.
# TAG names the profile and the validate files (default: W); PROBE_MIB deepens the probes;
# PROFILE_ROUNDS and ROUNDS set the profile's and validate's rounds.
#   TAILOR_LLAMA_BENCH=target/llama.cpp/0c1e57098/build/bin/llama-bench \
#     bash docs/results/2026-12-06-real-shapes/run-llamacpp.sh
set -euo pipefail
T=./target/release/tailor
D=docs/results/2026-12-06-real-shapes
O=${OUT:-out/real}
W=${W:-q4_0}
TAG=${TAG:-$W}
CONTEXTS=${CONTEXTS:-512 4096 16384}
ROUNDS=${ROUNDS:-3}
PROFILE_ROUNDS=${PROFILE_ROUNDS:-$ROUNDS}
SPECS="specs/lfm2-350m.config.json specs/gemma-3-270m.config.json crates/spec/tests/fixtures/qwen3-0.6b.config.json crates/spec/tests/fixtures/qwen3.5-0.8b.config.json"
P=$D/profile-llamacpp-$TAG.toml
mkdir -p "$O"
ctx=""; for C in $CONTEXTS; do ctx="$ctx --context $C"; done
time $T profile --engine llama.cpp --spec $SPECS --weights "$W" --prompt 512 $ctx \
  --rounds "$PROFILE_ROUNDS" ${PROBE_MIB:+--probe-mib $PROBE_MIB} --out "$P"
args=""; for s in $SPECS; do args="$args --spec $s"; done
for C in $CONTEXTS; do
  # The space only supplies the workload's defaults; --prompt and --context set it.
  time $T validate --profile "$P" --space search-spaces/hybrid-350m.toml $args --weights "$W" \
    --prompt 512 --context "$C" --rounds "$ROUNDS" --out "$O/validate-$TAG-$C" --json \
    > "$D/validate-llamacpp-$TAG-$C.json"
done
