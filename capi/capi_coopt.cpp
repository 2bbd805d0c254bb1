// C ABI of the co-optimization loop: CoOptLoop over host tokens with C callbacks.
#include <cmath>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "capi_internal.hpp"
#include "routenlp/coopt/coopt.hpp"
#include "routenlp/rn_coopt.h"

struct rn_coopt_eval {
  routenlp::CoOptEvaluation impl;
  bool metrics_set = false;
};

struct rn_coopt_result {
  routenlp::CoOptLoop<uint64_t, uint64_t>::Result impl;
  std::string log_jsonl;
};

namespace {

using routenlp::Error;
using routenlp::Status;

constexpr size_t kFirstParamsSize = sizeof(rn_coopt_params);
// struct_size came to these in 0.2; that layout is their first with it.
constexpr size_t kMetricsV1 = sizeof(rn_coopt_metrics);
constexpr size_t kRecordV1 = sizeof(rn_trace_record);
constexpr size_t kIterationV1 = sizeof(rn_coopt_iteration);

void check_callback(rn_status st, const char* what) {
  if (st != RN_OK) {
    const char* msg = rn_last_error();
    throw Error(Status::callback, std::string(what) + " callback returned " + rn_status_name(st) +
                                      (msg && *msg ? std::string(": ") + msg : std::string()));
  }
}

std::string opt_str(const char* s) { return s ? std::string(s) : std::string(); }

}  // namespace

extern "C" {

rn_coopt_params rn_coopt_params_default(void) {
  rn_coopt_params p = RN_COOPT_PARAMS_INIT;
  return p;
}

rn_status rn_coopt_eval_set_metrics(rn_coopt_eval* eval, const rn_coopt_metrics* m) {
  static const char* fn = "rn_coopt_eval_set_metrics";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(eval != nullptr, fn, "eval is NULL");
    RN_REQUIRE_ARG(m != nullptr, fn, "metrics is NULL");
    RN_REQUIRE_ARG(rn::struct_size_ok(m, kMetricsV1), fn,
                   "metrics->struct_size is not a known rn_coopt_metrics size");
    RN_REQUIRE_ARG(std::isfinite(m->cost) && std::isfinite(m->quality) && std::isfinite(m->t1_acceptance) &&
                       std::isfinite(m->cost_ratio),
                   fn, "metrics must be finite");
    eval->impl.metrics = {m->cost, m->quality, m->t1_acceptance, m->cost_ratio};
    eval->metrics_set = true;
    return RN_OK;
  });
}

rn_status rn_coopt_eval_add_record(rn_coopt_eval* eval, const rn_trace_record* r) {
  static const char* fn = "rn_coopt_eval_add_record";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(eval != nullptr, fn, "eval is NULL");
    RN_REQUIRE_ARG(r != nullptr, fn, "record is NULL");
    RN_REQUIRE_ARG(rn::struct_size_ok(r, kRecordV1), fn,
                   "record->struct_size is not a known rn_trace_record size");
    RN_REQUIRE_ARG(r->query != nullptr, fn, "record->query is NULL");
    RN_REQUIRE_ARG(std::isfinite(r->tier_cost) && std::isfinite(r->total_cost) && r->tier_cost >= 0 &&
                       r->total_cost >= 0,
                   fn, "record costs must be finite and >= 0");
    RN_REQUIRE_ARG(r->acceptable >= -1 && r->acceptable <= 1, fn, "record->acceptable must be -1, 0 or 1");
    routenlp::TraceRecord t;
    t.query_id = opt_str(r->query_id);
    t.query = r->query;
    t.task = opt_str(r->task);
    t.tier = r->tier;
    t.final_tier = r->final_tier;
    t.accepted = r->accepted != 0;
    if (r->acceptable >= 0) t.acceptable = r->acceptable == 1;
    t.tier_cost = r->tier_cost;
    t.total_cost = r->total_cost;
    t.final_response = opt_str(r->final_response);
    eval->impl.trace.push_back(std::move(t));
    return RN_OK;
  });
}

