// RouteServer: the HTTP server behind `routenlp serve` (cpp-httplib). See docs/serving.md.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>

#include "common/utc_time.hpp"
#include "serve/access_control.hpp"
#include "serve/conversation_tier.hpp"
#include "serve/guarded_server.hpp"
#include "serve/http_metrics.hpp"
#include "serve/json_request.hpp"
#include "state/redis_state.hpp"
#include "routenlp/tiers/openai_tier.hpp"
#include "routenlp/serve/serve.hpp"

namespace routenlp {

using json = nlohmann::json;
using namespace serve_detail;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------

struct RouteServer::Impl {
  ServeSetup setup;
  ServeOptions options;
  serve_detail::GuardedServer svr;
  std::unique_ptr<CascadeEngine> engine;
  std::shared_ptr<OnlineRecalibrator> online;
  // Shared online state (setup.state.url); declared after engine so it stops first.
  std::unique_ptr<state::RedisState> shared_state;
  HttpMetrics metrics;
  std::string default_task = "default";
  // Every router a "router-<name>-<t>" policy can select: the main one under its name(), then
  // setup.routers under their configured names.
  std::map<std::string, std::shared_ptr<const RouterModel>> routers_by_name;
  int port = -1;
  std::atomic<bool> stopping{false};
  std::atomic<bool> run_active{false};
  std::atomic<uint64_t> next_id{0};
  std::string id_prefix;

  AccessControl access{{}};
  std::unique_ptr<AccessLog> access_log;
  mutable std::mutex policy_mu;
  std::map<std::string, uint64_t> policy_requests;  // successful requests per policy / model name

  // What the request being handled on this thread did (access log, key accounting).
  struct RequestInfo {
    KeyState* key = nullptr;
    double cost = 0.0;
    int tier = -1;
    std::string tier_name, policy, request_id, prompt;
  };
  static RequestInfo& info() {
    thread_local RequestInfo i;
    return i;
  }

  std::mutex conv_mu;
  std::unordered_map<std::string, std::shared_ptr<ChatContext>> conversations;

  Impl(ServeSetup s, ServeOptions o) : setup(std::move(s)), options(std::move(o)) {
    // A pipeline brings its own portfolio, router, thresholds and acceptance score; it is the
    // default policy unless the options name another.
    if (setup.pipeline) {
      setup.portfolio = setup.pipeline->portfolio();
      setup.router = setup.pipeline->router();
      setup.thresholds = setup.pipeline->thresholds();
      if (options.default_policy == ServeOptions{}.default_policy) options.default_policy = "pipeline";
    } else if (!setup.router) {
      throw Error(Status::invalid_argument, "serve: no router (and no pipeline)");
    }
    if (setup.portfolio.tiers.empty()) throw Error(Status::invalid_argument, "serve: portfolio has no tiers");
    std::vector<std::string> pt;
    for (const auto& t : setup.portfolio.tiers) pt.push_back(t.name);
    if (setup.router && setup.router->tiers() != pt)
      throw Error(Status::invalid_argument,
                  "serve: the router's tiers differ from the portfolio's (router '" +
                      setup.router->name() + "' has " + std::to_string(setup.router->tiers().size()) + " tiers)");
    if (setup.router) routers_by_name[setup.router->name()] = setup.router;
    for (const auto& nr : setup.routers) {
      if (nr.name.empty() || !nr.router)
        throw Error(Status::invalid_argument, "serve: each of routers needs a name and a router");
      if (nr.router->tiers() != pt)
        throw Error(Status::invalid_argument, "serve: router '" + nr.name + "' has other tiers than the portfolio's");
      if (!routers_by_name.emplace(nr.name, nr.router).second)
        throw Error(Status::invalid_argument, "serve: two routers are named '" + nr.name + "'");
    }
    if (options.threads == 0 || options.threads > 1024)
      throw Error(Status::invalid_argument, "serve: threads must be in [1, 1024]");
    // Validate the default policy now rather than on the first request.
    if (!uses_pipeline(options.default_policy)) {
      if (!setup.router) throw Error(Status::invalid_argument, "serve: default policy '" + options.default_policy + "' needs a router; the pipeline has none");
      make_named_policy(options.default_policy, setup.portfolio, *setup.router);
    }
    access = AccessControl(setup.api_keys);
    if (!setup.access_log.empty()) access_log = std::make_unique<AccessLog>(setup.access_log);
    id_prefix = "rn-" + std::to_string(static_cast<long long>(std::time(nullptr))) + "-";

    if (!setup.tiers.empty()) {
      if (setup.tiers.size() != setup.portfolio.tiers.size())
        throw Error(Status::invalid_argument, "serve: need one tier per portfolio tier (got " +
                                                  std::to_string(setup.tiers.size()) + ")");
      std::vector<std::shared_ptr<ModelTier>> wrapped;
      for (size_t k = 0; k < setup.tiers.size(); ++k) {
        if (!setup.tiers[k] || setup.tiers[k]->name() != setup.portfolio.tiers[k].name)
          throw Error(Status::invalid_argument, "serve: tier " + std::to_string(k) +
                                                    " must be named '" +
                                                    setup.portfolio.tiers[k].name + "'");
        wrapped.push_back(std::make_shared<ConversationTier>(
            setup.tiers[k], [this](const std::string& id) {
              std::lock_guard<std::mutex> lock(conv_mu);
              auto it = conversations.find(id);
              return it == conversations.end() ? nullptr : it->second;
            }));
      }
      auto table = setup.thresholds;
      if (!table) {
        std::vector<std::string> names;
        for (const auto& t : setup.portfolio.tiers) names.push_back(t.name);
        table = std::make_shared<ThresholdTable>(ThresholdTable::escalate_all(names, setup.portfolio.alpha));
      }
      OnlineOptions oo;
      oo.audit_rate = setup.audit_rate;
      oo.aci.alpha = setup.portfolio.alpha;
      online = std::make_shared<OnlineRecalibrator>(table, oo);
      // Feedback moves thresholds along the calibration's delta(alpha) curves (guarantee mode);
      // without curves (quality-target plans, an old file) ACI and the monitors still run.
      auto cal = setup.pipeline ? setup.pipeline->calibration() : setup.calibration;
      if (cal) online->set_curves(cal->result());
      CascadeOptions co;
      if (setup.pipeline) co.acceptance = setup.pipeline->acceptance();
      co.threads = std::max<size_t>(1, std::min<size_t>(options.threads, 8));
      co.online = online;
      co.audit_rate = setup.audit_rate;
      if (!setup.decision_log.empty()) co.decision_log = std::make_shared<JsonlFileSink>(setup.decision_log);
      if (!setup.state.url.empty()) {
        // Audited notes go to Redis too, so /feedback on any replica finds them.
        co.on_audit = [this](const std::string& id, const DecisionNote& note) {
          if (shared_state) shared_state->note_decision(id, note);
        };
      }
      engine = std::make_unique<CascadeEngine>(std::move(wrapped), table, co);
      if (!setup.state.url.empty()) start_shared_state();
    } else if (!setup.state.url.empty()) {
      throw Error(Status::invalid_argument, "serve: shared state needs tier endpoints (the online state is the cascade's)");
    }
    install_routes();
  }

