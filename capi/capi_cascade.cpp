// C ABI of the calibrator, C tiers and the cascade engine (rn_cascade.h).
#include <cmath>
#include <cstddef>
#include <cstring>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "capi_internal.hpp"
#include "capi_result.hpp"
#include "c_tier.hpp"
#include "routenlp/cascade/result.hpp"
#include "routenlp/cascade/decision_log.hpp"
#include "routenlp/cascade/engine.hpp"
#include "routenlp/calibration/conformal.hpp"
#include "routenlp/calibration/threshold_table.hpp"
#include "routenlp/calibration/quality_plan.hpp"
#include "routenlp/calibration/calibrator.hpp"
#include "routenlp/rn_cascade.h"

struct rn_calibrator {
  routenlp::ConformalCalibrator impl;
};

struct rn_tier {
  std::shared_ptr<routenlp::ModelTier> impl;
};

struct rn_cascade {
  std::unique_ptr<routenlp::CascadeEngine> impl;
};

namespace {
// The first released rn_calibrator_params ended at quality_target.
constexpr size_t kCalibParamsV1 = offsetof(rn_calibrator_params, quality_target) + sizeof(double);
static_assert(RN_ALLOCATION_GLOBAL == static_cast<int>(routenlp::QualityAllocation::global) &&
                  RN_ALLOCATION_PER_TASK == static_cast<int>(routenlp::QualityAllocation::per_task),
              "rn_quality_allocation must match routenlp::QualityAllocation");
constexpr size_t kTraceEntryV1 = sizeof(rn_trace_entry);

// The C enums are casts of the C++ ones: tie every value.
#define RN_ENUM_MATCHES(c, cpp) \
  static_assert(static_cast<int>(c) == static_cast<int>(cpp), #c " != " #cpp)
RN_ENUM_MATCHES(RN_CALIB_LTT, routenlp::CalibrationMethod::ltt);
RN_ENUM_MATCHES(RN_CALIB_CRC, routenlp::CalibrationMethod::crc);
RN_ENUM_MATCHES(RN_CALIB_SPLIT_CONFORMAL, routenlp::CalibrationMethod::split_conformal);
RN_ENUM_MATCHES(RN_CALIB_PVALUE_BAD, routenlp::CalibrationMethod::pvalue_bad);
RN_ENUM_MATCHES(RN_CELL_CERTIFIED, routenlp::CellStatus::certified);
RN_ENUM_MATCHES(RN_CELL_POOLED, routenlp::CellStatus::pooled);
RN_ENUM_MATCHES(RN_CELL_ESCALATE_ALL, routenlp::CellStatus::escalate_all);
RN_ENUM_MATCHES(RN_CELL_TOO_SMALL, routenlp::CellStatus::too_small);
RN_ENUM_MATCHES(RN_CELL_FINAL_TIER, routenlp::CellStatus::final_tier);
RN_ENUM_MATCHES(RN_CELL_UNCERTIFIED, routenlp::CellStatus::uncertified);
RN_ENUM_MATCHES(RN_DECISION_ACCEPTED, routenlp::TraceDecision::accepted);
RN_ENUM_MATCHES(RN_DECISION_ESCALATED, routenlp::TraceDecision::escalated);
RN_ENUM_MATCHES(RN_DECISION_FINAL, routenlp::TraceDecision::final_answer);
RN_ENUM_MATCHES(RN_DECISION_ERROR, routenlp::TraceDecision::error);
RN_ENUM_MATCHES(RN_DECISION_SKIPPED_BUDGET, routenlp::TraceDecision::skipped_budget);
RN_ENUM_MATCHES(RN_DECISION_SKIPPED_DEADLINE, routenlp::TraceDecision::skipped_deadline);
RN_ENUM_MATCHES(RN_DECISION_CANCELLED, routenlp::TraceDecision::cancelled);
RN_ENUM_MATCHES(RN_DECISION_SKIPPED_THRESHOLD, routenlp::TraceDecision::skipped_threshold);
#undef RN_ENUM_MATCHES
}  // namespace

namespace rn {

const size_t kCascadeParamsV1 = sizeof(rn_cascade_params);
// The first released rn_cascade_request ended at deadline_ms (router_p came in 0.2).
const size_t kCascadeRequestV1 = offsetof(rn_cascade_request, deadline_ms) + sizeof(double);

rn_status check_request(const char* fn, const char* what, const rn_cascade_request* request,
                        size_t tiers) {
  const std::string w = what;
  RN_REQUIRE_ARG(rn::struct_size_ok(request, kCascadeRequestV1), fn,
                 w + "->struct_size is not a known rn_cascade_request size");
  const rn_cascade_request r = read_struct(request, rn_cascade_request(RN_CASCADE_REQUEST_INIT));
  RN_REQUIRE_ARG(r.query != nullptr && r.task != nullptr, fn,
                 w + "->query and " + w + "->task must not be NULL");
  RN_REQUIRE_ARG(!std::isnan(r.alpha) && r.alpha >= 0 && r.alpha < 1, fn,
                 w + "->alpha must be 0 (default) or in (0,1)");
  RN_REQUIRE_ARG(!std::isnan(r.deadline_ms) && r.deadline_ms >= 0, fn,
                 w + "->deadline_ms must be >= 0");
  const auto n = static_cast<int64_t>(tiers);
  RN_REQUIRE_ARG(r.start_tier < n, fn,
                 w + "->start_tier " + std::to_string(r.start_tier) +
                     " is past the last tier (" + std::to_string(n - 1) + ")");
  RN_REQUIRE_ARG(r.max_tier < n, fn,
                 w + "->max_tier " + std::to_string(r.max_tier) + " is past the last tier (" +
                     std::to_string(n - 1) + ")");
  RN_REQUIRE_ARG(r.start_tier < 0 || r.max_tier < 0 || r.start_tier <= r.max_tier, fn,
                 w + "->start_tier " + std::to_string(r.start_tier) + " is above " + w +
                     "->max_tier " + std::to_string(r.max_tier));
  RN_REQUIRE_ARG((r.router_p == nullptr) == (r.n_router_p == 0), fn,
                 w + "->router_p and " + w + "->n_router_p must be both set or both empty");
  RN_REQUIRE_ARG(r.router_p == nullptr || r.n_router_p == tiers, fn,
                 w + "->n_router_p is " + std::to_string(r.n_router_p) + ", the cascade has " +
                     std::to_string(tiers) + " tiers");
  for (size_t k = 0; k < r.n_router_p; ++k)
    RN_REQUIRE_ARG(std::isnan(r.router_p[k]) || (r.router_p[k] >= 0 && r.router_p[k] <= 1), fn,
                   w + "->router_p[" + std::to_string(k) + "] must be in [0,1] (or NaN)");
  return RN_OK;
}

void apply_request_overrides(routenlp::CascadeRequest& r, const rn_cascade_request& c) {
  if (c.request_id) r.id = c.request_id;
  r.query = c.query;
  r.task = c.task;
  if (c.start_tier >= 0) r.start_tier = c.start_tier;
  if (c.max_tier >= 0) r.max_tier = c.max_tier;
  if (c.alpha > 0) r.alpha = c.alpha;
  if (c.budget_usd >= 0) r.budget_usd = c.budget_usd;
  r.deadline_ms = c.deadline_ms;
  if (c.router_p) r.router_p.assign(c.router_p, c.router_p + c.n_router_p);
}

}  // namespace rn

extern "C" {

rn_calibrator_params rn_calibrator_params_default(void) {
  rn_calibrator_params p = RN_CALIBRATOR_PARAMS_INIT;
  return p;
}

rn_status rn_calibrator_create(rn_calibrator** out, const rn_calibrator_params* params) {
  const char* fn = "rn_calibrator_create";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    RN_REQUIRE_ARG(params == nullptr || rn::struct_size_ok(params, kCalibParamsV1), fn,
                   "params->struct_size is not a known rn_calibrator_params size");
    rn_calibrator_params p = rn::read_struct(params, rn_calibrator_params_default());
    RN_REQUIRE_ARG(p.method >= RN_CALIB_LTT && p.method <= RN_CALIB_PVALUE_BAD, fn,
                   "params->method is not an rn_calibration_method");
    routenlp::CalibrationOptions o;
    o.method = static_cast<routenlp::CalibrationMethod>(p.method);
    o.alpha = p.alpha;
    o.epsilon = p.epsilon;
    o.cell_floor = p.cell_floor;
    o.goal = p.quality_target_mode ? routenlp::CalibrationGoal::quality_target
                                   : routenlp::CalibrationGoal::guarantee;
    o.quality_target = p.quality_target;
    RN_REQUIRE_ARG(p.allocation == RN_ALLOCATION_GLOBAL || p.allocation == RN_ALLOCATION_PER_TASK,
                   fn, "params->allocation is not an rn_quality_allocation");
    o.allocation = static_cast<routenlp::QualityAllocation>(p.allocation);
    o.qt_epsilon = p.qt_epsilon;
    *out = new rn_calibrator{routenlp::ConformalCalibrator(o)};
    return RN_OK;
  });
}

