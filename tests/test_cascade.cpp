// Cascade engine with mock tiers (C++ and C vtable): acceptance, escalation, deadlines,
// budgets, tier errors, exceptions, NaN confidence, cancellation, overrides, concurrency,
// metrics, decision log, feedback, ReplayTier.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

#include "routenlp/cascade/result.hpp"
#include "routenlp/cascade/decision_log.hpp"
#include "routenlp/cascade/engine.hpp"
#include "routenlp/rn_cascade.h"

using namespace routenlp;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();

// Confidence of tier k for a query "c0,c1,c2" (per-tier confidences in the query text);
// "nan" gives a NaN confidence, "err" a tier error, "throw" an exception.
std::shared_ptr<ModelTier> mock_tier(int k, double cost, int sleep_ms = 0) {
  return std::make_shared<CallbackTier>(
      "tier" + std::to_string(k),
      [k, cost, sleep_ms](const TierRequest& r) {
        if (sleep_ms) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
        std::vector<std::string> parts;
        std::string cur;
        for (char ch : r.query + ",") {
          if (ch == ',') {
            parts.push_back(cur);
            cur.clear();
          } else {
            cur.push_back(ch);
          }
        }
        const std::string& p = parts.at(static_cast<size_t>(k));
        if (p == "err") return TierResponse::failure(Status::tier, "backend 503");
        if (p == "throw") throw std::runtime_error("boom from tier " + std::to_string(k));
        TierResponse resp;
        resp.text = "answer" + std::to_string(k) + ":" + r.query;
        resp.cost = cost;
        if (p == "nan") {
          resp.confidence = std::nan("");
        } else if (p != "none") {
          resp.confidence = std::stod(p);
        }
        return resp;
      },
      cost);
}

std::shared_ptr<ThresholdTable> table3(double d0 = 0.2, double d1 = 0.3) {
  auto t = std::make_shared<ThresholdTable>();
  t->reset_shape({"tier0", "tier1", "tier2"}, {"qa", "*"}, {0.05, 0.1}, 0);
  for (size_t c = 0; c < 2; ++c) {
    t->at(0, 0, c) = d0;
    t->at(0, 1, c) = d1;
    t->at(1, 0, c) = d0 + 0.3;  // looser at alpha .1
    t->at(1, 1, c) = d1 + 0.3;
  }
  return t;
}

std::vector<std::shared_ptr<ModelTier>> tiers3(int sleep0 = 0) {
  return {mock_tier(0, 0.001, sleep0), mock_tier(1, 0.01), mock_tier(2, 0.1)};
}

CascadeRequest req(const std::string& q, const std::string& id = "") {
  CascadeRequest r;
  r.id = id;
  r.query = q;
  r.task = "qa";
  return r;
}
}  // namespace

TEST_CASE("accept, escalate and the last tier", "[cascade]") {
  CascadeEngine eng(tiers3(), table3());
  auto r = eng.run(req("0.9,0.9,0.9", "a"));  // u0 = .1 <= .2
  CHECK(r.status == Status::ok);
  CHECK(r.tier == 0);
  CHECK(r.answer == "answer0:0.9,0.9,0.9");
  CHECK_FALSE(r.uncertain);
  REQUIRE(r.trace.size() == 1);
  CHECK(r.trace[0].decision == TraceDecision::accepted);
  CHECK(r.trace[0].uncertainty == Approx(0.1));
  CHECK(r.trace[0].delta == 0.2);
  r = eng.run(req("0.5,0.75,0.1"));  // u0 .5 > .2, u1 .25 <= .3
  CHECK(r.tier == 1);
  CHECK(r.trace.size() == 2);
  CHECK(r.trace[0].decision == TraceDecision::escalated);
  CHECK(r.cost == Approx(0.011));
  r = eng.run(req("0.5,0.5,0.1"));  // to the last tier, accepted whatever u is
  CHECK(r.tier == 2);
  CHECK(r.trace.back().decision == TraceDecision::final_answer);
  CHECK_FALSE(r.uncertain);
  CHECK(r.stop_reason == "last_tier");
  CHECK(r.request_id.rfind("rn-", 0) == 0);  // assigned id
  // The tier sees what earlier tiers returned.
  auto seen = std::make_shared<std::atomic<int>>(0);
  auto spy = std::make_shared<CallbackTier>("tier2", [seen](const TierRequest& q) {
    seen->store(static_cast<int>(q.previous.size()));
    TierResponse x;
    x.text = q.previous.empty() ? "" : q.previous.back().response->text;
    return x;
  });
  CascadeEngine e2({mock_tier(0, 0), mock_tier(1, 0), spy}, table3());
  r = e2.run(req("0.1,0.1,0"));
  CHECK(seen->load() == 2);
  CHECK(r.answer == "answer1:0.1,0.1,0");
}

