// Routing dataset: reader validation (every error kind names file:line: field), skip_bad_lines,
// round trip, atomic writer, deterministic split, outcome pricing and latency model.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "routenlp/data/dataset.hpp"
#include "routenlp/error.hpp"
#include "routenlp/data/portfolio.hpp"

using namespace routenlp;
namespace fs = std::filesystem;

namespace {

std::string data(const std::string& name) { return std::string(RN_TEST_DATA_DIR) + "/dataset/" + name; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path scratch(const std::string& name) {
  fs::path dir = fs::path(RN_BINARY_DIR) / "test_dataset_scratch";
  fs::create_directories(dir);
  fs::path p = dir / name;
  fs::remove(p);
  return p;
}

// Reads `file` and returns the Error it throws (fails the test if none).
Error read_error(const std::string& file, ReadOptions opt = {}) {
  try {
    read_dataset(data(file), opt);
  } catch (const Error& e) {
    return e;
  }
  FAIL("no error reading " << file);
  return Error(Status::ok, "");
}

bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

const char* kPortfolio = R"(tiers:
  - name: small
    price_per_1m_input: 0.60
    price_per_1m_output: 0.60
    latency_ms: {p50: 450, p99: 1400}
  - name: large
    price_per_1m_input: 10.0
    price_per_1m_output: 30.0
)";

}  // namespace

TEST_CASE("good file reads with every field", "[dataset]") {
  ReadReport rep;
  Dataset d = read_dataset(data("good.jsonl"), {}, &rep);
  REQUIRE(d.queries.size() == 2);
  CHECK(rep.lines == 2);
  CHECK(rep.queries == 2);
  CHECK(rep.skipped == 0);
  const Query& a = d.queries[0];
  CHECK(a.id == "q1");
  CHECK(a.task == "gsm8k");
  CHECK_FALSE(a.split_given);
  CHECK(a.split == split_for_id("q1"));
  REQUIRE(a.outcomes.size() == 2);
  CHECK(a.outcomes.at("large").cost.value() == Approx(0.004));
  CHECK_FALSE(a.outcomes.at("large").latency_ms.has_value());
  const Query& b = d.queries[1];
  CHECK(b.split_given);
  CHECK(b.split == Split::calib);
  const Outcome& bl = b.outcomes.at("large");
  CHECK(bl.quality == 0.75);
  CHECK(bl.latency_ms.value() == 812.5);
  CHECK(bl.confidence.value() == 0.91);
  CHECK(bl.response.value() == "Yes \xE2\x80\x94 it is.");  // \u2014 decoded to UTF-8
  CHECK(b.outcomes.at("small").input_tokens.value() == 12);
  CHECK(b.outcomes.at("small").output_tokens.value() == 40);
  CHECK(d.task_names() == std::vector<std::string>{"gsm8k", "legal/clause"});
  auto tiers = d.tier_names();
  CHECK(tiers.size() == 2);
  CHECK(d.indices(Split::calib) == std::vector<size_t>{1});
}

TEST_CASE("each bad line names file:line: field", "[dataset]") {
  struct Case {
    const char* file;
    const char* where;  // expected "file:line: field"
    const char* why;
  };
  const Case cases[] = {
      {"not_json.jsonl", "not_json.jsonl:2: (json)", "not JSON"},
      {"not_object.jsonl", "not_object.jsonl:2: (json)", "expected a JSON object"},
      // line 2 is blank: the bad line is line 3
      {"missing_quality.jsonl", "missing_quality.jsonl:3: outcomes.small.quality", "missing required field"},
      {"missing_query.jsonl", "missing_query.jsonl:2: query", "missing required field"},
      {"wrong_type.jsonl", "wrong_type.jsonl:2: outcomes.small.quality", "expected a number, got string"},
      {"wrong_type_id.jsonl", "wrong_type_id.jsonl:2: id", "expected a string, got number"},
      {"quality_range.jsonl", "quality_range.jsonl:2: outcomes.small.quality", "outside [0,1]"},
      {"nan.jsonl", "nan.jsonl:2: (json)", "NaN/Infinity are not JSON numbers"},
      {"inf.jsonl", "inf.jsonl:2: (json)", "number overflow parsing '1e999' (numbers must be finite)"},
      {"negative_cost.jsonl", "negative_cost.jsonl:2: outcomes.small.cost", "negative"},
      {"negative_latency.jsonl", "negative_latency.jsonl:2: outcomes.small.latency_ms", "negative"},
      {"negative_tokens.jsonl", "negative_tokens.jsonl:2: outcomes.small.output_tokens", "negative"},
      {"confidence_range.jsonl", "confidence_range.jsonl:2: outcomes.small.confidence", "outside [0,1]"},
      // byte 39 of line 2 is the lone 0xC3 lead byte in "caf\xC3 au lait"
      {"bad_utf8.jsonl", "bad_utf8.jsonl:2: byte 39", "invalid UTF-8"},
      {"bad_split.jsonl", "bad_split.jsonl:2: split", "'dev' is not train, calib or test"},
      {"empty.jsonl", "empty.jsonl:1: (file)", "empty file"},
      {"blank_lines.jsonl", "blank_lines.jsonl:1: (file)", "empty file"},
      {"duplicate_ids.jsonl", "duplicate_ids.jsonl:3: id", "duplicate id 'q1' (first on line 1)"},
  };
  for (const Case& c : cases) {
    INFO(c.file);
    Error e = read_error(c.file);
    CHECK(e.code() == Status::parse);
    CHECK(contains(e.what(), c.where));
    CHECK(contains(e.what(), c.why));
  }
}

