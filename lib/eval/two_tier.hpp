// Two-tier routers in the RouteLLM protocol: a strong-call score per query, weak = the cheapest
// tier (0), strong = the reference tier, threshold = quantile(1 - strong share) of the calib
// scores (RouteLLM's calibrate_threshold), the strong share the least reaching the quality
// target on calib. Used by hybrid-llm, routellm-sw and routellm-bert. Internal header.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "eval/eval_internal.hpp"

namespace routenlp::detail {

class TwoTierScoreSystem : public System {
 public:
  void fit(const SystemContext& ctx) override;
  std::vector<Decision> decide(const SystemContext& ctx, const std::vector<size_t>& rows) override;
  size_t sweep_size() const override { return 21; }
  std::string sweep_label(size_t p) const override;
  std::vector<Decision> decide_at(const SystemContext& ctx, const std::vector<size_t>& rows,
                                  size_t p) override;
  std::string detail() const override;
  double strong_share() const { return pct_; }

 protected:
  // Fits the scorer on ctx.train (weak_ and strong_ are set before).
  virtual void fit_scorer(const SystemContext& ctx) = 0;
  // Strong-call scores of rows (higher = the strong tier is needed), one per row.
  virtual std::vector<double> strong_scores(const SystemContext& ctx,
                                            const std::vector<size_t>& rows) = 0;
  // What the scorer is, for detail().
  virtual std::string scorer_detail() const = 0;
  int weak_ = 0, strong_ = 1;

 private:
  std::vector<Decision> run(const SystemContext& ctx, const std::vector<size_t>& rows, double pct);
  std::unordered_map<size_t, double> score_;
  std::vector<double> calib_scores_;
  double pct_ = 0.5;
};

}  // namespace routenlp::detail
