// TF-IDF text features for the classical router baselines. Internal header.
#pragma once

#include <Eigen/SparseCore>

#include <string>
#include <unordered_map>
#include <vector>

#include "routenlp/router.hpp"

namespace routenlp::detail {

using SparseRows = Eigen::SparseMatrix<double, Eigen::RowMajor>;

// Lower-cased words: runs of ASCII letters/digits or non-ASCII bytes; everything else splits.
std::vector<std::string> simple_words(const std::string& text);

class TfidfVectorizer {
 public:
  // Builds the vocabulary and IDF on the training texts.
  TfidfVectorizer(const std::vector<std::string>& texts, const TfidfOptions& options);
  // Restores a saved vectorizer: vocabulary[i] is column i (unique), idf[i] its weight.
  // Error(invalid_argument) on a duplicate term or a length mismatch.
  TfidfVectorizer(const TfidfOptions& options, const std::vector<std::string>& vocabulary,
                  std::vector<double> idf);
  // Rows: sublinear tf (1 + log tf) * idf, L2-normalised (an empty/unknown text is all zero).
  SparseRows transform(const std::vector<std::string>& texts) const;
  size_t dim() const { return idf_.size(); }
  const TfidfOptions& options() const { return opt_; }
  const std::vector<double>& idf() const { return idf_; }
  std::vector<std::string> vocabulary() const;  // terms in column order

 private:
  std::vector<std::string> terms(const std::string& text) const;
  TfidfOptions opt_;
  std::unordered_map<std::string, int> index_;
  std::vector<double> idf_;
};

}  // namespace routenlp::detail
