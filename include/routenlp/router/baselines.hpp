// Baseline routers (no libtorch needed): random, always-one-tier, task prior, TF-IDF logistic
// regression, kNN and RouteLLM-style matrix factorisation. All are immutable after construction.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "routenlp/export.h"
#include "routenlp/router/model.hpp"

namespace routenlp {

// Deterministic pseudo-random p in [0,1]: a hash of (seed, task, query, tier).
RN_API std::unique_ptr<RouterModel> make_random_router(std::vector<std::string> tiers,
                                                       uint64_t seed);
// p = 1 for tier k, 0 for the others.
RN_API std::unique_ptr<RouterModel> make_always_tier_router(std::vector<std::string> tiers,
                                                            int k);
// Empirical acceptability per (task, tier) on the training labels; an unseen task (or a tier
// never observed for the task) gets the overall rate of the tier.
RN_API std::unique_ptr<RouterModel> make_task_prior_router(const RoutingLabels& train);

// Text features for the classical baselines: lower-cased word unigrams (+ bigrams), TF-IDF
// with sublinear tf and L2 normalisation, built on the training texts.
struct TfidfOptions {
  size_t max_features = 20000;  // most frequent terms kept
  size_t min_df = 2;            // terms in fewer training documents are dropped
  bool bigrams = true;
};

struct LogRegOptions {
  TfidfOptions tfidf;
  double l2 = 1e-4;             // L2 penalty on weights (not on the bias)
  int iterations = 400;         // accelerated full-batch gradient steps
  bool task_features = true;    // one-hot task indicator features
};
// One L2-regularised logistic regression per tier on TF-IDF (+ task one-hot) features.
RN_API std::unique_ptr<RouterModel> make_tfidf_logreg_router(const RoutingLabels& train,
                                                             const LogRegOptions& options = {});

// Embeds a batch of queries (one vector per query). Must be thread-safe.
using TextEmbedder =
    std::function<std::vector<std::vector<float>>(const std::vector<RouteQuery>& batch)>;

struct KnnOptions {
  size_t k = 10;
  bool same_task_only = false;  // restrict neighbours to the query's task when it was seen
  TfidfOptions tfidf;           // used when no embedder is given
};
// p_k = share acceptable among the k most cosine-similar training queries that have an outcome
// for tier k. Uses `embedder` (e.g. NeuralRouter::embedder()) when given, else TF-IDF vectors;
// name() says which ("knn-encoder" / "knn-tfidf").
RN_API std::unique_ptr<RouterModel> make_knn_router(const RoutingLabels& train,
                                                    const KnnOptions& options = {},
                                                    TextEmbedder embedder = nullptr);

struct MfOptions {
  TfidfOptions tfidf;
  int dim = 32;              // latent size of queries and tiers
  int epochs = 150;          // full-batch Adam steps
  double learning_rate = 0.02;
  double l2 = 1e-4;
  double pairwise_weight = 1.0;  // weight of the pairwise win term (vs acceptability BCE)
  uint64_t seed = 0;
};
// RouteLLM-style matrix factorisation: s_k(q) = v_k . (P x_q + t_task) + b_k, where x_q are
// TF-IDF features, P a learned projection, t a task embedding and v_k a tier embedding;
// trained on per-tier acceptability (BCE) plus pairwise wins (tier a acceptable, b not).
RN_API std::unique_ptr<RouterModel> make_mf_router(const RoutingLabels& train,
                                                   const MfOptions& options = {});

}  // namespace routenlp