rn_status rn_coopt_run(rn_coopt_result** out, const rn_coopt_params* p, uint64_t tier, uint64_t routing) {
  static const char* fn = "rn_coopt_run";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    RN_REQUIRE_ARG(rn::struct_size_ok(p, kFirstParamsSize), fn, "params is NULL or has a bad struct_size");
    RN_REQUIRE_ARG(p->evaluate != nullptr && p->distill != nullptr, fn, "params.evaluate and params.distill are required");
    RN_REQUIRE_ARG(p->max_iterations >= 0, fn, "params.max_iterations must be >= 0");
    RN_REQUIRE_ARG(p->strategy == RN_COOPT_TARGETED || p->strategy == RN_COOPT_RANDOM, fn, "params.strategy is unknown");
    RN_REQUIRE_ARG(p->pool_size == 0 || p->pool_queries != nullptr, fn, "params.pool_queries is NULL");
    RN_REQUIRE_ARG(p->pool_size == 0 || p->teacher != nullptr, fn, "params.teacher is required with a pool");
    RN_REQUIRE_ARG(p->k_min >= 1 && p->k_max >= p->k_min, fn, "params.k_min/k_max: need 1 <= k_min <= k_max");
    RN_REQUIRE_ARG(p->member_share >= 0.0 && p->member_share <= 1.0, fn, "params.member_share must be in [0, 1]");
    for (size_t i = 0; i < p->pool_size; ++i)
      RN_REQUIRE_ARG(p->pool_queries[i] != nullptr, fn, "params.pool_queries[" + std::to_string(i) + "] is NULL");

    std::vector<routenlp::PoolItem> pool;
    for (size_t i = 0; i < p->pool_size; ++i)
      pool.push_back({"pool-" + std::to_string(i), p->pool_queries[i],
                      p->pool_tasks && p->pool_tasks[i] ? p->pool_tasks[i] : ""});
    const rn_coopt_params params = *p;
    routenlp::TeacherFunction teacher = [params](const std::string& q,
                                                 const std::string& task) -> std::optional<std::string> {
      if (!params.teacher) return std::nullopt;
      const char* target = nullptr;
      check_callback(params.teacher(&target, q.c_str(), task.c_str(), params.user_data), "teacher");
      if (!target) return std::nullopt;
      return std::string(target);
    };
    routenlp::DistillOptions dopt;
    dopt.budget = p->budget;
    dopt.top_clusters = p->top_clusters;
    dopt.member_share = p->member_share;
    dopt.seed = p->seed;
    auto gen = std::make_shared<routenlp::DistillationDataGenerator>(std::move(pool), nullptr, teacher, dopt);
    routenlp::FailureAnalyzerOptions fo;
    fo.k_min = p->k_min;
    fo.k_max = p->k_max;
    fo.seed = p->seed;
    routenlp::FailureAnalyzer analyzer(nullptr, "tfidf", fo);

    using Loop = routenlp::CoOptLoop<uint64_t, uint64_t>;
    Loop::Steps steps;
    steps.evaluate = [params](const uint64_t& t, const uint64_t& r) {
      rn_coopt_eval ev;
      check_callback(params.evaluate(t, r, &ev, params.user_data), "evaluate");
      if (!ev.metrics_set)
        throw Error(Status::callback, "evaluate callback did not call rn_coopt_eval_set_metrics");
      return std::move(ev.impl);
    };
    steps.analyse = [analyzer](const std::vector<routenlp::TraceRecord>& tr) { return analyzer.analyze(tr); };
    const bool targeted = p->strategy == RN_COOPT_TARGETED;
    steps.select = [gen, targeted](const routenlp::FailureReport& rep, int it) {
      return targeted ? gen->targeted(rep, static_cast<uint64_t>(it)).examples
                      : gen->random(static_cast<uint64_t>(it)).examples;
    };
    steps.distill = [params](const uint64_t& t, const std::vector<routenlp::DistillExample>& ex) {
      std::vector<rn_distill_example> cex;
      cex.reserve(ex.size());
      for (const auto& e : ex)
        cex.push_back({e.id.c_str(), e.query.c_str(), e.task.c_str(), e.target.c_str(), e.source.c_str(),
                       static_cast<int32_t>(e.cluster)});
      uint64_t next = t;
      check_callback(params.distill(&next, t, cex.data(), cex.size(), params.user_data), "distill");
      return next;
    };
    if (p->retrain_router)
      steps.retrain_router = [params](const uint64_t& t, const uint64_t& r) {
        uint64_t next = r;
        check_callback(params.retrain_router(&next, t, r, params.user_data), "retrain_router");
        return next;
      };
    if (p->recalibrate)
      steps.recalibrate = [params](const uint64_t& t, const uint64_t& r) {
        uint64_t next = r;
        check_callback(params.recalibrate(&next, t, r, params.user_data), "recalibrate");
        return next;
      };
    routenlp::CoOptOptions opt;
    opt.max_iterations = p->max_iterations;
    opt.min_gain = p->min_gain;
    opt.quality_tolerance = p->quality_tolerance;
    opt.revert_regressions = p->revert_regressions != 0;
    opt.log_path = opt_str(p->log_path);
    Loop loop(std::move(steps), opt);
    auto res = std::make_unique<rn_coopt_result>();
    res->impl = loop.run(tier, routing);
    res->log_jsonl = routenlp::coopt_log_jsonl(res->impl.log);
    *out = res.release();
    return RN_OK;
  });
}

