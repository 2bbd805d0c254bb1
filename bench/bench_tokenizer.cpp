// WordPiece tokenizer speed: per-query latency percentiles and corpus throughput (one thread).
// Corpus: the real queries of tests/data/tokenizer/golden.jsonl (routellm, routerbench,
// llmrouter prompts). Peer: bench/peers/run_tokenizer_compare.sh.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "routenlp/text/tokenizer.hpp"

using routenlp::WordPieceTokenizer;

namespace {

const WordPieceTokenizer& tok() {
  static const WordPieceTokenizer t =
      WordPieceTokenizer::from_vocab_file(std::string(RN_REPO_DATA_DIR) + "/vocab/bert-base-uncased-vocab.txt");
  return t;
}

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> texts = [] {
    std::vector<std::string> v;
    std::ifstream in(std::string(RN_TEST_DATA_DIR) + "/tokenizer/golden.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line);
      std::string src = j.at("src");
      if (src.rfind("tricky/", 0) == 0 || src.rfind("invalid_utf8/", 0) == 0 ||
          src.rfind("fuzz/", 0) == 0)
        continue;
      v.push_back(j.at("text").get<std::string>());
    }
    return v;
  }();
  return texts;
}

// Queries whose encoding has 60-68 ids ([CLS]/[SEP] included): the "~64-token query".
const std::vector<std::string>& queries64() {
  static const std::vector<std::string> q = [] {
    std::vector<std::string> v;
    for (const auto& t : corpus()) {
      size_t n = tok().encode(t, 100000).ids.size();
      if (n >= 60 && n <= 68) v.push_back(t);
    }
    if (v.empty()) v.push_back(corpus().front());
    return v;
  }();
  return q;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// Latency of single encode() calls on ~64-token queries; counters p50_us / p99_us.
void BM_EncodeQuery64(benchmark::State& state) {
  const auto& q = queries64();
  const auto& t = tok();
  std::vector<double> us;
  us.reserve(1 << 20);
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    const std::string& text = q[i++ % q.size()];
    auto t0 = std::chrono::steady_clock::now();
    auto e = t.encode(text, 512);
    auto t1 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(e.ids.data());
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    bytes += text.size();
  }
  state.counters["p50_us"] = percentile(us, 0.50);
  state.counters["p99_us"] = percentile(us, 0.99);
  state.counters["queries"] = static_cast<double>(q.size());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_EncodeQuery64)->MinTime(1.0);

// Throughput over the whole corpus, no truncation (bytes_per_second = MB/s per core).
void BM_EncodeCorpus(benchmark::State& state) {
  const auto& c = corpus();
  const auto& t = tok();
  size_t bytes = 0, ids = 0;
  for (const auto& s : c) bytes += s.size();
  for (auto _ : state) {
    for (const auto& s : c) {
      auto e = t.encode(s, SIZE_MAX);  // full Encoding, like the peer's encodeBatch
      ids += e.ids.size();
      benchmark::DoNotOptimize(e.ids.data());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes * state.iterations()));
  state.SetItemsProcessed(static_cast<int64_t>(c.size() * state.iterations()));
  state.counters["corpus_bytes"] = static_cast<double>(bytes);
  state.counters["ids_per_query"] =
      static_cast<double>(ids) / static_cast<double>(c.size() * state.iterations());
}
BENCHMARK(BM_EncodeCorpus)->Unit(benchmark::kMillisecond)->MinTime(2.0);

// encode_batch of 32 queries truncated/padded to 128 (router input shape).
void BM_EncodeBatch32(benchmark::State& state) {
  const auto& c = corpus();
  std::vector<std::string> batch(c.begin(), c.begin() + std::min<size_t>(32, c.size()));
  size_t bytes = 0;
  for (const auto& s : batch) bytes += s.size();
  for (auto _ : state) {
    auto b = tok().encode_batch(batch, 128, false);
    benchmark::DoNotOptimize(b.ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes * state.iterations()));
  state.SetItemsProcessed(static_cast<int64_t>(batch.size() * state.iterations()));
}
BENCHMARK(BM_EncodeBatch32)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
