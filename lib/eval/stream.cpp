// Stream replay: a timestamped request stream (Poisson arrivals with bursts) through a conformal
// cascade with static thresholds and with online ACI recalibration fed by late, partial labels.
#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>
#include <random>
#include <set>

#include "eval/eval_internal.hpp"
#include "eval/router_cache.hpp"
#include "routenlp/calibration/threshold_table.hpp"
#include "routenlp/calibration/calibrator.hpp"
#include "routenlp/error.hpp"
#include "routenlp/calibration/online.hpp"

namespace routenlp {

using namespace detail;

namespace {

struct Outcome1 {
  int answer = -1;
  bool accepted = false;
  double cost = 0;
  std::vector<int> rejected;
};

Outcome1 run_cascade(const OutcomeTable& t, size_t row, const std::string& task,
                     const ThresholdTable& th, const std::function<double(size_t, int)>& u) {
  Outcome1 o;
  const int K = int(t.tiers);
  for (int k = 0; k < K; ++k) {
    double delta = k == K - 1 ? 0.0 : th.lookup(size_t(k), task, std::numeric_limits<double>::quiet_NaN());
    if (k < K - 1 && !(delta > -std::numeric_limits<double>::infinity())) continue;  // accepts nothing: not called
    o.cost += t.c(row, k);
    if (k == K - 1) {
      o.answer = k;
      break;
    }
    double uk = u(row, k);
    if (!std::isnan(uk) && uk <= delta) {
      o.answer = k;
      o.accepted = true;
      break;
    }
    o.rejected.push_back(k);
  }
  return o;
}

}  // namespace

StreamReport replay_stream(const Dataset& data, const PortfolioConfig& config,
                           const StreamOptions& opt) {
  if (!(opt.qps > 0) || !(opt.burst_factor >= 1) || !(opt.window_s > 0) ||
      !(opt.feedback_rate >= 0 && opt.feedback_rate <= 1) || !(opt.feedback_delay_s >= 0))
    throw Error(Status::invalid_argument,
                "stream: need qps > 0, burst factor >= 1, window > 0, feedback rate in [0,1], "
                "feedback delay >= 0");
  OutcomeTable table = build_outcome_table(data, config);
  std::set<std::string> holdout(opt.holdout_tasks.begin(), opt.holdout_tasks.end());
  std::vector<size_t> train, calib, test, ood;
  for (size_t r = 0; r < table.rows(); ++r) {
    const Query& q = data.queries[table.query[r]];
    if (holdout.count(q.task)) ood.push_back(r);
    else if (q.split == Split::train) train.push_back(r);
    else if (q.split == Split::calib) calib.push_back(r);
    else test.push_back(r);
  }
  if (test.empty() || calib.empty())
    throw Error(Status::invalid_argument, data.source + ": stream needs calib and test queries");
  StreamReport rep;
  rep.alpha = config.alpha;
  SystemContext ctx;
  ctx.data = &data;
  ctx.config = &config;
  ctx.table = &table;
  ctx.train = train;
  ctx.calib = calib;
  ctx.seed = opt.seed;
  const size_t K = table.tiers;
  bool need_router = false;
  for (size_t i = 0; i < table.rows() * K && !need_router; ++i)
    if (std::isnan(table.confidence[i]) && i % K + 1 < K) need_router = true;
  std::shared_ptr<const RouterModel> router;
  ScoreCache cache;
  if (need_router) {
    router = neural_router_for(ctx);  // throws not_supported without libtorch
    cache.model = router.get();
    std::vector<size_t> all = calib;
    all.insert(all.end(), test.begin(), test.end());
    all.insert(all.end(), ood.begin(), ood.end());
    cache.ensure(ctx, all);
  }
  auto u = [&](size_t row, int k) -> double {
    double c = table.conf(row, k);
    if (!std::isnan(c)) return 1.0 - c;
    if (!router) return std::numeric_limits<double>::quiet_NaN();
    return 1.0 - cache.scores.at(row).p_acceptable[size_t(k)];
  };
  // Offline calibration (guarantee mode) on the calib split.
  CalibrationData cd;
  for (const auto& tier : config.tiers) cd.tiers.push_back(tier.name);
  for (size_t r : calib) {
    cd.tasks.push_back(data.queries[table.query[r]].task);
    std::vector<double> uu(K), qq(K), cc(K);
    std::vector<uint8_t> bb(K);
    for (size_t k = 0; k < K; ++k) {
      uu[k] = u(r, int(k));
      if (k + 1 == K && std::isnan(uu[k])) uu[k] = 0.0;
      bb[k] = table.ok(r, int(k)) ? 0 : 1;
      qq[k] = table.q(r, int(k));
      cc[k] = table.c(r, int(k));
    }
    cd.u.push_back(uu);
    cd.bad.push_back(bb);
    cd.quality.push_back(qq);
    cd.cost.push_back(cc);
  }
  CalibrationOptions co;
  co.alpha = config.alpha;
  ConformalCalibrator cal(co);
  cal.calibrate(cd);
  auto static_table = cal.thresholds();
  OnlineOptions oo;
  oo.aci.alpha = config.alpha;
  oo.aci.gamma = opt.gamma;
  oo.aci.target = AciTarget::conditional;
  oo.audit_rate = opt.feedback_rate;
  OnlineRecalibrator online(static_table, oo);
  online.set_curves_from(cal);

  // Request order: in-distribution test queries shuffled; holdout tasks join halfway (drift).
  std::mt19937_64 rng(mix_seed(opt.seed, 0x57e4));
  std::vector<size_t> order = test;
  std::shuffle(order.begin(), order.end(), rng);
  if (!ood.empty()) {
    std::vector<size_t> second(order.begin() + long(order.size() / 2), order.end());
    second.insert(second.end(), ood.begin(), ood.end());
    std::shuffle(second.begin(), second.end(), rng);
    order.resize(order.size() / 2);
    order.insert(order.end(), second.begin(), second.end());
  }
  std::exponential_distribution<double> expo(1.0);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  using Label = std::pair<double, std::pair<std::string, bool>>;  // arrival, (id, acceptable)
  std::priority_queue<Label, std::vector<Label>, std::greater<Label>> labels;
  double t = 0;
  StreamWindow win;
  size_t w_acc_s = 0, w_bad_s = 0, w_acc_a = 0, w_bad_a = 0;
  size_t acc_s = 0, bad_s = 0, acc_a = 0, bad_a = 0;
  double cost_s = 0, cost_a = 0;
  double window_end = opt.window_s;
  auto flush_window = [&]() {
    win.t_end_s = window_end;
    win.violation_static = w_acc_s ? double(w_bad_s) / double(w_acc_s) : 0.0;
    win.violation_adaptive = w_acc_a ? double(w_bad_a) / double(w_acc_a) : 0.0;
    if (win.n) {
      win.cost_static /= double(win.n);
      win.cost_adaptive /= double(win.n);
    }
    double a = 0;
    size_t cells = 0;
    for (size_t k = 0; k + 1 < K; ++k) {
      for (const auto& col : static_table->columns) {
        try {
          auto st = online.cell_state(k, col);
          if (st.labels == 0) continue;
          a += st.alpha_t;
          ++cells;
        } catch (const Error&) {
        }
      }
    }
    win.alpha_adaptive = cells ? a / double(cells) : config.alpha;
    rep.windows.push_back(win);
    win = StreamWindow{};
    w_acc_s = w_bad_s = w_acc_a = w_bad_a = 0;
  };
  for (size_t i = 0; i < order.size(); ++i) {
    t = stream_next_arrival(t, opt, expo(rng));
    while (t > window_end) {
      flush_window();
      window_end += opt.window_s;
    }
    while (!labels.empty() && labels.top().first <= t) {
      online.record_outcome(labels.top().second.first, labels.top().second.second);
      ++rep.labels;
      labels.pop();
    }
    size_t r = order[i];
    const std::string& task = data.queries[table.query[r]].task;
    Outcome1 os = run_cascade(table, r, task, *static_table, u);
    auto snap = online.snapshot();
    Outcome1 oa = run_cascade(table, r, task, *snap, u);
    std::string id = data.queries[table.query[r]].id + "#" + std::to_string(i);
    DecisionNote note;
    note.task = task;
    note.rejected_tiers = oa.rejected;
    note.answer_tier = oa.answer;
    note.answer_accepted = oa.accepted;
    online.record_decision(id, note);
    if (unif(rng) < opt.feedback_rate)
      labels.push({t + opt.feedback_delay_s, {id, table.ok(r, oa.answer)}});
    ++win.n;
    ++rep.n;
    win.cost_static += os.cost;
    win.cost_adaptive += oa.cost;
    cost_s += os.cost;
    cost_a += oa.cost;
    if (os.accepted) {
      ++w_acc_s;
      ++acc_s;
      if (!table.ok(r, os.answer)) ++w_bad_s, ++bad_s;
    }
    if (oa.accepted) {
      ++w_acc_a;
      ++acc_a;
      if (!table.ok(r, oa.answer)) ++w_bad_a, ++bad_a;
    }
  }
  if (win.n) flush_window();
  rep.violation_static = acc_s ? double(bad_s) / double(acc_s) : 0.0;
  rep.violation_adaptive = acc_a ? double(bad_a) / double(acc_a) : 0.0;
  rep.cost_static = rep.n ? cost_s / double(rep.n) : 0.0;
  rep.cost_adaptive = rep.n ? cost_a / double(rep.n) : 0.0;
  rep.detail = std::string("conformal cascade (LTT, alpha ") + std::to_string(config.alpha) +
               "), u = " + (router ? "1 - confidence, else 1 - neural router p" : "1 - confidence") +
               "; ACI conditional, gamma " + std::to_string(opt.gamma) + "; " +
               std::to_string(test.size()) + " test queries" +
               (ood.empty() ? "" : " + " + std::to_string(ood.size()) + " holdout-task queries joining halfway");
  return rep;
}

}  // namespace routenlp
