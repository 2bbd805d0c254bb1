// Placing a loaded torch model (neural router, local classifier tier) for inference: device
// resolution and checks shared by both, and a CUDA-graph cache for a whole model forward.
// Internal header (torch types allowed).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "encoder/distilbert.hpp"
#include "routenlp/encoder/encoder.hpp"
#include "routenlp/error.hpp"

#ifdef ROUTENLP_WITH_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace routenlp::detail {

struct ResolvedRuntime {
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat;  // the encoder's; heads stay fp32
  EncoderDType encoder_dtype = EncoderDType::fp32;
  bool cuda_graphs = false;
  bool int8 = false;  // the encoder's Linear layers quantized (quantize_int8_dynamic)
};

// Same rules as the Encoder's options (docs/encoder.md "Devices, precision"), plus: "auto" that
// lands on the CPU drops dtype and cuda_graphs, so one runtime fits CPU and GPU hosts. `who`
// prefixes the messages ("neural router", "LocalClassifierTier").
inline ResolvedRuntime resolve_runtime(const std::string& device, EncoderDType dtype, bool cuda_graphs,
                                       bool int8, const std::string& who) {
  ResolvedRuntime r;
  const std::string& d = device;
  const bool is_auto = d == "auto";
  if (d == "cpu") {
    r.device = torch::Device(torch::kCPU);
  } else if (is_auto) {
    r.device = torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  } else if (d == "cuda" || d.rfind("cuda:", 0) == 0) {
    int idx = 0;
    if (d.size() > 5) {  // "cuda:N": parse before looking for CUDA so a typo is named as such
      size_t used = 0;
      try {
        idx = std::stoi(d.substr(5), &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != d.size() - 5 || idx < 0)
        throw Error(Status::invalid_argument, who + ": bad device '" + d + "' (expected cuda:N, N >= 0)");
    } else if (d.size() == 5) {
      throw Error(Status::invalid_argument, who + ": bad device '" + d + "' (expected cuda:N, N >= 0)");
    }
    if (!torch::cuda::is_available())
      throw Error(Status::not_supported, who + ": device '" + d +
                                             "' requested but libtorch sees no CUDA device (CPU-only "
                                             "libtorch or no GPU); use \"cpu\" or \"auto\"");
    if (static_cast<size_t>(idx) >= torch::cuda::device_count())
      throw Error(Status::invalid_argument, who + ": device '" + d + "' does not exist (" +
                                                std::to_string(torch::cuda::device_count()) + " CUDA devices)");
    r.device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(idx));
  } else {
    throw Error(Status::invalid_argument, who + ": unknown device '" + d + "' (cpu, cuda, cuda:N, auto)");
  }
  switch (dtype) {
    case EncoderDType::fp32: r.dtype = torch::kFloat; break;
    case EncoderDType::fp16: r.dtype = torch::kHalf; break;
    case EncoderDType::bf16: r.dtype = torch::kBFloat16; break;
    default: throw Error(Status::invalid_argument, who + ": unknown dtype");
  }
  r.encoder_dtype = dtype;
  r.cuda_graphs = cuda_graphs;
  r.int8 = int8;
  if (is_auto && r.device.is_cpu()) {
    // "auto" on a CPU host: the default CPU path (fp32, routenlp's kernels; int8 when asked).
    r.dtype = torch::kFloat;
    r.encoder_dtype = EncoderDType::fp32;
    r.cuda_graphs = false;
    return r;
  }
  if (is_auto) r.int8 = false;  // int8 is a CPU setting; on the GPU dtype applies
  if (r.int8 && !r.device.is_cpu())
    throw Error(Status::not_supported, who + ": int8_dynamic runs on the CPU only (device '" + d + "')");
  if (r.int8 && r.dtype != torch::kFloat)
    throw Error(Status::invalid_argument, who + ": int8_dynamic needs dtype fp32 (the other ops stay fp32)");
  if (r.device.is_cpu() && r.dtype == torch::kHalf)
    throw Error(Status::not_supported, who + ": fp16 is supported on CUDA only; on the CPU use fp32 or bf16");
  if (r.cuda_graphs && !r.device.is_cuda())
    throw Error(Status::not_supported, who + ": cuda_graphs needs a CUDA device (device '" + d + "')");
#ifndef ROUTENLP_WITH_CUDA_GRAPHS
  if (r.cuda_graphs)
    throw Error(Status::not_supported,
                who + ": this build has no CUDA-graph support (ROUTENLP_WITH_CUDA_GRAPHS); set cuda_graphs false");
#endif
  return r;
}

