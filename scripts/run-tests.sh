#!/usr/bin/env bash
# Fresh Debian 12 machine -> dependencies installed, everything built, the whole test suite
# run through ctest. This is the README's test command and all that CI (.ci/run) runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd "${ROUTENLP_BUILD_DIR:-build}"
ctest --output-on-failure -j"$(nproc)" --timeout 900
