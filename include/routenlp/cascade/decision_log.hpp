// The JSON Lines decision log: sinks that receive one line per request, and the line format
// written and read back (docs/cascade.md "Decision log").
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "routenlp/cascade/result.hpp"
#include "routenlp/export.h"

namespace routenlp {

// Receives one JSON line per request. Implementations must be thread-safe.
class RN_API DecisionSink {
 public:
  virtual ~DecisionSink();
  virtual void write(const std::string& json_line) = 0;
};

// Appends lines to a file; each line is written whole under a lock and flushed.
class RN_API JsonlFileSink : public DecisionSink {
 public:
  explicit JsonlFileSink(const std::string& path, bool append = true);
  ~JsonlFileSink() override;
  void write(const std::string& json_line) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Keeps lines in memory (tests, embedding).
class RN_API MemoryDecisionSink : public DecisionSink {
 public:
  void write(const std::string& json_line) override;
  std::vector<std::string> lines() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

// One decision-log line (docs/cascade.md) and back.
RN_API std::string decision_to_json(const CascadeResult& result);
RN_API CascadeResult decision_from_json(const std::string& line,
                                        const std::string& where = "<line>");
// All records of a log; a torn (unterminated, unparsable) last line is skipped. Errors name
// file:line.
RN_API std::vector<CascadeResult> read_decision_log(const std::string& path);

}  // namespace routenlp
