// CSV reader and Python string-list literal decoder (see csv.hpp).
#include "data/csv.hpp"

#include <fmt/format.h>

#include "common/text_io.hpp"
#include "common/utf8.hpp"
#include "routenlp/error.hpp"

namespace routenlp::detail {

CsvReader::CsvReader(std::string text, std::string source)
    : text_(std::move(text)), source_(std::move(source)) {
  if (text_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;
}

CsvReader CsvReader::open(const std::string& path) { return CsvReader(read_file(path), path); }

bool CsvReader::next(std::vector<std::string>& fields) {
  fields.clear();
  const size_t n = text_.size();
  if (pos_ >= n) return false;
  record_line_ = line_;
  std::string field;
  size_t field_line = line_;
  auto finish_field = [&] {
    size_t bad = find_invalid_utf8(field);
    if (bad != std::string::npos)
      throw Error(Status::parse, fmt::format("{}:{}: column {}: invalid UTF-8 at byte {} of the field",
                                             source_, field_line, fields.size() + 1, bad));
    fields.push_back(std::move(field));
    field.clear();
    field_line = line_;
  };
  while (true) {
    if (pos_ < n && text_[pos_] == '"') {
      // Quoted field.
      size_t open_line = line_;
      ++pos_;
      while (true) {
        if (pos_ >= n)
          throw Error(Status::parse, fmt::format("{}:{}: column {}: unterminated quoted field",
                                                 source_, open_line, fields.size() + 1));
        char c = text_[pos_++];
        if (c == '"') {
          if (pos_ < n && text_[pos_] == '"') {
            field += '"';
            ++pos_;
          } else {
            break;
          }
        } else {
          if (c == '\n') ++line_;
          field += c;
        }
      }
      if (pos_ < n && text_[pos_] != ',' && text_[pos_] != '\n' && text_[pos_] != '\r')
        throw Error(Status::parse, fmt::format("{}:{}: column {}: text after a closing quote",
                                               source_, line_, fields.size() + 1));
    } else {
      while (pos_ < n && text_[pos_] != ',' && text_[pos_] != '\n' && text_[pos_] != '\r') {
        if (text_[pos_] == '"')
          throw Error(Status::parse,
                      fmt::format("{}:{}: column {}: quote inside an unquoted field", source_,
                                  line_, fields.size() + 1));
        field += text_[pos_++];
      }
    }
    if (pos_ >= n) {
      finish_field();
      return true;
    }
    char c = text_[pos_];
    if (c == ',') {
      ++pos_;
      finish_field();
      continue;
    }
    // End of record: "\r\n", "\n" or a lone "\r".
    finish_field();
    ++pos_;
    if (c == '\r' && pos_ < n && text_[pos_] == '\n') ++pos_;
    ++line_;
    return true;
  }
}

CsvHeader::CsvHeader(std::vector<std::string> names, std::string source)
    : names_(std::move(names)), source_(std::move(source)) {}

bool CsvHeader::has(const std::string& name) const {
  for (const auto& n : names_)
    if (n == name) return true;
  return false;
}

size_t CsvHeader::at(const std::string& name) const {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return i;
  throw Error(Status::parse, fmt::format("{}:1: {}: missing column", source_, name));
}

namespace {

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Python string literal starting at s[i] (a quote). Advances i past the closing quote.
bool decode_py_string(const std::string& s, size_t& i, std::string& out) {
  char q = s[i++];
  out.clear();
  while (i < s.size()) {
    char c = s[i++];
    if (c == q) return true;
    if (c != '\\') {
      out += c;
      continue;
    }
    if (i >= s.size()) return false;
    char e = s[i++];
    switch (e) {
      case '\n': break;  // line continuation
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x':
      case 'u':
      case 'U': {
        int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        if (i + static_cast<size_t>(digits) > s.size()) return false;
        uint32_t cp = 0;
        for (int k = 0; k < digits; ++k) {
          int h = hexval(s[i++]);
          if (h < 0) return false;
          cp = cp * 16 + static_cast<uint32_t>(h);
        }
        if (cp > 0x10FFFF) return false;
        append_utf8(out, static_cast<char32_t>(cp));
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          uint32_t cp = static_cast<uint32_t>(e - '0');
          for (int k = 0; k < 2 && i < s.size() && s[i] >= '0' && s[i] <= '7'; ++k)
            cp = cp * 8 + static_cast<uint32_t>(s[i++] - '0');
          append_utf8(out, static_cast<char32_t>(cp));
        } else {
          out += '\\';  // Python keeps unknown escapes verbatim
          out += e;
        }
    }
  }
  return false;
}

}  // namespace

bool decode_python_str_list(const std::string& s, std::vector<std::string>& out) {
  out.clear();
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) ++i;
  };
  skip_ws();
  if (i >= s.size() || s[i] != '[') return false;
  ++i;
  skip_ws();
  if (i < s.size() && s[i] == ']') {
    ++i;
    skip_ws();
    return i == s.size();
  }
  while (true) {
    skip_ws();
    if (i >= s.size() || (s[i] != '\'' && s[i] != '"')) return false;
    std::string item;
    if (!decode_py_string(s, i, item)) return false;
    out.push_back(std::move(item));
    skip_ws();
    if (i >= s.size()) return false;
    if (s[i] == ',') {
      ++i;
      skip_ws();
      if (i < s.size() && s[i] == ']') break;  // trailing comma
      continue;
    }
    if (s[i] == ']') break;
    return false;
  }
  ++i;
  skip_ws();
  return i == s.size();
}

}  // namespace routenlp::detail
