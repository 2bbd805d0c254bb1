// Evaluation report: JSON (contract of docs/dataset-format.md "Evaluation report") and a table.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/atomic_file.hpp"
#include "eval/eval_internal.hpp"
#include "eval/judge.hpp"
#include "routenlp/error.hpp"

namespace routenlp {

namespace {

using json = nlohmann::ordered_json;

double r6(double x) { return std::isfinite(x) ? std::round(x * 1e6) / 1e6 : 0.0; }

json opt(const std::optional<double>& v) { return v ? json(r6(*v)) : json(nullptr); }

json shares(const std::map<std::string, double>& m) {
  json j = json::object();
  for (const auto& kv : m) j[kv.first] = r6(kv.second);
  return j;
}

json task_json(const std::map<std::string, TaskMetrics>& m) {
  json j = json::object();
  for (const auto& kv : m)
    j[kv.first] = {{"quality_ratio", r6(kv.second.quality_ratio)},
                   {"cost_ratio", r6(kv.second.cost_ratio)},
                   {"n", kv.second.n},
                   {"quality", r6(kv.second.quality)},
                   {"cost_usd", r6(kv.second.cost_usd)}};
  return j;
}

void metrics_json(json& j, const Metrics& m, const Metrics* sd) {
  j["quality_ratio"] = r6(m.quality_ratio);
  if (sd) j["quality_ratio_std"] = r6(sd->quality_ratio);
  j["cost_ratio"] = r6(m.cost_ratio);
  if (sd) j["cost_ratio_std"] = r6(sd->cost_ratio);
  j["quality"] = r6(m.quality);
  if (sd) j["quality_std"] = r6(sd->quality);
  j["cost_usd"] = r6(m.cost_usd);
  if (sd) j["cost_usd_std"] = r6(sd->cost_usd);
  j["latency_ms"] = {{"p50", r6(m.latency_p50)}, {"p99", r6(m.latency_p99)}};
  if (sd) j["latency_ms_std"] = {{"p50", r6(sd->latency_p50)}, {"p99", r6(sd->latency_p99)}};
  j["sla_violation_rate"] = opt(m.sla_violation_rate);
  if (sd) j["sla_violation_rate_std"] = opt(sd->sla_violation_rate);
  j["accepted_bad_rate"] = opt(m.accepted_bad_rate);
  if (sd) j["accepted_bad_rate_std"] = opt(sd->accepted_bad_rate);
  j["accepted_early"] = m.accepted_early;
  j["acceptable_rate"] = r6(m.acceptable_rate);
  if (sd) j["acceptable_rate_std"] = r6(sd->acceptable_rate);
  j["tier_share"] = shares(m.tier_share);
  if (sd) j["tier_share_std"] = shares(sd->tier_share);
  j["call_share"] = shares(m.call_share);
}

// Finite sweep points as (cost ratio, quality ratio), sorted by cost then quality: the order
// in which the plot joins them.
std::vector<std::pair<double, double>> frontier_points(const std::vector<SweepPoint>& sweep) {
  std::vector<std::pair<double, double>> pts;
  for (const auto& p : sweep)
    if (std::isfinite(p.cost_ratio) && std::isfinite(p.quality_ratio))
      pts.emplace_back(p.cost_ratio, p.quality_ratio);
  std::sort(pts.begin(), pts.end());
  return pts;
}

json seed_list(const std::vector<double>& v) {
  json j = json::array();
  for (double x : v) j.push_back(r6(x));
  return j;
}

}  // namespace

namespace detail {

std::optional<double> cost_at_target(const std::vector<SweepPoint>& sweep, double target) {
  auto pts = frontier_points(sweep);
  const double eps = 1e-12;  // a point exactly at the target reaches it despite rounding
  for (size_t i = 0; i < pts.size(); ++i) {
    if (pts[i].second < target - eps) continue;
    if (i == 0) return pts[0].first;
    // pts[i-1] is below the target: interpolate on the segment that crosses it.
    double c0 = pts[i - 1].first, q0 = pts[i - 1].second;
    double c1 = pts[i].first, q1 = pts[i].second;
    double f = std::min(1.0, std::max(0.0, (target - q0) / (q1 - q0)));
    return c0 + f * (c1 - c0);
  }
  return std::nullopt;
}

std::optional<double> frontier_area(const std::vector<SweepPoint>& sweep) {
  auto pts = frontier_points(sweep);
  if (pts.empty()) return std::nullopt;
  double area = 0, best = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < pts.size(); ++i) {
    double from = std::max(0.0, pts[i].first);
    if (from >= 1.0) break;
    best = std::max(best, pts[i].second);
    // The running best holds from this point's cost up to the next point's (or budget 1).
    double to = i + 1 < pts.size() ? std::min(1.0, std::max(0.0, pts[i + 1].first)) : 1.0;
    area += best * (to - from);
  }
  return area;
}

void judge_systems(EvalReport& report) {
  const double bar = report.quality_target - report.target_tolerance;
  for (auto& s : report.systems) {
    s.seeds_met = 0;
    s.met_target = false;
    s.cost_at_target.reset();
    s.frontier_area.reset();
    if (s.status != "ok") continue;
    for (double q : s.seed_quality_ratio)
      if (q >= bar) ++s.seeds_met;
    s.met_target = s.mean.quality_ratio >= bar;
    s.cost_at_target = cost_at_target(s.sweep, report.quality_target);
    s.frontier_area = frontier_area(s.sweep);
  }
}

const SystemReport* cheapest_meeting_target(const EvalReport& report) {
  const SystemReport* best = nullptr;
  for (const auto& s : report.systems) {
    if (s.status != "ok" || !s.met_target || s.system == "oracle") continue;
    if (!best || s.mean.cost_ratio < best->mean.cost_ratio ||
        (s.mean.cost_ratio == best->mean.cost_ratio &&
         s.mean.quality_ratio > best->mean.quality_ratio))
      best = &s;
  }
  return best;
}

}  // namespace detail

