// Online recalibration: ACI per cell, drift monitors, atomic threshold snapshots.
#include "routenlp/calibration/online.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>

#include "common/prometheus_text.hpp"
#include "common/hash.hpp"
#include "routenlp/error.hpp"

namespace routenlp {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();

using detail::hash_id;
}  // namespace

AciTracker::AciTracker(AciOptions options) : options_(options) {
  if (!(options_.alpha > 0 && options_.alpha < 1))
    throw Error(Status::invalid_argument, "AciOptions.alpha must be in (0,1)");
  if (!(options_.gamma > 0 && std::isfinite(options_.gamma)))
    throw Error(Status::invalid_argument, "AciOptions.gamma must be > 0");
  if (std::isnan(options_.alpha_init)) options_.alpha_init = options_.alpha;
  target_ = options_.target;
  alpha_ = options_.alpha;
  gamma_ = options_.gamma;
  alpha_t_ = options_.alpha_init;
}

double AciTracker::bound(uint64_t T, uint64_t delay) const noexcept {
  if (T == 0) return kInf;
  return alpha_ + (options_.alpha_init + static_cast<double>(delay + 1) * gamma_) /
                      (gamma_ * static_cast<double>(T));
}

BernoulliCusum::BernoulliCusum(double p0, double p1, double h) : h_(h) {
  if (!(p0 > 0 && p0 < p1 && p1 < 1 && h > 0))
    throw Error(Status::invalid_argument, "BernoulliCusum: need 0 < p0 < p1 < 1 and h > 0");
  up_ = std::log(p1 / p0);
  down_ = std::log((1 - p1) / (1 - p0));
}

WindowBinomialMonitor::WindowBinomialMonitor(size_t window, size_t threshold)
    : w_(window), thr_(threshold) {
  if (window == 0 || threshold == 0 || threshold > window)
    throw Error(Status::invalid_argument, "WindowBinomialMonitor: need 0 < threshold <= window");
}

bool WindowBinomialMonitor::update(bool bad) noexcept {
  bad_ += bad ? 1 : 0;
  if (++seen_ < w_) return false;
  bool alarm = bad_ >= thr_;
  seen_ = bad_ = 0;
  return alarm;
}

struct OnlineRecalibrator::Cell {
  AciTracker aci;
  BernoulliCusum cusum;
  WindowBinomialMonitor window;
  ThresholdCurve curve;
  bool has_curve = false;
  double static_delta = -kInf;  // calibrated delta (used when there is no curve)
  uint64_t labels = 0, accepted_labels = 0, accepted_bad = 0, alarms = 0, stall = 0;
  uint64_t cusum_alarms = 0, window_alarms = 0, stall_alarms = 0;
  const char* last_alarm = nullptr;
  uint64_t last_alarm_labels = 0;
  double last_alarm_unix_s = 0.0;
  void alarm(uint64_t& counter, const char* kind) {
    ++counter;
    ++alarms;
    last_alarm = kind;
    last_alarm_labels = labels;
    last_alarm_unix_s = std::chrono::duration<double>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  }
  Cell(const OnlineOptions& o)
      : aci(o.aci), cusum(o.cusum_p0, o.cusum_p1, o.cusum_h), window(o.window, o.window_alarm) {}
};

struct OnlineRecalibrator::Pending {
  std::unordered_map<std::string, DecisionNote> notes;
  std::deque<std::string> order;
};

OnlineRecalibrator::OnlineRecalibrator(std::shared_ptr<const ThresholdTable> initial,
                                       OnlineOptions options)
    : options_(std::move(options)), pending_(std::make_unique<Pending>()) {
  if (!initial) throw Error(Status::invalid_argument, "OnlineRecalibrator: no threshold table");
  if (!(options_.audit_rate >= 0 && options_.audit_rate <= 1))
    throw Error(Status::invalid_argument, "OnlineOptions.audit_rate must be in [0,1]");
  AciTracker check(options_.aci);  // validates
  (void)check;
  table_ = std::move(initial);
  const size_t n = table_->tiers.size() * table_->columns.size();
  for (size_t i = 0; i < n; ++i) {
    cells_.push_back(std::make_unique<Cell>(options_));
    cells_.back()->static_delta = table_->at(table_->base_alpha, i / table_->columns.size(),
                                             i % table_->columns.size());
  }
}

