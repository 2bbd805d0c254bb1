// Saving and loading any router made by this library (no libtorch needed except for the neural
// kind). Directory layouts: docs/router.md "Saving and loading routers".
#pragma once

#include <memory>
#include <string>

#include "routenlp/export.h"
#include "routenlp/router/model.hpp"
#include "routenlp/router/neural.hpp"

namespace routenlp {

// Writes any router made by this library to `dir` (created; written to a temporary directory
// renamed into place): router.json names its kind ("neural", "task-prior", "tfidf-logreg",
// "mf", "knn-tfidf", "stacked", "random", "always-tier") plus the kind's own files.
// Error(not_supported) naming the router for a RouterModel this library cannot save (a host
// subclass, a kNN over an external embedder, or a stack with such a base); nothing is written
// then. Error(io) when the directory cannot be written.
RN_API void save_router(const RouterModel& router, const std::string& dir);
// Loads what save_router wrote (or a bare NeuralRouter::save checkpoint). The loaded router
// scores exactly as the saved one did. Errors name the file and field: Error(parse) for an
// unknown kind, bad JSON (numbers beyond double range included), wrong types, unknown or
// duplicate keys; Error(io) for a missing or oversized file; Error(model) for wrong shapes,
// non-finite weights or tier lists that disagree; Error(not_supported) for a neural router in
// a build without libtorch.
RN_API std::shared_ptr<const RouterModel> load_router(const std::string& dir);
// Same, with every neural router inside (the router itself or a stack's bases) placed by
// `runtime` (NeuralRouter::load(dir, runtime)). The runtime is checked first, whatever the
// kind, so an unusable device fails the same way for every router; kinds without a neural
// part then ignore it (they run on the CPU).
RN_API std::shared_ptr<const RouterModel> load_router(const std::string& dir,
                                                      const RouterRuntime& runtime);
// The kind save_router would write ("" when it cannot be saved).
RN_API std::string router_kind(const RouterModel& router);

}  // namespace routenlp
