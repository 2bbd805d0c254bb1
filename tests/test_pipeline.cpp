// Pipeline: fit once, save one artifact, and the same decisions in eval, route and serve.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "routenlp/cascade/result.hpp"
#include "routenlp/cascade/decision_log.hpp"
#include "routenlp/cascade/engine.hpp"
#include "routenlp/data/dataset.hpp"
#include "routenlp/error.hpp"
#include "routenlp/eval/eval.hpp"
#include "routenlp/pipeline/pipeline.hpp"
#include "routenlp/data/portfolio.hpp"
#include "routenlp/serve/serve.hpp"
#include "routenlp/tiers/tier.hpp"
#include "common/sha256.hpp"
#include "live_server.hpp"

using namespace routenlp;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kData = std::string(RN_TEST_DATA_DIR) + "/eval/small.jsonl";
const std::string kConfig = std::string(RN_TEST_DATA_DIR) + "/eval/small.yaml";

std::string scratch(const std::string& name) {
  fs::path p = fs::path(RN_BINARY_DIR) / "pipeline_scratch" / name;
  fs::remove_all(p);
  fs::create_directories(p.parent_path());
  return p.string();
}

struct Fixture {
  PortfolioConfig portfolio = load_portfolio(kConfig);
  Dataset data;
  Fixture() {
    ReadOptions ro;
    ro.portfolio = &portfolio;
    data = read_dataset(kData, ro);
  }
  std::vector<size_t> rows(Split s) const {
    std::vector<size_t> out;
    for (size_t i = 0; i < data.queries.size(); ++i)
      if (data.queries[i].split == s) out.push_back(i);
    return out;
  }
};

std::vector<std::shared_ptr<ModelTier>> replay_tiers(const Dataset& data, const PortfolioConfig& p) {
  auto d = std::make_shared<const Dataset>(data);
  std::vector<std::shared_ptr<ModelTier>> tiers;
  for (const auto& t : p.tiers) tiers.push_back(std::make_shared<ReplayTier>(d, p, t.name));
  return tiers;
}

// The tiers a result actually called, in order.
std::vector<int> called(const CascadeResult& r) {
  std::vector<int> out;
  for (const auto& e : r.trace)
    if (e.decision == TraceDecision::accepted || e.decision == TraceDecision::escalated ||
        e.decision == TraceDecision::final_answer)
      out.push_back(e.tier);
  return out;
}

