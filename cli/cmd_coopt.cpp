// `routenlp coopt run`: the co-optimization loop for a classification task (LocalClassifierTier
// as T1, a teacher with a recorded error rate above it; targeted or random distillation).
// `routenlp coopt analyze`: cluster and rank a cascade decision log's failures.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "commands.hpp"
#include "progress_bar.hpp"
#include "routenlp/coopt/classifier.hpp"
#include "routenlp/data/dataset.hpp"
#include "routenlp/coopt/failure_analyzer.hpp"
#include "routenlp/data/portfolio.hpp"

namespace routenlp::cli {

namespace {

struct RunArgs {
  std::string train, eval, out, t1_dir, text_column = "text", label_column = "category";
  ClassifierCoOptConfig cfg;
  int t1_epochs = 30, distill_epochs = 4, threads = 0;
  bool quiet = false;
};

struct AnalyzeArgs {
  std::string log, data, portfolio, out, distill_out;
  FailureAnalyzerOptions fa;
  size_t budget = 256;
  bool quiet = false;
};

int run_coopt(RunArgs a) {
  auto train = read_labeled_csv(a.train, a.text_column, a.label_column);
  auto eval = read_labeled_csv(a.eval, a.text_column, a.label_column);
  a.cfg.out_dir = a.out;
  a.cfg.t1_train.epochs = a.t1_epochs;
  a.cfg.t1_train.seed = a.cfg.seed;
  a.cfg.t1_train.threads = a.threads;
  a.cfg.distill_train = a.cfg.t1_train;
  a.cfg.distill_train.epochs = a.distill_epochs;
  std::shared_ptr<LocalClassifierTier> t1;
  if (!a.t1_dir.empty()) t1 = LocalClassifierTier::load(a.t1_dir);
  ProgressBar bar(!a.quiet && ::isatty(2) != 0);
  auto res = run_classifier_coopt(train, eval, a.cfg, t1, bar.callback());
  bar.finish();
  if (!a.quiet) {
    std::printf("strategy %s, budget %zu/iteration, teacher accuracy %.4f (error rate %.3f), stop: %s\n",
                a.cfg.strategy.c_str(), a.cfg.budget, res.teacher_accuracy, a.cfg.teacher_error,
                res.stop_reason.c_str());
    std::printf("%-4s %-10s %10s %10s %9s %8s %8s %9s %7s\n", "iter", "status", "cost/q", "cost_ratio",
                "quality", "T1_acc", "T1_alone", "failures", "examples");
    for (size_t i = 0; i < res.log.size(); ++i) {
      const auto& l = res.log[i];
      double t1acc = i < res.t1_accuracy.size() ? res.t1_accuracy[i] : NAN;
      std::printf("%-4d %-10s %10.6f %10.4f %9.4f %8.4f %8.4f %9zu %7zu\n", l.iteration, l.status.c_str(),
                  l.metrics.cost, l.metrics.cost_ratio, l.metrics.quality, l.metrics.t1_acceptance, t1acc,
                  l.failures, l.examples);
    }
  }
  if (!a.out.empty() && res.t1) res.t1->save(a.out + "/t1-final");
  return 0;
}

int run_analyze(const AnalyzeArgs& a) {
  Dataset data = read_dataset(a.data);
  PortfolioConfig pf;
  const PortfolioConfig* ppf = nullptr;
  if (!a.portfolio.empty()) {
    pf = load_portfolio(a.portfolio);
    ppf = &pf;
  }
  FailureAnalyzer fa(nullptr, "tfidf", a.fa);
  FailureReport rep = fa.analyze_log(a.log, data, ppf);
  rep.save(a.out);
  if (!a.quiet) {
    std::printf("%zu records, %zu failures, %zu clusters (embedding %s) -> %s\n", rep.records, rep.failures_total,
                rep.clusters.size(), rep.embedding.c_str(), a.out.c_str());
    for (const auto& c : rep.clusters) {
      std::string terms;
      for (size_t i = 0; i < c.terms.size() && i < 5; ++i) terms += (i ? ", " : "") + c.terms[i].first;
      std::printf("  #%d size %zu, cost impact $%.4f, terms: %s\n", c.id, c.size, c.cost_impact, terms.c_str());
    }
  }
  if (!a.distill_out.empty()) {
    // Members of the top clusters with the answers recorded for their final tier.
    std::vector<PoolItem> pool;
    for (const auto& q : data.queries) pool.push_back({q.id, q.query, q.task});
    TeacherFunction none = [](const std::string&, const std::string&) -> std::optional<std::string> {
      return std::nullopt;
    };
    DistillOptions o;
    o.budget = a.budget;
    o.member_share = 1.0;
    DistillationDataGenerator gen(pool, nullptr, none, o);
    gen.targeted(rep).save_jsonl(a.distill_out);
  }
  return 0;
}

}  // namespace

void register_coopt(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("coopt", "Distillation-routing co-optimization (failure clustering)");
  cmd->require_subcommand(1);

  auto ra = std::make_shared<RunArgs>();
  ra->cfg.loop.min_gain = 0.01;
  auto* run = cmd->add_subcommand("run", "Run the loop on a classification task: T1 = LocalClassifierTier, "
                                         "teacher = gold labels with a seeded error rate");
  run->add_option("--train", ra->train, "labelled CSV split into T1 rows / calibration / traffic / pool")->required();
  run->add_option("--eval", ra->eval, "labelled CSV for cost, quality and acceptance")->required();
  run->add_option("--out", ra->out, "output directory (log, failure reports, distillation JSONL, summary)");
  run->add_option("--t1", ra->t1_dir, "start from a saved LocalClassifierTier (default: train one)");
  run->add_option("--strategy", ra->cfg.strategy, "targeted (failure clusters) or random")
      ->check(CLI::IsMember({"targeted", "random"}));
  run->add_option("--budget", ra->cfg.budget, "distillation examples per iteration (default 400)");
  run->add_option("--iterations", ra->cfg.loop.max_iterations, "maximum iterations (default 3)");
  run->add_option("--min-gain", ra->cfg.loop.min_gain, "stop when the relative cost reduction is below (0.01)");
  run->add_option("--quality-tolerance", ra->cfg.loop.quality_tolerance, "quality drop counted as no gain (0)");
  run->add_flag("!--no-revert", ra->cfg.loop.revert_regressions, "keep an iteration that made things worse");
  run->add_option("--initial-train", ra->cfg.initial_train, "T1's initial training rows (1000)");
  run->add_option("--calibration", ra->cfg.calibration, "calibration rows (1500)");
  run->add_option("--traffic", ra->cfg.traffic, "traffic rows whose failures are clustered (3000)");
  run->add_option("--teacher-error", ra->cfg.teacher_error, "teacher label error rate (0.03)");
  run->add_option("--t1-cost", ra->cfg.t1_cost, "USD per T1 call (1e-5)");
  run->add_option("--teacher-cost", ra->cfg.teacher_cost, "USD per teacher call (8e-3)");
  run->add_option("--alpha", ra->cfg.alpha, "LTT target P(T1 wrong | accepted) (0.10)");
  run->add_option("--epsilon", ra->cfg.epsilon, "LTT error probability (0.10)");
  run->add_option("--top-clusters", ra->cfg.top_clusters, "failure clusters drawn from (8)");
  run->add_option("--k-max", ra->cfg.k_max, "largest k tried by the silhouette search (12)");
  run->add_option("--embedding", ra->cfg.embedding, "tfidf or t1 (the initial T1's encoder)")
      ->check(CLI::IsMember({"tfidf", "t1"}));
  run->add_option("--t1-epochs", ra->t1_epochs, "epochs training T1 from scratch (30)");
  run->add_option("--distill-epochs", ra->distill_epochs, "fine-tuning epochs per iteration (4)");
  run->add_option("--max-length", ra->cfg.t1.max_length, "tokens per query (32)");
  run->add_option("--seed", ra->cfg.seed, "seed (1)");
  run->add_option("--threads", ra->threads, "libtorch intra-op threads");
  run->add_option("--text-column", ra->text_column, "text column (text)");
  run->add_option("--label-column", ra->label_column, "label column (category)");
  run->add_flag("--quiet", ra->quiet, "no progress or table");
  run->callback([&action, ra] { action = [ra] { return run_coopt(*ra); }; });

  auto aa = std::make_shared<AnalyzeArgs>();
  auto* an = cmd->add_subcommand("analyze", "Cluster and rank the failures in a cascade decision log");
  an->add_option("--log", aa->log, "cascade decision log (JSONL)")->required();
  an->add_option("--data", aa->data, "routing dataset with the queries (JSONL)")->required();
  an->add_option("--portfolio", aa->portfolio, "portfolio config (YAML): marks accepted-but-bad answers");
  an->add_option("--out", aa->out, "failure report (JSON)")->required();
  an->add_option("--distill-out", aa->distill_out, "also write the top clusters' members as distillation JSONL");
  an->add_option("--budget", aa->budget, "examples in --distill-out (256)");
  an->add_option("--k-max", aa->fa.k_max, "largest k tried (12)");
  an->add_option("--seed", aa->fa.seed, "seed (42)");
  an->add_flag("--quiet", aa->quiet, "no summary");
  an->callback([&action, aa] { action = [aa] { return run_analyze(*aa); }; });
}

}  // namespace routenlp::cli
