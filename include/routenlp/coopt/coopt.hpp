// Distillation–routing co-optimization: choose distillation data from failure clusters (or at
// random, the baseline), and the loop analyse -> distill -> retrain router -> recalibrate ->
// evaluate, which stops when the gain falls under a threshold. See docs/coopt.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "routenlp/error.hpp"
#include "routenlp/export.h"
#include "routenlp/coopt/failure_analyzer.hpp"

namespace routenlp {

// ---- distillation data ---------------------------------------------------------------------

// An unlabeled query the generator may pick (and have the teacher label).
struct PoolItem {
  std::string id;
  std::string query;
  std::string task;
};

// One training example for the cheaper tier: the query and the teacher's output for it.
struct DistillExample {
  std::string id;
  std::string query;
  std::string task;
  std::string target;      // the output of the tier that succeeded (the teacher)
  std::string source;      // "member" (a failure), "neighbour" (pool, near a failure), "random"
  int cluster = -1;        // failure cluster rank id; -1 for random
};

// Labels a query with the teacher tier's output; nullopt when it gives none (the item is skipped).
using TeacherFunction =
    std::function<std::optional<std::string>(const std::string& query, const std::string& task)>;

struct DistillOptions {
  size_t budget = 256;        // examples per selection (targeted and random alike)
  size_t top_clusters = 3;    // clusters drawn from, by cost-impact rank
  double member_share = 0.5;  // at most this share of a cluster's quota are its own members
  uint64_t seed = 42;
};

struct DistillSelection {
  std::string strategy;             // "targeted" or "random"
  std::vector<DistillExample> examples;
  size_t teacher_calls = 0;         // pool items the teacher was asked to label
  // JSON Lines, one example per line (written atomically).
  RN_API void save_jsonl(const std::string& path) const;
};

// Reads examples written by save_jsonl. Errors name file:line:field.
RN_API std::vector<DistillExample> load_distill_jsonl(const std::string& path);

class RN_API DistillationDataGenerator {
 public:
  // embed == nullptr -> TF-IDF fitted on the pool (and the failures). teacher labels pool items.
  DistillationDataGenerator(std::vector<PoolItem> pool, EmbedFunction embed, TeacherFunction teacher,
                            DistillOptions options = {});
  // Members of the top clusters (closest to their centroid first, teacher output from the trace)
  // plus their nearest unlabeled pool neighbours, round-robin over members; budget split over the
  // clusters in proportion to cost impact (size when no cost). `salt` varies the seed per call.
  DistillSelection targeted(const FailureReport& report, uint64_t salt = 0);
  // Uniform sample of the pool (without replacement), the same budget.
  DistillSelection random(uint64_t salt = 0);
  // Pool items already handed out (or whose id is a chosen member's) are not chosen again.
  void reset_used();
  const std::vector<PoolItem>& pool() const { return pool_; }
  const DistillOptions& options() const { return options_; }

 private:
  void ensure_pool_embedded(const std::vector<std::string>& extra);
  Embeddings embed_texts(const std::vector<std::string>& texts);
  std::vector<PoolItem> pool_;
  EmbedFunction embed_;
  TeacherFunction teacher_;
  DistillOptions options_;
  Embeddings pool_emb_;
  bool tfidf_ = false;
  EmbedFunction tfidf_fn_;
  std::vector<bool> used_;
  std::map<std::string, size_t> pool_index_;  // id -> pool position
};

// ---- the loop ------------------------------------------------------------------------------

// What an evaluation of the current (tier, routing) measures.
struct CoOptMetrics {
  double cost = 0.0;           // USD per query (or total; only ratios matter)
  double quality = 0.0;        // mean task quality in [0,1]
  double t1_acceptance = 0.0;  // share of queries the cheapest tier answered
  double cost_ratio = 0.0;     // cost / cost of always calling the reference tier
};

struct CoOptEvaluation {
  CoOptMetrics metrics;
  std::vector<TraceRecord> trace;  // what the failure analysis reads
};

struct CoOptIteration {
  int iteration = 0;           // 0 = baseline evaluation
  CoOptMetrics metrics;        // after this iteration (the kept state's when it failed)
  double gain = 0.0;           // relative cost reduction vs the previous iteration
  size_t failures = 0;
  size_t clusters = 0;
  size_t examples = 0;
  std::string status;          // baseline, ok, reverted, or <step>_failed
  std::string error;           // the failure message when a step failed
  double seconds = 0.0;
};

struct CoOptOptions {
  int max_iterations = 3;
  double min_gain = 0.01;          // stop when the relative cost reduction is below this
  double quality_tolerance = 0.0;  // a quality drop beyond this counts as no gain
  bool revert_regressions = true;  // a worse iteration (gain < 0) is undone before stopping
  std::string log_path;            // JSON Lines per-iteration log, rewritten atomically
};

// Per-iteration log as JSON Lines text.
RN_API std::string coopt_log_jsonl(const std::vector<CoOptIteration>& log);
// Writes coopt_log_jsonl atomically.
RN_API void save_coopt_log(const std::vector<CoOptIteration>& log, const std::string& path);

namespace detail {
template <class T, class = void>
struct nullable : std::false_type {};
template <class T>
struct nullable<T, std::void_t<decltype(std::declval<const T&>() == nullptr)>> : std::true_type {};
}  // namespace detail

// The loop over a host's tier type and routing state (router + calibration). Each step is a
// std::function; a step that throws (or a distill that returns null) is reported in the log and
// the previous tier and routing state stay in place. One thread per loop.
template <class Tier, class Routing>
class CoOptLoop {
 public:
  struct Steps {
    std::function<CoOptEvaluation(const Tier&, const Routing&)> evaluate;                 // required
    std::function<FailureReport(const std::vector<TraceRecord>&)> analyse;                // required
    std::function<std::vector<DistillExample>(const FailureReport&, int iteration)> select;  // required
    std::function<Tier(const Tier&, const std::vector<DistillExample>&)> distill;         // required
    std::function<Routing(const Tier&, const Routing&)> retrain_router;                   // optional
    std::function<Routing(const Tier&, const Routing&)> recalibrate;                      // optional
  };
  struct Result {
    Tier tier;
    Routing routing;
    std::vector<CoOptIteration> log;
    std::string stop_reason;  // max_iterations, min_gain, regression, <step>_failed, no_failures
  };

