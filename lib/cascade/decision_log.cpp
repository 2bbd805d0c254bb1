// The decision log: one JSON line per request (docs/cascade.md "Decision log"), its sinks (file,
// memory) and its reader; trace decision names.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/json_int.hpp"
#include "common/text_io.hpp"
#include "routenlp/cascade/result.hpp"
#include "routenlp/cascade/decision_log.hpp"
#include "routenlp/cascade/engine.hpp"

namespace routenlp {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

const char* trace_decision_name(TraceDecision d) noexcept {
  switch (d) {
    case TraceDecision::accepted: return "accepted";
    case TraceDecision::escalated: return "escalated";
    case TraceDecision::final_answer: return "final";
    case TraceDecision::error: return "error";
    case TraceDecision::skipped_budget: return "skipped_budget";
    case TraceDecision::skipped_deadline: return "skipped_deadline";
    case TraceDecision::cancelled: return "cancelled";
    case TraceDecision::skipped_threshold: return "skipped_threshold";
  }
  return "?";
}

static TraceDecision parse_decision(const std::string& s, const std::string& where) {
  for (auto d : {TraceDecision::accepted, TraceDecision::escalated, TraceDecision::final_answer,
                 TraceDecision::error, TraceDecision::skipped_budget,
                 TraceDecision::skipped_deadline, TraceDecision::cancelled,
                 TraceDecision::skipped_threshold})
    if (s == trace_decision_name(d)) return d;
  throw Error(Status::parse, where + ": trace.decision: unknown value '" + s + "'");
}

static Status parse_status(const std::string& s, const std::string& where) {
  for (int c = 0; c >= -12; --c)
    if (s == status_name(static_cast<Status>(c))) return static_cast<Status>(c);
  throw Error(Status::parse, where + ": unknown status '" + s + "'");
}

// ---- decision sinks ---------------------------------------------------------------------------

DecisionSink::~DecisionSink() = default;

struct JsonlFileSink::Impl {
  std::mutex mu;
  std::FILE* f = nullptr;
  std::string path;
};

JsonlFileSink::JsonlFileSink(const std::string& path, bool append) : impl_(new Impl) {
  impl_->path = path;
  impl_->f = std::fopen(path.c_str(), append ? "ab" : "wb");
  if (!impl_->f) throw Error(Status::io, "decision log: cannot open '" + path + "' for writing");
}

JsonlFileSink::~JsonlFileSink() {
  if (impl_->f) std::fclose(impl_->f);
}

void JsonlFileSink::write(const std::string& json_line) {
  std::lock_guard<std::mutex> l(impl_->mu);
  std::string line = json_line;
  line.push_back('\n');
  if (std::fwrite(line.data(), 1, line.size(), impl_->f) != line.size() ||
      std::fflush(impl_->f) != 0)
    throw Error(Status::io, "decision log: write to '" + impl_->path + "' failed");
}

void MemoryDecisionSink::write(const std::string& json_line) {
  std::lock_guard<std::mutex> l(mu_);
  lines_.push_back(json_line);
}

std::vector<std::string> MemoryDecisionSink::lines() const {
  std::lock_guard<std::mutex> l(mu_);
  return lines_;
}

namespace {
nlohmann::json jnum(double x) {
  if (std::isnan(x)) return nullptr;
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  return x;
}
double jget(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return kNaN;
  const auto& v = j.at(key);
  if (v.is_string()) return v.get<std::string>() == "-inf" ? -kInf : kInf;
  return v.get<double>();
}
}  // namespace

std::string decision_to_json(const CascadeResult& r) {
  nlohmann::json j;
  j["request_id"] = r.request_id;
  j["task"] = r.task;
  j["status"] = status_name(r.status);
  if (!r.error.empty()) j["error"] = r.error;
  j["tier"] = r.tier;
  j["tier_name"] = r.tier_name;
  j["uncertain"] = r.uncertain;
  j["stop_reason"] = r.stop_reason;
  j["cost"] = r.cost;
  j["latency_ms"] = r.latency_ms;
  j["alpha"] = jnum(r.alpha);
  j["audited"] = r.audited;
  auto tr = nlohmann::json::array();
  for (const auto& e : r.trace) {
    nlohmann::json t = {{"tier", e.tier},
                        {"name", e.tier_name},
                        {"latency_ms", e.latency_ms},
                        {"cost", e.cost},
                        {"u", jnum(e.uncertainty)},
                        {"delta", jnum(e.delta)},
                        {"decision", trace_decision_name(e.decision)}};
    if (e.nan_confidence) t["nan_confidence"] = true;
    if (e.error_status != Status::ok) {
      t["error_status"] = status_name(e.error_status);
      t["error"] = e.error;
    }
    tr.push_back(std::move(t));
  }
  j["trace"] = std::move(tr);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

CascadeResult decision_from_json(const std::string& line, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    throw Error(Status::parse, where + ": not valid JSON: " + e.what());
  }
  try {
    if (!j.is_object() || !j.contains("request_id") || !j.contains("trace"))
      throw Error(Status::parse, where + ": missing field 'request_id' or 'trace'");
    CascadeResult r;
    r.request_id = j.at("request_id").get<std::string>();
    r.task = j.value("task", std::string());
    r.status = parse_status(j.value("status", std::string("ok")), where + ": status");
    r.error = j.value("error", std::string());
    r.tier = detail::json_int_or(j, "tier", -1, where);
    r.tier_name = j.value("tier_name", std::string());
    r.uncertain = j.value("uncertain", false);
    r.stop_reason = j.value("stop_reason", std::string());
    r.cost = j.value("cost", 0.0);
    r.latency_ms = j.value("latency_ms", 0.0);
    r.alpha = jget(j, "alpha");
    r.audited = j.value("audited", false);
    size_t i = 0;
    for (const auto& t : j.at("trace")) {
      TraceEntry e;
      e.tier = detail::json_int_or(t, "tier", 0, where + ": trace[" + std::to_string(i++) + "]");
      e.tier_name = t.value("name", std::string());
      e.latency_ms = t.value("latency_ms", 0.0);
      e.cost = t.value("cost", 0.0);
      e.uncertainty = jget(t, "u");
      e.delta = jget(t, "delta");
      e.decision = parse_decision(t.value("decision", std::string()), where);
      e.nan_confidence = t.value("nan_confidence", false);
      if (t.contains("error_status"))
        e.error_status = parse_status(t.at("error_status").get<std::string>(), where);
      e.error = t.value("error", std::string());
      r.trace.push_back(std::move(e));
    }
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw Error(Status::parse, where + ": wrong field type: " + e.what());
  }
}

std::vector<CascadeResult> read_decision_log(const std::string& path) {
  std::string content = detail::read_file(path);
  std::vector<CascadeResult> out;
  size_t pos = 0, line_no = 0;
  while (pos < content.size()) {
    size_t end = content.find('\n', pos);
    bool terminated = end != std::string::npos;
    std::string line = content.substr(pos, terminated ? end - pos : std::string::npos);
    pos = terminated ? end + 1 : content.size();
    ++line_no;
    if (line.empty()) continue;
    try {
      out.push_back(decision_from_json(line, path + ":" + std::to_string(line_no)));
    } catch (const Error&) {
      if (!terminated) break;  // torn last line of a log still being written
      throw;
    }
  }
  return out;
}

}  // namespace routenlp