TEST_CASE("NaN or missing confidence is uncertain and escalates", "[cascade]") {
  CascadeEngine eng(tiers3(), table3());
  auto r = eng.run(req("nan,0.9,0.9"));
  CHECK(r.tier == 1);
  CHECK(r.trace[0].decision == TraceDecision::escalated);
  CHECK(r.trace[0].nan_confidence);
  CHECK(std::isnan(r.trace[0].uncertainty));
  r = eng.run(req("none,0.9,0.9"));  // no confidence and no router p
  CHECK(r.tier == 1);
  CascadeRequest q = req("none,0.9,0.9");
  q.router_p = {0.95};  // router says acceptable: u = .05
  r = eng.run(q);
  CHECK(r.tier == 0);
  CHECK(r.trace[0].uncertainty == Approx(0.05));
  r = eng.run(req("0.1,0.1,nan"));  // last tier with NaN: returned, flagged
  CHECK(r.tier == 2);
  CHECK(r.uncertain);
}

TEST_CASE("tier errors and exceptions escalate and are recorded", "[cascade]") {
  CascadeEngine eng(tiers3(), table3());
  auto r = eng.run(req("err,0.9,0.9"));
  CHECK(r.status == Status::ok);
  CHECK(r.tier == 1);
  CHECK(r.trace[0].decision == TraceDecision::error);
  CHECK(r.trace[0].error_status == Status::tier);
  CHECK(r.trace[0].error.find("503") != std::string::npos);
  r = eng.run(req("throw,throw,0.1"));
  CHECK(r.tier == 2);
  CHECK(r.trace[0].decision == TraceDecision::error);
  CHECK(r.trace[1].error.find("boom from tier 1") != std::string::npos);
  r = eng.run(req("0.1,err,err"));  // u0 .9: escalates; the rest fail -> tier 0's answer
  CHECK(r.status == Status::ok);
  CHECK(r.tier == 0);
  CHECK(r.uncertain);
  CHECK(r.stop_reason == "errors");
  r = eng.run(req("err,throw,err"));
  CHECK(r.status == Status::tier);
  CHECK(r.answer.empty());
  CHECK(r.tier == -1);
  CHECK(r.trace.size() == 3);
}

TEST_CASE("deadline (SLA) and dollar budget", "[cascade]") {
  CascadeEngine slow(tiers3(/*sleep0=*/30), table3());
  CascadeRequest q = req("0.1,0.9,0.9");
  q.deadline_ms = 10;
  auto r = slow.run(q);
  CHECK(r.tier == 0);  // tier 0 answered after the deadline; tier 1 was not called
  CHECK(r.uncertain);
  CHECK(r.stop_reason == "deadline");
  CHECK(r.trace.back().decision == TraceDecision::skipped_deadline);
  q = req("err,0.9,0.9");
  q.deadline_ms = 10;
  r = slow.run(q);
  CHECK(r.status == Status::timeout);
  // The tier sees the deadline.
  auto saw = std::make_shared<std::atomic<bool>>(false);
  auto t0 = std::make_shared<CallbackTier>("tier0", [saw](const TierRequest& x) {
    saw->store(x.deadline != SteadyTime::max());
    return TierResponse::failure(Status::timeout, "too slow");
  });
  CascadeEngine e2({t0, mock_tier(1, 0.01), mock_tier(2, 0.1)}, table3());
  q = req("x,0.9,0.9");
  q.deadline_ms = 1000;
  r = e2.run(q);
  CHECK(saw->load());
  CHECK(r.trace[0].error_status == Status::timeout);
  CHECK(r.tier == 1);

  // Budget: a tier is called only if spent + its expected cost <= budget.
  CascadeEngine eng(tiers3(), table3());
  q = req("0.1,0.1,0.9");
  q.budget_usd = 0.05;  // tier0 .001 + tier1 .01 fit, tier2 .1 does not
  r = eng.run(q);
  CHECK(r.tier == 1);
  CHECK(r.uncertain);
  CHECK(r.stop_reason == "budget");
  CHECK(r.trace.back().decision == TraceDecision::skipped_budget);
  CHECK(r.cost == Approx(0.011));
  q.budget_usd = 0.0;
  r = eng.run(q);
  CHECK(r.status == Status::budget);
  CHECK(r.cost == 0.0);
}

