// Importers for RouteLLM, RouterBench and LLMRouter recorded outcomes (see importers.hpp and
// docs/dataset-format.md for the conventions).
#include "routenlp/data/importers.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "common/text_io.hpp"
#include "data/csv.hpp"
#include "routenlp/error.hpp"

namespace fs = std::filesystem;

namespace routenlp {

int64_t estimate_tokens(std::string_view text) noexcept {
  return static_cast<int64_t>((text.size() + 3) / 4);
}

namespace {

using json = nlohmann::json;

class Progressor {
 public:
  Progressor(const ProgressCallback& cb, size_t total) : cb_(cb), total_(total) {}
  void step(size_t done, const std::string& detail) {
    if (!cb_) return;
    Progress p;
    p.stage = "import";
    p.done = done;
    p.total = total_;
    p.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (total_ > 0 && done > 0 && done <= total_)
      p.eta_s = p.elapsed_s / static_cast<double>(done) * static_cast<double>(total_ - done);
    p.detail = detail;
    if (!cb_(p)) throw Error(Status::cancelled, "import cancelled");
  }

 private:
  const ProgressCallback& cb_;
  size_t total_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

std::string pad4(size_t i) { return fmt::format("{:04d}", i); }

Query make_query(std::string id, std::string task, std::string text) {
  Query q;
  q.id = std::move(id);
  q.task = std::move(task);
  q.query = std::move(text);
  q.split = split_for_id(q.id);
  q.split_given = false;
  return q;
}

void finish_summary(ImportSummary* s, const Dataset& d) {
  if (!s) return;
  s->rows = d.queries.size();
  s->tasks.clear();
  for (const auto& q : d.queries) ++s->tasks[q.task];
}

std::string where(const detail::CsvReader& r, const std::string& column) {
  return fmt::format("{}:{}: {}", r.source(), r.record_line(), column);
}

// "True"/"False" (also 1/0, 1.0/0.0); empty -> nullopt.
std::optional<double> bool_cell(const std::string& v, const detail::CsvReader& r,
                                const std::string& column) {
  if (v.empty()) return std::nullopt;
  if (v == "True" || v == "true" || v == "TRUE" || v == "1" || v == "1.0") return 1.0;
  if (v == "False" || v == "false" || v == "FALSE" || v == "0" || v == "0.0") return 0.0;
  throw Error(Status::parse, fmt::format("{}: expected True or False, got '{}'", where(r, column), v));
}

std::optional<double> number_cell(const std::string& v, const detail::CsvReader& r,
                                  const std::string& column, double lo, double hi) {
  if (v.empty()) return std::nullopt;
  const char* b = v.c_str();
  char* e = nullptr;
  double d = std::strtod(b, &e);
  if (e == b || *e != '\0' || !std::isfinite(d))
    throw Error(Status::parse, fmt::format("{}: expected a number, got '{}'", where(r, column), v));
  if (d < lo || d > hi)
    throw Error(Status::parse, fmt::format("{}: {} is outside [{}, {}]", where(r, column), d, lo, hi));
  return d;
}

std::vector<std::string> read_header(detail::CsvReader& r) {
  std::vector<std::string> h;
  if (!r.next(h)) throw Error(Status::parse, fmt::format("{}:1: (file): empty CSV file", r.source()));
  return h;
}

void check_width(const detail::CsvReader& r, const std::vector<std::string>& row, size_t width) {
  if (row.size() != width)
    throw Error(Status::parse, fmt::format("{}:{}: (row): {} fields, the header has {}", r.source(),
                                           r.record_line(), row.size(), width));
}

// Calls fn(object, line_number) for every non-blank line of a JSON Lines file; a line that is
// not JSON is an error naming file:line.
template <class Fn>
void for_each_json_line(const std::string& path, Fn&& fn) {
  detail::LineReader lr(path);
  std::string line;
  while (lr.next(line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e999
      throw Error(Status::parse, fmt::format("{}:{}: (json): not JSON: {}", path, lr.line_number(), e.what()));
    }
    fn(j, lr.line_number());
  }
}

// eval_prompt of every line of a RouteLLM *_contaminated_prompts.jsonl.
std::unordered_set<std::string> read_contaminated(const std::string& path) {
  std::unordered_set<std::string> out;
  for_each_json_line(path, [&](const json& j, size_t line_no) {
    if (!j.is_object() || !j.contains("eval_prompt") || !j["eval_prompt"].is_string())
      throw Error(Status::parse,
                  fmt::format("{}:{}: eval_prompt: missing or not a string", path, line_no));
    out.insert(j["eval_prompt"].get<std::string>());
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// RouteLLM

const char* const kRlWeakCol = "mistralai/Mixtral-8x7B-Instruct-v0.1";
const char* const kRlStrongCol = "gpt-4-1106-preview";
const char* const kRlWeak = "mixtral-8x7b";
const char* const kRlStrong = "gpt-4-1106";

struct RouteLlmFile {
  std::string path;
  std::string task;
  std::string id_prefix;
  bool gsm8k;
};

void import_routellm_file(const RouteLlmFile& f, const ImportOptions& opt,
                          const std::unordered_set<std::string>* contaminated, Dataset& d,
                          ImportSummary* s) {
  auto r = detail::CsvReader::open(f.path);
  detail::CsvHeader h(read_header(r), f.path);
  size_t c_prompt = h.at("prompt"), c_weak = h.at(kRlWeakCol), c_strong = h.at(kRlStrongCol);
  size_t c_weak_resp = 0, c_strong_resp = 0;
  if (f.gsm8k) {
    c_weak_resp = h.at(std::string(kRlWeakCol) + "_response");
    c_strong_resp = h.at(std::string(kRlStrongCol) + "_response");
  }
  std::vector<std::string> row;
  size_t index = 0;
  while (r.next(row)) {
    check_width(r, row, h.names().size());
    size_t i = index++;
    const std::string& prompt = row[c_prompt];
    if (contaminated && contaminated->count(prompt)) {
      if (s) ++s->dropped_contaminated;
      continue;
    }
    Query q = make_query(f.id_prefix + pad4(i), f.task, prompt);
    struct Col {
      const char* tier;
      size_t score, resp;
      const char* name;
    };
    for (const Col& c : {Col{kRlWeak, c_weak, c_weak_resp, kRlWeakCol},
                         Col{kRlStrong, c_strong, c_strong_resp, kRlStrongCol}}) {
      auto v = bool_cell(row[c.score], r, c.name);
      if (!v) {
        if (s) ++s->missing_outcomes;
        continue;
      }
      Outcome o;
      o.quality = *v;
      o.input_tokens = estimate_tokens(prompt);
      if (f.gsm8k) {
        const std::string& resp = row[c.resp];
        o.output_tokens = estimate_tokens(resp);
        if (opt.include_responses) o.response = resp;
      } else {
        o.output_tokens = 1;  // MMLU answers are one letter
      }
      q.outcomes[c.tier] = std::move(o);
    }
    d.queries.push_back(std::move(q));
  }
  if (s) s->files.push_back(f.path);
}

}  // namespace

Dataset import_routellm(const std::string& dir, const ImportOptions& opt, ImportSummary* s) {
  if (!opt.subset.empty() && opt.subset != "mmlu" && opt.subset != "gsm8k")
    throw Error(Status::invalid_argument,
                fmt::format("routellm: subset '{}' is not mmlu or gsm8k", opt.subset));
  bool want_mmlu = opt.subset.empty() || opt.subset == "mmlu";
  bool want_gsm = opt.subset.empty() || opt.subset == "gsm8k";
  fs::path root(dir);
  std::vector<RouteLlmFile> files;
  fs::path mmlu_dir = root / "mmlu";
  if (want_mmlu && fs::is_directory(mmlu_dir)) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(mmlu_dir)) {
      std::string n = e.path().filename().string();
      if (e.is_regular_file() && n.size() > 9 && n.compare(0, 5, "mmlu_") == 0 &&
          n.compare(n.size() - 4, 4, ".csv") == 0)
        names.push_back(n);
    }
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      std::string subject = n.substr(5, n.size() - 9);
      files.push_back({(mmlu_dir / n).string(), "mmlu/" + subject, "mmlu/" + subject + "/", false});
    }
    if (names.empty() && opt.subset == "mmlu")
      throw Error(Status::io, fmt::format("{}: no mmlu_<subject>.csv files", mmlu_dir.string()));
  } else if (opt.subset == "mmlu") {
    throw Error(Status::io, fmt::format("{}: no such directory", mmlu_dir.string()));
  }
  fs::path gsm = root / "gsm8k_responses.csv";
  if (want_gsm && fs::is_regular_file(gsm)) {
    files.push_back({gsm.string(), "gsm8k", "gsm8k/", true});
  } else if (opt.subset == "gsm8k") {
    throw Error(Status::io, fmt::format("{}: no such file", gsm.string()));
  }
  if (files.empty())
    throw Error(Status::io, fmt::format("{}: no RouteLLM files (expected mmlu/mmlu_<subject>.csv "
                                        "or gsm8k_responses.csv)",
                                        dir));
  if (s) {
    *s = ImportSummary{};
    s->format = "routellm";
    s->notes.push_back("tiers: mixtral-8x7b <- " + std::string(kRlWeakCol) + ", gpt-4-1106 <- " +
                       kRlStrongCol);
    s->notes.push_back("input_tokens = ceil(prompt bytes / 4); output_tokens = ceil(response "
                       "bytes / 4) for GSM8K, 1 for MMLU (a one-letter answer)");
  }
  std::unordered_set<std::string> cont_mmlu, cont_gsm;
  if (opt.drop_contaminated) {
    bool has_mmlu = std::any_of(files.begin(), files.end(), [](auto& f) { return !f.gsm8k; });
    bool has_gsm = std::any_of(files.begin(), files.end(), [](auto& f) { return f.gsm8k; });
    if (has_mmlu) cont_mmlu = read_contaminated((root / "mmlu_contaminated_prompts.jsonl").string());
    if (has_gsm) cont_gsm = read_contaminated((root / "gsm8k_contaminated_prompts.jsonl").string());
  }
  Dataset d;
  d.source = dir;
  Progressor prog(opt.progress, files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& f = files[i];
    const std::unordered_set<std::string>* cont = nullptr;
    if (opt.drop_contaminated) cont = f.gsm8k ? &cont_gsm : &cont_mmlu;
    import_routellm_file(f, opt, cont, d, s);
    prog.step(i + 1, f.task);
  }
  finish_summary(s, d);
  if (s) s->tiers = {kRlWeak, kRlStrong};
  return d;
}

// ---------------------------------------------------------------------------------------------
// RouterBench

namespace {

std::string routerbench_tier(const std::string& model) {
  static const std::map<std::string, std::string> names = {
      {"WizardLM/WizardLM-13B-V1.2", "wizardlm-13b"},
      {"claude-instant-v1", "claude-instant-v1"},
      {"claude-v1", "claude-v1"},
      {"claude-v2", "claude-v2"},
      {"gpt-3.5-turbo-1106", "gpt-3.5-turbo-1106"},
      {"gpt-4-1106-preview", "gpt-4-1106"},
      {"meta/code-llama-instruct-34b-chat", "code-llama-34b"},
      {"meta/llama-2-70b-chat", "llama-2-70b"},
      {"mistralai/mistral-7b-chat", "mistral-7b"},
      {"mistralai/mixtral-8x7b-chat", "mixtral-8x7b"},
      {"zero-one-ai/Yi-34B-Chat", "yi-34b"},
  };
  auto it = names.find(model);
  if (it != names.end()) return it->second;
  std::string n = model.substr(model.rfind('/') == std::string::npos ? 0 : model.rfind('/') + 1);
  for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return n;
}

// A Python list-of-strings literal joined with `sep`; the raw cell if it is not one.
std::string py_text(const std::string& cell, const char* sep) {
  std::vector<std::string> parts;
  if (!detail::decode_python_str_list(cell, parts)) return cell;
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

}  // namespace

Dataset import_routerbench(const std::string& dir, const ImportOptions& opt, ImportSummary* s) {
  std::vector<std::string> paths;
  if (!fs::is_directory(dir)) throw Error(Status::io, fmt::format("{}: no such directory", dir));
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".csv") paths.push_back(e.path().string());
  std::sort(paths.begin(), paths.end());
  if (paths.empty()) throw Error(Status::io, fmt::format("{}: no RouterBench *.csv files", dir));
  if (s) {
    *s = ImportSummary{};
    s->format = "routerbench";
    s->notes.push_back("cost = <model>|total_cost (USD per call); task = eval_name; id = sample_id");
    s->notes.push_back("empty score cells are missing outcomes; their recorded cost/response is "
                       "kept under the query's \"unscored\" field");
  }
  Dataset d;
  d.source = dir;
  std::unordered_map<std::string, size_t> id_count;
  Progressor prog(opt.progress, paths.size());
  for (size_t fi = 0; fi < paths.size(); ++fi) {
    const std::string& path = paths[fi];
    auto r = detail::CsvReader::open(path);
    detail::CsvHeader h(read_header(r), path);
    size_t c_prompt = h.at("prompt"), c_eval = h.at("eval_name"), c_id = h.at("sample_id");
    struct Model {
      std::string col, tier;
      size_t score, cost, resp;
      bool has_resp;
    };
    std::vector<Model> models;
    for (size_t i = 0; i < h.names().size(); ++i) {
      const std::string& c = h.names()[i];
      if (c.find('|') != std::string::npos || !h.has(c + "|total_cost")) continue;
      Model m{c, routerbench_tier(c), i, h.at(c + "|total_cost"), 0, h.has(c + "|model_response")};
      if (m.has_resp) m.resp = h.at(c + "|model_response");
      models.push_back(m);
    }
    if (models.empty())
      throw Error(Status::parse, fmt::format("{}:1: (header): no <model> / <model>|total_cost "
                                             "column pairs",
                                             path));
    std::vector<std::string> row;
    while (r.next(row)) {
      check_width(r, row, h.names().size());
      std::string sid = row[c_id];
      if (sid.empty()) throw Error(Status::parse, where(r, "sample_id") + ": empty");
      size_t n = ++id_count[sid];
      std::string id = n == 1 ? sid : fmt::format("{}#{}", sid, n);
      const std::string& task = row[c_eval];
      if (task.empty()) throw Error(Status::parse, where(r, "eval_name") + ": empty");
      Query q = make_query(id, task, py_text(row[c_prompt], "\n\n"));
      json unscored = json::object();
      for (const Model& m : models) {
        auto score = number_cell(row[m.score], r, m.col, 0.0, 1.0);
        auto cost = number_cell(row[m.cost], r, m.col + "|total_cost", 0.0, HUGE_VAL);
        std::optional<std::string> resp;
        if (m.has_resp && opt.include_responses && !row[m.resp].empty())
          resp = py_text(row[m.resp], "\n");
        if (!score) {
          if (s) ++s->missing_outcomes;
          json u = json::object();
          if (cost) u["cost"] = *cost;
          if (resp) u["response"] = *resp;
          if (!u.empty()) unscored[m.tier] = u;
          continue;
        }
        Outcome o;
        o.quality = *score;
        o.cost = cost;
        o.response = resp;
        q.outcomes[m.tier] = std::move(o);
      }
      if (!unscored.empty()) {
        json extra = json::object();
        extra["unscored"] = unscored;
        q.extra_json = extra.dump(-1, ' ', false, json::error_handler_t::strict);
      }
      d.queries.push_back(std::move(q));
    }
    if (s) s->files.push_back(path);
    prog.step(fi + 1, fs::path(path).filename().string());
  }
  finish_summary(s, d);
  if (s) {
    // Cheapest first by mean recorded cost per scored call.
    std::vector<std::pair<double, std::string>> by_cost;
    for (const auto& t : d.tier_names()) {
      double sum = 0.0;
      size_t n = 0;
      for (const auto& q : d.queries) {
        auto it = q.outcomes.find(t);
        if (it != q.outcomes.end() && it->second.cost) {
          sum += *it->second.cost;
          ++n;
        }
      }
      by_cost.emplace_back(n ? sum / static_cast<double>(n) : 0.0, t);
    }
    std::sort(by_cost.begin(), by_cost.end());
    for (auto& bc : by_cost) s->tiers.push_back(bc.second);
  }
  return d;
}

// ---------------------------------------------------------------------------------------------
// LLMRouter

Dataset import_llmrouter(const std::string& dir, const ImportOptions& opt, ImportSummary* s) {
  fs::path root(dir);
  std::string train_path = (root / "train.json").string();
  std::string query_path = (root / "default_query_train.jsonl").string();
  std::string llm_path = (root / "default_llm.json").string();
  if (s) {
    *s = ImportSummary{};
    s->format = "llmrouter";
    s->notes.push_back("task = task_name of the query file's line with the same query text (the "
                       "last such line when the text repeats)");
    s->notes.push_back("input_tokens = ceil(query bytes / 4); no output token counts upstream");
  }
  Progressor prog(opt.progress, 3);

  // Query text -> (task_name, metric); later lines win, as a dict built from the file does.
  struct Info {
    std::string task, metric;
  };
  std::unordered_map<std::string, Info> info;
  for_each_json_line(query_path, [&](const json& j, size_t line_no) {
    for (const char* k : {"query", "task_name"})
      if (!j.is_object() || !j.contains(k) || !j[k].is_string())
        throw Error(Status::parse,
                    fmt::format("{}:{}: {}: missing or not a string", query_path, line_no, k));
    Info in{j["task_name"].get<std::string>(), ""};
    if (j.contains("metric") && j["metric"].is_string()) in.metric = j["metric"].get<std::string>();
    info[j["query"].get<std::string>()] = std::move(in);
  });
  prog.step(1, "default_query_train.jsonl");

  json train;
  try {
    train = json::parse(detail::read_file(train_path));
  } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e999
    throw Error(Status::parse, fmt::format("{}: (json): not JSON: {}", train_path, e.what()));
  }
  if (!train.is_array())
    throw Error(Status::parse, fmt::format("{}: (json): expected an array of rows", train_path));
  Dataset d;
  d.source = dir;
  std::map<std::string, std::pair<double, size_t>> quality_by_model;
  for (size_t i = 0; i < train.size(); ++i) {
    const json& row = train[i];
    std::string at = fmt::format("{}: [{}]", train_path, i);
    if (!row.is_object() || !row.contains("question") || !row["question"].is_string())
      throw Error(Status::parse, at + ".question: missing or not a string");
    if (!row.contains("scores") || !row["scores"].is_object())
      throw Error(Status::parse, at + ".scores: missing or not an object");
    const std::string question = row["question"].get<std::string>();
    auto it = info.find(question);
    if (it == info.end())
      throw Error(Status::parse, at + ".question: no line of " + query_path + " has this query");
    Query q = make_query("llmrouter/" + pad4(i), it->second.task, question);
    for (auto sc = row["scores"].begin(); sc != row["scores"].end(); ++sc) {
      if (!sc.value().is_number())
        throw Error(Status::parse, fmt::format("{}.scores.{}: expected a number", at, sc.key()));
      double v = sc.value().get<double>();
      if (!std::isfinite(v) || v < 0.0 || v > 1.0)
        throw Error(Status::parse, fmt::format("{}.scores.{}: {} is outside [0,1]", at, sc.key(), v));
      Outcome o;
      o.quality = v;
      o.input_tokens = estimate_tokens(question);
      q.outcomes[sc.key()] = o;
      auto& acc = quality_by_model[sc.key()];
      acc.first += v;
      ++acc.second;
    }
    json extra = json::object();
    if (row.contains("cluster_id")) extra["cluster_id"] = row["cluster_id"];
    if (!it->second.metric.empty()) extra["metric"] = it->second.metric;
    if (!extra.empty()) q.extra_json = extra.dump(-1, ' ', false);
    d.queries.push_back(std::move(q));
  }
  prog.step(2, "train.json");