void expect_throws_with(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    FAIL("expected an error containing '" << needle << "'");
  } catch (const Error& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find(needle) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("pipeline: save and load keep the thresholds and every routing decision", "[pipeline]") {
  Fixture f;
  PipelineFitOptions fo;
  fo.system = "routenlp-cascade";
  PipelineFitReport rep;
  Pipeline p = fit_pipeline(f.data, f.portfolio, fo, &rep);
  CHECK(rep.train_rows == f.rows(Split::train).size());
  CHECK(rep.calib_rows == f.rows(Split::calib).size());
  REQUIRE(p.calibration());
  const std::string dir = scratch("roundtrip");
  p.save(dir);
  Pipeline q = Pipeline::load(dir);
  CHECK(q.manifest().format_version == kPipelineFormatVersion);
  CHECK(q.manifest().system == "routenlp-cascade");
  CHECK(q.manifest().training_data_hash.size() == 16);
  CHECK_FALSE(q.manifest().files.empty());
  CHECK(q.thresholds()->delta == p.thresholds()->delta);
  CHECK(q.thresholds()->columns == p.thresholds()->columns);
  for (size_t i : f.rows(Split::test)) {
    const Query& x = f.data.queries[i];
    auto a = p.route({x.query, x.task}, x.id), b = q.route({x.query, x.task}, x.id);
    CHECK(a.first_tier == b.first_tier);
    CHECK(a.start_tier == b.start_tier);
    CHECK(a.column == b.column);
  }
  // An existing directory is replaced only on request.
  expect_throws_with([&] { p.save(dir); }, "exists");
  p.save(dir, true);
  CHECK_NOTHROW(Pipeline::load(dir));
}

TEST_CASE("pipeline: route() names the tier the engine calls first", "[pipeline]") {
  Fixture f;
  PipelineFitOptions fo;
  fo.system = "routenlp-cascade";
  Pipeline p = fit_pipeline(f.data, f.portfolio, fo);
  CascadeOptions eo;
  eo.threads = 1;
  auto engine = p.make_engine(replay_tiers(f.data, f.portfolio), eo);
  std::set<int> seen;
  for (size_t i : f.rows(Split::test)) {
    const Query& x = f.data.queries[i];
    PipelineRoute r = p.route({x.query, x.task}, x.id);
    CascadeResult res = engine->run(p.request({x.query, x.task}, x.id));
    REQUIRE(res.status == Status::ok);
    auto c = called(res);
    REQUIRE_FALSE(c.empty());
    CHECK(c.front() == r.first_tier);
    seen.insert(res.tier);
  }
  // The calibrated cascade both accepts early and escalates on this data.
  CHECK(seen.size() == 2);
  // Host tiers must match the portfolio.
  auto wrong = replay_tiers(f.data, f.portfolio);
  std::swap(wrong[0], wrong[1]);
  expect_throws_with([&] { p.make_engine(wrong); }, "named");
}

TEST_CASE("pipeline: evaluating the saved artifact reproduces eval's seed-0 numbers", "[pipeline]") {
  Fixture f;
  for (const std::string system : {"routenlp-cascade", "routenlp"}) {
    INFO(system);
    EvalOptions eo;
    eo.systems = {system};
    eo.seeds = 1;
    EvalReport direct = evaluate(f.data, f.portfolio, eo);
    REQUIRE(direct.systems.at(0).status == "ok");

    PipelineFitOptions fo;
    fo.system = system;
    Pipeline fitted = fit_pipeline(f.data, f.portfolio, fo);
    const std::string dir = scratch("eval-" + system);
    fitted.save(dir);
    auto loaded = std::make_shared<const Pipeline>(Pipeline::load(dir));
    std::vector<std::unique_ptr<System>> systems;
    systems.push_back(make_pipeline_system(loaded));
    EvalOptions po;
    EvalReport saved = evaluate_systems(f.data, loaded->portfolio(), po, {"pipeline"}, systems);
    REQUIRE(saved.systems.at(0).status == "ok");
    const Metrics& a = direct.systems[0].mean;
    const Metrics& b = saved.systems[0].mean;
    CHECK(a.n == b.n);
    CHECK(a.quality_ratio == Approx(b.quality_ratio).epsilon(1e-12));
    CHECK(a.cost_ratio == Approx(b.cost_ratio).epsilon(1e-12));
    CHECK(a.accepted_early == b.accepted_early);
    CHECK(a.tier_share == b.tier_share);
  }
}

TEST_CASE("pipeline: a tampered, truncated or foreign artifact is a clear error", "[pipeline]") {
  Fixture f;
  PipelineFitOptions fo;
  fo.system = "routenlp-cascade";
  Pipeline p = fit_pipeline(f.data, f.portfolio, fo);
  auto fresh = [&](const std::string& name) {
    std::string dir = scratch(name);
    p.save(dir);
    return dir;
  };
  {
    std::string dir = fresh("tampered");
    std::ofstream(dir + "/calibration.json", std::ios::app) << " ";
    expect_throws_with([&] { Pipeline::load(dir); }, "calibration.json: SHA-256 differs");
  }
  {
    std::string dir = fresh("truncated");
    fs::resize_file(dir + "/portfolio.yaml", 10);
    expect_throws_with([&] { Pipeline::load(dir); }, "portfolio.yaml: SHA-256 differs");
  }
  {
    std::string dir = fresh("missing");
    fs::remove(dir + "/calibration.json");
    expect_throws_with([&] { Pipeline::load(dir); }, "calibration.json: listed in manifest.json but missing");
  }
  {
    std::string dir = fresh("extra");
    std::ofstream(dir + "/notes.txt") << "x";
    expect_throws_with([&] { Pipeline::load(dir); }, "notes.txt: not listed");
  }
  {
    std::string dir = fresh("version");
    json m = json::parse(std::ifstream(dir + "/manifest.json"));
    m["format_version"] = kPipelineFormatVersion + 1;
    std::ofstream(dir + "/manifest.json") << m.dump();
    expect_throws_with([&] { Pipeline::load(dir); }, "format version " + std::to_string(kPipelineFormatVersion + 1));
  }
  {
    std::string dir = fresh("major");
    json m = json::parse(std::ifstream(dir + "/manifest.json"));
    m["library_version"] = "999.0.0";
    std::ofstream(dir + "/manifest.json") << m.dump();
    expect_throws_with([&] { Pipeline::load(dir); }, "major versions differ");
  }
  {
    std::string dir = fresh("escape");
    json m = json::parse(std::ifstream(dir + "/manifest.json"));
    m["files"]["../outside"] = std::string(64, 'a');
    std::ofstream(dir + "/manifest.json") << m.dump();
    expect_throws_with([&] { Pipeline::load(dir); }, "not a path inside the artifact");
  }
  expect_throws_with([&] { Pipeline::load(scratch("nothing-here")); }, "not a pipeline artifact directory");
}

TEST_CASE("pipeline: per-task alpha from the portfolio reaches calibration and requests",
          "[pipeline]") {
  Fixture f;
  f.portfolio.tasks["t0"].alpha = 0.05;  // base alpha 0.1
  PipelineFitOptions fo;
  fo.system = "routenlp-cascade";
  Pipeline p = fit_pipeline(f.data, f.portfolio, fo);
  const auto& alphas = p.thresholds()->alphas;
  CHECK(std::find(alphas.begin(), alphas.end(), 0.05) != alphas.end());
  CHECK(p.request({"q", "t0"}).alpha == 0.05);
  CHECK(std::isnan(p.request({"q", "t1"}).alpha));
  // The stricter task accepts no more early answers than it would at the base alpha.
  const auto& t = *p.thresholds();
  const int col = t.column_for("t0");
  REQUIRE(col >= 0);
  CHECK(t.at(t.alpha_index(0.05), 0, size_t(col)) <= t.at(t.base_alpha, 0, size_t(col)));
}

TEST_CASE("pipeline: calibrate with RouteLLM's strong-share rule", "[pipeline]") {
  Fixture f;
  RoutingLabels train = make_labels(f.data, f.portfolio, Split::train);
  std::shared_ptr<const RouterModel> router = make_task_prior_router(train);
  Pipeline p = calibrate_pipeline(f.data, f.portfolio, router, 0.3);
  REQUIRE(p.strong_share());
  size_t strong = 0, n = 0;
  for (size_t i : f.rows(Split::calib)) {
    const Query& x = f.data.queries[i];
    PipelineRoute r = p.route({x.query, x.task});
    CHECK(r.first_tier == r.max_tier);  // the chosen tier answers: no cascade
    strong += r.first_tier == 1;
    ++n;
  }
  // The task prior has few distinct scores, so ties move the share; wide margin.
  CHECK(double(strong) / double(n) <= 0.6);
  CHECK(strong > 0);
  expect_throws_with([&] { calibrate_pipeline(f.data, f.portfolio, nullptr, 0.3); }, "needs a router");
}

TEST_CASE("pipeline: a float or out-of-range integer in an integer field is a parse error naming it",
          "[pipeline]") {
  Fixture f;
  RoutingLabels train = make_labels(f.data, f.portfolio, Split::train);
  Pipeline p = calibrate_pipeline(f.data, f.portfolio, make_task_prior_router(train), 0.3);
  REQUIRE(p.strong_share());
  // rule.json's tier indices (its SHA-256 in manifest.json rewritten to match).
  for (const char* field : {"weak", "strong"})
    for (const char* value : {"1e300", "4294967296", "2.0"}) {
      const std::string dir = scratch(std::string("int_rule_") + field);
      p.save(dir);
      json r = json::parse(std::ifstream(dir + "/rule.json"));
      r[field] = json::parse(value);
      const std::string text = r.dump();
      std::ofstream(dir + "/rule.json") << text;
      json m = json::parse(std::ifstream(dir + "/manifest.json"));
      m["files"]["rule.json"] = detail::sha256_hex(text);
      std::ofstream(dir + "/manifest.json") << m.dump();
      INFO(field << " = " << value);
      try {
        Pipeline::load(dir);
        FAIL("expected a parse error");
      } catch (const Error& e) {
        CHECK(e.code() == Status::parse);
        CHECK_THAT(e.what(), Catch::Contains("rule.json: " + std::string(field) + ": expected an integer"));
      }
    }
  // manifest.json's format_version.
  for (const char* value : {"1e300", "4294967297", "-4294967295", "1.0"}) {
    const std::string dir = scratch("int_manifest");
    p.save(dir);
    json m = json::parse(std::ifstream(dir + "/manifest.json"));
    m["format_version"] = json::parse(value);
    std::ofstream(dir + "/manifest.json") << m.dump();
    INFO("format_version = " << value);
    try {
      Pipeline::load(dir);
      FAIL("expected a parse error");
    } catch (const Error& e) {
      CHECK(e.code() == Status::parse);
      CHECK_THAT(e.what(), Catch::Contains("manifest.json: format_version: expected an integer"));
    }
  }
}

using rn_test::LiveServer;

TEST_CASE("pipeline: serve with the artifact decides exactly as eval --pipeline", "[pipeline][serve]") {
  Fixture f;
  PipelineFitOptions fo;
  fo.system = "routenlp";
  Pipeline fitted = fit_pipeline(f.data, f.portfolio, fo);
  const std::string dir = scratch("serve");
  fitted.save(dir);
  auto loaded = std::make_shared<const Pipeline>(Pipeline::load(dir));

  // eval --pipeline: the decision log of every replayed test request.
  const std::string log = scratch("serve-eval.jsonl");
  std::vector<std::unique_ptr<System>> systems;
  systems.push_back(make_pipeline_system(loaded, log));
  EvalReport rep = evaluate_systems(f.data, loaded->portfolio(), EvalOptions{}, {"pipeline"}, systems);
  REQUIRE(rep.systems.at(0).status == "ok");
  std::map<std::string, CascadeResult> by_eval;
  for (auto& r : read_decision_log(log)) by_eval[r.request_id] = r;

  // serve: the same artifact over the same recorded answers, request id = query id.
  ServeSetup setup;
  setup.pipeline = loaded;
  setup.tiers = replay_tiers(f.data, loaded->portfolio());
  setup.audit_rate = 0.0;
  LiveServer live(setup, ServeOptions{});
  httplib::Client c("127.0.0.1", live.port);
  c.set_read_timeout(30, 0);
  json queries = json::array();
  for (size_t i : f.rows(Split::test)) {
    const Query& x = f.data.queries[i];
    queries.push_back({{"query", x.query}, {"task", x.task}, {"request_id", x.id}});
  }
  REQUIRE(queries.size() == by_eval.size());
  auto res = c.Post("/route/batch", json{{"queries", queries}, {"execute", true}}.dump(), "application/json");
  REQUIRE(res);
  INFO(res->body.substr(0, 400));
  REQUIRE(res->status == 200);
  json out = json::parse(res->body);
  size_t compared = 0;
  for (const auto& d : out["decisions"]) {
    const std::string id = d["request_id"];
    REQUIRE(by_eval.count(id));
    const CascadeResult& e = by_eval[id];
    CHECK(d["policy"] == "pipeline");
    CHECK(d["cascade"]["tier"] == e.tier);
    std::vector<int> served;
    for (const auto& t : d["cascade"]["trace"])
      if (t["decision"] == "accepted" || t["decision"] == "escalated" || t["decision"] == "final")
        served.push_back(t["tier"]);
    CHECK(served == called(e));
    CHECK(d["tier"] == called(e).front());  // the routing decision is the first call
    ++compared;
  }
  CHECK(compared == by_eval.size());
}

namespace {
// The value of a Prometheus sample line that starts with `prefix` (NaN when absent).
double metric(const std::string& text, const std::string& prefix) {
  size_t at = text.find("\n" + prefix);
  if (at == std::string::npos) return std::nan("");
  size_t sp = text.find(' ', at + 1 + prefix.size());
  return std::stod(text.substr(sp + 1, text.find('\n', sp) - sp - 1));
}
}  // namespace

TEST_CASE("pipeline: feedback to serve moves thresholds along the stored curves (seen on /metrics)",
          "[pipeline][serve]") {
  Fixture f;
  PipelineFitOptions fo;
  fo.system = "routenlp-cascade";  // guarantee mode (alpha 0.1): curves are stored
  Pipeline fitted = fit_pipeline(f.data, f.portfolio, fo);
  REQUIRE_FALSE(fitted.calibration()->result().curves.empty());
  const std::string dir = scratch("serve-online");
  fitted.save(dir);
  ServeSetup setup;
  setup.pipeline = std::make_shared<const Pipeline>(Pipeline::load(dir));
  setup.tiers = replay_tiers(f.data, setup.pipeline->portfolio());
  setup.audit_rate = 1.0;
  LiveServer live(setup, ServeOptions{});
  httplib::Client c("127.0.0.1", live.port);
  c.set_read_timeout(30, 0);

  auto metrics = [&] {
    auto r = c.Get("/metrics");
    REQUIRE(r);
    return r->body;
  };
  const std::string before = metrics();
  const std::string cell = "tier=\"0\",column=\"*\"}";
  const double calibrated = metric(before, "routenlp_online_calibrated_delta{" + cell);
  REQUIRE(std::isfinite(calibrated));
  CHECK(metric(before, "routenlp_online_delta{" + cell) == calibrated);

  // Every answer accepted at the cheap tier is reported bad.
  size_t bad = 0;
  for (size_t i : f.rows(Split::test)) {
    const Query& x = f.data.queries[i];
    json body = {{"query", x.query}, {"task", x.task}, {"request_id", x.id}, {"execute", true}};
    auto r = c.Post("/route", body.dump(), "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 200);
    json out = json::parse(r->body);
    if (out["cascade"]["tier"] != 0) continue;
    auto fb = c.Post("/feedback", json{{"request_id", x.id}, {"acceptable", false}}.dump(), "application/json");
    REQUIRE(fb);
    CHECK(fb->status == 200);
    if (++bad == 6) break;
  }
  REQUIRE(bad >= 3);
  const std::string after = metrics();
  // The cells that received bad labels tightened; labels were counted.
  double labels = 0;
  for (const std::string col : {"t0", "t1", "*"})
    labels += std::max(0.0, metric(after, "routenlp_online_labels_total{tier=\"0\",column=\"" + col + "\"}"));
  CHECK(labels >= double(bad));
  bool tightened = false;
  for (const std::string col : {"t0", "t1", "*"}) {
    const std::string k = "tier=\"0\",column=\"" + col + "\"}";
    const double d = metric(after, "routenlp_online_delta{" + k), d0 = metric(after, "routenlp_online_calibrated_delta{" + k);
    if (std::isfinite(d0) && d < d0) tightened = true;
  }
  CHECK(tightened);
}
