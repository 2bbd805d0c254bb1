#!/usr/bin/env bash
# Encoder: routenlp (C++, bench_encoder) vs Python PyTorch eager (encoder_peer.py) side by side,
# same shapes and the same weights (bench_encoder saves them, the peer loads them).
# Usage: bench/peers/run_encoder_compare.sh [build-dir] [threads]
# Prints median ms per call for each shape and the ratio peer/routenlp (> 1: routenlp faster).
set -euo pipefail
BUILD=${1:-build}
THREADS=${2:-1}
BENCH="$BUILD/bench/bench_encoder"
PY=${PYTHON:-python3}
[ -x "$BENCH" ] || { echo "missing $BENCH (cmake --build $BUILD --target bench_encoder)"; exit 1; }
$PY -c 'import torch' 2>/dev/null || { echo "python torch missing (Debian: apt-get install python3-torch)"; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
REPS=${REPS:-5}
echo "threads=$THREADS OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset} reps=$REPS"
ROUTENLP_BENCH_THREADS=$THREADS ROUTENLP_BENCH_WEIGHTS_DIR="$W" "$BENCH" \
  --benchmark_filter="${FILTER:-(small|base)_fp32}" --benchmark_repetitions="$REPS" \
  --benchmark_report_aggregates_only=true --benchmark_format=csv 2>/dev/null > "$W/cpp.csv"
printf "%-28s %12s %12s %8s\n" "shape" "routenlp_ms" "peer_ms" "ratio"
grep '_median"' "$W/cpp.csv" | while IFS=, read -r name iters real cpu unit rest; do
  name=${name//\"/}
  cfg=$(echo "$name" | sed -E 's#run/(small|base)_fp32/.*#\1#')
  b=$(echo "$name" | sed -E 's#.*batch:([0-9]+).*#\1#')
  s=$(echo "$name" | sed -E 's#.*seq:([0-9]+).*#\1#')
  iters_peer=$(( b > 1 ? 10 : 30 ))
  [ "$cfg" = small ] && iters_peer=$(( iters_peer * 3 ))
  peer=$($PY "$(dirname "$0")/encoder_peer.py" --config "$cfg" --weights "$W/$cfg/model.safetensors" \
         --threads "$THREADS" --batch "$b" --seq "$s" --iters "$iters_peer" --impl "${PEER_IMPL:-auto}" | sed -E 's/.*p50_ms=([0-9.]+).*/\1/')
  ratio=$(awk -v a="$real" -v b="$peer" 'BEGIN{printf "%.2f", b/a}')
  printf "%-28s %12.2f %12.2f %8s\n" "$cfg b$b s$s" "$real" "$peer" "${ratio}x"
done
