// Portfolio config: parsing, per-task fallbacks, pricing, errors naming file:line: field, save /
// load round trip.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "routenlp/error.hpp"
#include "routenlp/data/portfolio.hpp"

using namespace routenlp;
namespace fs = std::filesystem;

namespace {

std::string data(const std::string& name) {
  return std::string(RN_TEST_DATA_DIR) + "/portfolio/" + name;
}

Error load_error(const std::string& file) {
  try {
    load_portfolio(data(file));
  } catch (const Error& e) {
    return e;
  }
  FAIL("no error loading " << file);
  return Error(Status::ok, "");
}

bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

}  // namespace

TEST_CASE("good portfolio loads", "[portfolio]") {
  PortfolioConfig c = load_portfolio(data("good.yaml"));
  REQUIRE(c.tiers.size() == 2);
  CHECK(c.tiers[0].name == "small");
  CHECK(c.tiers[1].price_per_1m_output == 30.0);
  REQUIRE(c.tiers[1].latency_ms);
  CHECK(c.tiers[1].latency_ms->p99_ms == 4000.0);
  CHECK(c.sla_ms == 1000.0);
  CHECK(c.alpha == 0.05);
  CHECK(c.quality_target.value() == 0.97);
  CHECK(c.tier_index("large") == 1);
  CHECK(c.tier_index("medium") == -1);
  CHECK(c.reference_tier_index() == 1);  // last tier by default
  CHECK(c.source == data("good.yaml"));
}

TEST_CASE("per-task fallback: task -> domain -> default -> top level", "[portfolio]") {
  PortfolioConfig c = load_portfolio(data("good.yaml"));
  // quality_threshold
  CHECK(c.quality_threshold("mt-bench") == 0.8);      // own entry
  CHECK(c.quality_threshold("legal/clause") == 0.7);  // domain "legal" (own entry has none)
  CHECK(c.quality_threshold("legal/other") == 0.7);   // domain
  CHECK(c.quality_threshold("gsm8k") == 1.0);         // default
  // alpha
  CHECK(c.alpha_for("legal/clause") == 0.02);  // own entry
  CHECK(c.alpha_for("mt-bench") == 0.1);
  CHECK(c.alpha_for("legal/other") == 0.05);  // domain has none, default has none -> top level
  // quality_target
  CHECK(c.quality_target_for("legal/clause").value() == 0.9);  // domain
  CHECK(c.quality_target_for("gsm8k").value() == 0.97);        // top level
  // acceptable
  CHECK(c.acceptable("mt-bench", 0.8));
  CHECK_FALSE(c.acceptable("mt-bench", 0.79));
  CHECK_FALSE(c.acceptable("gsm8k", 0.99));
  CHECK(c.acceptable("gsm8k", 1.0));
  // Without tasks.default the top-level quality_threshold (default 1.0) applies.
  PortfolioConfig bare = parse_portfolio(
      "tiers: [{name: a, price_per_1m_input: 1, price_per_1m_output: 2}]\nquality_threshold: 0.5\n");
  CHECK(bare.quality_threshold("x") == 0.5);
  CHECK_FALSE(bare.quality_target_for("x").has_value());
}

TEST_CASE("price from tokens", "[portfolio]") {
  PortfolioConfig c = load_portfolio(data("good.yaml"));
  // 2000 * 10 / 1e6 + 100 * 30 / 1e6 = 0.02 + 0.003
  CHECK(c.price(1, 2000, 100) == Approx(0.023));
  // 1e6 tokens each at 0.60 = 1.20
  CHECK(c.price(0, 1000000, 1000000) == Approx(1.2));
  CHECK_THROWS_AS(c.price(2, 1, 1), Error);
  CHECK_THROWS_AS(c.price(-1, 1, 1), Error);
}

TEST_CASE("config errors name file:line: field", "[portfolio]") {
  struct Case {
    const char* file;
    const char* where;
    const char* why;
  };
  const Case cases[] = {
      {"unknown_key.yaml", "unknown_key.yaml:7: tiers[1].price_per_1m_ouput", "unknown key"},
      {"unknown_top.yaml", "unknown_top.yaml:4: aplha", "unknown key"},
      {"unknown_task_key.yaml", "unknown_task_key.yaml:5: tasks.gsm8k.quality_treshold", "unknown key"},
      {"dup_tier.yaml", "dup_tier.yaml:4: tiers[2].name", "duplicate tier name 'a'"},
      {"bad_latency.yaml", "bad_latency.yaml:5: tiers[0].latency_ms.p99", "must be >= p50"},
      {"negative_price.yaml", "negative_price.yaml:3: tiers[0].price_per_1m_input", "must be >= 0"},
      {"bad_alpha.yaml", "bad_alpha.yaml:3: alpha", "must be in (0,1)"},
      {"bad_reference.yaml", "bad_reference.yaml:3: reference_tier", "'gpt-5' is not one of the tiers"},
      {"syntax_error.yaml", "syntax_error.yaml:", "(yaml)"},
  };
  for (const Case& c : cases) {
    INFO(c.file);
    Error e = load_error(c.file);
    CHECK(e.code() == Status::parse);
    CHECK(contains(e.what(), c.where));
    CHECK(contains(e.what(), c.why));
  }
  // Unknown-key errors list the allowed keys (typos are easy to spot).
  CHECK(contains(load_error("unknown_key.yaml").what(), "price_per_1m_output"));
}

