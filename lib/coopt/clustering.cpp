// k-means++ with restarts, silhouette, k selection and the adjusted Rand index, on Eigen.
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "coopt/rng.hpp"
#include "routenlp/error.hpp"
#include "routenlp/coopt/failure_analyzer.hpp"

namespace routenlp {

namespace {

Eigen::MatrixXd to_matrix(const Embeddings& points, const char* where) {
  if (points.empty()) throw Error(Status::invalid_argument, std::string(where) + ": no points");
  const size_t d = points[0].size();
  if (d == 0) throw Error(Status::invalid_argument, std::string(where) + ": zero-dimensional points");
  Eigen::MatrixXd X(static_cast<Eigen::Index>(points.size()), static_cast<Eigen::Index>(d));
  for (size_t i = 0; i < points.size(); ++i) {
    if (points[i].size() != d)
      throw Error(Status::invalid_argument, std::string(where) + ": point " + std::to_string(i) +
                                                " has dimension " + std::to_string(points[i].size()) +
                                                ", expected " + std::to_string(d));
    for (size_t j = 0; j < d; ++j) {
      float v = points[i][j];
      if (!std::isfinite(v))
        throw Error(Status::invalid_argument, std::string(where) + ": point " + std::to_string(i) +
                                                  " component " + std::to_string(j) + " is not finite");
      X(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = v;
    }
  }
  return X;
}

struct Run {
  Eigen::MatrixXd C;
  std::vector<int> labels;
  double inertia = std::numeric_limits<double>::infinity();
  int iterations = 0;
};

// Squared distances of every row of X to every row of C (n x k).
Eigen::MatrixXd sq_dists(const Eigen::MatrixXd& X, const Eigen::VectorXd& xn, const Eigen::MatrixXd& C) {
  Eigen::VectorXd cn = C.rowwise().squaredNorm();
  Eigen::MatrixXd D = (-2.0 * X * C.transpose()).colwise() + xn;
  D.rowwise() += cn.transpose();
  return D.cwiseMax(0.0);
}

Run one_run(const Eigen::MatrixXd& X, const Eigen::VectorXd& xn, int k, const KMeansOptions& o,
            coopt::Rng& rng) {
  const Eigen::Index n = X.rows();
  Run r;
  r.C.resize(k, X.cols());
  // k-means++ seeding: first centre uniform, then proportional to D(x)^2.
  Eigen::Index first = static_cast<Eigen::Index>(rng.below(static_cast<uint64_t>(n)));
  r.C.row(0) = X.row(first);
  Eigen::VectorXd best = (X.rowwise() - X.row(first)).rowwise().squaredNorm();
  for (int c = 1; c < k; ++c) {
    double total = best.sum();
    Eigen::Index pick = 0;
    if (total <= 0.0) {
      pick = static_cast<Eigen::Index>(rng.below(static_cast<uint64_t>(n)));
    } else {
      double u = rng.uniform() * total, acc = 0.0;
      pick = n - 1;
      for (Eigen::Index i = 0; i < n; ++i) {
        acc += best(i);
        if (acc >= u && best(i) > 0.0) {
          pick = i;
          break;
        }
      }
    }
    r.C.row(c) = X.row(pick);
    best = best.cwiseMin((X.rowwise() - X.row(pick)).rowwise().squaredNorm());
  }
  // Lloyd iterations.
  r.labels.assign(static_cast<size_t>(n), 0);
  Eigen::VectorXd mind(n);
  for (int it = 0; it < std::max(1, o.max_iterations); ++it) {
    r.iterations = it + 1;
    Eigen::MatrixXd D = sq_dists(X, xn, r.C);
    for (Eigen::Index i = 0; i < n; ++i) {
      Eigen::Index j;
      mind(i) = D.row(i).minCoeff(&j);
      r.labels[static_cast<size_t>(i)] = static_cast<int>(j);
    }
    Eigen::MatrixXd S = Eigen::MatrixXd::Zero(k, X.cols());
    std::vector<int> count(static_cast<size_t>(k), 0);
    for (Eigen::Index i = 0; i < n; ++i) {
      S.row(r.labels[static_cast<size_t>(i)]) += X.row(i);
      ++count[static_cast<size_t>(r.labels[static_cast<size_t>(i)])];
    }
    Eigen::MatrixXd Cn = r.C;
    for (int c = 0; c < k; ++c) {
      if (count[static_cast<size_t>(c)] > 0) {
        Cn.row(c) = S.row(c) / count[static_cast<size_t>(c)];
      } else {
        // Empty cluster: move it to the point farthest from its centre.
        Eigen::Index far;
        mind.maxCoeff(&far);
        Cn.row(c) = X.row(far);
        mind(far) = 0.0;
      }
    }
    double shift = (Cn - r.C).squaredNorm();
    r.C = Cn;
    if (shift <= o.tolerance) break;
  }
  Eigen::MatrixXd D = sq_dists(X, xn, r.C);
  r.inertia = 0.0;
  for (Eigen::Index i = 0; i < n; ++i) {
    Eigen::Index j;
    r.inertia += D.row(i).minCoeff(&j);
    r.labels[static_cast<size_t>(i)] = static_cast<int>(j);
  }
  return r;
}

}  // namespace

KMeansResult kmeans(const Embeddings& points, const KMeansOptions& options) {
  Eigen::MatrixXd X = to_matrix(points, "kmeans");
  const int n = static_cast<int>(X.rows());
  if (options.k < 1 || options.k > n)
    throw Error(Status::invalid_argument, "kmeans: k=" + std::to_string(options.k) +
                                              " outside [1, " + std::to_string(n) + "]");
  Eigen::VectorXd xn = X.rowwise().squaredNorm();
  coopt::Rng rng(options.seed ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(options.k)));
  Run best;
  for (int r = 0; r < std::max(1, options.restarts); ++r) {
    Run run = one_run(X, xn, options.k, options, rng);
    if (run.inertia < best.inertia) best = std::move(run);
  }
  // Canonical label order: by first appearance, so equal partitions give equal labels.
  std::vector<int> remap(static_cast<size_t>(options.k), -1);
  int next = 0;
  for (int l : best.labels)
    if (remap[static_cast<size_t>(l)] < 0) remap[static_cast<size_t>(l)] = next++;
  for (int c = 0; c < options.k; ++c)
    if (remap[static_cast<size_t>(c)] < 0) remap[static_cast<size_t>(c)] = next++;
  KMeansResult out;
  out.labels.reserve(best.labels.size());
  for (int l : best.labels) out.labels.push_back(remap[static_cast<size_t>(l)]);
  out.centroids.assign(static_cast<size_t>(options.k), std::vector<double>(static_cast<size_t>(X.cols())));
  for (int c = 0; c < options.k; ++c)
    for (Eigen::Index j = 0; j < X.cols(); ++j)
      out.centroids[static_cast<size_t>(remap[static_cast<size_t>(c)])][static_cast<size_t>(j)] = best.C(c, j);
  out.inertia = best.inertia;
  out.iterations = best.iterations;
  return out;
}

double silhouette_score(const Embeddings& points, const std::vector<int>& labels, size_t max_points,
                        uint64_t seed) {
  Eigen::MatrixXd X = to_matrix(points, "silhouette_score");
  const size_t n = static_cast<size_t>(X.rows());
  if (labels.size() != n)
    throw Error(Status::invalid_argument, "silhouette_score: " + std::to_string(labels.size()) +
                                              " labels for " + std::to_string(n) + " points");
  std::map<int, int> ids;
  for (int l : labels) ids.emplace(l, static_cast<int>(ids.size()));
  const int k = static_cast<int>(ids.size());
  if (k < 2 || k >= static_cast<int>(n)) return 0.0;
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  if (max_points > 0 && n > max_points) {
    coopt::Rng rng(seed);
    for (size_t i = 0; i < max_points; ++i) std::swap(idx[i], idx[i + rng.below(n - i)]);
    idx.resize(max_points);
    std::sort(idx.begin(), idx.end());
  }
  const size_t m = idx.size();
  Eigen::MatrixXd S(static_cast<Eigen::Index>(m), X.cols());
  std::vector<int> lab(m);
  for (size_t i = 0; i < m; ++i) {
    S.row(static_cast<Eigen::Index>(i)) = X.row(static_cast<Eigen::Index>(idx[i]));
    lab[i] = ids[labels[idx[i]]];
  }
  Eigen::VectorXd sn = S.rowwise().squaredNorm();
  Eigen::MatrixXd D = ((-2.0 * S * S.transpose()).colwise() + sn).rowwise() + sn.transpose();
  D = D.cwiseMax(0.0).cwiseSqrt();
  std::vector<int> size(static_cast<size_t>(k), 0);
  for (int l : lab) ++size[static_cast<size_t>(l)];
  double total = 0.0;
  std::vector<double> sum(static_cast<size_t>(k));
  for (size_t i = 0; i < m; ++i) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (size_t j = 0; j < m; ++j) sum[static_cast<size_t>(lab[j])] += D(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j));
    const int own = lab[i];
    if (size[static_cast<size_t>(own)] <= 1) continue;  // singleton: s = 0
    double a = sum[static_cast<size_t>(own)] / (size[static_cast<size_t>(own)] - 1);
    double b = std::numeric_limits<double>::infinity();
    for (int c = 0; c < k; ++c)
      if (c != own && size[static_cast<size_t>(c)] > 0) b = std::min(b, sum[static_cast<size_t>(c)] / size[static_cast<size_t>(c)]);
    double den = std::max(a, b);
    total += den > 0.0 ? (b - a) / den : 0.0;
  }
  return total / static_cast<double>(m);
}