OnlineRecalibrator::~OnlineRecalibrator() = default;

std::shared_ptr<const ThresholdTable> OnlineRecalibrator::snapshot() const noexcept {
  return std::atomic_load(&table_);
}

bool OnlineRecalibrator::should_audit(const std::string& request_id) const noexcept {
  double x = static_cast<double>(hash_id(request_id, options_.audit_seed) >> 11) * 0x1.0p-53;
  return x < options_.audit_rate;
}

void OnlineRecalibrator::set_curve(size_t tier, const std::string& column, ThresholdCurve curve) {
  std::lock_guard<std::mutex> lock(mu_);
  auto t = std::atomic_load(&table_);
  auto it = t->column_index.find(column);
  if (tier >= t->tiers.size() || it == t->column_index.end())
    throw Error(Status::invalid_argument,
                "OnlineRecalibrator::set_curve: no cell (" + std::to_string(tier) + ", " +
                    column + ")");
  if (!(curve.step > 0) || curve.delta.empty())
    throw Error(Status::invalid_argument, "OnlineRecalibrator::set_curve: empty curve");
  Cell& c = *cells_[tier * t->columns.size() + static_cast<size_t>(it->second)];
  c.curve = std::move(curve);
  c.has_curve = true;
}

size_t OnlineRecalibrator::set_curves(const std::vector<CellCurve>& curves) {
  std::lock_guard<std::mutex> lock(mu_);
  auto t = std::atomic_load(&table_);
  const size_t C = t->columns.size();
  std::vector<size_t> at;
  at.reserve(curves.size());
  // Check every curve before installing any, so a mismatched file changes nothing.
  for (const auto& cc : curves) {
    auto it = t->column_index.find(cc.column);
    if (t->tiers.empty() || cc.tier >= t->tiers.size() - 1 || it == t->column_index.end())
      throw Error(Status::invalid_argument,
                  "OnlineRecalibrator::set_curves: the table has no non-final cell (" +
                      std::to_string(cc.tier) + ", " + cc.column + ")");
    if (!(cc.curve.step > 0) || cc.curve.delta.empty())
      throw Error(Status::invalid_argument,
                  "OnlineRecalibrator::set_curves: empty curve for (" + std::to_string(cc.tier) +
                      ", " + cc.column + ")");
    at.push_back(cc.tier * C + static_cast<size_t>(it->second));
  }
  for (size_t i = 0; i < curves.size(); ++i) {
    Cell& c = *cells_[at[i]];
    c.curve = curves[i].curve;
    c.has_curve = true;
  }
  return curves.size();
}

size_t OnlineRecalibrator::set_curves_from(const ConformalCalibrator& calibrator, double step,
                                           double max_alpha) {
  if (calibrator.calibrated() && !calibrator.result().curves.empty())
    return set_curves(calibrator.result().curves);
  // Quality-target plans are not indexed by alpha: an alpha curve would replace the plan's
  // thresholds at the first label. ACI and the monitors still run on those cells.
  if (calibrator.options().goal == CalibrationGoal::quality_target) return 0;
  auto t = snapshot();
  auto g = ThresholdCurve::grid(step, max_alpha);
  std::vector<CellCurve> curves;
  for (size_t k = 0; k + 1 < t->tiers.size(); ++k)
    for (const auto& col : t->columns) {
      CellCurve cc;
      cc.tier = k;
      cc.column = cc.source = col;
      cc.curve.step = step;
      cc.curve.delta = calibrator.curve(k, col, g);  // throws without the calibration data
      curves.push_back(std::move(cc));
    }
  return set_curves(curves);
}

