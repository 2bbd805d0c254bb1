// `routenlp train --data FILE --config PORTFOLIO.yaml --out DIR`: train the neural router on the
// dataset's train split (calib is left to the calibrator), one checkpoint per seed, and report
// per-tier AUC / Brier on the test split (optionally against the baselines).
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "progress_bar.hpp"
#include "routenlp/data/dataset.hpp"
#include "routenlp/error.hpp"
#include "routenlp/data/portfolio.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/baselines.hpp"
#include "routenlp/router/neural.hpp"

namespace routenlp::cli {

namespace {

struct TrainArgs {
  std::string data, config, out, router_config, hf_dir, json_out;
  int seeds = 1;
  uint64_t seed = 0;
  int epochs = 0;
  int threads = 0;
  bool baselines = false;
  bool quiet = false;
};

// Temporary file + rename, so a failed run leaves no half-written report.
void write_text_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error(Status::io, "cannot write " + tmp);
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(Status::io, "cannot write " + path);
  }
}

nlohmann::json metrics_json(const std::vector<TierMetrics>& m) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& x : m)
    j.push_back({{"tier_name", x.tier}, {"n", x.n}, {"positive_rate", x.positive_rate},
                 {"auc", std::isnan(x.auc) ? nlohmann::json() : nlohmann::json(x.auc)},
                 {"brier", x.brier}});
  return j;
}

double mean_of(const std::vector<TierMetrics>& m, bool auc) {
  double s = 0;
  int n = 0;
  for (const auto& x : m) {
    double v = auc ? x.auc : x.brier;
    if (std::isnan(v)) continue;
    s += v;
    ++n;
  }
  return n ? s / n : std::nan("");
}

std::pair<double, double> mean_std(const std::vector<double>& v) {
  if (v.empty()) return {std::nan(""), std::nan("")};
  double m = 0;
  for (double x : v) m += x;
  m /= static_cast<double>(v.size());
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return {m, v.size() > 1 ? std::sqrt(s / static_cast<double>(v.size() - 1)) : 0.0};
}

void print_table(const std::string& who, const std::vector<TierMetrics>& m) {
  std::printf("  %-16s mean AUC %.4f  mean Brier %.4f\n", who.c_str(), mean_of(m, true),
              mean_of(m, false));
}

