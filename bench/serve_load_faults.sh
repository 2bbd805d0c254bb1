#!/usr/bin/env bash
# Load with upstream faults against `routenlp serve` on loopback (issue #14 item 6; docs/results.md
# "Serving: load with upstream faults").
#   bench/serve_load_faults.sh [BUILD_DIR] [SECONDS] [CLIENTS] [STREAM_SHARE]
# A two-tier cascade (cheap -> strong, an `always` router starting at the cheap tier, a
# calibration that accepts the cheap tier's confident answers) over one fake upstream
# (bench/serve_load_faults.py upstream): the cheap model answers 10 % HTTP 500, 5 % a hang past
# the tier's 1 s timeout, 1 % a non-JSON 200; the strong model always answers. No retries on the
# cheap tier, so each injected fault is exactly one escalation. CLIENTS closed-loop keep-alive
# clients for SECONDS, a share STREAM_SHARE of the requests with "stream": true. Checks: no
# request lost (every one got an answer or a JSON error; every stream ended with [DONE]), every
# answer 200, escalations seen in the answers' traces = faults the upstream injected (by kind),
# server VmRSS flat after warm-up (growth under 32 MB from 5 s in to the end); clean SIGTERM.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
SECS=${2:-30}
CLIENTS=${3:-8}
SHARE=${4:-0.5}
SERVE_PORT=${SERVE_PORT:-18094}
UP_PORT=${UPSTREAM_PORT:-18095}
CLI=$BUILD/cli/routenlp
[ -x "$CLI" ] || { echo "missing $CLI (build target routenlp_cli)"; exit 2; }

WORK=$(mktemp -d)
UP_PID=""; SRV_PID=""; SAMPLER=""
cleanup() {
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true
  [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null || true
  [ -n "$UP_PID" ] && kill "$UP_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/calib.json" <<'JSON'
{"format": "routenlp-calibration", "format_version": 2,
 "options": {"method": "ltt", "alpha": 0.1, "epsilon": 0.1},
 "provenance": {"data_hash": "hand-written", "n": 0, "alpha": 0.1, "epsilon": 0.1, "method": "ltt"},
 "table": {"tiers": ["mixtral-8x7b", "gpt-4-1106"], "columns": ["*"], "alphas": [0.1],
           "base_alpha": 0, "delta": [0.5, "inf"]},
 "cells": []}
JSON
cat > "$WORK/serve.yaml" <<YAML
portfolio: $ROOT/data/configs/routellm.yaml
router: {kind: always, tier: mixtral-8x7b}
calibration: $WORK/calib.json
tiers:
  - name: mixtral-8x7b
    endpoint: {base_url: "http://127.0.0.1:$UP_PORT", model: cheap, timeout_ms: 1000, max_retries: 0}
  - name: gpt-4-1106
    endpoint: {base_url: "http://127.0.0.1:$UP_PORT", model: strong, timeout_ms: 5000, max_retries: 0}
server: {threads: 16, default_policy: threshold, default_deadline_ms: 10000}
YAML

python3 "$ROOT/bench/serve_load_faults.py" upstream --port "$UP_PORT" > "$WORK/upstream.log" 2>&1 &
UP_PID=$!
"$CLI" serve "$WORK/serve.yaml" --port "$SERVE_PORT" > "$WORK/serve.out" 2> "$WORK/serve.err" &
SRV_PID=$!
for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$SERVE_PORT/health" > /dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$SERVE_PORT/health" > /dev/null || { cat "$WORK/serve.err"; exit 1; }
curl -fsS "http://127.0.0.1:$UP_PORT/counts" > /dev/null || { cat "$WORK/upstream.log"; exit 1; }

rss() { awk '/VmRSS/ {print $2}' "/proc/$SRV_PID/status"; }
( t=0; while kill -0 "$SRV_PID" 2>/dev/null; do echo "$t $(rss)" >> "$WORK/rss.txt" 2>/dev/null || true; sleep 0.5; t=$((t + 1)); done ) &
SAMPLER=$!
python3 "$ROOT/bench/serve_load_faults.py" load --port "$SERVE_PORT" --seconds "$SECS" --clients "$CLIENTS" \
  --stream-share "$SHARE" --out "$WORK/load.json" > /dev/null
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
curl -fsS "http://127.0.0.1:$UP_PORT/counts" > "$WORK/counts.json"
kill "$SAMPLER" 2>/dev/null || true; SAMPLER=""
kill -TERM "$SRV_PID"
wait "$SRV_PID" && srv_rc=0 || srv_rc=$?
SRV_PID=""

echo "== $CLIENTS clients, ${SECS}s, stream share $SHARE; load average at the end $LOADAVG, $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC')"
cat "$WORK/load.json"; echo
echo "== upstream draws: $(cat "$WORK/counts.json")"
echo "== shutdown: exit code $srv_rc"
python3 - "$WORK/load.json" "$WORK/counts.json" "$WORK/rss.txt" "$srv_rc" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c = json.load(open(sys.argv[2]))
rss = [tuple(map(int, l.split())) for l in open(sys.argv[3]) if len(l.split()) == 2]
injected = {"http500": c.get("cheap:err500", 0), "timeout": c.get("cheap:timeout", 0),
            "malformed": c.get("cheap:garbage", 0)}
seen = {k: r["cheap_tier_errors_seen"].get(k, 0) for k in injected}
cheap_calls = sum(v for k, v in c.items() if k.startswith("cheap:"))
warm = [kb for t, kb in rss if t >= 10] or [kb for _, kb in rss]  # samples every 0.5 s: t >= 10 is 5 s in
growth_mb = (warm[-1] - warm[0]) / 1024
print("== injected faults on the cheap tier:", injected, "of", cheap_calls, "cheap calls")
print("== escalations seen in the answers' traces:", seen, "(strong-tier calls:", c.get("strong:ok", 0), ")")
print("== server VmRSS MB: start %.0f, at 5 s %.0f, max %.0f, end %.0f (growth after warm-up %.1f MB)"
      % (rss[0][1] / 1024, warm[0] / 1024, max(kb for _, kb in rss) / 1024, rss[-1][1] / 1024, growth_mb))
checks = {
    "no request lost": r["lost"] == 0,
    "every reply 200": set(r["status"]) == {"200"},
    "one cheap call per request": cheap_calls == r["requests"],
    "escalations = injected faults (by kind)": seen == injected,
    "strong calls = injected faults": c.get("strong:ok", 0) == sum(injected.values()),
    "RSS flat (growth < 32 MB after warm-up)": growth_mb < 32,
    "clean SIGTERM exit": int(sys.argv[4]) == 0,
}
for k, v in checks.items():
    print("  %-42s %s" % (k, "ok" if v else "FAIL"))
print("== PASS" if all(checks.values()) else "== FAIL")
sys.exit(0 if all(checks.values()) else 1)
PY