void OnlineRecalibrator::record_decision(const std::string& request_id, DecisionNote note) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& p = *pending_;
  auto ins = p.notes.insert_or_assign(request_id, std::move(note));
  if (ins.second) p.order.push_back(request_id);
  while (p.notes.size() > options_.max_pending && !p.order.empty()) {
    p.notes.erase(p.order.front());
    p.order.pop_front();
  }
  // Drop order entries whose notes were already consumed.
  while (!p.order.empty() && !p.notes.count(p.order.front())) p.order.pop_front();
  if (p.order.size() > 2 * options_.max_pending + 16) {
    std::deque<std::string> live;
    for (auto& id : p.order)
      if (p.notes.count(id)) live.push_back(std::move(id));
    p.order.swap(live);
  }
}

bool OnlineRecalibrator::record_outcome(const std::string& request_id, bool acceptable) {
  std::vector<DriftEvent> events;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& p = *pending_;
    auto it = p.notes.find(request_id);
    if (it == p.notes.end()) return false;
    DecisionNote note = std::move(it->second);
    p.notes.erase(it);
    auto cur = std::atomic_load(&table_);
    int col = cur->column_for(note.task);
    if (col < 0) return true;
    const size_t C = cur->columns.size(), K = cur->tiers.size();
    std::shared_ptr<ThresholdTable> next;
    auto touch = [&](size_t tier, bool accepted, bool bad) {
      if (tier + 1 >= K) return;  // the last tier is not controlled
      Cell& c = *cells_[tier * C + static_cast<size_t>(col)];
      c.aci.update(accepted, bad);
      c.labels++;
      if (accepted) {
        c.accepted_labels++;
        c.accepted_bad += bad ? 1 : 0;
        if (c.cusum.update(bad)) {
          c.alarm(c.cusum_alarms, "cusum");
          events.push_back({"cusum", tier, cur->columns[static_cast<size_t>(col)],
                            options_.cusum_h, c.accepted_labels});
        }
        if (c.window.update(bad)) {
          c.alarm(c.window_alarms, "window");
          events.push_back({"window", tier, cur->columns[static_cast<size_t>(col)],
                            static_cast<double>(options_.window_alarm), c.accepted_labels});
        }
      }
      if (c.aci.alpha_t() <= 0) {
        if (++c.stall == options_.stall_labels) {
          c.alarm(c.stall_alarms, "aci_stall");
          events.push_back({"aci_stall", tier, cur->columns[static_cast<size_t>(col)],
                            c.aci.alpha_t(), c.labels});
        }
      } else {
        c.stall = 0;
      }
      double nd = c.has_curve ? c.curve.delta_for(c.aci.alpha_t())
                              : (c.aci.alpha_t() <= 0 ? -kInf : c.static_delta);
      double od = (next ? static_cast<const ThresholdTable&>(*next) : *cur)
                      .at(cur->base_alpha, tier, static_cast<size_t>(col));
      if (!(nd == od)) {
        if (!next) next = std::make_shared<ThresholdTable>(*cur);
        next->at(next->base_alpha, tier, static_cast<size_t>(col)) = nd;
      }
    };
    for (int t : note.rejected_tiers)
      if (t >= 0) touch(static_cast<size_t>(t), false, false);
    if (note.answer_tier >= 0 && note.answer_accepted)
      touch(static_cast<size_t>(note.answer_tier), true, !acceptable);
    if (next) {
      std::atomic_store(&table_, std::shared_ptr<const ThresholdTable>(std::move(next)));
      ++published_;
    }
  }
  if (options_.on_event)
    for (const auto& e : events) options_.on_event(e);
  return true;
}

OnlineRecalibrator::CellState OnlineRecalibrator::cell_state(size_t tier,
                                                             const std::string& column) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto t = std::atomic_load(&table_);
  auto it = t->column_index.find(column);
  if (tier >= t->tiers.size() || it == t->column_index.end())
    throw Error(Status::invalid_argument, "OnlineRecalibrator::cell_state: no such cell");
  const Cell& c = *cells_[tier * t->columns.size() + static_cast<size_t>(it->second)];
  CellState s;
  s.alpha_t = c.aci.alpha_t();
  s.delta = t->at(t->base_alpha, tier, static_cast<size_t>(it->second));
  s.cusum = c.cusum.statistic();
  s.labels = c.labels;
  s.accepted_labels = c.accepted_labels;
  s.accepted_bad = c.accepted_bad;
  s.alarms = c.alarms;
  return s;
}

