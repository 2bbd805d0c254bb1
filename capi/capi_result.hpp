// Internal: the rn_result handle, made by rn_cascade_run and rn_engine_run(_batch) alike so that
// one set of rn_result_* accessors serves both.
#pragma once

#include "routenlp/cascade/result.hpp"
#include "routenlp/rn_cascade.h"

struct rn_result {
  routenlp::CascadeResult impl;
};