rn_status rn_calibrator_calibrate(rn_calibrator* calibrator, size_t n_rows, size_t n_tiers,
                                  const char* const* tier_names, const char* const* tasks,
                                  const double* u, const uint8_t* bad, const double* quality,
                                  const double* cost) {
  const char* fn = "rn_calibrator_calibrate";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(calibrator != nullptr, fn, "calibrator is NULL");
    RN_REQUIRE_ARG(n_rows > 0 && n_tiers > 0, fn, "n_rows and n_tiers must be > 0");
    RN_REQUIRE_ARG(tasks != nullptr && u != nullptr && bad != nullptr, fn,
                   "tasks, u and bad must not be NULL");
    RN_REQUIRE_ARG(n_rows < (size_t(1) << 40) / n_tiers, fn, "n_rows x n_tiers is too large");
    routenlp::CalibrationData d;
    for (size_t k = 0; k < n_tiers; ++k) {
      if (tier_names) {
        RN_REQUIRE_ARG(tier_names[k] != nullptr, fn,
                       "tier_names[" + std::to_string(k) + "] is NULL");
        d.tiers.push_back(tier_names[k]);
      } else {
        d.tiers.push_back("t" + std::to_string(k));
      }
    }
    for (size_t r = 0; r < n_rows; ++r) {
      RN_REQUIRE_ARG(tasks[r] != nullptr, fn, "tasks[" + std::to_string(r) + "] is NULL");
      d.tasks.push_back(tasks[r]);
      d.u.emplace_back(u + r * n_tiers, u + (r + 1) * n_tiers);
      d.bad.emplace_back(bad + r * n_tiers, bad + (r + 1) * n_tiers);
      if (quality) d.quality.emplace_back(quality + r * n_tiers, quality + (r + 1) * n_tiers);
      if (cost) d.cost.emplace_back(cost + r * n_tiers, cost + (r + 1) * n_tiers);
    }
    calibrator->impl.calibrate(d);
    return RN_OK;
  });
}

