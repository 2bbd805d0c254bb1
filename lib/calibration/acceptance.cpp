// Learned acceptance score: logistic regression per tier on the cascade's state at that tier.
// docs/conformal.md "Acceptance score".
#include "routenlp/calibration/acceptance.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/json_int.hpp"
#include "data/hash.hpp"
#include "routenlp/error.hpp"

namespace routenlp {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr size_t kBase = 10;  // features before the task indicators

double logit(double p) {
  p = std::min(std::max(p, 1e-4), 1.0 - 1e-4);
  return std::log(p / (1.0 - p));
}

// Feature vector of tier k's answer given the earlier answers (keys precomputed).
struct Earlier {
  std::string key;
  double confidence;
};

void features(double confidence, double router_p, const std::string& key,
              const std::vector<Earlier>& earlier, int task, size_t n_tasks, double* x) {
  std::fill(x, x + kBase + n_tasks, 0.0);
  x[0] = 1.0;
  const bool has_c = !std::isnan(confidence);
  x[1] = has_c ? logit(confidence) : 0.0;
  x[2] = has_c ? 0.0 : 1.0;
  const bool has_p = !std::isnan(router_p);
  x[3] = has_p ? logit(router_p) : 0.0;
  x[4] = has_p ? 0.0 : 1.0;
  if (!earlier.empty()) {
    x[5] = 1.0;
    double agree = 0, best_agree = -1, best_disagree = -1;
    for (const auto& e : earlier) {
      const bool same = !key.empty() && e.key == key;
      agree += same;
      double c = std::isnan(e.confidence) ? 0.5 : e.confidence;
      if (same) best_agree = std::max(best_agree, c);
      else best_disagree = std::max(best_disagree, c);
    }
    x[6] = agree / static_cast<double>(earlier.size());
    x[7] = !key.empty() && earlier.back().key == key ? 1.0 : 0.0;
    x[8] = best_agree >= 0 ? logit(best_agree) : 0.0;
    x[9] = best_disagree >= 0 ? logit(best_disagree) : 0.0;
  }
  if (task >= 0) x[kBase + static_cast<size_t>(task)] = 1.0;
}

double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-std::max(-30.0, std::min(30.0, z)))); }

// Ridge logistic regression by Newton steps; the intercept (column 0) is not penalised.
Eigen::VectorXd fit_logistic(const Eigen::MatrixXd& X, const Eigen::VectorXd& y, double l2) {
  const Eigen::Index d = X.cols();
  Eigen::VectorXd w = Eigen::VectorXd::Zero(d);
  Eigen::VectorXd pen = Eigen::VectorXd::Constant(d, l2);
  pen(0) = 1e-8;
  for (int it = 0; it < 30; ++it) {
    Eigen::VectorXd p = (X * w).unaryExpr([](double z) { return sigmoid(z); });
    Eigen::VectorXd s = (p.array() * (1.0 - p.array())).max(1e-9);
    Eigen::VectorXd g = X.transpose() * (p - y) + pen.cwiseProduct(w);
    Eigen::MatrixXd H = X.transpose() * s.asDiagonal() * X;
    H.diagonal() += pen;
    Eigen::VectorXd step = H.ldlt().solve(g);
    w -= step;
    if (step.norm() < 1e-8) break;
  }
  return w;
}

// Area under the ROC curve of scores for labels (ties count half); NaN when one class is empty.
double auc(const std::vector<double>& s, const std::vector<uint8_t>& y) {
  std::vector<size_t> idx(s.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return s[a] < s[b]; });
  double pos = 0, neg = 0, rank_sum = 0;
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j < idx.size() && s[idx[j]] == s[idx[i]]) ++j;
    const double mid = 0.5 * static_cast<double>(i + j - 1) + 1.0;
    for (size_t t = i; t < j; ++t)
      if (y[idx[t]]) {
        rank_sum += mid;
        ++pos;
      } else {
        ++neg;
      }
    i = j;
  }
  if (pos == 0 || neg == 0) return kNaN;
  return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

}  // namespace