TEST_CASE("overrides: highest tier, start tier, alpha", "[cascade]") {
  CascadeEngine eng(tiers3(), table3());
  CascadeRequest q = req("0.5,0.5,0.9");
  q.max_tier = 1;
  auto r = eng.run(q);
  CHECK(r.tier == 1);
  CHECK(r.uncertain);  // u1 .5 > .3 but tier 1 is the highest allowed
  CHECK(r.trace.back().decision == TraceDecision::final_answer);
  q.max_tier = -1;
  q.start_tier = 2;
  r = eng.run(q);
  CHECK(r.trace.size() == 1);
  CHECK(r.tier == 2);
  // alpha .1 thresholds are .5/.6: u0 = .45 accepted only there.
  q = req("0.55,0.1,0.1");
  CHECK(eng.run(q).tier == 2);
  q.alpha = 0.1;
  r = eng.run(q);
  CHECK(r.tier == 0);
  CHECK(r.alpha == 0.1);
  q.alpha = 0.07;  // nearest precomputed alpha <= .07 is .05
  CHECK(eng.run(q).alpha == 0.05);
  q = req("1,1,1");
  q.alpha = 0.01;  // stricter than anything calibrated: accept none below the last tier
  r = eng.run(q);
  CHECK(r.tier == 2);
  CHECK(std::isnan(r.alpha));
  // Start tier from the table (quality-target mode).
  auto t = table3();
  t->start_tier[0] = 1;
  eng.set_thresholds(t);
  r = eng.run(req("1,1,1"));
  CHECK(r.trace.front().tier == 1);
  CHECK_THROWS_AS(eng.set_thresholds(nullptr), Error);
}

TEST_CASE("cancellation", "[cascade]") {
  CascadeEngine eng(tiers3(), table3());
  CascadeRequest q = req("0.1,0.1,0.1");
  q.cancel = std::make_shared<std::atomic<bool>>(true);
  auto r = eng.run(q);
  CHECK(r.status == Status::cancelled);
  CHECK(r.trace.front().decision == TraceDecision::cancelled);
  // Cancelled while tier 0 runs: tier 1 is never called.
  auto flag = std::make_shared<std::atomic<bool>>(false);
  auto t0 = std::make_shared<CallbackTier>("tier0", [flag](const TierRequest& x) {
    flag->store(true);
    TierResponse y;
    y.confidence = x.cancelled() ? 0.0 : 1.0;  // sees its cancel flag
    return y;
  });
  auto calls1 = std::make_shared<std::atomic<int>>(0);
  auto t1 = std::make_shared<CallbackTier>("tier1", [calls1](const TierRequest&) {
    calls1->fetch_add(1);
    return TierResponse{};
  });
  CascadeEngine e2({t0, t1, mock_tier(2, 0)}, table3());
  q = req("x");
  q.cancel = flag;
  r = e2.run(q);
  CHECK(r.status == Status::cancelled);
  CHECK(calls1->load() == 0);
  CHECK(r.trace[0].uncertainty == 1.0);
}

TEST_CASE("construction errors", "[cascade]") {
  CHECK_THROWS_AS(CascadeEngine({}, table3()), Error);
  CHECK_THROWS_AS(CascadeEngine({mock_tier(0, 0), nullptr, mock_tier(2, 0)}, table3()), Error);
  CHECK_THROWS_AS(CascadeEngine({mock_tier(0, 0), mock_tier(1, 0)}, table3()), Error);
  CHECK_THROWS_AS(CascadeEngine({mock_tier(0, 0), mock_tier(2, 0), mock_tier(1, 0)}, table3()),
                  Error);
  // No table: every non-final tier escalates.
  CascadeEngine e(tiers3(), nullptr);
  CHECK(e.run(req("1,1,1")).tier == 2);
}

namespace {
// A tier written against the C vtable.
struct CTierState {
  std::atomic<int> calls{0};
  std::atomic<int> destroyed{0};
  bool fail = false;
};

extern "C" rn_status c_tier_call(const rn_tier_request* req, rn_tier_reply* reply, void* ud) {
  auto* s = static_cast<CTierState*>(ud);
  s->calls++;
  if (s->fail) {
    rn_tier_reply_set_error(reply, "c backend down");
    return RN_ERR_CALLBACK;
  }
  std::string text = std::string("c:") + req->query + ":" + std::to_string(req->n_previous);
  rn_tier_reply_set_text(reply, text.c_str());
  rn_tier_reply_set_confidence(reply, 0.95);
  rn_tier_reply_set_cost(reply, 0.002);
  return RN_OK;
}

extern "C" void c_tier_destroy(void* ud) { static_cast<CTierState*>(ud)->destroyed++; }
}  // namespace

