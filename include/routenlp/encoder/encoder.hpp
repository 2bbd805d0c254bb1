// DistilBERT text encoder: HuggingFace-compatible config and weights, CPU and CUDA inference.
// No libtorch types here (pimpl); building without libtorch makes Encoder throw not_supported.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "routenlp/export.h"

namespace routenlp {

// DistilBERT architecture; field names follow HF DistilBertConfig / config.json.
struct RN_API EncoderConfig {
  int64_t vocab_size = 30522;
  int64_t max_position_embeddings = 512;
  int64_t dim = 768;
  int64_t n_layers = 6;
  int64_t n_heads = 12;
  int64_t hidden_dim = 3072;
  double dropout = 0.1;
  double attention_dropout = 0.1;
  bool sinusoidal_pos_embds = false;  // HF create_sinusoidal_embeddings when true
  int64_t pad_token_id = 0;
  double initializer_range = 0.02;

  // Parses an HF config.json file (model_type must be "distilbert" when present; activation
  // must be "gelu"). Unknown keys are ignored. Throws Error(io/parse/model) naming file:field.
  static EncoderConfig from_hf_config_json(const std::string& path);
  // Same, from JSON text; `origin` names it in errors.
  static EncoderConfig from_hf_config_json_string(const std::string& json,
                                                  const std::string& origin = "config.json");
  // HF-compatible config.json text (loads with transformers' DistilBertConfig).
  std::string to_hf_config_json() const;
  // Throws Error(model) if sizes are inconsistent (dim % n_heads, non-positive sizes, ...).
  void validate() const;

  // The bundled router's encoder (data/configs/router-small.json): DistilBERT architecture,
  // dim 128, 2 layers, 2 heads, FFN 512, 64 positions, bert-base-uncased vocabulary size.
  static EncoderConfig small();
  // distilbert-base-uncased: dim 768, 6 layers, 12 heads, hidden 3072, 512 positions.
  static EncoderConfig distilbert_base();
};

enum class Pooling : int { cls = 0, mean = 1 };  // [CLS] vector, or mask-weighted mean
enum class EncoderDType : int { fp32 = 0, fp16 = 1, bf16 = 2 };

struct EncoderOptions {
  std::string device = "cpu";            // "cpu", "cuda", "cuda:N" or "auto" (cuda if present)
  EncoderDType dtype = EncoderDType::fp32;  // fp16 needs CUDA; bf16 on CPU uses oneDNN
  bool int8_dynamic = false;             // CPU only: int8 weights for the linear layers
  // libtorch intra-op threads, process-wide (at::set_num_threads), for what still runs as
  // libtorch ops. 0 = routenlp's default: 1 thread unless OMP_WAIT_POLICY=PASSIVE is set, then
  // one per core (docs/encoder.md "Threads"). -1 = leave libtorch's setting alone.
  int intra_op_threads = 0;
  Pooling pooling = Pooling::cls;
  bool cuda_graphs = false;  // CUDA only: capture one graph per (batch, seq_len, padded?)
  std::string vocab_file;    // WordPiece vocab.txt for embed(texts); overrides the model dir's
  // Threads of routenlp's own fp32 CPU kernels (docs/encoder.md "CPU kernels"), which run on
  // routenlp's own pool (spin briefly, then park; independent of OMP_WAIT_POLICY). 0 = one per
  // core (at most 16); N > 0 = N. A call that finds the pool busy with another call runs on
  // its own thread, so concurrent calls never oversubscribe the cores.
  int cpu_kernel_threads = 0;
  // Pack the Linear weights once at load for those kernels, in the order their GEMM reads them
  // (AVX-512 CPUs; fp32). Same results to the bit, batch 1 ~10-15% faster at distilbert-base;
  // costs a second copy of the block weights less the fused q/k/v copy it replaces (+~127 MB at
  // distilbert-base, +~1.2 MB for the small router encoder). false: no such copy, the weights
  // are packed per call (docs/encoder.md "Memory").
  bool cpu_prepacked_weights = true;
};

// A loaded encoder. Thread-safe: const methods may run concurrently (eval mode, no autograd;
// the CUDA-graph path serialises replays with a mutex).
class RN_API Encoder {
 public:
  // Loads an HF model directory: config.json + model.safetensors [+ vocab.txt]. Accepts
  // DistilBertModel and DistilBertFor* checkpoints ("distilbert." prefix; heads ignored).
  static Encoder load_hf_dir(const std::string& dir, const EncoderOptions& options = {});
  // Random weights (HF's initialisation: N(0, initializer_range), LayerNorm 1/0), seeded.
  static Encoder random_init(const EncoderConfig& config, uint64_t seed,
                             const EncoderOptions& options = {});

  Encoder(Encoder&&) noexcept;
  Encoder& operator=(Encoder&&) noexcept;
  ~Encoder();

  // Tokenizes (needs a vocab), truncates to max_length tokens incl. [CLS]/[SEP] (capped at
  // max_position_embeddings), pads, and returns pooled embeddings [texts.size() x dim].
  std::vector<float> embed(const std::vector<std::string>& texts, size_t max_length = 128) const;
  // Pooled embeddings from token ids [batch x seq_len] (row-major) and attention mask (1 = token,
  // 0 = padding; empty = all ones). seq_len > max_position_embeddings is Error(invalid_argument).
  std::vector<float> embed_ids(const std::vector<int64_t>& ids, const std::vector<int64_t>& mask,
                               size_t batch, size_t seq_len) const;
  // Last hidden state [batch x seq_len x dim] as fp32, same inputs as embed_ids().
  std::vector<float> forward_ids(const std::vector<int64_t>& ids, const std::vector<int64_t>& mask,
                                 size_t batch, size_t seq_len) const;

  // Writes config.json + model.safetensors (fp32) [+ vocab.txt when one was loaded] into dir.
  void save_hf_dir(const std::string& dir) const;

  int dim() const;
  const EncoderConfig& config() const;
  const EncoderOptions& options() const;
  std::string device() const;     // resolved: "cpu" or "cuda:N"
  EncoderDType dtype() const;
  bool has_tokenizer() const;

  struct Impl;
  Impl* impl() const { return impl_.get(); }  // internal (router trainer)

 private:
  explicit Encoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace routenlp
