// RFC 4180 CSV reader: quoted fields may hold commas, newlines and doubled quotes; CRLF or LF
// line ends; a UTF-8 BOM is skipped. Errors name file:line. Internal header.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace routenlp::detail {

class CsvReader {
 public:
  // Parses `text` (the whole file); `source` names it in errors.
  CsvReader(std::string text, std::string source);
  // Reads `path` (throws Error(io)).
  static CsvReader open(const std::string& path);

  // Next record; false at end. Throws Error(parse) on an unterminated quote, a stray quote
  // inside an unquoted field or text after a closing quote.
  bool next(std::vector<std::string>& fields);
  // 1-based line on which the last record started.
  size_t record_line() const { return record_line_; }
  const std::string& source() const { return source_; }

 private:
  std::string text_;
  std::string source_;
  size_t pos_ = 0;
  size_t line_ = 1;
  size_t record_line_ = 0;
};

// Index of each column in a header row; throws Error(parse) naming the file and the missing
// column.
class CsvHeader {
 public:
  CsvHeader(std::vector<std::string> names, std::string source);
  size_t at(const std::string& name) const;  // throws when missing
  bool has(const std::string& name) const;
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> names_;
  std::string source_;
};

// Decodes a Python list-of-strings literal such as "['a\\n', \"b\"]" (RouterBench stores prompts
// and responses this way). Returns false if `s` is not such a literal.
bool decode_python_str_list(const std::string& s, std::vector<std::string>& out);

}  // namespace routenlp::detail
