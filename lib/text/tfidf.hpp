// The one TF-IDF (internal): word unigrams (+ optional bigrams) from tokenize_words(), smoothed
// idf = ln((1 + N) / (1 + df)) + 1, sublinear tf (1 + ln tf), L2-normalised rows. The router
// baselines (TF-IDF LR, kNN, MF) and the co-optimization loop's TfidfEmbedder both use it.
#pragma once

#include <Eigen/SparseCore>

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

namespace routenlp::detail {

using SparseRows = Eigen::SparseMatrix<double, Eigen::RowMajor>;

struct TfidfConfig {
  size_t max_features = 20000;  // most frequent terms kept (0: all)
  size_t min_df = 2;            // terms in fewer training documents are dropped
  bool bigrams = true;
  bool drop_stopwords = false;  // a small built-in English stop list (unigrams)
};

class TfidfVectorizer {
 public:
  // Builds the vocabulary (most frequent first, ties by term) and idf on the training texts.
  TfidfVectorizer(const std::vector<std::string>& texts, const TfidfConfig& config);
  // Restores a saved vectorizer: vocabulary[i] is column i (unique), idf[i] its weight.
  // Error(invalid_argument) on a duplicate term or a length mismatch.
  TfidfVectorizer(const TfidfConfig& config, const std::vector<std::string>& vocabulary,
                  std::vector<double> idf);
  // One row per text (an empty/unknown text is all zero); at least one column.
  SparseRows transform(const std::vector<std::string>& texts) const;
  std::vector<std::vector<float>> transform_dense(const std::vector<std::string>& texts) const;
  size_t dim() const { return idf_.size(); }
  const TfidfConfig& config() const { return config_; }
  const std::vector<double>& idf() const { return idf_; }
  std::vector<std::string> vocabulary() const;  // terms in column order

 private:
  std::vector<std::string> terms(const std::string& text) const;
  // Sparse (column, weight) pairs of one text, L2-normalised, ascending column.
  std::vector<std::pair<int, double>> weights(const std::string& text) const;
  TfidfConfig config_;
  std::unordered_map<std::string, int> index_;
  std::vector<double> idf_;
};

}  // namespace routenlp::detail