TEST_CASE("tiers through the C vtable", "[cascade][capi]") {
  CTierState ok, bad;
  bad.fail = true;
  {
    rn_tier_vtable v = RN_TIER_VTABLE_INIT;
    v.name = "tier1";
    v.call = c_tier_call;
    v.destroy = c_tier_destroy;
    v.user_data = &ok;
    auto t_ok = make_c_tier(v);
    v.user_data = &bad;
    v.name = "tier0";
    auto t_bad = make_c_tier(v);
    CascadeEngine eng({t_bad, t_ok, mock_tier(2, 0.1)}, table3());
    auto r = eng.run(req("q"));
    CHECK(r.tier == 1);
    CHECK(r.answer == "c:q:0");
    CHECK(r.cost == Approx(0.002));
    CHECK(r.trace[0].decision == TraceDecision::error);
    CHECK(r.trace[0].error.find("c backend down") != std::string::npos);
    CHECK(r.trace[0].error.find("RN_ERR_CALLBACK") != std::string::npos);
    CHECK(ok.calls == 1);
    CHECK(bad.calls == 1);
    rn_tier_vtable broken = RN_TIER_VTABLE_INIT;
    broken.name = "x";
    CHECK_THROWS_AS(make_c_tier(broken), Error);  // no call fn
    broken.call = c_tier_call;
    broken.struct_size = 4;
    CHECK_THROWS_AS(make_c_tier(broken), Error);
  }
  CHECK(ok.destroyed == 1);
  CHECK(bad.destroyed == 1);
}

TEST_CASE("8 threads give the same results as a serial run, run_batch and async too",
          "[cascade][threads]") {
  CascadeOptions o;
  o.threads = 4;
  auto sink = std::make_shared<MemoryDecisionSink>();
  o.decision_log = sink;
  o.audit_rate = 0.5;
  CascadeEngine eng(tiers3(), table3(), o);
  std::vector<CascadeRequest> reqs;
  const char* conf[] = {"0.9", "0.5", "0.75", "nan", "err", "throw", "none", "0.1"};
  for (int i = 0; i < 2000; ++i) {
    std::string q = std::string(conf[i % 8]) + "," + conf[(i / 8) % 8] + "," + conf[(i / 64) % 8];
    reqs.push_back(req(q, "id" + std::to_string(i)));
  }
  std::vector<CascadeResult> serial;
  for (const auto& q : reqs) serial.push_back(eng.run(q));
  auto same = [](const CascadeResult& a, const CascadeResult& b) {
    if (a.answer != b.answer || a.tier != b.tier || a.status != b.status ||
        a.uncertain != b.uncertain || a.trace.size() != b.trace.size() || a.cost != b.cost)
      return false;
    for (size_t i = 0; i < a.trace.size(); ++i)
      if (a.trace[i].decision != b.trace[i].decision || a.trace[i].tier != b.trace[i].tier)
        return false;
    return true;
  };
  std::vector<CascadeResult> par(reqs.size());
  std::vector<std::thread> th;
  for (int t = 0; t < 8; ++t)
    th.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); i < reqs.size(); i += 8) par[i] = eng.run(reqs[i]);
    });
  for (auto& x : th) x.join();
  size_t mismatches = 0;
  for (size_t i = 0; i < reqs.size(); ++i) mismatches += !same(serial[i], par[i]);
  CHECK(mismatches == 0);
  auto batch = eng.run_batch(reqs);
  REQUIRE(batch.size() == reqs.size());
  mismatches = 0;
  for (size_t i = 0; i < reqs.size(); ++i) mismatches += !same(serial[i], batch[i]);
  CHECK(mismatches == 0);
  auto fut = eng.run_async(reqs[5]);
  CHECK(same(fut.get(), serial[5]));
  // Feedback from 4 threads while others route.
  std::atomic<int> recorded{0};
  std::vector<std::thread> fb;
  for (int t = 0; t < 4; ++t)
    fb.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); i < serial.size(); i += 4) {
        if (serial[i].audited && eng.record_outcome(serial[i].request_id, i % 5 != 0)) recorded++;
        eng.run(reqs[i]);
        (void)eng.metrics_prometheus().size();
      }
    });
  for (auto& x : fb) x.join();
  CHECK(recorded.load() > 300);
  CHECK(sink->lines().size() == 4 * reqs.size() + 1);  // serial, 8 threads, batch, feedback + async
}