rn_status rn_calibrator_threshold(double* out, const rn_calibrator* calibrator, size_t tier,
                                  const char* task) {
  const char* fn = "rn_calibrator_threshold";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    RN_REQUIRE_ARG(calibrator != nullptr, fn, "calibrator is NULL");
    RN_REQUIRE_ARG(task != nullptr, fn, "task is NULL");
    RN_REQUIRE_ARG(calibrator->impl.calibrated(), fn, "calibrator is not calibrated");
    RN_REQUIRE_ARG(tier < calibrator->impl.thresholds()->tiers.size(), fn,
                   "tier " + std::to_string(tier) + " is out of range");
    *out = calibrator->impl.threshold(tier, task);
    return RN_OK;
  });
}

rn_status rn_calibrator_cell_status(int32_t* out, const rn_calibrator* calibrator, size_t tier,
                                    const char* column) {
  const char* fn = "rn_calibrator_cell_status";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    RN_REQUIRE_ARG(calibrator != nullptr, fn, "calibrator is NULL");
    RN_REQUIRE_ARG(column != nullptr, fn, "column is NULL");
    RN_REQUIRE_ARG(calibrator->impl.calibrated(), fn, "calibrator is not calibrated");
    const routenlp::CellReport* c = calibrator->impl.cell(tier, column);
    RN_REQUIRE_ARG(c != nullptr, fn,
                   "no cell (" + std::to_string(tier) + ", '" + column + "')");
    *out = static_cast<int32_t>(c->status);
    return RN_OK;
  });
}

