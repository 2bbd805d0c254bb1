// routenlp::Encoder: DistilBERT inference behind a torch-free public API.
// Thread safety: the module is in eval mode and only read; every call runs under
// c10::InferenceMode, so concurrent const calls share the weights safely. The CUDA-graph path
// keeps static input/output buffers per shape and serialises replays with a mutex.
#include "routenlp/encoder/encoder.hpp"

#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

#include "common/atomic_file.hpp"
#include "common/text_io.hpp"
#include "encoder/distilbert.hpp"
#include "routenlp/error.hpp"
#ifndef ROUTENLP_ENCODER_NO_TOKENIZER
#include "routenlp/text/tokenizer.hpp"
#endif
#ifdef ROUTENLP_WITH_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace fs = std::filesystem;

namespace routenlp {

struct Encoder::Impl {
  EncoderConfig config;
  EncoderOptions options;
  detail::DistilBert model{nullptr};
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat;
  std::string vocab_path;
#ifndef ROUTENLP_ENCODER_NO_TOKENIZER
  std::unique_ptr<WordPieceTokenizer> tokenizer;
#endif
#ifdef ROUTENLP_WITH_CUDA_GRAPHS
  struct Graph {
    at::cuda::CUDAGraph graph;
    torch::Tensor ids, mask, out;
  };
  std::mutex graph_mu;
  std::map<std::tuple<int64_t, int64_t, bool>, std::unique_ptr<Graph>> graphs;
#endif

  torch::Tensor hidden(const std::vector<int64_t>& ids, const std::vector<int64_t>& mask, size_t batch,
                       size_t seq_len, torch::Tensor* mask_out);
  std::vector<float> pooled(const std::vector<int64_t>& ids, const std::vector<int64_t>& mask, size_t batch,
                            size_t seq_len);
};

namespace {

void apply_threads(const EncoderOptions& o) {
  if (o.intra_op_threads > 0) {
    at::set_num_threads(o.intra_op_threads);
  } else if (o.intra_op_threads == 0) {
    // Default (docs/encoder.md "Threads"): with libgomp's default busy-wait policy, two
    // intra-op threads were slower than one on the 2-core machine; with PASSIVE they help.
    const char* wp = std::getenv("OMP_WAIT_POLICY");
    std::string p = wp ? wp : "";
    for (auto& ch : p) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    // libtorch's own default was 1 thread on Debian's build, so choose explicitly: one per
    // core with PASSIVE (2 cores, distilbert-base b1 s64: 40.5 ms vs 63-67 ms on one thread).
    if (p != "passive") {
      at::set_num_threads(1);
    } else {
      unsigned hc = std::thread::hardware_concurrency();
      at::set_num_threads(hc > 0 ? static_cast<int>(hc) : 1);
    }
  }
}

torch::Device resolve_device(const std::string& d) {
  if (d == "cpu") return torch::Device(torch::kCPU);
  if (d == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (d == "cuda" || d.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available())
      throw Error(Status::not_supported, "encoder: device '" + d + "' requested but libtorch sees no CUDA device" +
                                             " (CPU-only libtorch or no GPU)");
    int idx = 0;
    if (d.size() > 5) {
      try {
        size_t used = 0;
        idx = std::stoi(d.substr(5), &used);
        if (used != d.size() - 5) throw std::invalid_argument("x");
      } catch (const std::exception&) {
        throw Error(Status::invalid_argument, "encoder: bad device '" + d + "' (expected cuda:N)");
      }
    }
    if (idx < 0 || static_cast<size_t>(idx) >= torch::cuda::device_count())
      throw Error(Status::invalid_argument, "encoder: device '" + d + "' does not exist (" +
                                                std::to_string(torch::cuda::device_count()) + " CUDA devices)");
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(idx));
  }
  throw Error(Status::invalid_argument, "encoder: unknown device '" + d + "' (cpu, cuda, cuda:N, auto)");
}

std::unique_ptr<Encoder::Impl> make_impl(const EncoderConfig& cfg, const EncoderOptions& opt) {
  cfg.validate();
  auto impl = std::make_unique<Encoder::Impl>();
  impl->config = cfg;
  impl->options = opt;
  impl->device = resolve_device(opt.device);
  switch (opt.dtype) {
    case EncoderDType::fp32: impl->dtype = torch::kFloat; break;
    case EncoderDType::fp16: impl->dtype = torch::kHalf; break;
    case EncoderDType::bf16: impl->dtype = torch::kBFloat16; break;
    default: throw Error(Status::invalid_argument, "encoder: unknown dtype");
  }
  // CPU: bf16 runs through oneDNN (fast where the CPU has AVX512-BF16/AMX); fp16 is not offered.
  if (impl->device.is_cpu() && impl->dtype == torch::kHalf)
    throw Error(Status::not_supported, "encoder: fp16 is supported on CUDA only; on CPU use fp32, bf16 or int8_dynamic");
  if (opt.int8_dynamic && !impl->device.is_cpu())
    throw Error(Status::not_supported, "encoder: int8_dynamic is CPU-only");
  if (opt.int8_dynamic && impl->dtype != torch::kFloat)
    throw Error(Status::invalid_argument, "encoder: int8_dynamic needs dtype fp32 (activations stay fp32)");
  if (opt.cuda_graphs && !impl->device.is_cuda())
    throw Error(Status::not_supported, "encoder: cuda_graphs needs a CUDA device");
#ifndef ROUTENLP_WITH_CUDA_GRAPHS
  if (opt.cuda_graphs)
    throw Error(Status::not_supported, "encoder: this build has no CUDA-graph support (ROUTENLP_WITH_CUDA_GRAPHS)");
#endif
  if (opt.cpu_kernel_threads < 0)
    throw Error(Status::invalid_argument, "encoder: cpu_kernel_threads must be >= 0 (0 = one per core), got " +
                                              std::to_string(opt.cpu_kernel_threads));
  apply_threads(opt);
  impl->model = detail::DistilBert(cfg);
  impl->model->cpu_kernel_threads = opt.cpu_kernel_threads;
  impl->model->cpu_prepacked_weights = opt.cpu_prepacked_weights;
  impl->model->eval();
  return impl;
}

void finish(Encoder::Impl& impl) {
  impl.model->to(impl.device, impl.dtype);
  impl.model->eval();
  for (auto& p : impl.model->parameters()) p.set_requires_grad(false);
  if (impl.options.int8_dynamic) detail::quantize_int8_dynamic(*impl.model);
  else detail::prepare_for_inference(*impl.model);
}

void load_vocab(Encoder::Impl& impl, const std::string& path) {
  impl.vocab_path = path;
#ifndef ROUTENLP_ENCODER_NO_TOKENIZER
  impl.tokenizer = std::make_unique<WordPieceTokenizer>(WordPieceTokenizer::from_vocab_file(path));
  if (static_cast<int64_t>(impl.tokenizer->vocab_size()) > impl.config.vocab_size)
    throw Error(Status::model, path + ": vocabulary has " + std::to_string(impl.tokenizer->vocab_size()) +
                                   " tokens but the encoder's vocab_size is " + std::to_string(impl.config.vocab_size));
#endif
}

}  // namespace

