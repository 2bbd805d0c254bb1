#!/usr/bin/env bash
# Build the multi-threaded cascade, online-recalibration, encoder CPU-kernel and kernel-pool tests
# with ThreadSanitizer (in a torch-free build, which keeps it quick) and run them. Not part of CI's default run: a
# sanitizer build doubles CI time. See docs/threading.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
BUILD_DIR=${ROUTENLP_TSAN_BUILD_DIR:-build-tsan}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DROUTENLP_WITH_TORCH=OFF \
  -DROUTENLP_SANITIZE_THREAD=ON -DROUTENLP_BUILD_BENCH=OFF -DROUTENLP_BUILD_EXAMPLES=OFF \
  -DROUTENLP_BUILD_CLI=OFF
cmake --build "$BUILD_DIR" --target test_cascade test_online test_cpu_kernels test_cpu_pool -j"$(nproc)"
export TSAN_OPTIONS="halt_on_error=1 ${TSAN_OPTIONS:-}"
"$BUILD_DIR/tests/test_cascade"
"$BUILD_DIR/tests/test_online"
"$BUILD_DIR/tests/test_cpu_kernels"
# TSan cannot start threads in a child after fork(): that one case runs in the normal suite.
"$BUILD_DIR/tests/test_cpu_pool" "~cpu_pool: a forked child gets a working pool"
