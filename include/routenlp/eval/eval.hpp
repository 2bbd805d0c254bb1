// Offline evaluation: replay a routing dataset (recorded outcomes per tier) through routing
// systems and report cost, quality, latency and guarantee metrics. Format of the report:
// docs/evaluation.md ("Evaluation report" of docs/dataset-format.md).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "routenlp/data/dataset.hpp"
#include "routenlp/export.h"
#include "routenlp/data/portfolio.hpp"
#include "routenlp/progress.hpp"

namespace routenlp {

class Pipeline;

// Recorded outcomes of the evaluated queries as dense [query][tier] arrays (tier order of the
// config). A query enters the table only if every config tier has an outcome for it.
struct OutcomeTable {
  size_t tiers = 0;
  std::vector<size_t> query;        // row -> index into Dataset::queries
  std::vector<double> quality;      // [row * tiers + tier]
  std::vector<double> cost;         // USD (recorded, else priced from tokens)
  std::vector<double> latency_ms;   // recorded, else the portfolio's latency model
  std::vector<double> confidence;   // NaN where not recorded
  std::vector<uint8_t> acceptable;  // quality >= the task's threshold
  size_t dropped = 0;               // queries skipped because a tier had no outcome

  size_t rows() const { return query.size(); }
  double q(size_t row, int tier) const { return quality[row * tiers + size_t(tier)]; }
  double c(size_t row, int tier) const { return cost[row * tiers + size_t(tier)]; }
  double lat(size_t row, int tier) const { return latency_ms[row * tiers + size_t(tier)]; }
  double conf(size_t row, int tier) const { return confidence[row * tiers + size_t(tier)]; }
  bool ok(size_t row, int tier) const { return acceptable[row * tiers + size_t(tier)] != 0; }
};

// Builds the table. Throws Error(invalid_argument) when the dataset names a tier the config
// lacks or a config tier has no outcome anywhere in the dataset.
RN_API OutcomeTable build_outcome_table(const Dataset& data, const PortfolioConfig& config);

// What a system did for one query.
struct Decision {
  std::vector<int> called;      // tiers called, in call order (sequential)
  int answer = -1;              // tier whose answer is returned; must be in `called`
  bool accepted_early = false;  // a cascade accepted this answer before its last tier
  double router_ms = 0.0;       // measured router time for this query (0: not measured)
};

// Everything a system may look at while fitting and deciding. Rows index `table`.
struct SystemContext {
  const Dataset* data = nullptr;
  const PortfolioConfig* config = nullptr;
  const OutcomeTable* table = nullptr;
  std::vector<size_t> train;   // rows to fit on
  std::vector<size_t> calib;   // rows to calibrate on
  uint64_t seed = 0;
  double quality_target = 0.97;  // effective quality-ratio target (see docs/evaluation.md)
  std::string router_config;     // neural router training config JSON (empty: defaults)
  ProgressCallback progress;     // may be empty
  const Query& query(size_t row) const { return data->queries[table->query[row]]; }
};

// A routing system under evaluation. One thread per object.
class RN_API System {
 public:
  virtual ~System();
  virtual std::string name() const = 0;
  // Empty when the system can run on this data; otherwise why not (e.g. "unsupported:
  // dataset has no confidence"). Reported in the system's entry instead of numbers.
  virtual std::string support(const SystemContext& ctx) const;
  // Fit on ctx.train, calibrate on ctx.calib.
  virtual void fit(const SystemContext& ctx) = 0;
  // Decide for each row (one Decision per row, same order).
  virtual std::vector<Decision> decide(const SystemContext& ctx,
                                       const std::vector<size_t>& rows) = 0;
  // Cost-quality frontier: number of operating points (0 = none) and the decisions at one.
  // Operating points are ordered from cheapest to most expensive.
  virtual size_t sweep_size() const;
  virtual std::vector<Decision> decide_at(const SystemContext& ctx,
                                          const std::vector<size_t>& rows, size_t point);
  virtual std::string sweep_label(size_t point) const;
  // Describes the model/rule actually used (reported as "detail").
  virtual std::string detail() const;
};

// Names accepted by make_system: always:<tier>, random, oracle, task-prior, routellm,
// frugalgpt, automix, routenlp-router, routenlp-cascade, routenlp, and the seed systems
// routellm-sw, routellm-bert, hybrid-llm, hydra, dacr, automix-threshold, automix-conf
// (docs/evaluation.md).
RN_API std::vector<std::string> system_names(const PortfolioConfig& config);
// Throws Error(invalid_argument) for an unknown name or a tier the config lacks.
RN_API std::unique_ptr<System> make_system(const std::string& name,
                                           const PortfolioConfig& config);

// Aggregate metrics of one run (or the mean over seeds). Optional fields are absent when they do
// not apply (e.g. accepted_bad_rate for a system that accepts nothing early).
struct Metrics {
  size_t n = 0;
  double quality = 0, cost_usd = 0, quality_ratio = 0, cost_ratio = 0;
  double latency_p50 = 0, latency_p99 = 0;
  std::optional<double> sla_violation_rate;
  std::optional<double> accepted_bad_rate;
  size_t accepted_early = 0;
  double acceptable_rate = 0;  // share of returned answers that are acceptable
  std::map<std::string, double> tier_share;  // share of queries answered by each tier
  std::map<std::string, double> call_share;  // share of queries that called each tier
};

struct TaskMetrics {
  size_t n = 0;
  double quality = 0, cost_usd = 0, quality_ratio = 0, cost_ratio = 0;
};

struct SweepPoint {
  std::string label;
  double quality_ratio = 0, cost_ratio = 0, strong_share = 0, accepted_bad_rate = -1;
};

// One system's result: means over seeds with standard deviations (sample sd; 0 for one seed).
struct SystemReport {
  std::string system;
  std::string status = "ok";  // "ok", "unsupported: ...", "unavailable: ..."
  std::string detail;
  Metrics mean, sd;
  std::optional<double> apgr, apgr_sd;                // two-tier setups with a sweep
  std::map<std::string, double> cpt, cpt_sd;          // "50", "80"
  std::map<std::string, TaskMetrics> per_task;        // seed mean
  std::optional<Metrics> ood;                         // holdout tasks (mean over seeds)
  std::map<std::string, TaskMetrics> ood_per_task;
  std::vector<SweepPoint> sweep;                      // seed 0 frontier (--sweep or two-tier)
  double fit_seconds = 0, decide_seconds = 0;
  // Judged by evaluate() against EvalReport::quality_target (docs/evaluation.md, "Meeting the
  // target").
  std::vector<double> seed_quality_ratio, seed_cost_ratio;  // one per seed run
  int seeds_met = 0;         // seeds whose quality_ratio >= target - target_tolerance
  bool met_target = false;   // mean quality_ratio >= target - target_tolerance
  std::optional<double> cost_at_target;  // least cost ratio where the sweep reaches the target
  std::optional<double> frontier_area;   // area under the best-quality-at-cost step curve
};

struct EvalOptions {
  std::vector<std::string> systems;        // empty = all names of system_names()
  int seeds = 1;                           // seeds 0..seeds-1
  std::vector<std::string> holdout_tasks;  // kept out of train+calib; reported as "ood"
  bool sweep = false;                      // trace every system's frontier
  std::optional<double> quality_target;    // overrides the config's quality_target (all systems)
  std::string router_config;               // neural router training config JSON (empty: defaults)
  // Every query is a test query, whatever its split (a fitted pipeline evaluated on new data):
  // systems must not need train or calib rows. Only with seeds = 1.
  bool every_row_test = false;
  ProgressCallback progress;
};

struct EvalReport {
  std::string dataset;
  std::string config;
  std::string reference_tier;
  std::vector<std::string> tiers;
  std::vector<int> seeds;
  size_t n = 0;         // test queries evaluated (in-distribution)
  size_t n_ood = 0;     // holdout-task queries evaluated
  size_t dropped = 0;   // queries without an outcome for every tier
  double quality_target = 0;
  std::vector<std::string> holdout_tasks;
  std::vector<SystemReport> systems;
  // Absolute slack on quality ratios when judging whether a system met quality_target.
  double target_tolerance = 0.005;

