// TraceRecords from a cascade decision log (read with the cascade's read_decision_log) joined
// with the queries of a dataset by request id.
#include <unordered_map>

#include "routenlp/cascade/result.hpp"
#include "routenlp/cascade/decision_log.hpp"
#include "routenlp/error.hpp"
#include "routenlp/coopt/failure_analyzer.hpp"

namespace routenlp {

std::vector<TraceRecord> trace_from_decision_log(const std::string& log_path, const Dataset& queries,
                                                 const PortfolioConfig* portfolio) {
  std::vector<CascadeResult> log = read_decision_log(log_path);
  std::unordered_map<std::string, const Query*> by_id;
  for (const auto& q : queries.queries) by_id.emplace(q.id, &q);
  std::vector<TraceRecord> out;
  out.reserve(log.size());
  for (size_t i = 0; i < log.size(); ++i) {
    const CascadeResult& c = log[i];
    const std::string where = log_path + ":" + std::to_string(i + 1);
    if (c.trace.empty()) continue;  // nothing was called (cancelled, deadline before the first tier)
    auto it = by_id.find(c.request_id);
    if (it == by_id.end())
      throw Error(Status::invalid_argument, where + ": request_id: '" + c.request_id +
                                                "' is not in the query set " + queries.source);
    const Query& q = *it->second;
    TraceRecord r;
    r.query_id = c.request_id;
    r.query = q.query;
    r.task = c.task.empty() ? q.task : c.task;
    const TraceEntry& first = c.trace.front();
    r.tier = first.tier;
    r.tier_name = first.tier_name;
    r.tier_cost = first.cost;
    r.accepted = first.decision == TraceDecision::accepted ||
                 (first.decision == TraceDecision::final_answer && c.trace.size() == 1);
    r.total_cost = c.cost;
    r.final_tier = c.tier >= 0 ? c.tier : c.trace.back().tier;
    r.final_tier_name = c.tier_name.empty() ? c.trace.back().tier_name : c.tier_name;
    r.final_response = c.answer;  // not logged by the engine; filled from outcomes below
    if (portfolio) {
      auto oc = q.outcomes.find(r.tier_name);
      if (oc != q.outcomes.end()) r.acceptable = portfolio->acceptable(r.task, oc->second.quality);
      auto of = q.outcomes.find(r.final_tier_name);
      if (of != q.outcomes.end()) {
        r.final_acceptable = portfolio->acceptable(r.task, of->second.quality);
        if (r.final_response.empty() && of->second.response) r.final_response = *of->second.response;
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace routenlp