namespace {

// "yes 5/5" / "no 2/5": the verdict on the mean and the seeds that met the target on their own.
std::string verdict(const SystemReport& s) {
  return std::string(s.met_target ? "yes " : "no ") + std::to_string(s.seeds_met) + "/" +
         std::to_string(s.seed_quality_ratio.size());
}

std::string cheapest_line(const EvalReport& r) {
  char buf[512];
  const SystemReport* c = detail::cheapest_meeting_target(r);
  if (c)
    std::snprintf(buf, sizeof buf,
                  "cheapest system meeting the target %.3f: %s (cost ratio %.3f, quality ratio "
                  "%.3f, %d/%zu seeds)\n",
                  r.quality_target, c->system.c_str(), c->mean.cost_ratio, c->mean.quality_ratio,
                  c->seeds_met, c->seed_quality_ratio.size());
  else
    std::snprintf(buf, sizeof buf,
                  "no system met the quality target %.3f (mean quality ratio >= %.3f; oracle "
                  "excluded)\n",
                  r.quality_target, r.quality_target - r.target_tolerance);
  return buf;
}

}  // namespace

std::string EvalReport::to_json() const {
  json root;
  root["dataset"] = dataset;
  root["config"] = config;
  root["reference_tier"] = reference_tier;
  root["tiers"] = tiers;
  root["seeds"] = seeds;
  root["n"] = n;
  root["n_ood"] = n_ood;
  root["dropped"] = dropped;
  root["quality_target"] = r6(quality_target);
  root["target_tolerance"] = r6(target_tolerance);
  root["holdout_tasks"] = holdout_tasks;
  if (const SystemReport* c = detail::cheapest_meeting_target(*this))
    root["cheapest_meeting_target"] = {{"system", c->system},
                                       {"cost_ratio", r6(c->mean.cost_ratio)},
                                       {"quality_ratio", r6(c->mean.quality_ratio)},
                                       {"seeds_met", c->seeds_met},
                                       {"seeds", c->seed_quality_ratio.size()}};
  else
    root["cheapest_meeting_target"] = nullptr;
  json arr = json::array();
  for (const auto& s : systems) {
    json j;
    j["system"] = s.system;
    j["status"] = s.status;
    j["dataset"] = dataset;
    j["n"] = n;
    j["seeds"] = seeds;
    j["reference_tier"] = reference_tier;
    if (s.status == "ok") {
      if (!s.detail.empty()) j["detail"] = s.detail;
      metrics_json(j, s.mean, &s.sd);
      if (s.apgr) {
        j["apgr"] = r6(*s.apgr);
        j["apgr_std"] = r6(s.apgr_sd.value_or(0));
        j["cpt"] = shares(s.cpt);
        j["cpt_std"] = shares(s.cpt_sd);
      } else {
        j["apgr"] = nullptr;
        j["cpt"] = nullptr;
      }
      j["met_target"] = s.met_target;
      j["seeds_met"] = s.seeds_met;
      j["seed_quality_ratio"] = seed_list(s.seed_quality_ratio);
      j["seed_cost_ratio"] = seed_list(s.seed_cost_ratio);
      j["cost_at_target"] = opt(s.cost_at_target);
      j["frontier_area"] = opt(s.frontier_area);
      j["per_task"] = task_json(s.per_task);
      if (s.ood) {
        json o;
        o["n"] = s.ood->n;
        metrics_json(o, *s.ood, nullptr);
        o["per_task"] = task_json(s.ood_per_task);
        j["ood"] = o;
      }
      if (!s.sweep.empty()) {
        json sw = json::array();
        for (const auto& p : s.sweep)
          sw.push_back({{"point", p.label},
                        {"quality_ratio", r6(p.quality_ratio)},
                        {"cost_ratio", r6(p.cost_ratio)},
                        {"strong_share", r6(p.strong_share)},
                        {"accepted_bad_rate",
                         p.accepted_bad_rate < 0 ? json(nullptr) : json(r6(p.accepted_bad_rate))}});
        j["sweep"] = sw;
      }
      j["timing_s"] = {{"fit", r6(s.fit_seconds)}, {"decide", r6(s.decide_seconds)}};
    }
    arr.push_back(j);
  }
  root["systems"] = arr;
  return root.dump(2) + "\n";
}

