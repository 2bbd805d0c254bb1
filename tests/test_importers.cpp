// Importers: CSV / Python-literal parsing, and the bundled upstream files (data/upstream)
// reproduce the published counts and accuracies; the committed data/routing/*.jsonl equal a
// fresh import byte for byte.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "data/csv.hpp"
#include "routenlp/data/dataset.hpp"
#include "routenlp/error.hpp"
#include "routenlp/data/importers.hpp"
#include "routenlp/data/portfolio.hpp"

using namespace routenlp;
namespace fs = std::filesystem;

namespace {

std::string repo(const std::string& rel) { return std::string(RN_REPO_DATA_DIR) + "/" + rel; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path scratch_dir(const std::string& name) {
  fs::path dir = fs::path(RN_BINARY_DIR) / "test_importers_scratch" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  detail::CsvReader r(text, "t.csv");
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  while (r.next(row)) rows.push_back(row);
  return rows;
}

struct TierAcc {
  size_t n = 0;
  double quality = 0.0;
  double mean() const { return n ? quality / static_cast<double>(n) : 0.0; }
};

std::map<std::string, TierAcc> accuracy_by_tier(const Dataset& d) {
  std::map<std::string, TierAcc> m;
  for (const auto& q : d.queries)
    for (const auto& [t, o] : q.outcomes) {
      ++m[t].n;
      m[t].quality += o.quality;
    }
  return m;
}

// Two-tier shares: weak correct, strong correct, either correct, and strong-needed
// (weak wrong, strong right) = the "strong calls" an oracle router makes.
struct TwoTier {
  double weak, strong, oracle, strong_needed;
};
TwoTier two_tier(const Dataset& d) {
  double w = 0, s = 0, o = 0, sn = 0;
  for (const auto& q : d.queries) {
    bool qw = q.outcomes.at("mixtral-8x7b").quality == 1.0;
    bool qs = q.outcomes.at("gpt-4-1106").quality == 1.0;
    w += qw;
    s += qs;
    o += qw || qs;
    sn += !qw && qs;
  }
  double n = static_cast<double>(d.queries.size());
  return {w / n, s / n, o / n, sn / n};
}

const double kTol = 0.0005;  // for figures published with 3 decimals

}  // namespace

TEST_CASE("CSV reader: quotes, commas, newlines, doubled quotes, CRLF, BOM", "[importers]") {
  auto rows = parse_csv("\xEF\xBB\xBFh1,h2,h3\r\n\"a, b\",\"line1\nline2\",\"say \"\"hi\"\"\"\r\n,,\nlast,row,x");
  REQUIRE(rows.size() == 4);
  CHECK(rows[0] == std::vector<std::string>{"h1", "h2", "h3"});
  CHECK(rows[1] == std::vector<std::string>{"a, b", "line1\nline2", "say \"hi\""});
  CHECK(rows[2] == std::vector<std::string>{"", "", ""});
  CHECK(rows[3] == std::vector<std::string>{"last", "row", "x"});
  // Record lines account for newlines inside quotes.
  detail::CsvReader r("a\n\"x\ny\",z\nb,c\n", "t.csv");
  std::vector<std::string> row;
  REQUIRE(r.next(row));
  CHECK(r.record_line() == 1);
  REQUIRE(r.next(row));
  CHECK(r.record_line() == 2);
  REQUIRE(r.next(row));
  CHECK(r.record_line() == 4);
  CHECK(row == std::vector<std::string>{"b", "c"});
  CHECK_FALSE(r.next(row));
  // Empty quoted field and a trailing newline.
  CHECK(parse_csv("\"\",x\n") == std::vector<std::vector<std::string>>{{"", "x"}});
}

TEST_CASE("CSV reader errors name file:line", "[importers]") {
  auto err = [](const std::string& text) -> std::string {
    try {
      parse_csv(text);
    } catch (const Error& e) {
      CHECK(e.code() == Status::parse);
      return e.what();
    }
    return "no error";
  };
  CHECK(err("a,b\nc,\"never closed\n\n") == "t.csv:2: column 2: unterminated quoted field");
  CHECK(err("a,b\nc,d\"e\n").find("t.csv:2: column 2: quote inside an unquoted field") == 0);
  CHECK(err("a\n\"x\"y\n").find("t.csv:2: column 1: text after a closing quote") == 0);
  CHECK(err("a\nb\xFF\n").find("t.csv:2: column 1: invalid UTF-8") == 0);
}

TEST_CASE("Python string-list literals (RouterBench cells)", "[importers]") {
  std::vector<std::string> v;
  REQUIRE(detail::decode_python_str_list(R"(['D\n'])", v));
  CHECK(v == std::vector<std::string>{"D\n"});
  REQUIRE(detail::decode_python_str_list(R"(["it's", 'say "x"', 'a\\b', '\x41\u00e9'])", v));
  CHECK(v == std::vector<std::string>{"it's", "say \"x\"", "a\\b", "A\xC3\xA9"});
  REQUIRE(detail::decode_python_str_list("[]", v));
  CHECK(v.empty());
  CHECK_FALSE(detail::decode_python_str_list("plain text", v));
  CHECK_FALSE(detail::decode_python_str_list("['unterminated]", v));
  CHECK_FALSE(detail::decode_python_str_list("['a'] trailing", v));
}

TEST_CASE("token estimate is ceil(bytes / 4)", "[importers]") {
  CHECK(estimate_tokens("") == 0);
  CHECK(estimate_tokens("abcd") == 1);
  CHECK(estimate_tokens("abcde") == 2);
  CHECK(estimate_tokens("\xC3\xA9\xC3\xA9\xC3\xA9") == 2);  // 6 bytes
}

TEST_CASE("RouteLLM MMLU reproduces the published numbers", "[importers][data]") {
  ImportOptions opt;
  opt.subset = "mmlu";
  ImportSummary s;
  Dataset d = import_routellm(repo("upstream/routellm"), opt, &s);
  CHECK(d.queries.size() == 12831);
  CHECK(s.rows == 12831);
  CHECK(s.tasks.size() == 47);
  CHECK(s.files.size() == 47);
  CHECK(s.missing_outcomes == 0);
  CHECK(s.tiers == std::vector<std::string>{"mixtral-8x7b", "gpt-4-1106"});
  TwoTier t = two_tier(d);
  CHECK(std::abs(t.weak - 0.687) <= kTol);
  CHECK(std::abs(t.strong - 0.815) <= kTol);
  CHECK(std::abs(t.oracle - 0.866) <= kTol);
  CHECK(std::abs(t.strong_needed - 0.179) <= kTol);
  const Query& q = d.queries.front();
  CHECK(q.id == "mmlu/astronomy/0000");
  CHECK(q.task == "mmlu/astronomy");
  CHECK(q.query.rfind("What is true for a type-Ia (\"type one-a\") supernova?\nA.", 0) == 0);
  const Outcome& o = q.outcomes.at("gpt-4-1106");
  CHECK(o.input_tokens.value() == estimate_tokens(q.query));
  CHECK(o.output_tokens.value() == 1);
  CHECK_FALSE(o.cost.has_value());
  // Contaminated prompts: 4 of the 5 listed eval prompts occur in these 47 subjects.
  opt.drop_contaminated = true;
  Dataset dc = import_routellm(repo("upstream/routellm"), opt, &s);
  CHECK(s.dropped_contaminated == 4);
  CHECK(dc.queries.size() == 12827);
}

TEST_CASE("RouteLLM GSM8K reproduces the published numbers", "[importers][data]") {
  ImportOptions opt;
  opt.subset = "gsm8k";
  ImportSummary s;
  Dataset d = import_routellm(repo("upstream/routellm"), opt, &s);
  CHECK(d.queries.size() == 1319);
  TwoTier t = two_tier(d);
  CHECK(std::abs(t.weak - 0.638) <= kTol);
  CHECK(std::abs(t.strong - 0.857) <= kTol);
  CHECK(std::abs(t.oracle - 0.929) <= kTol);
  CHECK(std::abs(t.strong_needed - 0.290) <= kTol);
  const Query& q = d.queries.front();
  CHECK(q.id == "gsm8k/0000");
  CHECK(q.task == "gsm8k");
  const Outcome& o = q.outcomes.at("mixtral-8x7b");
  REQUIRE(o.response);
  CHECK(o.response->find("#### 18") != std::string::npos);
  CHECK(o.output_tokens.value() == estimate_tokens(*o.response));
  // Priced by the bundled config: GPT-4 costs more per call than Mixtral.
  PortfolioConfig cfg = load_portfolio(repo("configs/routellm.yaml"));
  auto tiers = summarize_tiers(d, &cfg);
  REQUIRE(tiers.size() == 2);
  CHECK(tiers[0].tier == "mixtral-8x7b");
  CHECK(tiers[0].priced == 1319);
  CHECK(tiers[1].mean_cost > 10 * tiers[0].mean_cost);
  opt.drop_contaminated = true;
  Dataset dc = import_routellm(repo("upstream/routellm"), opt, &s);
  CHECK(s.dropped_contaminated == 12);
  CHECK(dc.queries.size() == 1307);
}

TEST_CASE("RouterBench reproduces the published numbers", "[importers][data]") {
  ImportSummary s;
  Dataset d = import_routerbench(repo("upstream/routerbench"), {}, &s);
  CHECK(d.queries.size() == 2225);
  CHECK(s.tasks == std::map<std::string, size_t>{{"arc-challenge", 1039}, {"mbpp", 299}, {"winogrande", 887}});
  auto tiers = d.tier_names();
  CHECK(tiers.size() == 11);
  // Cheapest first by mean recorded cost; matches the bundled config's order.
  REQUIRE(s.tiers.size() == 11);
  CHECK(s.tiers.front() == "mistral-7b");
  CHECK(s.tiers.back() == "gpt-4-1106");
  PortfolioConfig cfg = load_portfolio(repo("configs/routerbench.yaml"));
  for (size_t i = 0; i < s.tiers.size(); ++i) CHECK(cfg.tiers[i].name == s.tiers[i]);
  // Empty score cells are missing outcomes, not zeros: 8-12 per model.
  std::map<std::string, size_t> missing;
  std::map<std::string, std::pair<double, size_t>> cost;  // every recorded call, scored or not
  for (const auto& q : d.queries) {
    for (const auto& [t, o] : q.outcomes) {
      REQUIRE(o.cost);
      cost[t].first += *o.cost;
      ++cost[t].second;
    }
    if (!q.extra_json.empty()) {
      auto extra = nlohmann::json::parse(q.extra_json);
      for (auto it = extra["unscored"].begin(); it != extra["unscored"].end(); ++it) {
        ++missing[it.key()];
        CHECK(q.outcomes.count(it.key()) == 0);
        cost[it.key()].first += it.value()["cost"].get<double>();
        ++cost[it.key()].second;
      }
    }
  }
  size_t total_missing = 0;
  for (const auto& t : tiers) {
    INFO(t);
    CHECK(missing[t] >= 8);
    CHECK(missing[t] <= 12);
    total_missing += missing[t];
    CHECK(cost[t].second == 2225);
  }
  CHECK(total_missing == s.missing_outcomes);
  auto acc = accuracy_by_tier(d);
  auto per_call = [&](const std::string& t) { return cost[t].first / static_cast<double>(cost[t].second); };
  CHECK(std::abs(acc["gpt-4-1106"].mean() - 0.880) <= kTol);
  CHECK(std::abs(per_call("gpt-4-1106") - 5.04e-3) <= 0.005e-3);
  CHECK(std::abs(acc["mixtral-8x7b"].mean() - 0.739) <= kTol);
  CHECK(std::abs(per_call("mixtral-8x7b") - 2.50e-4) <= 0.005e-4);
  CHECK(std::abs(acc["mistral-7b"].mean() - 0.581) <= kTol);
  CHECK(std::abs(per_call("mistral-7b") - 8.19e-5) <= 0.005e-5);
  // Prompts are decoded from their Python-list form.
  const Query& q = d.queries.front();
  CHECK(q.id == "arc-challenge.test.1108");
  CHECK(q.query.rfind("George wants to warm his hands quickly", 0) == 0);
  // Duplicate sample ids get a suffix, so ids stay unique.
  std::set<std::string> ids;
  for (const auto& x : d.queries) ids.insert(x.id);
  CHECK(ids.size() == d.queries.size());
}

TEST_CASE("LLMRouter reproduces the published numbers", "[importers][data]") {
  ImportSummary s;
  Dataset d = import_llmrouter(repo("upstream/llmrouter"), {}, &s);
  CHECK(d.queries.size() == 5608);
  const std::map<std::string, size_t> tasks = {
      {"math", 504},          {"natural_qa", 500}, {"trivia_qa", 500},     {"openbook_qa", 500},
      {"arc_challenge", 500}, {"gsm8k", 500},      {"commonsense_qa", 500}, {"mbpp", 498},
      {"mmlu", 494},          {"gpqa", 448},       {"agentverse-mgsm", 200}, {"human_eval", 164},
      {"agentverse-logicgrid", 150}, {"commongen", 150}};
  CHECK(s.tasks == tasks);
  auto acc = accuracy_by_tier(d);
  CHECK(acc.size() == 9);
  for (const auto& [t, a] : acc) CHECK(a.n == 5608);
  CHECK(std::abs(acc["llama-3.1-nemotron-51b-instruct"].mean() - 0.621) <= kTol);
  CHECK(std::abs(acc["llama-3.1-8b-instruct"].mean() - 0.561) <= kTol);
  CHECK(std::abs(acc["qwen2.5-7b-instruct"].mean() - 0.520) <= kTol);
  CHECK(std::abs(acc["codegemma-7b"].mean() - 0.303) <= kTol);
  // Prices from default_llm.json, cheapest first.
  REQUIRE(s.portfolio);
  REQUIRE(s.portfolio->tiers.size() == 9);
  CHECK(s.portfolio->tiers.front().name == "gemma-2-9b-it");
  CHECK(s.portfolio->tiers.front().price_per_1m_input == 0.10);
  int i = s.portfolio->tier_index("llama-3.1-nemotron-51b-instruct");
  REQUIRE(i >= 0);
  CHECK(s.portfolio->tiers[static_cast<size_t>(i)].price_per_1m_output == 0.90);
  // The bundled config carries the same prices.
  PortfolioConfig cfg = load_portfolio(repo("configs/llmrouter.yaml"));
  for (const auto& t : s.portfolio->tiers) {
    int j = cfg.tier_index(t.name);
    INFO(t.name);
    REQUIRE(j >= 0);
    CHECK(cfg.tiers[static_cast<size_t>(j)].price_per_1m_input == t.price_per_1m_input);
    CHECK(cfg.tiers[static_cast<size_t>(j)].price_per_1m_output == t.price_per_1m_output);
  }
}

TEST_CASE("importer input errors name the file and line", "[importers]") {
  fs::path dir = scratch_dir("routellm_bad");
  fs::create_directories(dir / "mmlu");
  std::ofstream(dir / "mmlu" / "mmlu_x.csv")
      << "prompt,mistralai/Mixtral-8x7B-Instruct-v0.1,gpt-4-1106-preview\n"
         "\"q1\nstill q1\",True,False\nq2,Maybe,True\n";
  try {
    import_routellm(dir.string());
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("mmlu_x.csv:4: mistralai/Mixtral-8x7B-Instruct-v0.1: expected "
                                      "True or False, got 'Maybe'") != std::string::npos);
  }
  std::ofstream(dir / "mmlu" / "mmlu_x.csv") << "prompt,gpt-4-1106-preview\nq,True\n";
  CHECK_THROWS_WITH(import_routellm(dir.string()),
                    Catch::Contains("mistralai/Mixtral-8x7B-Instruct-v0.1: missing column"));
  CHECK_THROWS_AS(import_routellm(scratch_dir("empty").string()), Error);
  CHECK_THROWS_AS(import_dataset("nope", dir.string()), Error);
  // --drop-contaminated needs the contamination list.
  std::ofstream(dir / "mmlu" / "mmlu_x.csv")
      << "prompt,mistralai/Mixtral-8x7B-Instruct-v0.1,gpt-4-1106-preview\nq,True,True\n";
  ImportOptions opt;
  opt.drop_contaminated = true;
  CHECK_THROWS_WITH(import_routellm(dir.string(), opt), Catch::Contains("mmlu_contaminated_prompts.jsonl"));
  // A number out of double's range is a parse error naming file:line, not a stray exception.
  std::ofstream(dir / "mmlu_contaminated_prompts.jsonl") << "{\"eval_prompt\": \"a\"}\n{\"x\": 1e999}\n";
  try {
    import_routellm(dir.string(), opt);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == Status::parse);
    CHECK(std::string(e.what()).find("mmlu_contaminated_prompts.jsonl:2") != std::string::npos);
  }
}

TEST_CASE("committed data/routing files equal a fresh import", "[importers][data]") {
  struct Bundle {
    const char* file;
    const char* format;
    const char* input;
    const char* subset;
    bool responses;
    const char* config;
  };
  // Keep in sync with data/README.md (the regeneration commands).
  const Bundle bundles[] = {
      {"routing/routellm_mmlu.jsonl", "routellm", "upstream/routellm", "mmlu", true, "configs/routellm.yaml"},
      {"routing/routellm_gsm8k.jsonl", "routellm", "upstream/routellm", "gsm8k", true, "configs/routellm.yaml"},
      {"routing/routerbench.jsonl", "routerbench", "upstream/routerbench", "", false, "configs/routerbench.yaml"},
      {"routing/llmrouter.jsonl", "llmrouter", "upstream/llmrouter", "", true, "configs/llmrouter.yaml"},
  };
  fs::path dir = scratch_dir("fresh");
  for (const Bundle& b : bundles) {
    INFO(b.file);
    ImportOptions opt;
    opt.subset = b.subset;
    opt.include_responses = b.responses;
    Dataset d = import_dataset(b.format, repo(b.input), opt);
    fs::path out = dir / fs::path(b.file).filename();
    write_dataset(d, out.string());
    std::string fresh = slurp(out.string());
    std::string committed = slurp(repo(b.file));
    CHECK(fresh.size() == committed.size());
    CHECK((fresh == committed));
    // The committed file validates against its config.
    PortfolioConfig cfg = load_portfolio(repo(b.config));
    ReadOptions ro;
    ro.portfolio = &cfg;
    Dataset back = read_dataset(repo(b.file), ro);
    CHECK(back.queries.size() == d.queries.size());
  }
}