std::vector<CellSummary> OnlineRecalibrator::cells() const {
  std::lock_guard<std::mutex> lock(mu_);
  auto t = std::atomic_load(&table_);
  const size_t C = t->columns.size();
  std::vector<uint8_t> hidden(C, 0);  // mixture partners: never a request's own column
  for (size_t c = 0; c < C && c < t->mix_column.size(); ++c)
    if (t->mix_column[c] >= 0) hidden[static_cast<size_t>(t->mix_column[c])] = 1;
  std::vector<CellSummary> out;
  out.reserve(t->tiers.empty() ? 0 : (t->tiers.size() - 1) * C);
  for (size_t k = 0; k + 1 < t->tiers.size(); ++k)
    for (size_t col = 0; col < C; ++col) {
      if (hidden[col]) continue;
      const Cell& c = *cells_[k * C + col];
      CellSummary s;
      s.tier = k;
      s.column = t->columns[col];
      s.alpha_t = c.aci.alpha_t();
      s.delta = t->at(t->base_alpha, k, col);
      s.calibrated_delta = c.static_delta;
      s.has_curve = c.has_curve;
      s.cusum = c.cusum.statistic();
      s.labels = c.labels;
      s.accepted_labels = c.accepted_labels;
      s.accepted_bad = c.accepted_bad;
      s.cusum_alarms = c.cusum_alarms;
      s.window_alarms = c.window_alarms;
      s.stall_alarms = c.stall_alarms;
      if (c.last_alarm) s.last_alarm = c.last_alarm;
      s.last_alarm_labels = c.last_alarm_labels;
      s.last_alarm_unix_s = c.last_alarm_unix_s;
      out.push_back(std::move(s));
    }
  return out;
}

size_t OnlineRecalibrator::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_->notes.size();
}

uint64_t OnlineRecalibrator::snapshots_published() const {
  std::lock_guard<std::mutex> lock(mu_);
  return published_;
}

std::string OnlineRecalibrator::metrics_prometheus() const {
  const auto cells = this->cells();
  std::string o;
  auto header = [&](const char* name, const char* type, const char* help) {
    o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  auto each = [&](const char* name, const std::string& extra, auto value) {
    for (const auto& c : cells)
      o += std::string(name) + "{tier=\"" + std::to_string(c.tier) + "\",column=\"" + detail::prometheus_label(c.column) +
           "\"" + extra + "} " + value(c) + "\n";
  };
  header("routenlp_online_alpha_t", "gauge", "ACI's current alpha per cell.");
  each("routenlp_online_alpha_t", "", [](const CellSummary& c) { return detail::prometheus_number(c.alpha_t); });
  header("routenlp_online_delta", "gauge", "Threshold in force per cell (moves along its calibration curve).");
  each("routenlp_online_delta", "", [](const CellSummary& c) { return detail::prometheus_number(c.delta); });
  header("routenlp_online_calibrated_delta", "gauge", "Threshold per cell before any feedback.");
  each("routenlp_online_calibrated_delta", "", [](const CellSummary& c) { return detail::prometheus_number(c.calibrated_delta); });
  header("routenlp_online_cusum", "gauge", "Bernoulli CUSUM statistic per cell.");
  each("routenlp_online_cusum", "", [](const CellSummary& c) { return detail::prometheus_number(c.cusum); });
  header("routenlp_online_labels_total", "counter", "Feedback labels per cell.");
  each("routenlp_online_labels_total", "", [](const CellSummary& c) { return std::to_string(c.labels); });
  header("routenlp_online_alarms_total", "counter", "Drift alarms per cell and monitor.");
  each("routenlp_online_alarms_total", ",kind=\"cusum\"", [](const CellSummary& c) { return std::to_string(c.cusum_alarms); });
  each("routenlp_online_alarms_total", ",kind=\"window\"", [](const CellSummary& c) { return std::to_string(c.window_alarms); });
  each("routenlp_online_alarms_total", ",kind=\"aci_stall\"", [](const CellSummary& c) { return std::to_string(c.stall_alarms); });
  return o;
}

}  // namespace routenlp
