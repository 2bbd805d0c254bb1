#!/usr/bin/env bash
# The README's main job: build routenlp if needed, then evaluate every routing system on the
# bundled LLMRouter data (9 tiers, 14 tasks) with its default portfolio config — training the
# neural router included — and print the cost/quality table. Every system aims at 97% of the
# reference tier's quality (--quality-target 0.97, the operating point of the published
# comparisons); drop the flag to see the config's guarantee mode (alpha 0.05).
# Outputs: out/main.json (report), out/main.svg (cost-quality frontier).
# Extra arguments go to `routenlp eval` (e.g. --seeds 5).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${ROUTENLP_BUILD_DIR:-build}
if [ -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake --build "$BUILD_DIR" --target routenlp_cli -j"$(nproc)"   # incremental; quick when current
else
  bash scripts/build.sh
fi
mkdir -p out
exec "$BUILD_DIR/cli/routenlp" eval \
  --data data/routing/llmrouter.jsonl \
  --config data/configs/llmrouter.yaml \
  --quality-target 0.97 \
  --json out/main.json --plot out/main.svg "$@"
