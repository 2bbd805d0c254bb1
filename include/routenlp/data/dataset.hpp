// Routing dataset (JSON Lines): one query per line with each tier's recorded outcome.
// Format: docs/dataset-format.md. Readers stream; writers write atomically.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "routenlp/export.h"
#include "routenlp/data/portfolio.hpp"

namespace routenlp {

// What one tier produced for one query.
struct Outcome {
  double quality = 0.0;                    // task metric in [0,1]
  std::optional<double> cost;              // USD; absent -> priced from tokens
  std::optional<double> latency_ms;        // absent -> the portfolio's latency model
  std::optional<double> confidence;        // in [0,1]; uncertainty u = 1 - confidence
  std::optional<int64_t> input_tokens;
  std::optional<int64_t> output_tokens;
  std::optional<std::string> response;
  std::string extra_json;                  // unknown outcome fields, kept as a JSON object ("" = none)
};

enum class Split { train, calib, test };
RN_API const char* split_name(Split s) noexcept;

struct Query {
  std::string id;
  std::string task;
  std::string query;
  Split split = Split::train;
  bool split_given = false;                // false: split derived from id
  std::map<std::string, Outcome> outcomes; // tier name -> outcome (a tier may be missing)
  std::string extra_json;                  // unknown top-level fields, kept as a JSON object
                                           // ("" = none)
};

// Deterministic split of an id when the file gives none: FNV-1a 64 of the id, seed
// "routenlp-split-v1"; 60% train, 20% calib, 20% test. Documented in docs/dataset-format.md.
// Exactly: h = FNV-1a-64("routenlp-split-v1:" + id); b = (h ^ (h >> 32)) % 100;
// b < 60 -> train, b < 80 -> calib, else test.
RN_API Split split_for_id(const std::string& id) noexcept;
// Parses "train" / "calib" / "test"; false for anything else.
RN_API bool parse_split(const std::string& name, Split* out) noexcept;

struct ReadOptions {
  // Validate tier names against this portfolio (a tier not in it is an error). Optional.
  const PortfolioConfig* portfolio = nullptr;
  // Skip bad lines instead of failing; every skip is counted and reported.
  bool skip_bad_lines = false;
  // A query text longer than this is an error (bytes). 0 = no limit.
  size_t max_query_bytes = 1 << 20;
};

struct ReadReport {
  size_t lines = 0;                       // non-empty lines seen
  size_t queries = 0;                     // queries returned
  size_t skipped = 0;                     // bad lines skipped (skip_bad_lines only)
  std::vector<std::string> skip_messages; // one per skipped line (file:line: field: why)
};

struct Dataset {
  std::vector<Query> queries;
  std::string source;

  // Tier names seen in any outcome, in first-seen order.
  RN_API std::vector<std::string> tier_names() const;
  // Task names, sorted.
  RN_API std::vector<std::string> task_names() const;
  // Indices of queries in a split.
  RN_API std::vector<size_t> indices(Split s) const;
};

// Streaming reader: one query at a time, constant memory.
class RN_API DatasetReader {
 public:
  explicit DatasetReader(const std::string& path, ReadOptions options = {});
  ~DatasetReader();
  DatasetReader(const DatasetReader&) = delete;
  DatasetReader& operator=(const DatasetReader&) = delete;
  // Next valid query; false at end. Throws Error(parse) naming file:line:field on a bad line
  // (unless skip_bad_lines), Error(io) on read failure.
  bool next(Query& out);
  const ReadReport& report() const;
  // 1-based line number of the query last returned by next() (0 before the first).
  size_t line_number() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Whole file into memory (checks duplicate ids too).
RN_API Dataset read_dataset(const std::string& path, const ReadOptions& options = {},
                            ReadReport* report = nullptr);

// Streaming writer: lines go to a temporary file renamed into place by commit(); destroyed
// without commit() it leaves nothing behind.
class RN_API DatasetWriter {
 public:
  explicit DatasetWriter(const std::string& path);
  ~DatasetWriter();
  DatasetWriter(const DatasetWriter&) = delete;
  DatasetWriter& operator=(const DatasetWriter&) = delete;
  void write(const Query& q);
  void commit();
  size_t written() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

RN_API void write_dataset(const Dataset& data, const std::string& path);

// Cost of an outcome: its recorded cost, else priced from tokens by the portfolio, else 0
// with has_cost=false.
RN_API double outcome_cost(const PortfolioConfig& config, int tier, const Outcome& o,
                           bool* has_cost = nullptr);
// Latency of an outcome: recorded, else a deterministic draw (keyed by query id and tier)
// from a log-normal matching the tier's p50/p99, else 0.
RN_API double outcome_latency_ms(const PortfolioConfig& config, int tier, const Outcome& o,
                                 const std::string& query_id);

// Per-tier summary of a dataset (used by `routenlp validate` and `routenlp import`).
struct TierSummary {
  std::string tier;
  size_t outcomes = 0;        // queries with an outcome for this tier
  double coverage = 0.0;      // outcomes / queries
  double mean_quality = 0.0;  // over outcomes
  size_t acceptable = 0;      // quality >= the task's threshold (only with a config)
  size_t priced = 0;          // outcomes with a cost (recorded, or priced from tokens)
  double mean_cost = 0.0;     // USD per call over priced outcomes
  double total_cost = 0.0;    // USD over priced outcomes
};
// Tiers in the config's order when one is given (then the dataset's other tiers), else in
// first-seen order.
RN_API std::vector<TierSummary> summarize_tiers(const Dataset& data,
                                                const PortfolioConfig* config = nullptr);

}  // namespace routenlp