  // Prices (USD per 1M tokens) for the models that appear in train.json.
  if (s && fs::is_regular_file(llm_path)) {
    json llm;
    try {
      llm = json::parse(detail::read_file(llm_path));
    } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e999
      throw Error(Status::parse, fmt::format("{}: (json): not JSON: {}", llm_path, e.what()));
    }
    PortfolioConfig pc;
    pc.source = llm_path;
    struct T {
      TierSpec spec;
      double mean_quality;
    };
    std::vector<T> tiers;
    for (const auto& [model, acc] : quality_by_model) {
      if (!llm.contains(model) || !llm[model].is_object())
        throw Error(Status::parse, fmt::format("{}: {}: model of train.json has no price entry",
                                               llm_path, model));
      const json& e = llm[model];
      T t;
      t.spec.name = model;
      for (const char* k : {"input_price", "output_price"}) {
        if (!e.contains(k) || !e[k].is_number() || e[k].get<double>() < 0.0)
          throw Error(Status::parse,
                      fmt::format("{}: {}.{}: missing or not a non-negative number", llm_path, model, k));
      }
      t.spec.price_per_1m_input = e["input_price"].get<double>();
      t.spec.price_per_1m_output = e["output_price"].get<double>();
      t.mean_quality = acc.first / static_cast<double>(acc.second);
      tiers.push_back(t);
    }
    // Cheapest first; equal prices ordered by mean quality (weaker first), then name.
    std::sort(tiers.begin(), tiers.end(), [](const T& a, const T& b) {
      double pa = a.spec.price_per_1m_input + a.spec.price_per_1m_output;
      double pb = b.spec.price_per_1m_input + b.spec.price_per_1m_output;
      if (pa != pb) return pa < pb;
      if (a.mean_quality != b.mean_quality) return a.mean_quality < b.mean_quality;
      return a.spec.name < b.spec.name;
    });
    for (auto& t : tiers) {
      pc.tiers.push_back(t.spec);
      s->tiers.push_back(t.spec.name);
    }
    s->portfolio = pc;
    s->files = {query_path, train_path, llm_path};
  } else if (s) {
    s->files = {query_path, train_path};
  }
  prog.step(3, "default_llm.json");
  finish_summary(s, d);
  return d;
}

Dataset import_dataset(const std::string& format, const std::string& dir,
                       const ImportOptions& options, ImportSummary* summary) {
  if (format == "routellm") return import_routellm(dir, options, summary);
  if (format == "routerbench") return import_routerbench(dir, options, summary);
  if (format == "llmrouter") return import_llmrouter(dir, options, summary);
  throw Error(Status::invalid_argument,
              fmt::format("unknown import format '{}' (routellm, routerbench, llmrouter)", format));
}

}  // namespace routenlp
