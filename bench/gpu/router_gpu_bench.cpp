// Routing end to end on the GPU machine (bench/gpu/run.sh): NeuralRouter::score on a batch of
// query strings, i.e. tokenization + host-to-device copy + encoder + MLP heads + sigmoid +
// copy back, through the public load(dir, RouterRuntime) path.
//   router_gpu_bench make <dir> <small|base> <vocab.txt>
//       writes a random-weight router checkpoint (3 tiers, 3 tasks, max_length 64):
//       small = the bundled router's encoder (EncoderConfig::small()),
//       base  = distilbert-base shapes (dim 768, 6 layers)
//   router_gpu_bench bench <dir> <device> <fp32|fp16|bf16> <graphs 0|1> <batch> <iters>
//       p50/p99 per score() call, queries/s, and max |p - p(CPU fp32)| on the same batch
// Needs libtorch, nlohmann-json and fmt headers (fmt header-only); no Dataset / YAML code.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/text_io.hpp"
#include "router/neural_impl.hpp"
#include "routenlp/error.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/neural.hpp"
#include "routenlp/encoder/safetensors.hpp"

using namespace routenlp;
namespace fs = std::filesystem;

// policies.cpp (which defines it) pulls in the dataset and portfolio code; not linked here.
RouterModel::~RouterModel() = default;

namespace {

std::string quoted_list(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ",\"" : "\"") + v[i] + "\"";
  return s + "]";
}

int make(const std::string& dir, const std::string& cfg_name, const std::string& vocab_path) {
  RouterTrainConfig cfg;
  cfg.model.encoder = cfg_name == "base" ? EncoderConfig::distilbert_base() : EncoderConfig::small();
  cfg.model.max_length = 64;
  const std::vector<std::string> tiers{"cheap", "mid", "strong"}, tasks{"chat", "math", "qa"};
  const std::string vocab = routenlp::detail::read_file(vocab_path);
  auto impl = make_router_impl(cfg, cfg.model.encoder, tiers, tasks, vocab, vocab_path);
  torch::manual_seed(1);
  routenlp::detail::init_weights(*impl->net->encoder, 1);  // heads keep libtorch's seeded default init
  fs::create_directories(dir);
  std::vector<std::pair<std::string, torch::Tensor>> ts;
  for (const auto& kv : impl->net->named_parameters(true))
    ts.emplace_back(kv.key(), kv.value().detach().to(torch::kCPU, torch::kFloat).contiguous());
  write_safetensors((fs::path(dir) / "router.safetensors").string(), routenlp::detail::tensor_views(ts),
                    {{"format", "pt"}, {"routenlp", "router"}});
  routenlp::detail::write_file_atomic((fs::path(dir) / "vocab.txt").string(), vocab);
  const std::string meta = "{\"format\":\"routenlp-router\",\"format_version\":1,\"weights\":\"router.safetensors\","
                           "\"vocab\":\"vocab.txt\",\"tiers\":" + quoted_list(tiers) + ",\"tasks\":" +
                           quoted_list(tasks) + ",\"encoder_config\":" + cfg.model.encoder.to_hf_config_json() +
                           ",\"vocab_hash\":\"" + impl->tokenizer->vocab_hash() + "\",\"train_config\":" +
                           cfg.to_json() + ",\"metrics\":{}}\n";
  routenlp::detail::write_file_atomic((fs::path(dir) / "router.json").string(), meta);
  std::printf("make: %s router checkpoint in %s (dim %lld, %lld layers)\n", cfg_name.c_str(), dir.c_str(),
              static_cast<long long>(cfg.model.encoder.dim), static_cast<long long>(cfg.model.encoder.n_layers));
  return 0;
}

// Queries of varied length; the first is long enough to fill max_length (64 tokens), so a batch
// of 1 is the encoder benchmark's s64 shape and a batch of 32 pads to 64 tokens.
std::vector<RouteQuery> queries(size_t n) {
  static const char* words[] = {"how", "do", "i", "reset", "my", "password", "what", "is", "the", "capital",
                                "of", "france", "please", "explain", "why", "sky", "blue", "write", "a",
                                "short", "poem", "about", "rain", "solve", "for", "x", "in", "equation",
                                "translate", "this", "sentence", "into", "german", "summarize", "article"};
  const char* task[] = {"chat", "math", "qa", "unseen"};
  std::vector<RouteQuery> qs;
  for (size_t i = 0; i < n; ++i) {
    const size_t len = i == 0 ? 80 : 8 + (i * 13) % 50;
    std::string s;
    for (size_t w = 0; w < len; ++w) s += std::string(words[(i * 7 + w * 3) % 35]) + " ";
    qs.push_back({s, task[i % 4]});
  }
  return qs;
}

EncoderDType parse_dtype(const std::string& s) {
  if (s == "fp32") return EncoderDType::fp32;
  if (s == "fp16") return EncoderDType::fp16;
  if (s == "bf16") return EncoderDType::bf16;
  throw Error(Status::invalid_argument, "dtype must be fp32|fp16|bf16");
}

int bench(const std::string& dir, const std::string& device, const std::string& dtype, bool graphs, size_t batch,
          int iters) {
  RouterRuntime rt;
  rt.device = device;
  rt.dtype = parse_dtype(dtype);
  rt.cuda_graphs = graphs;
  auto router = NeuralRouter::load(dir, rt);
  const auto qs = queries(batch);
  for (int i = 0; i < 10; ++i) router.score(qs);  // warm-up (allocator, kernels, graph capture)
  std::vector<double> ms;
  const auto t_all = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto s = router.score(qs);
    const auto t1 = std::chrono::steady_clock::now();
    if (s.size() != batch) return 2;
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_all).count();
  std::sort(ms.begin(), ms.end());
  const double p50 = ms[ms.size() / 2], p99 = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
  // Agreement with the CPU fp32 router on the same batch (the reference every test uses).
  const auto got = router.score(qs);
  const auto ref = NeuralRouter::load(dir).score(qs);
  double worst = 0.0;
  for (size_t i = 0; i < batch; ++i)
    for (size_t k = 0; k < ref[i].p_acceptable.size(); ++k)
      worst = std::max(worst, std::fabs(got[i].p_acceptable[k] - ref[i].p_acceptable[k]));
  std::printf("router: dir=%s device=%s dtype=%s graphs=%d batch=%zu iters=%d p50_ms=%.4f p99_ms=%.4f "
              "queries_per_s=%.0f max_abs_dp_vs_cpu_fp32=%.3g\n",
              fs::path(dir).filename().c_str(), router.device().c_str(),
              router.runtime().dtype == EncoderDType::fp32 ? "fp32" : dtype.c_str(), router.runtime().cuda_graphs ? 1 : 0,
              batch, iters,
              p50, p99, static_cast<double>(batch) * iters / total_s, worst);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::string> a(argv + 1, argv + argc);
    if (a.size() == 4 && a[0] == "make") return make(a[1], a[2], a[3]);
    if (a.size() == 7 && a[0] == "bench")
      return bench(a[1], a[2], a[3], a[4] == "1", std::stoul(a[5]), std::stoi(a[6]));
    std::fprintf(stderr,
                 "usage: router_gpu_bench make <dir> <small|base> <vocab.txt>\n"
                 "       router_gpu_bench bench <dir> <device> <fp32|fp16|bf16> <graphs 0|1> <batch> <iters>\n");
    return 2;
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
}
