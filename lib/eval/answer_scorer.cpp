// Hashed-feature logistic regression (AdaGrad SGD) scoring recorded answers for FrugalGPT.
#include "eval/answer_scorer.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <random>

#include "eval/eval_internal.hpp"

namespace routenlp::detail {

namespace {

void tokens(const std::string& s, std::vector<std::string>& out, size_t max_tokens) {
  std::string cur;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c >= 0x80) {
      cur.push_back(char(std::tolower(c)));
    } else if (!cur.empty()) {
      out.push_back(cur);
      cur.clear();
      if (out.size() >= max_tokens) return;
    }
  }
  if (!cur.empty()) out.push_back(cur);
}

uint32_t fh(uint64_t salt, const std::string& s) {
  return uint32_t(mix_seed(hash_string(s), salt) % AnswerScorer::kDim);
}

}  // namespace

std::vector<uint32_t> AnswerScorer::features(const SystemContext& ctx, size_t row, int tier) const {
  const Query& q = ctx.query(row);
  const std::string& tname = ctx.config->tiers[size_t(tier)].name;
  std::vector<uint32_t> f;
  uint64_t ts = hash_string(tname);
  f.push_back(fh(1, tname));
  f.push_back(fh(2, tname + "\x1f" + q.task));
  std::vector<std::string> qt;
  tokens(q.query, qt, 256);
  for (size_t i = 0; i < qt.size(); ++i) {
    f.push_back(fh(ts ^ 3, qt[i]));
    if (i + 1 < qt.size()) f.push_back(fh(ts ^ 4, qt[i] + " " + qt[i + 1]));
  }
  auto it = q.outcomes.find(tname);
  if (it != q.outcomes.end() && it->second.response) {
    std::vector<std::string> rt;
    tokens(*it->second.response, rt, 256);
    for (const auto& w : rt) {
      f.push_back(fh(5, w));
      f.push_back(fh(ts ^ 6, w));
    }
    int bucket = rt.empty() ? 0 : 1 + int(std::log2(double(rt.size())));
    f.push_back(fh(ts ^ 7, "len" + std::to_string(bucket)));
  }
  return f;
}

void AnswerScorer::fit(const SystemContext& ctx, const std::vector<size_t>& rows, uint64_t seed,
                       int epochs) {
  w_.assign(kDim, 0.f);
  std::vector<float> g2(kDim, 1e-6f);
  bias_ = 0;
  double gb2 = 1e-6;
  responses_ = false;
  const OutcomeTable& t = *ctx.table;
  std::vector<std::pair<size_t, int>> ex;
  for (size_t r : rows)
    for (size_t k = 0; k < t.tiers; ++k) ex.emplace_back(r, int(k));
  for (size_t r : rows)
    for (const auto& kv : ctx.query(r).outcomes)
      if (kv.second.response) {
        responses_ = true;
        break;
      }
  // Cap the work: at most 400k examples per epoch.
  std::mt19937_64 rng(mix_seed(seed, 0xf4a9));
  const double lr = 0.2, l2 = 1e-6;
  for (int e = 0; e < epochs; ++e) {
    std::shuffle(ex.begin(), ex.end(), rng);
    size_t m = std::min<size_t>(ex.size(), 400000);
    for (size_t i = 0; i < m; ++i) {
      auto f = features(ctx, ex[i].first, ex[i].second);
      double scale = 1.0 / std::sqrt(double(f.size()));
      double z = bias_;
      for (uint32_t j : f) z += w_[j] * scale;
      double p = 1.0 / (1.0 + std::exp(-z));
      double y = t.ok(ex[i].first, ex[i].second) ? 1.0 : 0.0;
      double g = p - y;
      for (uint32_t j : f) {
        double gj = g * scale + l2 * w_[j];
        g2[j] += float(gj * gj);
        w_[j] -= float(lr * gj / std::sqrt(g2[j]));
      }
      gb2 += g * g;
      bias_ -= lr * g / std::sqrt(gb2);
    }
  }
}

double AnswerScorer::score(const SystemContext& ctx, size_t row, int tier) const {
  auto f = features(ctx, row, tier);
  double scale = 1.0 / std::sqrt(double(f.size()));
  double z = bias_;
  for (uint32_t j : f) z += w_[j] * scale;
  return 1.0 / (1.0 + std::exp(-z));
}

}  // namespace routenlp::detail
