#!/usr/bin/env bash
# Encoder: routenlp (bench_encoder) vs ONNX Runtime (npm onnxruntime-node, ort_peer.js) on the same
# weights, INTERLEAVED: every round runs every engine once per (threads, config), in an order
# rotated each round, so drifting background load hits all engines alike. Reports per
# (shape, threads) the median over rounds of each engine's ms per call and the median over
# rounds of the per-round ratios.
# Usage: bench/peers/run_ort_compare.sh [build-dir]
# Env: ROUNDS (3), THREADS ("1 2"), BASE_B32=1 adds base batch 32 x seq 64 (slow: seconds a call),
#      CONFIGS ("small base"), WORK=dir keeps weights and ONNX exports there (reused when present; default: a temp dir),
#      PYTHON (/usr/bin/python3: needs python3-torch and python3-onnx), MIN_TIME (1.0 s per ORT
#      shape, the same as bench_encoder's fixed MinTime(1.0)), REPORT=results.tsv only prints the
#      table of an earlier run's raw rows. A failed engine call (e.g. the library relinked by a
#      concurrent build) is reported on stderr and leaves that cell out of that round.
# Engines (ms per call = real time / iterations for all of them, as Google Benchmark reports):
#   rn            routenlp fp32, its own CPU kernels (the default path: weights packed at load)
#   rn_unpacked   the same with EncoderOptions::cpu_prepacked_weights = false (packed per call)
#   rn_torch      routenlp fp32 with ROUTENLP_CPU_KERNELS=off (every op through libtorch)
#   rn_int8       routenlp int8_dynamic (bench_encoder's *_int8)
#   ort_f32_spin  ORT fp32, intra-op spinning on (ORT's default); ort_f32_nospin: spinning off
#   ort_i8_spin   ORT int8 (export_onnx.py's quantize_dynamic-style graph); ort_i8_nospin
# Ratios (< 1: routenlp faster): rn/ort_f32 and rn_torch/ort_f32 against the better of ORT fp32
# spin on/off in that round; rn_int8/ort_i8 likewise; at batch 32 also best_rn/best_peer (best of
# every routenlp and every ORT engine that round, any precision).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
BENCH="$BUILD/bench/bench_encoder"
PY=${PYTHON:-/usr/bin/python3}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-1 2}
MIN_TIME=${MIN_TIME:-1.0}
report() {  # $1: raw rows
python3 - "$1" <<'EOF'
import sys, statistics as st
from collections import defaultdict
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
d = defaultdict(dict)   # (cfg, batch, threads) -> round -> engine -> ms
loads = defaultdict(list)
for r, t, c, b, e, ms, l in rows:
    d[(c, int(b), int(t))].setdefault(int(r), {})[e] = float(ms)
    loads[(c, int(b), int(t))].append(float(l))
E = ["rn", "rn_unpacked", "rn_torch", "rn_int8", "ort_f32_spin", "ort_f32_nospin", "ort_i8_spin", "ort_i8_nospin"]
RN = 4  # E[:RN]: routenlp's engines
med = lambda xs: st.median(xs) if xs else float("nan")
hdr = ["shape", "thr", "rounds"] + E + ["rn/ortF", "rnU/ortF", "rnT/ortF", "rnI8/ortI8", "bestRN/bestPeer", "load1"]
print("| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
for (c, b, t) in sorted(d, key=lambda k: (k[0] != "base", k[1], k[2])):
    rs = d[(c, b, t)]
    cells = [f"{c} b{b} s64", str(t), str(len(rs))]
    for e in E:
        cells.append(f"{med([x[e] for x in rs.values() if e in x]):.2f}")
    def ratio(num, dens):
        v = [x[num] / min(x[dd] for dd in dens) for x in rs.values() if num in x and all(dd in x for dd in dens)]
        return f"{med(v):.2f}" if v else "-"
    cells += [ratio("rn", ["ort_f32_spin", "ort_f32_nospin"]), ratio("rn_unpacked", ["ort_f32_spin", "ort_f32_nospin"]),
              ratio("rn_torch", ["ort_f32_spin", "ort_f32_nospin"]), ratio("rn_int8", ["ort_i8_spin", "ort_i8_nospin"])]
    if b > 1:
        v = [min(x[e] for e in E[:RN]) / min(x[e] for e in E[RN:]) for x in rs.values() if all(e in x for e in E)]
        cells.append(f"{med(v):.2f}" if v else "-")
    else:
        cells.append("")
    ls = loads[(c, b, t)]
    cells.append(f"{min(ls):.1f}-{max(ls):.1f}")
    print("| " + " | ".join(cells) + " |")
print("\nms per call: median over the rounds; ratios: median of per-round ratios (< 1: routenlp faster);"
      " ortF/ortI8 = the better of spin on/off in that round; load1 = 1-min load average range at the engine calls")
EOF
}
if [ -n "${REPORT:-}" ]; then report "$REPORT"; exit 0; fi
[ -x "$BENCH" ] || { echo "missing $BENCH (cmake --build $BUILD --target bench_encoder)"; exit 1; }
[ -d "$HERE/node_modules/onnxruntime-node" ] || {
  echo "missing onnxruntime-node: (cd bench/peers && npm ci)"; exit 1; }
if [ -n "${WORK:-}" ]; then mkdir -p "$WORK"; else WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT; fi
if [ ! -f "$WORK/base.int8.onnx" ] || [ ! -f "$WORK/small.int8.onnx" ]; then
  echo "# saving weights and exporting ONNX to $WORK"
  ROUTENLP_BENCH_THREADS=1 ROUTENLP_BENCH_WEIGHTS_DIR="$WORK/w" "$BENCH" \
    --benchmark_filter='run/(small|base)_fp32/batch:1/seq:32/' > /dev/null 2>&1
  for c in small base; do
    $PY "$HERE/export_onnx.py" "$WORK/w/$c" "$WORK/$c" 2>/dev/null | tail -1
    for q in fp32 int8; do node "$HERE/ort_peer.js" --model "$WORK/$c.$q.onnx" --check "$WORK/$c.ref.json"; done
  done
fi
RES="$WORK/results.tsv"
: > "$RES"
ENGINES=(rn rn_unpacked rn_torch rn_int8 ort_f32_spin ort_f32_nospin ort_i8_spin ort_i8_nospin)
batches() { if [ "$1" = base ] && [ "${BASE_B32:-0}" != 1 ]; then echo 1; else echo "1 32"; fi; }
load1() { cut -d' ' -f1 /proc/loadavg; }
run_engine() {  # round threads cfg engine
  local r=$1 t=$2 c=$3 e=$4 mode envs=() b out
  case $e in
    rn|rn_unpacked|rn_torch|rn_int8)
      mode=fp32; [ "$e" = rn_int8 ] && mode=int8
      [ "$e" = rn_torch ] && envs=(ROUTENLP_CPU_KERNELS=off)
      [ "$e" = rn_unpacked ] && envs=(ROUTENLP_BENCH_PREPACK=0)
      local bre; bre=$(batches "$c" | tr ' ' '|')
      local l; l=$(load1)
      env "${envs[@]}" ROUTENLP_BENCH_THREADS="$t" "$BENCH" --benchmark_format=csv \
        --benchmark_filter="^run/${c}_${mode}/batch:($bre)/seq:64/" 2>/dev/null |
        grep '^"run/' | while IFS=, read -r name iters real rest; do
          b=$(echo "$name" | sed -E 's#.*batch:([0-9]+).*#\1#')
          printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$t" "$c" "$b" "$e" "$real" "$l" >> "$RES"
        done ;;
    ort_*)
      local q=fp32 spin=on it wu
      case $e in ort_i8*) q=int8 ;; esac
      case $e in *nospin) spin=off ;; esac
      for b in $(batches "$c"); do
        it=10; wu=3
        [ "$b" -gt 1 ] && { it=3; wu=1; }
        local l; l=$(load1)
        out=$(node "$HERE/ort_peer.js" --model "$WORK/$c.$q.onnx" --threads "$t" --spin "$spin" \
          --batch "$b" --seq 64 --iters "$it" --warmup "$wu" --min_time "$MIN_TIME")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$t" "$c" "$b" "$e" \
          "$(echo "$out" | sed -E 's/.*mean_ms=([0-9.]+).*/\1/')" "$l" >> "$RES"
      done ;;
  esac
}
echo "# $(date -u +%FT%TZ) rounds=$ROUNDS threads=\"$THREADS\" base_b32=${BASE_B32:-0} nproc=$(nproc) loadavg: $(cut -d' ' -f1-3 /proc/loadavg)"
n=${#ENGINES[@]}
for ((r = 0; r < ROUNDS; r++)); do
  echo "# round $r start $(date -u +%TZ) loadavg: $(cut -d' ' -f1-3 /proc/loadavg)"
  k=0
  for t in $THREADS; do
    for c in ${CONFIGS:-small base}; do
      for ((i = 0; i < n; i++)); do
        e=${ENGINES[$(((i + r + k) % n))]}
        run_engine "$r" "$t" "$c" "$e" || echo "# warning: round $r threads $t $c $e failed" >&2
      done
      k=$((k + 1))
    done
  done
done
echo "# end $(date -u +%TZ) loadavg: $(cut -d' ' -f1-3 /proc/loadavg); raw per-round rows: $RES"
report "$RES"
