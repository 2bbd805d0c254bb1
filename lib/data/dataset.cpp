// Routing dataset: streaming JSONL reader with strict validation, atomic writer, deterministic
// split, outcome pricing and latency models.
#include "routenlp/data/dataset.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "common/atomic_file.hpp"
#include "common/text_io.hpp"
#include "common/utf8.hpp"
#include "data/hash.hpp"
#include "routenlp/error.hpp"

namespace routenlp {

using ojson = nlohmann::ordered_json;

const char* split_name(Split s) noexcept {
  switch (s) {
    case Split::train: return "train";
    case Split::calib: return "calib";
    case Split::test: return "test";
  }
  return "train";
}

bool parse_split(const std::string& name, Split* out) noexcept {
  Split s;
  if (name == "train") s = Split::train;
  else if (name == "calib") s = Split::calib;
  else if (name == "test") s = Split::test;
  else return false;
  if (out) *out = s;
  return true;
}

Split split_for_id(const std::string& id) noexcept {
  uint64_t h = detail::fnv1a64("routenlp-split-v1:");
  h = detail::fnv1a64(id, h);
  uint64_t b = (h ^ (h >> 32)) % 100;
  if (b < 60) return Split::train;
  if (b < 80) return Split::calib;
  return Split::test;
}

std::vector<std::string> Dataset::tier_names() const {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& q : queries)
    for (const auto& kv : q.outcomes)
      if (seen.insert(kv.first).second) out.push_back(kv.first);
  return out;
}

std::vector<std::string> Dataset::task_names() const {
  std::set<std::string> s;
  for (const auto& q : queries) s.insert(q.task);
  return {s.begin(), s.end()};
}

std::vector<size_t> Dataset::indices(Split s) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < queries.size(); ++i)
    if (queries[i].split == s) out.push_back(i);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading

namespace {

const char* type_name(const ojson& v) {
  switch (v.type()) {
    case ojson::value_t::null: return "null";
    case ojson::value_t::object: return "object";
    case ojson::value_t::array: return "array";
    case ojson::value_t::string: return "string";
    case ojson::value_t::boolean: return "boolean";
    case ojson::value_t::number_integer:
    case ojson::value_t::number_unsigned:
    case ojson::value_t::number_float: return "number";
    default: return "value";
  }
}

class LineParser {
 public:
  LineParser(const std::string& path, size_t line, const ReadOptions& opt)
      : where_(fmt::format("{}:{}", path, line)), opt_(opt) {}

  [[noreturn]] void fail(const std::string& field, const std::string& why) const {
    throw Error(Status::parse, fmt::format("{}: {}: {}", where_, field, why));
  }

  Query parse(const std::string& line) {
    size_t bad = detail::find_invalid_utf8(line);
    if (bad != std::string::npos)
      fail(fmt::format("byte {}", bad), "invalid UTF-8 sequence");
    ojson j;
    try {
      j = ojson::parse(line);
    } catch (const ojson::exception& e) {  // parse_error, or out_of_range on number overflow
      std::string what = e.what();
      auto pos = what.find("] ");
      if (pos != std::string::npos) what = what.substr(pos + 2);
      std::string hint;
      if (line.find("NaN") != std::string::npos || line.find("Infinity") != std::string::npos)
        hint = " (NaN/Infinity are not JSON numbers; qualities must be finite)";
      else if (e.id == 406)
        hint = " (numbers must be finite)";
      fail("(json)", fmt::format("not JSON: {}{}", what, hint));
    }
    if (!j.is_object()) fail("(json)", fmt::format("expected a JSON object, got {}", type_name(j)));

    Query q;
    q.id = required_string(j, "id");
    if (q.id.empty()) fail("id", "must not be empty");
    q.task = required_string(j, "task");
    if (q.task.empty()) fail("task", "must not be empty");
    q.query = required_string(j, "query");
    if (opt_.max_query_bytes > 0 && q.query.size() > opt_.max_query_bytes)
      fail("query", fmt::format("{} bytes, longer than max_query_bytes {}", q.query.size(),
                                opt_.max_query_bytes));
    auto sp = j.find("split");
    if (sp != j.end() && !sp->is_null()) {
      if (!sp->is_string()) fail("split", fmt::format("expected a string, got {}", type_name(*sp)));
      if (!parse_split(sp->get<std::string>(), &q.split))
        fail("split", fmt::format("'{}' is not train, calib or test", sp->get<std::string>()));
      q.split_given = true;
    } else {
      q.split = split_for_id(q.id);
    }
    auto oc = j.find("outcomes");
    if (oc == j.end()) fail("outcomes", "missing required field");
    if (!oc->is_object()) fail("outcomes", fmt::format("expected an object, got {}", type_name(*oc)));
    for (auto it = oc->begin(); it != oc->end(); ++it) {
      const std::string& tier = it.key();
      std::string f = "outcomes." + tier;
      if (tier.empty()) fail("outcomes", "empty tier name");
      if (opt_.portfolio && opt_.portfolio->tier_index(tier) < 0)
        fail(f, fmt::format("tier '{}' is not in the portfolio{}", tier,
                            opt_.portfolio->source.empty() ? "" : " " + opt_.portfolio->source));
      q.outcomes[tier] = parse_outcome(it.value(), f);
    }
    ojson extra = ojson::object();
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& k = it.key();
      if (k == "id" || k == "task" || k == "query" || k == "split" || k == "outcomes") continue;
      extra[k] = it.value();
    }
    if (!extra.empty()) q.extra_json = extra.dump(-1, ' ', false);
    return q;
  }

