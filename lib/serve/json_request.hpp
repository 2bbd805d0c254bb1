// Reading request bodies (internal): client errors with their HTTP status, OpenAI-style error
// bodies, and JSON field readers whose 400s name the field.
#pragma once

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

namespace routenlp::serve_detail {

using json = nlohmann::json;

// A client error with an HTTP status (400, 404, 413, 422, 503, ...).
struct HttpError {
  int status;
  std::string message;
  std::string type;
};

inline HttpError bad_request(std::string m) { return {400, std::move(m), "invalid_request_error"}; }

inline json error_body(int status, const std::string& message, const std::string& type) {
  return {{"error", {{"message", message}, {"type", type}, {"code", status}}}};
}

// JSON field readers that produce 400s naming the field.
inline const json* field(const json& obj, const char* name) {
  auto it = obj.find(name);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}
inline std::string get_string(const json& obj, const char* name, const std::string& where,
                       const std::string* fallback = nullptr) {
  const json* v = field(obj, name);
  if (v == nullptr) {
    if (fallback) return *fallback;
    throw bad_request(where + name + ": required string is missing");
  }
  if (!v->is_string()) throw bad_request(where + name + ": expected a string");
  return v->get<std::string>();
}
inline double get_number(const json& obj, const char* name, const std::string& where, double fallback) {
  const json* v = field(obj, name);
  if (v == nullptr) return fallback;
  if (!v->is_number()) throw bad_request(where + name + ": expected a number");
  double d = v->get<double>();
  if (!std::isfinite(d)) throw bad_request(where + name + ": must be finite");
  return d;
}
inline bool get_bool(const json& obj, const char* name, const std::string& where, bool fallback) {
  const json* v = field(obj, name);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) throw bad_request(where + name + ": expected true or false");
  return v->get<bool>();
}

}  // namespace routenlp::serve_detail
