// Portfolio config: YAML parsing with strict validation (unknown keys are errors naming the line),
// per-task fallbacks and pricing.
#include "routenlp/data/portfolio.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <set>

#include "common/atomic_file.hpp"
#include "common/text_io.hpp"
#include "common/utf8.hpp"
#include "common/yaml_reader.hpp"
#include "routenlp/error.hpp"

namespace routenlp {

namespace {

using detail::YamlReader;

void parse_task_policy(const YamlReader& r, const YAML::Node& node, const std::string& field,
                       TaskPolicy& p) {
  if (node.IsNull()) return;
  r.require_map(node, field);
  r.check_keys(node, field, {"quality_threshold", "alpha", "quality_target"});
  if (auto n = node["quality_threshold"]) {
    double v = r.number(n, field + ".quality_threshold");
    if (v < 0.0 || v > 1.0) r.fail(n, field + ".quality_threshold", "must be in [0,1]");
    p.quality_threshold = v;
  }
  if (auto n = node["alpha"]) {
    double v = r.number(n, field + ".alpha");
    if (!(v > 0.0 && v < 1.0)) r.fail(n, field + ".alpha", "must be in (0,1)");
    p.alpha = v;
  }
  if (auto n = node["quality_target"]) {
    double v = r.number(n, field + ".quality_target");
    if (!(v > 0.0 && v <= 1.0)) r.fail(n, field + ".quality_target", "must be in (0,1]");
    p.quality_target = v;
  }
}

// task, then each enclosing domain ("a/b/c" -> "a/b" -> "a"), then "default".
template <class Get>
auto lookup(const PortfolioConfig& c, const std::string& task, Get get)
    -> decltype(get(TaskPolicy{})) {
  std::string name = task;
  while (true) {
    auto it = c.tasks.find(name);
    if (it != c.tasks.end()) {
      auto v = get(it->second);
      if (v) return v;
    }
    auto slash = name.rfind('/');
    if (slash == std::string::npos) break;
    name.resize(slash);
  }
  auto it = c.tasks.find("default");
  if (it != c.tasks.end()) return get(it->second);
  return std::nullopt;
}

std::string num(double v) { return fmt::format("{}", v); }

}  // namespace

int PortfolioConfig::tier_index(const std::string& name) const {
  for (size_t i = 0; i < tiers.size(); ++i)
    if (tiers[i].name == name) return static_cast<int>(i);
  return -1;
}

int PortfolioConfig::reference_tier_index() const {
  if (reference_tier) return tier_index(*reference_tier);
  return static_cast<int>(tiers.size()) - 1;
}

double PortfolioConfig::quality_threshold(const std::string& task) const {
  auto v = lookup(*this, task, [](const TaskPolicy& p) { return p.quality_threshold; });
  return v ? *v : default_quality_threshold;
}

double PortfolioConfig::alpha_for(const std::string& task) const {
  auto v = lookup(*this, task, [](const TaskPolicy& p) { return p.alpha; });
  return v ? *v : alpha;
}

std::optional<double> PortfolioConfig::quality_target_for(const std::string& task) const {
  auto v = lookup(*this, task, [](const TaskPolicy& p) { return p.quality_target; });
  return v ? v : quality_target;
}

bool PortfolioConfig::acceptable(const std::string& task, double quality) const {
  return quality >= quality_threshold(task);
}

double PortfolioConfig::price(int tier, int64_t input_tokens, int64_t output_tokens) const {
  if (tier < 0 || static_cast<size_t>(tier) >= tiers.size())
    throw Error(Status::invalid_argument,
                fmt::format("price: tier index {} out of range (portfolio has {} tiers)", tier,
                            tiers.size()));
  const TierSpec& t = tiers[static_cast<size_t>(tier)];
  return (static_cast<double>(input_tokens) * t.price_per_1m_input +
          static_cast<double>(output_tokens) * t.price_per_1m_output) /
         1e6;
}

PortfolioConfig parse_portfolio(const std::string& yaml_text, const std::string& source_name) {
  YamlReader r(source_name);
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    throw Error(Status::parse, fmt::format("{}:{}: (yaml): {}", source_name, e.mark.line + 1, e.msg));
  }
  PortfolioConfig c;
  c.source = source_name;
  if (!root.IsDefined() || root.IsNull())
    throw Error(Status::parse, fmt::format("{}: (config): empty portfolio config", source_name));
  r.require_map(root, "(config)");
  r.check_keys(root, "", {"tiers", "tasks", "sla_ms", "alpha", "quality_target", "reference_tier",
                          "quality_threshold", "quality_allocation"});

  YAML::Node tiers = root["tiers"];
  if (!tiers) r.fail(root, "tiers", "missing required key");
  if (!tiers.IsSequence() || tiers.size() == 0)
    r.fail(tiers, "tiers", "expected a non-empty list of tiers");
  std::set<std::string> names;
  for (size_t i = 0; i < tiers.size(); ++i) {
    const YAML::Node t = tiers[i];
    std::string f = fmt::format("tiers[{}]", i);
    r.require_map(t, f);
    r.check_keys(t, f, {"name", "price_per_1m_input", "price_per_1m_output", "latency_ms"});
    TierSpec spec;
    if (!t["name"]) r.fail(t, f + ".name", "missing required key");
    spec.name = r.name(t["name"], f + ".name");
    if (spec.name.empty()) r.fail(t["name"], f + ".name", "must not be empty");
    if (!names.insert(spec.name).second)
      r.fail(t["name"], f + ".name", fmt::format("duplicate tier name '{}'", spec.name));
    for (const char* key : {"price_per_1m_input", "price_per_1m_output"}) {
      if (!t[key]) r.fail(t, f + "." + key, "missing required key");
      double v = r.number(t[key], f + "." + key);
      if (v < 0.0) r.fail(t[key], f + "." + key, "must be >= 0");
      (std::string(key) == "price_per_1m_input" ? spec.price_per_1m_input
                                                : spec.price_per_1m_output) = v;
    }
    if (auto lat = t["latency_ms"]) {
      std::string lf = f + ".latency_ms";
      r.require_map(lat, lf);
      r.check_keys(lat, lf, {"p50", "p99"});
      if (!lat["p50"]) r.fail(lat, lf + ".p50", "missing required key");
      if (!lat["p99"]) r.fail(lat, lf + ".p99", "missing required key");
      LatencyModel m;
      m.p50_ms = r.number(lat["p50"], lf + ".p50");
      m.p99_ms = r.number(lat["p99"], lf + ".p99");
      if (m.p50_ms < 0.0) r.fail(lat["p50"], lf + ".p50", "must be >= 0");
      if (m.p99_ms < m.p50_ms) r.fail(lat["p99"], lf + ".p99", "must be >= p50");
      spec.latency_ms = m;
    }
    c.tiers.push_back(std::move(spec));
  }

