// The routing pipeline: one object that holds everything a routing decision depends on — the
// portfolio, the router, the start/skip rule, the calibrated thresholds and the acceptance
// score — fitted once (fit_pipeline, `routenlp fit`), saved as one artifact directory and run
// unchanged by `routenlp eval --pipeline`, `routenlp serve`, `routenlp route`, the C ABI and
// Python. Details: docs/pipeline.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "routenlp/calibration/acceptance.hpp"
#include "routenlp/cascade/result.hpp"
#include "routenlp/cascade/decision_log.hpp"
#include "routenlp/cascade/engine.hpp"
#include "routenlp/calibration/threshold_table.hpp"
#include "routenlp/calibration/calibrator.hpp"
#include "routenlp/data/dataset.hpp"
#include "routenlp/export.h"
#include "routenlp/data/portfolio.hpp"
#include "routenlp/progress.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/policies.hpp"
#include "routenlp/router/neural.hpp"
#include "routenlp/router/io.hpp"
#include "routenlp/tiers/tier.hpp"

namespace routenlp {

// Format of the artifact directory (manifest.json "format_version"). A loader accepts only
// this version: an artifact from another format is an error naming both versions.
inline constexpr int kPipelineFormatVersion = 1;

// manifest.json of an artifact directory.
struct PipelineManifest {
  int format_version = kPipelineFormatVersion;
  std::string library_version;     // of the library that wrote it
  std::string created_utc;         // ISO 8601
  std::string system;              // how it was fitted: "routenlp", "routenlp-cascade",
                                   // "calibrate" or "custom"
  std::string description;         // the fit's own account (router choice, calibration)
  std::string training_data_hash;  // FNV-1a 64 (hex) of the rows that fitted it ("" unknown)
  std::string router_kind;         // router_kind() of the router ("" = none)
  // Every file of the artifact except manifest.json: relative path and SHA-256 (hex).
  std::vector<std::pair<std::string, std::string>> files;
};

// RouteLLM's two-tier rule: the query goes to `strong` iff 1 - p[weak] >= threshold (the
// strong-call score), else to `weak`; the chosen tier answers (no escalation). The threshold
// comes from a target strong-call share (calibrate_strong_threshold).
struct StrongShareRule {
  int weak = 0;
  int strong = 1;
  double threshold = 0.5;
  double strong_share = 0.5;  // the share it was calibrated for (reported only)
};

// What a pipeline is made of. Only the portfolio is required.
struct PipelineParts {
  PortfolioConfig portfolio;
  std::shared_ptr<const RouterModel> router;               // null: no router
  std::shared_ptr<const ConformalCalibrator> calibration;  // null: every non-final tier escalates
  std::shared_ptr<const AcceptanceModel> acceptance;       // null: u = 1 - confidence / router p
  std::optional<StrongShareRule> strong_share;             // set: RouteLLM routing, no cascade
  std::string system = "custom";
  std::string description;
  std::string training_data_hash;
};

// Where one query goes, before any tier is called.
struct PipelineRoute {
  std::string request_id;
  RouterScores scores;     // p_acceptable empty when the pipeline has no router
  int start_tier = 0;      // the start rule: the task's plan start, raised by the router's skip
  int first_tier = 0;      // the first tier the engine calls (later tiers are skipped when their
                           // answer could not be accepted: delta = -inf, or router u > delta)
  int max_tier = -1;       // last tier the cascade may reach (-1: the last)
  double alpha = 0.0;      // the task's alpha (portfolio)
  std::string column;      // threshold column applied: task, "domain/*", "*" ("" none)
  std::string reason;      // one line
};

// Immutable once built; every method is const and thread-safe. Copies share the parts.
class RN_API Pipeline {
 public:
  // Validates: the router's and the calibration's tiers equal the portfolio's. Throws
  // Error(invalid_argument) naming the mismatch.
  explicit Pipeline(PipelineParts parts);

  // Artifact directory: manifest.json, portfolio.yaml, router/ (save_router), calibration.json,
  // acceptance.json, rule.json — the last four only when present. Written to a temporary
  // directory renamed into place; an existing `dir` is replaced only when `overwrite`.
  void save(const std::string& dir, bool overwrite = false) const;
  // Verifies the manifest (format version, every listed file present with its SHA-256, no
  // unlisted file) before reading anything else. A tampered, truncated or version-mismatched
  // artifact is Error(parse) naming the file.
  static Pipeline load(const std::string& dir);
  // Same, with a neural router (or a stack's neural bases) placed by `runtime` (device, dtype,
  // CUDA graphs: docs/router.md "Devices"); other router kinds run on the CPU.
  static Pipeline load(const std::string& dir, const RouterRuntime& runtime);

