#include "text/tfidf.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>

#include "routenlp/text/tokenizer.hpp"
#include "routenlp/error.hpp"

namespace routenlp {

// Saved TF-IDF vocabularies depend on this rule (router_io's plausible_term): keep it.
std::vector<std::string> tokenize_words(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (unsigned char c : text) {
    bool word = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                c >= 0x80;
    if (word) {
      cur.push_back(static_cast<char>((c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c));
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

namespace detail {

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

std::vector<std::string> TfidfVectorizer::terms(const std::string& text) const {
  auto w = tokenize_words(text);
  if (config_.drop_stopwords)
    w.erase(std::remove_if(w.begin(), w.end(), [](const std::string& x) { return stopwords().count(x) > 0; }),
            w.end());
  std::vector<std::string> t = w;
  if (config_.bigrams)
    for (size_t i = 0; i + 1 < w.size(); ++i) t.push_back(w[i] + " " + w[i + 1]);
  return t;
}

TfidfVectorizer::TfidfVectorizer(const std::vector<std::string>& texts, const TfidfConfig& config)
    : config_(config) {
  std::unordered_map<std::string, size_t> df;
  for (const auto& s : texts) {
    auto t = terms(s);
    std::sort(t.begin(), t.end());
    t.erase(std::unique(t.begin(), t.end()), t.end());
    for (auto& x : t) ++df[x];
  }
  std::vector<std::pair<std::string, size_t>> kept;
  for (auto& [term, n] : df)
    if (n >= std::max<size_t>(1, config_.min_df)) kept.emplace_back(term, n);
  // Most frequent first; ties by term so the vocabulary is deterministic.
  std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (config_.max_features > 0 && kept.size() > config_.max_features)
    kept.resize(config_.max_features);
  const double N = static_cast<double>(texts.size());
  for (size_t i = 0; i < kept.size(); ++i) {
    index_.emplace(kept[i].first, static_cast<int>(i));
    idf_.push_back(std::log((1.0 + N) / (1.0 + static_cast<double>(kept[i].second))) + 1.0);
  }
}

TfidfVectorizer::TfidfVectorizer(const TfidfConfig& config,
                                 const std::vector<std::string>& vocabulary,
                                 std::vector<double> idf)
    : config_(config), idf_(std::move(idf)) {
  if (vocabulary.size() != idf_.size())
    throw Error(Status::invalid_argument,
                "TF-IDF vocabulary has " + std::to_string(vocabulary.size()) + " terms but " +
                    std::to_string(idf_.size()) + " idf weights");
  for (size_t i = 0; i < vocabulary.size(); ++i)
    if (!index_.emplace(vocabulary[i], static_cast<int>(i)).second)
      throw Error(Status::invalid_argument, "TF-IDF vocabulary: term " + std::to_string(i) +
                                                " ('" + vocabulary[i] + "') repeats an earlier term");
}

std::vector<std::string> TfidfVectorizer::vocabulary() const {
  std::vector<std::string> out(idf_.size());
  for (const auto& [term, j] : index_) out[static_cast<size_t>(j)] = term;
  return out;
}

std::vector<std::pair<int, double>> TfidfVectorizer::weights(const std::string& text) const {
  std::map<int, double> tf;
  for (const auto& t : terms(text)) {
    auto it = index_.find(t);
    if (it != index_.end()) tf[it->second] += 1.0;
  }
  double norm = 0;
  for (auto& [j, v] : tf) {
    v = (1.0 + std::log(v)) * idf_[static_cast<size_t>(j)];
    norm += v * v;
  }
  norm = std::sqrt(norm);
  std::vector<std::pair<int, double>> out;
  out.reserve(tf.size());
  for (auto& [j, v] : tf) out.emplace_back(j, norm > 0 ? v / norm : 0.0);
  return out;
}

SparseRows TfidfVectorizer::transform(const std::vector<std::string>& texts) const {
  std::vector<Eigen::Triplet<double>> trip;
  for (size_t r = 0; r < texts.size(); ++r)
    for (const auto& [j, v] : weights(texts[r])) trip.emplace_back(static_cast<int>(r), j, v);
  SparseRows m(static_cast<Eigen::Index>(texts.size()),
               static_cast<Eigen::Index>(std::max<size_t>(1, idf_.size())));
  m.setFromTriplets(trip.begin(), trip.end());
  m.makeCompressed();
  return m;
}

std::vector<std::vector<float>> TfidfVectorizer::transform_dense(
    const std::vector<std::string>& texts) const {
  std::vector<std::vector<float>> out(texts.size(), std::vector<float>(idf_.size(), 0.0f));
  for (size_t r = 0; r < texts.size(); ++r)
    for (const auto& [j, v] : weights(texts[r])) out[r][static_cast<size_t>(j)] = static_cast<float>(v);
  return out;
}

}  // namespace detail
}  // namespace routenlp
