#!/usr/bin/env bash
# Tokenizer: routenlp (bench_tokenizer, one thread) vs HuggingFace tokenizers (Node binding),
# same corpus and vocabulary, run side by side. Prints both and the ratios.
#   bench/peers/run_tokenizer_compare.sh [BUILD_DIR]   (default: build)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${1:-$repo/build}"
bench="$build/bench/bench_tokenizer"
[[ -x "$bench" ]] || { echo "missing $bench: cmake --build $build --target bench_tokenizer" >&2; exit 2; }
if [[ ! -d "$here/node_modules/tokenizers" ]]; then
  (cd "$here" && npm install --no-audit --no-fund --silent) >&2
fi
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT

"$bench" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_format=json --benchmark_out="$tmp/ours.json" --benchmark_out_format=json >/dev/null
RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false node "$here/tokenizer_peer.js" > "$tmp/peer1.json"
node "$here/tokenizer_peer.js" > "$tmp/peerN.json"

python3 - "$tmp/ours.json" "$tmp/peer1.json" "$tmp/peerN.json" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))
p1, pn = (json.loads(open(f).read().strip().splitlines()[-1]) for f in sys.argv[2:4])
med = {b["run_name"]: b for b in ours["benchmarks"] if b.get("aggregate_name") == "median"}
def get(prefix, key):
    for k, b in med.items():
        if k.startswith(prefix): return b[key]
    raise SystemExit("no %s in bench output" % prefix)
mb_cpu = get("BM_EncodeCorpus", "bytes_per_second") / 1e6   # per CPU-second (Google Benchmark default)
corpus_bytes = get("BM_EncodeCorpus", "corpus_bytes")
mb_wall = corpus_bytes / (get("BM_EncodeCorpus", "real_time") / 1e3) / 1e6  # time_unit ms
p50 = get("BM_EncodeQuery64", "p50_us"); p99 = get("BM_EncodeQuery64", "p99_us")
print("machine: %s, %s cores, load avg %s" % (ours["context"].get("host_name", "?"), ours["context"].get("num_cpus", "?"), ours["context"].get("load_avg", "?")))
print("corpus: %d queries, %.2f MB (tests/data/tokenizer/golden.jsonl); medians of repetitions" % (p1["corpus_queries"], p1["corpus_bytes"] / 1e6))
print("%-46s %10s %10s %11s %11s" % ("", "MB/s wall", "MB/cpu-s", "q64 p50 us", "q64 p99 us"))
print("%-46s %10.1f %10.1f %11.2f %11.2f" % ("routenlp (1 thread, encode() per query)", mb_wall, mb_cpu, p50, p99))
print("%-46s %10.1f %10.1f %11.2f %11.2f" % ("HF tokenizers %s node, encodeBatch 1 thread" % p1["version"], p1["batch_mb_s"], p1["batch_mb_per_cpu_s"], p1["query64_p50_us"], p1["query64_p99_us"]))
print("%-46s %10.1f %10.1f %11s %11s" % ("HF tokenizers node, encodeBatch default threads", pn["batch_mb_s"], pn["batch_mb_per_cpu_s"], "-", "-"))
print("ratio throughput routenlp / HF 1 thread: %.1fx wall, %.1fx per CPU-second" % (mb_wall / p1["batch_mb_s"], mb_cpu / p1["batch_mb_per_cpu_s"]))
print("ratio throughput routenlp (1 thread) / HF default threads: %.1fx wall" % (mb_wall / pn["batch_mb_s"]))
print("ratio q64 p50 latency HF encode() / routenlp encode(): %.1fx (HF's includes the async N-API call)" % (p1["query64_p50_us"] / p50))
PY