rn_status rn_calibrator_save(const rn_calibrator* calibrator, const char* path) {
  const char* fn = "rn_calibrator_save";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(calibrator != nullptr, fn, "calibrator is NULL");
    RN_REQUIRE_ARG(path != nullptr, fn, "path is NULL");
    RN_REQUIRE_ARG(calibrator->impl.calibrated(), fn, "calibrator is not calibrated");
    calibrator->impl.save(path);
    return RN_OK;
  });
}

rn_status rn_calibrator_load(rn_calibrator** out, const char* path) {
  const char* fn = "rn_calibrator_load";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    RN_REQUIRE_ARG(path != nullptr, fn, "path is NULL");
    *out = new rn_calibrator{routenlp::ConformalCalibrator::load(path)};
    return RN_OK;
  });
}

void rn_calibrator_destroy(rn_calibrator* calibrator) { delete calibrator; }

// ---- tiers ----

int rn_tier_request_cancelled(const rn_tier_request* request) {
  if (!request || !request->internal) return 0;
  return static_cast<const std::atomic<bool>*>(request->internal)->load() ? 1 : 0;
}

#define RN_REPLY_SETTER(name, ...)                                        \
  rn_status name(rn_tier_reply* reply, __VA_ARGS__)

RN_REPLY_SETTER(rn_tier_reply_set_text, const char* text) {
  const char* fn = "rn_tier_reply_set_text";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(reply != nullptr, fn, "reply is NULL");
    RN_REQUIRE_ARG(text != nullptr, fn, "text is NULL");
    reply->impl.text = text;
    return RN_OK;
  });
}

RN_REPLY_SETTER(rn_tier_reply_set_confidence, double confidence) {
  const char* fn = "rn_tier_reply_set_confidence";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(reply != nullptr, fn, "reply is NULL");
    RN_REQUIRE_ARG(std::isnan(confidence) || (confidence >= 0 && confidence <= 1), fn,
                   "confidence must be in [0,1] (or NaN)");
    reply->impl.confidence = confidence;
    return RN_OK;
  });
}

RN_REPLY_SETTER(rn_tier_reply_set_cost, double cost_usd) {
  const char* fn = "rn_tier_reply_set_cost";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(reply != nullptr, fn, "reply is NULL");
    RN_REQUIRE_ARG(std::isfinite(cost_usd) && cost_usd >= 0, fn, "cost must be finite and >= 0");
    reply->impl.cost = cost_usd;
    return RN_OK;
  });
}

RN_REPLY_SETTER(rn_tier_reply_set_latency_ms, double latency_ms) {
  const char* fn = "rn_tier_reply_set_latency_ms";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(reply != nullptr, fn, "reply is NULL");
    RN_REQUIRE_ARG(std::isfinite(latency_ms) && latency_ms >= 0, fn,
                   "latency must be finite and >= 0");
    reply->impl.latency_ms = latency_ms;
    return RN_OK;
  });
}

RN_REPLY_SETTER(rn_tier_reply_set_tokens, int64_t input_tokens, int64_t output_tokens) {
  const char* fn = "rn_tier_reply_set_tokens";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(reply != nullptr, fn, "reply is NULL");
    RN_REQUIRE_ARG(input_tokens >= 0 && output_tokens >= 0, fn, "token counts must be >= 0");
    reply->impl.input_tokens = input_tokens;
    reply->impl.output_tokens = output_tokens;
    return RN_OK;
  });
}

RN_REPLY_SETTER(rn_tier_reply_set_error, const char* message) {
  const char* fn = "rn_tier_reply_set_error";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(reply != nullptr, fn, "reply is NULL");
    RN_REQUIRE_ARG(message != nullptr, fn, "message is NULL");
    reply->impl.error = message;
    return RN_OK;
  });
}

