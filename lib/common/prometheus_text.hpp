// Prometheus text-format helpers shared by the engine's and the online recalibrator's metrics.
// Internal header.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

namespace routenlp::detail {

// A label value with backslash, double quote and newline escaped (text exposition format).
inline std::string prometheus_label(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

// A sample value: NaN, +Inf and -Inf spelled as the format wants, else 9 significant digits.
inline std::string prometheus_number(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", x);
  return buf;
}

}  // namespace routenlp::detail
