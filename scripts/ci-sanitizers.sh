#!/usr/bin/env bash
# CI's sanitizer and fuzzing stages (docs/testing.md), each in its own torch-free build:
#   asan  build-asan: ASan + UBSan (every UBSan check fatal), the whole ctest suite
#   tsan  build-tsan: ThreadSanitizer, the multi-threaded tests (serve, cascade, online recalibration,
#         encoder CPU kernels and their pool, the Redis shared state's consumer threads)
#   fuzz  build-fuzz: every libFuzzer target for FUZZ_SECONDS (default 20) s (scripts/run-fuzz.sh)
# Usage: scripts/ci-sanitizers.sh [STAGE...]   (default: asan tsan fuzz)
# Prints the wall time of each stage; exits non-zero when any stage failed (all stages still run).
set -uo pipefail
cd "$(dirname "$0")/.."
stages=("$@")
if [ "${#stages[@]}" -eq 0 ]; then stages=(asan tsan fuzz); fi
JOBS=${ROUTENLP_JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
bash scripts/install-deps.sh || exit 1

# -O1 -g1: quick to compile, fast enough to test, file:line in reports. NDEBUG stays off so the
# library's asserts check as well.
san_flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1"
  -DROUTENLP_WITH_TORCH=OFF -DROUTENLP_BUILD_BENCH=OFF)
if command -v ccache >/dev/null 2>&1; then
  san_flags+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
if command -v llvm-symbolizer >/dev/null 2>&1; then
  export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer)}
fi

stage_asan() {
  local dir=build-asan
  cmake -S . -B "$dir" "${san_flags[@]}" -DROUTENLP_SANITIZE_ADDRESS=ON >/dev/null || return 1
  cmake --build "$dir" -j"$JOBS" || return 1
  # Tests whose process is not built with the sanitizers (Python loading the library through
  # ctypes; the install test's consumer, a plain find_package(routenlp) build) get the runtimes
  # preloaded, which they need to come first, and no leak report (Python never frees
  # everything).
  local foreign='^(python_capi|python_package|install_consumer)$'
  local rc=0
  (
    cd "$dir" || exit 1
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1:${ASAN_OPTIONS:-}"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
    # The README walkthrough (a whole fit on the bundled 5.6k-row dataset, then serve) runs in
    # the main job; here its code paths are covered by test_pipeline, at a fraction of the time.
    ctest --output-on-failure -j"$JOBS" --timeout 1800 -E "$foreign|^readme_walkthrough\$"
  ) || rc=1
  (
    cd "$dir" || exit 1
    export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
    export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
    ctest --output-on-failure --timeout 900 -R "$foreign"
  ) || rc=1
  return $rc
}

stage_tsan() {
  local dir=build-tsan
  local tests=(test_serve test_cascade test_online test_cpu_kernels test_cpu_pool test_redis_state)
  cmake -S . -B "$dir" "${san_flags[@]}" -DROUTENLP_SANITIZE_THREAD=ON \
    -DROUTENLP_BUILD_EXAMPLES=OFF -DROUTENLP_BUILD_CLI=OFF >/dev/null || return 1
  cmake --build "$dir" --target "${tests[@]}" -j"$JOBS" || return 1
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:${TSAN_OPTIONS:-}"
  local rc=0 t
  for t in "${tests[@]}"; do
    local args=()
    # TSan cannot start threads in a child after fork(): that case runs in the normal suite.
    if [ "$t" = test_cpu_pool ]; then args=("~cpu_pool: a forked child gets a working pool"); fi
    echo "== tsan $t"
    "$dir/tests/$t" "${args[@]}" || { echo "!! tsan $t FAILED"; rc=1; }
  done
  return $rc
}

stage_fuzz() {
  ROUTENLP_SKIP_DEPS=1 bash scripts/run-fuzz.sh "$FUZZ_SECONDS"
}

# CPU seconds used by this shell's finished children (user + system): on a shared machine the
# wall time is an upper bound; CPU time / cores is what an idle machine would take.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($16 + $17) / hz }' /proc/$$/stat; }

summary=()
failed=0
for s in "${stages[@]}"; do
  case "$s" in asan|tsan|fuzz) ;; *) echo "unknown stage '$s' (asan, tsan, fuzz)" >&2; exit 2 ;; esac
  echo "==== sanitizers: stage $s"
  start=$(date +%s)
  cpu0=$(cpu_seconds)
  if ( "stage_$s" ); then result=ok; else result=FAILED; failed=$((failed + 1)); fi
  secs=$(( $(date +%s) - start ))
  cpu=$(( $(cpu_seconds) - cpu0 ))
  summary+=("$(printf '%-5s %-6s wall %3d min %02d s, CPU %3d min %02d s' "$s" "$result" \
    $((secs / 60)) $((secs % 60)) $((cpu / 60)) $((cpu % 60)))")
done
echo "==== sanitizers: summary ($(nproc) cores)"
printf '  %s\n' "${summary[@]}"
echo "sanitizers: $(( ${#stages[@]} - failed )) passed, $failed failed"
[ "$failed" -eq 0 ]
