// The one strict YAML reader behind the portfolio config and the serve config (internal). Every
// error is Error(parse) "<file>:<line>: <field>: <why>"; mappings reject unknown and duplicate
// keys; numbers must be finite; names must be valid UTF-8.
#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <utility>

namespace routenlp::detail {

// The first key of `map` that repeats an earlier one: (repeated key node, line of the first).
// yaml-cpp keeps every entry of a mapping that repeats a key and node[key] returns the first, so
// "alpha: 0.05" then "alpha: 2" would pass validation with the first value while a reader of the
// file sees the second.
std::optional<std::pair<YAML::Node, int>> duplicate_key(const YAML::Node& map);

class YamlReader {
 public:
  explicit YamlReader(std::string source) : source_(std::move(source)) {}
  const std::string& source() const { return source_; }

  [[noreturn]] void fail(const YAML::Node& node, const std::string& field,
                         const std::string& why) const;
  void require_map(const YAML::Node& node, const std::string& field) const;
  void no_duplicates(const YAML::Node& map, const std::string& field) const;
  // A mapping whose keys are all in `allowed`, none repeated.
  void check_keys(const YAML::Node& map, const std::string& field,
                  std::initializer_list<const char*> allowed) const;

  double number(const YAML::Node& node, const std::string& field) const;  // finite
  long integer(const YAML::Node& node, const std::string& field, long lo, long hi) const;
  bool boolean(const YAML::Node& node, const std::string& field) const;
  std::string string(const YAML::Node& node, const std::string& field) const;
  // A tier or task name: valid UTF-8, since names end up in JSON (reports, decision logs) and
  // in YAML the library writes, neither of which can carry other bytes.
  std::string name(const YAML::Node& node, const std::string& field) const;
  // A path in the file, made relative to the file's directory.
  std::string path(const YAML::Node& node, const std::string& field) const;

 private:
  std::string source_;
};

}  // namespace routenlp::detail
