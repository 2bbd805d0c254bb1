#!/usr/bin/env bash
# Routing effectiveness on every development dataset: `routenlp eval` with every system at a
# quality target (default 0.97) over N seeds (default 5), one JSON report per dataset in OUT.
# Usage: bench/routing/run_dev_sets.sh [OUT_DIR] [SEEDS] [SHARED_DATA_DIR]
#   SHARED_DATA_DIR: where the unbundled development data lives (default ../shared/data); the
#   Llama chain (zellinger-llama) is read from there and never copied into the project.
# The bundled datasets (data/routing) run in any case. Numbers: docs/results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-out/dev}
SEEDS=${2:-5}
SHARED=${3:-../shared/data}
CLI=${ROUTENLP_CLI:-build/cli/routenlp}
TARGET=${QUALITY_TARGET:-0.97}
mkdir -p "$OUT"
run() {  # name data config
  echo "== $1 ($(date -u +%H:%M:%S))"
  "$CLI" eval --data "$2" --config "$3" --quality-target "$TARGET" --seeds "$SEEDS" \
    --json "$OUT/$1.json" --plot "$OUT/$1.svg" ${SYSTEMS:+--systems "$SYSTEMS"} | tee "$OUT/$1.txt"
}
if [ -f "$SHARED/zellinger-llama/llama-chain-dev.jsonl" ]; then
  run llama "$SHARED/zellinger-llama/llama-chain-dev.jsonl" "$SHARED/zellinger-llama/llama-chain.yaml"
else
  echo "skipping the Llama chain: $SHARED/zellinger-llama not found"
fi
run llmrouter data/routing/llmrouter.jsonl data/configs/llmrouter.yaml
run routerbench data/routing/routerbench.jsonl data/configs/routerbench.yaml
run routellm_gsm8k data/routing/routellm_gsm8k.jsonl data/configs/routellm.yaml
run routellm_mmlu data/routing/routellm_mmlu.jsonl data/configs/routellm.yaml