rn_status rn_coopt_result_state(uint64_t* out_tier, uint64_t* out_routing,
                                const rn_coopt_result* r) {
  static const char* fn = "rn_coopt_result_state";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out_tier != nullptr && out_routing != nullptr, fn, "out_tier / out_routing is NULL");
    RN_REQUIRE_ARG(r != nullptr, fn, "result is NULL");
    *out_tier = r->impl.tier;
    *out_routing = r->impl.routing;
    return RN_OK;
  });
}

rn_status rn_coopt_result_iterations(size_t* out, const rn_coopt_result* r) {
  static const char* fn = "rn_coopt_result_iterations";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    RN_REQUIRE_ARG(r != nullptr, fn, "result is NULL");
    *out = r->impl.log.size();
    return RN_OK;
  });
}

rn_status rn_coopt_result_iteration(rn_coopt_iteration* out, const rn_coopt_result* r, size_t i) {
  static const char* fn = "rn_coopt_result_iteration";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    RN_REQUIRE_ARG(rn::struct_size_ok(out, kIterationV1), fn,
                   "out->struct_size is not a known rn_coopt_iteration size");
    RN_REQUIRE_ARG(r != nullptr, fn, "result is NULL");
    RN_REQUIRE_ARG(i < r->impl.log.size(), fn, "index " + std::to_string(i) + " out of range");
    const auto& l = r->impl.log[i];
    rn_coopt_iteration o;
    std::memset(&o, 0, sizeof o);
    o.struct_size = out->struct_size;
    o.iteration = l.iteration;
    o.metrics = {sizeof(rn_coopt_metrics), l.metrics.cost, l.metrics.quality,
                 l.metrics.t1_acceptance, l.metrics.cost_ratio};
    o.gain = l.gain;
    o.failures = l.failures;
    o.clusters = l.clusters;
    o.examples = l.examples;
    o.status = l.status.c_str();
    o.error = l.error.c_str();
    std::memcpy(out, &o, std::min<size_t>(out->struct_size, sizeof o));
    return RN_OK;
  });
}

rn_status rn_coopt_result_stop_reason(const char** out, const rn_coopt_result* r) {
  static const char* fn = "rn_coopt_result_stop_reason";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    RN_REQUIRE_ARG(r != nullptr, fn, "result is NULL");
    *out = r->impl.stop_reason.c_str();
    return RN_OK;
  });
}

rn_status rn_coopt_result_log_jsonl(const char** out, const rn_coopt_result* r) {
  static const char* fn = "rn_coopt_result_log_jsonl";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    RN_REQUIRE_ARG(r != nullptr, fn, "result is NULL");
    *out = r->log_jsonl.c_str();
    return RN_OK;
  });
}

void rn_coopt_result_destroy(rn_coopt_result* r) { delete r; }

}  // extern "C"
