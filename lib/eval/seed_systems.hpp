// Pieces of the seed systems (hybrid-llm, routellm-sw, automix) exposed for their unit tests.
// Internal header.
#pragma once

#include <string>
#include <vector>

#include "routenlp/data/dataset.hpp"

namespace routenlp::detail {

// Hybrid LLM's r_trans relaxation t* (systems_hybrid_llm.cpp).
double hybrid_llm_relaxation(const std::vector<double>& q_small, const std::vector<double>& q_large);
// P(a beats b) under the Bradley-Terry MLE of weighted wins w[a * K + b] (systems_routellm_extra.cpp).
double bradley_terry_win_rate(const std::vector<double>& w, size_t K, size_t a, size_t b);
// AutoMix's two-model POMDP: expected quality gain of escalating per observation level
// (systems_automix.cpp).
std::vector<double> automix_pomdp_gain(const std::vector<int>& obs, const std::vector<int>& small_ok,
                                       const std::vector<int>& large_ok,
                                       const std::vector<double>& q_small,
                                       const std::vector<double>& q_large, int levels);
// The outcome's recorded `self_verification` (NaN when absent; Error(invalid_argument) when not
// a number in [0,1]).
double recorded_self_verification(const Query& q, const std::string& tier);

}  // namespace routenlp::detail
