// Router precision check (issue 17): the same trained neural router loaded in fp32, int8
// (RouterRuntime::int8_dynamic) and bf16, scored on a dataset's test split. Reports per-tier AUC
// of each precision, how far the scores and the pooled [CLS] vectors move from fp32, and the time
// per scoring call at batch 1 and 32 with the precisions interleaved round-robin (order rotated
// each round; medians). Not a Google Benchmark: one run prints one table.
//
// Usage: router_precision DATA.jsonl PORTFOLIO.yaml [ROUTER_DIR] [ROUNDS]
//   Without ROUTER_DIR a router is trained on DATA's train split with the default
//   RouterTrainConfig (seed 0) and saved to a temporary directory. ROUNDS: timing rounds (5).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "routenlp/data/dataset.hpp"
#include "routenlp/data/portfolio.hpp"
#include "routenlp/error.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/neural.hpp"

using namespace routenlp;

namespace {

struct Variant {
  std::string name;
  RouterRuntime runtime;
};

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d += double(a[i]) * b[i];
    na += double(a[i]) * a[i];
    nb += double(b[i]) * b[i];
  }
  return d / std::sqrt(na * nb);
}

// Mean ms per score() call over `calls` batches of `bs` queries taken in order from qs.
double time_scoring(const NeuralRouter& r, const std::vector<RouteQuery>& qs, size_t bs, size_t calls) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  for (size_t c = 0; c < calls; ++c) {
    std::vector<RouteQuery> batch;
    for (size_t i = 0; i < bs; ++i) batch.push_back(qs[(c * bs + i) % qs.size()]);
    auto s = r.score(batch);
    if (s.size() != bs) std::abort();
  }
  return std::chrono::duration<double, std::milli>(clock::now() - t0).count() / double(calls);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s DATA.jsonl PORTFOLIO.yaml [ROUTER_DIR] [ROUNDS]\n", argv[0]);
    return 2;
  }
  try {
    const auto pf = load_portfolio(argv[2]);
    ReadOptions ro;
    ro.portfolio = &pf;
    const Dataset data = read_dataset(argv[1], ro);
    std::string dir = argc > 3 ? argv[3] : "";
    const int rounds = argc > 4 ? std::max(1, std::atoi(argv[4])) : 5;
    if (dir.empty()) {
      dir = (std::filesystem::temp_directory_path() /
             ("routenlp-router-precision-" + std::filesystem::path(argv[1]).stem().string()))
                .string();
      RouterTrainReport rep;
      const auto t0 = std::chrono::steady_clock::now();
      NeuralRouter::train(data, pf, RouterTrainConfig{}, nullptr, &rep).save(dir);
      std::printf("# trained on %zu rows (%d epochs, best val AUC %.4f) in %.0f s, saved to %s\n",
                  rep.train_rows, rep.epochs_run, rep.best_val_auc,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), dir.c_str());
    }
    std::vector<Variant> vs(3);
    vs[0].name = "fp32";
    vs[1].name = "int8";
    vs[1].runtime.int8_dynamic = true;
    vs[2].name = "bf16";
    vs[2].runtime.dtype = EncoderDType::bf16;
    std::vector<NeuralRouter> rs;
    for (const auto& v : vs) rs.push_back(NeuralRouter::load(dir, v.runtime));

    const RoutingLabels te = make_labels(data, pf, Split::test);
    std::printf("# %s: %zu test queries, %zu tiers\n", argv[1], te.queries.size(), te.tiers.size());
    std::vector<std::vector<TierMetrics>> m;
    std::vector<std::vector<RouterScores>> sc;
    std::vector<std::vector<std::vector<float>>> emb;
    for (const auto& r : rs) {
      m.push_back(evaluate_router(r, te));
      sc.push_back(r.score(te.queries));
      emb.push_back(r.embed(te.queries));
    }
    std::printf("\n| tier | n | AUC fp32 | AUC int8 | AUC bf16 |\n|---|---|---|---|---|\n");
    std::vector<double> mean(vs.size(), 0.0);
    size_t counted = 0;
    for (size_t k = 0; k < m[0].size(); ++k) {
      std::printf("| %s | %zu | %.4f | %.4f | %.4f |\n", m[0][k].tier.c_str(), m[0][k].n, m[0][k].auc, m[1][k].auc,
                  m[2][k].auc);
      if (std::isnan(m[0][k].auc)) continue;
      ++counted;
      for (size_t v = 0; v < vs.size(); ++v) mean[v] += m[v][k].auc;
    }
    for (double& x : mean) x /= double(std::max<size_t>(counted, 1));
    std::printf("| **mean** | | %.4f | %.4f | %.4f |\n", mean[0], mean[1], mean[2]);

    std::printf("\n| precision | mean AUC - fp32 | max abs dp | mean abs dp | p>=.5 flips | 1 - [CLS] cosine: mean | max |\n"
                "|---|---|---|---|---|---|---|\n");
    for (size_t v = 1; v < vs.size(); ++v) {
      double worst = 0, sum = 0, cmin = 1, csum = 0;
      size_t cells = 0, flips = 0;
      for (size_t i = 0; i < te.queries.size(); ++i) {
        for (size_t k = 0; k < sc[0][i].p_acceptable.size(); ++k) {
          const double a = sc[0][i].p_acceptable[k], b = sc[v][i].p_acceptable[k];
          worst = std::max(worst, std::fabs(a - b));
          sum += std::fabs(a - b);
          flips += (a >= 0.5) != (b >= 0.5);
          ++cells;
        }
        const double c = cosine(emb[0][i], emb[v][i]);
        cmin = std::min(cmin, c);
        csum += c;
      }
      std::printf("| %s | %+.5f | %.2e | %.2e | %zu of %zu | %.2e | %.2e |\n", vs[v].name.c_str(), mean[v] - mean[0],
                  worst, sum / double(cells), flips, cells, 1.0 - csum / double(te.queries.size()), 1.0 - cmin);
    }

    // Timing: every round runs each precision once per batch size, order rotated per round.
    std::printf("\n| batch | fp32 ms | int8 ms | bf16 ms | int8 / fp32 | bf16 / fp32 |\n|---|---|---|---|---|---|\n");
    for (size_t bs : {size_t{1}, size_t{32}}) {
      const size_t calls = bs == 1 ? 200 : 20;
      std::vector<std::vector<double>> ms(vs.size());
      std::vector<double> r8, r16;
      for (size_t v = 0; v < vs.size(); ++v) time_scoring(rs[v], te.queries, bs, 3);  // warm-up
      for (int r = 0; r < rounds; ++r) {
        std::vector<double> t(vs.size());
        for (size_t j = 0; j < vs.size(); ++j) {
          const size_t v = (j + size_t(r)) % vs.size();
          t[v] = time_scoring(rs[v], te.queries, bs, calls);
          ms[v].push_back(t[v]);
        }
        r8.push_back(t[1] / t[0]);
        r16.push_back(t[2] / t[0]);
      }
      std::printf("| %zu | %.3f | %.3f | %.3f | %.2f | %.2f |\n", bs, median(ms[0]), median(ms[1]), median(ms[2]),
                  median(r8), median(r16));
    }
    std::printf("\nms per score() call (tokenizing included): median over %d rounds; ratios: median of per-round "
                "ratios. Load average at the end: ",
                rounds);
    if (FILE* f = std::fopen("/proc/loadavg", "r")) {
      char buf[64] = {0};
      if (std::fgets(buf, sizeof buf, f)) std::printf("%s", buf);
      std::fclose(f);
    }
    std::printf("\n");
  } catch (const Error& e) {
    std::fprintf(stderr, "router_precision: %s\n", e.what());
    return 1;
  }
  return 0;
}
