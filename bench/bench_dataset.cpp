// Data layer throughput: reading / writing routing datasets, importing, pricing, metrics.
// Runs on the bundled data (data/routing, data/upstream).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include "routenlp/data/dataset.hpp"
#include "routenlp/data/importers.hpp"
#include "routenlp/data/metrics.hpp"
#include "routenlp/data/portfolio.hpp"

namespace {

std::string repo(const char* rel) { return std::string(RN_REPO_DATA_DIR) + "/" + rel; }

// Streaming read of the 12,831-query MMLU file (~9 MB).
void BM_ReadDataset(benchmark::State& state) {
  const std::string path = repo("routing/routellm_mmlu.jsonl");
  size_t bytes = 0, n = 0;
  for (auto _ : state) {
    routenlp::DatasetReader r(path);
    routenlp::Query q;
    n = 0;
    bytes = 0;
    while (r.next(q)) {
      ++n;
      bytes += q.query.size();
    }
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
  state.counters["queries"] = static_cast<double>(n);
}
BENCHMARK(BM_ReadDataset)->Unit(benchmark::kMillisecond);

void BM_WriteDataset(benchmark::State& state) {
  auto d = routenlp::read_dataset(repo("routing/routellm_gsm8k.jsonl"));
  const std::string out = std::string(RN_BINARY_DIR) + "/bench_write.jsonl";
  for (auto _ : state) routenlp::write_dataset(d, out);
  std::remove(out.c_str());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * d.queries.size()));
}
BENCHMARK(BM_WriteDataset)->Unit(benchmark::kMillisecond);

void BM_ImportRouterBench(benchmark::State& state) {
  routenlp::ImportOptions opt;
  opt.include_responses = false;
  size_t n = 0;
  for (auto _ : state) n = routenlp::import_routerbench(repo("upstream/routerbench"), opt).queries.size();
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(BM_ImportRouterBench)->Unit(benchmark::kMillisecond);

void BM_OutcomeLatency(benchmark::State& state) {
  auto cfg = routenlp::load_portfolio(repo("configs/routellm.yaml"));
  routenlp::Outcome o;
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(routenlp::outcome_latency_ms(cfg, 1, o, std::to_string(i++)));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_OutcomeLatency);

void BM_RougeL(benchmark::State& state) {
  auto d = routenlp::read_dataset(repo("routing/routellm_gsm8k.jsonl"));
  const auto& a = *d.queries[0].outcomes.at("mixtral-8x7b").response;
  const auto& b = *d.queries[0].outcomes.at("gpt-4-1106").response;
  for (auto _ : state) benchmark::DoNotOptimize(routenlp::rouge_l(a, b).fmeasure);
}
BENCHMARK(BM_RougeL);

}  // namespace

BENCHMARK_MAIN();
