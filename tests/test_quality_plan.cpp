// Quality-target mode: the global allocation across tasks, the cross-fitted certificate, per-task
// targets, shrinkage of small tasks, the router's skip level, agreement between the calibrator's
// plan and the engine's replay, and the learned acceptance score. docs/conformal.md.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "routenlp/calibration/acceptance.hpp"
#include "routenlp/cascade/result.hpp"
#include "routenlp/cascade/engine.hpp"
#include "routenlp/calibration/threshold_table.hpp"
#include "routenlp/calibration/quality_plan.hpp"
#include "routenlp/calibration/calibrator.hpp"
#include "routenlp/error.hpp"

using namespace routenlp;

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Three tiers (costs 1, 10, 100 milli-USD). Each query has a difficulty z; tier k answers
// acceptably with probability sigmoid((skill_k - z) / .08), and reports a noisy confidence
// about it. Task "easy" has z ~ U(0, .45) (the medium tier is nearly always right), "hard"
// z ~ U(.4, 1) (only the large tier is), "tiny" (rare) like "hard".
// With router = true tiers 0 and 1 report no confidence: u comes from a router p instead.
CalibrationData make_data(size_t n, uint64_t seed, bool router = false) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> U(0, 1);
  std::normal_distribution<double> N(0, 1);
  const double skill[3] = {0.35, 0.6, 0.9};
  const double cost[3] = {0.001, 0.01, 0.1};
  CalibrationData d;
  d.tiers = {"small", "medium", "large"};
  if (router) d.u_before_call = {1, 1, 0};
  for (size_t i = 0; i < n; ++i) {
    std::string task = i % 40 == 0 ? "tiny" : (i % 2 ? "easy" : "hard");
    double z = task == "easy" ? 0.45 * U(rng) : 0.4 + 0.6 * U(rng);
    std::vector<double> u(3), q(3), c(3), p(3);
    std::vector<uint8_t> b(3);
    for (int k = 0; k < 3; ++k) {
      double pk = sigmoid((skill[k] - z) / 0.08);
      bool ok = U(rng) < pk;
      q[size_t(k)] = ok;
      b[size_t(k)] = !ok;
      c[size_t(k)] = cost[k];
      p[size_t(k)] = std::min(1.0, std::max(0.0, pk + 0.1 * N(rng)));
      double conf = std::min(1.0, std::max(0.0, pk + 0.15 * N(rng) + (ok ? 0.1 : -0.1)));
      u[size_t(k)] = router && k < 2 ? 1.0 - p[size_t(k)] : 1.0 - conf;
    }
    d.tasks.push_back(task);
    d.u.push_back(u);
    d.bad.push_back(b);
    d.quality.push_back(q);
    d.cost.push_back(c);
    if (router) d.router_p.push_back(p);
  }
  return d;
}

// The calibrator's own rule, replayed by hand on other rows (request id = the row number, which
// picks a mixed plan's partner): per task, mean quality and cost.
struct Outcome {
  double q = 0, c = 0, qref = 0, cref = 0;
  size_t n = 0;
  double ratio() const { return q / qref; }
  double cost_ratio() const { return c / cref; }
};

std::map<std::string, Outcome> replay(const ThresholdTable& t, const CalibrationData& d) {
  std::map<std::string, Outcome> out;
  const size_t K = d.tiers.size();
  for (size_t r = 0; r < d.rows(); ++r) {
    const int col = t.column_for_request(d.tasks[r], std::to_string(r));
    REQUIRE(col >= 0);
    size_t s = static_cast<size_t>(t.start_tier[static_cast<size_t>(col)]);
    const double tau = t.skip_tau[static_cast<size_t>(col)];
    if (tau > 0 && !d.router_p.empty()) {
      size_t rs = K - 1;
      for (size_t k = 0; k + 1 < K; ++k)
        if (d.router_p[r][k] >= tau) {
          rs = k;
          break;
        }
      s = std::max(s, rs);
    }
    double cost = 0, q = 0;
    for (size_t k = s; k < K; ++k) {
      const double delta = t.at(t.base_alpha, k, static_cast<size_t>(col));
      const bool last = k + 1 == K;
      const bool accept = last || d.u[r][k] <= delta;
      if (!last && !(delta > -std::numeric_limits<double>::infinity())) continue;
      if (!last && t.u_before_call[k] && !accept) continue;
      cost += d.cost[r][k];
      if (accept) {
        q = d.quality[r][k];
        break;
      }
    }
    for (const std::string& key : {d.tasks[r], std::string("*")}) {
      Outcome& o = out[key];
      o.q += q;
      o.c += cost;
      o.qref += d.quality[r][K - 1];
      o.cref += d.cost[r][K - 1];
      o.n++;
    }
  }
  return out;
}

