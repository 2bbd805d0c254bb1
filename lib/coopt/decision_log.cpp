// Reads a cascade JSON Lines decision log into TraceRecords for the failure analysis.
// Per line: id/request_id, query, task, a trace array (tiers tried, in order: tier name or
// index, decision "accept"/"escalate"/"error"..., cost) and optional final answer fields.
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/text_io.hpp"
#include "routenlp/error.hpp"
#include "routenlp/failure_analyzer.hpp"

namespace routenlp {

using nlohmann::json;

namespace {

const json* find_any(const json& j, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    auto it = j.find(k);
    if (it != j.end() && !it->is_null()) return &*it;
  }
  return nullptr;
}

std::string get_str(const json& j, std::initializer_list<const char*> keys, const std::string& where,
                    bool required) {
  const json* v = find_any(j, keys);
  if (!v) {
    if (required) throw Error(Status::parse, where + ": " + *keys.begin() + ": missing");
    return "";
  }
  if (!v->is_string()) throw Error(Status::parse, where + ": " + *keys.begin() + ": expected a string");
  return v->get<std::string>();
}

double get_num(const json& j, std::initializer_list<const char*> keys, const std::string& where) {
  const json* v = find_any(j, keys);
  if (!v) return 0.0;
  if (!v->is_number()) throw Error(Status::parse, where + ": " + *keys.begin() + ": expected a number");
  double d = v->get<double>();
  if (!std::isfinite(d) || d < 0) throw Error(Status::parse, where + ": " + *keys.begin() + ": must be finite and >= 0");
  return d;
}

// Tier as (index, name): accepts a name, an index, or both in separate fields.
void get_tier(const json& step, const std::string& where, int& index, std::string& name) {
  index = -1;
  name.clear();
  if (const json* t = find_any(step, {"tier"})) {
    if (t->is_string()) name = t->get<std::string>();
    else if (t->is_number_integer()) index = t->get<int>();
    else throw Error(Status::parse, where + ": tier: expected a name or an index");
  }
  if (const json* t = find_any(step, {"tier_index"})) {
    if (!t->is_number_integer()) throw Error(Status::parse, where + ": tier_index: expected an integer");
    index = t->get<int>();
  }
  if (const json* t = find_any(step, {"tier_name"})) {
    if (!t->is_string()) throw Error(Status::parse, where + ": tier_name: expected a string");
    name = t->get<std::string>();
  }
}

bool is_accept(const std::string& d) { return d == "accept" || d == "accepted" || d == "final"; }

}  // namespace

std::vector<TraceRecord> read_decision_log(const std::string& path) {
  detail::LineReader in(path);
  std::vector<TraceRecord> out;
  std::string line;
  while (in.next(line)) {
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(in.line_number());
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      throw Error(Status::parse, where + ": invalid JSON: " + e.what());
    }
    if (!j.is_object()) throw Error(Status::parse, where + ": expected a JSON object");
    TraceRecord r;
    r.query_id = get_str(j, {"request_id", "id"}, where, false);
    r.query = get_str(j, {"query"}, where, true);
    r.task = get_str(j, {"task"}, where, false);
    const json* trace = find_any(j, {"trace", "steps", "tiers"});
    if (!trace || !trace->is_array() || trace->empty())
      throw Error(Status::parse, where + ": trace: expected a non-empty array of tier steps");
    double total = 0.0;
    int last_index = -1;
    std::string last_name;
    for (size_t s = 0; s < trace->size(); ++s) {
      const json& st = (*trace)[s];
      const std::string sw = where + ": trace[" + std::to_string(s) + "]";
      if (!st.is_object()) throw Error(Status::parse, sw + ": expected an object");
      int idx;
      std::string name;
      get_tier(st, sw, idx, name);
      double cost = get_num(st, {"cost", "cost_usd"}, sw);
      std::string decision = get_str(st, {"decision", "action"}, sw, false);
      bool accepted = is_accept(decision);
      if (const json* a = find_any(st, {"accepted"})) {
        if (!a->is_boolean()) throw Error(Status::parse, sw + ": accepted: expected true/false");
        accepted = a->get<bool>();
      }
      total += cost;
      if (s == 0) {
        r.tier = idx;
        r.tier_name = name;
        r.tier_cost = cost;
        r.accepted = accepted;
        if (const json* a = find_any(st, {"acceptable"})) {
          if (!a->is_boolean()) throw Error(Status::parse, sw + ": acceptable: expected true/false");
          r.acceptable = a->get<bool>();
        }
      }
      last_index = idx;
      last_name = name;
    }
    if (const json* tc = find_any(j, {"total_cost", "cost", "cost_usd"})) {
      if (!tc->is_number()) throw Error(Status::parse, where + ": total_cost: expected a number");
      total = tc->get<double>();
    }
    r.total_cost = total;
    r.final_tier = last_index;
    r.final_tier_name = last_name;
    if (const json* ft = find_any(j, {"final_tier"})) {
      if (ft->is_number_integer()) r.final_tier = ft->get<int>();
      else if (ft->is_string()) r.final_tier_name = ft->get<std::string>();
    }
    r.final_response = get_str(j, {"response", "text", "answer"}, where, false);
    if (const json* a = find_any(j, {"acceptable"})) {
      if (!a->is_boolean()) throw Error(Status::parse, where + ": acceptable: expected true/false");
      r.final_acceptable = a->get<bool>();
    }
    // Names only: positions in the trace stand in for tier indices (first = 0).
    if (r.tier < 0) r.tier = 0;
    if (r.final_tier < 0) r.final_tier = static_cast<int>(trace->size()) - 1;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace routenlp
