// Duplicate keys in a YAML mapping. yaml-cpp keeps every entry of a mapping that repeats a key
// and node[key] returns the first, so "alpha: 0.05" then "alpha: 2" would pass validation with
// the first value while a reader of the file sees the second. Internal header.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <string>
#include <utility>

namespace routenlp::detail {

// The first key of `map` that repeats an earlier one: (repeated key node, line of the first).
inline std::optional<std::pair<YAML::Node, int>> duplicate_key(const YAML::Node& map) {
  if (!map.IsMap()) return std::nullopt;
  std::map<std::string, int> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it->first.IsScalar()) continue;
    auto [pos, fresh] = seen.emplace(it->first.Scalar(), it->first.Mark().line + 1);
    if (!fresh) return std::make_pair(it->first, pos->second);
  }
  return std::nullopt;
}

}  // namespace routenlp::detail