rn_status rn_tier_create(rn_tier** out, const rn_tier_vtable* vtable) {
  const char* fn = "rn_tier_create";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    RN_REQUIRE_ARG(vtable != nullptr, fn, "vtable is NULL");
    RN_REQUIRE_ARG(rn::struct_size_ok(vtable, sizeof(rn_tier_vtable)), fn,
                   "vtable->struct_size is not a known rn_tier_vtable size");
    RN_REQUIRE_ARG(vtable->call != nullptr, fn, "vtable->call is NULL");
    RN_REQUIRE_ARG(vtable->name != nullptr && vtable->name[0] != '\0', fn,
                   "vtable->name is NULL or empty");
    auto t = std::make_unique<rn_tier>();
    t->impl = routenlp::make_c_tier(*vtable);
    *out = t.release();
    return RN_OK;
  });
}

void rn_tier_destroy(rn_tier* tier) { delete tier; }

// ---- cascade ----

rn_cascade_params rn_cascade_params_default(void) {
  rn_cascade_params p = RN_CASCADE_PARAMS_INIT;
  return p;
}

rn_status rn_cascade_create(rn_cascade** out, rn_tier* const* tiers, size_t n_tiers,
                            const rn_calibrator* calibrator, const rn_cascade_params* params) {
  const char* fn = "rn_cascade_create";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    RN_REQUIRE_ARG(tiers != nullptr && n_tiers > 0, fn, "tiers is NULL or n_tiers is 0");
    RN_REQUIRE_ARG(params == nullptr || rn::struct_size_ok(params, rn::kCascadeParamsV1), fn,
                   "params->struct_size is not a known rn_cascade_params size");
    RN_REQUIRE_ARG(calibrator == nullptr || calibrator->impl.calibrated(), fn,
                   "calibrator is not calibrated");
    rn_cascade_params p = rn::read_struct(params, rn_cascade_params_default());
    RN_REQUIRE_ARG(p.audit_rate >= 0 && p.audit_rate <= 1, fn, "audit_rate must be in [0,1]");
    std::vector<std::shared_ptr<routenlp::ModelTier>> ts;
    for (size_t k = 0; k < n_tiers; ++k) {
      RN_REQUIRE_ARG(tiers[k] != nullptr, fn, "tiers[" + std::to_string(k) + "] is NULL");
      ts.push_back(tiers[k]->impl);
    }
    std::shared_ptr<const routenlp::ThresholdTable> table;
    if (calibrator) {
      auto t = std::make_shared<routenlp::ThresholdTable>(*calibrator->impl.thresholds());
      RN_REQUIRE_ARG(t->tiers.size() == n_tiers, fn,
                     "calibrator has " + std::to_string(t->tiers.size()) + " tiers, not " +
                         std::to_string(n_tiers));
      for (size_t k = 0; k < n_tiers; ++k) t->tiers[k] = ts[k]->name();  // names from tiers
      table = std::move(t);
    }
    routenlp::CascadeOptions o;
    o.threads = p.n_threads;
    o.audit_rate = p.audit_rate;
    if (p.decision_log_path)
      o.decision_log = std::make_shared<routenlp::JsonlFileSink>(p.decision_log_path);
    if (p.online) {
      if (!table) {
        std::vector<std::string> names;
        for (auto& t : ts) names.push_back(t->name());
        table = std::make_shared<routenlp::ThresholdTable>(
            routenlp::ThresholdTable::escalate_all(names));
      }
      routenlp::OnlineOptions oo;
      oo.audit_rate = p.audit_rate;
      oo.aci.alpha = table->alphas[table->base_alpha];
      auto online = std::make_shared<routenlp::OnlineRecalibrator>(table, oo);
      // Thresholds move along the calibration's stored delta(alpha) curves (guarantee mode);
      // without them ACI and the drift monitors still run on the calibrated deltas.
      if (calibrator) online->set_curves(calibrator->impl.result());
      o.online = std::move(online);
    }
    auto c = std::make_unique<rn_cascade>();
    c->impl = std::make_unique<routenlp::CascadeEngine>(std::move(ts), table, std::move(o));
    *out = c.release();
    return RN_OK;
  });
}