Encoder::Encoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Encoder::Encoder(Encoder&&) noexcept = default;
Encoder& Encoder::operator=(Encoder&&) noexcept = default;
Encoder::~Encoder() = default;

Encoder Encoder::random_init(const EncoderConfig& config, uint64_t seed, const EncoderOptions& options) {
  auto impl = make_impl(config, options);
  detail::init_weights(*impl->model, seed);
  finish(*impl);
  if (!options.vocab_file.empty()) load_vocab(*impl, options.vocab_file);
  return Encoder(std::move(impl));
}

Encoder Encoder::load_hf_dir(const std::string& dir, const EncoderOptions& options) {
  const fs::path d(dir);
  if (!fs::is_directory(d)) throw Error(Status::io, dir + ": not a directory");
  const fs::path cfg_path = d / "config.json";
  const fs::path st_path = d / "model.safetensors";
  if (!fs::exists(cfg_path)) throw Error(Status::io, cfg_path.string() + ": missing (HF model directory needs config.json)");
  if (!fs::exists(st_path)) {
    std::string hint = fs::exists(d / "pytorch_model.bin")
                           ? " (pytorch_model.bin is not read: convert it to safetensors, e.g. "
                             "model.save_pretrained(dir, safe_serialization=True))"
                           : "";
    throw Error(Status::io, st_path.string() + ": missing" + hint);
  }
  auto impl = make_impl(EncoderConfig::from_hf_config_json(cfg_path.string()), options);
  detail::load_weights(*impl->model, read_safetensors(st_path.string()));
  finish(*impl);
  if (!options.vocab_file.empty()) load_vocab(*impl, options.vocab_file);
  else if (fs::exists(d / "vocab.txt")) load_vocab(*impl, (d / "vocab.txt").string());
  return Encoder(std::move(impl));
}

