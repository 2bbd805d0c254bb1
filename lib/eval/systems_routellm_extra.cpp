// RouteLLM's other routers (Ong et al., "RouteLLM: Learning to Route LLMs with Preference
// Data", ICLR 2025, arXiv 2406.18665), beside the matrix-factorisation `routellm`:
//   routellm-sw   similarity-weighted Elo ranking (RouteLLM's sw_ranking): every train query
//                 is a set of battles between the tiers; for a new query each battle is weighted
//                 by 10 * 10^(sim / max sim) (cosine similarity of the query embeddings), a
//                 Bradley-Terry (Elo) MLE with ties is fitted on the weighted battles, and the
//                 strong tier's expected win rate against the weak tier is the score.
//   routellm-bert a BERT-style classifier (the project's DistilBERT encoder) on the win label
//                 "the strong tier's answer is better than the weak tier's" (RouteLLM's BERT
//                 router: P(strong wins) = 1 - P(tie or weak wins)).
// Both use RouteLLM's strong-share threshold calibration (lib/eval/two_tier.hpp).
#include <Eigen/SparseCore>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <memory>
#include <set>

#include "eval/router_cache.hpp"
#include "eval/seed_systems.hpp"
#include "eval/two_tier.hpp"
#include "router/text_features.hpp"
#include "routenlp/error.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/baselines.hpp"
#include "routenlp/router/neural.hpp"

namespace routenlp::detail {

// Bradley-Terry strengths from weighted pairwise wins w[a * K + b] (a beat b; a tie counts 1/2
// to each side) by Hunter's MM algorithm; a tiny symmetric prior (1e-3 tie per pair) keeps them
// finite. Returns P(a beats b) = pi_a / (pi_a + pi_b) for the pair asked. Exposed for tests.
double bradley_terry_win_rate(const std::vector<double>& w, size_t K, size_t a, size_t b) {
  if (w.size() != K * K || a >= K || b >= K)
    throw Error(Status::invalid_argument, "bradley_terry_win_rate: shape mismatch");
  std::vector<double> W(w);
  for (size_t i = 0; i < K; ++i)
    for (size_t j = 0; j < K; ++j)
      if (i != j) W[i * K + j] += 0.5e-3;
  std::vector<double> pi(K, 1.0), next(K);
  for (int it = 0; it < 200; ++it) {
    double delta = 0, sum = 0;
    for (size_t i = 0; i < K; ++i) {
      double wins = 0, den = 0;
      for (size_t j = 0; j < K; ++j) {
        if (i == j) continue;
        wins += W[i * K + j];
        den += (W[i * K + j] + W[j * K + i]) / (pi[i] + pi[j]);
      }
      next[i] = den > 0 ? wins / den : pi[i];
      sum += next[i];
    }
    for (size_t i = 0; i < K; ++i) {
      double v = next[i] * double(K) / sum;
      delta = std::max(delta, std::fabs(v - pi[i]) / pi[i]);
      pi[i] = v;
    }
    if (delta < 1e-9) break;
  }
  return pi[a] / (pi[a] + pi[b]);
}

namespace {

// ---- routellm-sw ----
class RouteLlmSwSystem : public TwoTierScoreSystem {
 public:
  std::string name() const override { return "routellm-sw"; }

