// Neural router: DistilBERT encoder -> pooled ([CLS] or mean) (+) task embedding -> MLP ->
// per-tier acceptability logits and a difficulty head. Needs libtorch (else Error not_supported).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "routenlp/data/dataset.hpp"
#include "routenlp/data/portfolio.hpp"
#include "routenlp/encoder/encoder.hpp"
#include "routenlp/export.h"
#include "routenlp/progress.hpp"
#include "routenlp/router/baselines.hpp"
#include "routenlp/router/model.hpp"

namespace routenlp {

struct NeuralRouterConfig {
  // Encoder architecture when training from scratch. Ignored when hf_dir is set (its
  // config.json is used). max_position_embeddings bounds max_length.
  EncoderConfig encoder = EncoderConfig::small();
  std::string hf_dir;            // start from a pretrained HF DistilBERT directory
  std::string vocab_path;        // WordPiece vocab.txt; empty = hf_dir's, else the bundled one
  int max_length = 64;           // tokens per query incl. [CLS]/[SEP]; longer ones truncated
  Pooling pooling = Pooling::cls;  // [CLS] vector or mask-weighted mean
  int task_dim = 32;             // task embedding size
  int hidden = 256;              // MLP hidden size
  // Add the training split's per-(task, tier) log-odds of acceptability to the logits (a fixed
  // offset; the network learns the residual, starting from the task prior: docs/router.md).
  bool prior_offset = true;
  double dropout = 0.1;          // in the MLP head (the encoder uses its config's dropouts)
};

struct RouterLossConfig {
  double bce_weight = 1.0;         // BCE on per-tier acceptability (missing outcomes masked)
  double ranking_weight = 0.5;     // pairwise: an acceptable tier's logit above an unacceptable one's
  double ranking_margin = 0.0;     // hinge-free: softplus(margin - (s_good - s_bad))
  double difficulty_weight = 0.1;  // BCE of the difficulty head vs the share of failing tiers
  double quality_weight = 0.0;     // MSE on per-tier quality (0 = off)
};

struct RouterTrainConfig {
  NeuralRouterConfig model;
  RouterLossConfig loss;
  // Defaults = data/configs/router-small.json (the bundled default router).
  int epochs = 8;
  int batch_size = 32;
  double learning_rate = 5e-4;     // encoder and heads
  double weight_decay = 0.01;      // AdamW
  double warmup_fraction = 0.1;    // linear warm-up over this share of steps, then linear decay
  int patience = 2;                // early stopping: epochs without improvement (0 = never stop)
  std::string early_stop_metric = "auc";  // "loss" or "auc" (mean per-tier validation AUC)
  double validation_fraction = 0.1;  // of the train split, held out for early stopping
  double task_dropout = 0.1;       // share of training rows whose task is replaced by "unknown"
  uint64_t seed = 0;
  int threads = 0;                 // torch intra-op threads during training; 0 = leave as is