CalibrationOptions qt_options(double target = 0.95) {
  CalibrationOptions o;
  o.goal = CalibrationGoal::quality_target;
  o.quality_target = target;
  return o;
}
}  // namespace

TEST_CASE("global allocation meets the aggregate target on fresh rows, for less than per task",
          "[quality]") {
  const CalibrationData cal = make_data(6000, 1);
  const CalibrationData fresh = make_data(20000, 2);
  ConformalCalibrator global(qt_options());
  const CalibrationResult& g = global.calibrate(cal);
  REQUIRE(g.selections.size() == 1);
  CHECK(g.selections[0].group == "*");
  CHECK(g.selections[0].certified);
  CHECK(g.selections[0].folds == 5);
  CHECK(g.selections[0].ratio_lower_bound >= 0.95 - 1e-9);
  auto og = replay(*global.thresholds(), fresh);
  INFO("global: ratio " << og["*"].ratio() << " cost " << og["*"].cost_ratio());
  CHECK(og["*"].ratio() >= 0.95 - 0.005);
  CHECK(og["*"].cost_ratio() < 0.7);

  CalibrationOptions po = qt_options();
  po.allocation = QualityAllocation::per_task;
  ConformalCalibrator per_task(po);
  const CalibrationResult& p = per_task.calibrate(cal);
  CHECK(p.selections.size() == 4);  // easy, hard, tiny, "*"
  auto op = replay(*per_task.thresholds(), fresh);
  for (const std::string task : {"easy", "hard"}) {
    INFO("per task " << task << ": ratio " << op[task].ratio());
    CHECK(op[task].ratio() >= 0.95 - 0.01);
  }
  INFO("per task: cost " << op["*"].cost_ratio() << " vs global " << og["*"].cost_ratio());
  CHECK(og["*"].cost_ratio() < op["*"].cost_ratio());
}

TEST_CASE("a task with its own target is certified on its own rows", "[quality]") {
  CalibrationOptions o = qt_options();
  o.task_quality_targets["hard"] = 0.99;
  ConformalCalibrator cal(o);
  const CalibrationResult& r = cal.calibrate(make_data(6000, 3));
  REQUIRE(r.selections.size() == 2);
  const QualitySelection* hard = nullptr;
  for (const auto& s : r.selections)
    if (s.group == "hard") hard = &s;
  REQUIRE(hard != nullptr);
  CHECK(hard->target == 0.99);
  auto out = replay(*cal.thresholds(), make_data(20000, 4));
  CHECK(out["hard"].ratio() >= 0.99 - 0.01);
}

TEST_CASE("a small task chooses among its pool's plans", "[quality]") {
  CalibrationOptions o = qt_options();
  o.qt_task_floor = 500;  // "tiny" has 150 rows
  ConformalCalibrator cal(o);
  const CalibrationResult& r = cal.calibrate(make_data(6000, 5));
  for (const auto& p : r.plans) {
    if (p.task == "tiny") CHECK(p.source == "*");
    if (p.task == "easy") CHECK(p.source == "easy");
  }
}

TEST_CASE("the certificate refuses a target no plan can reach", "[quality]") {
  CalibrationOptions o = qt_options(1.2);  // 120% of the top tier's quality
  ConformalCalibrator cal(o);
  const CalibrationResult& r = cal.calibrate(make_data(3000, 6));
  REQUIRE(r.selections.size() == 1);
  CHECK_FALSE(r.selections[0].certified);
  CHECK(r.selections[0].level == -1.0);  // the reference tier alone
  auto t = cal.thresholds();
  for (size_t c = 0; c < t->columns.size(); ++c) CHECK(t->start_tier[c] == 2);
}

