// C ABI of saved routers, pipeline artifacts and pipeline engines over C tiers (rn_pipeline.h).
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "capi_internal.hpp"
#include "capi_result.hpp"
#include "routenlp/cascade/result.hpp"
#include "routenlp/cascade/decision_log.hpp"
#include "routenlp/cascade/engine.hpp"
#include "routenlp/calibration/online.hpp"
#include "routenlp/pipeline/pipeline.hpp"
#include "routenlp/rn_pipeline.h"
#include "routenlp/router/model.hpp"
#include "routenlp/router/policies.hpp"
#include "routenlp/router/neural.hpp"
#include "routenlp/router/io.hpp"

struct rn_router {
  std::shared_ptr<const routenlp::RouterModel> impl;
  std::vector<std::string> tiers;  // cached: tiers() returns by value, names are borrowed
  std::string name;
};

struct rn_pipeline {
  explicit rn_pipeline(routenlp::Pipeline p)
      : impl(std::move(p)), table(impl.thresholds()), tiers(impl.tier_names()) {
    const auto& m = impl.manifest();
    manifest_json =
        nlohmann::json{
            {"format_version", m.format_version}, {"library_version", m.library_version},
            {"created_utc", m.created_utc},       {"system", m.system},
            {"description", m.description},       {"training_data_hash", m.training_data_hash},
            {"router_kind", m.router_kind},       {"files", m.files}}
            .dump();
  }
  routenlp::Pipeline impl;
  std::string manifest_json;
  std::shared_ptr<const routenlp::ThresholdTable> table;  // owns the column names handed out
  std::vector<std::string> tiers;
  // Column names not in the table (none expected): kept here so the pointer stays valid.
  mutable std::mutex interned_mu;
  mutable std::set<std::string> interned;
};

struct rn_engine {
  explicit rn_engine(routenlp::Pipeline p) : pipeline(std::move(p)) {}
  // The engine (and with it every C tier) goes first; then the hosts' destroy hooks run, so a
  // hook never frees user_data a tier could still use.
  ~rn_engine() {
    impl.reset();
    for (auto& h : hooks)
      if (h.first) h.first(h.second);
  }
  routenlp::Pipeline pipeline;
  std::shared_ptr<routenlp::OnlineRecalibrator> online;
  std::unique_ptr<routenlp::CascadeEngine> impl;
  std::vector<std::pair<rn_tier_destroy_fn, void*>> hooks;
};