TEST_CASE("more invalid configs", "[portfolio]") {
  CHECK_THROWS_AS(parse_portfolio(""), Error);                   // empty
  CHECK_THROWS_AS(parse_portfolio("tiers: []\n"), Error);         // no tiers
  CHECK_THROWS_AS(parse_portfolio("sla_ms: 3\n"), Error);         // tiers missing
  CHECK_THROWS_AS(parse_portfolio("- a\n- b\n"), Error);          // not a mapping
  const std::string t = "tiers: [{name: a, price_per_1m_input: 1, price_per_1m_output: 1}]\n";
  CHECK_THROWS_AS(parse_portfolio("tiers: [{name: '', price_per_1m_input: 1, price_per_1m_output: 1}]"), Error);
  CHECK_THROWS_AS(parse_portfolio("tiers: [{name: a, price_per_1m_input: 1}]"), Error);  // price missing
  CHECK_THROWS_AS(parse_portfolio("tiers: [{name: a, price_per_1m_input: x, price_per_1m_output: 1}]"), Error);
  CHECK_THROWS_AS(parse_portfolio("tiers: [{name: a, price_per_1m_input: .nan, price_per_1m_output: 1}]"), Error);
  CHECK_THROWS_AS(parse_portfolio(t + "alpha: 0\n"), Error);
  CHECK_THROWS_AS(parse_portfolio(t + "quality_target: 0\n"), Error);
  CHECK_THROWS_AS(parse_portfolio(t + "quality_target: 1.01\n"), Error);
  CHECK_NOTHROW(parse_portfolio(t + "quality_target: 1\n"));
  CHECK(parse_portfolio(t + "quality_allocation: per_task\n").quality_allocation == "per_task");
  CHECK_FALSE(parse_portfolio(t).quality_allocation.has_value());
  CHECK_THROWS_WITH(parse_portfolio(t + "quality_allocation: both\n", "q.yaml"),
                    Catch::Contains("quality_allocation") && Catch::Contains("per_task"));
  CHECK_THROWS_AS(parse_portfolio(t + "quality_allocation: [global]\n"), Error);
  // Repeated keys are errors wherever they are (the red-team's alpha 0.05 then 2; a tier's
  // price given twice; a task listed twice).
  CHECK_THROWS_WITH(parse_portfolio(t + "alpha: 0.05\nalpha: 2\n", "d.yaml"),
                    Catch::Contains("d.yaml:3: alpha: duplicate key (first given on line 2)"));
  CHECK_THROWS_WITH(
      parse_portfolio("tiers: [{name: a, price_per_1m_input: 1, price_per_1m_output: 1, "
                      "price_per_1m_output: -5}]\n"),
      Catch::Contains("price_per_1m_output: duplicate key"));
  CHECK_THROWS_WITH(parse_portfolio(t + "tasks:\n  qa: {alpha: 0.1}\n  qa: {alpha: 0.2}\n"),
                    Catch::Contains("tasks.qa: duplicate key"));
  CHECK_THROWS_AS(parse_portfolio(t + "sla_ms: -1\n"), Error);
  CHECK_THROWS_AS(parse_portfolio(t + "tasks: {x: {alpha: 1}}\n"), Error);
  CHECK_THROWS_AS(parse_portfolio(t + "tasks: {x: {quality_threshold: 2}}\n"), Error);
  CHECK_THROWS_AS(parse_portfolio(t + "tasks: {x: 3}\n"), Error);
  try {
    load_portfolio(data("missing.yaml"));
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == Status::io);
    CHECK(contains(e.what(), "missing.yaml"));
  }
}

TEST_CASE("save -> load round trip", "[portfolio]") {
  PortfolioConfig c = load_portfolio(data("good.yaml"));
  c.reference_tier = "small";
  c.quality_allocation = "per_task";
  fs::path dir = fs::path(RN_BINARY_DIR) / "test_portfolio_scratch";
  fs::create_directories(dir);
  std::string p = (dir / "saved.yaml").string();
  save_portfolio(c, p);
  PortfolioConfig d = load_portfolio(p);
  REQUIRE(d.tiers.size() == c.tiers.size());
  for (size_t i = 0; i < c.tiers.size(); ++i) {
    CHECK(d.tiers[i].name == c.tiers[i].name);
    CHECK(d.tiers[i].price_per_1m_input == c.tiers[i].price_per_1m_input);
    CHECK(d.tiers[i].price_per_1m_output == c.tiers[i].price_per_1m_output);
    CHECK(d.tiers[i].latency_ms.has_value() == c.tiers[i].latency_ms.has_value());
    if (c.tiers[i].latency_ms) {
      CHECK(d.tiers[i].latency_ms->p50_ms == c.tiers[i].latency_ms->p50_ms);
      CHECK(d.tiers[i].latency_ms->p99_ms == c.tiers[i].latency_ms->p99_ms);
    }
  }
  CHECK(d.tasks.size() == c.tasks.size());
  for (const auto& [name, p0] : c.tasks) {
    const TaskPolicy& p1 = d.tasks.at(name);
    CHECK(p1.quality_threshold == p0.quality_threshold);
    CHECK(p1.alpha == p0.alpha);
    CHECK(p1.quality_target == p0.quality_target);
  }
  CHECK(d.sla_ms == c.sla_ms);
  CHECK(d.alpha == c.alpha);
  CHECK(d.quality_target == c.quality_target);
  CHECK(d.reference_tier == c.reference_tier);
  CHECK(d.quality_allocation == c.quality_allocation);
  CHECK(d.reference_tier_index() == 0);
  CHECK(portfolio_to_yaml(d) == portfolio_to_yaml(c));
}
