#!/usr/bin/env bash
# The single source of routenlp's build and test dependencies (Debian 12 packages only).
# README, CI (.ci/run) and developers all run this script.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(
  build-essential cmake pkg-config git ca-certificates
  libtorch-dev            # DistilBERT encoder and router training (CPU build, 1.13)
  libopenblas0-openmp     # without it libtorch falls back to reference BLAS (~20x slower)
  libeigen3-dev           # k-means, logistic regression, small linear algebra
  libfmt-dev
  libcli11-dev
  catch2
  libbenchmark-dev
  nlohmann-json3-dev
  libyaml-cpp-dev
  libcurl4-openssl-dev    # OpenAI-compatible HTTP tier client (lib/tiers)
  libcpp-httplib-dev      # `routenlp serve` HTTP server and loopback tests (lib/serve)
  libhiredis-dev          # replicas of `routenlp serve` sharing online state (lib/state, 0.14)
  redis-server            # the real Redis (7.0) the redis_replicas ctest and bench/serve start
  python3                 # ctypes example package over the C ABI and its ctest
  python3-pip             # `pip install ./python` (the routenlp Python package) and the
  python3-setuptools      # python_package ctest: offline --no-build-isolation builds need the
  python3-wheel           # build backend and bdist_wheel from Debian (setuptools < 70.1)
  # Fuzzing and sanitizer runs (scripts/run-fuzz.sh, scripts/ci-sanitizers.sh, docs/testing.md):
  clang                   # clang 14: libFuzzer needs it (-fsanitize=fuzzer)
  libclang-rt-14-dev      # compiler-rt: libFuzzer and clang's ASan/UBSan runtimes (only a
                          # Recommends of clang, so --no-install-recommends would skip it)
  llvm                    # llvm-symbolizer: file:line in sanitizer and libFuzzer reports
)

# Opt-in (ROUTENLP_PEER_DEPS=1): the peers the benchmarks compare against and the official-client
# test — Python PyTorch eager and the ONNX export (bench/peers), Node + npm for onnxruntime-node,
# the tokenizers peer and tests/openai_client (each then needs `npm ci` in its folder).
if [ "${ROUTENLP_PEER_DEPS:-0}" = 1 ]; then
  PACKAGES+=(python3-torch python3-onnx)
  # Node from elsewhere (e.g. NodeSource's nodejs, which bundles npm) counts: Debian's npm
  # package conflicts with it, so only a machine without node/npm gets Debian's.
  command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
  command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)
fi

export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi

# libtorch resolves BLAS through the alternatives system; make sure the OpenMP OpenBLAS wins.
if [ -x /usr/bin/update-alternatives ]; then
  for alt in libblas.so.3-x86_64-linux-gnu liblapack.so.3-x86_64-linux-gnu; do
    cand=$(update-alternatives --list "$alt" 2>/dev/null | grep openblas-openmp | head -n1 || true)
    if [ -n "$cand" ]; then $SUDO update-alternatives --set "$alt" "$cand" >/dev/null; fi
  done
fi