namespace {

using routenlp::Error;
using routenlp::Status;

constexpr size_t kRouteV1 = sizeof(rn_route);
constexpr size_t kCellStateV1 = sizeof(rn_cell_state);
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

rn_router* new_router_handle(std::shared_ptr<const routenlp::RouterModel> r) {
  auto h = std::make_unique<rn_router>();
  h->tiers = r->tiers();
  h->name = r->name();
  h->impl = std::move(r);
  return h.release();
}

// A column name with the pipeline's lifetime.
const char* column_ptr(const rn_pipeline& p, const std::string& column) {
  if (column.empty()) return "";
  auto it = p.table->column_index.find(column);
  if (it != p.table->column_index.end())
    return p.table->columns[static_cast<size_t>(it->second)].c_str();
  std::lock_guard<std::mutex> lock(p.interned_mu);
  return p.interned.insert(column).first->c_str();
}

// Calibration status name of a cell; Error(invalid_argument) when there is no such cell.
const char* cell_status_of(const routenlp::Pipeline& p, size_t tier, const std::string& column) {
  const size_t tiers = p.tier_names().size();
  if (tier >= tiers)
    throw Error(Status::invalid_argument, "tier " + std::to_string(tier) +
                                              " is past the last tier (" +
                                              std::to_string(tiers - 1) + ")");
  auto cal = p.calibration();
  if (!cal) {
    if (column != "*")
      throw Error(Status::invalid_argument,
                  "the pipeline has no calibration: the only column is '*', not '" + column + "'");
    return routenlp::cell_status_name(tier + 1 == tiers ? routenlp::CellStatus::final_tier
                                                        : routenlp::CellStatus::escalate_all);
  }
  const routenlp::CellReport* c = cal->cell(tier, column);
  if (!c)
    throw Error(Status::invalid_argument,
                "no cell (" + std::to_string(tier) + ", '" + column + "') in the calibration");
  return routenlp::cell_status_name(c->status);
}

// Fills one rn_route and its p row from a PipelineRoute.
void fill_route(rn_route* out, uint32_t size, double* p_row, const rn_pipeline& p,
                const routenlp::PipelineRoute& r) {
  rn_route o;
  std::memset(&o, 0, sizeof o);
  o.struct_size = size;
  o.start_tier = r.start_tier;
  o.first_tier = r.first_tier;
  o.max_tier = r.max_tier < 0 ? static_cast<int32_t>(p.tiers.size()) - 1 : r.max_tier;
  o.alpha = r.alpha;
  const bool scored = !r.scores.p_acceptable.empty();
  o.difficulty = scored ? r.scores.difficulty : kNaN;
  o.task_unseen = scored && r.scores.task_unseen ? 1 : 0;
  o.n_p = static_cast<uint32_t>(r.scores.p_acceptable.size());
  o.column = column_ptr(p, r.column);
  if (p_row && scored) std::copy(r.scores.p_acceptable.begin(), r.scores.p_acceptable.end(), p_row);
  std::memcpy(out, &o, std::min<size_t>(size, sizeof o));
}

// Room check for p rows: with a router, out_p (when given) must hold n x tiers.
rn_status check_p_room(const char* fn, const rn_pipeline& p, const double* out_p, size_t capacity,
                       size_t n) {
  if (!out_p || !p.impl.router()) return RN_OK;
  const size_t need = n * p.tiers.size();
  if (capacity < need)
    return rn::fail(RN_ERR_INVALID_ARGUMENT, std::string(fn) + ": out_p_capacity " +
                                                 std::to_string(capacity) + " < " +
                                                 std::to_string(need) + " (queries x tiers)");
  return RN_OK;
}

// The C++ request for one C request: the pipeline's request (router scores, alpha, start
// rule) with what the caller set laid over it. `scores` are the router's, or empty.
routenlp::CascadeRequest engine_request(const rn_engine& e, const rn_cascade_request& c,
                                        const routenlp::RouterScores& scores) {
  routenlp::RouteQuery q{c.query, c.task};
  const std::string id = c.request_id ? c.request_id : "";
  routenlp::CascadeRequest r;
  if (c.router_p && c.n_router_p > 0) {
    routenlp::RouterScores given;
    given.p_acceptable.assign(c.router_p, c.router_p + c.n_router_p);
    r = e.pipeline.request(q, id, given);
  } else {
    r = e.pipeline.request(q, id, scores);
  }
  rn::apply_request_overrides(r, c);
  return r;
}

}  // namespace

extern "C" {

// ---- routers ----

rn_status rn_router_load(rn_router** out, const char* dir) {
  const char* fn = "rn_router_load";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    RN_REQUIRE_ARG(dir != nullptr, fn, "dir is NULL");
    std::shared_ptr<const routenlp::RouterModel> r = routenlp::load_router(dir);
    *out = new_router_handle(std::move(r));
    return RN_OK;
  });
}

rn_status rn_router_tier_count(size_t* out, const rn_router* router) {
  const char* fn = "rn_router_tier_count";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    RN_REQUIRE_ARG(router != nullptr, fn, "router is NULL");
    *out = router->tiers.size();
    return RN_OK;
  });
}

