// A learned acceptance score per tier: a calibrated P(acceptable) of a tier's answer from what
// the cascade knows once that tier has answered — its own confidence, the earlier tiers' answers
// (do they agree with this one?) and confidences, the router's p and the task. The cascade uses
// u = 1 - P(acceptable) instead of 1 - confidence for the tiers where the model validated better
// on held-out training folds. Method and features: docs/conformal.md "Acceptance score".
// Thread safety: a fitted model is immutable; p_acceptable() may be called from any thread.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "routenlp/export.h"

namespace routenlp {

// An answer the cascade already holds when it judges a later tier's answer.
struct EarlierAnswer {
  int tier = 0;
  std::string text;
  double confidence = std::numeric_limits<double>::quiet_NaN();
};

// Training rows: every tier's answer to each query (tiers cheapest first).
struct AcceptanceData {
  std::vector<std::string> tiers;
  std::vector<std::string> tasks;                 // per row
  std::vector<std::vector<double>> confidence;    // [row][tier]; NaN: none recorded
  std::vector<std::vector<std::string>> answers;  // [row][tier]; "" when not recorded
  std::vector<std::vector<uint8_t>> acceptable;   // [row][tier]
  std::vector<std::vector<double>> router_p;      // optional [row][tier]; NaN: unknown
  size_t rows() const { return tasks.size(); }
  void validate() const;  // throws Error(invalid_argument) naming the row and field
};

struct AcceptanceOptions {
  double l2 = 1.0;              // ridge penalty on the weights (not the intercept)
  size_t folds = 5;             // held-out folds that decide whether a tier uses the model
  double min_auc_gain = 0.002;  // the model must beat the raw confidence's AUC by this much
  uint64_t seed = 0xacce;
};

// Per tier: out-of-fold AUC of the raw confidence and of the model, and the verdict.
struct AcceptanceTierReport {
  int tier = 0;
  size_t n = 0;  // training examples (rows x start tiers)
  double auc_confidence = std::numeric_limits<double>::quiet_NaN();
  double auc_model = std::numeric_limits<double>::quiet_NaN();
  bool used = false;
};

class RN_API AcceptanceModel {
 public:
  // Logistic regression per non-final tier (Newton steps with a ridge penalty). Examples: each
  // row at tier k once per start tier s <= k, with the answers of tiers s..k-1 as the earlier
  // ones — the cascades a plan can run.
  static AcceptanceModel fit(const AcceptanceData& data, const AcceptanceOptions& options = {});

  // P(acceptable) of `tier`'s answer; NaN when the model does not score this tier (then the
  // raw confidence is the score). Tasks not seen in training use the average task.
  double p_acceptable(int tier, const std::string& task, double confidence, double router_p,
                      const std::string& answer, const std::vector<EarlierAnswer>& earlier) const;
  bool used(int tier) const;
  size_t tier_count() const { return tiers_.size(); }
  const std::vector<std::string>& tiers() const { return tiers_; }
  const std::vector<AcceptanceTierReport>& report() const { return report_; }

  std::string to_json() const;
  static AcceptanceModel from_json(const std::string& text, const std::string& source = "<string>");

 private:
  std::vector<std::string> tiers_, tasks_;
  std::vector<std::vector<double>> weights_;  // per tier (empty: not used)
  std::vector<AcceptanceTierReport> report_;
};

// The key two answers are compared on: the last number of a long answer (> 40 characters, e.g.
// worked math), else the lower-case words without punctuation and articles.
RN_API std::string answer_key(const std::string& text);

}  // namespace routenlp