  // JSON (the keys are these field names; "model", "loss" nested). Unknown keys are errors.
  RN_API static RouterTrainConfig from_json(const std::string& json_text,
                                            const std::string& source = "<string>");
  RN_API static RouterTrainConfig load(const std::string& path);
  RN_API std::string to_json() const;
};

// Where a loaded neural router runs inference (docs/router.md "Devices"). Training always
// runs on the CPU in fp32; this only places a loaded (immutable) router.
struct RouterRuntime {
  // "cpu" (default), "cuda", "cuda:N", or "auto" = CUDA device 0 when libtorch sees one, else
  // the CPU. An explicit CUDA device on a machine or build without CUDA is
  // Error(not_supported); an unknown string is Error(invalid_argument).
  std::string device = "cpu";
  // The encoder's precision; the task embedding, MLP and heads stay fp32. bf16 on the CPU runs
  // through libtorch/oneDNN (not routenlp's fp32 kernels); fp16 needs CUDA.
  EncoderDType dtype = EncoderDType::fp32;
  // CUDA only: capture the whole router forward as one CUDA graph per (batch, tokens) shape
  // and replay it. Needs a build with ROUTENLP_WITH_CUDA_GRAPHS (else Error(not_supported)).
  bool cuda_graphs = false;
  // CPU, fp32 dtype only: the encoder's Linear layers in int8 (weights per output channel,
  // activations quantized per call; routenlp's own VNNI/AVX2 kernels, docs/encoder.md). Scores
  // move slightly (docs/results.md measures AUC parity); such a router cannot be saved. With an
  // explicit CUDA device: Error(not_supported); with "auto" it applies only when the CPU is chosen.
  bool int8_dynamic = false;
  // With device "auto" resolving to the CPU, dtype and cuda_graphs are ignored (the CPU fp32
  // default runs), so one runtime serves GPU and CPU hosts alike. With an explicit "cpu" they
  // are checked as given.
};

struct RouterTrainReport {
  int epochs_run = 0;
  int best_epoch = 0;              // epoch whose weights were kept (0 = the initial weights)
  double best_val_loss = 0.0;
  double best_val_auc = 0.0;       // mean per-tier AUC on the validation rows
  double train_seconds = 0.0;
  size_t train_rows = 0, val_rows = 0;
  std::vector<double> train_loss;  // per epoch
  std::vector<double> val_loss;    // per epoch
};

class RN_API NeuralRouter : public RouterModel {
 public:
  // Trains on data's train split only (the calib split is left to the calibrator; test unused).
  // Tiers come from the portfolio, tasks from the training data. Progress: stage "train".
  static NeuralRouter train(const Dataset& data, const PortfolioConfig& portfolio,
                            const RouterTrainConfig& config, ProgressCallback progress = nullptr,
                            RouterTrainReport* report = nullptr);
  // Checkpoint directory: router.safetensors, router.json (metadata), vocab.txt. Written to a
  // temporary directory renamed into place.
  static NeuralRouter load(const std::string& dir);
  // Same, placed on runtime.device in runtime.dtype (scores on the default runtime are those
  // of load(dir)).
  static NeuralRouter load(const std::string& dir, const RouterRuntime& runtime);
  // The device `runtime` resolves to on this machine ("cpu" or "cuda:N") after the checks
  // load() makes; throws the same errors. Torch-free builds: "cpu" for "cpu"/"auto" with the
  // CPU defaults, else Error(not_supported).
  static std::string resolve_device(const RouterRuntime& runtime);
  // Error(invalid_argument) for a router loaded with a dtype other than fp32 or with
  // int8_dynamic (its weights are rounded): save the fp32 checkpoint it was loaded from instead.
  void save(const std::string& dir) const;

  NeuralRouter(NeuralRouter&&) noexcept;
  NeuralRouter& operator=(NeuralRouter&&) noexcept;
  ~NeuralRouter() override;

  std::vector<RouterScores> score(const std::vector<RouteQuery>& batch) const override;
  std::string name() const override { return "neural"; }
  std::vector<std::string> tiers() const override;
  std::vector<std::string> tasks() const;
  // Pooled encoder representations (for the kNN baseline).
  std::vector<std::vector<float>> embed(const std::vector<RouteQuery>& batch) const;
  TextEmbedder embedder() const;
  const RouterTrainConfig& config() const;
  // Metadata JSON as saved (tiers, tasks, encoder config, vocab hash, training config, metrics).
  std::string metadata_json() const;
  // Flattened copy of every parameter (for determinism checks), in a fixed name order.
  std::vector<float> parameters_flat() const;
  int max_length() const;
  // Where inference runs: "cpu" or "cuda:N", and the encoder's dtype / CUDA-graph setting in
  // effect (after "auto" was resolved).
  std::string device() const;
  RouterRuntime runtime() const;

  struct Impl;  // internal

 private:
  explicit NeuralRouter(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace routenlp
