#!/usr/bin/env bash
# Builds llama.cpp's `llama-bench` from source, pinned, with nothing but the package
# registries: the llama.cpp tree comes from the llama-cpp-python source distribution on
# PyPI (which vendors one llama.cpp commit), cmake and ninja from PyPI wheels. The build is
# cached under target/llama.cpp/ and reused while the pin is unchanged.
#
#   scripts/build-llama-bench.sh                  # host build (native CPU features)
#   scripts/build-llama-bench.sh --arm64          # static aarch64 Linux build (cross g++)
#   scripts/build-llama-bench.sh [--arm64] --print  # the binary's path only (build if needed)
#
# Output: target/llama.cpp/<commit>/build/bin/llama-bench (host) or
# target/llama.cpp/<commit>/build-aarch64/bin/llama-bench (--arm64). tailor finds
# llama-bench on PATH or through --llama-bench PATH (or TAILOR_LLAMA_BENCH); this script
# prints the path.
#
# --arm64 needs Debian's g++-aarch64-linux-gnu. Its binary is static (glibc), generic
# armv8-a, no OpenMP: it is what `tailor profile --engine llama.cpp --remote qemu` runs to
# test the phone flow here. For a real phone build your own with the Android NDK, with the
# CPU features of its cores (docs/llama-cpp.md, "On a phone").
set -euo pipefail
cd "$(dirname "$0")/.."

# The pin: llama-cpp-python 0.3.36 vendors ggml-org/llama.cpp at commit 0c1e57098
# (its CHANGELOG). The sdist's SHA-256 is checked so the pin cannot drift silently.
LCP_VERSION=0.3.36
LLAMA_COMMIT=0c1e57098
SDIST_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e

PRINT_ONLY=0
ARM64=0
for arg in "$@"; do
  case "$arg" in
    --print) PRINT_ONLY=1 ;;
    --arm64) ARM64=1 ;;
    *) echo "usage: $0 [--arm64] [--print]" >&2; exit 2 ;;
  esac
done
log() { if [ "$PRINT_ONLY" = 0 ]; then echo "$@" >&2; fi; }

ROOT="$PWD/target/llama.cpp"
WORK="$ROOT/$LLAMA_COMMIT"
if [ "$ARM64" = 1 ]; then
  BUILD="$WORK/build-aarch64"
  if ! command -v aarch64-linux-gnu-g++ >/dev/null; then
    echo "error: --arm64 needs the aarch64 cross compiler: apt-get install g++-aarch64-linux-gnu" >&2
    exit 1
  fi
else
  BUILD="$WORK/build"
fi
BIN="$BUILD/bin/llama-bench"
# What the build was configured with beyond the pin; a build made otherwise is redone.
# x86-64 hosts with AMX (Sapphire Rapids and later): the pinned commit's AMX kernels
# crash on the prefill of small q4_0 models (SIGSEGV in ggml_backend_amx_mul_mat, measured
# here on 2026-12-02; upstream ggml-org/llama.cpp#20824, and #16315 reports wrong Q4_0
# results from them), so the host build leaves AMX out and keeps the rest of the native ISA.
# GCC keeps an explicit -mno-* over -march=native whatever their order.
CONFIG="native"
HOST_FLAGS=""
if [ "$ARM64" = 1 ]; then
  CONFIG="aarch64-static"
elif [ "$(uname -m)" = "x86_64" ]; then
  HOST_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  CONFIG="native $HOST_FLAGS"
fi
if [ -x "$BIN" ] && [ -f "$BUILD/.tailor-complete" ] && [ "$(cat "$BUILD/.tailor-complete")" = "$CONFIG" ]; then
  log "llama-bench $LLAMA_COMMIT ($(basename "$BUILD")) already built"
  echo "$BIN"
  exit 0
fi
mkdir -p "$ROOT"

