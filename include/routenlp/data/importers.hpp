// Importers: turn published routing benchmarks (RouteLLM, RouterBench, LLMRouter) into the
// routing dataset format. Conventions (ids, tasks, tier names, token estimates) are in
// docs/dataset-format.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "routenlp/data/dataset.hpp"
#include "routenlp/export.h"
#include "routenlp/data/portfolio.hpp"
#include "routenlp/progress.hpp"

namespace routenlp {

struct ImportOptions {
  // RouteLLM: drop prompts listed in <dir>/<bench>_contaminated_prompts.jsonl (their
  // `eval_prompt`), as RouteLLM's own evaluation does.
  bool drop_contaminated = false;
  // RouteLLM: "mmlu", "gsm8k" or "" for both.
  std::string subset;
  // Keep the tiers' response texts where the files have them.
  bool include_responses = true;
  // Called per input file / every few hundred rows; return false to cancel.
  ProgressCallback progress;
};

struct ImportSummary {
  std::string format;                   // "routellm", "routerbench", "llmrouter"
  size_t rows = 0;                      // queries imported
  size_t dropped_contaminated = 0;      // rows dropped by drop_contaminated
  size_t missing_outcomes = 0;          // empty score cells (kept as missing outcomes)
  std::vector<std::string> files;       // input files read, in order
  std::vector<std::string> tiers;       // tier names, cheapest first (by recorded cost or price)
  std::map<std::string, size_t> tasks;  // queries per task
  std::vector<std::string> notes;       // conventions applied, one line each
  // Tiers with the prices the upstream files give (LLMRouter's default_llm.json); unset when
  // the files carry no prices.
  std::optional<PortfolioConfig> portfolio;
};

// Token estimate for files without counts: ceil(UTF-8 bytes / 4).
RN_API int64_t estimate_tokens(std::string_view text) noexcept;

// RouteLLM: <dir>/mmlu/mmlu_<subject>.csv and <dir>/gsm8k_responses.csv. Tiers
// "mixtral-8x7b" and "gpt-4-1106"; tasks "mmlu/<subject>" and "gsm8k".
RN_API Dataset import_routellm(const std::string& dir, const ImportOptions& options = {},
                               ImportSummary* summary = nullptr);
// RouterBench: every <dir>/*.csv (sorted), 11 models with per-call costs; task = eval_name.
RN_API Dataset import_routerbench(const std::string& dir, const ImportOptions& options = {},
                                  ImportSummary* summary = nullptr);
// LLMRouter: <dir>/train.json joined with <dir>/default_query_train.jsonl on the query text;
// prices from <dir>/default_llm.json (summary->portfolio).
RN_API Dataset import_llmrouter(const std::string& dir, const ImportOptions& options = {},
                                ImportSummary* summary = nullptr);
// Dispatch on "routellm" / "routerbench" / "llmrouter"; Error(invalid_argument) otherwise.
RN_API Dataset import_dataset(const std::string& format, const std::string& dir,
                              const ImportOptions& options = {}, ImportSummary* summary = nullptr);

}  // namespace routenlp
