// NeuralRouter without libtorch: every entry point throws Error(not_supported).
#include "routenlp/error.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/baselines.hpp"
#include "routenlp/router/neural.hpp"
#include "routenlp/router/io.hpp"

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
NeuralRouter NeuralRouter::load(const std::string&, const RouterRuntime&) { no_torch(); }

// The same checks as the torch build where they need no torch: load_router validates the
// runtime for every kind, so "cpu"/"auto" must pass here and a CUDA device must not.
std::string NeuralRouter::resolve_device(const RouterRuntime& rt) {
  const std::string& d = rt.device;
  if (d == "auto") return "cpu";
  if (d == "cuda" || d.rfind("cuda:", 0) == 0)
    throw Error(Status::not_supported, "neural router: device '" + d +
                                           "' requested but routenlp was built without libtorch (no CUDA)");
  if (d != "cpu")
    throw Error(Status::invalid_argument, "neural router: unknown device '" + d + "' (cpu, cuda, cuda:N, auto)");
  if (rt.dtype == EncoderDType::fp16)
    throw Error(Status::not_supported, "neural router: fp16 is supported on CUDA only; on the CPU use fp32 or bf16");
  if (rt.dtype != EncoderDType::fp32 && rt.dtype != EncoderDType::bf16)
    throw Error(Status::invalid_argument, "neural router: unknown dtype");
  if (rt.cuda_graphs)
    throw Error(Status::not_supported, "neural router: cuda_graphs needs a CUDA device (device 'cpu')");
  if (rt.int8_dynamic && rt.dtype != EncoderDType::fp32)
    throw Error(Status::invalid_argument, "neural router: int8_dynamic needs dtype fp32 (the other ops stay fp32)");
  return "cpu";
}
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
std::string NeuralRouter::device() const { no_torch(); }
RouterRuntime NeuralRouter::runtime() const { no_torch(); }

}  // namespace routenlp
