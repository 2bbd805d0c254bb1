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
  // Rows: sublinear tf (1 + log tf) * idf, L2-normalised (an empty/unknown text is all zero).
  SparseRows transform(const std::vector<std::string>& texts) const;
  size_t dim() const { return idf_.size(); }

 private:
  std::vector<std::string> terms(const std::string& text) const;
  TfidfOptions opt_;
  std::unordered_map<std::string, int> index_;
  std::vector<double> idf_;
};

}  // namespace routenlp::detail
