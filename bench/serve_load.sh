#!/usr/bin/env bash
# Bounded load check of `routenlp serve` on loopback (docs/serving.md, docs/results.md "Serving").
#   bench/serve_load.sh [BUILD_DIR] [SECONDS] [CLIENTS]
# Starts a fake OpenAI-compatible upstream (serve_load fake-upstream) standing in for the two
# RouteLLM tiers, `routenlp serve` with a TF-IDF logistic-regression router trained on the
# bundled GSM8K routing data, then runs two closed-loop loads with CLIENTS keep-alive clients
# for SECONDS each: (1) /route only, (2) a mix of /route, /route/batch (8 queries) and
# /v1/chat/completions (routed + cascaded through the upstream). Samples the server's VmRSS
# after warm-up and after each run, then stops it with SIGTERM and checks a clean exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
SECONDS_PER_RUN=${2:-30}
CLIENTS=${3:-8}
SERVE_PORT=${SERVE_PORT:-18080}
UP_PORT=${UPSTREAM_PORT:-18081}
CLI=$BUILD/cli/routenlp
LOAD=$BUILD/bench/serve_load
[ -x "$CLI" ] || { echo "missing $CLI (build target routenlp_cli)"; exit 2; }
[ -x "$LOAD" ] || { echo "missing $LOAD (build target serve_load)"; exit 2; }

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
router: {kind: tfidf-logreg, train_data: $ROOT/data/routing/routellm_gsm8k.jsonl}
tiers:
  - name: mixtral-8x7b
    endpoint: {base_url: "http://127.0.0.1:$UP_PORT", model: mixtral, timeout_ms: 5000, max_retries: 1}
  - name: gpt-4-1106
    endpoint: {base_url: "http://127.0.0.1:$UP_PORT", model: gpt4, timeout_ms: 5000, max_retries: 1}
server: {threads: $CLIENTS, max_body_bytes: 1048576, audit_rate: 0.1, max_connections_per_client: 0}  # all clients share 127.0.0.1
YAML

"$LOAD" fake-upstream --port "$UP_PORT" > "$WORK/upstream.log" 2>&1 &
UP_PID=$!
"$CLI" serve "$WORK/serve.yaml" --port "$SERVE_PORT" > "$WORK/serve.log" 2>&1 &
SRV_PID=$!
for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$SERVE_PORT/health" > /dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$SERVE_PORT/health" > /dev/null || { cat "$WORK/serve.log"; exit 1; }

rss() { awk '/VmRSS/ {print $2}' "/proc/$SRV_PID/status"; }
rss_start=$(rss)
"$LOAD" client --port "$SERVE_PORT" --clients "$CLIENTS" --seconds 3 --mix route:4,batch:1,chat:2 \
  --queries "$ROOT/data/routing/routellm_gsm8k.jsonl" > /dev/null || true
rss_warm=$(rss)
"$LOAD" client --port "$SERVE_PORT" --clients "$CLIENTS" --seconds "$SECONDS_PER_RUN" --mix route:1 \
  --queries "$ROOT/data/routing/routellm_gsm8k.jsonl" > "$WORK/route.json" && rc1=0 || rc1=$?
rss_after_route=$(rss)
"$LOAD" client --port "$SERVE_PORT" --clients "$CLIENTS" --seconds "$SECONDS_PER_RUN" \
  --mix route:4,batch:1,chat:2 --model router-tfidf-logreg-0.5 \
  --queries "$ROOT/data/routing/routellm_gsm8k.jsonl" > "$WORK/mixed.json" && rc2=0 || rc2=$?
rss_after_mixed=$(rss)
curl -fsS "http://127.0.0.1:$SERVE_PORT/metrics" > "$WORK/metrics.txt"

kill -TERM "$SRV_PID"
wait "$SRV_PID" && srv_rc=0 || srv_rc=$?
SRV_PID=""

echo "== /route only ($CLIENTS clients, ${SECONDS_PER_RUN}s)"; cat "$WORK/route.json"
echo "== mixed route:4,batch:1,chat:2 ($CLIENTS clients, ${SECONDS_PER_RUN}s)"; cat "$WORK/mixed.json"
echo "== server VmRSS (kB): start $rss_start, after warm-up $rss_warm, after /route run $rss_after_route, after mixed run $rss_after_mixed"
echo "== metrics excerpt"; grep -E '^routenlp_http_requests_total|^routenlp_route_decisions_total' "$WORK/metrics.txt" | head -20
echo "== shutdown: exit code $srv_rc; log tail:"; tail -3 "$WORK/serve.log"
[ "$rc1" = 0 ] && [ "$rc2" = 0 ] && [ "$srv_rc" = 0 ]
