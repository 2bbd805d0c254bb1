#!/usr/bin/env bash
# The encoder's own CPU kernels vs the libtorch-ops path (ROUTENLP_CPU_KERNELS=off), idle and
# under a background CPU load, interleaved: every round runs each engine once, in an order that
# rotates each round, so drifting load hits both alike. Reports medians of the per-run times
# and the ratios own / libtorch, own / own-without-the-pool's-contention-backoff
# (ROUTENLP_CPU_POOL_BACKOFF=off), own / own-without-the-free-core-check
# (ROUTENLP_CPU_POOL_LOADCHECK=off) and own / own-splitting-every-operation-of-a-batch
# (ROUTENLP_CPU_BATCH_SPLIT=off; batch 32 only) (< 1: the first faster).
# Usage: bench/contention/run.sh [build-dir] [rounds] [threads]
#   FILTER   Google Benchmark filter (default: small fp32 at batch 1 and 32, base at batch 1;
#            seq 64)
#   LOAD     busy processes in the loaded condition (default: one per CPU)
# libtorch runs with OMP_WAIT_POLICY=PASSIVE (unless set): its default busy-wait makes the
# libtorch path several times slower on shared cores, which would flatter the own kernels.
set -euo pipefail
BUILD=${1:-build}
ROUNDS=${2:-7}
THREADS=${3:-$(nproc)}
BENCH="$BUILD/bench/bench_encoder"
[ -x "$BENCH" ] || { echo "missing $BENCH (cmake --build $BUILD --target bench_encoder)"; exit 1; }
FILTER=${FILTER:-'(small_fp32/batch:(1|32)|base_fp32/batch:1)/seq:64'}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
LOAD=${LOAD:-$(nproc)}
W=$(mktemp -d)
LOAD_PIDS=()
stop_load() { for p in "${LOAD_PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; LOAD_PIDS=(); }
trap 'stop_load; rm -rf "$W"' EXIT
start_load() { for _ in $(seq "$LOAD"); do (while :; do :; done) & LOAD_PIDS+=($!); done; }

run_one() {  # condition engine
  local env_args=()
  [ "$2" = torch_ops ] && env_args=(ROUTENLP_CPU_KERNELS=off)
  [ "$2" = own_no_backoff ] && env_args=(ROUTENLP_CPU_POOL_BACKOFF=off)
  [ "$2" = own_no_loadcheck ] && env_args=(ROUTENLP_CPU_POOL_LOADCHECK=off)
  [ "$2" = own_no_batch_split ] && env_args=(ROUTENLP_CPU_BATCH_SPLIT=off)
  env "${env_args[@]}" ROUTENLP_BENCH_THREADS="$THREADS" "$BENCH" --benchmark_filter="$FILTER" \
    --benchmark_min_time=0.3 --benchmark_format=csv 2>/dev/null |
    awk -F, -v c="$1" -v e="$2" '/^"run\//{gsub(/"/,"",$1); print c","e","$1","$3}' >> "$W/times.csv"
}

echo "OMP_WAIT_POLICY=$OMP_WAIT_POLICY threads=$THREADS rounds=$ROUNDS load=$LOAD busy processes; $(nproc) CPUs; loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
engines=(own own_no_backoff own_no_loadcheck own_no_batch_split torch_ops)
for cond in idle loaded; do
  [ "$cond" = loaded ] && start_load
  for r in $(seq 0 $((ROUNDS - 1))); do
    for i in $(seq 0 $((${#engines[@]} - 1))); do
      run_one "$cond" "${engines[$(( (i + r) % ${#engines[@]} ))]}"
    done
  done
  echo "$cond: loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
  stop_load
done

python3 - "$W/times.csv" <<'PY'
import csv, statistics, sys
from collections import defaultdict
t = defaultdict(list)
for cond, eng, name, ms in csv.reader(open(sys.argv[1])):
    t[(cond, name, eng)].append(float(ms))
shapes = sorted({(c, n) for c, n, _ in t})
print(f"{'condition':9} {'shape':26} {'own ms':>9} {'no-backoff':>10} {'no-lcheck':>9} {'no-bsplit':>9} {'torch ms':>9} {'own/torch':>9} {'own/no-bo':>9} {'own/no-lc':>9} {'own/no-bs':>9}  runs")
for c, n in shapes:
    own, ops = t.get((c, n, 'own'), []), t.get((c, n, 'torch_ops'), [])
    nb, nl = t.get((c, n, 'own_no_backoff'), []), t.get((c, n, 'own_no_loadcheck'), [])
    ns = t.get((c, n, 'own_no_batch_split'), [])
    if not own or not ops or not nb or not nl or not ns: continue
    mo, mt, mn, ml, ms = (statistics.median(x) for x in (own, ops, nb, nl, ns))
    n = n.replace('run/', '').replace('/min_time:1.000/real_time', '')
    print(f"{c:9} {n:26} {mo:9.2f} {mn:10.2f} {ml:9.2f} {ms:9.2f} {mt:9.2f} {mo/mt:9.2f} {mo/mn:9.2f} {mo/ml:9.2f} {mo/ms:9.2f}  {len(own)}/{len(nb)}/{len(nl)}/{len(ns)}/{len(ops)}")
PY