  const PortfolioConfig& portfolio() const;
  std::shared_ptr<const RouterModel> router() const;
  std::shared_ptr<const ConformalCalibrator> calibration() const;
  std::shared_ptr<const AcceptanceModel> acceptance() const;
  const std::optional<StrongShareRule>& strong_share() const;
  // The calibration's thresholds, or an escalate-all table without calibration.
  std::shared_ptr<const ThresholdTable> thresholds() const;
  // Written by save() / read by load(); for a pipeline never saved: files empty.
  const PipelineManifest& manifest() const;
  std::vector<std::string> tier_names() const;

  // The cascade request for a query: router p per tier, the task's alpha, the id (empty: the
  // engine assigns one; the id also picks the side of a randomised plan mixture).
  CascadeRequest request(const RouteQuery& query, const std::string& request_id = {}) const;
  // The same with scores the host already has (router p per tier; empty: no router scores).
  CascadeRequest request(const RouteQuery& query, const std::string& request_id,
                         const RouterScores& scores) const;
  // Batched router scoring; ids may be empty (all engine-assigned) or one per query.
  std::vector<CascadeRequest> requests(const std::vector<RouteQuery>& batch,
                                       const std::vector<std::string>& request_ids = {}) const;
  // Where the query goes (no tier called). Equal to the engine's first call for that request.
  PipelineRoute route(const RouteQuery& query, const std::string& request_id = {}) const;
  std::vector<PipelineRoute> route_batch(const std::vector<RouteQuery>& batch,
                                         const std::vector<std::string>& request_ids = {}) const;
  // Route for an already built request (scores taken from request.router_p).
  PipelineRoute route_request(const CascadeRequest& request) const;

  // A cascade engine over host tiers (one per portfolio tier, in order, same names) with this
  // pipeline's thresholds and acceptance score (options.acceptance is overwritten). With
  // options.online set, that recalibrator must have been built on thresholds().
  std::unique_ptr<CascadeEngine> make_engine(std::vector<std::shared_ptr<ModelTier>> tiers,
                                             CascadeOptions options = {}) const;

  struct Impl;  // internal
  explicit Pipeline(std::shared_ptr<const Impl> impl);

 private:
  std::shared_ptr<const Impl> impl_;
};

// ---- fitting ------------------------------------------------------------------------------

struct PipelineFitOptions {
  // "routenlp": router (task prior, TF-IDF LR, neural and their stack, chosen on held-out train
  // rows) + conformal cascade; "routenlp-cascade": the cascade alone (a router only where a
  // tier records no confidence). The same procedure as the systems of `routenlp eval`.
  std::string system = "routenlp";
  std::string router_config;  // path of a neural router training config JSON (empty: defaults)
  std::optional<double> quality_target;  // overrides the portfolio's quality_target
  uint64_t seed = 0;          // as `routenlp eval`'s seed 0 when 0
  ProgressCallback progress;
};

struct PipelineFitReport {
  size_t train_rows = 0, calib_rows = 0;
  double seconds = 0.0;
  std::string detail;  // the fit's account (also the manifest's description)
};

// Fits on the dataset's train split and calibrates on its calib split (test rows are never
// read), exactly as `routenlp eval` fits the same system at seed 0, so that evaluating the
// result on the test split reproduces eval's seed-0 numbers for that system. Errors: empty
// train/calib split, unknown system, a tier without outcomes.
RN_API Pipeline fit_pipeline(const Dataset& data, const PortfolioConfig& portfolio,
                             const PipelineFitOptions& options = {},
                             PipelineFitReport* report = nullptr);

// What `routenlp calibrate` does: keeps a given router (may be null: recorded confidences only)
// and calibrates thresholds on the dataset's calib split (plus train when u needs no model:
// recorded confidences only), in the portfolio's mode (guarantee, or quality_target when set).
// strong_share in (0,1): instead, RouteLLM's rule for the cheapest and the reference tier with
// that share of strong calls (conformal threshold over the calib rows' strong-call scores).
RN_API Pipeline calibrate_pipeline(const Dataset& data, const PortfolioConfig& portfolio,
                                   std::shared_ptr<const RouterModel> router,
                                   std::optional<double> strong_share = std::nullopt);

}  // namespace routenlp