TEST_CASE("streaming reader stops at the bad line after yielding the good ones", "[dataset]") {
  DatasetReader r(data("quality_range.jsonl"));
  Query q;
  REQUIRE(r.next(q));
  CHECK(q.id == "q1");
  CHECK(r.line_number() == 1);
  CHECK_THROWS_AS(r.next(q), Error);
}

TEST_CASE("a tier not in the portfolio is an error", "[dataset]") {
  PortfolioConfig cfg = parse_portfolio(kPortfolio, "p.yaml");
  ReadOptions opt;
  opt.portfolio = &cfg;
  Error e = read_error("unknown_tier.jsonl", opt);
  CHECK(contains(e.what(), "unknown_tier.jsonl:2: outcomes.medium"));
  CHECK(contains(e.what(), "not in the portfolio p.yaml"));
  // The same file reads without a portfolio.
  CHECK(read_dataset(data("unknown_tier.jsonl")).queries.size() == 2);
  // And the good file passes with it.
  CHECK(read_dataset(data("good.jsonl"), opt).queries.size() == 2);
}

TEST_CASE("query longer than max_query_bytes is an error", "[dataset]") {
  ReadOptions opt;
  opt.max_query_bytes = 10;  // "Is this clause valid?" on line 2 is 21 bytes
  Error e = read_error("good.jsonl", opt);
  CHECK(contains(e.what(), "good.jsonl:2: query: 21 bytes, longer than max_query_bytes 10"));
  opt.max_query_bytes = 0;  // no limit
  CHECK(read_dataset(data("good.jsonl"), opt).queries.size() == 2);
}

TEST_CASE("skip_bad_lines counts and reports every skip", "[dataset]") {
  // mixed_bad.jsonl: 1 good, 2 not JSON, 3 quality 2, 4 good, 5 duplicate of line 1.
  ReadOptions opt;
  opt.skip_bad_lines = true;
  ReadReport rep;
  Dataset d = read_dataset(data("mixed_bad.jsonl"), opt, &rep);
  REQUIRE(d.queries.size() == 2);
  CHECK(d.queries[0].id == "q1");
  CHECK(d.queries[1].id == "q4");
  CHECK(rep.lines == 5);
  CHECK(rep.skipped == 3);
  CHECK(rep.queries == 2);
  REQUIRE(rep.skip_messages.size() == 3);
  CHECK(contains(rep.skip_messages[0], "mixed_bad.jsonl:2: (json)"));
  CHECK(contains(rep.skip_messages[1], "mixed_bad.jsonl:3: outcomes.small.quality"));
  CHECK(contains(rep.skip_messages[2], "mixed_bad.jsonl:5: id: duplicate id"));
  // Without the option the first bad line fails.
  Error e = read_error("mixed_bad.jsonl");
  CHECK(contains(e.what(), "mixed_bad.jsonl:2:"));
  // Skipping cannot make an empty file valid.
  CHECK_THROWS_AS(read_dataset(data("empty.jsonl"), opt), Error);
}

TEST_CASE("missing file is an io error naming it", "[dataset]") {
  try {
    read_dataset(data("no_such_file.jsonl"));
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == Status::io);
    CHECK(contains(e.what(), "no_such_file.jsonl"));
  }
}

