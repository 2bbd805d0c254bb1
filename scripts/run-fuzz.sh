#!/usr/bin/env bash
# Build the libFuzzer targets (fuzz/, docs/testing.md) in a torch-free clang ASan+UBSan build
# and run each for a while, starting from its seed corpus fuzz/corpus/<target> and its crash
# regressions fuzz/regressions/<target>.
# Usage: scripts/run-fuzz.sh [SECONDS_PER_TARGET [TARGET...]]   (default 300 s, every target)
# Env:   ROUTENLP_FUZZ_BUILD_DIR (default build-fuzz), ROUTENLP_SKIP_DEPS=1 (skip install-deps)
# New interesting inputs go to BUILD_DIR/corpus/<target>, never into the repository. A crashing
# input is saved as BUILD_DIR/artifacts/<target>/crash-*; once fixed, copy it to
# fuzz/regressions/<target>/ so that ctest (fuzz_replay_<target>) replays it from then on.
# Exit status: 0 when no target crashed, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-300}
shift || true
if [ "${ROUTENLP_SKIP_DEPS:-0}" != 1 ]; then bash scripts/install-deps.sh; fi
BUILD_DIR=${ROUTENLP_FUZZ_BUILD_DIR:-build-fuzz}
JOBS=${ROUTENLP_JOBS:-$(nproc)}

all_targets=$(sed -n '/^set(RN_FUZZ_TARGETS/,/)/p' fuzz/CMakeLists.txt | grep -o '^  [a-z_0-9]*' | tr -d ' ')
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then read -r -a targets <<< "$(echo $all_targets)"; fi

# -O1 -g1: the usual sanitizer trade-off (fast enough to fuzz, quick to compile, line numbers in
# reports); NDEBUG off so that asserts check too.
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$BUILD_DIR" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" "${launcher[@]}" \
  -DROUTENLP_FUZZ=ON -DROUTENLP_SANITIZE_ADDRESS=ON -DROUTENLP_WITH_TORCH=OFF \
  -DROUTENLP_BUILD_TESTS=OFF -DROUTENLP_BUILD_EXAMPLES=OFF -DROUTENLP_BUILD_BENCH=OFF \
  -DROUTENLP_BUILD_CLI=OFF >/dev/null
cmake --build "$BUILD_DIR" --target $(printf 'fuzz_%s ' "${targets[@]}") -j"$JOBS"

# Leaks count as findings; a report aborts so libFuzzer saves the input.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
failed=()
for t in "${targets[@]}"; do
  work="$BUILD_DIR/corpus/$t"
  art="$BUILD_DIR/artifacts/$t"
  mkdir -p "$work" "$art"
  seeds=("fuzz/corpus/$t")
  if [ -d "fuzz/regressions/$t" ]; then seeds+=("fuzz/regressions/$t"); fi
  echo "== fuzz $t: ${SECONDS_PER_TARGET}s"
  log="$BUILD_DIR/fuzz-$t.log"
  # stdin closed: nothing a target opens by name may block on the terminal.
  if "$BUILD_DIR/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=20 -rss_limit_mb=2560 \
       -max_len=16384 -print_final_stats=1 -artifact_prefix="$art/" "$work" "${seeds[@]}" \
       </dev/null >"$log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$log" | tr '\n' ' ' || true
    echo
    grep -E 'cov: [0-9]+' "$log" | tail -n1 || true
  else
    echo "!! fuzz $t FAILED (log: $log, inputs: $art/)"
    tail -n 60 "$log"
    failed+=("$t")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}"
  echo "fuzz: $(( ${#targets[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${SECONDS_PER_TARGET}s each without a finding"
echo "fuzz: ${#targets[@]} passed, 0 failed"