 protected:
  void fit_scorer(const SystemContext& ctx) override {
    const OutcomeTable& t = *ctx.table;
    K_ = t.tiers;
    train_ = ctx.train;
    wins_.assign(train_.size() * K_ * K_, 0.0f);
    for (size_t i = 0; i < train_.size(); ++i)
      for (size_t a = 0; a < K_; ++a)
        for (size_t b = 0; b < K_; ++b) {
          if (a == b) continue;
          double qa = t.q(train_[i], int(a)), qb = t.q(train_[i], int(b));
          wins_[(i * K_ + a) * K_ + b] = qa > qb + 1e-12 ? 1.0f : std::fabs(qa - qb) <= 1e-12 ? 0.5f : 0.0f;
        }
    // Embeddings: the encoder of the project's neural router (trained on train) when libtorch
    // is built, else TF-IDF vectors of the train texts.
    embed_.reset();
    tfidf_.reset();
    how_.clear();
    try {
      auto router = neural_router_for(ctx);
      if (auto nr = std::dynamic_pointer_cast<const NeuralRouter>(router)) {
        embed_ = nr;
        how_ = "neural router encoder (DistilBERT, trained on 80% of train)";
      }
    } catch (const Error& e) {
      if (e.code() != Status::not_supported) throw;
      how_ = std::string("TF-IDF vectors (no encoder: ") + e.what() + ")";
    }
    if (embed_) {
      dense_ = embed_rows(ctx, train_);
      // The encoder reads a fixed token window (64 tokens for the bundled router): queries that
      // share a long prefix (few-shot prompts) get one embedding, and similarity weighting
      // degenerates to one global Elo. Then TF-IDF over the whole text stands in.
      std::set<std::string> texts;
      std::set<std::vector<float>> embs;
      for (size_t i = 0; i < train_.size(); ++i) {
        if (texts.insert(ctx.query(train_[i]).query).second) embs.insert(dense_[i]);
      }
      double distinct = texts.empty() ? 1.0 : double(embs.size()) / double(texts.size());
      if (distinct < 0.9) {
        char b[200];
        std::snprintf(b, sizeof b,
                      "TF-IDF vectors (the neural router encoder gives %.0f%% of the distinct train "
                      "queries a distinct embedding: its token window cuts their shared prefix)",
                      100 * distinct);
        how_ = b;
        embed_.reset();
        dense_.clear();
      }
    }
    if (!embed_) {
      std::vector<std::string> texts;
      for (size_t r : train_) texts.push_back(ctx.query(r).query);
      TfidfOptions to;
      tfidf_ = std::make_unique<TfidfVectorizer>(texts, detail::tfidf_config(to));
      train_cols_ = Eigen::SparseMatrix<double, Eigen::ColMajor>(tfidf_->transform(texts));
    }
  }

  std::vector<std::vector<float>> embed_rows(const SystemContext& ctx, const std::vector<size_t>& rows) {
    std::vector<std::vector<float>> out;
    const size_t batch = 64;
    for (size_t i = 0; i < rows.size(); i += batch) {
      std::vector<RouteQuery> b;
      for (size_t j = i; j < std::min(rows.size(), i + batch); ++j)
        b.push_back({ctx.query(rows[j]).query, ctx.query(rows[j]).task});
      auto e = embed_->embed(b);
      for (auto& v : e) {
        double n = 0;
        for (float x : v) n += double(x) * x;
        n = std::sqrt(n);
        if (n > 0)
          for (float& x : v) x = float(x / n);
        out.push_back(std::move(v));
      }
    }
    return out;
  }

  std::vector<double> strong_scores(const SystemContext& ctx,
                                    const std::vector<size_t>& rows) override {
    std::vector<double> out;
    out.reserve(rows.size());
    std::vector<std::vector<float>> emb;
    SparseRows X;
    if (embed_) emb = embed_rows(ctx, rows);
    else {
      std::vector<std::string> texts;
      for (size_t r : rows) texts.push_back(ctx.query(r).query);
      X = tfidf_->transform(texts);
    }
    std::vector<double> sim(train_.size()), W(K_ * K_);
    for (size_t qi = 0; qi < rows.size(); ++qi) {
      std::fill(sim.begin(), sim.end(), 0.0);
      if (embed_) {
        for (size_t i = 0; i < train_.size(); ++i) {
          double s = 0;
          const auto& a = dense_[i];
          const auto& b = emb[qi];
          for (size_t d = 0; d < a.size() && d < b.size(); ++d) s += double(a[d]) * b[d];
          sim[i] = s;
        }
      } else {
        for (SparseRows::InnerIterator it(X, Eigen::Index(qi)); it; ++it)
          for (Eigen::SparseMatrix<double>::InnerIterator jt(train_cols_, it.col()); jt; ++jt)
            sim[size_t(jt.row())] += it.value() * jt.value();
      }
      double mx = *std::max_element(sim.begin(), sim.end());
      std::fill(W.begin(), W.end(), 0.0);
      for (size_t i = 0; i < train_.size(); ++i) {
        // RouteLLM's weighting: 10 * 10^(sim / max sim); equal weights when nothing is similar.
        double w = mx > 1e-12 ? 10.0 * std::pow(10.0, sim[i] / mx) : 10.0;
        const float* m = &wins_[i * K_ * K_];
        for (size_t k = 0; k < K_ * K_; ++k) W[k] += w * m[k];
      }
      out.push_back(bradley_terry_win_rate(W, K_, size_t(strong_), size_t(weak_)));
    }
    return out;
  }
  std::string scorer_detail() const override {
    return "similarity-weighted Bradley-Terry (Elo MLE with ties) over " +
           std::to_string(train_.size()) + " train queries x " + std::to_string(K_ * (K_ - 1) / 2) +
           " tier pairs; embeddings: " + how_ + "; score = strong tier's win rate vs weak";
  }