TEST_CASE("round trip read -> write -> read is identical, extra fields included", "[dataset]") {
  Dataset d = read_dataset(data("extra_fields.jsonl"));
  REQUIRE(d.queries.size() == 2);
  CHECK(d.queries[0].extra_json == R"({"source":{"name":"unit","rev":3},"tags":["a","b"]})");
  CHECK(d.queries[0].outcomes.at("small").extra_json == R"({"judge":"gpt-4","logprobs":[-0.1,-0.2]})");
  auto p1 = scratch("rt1.jsonl");
  auto p2 = scratch("rt2.jsonl");
  write_dataset(d, p1.string());
  Dataset d2 = read_dataset(p1.string());
  write_dataset(d2, p2.string());
  CHECK(slurp(p1.string()) == slurp(p2.string()));
  REQUIRE(d2.queries.size() == d.queries.size());
  for (size_t i = 0; i < d.queries.size(); ++i) {
    const Query& a = d.queries[i];
    const Query& b = d2.queries[i];
    CHECK(a.id == b.id);
    CHECK(a.task == b.task);
    CHECK(a.query == b.query);
    CHECK(a.split == b.split);
    CHECK(a.split_given == b.split_given);
    CHECK(a.extra_json == b.extra_json);
    REQUIRE(a.outcomes.size() == b.outcomes.size());
    for (const auto& [tier, o] : a.outcomes) {
      const Outcome& p = b.outcomes.at(tier);
      CHECK(o.quality == p.quality);
      CHECK(o.cost == p.cost);
      CHECK(o.latency_ms == p.latency_ms);
      CHECK(o.confidence == p.confidence);
      CHECK(o.input_tokens == p.input_tokens);
      CHECK(o.output_tokens == p.output_tokens);
      CHECK(o.response == p.response);
      CHECK(o.extra_json == p.extra_json);
    }
  }
  // The split is written only where the file gave it.
  std::string text = slurp(p1.string());
  CHECK(text.find("\"split\":\"calib\"") != std::string::npos);
  CHECK(std::count(text.begin(), text.end(), '\n') == 2);
  // Doubles survive exactly (shortest round-trip formatting).
  Dataset g = read_dataset(data("good.jsonl"));
  g.queries[0].outcomes["small"].cost = 0.1 + 0.2;
  write_dataset(g, p1.string());
  CHECK(read_dataset(p1.string()).queries[0].outcomes.at("small").cost.value() == 0.1 + 0.2);
}

