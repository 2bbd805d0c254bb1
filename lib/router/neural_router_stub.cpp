// NeuralRouter without libtorch: every entry point throws Error(not_supported).
#include "routenlp/error.hpp"
#include "routenlp/router.hpp"

namespace routenlp {

struct NeuralRouter::Impl {};

namespace {
[[noreturn]] void no_torch() {
  throw Error(Status::not_supported, "the neural router needs libtorch (built with ROUTENLP_WITH_TORCH=OFF)");
}
}  // namespace

NeuralRouter NeuralRouter::train(const Dataset&, const PortfolioConfig&, const RouterTrainConfig&,
                                 ProgressCallback, RouterTrainReport*) { no_torch(); }
NeuralRouter NeuralRouter::load(const std::string&) { no_torch(); }
void NeuralRouter::save(const std::string&) const { no_torch(); }
NeuralRouter::NeuralRouter(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
NeuralRouter::NeuralRouter(NeuralRouter&&) noexcept = default;
NeuralRouter& NeuralRouter::operator=(NeuralRouter&&) noexcept = default;
NeuralRouter::~NeuralRouter() = default;
std::vector<RouterScores> NeuralRouter::score(const std::vector<RouteQuery>&) const { no_torch(); }
std::vector<std::string> NeuralRouter::tiers() const { no_torch(); }
std::vector<std::string> NeuralRouter::tasks() const { no_torch(); }
std::vector<std::vector<float>> NeuralRouter::embed(const std::vector<RouteQuery>&) const { no_torch(); }
TextEmbedder NeuralRouter::embedder() const { no_torch(); }
const RouterTrainConfig& NeuralRouter::config() const { no_torch(); }
std::string NeuralRouter::metadata_json() const { no_torch(); }
std::vector<float> NeuralRouter::parameters_flat() const { no_torch(); }
int NeuralRouter::max_length() const { no_torch(); }

}  // namespace routenlp