torch::Tensor Encoder::Impl::hidden(const std::vector<int64_t>& ids, const std::vector<int64_t>& mask, size_t batch,
                                    size_t seq_len, torch::Tensor* mask_out) {
  if (batch == 0 || seq_len == 0) throw Error(Status::invalid_argument, "encoder: batch and seq_len must be > 0");
  if (ids.size() / batch / seq_len != 1 || ids.size() != batch * seq_len)
    throw Error(Status::invalid_argument, "encoder: ids has " + std::to_string(ids.size()) + " entries, expected batch " +
                                              std::to_string(batch) + " x seq_len " + std::to_string(seq_len));
  if (!mask.empty() && mask.size() != ids.size())
    throw Error(Status::invalid_argument, "encoder: attention mask has " + std::to_string(mask.size()) +
                                              " entries, expected " + std::to_string(ids.size()) + " (or none)");
  if (static_cast<int64_t>(seq_len) > config.max_position_embeddings)
    throw Error(Status::invalid_argument, "encoder: seq_len " + std::to_string(seq_len) +
                                              " exceeds max_position_embeddings " +
                                              std::to_string(config.max_position_embeddings) + "; truncate the input");
  detail::check_token_ids(ids.data(), ids.size(), config.vocab_size, "encoder");
  bool padded = false;
  for (int64_t m : mask) {
    if (m != 0 && m != 1) throw Error(Status::invalid_argument, "encoder: attention mask values must be 0 or 1");
    if (m == 0) padded = true;
  }
  const int64_t B = static_cast<int64_t>(batch), T = static_cast<int64_t>(seq_len);
  auto ids_cpu = torch::from_blob(const_cast<int64_t*>(ids.data()), {B, T}, torch::kLong);
  torch::Tensor mask_cpu;
  if (padded) mask_cpu = torch::from_blob(const_cast<int64_t*>(mask.data()), {B, T}, torch::kLong);
  if (mask_out) *mask_out = padded ? mask_cpu.clone() : torch::Tensor();

#ifdef ROUTENLP_WITH_CUDA_GRAPHS
  if (options.cuda_graphs) {
    std::lock_guard<std::mutex> lock(graph_mu);
    auto key = std::make_tuple(B, T, padded);
    auto it = graphs.find(key);
    if (it == graphs.end()) {
      auto g = std::make_unique<Graph>();
      g->ids = ids_cpu.to(device);
      if (padded) g->mask = mask_cpu.to(device);
      c10::cuda::getCurrentCUDAStream(device.index()).synchronize();  // inputs ready before the side stream
      auto side = c10::cuda::getStreamFromPool(false, device.index());
      {
        c10::cuda::CUDAStreamGuard sg(side);
        for (int i = 0; i < 3; ++i) g->out = model->forward(g->ids, g->mask);  // warm-up (allocator, kernels)
        side.synchronize();
        g->graph.capture_begin();
        g->out = model->forward(g->ids, g->mask);
        g->graph.capture_end();
        side.synchronize();
      }
      it = graphs.emplace(key, std::move(g)).first;
    }
    Graph& g = *it->second;
    g.ids.copy_(ids_cpu);
    if (padded) g.mask.copy_(mask_cpu);
    g.graph.replay();
    return g.out.clone();  // device copy before the lock is released (next replay overwrites)
  }
#endif
  auto out = model->forward(ids_cpu.to(device), padded ? mask_cpu.to(device) : torch::Tensor());
  return out;
}

namespace {

// Pooling of a CPU fp32 last_hidden_state [batch, seq_len, dim] in plain loops: libtorch's
// reductions here would wake its OpenMP threads after the own kernels' forward (see
// forward_with_cpu_kernels in distilbert.cpp). Same math as the tensor path below: the [CLS]
// row, or the mean over positions with mask 1 (all positions without a mask; at least 1).
std::vector<float> pool_cpu(Pooling pooling, const float* h, const std::vector<int64_t>& mask, size_t batch,
                            size_t seq_len, size_t dim) {
  std::vector<float> out(batch * dim, 0.0f);
  for (size_t b = 0; b < batch; ++b) {
    const float* hb = h + b * seq_len * dim;
    float* o = out.data() + b * dim;
    if (pooling == Pooling::cls) {
      std::memcpy(o, hb, dim * sizeof(float));
      continue;
    }
    float n = 0;
    for (size_t t = 0; t < seq_len; ++t) {
      if (!mask.empty() && mask[b * seq_len + t] == 0) continue;
      const float* row = hb + t * dim;
      for (size_t d = 0; d < dim; ++d) o[d] += row[d];
      n += 1;
    }
    const float inv = 1.0f / std::max(n, 1.0f);
    for (size_t d = 0; d < dim; ++d) o[d] *= inv;
  }
  return out;
}

}  // namespace

