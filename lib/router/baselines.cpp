// Baseline routers behind RouterModel: random, always-tier-k, per-task prior, TF-IDF + logistic
// regression, kNN (encoder embeddings or TF-IDF) and a RouteLLM-style matrix factorisation.
#include <Eigen/Dense>
#include <Eigen/SparseCore>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <unordered_map>

#include <fmt/format.h>

#include "common/hash.hpp"
#include "router/baseline_models.hpp"
#include "router/text_features.hpp"
#include "routenlp/error.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/baselines.hpp"

namespace routenlp {


namespace {

using detail::SparseRows;
using detail::TaskIndex;

void check_labels(const RoutingLabels& train, const char* who) {
  if (train.tiers.empty())
    throw Error(Status::invalid_argument, std::string(who) + ": labels have no tiers");
  if (train.size() == 0)
    throw Error(Status::invalid_argument, std::string(who) + ": no training queries");
  if (train.acceptable.size() != train.size())
    throw Error(Status::invalid_argument, std::string(who) + ": labels and queries differ");
  for (const auto& row : train.acceptable)
    if (row.size() != train.tiers.size())
      throw Error(Status::invalid_argument, std::string(who) + ": label row of wrong width");
}

std::vector<double> overall_rates(const RoutingLabels& train) {
  const size_t K = train.tiers.size();
  std::vector<double> pos(K, 0), n(K, 0), out(K, 0.5);
  for (const auto& row : train.acceptable)
    for (size_t k = 0; k < K; ++k)
      if (row[k] >= 0) {
        pos[k] += row[k];
        n[k] += 1;
      }
  for (size_t k = 0; k < K; ++k)
    if (n[k] > 0) out[k] = pos[k] / n[k];
  return out;
}

void fill_difficulty(RouterScores& s) {
  double m = 0;
  for (double p : s.p_acceptable) m += p;
  s.difficulty = s.p_acceptable.empty() ? 0.0 : 1.0 - m / static_cast<double>(s.p_acceptable.size());
}

double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  double e = std::exp(x);
  return e / (1.0 + e);
}

std::vector<std::string> texts_of(const std::vector<RouteQuery>& qs) {
  std::vector<std::string> t;
  t.reserve(qs.size());
  for (const auto& q : qs) t.push_back(q.query);
  return t;
}


// Features: TF-IDF columns, then one column per training task.
SparseRows features(const detail::TfidfVectorizer& vec, const TaskIndex* tasks,
                    const std::vector<RouteQuery>& qs) {
  SparseRows x = vec.transform(texts_of(qs));
  if (!tasks) return x;
  std::vector<Eigen::Triplet<double>> trip;
  for (int r = 0; r < x.outerSize(); ++r)
    for (SparseRows::InnerIterator it(x, r); it; ++it) trip.emplace_back(r, it.col(), it.value());
  const auto base = static_cast<int>(vec.dim());
  for (size_t r = 0; r < qs.size(); ++r) {
    int t = tasks->find(qs[r].task);
    if (t >= 0) trip.emplace_back(static_cast<int>(r), base + t, 1.0);
  }
  SparseRows out(x.rows(), base + tasks->size());
  out.setFromTriplets(trip.begin(), trip.end());
  out.makeCompressed();
  return out;
}

// L2-regularised logistic regression by Nesterov-accelerated full-batch gradient descent with
// step 1/L, L = max_row_norm^2 / 4 + l2 (a bound on the Hessian's largest eigenvalue).
void fit_logreg(const SparseRows& x, const Eigen::VectorXd& y, const Eigen::VectorXd& mask,
                double l2, int iterations, Eigen::VectorXd& w, double& b) {
  const double m = std::max(1.0, mask.sum());
  double max_norm2 = 0;
  for (int r = 0; r < x.outerSize(); ++r) max_norm2 = std::max(max_norm2, x.row(r).squaredNorm());
  const double L = (max_norm2 + 1.0) / 4.0 + l2;  // +1 for the bias column
  const double step = 1.0 / L;
  w = Eigen::VectorXd::Zero(x.cols());
  double p0 = mask.sum() > 0 ? y.cwiseProduct(mask).sum() / m : 0.5;
  p0 = std::min(std::max(p0, 1e-4), 1 - 1e-4);
  b = std::log(p0 / (1 - p0));
  Eigen::VectorXd w_prev = w, v = w;
  double b_prev = b, vb = b;
  for (int it = 1; it <= iterations; ++it) {
    Eigen::VectorXd z = x * v;
    Eigen::VectorXd g(z.size());
    for (Eigen::Index i = 0; i < z.size(); ++i) g[i] = (sigmoid(z[i] + vb) - y[i]) * mask[i] / m;
    Eigen::VectorXd gw = x.transpose() * g + l2 * v;
    double gb = g.sum();
    w_prev = w;
    b_prev = b;
    w = v - step * gw;
    b = vb - step * gb;
    double mom = static_cast<double>(it - 1) / static_cast<double>(it + 2);
    v = w + mom * (w - w_prev);
    vb = b + mom * (b - b_prev);
  }
}

}  // namespace