TEST_CASE("metrics in Prometheus text", "[cascade][metrics]") {
  CascadeOptions o;
  o.audit_rate = 1.0;
  CascadeEngine eng(tiers3(), table3(), o);
  auto a = eng.run(req("0.9,0.9,0.9", "m1"));
  eng.run(req("0.5,0.9,0.9", "m2"));
  eng.run(req("err,0.9,0.9", "m3"));
  CHECK(eng.record_outcome("m1", false));
  CHECK(eng.record_outcome("m2", true));
  CHECK_FALSE(eng.record_outcome("m1", true));  // consumed
  std::string m = eng.metrics_prometheus();
  CHECK(m.find("routenlp_cascade_requests_total 3") != std::string::npos);
  CHECK(m.find("routenlp_cascade_tier_calls_total{tier=\"tier0\",task=\"qa\"} 3") != std::string::npos);
  CHECK(m.find("routenlp_cascade_tier_accepts_total{tier=\"tier0\",task=\"qa\"} 1") != std::string::npos);
  CHECK(m.find("routenlp_cascade_tier_escalations_total{tier=\"tier0\",task=\"qa\"} 1") != std::string::npos);
  CHECK(m.find("routenlp_cascade_tier_errors_total{tier=\"tier0\",task=\"qa\"} 1") != std::string::npos);
  CHECK(m.find("routenlp_cascade_tier_audited_bad_total{tier=\"tier0\",task=\"qa\"} 1") != std::string::npos);
  CHECK(m.find("routenlp_cascade_tier_violation_rate{tier=\"tier0\",task=\"qa\"} 1") != std::string::npos);
  CHECK(m.find("routenlp_cascade_tier_latency_ms_bucket{tier=\"tier0\",task=\"qa\",le=\"+Inf\"} 3") != std::string::npos);
  CHECK(m.find("# TYPE routenlp_cascade_tier_latency_ms histogram") != std::string::npos);
  CHECK(m.find("routenlp_cascade_tier_cost_usd_total{tier=\"tier1\",task=\"qa\"} 0.02") != std::string::npos);
  (void)a;
}

TEST_CASE("decision log: JSON Lines written and read back", "[cascade][log]") {
  std::string path = std::string(RN_BINARY_DIR) + "/cascade_decisions.jsonl";
  std::remove(path.c_str());
  {
    CascadeOptions o;
    o.decision_log = std::make_shared<JsonlFileSink>(path, false);
    CascadeEngine eng(tiers3(), table3(), o);
    eng.run(req("0.9,0.9,0.9", "d1"));
    eng.run(req("err,nan,0.5", "d2"));
    CascadeRequest q = req("0.5,0.5,0.5", "d3");
    q.budget_usd = 0.0;
    eng.run(q);
  }
  auto recs = read_decision_log(path);
  REQUIRE(recs.size() == 3);
  CHECK(recs[0].request_id == "d1");
  CHECK(recs[0].tier == 0);
  CHECK(recs[0].trace[0].decision == TraceDecision::accepted);
  CHECK(recs[1].trace.size() == 3);
  CHECK(recs[1].trace[0].error_status == Status::tier);
  CHECK(recs[1].trace[1].nan_confidence);
  CHECK(std::isnan(recs[1].trace[1].uncertainty));
  CHECK(recs[1].trace[2].delta == kInf);
  CHECK(recs[2].status == Status::budget);
  CHECK(recs[2].trace[0].decision == TraceDecision::skipped_budget);
  // A torn last line (log being written) is skipped; a bad middle line is an error.
  {
    std::ofstream f(path, std::ios::app);
    f << "{\"request_id\": \"d4\", \"tra";
  }
  CHECK(read_decision_log(path).size() == 3);
  {
    std::ofstream f(path, std::ios::app);
    f << "\n{\"request_id\": \"d5\", \"trace\": []}\n";
  }
  try {
    read_decision_log(path);
    FAIL("expected a parse error");
  } catch (const Error& e) {
    CHECK(e.code() == Status::parse);
    CHECK(std::string(e.what()).find("cascade_decisions.jsonl:4") != std::string::npos);
  }
  CHECK_THROWS_AS(JsonlFileSink("/nonexistent-dir/x.jsonl"), Error);
}

TEST_CASE("decision log: a float or out-of-range tier is a parse error naming the field",
          "[cascade][log]") {
  // A float such as 1e300 overflowed nlohmann's cast to int (UBSan); 4294967296 wrapped to 0.
  for (const std::string v : {"1e300", "-1e300", "4294967296", "-2147483649", "2.0", "\"1\""}) {
    INFO("tier = " << v);
    const std::string top = "{\"request_id\": \"r\", \"tier\": " + v + ", \"trace\": []}";
    try {
      decision_from_json(top, "log.jsonl:7");
      FAIL("expected a parse error");
    } catch (const Error& e) {
      CHECK(e.code() == Status::parse);
      CHECK_THAT(e.what(), Catch::Contains("log.jsonl:7: tier: expected an integer"));
    }
    const std::string in_trace =
        "{\"request_id\": \"r\", \"tier\": 1, \"trace\": [{\"tier\": 0, \"decision\": \"escalated\"}, "
        "{\"tier\": " + v + ", \"decision\": \"accepted\"}]}";
    try {
      decision_from_json(in_trace, "log.jsonl:8");
      FAIL("expected a parse error");
    } catch (const Error& e) {
      CHECK(e.code() == Status::parse);
      CHECK_THAT(e.what(), Catch::Contains("log.jsonl:8: trace[1]: tier: expected an integer"));
    }
  }
  // The extremes of int still read.
  CascadeResult r = decision_from_json(
      "{\"request_id\": \"r\", \"tier\": -2147483648, \"trace\": [{\"tier\": 2147483647, \"decision\": \"final\"}]}",
      "x");
  CHECK(r.tier == -2147483648LL);
  REQUIRE(r.trace.size() == 1);
  CHECK(r.trace[0].tier == 2147483647);
}