int run_train(const TrainArgs& a) {
  if (a.seeds < 1) throw Error(Status::invalid_argument, "--seeds must be >= 1");
  Dataset data = read_dataset(a.data);
  PortfolioConfig pf = load_portfolio(a.config);
  RouterTrainConfig cfg = a.router_config.empty() ? RouterTrainConfig{}
                                                  : RouterTrainConfig::load(a.router_config);
  if (!a.hf_dir.empty()) cfg.model.hf_dir = a.hf_dir;
  if (a.epochs > 0) cfg.epochs = a.epochs;
  if (a.threads > 0) cfg.threads = a.threads;
  auto test = make_labels(data, pf, Split::test);
  auto train = make_labels(data, pf, Split::train);
  if (!a.quiet)
    std::printf("router: %zu train / %zu test queries, %zu tiers, data %s\n", train.size(),
                test.size(), train.tiers.size(), a.data.c_str());

  nlohmann::json summary;
  summary["data"] = a.data;
  summary["config"] = a.config;
  summary["router_config"] = nlohmann::json::parse(cfg.to_json());
  summary["tiers"] = train.tiers;
  summary["seeds"] = nlohmann::json::array();
  std::map<std::string, std::vector<double>> mean_auc, mean_brier;
  std::map<std::string, std::map<std::string, std::vector<double>>> tier_auc, tier_brier;
  auto record = [&](const std::string& who, const std::vector<TierMetrics>& m) {
    mean_auc[who].push_back(mean_of(m, true));
    mean_brier[who].push_back(mean_of(m, false));
    for (const auto& x : m) {
      if (!std::isnan(x.auc)) tier_auc[who][x.tier].push_back(x.auc);
      tier_brier[who][x.tier].push_back(x.brier);
    }
  };
  std::vector<double> seconds;
  for (int s = 0; s < a.seeds; ++s) {
    cfg.seed = a.seed + static_cast<uint64_t>(s);
    std::string dir = a.seeds == 1 ? a.out : (std::filesystem::path(a.out) /
                                              ("seed-" + std::to_string(cfg.seed))).string();
    ProgressBar bar(!a.quiet && ::isatty(2) != 0);
    RouterTrainReport rep;
    auto router = NeuralRouter::train(data, pf, cfg, bar.callback(), &rep);
    bar.finish();
    router.save(dir);
    seconds.push_back(rep.train_seconds);
    nlohmann::json js;
    js["seed"] = cfg.seed;
    js["dir"] = dir;
    js["train_seconds"] = rep.train_seconds;
    js["epochs_run"] = rep.epochs_run;
    js["best_epoch"] = rep.best_epoch;
    js["best_val_loss"] = rep.best_val_loss;
    js["best_val_auc"] = rep.best_val_auc;
    auto m = evaluate_router(router, test);
    record("neural", m);
    js["test"]["neural"] = metrics_json(m);
    if (!a.quiet) {
      std::printf("seed %llu: %.1f s, %d epochs (best %d) -> %s\n",
                  static_cast<unsigned long long>(cfg.seed), rep.train_seconds, rep.epochs_run,
                  rep.best_epoch, dir.c_str());
      print_table("neural", m);
    }
    if (a.baselines) {
      std::vector<std::pair<std::string, std::unique_ptr<RouterModel>>> bl;
      bl.emplace_back("task-prior", make_task_prior_router(train));
      bl.emplace_back("tfidf-logreg", make_tfidf_logreg_router(train));
      KnnOptions ko;
      bl.emplace_back("knn-encoder", make_knn_router(train, ko, router.embedder()));
      MfOptions mo;
      mo.seed = cfg.seed;
      bl.emplace_back("mf", make_mf_router(train, mo));
      bl.emplace_back("random", make_random_router(train.tiers, cfg.seed));
      for (auto& [who, r] : bl) {
        auto bm = evaluate_router(*r, test);
        record(who, bm);
        js["test"][who] = metrics_json(bm);
        if (!a.quiet) print_table(who, bm);
      }
    }
    summary["seeds"].push_back(js);
  }
  nlohmann::json agg;
  for (const auto& [who, v] : mean_auc) {
    auto [am, as] = mean_std(v);
    auto [bm, bs] = mean_std(mean_brier[who]);
    nlohmann::json w{{"mean_auc", am}, {"mean_auc_std", as}, {"mean_brier", bm},
                     {"mean_brier_std", bs}};
    for (const auto& [tier, tv] : tier_auc[who]) {
      auto [m, sd] = mean_std(tv);
      w["per_tier"][tier]["auc"] = m;
      w["per_tier"][tier]["auc_std"] = sd;
    }
    for (const auto& [tier, tv] : tier_brier[who]) {
      auto [m, sd] = mean_std(tv);
      w["per_tier"][tier]["brier"] = m;
      w["per_tier"][tier]["brier_std"] = sd;
    }
    agg[who] = w;
  }
  auto [tm, ts] = mean_std(seconds);
  summary["train_seconds"] = tm;
  summary["train_seconds_std"] = ts;
  summary["summary"] = agg;
  if (!a.json_out.empty()) write_text_file_atomic(a.json_out, summary.dump(2) + "\n");
  if (!a.quiet && a.seeds > 1) {
    std::printf("over %d seeds (mean ± std): train %.1f ± %.1f s\n", a.seeds, tm, ts);
    for (auto it = agg.begin(); it != agg.end(); ++it) {
      const auto& w = it.value();
      std::printf("  %-16s AUC %.4f ± %.4f  Brier %.4f ± %.4f\n", it.key().c_str(),
                  w.at("mean_auc").get<double>(), w.at("mean_auc_std").get<double>(),
                  w.at("mean_brier").get<double>(), w.at("mean_brier_std").get<double>());
    }
  }
  return 0;
}

}  // namespace

void register_train(CLI::App& app, Action& action) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand(
      "train", "Train the neural router on a dataset's train split (checkpoint per seed)");
  cmd->add_option("--data", args->data, "routing dataset (JSONL)")->required();
  cmd->add_option("--config", args->config, "portfolio config (YAML)")->required();
  cmd->add_option("--out", args->out, "checkpoint directory (DIR/seed-K/ with --seeds > 1)")
      ->required();
  cmd->add_option("--router-config", args->router_config,
                  "router training config (JSON, e.g. data/configs/router-small.json)");
  cmd->add_option("--hf-dir", args->hf_dir, "start from a pretrained HF DistilBERT directory");
  cmd->add_option("--seeds", args->seeds, "number of seeds (default 1)");
  cmd->add_option("--seed", args->seed, "first seed (default 0)");
  cmd->add_option("--epochs", args->epochs, "override the config's epochs");
  cmd->add_option("--threads", args->threads, "libtorch intra-op threads while training");
  cmd->add_flag("--baselines", args->baselines,
                "also score task-prior, TF-IDF LR, kNN, MF and random routers on the test split");
  cmd->add_option("--json", args->json_out, "write per-seed and mean ± std metrics (JSON)");
  cmd->add_flag("--quiet", args->quiet, "no progress bar or tables");
  cmd->callback([&action, args] { action = [args] { return run_train(*args); }; });
}

}  // namespace routenlp::cli