rn_status rn_router_tier_name(const char** out, const rn_router* router, size_t tier) {
  const char* fn = "rn_router_tier_name";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    RN_REQUIRE_ARG(router != nullptr, fn, "router is NULL");
    RN_REQUIRE_ARG(tier < router->tiers.size(), fn,
                   "tier " + std::to_string(tier) + " is out of range (" +
                       std::to_string(router->tiers.size()) + " tiers)");
    *out = router->tiers[tier].c_str();
    return RN_OK;
  });
}

rn_status rn_router_name(const char** out, const rn_router* router) {
  const char* fn = "rn_router_name";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    RN_REQUIRE_ARG(router != nullptr, fn, "router is NULL");
    *out = router->name.c_str();
    return RN_OK;
  });
}

rn_status rn_router_score(double* out_p, size_t out_p_capacity, double* out_difficulty,
                          const rn_router* router, const char* const* queries,
                          const char* const* tasks, size_t n) {
  const char* fn = "rn_router_score";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out_p != nullptr, fn, "out_p is NULL");
    RN_REQUIRE_ARG(router != nullptr, fn, "router is NULL");
    RN_REQUIRE_ARG(n == 0 || (queries != nullptr && tasks != nullptr), fn,
                   "queries and tasks must not be NULL");
    const size_t k = router->tiers.size();
    RN_REQUIRE_ARG(n <= (size_t(1) << 32), fn, "n is too large");
    RN_REQUIRE_ARG(out_p_capacity >= n * k, fn,
                   "out_p_capacity " + std::to_string(out_p_capacity) + " < " +
                       std::to_string(n * k) + " (queries x tiers)");
    std::vector<routenlp::RouteQuery> batch;
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      RN_REQUIRE_ARG(
          queries[i] != nullptr && tasks[i] != nullptr, fn,
          "queries[" + std::to_string(i) + "] or tasks[" + std::to_string(i) + "] is NULL");
      batch.push_back({queries[i], tasks[i]});
    }
    if (n == 0) return RN_OK;
    auto scores = router->impl->score(batch);
    if (scores.size() != n)
      return rn::fail(RN_ERR_INTERNAL, std::string(fn) + ": router returned " +
                                           std::to_string(scores.size()) + " rows for " +
                                           std::to_string(n) + " queries");
    for (size_t i = 0; i < n; ++i)
      if (scores[i].p_acceptable.size() != k)
        return rn::fail(RN_ERR_INTERNAL, std::string(fn) + ": router returned " +
                                             std::to_string(scores[i].p_acceptable.size()) +
                                             " tiers, expected " + std::to_string(k));
    for (size_t i = 0; i < n; ++i) {
      std::copy(scores[i].p_acceptable.begin(), scores[i].p_acceptable.end(), out_p + i * k);
      if (out_difficulty) out_difficulty[i] = scores[i].difficulty;
    }
    return RN_OK;
  });
}

void rn_router_destroy(rn_router* router) {
  delete router;
}

// ---- pipeline ----

rn_status rn_pipeline_load(rn_pipeline** out, const char* dir) {
  const char* fn = "rn_pipeline_load";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    RN_REQUIRE_ARG(dir != nullptr, fn, "dir is NULL");
    *out = new rn_pipeline(routenlp::Pipeline::load(dir));
    return RN_OK;
  });
}

rn_status rn_pipeline_tier_count(size_t* out, const rn_pipeline* pipeline) {
  const char* fn = "rn_pipeline_tier_count";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    RN_REQUIRE_ARG(pipeline != nullptr, fn, "pipeline is NULL");
    *out = pipeline->tiers.size();
    return RN_OK;
  });
}

rn_status rn_pipeline_tier_name(const char** out, const rn_pipeline* pipeline, size_t tier) {
  const char* fn = "rn_pipeline_tier_name";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    RN_REQUIRE_ARG(pipeline != nullptr, fn, "pipeline is NULL");
    RN_REQUIRE_ARG(tier < pipeline->tiers.size(), fn,
                   "tier " + std::to_string(tier) + " is out of range (" +
                       std::to_string(pipeline->tiers.size()) + " tiers)");
    *out = pipeline->tiers[tier].c_str();
    return RN_OK;
  });
}