 private:
  size_t K_ = 0;
  std::vector<size_t> train_;
  std::vector<float> wins_;  // [train row][a][b]
  std::shared_ptr<const NeuralRouter> embed_;
  std::vector<std::vector<float>> dense_;
  std::unique_ptr<TfidfVectorizer> tfidf_;
  Eigen::SparseMatrix<double, Eigen::ColMajor> train_cols_;
  std::string how_;
};

// ---- routellm-bert ----

// The last `n` whitespace-separated words of a text (all of it when shorter). RouteLLM's BERT
// reads up to 512 tokens; the project's encoder has a 64-token window, and prompts that open
// with a shared few-shot preamble (RouterBench) differ only at the end, so the classifier reads
// the end of the query.
std::string tail_words(const std::string& text, size_t n) {
  size_t count = 0, i = text.size();
  while (i > 0) {
    while (i > 0 && std::isspace(static_cast<unsigned char>(text[i - 1]))) --i;
    if (i == 0) break;
    if (count == n) return text.substr(i);
    while (i > 0 && !std::isspace(static_cast<unsigned char>(text[i - 1]))) --i;
    ++count;
  }
  return text;
}
constexpr size_t kBertWords = 40;
class RouteLlmBertSystem : public TwoTierScoreSystem {
 public:
  std::string name() const override { return "routellm-bert"; }

 protected:
  void fit_scorer(const SystemContext& ctx) override {
    const OutcomeTable& t = *ctx.table;
    // The win label as a one-"tier" dataset: quality 1 when the strong answer beats the weak.
    Dataset part;
    part.source = ctx.data->source + " (routellm-bert win labels)";
    size_t pos = 0;
    for (size_t r : ctx.train) {
      const Query& src = ctx.query(r);
      Query q;
      q.id = src.id;
      q.query = tail_words(src.query, kBertWords);
      q.task = "default";  // RouteLLM's classifier reads the prompt only
      q.split = Split::train;
      q.split_given = true;
      Outcome o;
      bool win = t.q(r, strong_) > t.q(r, weak_) + 1e-12;
      pos += win;
      o.quality = win ? 1.0 : 0.0;
      q.outcomes["strong-wins"] = o;
      part.queries.push_back(std::move(q));
    }
    win_rate_ = ctx.train.empty() ? 0 : double(pos) / double(ctx.train.size());
    PortfolioConfig pc;
    pc.source = "routellm-bert";
    TierSpec ts;
    ts.name = "strong-wins";
    pc.tiers = {ts};
    TaskPolicy tp;
    tp.quality_threshold = 0.5;
    pc.tasks["default"] = tp;
    RouterTrainConfig cfg;
    if (!ctx.router_config.empty()) cfg = RouterTrainConfig::load(ctx.router_config);
    cfg.seed = ctx.seed;
    cfg.model.prior_offset = false;
    cfg.loss.difficulty_weight = 0.0;
    cfg.task_dropout = 0.0;
    model_ = std::make_unique<NeuralRouter>(NeuralRouter::train(part, pc, cfg, ctx.progress));
  }
  std::vector<double> strong_scores(const SystemContext& ctx,
                                    const std::vector<size_t>& rows) override {
    std::vector<double> s;
    s.reserve(rows.size());
    const size_t batch = 64;
    for (size_t i = 0; i < rows.size(); i += batch) {
      std::vector<RouteQuery> b;
      for (size_t j = i; j < std::min(rows.size(), i + batch); ++j)
        b.push_back({tail_words(ctx.query(rows[j]).query, kBertWords), "default"});
      for (const auto& sc : model_->score(b)) s.push_back(sc.p_acceptable.at(0));
    }
    return s;
  }
  std::string scorer_detail() const override {
    char b[200];
    std::snprintf(b, sizeof b,
                  "DistilBERT classifier (the project's small encoder, trained from scratch on "
                  "train, reading the query's last 40 words) of P(strong answer better than "
                  "weak); train win rate %.3f",
                  win_rate_);
    return b;
  }

 private:
  std::unique_ptr<NeuralRouter> model_;
  double win_rate_ = 0;
};

}  // namespace

std::unique_ptr<System> make_routellm_sw_system(const PortfolioConfig&) {
  return std::make_unique<RouteLlmSwSystem>();
}
std::unique_ptr<System> make_routellm_bert_system(const PortfolioConfig&) {
  return std::make_unique<RouteLlmBertSystem>();
}

}  // namespace routenlp::detail