  if (auto tasks = root["tasks"]) {
    if (!tasks.IsNull()) {
      r.require_map(tasks, "tasks");
      r.no_duplicates(tasks, "tasks");
      for (auto it = tasks.begin(); it != tasks.end(); ++it) {
        std::string name = r.name(it->first, "tasks");
        if (name.empty()) r.fail(it->first, "tasks", "empty task name");
        TaskPolicy p;
        parse_task_policy(r, it->second, "tasks." + name, p);
        c.tasks[name] = p;
      }
    }
  }
  if (auto n = root["sla_ms"]) {
    c.sla_ms = r.number(n, "sla_ms");
    if (c.sla_ms < 0.0) r.fail(n, "sla_ms", "must be >= 0");
  }
  if (auto n = root["alpha"]) {
    c.alpha = r.number(n, "alpha");
    if (!(c.alpha > 0.0 && c.alpha < 1.0)) r.fail(n, "alpha", "must be in (0,1)");
  }
  if (auto n = root["quality_target"]) {
    double v = r.number(n, "quality_target");
    if (!(v > 0.0 && v <= 1.0)) r.fail(n, "quality_target", "must be in (0,1]");
    c.quality_target = v;
  }
  if (auto n = root["quality_allocation"]) {
    if (!n.IsScalar()) r.fail(n, "quality_allocation", "must be global or per_task");
    std::string v = n.as<std::string>();
    if (v != "global" && v != "per_task")
      r.fail(n, "quality_allocation", "must be global or per_task, got '" + v + "'");
    c.quality_allocation = v;
  }
  if (auto n = root["quality_threshold"]) {
    double v = r.number(n, "quality_threshold");
    if (v < 0.0 || v > 1.0) r.fail(n, "quality_threshold", "must be in [0,1]");
    c.default_quality_threshold = v;
  }
  if (auto n = root["reference_tier"]) {
    std::string name = r.string(n, "reference_tier");
    if (c.tier_index(name) < 0)
      r.fail(n, "reference_tier", fmt::format("'{}' is not one of the tiers", name));
    c.reference_tier = name;
  }
  return c;
}

PortfolioConfig load_portfolio(const std::string& path) {
  return parse_portfolio(detail::read_file(path), path);
}

std::string portfolio_to_yaml(const PortfolioConfig& c) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "tiers" << YAML::Value << YAML::BeginSeq;
  for (const auto& t : c.tiers) {
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << t.name;
    out << YAML::Key << "price_per_1m_input" << YAML::Value << num(t.price_per_1m_input);
    out << YAML::Key << "price_per_1m_output" << YAML::Value << num(t.price_per_1m_output);
    if (t.latency_ms) {
      out << YAML::Key << "latency_ms" << YAML::Value << YAML::Flow << YAML::BeginMap;
      out << YAML::Key << "p50" << YAML::Value << num(t.latency_ms->p50_ms);
      out << YAML::Key << "p99" << YAML::Value << num(t.latency_ms->p99_ms);
      out << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  if (!c.tasks.empty()) {
    out << YAML::Key << "tasks" << YAML::Value << YAML::BeginMap;
    for (const auto& [name, p] : c.tasks) {
      out << YAML::Key << name << YAML::Value << YAML::Flow << YAML::BeginMap;
      if (p.quality_threshold)
        out << YAML::Key << "quality_threshold" << YAML::Value << num(*p.quality_threshold);
      if (p.alpha) out << YAML::Key << "alpha" << YAML::Value << num(*p.alpha);
      if (p.quality_target)
        out << YAML::Key << "quality_target" << YAML::Value << num(*p.quality_target);
      out << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  out << YAML::Key << "sla_ms" << YAML::Value << num(c.sla_ms);
  out << YAML::Key << "alpha" << YAML::Value << num(c.alpha);
  if (c.quality_target) out << YAML::Key << "quality_target" << YAML::Value << num(*c.quality_target);
  if (c.quality_allocation)
    out << YAML::Key << "quality_allocation" << YAML::Value << *c.quality_allocation;
  if (c.default_quality_threshold != 1.0)
    out << YAML::Key << "quality_threshold" << YAML::Value << num(c.default_quality_threshold);
  if (c.reference_tier) out << YAML::Key << "reference_tier" << YAML::Value << *c.reference_tier;
  out << YAML::EndMap;
  if (!out.good())
    throw Error(Status::internal, std::string("portfolio YAML emitter: ") + out.GetLastError());
  return std::string(out.c_str()) + "\n";
}

void save_portfolio(const PortfolioConfig& config, const std::string& path) {
  detail::write_file_atomic(path, portfolio_to_yaml(config));
}

}  // namespace routenlp