  std::string new_id() { return id_prefix + std::to_string(++next_id); }

  // Every replica applies the shared feedback stream in stream order through the engine (audited
  // metrics + online->apply_outcome); /feedback only appends to it.
  void start_shared_state() {
    state::RedisStateOptions so;
    const StateOptions& s = setup.state;
    so.url = s.url;
    so.prefix = s.prefix;
    so.degraded_on_start_failure = s.degraded_on_start_failure;
    so.queue_max = s.queue_max;
    so.checkpoint_every = s.checkpoint_every;
    so.checkpoint_interval_s = s.checkpoint_interval_s;
    so.note_ttl_s = s.note_ttl_s;
    so.dedup_ttl_s = s.feedback_ttl_s;
    so.timeout_ms = s.timeout_ms;
    CascadeEngine* e = engine.get();
    auto st = std::make_unique<state::RedisState>(
        so, online, [e](const std::string& id, const DecisionNote& note, bool ok, double t) {
          e->apply_outcome(id, note, ok, t);
        });
    st->start();
    shared_state = std::move(st);
  }

  json state_json() const {
    if (!shared_state) return json{{"backend", "local"}};
    const auto s = shared_state->stats();
    return json{{"backend", "redis"},
                {"url", shared_state->url_redacted()},
                {"connected", s.connected},
                {"synced", s.synced},
                {"events_applied", s.applied},
                {"last_id", s.last_id},
                {"last_seq", s.last_seq},
                {"lag", s.lag},
                {"feedback_queued", s.queued},
                {"feedback_dropped", s.dropped},
                {"digest", online ? online->state_digest() : ""}};
  }