TEST_CASE("router skip level and not-called tiers: the engine replays the plan exactly",
          "[quality][engine]") {
  const CalibrationData cal = make_data(6000, 7, /*router=*/true);
  ConformalCalibrator c(qt_options());
  c.calibrate(cal);
  auto table = c.thresholds();
  CHECK(table->u_before_call == std::vector<uint8_t>{1, 1, 0});
  // Tiers serve the rows of a fresh draw; the engine must pay and answer what the replay says.
  const CalibrationData fresh = make_data(3000, 8, /*router=*/true);
  std::vector<std::shared_ptr<ModelTier>> tiers;
  std::vector<int> calls(3, 0);
  for (int k = 0; k < 3; ++k)
    tiers.push_back(std::make_shared<CallbackTier>(
        fresh.tiers[size_t(k)], [k, &fresh, &calls](const TierRequest& r) {
          const size_t row = std::stoul(r.query);
          calls[size_t(k)]++;
          TierResponse resp;
          resp.text = std::to_string(fresh.quality[row][size_t(k)]);
          resp.cost = fresh.cost[row][size_t(k)];
          if (k == 2) resp.confidence = 1.0 - fresh.u[row][2];
          return resp;
        }));
  CascadeOptions eo;
  eo.threads = 1;
  CascadeEngine engine(tiers, table, eo);
  double q = 0, cost = 0;
  size_t skipped = 0;
  for (size_t r = 0; r < fresh.rows(); ++r) {
    CascadeRequest req;
    req.id = std::to_string(r);
    req.query = std::to_string(r);
    req.task = fresh.tasks[r];
    req.router_p = fresh.router_p[r];
    CascadeResult res = engine.run(req);
    REQUIRE(res.status == Status::ok);
    q += fresh.quality[r][static_cast<size_t>(res.tier)];
    cost += res.cost;
    for (const auto& e : res.trace) skipped += e.decision == TraceDecision::skipped_threshold;
  }
  auto out = replay(*table, fresh);
  CHECK(q == Approx(out["*"].q));
  CHECK(cost == Approx(out["*"].c));
  CHECK(skipped > 0);  // router-scored tiers that could not accept were not called
  CHECK(calls[0] + calls[1] < static_cast<int>(2 * fresh.rows()));
  // Without the router's p the planner has fewer options: never cheaper at the same target.
  CalibrationData blind = cal;
  blind.router_p.clear();
  ConformalCalibrator b(qt_options());
  b.calibrate(blind);
  double with_router = 0, without = 0;
  for (const auto& s : c.result().selections) with_router = s.cv_cost_ratio;
  for (const auto& s : b.result().selections) without = s.cv_cost_ratio;
  CHECK(with_router <= without + 0.02);
}

TEST_CASE("a mixed plan sends its share of request ids to the partner column", "[quality]") {
  auto t = std::make_shared<ThresholdTable>();
  t->reset_shape({"a", "b"}, {"x", "*", std::string("x\x1fmix")}, {0.05}, 0);
  t->mix_column[0] = 2;
  t->mix_share[0] = 0.3;
  size_t alt = 0;
  for (int i = 0; i < 20000; ++i) alt += t->column_for_request("x", "req-" + std::to_string(i)) == 2;
  CHECK(alt / 20000.0 == Approx(0.3).margin(0.02));
  CHECK(t->column_for_request("x", "same") == t->column_for_request("x", "same"));
  CHECK(t->column_for_request("y", "req-1") == 1);  // "*" has no mixture
  CHECK(t->column_for("x\x1fmix") == 2);
}

TEST_CASE("quality-target results survive JSON", "[quality][json]") {
  ConformalCalibrator c(qt_options());
  c.calibrate(make_data(3000, 9, true));
  auto back = ConformalCalibrator::from_json(c.to_json());
  const auto& a = c.result();
  const auto& b = back.result();
  CHECK(b.table->skip_tau == a.table->skip_tau);
  CHECK(b.table->u_before_call == a.table->u_before_call);
  CHECK(b.table->delta == a.table->delta);
  REQUIRE(b.selections.size() == a.selections.size());
  CHECK(b.selections[0].level == a.selections[0].level);
  CHECK(b.selections[0].cv_cost_ratio == Approx(a.selections[0].cv_cost_ratio));
  REQUIRE(b.plans.size() == a.plans.size());
  CHECK(b.plans[0].source == a.plans[0].source);
  CHECK(back.options().qt_folds == c.options().qt_folds);
  CHECK(back.options().allocation == c.options().allocation);
  // Bad values are errors that name the field.
  std::string bad = c.to_json();
  auto pos = bad.find("\"skip_tau\": [");
  REQUIRE(pos != std::string::npos);
  bad.insert(pos + 13, "7,");
  CHECK_THROWS_WITH(ConformalCalibrator::from_json(bad, "cal.json"),
                    Catch::Contains("cal.json") && Catch::Contains("skip_tau"));
  CHECK_THROWS_AS(parse_allocation("both"), Error);
  CHECK(parse_bound("bernstein") == QualityBound::bernstein);
}

