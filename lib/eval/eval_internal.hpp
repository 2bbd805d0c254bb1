// Internals shared by the evaluator's files. Internal header.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "routenlp/cascade/result.hpp"
#include "routenlp/calibration/calibrator.hpp"
#include "routenlp/eval/eval.hpp"
#include "routenlp/pipeline/pipeline.hpp"

namespace routenlp::detail {

// Percentile with linear interpolation between order statistics (numpy's default).
double percentile(std::vector<double> v, double p);
// splitmix64 step: deterministic seeds derived from a base and a salt.
uint64_t mix_seed(uint64_t base, uint64_t salt);
uint64_t hash_string(const std::string& s);
// Effective quality-ratio target: override, else the config's quality_target, else 1 - alpha.
double effective_quality_target(const PortfolioConfig& config, const std::optional<double>& over);

// Mean quality / total cost of always calling `tier` on rows.
double mean_quality(const OutcomeTable& t, const std::vector<size_t>& rows, int tier);
double total_cost(const OutcomeTable& t, const std::vector<size_t>& rows, int tier);

// Factories of the built-in systems (systems_*.cpp).
std::unique_ptr<System> make_always_system(const PortfolioConfig& config, int tier);
std::unique_ptr<System> make_random_system(const PortfolioConfig& config);
std::unique_ptr<System> make_oracle_system(const PortfolioConfig& config);
std::unique_ptr<System> make_task_prior_system(const PortfolioConfig& config);
std::unique_ptr<System> make_routellm_system(const PortfolioConfig& config);
std::unique_ptr<System> make_frugalgpt_system(const PortfolioConfig& config);
std::unique_ptr<System> make_automix_conf_system(const PortfolioConfig& config);
std::unique_ptr<System> make_routenlp_router_system(const PortfolioConfig& config);
std::unique_ptr<System> make_routenlp_cascade_system(const PortfolioConfig& config);
std::unique_ptr<System> make_routenlp_full_system(const PortfolioConfig& config);
// Seed systems in their own files (systems_hybrid_llm.cpp, systems_automix.cpp,
// systems_routellm_extra.cpp, systems_hydra.cpp, systems_dacr.cpp).
std::unique_ptr<System> make_hybrid_llm_system(const PortfolioConfig& config);
std::unique_ptr<System> make_automix_pomdp_system(const PortfolioConfig& config);
std::unique_ptr<System> make_automix_threshold_system(const PortfolioConfig& config);
std::unique_ptr<System> make_routellm_sw_system(const PortfolioConfig& config);
std::unique_ptr<System> make_routellm_bert_system(const PortfolioConfig& config);
std::unique_ptr<System> make_hydra_system(const PortfolioConfig& config);
std::unique_ptr<System> make_dacr_system(const PortfolioConfig& config);

// The stream replay's arrival process: the next arrival after t, given a unit-rate exponential
// draw (Poisson at qps, times burst_factor inside bursts).
inline double stream_next_arrival(double t, const StreamOptions& opt, double unit_exp) {
  bool burst = std::fmod(t, opt.burst_every_s) < opt.burst_len_s;
  return t + unit_exp / (opt.qps * (burst ? opt.burst_factor : 1.0));
}

// The quality-target sweep of the cost-optimised cascades (frugalgpt, automix*): 21 targets
// .80, .81, ..., 1.00, each re-picked on calib.
inline double target_sweep_value(size_t p) { return 0.80 + 0.01 * double(p); }
inline std::string target_sweep_label(size_t p) {
  return "quality_target=" + std::to_string(target_sweep_value(p)).substr(0, 4);
}

// Decision of a single routed call.
inline Decision single_call(int tier, double router_ms = 0.0) {
  Decision d;
  d.called = {tier};
  d.answer = tier;
  d.router_ms = router_ms;
  return d;
}

// Dataset holding only the given rows, with split set (train/calib) explicitly; used to hand a
// seed's partition to trainers that read Dataset splits.
Dataset partition_dataset(const SystemContext& ctx);

// Among operating points (cost, quality) pick the cheapest whose quality >= target; when none
// reaches it, the one with the highest quality (ties: cheaper). Returns its index.
size_t pick_operating_point(const std::vector<double>& cost, const std::vector<double>& quality,
                            double target);

// The Decision of a replayed cascade run (tiers called in order, the answering tier, an early
// accept before the last of `tiers`). Error(internal) naming the request when it gave no answer.
Decision decision_of_replay(const CascadeResult& result, int tiers);

// Calibration options from the portfolio, the one place its targets reach the calibrator:
// guarantee mode calibrates its alpha and every per-task alpha; quality-target mode its target,
// allocation and per-task targets. `over` (a sweep point) replaces the alpha or the target, and
// per-task values are then left out. Also sets the reference tier.
CalibrationOptions portfolio_calibration_options(const PortfolioConfig& config, bool quality_mode,
                                                 std::optional<double> over = std::nullopt);

// The fitted routenlp / routenlp-cascade system's pipeline parts (Error(invalid_argument) for
// any other system). ctx: the context it was fitted with.
PipelineParts fitted_pipeline_parts(const System& system, const SystemContext& ctx);

}  // namespace routenlp::detail