rn_status rn_pipeline_router(rn_router** out, const rn_pipeline* pipeline) {
  const char* fn = "rn_pipeline_router";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    RN_REQUIRE_ARG(pipeline != nullptr, fn, "pipeline is NULL");
    if (auto r = pipeline->impl.router()) *out = new_router_handle(std::move(r));
    return RN_OK;
  });
}

rn_status rn_pipeline_cell_status(const char** out, const rn_pipeline* pipeline, size_t tier,
                                  const char* column) {
  const char* fn = "rn_pipeline_cell_status";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    RN_REQUIRE_ARG(pipeline != nullptr, fn, "pipeline is NULL");
    RN_REQUIRE_ARG(column != nullptr, fn, "column is NULL");
    *out = cell_status_of(pipeline->impl, tier, column);
    return RN_OK;
  });
}

rn_status rn_pipeline_manifest_json(const char** out, const rn_pipeline* pipeline) {
  const char* fn = "rn_pipeline_manifest_json";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    RN_REQUIRE_ARG(pipeline != nullptr, fn, "pipeline is NULL");
    *out = pipeline->manifest_json.c_str();
    return RN_OK;
  });
}

rn_status rn_pipeline_route(rn_route* out, double* out_p, size_t out_p_capacity,
                            const rn_pipeline* pipeline, const char* query, const char* task,
                            const char* request_id) {
  const char* fn = "rn_pipeline_route";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    RN_REQUIRE_ARG(rn::struct_size_ok(out, kRouteV1), fn,
                   "out->struct_size is not a known rn_route size");
    RN_REQUIRE_ARG(pipeline != nullptr, fn, "pipeline is NULL");
    RN_REQUIRE_ARG(query != nullptr && task != nullptr, fn, "query and task must not be NULL");
    if (rn_status st = check_p_room(fn, *pipeline, out_p, out_p_capacity, 1); st != RN_OK)
      return st;
    auto r = pipeline->impl.route({query, task}, request_id ? request_id : "");
    fill_route(out, out->struct_size, out_p, *pipeline, r);
    return RN_OK;
  });
}

rn_status rn_pipeline_route_batch(rn_route* out, double* out_p, size_t out_p_capacity,
                                  const rn_pipeline* pipeline, const char* const* queries,
                                  const char* const* tasks, const char* const* request_ids,
                                  size_t n) {
  const char* fn = "rn_pipeline_route_batch";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr || n == 0, fn, "out is NULL");
    RN_REQUIRE_ARG(pipeline != nullptr, fn, "pipeline is NULL");
    if (n == 0) return RN_OK;
    RN_REQUIRE_ARG(queries != nullptr && tasks != nullptr, fn,
                   "queries and tasks must not be NULL");
    RN_REQUIRE_ARG(n <= (size_t(1) << 32), fn, "n is too large");
    RN_REQUIRE_ARG(rn::struct_size_ok(out, kRouteV1), fn,
                   "out[0].struct_size is not a known rn_route size");
    const uint32_t stride = out->struct_size;
    auto at = [&](size_t i) {
      return reinterpret_cast<rn_route*>(reinterpret_cast<char*>(out) + i * stride);
    };
    std::vector<routenlp::RouteQuery> batch;
    std::vector<std::string> ids;
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      RN_REQUIRE_ARG(at(i)->struct_size == stride, fn,
                     "out[" + std::to_string(i) + "].struct_size differs from out[0]'s");
      RN_REQUIRE_ARG(
          queries[i] != nullptr && tasks[i] != nullptr, fn,
          "queries[" + std::to_string(i) + "] or tasks[" + std::to_string(i) + "] is NULL");
      batch.push_back({queries[i], tasks[i]});
      if (request_ids) ids.push_back(request_ids[i] ? request_ids[i] : "");
    }
    if (rn_status st = check_p_room(fn, *pipeline, out_p, out_p_capacity, n); st != RN_OK)
      return st;
    auto routes = pipeline->impl.route_batch(batch, ids);
    const size_t k = pipeline->tiers.size();
    for (size_t i = 0; i < n; ++i)
      fill_route(at(i), stride, out_p ? out_p + i * k : nullptr, *pipeline, routes[i]);
    return RN_OK;
  });
}

