// Online recalibration: ACI per cell, drift monitors, atomic threshold snapshots.
#include "routenlp/calibration/online.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/json_int.hpp"
#include "common/prometheus_text.hpp"
#include "common/hash.hpp"
#include "routenlp/error.hpp"

namespace routenlp {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();

using detail::hash_id;

// Exact text for a double (hex float; "inf", "-inf", "nan" as printf writes them).
std::string exact(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", x);
  return buf;
}

double exact_parse(const nlohmann::json& v, const char* what) {
  if (!v.is_string()) throw Error(Status::parse, std::string("online state: ") + what + ": expected a hex-float string");
  const std::string s = v.get<std::string>();
  char* end = nullptr;
  double x = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size())
    throw Error(Status::parse, std::string("online state: ") + what + ": '" + s + "' is not a number");
  return x;
}
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
  void alarm(uint64_t& counter, const char* kind, double unix_s) {
    ++counter;
    ++alarms;
    last_alarm = kind;
    last_alarm_labels = labels;
    last_alarm_unix_s = unix_s;
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
  DecisionNote note;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& p = *pending_;
    auto it = p.notes.find(request_id);
    if (it == p.notes.end()) return false;
    note = std::move(it->second);
    p.notes.erase(it);
  }
  apply_outcome(note, acceptable);
  return true;
}

bool OnlineRecalibrator::discard_decision(const std::string& request_id) {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_->notes.erase(request_id) > 0;
}

