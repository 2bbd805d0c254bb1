#!/usr/bin/env bash
# From recorded data to a served router — the README walkthrough, end to end on loopback:
#   1. routenlp fit      router + calibrated cascade from recorded outcomes -> one artifact
#   2. routenlp eval     the saved artifact on the test split (what serving it costs)
#   3. routenlp serve    the artifact behind an OpenAI-compatible endpoint
#   4. an OpenAI-style chat request, answered by the cascade
# Model servers are stood in for by fake_upstream.py (point `base_url` at yours instead).
# Usage: run.sh [OUT_DIR]   (env ROUTENLP: the CLI binary; default build/cli/routenlp)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUTENLP=${ROUTENLP:-build/cli/routenlp}
OUT=${1:-out/walkthrough}
mkdir -p "$OUT"
DATA=data/routing/llmrouter.jsonl      # 9 models, 14 tasks (docs/results.md)
CONFIG=data/configs/llmrouter.yaml

echo "== 1. fit"
"$ROUTENLP" fit --data "$DATA" --config "$CONFIG" --quality-target 0.97 --out "$OUT/pipeline" --overwrite --quiet
echo "== 2. eval --pipeline (test split)"
"$ROUTENLP" eval --pipeline "$OUT/pipeline" --data "$DATA" --json "$OUT/eval.json"

echo "== 3. serve"
rm -f "$OUT/upstream.port"
python3 examples/walkthrough/fake_upstream.py "$OUT/upstream.port" &
UPSTREAM=$!
SERVE=""
cleanup() {
  [ -n "$SERVE" ] && kill -TERM "$SERVE" 2>/dev/null && wait "$SERVE" 2>/dev/null || true
  kill "$UPSTREAM" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do [ -s "$OUT/upstream.port" ] && break; sleep 0.1; done
UPORT=$(cat "$OUT/upstream.port")
# One endpoint per tier of the pipeline (here all on the stand-in upstream).
"$ROUTENLP" route --pipeline "$OUT/pipeline" --task default --json "hello" > "$OUT/route.json"
python3 - "$OUT/route.json" "$UPORT" > "$OUT/serve.yaml" <<'PY'
import json, sys
tiers = [s["tier_name"] for s in json.load(open(sys.argv[1]))["scores"]]
print("pipeline: pipeline")
print("tiers:")
for t in tiers:
    print(f'  - {{name: "{t}", endpoint: {{base_url: "http://127.0.0.1:{sys.argv[2]}", model: "{t}"}}}}')
print("server: {host: 127.0.0.1, port: 0, threads: 4}")
PY
"$ROUTENLP" serve "$OUT/serve.yaml" > "$OUT/serve.log" 2>&1 &
SERVE=$!
for _ in $(seq 200); do grep -q "listening on" "$OUT/serve.log" 2>/dev/null && break; sleep 0.1; done
URL=$(grep -o "http://[0-9.]*:[0-9]*" "$OUT/serve.log" | head -1)
[ -n "$URL" ] || { cat "$OUT/serve.log"; echo "serve did not start"; exit 1; }
echo "serving at $URL"

echo "== 4. an OpenAI-style request"
python3 - "$URL" <<'PY'
import json, sys, urllib.error, urllib.request
url = sys.argv[1]
body = {"messages": [{"role": "user", "content":
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many "
        "clips in May. How many clips did Natalia sell altogether in April and May?"}],
        "task": "gsm8k"}
req = urllib.request.Request(url + "/v1/chat/completions", json.dumps(body).encode(),
                             {"Content-Type": "application/json"})
try:
    out = json.load(urllib.request.urlopen(req, timeout=60))
except urllib.error.HTTPError as e:
    sys.exit(f"HTTP {e.code}: {e.read().decode()[:2000]}")
rn = out["routenlp"]
print("answer:", out["choices"][0]["message"]["content"])
print("answered by:", out["model"], "| routing:", rn["routing"]["policy"], "->", rn["routing"]["tier_name"],
      "| tiers called:", [t["name"] for t in rn["trace"] if t["decision"] != "skipped_threshold"],
      "| cost $%.6f" % rn["cost_usd"])
assert out["choices"][0]["message"]["content"], "empty answer"
assert rn["routing"]["policy"] == "pipeline", rn["routing"]
PY
echo "walkthrough: ok"
