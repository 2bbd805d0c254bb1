// LocalClassifierTier without libtorch: every entry point throws Error(not_supported).
#include "routenlp/error.hpp"
#include "routenlp/tiers/local_classifier_tier.hpp"

namespace routenlp {

namespace {
[[noreturn]] void no_torch() {
  throw Error(Status::not_supported, "LocalClassifierTier: routenlp was built without libtorch");
}
}  // namespace

struct LocalClassifierTier::Impl {};

LocalClassifierTier::LocalClassifierTier(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
LocalClassifierTier::~LocalClassifierTier() = default;
std::shared_ptr<LocalClassifierTier> LocalClassifierTier::train(const std::vector<std::string>&,
                                                                const std::vector<std::string>&,
                                                                const LocalClassifierConfig&,
                                                                const ClassifierTrainConfig&,
                                                                ProgressCallback, ClassifierTrainReport*) {
  no_torch();
}
std::shared_ptr<LocalClassifierTier> LocalClassifierTier::fine_tune(const std::vector<std::string>&,
                                                                    const std::vector<std::string>&,
                                                                    const ClassifierTrainConfig&,
                                                                    ProgressCallback,
                                                                    ClassifierTrainReport*) const {
  no_torch();
}
void LocalClassifierTier::save(const std::string&) const { no_torch(); }
std::shared_ptr<LocalClassifierTier> LocalClassifierTier::load(const std::string&) { no_torch(); }
std::shared_ptr<LocalClassifierTier> LocalClassifierTier::load(const std::string&, const LocalClassifierRuntime&) {
  no_torch();
}
std::string LocalClassifierTier::device() const { no_torch(); }
LocalClassifierRuntime LocalClassifierTier::runtime() const { no_torch(); }
const std::string& LocalClassifierTier::name() const { no_torch(); }
TierResponse LocalClassifierTier::call(const TierRequest&) { no_torch(); }
double LocalClassifierTier::expected_cost(const TierRequest&) const { no_torch(); }
std::vector<ClassifierPrediction> LocalClassifierTier::predict(const std::vector<std::string>&, size_t) const {
  no_torch();
}
std::vector<std::vector<float>> LocalClassifierTier::embed(const std::vector<std::string>&, size_t) const {
  no_torch();
}
const std::vector<std::string>& LocalClassifierTier::labels() const { no_torch(); }
const LocalClassifierConfig& LocalClassifierTier::config() const { no_torch(); }

}  // namespace routenlp
