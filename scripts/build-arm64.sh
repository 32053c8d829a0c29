#!/usr/bin/env bash
# Builds the static arm64 `tailor` that `tailor profile --remote` pushes to a phone:
# target aarch64-unknown-linux-musl, linked by rust-lld (no cross C toolchain, no system
# libraries), CPU backends only (flex, ndarray: no wgpu, no mimalloc).
# Output: target/aarch64-unknown-linux-musl/release/tailor
#
#   scripts/build-arm64.sh            # the build to push to a phone (opt-level 3)
#   scripts/build-arm64.sh --for-qemu # opt-level 1 (burn-ndarray 0): what CI runs under
#                                     # qemu-user to test the phone flow (about half the
#                                     # build time on 2 cores; its timings are never
#                                     # measurements)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=aarch64-unknown-linux-musl
if ! rustup target list --installed | grep -qx "$TARGET"; then
  rustup target add "$TARGET"
fi
# Only this target's flags: host builds keep theirs (and their cache).
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=+crt-static"
# No debug line tables and no symbols: the binary crosses a USB cable on every profile.
export CARGO_PROFILE_RELEASE_DEBUG=false
export CARGO_PROFILE_RELEASE_STRIP=symbols
ARGS=()
for arg in "$@"; do
  case "$arg" in
    # burn-ndarray at opt-level 0 besides: the qemu test profiles with flex, and
    # burn-ndarray is the costliest crate of the build (194 of 628 CPU-seconds at opt-level 1).
    --for-qemu)
      export CARGO_PROFILE_RELEASE_OPT_LEVEL=1
      ARGS+=(--config 'profile.release.package.burn-ndarray.opt-level=0')
      ;;
    *) ARGS+=("$arg") ;;
  esac
done
cargo build --release --target "$TARGET" -p tailor --no-default-features "${ARGS[@]}"
BIN="target/$TARGET/release/tailor"
echo "built $BIN ($(du -h "$BIN" | cut -f1))"
