// `routenlp eval`: replay a routing dataset through routing systems and report cost/quality.
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "progress_bar.hpp"
#include "routenlp/data/dataset.hpp"
#include "routenlp/error.hpp"
#include "routenlp/eval/eval.hpp"
#include "routenlp/pipeline/pipeline.hpp"
#include "routenlp/data/portfolio.hpp"

namespace routenlp::cli {

namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, ',')) {
    size_t a = cur.find_first_not_of(" \t"), b = cur.find_last_not_of(" \t");
    if (a != std::string::npos) out.push_back(cur.substr(a, b - a + 1));
  }
  return out;
}

struct EvalArgs {
  std::string data, config, systems, holdout, json_out, plot_out, router_config;
  std::string pipeline, split = "test", decision_log;
  int seeds = 1;
  bool sweep = false, stream = false, quiet = false, skip_bad = false;
  double quality_target = -1;
  StreamOptions so;
};

// Evaluates a saved pipeline on the test split (or every row): the same requests and engine
// that `routenlp serve` runs with that artifact.
int run_pipeline_eval(const EvalArgs& a) {
  auto p = std::make_shared<const Pipeline>(Pipeline::load(a.pipeline));
  if (!a.systems.empty() || a.seeds != 1 || a.stream)
    throw Error(Status::invalid_argument, "eval --pipeline: --systems, --seeds and --stream do not apply (the artifact is fitted)");
  PortfolioConfig config = p->portfolio();
  if (!a.config.empty()) {
    PortfolioConfig given = load_portfolio(a.config);
    std::vector<std::string> g, q;
    for (const auto& t : given.tiers) g.push_back(t.name);
    for (const auto& t : config.tiers) q.push_back(t.name);
    if (g != q) throw Error(Status::invalid_argument, a.config + ": its tiers differ from the pipeline's");
    config = given;  // the user's quality thresholds and prices judge the run
  }
  ReadOptions ro;
  ro.portfolio = &config;
  ro.skip_bad_lines = a.skip_bad;
  Dataset data = read_dataset(a.data, ro);
  EvalOptions eo;
  eo.seeds = 1;
  eo.every_row_test = a.split == "all";
  eo.holdout_tasks = split_list(a.holdout);
  if (a.quality_target >= 0) eo.quality_target = a.quality_target;
  std::vector<std::unique_ptr<System>> systems;
  systems.push_back(make_pipeline_system(p, a.decision_log));
  EvalReport rep = evaluate_systems(data, config, eo, {"pipeline"}, systems);
  std::printf("%s", rep.table().c_str());
  for (const auto& s : rep.systems)
    if (!s.detail.empty()) std::printf("  %-20s %s\n", s.system.c_str(), s.detail.c_str());
  if (!a.json_out.empty()) {
    write_report(rep, a.json_out);
    std::printf("report: %s\n", a.json_out.c_str());
  }
  if (!a.decision_log.empty()) std::printf("decision log: %s\n", a.decision_log.c_str());
  for (const auto& s : rep.systems)
    if (s.status != "ok") {
      std::fprintf(stderr, "routenlp eval: %s\n", s.status.c_str());
      return 1;
    }
  return 0;
}

}  // namespace