  // Runs a handler body with JSON parsing, error mapping, metrics and in-flight accounting.
  template <class F>
  void handle(const httplib::Request& req, httplib::Response& res, const std::string& route, F&& body) {
    auto t0 = Clock::now();
    ++metrics.in_flight;
    RequestInfo& ri = info();
    ri = RequestInfo{};
    try {
      if (access.enabled() && route != "/health") {
        Admission a = access.admit(req.get_header_value("Authorization"));
        ri.key = a.key;
        if (a.status != 0) {
          if (a.status == 401) res.set_header("WWW-Authenticate", "Bearer");
          if (a.retry_after_s > 0)
            res.set_header("Retry-After", std::to_string(static_cast<long long>(std::ceil(a.retry_after_s))));
          throw HttpError{a.status, a.message, a.type};
        }
      }
      json in;
      if (req.method == "POST") {
        in = json::parse(req.body, nullptr, false);
        if (in.is_discarded()) throw bad_request("request body is not valid JSON");
        if (!in.is_object()) throw bad_request("request body must be a JSON object");
      }
      json out = body(in, res);
      if (res.status == -1 || res.status == 0) res.status = 200;
      if (!out.is_null())  // null: the handler set the body itself (server-sent events)
        res.set_content(out.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
    } catch (const HttpError& e) {
      res.status = e.status;
      if (e.type == "__raw__") {  // message is already the whole JSON body
        res.set_content(e.message, "application/json");
      } else {
        res.set_content(error_body(e.status, e.message, e.type).dump(-1, ' ', false, json::error_handler_t::replace),
                        "application/json");
      }
    } catch (const Error& e) {
      // Client mistakes are raised as HttpError above; a routenlp::Error reaching here came from
      // the router, engine or a tier, whatever its status: a server-side failure.
      int status = e.code() == Status::tier        ? 502
                   : e.code() == Status::timeout   ? 504
                   : e.code() == Status::cancelled ? 503
                                                   : 500;
      res.status = status;
      res.set_content(error_body(status, std::string("server error (") + status_name(e.code()) + "): " + e.what(),
                                 status == 502 || status == 504 ? "upstream_error" : "server_error")
                          .dump(-1, ' ', false, json::error_handler_t::replace),
                      "application/json");
    } catch (const std::exception& e) {
      res.status = 500;
      res.set_content(error_body(500, std::string("internal error: ") + e.what(), "server_error")
                          .dump(-1, ' ', false, json::error_handler_t::replace),
                      "application/json");
    }
    --metrics.in_flight;
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    AccessControl::record(ri.key, res.status, ri.cost);
    if (res.status == 200 && !ri.policy.empty()) {
      std::lock_guard<std::mutex> lock(policy_mu);
      ++policy_requests[ri.policy];
    }
    if (access_log) {
      json line = {{"time", detail::utc_now_iso8601()}, {"key_id", ri.key ? json(ri.key->key.id) : json(nullptr)},
                   {"route", route}, {"model", ri.policy}, {"status", res.status},
                   {"tier", ri.tier}, {"tier_name", ri.tier_name}, {"cost_usd", ri.cost},
                   {"latency_ms", seconds * 1000.0}, {"request_id", ri.request_id}};
      if (setup.access_log_prompts) line["prompt"] = ri.prompt;
      access_log->write(line.dump(-1, ' ', false, json::error_handler_t::replace));
    }
    metrics.observe(route, seconds);
    // Counted here, before the response is sent, so a client reading /metrics right after
    // sees it; the logger counts only what no handler saw (404, 413, ...).
    metrics.count(route, res.status);
    counted_by_handler() = true;
  }

  static bool& counted_by_handler() {
    thread_local bool counted = false;
    return counted;
  }

  json decision_json(const RoutingDecision& d) const {
    json scores = json::object();
    const auto& tiers = setup.portfolio.tiers;
    for (size_t k = 0; k < tiers.size() && k < d.scores.p_acceptable.size(); ++k)
      scores[tiers[k].name] = d.scores.p_acceptable[k];
    json j = {{"tier", d.tier},
              {"tier_name", d.tier >= 0 && d.tier < static_cast<int>(tiers.size()) ? tiers[d.tier].name : ""},
              {"policy", d.policy},
              {"reason", d.reason},
              {"difficulty", d.scores.difficulty},
              {"task_unseen", d.scores.task_unseen},
              {"scores", scores}};
    return j;
  }

  // The decision-log record ("tier" the index, "tier_name" the name, as everywhere) plus the
  // fields a client needs.
  json cascade_json(const CascadeResult& r) const {
    json j = json::parse(decision_to_json(r), nullptr, false);
    if (j.is_discarded()) j = json::object();
    j["request_id"] = r.request_id;
    j["status"] = status_name(r.status);
    j["answer"] = r.answer;
    j["uncertain"] = r.uncertain;
    j["cost_usd"] = r.cost;
    j["latency_ms"] = r.latency_ms;
    j["feedback"] = r.audited;
    if (r.status != Status::ok) j["error"] = r.error;
    return j;
  }

  RouteQuery read_query(const json& q, const std::string& where) const {
    RouteQuery rq;
    rq.query = get_string(q, "query", where);
    rq.task = get_string(q, "task", where, &default_task);
    if (rq.task.empty()) rq.task = default_task;
    return rq;
  }

  // A routing decision and, under the pipeline policy, the pipeline's own cascade request
  // (start rule left to the engine, router p, the task's alpha).
  struct Routed {
    RoutingDecision decision;
    std::optional<CascadeRequest> request;
    PipelineRoute route;
  };

  bool uses_pipeline(const std::string& spec) const {
    return setup.pipeline && (spec == "pipeline" || spec == "routenlp" || spec == "auto" || spec.empty());
  }

  // Client-chosen request id ("request_id"), else a fresh one. It keys /feedback, the decision
  // log and the side of a randomised plan mixture.
  std::string request_id_of(const json& in, const std::string& where) {
    const json* v = field(in, "request_id");
    if (v == nullptr) return new_id();
    if (!v->is_string()) throw bad_request(where + "request_id: expected a string");
    std::string id = v->get<std::string>();
    if (id.empty() || id.size() > 128 ||
        id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") != std::string::npos)
      throw bad_request(where + "request_id: 1-128 characters of [A-Za-z0-9._:-]");
    return id;
  }

  Routed pipeline_routed(CascadeRequest req, RouterScores scores) const {
    Routed r;
    r.route = setup.pipeline->route_request(req);
    r.decision.tier = r.route.first_tier;
    r.decision.scores = std::move(scores);
    r.decision.policy = "pipeline";
    r.decision.reason = r.route.reason;
    r.request = std::move(req);
    return r;
  }

  // Routes a batch. Client mistakes (an unknown policy) are HttpError 4xx; anything the router,
  // the policy or the pipeline throws while deciding is the server's fault: 500, never 400.
  std::vector<Routed> route_queries(const std::vector<RouteQuery>& batch, const std::string& spec,
                                    const std::vector<std::string>& ids) const {
    std::unique_ptr<RoutingPolicy> policy;
    const RouterModel* router = setup.router.get();
    if (!uses_pipeline(spec)) {
      std::string named = spec;
      if (spec.rfind("router-", 0) == 0 && !routers_by_name.empty()) {
        // router-<name>-<t>: the router named <name> (main or setup.routers).
        auto dash = spec.rfind('-');
        std::string name = dash > 7 ? spec.substr(7, dash - 7) : "";
        auto it = routers_by_name.find(name);
        if (it == routers_by_name.end())
          throw bad_request("policy '" + spec + "': no router named '" + name + "' is served (served: " +
                            served_routers_text() + ")");
        router = it->second.get();
        named = "router-" + router->name() + spec.substr(dash);
      }
      if (!router) throw bad_request("policy '" + spec + "' needs a router; this pipeline has none (use pipeline)");
      try {
        policy = make_named_policy(named, setup.portfolio, *router);
      } catch (const Error& e) {
        throw bad_request(std::string(e.what()) + (named == spec ? "" : " [policy '" + spec + "']"));
      }
    }
    try {
      return decide(batch, policy.get(), router, ids);
    } catch (const HttpError&) {
      throw;
    } catch (const std::exception& e) {
      const std::string who = router ? "router '" + router->name() + "'" : std::string("pipeline");
      throw HttpError{500, "routing failed on the server (" + who + "): " + e.what(), "server_error"};
    }
  }

  std::string served_routers_text() const {
    std::string s;
    for (const auto& kv : routers_by_name) s += (s.empty() ? "router-" : ", router-") + kv.first + "-<t>";
    return s;
  }

  std::vector<Routed> decide(const std::vector<RouteQuery>& batch, const RoutingPolicy* policy,
                             const RouterModel* router, const std::vector<std::string>& ids) const {
    std::vector<Routed> out;
    if (policy == nullptr) {
      std::vector<RouterScores> scores(batch.size());
      if (setup.router) scores = setup.router->score(batch);
      for (size_t i = 0; i < batch.size(); ++i)
        out.push_back(pipeline_routed(setup.pipeline->request(batch[i], ids[i], scores[i]), scores[i]));
      return out;
    }
    for (auto& d : route_batch(*router, *policy, batch)) {
      Routed r;
      r.decision = std::move(d);
      out.push_back(std::move(r));
    }
    return out;
  }

  CascadeRequest cascade_request(const RouteQuery& q, const Routed& routed, const std::string& id,
                                 const json& in, const std::string& where) {
    const RoutingDecision& d = routed.decision;
    CascadeRequest cr;
    if (routed.request) {
      cr = *routed.request;
    } else {
      cr.query = q.query;
      cr.task = q.task;
      cr.start_tier = d.tier;
      cr.router_p = d.scores.p_acceptable;
    }
    cr.id = id;
    double alpha = get_number(in, "alpha", where, std::nan(""));
    if (!std::isnan(alpha) && !(alpha > 0 && alpha < 1)) throw bad_request(where + "alpha: must be in (0,1)");
    if (!std::isnan(alpha)) cr.alpha = alpha;
    double budget = get_number(in, "budget_usd", where, -1.0);
    if (budget >= 0) cr.budget_usd = budget;
    cr.budget_usd = std::min(cr.budget_usd, AccessControl::remaining_usd(info().key));  // the key's budget
    double deadline = get_number(in, "deadline_ms", where, options.default_deadline_ms);
    if (deadline < 0) throw bad_request(where + "deadline_ms: must be >= 0");
    cr.deadline_ms = deadline;
    if (!get_bool(in, "cascade", where, true)) {
      cr.start_tier = d.tier;
      cr.max_tier = d.tier;
    }
    return cr;
  }

  void require_engine() const {
    if (!engine) throw HttpError{503, "no tier endpoints are configured: routing only", "unavailable"};
  }

  std::string policy_spec(const json& in, const char* key) const {
    return get_string(in, key, "", &options.default_policy);
  }

  json routed_json(const Routed& r) const {
    json j = decision_json(r.decision);
    if (r.request) {
      const auto& tiers = setup.portfolio.tiers;
      j["start_tier"] = tiers[size_t(r.route.start_tier)].name;
      j["column"] = r.route.column;
    }
    return j;
  }

  // /feedback with shared state: 200 only once Redis holds the label (durable as Redis is);
  // 202 when Redis is unreachable and the label is buffered on this replica.
  json shared_feedback(const std::string& id, bool acceptable, httplib::Response& res) {
    using F = state::RedisState::Feedback;
    std::string stream_id;
    switch (shared_state->feedback(id, acceptable, &stream_id)) {
      case F::recorded:
        return json{{"recorded", true}, {"request_id", id}, {"stream_id", stream_id}};
      case F::duplicate:
        return json{{"recorded", true}, {"duplicate", true}, {"request_id", id}};
      case F::queued:
        res.status = 202;
        return json{{"recorded", false}, {"queued", true}, {"request_id", id}};
      case F::unknown:
        break;
      case F::unavailable:
        res.set_header("Retry-After", "1");
        throw HttpError{503, "request_id '" + id + "': the shared state (Redis) is unreachable and this replica does not hold the request; retry", "unavailable"};
    }
    throw HttpError{404, "request_id '" + id + "' is unknown (not audited, or too old)", "not_found"};
  }

  void install_routes() {
    svr.Get("/health", [this](const httplib::Request& req, httplib::Response& res) {
      handle(req, res, "/health", [this](const json&, httplib::Response&) {
        return json{{"status", stopping ? "stopping" : "ok"},
                    {"router", setup.router ? setup.router->name() : "none"},
                    {"pipeline", setup.pipeline ? setup.pipeline->manifest().system : ""},
                    {"tiers", [this] {
                       json t = json::array();
                       for (const auto& x : setup.portfolio.tiers) t.push_back(x.name);
                       return t;
                     }()},
                    {"routers", [this] {
                       json r = json::array();
                       for (const auto& kv : routers_by_name) r.push_back(kv.first);
                       return r;
                     }()},
                    {"execute", engine != nullptr},
                    {"state", state_json()}};
      });
    });
    svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      auto t0 = Clock::now();
      res.set_content(metrics_text(), "text/plain; version=0.0.4");
      metrics.observe("/metrics", std::chrono::duration<double>(Clock::now() - t0).count());
    });
    svr.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
      handle(req, res, "/v1/models", [this](const json&, httplib::Response&) {
        json data = json::array();
        size_t n_tiers = setup.portfolio.tiers.size();
        auto names = served_models();
        for (size_t i = 0; i < names.size(); ++i)
          data.push_back({{"id", names[i]}, {"object", "model"}, {"owned_by", "routenlp"},
                          {"routenlp_kind", i < n_tiers ? "tier" : "policy"}});
        return json{{"object", "list"}, {"data", data}};
      });
    });
    svr.Post("/route", [this](const httplib::Request& req, httplib::Response& res) {
      handle(req, res, "/route", [this](const json& in, httplib::Response&) {
        RouteQuery q = read_query(in, "");
        const std::string id = request_id_of(in, "");
        RequestInfo& ri = info();
        ri.policy = policy_spec(in, "policy");
        ri.request_id = id;
        ri.prompt = q.query;
        Routed r = route_queries({q}, ri.policy, {id}).at(0);
        metrics.decision(setup.portfolio.tiers[r.decision.tier].name);
        ri.tier = r.decision.tier;
        ri.tier_name = setup.portfolio.tiers[r.decision.tier].name;
        json out = routed_json(r);
        out["request_id"] = id;
        if (get_bool(in, "execute", "", false)) {
          require_engine();
          CascadeResult cres = engine->run(cascade_request(q, r, id, in, ""));
          ri.cost = cres.cost;
          ri.tier = cres.tier;
          ri.tier_name = cres.tier_name;
          out["cascade"] = cascade_json(cres);
        }
        return out;
      });
    });
    svr.Post("/route/batch", [this](const httplib::Request& req, httplib::Response& res) {
      handle(req, res, "/route/batch", [this](const json& in, httplib::Response&) {
        const json* qs = field(in, "queries");
        if (qs == nullptr || !qs->is_array()) throw bad_request("queries: required array is missing");
        if (qs->empty()) throw bad_request("queries: empty");
        if (qs->size() > options.max_batch)
          throw HttpError{413, "queries: " + std::to_string(qs->size()) + " exceeds max_batch " +
                                   std::to_string(options.max_batch), "invalid_request_error"};
        std::vector<RouteQuery> batch;
        std::vector<std::string> ids;
        for (size_t i = 0; i < qs->size(); ++i) {
          std::string where = "queries[" + std::to_string(i) + "].";
          if (!(*qs)[i].is_object()) throw bad_request(where.substr(0, where.size() - 1) + ": expected an object");
          batch.push_back(read_query((*qs)[i], where));
          ids.push_back(request_id_of((*qs)[i], where));
        }
        info().policy = policy_spec(in, "policy");
        auto decisions = route_queries(batch, info().policy, ids);
        bool execute = get_bool(in, "execute", "", false);
        if (execute) require_engine();
        std::vector<CascadeRequest> crs;
        json arr = json::array();
        for (size_t i = 0; i < decisions.size(); ++i) {
          metrics.decision(setup.portfolio.tiers[decisions[i].decision.tier].name);
          arr.push_back(routed_json(decisions[i]));
          arr.back()["request_id"] = ids[i];
          if (execute) crs.push_back(cascade_request(batch[i], decisions[i], ids[i], in, ""));
        }
        if (execute) {
          auto results = engine->run_batch(crs);
          for (size_t i = 0; i < results.size(); ++i) {
            arr[i]["cascade"] = cascade_json(results[i]);
            info().cost += results[i].cost;
          }
        }
        return json{{"decisions", arr}};
      });
    });
    svr.Post("/feedback", [this](const httplib::Request& req, httplib::Response& res) {
      handle(req, res, "/feedback", [this](const json& in, httplib::Response& res) {
        require_engine();
        std::string id = get_string(in, "request_id", "");
        const json* acc = field(in, "acceptable");
        if (acc == nullptr || !acc->is_boolean()) throw bad_request("acceptable: required true or false");
        if (shared_state) return shared_feedback(id, acc->get<bool>(), res);
        if (!engine->record_outcome(id, acc->get<bool>()))
          throw HttpError{404, "request_id '" + id + "' is unknown (not audited, or too old)", "not_found"};
        return json{{"recorded", true}, {"request_id", id}};
      });
    });
    svr.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      handle(req, res, "/v1/chat/completions", [this, &req](const json& in, httplib::Response& r) {
        return chat_completions(in, r, req);
      });
    });

    svr.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // a handler already wrote a JSON error
      std::string msg, type = "invalid_request_error";
      if (const char* cut = serve_detail::current_cut()) {  // our read limits stopped the request
        res.status = 408;
        msg = cut;
      } else if (res.status == 404) {
        msg = "no route for " + req.method + " " + req.path;
        type = "not_found";
      } else if (res.status == 413) {
        msg = "request body exceeds " + std::to_string(options.max_body_bytes) + " bytes";
      } else if (res.status == 400) {
        msg = "malformed HTTP request";
      } else {
        msg = "HTTP " + std::to_string(res.status);
      }
      res.set_content(error_body(res.status, msg, type).dump(), "application/json");
    });
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown";
      try {
        if (ep) std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      res.status = 500;
      res.set_content(error_body(500, "internal error: " + what, "server_error").dump(), "application/json");
    });
    svr.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      if (counted_by_handler())
        counted_by_handler() = false;
      else
        metrics.count(route_label(req.path), res.status);
    });
    svr.set_tcp_nodelay(true);  // without it Nagle + delayed ACK add ~40 ms per response
    svr.set_payload_max_length(options.max_body_bytes);
    svr.set_read_timeout(options.read_timeout_s, 0);
    svr.set_write_timeout(options.write_timeout_s, 0);
    serve_detail::GuardOptions g;
    g.threads = options.threads;
    g.request_read_timeout_s = options.request_read_timeout_s;
    g.max_connections_per_client = options.max_connections_per_client < 0
                                       ? std::max<size_t>(1, options.threads / 2)
                                       : static_cast<size_t>(options.max_connections_per_client);
    g.reserve_threads = options.reserve_threads;
    g.read_timeout_s = options.read_timeout_s;
    g.write_timeout_s = options.write_timeout_s;
    g.keep_alive_timeout_s = options.keep_alive_timeout_s;
    g.keep_alive_max_count = options.keep_alive_max_count;
    g.listen_backlog = options.listen_backlog;
    svr.configure(g);  // our connection loop and worker pool (guarded_server.hpp)
  }

  // Generation parameters a chat request may give; passed to the OpenAI-compatible tier that
  // is called (docs/serving.md "Chat completions").
  static const std::vector<std::string>& passthrough_params() {
    static const std::vector<std::string> names = {
        "temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty",
        "tools", "tool_choice", "parallel_tool_calls", "response_format", "logprobs",
        "top_logprobs", "logit_bias", "user", "max_completion_tokens"};
    return names;
  }

  // A message's content as text: a string, or an array of parts of which only "text" parts
  // are accepted (joined with "\n"); other part types are a 400 naming the part.
  static std::string content_text(const json& m, const std::string& where) {
    const json* c = field(m, "content");
    if (c == nullptr) {
      if (field(m, "tool_calls")) return "";  // an assistant message carrying tool calls
      throw bad_request(where + "content: required string or array of parts is missing");
    }
    if (c->is_string()) return c->get<std::string>();
    if (!c->is_array()) throw bad_request(where + "content: expected a string or an array of parts");
    std::string text;
    for (size_t j = 0; j < c->size(); ++j) {
      const json& part = (*c)[j];
      std::string pw = where + "content[" + std::to_string(j) + "].";
      if (!part.is_object()) throw bad_request(pw.substr(0, pw.size() - 1) + ": expected an object");
      std::string type = get_string(part, "type", pw);
      if (type != "text")
        throw bad_request(pw + "type: '" + type + "' parts are not supported (text parts only)");
      if (!text.empty()) text += "\n";
      text += get_string(part, "text", pw);
    }
    return text;
  }

  // The task: body "task", else header x-routenlp-task, else the model's ":<task>" suffix,
  // else the default.
  std::string chat_task(const json& in, const httplib::Request& req, const std::string& model_task) const {
    static const std::string none;
    std::string t = get_string(in, "task", "", &none);
    if (t.empty()) t = req.get_header_value("x-routenlp-task");
    if (t.empty()) t = model_task;
    return t.empty() ? default_task : t;
  }

  json chat_completions(const json& in, httplib::Response& res, const httplib::Request& req) {
    static const std::string no_model;  // absent: the default policy
    std::string model = get_string(in, "model", "", &no_model);
    const json* msgs = field(in, "messages");
    if (msgs == nullptr || !msgs->is_array() || msgs->empty())
      throw bad_request("messages: required non-empty array");
    const bool stream = get_bool(in, "stream", "", false);
    bool stream_usage = false;
    if (const json* so = field(in, "stream_options")) {
      if (!so->is_object()) throw bad_request("stream_options: expected an object");
      stream_usage = get_bool(*so, "include_usage", "stream_options.", false);
    }
    if (const json* n = field(in, "n"); n && !(n->is_number_integer() && n->get<int64_t>() == 1))
      throw bad_request("n: only 1 choice is supported");
    auto ctx = std::make_shared<ChatContext>();
    json raw = json::array();  // messages as sent upstream: content flattened, other fields kept
    std::string last_user;
    for (size_t i = 0; i < msgs->size(); ++i) {
      const auto& m = (*msgs)[i];
      std::string where = "messages[" + std::to_string(i) + "].";
      if (!m.is_object()) throw bad_request("messages[" + std::to_string(i) + "]: expected an object");
      ChatMessage cm{get_string(m, "role", where), content_text(m, where)};
      if (cm.role == "user") last_user = cm.content;
      json r = m;
      if (field(m, "content")) r["content"] = cm.content;
      raw.push_back(std::move(r));
      ctx->messages.push_back(std::move(cm));
    }
    if (last_user.empty() && ctx->messages.back().role != "user") throw bad_request("messages: no user message");
    const char* mt_key = field(in, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    double max_tokens = get_number(in, mt_key, "", -1);
    if (field(in, mt_key) && (max_tokens < 1 || max_tokens > 1e6 || max_tokens != std::floor(max_tokens)))
      throw bad_request(std::string(mt_key) + ": must be a positive integer");
    ctx->max_tokens = max_tokens > 0 ? static_cast<int>(max_tokens) : -1;
    json extra = {{"messages", raw}};
    for (const auto& k : passthrough_params())
      if (const json* v = field(in, k.c_str()); v && k != "max_completion_tokens") extra[k] = *v;
    ctx->extra_body = extra.dump(-1, ' ', false, json::error_handler_t::replace);

    // model: a tier name, or a policy optionally followed by ":<task>".
    std::string model_task;
    int direct = setup.portfolio.tier_index(model);
    if (direct < 0) {
      auto colon = model.rfind(':');
      if (colon != std::string::npos) {
        model_task = model.substr(colon + 1);
        model = model.substr(0, colon);
        direct = setup.portfolio.tier_index(model);
      }
    }
    RouteQuery q{last_user, chat_task(in, req, model_task)};
    RequestInfo& ri = info();
    ri.policy = get_string(in, "model", "", &no_model);
    ri.prompt = last_user;

    require_engine();
    Routed routed;
    const std::string id = request_id_of(in, "");
    res.set_header("x-routenlp-request-id", id);
    ri.request_id = id;
    if (direct >= 0) {
      routed.decision.tier = direct;
      routed.decision.policy = "direct";
      routed.decision.reason = "model names tier '" + model + "'";
    } else {
      const std::string spec = model.empty() ? options.default_policy : model;
      try {
        routed = route_queries({q}, spec, {id}).at(0);
      } catch (const HttpError& e) {
        if (e.status >= 500) throw;  // the router failed: not an unknown model
        throw HttpError{404, "model: " + e.message + " or a tier name (served: " + served_models_text() + ")",
                        "not_found"};
      }
    }
    const RoutingDecision& d = routed.decision;
    metrics.decision(setup.portfolio.tiers[d.tier].name);
    CascadeRequest cr = cascade_request(q, routed, id, in, "");
    if (direct >= 0) cr.max_tier = direct;
    {
      std::lock_guard<std::mutex> lock(conv_mu);
      conversations[cr.id] = ctx;
    }
    CascadeResult r;
    try {
      r = engine->run(cr);
    } catch (...) {
      std::lock_guard<std::mutex> lock(conv_mu);
      conversations.erase(cr.id);
      throw;
    }
    {
      std::lock_guard<std::mutex> lock(conv_mu);
      conversations.erase(cr.id);
    }
    const int64_t pt = ctx->prompt_tokens.load(), ct = ctx->completion_tokens.load();
    json usage = {{"prompt_tokens", pt}, {"completion_tokens", ct}, {"total_tokens", pt + ct}};
    res.set_header("x-routenlp-cost", std::to_string(r.cost));
    ri.cost = r.cost;
    ri.tier = r.tier;
    ri.tier_name = r.tier_name;
    if (r.status != Status::ok) {
      int code = r.status == Status::timeout ? 504 : r.status == Status::budget ? 402 : 502;
      json e = error_body(code, "no tier answered: " + r.error, "upstream_error");
      e["routenlp"] = cascade_json(r);
      e["routenlp"]["usage"] = usage;
      throw HttpError{code, e.dump(-1, ' ', false, json::error_handler_t::replace), "__raw__"};
    }
    res.set_header("x-routenlp-tier", r.tier_name);
    // The answering upstream's finish_reason and tool calls (non-streamed answers only: a
    // stream carries the text and "stop").
    const openai::ChatExtras extras = ctx->extras_of(r.tier_name);
    json message = {{"role", "assistant"}, {"content", r.answer}};
    std::string finish = "stop";
    if (!stream) {
      if (!extras.finish_reason.empty()) finish = extras.finish_reason;
      json calls = extras.tool_calls.empty() ? json() : json::parse(extras.tool_calls, nullptr, false);
      if (calls.is_array() && !calls.empty()) {
        message["tool_calls"] = std::move(calls);
        if (r.answer.empty()) message["content"] = nullptr;
      }
    }
    json out = {{"id", "chatcmpl-" + r.request_id},
                {"object", "chat.completion"},
                {"created", static_cast<long long>(std::time(nullptr))},
                {"model", r.tier_name},
                {"choices", json::array({{{"index", 0},
                                          {"message", std::move(message)},
                                          {"logprobs", nullptr},
                                          {"finish_reason", finish}}})},
                {"usage", usage}};
    json rn = cascade_json(r);
    rn["routing"] = routed_json(routed);
    rn["task"] = q.task;
    rn["usage_estimated_calls"] = ctx->estimated_calls.load();
    out["routenlp"] = rn;
    if (!stream) return out;
    res.set_content(sse_events(out, stream_usage), "text/event-stream");
    res.set_header("Cache-Control", "no-cache");
    return json(nullptr);
  }

  // A finished chat completion as OpenAI "chat.completion.chunk" server-sent events: the role,
  // the answer in pieces of about 64 bytes (cut after a space or newline, never inside a UTF-8
  // character), a last chunk with finish_reason and the routenlp field, a usage chunk when
  // asked for, then "data: [DONE]". The cascade has run to completion before the first byte.
  static std::string sse_events(const json& done, bool usage_chunk) {
    std::string out;
    auto chunk = [&](json delta, json finish, const json* extra) {
      json c = {{"id", done["id"]}, {"object", "chat.completion.chunk"}, {"created", done["created"]},
                {"model", done["model"]},
                {"choices", json::array({{{"index", 0}, {"delta", std::move(delta)}, {"finish_reason", std::move(finish)}}})}};
      if (extra) c["routenlp"] = *extra;
      out += "data: " + c.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
    };
    chunk({{"role", "assistant"}, {"content", ""}}, nullptr, nullptr);
    const std::string text = done["choices"][0]["message"]["content"].get<std::string>();
    size_t pos = 0;
    while (pos < text.size()) {
      size_t end = std::min(text.size(), pos + 64);
      if (end < text.size()) {
        size_t cut = text.find_first_of(" \n", end);
        end = cut == std::string::npos || cut > pos + 256 ? end : cut + 1;
        while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
      }
      chunk({{"content", text.substr(pos, end - pos)}}, nullptr, nullptr);
      pos = end;
    }
    chunk(json::object(), "stop", &done["routenlp"]);
    if (usage_chunk) {
      json u = {{"id", done["id"]}, {"object", "chat.completion.chunk"}, {"created", done["created"]},
                {"model", done["model"]}, {"choices", json::array()}, {"usage", done["usage"]}};
      out += "data: " + u.dump() + "\n\n";
    }
    out += "data: [DONE]\n\n";
    return out;
  }

  // Every model name /v1/models lists (tiers, then policies).
  std::vector<std::string> served_models() const {
    std::vector<std::string> names;
    for (const auto& t : setup.portfolio.tiers) names.push_back(t.name);
    if (setup.pipeline) names.push_back("pipeline");
    if (setup.router) {
      names.push_back("threshold");
      names.push_back("router-" + setup.router->name() + "-0.5");
    }
    for (const auto& nr : setup.routers) names.push_back("router-" + nr.name + "-0.5");
    return names;
  }
  std::string served_models_text() const {
    std::string s;
    for (const auto& n : served_models()) s += (s.empty() ? "" : ", ") + n;
    return s;
  }

  // Per key (by id, never the key) and per policy counters.
  std::string access_metrics_text() const {
    std::string s;
    if (access.enabled()) {
      s += "# HELP routenlp_key_requests_total Requests per API key id and HTTP status.\n";
      s += "# TYPE routenlp_key_requests_total counter\n";
      std::string cost;
      for (const auto& k : access.keys()) {
        std::lock_guard<std::mutex> lock(k->mu);
        const std::string label = "key=\"" + detail::prometheus_label(k->key.id) + "\"";
        for (const auto& [code, n] : k->by_status)
          s += "routenlp_key_requests_total{" + label + ",code=\"" + std::to_string(code) + "\"} " + std::to_string(n) + "\n";
        cost += "routenlp_key_cost_usd_total{" + label + "} " + detail::prometheus_number(k->cost_usd) + "\n";
      }
      s += "# HELP routenlp_key_cost_usd_total USD spent by each API key's cascades.\n";
      s += "# TYPE routenlp_key_cost_usd_total counter\n" + cost;
    }
    std::lock_guard<std::mutex> lock(policy_mu);
    s += "# HELP routenlp_policy_requests_total Successful requests per requested policy or model name.\n";
    s += "# TYPE routenlp_policy_requests_total counter\n";
    for (const auto& [p, n] : policy_requests)
      s += "routenlp_policy_requests_total{policy=\"" + detail::prometheus_label(p) + "\"} " + std::to_string(n) + "\n";
    return s;
  }

  std::string metrics_text() const {
    std::string s = metrics.text();
    s += access_metrics_text();
    s += svr.metrics_text();
    if (engine) s += engine->metrics_prometheus();
    if (shared_state) s += shared_state->metrics_prometheus();
    return s;
  }
};

RouteServer::RouteServer(ServeSetup setup, ServeOptions options)
    : impl_(std::make_unique<Impl>(std::move(setup), std::move(options))) {}

RouteServer::~RouteServer() { stop(); }

int RouteServer::bind() {
  if (impl_->port >= 0) return impl_->port;
  int port = impl_->svr.bind_listen(impl_->options.host, impl_->options.port);
  impl_->port = port;
  return port;
}

void RouteServer::run() {
  bind();
  impl_->run_active = true;
  if (!impl_->stopping) impl_->svr.listen_after_bind();
  impl_->run_active = false;
}

void RouteServer::stop() {
  impl_->stopping = true;
  // httplib ignores stop() until its accept loop runs: wait for it (or for run() to return).
  while (impl_->run_active && !impl_->svr.is_running())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  impl_->svr.stop();
}

int RouteServer::port() const { return impl_->port; }

std::string RouteServer::metrics_text() const { return impl_->metrics_text(); }

}  // namespace routenlp
