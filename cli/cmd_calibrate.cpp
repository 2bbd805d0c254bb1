// `routenlp calibrate --data FILE --config PORTFOLIO.yaml --out DIR [--router DIR]
// [--strong-share P]`: thresholds only, on the dataset's calib split, for a given router (or
// recorded confidences alone); or RouteLLM's strong-share rule. Saved as a pipeline artifact.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "commands.hpp"
#include "routenlp/data/dataset.hpp"
#include "routenlp/error.hpp"
#include "routenlp/pipeline/pipeline.hpp"
#include "routenlp/data/portfolio.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/io.hpp"

namespace routenlp::cli {

namespace {

struct CalibrateArgs {
  std::string data, config, out, router;
  double strong_share = -1;
  bool overwrite = false;
};

int run_calibrate(const CalibrateArgs& a) {
  PortfolioConfig portfolio = load_portfolio(a.config);
  ReadOptions ro;
  ro.portfolio = &portfolio;
  Dataset data = read_dataset(a.data, ro);
  std::shared_ptr<const RouterModel> router;
  if (!a.router.empty()) router = load_router(a.router);
  std::optional<double> share;
  if (a.strong_share >= 0) share = a.strong_share;
  Pipeline p = calibrate_pipeline(data, portfolio, router, share);
  p.save(a.out, a.overwrite);
  std::printf("%s\npipeline: %s\n", p.manifest().description.c_str(), a.out.c_str());
  return 0;
}

}  // namespace

void register_calibrate(CLI::App& app, Action& action) {
  auto args = std::make_shared<CalibrateArgs>();
  auto* cmd = app.add_subcommand(
      "calibrate", "Calibrate cascade thresholds (or a strong-share rule) for a router; save a pipeline");
  cmd->add_option("--data", args->data, "routing dataset (JSONL) with a calib split")->required();
  cmd->add_option("--config", args->config, "portfolio config (YAML)")->required();
  cmd->add_option("--out", args->out, "artifact directory to write")->required();
  cmd->add_option("--router", args->router,
                  "saved router directory (routenlp train --out); none: recorded confidences only");
  cmd->add_option("--strong-share", args->strong_share,
                  "RouteLLM rule: send this share of calib queries to the reference tier (0..1)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--overwrite", args->overwrite, "replace an existing artifact directory");
  cmd->callback([&action, args] { action = [args] { return run_calibrate(*args); }; });
}

}  // namespace routenlp::cli