void register_eval(CLI::App& app, Action& action) {
  auto args = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand(
      "eval", "Replay a routing dataset through routing systems; report cost, quality, latency");
  cmd->add_option("--data", args->data, "Routing dataset (JSON Lines)")->required();
  cmd->add_option("--config", args->config,
                  "Portfolio config (YAML); required unless --pipeline (then it only re-judges)");
  cmd->add_option("--pipeline", args->pipeline,
                  "Evaluate this saved pipeline (routenlp fit --out) instead of fitting systems");
  cmd->add_option("--split", args->split, "With --pipeline: test (the test split) or all (every row)")
      ->check(CLI::IsMember({"test", "all"}))
      ->capture_default_str();
  cmd->add_option("--decision-log", args->decision_log,
                  "With --pipeline: write the engine's JSONL decision log of every replayed request");
  cmd->add_option("--systems", args->systems,
                  "Comma-separated systems (default: all): always:<tier>, random, oracle, "
                  "task-prior, routellm, routellm-sw, routellm-bert, hybrid-llm, hydra, dacr, "
                  "frugalgpt, automix, automix-threshold, automix-conf, routenlp-router, "
                  "routenlp-cascade, routenlp");
  cmd->add_option("--seeds", args->seeds, "Number of seeds (0..N-1)")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--holdout-tasks", args->holdout,
                  "Comma-separated tasks kept out of train+calib, reported as 'ood'");
  cmd->add_option("--json", args->json_out, "Write the JSON report here (atomically)");
  cmd->add_option("--plot", args->plot_out, "Write an SVG plot here (frontier, or stream windows)");
  cmd->add_flag("--sweep", args->sweep, "Trace every system's cost-quality frontier");
  cmd->add_option("--quality-target", args->quality_target,
                  "Quality-ratio target for every system (overrides the config's quality_target; puts routenlp* in quality-target mode)");
  cmd->add_option("--router-config", args->router_config,
                  "Neural router training config (JSON; default: library defaults)");
  cmd->add_flag("--skip-bad-lines", args->skip_bad, "Skip (and count) malformed dataset lines");
  cmd->add_flag("--quiet", args->quiet, "No progress bar");
  cmd->add_flag("--stream", args->stream,
                "Stream replay: online recalibration, static vs adaptive thresholds");
  cmd->add_option("--qps", args->so.qps, "Stream: mean arrival rate")->capture_default_str();
  cmd->add_option("--burst-factor", args->so.burst_factor, "Stream: rate multiplier in bursts")->capture_default_str();
  cmd->add_option("--burst-every", args->so.burst_every_s, "Stream: seconds between bursts")->capture_default_str();
  cmd->add_option("--burst-len", args->so.burst_len_s, "Stream: burst length (s)")->capture_default_str();
  cmd->add_option("--feedback-delay", args->so.feedback_delay_s, "Stream: label delay (s)")->capture_default_str();
  cmd->add_option("--feedback-rate", args->so.feedback_rate,
                  "Stream: share of answers that get a label")->capture_default_str();
  cmd->add_option("--window", args->so.window_s, "Stream: metric window (s)")->capture_default_str();
  cmd->add_option("--gamma", args->so.gamma, "Stream: ACI step size")->capture_default_str();
  cmd->callback([args, &action] {
    action = [args] {
      if (!args->pipeline.empty()) return run_pipeline_eval(*args);
      if (args->config.empty()) throw Error(Status::invalid_argument, "eval: --config is required (or --pipeline DIR)");
      PortfolioConfig config = load_portfolio(args->config);
      ReadOptions ro;
      ro.skip_bad_lines = args->skip_bad;
      ReadReport rr;
      Dataset data = read_dataset(args->data, ro, &rr);
      if (rr.skipped > 0) {
        std::fprintf(stderr, "routenlp eval: skipped %zu bad line(s) of %s\n", rr.skipped,
                     args->data.c_str());
        for (size_t i = 0; i < rr.skip_messages.size() && i < 10; ++i)
          std::fprintf(stderr, "  %s\n", rr.skip_messages[i].c_str());
      }
      ProgressBar bar(!args->quiet && ::isatty(2) != 0);
      if (args->stream) {
        args->so.holdout_tasks = split_list(args->holdout);
        StreamReport sr = replay_stream(data, config, args->so);
        std::printf("stream replay of %s: %zu requests, %zu labels (rate %.2f, delay %.0fs)\n",
                    args->data.c_str(), sr.n, sr.labels, args->so.feedback_rate,
                    args->so.feedback_delay_s);
        std::printf("%s\n", sr.detail.c_str());
        std::printf("%-22s %15s %15s\n", "", "static", "adaptive (ACI)");
        std::printf("%-22s %15.4f %15.4f   (target alpha %.3f)\n", "violation rate",
                    sr.violation_static, sr.violation_adaptive, sr.alpha);
        std::printf("%-22s %15.6f %15.6f\n", "cost per query (USD)", sr.cost_static,
                    sr.cost_adaptive);
        std::printf("\n%10s %6s %12s %12s %12s %12s\n", "t_end_s", "n", "viol_static",
                    "viol_adapt", "cost_static", "cost_adapt");
        for (const auto& w : sr.windows)
          std::printf("%10.0f %6zu %12.4f %12.4f %12.6f %12.6f\n", w.t_end_s, w.n,
                      w.violation_static, w.violation_adaptive, w.cost_static, w.cost_adaptive);
        if (!args->json_out.empty()) write_output_file(args->json_out, sr.to_json());
        if (!args->plot_out.empty()) write_output_file(args->plot_out, plot_stream_svg(sr));
        return 0;
      }
      EvalOptions eo;
      eo.systems = split_list(args->systems);
      eo.seeds = args->seeds;
      eo.holdout_tasks = split_list(args->holdout);
      eo.sweep = args->sweep || !args->plot_out.empty();
      if (args->quality_target >= 0) eo.quality_target = args->quality_target;
      eo.router_config = args->router_config;
      eo.progress = bar.callback();
      EvalReport rep = evaluate(data, config, eo);
      bar.finish();
      std::printf("%s", rep.table().c_str());
      for (const auto& s : rep.systems)
        if (s.status == "ok" && !s.detail.empty())
          std::printf("  %-20s %s\n", s.system.c_str(), s.detail.c_str());
      if (!args->json_out.empty()) {
        write_report(rep, args->json_out);
        std::printf("report: %s\n", args->json_out.c_str());
      }
      if (!args->plot_out.empty()) {
        write_output_file(args->plot_out, plot_frontier_svg(rep));
        std::printf("plot: %s\n", args->plot_out.c_str());
      }
      for (const auto& s : rep.systems)
        if (s.status.rfind("error", 0) == 0) return 1;
      return 0;
    };
  });
}

}  // namespace routenlp::cli