namespace detail {

// ---- task index -------------------------------------------------------------------------------

TaskIndex::TaskIndex(const RoutingLabels& train) {
  for (const auto& q : train.queries) id_.emplace(q.task, 0);
  int i = 0;
  for (auto& [t, v] : id_) v = i++;
}

TaskIndex::TaskIndex(const std::vector<std::string>& names) {
  for (size_t i = 0; i < names.size(); ++i) {
    // Sorted order is what the training constructor assigns, so columns keep their meaning.
    if (i > 0 && !(names[i - 1] < names[i]))
      throw Error(Status::invalid_argument,
                  fmt::format("task list not strictly increasing at entry {} ('{}')", i, names[i]));
    id_.emplace(names[i], static_cast<int>(i));
  }
}

std::vector<std::string> TaskIndex::names() const {
  std::vector<std::string> out(id_.size());
  for (const auto& [t, i] : id_) out[static_cast<size_t>(i)] = t;
  return out;
}

// ---- random / always --------------------------------------------------------------------------

RandomRouter::RandomRouter(std::vector<std::string> tiers, uint64_t seed)
    : tiers_(std::move(tiers)), seed_(seed) {
  if (tiers_.empty()) throw Error(Status::invalid_argument, "random router: no tiers");
}

std::vector<RouterScores> RandomRouter::score(const std::vector<RouteQuery>& batch) const {
  std::vector<RouterScores> out(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    uint64_t h = 1469598103934665603ULL ^ (seed_ * 0x9E3779B97F4A7C15ULL);
    h = detail::fnv1a64(batch[i].task, h);
    h = detail::fnv1a64(std::string_view("", 1), h);
    h = detail::fnv1a64(batch[i].query, h);
    for (size_t k = 0; k < tiers_.size(); ++k) {
      uint64_t x = h ^ ((k + 1) * 0xBF58476D1CE4E5B9ULL);
      // splitmix64 finaliser
      x ^= x >> 30;
      x *= 0xBF58476D1CE4E5B9ULL;
      x ^= x >> 27;
      x *= 0x94D049BB133111EBULL;
      x ^= x >> 31;
      out[i].p_acceptable.push_back(static_cast<double>(x >> 11) * 0x1.0p-53);
    }
    fill_difficulty(out[i]);
  }
  return out;
}

AlwaysRouter::AlwaysRouter(std::vector<std::string> tiers, int k) : tiers_(std::move(tiers)), k_(k) {
  if (k < 0 || static_cast<size_t>(k) >= tiers_.size())
    throw Error(Status::invalid_argument,
                fmt::format("always-tier router: tier {} out of range (0..{})", k,
                            static_cast<int>(tiers_.size()) - 1));
}

std::vector<RouterScores> AlwaysRouter::score(const std::vector<RouteQuery>& batch) const {
  RouterScores s;
  s.p_acceptable.assign(tiers_.size(), 0.0);
  s.p_acceptable[static_cast<size_t>(k_)] = 1.0;
  fill_difficulty(s);
  return std::vector<RouterScores>(batch.size(), s);
}

// ---- per-task prior ---------------------------------------------------------------------------

TaskPriorRouter::TaskPriorRouter(const RoutingLabels& train) : tiers_(train.tiers) {
  check_labels(train, "task-prior router");
  overall_ = overall_rates(train);
  const size_t K = tiers_.size();
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> acc;
  for (size_t i = 0; i < train.size(); ++i) {
    auto& [pos, n] = acc[train.queries[i].task];
    pos.resize(K, 0.0);
    n.resize(K, 0.0);
    for (size_t k = 0; k < K; ++k)
      if (train.acceptable[i][k] >= 0) {
        pos[k] += train.acceptable[i][k];
        n[k] += 1;
      }
  }
  for (auto& [task, pn] : acc) {
    std::vector<double> r(K);
    for (size_t k = 0; k < K; ++k) r[k] = pn.second[k] > 0 ? pn.first[k] / pn.second[k] : overall_[k];
    rates_.emplace(task, std::move(r));
  }
}

TaskPriorRouter::TaskPriorRouter(std::vector<std::string> tiers, std::vector<double> overall,
                                 std::map<std::string, std::vector<double>> rates)
    : tiers_(std::move(tiers)), overall_(std::move(overall)), rates_(std::move(rates)) {}

std::vector<RouterScores> TaskPriorRouter::score(const std::vector<RouteQuery>& batch) const {
  std::vector<RouterScores> out(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    auto it = rates_.find(batch[i].task);
    out[i].task_unseen = it == rates_.end();
    out[i].p_acceptable = out[i].task_unseen ? overall_ : it->second;
    fill_difficulty(out[i]);
  }
  return out;
}

// ---- TF-IDF + logistic regression -------------------------------------------------------------

LogRegRouter::LogRegRouter(const RoutingLabels& train, const LogRegOptions& opt)
    : tiers_(train.tiers), opt_(opt), vec_(texts_of(train.queries), detail::tfidf_config(opt.tfidf)), tasks_(train) {
  check_labels(train, "tfidf-logreg router");
  if (!(opt.l2 >= 0) || opt.iterations < 1)
    throw Error(Status::invalid_argument, "tfidf-logreg router: l2 >= 0, iterations >= 1");
  SparseRows x = features(vec_, opt_.task_features ? &tasks_ : nullptr, train.queries);
  const auto n = static_cast<Eigen::Index>(train.size());
  for (size_t k = 0; k < tiers_.size(); ++k) {
    Eigen::VectorXd y(n), mask(n);
    for (Eigen::Index i = 0; i < n; ++i) {
      int8_t a = train.acceptable[static_cast<size_t>(i)][k];
      y[i] = a > 0 ? 1.0 : 0.0;
      mask[i] = a >= 0 ? 1.0 : 0.0;
    }
    Eigen::VectorXd w;
    double b = 0;
    fit_logreg(x, y, mask, opt_.l2, opt_.iterations, w, b);
    w_.push_back(std::move(w));
    b_.push_back(b);
  }
}

LogRegRouter::LogRegRouter(std::vector<std::string> tiers, const LogRegOptions& opt,
                           TfidfVectorizer vec, TaskIndex tasks, std::vector<Eigen::VectorXd> w,
                           std::vector<double> b)
    : tiers_(std::move(tiers)),
      opt_(opt),
      vec_(std::move(vec)),
      tasks_(std::move(tasks)),
      w_(std::move(w)),
      b_(std::move(b)) {}

size_t LogRegRouter::feature_count(const TfidfVectorizer& vec, const TaskIndex& tasks,
                                   bool task_features) {
  // As features() builds them: transform() keeps at least one column for an empty vocabulary.
  return task_features ? vec.dim() + static_cast<size_t>(tasks.size())
                       : std::max<size_t>(1, vec.dim());
}

std::vector<RouterScores> LogRegRouter::score(const std::vector<RouteQuery>& batch) const {
  SparseRows x = features(vec_, opt_.task_features ? &tasks_ : nullptr, batch);
  std::vector<RouterScores> out(batch.size());
  for (size_t k = 0; k < tiers_.size(); ++k) {
    Eigen::VectorXd z = x * w_[k];
    for (size_t i = 0; i < batch.size(); ++i)
      out[i].p_acceptable.push_back(sigmoid(z[static_cast<Eigen::Index>(i)] + b_[k]));
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    out[i].task_unseen = tasks_.find(batch[i].task) < 0;
    fill_difficulty(out[i]);
  }
  return out;
}

// ---- kNN --------------------------------------------------------------------------------------

KnnRouter::KnnRouter(const RoutingLabels& train, const KnnOptions& opt, TextEmbedder embedder)
    : tiers_(train.tiers), opt_(opt), embedder_(std::move(embedder)), tasks_(train) {
  check_labels(train, "knn router");
  if (opt.k < 1) throw Error(Status::invalid_argument, "knn router: k must be >= 1");
  labels_ = train.acceptable;
  train_task_.reserve(train.size());
  for (const auto& q : train.queries) train_task_.push_back(tasks_.find(q.task));
  overall_ = overall_rates(train);
  if (!embedder_) vec_ = std::make_unique<TfidfVectorizer>(texts_of(train.queries), detail::tfidf_config(opt.tfidf));
  emb_ = embed(train.queries);
}

KnnRouter::KnnRouter(std::vector<std::string> tiers, const KnnOptions& opt, TfidfVectorizer vec,
                     TaskIndex tasks, std::vector<std::vector<int8_t>> labels,
                     std::vector<int> train_task, std::vector<double> overall, Eigen::MatrixXf emb)
    : tiers_(std::move(tiers)),
      opt_(opt),
      tasks_(std::move(tasks)),
      vec_(std::make_unique<TfidfVectorizer>(std::move(vec))),
      labels_(std::move(labels)),
      train_task_(std::move(train_task)),
      overall_(std::move(overall)),
      emb_(std::move(emb)) {}

std::vector<RouterScores> KnnRouter::score(const std::vector<RouteQuery>& batch) const {
  Eigen::MatrixXf q = embed(batch);
  Eigen::MatrixXf sim = q * emb_.transpose();  // cosine: rows are unit-norm
  const size_t K = tiers_.size();
  std::vector<RouterScores> out(batch.size());
  std::vector<int> order(static_cast<size_t>(emb_.rows()));
  for (size_t i = 0; i < batch.size(); ++i) {
    int task = tasks_.find(batch[i].task);
    out[i].task_unseen = task < 0;
    std::iota(order.begin(), order.end(), 0);
    auto row = sim.row(static_cast<Eigen::Index>(i));
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return row[a] > row[b]; });
    for (size_t k = 0; k < K; ++k) {
      double pos = 0, n = 0;
      for (int j : order) {
        if (n >= static_cast<double>(opt_.k)) break;
        if (opt_.same_task_only && task >= 0 && train_task_[static_cast<size_t>(j)] != task) continue;
        int8_t a = labels_[static_cast<size_t>(j)][k];
        if (a < 0) continue;
        pos += a;
        n += 1;
      }
      out[i].p_acceptable.push_back(n > 0 ? pos / n : overall_[k]);
    }
    fill_difficulty(out[i]);
  }
  return out;
}

