// Pipeline internals shared by pipeline.cpp (routing) and artifact.cpp (save/load).
// Internal header.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "routenlp/pipeline/pipeline.hpp"

namespace routenlp {

struct Pipeline::Impl {
  PipelineParts parts;
  std::shared_ptr<const ThresholdTable> table;  // calibration's, or escalate-all
  std::vector<std::string> tiers;
  bool guarantee_mode = false;  // thresholds are indexed by alpha
  PipelineManifest manifest;
};

}  // namespace routenlp
