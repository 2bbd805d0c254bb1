// Failure analysis for the co-optimization loop: collect the queries a cheaper tier failed on
// (it escalated them, or accepted a bad answer), embed them, cluster them with k-means++ (k by
// silhouette), rank the clusters by what handling them at the cheaper tier would save and
// describe each one. See docs/coopt.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "routenlp/data/dataset.hpp"
#include "routenlp/export.h"
#include "routenlp/text/tokenizer.hpp"
#include "routenlp/data/portfolio.hpp"

namespace routenlp {

// Row-major embeddings: one vector per text, all of the same dimension.
using Embeddings = std::vector<std::vector<float>>;
// Maps texts to embeddings (e.g. Encoder::embed, or a TfidfEmbedder). Must return one row per text.
using EmbedFunction = std::function<Embeddings(const std::vector<std::string>&)>;

class Encoder;
// EmbedFunction over a DistilBERT encoder (e.g. the router's): Encoder::embed rows.
RN_API EmbedFunction make_encoder_embed_function(std::shared_ptr<const Encoder> encoder,
                                                 size_t max_length = 128);

// ---- clustering ----------------------------------------------------------------------------

struct KMeansOptions {
  int k = 8;
  int restarts = 5;        // independent k-means++ seedings; the lowest inertia wins
  int max_iterations = 100;
  double tolerance = 1e-6; // stop when centroids move less than this (squared, summed)
  uint64_t seed = 42;
};

struct KMeansResult {
  std::vector<int> labels;                       // cluster of each point, 0..k-1
  std::vector<std::vector<double>> centroids;    // k rows
  double inertia = 0.0;                          // sum of squared distances to the centroid
  int iterations = 0;                            // of the winning restart
};

// k-means++ (Arthur & Vassilvitskii 2007) + Lloyd iterations; deterministic for a seed.
// Throws Error(invalid_argument) on empty/ragged/non-finite input or k outside [1, n].
RN_API KMeansResult kmeans(const Embeddings& points, const KMeansOptions& options);

// Mean silhouette coefficient (Rousseeuw 1987) over points; singletons score 0. Uses at most
// max_points points (a seeded subsample) to bound the O(n^2) cost; 0 = all.
RN_API double silhouette_score(const Embeddings& points, const std::vector<int>& labels,
                               size_t max_points = 2000, uint64_t seed = 42);

struct KSelection {
  int best_k = 0;
  std::vector<int> ks;              // the candidates tried
  std::vector<double> silhouettes;  // silhouette of each candidate
  KMeansResult best;                // clustering at best_k
};

// Runs kmeans for k in [k_min, k_max] (clipped to n-1) and keeps the best silhouette (computed
// on a seeded subsample of at most 1000 points).
RN_API KSelection select_k(const Embeddings& points, int k_min, int k_max,
                           const KMeansOptions& options);

// Adjusted Rand index (Hubert & Arabie 1985) between two labelings of the same points.
RN_API double adjusted_rand_index(const std::vector<int>& a, const std::vector<int>& b);

// ---- TF-IDF (fallback embedding and cluster terms) -----------------------------------------

// Smoothed TF-IDF over word unigrams (tokenize_words, routenlp/text/tokenizer.hpp): idf =
// ln((1+N)/(1+df)) + 1, sublinear tf, L2-normalised rows; the same TF-IDF as the router
// baselines'. The fallback embedding when no encoder is available. fit() then transform().
class RN_API TfidfEmbedder {
 public:
  struct Options {
    size_t max_features = 4096;  // most frequent terms kept
    size_t min_df = 1;           // terms in fewer documents are dropped
    bool drop_stopwords = true;  // a small built-in English stop list
  };
  TfidfEmbedder();
  explicit TfidfEmbedder(Options options);
  void fit(const std::vector<std::string>& corpus);
  Embeddings transform(const std::vector<std::string>& texts) const;
  // Terms in column order (most frequent first). Empty before fit().
  const std::vector<std::string>& vocabulary() const { return vocab_; }
  // An EmbedFunction that calls transform() on a copy of this fitted embedder.
  EmbedFunction as_function() const;

