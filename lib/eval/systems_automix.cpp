// automix: Aggarwal et al., "AutoMix: Automatically Mixing Language Models" (NeurIPS 2024).
// The small model answers; a few-shot self-verification scores its answer (the share of k = 8
// sampled verdicts that call it correct); a meta-verifier decides to accept the small model's
// answer or to escalate to the large model:
//   automix            POMDP meta-verifier: hidden state = (small answer acceptable, large answer
//                      acceptable), observation = the verification score in k + 1 = 9 levels,
//                      observation model and state prior estimated on calib; escalate when the
//                      belief's expected quality gain exceeds lambda times the large model's cost,
//                      lambda the cheapest reaching the quality target on calib.
//   automix-threshold  threshold meta-verifier: accept when the score >= a threshold chosen on
//                      calib (cheapest reaching the quality target).
// The score is the outcome's recorded `self_verification` (extra field, in [0,1]) when the
// small tier records it on every row, else a verifier proxy learned on train: the FrugalGPT
// answer scorer (hashed features of the query and, when recorded, the answer).
// Simplifications: docs/evaluation.md.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <unordered_map>

#include "eval/answer_scorer.hpp"
#include "eval/eval_internal.hpp"
#include "eval/seed_systems.hpp"
#include "routenlp/error.hpp"

namespace routenlp::detail {

// The outcome's recorded self-verification score (NaN when absent). Error(invalid_argument)
// naming the query when it is present but not a number in [0, 1].
double recorded_self_verification(const Query& q, const std::string& tier) {
  auto it = q.outcomes.find(tier);
  if (it == q.outcomes.end() || it->second.extra_json.empty())
    return std::numeric_limits<double>::quiet_NaN();
  auto j = nlohmann::json::parse(it->second.extra_json, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("self_verification"))
    return std::numeric_limits<double>::quiet_NaN();
  const auto& v = j["self_verification"];
  if (!v.is_number() || !(v.get<double>() >= 0.0 && v.get<double>() <= 1.0))
    throw Error(Status::invalid_argument, "query '" + q.id + "': tier '" + tier +
                                              "': self_verification must be a number in [0,1]");
  return v.get<double>();
}

// AutoMix's two-model POMDP, solved exactly: with one decision per query the optimal policy is
// the Bayes decision under the belief after the observation. obs[i] in [0, levels), states from
// (small ok, large ok); returns per observation level the expected quality gain of escalating,
// E[q_large - q_small | o], with add-one smoothing of the observation model.
std::vector<double> automix_pomdp_gain(const std::vector<int>& obs, const std::vector<int>& small_ok,
                                       const std::vector<int>& large_ok,
                                       const std::vector<double>& q_small,
                                       const std::vector<double>& q_large, int levels) {
  const size_t n = obs.size();
  if (small_ok.size() != n || large_ok.size() != n || q_small.size() != n || q_large.size() != n ||
      levels < 1)
    throw Error(Status::invalid_argument, "automix_pomdp_gain: inconsistent sizes");
  std::vector<double> count(4, 0.0), gain_sum(4, 0.0);
  std::vector<std::vector<double>> oc(4, std::vector<double>(size_t(levels), 1.0));  // add-one
  for (size_t i = 0; i < n; ++i) {
    int s = 2 * small_ok[i] + large_ok[i];
    if (obs[i] < 0 || obs[i] >= levels) throw Error(Status::internal, "automix: observation out of range");
    count[size_t(s)] += 1;
    gain_sum[size_t(s)] += q_large[i] - q_small[i];
    oc[size_t(s)][size_t(obs[i])] += 1;
  }
  std::vector<double> gain(size_t(levels), 0.0);
  for (int o = 0; o < levels; ++o) {
    double z = 0, g = 0;
    for (size_t s = 0; s < 4; ++s) {
      if (count[s] == 0) continue;
      double prior = count[s] / double(n);
      double like = oc[s][size_t(o)] / (count[s] + double(levels));
      z += prior * like;
      g += prior * like * gain_sum[s] / count[s];
    }
    gain[size_t(o)] = z > 0 ? g / z : 0.0;
  }
  return gain;
}

namespace {

constexpr int kLevels = 9;  // k = 8 verification samples: scores 0/8 .. 8/8

class AutoMixSystem : public System {
 public:
  explicit AutoMixSystem(bool pomdp) : pomdp_(pomdp) {}
  std::string name() const override { return pomdp_ ? "automix" : "automix-threshold"; }