std::vector<float> Encoder::Impl::pooled(const std::vector<int64_t>& ids, const std::vector<int64_t>& mask,
                                         size_t batch, size_t seq_len) {
  if (device.is_cpu() && dtype == torch::kFloat) {  // pooled from the host vectors, no mask tensor
    const auto h = hidden(ids, mask, batch, seq_len, nullptr).contiguous();
    return pool_cpu(options.pooling, h.data_ptr<float>(), mask, batch, seq_len, static_cast<size_t>(h.size(2)));
  }
  torch::Tensor m;
  auto h = hidden(ids, mask, batch, seq_len, &m);
  torch::Tensor p;
  if (options.pooling == Pooling::cls) {
    p = h.select(1, 0);
  } else {
    auto hf = h.to(torch::kFloat);
    if (!m.defined()) {
      p = hf.mean(1);
    } else {
      auto mf = m.to(hf.device(), torch::kFloat).unsqueeze(-1);  // [B,T,1]
      p = (hf * mf).sum(1) / mf.sum(1).clamp_min(1.0);
    }
  }
  p = p.to(torch::kCPU, torch::kFloat).contiguous();
  std::vector<float> out(static_cast<size_t>(p.numel()));
  std::memcpy(out.data(), p.data_ptr<float>(), out.size() * sizeof(float));
  return out;
}

std::vector<float> Encoder::embed_ids(const std::vector<int64_t>& ids, const std::vector<int64_t>& mask, size_t batch,
                                      size_t seq_len) const {
  c10::InferenceMode guard;
  return impl_->pooled(ids, mask, batch, seq_len);
}

std::vector<float> Encoder::forward_ids(const std::vector<int64_t>& ids, const std::vector<int64_t>& mask, size_t batch,
                                        size_t seq_len) const {
  c10::InferenceMode guard;
  auto h = impl_->hidden(ids, mask, batch, seq_len, nullptr).to(torch::kCPU, torch::kFloat).contiguous();
  std::vector<float> out(static_cast<size_t>(h.numel()));
  std::memcpy(out.data(), h.data_ptr<float>(), out.size() * sizeof(float));
  return out;
}

std::vector<float> Encoder::embed(const std::vector<std::string>& texts, size_t max_length) const {
#ifdef ROUTENLP_ENCODER_NO_TOKENIZER
  (void)texts;
  (void)max_length;
  throw Error(Status::not_supported, "encoder: built without the tokenizer (ROUTENLP_ENCODER_NO_TOKENIZER)");
#else
  if (!impl_->tokenizer)
    throw Error(Status::invalid_argument,
                "encoder: embed(texts) needs a vocabulary (vocab.txt in the model directory or EncoderOptions::vocab_file)");
  if (texts.empty()) return {};
  if (max_length < 2) throw Error(Status::invalid_argument, "encoder: max_length must be >= 2");
  const size_t cap = static_cast<size_t>(impl_->config.max_position_embeddings);
  auto enc = impl_->tokenizer->encode_batch(texts, std::min(max_length, cap), /*pad_to_longest=*/true);
  return embed_ids(enc.ids, enc.attention_mask, enc.batch, enc.seq_len);
#endif
}

void Encoder::save_hf_dir(const std::string& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(Status::io, dir + ": cannot create directory: " + ec.message());
  detail::save_weights(*impl_->model, (fs::path(dir) / "model.safetensors").string());
  detail::write_file_atomic((fs::path(dir) / "config.json").string(), impl_->config.to_hf_config_json());
  if (!impl_->vocab_path.empty()) {
    const fs::path dst = fs::path(dir) / "vocab.txt";
    if (fs::exists(dst) && fs::equivalent(dst, impl_->vocab_path, ec)) return;
    detail::write_file_atomic(dst.string(), detail::read_file(impl_->vocab_path));
  }
}

int Encoder::dim() const { return static_cast<int>(impl_->config.dim); }
const EncoderConfig& Encoder::config() const { return impl_->config; }
const EncoderOptions& Encoder::options() const { return impl_->options; }
std::string Encoder::device() const { return impl_->device.str(); }
EncoderDType Encoder::dtype() const { return impl_->options.dtype; }
bool Encoder::has_tokenizer() const {
#ifdef ROUTENLP_ENCODER_NO_TOKENIZER
  return false;
#else
  return impl_->tokenizer != nullptr;
#endif
}

}  // namespace routenlp