TEST_CASE("writer leaves nothing behind without commit or on failure", "[dataset]") {
  auto p = scratch("uncommitted.jsonl");
  auto dir = p.parent_path();
  auto count_files = [&] {
    size_t n = 0;
    for (auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().rfind("uncommitted", 0) == 0;
    return n;
  };
  Dataset d = read_dataset(data("good.jsonl"));
  {
    DatasetWriter w(p.string());
    w.write(d.queries[0]);
    CHECK(w.written() == 1);
  }
  CHECK_FALSE(fs::exists(p));
  CHECK(count_files() == 0);
  // A bad query mid-way throws; the destination keeps its previous content.
  {
    std::ofstream(p.string()) << "previous\n";
  }
  Query bad = d.queries[0];
  bad.outcomes["small"].quality = std::nan("");
  {
    DatasetWriter w(p.string());
    w.write(d.queries[0]);
    CHECK_THROWS_AS(w.write(bad), Error);
  }
  CHECK(slurp(p.string()) == "previous\n");
  CHECK(count_files() == 1);
  bad = d.queries[0];
  bad.query = "caf\xC3 au lait";  // invalid UTF-8 cannot be written as JSON
  CHECK_THROWS_AS(write_dataset(Dataset{{d.queries[0], bad}, ""}, p.string()), Error);
  CHECK(slurp(p.string()) == "previous\n");
  bad = d.queries[0];
  bad.extra_json = "[1]";  // extras must be an object
  CHECK_THROWS_AS(write_dataset(Dataset{{bad}, ""}, p.string()), Error);
  // Commit replaces it.
  write_dataset(d, p.string());
  CHECK(read_dataset(p.string()).queries.size() == 2);
  CHECK(count_files() == 1);
}

TEST_CASE("split_for_id is deterministic and close to 60/20/20", "[dataset]") {
  Split out;
  CHECK(parse_split("calib", &out));
  CHECK(out == Split::calib);
  CHECK_FALSE(parse_split("dev", &out));
  CHECK(std::string(split_name(Split::test)) == "test");
  CHECK(split_for_id("gsm8k/0007") == split_for_id(std::string("gsm8k/0007")));
  size_t n = 20000, c[3] = {0, 0, 0};
  for (size_t i = 0; i < n; ++i) ++c[static_cast<int>(split_for_id("q" + std::to_string(i)))];
  // Binomial sd for p=0.6 at n=20000 is ~69 (p=0.2: ~57); allow 5 sd.
  CHECK(std::abs(static_cast<double>(c[0]) - 0.6 * n) < 5 * 69.3);
  CHECK(std::abs(static_cast<double>(c[1]) - 0.2 * n) < 5 * 56.6);
  CHECK(std::abs(static_cast<double>(c[2]) - 0.2 * n) < 5 * 56.6);
}

TEST_CASE("outcome_cost prices from tokens when no cost is recorded", "[dataset]") {
  PortfolioConfig cfg = parse_portfolio(kPortfolio);
  Outcome o;
  bool has = true;
  CHECK(outcome_cost(cfg, 1, o, &has) == 0.0);
  CHECK_FALSE(has);
  o.input_tokens = 1000;
  o.output_tokens = 500;
  // large: 1000 * 10 / 1e6 + 500 * 30 / 1e6 = 0.01 + 0.015 = 0.025
  CHECK(outcome_cost(cfg, 1, o, &has) == Approx(0.025));
  CHECK(has);
  // small: 1500 * 0.6 / 1e6 = 0.0009
  CHECK(outcome_cost(cfg, 0, o) == Approx(0.0009));
  o.cost = 0.5;  // a recorded cost wins
  CHECK(outcome_cost(cfg, 1, o) == 0.5);
  Outcome only_out;
  only_out.output_tokens = 100;  // 100 * 30 / 1e6
  CHECK(outcome_cost(cfg, 1, only_out) == Approx(0.003));
}

TEST_CASE("outcome_latency_ms: recorded, else log-normal with the tier's p50 / p99", "[dataset]") {
  PortfolioConfig cfg = parse_portfolio(kPortfolio);
  Outcome o;
  o.latency_ms = 123.0;
  CHECK(outcome_latency_ms(cfg, 0, o, "q") == 123.0);
  Outcome none;
  CHECK(outcome_latency_ms(cfg, 1, none, "q") == 0.0);  // tier without a latency model
  double a = outcome_latency_ms(cfg, 0, none, "q1");
  CHECK(a == outcome_latency_ms(cfg, 0, none, "q1"));  // deterministic
  CHECK(a != outcome_latency_ms(cfg, 0, none, "q2"));
  std::vector<double> v;
  const size_t n = 20000;
  for (size_t i = 0; i < n; ++i) v.push_back(outcome_latency_ms(cfg, 0, none, "id" + std::to_string(i)));
  std::sort(v.begin(), v.end());
  for (double x : {v.front(), v.back()}) CHECK(x > 0.0);
  // Median 450: the empirical median's sd is ~ 1.2533 * sigma * 450 / sqrt(n) with
  // sigma = ln(1400/450)/2.326 = 0.488 -> ~1.94 ms; allow 5 sd ~ 10 ms.
  CHECK(std::abs(v[n / 2] - 450.0) < 10.0);
  // 99th percentile 1400: the p99 order statistic's sd is sqrt(.99 * .01 / n) / phi(2.326) =
  // 0.000704 / 0.02665 = 0.0264 in z units, times sigma 0.488 = 0.0129 in log units, ~18 ms at
  // 1400; allow ~5 sd = 100 ms.
  CHECK(std::abs(v[static_cast<size_t>(0.99 * n)] - 1400.0) < 100.0);
}

TEST_CASE("summarize_tiers", "[dataset]") {
  PortfolioConfig cfg = parse_portfolio(kPortfolio);
  Dataset d = read_dataset(data("good.jsonl"));
  auto s = summarize_tiers(d, &cfg);
  REQUIRE(s.size() == 2);
  CHECK(s[0].tier == "small");
  CHECK(s[0].outcomes == 2);
  CHECK(s[0].mean_quality == Approx(0.5));
  CHECK(s[0].acceptable == 1);  // default threshold 1.0
  // q1 recorded 0.0001; q2 priced from tokens: 52 * 0.6 / 1e6 = 3.12e-5
  CHECK(s[0].priced == 2);
  CHECK(s[0].total_cost == Approx(0.0001 + 3.12e-5));
  CHECK(s[1].tier == "large");
  CHECK(s[1].priced == 1);  // q2's large outcome has neither cost nor tokens
  CHECK(s[1].coverage == 1.0);
}
