// Integer fields read from JSON (internal, header-only; every reader of a user file that fills an
// integer uses these). nlohmann's get<int>() / value("k", 0) on a float such as 1e300 casts a
// double out of the int range, which is undefined behaviour (UBSan: float-cast-overflow), and on
// an integer outside the target type's range silently wraps (4294967296 -> 0). These accept only
// a JSON integer within [lo, hi] (by default the whole range of T) and otherwise throw
// Error(parse) "<where>: <field>: expected an integer, got 1e+300" or
// "<where>: <field>: expected an integer in [lo, hi], got 4294967296" — the "<where>: <field>:
// <why>" form of the other parse errors. An integral-valued float (2.0) is not an integer here.
#pragma once

#include <nlohmann/json.hpp>

#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "routenlp/error.hpp"

namespace routenlp::detail {

namespace json_int_impl {

inline std::string prefix(const std::string& where, const std::string& field) {
  return (where.empty() ? std::string() : where + ": ") + field + ": ";
}

// What a rejected value was, kept short (an object or a long string is named by its type).
template <class Json>
std::string shown(const Json& v) {
  if (v.is_number() || v.is_boolean() || v.is_null()) return v.dump();
  return std::string("a") + (v.is_array() || v.is_object() ? "n " : " ") + v.type_name();
}

template <class T>
bool in_range(int64_t x, T lo, T hi) {
  if constexpr (std::is_signed_v<T>) {
    return x >= static_cast<int64_t>(lo) && x <= static_cast<int64_t>(hi);
  } else {
    return x >= 0 && static_cast<uint64_t>(x) >= static_cast<uint64_t>(lo) &&
           static_cast<uint64_t>(x) <= static_cast<uint64_t>(hi);
  }
}

template <class T>
bool in_range(uint64_t x, T lo, T hi) {
  if constexpr (std::is_signed_v<T>) {
    return hi >= 0 && x <= static_cast<uint64_t>(hi) && (lo < 0 || x >= static_cast<uint64_t>(lo));
  } else {
    return x >= static_cast<uint64_t>(lo) && x <= static_cast<uint64_t>(hi);
  }
}

}  // namespace json_int_impl

// v as a T: a JSON integer in [lo, hi], else Error(parse) naming where and field.
template <class T, class Json>
T json_int(const Json& v, const std::string& where, const std::string& field,
           T lo = std::numeric_limits<T>::min(), T hi = std::numeric_limits<T>::max()) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool> && sizeof(T) <= 8,
                "json_int reads integer types up to 64 bits");
  using namespace json_int_impl;
  if (!v.is_number_integer())
    throw Error(Status::parse, prefix(where, field) + "expected an integer, got " + shown(v));
  // nlohmann keeps a non-negative integer it parsed as number_unsigned, a negative one as
  // number_integer; both get<> calls below are exact.
  const bool ok = v.is_number_unsigned() ? in_range(v.template get<uint64_t>(), lo, hi)
                                         : in_range(v.template get<int64_t>(), lo, hi);
  if (!ok)
    throw Error(Status::parse, prefix(where, field) + "expected an integer in [" +
                                   std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                                   v.dump());
  return v.is_number_unsigned() ? static_cast<T>(v.template get<uint64_t>())
                                : static_cast<T>(v.template get<int64_t>());
}

// obj[key] read by json_int, or fallback when obj has no such key (the strict counterpart of
// obj.value(key, fallback)); obj must be an object. The field is named `key`.
template <class T, class Json>
T json_int_or(const Json& obj, const char* key, T fallback, const std::string& where,
              T lo = std::numeric_limits<T>::min(), T hi = std::numeric_limits<T>::max()) {
  if (!obj.is_object())
    throw Error(Status::parse, json_int_impl::prefix(where, key) + "expected inside an object, got " +
                                   json_int_impl::shown(obj));
  auto it = obj.find(key);
  if (it == obj.end()) return fallback;
  return json_int<T>(*it, where, key, lo, hi);
}

// v as a std::vector<T>: an array of JSON integers in [lo, hi]; an element is named field[i].
template <class T, class Json>
std::vector<T> json_ints(const Json& v, const std::string& where, const std::string& field,
                         T lo = std::numeric_limits<T>::min(), T hi = std::numeric_limits<T>::max()) {
  if (!v.is_array())
    throw Error(Status::parse, json_int_impl::prefix(where, field) + "expected an array of integers, got " +
                                   json_int_impl::shown(v));
  std::vector<T> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out.push_back(json_int<T>(v[i], where, field + "[" + std::to_string(i) + "]", lo, hi));
  return out;
}

}  // namespace routenlp::detail