  CoOptLoop(Steps steps, CoOptOptions options) : steps_(std::move(steps)), options_(std::move(options)) {
    if (!steps_.evaluate || !steps_.analyse || !steps_.select || !steps_.distill)
      throw Error(Status::invalid_argument,
                  "CoOptLoop: evaluate, analyse, select and distill steps are required");
    if (options_.max_iterations < 0)
      throw Error(Status::invalid_argument, "CoOptLoop: max_iterations must be >= 0");
  }

  Result run(Tier tier, Routing routing) const {
    using clock = std::chrono::steady_clock;
    Result res{std::move(tier), std::move(routing), {}, "max_iterations"};
    auto t0 = clock::now();
    CoOptIteration base;
    base.iteration = 0;
    base.status = "baseline";
    CoOptEvaluation cur = steps_.evaluate(res.tier, res.routing);  // a failing baseline throws
    base.metrics = cur.metrics;
    base.seconds = seconds_since(t0);
    res.log.push_back(base);
    flush(res.log);
    for (int it = 1; it <= options_.max_iterations; ++it) {
      auto ts = clock::now();
      CoOptIteration row;
      row.iteration = it;
      row.metrics = cur.metrics;
      std::string step = "analyse";
      try {
        FailureReport rep = steps_.analyse(cur.trace);
        row.failures = rep.failures_total;
        row.clusters = rep.clusters.size();
        if (rep.failures_total == 0) {
          row.status = "no_failures";
          res.stop_reason = "no_failures";
          row.seconds = seconds_since(ts);
          res.log.push_back(row);
          break;
        }
        step = "select";
        std::vector<DistillExample> ex = steps_.select(rep, it);
        row.examples = ex.size();
        step = "distill";
        Tier next_tier = steps_.distill(res.tier, ex);
        if constexpr (detail::nullable<Tier>::value) {
          if (next_tier == nullptr) throw Error(Status::callback, "distill returned no tier");
        }
        Routing next_routing = res.routing;
        if (steps_.retrain_router) {
          step = "retrain_router";
          next_routing = steps_.retrain_router(next_tier, next_routing);
        }
        if (steps_.recalibrate) {
          step = "recalibrate";
          next_routing = steps_.recalibrate(next_tier, next_routing);
        }
        step = "evaluate";
        CoOptEvaluation ev = steps_.evaluate(next_tier, next_routing);
        double gain = relative_gain(cur.metrics, ev.metrics);
        row.gain = gain;
        row.metrics = ev.metrics;
        if (gain < 0.0 && options_.revert_regressions) {
          row.status = "reverted";
          row.metrics = cur.metrics;
          res.stop_reason = "regression";
          row.seconds = seconds_since(ts);
          res.log.push_back(row);
          break;
        }
        res.tier = std::move(next_tier);
        res.routing = std::move(next_routing);
        cur = std::move(ev);
        row.status = "ok";
        row.seconds = seconds_since(ts);
        res.log.push_back(row);
        flush(res.log);
        if (gain < options_.min_gain) {
          res.stop_reason = "min_gain";
          break;
        }
        continue;
      } catch (const std::exception& e) {
        row.status = step + "_failed";
        row.error = e.what();
      } catch (...) {
        row.status = step + "_failed";
        row.error = "unknown exception";
      }
      // A step failed: the previous tier and routing stay in place.
      row.metrics = cur.metrics;
      row.gain = 0.0;
      row.seconds = seconds_since(ts);
      res.log.push_back(row);
      res.stop_reason = row.status;
      break;
    }
    flush(res.log);
    return res;
  }

  const CoOptOptions& options() const { return options_; }

 private:
  static double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }
  double relative_gain(const CoOptMetrics& before, const CoOptMetrics& after) const {
    if (after.quality < before.quality - options_.quality_tolerance - 1e-12) return -1.0;
    if (before.cost <= 0.0) return 0.0;
    return (before.cost - after.cost) / before.cost;
  }
  void flush(const std::vector<CoOptIteration>& log) const {
    if (!options_.log_path.empty()) save_coopt_log(log, options_.log_path);
  }
  Steps steps_;
  CoOptOptions options_;
};

}  // namespace routenlp
