// Neural router internals (libtorch): the module, the loss, batching. Internal header, used by
// neural_router.cpp (model, inference, checkpoints) and router_trainer.cpp (training).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "encoder/distilbert.hpp"
#include "router/runtime_device.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/neural.hpp"
#include "routenlp/text/tokenizer.hpp"

namespace routenlp::detail {

struct RouterOutputs {
  torch::Tensor pooled;       // [B, dim]
  torch::Tensor acc_logits;   // [B, K]
  torch::Tensor diff_logit;   // [B]
  torch::Tensor qual_logits;  // [B, K]
};

// encoder -> pool -> concat task embedding -> Linear+GELU+Dropout -> heads.
// Parameter names: "encoder.<HF DistilBertModel name>", "task_embedding.weight",
// "hidden.{weight,bias}", "acceptability.*", "difficulty.*", "quality.*", and the fixed (not
// trained) "prior_logit" [tasks+1, K]: per-(task, tier) log-odds added to the acceptability
// logits (zeros when the prior offset is off).
struct RouterNetImpl : torch::nn::Module {
  RouterNetImpl(const EncoderConfig& ec, int64_t n_tasks, int64_t n_tiers,
                const NeuralRouterConfig& mc);
  torch::Tensor pool(const torch::Tensor& input_ids, const torch::Tensor& mask);
  // task_ids: [B] int64, 0 = unknown task, 1.. = known tasks.
  RouterOutputs forward(const torch::Tensor& input_ids, const torch::Tensor& mask,
                        const torch::Tensor& task_ids);
  Pooling pooling;
  DistilBert encoder{nullptr};
  torch::nn::Embedding task_embedding{nullptr};
  torch::nn::Linear hidden{nullptr}, acceptability{nullptr}, difficulty{nullptr}, quality{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::Tensor prior_logit;
};
TORCH_MODULE(RouterNet);

// Targets of a mini-batch (CPU float tensors).
struct RouterTargets {
  torch::Tensor y;     // [B, K] acceptable (0/1; 0 where missing)
  torch::Tensor mask;  // [B, K] 1 where the outcome exists
  torch::Tensor quality;  // [B, K] quality (0 where missing)
};

struct LossParts {
  torch::Tensor total;
  double bce = 0, ranking = 0, difficulty = 0, quality = 0;
};

// RouterLoss (docs/router.md): weighted sum of masked BCE, pairwise ranking, difficulty BCE,
// quality MSE.
LossParts router_loss(const RouterOutputs& out, const RouterTargets& t, const RouterLossConfig& c);

// Tokenizes a batch padded to its longest row (>= 2) and truncated to max_length.
void tokenize_batch(const WordPieceTokenizer& tok, const std::vector<RouteQuery>& batch,
                    int max_length, torch::Tensor& ids, torch::Tensor& mask);

}  // namespace routenlp::detail

namespace routenlp {

// State of a trained router (shared by NeuralRouter copies; immutable after construction).
struct NeuralRouter::Impl {
  RouterTrainConfig config;
  EncoderConfig encoder_config;
  std::vector<std::string> tiers;
  std::vector<std::string> tasks;   // sorted; task id = index + 1
  std::string vocab_text;           // vocab.txt bytes (saved with the checkpoint)
  std::string vocab_hash;
  std::unique_ptr<WordPieceTokenizer> tokenizer;
  mutable detail::RouterNet net{nullptr};  // eval mode; forward only under InferenceMode
  std::string metrics_json = "{}";  // training report
  // Where inference runs (NeuralRouter::load(dir, runtime)); training leaves the CPU default.
  RouterRuntime runtime;            // as resolved ("auto" replaced by the device chosen)
  detail::ResolvedRuntime placed;
  std::unique_ptr<detail::GraphCache> graphs;  // set when placed.cuda_graphs

  int64_t task_id(const std::string& task) const;  // 0 when unseen
  // Forward of a batch on the placed device; the outputs stay there (fp32).
  detail::RouterOutputs run(const std::vector<RouteQuery>& batch) const;
  // Moves the network to `r` (the encoder in r.dtype, the rest fp32 on the same device).
  void place(const detail::ResolvedRuntime& r);
};

// Builds tokenizer and (untrained) network; checks max_length and vocab against the encoder.
std::shared_ptr<NeuralRouter::Impl> make_router_impl(const RouterTrainConfig& config,
                                                     const EncoderConfig& ec,
                                                     std::vector<std::string> tiers,
                                                     std::vector<std::string> tasks,
                                                     std::string vocab_text,
                                                     const std::string& vocab_origin);

}  // namespace routenlp