TEST_CASE("calibration JSON: a float or out-of-range integer in an integer field is a parse error naming it",
          "[quality][json]") {
  using nlohmann::json;
  ConformalCalibrator c(qt_options());
  c.calibrate(make_data(3000, 9, true));
  const json good = json::parse(c.to_json());
  REQUIRE_NOTHROW(ConformalCalibrator::from_json(good.dump(), "cal.json"));
  // Every integer field of the file, and what the error names. A float such as 1e300 overflowed
  // nlohmann's cast (UBSan: float-cast-overflow); -1 in an unsigned field and 4294967296 in an
  // int one wrapped silently.
  struct Field {
    const char* pointer;
    const char* named;
    bool is_unsigned;
  };
  const Field fields[] = {
      {"/format_version", "cal.json: format_version: ", false},
      {"/options/cell_floor", "cal.json: options: cell_floor: ", true},
      {"/options/reference_tier", "cal.json: options: reference_tier: ", false},
      {"/options/qt_folds", "cal.json: options: qt_folds: ", true},
      {"/options/qt_task_floor", "cal.json: options: qt_task_floor: ", true},
      {"/options/qt_levels", "cal.json: options: qt_levels: ", true},
      {"/options/seed", "cal.json: options: seed: ", true},
      {"/provenance/n", "cal.json: provenance: n: ", true},
      {"/table/base_alpha", "cal.json: table: base_alpha: ", true},
      {"/table/start_tier/0", "cal.json: table: start_tier[0]: ", false},
      {"/table/u_before_call/1", "cal.json: table: u_before_call[1]: ", false},
      {"/table/mix_column/0", "cal.json: table: mix_column[0]: ", false},
      {"/cells/0/tier", "cal.json: cells[0]: tier: ", false},
      {"/cells/1/n", "cal.json: cells[1]: n: ", true},
      {"/cells/1/n_bad", "cal.json: cells[1]: n_bad: ", true},
      {"/cells/1/accepted", "cal.json: cells[1]: accepted: ", true},
      {"/cells/1/accepted_bad", "cal.json: cells[1]: accepted_bad: ", true},
      {"/plans/0/start_tier", "cal.json: plans[0]: start_tier: ", false},
      {"/plans/0/mix_start_tier", "cal.json: plans[0]: mix_start_tier: ", false},
      {"/plans/0/n_build", "cal.json: plans[0]: n_build: ", true},
      {"/plans/0/n_test", "cal.json: plans[0]: n_test: ", true},
      {"/selections/0/n", "cal.json: selections[0]: n: ", true},
      {"/selections/0/folds", "cal.json: selections[0]: folds: ", true},
      {"/selections/0/sequence", "cal.json: selections[0]: sequence: ", true},
      {"/selections/0/passed", "cal.json: selections[0]: passed: ", true},
      {"/curves/cells/0/tier", "cal.json: curves.cells[0]: tier: ", true},
  };
  REQUIRE(good.contains("plans"));
  REQUIRE(good.contains("selections"));
  for (const Field& f : fields) {
    const json::json_pointer ptr(f.pointer);
    if (!good.contains(ptr)) {
      CHECK(std::string(f.pointer).rfind("/curves/", 0) == 0);  // only curves may be absent
      continue;
    }
    for (const char* value : {"1e300", "-1e300", "2.0", f.is_unsigned ? "-1" : "4294967296"}) {
      json bad = good;
      bad[ptr] = json::parse(value);
      INFO(f.pointer << " = " << value);
      try {
        ConformalCalibrator::from_json(bad.dump(), "cal.json");
        FAIL("expected a parse error");
      } catch (const Error& e) {
        CHECK(e.code() == Status::parse);
        CHECK_THAT(e.what(), Catch::Contains(std::string(f.named) + "expected an integer"));
      }
    }
  }
}