TEST_CASE("online recalibration through the engine", "[cascade][online]") {
  OnlineOptions oo;
  oo.audit_rate = 1.0;
  oo.aci.gamma = 0.05;
  auto online = std::make_shared<OnlineRecalibrator>(table3(), oo);
  CascadeOptions o;
  o.online = online;
  CascadeEngine eng(tiers3(), nullptr, o);
  // Tier 0 accepts (u .1 <= .2) but its answers are all bad: alpha_t falls below 0 and tier 0
  // stops accepting.
  // Joint target: each bad acceptance costs gamma (1 - alpha); each rejection gives back
  // gamma alpha, so tier 0 accepts about one request in 20 afterwards.
  int first_tier0 = 0, later_tier0 = 0;
  bool saw_accept_none = false;
  for (int i = 0; i < 60; ++i) {
    auto r = eng.run(req("0.9,0.9,0.9", "o" + std::to_string(i)));
    CHECK(r.audited);
    if (i < 2) first_tier0 += r.tier == 0;
    if (i >= 20) later_tier0 += r.tier == 0;
    CHECK(eng.record_outcome(r.request_id, r.tier != 0));
    saw_accept_none |= eng.thresholds()->at(0, 0, 0) == -kInf;
  }
  CHECK(first_tier0 == 2);
  CHECK(later_tier0 <= 4);
  CHECK(saw_accept_none);
  CHECK(online->cell_state(0, "qa").labels == 60);
  CHECK(online->snapshots_published() >= 2);
}

TEST_CASE("ReplayTier serves recorded outcomes", "[cascade][replay]") {
  auto ds = std::make_shared<Dataset>();
  Query q;
  q.id = "q1";
  q.task = "qa";
  q.query = "what?";
  Outcome o;
  o.quality = 1.0;
  o.cost = 0.004;
  o.latency_ms = 12.0;
  o.confidence = 0.8;
  o.response = "forty-two";
  q.outcomes["small"] = o;
  ds->queries.push_back(q);
  q.id = "q2";
  q.outcomes.clear();
  ds->queries.push_back(q);
  PortfolioConfig pc;
  pc.tiers.push_back(TierSpec{"small", 1.0, 2.0, std::nullopt});
  pc.tiers.push_back(TierSpec{"large", 10.0, 20.0, std::nullopt});
  ReplayTier t(ds, pc, "small");
  TierRequest r;
  r.request_id = "q1";
  auto resp = t.call(r);
  CHECK(resp.ok());
  CHECK(resp.text == "forty-two");
  CHECK(*resp.confidence == Approx(0.8));
  CHECK(resp.cost == Approx(0.004));
  CHECK(resp.latency_ms == Approx(12.0));
  CHECK(t.expected_cost(r) == Approx(0.004));
  r.request_id = "q2";
  CHECK(t.call(r).status == Status::tier);
  r.request_id = "zzz";
  CHECK(t.call(r).status == Status::tier);
  CHECK_THROWS_AS(ReplayTier(ds, pc, "nope"), Error);
}