 private:
  struct Model;  // the fitted vectorizer (immutable, shared by copies)
  Options options_;
  std::vector<std::string> vocab_;
  std::shared_ptr<const Model> model_;
};

// ---- failure analysis ----------------------------------------------------------------------

// One query as the cascade (or an offline evaluation) handled it.
struct TraceRecord {
  std::string query_id;
  std::string query;
  std::string task;
  int tier = 0;                  // the cheaper tier this record is about (tried first)
  std::string tier_name;
  bool accepted = false;         // that tier's answer was accepted
  std::optional<bool> acceptable;// that tier's answer met the quality bar (when known)
  double tier_cost = 0.0;        // USD paid to that tier
  double total_cost = 0.0;       // USD paid for the query in all
  int final_tier = 0;            // tier whose answer was returned
  std::string final_tier_name;
  std::string final_response;    // the returned answer (teacher output when final_tier > tier)
  std::optional<bool> final_acceptable;
};

// A failure: the cheaper tier escalated the query, or accepted an answer that was not acceptable.
RN_API bool is_failure(const TraceRecord& r);

// TraceRecords from a cascade decision log (CascadeEngine's JSON Lines, read with
// read_decision_log): one per request, the first tier tried being the cheaper tier. The log holds
// no query text: it comes from `queries` by request id (a request absent there is an error
// naming the log line). When `portfolio` is given, the recorded outcomes of the first and final
// tier say whether their answers were acceptable, and the final tier's recorded response is the
// teacher output.
RN_API std::vector<TraceRecord> trace_from_decision_log(const std::string& log_path,
                                                        const Dataset& queries,
                                                        const PortfolioConfig* portfolio = nullptr);

struct ClusterSummary {
  int id = 0;                                   // rank order (0 = largest cost impact)
  size_t size = 0;
  size_t escalated = 0;                         // rejected by the cheaper tier
  size_t accepted_bad = 0;                      // accepted but not acceptable
  double cost_impact = 0.0;                     // sum over members of total_cost - tier_cost
  std::vector<std::pair<std::string, size_t>> task_mix;  // task -> members, largest first
  std::vector<std::pair<std::string, double>> terms;     // distinguishing terms with scores
  std::vector<std::string> examples;            // queries closest to the centroid
  std::vector<size_t> members;                  // indices into FailureReport::failures
  std::vector<double> centroid;
};

struct FailureReport {
  size_t records = 0;                           // trace records seen
  size_t failures_total = 0;
  std::vector<TraceRecord> failures;            // the failures clustered
  Embeddings embeddings;                        // one row per failure
  std::vector<int> labels;                      // cluster (rank id) of each failure
  std::vector<ClusterSummary> clusters;         // ranked by cost impact, then size
  std::vector<int> ks;                          // k candidates tried
  std::vector<double> silhouettes;
  std::string embedding;                        // "encoder" / "tfidf" / caller's name
  uint64_t seed = 0;

  RN_API std::string to_json(int indent = 2) const;
  // Writes to_json() atomically.
  RN_API void save(const std::string& path) const;
};

struct FailureAnalyzerOptions {
  int k_min = 2;
  int k_max = 12;
  int restarts = 5;
  uint64_t seed = 42;
  size_t top_terms = 8;
  size_t examples = 3;
  std::optional<int> tier;     // only failures of this cheaper tier (default: all)
  size_t min_failures = 4;     // fewer failures -> one cluster, no k search
};

class RN_API FailureAnalyzer {
 public:
  // embed == nullptr -> TF-IDF fitted on the failures (stated in the report's "embedding").
  explicit FailureAnalyzer(EmbedFunction embed = nullptr, std::string embedding_name = "",
                           FailureAnalyzerOptions options = {});
  // Clusters and ranks the failures among the records.
  FailureReport analyze(const std::vector<TraceRecord>& records) const;
  FailureReport analyze_log(const std::string& decision_log_path, const Dataset& queries,
                            const PortfolioConfig* portfolio = nullptr) const;
  const FailureAnalyzerOptions& options() const { return options_; }

 private:
  EmbedFunction embed_;
  std::string embedding_name_;
  FailureAnalyzerOptions options_;
};

}  // namespace routenlp