 private:
  std::string required_string(const ojson& j, const char* key) const {
    auto it = j.find(key);
    if (it == j.end()) fail(key, "missing required field");
    if (!it->is_string()) fail(key, fmt::format("expected a string, got {}", type_name(*it)));
    return it->get<std::string>();
  }

  double number(const ojson& v, const std::string& f) const {
    if (!v.is_number()) fail(f, fmt::format("expected a number, got {}", type_name(v)));
    double d = v.get<double>();
    if (!std::isfinite(d)) fail(f, "not a finite number");
    return d;
  }

  Outcome parse_outcome(const ojson& o, const std::string& f) const {
    if (!o.is_object()) fail(f, fmt::format("expected an object, got {}", type_name(o)));
    Outcome out;
    auto qi = o.find("quality");
    if (qi == o.end()) fail(f + ".quality", "missing required field");
    out.quality = number(*qi, f + ".quality");
    if (out.quality < 0.0 || out.quality > 1.0)
      fail(f + ".quality", fmt::format("{} is outside [0,1]", out.quality));
    ojson extra = ojson::object();
    for (auto it = o.begin(); it != o.end(); ++it) {
      const std::string& k = it.key();
      const ojson& v = it.value();
      std::string fk = f + "." + k;
      if (k == "quality") continue;
      if (k == "cost" || k == "latency_ms" || k == "confidence") {
        if (v.is_null()) continue;
        double d = number(v, fk);
        if (k == "confidence") {
          if (d < 0.0 || d > 1.0) fail(fk, fmt::format("{} is outside [0,1]", d));
          out.confidence = d;
        } else {
          if (d < 0.0) fail(fk, fmt::format("{} is negative", d));
          (k == "cost" ? out.cost : out.latency_ms) = d;
        }
      } else if (k == "input_tokens" || k == "output_tokens") {
        if (v.is_null()) continue;
        int64_t n = 0;
        if (v.is_number_unsigned()) {
          uint64_t u = v.get<uint64_t>();
          if (u > static_cast<uint64_t>(INT64_MAX)) fail(fk, "too large");
          n = static_cast<int64_t>(u);
        } else if (v.is_number_integer()) {
          n = v.get<int64_t>();
        } else if (v.is_number_float()) {
          double d = v.get<double>();
          if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9e15)
            fail(fk, fmt::format("expected an integer, got {}", d));
          n = static_cast<int64_t>(d);
        } else {
          fail(fk, fmt::format("expected an integer, got {}", type_name(v)));
        }
        if (n < 0) fail(fk, fmt::format("{} is negative", n));
        (k == "input_tokens" ? out.input_tokens : out.output_tokens) = n;
      } else if (k == "response") {
        if (v.is_null()) continue;
        if (!v.is_string()) fail(fk, fmt::format("expected a string, got {}", type_name(v)));
        out.response = v.get<std::string>();
      } else {
        extra[k] = v;
      }
    }
    if (!extra.empty()) out.extra_json = extra.dump(-1, ' ', false);
    return out;
  }

  std::string where_;
  const ReadOptions& opt_;
};

bool blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

}  // namespace

struct DatasetReader::Impl {
  Impl(const std::string& p, ReadOptions o) : path(p), opt(o), lines(p) {}
  std::string path;
  ReadOptions opt;
  detail::LineReader lines;
  ReadReport report;
  size_t last_line = 0;
  bool done = false;
};

DatasetReader::DatasetReader(const std::string& path, ReadOptions options)
    : impl_(std::make_unique<Impl>(path, options)) {}
