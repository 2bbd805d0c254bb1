// TF-IDF word-unigram embedder: the co-optimization loop's fallback embedding and the source of
// each failure cluster's distinguishing terms.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

#include "routenlp/error.hpp"
#include "routenlp/failure_analyzer.hpp"

namespace routenlp {

namespace {

const std::set<std::string>& stopwords() {
  static const std::set<std::string> s = {
      "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could", "did",
      "do", "does", "for", "from", "had", "has", "have", "i", "if", "in", "into", "is", "it",
      "its", "me", "my", "of", "on", "or", "our", "so", "that", "the", "their", "them", "then",
      "there", "these", "this", "to", "was", "we", "were", "what", "when", "which", "who",
      "will", "with", "would", "you", "your", "am", "im", "how", "why", "where", "s", "t"};
  return s;
}

}  // namespace

std::vector<std::string> tokenize_words(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c >= 0x80) {
      cur.push_back(static_cast<char>(c < 0x80 ? std::tolower(c) : c));
    } else if (c == '\'') {
      continue;  // "don't" -> "dont"
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

TfidfEmbedder::TfidfEmbedder() : TfidfEmbedder(Options{}) {}
TfidfEmbedder::TfidfEmbedder(Options options) : options_(options) {}

void TfidfEmbedder::fit(const std::vector<std::string>& corpus) {
  if (corpus.empty()) throw Error(Status::invalid_argument, "TfidfEmbedder::fit: empty corpus");
  std::map<std::string, size_t> df;
  for (const auto& doc : corpus) {
    std::set<std::string> seen;
    for (auto& w : tokenize_words(doc)) {
      if (options_.drop_stopwords && stopwords().count(w)) continue;
      if (seen.insert(w).second) ++df[w];
    }
  }
  std::vector<std::pair<std::string, size_t>> terms;
  for (auto& [w, n] : df)
    if (n >= options_.min_df) terms.emplace_back(w, n);
  // Most frequent first; ties alphabetical (deterministic).
  std::stable_sort(terms.begin(), terms.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  if (terms.size() > options_.max_features) terms.resize(options_.max_features);
  std::sort(terms.begin(), terms.end());
  vocab_.clear();
  idf_.clear();
  const double n = static_cast<double>(corpus.size());
  for (auto& [w, c] : terms) {
    vocab_.push_back(w);
    idf_.push_back(std::log((1.0 + n) / (1.0 + static_cast<double>(c))) + 1.0);
  }
}

Embeddings TfidfEmbedder::transform(const std::vector<std::string>& texts) const {
  if (vocab_.empty())
    throw Error(Status::invalid_argument, "TfidfEmbedder::transform: not fitted (empty vocabulary)");
  std::unordered_map<std::string, size_t> index;
  index.reserve(vocab_.size());
  for (size_t i = 0; i < vocab_.size(); ++i) index.emplace(vocab_[i], i);
  Embeddings out(texts.size(), std::vector<float>(vocab_.size(), 0.0f));
  for (size_t t = 0; t < texts.size(); ++t) {
    std::map<size_t, double> tf;
    for (auto& w : tokenize_words(texts[t])) {
      auto it = index.find(w);
      if (it != index.end()) tf[it->second] += 1.0;
    }
    double norm = 0.0;
    std::vector<std::pair<size_t, double>> vals;
    for (auto& [j, c] : tf) {
      double v = (1.0 + std::log(c)) * idf_[j];
      vals.emplace_back(j, v);
      norm += v * v;
    }
    norm = std::sqrt(norm);
    for (auto& [j, v] : vals) out[t][j] = static_cast<float>(norm > 0 ? v / norm : 0.0);
  }
  return out;
}

EmbedFunction TfidfEmbedder::as_function() const {
  TfidfEmbedder copy = *this;
  return [copy](const std::vector<std::string>& texts) { return copy.transform(texts); };
}

}  // namespace routenlp
