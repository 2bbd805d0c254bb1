// Small strict JSON reader/writer for the encoder (safetensors headers, HF config.json).
// Kept std-only so the encoder builds where nlohmann-json is absent (bench/gpu/run.sh), and
// stricter than usual: duplicate object keys and nesting deeper than 64 are errors.
// Internal header.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace routenlp::detail::json {

struct Value {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  bool b = false;
  std::string str;  // string value, or the number's literal text
  std::vector<Value> arr;
  std::vector<std::pair<std::string, Value>> obj;  // in file order

  bool is_object() const { return kind == Kind::object; }
  bool is_array() const { return kind == Kind::array; }
  bool is_string() const { return kind == Kind::string; }
  bool is_number() const { return kind == Kind::number; }
  bool is_bool() const { return kind == Kind::boolean; }
  // Member by key, or nullptr.
  const Value* find(std::string_view key) const;
  // Exact non-negative integer (no fraction/exponent) that fits uint64; false otherwise.
  bool as_uint64(uint64_t& out) const;
  // Exact integer that fits int64 (fraction-free); false otherwise.
  bool as_int64(int64_t& out) const;
  // Any number as double (locale-independent).
  double as_double() const;
};

// Parses one JSON document (RFC 8259, whitespace around it allowed). Throws
// Error(Status::parse, "<origin>: JSON: <what> at byte N").
Value parse(std::string_view text, const std::string& origin);

// JSON string literal with quotes and escapes for `s` (assumed UTF-8).
std::string quote(std::string_view s);
// Shortest round-trip decimal text for a finite double.
std::string number(double v);

// Short name of a kind ("object", "array", ...), for messages.
const char* kind_name(Value::Kind k);

}  // namespace routenlp::detail::json