TEST_CASE("C ABI: calibrator, C tiers, cascade, results", "[cascade][capi]") {
  // Calibrate 2 tiers from arrays.
  const size_t n = 3000;
  std::vector<double> u(n * 2);
  std::vector<uint8_t> bad(n * 2);
  std::vector<const char*> tasks(n, "qa");
  for (size_t i = 0; i < n; ++i) {
    double x = (i % 1000) / 1000.0;
    u[2 * i] = x;
    bad[2 * i] = (i * 7919 % 1000) < x * x * 1000 ? 1 : 0;
    u[2 * i + 1] = 0.5;
    bad[2 * i + 1] = 0;
  }
  rn_calibrator* cal = nullptr;
  REQUIRE(rn_calibrator_create(&cal, nullptr) == RN_OK);
  CHECK(rn_calibrator_calibrate(cal, n, 2, nullptr, tasks.data(), u.data(), bad.data(), nullptr,
                                nullptr) == RN_OK);
  double d = 0;
  CHECK(rn_calibrator_threshold(&d, cal, 0, "qa") == RN_OK);
  CHECK(d > 0.05);
  CHECK(d < 0.5);
  int32_t st = -1;
  CHECK(rn_calibrator_cell_status(&st, cal, 0, "qa") == RN_OK);
  CHECK(st == RN_CELL_CERTIFIED);
  CHECK(rn_calibrator_cell_status(&st, cal, 0, "zz") == RN_ERR_INVALID_ARGUMENT);
  std::string path = std::string(RN_BINARY_DIR) + "/capi_cal.json";
  CHECK(rn_calibrator_save(cal, path.c_str()) == RN_OK);
  rn_calibrator* cal2 = nullptr;
  CHECK(rn_calibrator_load(&cal2, path.c_str()) == RN_OK);
  double d2 = 0;
  CHECK(rn_calibrator_threshold(&d2, cal2, 0, "qa") == RN_OK);
  CHECK(d2 == d);
  rn_calibrator_destroy(cal2);  // a failed load below must not be handed a live handle
  rn_calibrator* cal3 = nullptr;
  CHECK(rn_calibrator_load(&cal3, "/nonexistent/x.json") == RN_ERR_IO);
  CHECK(cal3 == nullptr);
  // A file without an end is refused at the size cap, not read until memory runs out.
  CHECK(rn_calibrator_load(&cal3, "/dev/zero") == RN_ERR_IO);
  CHECK(std::string(rn_last_error()).find("MiB limit") != std::string::npos);
  CHECK(cal3 == nullptr);
  // Tiers in C.
  CTierState s0, s1;
  rn_tier_vtable v = RN_TIER_VTABLE_INIT;
  v.call = c_tier_call;
  v.destroy = c_tier_destroy;
  v.name = "c0";
  v.user_data = &s0;
  rn_tier* t0 = nullptr;
  rn_tier* t1 = nullptr;
  REQUIRE(rn_tier_create(&t0, &v) == RN_OK);
  v.name = "c1";
  v.user_data = &s1;
  REQUIRE(rn_tier_create(&t1, &v) == RN_OK);
  rn_tier* tiers[2] = {t0, t1};
  rn_cascade* c = nullptr;
  REQUIRE(rn_cascade_create(&c, tiers, 2, cal, nullptr) == RN_OK);
  rn_tier_destroy(t0);  // the cascade keeps its own reference
  rn_tier_destroy(t1);
  CHECK(s0.destroyed == 0);
  rn_calibrator_destroy(cal);
  rn_cascade_request rq = RN_CASCADE_REQUEST_INIT;
  rq.query = "hello";
  rq.task = "qa";
  rq.request_id = "c-1";
  rn_result* res = nullptr;
  REQUIRE(rn_cascade_run(&res, c, &rq) == RN_OK);
  CHECK(rn_result_status(res) == RN_OK);
  CHECK(std::string(rn_result_answer(res)) == "c:hello:0");  // confidence .95 -> u .05 <= d
  CHECK(rn_result_tier(res) == 0);
  CHECK(rn_result_trace_size(res) == 1);
  rn_trace_entry e;
  e.struct_size = sizeof e;
  CHECK(rn_result_trace_entry(&e, res, 0) == RN_OK);
  CHECK(e.decision == RN_DECISION_ACCEPTED);
  CHECK(std::string(e.tier_name) == "c0");
  CHECK(e.uncertainty == Approx(0.05));
  CHECK(rn_result_trace_entry(&e, res, 1) == RN_ERR_INVALID_ARGUMENT);
  CHECK(std::string(rn_result_request_id(res)) == "c-1");
  rn_result_destroy(res);
  const char* text = nullptr;
  CHECK(rn_cascade_metrics_text(&text, c) == RN_OK);
  CHECK(std::string(text).find("routenlp_cascade_requests_total 1") != std::string::npos);
  CHECK(rn_cascade_record_outcome(c, "never-seen", 1) == RN_ERR_INVALID_ARGUMENT);
  // Misuse.
  CHECK(rn_cascade_run(nullptr, c, &rq) == RN_ERR_INVALID_ARGUMENT);
  CHECK(rn_cascade_run(&res, nullptr, &rq) == RN_ERR_INVALID_ARGUMENT);
  CHECK(res == nullptr);
  // Tier indexes past the last tier, or a start above the cap, are the caller's error.
  rq.start_tier = 2;
  CHECK(rn_cascade_run(&res, c, &rq) == RN_ERR_INVALID_ARGUMENT);
  CHECK(std::string(rn_last_error()).find("start_tier 2 is past the last tier (1)") !=
        std::string::npos);
  CHECK(res == nullptr);
  rq.start_tier = -1;
  rq.max_tier = 5;
  CHECK(rn_cascade_run(&res, c, &rq) == RN_ERR_INVALID_ARGUMENT);
  CHECK(std::string(rn_last_error()).find("max_tier 5") != std::string::npos);
  rq.start_tier = 1;
  rq.max_tier = 0;
  CHECK(rn_cascade_run(&res, c, &rq) == RN_ERR_INVALID_ARGUMENT);
  CHECK(std::string(rn_last_error()).find("above request->max_tier") != std::string::npos);
  rq.start_tier = 1;
  rq.max_tier = 1;
  REQUIRE(rn_cascade_run(&res, c, &rq) == RN_OK);
  CHECK(rn_result_tier(res) == 1);
  rn_result_destroy(res);
  res = nullptr;
  rq.start_tier = rq.max_tier = -1;
  rq.struct_size = 3;
  CHECK(rn_cascade_run(&res, c, &rq) == RN_ERR_INVALID_ARGUMENT);
  CHECK(std::string(rn_last_error()).find("struct_size") != std::string::npos);
  CHECK(rn_tier_create(&t0, nullptr) == RN_ERR_INVALID_ARGUMENT);
  CHECK(rn_calibrator_threshold(&d, nullptr, 0, "qa") == RN_ERR_INVALID_ARGUMENT);
  rn_cascade_destroy(c);
  CHECK(s0.destroyed == 1);
  CHECK(s1.destroyed == 1);
  rn_cascade_destroy(nullptr);
  rn_result_destroy(nullptr);
  rn_tier_destroy(nullptr);
  rn_calibrator_destroy(nullptr);
}

