// Fuzz target: the dataset JSONL reader (include/routenlp/data/dataset.hpp), strict and skipping.
#include <string>

#include "fuzz_common.hpp"
#include "routenlp/data/dataset.hpp"
#include "routenlp/data/portfolio.hpp"

namespace {

const routenlp::PortfolioConfig& portfolio() {
  static const routenlp::PortfolioConfig p = routenlp::parse_portfolio(
      "tiers:\n"
      "  - {name: small, price_per_1m_input: 0.6, price_per_1m_output: 0.6}\n"
      "  - {name: large, price_per_1m_input: 10, price_per_1m_output: 30}\n",
      "fuzz-portfolio");
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = rn_fuzz::write_temp("data.jsonl", data, size);
  // Strict whole-file read (duplicate ids, first bad line throws); on success the dataset must
  // survive a write/read round trip with the same queries.
  rn_fuzz::run("dataset_jsonl", [&] {
    routenlp::Dataset d = routenlp::read_dataset(path);
    (void)d.tier_names();
    (void)d.task_names();
    (void)routenlp::summarize_tiers(d, nullptr);
    const std::string copy = rn_fuzz::temp_dir() + "/copy.jsonl";
    routenlp::write_dataset(d, copy);
    routenlp::Dataset back = routenlp::read_dataset(copy);
    rn_fuzz::check(back.queries.size() == d.queries.size(), "dataset_jsonl",
                   "write_dataset + read_dataset changed the number of queries");
    for (size_t i = 0; i < d.queries.size(); ++i)
      rn_fuzz::check(back.queries[i].id == d.queries[i].id &&
                         back.queries[i].outcomes.size() == d.queries[i].outcomes.size(),
                     "dataset_jsonl", "write_dataset + read_dataset changed a query");
  });
  // Streaming, skipping bad lines, tier names checked against a portfolio: never throws parse
  // errors, every line is either a query or a counted skip.
  rn_fuzz::run("dataset_jsonl", [&] {
    routenlp::ReadOptions o;
    o.skip_bad_lines = true;
    o.portfolio = &portfolio();
    o.max_query_bytes = 256;
    routenlp::DatasetReader reader(path, o);
    routenlp::Query q;
    while (reader.next(q)) {
      for (const auto& kv : q.outcomes)
        (void)routenlp::outcome_cost(portfolio(), portfolio().tier_index(kv.first), kv.second);
    }
    const auto& r = reader.report();
    rn_fuzz::check(r.queries + r.skipped == r.lines, "dataset_jsonl",
                   "skip_bad_lines: queries + skipped != lines");
  });
  return 0;
}
