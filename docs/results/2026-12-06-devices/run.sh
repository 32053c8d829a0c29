#!/bin/bash
# One model for four devices (issue 30): phonelm-0.5b searched over the phone datasheet
# (llama.cpp Q4_0 weights, three phones for every host) and three engines of this host
# (burn flex f32, llama.cpp Q4_0, llama.cpp F32), each a profile made here; the shared pick
# and each device's own pick then timed whole on the three host engines. Run from the
# repository root with nothing else running:
#   TAILOR_LLAMA_BENCH=target/llama.cpp/0c1e57098/build/bin/llama-bench \
#     bash docs/results/2026-12-06-devices/run.sh
set -euo pipefail
T=./target/release/tailor
D=docs/results/2026-12-06-devices
O=${OUT:-out/devices}
SPACE=search-spaces/phonelm-0.5b.toml
if [ "${PROFILE:-1}" = 1 ]; then
  # Each profile resumes: a rerun times only what is missing.
  time $T profile --engine llama.cpp --space $SPACE --weights q4_0 --out $D/profile-llamacpp-q4_0.toml
  # F32 probes of 1 GiB (6-10 layers of these widths; 128 MiB holds 2): deep enough that a
  # layer's cost is not the difference of two shallow probes.
  time $T profile --engine llama.cpp --space $SPACE --weights f32 --probe-mib 1024 --rounds 1 \
    --out $D/profile-llamacpp-f32-deep.toml
  time $T profile --space $SPACE --out $D/profile-burn-flex.toml
fi
TARGETS=(
  --target "phone=profiles/snapdragon-8-gen3-cpu.toml,weights=q4_0,weight=3"
  --target "burn-f32=$D/profile-burn-flex.toml"
  --target "llama-q4_0=$D/profile-llamacpp-q4_0.toml"
  --target "llama-f32=$D/profile-llamacpp-f32-deep.toml"
)
# The worst case (phonelm-0.5b's plain objectives over a set), with the picks timed whole.
time $T run $SPACE "${TARGETS[@]}" --check-rounds "${ROUNDS:-3}" --out "$O/worst" --json \
  > $D/summary-worst.json
cp "$O/worst/report.md" $D/report-worst.md
cp "$O/worst/devices.svg" $D/devices-worst.svg
# The same devices, each device alone (what a one-device search picks), and the fleet mean:
# searches only, nothing timed.
for dev in "${TARGETS[@]}"; do
  [ "$dev" = --target ] && continue
  name=${dev%%=*}
  $T search $SPACE --target "$dev" --out "$O/alone-$name" --json > "$D/summary-alone-$name.json"
done
sed -e 's/^minimize = "decode_ms"/minimize = "mean:decode_ms"/' \
    -e 's/^minimize = \["decode_ms", "prefill_ms"/minimize = ["mean:decode_ms", "mean:prefill_ms"/' \
    $SPACE > "$O/phonelm-0.5b-mean.toml"
sed -i 's#"../specs/#"'"$PWD"'/specs/#' "$O/phonelm-0.5b-mean.toml"
$T search "$O/phonelm-0.5b-mean.toml" "${TARGETS[@]}" --out "$O/mean" --json > $D/summary-mean.json