KSelection select_k(const Embeddings& points, int k_min, int k_max, const KMeansOptions& options) {
  const int n = static_cast<int>(points.size());
  if (n < 1) throw Error(Status::invalid_argument, "select_k: no points");
  if (k_min < 1 || k_max < k_min)
    throw Error(Status::invalid_argument, "select_k: bad k range [" + std::to_string(k_min) + ", " +
                                              std::to_string(k_max) + "]");
  KSelection sel;
  int hi = std::min(k_max, n - 1);
  int lo = std::max(2, k_min);
  if (hi < lo) {  // too few points for a silhouette: one cluster (or n if k_min forces it)
    KMeansOptions o = options;
    o.k = std::min(std::max(1, k_min), n);
    sel.best = kmeans(points, o);
    sel.best_k = o.k;
    return sel;
  }
  double best_s = -std::numeric_limits<double>::infinity();
  for (int k = lo; k <= hi; ++k) {
    KMeansOptions o = options;
    o.k = k;
    KMeansResult r = kmeans(points, o);
    double s = silhouette_score(points, r.labels, 1000, options.seed);
    sel.ks.push_back(k);
    sel.silhouettes.push_back(s);
    if (s > best_s + 1e-12) {
      best_s = s;
      sel.best_k = k;
      sel.best = std::move(r);
    }
  }
  return sel;
}

double adjusted_rand_index(const std::vector<int>& a, const std::vector<int>& b) {
  if (a.size() != b.size())
    throw Error(Status::invalid_argument, "adjusted_rand_index: labelings of different lengths (" +
                                              std::to_string(a.size()) + " vs " + std::to_string(b.size()) + ")");
  const double n = static_cast<double>(a.size());
  if (a.size() < 2) return 1.0;
  std::map<std::pair<int, int>, double> nij;
  std::map<int, double> ai, bj;
  for (size_t i = 0; i < a.size(); ++i) {
    nij[{a[i], b[i]}] += 1;
    ai[a[i]] += 1;
    bj[b[i]] += 1;
  }
  auto c2 = [](double x) { return x * (x - 1) / 2.0; };
  double sij = 0, sa = 0, sb = 0;
  for (auto& [key, v] : nij) sij += c2(v);
  for (auto& [key, v] : ai) sa += c2(v);
  for (auto& [key, v] : bj) sb += c2(v);
  double expected = sa * sb / c2(n);
  double maxi = 0.5 * (sa + sb);
  if (maxi == expected) return 1.0;  // both trivial partitions (all-one or all-singletons)
  return (sij - expected) / (maxi - expected);
}

}  // namespace routenlp