void rn_pipeline_destroy(rn_pipeline* pipeline) {
  delete pipeline;
}

// ---- engine ----

rn_status rn_engine_create(rn_engine** out, const rn_pipeline* pipeline,
                           const rn_tier_vtable* tiers, size_t n_tiers,
                           const rn_cascade_params* params) {
  const char* fn = "rn_engine_create";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    RN_REQUIRE_ARG(pipeline != nullptr, fn, "pipeline is NULL");
    RN_REQUIRE_ARG(tiers != nullptr, fn, "tiers is NULL");
    RN_REQUIRE_ARG(n_tiers == pipeline->tiers.size(), fn,
                   std::to_string(n_tiers) + " tiers given, the pipeline has " +
                       std::to_string(pipeline->tiers.size()));
    RN_REQUIRE_ARG(params == nullptr || rn::struct_size_ok(params, rn::kCascadeParamsV1), fn,
                   "params->struct_size is not a known rn_cascade_params size");
    const rn_cascade_params p = rn::read_struct(params, rn_cascade_params_default());
    RN_REQUIRE_ARG(p.audit_rate >= 0 && p.audit_rate <= 1, fn, "audit_rate must be in [0,1]");
    // Every vtable is checked before any is wrapped: on error nothing is taken.
    for (size_t k = 0; k < n_tiers; ++k) {
      const rn_tier_vtable& v = tiers[k];
      const std::string at = "tiers[" + std::to_string(k) + "]";
      RN_REQUIRE_ARG(rn::struct_size_ok(&v, sizeof(rn_tier_vtable)), fn,
                     at + ".struct_size is not a known rn_tier_vtable size");
      RN_REQUIRE_ARG(v.call != nullptr, fn, at + ".call is NULL");
      RN_REQUIRE_ARG(v.name != nullptr && pipeline->tiers[k] == v.name, fn,
                     at + ".name is '" + (v.name ? v.name : "(null)") + "', the pipeline's tier " +
                         std::to_string(k) + " is '" + pipeline->tiers[k] + "'");
    }
    auto e = std::make_unique<rn_engine>(pipeline->impl);
    e->hooks.reserve(n_tiers);
    std::vector<std::shared_ptr<routenlp::ModelTier>> ts;
    for (size_t k = 0; k < n_tiers; ++k) {
      // The tier does not run destroy itself: the engine handle takes it over only once
      // everything that can fail has succeeded.
      rn_tier_vtable v = rn::read_struct(&tiers[k], rn_tier_vtable(RN_TIER_VTABLE_INIT));
      v.destroy = nullptr;
      ts.push_back(routenlp::make_c_tier(v));
    }
    routenlp::CascadeOptions o;
    o.threads = p.n_threads;
    o.audit_rate = p.audit_rate;
    if (p.decision_log_path)
      o.decision_log = std::make_shared<routenlp::JsonlFileSink>(p.decision_log_path);
    if (p.online) {
      auto table = pipeline->impl.thresholds();
      routenlp::OnlineOptions oo;
      oo.audit_rate = p.audit_rate;
      oo.aci.alpha = table->alphas[table->base_alpha];
      e->online = std::make_shared<routenlp::OnlineRecalibrator>(table, oo);
      if (auto cal = pipeline->impl.calibration()) {
        // Thresholds follow ACI only where the calibration kept its delta(alpha) curves; one
        // without them (an older file, quality-target mode) still gets ACI tracking and the
        // drift monitors, with its calibrated deltas.
        try {
          e->online->set_curves_from(*cal);
        } catch (const routenlp::Error&) {
        }
      }
      o.online = e->online;
    }
    e->impl = pipeline->impl.make_engine(std::move(ts), std::move(o));
    for (size_t k = 0; k < n_tiers; ++k)  // capacity reserved above: cannot throw
      e->hooks.emplace_back(tiers[k].destroy, tiers[k].user_data);
    *out = e.release();
    return RN_OK;
  });
}