Eigen::MatrixXf KnnRouter::embed(const std::vector<RouteQuery>& qs) const {
  Eigen::MatrixXf m;
  if (embedder_) {
    auto v = embedder_(qs);
    if (v.size() != qs.size()) throw Error(Status::callback, "knn router: embedder returned a wrong count");
    const size_t d = v.empty() ? 0 : v[0].size();
    m.resize(static_cast<Eigen::Index>(qs.size()), static_cast<Eigen::Index>(d));
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i].size() != d) throw Error(Status::callback, "knn router: ragged embeddings");
      for (size_t j = 0; j < d; ++j) m(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = v[i][j];
    }
  } else {
    m = Eigen::MatrixXf(vec_->transform(texts_of(qs)).cast<float>());
  }
  for (Eigen::Index i = 0; i < m.rows(); ++i) {
    float n = m.row(i).norm();
    if (n > 0) m.row(i) /= n;
  }
  return m;
}

// ---- matrix factorisation ---------------------------------------------------------------------

MfRouter::MfRouter(const RoutingLabels& train, const MfOptions& opt)
    : tiers_(train.tiers), vec_(texts_of(train.queries), detail::tfidf_config(opt.tfidf)), tasks_(train) {
  check_labels(train, "mf router");
  if (opt.dim < 1 || opt.epochs < 1 || !(opt.learning_rate > 0))
    throw Error(Status::invalid_argument, "mf router: dim, epochs >= 1 and learning_rate > 0");
  const int r = opt.dim;
  const auto K = static_cast<Eigen::Index>(tiers_.size());
  const auto d = static_cast<Eigen::Index>(std::max<size_t>(1, vec_.dim()));
  const auto T = static_cast<Eigen::Index>(tasks_.size()) + 1;  // last row: unknown task
  std::mt19937_64 rng(opt.seed);
  std::normal_distribution<double> nd(0.0, 0.1);
  auto init = [&](Eigen::MatrixXd& m, Eigen::Index rows, Eigen::Index cols) {
    m.resize(rows, cols);
    for (Eigen::Index j = 0; j < cols; ++j)
      for (Eigen::Index i = 0; i < rows; ++i) m(i, j) = nd(rng);
  };
  init(P_, r, d);
  init(V_, K, r);
  init(Tm_, T, r);
  auto rates = overall_rates(train);
  b_.resize(K);
  for (Eigen::Index k = 0; k < K; ++k) {
    double p = std::min(std::max(rates[static_cast<size_t>(k)], 1e-3), 1 - 1e-3);
    b_[k] = std::log(p / (1 - p));
  }
  SparseRows x = vec_.transform(texts_of(train.queries));
  const auto n = static_cast<Eigen::Index>(train.size());
  std::vector<int> task(static_cast<size_t>(n));
  for (Eigen::Index i = 0; i < n; ++i) {
    int t = tasks_.find(train.queries[static_cast<size_t>(i)].task);
    task[static_cast<size_t>(i)] = t;
  }
  // Adam state.
  Eigen::MatrixXd mP = Eigen::MatrixXd::Zero(r, d), vP = mP, mV = Eigen::MatrixXd::Zero(K, r),
                  vV = mV, mT = Eigen::MatrixXd::Zero(T, r), vT = mT;
  Eigen::VectorXd mb = Eigen::VectorXd::Zero(K), vb = mb;
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  double n_bce = 0, n_pair = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    const auto& row = train.acceptable[static_cast<size_t>(i)];
    for (Eigen::Index a = 0; a < K; ++a) {
      if (row[static_cast<size_t>(a)] < 0) continue;
      n_bce += 1;
      for (Eigen::Index c = 0; c < K; ++c)
        if (row[static_cast<size_t>(a)] == 1 && row[static_cast<size_t>(c)] == 0) n_pair += 1;
    }
  }
  n_bce = std::max(1.0, n_bce);
  n_pair = std::max(1.0, n_pair);
  for (int ep = 1; ep <= opt.epochs; ++ep) {
    // Forward: Q = X P^T + T[task]  (n x r); S = Q V^T + b  (n x K).
    Eigen::MatrixXd Q = x * P_.transpose();
    for (Eigen::Index i = 0; i < n; ++i) {
      int t = task[static_cast<size_t>(i)];
      Q.row(i) += Tm_.row(t >= 0 ? t : T - 1);
    }
    Eigen::MatrixXd S = Q * V_.transpose();
    S.rowwise() += b_.transpose();
    Eigen::MatrixXd G = Eigen::MatrixXd::Zero(n, K);  // dLoss/dS
    for (Eigen::Index i = 0; i < n; ++i) {
      const auto& row = train.acceptable[static_cast<size_t>(i)];
      for (Eigen::Index a = 0; a < K; ++a) {
        int8_t ya = row[static_cast<size_t>(a)];
        if (ya < 0) continue;
        G(i, a) += (sigmoid(S(i, a)) - ya) / n_bce;
        if (ya != 1 || opt.pairwise_weight == 0) continue;
        for (Eigen::Index c = 0; c < K; ++c) {
          if (row[static_cast<size_t>(c)] != 0) continue;
          // -log sigmoid(S_a - S_c)
          double g = -(1.0 - sigmoid(S(i, a) - S(i, c))) * opt.pairwise_weight / n_pair;
          G(i, a) += g;
          G(i, c) -= g;
        }
      }
    }
    Eigen::MatrixXd gV = G.transpose() * Q + opt.l2 * V_;       // K x r
    Eigen::MatrixXd gQ = G * V_;                                 // n x r
    Eigen::MatrixXd gP = (x.transpose() * gQ).transpose() + opt.l2 * P_;  // r x d
    Eigen::MatrixXd gT = opt.l2 * Tm_;
    for (Eigen::Index i = 0; i < n; ++i) {
      int t = task[static_cast<size_t>(i)];
      gT.row(t >= 0 ? t : T - 1) += gQ.row(i);
    }
    Eigen::VectorXd gb = G.colwise().sum().transpose();
    const double c1 = 1 - std::pow(b1, ep), c2 = 1 - std::pow(b2, ep);
    auto adam = [&](auto& w, auto& m, auto& v, const auto& g) {
      m = b1 * m + (1 - b1) * g;
      v = b2 * v + (1 - b2) * g.cwiseProduct(g);
      w.array() -= opt.learning_rate * (m.array() / c1) / ((v.array() / c2).sqrt() + eps);
    };
    adam(P_, mP, vP, gP);
    adam(V_, mV, vV, gV);
    adam(Tm_, mT, vT, gT);
    adam(b_, mb, vb, gb);
  }
}