# Build tools into a private venv (no system cmake needed; Debian's is too old anyway).
VENV="$ROOT/venv"
if ! "$VENV/bin/cmake" --version >/dev/null 2>&1 || ! "$VENV/bin/ninja" --version >/dev/null 2>&1; then
  log "== build tools (cmake, ninja) into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check cmake ninja scikit-build-core
fi

SDIST="$ROOT/llama_cpp_python-$LCP_VERSION.tar.gz"
if [ ! -f "$SDIST" ] || ! echo "$SDIST_SHA256  $SDIST" | sha256sum -c --quiet - 2>/dev/null; then
  log "== llama-cpp-python $LCP_VERSION source distribution (vendors llama.cpp $LLAMA_COMMIT)"
  rm -f "$SDIST"
  # --no-build-isolation: pip reads the sdist's metadata with the scikit-build-core above
  # instead of fetching a build environment of its own.
  "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps \
    --no-build-isolation --no-binary=:all: "llama-cpp-python==$LCP_VERSION" -d "$ROOT"
  echo "$SDIST_SHA256  $SDIST" | sha256sum -c --quiet - || {
    echo "error: $SDIST does not have the pinned SHA-256 $SDIST_SHA256" >&2
    exit 1
  }
fi

# (A host build from before this marker existed also means the tree is there.)
if [ ! -f "$WORK/.tailor-unpacked" ] && [ ! -f "$WORK/build/.tailor-complete" ]; then
  rm -rf "$WORK"
  mkdir -p "$WORK"
  log "== unpacking vendor/llama.cpp"
  tar -xzf "$SDIST" -C "$WORK" --strip-components=3 "llama_cpp_python-$LCP_VERSION/vendor/llama.cpp"
  # The tree has no .git; without this, llama.cpp's build-info would report the commit of
  # whatever git repository encloses it (this one). Record the pinned commit instead.
  sed -i "s/^set(BUILD_COMMIT \"unknown\")/set(BUILD_COMMIT \"$LLAMA_COMMIT\")/; s/^find_package(Git)/set(Git_FOUND FALSE)/; s/^    find_program(GIT_EXECUTABLE NAMES git git.exe)/    set(GIT_EXECUTABLE \"\")/" \
    "$WORK/cmake/build-info.cmake"
  touch "$WORK/.tailor-unpacked"
fi

if [ "$ARM64" = 1 ]; then
  log "== configuring and building llama-bench for aarch64 (static, generic armv8-a)"
  TARGET_ARGS=(
    -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64
    -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++
    -DGGML_NATIVE=OFF -DGGML_OPENMP=OFF
    -DCMAKE_EXE_LINKER_FLAGS=-static
  )
else
  log "== configuring and building llama-bench (CPU backend, native ISA${HOST_FLAGS:+ without AMX})"
  TARGET_ARGS=(-DGGML_NATIVE=ON)
  if [ -n "$HOST_FLAGS" ]; then
    TARGET_ARGS+=("-DCMAKE_C_FLAGS=$HOST_FLAGS" "-DCMAKE_CXX_FLAGS=$HOST_FLAGS")
  fi
fi
rm -rf "$BUILD"
# shellcheck disable=SC2086 # LLAMA_CMAKE_ARGS is a list of words by design
"$VENV/bin/cmake" -S "$WORK" -B "$BUILD" -G Ninja \
  -DCMAKE_MAKE_PROGRAM="$VENV/bin/ninja" \
  -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
  "${TARGET_ARGS[@]}" ${LLAMA_CMAKE_ARGS:-} >"$BUILD.configure.log" 2>&1 || {
  cat "$BUILD.configure.log" >&2
  exit 1
}
"$VENV/bin/cmake" --build "$BUILD" --target llama-bench -j "$(nproc)" >"$BUILD.build.log" 2>&1 || {
  tail -50 "$BUILD.build.log" >&2
  exit 1
}
echo "$CONFIG" >"$BUILD/.tailor-complete"
log "built $BIN"
echo "$BIN"
