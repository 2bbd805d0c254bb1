#include "encoder/json_lite.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <locale>
#include <sstream>

#include "common/utf8.hpp"
#include "routenlp/error.hpp"

namespace routenlp::detail::json {

namespace {

constexpr int kMaxDepth = 64;

class Parser {
 public:
  Parser(std::string_view t, const std::string& origin) : t_(t), origin_(origin) {}

  Value document() {
    ws();
    Value v = value(0);
    ws();
    if (i_ != t_.size()) fail("unexpected trailing content");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(Status::parse, origin_ + ": JSON: " + what + " at byte " + std::to_string(i_));
  }
  void ws() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r'))
      ++i_;
  }
  bool eat(char c) {
    if (i_ < t_.size() && t_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void literal(const char* word) {
    size_t n = std::strlen(word);
    if (t_.substr(i_, n) != word) fail("invalid literal");
    i_ += n;
  }

  Value value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 64");
    if (i_ >= t_.size()) fail("unexpected end of input");
    Value v;
    char c = t_[i_];
    if (c == '{') {
      v.kind = Value::Kind::object;
      ++i_;
      ws();
      if (eat('}')) return v;
      for (;;) {
        ws();
        if (i_ >= t_.size() || t_[i_] != '"') fail("expected a string key");
        std::string key = string();
        for (const auto& kv : v.obj)
          if (kv.first == key) fail("duplicate key \"" + key + "\"");
        ws();
        if (!eat(':')) fail("expected ':'");
        ws();
        Value member = value(depth + 1);
        v.obj.emplace_back(std::move(key), std::move(member));
        ws();
        if (eat(',')) continue;
        if (eat('}')) break;
        fail("expected ',' or '}'");
      }
    } else if (c == '[') {
      v.kind = Value::Kind::array;
      ++i_;
      ws();
      if (eat(']')) return v;
      for (;;) {
        ws();
        v.arr.push_back(value(depth + 1));
        ws();
        if (eat(',')) continue;
        if (eat(']')) break;
        fail("expected ',' or ']'");
      }
    } else if (c == '"') {
      v.kind = Value::Kind::string;
      v.str = string();
    } else if (c == 't') {
      literal("true");
      v.kind = Value::Kind::boolean;
      v.b = true;
    } else if (c == 'f') {
      literal("false");
      v.kind = Value::Kind::boolean;
    } else if (c == 'n') {
      literal("null");
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = Value::Kind::number;
      v.str = number_text();
    } else {
      fail(std::string("unexpected character '") + (c >= 32 && c < 127 ? std::string(1, c) : "?") +
           "'");
    }
    return v;
  }

  static bool digit(char c) { return c >= '0' && c <= '9'; }

  std::string number_text() {
    size_t start = i_;
    eat('-');
    if (i_ >= t_.size()) fail("truncated number");
    if (t_[i_] == '0') {
      ++i_;
    } else if (digit(t_[i_])) {
      while (i_ < t_.size() && digit(t_[i_])) ++i_;
    } else {
      fail("invalid number");
    }
    if (eat('.')) {
      if (i_ >= t_.size() || !digit(t_[i_])) fail("invalid number fraction");
      while (i_ < t_.size() && digit(t_[i_])) ++i_;
    }
    if (i_ < t_.size() && (t_[i_] == 'e' || t_[i_] == 'E')) {
      ++i_;
      if (i_ < t_.size() && (t_[i_] == '+' || t_[i_] == '-')) ++i_;
      if (i_ >= t_.size() || !digit(t_[i_])) fail("invalid number exponent");
      while (i_ < t_.size() && digit(t_[i_])) ++i_;
    }
    return std::string(t_.substr(start, i_ - start));
  }

  unsigned hex4() {
    if (i_ + 4 > t_.size()) fail("truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = t_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
      else fail("invalid \\u escape");
    }
    return v;
  }

  std::string string() {
    ++i_;  // opening quote
    std::string out;
    size_t run = i_;
    for (;;) {
      if (i_ >= t_.size()) fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(t_[i_]);
      if (c == '"') {
        out.append(t_.substr(run, i_ - run));
        ++i_;
        break;
      }
      if (c < 0x20) fail("control character in string");
      if (c != '\\') {
        ++i_;
        continue;
      }
      out.append(t_.substr(run, i_ - run));
      ++i_;
      if (i_ >= t_.size()) fail("unterminated escape");
      char e = t_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (!(eat('\\') && eat('u'))) fail("unpaired surrogate");
            unsigned lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("invalid low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("unpaired surrogate");
          }
          append_utf8(out, static_cast<char32_t>(cp));
          break;
        }
        default: fail("invalid escape");
      }
      run = i_;
    }
    size_t bad = find_invalid_utf8(out);
    if (bad != std::string_view::npos) fail("invalid UTF-8 in string");
    return out;
  }

  std::string_view t_;
  const std::string& origin_;
  size_t i_ = 0;
};

}  // namespace

const Value* Value::find(std::string_view key) const {
  if (kind != Kind::object) return nullptr;
  for (const auto& kv : obj)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

bool Value::as_uint64(uint64_t& out) const {
  if (kind != Kind::number || str.empty() || str[0] == '-') return false;
  if (str.find_first_of(".eE") != std::string::npos) return false;
  auto r = std::from_chars(str.data(), str.data() + str.size(), out);
  return r.ec == std::errc() && r.ptr == str.data() + str.size();
}

bool Value::as_int64(int64_t& out) const {
  if (kind != Kind::number || str.find_first_of(".eE") != std::string::npos) return false;
  auto r = std::from_chars(str.data(), str.data() + str.size(), out);
  return r.ec == std::errc() && r.ptr == str.data() + str.size();
}

double Value::as_double() const {
  std::istringstream in(str);
  in.imbue(std::locale::classic());
  double d = 0;
  in >> d;
  if (in.fail()) {
    // Out of range: istream sets failbit; fall back to the signed infinity / zero.
    return str.find_first_of("eE") != std::string::npos && str.find("e-") == std::string::npos &&
                   str.find("E-") == std::string::npos
               ? (str[0] == '-' ? -HUGE_VAL : HUGE_VAL)
               : 0.0;
  }
  return d;
}

Value parse(std::string_view text, const std::string& origin) {
  return Parser(text, origin).document();
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          static const char* hex = "0123456789abcdef";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

std::string number(double v) {
  if (!std::isfinite(v)) throw Error(Status::invalid_argument, "JSON cannot represent a non-finite number");
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<long long>(v)) + ".0";
  }
  // Shortest representation that round-trips (max_digits10 fallback loop).
  for (int prec = 6; prec <= 17; ++prec) {
    std::ostringstream o;
    o.imbue(std::locale::classic());
    o.precision(prec);
    o << v;
    std::istringstream back(o.str());
    back.imbue(std::locale::classic());
    double r = 0;
    back >> r;
    if (r == v) return o.str();
  }
  std::ostringstream o;
  o.imbue(std::locale::classic());
  o.precision(17);
  o << v;
  return o.str();
}

const char* kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::null: return "null";
    case Value::Kind::boolean: return "boolean";
    case Value::Kind::number: return "number";
    case Value::Kind::string: return "string";
    case Value::Kind::array: return "array";
    case Value::Kind::object: return "object";
  }
  return "?";
}

}  // namespace routenlp::detail::json
