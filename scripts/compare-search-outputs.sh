#!/usr/bin/env bash
# Runs the same searches with two tailor binaries and compares what they write, byte for
# byte: candidates.csv and front.json of the committed spaces, priced by the committed cost
# models that cover them: the two datasheets for quickstart and the PhoneLM spaces, the
# committed burn and llama.cpp f32 profiles for quickstart (whose shapes they hold).
# personal-0.5b needs a burn profile of its edit shapes and quickstart at q4_0 a space with
# `weights = "q4_0"`; neither is committed, so they are not compared. A redesign that must not change any result (issue 28:
# "every output of today's spaces is unchanged") passes when this prints no difference.
#
#   scripts/compare-search-outputs.sh OLD_TAILOR NEW_TAILOR [WORK_DIR]
#
# Build OLD_TAILOR from the commit before the change (`git worktree add` or a checkout, then
# `cargo build --release -p tailor` and copy target/release/tailor aside). Exits 1 on any
# difference. Measured searches use `--no-recheck`, so nothing is timed.
set -euo pipefail

old=${1:?usage: $0 OLD_TAILOR NEW_TAILOR [WORK_DIR]}
new=${2:?usage: $0 OLD_TAILOR NEW_TAILOR [WORK_DIR]}
work=${3:-$(mktemp -d)}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

runs=()
for space in search-spaces/quickstart.toml search-spaces/phonelm-0.5b.toml search-spaces/phonelm-1.5b.toml; do
  for device in profiles/snapdragon-8-gen3-cpu.toml profiles/host-roofline.toml; do
    runs+=("$space|--device|$device")
  done
done
for profile in profiles/host-flex.toml profiles/host-llamacpp-f32.toml; do
  runs+=("search-spaces/quickstart.toml|--profile|$profile")
done
# NSGA-II and random draw from a seeded stream: the same seed must give the same files.
runs+=("search-spaces/phonelm-1.5b.toml|--device|profiles/snapdragon-8-gen3-cpu.toml|--strategy nsga2 --budget 600")
runs+=("search-spaces/phonelm-0.5b.toml|--device|profiles/host-roofline.toml|--strategy random --budget 500")

mkdir -p "$work"
export TAILOR_CACHE_DIR="$work/cache"
differ=0
for run in "${runs[@]}"; do
  IFS='|' read -r space flag cost strategy <<<"$run"
  name="$(basename "$space" .toml)-$(basename "$cost" .toml)"
  [[ -n ${strategy:-} ]] && name="$name-$(echo "$strategy" | cut -d' ' -f2)"
  for which in old new; do
    bin=$old
    [[ $which == new ]] && bin=$new
    extra=()
    [[ $flag == --profile ]] && extra=(--no-recheck)
    # shellcheck disable=SC2206
    [[ -n ${strategy:-} ]] && extra+=($strategy)
    "$bin" search "$space" "$flag" "$cost" "${extra[@]}" --seed 7 \
      --out "$work/$which/$name" >/dev/null 2>"$work/$which-$name.log" || {
      echo "$name: $which failed (see $work/$which-$name.log)"
      differ=1
      continue 2
    }
  done
  for f in candidates.csv front.json; do
    if cmp -s "$work/old/$name/$f" "$work/new/$name/$f"; then
      echo "same       $name/$f ($(wc -l <"$work/new/$name/$f") lines)"
    else
      echo "DIFFERENT  $name/$f"
      differ=1
    fi
  done
done
exit $differ