rn_status rn_engine_run(rn_result** out, const rn_engine* engine,
                        const rn_cascade_request* request) {
  const char* fn = "rn_engine_run";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    *out = nullptr;
    RN_REQUIRE_ARG(engine != nullptr, fn, "engine is NULL");
    RN_REQUIRE_ARG(request != nullptr, fn, "request is NULL");
    if (rn_status st = rn::check_request(fn, "request", request, engine->impl->tier_count());
        st != RN_OK)
      return st;
    const rn_cascade_request c =
        rn::read_struct(request, rn_cascade_request(RN_CASCADE_REQUEST_INIT));
    routenlp::RouterScores scores;
    if (!c.router_p && engine->pipeline.router())
      scores = engine->pipeline.router()->score_one({c.query, c.task});
    auto res = std::make_unique<rn_result>();
    res->impl = engine->impl->run(engine_request(*engine, c, scores));
    *out = res.release();
    return RN_OK;
  });
}

rn_status rn_engine_run_batch(rn_result** out, const rn_engine* engine,
                              const rn_cascade_request* const* requests, size_t n) {
  const char* fn = "rn_engine_run_batch";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr || n == 0, fn, "out is NULL");
    for (size_t i = 0; i < n; ++i) out[i] = nullptr;
    RN_REQUIRE_ARG(engine != nullptr, fn, "engine is NULL");
    if (n == 0) return RN_OK;
    RN_REQUIRE_ARG(requests != nullptr, fn, "requests is NULL");
    std::vector<rn_cascade_request> cs;
    cs.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const std::string what = "requests[" + std::to_string(i) + "]";
      RN_REQUIRE_ARG(requests[i] != nullptr, fn, what + " is NULL");
      if (rn_status st =
              rn::check_request(fn, what.c_str(), requests[i], engine->impl->tier_count());
          st != RN_OK)
        return st;
      cs.push_back(rn::read_struct(requests[i], rn_cascade_request(RN_CASCADE_REQUEST_INIT)));
    }
    // One batched router call for the requests that bring no scores of their own.
    std::vector<routenlp::RouterScores> scores(n);
    if (auto router = engine->pipeline.router()) {
      std::vector<size_t> idx;
      std::vector<routenlp::RouteQuery> batch;
      for (size_t i = 0; i < n; ++i)
        if (!cs[i].router_p) {
          idx.push_back(i);
          batch.push_back({cs[i].query, cs[i].task});
        }
      if (!batch.empty()) {
        auto s = router->score(batch);
        if (s.size() != batch.size())
          return rn::fail(RN_ERR_INTERNAL, std::string(fn) + ": router returned " +
                                               std::to_string(s.size()) + " rows for " +
                                               std::to_string(batch.size()) + " queries");
        for (size_t j = 0; j < idx.size(); ++j) scores[idx[j]] = std::move(s[j]);
      }
    }
    std::vector<routenlp::CascadeRequest> reqs;
    reqs.reserve(n);
    for (size_t i = 0; i < n; ++i) reqs.push_back(engine_request(*engine, cs[i], scores[i]));
    auto results = engine->impl->run_batch(reqs);
    std::vector<std::unique_ptr<rn_result>> hs;
    hs.reserve(n);
    for (auto& r : results) {
      hs.push_back(std::make_unique<rn_result>());
      hs.back()->impl = std::move(r);
    }
    for (size_t i = 0; i < n; ++i) out[i] = hs[i].release();
    return RN_OK;
  });
}