void OnlineRecalibrator::apply_outcome(const DecisionNote& note, bool acceptable,
                                       double event_unix_s) {
  const double when = std::isnan(event_unix_s)
                          ? std::chrono::duration<double>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count()
                          : event_unix_s;
  std::vector<DriftEvent> events;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto cur = std::atomic_load(&table_);
    int col = cur->column_for(note.task);
    if (col < 0) return;
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
          c.alarm(c.cusum_alarms, "cusum", when);
          events.push_back({"cusum", tier, cur->columns[static_cast<size_t>(col)],
                            options_.cusum_h, c.accepted_labels});
        }
        if (c.window.update(bad)) {
          c.alarm(c.window_alarms, "window", when);
          events.push_back({"window", tier, cur->columns[static_cast<size_t>(col)],
                            static_cast<double>(options_.window_alarm), c.accepted_labels});
        }
      }
      if (c.aci.alpha_t() <= 0) {
        if (++c.stall == options_.stall_labels) {
          c.alarm(c.stall_alarms, "aci_stall", when);
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

std::string OnlineRecalibrator::table_fingerprint() const {
  std::lock_guard<std::mutex> lock(mu_);
  auto t = std::atomic_load(&table_);
  // Shape, the calibrated thresholds (cells_ keep them: the live table moves), curves and the
  // options that drive the updates. Not the live deltas: they are the state itself.
  std::string b = "v1;";
  for (const auto& x : t->tiers) b += x + '\x1f';
  b += ';';
  for (const auto& x : t->columns) b += x + '\x1f';
  b += ';' + exact(t->alphas.empty() ? 0.0 : t->alphas[t->base_alpha]) + ';';
  const auto& a = options_.aci;
  b += exact(a.alpha) + ',' + exact(a.gamma) + ',' + exact(a.alpha_init) + ',' +
       std::to_string(static_cast<int>(a.target)) + ',' + exact(options_.cusum_p0) + ',' +
       exact(options_.cusum_p1) + ',' + exact(options_.cusum_h) + ',' + std::to_string(options_.window) +
       ',' + std::to_string(options_.window_alarm) + ',' + std::to_string(options_.stall_labels) + ';';
  for (const auto& c : cells_) {
    b += exact(c->static_delta) + (c->has_curve ? "c" : "n");
    if (c->has_curve) {
      b += exact(c->curve.step) + ':';
      for (double d : c->curve.delta) b += exact(d) + ',';
    }
    b += ';';
  }
  return detail::hex64(detail::fnv1a64(b));
}

std::string OnlineRecalibrator::state_json() const {
  const std::string fp = table_fingerprint();
  std::lock_guard<std::mutex> lock(mu_);
  auto t = std::atomic_load(&table_);
  const size_t C = t->columns.size();
  nlohmann::json cells = nlohmann::json::array();
  for (size_t i = 0; i < cells_.size(); ++i) {
    const Cell& c = *cells_[i];
    cells.push_back({{"alpha_t", exact(c.aci.alpha_t_)},
                     {"err_sum", exact(c.aci.err_sum_)},
                     {"updates", c.aci.updates_},
                     {"cusum", exact(c.cusum.s_)},
                     {"cusum_n", c.cusum.n_},
                     {"window_seen", c.window.seen_},
                     {"window_bad", c.window.bad_},
                     {"labels", c.labels},
                     {"accepted_labels", c.accepted_labels},
                     {"accepted_bad", c.accepted_bad},
                     {"alarms", c.alarms},
                     {"stall", c.stall},
                     {"cusum_alarms", c.cusum_alarms},
                     {"window_alarms", c.window_alarms},
                     {"stall_alarms", c.stall_alarms},
                     {"last_alarm", c.last_alarm ? c.last_alarm : ""},
                     {"last_alarm_labels", c.last_alarm_labels},
                     {"last_alarm_unix_s", exact(c.last_alarm_unix_s)},
                     {"delta", exact(t->at(t->base_alpha, i / C, i % C))}});
  }
  nlohmann::json j = {{"format", "routenlp-online-state"}, {"version", 1}, {"table", fp},
                      {"snapshots", published_}, {"cells", std::move(cells)}};
  return j.dump();
}

void OnlineRecalibrator::restore_state(const std::string& state) {
  nlohmann::json j = nlohmann::json::parse(state, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("format", "") != "routenlp-online-state")
    throw Error(Status::parse, "online state: not a routenlp online state (JSON object with format routenlp-online-state)");
  if (detail::json_int_or(j, "version", 0, "online state") != 1)
    throw Error(Status::parse, "online state: unsupported version");
  const std::string fp = table_fingerprint();
  const std::string theirs = j.value("table", "");
  if (theirs != fp)
    throw Error(Status::invalid_argument,
                "online state was written over another threshold table (fingerprint " + theirs +
                    ", this one " + fp + "): serve the same pipeline / calibration on every replica");
  const auto& cj = j["cells"];
  if (!cj.is_array() || cj.size() != cells_.size())
    throw Error(Status::parse, "online state: cells: expected " + std::to_string(cells_.size()) + " cells");
  auto u64 = [](const nlohmann::json& o, const char* k) -> uint64_t {
    auto it = o.find(k);
    if (it == o.end()) throw Error(Status::parse, std::string("online state: ") + k + ": missing");
    return detail::json_int<uint64_t>(*it, "online state", k);
  };
  const uint64_t snapshots = detail::json_int_or(j, "snapshots", uint64_t{0}, "online state");
  auto num = [](const nlohmann::json& o, const char* k) {
    auto it = o.find(k);
    if (it == o.end()) throw Error(Status::parse, std::string("online state: ") + k + ": missing");
    return exact_parse(*it, k);
  };
  static const char* kKinds[] = {"cusum", "window", "aci_stall"};
  // Parse everything first, so a bad cell changes nothing.
  struct Parsed {
    double alpha_t, err_sum, cusum, last_s, delta;
    uint64_t updates, cusum_n, seen, bad, labels, acc, acc_bad, alarms, stall, ca, wa, sa, last_labels;
    const char* last;
  };
  std::vector<Parsed> ps;
  for (const auto& o : cj) {
    if (!o.is_object()) throw Error(Status::parse, "online state: cells: expected objects");
    Parsed p{};
    p.alpha_t = num(o, "alpha_t");
    p.err_sum = num(o, "err_sum");
    p.cusum = num(o, "cusum");
    p.last_s = num(o, "last_alarm_unix_s");
    p.delta = num(o, "delta");
    p.updates = u64(o, "updates");
    p.cusum_n = u64(o, "cusum_n");
    p.seen = u64(o, "window_seen");
    p.bad = u64(o, "window_bad");
    p.labels = u64(o, "labels");
    p.acc = u64(o, "accepted_labels");
    p.acc_bad = u64(o, "accepted_bad");
    p.alarms = u64(o, "alarms");
    p.stall = u64(o, "stall");
    p.ca = u64(o, "cusum_alarms");
    p.wa = u64(o, "window_alarms");
    p.sa = u64(o, "stall_alarms");
    p.last_labels = u64(o, "last_alarm_labels");
    const std::string last = o.value("last_alarm", "");
    p.last = nullptr;
    for (const char* k : kKinds)
      if (last == k) p.last = k;
    if (!last.empty() && !p.last) throw Error(Status::parse, "online state: last_alarm: unknown kind '" + last + "'");
    ps.push_back(p);
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto cur = std::atomic_load(&table_);
  auto next = std::make_shared<ThresholdTable>(*cur);
  const size_t C = next->columns.size();
  for (size_t i = 0; i < ps.size(); ++i) {
    Cell& c = *cells_[i];
    const Parsed& p = ps[i];
    c.aci.alpha_t_ = p.alpha_t;
    c.aci.err_sum_ = p.err_sum;
    c.aci.updates_ = p.updates;
    c.cusum.s_ = p.cusum;
    c.cusum.n_ = p.cusum_n;
    c.window.seen_ = static_cast<size_t>(p.seen);
    c.window.bad_ = static_cast<size_t>(p.bad);
    c.labels = p.labels;
    c.accepted_labels = p.acc;
    c.accepted_bad = p.acc_bad;
    c.alarms = p.alarms;
    c.stall = p.stall;
    c.cusum_alarms = p.ca;
    c.window_alarms = p.wa;
    c.stall_alarms = p.sa;
    c.last_alarm = p.last;
    c.last_alarm_labels = p.last_labels;
    c.last_alarm_unix_s = p.last_s;
    next->at(next->base_alpha, i / C, i % C) = p.delta;
  }
  published_ = snapshots;
  std::atomic_store(&table_, std::shared_ptr<const ThresholdTable>(std::move(next)));
}

std::string OnlineRecalibrator::state_digest() const { return detail::hex64(detail::fnv1a64(state_json())); }

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