std::string answer_key(const std::string& text) {
  if (text.size() > 40) {
    // Last number: digits with optional separators and one decimal part.
    size_t end = std::string::npos;
    for (size_t i = text.size(); i-- > 0;)
      if (std::isdigit(static_cast<unsigned char>(text[i]))) {
        end = i;
        break;
      }
    if (end != std::string::npos) {
      size_t b = end;
      while (b > 0 && (std::isdigit(static_cast<unsigned char>(text[b - 1])) || text[b - 1] == ',' ||
                       text[b - 1] == '.'))
        --b;
      std::string num;
      for (size_t i = b; i <= end; ++i)
        if (text[i] != ',') num += text[i];
      while (!num.empty() && num.front() == '.') num.erase(num.begin());
      if (b > 0 && text[b - 1] == '-') num = "-" + num;
      return "#" + num;
    }
  }
  std::string out, word;
  auto flush = [&] {
    if (!word.empty() && word != "a" && word != "an" && word != "the") {
      if (!out.empty()) out += ' ';
      out += word;
    }
    word.clear();
  };
  for (unsigned char c : text) {
    if (std::isalnum(c)) word += static_cast<char>(std::tolower(c));
    else if (c >= 0x80) word += static_cast<char>(c);  // keep non-ASCII bytes as they are
    else flush();
  }
  flush();
  return out;
}

void AcceptanceData::validate() const {
  const size_t K = tiers.size(), n = rows();
  if (K == 0) throw Error(Status::invalid_argument, "acceptance data: no tiers");
  auto check = [&](const auto& m, const char* name, bool required) {
    if (m.empty() && !required) return;
    if (m.size() != n)
      throw Error(Status::invalid_argument, std::string("acceptance data: ") + name + " has " +
                                                std::to_string(m.size()) + " rows, tasks has " +
                                                std::to_string(n));
    for (size_t r = 0; r < n; ++r)
      if (m[r].size() != K)
        throw Error(Status::invalid_argument, std::string("acceptance data: ") + name + "[" +
                                                  std::to_string(r) + "] has " +
                                                  std::to_string(m[r].size()) + " tiers, expected " +
                                                  std::to_string(K));
  };
  check(confidence, "confidence", true);
  check(answers, "answers", true);
  check(acceptable, "acceptable", true);
  check(router_p, "router_p", false);
  for (size_t r = 0; r < n; ++r)
    for (size_t k = 0; k < K; ++k)
      if (std::isinf(confidence[r][k]) || (!std::isnan(confidence[r][k]) &&
                                           (confidence[r][k] < 0 || confidence[r][k] > 1)))
        throw Error(Status::invalid_argument, "acceptance data: confidence[" + std::to_string(r) +
                                                  "][" + std::to_string(k) +
                                                  "] is not in [0,1]");
}