DatasetReader::~DatasetReader() = default;

const ReadReport& DatasetReader::report() const { return impl_->report; }
size_t DatasetReader::line_number() const { return impl_->last_line; }

bool DatasetReader::next(Query& out) {
  Impl& m = *impl_;
  if (m.done) return false;
  std::string line;
  while (m.lines.next(line)) {
    size_t ln = m.lines.line_number();
    if (ln == 1 && line.size() >= 3 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    if (blank(line)) continue;
    ++m.report.lines;
    try {
      out = LineParser(m.path, ln, m.opt).parse(line);
    } catch (const Error& e) {
      if (!m.opt.skip_bad_lines || e.code() != Status::parse) throw;
      ++m.report.skipped;
      m.report.skip_messages.push_back(e.what());
      continue;
    }
    ++m.report.queries;
    m.last_line = ln;
    return true;
  }
  m.done = true;
  if (m.report.lines == 0)
    throw Error(Status::parse, fmt::format("{}:1: (file): empty file: no queries", m.path));
  if (m.report.queries == 0)
    throw Error(Status::parse, fmt::format("{}: (file): no valid queries ({} bad lines skipped)",
                                           m.path, m.report.skipped));
  return false;
}

Dataset read_dataset(const std::string& path, const ReadOptions& options, ReadReport* report) {
  Dataset d;
  d.source = path;
  DatasetReader r(path, options);
  std::unordered_map<std::string, size_t> first_line;
  ReadReport extra;
  Query q;
  while (true) {
    bool got = false;
    try {
      got = r.next(q);
    } catch (const Error& e) {
      // All lines bad except duplicates? Report what read_dataset skipped as well.
      if (report) {
        *report = r.report();
        report->skipped += extra.skipped;
      }
      throw;
    }
    if (!got) break;
    auto ins = first_line.emplace(q.id, r.line_number());
    if (!ins.second) {
      std::string msg = fmt::format("{}:{}: id: duplicate id '{}' (first on line {})", path,
                                    r.line_number(), q.id, ins.first->second);
      if (!options.skip_bad_lines) throw Error(Status::parse, msg);
      ++extra.skipped;
      extra.skip_messages.push_back(msg);
      continue;
    }
    d.queries.push_back(std::move(q));
  }
  if (report) {
    *report = r.report();
    report->skipped += extra.skipped;
    report->queries -= extra.skipped;
    for (auto& m : extra.skip_messages) report->skip_messages.push_back(std::move(m));
  }
  return d;
}

// ---------------------------------------------------------------------------------------------
// Writing

namespace {

void merge_extra(ojson& j, const std::string& extra, const char* what) {
  if (extra.empty()) return;
  ojson e;
  try {
    e = ojson::parse(extra);
  } catch (const ojson::exception& ex) {  // parse_error, or out_of_range for numbers like 1e999
    throw Error(Status::invalid_argument, fmt::format("{}: extra_json is not JSON: {}", what, ex.what()));
  }
  if (!e.is_object())
    throw Error(Status::invalid_argument, fmt::format("{}: extra_json must be a JSON object", what));
  for (auto it = e.begin(); it != e.end(); ++it)
    if (!j.contains(it.key())) j[it.key()] = it.value();
}

void check_number(double v, double lo, double hi, const std::string& id, const std::string& f) {
  if (!std::isfinite(v) || v < lo || v > hi)
    throw Error(Status::invalid_argument,
                fmt::format("query '{}': {}: {} is not a finite number in [{}, {}]", id, f, v, lo,
                            hi));
}

std::string to_line(const Query& q) {
  if (q.id.empty()) throw Error(Status::invalid_argument, "write: query with an empty id");
  ojson j = ojson::object();
  j["id"] = q.id;
  j["task"] = q.task;
  j["query"] = q.query;
  if (q.split_given) j["split"] = split_name(q.split);
  ojson oc = ojson::object();
  const double inf = HUGE_VAL;
  for (const auto& [tier, o] : q.outcomes) {
    std::string f = "outcomes." + tier;
    ojson t = ojson::object();
    check_number(o.quality, 0.0, 1.0, q.id, f + ".quality");
    t["quality"] = o.quality;
    if (o.cost) check_number(*o.cost, 0.0, inf, q.id, f + ".cost"), t["cost"] = *o.cost;
    if (o.latency_ms)
      check_number(*o.latency_ms, 0.0, inf, q.id, f + ".latency_ms"), t["latency_ms"] = *o.latency_ms;
    if (o.confidence)
      check_number(*o.confidence, 0.0, 1.0, q.id, f + ".confidence"), t["confidence"] = *o.confidence;
    if (o.input_tokens) t["input_tokens"] = *o.input_tokens;
    if (o.output_tokens) t["output_tokens"] = *o.output_tokens;
    if (o.response) t["response"] = *o.response;
    merge_extra(t, o.extra_json, ("query '" + q.id + "' " + f).c_str());
    oc[tier] = std::move(t);
  }
  j["outcomes"] = std::move(oc);
  merge_extra(j, q.extra_json, ("query '" + q.id + "'").c_str());
  try {
    return j.dump(-1, ' ', false, ojson::error_handler_t::strict);
  } catch (const ojson::type_error& e) {
    throw Error(Status::invalid_argument,
                fmt::format("query '{}': a string is not valid UTF-8 ({})", q.id, e.what()));
  }
}

}  // namespace

struct DatasetWriter::Impl {
  explicit Impl(const std::string& p) : file(p) {}
  detail::AtomicFileWriter file;
  size_t written = 0;
};

DatasetWriter::DatasetWriter(const std::string& path) : impl_(std::make_unique<Impl>(path)) {}
DatasetWriter::~DatasetWriter() = default;

void DatasetWriter::write(const Query& q) {
  std::string line = to_line(q);
  impl_->file.stream() << line << '\n';
  if (!impl_->file.stream())
    throw Error(Status::io, fmt::format("{}: write failed", impl_->file.path()));
  ++impl_->written;
}

void DatasetWriter::commit() { impl_->file.commit(); }
size_t DatasetWriter::written() const { return impl_->written; }

void write_dataset(const Dataset& data, const std::string& path) {
  DatasetWriter w(path);
  for (const auto& q : data.queries) w.write(q);
  w.commit();
}

// ---------------------------------------------------------------------------------------------
// Pricing and latency

double outcome_cost(const PortfolioConfig& config, int tier, const Outcome& o, bool* has_cost) {
  if (o.cost) {
    if (has_cost) *has_cost = true;
    return *o.cost;
  }
  if ((o.input_tokens || o.output_tokens) && tier >= 0 &&
      static_cast<size_t>(tier) < config.tiers.size()) {
    if (has_cost) *has_cost = true;
    return config.price(tier, o.input_tokens.value_or(0), o.output_tokens.value_or(0));
  }
  if (has_cost) *has_cost = false;
  return 0.0;
}

double outcome_latency_ms(const PortfolioConfig& config, int tier, const Outcome& o,
                          const std::string& query_id) {
  if (o.latency_ms) return *o.latency_ms;
  if (tier < 0 || static_cast<size_t>(tier) >= config.tiers.size()) return 0.0;
  const TierSpec& t = config.tiers[static_cast<size_t>(tier)];
  if (!t.latency_ms || t.latency_ms->p50_ms <= 0.0) return 0.0;
  return detail::lognormal_latency(t.latency_ms->p50_ms, t.latency_ms->p99_ms, query_id, t.name);
}

std::vector<TierSummary> summarize_tiers(const Dataset& data, const PortfolioConfig* config) {
  std::vector<std::string> order;
  if (config)
    for (const auto& t : config->tiers) order.push_back(t.name);
  for (const auto& n : data.tier_names())
    if (std::find(order.begin(), order.end(), n) == order.end()) order.push_back(n);
  std::vector<TierSummary> out;
  for (const auto& name : order) {
    TierSummary s;
    s.tier = name;
    int idx = config ? config->tier_index(name) : -1;
    double qsum = 0.0;
    for (const auto& q : data.queries) {
      auto it = q.outcomes.find(name);
      if (it == q.outcomes.end()) continue;
      ++s.outcomes;
      qsum += it->second.quality;
      if (config && config->acceptable(q.task, it->second.quality)) ++s.acceptable;
      bool has = false;
      double c = config ? outcome_cost(*config, idx, it->second, &has)
                        : (it->second.cost ? (has = true, *it->second.cost) : 0.0);
      if (has) {
        ++s.priced;
        s.total_cost += c;
      }
    }
    if (s.outcomes) s.mean_quality = qsum / static_cast<double>(s.outcomes);
    if (s.priced) s.mean_cost = s.total_cost / static_cast<double>(s.priced);
    if (!data.queries.empty())
      s.coverage = static_cast<double>(s.outcomes) / static_cast<double>(data.queries.size());
    out.push_back(s);
  }
  return out;
}

}  // namespace routenlp
