// Fuzz target: decision-log lines (decision_from_json / read_decision_log, cascade.hpp).
#include <string>

#include "fuzz_common.hpp"
#include "routenlp/cascade/result.hpp"
#include "routenlp/cascade/decision_log.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = rn_fuzz::as_string(data, size);
  // One line; an accepted record must survive decision_to_json + decision_from_json.
  rn_fuzz::run("decision_log", [&] {
    routenlp::CascadeResult r = routenlp::decision_from_json(text, "fuzz:1");
    routenlp::CascadeResult back = routenlp::decision_from_json(routenlp::decision_to_json(r), "round-trip");
    rn_fuzz::check(back.request_id == r.request_id && back.task == r.task && back.status == r.status &&
                       back.tier == r.tier && back.trace.size() == r.trace.size(),
                   "decision_log", "decision_to_json + decision_from_json changed the record");
  });
  // The same bytes as a whole log file (several lines, a torn last line).
  rn_fuzz::run("decision_log", [&] {
    (void)routenlp::read_decision_log(rn_fuzz::write_temp("decisions.jsonl", data, size));
  });
  return 0;
}
