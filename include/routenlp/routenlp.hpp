// routenlp C++ API umbrella header, grouped by component (docs/architecture.md). Public headers
// include only the standard library.
#pragma once

// common
#include "routenlp/error.hpp"
#include "routenlp/progress.hpp"
#include "routenlp/runtime.hpp"
#include "routenlp/version.hpp"
// data
#include "routenlp/dataset.hpp"
#include "routenlp/importers.hpp"
#include "routenlp/metrics.hpp"
#include "routenlp/portfolio.hpp"
// text + encoder
#include "routenlp/encoder.hpp"
#include "routenlp/safetensors.hpp"
#include "routenlp/tokenizer.hpp"
// router
#include "routenlp/router.hpp"
// calibration
#include "routenlp/acceptance.hpp"
#include "routenlp/conformal.hpp"
#include "routenlp/online.hpp"
// cascade + tiers
#include "routenlp/cascade.hpp"
#include "routenlp/local_classifier_tier.hpp"
#include "routenlp/openai_tier.hpp"
#include "routenlp/tier.hpp"
// pipeline
#include "routenlp/pipeline.hpp"
// co-optimization
#include "routenlp/coopt.hpp"
#include "routenlp/coopt_classifier.hpp"
#include "routenlp/failure_analyzer.hpp"
// evaluation + serving
#include "routenlp/eval.hpp"
#include "routenlp/serve.hpp"