TEST_CASE("a threshold that accepts nothing is not called", "[quality][engine]") {
  int calls0 = 0;
  auto t0 = std::make_shared<CallbackTier>("a", [&](const TierRequest&) {
    ++calls0;
    TierResponse r;
    r.confidence = 1.0;
    return r;
  });
  auto t1 = std::make_shared<CallbackTier>("b", [](const TierRequest&) { return TierResponse{}; });
  auto table = std::make_shared<ThresholdTable>(ThresholdTable::escalate_all({"a", "b"}));
  CascadeEngine eng({t0, t1}, table);
  CascadeRequest req;
  req.task = "x";
  CascadeResult r = eng.run(req);
  CHECK(calls0 == 0);
  CHECK(r.tier == 1);
  REQUIRE(r.trace.size() == 2);
  CHECK(r.trace[0].decision == TraceDecision::skipped_threshold);
  CHECK(std::string(trace_decision_name(r.trace[0].decision)) == "skipped_threshold");
  // An explicit max_tier makes tier 0 the last allowed tier: it is called.
  req.max_tier = 0;
  CHECK(eng.run(req).tier == 0);
  CHECK(calls0 == 1);
}

TEST_CASE("answer keys compare answers, not their wording", "[acceptance]") {
  CHECK(answer_key("The Pangolin.") == "pangolin");
  CHECK(answer_key("pangolin") == answer_key("A pangolin!"));
  CHECK(answer_key("C") == "c");
  const std::string work = "First we add 12 and 30, which gives 42. So the answer is 1,042.";
  CHECK(answer_key(work) == "#1042");
  CHECK(answer_key(work) == answer_key("Step by step: 1000 + 42 = 1042, hence 1,042 dollars"));
  CHECK(answer_key("") == "");
}

namespace {
// Two tiers; when tier 0 and tier 1 agree, tier 1 is almost always right whatever its
// confidence says (the signal a confidence alone misses).
AcceptanceData agreement_data(size_t n, uint64_t seed, bool informative) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> U(0, 1);
  AcceptanceData a;
  a.tiers = {"a", "b", "c"};
  for (size_t i = 0; i < n; ++i) {
    a.tasks.push_back(i % 2 ? "x" : "y");
    bool ok0 = U(rng) < 0.5, ok1 = U(rng) < 0.6;
    std::string truth = "yes", wrong0 = "no", wrong1 = "maybe";
    std::string ans0 = ok0 ? truth : wrong0, ans1 = ok1 ? truth : wrong1;
    if (!informative) ans0 = U(rng) < 0.5 ? "yes" : "no";
    double c1 = std::min(0.99, std::max(0.01, 0.5 + (ok1 ? 0.05 : -0.05) + 0.5 * (U(rng) - 0.5)));
    a.confidence.push_back({0.5, c1, 0.9});
    a.answers.push_back({ans0, ans1, truth});
    a.acceptable.push_back({uint8_t(ok0), uint8_t(ok1), 1});
  }
  return a;
}
}  // namespace

TEST_CASE("the acceptance model learns from agreement and is used only where it helps",
          "[acceptance]") {
  AcceptanceModel m = AcceptanceModel::fit(agreement_data(4000, 11, true));
  REQUIRE(m.report().size() == 2);
  const AcceptanceTierReport& r1 = m.report()[1];
  INFO("tier 1 AUC " << r1.auc_confidence << " -> " << r1.auc_model);
  CHECK(r1.used);
  CHECK(r1.auc_model > r1.auc_confidence + 0.05);
  CHECK(m.used(1));
  CHECK_FALSE(m.used(2));  // the last tier is never scored
  const double agree = m.p_acceptable(1, "x", 0.5, kNaN, "yes", {{0, "Yes.", 0.5}});
  const double disagree = m.p_acceptable(1, "x", 0.5, kNaN, "maybe", {{0, "no", 0.5}});
  CHECK(agree > disagree + 0.2);
  CHECK(agree > 0.0);
  CHECK(agree < 1.0);
  CHECK(std::isfinite(m.p_acceptable(1, "unseen-task", 0.5, kNaN, "yes", {})));
  CHECK(std::isnan(m.p_acceptable(2, "x", 0.5, kNaN, "yes", {})));
  // JSON keeps it.
  AcceptanceModel back = AcceptanceModel::from_json(m.to_json());
  CHECK(back.p_acceptable(1, "x", 0.5, kNaN, "yes", {{0, "yes", 0.5}}) ==
        Approx(m.p_acceptable(1, "x", 0.5, kNaN, "yes", {{0, "yes", 0.5}})));
  CHECK_THROWS_AS(AcceptanceModel::from_json("{\"format\": \"x\"}"), Error);

  // Tier 0's answers carry no signal and its confidence is constant: not used there.
  AcceptanceModel flat = AcceptanceModel::fit(agreement_data(4000, 12, false));
  CHECK_FALSE(flat.used(0));
}

