// Evaluation report: JSON (contract of docs/dataset-format.md "Evaluation report") and a table.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/atomic_file.hpp"
#include "eval/eval_internal.hpp"
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
  root["holdout_tasks"] = holdout_tasks;
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
  std::snprintf(buf, sizeof buf, "dataset %s  (n=%zu test queries, seeds=%zu, reference %s, quality target %.3f)\n",
                dataset.c_str(), n, seeds.size(), reference_tier.c_str(), quality_target);
  o << buf;
  if (!holdout_tasks.empty()) {
    o << "holdout tasks (ood, n=" << n_ood << "):";
    for (const auto& h : holdout_tasks) o << " " << h;
    o << "\n";
  }
  bool any_apgr = false;
  int w = 22;
  for (const auto& s : systems) {
    any_apgr |= s.apgr.has_value();
    w = std::max(w, int(s.system.size()) + 1);
  }
  std::snprintf(buf, sizeof buf, "%-*s %-15s %-15s %8s %8s %9s %9s%s\n", w, "system",
                "quality_ratio", "cost_ratio", "p50_ms", "p99_ms", "sla_viol", "acc_bad",
                any_apgr ? "   apgr  cpt50  cpt80" : "");
  o << buf;
  o << std::string(size_t(any_apgr ? 93 + w : 72 + w), '-') << "\n";
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
    std::snprintf(buf, sizeof buf, "%-*s %-16s %-16s %8.0f %8.0f %9s %9s", w, s.system.c_str(), q, c,
                  s.mean.latency_p50, s.mean.latency_p99, sla, ab);
    o << buf;
    if (s.apgr) {
      std::snprintf(buf, sizeof buf, " %6.3f %6.3f %6.3f", *s.apgr, s.cpt.count("50") ? s.cpt.at("50") : 1.0,
                    s.cpt.count("80") ? s.cpt.at("80") : 1.0);
      o << buf;
    }
    o << "\n";
    if (s.ood) {
      std::snprintf(q, sizeof q, "%.3f", s.ood->quality_ratio);
      std::snprintf(c, sizeof c, "%.3f", s.ood->cost_ratio);
      std::snprintf(buf, sizeof buf, "  %-*s %-15s %-15s %8.0f %8.0f\n", w - 2, "(ood)", q, c,
                    s.ood->latency_p50, s.ood->latency_p99);
      o << buf;
    }
  }
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
