#!/usr/bin/env bash
# Fault-injection check of `routenlp serve` on loopback (docs/results.md "Serving under faults").
#   bench/serve_faults.sh [BUILD_DIR] [SECONDS] [CLIENTS] [SLOW_CLIENTS]
# A fake upstream (bench/serve_faults.py upstream) answers each call with one of: a good answer,
# 401 quoting the caller's API key back, 500, 429 + Retry-After, truncated JSON, garbage, a hang
# past the tier timeout, a 20 MiB body. `routenlp serve` (random router, both RouteLLM tiers on
# the fake, an API key from the environment, a decision log) takes CLIENTS closed-loop clients
# plus SLOW_CLIENTS slowloris connections and a /health probe for SECONDS. Checks: every request
# got a JSON answer, /health kept answering, the key appears in no response, decision-log line
# or server output, and the server's VmRSS stayed bounded; then a clean SIGTERM exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
SECS=${2:-30}
CLIENTS=${3:-6}
SLOW=${4:-16}
SERVE_PORT=${SERVE_PORT:-18090}
UP_PORT=${UPSTREAM_PORT:-18091}
CLI=$BUILD/cli/routenlp
[ -x "$CLI" ] || { echo "missing $CLI (build target routenlp_cli)"; exit 2; }
export RN_FAULT_KEY="sk-fault-$(date +%s)-0123456789abcdefSECRET"

WORK=$(mktemp -d)
UP_PID=""; SRV_PID=""
cleanup() {
  [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null || true
  [ -n "$UP_PID" ] && kill "$UP_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/serve.yaml" <<YAML
portfolio: $ROOT/data/configs/routellm.yaml
router: {kind: random, seed: 1}
tiers:
  - name: mixtral-8x7b
    endpoint: {base_url: "http://127.0.0.1:$UP_PORT", model: mixtral, api_key_env: RN_FAULT_KEY,
               timeout_ms: 3000, max_retries: 2, backoff_initial_ms: 50, backoff_max_ms: 1500}
  - name: gpt-4-1106
    endpoint: {base_url: "http://127.0.0.1:$UP_PORT", model: gpt4, api_key_env: RN_FAULT_KEY,
               timeout_ms: 3000, max_retries: 2, backoff_initial_ms: 50, backoff_max_ms: 1500}
server: {threads: 8, reserve_threads: 1, request_read_timeout_s: 10, default_deadline_ms: 8000,
         audit_rate: 0.1, decision_log: $WORK/decisions.jsonl}
YAML

python3 "$ROOT/bench/serve_faults.py" upstream --port "$UP_PORT" > "$WORK/upstream.log" 2>&1 &
UP_PID=$!
"$CLI" serve "$WORK/serve.yaml" --port "$SERVE_PORT" > "$WORK/serve.out" 2> "$WORK/serve.err" &
SRV_PID=$!
for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$SERVE_PORT/health" > /dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$SERVE_PORT/health" > /dev/null || { cat "$WORK/serve.err"; exit 1; }

rss() { awk '/VmRSS/ {print $2}' "/proc/$SRV_PID/status"; }
rss_start=$(rss); rss_max=$rss_start
( while kill -0 "$SRV_PID" 2>/dev/null; do rss >> "$WORK/rss.txt" 2>/dev/null || true; sleep 0.5; done ) &
SAMPLER=$!
python3 "$ROOT/bench/serve_faults.py" load --port "$SERVE_PORT" --seconds "$SECS" --clients "$CLIENTS" \
  --slow "$SLOW" --key "$RN_FAULT_KEY" --out "$WORK/load.json" > /dev/null
rss_end=$(rss)
curl -fsS "http://127.0.0.1:$SERVE_PORT/metrics" > "$WORK/metrics.txt"
kill -TERM "$SRV_PID"
wait "$SRV_PID" && srv_rc=0 || srv_rc=$?
SRV_PID=""
kill "$SAMPLER" 2>/dev/null || true
rss_max=$(sort -n "$WORK/rss.txt" | tail -1)

leaks=0
for f in "$WORK/serve.out" "$WORK/serve.err" "$WORK/decisions.jsonl" "$WORK/metrics.txt"; do
  if grep -qF "$RN_FAULT_KEY" "$f"; then echo "KEY LEAKED into $f"; leaks=$((leaks + 1)); fi
done
echo "== load ($CLIENTS clients, $SLOW slowloris, ${SECS}s; machine load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores)"
cat "$WORK/load.json"; echo
echo "== upstream behaviours drawn:"; kill "$UP_PID" 2>/dev/null; wait "$UP_PID" 2>/dev/null || true; UP_PID=""
tail -1 "$WORK/upstream.log"
echo "== decision log lines: $(wc -l < "$WORK/decisions.jsonl")"
echo "== server VmRSS (kB): start $rss_start, max $rss_max, end $rss_end"
echo "== metrics excerpt"
grep -E '^routenlp_http_(requests_total|connections)' "$WORK/metrics.txt" | head -30
echo "== key found in server output / decision log / metrics: $leaks file(s)"
echo "== shutdown: exit code $srv_rc"
python3 - "$WORK/load.json" "$leaks" "$srv_rc" "$rss_max" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ok = (r["unanswered"] == 0 and r["key_in_responses"] == 0 and int(sys.argv[2]) == 0
      and int(sys.argv[3]) == 0 and r["health"]["failed"] == 0 and int(sys.argv[4]) < 512 * 1024)
print("== PASS" if ok else "== FAIL")
sys.exit(0 if ok else 1)
PY