rn_status rn_cascade_run(rn_result** out, const rn_cascade* cascade,
                         const rn_cascade_request* request) {
  const char* fn = "rn_cascade_run";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    RN_REQUIRE_ARG(cascade != nullptr, fn, "cascade is NULL");
    RN_REQUIRE_ARG(request != nullptr, fn, "request is NULL");
    if (rn_status st = rn::check_request(fn, "request", request, cascade->impl->tier_count());
        st != RN_OK)
      return st;
    routenlp::CascadeRequest r;
    rn::apply_request_overrides(
        r, rn::read_struct(request, rn_cascade_request(RN_CASCADE_REQUEST_INIT)));
    auto res = std::make_unique<rn_result>();
    res->impl = cascade->impl->run(r);
    *out = res.release();
    return RN_OK;
  });
}

rn_status rn_cascade_record_outcome(rn_cascade* cascade, const char* request_id,
                                    int acceptable) {
  const char* fn = "rn_cascade_record_outcome";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(cascade != nullptr, fn, "cascade is NULL");
    RN_REQUIRE_ARG(request_id != nullptr, fn, "request_id is NULL");
    if (!cascade->impl->record_outcome(request_id, acceptable != 0))
      return rn::fail(RN_ERR_INVALID_ARGUMENT, std::string(fn) + ": request '" + request_id +
                                                   "' is unknown (not audited or too old)");
    return RN_OK;
  });
}

rn_status rn_cascade_metrics_text(const char** out, const rn_cascade* cascade) {
  const char* fn = "rn_cascade_metrics_text";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    RN_REQUIRE_ARG(cascade != nullptr, fn, "cascade is NULL");
    thread_local std::string buf;
    buf = cascade->impl->metrics_prometheus();
    *out = buf.c_str();
    return RN_OK;
  });
}

void rn_cascade_destroy(rn_cascade* cascade) { delete cascade; }

rn_status rn_result_status(const rn_result* result) {
  if (!result) return RN_ERR_INVALID_ARGUMENT;
  return static_cast<rn_status>(result->impl.status);
}

const char* rn_result_answer(const rn_result* result) {
  return result ? result->impl.answer.c_str() : nullptr;
}

int32_t rn_result_tier(const rn_result* result) { return result ? result->impl.tier : -1; }

int rn_result_uncertain(const rn_result* result) {
  return result && result->impl.uncertain ? 1 : 0;
}

double rn_result_cost(const rn_result* result) { return result ? result->impl.cost : 0.0; }

const char* rn_result_request_id(const rn_result* result) {
  return result ? result->impl.request_id.c_str() : nullptr;
}

int rn_result_audited(const rn_result* result) { return result && result->impl.audited ? 1 : 0; }

size_t rn_result_trace_size(const rn_result* result) {
  return result ? result->impl.trace.size() : 0;
}

rn_status rn_result_trace_entry(rn_trace_entry* out, const rn_result* result, size_t i) {
  const char* fn = "rn_result_trace_entry";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    RN_REQUIRE_ARG(rn::struct_size_ok(out, kTraceEntryV1), fn,
                   "out->struct_size is not a known rn_trace_entry size");
    RN_REQUIRE_ARG(result != nullptr, fn, "result is NULL");
    RN_REQUIRE_ARG(i < result->impl.trace.size(), fn, "index " + std::to_string(i) +
                                                          " is out of range");
    const auto& e = result->impl.trace[i];
    out->tier = e.tier;
    out->tier_name = e.tier_name.c_str();
    out->latency_ms = e.latency_ms;
    out->cost = e.cost;
    out->uncertainty = e.uncertainty;
    out->delta = e.delta;
    out->decision = static_cast<int32_t>(e.decision);
    out->error_status = static_cast<int32_t>(e.error_status);
    out->error_message = e.error.c_str();
    return RN_OK;
  });
}

void rn_result_destroy(rn_result* result) { delete result; }

}  // extern "C"
