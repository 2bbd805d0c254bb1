// Encoder forward benchmarks (issue 3): batch 1 latency at seq 32/64/128 and batch 32 x seq 64
// throughput, for EncoderConfig::small() and distilbert-base shapes, fp32 and int8 (CPU).
// Random weights (seeded). Environment:
//   ROUTENLP_BENCH_THREADS=N        libtorch intra-op threads and own-kernel threads (default:
//                                   the Encoder's own defaults)
//   ROUTENLP_BENCH_WEIGHTS_DIR=dir  also save the weights to dir/{small,base} (for the peer)
//   ROUTENLP_BENCH_DEVICE=cuda      run on CUDA (fp32), when available
//   ROUTENLP_BENCH_PREPACK=0        EncoderOptions::cpu_prepacked_weights = false (pack per call)
// Compare with the Python eager peer: bench/peers/run_encoder_compare.sh.
#include <algorithm>
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "routenlp/encoder/encoder.hpp"

using namespace routenlp;

namespace {

// mode: "fp32", "int8" or "bf16".
Encoder& get(const std::string& cfg, const std::string& mode) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Encoder>> cache;
  std::lock_guard<std::mutex> lock(mu);
  const std::string key = cfg + "/" + mode;
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  EncoderOptions o;
  if (const char* t = std::getenv("ROUTENLP_BENCH_THREADS")) o.intra_op_threads = o.cpu_kernel_threads = std::atoi(t);
  if (const char* d = std::getenv("ROUTENLP_BENCH_DEVICE")) o.device = d;
  if (const char* p = std::getenv("ROUTENLP_BENCH_PREPACK")) o.cpu_prepacked_weights = std::string(p) != "0";
  o.int8_dynamic = mode == "int8";
  if (mode == "bf16") o.dtype = EncoderDType::bf16;
  EncoderConfig c = cfg == "small" ? EncoderConfig::small() : EncoderConfig::distilbert_base();
  c.max_position_embeddings = std::max<int64_t>(c.max_position_embeddings, 128);  // the seq-128 shapes
  auto enc = std::make_unique<Encoder>(Encoder::random_init(c, 1234, o));
  if (mode == "fp32")
    if (const char* dir = std::getenv("ROUTENLP_BENCH_WEIGHTS_DIR")) enc->save_hf_dir(std::string(dir) + "/" + cfg);
  return *cache.emplace(key, std::move(enc)).first->second;
}

std::vector<int64_t> make_ids(size_t batch, size_t seq) {
  std::vector<int64_t> ids(batch * seq);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = 1000 + static_cast<int64_t>((i * 7919) % 20000);
  for (size_t b = 0; b < batch; ++b) {
    ids[b * seq] = 101;
    ids[b * seq + seq - 1] = 102;
  }
  return ids;
}

void run(benchmark::State& state, const std::string& cfg, const std::string& mode) {
  const size_t batch = static_cast<size_t>(state.range(0)), seq = static_cast<size_t>(state.range(1));
  Encoder* enc = nullptr;
  try {
    enc = &get(cfg, mode);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  auto ids = make_ids(batch, seq);
  enc->embed_ids(ids, {}, batch, seq);  // warm-up
  for (auto _ : state) {
    auto out = enc->embed_ids(ids, {}, batch, seq);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));  // sequences/s
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * batch * seq), benchmark::Counter::kIsRate);
}

void shapes(benchmark::internal::Benchmark* b) {
  b->Args({1, 32})->Args({1, 64})->Args({1, 128})->Args({32, 64});
  b->ArgNames({"batch", "seq"})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);
}

}  // namespace

BENCHMARK_CAPTURE(run, small_fp32, std::string("small"), std::string("fp32"))->Apply(shapes);
BENCHMARK_CAPTURE(run, small_int8, std::string("small"), std::string("int8"))->Apply(shapes);
BENCHMARK_CAPTURE(run, small_bf16, std::string("small"), std::string("bf16"))->Apply(shapes);
BENCHMARK_CAPTURE(run, base_fp32, std::string("base"), std::string("fp32"))->Apply(shapes);
BENCHMARK_CAPTURE(run, base_int8, std::string("base"), std::string("int8"))->Apply(shapes);
BENCHMARK_CAPTURE(run, base_bf16, std::string("base"), std::string("bf16"))->Apply(shapes);

BENCHMARK_MAIN();
