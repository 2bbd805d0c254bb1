#!/usr/bin/env bash
# Encoder: routenlp (C++, bench_encoder) vs Python PyTorch eager (encoder_peer.py) side by side,
# same shapes and the same weights (bench_encoder saves them, the peer loads them).
# Usage: bench/peers/run_encoder_compare.sh [build-dir] [threads]
# Columns (median ms per call):
#   routenlp      the default path (routenlp's own CPU kernels where the CPU has AVX2/AVX-512)
#   rn_torch_ops  the same binary with ROUTENLP_CPU_KERNELS=off (every op through libtorch)
#   peer          Python eager, same environment as routenlp
#   peer_auto     Python eager with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset, i.e. OpenBLAS's own
#                 kernel choice (printed only when the environment pins them; the peer's best)
#   ratio         peer / routenlp, ratio_auto = peer_auto / routenlp (> 1: routenlp faster)
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
PINNED=${OPENBLAS_CORETYPE:-}
echo "threads=$THREADS OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset} OPENBLAS_CORETYPE=${PINNED:-unset} reps=$REPS"
run_bench() {  # $1: output csv; extra environment before the command via env
  ROUTENLP_BENCH_THREADS=$THREADS ROUTENLP_BENCH_WEIGHTS_DIR="$W" "$@" "$BENCH" \
    --benchmark_filter="${FILTER:-(small|base)_fp32}" --benchmark_repetitions="$REPS" \
    --benchmark_report_aggregates_only=true --benchmark_format=csv 2>/dev/null
}
run_bench env > "$W/cpp.csv"
run_bench env ROUTENLP_CPU_KERNELS=off > "$W/torch_ops.csv"
peer() {  # config batch seq iters [env...]
  local cfg=$1 b=$2 s=$3 it=$4
  shift 4
  "$@" $PY "$(dirname "$0")/encoder_peer.py" --config "$cfg" --weights "$W/$cfg/model.safetensors" \
    --threads "$THREADS" --batch "$b" --seq "$s" --iters "$it" --impl "${PEER_IMPL:-auto}" |
    sed -E 's/.*p50_ms=([0-9.]+).*/\1/'
}
printf "%-14s %10s %13s %10s %10s %7s %11s\n" "shape" "routenlp" "rn_torch_ops" "peer" "peer_auto" "ratio" "ratio_auto"
grep '_median"' "$W/cpp.csv" | while IFS=, read -r name iters real cpu unit rest; do
  name=${name//\"/}
  cfg=$(echo "$name" | sed -E 's#run/(small|base)_fp32/.*#\1#')
  b=$(echo "$name" | sed -E 's#.*batch:([0-9]+).*#\1#')
  s=$(echo "$name" | sed -E 's#.*seq:([0-9]+).*#\1#')
  ops=$(grep "\"$name\"" "$W/torch_ops.csv" | cut -d, -f3)
  iters_peer=$(( b > 1 ? 10 : 30 ))
  [ "$cfg" = small ] && iters_peer=$(( iters_peer * 3 ))
  p=$(peer "$cfg" "$b" "$s" "$iters_peer" env)
  if [ -n "$PINNED" ]; then
    pa=$(peer "$cfg" "$b" "$s" "$iters_peer" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
  else
    pa=$p
  fi
  printf "%-14s %10.2f %13.2f %10.2f %10.2f %6.2fx %10.2fx\n" "$cfg b$b s$s" "$real" "${ops:-0}" "$p" "$pa" \
    "$(awk -v a="$real" -v b="$p" 'BEGIN{print b/a}')" "$(awk -v a="$real" -v b="$pa" 'BEGIN{print b/a}')"
done
