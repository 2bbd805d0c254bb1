// The co-optimization loop for a classification task end to end: T1 = LocalClassifierTier,
// upper tier = a teacher (gold labels with a recorded, seeded error rate), a two-tier cascade
// with a Learn-then-Test threshold on T1's confidence, failure clustering, targeted or random
// distillation with equal budgets. Drives `routenlp coopt run` and scripts/coopt-banking77.sh.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "routenlp/coopt/coopt.hpp"
#include "routenlp/export.h"
#include "routenlp/tiers/local_classifier_tier.hpp"
#include "routenlp/progress.hpp"

namespace routenlp {

struct LabeledText {
  std::string text;
  std::string label;
};

// Reads a CSV with a header naming `text_column` and `label_column` (RFC 4180 quoting; UTF-8).
// Errors name file:line:column.
RN_API std::vector<LabeledText> read_labeled_csv(const std::string& path,
                                                 const std::string& text_column = "text",
                                                 const std::string& label_column = "category");

struct ClassifierCoOptConfig {
  // Data split of the labelled training file (seeded shuffle): T1's initial training rows, the
  // calibration rows, the "traffic" rows the cascade serves (whose failures are clustered);
  // the rest is the unlabeled pool distillation draws neighbours / random examples from.
  size_t initial_train = 1000;
  size_t calibration = 1500;
  size_t traffic = 3000;
  // Teacher: gold label, replaced by a different label with this probability (seeded per text).
  double teacher_error = 0.03;
  // Prices per query (USD): T1 $0.01 / 1K, teacher $8 / 1K (like the seeds' T4).
  double t1_cost = 0.01 / 1000;
  double teacher_cost = 8.0 / 1000;
  // Cascade threshold: LTT on u = 1 - confidence, bad = T1 label != gold, P(bad|accepted) <= alpha.
  double alpha = 0.10;
  double epsilon = 0.10;
  std::string strategy = "targeted";  // "targeted" or "random"
  size_t budget = 400;                // distillation examples per iteration
  size_t top_clusters = 8;
  int k_min = 2, k_max = 12;
  std::string embedding = "tfidf";    // failure/pool embedding: "tfidf" or "t1" (T1's encoder)
  size_t tfidf_features = 1024;       // TF-IDF vocabulary (most frequent terms, min df 2)
  int restarts = 3;                   // k-means++ restarts per k
  CoOptOptions loop;                  // max_iterations (3), min_gain, log path
  LocalClassifierConfig t1;
  ClassifierTrainConfig t1_train;     // from-scratch training of T1
  ClassifierTrainConfig distill_train;  // fine-tuning per iteration (initial rows + all examples so far)
  uint64_t seed = 1;
  std::string out_dir;                // reports, distillation JSONL, final T1 (optional)
};

struct ClassifierCoOptResult {
  std::vector<CoOptIteration> log;
  std::string stop_reason;
  std::vector<double> thresholds;     // delta on u per evaluation (baseline first)
  std::vector<double> t1_accuracy;    // T1 alone on the evaluation rows, per evaluation
  double teacher_accuracy = 0.0;      // measured teacher accuracy on the evaluation rows
  size_t teacher_calls_distill = 0;   // pool items labelled by the teacher for distillation
  std::shared_ptr<LocalClassifierTier> t1;  // the final T1
};
RN_API std::string classifier_coopt_json(const ClassifierCoOptResult& r,
                                         const ClassifierCoOptConfig& c);

// Runs the experiment: `train` is split as described; `eval` measures cost/quality/acceptance.
// A pretrained T1 may be given (else trained from scratch on the initial rows).
RN_API ClassifierCoOptResult run_classifier_coopt(const std::vector<LabeledText>& train,
                                                  const std::vector<LabeledText>& eval,
                                                  const ClassifierCoOptConfig& config,
                                                  std::shared_ptr<LocalClassifierTier> t1 = nullptr,
                                                  ProgressCallback progress = nullptr);

}  // namespace routenlp
