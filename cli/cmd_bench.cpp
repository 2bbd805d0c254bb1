// `routenlp bench`: router latency (p50/p99 per call) and throughput per batch size.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "routenlp/data/dataset.hpp"
#include "routenlp/error.hpp"
#include "routenlp/eval/eval.hpp"
#include "routenlp/data/portfolio.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/baselines.hpp"
#include "routenlp/router/neural.hpp"
#include "routenlp/encoder/runtime.hpp"

namespace routenlp::cli {

namespace {

struct BenchArgs {
  std::string router_dir, data, config, json_out;
  int batch_size = 1, num_samples = 100, warmup = 5;
  bool scaling = false, baseline = false;
};

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  double pos = p / 100.0 * double(v.size() - 1);
  size_t lo = size_t(pos), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
}

}  // namespace

void register_bench(CLI::App& app, Action& action) {
  auto a = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand("bench", "Router latency p50/p99 and throughput per batch size");
  cmd->add_option("--router", a->router_dir, "Trained neural router checkpoint directory");
  cmd->add_option("--data", a->data, "Routing dataset: query texts to time (and to fit a "
                                      "throwaway router when --router is not given)")
      ->capture_default_str();
  cmd->add_option("--config", a->config, "Portfolio config for --data")->capture_default_str();
  cmd->add_option("--batch-size", a->batch_size, "Queries per call")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("--num-samples", a->num_samples, "Timed calls per batch size")->capture_default_str()->check(CLI::Range(1, 1000000));
  cmd->add_option("--warmup", a->warmup, "Untimed calls first")->capture_default_str();
  cmd->add_flag("--scaling", a->scaling, "Batch sizes 1, 2, 4, ..., 64");
  cmd->add_flag("--baseline", a->baseline, "Time the TF-IDF logistic-regression baseline router");
  cmd->add_option("--json", a->json_out, "Write results as JSON");
  cmd->callback([a, &action] {
    action = [a] {
      if (a->data.empty() || a->config.empty())
        throw Error(Status::invalid_argument, "bench: --data and --config are required (query "
                                              "texts to time; see docs/evaluation.md)");
      PortfolioConfig config = load_portfolio(a->config);
      Dataset data = read_dataset(a->data);
      std::vector<RouteQuery> texts;
      for (size_t i : data.indices(Split::test)) texts.push_back({data.queries[i].query, data.queries[i].task});
      if (texts.empty())
        for (const auto& q : data.queries) texts.push_back({q.query, q.task});
      if (texts.empty()) throw Error(Status::invalid_argument, a->data + ": no queries");
      std::shared_ptr<const RouterModel> model;
      std::string what;
      if (a->baseline) {
        model = make_tfidf_logreg_router(make_labels(data, config, Split::train));
        what = "tfidf-logreg baseline router (trained on the train split of " + a->data + ")";
      } else if (!a->router_dir.empty()) {
        model = std::make_shared<NeuralRouter>(NeuralRouter::load(a->router_dir));
        what = "neural router loaded from " + a->router_dir;
      } else {
        // Weights do not change the arithmetic: a one-epoch router on a small train subset
        // times exactly like a fully trained one of the same architecture.
        Dataset small;
        small.source = data.source;
        for (size_t i : data.indices(Split::train)) {
          if (small.queries.size() >= 256) break;
          small.queries.push_back(data.queries[i]);
        }
        RouterTrainConfig tc;
        tc.epochs = 1;
        tc.patience = 1;
        model = std::make_shared<NeuralRouter>(NeuralRouter::train(small, config, tc));
        what = "neural router, default architecture (max_length " +
               std::to_string(tc.model.max_length) +
               "), throwaway 1-epoch weights (timing depends on the architecture only)";
      }
      auto info = runtime_info();
      std::printf("model:   %s\n", what.c_str());
      std::printf("runtime: torch intra-op threads %d, BLAS %s\n", info.torch_intra_op_threads,
                  info.blas_library.empty() ? "(unknown)" : info.blas_library.c_str());
      std::vector<int> sizes = a->scaling ? std::vector<int>{1, 2, 4, 8, 16, 32, 64}
                                          : std::vector<int>{a->batch_size};
      std::printf("%10s %10s %10s %10s %14s\n", "batch", "calls", "p50_ms", "p99_ms",
                  "queries_per_s");
      std::string json = "{\"model\": \"" + what + "\", \"results\": [";
      size_t cursor = 0;
      for (size_t si = 0; si < sizes.size(); ++si) {
        int bs = sizes[si];
        auto next_batch = [&] {
          std::vector<RouteQuery> b;
          for (int i = 0; i < bs; ++i) b.push_back(texts[cursor++ % texts.size()]);
          return b;
        };
        for (int i = 0; i < a->warmup; ++i) model->score(next_batch());
        std::vector<double> ms;
        double total = 0;
        for (int i = 0; i < a->num_samples; ++i) {
          auto b = next_batch();
          auto t0 = std::chrono::steady_clock::now();
          auto s = model->score(b);
          double dt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
          if (s.size() != b.size()) throw Error(Status::internal, "router returned a wrong count");
          ms.push_back(dt);
          total += dt;
        }
        double p50 = pct(ms, 50), p99 = pct(ms, 99);
        double qps = total > 0 ? double(bs) * double(a->num_samples) / (total / 1000.0) : 0;
        std::printf("%10d %10d %10.2f %10.2f %14.1f\n", bs, a->num_samples, p50, p99, qps);
        char buf[256];
        std::snprintf(buf, sizeof buf,
                      "%s{\"batch_size\": %d, \"calls\": %d, \"p50_ms\": %.4f, \"p99_ms\": %.4f, "
                      "\"queries_per_s\": %.2f}",
                      si ? ", " : "", bs, a->num_samples, p50, p99, qps);
        json += buf;
      }
      json += "]}\n";
      if (!a->json_out.empty()) write_output_file(a->json_out, json);
      return 0;
    };
  });
}

}  // namespace routenlp::cli
