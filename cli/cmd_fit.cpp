// `routenlp fit --data FILE --config PORTFOLIO.yaml --out DIR`: the whole pipeline — router
// selection and training on the train split, conformal calibration on the calib split — saved as
// one artifact directory that `routenlp eval --pipeline`, `route --pipeline` and `serve` load.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "commands.hpp"
#include "progress_bar.hpp"
#include "routenlp/data/dataset.hpp"
#include "routenlp/error.hpp"
#include "routenlp/pipeline/pipeline.hpp"
#include "routenlp/data/portfolio.hpp"

namespace routenlp::cli {

namespace {

struct FitArgs {
  std::string data, config, out, system = "routenlp", router_config;
  double quality_target = -1;
  bool overwrite = false, quiet = false;
};

int run_fit(const FitArgs& a) {
  PortfolioConfig portfolio = load_portfolio(a.config);
  ReadOptions ro;
  ro.portfolio = &portfolio;
  Dataset data = read_dataset(a.data, ro);
  PipelineFitOptions fo;
  fo.system = a.system;
  fo.router_config = a.router_config;
  if (a.quality_target >= 0) fo.quality_target = a.quality_target;
  ProgressBar bar(!a.quiet && ::isatty(2) != 0);
  fo.progress = bar.callback();
  PipelineFitReport rep;
  Pipeline p = fit_pipeline(data, portfolio, fo, &rep);
  bar.finish();
  p.save(a.out, a.overwrite);
  std::printf("fitted %s on %zu train + %zu calib rows in %.1f s\n", a.system.c_str(), rep.train_rows,
              rep.calib_rows, rep.seconds);
  std::printf("%s\n", rep.detail.c_str());
  std::printf("pipeline: %s\n", a.out.c_str());
  return 0;
}

}  // namespace

void register_fit(CLI::App& app, Action& action) {
  auto args = std::make_shared<FitArgs>();
  auto* cmd = app.add_subcommand(
      "fit", "Fit the whole routing pipeline (router + calibrated cascade) and save it (docs/pipeline.md)");
  cmd->add_option("--data", args->data, "routing dataset (JSONL) with train and calib splits")->required();
  cmd->add_option("--config", args->config, "portfolio config (YAML)")->required();
  cmd->add_option("--out", args->out, "artifact directory to write")->required();
  cmd->add_option("--system", args->system,
                  "routenlp (router + cascade) or routenlp-cascade (cascade on confidences)")
      ->check(CLI::IsMember({"routenlp", "routenlp-cascade"}))
      ->capture_default_str();
  cmd->add_option("--router-config", args->router_config,
                  "neural router training config (JSON; default: library defaults)");
  cmd->add_option("--quality-target", args->quality_target,
                  "quality-target mode with this target (overrides the portfolio)");
  cmd->add_flag("--overwrite", args->overwrite, "replace an existing artifact directory");
  cmd->add_flag("--quiet", args->quiet, "no progress bar");
  cmd->callback([&action, args] { action = [args] { return run_fit(*args); }; });
}

}  // namespace routenlp::cli
