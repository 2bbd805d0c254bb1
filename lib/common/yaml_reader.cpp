#include "common/yaml_reader.hpp"

#include <cmath>
#include <filesystem>
#include <map>

#include "common/utf8.hpp"
#include "routenlp/error.hpp"

namespace routenlp::detail {

std::optional<std::pair<YAML::Node, int>> duplicate_key(const YAML::Node& map) {
  if (!map.IsMap()) return std::nullopt;
  std::map<std::string, int> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it->first.IsScalar()) continue;
    auto [pos, fresh] = seen.emplace(it->first.Scalar(), it->first.Mark().line + 1);
    if (!fresh) return std::make_pair(it->first, pos->second);
  }
  return std::nullopt;
}

void YamlReader::fail(const YAML::Node& node, const std::string& field,
                      const std::string& why) const {
  std::string where = source_;
  if (node.IsDefined() && node.Mark().line >= 0) where += ":" + std::to_string(node.Mark().line + 1);
  throw Error(Status::parse, where + ": " + field + ": " + why);
}

void YamlReader::require_map(const YAML::Node& node, const std::string& field) const {
  if (!node.IsMap()) fail(node, field, "expected a mapping");
}

void YamlReader::no_duplicates(const YAML::Node& map, const std::string& field) const {
  if (auto dup = duplicate_key(map))
    fail(dup->first, field.empty() ? dup->first.Scalar() : field + "." + dup->first.Scalar(),
         "duplicate key (first given on line " + std::to_string(dup->second) + ")");
}

void YamlReader::check_keys(const YAML::Node& map, const std::string& field,
                            std::initializer_list<const char*> allowed) const {
  require_map(map, field);
  no_duplicates(map, field);
  for (auto it = map.begin(); it != map.end(); ++it) {
    std::string key = it->first.IsScalar() ? it->first.Scalar() : std::string("<non-scalar>");
    bool ok = false;
    for (const char* a : allowed) ok = ok || key == a;
    if (!ok) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      fail(it->first, field.empty() ? key : field + "." + key, "unknown key (allowed: " + list + ")");
    }
  }
}

double YamlReader::number(const YAML::Node& node, const std::string& field) const {
  if (!node.IsScalar()) fail(node, field, "expected a number");
  double v = 0.0;
  try {
    v = node.as<double>();
  } catch (const YAML::Exception&) {
    fail(node, field, "expected a number, got '" + node.Scalar() + "'");
  }
  if (!std::isfinite(v)) fail(node, field, "must be a finite number");
  return v;
}

long YamlReader::integer(const YAML::Node& node, const std::string& field, long lo, long hi) const {
  double v = number(node, field);
  if (v != std::floor(v) || v < static_cast<double>(lo) || v > static_cast<double>(hi))
    fail(node, field, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<long>(v);
}

bool YamlReader::boolean(const YAML::Node& node, const std::string& field) const {
  if (!node.IsScalar()) fail(node, field, "expected true or false");
  try {
    return node.as<bool>();
  } catch (const YAML::Exception&) {
    fail(node, field, "expected true or false");
  }
}

std::string YamlReader::string(const YAML::Node& node, const std::string& field) const {
  if (!node.IsScalar()) fail(node, field, "expected a string");
  return node.Scalar();
}

std::string YamlReader::name(const YAML::Node& node, const std::string& field) const {
  std::string s = string(node, field);
  size_t bad = find_invalid_utf8(s);
  if (bad != std::string::npos) fail(node, field, "invalid UTF-8 at byte " + std::to_string(bad));
  return s;
}

std::string YamlReader::path(const YAML::Node& node, const std::string& field) const {
  namespace fs = std::filesystem;
  fs::path p = string(node, field);
  if (p.is_relative()) p = fs::path(source_).parent_path() / p;
  return p.lexically_normal().string();
}

}  // namespace routenlp::detail