TEST_CASE("end to end: calibrate on a dataset, replay the held-out split through the engine",
          "[cascade][replay][e2e]") {
  // Tier "small": u ~ U(0,1), bad w.p. u^2 (P(bad | u <= d) = d^2/3; oracle d* = .387).
  auto ds = std::make_shared<Dataset>();
  uint64_t s = 0x5eed;
  auto uni = [&s] {
    s += 0x9e3779b97f4a7c15ULL;
    uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
  };
  for (int i = 0; i < 24000; ++i) {
    Query q;
    q.id = "q" + std::to_string(i);
    q.task = i % 2 ? "qa" : "math";
    q.split = i < 6000 ? Split::calib : Split::test;
    q.split_given = true;
    double u = uni();
    Outcome small;
    small.quality = uni() < u * u ? 0.0 : 1.0;
    small.confidence = 1.0 - u;
    small.cost = 0.001;
    small.response = "small";
    Outcome large;
    large.quality = 1.0;
    large.cost = 0.01;
    large.response = "large";
    q.outcomes["small"] = small;
    q.outcomes["large"] = large;
    ds->queries.push_back(std::move(q));
  }
  PortfolioConfig pc;
  pc.tiers.push_back(TierSpec{"small", 1.0, 1.0, std::nullopt});
  pc.tiers.push_back(TierSpec{"large", 10.0, 10.0, std::nullopt});
  ConformalCalibrator cal;
  cal.calibrate(calibration_data_from_dataset(*ds, pc, Split::calib));
  CHECK(cal.cell(0, "qa")->status == CellStatus::certified);
  CascadeEngine eng({std::make_shared<ReplayTier>(ds, pc, "small"),
                     std::make_shared<ReplayTier>(ds, pc, "large")},
                    cal.thresholds());
  size_t n = 0, acc = 0, acc_bad = 0;
  double cost = 0;
  for (const auto& q : ds->queries) {
    if (q.split != Split::test) continue;
    CascadeRequest r;
    r.id = q.id;
    r.query = q.query;
    r.task = q.task;
    auto res = eng.run(r);
    REQUIRE(res.status == Status::ok);
    ++n;
    cost += res.cost;
    if (res.tier == 0) {
      ++acc;
      acc_bad += q.outcomes.at("small").quality < 1.0;
      CHECK(res.answer == "small");
    }
  }
  double rate = double(acc_bad) / acc;
  INFO("accepted at tier 0: " << acc << "/" << n << ", bad among them " << rate
                              << ", cost/query " << cost / n);
  CHECK(rate <= 0.05 + 0.015);  // sd of the rate over ~6,000 accepted answers: .0028
  CHECK(double(acc) / n > 0.25);  // oracle share .387
  CHECK(cost / n < 0.01);          // cheaper than always calling "large"
}
