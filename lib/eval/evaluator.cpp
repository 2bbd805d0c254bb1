// Offline evaluator: outcome table, metrics, seeds, holdout tasks, sweeps, APGR/CPT.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>

#include "eval/eval_internal.hpp"
#include "eval/judge.hpp"
#include "routenlp/error.hpp"

namespace routenlp {

namespace detail {

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  double pos = p / 100.0 * double(v.size() - 1);
  size_t lo = size_t(std::floor(pos));
  size_t hi = std::min(lo + 1, v.size() - 1);
  double f = pos - double(lo);
  return v[lo] + (v[hi] - v[lo]) * f;
}

uint64_t mix_seed(uint64_t base, uint64_t salt) {
  uint64_t z = base + 0x9E3779B97F4A7C15ULL * (salt + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t hash_string(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

double effective_quality_target(const PortfolioConfig& config, const std::optional<double>& over) {
  if (over) return *over;
  if (config.quality_target) return *config.quality_target;
  return 1.0 - config.alpha;
}

double mean_quality(const OutcomeTable& t, const std::vector<size_t>& rows, int tier) {
  if (rows.empty()) return 0.0;
  double s = 0;
  for (size_t r : rows) s += t.q(r, tier);
  return s / double(rows.size());
}

double total_cost(const OutcomeTable& t, const std::vector<size_t>& rows, int tier) {
  double s = 0;
  for (size_t r : rows) s += t.c(r, tier);
  return s;
}

size_t pick_operating_point(const std::vector<double>& cost, const std::vector<double>& quality,
                            double target) {
  size_t best = SIZE_MAX;
  for (size_t i = 0; i < cost.size(); ++i)
    if (quality[i] >= target - 1e-12 && (best == SIZE_MAX || cost[i] < cost[best])) best = i;
  if (best != SIZE_MAX) return best;
  best = 0;
  for (size_t i = 1; i < cost.size(); ++i)
    if (quality[i] > quality[best] || (quality[i] == quality[best] && cost[i] < cost[best]))
      best = i;
  return best;
}

Decision decision_of_replay(const CascadeResult& res, int tiers) {
  if (res.status != Status::ok || res.tier < 0)
    throw Error(Status::internal, "cascade replay of '" + res.request_id + "' failed: " + res.error);
  Decision d;
  for (const auto& e : res.trace)
    if (e.decision == TraceDecision::accepted || e.decision == TraceDecision::escalated ||
        e.decision == TraceDecision::final_answer)
      d.called.push_back(e.tier);
  d.answer = res.tier;
  d.accepted_early = res.stop_reason == "accepted" && res.tier < tiers - 1;
  return d;
}

CalibrationOptions portfolio_calibration_options(const PortfolioConfig& config, bool quality_mode,
                                                 std::optional<double> over) {
  CalibrationOptions opt;
  opt.reference_tier = config.reference_tier_index();
  if (!quality_mode) {
    opt.alpha = over ? *over : config.alpha;
    // One source of alpha: the per-task alphas are calibrated too, and Pipeline::request asks
    // for them.
    std::set<double> extra;
    if (!over)
      for (const auto& kv : config.tasks)
        if (kv.second.alpha && std::fabs(*kv.second.alpha - opt.alpha) > 1e-12) extra.insert(*kv.second.alpha);
    opt.extra_alphas.assign(extra.begin(), extra.end());
    return opt;
  }
  opt.alpha = config.alpha;
  opt.goal = CalibrationGoal::quality_target;
  opt.quality_target = over ? *over : *config.quality_target;
  if (config.quality_allocation) opt.allocation = parse_allocation(*config.quality_allocation);
  if (!over)
    for (const auto& kv : config.tasks)
      if (kv.first != "default" && kv.second.quality_target)
        opt.task_quality_targets[kv.first] = *kv.second.quality_target;
  return opt;
}

Dataset partition_dataset(const SystemContext& ctx) {
  Dataset d;
  d.source = ctx.data->source;
  d.queries.reserve(ctx.train.size() + ctx.calib.size());
  for (int part = 0; part < 2; ++part) {
    for (size_t r : part == 0 ? ctx.train : ctx.calib) {
      Query q = ctx.query(r);
      q.split = part == 0 ? Split::train : Split::calib;
      q.split_given = true;
      d.queries.push_back(std::move(q));
    }
  }
  return d;
}

}  // namespace detail

using namespace detail;

System::~System() = default;
std::string System::support(const SystemContext&) const { return {}; }
size_t System::sweep_size() const { return 0; }
std::vector<Decision> System::decide_at(const SystemContext&, const std::vector<size_t>&, size_t) {
  throw Error(Status::invalid_argument, "system '" + name() + "' has no sweep");
}
std::string System::sweep_label(size_t point) const { return std::to_string(point); }
std::string System::detail() const { return {}; }

OutcomeTable build_outcome_table(const Dataset& data, const PortfolioConfig& config) {
  if (config.tiers.empty())
    throw Error(Status::invalid_argument, config.source + ": the config has no tiers");
  OutcomeTable t;
  t.tiers = config.tiers.size();
  std::vector<size_t> seen(t.tiers, 0);
  for (size_t i = 0; i < data.queries.size(); ++i) {
    const Query& q = data.queries[i];
    for (const auto& kv : q.outcomes)
      if (config.tier_index(kv.first) < 0)
        throw Error(Status::invalid_argument,
                    data.source + ": query '" + q.id + "': tier '" + kv.first +
                        "' is not in the config " + config.source);
    bool all = true;
    for (size_t k = 0; k < t.tiers; ++k) {
      if (q.outcomes.count(config.tiers[k].name)) ++seen[k];
      else all = false;
    }
    if (!all) {
      ++t.dropped;
      continue;
    }
    t.query.push_back(i);
    for (size_t k = 0; k < t.tiers; ++k) {
      const Outcome& o = q.outcomes.at(config.tiers[k].name);
      double qual = o.quality;
      if (!std::isfinite(qual) || qual < 0 || qual > 1)
        throw Error(Status::invalid_argument, data.source + ": query '" + q.id + "': tier '" +
                                                  config.tiers[k].name + "': quality out of [0,1]");
      t.quality.push_back(qual);
      t.cost.push_back(outcome_cost(config, int(k), o));
      t.latency_ms.push_back(outcome_latency_ms(config, int(k), o, q.id));
      t.confidence.push_back(o.confidence ? *o.confidence
                                          : std::numeric_limits<double>::quiet_NaN());
      t.acceptable.push_back(config.acceptable(q.task, qual) ? 1 : 0);
    }
  }
  for (size_t k = 0; k < t.tiers; ++k)
    if (seen[k] == 0)
      throw Error(Status::invalid_argument, config.source + ": tier '" + config.tiers[k].name +
                                                "' has no outcome in " + data.source);
  if (t.rows() == 0)
    throw Error(Status::invalid_argument,
                data.source + ": no query has an outcome for every tier of " + config.source);
  return t;
}

Metrics compute_metrics(const OutcomeTable& t, const PortfolioConfig& config,
                        const std::vector<size_t>& rows, const std::vector<Decision>& decisions) {
  if (rows.size() != decisions.size())
    throw Error(Status::internal, "compute_metrics: one decision per row expected");
  Metrics m;
  m.n = rows.size();
  if (rows.empty()) return m;
  const int ref = config.reference_tier_index();
  double qsum = 0, csum = 0, acc_ok = 0;
  size_t early = 0, early_bad = 0, sla_bad = 0;
  std::vector<double> lat;
  lat.reserve(rows.size());
  std::vector<double> answered(t.tiers, 0), calls(t.tiers, 0);
  for (size_t i = 0; i < rows.size(); ++i) {
    const Decision& d = decisions[i];
    size_t r = rows[i];
    if (d.answer < 0 || size_t(d.answer) >= t.tiers ||
        std::find(d.called.begin(), d.called.end(), d.answer) == d.called.end())
      throw Error(Status::internal, "a system returned an answer from a tier it did not call");
    double l = d.router_ms;
    std::vector<char> once(t.tiers, 0);
    for (int k : d.called) {
      if (k < 0 || size_t(k) >= t.tiers) throw Error(Status::internal, "tier index out of range");
      csum += t.c(r, k);
      l += t.lat(r, k);
      if (!once[size_t(k)]) calls[size_t(k)] += 1;
      once[size_t(k)] = 1;
    }
    lat.push_back(l);
    if (config.sla_ms > 0 && l > config.sla_ms) ++sla_bad;
    qsum += t.q(r, d.answer);
    bool ok = t.ok(r, d.answer);
    acc_ok += ok ? 1 : 0;
    answered[size_t(d.answer)] += 1;
    if (d.accepted_early) {
      ++early;
      if (!ok) ++early_bad;
    }
  }
  double n = double(rows.size());
  m.quality = qsum / n;
  m.cost_usd = csum;
  double ref_q = mean_quality(t, rows, ref);
  double ref_c = total_cost(t, rows, ref);
  m.quality_ratio = ref_q > 0 ? m.quality / ref_q : 0.0;
  m.cost_ratio = ref_c > 0 ? csum / ref_c : 0.0;
  m.latency_p50 = percentile(lat, 50);
  m.latency_p99 = percentile(lat, 99);
  if (config.sla_ms > 0) m.sla_violation_rate = double(sla_bad) / n;
  m.accepted_early = early;
  if (early > 0) m.accepted_bad_rate = double(early_bad) / double(early);
  m.acceptable_rate = acc_ok / n;
  for (size_t k = 0; k < t.tiers; ++k) {
    m.tier_share[config.tiers[k].name] = answered[k] / n;
    m.call_share[config.tiers[k].name] = calls[k] / n;
  }
  return m;
}

namespace {

std::vector<std::pair<double, double>> prepare_curve(std::vector<std::pair<double, double>> pts) {
  pts.emplace_back(0.0, 0.0);
  pts.emplace_back(1.0, 1.0);
  for (auto& p : pts) p.first = std::min(1.0, std::max(0.0, p.first));
  std::sort(pts.begin(), pts.end());
  // Several points at one share: keep their mean PGR so the curve is a function.
  std::vector<std::pair<double, double>> out;
  for (size_t i = 0; i < pts.size();) {
    size_t j = i;
    double s = 0;
    while (j < pts.size() && pts[j].first == pts[i].first) s += pts[j++].second;
    out.emplace_back(pts[i].first, s / double(j - i));
    i = j;
  }
  return out;
}

}  // namespace

double apgr(std::vector<std::pair<double, double>> share_pgr) {
  auto c = prepare_curve(std::move(share_pgr));
  double a = 0;
  for (size_t i = 1; i < c.size(); ++i)
    a += (c[i].first - c[i - 1].first) * (c[i].second + c[i - 1].second) / 2.0;
  return a;
}

double cpt(std::vector<std::pair<double, double>> share_pgr, double x) {
  auto c = prepare_curve(std::move(share_pgr));
  if (c.front().second >= x) return c.front().first;
  for (size_t i = 1; i < c.size(); ++i) {
    if (c[i].second >= x) {
      double y0 = c[i - 1].second, y1 = c[i].second;
      double f = y1 > y0 ? (x - y0) / (y1 - y0) : 0.0;
      return c[i - 1].first + f * (c[i].first - c[i - 1].first);
    }
  }
  return 1.0;
}

std::vector<std::string> system_names(const PortfolioConfig& config) {
  std::vector<std::string> v;
  for (const auto& t : config.tiers) v.push_back("always:" + t.name);
  for (const char* s : {"random", "oracle", "task-prior", "routellm", "routellm-sw",
                        "routellm-bert", "hybrid-llm", "hydra", "dacr", "frugalgpt", "automix",
                        "automix-threshold", "automix-conf", "routenlp-router", "routenlp-cascade",
                        "routenlp"})
    v.emplace_back(s);
  return v;
}

std::unique_ptr<System> make_system(const std::string& name, const PortfolioConfig& config) {
  if (name.rfind("always:", 0) == 0) {
    std::string tier = name.substr(7);
    int k = config.tier_index(tier);
    if (k < 0) {
      std::string known;
      for (const auto& t : config.tiers) known += (known.empty() ? "" : ", ") + t.name;
      throw Error(Status::invalid_argument, "system '" + name + "': tier '" + tier +
                                                "' is not in the config (tiers: " + known + ")");
    }
    return make_always_system(config, k);
  }
  if (name == "random") return make_random_system(config);
  if (name == "oracle") return make_oracle_system(config);
  if (name == "task-prior") return make_task_prior_system(config);
  if (name == "routellm") return make_routellm_system(config);
  if (name == "frugalgpt") return make_frugalgpt_system(config);
  if (name == "routellm-sw") return make_routellm_sw_system(config);
  if (name == "routellm-bert") return make_routellm_bert_system(config);
  if (name == "hybrid-llm") return make_hybrid_llm_system(config);
  if (name == "hydra") return make_hydra_system(config);
  if (name == "dacr") return make_dacr_system(config);
  if (name == "automix") return make_automix_pomdp_system(config);
  if (name == "automix-threshold") return make_automix_threshold_system(config);
  if (name == "automix-conf") return make_automix_conf_system(config);
  if (name == "routenlp-router") return make_routenlp_router_system(config);
  if (name == "routenlp-cascade") return make_routenlp_cascade_system(config);
  if (name == "routenlp") return make_routenlp_full_system(config);
  std::string known;
  for (const auto& s : system_names(config)) known += (known.empty() ? "" : ", ") + s;
  throw Error(Status::invalid_argument, "unknown system '" + name + "' (known: " + known + ")");
}

namespace {

struct Acc {
  std::vector<double> v;
  void add(double x) { v.push_back(x); }
  double mean() const {
    return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
  }
  double sd() const {
    if (v.size() < 2) return 0.0;
    double m = mean(), s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / double(v.size() - 1));
  }
};

// Mean and sd of a list of per-seed metrics.
void aggregate(const std::vector<Metrics>& runs, Metrics& mean, Metrics& sd) {
  auto field = [&](auto get, double& m, double& s) {
    Acc a;
    for (const auto& r : runs) a.add(get(r));
    m = a.mean();
    s = a.sd();
  };
  mean = Metrics{};
  sd = Metrics{};
  if (runs.empty()) return;
  mean.n = runs.front().n;
  field([](const Metrics& r) { return r.quality; }, mean.quality, sd.quality);
  field([](const Metrics& r) { return r.cost_usd; }, mean.cost_usd, sd.cost_usd);
  field([](const Metrics& r) { return r.quality_ratio; }, mean.quality_ratio, sd.quality_ratio);
  field([](const Metrics& r) { return r.cost_ratio; }, mean.cost_ratio, sd.cost_ratio);
  field([](const Metrics& r) { return r.latency_p50; }, mean.latency_p50, sd.latency_p50);
  field([](const Metrics& r) { return r.latency_p99; }, mean.latency_p99, sd.latency_p99);
  field([](const Metrics& r) { return r.acceptable_rate; }, mean.acceptable_rate,
        sd.acceptable_rate);
  if (runs.front().sla_violation_rate) {
    double m, s;
    field([](const Metrics& r) { return r.sla_violation_rate.value_or(0.0); }, m, s);
    mean.sla_violation_rate = m;
    sd.sla_violation_rate = s;
  }
  {
    Acc a, e;
    for (const auto& r : runs) {
      if (r.accepted_bad_rate) a.add(*r.accepted_bad_rate);
      e.add(double(r.accepted_early));
    }
    if (!a.v.empty()) {
      mean.accepted_bad_rate = a.mean();
      sd.accepted_bad_rate = a.sd();
    }
    mean.accepted_early = size_t(std::llround(e.mean()));
  }
  for (const auto& kv : runs.front().tier_share) {
    Acc a, c;
    for (const auto& r : runs) {
      a.add(r.tier_share.at(kv.first));
      c.add(r.call_share.at(kv.first));
    }
    mean.tier_share[kv.first] = a.mean();
    sd.tier_share[kv.first] = a.sd();
    mean.call_share[kv.first] = c.mean();
    sd.call_share[kv.first] = c.sd();
  }
}

std::map<std::string, TaskMetrics> per_task_metrics(const OutcomeTable& t, const Dataset& data,
                                                    const PortfolioConfig& config,
                                                    const std::vector<size_t>& rows,
                                                    const std::vector<Decision>& dec) {
  std::map<std::string, std::pair<std::vector<size_t>, std::vector<Decision>>> by;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto& e = by[data.queries[t.query[rows[i]]].task];
    e.first.push_back(rows[i]);
    e.second.push_back(dec[i]);
  }
  std::map<std::string, TaskMetrics> out;
  for (auto& kv : by) {
    Metrics m = compute_metrics(t, config, kv.second.first, kv.second.second);
    TaskMetrics tm;
    tm.n = m.n;
    tm.quality = m.quality;
    tm.cost_usd = m.cost_usd;
    tm.quality_ratio = m.quality_ratio;
    tm.cost_ratio = m.cost_ratio;
    out[kv.first] = tm;
  }
  return out;
}

void add_task_metrics(std::map<std::string, TaskMetrics>& sum,
                      const std::map<std::string, TaskMetrics>& one, double w) {
  for (const auto& kv : one) {
    auto& s = sum[kv.first];
    s.n = kv.second.n;
    s.quality += w * kv.second.quality;
    s.cost_usd += w * kv.second.cost_usd;
    s.quality_ratio += w * kv.second.quality_ratio;
    s.cost_ratio += w * kv.second.cost_ratio;
  }
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

EvalReport evaluate(const Dataset& data, const PortfolioConfig& config,
                    const EvalOptions& options) {
  std::vector<std::string> names = options.systems.empty() ? system_names(config) : options.systems;
  std::vector<std::unique_ptr<System>> systems;
  for (const auto& n : names) systems.push_back(make_system(n, config));  // validates all first
  return evaluate_systems(data, config, options, names, systems);
}

EvalReport evaluate_systems(const Dataset& data, const PortfolioConfig& config_in,
                            const EvalOptions& options, const std::vector<std::string>& names,
                            const std::vector<std::unique_ptr<System>>& systems) {
  // An explicit quality target puts every system (routenlp* included) in quality-target mode.
  PortfolioConfig config = config_in;
  if (options.quality_target) {
    if (!(*options.quality_target > 0 && *options.quality_target <= 1.5))
      throw Error(Status::invalid_argument, "quality target must be in (0, 1.5]");
    config.quality_target = *options.quality_target;
  }
  if (names.size() != systems.size())
    throw Error(Status::invalid_argument, "evaluate_systems: one name per system expected");
  if (options.seeds < 1 || options.seeds > 1000)
    throw Error(Status::invalid_argument, "seeds must be in [1, 1000]");
  OutcomeTable table = build_outcome_table(data, config);
  std::set<std::string> holdout(options.holdout_tasks.begin(), options.holdout_tasks.end());
  {
    auto tasks = data.task_names();
    std::set<std::string> known(tasks.begin(), tasks.end());
    for (const auto& h : holdout)
      if (!known.count(h))
        throw Error(Status::invalid_argument,
                    "holdout task '" + h + "' does not occur in " + data.source);
  }
  std::vector<size_t> train0, calib0, test, ood;
  for (size_t r = 0; r < table.rows(); ++r) {
    const Query& q = data.queries[table.query[r]];
    if (holdout.count(q.task)) {
      ood.push_back(r);
      continue;
    }
    if (options.every_row_test) test.push_back(r);
    else if (q.split == Split::train) train0.push_back(r);
    else if (q.split == Split::calib) calib0.push_back(r);
    else test.push_back(r);
  }
  if (options.every_row_test && options.seeds != 1)
    throw Error(Status::invalid_argument, "every_row_test: seeds must be 1 (nothing is refitted)");
  if (test.empty()) throw Error(Status::invalid_argument, data.source + ": no test queries");
  if (!options.every_row_test && (train0.empty() || calib0.empty()))
    throw Error(Status::invalid_argument, data.source + ": train and calib splits must be non-empty");

  EvalReport rep;
  rep.dataset = data.source;
  rep.config = config.source;
  rep.reference_tier = config.tiers[size_t(config.reference_tier_index())].name;
  for (const auto& t : config.tiers) rep.tiers.push_back(t.name);
  for (int s = 0; s < options.seeds; ++s) rep.seeds.push_back(s);
  rep.n = test.size();
  rep.n_ood = ood.size();
  rep.dropped = table.dropped;
  rep.quality_target = effective_quality_target(config, options.quality_target);
  rep.holdout_tasks = options.holdout_tasks;

  const bool two_tier = config.tiers.size() == 2;
  const double q_weak = mean_quality(table, test, 0), q_strong = mean_quality(table, test, 1 % int(config.tiers.size()));
  const bool pgr_defined = two_tier && std::fabs(q_strong - q_weak) > 1e-12;

  size_t total_steps = systems.size() * size_t(options.seeds), step = 0;
  double t_start = now_s();
  for (size_t si = 0; si < systems.size(); ++si) {
    System& sys = *systems[si];
    SystemReport sr;
    sr.system = names[si];
    std::vector<Metrics> runs, ood_runs;
    std::map<std::string, TaskMetrics> per_task, ood_per_task;
    Acc apgr_acc;
    std::map<std::string, Acc> cpt_acc;
    for (int seed = 0; seed < options.seeds; ++seed) {
      SystemContext ctx;
      ctx.data = &data;
      ctx.config = &config;
      ctx.table = &table;
      ctx.seed = uint64_t(seed);
      ctx.quality_target = rep.quality_target;
      ctx.progress = options.progress;
      ctx.router_config = options.router_config;
      if (seed == 0) {
        ctx.train = train0;
        ctx.calib = calib0;
      } else {
        std::vector<size_t> pool = train0;
        pool.insert(pool.end(), calib0.begin(), calib0.end());
        std::mt19937_64 rng(mix_seed(uint64_t(seed), 0x5eed));
        std::shuffle(pool.begin(), pool.end(), rng);
        ctx.train.assign(pool.begin(), pool.begin() + long(train0.size()));
        ctx.calib.assign(pool.begin() + long(train0.size()), pool.end());
      }
      if (seed == 0) {
        std::string why = sys.support(ctx);
        if (!why.empty()) {
          sr.status = why;
          break;
        }
      }
      try {
        double t0 = now_s();
        sys.fit(ctx);
        double t1 = now_s();
        std::vector<Decision> dec = sys.decide(ctx, test);
        sr.fit_seconds += t1 - t0;
        sr.decide_seconds += now_s() - t1;
        runs.push_back(compute_metrics(table, config, test, dec));
        add_task_metrics(per_task, per_task_metrics(table, data, config, test, dec),
                         1.0 / options.seeds);
        if (!ood.empty()) {
          std::vector<Decision> od = sys.decide(ctx, ood);
          ood_runs.push_back(compute_metrics(table, config, ood, od));
          add_task_metrics(ood_per_task, per_task_metrics(table, data, config, ood, od),
                           1.0 / options.seeds);
        }
        size_t pts = sys.sweep_size();
        if (pts > 0 && (pgr_defined || (options.sweep && seed == 0))) {
          std::vector<std::pair<double, double>> curve;
          for (size_t p = 0; p < pts; ++p) {
            std::vector<Decision> d = sys.decide_at(ctx, test, p);
            Metrics m = compute_metrics(table, config, test, d);
            double strong = two_tier ? m.call_share[config.tiers[1].name] : 0.0;
            if (pgr_defined) curve.emplace_back(strong, (m.quality - q_weak) / (q_strong - q_weak));
            if (seed == 0 && (options.sweep || two_tier)) {
              SweepPoint sp;
              sp.label = sys.sweep_label(p);
              sp.quality_ratio = m.quality_ratio;
              sp.cost_ratio = m.cost_ratio;
              sp.strong_share = strong;
              sp.accepted_bad_rate = m.accepted_bad_rate.value_or(-1.0);
              sr.sweep.push_back(sp);
            }
          }
          if (pgr_defined) {
            apgr_acc.add(apgr(curve));
            cpt_acc["50"].add(cpt(curve, 0.5));
            cpt_acc["80"].add(cpt(curve, 0.8));
          }
        }
      } catch (const Error& e) {
        if (e.code() == Status::not_supported) sr.status = std::string("unavailable: ") + e.what();
        else sr.status = std::string("error: ") + status_name(e.code()) + ": " + e.what();
        break;
      }
      ++step;
      if (options.progress) {
        Progress p;
        p.stage = "eval";
        p.done = step;
        p.total = total_steps;
        p.elapsed_s = now_s() - t_start;
        p.eta_s = step > 0 ? p.elapsed_s / double(step) * double(total_steps - step) : -1;
        p.detail = sr.system + " seed " + std::to_string(seed);
        if (!options.progress(p)) throw Error(Status::cancelled, "evaluation cancelled");
      }
    }
    if (sr.status == "ok") {
      aggregate(runs, sr.mean, sr.sd);
      for (const auto& m : runs) {
        sr.seed_quality_ratio.push_back(m.quality_ratio);
        sr.seed_cost_ratio.push_back(m.cost_ratio);
      }
      sr.per_task = per_task;
      if (!ood_runs.empty()) {
        Metrics m, s;
        aggregate(ood_runs, m, s);
        sr.ood = m;
        sr.ood_per_task = ood_per_task;
      }
      if (!apgr_acc.v.empty()) {
        sr.apgr = apgr_acc.mean();
        sr.apgr_sd = apgr_acc.sd();
        for (auto& kv : cpt_acc) {
          sr.cpt[kv.first] = kv.second.mean();
          sr.cpt_sd[kv.first] = kv.second.sd();
        }
      }
      sr.detail = sys.detail();
    } else {
      step += size_t(options.seeds) - runs.size();
    }
    rep.systems.push_back(std::move(sr));
  }
  judge_systems(rep);
  return rep;
}

}  // namespace routenlp
