// The engine's threshold snapshot (lookup by task column and alpha) and delta(alpha) curves.
#include "routenlp/calibration/threshold_table.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "common/hash.hpp"
#include "routenlp/error.hpp"

namespace routenlp {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

std::string task_domain(const std::string& task) {
  auto p = task.find('/');
  return p == std::string::npos ? std::string() : task.substr(0, p);
}

// ---- threshold table --------------------------------------------------------------------------

ThresholdTable ThresholdTable::escalate_all(std::vector<std::string> tier_names, double alpha) {
  ThresholdTable t;
  t.reset_shape(std::move(tier_names), {"*"}, {alpha}, 0);
  return t;
}

void ThresholdTable::reset_shape(std::vector<std::string> tier_names,
                                 std::vector<std::string> column_names,
                                 std::vector<double> alpha_values, size_t base) {
  tiers = std::move(tier_names);
  columns = std::move(column_names);
  alphas = std::move(alpha_values);
  base_alpha = base;
  delta.assign(alphas.size() * tiers.size() * columns.size(), -kInf);
  for (size_t a = 0; a < alphas.size(); ++a)
    for (size_t c = 0; c < columns.size() && !tiers.empty(); ++c)
      at(a, tiers.size() - 1, c) = kInf;
  start_tier.assign(columns.size(), 0);
  expected_cost.assign(tiers.size(), kNaN);
  skip_tau.assign(columns.size(), 0.0);
  u_before_call.assign(tiers.size(), 0);
  mix_column.assign(columns.size(), -1);
  mix_share.assign(columns.size(), 0.0);
  column_index.clear();
  for (size_t c = 0; c < columns.size(); ++c) column_index[columns[c]] = static_cast<int>(c);
}

int ThresholdTable::column_for_request(const std::string& task,
                                       const std::string& request_id) const {
  return mixed_column(column_for(task), request_id);
}

int ThresholdTable::mixed_column(int c, const std::string& request_id) const {
  if (c < 0 || static_cast<size_t>(c) >= mix_share.size()) return c;
  const double share = mix_share[static_cast<size_t>(c)];
  if (!(share > 0)) return c;
  const double x = static_cast<double>(detail::hash_id(request_id, 0x6d6978) >> 11) * 0x1.0p-53;
  return x < share ? mix_column[static_cast<size_t>(c)] : c;
}

int ThresholdTable::column_for(const std::string& task) const {
  auto it = column_index.find(task);
  if (it != column_index.end()) return it->second;
  auto d = task_domain(task);
  if (!d.empty()) {
    it = column_index.find(d + "/*");
    if (it != column_index.end()) return it->second;
  }
  it = column_index.find("*");
  return it == column_index.end() ? -1 : it->second;
}

size_t ThresholdTable::alpha_index(double alpha) const {
  if (std::isnan(alpha)) return base_alpha;
  size_t best = npos;
  for (size_t a = 0; a < alphas.size(); ++a)
    if (alphas[a] <= alpha + 1e-12) best = a;
  return best;
}

double ThresholdTable::lookup(size_t tier, const std::string& task, double alpha) const {
  if (tier >= tiers.size()) throw Error(Status::invalid_argument, "threshold lookup: bad tier");
  if (tier + 1 == tiers.size()) return kInf;
  int c = column_for(task);
  size_t a = alpha_index(alpha);
  if (c < 0 || a == npos) return -kInf;
  return at(a, tier, static_cast<size_t>(c));
}

// ---- delta(alpha) curves ------------------------------------------------------------------------

double ThresholdCurve::delta_for(double alpha) const noexcept {
  if (!(alpha > 0) || delta.empty()) return -kInf;
  double pos = alpha / step + 1e-9;
  if (pos < 1.0) return -kInf;
  size_t i = static_cast<size_t>(pos) - 1;
  return i >= delta.size() ? delta.back() : delta[i];
}

std::vector<double> ThresholdCurve::grid(double step, double max_alpha) {
  if (!(step > 0 && max_alpha >= step && max_alpha < 1))
    throw Error(Status::invalid_argument, "ThresholdCurve::grid: need 0 < step <= max_alpha < 1");
  std::vector<double> g;
  size_t n = static_cast<size_t>(std::floor(max_alpha / step + 1e-9));
  for (size_t i = 1; i <= n; ++i) g.push_back(static_cast<double>(i) * step);
  return g;
}

}  // namespace routenlp