  // The report as JSON text (schema: docs/evaluation.md).
  RN_API std::string to_json() const;
  // A fixed-width table for terminals.
  RN_API std::string table() const;
};

// Runs every requested system over `seeds` seeds. Seed 0 uses the dataset's splits; seed s > 0
// re-partitions train+calib at random (same sizes); the test split never changes.
RN_API EvalReport evaluate(const Dataset& data, const PortfolioConfig& config,
                           const EvalOptions& options);
// Same with caller-made systems (e.g. a host's own router).
RN_API EvalReport evaluate_systems(const Dataset& data, const PortfolioConfig& config,
                                   const EvalOptions& options,
                                   const std::vector<std::string>& names,
                                   const std::vector<std::unique_ptr<System>>& systems);

// A fitted pipeline (routenlp/pipeline/pipeline.hpp) as a system: fit() does nothing, decide() replays
// each row through the pipeline's own requests and engine over ReplayTiers of the dataset
// (request id = query id), so its decisions are what `routenlp serve` with the same artifact
// decides. decision_log: a JSONL decision log of every replayed request ("" = none).
RN_API std::unique_ptr<System> make_pipeline_system(std::shared_ptr<const Pipeline> pipeline,
                                                    std::string decision_log = {});

// Metrics of a fixed set of decisions (row order of `rows`), against always-reference.
RN_API Metrics compute_metrics(const OutcomeTable& table, const PortfolioConfig& config,
                               const std::vector<size_t>& rows,
                               const std::vector<Decision>& decisions);

// RouteLLM-style two-tier curve metrics over points (strong-call share, performance-gap
// recovered). APGR: trapezoid area of the PGR curve on [0,1] after adding (0,0) and (1,1);
// CPT(x): least strong-call share whose interpolated PGR reaches x (1 when never).
RN_API double apgr(std::vector<std::pair<double, double>> share_pgr);
RN_API double cpt(std::vector<std::pair<double, double>> share_pgr, double x);

// Atomically writes report.to_json() to path.
RN_API void write_report(const EvalReport& report, const std::string& path);
// Atomically writes any evaluation output (SVG, stream JSON) to path.
RN_API void write_output_file(const std::string& path, const std::string& text);

// ---- Stream replay (online recalibration under late, partial feedback) ----
struct StreamOptions {
  double qps = 5.0;               // mean arrival rate
  double burst_factor = 4.0;      // rate multiplier inside bursts
  double burst_every_s = 120.0;   // a burst starts every this many seconds ...
  double burst_len_s = 20.0;      // ... and lasts this long
  double feedback_delay_s = 30.0; // labels arrive this late
  double feedback_rate = 0.3;     // share of answers that ever get a label
  double window_s = 60.0;         // metric window
  double gamma = 0.005;           // ACI step
  uint64_t seed = 0;
  std::vector<std::string> holdout_tasks;  // drift: these tasks join the stream halfway
};

struct StreamWindow {
  double t_end_s = 0;
  size_t n = 0;
  double violation_static = 0, violation_adaptive = 0;  // accepted_bad_rate in the window
  double cost_static = 0, cost_adaptive = 0;            // USD per query in the window
  double alpha_adaptive = 0;                            // the tracker's alpha at window end
};

struct StreamReport {
  std::string status = "ok";  // or "unavailable: ..." / "unsupported: ..."
  std::string detail;
  double alpha = 0;
  size_t n = 0, labels = 0;
  double violation_static = 0, violation_adaptive = 0, cost_static = 0, cost_adaptive = 0;
  std::vector<StreamWindow> windows;
  RN_API std::string to_json() const;
};

RN_API StreamReport replay_stream(const Dataset& data, const PortfolioConfig& config,
                                  const StreamOptions& options);

// ---- SVG plots ----
// Quality ratio vs cost ratio, one curve per system's sweep (a dot when it has no sweep).
RN_API std::string plot_frontier_svg(const EvalReport& report);
// Violation rate (and cost) per window, static vs adaptive thresholds.
RN_API std::string plot_stream_svg(const StreamReport& report);

}  // namespace routenlp