TEST_CASE("acceptance model JSON: a float or out-of-range integer in an integer field is a parse error naming it",
          "[acceptance]") {
  using nlohmann::json;
  const json good = json::parse(AcceptanceModel::fit(agreement_data(4000, 11, true)).to_json());
  REQUIRE(good.at("report").size() >= 2);
  REQUIRE_NOTHROW(AcceptanceModel::from_json(good.dump(), "acc.json"));
  struct Field {
    const char* pointer;
    const char* named;
    const char* out_of_range;
  };
  for (const Field& f : {Field{"/format_version", "acc.json: format_version: ", "4294967297"},
                         Field{"/report/1/tier", "acc.json: report[1]: tier: ", "4294967296"},
                         Field{"/report/1/n", "acc.json: report[1]: n: ", "-1"}})
    for (const char* value : {"1e300", "-1e300", "1.0", f.out_of_range}) {
      json bad = good;
      bad[json::json_pointer(f.pointer)] = json::parse(value);
      INFO(f.pointer << " = " << value);
      try {
        AcceptanceModel::from_json(bad.dump(), "acc.json");
        FAIL("expected a parse error");
      } catch (const Error& e) {
        CHECK(e.code() == Status::parse);
        CHECK_THAT(e.what(), Catch::Contains(std::string(f.named) + "expected an integer"));
      }
    }
}

TEST_CASE("acceptance data is validated", "[acceptance]") {
  AcceptanceData a = agreement_data(10, 13, true);
  a.confidence[3][1] = 1.5;
  CHECK_THROWS_WITH(AcceptanceModel::fit(a), Catch::Contains("confidence[3][1]"));
  a = agreement_data(10, 13, true);
  a.answers.pop_back();
  CHECK_THROWS_WITH(AcceptanceModel::fit(a), Catch::Contains("answers"));
}

TEST_CASE("the engine scores with the acceptance model", "[acceptance][engine]") {
  auto m = std::make_shared<AcceptanceModel>(AcceptanceModel::fit(agreement_data(4000, 14, true)));
  auto tier = [](const std::string& name, std::string text) {
    return std::make_shared<CallbackTier>(name, [text](const TierRequest&) {
      TierResponse r;
      r.text = text;
      r.confidence = 0.5;
      return r;
    });
  };
  auto table = std::make_shared<ThresholdTable>();
  table->reset_shape({"a", "b", "c"}, {"*"}, {0.05}, 0);
  table->at(0, 0, 0) = -0.5;  // tier 0 never accepts, but is called (delta finite)
  const double p_agree = m->p_acceptable(1, "x", 0.5, kNaN, "yes", {{0, "yes", 0.5}});
  table->at(0, 1, 0) = 1.0 - p_agree + 1e-9;  // accept exactly when the answers agree
  CascadeOptions o;
  o.acceptance = m;
  CascadeRequest req;
  req.task = "x";
  CascadeEngine agree({tier("a", "yes"), tier("b", "yes"), tier("c", "yes")}, table, o);
  CHECK(agree.run(req).tier == 1);
  CascadeEngine disagree({tier("a", "no"), tier("b", "maybe"), tier("c", "yes")}, table, o);
  CHECK(disagree.run(req).tier == 2);
  CHECK(disagree.run(req).trace[1].uncertainty ==
        Approx(1.0 - m->p_acceptable(1, "x", 0.5, kNaN, "maybe", {{0, "no", 0.5}})));
}
