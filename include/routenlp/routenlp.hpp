// routenlp C++ API umbrella header: every public header, one folder per component
// (docs/architecture.md). Public headers include only the standard library.
#pragma once

// common
#include "routenlp/error.hpp"
#include "routenlp/progress.hpp"
#include "routenlp/version.hpp"
// data: datasets, importers, portfolio config, task quality metrics
#include "routenlp/data/dataset.hpp"
#include "routenlp/data/importers.hpp"
#include "routenlp/data/metrics.hpp"
#include "routenlp/data/portfolio.hpp"
// text + encoder
#include "routenlp/encoder/encoder.hpp"
#include "routenlp/encoder/runtime.hpp"
#include "routenlp/encoder/safetensors.hpp"
#include "routenlp/text/tokenizer.hpp"
// router
#include "routenlp/router/baselines.hpp"
#include "routenlp/router/io.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/neural.hpp"
#include "routenlp/router/policies.hpp"
#include "routenlp/router/stacked.hpp"
// calibration
#include "routenlp/calibration/acceptance.hpp"
#include "routenlp/calibration/calibrator.hpp"
#include "routenlp/calibration/conformal.hpp"
#include "routenlp/calibration/online.hpp"
#include "routenlp/calibration/quality_plan.hpp"
#include "routenlp/calibration/threshold_table.hpp"
// cascade
#include "routenlp/cascade/decision_log.hpp"
#include "routenlp/cascade/engine.hpp"
#include "routenlp/cascade/result.hpp"
// tiers
#include "routenlp/tiers/local_classifier_tier.hpp"
#include "routenlp/tiers/openai_tier.hpp"
#include "routenlp/tiers/tier.hpp"
// pipeline
#include "routenlp/pipeline/pipeline.hpp"
// co-optimization
#include "routenlp/coopt/classifier.hpp"
#include "routenlp/coopt/coopt.hpp"
#include "routenlp/coopt/failure_analyzer.hpp"
// evaluation + serving
#include "routenlp/eval/eval.hpp"
#include "routenlp/serve/serve.hpp"
