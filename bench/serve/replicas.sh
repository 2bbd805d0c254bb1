#!/usr/bin/env bash
# Replicas of `routenlp serve` sharing online state through Redis, on loopback (issue #15;
# docs/serving.md "Replicas sharing state through Redis", docs/results.md).
#   bench/serve/replicas.sh [BUILD_DIR] [SECONDS] [CLIENTS]
# Starts redis-server (a free port, its own temp dir, AOF with appendfsync everysec), the fake
# OpenAI-compatible upstream (serve_load fake-upstream), then three closed-loop runs of
# replica_load with CLIENTS clients for SECONDS each, audit_rate 0.1 and a label posted for every
# audited answer (feedback on ~10% of requests, always to another replica than the one that
# answered):
#   A. 1 replica, in-process state (today's default)
#   B. 1 replica, state: redis://
#   C. 3 replicas, state: redis://
# Prints per run: chat req/s, p50/p99 latency, feedback share, feedback-to-convergence p50/p99
# (probe: one label every 100 ms, time until every replica's /health last_id reaches it), and
# Redis commands per HTTP request (INFO stats total_commands_processed: the commands inside the
# Lua scripts count too, as do the replicas' XREADs and lag samples). Checks that C's replicas end on one digest.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
SECS=${2:-30}
CLIENTS=${3:-8}
CLI=$BUILD/cli/routenlp
LOAD=$BUILD/bench/replica_load
UPSTREAM=$BUILD/bench/serve_load
for b in "$CLI" "$LOAD" "$UPSTREAM"; do
  [ -x "$b" ] || { echo "missing $b (build targets routenlp_cli replica_load serve_load)"; exit 2; }
done
command -v redis-server > /dev/null || { echo "redis-server not found (scripts/install-deps.sh)"; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$WORK" --save "" --appendonly yes \
  --logfile "$WORK/redis.log" &
PIDS+=($!)
for _ in $(seq 100); do redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
UPORT=$(free_port)
"$UPSTREAM" fake-upstream --port "$UPORT" > "$WORK/upstream.log" 2>&1 &
PIDS+=($!)

config() {  # config NAME STATE_LINES
  cat > "$WORK/$1.yaml" <<YAML
portfolio: $ROOT/data/configs/routellm.yaml
router: {kind: tfidf-logreg, train_data: $ROOT/data/routing/routellm_gsm8k.jsonl}
tiers:
  - name: mixtral-8x7b
    endpoint: {base_url: "http://127.0.0.1:$UPORT", model: mixtral, timeout_ms: 5000, max_retries: 1}
  - name: gpt-4-1106
    endpoint: {base_url: "http://127.0.0.1:$UPORT", model: gpt4, timeout_ms: 5000, max_retries: 1}
# One worker thread per keep-alive client connection: the load clients, the probe, /health.
server: {host: 127.0.0.1, port: 0, threads: $((CLIENTS + 4)), audit_rate: 0.1, max_connections_per_client: 0}
$2
YAML
  echo "$WORK/$1.yaml"
}

SERVE_PORTS=()
SERVE_PIDS=()
start_replicas() {  # start_replicas N CONFIG
  SERVE_PORTS=()
  SERVE_PIDS=()
  for i in $(seq 1 "$1"); do
    local log="$WORK/serve-$RANDOM-$i.log"
    "$CLI" serve "$2" > "$log" 2>&1 &
    SERVE_PIDS+=($!)
    PIDS+=($!)
    local url=""
    for _ in $(seq 300); do
      url=$(grep -o "http://127.0.0.1:[0-9]*" "$log" | head -1 || true)
      [ -n "$url" ] && break
      sleep 0.1
    done
    [ -n "$url" ] || { cat "$log"; echo "replica did not start"; exit 1; }
    SERVE_PORTS+=("${url##*:}")
  done
}
stop_replicas() {
  for p in "${SERVE_PIDS[@]}"; do kill -TERM "$p"; wait "$p" || { echo "replica $p: unclean exit"; exit 1; }; done
}
redis_cmds() { redis-cli -p "$RPORT" info stats | awk -F: '/^total_commands_processed/ {print $2+0}'; }

run() {  # run NAME N STATE_LINES
  local name=$1 n=$2 cfg
  cfg=$(config "$name" "$3")
  redis-cli -p "$RPORT" flushall > /dev/null
  start_replicas "$n" "$cfg"
  local ports
  ports=$(IFS=,; echo "${SERVE_PORTS[*]}")
  "$LOAD" --ports "$ports" --clients "$CLIENTS" --seconds 3 --probe-ms 0 > /dev/null  # warm-up
  local c0 c1
  c0=$(redis_cmds)
  "$LOAD" --ports "$ports" --clients "$CLIENTS" --seconds "$SECS" --probe-ms 100 > "$WORK/$name.json"
  c1=$(redis_cmds)
  # Every replica at the stream's head with one digest (bounded wait).
  local digests=""
  for _ in $(seq 100); do
    digests=$(for p in "${SERVE_PORTS[@]}"; do curl -fsS "http://127.0.0.1:$p/health"; echo; done |
      python3 -c 'import json,sys; print(" ".join(sorted({json.loads(l)["state"].get("digest","local") for l in sys.stdin if l.strip()})))')
    [ "$(echo "$digests" | wc -w)" = 1 ] && break
    sleep 0.1
  done
  stop_replicas
  python3 - "$WORK/$name.json" "$name" "$c0" "$c1" "$digests" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
name, c0, c1, digests = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
http = r["chat_requests"] + r["feedback_posted"]
cv = r["convergence_ms"]
print(f"| {name} | {r['replicas']} | {r['chat_per_s']:.0f} | {r['chat_latency_ms']['p50']:.1f} / "
      f"{r['chat_latency_ms']['p99']:.1f} | {100 * r['feedback_share']:.1f}% | "
      + (f"{cv['p50']:.1f} / {cv['p99']:.1f} (n={cv['n']}, timeouts {cv['timeouts']})" if cv["n"] else "—")
      + f" | {(c1 - c0) / max(1, http):.2f} | {len(digests.split())} |")
print("   status:", json.dumps(r["status"]), "transport errors:", r["transport_errors"], file=sys.stderr)
if len(digests.split()) != 1:
    sys.exit(f"{name}: replicas ended on different states: {digests}")
PY
}

echo "bench/serve/replicas.sh: $(nproc) cores, $CLIENTS clients, ${SECS}s per run, redis $(redis-server --version | grep -o 'v=[0-9.]*')"
echo "| run | replicas | chat req/s | latency p50 / p99 ms | feedback | convergence p50 / p99 ms | Redis cmds / HTTP request | digests |"
echo "|---|---|---|---|---|---|---|---|"
run "A-local" 1 ""
run "B-redis-1" 1 "state: {url: \"redis://127.0.0.1:$RPORT/0\", prefix: \"bench:\"}"
run "C-redis-3" 3 "state: {url: \"redis://127.0.0.1:$RPORT/0\", prefix: \"bench:\"}"
echo "Redis command counts over all runs (INFO commandstats; script-internal calls included):"
redis-cli -p "$RPORT" info commandstats | grep -E "^cmdstat_(eval|xadd|xread|set|get|incr|hset|hgetall|ping)" |
  sed -E 's/^cmdstat_([a-z]+):calls=([0-9]+).*/  \1 \2/'