MfRouter::MfRouter(std::vector<std::string> tiers, TfidfVectorizer vec, TaskIndex tasks,
                   Eigen::MatrixXd P, Eigen::MatrixXd V, Eigen::MatrixXd Tm, Eigen::VectorXd b)
    : tiers_(std::move(tiers)),
      vec_(std::move(vec)),
      tasks_(std::move(tasks)),
      P_(std::move(P)),
      V_(std::move(V)),
      Tm_(std::move(Tm)),
      b_(std::move(b)) {}

std::vector<RouterScores> MfRouter::score(const std::vector<RouteQuery>& batch) const {
  SparseRows x = vec_.transform(texts_of(batch));
  Eigen::MatrixXd Q = x * P_.transpose();
  const auto T = Tm_.rows();
  std::vector<RouterScores> out(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    int t = tasks_.find(batch[i].task);
    out[i].task_unseen = t < 0;
    Q.row(static_cast<Eigen::Index>(i)) += Tm_.row(t >= 0 ? t : T - 1);
  }
  Eigen::MatrixXd S = Q * V_.transpose();
  for (size_t i = 0; i < batch.size(); ++i) {
    for (Eigen::Index k = 0; k < S.cols(); ++k)
      out[i].p_acceptable.push_back(sigmoid(S(static_cast<Eigen::Index>(i), k) + b_[k]));
    fill_difficulty(out[i]);
  }
  return out;
}

}  // namespace detail

std::unique_ptr<RouterModel> make_random_router(std::vector<std::string> tiers, uint64_t seed) {
  return std::make_unique<detail::RandomRouter>(std::move(tiers), seed);
}
std::unique_ptr<RouterModel> make_always_tier_router(std::vector<std::string> tiers, int k) {
  return std::make_unique<detail::AlwaysRouter>(std::move(tiers), k);
}
std::unique_ptr<RouterModel> make_task_prior_router(const RoutingLabels& train) {
  return std::make_unique<detail::TaskPriorRouter>(train);
}
std::unique_ptr<RouterModel> make_tfidf_logreg_router(const RoutingLabels& train,
                                                      const LogRegOptions& options) {
  return std::make_unique<detail::LogRegRouter>(train, options);
}
std::unique_ptr<RouterModel> make_knn_router(const RoutingLabels& train,
                                             const KnnOptions& options, TextEmbedder embedder) {
  return std::make_unique<detail::KnnRouter>(train, options, std::move(embedder));
}
std::unique_ptr<RouterModel> make_mf_router(const RoutingLabels& train, const MfOptions& options) {
  return std::make_unique<detail::MfRouter>(train, options);
}

}  // namespace routenlp
