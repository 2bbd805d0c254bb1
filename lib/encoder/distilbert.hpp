// DistilBERT as a libtorch module whose parameter names equal HF DistilBertModel's state_dict,
// plus weight I/O by those names. Internal header (torch types allowed); used by the encoder
// and by the router trainer.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "routenlp/encoder/encoder.hpp"
#include "routenlp/encoder/safetensors.hpp"

namespace routenlp::detail {

struct CpuInt8Weights;    // cpu_int8_kernels.hpp
struct CpuPackedWeights;  // cpu_kernels.hpp

// Sets libtorch's intra-op thread count for a scope (n <= 0: leave it) and restores it.
// Used by the trainers; process-wide, so not for concurrent use with other settings.
struct ThreadGuard {
  int old = at::get_num_threads();
  bool set = false;
  explicit ThreadGuard(int n) {
    if (n > 0) {
      at::set_num_threads(n);
      set = true;
    }
  }
  ~ThreadGuard() {
    if (set) at::set_num_threads(old);
  }
};

struct EmbeddingsImpl : torch::nn::Module {
  explicit EmbeddingsImpl(const EncoderConfig& c);
  torch::Tensor forward(const torch::Tensor& input_ids);  // [B,T] int64 -> [B,T,dim]
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(Embeddings);

struct MultiHeadSelfAttentionImpl : torch::nn::Module {
  explicit MultiHeadSelfAttentionImpl(const EncoderConfig& c);
  // x [B,T,dim]; bias: additive key mask [B,1,1,T] in x's dtype (undefined = no padding).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias);
  int64_t n_heads, dim;
  double attention_dropout;
  torch::nn::Linear q_lin{nullptr}, k_lin{nullptr}, v_lin{nullptr}, out_lin{nullptr};
  torch::nn::Dropout dropout{nullptr};
  c10::IValue q_int8, k_int8, v_int8, out_int8;  // packed int8 weights (quantize_int8_dynamic)
  // The same weights for routenlp's own int8 kernels (q/k/v fused), used by the fused CPU block
  // forward; null unless quantize_int8_dynamic ran with the own kernels active.
  std::shared_ptr<const CpuInt8Weights> qkv_own_int8, out_own_int8;
  // Inference-only fused [3*dim, dim] q/k/v projection (one GEMM instead of three): a snapshot
  // of the current weights made by prepare_for_inference(), used only in eval mode. Either the
  // torch tensors (libtorch path, and the own kernels' per-call packing) or, where the active
  // kernels pack weights once, the packs below for the own kernels; never both.
  torch::Tensor qkv_weight, qkv_bias;
  std::shared_ptr<const CpuPackedWeights> qkv_packed, out_packed;
};
TORCH_MODULE(MultiHeadSelfAttention);

struct FFNImpl : torch::nn::Module {
  explicit FFNImpl(const EncoderConfig& c);
  torch::Tensor forward(const torch::Tensor& x);  // lin2(gelu(lin1(x))), exact erf GELU
  torch::nn::Linear lin1{nullptr}, lin2{nullptr};
  torch::nn::Dropout dropout{nullptr};
  c10::IValue lin1_int8, lin2_int8;
  std::shared_ptr<const CpuInt8Weights> lin1_own_int8, lin2_own_int8;  // see MultiHeadSelfAttentionImpl
  std::shared_ptr<const CpuPackedWeights> lin1_packed, lin2_packed;      // see MultiHeadSelfAttentionImpl
};
TORCH_MODULE(FFN);

struct TransformerBlockImpl : torch::nn::Module {
  explicit TransformerBlockImpl(const EncoderConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias);
  MultiHeadSelfAttention attention{nullptr};
  torch::nn::LayerNorm sa_layer_norm{nullptr};
  FFN ffn{nullptr};
  torch::nn::LayerNorm output_layer_norm{nullptr};
};
TORCH_MODULE(TransformerBlock);

struct TransformerImpl : torch::nn::Module {
  explicit TransformerImpl(const EncoderConfig& c);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& bias);
  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(Transformer);

// HF DistilBertModel. named_parameters() == HF state_dict keys (see hf_parameter_names()).
struct DistilBertImpl : torch::nn::Module {
  explicit DistilBertImpl(const EncoderConfig& c);
  // input_ids [B,T] int64 on the module's device; attention_mask [B,T] (1 token, 0 pad; any
  // integer/bool/float dtype) or undefined for no padding. Returns last_hidden_state [B,T,dim].
  // T > max_position_embeddings throws Error(invalid_argument).
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {});
  EncoderConfig config;
  Embeddings embeddings{nullptr};
  Transformer transformer{nullptr};
  // Threads for the own CPU kernels (cpu_kernels.hpp): 0 = cpu_pool_default_threads().
  int cpu_kernel_threads = 0;
  // Whether prepare_for_inference() packs the Linear weights once for the own kernels
  // (EncoderOptions::cpu_prepacked_weights).
  bool cpu_prepacked_weights = true;
};
TORCH_MODULE(DistilBert);

// Additive attention bias [B,1,1,T]: 0 where mask != 0, finfo(dtype).min where mask == 0
// (HF masks scores with finfo.min).
torch::Tensor attention_bias(const torch::Tensor& attention_mask, torch::ScalarType dtype);

// Error(invalid_argument) "<who>: token id X at position I is outside the vocabulary (0..V-1)"
// for the first of the n ids outside [0, vocab_size).
void check_token_ids(const int64_t* ids, size_t n, int64_t vocab_size, const char* who);

// HF DistilBertModel state_dict keys for a config, in module order.
std::vector<std::string> hf_parameter_names(const EncoderConfig& c);

// HF's _init_weights: Linear/Embedding N(0, initializer_range), biases 0, padding row 0,
// LayerNorm 1/0; sinusoidal position table when configured. Deterministic for a seed.
void init_weights(DistilBertImpl& m, uint64_t seed);

// Fills HF create_sinusoidal_embeddings into `out` [n_pos, dim].
void fill_sinusoidal(torch::Tensor out);

// Dynamic int8 quantization of every Linear (CPU, eval only): weights int8 per output channel,
// activations quantized per call (quantized::linear_dynamic via the FBGEMM/x86/oneDNN engine).
// With the own CPU kernels active (cpu_isa_active()), also packs every block's weights for the
// own int8 GEMM (cpu_int8_kernels.hpp), which the fused block forward then uses; the libtorch
// packs stay for the op-by-op path (ROUTENLP_CPU_KERNELS=off, or an ISA changed by a test).
// Throws Error(not_supported) when libtorch has no suitable quantized engine.
void quantize_int8_dynamic(DistilBertImpl& m);
// Readies an fp32 model whose weights no longer change (loaded, on its final device and dtype,
// eval mode) for inference, per block: layers with int8 weights are left alone. Where the active
// own CPU kernels pack weights once (cpu_pack_linear; AVX-512) and m.cpu_prepacked_weights is set,
// packs q/k/v (fused), out_lin, lin1 and lin2 for them: a second copy of those weights, which
// the kernels then read instead of the torch tensors. Otherwise snapshots the fused q/k/v as a
// torch tensor (qkv_weight). Packs are for the ISA active now: a forward under another ISA
// (tests override it) takes the libtorch path. Calling it again re-snapshots.
void prepare_for_inference(DistilBertImpl& m);
// y = x W^T + b. CPU fp32 without autograd runs routenlp's own AVX-512/AVX2 kernel
// (cpu_kernels.hpp) when the CPU has one and ROUTENLP_CPU_KERNELS is not "off"; otherwise oneDNN's
// inner product when ROUTENLP_ONEDNN_FP32=1; otherwise (and always for training, bf16, CUDA)
// torch::linear.
// `threads` is for the own kernels only (0 = cpu_pool_default_threads()).
torch::Tensor linear_infer(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int threads = 0);
// Linear through the packed int8 weights when present, else the fp weights (linear_infer).
torch::Tensor linear_maybe_int8(torch::nn::Linear& lin, const c10::IValue& packed, const torch::Tensor& x);

struct LoadReport {
  std::vector<std::string> ignored;  // tensors not used (task heads, position_ids buffer)
  std::string prefix;                // "distilbert." when the checkpoint had it, else ""
};

// Copies tensors into the module's parameters by HF name (F32/F16/BF16 converted to the
// module's dtype and device). Accepts the "distilbert." prefix of DistilBertFor* checkpoints.
// Missing, mis-shaped or unexpected encoder tensors -> Error(model) listing them.
LoadReport load_weights(DistilBertImpl& m, const SafetensorsFile& f);

// Parameters as fp32 tensors (CPU, contiguous) with HF names, ready for write_safetensors.
std::vector<std::pair<std::string, torch::Tensor>> export_weights(DistilBertImpl& m);

// export_weights() written with metadata {"format": "pt"} (+ extra). Atomic.
void save_weights(DistilBertImpl& m, const std::string& path,
                  const std::map<std::string, std::string>& extra_metadata = {});

// Views of CPU contiguous tensors for write_safetensors (tensors must outlive the views).
std::vector<TensorView> tensor_views(const std::vector<std::pair<std::string, torch::Tensor>>& ts);

}  // namespace routenlp::detail