std::string EvalReport::table() const {
  std::ostringstream o;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "dataset %s  (n=%zu test queries, seeds=%zu, reference %s, quality target %.3f, "
                "met: mean quality ratio >= %.3f)\n",
                dataset.c_str(), n, seeds.size(), reference_tier.c_str(), quality_target,
                quality_target - target_tolerance);
  o << buf;
  if (!holdout_tasks.empty()) {
    o << "holdout tasks (ood, n=" << n_ood << "):";
    for (const auto& h : holdout_tasks) o << " " << h;
    o << "\n";
  }
  bool any_apgr = false, any_sweep = false;
  int w = 22, mw = 10;
  for (const auto& s : systems) {
    any_apgr |= s.apgr.has_value();
    any_sweep |= s.status == "ok" && s.frontier_area.has_value();
    w = std::max(w, int(s.system.size()) + 1);
    mw = std::max(mw, int(verdict(s).size()) + 1);
  }
  std::snprintf(buf, sizeof buf, "%-*s %-15s %-15s %-*s %8s %8s %9s %9s%s%s", w, "system",
                "quality_ratio", "cost_ratio", mw, "met", "p50_ms", "p99_ms", "sla_viol",
                "acc_bad", any_sweep ? " cost@tgt   area" : "",
                any_apgr ? "   apgr  cpt50  cpt80" : "");
  o << buf << "\n" << std::string(std::strlen(buf), '-') << "\n";
  for (const auto& s : systems) {
    if (s.status != "ok") {
      std::snprintf(buf, sizeof buf, "%-*s %s\n", w, s.system.c_str(), s.status.c_str());
      o << buf;
      continue;
    }
    char q[32], c[32], sla[16], ab[16];
    std::snprintf(q, sizeof q, "%.3f±%.3f", s.mean.quality_ratio, s.sd.quality_ratio);
    std::snprintf(c, sizeof c, "%.3f±%.3f", s.mean.cost_ratio, s.sd.cost_ratio);
    if (s.mean.sla_violation_rate)
      std::snprintf(sla, sizeof sla, "%.1f%%", 100 * *s.mean.sla_violation_rate);
    else
      std::snprintf(sla, sizeof sla, "-");
    if (s.mean.accepted_bad_rate)
      std::snprintf(ab, sizeof ab, "%.3f", *s.mean.accepted_bad_rate);
    else
      std::snprintf(ab, sizeof ab, "-");
    // "±" is 2 bytes in UTF-8: pad by one more.
    std::snprintf(buf, sizeof buf, "%-*s %-16s %-16s %-*s %8.0f %8.0f %9s %9s", w,
                  s.system.c_str(), q, c, mw, verdict(s).c_str(), s.mean.latency_p50,
                  s.mean.latency_p99, sla, ab);
    o << buf;
    if (any_sweep) {
      char ct[16] = "-", ar[16] = "-";
      if (s.cost_at_target) std::snprintf(ct, sizeof ct, "%.3f", *s.cost_at_target);
      if (s.frontier_area) std::snprintf(ar, sizeof ar, "%.3f", *s.frontier_area);
      std::snprintf(buf, sizeof buf, " %8s %6s", ct, ar);
      o << buf;
    }
    if (s.apgr) {
      std::snprintf(buf, sizeof buf, " %6.3f %6.3f %6.3f", *s.apgr, s.cpt.count("50") ? s.cpt.at("50") : 1.0,
                    s.cpt.count("80") ? s.cpt.at("80") : 1.0);
      o << buf;
    }
    o << "\n";
    if (s.ood) {
      std::snprintf(q, sizeof q, "%.3f", s.ood->quality_ratio);
      std::snprintf(c, sizeof c, "%.3f", s.ood->cost_ratio);
      std::snprintf(buf, sizeof buf, "  %-*s %-15s %-15s %-*s %8.0f %8.0f\n", w - 2, "(ood)", q,
                    c, mw, "", s.ood->latency_p50, s.ood->latency_p99);
      o << buf;
    }
  }
  o << cheapest_line(*this);
  return o.str();
}

void write_report(const EvalReport& report, const std::string& path) {
  detail::write_file_atomic(path, report.to_json());
}

void write_output_file(const std::string& path, const std::string& text) {
  detail::write_file_atomic(path, text);
}

std::string StreamReport::to_json() const {
  json j;
  j["status"] = status;
  j["detail"] = detail;
  j["alpha"] = r6(alpha);
  j["n"] = n;
  j["labels"] = labels;
  j["violation_rate"] = {{"static", r6(violation_static)}, {"adaptive", r6(violation_adaptive)}};
  j["cost_per_query"] = {{"static", r6(cost_static)}, {"adaptive", r6(cost_adaptive)}};
  json w = json::array();
  for (const auto& x : windows)
    w.push_back({{"t_end_s", r6(x.t_end_s)},
                 {"n", x.n},
                 {"violation_static", r6(x.violation_static)},
                 {"violation_adaptive", r6(x.violation_adaptive)},
                 {"cost_static", r6(x.cost_static)},
                 {"cost_adaptive", r6(x.cost_adaptive)},
                 {"alpha_adaptive", r6(x.alpha_adaptive)}});
  j["windows"] = w;
  return j.dump(2) + "\n";
}

}  // namespace routenlp