rn_status rn_engine_record_feedback(rn_engine* engine, const char* request_id, int acceptable) {
  const char* fn = "rn_engine_record_feedback";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(engine != nullptr, fn, "engine is NULL");
    RN_REQUIRE_ARG(request_id != nullptr, fn, "request_id is NULL");
    if (!engine->impl->record_outcome(request_id, acceptable != 0))
      return rn::fail(RN_ERR_INVALID_ARGUMENT, std::string(fn) + ": request '" + request_id +
                                                   "' is unknown (not audited or too old)");
    return RN_OK;
  });
}

rn_status rn_engine_metrics_text(char* out, size_t capacity, size_t* out_size,
                                 const rn_engine* engine) {
  const char* fn = "rn_engine_metrics_text";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out_size != nullptr, fn, "out_size is NULL");
    *out_size = 0;
    RN_REQUIRE_ARG(out != nullptr || capacity == 0, fn, "out is NULL but capacity > 0");
    RN_REQUIRE_ARG(engine != nullptr, fn, "engine is NULL");
    const std::string text = engine->impl->metrics_prometheus();
    *out_size = text.size() + 1;
    if (capacity < text.size() + 1) {
      if (capacity > 0) out[0] = '\0';
      return rn::fail(RN_ERR_INVALID_ARGUMENT,
                      std::string(fn) + ": capacity " + std::to_string(capacity) + " < " +
                          std::to_string(text.size() + 1) + " bytes needed (see *out_size)");
    }
    std::memcpy(out, text.c_str(), text.size() + 1);
    return RN_OK;
  });
}

rn_status rn_engine_cell_state(rn_cell_state* out, const rn_engine* engine, size_t tier,
                               const char* column) {
  const char* fn = "rn_engine_cell_state";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    RN_REQUIRE_ARG(rn::struct_size_ok(out, kCellStateV1), fn,
                   "out->struct_size is not a known rn_cell_state size");
    RN_REQUIRE_ARG(engine != nullptr, fn, "engine is NULL");
    RN_REQUIRE_ARG(column != nullptr, fn, "column is NULL");
    rn_cell_state s;
    std::memset(&s, 0, sizeof s);
    s.struct_size = out->struct_size;
    s.status = cell_status_of(engine->pipeline, tier, column);
    s.alpha_t = kNaN;
    if (engine->online) {
      const auto c = engine->online->cell_state(tier, column);
      s.online = 1;
      s.delta = c.delta;
      s.alpha_t = c.alpha_t;
      s.cusum = c.cusum;
      s.labels = c.labels;
      s.accepted_labels = c.accepted_labels;
      s.accepted_bad = c.accepted_bad;
      s.alarms = c.alarms;
      s.calibrated_delta = c.delta;
      for (const auto& cell : engine->online->cells())
        if (cell.tier == tier && cell.column == column) {
          s.cusum_alarms = cell.cusum_alarms;
          s.window_alarms = cell.window_alarms;
          s.stall_alarms = cell.stall_alarms;
          s.calibrated_delta = cell.calibrated_delta;
          s.has_curve = cell.has_curve ? 1 : 0;
          s.last_alarm_unix_s = cell.last_alarm_unix_s;
        }
    } else {
      auto t = engine->impl->thresholds();
      auto it = t->column_index.find(column);
      RN_REQUIRE_ARG(it != t->column_index.end(), fn,
                     std::string("no column '") + column + "' in the thresholds");
      s.delta = t->at(t->base_alpha, tier, static_cast<size_t>(it->second));
      s.calibrated_delta = s.delta;
    }
    std::memcpy(out, &s, std::min<size_t>(out->struct_size, sizeof s));
    return RN_OK;
  });
}

void rn_engine_destroy(rn_engine* engine) {
  delete engine;
}

}  // extern "C"
