// Internal: the C tier reply handle, shared by the C vtable adapter and the C ABI setters.
#pragma once

#include "routenlp/rn_cascade.h"
#include "routenlp/tiers/tier.hpp"

struct rn_tier_reply {
  routenlp::TierResponse impl;
};