  void fit(const SystemContext& ctx) override {
    const OutcomeTable& t = *ctx.table;
    weak_ = 0;
    strong_ = ctx.config->reference_tier_index();
    if (strong_ == weak_)
      throw Error(Status::invalid_argument, name() + ": the reference tier is the cheapest tier");
    const std::string& wname = ctx.config->tiers[size_t(weak_)].name;
    recorded_ = true;
    for (size_t r = 0; r < t.rows() && recorded_; ++r)
      if (std::isnan(recorded_self_verification(ctx.query(r), wname))) recorded_ = false;
    score_.clear();
    if (!recorded_) scorer_.fit(ctx, ctx.train, ctx.seed);
    // Escalation order of the observation levels: by posterior gain (POMDP) or by the score
    // itself (threshold); escalating the first j levels of that order is operating point j.
    std::vector<int> obs, sok, lok;
    std::vector<double> qs, ql;
    for (size_t r : ctx.calib) {
      obs.push_back(level(ctx, r));
      sok.push_back(t.ok(r, weak_));
      lok.push_back(t.ok(r, strong_));
      qs.push_back(t.q(r, weak_));
      ql.push_back(t.q(r, strong_));
    }
    order_.clear();
    for (int o = 0; o < kLevels; ++o) order_.push_back(o);  // threshold: lowest scores first
    gain_.assign(kLevels, 0.0);
    if (pomdp_) {
      gain_ = automix_pomdp_gain(obs, sok, lok, qs, ql, kLevels);
      std::stable_sort(order_.begin(), order_.end(),
                       [&](int a, int b) { return gain_[size_t(a)] > gain_[size_t(b)]; });
    }
    cost_.clear();
    qual_.clear();
    for (int j = 0; j <= kLevels; ++j) {
      Metrics m = compute_metrics(t, *ctx.config, ctx.calib, run(ctx, ctx.calib, j));
      cost_.push_back(m.cost_ratio);
      qual_.push_back(m.quality_ratio);
    }
    chosen_ = pick_operating_point(cost_, qual_, ctx.quality_target);
  }

  std::vector<Decision> decide(const SystemContext& ctx, const std::vector<size_t>& rows) override {
    return run(ctx, rows, chosen_);
  }
  size_t sweep_size() const override { return 21; }
  std::string sweep_label(size_t p) const override {
    return target_sweep_label(p);
  }
  std::vector<Decision> decide_at(const SystemContext& ctx, const std::vector<size_t>& rows,
                                  size_t p) override {
    return run(ctx, rows, pick_operating_point(cost_, qual_, target_sweep_value(p)));
  }
  std::string detail() const override {
    std::string s = std::string("self-verification: ") +
                    (recorded_ ? "recorded self_verification of the small tier"
                               : std::string("verifier proxy (answer scorer on query") +
                                     (scorer_.uses_responses() ? " + answer" : ", no answers recorded") +
                                     ", fitted on train)") +
                    "; 9 levels; tiers " + std::to_string(weak_) + " (small) -> " +
                    std::to_string(strong_) + " (large); meta-verifier: ";
    char b[64];
    if (pomdp_) {
      s += "POMDP (state = small/large acceptable; observation model on calib), escalated levels"
           " by expected gain:";
      for (size_t j = 0; j < chosen_; ++j) {
        std::snprintf(b, sizeof b, " %d/8 (%+.3f)", order_[j], gain_[size_t(order_[j])]);
        s += b;
      }
      if (chosen_ == 0) s += " none";
    } else {
      std::snprintf(b, sizeof b, "threshold, accept when score >= %d/8", int(chosen_));
      s += b;
    }
    std::snprintf(b, sizeof b, "; calib quality_ratio %.3f cost_ratio %.3f", qual_[chosen_],
                  cost_[chosen_]);
    return s + b;
  }

 private:
  int level(const SystemContext& ctx, size_t r) {
    auto it = score_.find(r);
    if (it != score_.end()) return it->second;
    double v = recorded_
                   ? recorded_self_verification(ctx.query(r), ctx.config->tiers[size_t(weak_)].name)
                   : scorer_.score(ctx, r, weak_);
    int o = int(std::lround(v * (kLevels - 1)));
    o = std::min(kLevels - 1, std::max(0, o));
    score_[r] = o;
    return o;
  }
  // Operating point j: escalate the observation levels order_[0..j).
  std::vector<Decision> run(const SystemContext& ctx, const std::vector<size_t>& rows, size_t j) {
    std::vector<char> esc(kLevels, 0);
    for (size_t i = 0; i < j && i < order_.size(); ++i) esc[size_t(order_[i])] = 1;
    std::vector<Decision> out;
    out.reserve(rows.size());
    for (size_t r : rows) {
      Decision d;
      d.called = {weak_};
      if (esc[size_t(level(ctx, r))]) {
        d.called.push_back(strong_);
        d.answer = strong_;
      } else {
        d.answer = weak_;
        d.accepted_early = true;
      }
      out.push_back(std::move(d));
    }
    return out;
  }

  bool pomdp_;
  int weak_ = 0, strong_ = 1;
  bool recorded_ = false;
  AnswerScorer scorer_;
  std::unordered_map<size_t, int> score_;
  std::vector<int> order_;
  std::vector<double> gain_, cost_, qual_;
  size_t chosen_ = 0;
};

}  // namespace

std::unique_ptr<System> make_automix_pomdp_system(const PortfolioConfig&) {
  return std::make_unique<AutoMixSystem>(true);
}
std::unique_ptr<System> make_automix_threshold_system(const PortfolioConfig&) {
  return std::make_unique<AutoMixSystem>(false);
}

}  // namespace routenlp::detail
