// routenlp C++ API umbrella header. Public headers include only the standard library.
#pragma once

#include "routenlp/error.hpp"
#include "routenlp/progress.hpp"
#include "routenlp/runtime.hpp"
#include "routenlp/version.hpp"
// RN_CXX_HEADERS: helpers add their component headers below this marker.
#include "routenlp/coopt.hpp"
#include "routenlp/coopt_classifier.hpp"
#include "routenlp/failure_analyzer.hpp"
#include "routenlp/local_classifier_tier.hpp"
#include "routenlp/encoder.hpp"
#include "routenlp/safetensors.hpp"
#include "routenlp/router.hpp"
#include "routenlp/cascade.hpp"
#include "routenlp/conformal.hpp"
#include "routenlp/online.hpp"
#include "routenlp/tier.hpp"
#include "routenlp/tokenizer.hpp"
#include "routenlp/dataset.hpp"
#include "routenlp/portfolio.hpp"
#include "routenlp/importers.hpp"
#include "routenlp/metrics.hpp"