AcceptanceModel AcceptanceModel::fit(const AcceptanceData& data, const AcceptanceOptions& o) {
  data.validate();
  if (o.folds < 2) throw Error(Status::invalid_argument, "AcceptanceOptions.folds must be >= 2");
  if (!(o.l2 >= 0)) throw Error(Status::invalid_argument, "AcceptanceOptions.l2 must be >= 0");
  AcceptanceModel m;
  m.tiers_ = data.tiers;
  const size_t K = data.tiers.size(), n = data.rows();
  for (const auto& t : data.tasks)
    if (std::find(m.tasks_.begin(), m.tasks_.end(), t) == m.tasks_.end()) m.tasks_.push_back(t);
  std::sort(m.tasks_.begin(), m.tasks_.end());
  const size_t T = m.tasks_.size(), D = kBase + T;
  std::vector<int> task_of(n);
  for (size_t r = 0; r < n; ++r)
    task_of[r] = static_cast<int>(std::lower_bound(m.tasks_.begin(), m.tasks_.end(),
                                                   data.tasks[r]) - m.tasks_.begin());
  std::vector<std::vector<std::string>> keys(n, std::vector<std::string>(K));
  for (size_t r = 0; r < n; ++r)
    for (size_t k = 0; k < K; ++k) keys[r][k] = answer_key(data.answers[r][k]);
  std::vector<size_t> fold(n);
  for (size_t r = 0; r < n; ++r) fold[r] = detail::splitmix64(o.seed ^ (r * 0x9e3779b97f4a7c15ULL)) % o.folds;

  m.weights_.assign(K, {});
  m.report_.clear();
  for (size_t k = 0; k + 1 < K; ++k) {
    AcceptanceTierReport rep;
    rep.tier = static_cast<int>(k);
    // Examples: rows with a confidence at k, once per start tier s <= k.
    std::vector<std::vector<double>> X;
    std::vector<uint8_t> y;
    std::vector<size_t> row_of;
    std::vector<double> raw;
    std::vector<double> x(D);
    for (size_t r = 0; r < n; ++r) {
      const double c = data.confidence[r][k];
      if (std::isnan(c)) continue;
      const double p = data.router_p.empty() ? kNaN : data.router_p[r][k];
      for (size_t s = 0; s <= k; ++s) {
        std::vector<Earlier> e;
        for (size_t j = s; j < k; ++j) e.push_back({keys[r][j], data.confidence[r][j]});
        features(c, p, keys[r][k], e, task_of[r], T, x.data());
        X.push_back(x);
        y.push_back(data.acceptable[r][k]);
        row_of.push_back(r);
        raw.push_back(c);
      }
    }
    rep.n = X.size();
    if (X.size() < 50) {
      m.report_.push_back(rep);
      continue;
    }
    auto to_matrix = [&](const std::vector<size_t>& idx, Eigen::MatrixXd& A, Eigen::VectorXd& b) {
      A.resize(static_cast<Eigen::Index>(idx.size()), static_cast<Eigen::Index>(D));
      b.resize(static_cast<Eigen::Index>(idx.size()));
      for (size_t i = 0; i < idx.size(); ++i) {
        for (size_t j = 0; j < D; ++j) A(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = X[idx[i]][j];
        b(static_cast<Eigen::Index>(i)) = y[idx[i]];
      }
    };
    // Out-of-fold scores decide whether the model beats the raw confidence.
    std::vector<double> oof(X.size(), 0.0);
    for (size_t f = 0; f < o.folds; ++f) {
      std::vector<size_t> tr, te;
      for (size_t i = 0; i < X.size(); ++i) (fold[row_of[i]] == f ? te : tr).push_back(i);
      if (tr.empty() || te.empty()) continue;
      Eigen::MatrixXd A;
      Eigen::VectorXd b;
      to_matrix(tr, A, b);
      Eigen::VectorXd w = fit_logistic(A, b, o.l2);
      for (size_t i : te) {
        double z = 0;
        for (size_t j = 0; j < D; ++j) z += w(static_cast<Eigen::Index>(j)) * X[i][j];
        oof[i] = z;
      }
    }
    rep.auc_confidence = auc(raw, y);
    rep.auc_model = auc(oof, y);
    rep.used = !std::isnan(rep.auc_model) && !std::isnan(rep.auc_confidence) &&
               rep.auc_model >= rep.auc_confidence + o.min_auc_gain;
    if (rep.used) {
      std::vector<size_t> all(X.size());
      for (size_t i = 0; i < all.size(); ++i) all[i] = i;
      Eigen::MatrixXd A;
      Eigen::VectorXd b;
      to_matrix(all, A, b);
      Eigen::VectorXd w = fit_logistic(A, b, o.l2);
      m.weights_[k].assign(w.data(), w.data() + w.size());
    }
    m.report_.push_back(rep);
  }
  return m;
}

bool AcceptanceModel::used(int tier) const {
  return tier >= 0 && static_cast<size_t>(tier) < weights_.size() &&
         !weights_[static_cast<size_t>(tier)].empty();
}

double AcceptanceModel::p_acceptable(int tier, const std::string& task, double confidence,
                                     double router_p, const std::string& answer,
                                     const std::vector<EarlierAnswer>& earlier) const {
  if (!used(tier)) return kNaN;
  const auto& w = weights_[static_cast<size_t>(tier)];
  const size_t T = tasks_.size();
  auto it = std::lower_bound(tasks_.begin(), tasks_.end(), task);
  const int t = it != tasks_.end() && *it == task ? static_cast<int>(it - tasks_.begin()) : -1;
  std::vector<Earlier> e;
  for (const auto& a : earlier) e.push_back({answer_key(a.text), a.confidence});
  std::vector<double> x(kBase + T);
  features(confidence, router_p, answer_key(answer), e, t, T, x.data());
  double z = 0;
  for (size_t j = 0; j < x.size(); ++j) z += w[j] * x[j];
  if (t < 0 && T > 0) {  // unseen task: the mean task effect
    double mean = 0;
    for (size_t j = 0; j < T; ++j) mean += w[kBase + j];
    z += mean / static_cast<double>(T);
  }
  return sigmoid(z);
}

std::string AcceptanceModel::to_json() const {
  nlohmann::json j;
  j["format"] = "routenlp-acceptance";
  j["format_version"] = 1;
  j["tiers"] = tiers_;
  j["tasks"] = tasks_;
  j["weights"] = weights_;
  nlohmann::json rep = nlohmann::json::array();
  for (const auto& r : report_)
    rep.push_back({{"tier", r.tier},
                   {"n", r.n},
                   {"auc_confidence", std::isnan(r.auc_confidence) ? nlohmann::json() : nlohmann::json(r.auc_confidence)},
                   {"auc_model", std::isnan(r.auc_model) ? nlohmann::json() : nlohmann::json(r.auc_model)},
                   {"used", r.used}});
  j["report"] = rep;
  return j.dump(1);
}

AcceptanceModel AcceptanceModel::from_json(const std::string& text, const std::string& source) {
  AcceptanceModel m;
  try {
    auto j = nlohmann::json::parse(text);
    if (j.value("format", std::string()) != "routenlp-acceptance")
      throw Error(Status::parse, source + ": format: not a routenlp acceptance model");
    if (detail::json_int_or(j, "format_version", 0, source) != 1)
      throw Error(Status::parse, source + ": format_version: unsupported");
    m.tiers_ = j.at("tiers").get<std::vector<std::string>>();
    m.tasks_ = j.at("tasks").get<std::vector<std::string>>();
    if (!std::is_sorted(m.tasks_.begin(), m.tasks_.end()))
      throw Error(Status::parse, source + ": tasks: not sorted");
    m.weights_ = j.at("weights").get<std::vector<std::vector<double>>>();
    if (m.weights_.size() != m.tiers_.size())
      throw Error(Status::parse, source + ": weights: expected one entry per tier");
    for (size_t k = 0; k < m.weights_.size(); ++k) {
      const auto& w = m.weights_[k];
      if (!w.empty() && w.size() != kBase + m.tasks_.size())
        throw Error(Status::parse, source + ": weights[" + std::to_string(k) + "]: expected " +
                                       std::to_string(kBase + m.tasks_.size()) + " values");
      for (double v : w)
        if (!std::isfinite(v))
          throw Error(Status::parse, source + ": weights[" + std::to_string(k) + "]: not finite");
    }
    size_t report_i = 0;
    for (const auto& r : j.value("report", nlohmann::json::array())) {
      const std::string at = source + ": report[" + std::to_string(report_i++) + "]";
      AcceptanceTierReport rep;
      rep.tier = detail::json_int_or(r, "tier", 0, at);
      rep.n = detail::json_int_or(r, "n", size_t{0}, at);
      rep.auc_confidence = r.contains("auc_confidence") && r.at("auc_confidence").is_number()
                               ? r.at("auc_confidence").get<double>() : kNaN;
      rep.auc_model = r.contains("auc_model") && r.at("auc_model").is_number()
                          ? r.at("auc_model").get<double>() : kNaN;
      rep.used = r.value("used", false);
      m.report_.push_back(rep);
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(Status::parse, source + ": acceptance model: " + e.what());
  }
  return m;
}

}  // namespace routenlp