// Replays one captured CUDA graph per input shape. fn maps device inputs to outputs and must be
// capturable (no host synchronisation, no shape-dependent host logic beyond the shapes). Like
// the Encoder's graph path: 3 warm-up passes on a side stream, then capture; replays are
// serialised (static buffers); the outputs are cloned before the lock is released.
class GraphCache {
 public:
  using Fn = std::function<std::vector<torch::Tensor>(const std::vector<torch::Tensor>&)>;
#ifdef ROUTENLP_WITH_CUDA_GRAPHS
  std::vector<torch::Tensor> run(const std::vector<torch::Tensor>& cpu_inputs, torch::Device device, const Fn& fn) {
    std::vector<int64_t> key;
    for (const auto& t : cpu_inputs) {
      key.push_back(t.dim());
      for (auto s : t.sizes()) key.push_back(s);
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = graphs_.find(key);
    if (it == graphs_.end()) {
      auto g = std::make_unique<Graph>();
      for (const auto& t : cpu_inputs) g->in.push_back(t.to(device));
      c10::cuda::getCurrentCUDAStream(device.index()).synchronize();  // inputs ready for the side stream
      auto side = c10::cuda::getStreamFromPool(false, device.index());
      {
        c10::cuda::CUDAStreamGuard sg(side);
        for (int i = 0; i < 3; ++i) g->out = fn(g->in);  // warm-up (allocator, kernel selection)
        side.synchronize();
        g->graph.capture_begin();
        g->out = fn(g->in);
        g->graph.capture_end();
        side.synchronize();
      }
      it = graphs_.emplace(std::move(key), std::move(g)).first;
    }
    Graph& g = *it->second;
    for (size_t i = 0; i < cpu_inputs.size(); ++i) g.in[i].copy_(cpu_inputs[i]);
    g.graph.replay();
    std::vector<torch::Tensor> out;
    for (const auto& t : g.out) out.push_back(t.clone());
    return out;
  }

 private:
  struct Graph {
    at::cuda::CUDAGraph graph;
    std::vector<torch::Tensor> in, out;
  };
  std::mutex mu_;
  std::map<std::vector<int64_t>, std::unique_ptr<Graph>> graphs_;
#else
  std::vector<torch::Tensor> run(const std::vector<torch::Tensor>&, torch::Device, const Fn&) {
    throw Error(Status::not_supported, "this build has no CUDA-graph support (ROUTENLP_WITH_CUDA_GRAPHS)");
  }
#endif
};

// Places a loaded model (the neural router's or the local classifier tier's Impl: members
// placed, runtime, net with an encoder, graphs) as resolved: records the runtime, moves the net,
// casts the encoder and starts the CUDA-graph cache when asked.
template <class Model>
void place_model(Model& m, const ResolvedRuntime& r) {
  m.placed = r;
  m.runtime.device = r.device.str();
  m.runtime.dtype = r.encoder_dtype;
  m.runtime.cuda_graphs = r.cuda_graphs;
  m.runtime.int8_dynamic = r.int8;
  if (!r.device.is_cpu()) m.net->to(r.device);
  if (r.dtype != torch::kFloat) m.net->encoder->to(r.dtype);
  if (r.int8) quantize_int8_dynamic(*m.net->encoder);  // after eval(), before prepare_for_inference
  if (r.cuda_graphs) m.graphs = std::make_unique<GraphCache>();
}

}  // namespace routenlp::detail
