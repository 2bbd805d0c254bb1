// FrugalGPT-style answer scorer: logistic regression on hashed features of (query, tier, task,
// response) predicting whether a tier's answer is acceptable. Internal header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "routenlp/eval/eval.hpp"

namespace routenlp::detail {

class AnswerScorer {
 public:
  static constexpr uint32_t kDim = 1u << 18;
  // Fits on every (row, tier) of `rows` (label: acceptable). Deterministic for a seed.
  void fit(const SystemContext& ctx, const std::vector<size_t>& rows, uint64_t seed,
           int epochs = 3);
  // P(acceptable) of tier's answer for a row.
  double score(const SystemContext& ctx, size_t row, int tier) const;
  bool uses_responses() const { return responses_; }

 private:
  std::vector<uint32_t> features(const SystemContext& ctx, size_t row, int tier) const;
  std::vector<float> w_;
  double bias_ = 0;
  bool responses_ = false;
};

}  // namespace routenlp::detail
